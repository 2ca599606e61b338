"""Out-of-fold predictions: one row per validation record, joined to its id, and the CV AUC."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tfseti.metrics import auc


def fold_frame(outputs: dict, ids_by_index: dict[int, str], fold: int) -> pd.DataFrame:
    """``id, fold, target, score`` for every real (unmasked) row of ``model.predict`` outputs.

    ``outputs`` holds ``index`` (the record's position in the fold's read order), ``target``,
    ``score`` (positive log-odds) and ``mask``; ``ids_by_index`` maps index -> id.
    """
    keep = np.asarray(outputs["mask"]).reshape(-1).astype(bool)
    index = np.asarray(outputs["index"]).reshape(-1)[keep].astype(np.int64)
    if len(set(index.tolist())) != index.size:
        raise ValueError(f"fold {fold}: validation records predicted more than once")
    missing = set(ids_by_index) - set(index.tolist())
    if missing:
        raise ValueError(f"fold {fold}: {len(missing)} validation records were not predicted")
    frame = pd.DataFrame({
        "id": [ids_by_index[int(i)] for i in index],
        "fold": fold,
        "target": np.asarray(outputs["target"]).reshape(-1)[keep].astype(np.int64),
        "score": np.asarray(outputs["score"], dtype=np.float64).reshape(-1)[keep],
    })
    return frame.sort_values("id", kind="stable").reset_index(drop=True)


def cv_auc(frames: list[pd.DataFrame]) -> tuple[pd.DataFrame, float]:
    """All folds' rows in one frame, and the ROC AUC over them (each id exactly once)."""
    oof = pd.concat(frames, ignore_index=True)
    duplicated = oof["id"][oof["id"].duplicated()]
    if len(duplicated):
        raise ValueError(f"ids in more than one validation fold, e.g. {duplicated.iloc[0]!r}")
    return oof, auc(oof["target"], oof["score"])
