"""Model options as a plain frozen dataclass (no TensorFlow import), so configs can load them.

``create_model(name, input_shape, **options)`` builds a :class:`ModelConfig` from its keyword
arguments; the trainer builds the same object from a config file.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Literal

from tfseti.config import check_choices, is_int, is_number

Pooling = Literal["gem", "avg", "max", "attention", "spatial_attention"]
Head = Literal["single_logit", "two_class"]
POOLINGS = typing.get_args(Pooling)
HEADS = {"single_logit": 1, "two_class": 2}     # outputs of each head
STEM_STRIDE_VALUES = (1, 2)


def _fail(field: str, expected: str, got) -> None:
    raise ValueError(f"ModelConfig.{field}: expected {expected}, got {got!r}")


def _as_tuple(value):
    return tuple(value) if isinstance(value, (list, tuple)) else value


@dataclass(frozen=True)
class ModelConfig:
    """Options of a classifier built around a backbone.

    weights: ``None`` or ``"none"`` (random init; TOML has no null), ``"imagenet"`` (downloaded by
        Keras) or the path of a weights file of the plain 3-channel Keras backbone
        (``keras.applications`` EfficientNet / ResNet with ``include_top=False``; ``.weights.h5``,
        ``.keras`` or Keras' own ``*_notop.h5``). Loads into any stem / channel count.
    stem_strides: strides of the backbone's first conv, ``(2, 2)`` as in ImageNet, ``(1, 2)``
        keeps full time resolution (1st place), ``(1, 1)`` keeps both.
    pre_stem_channels: filters of a stack of 3x3 Conv-BN-swish layers run at full resolution
        before the backbone (empty: none).
    pooling: ``gem`` (generalised mean), ``avg``, ``max``, ``spatial_attention`` (seed 004's
        attention head: BatchNorm, 1x1 convs 64 → 16 → 8 → 1 sigmoid giving a mask over
        positions, features averaged with the mask's weights; the dropout and dense head
        follow as for the other poolings), or ``attention`` (frame-wise attention over the time
        axis = image rows, SED-style; replaces the pooling and the dense head).
    gem_p / gem_trainable / gem_eps: GeM exponent (init), whether it is learned, input clamp.
    head: ``single_logit`` (B, 1) for BCE/focal, or ``two_class`` (B, 2) softmax logits.
    dropout: dropout rate before the final dense layer.
    dropout_samples: multi-sample dropout — number of dropout masks whose logits are averaged
        in training (1 = plain dropout).
    drop_connect_rate: the backbone's stochastic-depth rate (Keras' default is 0.2; unused by
        the ResNets and plain CNNs, which have none).
    triplet_attention: apply triplet attention to the backbone's feature map (3rd place).
    resizer_filters / resizer_blocks: width (conv filters) and residual blocks of the learned
        resizer (``tfseti.models.resizer``) that a network built with ``create_model(...,
        resizer_size=(h, w))`` starts with; the trainer builds one when ``view.resize_method =
        "learned"`` (the target size is ``view.resize``). Unused otherwise.
    """

    weights: str | None = None
    stem_strides: tuple[int, int] = (2, 2)
    pre_stem_channels: tuple[int, ...] = ()
    pooling: Pooling = "gem"
    gem_p: float = 3.0
    gem_trainable: bool = True
    gem_eps: float = 1e-6
    head: Head = "single_logit"
    dropout: float = 0.0
    dropout_samples: int = 1
    drop_connect_rate: float = 0.2
    triplet_attention: bool = False
    resizer_filters: int = 16
    resizer_blocks: int = 1

    def __post_init__(self):
        check_choices(self)
        # Config files give lists; store tuples so the object stays hashable and comparable.
        for name in ("stem_strides", "pre_stem_channels"):
            object.__setattr__(self, name, _as_tuple(getattr(self, name)))
        if self.weights == "none":  # TOML has no null: how a file or an override says random init
            object.__setattr__(self, "weights", None)
        if self.weights is not None and (not isinstance(self.weights, str) or not self.weights):
            _fail("weights", 'None, "none", "imagenet" or a weights file path', self.weights)
        s = self.stem_strides
        if (not isinstance(s, tuple) or len(s) != 2
                or any(isinstance(v, bool) or v not in STEM_STRIDE_VALUES for v in s)):
            _fail("stem_strides", "two strides, each 1 or 2, e.g. (2, 2), (1, 2), (1, 1)", s)
        c = self.pre_stem_channels
        if not isinstance(c, tuple) or not all(is_int(v, 1) for v in c):
            _fail("pre_stem_channels", "a tuple of positive ints (filters per layer)", c)
        if not is_number(self.gem_p) or self.gem_p <= 0:
            _fail("gem_p", "a number > 0", self.gem_p)
        if not isinstance(self.gem_trainable, bool):
            _fail("gem_trainable", "a bool", self.gem_trainable)
        if not is_number(self.gem_eps) or self.gem_eps <= 0:
            _fail("gem_eps", "a number > 0", self.gem_eps)
        if not is_number(self.dropout) or not 0.0 <= self.dropout < 1.0:
            _fail("dropout", "a rate in [0, 1)", self.dropout)
        if not is_int(self.dropout_samples, 1):
            _fail("dropout_samples", "an int >= 1", self.dropout_samples)
        if self.dropout_samples > 1 and self.dropout == 0.0:
            _fail("dropout_samples", "1 when dropout is 0 (multi-sample dropout needs dropout > 0)",
                  self.dropout_samples)
        if self.dropout_samples > 1 and self.pooling == "attention":
            _fail("dropout_samples", "1 with pooling='attention' (its head has no dense layer to "
                  "sample)", self.dropout_samples)
        if not is_number(self.drop_connect_rate) or not 0.0 <= self.drop_connect_rate < 1.0:
            _fail("drop_connect_rate", "a rate in [0, 1)", self.drop_connect_rate)
        if not isinstance(self.triplet_attention, bool):
            _fail("triplet_attention", "a bool", self.triplet_attention)
        if not is_int(self.resizer_filters, 1):
            _fail("resizer_filters", "an int >= 1", self.resizer_filters)
        if not is_int(self.resizer_blocks, 0):
            _fail("resizer_blocks", "an int >= 0", self.resizer_blocks)

    @property
    def num_outputs(self) -> int:
        return HEADS[self.head]

    @classmethod
    def option_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def check_option_names(cls, names) -> None:
        """An unknown option is a ValueError listing the valid ones."""
        unknown = sorted(set(names) - set(cls.option_names()))
        if unknown:
            raise ValueError(f"unknown model option(s) {unknown}; valid options: "
                             f"{cls.option_names()}")

    @classmethod
    def from_options(cls, **options) -> "ModelConfig":
        """Build from keyword options (unknown names → ValueError listing the valid ones)."""
        cls.check_option_names(options)
        return cls(**options)
