"""The shared test harness, in the spirit of keras-hub's ``TestCase``: one way to check a Keras
layer (``run_layer_test``), a classifier (``run_model_test``), and the environment of a command
run in a fresh process (``subprocess_env``). Imported as ``from harness import ...`` from any
test folder (``pythonpath = ["tests"]``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def subprocess_env(**extra: str) -> dict:
    """``os.environ`` for a ``python -m tfseti...`` child: TensorFlow's C++ lines quiet, no GPU
    probing (the tests run on CPUs), plus ``extra``."""
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", **extra}


def _outputs(value) -> list[np.ndarray]:
    import tensorflow as tf

    return [np.asarray(t) for t in tf.nest.flatten(value)]


def run_layer_test(layer, inputs, expected_output_shape=None, *, xla: bool = True,
                   training: bool = True, atol: float = 1e-5) -> np.ndarray:
    """Check a layer of ``tfseti.models`` the way every one of them must behave; returns its
    inference output on ``inputs``.

    * called on ``inputs``: finite outputs of ``expected_output_shape`` (when given), in
      inference and (``training``) in training mode;
    * serialised with Keras and rebuilt in safe mode: registered as ``tfseti>ClassName``, the same
      config, and with the same weights the same outputs;
    * (``xla``) the same outputs inside ``tf.function(jit_compile=True)``: it runs in the
      accelerator recipes' compiled train step.
    """
    import keras
    import tensorflow as tf

    if training:   # first: it may move BatchNorm statistics, which the checks below then share
        assert all(np.isfinite(v).all() for v in _outputs(layer(inputs, training=True)))
    values = _outputs(layer(inputs, training=False))
    if expected_output_shape is not None:
        assert tuple(values[0].shape) == tuple(expected_output_shape), values[0].shape
    assert all(np.isfinite(v).all() for v in values)

    config = keras.saving.serialize_keras_object(layer)
    assert config["registered_name"] == f"tfseti>{type(layer).__name__}", config["registered_name"]
    clone = keras.saving.deserialize_keras_object(config, safe_mode=True)
    assert type(clone) is type(layer) and clone.get_config() == layer.get_config()
    clone(inputs, training=False)   # built, so that it has weights to receive
    clone.set_weights(layer.get_weights())
    for got, expected in zip(_outputs(clone(inputs, training=False)), values):
        np.testing.assert_allclose(got, expected, atol=atol)

    if xla:
        compiled = tf.function(lambda x: layer(x, training=False), jit_compile=True)
        for got, expected in zip(_outputs(compiled(inputs)), values):
            np.testing.assert_allclose(got, expected, atol=atol)
    return values[0] if len(values) == 1 else values


def check_logits(model, x, units: int, training: bool = False) -> np.ndarray:
    """Run ``model`` and assert float32 finite logits of shape ``(B, units)``."""
    logits = model(x, training=training)
    assert logits.dtype == "float32", logits.dtype
    assert tuple(logits.shape) == (x.shape[0], units)
    logits = np.asarray(logits)
    assert np.isfinite(logits).all()
    return logits


def run_model_test(model, x, units: int, save_dir=None) -> np.ndarray:
    """Check a classifier of ``create_model``; returns its inference logits on ``x``.

    * float32 finite logits ``(B, units)`` in inference and in training mode (dropout paths);
    * (``save_dir``) saved as ``.keras`` and reloaded in safe mode: identical outputs.
    """
    import keras

    check_logits(model, x, units, training=True)   # before: moves BN statistics
    logits = check_logits(model, x, units)
    if save_dir is not None:
        path = Path(save_dir) / f"{model.name}.keras"
        model.save(path)
        reloaded = keras.saving.load_model(path, safe_mode=True)
        np.testing.assert_array_equal(np.asarray(reloaded(x, training=False)), logits)
    return logits


def run_script(script: str, *args: str, timeout: float = 300, cwd=None, env=None):
    """Run ``python -c script args`` in a fresh process (``subprocess_env`` unless ``env``) and
    return the JSON value of its last line of output; a non-zero exit fails with its stderr.

    A fresh process is how a test gets what one process cannot undo: logical devices configured
    before TensorFlow starts, a module never imported, an installed copy of the package.
    """
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", script, *map(str, args)], cwd=cwd,
                          env=subprocess_env() if env is None else env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
