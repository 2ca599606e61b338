"""Exported SavedModels for prediction: finding them (``--model``), loading them, fitting data to them.

A model is a SavedModel folder written by the trainer (``runs/<name>/fold<K>/saved_model``,
``serve``/``serving_default`` endpoint taking ``float16[None, P, 273, 256]`` raw cadences and
returning probabilities), or every ``fold*/saved_model`` of a run folder (``runs/<name>``). They
load with plain ``tf.saved_model.load``; nothing of the trainer is imported. P (6, or 3 for ON-only
models) is read from the input signature; 6-panel data given to a 3-panel model is sliced to its ON
panels (0, 2, 4); 3-panel data cannot feed a 6-panel model (error). The training view, which the
time flip of ``tfseti.predict.tta`` depends on, is read from the ``config.json`` the trainer writes
next to ``saved_model/``, and so is the training augmentation that random TTA
(``tfseti.predict.random_tta``) draws from.

Calibrated probabilities: a run folder's ``calibration.json`` (fitted by the trainer on the run's
out-of-fold predictions, ``tfseti.train.calibration``; the maps are ``tfseti.calibrate``) holds one
calibrator per TTA mode (``none``, ``flips``). :func:`load_model` reads it for every
``RUN/fold<K>/saved_model`` of that run, and the loaded model then returns calibrated
probabilities: ``model(cadence)`` for one pass (the ``none`` calibrator), and
``model.combine(passes, tta)`` for the passes of a TTA mode: the mean of their probabilities, as
always, then that mode's calibrator. Predict, scan and pseudo-labelling all score through these
two, so they all get calibrated probabilities; several models (folds, runs) are then averaged as
before, calibrated probabilities instead of raw ones. A TTA mode the file has no calibrator for
(``random:N``; ``flips`` for a view without an exact flip) gives the raw mean: a calibrator only
maps the kind of score it was fitted on. The SavedModel's own output stays available:
``model.raw(cadence)``, or ``load_model(path, calibrated=False)``. A SavedModel outside a run
folder, or a run without ``calibration.json`` (trained before it existed, or one-class
out-of-fold rows), gives raw probabilities; ``describe()`` says which. A ``calibration.json``
fitted without this fold's out-of-fold rows (stale) is refused.

Non-finite probabilities stop here, for every tool that scores with a SavedModel (predict, scan,
pseudo): :func:`load_model` runs each model once on seeded noise and every call checks its output
(:func:`check_finite_scores`), so a model trained to NaN weights is refused with its path.
"""

from __future__ import annotations

import json
import os
import posixpath
from dataclasses import dataclass, field

import numpy as np

from tfseti.calibrate import FILE as CALIBRATION_FILE
from tfseti.calibrate import Calibrator, CalibrationError, calibrators
from tfseti.io.kaggle import ON_PANELS
from tfseti.io.run_files import FOLD_DIR

SIGNATURE_KEYS = ("serving_default", "serve")


