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
from tfseti.predict.tta import check_tta, predict_batch


@dataclass
class Prediction:
    ids: list[str]
    per_model: np.ndarray   # (n_models, N), TTA-averaged probabilities
    target: np.ndarray      # (N,), the ensemble


def predict(models: list[ServingModel], data: TestData, tta: str = "none", ensemble_method: str = "mean",
            batch_size: int = 16, progress: bool = False) -> Prediction:
    """Predict every test record with every model; checks the ids (see ``check_ids``)."""
    if batch_size < 1:
        raise ValueError(f"--batch-size: expected an int >= 1, got {batch_size}")
    check_tta(tta, models)   # fail before reading any data
    ids, chunks = [], []
    bar = None
    if show_progress(progress):  # a bar on a terminal only, not into logs
        from tqdm import tqdm

        bar = tqdm(total=data.expected_count, unit="cadence", desc="predict", file=sys.stderr)
    for batch_ids, cadence in data.batches(batch_size):
        chunks.append(predict_batch(models, cadence, tta))
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
