"""Shared pieces of the Besikta model training: seeding, the small U-Net, ONNX export
with self-containment checks, ORT timing and the manifest (TOML) writer."""

from __future__ import annotations

import glob
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "models"
DATA = Path(os.environ.get("BESIKTA_DATA", "/work/shared/data"))
BRIGHTON = DATA / "flights" / "brighton-beach"

# Brighton flight: DJI FC300S, 6.17 mm sensor width, 3.61 mm focal length, 4000 px wide,
# 40 m above take-off. GSD = altitude * sensor_width / (focal * image_width).
BRIGHTON_GSD_MM = 40_000.0 * 6.17 / (3.61 * 4000.0)  # ~17.09 mm/px

# The three Brighton photos the overlays are drawn on (also in fixtures/brighton). They are
# never used as training negatives so that the overlays show unseen photos.
OVERLAY_PHOTOS = ["DJI_0018.JPG", "DJI_0019.JPG", "DJI_0020.JPG"]


def setup(seed: int, threads: int = 1) -> None:
    """Fix every random source and keep to one CPU thread (the machine is shared)."""
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class Block(nn.Module):
    """`n` 3x3 conv-bn-relu layers."""

    def __init__(self, cin: int, cout: int, n: int):
        super().__init__()
        layers = [conv_bn(cin, cout)]
        for _ in range(n - 1):
            layers.append(conv_bn(cout, cout))
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)


class UNet(nn.Module):
    """Small U-Net. The shallow (full resolution) levels are thin because they dominate the
    run time; the deep levels are wide because they are cheap and hold most parameters.
    Output: sigmoid probabilities [N, out_ch, H, W]. H and W must be multiples of 16."""

    def __init__(self, out_ch: int = 1, ch=(8, 16, 32, 64, 128), enc_n=(1, 2, 2, 2, 2), dec_n=(1, 1, 2, 2),
                 half_res: bool = False, s2d: bool = False, light_top: bool = False):
        super().__init__()
        # half_res: the input is averaged 2x2 first and the logits upsampled 2x at the end,
        # so every level runs on a quarter of the pixels (for defects several pixels wide).
        self.half_res = half_res
        # s2d: the input's 2x2 blocks become 12 channels (space-to-depth, nothing averaged
        # away) and the head gives 4 logits per output pixel that are put back at full
        # resolution (depth-to-space), so every level runs on a quarter of the pixels while a
        # 1 px line stays distinguishable. Timed in benches/python/unet_variant_cost.py; a crack
        # model of this shape was trained once and rejected
        # (benches/results/crack-s2d-2026-12-06-s43.md). H and W must then be multiples of 32.
        self.s2d = s2d
        # light_top: the full-resolution decoder level adds the upsampled features to the
        # skip instead of concatenating them and running its convolutions. Timed only.
        self.light_top = light_top
        self.enc = nn.ModuleList()
        cin = 12 if s2d else 3
        for c, n in zip(ch, enc_n):
            self.enc.append(Block(cin, c, n))
            cin = c
        self.dec = nn.ModuleList()
        self.up = nn.ModuleList()
        for i in reversed(range(len(ch) - 1)):
            self.up.append(nn.Conv2d(ch[i + 1], ch[i], 1))
            if light_top and i == 0:
                self.dec.append(nn.Identity())
            else:
                self.dec.append(Block(2 * ch[i], ch[i], dec_n[i]))
        self.head = nn.Conv2d(ch[0], out_ch * (4 if s2d else 1), 1)

    def forward_logits(self, x):
        if self.half_res:
            x = F.avg_pool2d(x, 2)
        if self.s2d:
            x = F.pixel_unshuffle(x, 2)
        skips = []
        for i, e in enumerate(self.enc):
            if i > 0:
                x = F.max_pool2d(x, 2)
            x = e(x)
            skips.append(x)
        x = skips.pop()
        for up, dec in zip(self.up, self.dec):
            # The 1x1 convolution before the upsampling, not after: they commute (bilinear
            # weights sum to one), and this way the convolution runs on a quarter of the
            # pixels and the upsampling on fewer channels (about 10 % of an int8 tile; the
            # shipped files were reordered in place by `upsample_after_conv.py`).
            x = F.interpolate(up(x), scale_factor=2.0, mode="bilinear", align_corners=False)
            if isinstance(dec, nn.Identity):
                x = F.relu(x + skips.pop())
            else:
                x = dec(torch.cat([x, skips.pop()], 1))
        x = self.head(x)
        if self.s2d:
            x = F.pixel_shuffle(x, 2)
        if self.half_res:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        return x

    def forward(self, x):
        return torch.sigmoid(self.forward_logits(x))


