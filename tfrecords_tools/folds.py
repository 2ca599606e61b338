"""Stratified k-fold assignment written into every record's ``fold`` feature."""

from __future__ import annotations

import warnings

import numpy as np


def assign_folds(targets, n_folds: int, seed: int) -> np.ndarray:
    """Fold index (0..n_folds-1) of every record, stratified by target and seeded.

    scikit-learn ``StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)``: record i
    gets the index of the split whose validation part holds it. ``n_folds == 1`` puts everything
    in fold 0. Raises ValueError when there are fewer records than folds; warns (scikit-learn's
    warning) when a class has fewer members than folds.
    """
    from sklearn.model_selection import StratifiedKFold

    targets = np.asarray(targets, dtype=np.int64)
    n = len(targets)
    if n_folds < 1:
        raise ValueError(f"--folds must be >= 1, got {n_folds}")
    if n_folds == 1:
        return np.zeros(n, dtype=np.int64)
    if n < n_folds:
        raise ValueError(f"{n} labeled records cannot be split into {n_folds} folds")
    folds = np.full(n, -1, dtype=np.int64)
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        for fold, (_, valid) in enumerate(splitter.split(np.zeros(n), targets)):
            folds[valid] = fold
    return folds
