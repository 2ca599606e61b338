"""The learned resizer (``view.resize_method = "learned"``): the layer against a hand-written
forward pass, its skip path, gradients, bf16 + XLA, ``.keras`` round trip, the config checks, the
view that stays at full resolution, and one tiny training run through the CLI to a SavedModel."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from harness import run_layer_test, run_model_test
from tfseti.data.config import ViewConfig
from tfseti.data.views import make_view, resize_images, view_shape
from tfseti.models import ModelConfig, create_model
from tfseti.models.resizer import LearnedResizer

SIZE = (16, 16)


def images(channels=1, batch=2, seed=0, height=64, width=32):
    return np.random.default_rng(seed).standard_normal(
        (batch, height, width, channels)).astype("float32")


def randomise_batchnorm(layer, seed=1):
    """Moving statistics and affine parameters away from their identity init."""
    rng = np.random.default_rng(seed)
    for sub in layer._flatten_layers(include_self=False):
        if isinstance(sub, keras.layers.BatchNormalization):
            n = sub.gamma.shape[0]
            sub.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.1, n),
                             rng.normal(0, 0.1, n), rng.uniform(0.5, 1.5, n)])


def reference_forward(layer: LearnedResizer, x: np.ndarray) -> np.ndarray:
    """The paper's / keras-io's resizer written out with plain TF ops and the layer's weights
    (inference mode): an independent account of the wiring."""
    def conv(name, x):
        sub = getattr(layer, name)
        out = tf.nn.conv2d(x, sub.kernel, 1, "SAME")
        return out + sub.bias if sub.use_bias else out

    def bn(name, x):
        sub = getattr(layer, name)
        return ((x - sub.moving_mean) / tf.sqrt(sub.moving_variance + sub.epsilon) * sub.gamma
                + sub.beta)

    def resize(x):
        return tf.image.resize(x, layer.size, "bilinear", antialias=False)

    lrelu = lambda t: tf.nn.leaky_relu(t, 0.2)   # noqa: E731
    x = tf.constant(x)
    skip = resize(x)
    y = bn("mix_bn", lrelu(conv("mix_conv", lrelu(conv("in_conv", x)))))
    bottleneck = resize(y)
    z = bottleneck
    for i in range(layer.blocks):
        h = lrelu(bn(f"block{i}_bn1", conv(f"block{i}_conv1", z)))
        z = z + bn(f"block{i}_bn2", conv(f"block{i}_conv2", h))
    z = bottleneck + bn("proj_bn", conv("proj_conv", z))
    return np.asarray(skip + conv("out_conv", z))


@pytest.mark.parametrize("channels, blocks", [(1, 1), (2, 2), (3, 0)])
def test_layer_matches_a_hand_written_forward_pass(channels, blocks):
    layer = LearnedResizer(SIZE, filters=4, blocks=blocks)
    x = images(channels)
    layer(x)
    randomise_batchnorm(layer)
    out = run_layer_test(layer, x, (2, *SIZE, channels), training=False, atol=1e-5)
    np.testing.assert_allclose(out, reference_forward(layer, x), atol=1e-4)
    assert layer.out_conv.filters == channels  # back to the input's channels
    names = {w.path.split("/", 1)[1] for w in layer.weights}
    assert {f"block{i}_conv1/kernel" for i in range(blocks)} <= names
    assert f"block{blocks}_conv1/kernel" not in names


def test_layer_under_the_shared_harness_in_training_mode():
    run_layer_test(LearnedResizer(SIZE, filters=4, blocks=1), images(2), (2, *SIZE, 2))


def test_with_every_conv_weight_zero_it_is_the_bilinear_resize():
    layer = LearnedResizer(SIZE, filters=4, blocks=2)
    x = images(2)
    layer(x)
    for sub in layer._flatten_layers(include_self=False):
        if isinstance(sub, keras.layers.Conv2D):
            sub.set_weights([np.zeros_like(w) for w in sub.get_weights()])
    bilinear = np.asarray(resize_images(tf.constant(x), SIZE, "bilinear"))
    for training in (False, True):
        np.testing.assert_array_equal(np.asarray(layer(x, training=training)), bilinear)
    # which is the view's bilinear resize, i.e. tf.image.resize without antialiasing
    np.testing.assert_allclose(bilinear, tf.image.resize(x, SIZE, "bilinear"), atol=1e-5)


def test_gradients_reach_every_resizer_weight():
    layer = LearnedResizer(SIZE, filters=4, blocks=1)
    x = tf.constant(images(1))
    target = tf.constant(np.random.default_rng(2).standard_normal((2, *SIZE, 1)), tf.float32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x, training=True) * target)
    grads = tape.gradient(loss, layer.trainable_weights)
    assert len(grads) == len(layer.trainable_weights) == 2 + 2 + 2 + 6 + 1 + 2 + 2   # in, mix, mix_bn, block0, proj, proj_bn, out
    for weight, grad in zip(layer.trainable_weights, grads):
        assert grad is not None and np.isfinite(grad).all(), weight.path
        assert np.abs(np.asarray(grad)).max() > 0, weight.path


def test_network_with_resizer_round_trips_and_keeps_training_in_head_warmup(tmp_path):
    model = create_model("plain_cnn_s", (64, 32, 1), resizer_size=SIZE, resizer_filters=4,
                         resizer_blocks=2)
    assert model.input_shape == (None, 64, 32, 1)
    resizer = model.get_layer("resizer")
    assert isinstance(resizer, LearnedResizer) and (resizer.size, resizer.filters,
                                                    resizer.blocks) == (SIZE, 4, 2)
    assert model.get_layer("backbone").input_shape == (None, *SIZE, 1)
    run_model_test(model, images(1), 1, save_dir=tmp_path)   # .keras, safe mode: identical
    reloaded = keras.saving.load_model(tmp_path / "plain_cnn_s.keras", safe_mode=True)
    assert reloaded.get_layer("resizer").get_config() == resizer.get_config()
    # Head warm-up freezes the nested backbone only: the resizer is new and keeps training.
    model.get_layer("backbone").trainable = False
    trainable = {id(w) for w in model.trainable_weights}
    assert all(id(w) in trainable for w in resizer.trainable_weights)
    assert not any(id(w) in trainable for w in model.get_layer("backbone").weights)
    # without resizer_size: no resizer, the backbone takes the input as it is
    plain = create_model("plain_cnn_s", (64, 32, 1))
    assert "resizer" not in [layer.name for layer in plain.layers]


def test_bfloat16_xla_train_step_updates_the_resizer():
    # The resizer alone in front of a tiny head: compiling a whole backbone with XLA on the CPU
    # takes half a minute (the backbones' own bf16 + XLA step is tests/models/test_model_precision).
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        image = keras.Input((64, 32, 1))
        x = LearnedResizer(SIZE, filters=4, name="resizer")(image)
        x = keras.layers.GlobalAveragePooling2D()(x)
        logits = keras.layers.Dense(1, dtype="float32")(x)
        model = keras.Model(image, logits)
        model.compile(optimizer=keras.optimizers.SGD(0.1),
                      loss=keras.losses.BinaryCrossentropy(from_logits=True), jit_compile=True)
    finally:
        keras.config.set_dtype_policy(previous)
    resizer = model.get_layer("resizer")
    assert resizer.compute_dtype == "bfloat16" and resizer.in_conv.compute_dtype == "bfloat16"
    assert all(v.dtype == "float32" for v in resizer.trainable_variables)
    before = {v.path: v.numpy() for v in resizer.trainable_variables}
    # Not balanced: at p ~ 0.5 for every sample, targets 0, 1, 0, 1 cancel in the gradient of a
    # bias that adds the same to every output pixel (the out_conv bias), bf16 rounding makes it exact.
    y = np.array([[1.0], [1.0], [1.0], [0.0]], "float32")
    loss = model.train_on_batch(images(1, batch=4), y)
    assert np.isfinite(loss)
    for v in resizer.trainable_variables:
        assert not np.array_equal(v.numpy(), before[v.path]), v.path


@pytest.mark.parametrize("kwargs, message", [
    (dict(size=(16,)), "LearnedResizer.size: expected (height, width) of positive ints"),
    (dict(size=(16, 0)), "LearnedResizer.size: expected (height, width)"),
    (dict(size=SIZE, filters=0), "LearnedResizer.filters: expected an int >= 1, got 0"),
    (dict(size=SIZE, blocks=-1), "LearnedResizer.blocks: expected an int >= 0, got -1"),
])
def test_layer_arguments_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        LearnedResizer(**kwargs)


def test_config_errors():
    with pytest.raises(ValueError, match="ModelConfig.resizer_filters: expected an int >= 1"):
        ModelConfig(resizer_filters=0)
    with pytest.raises(ValueError, match="ModelConfig.resizer_blocks: expected an int >= 0"):
        ModelConfig(resizer_blocks=1.5)
    with pytest.raises(ValueError, match=r"resizer_size: expected \(height, width\) of positive"):
        create_model("plain_cnn_s", (64, 32, 1), resizer_size=(16, 16, 1))
    with pytest.raises(ValueError, match="unknown model option"):   # the size is no option
        ModelConfig.from_options(resizer_size=(16, 16))
    with pytest.raises(ValueError, match="expected images .* of static H, W, C"):
        LearnedResizer(SIZE).build((None, None, 32, 1))
    with pytest.raises(ValueError, match="ViewConfig.resize_method: 'learned' needs resize"):
        ViewConfig(resize_method="learned")
    with pytest.raises(ValueError, match="ViewConfig.resize_method: expected one of"):
        ViewConfig(resize=SIZE, resize_method="learnt")


def test_a_learned_resize_leaves_the_view_at_full_resolution():
    cadence = tf.constant(np.random.default_rng(3).standard_normal((2, 6, 273, 256)), tf.float16)
    learned = ViewConfig("on", resize=SIZE, resize_method="learned")
    assert (learned.image_resize, learned.learned_resize) == (None, SIZE)
    assert view_shape(learned) == (819, 256, 1)
    np.testing.assert_array_equal(make_view(cadence, learned), make_view(cadence, ViewConfig("on")))
    fixed = ViewConfig("on", resize=SIZE, resize_method="area")
    assert (fixed.image_resize, fixed.learned_resize) == (SIZE, None)
    assert view_shape(fixed) == (*SIZE, 1)
    dedoppler = ViewConfig("dedoppler", resize=SIZE, resize_method="learned")
    assert view_shape(dedoppler) == (dedoppler.dedoppler.drifts, 256, 6)


def test_cli_trains_a_learned_resizer_and_serves_raw_cadences(tmp_path, capsys):
    from tfrecords_tools.convert import convert
    from harness import write_kaggle_dir
    from tfseti.models import load_network
    from tfseti.train import cli

    data, shards, run = tmp_path / "data", tmp_path / "shards", tmp_path / "run"
    write_kaggle_dir(data, n_train=8, n_test=0, positive_rate=0.5)
    convert(str(data), str(shards), split="train", folds=2, seed=0, shard_mb=20, workers=1,
            progress=False, log=lambda _: None)
    try:
        code = cli.main([
            "--config", "cpu_demo", "--strategy", "cpu", "--fold", "0", "--data", str(shards),
            "--out", str(run), "--no-report", "model.name=plain_cnn_s", "view.resize=[16, 16]",
            'view.resize_method="learned"', "model.options.resizer_filters=4",
            "train.epochs=1", "train.steps_per_epoch=1", "train.batch_per_replica=4",
            "train.steps_per_execution=1", "train.warmup_epochs=0"])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert code == 0
    printed = capsys.readouterr().out
    assert ("  model     plain_cnn_s on view 'on': input 819x256x1 (learned resize to 16x16); "
            "precision float32") in printed
    fold = run / "fold0"
    config = json.loads((fold / "config.json").read_text())
    assert config["view"]["resize_method"] == "learned" and config["view"]["resize"] == [16, 16]
    net = load_network(str(fold / "model.keras"))
    assert net.input_shape == (None, 819, 256, 1)
    assert net.get_layer("resizer").size == SIZE and net.get_layer("resizer").filters == 4
    assert net.get_layer("backbone").input_shape == (None, *SIZE, 1)

    served = tf.saved_model.load(str(fold / "saved_model"))
    cadence = np.random.default_rng(4).standard_normal((3, 6, 273, 256)).astype("float16")
    probs = np.asarray(served.serve(tf.constant(cadence)))
    view = ViewConfig("on", resize=SIZE, resize_method="learned")   # cpu_demo's, resize learned
    expected = tf.sigmoid(net(make_view(tf.constant(cadence), view), training=False))[:, 0]
    assert probs.shape == (3,)
    np.testing.assert_allclose(probs, np.asarray(expected), atol=1e-5)
    assert os.path.exists(fold / "final.weights.h5")
