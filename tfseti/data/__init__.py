"""Dataset validation, the tf.data pipeline, input views, batched augmentation and mixup-OR.

Importing this package is cheap (no TensorFlow): the names below load their module on first use,
so ``python -m tfseti.data.validate`` never pays for TensorFlow.

* ``config``: the recipe sections ``DataConfig``, ``ViewConfig``, ``DedopplerConfig``,
  ``AugmentConfig``, ``InjectConfig``, ``MixupConfig`` (no TensorFlow)
* ``pipeline``: ``fold_files``, ``train_dataset``, ``eval_dataset``,
  ``distributed_train_dataset``, ``distributed_eval_dataset``
* ``balance``: class balancing of the training records (``data.balance``)
* ``views``: ``make_view``, ``view_shape``
* ``off_median``: ``subtract_off_median``, ``off_median`` (online background removal)
* ``nmf``: ``nmf_residual`` (every panel minus its NMF background: the view's ``nmf`` channel)
* ``drift_sums``: ``dedoppler`` (de-Doppler maps: the classical search and the ``dedoppler`` view)
* ``augment_ops``: the batched augmentation ops; ``augmenter``: ``Augmenter``,
  ``augment_and_mix``, ``augment_on_host``
* ``inject``: ``inject_needles`` (setigen needles as a batched TF op)
* ``mixup``: ``mixup_or``, ``cutmix_time``, ``mix``
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DataConfig": "config", "ViewConfig": "config", "DedopplerConfig": "config",
    "AugmentConfig": "config", "InjectConfig": "config", "MixupConfig": "config",
    "fold_files": "pipeline", "list_shards": "pipeline",
    "train_dataset": "pipeline", "eval_dataset": "pipeline",
    "distributed_train_dataset": "pipeline", "distributed_eval_dataset": "pipeline",
    "make_view": "views", "view_shape": "views",
    "subtract_off_median": "off_median", "off_median": "off_median",
    "nmf_residual": "nmf",
    "dedoppler": "drift_sums",
    "Augmenter": "augmenter", "augment_and_mix": "augmenter", "augment_on_host": "augmenter",
    "inject_needles": "inject",
    "mixup_or": "mixup", "cutmix_time": "mixup", "mix": "mixup",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
