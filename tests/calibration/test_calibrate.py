"""``tfseti.calibrate``: temperature / Platt fits on synthetic logits, ECE and reliability bins,
monotonicity, refusal of non-finite inputs and strict JSON (numpy only: no TensorFlow)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from tfseti import calibrate
from tfseti.calibrate import CalibrationError, Calibrator
from tfseti.io.atomic import write_json
from tfseti.metrics import auc


def synthetic(n: int, seed: int, slope: float, intercept: float = 0.0, spread: float = 3.0):
    """Model log-odds ``z`` and labels drawn from the true probability sigmoid(slope*z + b)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, spread, n)
    y = (rng.random(n) < calibrate.sigmoid(slope * z + intercept)).astype(np.int64)
    return z, y


def strict_loads(text: str):
    def refuse(name):
        raise AssertionError(f"non-strict JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def test_temperature_fit_recovers_a_known_temperature():
    z, y = synthetic(20000, seed=1, slope=1 / 2.5)   # overconfident by T = 2.5
    candidate = calibrate.fit_temperature(z, y)
    assert candidate.calibrator.temperature == pytest.approx(2.5, rel=0.05)
    assert candidate.converged and not candidate.at_bound
    chosen, candidates = calibrate.choose(z, y)
    assert chosen.method == "temperature"   # the intercept does not earn its place
    assert candidates["platt"].calibrator.intercept == pytest.approx(0.0, abs=0.08)


def test_platt_is_chosen_for_a_shifted_model_and_recovers_it():
    z, y = synthetic(20000, seed=2, slope=0.5, intercept=-1.5)
    chosen, candidates = calibrate.choose(z, y)
    assert chosen.method == "platt"
    assert chosen.slope == pytest.approx(0.5, rel=0.06)
    assert chosen.intercept == pytest.approx(-1.5, abs=0.1)
    assert candidates["platt"].log_loss < candidates["temperature"].log_loss


def test_calibration_lowers_ece_on_held_out_rows_of_a_miscalibrated_set():
    # A model that is overconfident and too positive (as the issue measured: mean 0.54 on 20 %).
    z, y = synthetic(8000, seed=3, slope=0.4, intercept=-1.2)
    fit_rows, test_rows = slice(0, 4000), slice(4000, None)
    result = calibrate.fit(z[fit_rows], y[fit_rows])
    before = calibrate.ece(y[test_rows], calibrate.sigmoid(z[test_rows]))
    after = calibrate.ece(y[test_rows], result.calibrator.from_logits(z[test_rows]))
    assert before > 0.1 and after < 0.03 and after < before / 4
    assert result.after["ece"] < result.before["ece"]
    assert result.cross_fitted["ece"] < 0.03
    assert result.cross_fitted["scheme"] == "5 random splits of the rows (seed 0)"


def test_apply_is_strictly_increasing_so_the_auc_is_unchanged():
    z, y = synthetic(3000, seed=4, slope=0.7, intercept=0.8)
    for calibrator in (calibrate.choose(z, y)[0], Calibrator("temperature", 1 / 3.0),
                       Calibrator("platt", 2.0, -4.0)):
        ordered = np.sort(z)
        out = calibrator.from_logits(ordered)
        assert np.all(np.diff(out) >= 0)
        assert auc(y, calibrator.from_logits(z)) == pytest.approx(auc(y, z), abs=1e-12)
        # from probabilities: the same map through their log-odds
        np.testing.assert_allclose(calibrator(calibrate.sigmoid(z)), calibrator.from_logits(z),
                                   rtol=1e-9, atol=1e-12)


def test_ece_and_reliability_bins_by_hand():
    p = np.array([0.05, 0.05, 0.5, 0.5, 0.5, 1.0])
    y = np.array([0, 1, 1, 1, 0, 1])
    table = calibrate.reliability(y, p, bins=15)
    assert len(table) == 15 and sum(row["count"] for row in table) == 6
    assert table[0] == {"lower": 0.0, "upper": 1 / 15, "count": 2, "mean_probability": 0.05,
                        "positive_fraction": 0.5}
    assert table[7]["count"] == 3 and table[7]["positive_fraction"] == pytest.approx(2 / 3)
    assert table[14]["count"] == 1   # p = 1 falls in the last (closed) bin
    assert table[3]["mean_probability"] is None and table[3]["positive_fraction"] is None
    expected = (2 / 6) * 0.45 + (3 / 6) * abs(2 / 3 - 0.5) + (1 / 6) * 0.0
    assert calibrate.ece(y, p) == pytest.approx(expected)
    assert calibrate.ECE_BINS == 15


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_inputs_are_refused(bad):
    z, y = synthetic(50, seed=5, slope=1.0)
    z[7] = bad
    for call in (lambda: calibrate.fit(z, y), lambda: calibrate.fit_temperature(z, y),
                 lambda: calibrate.fit_platt(z, y), lambda: calibrate.choose(z, y),
                 lambda: Calibrator("platt", 1.0, 0.0).from_logits(z)):
        with pytest.raises(CalibrationError, match=r"1 of 50 values are NaN or infinite "
                                                   r"\(the first at position 7"):
            call()
    with pytest.raises(CalibrationError, match="NaN or infinite"):
        calibrate.ece(y, np.where(np.arange(50) == 3, bad, 0.5))
    with pytest.raises(CalibrationError, match="NaN or infinite"):
        Calibrator("temperature", 2.0)(np.full(3, bad))
    with pytest.raises(CalibrationError, match="slope"):
        Calibrator("temperature", bad)
    with pytest.raises(CalibrationError, match="intercept"):
        Calibrator("platt", 1.0, bad)


def test_other_bad_inputs_are_refused():
    z, y = synthetic(20, seed=6, slope=1.0)
    with pytest.raises(CalibrationError, match="value 2.0, expected 0 or 1"):
        calibrate.fit(z, np.where(np.arange(20) == 4, 2, y))
    with pytest.raises(CalibrationError, match="19 values for 20 scores"):
        calibrate.fit(z, y[:-1])
    with pytest.raises(CalibrationError, match="outside"):
        calibrate.log_loss(y, np.full(20, 1.5))
    with pytest.raises(CalibrationError, match="decreasing map"):
        Calibrator("platt", -1.0, 0.0)
    with pytest.raises(CalibrationError, match="no intercept"):
        Calibrator("temperature", 1.0, 0.5)
    with pytest.raises(CalibrationError, match="no rows"):
        calibrate.choose([], [])
    with pytest.raises(CalibrationError, match="x.json: format 'other'"):
        Calibrator.from_dict({"format": "other", "method": "platt", "slope": 1.0}, "x.json")
    with pytest.raises(CalibrationError, match="x.json: calibrator slope None"):
        Calibrator.from_dict({"method": "platt"}, "x.json")


def test_separable_and_useless_scores_stay_finite():
    z = np.concatenate([np.linspace(-5, -1, 30), np.linspace(1, 5, 30)])
    y = np.repeat([0, 1], 30)
    result = calibrate.fit(z, y, groups=np.tile([0, 1], 30))
    assert math.isfinite(result.calibrator.slope) and math.isfinite(result.calibrator.intercept)
    assert result.cross_fitted["scheme"] == "leave one fold out over folds [0, 1]"
    # Scores that rank backwards: the slope stops at its lower bound (the map stays increasing).
    backwards = calibrate.fit_temperature(-z, y)
    assert backwards.at_bound and backwards.calibrator.slope == pytest.approx(1e-3)


def test_the_document_is_strict_json_and_reads_back(tmp_path):
    z, y = synthetic(400, seed=7, slope=0.5, intercept=0.5)
    result = calibrate.fit(z, y, groups=np.arange(400) % 3, data={"folds": [0, 1, 2]})
    flips = calibrate.fit(z + 1.0, y, groups=np.arange(400) % 3, data={"folds": [0, 1, 2]})
    path = tmp_path / calibrate.FILE
    # write_json refuses NaN: a non-strict document fails here
    write_json(str(path), calibrate.document({"none": result, "flips": flips}))
    doc = strict_loads(path.read_text())
    assert doc["format"] == calibrate.FORMAT and doc["version"] == calibrate.VERSION
    assert doc["ece_bins"] == 15 and doc["logit_limit"] == 16.0 and "chi2(1) 95 %" in doc["rule"]
    none = doc["modes"]["none"]
    assert none["data"]["rows"] == 400 and none["data"]["positives"] == int(y.sum())
    assert none["data"]["positive_fraction"] == pytest.approx(y.mean())
    assert none["data"]["folds"] == [0, 1, 2]
    assert set(none["candidates"]) == {"temperature", "platt"}
    for key in ("before", "after", "cross_fitted"):
        assert set(none[key]) >= {"ece", "log_loss", "mean_probability", "reliability"}
        assert len(none[key]["reliability"]) == 15
    assert calibrate.calibrators(doc) == {"none": result.calibrator, "flips": flips.calibrator}
    with pytest.raises(CalibrationError, match=r"x.json: format 'other'"):
        calibrate.calibrators({**doc, "format": "other"}, "x.json")
    with pytest.raises(CalibrationError, match=r"x.json \(mode flips\): calibrator slope -1"):
        calibrate.calibrators({**doc, "modes": {"flips": {**doc["modes"]["flips"], "slope": -1}}},
                              "x.json")
    with pytest.raises(CalibrationError, match="no 'modes'"):
        calibrate.calibrators({**doc, "modes": {}}, "x.json")


def test_the_module_imports_no_tensorflow():
    code = ("import sys, tfseti.calibrate, tfseti.train.calibration; "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_recipe_names_the_modes_to_calibrate():
    """``train.calibrate``: which TTA modes get a calibrator (both by default; ``make demo``
    predicts without TTA and fits only ``none``); it changes no fold, so a run may resume with
    another value."""
    from tfseti.config import ConfigError
    from tfseti.demo import DEMO_OVERRIDES
    from tfseti.train.run_config import load_run_config
    from tfseti.train.run_folder import IGNORED_KEYS

    assert load_run_config("cpu").train.calibrate == ("none", "flips")
    assert load_run_config("cpu", list(DEMO_OVERRIDES)).train.calibrate == ("none",)
    assert "train.calibrate" in IGNORED_KEYS
    with pytest.raises(ConfigError, match="did you mean 'flips'"):
        load_run_config("cpu", ['train.calibrate=["flip"]'])
