"""``--ensemble stack``: a level-2 model over the runs' out-of-fold predictions, fit per fold."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
from report.report_helpers import shared_tiny_run
from harness import write_kaggle_dir

from tfseti import predict as pr
from tfseti.metrics import auc


def synthetic_oof(n=400, folds=2, seed=0, informative=2.0):
    """Two runs over the same ids: ``good`` scores track the target, ``noise`` does not."""
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 2, n)
    base = pd.DataFrame({"id": [f"id{i:04d}" for i in range(n)], "fold": np.arange(n) % folds,
                         "target": target})
    good = base.assign(score=informative * (2 * target - 1) + rng.standard_normal(n))
    noise = base.assign(score=rng.standard_normal(n))
    return {"good": good, "noise": noise.sample(frac=1.0, random_state=1)}   # any row order


def test_the_informative_run_gets_the_weight():
    oof = pr.oof_features(synthetic_oof())
    assert oof.runs == ["good", "noise"] and oof.ids == sorted(oof.ids)
    stack = pr.fit_stack(oof, "logistic")
    good, noise = stack.coefficients
    assert good > 1.0 and abs(noise) < 0.3 * good
    assert stack.run_auc[0] > 0.9 and abs(stack.run_auc[1] - 0.5) < 0.1
    assert stack.oof_auc > stack.mean_auc and abs(stack.oof_auc - stack.run_auc[0]) < 0.01
    assert stack.oof_auc == pytest.approx(auc(oof.target, stack.oof_probability))
    lines = stack.table().splitlines()
    assert lines[0].split() == ["OOF", "AUC", "fold", "0", "fold", "1"]
    assert [line.split()[0] for line in lines[1:]] == ["good", "noise", "mean", "stack"]
    assert float(lines[-1].split()[2]) == pytest.approx(stack.oof_auc, abs=1e-4)
    doc = stack.to_json()
    assert doc["feature_order"] == ["good", "noise"] and doc["coefficients"] == [good, noise]
    assert set(doc["fold_auc"]["stack"]) == {"0", "1"}
    # Applied to test features: the logistic model by hand.
    features = np.array([[3.0, 0.0], [-3.0, 1.0]])
    np.testing.assert_allclose(stack.predict(features),
                               1 / (1 + np.exp(-(features @ [good, noise] + stack.intercept))))


def test_each_fold_is_scored_by_a_stacker_that_never_saw_it():
    frames = synthetic_oof(folds=2)
    stack = pr.fit_stack(pr.oof_features(frames))
    # Other targets in fold 0: fold 0's held-out scores cannot change, fold 1's must.
    changed = {}
    for name, frame in frames.items():
        frame = frame.sort_values("id").reset_index(drop=True)
        in_fold0 = frame["fold"] == 0
        frame.loc[in_fold0, "target"] = np.random.default_rng(5).permutation(
            frame.loc[in_fold0, "target"].to_numpy())
        changed[name] = frame
    changed["noise"]["target"] = changed["good"]["target"]
    again = pr.fit_stack(pr.oof_features(changed))
    fold = pr.oof_features(frames).fold
    np.testing.assert_array_equal(again.oof_probability[fold == 0], stack.oof_probability[fold == 0])
    assert not np.allclose(again.oof_probability[fold == 1], stack.oof_probability[fold == 1])
    # A run informative only through leakage: its sign flips between the folds, so a stacker fit
    # on the other fold ranks every held-out fold backwards (one that saw the fold could not).
    rng = np.random.default_rng(2)
    base = frames["good"]
    sign = np.where(base["fold"] == 0, 1.0, -1.0)
    leaky = base.assign(score=sign * 2.0 * (2 * base["target"] - 1) + 0.3 * rng.standard_normal(len(base)))
    stack = pr.fit_stack(pr.oof_features({"leaky": leaky}))
    assert max(stack.fold_auc.values()) < 0.05 and stack.oof_auc < 0.05
    assert min(stack.run_fold_auc[0][f] for f in (0, 1)) < 0.05 < 0.95 < max(stack.run_fold_auc[0].values())


def test_gbm_stacker_is_seeded():
    from threadpoolctl import threadpool_limits

    oof = pr.oof_features(synthetic_oof(n=600, folds=3))
    with threadpool_limits(1):   # OpenMP threads on a shared 2-core machine: 100x slower
        first, second = pr.fit_stack(oof, "gbm"), pr.fit_stack(oof, "gbm")
    np.testing.assert_array_equal(first.oof_probability, second.oof_probability)
    assert first.oof_auc > 0.9 and first.coefficients is None
    doc = first.to_json()
    assert doc["method"] == "gbm" and doc["params"]["random_state"] == 0 and doc["n_iter"] > 0
    assert set(doc["fold_auc"]["stack"]) == {"0", "1", "2"}


def test_runs_that_do_not_line_up_are_refused():
    frames = synthetic_oof()
    fewer = {**frames, "noise": frames["noise"].iloc[1:]}
    with pytest.raises(ValueError, match="noise: its OOF ids differ from good's"):
        pr.oof_features(fewer)
    other_folds = {**frames, "noise": frames["noise"].assign(fold=1 - frames["noise"]["fold"])}
    with pytest.raises(ValueError, match="noise: id .* has fold .* same fold split"):
        pr.oof_features(other_folds)
    other_targets = {**frames, "noise": frames["noise"].assign(target=1 - frames["noise"]["target"])}
    with pytest.raises(ValueError, match="noise: id .* has target"):
        pr.oof_features(other_targets)
    one_fold = {"good": frames["good"].assign(fold=0)}
    with pytest.raises(ValueError, match="leave-one-fold-out fitting needs at least 2"):
        pr.fit_stack(pr.oof_features(one_fold))
    one_class = frames["good"].copy()
    one_class.loc[one_class["fold"] == 1, "target"] = 1
    with pytest.raises(ValueError, match="outside fold 0 hold only target 1"):
        pr.fit_stack(pr.oof_features({"good": one_class}))
    for bad in ("stack:svm", "stack:"):
        with pytest.raises(ValueError, match="--ensemble: expected stack or stack:logistic"):
            pr.parse_stack(bad)
    assert (pr.parse_stack("stack"), pr.parse_stack("stack:gbm"), pr.parse_stack("rank")) == \
        ("logistic", "gbm", None)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, worker_id):
    """Two real 2-fold run folders (same models), the second with informative OOF scores; a
    Kaggle test folder."""
    trained = shared_tiny_run(tmp_path_factory, worker_id)
    root = tmp_path_factory.mktemp("stack")
    run_a, run_b = str(root / "run_a"), str(root / "run_b")
    for run in (run_a, run_b):
        shutil.copytree(trained["run"], run, ignore=shutil.ignore_patterns("backup", "report"))
    oof = pd.read_csv(os.path.join(run_b, "oof.csv"), dtype={"id": str})
    noise = np.random.default_rng(0).standard_normal(len(oof))
    oof.assign(score=3.0 * (2 * oof["target"] - 1) + noise).to_csv(os.path.join(run_b, "oof.csv"),
                                                                   index=False)
    kaggle = root / "kaggle"
    write_kaggle_dir(kaggle, n_train=1, n_test=3, seed=6)
    return {"a": run_a, "b": run_b, "kaggle": str(kaggle), "root": root}


@pytest.mark.slow
def test_stack_through_the_cli_on_run_folders(runs, tmp_path, capsys):
    out = tmp_path / "sub" / "submission.csv"
    code = pr.main(["--model", f"{runs['a']},{runs['b']}", "--data", runs["kaggle"], "--ensemble",
                    "stack", "--out", str(out), "--batch-size", "2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    stack = pr.stack_runs([runs["a"], runs["b"]])
    assert stack.table() in captured.out
    doc = json.loads((tmp_path / "sub" / "stack.json").read_text())
    assert doc["method"] == "logistic" and doc["feature_order"] == [runs["a"], runs["b"]]
    assert doc["folds"] == [0, 1] and doc["tta"] == "none"
    coef, intercept = np.array(doc["coefficients"]), doc["intercept"]
    assert coef[1] > abs(coef[0])   # run_b's OOF scores are the informative ones
    # By hand: each run's feature = mean over its two fold models of the clipped logit.
    paths = [f"{run}/fold{k}/saved_model" for run in (runs["a"], runs["b"]) for k in (0, 1)]
    per_model = pr.predict([pr.load_model(p) for p in paths], pr.open_test_data(runs["kaggle"]),
                           batch_size=2).per_model
    p = np.clip(per_model.astype(np.float64), 1e-6, 1 - 1e-6)
    logits = np.log(p / (1 - p))
    features = np.stack([logits[:2].mean(axis=0), logits[2:].mean(axis=0)], axis=1)
    expected = 1 / (1 + np.exp(-(features @ coef + intercept)))
    frame = pd.read_csv(out, dtype={"id": str})
    np.testing.assert_allclose(frame["target"], expected, rtol=1e-6)
    assert len(frame) == 3


@pytest.mark.slow
def test_stack_cli_errors(runs, tmp_path, capsys):
    out = tmp_path / "sub.csv"

    def error(model, ensemble="stack"):
        code = pr.main(["--model", model, "--data", runs["kaggle"], "--ensemble", ensemble,
                        "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and not out.exists() and "Traceback" not in err
        (line,) = err.strip().splitlines()
        return line

    saved_model = f"{runs['a']}/fold0/saved_model"
    assert error(saved_model).startswith(f"error: {saved_model}: no oof.csv; --ensemble stack")
    broken = str(tmp_path / "run_c")
    shutil.copytree(runs["a"], broken)
    shutil.rmtree(os.path.join(broken, "fold1", "saved_model"))
    assert error(f"{runs['a']},{broken}").startswith(
        f"error: {broken}: unfinished fold (fold1: no saved_model/ yet)")
    shutil.rmtree(os.path.join(broken, "fold1"))  # moved out of the run, as that error advises
    assert error(f"{runs['a']},{broken}").startswith(
        f"error: {broken}: its SavedModels are folds [0] but its oof.csv holds folds [0, 1]")
    other = str(tmp_path / "run_d")
    shutil.copytree(runs["a"], other)
    oof = pd.read_csv(os.path.join(other, "oof.csv"), dtype={"id": str})
    oof.iloc[1:].to_csv(os.path.join(other, "oof.csv"), index=False)
    assert f"error: {other}: its OOF ids differ from {runs['a']}'s" in error(f"{runs['a']},{other}",
                                                                             "stack:gbm")
