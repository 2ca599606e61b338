"""OFF-median background subtraction: removes what the OFF panels hold, keeps ON-only needles,
and runs the same eagerly, in tf.data and under XLA."""

import numpy as np
import pytest
import tensorflow as tf

from tf_harness import MODES, run, run_calls
from tfseti.data.off_median import off_median, subtract_off_median
from tfseti.data.config import ViewConfig
from tfseti.data.views import make_view, view_shape

T, F = 273, 256
LINE, NEEDLE = 100, 50          # columns of the all-panel RFI line and of the ON-only needle
ON, OFF = (0, 2, 4), (1, 3, 5)


def cadences(seed=0, batch=2):
    """Noise, a per-channel bandpass offset, a line in all six panels and a needle in ON panels only."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 6, T, F)).astype(np.float32)
    x += rng.uniform(-2, 2, (batch, 1, 1, F))          # bandpass: the same in every panel
    x[:, :, :, LINE] += 6.0
    x[:, ON, :, NEEDLE] += 4.0
    x[:, 1, 40:50, :] += 30.0                           # a burst in OFF panel B: the median ignores it
    return x.astype(np.float16)


def numpy_off_median(x):
    off = x.astype(np.float32)[:, OFF]                  # (B, 3, T, F)
    return np.median(off.reshape(x.shape[0], -1, x.shape[-1]), axis=1)[:, None, None, :]


@pytest.mark.parametrize("mode", MODES)
def test_off_median_removes_shared_line_and_keeps_on_only_needle(mode):
    x = cadences()
    (out,) = run_calls(mode, subtract_off_median, [(x,)])
    assert out.shape == x.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, x.astype(np.float32) - numpy_off_median(x), atol=1e-5)
    # The line (and the bandpass) is gone from every panel (rows outside B's burst) ...
    quiet = np.concatenate([out[:, :, :40], out[:, :, 50:]], axis=2)
    assert np.abs(quiet[:, :, :, LINE].mean(axis=2)).max() < 0.2
    others = [c for c in range(F) if c not in (LINE, NEEDLE)]
    assert np.abs(quiet.mean(axis=2)[:, :, others]).max() < 0.35
    # ... the needle stays, at its level, in the ON panels only.
    on_needle = out[:, ON, :, NEEDLE].mean(axis=2)
    np.testing.assert_allclose(on_needle, 4.0, atol=0.3)
    assert np.abs(out[:, [3, 5], :, NEEDLE].mean(axis=2)).max() < 0.2


def test_median_definition_with_an_even_count():
    # 3 OFF panels x 2 rows = 6 values per channel: the mean of the two middle ones.
    x = np.zeros((1, 6, 2, 3), np.float32)
    x[0, OFF, :, 0] = [[1, 2], [3, 4], [50, 60]]        # middle values 3 and 4
    x[0, OFF, :, 1] = [[-1, -1], [-1, 7], [7, 7]]       # middle values -1 and 7
    np.testing.assert_allclose(off_median(x).numpy()[0, 0, 0], [3.5, 3.0, 0.0])
    np.testing.assert_allclose(off_median(x).numpy(), numpy_off_median(x))


@pytest.mark.parametrize("mode", MODES)
def test_view_with_off_median_then_column_normalisation(mode):
    x = cadences(seed=1)
    cfg = ViewConfig("on", background="off_median")
    image = run(mode, lambda c: make_view(c, cfg), x)
    assert image.shape == (2, *view_shape(cfg))
    expected = (x.astype(np.float32) - numpy_off_median(x))[:, ON].reshape(2, 3 * T, F, 1)
    np.testing.assert_allclose(image, expected, atol=1e-5)
    normed = run(mode, lambda c: make_view(c, ViewConfig("all", background="off_median",
                                                         normalize_columns=True)), x)
    panels = normed[..., 0].reshape(2, 6, T, F)
    np.testing.assert_allclose(panels.mean(axis=2), 0, atol=1e-4)


def test_on_only_cadences_and_bad_names_are_refused():
    cfg = ViewConfig("on", background="off_median")
    with pytest.raises(ValueError, match="background 'off_median' needs the OFF panels"):
        make_view(tf.zeros([1, 3, T, F], tf.float16), cfg)
    with pytest.raises(ValueError, match="needs the OFF panels"):
        view_shape(cfg, panels=3)
    with pytest.raises(ValueError, match="OFF panels"):
        subtract_off_median(tf.zeros([1, 3, T, F], tf.float16))
    with pytest.raises(ValueError, match="ViewConfig.background"):
        ViewConfig(background="median")
    assert view_shape(ViewConfig("on"), panels=3) == (3 * T, F, 1)   # ON-only still fine without it
