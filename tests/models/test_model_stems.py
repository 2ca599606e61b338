"""Stem pieces without a backbone: kernel adaptation, stem padding, functional-config edits."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfseti.models import graph_edit
from tfseti.models.efficientnet.backbone import KERAS_DROP_CONNECT_RATE
from tfseti.models.stems import adapt_input_conv, same_padding


def rgb_kernel(seed=0):
    return np.random.default_rng(seed).standard_normal((3, 3, 3, 8)).astype("float32")


def conv(x, kernel):
    return np.asarray(tf.nn.conv2d(x, kernel, strides=1, padding="SAME"))


def test_one_channel_is_the_rgb_sum():
    kernel = rgb_kernel()
    adapted = adapt_input_conv(kernel, 1)
    assert adapted.shape == (3, 3, 1, 8)
    np.testing.assert_allclose(adapted[:, :, 0], kernel.sum(axis=2), rtol=1e-6)


def test_two_channels_repeat_rgb_and_rescale():
    kernel = rgb_kernel()
    adapted = adapt_input_conv(kernel, 2)
    np.testing.assert_allclose(adapted, kernel[:, :, :2] * 1.5, rtol=1e-6)


@pytest.mark.parametrize("in_chans, copies", [(1, 1), (6, 2)])
def test_replicated_grey_input_gives_the_rgb_response(in_chans, copies):
    kernel = rgb_kernel()
    grey = np.random.default_rng(1).standard_normal((2, 8, 6, 1)).astype("float32")
    rgb_response = conv(np.repeat(grey, 3, axis=-1), kernel)
    adapted_response = conv(np.repeat(grey, in_chans, axis=-1), adapt_input_conv(kernel, in_chans))
    np.testing.assert_allclose(adapted_response, rgb_response, rtol=1e-4, atol=1e-5)


def test_adapt_rejects_a_non_rgb_kernel():
    with pytest.raises(ValueError, match=r"\(kh, kw, 3, out\)"):
        adapt_input_conv(np.zeros((3, 3, 4, 8)), 1)


@pytest.mark.parametrize("size", [31, 32, 273])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("kernel", [3, 7])   # 7: a ResNet stem
def test_same_padding_gives_tf_same_output(size, stride, kernel):
    before, after = same_padding(size, stride, kernel)
    valid_out = (size + before + after - kernel) // stride + 1
    assert valid_out == -(-size // stride)  # TF SAME: ceil(size / stride)
    assert 0 <= after - before <= 1          # TF puts the odd pixel after
    if kernel == 3 and stride == 2 and size % 2 == 0:
        assert (before, after) == (0, 1)  # Keras' correct_pad for the V1 stem


@pytest.mark.parametrize("strides", [(2, 2), (1, 1), (1, 2)])
def test_resnet_stem_pads_symmetrically_to_same_sizes(strides):
    """The ResNet stem keeps the application's 3 + 3 padding of its 7x7 conv for every stride:
    odd and even sizes give TF SAME's ceil(n / stride) (the application's geometry, which
    TF SAME's (2, 3) split would shift by a pixel)."""
    from tfseti.models.resnet import RESNET_SPECS
    from tfseti.models.resnet.backbone import backbone_config

    shape = (33, 30, 2)   # one odd side, one even
    config = backbone_config(RESNET_SPECS["resnet50"], shape, strides)
    assert graph_edit.layer_config(config, "conv1_pad")["config"]["padding"] == ((3, 3), (3, 3))
    assert tuple(graph_edit.layer_config(config, "conv1_conv")["config"]["strides"]) == strides
    # the stem alone, rebuilt from the edited layer configs
    image = keras.Input(shape)
    pad = keras.layers.ZeroPadding2D.from_config(
        graph_edit.layer_config(config, "conv1_pad")["config"])
    stem = keras.layers.Conv2D.from_config(graph_edit.layer_config(config, "conv1_conv")["config"])
    out = stem(pad(image))
    assert tuple(out.shape[1:3]) == tuple(-(-n // s) for n, s in zip(shape[:2], strides))


def tiny_functional():
    x = keras.Input((4, 4, 3), name="img")
    y = keras.layers.Rescaling(2.0, name="scale")(x)
    y = keras.layers.Normalization(mean=0.0, variance=1.0, name="norm")(y)
    y = keras.layers.Conv2D(2, 1, name="conv")(y)
    z = keras.layers.Add(name="add")([y, keras.layers.Rescaling(1.0, name="id")(y)])
    return keras.Model(x, z)


def test_remove_layers_rewires_consumers_to_the_removed_input():
    model = tiny_functional()
    config = graph_edit.remove_layers(model.get_config(), {"Rescaling", "Normalization"})
    config = graph_edit.set_input_shape(config, (6, 4, 5))
    config = graph_edit.drop_build_configs(config)
    rebuilt = keras.Model.from_config(config)
    assert [layer.name for layer in rebuilt.layers] == ["img", "conv", "add"]
    assert rebuilt.input_shape == (None, 6, 4, 5)
    x = np.random.default_rng(0).standard_normal((1, 6, 4, 5)).astype("float32")
    conv = rebuilt.get_layer("conv")
    np.testing.assert_allclose(rebuilt(x), 2.0 * conv(x), rtol=1e-5)


def test_drop_connect_default_matches_keras_builders():
    # The public constructors do not take drop_connect_rate; the rescaling assumes their default.
    import inspect

    from keras.src.applications import efficientnet, efficientnet_v2

    for builder in (efficientnet.EfficientNet, efficientnet_v2.EfficientNetV2):
        default = inspect.signature(builder).parameters["drop_connect_rate"].default
        assert default == KERAS_DROP_CONNECT_RATE
