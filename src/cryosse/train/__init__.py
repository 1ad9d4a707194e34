"""Training one setting (SPEC 9), resuming after a kill, and model selection per loss.

One call of :func:`train_setting` trains the network for one (split, loss,
setting) on the split's training pairs and validates it every epoch on the
split's validation pairs:

* Adam, batch of one box (boxes differ in size), optionally a random ``patch``^3
  crop around a point of the centre box (CPU demos); boxes are zero-padded to a
  multiple of 8 and the loss sees the centre-box voxels only (the mask).
* CUDA with bf16 autocast where present, CPU otherwise (``device: auto``); the
  device is recorded in the history and the checkpoint.
* Fixed seeds; after every epoch ``state.pt`` (model, optimiser, epoch, history,
  every RNG state) is written atomically, so a rerun after a kill resumes from
  the last finished epoch and the finished history has every epoch once.
* Early stopping on the validation figure, the mean of (helix F1 + sheet F1) / 2
  (SPEC 9), with the nucleic-acid F1 a third term of the mean for a 4-class network
  (``classes: 4``); ``checkpoint.pt`` is the best epoch's network, stand-alone.

:func:`select_models` picks, per loss, the setting with the highest validation
figure and writes ``selection.tsv`` and ``models/{split}/{loss}.pt``.

Modules: :mod:`~cryosse.train.settings` (setting names and the grid),
:mod:`~cryosse.train.data` (pairs), :mod:`~cryosse.train.trainer` (the loop),
:mod:`~cryosse.train.state` (the resume state), :mod:`~cryosse.train.select` and
:mod:`~cryosse.train.cli`.
"""

from cryosse.train.cli import add_cli
from cryosse.train.data import Pair, cluster_weights, load_pair, read_split_pairs
from cryosse.train.select import SELECTION_COLUMNS, select_job, select_models
from cryosse.train.settings import (
    JOB_KEYS,
    SETTING_RE,
    grid_settings,
    job_config,
    parse_setting,
    setting_name,
)
from cryosse.train.state import STATE_FORMAT
from cryosse.train.trainer import (
    HISTORY_COLUMNS,
    LR_SCHEDULES,
    TrainConfig,
    Trainer,
    epoch_lr,
    f1_scores,
    train_job,
    train_setting,
    validate,
)

__all__ = [
    "HISTORY_COLUMNS",
    "JOB_KEYS",
    "LR_SCHEDULES",
    "SELECTION_COLUMNS",
    "SETTING_RE",
    "STATE_FORMAT",
    "Pair",
    "TrainConfig",
    "Trainer",
    "add_cli",
    "cluster_weights",
    "epoch_lr",
    "f1_scores",
    "grid_settings",
    "job_config",
    "load_pair",
    "parse_setting",
    "read_split_pairs",
    "select_job",
    "select_models",
    "setting_name",
    "train_job",
    "train_setting",
    "validate",
]
