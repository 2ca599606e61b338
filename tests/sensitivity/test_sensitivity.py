"""``python -m tfseti.sensitivity`` end to end on a small setigen cadence (16384 channels, 16
integrations, chi^2 noise): planted intensities follow setigen's SNR convention at the data's
own noise, the files are never changed, bright signals are all found by the classical search and
signals far below its threshold never are, completeness rises with SNR beyond its intervals,
ON+OFF controls are rejected, an interrupted run resumes to the same tables, and bad arguments
are one-line refusals that write nothing."""

from __future__ import annotations

import hashlib
import json
import math
import os

import numpy as np
import pandas as pd
import pytest
from harness import once_per_session

from tfseti.sensitivity.__main__ import main
from tfseti.synth.observation import write_observation_cadence

FCHANS = 16384
# A run of 60 ON signals (4 chunks of 18 + 5 controls + 2 empty slots), SNR 2-80 log-uniform.
ARGS = ["--n", "60", "--snr", "2:80", "--drift", "-0.3:0.3", "--width", "1:20", "--bins", "4,3,2",
        "--seed", "3", "--distance-pc", "50"]


def _cadence(root: str) -> list[str]:
    return write_observation_cadence(os.path.join(root, "cad"), fchans=FCHANS, tchans=16,
                                     noise="chi2", seed=1)


@pytest.fixture(scope="module")
def cadence(tmp_path_factory, worker_id):
    return once_per_session(tmp_path_factory, worker_id, "sensitivity_cadence", _cadence)


@pytest.fixture(scope="module")
def run(cadence, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("sens") / "out")
    assert main(["--cadence", ",".join(cadence), "--out", out, *ARGS]) == 0
    return out


def _plantings(out: str) -> pd.DataFrame:
    return pd.read_csv(os.path.join(out, "plantings.csv"))


def _digest(paths) -> list[str]:
    return [hashlib.sha256(open(p, "rb").read()).hexdigest() for p in paths]


def test_levels_follow_setigen_at_the_datas_noise(run, cadence):
    truth = json.load(open(os.path.join(os.path.dirname(cadence[0]), "truth.json")))
    t = _plantings(run)
    # the slot noise estimated from the data is the noise setigen drew
    np.testing.assert_allclose(t.noise_std, truth["noise_std"], rtol=0.04)
    np.testing.assert_allclose(t.intensity, t.snr * t.noise_std / math.sqrt(16), rtol=1e-8)


def test_render_keeps_the_power_of_the_snr():
    from tfseti.sensitivity.plant import Clock, Signal, render

    clock = Clock(starts=(0.0, 300.0, 600.0, 900.0, 1200.0, 1500.0), tsamp=18.25, rows=16)
    foff_hz = -2.79
    for width, drift in ((0.5, 0.0), (2.0, 0.0), (1.0, 0.4)):
        s = Signal(index=0, kind="on", family="linear", snr=20.0, drift_hz_s=drift, width_hz=width,
                   channel=100.3, slot=(0, 512), noise_std=1.0, intensity=5.0, rate=drift)
        patch = render(s, clock, 0, foff_hz)
        # every integration holds the power of a one-channel line of the intensity, wherever
        # the line falls and however far it moves within the integration
        expected = 5.0 * max(1.0, 1.0645 * width / abs(foff_hz))
        np.testing.assert_allclose(patch.values.sum(axis=1), expected, rtol=0.03)
    # a drifting line moves by drift * tsamp per integration, to lower channels for foff < 0
    centres = (patch.values * np.arange(patch.lo, patch.hi)).sum(axis=1) / patch.values.sum(axis=1)
    np.testing.assert_allclose(np.diff(centres), 0.4 * 18.25 / foff_hz, rtol=0.02)


def test_bright_signals_are_found_and_faint_ones_are_not(run):
    t = _plantings(run)
    on = t[t.kind == "on"]
    # |drift| below half the per-file drift step reads as 0, which the event filter drops
    # (turboSETI's check_zero_drift=False): bright but undetectable by events, by design
    resolution = 2.7939677238464355 / (15 * 18.253611008)
    bright = on[(on.snr >= 30) & (on.drift_hz_s.abs() > resolution)]
    assert len(bright) >= 8 and bright.found_classical.all(), bright
    assert on[on.snr >= 30].found_dedoppler.all()
    faint = on[on.snr <= 6]                         # SNR50 is ~14 here
    assert len(faint) >= 6
    assert not faint.found_classical.any() and not faint.found_dedoppler.any()
    found = on[on.found_classical]
    assert found.event_snr.min() >= 10          # the scan's hit threshold, as the events saw it