def train_steps(model: nn.Module, next_batch, loss_fn, iters: int, lr: float, ckpt: Path,
                save_every: int) -> None:
    """Trains `model` for `iters` steps of AdamW (weight decay 1e-4) under a one-cycle
    learning rate peaking at `lr`, each on `next_batch()` -> (x, y) with
    `loss_fn(logits, y)`; logs a running loss and saves the weights to `ckpt` every
    `save_every` steps and at the end."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=iters, pct_start=0.05)
    t0, run = time.time(), 0.0
    model.train()
    for it in range(1, iters + 1):
        x, y = next_batch()
        loss = loss_fn(model.forward_logits(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        run = 0.98 * run + 0.02 * loss.item() if it > 1 else loss.item()
        if it % 50 == 0 or it == 20:
            el = time.time() - t0
            log(f"it {it}/{iters} loss {run:.4f} {el / it:.3f} s/it eta {(iters - it) * el / it / 60:.1f} min")
        if it % save_every == 0:
            torch.save(model.state_dict(), ckpt)
    torch.save(model.state_dict(), ckpt)


def segmentation_tables(gsd: dict, min_area_px: int) -> dict:
    """The manifest tables of a 256 x 256 RGB segmentation model with a probability mask
    output (dynamic batch, 32 px tile overlap, confidence 0.5)."""
    return {
        "input": dict(name="image", width=256, height=256, channels="rgb", scale=1 / 255,
                      mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0], dynamic_batch=True),
        "output": dict(name="mask", decode="probabilities"),
        "gsd": gsd,
        "tiling": dict(overlap_px=32),
        "thresholds": dict(confidence=0.5, nms_iou=0.5, min_area_px=min_area_px),
    }


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def export_onnx(model: nn.Module, path: Path, input_name: str, output_name: str, size: int,
                output_dims: list[int] | None = None) -> None:
    """Export with opset 17 and a dynamic batch axis into ONE self-contained file, then check
    that no external-data file was written and that onnx loads and checks the model.
    `output_dims` (without the batch) stamps static output dims where the tracer left
    symbolic ones (e.g. after a flatten), so consumers can read the box count up front."""
    import onnx

    model = model.eval().cpu()
    path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.rand(1, 3, size, size)
    before = set(glob.glob(str(path.parent / "*")))
    torch.onnx.export(
        model,
        (dummy,),
        str(path),
        input_names=[input_name],
        output_names=[output_name],
        dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    # Re-save through onnx to be sure every initializer is embedded in the one file.
    m = onnx.load(str(path), load_external_data=True)
    if output_dims is not None:
        dims = m.graph.output[0].type.tensor_type.shape.dim
        assert len(dims) == len(output_dims) + 1, (len(dims), output_dims)
        for d, v in zip(list(dims)[1:], output_dims):
            d.ClearField("dim_param")
            d.dim_value = v
    onnx.save_model(m, str(path), save_as_external_data=False)
    after = set(glob.glob(str(path.parent / "*")))
    extra = [p for p in after - before if p != str(path)]
    data_files = glob.glob(str(path.parent / "*.data"))
    if extra or data_files:
        raise RuntimeError(f"ONNX export of {path} wrote external files: {extra + data_files}")
    m = onnx.load(str(path))
    onnx.checker.check_model(m)
    assert m.opset_import[0].version == 17, m.opset_import
    size_mb = path.stat().st_size / 1e6
    if size_mb >= 10:
        raise RuntimeError(f"{path} is {size_mb:.1f} MB, over the 10 MB budget")
    # Parity with torch on a random batch of 2 (checks the dynamic batch axis too).
    import onnxruntime as ort

    x = torch.rand(2, 3, size, size)
    with torch.no_grad():
        ref = model(x).numpy()
    sess = ort_session(path)
    got = sess.run(None, {input_name: x.numpy()})[0]
    err = float(np.abs(ref - got).max())
    if err > 1e-3:
        raise RuntimeError(f"ONNX/torch mismatch {err} for {path}")
    print(f"exported {path} ({size_mb:.2f} MB, max |onnx-torch| = {err:.2e})")


def ort_session(path: Path, threads: int = 1):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def time_onnx(path: Path, input_name: str, size: int = 256, runs: int = 30) -> float:
    """Median milliseconds per 1x3xsizexsize tile with onnxruntime on one thread."""
    sess = ort_session(path)
    x = np.random.rand(1, 3, size, size).astype(np.float32)
    for _ in range(3):
        sess.run(None, {input_name: x})
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, {input_name: x})
        ts.append((time.perf_counter() - t0) * 1000)
    return float(np.median(ts))


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(v)


def export_like(model: nn.Module, base_man: dict, onnx_path: Path, version: str, provenance: str) -> None:
    """Export `model` to `onnx_path` with the input and output names and tile size of the base
    manifest `base_man` (a parsed TOML), and write its manifest beside it (`<stem>.toml`):
    `version` and `provenance` new, everything else (licence, tables, classes) as the base."""
    export_onnx(model, onnx_path, base_man["input"]["name"], base_man["output"]["name"], base_man["input"]["width"])
    tables = {k: v for k, v in base_man.items() if isinstance(v, dict)}
    write_manifest(
        onnx_path.with_suffix(".toml"),
        dict(name=base_man["name"], version=version, task=base_man["task"], model=onnx_path.name,
             license=base_man["license"], provenance=provenance),
        tables,
        base_man["classes"],
    )


def write_manifest(path: Path, top: dict, tables: dict, classes: list[dict]) -> None:
    """Write the manifest in the agreed TOML layout (models/.. manifest.md)."""
    lines = [f"{k} = {toml_value(v)}" for k, v in top.items()]
    for name, table in tables.items():
        lines.append("")
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    for c in classes:
        lines.append("")
        lines.append("[[classes]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in c.items()]
    path.write_text("\n".join(lines) + "\n")
    try:
        import tomllib

        tomllib.loads(path.read_text())
    except ImportError:
        pass
    print(f"wrote {path}")


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def onnx_is_half_res(path: Path) -> bool:
    """Whether an exported U-Net runs at half resolution (`UNet(half_res=True)`): its graph
    averages the input 2x2 (the only AveragePool; the encoder downsamples with MaxPool)."""
    import onnx

    return any(n.op_type == "AveragePool" for n in onnx.load(str(path)).graph.node)


def unet_from_onnx(model: UNet, path: Path, size: int = 256) -> UNet:
    """Load weights exported by `export_onnx` back into `model` (same architecture), for
    fine-tuning when only the shipped ONNX file is at hand. The exporter folds each
    BatchNorm into the convolution before it, so the folded weights go into the conv and the
    folded bias into the BatchNorm's bias, with the BatchNorm set to the identity (mean 0,
    var 1 - eps, weight 1). Keep those BatchNorms in eval mode while fine-tuning (see
    `freeze_batchnorm`): their statistics are the folded ones. Convs are paired in the
    order they run, checked by shape, and the result is checked against onnxruntime."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    onnx_convs = []
    for node in m.graph.node:
        if node.op_type == "Conv":
            w = inits[node.input[1]]
            b = inits[node.input[2]] if len(node.input) > 2 else np.zeros(w.shape[0], np.float32)
            onnx_convs.append((w, b))
    order: list[nn.Conv2d] = []
    hooks = [c.register_forward_hook(lambda mod, i, o: order.append(mod))
             for c in model.modules() if isinstance(c, nn.Conv2d)]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for h in hooks:
        h.remove()
    if len(order) != len(onnx_convs):
        raise RuntimeError(f"{path}: {len(onnx_convs)} convolutions, the model has {len(order)}: not the same architecture")
    bn_after = {}
    for mod in model.modules():
        if isinstance(mod, nn.Sequential) and len(mod) >= 2 and isinstance(mod[0], nn.Conv2d) and isinstance(mod[1], nn.BatchNorm2d):
            bn_after[id(mod[0])] = mod[1]
    with torch.no_grad():
        for conv, (w, b) in zip(order, onnx_convs):
            if tuple(conv.weight.shape) != w.shape:
                raise RuntimeError(f"{path}: conv shape {w.shape} where the model has {tuple(conv.weight.shape)}")
            conv.weight.copy_(torch.from_numpy(np.array(w)))
            bn = bn_after.get(id(conv))
            if bn is not None:
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
                bn.weight.fill_(1.0)
                bn.bias.copy_(torch.from_numpy(np.array(b)))
            elif conv.bias is not None:
                conv.bias.copy_(torch.from_numpy(np.array(b)))
            else:
                raise RuntimeError(f"{path}: a conv with a bias in ONNX has neither bias nor BatchNorm here")
    x = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    got = ort_session(path).run(None, {m.graph.input[0].name: x})[0]
    err = float(np.abs(ref - got).max())
    if err > 1e-4:
        raise RuntimeError(f"{path}: weights loaded but the output differs from onnxruntime by {err}")
    return model


def freeze_batchnorm(model: nn.Module) -> None:
    """BatchNorm layers to eval mode (running statistics fixed); call after model.train()."""
    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.eval()
