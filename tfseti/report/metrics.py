"""AUCs of out-of-fold predictions: overall, per fold, and per needle family / SNR bin.

A breakdown row scores the positives of one family (or SNR bin) against *all* negatives of the
out-of-fold set, so every row answers "how well are needles of this kind told from noise".
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tfseti.metrics import auc

TRUTH_COLUMNS = ("id", "target", "family", "snr")
MAX_SNR_BINS = 4


def read_truth(path: str) -> pd.DataFrame:
    """``truth.csv`` (local or URL): at least ``id, target, family, snr``; errors name the file."""
    from tfseti.io import fs as fsutil

    fs, inner = fsutil.url_to_fs(path)
    try:
        with fs.open(inner, "rb") as handle:
            text = handle.read().decode("utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: truth file not found") from None
    try:
        truth = pd.read_csv(io.StringIO(text), dtype={"id": str, "family": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ValueError(f"{path}: cannot parse csv ({' '.join(str(err).split())})") from None
    missing = [c for c in TRUTH_COLUMNS if c not in truth.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}, expected the truth.csv of "
                         f"tfseti.synth (id, target, split, family, snr, ...)")
    if "split" in truth.columns:  # a synthetic dataset's test ids never appear out of fold
        truth = truth[truth["split"].fillna("train") != "test"]
    truth = truth.assign(snr=pd.to_numeric(truth["snr"], errors="coerce"),
                         family=truth["family"].fillna(""))
    duplicated = truth["id"][truth["id"].duplicated()]
    if len(duplicated):
        raise ValueError(f"{path}: id {duplicated.iloc[0]!r} appears more than once")
    return truth


@dataclass
class Breakdown:
    """AUC by needle family and by SNR bin of the out-of-fold positives found in the truth."""

    families: pd.DataFrame      # family, positives, negatives, auc (NaN: undefined)
    snr_bins: pd.DataFrame      # bin, low, high, positives, negatives, auc
    snr_rule: str               # how the bins were chosen, for the page
    matched: int                # out-of-fold rows found in the truth
    unmatched: int              # out-of-fold rows absent from it
    label_conflicts: int        # rows whose oof target differs from the truth's


def _rows(oof_neg_scores, groups) -> list[dict]:
    rows = []
    for key, scores in groups:
        target = np.r_[np.ones(len(scores)), np.zeros(len(oof_neg_scores))]
        rows.append({**key, "positives": len(scores), "negatives": len(oof_neg_scores),
                     "auc": auc(target, np.r_[scores, oof_neg_scores])})
    return rows


def snr_edges(snr: np.ndarray) -> np.ndarray:
    """Bin edges: quantiles of the positives' SNR, up to four bins with at least two positives
    each (so each bin's AUC rests on more than one needle), edges rounded to 0.1."""
    snr = np.sort(snr[np.isfinite(snr)])
    if snr.size == 0:
        return np.array([])
    n_bins = int(max(1, min(MAX_SNR_BINS, snr.size // 2)))
    edges = np.quantile(snr, np.linspace(0.0, 1.0, n_bins + 1))
    edges[0], edges[-1] = np.floor(snr[0] * 10) / 10, np.ceil(snr[-1] * 10) / 10
    edges[1:-1] = np.round(edges[1:-1], 1)
    return np.unique(edges)


def breakdown(oof: pd.DataFrame, truth: pd.DataFrame) -> Breakdown:
    joined = oof.merge(truth[list(TRUTH_COLUMNS)], on="id", how="inner", suffixes=("", "_truth"))
    conflicts = int((joined["target"] != joined["target_truth"]).sum())
    negatives = joined.loc[joined["target"] == 0, "score"].to_numpy()
    positives = joined[joined["target"] == 1]
    families = sorted(f for f in positives["family"].unique())
    family_rows = _rows(negatives, [({"family": f or "(none)"},
                                     positives.loc[positives["family"] == f, "score"].to_numpy())
                                    for f in families])
    snr = positives["snr"].to_numpy(dtype=np.float64)
    edges = snr_edges(snr)
    snr_groups = []
    for i, (low, high) in enumerate(zip(edges[:-1], edges[1:])):
        last = i == len(edges) - 2
        inside = (snr >= low) & ((snr <= high) if last else (snr < high))
        label = f"[{low:g}, {high:g}]" if last else f"[{low:g}, {high:g})"
        snr_groups.append(({"bin": label, "low": low, "high": high},
                           positives["score"].to_numpy()[inside]))
    if len(edges) == 1:  # every positive has the same SNR
        snr_groups.append(({"bin": f"{edges[0]:g}", "low": edges[0], "high": edges[0]},
                           positives["score"].to_numpy()))
    no_snr = ~np.isfinite(snr)
    if no_snr.any():
        snr_groups.append(({"bin": "unknown", "low": np.nan, "high": np.nan},
                           positives["score"].to_numpy()[no_snr]))
    rule = (f"{max(len(edges) - 1, 1)} bin(s) at the quantiles of the SNR of the "
            f"{len(positives)} out-of-fold positives (at least two per bin, at most "
            f"{MAX_SNR_BINS} bins); each bin's positives against all {len(negatives)} negatives")
    return Breakdown(
        families=pd.DataFrame(family_rows, columns=["family", "positives", "negatives", "auc"]),
        snr_bins=pd.DataFrame(_rows(negatives, snr_groups),
                              columns=["bin", "low", "high", "positives", "negatives", "auc"]),
        snr_rule=rule, matched=len(joined), unmatched=len(oof) - len(joined),
        label_conflicts=conflicts)
