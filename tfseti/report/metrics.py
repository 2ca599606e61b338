"""AUCs of out-of-fold predictions per needle family / SNR group, on ``tfseti.evaluate``'s truth
reading, groups and AUC.

A breakdown row scores the positives of one family (or SNR group) against *all* negatives of the
out-of-fold set, so every row answers "how well are needles of this kind told from noise". The
out-of-fold ids are a subset of the truth's (the rows missing from it are counted, not an error:
a run may have been trained on other data); oof.csv's targets are used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tfseti import evaluate
from tfseti.evaluate import TRUTH_COLUMNS


def read_truth(path: str) -> pd.DataFrame:
    """The out-of-fold candidates of ``truth.csv`` (local or URL): every row but the test split's
    (a synthetic dataset's test ids never appear out of fold); errors name the file."""
    return evaluate.read_truth(path, exclude_split="test")


@dataclass
class Breakdown:
    """AUC by needle family and by SNR group of the out-of-fold positives found in the truth."""

    families: pd.DataFrame      # family, positives, negatives, auc (None: undefined)
    snr_bins: pd.DataFrame      # bin, positives, negatives, auc
    snr_rule: str               # how the groups were chosen, for the page
    matched: int                # out-of-fold rows found in the truth
    unmatched: int              # out-of-fold rows absent from it
    label_conflicts: int        # rows whose oof target differs from the truth's


def joined(oof: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """The out-of-fold rows found in the truth, with its ``family`` and ``snr`` (and its target
    as ``target_truth``)."""
    return oof.merge(truth[list(TRUTH_COLUMNS)], on="id", how="inner",
                     suffixes=("", "_truth")).reset_index(drop=True)


def breakdown(oof: pd.DataFrame, truth: pd.DataFrame) -> Breakdown:
    table = joined(oof, truth)
    conflicts = int((table["target"] != table["target_truth"]).sum())
    rows = evaluate.compare(table, {"score": table["score"].to_numpy(np.float64)}, n_boot=0)

    def frame(kind: str, key: str) -> pd.DataFrame:
        return pd.DataFrame([{key: r["group"], "positives": r["n_pos"], "negatives": r["n_neg"],
                              "auc": r["auc_score"]} for r in rows if r["kind"] == kind],
                            columns=[key, "positives", "negatives", "auc"])

    positives = (table["target"] == 1).to_numpy()
    rule = evaluate.snr_groups(table["snr"].to_numpy(np.float64)[positives])[1]
    rule += (f", over the {int(positives.sum())} out-of-fold positives; each group's positives "
             f"against all {int((~positives).sum())} negatives")
    return Breakdown(families=frame("family", "family"), snr_bins=frame("snr", "bin"),
                     snr_rule=rule, matched=len(table), unmatched=len(oof) - len(table),
                     label_conflicts=conflicts)
