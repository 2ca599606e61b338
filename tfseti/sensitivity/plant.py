"""Planting signals into a cadence's own data, in memory: where they go, how bright, what they
look like, and a cadence wrapper that the scan reads through.

**Where.** The band is cut into *units* of whole coarse channels (``fine_per_coarse`` channels as
the scan takes it; the whole band when it is unknown), so that the per-file search of a unit
(its statistics are per coarse channel) is the one of the full scan. A unit is cut into *slots*
of :attr:`Layout.slot` channels, a multiple of the window stride, each holding one signal or
nothing. A slot is its signal's track over the whole cadence (six files and the slews) plus
:attr:`Layout.guard` channels, at least one window width, the band search's reach (its paths and
the OFF veto) and the per-file search's top-hit distance: no window, no path and no top-hit
window of the scan sees two signals, so signals do not interact and many fit in one cadence.

**How bright.** setigen's convention (``tfseti.synth.observation``): a signal of SNR ``s`` has
intensity ``s * sigma / sqrt(rows)`` above the noise, ``rows`` the integrations of one file, so
its sum over one file's integrations in one channel is ``s`` times that sum's noise. ``sigma``
is the noise of one sample, estimated from the data of the signal's own slot in the ON files
(:func:`noise_std`): the median absolute difference of consecutive integrations of each
channel, ``1.4826 MAD / sqrt(2)``, which a bandpass, a zero-drift interferer or a planted line
does not move.

**What.** The families of ``tfseti.synth.families`` (their setigen path, time profile and
frequency profile), drawn with the caller's SNR, drift rate (Hz/s; for ``squared`` the mean rate
over the cadence) and width (FWHM, Hz), on the cadence clock (seconds since the first file's
start, the files placed at their ``tstart``): a signal runs on through OFF files and slews. Each
integration holds the signal's mean over it (setigen's ``doppler_smearing`` and
``integrate_t_profile``), and each channel its mean over the channel (``integrate_f_profile``):
a line crossing several channels in one integration spreads its power over them, as a
spectrometer sees it, so completeness at high drift rates shows the smearing loss, and a line
between two channels splits its power between them. A line narrower than a channel has its
profile raised by ``channel / (its integral)`` so that it carries the power of a one-channel line of the
intensity: the SNR means the same at every width (setigen's peak = intensity holds for lines
wider than a channel).
``on`` signals are in the three ON files; ``control`` signals (the same draws) in all six, which
a good search rejects.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from tfseti.io.kaggle import ON_PANELS

PANELS = 6
KINDS = ("on", "control")
MAD_TO_STD = 1.4826
# Extra channels either side of a signal's track for its profile: its FWHM counts 4 times (the
# Gaussian is < 1e-9 there, as tfseti.synth.cadence bounds it) plus two channels.
PROFILE_FWHM = 4.0
PROFILE_CHANNELS = 2.0
# setigen's default number of sub-samples per integration when smearing / integrating.
MIN_SUBSAMPLES = 10
MAX_SUBSAMPLES = 64


@dataclass(frozen=True)
class Clock:
    """The cadence clock: the start of each file (s since the first file's start), the
    integration time and the integrations used per file."""

    starts: tuple[float, ...]
    tsamp: float
    rows: int
    scan_starts: tuple[float, ...] = ()     # the scan's clock: files rows + gap_rows apart

    @classmethod
    def of(cls, cadence) -> "Clock":
        """From the files' ``tstart`` (MJD) when all six have one, else the scan's clock (files
        ``rows + gap_rows`` integrations apart)."""
        tstarts = [f.tstart for f in cadence.files]
        scan = tuple(float(p * (cadence.rows + cadence.gap_rows) * cadence.tsamp)
                     for p in range(PANELS))
        if all(t is not None and math.isfinite(t) for t in tstarts):
            starts = tuple(float((t - tstarts[0]) * 86400.0) for t in tstarts)
        else:
            starts = scan
        return cls(starts, float(cadence.tsamp), int(cadence.rows), scan)

    def row_times(self, panel: int) -> np.ndarray:
        return self.starts[panel] + np.arange(self.rows) * self.tsamp

    def scan_row_times(self, panel: int) -> np.ndarray:
        """As :meth:`row_times` on the scan's clock (``tfseti.dedoppler.window_scores``: the
        slew rounded to whole integrations), the clock the window stage's drift rates are on."""
        starts = self.scan_starts or self.starts
        return starts[panel] + np.arange(self.rows) * self.tsamp

    @property
    def span(self) -> float:
        """Seconds from the first file's start to the end of the last."""
        return self.starts[-1] + self.rows * self.tsamp


