"""Shard naming, sizing, record-to-shard assignment, checksums and atomic publication.

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
  any left there by an interrupted run. One converter per prefix at a time.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from tfseti.io import fs as fsutil
# Shard names are the readers' contract, owned by tfseti.io.shards; re-exported for the converter.
from tfseti.io.shards import SHARD_SUFFIX, fold_pattern, parse_shard_name, shard_name  # noqa: F401

TMP_DIR = "_tmp"
MB = 1_000_000  # --shard-mb counts decimal megabytes
SHARD_MULTIPLE = 8  # TPU hosts read 8 cores' worth of files: shard counts a multiple of 8 ...
MIN_RECORDS_PER_SHARD = 8  # ... when that still leaves at least this many records in every shard
HASH_CHUNK = 8 * 1024 * 1024

# Test hook: seconds to sleep between uploading a shard to its temporary name and publishing it,
# so that a test can kill the converter while temporaries exist. Never set outside tests.
PUBLISH_DELAY_ENV = "TFRECORDS_TOOLS_TEST_PUBLISH_DELAY"


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
            self._local_tmp = tempfile.mkdtemp(prefix="tfrecords_tools-")
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
