"""Training with shards and outputs on ``gs://`` (the GCS emulator): ``--fold all`` is killed
mid-fold, resumed on a "new machine" (an empty staging folder) from the backup in the bucket,
then predicted from the bucket."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from harness import subprocess_env
from harness import write_kaggle_dir
from train_shards import write_easy_shards

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _train_command(data: str, out: str) -> list[str]:
    return [sys.executable, "-m", "tfseti.train", "--config", "cpu_demo",
            "--strategy", "cpu", "--fold", "all", "--data", data, "--out", out,
            "--no-report", "model.name=plain_cnn_s",  # the bucket is under test, not the backbone
            "view.resize=[32, 32]", "train.epochs=1", "train.batch_per_replica=4",
            "train.steps_per_execution=1", "train.warmup_epochs=0", "train.jit_compile=false",
            "train.backup_every_steps=2", "data.deterministic=true", "data.shuffle_buffer=16"]


def _env(emulator, staging_dir) -> dict:
    return subprocess_env(**emulator.env, TFSETI_STAGING=str(staging_dir))


@pytest.mark.heavy
@pytest.mark.slow
def test_fold_all_on_gcs_resumes_from_the_bucket_and_predicts_from_it(gcs_emulator, tmp_path):
    fs = gcs_emulator.fs()
    local_shards = tmp_path / "shards"
    write_easy_shards(str(local_shards), records_per_fold=16, folds=2, seed=0)
    data = gcs_emulator.unique_url("shards")
    fs.put(str(local_shards) + "/", data[5:], recursive=True)
    out = gcs_emulator.unique_url("run")
    bucket_out = out[5:]

    # First machine: killed once fold 0 has a backup in the bucket.
    killed = subprocess.Popen(_train_command(data, out), cwd=REPO,
                              env=_env(gcs_emulator, tmp_path / "machine1"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while True:
        fs.invalidate_cache()
        if fs.exists(f"{bucket_out}/fold0/backup/checkpoint"):
            break
        assert killed.poll() is None, "the run ended before a backup reached the bucket"
        assert time.monotonic() < deadline, "no backup in the bucket within 240 s"
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    fs.invalidate_cache()
    assert not fs.exists(f"{bucket_out}/fold0/result.json")

    # Second machine: nothing local; the backup comes from the bucket.
    resumed = subprocess.run(_train_command(data, out), cwd=REPO,
                             env=_env(gcs_emulator, tmp_path / "machine2"),
                             capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "files of an earlier run fetched" in resumed.stdout
    assert "resuming from step" in resumed.stdout
    assert f"fold 1 model: {out}/fold1/model.keras" in resumed.stdout

    fs.invalidate_cache()
    names = {os.path.relpath(p, bucket_out) for p in fs.find(bucket_out)}
    for fold in (0, 1):
        for name in ("saved_model/saved_model.pb", "model.keras", "result.json", "oof.csv",
                     "config.json", "log.csv"):
            assert f"fold{fold}/{name}" in names, sorted(names)
    assert not any("/backup/" in name for name in names), "finished folds keep no backup"
    assert json.loads(fs.cat_file(f"{bucket_out}/fold0/config.json"))["data"]["data"] == data
    with fs.open(f"{bucket_out}/oof.csv") as handle:
        oof = pd.read_csv(handle, dtype={"id": str})
    assert len(oof) == 32 and oof["id"].is_unique
    cv = json.loads(fs.cat_file(f"{bucket_out}/cv.json"))
    assert cv["cv_auc"] == pytest.approx(roc_auc_score(oof["target"], oof["score"]))
    assert cv["saved_models"] == {"0": "fold0/saved_model", "1": "fold1/saved_model"}

    # Third machine: both folds are complete in the bucket, nothing is trained again.
    again = subprocess.run(_train_command(data, out), cwd=REPO,
                           env=_env(gcs_emulator, tmp_path / "machine3"),
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("already trained") == 2

    # Predict from the bucket: fold models and a Kaggle-layout test folder, submission written back.
    kaggle = tmp_path / "kaggle"
    frames = write_kaggle_dir(str(kaggle), n_train=2, n_test=5, seed=3)
    kaggle_url = gcs_emulator.unique_url("kaggle")
    fs.put(str(kaggle) + "/", kaggle_url[5:], recursive=True)
    submission = f"{out}/submission.csv"
    predicted = subprocess.run(
        [sys.executable, "-m", "tfseti.predict", "--model", out, "--data", kaggle_url,
         "--tta", "none", "--out", submission], cwd=REPO,
        env=_env(gcs_emulator, tmp_path / "machine4"), capture_output=True, text=True, timeout=300)
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    fs.invalidate_cache()
    with fs.open(submission[5:]) as handle:
        table = pd.read_csv(handle, dtype={"id": str})
    assert list(table["id"]) == list(frames["test"]["id"])
    assert table["target"].between(0, 1).all()
