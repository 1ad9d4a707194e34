# What the run will cost, before it starts: `snakemake estimate` runs the EMDB search (when
# entries: search) and samples a few entries' headers and models, never a map, then prints the
# estimate and writes it to {results}/estimate.md (cryosse.estimate).


rule estimate:
    input:
        entries=ENTRY_TABLE,
    output:
        RESULTS / "estimate.md",
    log:
        LOGS / "estimate.log",
    localrule: True
    conda:
        "../../envs/acquire.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        n_settings=sum(len(v) for v in TRAIN_GRID.values()),
    script:
        "../../scripts/estimate.py"
