"""How long ``cryosse predict`` takes with the shipped model, per precision, on this machine.

The figures docs/usage.md quotes come from here: for the sample box
(``data/sample``, always) and EMD-1997 (a whole 202 A GroEL map, 8 tiles; from the real maps
where present), each precision path of the command as a user runs it, in one run:

* ``auto`` with an empty precision cache (the first run on a machine: it times fp32 against
  bf16 on a small box), then ``auto`` again (the cached choice), ``fp32``, ``bf16``, ``int8``;
* per path, the whole command (a new process: Python start-up, imports, reading, writing)
  and the prediction alone (``summary.json``'s ``timing_s.total``), the median of
  ``--repeat`` runs.

The machine (CPU model, native bf16 or not, threads) is printed first; compare figures from
one run only.

    python bench/bench_shipped.py                 # the sample, and EMD-1997 where present
    python bench/bench_shipped.py --repeat 3 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from real_data import REAL, ROOT, skipped

sys.path.insert(0, str(ROOT / "src"))
from cryosse.machine import cpu_has_bf16, cpu_has_vnni, cpu_name  # noqa: E402

SAMPLE = ROOT / "data" / "sample" / "emd_8518_5u8s_A_box.mrc.gz"
PATHS = ("auto, first run", "auto", "fp32", "bf16", "int8")


def run_once(map_path: Path, precision: str, cache: Path, threads: int) -> tuple[float, dict]:
    """One ``cryosse predict`` in a new process: its wall time and its summary.json."""
    with tempfile.TemporaryDirectory(prefix="bench-shipped-") as tmp:
        out = Path(tmp) / "pred"
        env = {**os.environ, "CRYOSSE_CACHE": str(cache), "OMP_NUM_THREADS": str(threads)}
        cmd = [sys.executable, "-m", "cryosse.cli", "predict", str(map_path), "-o", str(out),
               "--precision", precision, "--threads", str(threads)]  # fmt: skip
        t0 = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if done.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
        return wall, json.loads((out / "summary.json").read_text())


def time_map(map_path: Path, repeat: int, threads: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as cache_dir:
        cache = Path(cache_dir)
        for path in PATHS:
            precision = "auto" if path.startswith("auto") else path
            runs = []
            for _ in range(1 if path == "auto, first run" else repeat):
                if path == "auto, first run":
                    for f in cache.iterdir():  # an empty cache: the first run on a machine
                        f.unlink()
                runs.append(run_once(map_path, precision, cache, threads))
            took = runs[-1][1]
            rows.append({
                "path": path,
                "took": took["precision"],
                "command_s": statistics.median(r[0] for r in runs),
                "prediction_s": statistics.median(r[1]["timing_s"]["total"] for r in runs),
                "network_s": statistics.median(r[1]["timing_s"]["network"] for r in runs),
                "tiles": took["tiling"]["n_tiles"],
            })  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=2, help="runs per path (the median is printed)")
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    a = ap.parse_args()
    print(f"machine: {cpu_name()}; native bf16: {'yes' if cpu_has_bf16() else 'no'}; "
          f"VNNI: {'yes' if cpu_has_vnni() else 'no'}; {a.threads} threads of {os.cpu_count()}; "
          f"{time.strftime('%Y-%m-%d')}")  # fmt: skip
    maps = [("sample (EMD-8518 box, 91x81x55 at 1 A)", SAMPLE)]
    groel = REAL / "emd1997_groel"
    found = sorted(groel.glob("*.map*")) + sorted(groel.glob("*.mrc*")) if groel.is_dir() else []
    if found:
        maps.append(("EMD-1997 (GroEL, 100^3 at 2.02 A)", found[0]))
    else:
        print(skipped("EMD-1997"))
    print(f"{'map':<40}{'path':<17}{'took':<6}{'command (s)':>12}{'prediction (s)':>16}{'network (s)':>13}")
    for name, path in maps:
        for r in time_map(path, a.repeat, a.threads):
            print(f"{name:<40}{r['path']:<17}{r['took']:<6}{r['command_s']:>12.2f}{r['prediction_s']:>16.2f}"
                  f"{r['network_s']:>13.2f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
