"""The TFRecord schema of a cadence record, written by ``tfseti convert`` and read by everything else.

One ``tf.train.Example`` per cadence:

============  ===========  ===========================================================================
feature       type         meaning
============  ===========  ===========================================================================
id            bytes        the Kaggle id (15 or 12 lowercase hex characters), utf-8
target        int64        0 / 1, or -1 when unlabeled (test); in a pseudo-labelled record the hard
                           label of its soft target (``soft_target >= 0.5``)
fold          int64        cross-validation fold, or -1 (test / no folds)
cadence       bytes        raw little-endian float16 values in C order, lossless
shape         int64 x 3    (panels, time, frequency): (6, 273, 256), or (3, 273, 256) for ON only
version       int64        schema version of the record (1 or 2)
soft_target   float        v2 only: the target in [0, 1] training uses (a teacher's probability)
source        bytes        v2 only: where the label came from (``pseudo:<teacher runs>``), utf-8
============  ===========  ===========================================================================

Version 1 (what ``tfseti convert`` writes: Kaggle labels) has no ``soft_target`` and no
``source``; version 2 adds them (``tfseti.pseudo``). Both read with the one parser: a v1 record's
training target is its ``target``, a v2 record's its ``soft_target`` (``parse_*`` return it as
``target``, float32, plus ``source``, "" for v1).

Parsing needs nothing but this schema: the shape travels in every record. Callers that know the
shape (from the shard manifest) pass it to get static shapes for XLA.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

SCHEMA_VERSION = 1        # what the converter writes (hard Kaggle labels)
SOFT_SCHEMA_VERSION = 2   # records with a soft target and its source (pseudo-labels)
READ_SCHEMA_VERSIONS = (SCHEMA_VERSION, SOFT_SCHEMA_VERSION)
NO_SOFT_TARGET = -1.0     # what a v1 record parses to: no soft target, use ``target``
PANELS_SHAPES = {"all": (6, 273, 256), "on": (3, 273, 256)}

FEATURES = {
    "id": tf.io.FixedLenFeature([], tf.string),
    "target": tf.io.FixedLenFeature([], tf.int64),
    "fold": tf.io.FixedLenFeature([], tf.int64),
    "cadence": tf.io.FixedLenFeature([], tf.string),
    "shape": tf.io.FixedLenFeature([3], tf.int64),
    "version": tf.io.FixedLenFeature([], tf.int64),
    # Absent from v1 records: the defaults stand for "none" (read in one parse either way).
    "soft_target": tf.io.FixedLenFeature([], tf.float32, default_value=NO_SOFT_TARGET),
    "source": tf.io.FixedLenFeature([], tf.string, default_value=""),
}


def _int64(values) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def encode_example(cadence_id: str, cadence: np.ndarray, target: int = -1, fold: int = -1,
                   soft_target: float | None = None, source: str = "") -> bytes:
    """Serialise one cadence (float16, 3-D) to a ``tf.train.Example``: schema v1, or v2 when a
    ``soft_target`` in [0, 1] is given (its hard ``target`` is then ``soft_target >= 0.5``)."""
    if cadence.dtype != np.float16 or cadence.ndim != 3:
        raise ValueError(f"cadence {cadence_id}: expected a 3-D float16 array, got "
                         f"{cadence.dtype} {cadence.shape}")
    raw = np.ascontiguousarray(cadence, dtype="<f2").tobytes()
    feature = {
        "id": _bytes(cadence_id.encode("utf-8")),
        "target": _int64([int(target)]),
        "fold": _int64([int(fold)]),
        "cadence": _bytes(raw),
        "shape": _int64(cadence.shape),
        "version": _int64([SCHEMA_VERSION]),
    }
    if soft_target is not None:
        soft = float(soft_target)
        if not 0.0 <= soft <= 1.0:  # also refuses NaN
            raise ValueError(f"cadence {cadence_id}: soft_target must be in [0, 1], got {soft_target!r}")
        feature.update(target=_int64([int(soft >= 0.5)]), version=_int64([SOFT_SCHEMA_VERSION]),
                       soft_target=tf.train.Feature(float_list=tf.train.FloatList(value=[soft])),
                       source=_bytes(source.encode("utf-8")))
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    # Features are a protobuf map, whose wire order is otherwise per process (hash seeded): the
    # deterministic flag makes the bytes of a record, hence of a shard, reproducible across runs.
    return example.SerializeToString(deterministic=True)


def training_target(parsed: dict) -> tf.Tensor:
    """float32: a v2 record's soft target, else its (hard) ``target``."""
    hard = tf.cast(parsed["target"], tf.float32)
    return tf.where(parsed["soft_target"] >= 0.0, parsed["soft_target"], hard)


def parse_example(serialized: tf.Tensor, shape: tuple[int, int, int] | None = None) -> dict:
    """Parse one serialized record into ``{id, target, label, fold, cadence, source}`` (cadence
    float16; target float32, the soft target of a v2 record (:func:`training_target`); label the
    int64 ``target`` feature: the hard class a manifest counts).

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
        "target": training_target(parsed),
        "label": parsed["target"],
        "fold": parsed["fold"],
        "cadence": cadence,
        "source": parsed["source"],
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
    return {"id": parsed["id"], "target": training_target(parsed), "fold": parsed["fold"],
            "cadence": cadence, "source": parsed["source"]}
