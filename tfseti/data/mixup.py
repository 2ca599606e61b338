"""Mixup with logical-OR targets, CutMix along time, and the schedule that switches them off.

A mixed image holds the needle of either parent, so the target is the probability that at least
one parent is positive: ``y = y1 + y2 - y1 * y2`` (logical OR, also right for soft labels), not the
λ-weighted mean of classic mixup (2nd and 3rd place). ``targets="max"`` gives ``max(y1, y2)``
(1st place; equal to OR for hard labels).

* ``mixup_or``: ``x = λ x1 + (1 - λ) x2`` with λ ~ Beta(α, α) or U(a, b) per sample, optionally
  re-standardised per sample afterwards (a mix of two unit-variance images has a smaller variance).
* ``cutmix_time``: rows ``[start, start + w)`` of the image (time, H) come from the partner, with
  w = round((1 - λ) H); targets are OR-combined with area weights ``a1 = 1 - w / H``, ``a2 = w / H``:
  ``y = a1 y1 + a2 y2 - a1 a2 y1 y2`` (each parent counts for the share of the image it keeps).
* The partner of sample i is sample ``(i + s) mod B`` with one random s in [1, B - 1] per batch
  (never itself for B > 1).
* ``mix``: a fraction ``mixup_p`` of the samples is mixed up, a disjoint fraction ``cutmix_p`` is
  cut-mixed (both from the original batch), the rest is untouched; with ``off_after < 1`` both stop
  at step ``off_after * total_steps`` (e.g. 0.8: no mixing for the last 20 % of training).

All are batched, stateless-seeded and XLA-compilable, and return what they did.
"""

from __future__ import annotations

import tensorflow as tf

from tfseti.data import rng
from tfseti.data.config import LAMBDA_DISTRIBUTIONS, MixupConfig

RENORMALIZE_EPSILON = 1e-6


def or_targets(y1: tf.Tensor, y2: tf.Tensor, rule: str = "or") -> tf.Tensor:
    """Logical OR of (soft) labels ``y1 + y2 - y1 y2``, or their max."""
    if rule == "max":
        return tf.maximum(y1, y2)
    return y1 + y2 - y1 * y2


def sample_lambda(shape, seed, lam: str = "beta", alpha: float = 1.0,
                  lam_range: tuple[float, float] = (0.0, 1.0)) -> tf.Tensor:
    """λ per sample from Beta(alpha, alpha) (two stateless gammas) or U(lam_range)."""
    if lam == "beta":
        return rng.beta(shape, seed, float(alpha))
    if lam == "uniform":
        low, high = lam_range
        return low + (high - low) * rng.uniform(shape, seed)
    raise ValueError(f"sample_lambda: lam must be one of {LAMBDA_DISTRIBUTIONS}, got {lam!r}")


def partner_indices(batch, u) -> tf.Tensor:
    """``(i + s) mod B`` with s in [1, B - 1] from the uniform ``u``: a partner other than itself."""
    shift = rng.to_int(u, 1, tf.maximum(batch - 1, 1))
    return tf.math.floormod(tf.range(batch, dtype=tf.int32) + shift, batch)


