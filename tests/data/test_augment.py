"""Batched augmentations: each op alone, in tf.data and under XLA, asserting what it must do."""

import numpy as np
import pytest
import tensorflow as tf

from tf_harness import MODES, prob, run, run_calls, seed
from tfseti.data import augment_ops as A
from tfseti.data import rng
from tfseti.data.augmenter import Augmenter, augment_and_mix, augment_on_host
from tfseti.data.config import AugmentConfig, MixupConfig, ViewConfig


def images(batch=16, height=12, width=10, channels=2, value_seed=0):
    # Strictly positive values so that a zeroed pixel is always visible.
    rng = np.random.default_rng(value_seed)
    return (rng.random((batch, height, width, channels)) + 0.5).astype(np.float32)


def check_flip(axis):
    def check(x, out, flipped):
        for b in range(len(x)):
            np.testing.assert_array_equal(out[b], np.flip(x[b], axis - 1) if flipped[b] else x[b])
            # involution: flipping the chosen samples again gives the input back
            np.testing.assert_array_equal(np.flip(out[b], axis - 1) if flipped[b] else out[b], x[b])
    return check


def check_roll(shift_mode):
    def check(x, out, shift):
        assert np.abs(shift).max() <= 4
        width = x.shape[2]
        for b in range(len(x)):
            expected = np.roll(x[b], shift[b], axis=1)
            if shift_mode == "roll":   # a roll keeps every value of the sample
                np.testing.assert_array_equal(np.sort(out[b], axis=None), np.sort(x[b], axis=None))
            else:
                source = np.arange(width) - shift[b]
                expected[:, (source < 0) | (source >= width)] = 0
            np.testing.assert_array_equal(out[b], expected)
    return check


def check_masks(axis, max_width):
    def check(x, out, spans):
        size = x.shape[axis]
        for b in range(len(x)):
            zeroed = np.zeros(size, bool)
            for start, end in spans[b]:
                assert 0 <= start <= end <= size and end - start <= max_width
                zeroed[start:end] = True
            rows_out = np.moveaxis(out[b], axis - 1, 0)
            rows_in = np.moveaxis(x[b], axis - 1, 0)
            np.testing.assert_array_equal((rows_out == 0).reshape(size, -1).all(1), zeroed)
            np.testing.assert_array_equal(rows_out[~zeroed], rows_in[~zeroed])
    return check


def check_cutout(x, out, boxes):
    for b, (t0, t1, f0, f1) in enumerate(boxes):
        assert t1 - t0 <= 5 and f1 - f0 <= 4
        hole = np.zeros(x.shape[1:3], bool)
        hole[t0:t1, f0:f1] = True
        assert (out[b][hole] == 0).all()
        np.testing.assert_array_equal(out[b][~hole], x[b][~hole])


def check_noise(x, out, std):
    for b in range(len(x)):
        added = out[b] - x[b]
        if std[b] == 0:
            np.testing.assert_array_equal(added, 0)
        else:
            assert 0.1 <= std[b] <= 0.5
            assert abs(added.std() / std[b] - 1) < 0.25 and abs(added.mean()) < 0.25 * std[b]


# Every image op: (images, seed, p) -> (images, info), how to read "applied" from info, and what
# the op must have done given (input, output, info).
OPS = {
    "vflip": (lambda x, s, p: A.vertical_flip(x, s, p), lambda i: i, check_flip(1)),
    "hflip": (lambda x, s, p: A.horizontal_flip(x, s, p), lambda i: i, check_flip(2)),
    "freq_roll": (lambda x, s, p: A.frequency_roll(x, s, p, 4), lambda i: i != 0, check_roll("roll")),
    "freq_shift": (lambda x, s, p: A.frequency_roll(x, s, p, 4, mode="shift"), lambda i: i != 0,
                   check_roll("shift")),
    "time_mask": (lambda x, s, p: A.time_mask(x, s, p, 3, 2),
                  lambda i: (i[..., 1] > i[..., 0]).any(1), check_masks(1, 3)),
    "freq_mask": (lambda x, s, p: A.frequency_mask(x, s, p, 3),
                  lambda i: (i[..., 1] > i[..., 0]).any(1), check_masks(2, 3)),
    "cutout": (lambda x, s, p: A.cutout(x, s, p, 5, 4), lambda i: i[:, 1] > i[:, 0], check_cutout),
    "noise": (lambda x, s, p: A.gaussian_noise(x, s, p, (0.1, 0.5)), lambda i: i > 0, check_noise),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(OPS))
