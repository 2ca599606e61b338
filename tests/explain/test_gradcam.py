"""Grad-CAM's numbers on hand-made Keras networks whose answer is known, and its errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tfseti.explain.gradcam import GradCamError, GradCamNetwork, feature_layer, gradcam

H, W = 8, 6


def bilinear(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Half-pixel-centre bilinear resize with clamped edges, one axis at a time (np.interp)."""
    out = image
    for axis, n_out in enumerate(size):
        n_in = out.shape[axis]
        source = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        out = np.apply_along_axis(lambda line: np.interp(source, np.arange(n_in), line), axis, out)
    return out


def net_with(conv: keras.layers.Layer, dense_kernel, dense_bias, units: int = 1,
             channels: int = 1) -> keras.Model:
    """image -> backbone (one conv, a nested model as create_model builds it) -> global average
    -> Dense(units): the score is linear in the feature map."""
    inner = keras.Input((H, W, channels))
    backbone = keras.Model(inner, conv(inner), name="backbone")
    image = keras.Input((H, W, channels), name="image")
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(backbone(image))
    dense = keras.layers.Dense(units, name="logits")
    net = keras.Model(image, dense(pooled), name="hand_made")
    dense.set_weights([np.asarray(dense_kernel, "float32").reshape(-1, units),
                       np.asarray(dense_bias, "float32").reshape(units)])
    return net


def identity_conv() -> keras.layers.Layer:
    return keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer="ones", name="identity")


def images(batch: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, H, W, 1)).astype("float32")


@pytest.mark.parametrize("weight", [2.5, -0.7])
def test_identity_feature_map_gives_the_relu_of_the_input(weight):
    # A = x (one channel), score = weight * mean(A) + 0.3: dscore/dA = weight / (H W) everywhere,
    # so CAM = ReLU(weight / (H W) * x): the ReLU of x (weight > 0) or of -x, up to scale.
    net = net_with(identity_conv(), [weight], [0.3])
    x = images()
    result = gradcam(net, x)
    expected = np.maximum(np.sign(weight) * x[..., 0], 0.0)
    expected /= expected.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(result.heat, expected, atol=1e-6)
    np.testing.assert_allclose(result.scores, weight * x.mean(axis=(1, 2, 3)) + 0.3, rtol=1e-5)
    assert result.layer == "backbone" and result.heat.shape == (3, H, W)
    assert result.heat.max() == pytest.approx(1.0)


def test_channel_weights_and_upsampling_of_a_strided_feature_map():
    # Two channels, 2x2 stride 2: A0 = 2x2 mean of x, A1 = -(2x2 mean); head weights 3 and 1:
    # channel weights 3/(hw) and 1/(hw), so CAM = ReLU(2/(hw) * mean2x2(x)), then bilinear to H x W.
    conv = keras.layers.Conv2D(2, 2, strides=2, use_bias=False, name="pool2")
    net = net_with(conv, [3.0, 1.0], [0.0])
    kernel = np.zeros((2, 2, 1, 2), "float32")
    kernel[..., 0, 0], kernel[..., 0, 1] = 0.25, -0.25
    conv.set_weights([kernel])
    x = images(batch=2, seed=1)
    result = gradcam(net, x)
    pooled = x[..., 0].reshape(2, H // 2, 2, W // 2, 2).mean(axis=(2, 4))
    coarse = np.maximum(pooled, 0.0)
    expected = np.stack([bilinear(c, (H, W)) for c in coarse])
    expected /= expected.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(result.heat, expected, atol=1e-5)
    np.testing.assert_allclose(result.scores, 2.0 * pooled.mean(axis=(1, 2)), rtol=1e-4, atol=1e-6)


def test_channel_weights_are_the_spatial_mean_of_a_spatially_varying_gradient():
    # A_k = c_k x (1x1 conv, c = [1, -2]); head: flatten -> Dense with weights v (h, w, k), so
    # dscore/dA_k = v[..., k] varies over space and the channel weight is its mean a_k:
    # CAM = ReLU((a_0 c_0 + a_1 c_1) x) (not ReLU(sum_k v_k A_k), the gradient times the input).
    inner = keras.Input((H, W, 1))
    conv = keras.layers.Conv2D(2, 1, use_bias=False, name="scale")
    backbone = keras.Model(inner, conv(inner), name="backbone")
    image = keras.Input((H, W, 1), name="image")
    dense = keras.layers.Dense(1, name="logits")
    net = keras.Model(image, dense(keras.layers.Flatten()(backbone(image))))
    conv.set_weights([np.array([1.0, -2.0], "float32").reshape(1, 1, 1, 2)])
    v = np.random.default_rng(4).standard_normal((H, W, 2)).astype("float32")
    dense.set_weights([v.reshape(-1, 1), np.zeros(1, "float32")])
    x = images(batch=2, seed=5)
    coefficient = v[..., 0].mean() * 1.0 + v[..., 1].mean() * -2.0
    assert abs(coefficient) > 0.1
    expected = np.maximum(coefficient * x[..., 0], 0.0)
    expected /= expected.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(gradcam(net, x).heat, expected, atol=1e-6)


def test_two_logit_head_explains_the_positive_log_odds():
    # Score = l1 - l0 = (w1 - w0) * mean(x) + (b1 - b0); w1 - w0 = -1.5 < 0: CAM = ReLU(-x).
    net = net_with(identity_conv(), [[0.5, -1.0]], [0.2, 0.1], units=2)
    x = images(batch=2, seed=2)
    result = gradcam(net, x)
    expected = np.maximum(-x[..., 0], 0.0)
    np.testing.assert_allclose(result.heat, expected / expected.max(axis=(1, 2), keepdims=True),
                               atol=1e-6)
    np.testing.assert_allclose(result.scores, -1.5 * x.mean(axis=(1, 2, 3)) - 0.1, rtol=1e-5)


def test_no_positive_evidence_gives_zero_heat_and_batches_are_independent():
    net = net_with(identity_conv(), [1.0], [0.0])
    x = images(batch=2, seed=3)
    x[0] = -np.abs(x[0])                         # nothing raises the score of sample 0
    result = GradCamNetwork(net)(x)
    assert np.all(result.heat[0] == 0.0)
    alone = GradCamNetwork(net)(x[1:])
    np.testing.assert_allclose(result.heat[1], alone.heat[0], atol=1e-7)


def test_a_network_without_backbone_uses_its_last_four_dimensional_layer():
    image = keras.Input((H, W, 1), name="image")
    first = keras.layers.Conv2D(2, 3, padding="same", name="conv_a")(image)
    second = keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer="ones",
                                 name="conv_b")(first)
    out = keras.layers.Dense(1, name="logits")(keras.layers.GlobalAveragePooling2D()(second))
    net = keras.Model(image, out)
    assert feature_layer(net).name == "conv_b"
    assert gradcam(net, images(1)).layer == "conv_b"


def test_errors_name_the_network_and_what_was_expected():
    image = keras.Input((4,), name="flat")
    flat = keras.Model(image, keras.layers.Dense(1)(image), name="flat_net")
    with pytest.raises(GradCamError, match="flat_net.*no 'backbone' layer and no layer with a 4-D"):
        feature_layer(flat)
    net = net_with(identity_conv(), [1.0], [0.0])
    with pytest.raises(GradCamError, match=r"images: expected \(batch, height, width, channels\)"):
        gradcam(net, np.zeros((H, W, 1), "float32"))
    two = keras.Model(net.inputs, [net.outputs[0], net.outputs[0]], name="two_outputs")
    with pytest.raises(GradCamError, match="two_outputs.*2 outputs, expected the logits alone"):
        gradcam(two, images(1))