@dataclass(frozen=True)
class Signal:
    """One planted signal (plain data: it is written to the chunk files and read back).

    ``channel``: band channel (fractional) of the path's centre at the first file's start;
    ``drift_hz_s``: the drawn drift rate (+ = rising frequency); ``snr`` / ``width_hz`` /
    ``family`` / ``kind`` as drawn; ``noise_std`` the slot's estimated noise and ``intensity``
    the level planted; the shape parameters of the family (``rate``: setigen's drift rate of
    the path, Hz/s, or Hz/s^2 for ``squared``); ``slot`` = ``[lo, hi)`` band channels."""

    index: int
    kind: str
    family: str
    snr: float
    drift_hz_s: float
    width_hz: float
    channel: float
    slot: tuple[int, int]
    noise_std: float = 0.0
    intensity: float = 0.0
    rate: float = 0.0
    f_profile: str = "gaussian"
    period: float = 0.0
    amplitude: float = 0.0
    pulse_width: float = 0.0
    pulse_seed: int = 0

    @property
    def panels(self) -> tuple[int, ...]:
        return tuple(ON_PANELS) if self.kind == "on" else tuple(range(PANELS))

    def shape(self):
        from tfseti.synth.families import NeedleShape

        return NeedleShape(self.family, drift_rate=self.rate, width=self.width_hz,
                           f_profile=self.f_profile, period=self.period, amplitude=self.amplitude,
                           pulse_width=self.pulse_width)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["slot"] = list(self.slot)
        return out

    @classmethod
    def from_dict(cls, doc: dict) -> "Signal":
        names = cls.__dataclass_fields__
        return cls(**{k: (tuple(v) if k == "slot" else v) for k, v in doc.items() if k in names})


def offsets_hz(signal: Signal, t: np.ndarray) -> np.ndarray:
    """The path's centre relative to its start (Hz) at times ``t`` (s, cadence clock)."""
    from tfseti.synth.families import get_family

    return get_family(signal.family).offsets_hz(signal.shape(), t)


def subsamples(max_step_channels: float) -> int:
    """Sub-samples per integration: setigen's 10, more when the path crosses many channels in
    one integration (a quarter channel apart at most)."""
    return int(min(MAX_SUBSAMPLES, max(MIN_SUBSAMPLES, math.ceil(4 * max_step_channels) + 1)))


@dataclass
class Patch:
    """A signal's samples in one file: ``values`` ``(rows, n)`` at band channels ``[lo, lo + n)``."""

    lo: int
    values: np.ndarray

    @property
    def hi(self) -> int:
        return self.lo + self.values.shape[1]


def profile_power(profile, width_hz: float) -> float:
    """The integral (Hz) of a peak-1 frequency profile: a sub-channel line is raised to one
    channel's power (module notes)."""
    half = 8 * width_hz
    f = np.linspace(-half, half, 4001)
    return float(np.sum(profile(f, 0.0)) * (f[1] - f[0]))


def render(signal: Signal, clock: Clock, panel: int, foff_hz: float) -> Patch:
    """The signal's samples in file ``panel`` (module notes: its mean over each integration)."""
    from tfseti.synth.families import get_family

    family = get_family(signal.family)
    shape = signal.shape()
    times = clock.row_times(panel)
    edges = np.append(times, times[-1] + clock.tsamp)
    path = family.path(shape, 0.0)
    centres = np.asarray(path(edges), float)
    step = float(np.max(np.abs(np.diff(centres)), initial=0.0)) / abs(foff_hz)
    k = subsamples(step)
    sub = times[:, None] + (np.arange(k) + 0.5)[None, :] * (clock.tsamp / k)    # (rows, k)
    centre_hz = np.asarray(path(sub.ravel()), float).reshape(sub.shape)
    level = np.asarray(family.t_profile(shape, signal.intensity, signal.pulse_seed)(sub.ravel()),
                       float).reshape(sub.shape) if signal.family == "pulsed" else \
        np.full(sub.shape, signal.intensity)
    centre_ch = signal.channel + centre_hz / foff_hz
    pad = (PROFILE_FWHM * signal.width_hz) / abs(foff_hz) + PROFILE_CHANNELS
    lo = int(math.floor(centre_ch.min() - pad))
    hi = int(math.ceil(centre_ch.max() + pad)) + 1
    # each channel is the profile's mean over its width (setigen's integrate_f_profile)
    m = int(min(MAX_SUBSAMPLES, max(8, math.ceil(4 * abs(foff_hz) / signal.width_hz))))
    across = (np.arange(m) + 0.5) / m - 0.5                                      # channel fractions
    channels = (np.arange(lo, hi, dtype=float)[:, None] + across[None, :]).ravel()
    rel_hz = (channels - signal.channel) * foff_hz                               # (n m,)
    profile = family.f_profile(shape)
    gain = max(1.0, abs(foff_hz) / profile_power(profile, signal.width_hz))
    values = np.zeros((clock.rows, (hi - lo) * m))
    for j in range(k):
        values += level[:, j:j + 1] * profile(rel_hz[None, :], centre_hz[:, j:j + 1])
    values = gain * values.reshape(clock.rows, hi - lo, m).mean(axis=2) / k
    if not np.isfinite(values).all():
        raise ValueError(f"signal {signal.index}: non-finite samples planted ({signal})")
    return Patch(lo, values.astype(np.float32))


