"""The batched, per-sample-random augmentation ops, and their fused chain ``augment_images``.

Every op takes a whole batch and a ``[2]`` seed, decides per sample (probability ``p``) whether to
act, draws its per-sample parameters from stateless RNG (``tfseti.data.rng``), and returns the new
batch *and what it did* (which samples, which spans), so tests and analyses can check it. All ops
are static-shaped tensor arithmetic (flips by ``tf.where``, rolls by ``tf.gather``, masks by
comparisons with ``tf.range``) and compile under ``tf.function(jit_compile=True)``.

Image ops act on ``(B, H, W, C)``: H is time (the stacked panels), W frequency. The cadence op
``shuffle_off_panels`` acts on raw cadences ``(B, 6 or 3, T, F)`` before the view.

``augment_images`` runs the image ops of an ``AugmentConfig`` as one fused chain (two gathers, one
select, one add) that equals the single ops applied one after the other (tested against that
plain chain), which keeps the compiled step cheap. ``tfseti.data.augmenter`` composes these with
the view, needle injection and mixup.
"""

from __future__ import annotations

import tensorflow as tf

from tfseti.data import rng
from tfseti.data.config import FREQ_ROLL_MODES, AugmentConfig
from tfseti.io.kaggle import OFF_PANELS


# Fixed sub-stream number of each op: adding an op never changes the draws of the others.
OP_IDS = {"off_shuffle": 1, "vflip": 2, "hflip": 3, "freq_roll": 4, "time_mask": 5,
          "freq_mask": 6, "cutout": 7, "noise": 8, "mix": 9, "inject": 10}
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
    roll, time masks, frequency masks, cutout, noise (tested), but the chain is fused into at
    most two gathers (rows, columns: flips and roll are index maps), one select (every mask is
    one keep-mask) and one add, so the batch is read and written a few times instead of a dozen
    (what makes host-side augmentation affordable and the compiled step light).
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
    if cfg.noise_p > 0:
        noise_seeds = rng.split(op("noise"), 2)
        info["noise"] = _draw_noise_std(noise_seeds[0], cfg.noise_p, batch, cfg.noise_std)
        noise = rng.normal(tf.shape(images), noise_seeds[1])
        images = images + tf.cast(_per_sample(info["noise"], 4) * noise, images.dtype)
    return images, info
