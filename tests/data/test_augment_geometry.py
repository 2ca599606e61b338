"""Shift-scale-rotate, motion blur and sharpen: each against an independent numpy reference, alone,
in tf.data and under XLA, and wired into ``augment_images`` / ``Augmenter``."""

import numpy as np
import pytest
import tensorflow as tf

from tf_harness import MODES, prob, run, run_calls, seed
from tfseti.config import from_dict
from tfseti.data import augment_ops as A
from tfseti.data.augmenter import Augmenter
from tfseti.data.config import AugmentConfig, ViewConfig
from tfseti.data.views import make_view

IDENTITY = np.array([0.0, 0.0, 1.0, 0.0], np.float32)
SHARPEN = np.array([[-1, -1, -1], [-1, 9, -1], [-1, -1, -1]], np.float64)


def images(batch=16, height=12, width=10, channels=2, value_seed=0):
    return (np.random.default_rng(value_seed).random((batch, height, width, channels)) + 0.5
            ).astype(np.float32)


# ----------------------------------------------------------------------------- numpy references


def np_ssr(x, params):
    """One sample ``(H, W, C)``: invert cv2's forward matrix (rotation about the pixel centre,
    scale, shift) and sample bilinearly with zero fill, in float64."""
    height, width, _ = x.shape
    shift_r, shift_c, scale, angle = (float(v) for v in params)
    theta = np.deg2rad(angle)
    forward = scale * np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]])
    centre = np.array([(width - 1) / 2, (height - 1) / 2])              # (col, row)
    r, c = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    dest = np.stack([c.ravel(), r.ravel()]) - (centre + [shift_c, shift_r])[:, None]
    src_c, src_r = np.linalg.inv(forward) @ dest + centre[:, None]
    out = np.zeros((height * width, x.shape[2]))
    r0, c0 = np.floor(src_r).astype(int), np.floor(src_c).astype(int)
    for dr in (0, 1):
        for dc in (0, 1):
            rr, cc = r0 + dr, c0 + dc
            weight = (1 - abs(src_r - rr)) * (1 - abs(src_c - cc))
            inside = (rr >= 0) & (rr < height) & (cc >= 0) & (cc < width)
            out[inside] += weight[inside, None] * x[rr[inside], cc[inside]]
    return out.reshape(x.shape)


