"""Every random range of the simulator, in one place, and the needle families built from them.

Units: frequencies in Hz, times in seconds, channel positions in frame channels (0 = lowest
frequency). With the default frame (``cadence.FRAME``: df = 2.794 Hz, dt = 1.074 s) one channel
per row is a drift of ``df / dt`` = 2.60 Hz/s, one panel lasts 293 s, and the three ON panels span
about 5 x 293 s + 4 slews ~ 1.55 ks. A needle that stays inside the 256 channels (715 Hz) over that
span drifts by at most ~0.45 Hz/s, hence the drift ranges below.

A family turns its parameters into setigen functions: a path (centre frequency against time, time
counted from the start of the cadence so that the needle is continuous across the OFF gaps), a time
profile and a frequency profile. ``draw`` picks the shape parameters; ``cadence`` then picks the
start channel so that the path stays inside the band over the ON panels.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import setigen as stg


@dataclass(frozen=True)
class Ranges:
    """Uniform ranges ``(low, high)`` that the generator draws from. Defaults are the documented ones."""

    # -- needles (only in ON panels) ------------------------------------------------------------
    # |drift| in Hz/s for linear, pulsed and broad needles; the sign is drawn separately.
    drift_hz_s: tuple[float, float] = (0.02, 0.40)
    # |d2f/dt2| in Hz/s^2 for squared (accelerating) needles: path = f0 + a t^2 / 2, starting at
    # zero drift and reaching 0.15-0.75 Hz/s by the end of ON panel 4.
    accel_hz_s2: tuple[float, float] = (1e-4, 5e-4)
    # Sine ("s-shape") needles: path = f0 + A sin(2 pi t / P) + drift t.
    sine_drift_hz_s: tuple[float, float] = (0.0, 0.15)
    sine_period_s: tuple[float, float] = (120.0, 600.0)
    sine_amplitude_hz: tuple[float, float] = (10.0, 60.0)
    # Pulsed needles: Gaussian pulses (setigen periodic_gaussian_t_profile) on a linear path.
    pulse_period_s: tuple[float, float] = (20.0, 90.0)
    pulse_duty: tuple[float, float] = (0.2, 0.5)  # pulse FWHM / period
    # FWHM of the frequency profile: narrow needles ~1.5-4 channels, broad ones ~11-32 channels.
    narrow_width_hz: tuple[float, float] = (4.0, 12.0)
    broad_width_hz: tuple[float, float] = (30.0, 90.0)
    # Needle centre kept this many channels inside the band edges where the span allows it.
    edge_margin_channels: float = 8.0

    # -- background (every panel, both classes) -------------------------------------------------
    slew_s: tuple[float, float] = (10.0, 30.0)  # telescope move between panels
    panel_gain: tuple[float, float] = (0.9, 1.1)  # system temperature of each pointing
    # Bandpass: 1 + tilt (x - 1/2) + sum_k a_k cos(2 pi k x + phi_k), x in [0, 1) across the frame; within
    # 256 fine channels (1/4096 of a coarse channel) the real bandpass is nearly flat.
    bandpass_tilt: tuple[float, float] = (0.0, 0.05)  # |tilt| across the frame, random sign
    bandpass_ripple: tuple[float, float] = (0.0, 0.03)  # a_k (k = 1, 2)
    # RFI counts per cadence, drawn uniformly from 0..max (inclusive).
    max_zero_drift_rfi: int = 3
    max_drifting_rfi: int = 2
    max_bursts: int = 2
    rfi_snr: tuple[float, float] = (10.0, 80.0)
    rfi_width_hz: tuple[float, float] = (3.0, 15.0)
    rfi_drift_hz_s: tuple[float, float] = (0.02, 0.30)  # |drift| of drifting RFI lines
    burst_snr: tuple[float, float] = (80.0, 250.0)  # short, so brighter per pixel
    burst_bandwidth_hz: tuple[float, float] = (100.0, 700.0)
    burst_duration_s: tuple[float, float] = (2.0, 20.0)  # FWHM in time

    def __post_init__(self):
        for name, value in self.__dict__.items():
            if isinstance(value, tuple):
                low, high = value
                if not (np.isfinite(low) and np.isfinite(high) and 0 <= low <= high):
                    raise ValueError(f"Ranges.{name} must be (low, high) with 0 <= low <= high, got {value}")
            elif value < 0:
                raise ValueError(f"Ranges.{name} must be >= 0, got {value}")
        if self.bandpass_tilt[1] / 2 + 2 * self.bandpass_ripple[1] >= 1:
            raise ValueError("Ranges.bandpass_tilt / 2 + 2 * bandpass_ripple must stay below 1 "
                             "(the bandpass must stay positive)")


DEFAULT_RANGES = Ranges()


def scaled_rfi(ranges: Ranges, scale: int) -> Ranges:
    """``ranges`` with ``scale`` times the most interferers of each kind per cadence."""
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"RFI scale must be an int >= 1, got {scale!r}")
    return replace(ranges, max_zero_drift_rfi=ranges.max_zero_drift_rfi * scale,
                   max_drifting_rfi=ranges.max_drifting_rfi * scale,
                   max_bursts=ranges.max_bursts * scale)


def uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(*bounds))


def signed(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """A magnitude from ``bounds`` with a random sign (drift up or down in frequency)."""
    return float(rng.choice((-1.0, 1.0)) * rng.uniform(*bounds))


@dataclass(frozen=True)
class NeedleShape:
    """Shape parameters of one needle (everything but where it starts and how bright it is).

    ``drift_rate`` is Hz/s, except for ``squared`` where it is setigen's ``squared_path`` drift
    rate, i.e. the second derivative of the path in Hz/s^2. ``period`` is the sine-path period
    (``sine``) or pulse period (``pulsed``); ``amplitude`` the sine-path amplitude in Hz;
    ``pulse_width`` the pulse FWHM in s; ``width`` the FWHM of the frequency profile in Hz.
    """

    family: str
    drift_rate: float
    width: float
    f_profile: str = "gaussian"  # "gaussian" or "sinc2"
    period: float = 0.0
    amplitude: float = 0.0
    pulse_width: float = 0.0


class Family:
    """A needle family: how to draw its shape and how to express it with setigen."""

    name = ""

    def draw(self, rng: np.random.Generator, ranges: Ranges) -> NeedleShape:
        raise NotImplementedError

    def path(self, shape: NeedleShape, f_start_hz: float):
        """setigen path: centre frequency (Hz) against time since the cadence start (s)."""
        return stg.constant_path(f_start=f_start_hz, drift_rate=shape.drift_rate)

    def t_profile(self, shape: NeedleShape, level: float, seed: int):
        return stg.constant_t_profile(level=level)

    def f_profile(self, shape: NeedleShape):
        if shape.f_profile == "sinc2":
            return stg.sinc2_f_profile(width=shape.width, width_mode="fwhm")
        return stg.gaussian_f_profile(width=shape.width)

    def offsets_hz(self, shape: NeedleShape, t: np.ndarray) -> np.ndarray:
        """The path relative to its start frequency, evaluated at times ``t`` (s)."""
        return np.asarray(self.path(shape, 0.0)(np.asarray(t, dtype=float)), dtype=float)


class Linear(Family):
    """Constant Doppler drift: a straight line (setigen ``constant_path``)."""

    name = "linear"

    def draw(self, rng, ranges):
        return NeedleShape(self.name, drift_rate=signed(rng, ranges.drift_hz_s),
                           width=uniform(rng, ranges.narrow_width_hz))


class Squared(Family):
    """Accelerating drift (setigen ``squared_path``): the slope grows through the cadence."""

    name = "squared"

    def draw(self, rng, ranges):
        return NeedleShape(self.name, drift_rate=signed(rng, ranges.accel_hz_s2),
                           width=uniform(rng, ranges.narrow_width_hz))

    def path(self, shape, f_start_hz):
        return stg.squared_path(f_start=f_start_hz, drift_rate=shape.drift_rate)


class Sine(Family):
    """Sine-modulated drift, the "s-shaped" needles of the Kaggle test set (setigen ``sine_path``)."""

    name = "sine"

    def draw(self, rng, ranges):
        return NeedleShape(self.name, drift_rate=signed(rng, ranges.sine_drift_hz_s),
                           width=uniform(rng, ranges.narrow_width_hz),
                           period=uniform(rng, ranges.sine_period_s),
                           amplitude=uniform(rng, ranges.sine_amplitude_hz))

    def path(self, shape, f_start_hz):
        return stg.sine_path(f_start=f_start_hz, drift_rate=shape.drift_rate,
                             period=shape.period, amplitude=shape.amplitude)


class Pulsed(Family):
    """A drifting line switched on and off by Gaussian pulses (``periodic_gaussian_t_profile``).

    The pulses are on an absolute clock (time since the cadence start), so the pulse train runs
    on through the OFF gaps. ``level`` is the peak intensity.
    """

    name = "pulsed"

    def draw(self, rng, ranges):
        period = uniform(rng, ranges.pulse_period_s)
        return NeedleShape(self.name, drift_rate=signed(rng, ranges.drift_hz_s),
                           width=uniform(rng, ranges.narrow_width_hz), period=period,
                           pulse_width=period * uniform(rng, ranges.pulse_duty))

    def t_profile(self, shape, level, seed):
        return stg.periodic_gaussian_t_profile(pulse_width=shape.pulse_width, period=shape.period,
                                               pulse_direction="up", amplitude=level, level=0.0,
                                               seed=seed)


class Broad(Family):
    """A drifting line with a wide frequency profile (Gaussian or sinc^2)."""

    name = "broad"

    def draw(self, rng, ranges):
        profile = str(rng.choice(("gaussian", "sinc2")))
        return NeedleShape(self.name, drift_rate=signed(rng, ranges.drift_hz_s),
                           width=uniform(rng, ranges.broad_width_hz), f_profile=profile)


FAMILIES: dict[str, Family] = {family.name: family for family in
                               (Linear(), Squared(), Sine(), Pulsed(), Broad())}
FAMILY_NAMES: tuple[str, ...] = tuple(FAMILIES)


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown needle family {name!r}; expected one of {', '.join(FAMILY_NAMES)}") from None


def check_families(names) -> tuple[str, ...]:
    """Validate a list of family names (non-empty, known, no duplicates) and return it as a tuple."""
    names = tuple(names)
    if not names:
        raise ValueError(f"families must name at least one of {', '.join(FAMILY_NAMES)}")
    for name in names:
        get_family(name)
    if len(set(names)) != len(names):
        raise ValueError(f"families lists a name twice: {', '.join(names)}")
    return names


__all__ = ["Ranges", "DEFAULT_RANGES", "scaled_rfi", "NeedleShape", "Family", "FAMILIES", "FAMILY_NAMES",
           "get_family", "check_families"]
