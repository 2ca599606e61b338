"""Writing a shard folder: destination, atomic publication, checksums, sizing, assignment and
the manifest document. The two writers of shard folders use it: the converter (``tfseti convert``)
and the pseudo-labeller (``tfseti pseudo``); what readers rely on (shard names, reading and
checking a manifest) is ``tfseti.io.shards``.

Everything that touches the destination goes through :class:`Destination`, one code path for a
local folder and any fsspec URL (``gs://bucket/prefix``):

* a shard is written with ``tf.io.TFRecordWriter`` to a temporary file, then published under its
  final name only once complete. Local destination: the writer writes straight into
  ``<out>/_tmp/`` and the file is moved with ``os.replace`` (atomic on one filesystem). Remote
  destination: the writer writes to a local temporary folder, the file is uploaded to
  ``<out>/_tmp/<name>.<token>.part``, its size and CRC32C are checked against the local file,
  then it is copied server-side to its final name and the temporary object deleted. An object
  store copy creates the object atomically, so no reader ever lists a partial shard under a
  final name.
* temporaries live under ``<out>/_tmp/``, which no ``*.tfrec`` pattern matches; a rerun deletes
  any left there by an interrupted run. One writer per prefix at a time.

Sizing and assignment: :func:`num_shards` (how many shards), :func:`assign_folds` (stratified
folds) and :func:`plan_shards` (which record goes into which shard, deterministically).

``manifest.json`` (written last, describes a finished folder) and ``_progress.json`` (the same
document while it is written) are made by :func:`manifest_header`, ``tfseti.io.shards.summarize``
and :func:`dumps_manifest`. Manifest fields (``FORMAT`` ``tfseti-tfrecords``):

``format``, ``schema_version``
    the record schema (``tfseti.io.records.SCHEMA_VERSION``) every shard holds.
``complete``
    true in ``manifest.json``; false in ``_progress.json`` (the same document, kept up to date
    during a conversion with the shards finished so far).
``created``, ``tool``
    UTC time and ``tfseti`` version (informational).
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

A pseudo-label folder (``tfseti pseudo``) has the same fields (its ``options``: ``batch_size``)
and a ``pseudo`` section: the teachers, the selection, the counts.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
import uuid
import warnings
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from tfseti.io import fs as fsutil
from tfseti.io.shards import FORMAT, shard_name

TMP_DIR = "_tmp"
MB = 1_000_000  # --shard-mb counts decimal megabytes
SHARD_MULTIPLE = 8  # TPU hosts read 8 cores' worth of files: shard counts a multiple of 8 ...
MIN_RECORDS_PER_SHARD = 8  # ... when that still leaves at least this many records in every shard
HASH_CHUNK = 8 * 1024 * 1024

# Test hook: seconds to sleep between uploading a shard to its temporary name and publishing it,
# so that a test can kill the converter while temporaries exist. Never set outside tests.
PUBLISH_DELAY_ENV = "TFSETI_TEST_PUBLISH_DELAY"


# -- sizing and assignment ---------------------------------------------------------------------
def num_shards(n_records: int, record_bytes: int, shard_bytes: float,
               multiple: int = SHARD_MULTIPLE, min_per_shard: int = MIN_RECORDS_PER_SHARD) -> int:
    """Number of shards for ``n_records`` records of about ``record_bytes`` bytes each.

    ``ceil(total bytes / shard bytes)`` (at least 1, at most one per record), rounded up to a
    multiple of ``multiple`` when there is *enough data*: when the rounded count still gives every
    shard at least ``min_per_shard`` records (``n_records >= rounded * min_per_shard``).
    """
    if n_records <= 0:
        return 0
    count = max(1, math.ceil(n_records * record_bytes / shard_bytes))
    count = min(count, n_records)
    rounded = math.ceil(count / multiple) * multiple
    if n_records >= rounded * min_per_shard:
        count = rounded
    return count


@dataclass
class ShardPlan:
    """What one shard will hold: its name and, in write order, its ids and targets."""

    name: str
    fold: int
    index: int
    count: int
    ids: list[str] = field(default_factory=list)
    targets: list[int] = field(default_factory=list)


def plan_shards(split: str, ids: list[str], targets: np.ndarray, folds: np.ndarray, seed: int,
                record_bytes: int, shard_bytes: float) -> list[ShardPlan]:
    """Assign every record to a shard, deterministically given ``seed``.

    Per fold (ascending; -1 for no folds): the fold's records (in csv order) are permuted with a
    generator seeded by ``(seed, fold + 1)``, stably sorted by target and dealt round-robin to the
    fold's shards, so every shard gets the fold's class mix (±1 record per class); the order inside
    each shard is then shuffled with the same generator.
    """
    targets = np.asarray(targets, dtype=np.int64)
    folds = np.asarray(folds, dtype=np.int64)
    plans = []
    for fold in sorted(set(folds.tolist())):
        members = np.flatnonzero(folds == fold)
        count = num_shards(len(members), record_bytes, shard_bytes)
        rng = np.random.default_rng([seed, fold + 1])
        order = members[rng.permutation(len(members))]
        order = order[np.argsort(targets[order], kind="stable")]
        for index in range(count):
            chosen = order[index::count]
            chosen = chosen[rng.permutation(len(chosen))]
            plans.append(ShardPlan(
                name=shard_name(split, int(fold), index, count), fold=int(fold), index=index,
                count=count, ids=[ids[i] for i in chosen], targets=[int(targets[i]) for i in chosen]))
    return plans


def plan_digest(plans: list[ShardPlan]) -> str:
    """sha256 over every shard's name, ids and targets: equal digests mean equal assignments."""
    digest = hashlib.sha256()
    for plan in plans:
        digest.update(f"{plan.name}\n".encode())
        for cid, target in zip(plan.ids, plan.targets):
            digest.update(f"{cid},{target}\n".encode())
    return digest.hexdigest()


