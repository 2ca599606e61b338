"""``tfseti.metrics``: the one ROC AUC of the project (trainer, out-of-fold CV, report, demo and
benchmarks) equals scikit-learn's, ties included, and is NaN wherever it is undefined."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from scipy.stats import rankdata

from tfseti.metrics import auc, average_ranks, is_defined, rank_auc

RNG = np.random.default_rng(0)


def test_rank_auc_is_roc_auc_with_ties():
    pos, neg = RNG.integers(0, 5, 40).astype(float), RNG.integers(0, 4, 70).astype(float)
    expected = roc_auc_score(np.r_[np.ones(40), np.zeros(70)], np.r_[pos, neg])
    assert rank_auc(pos, neg) == pytest.approx(expected)
    assert np.isnan(rank_auc([], neg)) and np.isnan(rank_auc(pos, []))


def test_auc_excludes_masked_rows_and_matches_sklearn():
    scores = RNG.normal(size=20)
    targets = (RNG.uniform(size=20) < 0.4).astype(int)
    targets[:2] = [0, 1]
    mask = np.ones(20, bool)
    mask[-4:] = False
    # Padding rows that would raise the AUC if they were counted.
    scores[-4:] = np.where(targets[-4:] == 1, 100.0, -100.0)
    expected = roc_auc_score(targets[:16], scores[:16])
    assert auc(targets, scores, mask) == pytest.approx(expected)
    assert auc(targets, scores, mask) != pytest.approx(roc_auc_score(targets, scores))
    assert auc(targets.astype(bool), scores) == pytest.approx(roc_auc_score(targets, scores))


def test_undefined_is_nan_and_bad_input_is_an_error():
    assert np.isnan(auc([0, 0], [0.1, 0.2])) and np.isnan(auc([], []))
    assert not is_defined(auc([1, 1], [0.1, 0.2])) and not is_defined(None)
    assert is_defined(auc([0, 1], [0.1, 0.2]))
    with pytest.raises(ValueError, match="3 scores for 2 targets"):
        auc([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"targets must be 0 or 1, got values \[0.0, 0.3"):
        auc([0.0, 0.3, 1.0], [0.1, 0.2, 0.3])


@pytest.mark.parametrize("shape, levels", [((1, 1), 3), ((7, 50), 4), ((3, 200), 1000), ((2, 9), 1)])
def test_average_ranks_are_scipy_rankdata_with_ties_and_nan_rows(shape, levels):
    values = RNG.integers(0, levels, shape).astype(float)   # levels=1: one tie group per row
    assert np.array_equal(average_ranks(values), rankdata(values, axis=-1))
    assert np.array_equal(average_ranks(values[0]), rankdata(values[0]))
    values[-1, 0] = np.nan
    ranks = average_ranks(values)
    assert np.isnan(ranks[-1]).all() and np.array_equal(ranks[:-1], rankdata(values[:-1], axis=-1))
