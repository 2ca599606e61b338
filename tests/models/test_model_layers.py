"""The custom layers alone: GeM, triplet attention, attention poolings, multi-sample dropout."""

import numpy as np
import pytest
import tensorflow as tf

from harness import run_layer_test
from tfseti.models.attention import TripletAttention
from tfseti.models.heads import FramewiseAttentionPooling, MultiSampleDropoutDense
from tfseti.models.pooling import GeMPooling2D, SpatialAttentionPooling2D, gem_pool


def positive_map(seed=0, shape=(3, 4, 5, 6)):
    return np.random.default_rng(seed).uniform(0.1, 2.0, shape).astype("float32")


def test_gem_at_p1_is_average_pooling():
    x = positive_map()
    np.testing.assert_allclose(GeMPooling2D(p=1.0)(x), x.mean(axis=(1, 2)), rtol=1e-5)


def test_gem_matches_power_mean():
    x = positive_map()
    expected = np.mean(x.astype("float64") ** 3, axis=(1, 2)) ** (1 / 3)
    np.testing.assert_allclose(gem_pool(x, 3.0), expected, rtol=1e-5)


def test_gem_approaches_max_pooling_as_p_grows():
    x = positive_map()
    maximum = x.max(axis=(1, 2))
    errors = [np.abs(np.asarray(gem_pool(x, p)) - maximum).max() for p in (3.0, 30.0, 1000.0)]
    assert errors[0] > errors[1] > errors[2]
    # N^(-1/p) bounds the gap: 20 positions, p = 1000 → within 0.3 %
    np.testing.assert_allclose(gem_pool(x, 1000.0), maximum, rtol=3e-3)


def test_gem_does_not_overflow_for_large_activations():
    x = positive_map() * 50.0  # 100 ** 30 overflows float32 in the plain power form
    out = np.asarray(gem_pool(x, 30.0))
    assert np.isfinite(out).all()
    assert (out <= x.max(axis=(1, 2)) * (1 + 1e-5)).all() and (out >= x.mean(axis=(1, 2))).all()


def test_gem_clamps_negative_inputs_to_eps():
    x = -positive_map()
    np.testing.assert_allclose(gem_pool(x, 3.0, eps=1e-6), 1e-6, rtol=1e-4)


def test_gem_p_is_learned_or_fixed():
    x = tf.constant(positive_map())
    learned = GeMPooling2D(p=3.0)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(learned(x))
    (grad,) = tape.gradient(loss, learned.trainable_weights)
    assert float(learned.p) == 3.0 and np.isfinite(grad) and grad != 0
    fixed = GeMPooling2D(p=4.0, p_trainable=False)
    fixed.build(x.shape)
    assert fixed.trainable_weights == [] and float(fixed.p) == 4.0
    clone = GeMPooling2D.from_config(fixed.get_config())
    assert (clone.initial_p, clone.p_trainable, clone.eps) == (4.0, False, fixed.eps)


def test_triplet_attention_with_neutral_gates_halves_the_input():
    x = np.random.default_rng(0).standard_normal((2, 4, 3, 8)).astype("float32")
    layer = TripletAttention()
    out = layer(x)
    assert out.shape == x.shape
    assert len(layer.trainable_weights) == 9  # 3 gates x (7x7 kernel, BN gamma, BN beta)
    for weight in layer.weights:
        if weight.path.endswith("kernel"):
            weight.assign(np.zeros(weight.shape, "float32"))
    # zero conv → BN(0) = 0 in inference → every gate is sigmoid(0) = 0.5 → mean of 3 halves
    np.testing.assert_allclose(layer(x, training=False), 0.5 * x, rtol=1e-4, atol=1e-3)


def test_attention_pooling_weights_frames():
    layer = FramewiseAttentionPooling(units=2)
    # a frame-constant map → every frame has the same logits → the clip logit equals them
    frame = np.random.default_rng(0).standard_normal((2, 1, 1, 6)).astype("float32")
    x = np.tile(frame, (1, 5, 4, 1))
    out = np.asarray(layer(x))
    assert out.shape == (2, 2)
    np.testing.assert_allclose(out, np.asarray(layer.cla(frame[:, 0, 0] * 2.0)), rtol=1e-5)
    # attention concentrates on frames with a higher attention score
    weights, frame_logits = layer.frame_outputs(np.random.default_rng(1).standard_normal(
        (2, 5, 4, 6)).astype("float32"))
    assert weights.shape == (2, 5, 2) and frame_logits.shape == (2, 5, 2)
    np.testing.assert_allclose(np.asarray(weights).sum(axis=1), 1.0, rtol=1e-5)


def test_multi_sample_dropout_is_dense_in_inference_and_unbiased_in_training():
    x = np.random.default_rng(0).standard_normal((4, 16)).astype("float32")
    layer = MultiSampleDropoutDense(units=2, rate=0.5, samples=4000, seed=3)
    dense = np.asarray(layer(x, training=False))
    np.testing.assert_allclose(dense, np.asarray(layer.dense(x)), rtol=1e-6)
    few = MultiSampleDropoutDense(units=2, rate=0.5, samples=2, seed=3)
    few.build(x.shape)
    few.dense.set_weights(layer.dense.get_weights())
    trained = np.asarray(layer(x, training=True))
    assert not np.allclose(np.asarray(few(x, training=True)), dense, atol=1e-3)
    np.testing.assert_allclose(trained, dense, atol=0.15)  # mean of 4000 masks ≈ no dropout


