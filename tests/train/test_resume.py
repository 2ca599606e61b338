"""Preemption: a run killed with SIGKILL mid-epoch and started again with the same command ends
with the weights of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from harness import subprocess_env
from tfseti.train.train_config import TrainConfig

from harness import read_weights_h5
from train_shards import write_easy_shards

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS_PER_EPOCH = 8  # 32 training records (fold 0) / batch 4


def _command(data, out) -> list[str]:
    # Head warm-up (epoch 1) then the whole network (epochs 2-3); augmentation and mixup on, so
    # the resume must also restore their step-derived seeds.
    return [sys.executable, "-m", "tfseti.train", "--config", "cpu_demo",
            "--strategy", "cpu", "--fold", "1", "--data", str(data), "--out", str(out),
            "--no-report", "model.name=plain_cnn_s",  # resuming is under test, not the backbone
            "view.resize=[32, 32]", "train.epochs=3", "train.head_warmup_epochs=1",
            "train.batch_per_replica=4", "train.steps_per_execution=1",
            "train.warmup_epochs=0", "train.backup_every_steps=2", "train.jit_compile=false",
            "data.deterministic=true", "data.shuffle_buffer=16"]


def _env():
    return subprocess_env(TF_DETERMINISTIC_OPS="1")


def _backed_up_steps(backup_dir) -> list[int]:
    # A backup is complete once the checkpoint index lists it.
    index = os.path.join(backup_dir, "checkpoint")
    if not os.path.exists(index):
        return []
    with open(index) as handle:
        return [int(line.rsplit("-", 1)[-1].strip().strip('"')) for line in handle
                if line.startswith("all_model_checkpoint_paths")]


@pytest.mark.heavy
@pytest.mark.slow
def test_sigkill_mid_epoch_then_rerun_ends_with_the_uninterrupted_weights(tmp_path):
    data = tmp_path / "shards"
    write_easy_shards(str(data), records_per_fold=32, folds=2, seed=0)
    uninterrupted_out, resumed_out = tmp_path / "uninterrupted", tmp_path / "resumed"
    uninterrupted = subprocess.Popen(_command(data, uninterrupted_out), cwd=REPO, env=_env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killed = subprocess.Popen(_command(data, resumed_out), cwd=REPO, env=_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    backup_dir = resumed_out / "fold1" / "backup"
    # Kill once a backup inside the main phase's first epoch exists (steps 9..15).
    deadline = time.monotonic() + 240
    while not any(STEPS_PER_EPOCH < s < 2 * STEPS_PER_EPOCH for s in _backed_up_steps(backup_dir)):
        assert killed.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no mid-epoch backup within 240 s"
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert not (resumed_out / "fold1" / "final.weights.h5").exists()

    resumed = subprocess.run(_command(data, resumed_out), cwd=REPO, env=_env(),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    out, _ = uninterrupted.communicate(timeout=300)
    assert uninterrupted.returncode == 0, out[-3000:]
    assert "resuming from" not in out

    line = next(line for line in resumed.stdout.splitlines() if line.startswith("resuming from"))
    step = int(line.split()[3])
    assert STEPS_PER_EPOCH < step < 3 * STEPS_PER_EPOCH and step % STEPS_PER_EPOCH, line
    assert not backup_dir.exists()  # removed once the fold is done

    expected = read_weights_h5(uninterrupted_out / "fold1" / "final.weights.h5")
    got = read_weights_h5(resumed_out / "fold1" / "final.weights.h5")
    assert sorted(got) == sorted(expected) and len(expected) > 20
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-6, err_msg=name)
    # The epoch logs of the resumed run are those of one run: 3 epochs, the same val AUCs.
    history = {name: json.loads((out_dir / "fold1" / "result.json").read_text())["history"]
               for name, out_dir in (("u", uninterrupted_out), ("r", resumed_out))}
    assert len(history["r"]["val_auc"]) == 3
    np.testing.assert_allclose(history["r"]["val_auc"], history["u"]["val_auc"], atol=1e-6)
    log_rows = (resumed_out / "fold1" / "log.csv").read_text().splitlines()
    assert [row.split(",", 1)[0] for row in log_rows[1:]] == ["0", "1", "2"]


def test_backup_interval_is_validated():
    with pytest.raises(ValueError, match="train.backup_every_steps must be >= 0"):
        TrainConfig(backup_every_steps=-1)
    with pytest.raises(ValueError, match=r"multiple of train.steps_per_execution \(4\)"):
        TrainConfig(backup_every_steps=6, steps_per_execution=4)
    assert TrainConfig(backup_every_steps=8, steps_per_execution=4).backup_every_steps == 8
