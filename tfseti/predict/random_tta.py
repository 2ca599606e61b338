"""Random test-time augmentation (``--tta random:N``): the mean over N passes, each drawing the
model's own training augmentations per sample, made on the raw cadences.

The SavedModel takes raw cadences (the view is inside it), so an augmentation can only be used at
test time when some transform of the raw cadences gives *exactly* the image the training op made
of the view, and when the op preserves the label. Four training ops qualify (``RANDOM_OPS``),
applied in the training order:

* ``off_shuffle`` (``off_shuffle_p``): permute the OFF panels B, C, D. Training does this on the
  raw cadences before the view, so the raw op is the training op itself (6-panel models only).
* ``vflip`` (``vflip_p``): reverse time plus the panel permutation of
  ``tfseti.predict.tta.time_flip_panels`` (the raw flip equal to the training flip of the view
  image; the view ``all`` with ``background = "off_median"`` and no column normalisation has none,
  and the op is left out for such a model).
* ``hflip`` (``hflip_p``): reverse frequency.
* ``freq_roll`` (``freq_roll_p``, ``freq_roll_max``, ``freq_roll_mode``): training shifts the view
  image by ``s`` columns, ``|s| <= round(freq_roll_max * W)`` (W the image width), wrapping
  around (``roll``) or zero-filling (``shift``). The raw equivalent shifts the F frequency
  channels by ``s * F / W``: the background removal and the column normalisation act per channel
  (a roll permutes channels; a zero-filled channel stays zero: its OFF median is 0 and
  ``0 / (0 + eps)`` is 0), and the frequency resize maps the raw shift onto the image shift only
  when ``W`` divides ``F`` and the resize kernel acts within blocks of ``F / W`` channels. That is
  checked on the view's own resize matrix for every shift the training draws; where it fails
  (e.g. a bicubic kernel reaching across blocks, or ``F / W`` not whole) the op is left out, and
  so it is for a view with ``extra_channels`` (the NMF residual starts its fit from a fixed
  per-channel pattern and shifts by the cadence's minimum, so it does not move with the channels).

For the ``dedoppler`` view only ``off_shuffle`` is exact: the flips and the roll of the raw
cadences are label-preserving but are not the training ops on the drift-rate map (a raw frequency
flip also reverses the drift axis; a raw roll moves drift paths across the band edge).

Left out on purpose (not label-preserving in expectation, or no exact raw-cadence equivalent):

* time/frequency masks, cutout: they can erase the needle from an ON panel, so a positive looks
  negative; averaged over passes they pull every positive down (and a time mask on the image
  falls after the column normalisation over time, which a raw mask would change);
* gaussian noise: lowers the SNR of weak needles (biased towards negative) and is added to the
  normalised, resized image, which no raw noise reproduces;
* mixup / cutmix: mix two cadences and their labels;
* needle injection: sets the label to 1;
* shift-scale-rotate, motion blur, sharpen: interpolate the resized view image (mixing time and
  frequency after the resize): no raw-cadence transform gives that image.

Each pass draws per sample, with the model's probabilities from the ``augment`` section of the
trainer's ``config.json`` (``ServingModel.augment``), from numpy Generators seeded by
``(seed, pass, op)`` (``tfseti.data.augment_ops.OP_IDS``). Every op's stream is consumed in sample
order, so the draws do not depend on the batch size, and the same seed gives the same prediction.
A model with none of these ops enabled (random TTA would feed one input N times), or without
``config.json``, is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from tfseti.data.augment_ops import OP_IDS
from tfseti.data.config import FREQ_ROLL_MODES, AugmentConfig
from tfseti.io.kaggle import OFF_PANELS
from tfseti.predict.models import ServingModel, fit_panels
from tfseti.predict.tta import RANDOM_TTA, time_flip_panels

RANDOM_OPS = ("off_shuffle", "vflip", "hflip", "freq_roll")


@dataclass(frozen=True)
class RandomTtaPlan:
    """What random TTA does for one model.

    probabilities: ``{op: p}`` of the ops used (training order, ``p > 0``); excluded:
    ``{op: why}`` for ops the model trained with that have no exact raw equivalent;
    time_flip: the panel order of a time flip; roll_max: the largest image shift in columns;
    roll_step: raw channels per image column (``F / W``); roll_mode: ``roll`` or ``shift``.
    """

    path: str
    probabilities: dict
    excluded: dict
    time_flip: tuple[int, ...] | None = None
    roll_max: int = 0
    roll_step: int = 1
    roll_mode: str = "roll"

    def describe(self) -> str:
        used = []
        for op, p in self.probabilities.items():
            text = f"{op} p={p:g}"
            if op == "freq_roll":
                text += (f" (up to ±{self.roll_max} image columns = ±{self.roll_max * self.roll_step} "
                         f"channels, {self.roll_mode})")
            used.append(text)
        line = f"{self.path}: random TTA with {', '.join(used)}"
        if self.excluded:
            line += "; left out: " + "; ".join(f"{op} ({why})" for op, why in self.excluded.items())
        return line


def _augment_settings(model: ServingModel) -> dict:
    """The training probabilities and roll settings of ``model`` (AugmentConfig defaults for
    keys its config.json does not hold), checked."""
    if model.augment is None:
        raise ValueError(f"{model.path}: no config.json next to the SavedModel, so its training "
                         f"augmentation is unknown; random TTA draws the model's own training "
                         f"ops: use --tta none or flips for this model")
    defaults = AugmentConfig()
    settings = {}
    for key in [f"{op}_p" for op in RANDOM_OPS] + ["freq_roll_max", "freq_roll_mode"]:
        value = model.augment.get(key, getattr(defaults, key))
        if key == "freq_roll_mode":
            ok = value in FREQ_ROLL_MODES
            expected = f"one of {FREQ_ROLL_MODES}"
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1
            expected = "a number in [0, 1]"
        if not ok:
            raise ValueError(f"{model.path}: config.json augment.{key}: expected {expected}, "
                             f"got {value!r}")
        settings[key] = value
    return settings


def _shifted(matrix: np.ndarray, shift: int, axis: int, wrap: bool) -> np.ndarray:
    """``matrix`` with index ``i`` of ``axis`` taken from ``i - shift`` (``tf.roll`` convention),
    wrapping around or zero where ``i - shift`` is outside."""
    if wrap:
        return np.roll(matrix, shift, axis=axis)
    out = np.zeros_like(matrix)
    size = matrix.shape[axis]
    dst = [slice(None)] * matrix.ndim
    src = [slice(None)] * matrix.ndim
    if shift >= 0:
        dst[axis], src[axis] = slice(shift, size), slice(0, size - shift)
    else:
        dst[axis], src[axis] = slice(0, size + shift), slice(-shift, size)
    out[tuple(dst)] = matrix[tuple(src)]
    return out


def roll_equivalent(freq: int, view: dict, roll_max_fraction: float, mode: str
                    ) -> tuple[int, int, str | None]:
    """``(roll_max, roll_step, None)``: the training's largest image shift and the raw channels
    per image column, when every shift has an exact raw equivalent; else ``(.., .., why not)``."""
    from tfseti.data.views import resize_matrix

    resize = view.get("resize")
    method = view.get("resize_method", "bilinear")
    if method == "learned":   # the view keeps full resolution; the network resizes
        resize = None
    width = freq if resize is None else int(resize[1])
    roll_max = int(round(roll_max_fraction * width))   # as tfseti.data.augment_ops._pixels
    if width == freq:
        return roll_max, 1, None
    if freq % width:
        return roll_max, 1, (f"the view resizes {freq} channels to {width} columns: no whole number "
                             f"of raw channels per column")
    step = freq // width
    matrix = resize_matrix(freq, width, method).numpy().astype(np.float64)   # (W, F)
    wrap = mode == "roll"
    for shift in range(-roll_max, roll_max + 1):
        raw_then_resize = _shifted(matrix, -shift * step, axis=1, wrap=wrap)  # M @ S_raw
        resize_then_image = _shifted(matrix, shift, axis=0, wrap=wrap)        # S_image @ M
        if not np.allclose(raw_then_resize, resize_then_image, rtol=0, atol=1e-6):
            return roll_max, step, (f"the {method} resize of {freq} channels to {width} columns "
                                    f"does not map a {shift * step}-channel shift onto a "
                                    f"{shift}-column one")
    return roll_max, step, None


def plan_random_tta(model: ServingModel) -> RandomTtaPlan:
    """The ops random TTA uses for ``model``; refuses a model without config.json or without any
    usable op (naming it)."""
    settings = _augment_settings(model)
    view = model.view or {}
    name = view.get("name", "on")
    probabilities, excluded = {}, {}
    time_flip, roll_max, roll_step = None, 0, 1
    for op in RANDOM_OPS:
        p = float(settings[f"{op}_p"])
        if p <= 0:
            continue
        why = None
        if name == "dedoppler" and op != "off_shuffle":
            why = "view dedoppler: the raw op is not the training op on the drift-rate map"
        elif op == "off_shuffle" and model.panels != 6:
            why = "the model takes ON panels only"
        elif op == "vflip":
            try:
                time_flip = time_flip_panels(model)
            except ValueError as err:   # "<path>: <why>; use --tta none for this model"
                why = str(err).removeprefix(f"{model.path}: ").split("; use --tta")[0]
        elif op == "freq_roll" and view.get("extra_channels"):
            why = (f"the view's extra channel(s) {list(view['extra_channels'])} are fitted per "
                   f"cadence from a fixed per-channel start (NMF): a shifted raw cadence does not "
                   f"give the shifted channel")
        elif op == "freq_roll":
            roll_max, roll_step, why = roll_equivalent(
                model.shape[2], view, float(settings["freq_roll_max"]), settings["freq_roll_mode"])
            if why is None and roll_max == 0:
                why = f"freq_roll_max {settings['freq_roll_max']} rounds to a 0-column shift"
        if why is None:
            probabilities[op] = p
        else:
            excluded[op] = why
    if not probabilities:
        reasons = "".join(f"; {op}: {why}" for op, why in excluded.items())
        raise ValueError(f"{model.path}: its training config enables none of the ops random TTA "
                         f"can use exactly ({', '.join(f'{op}_p' for op in RANDOM_OPS)} are all 0 "
                         f"or left out{reasons}): every pass would repeat the same input; use "
                         f"--tta none or flips for this model")
    return RandomTtaPlan(path=model.path, probabilities=probabilities, excluded=excluded,
                         time_flip=time_flip if "vflip" in probabilities else None,
                         roll_max=roll_max, roll_step=roll_step,
                         roll_mode=settings["freq_roll_mode"])


def draw_ops(plan: RandomTtaPlan, streams: dict, batch: int) -> dict:
    """One pass's per-sample draws for ``batch`` samples from ``streams`` (``{op: Generator}``),
    as the training ops draw them: ``off_shuffle``: panel order ``(B, 6)`` (output panel i is
    input panel ``order[:, i]``); ``vflip`` / ``hflip``: bool ``(B,)``; ``freq_roll``: the image
    shift in columns ``(B,)`` int (0 where not applied)."""
    draws = {}
    for op, p in plan.probabilities.items():
        if op == "off_shuffle":
            u = streams[op].random((batch, 4))
            perm = np.argsort(u[:, 1:], axis=1, kind="stable")
            order = np.tile(np.arange(6), (batch, 1))
            shuffled = order.copy()
            shuffled[:, list(OFF_PANELS)] = np.asarray(OFF_PANELS)[perm]
            draws[op] = np.where((u[:, 0] < p)[:, None], shuffled, order)
        elif op in ("vflip", "hflip"):
            draws[op] = streams[op].random(batch) < p
        else:
            u = streams[op].random((batch, 2))
            span = 2 * plan.roll_max + 1
            shift = np.minimum(np.floor(-plan.roll_max + u[:, 1] * span), plan.roll_max)
            draws[op] = np.where(u[:, 0] < p, shift, 0).astype(np.int64)
    return draws


def apply_ops(cadence: np.ndarray, plan: RandomTtaPlan, draws: dict) -> np.ndarray:
    """The raw cadences ``(B, P, T, F)`` transformed by one pass's ``draws`` (training order:
    OFF shuffle, time flip, frequency flip, frequency roll)."""
    out = cadence
    batch = out.shape[0]
    if "off_shuffle" in draws:
        out = out[np.arange(batch)[:, None], draws["off_shuffle"]]
    if "vflip" in draws:
        flipped = out[:, list(plan.time_flip), ::-1, :]
        out = np.where(draws["vflip"][:, None, None, None], flipped, out)
    if "hflip" in draws:
        out = np.where(draws["hflip"][:, None, None, None], out[..., ::-1], out)
    if "freq_roll" in draws:
        freq = out.shape[3]
        source = np.arange(freq)[None, :] - draws["freq_roll"][:, None] * plan.roll_step  # (B, F)
        out = np.take_along_axis(out, np.mod(source, freq)[:, None, None, :], axis=3)
        if plan.roll_mode == "shift":
            inside = (source >= 0) & (source < freq)
            out = np.where(inside[:, None, None, :], out, np.zeros((), out.dtype))
    return out


class RandomTta:
    """``--tta random:N`` for a list of models: per model a plan and its random streams, kept
    across batches (so the whole test set gets one sequence of draws, whatever the batch size).
    Built before any data is read: a refused model fails here."""

    def __init__(self, models: list[ServingModel], passes: int, seed: int = 0):
        if not isinstance(passes, int) or isinstance(passes, bool) or passes < 1:
            raise ValueError(f"--tta random:N: expected N >= 1 passes, got {passes!r}")
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"--tta-seed: expected an int >= 0, got {seed!r}")
        self.passes = passes
        self.seed = seed
        self.plans = [plan_random_tta(model) for model in models]
        self._streams = [[{op: np.random.default_rng([seed, k, OP_IDS[op]]) for op in plan.probabilities}
                          for k in range(passes)] for plan in self.plans]

    def describe(self) -> list[str]:
        return [plan.describe() for plan in self.plans]

    def variants(self, index: int, cadence: np.ndarray) -> Iterator[np.ndarray]:
        """The N augmented copies of ``cadence`` (already fitted to model ``index``), one pass at
        a time (each drawn when it is reached: consume them all, in order)."""
        plan = self.plans[index]
        for streams in self._streams[index]:
            yield apply_ops(cadence, plan, draw_ops(plan, streams, cadence.shape[0]))

    def predict_batch(self, models: list[ServingModel], cadence: np.ndarray) -> np.ndarray:
        """``(n_models, B)`` probabilities, each the mean over the model's N passes (raw: a run's
        calibrators are fitted for ``none`` and ``flips``, not for random passes;
        ``ServingModel.combine``)."""
        if len(models) != len(self.plans):
            raise ValueError(f"RandomTta: built for {len(self.plans)} model(s), given {len(models)}")
        out = []
        for index, model in enumerate(models):
            fitted = fit_panels(cadence, model)
            out.append(model.combine([model.raw(np.ascontiguousarray(v))
                                      for v in self.variants(index, fitted)], RANDOM_TTA))
        return np.stack(out)
