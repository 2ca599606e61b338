"""Exact whole-fold validation ROC AUC, computed once per epoch on every prediction of the fold;
and the stop at the first non-finite loss, weight or validation score.

A diverged run (a learning rate too high, a bad batch) turns the loss into NaN, then every
weight; left alone it trains on, reports "AUC undefined" and exports a NaN model. Training stops
instead with :class:`NonFiniteTrainingError` naming the step (:class:`StopAtNonFinite`), before
the backup callback (put after it) could save the poisoned state.
"""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np

from tfseti.command import Refusal
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


class NonFiniteTrainingError(ValueError, Refusal):
    """Training produced a NaN/Inf loss, weight or validation score; the message names where."""


def non_finite_weights(model) -> list[str]:
    """Names of ``model``'s variables (trainable and not: BatchNorm statistics too) holding a
    NaN or Inf; empty when all are finite."""
    return [getattr(v, "path", v.name) for v in model.weights
            if "float" in str(v.dtype)  # seed-generator states are ints
            and not np.all(np.isfinite(np.asarray(v.numpy(), np.float32)))]


class StopAtNonFinite(keras.callbacks.Callback):
    """Raise :class:`NonFiniteTrainingError` at the first batch whose loss is NaN/Inf (Keras's
    running mean: NaN from the first bad step on), and at an epoch end whose weights hold one
    (a finite loss computed before an Inf update). ``step_of()`` gives the (epoch, batch of the
    epoch) just trained, 1-based."""

    def __init__(self, step_of):
        super().__init__()
        self.step_of = step_of

    def _fail(self, what: str):
        epoch, batch = self.step_of(self.model)
        raise NonFiniteTrainingError(f"{what} at epoch {epoch}, step {batch}")

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self._fail(f"the loss became {'NaN' if math.isnan(float(loss)) else 'infinite'}")

    def on_epoch_end(self, epoch, logs=None):
        bad = non_finite_weights(self.model)
        if bad:
            self._fail(f"the weights became non-finite ({bad[0]}"
                       f"{f' and {len(bad) - 1} more' if len(bad) > 1 else ''})")


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
        real = np.asarray(outputs["mask"]).reshape(-1).astype(bool)
        scores = np.asarray(outputs["score"]).reshape(-1)[real]
        if not np.all(np.isfinite(scores)):
            # Not "one class in the fold": the AUC of NaN scores is NaN too, and would say so.
            raise NonFiniteTrainingError(
                f"the validation scores became non-finite ({int((~np.isfinite(scores)).sum())} of "
                f"{scores.size}) at epoch {epoch + 1}, the end of the epoch")
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
