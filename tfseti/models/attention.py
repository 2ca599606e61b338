"""Triplet attention (Misra et al., WACV 2021), as the 3rd-place solution put after its backbone.

Three gates, each over a different pair of axes of the ``(B, H, W, C)`` map: pool the third axis
to [max, mean] (2 channels), 7x7 conv + BN + sigmoid over the remaining pair, rescale the input;
the output is the mean of the three rescaled maps. Channels-last port of the reference
PyTorch module: pooling directly over an axis replaces its permute → pool → permute back.
"""

from __future__ import annotations

import keras
from keras import ops

# gate name → the axis it pools over (of a (B, H, W, C) tensor)
_GATES = (("hw", 3), ("wc", 1), ("hc", 2))


@keras.saving.register_keras_serializable(package="tfseti")
class TripletAttention(keras.layers.Layer):
    def __init__(self, kernel_size: int = 7, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = int(kernel_size)
        # Plain attributes (not a dict) so Keras tracks and saves each sublayer's weights.
        for gate, _ in _GATES:
            setattr(self, f"{gate}_conv", keras.layers.Conv2D(
                1, self.kernel_size, padding="same", use_bias=False,
                dtype=self.dtype_policy, name=f"{gate}_conv"))
            setattr(self, f"{gate}_bn", keras.layers.BatchNormalization(
                dtype=self.dtype_policy, name=f"{gate}_bn"))

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"{self.name}: expected a (B, H, W, C) feature map, got shape "
                             f"{input_shape}")
        for gate, axis in _GATES:
            kept = [d for i, d in enumerate(input_shape[1:], start=1) if i != axis]
            shape = (input_shape[0], *kept, 2)
            getattr(self, f"{gate}_conv").build(shape)
            getattr(self, f"{gate}_bn").build((*shape[:-1], 1))

    def _gate_scale(self, gate, x, axis, training):
        pooled = ops.stack([ops.max(x, axis=axis), ops.mean(x, axis=axis)], axis=-1)
        conv, norm = getattr(self, f"{gate}_conv"), getattr(self, f"{gate}_bn")
        scale = ops.sigmoid(norm(conv(pooled), training=training))
        # (B, a, b, 1) → broadcastable against x with the pooled axis restored as size 1
        return ops.expand_dims(ops.squeeze(scale, axis=-1), axis=axis)

    def call(self, x, training=None):
        total = 0
        for gate, axis in _GATES:
            total = total + x * self._gate_scale(gate, x, axis, training)
        return total / 3.0

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(kernel_size=self.kernel_size)
        return config
