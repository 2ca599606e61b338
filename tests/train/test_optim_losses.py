"""Losses on logits, optimizer/schedule construction, and the exact whole-fold AUC."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import roc_auc_score

from tfseti.models.heads import positive_logit
from tfseti.train.callbacks import ValidationAUC
from tfseti.train.losses import TwoClassCrossentropy, make_loss
from tfseti.train.train_config import LOGITS_PER_LOSS
from tfseti.train.optim import make_optimizer, make_schedule
from tfseti.train.train_config import TrainConfig

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(16, 1)).astype("float32") * 3
SOFT_TARGETS = RNG.uniform(size=(16, 1)).astype("float32")


def _bce(y, logit):
    p = 1 / (1 + np.exp(-logit.astype(np.float64)))
    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))


def test_bce_and_focal_take_logits():
    bce = make_loss(TrainConfig(loss="bce"))
    assert float(bce(SOFT_TARGETS, LOGITS)) == pytest.approx(_bce(SOFT_TARGETS, LOGITS), rel=1e-4)
    # gamma = 0 without class balancing is plain BCE; gamma > 0 down-weights easy examples.
    focal0 = make_loss(TrainConfig(loss="focal", focal_gamma=0.0))
    assert float(focal0(SOFT_TARGETS, LOGITS)) == pytest.approx(_bce(SOFT_TARGETS, LOGITS), rel=1e-4)
    hard = (SOFT_TARGETS > 0.5).astype("float32")
    focal2 = make_loss(TrainConfig(loss="focal", focal_gamma=2.0, focal_alpha=0.7))
    assert isinstance(focal2, keras.losses.BinaryFocalCrossentropy)
    assert focal2.get_config()["apply_class_balancing"] and focal2.get_config()["alpha"] == 0.7
    assert 0 < float(focal2(hard, LOGITS)) < _bce(hard, LOGITS)


def test_focal_loss_on_soft_targets_follows_its_formula():
    # Pseudo-labels are soft: focal's p_t = y p + (1 - y)(1 - p), weighted BCE (1 - p_t)^gamma.
    p = 1 / (1 + np.exp(-LOGITS.astype(np.float64)))
    y = SOFT_TARGETS.astype(np.float64)
    p_t = y * p + (1 - y) * (1 - p)
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    expected = float(np.mean((1 - p_t) ** 2.0 * bce))
    focal = make_loss(TrainConfig(loss="focal", focal_gamma=2.0))
    assert float(focal(SOFT_TARGETS, LOGITS)) == pytest.approx(expected, rel=1e-4)


def test_two_class_ce_equals_bce_on_the_logit_difference():
    # softmax([a, b])[1] == sigmoid(b - a): CE of a 2-logit head is BCE of the difference.
    base = RNG.normal(size=(16, 1)).astype("float32")
    two = np.concatenate([base, base + LOGITS], axis=1)
    loss = make_loss(TrainConfig(loss="ce2"))
    assert isinstance(loss, TwoClassCrossentropy)
    assert float(loss(SOFT_TARGETS[:, 0], two)) == pytest.approx(_bce(SOFT_TARGETS, LOGITS), rel=1e-4)
    np.testing.assert_allclose(positive_logit(two), LOGITS[:, 0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(positive_logit(LOGITS), LOGITS[:, 0])
    assert LOGITS_PER_LOSS == {"bce": 1, "focal": 1, "ce2": 2}
    with pytest.raises(ValueError, match=r"\(B, 1\) or \(B, 2\)"):
        positive_logit(np.zeros((4, 3), "float32"))


def test_cosine_schedule_warms_up_then_decays():
    train = TrainConfig(epochs=4, learning_rate=1e-2, warmup_epochs=1, warmup_start_lr=1e-4,
                        final_lr_ratio=0.1)
    schedule = make_schedule(train, steps_per_epoch=10)
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    lr = [float(schedule(step)) for step in (0, 5, 10, 25, 40, 100)]
    assert lr[0] == pytest.approx(1e-4)
    assert lr[1] == pytest.approx((1e-4 + 1e-2) / 2, rel=1e-4)   # linear warm-up midpoint
    assert lr[2] == pytest.approx(1e-2)                           # peak after 1 epoch
    assert lr[3] == pytest.approx(1e-3 + (1e-2 - 1e-3) * 0.5, rel=1e-4)  # cosine midpoint
    assert lr[4] == pytest.approx(1e-3) and lr[5] == pytest.approx(1e-3)
    no_warmup = make_schedule(TrainConfig(epochs=2, learning_rate=1e-3), steps_per_epoch=5)
    assert float(no_warmup(0)) == pytest.approx(1e-3) and float(no_warmup(10)) == pytest.approx(0.0)
    assert make_schedule(TrainConfig(schedule="constant", learning_rate=3e-4), 5) == 3e-4


@pytest.mark.parametrize("name, cls", [("adamw", keras.optimizers.AdamW),
                                       ("adam", keras.optimizers.Adam),
                                       ("sgd", keras.optimizers.SGD)])
def test_optimizers_carry_decay_clipping_and_ema(name, cls):
    train = TrainConfig(optimizer=name, weight_decay=1e-3, clipnorm=1.0, ema=True, ema_momentum=0.9)
    optimizer = make_optimizer(train, steps_per_epoch=4)
    assert type(optimizer) is cls
    assert optimizer.use_ema and optimizer.ema_momentum == 0.9
    assert optimizer.weight_decay == pytest.approx(1e-3) and optimizer.clipnorm == 1.0
    # EMA really tracks: after steps the average lags the variable.
    variable = keras.Variable(np.ones(3, "float32"))
    optimizer.build([variable])
    for _ in range(3):
        optimizer.apply([tf.ones(3)], [variable])
    average = optimizer._model_variables_moving_average[0].numpy()
    assert not np.allclose(average, variable.numpy())


def test_validation_auc_callback_logs_the_whole_fold_auc():
    n = 24
    features = RNG.normal(size=(n, 3)).astype("float32")
    targets = (features[:, 0] > 0).astype("float32")
    mask = np.ones(n, "float32")
    mask[-3:] = 0
    x = keras.Input((3,), name="x")
    y = keras.Input((), name="target")
    m = keras.Input((), name="mask")
    score = keras.layers.Reshape(())(keras.layers.Dense(1, kernel_initializer="ones")(x))
    model = keras.Model({"x": x, "target": y, "mask": m},
                        {"score": score, "target": y, "mask": m})
    dataset = tf.data.Dataset.from_tensor_slices(
        {"x": features, "target": targets, "mask": mask}).batch(5)
    callback = ValidationAUC(dataset)
    callback.set_model(model)
    logs = {}
    callback.on_epoch_end(0, logs)
    expected = roc_auc_score(targets[:-3], features[:-3].sum(axis=1))
    assert logs["val_auc"] == pytest.approx(expected)
    assert callback.last_predictions["score"].shape == (n,)
