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

from tfseti.predict.ensembles import ENSEMBLES, ensemble, normalised_ranks
from tfseti.predict.models import SIGNATURE_KEYS, ServingModel, fit_panels, load_model, resolve_model_paths
from tfseti.predict.random_tta import RANDOM_OPS, RandomTta, RandomTtaPlan, apply_ops, draw_ops, plan_random_tta
from tfseti.predict.stacking import (STACKERS, OofFeatures, StackResult, fit_stack, oof_features, parse_stack,
                                     read_oof_features, run_features, stack_runs, write_stack_json)
from tfseti.predict.submission import Prediction, predict, write_submission
from tfseti.predict.test_data import (LOAD_THREADS, TestData, check_ids, kaggle_test_data, open_test_data,
                                      shard_files, shard_test_data)
from tfseti.predict.tta import (RANDOM_TTA, TIME_FLIP_PANELS, TTA_MODES, check_tta, flip_variants, parse_tta,
                                predict_batch, time_flip_panels)

__all__ = ["ENSEMBLES", "LOAD_THREADS", "Prediction", "SIGNATURE_KEYS", "ServingModel", "TIME_FLIP_PANELS",
           "TTA_MODES", "TestData", "check_ids", "check_tta", "ensemble", "fit_panels", "flip_variants",
           "kaggle_test_data", "load_model", "main", "normalised_ranks", "open_test_data", "predict",
           "predict_batch", "resolve_model_paths", "shard_files", "shard_test_data", "time_flip_panels",
           "write_submission",
           "RANDOM_OPS", "RANDOM_TTA", "RandomTta", "RandomTtaPlan", "apply_ops", "draw_ops", "parse_tta",
           "plan_random_tta",
           "STACKERS", "OofFeatures", "StackResult", "fit_stack", "oof_features", "parse_stack",
           "read_oof_features", "run_features", "stack_runs", "write_stack_json"]


def __getattr__(name):
    # ``main`` is imported on first use only: importing ``__main__`` with the package would make
    # ``python -m tfseti.predict`` warn on stderr (runpy: found in sys.modules before execution).
    if name == "main":
        from tfseti.predict.__main__ import main

        return main
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
