"""Heads: feature map → float32 logits, ``(B, 1)`` single logit or ``(B, 2)`` two-class.

The last layer of every head runs in float32 (``dtype="float32"``), so logits stay float32
under ``mixed_bfloat16`` / ``mixed_float16``. Sigmoid / softmax belong to the loss and export.
"""

from __future__ import annotations

import keras
from keras import ops

from .config import ModelConfig
from .pooling import global_pooling

LOGITS_LAYER = "logits"


def positive_logit(logits):
    """Log-odds of the positive class, shape ``(B,)``, for either head width.

    ``sigmoid`` of it is the positive probability: for a 2-logit softmax head
    ``softmax(l)[1] == sigmoid(l1 - l0)``. Ranking (ROC AUC) needs nothing more. It lives beside
    the heads (not the losses) so that ``tfseti.explain`` and the report read a network's score
    without importing the trainer.
    """
    logits = ops.cast(logits, "float32")
    if logits.shape[-1] == 2:
        return logits[:, 1] - logits[:, 0]
    if logits.shape[-1] == 1:
        return logits[:, 0]
    raise ValueError(f"expected logits of shape (B, 1) or (B, 2), got {tuple(logits.shape)}")


@keras.saving.register_keras_serializable(package="tfseti")
class MultiSampleDropoutDense(keras.layers.Layer):
    """Multi-sample dropout: in training, the mean of a shared dense layer's outputs over
    ``samples`` independent dropout masks; in inference, the dense layer alone."""

    def __init__(self, units: int, rate: float, samples: int, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.units, self.rate, self.samples, self.seed = int(units), float(rate), int(samples), seed
        self.dropout = keras.layers.Dropout(self.rate, seed=seed, dtype=self.dtype_policy,
                                            name="dropout")
        self.dense = keras.layers.Dense(self.units, dtype=self.dtype_policy, name="dense")

    def build(self, input_shape):
        self.dense.build(input_shape)

    def call(self, x, training=None):
        if not training:
            return self.dense(x)
        # One tensor of all samples: each element gets its own mask, so samples are independent.
        stacked = ops.broadcast_to(x[None], (self.samples, *ops.shape(x)))
        return ops.mean(self.dense(self.dropout(stacked, training=True)), axis=0)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, rate=self.rate, samples=self.samples, seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package="tfseti")
class FramewiseAttentionPooling(keras.layers.Layer):
    """SED-style attention pooling over time (the birdcall seed's model), in logit space.

    The ``(B, T, F, C)`` map (image rows = time, columns = frequency) is averaged over
    frequency, smoothed over time (max-pool + avg-pool, window 3), then per frame an attention
    score ``tanh(att(x))`` and frame logits ``cla(x)``; the clip logit is the frame logits
    weighted by the softmax of the scores over time. (PANNs weights sigmoid probabilities; this
    weights logits, so the output stays a logit for ``from_logits`` losses.)
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.att = keras.layers.Dense(self.units, dtype=self.dtype_policy, name="att")
        self.cla = keras.layers.Dense(self.units, dtype=self.dtype_policy, name="cla")

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"{self.name}: expected a (B, T, F, C) feature map, got shape "
                             f"{input_shape}")
        frames_shape = (input_shape[0], input_shape[1], input_shape[3])
        self.att.build(frames_shape)
        self.cla.build(frames_shape)

    def frame_outputs(self, x):
        """``(attention weights, frame logits)``, each ``(B, T, units)``."""
        frames = ops.mean(x, axis=2)
        frames = (ops.max_pool(frames, 3, strides=1, padding="same")
                  + ops.average_pool(frames, 3, strides=1, padding="same"))
        weights = ops.softmax(ops.tanh(self.att(frames)), axis=1)
        return weights, self.cla(frames)

    def call(self, x):
        weights, frame_logits = self.frame_outputs(x)
        return ops.sum(weights * frame_logits, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units)
        return config


def classifier_head(features, config: ModelConfig):
    """Apply pooling, dropout and the final float32 layer (named ``logits``) to ``features``."""
    units = config.num_outputs
    if config.pooling == "attention":
        if config.dropout:
            features = keras.layers.Dropout(config.dropout, name="head_dropout")(features)
        return FramewiseAttentionPooling(units, dtype="float32", name=LOGITS_LAYER)(features)
    pooled = global_pooling(config.pooling, gem_p=config.gem_p, gem_trainable=config.gem_trainable,
                            gem_eps=config.gem_eps, name="pool")(features)
    if config.dropout_samples > 1:
        return MultiSampleDropoutDense(units, config.dropout, config.dropout_samples,
                                       dtype="float32", name=LOGITS_LAYER)(pooled)
    if config.dropout:
        pooled = keras.layers.Dropout(config.dropout, name="head_dropout")(pooled)
    return keras.layers.Dense(units, dtype="float32", name=LOGITS_LAYER)(pooled)
