"""The report's classical-search section: the same out-of-fold cadences scored by the de-Doppler
ON/OFF search (``tfseti.dedoppler``), its ROC beside the model's, and both AUCs per family and SNR.

Every model claim in this project is made next to this baseline; the report shows it on the
run's own validation data, so a run that learns less than a straight-line sum says so on page one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tfseti.evaluate import compare
from tfseti.report.metrics import joined

CLASSICAL_SCORE = "two_of_three"
SCORE_BATCH = 64
BOOTSTRAP = 1000  # paired resamples for the interval of the difference model - classical


def classical_scores(cadences: dict[str, np.ndarray], ids: list[str]) -> np.ndarray:
    """The classical ``two_of_three`` score of each id's cadence, in ``ids`` order."""
    from tfseti.data.config import DedopplerConfig
    from tfseti.dedoppler.window_scores import score_batch   # the numpy + Numba kernel

    cfg = DedopplerConfig()
    out = []
    for start in range(0, len(ids), SCORE_BATCH):
        batch = np.stack([cadences[i] for i in ids[start:start + SCORE_BATCH]])
        out.append(score_batch(batch, cfg, panel_maxima=False).scores[CLASSICAL_SCORE])
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def comparison(oof: pd.DataFrame, classical: pd.DataFrame, truth: pd.DataFrame | None,
               n_boot: int = BOOTSTRAP, seed: int = 0) -> pd.DataFrame:
    """Rows ``group, positives, negatives, model, classical`` (AUCs; None where undefined),
    ``difference`` (model - classical) and ``interval`` (its 95 % paired-bootstrap interval,
    ``tfseti.evaluate.compare``): overall (every out-of-fold row), then per needle family and SNR
    group when a truth file is known (the rows found in it). ``classical`` holds the same ids and
    targets as ``oof``, in the same order, with its own scores."""
    if list(classical["id"]) != list(oof["id"]):
        raise ValueError("comparison: the classical scores must be of the out-of-fold ids, in order")

    def scored(table: pd.DataFrame, by) -> list[dict]:
        scores = {name: table[["id"]].merge(frame[["id", "score"]], on="id")["score"]
                  .to_numpy(np.float64) for name, frame in (("model", oof), ("classical", classical))}
        return compare(table, scores, model="model", n_boot=n_boot, seed=seed, by=by)

    rows = scored(oof[["id", "target"]].reset_index(drop=True), ())
    if truth is not None:
        rows += scored(joined(oof, truth), ("family", "snr"))[1:]
    out = []
    for r in rows:
        group = {"overall": r["group"], "family": f"family {r['group']}",
                 "snr": f"SNR {r['group']}"}[r["kind"]]
        out.append({"group": group, "positives": r["n_pos"], "negatives": r["n_neg"],
                    "model": r["auc_model"], "classical": r["auc_classical"],
                    "difference": r["diff_classical"], "interval": r["ci_diff_classical"]})
    return pd.DataFrame(out, columns=["group", "positives", "negatives", "model", "classical",
                                      "difference", "interval"])
