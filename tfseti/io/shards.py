"""Shard folders: file names, globs, ``manifest.json`` and the one completeness check.

A *shard folder* (local folder or fsspec URL such as ``gs://bucket/prefix``) is what
``tfseti convert`` writes (``tfseti.io.shard_writer``): ``*.tfrec`` shards named

* ``{split}-f{k}-{i:05d}-of-{n:05d}.tfrec`` (fold k of a training split; ``train-f3-*.tfrec``),
* ``{split}-{i:05d}-of-{n:05d}.tfrec`` (splits without folds, such as ``test``),

plus ``manifest.json``, written last, listing every shard with its records and bytes. While a
conversion runs (or after it was interrupted) the folder holds ``_progress.json`` instead.

This module owns that contract, and every reader (``tfseti verify``, the tf.data
pipeline, the trainer, prediction, the de-Doppler CLI, the report) goes through
:func:`open_shard_folder`, which refuses:

* a folder without ``manifest.json``: "conversion interrupted: rerun the same convert command"
  when ``_progress.json`` is there, "not a shard folder" otherwise;
* a manifest that cannot be read, of another format or schema, whose shard entries are malformed,
  incomplete (a fold missing shard ``i`` of ``n``) or do not add up to its totals, that lists no
  record at all, or in which a fold holds no record;
* shard files missing, extra (``*.tfrec`` not in the manifest) or of another size than the
  manifest says — each difference named (file name, expected vs found).

Record counts are checked where records are read: prediction compares the ids it read with the
manifest's count, the trainer the validation records, ``tfseti verify`` every shard
(with checksums and a decode of every record). The check itself only lists the folder and reads
the manifest, so it costs the same on ``gs://`` as on a local disk.

An explicit glob given by the user (``DIR/test-*.tfrec``, :func:`open_shard_glob`) is the one
way round the manifest: its files are read as they are, their records counted and the count
reported. A record that cannot be read (a flipped byte, a truncated file) is turned into one
:class:`CorruptShardError` naming the shard and the offset TensorFlow gives
(:func:`corrupt_shard_error`).

Errors are :class:`ShardFolderError` (a ``ValueError``; :class:`NoShardsError` is also a
``FileNotFoundError``) with a one-line message, which the command-line tools print as
``error: <message>``. This module imports TensorFlow only inside the functions that read
records.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field

from tfseti.io import fs as fsutil

FORMAT = "tfseti-tfrecords"
MANIFEST_NAME = "manifest.json"
PROGRESS_NAME = "_progress.json"
# A pseudo-label folder (tfseti.pseudo) also lists its records: id, target, probability.
PSEUDO_LABELS_NAME = "pseudo_labels.csv"
SHARD_SUFFIX = ".tfrec"
GLOB_CHARS = "*?["
GZIP_MAGIC = b"\x1f\x8b"
MAX_LISTED = 8  # differences named in one error message (verify lists them all)


# -- errors ------------------------------------------------------------------------------------
class ManifestError(ValueError):
    """A manifest that cannot be read or does not match what is asked of it."""


class ShardFolderError(ValueError):
    """A shard folder (or glob) that cannot be read as asked; the message says why, in one line."""


class NoShardsError(ShardFolderError, FileNotFoundError):
    """No such folder, no file matching a glob, or no shard for the role / fold asked for."""


class CorruptShardError(ShardFolderError):
    """A record that cannot be read; the message names the shard file and, where TensorFlow
    gives it, the byte offset."""


# -- names -------------------------------------------------------------------------------------
_NAME_RE = re.compile(r"^(?P<split>[a-z_]+?)(?:-f(?P<fold>\d+))?-(?P<index>\d{5})-of-(?P<count>\d{5})"
                      + re.escape(SHARD_SUFFIX) + "$")


def shard_name(split: str, fold: int, index: int, count: int) -> str:
    """``train-f{k}-{i:05d}-of-{n:05d}.tfrec`` for a fold, ``{split}-{i:05d}-of-{n:05d}.tfrec`` without."""
    if fold >= 0:
        return f"{split}-f{fold}-{index:05d}-of-{count:05d}{SHARD_SUFFIX}"
    return f"{split}-{index:05d}-of-{count:05d}{SHARD_SUFFIX}"


def fold_pattern(split: str, fold: int | None = None) -> str:
    """Glob pattern selecting one fold's shards (or all shards of a split when ``fold`` is None)."""
    if fold is None:
        return f"{split}-*{SHARD_SUFFIX}"
    return f"{split}-f{fold}-*{SHARD_SUFFIX}"