def test_image_op(name, mode):
    """p = 0 is identity, p = 1 always acts, the op does what it reports, per-sample randomness
    differs between samples and steps, and the same seed and step reproduce the batch."""
    op, applied, check = OPS[name]
    x = images()
    (out0, info0), (out1, info1), (a, info_a), (b, _), (c, _) = run_calls(mode, op, [
        (x, seed(1), prob(0.0)), (x, seed(1), prob(1.0)),
        (x, seed(7, 3), prob(0.5)), (x, seed(7, 3), prob(0.5)), (x, seed(7, 4), prob(0.5))])
    np.testing.assert_array_equal(out0, x)
    assert not applied(info0).any()
    changed = np.abs(out1 - x).reshape(len(x), -1).max(1) > 0
    if name.startswith("freq_"):       # a shift of 0 is a legal draw; every other draw acts
        assert (changed == applied(info1)).all() and applied(info1).mean() > 0.5
    else:
        assert applied(info1).all() and changed.all()
    assert out1.shape == x.shape and out1.dtype == np.float32
    check(x, out1, info1)
    check(x, a, info_a)
    assert 0 < applied(info_a).sum() < len(x)
    assert len({np.asarray(v).tobytes() for v in info_a}) > 1, "all samples drew the same"
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def cadences(batch=12, panels=6, time=4, freq=3):
    # Panel p of sample b is filled with 10 * b + p: the panel order is readable from the values.
    values = 10 * np.arange(batch)[:, None] + np.arange(panels)[None, :]
    return np.broadcast_to(values[:, :, None, None], (batch, panels, time, freq)).astype(np.float16)


@pytest.mark.parametrize("mode", MODES)
def test_off_panel_shuffle_permutes_only_the_off_panels(mode):
    x = cadences()
    out, order = run(mode, A.shuffle_off_panels, x, seed(9), prob(0.8))
    panel_of = (out[:, :, 0, 0].astype(np.float32) - 10 * np.arange(len(x))[:, None]).round().astype(int)
    np.testing.assert_array_equal(panel_of, order)
    np.testing.assert_array_equal(order[:, [0, 2, 4]], np.tile([0, 2, 4], (len(x), 1)))
    for row in order:
        assert sorted(row[[1, 3, 5]]) == [1, 3, 5]
    assert (order != np.arange(6)).any(1).sum() >= 3


def test_off_panel_shuffle_rejects_on_only_cadences():
    with pytest.raises(ValueError, match="6 panels"):
        A.shuffle_off_panels(tf.zeros([2, 3, 4, 3], tf.float16), seed(0), 0.5)


FULL = AugmentConfig(seed=5, off_shuffle_p=0.5, vflip_p=0.5, hflip_p=0.5, freq_roll_p=0.5,
                       time_mask_p=0.5, freq_mask_p=0.5, cutout_p=0.5, noise_p=0.5)


