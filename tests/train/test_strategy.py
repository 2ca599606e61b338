"""Strategy resolution, global batch and precision defaults; mirroring over 2 logical CPUs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from harness import REPO, run_script
from tfseti.train import strategy as strategy_lib


def test_cpu_strategy_has_one_replica_float32_and_global_batch():
    strategy = strategy_lib.make_strategy("cpu")
    assert strategy.num_replicas_in_sync == 1
    assert strategy_lib.strategy_device_kind(strategy) == "cpu"
    assert strategy_lib.resolve_precision("auto", strategy) == "float32"
    assert strategy_lib.resolve_precision("mixed_bfloat16", strategy) == "mixed_bfloat16"
    assert strategy_lib.global_batch_size(16, strategy) == 16


def test_auto_resolves_by_environment(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv("TPU_NAME", raising=False)
    monkeypatch.setattr(strategy_lib, "_tpu_visible", lambda tpu: bool(tpu))
    assert strategy_lib.resolve_kind("auto") == "cpu"  # the test machine has no GPU
    assert strategy_lib.resolve_kind("auto", tpu="my-tpu") == "tpu"
    cluster = {"cluster": {"worker": ["localhost:1", "localhost:2"]}, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(cluster))
    assert strategy_lib.resolve_kind("auto") == "multiworker"
    assert strategy_lib.resolve_kind("cpu") == "cpu"
    with pytest.raises(ValueError, match="--strategy must be one of"):
        strategy_lib.resolve_kind("gpu")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        strategy_lib.resolve_kind("auto")


MIRRORED_SCRIPT = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tfseti.train import strategy as strategy_lib
    strategy = strategy_lib.make_strategy("mirrored")
    with strategy.scope():
        variable = tf.Variable(0.0)
    def step():
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        return tf.cast(replica, tf.float32) + 1.0
    per_replica = strategy.run(step)
    total = strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "global_batch": strategy_lib.global_batch_size(8, strategy),
        "sum": float(total),
        "precision": strategy_lib.resolve_precision("auto", strategy),
        "mirrored": type(variable).__name__,
    }))
""")


def test_mirrored_strategy_over_two_logical_cpus():
    # Logical devices must be configured before TensorFlow initialises: a fresh process.
    report = run_script(MIRRORED_SCRIPT, timeout=120)
    assert report["replicas"] == 2
    assert report["global_batch"] == 16
    assert report["sum"] == 3.0  # replica ids 0 and 1, each + 1: both replicas ran
    assert report["precision"] == "float32"
    assert report["mirrored"] == "MirroredVariable"


EQUIVALENCE_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from tfseti.data.augmenter import Augmenter
    from tfseti.data.config import ViewConfig
    from tfseti.data.views import view_shape
    from tfseti.train import strategy as strategy_lib
    from tfseti.train.losses import make_loss
    from tfseti.train.optim import make_optimizer
    from tfseti.train.train_config import TrainConfig
    from tfseti.train.trainer import CadenceClassifier

    view = ViewConfig(name="on", resize=(16, 16))
    shape = view_shape(view, 6, 8, 16)
    rng = np.random.default_rng(0)
    cadence = rng.standard_normal((32, 6, 8, 16)).astype(np.float16)
    target = (np.arange(32) % 2).astype(np.float32)
    train = TrainConfig(epochs=1, batch_per_replica=4, optimizer="sgd", learning_rate=0.05,
                        schedule="constant", weight_decay=0.0)

    def losses(kind):
        strategy = strategy_lib.make_strategy(kind)
        global_batch = strategy_lib.global_batch_size(train.batch_per_replica, strategy) \\
            if kind == "mirrored" else 8
        keras.utils.set_random_seed(1)
        with strategy.scope():
            image = keras.Input(shape)
            x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(image)
            x = keras.layers.GlobalAveragePooling2D()(x)
            net = keras.Model(image, keras.layers.Dense(1)(x))
            model = CadenceClassifier(net, Augmenter(view))
            model.compile(optimizer=make_optimizer(train, 4), loss=make_loss(train),
                          jit_compile=True)
        data = tf.data.Dataset.from_tensor_slices({"cadence": cadence, "target": target})
        history = model.fit(data.batch(global_batch), epochs=3, verbose=0)
        return (strategy.num_replicas_in_sync, global_batch, history.history["loss"],
                model.jit_per_replica)

    print(json.dumps({"mirrored": losses("mirrored"), "cpu": losses("cpu")}))