def parse_shard_name(name: str) -> dict | None:
    """``{split, fold, index, count}`` of a shard file name, or None when it is not one."""
    match = _NAME_RE.match(name)
    if not match:
        return None
    fold = match["fold"]
    return {"split": match["split"], "fold": int(fold) if fold is not None else -1,
            "index": int(match["index"]), "count": int(match["count"])}


def is_glob(path: str) -> bool:
    """True when ``path`` is a glob pattern (holds ``*``, ``?`` or ``[``)."""
    return any(c in str(path) for c in GLOB_CHARS)


# -- the manifest document ---------------------------------------------------------------------
def loads_manifest(data: bytes, where: str) -> dict:
    """Parse a manifest / progress document (``where`` names it in errors)."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ManifestError(f"{where}: not valid JSON ({err})") from None
    if not isinstance(document, dict):
        raise ManifestError(f"{where}: expected a JSON object")
    return document


def summarize(shards: list[dict]) -> dict:
    """``num_records``, ``num_shards`` and ``counts`` from the per-shard entries."""
    classes: Counter = Counter()
    folds: dict[int, dict] = {}
    for shard in shards:
        entry = folds.setdefault(int(shard["fold"]), {"records": 0, "classes": Counter()})
        entry["records"] += int(shard["records"])
        for key, value in shard["classes"].items():
            entry["classes"][int(key)] += int(value)
            classes[int(key)] += int(value)
    return {
        "num_records": sum(int(s["records"]) for s in shards),
        "num_shards": len(shards),
        "counts": {
            "classes": {str(k): classes[k] for k in sorted(classes)},
            "folds": {str(f): {"records": folds[f]["records"],
                               "classes": {str(k): folds[f]["classes"][k]
                                           for k in sorted(folds[f]["classes"])}}
                      for f in sorted(folds)},
        },
    }


def _first_line(err: Exception) -> str:
    text = getattr(err, "message", None) or str(err)
    text = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    return f"{type(err).__name__}: {text}"


def manifest_problems(doc: dict) -> tuple[list[str], bool]:
    """``(problems, fatal)`` of a manifest on its own: format, schema, shape, shard entries
    (names, fold/index/count completeness), totals, and that it holds records in every fold.
    ``fatal``: the shard entries cannot be used at all (unknown schema, no valid shape)."""
    from tfseti.io.records import READ_SCHEMA_VERSIONS

    problems = []
    if doc.get("format") != FORMAT:
        problems.append(f"manifest format is {doc.get('format')!r}, expected {FORMAT!r}")
    if doc.get("schema_version") not in READ_SCHEMA_VERSIONS:
        problems.append(f"manifest schema_version is {doc.get('schema_version')!r}; this "
                        f"version of tfseti reads versions {list(READ_SCHEMA_VERSIONS)}")
        return problems, True
    if doc.get("complete") is False:
        problems.append("manifest says complete: false (a progress document, not a manifest)")
    if doc.get("cadence_dtype") != "float16":
        problems.append(f"manifest cadence_dtype is {doc.get('cadence_dtype')!r}, expected 'float16'")
    shape = doc.get("cadence_shape")
    if not (isinstance(shape, list) and len(shape) == 3
            and all(isinstance(v, int) and v > 0 for v in shape)):
        problems.append(f"manifest cadence_shape {shape!r} is not 3 positive integers")
        return problems, True
    shards = doc.get("shards")
    if not isinstance(shards, list) or not all(isinstance(e, dict) for e in shards):
        problems.append("manifest has no list of shard entries")
        return problems, True

    per_fold: dict[int, set] = {}
    for entry in shards:
        parsed = parse_shard_name(str(entry.get("name")))
        if parsed is None:
            problems.append(f"manifest lists {entry.get('name')!r}, not a shard name")
            continue
        if (parsed["fold"], parsed["index"], parsed["count"]) != (
                entry.get("fold"), entry.get("index"), entry.get("count")):
            problems.append(f"manifest entry {entry['name']}: fold/index/count "
                            f"{entry.get('fold')}/{entry.get('index')}/{entry.get('count')} "
                            f"disagree with its name")
        per_fold.setdefault(parsed["fold"], set()).add((parsed["index"], parsed["count"]))
    for fold, seen in sorted(per_fold.items()):
        counts = {c for _, c in seen}
        if len(counts) != 1 or {i for i, _ in seen} != set(range(next(iter(counts)))):
            problems.append(f"fold {fold}: shard set incomplete or inconsistent "
                            f"({len(seen)} shards listed, counts {sorted(counts)})")
    try:
        summary = summarize(shards)
        for entry in shards:
            int(entry["bytes"])
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        problems.append(f"manifest shard entries are malformed ({_first_line(err)})")
        return problems, True
    for key in ("num_records", "num_shards", "counts"):
        if doc.get(key) != summary[key]:
            problems.append(f"manifest {key} is {doc.get(key)}, its shard entries add up "
                            f"to {summary[key]}")
    skipped = len(doc.get("skipped") or [])
    why = f" ({skipped} file(s) left out by --skip-bad, listed in the manifest)" if skipped else ""
    if summary["num_records"] == 0:
        problems.append(f"the manifest lists 0 records: nothing to read{why}")
    else:
        params = doc.get("params") or {}
        n_folds = params.get("folds") if isinstance(params.get("folds"), int) else 0
        expected = set(range(n_folds)) if n_folds > 0 else set()
        folds = summary["counts"]["folds"]
        empty = sorted(f for f in expected | {int(k) for k in folds}
                       if f >= 0 and (folds.get(str(f)) or {}).get("records", 0) == 0)
        if empty:
            problems.append(f"fold(s) {empty} hold no records{why}")
    return problems, False


def read_manifest(path: str, storage_options: dict | None = None) -> dict:
    """The ``manifest.json`` document of a shard folder, unchecked (FileNotFoundError when there
    is none, ManifestError when it is no JSON object)."""
    fs, root = fsutil.url_to_fs(str(path), **(storage_options or {}))
    inner = f"{root.rstrip('/')}/{MANIFEST_NAME}"
    display = fsutil.join(str(path).rstrip("/"), MANIFEST_NAME)
    try:
        data = fs.cat_file(inner)
    except FileNotFoundError:
        raise FileNotFoundError(f"{display}: not found") from None
    return loads_manifest(data, display)


# -- the folder --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Shard:
    """One shard of a manifest: its file name and full path, what its name says and what the
    manifest records of it."""

    name: str
    path: str
    split: str
    fold: int
    index: int
    count: int
    records: int
    bytes: int
    classes: dict


@dataclass
class ShardFolder:
    """A complete shard folder, as :func:`open_shard_folder` returns it."""

    path: str
    manifest: dict
    shards: list[Shard]

    @property
    def split(self) -> str:
        return str((self.manifest.get("params") or {}).get("split")
                   or (self.shards[0].split if self.shards else ""))

    @property
    def compression(self) -> str | None:
        return (self.manifest.get("params") or {}).get("compression") or None

    @property
    def cadence_shape(self) -> tuple[int, int, int]:
        return tuple(self.manifest["cadence_shape"])

    @property
    def num_records(self) -> int:
        return sum(s.records for s in self.shards)

    @property
    def folds(self) -> list[int]:
        """The folds (>= 0) the shards hold."""
        return sorted({s.fold for s in self.shards if s.fold >= 0})

    @property
    def paths(self) -> list[str]:
        return [s.path for s in self.shards]

    def select(self, role: str, fold: int | None = None) -> list[Shard]:
        """Shards for a role: ``train``: every ``train-*`` shard, except fold ``fold``'s when a
        fold is given; ``val``: fold ``fold``'s; ``test``: every ``test-*`` shard.

        A folder without ``train-*`` (``test-*``) shards uses the split of its folded (unfolded)
        shards instead, so that ``train_old`` shards train (pre-training on the old data) and
        ``test_old`` shards predict.
        """
        if role not in ("train", "val", "test"):
            raise ValueError(f"role must be one of ('train', 'val', 'test'), got {role!r}")
        split = "test" if role == "test" else "train"
        if not any(s.split == split for s in self.shards):
            # One split per folder (the converter's rule): take the split its shards are of.
            folded = role != "test"
            split = next((s.split for s in self.shards if (s.fold >= 0) == folded), split)
        shards = [s for s in self.shards if s.split == split]
        if not shards:
            raise NoShardsError(f"{self.path}: no {split}-*{SHARD_SUFFIX} shards (the manifest's "
                                f"split is {self.split!r})")
        folds = sorted({s.fold for s in shards})
        if role == "val":
            if fold is None:
                raise ValueError("role 'val' needs a fold")
            chosen = [s for s in shards if s.fold == fold]
        elif role == "train" and fold is not None:
            chosen = [s for s in shards if s.fold != fold] if fold in folds else []
        else:
            chosen = shards
        if not chosen:
            raise NoShardsError(f"{self.path}: no {role} shards for fold {fold}; the {split} "
                                f"shards hold folds {folds}")
        return chosen

    def files(self, role: str, fold: int | None = None) -> list[str]:
        """Paths of :meth:`select`'s shards, in name order."""
        return [s.path for s in self.select(role, fold)]

    def records_in(self, files: list[str]) -> int:
        """The manifest's record count of ``files`` (paths or names of this folder's shards)."""
        by_name = {s.name: s.records for s in self.shards}
        names = [str(f).rstrip("/").rsplit("/", 1)[-1] for f in files]
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise ShardFolderError(f"{self.path}: {len(unknown)} file(s) not in the manifest, "
                                   f"e.g. {unknown[:3]}")
        return sum(by_name[n] for n in names)

    def describe(self) -> str:
        return (f"{self.path}: {self.num_records} records in {len(self.shards)} {self.split} "
                f"shard(s), complete per its {MANIFEST_NAME}")


