"""Crack data: loading DeepCrack/CRACK500 (or any owned folder with the same layout), the
fixed validation split, GSD-aware downscaling of photo+mask, drone-scale mosaics, synthetic
hard negatives (lane paint, shadows, kerbs/grass edges) and Brighton negative crops."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from common import BRIGHTON, DATA, OVERLAY_PHOTOS

# Pixel size of the close-up crack photos (DeepCrack/CRACK500 are ~1 mm per pixel).
SOURCE_GSD_MM = 1.0
# A downscaled mask pixel is crack when more than this fraction of its area was crack, so
# that 2-5 mm wide cracks survive as 1-2 px lines at drone GSDs.
MASK_AREA_THRESHOLD = 0.1
IMG_EXT = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")


def list_pairs(root: Path) -> list[tuple[Path, Path]]:
    """(image, mask) pairs of one dataset folder with `train_img/` and `train_lab/`.
    The mask of `x.jpg` is `x.png` or `x_mask.png` (CRACK500 naming)."""
    pairs = []
    for img in sorted((root / "train_img").iterdir()):
        if img.suffix.lower() not in IMG_EXT:
            continue
        cands = [root / "train_lab" / (img.stem + s) for s in (".png", "_mask.png", ".bmp", ".jpg")]
        lab = next((c for c in cands if c.exists()), None)
        if lab is None:
            raise FileNotFoundError(f"no mask for {img} in {root / 'train_lab'}")
        pairs.append((img, lab))
    return pairs


def split(roots: list[Path], val_frac: float, seed: int) -> tuple[list, list]:
    """Hold out `val_frac` of each dataset, by file, with a fixed seed."""
    train, val = [], []
    for root in roots:
        pairs = list_pairs(root)
        rng = random.Random(seed)
        idx = list(range(len(pairs)))
        rng.shuffle(idx)
        nval = int(round(val_frac * len(pairs)))
        vset = set(idx[:nval])
        for i, p in enumerate(pairs):
            (val if i in vset else train).append(p)
    return train, val


def load_pair(p: tuple[Path, Path]) -> tuple[np.ndarray, np.ndarray]:
    img = np.asarray(Image.open(p[0]).convert("RGB"))
    lab = np.asarray(Image.open(p[1]).convert("L")) > 127
    if lab.shape != img.shape[:2]:
        raise ValueError(f"mask {p[1]} is {lab.shape}, image {p[0]} is {img.shape[:2]}")
    return img, lab


def downscale(img: np.ndarray, mask: np.ndarray, f: float) -> tuple[np.ndarray, np.ndarray]:
    """Downscale photo (area average) and mask (area fraction > threshold) by factor f."""
    if f <= 1.0:
        return img, mask
    h, w = mask.shape
    nw, nh = max(8, int(round(w / f))), max(8, int(round(h / f)))
    im = Image.fromarray(img).resize((nw, nh), Image.BOX)
    mk = Image.fromarray((mask * 255).astype(np.uint8)).resize((nw, nh), Image.BOX)
    return np.asarray(im), np.asarray(mk) > MASK_AREA_THRESHOLD * 255


def brighton_negatives(exclude=OVERLAY_PHOTOS) -> list[np.ndarray]:
    """Brighton photos (minus the overlay ones) at full resolution, for negative crops."""
    out = []
    for p in sorted(BRIGHTON.glob("*.JPG")):
        if p.name in exclude:
            continue
        out.append(np.asarray(Image.open(p).convert("RGB")))
    return out


def asphalt_fraction_map(img: np.ndarray, cell: int = 16) -> np.ndarray:
    """Integral image of a coarse 'grey asphalt' mask (low saturation, mid brightness) so a
    crop's road fraction is O(1). Road surfaces in Brighton hold real cracks: crops that are
    mostly road are NOT used as all-background negatives."""
    small = np.asarray(Image.fromarray(img).resize((img.shape[1] // cell, img.shape[0] // cell), Image.BOX)).astype(np.float32)
    mx, mn = small.max(2), small.min(2)
    sat = (mx - mn) / (mx + 1)
    grey = (sat < 0.12) & (mx > 90) & (mx < 235)
    ii = np.zeros((grey.shape[0] + 1, grey.shape[1] + 1), np.float32)
    ii[1:, 1:] = grey.cumsum(0).cumsum(1)
    return ii


class CrackSampler:
    """Makes (image uint8 HxWx3, mask bool HxW) training samples of size `size`."""

    def __init__(self, pairs, negatives, size: int, rng: np.random.Generator):
        self.data = [load_pair(p) for p in pairs]
        self.neg = negatives
        self.neg_ii = [asphalt_fraction_map(n) for n in negatives]
        self.size = size
        self.rng = rng
        # Drone-scale mosaics: downscale factors drawn log-uniformly in this range (mm/px).
        self.drone_range = (4.0, 16.0)
        # Share of crack samples whose cracks are made faint (`faint`); 0 in `train_crack.py`.
        self.faint_share = 0.0
        self.faint_range = (0.15, 0.5)

    # -- pieces -------------------------------------------------------------------------
    def _rand_item(self):
        img, lab = self.data[self.rng.integers(len(self.data))]
        if self.rng.random() < 0.5:
            img, lab = img[:, ::-1], lab[:, ::-1]
        if self.rng.random() < 0.5:
            img, lab = img[::-1], lab[::-1]
        if self.rng.random() < 0.5:
            img, lab = img.transpose(1, 0, 2), lab.T
        return np.ascontiguousarray(img), np.ascontiguousarray(lab)

    def native(self):
        """Close-up scale (factor 1-2.5): keeps the model useful on close photos."""
        s = self.size
        img, lab = self._rand_item()
        f = float(np.exp(self.rng.uniform(0, np.log(2.5))))
        f = max(f, s / min(lab.shape) + 1e-3) if min(lab.shape) / f < s else f
        img, lab = downscale(img, lab, f)
        y = self.rng.integers(0, img.shape[0] - s + 1)
        x = self.rng.integers(0, img.shape[1] - s + 1)
        return img[y : y + s, x : x + s].copy(), lab[y : y + s, x : x + s].copy()

    def drone(self):
        """Drone scale (factor 4-16 by default, i.e. 4-16 mm/px; `drone_range`): a mosaic of
        downscaled photos."""
        s = self.size
        lo, hi = self.drone_range
        f = float(np.exp(self.rng.uniform(np.log(lo), np.log(hi))))
        canvas = np.zeros((s, s, 3), np.uint8)
        mask = np.zeros((s, s), bool)
        y = 0
        while y < s:
            x, row_h = 0, 0
            while x < s:
                img, lab = downscale(*self._rand_item(), f)
                if row_h and lab.shape[0] < row_h:  # no gaps: mirror-pad to the row height
                    extra = row_h - lab.shape[0]
                    img = np.pad(img, ((0, extra), (0, 0), (0, 0)), mode="symmetric")
                    lab = np.pad(lab, ((0, extra), (0, 0)), mode="symmetric")
                h, w = lab.shape
                hh, ww = min(h, s - y, row_h or h), min(w, s - x)
                canvas[y : y + hh, x : x + ww] = img[:hh, :ww]
                mask[y : y + hh, x : x + ww] = lab[:hh, :ww]
                x += ww
                row_h = max(row_h, hh)
            y += row_h
        return canvas, mask

    def brighton(self):
        """A real drone crop (10-28 mm/px) that is mostly not road: grass, trees, kerbs,
        road edges, shadows, rocks, water, cars. Labelled all background."""
        s = self.size
        for _ in range(50):
            k = self.rng.integers(len(self.neg))
            im, ii = self.neg[k], self.neg_ii[k]
            scale = float(np.exp(self.rng.uniform(np.log(0.6), np.log(1.7))))  # model px -> photo px
            cs = int(s * scale)
            y = self.rng.integers(0, im.shape[0] - cs)
            x = self.rng.integers(0, im.shape[1] - cs)
            c = 16
            y0, x0, y1, x1 = y // c, x // c, (y + cs) // c, (x + cs) // c
            area = max(1, (y1 - y0) * (x1 - x0))
            frac = (ii[y1, x1] - ii[y0, x1] - ii[y1, x0] + ii[y0, x0]) / area
            if frac < 0.3:
                break
        crop = Image.fromarray(im[y : y + cs, x : x + cs]).resize((s, s), Image.BILINEAR)
        out = np.asarray(crop)
        if self.rng.random() < 0.5:
            out = out[:, ::-1]
        if self.rng.random() < 0.5:
            out = out.transpose(1, 0, 2)
        return np.ascontiguousarray(out), np.zeros((s, s), bool)

    def faint(self, img, mask):
        """Faint cracks: the crack's difference to its own pavement scaled by 0.15-0.5
        (`faint_range`), so a crack 10-40 grey levels darker than its road becomes 2-20 darker,
        as hairline cracks look from a drone. The pavement under the crack is estimated by a
        normalised blur of the pixels around it (the crack and 1 px beside it left out)."""
        if not mask.any():
            return img, mask
        from scipy import ndimage

        near = ndimage.binary_dilation(mask, iterations=1)
        keep = (~near).astype(np.float32)
        x = img.astype(np.float32)
        den = ndimage.gaussian_filter(keep, 3.0)[..., None]
        num = np.stack([ndimage.gaussian_filter(x[..., c] * keep, 3.0) for c in range(3)], -1)
        pavement = np.where(den > 1e-3, num / np.maximum(den, 1e-3), x)
        k = self.rng.uniform(*self.faint_range)
        out = np.where(near[..., None], pavement + k * (x - pavement), x)
        return np.clip(out, 0, 255).astype(np.uint8), mask

    # -- synthetic hard negatives on top of crack samples ----------------------------------
    def paint(self, img, mask):
        """Lane markings: white/yellow stripes, 6-15 px wide at drone scale; paint hides the
        crack beneath, so the mask is cleared under it."""
        s = self.size
        pil = Image.fromarray(img)
        m = Image.new("L", (s, s), 0)
        d, dm = ImageDraw.Draw(pil), ImageDraw.Draw(m)
        col = (235, 235, 225) if self.rng.random() < 0.6 else (230, 190, 60)
        col = tuple(int(c * self.rng.uniform(0.8, 1.05)) for c in col)
        w = int(self.rng.integers(3, 16))
        ang = self.rng.uniform(0, np.pi)
        cx, cy = self.rng.uniform(0, s, 2)
        dx, dy = np.cos(ang) * 2 * s, np.sin(ang) * 2 * s
        dashed = self.rng.random() < 0.4
        pts = [(cx - dx, cy - dy), (cx + dx, cy + dy)]
        if dashed:
            n = 12
            for i in range(n):
                if i % 2 == 0:
                    a = pts[0][0] + (pts[1][0] - pts[0][0]) * i / n, pts[0][1] + (pts[1][1] - pts[0][1]) * i / n
                    b = pts[0][0] + (pts[1][0] - pts[0][0]) * (i + 1) / n, pts[0][1] + (pts[1][1] - pts[0][1]) * (i + 1) / n
                    d.line([a, b], fill=col, width=w)
                    dm.line([a, b], fill=255, width=w)
        else:
            d.line(pts, fill=col, width=w)
            dm.line(pts, fill=255, width=w)
        pil = pil.filter(ImageFilter.GaussianBlur(self.rng.uniform(0.3, 1.0)))
        return np.asarray(pil), mask & (np.asarray(m) < 128)

    def shadow(self, img, mask):
        """Cast shadows (trees, poles, cars): a darker soft-edged polygon. Cracks stay cracks."""
        s = self.size
        m = Image.new("L", (s, s), 0)
        n = int(self.rng.integers(3, 8))
        cx, cy = self.rng.uniform(0, s, 2)
        r = self.rng.uniform(s * 0.2, s * 0.8)
        pts = [(cx + r * np.cos(a) * self.rng.uniform(0.4, 1.2), cy + r * np.sin(a) * self.rng.uniform(0.4, 1.2))
               for a in np.sort(self.rng.uniform(0, 2 * np.pi, n))]
        ImageDraw.Draw(m).polygon(pts, fill=255)
        m = np.asarray(m.filter(ImageFilter.GaussianBlur(self.rng.uniform(0.5, 3)))).astype(np.float32) / 255
        k = self.rng.uniform(0.3, 0.7)
        tint = np.array([0.95, 0.98, 1.08]) if self.rng.random() < 0.5 else np.ones(3)
        out = img.astype(np.float32) * (1 - m[..., None] * (1 - k * tint))
        return np.clip(out, 0, 255).astype(np.uint8), mask

    def edge(self, img, mask):
        """Kerb / road edge: part of the tile replaced by a Brighton non-road crop (grass,
        trees, rocks) across a random line, with a bright or dark kerb band. Background there."""
        s = self.size
        other, _ = self.brighton()
        yy, xx = np.mgrid[0:s, 0:s]
        ang = self.rng.uniform(0, 2 * np.pi)
        off = self.rng.uniform(-0.3, 0.3) * s
        dist = (xx - s / 2) * np.cos(ang) + (yy - s / 2) * np.sin(ang) - off
        if self.rng.random() < 0.3:  # curved kerb
            dist = dist + 0.002 * ((xx - s / 2) * np.sin(ang) - (yy - s / 2) * np.cos(ang)) ** 2
        side = dist > 0
        out = np.where(side[..., None], other, img)
        band = np.abs(dist) < self.rng.uniform(0.5, 4)
        if self.rng.random() < 0.6:
            tone = self.rng.uniform(120, 230) if self.rng.random() < 0.7 else self.rng.uniform(30, 70)
            out = np.where(band[..., None], np.full(3, tone, np.float32), out).astype(np.uint8)
        return out, mask & ~side & ~band

    def photometric(self, img):
        x = img.astype(np.float32)
        x = x * self.rng.uniform(0.7, 1.3) + self.rng.uniform(-25, 25)
        x = (x - x.mean()) * self.rng.uniform(0.7, 1.3) + x.mean()
        x = x * self.rng.uniform(0.9, 1.1, 3)
        if self.rng.random() < 0.3:
            x = x + self.rng.normal(0, self.rng.uniform(1, 6), x.shape)
        return np.clip(x, 0, 255).astype(np.uint8)

    def sample(self):
        r = self.rng.random()
        if r < 0.22:
            img, mask = self.native()
        elif r < 0.72:
            img, mask = self.drone()
            if self.rng.random() < 0.3:
                img = np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(self.rng.uniform(0.3, 0.9))))
        else:
            img, mask = self.brighton()
            return self.photometric(img), mask
        if self.faint_share and self.rng.random() < self.faint_share:
            img, mask = self.faint(img, mask)
        if self.rng.random() < 0.25:
            img, mask = self.paint(img, mask)
        if self.rng.random() < 0.25:
            img, mask = self.shadow(img, mask)
        if self.rng.random() < 0.2:
            img, mask = self.edge(img, mask)
        return self.photometric(img), mask
