"""Procedural nadir roof images (clay/concrete tiles, corrugated sheet metal, bitumen felt)
at ~10 mm/px with planted damage, for the synthetic roof-damage model. Labels per pixel:
0 background, 1 missing_tile (missing/broken tile, hole or tear), 2 moss, 3 debris.
Distractors that are NOT damage: rust streaks, stains, shadows, seams, ridges, vents, and
ground (grass/asphalt) outside the roof edge."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASSES = ["missing_tile", "moss", "debris"]


def smooth_noise(rng, s: int, scale: float) -> np.ndarray:
    """Value noise in ~[0,1]: random grid of size s/scale upsampled bicubically."""
    n = max(2, int(s / scale) + 2)
    g = rng.random((n, n)).astype(np.float32)
    im = Image.fromarray((g * 255).astype(np.uint8)).resize((s, s), Image.BICUBIC)
    return np.asarray(im).astype(np.float32) / 255


def fractal(rng, s: int, base: float) -> np.ndarray:
    out = np.zeros((s, s), np.float32)
    amp, tot = 1.0, 0.0
    sc = base
    while sc >= 2:
        out += amp * smooth_noise(rng, s, sc)
        tot += amp
        amp *= 0.5
        sc /= 2
    return out / tot


def blob(rng, s: int, cx: float, cy: float, r: float) -> np.ndarray:
    """Irregular blob mask of radius ~r."""
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    d = np.hypot(xx - cx, yy - cy) / max(r, 1)
    n = smooth_noise(rng, s, max(4, r / 1.5))
    return d < 0.7 + 0.6 * n


def rot_coords(s: int, ang: float, rng):
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    ox, oy = rng.uniform(0, 500, 2)
    u = xx * np.cos(ang) + yy * np.sin(ang) + ox
    v = -xx * np.sin(ang) + yy * np.cos(ang) + oy
    return u, v


def tile_roof(rng, s):
    ang = rng.uniform(0, 2 * np.pi)
    u, v = rot_coords(s, ang, rng)
    tw, th = rng.uniform(20, 36), rng.uniform(16, 30)
    r = np.floor(v / th).astype(np.int64)
    uu = u + (r % 2) * tw / 2 * (rng.random() < 0.7)
    c = np.floor(uu / tw).astype(np.int64)
    fu, fv = uu / tw - c, v / th - r
    palette = [(150, 70, 50), (170, 90, 60), (110, 60, 50), (90, 90, 95), (60, 60, 65), (120, 110, 100), (40, 40, 45)]
    base = np.asarray(palette[rng.integers(len(palette))], np.float32) * rng.uniform(0.8, 1.2)
    var = rng.normal(1, 0.07, (64, 64)).astype(np.float32)
    tv = var[r % 64, c % 64]
    shade = 1 - 0.35 * fv**3  # the next row overlaps the bottom of each tile
    if rng.random() < 0.5:  # pantiles: curved profile
        shade = shade * (1 + 0.12 * np.cos(2 * np.pi * fu))
    edge = np.minimum(fu, 1 - fu) * tw < 1.0
    img = base * (tv * shade)[..., None]
    img[edge] *= 0.55
    img *= (0.9 + 0.2 * fractal(rng, s, 64))[..., None]
    label = np.zeros((s, s), np.uint8)
    # Missing / broken tiles: underlay and battens show through.
    for _ in range(rng.integers(0, 4) if rng.random() < 0.75 else 0):
        rr, cc = r[rng.integers(s), rng.integers(s)], c[rng.integers(s), rng.integers(s)]
        sel = (r == rr) & (c == cc)
        if rng.random() < 0.3:  # broken: part of the tile only
            sel &= fu + rng.uniform(-0.3, 0.3) * fv > rng.uniform(0.3, 0.7)
        if rng.random() < 0.3:  # also the tile below (slipped tiles)
            sel |= (r == rr + 1) & (c == cc) & (fv < 0.6)
        under = np.asarray([rng.uniform(20, 60), rng.uniform(20, 50), rng.uniform(15, 45)], np.float32)
        batten = (np.abs(((v / (th / 2)) % 1) - 0.5) < 0.12)
        und = np.where(batten[..., None], under * 2.2, under)
        img[sel] = und[sel]
        label[sel] = 1
    return img, label, (r, c, fu, fv, tw, th)


def metal_roof(rng, s):
    ang = rng.uniform(0, 2 * np.pi)
    u, v = rot_coords(s, ang, rng)
    p = rng.uniform(5, 14)
    palette = [(150, 155, 160), (120, 125, 130), (60, 100, 70), (140, 50, 45), (60, 70, 110), (190, 190, 185)]
    base = np.asarray(palette[rng.integers(len(palette))], np.float32) * rng.uniform(0.8, 1.15)
    prof = np.sin(2 * np.pi * u / p) if rng.random() < 0.6 else np.sign(np.sin(2 * np.pi * u / p)) * 0.6
    img = base * (1 + 0.13 * prof)[..., None]
    seam_len = rng.uniform(80, 200)
    img[np.abs(((v / seam_len) % 1) - 0.5) > 0.495] *= 0.6
    img *= (0.93 + 0.14 * fractal(rng, s, 64))[..., None]
    label = np.zeros((s, s), np.uint8)
    if rng.random() < 0.4:  # rust streaks: a distractor, not labelled
        m = fractal(rng, s, 32) > rng.uniform(0.6, 0.7)
        img[m] = img[m] * 0.5 + np.asarray([120, 60, 30], np.float32) * 0.5
    for _ in range(rng.integers(0, 3) if rng.random() < 0.6 else 0):
        m = blob(rng, s, *rng.uniform(0, s, 2), rng.uniform(3, 14))
        img[m] = rng.uniform(5, 40)
        label[m] = 1
    return img, label, None


def felt_roof(rng, s):
    ang = rng.uniform(0, 2 * np.pi)
    u, v = rot_coords(s, ang, rng)
    g = rng.uniform(35, 95)
    base = np.asarray([g, g * rng.uniform(0.95, 1.05), g * rng.uniform(0.95, 1.08)], np.float32)
    img = base * (0.85 + 0.3 * fractal(rng, s, 16))[..., None]
    img += rng.normal(0, 6, (s, s, 1)).astype(np.float32)
    lap = rng.uniform(60, 110)
    img[np.abs(((v / lap) % 1) - 0.5) > 0.49] *= 1.25
    label = np.zeros((s, s), np.uint8)
    if rng.random() < 0.4:  # ponding stains: distractor
        m = fractal(rng, s, 48) > rng.uniform(0.62, 0.72)
        img[m] *= 0.75
    for _ in range(rng.integers(0, 3) if rng.random() < 0.6 else 0):
        m = blob(rng, s, *rng.uniform(0, s, 2), rng.uniform(3, 16))
        if rng.random() < 0.5:  # tear showing a lighter board
            img[m] = np.asarray([rng.uniform(120, 170), rng.uniform(95, 130), rng.uniform(60, 90)], np.float32)
        else:
            img[m] = rng.uniform(5, 25)
        label[m] = 1
    return img, label, None


def add_moss(rng, img, label, s, geo):
    m = fractal(rng, s, rng.uniform(12, 40)) > rng.uniform(0.58, 0.7)
    if geo is not None and rng.random() < 0.6:  # moss grows along tile edges
        r, c, fu, fv, tw, th = geo
        m &= (fv > 0.6) | (np.minimum(fu, 1 - fu) < 0.15)
        m = np.asarray(Image.fromarray(m.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(3))) > 0
    if m.sum() < 10:
        return
    green = np.asarray([rng.uniform(50, 110), rng.uniform(90, 150), rng.uniform(20, 60)], np.float32)
    tex = (0.75 + 0.5 * smooth_noise(rng, s, 3))[..., None]
    img[m] = (green * tex)[m] * 0.85 + img[m] * 0.15
    label[m & (label == 0)] = 2


def add_debris(rng, img, label, s):
    pil = Image.new("L", (s, s), 0)
    d = ImageDraw.Draw(pil)
    cx, cy = rng.uniform(0, s, 2)
    spread = rng.uniform(6, 30)
    cols = []
    for _ in range(rng.integers(3, 25)):
        x, y = cx + rng.normal(0, spread), cy + rng.normal(0, spread)
        k = rng.random()
        val = int(rng.integers(1, 255))
        if k < 0.4:  # twigs / branches
            a = rng.uniform(0, np.pi)
            L = rng.uniform(4, 25)
            d.line([(x, y), (x + L * np.cos(a), y + L * np.sin(a))], fill=val, width=int(rng.integers(1, 4)))
        elif k < 0.8:  # leaves, litter
            rr = rng.uniform(1.5, 4)
            d.ellipse([x - rr, y - rr * rng.uniform(0.5, 1), x + rr, y + rr], fill=val)
        else:  # rubble / broken pieces
            rr = rng.uniform(2, 6)
            d.polygon([(x + rr * np.cos(t), y + rr * np.sin(t)) for t in np.sort(rng.uniform(0, 2 * np.pi, 5))], fill=val)
        cols.append(val)
    ids = np.asarray(pil)
    m = ids > 0
    if m.sum() < 6:
        return
    palette = np.asarray([(90, 60, 30), (140, 110, 60), (170, 150, 70), (60, 50, 40), (200, 200, 190), (120, 120, 110), (160, 80, 40)], np.float32)
    colour = palette[ids.astype(np.int64) % len(palette)] * rng.uniform(0.8, 1.2)
    img[m] = colour[m]
    label[m] = 3


def add_distractors(rng, img, s):
    """Shadows, vents/skylights, a ridge or roof edge against the ground."""
    if rng.random() < 0.35:
        pil = Image.new("L", (s, s), 0)
        n = int(rng.integers(3, 7))
        cx, cy, r = *rng.uniform(0, s, 2), rng.uniform(s * 0.2, s * 0.7)
        ImageDraw.Draw(pil).polygon([(cx + r * np.cos(t), cy + r * np.sin(t)) for t in np.sort(rng.uniform(0, 2 * np.pi, n))], fill=255)
        m = np.asarray(pil.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 3)))).astype(np.float32) / 255
        img *= (1 - m * rng.uniform(0.3, 0.6))[..., None]
    if rng.random() < 0.3:  # vent / skylight / chimney: a rectangle with a shadow
        x, y = rng.uniform(0, s - 20, 2)
        w, h = rng.uniform(6, 30, 2)
        pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
        d = ImageDraw.Draw(pil)
        d.rectangle([x + 3, y + 3, x + w + 3, y + h + 3], fill=(20, 20, 20))
        c = tuple(int(t) for t in rng.uniform(60, 220, 3)) if rng.random() < 0.5 else (120, 150, 180)
        d.rectangle([x, y, x + w, y + h], fill=c)
        img[:] = np.asarray(pil).astype(np.float32)


def roof_sample(rng, s: int):
    """One (uint8 image s x s x 3, uint8 label s x s) sample."""
    k = rng.random()
    if k < 0.45:
        img, label, geo = tile_roof(rng, s)
    elif k < 0.75:
        img, label, geo = metal_roof(rng, s)
    else:
        img, label, geo = felt_roof(rng, s)
    if rng.random() < 0.45:
        add_moss(rng, img, label, s, geo)
    if rng.random() < 0.35:
        add_debris(rng, img, label, s)
    add_distractors(rng, img, s)
    if rng.random() < 0.25:  # ridge / roof edge: the ground beyond the edge is background
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
        a = rng.uniform(0, 2 * np.pi)
        dist = (xx - s / 2) * np.cos(a) + (yy - s / 2) * np.sin(a) - rng.uniform(-0.4, 0.4) * s
        side = dist > 0
        if rng.random() < 0.5:  # ground: grass or asphalt
            g = np.asarray([70, 120, 50] if rng.random() < 0.6 else [110, 110, 112], np.float32)
            ground = g * (0.7 + 0.6 * fractal(rng, s, 16))[..., None]
            img[side] = ground[side]
            label[side] = 0
        else:  # ridge: other slope is darker/brighter
            img[side] *= rng.uniform(0.6, 1.3)
        img[np.abs(dist) < 1.5] *= 0.5
    img = img * rng.uniform(0.8, 1.2) + rng.uniform(-15, 15)
    img += rng.normal(0, rng.uniform(1, 5), img.shape)
    out = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    if rng.random() < 0.5:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    return np.asarray(out), label
