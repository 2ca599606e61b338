"""Adaptive gradient clipping (tfseti.train.agc): against a clip computed by hand unit by unit,
eager and XLA-compiled, the excluded head, serialisation, the checkpoint layout, validation, and
the clip of the all-reduced gradient under MirroredStrategy."""

from __future__ import annotations

import re
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from harness import run_script
from tfseti.train.agc import AGCAdam, AGCAdamW, AGCSGD, AdaptiveClipping
from tfseti.train.optim import make_optimizer
from tfseti.train.train_config import TrainConfig

CLIP, EPS = 0.5, 1e-3


def reference_clip(grad: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, list[bool]]:
    """AGC by hand, one unit at a time: the clipped gradient and which units were clipped."""
    grad, weight = grad.astype(np.float64), weight.astype(np.float64)
    out = grad.copy()
    if grad.ndim <= 1:   # a vector: every element is a unit
        units = [(np.s_[i],) for i in range(grad.size)]
    else:                # a kernel: the last axis indexes output units
        units = [(np.s_[..., u],) for u in range(grad.shape[-1])]
    clipped = []
    for (index,) in units:
        max_norm = max(np.linalg.norm(weight[index]), EPS) * CLIP
        grad_norm = np.linalg.norm(grad[index])
        clipped.append(bool(grad_norm > max_norm))
        if clipped[-1]:
            out[index] = grad[index] * max_norm / max(grad_norm, 1e-6)
    return out, clipped


def tiny_network():
    """A conv, a dense layer with a zero bias (the eps floor) and the head named ``logits``."""
    image = keras.Input((5, 5, 2))
    x = keras.layers.Conv2D(4, 3, name="conv")(image)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(3, name="dense", bias_initializer="zeros")(x)
    net = keras.Model(image, keras.layers.Dense(2, name="logits")(x))
    rng = np.random.default_rng(0)
    for layer in (net.get_layer("conv"),):
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel, rng.uniform(0.5, 1.0, bias.shape).astype("float32")])
    return net


def scaled_gradients(variables):
    """Even units far below the clip threshold, odd units far above, so each tensor has clipped
    and unclipped units (for the zero bias, whose threshold is eps x clip, smaller ones)."""
    rng = np.random.default_rng(1)
    grads = []
    for v in variables:
        g = rng.standard_normal(v.shape).astype("float32")
        small = 1e-5 if not np.any(v.numpy()) else 1e-2
        grads.append(g * np.where(np.arange(v.shape[-1]) % 2 == 0, small, 10.0).astype("float32"))
    return grads


def agc_sgd():
    # lr 1, no momentum, no decay: the update is minus the (clipped) gradient
    train = TrainConfig(optimizer="sgd", momentum=0.0, weight_decay=0.0, schedule="constant",
                        learning_rate=1.0, agc_clip=CLIP, agc_eps=EPS)
    optimizer = make_optimizer(train, steps_per_epoch=1)
    assert type(optimizer) is AGCSGD
    return optimizer


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "xla"])
def test_agc_matches_the_clip_by_hand(jit):
    net = tiny_network()
    variables = net.trainable_variables
    assert [v.path for v in variables] == ["conv/kernel", "conv/bias", "dense/kernel",
                                           "dense/bias", "logits/kernel", "logits/bias"]
    before = [v.numpy() for v in variables]
    grads = scaled_gradients(variables)
    optimizer = agc_sgd()
    optimizer.build(variables)
    if jit:
        step = tf.function(lambda g: optimizer.apply(g, variables), jit_compile=True)
        step([tf.constant(g) for g in grads])
    else:
        optimizer.apply([tf.constant(g) for g in grads], variables)
    for v, w, g in zip(variables, before, grads):
        applied = w - v.numpy()   # = the gradient after AGC
        if v.path.startswith("logits/"):
            # the head is excluded (timm's training script): its raw gradient, unclipped
            np.testing.assert_allclose(applied, g, rtol=1e-5, atol=1e-6, err_msg=v.path)
            assert max(reference_clip(g, w)[1])   # ... though AGC would have clipped it
            continue
        expected, clipped = reference_clip(g, w)
        assert any(clipped) and not all(clipped), (v.path, clipped)
        np.testing.assert_allclose(applied, expected, rtol=1e-4, atol=1e-6, err_msg=v.path)
    # the zero bias: its clipped elements are capped at eps x clip
    dense_bias_step = before[3] - variables[3].numpy()
    np.testing.assert_allclose(np.abs(dense_bias_step[1::2]), EPS * CLIP, rtol=1e-4)


def test_excluded_layers_are_matched_by_path_component():
    from tfseti.models import create_model

    optimizer = AGCAdamW(learning_rate=1e-3)
    for options in (dict(), dict(dropout=0.2, dropout_samples=2), dict(pooling="attention")):
        net = create_model("plain_cnn_s", (16, 8, 1), **options)
        skipped = [v.path for v in net.trainable_variables if not optimizer.agc_applies(v)]
        heads = [v.path for v in net.trainable_variables if v.path.split("/")[0] == "logits"]
        assert skipped == heads and len(heads) >= 2, options
    assert AGCSGD(agc_exclude="pool").agc_exclude == ("pool",)


