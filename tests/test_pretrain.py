"""Pretraining (issue 13): patches, realistic simulation, sources, inventory, pairs, the workflow target.

Everything runs on data the project ships (the demo's bundled wwPDB structures), so these
tests pass on a fresh clone; the network part of the recipe is exercised at toy size.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import gemmi
import numpy as np
import pandas as pd
import pytest

from cryosse.acquire.simulate import SimParams, draw_sim_params, simulate_density, simulate_map
from cryosse.dataset.pairs import DatasetParams
from cryosse.patches import ROTATIONS, PatchSampler, rotate, solvent_value
from cryosse.pretrain import sources as src_mod
from cryosse.pretrain.inventory import InventoryParams, assign_roles, fold_class, inventory
from cryosse.pretrain.simulate import SimulationPlan, simulate_pairs
from cryosse.pretrain.sources import SourceError, fetch_source, write_provenance
from cryosse.train import Pair

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo_structures"
SMALL = ["2XDG", "2CVI", "3A4R", "1KYN"]  # small bundled entries: alpha/beta and all-beta


# ------------------------------------------------------------------ patches


def _pair(n: int = 40, centre: int = 6) -> Pair:
    rng = np.random.default_rng(0)
    dens = rng.normal(size=(n, n, n)).astype(np.float32)
    dens[:4] = dens.min() - 1.0
    labels = np.zeros((n, n, n), np.uint8)
    if n > 30:
        labels[20:23, 20:23, 20:23] = 1
        labels[10, 10, 30] = 2
    c = (centre, n - centre) * 3
    return Pair("p", dens, labels, c)  # type: ignore[arg-type]


def test_rotations_are_the_24_proper_ones():
    assert len(ROTATIONS) == 24
    a = np.arange(2 * 3 * 5).reshape(2, 3, 5)
    seen = {rotate([np.arange(27).reshape(3, 3, 3)], k)[0].tobytes() for k in range(24)}
    assert len(seen) == 24  # all distinct
    for perm, flips in ROTATIONS:  # determinant +1: no mirror image (helices keep their hand)
        m = np.eye(3)[list(perm)] * np.where(flips, -1, 1)[:, None]
        assert round(np.linalg.det(m)) == 1
    assert rotate([a], 0)[0].shape == a.shape


def test_foreground_windows_centre_on_secondary_structure():
    pair = _pair()
    s = PatchSampler(patch=8, batch=1, foreground=1.0)
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(50):
        _, lab, _ = s.window(pair, rng)
        hits += lab[4, 4, 4] > 0 or lab[3:6, 3:6, 3:6].any()
    assert hits == 50
    x, t, m = PatchSampler(patch=8, batch=3, foreground=0.5, rotate=True).batch_of([pair] * 3, rng)
    assert (
        tuple(x.shape) == (3, 1, 8, 8, 8)
        and tuple(t.shape) == (3, 8, 8, 8)
        and m.dtype.is_floating_point is False
    )


def test_padding_takes_the_solvent_value_and_is_masked():
    pair = _pair(n=10, centre=2)  # smaller than the patch: padded
    d, lab, m = PatchSampler(patch=16).window(pair, np.random.default_rng(0))
    assert d.shape == (16, 16, 16)
    assert np.all(d[10:] == solvent_value(pair.density)) and not m[10:].any() and not lab[10:].any()
    assert int(m.sum()) == 6**3
    with pytest.raises(ValueError, match="batch must be 1"):
        PatchSampler(patch=0, batch=2)
    with pytest.raises(ValueError, match="multiple of 4"):
        PatchSampler(patch=30)


# ------------------------------------------------------------------ simulation


def test_plain_parameters_are_the_demo_maps():
    st = gemmi.read_structure(str(DEMO / "2XDG.cif.gz"))
    a = simulate_density(st, 6.0, 1.2, 10.0, 0.1, 7, 90004)
    b = simulate_map(st, SimParams(6.0, 1.2, 10.0, 0.1), 7, 90004)
    assert a.data.tobytes() == b.data.tobytes() and a.contour_level == b.contour_level


def test_masks_noise_and_local_blur():
    st = gemmi.read_structure(str(DEMO / "2XDG.cif.gz"))
    plain = simulate_map(st, SimParams(7.0, 1.5, 12.0, 0.0), 1, 1)
    masked = simulate_map(
        st, SimParams(7.0, 1.5, 12.0, 0.3, noise_corr=4.0, mask_radius=3.0, mask_edge=2.0), 1, 1
    )
    unmasked = simulate_map(st, SimParams(7.0, 1.5, 12.0, 0.3, noise_corr=4.0), 1, 1)
    zeros = np.mean(masked.data == 0)
    assert 0.5 < zeros < 0.98 and np.mean(unmasked.data == 0) < 0.01  # a depositor's mask: mostly exact zeros
    inside = masked.data != 0
    assert np.allclose(masked.data[inside & (masked.data > 0.5 * masked.data.max())],
                       unmasked.data[inside & (masked.data > 0.5 * masked.data.max())], rtol=0.6)  # fmt: skip
    white = simulate_map(st, SimParams(7.0, 1.5, 12.0, 1.0), 1, 1).data - plain.data
    col = simulate_map(st, SimParams(7.0, 1.5, 12.0, 1.0, noise_corr=4.0), 1, 1).data - plain.data

    def lag1(n):
        return np.corrcoef(n[:, :, :-1].ravel(), n[:, :, 1:].ravel())[0, 1]

    assert abs(lag1(white)) < 0.05 and lag1(col) > 0.7
    blurred = simulate_map(st, SimParams(7.0, 1.5, 12.0, 0.0, b_local=150.0), 1, 1)
    ca = np.array([a.pos.tolist() for ch in st[0] for r in ch for a in r if a.name == "CA"])

    def at_ca(m):
        ijk = np.rint(m.geometry.xyz_to_index(ca)).astype(int)
        return m.data[ijk[:, 2], ijk[:, 1], ijk[:, 0]]

    a, b = at_ca(plain), at_ca(blurred)
    assert (
        b.mean() < 0.85 * a.mean() and b.std() > a.std()
    )  # extra B-factors flatten, unevenly along the chain
    p1 = draw_sim_params(
        np.random.default_rng(5), {"resolution": [5, 10], "mask_probability": 1.0, "mask_radius": [3, 4]}
    )
    p2 = draw_sim_params(
        np.random.default_rng(5), {"resolution": [5, 10], "mask_probability": 1.0, "mask_radius": [3, 4]}
    )
    assert p1 == p2 and 5 <= p1.resolution <= 10 and 3 <= p1.mask_radius <= 4


# ------------------------------------------------------------------ sources


def _deb(path: Path, files: dict[str, bytes]) -> None:
    """A minimal Debian package (ar archive with data.tar.xz) holding ``files``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo("./" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    members = [("debian-binary", b"2.0\n"), ("control.tar.xz", b""), ("data.tar.xz", buf.getvalue())]
    out = b"!<arch>\n"
    for name, data in members:
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode() + data
        out += b"\n" if len(data) % 2 else b""
    path.write_bytes(out)


def test_sources_from_packages_and_folders(tmp_path, monkeypatch):
    pdb = (DEMO / "2XDG.cif.gz").read_bytes()
    deb = tmp_path / "dl" / "pkg.deb"
    deb.parent.mkdir()
    _deb(deb, {"usr/share/x/a.cif.gz": pdb, "usr/share/x/readme.txt": b"hi", "usr/share/y/b.cif.gz": pdb})
    whl = tmp_path / "dl2" / "pkg-1.0-py3-none-any.whl"
    whl.parent.mkdir()
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr("pkg/data/c.cif.gz", pdb)
    tgz = tmp_path / "dl3" / "pkg-1.0.tar.gz"
    tgz.parent.mkdir()
    with tarfile.open(tgz, "w:gz") as tar:
        info = tarfile.TarInfo("pkg-1.0/tests/d.cif.gz")
        info.size = len(pdb)
        tar.addfile(info, io.BytesIO(pdb))
    archives = {"deb": deb, "whl": whl, "tgz": tgz}
    real_download = src_mod._download
    monkeypatch.setattr(src_mod, "_download", lambda source, tmp: archives[source["name"]])
    m = fetch_source({"name": "deb", "registry": "debian", "package": "p", "version": "1",
                      "include": ["usr/share/*.cif.gz"], "exclude": ["*/y/*"]}, tmp_path / "s" / "deb")  # fmt: skip
    assert m["member"].tolist() == ["usr/share/x/a.cif.gz"] and m["package"].iloc[0] == "p"
    assert (tmp_path / "s" / "deb" / "files" / "usr/share/x/a.cif.gz").read_bytes() == pdb
    assert m["sha256"].iloc[0] == hashlib.sha256(pdb).hexdigest()
    for name in ("whl", "tgz"):
        got = fetch_source({"name": name, "registry": "pypi", "package": "pkg", "version": "1.0",
                            "include": ["*.cif.gz"]}, tmp_path / "s" / name)  # fmt: skip
        assert len(got) == 1
    f = fetch_source({"name": "demo", "registry": "folder", "path": str(DEMO), "include": ["2*.cif.gz"]},
                     tmp_path / "s" / "demo")  # fmt: skip
    assert len(f) == len(list(DEMO.glob("2*.cif.gz")))
    prov = write_provenance([tmp_path / "s" / n / "manifest.tsv" for n in ("deb", "whl", "tgz", "demo")],
                            tmp_path / "prov.tsv")  # fmt: skip
    assert (tmp_path / "s" / prov["file"].iloc[0]).is_file()
    with pytest.raises(SourceError, match="no file matches"):
        fetch_source({"name": "deb", "registry": "debian", "package": "p", "version": "1",
                      "include": ["*.pdb"]}, tmp_path / "s" / "deb")  # fmt: skip
    assert (tmp_path / "s" / "deb" / "manifest.tsv").exists()  # a failed refetch keeps the last good copy
    with pytest.raises(SourceError, match="exact version"):
        real_download({"name": "x", "registry": "pypi", "package": "x"}, tmp_path)


# ------------------------------------------------------------------ inventory


@pytest.fixture(scope="module")
def provenance(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    base = tmp_path_factory.mktemp("sources")
    folder = base / "in"
    folder.mkdir()
    for name in SMALL:
        (folder / f"{name}.cif.gz").write_bytes((DEMO / f"{name}.cif.gz").read_bytes())
    (folder / "copy_of_2XDG.cif.gz").write_bytes((DEMO / "2XDG.cif.gz").read_bytes())  # same entry twice
    (folder / "broken.pdb").write_text("ATOM      1  CA  ALA A   1    not a coordinate\n")
    st = gemmi.read_structure(str(DEMO / "2CVI.cif.gz"))  # a backbone-only copy (side chains stripped)
    for ch in st[0]:
        for r in ch:
            for name in [a.name for a in r if a.name not in ("N", "CA", "C", "O")]:
                r.remove_atom(name, "\0")
    st.setup_entities()
    doc = st.make_mmcif_document()
    doc.sole_block().name = "BBONLY"
    with gzip.open(folder / "bbonly.cif.gz", "wt") as fh:
        fh.write(doc.as_string().replace("_entry.id 2CVI", "_entry.id BBONLY"))
    fetch_source({"name": "t", "registry": "folder", "path": str(folder), "include": ["*"]}, base / "t")
    return base, write_provenance([base / "t" / "manifest.tsv"], base / "prov.tsv")


def test_inventory_names_what_it_leaves_out(provenance):
    base, prov = provenance
    structures, chains, rejected = inventory(prov, base, InventoryParams())
    assert sorted(structures["structure"]) == sorted(SMALL)
    reasons = dict(zip(rejected["file"].str.split("/").str[-1], rejected["reason"], strict=True))
    assert reasons["broken.pdb"].startswith("unreadable")
    assert "duplicate of" in reasons["copy_of_2XDG.cif.gz"]
    assert "backbone-only" in reasons["bbonly.cif.gz"]
    assert set(chains["structure"]) == set(SMALL) and chains["sequence"].str.len().min() >= 30
    assert structures.set_index("structure").loc["1KYN", "fold"] == "all-beta"
    assert (
        fold_class(0.5, 0.0) == "all-alpha"
        and fold_class(0.1, 0.4) == "all-beta"
        and fold_class(0.02, 0.05) == "few-sse"
    )


def test_roles_exclude_relatives_and_draw_whole_families(provenance):
    base, prov = provenance
    structures, chains, _ = inventory(prov, base, InventoryParams())
    seq = chains.set_index("key").loc["2XDG:A", "sequence"]
    mutant = seq[:10] + "W" * 5 + seq[15:]  # a 90%-identical relative of 2XDG
    roles, fam = assign_roles(structures, chains, {"bench_X": mutant}, {}, 0.3, 0.3, seed=3)
    by = roles.set_index("structure")
    assert by.loc["2XDG", "role"] == "excluded" and "bench_X" in by.loc["2XDG", "excluded_by"]
    assert set(by["role"]) - {"excluded"} <= {"train", "val", "holdout"}
    again, _ = assign_roles(structures, chains, {"bench_X": mutant}, {}, 0.3, 0.3, seed=3)
    assert again.equals(roles)  # a function of the seed
    capped, _ = assign_roles(structures, chains, {}, {}, 0.0, 0.0, seed=3, max_per_family=1)
    rng = np.random.default_rng(0)
    distant = "".join(
        rng.choice(list("ACDEFGHIKLMNPQRSTVWY")) if rng.random() < 0.7 else ch for ch in seq
    )  # ~33%
    by = assign_roles(structures, chains, {}, {"demo_Y": distant}, 0.0, 0.0, seed=3)[0].set_index("structure")
    assert by.loc["2XDG", "role"] != "excluded"
    by = assign_roles(structures, chains, {}, {"demo_Y": mutant}, 0.0, 0.0, seed=3)[0].set_index("structure")
    assert by.loc["2XDG", "role"] == "excluded"
    assert (capped["role"] == "train").sum() == capped["families"].nunique()


def test_too_few_structures_stop_the_inventory_by_name(provenance, tmp_path, caplog):
    from cryosse.pretrain.inventory import run_inventory

    base, _ = provenance
    out = {k: tmp_path / f"{k}.tsv" for k in ("structures", "chains", "rejected", "families", "roles")}
    with (
        caplog.at_level("WARNING", logger="cryosse.pretrain.inventory"),
        pytest.raises(
            ValueError, match=r"prov.tsv: 4 usable structure\(s\) in \d+ sequence families .* too few"
        ),
    ):
        run_inventory(
            base / "prov.tsv", base, "", [], InventoryParams(), out, 0.0, 0.0, seed=1
        )  # no validation
    roles = run_inventory(base / "prov.tsv", base, "", [], InventoryParams(), out, 0.25, 0.25, seed=1)
    assert set(roles["role"]) >= {"train", "val"} and "a smaller set makes a model" in caplog.text


# ------------------------------------------------------------------ pairs


def test_pairs_are_deterministic_resume_and_survive_a_bad_structure(provenance, tmp_path):
    base, prov = provenance
    structures, chains, _ = inventory(prov, base, InventoryParams())
    roles, _ = assign_roles(structures, chains, {}, {}, 0.0, 0.25, seed=1)
    structures = pd.concat(
        [structures, structures.iloc[[0]].assign(structure="GONE", file="t/files/nothing.cif")]
    )
    roles = pd.concat([roles, pd.DataFrame([{"structure": "GONE", "role": "train"}])])
    structures.to_csv(tmp_path / "s.tsv", sep="\t", index=False)
    roles.to_csv(tmp_path / "r.tsv", sep="\t", index=False)
    plan = SimulationPlan(variants=2, chain_only_probability=0.5, seed=4,
                          ranges={"resolution": [5, 10], "voxel_size": [1.0, 2.0], "noise": [0.1, 0.4],
                                  "mask_probability": 0.5, "mask_radius": [3, 6]})  # fmt: skip

    def run(out: Path) -> pd.DataFrame:
        return simulate_pairs(tmp_path / "s.tsv", tmp_path / "r.tsv", base, out / "pairs", out / "d.tsv",
                              out / "split.tsv", out / "failed.tsv", plan, DatasetParams())  # fmt: skip

    a = run(tmp_path / "a")
    failed = pd.read_csv(tmp_path / "a" / "failed.tsv", sep="\t")
    assert failed["structure"].tolist() == ["GONE"] and "nothing.cif" in failed["reason"].iloc[0]
    assert set(a["structure"]) == set(SMALL) and set(a["variant"]) == {0, 1}
    sims = [
        json.loads(s.replace("'", '"').replace("True", "true").replace("False", "false")) for s in a["sim"]
    ]
    assert {s["convention"] for s in sims} <= {"origin", "nstart", "zero"}
    split = pd.read_csv(tmp_path / "a" / "split.tsv", sep="\t")
    assert set(split["role"]) <= {"train", "val", "test"} and len(split) == len(a)
    b = run(tmp_path / "b")

    def digest(out: Path, pid: str) -> str:
        with np.load(out / "pairs" / pid / "arrays.npz") as z:
            return hashlib.sha256(z["density"].tobytes() + z["labels"].tobytes()).hexdigest()

    assert a["pair_id"].tolist() == b["pair_id"].tolist()
    assert all(digest(tmp_path / "a", p) == digest(tmp_path / "b", p) for p in a["pair_id"])
    marker = tmp_path / "a" / "pairs" / ".done" / f"{SMALL[0]}.json"
    done = json.loads(marker.read_text())
    marker.write_text(
        json.dumps({**done, "pairs": done["pairs"][:1]})
    )  # resume: a finished structure is not redone
    again = run(tmp_path / "a")
    assert (again["structure"] == SMALL[0]).sum() == 1
    plan = SimulationPlan(variants=1, seed=4, ranges=plan.ranges)  # another plan: every structure is redone
    assert run(tmp_path / "a")["variant"].eq(0).all()


@pytest.mark.slow
def test_pretrain_target_runs_and_reruns_nothing(tmp_path):
    from conftest import copy_workflow, run_snakemake

    overlay = f"""
results: results/pt
resources: resources/pt
logs: logs/pt
pretrain:
  sources:
    - {{name: demo, registry: folder, path: data/demo_structures, include: [{", ".join(f'"{s}.cif.gz"' for s in SMALL)}]}}
  exclude_fasta: ""
  exclude_structures: []
  holdout_fraction: 0.25
  val_fraction: 0.25
  threads: 1
  simulate: {{variants: 1, ranges: {{resolution: [5, 10], mask_probability: 0.5, mask_radius: [3, 6]}}}}
  train: {{loss: FL_DL, setting: lr0.001_g1, width: 0.125, patch: 24, batch: 2, max_epochs: 2, max_steps_per_epoch: 3, threads: 1}}
  finetune: {{train: {{max_epochs: 1, input_lowpass: 1.0, realism: {{probability: 1.0}}}}}}
  spectrum: true
"""
    wf = copy_workflow(tmp_path / "wf", overlay=overlay)
    run_snakemake(wf, "pretrain", configfiles=["config/test.yaml"], cores=2)
    summary = (wf / "results" / "pt" / "report" / "summary.md").read_text()
    assert "held" not in summary or "holdout" in summary
    assert (
        "| all | holdout |" in summary
        and (wf / "results" / "pt" / "report" / "curves.png").stat().st_size > 1000
    )
    # the second stage starts from the first stage's network and keeps its own settings
    from cryosse.model import load_checkpoint

    _, first = load_checkpoint(wf / "results" / "pt" / "model" / "checkpoint.pt")
    second, meta = load_checkpoint(wf / "results" / "pt" / "finetuned" / "checkpoint.pt")
    assert meta["init_from"]["weights_sha256"] == first["weights_sha256"]
    assert second.model_args["input_lowpass"] == 1.0 and meta["train_config"]["realism"] == {
        "probability": 1.0
    }
    assert (
        meta["train_config"]["width"] == 0.125
        and (wf / "results" / "pt" / "report_finetuned" / "summary.md").exists()
    )
    # the first stage's weights with the amplitude profile of its training boxes, reported too
    spec, smeta = load_checkpoint(wf / "results" / "pt" / "model_spectrum" / "checkpoint.pt")
    assert smeta["weights_sha256"] == first["weights_sha256"]  # the digest of the weights: unchanged
    assert len(spec.model_args["input_spectrum"]) == 50 and smeta["input_spectrum_from"]["boxes"] > 0
    assert (wf / "results" / "pt" / "report_spectrum" / "summary.md").exists()
    prov = pd.read_csv(wf / "results" / "pt" / "inventory" / "provenance.tsv", sep="\t")
    assert set(prov["registry"]) == {"folder"} and prov["sha256"].str.len().eq(64).all()
    n = run_snakemake(wf, "pretrain", configfiles=["config/test.yaml"], cores=2, dry_run=True, timeout=300)
    assert "Nothing to be done" in n.stdout + n.stderr