def raw_batch(batch=4, seed_=0):
    rng = np.random.default_rng(seed_)
    return {"cadence": rng.standard_normal((batch, 6, 16, 12)).astype(np.float16),
            "target": np.array([0, 1] * (batch // 2), np.int64),
            "id": np.array([f"id{i}".encode() for i in range(batch)])}


def test_augmenter_reproduces_a_step_and_differs_between_steps():
    augmenter = Augmenter(ViewConfig("on_off"), FULL, MixupConfig(mixup_p=0.5))
    batch = raw_batch()
    first, info = augmenter(batch, step=3, with_info=True)
    again = augmenter(batch, step=3)
    other = augmenter(batch, step=4)
    np.testing.assert_array_equal(first["image"], again["image"])
    assert not np.array_equal(first["image"], other["image"])
    assert first["image"].shape == (4, 48, 12, 2) and first["image"].dtype == tf.float32
    assert set(info) == {"off_shuffle", "vflip", "hflip", "freq_roll", "time_mask", "freq_mask",
                         "cutout", "noise", "mix"}
    assert list(np.asarray(first["id"])) == list(batch["id"])    # pass-through keys survive
    eval_out = augmenter(batch, training=False)
    np.testing.assert_array_equal(eval_out["target"], batch["target"].astype(np.float32))


def test_host_and_device_modes_give_the_same_batches():
    # Integer-based stateless RNG: tf.data map on the host and XLA in the step draw the same.
    host_aug = Augmenter(ViewConfig("on"), AugmentConfig(**{**FULL.__dict__, "augment_on": "host"}),
                           MixupConfig(mixup_p=0.5, cutmix_p=0.3, lam="uniform"))
    device_aug = Augmenter(ViewConfig("on"), FULL, MixupConfig(mixup_p=0.5, cutmix_p=0.3, lam="uniform"))
    assert host_aug.on_host and not device_aug.on_host
    batches = [raw_batch(seed_=k) for k in range(2)]
    dataset = tf.data.Dataset.from_tensor_slices(
        {k: np.stack([b[k] for b in batches]) for k in batches[0]})
    # TF's graph kernels in tf.data vs XLA in the step (the strongest form of the claim)
    host = list(augment_on_host(dataset, host_aug, initial_step=10, jit_compile=False))
    step_fn = tf.function(lambda b, s: augment_and_mix(b, s, device_aug), jit_compile=True,
                          autograph=False)
    for k, batch in enumerate(batches):
        batch = {key: value for key, value in batch.items() if key != "id"}  # no strings in XLA
        device = step_fn(batch, tf.constant(10 + k, tf.int64))
        np.testing.assert_allclose(host[k]["image"], device["image"], atol=1e-4)
        np.testing.assert_allclose(host[k]["target"], device["target"], atol=1e-6)


def test_config_validation():
    with pytest.raises(ValueError, match="vflip_p"):
        AugmentConfig(vflip_p=1.5)
    with pytest.raises(ValueError, match="augment_on"):
        AugmentConfig(augment_on="tpu")
    with pytest.raises(ValueError, match="time_mask_count"):
        AugmentConfig(time_mask_count=0)
    with pytest.raises(ValueError, match="noise_std"):
        AugmentConfig(noise_std=(0.5, 0.1))
    with pytest.raises(ValueError, match="total_steps"):
        Augmenter(mixup=MixupConfig(mixup_p=0.5, off_after=0.8))


def pixels(fraction: float, size: int) -> int:
    return int(round(fraction * size))


def sequential_chain(images: tf.Tensor, seed, cfg: AugmentConfig):
    """``augment_images`` as the plain chain of the single ops, the reference it must equal
    (same per-op seeds, same order)."""
    _, height, width, _ = images.shape
    info = {}
    seeds = rng.split(seed, A.NUM_OP_SEEDS)

    def op(name):
        return seeds[A.OP_IDS[name]]

    if cfg.vflip_p > 0:
        images, info["vflip"] = A.vertical_flip(images, op("vflip"), cfg.vflip_p)
    if cfg.hflip_p > 0:
        images, info["hflip"] = A.horizontal_flip(images, op("hflip"), cfg.hflip_p)
    if cfg.freq_roll_p > 0:
        images, info["freq_roll"] = A.frequency_roll(
            images, op("freq_roll"), cfg.freq_roll_p, pixels(cfg.freq_roll_max, width),
            cfg.freq_roll_mode)
    if cfg.time_mask_p > 0:
        images, info["time_mask"] = A.time_mask(images, op("time_mask"), cfg.time_mask_p,
                                              pixels(cfg.time_mask_max, height), cfg.time_mask_count)
    if cfg.freq_mask_p > 0:
        images, info["freq_mask"] = A.frequency_mask(images, op("freq_mask"), cfg.freq_mask_p,
                                                   pixels(cfg.freq_mask_max, width),
                                                   cfg.freq_mask_count)
    if cfg.cutout_p > 0:
        images, info["cutout"] = A.cutout(images, op("cutout"), cfg.cutout_p,
                                        pixels(cfg.cutout_max, height), pixels(cfg.cutout_max, width))
    if cfg.ssr_p > 0:
        images, info["ssr"] = A.shift_scale_rotate(images, op("ssr"), cfg.ssr_p, cfg.ssr_shift,
                                                   cfg.ssr_scale, cfg.ssr_rotate)
    if cfg.motion_blur_p > 0:
        images, info["motion_blur"] = A.motion_blur(images, op("motion_blur"), cfg.motion_blur_p,
                                                    cfg.motion_blur_max)
    if cfg.sharpen_p > 0:
        images, info["sharpen"] = A.sharpen(images, op("sharpen"), cfg.sharpen_p, cfg.sharpen_alpha)
    if cfg.noise_p > 0:
        images, info["noise"] = A.gaussian_noise(images, op("noise"), cfg.noise_p, cfg.noise_std)
    return images, info


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("roll_mode", ["roll", "shift"])
def test_fused_chain_equals_the_single_ops_in_sequence(roll_mode, mode):
    cfg = AugmentConfig(**{**FULL.__dict__, "freq_roll_mode": roll_mode, "time_mask_count": 2,
                             "freq_roll_max": 0.5, "cutout_max": 0.5, "ssr_p": 0.5,
                             "motion_blur_p": 0.5, "motion_blur_max": 5, "sharpen_p": 0.5})
    x = images(batch=12, height=16, width=12)
    fused, fused_info = run(mode, lambda x, s: A.augment_images(x, s, cfg), x, seed(8))
    chained, chained_info = run(mode, lambda x, s: sequential_chain(x, s, cfg), x, seed(8))
    assert set(fused_info) == set(chained_info) == {"vflip", "hflip", "freq_roll", "time_mask",
                                                    "freq_mask", "cutout", "ssr", "motion_blur",
                                                    "sharpen", "noise"}
    for key in fused_info:
        np.testing.assert_array_equal(fused_info[key], chained_info[key])
    np.testing.assert_allclose(fused, chained, atol=1e-6)