@dataclass
class FolderCheck:
    """What :func:`check_shard_folder` found. ``folder`` is None when there is no usable manifest;
    ``problems`` (refusals) and ``warnings``; ``missing``: listed shards absent from the folder;
    ``listing``: name -> size of the files directly in it."""

    path: str
    folder: ShardFolder | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    missing: set = field(default_factory=set)
    listing: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.folder is not None and not self.problems

    def message(self) -> str:
        """All problems in one line (the first :data:`MAX_LISTED` named)."""
        if self.folder is None:
            return f"{self.path}: {'; '.join(self.problems)}"
        shown = self.problems[:MAX_LISTED]
        more = len(self.problems) - len(shown)
        return (f"{self.path}: the shard folder does not match its {MANIFEST_NAME} "
                f"({len(self.problems)} problem(s)): {'; '.join(shown)}"
                + (f"; and {more} more" if more else "")
                + f" (tfseti verify {self.path} checks every shard)")


def _listing(fs, root: str) -> dict[str, int] | None:
    """name -> size of the plain files directly under ``root`` (None: no such folder)."""
    if not fsutil.is_local(fs):
        fs.invalidate_cache()
    try:
        if not fs.isdir(root):
            return None
        entries = fs.ls(root, detail=True)
    except FileNotFoundError:
        return None
    out = {}
    for entry in entries:
        if entry.get("type") == "file":
            out[entry["name"].rstrip("/").rsplit("/", 1)[-1]] = int(entry.get("size") or 0)
    return out


