"""The batched, per-sample-random augmentation ops, and their fused chain ``augment_images``.

Every op takes a whole batch and a ``[2]`` seed, decides per sample (probability ``p``) whether to
act, draws its per-sample parameters from stateless RNG (``tfseti.data.rng``), and returns the new
batch *and what it did* (which samples, which spans), so tests and analyses can check it. All ops
are static-shaped tensor arithmetic (flips by ``tf.where``, rolls by ``tf.gather``, masks by
comparisons with ``tf.range``, shift-scale-rotate by bilinear gathers, motion blur and sharpen
by sums of shifted slices) and compile under
``tf.function(jit_compile=True)``.

Image ops act on ``(B, H, W, C)``: H is time (the stacked panels), W frequency. The cadence op
``shuffle_off_panels`` acts on raw cadences ``(B, 6 or 3, T, F)`` before the view.

``augment_images`` runs the image ops of an ``AugmentConfig`` as one fused chain (two gathers, one
select, one add, plus the resampling ops when switched on) that equals the single ops applied one after the other (tested against that
plain chain), which keeps the compiled step cheap. ``tfseti.data.augmenter`` composes these with
the view, needle injection and mixup.
"""

from __future__ import annotations

import math

import tensorflow as tf

from tfseti.data import rng
from tfseti.data.config import FREQ_ROLL_MODES, AugmentConfig
from tfseti.io.kaggle import OFF_PANELS


# Fixed sub-stream number of each op: adding an op never changes the draws of the others.
OP_IDS = {"off_shuffle": 1, "vflip": 2, "hflip": 3, "freq_roll": 4, "time_mask": 5,
          "freq_mask": 6, "cutout": 7, "noise": 8, "mix": 9, "inject": 10, "ssr": 11,
          "motion_blur": 12, "sharpen": 13}
NUM_OP_SEEDS = 16   # fixed, room for more ops without changing existing streams


# ----------------------------------------------------------------------------- helpers


def _batch_size(x: tf.Tensor) -> tf.Tensor:
    return tf.shape(x)[0]


def _per_sample(mask: tf.Tensor, rank: int) -> tf.Tensor:
    """Reshape a ``(B,)`` tensor to broadcast against a rank-``rank`` batch."""
    return tf.reshape(mask, [-1] + [1] * (rank - 1))


def _span_mask(size: int, start: tf.Tensor, end: tf.Tensor) -> tf.Tensor:
    """``(B, size)`` bool, True on ``[start, end)`` of each sample."""
    index = tf.range(size, dtype=tf.int32)[None, :]
    return (index >= start[:, None]) & (index < end[:, None])


def _random_spans(u_width, u_start, size: int, max_width: int, applied: tf.Tensor):
    """Per-sample ``[start, end)`` with width in [1, max_width] (at least one row/column, so an
    applied op always acts) from two uniforms per sample; empty where not applied."""
    max_width = min(int(max_width), size)
    width = rng.to_int(u_width, min(1, max_width), max_width)
    start = rng.to_int(u_start, 0, size - width)
    width = tf.where(applied, width, 0)
    return start, start + width


# ----------------------------------------------------------------------------- draws
# Each op draws its per-sample parameters here, from its own seed; the op alone and the fused
# chain in ``augment_images`` use the same draws, so they give the same result (tested).


def _draw_flip(seed, p, batch):
    return rng.bernoulli([batch], seed, p)


def _draw_shift(seed, p, batch, max_shift: int):
    u = rng.uniform([2, batch], seed)
    return tf.where(u[0] < tf.cast(p, tf.float32), rng.to_int(u[1], -max_shift, max_shift), 0)


def _draw_spans(seed, p, batch, size: int, max_width: int, count: int):
    """``(starts, ends)``, each ``(B, count)``."""
    u = rng.uniform([1 + 2 * count, batch], seed)
    applied = u[0] < tf.cast(p, tf.float32)
    spans = [_random_spans(u[1 + 2 * k], u[2 + 2 * k], size, max_width, applied) for k in range(count)]
    return tf.stack([a for a, _ in spans], 1), tf.stack([b for _, b in spans], 1)


