"""Batched, per-sample-random augmentations, and the ``Augmenter`` that chains view, augment and mix.

Every op takes a whole batch and a ``[2]`` seed, decides per sample (probability ``p``) whether to
act, draws its per-sample parameters from stateless RNG (``tfseti.data.rng``), and returns the new
batch *and what it did* (which samples, which spans), so tests and analyses can check it. All ops
are static-shaped tensor arithmetic (flips by ``tf.where``, rolls by ``tf.gather``, masks by
comparisons with ``tf.range``) and compile under ``tf.function(jit_compile=True)``.

Image ops act on ``(B, H, W, C)``: H is time (the stacked panels), W frequency. The cadence ops
act on raw cadences ``(B, 6 or 3, T, F)`` before the view: first needle injection
(``tfseti.data.inject``, ``AugmentConfig.inject``; it also sets the injected targets to 1), then
``shuffle_off_panels``.

Where augmentation runs is the config switch ``AugmentConfig.augment_on``:

* ``"device"``: the host pipeline yields raw cadences; the trainer calls ``augmenter(batch, step)``
  (``augment_and_mix``) inside its compiled ``train_step``, so the work runs on the TPU/GPU;
* ``"host"``: ``augment_on_host(dataset, augmenter)`` maps the same function (XLA-compiled on the
  host CPU) over the tf.data batches (the batch index is the step), and the dataset yields
  finished images.

The same seed and step give the same batch in both places (integer-based RNG, see ``rng``).
``augment_images`` runs the image ops as one fused chain (two gathers, one select, one add) that
equals the single ops applied one after the other; mixup mixes partners through a matmul. Both
keep the compiled step cheap: see their docstrings.

Under a multi-replica strategy each replica folds its replica id into the seed, so replicas draw
different augmentations (host mode has no replica context: the batch index alone seeds it).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import tensorflow as tf

from tfseti.data import rng
from tfseti.data.inject import InjectConfig, inject_needles
from tfseti.data.mixup import MixupConfig, mix
from tfseti.data.views import OFF_PANELS, ViewConfig, make_view, view_shape

AUGMENT_ON = ("device", "host")
FREQ_ROLL_MODES = ("roll", "shift")

# Fixed sub-stream number of each op: adding an op never changes the draws of the others.
OP_IDS = {"off_shuffle": 1, "vflip": 2, "hflip": 3, "freq_roll": 4, "time_mask": 5,
          "freq_mask": 6, "cutout": 7, "noise": 8, "mix": 9, "inject": 10}
NUM_OP_SEEDS = 16   # fixed, room for more ops without changing existing streams


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation options; every ``*_p`` is the per-sample probability of that op (0 = off).

    Sizes are fractions of the image side, so they mean the same at any resize.

    seed: combined with the step counter into every op's stateless seed.
    augment_on: ``device`` (inside the compiled train step) or ``host`` (tf.data map).
    off_shuffle_p: permute the three OFF panels B, C, D of a cadence (before the view; needs 6 panels).
    vflip_p / hflip_p: flip time (H) / frequency (W).
    freq_roll_p, freq_roll_max, freq_roll_mode: shift along frequency by up to
        ``freq_roll_max * W`` channels either way, ``roll`` (wrap around) or ``shift`` (zero fill).
    time_mask_p, time_mask_max, time_mask_count: SpecAugment time masks, each up to
        ``time_mask_max * H`` rows, ``time_mask_count`` per sample.
    freq_mask_p, freq_mask_max, freq_mask_count: the same along frequency (W).
    cutout_p, cutout_max: one zeroed rectangle up to ``cutout_max`` of each side.
    noise_p, noise_std: add N(0, s^2) with s ~ U(noise_std) per sample.
    inject: needle injection (``tfseti.data.inject.InjectConfig``, the ``[augment.inject]``
        table; ``inject.p`` = 0 is off): adds setigen needles to the ON panels of raw cadences
        before the view and sets those targets to 1.
    """

    seed: int = 0
    augment_on: str = "device"
    off_shuffle_p: float = 0.0
    vflip_p: float = 0.0
    hflip_p: float = 0.0
    freq_roll_p: float = 0.0
    freq_roll_max: float = 0.25
    freq_roll_mode: str = "roll"
    time_mask_p: float = 0.0
    time_mask_max: float = 0.1
    time_mask_count: int = 1
    freq_mask_p: float = 0.0
    freq_mask_max: float = 0.1
    freq_mask_count: int = 1
    cutout_p: float = 0.0
    cutout_max: float = 0.25
    noise_p: float = 0.0
    noise_std: tuple[float, float] = (0.0, 0.1)
    inject: InjectConfig = field(default_factory=InjectConfig)

    def __post_init__(self):
        if self.augment_on not in AUGMENT_ON:
            raise ValueError(f"AugmentConfig.augment_on: expected one of {AUGMENT_ON}, "
                             f"got {self.augment_on!r}")
        if self.freq_roll_mode not in FREQ_ROLL_MODES:
            raise ValueError(f"AugmentConfig.freq_roll_mode: expected one of {FREQ_ROLL_MODES}, "
                             f"got {self.freq_roll_mode!r}")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_p") or f.name in ("freq_roll_max", "time_mask_max",
                                                   "freq_mask_max", "cutout_max"):
                if not 0.0 <= float(value) <= 1.0:
                    raise ValueError(f"AugmentConfig.{f.name}: expected a value in [0, 1], got {value!r}")
            if f.name.endswith("_count") and (not isinstance(value, int) or value < 1):
                raise ValueError(f"AugmentConfig.{f.name}: expected an int >= 1, got {value!r}")
        low, high = (float(v) for v in self.noise_std)
        if not 0.0 <= low <= high:
            raise ValueError(f"AugmentConfig.noise_std: expected (min, max) with 0 <= min <= max, "
                             f"got {self.noise_std!r}")
        object.__setattr__(self, "noise_std", (low, high))
        if not isinstance(self.inject, InjectConfig):
            raise ValueError(f"AugmentConfig.inject: expected an InjectConfig, got {self.inject!r}")


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


