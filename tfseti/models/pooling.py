"""Generalised-mean (GeM) pooling: ``(mean(clamp(x, eps) ** p)) ** (1 / p)`` over the spatial axes.

p = 1 is average pooling, p → ∞ approaches max pooling. Computed in float32 as
``exp((logsumexp(p·log x) − log N) / p)``, which equals the power form but cannot overflow for
large p or large activations (``x ** p`` overflows float32 already at x = 10, p = 39).
"""

from __future__ import annotations

import math

import keras
from keras import ops


def gem_pool(x, p, eps: float = 1e-6, axis=(1, 2), keepdims: bool = False):
    """GeM over ``axis`` of ``x`` (channels-last feature map by default); float32 result."""
    x = ops.cast(x, "float32")
    p = ops.cast(p, "float32")
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    count = math.prod(int(x.shape[a]) for a in axes)
    log_x = ops.log(ops.maximum(x, eps))
    log_mean = ops.logsumexp(p * log_x, axis=axes, keepdims=keepdims) - math.log(count)
    return ops.exp(log_mean / p)


@keras.saving.register_keras_serializable(package="tfseti")
class GeMPooling2D(keras.layers.Layer):
    """Global GeM pooling of a channels-last ``(B, H, W, C)`` map to ``(B, C)``.

    ``p`` is a scalar weight, learned when ``p_trainable`` (the 1st-place recipe) or fixed
    (3rd place used p = 4).
    """

    def __init__(self, p: float = 3.0, p_trainable: bool = True, eps: float = 1e-6, **kwargs):
        super().__init__(**kwargs)
        self.initial_p = float(p)
        self.p_trainable = bool(p_trainable)
        self.eps = float(eps)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"{self.name}: expected a (B, H, W, C) feature map, got shape "
                             f"{input_shape}")
        self.p = self.add_weight(name="p", shape=(),
                                 initializer=keras.initializers.Constant(self.initial_p),
                                 trainable=self.p_trainable, dtype="float32")

    def call(self, x):
        return ops.cast(gem_pool(x, self.p, self.eps), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(p=self.initial_p, p_trainable=self.p_trainable, eps=self.eps)
        return config


def global_pooling(kind: str, *, gem_p: float = 3.0, gem_trainable: bool = True,
                   gem_eps: float = 1e-6, name: str = "pool") -> keras.layers.Layer:
    """The global pooling layer for ``kind`` in ``gem`` / ``avg`` / ``max``."""
    if kind == "gem":
        return GeMPooling2D(gem_p, gem_trainable, gem_eps, name=name)
    if kind == "avg":
        return keras.layers.GlobalAveragePooling2D(name=name)
    if kind == "max":
        return keras.layers.GlobalMaxPooling2D(name=name)
    raise ValueError(f"pooling: expected one of ['gem', 'avg', 'max'], got {kind!r}")
