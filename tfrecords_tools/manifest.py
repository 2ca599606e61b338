"""``manifest.json`` (written last, describes a finished conversion) and ``_progress.json``.

The converter writes these documents; reading a manifest and checking a folder against it
belong to ``tfseti.io.shards`` (``open_shard_folder``), which every reader uses. The names
(``MANIFEST_NAME``, ``PROGRESS_NAME``, ``FORMAT``), ``loads``, ``ManifestError`` and
``summarize`` are re-exported from there.

Manifest fields (``FORMAT`` ``tfseti-tfrecords``):

``format``, ``schema_version``
    the record schema (``tfseti.io.records.SCHEMA_VERSION``) every shard holds.
``complete``
    true in ``manifest.json``; false in ``_progress.json`` (the same document, kept up to date
    during a conversion with the shards finished so far).
``created``, ``tool``
    UTC time and ``tfrecords_tools`` version (informational).
``params``
    the creation parameters that decide the bytes of the shards: ``source`` (input folder/URL;
    for the old splits the ``old_leaky_data`` folder, however ``--data`` named it), ``split``,
    ``folds``, ``seed``, ``shard_mb``, ``panels``, ``compression`` (``"GZIP"`` or null),
    ``renormalize`` (true: every panel re-normalised to mean 0, std 1 by ``--renormalize``;
    manifests written before the option lack it and count as false, see ``PARAM_DEFAULTS``).
    A conversion into a prefix whose manifest/progress has other ``params``, another
    ``schema_version`` or another ``plan_digest`` fails instead of mixing shards.
``options``
    parameters that do not change the shards (``workers``, ``skip_bad``).
``plan_digest``
    sha256 of the assignment of ids and targets to shards (changes when the label csv does).
``cadence_shape``, ``cadence_dtype``
    shape and dtype of every record's cadence, for static shapes in ``tfseti.data``.
``num_records``, ``num_shards``, ``counts``
    totals; ``counts.classes`` (target -> records) and ``counts.folds`` (fold -> ``records`` and
    ``classes``). Test splits have target -1 and fold -1.
``shards``
    one entry per shard: ``name``, ``fold``, ``index``, ``count`` (shards in that fold),
    ``records``, ``classes``, ``bytes`` and ``crc32c`` (CRC32C of the file as stored, 8 hex
    digits; the checksum GCS keeps for every object, so ``gsutil hash -c -h`` shows the same),
    ``skipped`` (that shard's files left out by ``--skip-bad``).
``skipped``
    files left out by ``--skip-bad``: ``id``, ``path``, ``problem``.
"""

from __future__ import annotations

import datetime
import json
from collections import Counter

# The names, the reading and the checks of a manifest belong to the readers' bottom layer
# (tfseti.io.shards); the converter writes what they read.
from tfseti.io.shards import (FORMAT, MANIFEST_NAME, PROGRESS_NAME, ManifestError,  # noqa: F401
                              summarize)
from tfseti.io.shards import loads_manifest as loads  # noqa: F401

COMPARED_PARAMS = ("source", "split", "folds", "seed", "shard_mb", "panels", "compression",
                   "renormalize")
# The value of a compared parameter that a manifest/progress written before it existed lacks, so
# that older shard folders still resume (or have nothing to do) instead of looking incompatible.
PARAM_DEFAULTS = {"renormalize": False}


def now_utc() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def tool_info() -> dict:
    from tfseti import __version__

    return {"name": "tfrecords_tools", "version": __version__}


def dumps(document: dict) -> bytes:
    return (json.dumps(document, indent=1, sort_keys=False) + "\n").encode("utf-8")


def header(schema_version: int, params: dict, options: dict, digest: str, shape, complete: bool) -> dict:
    return {
        "format": FORMAT,
        "schema_version": schema_version,
        "complete": complete,
        "created": now_utc(),
        "tool": tool_info(),
        "params": dict(params),
        "options": dict(options),
        "plan_digest": digest,
        "cadence_shape": list(shape),
        "cadence_dtype": "float16",
    }


def incompatibilities(existing: dict, schema_version: int, params: dict, digest: str) -> list[str]:
    """How an existing manifest/progress differs from a planned conversion (empty: compatible)."""
    problems = []
    if existing.get("format") != FORMAT:
        problems.append(f"format is {existing.get('format')!r}, expected {FORMAT!r}")
    if existing.get("schema_version") != schema_version:
        problems.append(f"schema_version is {existing.get('schema_version')!r}, "
                        f"this converter writes {schema_version}")
    old = existing.get("params") or {}
    for key in COMPARED_PARAMS:
        there = old.get(key, PARAM_DEFAULTS.get(key))
        now = params.get(key, PARAM_DEFAULTS.get(key))
        if there != now:
            problems.append(f"{key} is {there!r} there, {now!r} now")
    if not problems and existing.get("plan_digest") != digest:
        problems.append("the assignment of ids to shards differs (the label csv changed)")
    return problems


def class_counts(targets) -> dict[str, int]:
    counts = Counter(int(t) for t in targets)
    return {str(k): counts[k] for k in sorted(counts)}
