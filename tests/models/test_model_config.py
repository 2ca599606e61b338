"""ModelConfig validation and create_model's errors (no model is built)."""

import pytest

from tfseti.models import ModelConfig
from tfseti.models.factory import create_model, list_models, resolve_config


def test_names_cover_efficientnet_v1_v2_resnets_and_plain_cnns():
    names = list_models()
    assert {"resnet50", "resnet101"} <= set(names)
    assert {f"efficientnet_b{i}" for i in range(8)} <= set(names)
    assert {f"efficientnetv2_b{i}" for i in range(4)} <= set(names)
    assert {"efficientnetv2_s", "efficientnetv2_m", "efficientnetv2_l"} <= set(names)
    assert {"plain_cnn_s", "plain_cnn_m"} <= set(names)


def test_defaults_and_list_coercion():
    config = ModelConfig(stem_strides=[1, 2], pre_stem_channels=[16, 16])
    assert config.stem_strides == (1, 2) and config.pre_stem_channels == (16, 16)
    assert config.num_outputs == 1 and ModelConfig(head="two_class").num_outputs == 2
    assert ModelConfig().pooling == "gem" and ModelConfig().gem_p == 3.0
    hash(config)  # frozen and hashable with list inputs


def test_weights_none_spelled_as_a_word_is_random_init():
    # TOML has no null: a recipe with weights = "imagenet" is switched off by weights=none.
    from tfseti.train.run_config import load_run_config

    assert ModelConfig(weights="none").weights is None
    run = load_run_config("k1_style", ["model.options.weights=none"])
    assert run.model.options.weights is None


@pytest.mark.parametrize("field, value, expected", [
    ("stem_strides", (3, 2), "each 1 or 2"),
    ("stem_strides", (2,), "each 1 or 2"),
    ("pre_stem_channels", (16, 0), "positive ints"),
    ("pooling", "mean", "'gem' | 'avg' | 'max' | 'attention' | 'spatial_attention'"),
    ("gem_p", 0, "> 0"),
    ("head", "sigmoid", "'single_logit' | 'two_class'"),
    ("dropout", 1.0, "[0, 1)"),
    ("dropout_samples", 0, ">= 1"),
    ("drop_connect_rate", -0.1, "[0, 1)"),
    ("triplet_attention", 1, "bool"),
    ("weights", "", "weights file path"),
])
def test_bad_value_names_field_and_expectation(field, value, expected):
    with pytest.raises(ValueError) as err:
        ModelConfig(**{field: value})
    assert f"ModelConfig.{field}" in str(err.value) and expected in str(err.value)


def test_multi_sample_dropout_needs_dropout_and_a_dense_head():
    with pytest.raises(ValueError, match="dropout > 0"):
        ModelConfig(dropout_samples=4)
    with pytest.raises(ValueError, match="attention"):
        ModelConfig(dropout=0.2, dropout_samples=4, pooling="attention")


def test_unknown_model_name_lists_valid_names():
    with pytest.raises(ValueError) as err:
        create_model("efficientnet_b9", (64, 32, 1))
    message = str(err.value)
    assert "efficientnet_b9" in message
    assert all(name in message for name in list_models())


def test_unknown_option_lists_valid_options():
    with pytest.raises(ValueError) as err:
        create_model("efficientnet_b0", (64, 32, 1), stem_stride=(1, 2))
    message = str(err.value)
    assert "stem_stride" in message
    assert all(name in message for name in ModelConfig.option_names())


def test_unknown_option_next_to_config_is_rejected():
    with pytest.raises(ValueError, match="valid options"):
        create_model("efficientnet_b0", (64, 32, 1), config=ModelConfig(), pool="gem")


@pytest.mark.parametrize("shape", [(64, 32), (64, 32, 0), (64.0, 32, 1), "64x32x1"])
def test_bad_input_shape(shape):
    with pytest.raises(ValueError, match=r"input_shape: expected \(height, width, channels\)"):
        create_model("efficientnet_b0", shape)


def test_keyword_options_override_a_config_and_are_validated_merged():
    merged = resolve_config(ModelConfig(dropout=0.2, pooling="avg"), dropout_samples=4)
    assert (merged.dropout, merged.dropout_samples, merged.pooling) == (0.2, 4, "avg")
    assert resolve_config(head="two_class") == ModelConfig(head="two_class")
    with pytest.raises(ValueError, match="dropout > 0"):
        resolve_config(ModelConfig(), dropout_samples=4)


def test_every_registered_backbone_is_a_keras_application():
    import keras

    from tfseti.models.efficientnet import EFFICIENTNET_SPECS

    for name, spec in EFFICIENTNET_SPECS.items():
        assert callable(getattr(keras.applications, spec.constructor)), name
        assert spec.timm_name.startswith("tf_efficientnet"), name


def test_resnets_are_registered_keras_applications():
    import keras

    from tfseti.models.factory import MODEL_REGISTRY
    from tfseti.models.resnet import RESNET_SPECS, build_resnet_backbone

    assert set(RESNET_SPECS) == {"resnet50", "resnet101"}
    for name, spec in RESNET_SPECS.items():
        assert MODEL_REGISTRY[name].spec is spec
        assert MODEL_REGISTRY[name].build_backbone is build_resnet_backbone
        assert spec.constructor == {"resnet50": "ResNet50", "resnet101": "ResNet101"}[name]
        assert callable(getattr(keras.applications, spec.constructor))
        assert spec.timm_name == name


def test_spatial_attention_takes_multi_sample_dropout():
    # unlike pooling="attention", a dense head follows it
    config = ModelConfig(pooling="spatial_attention", dropout=0.2, dropout_samples=4)
    assert config.pooling == "spatial_attention" and config.dropout_samples == 4
