"""Optimizers and learning-rate schedules from ``TrainConfig`` (Keras 3 core only)."""

from __future__ import annotations

import keras

from tfseti.train.agc import AGC_OPTIMIZERS
from tfseti.train.train_config import TrainConfig


def make_schedule(train: TrainConfig, steps_per_epoch: int):
    """Linear warm-up to ``learning_rate`` then cosine decay to ``learning_rate x final_lr_ratio``.

    Keras ``CosineDecay`` does both: it starts at ``initial_learning_rate`` (our warm-up start),
    climbs linearly to ``warmup_target`` over ``warmup_steps``, then decays over ``decay_steps``.
    """
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    if train.schedule == "constant":
        return train.learning_rate
    total_steps = train.epochs * steps_per_epoch
    warmup_steps = int(round(train.warmup_epochs * steps_per_epoch))
    decay_steps = max(1, total_steps - warmup_steps)
    if warmup_steps == 0:
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=train.learning_rate, decay_steps=decay_steps,
            alpha=train.final_lr_ratio)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=train.warmup_start_lr, decay_steps=decay_steps,
        alpha=train.final_lr_ratio, warmup_target=train.learning_rate, warmup_steps=warmup_steps)


def make_optimizer(train: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """AdamW / Adam / SGD with the schedule, decoupled weight decay, clipping (``clipnorm``, or
    adaptive gradient clipping with ``agc_clip``: ``tfseti.train.agc``) and optional EMA."""
    common = dict(
        learning_rate=make_schedule(train, steps_per_epoch),
        # AdamW requires a float; Adam/SGD read 0 as "off" only when given None.
        weight_decay=train.weight_decay if train.optimizer == "adamw" else (train.weight_decay or None),
        clipnorm=train.clipnorm,
        use_ema=train.ema,
        ema_momentum=train.ema_momentum,
    )
    if train.optimizer == "adamw":
        cls = keras.optimizers.AdamW
    elif train.optimizer == "adam":
        cls = keras.optimizers.Adam
    elif train.optimizer == "sgd":
        cls = keras.optimizers.SGD
        common.update(momentum=train.momentum, nesterov=True)
    else:
        raise ValueError(f"train.optimizer: unknown optimizer {train.optimizer!r}")
    if train.agc_clip is not None:
        cls = AGC_OPTIMIZERS[cls]
        common.update(agc_clip=train.agc_clip, agc_eps=train.agc_eps)
    return cls(**common)
