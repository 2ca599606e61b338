"""benchmarks/detection.py: the scoring on known numbers, and the whole benchmark end to end at
toy size (``--tiny``: every stage through its real command line; the AUCs mean nothing there),
then each script that builds on a finished run (recipe_check, noisy_student, technique_check)
on that same run."""

import contextlib
import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from benchmarks import detection as bench
from benchmarks import noisy_student as noisy_student_bench
from benchmarks import recipe_check, technique_check
from harness import once_per_session


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
        assert row["n_neg"] == int((truth.target == 0).sum())
        assert row["diff_weak"] == pytest.approx(row["auc_model"] - row["auc_weak"])
        low, high = row["ci_diff_weak"]
        assert low <= row["diff_weak"] <= high
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


def test_undefined_groups_print_and_count_as_not_ahead():
    truth = pd.DataFrame({"target": [1, 1, 1], "family": ["linear"] * 3, "snr": [10.0] * 3})
    scores = {"model": np.array([0.1, 0.2, 0.3]), "strong": np.array([0.3, 0.2, 0.1])}
    rows = bench.compare(truth, scores, bootstrap=10, seed=0)     # no negative: every AUC undefined
    assert all(r["auc_model"] is None and r["ci_diff_strong"] is None for r in rows)
    assert "undefined" in bench.format_table(rows, list(scores))
    assert len(bench.verdict(rows, list(scores))) == len(rows)


def _finished_run(root: Path, **settings) -> Path:
    """A folder shaped like a finished benchmark run (its data folders and settings.json)."""
    data = bench.Settings(out=str(root), **settings)
    for path in (data.train_data, data.test_data, data.shards, data.predictions):
        path.mkdir(parents=True, exist_ok=True)
    for background in bench.BACKGROUNDS:
        data.classical("train", background).write_text("id,target\n")
    (root / "settings.json").write_text(json.dumps(dataclasses.asdict(data), default=str))
    return root


def test_data_from_takes_the_data_settings_of_a_finished_run(tmp_path):
    source = _finished_run(tmp_path / "det", n_train=500, n_test=300, seed=3, rfi_scale=1)
    s = bench.parse_args(["--out", str(tmp_path / "k1"), "--data-from", str(source), "--config", "k1_style"])
    assert (s.n_train, s.n_test, s.seed, s.rfi_scale) == (500, 300, 3, 1)
    assert s.train_data == source / "data" / "train_set" and s.shards == source / "shards" / "train"
    assert s.classical("test", "off_median").parent == source / "predictions"
    assert s.predictions == tmp_path / "k1" / "predictions" and s.run_dir.parent == tmp_path / "k1" / "runs"
    stages = bench.build_stages(s)      # only the recipe's own training and prediction
    assert [st.argv[2] for st in stages] == ["tfseti.train", "tfseti.predict"]


def test_data_from_refuses_unfinished_mismatched_or_second_hand_runs(tmp_path, capsys):
    unfinished = tmp_path / "half"
    (unfinished / "data" / "train_set").mkdir(parents=True)
    with pytest.raises(SystemExit, match="no settings.json"):
        bench.parse_args(["--data-from", str(unfinished)])
    source = _finished_run(tmp_path / "det", n_train=500)
    with pytest.raises(SystemExit):
        bench.parse_args(["--data-from", str(source), "--n-train", "600"])
    assert "--n-train 600: the data in" in capsys.readouterr().err
    (source / "shards" / "train").rmdir()
    with pytest.raises(SystemExit, match="shards/train is missing"):
        bench.parse_args(["--data-from", str(source)])
    second = tmp_path / "k1"
    second.mkdir()
    (second / "settings.json").write_text(json.dumps({"data_from": str(source), "n_train": 500}))
    with pytest.raises(SystemExit, match=f"pass --data-from {source}"):
        bench.parse_args(["--data-from", str(second)])


