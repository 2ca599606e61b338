"""Every test id predicted by every model, ensembled, written as a Kaggle submission.

The output is ``id,target``, every test id exactly once (in the sample submission's order for a
Kaggle folder, in read order for shards); a missing or duplicated id is an error.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import numpy as np

from tfseti.console import show_progress
from tfseti.predict.ensembles import ensemble
from tfseti.predict.models import ServingModel
from tfseti.predict.test_data import TestData, check_ids
from tfseti.predict.tta import RANDOM_TTA, check_tta, parse_tta, predict_batch


@dataclass
class Prediction:
    ids: list[str]
    per_model: np.ndarray   # (n_models, N), TTA-averaged probabilities
    target: np.ndarray      # (N,), the ensemble


def predict(models: list[ServingModel], data: TestData, tta: str = "none", ensemble_method: str = "mean",
            batch_size: int = 16, progress: bool = False, tta_seed: int = 0,
            random_tta: "RandomTta | None" = None) -> Prediction:
    """Predict every test record with every model; checks the ids (see ``check_ids``).

    ``tta``: ``none``, ``flips`` or ``random:N`` (seeded by ``tta_seed``; or pass the
    ``RandomTta`` already built for these models as ``random_tta``, e.g. to print its plans).
    """
    if batch_size < 1:
        raise ValueError(f"--batch-size: expected an int >= 1, got {batch_size}")
    mode, passes = parse_tta(tta)   # fail before reading any data
    if mode == RANDOM_TTA:
        # here, not at the top: writing a submission (the classical search's) needs no TensorFlow
        from tfseti.predict.random_tta import RandomTta

        if random_tta is None:
            random_tta = RandomTta(models, passes, tta_seed)
        elif (random_tta.passes, random_tta.seed, len(random_tta.plans)) != (passes, tta_seed, len(models)):
            raise ValueError(f"predict: random_tta was built for {random_tta.passes} passes, seed "
                             f"{random_tta.seed} and {len(random_tta.plans)} model(s); --tta {tta}, "
                             f"--tta-seed {tta_seed} and {len(models)} model(s) given")
        batch_predict = random_tta.predict_batch
    else:
        check_tta(tta, models)

        def batch_predict(models, cadence):
            return predict_batch(models, cadence, tta)
    ids, chunks = [], []
    bar = None
    if show_progress(progress):  # a bar on a terminal only, not into logs
        from tqdm import tqdm

        bar = tqdm(total=data.expected_count, unit="cadence", desc="predict", file=sys.stderr)
    for batch_ids, cadence in data.batches(batch_size):
        chunks.append(batch_predict(models, cadence))
        ids.extend(batch_ids)
        if bar is not None:
            bar.update(len(batch_ids))
    if bar is not None:
        bar.close()
    check_ids(ids, data.expected_ids, data.expected_count)
    per_model = np.concatenate(chunks, axis=1) if chunks else np.zeros((len(models), 0), np.float32)
    return Prediction(ids, per_model, ensemble(per_model, ensemble_method))


def write_submission(prediction: Prediction, out: str) -> str:
    """Write ``id,target`` (local path or fsspec URL); returns ``out``."""
    import pandas as pd

    from tfseti.io import fs as fsutil

    fs, inner = fsutil.url_to_fs(out)
    parent = os.path.dirname(inner)
    if parent and not fsutil.is_url(out):
        os.makedirs(parent, exist_ok=True)
    frame = pd.DataFrame({"id": prediction.ids, "target": prediction.target})
    with fs.open(inner, "w") as handle:
        frame.to_csv(handle, index=False)
    return out