def _draw_box(seed, p, batch, height: int, width: int, max_height: int, max_width: int):
    u = rng.uniform([5, batch], seed)
    applied = u[0] < tf.cast(p, tf.float32)
    t0, t1 = _random_spans(u[1], u[2], height, max_height, applied)
    f0, f1 = _random_spans(u[3], u[4], width, max_width, applied)
    return tf.stack([t0, t1, f0, f1], axis=1)


def _draw_noise_std(seed, p, batch, std_range):
    u = rng.uniform([2, batch], seed)
    low, high = std_range
    return tf.where(u[0] < tf.cast(p, tf.float32), low + (high - low) * u[1], 0.0)


def _keep_spans(size: int, starts, ends):
    """``(B, size)`` bool, False inside any of the spans."""
    keep = tf.ones([tf.shape(starts)[0], size], tf.bool)
    for k in range(starts.shape[1]):
        keep &= ~_span_mask(size, starts[:, k], ends[:, k])
    return keep


def _shift_source(width: int, shift):
    """Source channel of each output channel for a shift (``(B, W)``, may be out of range)."""
    return tf.range(width, dtype=tf.int32)[None, :] - shift[:, None]


# ----------------------------------------------------------------------------- image ops


def flip(images: tf.Tensor, seed, p, axis: int):
    """Reverse ``axis`` of each sample with probability ``p``; returns ``(images, flipped (B,))``."""
    images = tf.convert_to_tensor(images)
    flipped = _draw_flip(seed, p, _batch_size(images))
    out = tf.where(_per_sample(flipped, images.shape.rank), tf.reverse(images, [axis]), images)
    return out, flipped


def vertical_flip(images, seed, p):
    """Flip time (H): reverses the order of time rows, so also the order of the stacked panels."""
    return flip(images, seed, p, axis=1)


def horizontal_flip(images, seed, p):
    """Flip frequency (W): turns a drift rate into its negative."""
    return flip(images, seed, p, axis=2)


def frequency_roll(images: tf.Tensor, seed, p, max_shift: int, mode: str = "roll"):
    """Shift each sample along frequency by an integer in [-max_shift, max_shift].

    ``roll`` wraps around (keeps every value); ``shift`` fills the vacated channels with 0.
    Output channel j holds input channel j - shift (``tf.roll`` convention).
    Returns ``(images, shift (B,) int32)``, shift 0 where not applied.
    """
    if mode not in FREQ_ROLL_MODES:
        raise ValueError(f"frequency_roll: mode must be one of {FREQ_ROLL_MODES}, got {mode!r}")
    images = tf.convert_to_tensor(images)
    width = images.shape[2]
    shift = _draw_shift(seed, p, _batch_size(images), max_shift)
    source = _shift_source(width, shift)
    out = tf.gather(images, tf.math.floormod(source, width), axis=2, batch_dims=1)
    if mode == "shift":
        inside = (source >= 0) & (source < width)
        out = tf.where(inside[:, None, :, None], out, tf.zeros_like(out))
    return out, shift


def _axis_masks(images: tf.Tensor, seed, p, max_width: int, count: int, axis: int):
    images = tf.convert_to_tensor(images)
    size = images.shape[axis]
    starts, ends = _draw_spans(seed, p, _batch_size(images), size, max_width, count)
    shape = [-1, 1, 1, 1]
    shape[axis] = size
    out = tf.where(tf.reshape(_keep_spans(size, starts, ends), shape), images, tf.zeros_like(images))
    return out, tf.stack([starts, ends], axis=-1)


def time_mask(images, seed, p, max_width: int, count: int = 1):
    """SpecAugment time masks: zero ``count`` row spans of 1 to ``max_width`` rows per sample.

    Returns ``(images, spans (B, count, 2))`` with ``[start, end)`` rows; empty where not applied.
    """
    return _axis_masks(images, seed, p, max_width, count, axis=1)


def frequency_mask(images, seed, p, max_width: int, count: int = 1):
    """SpecAugment frequency masks: zero ``count`` column spans of 1 to ``max_width`` channels."""
    return _axis_masks(images, seed, p, max_width, count, axis=2)