@dataclass
class ServingModel:
    """One loaded SavedModel: ``model(cadence)`` maps ``(B, P, T, F)`` float16 to ``(B,)`` float32.

    path: the SavedModel folder; panels: the P its signature takes; view: the training view's
    settings from the trainer's ``config.json`` next to it (``None`` when there is none);
    function: its serving signature; augment: the ``augment`` section of that ``config.json``
    (``{}`` when it has none, ``None`` when there is no ``config.json``); calibrators: the run's
    calibrator per TTA mode (empty: raw probabilities), read from ``calibration``, its path.
    """

    path: str
    panels: int
    shape: tuple[int, int, int]
    view: dict | None
    function: object
    loaded: object = None   # the loaded SavedModel: its variables live as long as it does
    augment: dict | None = None
    calibrators: dict = field(default_factory=dict)   # TTA mode -> Calibrator
    calibration: str | None = None

    def raw(self, cadence: np.ndarray) -> np.ndarray:
        """The SavedModel's own probabilities ``(B,)`` float32 (checked finite), uncalibrated."""
        import tensorflow as tf

        outputs = self.function(cadence=tf.constant(cadence, tf.float16))
        if isinstance(outputs, dict):
            (outputs,) = outputs.values()
        return check_finite_scores(np.asarray(outputs, np.float32).reshape(-1), self.path)

    def calibrator(self, tta: str = "none") -> Calibrator | None:
        """The calibrator of TTA mode ``tta`` (``none``, ``flips``, ``random:N``), None if none."""
        return self.calibrators.get(str(tta).partition(":")[0])

    def combine(self, passes: list[np.ndarray], tta: str = "none") -> np.ndarray:
        """The model's probabilities ``(B,)`` float32 from the :meth:`raw` probabilities of the
        passes of TTA mode ``tta`` over the same cadences: their mean, mapped by the mode's
        calibrator when there is one."""
        mean = np.mean(passes, axis=0).astype(np.float32)
        calibrator = self.calibrator(tta)
        return mean if calibrator is None else calibrator(mean).astype(np.float32)

    def __call__(self, cadence: np.ndarray) -> np.ndarray:
        """Probabilities ``(B,)`` of one pass: calibrated when the run has a calibrator."""
        return self.combine([self.raw(cadence)])

    def tag(self) -> str:
        """Which calibration applies, exactly (pseudo-labels record it): ``raw`` or each mode's
        map."""
        if not self.calibrators:
            return "raw"
        return "; ".join(f"{mode}={c.tag()}" for mode, c in sorted(self.calibrators.items()))

    def describe(self) -> str:
        view = (self.view or {}).get("name", "unknown (no config.json): time flip as for on/on_off")
        if not self.calibrators:
            calibration = "raw probabilities (no calibration.json)"
        else:
            modes = "; ".join(f"--tta {mode}: {c.describe()}"
                              for mode, c in sorted(self.calibrators.items()))
            calibration = f"calibrated ({modes}; other --tta raw) by {self.calibration}"
        return f"{self.path}: {self.panels} panels, view {view}, {calibration}"


class NonFiniteScoresError(ValueError):
    """A model gave NaN/Inf probabilities (diverged weights); the message names its path."""


def check_finite_scores(scores: np.ndarray, path: str) -> np.ndarray:
    """``scores``, or :class:`NonFiniteScoresError` naming the model ``path`` when any is NaN or
    Inf. Every caller of a SavedModel (predict with its TTA and stacking, scan, pseudo,
    publish's load check) goes through :class:`ServingModel`, so this is the one place the check
    lives: a NaN probability would otherwise become an empty submission cell, a NaN window score
    or a pseudo-label."""
    bad = ~np.isfinite(scores)
    if bad.any():
        fold = os.path.basename(os.path.dirname(path.rstrip("/")))
        raise NonFiniteScoresError(
            f"{path}: the model ({fold}) gives non-finite probabilities ({int(bad.sum())} of "
            f"{scores.size}); its weights are probably NaN from a diverged training run: "
            f"retrain that fold (python -m tfseti.train stops at the first NaN loss)")
    return scores


# The cadences load_model checks a model on: what normalised panels look like (mean 0, std 1).
PROBE_BATCH, PROBE_SEED = 2, 0


def probe(model: ServingModel) -> None:
    """Run ``model`` once on seeded noise cadences: a model whose weights are NaN is refused
    when it is loaded, before any tool reads data or writes an output."""
    rng = np.random.default_rng(PROBE_SEED)
    model(rng.standard_normal((PROBE_BATCH, *model.shape), dtype=np.float32).astype(np.float16))


