"""NMF background channel: fits an exactly low-rank background, leaves an ON-only needle, equals a
numpy implementation of the same updates, commutes with the TTA flips, and runs the same eagerly,
in tf.data and under XLA, inside the view and an exported SavedModel."""

import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_harness import MODES, run
from tfseti.config import ConfigError, from_dict
from tfseti.data.config import ViewConfig
from tfseti.data.nmf import NMF_EPSILON, init_patterns, nmf_residual
from tfseti.data.off_median import subtract_off_median
from tfseti.data.views import make_view, normalize_columns, resize_images, view_shape
from tfseti.predict.tta import time_flip_panels
from tfseti.train.export import export_saved_model

ON, OFF = [0, 2, 4], [1, 3, 5]


def numpy_nmf_residual(cadence, rank, iterations):
    """The module doc's algorithm, written out in float64 numpy, one cadence at a time."""
    x = np.asarray(cadence, np.float64)
    _, _, time, freq = x.shape
    out = np.zeros_like(x)
    u_w, u_h = init_patterns(3 * time, freq, rank)
    for b in range(len(x)):
        v = x[b] - min(x[b].min(), 0.0)
        scale = max(v.mean(), 1e-30)
        v = v / scale
        off, on = v[OFF].reshape(3 * time, freq), v[ON].reshape(3 * time, freq)
        a = np.sqrt(off.mean() / rank)
        w, h = a * u_w, a * u_h
        for _ in range(iterations):
            h = h * (w.T @ off) / (w.T @ w @ h + NMF_EPSILON)
            w = w * (off @ h.T) / (w @ (h @ h.T) + NMF_EPSILON)
        w_on = np.repeat(on.mean(axis=1, keepdims=True) / (h.mean(axis=1).sum() + NMF_EPSILON), rank, 1)
        for _ in range(iterations):
            w_on = w_on * (on @ h.T) / (w_on @ (h @ h.T) + NMF_EPSILON)
        out[b, OFF] = ((off - w @ h) * scale).reshape(3, time, freq)
        out[b, ON] = ((on - w_on @ h) * scale).reshape(3, time, freq)
    return out


