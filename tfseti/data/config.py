"""The data side's config sections: plain frozen dataclasses, no TensorFlow, no setigen.

================================  ======================  ==========================================
table of a recipe                 dataclass               used by
================================  ======================  ==========================================
``[data]``                        :class:`DataConfig`     ``tfseti.data.pipeline``
``[view]``                        :class:`ViewConfig`     ``tfseti.data.views``
``[view.dedoppler]``              :class:`DedopplerConfig`  ``tfseti.data.drift_sums``, the classical
                                                          search (``tfseti.dedoppler``)
``[augment]``                     :class:`AugmentConfig`  ``tfseti.data.augmenter``
``[augment.inject]``              :class:`InjectConfig`   ``tfseti.data.inject``
``[mixup]``                       :class:`MixupConfig`    ``tfseti.data.mixup``
================================  ======================  ==========================================

One validation style (``tfseti.config``): a choice is a ``Literal`` field (its allowed values are
the ``*S`` tuples below, for argparse ``choices``), checked by the loader and by
``check_choices`` in ``__post_init__``; ``__post_init__`` otherwise checks only ranges and
cross-field rules. Importing this module costs no TensorFlow, so a recipe loads in milliseconds.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass, field, fields
from typing import Literal

from tfseti.config import check_choices, is_int, is_number
from tfseti.synth.parameters import DEFAULT_RANGES, DEFAULT_SNR, FAMILY_NAMES, Ranges, check_families

Compression = Literal["auto", "none", "GZIP"]
CadenceDtype = Literal["float16", "bfloat16", "float32"]
View = Literal["on", "on_off", "all", "dedoppler"]
# ``learned``: the view keeps full resolution and the model's learned resizer
# (``tfseti.models.resizer``) outputs ``resize``.
ResizeMethod = Literal["bilinear", "bicubic", "area", "learned"]
# Largest side of view.resize: 4x the 1024 px of the largest stacked inputs in use.
MAX_RESIZE = 4096
# Background removal before a time-frequency view: none, or the OFF panels' per-channel median
# (``tfseti.data.off_median``).
ViewBackground = Literal["none", "off_median"]
# Extra image channels a time-frequency view can append: ``nmf``, every panel minus its NMF
# background fitted on the OFF panels (``tfseti.data.nmf``).
ExtraChannel = Literal["nmf"]
# The de-Doppler search's own per-channel level: each panel's median over its rows
# (turboSETI's) or the OFF panels' median.
DedopplerBackground = Literal["panel_median", "off_median"]
Reference = Literal["cadence", "panel"]
AugmentOn = Literal["device", "host"]
FreqRollMode = Literal["roll", "shift"]
LambdaDistribution = Literal["beta", "uniform"]
TargetRule = Literal["or", "max"]
FProfile = Literal["gaussian", "sinc2"]

COMPRESSIONS = typing.get_args(Compression)
CADENCE_DTYPES = typing.get_args(CadenceDtype)
VIEWS = typing.get_args(View)
RESIZE_METHODS = typing.get_args(ResizeMethod)
VIEW_BACKGROUNDS = typing.get_args(ViewBackground)
EXTRA_CHANNELS = typing.get_args(ExtraChannel)
DEDOPPLER_BACKGROUNDS = typing.get_args(DedopplerBackground)
REFERENCES = typing.get_args(Reference)
AUGMENT_ON = typing.get_args(AugmentOn)
FREQ_ROLL_MODES = typing.get_args(FreqRollMode)
LAMBDA_DISTRIBUTIONS = typing.get_args(LambdaDistribution)
TARGET_RULES = typing.get_args(TargetRule)
F_PROFILES = typing.get_args(FProfile)


def _unit_interval(section: str, name: str, value) -> None:
    if not is_number(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{section}.{name}: expected a value in [0, 1], got {value!r}")


@dataclass(frozen=True)
class DataConfig:
    """Input pipeline options.

    data: folder of shards (local path or ``gs://bucket/prefix``).
    batch_size: global batch size (split evenly over replicas).
    shuffle_buffer: records in the training shuffle buffer.
    seed: file-order and shuffle seed.
    compression: ``auto`` (detected from the first shard), ``none`` or ``GZIP``.
    cadence_dtype: dtype of the cadences the host yields (``float16`` as stored; ``bfloat16`` or
        ``float32`` for accelerators that take no float16 input).
    with_ids: include the string ``id`` (TPUs cannot take string tensors: set False there and
        use ``index`` to map evaluation outputs back).
    deterministic: training batches in a fixed (seeded) order, so that a resumed run sees exactly
        the batches an uninterrupted run sees (``train_dataset`` skips the ``initial_step``
        batches already consumed). Off by default: parallel reads in arrival order are faster.
    extra: more shard folders whose every record joins the training of every fold, never its
        validation: pseudo-labelled shards (``tfseti.pseudo``, soft targets) or another dataset
        (the old data). An id of an extra folder that is also a validation id is refused.
    extra_ratio: the share of training records drawn from ``extra`` (every batch holds that
        share, exactly, over its records); an epoch is then one pass over the labelled records.
        Unset: the extra records count as much as labelled ones (their share is their count's).
    balance: class balancing of the labelled training records (``tfseti.data.balance``):

        * ``none``: records come in their own proportion (as read);
        * ``oversample:R`` (a number R > 1): every positive (label 1) record is drawn R times as
          often, so with a base positive rate p the positives' share of the labelled records
          becomes ``R p / (R p + 1 - p)`` (exactly, over the deterministic sequence below); an
          epoch keeps its number of steps (one pass's worth of labelled records);
        * ``per_batch:K`` (an int, 1 <= K < the global batch): every global batch holds exactly
          K positives, K / replicas in every replica's batch (K must divide evenly).

        The labelled records become two streams, positives and negatives (the hard ``label``, so
        a soft-target record goes with its rounded class and still trains on its soft target),
        each repeated and shuffled with its own seed, mixed by a deterministic positive/negative
        sequence: training stays deterministic with ``deterministic`` and a resumed run re-enters
        it exactly. ``extra`` sources are not balanced: they keep their share of every batch and
        the labelled rest is balanced (with ``per_batch``, K positives plus the extra share must
        leave room for negatives). The class counts come from the shard folder's manifest; a
        training set without positives or without negatives is refused. The positive stream
        reads every shard to find its records, so the bytes read grow with the oversampling.
    """

    data: str = ""
    batch_size: int = 32
    shuffle_buffer: int = 512
    seed: int = 0
    compression: Compression = "auto"
    cadence_dtype: CadenceDtype = "float16"
    with_ids: bool = True
    deterministic: bool = False
    extra: tuple[str, ...] = ()
    extra_ratio: float | None = None
    balance: str = "none"

    def __post_init__(self):
        check_choices(self)
        self.balancing  # noqa: B018  (parses ``balance``: a bad string fails here)
        if self.extra_ratio is not None:
            if not is_number(self.extra_ratio) or not 0.0 < self.extra_ratio < 1.0:
                raise ValueError(f"DataConfig.extra_ratio: expected a value in (0, 1) or unset, "
                                 f"got {self.extra_ratio!r}")
            if not self.extra:
                raise ValueError("DataConfig.extra_ratio is set but data.extra names no shard folder")
        if len(set(self.extra)) != len(self.extra):
            raise ValueError(f"DataConfig.extra: a folder is named twice in {list(self.extra)}")
        if not is_int(self.batch_size, 1):
            raise ValueError(f"DataConfig.batch_size: expected an int >= 1, got {self.batch_size!r}")
        if not is_int(self.shuffle_buffer, 1):
            raise ValueError(f"DataConfig.shuffle_buffer: expected an int >= 1, got {self.shuffle_buffer!r}")

    @property
    def balancing(self) -> tuple[str, float | int | None]:
        """``balance`` parsed: ``("none", None)``, ``("oversample", R)`` (float R > 1) or
        ``("per_batch", K)`` (int K >= 1; its upper bound, the global batch, is checked where the
        batch is known: the plan and the pipeline)."""
        text = self.balance.strip() if isinstance(self.balance, str) else self.balance
        expected = ("DataConfig.balance: expected 'none', 'oversample:R' (a number R > 1) or "
                    "'per_batch:K' (an int K >= 1, positives per global batch)")
        if text == "none":
            return "none", None
        mode, sep, value = text.partition(":") if isinstance(text, str) else ("", "", "")
        if sep and mode.strip() == "oversample":
            try:
                ratio = float(value)
            except ValueError:
                ratio = math.nan
            if not math.isfinite(ratio):
                raise ValueError(f"{expected}, got {self.balance!r}")
            if ratio <= 1.0:
                raise ValueError(f"DataConfig.balance: oversample:R needs R > 1 (how many times as "
                                 f"often a positive is drawn; 1 is 'none'), got {self.balance!r}")
            return "oversample", ratio
        if sep and mode.strip() == "per_batch":
            if not (value.strip().isascii() and value.strip().isdigit()):
                raise ValueError(f"{expected}, got {self.balance!r}")
            count = int(value)
            if count < 1:
                raise ValueError(f"DataConfig.balance: per_batch:K needs K >= 1 positives per "
                                 f"global batch, got {self.balance!r}")
            return "per_batch", count
        raise ValueError(f"{expected}, got {self.balance!r}")


@dataclass(frozen=True)
class DedopplerConfig:
    """Options of the drift search (see ``tfseti.data.drift_sums``).

    max_drift: largest |drift| searched, in channels per row (0.2 ch/row = 0.52 Hz/s at the
        Kaggle resolution of 2.79 Hz x 1.07 s; the synthetic needles stay under 0.16 ch/row
        except accelerating ones late in the cadence).
    drifts: number of drift rates, evenly spaced over ``[-max_drift, max_drift]`` (odd: 0 is one).
    block: rows summed before the search.
    background: ``panel_median`` | ``off_median`` (needs the OFF panels).
    reference: ``cadence`` | ``panel``.
    panel_gap: rows between consecutive panels when aligning to the cadence (the slew).
    clip: after cleaning, every block sum is clipped to ``[-clip, clip]`` times its noise std
        (0 = no clipping). Broadband bursts are short and bright (tens of sigma per block over
        dozens of channels) and would otherwise dominate every path that crosses them, in ON and
        OFF panels alike; a needle is faint per block (an SNR-40 needle is ~6 sigma per 7-row
        block) and loses little.
    """

    max_drift: float = 0.2
    drifts: int = 65
    block: int = 7
    background: DedopplerBackground = "off_median"
    reference: Reference = "cadence"
    panel_gap: int = 18
    clip: float = 5.0

    def __post_init__(self):
        check_choices(self)
        if not is_number(self.max_drift) or not 0 < self.max_drift <= 4:
            raise ValueError(f"DedopplerConfig.max_drift: expected channels per row in (0, 4], "
                             f"got {self.max_drift!r}")
        object.__setattr__(self, "max_drift", float(self.max_drift))
        for name, low in (("drifts", 1), ("block", 1), ("panel_gap", 0)):
            value = getattr(self, name)
            if not is_int(value, low):
                raise ValueError(f"DedopplerConfig.{name}: expected an int >= {low}, got {value!r}")
        if not is_number(self.clip) or self.clip < 0:
            raise ValueError(f"DedopplerConfig.clip: expected a number >= 0 (0 = off), got {self.clip!r}")
        object.__setattr__(self, "clip", float(self.clip))


@dataclass(frozen=True)
class ViewConfig:
    """Which view the model gets (``tfseti.data.views``).

    name: ``on`` | ``on_off`` | ``all`` | ``dedoppler`` (see ``tfseti.data.views``).
    resize: ``None`` (full resolution) or ``(height, width)``.
    resize_method: ``bilinear`` | ``bicubic`` | ``area`` (the view resizes its images), or
        ``learned`` (needs ``resize``): the view keeps full resolution, so augmentation and mixup
        run on the full-size images, and the network starts with a trainable resizer
        (``tfseti.models.resizer``, Talebi & Milanfar 2021) that outputs ``resize`` to the
        backbone; its width and depth are ``model.options.resizer_filters`` / ``resizer_blocks``.
    normalize_columns: standardise every frequency column of every panel over time first
        (mean 0, std 1 over the panel's rows; after the background removal when both are on).
    background: ``none`` | ``off_median`` (subtract the OFF panels' per-channel median from every
        panel; needs 6-panel cadences; ``tfseti.data.off_median``).
    dedoppler: drift search options of the ``dedoppler`` view (``[view.dedoppler]``).
    extra_channels: image channels appended to a time-frequency view (after its own, before the
        resize; not with ``dedoppler``): ``nmf`` = every panel minus its NMF background (the OFF
        panels factorised into ``nmf_rank`` non-negative spectra, the ON panels fitted with them;
        ``tfseti.data.nmf``), laid out like the view's panels (the ON panels for ``on`` and
        ``on_off``, all six for ``all``), computed on the panels the view shows (after
        ``background`` and ``normalize_columns``). Needs 6-panel cadences.
    nmf_rank: background spectra of the NMF (1 <= rank <= 256; at most the cadence's channels).
    nmf_iterations: multiplicative updates of each NMF fit, the OFF factorisation and the ON
        weights alike (1 to 10000; cost grows linearly).
    """

    name: View = "on"
    resize: tuple[int, int] | None = None
    resize_method: ResizeMethod = "bilinear"
    normalize_columns: bool = False
    background: ViewBackground = "none"
    dedoppler: DedopplerConfig = field(default_factory=DedopplerConfig)
    extra_channels: tuple[ExtraChannel, ...] = ()
    nmf_rank: int = 4
    nmf_iterations: int = 50

    def __post_init__(self):
        if not isinstance(self.extra_channels, (list, tuple)):
            raise ValueError(f"ViewConfig.extra_channels: expected a list of names from "
                             f"{EXTRA_CHANNELS}, got {self.extra_channels!r}")
        object.__setattr__(self, "extra_channels", tuple(self.extra_channels))
        check_choices(self)
        if len(set(self.extra_channels)) != len(self.extra_channels):
            raise ValueError(f"ViewConfig.extra_channels: a channel is named twice in "
                             f"{list(self.extra_channels)}")
        if not is_int(self.nmf_rank, 1) or self.nmf_rank > 256:
            raise ValueError(f"ViewConfig.nmf_rank: expected an int in [1, 256], got {self.nmf_rank!r}")
        if not is_int(self.nmf_iterations, 1) or self.nmf_iterations > 10000:
            raise ValueError(f"ViewConfig.nmf_iterations: expected an int in [1, 10000], "
                             f"got {self.nmf_iterations!r}")
        if self.name == "dedoppler" and self.extra_channels:
            raise ValueError(f"ViewConfig.extra_channels: the dedoppler view takes no extra "
                             f"channels (they are time-frequency images), got "
                             f"{list(self.extra_channels)}; use view 'on', 'on_off' or 'all'")
        if self.resize is not None:
            size = tuple(self.resize)
            if len(size) != 2 or not all(is_int(s, 1) for s in size):
                raise ValueError(f"ViewConfig.resize: expected None or (height, width) of positive "
                                 f"ints, got {self.resize!r}")
            # The largest inputs any solution used were 768 px; a side beyond MAX_RESIZE (a typo)
            # would only fail later as an out-of-memory error inside TensorFlow.
            if max(size) > MAX_RESIZE:
                raise ValueError(f"ViewConfig.resize: expected sides of at most {MAX_RESIZE} px, "
                                 f"got {list(size)}")
            object.__setattr__(self, "resize", size)
        if self.resize_method == "learned" and self.resize is None:
            raise ValueError("ViewConfig.resize_method: 'learned' needs resize = (height, width), "
                             "the size the learned resizer hands the backbone; got resize None")
        if not isinstance(self.dedoppler, DedopplerConfig):
            raise ValueError(f"ViewConfig.dedoppler: expected a DedopplerConfig, got {self.dedoppler!r}")
        if self.name == "dedoppler" and (self.background != "none" or self.normalize_columns):
            raise ValueError("ViewConfig: the dedoppler view removes its own background "
                             "(view.dedoppler.background); leave view.background = 'none' and "
                             "view.normalize_columns = false")

    @property
    def image_resize(self) -> tuple[int, int] | None:
        """The ``(height, width)`` the view itself resizes to (None: full resolution, also for a
        learned resize, which the network does)."""
        return None if self.resize_method == "learned" else self.resize

    @property
    def learned_resize(self) -> tuple[int, int] | None:
        """The ``(height, width)`` the network's learned resizer outputs (None: no resizer); the
        trainer passes it to ``create_model(..., resizer_size=...)``."""
        return self.resize if self.resize_method == "learned" else None


@dataclass(frozen=True)
class InjectConfig:
    """Needle injection options (the ``[augment.inject]`` table of a recipe; ``tfseti.data.inject``).

    p: per-sample probability of injecting a needle (0 = off).
    families: needle families to draw from, uniformly (``tfseti.synth.families``: linear,
        squared, sine, pulsed, broad).
    snr: setigen SNR range ``(low, high)``, drawn uniformly; default the simulator's
        (``tfseti.synth.parameters.DEFAULT_SNR``).
    ranges: every shape range (drift, acceleration, sine period/amplitude, pulse period/duty,
        widths, slew, edge margin) as in ``tfseti.synth.parameters.Ranges``.
    f_profiles: frequency profiles to draw from, uniformly (``gaussian``, ``sinc2``); empty = each
        family's own (as ``tfseti.synth``: ``broad`` draws either, the others are Gaussian).
    missing_prob: probability that the needle is absent from one (random) ON panel.
    renormalise: give each touched ON panel back its mean and std (the Kaggle panels were
        normalised after injection).
    """

    p: float = 0.0
    families: tuple[str, ...] = FAMILY_NAMES
    snr: tuple[float, float] = DEFAULT_SNR
    ranges: Ranges = DEFAULT_RANGES
    f_profiles: tuple[FProfile, ...] = ()
    missing_prob: float = 0.0
    renormalise: bool = True

    def __post_init__(self):
        for name in ("p", "missing_prob"):
            _unit_interval("InjectConfig", name, getattr(self, name))
        try:
            families = check_families(self.families)
        except ValueError as err:
            raise ValueError(f"InjectConfig.families: {err}") from None
        object.__setattr__(self, "families", families)
        snr = tuple(float(v) for v in self.snr)
        if len(snr) != 2 or not all(math.isfinite(v) for v in snr) or not 0.0 < snr[0] <= snr[1]:
            raise ValueError(f"InjectConfig.snr: expected (low, high) with 0 < low <= high, got {self.snr!r}")
        object.__setattr__(self, "snr", snr)
        if not isinstance(self.ranges, Ranges):
            raise ValueError(f"InjectConfig.ranges: expected a tfseti.synth.parameters.Ranges, "
                             f"got {type(self.ranges).__name__}")
        profiles = tuple(self.f_profiles)
        object.__setattr__(self, "f_profiles", profiles)
        check_choices(self)
        if len(set(profiles)) != len(profiles):
            raise ValueError(f"InjectConfig.f_profiles: expected distinct names from {F_PROFILES} "
                             f"(empty = each family's own), got {self.f_profiles!r}")

    @property
    def active(self) -> bool:
        return self.p > 0


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
    ssr_p, ssr_shift, ssr_scale, ssr_rotate: shift-scale-rotate about the image centre, as
        albumentations ``ShiftScaleRotate`` (shift_limit, scale_limit, rotate_limit): shifts
        ~ U(-ssr_shift, ssr_shift) of each side (time and frequency drawn apart), scale
        ~ U(1 - ssr_scale, 1 + ssr_scale), angle ~ U(-ssr_rotate, ssr_rotate) degrees
        (counter-clockwise), bilinear, zero fill outside (albumentations reflects by default;
        zero is the mean of standardised panels, as in cutout and the masks). Rotation is in
        pixel units, so on a 819 x 256 image it also mixes time and frequency scales.
    motion_blur_p, motion_blur_max: as albumentations ``MotionBlur`` (centred line kernel): a
        normalised line kernel of random odd length in ``[3, motion_blur_max]`` pixels (not a
        fraction: a kernel size) and random angle in [0, 180) degrees, reflect-101 borders.
    sharpen_p, sharpen_alpha: as albumentations ``Sharpen`` with lightness 1: blend
        ``(1 - a) * image + a * conv(image, [[-1, -1, -1], [-1, 9, -1], [-1, -1, -1]])`` with
        a ~ U(sharpen_alpha) per sample, reflect-101 borders (the kernel sums to 1: the mean
        level is kept).
    These three run after the masks and cutout, before the noise.
    inject: needle injection (:class:`InjectConfig`, the ``[augment.inject]`` table; ``inject.p``
        = 0 is off): adds setigen needles to the ON panels of raw cadences before the view and
        sets those targets to 1.
    """

    seed: int = 0
    augment_on: AugmentOn = "device"
    off_shuffle_p: float = 0.0
    vflip_p: float = 0.0
    hflip_p: float = 0.0
    freq_roll_p: float = 0.0
    freq_roll_max: float = 0.25
    freq_roll_mode: FreqRollMode = "roll"
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
    ssr_p: float = 0.0
    ssr_shift: float = 0.0625
    ssr_scale: float = 0.1
    ssr_rotate: float = 45.0
    motion_blur_p: float = 0.0
    motion_blur_max: int = 7
    sharpen_p: float = 0.0
    sharpen_alpha: tuple[float, float] = (0.2, 0.5)
    inject: InjectConfig = field(default_factory=InjectConfig)

    def __post_init__(self):
        check_choices(self)
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_p") or f.name in ("freq_roll_max", "time_mask_max",
                                                   "freq_mask_max", "cutout_max", "ssr_shift"):
                _unit_interval("AugmentConfig", f.name, value)
            if f.name.endswith("_count") and not is_int(value, 1):
                raise ValueError(f"AugmentConfig.{f.name}: expected an int >= 1, got {value!r}")
        low, high = (float(v) for v in self.noise_std)
        if not 0.0 <= low <= high:
            raise ValueError(f"AugmentConfig.noise_std: expected (min, max) with 0 <= min <= max, "
                             f"got {self.noise_std!r}")
        object.__setattr__(self, "noise_std", (low, high))
        if not is_number(self.ssr_scale) or not 0.0 <= self.ssr_scale < 1.0:
            raise ValueError(f"AugmentConfig.ssr_scale: expected a relative scale change in "
                             f"[0, 1), got {self.ssr_scale!r}")
        if not is_number(self.ssr_rotate) or not 0.0 <= self.ssr_rotate <= 180.0:
            raise ValueError(f"AugmentConfig.ssr_rotate: expected degrees in [0, 180], "
                             f"got {self.ssr_rotate!r}")
        if not is_int(self.motion_blur_max, 3) or self.motion_blur_max % 2 == 0:
            raise ValueError(f"AugmentConfig.motion_blur_max: expected an odd int >= 3 (a kernel "
                             f"size in pixels), got {self.motion_blur_max!r}")
        alpha = tuple(self.sharpen_alpha)
        if (len(alpha) != 2 or not all(is_number(v) for v in alpha)
                or not 0.0 <= alpha[0] <= alpha[1] <= 1.0):
            raise ValueError(f"AugmentConfig.sharpen_alpha: expected (low, high) with "
                             f"0 <= low <= high <= 1, got {self.sharpen_alpha!r}")
        object.__setattr__(self, "sharpen_alpha", (float(alpha[0]), float(alpha[1])))
        if not isinstance(self.inject, InjectConfig):
            raise ValueError(f"AugmentConfig.inject: expected an InjectConfig, got {self.inject!r}")


@dataclass(frozen=True)
class MixupConfig:
    """Mixing options (all off by default; ``tfseti.data.mixup``).

    mixup_p: fraction of each batch mixed up (per-sample probability).
    cutmix_p: fraction of each batch cut-mixed along time (disjoint from mixup; sum <= 1).
    lam: ``beta`` (λ ~ Beta(alpha, alpha)) or ``uniform`` (λ ~ U(lam_range)).
    targets: ``or`` (y1 + y2 - y1 y2) or ``max``.
    renormalize: re-standardise each mixed-up image (mean 0, std 1), as the 1st place did.
    off_after: fraction of the training steps after which mixing stops (1.0 = never).
    """

    mixup_p: float = 0.0
    cutmix_p: float = 0.0
    lam: LambdaDistribution = "beta"
    alpha: float = 1.0
    lam_range: tuple[float, float] = (0.0, 1.0)
    targets: TargetRule = "or"
    renormalize: bool = False
    off_after: float = 1.0

    def __post_init__(self):
        check_choices(self)
        for name in ("mixup_p", "cutmix_p", "off_after"):
            _unit_interval("MixupConfig", name, getattr(self, name))
        if self.mixup_p + self.cutmix_p > 1.0:
            raise ValueError(f"MixupConfig: mixup_p + cutmix_p must be <= 1 (disjoint fractions of "
                             f"the batch), got {self.mixup_p} + {self.cutmix_p}")
        if not float(self.alpha) > 0:
            raise ValueError(f"MixupConfig.alpha: expected > 0, got {self.alpha!r}")
        low, high = (float(v) for v in self.lam_range)
        if not 0.0 <= low <= high <= 1.0:
            raise ValueError(f"MixupConfig.lam_range: expected (a, b) with 0 <= a <= b <= 1, "
                             f"got {self.lam_range!r}")
        object.__setattr__(self, "lam_range", (low, high))

    @property
    def active(self) -> bool:
        return self.mixup_p > 0 or self.cutmix_p > 0


__all__ = ["DataConfig", "ViewConfig", "DedopplerConfig", "AugmentConfig", "InjectConfig",
           "MixupConfig", "COMPRESSIONS", "CADENCE_DTYPES", "VIEWS", "RESIZE_METHODS",
           "VIEW_BACKGROUNDS", "EXTRA_CHANNELS", "DEDOPPLER_BACKGROUNDS", "REFERENCES", "AUGMENT_ON",
           "FREQ_ROLL_MODES", "LAMBDA_DISTRIBUTIONS", "TARGET_RULES", "F_PROFILES"]
