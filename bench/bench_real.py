"""A model on real cryo-EM chains: voxel F1 against labels made by our own dataset stage.

For each real chain in ``../shared/data/real`` (or ``--real``), the dataset stage's own code
(:func:`cryosse.dataset.pairs.build_pair`: 17 A padding, 1 A grid, normalisation, DSSP
nearest-CA labels from the fitted model) makes the pair; maps solved at high resolution
(haemoglobin 5ME2, the spike NTD 6VYB, both 3.2 A) are first blurred with a Gaussian to
``--blur`` A (sigma = 0.225 R, the width ChimeraX molmap gives a map of resolution R). The
model predicts the box as evaluation does (:func:`cryosse.infer.predict_probabilities`) and
helix and sheet F1 are counted on the centre box. Beside each, DeepSSETracer's own 2021
prediction (where the folder has one) is scored against the same labels, resampled onto
the pair's grid.

    python bench/bench_real.py                       # the shipped default model
    python bench/bench_real.py --checkpoint results/pretrain/model/checkpoint.pt --blur 6 8

Prints one row per chain and blur, and the targets: helix F1 at least DeepSSETracer 2021's on
5MDX L (0.833), 5MDX X (0.788) and 5U8S A (0.721); 5U8S A sheet >= 0.40; 5ME2 A and B helix
>= 0.75; 6VYB NTD sheet >= 0.50. ``--markdown FILE``
writes the table for the model card.

``--set validation`` scores our own real validation set instead (``data/validation``: maps
that are neither targets nor reserved, see docs/real_maps.md), each map blurred to each
``--blur`` with a Gaussian and, as deposited maps are post-processed, also sharpened
(B = ``--sharpen``) and low-passed with a soft edge at that resolution. Models and recipes
are chosen on this set, never on the targets.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from real_data import REAL, skipped

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
VALIDATION = ROOT / "data" / "validation"

from cryosse.dataset.crop import contour_level  # noqa: E402
from cryosse.dataset.entry import load_inputs  # noqa: E402
from cryosse.dataset.pairs import DatasetParams, build_pair  # noqa: E402
from cryosse.density import prepare_input  # noqa: E402
from cryosse.geometry import DensityMap, read_map, resample  # noqa: E402
from cryosse.infer import predict_probabilities  # noqa: E402
from cryosse.metrics import confusion, f1_from_counts  # noqa: E402
from cryosse.model import load_checkpoint  # noqa: E402
from cryosse.train import load_pair  # noqa: E402

#: (name, map, model, chain, native resolution A, DeepSSETracer 2021 prefix or None, targets)
CHAINS = [
    ("5MDX L", "emd3491_5mdx_L/L-1.0APIX.mrc", "emd3491_5mdx_L/L_fitted.pdb", "L", 5.3,
     "emd3491_5mdx_L/deepssetracer2021/L_pred", {"helix": 0.833}),
    ("5MDX X", "emd3491_5mdx_X/X-1.0APIX.mrc", "emd3491_5mdx_X/X_fitted.pdb", "X", 5.3,
     "emd3491_5mdx_X/deepssetracer2021/X_pred", {"helix": 0.788}),
    ("5U8S A", "emd8518_5u8s_A/A-1.0APIX.mrc", "emd8518_5u8s_A/A_fitted.pdb", "A", 6.1,
     "emd8518_5u8s_A/deepssetracer2021/A_pred", {"helix": 0.721, "sheet": 0.40}),
    ("5ME2 A", "emd3488_5me2/emd_3488.mrc", "emd3488_5me2/5me2.pdb", "A", 3.2, None, {"helix": 0.75}),
    ("5ME2 B", "emd3488_5me2/emd_3488.mrc", "emd3488_5me2/5me2.pdb", "B", 3.2, None, {"helix": 0.75}),
    ("6VYB NTD", "emd21457_6vyb_ntd/emd_21457_seg.mrc", "emd21457_6vyb_ntd/6vyb_Ndom.pdb", "A", 3.2, None,
     {"sheet": 0.50}),
]  # fmt: skip
#: our own validation set (data/validation; its README gives provenance and licence)
VALIDATION_CHAINS = [
    ("3AJO A", "emd20026_3ajo/emd20026_prot.mrc.gz", "emd20026_3ajo/3ajo_fitted_refined.pdb.gz", "A", 1.75,
     None, {}),
    ("5A1A A", "betagal_ngl_5a1a/betagal_ngl.mrc.gz", "betagal_ngl_5a1a/5a1a_placed.cif.gz", "A", 8.9,
     None, {}),
]  # fmt: skip


def blurred(dmap: DensityMap, native: float, target: float) -> DensityMap:
    """``dmap`` blurred from resolution ``native`` to ``target`` A (Gaussian, sigma = 0.225 R)."""
    from scipy import ndimage

    if target <= native:
        return dmap
    sigma = math.sqrt((0.225 * target) ** 2 - (0.225 * native) ** 2)
    vs = np.asarray(dmap.geometry.voxel_size)[::-1]  # z, y, x
    data = ndimage.gaussian_filter(np.asarray(dmap.data, np.float32), sigma / vs, mode="constant")
    return dataclasses.replace(dmap, data=data)


def sharpened(dmap: DensityMap, target: float, b: float) -> DensityMap:
    """``dmap`` post-processed as a deposited map at ``target`` A: sharpened by B = ``b`` A^2 and
    low-passed with a soft edge at ``target`` (:func:`cryosse.realism.soft_lowpass`)."""
    from scipy import fft

    from cryosse.realism import soft_lowpass

    data = np.asarray(dmap.data, np.float32)
    vs = np.asarray(dmap.geometry.voxel_size)[::-1]  # z, y, x
    f = [np.fft.fftfreq(n, d) for n, d in zip(data.shape[:2], vs[:2], strict=True)]
    s2 = (
        f[0][:, None, None] ** 2
        + f[1][None, :, None] ** 2
        + np.fft.rfftfreq(data.shape[2], vs[2])[None, None] ** 2
    )
    spec = fft.rfftn(data) * np.exp(-b * s2 / 4) * soft_lowpass(np.sqrt(s2), target)
    return dataclasses.replace(dmap, data=fft.irfftn(spec, data.shape).astype(np.float32))


def f1(pred: np.ndarray, truth: np.ndarray, k: int) -> float:
    return f1_from_counts(*confusion(pred, truth, k))


def rotation_average(model, density: np.ndarray, n: int) -> np.ndarray:
    """Class probabilities averaged over the first ``n`` of the cube's 24 rotations (test-time
    augmentation), each turned back before averaging."""
    from cryosse.patches import ROTATIONS, rotate

    total = None
    for k in range(n):
        perm, flips = ROTATIONS[k]
        p = predict_probabilities(model, rotate([density], k)[0], "cpu")
        p = np.flip(p, tuple(1 + ax for ax, f in enumerate(flips) if f))  # undo the flips, then the transpose
        p = np.transpose(p, (0, *(1 + int(i) for i in np.argsort(perm))))
        total = p if total is None else total + p
    return total / n


def score_chain(
    model, real: Path, row, blur: float, tmp: Path, sharpen: float | None = None, tta: int = 1
) -> dict:
    name, map_rel, model_rel, chain, native, dst, targets = row
    # The real boxes are tight crops (27-49% of a padded box lies inside some of them): keep them,
    # and leave the voxels beyond the crop out of the scores.
    params = dataclasses.replace(
        DatasetParams(), keep_bins=(1, 2, 3, 4), require_helix=False, min_box_inside=0.0
    )
    dmap, mdl, classes = load_inputs(real / map_rel, real / model_rel, params.dssp_engine)
    eff = blur if native < 5.0 else native  # only maps solved better than medium resolution
    dmap = blurred(dmap, native, eff) if sharpen is None else sharpened(dmap, eff, sharpen)
    contour, source = contour_level(dmap, None, params.contour_sd)
    out = tmp / f"{name.replace(' ', '_')}_{blur:g}_{sharpen}"
    build_pair(dmap, mdl, classes, chain, out, params, contour, source,
               {"emdb_id": "EMD-0", "pdb_id": name.split()[0], "resolution": eff}, write_mrc=False)  # fmt: skip
    pair = load_pair(name, out)
    t0 = time.perf_counter()
    density = prepare_input(pair.density, model.model_args)  # as every path that feeds a network
    prob = rotation_average(model, density, tta) if tta > 1 else predict_probabilities(model, density, "cpu")
    seconds = time.perf_counter() - t0
    z0, z1, y0, y1, x0, x1 = pair.centre
    pred, truth = prob.argmax(0)[z0:z1, y0:y1, x0:x1], pair.labels[z0:z1, y0:y1, x0:x1]
    keep = pair.inside[z0:z1, y0:y1, x0:x1] if pair.inside is not None else np.ones(truth.shape, bool)
    row_out = {"chain": name, "map_A": eff, "map": ("as deposited" if eff == native else "Gaussian") if sharpen is None else f"B {sharpen:g}", "box": "x".join(str(n) for n in pair.density.shape[::-1]),
               "helix_true": int((truth[keep] == 1).sum()), "sheet_true": int((truth[keep] == 2).sum()),
               "helix_f1": f1(pred[keep], truth[keep], 1), "sheet_f1": f1(pred[keep], truth[keep], 2),
               "inside": round(float(keep.mean()), 2), "seconds": seconds,
               "targets": targets}  # fmt: skip
    if dst:  # DeepSSETracer's own 2021 prediction of this (medium-resolution, never blurred) box
        import cryosse.geometry as g

        with np.load(out / "arrays.npz") as z:
            origin = tuple(float(v) for v in z["origin_xyz"])
        geom = g.MapGeometry(pair.density.shape, (1.0, 1.0, 1.0), origin)  # type: ignore[arg-type]
        masks = [resample(read_map(real / f"{dst}_{c}.mrc"), geom, order=0) > 0.5 for c in ("helix", "sheet")]
        theirs = np.where(masks[0], 1, np.where(masks[1], 2, 0))[z0:z1, y0:y1, x0:x1][keep]
        row_out["dst2021_helix_f1"] = f1(theirs, truth[keep], 1)
        row_out["dst2021_sheet_f1"] = f1(theirs, truth[keep], 2)
    return row_out


def pct(x: float) -> str:
    return "NA" if x is None or not np.isfinite(x) else f"{100 * x:.1f}"


def table(rows: list[dict], title: str) -> tuple[str, list[bool]]:
    head = ("| chain | map (A) | map made | box (x y z) | true helix / sheet voxels | helix F1 (%) | sheet F1 (%) "
            "| DeepSSETracer 2021 helix / sheet (%) | target |")  # fmt: skip
    lines = [title, "", head, "|---|---:|---|---|---:|---:|---:|---:|---|"]
    met = []
    for r in rows:
        tg = r["targets"]
        ok = [r[f"{k}_f1"] >= v for k, v in tg.items() if np.isfinite(r[f"{k}_f1"])]
        met += ok
        target = ", ".join(f"{k} >= {100 * v:.0f}" for k, v in tg.items()) + (
            (" met" if all(ok) else " NOT met") if tg else ""
        )
        dst = (
            f"{pct(r['dst2021_helix_f1'])} / {pct(r['dst2021_sheet_f1'])}" if "dst2021_helix_f1" in r else ""
        )
        lines.append(f"| {r['chain']} | {r['map_A']:g} | {r['map']} | {r['box']} | {r['helix_true']} / {r['sheet_true']} | "
                     f"{pct(r['helix_f1'])} | {pct(r['sheet_f1'])} | {dst} | {target} |")  # fmt: skip
    means = {k: [r[f"{k}_f1"] for r in rows if r[f"{k}_true"] >= 200 and np.isfinite(r[f"{k}_f1"])]
             for k in ("helix", "sheet")}  # fmt: skip
    lines.append("")
    lines.append("Mean over rows with >= 200 true voxels: " + ", ".join(
        f"{k} F1 {pct(float(np.mean(v))) if v else 'NA'}% ({len(v)} rows)" for k, v in means.items()))  # fmt: skip
    return "\n".join(lines), met


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", "--model", dest="model", default=None,
                    help="checkpoint (default: the model shipped with the package)")  # fmt: skip
    ap.add_argument(
        "--real", type=Path, default=REAL, help="folder of the real maps (default: $CRYOSSE_REAL_DATA)"
    )
    ap.add_argument("--set", choices=("targets", "validation"), default="targets", dest="which",
                    help="the target chains (default) or our own validation set (data/validation)")  # fmt: skip
    ap.add_argument(
        "--blur",
        type=float,
        nargs="+",
        default=[6.5],
        help="A; maps solved better than 5 A are blurred to each of these",
    )
    ap.add_argument("--sharpen", type=float, default=-100.0,
                    help="B (A^2) of the validation set's post-processed copies (default -100)")  # fmt: skip
    ap.add_argument("--tta", type=int, default=1, choices=range(1, 25), metavar="N",
                    help="average the probabilities over N of the cube's 24 rotations (default 1: none)")  # fmt: skip
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--markdown", type=Path, default=None, help="also write the table here")
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    folder, chains = (a.real, CHAINS) if a.which == "targets" else (VALIDATION, VALIDATION_CHAINS)
    if not folder.is_dir():
        print(skipped(f"every chain (no folder {folder})"))
        return 0
    if a.model is None:
        from cryosse.predict import resolve_model_path

        a.model = resolve_model_path(None)
    model, meta = load_checkpoint(a.model)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, blur in enumerate(a.blur):
            for row in chains:
                if i and row[4] >= 5.0:  # a medium-resolution map is never blurred: scored once
                    continue
                rows.append(score_chain(model, folder, row, blur, Path(tmp), tta=a.tta))
                if a.which == "validation":
                    rows.append(
                        score_chain(model, folder, row, blur, Path(tmp), sharpen=a.sharpen, tta=a.tta)
                    )
    args = meta["model_args"]
    title = (f"Model: {a.model} (width {args['width']:g}, input low-pass {args.get('input_lowpass', 0):g} A, "
             f"{meta.get('loss', {}).get('name')}); {a.which}")  # fmt: skip
    text, met = table(rows, title)
    if a.which == "targets":
        text += f"\n\n{sum(met)} of {len(met)} targets met."
    print(text)
    if a.markdown:
        a.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
