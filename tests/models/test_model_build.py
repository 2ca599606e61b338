"""Every option through one harness: build, output shapes/dtype, structure, and (for the models
with custom layers) a .keras save → safe_mode reload giving identical outputs."""

from dataclasses import dataclass, field

import keras
import pytest

from harness import run_model_test


@dataclass(frozen=True)
class Case:
    name: str
    channels: int
    options: dict = field(default_factory=dict)
    units: int = 1
    stem_hw: tuple = (32, 16)       # stem conv output for a 64x32 input
    features_hw: tuple = (2, 1)     # backbone output
    round_trip: bool = False
    stem: str = "stem_conv"         # the backbone's first conv
    stochastic_depth: bool = True   # ResNets have none: drop_connect_rate is unused


CASES = {
    "v1_default_gem": Case("efficientnet_b0", 1),
    "v2_avg_two_class_stride_1x2": Case(
        "efficientnetv2_b0", 2, dict(pooling="avg", head="two_class", stem_strides=(1, 2)),
        units=2, stem_hw=(64, 16), features_hw=(4, 1)),
    "v1_max_stride_1x1_pre_stem_multi_sample": Case(
        "efficientnet_b0", 3, dict(pooling="max", stem_strides=(1, 1), pre_stem_channels=(8, 4),
                                   dropout=0.2, dropout_samples=3),
        stem_hw=(64, 32), features_hw=(4, 2), round_trip=True),
    "v2_triplet_attention_pooling": Case(
        "efficientnetv2_b0", 4, dict(triplet_attention=True, pooling="attention",
                                     head="two_class", dropout=0.1, drop_connect_rate=0.1),
        units=2, round_trip=True),
    "v1_fixed_gem_no_drop_connect": Case(
        "efficientnet_b0", 1, dict(gem_p=4.0, gem_trainable=False, drop_connect_rate=0.0,
                                   dropout=0.3), round_trip=True),
    # seed 004: ResNet50 + the attention-mask head, here with multi-sample dropout after it
    "resnet50_spatial_attention_stride_1x2": Case(
        "resnet50", 2, dict(pooling="spatial_attention", stem_strides=(1, 2), dropout=0.2,
                            dropout_samples=2, drop_connect_rate=0.5),
        stem_hw=(64, 16), features_hw=(4, 1), round_trip=True, stem="conv1_conv",
        stochastic_depth=False),
    "resnet101_default_gem": Case("resnet101", 1, stem="conv1_conv", stochastic_depth=False),
}


def block_drop_rates(backbone):
    return [layer.rate for layer in backbone.layers
            if isinstance(layer, keras.layers.Dropout) and layer.name.endswith("_drop")]


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_option_case(case, harness, tmp_path):
    model = harness.build(case.name, case.channels, **case.options)
    x = harness.images(case.channels)
    # logits in both modes and, where asked, the .keras round trip (safe mode, same outputs)
    run_model_test(model, x, case.units, tmp_path if case.round_trip else None)

    backbone = model.get_layer("backbone")
    in_chans = (case.options.get("pre_stem_channels") or (case.channels,))[-1]
    assert backbone.input_shape == (None, harness.height, harness.width, in_chans)
    assert tuple(backbone.get_layer(case.stem).output.shape[1:3]) == case.stem_hw
    assert backbone.get_layer(case.stem).kernel.shape[2] == in_chans
    assert tuple(backbone.output.shape[1:3]) == case.features_hw
    # the pipeline normalises: no ImageNet rescaling / normalisation left in the backbone
    assert not any(isinstance(layer, (keras.layers.Rescaling, keras.layers.Normalization))
                   for layer in backbone.layers)
    rate = case.options.get("drop_connect_rate", 0.2)
    rates = block_drop_rates(backbone)
    if case.stochastic_depth:
        assert rates and max(rates) <= rate and max(rates) >= 0.8 * rate
    else:
        assert not any(isinstance(layer, keras.layers.Dropout) for layer in backbone.layers)
    if case.options.get("pooling", "gem") == "gem":
        pool = model.get_layer("pool")
        assert pool.p_trainable == case.options.get("gem_trainable", True)
        assert float(pool.p) == case.options.get("gem_p", 3.0)
    assert ("triplet_attention" in [layer.name for layer in model.layers]) == \
        case.options.get("triplet_attention", False)
    if case.options.get("pooling") == "spatial_attention":
        from tfseti.models.pooling import SpatialAttentionPooling2D

        pool = model.get_layer("pool")
        assert isinstance(pool, SpatialAttentionPooling2D)
        assert pool.output.shape == (None, backbone.output.shape[-1])
        # its BatchNormalization is found where the trainer looks (bn_momentum, sync BN)
        from tfseti.train.trainer import batchnorm_layers

        assert pool.bn in batchnorm_layers(model)


@pytest.mark.parametrize("strides, features_hw", [((1, 1), (8, 4)), ((1, 2), (8, 2))])
def test_plain_cnn_keeps_resolution_and_round_trips(strides, features_hw, harness, tmp_path):
    model = harness.build("plain_cnn_s", 6, stem_strides=strides, pooling="max")
    run_model_test(model, harness.images(6), 1, tmp_path)
    backbone = model.get_layer("backbone")
    # first stage at the input resolution (divided by the stem stride), three 2x2 poolings after
    assert tuple(backbone.get_layer("stage0a_conv").output.shape[1:3]) == (
        harness.height // strides[0], harness.width // strides[1])
    assert tuple(backbone.output.shape[1:]) == (*features_hw, 128)


def test_plain_cnn_has_no_pretrained_weights(harness):
    with pytest.raises(ValueError, match="plain_cnn_s has no pretrained weights"):
        harness.build("plain_cnn_s", 1, weights="imagenet")
