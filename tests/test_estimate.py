"""`cryosse estimate` against an archive on loopback: the entries counted, a sample's headers and
models measured (never a map), the rates applied, and an entry that cannot be measured named."""

from __future__ import annotations

from pathlib import Path

import gemmi
import numpy as np
import pytest

from conftest import Server, archive_entry
from cryosse import estimate as E
from cryosse.acquire.emdb import header_v3_xml
from cryosse.cli import main

ROOT = Path(__file__).resolve().parents[1]
ENTRIES = {"EMD-91401": ("2CVI", 120_000), "EMD-91402": ("3A4R", 250_000), "EMD-91403": ("2XDG", None)}


def _box_voxels(cif_gz: Path, padding: float = 17.0) -> list[int]:
    st = gemmi.read_structure(str(cif_gz))
    out = []
    for ch in st[0]:
        ca = np.array([[a.pos.x, a.pos.y, a.pos.z] for r in ch for a in r if a.name == "CA"])
        if len(ca) >= 30:
            out.append(int(np.prod(np.ceil(ca.max(0) - ca.min(0) + 2 * padding))))
    return out


@pytest.fixture()
def archive(tmp_path):
    root = tmp_path / "archive"
    for eid, (pdb, kb) in ENTRIES.items():
        archive_entry(
            root,
            eid,
            header_v3_xml(eid, 6.0, 0.1, "author", 1.0, [pdb], "2017-01-01", map_kbytes=kb),
            pdb=pdb,
            model=ROOT / "data" / "demo_structures" / f"{pdb}.cif.gz",
        )
    table = tmp_path / "entries.tsv"
    table.write_text("emdb_id\tpdb_id\tchain\n" + "".join(f"{e}\t\t\n" for e in [*ENTRIES, "EMD-91499"]))
    with Server(root) as srv:
        cfg = tmp_path / "c.yaml"
        cfg.write_text(f"acquire:\n  emdb_api: {srv.url}/api\n  emdb_files: {srv.url}/files/structures\n"
                       f"  pdb_files: {srv.url}/files/mmCIF\n  retries: 0\n  timeout_s: 5\n")  # fmt: skip
        yield srv, table, cfg


def test_estimate_measures_a_sample_and_applies_the_rates(archive, tmp_path, capsys):
    srv, table, cfg = archive
    out = tmp_path / "estimate.md"
    assert main(["estimate", str(table), "-c", str(cfg), "--sample", "10", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert text == out.read_text() and "Entries: **4**" in text
    assert "Not measured (1): EMD-91499:" in text and "404" in text  # named, and the rest goes on
    assert not any("/map/" in p for p in srv.hits), "an estimate never downloads a map"

    boxes = {
        e: _box_voxels(ROOT / "data" / "demo_structures" / f"{pdb}.cif.gz") for e, (pdb, _) in ENTRIES.items()
    }
    from cryosse.acquire.stage import AcquireSettings
    from cryosse.config import load

    settings = AcquireSettings.from_config(load([cfg]))
    rows = [{"emdb_id": e, "pdb_id": ""} for e in ENTRIES]
    sample, failed = E.sample_entries(settings, rows, 10, 0, 30, 17.0)
    assert not failed and {s["emdb_id"]: s["box_voxels"] for s in sample} == boxes
    est = E.estimate(4, sample, n_settings=33, n_splits=5, max_epochs=100, train_share=0.92, tflops=100)
    chains = sum(len(b) for b in boxes.values()) / 3
    assert est["pairs_at_most"] == pytest.approx(4 * chains)
    assert est["map_mb_mean"] == pytest.approx((120_000 + 250_000) / 2 / 1024)  # the headers that state it
    box = np.mean([v for b in boxes.values() for v in b])
    grid = 4 * chains * 0.92 * box * 100 * 33 * 5
    assert est["grid_cpu_hours"] == pytest.approx(grid / E.RATES["train_voxels_per_s"][0] / 3600)
    assert est["grid_gpu_hours"] == pytest.approx(grid * 4.84e6 / 1e14 / 3600)
    assert est["dataset_disk_gb"] == pytest.approx(4 * chains * box * 10 / 2**30)


def test_an_unreachable_archive_is_named_not_hidden(tmp_path, capsys):
    table = tmp_path / "entries.tsv"
    table.write_text("emdb_id\tpdb_id\tchain\nEMD-1\t1ABC\t\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("acquire:\n  emdb_files: http://127.0.0.1:9/files\n  pdb_files: http://127.0.0.1:9/m\n"
                   "  retries: 0\n  timeout_s: 2\n")  # fmt: skip
    assert main(["estimate", str(table), "-c", str(cfg)]) == 0
    text = capsys.readouterr().out
    assert (
        "Sampled now: 0 entries" in text
        and "| download | unknown GB" in text
        and "Not measured (1): EMD-1:" in text
    )
