"""Speed, precision and memory of ``cryosse predict`` (issue 8), all measured in one run.

For the width-1 network (the paper's) on a 74x59x83 map (the size DeepSSETracer's
authors timed: 81 s on CPU, 7 s on GPU), prints:

* time per map of the plain fp32 path (``infer.predict_probabilities``: padding to 8,
  batch norm as trained, default layout) and of the fast path ``cryosse predict`` uses
  (batch norm folded, the faster of fp32 and bf16 on this machine, channels-last 3D, padding to 4),
  the other precision beside it, and ``--precision int8`` (with the time of its calibration
  on the map's densest cube, paid once per map);
* achieved FLOP/s (convolution FLOPs counted analytically from the layers' shapes)
  over the FLOP/s of a large matrix product in the same precision, measured here;
* label agreement of the fast path and of int8 with the fp32 path, for a network trained here
  for a few steps on the real labelled boxes (or ``--model``), and for a "knife-edge"
  random network whose classes are balanced so that most voxels sit near a decision
  boundary (a worst case, reported for information);
* peak memory (ru_maxrss of a child process) and time of a full ``cryosse predict``
  of a 400^3 map at 1 A with the default tiling.

Absolute times depend on the machine and on what else runs on it; compare the ratios.

    python bench/bench_predict.py                       # CPU, 2 threads
    python bench/bench_predict.py --device cuda
    python bench/bench_predict.py --big 0               # skip the 400^3 run
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from real_data import REAL, skipped
from torch import nn

from cryosse.geometry import read_map
from cryosse.infer import (
    POOL_FACTOR,
    conv_flops,
    cpu_supports_bf16,
    normalise_density,
    pad_to_multiple,
    pick_device,
    predict_probabilities,
    prepare_model,
    sliding_window_probabilities,
)
from cryosse.model import (
    PAD_MULTIPLE,
    DeepSSETracerUNet,
    load_checkpoint,
    save_checkpoint,
    shipped_model_path,
)

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (74, 59, 83)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def best_times(fns: dict, dev: torch.device, repeat: int) -> dict[str, float]:
    """Best of ``repeat`` timings of each function, taken in turns (round-robin), so that
    load from other processes on a shared machine falls on all of them alike."""
    for fn in fns.values():  # warm-up: oneDNN / cuDNN pick their kernels
        fn()
    _sync(dev)
    best = {k: float("inf") for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            _sync(dev)
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def matmul_fn(dev: torch.device, dtype: torch.dtype, n: int):
    a = torch.randn(n, n, device=dev).to(dtype)
    b = torch.randn(n, n, device=dev).to(dtype)
    return lambda: a @ b


def bench_density() -> np.ndarray:
    """A real map region of 74x59x83 voxels (EMD-3488 haemoglobin) when the data are here."""
    p = REAL / "emd3488_5me2" / "emd_3488.mrc"
    if p.exists():
        d = np.asarray(read_map(p).data, np.float32)
        z, y, x = (np.asarray(d.shape) - SHAPE) // 2
        return normalise_density(d[z : z + SHAPE[0], y : y + SHAPE[1], x : x + SHAPE[2]])
    print(skipped("the real map region of EMD-3488; a random density of the same shape is timed"))
    rng = np.random.default_rng(0)
    return normalise_density(rng.gamma(2.0, size=SHAPE).astype(np.float32))


def train_briefly(steps: int, patch: int, lr: float = 2e-3, seed: int = 0) -> nn.Module:
    """The width-1 network after a few Adam steps (bf16 autocast, dropout off) on two real
    boxes with the authors' voxel labels, batch-norm statistics re-estimated at the end."""
    boxes = []
    for folder, mrc, lab in (
        ("emd8518_5u8s_A", "A-1.0APIX.mrc", "A_label_stride.txt"),
        ("emd3491_5mdx_L", "L-1.0APIX.mrc", "L_label_stride.txt"),
    ):
        d = normalise_density(np.asarray(read_map(REAL / folder / mrc).data))
        y = np.zeros(d.shape, np.int64)
        rows = np.loadtxt(REAL / folder / lab, delimiter=",")
        y[rows[:, 2].astype(int), rows[:, 1].astype(int), rows[:, 0].astype(int)] = rows[:, 4].astype(int)
        boxes.append((d, y))
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = DeepSSETracerUNet(1.0)
    net.drop.p = 0.0
    opt = torch.optim.Adam(net.parameters(), lr)
    weight = torch.tensor([1.0, 3.0, 10.0])
    bf16 = cpu_supports_bf16()

    def patch_of(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        d, y = boxes[step % len(boxes)]
        size = [min(patch, n) // 4 * 4 for n in d.shape]
        o = [int(rng.integers(0, n - s + 1)) for n, s in zip(d.shape, size, strict=True)]
        sl = tuple(slice(a, a + s) for a, s in zip(o, size, strict=True))
        return torch.from_numpy(d[sl].copy())[None, None], torch.from_numpy(y[sl].copy())[None]

    for step in range(steps):
        x, y = patch_of(step)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = net(x)
        loss = nn.functional.cross_entropy(logits.float(), y, weight=weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
    for m in net.modules():  # statistics of the final weights, not a running mix
        if isinstance(m, nn.BatchNorm3d):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for step in range(4):
            net(patch_of(step)[0])
    net.drop.p = 0.5
    return net.eval()


def knife_edge(net: nn.Module, density: np.ndarray, spread: float = 3.0, seed: int = 0) -> nn.Module:
    """Random output layer over centred features, biases set so each class wins ~1/3 of voxels."""
    g = torch.Generator().manual_seed(seed)
    feats = {}
    h = net.out.register_forward_hook(lambda m, i, o: feats.__setitem__("f", i[0]))
    with torch.no_grad():
        x, (d, hh, w) = pad_to_multiple(torch.from_numpy(density)[None, None])
        net(x)
        h.remove()
        f = feats["f"][0, :, :d, :hh, :w].flatten(1)
        mu = f.mean(1)
        wt = torch.randn(net.out.out_channels, f.shape[0], generator=g)
        wt *= spread / (wt @ (f - mu[:, None])).std(1, keepdim=True)
        lg = wt @ (f - mu[:, None])
        off = torch.zeros(net.out.out_channels)
        for _ in range(100):
            frac = torch.bincount((lg + off[:, None]).argmax(0), minlength=3).float() / lg.shape[1]
            off -= 0.05 * torch.log(frac * 3 + 1e-3)
        net.out.weight.copy_(wt.view_as(net.out.weight))
        net.out.bias.copy_(off - wt @ mu)
    return net


def agreement(net: nn.Module, density: np.ndarray, dev: torch.device, precision: str) -> str:
    """Fraction of voxels whose label at ``precision`` equals fp32's (plain, pad 8; and the same
    padding), and the Dice of its helix and sheet masks with fp32's (plain)."""
    ref = predict_probabilities(net, density, dev).argmax(0)
    p32 = sliding_window_probabilities(prepare_model(net, dev, "fp32"), density).argmax(0)
    fm = prepare_model(net, dev, precision, density=density)
    fast = sliding_window_probabilities(fm, density).argmax(0)
    n = [((fast == c).sum() + (ref == c).sum(), 2 * ((fast == c) & (ref == c)).sum()) for c in (1, 2)]
    dice = [f"{both / total:.3f}" if total else "- (none)" for total, both in n]
    return (f"vs fp32 plain (pad 8) {(fast == ref).mean():.4%}, vs fp32 same padding {(fast == p32).mean():.4%};"
            f" Dice with fp32 helix {dice[0]}, sheet {dice[1]}")  # fmt: skip


def big_run(n: int, ckpt: Path, device: str, threads: int, tmp: Path) -> dict:
    import mrcfile

    src = tmp / f"big_{n}.mrc"
    rng = np.random.default_rng(0)
    with mrcfile.new(src, overwrite=True) as m:
        m.set_data(rng.gamma(2.0, size=(n, n, n)).astype(np.float32))
        m.voxel_size = 1.0
    code = (
        "import json, resource, sys, time\n"
        "from cryosse.predict import predict_map\n"
        "t = time.perf_counter()\n"
        f"s = predict_map({str(src)!r}, {str(tmp / 'out')!r}, model={str(ckpt)!r}, device={device!r}, threads={threads})\n"
        "print(json.dumps({'wall_s': time.perf_counter() - t, 'n_tiles': s['tiling']['n_tiles'],"
        " 'tile': s['tiling']['tile'], 'overlap': s['tiling']['overlap'], 'precision': s['precision'],"
        " 'network_s': s['timing_s']['network'],"
        " 'maxrss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["children_maxrss_mb"] = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--precision",
        default="auto",
        help="fast path precision (auto: the faster of fp32 and bf16 here, timed as cryosse predict does)",
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--matmul", type=int, default=4096, help="edge of the matrices of the peak measurement")
    ap.add_argument("--checkpoint", "--model", dest="model", default=None,
                    help="a trained width-1 checkpoint for the agreement figure")  # fmt: skip
    ap.add_argument("--train-steps", type=int, default=30, help="steps of the brief training when no --model")
    ap.add_argument("--big", type=int, default=400, help="edge of the large map (0: skip)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = pick_device(args.device)
    print(f"device {dev}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    density = bench_density()
    torch.manual_seed(0)
    net = DeepSSETracerUNet(1.0).eval()
    fast = prepare_model(net, dev, args.precision)

    # 1. time per map, and the matrix-product peak, timed in turns
    fast32 = prepare_model(net, dev, "fp32")
    fns = {
        "ref": lambda: predict_probabilities(net, density, dev),
        "fast32": lambda: sliding_window_probabilities(fast32, density),
        "fast": lambda: sliding_window_probabilities(fast, density),
        "mm32": matmul_fn(dev, torch.float32, args.matmul),
    }
    if fast.dtype != torch.float32:
        fns["mm_fast"] = matmul_fn(dev, fast.dtype, args.matmul)
    # both precisions, whichever `auto` took: bf16 runs at native speed only with AVX512-BF16/AMX
    other = None
    if dev.type == "cpu":
        other = prepare_model(net, dev, "bf16" if fast.dtype == torch.float32 else "fp32")
        fns["other"] = lambda: sliding_window_probabilities(other, density)
        fns["mm_other"] = matmul_fn(dev, other.dtype, args.matmul)
        fast8 = prepare_model(net, dev, "int8", density=density)
        fns["int8"] = lambda: sliding_window_probabilities(fast8, density)
        fns["int8_calibrate"] = lambda: prepare_model(net, dev, "int8", density=density)
    t = best_times(fns, dev, args.repeat)
    mm32 = 2 * args.matmul**3 / t["mm32"]
    mm_fast = 2 * args.matmul**3 / t.get("mm_fast", t["mm32"])
    t_ref, t_fast32, t_fast = t["ref"], t["fast32"], t["fast"]
    pad8 = tuple(-(-s // PAD_MULTIPLE) * PAD_MULTIPLE for s in SHAPE)
    pad4 = tuple(-(-s // POOL_FACTOR) * POOL_FACTOR for s in SHAPE)
    f8, f4 = conv_flops(net, pad8), conv_flops(net, pad4)
    fdt = str(fast.dtype).replace("torch.", "")
    print(
        f"\nmap {SHAPE[0]}x{SHAPE[1]}x{SHAPE[2]}, width-1 network (authors: 81 s CPU, 7 s GPU); best of {args.repeat}, in turns"
    )
    print(
        f"  matmul {args.matmul}^2: fp32 {mm32 / 1e9:.0f} GFLOP/s"
        + ("" if fast.dtype == torch.float32 else f", {fdt} {mm_fast / 1e9:.0f} GFLOP/s")
    )
    rows = [
        ("fp32 plain (pad 8)", t_ref, f8, mm32),
        ("fp32 folded+CL (pad 4)", t_fast32, f4, mm32),
        (f"fast ({args.precision}): {fdt} folded+CL (pad 4)", t_fast, f4, mm_fast),
    ]
    if other is not None:
        odt = str(other.dtype).replace("torch.", "")
        rows.append((f"{odt} folded+CL (pad 4)", t["other"], f4, 2 * args.matmul**3 / t["mm_other"]))
    if "int8" in t:
        rows.append(("int8 folded (pad 4)", t["int8"], f4, None))
    print(f"  {'path':34s} {'s/map':>7s} {'GFLOP':>7s} {'GFLOP/s':>8s} {'of matmul':>9s}")
    for name, tt, f, mm in rows:
        print(
            f"  {name:34s} {tt:7.2f} {f / 1e9:7.0f} {f / tt / 1e9:8.0f} "
            + (f"{f / tt / mm:9.2f}" if mm else f"{'-':>9s}")
        )
    if "int8" in t:
        print(
            f"  int8: {t['fast32'] / t['int8']:.2f}x faster than fp32 folded+CL; its calibration on the map's"
            f" densest 32^3 cube takes {t['int8_calibrate']:.2f} s a map"
            f" (so {t['int8'] + t['int8_calibrate']:.2f} s in all)"
        )
    print(f"  speed-up of the fast path over plain fp32: {t_ref / t_fast:.1f}x")
    if other is not None:
        print(
            f"  --precision {args.precision} took {fdt}; {str(other.dtype).replace('torch.', '')} runs"
            f" {t['other'] / t_fast:.2f}x the time here (CPU native bf16: {cpu_supports_bf16()})"
        )

    # 2. agreement with fp32
    if args.model:
        trained, _ = load_checkpoint(args.model)
        label = f"checkpoint {args.model}"
    elif not REAL.is_dir():
        print(skipped("the brief width-1 training for the agreement figure; the shipped model is compared"))
        trained, label = None, ""
    else:
        t0 = time.perf_counter()
        trained = train_briefly(args.train_steps, 40)
        label = f"width-1 trained here ({args.train_steps} Adam steps on 40^3 patches, {time.perf_counter() - t0:.0f} s)"
    precisions = [args.precision] + (["int8"] if dev.type == "cpu" else [])
    print(f"\nlabel agreement with fp32 of the fast path ({args.precision}: {fdt}) and of int8")
    maps = {"bench map": density}
    for name, folder, mrc in (
        ("EMD-8518 box", "emd8518_5u8s_A", "A-1.0APIX.mrc"),
        ("EMD-3488 map", "emd3488_5me2", "emd_3488.mrc"),
    ):
        if (REAL / folder / mrc).exists():
            maps[name] = normalise_density(np.asarray(read_map(REAL / folder / mrc).data))
    shipped, _ = load_checkpoint(shipped_model_path())
    models = [(label, trained)] if trained is not None else []
    for name_, model in (*models, ("the shipped model (width 0.25, docs/model_card.md)", shipped)):
        print(f"  {name_}:")
        for name, d in maps.items():
            cls = (
                np.bincount(
                    sliding_window_probabilities(prepare_model(model, dev, "fp32"), d).argmax(0).ravel(),
                    minlength=3,
                )
                / d.size
            )
            print(
                f"    {name:13s} {'x'.join(map(str, d.shape))}, classes bg/helix/sheet {np.round(cls, 3).tolist()}"
            )
            for prec in precisions:
                print(f"      {prec:5s} {agreement(model, d, dev, prec)}")
    edge = knife_edge(DeepSSETracerUNet(1.0).eval(), density)
    print(
        "  knife-edge random network (classes balanced, most voxels near a boundary; worst case), bench map:"
    )
    for prec in precisions:
        print(f"      {prec:5s} {agreement(edge, density, dev, prec)}")

    # 3. a 400^3 map through cryosse predict, in a child process
    if args.big:
        with tempfile.TemporaryDirectory(prefix="bench_predict_") as tmp:
            ckpt = Path(tmp) / "w1.pt"
            save_checkpoint(ckpt, trained)
            r = big_run(args.big, ckpt, str(dev), args.threads, Path(tmp))
        print(
            f"\n{args.big}^3 map at 1 A through cryosse predict ({r['precision']}, tile {r['tile']}, overlap {r['overlap']}, {r['n_tiles']} tiles)"
        )
        print(
            f"  peak memory (ru_maxrss) {r['maxrss_mb'] / 1024:.2f} GB; wall {r['wall_s']:.0f} s (network {r['network_s']:.0f} s)"
        )


if __name__ == "__main__":
    main()
