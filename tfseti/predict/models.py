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
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from tfseti.io.kaggle import ON_PANELS

SIGNATURE_KEYS = ("serving_default", "serve")


@dataclass
class ServingModel:
    """One loaded SavedModel: ``model(cadence)`` maps ``(B, P, T, F)`` float16 to ``(B,)`` float32.

    path: the SavedModel folder; panels: the P its signature takes; view: the training view's
    settings from the trainer's ``config.json`` next to it (``None`` when there is none);
    function: its serving signature; augment: the ``augment`` section of that ``config.json``
    (``{}`` when it has none, ``None`` when there is no ``config.json``).
    """

    path: str
    panels: int
    shape: tuple[int, int, int]
    view: dict | None
    function: object
    loaded: object = None   # the loaded SavedModel: its variables live as long as it does
    augment: dict | None = None

    def __call__(self, cadence: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        outputs = self.function(cadence=tf.constant(cadence, tf.float16))
        if isinstance(outputs, dict):
            (outputs,) = outputs.values()
        return np.asarray(outputs, np.float32).reshape(-1)

    def describe(self) -> str:
        view = (self.view or {}).get("name", "unknown (no config.json): time flip as for on/on_off")
        return f"{self.path}: {self.panels} panels, view {view}"


def resolve_model_paths(spec: str) -> list[str]:
    """SavedModel folders of ``--model``: comma-separated SavedModels or run folders (a local
    copy of those TensorFlow cannot read where they are, see ``tfseti.io.staging``)."""
    import tensorflow as tf

    from tfseti.io.staging import tf_readable

    paths = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        item = tf_readable(item.rstrip("/"))
        if tf.io.gfile.exists(f"{item}/saved_model.pb"):
            paths.append(item)
        elif tf.io.gfile.exists(f"{item}/saved_model/saved_model.pb"):
            paths.append(f"{item}/saved_model")
        elif tf.io.gfile.isdir(item):
            folds = sorted(f"{item}/{name.rstrip('/')}/saved_model"
                           for name in tf.io.gfile.listdir(item) if name.startswith("fold"))
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


def _read_config(path: str) -> dict | None:
    """The trainer's ``config.json`` next to the SavedModel ``path`` (None when there is none)."""
    import tensorflow as tf

    config = f"{os.path.dirname(path.rstrip('/'))}/config.json"
    if not tf.io.gfile.exists(config):
        return None
    with tf.io.gfile.GFile(config) as handle:
        doc = json.load(handle)
    return doc if isinstance(doc, dict) else {}


def load_model(path: str) -> ServingModel:
    """Load a SavedModel with plain TensorFlow and read P from its input signature."""
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
    return ServingModel(path=path, panels=dims[1], shape=dims[1:],
                        view=view if isinstance(view, dict) else None, function=function,
                        loaded=loaded,
                        augment=None if config is None else augment if isinstance(augment, dict) else {})


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
