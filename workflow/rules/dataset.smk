# dataset stage (SPEC 2-5): per entry, chain selection, quality bins, box crops and
# DSSP labels; then the dataset table (kept pairs) and the rejection table.
# Pair folders results/dataset/pairs/{pair_id}/ are written by dataset_entry (how
# many is known only once the model is read); each appears whole, by rename.

# The target list of `snakemake dataset` (a lambda: this file holds rules only).
dataset_targets = lambda: [
    RESULTS / "dataset" / "dataset.tsv",
    RESULTS / "dataset" / "rejected.tsv",
    RESULTS / "dataset" / "quality.tsv",
]


rule dataset_entry:
    input:
        record=RESOURCES / "archive" / "{entry}" / "record.json",
    output:
        table=RESULTS / "dataset" / "entries" / "{entry}.tsv",
    log:
        LOGS / "dataset" / "{entry}.log",
    benchmark:
        LOGS / "benchmark" / "dataset" / "{entry}.tsv"
    conda:
        "../../envs/dataset.yaml"
    threads: 1
    resources:
        mem_mb=entry_mem_mb,
        runtime=60,
    params:
        pairs=RESULTS / "dataset" / "pairs",
        cfg=with_classes(config["dataset"], CLASSES),
    script:
        "../../scripts/dataset_entry.py"


rule dataset_tables:
    input:
        tables=lambda wildcards: expand(
            RESULTS / "dataset" / "entries" / "{entry}.tsv", entry=entry_ids()
        ),
    output:
        dataset=RESULTS / "dataset" / "dataset.tsv",
        rejected=RESULTS / "dataset" / "rejected.tsv",
        quality=RESULTS / "dataset" / "quality.tsv",
    log:
        LOGS / "dataset" / "tables.log",
    conda:
        "../../envs/dataset.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../../scripts/dataset_tables.py"