def noise_cadences(batch=2, time=8, freq=32, seed=0):
    """Standardised-looking cadences: noise, a bandpass, a slow gain drift (negative values)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 6, time, freq)) + rng.uniform(-2, 2, (batch, 1, 1, freq))
    x += np.linspace(0, 1, 6 * time).reshape(1, 6, time, 1) * rng.uniform(0, 1, (batch, 1, 1, freq))
    return x.astype(np.float32)


def low_rank_cadences(time=16, freq=64, seed=0):
    """A non-negative rank-3 background ``W0 H0`` (smooth spectra over a floor, pure rows in OFF
    panel B so the factorisation is unique) plus a needle drifting through the ON panels only."""
    rng = np.random.default_rng(seed)
    f = np.arange(freq)
    h0 = np.stack([np.exp(-0.5 * ((f - c) / 8) ** 2) + 0.05 for c in (10, 32, 54)])
    w0 = rng.uniform(0.2, 1.0, (2, 6, time, 3))
    w0[:, 1, :3] = 2 * np.eye(3)
    background = (w0.reshape(2, 6 * time, 3) @ h0).reshape(2, 6, time, freq)
    rows = np.arange(3 * time)
    needle_on = np.zeros((3 * time, freq))
    needle_on[rows, (20 + 0.5 * rows).astype(int)] = 1.0
    needle = np.zeros_like(background)
    needle[:, ON] = needle_on.reshape(3, time, freq)
    return (background + needle).astype(np.float32), background, needle_on, h0


def test_exact_low_rank_background_is_fitted_and_the_needle_is_what_remains():
    cadence, background, needle_on, h0 = low_rank_cadences()
    residual = run("xla", lambda c: nmf_residual(c, 4, 1000), cadence)   # rank 4 >= the data's 3
    off = residual[:, OFF]
    assert np.linalg.norm(off) / np.linalg.norm(background[:, OFF]) < 1e-4
    on = residual[:, ON].reshape(2, -1, cadence.shape[-1])
    # With H exact, the ON fit is a least-squares fit per row: what remains is the needle minus its
    # projection onto the background spectra's span (a few % of a one-pixel line), nothing else.
    projection = h0.T @ np.linalg.solve(h0 @ h0.T, h0)
    np.testing.assert_allclose(on, np.broadcast_to(needle_on - needle_on @ projection, on.shape),
                               atol=1e-4)
    for b in range(2):
        assert np.corrcoef(on[b].ravel(), needle_on.ravel())[0, 1] > 0.98
        assert np.abs(on[b][needle_on == 0]).max() < 0.1          # background up to ~2 is gone
        assert on[b][needle_on > 0].mean() > 0.95


@pytest.mark.parametrize("mode", MODES)
def test_equals_the_numpy_reference(mode):
    cadence = noise_cadences()
    residual = run(mode, lambda c: nmf_residual(c, 3, 20), cadence)
    assert residual.shape == cadence.shape and residual.dtype == np.float32
    np.testing.assert_allclose(residual, numpy_nmf_residual(cadence, 3, 20), atol=2e-4)


def test_flips_commute_and_scale_dtype_and_flat_input():
    cadence = noise_cadences(seed=1)
    residual = nmf_residual(cadence, 3, 30).numpy()
    # Time flip of the on / on_off views (TTA): time reversed, ON and OFF panels each reversed.
    flip_panels = [4, 5, 2, 3, 0, 1]
    flipped = nmf_residual(cadence[:, flip_panels, ::-1], 3, 30).numpy()
    np.testing.assert_allclose(flipped, residual[:, flip_panels, ::-1], atol=1e-4)
    np.testing.assert_allclose(nmf_residual(cadence[..., ::-1], 3, 30).numpy(), residual[..., ::-1],
                               atol=1e-4)
    # Scale-equivariant (the updates run at unit mean), float16 in -> float16 out.
    np.testing.assert_allclose(nmf_residual(1000 * cadence, 3, 30).numpy(), 1000 * residual,
                               atol=0.05)                           # float32 rounding at x1000
    half = nmf_residual(tf.constant(cadence, tf.float16), 3, 30)
    assert half.dtype == tf.float16
    np.testing.assert_allclose(half.numpy(), numpy_nmf_residual(cadence.astype(np.float16), 3, 30),
                               atol=2e-2)
    # A flat (all zero, or constant negative) cadence: finite zeros, no 0/0.
    for value in (0.0, -3.0):
        flat = nmf_residual(np.full((1, 6, 4, 8), value, np.float32), 2, 5).numpy()
        assert np.isfinite(flat).all() and np.abs(flat).max() < 1e-6


def test_each_view_appends_its_panels_nmf_residual_as_the_last_channel():
    time, freq = 8, 32
    cadence = noise_cadences(time=time, freq=freq, seed=2).astype(np.float16)
    residual = numpy_nmf_residual(cadence, 2, 10)
    for name, shown, channels in (("on", residual[:, ON], 2), ("on_off", residual[:, ON], 3),
                                  ("all", residual, 2)):
        cfg = ViewConfig(name, extra_channels=("nmf",), nmf_rank=2, nmf_iterations=10)
        image = make_view(cadence, cfg).numpy()
        assert image.shape == (2, *view_shape(cfg, 6, time, freq))
        assert image.shape[-1] == channels == view_shape(ViewConfig(name), 6, time, freq)[-1] + 1
        plain = make_view(cadence, ViewConfig(name)).numpy()
        np.testing.assert_array_equal(image[..., :-1], plain)
        np.testing.assert_allclose(image[..., -1], shown.reshape(2, -1, freq), atol=2e-4)


@pytest.mark.parametrize("mode", MODES)
def test_nmf_channel_comes_after_background_and_before_the_resize(mode):
    time, freq = 8, 32
    cadence = noise_cadences(time=time, freq=freq, seed=2).astype(np.float16)
    cfg = ViewConfig("on", resize=(12, 16), normalize_columns=True, background="off_median",
                     extra_channels=("nmf",), nmf_rank=2, nmf_iterations=10)
    image = run(mode, lambda c: make_view(c, cfg), cadence)
    assert image.shape == (2, 12, 16, 2) == (2, *view_shape(cfg, 6, time, freq))
    x = normalize_columns(subtract_off_median(cadence)).numpy()
    full = np.stack([x[:, ON].reshape(2, 3 * time, freq),
                     numpy_nmf_residual(x, 2, 10)[:, ON].reshape(2, 3 * time, freq)], axis=-1)
    np.testing.assert_allclose(image, resize_images(full, (12, 16), "bilinear").numpy(), atol=2e-4)


def test_view_shapes_and_the_exported_serving_graph(tmp_path):
    for name, shape in (("on", (819, 256, 2)), ("on_off", (819, 256, 3)), ("all", (1638, 256, 2))):
        assert view_shape(ViewConfig(name, extra_channels=["nmf"])) == shape
    assert view_shape(ViewConfig("on_off", resize=(64, 48), extra_channels=("nmf",))) == (64, 48, 3)
    cfg = ViewConfig("on_off", extra_channels=("nmf",), nmf_iterations=3)
    fn = tf.function(lambda c: make_view(c, cfg),
                     input_signature=[tf.TensorSpec([None, 6, 273, 256], tf.float16)])
    assert fn.get_concrete_function().structured_outputs.shape.as_list() == [None, 819, 256, 3]

    # Round trip through the SavedModel export (the serving graph holds the NMF loop).
    cfg = ViewConfig("on", extra_channels=("nmf",), nmf_rank=2, nmf_iterations=5)
    keras.utils.set_random_seed(0)
    inputs = keras.Input(view_shape(cfg, 6, 8, 32))
    net = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(inputs)))
    path = export_saved_model(net, cfg, str(tmp_path / "saved_model"), (6, 8, 32))
    cadence = tf.constant(noise_cadences(batch=3, seed=3), tf.float16)
    loaded = tf.saved_model.load(path)          # keep it: its variables live as long as it does
    served = loaded.serve(cadence).numpy()
    direct = tf.sigmoid(net(make_view(cadence, cfg))[:, 0]).numpy()
    np.testing.assert_allclose(served, direct, atol=1e-5)


def test_bad_settings_are_refused_with_the_field_named():
    bad = [(dict(extra_channels=("nmff",)), "ViewConfig.extra_channels: .*did you mean 'nmf'"),
           (dict(extra_channels="nmf"), "ViewConfig.extra_channels: expected a list"),
           (dict(extra_channels=("nmf", "nmf")), "named twice"),
           (dict(nmf_rank=0), "ViewConfig.nmf_rank: expected an int in"),
           (dict(nmf_rank=257), "ViewConfig.nmf_rank"),
           (dict(nmf_rank=True), "ViewConfig.nmf_rank"),
           (dict(nmf_iterations=0), "ViewConfig.nmf_iterations: expected an int in"),
           (dict(nmf_iterations=10001), "ViewConfig.nmf_iterations"),
           (dict(name="dedoppler", extra_channels=("nmf",)), "dedoppler view takes no extra")]
    for kwargs, message in bad:
        with pytest.raises(ValueError, match=message):
            ViewConfig(**kwargs)
    assert from_dict(ViewConfig, {"extra_channels": ["nmf"], "nmf_rank": 2}).extra_channels == ("nmf",)
    with pytest.raises(ConfigError, match="nmf_rank"):
        from_dict(ViewConfig, {"extra_channels": ["nmf"], "nmf_rank": 0})

    cfg = ViewConfig("on", extra_channels=("nmf",))
    with pytest.raises(ValueError, match="'nmf' needs the OFF panels"):
        view_shape(cfg, panels=3)
    with pytest.raises(ValueError, match="'nmf' needs the OFF panels"):
        make_view(tf.zeros([1, 3, 8, 32], tf.float16), cfg)
    with pytest.raises(ValueError, match="nmf_rank: expected an int in \\[1, 24\\]"):
        nmf_residual(tf.zeros([1, 6, 8, 32]), 25, 5)                 # 3T = 24 rows
    with pytest.raises(ValueError, match="OFF panels"):
        nmf_residual(tf.zeros([1, 3, 8, 32]), 2, 5)

    # Flip TTA: exact for on / on_off with nmf, refused for all + nmf.
    model = types.SimpleNamespace(path="m", panels=6, view={"name": "on", "extra_channels": ["nmf"]})
    assert time_flip_panels(model) == (4, 5, 2, 3, 0, 1)
    model.view = {"name": "all", "extra_channels": ["nmf"]}
    with pytest.raises(ValueError, match="'nmf' extra channel"):
        time_flip_panels(model)