def _interrupted(fs, progress: str) -> str:
    """What to do about a folder whose writer left ``_progress.json``: the pseudo-labeller writes
    one with a ``pseudo`` section, the converter without."""
    try:
        pseudo = "pseudo" in loads_manifest(fs.cat_file(progress), PROGRESS_NAME)
    except (OSError, ManifestError):
        pseudo = False
    command = "python -m tfseti.pseudo" if pseudo else "tfseti convert"
    what = "pseudo-labelling" if pseudo else "conversion"
    return (f"{what} interrupted ({PROGRESS_NAME} present, no {MANIFEST_NAME}): rerun the same "
            f"{command} command to finish it")


def check_shard_folder(path: str, storage_options: dict | None = None) -> FolderCheck:
    """Check a shard folder against its manifest without reading any record (see the module
    docstring for what is checked). Raises NoShardsError when ``path`` is no folder at all."""
    path = str(path)
    shown = path.rstrip("/") or path
    check = FolderCheck(path=shown)
    fs, root = fsutil.url_to_fs(path, **(storage_options or {}))
    root = root.rstrip("/") or "/"
    listing = _listing(fs, root)
    if listing is None:
        raise NoShardsError(f"{shown}: no such shard folder")
    check.listing = listing
    if MANIFEST_NAME not in listing:
        if PROGRESS_NAME in listing:
            check.problems.append(_interrupted(fs, f"{root}/{PROGRESS_NAME}"))
        else:
            tfrecs = sorted(n for n in listing if n.endswith(SHARD_SUFFIX))
            hint = (f"; it holds {len(tfrecs)} {SHARD_SUFFIX} file(s) without the manifest "
                    f"tfseti convert writes last: convert again, or name the files with "
                    f"an explicit glob such as {fsutil.join(shown, '*' + SHARD_SUFFIX)}"
                    if tfrecs else "")
            check.problems.append(f"not a shard folder (no {MANIFEST_NAME}){hint}")
        return check
    try:
        doc = loads_manifest(fs.cat_file(f"{root}/{MANIFEST_NAME}"), MANIFEST_NAME)
    except ManifestError as err:
        check.problems.append(str(err))
        return check
    problems, fatal = manifest_problems(doc)
    check.problems.extend(problems)
    if fatal:
        return check

    shards = []
    listed = set()
    for entry in doc["shards"]:
        name = str(entry.get("name"))
        parsed = parse_shard_name(name)
        if parsed is None:
            continue
        listed.add(name)
        shards.append(Shard(name=name, path=fsutil.join(shown, name), split=parsed["split"],
                            fold=parsed["fold"], index=parsed["index"], count=parsed["count"],
                            records=int(entry["records"]), bytes=int(entry["bytes"]),
                            classes=dict(entry.get("classes") or {})))
    for shard in shards:
        if shard.name not in listing:
            check.problems.append(f"{shard.name}: missing")
            check.missing.add(shard.name)
        elif listing[shard.name] != shard.bytes:
            check.problems.append(f"{shard.name}: {listing[shard.name]} bytes, manifest says "
                                  f"{shard.bytes}")
    for name in sorted(listing):
        if name.endswith(SHARD_SUFFIX) and name not in listed:
            check.problems.append(f"{name}: in the prefix but not in the manifest")
    if PROGRESS_NAME in listing:
        check.warnings.append(f"{PROGRESS_NAME} present: a rerun of the converter was "
                              f"interrupted or is running")
    check.folder = ShardFolder(path=shown, manifest=doc,
                               shards=sorted(shards, key=lambda s: s.name))
    return check


