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

from tfseti.train import cli

from train_shards import write_easy_shards

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_bad_config_fails_before_anything_is_built(tmp_path, capsys):
    assert cli.main(["--config", "configs/cpu_demo", "--strategy", "cpu",
                     "train.learning_rat=0.1"]) == 2
    err = capsys.readouterr().err
    assert "cpu_demo.toml: train.learning_rat: unknown key" in err
    assert "did you mean 'train.learning_rate'" in err
    assert cli.main(["--config", "configs/cpu_demo", "--fold", "x"]) == 2
    assert "--fold: expected an integer or 'all', got 'x'" in capsys.readouterr().err
    assert cli.main(["--config", "configs/cpu_demo", "--strategy", "cpu"]) == 2
    assert "data.data: no shard folder" in capsys.readouterr().err
    assert cli.main(["--config", "configs/does_not_exist"]) == 2
    assert "config 'configs/does_not_exist' not found" in capsys.readouterr().err
    one_fold = tmp_path / "one_fold"
    write_easy_shards(str(one_fold), records_per_fold=2, folds=1)
    assert cli.main(["--config", "configs/cpu_demo", "--strategy", "cpu", "--fold", "all",
                     "--data", str(one_fold)]) == 2
    assert "--fold: 'all' needs shards of at least 2 folds, found [0]" in capsys.readouterr().err
    assert cli.main(["--config", "configs/cpu_demo", "--strategy", "cpu", "--fold", "3",
                     "--data", str(one_fold)]) == 2
    assert "no train shards for fold 3; the train shards hold folds [0]" in capsys.readouterr().err


def test_module_entry_point_reports_bad_config_in_a_fresh_process():
    result = subprocess.run(
        [sys.executable, "-m", "tfseti.train", "--config", "configs/cpu_demo",
         "train.loss=ce2"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "train.loss = 'ce2' needs 2 logit(s): set model.options.head = 'two_class'" in result.stderr


@pytest.mark.parametrize("name", ["cpu_demo", "cpu", "b0_tpu", "k1_style", "k2_style", "k3_style"])
def test_shipped_recipes_load(name):
    args = cli.parse_args(["--config", f"configs/{name}"])
    run = cli.resolve_run(args)
    assert run.name == name


@pytest.mark.slow
def test_two_epoch_run_learns_an_easy_set(tmp_path):
    data = tmp_path / "shards"
    targets = write_easy_shards(str(data), records_per_fold=32, folds=2, seed=0)
    ids = {fold: [f"{fold:03x}{i:012x}" for i in range(32)] for fold in targets}
    out = tmp_path / "run"
    try:
        code = cli.main([
            "--config", "configs/cpu_demo", "--strategy", "cpu", "--fold", "1",
            "--data", str(data), "--out", str(out),
            "view.resize=[32, 32]", "train.epochs=2", "train.batch_per_replica=8",
            "train.steps_per_execution=4", "train.learning_rate=2e-3", "train.warmup_epochs=0",
            "train.bn_momentum=0.5", "mixup.mixup_p=0.0", "augment.off_shuffle_p=0.0"])
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
    net = keras.saving.load_model(fold_dir / "model.keras")
    assert net.output_shape == (None, 1)
    # Out-of-fold predictions: every record of fold 1 exactly once, with its label.
    oof = pd.read_csv(fold_dir / "oof.csv", dtype={"id": str})
    assert sorted(oof["id"]) == sorted(ids[1]) and set(oof["fold"]) == {1}
    assert dict(zip(oof["id"], oof["target"])) == dict(zip(ids[1], targets[1]))
    assert roc_auc_score(oof["target"], oof["score"]) == pytest.approx(result["best_val_auc"])
    # The SavedModel, in a fresh process that never imports tfseti, gives the same probabilities
    # from the raw cadences of the shard.
    served = subprocess.run(
        [sys.executable, "-c", SERVE_SCRIPT, str(fold_dir / "saved_model"),
         str(data / "train-f1-00000-of-00001.tfrec")],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert served.returncode == 0, served.stderr[-3000:]
    probabilities = json.loads(served.stdout.strip().splitlines()[-1])
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