def focus_mask_on_channel0(layer, sharpness=100.0):
    """Weights of a SpatialAttentionPooling2D whose mask is sigmoid(sharpness · (f0 - 0.5)) for
    the normalised channel 0, f0: every conv passes channel 0 through its ReLU alone."""
    for conv in layer.convs:
        kernel = np.zeros(conv.kernel.shape, "float32")
        kernel[0, 0, 0, 0] = 1.0
        conv.set_weights([kernel, np.zeros(conv.bias.shape, "float32")])
    kernel = np.zeros(layer.mask_conv.kernel.shape, "float32")
    kernel[0, 0, 0, 0] = sharpness
    layer.mask_conv.set_weights([kernel, np.array([-sharpness / 2], "float32")])


def test_spatial_attention_pools_where_the_mask_points():
    rng = np.random.default_rng(0)
    x = rng.uniform(-2.0, 2.0, (3, 4, 5, 6)).astype("float32")
    x[..., 0] = 0.0
    hot = [(1, 3), (0, 0), (3, 4)]            # one marked position per example
    for b, (i, j) in enumerate(hot):
        x[b, i, j, 0] = 1.0
    layer = SpatialAttentionPooling2D(units=(8, 4, 2))
    layer.build(x.shape)
    focus_mask_on_channel0(layer)
    features, mask = (np.asarray(t) for t in layer.features_and_mask(x, training=False))
    pooled = np.asarray(layer(x, training=False))
    assert mask.shape == (3, 4, 5, 1) and pooled.shape == (3, 6)
    for b, (i, j) in enumerate(hot):
        assert mask[b, i, j, 0] > 0.999 and np.delete(mask[b].ravel(), i * 5 + j).max() < 1e-15
        # the pooled vector is that position's (batch-normalised) features, no dilution
        np.testing.assert_allclose(pooled[b], features[b, i, j], rtol=1e-5, atol=1e-6)
    # BN in inference with fresh statistics is x / sqrt(1 + eps): the input's own values
    np.testing.assert_allclose(features, x / np.sqrt(1 + layer.bn.epsilon), rtol=1e-6)


def test_spatial_attention_with_a_constant_mask_is_average_pooling():
    x = np.random.default_rng(1).standard_normal((2, 4, 3, 8)).astype("float32")
    layer = SpatialAttentionPooling2D()
    layer.build(x.shape)
    kernel, _ = layer.mask_conv.get_weights()
    layer.mask_conv.set_weights([np.zeros_like(kernel), np.array([-3.0], "float32")])
    features, mask = layer.features_and_mask(x, training=False)
    np.testing.assert_allclose(mask, 1 / (1 + np.exp(3.0)), rtol=1e-5)
    np.testing.assert_allclose(layer(x, training=False), np.asarray(features).mean(axis=(1, 2)),
                               rtol=1e-5, atol=1e-6)


def test_spatial_attention_computes_in_the_dtype_policy():
    x = np.random.default_rng(2).standard_normal((2, 4, 3, 8)).astype("float32")
    full = SpatialAttentionPooling2D()
    half = SpatialAttentionPooling2D(dtype="mixed_bfloat16")
    full.build(x.shape)
    half.build(x.shape)
    half.set_weights(full.get_weights())
    assert half.mask_conv.compute_dtype == "bfloat16" and half.bn.compute_dtype == "bfloat16"
    assert all(w.dtype == "float32" for w in half.weights)
    out = half(x, training=False)
    assert out.dtype == "bfloat16"
    np.testing.assert_allclose(np.asarray(out, "float32"), full(x, training=False), atol=0.05)


FEATURES = np.random.default_rng(5).uniform(0.1, 2.0, (2, 4, 3, 8)).astype("float32")


@pytest.mark.parametrize("layer, inputs, output_shape", [
    (GeMPooling2D(p=2.5, p_trainable=False, eps=1e-5), FEATURES, (2, 8)),
    (TripletAttention(kernel_size=5), FEATURES, (2, 4, 3, 8)),
    (FramewiseAttentionPooling(units=2), FEATURES, (2, 2)),
    (MultiSampleDropoutDense(units=1, rate=0.3, samples=3, seed=7), FEATURES[:, 0, 0], (2, 1)),
    (SpatialAttentionPooling2D(units=(8, 4), eps=1e-5), FEATURES, (2, 8)),
], ids=["gem", "triplet_attention", "attention_pooling", "multi_sample_dropout",
        "spatial_attention"])
def test_layer_contract(layer, inputs, output_shape):
    # finite outputs of the right shape, a safe-mode serialisation round trip, the same under XLA
    run_layer_test(layer, inputs, output_shape)
