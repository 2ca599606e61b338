"""Run one batched TF function three ways: eagerly, inside ``tf.data.Dataset.map``, and XLA-compiled.

Every op of ``tfseti.data`` must behave the same in all three (that is where the trainer and the
host pipeline call them), so tests are parametrised over ``MODES`` and call ``run``/``run_calls``.
``run_calls`` feeds several argument sets through *one* traced/compiled function (probabilities
and seeds are tensors), which keeps the XLA compile count, the cost of these tests, low.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

MODES = ("eager", "dataset_map", "xla")


def _numpy(structure):
    return tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else np.asarray(t),
                                 structure)


def run_calls(mode: str, fn, calls: list[tuple]) -> list:
    """``[fn(*args) for args in calls]`` in ``mode``; all calls share shapes/dtypes; numpy out."""
    calls = [tuple(tf.nest.map_structure(np.asarray, a) for a in args) for args in calls]
    if mode == "eager":
        return [_numpy(fn(*args)) for args in calls]
    if mode == "dataset_map":
        stacked = tf.nest.map_structure(lambda *xs: np.stack(xs), *calls)
        dataset = tf.data.Dataset.from_tensor_slices(stacked).map(lambda *a: fn(*a))
        return [_numpy(out) for out in dataset]
    if mode == "xla":
        compiled = tf.function(fn, jit_compile=True, autograph=False)
        outs = [_numpy(compiled(*args)) for args in calls]
        assert compiled.experimental_get_tracing_count() == 1, "retraced: shapes or dtypes differ"
        return outs
    raise ValueError(mode)


def run(mode: str, fn, *args):
    """``fn(*args)`` in ``mode``, results as numpy (same nesting)."""
    return run_calls(mode, fn, [args])[0]


def seed(a: int, b: int = 0) -> np.ndarray:
    return np.array([a, b], np.int64)


def prob(p: float) -> np.ndarray:
    return np.float32(p)
