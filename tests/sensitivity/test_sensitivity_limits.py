"""The transmitter limits reproduce Enriquez et al. 2017's worked case (arXiv:1709.03491, with its
first author's numbers in jeenriquez/SETI_limits): GBT L-band SEFD ~10 Jy, SNR 25, 3 Hz channels,
300 s scans, stars out to 50 pc: EIRP_min ~5e12 W (the abstract's "~1e13 W"), CWTFM 0.85 for 692
stars over 660 MHz of band at 1.5 GHz; and the statistics behind the tables: Wilson intervals,
SNR50 / SNR90 and their bootstrap intervals, false-alarm rates."""

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


def _known_curve(n: int, seed: int, snr50: float = 15.0, slope: float = 6.0, hi: float = 100.0):
    """``n`` signals log-uniform in 3..hi, found with a logistic probability in log SNR."""
    rng = np.random.default_rng(seed)
    snr = np.exp(rng.uniform(np.log(3), np.log(hi), n))
    p = 1 / (1 + np.exp(-slope * (np.log(snr) - np.log(snr50))))
    return snr, rng.uniform(size=n) < p


def _intervals(snr, found, seed: int, bounds=(3, 100), resamples=400) -> dict:
    return stats.snr_thresholds(snr, {"d": found}, bounds, resamples,
                                np.random.default_rng(seed))["d"]


def test_snr_intervals_contain_the_estimate_and_cover_the_truth():
    truth = {"snr50": 15.0, "snr90": 15 * math.exp(math.log(9) / 6)}
    covered = 0
    for seed in range(12):
        e = _intervals(*_known_curve(300, seed), seed)
        for key in ("snr50", "snr90"):
            assert e[f"{key}_lo95"] < e[key] < e[f"{key}_hi95"], (seed, key, e)
            covered += e[f"{key}_lo95"] <= truth[key] <= e[f"{key}_hi95"]
    # 24 nominal-95 % intervals: a wrong (too narrow, off-centre) interval misses far more often
    assert covered >= 20, covered


def test_snr_intervals_narrow_with_more_signals():
    for key in ("snr50", "snr90"):
        widths = []
        for n in (150, 1500):
            e = _intervals(*_known_curve(n, 1), 2)
            widths.append(e[f"{key}_hi95"] - e[f"{key}_lo95"])
        # 10x the signals: ~1/sqrt(10) the width
        assert widths[1] < widths[0] / 2, (key, widths)


def test_snr_intervals_are_a_function_of_the_seed():
    snr, found = _known_curve(200, 4)
    a, b = _intervals(snr, found, 7), _intervals(snr, found, 7)
    assert a == b
    c = _intervals(snr, found, 8)
    assert c["snr90"] == a["snr90"] and c["snr90_hi95"] != a["snr90_hi95"]   # only the resamples


def test_a_threshold_beyond_the_planted_range_is_reported_as_such():
    # 90 % at ~22.9, but the brightest planted signal is 20: SNR90 and its upper end not reached
    snr, found = _known_curve(400, 5, hi=20)
    e = _intervals(snr, found, 0, bounds=(3, 20))
    assert e["snr50"] == pytest.approx(15, rel=0.15)
    assert (e["snr90"], e["snr90_bound"]) == (None, "above")
    assert (e["snr90_hi95"], e["snr90_hi95_bound"]) == (None, "above")
    assert stats.format_interval(e, "snr90", (3, 20)).startswith("> 20 [")
    assert stats.format_interval(e, "snr90", (3, 20)).endswith(", > 20]")
    # all found: below the range, every resample too
    everything = _intervals(snr, np.ones_like(found), 0, bounds=(3, 20))
    assert stats.format_interval(everything, "snr50", (3, 20)) == "< 3 [< 3, < 3]"


def test_separated_data_give_a_finite_threshold_between_the_groups():
    # found and missed do not overlap in SNR: plain maximum likelihood has no maximum here
    snr = np.array([5.0, 6, 7, 8, 20, 30, 40])
    fit = stats.snr_at(snr, snr > 10, bounds=(5, 40))
    assert 8 < fit[0.5][0] < 20 and fit[0.5][0] < fit[0.9][0]
    x = np.log(snr) - np.median(np.log(snr))
    for start in ((0.0, 1.0), (3.0, 20.0)):           # the same answer from anywhere
        a, b = stats.fit_logistic(x, snr > 10, np.ones((1, 7)), start)
        assert (a[0], b[0]) == pytest.approx((-1.5289, 2.7589), abs=1e-3)
