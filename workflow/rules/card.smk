# Dataset card (results/dataset_card.md + .json) after the dataset and split stages:
# software versions, the config and its hash, counts at each filter with reasons, split
# sizes, the leakage audit and the sha256 of every output file (cryosse.card).


card_targets = lambda: [RESULTS / "dataset_card.md", RESULTS / "dataset_card.json"]


rule dataset_card:
    input:
        entry_table=ENTRY_TABLE,
        acquire_entries=RESULTS / "acquire" / "entries.tsv",
        acquire_rejected=RESULTS / "acquire" / "rejected.tsv",
        dataset=RESULTS / "dataset" / "dataset.tsv",
        dataset_rejected=RESULTS / "dataset" / "rejected.tsv",
        quality=RESULTS / "dataset" / "quality.tsv",
        splits=expand(
            RESULTS / "splits" / "split_{k}.tsv", k=range(config["split"]["n_cv"] + 1)
        ),
        audit=RESULTS / "splits" / "audit.tsv",
        paper=RESULTS / "splits" / "paper_cases.tsv",
        stages=acquire_targets() + dataset_targets() + split_targets(),
        # relative to the workflow: a moved or copied results folder reruns nothing
        envs=sorted(
            str(p.relative_to(workflow.basedir))
            for p in Path(workflow.basedir, "envs").glob("*.yaml")
        ),
    output:
        md=report(
            RESULTS / "dataset_card.md",
            caption="../report/dataset_card.rst",
            category="Dataset and splits",
            labels={"name": "Dataset card"},
        ),
        json=RESULTS / "dataset_card.json",
    log:
        LOGS / "dataset_card.log",
    conda:
        "../../envs/card.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        config=config,
        roots=[RESULTS / "acquire", RESULTS / "dataset", RESULTS / "splits"],
    script:
        "../../scripts/card_dataset.py"
