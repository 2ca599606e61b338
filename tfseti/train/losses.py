"""The three training losses, all Keras 3 core and all on logits (the models output logits)."""

from __future__ import annotations

import keras
from keras import ops

from tfseti.train.train_config import TrainConfig


@keras.saving.register_keras_serializable(package="tfseti")
class TwoClassCrossentropy(keras.losses.Loss):
    """Softmax cross-entropy of a 2-logit head against a (possibly soft) positive-class target.

    The target ``y`` (shape ``(B,)`` or ``(B, 1)``, in [0, 1] after mixup) becomes the
    distribution ``[1 - y, y]``; the loss itself is Keras's ``categorical_crossentropy``.
    """

    def __init__(self, label_smoothing: float = 0.0, name: str = "two_class_crossentropy",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        positive = ops.reshape(ops.cast(y_true, y_pred.dtype), (-1, 1))
        distribution = ops.concatenate([1.0 - positive, positive], axis=-1)
        return keras.losses.categorical_crossentropy(
            distribution, y_pred, from_logits=True, label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def make_loss(train: TrainConfig) -> keras.losses.Loss:
    """The loss of ``train.loss``; every one takes logits (``from_logits=True``)."""
    if train.loss == "bce":
        return keras.losses.BinaryCrossentropy(from_logits=True,
                                               label_smoothing=train.label_smoothing)
    if train.loss == "focal":
        return keras.losses.BinaryFocalCrossentropy(
            from_logits=True, gamma=train.focal_gamma,
            apply_class_balancing=train.focal_alpha is not None,
            alpha=0.25 if train.focal_alpha is None else train.focal_alpha,
            label_smoothing=train.label_smoothing)
    if train.loss == "ce2":
        return TwoClassCrossentropy(label_smoothing=train.label_smoothing)
    raise ValueError(f"train.loss: unknown loss {train.loss!r}")