def test_recipe_scale_downs_load_and_keep_each_recipe(tmp_path):
    from tfseti.train.run_config import load_run_config

    assert set(recipe_check.SCALE_DOWN) == {"b0_tpu", "k1_style", "k2_style", "k3_style", "k4_style",
                                            "dedoppler_b0"}
    for recipe in recipe_check.SCALE_DOWN:
        full, small = load_run_config(recipe), load_run_config(recipe, recipe_check.overrides(recipe))
        assert small.model.options.weights is None and not small.train.jit_compile
        assert small.train.epochs < full.train.epochs
        # what makes it that recipe is untouched
        assert small.view.name == full.view.name and small.mixup == full.mixup
        assert small.train.loss == full.train.loss and small.augment == full.augment
        assert small.model.options.pooling == full.model.options.pooling
        assert small.model.options.triplet_attention == full.model.options.triplet_attention
        # the findings of the cpu recipe that carry over: OFF-median background, every needle family
        maps = full.view.name == "dedoppler"   # the maps remove their own background
        assert (full.view.dedoppler.background if maps else full.view.background) == "off_median"
        assert set(full.augment.inject.families) == {"linear", "squared", "sine", "pulsed", "broad"}
    with pytest.raises(SystemExit):
        recipe_check.main(["--data-from", str(tmp_path), "--recipes", "k9_style"])


def test_technique_variants_load_and_differ_from_their_base_only_by_the_technique():
    from tfseti.train.run_config import load_run_config

    for name, (base, extra, tta, kind) in technique_check.VARIANTS.items():
        recipe, base_overrides = technique_check.BASES[base]
        plain = load_run_config(recipe, base_overrides)
        mine = load_run_config(recipe, base_overrides + extra)
        assert plain.train.epochs == mine.train.epochs == technique_check.EPOCHS
        if kind == "tta":   # the base's own network, predicted differently
            assert not extra and tta.startswith("random:")
        elif name != base:
            assert mine != plain, name   # every training variant changes its recipe
            assert mine.model.name == plain.model.name and mine.train == plain.train, name