# ----------------------------------------------------------------------------- composition


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


def augment_images_sequential(images: tf.Tensor, seed, cfg: AugmentConfig):
    """``augment_images`` as the plain chain of the single ops (the reference it must equal)."""
    _, height, width, _ = images.shape
    info = {}
    seeds = rng.split(seed, NUM_OP_SEEDS)

    def op(name):
        return seeds[OP_IDS[name]]

    if cfg.vflip_p > 0:
        images, info["vflip"] = vertical_flip(images, op("vflip"), cfg.vflip_p)
    if cfg.hflip_p > 0:
        images, info["hflip"] = horizontal_flip(images, op("hflip"), cfg.hflip_p)
    if cfg.freq_roll_p > 0:
        images, info["freq_roll"] = frequency_roll(
            images, op("freq_roll"), cfg.freq_roll_p, _pixels(cfg.freq_roll_max, width),
            cfg.freq_roll_mode)
    if cfg.time_mask_p > 0:
        images, info["time_mask"] = time_mask(images, op("time_mask"), cfg.time_mask_p,
                                              _pixels(cfg.time_mask_max, height), cfg.time_mask_count)
    if cfg.freq_mask_p > 0:
        images, info["freq_mask"] = frequency_mask(images, op("freq_mask"), cfg.freq_mask_p,
                                                   _pixels(cfg.freq_mask_max, width),
                                                   cfg.freq_mask_count)
    if cfg.cutout_p > 0:
        images, info["cutout"] = cutout(images, op("cutout"), cfg.cutout_p,
                                        _pixels(cfg.cutout_max, height), _pixels(cfg.cutout_max, width))
    if cfg.noise_p > 0:
        images, info["noise"] = gaussian_noise(images, op("noise"), cfg.noise_p, cfg.noise_std)
    return images, info


def _replica_fold(seed: tf.Tensor) -> tf.Tensor:
    # Under a multi-replica strategy every replica sees the same step: fold in the replica id so
    # that replicas draw different augmentations for their different samples.
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return seed
    return rng.op_seed(seed, 1000 + tf.cast(context.replica_id_in_sync_group, tf.int64))


