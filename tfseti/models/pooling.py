"""Global pooling of a ``(B, H, W, C)`` feature map to ``(B, C)``: GeM, spatial attention.

Generalised-mean (GeM) pooling: ``(mean(clamp(x, eps) ** p)) ** (1 / p)`` over the spatial axes.
p = 1 is average pooling, p → ∞ approaches max pooling. Computed in float32 as
``exp((logsumexp(p·log x) − log N) / p)``, which equals the power form but cannot overflow for
large p or large activations (``x ** p`` overflows float32 already at x = 10, p = 39).

Spatial attention pooling (:class:`SpatialAttentionPooling2D`): a learned mask over positions
weights the mean, as in the Keras "pretrained model with attention" kernels (seed 004).
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


@keras.saving.register_keras_serializable(package="tfseti")
class SpatialAttentionPooling2D(keras.layers.Layer):
    """Attention-mask pooling of a ``(B, H, W, C)`` map to ``(B, C)`` (seed 004's head).

    As the Keras "pretrained model with attention" kernels: the features are batch-normalised,
    a stack of 1x1 convolutions (``units`` filters each, ReLU, then one sigmoid filter) scores
    every position, and the pooled features are the mask-weighted mean of the normalised
    features, ``sum(f · m) / sum(m)`` over H, W per channel (the kernels' GAP(f · m) / GAP(m)):
    positions the mask ignores do not dilute the mean, unlike average pooling. The
    convolutions run in the layer's dtype policy; the two sums in float32, the division
    guarded by ``eps``.
    """

    def __init__(self, units=(64, 16, 8), eps: float = 1e-6, **kwargs):
        super().__init__(**kwargs)
        self.units = tuple(int(u) for u in units)
        if any(u < 1 for u in self.units):
            raise ValueError(f"{self.name}: units must be positive ints, got {units!r}")
        self.eps = float(eps)
        self.bn = keras.layers.BatchNormalization(dtype=self.dtype_policy, name="bn")
        self.convs = [keras.layers.Conv2D(u, 1, activation="relu", dtype=self.dtype_policy,
                                          name=f"attention_conv{i}")
                      for i, u in enumerate(self.units)]
        self.mask_conv = keras.layers.Conv2D(1, 1, activation="sigmoid", dtype=self.dtype_policy,
                                             name="attention_mask")

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"{self.name}: expected a (B, H, W, C) feature map, got shape "
                             f"{input_shape}")
        self.bn.build(input_shape)
        shape = tuple(input_shape)
        for conv in self.convs:
            conv.build(shape)
            shape = (*shape[:3], conv.filters)
        self.mask_conv.build(shape)

    def features_and_mask(self, x, training=None):
        """``(normalised features (B, H, W, C), mask (B, H, W, 1) in (0, 1))``."""
        features = self.bn(x, training=training)
        scores = features
        for conv in self.convs:
            scores = conv(scores)
        return features, self.mask_conv(scores)

    def call(self, x, training=None):
        features, mask = self.features_and_mask(x, training=training)
        features, mask = ops.cast(features, "float32"), ops.cast(mask, "float32")
        weighted = ops.sum(features * mask, axis=(1, 2))
        total = ops.maximum(ops.sum(mask, axis=(1, 2)), self.eps)
        return ops.cast(weighted / total, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(units=list(self.units), eps=self.eps)
        return config


def global_pooling(kind: str, *, gem_p: float = 3.0, gem_trainable: bool = True,
                   gem_eps: float = 1e-6, name: str = "pool") -> keras.layers.Layer:
    """The global pooling layer for ``kind`` in ``gem`` / ``avg`` / ``max`` /
    ``spatial_attention``."""
    if kind == "gem":
        return GeMPooling2D(gem_p, gem_trainable, gem_eps, name=name)
    if kind == "avg":
        return keras.layers.GlobalAveragePooling2D(name=name)
    if kind == "max":
        return keras.layers.GlobalMaxPooling2D(name=name)
    if kind == "spatial_attention":
        return SpatialAttentionPooling2D(name=name)
    raise ValueError(f"pooling: expected one of ['gem', 'avg', 'max', 'spatial_attention'], got "
                     f"{kind!r}")
