"""``--tta random:N``: the model's own exact training augmentations made on raw cadences, seeded."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from harness import write_kaggle_dir
from test_predict import export

from tfseti import predict as pr
from tfseti.data.augment_ops import OP_IDS, augment_images, frequency_roll, shuffle_off_panels, vertical_flip
from tfseti.data.config import AugmentConfig, ViewConfig
from tfseti.data.views import make_view
from tfseti.io.kaggle import KaggleDataset, OFF_PANELS, ON_PANELS

SMALL = (6, 4, 16)   # (P, T, F) of the fake models' cadences


def write_config(folder, view: ViewConfig, augment: dict) -> None:
    """The trainer's config.json: the whole view and the augment section."""
    with open(os.path.join(folder, "config.json"), "w") as handle:
        json.dump({"view": dataclasses.asdict(view), "augment": augment}, handle)


def fake_model(augment, view=None, shape=SMALL, path="fake/fold0/saved_model"):
    """A ServingModel whose serving function is a python callable recording its inputs."""
    calls = []
    weights = tf.constant(np.random.default_rng(0).standard_normal(shape), tf.float32)

    def function(cadence):
        calls.append(cadence.numpy())
        return tf.sigmoid(tf.reduce_sum(tf.cast(cadence, tf.float32) * weights, axis=[1, 2, 3]))

    model = pr.ServingModel(path, shape[0], shape, view if view is not None else {"name": "on"},
                            function, augment=augment)
    return model, calls


def cadences(n, shape=SMALL, seed=0):
    return np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float16)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("tta_random")
    kaggle = root / "kaggle"
    write_kaggle_dir(kaggle, n_train=1, n_test=5, seed=4)
    dataset = KaggleDataset(str(kaggle), "test")
    ids = dataset.ids()
    view = ViewConfig("on_off", resize=(24, 16), background="off_median")
    path, _, _ = export(root / "run" / "fold0", "on_off", seed=3)
    return {"root": root, "kaggle": str(kaggle), "path": path, "view": view,
            "cadences": np.stack([dataset.load(i) for i in ids])}


def test_hflip_p1_is_exactly_the_frequency_flipped_prediction(setup):
    write_config(os.path.dirname(setup["path"]), setup["view"], {"hflip_p": 1.0})
    model = pr.load_model(setup["path"])
    assert model.augment == {"hflip_p": 1.0}
    data = pr.open_test_data(setup["kaggle"])
    flipped = model(np.ascontiguousarray(setup["cadences"][..., ::-1]))
    # Batches of 2 as predict makes them (TensorFlow's CPU kernels differ in the last bits
    # between batch sizes).
    in_twos = np.concatenate([model(np.ascontiguousarray(setup["cadences"][i:i + 2, ..., ::-1]))
                              for i in range(0, len(setup["cadences"]), 2)])
    one = pr.predict([model], data, tta="random:1", batch_size=2)
    np.testing.assert_array_equal(one.target, in_twos)
    three = pr.predict([model], data, tta="random:3", batch_size=5)
    np.testing.assert_allclose(three.target, flipped, rtol=1e-6)
    assert not np.allclose(flipped, pr.predict([model], data).target, atol=1e-4)  # the flip matters
    assert pr.RandomTta([model], 3).describe() == [f"{setup['path']}: random TTA with hflip p=1"]


def test_same_seed_same_output_whatever_the_batch_size(setup):
    augment = {"off_shuffle_p": 0.5, "vflip_p": 0.5, "hflip_p": 0.5, "freq_roll_p": 0.5,
               "freq_roll_max": 0.25, "freq_roll_mode": "shift", "time_mask_p": 0.5}
    write_config(os.path.dirname(setup["path"]), setup["view"], augment)
    model = pr.load_model(setup["path"])
    data = pr.open_test_data(setup["kaggle"])
    first = pr.predict([model], data, tta="random:4", batch_size=2, tta_seed=7).target
    np.testing.assert_array_equal(pr.predict([model], data, tta="random:4", batch_size=2,
                                             tta_seed=7).target, first)
    np.testing.assert_allclose(pr.predict([model], data, tta="random:4", batch_size=5,
                                          tta_seed=7).target, first, rtol=2e-5, atol=1e-7)
    assert not np.allclose(pr.predict([model], data, tta="random:4", tta_seed=8).target, first,
                           atol=1e-5)
    (line,) = pr.RandomTta([model], 4).describe()
    assert line == (f"{setup['path']}: random TTA with off_shuffle p=0.5, vflip p=0.5, hflip p=0.5, "
                    f"freq_roll p=0.5 (up to ±4 image columns = ±64 channels, shift)")


