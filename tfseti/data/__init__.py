"""Dataset validation, the tf.data pipeline, input views, batched augmentation and mixup-OR.

Importing this package is cheap (no TensorFlow): the names below load their module on first use,
so ``python -m tfseti.data.validate`` never pays for TensorFlow.

* ``pipeline``: ``DataConfig``, ``fold_files``, ``train_dataset``, ``eval_dataset``,
  ``distributed_train_dataset``, ``distributed_eval_dataset``
* ``views``: ``ViewConfig``, ``make_view``, ``view_shape``
* ``background``: ``subtract_off_median``, ``off_median``
* ``drift_sums``: ``DedopplerConfig``, ``dedoppler`` (de-Doppler maps: the classical search and
  the ``dedoppler`` view)
* ``augment``: ``AugmentConfig``, ``Augmenter``, ``augment_and_mix``, ``augment_on_host``
* ``inject``: ``InjectConfig``, ``inject_needles`` (setigen needles as a batched TF op)
* ``mixup``: ``MixupConfig``, ``mixup_or``, ``cutmix_time``, ``mix``
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DataConfig": "pipeline", "fold_files": "pipeline", "list_shards": "pipeline",
    "train_dataset": "pipeline", "eval_dataset": "pipeline",
    "distributed_train_dataset": "pipeline", "distributed_eval_dataset": "pipeline",
    "ViewConfig": "views", "make_view": "views", "view_shape": "views",
    "subtract_off_median": "background", "off_median": "background",
    "DedopplerConfig": "drift_sums", "dedoppler": "drift_sums",
    "AugmentConfig": "augment", "Augmenter": "augment", "augment_and_mix": "augment",
    "augment_on_host": "augment",
    "InjectConfig": "inject", "inject_needles": "inject",
    "MixupConfig": "mixup", "mixup_or": "mixup", "cutmix_time": "mixup", "mix": "mixup",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
