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


def test_train_step_with_augment_and_mixup_compiles_with_xla_under_mixed_bfloat16():
    import numpy as np
    import tensorflow as tf

    from tfseti.data.config import AugmentConfig
    from tfseti.data.augmenter import Augmenter
    from tfseti.data.config import MixupConfig
    from tfseti.data.config import ViewConfig
    from tfseti.data.views import view_shape
    from tfseti.train.losses import make_loss
    from tfseti.train.optim import make_optimizer
    from tfseti.train.train_config import TrainConfig
    from tfseti.train.trainer import CadenceClassifier

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        view = ViewConfig(name="on", resize=(16, 16))
        augmenter = Augmenter(view, AugmentConfig(vflip_p=0.5, off_shuffle_p=0.5),
                              MixupConfig(mixup_p=0.5))
        model = CadenceClassifier(_small_net(view_shape(view, 6, 8, 16)), augmenter)
        train = TrainConfig(epochs=1)
        model.compile(optimizer=make_optimizer(train, 2), loss=make_loss(train), jit_compile=True)
        rng = np.random.default_rng(0)
        batch = {"cadence": tf.constant(rng.standard_normal((4, 6, 8, 16)), tf.float16),
                 "target": tf.constant([0.0, 1.0, 0.0, 1.0])}
        history = model.fit(tf.data.Dataset.from_tensors(batch).repeat(2), epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        assert int(model.optimizer.iterations) == 2
        # The whole step (view, augmentation, mixup, forward, backward, update) lowers to XLA,
        # with the network's compute in bfloat16.
        step = tf.function(model.train_step, jit_compile=True)
        hlo = step.experimental_get_compiler_ir(batch)(stage="hlo")
        assert "bf16" in hlo and "convolution" in hlo
        assert model.net.layers[1].compute_dtype == "bfloat16"
    finally:
        keras.mixed_precision.set_global_policy("float32")