def _box_hole(boxes, height: int, width: int):
    rows = _span_mask(height, boxes[:, 0], boxes[:, 1])
    cols = _span_mask(width, boxes[:, 2], boxes[:, 3])
    return rows[:, :, None, None] & cols[:, None, :, None]


def cutout(images: tf.Tensor, seed, p, max_height: int, max_width: int):
    """Zero one rectangle per sample; returns ``(images, boxes (B, 4))`` as [t0, t1, f0, f1)."""
    images = tf.convert_to_tensor(images)
    _, height, width, _ = images.shape
    boxes = _draw_box(seed, p, _batch_size(images), height, width, max_height, max_width)
    return tf.where(_box_hole(boxes, height, width), tf.zeros_like(images), images), boxes


def gaussian_noise(images: tf.Tensor, seed, p, std_range: tuple[float, float]):
    """Add N(0, s^2) noise with s ~ U(std_range) per sample; returns ``(images, s (B,))``."""
    images = tf.convert_to_tensor(images)
    seeds = rng.split(seed, 2)
    std = _draw_noise_std(seeds[0], p, _batch_size(images), std_range)
    noise = rng.normal(tf.shape(images), seeds[1])
    return images + tf.cast(_per_sample(std, 4) * noise, images.dtype), std


# ----------------------------------------------------------------------------- resampling ops
# Shift-scale-rotate, motion blur and sharpen (albumentations ShiftScaleRotate / MotionBlur /
# Sharpen are the reference semantics). Each comes as the op with given per-sample parameters
# (``warp_shift_scale_rotate``, ``blur_with_kernels``, ``sharpen_with``: tests, TTA) and the
# random op that draws them. They compute in float32 and return the input dtype; samples not
# drawn are returned untouched (a select), so p = 0 is exactly the identity.


def _to_float32(images: tf.Tensor) -> tf.Tensor:
    return tf.cast(images, tf.float32) if images.dtype != tf.float32 else images


def _materialize(images: tf.Tensor) -> tf.Tensor:
    """The same values, written to memory once: a fusion barrier for XLA.

    These ops read every pixel many times (4 bilinear gathers, K * K or 9 shifted slices). XLA
    fuses a cheap producer into every one of those reads and recomputes it each time: chained
    after the masks, and after one another, the three ops cost ~1 s CPU per 8 x 819 x 256 batch
    instead of ~0.1 s. A scatter is never fused into its consumers, and this one (sample 0 written
    back onto itself) costs one copy. TF has no public XLA optimization barrier that also runs in
    tf.data.
    """
    return tf.tensor_scatter_nd_update(images, [[0]], images[:1])


def _bilinear_zero_fill(images: tf.Tensor, rows: tf.Tensor, cols: tf.Tensor) -> tf.Tensor:
    """Sample each image at float source coordinates ``rows``, ``cols`` ``(B, H, W)`` (pixel
    centres at integers) by bilinear interpolation of the four neighbours, 0 outside the image.

    Four batched gathers on the flattened image: no ImageProjectiveTransform (no XLA kernel on
    every backend); an integer coordinate gets weight exactly 1, so integer shifts are exact.
    """
    batch = _batch_size(images)
    _, height, width, channels = images.shape
    flat = tf.reshape(images, [batch, height * width, channels])
    r0 = tf.floor(rows)
    c0 = tf.floor(cols)
    fr = rows - r0
    fc = cols - c0
    r0 = tf.cast(r0, tf.int32)
    c0 = tf.cast(c0, tf.int32)
    out = 0.0
    for dr, dc, weight in ((0, 0, (1.0 - fr) * (1.0 - fc)), (0, 1, (1.0 - fr) * fc),
                           (1, 0, fr * (1.0 - fc)), (1, 1, fr * fc)):
        r = r0 + dr
        c = c0 + dc
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        index = tf.clip_by_value(r, 0, height - 1) * width + tf.clip_by_value(c, 0, width - 1)
        values = tf.gather(flat, tf.reshape(index, [batch, height * width]), axis=1, batch_dims=1)
        weight = tf.reshape(tf.where(inside, weight, 0.0), [batch, height * width, 1])
        out = out + _to_float32(values) * weight
    return tf.reshape(out, [batch, height, width, channels])