class Augmenter:
    """View + augmentations + mixup/cutmix as one batched function, composed from config.

    ``augmenter(batch, step)`` takes a pipeline batch ``{"cadence": (B, P, T, F), "target": (B,),
    ...}`` and returns ``{"image": (B, H, W, C) float32, "target": (B,) float32, ...}``; other keys
    (``id``, ``index``, ``mask``) pass through. Inside an XLA-compiled step the batch must hold no
    string tensors: drop ``id`` before the step (``DataConfig(with_ids=False)`` or ``pop("id")``). ``training=False`` gives the view only (evaluation,
    prediction). ``step`` is the global step (e.g. ``optimizer.iterations``): it seeds the draws
    and drives the mixup schedule, so pass ``total_steps`` when ``MixupConfig.off_after < 1``.
    """

    def __init__(self, view: ViewConfig = ViewConfig(), augment: AugmentConfig = AugmentConfig(),
                 mixup: MixupConfig = MixupConfig(), total_steps: int | None = None):
        if mixup.off_after < 1.0 and mixup.active and not total_steps:
            raise ValueError("Augmenter: MixupConfig.off_after < 1 needs total_steps (the number "
                             "of training steps) to know when to switch mixing off")
        self.view = view
        self.augment = augment
        self.mixup = mixup
        self.total_steps = total_steps

    @property
    def on_host(self) -> bool:
        """True when augmentation belongs in the tf.data pipeline rather than the train step."""
        return self.augment.augment_on == "host"

    def image_shape(self, panels: int = 6) -> tuple[int, int, int]:
        """Static ``(H, W, C)`` of the images this augmenter produces."""
        return view_shape(self.view, panels)

    def __call__(self, batch: dict, step=0, training: bool = True, with_info: bool = False):
        cadence = batch["cadence"]
        out = {k: v for k, v in batch.items() if k != "cadence"}
        out["target"] = tf.cast(batch["target"], tf.float32)
        if not training:
            out["image"] = make_view(cadence, self.view)
            return (out, {}) if with_info else out
        seed = _replica_fold(rng.step_seed(self.augment.seed, step))
        seeds = rng.split(seed, NUM_OP_SEEDS)
        info = {}
        if self.augment.inject.active:   # first: it makes the cadence the data would have been
            cadence, out["target"], info["inject"] = inject_needles(
                cadence, out["target"], seeds[OP_IDS["inject"]], self.augment.inject)
        if self.augment.off_shuffle_p > 0:
            cadence, info["off_shuffle"] = shuffle_off_panels(
                cadence, seeds[OP_IDS["off_shuffle"]], self.augment.off_shuffle_p)
        images = make_view(cadence, self.view)
        images, image_info = augment_images(images, seeds[0], self.augment)
        info.update(image_info)
        if self.mixup.active:
            images, out["target"], info["mix"] = mix(
                images, out["target"], seeds[OP_IDS["mix"]], self.mixup,
                step=step, total_steps=self.total_steps)
        out["image"] = images
        return (out, info) if with_info else out


def augment_and_mix(batch: dict, step, augmenter: Augmenter) -> dict:
    """The trainer's one call inside ``train_step`` (device mode): ``augmenter(batch, step)``."""
    return augmenter(batch, step)


def augment_on_host(dataset: tf.data.Dataset, augmenter: Augmenter, initial_step: int = 0,
                    jit_compile: bool = True) -> tf.data.Dataset:
    """Host mode: map ``augmenter`` over the batches of ``dataset``; batch k gets step
    ``initial_step + k`` (pass the resumed step so a resumed run draws the same augmentations).

    With ``jit_compile`` the numeric part runs XLA-compiled on the host CPU (about twice as fast
    as TF's graph kernels here); string tensors (``id``) bypass it.
    """
    def numeric(batch, step):
        return augmenter(batch, step)

    compiled = tf.function(numeric, jit_compile=True, autograph=False) if jit_compile else numeric

    def apply(step, batch):
        strings = {k: v for k, v in batch.items() if v.dtype == tf.string}
        out = compiled({k: v for k, v in batch.items() if k not in strings}, step)
        return {**out, **strings}

    return (dataset.enumerate(start=initial_step)
            .map(apply, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True))
