"""Training-step and inference throughput of the DeepSSETracer U-Net, and its roofline ratio.

Prints, for one box of ``--size``^3 voxels (default 112, width 1 = the paper's network):
  * training steps (forward, FL_DL loss over the centre box, backward, Adam) in voxels/s,
  * inference (forward, softmax) in voxels/s,
  * the convolutions' FLOPs (counted analytically from each layer's shapes) per second, and
    that figure over this machine's measured peak for a large matrix product
    (``torch.matmul`` of two ``--matmul``^2 matrices, measured in the same run), a ratio
    that can be compared across machines.
On CUDA it runs in bf16 autocast (as training does) and measures the matmul in bf16 too;
``--precision both`` measures fp32 and bf16 autocast in one run, each against the matmul
peak of its own dtype (on a CPU, bf16 pays only with AVX512-BF16 or AMX; ``lscpu`` says).

    python bench/bench_train.py                 # width 1, 112^3, device auto
    python bench/bench_train.py --size 64 --threads 2
    python bench/bench_train.py --width 0.25 --size 48 --threads 2 --precision both
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from cryosse.infer import conv_flops, pad_to_multiple, pick_device
from cryosse.losses import make_loss
from cryosse.model import DeepSSETracerUNet

ROOT = Path(__file__).resolve().parents[1]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device: torch.device, repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / repeats


def matmul_peak(device: torch.device, n: int, dtype: torch.dtype, repeats: int) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    dt = _timed(lambda: torch.matmul(a, b), device, repeats, 1)
    return 2.0 * n**3 / dt


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=112, help="box edge in voxels (padded to a multiple of 8)")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--matmul", type=int, default=4096, help="edge of the matrices of the peak measurement")
    ap.add_argument("--skip-train", action="store_true", help="inference only (e.g. too little memory)")
    ap.add_argument("--precision", choices=["auto", "fp32", "bf16", "both"], default="auto",
                    help="auto: bf16 autocast on a GPU, fp32 on a CPU (as training does by default); "
                    "both: fp32 then bf16 in one run")  # fmt: skip
    ap.add_argument(
        "--config",
        default=str(ROOT / "config" / "config.yaml"),
        help="the run whose training cost to estimate from the measured speed (its train: grid)",
    )
    ap.add_argument("--boxes", type=int, default=1246, help="training boxes per epoch (the paper's 1246)")
    ap.add_argument(
        "--box-voxels",
        type=float,
        default=5.9e5,
        help="mean voxels of a padded box (5.9e5: median of 1260 boxes cut from real chains)",
    )
    args = ap.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    if args.precision == "auto":
        precisions = ["bf16" if device.type == "cuda" else "fp32"]
    else:
        precisions = ["fp32", "bf16"] if args.precision == "both" else [args.precision]
    torch.manual_seed(0)
    x = torch.randn(1, 1, args.size, args.size, args.size)
    x, _ = pad_to_multiple(x)
    shape = tuple(x.shape[-3:])
    voxels = shape[0] * shape[1] * shape[2]
    model = DeepSSETracerUNet(width=args.width)
    flops_fwd = conv_flops(model, shape)
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU, {torch.get_num_threads()} threads"
    )
    print(f"device: {name}; torch {torch.__version__}")
    print(
        f"network: width {args.width:g}, box {shape[0]}x{shape[1]}x{shape[2]} ({voxels} voxels), "
        f"{flops_fwd / 1e9:.1f} GFLOP per forward pass (convolutions)"
    )
    train_speed = None
    for precision in precisions:  # measured in one run: the ratios between them hold on this machine
        speed = measure(model, x, device, precision, flops_fwd, args)
        train_speed = speed if precision == precisions[0] else train_speed
    if not args.skip_train and train_speed:
        paper_cost(args, train_speed)


def measure(
    model, x: torch.Tensor, device: torch.device, precision: str, flops_fwd: int, args
) -> float | None:
    """Inference and training-step speed in ``precision`` (bf16 = autocast), against the matmul
    peak in the same dtype; prints them and returns the training voxels/s."""
    model = model.to(device)
    x = x.to(device)
    shape = tuple(x.shape[-3:])
    voxels = shape[0] * shape[1] * shape[2]
    target = torch.randint(0, 3, (1, *shape), device=device)
    mask = torch.zeros((1, *shape), dtype=torch.bool, device=device)
    p = 17 if min(shape) > 40 else 0
    mask[:, p : shape[0] - p, p : shape[1] - p, p : shape[2] - p] = True
    loss = make_loss("FL_DL", gamma=1.0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    bf16 = precision == "bf16"

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    def infer() -> None:
        with torch.no_grad(), autocast():
            torch.softmax(model(x).float(), dim=1)

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast():
            logits = model(x)
        loss(logits.float(), target, mask).backward()
        opt.step()

    peak_dtype = torch.bfloat16 if bf16 else torch.float32
    peak = matmul_peak(device, args.matmul, peak_dtype, args.repeats)
    model.eval()
    rows = [("inference", _timed(infer, device, args.repeats, args.warmup), flops_fwd)]
    if not args.skip_train:
        model.train()
        # backward of a convolution costs about twice its forward (input and weight gradients)
        rows.append(("training step", _timed(train_step, device, args.repeats, args.warmup), 3 * flops_fwd))
    print(f"precision {'bf16 autocast' if bf16 else 'fp32'}; peak: {args.matmul}^2 matmul "
          f"({str(peak_dtype).replace('torch.', '')}): {peak / 1e9:.1f} GFLOP/s")  # fmt: skip
    for what, dt, flops in rows:
        achieved = flops / dt
        print(
            f"{what:>13}: {dt:8.3f} s/box  {voxels / dt:12.0f} voxels/s  "
            f"{achieved / 1e9:8.1f} GFLOP/s  {achieved / peak:6.1%} of matmul peak"
        )
    return voxels / rows[1][1] if len(rows) > 1 else None


def paper_cost(args: argparse.Namespace, train_voxels_per_s: float) -> None:
    """What the run of ``--config`` costs at the measured training speed: jobs, hours per epoch, total."""
    import yaml

    from cryosse.train import grid_settings

    train = yaml.safe_load(Path(args.config).read_text())["train"]
    per_split = sum(len(grid_settings(loss, train["lrs"], train["gammas"], train["term_weights"]))
                    for loss in train["losses"])  # fmt: skip
    jobs = per_split * len(train["splits"])
    epoch_h = args.boxes * args.box_voxels / train_voxels_per_s / 3600
    epochs = int(train["max_epochs"])
    print(
        f"cost of {args.config}: {per_split} settings x {len(train['splits'])} splits = {jobs} training jobs at"
        f" width {train['width']:g} (this run measured width {args.width:g}); one epoch of {args.boxes} boxes"
        f" of {args.box_voxels:.2g} voxels: {epoch_h:.2f} h here; {jobs} jobs x {epochs} epochs (the cap;"
        f" early stopping ends most sooner): at most {jobs * epochs * epoch_h:.0f} device-hours"
    )


if __name__ == "__main__":
    main()