def assign_folds(targets, n_folds: int, seed: int) -> np.ndarray:
    """Fold index (0..n_folds-1) of every record, stratified by target and seeded.

    scikit-learn ``StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)``: record i
    gets the index of the split whose validation part holds it. ``n_folds == 1`` puts everything
    in fold 0. Raises ValueError when there are fewer records than folds; warns (scikit-learn's
    warning) when a class has fewer members than folds.
    """
    from sklearn.model_selection import StratifiedKFold

    targets = np.asarray(targets, dtype=np.int64)
    n = len(targets)
    if n_folds < 1:
        raise ValueError(f"--folds must be >= 1, got {n_folds}")
    if n_folds == 1:
        return np.zeros(n, dtype=np.int64)
    if n < n_folds:
        raise ValueError(f"{n} labeled records cannot be split into {n_folds} folds")
    folds = np.full(n, -1, dtype=np.int64)
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        for fold, (_, valid) in enumerate(splitter.split(np.zeros(n), targets)):
            folds[valid] = fold
    return folds


# -- checksums ---------------------------------------------------------------------------------
# CRC32C (Castagnoli), the checksum GCS itself keeps for every object: a resume or upload check
# on gs:// compares it with the object's metadata instead of downloading the object, and the
# hardware-accelerated google-crc32c (a gcsfs dependency) hashes at several GB/s, where sha256
# would cost more CPU than encoding the records.
def crc32c_hasher():
    import google_crc32c

    return google_crc32c.Checksum()


def hash_file(path: str) -> dict:
    """``{"bytes", "crc32c"}`` of a local file (crc32c as 8 hex digits, big-endian)."""
    crc = crc32c_hasher()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            crc.update(chunk)
            size += len(chunk)
    return {"bytes": size, "crc32c": crc.digest().hex()}


def crc32c_from_info(info: dict) -> str | None:
    """The hex CRC32C an object store reports for an object (GCS ``crc32c`` is base64), if any."""
    value = info.get("crc32c")
    if not value:
        return None
    try:
        raw = base64.b64decode(value)
    except ValueError:
        return None
    return raw.hex() if len(raw) == 4 else None


# -- the manifest document --------------------------------------------------------------------
COMPARED_PARAMS = ("source", "split", "folds", "seed", "shard_mb", "panels", "compression",
                   "renormalize")
