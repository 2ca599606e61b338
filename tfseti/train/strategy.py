"""Pick the tf.distribute strategy and the precision policy for the machine at hand.

``auto`` looks, in order, for a multi-worker ``TF_CONFIG``, a TPU (a name given, ``TPU_NAME``,
or a TPU VM's local accelerator device), several GPUs, one GPU, and falls back to the CPU.
"""

from __future__ import annotations

import glob
import json
import os
from typing import Literal

import keras
import tensorflow as tf

from tfseti.command import Refusal

StrategyKind = Literal["auto", "tpu", "mirrored", "multiworker", "onedevice", "cpu"]
STRATEGY_KINDS = ("auto", "tpu", "mirrored", "multiworker", "onedevice", "cpu")


def _tf_config_workers() -> int:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 0
    try:
        cluster = json.loads(raw).get("cluster", {})
    except json.JSONDecodeError as err:
        raise ValueError(f"TF_CONFIG is not valid JSON: {err}") from None
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def _tpu_visible(tpu: str | None) -> bool:
    # /dev/accel* (v2-v4) and /dev/vfio (v5+) are the local TPU chips of a TPU VM.
    return bool(tpu or os.environ.get("TPU_NAME") or glob.glob("/dev/accel*")
                or os.path.isdir("/dev/vfio") and os.listdir("/dev/vfio"))


def resolve_kind(kind: StrategyKind, tpu: str | None = None) -> str:
    """The concrete strategy kind ``auto`` stands for on this machine (other kinds unchanged)."""
    if kind not in STRATEGY_KINDS:
        raise ValueError(f"--strategy must be one of {', '.join(STRATEGY_KINDS)}, got {kind!r}")
    if kind != "auto":
        return kind
    if _tf_config_workers() > 1:
        return "multiworker"
    if _tpu_visible(tpu):
        return "tpu"
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) > 1:
        return "mirrored"
    return "onedevice" if gpus else "cpu"


class StrategyError(RuntimeError, Refusal):
    """A strategy that cannot start on this machine; the message is one line: what failed and
    the likely fix."""


# The likely fix, per strategy kind (the cause is named before it).
FIXES = {
    "tpu": "run on a TPU VM or a Colab TPU runtime (--tpu local), name a reachable TPU with "
           "--tpu NAME|grpc://HOST:8470, or use --strategy cpu|mirrored|onedevice",
    "mirrored": "check that the GPUs are visible (nvidia-smi, CUDA_VISIBLE_DEVICES), or use "
                "--strategy onedevice|cpu",
    "multiworker": 'set TF_CONFIG on every worker to {"cluster": {"worker": ["HOST:PORT", ...]}, '
                   '"task": {"type": "worker", "index": I}} (same cluster, own index), or use '
                   "--strategy mirrored|cpu on one machine",
    "onedevice": "use --strategy cpu",
    "cpu": "check the TensorFlow installation (python -c 'import tensorflow')",
}


def _cause(err: BaseException) -> str:
    """The first line of an error, without TensorFlow's op and graph decorations."""
    text = getattr(err, "message", None) or str(err) or type(err).__name__
    text = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    text = text.split(" Failed in initialization:")[0].split(" [Op:")[0].strip()
    return text if len(text) <= 200 else text[:197] + "..."


def _explain(kind: str, tpu: str | None, err: BaseException) -> str:
    if kind == "tpu":
        name = tpu or os.environ.get("TPU_NAME") or "local"
        text = str(err)
        if "TPUs not found" in text or "No OpKernel was registered" in text:
            what = f"no TPU found (--tpu {name})"
        else:
            what = f"TPU {name!r} cannot be reached ({type(err).__name__}: {_cause(err)})"
        return f"--strategy tpu: {what}: {FIXES['tpu']}"
    where = " from TF_CONFIG" if kind == "multiworker" else ""
    return (f"--strategy {kind} cannot start{where} ({type(err).__name__}: {_cause(err)}): "
            f"{FIXES.get(kind, FIXES['cpu'])}")