def _tiny_run(root: str) -> dict:
    """``detection.py --tiny`` into ``root/det``: its exit code and what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = bench.main(["--tiny", "--out", str(Path(root) / "det")])
    return {"out": str(Path(root) / "det"), "code": code, "printed": printed.getvalue()}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, worker_id) -> tuple[Path, str]:
    """One tiny detection run per test session, even across pytest-xdist workers (its ~10 stages
    are one fresh interpreter each: minutes on 2 cores), shared by the tests below, which only
    read it: the run folder and what it printed."""
    run = once_per_session(tmp_path_factory, worker_id, "detection_tiny", _tiny_run)
    assert run["code"] == 0
    return Path(run["out"]), run["printed"]


@pytest.mark.slow
def test_tiny_benchmark_runs_every_stage(tiny_run):
    out, printed = tiny_run
    assert "== detection benchmark ==" in printed and "training wall time" in printed
    assert "validation AUC by epoch (fold 0): " in printed
    results = json.loads((out / "results.json").read_text())
    assert len(results["val_auc_by_epoch"]) == 1
    kinds = {row["kind"] for row in results["rows"]}
    assert kinds == {"overall", "family", "snr"}
    for row in results["rows"]:
        assert {"auc_model", "auc_two_of_three", "diff_panel_maxima", "ci_diff_straight_line",
                "ci_auc_model"} <= set(row)
    assert set(results["classical_background"]) == set(bench.SCORES)
    settings = json.loads((out / "settings.json").read_text())
    assert settings["tiny"] and any("tfseti.train" in " ".join(s["argv"]) for s in settings["stages"])
    # the test set holds families the train set lacks, at the fixed SNR bins
    truth = pd.read_csv(out / "data" / "test_set" / "truth.csv")
    assert set(truth.snr.dropna()) <= set(bench.TEST_SNRS)
    train_truth = pd.read_csv(out / "data" / "train_set" / "truth.csv")
    assert set(train_truth.family.dropna()) <= set(bench.TRAIN_FAMILIES)


def test_the_easy_data_is_bright_needles_and_trains_nothing(tmp_path):
    s = bench.parse_args(["--easy", "--data-only", "--out", str(tmp_path / "easy")])
    assert (s.n_train, s.train_snr, s.test_snrs) == (10000, "20:50", (20.0, 40.0))
    stages = bench.build_stages(s)
    assert [st.argv[2] for st in stages] == ["tfseti.synth", "tfseti.synth", "tfrecords_tools.convert",
                                             "tfseti.dedoppler", "tfseti.dedoppler"]
    train_synth, test_synth = (st.argv for st in stages[:2])
    assert train_synth[train_synth.index("--snr") + 1] == "20:50"
    assert test_synth[test_synth.index("--snr") + 1] == "20,40"
    assert train_synth[train_synth.index("--n-train") + 1] == "10000"
    tiny = bench.parse_args(["--easy", "--tiny", "--data-only", "--out", str(tmp_path / "t")])
    assert (tiny.n_train, tiny.train_snr) == (bench.TINY["n_train"], "20:50")
    with pytest.raises(SystemExit):   # another run's data is not made again
        bench.parse_args(["--easy", "--data-from", str(tmp_path)])


@pytest.mark.slow
def test_recipe_check_on_the_easy_data_makes_it_once_and_trains_only_the_recipe(tmp_path, capsys):
    # an accelerator recipe, scaled down, on the easy data made for it (no model trained there)
    checks = tmp_path / "checks"
    assert recipe_check.main(["--tiny", "--easy", "--out", str(checks),
                              "--recipes", "k2_style", "view.resize=[48, 32]",
                              "model.name=plain_cnn_s"]) == 0
    printed = capsys.readouterr().out
    assert "== detection benchmark data (no model trained) ==" in printed
    easy = checks / "easy_data"
    assert not (easy / "runs").exists() and not (easy / "results.json").exists()
    settings = json.loads((easy / "settings.json").read_text())
    assert settings["data_only"] and settings["train_snr"] == "20:50"
    train_truth = pd.read_csv(easy / "data" / "train_set" / "truth.csv")
    assert train_truth.snr.dropna().between(20, 50).all()
    assert set(pd.read_csv(easy / "data" / "test_set" / "truth.csv").snr.dropna()) <= {20.0, 40.0}
    assert "== accelerator recipes, scaled down to 2 CPU cores (easy data) ==" in printed
    assert "k2_style: best validation AUC" in printed and "the bar (>= 0.9 within 45 min)" in printed
    assert recipe_check.easy_data(checks, tiny=True) == str(easy)   # made once, then reused
    assert "(made before)" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="holds toy-size data at SNR 20:50, not the full-size"):
        recipe_check.easy_data(checks)                                 # not taken for the real check
    summary = json.loads((checks / "summary.json").read_text())
    assert [r["recipe"] for r in summary] == ["k2_style"] and len(summary[0]["val_auc_by_epoch"]) == 1
    assert "model.name=efficientnet_b0" in summary[0]["overrides"]
    # the caller's overrides come last (here: a small plain CNN, the plumbing is under test)
    assert summary[0]["overrides"][-2:] == ["view.resize=[48, 32]", "model.name=plain_cnn_s"]
    resolved = json.loads((checks / "k2_style" / "runs" / "k2_style" / "fold0" / "config.json").read_text())
    assert resolved["view"]["name"] == "all" and resolved["view"]["background"] == "off_median"
    assert resolved["model"]["name"] == "plain_cnn_s"
    assert not (checks / "k2_style" / "data").exists()     # the data run's data, not a copy


@pytest.mark.heavy
@pytest.mark.slow
def test_noisy_student_and_shot_with_the_runs_model_as_teacher(tiny_run, tmp_path, capsys):
    out, _ = tiny_run
    students = tmp_path / "students"
    assert noisy_student_bench.main(["--data-from", str(out), "--out", str(students), "--rounds",
                                     "1", "--student-epochs", "1", "--bootstrap", "20", "--shot",
                                     "--shot-epochs", "1"]) == 0
    printed = capsys.readouterr().out
    assert "== noisy student on the detection benchmark ==" in printed
    assert "round 1 student ('model') against the teacher (round 0)" in printed
    results = json.loads((students / "results.json").read_text())
    assert set(results["tables"]) == {"round1", "shot"}
    for rows in results["tables"].values():
        assert {row["kind"] for row in rows} == {"overall", "family", "snr"}
        assert {"auc_model", "auc_teacher", "diff_teacher", "ci_diff_teacher",
                "auc_two_of_three"} <= set(rows[0])
    assert [row["round"] for row in results["rounds"]] == [0, 1]
    assert "synthesise" not in printed and not (students / "data").exists()


@pytest.mark.slow
def test_techniques_against_their_base_on_the_runs_data(tiny_run, tmp_path, capsys):
    # a training base, a TTA variant and stacking
    out, _ = tiny_run
    techniques = tmp_path / "techniques"
    assert technique_check.main(["--tiny", "--data-from", str(out), "--out", str(techniques),
                                 "--variants", "image+random_tta,stack"]) == 0
    printed = capsys.readouterr().out
    assert "== techniques against the same recipe without them" in printed
    summary = json.loads((techniques / "summary.json").read_text())
    assert list(summary) == ["image", "image+random_tta", "stack"]
    assert summary["image+random_tta"]["tta"] == "random:8"
    for row in summary["image+random_tta"]["rows"] + summary["stack"]["rows"]:
        assert {"auc_model", "auc_base", "diff_base"} <= set(row)
    # the TTA variant predicted with the base's network: its validation history is the base's
    assert summary["image+random_tta"]["val_auc_by_epoch"] == summary["image"]["val_auc_by_epoch"]
    assert summary["stack"]["members"] == ["image"]


@pytest.mark.parametrize("script, argv", [
    (bench, ["--tiny"]), (recipe_check, ["--tiny", "--easy"]),
    (technique_check, ["--tiny", "--data-from", "unused"]),
    (noisy_student_bench, None)])
def test_a_second_writer_into_a_benchmark_folder_is_refused_and_changes_nothing(script, argv, tmp_path,
                                                                               capsys):
    from tfseti.io.folder_lock import LOCK_NAME, FolderLock

    out = tmp_path / "bench"
    if argv is None:   # the noisy-student benchmark reads its data run before it writes
        source = _finished_run(tmp_path / "det", n_train=500)
        (source / "runs" / "cpu" / f"fold{bench.VAL_FOLD}" / "saved_model").mkdir(parents=True)
        argv = ["--data-from", str(source)]
    with FolderLock(str(out)):
        assert script.main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out} is being written by" in err and len(err.strip().splitlines()) == 1
    assert [p.name for p in out.iterdir()] in ([], [LOCK_NAME])   # only the lock's own file


def test_a_shorter_check_keeps_each_recipe_warm_up_inside_its_epochs():
    from tfseti.train.run_config import load_run_config

    for recipe in recipe_check.SCALE_DOWN:    # every recipe warms up for 1 epoch
        shorter = recipe_check.warmup_within(recipe, ("train.epochs=1",))
        assert shorter == ("train.warmup_epochs=0.25",), recipe
        config = load_run_config(recipe, recipe_check.overrides(recipe) + shorter + ("train.epochs=1",))
        assert config.train.warmup_epochs < config.train.epochs
    assert recipe_check.warmup_within("b0_tpu", ("train.epochs=2",)) == ()          # fits already
    assert recipe_check.warmup_within("b0_tpu", ("train.epochs=1", "train.warmup_epochs=0")) == ()
    assert recipe_check.warmup_within("b0_tpu", ()) == ()                           # COMMON's 4
    for malformed in ("train.epochs=x", "train.epochs"):   # left to the run's own config error
        assert recipe_check.warmup_within("b0_tpu", (malformed,)) == ()