def test_the_passes_are_the_documented_draws_applied_to_the_raw_cadences():
    """The inputs the model gets are apply_ops of draws from Generators seeded (seed, pass, op)."""
    augment = {"off_shuffle_p": 0.5, "vflip_p": 0.5, "hflip_p": 0.5, "freq_roll_p": 0.5}
    model, calls = fake_model(augment)
    batch = cadences(6)
    tta = pr.RandomTta([model], passes=3, seed=11)
    got = tta.predict_batch([model], batch)
    assert len(calls) == 3
    plan = tta.plans[0]
    expected = []
    for k in range(3):
        streams = {op: np.random.default_rng([11, k, OP_IDS[op]]) for op in plan.probabilities}
        variant = pr.apply_ops(batch, plan, pr.draw_ops(plan, streams, len(batch)))
        np.testing.assert_array_equal(calls[k], variant)
        expected.append(model(variant))
    np.testing.assert_allclose(got[0], np.mean(expected, axis=0), rtol=1e-6)


def test_each_op_against_hand_made_numpy():
    batch = cadences(40)
    view = {"name": "on", "resize": [24, 4], "resize_method": "area"}   # 16 channels -> 4 columns

    def plan_and_draws(augment):
        model, _ = fake_model(augment, view)
        plan = pr.plan_random_tta(model)
        streams = {op: np.random.default_rng([3, op_id]) for op, op_id in OP_IDS.items()}
        return plan, pr.draw_ops(plan, streams, len(batch))

    plan, draws = plan_and_draws({"hflip_p": 0.5})
    out = pr.apply_ops(batch, plan, draws)
    assert 0 < draws["hflip"].sum() < len(batch)
    for b in range(len(batch)):
        np.testing.assert_array_equal(out[b], batch[b, :, :, ::-1] if draws["hflip"][b] else batch[b])

    plan, draws = plan_and_draws({"vflip_p": 0.5})
    out = pr.apply_ops(batch, plan, draws)
    for b in range(len(batch)):
        hand = batch[b, [4, 5, 2, 3, 0, 1]][:, ::-1] if draws["vflip"][b] else batch[b]
        np.testing.assert_array_equal(out[b], hand)

    plan, draws = plan_and_draws({"off_shuffle_p": 0.7})
    out = pr.apply_ops(batch, plan, draws)
    seen = set()
    for b, order in enumerate(draws["off_shuffle"]):
        assert list(order[list(ON_PANELS)]) == list(ON_PANELS)
        assert sorted(order[list(OFF_PANELS)]) == list(OFF_PANELS)
        seen.add(tuple(order))
        np.testing.assert_array_equal(out[b], np.stack([batch[b, i] for i in order]))
    assert len(seen) > 3

    for mode in ("roll", "shift"):
        plan, draws = plan_and_draws({"freq_roll_p": 0.8, "freq_roll_max": 0.5, "freq_roll_mode": mode})
        assert (plan.roll_max, plan.roll_step) == (2, 4)   # round(0.5 * 4) columns of 4 channels
        shifts = draws["freq_roll"]
        assert set(shifts.tolist()) == {-2, -1, 0, 1, 2}
        out = pr.apply_ops(batch, plan, draws)
        for b in range(len(batch)):
            channels = int(shifts[b]) * 4
            hand = np.roll(batch[b], channels, axis=-1)
            if mode == "shift" and channels > 0:
                hand[..., :channels] = 0
            elif mode == "shift" and channels < 0:
                hand[..., channels:] = 0
            np.testing.assert_array_equal(out[b], hand)


