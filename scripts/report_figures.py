"""Rule figures: every figure (PNG + PDF) from the stored results (no training, no prediction)."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115

from cryosse.figures import build_figures  # noqa: E402

p = snakemake.params  # noqa: F821
build_figures(
    snakemake.input.per_case,
    p.out_dir,
    p.gammas,
    p.eval_dir,
    snakemake.input.dataset,  # noqa: F821
    selection_tsv=snakemake.input.selection,
    main_split=p.main_split,  # noqa: F821
    n_boot=p.bootstrap,
    level=p.ci,
    seed=p.seed,
    n_slices=p.slices,
    external=snakemake.input.external,  # noqa: F821
)