def open_shard_folder(path: str, storage_options: dict | None = None) -> ShardFolder:
    """The complete shard folder at ``path`` (local or URL), or ShardFolderError naming every
    difference from its manifest (NoShardsError when there is no such folder)."""
    check = check_shard_folder(path, storage_options)
    if not check.ok:
        raise ShardFolderError(check.message())
    return check.folder


def list_shard_files(path: str) -> list[str]:
    """Paths of the files named like shards in ``path``, sorted, with no completeness check:
    for a best-effort look at a folder (the report's waterfall plots), never for training or
    prediction."""
    fs, root = fsutil.url_to_fs(str(path))
    listing = _listing(fs, root.rstrip("/") or "/")
    if listing is None:
        raise NoShardsError(f"{path}: no such shard folder")
    shown = str(path).rstrip("/") or str(path)
    return [fsutil.join(shown, n) for n in sorted(listing) if parse_shard_name(n)]


# -- explicit globs ----------------------------------------------------------------------------
@dataclass
class ShardGlob:
    """The files an explicit glob matched and the records counted in them (no manifest)."""

    pattern: str
    files: list[str]
    records: int

    def describe(self) -> str:
        return (f"{len(self.files)} shard(s) matching {self.pattern}: {self.records} records "
                f"(counted; an explicit glob is not checked against a manifest)")