# The value of a compared parameter that a manifest/progress written before it existed lacks, so
# that older shard folders still resume (or have nothing to do) instead of looking incompatible.
PARAM_DEFAULTS = {"renormalize": False}


def now_utc() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def tool_info() -> dict:
    from tfseti import __version__

    return {"name": "tfseti", "version": __version__}


def dumps_manifest(document: dict) -> bytes:
    """The bytes of a manifest / progress document (the reverse of ``shards.loads_manifest``)."""
    return (json.dumps(document, indent=1, sort_keys=False) + "\n").encode("utf-8")


def manifest_header(schema_version: int, params: dict, options: dict, digest: str, shape,
                    complete: bool) -> dict:
    """Every field of a manifest but the shards and their totals (``shards.summarize``)."""
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



# -- the destination ---------------------------------------------------------------------------
class Destination:
    """An output prefix (local folder or fsspec URL) with atomic publication of files."""

    def __init__(self, url: str, storage_options: dict | None = None):
        self.url = str(url).rstrip("/") or "/"
        self.fs, self.root = fsutil.url_to_fs(self.url, **(storage_options or {}))
        self.root = self.root.rstrip("/") or "/"
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        self.local = protocol in ("file", "local")
        if self.local:
            self.url = self.root = os.path.abspath(self.root)
        self._local_tmp = None

    # paths
    def path(self, name: str) -> str:
        """Path inside ``fs`` of a file directly under the prefix."""
        return f"{self.root}/{name}" if not self.local else os.path.join(self.root, name)

    def display(self, name: str) -> str:
        """The file's full URL or local path, for messages."""
        return fsutil.join(self.url, name)

    @property
    def tmp_root(self) -> str:
        return self.path(TMP_DIR)

    def prepare(self) -> None:
        """Create the prefix (local) or check that its bucket exists (object store)."""
        if self.local:
            os.makedirs(self.root, exist_ok=True)
            return
        self.fs.invalidate_cache()
        bucket = self.root.split("/", 1)[0]
        if not self.fs.exists(bucket):
            raise FileNotFoundError(f"{self.url}: bucket {bucket!r} does not exist (create it first)")

    # listings
    def listing(self) -> dict[str, int]:
        """Map name -> size of every plain file directly under the prefix (fresh, not cached)."""
        if not self.local:
            self.fs.invalidate_cache()
        try:
            entries = self.fs.ls(self.root, detail=True)
        except FileNotFoundError:
            return {}
        out = {}
        for entry in entries:
            if entry.get("type") == "file":
                out[entry["name"].rstrip("/").rsplit("/", 1)[-1]] = int(entry.get("size") or 0)
        return out

    def temporaries(self) -> list[str]:
        """Paths (inside ``fs``) of everything under ``_tmp/``."""
        if not self.local:
            self.fs.invalidate_cache()
        try:
            return sorted(self.fs.find(self.tmp_root))
        except FileNotFoundError:
            return []

    def cleanup_temporaries(self) -> list[str]:
        """Delete what interrupted runs left under ``_tmp/``; returns what was removed."""
        stale = self.temporaries()
        for path in stale:
            try:
                self.fs.rm_file(path)
            except FileNotFoundError:
                pass
        return stale

    def remove_tmp_dir(self) -> None:
        if self.local:
            try:
                os.rmdir(self.tmp_root)
            except OSError:
                pass

    def info(self, name: str) -> dict | None:
        try:
            return self.fs.info(self.path(name))
        except FileNotFoundError:
            return None

    def exists(self, name: str) -> bool:
        if not self.local:
            self.fs.invalidate_cache()
        return self.fs.exists(self.path(name))

    def read_bytes(self, name: str) -> bytes:
        return self.fs.cat_file(self.path(name))

    def remove(self, name: str) -> None:
        try:
            self.fs.rm_file(self.path(name))
        except FileNotFoundError:
            pass

    def checksum_matches(self, name: str, expected: dict) -> bool:
        """True when ``name`` exists with the expected size and checksum.

        Local: crc32c recomputed. Object store: size and the store's CRC32C against the recorded
        one (no download); where the store reports none, the object is downloaded and hashed.
        """
        info = self.info(name)
        if info is None or int(info.get("size") or 0) != int(expected["bytes"]):
            return False
        if self.local:
            return hash_file(self.path(name))["crc32c"] == expected["crc32c"]
        remote = crc32c_from_info(info)
        if remote is None:
            crc = crc32c_hasher()
            crc.update(self.read_bytes(name))
            remote = crc.digest().hex()
        return remote == expected["crc32c"]

    # writing
    def _token(self) -> str:
        return f"{os.getpid()}-{uuid.uuid4().hex[:12]}"

    def local_work_path(self, name: str) -> str:
        """Where ``tf.io.TFRecordWriter`` should write shard ``name`` before publication."""
        if self.local:
            os.makedirs(self.tmp_root, exist_ok=True)
            return os.path.join(self.tmp_root, f"{name}.{self._token()}.part")
        if self._local_tmp is None:
            self._local_tmp = tempfile.mkdtemp(prefix="tfseti-shards-")
        return os.path.join(self._local_tmp, f"{name}.{self._token()}.part")

    def publish(self, work_path: str, name: str, expected: dict | None = None) -> None:
        """Move a finished local file to its final name under the prefix, atomically."""
        if self.local:
            delay = float(os.environ.get(PUBLISH_DELAY_ENV) or 0)
            if delay:
                time.sleep(delay)
            os.replace(work_path, self.path(name))
            return
        tmp = f"{self.tmp_root}/{os.path.basename(work_path)}"
        try:
            self.fs.put_file(work_path, tmp)
            if expected is not None:
                info = self.fs.info(tmp)
                if int(info.get("size") or 0) != int(expected["bytes"]):
                    raise OSError(f"upload of {name} to {tmp} holds {info.get('size')} bytes, "
                                  f"expected {expected['bytes']}")
                remote = crc32c_from_info(info)
                if remote is not None and remote != expected["crc32c"]:
                    raise OSError(f"upload of {name} to {tmp}: crc32c differs from the local file")
            delay = float(os.environ.get(PUBLISH_DELAY_ENV) or 0)
            if delay:
                time.sleep(delay)
            # gcsfs' mv tries the moveTo API first (unsupported by emulators, slow to fail):
            # a server-side copy then delete gives the same atomic appearance.
            self.fs.copy(tmp, self.path(name))
            self.fs.rm_file(tmp)
        finally:
            try:
                os.remove(work_path)
            except FileNotFoundError:
                pass

    def publish_shard(self, work_path: str, name: str, fold: int, index: int, count: int,
                      classes: Counter, skipped: list | None = None) -> dict:
        """Publish the finished shard at ``work_path`` as ``name`` (:meth:`publish`, checked
        against its checksum) and return its manifest entry; ``classes`` counts its records by
        target, ``skipped`` lists the files left out of it."""
        digest = hash_file(work_path)
        self.publish(work_path, name, digest)
        return {"name": name, "fold": fold, "index": index, "count": count,
                "records": sum(classes.values()),
                "classes": {str(k): classes[k] for k in sorted(classes)},
                "bytes": digest["bytes"], "crc32c": digest["crc32c"],
                "skipped": list(skipped or [])}

    def write_bytes_atomic(self, name: str, data: bytes) -> None:
        """Write a small file (manifest, progress) so that it appears complete or not at all."""
        if self.local:
            tmp = os.path.join(self.tmp_root, f"{name}.{self._token()}.part")
            os.makedirs(self.tmp_root, exist_ok=True)
            with open(tmp, "wb") as handle:
                handle.write(data)
            os.replace(tmp, self.path(name))
            return
        tmp = f"{self.tmp_root}/{name}.{self._token()}.part"
        self.fs.pipe_file(tmp, data)
        self.fs.copy(tmp, self.path(name))
        self.fs.rm_file(tmp)

    def close(self) -> None:
        if self._local_tmp is not None:
            shutil.rmtree(self._local_tmp, ignore_errors=True)
            self._local_tmp = None
