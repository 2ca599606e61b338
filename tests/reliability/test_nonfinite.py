"""Non-finite numbers stop where they arise (issue 26).

* the config: NaN/Inf anywhere a float is taken, and values out of range (learning rate, epochs,
  batch, resize) or too big for 64 bits, are one ``error:`` line naming the key, exit 2, nothing
  created; a global batch larger than a fold's training records is refused in the plan;
* training: the first NaN loss stops the fold with one line naming the epoch and step, nothing is
  exported and the last backup holds finite weights; ``result.json`` is strict JSON (null for an
  undefined AUC, which is said only for a fold that really holds one class);
* a model whose probabilities are NaN is refused by predict, scan, pseudo and publish, naming it;
* ``tfseti.adapt`` validates ``--beta`` / ``--learning-rate`` the same way.
"""

from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from tfseti.train import cli

# The tiny training recipe of tests/train/test_cli_train.py: a 32x32 view, a small plain CNN.
TINY = ["model.name=plain_cnn_s", "view.resize=[32, 32]", "train.batch_per_replica=4",
        "train.steps_per_execution=1", "mixup.mixup_p=0.0", "augment.off_shuffle_p=0.0"]


def _train(data, out, *overrides, fold: int = 0) -> int:
    """``python -m tfseti.train`` in this process on the tiny recipe (overrides last win)."""
    return cli.main(["--config", "cpu_demo", "--strategy", "cpu", "--no-report", "--fold",
                     str(fold), "--data", str(data), "--out", str(out), *TINY, *overrides])


def _strict(text: str):
    """JSON as a strict reader takes it: NaN / Infinity literals are an error."""
    def refuse(literal):
        raise ValueError(f"bare {literal} in JSON")
    return json.loads(text, parse_constant=refuse)


def _error_lines(err: str) -> list[str]:
    assert "Traceback" not in err, err
    return [line for line in err.splitlines() if line.startswith("error: ")]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """24 records: 3 folds of 8, half positive (tests/train/train_shards.py)."""
    from train.train_shards import write_easy_shards

    folder = tmp_path_factory.mktemp("nonfinite") / "shards"
    write_easy_shards(str(folder), records_per_fold=8, folds=3)
    return folder


# -- the config ----------------------------------------------------------------------------------