def _per_sample(value: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    return tf.reshape(value, [-1] + [1] * (like.shape.rank - 1))


def _batch_matmul(matrix: tf.Tensor, images: tf.Tensor) -> tf.Tensor:
    """``out[i] = sum_j matrix[i, j] * images[j]``, as one (B, B) x (B, H*W*C) matmul.

    Mixing partners through a matmul rather than ``tf.gather(images, partner)`` matters under
    XLA: a gather lets XLA fuse the whole augmentation chain that produced ``images`` into the
    gather's loop (10x slower on CPU), a dot makes it materialise ``images`` once. The matmul runs
    at the accelerator's matmul precision (TF32 on recent GPUs, bfloat16 passes on TPU), the
    precision the model's first layer computes in anyway.
    """
    flat = tf.reshape(images, [tf.shape(images)[0], -1])
    return tf.reshape(tf.matmul(tf.cast(matrix, images.dtype), flat), tf.shape(images))


def _applied(applied, u, p):
    if applied is not None:
        return tf.convert_to_tensor(applied, tf.bool)
    return u < tf.cast(p, tf.float32)


def standardize(images: tf.Tensor) -> tf.Tensor:
    """Mean 0 / std 1 per sample over (H, W, C)."""
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    centred = images - mean
    std = tf.sqrt(tf.reduce_mean(tf.square(centred), axis=[1, 2, 3], keepdims=True))
    return centred / (std + RENORMALIZE_EPSILON)


def mixup_or(images: tf.Tensor, targets: tf.Tensor, seed, p: float = 1.0, *, applied=None,
             lam: str = "beta", alpha: float = 1.0, lam_range=(0.0, 1.0), rule: str = "or",
             renormalize: bool = False):
    """Mixup of a fraction ``p`` of the batch (or the samples where ``applied``) with OR targets.

    Returns ``(images, targets, info)``, info = ``{applied (B,), lam (B,) (1 where not applied),
    partner (B,)}``; unapplied samples come back unchanged.
    """
    images = tf.convert_to_tensor(images)
    batch = tf.shape(images)[0]
    seeds = rng.split(seed, 2)
    u = rng.uniform([2, batch], seeds[0])
    applied = _applied(applied, u[0], p)
    partner = partner_indices(batch, u[1, 0])
    weight = sample_lambda([batch], seeds[1], lam, alpha, lam_range)
    weight = tf.where(applied, weight, 1.0)
    # x_i = w_i x_i + (1 - w_i) x_partner(i), as one mixing matrix
    matrix = tf.linalg.diag(weight) + tf.one_hot(partner, batch) * (1.0 - weight)[:, None]
    mixed = _batch_matmul(matrix, images)
    if renormalize:
        mixed = tf.where(_per_sample(applied, images), standardize(mixed), images)
    targets = tf.cast(targets, tf.float32)
    mixed_targets = tf.where(_per_sample(applied, targets),
                             or_targets(targets, tf.gather(targets, partner), rule), targets)
    return mixed, mixed_targets, {"applied": applied, "lam": weight, "partner": partner}


def cutmix_time(images: tf.Tensor, targets: tf.Tensor, seed, p: float = 1.0, *, applied=None,
                lam: str = "beta", alpha: float = 1.0, lam_range=(0.0, 1.0), rule: str = "or"):
    """CutMix along time: a band of rows comes from the partner; area-weighted OR targets.

    Returns ``(images, targets, info)``, info = ``{applied, partner, start, end (B,) rows,
    area (B,) = (end - start) / H}`` (empty band and area 0 where not applied).
    """
    images = tf.convert_to_tensor(images)
    batch, height = tf.shape(images)[0], images.shape[1]
    seeds = rng.split(seed, 2)
    u = rng.uniform([3, batch], seeds[0])
    applied = _applied(applied, u[0], p)
    partner = partner_indices(batch, u[1, 0])
    keep = sample_lambda([batch], seeds[1], lam, alpha, lam_range)
    rows = tf.cast(tf.round((1.0 - keep) * height), tf.int32)
    rows = tf.where(applied, tf.clip_by_value(rows, 0, height), 0)
    start = rng.to_int(u[2], 0, height - rows)
    end = start + rows
    index = tf.range(height, dtype=tf.int32)[None, :]
    band = (index >= start[:, None]) & (index < end[:, None])                     # (B, H)
    partner_images = _batch_matmul(tf.one_hot(partner, batch), images)
    mixed = tf.where(band[:, :, None, None], partner_images, images)
    area = tf.cast(rows, tf.float32) / float(height)
    targets = tf.cast(targets, tf.float32)
    a2 = _per_sample(area, targets)
    mixed_targets = or_targets((1.0 - a2) * targets, a2 * tf.gather(targets, partner), rule)
    mixed_targets = tf.where(_per_sample(applied, targets), mixed_targets, targets)
    return mixed, mixed_targets, {"applied": applied, "partner": partner, "start": start,
                                  "end": end, "area": area}


def mixing_active(step, total_steps: int | None, off_after: float) -> tf.Tensor:
    """bool: mixing is on before step ``floor(off_after * total_steps)``, off from there on."""
    if off_after >= 1.0 or not total_steps:
        return tf.constant(True)
    return tf.cast(step, tf.int64) < int(off_after * total_steps)


def mix(images: tf.Tensor, targets: tf.Tensor, seed, cfg: MixupConfig, step=0,
        total_steps: int | None = None):
    """Mixup-OR on a fraction ``mixup_p`` and time-CutMix on a disjoint ``cutmix_p`` of the batch.

    Returns ``(images, targets, info)`` with ``info = {mixup: ..., cutmix: ..., active}``.
    """
    images = tf.convert_to_tensor(images)
    batch = tf.shape(images)[0]
    active = mixing_active(step, total_steps, cfg.off_after)
    seeds = rng.split(seed, 3)
    draw = rng.uniform([batch], seeds[0])
    use_mixup = active & (draw < cfg.mixup_p)
    use_cutmix = active & (draw >= cfg.mixup_p) & (draw < cfg.mixup_p + cfg.cutmix_p)
    options = dict(lam=cfg.lam, alpha=cfg.alpha, lam_range=cfg.lam_range, rule=cfg.targets)
    info = {"active": active}
    out_images, out_targets = images, tf.cast(targets, tf.float32)
    if cfg.mixup_p > 0:
        out_images, out_targets, info["mixup"] = mixup_or(
            images, targets, seeds[1], applied=use_mixup,
            renormalize=cfg.renormalize, **options)
    if cfg.cutmix_p > 0:
        cut_images, cut_targets, info["cutmix"] = cutmix_time(
            images, targets, seeds[2], applied=use_cutmix, **options)
        out_images = tf.where(_per_sample(use_cutmix, images), cut_images, out_images)
        out_targets = tf.where(_per_sample(use_cutmix, out_targets), cut_targets, out_targets)
    return out_images, out_targets, info
