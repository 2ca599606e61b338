"""Trainer pieces that need a real network but no training."""

from __future__ import annotations

import keras

from tfseti.models import create_model
from tfseti.train.trainer import configure_batchnorm


def test_batchnorm_settings_reach_nested_backbone_layers():
    net = create_model("efficientnet_b0", (32, 32, 1), pre_stem_channels=(8,))
    batchnorms = [layer for layer in net._flatten_layers(include_self=False, recursive=True)
                  if isinstance(layer, keras.layers.BatchNormalization)]
    assert {layer.synchronized for layer in batchnorms} == {False}
    count = configure_batchnorm(net, momentum=0.5, synchronized=True)
    assert count == len(batchnorms) > 40  # the pre-stem's and all of the nested backbone's
    assert {layer.momentum for layer in batchnorms} == {0.5}
    assert {layer.synchronized for layer in batchnorms} == {True}
    assert net.get_layer("backbone").get_layer("stem_bn").momentum == 0.5
    configure_batchnorm(net, momentum=0.9)  # None leaves a setting as it is
    assert {(layer.momentum, layer.synchronized) for layer in batchnorms} == {(0.9, True)}


def _small_net(input_shape):
    # A few layers stand in for the backbone: what is under test is the wrapper's step.
    image = keras.Input(input_shape)
    x = keras.layers.Conv2D(4, 3, strides=2)(image)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(image, keras.layers.Dense(1, dtype="float32")(x))


def _step_lowers_to_xla_in_bfloat16(view, augment, mixup, shape, cadence_dtype) -> str:
    """Fit two steps of a small net behind the given augmenter under mixed_bfloat16 with XLA on
    ``cadence_dtype`` cadences, and return the whole step's HLO (view, augmentation, mixup,
    forward, backward, update)."""
    import numpy as np
    import tensorflow as tf

    from tfseti.data.augmenter import Augmenter
    from tfseti.data.views import view_shape
    from tfseti.train.losses import make_loss
    from tfseti.train.optim import make_optimizer
    from tfseti.train.train_config import TrainConfig
    from tfseti.train.trainer import CadenceClassifier

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        augmenter = Augmenter(view, augment, mixup)
        model = CadenceClassifier(_small_net(view_shape(view, *shape[1:])), augmenter)
        train = TrainConfig(epochs=1)
        model.compile(optimizer=make_optimizer(train, 2), loss=make_loss(train), jit_compile=True)
        rng = np.random.default_rng(0)
        batch = {"cadence": tf.constant(rng.standard_normal(shape), cadence_dtype),
                 "target": tf.constant([0.0, 1.0] * (shape[0] // 2))}
        history = model.fit(tf.data.Dataset.from_tensors(batch).repeat(2), epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        assert int(model.optimizer.iterations) == 2
        assert model.net.layers[1].compute_dtype == "bfloat16"
        step = tf.function(model.train_step, jit_compile=True)
        return step.experimental_get_compiler_ir(batch)(stage="hlo")
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_train_step_with_augment_and_mixup_compiles_with_xla_under_mixed_bfloat16():
    from tfseti.data.config import AugmentConfig, MixupConfig, ViewConfig

    hlo = _step_lowers_to_xla_in_bfloat16(
        ViewConfig(name="on", resize=(16, 16)), AugmentConfig(vflip_p=0.5, off_shuffle_p=0.5),
        MixupConfig(mixup_p=0.5), (4, 6, 8, 16), "float16")
    assert "bf16" in hlo and "convolution" in hlo


def test_the_accelerator_recipe_on_the_maps_makes_them_inside_the_xla_step():
    """dedoppler_b0 as shipped (its maps, needle injection and flips; a small net in place of
    EfficientNet-B0, whose own bfloat16 XLA step tests/models covers): the maps are made on the
    accelerator, inside the one compiled step, from bfloat16 cadences of the Kaggle shape."""
    from tfseti.train.run_config import load_run_config

    run = load_run_config("dedoppler_b0")
    assert run.augment.augment_on == "device" and run.train.jit_compile
    assert run.data.cadence_dtype == "bfloat16" and not run.data.with_ids
    assert run.augment.inject.p > 0
    hlo = _step_lowers_to_xla_in_bfloat16(run.view, run.augment, run.mixup, (2, 6, 273, 256),
                                          run.data.cadence_dtype)
    assert "bf16" in hlo and "convolution" in hlo and "fft" in hlo   # the maps' FFT shift-and-sum