def test_completeness_rises_with_snr(run):
    table = pd.read_csv(os.path.join(run, "completeness.csv"))
    assert len(table) == 4 * 3 * 2                                      # every bin, one family
    assert table.planted.sum() == 60
    assert table.found_model.isna().all()                               # no model: empty cells
    by_snr = table.groupby(["snr_lo"])[["planted", "found_classical"]].sum().sort_index()
    from tfseti.sensitivity.stats import wilson

    intervals = [wilson(int(k), int(n)) for n, k in by_snr.to_numpy()]
    fractions = by_snr.found_classical / by_snr.planted
    for (lo_a, hi_a), (lo_b, hi_b), f_a in zip(intervals, intervals[1:], fractions):
        assert hi_b >= f_a            # never a significant drop from one SNR bin to the next
    assert intervals[-1][0] > intervals[0][1]     # the brightest bin above the faintest, significantly
    doc = json.load(open(os.path.join(run, "sensitivity.json")))
    overall = doc["snr_thresholds"][-1]["classical"]
    assert 5 < overall["snr50"] < overall["snr90"] <= 80
    limits = doc["limits"]["classical"]
    assert limits["snr_min"] == overall["snr90"] and limits["eirp_min_w"] > 0
    assert os.path.getsize(os.path.join(run, "completeness.png")) > 1000


def test_on_off_controls_are_rejected(run):
    t = _plantings(run)
    controls = t[t.kind == "control"]
    assert len(controls) == 20 and (controls.snr > 20).sum() >= 5
    assert not controls.found_classical.any() and not controls.found_dedoppler.any()
    doc = json.load(open(os.path.join(run, "sensitivity.json")))
    assert doc["controls"]["classical"]["rejected"] == 1.0
    # noise-only slots: no event, no hit window at the scan's thresholds
    alarms = doc["false_alarms"]
    assert alarms["untouched_mhz"] > 0 and alarms["classical"]["count"] == 0
    assert alarms["classical"]["hi95"] > 0                     # an upper limit, not a zero


def test_files_are_never_changed(cadence, tmp_path):
    before = _digest(cadence)
    assert main(["--cadence", ",".join(cadence), "--out", str(tmp_path / "o"), "--n", "5",
                 "--snr", "200:300", "--drift", "-0.1:0.1"]) == 0
    assert _digest(cadence) == before


def test_an_interrupted_run_resumes_to_the_same_tables(run, cadence, tmp_path, monkeypatch):
    import tfseti.sensitivity.run as sensitivity_run

    out = str(tmp_path / "resumed")
    real, calls = sensitivity_run.run_chunk, []

    def dies_on_the_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(sensitivity_run, "run_chunk", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        main(["--cadence", ",".join(cadence), "--out", out, *ARGS])
    assert sorted(os.listdir(os.path.join(out, "chunks", "synth_0_ON"))) == [
        "chunk_00000.json", "chunk_00001.json"]
    assert not os.path.exists(os.path.join(out, "completeness.csv"))
    monkeypatch.setattr(sensitivity_run, "run_chunk", real)
    assert main(["--cadence", ",".join(cadence), "--out", out, *ARGS]) == 0
    for name in ("completeness.csv", "controls.csv"):
        assert open(os.path.join(out, name)).read() == open(os.path.join(run, name)).read()
    a, b = _plantings(out), _plantings(run)
    pd.testing.assert_frame_equal(a, b)
    # another run's arguments into the same folder are refused, and change nothing
    assert main(["--cadence", ",".join(cadence), "--out", out, *ARGS, "--seed", "4"]) == 2


@pytest.mark.parametrize("extra, message", [
    (["--snr", "50:5"], "--snr"),
    (["--families", "linear,spiral"], "spiral"),
    (["--drift=0.2:-0.2"], "--drift"),
    (["--controls", "0.95"], "--controls"),
    (["--drift", "-20:20"], "slots"),                # a track longer than the band
    (["--sefd", "-1"], "--sefd"),
])
def test_bad_arguments_are_one_line_refusals_that_write_nothing(cadence, tmp_path, capsys, extra,
                                                                message):
    out = tmp_path / "never"
    assert main(["--cadence", ",".join(cadence), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and message in err, err
    assert not out.exists()


def test_a_missing_file_is_refused(cadence, tmp_path, capsys):
    paths = [*cadence[:5], str(tmp_path / "gone.h5")]
    assert main(["--cadence", ",".join(paths), "--out", str(tmp_path / "o")]) == 2
    assert "gone.h5" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