def make_strategy(kind: StrategyKind = "auto", tpu: str | None = None) -> tf.distribute.Strategy:
    """Build the strategy; ``tpu`` is a TPU name, a ``grpc://`` address, or ``local`` (TPU VMs).

    A strategy that cannot start raises :class:`StrategyError` with one line naming the cause
    and the likely fix (no TPU, a malformed ``TF_CONFIG``, ...)."""
    try:
        resolved = resolve_kind(kind, tpu)
    except ValueError as err:  # TF_CONFIG that is no JSON (auto looks at it too)
        stem = "multiworker" if "TF_CONFIG" in str(err) else kind
        raise StrategyError(_explain(stem, tpu, err)) from None
    try:
        return _build(resolved, tpu)
    except Exception as err:  # noqa: BLE001  (every failure to start becomes one line)
        raise StrategyError(_explain(resolved, tpu, err)) from None


def _build(kind: str, tpu: str | None) -> tf.distribute.Strategy:
    if kind == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu=tpu or os.environ.get("TPU_NAME") or "local")
        tf.config.experimental_connect_to_cluster(resolver)  # as TPUClusterResolver.connect does
        # TensorFlow logs its TPU start-up steps at INFO; the run's plan names the strategy and
        # its replicas, and a failure is one line (StrategyError).
        logger, level = tf.get_logger(), tf.get_logger().level
        logger.setLevel("WARNING")
        try:
            tf.tpu.experimental.initialize_tpu_system(resolver)
        finally:
            logger.setLevel(level)
        return tf.distribute.TPUStrategy(resolver)
    if kind == "mirrored":
        # Left alone, MirroredStrategy takes every GPU or else one CPU; naming the logical CPU
        # devices lets it mirror over a CPU split with set_logical_device_configuration.
        gpus = tf.config.list_logical_devices("GPU")
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy(devices=[d.name for d in devices])
    if kind == "multiworker":
        if _tf_config_workers() < 1:
            raise ValueError("TF_CONFIG is unset or lists no worker")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if kind == "onedevice":
        device = "/gpu:0" if tf.config.list_physical_devices("GPU") else "/cpu:0"
        return tf.distribute.OneDeviceStrategy(device)
    return tf.distribute.OneDeviceStrategy("/cpu:0")


def strategy_device_kind(strategy: tf.distribute.Strategy) -> str:
    """``tpu``, ``gpu`` or ``cpu``: what the strategy's replicas run on."""
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "tpu"
    devices = strategy.extended.worker_devices
    return "gpu" if any("GPU" in d.upper() for d in devices) else "cpu"


DEFAULT_PRECISION = {"tpu": "mixed_bfloat16", "gpu": "mixed_float16", "cpu": "float32"}


def resolve_precision(precision: str, strategy: tf.distribute.Strategy) -> str:
    """``auto`` -> mixed_bfloat16 on TPU, mixed_float16 on GPU, float32 on CPU."""
    if precision == "auto":
        return DEFAULT_PRECISION[strategy_device_kind(strategy)]
    if precision == "mixed_float16" and strategy_device_kind(strategy) == "tpu":
        raise ValueError("train.precision mixed_float16 is not supported on TPU; "
                         "use mixed_bfloat16 (or auto)")
    return precision


def set_precision(precision: str, strategy: tf.distribute.Strategy) -> str:
    """Set Keras's global dtype policy (before building the model); returns the policy name."""
    policy = resolve_precision(precision, strategy)
    keras.mixed_precision.set_global_policy(policy)
    return policy


def mirrors_variables(strategy: tf.distribute.Strategy) -> bool:
    """True for MirroredStrategy and MultiWorkerMirroredStrategy (the latter is no subclass of
    the former): one copy of each variable per device, each replica's step compiled apart."""
    return isinstance(strategy, (tf.distribute.MirroredStrategy,
                                 tf.distribute.MultiWorkerMirroredStrategy))


def global_batch_size(batch_per_replica: int, strategy: tf.distribute.Strategy) -> int:
    """Global batch = per-replica batch x replicas in sync (all workers, all devices)."""
    return batch_per_replica * strategy.num_replicas_in_sync


def worker_role(strategy: tf.distribute.Strategy) -> tuple[bool, int]:
    """``(is_chief, task index)``: the chief (task ``chief``, else ``worker`` 0) writes the run's
    outputs; in a single-worker run the one process is the chief."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return True, 0
    task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
    has_chief = bool(resolver.cluster_spec().as_dict().get("chief"))
    return (task_type == "chief" or (task_type == "worker" and task_id == 0 and not has_chief),
            task_id)