def warp_shift_scale_rotate(images: tf.Tensor, params: tf.Tensor) -> tf.Tensor:
    """Shift-scale-rotate each sample by its ``params`` row ``[shift_rows, shift_cols, scale,
    angle_degrees]`` (shifts in pixels), as ``cv2.getRotationMatrix2D(centre, angle, scale)`` plus
    the shift (albumentations ``ShiftScaleRotate``): about the centre ``((H-1)/2, (W-1)/2)``,
    positive angles counter-clockwise as displayed (rows down), so +90 on a square image is
    ``np.rot90``. Output pixel (r, c) samples the input at the inverse map of (r, c), bilinear,
    0 outside. ``(0, 0, 1, 0)`` is the identity.
    """
    return _warp_shift_scale_rotate(_materialize(tf.convert_to_tensor(images)), params)


def _warp_shift_scale_rotate(images: tf.Tensor, params: tf.Tensor) -> tf.Tensor:
    _, height, width, _ = images.shape
    params = tf.cast(params, tf.float32)
    shift_r, shift_c, scale, angle = (params[:, k, None, None] for k in range(4))
    theta = angle * (math.pi / 180.0)
    cos, sin = tf.cos(theta), tf.sin(theta)
    centre_r, centre_c = (height - 1) / 2.0, (width - 1) / 2.0
    r = tf.range(height, dtype=tf.float32)[None, :, None]
    c = tf.range(width, dtype=tf.float32)[None, None, :]
    # forward (cv2): c' = s (cos dc + sin dr) + cc + tc, r' = s (-sin dc + cos dr) + cr + tr
    u = (c - centre_c - shift_c) / scale
    v = (r - centre_r - shift_r) / scale
    cols = centre_c + cos * u - sin * v
    rows = centre_r + sin * u + cos * v
    return tf.cast(_bilinear_zero_fill(images, rows, cols), images.dtype)


def _draw_ssr(seed, p, batch, height: int, width: int, shift: float, scale: float, rotate: float):
    u = rng.uniform([5, batch], seed)
    applied = u[0] < tf.cast(p, tf.float32)
    params = tf.stack([(2.0 * u[1] - 1.0) * (shift * height), (2.0 * u[2] - 1.0) * (shift * width),
                       1.0 + (2.0 * u[3] - 1.0) * scale, (2.0 * u[4] - 1.0) * rotate], axis=1)
    identity = tf.constant([[0.0, 0.0, 1.0, 0.0]])
    return applied, tf.where(applied[:, None], params, identity)


def shift_scale_rotate(images: tf.Tensor, seed, p, shift: float = 0.0625, scale: float = 0.1,
                       rotate: float = 45.0):
    """Per sample with probability ``p``: shift by U(-shift, shift) of each side (rows and columns
    drawn apart), scale by U(1 - scale, 1 + scale), rotate by U(-rotate, rotate) degrees
    (``warp_shift_scale_rotate``). Returns ``(images, params (B, 4))`` ``[shift_rows, shift_cols,
    scale, angle]`` in pixels and degrees, ``(0, 0, 1, 0)`` where not applied.
    """
    images = _materialize(tf.convert_to_tensor(images))
    _, height, width, _ = images.shape
    applied, params = _draw_ssr(seed, p, _batch_size(images), height, width, shift, scale, rotate)
    out = tf.where(_per_sample(applied, 4), _warp_shift_scale_rotate(images, params), images)
    return out, params


