"""ROC AUC, one definition for the whole project: the trainer's validation AUC, the out-of-fold CV
AUC, the report's tables and curves, the demo's test AUC and the benchmarks' comparisons.

The AUC is the Mann-Whitney statistic (the fraction of positive/negative pairs in the right order,
ties counted half), computed from ranks in O(n log n); it equals scikit-learn's
``roc_auc_score``. ``rank_aucs`` computes it for many resamples at once (the bootstrap of
``tfseti.evaluate``). With no positive or no negative it is undefined: NaN, everywhere (the report
shows "undefined", the trainer warns). numpy only: the ranks are :func:`average_ranks`, not
``scipy.stats.rankdata``, whose import (1-2.6 s on 2 cores) every process that computes an AUC
(a training's validation, the report, the demo) would otherwise pay once.
"""

from __future__ import annotations

import math

import numpy as np


def average_ranks(values) -> np.ndarray:
    """Ranks 1..n along the last axis, tied values sharing their average rank; a row holding a
    NaN is all NaN. The same as ``scipy.stats.rankdata(values, axis=-1)`` (method "average")."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[-1]
    if n == 0:
        return np.zeros(values.shape)
    order = np.argsort(values, axis=-1, kind="stable")
    ordered = np.take_along_axis(values, order, axis=-1)
    starts = np.ones(ordered.shape, dtype=bool)       # a tie group starts at this position
    starts[..., 1:] = ordered[..., 1:] != ordered[..., :-1]
    ends = np.ones(ordered.shape, dtype=bool)         # a tie group ends at this position
    ends[..., :-1] = starts[..., 1:]
    position = np.arange(n)
    first = np.maximum.accumulate(np.where(starts, position, 0), axis=-1)
    last = n - 1 - np.maximum.accumulate(np.where(ends[..., ::-1], position, 0), axis=-1)[..., ::-1]
    ranks = np.empty(values.shape)
    np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=-1)
    return np.where(np.isnan(values).any(axis=-1, keepdims=True), np.nan, ranks)


def rank_auc(pos, neg) -> float:
    """ROC AUC of the scores of the positives ``pos`` against those of the negatives ``neg``
    (NaN when either is empty)."""
    pos = np.asarray(pos, dtype=np.float64).reshape(1, -1)
    neg = np.asarray(neg, dtype=np.float64).reshape(1, -1)
    return float(rank_aucs(pos, neg)[0])


def rank_aucs(pos, neg) -> np.ndarray:
    """Row by row, the ROC AUC of ``pos[i]`` against ``neg[i]`` (``(B, P)`` and ``(B, N)``
    scores: B bootstrap resamples at once); the same statistic as ``rank_auc``, NaN when P or N
    is 0."""
    pos = np.asarray(pos, dtype=np.float64)
    neg = np.asarray(neg, dtype=np.float64)
    n_pos, n_neg = pos.shape[1], neg.shape[1]
    if n_pos == 0 or n_neg == 0:
        return np.full(pos.shape[0], np.nan)
    ranks = average_ranks(np.concatenate([pos, neg], axis=1))[:, :n_pos]
    return (ranks.sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def auc(target, score, mask=None) -> float:
    """ROC AUC of ``score`` against the 0/1 ``target`` over the rows where ``mask`` is true
    (padding rows excluded); NaN when only one class is present."""
    score = np.asarray(score, dtype=np.float64).reshape(-1)
    target = np.asarray(target).reshape(-1)
    if mask is not None:
        keep = np.asarray(mask).reshape(-1).astype(bool)
        score, target = score[keep], target[keep]
    if score.shape != target.shape:
        raise ValueError(f"{score.shape[0]} scores for {target.shape[0]} targets")
    labels = set(np.unique(target).tolist())
    if not labels <= {0, 1}:
        raise ValueError(f"targets must be 0 or 1, got values {sorted(labels)[:5]}")
    positive = target == 1
    return rank_auc(score[positive], score[~positive])


def is_defined(value) -> bool:
    """False for an undefined AUC (NaN, or None where a table holds no value)."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))