def track(signal: Signal, clock: Clock, foff_hz: float) -> np.ndarray:
    """``(6, rows)`` band channel of the path's centre at each integration's start."""
    return np.stack([signal.channel + offsets_hz(signal, clock.row_times(p)) / foff_hz
                     for p in range(PANELS)])


def noise_std(block: np.ndarray) -> float:
    """Noise of one sample of ``block`` ``(..., rows, channels)``: ``1.4826 MAD / sqrt(2)`` of
    the differences of consecutive integrations (module notes); NaN when there are none."""
    block = np.asarray(block, np.float64)
    diff = np.diff(block, axis=-2)
    diff = diff[np.isfinite(diff)]
    if diff.size == 0:
        return float("nan")
    mad = np.median(np.abs(diff - np.median(diff)))
    return float(MAD_TO_STD * mad / math.sqrt(2.0))


class _SubBand:
    """Channels ``[lo, hi)`` of ``base`` (a file or a cadence) as a band of their own."""

    base: object
    lo: int
    hi: int
    foff = property(lambda self: self.base.foff)
    tsamp = property(lambda self: self.base.tsamp)

    @property
    def nchans(self) -> int:
        return self.hi - self.lo

    @property
    def fch1(self) -> float:
        return self.base.fch1 + self.lo * self.base.foff


class PlantedFile(_SubBand):
    """One file of a :class:`PlantedCadence`: the channels ``[lo, hi)`` of an open
    ``ObservationFile`` as a file of its own (channel 0 = ``lo``), with patches added on read."""

    def __init__(self, base, lo: int, hi: int, rows: int, patches: list[Patch]):
        self.base, self.lo, self.hi, self.used_rows = base, lo, hi, rows
        self.patches = sorted(patches, key=lambda p: p.lo)

    path = property(lambda self: self.base.path)
    header = property(lambda self: self.base.header)
    rows = property(lambda self: self.base.rows)
    dtype = property(lambda self: np.dtype(np.float32))
    tstart = property(lambda self: self.base.tstart)
    source_name = property(lambda self: self.base.source_name)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Channels ``[start, stop)`` of the sub-band with the patches added (a new array: the
        file and its reads are never changed)."""
        if not 0 <= start < stop <= self.nchans:
            raise ValueError(f"{self.path}: channels [{start}, {stop}) are outside the sub-band's "
                             f"{self.nchans}")
        block = np.array(self.base.read(self.lo + start, self.lo + stop), np.float32)
        a, b = self.lo + start, self.lo + stop
        for patch in self.patches:
            x0, x1 = max(a, patch.lo), min(b, patch.hi)
            if x0 < x1:
                block[:self.used_rows, x0 - a:x1 - a] += patch.values[:, x0 - patch.lo:x1 - patch.lo]
        return block

    def close(self) -> None:      # the base cadence owns the file
        pass


@dataclass
class PlantedCadence(_SubBand):
    """The channels ``[lo, hi)`` of an open ``ObservationCadence`` with signals planted: the
    attributes and ``read`` that ``tfseti.scan.run.scan_cadence`` / ``search_files`` use."""

    base: object
    lo: int
    hi: int
    patches: dict = field(default_factory=dict)     # panel -> [Patch]

    def __post_init__(self):
        self.files = [PlantedFile(f, self.lo, self.hi, self.base.rows, self.patches.get(p, []))
                      for p, f in enumerate(self.base.files)]

    name = property(lambda self: self.base.name)
    rows = property(lambda self: self.base.rows)
    gap_rows = property(lambda self: self.base.gap_rows)
    notes = property(lambda self: self.base.notes)
    paths = property(lambda self: self.base.paths)

    @property
    def input_bytes(self) -> int:
        return 4 * PANELS * self.rows * self.nchans

    def freq_mhz(self, channel) -> np.ndarray:
        return self.fch1 + np.asarray(channel, dtype=np.float64) * self.foff

    def read(self, start: int, stop: int) -> np.ndarray:
        return np.stack([f.read(start, stop)[:self.rows] for f in self.files])

    def close(self) -> None:
        pass