""")


def test_mirrored_two_replicas_follow_the_one_device_loss_curve():
    report = run_script(EQUIVALENCE_SCRIPT, timeout=300)
    replicas, global_batch, mirrored, per_replica_xla = report["mirrored"]
    assert (replicas, global_batch) == (2, 8)
    # XLA per replica under Mirrored (one cluster cannot span devices); whole step on one device.
    one_replica, _, single, one_device_per_replica = report["cpu"]
    assert one_replica == 1
    assert per_replica_xla and not one_device_per_replica
    assert len(mirrored) == 3 and mirrored[0] != mirrored[-1]  # it trained
    np.testing.assert_allclose(mirrored, single, rtol=1e-4)


BATCHNORM_SCRIPT = textwrap.dedent("""
    import json
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from tfseti.train import strategy as strategy_lib
    from tfseti.train.run_config import load_run_config
    from tfseti.data.augmenter import Augmenter
    from tfseti.train.trainer import build_classifier

    strategy = strategy_lib.make_strategy("mirrored")
    run = load_run_config("cpu_demo", ["view.resize=[32, 32]"])
    with strategy.scope():
        model = build_classifier(run, (6, 273, 256), Augmenter(run.view, run.augment, run.mixup))
    bn = [layer for layer in model.net._flatten_layers(include_self=False, recursive=True)
          if isinstance(layer, keras.layers.BatchNormalization)][0]
    # Each replica's copy as it would be after training on its own batches.
    copies = strategy.experimental_local_results(bn.moving_mean.value)
    for replica, copy in enumerate(copies):
        copy.assign(np.full(copy.shape, 2.0 * replica + 1.0, np.float32))
    before = [c.numpy().tolist()[:2] for c in copies]
    model.average_moving_statistics()
    after = [c.numpy().tolist()[:2] for c in strategy.experimental_local_results(bn.moving_mean.value)]

    import dataclasses
    bad = dataclasses.replace(run, train=dataclasses.replace(run.train, sync_batchnorm=True,
                                                             jit_compile=True))
    try:
        with strategy.scope():
            build_classifier(bad, (6, 273, 256), Augmenter(bad.view, bad.augment, bad.mixup))
        error = None
    except ValueError as err:
        error = str(err)
    print(json.dumps({"copies": len(copies), "before": before, "after": after, "error": error}))
""")


def test_mirrored_batchnorm_copies_are_averaged_and_sync_needs_no_xla():
    report = run_script(BATCHNORM_SCRIPT, timeout=300, cwd=REPO)
    assert report["copies"] == 2
    assert report["before"] == [[1.0, 1.0], [3.0, 3.0]]
    assert report["after"] == [[2.0, 2.0], [2.0, 2.0]]  # the replicas' mean, on every replica
    assert "train.sync_batchnorm needs train.jit_compile = false" in report["error"]


# -- strategies that cannot start: one line with the likely fix, no traceback ------------------


def _train_cli(strategy: str, **env) -> subprocess.CompletedProcess:
    # A fresh process: a TPU connection attempt changes TensorFlow's global context.
    return subprocess.run(
        [sys.executable, "-m", "tfseti.train", "--config", "cpu_demo", "--strategy",
         strategy, "--data", "/nonexistent/shards"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "", **env})


def _one_error_line(result) -> str:
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-3000:]
    return errors[0]


def test_no_tpu_says_so_in_one_line_with_the_fix():
    """Before: two chained tracebacks, ~40 lines, exit 1 (this machine has no TPU)."""
    env = {k: v for k, v in os.environ.items() if k != "TPU_NAME"}
    result = subprocess.run(
        [sys.executable, "-m", "tfseti.train", "--config", "cpu_demo", "--strategy",
         "tpu"], cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**env, "CUDA_VISIBLE_DEVICES": ""})
    line = _one_error_line(result)
    # Not ~40 lines: TensorFlow's INFO lines of the TPU start-up are quiet too.
    assert len((result.stdout + result.stderr).strip().splitlines()) <= 2, result.stderr
    assert line == ("error: --strategy tpu: no TPU found (--tpu local): run on a TPU VM or a "
                    "Colab TPU runtime (--tpu local), name a reachable TPU with "
                    "--tpu NAME|grpc://HOST:8470, or use --strategy cpu|mirrored|onedevice"), line


TF_CONFIG_FIX = ('set TF_CONFIG on every worker to {"cluster": {"worker": ["HOST:PORT", ...]}, '
                 '"task": {"type": "worker", "index": I}} (same cluster, own index), or use '
                 "--strategy mirrored|cpu on one machine")


def test_malformed_tf_config_says_so_in_one_line_with_the_fix(monkeypatch, capsys):
    # A worker index outside the cluster: TensorFlow's own check, in the real entry point.
    tf_config = {"cluster": {"worker": ["localhost:1", "localhost:2"]},
                 "task": {"type": "worker", "index": 5}}
    line = _one_error_line(_train_cli("multiworker", TF_CONFIG=json.dumps(tf_config)))
    assert line == ("error: --strategy multiworker cannot start from TF_CONFIG (ValueError: The "
                    f"`task_id` 5 exceeds the maximum id of worker.): {TF_CONFIG_FIX}"), line
    # TF_CONFIG that is no JSON (fails before TensorFlow is asked: in this process).
    from tfseti.train import cli

    monkeypatch.setenv("TF_CONFIG", "{not json")
    assert cli.main(["--config", "cpu_demo", "--strategy", "multiworker"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --strategy multiworker cannot start from TF_CONFIG (ValueError: "
                          "TF_CONFIG is not valid JSON: Expecting property name") and \
        err.endswith(f"): {TF_CONFIG_FIX}\n") and err.count("\n") == 1, err


def test_every_start_failure_becomes_one_strategy_error(monkeypatch):
    import tensorflow as tf

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected\nmore")

    monkeypatch.setattr(tf.distribute, "MirroredStrategy", broken)
    with pytest.raises(strategy_lib.StrategyError) as info:
        strategy_lib.make_strategy("mirrored")
    assert str(info.value) == (
        "--strategy mirrored cannot start (RuntimeError: CUDA_ERROR_NO_DEVICE: no CUDA-capable "
        "device is detected): check that the GPUs are visible (nvidia-smi, "
        "CUDA_VISIBLE_DEVICES), or use --strategy onedevice|cpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(strategy_lib.StrategyError, match=r"^--strategy multiworker cannot start "
                       r"from TF_CONFIG \(ValueError: TF_CONFIG is unset or lists no worker\)"):
        strategy_lib.make_strategy("multiworker")