@pytest.mark.parametrize("override, named", [
    ("train.learning_rate=nan", "train.learning_rate: expected a finite number, got nan"),
    ("train.learning_rate=inf", "train.learning_rate: expected a finite number, got inf"),
    ("train.learning_rate=-inf", "train.learning_rate: expected a finite number, got -inf"),
    # A finite typo: refused by the bound (adaptive optimizers step by ~lr; no recipe uses > 1e-2).
    ("train.learning_rate=1e30", "train.learning_rate must be in (0, 10], got 1e+30"),
    # Any float field of any section, not only the ones with range checks.
    ("train.warmup_epochs=nan", "train.warmup_epochs: expected a finite number, got nan"),
    ("augment.vflip_p=nan", "augment.vflip_p: expected a finite number, got nan"),
    ("model.options.dropout=inf", "model.options.dropout: expected a finite number, got inf"),
    ("train.epochs=99999999999999999999999",
     "train.epochs: expected an integer that fits in 64 bits"),
    ("train.epochs=10001", "train.epochs must be <= 10000, got 10001"),
    ("train.batch_per_replica=1000000000", "train.batch_per_replica must be <= 65536"),
    ("view.resize=[100000,100000]",
     "ViewConfig.resize: expected sides of at most 4096 px, got [100000, 100000]"),
])
def test_a_non_finite_or_out_of_range_setting_is_one_error_line(override, named, tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(tmp_path / "no_shards", out, override) == 2
    (line,) = _error_lines(capsys.readouterr().err)
    assert line.startswith(f"error: override {override} (command line): "), line
    assert named in line
    assert not out.exists()


def test_a_legitimate_setting_is_not_blocked_by_the_bounds():
    from tfseti.train.run_config import load_run_config

    run = load_run_config("cpu_demo", ["train.learning_rate=10", "train.epochs=10000",
                                       "view.resize=[768, 768]", "train.batch_per_replica=65536",
                                       "train.optimizer=sgd"])
    assert run.train.learning_rate == 10.0 and run.view.resize == (768, 768)
    assert run.train.batch_per_replica == 65536


@pytest.mark.parametrize("toml, named", [
    ("[train]\nepochs = 99999999999999999999999\n",
     "train.epochs: expected an integer that fits in 64 bits (|value| < 2**63), "
     "got 99999999999999999999999"),
    ("[train]\nlearning_rate = 1e308\n", "train.learning_rate must be in (0, 10], got 1e+308"),
    ("[train]\nlearning_rate = nan\n", "train.learning_rate: expected a finite number, got nan"),
    ("[view]\nresize = [100000, 100000]\n", "expected sides of at most 4096 px"),
])
def test_a_recipe_file_with_a_huge_or_nan_value_is_named(toml, named, tmp_path, capsys):
    recipe = tmp_path / "bad.toml"
    recipe.write_text(toml)
    assert cli.main(["--config", str(recipe), "--strategy", "cpu",
                     "--data", str(tmp_path / "none"), "--out", str(tmp_path / "run")]) == 2
    (line,) = _error_lines(capsys.readouterr().err)
    assert line.startswith(f"error: {recipe}: ") and named in line, line
    assert not (tmp_path / "run").exists()


def test_sections_built_directly_refuse_nan_too():
    """No range check can see a NaN (every comparison is false): check_choices does, first."""
    from tfseti.data.config import AugmentConfig
    from tfseti.train.train_config import TrainConfig

    with pytest.raises(ValueError, match=r"TrainConfig.learning_rate: expected a finite number, "
                                         r"got nan"):
        TrainConfig(learning_rate=float("nan"))
    with pytest.raises(ValueError, match=r"AugmentConfig.noise_std: expected a finite number"):
        AugmentConfig(noise_std=(0.0, float("inf")))


def test_a_global_batch_larger_than_the_training_records_is_refused_in_the_plan(
        shards, tmp_path, capsys):
    """It used to plan "4 steps" and then grow the process until it was killed."""
    out = tmp_path / "run"
    assert _train(shards, out, "train.batch_per_replica=17") == 2
    captured = capsys.readouterr()
    (line,) = _error_lines(captured.err)
    assert line == (f"error: train.batch_per_replica: the global batch of 17 (17 per replica x "
                    f"1 replica) is larger than fold 0's 16 training records in {shards}; set "
                    f"train.batch_per_replica <= 16")
    assert "plan:" not in captured.out  # refused before the plan, let alone the pipeline
    assert not out.exists()


# -- training ------------------------------------------------------------------------------------

def test_a_diverging_run_stops_at_the_nan_step_and_exports_nothing(shards, tmp_path, capsys,
                                                                   monkeypatch):
    """train.learning_rate=1e30 (here let through the bound) trained to NaN, exit 0, exported a
    NaN model and reported "val AUC undefined (one class in the fold)"."""
    import tensorflow as tf

    from tfseti.train import train_config

    monkeypatch.setattr(train_config, "MAX_LEARNING_RATE", 1e31)
    out = tmp_path / "run"
    assert _train(shards, out, "train.epochs=2", "train.learning_rate=1e30",
                  "train.backup_every_steps=1") == 2
    captured = capsys.readouterr()
    (line,) = _error_lines(captured.err)
    found = re.fullmatch(r"error: fold 0: the (loss became NaN|weights became non-finite \(.+\)) at "
                         r"epoch (\d), step (\d) .*\(train\.learning_rate=1e\+30\); nothing "
                         r"exported; the last good backup \(global step (\d+)\) is kept in "
                         + re.escape(str(out / "fold0" / "backup")), line)
    assert found, line
    epoch, step, backed_up = (int(found[i]) for i in (2, 3, 4))
    assert backed_up < (epoch - 1) * 4 + step  # 4 steps per epoch: the backup precedes the NaN
    assert "val AUC undefined" not in captured.out + captured.err
    fold = out / "fold0"
    for exported in ("model.keras", "saved_model", "result.json", "oof.csv", "final.weights.h5"):
        assert not (fold / exported).exists(), exported
    # The kept backup is the last finite state, and its state file is strict JSON.
    checkpoint = tf.train.latest_checkpoint(str(fold / "backup"))
    assert checkpoint.endswith(f"ckpt-{backed_up}")
    reader = tf.train.load_checkpoint(checkpoint)
    floats = [name for name, dtype in reader.get_variable_to_dtype_map().items()
              if dtype.is_floating]
    assert floats and all(np.isfinite(reader.get_tensor(name)).all() for name in floats)
    _strict((fold / "backup" / f"state-{backed_up}.json").read_text())


def _one_class_shards(folder) -> None:
    """Fold 0 all negative (an undefined validation AUC), fold 1 half positive."""
    import tensorflow as tf

    from harness import write_shard_manifest
    from tfseti.io.records import encode_example
    from train.train_shards import easy_cadence

    os.makedirs(folder)
    rng = np.random.default_rng(0)
    for fold, targets in enumerate(([0] * 8, [0, 1] * 4)):
        with tf.io.TFRecordWriter(os.path.join(folder, f"train-f{fold}-00000-of-00001.tfrec")) as w:
            for i, target in enumerate(targets):
                w.write(encode_example(f"{fold:03x}{i:012x}", easy_cadence(rng, bool(target)),
                                       target, fold))
    write_shard_manifest(str(folder))


def test_an_undefined_auc_is_null_in_result_json_and_said_only_for_one_class(tmp_path, capsys):
    from tfseti.train.folds import finished_fold

    data, out = tmp_path / "shards", tmp_path / "run"
    _one_class_shards(data)
    args = (data, out, "train.epochs=1", "train.backup_every_steps=1")
    assert _train(*args) == 0
    assert "fold 0: val AUC undefined (one class in the fold)" in capsys.readouterr().out
    result = _strict((out / "fold0" / "result.json").read_text())
    assert result["best_val_auc"] is None and result["history"]["val_auc"] == [None]
    assert all(np.isfinite(result["history"]["loss"]))
    best, frame = finished_fold(str(out / "fold0"))  # the reader of a finished fold takes null
    assert np.isnan(best) and set(frame["target"]) == {0}
    # A rerun skips the finished fold and reports it from result.json's null.
    assert _train(*args) == 0
    rerun = capsys.readouterr().out
    assert "fold 0: already trained" in rerun and "val AUC undefined (one class in the fold)" in rerun


# -- models giving NaN ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def nan_run(tmp_path_factory, worker_id):
    """A copy of the shared tiny run's fold0 whose SavedModel (the trainer's own export) has
    every weight NaN, and whose oof.csv scores are NaN as that model's would be."""
    from report.report_helpers import shared_tiny_run

    from tfseti.config import from_dict
    from tfseti.models import load_network
    from tfseti.train.export import export_saved_model
    from tfseti.train.run_config import RunConfig

    source = os.path.join(shared_tiny_run(tmp_path_factory, worker_id)["run"], "fold0")
    run_dir = tmp_path_factory.mktemp("nan_run") / "run"
    fold = run_dir / "fold0"
    os.makedirs(fold)
    for name in ("config.json", "result.json", "oof.csv", "data.json"):
        shutil.copy(os.path.join(source, name), fold)
    run = from_dict(RunConfig, json.loads((fold / "config.json").read_text()))
    net = load_network(os.path.join(source, "model.keras"))
    net.set_weights([np.full(w.shape, np.nan, w.dtype) for w in net.get_weights()])
    net.save(str(fold / "model.keras"))
    export_saved_model(net, run.view, str(fold / "saved_model"))
    oof = pd.read_csv(fold / "oof.csv", dtype={"id": str})
    oof.assign(score=np.nan).to_csv(fold / "oof.csv", index=False)
    return run_dir


def _nan_model_named(err: str, run_dir) -> None:
    (line,) = _error_lines(err)
    assert f"{run_dir}/fold0/saved_model: the model (fold0) gives non-finite probabilities" in line
    assert "retrain that fold" in line


def test_predict_refuses_a_nan_model_and_writes_no_submission(nan_run, tmp_path_factory,
                                                              worker_id, tmp_path, capsys):
    from report.report_helpers import shared_tiny_run

    from tfseti.predict.__main__ import main as predict_main

    shards = shared_tiny_run(tmp_path_factory, worker_id)["shards"]
    submission = tmp_path / "submission.csv"
    assert predict_main(["--model", str(nan_run), "--data", f"{shards}/train-*.tfrec",
                         "--out", str(submission), "--no-progress"]) == 2
    _nan_model_named(capsys.readouterr().err, nan_run)
    assert not submission.exists()


def test_scan_refuses_a_nan_model_and_writes_no_windows(nan_run, tmp_path_factory, worker_id,
                                                        tmp_path, capsys):
    from scan.scan_helpers import shared_cadences

    from tfseti.scan.__main__ import main as scan_main

    cadences = shared_cadences(tmp_path_factory, worker_id)
    out = tmp_path / "scan"
    assert scan_main(["--cadence", ",".join(cadences["fil"]), "--model", str(nan_run),
                      "--out", str(out), "--no-progress", "--batch-size", "8"]) == 2
    _nan_model_named(capsys.readouterr().err, nan_run)
    written = [f for _, _, files in os.walk(out) for f in files] if out.exists() else []
    assert not [f for f in written if f.endswith((".csv", ".json", ".dat"))], written


def test_pseudo_labelling_refuses_a_nan_teacher_before_touching_out(nan_run, tmp_path_factory,
                                                                     worker_id, tmp_path, capsys):
    from report.report_helpers import shared_tiny_run

    from tfseti.pseudo.__main__ import main as pseudo_main

    shards = shared_tiny_run(tmp_path_factory, worker_id)["shards"]
    out = tmp_path / "pseudo"
    assert pseudo_main(["--teacher", str(nan_run), "--data", f"{shards}/train-*.tfrec",
                        "--out", str(out), "--no-progress"]) == 2
    _nan_model_named(capsys.readouterr().err, nan_run)
    assert not out.exists() or not [n for n in os.listdir(out) if not n.startswith(".")]


def test_publish_refuses_a_fold_whose_training_diverged(nan_run, tmp_path, capsys):
    from tfseti.publish.__main__ import main as publish_main

    staging = tmp_path / "staged"
    assert publish_main([str(nan_run), "--kaggle-dataset", "someone/tfseti-nan-run", "--dry-run",
                         "--staging", str(staging)]) == 2
    (line,) = _error_lines(capsys.readouterr().err)
    rows = len(pd.read_csv(nan_run / "fold0" / "oof.csv"))
    assert line == (f"error: {nan_run}/fold0/oof.csv: {rows} of {rows} scores are not finite: its "
                    f"training diverged, the model gives NaN; nothing was published (retrain the "
                    f"fold)")
    assert not staging.exists()


def test_every_call_of_a_serving_model_checks_its_scores():
    """Data-dependent NaN (finite on the load-time probe) is caught where the model is called."""
    from tfseti.predict.models import NonFiniteScoresError, ServingModel

    def function(cadence):  # NaN for a cadence holding a value above 5, else 0.5
        import tensorflow as tf

        big = tf.reduce_any(tf.reshape(cadence, (tf.shape(cadence)[0], -1)) > 5, axis=1)
        return {"output_0": tf.where(big, float("nan"), 0.5)}

    model = ServingModel(path="runs/x/fold3/saved_model", panels=6, shape=(6, 4, 4), view=None,
                         function=function)
    calm = np.zeros((2, 6, 4, 4), np.float16)
    assert model(calm).tolist() == [0.5, 0.5]
    calm[1, 0, 0, 0] = 9
    with pytest.raises(NonFiniteScoresError, match=r"runs/x/fold3/saved_model: the model \(fold3\) "
                                                   r"gives non-finite probabilities \(1 of 2\)"):
        model(calm)


# -- adapt ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("option, value, named", [
    ("--beta", "nan", "--beta must be a finite number in [0, 10], got nan"),
    ("--beta", "inf", "--beta must be a finite number in [0, 10], got inf"),
    ("--beta", "-0.5", "--beta must be a finite number in [0, 10], got -0.5"),
    ("--learning-rate", "inf", "--learning-rate must be a finite number in (0, 10], got inf"),
    ("--learning-rate", "nan", "--learning-rate must be a finite number in (0, 10], got nan"),
])
def test_adapt_refuses_a_non_finite_option(option, value, named, tmp_path, capsys):
    from tfseti.adapt import main as adapt_main

    out = tmp_path / "adapted"
    assert adapt_main(["--model", str(tmp_path / "model"), "--unlabelled", str(tmp_path / "u"),
                       "--out", str(out), option, value]) == 2
    (line,) = _error_lines(capsys.readouterr().err)
    assert line == f"error: {named}"
    assert not out.exists()
