"""The shared test harness, imported as ``from harness import ...`` from any test folder
(``pythonpath = ["tests"]``); fixtures live in ``conftest.py``.

* checks in the spirit of keras-hub's ``TestCase``: one way to check a Keras layer
  (``run_layer_test``) and a classifier (``run_model_test``);
* fresh processes: the environment of a command run in one (``subprocess_env``), a script run
  in one (``run_script``);
* data: tiny Kaggle-layout folders of noise cadences (``write_kaggle_dir``, ``random_cadence``),
  the manifest of hand-written shards (``write_shard_manifest``), Keras weight files read back
  (``read_weights_h5``);
* the GCS emulator's handle (``GcsEmulator``) and expensive set-up done once per test session
  across pytest-xdist workers (``once_per_session``).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from tfseti.io.gcs_emulator import emulator_env
from tfseti.io.kaggle import CADENCE_SHAPE, cadence_relpath

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


def random_cadence(rng: np.random.Generator, shape=CADENCE_SHAPE) -> np.ndarray:
    """A panel-normalised noise cadence with the competition's dtype and shape."""
    return rng.standard_normal(shape, dtype=np.float32).astype(np.float16)


def read_weights_h5(path) -> dict[str, np.ndarray]:
    """Every array of a Keras ``.weights.h5`` file by its path inside the file."""
    import h5py

    out = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(lambda name, item: out.__setitem__(name, item[()])
                          if isinstance(item, h5py.Dataset) else None)
    return out


def random_id(rng: np.random.Generator) -> str:
    return "".join(rng.choice(list("0123456789abcdef"), size=15))


def write_kaggle_dir(root, n_train: int = 8, n_test: int = 4, seed: int = 0,
                     positive_rate: float = 0.25) -> dict:
    """Write a tiny Kaggle-layout folder of noise cadences; returns ``{"train": df, "test": df}``.

    Fast plain-numpy data for tests of I/O stages; physics lives in ``tfseti.synth``.
    """
    rng = np.random.default_rng(seed)
    frames = {}
    for split, n, csv in (("train", n_train, "train_labels.csv"), ("test", n_test, "sample_submission.csv")):
        ids = sorted({random_id(rng) for _ in range(n)})
        while len(ids) < n:
            ids = sorted(set(ids) | {random_id(rng)})
        if split == "train":
            n_pos = max(1, int(round(positive_rate * n))) if n else 0
            targets = np.array([1] * n_pos + [0] * (n - n_pos))
            rng.shuffle(targets)
        else:
            targets = np.full(n, 0.5)
        for cid in ids:
            path = os.path.join(root, *cadence_relpath(split, cid).split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            np.save(path, random_cadence(rng))
        frame = pd.DataFrame({"id": ids, "target": targets})
        frame.to_csv(os.path.join(root, csv), index=False)
        frames[split] = frame
    return frames


def write_shard_manifest(folder, compression=None) -> dict:
    """Write the ``manifest.json`` ``tfrecords_tools.convert`` would write for the shards a test
    wrote by hand into ``folder`` (counts, classes, sizes and checksums read back from the files),
    so that readers accept the folder; returns the document."""
    import json
    from collections import Counter

    import google_crc32c
    import tensorflow as tf

    from tfseti.io import shards as shard_lib
    from tfseti.io.records import FEATURES, SCHEMA_VERSION, PANELS_SHAPES

    entries, shape = [], None
    for name in sorted(os.listdir(folder)):
        parsed = shard_lib.parse_shard_name(name)
        if parsed is None:
            continue
        path = os.path.join(str(folder), name)
        classes = Counter()
        records = 0
        for serialized in tf.data.TFRecordDataset(path, compression_type=compression or ""):
            parsed_record = tf.io.parse_single_example(
                serialized, {k: FEATURES[k] for k in ("target", "shape")})
            classes[int(parsed_record["target"])] += 1
            shape = shape or [int(v) for v in parsed_record["shape"].numpy()]
            records += 1
        raw = open(path, "rb").read()
        entries.append({**{k: parsed[k] for k in ("fold", "index", "count")}, "name": name,
                        "records": records, "classes": {str(k): classes[k] for k in sorted(classes)},
                        "bytes": len(raw), "crc32c": f"{google_crc32c.value(raw):08x}",
                        "skipped": []})
    split = shard_lib.parse_shard_name(entries[0]["name"])["split"] if entries else "train"
    folds = max([e["fold"] for e in entries] + [-1]) + 1
    shape = shape or list(PANELS_SHAPES["all"])
    doc = {"format": shard_lib.FORMAT, "schema_version": SCHEMA_VERSION, "complete": True,
           "params": {"source": None, "split": split, "folds": folds, "seed": 0, "shard_mb": None,
                      "panels": "on" if shape[0] == 3 else "all", "compression": compression},
           "cadence_shape": shape, "cadence_dtype": "float16",
           **shard_lib.summarize(entries), "shards": entries, "skipped": []}
    with open(os.path.join(str(folder), shard_lib.MANIFEST_NAME), "w") as handle:
        json.dump(doc, handle, indent=1)
    return doc


class GcsEmulator:
    """A running ``gcp-storage-emulator`` (in memory, loopback) with one bucket.

    ``url(*parts)`` gives ``gs://<bucket>/...``; ``env`` holds the variables a subprocess needs
    to reach the emulator through gcsfs; ``fs()`` is a gcsfs filesystem on it.
    """

    def __init__(self, host: str, bucket: str):
        self.host = host
        self.bucket = bucket
        self.env = emulator_env(host)

    def url(self, *parts: str) -> str:
        return "/".join([f"gs://{self.bucket}", *parts])

    def unique_url(self, name: str) -> str:
        import uuid

        return self.url(f"{name}-{uuid.uuid4().hex[:8]}")

    def fs(self):
        from tfseti.io.fs import url_to_fs

        return url_to_fs(self.url())[0]


def once_per_session(tmp_path_factory, worker_id: str, name: str, make):
    """``make(folder)`` once per test session, even across pytest-xdist workers: the first worker
    to get here runs it (holding a file lock) and the others reuse its JSON-able result."""
    base = tmp_path_factory.getbasetemp()
    if worker_id != "master":  # xdist workers share the parent of their own base folders
        base = base.parent
    root = base / name
    with open(base / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = root / "done.json"
        if done.exists():
            return json.loads(done.read_text())
        if root.exists():  # a worker that died half-way
            shutil.rmtree(root)
        root.mkdir()
        result = make(str(root))
        done.write_text(json.dumps(result))
        return result
