# train stage (SPEC 7-9): one job per (split, loss, setting), then model selection per split.
# The loss registry (cryosse.losses.LOSSES) and the setting names (cryosse.train) feed the
# wildcards, so a loss or setting the package does not know never becomes a job.
import os
from functools import partial

from cryosse.losses import LOSSES
from cryosse.model import shipped_model_path
from cryosse.train import (
    SETTING_WILDCARD,
    job_config,
    split_checkpoints,
    workflow_targets,
)

TRAIN = config["train"]
_unknown = sorted(set(TRAIN["losses"]) - set(LOSSES))
if _unknown:
    raise ValueError(
        f"config train.losses: unknown loss(es) {_unknown}; known: {list(LOSSES)}"
    )

# Target lists and the selection's input function (logic in cryosse.train, tested there).
train_targets = partial(workflow_targets, TRAIN, RESULTS)
train_checkpoints = partial(split_checkpoints, TRAIN, RESULTS)
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
        setting=SETTING_WILDCARD,
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
