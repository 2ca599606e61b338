"""MultiWorkerMirroredStrategy: two worker processes on loopback ports train one fold together;
the chief writes the run, the other worker its own copy, and both end with the same weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import portpicker
import pytest

from harness import subprocess_env
from harness import read_weights_h5
from train_shards import write_easy_shards

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.heavy
@pytest.mark.slow
def test_two_workers_train_to_the_end_with_identical_weights(tmp_path):
    data = tmp_path / "shards"
    write_easy_shards(str(data), records_per_fold=16, folds=2, seed=0)
    out, worker_out = tmp_path / "run", tmp_path / "worker1"
    cluster = {"worker": [f"127.0.0.1:{portpicker.pick_unused_port()}" for _ in range(2)]}
    command = [sys.executable, "-m", "tfseti.train", "--config", "cpu_demo",
               "--strategy", "multiworker", "--fold", "1", "--data", str(data),
               "--out", str(out), "--worker-out", str(worker_out), "--no-report",
               # a small plain CNN: the strategy is under test, not the backbone
               "model.name=plain_cnn_s",
               # global batch 8 = 4 per worker: 2 steps per epoch over the 16 training records
               "view.resize=[32, 32]", "train.epochs=2", "train.batch_per_replica=4",
               "train.steps_per_execution=1", "train.warmup_epochs=0",
               # the multi-GPU path: each replica's forward and backward XLA-compiled, the
               # gradient all-reduce across the two processes outside XLA
               "train.jit_compile=true", "data.shuffle_buffer=16"]
    workers, log_paths = [], [tmp_path / f"worker{index}.log" for index in range(2)]
    for index, log_path in enumerate(log_paths):
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = subprocess_env(TF_CONFIG=json.dumps(tf_config))
        # Logs go to files: a full pipe would block one worker and with it the other's
        # collectives.
        with open(log_path, "w") as log:
            workers.append(subprocess.Popen(command, cwd=REPO, env=env, stdout=log,
                                            stderr=subprocess.STDOUT))
    try:
        for worker in workers:
            worker.wait(timeout=500)
    finally:
        for worker in workers:
            worker.kill()
    logs = [path.read_text() for path in log_paths]
    for index, (worker, log) in enumerate(zip(workers, logs)):
        assert worker.returncode == 0, f"worker {index}:\n{log[-4000:]}"
    assert "worker 1 (not the chief): outputs go to" in logs[1]

    chief_result = json.loads((out / "fold1" / "result.json").read_text())
    assert chief_result["replicas"] == 2
    assert len(chief_result["history"]["loss"]) == 2
    assert not (out / "worker1").exists()  # the other worker wrote only where it was told
    chief = read_weights_h5(out / "fold1" / "final.weights.h5")
    other = read_weights_h5(worker_out / "fold1" / "final.weights.h5")
    assert chief.keys() == other.keys() and len(chief) > 20
    # Trainable weights follow the all-reduced gradients; BatchNorm's moving statistics agree
    # because the trainer averages each replica's copy before validation and saving.
    for name in chief:
        np.testing.assert_allclose(other[name], chief[name], rtol=1e-5, atol=1e-6, err_msg=name)
    # Moving means start at zero: non-zero ones show the statistics were really updated.
    moving_means = [name for name in chief if "batch_normalization" in name and name.endswith("/2")]
    assert moving_means and all(np.abs(chief[name]).max() > 0 for name in moving_means)
