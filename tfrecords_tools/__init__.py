"""Kaggle-layout ``.npy`` cadences -> lossless sharded TFRecords (local or ``gs://``), verified.

* ``python -m tfrecords_tools.convert`` / :func:`convert`: stratified folds, shards named by fold
  (``train-f{k}-{i:05d}-of-{n:05d}.tfrec``), atomic writes, ``manifest.json`` written last,
  resumable after an interruption.
* ``python -m tfrecords_tools.verify`` / :func:`verify`: manifest against shards, every record
  decoded with ``tfseti.io.records.parse_example``.

Records follow ``tfseti.io.records`` (schema v1); shard names and the manifest's names, reading
and checks follow ``tfseti.io.shards`` (re-exported here). This package depends on ``tfseti.io``
and nothing in ``tfseti`` depends on it.
"""

import tfseti  # noqa: F401  first: quiets TensorFlow's start-up lines (tfseti.console)
from tfrecords_tools.manifest import MANIFEST_NAME, PROGRESS_NAME
from tfrecords_tools.shards import fold_pattern, parse_shard_name, shard_name


def convert(*args, **kwargs):
    """See :func:`tfrecords_tools.convert.convert` (imported lazily: it imports TensorFlow)."""
    from tfrecords_tools.convert import convert as _convert

    return _convert(*args, **kwargs)


def verify(*args, **kwargs):
    """See :func:`tfrecords_tools.verify.verify` (imported lazily: it imports TensorFlow)."""
    from tfrecords_tools.verify import verify as _verify

    return _verify(*args, **kwargs)


__all__ = ["MANIFEST_NAME", "PROGRESS_NAME", "convert", "fold_pattern", "parse_shard_name",
           "shard_name", "verify"]
