"""The report's classical-search section: the same out-of-fold cadences scored by the de-Doppler
ON/OFF search (``tfseti.dedoppler``), its ROC beside the model's, and both AUCs per family and SNR.

Every model claim in this project is made next to this baseline; the report shows it on the
run's own validation data, so a run that learns less than a straight-line sum says so on page one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tfseti.metrics import auc
from tfseti.report.metrics import breakdown

CLASSICAL_SCORE = "two_of_three"
SCORE_BATCH = 64


def classical_scores(cadences: dict[str, np.ndarray], ids: list[str]) -> np.ndarray:
    """The classical ``two_of_three`` score of each id's cadence, in ``ids`` order."""
    from tfseti.data.config import DedopplerConfig
    from tfseti.dedoppler.scores import score_batch

    cfg = DedopplerConfig()
    out = []
    for start in range(0, len(ids), SCORE_BATCH):
        batch = np.stack([cadences[i] for i in ids[start:start + SCORE_BATCH]])
        out.append(score_batch(batch, cfg, pad_to=SCORE_BATCH).scores[CLASSICAL_SCORE])
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def comparison(oof: pd.DataFrame, classical: pd.DataFrame, truth: pd.DataFrame | None) -> pd.DataFrame:
    """Rows ``group, positives, negatives, model, classical`` (AUCs; NaN where undefined):
    overall, then per needle family and SNR bin when a truth file is known (the SNR bins are the
    model breakdown's, so both columns score the same cadences)."""
    rows = [{"group": "all", "positives": int((oof["target"] == 1).sum()),
             "negatives": int((oof["target"] == 0).sum()),
             "model": auc(oof["target"], oof["score"]),
             "classical": auc(classical["target"], classical["score"])}]
    if truth is None:
        return pd.DataFrame(rows)
    model, base = breakdown(oof, truth), breakdown(classical, truth)
    for kind, key in (("families", "family"), ("snr_bins", "bin")):
        a, b = getattr(model, kind), getattr(base, kind)
        for left, right in zip(a.itertuples(), b.itertuples()):
            label = getattr(left, key)
            rows.append({"group": f"family {label}" if key == "family" else f"SNR {label}",
                         "positives": left.positives, "negatives": left.negatives,
                         "model": left.auc, "classical": right.auc})
    return pd.DataFrame(rows)
