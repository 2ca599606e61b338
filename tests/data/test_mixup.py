"""Mixup-OR, time CutMix and their schedule: formulas, ranges, per-sample randomness, modes."""

import numpy as np
import pytest

from tf_harness import MODES, prob, run_calls, seed
from tfseti.data import mixup as M
from tfseti.data import rng


def batch(n=16, height=12, width=6):
    r = np.random.default_rng(0)
    images = (r.standard_normal((n, height, width, 1)) + 3).astype(np.float32)
    targets = r.uniform(0, 1, n).astype(np.float32)          # soft labels
    targets[: n // 2] = np.round(targets[: n // 2])           # and hard ones
    return images, targets


def or_(a, b):
    return a + b - a * b


@pytest.mark.parametrize("mode", MODES)
def test_mixup_or_mixes_images_by_lambda_and_ors_the_targets(mode):
    x, y = batch()
    fn = lambda x, y, s, p: M.mixup_or(x, y, s, p, alpha=0.4)   # noqa: E731
    (x0, y0, i0), (x1, y1, i1), (a, _, ia), (b, _, _), (c, _, _) = run_calls(mode, fn, [
        (x, y, seed(1), prob(0.0)), (x, y, seed(1), prob(1.0)),
        (x, y, seed(2, 5), prob(0.5)), (x, y, seed(2, 5), prob(0.5)), (x, y, seed(2, 6), prob(0.5))])
    np.testing.assert_array_equal(x0, x)
    np.testing.assert_array_equal(y0, y)
    assert not i0["applied"].any()
    assert i1["applied"].all()
    partner, lam = i1["partner"], i1["lam"]
    assert (partner != np.arange(len(x))).all() and sorted(partner) == list(range(len(x)))
    assert len(set(lam.tolist())) == len(x) and ((lam > 0) & (lam < 1)).all()
    np.testing.assert_allclose(x1, lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * x[partner],
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y1, or_(y, y[partner]), atol=1e-6)
    assert ((y1 >= 0) & (y1 <= 1)).all() and (y1 >= np.maximum(y, y[partner]) - 1e-6).all()
    kept = ~ia["applied"]
    assert 0 < kept.sum() < len(x)
    np.testing.assert_array_equal(a[kept], x[kept])
    np.testing.assert_array_equal(b, a)
    assert not np.array_equal(a, c)


def test_max_rule_and_renormalisation():
    x, y = batch()
    out, targets, info = M.mixup_or(x, y, seed(3), 0.5, alpha=2.0, rule="max", renormalize=True)
    out, targets, applied = out.numpy(), targets.numpy(), info["applied"].numpy()
    partner = info["partner"].numpy()
    np.testing.assert_allclose(targets[applied], np.maximum(y, y[partner])[applied])
    np.testing.assert_allclose(out[applied].mean(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(out[applied].std(axis=(1, 2, 3)), 1, atol=1e-4)
    np.testing.assert_array_equal(out[~applied], x[~applied])


@pytest.mark.parametrize("mode", MODES)
def test_cutmix_takes_the_reported_rows_and_area_weights_the_or_targets(mode):
    x, y = batch()
    fn = lambda x, y, s, p: M.cutmix_time(x, y, s, p, lam="uniform")   # noqa: E731
    (x1, y1, info), (x0, y0, _) = run_calls(mode, fn, [(x, y, seed(4), prob(1.0)),
                                                       (x, y, seed(4), prob(0.0))])
    np.testing.assert_array_equal(x0, x)
    np.testing.assert_array_equal(y0, y)
    height = x.shape[1]
    partner, start, end, area = info["partner"], info["start"], info["end"], info["area"]
    assert len(set(zip(start.tolist(), end.tolist()))) > 4, "bands should differ per sample"
    for b in range(len(x)):
        band = np.zeros(height, bool)
        band[start[b]:end[b]] = True
        np.testing.assert_array_equal(x1[b][band], x[partner[b]][band])
        np.testing.assert_array_equal(x1[b][~band], x[b][~band])
        assert area[b] == pytest.approx(band.mean())
    a1, a2 = 1 - area, area
    np.testing.assert_allclose(y1, or_(a1 * y, a2 * y[partner]), atol=1e-6)
    assert ((y1 >= 0) & (y1 <= 1)).all()


def test_lambda_distributions():
    n = 20000
    for alpha in (5.0, 1.0, 0.4):        # 0.4 exercises the alpha < 1 branch of the gamma sampler
        lam = M.sample_lambda([n], seed(alpha * 10), "beta", alpha).numpy()
        assert ((lam >= 0) & (lam <= 1)).all()   # alpha < 1 piles mass at 0 and 1
        assert lam.mean() == pytest.approx(0.5, abs=0.01)
        assert lam.var() == pytest.approx(1 / (4 * (2 * alpha + 1)), rel=0.06)
    g = rng.gamma([n], seed(9), 3.0).numpy()             # Gamma(3, 1): mean 3, variance 3
    assert g.mean() == pytest.approx(3.0, rel=0.03) and g.var() == pytest.approx(3.0, rel=0.06)
    lam = M.sample_lambda([n], seed(1), "uniform", lam_range=(0.3, 0.6)).numpy()
    assert lam.min() >= 0.3 and lam.max() <= 0.6 and lam.mean() == pytest.approx(0.45, abs=0.01)


@pytest.mark.parametrize("mode", MODES)
def test_mix_uses_disjoint_fractions_and_stops_for_the_last_steps(mode):
    x, y = batch(n=32)
    cfg = M.MixupConfig(mixup_p=0.5, cutmix_p=0.5, alpha=1.0, off_after=0.8)
    fn = lambda x, y, s, step: M.mix(x, y, s, cfg, step=step, total_steps=10)   # noqa: E731
    (x7, y7, i7), (x8, y8, i8) = run_calls(mode, fn, [(x, y, seed(5), np.int64(7)),
                                                      (x, y, seed(5), np.int64(8))])
    used_mixup, used_cutmix = i7["mixup"]["applied"], i7["cutmix"]["applied"]
    assert i7["active"] and not i8["active"]
    assert not (used_mixup & used_cutmix).any() and (used_mixup | used_cutmix).all()
    assert used_mixup.sum() > 4 and used_cutmix.sum() > 4
    assert (np.abs(x7 - x).reshape(32, -1).max(1) > 0)[used_mixup].all()
    np.testing.assert_array_equal(x8, x)
    np.testing.assert_array_equal(y8, y)


def test_schedule_boundary():
    assert bool(M.mixing_active(79, 100, 0.8)) and not bool(M.mixing_active(80, 100, 0.8))
    assert bool(M.mixing_active(10 ** 6, 100, 1.0))


def test_config_validation():
    with pytest.raises(ValueError, match="mixup_p"):
        M.MixupConfig(mixup_p=-0.1)
    with pytest.raises(ValueError, match="<= 1"):
        M.MixupConfig(mixup_p=0.7, cutmix_p=0.5)
    with pytest.raises(ValueError, match="lam"):
        M.MixupConfig(lam="normal")
    with pytest.raises(ValueError, match="alpha"):
        M.MixupConfig(alpha=0)
    with pytest.raises(ValueError, match="lam_range"):
        M.MixupConfig(lam_range=(0.8, 0.2))
    assert not M.MixupConfig().active and M.MixupConfig(cutmix_p=0.1).active
