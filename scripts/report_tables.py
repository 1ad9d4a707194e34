"""Rule tables: every table from the stored per-case results (no training, no prediction)."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: SIM115

from cryosse.tables import build_tables  # noqa: E402

p = snakemake.params
build_tables(
    snakemake.input.per_case,
    p.out_dir,
    main_split=p.main_split,
    paper_cases=(snakemake.input.paper or [None])[0],
    paper_split_cases=(snakemake.input.paper_split or [None])[0],
    paper_columns=p.paper_columns,
    residue_loss=p.residue_loss,
    n_boot=p.bootstrap,
    level=p.ci,
    seed=p.seed,
    bands=p.bands,
    main_split_by=p.main_split_by,
    external=snakemake.input.external,
)
