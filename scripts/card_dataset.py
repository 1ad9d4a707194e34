"""Rule dataset_card: the dataset card (Markdown + JSON); see cryosse.card.write_card."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from cryosse.card import write_card  # noqa: E402

i = snakemake.input
write_card(
    snakemake.output.md,
    snakemake.output.json,
    config=dict(snakemake.params.config),
    entry_table=i.entry_table,
    acquire_entries=i.acquire_entries,
    acquire_rejected=i.acquire_rejected,
    dataset=i.dataset,
    dataset_rejected=i.dataset_rejected,
    quality=i.quality,
    splits=list(i.splits),
    audit=i.audit,
    output_roots=snakemake.params.roots,
    env_files=list(i.envs),
    paper_cases=i.paper,
)
