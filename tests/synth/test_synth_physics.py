"""The physics of tfseti.synth, measured on the arrays: needles only in ON panels and continuous
through the OFF gaps, RFI in every panel, and each needle family with its own shape."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from synth_helpers import excess_along, fit_line, mean_along, ridge, source_track

from tfseti.io.kaggle import OFF_PANELS, ON_PANELS, KaggleDataset
from tfseti.synth import (FRAME, CadenceConfig, CadenceSpec, NeedleShape, NeedleSpec, RFISpec, draw_cadence_spec,
                          generate_dataset, make_cadence, needle_track, rfi_track)

ROWS_PER_SECOND = 1.0 / FRAME.dt
CHANNELS_PER_HZ = 1.0 / FRAME.df


def _spec(needle=None, rfi=(), slew=20.0, seed=11):
    """A flat-bandpass cadence with equal panel gains, so measurements see only the signals."""
    return CadenceSpec(noise_seed=seed, slew=slew, rfi=tuple(rfi), needle=needle)


def _needle(family, f_start, drift_rate, width=6.0, snr=300.0, **shape):
    return NeedleSpec(shape=NeedleShape(family, drift_rate=drift_rate, width=width, **shape),
                      f_start=f_start, snr=snr)


def test_needles_only_in_on_panels_along_the_truth_path(tmp_path):
    generate_dataset(tmp_path, n_train=20, n_test=0, positive_rate=1.0, snr=(30, 40), missing_prob=0.5,
                     rfi=False, seed=2, progress=False)
    truth = pd.read_csv(tmp_path / "truth.csv", dtype={"id": str})
    reader = KaggleDataset(str(tmp_path), "train")
    n_missing = 0
    for row in truth.itertuples():
        spec = CadenceSpec.from_json(row.spec)
        assert spec.needle.missing_on_panel == row.missing_on_panel
        cadence = reader.load(row.id).astype(np.float32)
        track = source_track(spec)
        width = spec.needle.shape.width * CHANNELS_PER_HZ
        excess = [excess_along(cadence[p], track[p], width) for p in range(6)]
        present = spec.needle.present_panels
        n_missing += len(present) == 2
        for panel in range(6):
            if panel in present:
                assert excess[panel] > 0.25, (row.family, panel, excess)
            elif not np.isnan(excess[panel]):  # OFF or missing: nothing where the source would be
                assert abs(excess[panel]) < 0.2, (row.family, panel, excess)
        # needle_track (NaN outside the present ON panels) agrees with the source path.
        expected = np.where(np.isin(np.arange(6), present)[:, None], track, np.nan)
        np.testing.assert_allclose(needle_track(spec), expected)
    assert n_missing >= 3  # the 'missing from one ON panel' case was exercised


def test_rfi_lines_are_in_on_and_off_panels():
    lines = (RFISpec("zero_drift", f_start=60.0, snr=40.0, width=6.0),
             RFISpec("drifting", f_start=200.0, snr=40.0, width=6.0, drift_rate=-0.2))
    spec = _spec(rfi=lines)
    cadence = make_cadence(spec).astype(np.float32)
    for rfi in lines:
        track = rfi_track(spec, rfi)
        assert track[5].min() < 200 - 120  # the drifting line really crosses the band over the cadence
        for panel in range(6):
            assert excess_along(cadence[panel], track[panel], 6.0 * CHANNELS_PER_HZ) > 1.0, (rfi.kind, panel)


def test_broadband_burst_lands_in_the_panel_observing_at_its_time():
    spec = _spec()
    t_burst = spec.panel_starts()[3] + 100.0  # during OFF panel 3
    burst = RFISpec("burst", f_start=128.0, snr=400.0, width=250.0, t_center=t_burst, duration=6.0)
    cadence = make_cadence(dataclasses.replace(spec, rfi=(burst,))).astype(np.float32)
    row = int(round(100.0 * ROWS_PER_SECOND))
    band = cadence[:, :, 96:160].mean(axis=2)  # (panel, row) power over the burst's band
    assert band[3, row] > 2.0
    assert band[3, row + 40] < 0.5 and band[3, row - 40] < 0.5  # short in time
    assert cadence[3, row, 96:160].mean() > 2.0 + cadence[3, row, :20].mean()  # wide, but not everywhere
    for panel in (0, 1, 2, 4, 5):
        assert band[panel].max() < 0.6, panel


def test_linear_needle_is_continuous_through_the_off_gaps():
    drift = 0.3  # Hz/s
    spec = _spec(needle=_needle("linear", f_start=30.0, drift_rate=drift), slew=25.0)
    cadence = make_cadence(spec)
    times = spec.panel_times()
    fits = {p: fit_line(times[p], ridge(cadence[p])) for p in ON_PANELS}
    for panel, (slope, _) in fits.items():
        assert slope == pytest.approx(drift * CHANNELS_PER_HZ, rel=0.03), panel
    slope0, intercept0 = fits[0]
    for panel in (2, 4):
        start = spec.panel_starts()[panel]
        measured = fits[panel][1] + fits[panel][0] * start
        extrapolated = intercept0 + slope0 * start  # drift x elapsed time, OFF gaps included
        assert measured == pytest.approx(extrapolated, abs=1.0), panel
        # Sanity: ignoring the OFF panels and slews would put it tens of channels elsewhere.
        on_time_only = intercept0 + slope0 * (panel // 2) * spec.frame.panel_seconds
        assert abs(measured - on_time_only) > 30
    for panel in OFF_PANELS:
        assert abs(excess_along(cadence[panel].astype(np.float32), source_track(spec)[panel], 2.0)) < 0.2


def test_squared_needle_accelerates():
    accel = 4e-4  # Hz/s^2
    spec = _spec(needle=_needle("squared", f_start=20.0, drift_rate=accel))
    cadence = make_cadence(spec)
    times = spec.panel_times()
    slopes = {p: fit_line(times[p], ridge(cadence[p]))[0] for p in ON_PANELS}
    assert slopes[0] < slopes[2] < slopes[4]
    for panel in (2, 4):  # d/dt (a t^2 / 2) = a t at the middle of the panel
        assert slopes[panel] == pytest.approx(accel * times[panel].mean() * CHANNELS_PER_HZ, rel=0.1)


def test_sine_needle_is_s_shaped():
    period, amplitude = 200.0, 40.0
    spec = _spec(needle=_needle("sine", f_start=128.0, drift_rate=0.0, period=period, amplitude=amplitude))
    cadence = make_cadence(spec)
    for panel in ON_PANELS:
        channels = ridge(cadence[panel])
        smooth = np.convolve(channels, np.ones(9) / 9, mode="valid")
        steps = np.sign(np.diff(smooth[::10]))
        assert (steps > 0).any() and (steps < 0).any(), panel  # goes up and down: not monotonic
        assert np.ptp(channels) == pytest.approx(2 * amplitude * CHANNELS_PER_HZ, abs=3.0)


def test_pulsed_needle_switches_on_and_off_in_time():
    period, pulse_width = 60.0, 15.0
    spec = _spec(needle=_needle("pulsed", f_start=100.0, drift_rate=0.1, period=period, pulse_width=pulse_width,
                                snr=200.0))
    cadence = make_cadence(spec).astype(np.float32)
    track = source_track(spec)
    for panel in ON_PANELS:
        channels = np.clip(np.rint(track[panel]).astype(int), 0, 255)
        power = cadence[panel][np.arange(cadence.shape[1]), channels]
        power = np.convolve(power, np.ones(5) / 5, mode="same")  # pulses last ~14 rows; noise less
        on = power > 0.5 * power.max()
        assert 0.1 < on.mean() < 0.5, (panel, on.mean())
        # one rise per period
        rises = np.count_nonzero(np.diff(on.astype(int)) == 1)
        expected = spec.frame.panel_seconds / period
        assert abs(rises - expected) <= 1.5, (panel, rises, expected)


def test_broad_needle_is_wider_than_a_narrow_one():
    def measured_fwhm(family, width):
        spec = _spec(needle=_needle(family, f_start=128.0, drift_rate=0.0, width=width, snr=100.0))
        profile = make_cadence(spec)[0].astype(np.float32).mean(axis=0)  # zero drift: average over time
        profile -= np.median(profile)
        return np.count_nonzero(profile > 0.5 * profile.max())

    narrow, broad = measured_fwhm("linear", 6.0), measured_fwhm("broad", 60.0)
    assert broad == pytest.approx(60.0 * CHANNELS_PER_HZ, rel=0.25)
    assert broad > 4 * narrow


def test_missing_on_panel_has_no_needle_but_the_others_do():
    needle = dataclasses.replace(_needle("linear", f_start=60.0, drift_rate=0.2, snr=60.0), missing_on_panel=2)
    spec = _spec(needle=needle)
    cadence = make_cadence(spec).astype(np.float32)
    track = source_track(spec)
    excess = [excess_along(cadence[p], track[p], 2.0) for p in range(6)]
    assert excess[0] > 1.0 and excess[4] > 1.0
    assert abs(excess[2]) < 0.2


def test_drawn_needles_stay_in_band_and_respect_ranges():
    config = CadenceConfig()
    ranges = config.ranges
    inside, families = [], set()
    for index in range(300):
        spec = draw_cadence_spec(np.random.default_rng([5, index]), target=1, config=config)
        needle = spec.needle
        families.add(needle.shape.family)
        assert config.snr[0] <= needle.snr <= config.snr[1]
        if needle.shape.family in ("linear", "pulsed", "broad"):
            assert ranges.drift_hz_s[0] <= abs(needle.shape.drift_rate) <= ranges.drift_hz_s[1]
        track = needle_track(spec)
        present = track[list(needle.present_panels)]
        inside.append(np.mean((present >= 0) & (present <= spec.frame.fchans - 1)))
        assert spec.rfi == () or all(r.kind in ("zero_drift", "drifting", "burst") for r in spec.rfi)
    assert families == {"linear", "squared", "sine", "pulsed", "broad"}
    assert np.mean(inside) > 0.97 and np.min(inside) > 0.75


def test_negative_cadences_have_rfi_but_no_needle():
    specs = [draw_cadence_spec(np.random.default_rng([6, i]), target=0) for i in range(50)]
    assert all(spec.needle is None for spec in specs)
    counts = [len(spec.rfi) for spec in specs]
    assert min(counts) == 0 and max(counts) >= 4  # random count, including none
    kinds = {rfi.kind for spec in specs for rfi in spec.rfi}
    assert kinds == {"zero_drift", "drifting", "burst"}
    assert np.isnan(needle_track(specs[0])).all()


def test_mean_along_ignores_out_of_band_tracks():
    panel = np.ones((273, 256), np.float32)
    assert np.isnan(mean_along(panel, np.full(273, 300.0)))