def line_kernels(length: tf.Tensor, angle: tf.Tensor, size: int) -> tf.Tensor:
    """``(B, size, size)`` float32 motion-blur kernels: a centred line of ``length`` pixels (odd,
    <= ``size``) at ``angle`` degrees (counter-clockwise, rows down), each pixel ``1 / length``.

    The line steps one pixel at a time along its major axis (offsets k = -h..h, h = (length-1)/2)
    and rounds (half to even) along the other, so it has exactly ``length`` pixels and is point
    symmetric (correlation equals convolution). Length 1 is the identity kernel.
    """
    half = size // 2
    length = tf.cast(length, tf.float32)[:, None]
    theta = tf.cast(angle, tf.float32)[:, None] * (math.pi / 180.0)
    cos, sin = tf.cos(theta), tf.sin(theta)
    major_cols = tf.abs(cos) >= tf.abs(sin)
    # a point of the line: (dr, dc) = t (-sin, cos); step k along the major axis
    ratio = tf.where(major_cols, -sin / tf.where(major_cols, cos, 1.0),
                     -cos / tf.where(major_cols, 1.0, sin))
    k = tf.range(-half, half + 1, dtype=tf.float32)[None, :]                  # (1, size)
    other = tf.round(k * ratio)
    dr = tf.cast(tf.where(major_cols, other, k), tf.int32) + half             # (B, size)
    dc = tf.cast(tf.where(major_cols, k, other), tf.int32) + half
    on = tf.abs(k) <= (length - 1.0) / 2.0
    index = tf.range(size, dtype=tf.int32)
    hit = ((dr[:, :, None, None] == index[None, None, :, None])
           & (dc[:, :, None, None] == index[None, None, None, :]) & on[:, :, None, None])
    return tf.reduce_sum(tf.cast(hit, tf.float32), axis=1) / length[:, :, None]


def blur_with_kernels(images: tf.Tensor, kernels: tf.Tensor) -> tf.Tensor:
    """Correlate each sample with its own odd ``(K, K)`` kernel (``kernels`` ``(B, K, K)``), every
    channel alike, reflect-101 borders (cv2.filter2D's default).

    A sum of the K * K shifted copies of the padded batch, each times its per-sample tap: XLA
    fuses it into one loop, about 20x faster on a CPU than a depthwise convolution with the batch
    folded into the channels (12 vs 290 ms CPU for 8 x 819 x 256 at K = 7); compile time grows
    with K * K (about 3 s at K = 7, 8 s at K = 15).
    """
    return _blur_with_kernels(_materialize(tf.convert_to_tensor(images)), kernels)


def _blur_with_kernels(images: tf.Tensor, kernels: tf.Tensor) -> tf.Tensor:
    _, height, width, _ = images.shape
    size = kernels.shape[1]
    half = size // 2
    if size % 2 == 0 or kernels.shape[2] != size:
        raise ValueError(f"blur_with_kernels: kernels must be (B, K, K) with K odd, got {kernels.shape}")
    if half >= height or half >= width:
        raise ValueError(f"blur_with_kernels: a {size}x{size} kernel needs images larger than "
                         f"{half} pixels on each side, got {height}x{width}")
    x = tf.pad(_to_float32(images), [[0, 0], [half, half], [half, half], [0, 0]], mode="REFLECT")
    taps = tf.cast(kernels, tf.float32)[:, :, :, None, None, None]      # (B, K, K, 1, 1, 1)
    out = 0.0
    for i in range(size):
        for j in range(size):
            out = out + taps[:, i, j] * x[:, i:i + height, j:j + width]
    return tf.cast(out, images.dtype)


