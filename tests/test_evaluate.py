"""``tfseti.evaluate``: truth reading and its errors, a submission matched to the truth id by id,
and the paired, stratified bootstrap table on small hand-made tables with known AUCs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from tfseti import evaluate as ev
from tfseti.evaluate import EvaluationError

TRUTH = """id,target,split,index,family,snr
a,1,test,0,linear,10
b,1,test,1,sine,20
c,0,test,2,,
d,0,test,3,,
e,1,train,0,linear,10
f,0,train,1,,
"""


@pytest.fixture
def truth_file(tmp_path):
    path = tmp_path / "truth.csv"
    path.write_text(TRUTH)
    return path


def test_read_truth_by_split(truth_file):
    test = ev.read_truth(truth_file, "test")
    assert list(test["id"]) == ["a", "b", "c", "d"] and list(test.index) == [0, 1, 2, 3]
    assert list(test["family"]) == ["linear", "sine", "", ""] and test["snr"].isna().sum() == 2
    assert list(ev.read_truth(truth_file, "train")["id"]) == ["e", "f"]
    assert list(ev.read_truth(truth_file, exclude_split="test")["id"]) == ["e", "f"]
    assert len(ev.read_truth(truth_file)) == 6


@pytest.mark.parametrize("text, message", [
    ("id,target,split,family\na,1,test,linear\n", r"missing column\(s\) \['snr'\]"),
    ("id,target,family,snr\na,1,linear,10\n", r"missing column\(s\) \['split'\]"),
    ("id,target,split,family,snr\na,2,test,linear,10\n", r"'target' must be 0 or 1, got '2'"),
    ("id,target,split,family,snr\na,1,test,linear,10\na,0,test,,\n", "id 'a' appears more than once"),
    ("id,target,split,family,snr\na,1,train,linear,10\n", "no row of split 'test'"),
    ("", "cannot parse csv"),
])
def test_truth_errors_name_the_file(tmp_path, text, message):
    path = tmp_path / "truth.csv"
    path.write_text(text)
    with pytest.raises(EvaluationError, match=message) as caught:
        ev.read_truth(path, "test")
    assert str(caught.value).startswith(str(path))
    with pytest.raises(EvaluationError, match="truth file not found"):
        ev.read_truth(tmp_path / "nothing.csv")


def test_submission_matched_by_id_in_truth_order(truth_file):
    truth = ev.read_truth(truth_file, "test")
    table = pd.DataFrame({"id": ["d", "c", "b", "a"], "target": [0.1, 0.2, 0.3, 0.4]})
    np.testing.assert_array_equal(ev.align_scores(truth, table), [0.4, 0.3, 0.2, 0.1])
    assert ev.score(truth, ev.align_scores(truth, table)) == 1.0


@pytest.mark.parametrize("ids, values, message", [
    (["a", "b", "c"], [0.1, 0.2, 0.3], r"1 id\(s\) of the truth missing \(e.g. 'd'\)"),
    (["a", "b", "c", "d", "z"], [0.1] * 5, r"1 id\(s\) not in the truth \(e.g. 'z'\)"),
    (["a", "b", "c", "d", "d"], [0.1] * 5, "id 'd' appears more than once"),
    (["a", "b", "c", "d"], [0.1, np.nan, 0.3, 0.4], r"1 score\(s\) in 'target' not a finite number "
                                                    r"\(e.g. id 'b': 'nan'\)"),
    (["a", "b", "c", "d"], [0.1, np.inf, 0.3, 0.4], "not a finite number"),
])
def test_submission_errors(truth_file, tmp_path, ids, values, message):
    truth = ev.read_truth(truth_file, "test")
    path = tmp_path / "submission.csv"
    pd.DataFrame({"id": ids, "target": values}).to_csv(path, index=False)
    with pytest.raises(EvaluationError, match=message) as caught:
        ev.read_scores(path, truth)
    assert str(caught.value).startswith(str(path))


def test_submission_without_the_column(truth_file):
    truth = ev.read_truth(truth_file, "test")
    with pytest.raises(EvaluationError, match="sub: no column 'probability'"):
        ev.align_scores(truth, pd.DataFrame({"id": ["a"], "target": [1.0]}), "probability", "sub")


def _table():
    """6 positives (linear x3 at SNR 10, sine x3 at SNR 40) and 6 negatives."""
    return pd.DataFrame({
        "id": list("abcdefghijkl"),
        "target": [1] * 6 + [0] * 6,
        "family": ["linear"] * 3 + ["sine"] * 3 + [""] * 6,
        "snr": [10.0] * 3 + [40.0] * 3 + [np.nan] * 6})


def test_exact_aucs_by_group():
    truth = _table()
    # model: linear needles above every negative, sine needles below every negative
    model = np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.05, 0.3, 0.4, 0.5, 0.35, 0.45, 0.55])
    flat = np.r_[np.full(6, 0.5), np.full(6, 0.5)]           # ties everywhere: AUC 0.5
    rows = ev.compare(truth, {"model": model, "flat": flat}, n_boot=0)
    by = {ev.label(r): r for r in rows}
    assert list(by) == ["all", "family linear", "family sine", "snr 10", "snr 40"]
    assert by["family linear"]["auc_model"] == 1.0 and by["family sine"]["auc_model"] == 0.0
    assert by["snr 10"]["auc_model"] == 1.0 and by["snr 40"]["auc_model"] == 0.0
    assert by["all"]["auc_model"] == pytest.approx(roc_auc_score(truth.target, model)) == 0.5
    assert all(r["auc_flat"] == 0.5 for r in rows)
    assert by["family linear"]["diff_flat"] == pytest.approx(0.5)
    assert by["family linear"]["n_pos"] == 3 and by["all"]["n_pos"] == 6
    assert all(r["n_neg"] == 6 for r in rows)
    assert all(r["ci_auc_model"] is None and r["ci_diff_flat"] is None for r in rows)  # no resamples


def test_intervals_contain_the_estimate_reproducible_by_seed_and_paired():
    rng = np.random.default_rng(0)
    n = 300
    truth = pd.DataFrame({"id": [str(i) for i in range(n)], "target": (np.arange(n) % 3 == 0).astype(int)})
    truth["family"] = np.where(truth.target == 1, np.where(np.arange(n) % 2 == 0, "linear", "sine"), "")
    truth["snr"] = np.where(truth.target == 1, np.where(np.arange(n) % 5 == 0, 10.0, 40.0), np.nan)
    common = rng.normal(size=n)           # noise both scorers share: the pairing cancels it
    model = truth.target * 1.0 + common
    weak = truth.target * 0.8 + common
    scores = {"model": model.to_numpy(), "weak": weak.to_numpy()}
    rows = ev.compare(truth, scores, n_boot=300, seed=7)
    again = ev.compare(truth, scores, n_boot=300, seed=7)
    other = ev.compare(truth, scores, n_boot=300, seed=8)
    assert rows == again and rows != other
    for row in rows:
        for name in ("model", "weak"):
            low, high = row[f"ci_auc_{name}"]
            assert low <= row[f"auc_{name}"] <= high
        low, high = row["ci_diff_weak"]
        assert low <= row["diff_weak"] <= high
    overall = rows[0]
    assert overall["diff_weak"] > 0 and overall["ci_diff_weak"][0] > 0   # model ahead, surely
    # paired: the difference's interval is much narrower than either AUC's
    width = lambda ci: ci[1] - ci[0]  # noqa: E731
    assert width(overall["ci_diff_weak"]) < 0.5 * width(overall["ci_auc_weak"])
    # the sign follows the order: weak as the model is behind
    flipped = ev.compare(truth, scores, model="weak", n_boot=100, seed=7)[0]
    assert flipped["diff_model"] == pytest.approx(-overall["diff_weak"])
    assert flipped["ci_diff_model"][1] < 0


def test_one_class_group_is_undefined_and_json_safe():
    truth = _table()
    truth.loc[truth.target == 0, "target"] = 1        # no negative at all
    truth["family"] = "linear"
    scores = {"model": np.linspace(0, 1, 12), "base": np.linspace(1, 0, 12)}
    rows = ev.compare(truth, scores, n_boot=50, seed=0)
    assert rows[0]["auc_model"] is None and rows[0]["ci_auc_model"] is None
    assert rows[0]["diff_base"] is None and rows[0]["ci_diff_base"] is None
    text = json.dumps(rows, allow_nan=False)           # no NaN anywhere
    assert "NaN" not in text
    assert ev.fmt(rows[0]["auc_model"]) == "undefined" and ev.fmt_interval(None) == "undefined"
    assert ev.score(truth, scores["model"]) is None


def test_baseline_named_as_the_model_gives_zero_and_errors():
    truth = _table()
    scores = {"a": np.arange(12.0)}
    row = ev.compare(truth, scores, baselines=["a"], n_boot=20, by=())[0]
    assert row["diff_a"] == 0.0 and row["ci_diff_a"] == [0.0, 0.0]
    with pytest.raises(ValueError, match="no scores named 'b'"):
        ev.compare(truth, scores, baselines=["b"])
    with pytest.raises(ValueError, match="11 scores of 'a' for 12 truth rows"):
        ev.compare(truth, {"a": np.arange(11.0)})
    with pytest.raises(EvaluationError, match="non-finite"):
        ev.compare(truth, {"a": np.r_[np.nan, np.arange(11.0)]})


def test_snr_groups_values_or_quantile_bins():
    groups, rule = ev.snr_groups([5.0, 10.0, 5.0, 40.0, np.nan])
    assert [g for g, _ in groups] == ["5", "10", "40", "unknown"] and "per SNR value" in rule
    groups, _ = ev.snr_groups(np.linspace(10, 50, 20))
    assert len(groups) == 4 and groups[0][0].startswith("[10, ") and groups[-1][0].endswith("50]")
    assert sum(mask.sum() for _, mask in groups) == 20


def test_one_auc_and_one_bootstrap_in_the_package_and_the_benchmarks():
    """The AUC is tfseti.metrics' and the paired bootstrap tfseti.evaluate's: no other module of
    tfseti/ or benchmarks/ ranks scores into an AUC itself (scipy's rankdata, scikit-learn's
    roc_auc_score) or calls the bootstrap's batched AUC (a copy was left in a benchmark once)."""
    import ast
    import os

    import tfseti

    package = os.path.dirname(tfseti.__file__)
    root = os.path.dirname(package)
    allowed = {"rankdata": {"tfseti/metrics.py",
                            "tfseti/predict/ensembles.py"},  # rank averaging, not an AUC
               "roc_auc_score": set(), "rank_aucs": {"tfseti/metrics.py", "tfseti/evaluate.py"}}
    found = []
    for top in ("tfseti", "benchmarks"):
        for folder, dirs, names in os.walk(os.path.join(root, top)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in (n for n in names if n.endswith(".py")):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, root).replace(os.sep, "/")
                with open(path, encoding="utf-8") as handle:
                    tree = ast.parse(handle.read())
                used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
                used |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
                used |= {a.asname or a.name for n in ast.walk(tree)
                         if isinstance(n, ast.ImportFrom) for a in n.names}
                found += [f"{rel}: {what}" for what, where in allowed.items()
                          if what in used and rel not in where]
    assert found == []