def np_line_kernel(length, angle, size):
    """Centred line of ``length`` pixels: one pixel per step along the major axis."""
    kernel = np.zeros((size, size))
    centre = size // 2
    theta = np.deg2rad(float(angle))
    along_c, along_r = np.cos(theta), -np.sin(theta)       # direction (col, row), rows down
    for k in range(-(int(length) // 2), int(length) // 2 + 1):
        if abs(along_c) >= abs(along_r):
            dr, dc = np.round(k * along_r / along_c), k
        else:
            dr, dc = k, np.round(k * along_c / along_r)
        kernel[centre + int(dr), centre + int(dc)] += 1
    return kernel / length


def np_filter(x, kernel):
    """cv2.filter2D: correlation, reflect-101 borders, every channel of ``(H, W, C)`` alike."""
    half = kernel.shape[0] // 2
    height, width, _ = x.shape
    padded = np.pad(x.astype(np.float64), [(half, half), (half, half), (0, 0)], mode="reflect")
    return sum(kernel[i, j] * padded[i:i + height, j:j + width]
               for i in range(kernel.shape[0]) for j in range(kernel.shape[1]))


def np_sharpen(x, alpha):
    return (1 - alpha) * x + alpha * np_filter(x, SHARPEN)


# ----------------------------------------------------------------------------- the ops with given parameters


def test_ssr_integer_shift_is_exact():
    x = images(batch=2)
    params = np.array([[2, -3, 1, 0], [-1, 4, 1, 0]], np.float32)
    out = A.warp_shift_scale_rotate(x, params).numpy()
    for b, (dr, dc, _, _) in enumerate(params.astype(int)):
        expected = np.zeros_like(x[b])
        src = x[b][max(0, -dr):x.shape[1] - max(0, dr), max(0, -dc):x.shape[2] - max(0, dc)]
        expected[max(0, dr):max(0, dr) + src.shape[0], max(0, dc):max(0, dc) + src.shape[1]] = src
        np.testing.assert_array_equal(out[b], expected)


@pytest.mark.parametrize("size", [9, 8])
def test_ssr_right_angles_on_a_square_image_equal_rot90(size):
    x = images(batch=3, height=size, width=size)
    params = np.array([[0, 0, 1, 90], [0, 0, 1, -90], [0, 0, 1, 180]], np.float32)
    out = A.warp_shift_scale_rotate(x, params).numpy()
    np.testing.assert_allclose(out[0], np.rot90(x[0], 1), atol=1e-5)   # counter-clockwise
    np.testing.assert_allclose(out[1], np.rot90(x[1], -1), atol=1e-5)
    np.testing.assert_allclose(out[2], np.rot90(x[2], 2), atol=1e-5)


def test_ssr_scale_about_the_centre_and_general_parameters():
    x = images(batch=4, height=9, width=11)
    params = np.array([[0, 0, 2, 0], [0, 0, 0.5, 0], [1.3, -0.7, 1.1, 17], [-2.5, 3.2, 0.9, -33]],
                      np.float32)
    out = A.warp_shift_scale_rotate(x, params).numpy()
    # zoom x2 about the centre (4, 5): output (2i, 2j) is input (2 + i, 3 + j)
    np.testing.assert_allclose(out[0][::2, 1::2], x[0][2:7, 3:8], atol=1e-6)
    # shrink x0.5: the image fills the middle, zeros outside
    np.testing.assert_allclose(out[1][2:7:2, 3:8:2], x[1][::4, 1::4][:3, :3], atol=1e-6)
    assert (out[1][0] == 0).all() and (out[1][:, 0] == 0).all()
    for b in range(len(x)):
        np.testing.assert_allclose(out[b], np_ssr(x[b], params[b]), atol=1e-5)


@pytest.mark.parametrize("length,angle,cells", [
    (5, 0.0, [(0, -2), (0, -1), (0, 0), (0, 1), (0, 2)]),
    (3, 90.0, [(-1, 0), (0, 0), (1, 0)]),
    (5, 45.0, [(2, -2), (1, -1), (0, 0), (-1, 1), (-2, 2)]),     # up-right: counter-clockwise
    (7, 30.0, None), (7, 120.0, None), (3, 10.0, None)])
def test_motion_blur_spreads_a_bright_pixel_along_its_line(length, angle, cells):
    x = np.zeros((1, 15, 13, 1), np.float32)
    x[0, 7, 6, 0] = 6.0
    kernel = A.line_kernels(tf.constant([length], tf.float32), tf.constant([angle]), 7).numpy()[0]
    np.testing.assert_allclose(kernel, np_line_kernel(length, angle, 7), atol=1e-7)
    out = A.blur_with_kernels(x, kernel[None]).numpy()[0, :, :, 0]
    lit = np.argwhere(out > 0) - [7, 6]
    assert len(lit) == length
    np.testing.assert_allclose(out[out > 0], 6.0 / length, rtol=1e-6)
    assert abs(out.sum() - 6.0) < 1e-5
    extent = np.abs(lit).max(0)
    assert extent.max() == length // 2                     # the major axis spans the length
    assert np.all(np.abs(np.diff(lit[np.argsort(lit[:, 0 if extent[0] > extent[1] else 1])], axis=0)) <= 1)
    if cells is not None:
        assert sorted(map(tuple, lit)) == sorted(cells)


def test_motion_blur_with_kernels_equals_a_numpy_filter_with_reflect_borders():
    x = images(batch=3, height=9, width=8)
    length, angle = np.array([3, 5, 7], np.float32), np.array([20, 100, 160], np.float32)
    kernels = A.line_kernels(length, angle, 7).numpy()
    out = A.blur_with_kernels(x, kernels).numpy()
    for b in range(3):
        np.testing.assert_allclose(out[b], np_filter(x[b], np_line_kernel(length[b], angle[b], 7)),
                                   atol=1e-5)
    with pytest.raises(ValueError, match="larger than"):
        A.blur_with_kernels(x[:, :3], kernels)


def test_sharpen_alpha_0_is_identity_and_1_is_the_3x3_kernel():
    x = images(batch=3, height=7, width=6)
    out = A.sharpen_with(x, np.array([0.0, 1.0, 0.3], np.float32)).numpy()
    np.testing.assert_array_equal(out[0], x[0])
    np.testing.assert_allclose(out[1], np_filter(x[1], SHARPEN), atol=1e-5)
    np.testing.assert_allclose(out[2], np_sharpen(x[2], 0.3), atol=1e-5)


# ----------------------------------------------------------------------------- the random ops


def check_ssr(x, out, params):
    assert (np.abs(params[:, :2]) <= [0.2 * 12, 0.2 * 10]).all()
    assert (np.abs(params[:, 2] - 1) <= 0.3).all() and (np.abs(params[:, 3]) <= 30).all()
    for b in range(len(x)):
        np.testing.assert_allclose(out[b], np_ssr(x[b], params[b]), atol=1e-4)


def check_motion_blur(x, out, params):
    for b, (length, angle) in enumerate(params):
        if length == 0:
            np.testing.assert_array_equal(out[b], x[b])
            continue
        assert length in (3, 5, 7) and 0 <= angle < 180
        np.testing.assert_allclose(out[b], np_filter(x[b], np_line_kernel(length, angle, 7)),
                                   atol=1e-5)


def check_sharpen(x, out, alpha):
    for b in range(len(x)):
        if alpha[b] == 0:
            np.testing.assert_array_equal(out[b], x[b])
        else:
            assert 0.2 <= alpha[b] <= 0.6
            np.testing.assert_allclose(out[b], np_sharpen(x[b], alpha[b]), atol=1e-5)


OPS = {
    "ssr": (lambda x, s, p: A.shift_scale_rotate(x, s, p, 0.2, 0.3, 30.0),
            lambda i: (i != IDENTITY).any(1), check_ssr),
    "motion_blur": (lambda x, s, p: A.motion_blur(x, s, p, 7), lambda i: i[:, 0] > 0,
                    check_motion_blur),
    "sharpen": (lambda x, s, p: A.sharpen(x, s, p, (0.2, 0.6)), lambda i: i > 0, check_sharpen),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(OPS))
def test_random_op(name, mode):
    """p = 0 is identity, p = 1 acts on every sample, the output matches the numpy reference of
    the reported parameters, parameters differ between samples and steps, the same seed
    reproduces, and tf.data / XLA give what eager gives."""
    op, applied, check = OPS[name]
    x = images()
    calls = [(x, seed(1), prob(0.0)), (x, seed(1), prob(1.0)), (x, seed(7, 3), prob(0.5)),
             (x, seed(7, 3), prob(0.5)), (x, seed(7, 4), prob(0.5))]
    (out0, info0), (out1, info1), (a, info_a), (b, _), (c, _) = results = run_calls(mode, op, calls)
    np.testing.assert_array_equal(out0, x)
    assert not applied(info0).any()
    assert applied(info1).all()
    assert (np.abs(out1 - x).reshape(len(x), -1).max(1) > 1e-3).all()
    assert out1.shape == x.shape and out1.dtype == np.float32
    check(x, out1, info1)
    check(x, a, info_a)
    assert 0 < applied(info_a).sum() < len(x)
    assert len({np.asarray(v).tobytes() for v in info1}) == len(x), "samples drew the same"
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    if mode != "eager":
        for (out, info), args in zip(results, calls):
            eager_out, eager_info = op(*args)
            np.testing.assert_allclose(info, eager_info.numpy(), rtol=1e-6)
            np.testing.assert_allclose(out, eager_out.numpy(), atol=1e-5)


@pytest.mark.parametrize("dtype", [tf.bfloat16, tf.float16])
def test_ops_keep_a_low_precision_dtype(dtype):
    x = images(batch=4)
    for name, (op, _, _) in OPS.items():
        low, _ = op(tf.cast(x, dtype), seed(3), prob(1.0))
        full, _ = op(x, seed(3), prob(1.0))
        assert low.dtype == dtype, name
        np.testing.assert_allclose(tf.cast(low, tf.float32).numpy(), full.numpy(), rtol=2e-2,
                                   atol=2e-2, err_msg=name)


# ----------------------------------------------------------------------------- the chain and the Augmenter

NEW = dict(ssr_p=1.0, ssr_shift=0.1, ssr_scale=0.2, ssr_rotate=20.0, motion_blur_p=1.0,
           motion_blur_max=5, sharpen_p=1.0, sharpen_alpha=(0.3, 0.7))


def test_new_ops_leave_the_other_ops_draws_unchanged():
    old = AugmentConfig(seed=5, vflip_p=0.5, hflip_p=0.5, freq_roll_p=0.5, time_mask_p=0.5,
                        freq_mask_p=0.5, cutout_p=0.5, noise_p=0.5)
    new = AugmentConfig(**{**old.__dict__, **NEW})
    x = images(batch=8)
    _, old_info = A.augment_images(x, seed(4), old)
    _, new_info = A.augment_images(x, seed(4), new)
    assert set(new_info) == set(old_info) | {"ssr", "motion_blur", "sharpen"}
    for key in old_info:
        np.testing.assert_array_equal(old_info[key], new_info[key])
    assert A.OP_IDS["ssr"] == 11 and A.OP_IDS["motion_blur"] == 12 and A.OP_IDS["sharpen"] == 13
    assert len(set(A.OP_IDS.values())) == len(A.OP_IDS) and max(A.OP_IDS.values()) < A.NUM_OP_SEEDS


def test_augmenter_applies_the_new_ops_in_order_on_the_view():
    cfg = AugmentConfig(seed=2, **NEW)
    augmenter = Augmenter(ViewConfig("on"), cfg)
    cadence = np.random.default_rng(1).standard_normal((3, 6, 6, 10)).astype(np.float16)
    batch = {"cadence": cadence, "target": np.array([0, 1, 0], np.int64)}
    out, info = augmenter(batch, step=7, with_info=True)
    assert set(info) == {"ssr", "motion_blur", "sharpen"}
    view = make_view(cadence, ViewConfig("on")).numpy()
    for b in range(3):
        expected = np_ssr(view[b], info["ssr"][b])
        length, angle = info["motion_blur"][b].numpy()
        assert length in (3, 5)
        expected = np_filter(expected, np_line_kernel(length, angle, 5))
        expected = np_sharpen(expected, float(info["sharpen"][b]))
        np.testing.assert_allclose(out["image"][b], expected, atol=1e-4)
    assert (np.abs(info["ssr"][:, 3]) <= 20).all() and (np.abs(info["ssr"][:, 2] - 1) <= 0.2).all()
    # the same step reproduces it; the default config applies none of them
    np.testing.assert_array_equal(augmenter(batch, step=7)["image"], out["image"])
    _, default_info = Augmenter(ViewConfig("on"))(batch, step=7, with_info=True)
    assert default_info == {}


def test_fused_chain_with_the_new_ops_compiles_in_bfloat16():
    cfg = AugmentConfig(**{**NEW, "ssr_p": 0.6})
    x = tf.cast(images(batch=6), tf.bfloat16)
    fn = lambda x, s: A.augment_images(x, s, cfg)          # noqa: E731
    eager, eager_info = fn(x, tf.constant(seed(9)))
    compiled, compiled_info = run("xla", fn, x, seed(9))
    assert compiled.dtype == tf.bfloat16.as_numpy_dtype
    for key in eager_info:
        np.testing.assert_allclose(compiled_info[key], eager_info[key].numpy(), rtol=1e-6)
    np.testing.assert_allclose(compiled.astype(np.float32), tf.cast(eager, tf.float32).numpy(),
                               rtol=2e-2, atol=2e-2)


def test_config_fields_and_validation():
    cfg = from_dict(AugmentConfig, {"ssr_p": 0.5, "ssr_rotate": 10, "motion_blur_max": 9,
                                    "sharpen_alpha": [0.1, 0.3]})
    assert cfg.ssr_rotate == 10.0 and cfg.sharpen_alpha == (0.1, 0.3) and cfg.motion_blur_max == 9
    default = AugmentConfig()
    assert default.ssr_p == default.motion_blur_p == default.sharpen_p == 0.0
    for kwargs, field in [({"ssr_p": 1.2}, "ssr_p"), ({"ssr_shift": -0.1}, "ssr_shift"),
                          ({"ssr_scale": 1.0}, "ssr_scale"), ({"ssr_rotate": 200}, "ssr_rotate"),
                          ({"motion_blur_max": 4}, "motion_blur_max"),
                          ({"motion_blur_max": 1}, "motion_blur_max"),
                          ({"sharpen_alpha": (0.6, 0.2)}, "sharpen_alpha"),
                          ({"sharpen_alpha": (0.2, 1.5)}, "sharpen_alpha"),
                          ({"motion_blur_p": -1}, "motion_blur_p")]:
        with pytest.raises(ValueError, match=f"AugmentConfig.{field}"):
            AugmentConfig(**kwargs)
    with pytest.raises(ValueError, match="max_length"):
        A.motion_blur(images(batch=2), seed(0), 0.5, 4)
