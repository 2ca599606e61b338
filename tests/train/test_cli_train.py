"""``python -m tfseti.train``: bad input fails early and clearly; a 2-epoch run learns."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from harness import run_script
from tfseti.train import cli

from train_shards import write_easy_shards

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_bad_config_fails_before_anything_is_built(tmp_path, capsys):
    assert cli.main(["--config", "cpu_demo", "--strategy", "cpu",
                     "train.learning_rat=0.1"]) == 2
    err = capsys.readouterr().err
    # the key came from the command line, not from cpu_demo.toml
    assert "override train.learning_rat=0.1 (command line): train.learning_rat: unknown key" in err
    assert "did you mean 'train.learning_rate'" in err
    assert cli.main(["--config", "cpu_demo", "--fold", "x"]) == 2
    assert "--fold: expected an integer or 'all', got 'x'" in capsys.readouterr().err
    assert cli.main(["--config", "cpu_demo", "--strategy", "cpu"]) == 2
    assert "data.data: no shard folder" in capsys.readouterr().err
    assert cli.main(["--config", "configs/does_not_exist"]) == 2
    assert "config 'configs/does_not_exist' not found" in capsys.readouterr().err
    one_fold = tmp_path / "one_fold"
    write_easy_shards(str(one_fold), records_per_fold=2, folds=1)
    assert cli.main(["--config", "cpu_demo", "--strategy", "cpu", "--fold", "all",
                     "--data", str(one_fold)]) == 2
    assert "--fold: 'all' needs shards of at least 2 folds, found [0]" in capsys.readouterr().err
    assert cli.main(["--config", "cpu_demo", "--strategy", "cpu", "--fold", "3",
                     "--data", str(one_fold)]) == 2
    assert "no train shards for fold 3; the train shards hold folds [0]" in capsys.readouterr().err


def _train_args(data, out, fold=0) -> list[str]:
    return ["--config", "cpu_demo", "--strategy", "cpu", "--fold", str(fold),
            "--data", str(data), "--out", str(out), "--no-report", "model.name=plain_cnn_s",
            "view.resize=[32, 32]", "train.epochs=1", "train.batch_per_replica=4",
            "train.steps_per_execution=1", "mixup.mixup_p=0.0", "augment.off_shuffle_p=0.0"]


def test_an_incomplete_shard_folder_is_refused_before_training(tmp_path, capsys):
    """A lost shard or an interrupted conversion used to train on what was there, exit 0."""
    data = tmp_path / "shards"
    write_easy_shards(str(data), records_per_fold=2, folds=3)
    os.remove(data / "train-f2-00000-of-00001.tfrec")
    out = tmp_path / "run"
    assert cli.main(_train_args(data, out)) == 2
    err = capsys.readouterr().err
    assert "train-f2-00000-of-00001.tfrec: missing" in err and "Traceback" not in err
    os.rename(data / "manifest.json", data / "_progress.json")
    assert cli.main(_train_args(data, out)) == 2
    err = capsys.readouterr().err
    assert "conversion interrupted" in err and "rerun the same" in err
    assert not out.exists()


def test_a_corrupt_validation_shard_is_named_before_training(tmp_path, capsys):
    data = tmp_path / "shards"
    write_easy_shards(str(data), records_per_fold=4, folds=2)
    victim = data / "train-f1-00000-of-00001.tfrec"  # the validation shard of --fold 1
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    victim.write_bytes(bytes(raw))
    assert cli.main(_train_args(data, tmp_path / "run", fold=1)) == 2
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if line.startswith("error: ")]
    assert line.startswith(f"error: {victim}: corrupt shard, corrupted record at byte "), line
    assert "Traceback" not in err


@pytest.mark.slow
def test_a_corrupt_shard_stops_training_with_one_line_naming_it(tmp_path, capsys):
    data = tmp_path / "shards"
    write_easy_shards(str(data), records_per_fold=8, folds=2)
    victim = data / "train-f0-00000-of-00001.tfrec"  # a training shard of --fold 1
    raw = bytearray(victim.read_bytes())
    raw[3 * len(raw) // 4] ^= 0x01  # same size: passes the folder check; not the first record
    victim.write_bytes(bytes(raw))
    try:
        code = cli.main(_train_args(data, tmp_path / "run", fold=1))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("error: ")]
    assert line.startswith(f"error: {victim}: corrupt shard, corrupted record at byte "), line


def test_module_entry_point_reports_bad_config_in_a_fresh_process():
    result = subprocess.run(
        [sys.executable, "-m", "tfseti.train", "--config", "cpu_demo",
         "train.loss=ce2"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "train.loss = 'ce2' needs 2 logit(s): set model.options.head = 'two_class'" in result.stderr


@pytest.mark.parametrize("name", ["cpu_demo", "cpu", "b0_tpu", "dedoppler_b0", "k1_style", "k2_style",
                                  "k3_style"])
def test_shipped_recipes_load(name):
    args = cli.parse_args(["--config", f"configs/{name}"])
    run = cli.resolve_run(args)
    assert run.name == name


@pytest.mark.slow
def test_two_epoch_run_learns_an_easy_set(tmp_path):
    # Deterministic end to end, so the AUC bar is no coin toss: fixed seeds for the weights,
    # the shuffle and the augmentation, and data.deterministic (without it tf.data hands the
    # batches over in arrival order). The cpu_demo recipe with its network swapped for the small
    # plain CNN: the CLI's run is under test, not EfficientNet (tests/models builds and trains
    # those), whose graph tracing and SavedModel export took 2 of this test's 2.5 minutes. Val
    # AUC by epoch [0.836, 1.0]; with train.seed = data.seed = augment.seed = 1..3 the best
    # val AUC was 1.0 each time.
    data = tmp_path / "shards"
    targets = write_easy_shards(str(data), records_per_fold=32, folds=2, seed=0)
    ids = {fold: [f"{fold:03x}{i:012x}" for i in range(32)] for fold in targets}
    out = tmp_path / "run"
    try:
        code = cli.main([
            "--config", "cpu_demo", "--strategy", "cpu", "--fold", "1",
            "--data", str(data), "--out", str(out), "--no-report",  # the report: tests/report
            "view.resize=[32, 32]", "model.name=plain_cnn_s", "train.epochs=2",
            "train.batch_per_replica=8", 'train.calibrate=["none"]',  # fitted and applied: tests/calibration
            "train.steps_per_execution=4", "train.learning_rate=2e-3", "train.warmup_epochs=0",
            "train.bn_momentum=0.5", "mixup.mixup_p=0.0", "augment.off_shuffle_p=0.0",
            "data.deterministic=true", "train.seed=0", "data.seed=0", "augment.seed=0"])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert code == 0
    fold_dir = out / "fold1"
    result = json.loads((fold_dir / "result.json").read_text())
    assert result["best_val_auc"] > 0.75, result
    resolved = json.loads((fold_dir / "config.json").read_text())
    assert resolved["train"]["fold"] == 1 and resolved["data"]["batch_size"] == 8
    assert resolved["view"]["resize"] == [32, 32]
    with open(fold_dir / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows] == ["0", "1"] and "val_auc" in rows[0]
    assert (fold_dir / "best.weights.h5").exists()
    assert os.listdir(fold_dir / "tensorboard")
    net = keras.saving.load_model(fold_dir / "model.keras", safe_mode=True)
    assert net.output_shape == (None, 1)
    # Out-of-fold predictions: every record of fold 1 exactly once, with its label.
    oof = pd.read_csv(fold_dir / "oof.csv", dtype={"id": str})
    assert sorted(oof["id"]) == sorted(ids[1]) and set(oof["fold"]) == {1}
    assert dict(zip(oof["id"], oof["target"])) == dict(zip(ids[1], targets[1]))
    assert roc_auc_score(oof["target"], oof["score"]) == pytest.approx(result["best_val_auc"])
    # The SavedModel, in a fresh process that never imports tfseti, gives the same probabilities
    # from the raw cadences of the shard.
    probabilities = run_script(SERVE_SCRIPT, fold_dir / "saved_model",
                               data / "train-f1-00000-of-00001.tfrec")
    expected = 1 / (1 + np.exp(-oof.set_index("id")["score"]))
    assert sorted(probabilities) == sorted(expected.index)
    np.testing.assert_allclose([probabilities[i] for i in expected.index], expected.values,
                               rtol=1e-3, atol=1e-5)


SERVE_SCRIPT = """
import json, sys
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
features = {"id": tf.io.FixedLenFeature([], tf.string),
            "cadence": tf.io.FixedLenFeature([], tf.string)}
