"""Ensembles across models (``--ensemble``): ``mean`` of the (TTA-averaged) probabilities, or
``rank``, the mean of each model's ranks normalised to [0, 1] (``(rank - 1) / (n - 1)``, ties
averaged).
"""

from __future__ import annotations

import numpy as np

from tfseti.metrics import average_ranks

ENSEMBLES = ("mean", "rank")


def normalised_ranks(probs: np.ndarray) -> np.ndarray:
    """Ranks of ``probs`` (ties averaged) scaled to [0, 1]: ``(rank - 1) / (n - 1)``."""
    if len(probs) < 2:
        return np.full(len(probs), 0.5)
    return (average_ranks(probs) - 1.0) / (len(probs) - 1.0)


def ensemble(per_model: np.ndarray, method: str) -> np.ndarray:
    """Combine ``(n_models, N)`` probabilities: ``mean``, or ``rank`` (mean of normalised ranks)."""
    if method not in ENSEMBLES:
        raise ValueError(f"--ensemble: expected one of {ENSEMBLES}, got {method!r}")
    if method == "rank":
        per_model = np.stack([normalised_ranks(p) for p in per_model])
    return per_model.mean(axis=0)
