"""The trainer's own config section (``[train]`` in a recipe); no TensorFlow import."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tfseti.config import check_choices

Optimizer = Literal["adamw", "adam", "sgd"]
CalibrationMode = Literal["none", "flips"]
Schedule = Literal["cosine", "constant"]
# bce: one logit + sigmoid; focal: one logit, Keras BinaryFocalCrossentropy;
# ce2: two logits + softmax (the 2-class head one team preferred to a single sigmoid).
Loss = Literal["bce", "focal", "ce2"]
# Width of the model's last layer each loss expects: one logit, or two softmax logits.
LOGITS_PER_LOSS = {"bce": 1, "focal": 1, "ce2": 2}
# all: every layer of the source that fits; backbone: only the backbone's (tfseti.train.init_from).
InitScope = Literal["all", "backbone"]
# auto: mixed_bfloat16 on TPU, mixed_float16 on GPU, float32 on CPU.
Precision = Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"]


# Upper bounds that no real run reaches but that stop typos (1e30, an extra row of zeros) before
# anything is built: adaptive optimizers step by about the learning rate, and every recipe here
# trains at 1e-4 .. 1e-2, so a rate above 10 only ever diverges to NaN; 10,000 epochs of the
# smallest fold is days; a per-replica batch of 65,536 cadences is 100 GB of float32 input.
MAX_LEARNING_RATE = 10.0
MAX_EPOCHS = 10_000
MAX_BATCH_PER_REPLICA = 65_536


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_per_replica: int = 32           # global batch = this x replicas
    steps_per_execution: int = 1          # TPU: >= 32 to cut host overhead
    steps_per_epoch: int | None = None    # None: one pass over the training folds
    optimizer: Optimizer = "adamw"
    learning_rate: float = 1e-3           # peak rate, reached after the warm-up
    schedule: Schedule = "cosine"
    warmup_epochs: float = 0.0            # linear warm-up from warmup_start_lr to learning_rate
    warmup_start_lr: float = 0.0
    final_lr_ratio: float = 0.0           # cosine ends at learning_rate x this (Keras `alpha`)
    weight_decay: float = 1e-4            # decoupled (Keras 3 applies it in every optimizer)
    momentum: float = 0.9                 # sgd only
    clipnorm: float | None = None         # per-variable gradient norm cap (Keras clipnorm)
    # Adaptive gradient clipping (tfseti.train.agc; NFNets): each unit's gradient norm capped
    # at agc_clip x its weights' norm (floored at agc_eps), the classifier layer excluded.
    # timm's NFNet default is 0.01; None: off. Not together with clipnorm.
    agc_clip: float | None = None
    agc_eps: float = 1e-3
    ema: bool = False                     # optimizer use_ema; validation runs on the EMA weights
    ema_momentum: float = 0.99
    loss: Loss = "bce"
    focal_gamma: float = 2.0
    focal_alpha: float | None = None      # None: no class balancing; 4th place used 0.7
    label_smoothing: float = 0.0
    head_warmup_epochs: int = 0           # train the head alone first (2nd place)
    early_stopping_patience: int | None = None  # epochs without val AUC gain; None: off
    # Momentum of every BatchNormalization layer (None: the backbone's own, 0.99). Short runs
    # and tiny data need a lower one, or evaluation uses moving statistics still near their init.
    bn_momentum: float | None = None
    # Normalise with batch statistics all-reduced over every replica (Keras `synchronized`
    # BatchNormalization): the global batch's statistics, at the cost of a collective per layer.
    # Off, each replica normalises with its own batch. Either way the moving statistics are
    # averaged over replicas before every validation and save, so all workers hold the same
    # weights. Under mirrored/multiworker it needs jit_compile = false (XLA is per replica there).
    sync_batchnorm: bool = False
    precision: Precision = "auto"
    jit_compile: bool = True              # explicit: Keras "auto" turns XLA off under strategies
    seed: int = 0
    fold: int = 0                         # validation fold (the CLI's --fold overrides it)
    # Preemption: back up the training state every this many steps into <out>/fold<K>/backup/
    # and resume from it when the same command runs again (0: off). Exact resume (the weights
    # of an uninterrupted run) also needs data.deterministic = true.
    backup_every_steps: int = 0
    # The TTA modes the run fits a calibrator for once its folds are done (calibration.json,
    # tfseti.train.calibration): "none" from oof.csv; "flips" predicts every validation fold
    # four times more. Predicting with a mode left out gives raw probabilities.
    calibrate: tuple[CalibrationMode, ...] = ("none", "flips")
    # Start from another run's weights (tfseti.train.init_from): a run folder (its fold of the
    # same index), a fold folder, a .keras or a .weights.h5 file; None: fresh initialisation.
    init_from: str | None = None
    init_scope: InitScope = "all"

    def __post_init__(self):
        check_choices(self)
        positive_ints = ("epochs", "batch_per_replica", "steps_per_execution")
        for name in positive_ints:
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ValueError(f"train.steps_per_epoch must be >= 1 or unset, got {self.steps_per_epoch}")
        for name, most in (("epochs", MAX_EPOCHS), ("batch_per_replica", MAX_BATCH_PER_REPLICA)):
            if getattr(self, name) > most:
                raise ValueError(f"train.{name} must be <= {most}, got {getattr(self, name)}")
        if not 0 < self.learning_rate <= MAX_LEARNING_RATE:
            raise ValueError(f"train.learning_rate must be in (0, {MAX_LEARNING_RATE:g}], got "
                             f"{self.learning_rate}")
        for name in ("warmup_epochs", "warmup_start_lr", "weight_decay", "focal_gamma",
                     "head_warmup_epochs"):
            if getattr(self, name) < 0:
                raise ValueError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("final_lr_ratio", "momentum", "ema_momentum"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"train.{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"train.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.focal_alpha is not None and not 0.0 < self.focal_alpha < 1.0:
            raise ValueError(f"train.focal_alpha must be in (0, 1) or unset, got {self.focal_alpha}")
        if self.bn_momentum is not None and not 0.0 <= self.bn_momentum < 1.0:
            raise ValueError(f"train.bn_momentum must be in [0, 1) or unset, got {self.bn_momentum}")
        if self.clipnorm is not None and self.clipnorm <= 0:
            raise ValueError(f"train.clipnorm must be > 0 or unset, got {self.clipnorm}")
        if self.agc_clip is not None and not self.agc_clip > 0:
            raise ValueError(f"train.agc_clip must be > 0 or unset, got {self.agc_clip}")
        if not self.agc_eps > 0:
            raise ValueError(f"train.agc_eps must be > 0, got {self.agc_eps}")
        if self.agc_clip is not None and self.clipnorm is not None:
            raise ValueError("train.agc_clip and train.clipnorm are both set: choose one way to "
                             "clip gradients (as timm's --clip-mode)")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            raise ValueError("train.early_stopping_patience must be >= 1 or unset, "
                             f"got {self.early_stopping_patience}")
        if self.backup_every_steps < 0:
            raise ValueError(f"train.backup_every_steps must be >= 0 (0: off), got "
                             f"{self.backup_every_steps}")
        if self.backup_every_steps % self.steps_per_execution:
            raise ValueError(f"train.backup_every_steps ({self.backup_every_steps}) must be a "
                             f"multiple of train.steps_per_execution ({self.steps_per_execution}):"
                             " the state is only seen between executions")
        if self.steps_per_epoch is not None and self.steps_per_epoch % self.steps_per_execution:
            # Keras runs whole executions: 15 steps at 4 per execution would run 16 per epoch,
            # off the schedule, the augmentation seeds and the backups' step counts.
            raise ValueError(f"train.steps_per_epoch ({self.steps_per_epoch}) must be a multiple "
                             f"of train.steps_per_execution ({self.steps_per_execution})")
        if self.init_from is not None and not self.init_from.strip():
            raise ValueError("train.init_from is an empty string: name a run folder, a fold "
                             "folder or a weights file, or leave it unset")
        if self.init_scope != "all" and self.init_from is None:
            raise ValueError(f"train.init_scope = {self.init_scope!r} needs train.init_from")
        if self.fold < 0:
            raise ValueError(f"train.fold must be >= 0, got {self.fold}")
        # Impossible combinations inside this section.
        if self.warmup_epochs >= self.epochs:
            raise ValueError(f"train.warmup_epochs ({self.warmup_epochs}) must be smaller than "
                             f"train.epochs ({self.epochs})")
        if self.head_warmup_epochs >= self.epochs:
            raise ValueError(f"train.head_warmup_epochs ({self.head_warmup_epochs}) leaves no epoch "
                             f"to train the whole network (train.epochs = {self.epochs})")
        if self.warmup_start_lr > self.learning_rate:
            raise ValueError(f"train.warmup_start_lr ({self.warmup_start_lr}) is above the peak "
                             f"train.learning_rate ({self.learning_rate})")
        if self.schedule == "constant" and self.warmup_epochs:
            raise ValueError("train.warmup_epochs needs train.schedule = 'cosine' "
                             "(the constant schedule has no warm-up)")
        if self.loss != "focal" and self.focal_alpha is not None:
            raise ValueError(f"train.focal_alpha is set but train.loss is {self.loss!r}, not 'focal'")