def glob_files(pattern: str) -> list[str]:
    """Sorted paths matching ``pattern`` (local or URL); NoShardsError when none does."""
    fs, inner = fsutil.url_to_fs(str(pattern))
    if not fsutil.is_local(fs):
        fs.invalidate_cache()
    matches = sorted(m for m in fs.glob(inner) if not fs.isdir(m))
    if not matches:
        raise NoShardsError(f"{pattern}: no shard matches the pattern")
    return [fsutil.unstrip(fs, m) for m in matches]


def open_shard_glob(pattern: str) -> ShardGlob:
    """An explicit glob of shards: allowed without a manifest, its records counted by reading
    them (CorruptShardError names a file that cannot be read)."""
    files = glob_files(pattern)
    return ShardGlob(pattern=str(pattern), files=files, records=count_records(files))


# -- reading records ---------------------------------------------------------------------------
def detect_compression(path: str) -> str | None:
    """``"GZIP"`` when the shard starts with the gzip magic bytes, else None (plain TFRecord)."""
    import tensorflow as tf

    with tf.io.gfile.GFile(path, "rb") as handle:
        return "GZIP" if handle.read(2) == GZIP_MAGIC else None


def _count_file(path: str, compression: str | None) -> int:
    import tensorflow as tf

    dataset = tf.data.TFRecordDataset(path, compression_type=compression or "")
    return int(dataset.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))


def count_records(files: list[str], compression: str | None = "auto") -> int:
    """Records in ``files``, read one file at a time (``compression="auto"``: per file from its
    first bytes). A file that cannot be read raises CorruptShardError naming it."""
    import tensorflow as tf

    total = 0
    for path in files:
        kind = detect_compression(path) if compression == "auto" else compression
        try:
            total += _count_file(path, kind)
        except tf.errors.OpError as err:
            raise CorruptShardError(f"{path}: unreadable shard, {read_error_detail(err)}") from None
    return total


_OFFSET_RE = re.compile(r"(corrupted|truncated) record at (\d+)")


def read_error_detail(err: Exception) -> str:
    """What a TensorFlow read error says, in a few words (``corrupted record at byte 838828``)."""
    text = getattr(err, "message", None) or str(err)
    match = _OFFSET_RE.search(text)
    if match:
        return f"{match[1]} record at byte {match[2]} ({type(err).__name__})"
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)
    text = re.sub(r"\s*\[Op:[^\]]*\].*", "", text, flags=re.S)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return f"{lines[-1] if lines else ''} ({type(err).__name__})".strip()


def corrupt_shard_error(err: Exception, files: list[str], compression: str | None = "auto"
                        ) -> CorruptShardError:
    """Turn a read error met while iterating a dataset over ``files`` into one CorruptShardError
    naming the shard. TensorFlow's message has the byte offset but not the file (interleaved
    reads), so the files are read again one at a time until one fails."""
    import tensorflow as tf

    for path in files:
        kind = detect_compression(path) if compression == "auto" else compression
        try:
            _count_file(path, kind)
        except tf.errors.OpError as inner:
            return CorruptShardError(f"{path}: corrupt shard, {read_error_detail(inner)}; "
                                     f"tfseti verify checks every shard of "
                                     f"its folder")
    return CorruptShardError(f"reading {len(files)} shard(s) failed ({read_error_detail(err)}), "
                             f"but each of them reads alone; first {files[0] if files else None}")
