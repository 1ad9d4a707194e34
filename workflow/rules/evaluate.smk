# evaluate stage (SPEC 10): predict every test case of a split with each loss's
# selected model; per-case voxel and residue F1; predicted label maps (MRC).
# (Target helpers are lambdas: `snakemake --lint` flags `def` beside rules.)

EVAL_SPLITS = [str(k) for k in config["train"]["splits"]]
EVAL_LOSSES = list(config["train"]["losses"])

evaluate_targets = lambda: [
    RESULTS / "eval" / s / loss / "per_case.tsv"
    for s in EVAL_SPLITS
    for loss in EVAL_LOSSES
]


rule evaluate_split:
    input:
        model=RESULTS / "models" / "{split}" / "{loss}.pt",
        split=RESULTS / "splits" / "split_{split}.tsv",
        dataset=RESULTS / "dataset" / "dataset.tsv",
    output:
        per_case=report(
            RESULTS / "eval" / "{split}" / "{loss}" / "per_case.tsv",
            caption="../report/per_case.rst",
            category="Per-case results",
            labels={"split": "{split}", "loss": "{loss}"},
        ),
        pred=directory(RESULTS / "eval" / "{split}" / "{loss}" / "pred"),
    log:
        LOGS / "evaluate" / "{split}" / "{loss}.log",
    benchmark:
        LOGS / "benchmark" / "evaluate" / "{split}" / "{loss}.tsv"
    wildcard_constraints:
        split=r"\d+",
        loss="|".join(LOSSES),
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        radius=config["evaluate"]["residue_radius"],
        ties=config["evaluate"]["residue_ties"],
        device=config["evaluate"]["device"],
    script:
        "../../scripts/evaluate_split.py"
