"""The default config from the EMDB search to the tables, against an archive on loopback.

A server on 127.0.0.1 answers the EMDB search and serves maps, headers and mmCIF models laid
out as the archives lay them out. It holds:

* EMD-8518 / PDB 5U8S: the shipped real sample (a box of the deposited map around chain A,
  which is one of the paper's 62 test cases), its model as mmCIF. Its header states a
  contour level of 0.01, the median of the box's non-zero density (EMD-8518's own level is
  not shipped with the box, which is masked to the chain);
* EMD-3491 / PDB 5MDX: the real 5.3 A box around chain L, where ``$CRYOSSE_REAL_DATA`` has it;
* six entries simulated from bundled structures (synthetic ids) to train and validate on;
* one entry at 3.2 A, which the search answer lists and the resolution check drops.

Snakemake runs the default config with only the archive's addresses, a tiny training grid,
no cross-validation splits and, since the sample box holds only 46% of the padded box, a
lower ``dataset.min_box_inside``. It must plan the search first, write the entry table with
its query, test on the paper's case it finds, leave that case's relatives out of training,
say so in the audit and the card, render the tables, not search again on a rerun, and
estimate the run's cost (`snakemake estimate`) without fetching a map.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import (
    REAL,
    Server,
    archive_entry,
    archive_simulated,
    copy_workflow,
    planned_jobs,
    run_snakemake,
    write_mmcif,
)
from cryosse.acquire.emdb import header_v3_xml

ROOT = Path(__file__).resolve().parents[1]
SIMULATED = {"EMD-91301": "2CVI", "EMD-91302": "3A4R", "EMD-91303": "2XDG", "EMD-91304": "1I8N",
             "EMD-91305": "2VA0", "EMD-91306": "1MR1"}  # fmt: skip


def _archive(base: Path) -> tuple[Path, list[str]]:
    """The archive folder and the search answer's rows (emdb_id, resolution, pdb, date)."""
    mirror, rows = base / "archive", []
    sample = ROOT / "data" / "sample"
    kb = len(gzip.decompress((sample / "emd_8518_5u8s_A_box.mrc.gz").read_bytes())) / 1024
    archive_entry(mirror, "EMD-8518",
                  header_v3_xml("EMD-8518", 6.1, 0.01, "author", 1.0, ["5U8S"], "2017-01-18", map_kbytes=kb),
                  sample / "emd_8518_5u8s_A_box.mrc.gz", "5U8S",
                  write_mmcif(sample / "5u8s_A.pdb.gz", "5U8S", base / "5u8s.cif.gz"))  # fmt: skip
    rows.append("EMD-8518,6.1,5U8S,singleParticle,2017-01-18")
    real = REAL / "emd3491_5mdx_L"
    if (real / "L-1.0APIX.mrc").is_file():
        archive_entry(mirror, "EMD-3491", header_v3_xml("EMD-3491", 5.3, None, "none", 1.0, ["5MDX"], "2016-11-16"),
                      real / "L-1.0APIX.mrc", "5MDX", write_mmcif(real / "L_fitted.pdb", "5MDX", base / "5mdx.cif.gz"))  # fmt: skip
        rows.append("EMD-3491,5.3,5MDX,singleParticle,2016-11-16")
    for emdb_id, pdb in SIMULATED.items():
        archive_simulated(mirror, base / "sim", emdb_id, pdb, ROOT / "data" / "demo_structures", "2017-06-01")
        rows.append(f"{emdb_id},6.5,{pdb},singleParticle,2017-06-01")
    rows.append("EMD-91399,3.2,9ZZZ,singleParticle,2017-06-01")  # outside 5-10 A: never fetched
    return mirror, rows


def _tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", comment="#", dtype=str, keep_default_na=False)


