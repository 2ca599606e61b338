"""Exact whole-fold validation ROC AUC, computed once per epoch on every prediction of the fold."""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np

from tfseti.metrics import auc


def predict_all(model, dataset) -> dict:
    """``model.predict`` over a finite (evaluation) dataset, as numpy arrays.

    Keras cannot know the length of a distributed dataset, so it warns that the input "ran out
    of data" when the dataset ends — which is how every evaluation pass ends here.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        outputs = model.predict(dataset, verbose=0)
    return {k: np.asarray(v) for k, v in outputs.items()}


class ValidationAUC(keras.callbacks.Callback):
    """Adds ``val_auc`` to the epoch logs: exact ROC AUC over the whole validation fold.

    ``model.predict(dataset)`` must return a dict with ``score`` (positive log-odds, ``(N,)``),
    ``target`` and ``mask`` (1 for real rows, 0 for the padding of the last batch) — the
    trainer's ``predict_step`` does. Place this callback before ``ModelCheckpoint`` /
    ``EarlyStopping`` / ``CSVLogger`` (they read ``val_auc``) and after ``SwapEMAWeights``
    (so the AUC is that of the EMA weights).
    """

    def __init__(self, dataset, every: int = 1, log_name: str = "val_auc"):
        super().__init__()
        self.dataset = dataset
        self.every = every
        self.log_name = log_name
        self.last_predictions: dict | None = None

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or (epoch + 1) % self.every:
            return
        outputs = predict_all(self.model, self.dataset)
        missing = {"score", "target", "mask"} - set(outputs)
        if missing:
            raise ValueError(f"ValidationAUC: model.predict must return score, target and mask; "
                             f"missing {sorted(missing)}")
        self.last_predictions = outputs
        value = auc(outputs["target"], outputs["score"], outputs["mask"])
        if math.isnan(value):
            warnings.warn(f"{self.log_name} undefined: the validation fold holds one class",
                          RuntimeWarning, stacklevel=2)
        logs[self.log_name] = value


class AverageMovingStatistics(keras.callbacks.Callback):
    """At each epoch end, every replica's BatchNorm moving statistics become their mean over
    all replicas (``CadenceClassifier.average_moving_statistics``)."""

    def on_epoch_end(self, epoch, logs=None):
        self.model.average_moving_statistics()
