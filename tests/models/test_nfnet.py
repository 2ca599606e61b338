"""Normalisation-free backbones: the layers alone and in tf.data-free graphs, the architecture's
bookkeeping (β, α, zero-gain blocks, drop-path schedule), the registered names against timm's
parameter counts, and a bf16 + XLA train step → .keras / .weights.h5 round trip per family on
small versions of each (the full-size check of every name: benchmarks/model_bench.py
--save-check; parity with timm's features: tests/models/test_convert_timm.py and
benchmarks/timm_parity.py)."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from harness import run_layer_test, run_model_test
from tfseti.models.factory import MODEL_REGISTRY, RegisteredModel
from tfseti.models.nfnet import NF_SPECS, NFSpec, build_nf_backbone
from tfseti.models.nfnet import layers as nf_layers
from tfseti.models.nfnet.backbone import build_nf_layers
from tfseti.models.nfnet.layers import NONLINEARITY_GAMMA, Scale, ScaledStdConv2D, TorchMaxPool2D
from tfseti.models.nfnet.specs import make_divisible

# Small versions of the three families: the same builder paths (stems, SE/ECA, grouped and
# extra convs, RegNet mid-block attention, avg-pool shortcuts) at a fraction of the size.
TINY_SPECS = {
    "eca_nfnet": NFSpec(depths=(1, 2, 1, 1), channels=(32, 64, 96, 128), stem_type="deep_quad",
                        stem_chs=32, group_size=8, bottle_ratio=0.25, extra_conv=True,
                        num_features=192, attn="eca", act="silu", timm_name="tiny_eca_nfnet"),
    "nf_regnet": NFSpec(depths=(1, 2, 1, 1), channels=(16, 24, 32, 48), stem_type="3x3",
                        group_size=8, width_factor=0.75, bottle_ratio=2.25, num_features=64,
                        reg=True, attn="se", attn_rd_ratio=0.5, act="silu",
                        timm_name="tiny_nf_regnet"),
    "nf_resnet": NFSpec(depths=(1, 2, 1, 1), channels=(32, 64, 96, 128), stem_type="7x7_pool",
                        stem_chs=16, bottle_ratio=0.25, act="relu", timm_name="tiny_nf_resnet"),
}

# timm 1.0.31: sum of parameter sizes of create_model(name, num_classes=0) (the backbone).
TIMM_PARAMETERS = {
    "nf_resnet26": 13_946_176, "nf_resnet50": 23_508_032, "nf_regnet_b0": 7_803_288,
    "nf_regnet_b1": 9_262_984, "nf_regnet_b2": 13_249_608, "nf_regnet_b3": 17_440_832,
    "eca_nfnet_l0": 21_838_924, "eca_nfnet_l1": 38_334_728, "eca_nfnet_l2": 53_649_348,
}


def numpy_conv(x, kernel, strides, padding, groups):
    """Reference convolution: NHWC input, (kh, kw, in/groups, out) kernel, symmetric padding."""
    x = np.pad(x, ((0, 0), (padding[0],) * 2, (padding[1],) * 2, (0, 0)))
    kh, kw, cin_g, cout = kernel.shape
    out_h = (x.shape[1] - kh) // strides[0] + 1
    out_w = (x.shape[2] - kw) // strides[1] + 1
    cout_g = cout // groups
    y = np.zeros((x.shape[0], out_h, out_w, cout))
    for i in range(out_h):
        for j in range(out_w):
            patch = x[:, i * strides[0]:i * strides[0] + kh, j * strides[1]:j * strides[1] + kw]
            for g in range(groups):
                part = patch[..., g * cin_g:(g + 1) * cin_g]
                k = kernel[..., g * cout_g:(g + 1) * cout_g]
                y[..., i, j, g * cout_g:(g + 1) * cout_g] = np.einsum("bhwc,hwco->bo", part, k)
    return y


@pytest.mark.parametrize("accelerator", [False, True], ids=["conv_per_group", "grouped_op"])
def test_scaled_std_conv_matches_the_formula(accelerator, monkeypatch):
    # CPU hosts split a grouped conv into one conv per group; accelerators keep the grouped op
    monkeypatch.setattr(nf_layers, "accelerator_present", lambda: accelerator)
    rng = np.random.default_rng(0)
    layer = ScaledStdConv2D(6, 3, strides=(2, 1), groups=2, gamma=NONLINEARITY_GAMMA["silu"],
                            eps=1e-5)
    x = rng.standard_normal((2, 7, 6, 4)).astype("float32")
    layer.build(x.shape)
    kernel = rng.standard_normal((3, 3, 2, 6)).astype("float32") * 3 + 1
    bias, gain = rng.standard_normal(6).astype("float32"), rng.uniform(0.5, 2, 6).astype("float32")
    layer.set_weights([kernel, bias, gain])
    assert [v.name for v in layer.weights] == ["kernel", "bias", "gain"]

    k = kernel.astype("float64")
    mean, var = k.mean(axis=(0, 1, 2)), k.var(axis=(0, 1, 2))
    standardized = (k - mean) / np.sqrt(var + 1e-5) * gain * NONLINEARITY_GAMMA["silu"] / math.sqrt(18)
    np.testing.assert_allclose(layer.standardized_kernel(), standardized, rtol=1e-5, atol=1e-6)
    # timm's symmetric padding ((stride - 1) + (k - 1)) // 2: 1 on both axes here
    assert layer.padding == (1, 1)
    expected = numpy_conv(x, standardized, (2, 1), (1, 1), groups=2) + bias
    np.testing.assert_allclose(layer(x), expected, rtol=1e-4, atol=1e-4)
    assert tuple(layer(x).shape) == layer.compute_output_shape(x.shape) == (2, 4, 6, 6)


def test_nf_layers_through_the_harness():
    x = np.random.default_rng(1).standard_normal((2, 8, 6, 4)).astype("float32")
    run_layer_test(ScaledStdConv2D(8, 3, strides=(1, 2), groups=2, gamma=1.7), x, (2, 8, 3, 8))
    run_layer_test(ScaledStdConv2D(4, 7, strides=2), x, (2, 4, 3, 4))
    run_layer_test(TorchMaxPool2D(3, 2, 1), x, (2, 4, 3, 4))
    run_layer_test(Scale(0.2), x, x.shape)


def test_nf_layers_inside_a_dataset_map():
    data = tf.data.Dataset.from_tensor_slices(
        np.random.default_rng(2).standard_normal((4, 8, 6, 3)).astype("float32")).batch(2)
    conv, pool = ScaledStdConv2D(5, 3, strides=2), TorchMaxPool2D(3, 2, 1)
    shapes = [tuple(b.shape) for b in data.map(lambda x: pool(conv(x)))]
    assert shapes == [(2, 2, 2, 5)] * 2


def test_torch_max_pool_pads_symmetrically_with_minus_inf():
    x = -np.random.default_rng(3).uniform(1, 2, (1, 6, 6, 1)).astype("float32")   # all < 0
    got = np.asarray(TorchMaxPool2D(3, 2, 1)(x))[0, ..., 0]
    padded = np.pad(x[0, ..., 0], 1, constant_values=-np.inf)
    expected = np.array([[padded[2 * i:2 * i + 3, 2 * j:2 * j + 3].max() for j in range(3)]
                         for i in range(3)])
    np.testing.assert_array_equal(got, expected)
    # Keras' "same" pads (0, 1) on even sizes: windows shifted by a pixel, other maxima
    same = np.asarray(keras.layers.MaxPooling2D(3, 2, padding="same")(x))[0, ..., 0]
    assert not np.array_equal(same, expected)


def test_drop_path_drops_whole_samples_and_rescales():
    # the last block's drop path gets the whole drop_connect_rate
    backbone = build_nf_layers(TINY_SPECS["nf_resnet"], (64, 32, 3), drop_connect_rate=0.25)
    drop_path = backbone.get_layer("stages_3_0_drop_path")
    x = np.ones((2000, 3, 2, 4), "float32")
    np.testing.assert_array_equal(np.asarray(drop_path(x, training=False)), x)   # inference
    out = np.asarray(drop_path(x, training=True))
    per_sample = out.reshape(2000, -1)
    assert set(np.unique(per_sample)) <= {0.0, np.float32(1 / 0.75)}
    assert (per_sample.min(axis=1) == per_sample.max(axis=1)).all()   # a sample is kept whole
    assert abs((per_sample[:, 0] == 0).mean() - 0.25) < 0.04


def test_scale_keeps_float64_exact():
    x = np.random.default_rng(4).standard_normal((3, 5)).astype("float64")
    with_policy = Scale(0.2, dtype="float64")
    np.testing.assert_array_equal(np.asarray(with_policy(x)), x * 0.2)


def test_make_divisible_as_timm():
    assert make_divisible(36) == 40 and make_divisible(12) == 16 and make_divisible(7) == 8
    assert make_divisible(8 * 0.5, round_limit=0.0) == 8
    assert make_divisible(100, 8) == 104 and make_divisible(1536 * 0.25) == 384


@pytest.mark.parametrize("family", TINY_SPECS)
def test_block_bookkeeping(family):
    spec = TINY_SPECS[family]
    backbone = build_nf_layers(spec, (64, 32, 3), drop_connect_rate=0.3)
    alpha = spec.alpha
    for stage, depth in enumerate(spec.depths):
        for b in range(depth):
            name = f"stages_{stage}_{b}"
            # β = 1 / sqrt(expected variance): 1 + (blocks since the stage's first) α², where
            # the first block of a stage sees the previous stage's whole depth
            k = b if b > 0 else (spec.depths[stage - 1] if stage > 0 else 0)
            beta = 1.0 / math.sqrt(1.0 + k * alpha ** 2)
            names = [layer.name for layer in backbone.layers]
            if beta == 1.0:
                assert f"{name}_beta" not in names
            else:
                assert backbone.get_layer(f"{name}_beta").value == pytest.approx(beta)
            assert backbone.get_layer(f"{name}_alpha").value == alpha
            # the last conv starts at gain 0: every block starts as its shortcut
            np.testing.assert_array_equal(backbone.get_layer(f"{name}_conv3").gain.numpy(), 0.0)
    rates = [layer.rate for layer in backbone.layers if layer.name.endswith("_drop_path")]
    total = sum(spec.depths)
    np.testing.assert_allclose(rates, np.linspace(0, 0.3, total)[1:], rtol=1e-6)
    if spec.attn:
        gains = [layer.value for layer in backbone.layers if layer.name.endswith("_gain")]
        assert gains == [2.0] * total
    channels = make_divisible(spec.num_features * spec.width_factor) if spec.num_features else \
        make_divisible(spec.channels[-1] * spec.width_factor)
    assert backbone.output.shape[1:] == (2, 1, channels)


def test_blocks_without_a_shortcut_conv_start_as_the_identity():
    spec = TINY_SPECS["eca_nfnet"]
    backbone = build_nf_layers(spec, (64, 32, 3))
    x = np.random.default_rng(5).standard_normal((2, 64, 32, 3)).astype("float32")
    block_in = backbone.get_layer("stages_1_0_add").output
    block_out = backbone.get_layer("stages_1_1_add").output
    values = keras.Model(backbone.input, [block_in, block_out])(x)
    np.testing.assert_allclose(values[1], values[0], atol=1e-6)


def test_stem_strides_keep_time_resolution():
    spec = TINY_SPECS["eca_nfnet"]
    backbone = build_nf_layers(spec, (64, 32, 3), stem_strides=(1, 2))
    assert backbone.get_layer("stem_conv1").strides == (1, 2)
    assert backbone.output.shape[1:3] == (4, 1)


def test_registered_names_have_timm_parameter_counts():
    assert set(TIMM_PARAMETERS) == set(NF_SPECS)
    for name, spec in NF_SPECS.items():
        assert MODEL_REGISTRY[name].spec is spec and spec.timm_name == name
        backbone = build_nf_layers(spec, (64, 32, 3))
        assert backbone.count_params() == TIMM_PARAMETERS[name], name
        keras.backend.clear_session()


@pytest.fixture
def tiny_registry(monkeypatch):
    for family, spec in TINY_SPECS.items():
        monkeypatch.setitem(MODEL_REGISTRY, f"tiny_{family}", RegisteredModel(build_nf_backbone, spec))


@pytest.mark.parametrize("family", TINY_SPECS)
def test_bf16_xla_train_step_then_keras_and_weights_round_trips(family, harness, tiny_registry,
                                                                tmp_path):
    name = f"tiny_{family}"
    with harness.dtype_policy("mixed_bfloat16"):
        model = harness.build(name, 2, stem_strides=(1, 2), drop_connect_rate=0.2, dropout=0.1)
        model.compile(optimizer=keras.optimizers.SGD(0.05),
                      loss=keras.losses.BinaryCrossentropy(from_logits=True), jit_compile=True)
        stem = model.get_layer("backbone").get_layer(TINY_SPECS[family].stem_conv)
        assert stem.compute_dtype == "bfloat16" and stem.kernel.dtype == "float32"
        x = harness.images(2, batch=4)
        y = np.array([[0.0], [1.0], [1.0], [0.0]], "float32")
        gains = [v.numpy() for v in model.trainable_variables if v.name == "gain"]
        loss = model.train_on_batch(x, y)
        assert np.isfinite(loss)
        trained = [v.numpy() for v in model.trainable_variables if v.name == "gain"]
        assert any(not np.array_equal(a, b) for a, b in zip(gains, trained))   # gains learn
        logits = run_model_test(model, x, 1, tmp_path)    # .keras, safe mode: same logits
        path = tmp_path / "model.weights.h5"
        model.save_weights(path)
        fresh = harness.build(name, 2, stem_strides=(1, 2), drop_connect_rate=0.2, dropout=0.1)
        fresh.load_weights(path)
        np.testing.assert_array_equal(np.asarray(fresh(x, training=False)), logits)
        for got, want in zip([v.numpy() for v in fresh.trainable_variables if v.name == "gain"],
                             trained):
            np.testing.assert_array_equal(got, want)


def test_imagenet_weights_point_to_the_converter(harness):
    with pytest.raises(ValueError, match="python -m tfseti.models.convert_timm"):
        harness.build("eca_nfnet_l0", 1, weights="imagenet")
    with pytest.raises(ValueError, match="no file"):
        harness.build("nf_regnet_b0", 1, weights="/nonexistent/nf.weights.h5")


def test_nf_backbone_takes_every_model_option(harness, tiny_registry, tmp_path):
    """Pre-stem stack, triplet attention, frame-wise attention pooling, two-class head,
    multi-sample dropout: the same options as the EfficientNets, through a .keras round trip."""
    model = harness.build("tiny_nf_regnet", 3, pre_stem_channels=(8,), triplet_attention=True,
                          pooling="attention", head="two_class", stem_strides=(1, 1))
    run_model_test(model, harness.images(3), 2, tmp_path)
    backbone = model.get_layer("backbone")
    assert backbone.input_shape == (None, harness.height, harness.width, 8)
    assert tuple(backbone.output.shape[1:3]) == (4, 2)     # stride 16 with a (1, 1) stem
    gem = harness.build("tiny_nf_resnet", 1, pooling="gem", dropout=0.2, dropout_samples=2)
    run_model_test(gem, harness.images(1), 1, tmp_path)