def resolve_model_paths(spec: str) -> list[str]:
    """SavedModel folders of ``--model``: comma-separated SavedModels or run folders (a local
    copy of those TensorFlow cannot read where they are, see ``tfseti.io.staging``). A fold that
    is not finished (its ``backup/`` still there, or no SavedModel yet) is refused, never skipped:
    a run would otherwise silently predict with fewer folds than it has."""
    import tensorflow as tf

    from tfseti.io.staging import tf_readable

    paths = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        item = tf_readable(item.rstrip("/"))
        if tf.io.gfile.exists(f"{item}/saved_model.pb"):
            parent, name = posixpath.split(item)
            if name == "saved_model" and FOLD_DIR.match(posixpath.basename(parent)):
                _refuse_unfinished(item, [parent])
            paths.append(item)
        elif tf.io.gfile.exists(f"{item}/saved_model/saved_model.pb"):
            if FOLD_DIR.match(posixpath.basename(item)):
                _refuse_unfinished(item, [item])
            paths.append(f"{item}/saved_model")
        elif tf.io.gfile.isdir(item):
            names = [name.rstrip("/") for name in tf.io.gfile.listdir(item)]
            # Every fold<K>/ that holds anything must be finished: the run is used whole or not
            # at all (an empty folder is no fold, as for tfseti.train.run_folder.fold_dirs).
            _refuse_unfinished(item, [f"{item}/{name}" for name in sorted(names)
                                      if FOLD_DIR.match(name) and tf.io.gfile.isdir(f"{item}/{name}")
                                      and tf.io.gfile.listdir(f"{item}/{name}")])
            folds = sorted(f"{item}/{name}/saved_model" for name in names if name.startswith("fold"))
            folds = [p for p in folds if tf.io.gfile.exists(f"{p}/saved_model.pb")]
            if not folds:
                raise FileNotFoundError(f"{item}: neither a SavedModel (no saved_model.pb) nor a run "
                                        f"folder with fold*/saved_model/")
            paths.extend(folds)
        else:
            raise FileNotFoundError(f"{item}: no such SavedModel or run folder")
    if not paths:
        raise ValueError(f"--model {spec!r}: no model given")
    if len(set(paths)) != len(paths):
        raise ValueError(f"--model {spec!r}: a SavedModel is given twice ({paths})")
    return paths


def _unfinished(fold_dir: str) -> str | None:
    """Why the run's ``fold<K>/`` folder is not a finished fold, else None. The trainer removes
    ``backup/`` last (``tfseti.train.run_folder.fold_finished``) and writes its SavedModel in
    place, so while a backup is there the SavedModel is missing, partial or not the final one."""
    import tensorflow as tf

    if tf.io.gfile.exists(f"{fold_dir}/backup"):
        return "its backup/ is still there: training, or interrupted"
    if not tf.io.gfile.exists(f"{fold_dir}/saved_model/saved_model.pb"):
        return "no saved_model/ yet"
    return None


def _refuse_unfinished(given: str, fold_dirs: list[str]) -> None:
    """ValueError (one line) naming every unfinished fold of ``fold_dirs`` and how to finish it."""
    found = [(posixpath.basename(d), why) for d in fold_dirs for why in [_unfinished(d)] if why]
    if found:
        names = "; ".join(f"{name}: {why}" for name, why in found)
        raise ValueError(f"{given}: unfinished fold ({names}); rerun the same python -m "
                         f"tfseti.train command to finish it (it resumes from its backup), or "
                         f"move the fold folder out of the run")


def _read_config(path: str) -> dict | None:
    """The trainer's ``config.json`` next to the SavedModel ``path`` (None when there is none)."""
    import tensorflow as tf

    config = f"{os.path.dirname(path.rstrip('/'))}/config.json"
    if not tf.io.gfile.exists(config):
        return None
    with tf.io.gfile.GFile(config) as handle:
        doc = json.load(handle)
    return doc if isinstance(doc, dict) else {}


def calibration_file(path: str) -> str | None:
    """``RUN/calibration.json`` for the SavedModel ``RUN/fold<K>/saved_model`` (None for a
    SavedModel outside a run folder's fold)."""
    fold_dir = posixpath.dirname(path.rstrip("/"))
    if not FOLD_DIR.match(posixpath.basename(fold_dir)):
        return None
    return f"{posixpath.dirname(fold_dir)}/{CALIBRATION_FILE}"


