"""benchmarks/detection.py: the scoring on known numbers, and the whole benchmark end to end at
toy size (``--tiny``: every stage through its real command line; the AUCs mean nothing there)."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("detection", REPO / "benchmarks" / "detection.py")
bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bench     # dataclasses look their module up there
_spec.loader.exec_module(bench)


def test_rank_auc_is_roc_auc_with_ties():
    rng = np.random.default_rng(0)
    pos, neg = rng.integers(0, 5, 30).astype(float), rng.integers(0, 5, 50).astype(float)
    expected = roc_auc_score(np.r_[np.ones(30), np.zeros(50)], np.r_[pos, neg])
    assert bench.rank_auc(pos, neg) == pytest.approx(expected)
    assert np.isnan(bench.rank_auc([], neg))


def test_compare_groups_differences_and_intervals():
    rng = np.random.default_rng(1)
    n = 400
    truth = pd.DataFrame({"target": (np.arange(n) % 4 == 0).astype(int)})
    truth["family"] = np.where(truth.target == 1, np.where(np.arange(n) % 8 == 0, "linear", "sine"), None)
    truth["snr"] = np.where(truth.target == 1, np.where(np.arange(n) % 3 == 0, 10.0, 40.0), np.nan)
    signal = truth.target.to_numpy() * (1 + (truth.snr.fillna(0).to_numpy() > 20))
    scores = {"model": signal + rng.normal(0, 1.0, n), "weak": signal * 0.3 + rng.normal(0, 1.0, n)}
    rows = bench.compare(truth, scores, bootstrap=200, seed=0)
    assert [(r["kind"], r["group"]) for r in rows] == [
        ("overall", "all"), ("family", "linear"), ("family", "sine"), ("snr", "10"), ("snr", "40")]
    for row in rows:
        mask = np.ones(n, bool) if row["kind"] == "overall" else None
        assert row["n_neg"] == int((truth.target == 0).sum())
        assert row["diff_weak"] == pytest.approx(row["auc_model"] - row["auc_weak"])
        low, high = row["ci_weak"]
        assert low <= row["diff_weak"] <= high
        del mask
    overall = rows[0]
    positives = truth.target == 1
    assert overall["auc_model"] == pytest.approx(roc_auc_score(truth.target, scores["model"]))
    assert overall["n_pos"] == int(positives.sum())
    assert bench.verdict(rows, list(scores)) == []
    flipped = bench.verdict(bench.compare(truth, {"model": scores["weak"], "strong": scores["model"]},
                                          0, 0), ["model", "strong"])
    assert flipped and all("model" in line and "strong" in line for line in flipped)
    table = bench.format_table(rows, list(scores))
    assert "snr 40" in table and "family sine" in table


@pytest.mark.slow
def test_tiny_benchmark_runs_every_stage(tmp_path, capsys):
    out = tmp_path / "det"
    assert bench.main(["--tiny", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "== detection benchmark ==" in printed and "training wall time" in printed
    results = json.loads((out / "results.json").read_text())
    kinds = {row["kind"] for row in results["rows"]}
    assert kinds == {"overall", "family", "snr"}
    for row in results["rows"]:
        assert {"auc_model", "auc_two_of_three", "diff_panel_maxima", "ci_straight_line"} <= set(row)
    assert set(results["classical_background"]) == set(bench.SCORES)
    settings = json.loads((out / "settings.json").read_text())
    assert settings["tiny"] and any("tfseti.train" in " ".join(s["argv"]) for s in settings["stages"])
    # the test set holds families the train set lacks, at the fixed SNR bins
    truth = pd.read_csv(out / "data" / "test_set" / "truth.csv")
    assert set(truth.snr.dropna()) <= set(bench.TEST_SNRS)
    train_truth = pd.read_csv(out / "data" / "train_set" / "truth.csv")
    assert set(train_truth.family.dropna()) <= set(bench.TRAIN_FAMILIES)