@pytest.mark.parametrize("name, plain", [("adamw", keras.optimizers.AdamW),
                                         ("adam", keras.optimizers.Adam),
                                         ("sgd", keras.optimizers.SGD)])
def test_agc_optimizers_keep_the_plain_layout_and_round_trip(name, plain, tmp_path):
    train = TrainConfig(optimizer=name, agc_clip=0.02, agc_eps=2e-3, ema=True,
                        weight_decay=1e-3)
    optimizer = make_optimizer(train, steps_per_epoch=4)
    reference = make_optimizer(TrainConfig(optimizer=name, ema=True, weight_decay=1e-3), 4)
    assert isinstance(optimizer, plain) and isinstance(optimizer, AdaptiveClipping)
    assert type(reference) is plain
    assert (optimizer.agc_clip, optimizer.agc_eps, optimizer.agc_exclude) == (0.02, 2e-3,
                                                                              ("logits",))

    # config: the plain optimizer's keys plus the AGC ones; rebuilt identical, also via Keras'
    # safe-mode deserialisation of the registered class
    config = optimizer.get_config()
    assert set(config) - set(reference.get_config()) == {"agc_clip", "agc_eps", "agc_exclude"}
    clone = type(optimizer).from_config(optimizer.get_config())   # (from_config edits its dict)
    assert type(clone) is type(optimizer) and clone.get_config() == config
    serialized = keras.saving.serialize_keras_object(optimizer)
    assert serialized["registered_name"] == f"tfseti>{type(optimizer).__name__}"
    revived = keras.saving.deserialize_keras_object(serialized, safe_mode=True)
    assert type(revived) is type(optimizer) and revived.get_config() == config

    # the same variables as the plain optimizer: a plain checkpoint restores into it (resume)
    net = tiny_network()
    for opt in (optimizer, reference):
        opt.build(net.trainable_variables)
    def layout(opt):   # variables named as the plain optimizer's (names are made unique)
        return [(v.path.replace(opt.name, re.sub(r"_\d+$", "", opt.name), 1), tuple(v.shape))
                for v in opt.variables]

    assert layout(optimizer) == layout(reference)
    reference.apply([tf.ones_like(v) for v in net.trainable_variables], net.trainable_variables)
    path = tf.train.Checkpoint(optimizer=reference).save(str(tmp_path / "ckpt"))
    status = tf.train.Checkpoint(optimizer=optimizer).restore(path)
    status.assert_existing_objects_matched()
    for got, want in zip(optimizer.variables, reference.variables):
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_agc_settings_are_validated():
    for value in (0, 0.0, -0.01):
        with pytest.raises(ValueError, match="train.agc_clip must be > 0 or unset"):
            TrainConfig(agc_clip=value)
    with pytest.raises(ValueError, match="train.agc_eps must be > 0"):
        TrainConfig(agc_clip=0.01, agc_eps=0.0)
    with pytest.raises(ValueError, match="agc_clip and train.clipnorm are both set"):
        TrainConfig(agc_clip=0.01, clipnorm=1.0)
    assert TrainConfig().agc_clip is None
    assert type(make_optimizer(TrainConfig(), 1)) is keras.optimizers.AdamW  # off by default
    for kwargs in (dict(agc_clip=0.0), dict(agc_clip=True), dict(agc_eps=-1.0)):
        with pytest.raises(ValueError, match="must be a number > 0"):
            AGCAdam(**kwargs)


MIRRORED_AGC_SCRIPT = textwrap.dedent("""
    import json
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from tfseti.train.agc import AGCSGD

    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 6)).astype("float32")
    y = (rng.uniform(size=(8, 1)) > 0.5).astype("float32")

    def trained(strategy, optimizer_class, **agc):
        with strategy.scope():
            keras.utils.set_random_seed(3)
            net = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, name="hidden"),
                                    keras.layers.Dense(1, name="logits")])
            net.compile(optimizer=optimizer_class(learning_rate=1.0, **agc),
                        loss=keras.losses.BinaryCrossentropy(from_logits=True),
                        jit_compile=False)
        net.train_on_batch(x, y)   # one global batch of 8: 4 per replica when mirrored
        return net.get_layer("hidden").kernel.numpy().tolist()

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    one = tf.distribute.get_strategy()
    print(json.dumps({
        "replicas": mirrored.num_replicas_in_sync,
        "mirrored": trained(mirrored, AGCSGD, agc_clip=0.01),
        "one_device": trained(one, AGCSGD, agc_clip=0.01),
        "unclipped": trained(one, keras.optimizers.SGD),
    }))
""")


def test_mirrored_strategy_clips_the_all_reduced_gradient():
    """Two replicas each see half the batch; AGC must clip the summed gradient (as on one
    device), not each replica's half before the sum."""
    report = run_script(MIRRORED_AGC_SCRIPT, timeout=300)
    assert report["replicas"] == 2
    mirrored, one, unclipped = (np.array(report[k]) for k in ("mirrored", "one_device",
                                                               "unclipped"))
    assert not np.allclose(one, unclipped, atol=1e-4)      # the clip did act
    np.testing.assert_allclose(mirrored, one, rtol=1e-5, atol=1e-6)
