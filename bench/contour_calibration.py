"""How depositors' contour levels sit in their maps' statistics, and what the fallback does to bins.

The dataset stage estimates a missing contour level as mean + k sd of the full map
(``dataset.contour_sd``). This prints:

1. k = (level - mean) / sd for every EMDB header with both a recommended level and map
   statistics that we hold (``docs/contour_calibration.tsv``: 15 public headers from wwPDB's own
   test data, plus EMD-1997 from ../shared/data/real), by resolution band;
2. where the real haemoglobin map EMD-3488 (../shared/data/real, 3.2 A, blurred to 6.5 and 8 A)
   puts chains A and B for k = 1.5 ... 3.0: precision, recall, |P - R| and the bin.

    python bench/contour_calibration.py [--real ../shared/data/real]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from real_data import REAL, skipped

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def header_table() -> None:
    t = pd.read_csv(ROOT / "docs" / "contour_calibration.tsv", sep="\t")
    bands = {"all": t, "< 5 A": t[t["resolution"] < 5], "5-10 A": t[(t["resolution"] >= 5) & (t["resolution"] <= 10)],
             "> 10 A": t[t["resolution"] > 10]}  # fmt: skip
    print("k = (recommended level - map mean) / map sd, per resolution band")
    print(f"{'band':8} {'n':>3} {'min':>6} {'q1':>6} {'median':>6} {'q3':>6} {'max':>6}")
    for name, sub in bands.items():
        k = sub["k"].to_numpy(float)
        if len(k):
            q = np.quantile(k, [0, 0.25, 0.5, 0.75, 1])
            print(f"{name:8} {len(k):3d} " + " ".join(f"{v:6.2f}" for v in q))
        else:
            print(f"{name:8} {0:3d}")


def haemoglobin_sweep(real: Path) -> None:
    from bench_real import blurred

    from cryosse.dataset.entry import load_inputs
    from cryosse.dataset.pairs import DatasetParams, build_pair
    from cryosse.density import map_statistics

    d = real / "emd3488_5me2"
    if not d.is_dir():
        print(f"\n{d} not found: the EMD-3488 sweep is skipped")
        return
    dmap, model, classes = load_inputs(d / "emd_3488.mrc", d / "5me2.pdb", "pydssp")
    params = dataclasses.replace(DatasetParams(), keep_bins=(1, 2, 3, 4))
    print("\nEMD-3488 (haemoglobin, full deposited map) at mean + k sd: precision, recall, |P-R|, bin")
    with tempfile.TemporaryDirectory() as tmp:
        for res in (6.5, 8.0):
            b = blurred(dmap, 3.2, res)
            mean, sd = map_statistics(b)
            for k in (1.5, 2.0, 2.5, 3.0):
                cells = []
                for chain in "AB":
                    row = build_pair(b, model, classes, chain, Path(tmp) / f"{res}{k}{chain}", params, mean + k * sd,
                                     "estimated", {"emdb_id": "EMD-3488", "pdb_id": "5ME2"}, write_mrc=False)  # fmt: skip
                    cells.append(f"{chain}: P {row['precision']:.2f} R {row['recall']:.2f} "
                                 f"|P-R| {row['pr_diff']:.2f} bin {row['bin']}")  # fmt: skip
                print(f"{res:4.1f} A  k {k:.1f}   " + "   ".join(cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--real", type=Path, default=REAL, help="real-map folder (default: $CRYOSSE_REAL_DATA)")
    args = ap.parse_args()
    header_table()
    if (args.real / "emd3488_5me2").is_dir():
        haemoglobin_sweep(args.real)
    else:
        print(skipped("the haemoglobin sweep"))


if __name__ == "__main__":
    main()
