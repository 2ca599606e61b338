"""The transmitter limits reproduce Enriquez et al. 2017's worked case (arXiv:1709.03491, with its
first author's numbers in jeenriquez/SETI_limits): GBT L-band SEFD ~10 Jy, SNR 25, 3 Hz channels,
300 s scans, stars out to 50 pc: EIRP_min ~5e12 W (the abstract's "~1e13 W"), CWTFM 0.85 for 692
stars over 660 MHz of band at 1.5 GHz; and the statistics behind the tables."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tfseti.sensitivity import limits, stats

LY_M = 9.4607304725808e15


def test_enriquez_2017_worked_case():
    sefd = limits.sefd_jy(20.0, 100.0, 0.72)
    assert sefd == pytest.approx(9.766, abs=1e-3)                  # "about 10 Jy"
    s_min = limits.s_min_jy_hz(25.0, sefd, 3.0, 300.0)
    assert s_min == pytest.approx(17.264, abs=1e-3)                # Jy Hz
    distance_pc = 50 * 3.26156 * LY_M / limits.PARSEC_M           # the paper's 50 pc, in its units
    eirp = limits.eirp_min_w(s_min, distance_pc)
    assert eirp == pytest.approx(5.164e12, rel=1e-3)
    assert 1e12 < eirp < 1e13 and round(math.log10(eirp)) == 13    # the abstract's "~1e13 W"
    assert limits.cwtfm(eirp, 692, 660e6, 1.5e9) == pytest.approx(0.848, abs=1e-3)
    # the normalisation: an Arecibo-radar-class 1e13 W over half the band in 1000 stars is 1
    assert limits.cwtfm(1e13, 1000, 0.5, 1.0) == pytest.approx(1.0)


def test_limits_scale_as_the_radiometer_equation():
    base = limits.limits(25.0, sefd=10.0, channel_hz=3.0, t_obs_s=300.0, distance_pc=50.0,
                         n_stars=1, bandwidth_hz=8e8, centre_hz=1.5e9)
    twice = limits.limits(50.0, sefd=10.0, channel_hz=3.0, t_obs_s=1200.0, distance_pc=100.0,
                          n_stars=1, bandwidth_hz=8e8, centre_hz=1.5e9)
    # 2x SNR, 4x time (1/2 noise), 2x distance (4x area): EIRP x 2 / 2 x 4 = 4
    assert twice["eirp_min_w"] == pytest.approx(4 * base["eirp_min_w"])
    assert base["s_min_w_m2"] == pytest.approx(base["s_min_jy_hz"] * 1e-26)
    assert limits.limits(None, sefd=10.0, channel_hz=3.0, t_obs_s=300.0, distance_pc=None,
                         n_stars=1, bandwidth_hz=1.0, centre_hz=1.0)["eirp_min_w"] is None
    with pytest.raises(ValueError, match="distance"):
        limits.eirp_min_w(1.0, float("nan"))


def test_wilson_interval():
    lo, hi = stats.wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)   # not zero-width at 0 found
    lo, hi = stats.wilson(10, 10)
    assert hi == pytest.approx(1.0) and lo == pytest.approx(0.7225, abs=1e-4)
    lo, hi = stats.wilson(5, 10)
    assert (lo, hi) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert stats.wilson(0, 0) == (None, None)


def test_snr_thresholds_recover_a_known_curve():
    rng = np.random.default_rng(0)
    snr = np.exp(rng.uniform(np.log(3), np.log(100), 4000))
    # logistic in log SNR with 50 % at 15 and slope 6
    p = 1 / (1 + np.exp(-6 * (np.log(snr) - np.log(15))))
    found = rng.uniform(size=snr.size) < p
    fit = stats.snr_at(snr, found, bounds=(3, 100))
    assert fit[0.5][0] == pytest.approx(15, rel=0.05)
    assert fit[0.9][0] == pytest.approx(15 * math.exp(math.log(9) / 6), rel=0.05)
    assert stats.snr_at(snr, np.ones_like(found))[0.9] == (None, "below")
    assert stats.snr_at(snr, np.zeros_like(found))[0.5] == (None, "above")
    # a curve that crosses 90 % beyond the planted range is not reported
    assert stats.snr_at(snr, found, bounds=(3, 20))[0.9] == (None, "above")


def test_false_alarm_rate_interval():
    r = stats.rate_per_mhz(0, 2.0)
    assert r["per_mhz"] == 0 and r["hi95"] == pytest.approx(3.689 / 2, abs=1e-3)
    r = stats.rate_per_mhz(4, 2.0)
    assert r["lo95"] < 2.0 < r["hi95"]
