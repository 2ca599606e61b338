"""``python -m tfseti.sensitivity`` end to end on a small setigen cadence (16384 channels, 16
integrations, chi^2 noise): planted intensities follow setigen's SNR convention at the data's
own noise, the files are never changed, bright signals are all found by the classical search and
signals far below its threshold never are, completeness rises with SNR beyond its intervals,
SNR50 / SNR90 come with bootstrap intervals in sensitivity.json, the log's table and the scan's
page, ON+OFF controls are rejected, an interrupted run resumes to the same tables, and bad arguments
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
    faint = on[on.snr <= 6]                         # SNR50 is ~11 here
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
    # sensitivity.json too: its bootstrap intervals come from --seed alone
    for name in ("completeness.csv", "controls.csv", "sensitivity.json"):
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
    (["--bootstrap", "20"], "--bootstrap"),
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


def test_thresholds_carry_their_intervals_into_the_log(run, cadence, tmp_path, capsys):
    doc = json.load(open(os.path.join(run, "sensitivity.json")))
    assert doc["bootstrap"]["resamples"] == 1000 and doc["bootstrap"]["seed"] == 3
    lo, hi = doc["draws"]["snr"]
    for row in doc["snr_thresholds"]:
        for d in ("classical", "dedoppler"):
            e = row[d]
            for key in ("snr50", "snr90"):
                if e[key] is None:             # outside the planted range: said so, no number
                    assert e[f"{key}_bound"] in ("below", "above", None)
                    continue
                assert lo <= e[key] <= hi
                # an interval end outside the planted range is "above" / "below", not a number
                low = e[f"{key}_lo95"] if e[f"{key}_lo95"] is not None else lo
                high = e[f"{key}_hi95"] if e[f"{key}_hi95"] is not None else hi
                assert low <= e[key] <= high, (row["drift_lo"], d, key, e)
                assert e[f"{key}_lo95_bound"] in (None, "below") and e[f"{key}_hi95_bound"] in (None, "above")
    overall = doc["snr_thresholds"][-1]["classical"]
    assert overall["snr90_lo95"] < overall["snr90"] < overall["snr90_hi95"]
    # the figures the page shows, one per drift bin, named in sensitivity.json
    assert doc["figures"]["by_drift"] == [f"completeness_drift_{j}.png" for j in range(3)]
    for name in doc["figures"]["by_drift"]:
        assert open(os.path.join(run, name), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    # a rerun (every chunk done) prints the table: value [lo, hi] per detector and drift bin
    capsys.readouterr()
    assert main(["--cadence", ",".join(cadence), "--out", run, *ARGS]) == 0
    log = capsys.readouterr().out
    from tfseti.sensitivity.stats import format_interval

    cell = format_interval(overall, "snr90", (lo, hi))
    assert "| classical SNR50 [lo, hi] | classical SNR90 [lo, hi] |" in log
    assert f"| all | 60 | {format_interval(overall, 'snr50', (lo, hi))} | {cell} |" in log


def _page_cells(page: str) -> dict:
    import re

    cells = {}
    for m in re.finditer(r'<tr data-drift="([^"]*)">(.*?)</tr>', page):
        for c in re.finditer(r'<td data-detector="(\w+)" data-key="(\w+)" data-value="([^"]*)" '
                             r'data-value-bound="([^"]*)" data-lo95="([^"]*)" data-lo95-bound="([^"]*)" '
                             r'data-hi95="([^"]*)" data-hi95-bound="([^"]*)">', m.group(2)):
            cells[(m.group(1), c.group(1), c.group(2))] = c.groups()[2:]
    return cells


def test_the_scans_page_shows_the_sensitivity_run(run, cadence, tmp_path):
    import re
    import shutil

    from tfseti.scan.__main__ import main as scan
    from tfseti.sensitivity.report import drift_label

    out = str(tmp_path / "scan")
    assert scan(["--cadence", ",".join(cadence), "--out", out, "--no-progress"]) == 0
    assert 'id="sensitivity"' not in open(os.path.join(out, "index.html")).read()
    # the contract: a sensitivity run in OUT/sensitivity is on the page the scan writes
    shutil.copytree(run, os.path.join(out, "sensitivity"))
    assert scan(["--cadence", ",".join(cadence), "--out", out, "--no-progress"]) == 0
    page = open(os.path.join(out, "index.html")).read()
    assert 'id="sensitivity"' in page and "did not search" not in page
    images = re.findall(r'<img src="(png/sensitivity_[^"]+)"', page)
    assert len(images) == 3
    for src in images:             # copied beside the page, the run's own figures
        name = src.split("png/sensitivity_", 1)[1]
        assert open(os.path.join(out, src), "rb").read() == open(os.path.join(run, name), "rb").read()
    doc = json.load(open(os.path.join(run, "sensitivity.json")))
    cells = _page_cells(page)
    assert len(cells) == len(doc["snr_thresholds"]) * 2 * 2
    for row in doc["snr_thresholds"]:
        for d in ("classical", "dedoppler"):
            for key in ("snr50", "snr90"):
                shown = cells[(drift_label(row), d, key)]
                for text, suffix in zip(shown[0::2], ("", "_lo95", "_hi95")):
                    value = row[d][f"{key}{suffix}"]
                    assert (text == "null") if value is None else float(text) == value
                assert list(shown[1::2]) == [row[d][f"{key}{s}_bound"] or ""
                                             for s in ("", "_lo95", "_hi95")]
    alarms = re.search(r'<tr data-detector="classical"><td>classical</td><td>(\d+)</td>'
                       r'<td data-metric="per_mhz" data-value="([^"]+)">', page)
    assert int(alarms.group(1)) == doc["false_alarms"]["classical"]["count"]
    assert float(alarms.group(2)) == doc["false_alarms"]["classical"]["per_mhz"]


def test_a_sensitivity_run_of_other_files_is_flagged_and_a_missing_one_refused(run, tmp_path):
    from tfseti.scan.page import write_page

    out = str(tmp_path / "page")
    os.makedirs(out)
    with open(os.path.join(out, "scan.json"), "w") as handle:
        json.dump({"cadences": [{"name": "x", "files": ["/elsewhere/x.h5"]}]}, handle)
    page = open(write_page(out, [], sensitivity=run)).read()
    assert 'id="sensitivity"' in page and "did not search" in page
    with pytest.raises(FileNotFoundError, match="sensitivity: no sensitivity.json"):
        write_page(out, [], sensitivity=str(tmp_path))
