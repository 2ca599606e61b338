"""The simulator's parameters as plain data: the frame resolution, every random range, the needle
family names and the default SNR. No setigen (~2 s to import): configs
(``tfseti.data.config.InjectConfig``) load and check them, and the TF needle injection
(``tfseti.data.inject``) shares them with the simulator (``tfseti.synth.families``, ``cadence``),
which builds the setigen signals from them.

Units: frequencies in Hz, times in seconds, channel positions in frame channels (0 = lowest
frequency). With the default frame (``cadence.FRAME``: df = 2.794 Hz, dt = 1.074 s) one channel
per row is a drift of ``df / dt`` = 2.60 Hz/s, one panel lasts 293 s, and the three ON panels span
about 5 x 293 s + 4 slews ~ 1.55 ks. A needle that stays inside the 256 channels (715 Hz) over that
span drifts by at most ~0.45 Hz/s, hence the drift ranges below.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from tfseti.io.kaggle import CHANNEL_HZ, N_FREQ, N_TIME, ROW_SECONDS

@dataclass(frozen=True)
class FrameParams:
    """Resolution of one panel; defaults match the Kaggle snippets.

    * ``df`` = 2.7939677 Hz: Breakthrough Listen's high-frequency-resolution product (GBT, 2^20-point
      fine channelisation of 2.93 MHz coarse channels); the Kaggle snippets have this resolution.
    * ``dt`` = 1.0737 s (= 2^30 ns, BL's 1.07 s integration): 273 rows give a 293 s (~5 min)
      pointing, the length of a BL cadence observation.
    * ``fch1`` = 6 GHz (C band, setigen's default; only a label, the physics does not depend on it),
      frequencies descending as in filterbank files; channel 0 of the array is the lowest frequency.
    * chi^2 noise has ``4 * round(df * dt)`` = 12 degrees of freedom (2 polarisations x re/im).
    """

    fchans: int = N_FREQ
    tchans: int = N_TIME
    df: float = CHANNEL_HZ
    dt: float = ROW_SECONDS
    fch1: float = 6.0e9

    @property
    def fmin(self) -> float:
        """Frequency (Hz) of channel 0 (setigen, ``ascending=False``: fch1 is the top channel)."""
        return self.fch1 - (self.fchans - 1) * self.df

    @property
    def panel_seconds(self) -> float:
        return self.tchans * self.dt

    def channel_to_hz(self, channel):
        return self.fmin + np.asarray(channel, dtype=float) * self.df

    def hz_to_channel(self, hz):
        return (np.asarray(hz, dtype=float) - self.fmin) / self.df


FRAME = FrameParams()

# The needle families (``tfseti.synth.families`` defines each; the order is the draw order).
FAMILY_NAMES: tuple[str, ...] = ("linear", "squared", "sine", "pulsed", "broad")
# setigen SNR range of a needle, drawn uniformly unless told otherwise.
DEFAULT_SNR: tuple[float, float] = (10.0, 40.0)


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


def check_families(names) -> tuple[str, ...]:
    """Validate a list of family names (non-empty, known, no duplicates) and return it as a tuple."""
    names = tuple(names)
    if not names:
        raise ValueError(f"families must name at least one of {', '.join(FAMILY_NAMES)}")
    for name in names:
        if name not in FAMILY_NAMES:
            raise ValueError(f"unknown needle family {name!r}; expected one of {', '.join(FAMILY_NAMES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"families lists a name twice: {', '.join(names)}")
    return names


__all__ = ["FrameParams", "FRAME", "Ranges", "DEFAULT_RANGES", "scaled_rfi", "FAMILY_NAMES", "DEFAULT_SNR", "check_families"]
