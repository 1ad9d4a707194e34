# train stage (SPEC 7-9): one job per (split, loss, setting), then model selection per split.
# The loss registry (cryosse.losses.LOSSES) and the configured grid's setting names
# (cryosse.train.grid_settings) are the wildcards' only values, so a loss or setting outside
# them never becomes a job. (Target helpers are lambdas: `snakemake --lint` flags `def`
# beside rules.)
import os
import re

from cryosse.losses import LOSSES
from cryosse.model import shipped_model_path
from cryosse.train import grid_settings, job_config

TRAIN = config["train"]
_unknown = sorted(set(TRAIN["losses"]) - set(LOSSES))
if _unknown:
    raise ValueError(
        f"config train.losses: unknown loss(es) {_unknown}; known: {list(LOSSES)}"
    )

# Every loss's settings in the configured grid, in the grid's order.
TRAIN_GRID = {
    loss: grid_settings(loss, TRAIN["lrs"], TRAIN["gammas"], TRAIN["term_weights"])
    for loss in TRAIN["losses"]
}
# The stage's final files: each split's selection and its models/{split}/{loss}.pt.
train_targets = lambda: [
    RESULTS / "train" / str(k) / "selection.tsv" for k in TRAIN["splits"]
] + [
    RESULTS / "models" / str(k) / f"{loss}.pt"
    for k in TRAIN["splits"]
    for loss in TRAIN["losses"]
]
# The selection's input: every setting's checkpoint of one split.
train_checkpoints = lambda wildcards: [
    RESULTS / "train" / wildcards.split / loss / setting / "checkpoint.pt"
    for loss, settings in TRAIN_GRID.items()
    for setting in settings
]
# Fine-tuning (train.init_from): the starting weights are an input, so new ones retrain;
# "package" is the shipped model, named relative to the working directory (moving both together
# reruns nothing).
TRAIN_START = (
    [os.path.relpath(shipped_model_path())]
    if TRAIN.get("init_from") == "package"
    else [TRAIN["init_from"]] if TRAIN.get("init_from") else []
)


rule train_setting:
    input:
        dataset=RESULTS / "dataset" / "dataset.tsv",
        split=RESULTS / "splits" / "split_{split}.tsv",
        start=TRAIN_START,
    output:
        checkpoint=RESULTS
        / "train"
        / "{split}"
        / "{loss}"
        / "{setting}"
        / "checkpoint.pt",
        history=RESULTS / "train" / "{split}" / "{loss}" / "{setting}" / "history.tsv",
    log:
        LOGS / "train" / "{split}" / "{loss}" / "{setting}.log",
    benchmark:
        LOGS / "benchmark" / "train" / "{split}" / "{loss}" / "{setting}.tsv"
    # state.pt (the resume state) lives beside them but is not an output: Snakemake
    # deletes the outputs of an interrupted job, and the rerun must find it.
    wildcard_constraints:
        split=r"\d+",
        loss="|".join(LOSSES),
        setting="|".join(re.escape(s) for v in TRAIN_GRID.values() for s in v),
    conda:
        "../../envs/train.yaml"
    threads: TRAIN["threads"]
    resources:
        gpu=TRAIN["gpus_per_job"],
        mem_mb=TRAIN["mem_mb"],
        runtime=TRAIN["runtime"],
    params:
        train=with_classes(job_config(TRAIN), CLASSES),
        seed=config["seed"],
    script:
        "../../scripts/train_setting.py"


rule train_select:
    input:
        checkpoints=train_checkpoints,
    output:
        table=RESULTS / "train" / "{split}" / "selection.tsv",
        models=expand(
            RESULTS / "models" / "{{split}}" / "{loss}.pt", loss=TRAIN["losses"]
        ),
    log:
        LOGS / "train" / "{split}" / "select.log",
    wildcard_constraints:
        split=r"\d+",
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        losses=TRAIN["losses"],
    script:
        "../../scripts/train_select.py"
