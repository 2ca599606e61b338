"""The model path of ``python -m tfseti.sensitivity``: the window stage's model (here the scan
tests' "oracle" SavedModel, whose probability is the classical score of the snippet it is given:
an answer known in advance) is run on the planted windows, its detections are matched and
tabled next to the classical searches', and ON+OFF controls do not pass it."""

from __future__ import annotations

import importlib.util
import json
import os

import pandas as pd
import pytest
from harness import once_per_session

from tfseti.sensitivity.__main__ import main
from tfseti.synth.observation import write_observation_cadence

HELPERS = os.path.join(os.path.dirname(__file__), os.pardir, "scan", "scan_helpers.py")


def _helpers():
    spec = importlib.util.spec_from_file_location("scan_helpers", HELPERS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def oracle(tmp_path_factory, worker_id):
    return _helpers().shared_oracle(tmp_path_factory, worker_id)


@pytest.fixture(scope="module")
def cadence(tmp_path_factory, worker_id):
    return once_per_session(tmp_path_factory, worker_id, "sensitivity_model_cadence",
                            lambda root: write_observation_cadence(root, fchans=8192, tchans=16,
                                                                   noise="chi2", seed=5))


def test_the_model_is_measured_next_to_the_classical_search(cadence, oracle, tmp_path):
    out = str(tmp_path / "out")
    assert main(["--cadence", ",".join(cadence), "--out", out, "--model", oracle, "--n", "6",
                 "--snr", "40:60", "--drift", "-0.2:0.2", "--width", "2:8", "--bins", "2,2,1"]) == 0
    t = pd.read_csv(os.path.join(out, "plantings.csv"))
    on, controls = t[t.kind == "on"], t[t.kind == "control"]
    assert len(on) == 6 and len(controls) >= 1
    assert on.found_model.all() and (on.window_probability > 0.5).all()
    assert (on.found_both == (on.found_classical & on.found_model)).all()
    assert not controls.found_model.any()
    table = pd.read_csv(os.path.join(out, "completeness.csv"))
    assert table.found_model.sum() == 6 and table.found_both.sum() == on.found_both.sum()
    doc = json.load(open(os.path.join(out, "sensitivity.json")))
    assert doc["detectors"] == ["classical", "dedoppler", "model", "both"]
    assert doc["false_alarms"]["model"]["count"] == 0
    assert doc["snr_thresholds"][-1]["model"]["snr90_bound"] == "below"     # all found


@pytest.mark.slow
def test_the_benchmark_measures_a_trained_run_folder(tmp_path_factory, worker_id, tmp_path, capsys):
    """``benchmarks/sensitivity.py --model RUN``: a run folder as the trainer writes it (every
    fold's SavedModel, ensembled as the scan does) is measured next to the classical searches,
    and the table carries the model's columns with intervals."""
    from report.report_helpers import shared_tiny_run

    from benchmarks.sensitivity import main as bench

    run = shared_tiny_run(tmp_path_factory, worker_id)["run"]
    out = str(tmp_path / "bench")
    assert bench(["--out", out, "--fchans", "8192", "--n", "4", "--model", run]) == 0
    doc = json.load(open(os.path.join(out, "sensitivity", "sensitivity.json")))
    assert doc["detectors"] == ["classical", "dedoppler", "model", "both"]
    assert doc["settings"] and json.load(open(os.path.join(out, "sensitivity", "run.json")))["models"] \
        == [os.path.abspath(os.path.join(run, f"fold{k}", "saved_model")) for k in range(2)]
    t = pd.read_csv(os.path.join(out, "sensitivity", "plantings.csv"))
    assert t.found_model.notna().all() and t.window_probability.between(0, 1).all()
    table = open(os.path.join(out, "table.md")).read()
    assert "| model SNR50 [lo, hi] | model SNR90 [lo, hi] |" in table
    assert table.split("\n")[0] in capsys.readouterr().out
