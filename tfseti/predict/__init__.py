"""Predict a test set with exported SavedModels: flip TTA, fold/model ensembles, a Kaggle submission.

``python -m tfseti.predict --model RUN_OR_SAVED_MODEL[,...] --data DATA [--tta flips]
[--ensemble mean|rank] --out submission.csv`` (``__main__``). One module per step:
``models`` (find and load the SavedModels; nothing of the trainer is imported), ``test_data``
(Kaggle folder or TFRecord shards, the id checks), ``tta`` (flips of the raw cadences equal to the
training flips of the view), ``random_tta`` (``--tta random:N``: the model's own exact training
augmentations, drawn per sample), ``ensembles`` (mean or rank), ``stacking`` (``--ensemble stack``:
a level-2 model over the runs' out-of-fold predictions) and ``submission`` (predict every id,
write ``id,target``). Their public names are re-exported here.
"""

# Public name -> the module that holds it. Imported on first use: the modules that need
# TensorFlow (models, tta, ...) stay out of a process that uses only the TensorFlow-free ones
# (test_data reading a Kaggle folder, submission writing: the classical search's command).
_WHERE = {
    "ENSEMBLES": "ensembles",
    "LOAD_THREADS": "test_data",
    "OofFeatures": "stacking",
    "Prediction": "submission",
    "RANDOM_OPS": "random_tta",
    "RandomTta": "random_tta",
    "RandomTtaPlan": "random_tta",
    "SIGNATURE_KEYS": "models",
    "STACKERS": "stacking",
    "ServingModel": "models",
    "StackResult": "stacking",
    "TestData": "test_data",
    "apply_ops": "random_tta",
    "check_ids": "test_data",
    "draw_ops": "random_tta",
    "ensemble": "ensembles",
    "fit_panels": "models",
    "fit_stack": "stacking",
    "kaggle_test_data": "test_data",
    "load_model": "models",
    "normalised_ranks": "ensembles",
    "oof_features": "stacking",
    "open_test_data": "test_data",
    "parse_stack": "stacking",
    "plan_random_tta": "random_tta",
    "predict": "submission",
    "read_oof_features": "stacking",
    "resolve_model_paths": "models",
    "run_features": "stacking",
    "shard_files": "test_data",
    "shard_test_data": "test_data",
    "stack_runs": "stacking",
    "write_stack_json": "stacking",
    "write_submission": "submission",
    "RANDOM_TTA": "tta",
    "TIME_FLIP_PANELS": "tta",
    "TTA_MODES": "tta",
    "check_tta": "tta",
    "flip_variants": "tta",
    "parse_tta": "tta",
    "predict_batch": "tta",
    "time_flip_panels": "tta",
}

__all__ = sorted([*_WHERE, "main"])


def __getattr__(name):
    # ``main`` is imported on first use only: importing ``__main__`` with the package would make
    # ``python -m tfseti.predict`` warn on stderr (runpy: found in sys.modules before execution).
    if name == "main":
        from tfseti.predict.__main__ import main

        return main
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