out = {}
for record in tf.data.TFRecordDataset(sys.argv[2]):
    example = tf.io.parse_single_example(record, features)
    cadence = tf.reshape(tf.io.decode_raw(example["cadence"], tf.float16), (1, 6, 273, 256))
    out[example["id"].numpy().decode()] = float(model.serve(cadence)[0])
    signature = model.signatures["serving_default"]
assert "tfseti" not in sys.modules
print(json.dumps(out))
"""


def test_out_of_fold_frames_join_ids_and_give_the_cv_auc():
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from tfseti.train.oof import cv_auc, fold_frame

    outputs = {"index": np.array([2, 0, 1, -1]), "mask": np.array([1, 1, 1, 0]),
               "target": np.array([1, 0, 1, -1]), "score": np.array([0.9, 0.1, 0.4, 5.0])}
    frame0 = fold_frame(outputs, {0: "a", 1: "b", 2: "c"}, fold=0)
    assert frame0.to_dict("list") == {"id": ["a", "b", "c"], "fold": [0, 0, 0],
                                      "target": [0, 1, 1], "score": [0.1, 0.4, 0.9]}
    frame1 = fold_frame({"index": np.array([0, 1]), "mask": np.array([True, True]),
                         "target": np.array([0, 1]), "score": np.array([0.5, 0.2])},
                        {0: "d", 1: "e"}, fold=1)
    table, auc = cv_auc([frame0, frame1])
    assert len(table) == 5
    assert auc == roc_auc_score([0, 1, 1, 0, 1], [0.1, 0.4, 0.9, 0.5, 0.2])
    with pytest.raises(ValueError, match="1 validation records were not predicted"):
        fold_frame(outputs, {0: "a", 1: "b", 2: "c", 3: "x"}, fold=0)
    with pytest.raises(ValueError, match="more than one validation fold"):
        cv_auc([frame0, frame0])


# -- one run folder, one recipe (--overwrite) ---------------------------------------------------
# Tiny and fast: plain_cnn_s on a 32x32 view, one step per epoch.
TINY = ["view.resize=[32, 32]", "model.name=plain_cnn_s", "train.epochs=1",
        "train.steps_per_epoch=1", "train.batch_per_replica=4", "train.steps_per_execution=1",
        "train.warmup_epochs=0", "mixup.mixup_p=0.0", "augment.off_shuffle_p=0.0"]


def _run_args(data, out, fold, *extra) -> list[str]:
    return ["--config", "cpu_demo", "--strategy", "cpu", "--fold", str(fold),
            "--data", str(data), "--out", str(out), "--no-report", *TINY, *extra]


def _fake_trained_fold(fold_dir, args, fold: int, **changes) -> dict:
    """A finished fold folder as the trainer leaves it, trained with the resolved config of
    ``args`` (1 replica) with ``changes`` ({"train.learning_rate": 0.002, ...}) applied."""
    import dataclasses

    from tfseti.config import to_dict

    run = cli.resolve_run(cli.parse_args(args))
    run = dataclasses.replace(run, data=dataclasses.replace(run.data,
                                                            batch_size=run.train.batch_per_replica))
    config = to_dict(run)
    config["train"]["fold"] = fold
    for key, value in changes.items():
        *sections, name = key.split(".")
        node = config
        for section in sections:
            node = node[section]
        node[name] = value
    os.makedirs(fold_dir / "tensorboard")
    (fold_dir / "tensorboard" / "events.out.tfevents.old").write_text("old run")
    (fold_dir / "config.json").write_text(json.dumps(config))
    (fold_dir / "result.json").write_text(json.dumps({"best_val_auc": 0.5, "history": {}}))
    pd.DataFrame({"id": ["x"], "fold": [fold], "target": [1], "score": [0.3]}).to_csv(
        fold_dir / "oof.csv", index=False)
    return config


@pytest.mark.parametrize("fold_arg", ["all", "1"])
def test_a_run_folder_of_another_config_is_refused_naming_the_keys(tmp_path, capsys, fold_arg):
    """Before: --fold all printed "fold 0: already trained, skipped" and wrote a cv.json mixing
    two recipes; --fold 1 trained over the other run's fold, its TensorBoard events mixed in."""
    data, out = tmp_path / "shards", tmp_path / "run"
    write_easy_shards(str(data), records_per_fold=4, folds=2)
    args = _run_args(data, out, fold_arg, "train.backup_every_steps=1")  # finished folds skipped
    other = 0 if fold_arg == "all" else 1
    # Another recipe (2 keys), plus keys that may differ between the folds of one run.
    _fake_trained_fold(out / f"fold{other}", args, other, **{
        "train.learning_rate": 0.002, "view.resize": [64, 32], "name": "renamed_copy",
        "train.backup_every_steps": 0, "data.with_ids": False})
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert cli.main(args) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert lines[0] == f"error: --out: {out} holds fold{other} trained with another config; one " \
                       "run folder holds one recipe, so nothing was trained:"
    assert f"  fold{other}: train.learning_rate: 0.002 there, 0.001 now" in lines
    assert f"  fold{other}: view.resize: [64, 32] there, [32, 32] now" in lines
    assert len([line for line in lines if line.startswith(f"  fold{other}: ")]) == 2, lines
    assert "add --overwrite to delete" in lines[-1] and "Traceback" not in captured.err
    assert "skipped" not in captured.out and "plan:" not in captured.out
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before  # untouched


