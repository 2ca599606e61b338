"""Input views: every panel pixel lands where the view says, in eager, tf.data and XLA."""

import numpy as np
import pytest
import tensorflow as tf

from tf_harness import MODES, run, run_calls
from tfseti.data.config import ViewConfig
from tfseti.data.views import make_view, resize_images, view_shape

T, F = 273, 256


def marked_cadence(panels=6):
    """One cadence, zero except one pixel per panel: panel p holds p + 1 at (10 p + 3, 7 p + 5)."""
    cadence = np.zeros((1, panels, T, F), np.float16)
    for p in range(panels):
        cadence[0, p, 10 * p + 3, 7 * p + 5] = p + 1
    return cadence


def expected_pixels(view, panels=6):
    """``{(row, col, channel): value}`` the view must show for ``marked_cadence``."""
    on = (0, 2, 4) if panels == 6 else (0, 1, 2)
    out = {}
    for p in range(panels):
        t, f, value = 10 * p + 3, 7 * p + 5, p + 1
        if view == "all":
            out[(p * T + t, f, 0)] = value
        elif p in on:
            out[(on.index(p) * T + t, f, 0)] = value
        elif view == "on_off":                      # OFF panel B, C, D -> channel 1, slots 0, 1, 2
            out[((p - 1) // 2 * T + t, f, 1)] = value
    return out


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("view,panels", [("on", 6), ("on_off", 6), ("all", 6), ("on", 3)])
def test_each_panel_pixel_lands_where_the_view_says(view, panels, mode):
    cfg = ViewConfig(view)
    image = run(mode, lambda c: make_view(c, cfg), marked_cadence(panels))
    assert image.shape == (1, *view_shape(cfg, panels)) and image.dtype == np.float32
    found = {tuple(int(i) for i in idx[1:]): float(image[tuple(idx)]) for idx in np.argwhere(image)}
    assert found == expected_pixels(view, panels)


def test_views_needing_off_panels_reject_on_only_cadences():
    for view in ("on_off", "all"):
        with pytest.raises(ValueError, match="only the 3 ON"):
            make_view(tf.zeros([1, 3, T, F], tf.float16), ViewConfig(view))
        with pytest.raises(ValueError, match="only the 3 ON"):
            view_shape(ViewConfig(view), panels=3)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("method", ["bilinear", "bicubic", "area"])
def test_resize_equals_tf_image_resize_and_compiles(method, mode):
    rng = np.random.default_rng(0)
    images = rng.standard_normal((2, 30, 20, 2)).astype(np.float32)
    sizes = [(12, 33), (45, 8)]   # down and up on each axis
    for size in sizes:
        out = run(mode, lambda x: resize_images(x, size, method), images)
        reference = tf.image.resize(images, size, method=method, antialias=False).numpy()
        assert out.shape == (2, *size, 2)
        np.testing.assert_allclose(out, reference, atol=2e-5)


def test_resized_view_has_the_configured_static_shape_under_unknown_batch():
    cfg = ViewConfig("all", resize=(64, 48), resize_method="area")
    fn = tf.function(lambda c: make_view(c, cfg),
                     input_signature=[tf.TensorSpec([None, 6, T, F], tf.float16)])
    assert fn.get_concrete_function().structured_outputs.shape.as_list() == [None, 64, 48, 1]
    assert view_shape(cfg) == (64, 48, 1)


@pytest.mark.parametrize("mode", MODES)
def test_column_normalisation_standardises_every_column_of_every_panel(mode):
    rng = np.random.default_rng(1)
    # Per-column offsets and scales (a bandpass) that the normalisation must remove.
    cadence = (rng.standard_normal((2, 6, T, F)) * rng.uniform(0.5, 3, (1, 6, 1, F))
               + rng.uniform(-5, 5, (1, 6, 1, F))).astype(np.float16)
    cfg = ViewConfig("all", normalize_columns=True)
    (image,) = run_calls(mode, lambda c: make_view(c, cfg), [(cadence,)])
    panels = image[..., 0].reshape(2, 6, T, F)
    np.testing.assert_allclose(panels.mean(axis=2), 0, atol=1e-4)
    np.testing.assert_allclose(panels.std(axis=2), 1, atol=5e-3)   # epsilon 1e-3 in the divisor


def test_config_validation():
    with pytest.raises(ValueError, match="name"):
        ViewConfig("abacad")
    with pytest.raises(ValueError, match="resize_method"):
        ViewConfig(resize=(8, 8), resize_method="lanczos")
    with pytest.raises(ValueError, match="resize"):
        ViewConfig(resize=(8, 0))
    assert ViewConfig(resize=[8, 4]).resize == (8, 4)