def motion_blur(images: tf.Tensor, seed, p, max_length: int = 7):
    """Per sample with probability ``p``: blur along a centred line of random odd length in
    ``[3, max_length]`` and random angle in [0, 180) degrees (``line_kernels``,
    ``blur_with_kernels``). Returns ``(images, params (B, 2))`` ``[length, angle]``, length 0
    where not applied.
    """
    max_length = int(max_length)
    if max_length < 3 or max_length % 2 == 0:
        raise ValueError(f"motion_blur: max_length must be an odd int >= 3, got {max_length}")
    images = _materialize(tf.convert_to_tensor(images))
    u = rng.uniform([3, _batch_size(images)], seed)
    applied = u[0] < tf.cast(p, tf.float32)
    length = tf.cast(2 * rng.to_int(u[1], 1, max_length // 2) + 1, tf.float32)
    angle = 180.0 * u[2]
    kernels = line_kernels(tf.where(applied, length, 1.0), angle, max_length)
    out = tf.where(_per_sample(applied, 4), _blur_with_kernels(images, kernels), images)
    return out, tf.stack([tf.where(applied, length, 0.0), angle], axis=1)


def sharpen_with(images: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
    """``(1 - a) * x + a * conv(x, [[-1, -1, -1], [-1, 9, -1], [-1, -1, -1]])`` with a per-sample
    ``alpha`` ``(B,)`` (albumentations ``Sharpen``, lightness 1), i.e. ``x + a * (9 x - box3(x))``,
    reflect-101 borders. alpha 0 is the identity.
    """
    return _sharpen_with(_materialize(tf.convert_to_tensor(images)), alpha)


def _sharpen_with(images: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
    _, height, width, _ = images.shape
    x = _to_float32(images)
    padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
    box = tf.add_n([padded[:, i:i + height, j:j + width] for i in range(3) for j in range(3)])
    alpha = _per_sample(tf.cast(alpha, tf.float32), 4)
    return tf.cast(x + alpha * (9.0 * x - box), images.dtype)


def sharpen(images: tf.Tensor, seed, p, alpha_range: tuple[float, float] = (0.2, 0.5)):
    """Per sample with probability ``p``: ``sharpen_with`` a ~ U(alpha_range).
    Returns ``(images, alpha (B,))``, 0 where not applied."""
    images = _materialize(tf.convert_to_tensor(images))
    u = rng.uniform([2, _batch_size(images)], seed)
    applied = u[0] < tf.cast(p, tf.float32)
    low, high = alpha_range
    alpha = tf.where(applied, low + (high - low) * u[1], 0.0)
    out = tf.where(_per_sample(applied, 4), _sharpen_with(images, alpha), images)
    return out, alpha


# ----------------------------------------------------------------------------- cadence op


def shuffle_off_panels(cadence: tf.Tensor, seed, p):
    """Permute the OFF panels (B, C, D) of each cadence with probability ``p``.

    Label-preserving: a needle is absent from every OFF panel and RFI present in all of them,
    whatever their order. ``cadence`` is ``(B, 6, T, F)``; returns ``(cadence, order (B, 6))``
    where output panel i is input panel ``order[:, i]`` (identity where not applied).
    """
    cadence = tf.convert_to_tensor(cadence)
    if cadence.shape[1] != 6:
        raise ValueError(f"shuffle_off_panels needs the 6 panels of a cadence, got shape "
                         f"{cadence.shape} (ON-only shards have no OFF panels: set off_shuffle_p=0)")
    batch = _batch_size(cadence)
    u = rng.uniform([batch, 4], seed)
    applied = u[:, 0] < tf.cast(p, tf.float32)
    perm = tf.argsort(u[:, 1:], axis=1, stable=True)
    off = tf.gather(tf.constant(OFF_PANELS, tf.int32), perm)                      # (B, 3)
    identity = tf.tile(tf.range(6, dtype=tf.int32)[None, :], [batch, 1])
    shuffled = tf.stack([identity[:, 0], off[:, 0], identity[:, 2], off[:, 1],
                         identity[:, 4], off[:, 2]], axis=1)
    order = tf.where(applied[:, None], shuffled, identity)
    return tf.gather(cadence, order, axis=1, batch_dims=1), order


# ----------------------------------------------------------------------------- the fused chain


def _pixels(fraction: float, size: int) -> int:
    return int(round(fraction * size))


def augment_images(images: tf.Tensor, seed, cfg: AugmentConfig):
    """Apply every image op of ``cfg`` (p > 0); returns ``(images, info)``.

    The result equals applying the ops one after the other in the order vflip, hflip, frequency
    roll, time masks, frequency masks, cutout, shift-scale-rotate, motion blur, sharpen, noise
    (tested). Flips, roll and masks are fused into at most two gathers (rows, columns: flips and
    roll are index maps) and one select (every mask is one keep-mask), the noise is one add, so
    the batch is read and written a few times instead of a dozen (what makes host-side
    augmentation affordable and the compiled step light). The three resampling ops do not fuse
    into index maps and cost one pass each, only when their p > 0.
    """
    images = tf.convert_to_tensor(images)
    _, height, width, _ = images.shape
    batch = _batch_size(images)
    info = {}
    seeds = rng.split(seed, NUM_OP_SEEDS)   # one Philox call for every op's seed

    def op(name):
        return seeds[OP_IDS[name]]

    # Geometry: output pixel (i, j) of sample b comes from input (rows[b, i], cols[b, j]).
    rows = tf.tile(tf.range(height, dtype=tf.int32)[None, :], [batch, 1])
    cols = tf.tile(tf.range(width, dtype=tf.int32)[None, :], [batch, 1])
    keep = None                                          # (B, H, W, 1) bool, None = keep all
    if cfg.vflip_p > 0:
        info["vflip"] = _draw_flip(op("vflip"), cfg.vflip_p, batch)
        rows = tf.where(info["vflip"][:, None], height - 1 - rows, rows)
    if cfg.hflip_p > 0:
        info["hflip"] = _draw_flip(op("hflip"), cfg.hflip_p, batch)
        cols = tf.where(info["hflip"][:, None], width - 1 - cols, cols)
    if cfg.freq_roll_p > 0:
        info["freq_roll"] = _draw_shift(op("freq_roll"), cfg.freq_roll_p, batch,
                                        _pixels(cfg.freq_roll_max, width))
        source = _shift_source(width, info["freq_roll"])
        cols = tf.gather(cols, tf.math.floormod(source, width), axis=1, batch_dims=1)
        if cfg.freq_roll_mode == "shift":
            keep = tf.broadcast_to(((source >= 0) & (source < width))[:, None, :, None],
                                   [batch, height, width, 1])
    if cfg.vflip_p > 0:
        images = tf.gather(images, rows, axis=1, batch_dims=1)
    if cfg.hflip_p > 0 or cfg.freq_roll_p > 0:
        images = tf.gather(images, cols, axis=2, batch_dims=1)

    def restrict(mask):
        return mask if keep is None else keep & mask

    if cfg.time_mask_p > 0:
        starts, ends = _draw_spans(op("time_mask"), cfg.time_mask_p, batch, height,
                                   _pixels(cfg.time_mask_max, height), cfg.time_mask_count)
        info["time_mask"] = tf.stack([starts, ends], axis=-1)
        keep = restrict(_keep_spans(height, starts, ends)[:, :, None, None])
    if cfg.freq_mask_p > 0:
        starts, ends = _draw_spans(op("freq_mask"), cfg.freq_mask_p, batch, width,
                                   _pixels(cfg.freq_mask_max, width), cfg.freq_mask_count)
        info["freq_mask"] = tf.stack([starts, ends], axis=-1)
        keep = restrict(_keep_spans(width, starts, ends)[:, None, :, None])
    if cfg.cutout_p > 0:
        info["cutout"] = _draw_box(op("cutout"), cfg.cutout_p, batch, height, width,
                                   _pixels(cfg.cutout_max, height), _pixels(cfg.cutout_max, width))
        keep = restrict(~_box_hole(info["cutout"], height, width))
    if keep is not None:
        images = tf.where(keep, images, tf.zeros_like(images))
    # Resampling ops (not fusable into the index maps above): each only when switched on.
    if cfg.ssr_p > 0:
        images, info["ssr"] = shift_scale_rotate(images, op("ssr"), cfg.ssr_p, cfg.ssr_shift,
                                                 cfg.ssr_scale, cfg.ssr_rotate)
    if cfg.motion_blur_p > 0:
        images, info["motion_blur"] = motion_blur(images, op("motion_blur"), cfg.motion_blur_p,
                                                  cfg.motion_blur_max)
    if cfg.sharpen_p > 0:
        images, info["sharpen"] = sharpen(images, op("sharpen"), cfg.sharpen_p, cfg.sharpen_alpha)
    if cfg.noise_p > 0:
        noise_seeds = rng.split(op("noise"), 2)
        info["noise"] = _draw_noise_std(noise_seeds[0], cfg.noise_p, batch, cfg.noise_std)
        noise = rng.normal(tf.shape(images), noise_seeds[1])
        images = images + tf.cast(_per_sample(info["noise"], 4) * noise, images.dtype)
    return images, info
