"""The command-line programs that make and check shard folders from Kaggle-layout ``.npy`` cadences.

* ``tfseti convert`` (``python -m tfrecords_tools.convert``) / :func:`convert`: stratified folds,
  shards named by fold (``train-f{k}-{i:05d}-of-{n:05d}.tfrec``), atomic writes,
  ``manifest.json`` written last, resumable after an interruption.
* ``tfseti verify`` (``python -m tfrecords_tools.verify``) / :func:`verify`: manifest against
  shards, every record decoded with ``tfseti.io.records.parse_example``.
* ``tfseti snippet-matching`` (``python -m tfrecords_tools.snippet_matching``): background
  removal by matching overlapping snippets, Kaggle layout in, Kaggle layout out.

Only the programs live here. Records follow ``tfseti.io.records`` (schema v1); shard names and
the manifest's names, reading and checks follow ``tfseti.io.shards`` (the names re-exported here);
writing a shard folder (destination, atomic publication, checksums, sizing, fold and shard
assignment, the manifest document) is ``tfseti.io.shard_writer``, which the pseudo-labeller uses
too. This package depends on ``tfseti`` and nothing in ``tfseti`` names it: the ``tfseti``
command finds the three programs through the ``tfseti.commands`` entry points that
``pyproject.toml`` registers (``tfseti.cli``).
"""

from tfseti.command import setup_python_m

setup_python_m(__name__)  # first: `python -m tfrecords_tools.<x>` quiets TensorFlow (tfseti.command)

from tfseti.io.shards import (MANIFEST_NAME, PROGRESS_NAME, fold_pattern,  # noqa: E402
                              parse_shard_name, shard_name)


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
