"""Pretrained weights into modified models: stems, input channels, the ImageNet code path."""

import numpy as np
import pytest


def assert_backbone_matches_source(backbone, source_weights, skip=("stem_conv",)):
    for layer in backbone.layers:
        if layer.weights and layer.name not in skip:
            for got, want in zip(layer.get_weights(), source_weights[layer.name], strict=True):
                np.testing.assert_array_equal(got, want, err_msg=layer.name)


def test_default_stem_weights_load_into_stride_1x2_model(harness, b0_weights_file):
    path, source = b0_weights_file
    model = harness.build("efficientnet_b0", 3, weights=path, stem_strides=(1, 2))
    backbone = model.get_layer("backbone")
    assert backbone.get_layer("stem_conv").strides == (1, 2)
    np.testing.assert_array_equal(backbone.get_layer("stem_conv").kernel.numpy(),
                                  source["stem_conv"][0])
    assert_backbone_matches_source(backbone, source, skip=())
    harness.check_logits(model, harness.images(3), 1)


def test_one_channel_model_answers_grey_as_rgb_model_answers_replicated(harness, b0_weights_file):
    path, source = b0_weights_file
    grey_model = harness.build("efficientnet_b0", 1, weights=path)
    rgb_model = harness.build("efficientnet_b0", 3, weights=path)
    grey_backbone = grey_model.get_layer("backbone")
    np.testing.assert_allclose(grey_backbone.get_layer("stem_conv").kernel.numpy(),
                               source["stem_conv"][0].sum(axis=2, keepdims=True), rtol=1e-6)
    assert_backbone_matches_source(grey_backbone, source)
    grey = harness.images(1)
    # whole backbone, BN in inference mode
    grey_features = np.asarray(grey_backbone(grey, training=False))
    rgb_features = np.asarray(rgb_model.get_layer("backbone")(np.repeat(grey, 3, axis=-1),
                                                              training=False))
    np.testing.assert_allclose(grey_features, rgb_features, rtol=1e-4, atol=1e-5)
    assert np.abs(rgb_features).max() > 1e-2  # a real response, not an all-zero map


def test_weights_load_behind_a_pre_stem_stack(harness, b0_weights_file):
    path, source = b0_weights_file
    model = harness.build("efficientnet_b0", 1, weights=path, pre_stem_channels=(6,))
    stem = model.get_layer("backbone").get_layer("stem_conv").kernel.numpy()
    expected = np.concatenate([source["stem_conv"][0]] * 2, axis=2) * 0.5  # timm: repeat, 3/C
    np.testing.assert_allclose(stem, expected, rtol=1e-6)


@pytest.mark.parametrize("name, module, weights_fixture, downloaded, stem, channels", [
    # V1's extra ImageNet-std Rescaling layer included
    ("efficientnet_b0", "efficientnet", "b0_weights_file", "efficientnetb0_notop.h5",
     "stem_conv", 1),
    ("resnet50", "resnet", "resnet50_weights_file",
     "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", "conv1_conv", 2),
])
def test_imagenet_goes_through_keras_download(name, module, weights_fixture, downloaded, stem,
                                              channels, harness, monkeypatch, request):
    """No network here: Keras' downloader is replaced by one returning the saved file, so the
    "imagenet" path runs for real."""
    import importlib

    application = importlib.import_module(f"keras.src.applications.{module}")
    path, source = request.getfixturevalue(weights_fixture)
    requested = []

    def fake_get_file(fname, origin, **kwargs):
        requested.append(fname)
        return path

    monkeypatch.setattr(application.file_utils, "get_file", fake_get_file)
    model = harness.build(name, channels, weights="imagenet")
    assert requested == [downloaded]
    assert_backbone_matches_source(model.get_layer("backbone"), source, skip=(stem,))


def test_missing_weights_file_is_a_clear_error(harness, tmp_path):
    with pytest.raises(ValueError, match=r"weights: no file .*missing\.weights\.h5"):
        harness.build("efficientnet_b0", 1, weights=str(tmp_path / "missing.weights.h5"))


def test_resnet_with_default_stem_is_the_keras_application(harness, resnet50_weights_file):
    """Same weights, same padding (symmetric, as the ImageNet weights were trained), same
    function: an RGB ResNet50 backbone reproduces keras.applications.ResNet50."""
    import keras

    path, source_weights = resnet50_weights_file
    model = harness.build("resnet50", 3, weights=path)
    backbone = model.get_layer("backbone")
    assert_backbone_matches_source(backbone, source_weights, skip=())
    source = keras.applications.ResNet50(include_top=False, weights=path,
                                         input_shape=(harness.height, harness.width, 3))
    rgb = harness.images(3)
    expected = np.asarray(source(rgb, training=False))
    np.testing.assert_allclose(np.asarray(backbone(rgb, training=False)), expected, rtol=1e-4,
                               atol=1e-4)
    assert np.abs(expected).max() > 1e-2


def test_resnet_loads_into_one_channel_at_stride_1x2(harness, resnet50_weights_file):
    path, source = resnet50_weights_file
    grey_model = harness.build("resnet50", 1, weights=path, stem_strides=(1, 2))
    rgb_model = harness.build("resnet50", 3, weights=path, stem_strides=(1, 2))
    grey_backbone = grey_model.get_layer("backbone")
    stem = grey_backbone.get_layer("conv1_conv")
    assert stem.strides == (1, 2) and stem.kernel.shape == (7, 7, 1, 64)
    np.testing.assert_allclose(stem.kernel.numpy(), source["conv1_conv"][0].sum(axis=2,
                                                                               keepdims=True),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(stem.bias.numpy(), source["conv1_conv"][1])
    assert_backbone_matches_source(grey_backbone, source, skip=("conv1_conv",))
    grey = harness.images(1)
    grey_features = np.asarray(grey_backbone(grey, training=False))
    rgb_features = np.asarray(rgb_model.get_layer("backbone")(np.repeat(grey, 3, axis=-1),
                                                              training=False))
    np.testing.assert_allclose(grey_features, rgb_features, rtol=1e-4, atol=1e-4)
    assert np.abs(rgb_features).max() > 1e-2





def test_resnet_missing_weights_file_names_the_application(harness, tmp_path):
    with pytest.raises(ValueError, match=r"weights: no file .*missing\.h5.*ResNet101"):
        harness.build("resnet101", 1, weights=str(tmp_path / "missing.h5"))