def test_draw_frequencies_follow_the_training_probabilities():
    model, _ = fake_model({"vflip_p": 0.3, "hflip_p": 0.8, "freq_roll_p": 0.5, "off_shuffle_p": 0.1})
    plan = pr.plan_random_tta(model)
    streams = {op: np.random.default_rng([0, op_id]) for op, op_id in OP_IDS.items()}
    draws = pr.draw_ops(plan, streams, 4000)
    assert abs(draws["vflip"].mean() - 0.3) < 0.03
    assert abs(draws["hflip"].mean() - 0.8) < 0.03
    moved = (draws["off_shuffle"] != np.arange(6)).any(axis=1).mean()
    assert abs(moved - 0.1 * 5 / 6) < 0.03    # 1 of the 6 OFF orders is the identity
    # freq_roll_max 0.25 of 16 channels (no resize): shifts in [-4, 4], applied half the time
    # (a drawn 0 is possible too), uniform over the 9 values where applied.
    assert (plan.roll_max, plan.roll_step) == (4, 1)
    assert abs((draws["freq_roll"] != 0).mean() - 0.5 * 8 / 9) < 0.03


@pytest.mark.parametrize("view", [ViewConfig("on", resize=(24, 16)),
                                  ViewConfig("on_off", resize=(24, 16), background="off_median",
                                             resize_method="area"),
                                  ViewConfig("all", normalize_columns=True, background="off_median")])
def test_raw_ops_are_the_training_ops_on_the_view_image(view):
    """make_view(raw op) == training op(make_view): roll/shift, time flip, OFF shuffle."""
    raw = cadences(3, shape=(6, 273, 256), seed=5)
    raw[:, :, :, 100] = 0   # a zero column: the zero fill must survive background/normalisation
    image = make_view(tf.constant(raw), view)
    seed = tf.constant([4, 2], tf.int32)
    for mode in ("roll", "shift"):
        model, _ = fake_model({"freq_roll_p": 1.0, "freq_roll_max": 0.25, "freq_roll_mode": mode},
                              dataclasses.asdict(view), shape=(6, 273, 256))
        plan = pr.plan_random_tta(model)
        trained, shift = frequency_roll(image, seed, 1.0, plan.roll_max, mode)
        assert np.abs(shift.numpy()).max() > 0
        ours = pr.apply_ops(raw, plan, {"freq_roll": shift.numpy().astype(np.int64)})
        np.testing.assert_allclose(make_view(tf.constant(ours), view).numpy(), trained.numpy(),
                                   rtol=1e-5, atol=1e-5)
        # The training's own largest shift (fused chain, same AugmentConfig) is the plan's.
        _, info = augment_images(tf.zeros([512, 1, image.shape[2], 1]), seed,
                                 AugmentConfig(freq_roll_p=1.0, freq_roll_max=0.25))
        assert np.abs(info["freq_roll"].numpy()).max() == plan.roll_max
    model, _ = fake_model({"vflip_p": 1.0, "off_shuffle_p": 1.0}, dataclasses.asdict(view),
                          shape=(6, 273, 256))
    plan = pr.plan_random_tta(model)
    flipped = pr.apply_ops(raw, plan, {"vflip": np.ones(3, bool)})
    np.testing.assert_allclose(make_view(tf.constant(flipped), view).numpy(),
                               vertical_flip(image, seed, 1.0)[0].numpy(), rtol=1e-5, atol=1e-5)
    shuffled, order = shuffle_off_panels(tf.constant(raw), seed, 1.0)
    np.testing.assert_array_equal(pr.apply_ops(raw, plan, {"off_shuffle": order.numpy()}),
                                  shuffled.numpy())


