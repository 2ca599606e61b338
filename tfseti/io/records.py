"""The TFRecord schema of a cadence record, written by ``tfrecords_tools`` and read by everything else.

Schema version 1, one ``tf.train.Example`` per cadence:

=========  ===========  ==============================================================
feature    type         meaning
=========  ===========  ==============================================================
id         bytes        the Kaggle id (15 or 12 lowercase hex characters), utf-8
target     int64        0 / 1, or -1 when unlabeled (test)
fold       int64        cross-validation fold, or -1 (test / no folds)
cadence    bytes        raw little-endian float16 values in C order, lossless
shape      int64 x 3    (panels, time, frequency): (6, 273, 256), or (3, 273, 256) for ON only
version    int64        schema version (1)
=========  ===========  ==============================================================

Parsing needs nothing but this schema: the shape travels in every record. Callers that know the
shape (from the shard manifest) pass it to get static shapes for XLA.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

SCHEMA_VERSION = 1
PANELS_SHAPES = {"all": (6, 273, 256), "on": (3, 273, 256)}

FEATURES = {
    "id": tf.io.FixedLenFeature([], tf.string),
    "target": tf.io.FixedLenFeature([], tf.int64),
    "fold": tf.io.FixedLenFeature([], tf.int64),
    "cadence": tf.io.FixedLenFeature([], tf.string),
    "shape": tf.io.FixedLenFeature([3], tf.int64),
    "version": tf.io.FixedLenFeature([], tf.int64),
}


def _int64(values) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def encode_example(cadence_id: str, cadence: np.ndarray, target: int = -1, fold: int = -1) -> bytes:
    """Serialise one cadence (float16, 3-D) to a schema-v1 ``tf.train.Example``."""
    if cadence.dtype != np.float16 or cadence.ndim != 3:
        raise ValueError(f"cadence {cadence_id}: expected a 3-D float16 array, got "
                         f"{cadence.dtype} {cadence.shape}")
    raw = np.ascontiguousarray(cadence, dtype="<f2").tobytes()
    example = tf.train.Example(features=tf.train.Features(feature={
        "id": _bytes(cadence_id.encode("utf-8")),
        "target": _int64([int(target)]),
        "fold": _int64([int(fold)]),
        "cadence": _bytes(raw),
        "shape": _int64(cadence.shape),
        "version": _int64([SCHEMA_VERSION]),
    }))
    # Features are a protobuf map, whose wire order is otherwise per process (hash seeded): the
    # deterministic flag makes the bytes of a record, hence of a shard, reproducible across runs.
    return example.SerializeToString(deterministic=True)


def parse_example(serialized: tf.Tensor, shape: tuple[int, int, int] | None = None) -> dict:
    """Parse one serialized record into ``{id, target, fold, cadence}`` (cadence float16).

    With ``shape`` the cadence gets that static shape and a record of another shape fails
    with an error naming both; without it, the shape comes from the record (dynamic).
    """
    parsed = tf.io.parse_single_example(serialized, FEATURES)
    flat = tf.io.decode_raw(parsed["cadence"], tf.float16, little_endian=True)
    record_shape = tf.cast(parsed["shape"], tf.int32)
    if shape is None:
        cadence = tf.reshape(flat, record_shape)
    else:
        expected = tf.constant(shape, tf.int32)
        check = tf.debugging.assert_equal(
            record_shape, expected,
            message=f"record cadence shape differs from the expected {tuple(shape)}")
        with tf.control_dependencies([check]):
            cadence = tf.reshape(flat, shape)
    return {
        "id": parsed["id"],
        "target": parsed["target"],
        "fold": parsed["fold"],
        "cadence": cadence,
    }


def parse_batch(serialized: tf.Tensor, shape: tuple[int, int, int]) -> dict:
    """Parse a batch of serialized records (static ``shape`` required for batched decoding)."""
    parsed = tf.io.parse_example(serialized, FEATURES)
    check = tf.debugging.assert_equal(
        tf.cast(parsed["shape"], tf.int32),
        tf.broadcast_to(tf.constant(shape, tf.int32), tf.shape(parsed["shape"])),
        message=f"record cadence shape differs from the expected {tuple(shape)}")
    with tf.control_dependencies([check]):
        flat = tf.io.decode_raw(parsed["cadence"], tf.float16, little_endian=True)
        cadence = tf.reshape(flat, (-1, *shape))
    return {"id": parsed["id"], "target": parsed["target"], "fold": parsed["fold"],
            "cadence": cadence}
