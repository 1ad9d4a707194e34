"""Rule figures: every figure (PNG + PDF) from the stored results (no training, no prediction)."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: SIM115

from cryosse.figures import build_figures  # noqa: E402

p = snakemake.params
build_figures(
    snakemake.input.per_case,
    p.out_dir,
    p.gammas,
    p.eval_dir,
    snakemake.input.dataset,
    selection_tsv=snakemake.input.selection,
    main_split=p.main_split,
    n_boot=p.bootstrap,
    level=p.ci,
    seed=p.seed,
    n_slices=p.slices,
    external=snakemake.input.external,
)