def read_calibrators(path: str) -> tuple[dict, str | None]:
    """The run calibrators (``{TTA mode: Calibrator}``) that apply to the SavedModel ``path`` and
    the file they came from, or ``({}, None)`` when there is none. ValueError naming the file
    when it is unreadable, not a calibration document, or fitted without this fold's
    out-of-fold rows (stale)."""
    import tensorflow as tf

    found = calibration_file(path)
    if found is None or not tf.io.gfile.exists(found):
        return {}, None
    try:
        with tf.io.gfile.GFile(found) as handle:
            doc = json.load(handle)
    except ValueError as err:
        raise CalibrationError(f"{found}: not valid JSON ({err})") from None
    found_calibrators = calibrators(doc, found)
    fold = int(FOLD_DIR.match(posixpath.basename(posixpath.dirname(path.rstrip("/"))))[1])
    for mode, item in doc["modes"].items():
        folds = (item.get("data") or {}).get("folds")
        if isinstance(folds, list) and fold not in folds:
            raise CalibrationError(
                f"{found}: its {mode} calibrator was fitted on the out-of-fold rows of folds "
                f"{folds}, not fold {fold}'s ({path}): stale; rerun the training command (it "
                f"refits the calibrators once its folds are done), or load with "
                f"calibrated=False for raw probabilities")
    return found_calibrators, found


def load_model(path: str, calibrated: bool = True) -> ServingModel:
    """Load a SavedModel with plain TensorFlow and read P from its input signature; a model
    whose probabilities are not finite is refused here (:func:`probe`). ``calibrated``: apply
    the run's ``calibration.json`` when there is one (see the module docstring); False: the
    SavedModel's raw probabilities."""
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    function = next((loaded.signatures[k] for k in SIGNATURE_KEYS if k in loaded.signatures), None)
    if function is None:
        raise ValueError(f"{path}: no {' / '.join(SIGNATURE_KEYS)} signature (has "
                         f"{sorted(loaded.signatures)})")
    _, kwargs = function.structured_input_signature
    if list(kwargs) != ["cadence"]:
        raise ValueError(f"{path}: expected one input 'cadence', the signature takes {sorted(kwargs)}")
    spec = kwargs["cadence"]
    dims = tuple(spec.shape.as_list())
    if len(dims) != 4 or dims[1] not in (3, 6) or spec.dtype != tf.float16:
        raise ValueError(f"{path}: expected input float16[None, 6 or 3, T, F], got "
                         f"{spec.dtype.name}{list(dims)}")
    config = _read_config(path)
    view, augment = ((config or {}).get(key) for key in ("view", "augment"))
    found, calibration = read_calibrators(path) if calibrated else ({}, None)
    model = ServingModel(path=path, panels=dims[1], shape=dims[1:],
                         view=view if isinstance(view, dict) else None, function=function,
                         loaded=loaded,
                         augment=None if config is None else augment if isinstance(augment, dict) else {},
                         calibrators=found, calibration=calibration)
    probe(model)
    return model


def fit_panels(cadence: np.ndarray, model: ServingModel) -> np.ndarray:
    """Cadences shaped for ``model``: 6-panel data to a 3-panel model keeps the ON panels."""
    panels = cadence.shape[1]
    if cadence.shape[2:] != model.shape[1:]:
        raise ValueError(f"{model.path}: takes cadences of {model.shape}, the data holds "
                         f"{cadence.shape[1:]}")
    if panels == model.panels:
        return cadence
    if panels == 6 and model.panels == 3:
        return cadence[:, list(ON_PANELS)]
    raise ValueError(f"{model.path}: the model takes {model.panels}-panel cadences but the data holds "
                     f"{panels} panels (ON-only shards, converted with --panels on); convert the test "
                     f"set with --panels all or use an ON-only model")