def test_refusals_and_left_out_ops():
    with pytest.raises(ValueError, match="fake/fold0/saved_model: no config.json next to"):
        pr.plan_random_tta(fake_model(None)[0])
    for augment in ({}, {"time_mask_p": 0.5, "cutout_p": 0.5, "noise_p": 1.0, "hflip_p": 0.0}):
        with pytest.raises(ValueError, match="fake/fold0/saved_model: its training config enables "
                                             "none of the ops .* would repeat the same input"):
            pr.plan_random_tta(fake_model(augment)[0])
    with pytest.raises(ValueError, match="view dedoppler"):
        pr.plan_random_tta(fake_model({"hflip_p": 0.5}, {"name": "dedoppler"})[0])
    with pytest.raises(ValueError, match="vflip: view 'all' with background 'off_median' and no "
                                         "column normalisation: no flip of the raw cadences equals"):
        pr.plan_random_tta(fake_model({"vflip_p": 0.5}, {"name": "all", "background": "off_median"})[0])
    nmf, _ = fake_model({"freq_roll_p": 0.5, "hflip_p": 0.5}, {"name": "on", "extra_channels": ["nmf"]})
    plan = pr.plan_random_tta(nmf)
    assert list(plan.probabilities) == ["hflip"] and "extra channel(s) ['nmf']" in plan.excluded["freq_roll"]
    with pytest.raises(ValueError, match="no whole number of raw channels"):
        pr.plan_random_tta(fake_model({"freq_roll_p": 0.5}, {"name": "on", "resize": [24, 5]})[0])
    with pytest.raises(ValueError, match="augment.hflip_p: expected a number in \\[0, 1\\], got 2"):
        pr.plan_random_tta(fake_model({"hflip_p": 2})[0])
    # An op without an exact equivalent is left out (and said) while the others are used.
    wide = (6, 4, 256)
    model, _ = fake_model({"hflip_p": 0.5, "freq_roll_p": 0.5},
                          {"name": "on", "resize": [24, 128], "resize_method": "bicubic"}, shape=wide)
    plan = pr.plan_random_tta(model)
    assert list(plan.probabilities) == ["hflip"]
    assert "left out: freq_roll (the bicubic resize of 256 channels to 128 columns" in plan.describe()
    # The same width with a bilinear resize is exact: kept.
    model, _ = fake_model({"freq_roll_p": 0.5},
                          {"name": "on", "resize": [24, 128], "resize_method": "bilinear"}, shape=wide)
    assert list(pr.plan_random_tta(model).probabilities) == ["freq_roll"]
    # An ON-only model cannot shuffle OFF panels; the dedoppler view keeps the OFF shuffle.
    on_only, _ = fake_model({"off_shuffle_p": 0.5, "hflip_p": 0.5}, shape=(3, 4, 16))
    assert pr.plan_random_tta(on_only).excluded == {"off_shuffle": "the model takes ON panels only"}
    dedoppler, _ = fake_model({"off_shuffle_p": 0.5, "hflip_p": 0.5}, {"name": "dedoppler"})
    assert list(pr.plan_random_tta(dedoppler).probabilities) == ["off_shuffle"]
    for bad in ("random", "random:0", "random:x", "random:-2", "rand:3"):
        with pytest.raises(ValueError, match="--tta: expected one of"):
            pr.parse_tta(bad)
    assert pr.parse_tta("random:16") == ("random", 16)
    with pytest.raises(ValueError, match="random TTA keeps its draws"):
        pr.flip_variants(cadences(1), fake_model({"hflip_p": 1.0})[0], "random:2")


def test_cli_random_tta(setup, tmp_path, capsys):
    write_config(os.path.dirname(setup["path"]), setup["view"], {"vflip_p": 0.5, "hflip_p": 0.5})
    out = tmp_path / "sub.csv"
    code = pr.main(["--model", setup["path"], "--data", setup["kaggle"], "--tta", "random:3",
                    "--tta-seed", "5", "--out", str(out), "--batch-size", "2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"{setup['path']}: random TTA with vflip p=0.5, hflip p=0.5" in captured.out
    import pandas as pd

    expected = pr.predict([pr.load_model(setup["path"])], pr.open_test_data(setup["kaggle"]),
                          "random:3", tta_seed=5)
    np.testing.assert_allclose(pd.read_csv(out)["target"], expected.target, rtol=1e-6)
    # A model whose training enabled no usable op: one error line, no submission.
    write_config(os.path.dirname(setup["path"]), setup["view"], {"noise_p": 0.5})
    os.remove(out)
    code = pr.main(["--model", setup["path"], "--data", setup["kaggle"], "--tta", "random:3",
                    "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert err.startswith(f"error: {setup['path']}: its training config enables none") and \
        err.count("\n") == 1
