"""Transmitter limits from a measured SNR threshold, as Enriquez et al. 2017 (arXiv:1709.03491,
"The Breakthrough Listen Search for Intelligent Life: 1.1-1.9 GHz observations of 692 Nearby
Stars") compute them, with the numbers of its first author's code for that paper
(``jeenriquez/SETI_limits``: ``calc_SEFD``, ``calc_Sensitivity(narrow=True)``,
``calc_EIRP_min`` and the CWTFM of ``ET_power_law``):

* ``SEFD = 2 k T_sys / (eta A)`` (Jy): GBT L-band, ``T_sys`` 20 K, a 100 m dish, aperture
  efficiency 0.72: 9.77 Jy, "about 10 Jy" (:data:`GBT_LBAND_SEFD_JY`).
* Minimum detectable flux of a narrow-band signal (one that fits in a channel of width
  ``dnu``): ``S_min = SNR_min SEFD sqrt(dnu / (n_pol t_obs))`` Jy Hz, i.e. the radiometer
  equation ``SNR_min SEFD dnu_t / sqrt(n_pol t_obs dnu)`` with the transmitter's bandwidth
  ``dnu_t`` equal to the channel width; ``n_pol`` = 2, ``t_obs`` one scan (one ON file).
* ``EIRP_min = 4 pi d^2 S_min`` (W, with 1 Jy Hz = 1e-26 W m^-2).
* Continuous Waveform Transmitter Rate Figure of Merit: ``CWTFM = zeta_AO EIRP_min /
  (N_stars nu_rel)``, ``nu_rel`` the searched bandwidth over its central frequency and
  ``zeta_AO = 1000 x 0.5 / 1e13 W``: CWTFM = 1 for an Arecibo-radar-class transmitter
  (1e13 W) sought in 1000 stars over half the band. Smaller is better.

The paper's worked case (SNR 25, 3 Hz channels, 300 s scans, 50 pc, 692 stars, 660 MHz of
usable band at 1.5 GHz): ``S_min`` 17.3 Jy Hz, ``EIRP_min`` 5.2e12 W (the abstract's "~1e13 W")
and CWTFM 0.85; ``tests/sensitivity/test_sensitivity_limits.py`` reproduces them.

Here ``SNR_min`` is the *measured* SNR90 (``tfseti.sensitivity.stats``) in setigen's convention
(``tfseti.sensitivity.plant``): a signal's sum over one file's integrations in one channel, in
units of that sum's noise, which is the radiometer equation's SNR over ``t_obs`` = one file.
"""

from __future__ import annotations

import math

BOLTZMANN_JY = 1.3806488e3          # k in Jy m^2 / K (1.3806488e-23 J/K / 1e-26)
JY = 1e-26                          # W m^-2 Hz^-1
PARSEC_M = 3.0856775814913673e16
GBT_TSYS_K = 20.0
GBT_DIAMETER_M = 100.0
GBT_EFFICIENCY = 0.72
N_POL = 2
ZETA_AO = 1e3 * 0.5 / 1e13          # CWTFM normalisation (module notes)


def sefd_jy(tsys_k: float, diameter_m: float, efficiency: float) -> float:
    """``2 k T_sys / (eta pi (D / 2)^2)`` in Jy."""
    return 2 * tsys_k * BOLTZMANN_JY / (efficiency * math.pi * (diameter_m / 2) ** 2)


GBT_LBAND_SEFD_JY = sefd_jy(GBT_TSYS_K, GBT_DIAMETER_M, GBT_EFFICIENCY)


def s_min_jy_hz(snr_min: float, sefd: float, channel_hz: float, t_obs_s: float,
                n_pol: int = N_POL) -> float:
    """Minimum detectable flux of a narrow-band signal, Jy Hz (module notes)."""
    for name, value in (("snr_min", snr_min), ("sefd", sefd), ("channel_hz", channel_hz),
                        ("t_obs_s", t_obs_s), ("n_pol", n_pol)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"S_min: {name} must be a finite number > 0, got {value!r}")
    return snr_min * sefd * math.sqrt(channel_hz / (n_pol * t_obs_s))


def eirp_min_w(s_min: float, distance_pc: float) -> float:
    """``4 pi d^2 S_min`` in W, ``S_min`` in Jy Hz."""
    if not (math.isfinite(distance_pc) and distance_pc > 0):
        raise ValueError(f"EIRP_min: the distance must be a finite number of pc > 0, got {distance_pc!r}")
    d = distance_pc * PARSEC_M
    return 4 * math.pi * d * d * s_min * JY


def cwtfm(eirp_w: float, n_stars: int, bandwidth_hz: float, centre_hz: float) -> float:
    """``zeta_AO EIRP / (N_stars nu_rel)``, ``nu_rel = bandwidth / centre``."""
    if n_stars < 1 or not (bandwidth_hz > 0 and centre_hz > 0):
        raise ValueError(f"CWTFM: needs N_stars >= 1 and a positive band, got {n_stars}, "
                         f"{bandwidth_hz} Hz at {centre_hz} Hz")
    return ZETA_AO * eirp_w / (n_stars * bandwidth_hz / centre_hz)


def limits(snr_min: float | None, *, sefd: float, channel_hz: float, t_obs_s: float,
           distance_pc: float | None, n_stars: int, bandwidth_hz: float, centre_hz: float) -> dict:
    """``{"snr_min", "s_min_jy_hz", "s_min_w_m2", "eirp_min_w", "cwtfm"}``; None where the
    SNR or the distance is not known."""
    if snr_min is None:
        return {"snr_min": None, "s_min_jy_hz": None, "s_min_w_m2": None, "eirp_min_w": None,
                "cwtfm": None}
    s = s_min_jy_hz(snr_min, sefd, channel_hz, t_obs_s)
    eirp = None if distance_pc is None else eirp_min_w(s, distance_pc)
    return {"snr_min": snr_min, "s_min_jy_hz": s, "s_min_w_m2": s * JY, "eirp_min_w": eirp,
            "cwtfm": None if eirp is None else cwtfm(eirp, n_stars, bandwidth_hz, centre_hz)}