def test_folds_differing_only_in_where_and_which_fold_are_one_run(tmp_path):
    """What may differ between folds of one run: the fold, the recipe's label, where the shards
    are (the same shards, copied), the backup interval, ids on the host. Other shards may not."""
    import shutil

    from tfseti.io.shards import read_manifest
    from tfseti.train import run_folder

    data, copy, other = tmp_path / "shards", tmp_path / "copy", tmp_path / "other"
    write_easy_shards(str(data), records_per_fold=4, folds=2, seed=0)
    shutil.copytree(data, copy)
    write_easy_shards(str(other), records_per_fold=4, folds=2, seed=1)
    out = tmp_path / "run"
    config = _fake_trained_fold(out / "fold0", _run_args(data, out, 0), 0)
    run_folder.write_shards_record(str(out / "fold0"), run_folder.shards_record(
        str(data), read_manifest(str(data))))
    same = json.loads(json.dumps(config))
    same["train"].update(fold=1, backup_every_steps=4)
    same["name"], same["data"]["data"], same["data"]["with_ids"] = "renamed", str(copy), False
    assert run_folder.check_run_folder(str(out), same, run_folder.shards_record(
        str(copy), read_manifest(str(copy)))) == []
    with pytest.raises(run_folder.RunFolderConflict, match=r"fold0: data\.shards: \"8 records "
                       r"in 2 shards, digest [0-9a-f]{16}\" \(read from .*shards\) there, "):
        run_folder.check_run_folder(str(out), same, run_folder.shards_record(
            str(other), read_manifest(str(other))))
    # A global batch of 2 replicas is another run.
    same["data"]["batch_size"] = 8
    with pytest.raises(run_folder.RunFolderConflict, match="data.batch_size: 4 there, 8 now"):
        run_folder.check_run_folder(str(out), same)