@pytest.mark.slow
def test_the_default_run_from_the_search_to_the_tables(tmp_path):
    mirror, rows = _archive(tmp_path / "build")
    with Server(mirror) as srv:
        srv.search_body = ("emdb_id,resolution,fitted_pdbs,structure_determination_method,release_date\n"
                           + "\n".join(rows) + "\n").encode()  # fmt: skip
        overlay = {
            "acquire": {"emdb_api": f"{srv.url}/api", "emdb_files": f"{srv.url}/files/structures",
                        "pdb_files": f"{srv.url}/files/mmCIF", "retries": 0, "timeout_s": 30},
            "dataset": {"min_box_inside": 0.4},
            "split": {"n_cv": 0, "min_train_pairs": 2},
            "train": {"losses": ["CE", "FL_DL"], "lrs": [1.0e-3], "gammas": [2], "splits": [0], "width": 0.125,
                      "max_epochs": 1, "patience": 1, "patch": 24, "max_steps_per_epoch": 2, "threads": 1,
                      "gpus_per_job": 0, "mem_mb": 1000, "runtime": 10, "device": "cpu"},
            "evaluate": {"bootstrap": 20, "device": "cpu", "slice_cases": 1},
        }  # fmt: skip
        wf = copy_workflow(tmp_path / "wf", overlay=yaml.safe_dump(overlay), overlay_name="loopback.yaml")
        cfg = ["config/config.yaml", "config/loopback.yaml"]
        plan = planned_jobs(run_snakemake(wf, configfiles=cfg, dry_run=True))
        assert plan.get("emdb_search") == 1 and "acquire_entry" not in plan  # the search first
        assert not srv.hits, "a dry run asks the archive nothing"
        run_snakemake(wf, configfiles=cfg, cores=2, timeout=1500)

        res = wf / "results"
        table = (res / "acquire" / "emdb_search.tsv").read_text()
        assert table.startswith("# EMDB search of ") and "# query: current_status" in table
        assert "release_date:[* TO 2018-12-31T23:59:59Z]" in table and srv.url in table
        searched = _tsv(res / "acquire" / "emdb_search.tsv")
        assert "EMD-91399" not in set(searched["emdb_id"]) and len(searched) == len(rows) - 1
        assert not any("91399" in p for p in srv.hits)
        assert set(_tsv(res / "acquire" / "entries.tsv")["emdb_id"]) == set(searched["emdb_id"])

        # the paper's case the archive serves is the test set; the audit and the card say so
        split0 = _tsv(res / "splits" / "split_0.tsv")
        assert split0.loc[split0["role"] == "test", "pair_id"].tolist() == ["8518_5U8S_A"]
        paper = _tsv(res / "splits" / "paper_cases.tsv")
        assert (
            paper.loc[paper["status"] == "used", "case_id"].tolist() == ["8518_5U8S_A"] and len(paper) == 62
        )
        assert "1 of the 62 found and used" in (res / "splits" / "audit.md").read_text()
        assert "1 of the 62 found and used" in (res / "dataset_card.md").read_text()
        table1 = (res / "tables" / "table1.md").read_text()
        assert "| CE " in table1 and "| FL_DL " in table1
        assert "8518_5U8S_A" in (res / "tables" / "table2.md").read_text()

        # a rerun with the table in place and the search settings unchanged searches nothing
        before = dict(srv.hits)
        plan = planned_jobs(run_snakemake(wf, configfiles=cfg, dry_run=True))
        assert "emdb_search" not in plan and srv.hits == before

        # what it would cost: from the search's table and a sample of headers and models
        proc = run_snakemake(wf, "estimate", configfiles=cfg)
        text = (res / "estimate.md").read_text()
        assert f"Entries: **{len(searched)}**" in text and text in proc.stdout
        assert f"Sampled now: {len(searched)} entries" in text and "| download |" in text
        assert sum(n for p, n in srv.hits.items() if "/map/" in p) == sum(
            n for p, n in before.items() if "/map/" in p
        ), "the estimate fetches no map"
