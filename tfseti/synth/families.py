"""The needle families: each turns shape parameters drawn from ``tfseti.synth.parameters.Ranges``
into setigen functions: a path (centre frequency against time, time counted from the start of the
cadence so that the needle is continuous across the OFF gaps), a time profile and a frequency
profile. ``draw`` picks the shape parameters; ``cadence`` then picks the start channel so that
the path stays inside the band over the ON panels.

Units and the ranges themselves: ``tfseti.synth.parameters`` (setigen-free, so configs load without it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import setigen as stg

from tfseti.synth.parameters import FAMILY_NAMES, Ranges


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
assert tuple(FAMILIES) == FAMILY_NAMES, "tfseti.synth.parameters.FAMILY_NAMES lists these families"


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown needle family {name!r}; expected one of {', '.join(FAMILY_NAMES)}") from None


__all__ = ["NeedleShape", "Family", "FAMILIES", "get_family"]