@pytest.mark.slow
def test_overwrite_removes_the_other_run_then_trains_and_prints_the_plan(tmp_path, capsys):
    data, out = tmp_path / "shards", tmp_path / "run"
    write_easy_shards(str(data), records_per_fold=4, folds=2)
    args = _run_args(data, out, 1)
    _fake_trained_fold(out / "fold1", args, 1, **{"train.epochs": 3})
    kept = _fake_trained_fold(out / "fold0", args, 0)  # the same recipe: kept
    (out / "cv.json").write_text("{}")  # the other run's CV AUC
    (out / "calibration.json").write_text("{}")  # and its calibrator
    try:
        assert cli.main([*args, "--overwrite"]) == 0
    finally:
        keras.mixed_precision.set_global_policy("float32")
    printed = capsys.readouterr().out
    assert (f"--overwrite: removed {out}/fold1 (trained with another config: train.epochs)"
            in printed)
    assert f"--overwrite: removed {out}/cv.json (computed from the removed folds)" in printed
    assert not (out / "cv.json").exists()
    assert f"--overwrite: removed {out}/calibration.json (computed from the removed folds)" in printed
    assert json.loads((out / "fold0" / "config.json").read_text()) == kept
    resolved = json.loads((out / "fold1" / "config.json").read_text())
    assert resolved["train"]["epochs"] == 1 and resolved["model"]["name"] == "plain_cnn_s"
    events = os.listdir(out / "fold1" / "tensorboard")
    assert events and "events.out.tfevents.old" not in str(events)
    assert json.loads((out / "fold1" / "data.json").read_text())["data"] == str(data)
    # The opening account, printed once before training.
    start = printed.index("plan: recipe cpu_demo (")
    plan = printed[start:].splitlines()[:6]
    assert plan[0].endswith("tfseti/recipes/cpu_demo.toml)"), plan  # the shipped recipe
    assert plan[1:] == [
        f"  data      {data}: 8 records in 2 shards, cadences 6x273x256",
        "  fold 1    train 4 records, validation 4 records: 1 step per epoch",
        "  training  1 epoch; strategy cpu (OneDeviceStrategy), 1 replica; global batch 4 "
        "(4 per replica)",
        "  model     plain_cnn_s on view 'on': input 32x32x1; precision float32",
        f"  output    {out}"], plan
    assert printed.count("plan: recipe") == 1 and start < printed.index("best val AUC")

    # The same command again: the same recipe, nothing refused; trained anew from scratch, the
    # earlier attempt's outputs removed first (no backups: nothing to resume).
    try:
        assert cli.main(args) == 0
    finally:
        keras.mixed_precision.set_global_policy("float32")
    printed = capsys.readouterr().out
    assert "--overwrite" not in printed
    assert f"{out}/fold1: training from scratch; removed what an earlier attempt left (log.csv, " \
           f"tensorboard, best.weights.h5" in printed
    assert len(os.listdir(out / "fold1" / "tensorboard" / "train")) == 1  # this attempt's only


def test_keras_files_are_reloaded_with_safe_mode_everywhere():
    """Every ``keras.saving.load_model`` / ``keras.models.load_model`` call in the repository
    passes ``safe_mode=True`` explicitly (a .keras file can hold arbitrary code otherwise)."""
    import ast
    import pathlib

    calls = []
    for folder in ("tfseti", "tfrecords_tools", "benchmarks", "tests"):
        for path in pathlib.Path(REPO, folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr == "load_model"
                        and isinstance(node.func.value, ast.Attribute)
                        and node.func.value.attr in ("saving", "models")):
                    safe = [k for k in node.keywords if k.arg == "safe_mode"]
                    ok = (bool(safe) and isinstance(safe[0].value, ast.Constant)
                          and safe[0].value.value is True)
                    calls.append((f"{path.relative_to(REPO)}:{node.lineno}", ok))
    assert calls, "no load_model call found: the scan is broken"
    assert [where for where, ok in calls if not ok] == []
