"""The whole run's config: the sections each area owns, composed, plus cross-section checks.

A recipe (``tfseti/recipes/NAME.toml``, or any ``.toml`` path) is a TOML file with one table per
section, each a plain frozen dataclass of the area that owns it, in a module that imports no
TensorFlow (loading and checking a recipe takes milliseconds):

=====================  ===================================================  ==============
table                  dataclass                                            owner
=====================  ===================================================  ==============
``[data]``             :class:`tfseti.data.config.DataConfig`               pipeline
``[view]``             :class:`tfseti.data.config.ViewConfig`               views
``[augment]``          :class:`tfseti.data.config.AugmentConfig`            augmenter
``[augment.inject]``   :class:`tfseti.data.config.InjectConfig`             injection
``[mixup]``            :class:`tfseti.data.config.MixupConfig`              mixup
``[model]``            :class:`ModelSection` (``name`` + options)           trainer, models
``[model.options]``    :class:`tfseti.models.config.ModelConfig`            models
``[train]``            :class:`tfseti.train.train_config.TrainConfig`       trainer
=====================  ===================================================  ==============

``data.batch_size`` is the global batch: the trainer sets it to ``train.batch_per_replica`` x
replicas (the resolved ``config.json`` shows the value used). This module only composes the
sections and rejects combinations no single section can see (e.g. a 2-class loss on a
single-logit head); the loader is ``tfseti.config``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from tfseti import config as config_lib
from tfseti.data.config import AugmentConfig, DataConfig, MixupConfig, ViewConfig
from tfseti.models.config import ModelConfig
from tfseti.train.train_config import LOGITS_PER_LOSS, TrainConfig


@dataclass(frozen=True)
class ModelSection:
    """``create_model(name, input_shape, config=options)``."""

    name: str = "efficientnet_b0"
    options: ModelConfig = field(default_factory=ModelConfig)


@dataclass(frozen=True)
class RunConfig:
    name: str = "run"
    data: DataConfig = field(default_factory=DataConfig)
    view: ViewConfig = field(default_factory=ViewConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    mixup: MixupConfig = field(default_factory=MixupConfig)
    model: ModelSection = field(default_factory=ModelSection)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        check_combinations(self)


def check_combinations(run: RunConfig) -> None:
    """Raise ValueError for settings that are each valid but impossible together."""
    logits = LOGITS_PER_LOSS[run.train.loss]
    if run.model.options.num_outputs != logits:
        wanted = "two_class" if logits == 2 else "single_logit"
        raise ValueError(f"train.loss = {run.train.loss!r} needs {logits} logit(s): set "
                         f"model.options.head = {wanted!r} (got {run.model.options.head!r})")


def load_run_config(name: str | os.PathLike | None,
                    overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Load the recipe ``NAME`` (or a ``.toml`` path) with ``key=value`` overrides, fully validated."""
    return config_lib.load(RunConfig, name, overrides)
