"""Convert a Kaggle-layout split (``.npy`` cadences) to lossless sharded TFRecords.

    python -m tfrecords_tools.convert --data DIR|gs://... --out DIR|gs://bucket/prefix \\
        --split train --folds 5 --seed 0 --shard-mb 100 --panels all --workers 8 [--renormalize]

One output prefix holds one split. Shards are named ``train-f{k}-{i:05d}-of-{n:05d}.tfrec``
(``test-{i:05d}-of-{n:05d}.tfrec`` for splits without folds), so ``train-f3-*.tfrec`` selects
fold 3. Records follow ``tfseti.io.records`` (schema v1). See docs/data.md, section
"TFRecord shards" for the manifest and resume semantics; in short:

* every shard is written to a temporary name and appears under its final name complete;
* ``_progress.json`` records each finished shard (size, crc32c) as the run goes, and
  ``manifest.json`` is written last;
* a rerun with the same parameters keeps shards that exist with the recorded size and checksum,
  rewrites the others, deletes stale temporaries and then writes the manifest; a rerun with other
  parameters (or into a prefix holding other shards) fails without touching anything.
* ``.npy`` files of the split without a row in the label csv are not converted; their number and
  the first ids are reported (``tfseti.data.validate`` lists them all).
* a conversion that leaves no record (``--skip-bad`` with no readable file), or a fold without
  records, fails after writing its manifest (which lists the skipped files); every reader and
  ``tfrecords_tools.verify`` refuse such a folder.

The old (leaky) data: ``--split train_old`` / ``test_old`` read ``old_leaky_data/``;
``--data`` may be that folder or the Kaggle folder holding it (as for ``tfseti.data.validate``).
``train_old`` gets folds (``train_old-f{k}-...``); ``test_old`` gets none but keeps its labels.
In that release the injection changed each panel's statistics, so a panel's mean and std alone
predict the label. ``--renormalize`` removes that leak: every panel of every cadence is
re-normalised to mean 0, std 1 (computed in float32 over the panel's time x frequency, the std
floored at ``STD_FLOOR`` so that a constant panel becomes zeros) and stored as float16 like every
record. It is one of the manifest's ``params`` (``renormalize``), so a rerun with it flipped is
refused; records written with it are no longer bit-exact copies of the ``.npy`` files.

Parallelism is threads, ``--workers`` shards at a time plus a read-ahead pool: file reads, CRC32C
and uploads/downloads release the GIL and overlap; ``.npy`` decoding and protobuf encoding mostly
hold it, so on a local destination extra workers gain little (see benchmarks/convert_bench.py),
while on GCS they keep several uploads in flight. No process is forked after TensorFlow is
imported.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor, as_completed

import numpy as np

from tfseti.command import command, common_flags, run_command, workers_flag
from tfseti.console import show_progress
from tfseti.io import fs as fsutil
from tfseti.io.folder_lock import FolderLock, FolderLocked
from tfseti.io.kaggle import (LABEL_FILES, ON_PANELS, CadenceError, CadenceIdError, KaggleDataset,
                              check_ids, plain, split_root)
from tfseti.io.records import PANELS_SHAPES, SCHEMA_VERSION, encode_example
from tfseti.io.shard_writer import (MB, Destination, ShardPlan, assign_folds, dumps_manifest,
                                   incompatibilities, manifest_header, plan_digest, plan_shards)
from tfseti.io.shards import (MANIFEST_NAME, PROGRESS_NAME, SHARD_SUFFIX, ManifestError,
                              loads_manifest, summarize)

COMPRESSIONS = {"none": None, "gzip": "GZIP"}
READ_AHEAD = 4  # cadences read ahead per shard being written
# --renormalize: the std below which a panel counts as constant (it then becomes zeros instead
# of a division by zero); real panels have std ~1.
STD_FLOOR = 1e-6


class ConvertError(RuntimeError):
    """The conversion cannot go on; the message says why and what to do."""


class _Cancelled(Exception):
    pass


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def is_folded(split: str) -> bool:
    """Splits that get k-fold assignments (the labeled training splits)."""
    return split.startswith("train")


def renormalize_panels(array: np.ndarray) -> np.ndarray:
    """Each panel (axis 0) to mean 0, std 1 over its time x frequency, in float32, back to float16.

    This removes the old data's leak (per-panel statistics that predict the label).
    """
    values = array.astype(np.float32)
    mean = values.mean(axis=(1, 2), keepdims=True)
    std = values.std(axis=(1, 2), keepdims=True)
    return ((values - mean) / np.maximum(std, STD_FLOOR)).astype(np.float16)


def read_split(ds: KaggleDataset) -> tuple[list[str], np.ndarray]:
    """Ids (csv order) and targets of a split; unlabeled splits get target -1."""
    frame = ds.read_labels()
    ids = [str(i) for i in frame["id"]]
    try:
        check_ids(ids, ds.labels_file, first_line=2)
    except CadenceIdError as err:
        raise ConvertError(str(err)) from None
    dupes = sorted(k for k, v in Counter(ids).items() if v > 1)
    if dupes:
        raise ConvertError(f"{ds.labels_file}: {len(dupes)} duplicated id(s), e.g. {dupes[:3]}")
    if not ids:
        raise ConvertError(f"{ds.labels_file}: no rows after the header, expected one "
                           f"'id,target' row per cadence")
    if not ds.labeled:
        return ids, np.full(len(ids), -1, dtype=np.int64)
    import pandas as pd

    values = pd.to_numeric(frame["target"], errors="coerce").to_numpy()
    ok = np.isin(values, [0, 1])
    if not ok.all():
        examples = [f"{ids[i]}={plain(frame['target'].iloc[i])!r}"
                    for i in np.flatnonzero(~ok)[:3]]
        raise ConvertError(f"{ds.labels_file}: {int((~ok).sum())} target(s) are not 0 or 1, "
                           f"e.g. {examples}")
    return ids, values.astype(np.int64)


def record_size_estimate(shape, folded: bool) -> int:
    """Bytes one record takes in an uncompressed shard (proto + 16 bytes of TFRecord framing)."""
    sample = encode_example("0" * 15, np.zeros(shape, np.float16), target=1 if folded else -1,
                            fold=9 if folded else -1)
    return len(sample) + 16


def _prefetch(pool, fn, items, depth, stop):
    """Yield ``fn(item)`` results in order, keeping ``depth`` calls in flight on ``pool``."""
    pending = deque()
    items = iter(items)
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= depth:
            break
    while pending:
        if stop.is_set():
            for fut in pending:
                fut.cancel()
            raise _Cancelled()
        result = pending.popleft().result()
        nxt = next(items, None)
        if nxt is not None:
            pending.append(pool.submit(fn, nxt))
        yield result


class _Converter:
    def __init__(self, ds, dest, panels, compression, skip_bad, workers, progress, total=None,
                 renormalize=False):
        import tensorflow as tf

        self.tf = tf
        self.ds = ds
        self.dest = dest
        self.panels = panels
        self.renormalize = renormalize
        self.options = tf.io.TFRecordOptions(compression_type=compression or "")
        self.skip_bad = skip_bad
        self.workers = workers
        self.stop = threading.Event()
        self.read_pool = ThreadPoolExecutor(max(2, workers * 2), thread_name_prefix="read")
        self.lock = threading.Lock()
        self.bar = None
        if show_progress(progress):
            from tqdm.auto import tqdm

            # Created with its total: a bar started at total=0 is drawn once empty.
            self.bar = tqdm(total=total, unit="cadence", desc="convert", dynamic_ncols=True)

    def _encode(self, item):
        cid, target, fold = item
        try:
            array = self.ds.load(cid)
        except CadenceError as err:
            return cid, target, None, err
        if self.panels == "on":
            array = array[list(ON_PANELS)]
        if self.renormalize:
            array = renormalize_panels(array)
        return cid, target, encode_example(cid, array, target=target, fold=fold), None

    def write_shard(self, plan: ShardPlan) -> dict:
        work = self.dest.local_work_path(plan.name)
        classes: Counter = Counter()
        skipped = []
        try:
            items = [(cid, t, plan.fold) for cid, t in zip(plan.ids, plan.targets)]
            with self.tf.io.TFRecordWriter(work, self.options) as writer:
                for cid, target, payload, err in _prefetch(self.read_pool, self._encode, items,
                                                           READ_AHEAD, self.stop):
                    if err is not None:
                        if not self.skip_bad:
                            raise err
                        skipped.append({"id": cid, "path": err.path, "problem": err.problem})
                    else:
                        writer.write(payload)
                        classes[target] += 1
                    if self.bar is not None:
                        with self.lock:
                            self.bar.update(1)
            if self.stop.is_set():
                raise _Cancelled()
            return self.dest.publish_shard(work, plan.name, plan.fold, plan.index, plan.count,
                                           classes, skipped)
        finally:
            if os.path.exists(work):
                os.remove(work)

    def close(self):
        self.read_pool.shutdown(wait=True, cancel_futures=True)
        if self.bar is not None:
            self.bar.close()


def convert(data: str, out: str, *, split: str = "train", folds: int = 5, seed: int = 0,
            shard_mb: float = 100.0, panels: str = "all", compression: str | None = None,
            workers: int | None = None, skip_bad: bool = False, renormalize: bool = False,
            storage_options: dict | None = None, progress: bool = True, log=None,
            break_lock: bool = False) -> dict:
    """Convert ``data`` (Kaggle layout, local or URL) split ``split`` into shards under ``out``.

    For ``train_old`` / ``test_old``, ``data`` is the ``old_leaky_data`` folder or the Kaggle
    folder holding it. ``renormalize``: every panel to mean 0, std 1 (see the module docstring).

    Returns the manifest written to ``out/manifest.json``. Raises ConvertError (bad input,
    incompatible prefix) with a message naming the file or parameter at fault, FolderLocked
    when another conversion writes ``out`` (``break_lock``: take its lock anyway).
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    if panels not in PANELS_SHAPES:
        raise ConvertError(f"--panels must be one of {sorted(PANELS_SHAPES)}, got {panels!r}")
    if compression is not None:
        compression = COMPRESSIONS.get(str(compression).lower(), compression)
        if compression not in COMPRESSIONS.values():
            raise ConvertError(f"--compression must be none or gzip, got {compression!r}")
    if split not in LABEL_FILES:
        raise ConvertError(f"--split must be one of {sorted(LABEL_FILES)}, got {split!r}")
    if seed < 0:
        raise ConvertError(f"--seed must be >= 0, got {seed}")
    if not shard_mb > 0:
        raise ConvertError(f"--shard-mb must be > 0, got {shard_mb}")
    if workers is not None and workers < 1:
        raise ConvertError(f"--workers must be >= 1, got {workers}")
    workers = workers or default_workers()
    folded = is_folded(split)
    shape = PANELS_SHAPES[panels]

    root = split_root(data, split, storage_options)
    if root != data:
        log(f"--split {split}: reading the old data from {root}")
    data = root
    ds = KaggleDataset(data, split, storage_options=storage_options)
    try:
        ids, targets = read_split(ds)
    except (FileNotFoundError, ValueError) as err:
        raise ConvertError(str(err)) from None
    unlisted = files_without_row(ds, ids)
    if unlisted:
        log(f"warning: {len(unlisted)} .npy file(s) under {ds.split_path()} have no row in "
            f"{ds.labels_file} and are not converted, e.g. {unlisted[:5]}")
    try:
        fold_of = assign_folds(targets, folds, seed) if folded else np.full(len(ids), -1, np.int64)
    except ValueError as err:
        raise ConvertError(f"{ds.labels_file}: {err}") from None
    plans = plan_shards(split, ids, targets, fold_of, seed, record_size_estimate(shape, folded),
                        shard_mb * MB)
    digest = plan_digest(plans)
    params = {"source": fsutil.normal_location(data), "split": split, "folds": folds if folded else 0,
              "seed": seed, "shard_mb": shard_mb, "panels": panels, "compression": compression,
              "renormalize": bool(renormalize)}
    options = {"workers": workers, "skip_bad": skip_bad}

    dest = Destination(out, storage_options)
    try:
        dest.prepare()
        # One converter per prefix: a second one would delete the first's temporary shards
        # (cleanup_temporaries) and both would publish the same shard names.
        with FolderLock(dest.url, break_lock=break_lock, storage_options=storage_options,
                        log=log):
            recorded = _check_prefix(dest, params, digest, plans)
            return _run(ds, dest, plans, params, options, digest, shape, recorded, compression,
                        skip_bad, workers, progress, log)
    finally:
        dest.close()


def files_without_row(ds: KaggleDataset, ids: list[str]) -> list[str]:
    """Ids of the split's ``.npy`` files that the label csv does not list (sorted)."""
    listed = set(ids)
    return sorted(cid for cid in ds.list_files() if cid not in listed)


def check_usable(doc: dict, where: str) -> None:
    """Refuse a finished conversion that left no record, or a fold without records."""
    skipped = doc.get("skipped") or []
    why = (f"{len(skipped)} file(s) were bad and left out by --skip-bad (listed in {where}, e.g. "
           f"{[s.get('path') for s in skipped[:3]]})" if skipped else "no file was converted")
    if int(doc.get("num_records") or 0) == 0:
        raise ConvertError(f"no records written: {why}; there is nothing to train or predict on. "
                           f"Fix or replace the files, then rerun the same command.")
    folds = (doc.get("counts") or {}).get("folds") or {}
    expected = range(int((doc.get("params") or {}).get("folds") or 0))
    empty = [f for f in expected if int((folds.get(str(f)) or {}).get("records") or 0) == 0]
    if empty:
        raise ConvertError(f"fold(s) {empty} hold no records: {why}. Fix or replace the files "
                           f"and rerun, or convert with fewer --folds into another --out.")


def _check_prefix(dest: Destination, params: dict, digest: str, plans: list[ShardPlan]) -> dict:
    """Refuse prefixes holding other conversions; return the shard entries already recorded."""
    listing = dest.listing()
    docs = []
    for name in (MANIFEST_NAME, PROGRESS_NAME):
        if name not in listing:
            continue
        where = dest.display(name)
        try:
            doc = loads_manifest(dest.read_bytes(name), where)
        except ManifestError as err:
            raise ConvertError(f"{err}; cannot tell what the prefix holds. Convert into another "
                               f"--out, or delete {dest.url} first.") from None
        problems = incompatibilities(doc, SCHEMA_VERSION, params, digest)
        if problems:
            raise ConvertError(
                f"{where} describes a different conversion ({'; '.join(problems)}); refusing to "
                f"mix shards. Convert into another --out, or delete {dest.url} first.")
        docs.append(doc)
    planned = {plan.name for plan in plans}
    stray = sorted(n for n in listing if n.endswith(SHARD_SUFFIX) and n not in planned)
    if stray:
        raise ConvertError(
            f"{dest.url} holds {len(stray)} {SHARD_SUFFIX} file(s) this conversion would not write "
            f"(e.g. {', '.join(stray[:3])}): other parameters, split or schema; refusing to mix "
            f"shards. Convert into another --out, or delete them first.")
    ours = sorted(n for n in listing if n in planned)
    if ours and not docs:
        raise ConvertError(
            f"{dest.url} holds {len(ours)} shard(s) (e.g. {ours[0]}) but no {MANIFEST_NAME} or "
            f"{PROGRESS_NAME} saying how they were made; refusing to mix shards. Convert into "
            f"another --out, or delete them first.")
    recorded = {}
    for doc in docs:  # the manifest first, then the (newer) progress file
        for entry in doc.get("shards") or []:
            if entry.get("name") in planned and entry.get("name") in listing:
                recorded[entry["name"]] = entry
    return recorded


def _run(ds, dest, plans, params, options, digest, shape, recorded, compression, skip_bad,
         workers, progress, log) -> dict:
    stale = dest.cleanup_temporaries()
    if stale:
        log(f"removed {len(stale)} temporary file(s) left by an interrupted run")

    # Keep recorded shards whose size and checksum still match (checked in parallel).
    done: dict[str, dict] = {}
    if recorded:
        with ThreadPoolExecutor(workers) as pool:
            checks = {name: pool.submit(dest.checksum_matches, name, entry)
                      for name, entry in recorded.items()}
            for name, fut in checks.items():
                if fut.result():
                    done[name] = recorded[name]
    todo = [plan for plan in plans if plan.name not in done]
    had_manifest = dest.exists(MANIFEST_NAME)
    if not todo and had_manifest:
        dest.remove(PROGRESS_NAME)  # left if a run died between the manifest and this removal
        dest.remove_tmp_dir()
        log(f"{dest.url}: all {len(plans)} shards present and matching the manifest; nothing to do")
        doc = loads_manifest(dest.read_bytes(MANIFEST_NAME), dest.display(MANIFEST_NAME))
        check_usable(doc, dest.display(MANIFEST_NAME))
        return doc
    if done:
        log(f"resuming: {len(done)} of {len(plans)} shards already complete")

    def progress_doc():
        doc = manifest_header(SCHEMA_VERSION, params, options, digest, shape, complete=False)
        doc["shards"] = [done[p.name] for p in plans if p.name in done]
        return doc

    dest.write_bytes_atomic(PROGRESS_NAME, dumps_manifest(progress_doc()))
    if had_manifest:  # a complete manifest must not describe shards being rewritten
        dest.remove(MANIFEST_NAME)

    converter = _Converter(ds, dest, params["panels"], compression, skip_bad, workers, progress,
                           total=sum(len(p.ids) for p in todo), renormalize=params["renormalize"])
    failure = None
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="shard") as pool:
            futures = [pool.submit(converter.write_shard, plan) for plan in todo]
            try:
                for fut in as_completed(futures):
                    try:
                        entry = fut.result()
                    except _Cancelled:
                        continue
                    except BaseException as err:  # first failure: stop the others, keep going
                        if failure is None:
                            failure = err
                            converter.stop.set()
                        continue
                    done[entry["name"]] = entry
                    dest.write_bytes_atomic(PROGRESS_NAME, dumps_manifest(progress_doc()))
            except BaseException:  # KeyboardInterrupt while waiting
                converter.stop.set()
                raise
    finally:
        converter.close()

    if failure is not None:
        if isinstance(failure, CadenceError):
            raise ConvertError(
                f"bad cadence file {failure.path}: {failure.problem}. Fix or remove it, or rerun "
                f"with --skip-bad to leave bad files out (they are then listed in the manifest); "
                f"the {len(done)} shard(s) finished so far are kept and a rerun resumes.") from None
        raise failure

    shards = []
    skipped = []
    for plan in plans:
        entry = dict(done[plan.name])
        entry.setdefault("skipped", [])
        skipped.extend(entry["skipped"])
        shards.append(entry)
    doc = manifest_header(SCHEMA_VERSION, params, options, digest, shape, complete=True)
    doc.update(summarize(shards))
    doc["shards"] = shards
    doc["skipped"] = skipped
    dest.write_bytes_atomic(MANIFEST_NAME, dumps_manifest(doc))
    dest.remove(PROGRESS_NAME)
    dest.cleanup_temporaries()
    dest.remove_tmp_dir()
    if skipped:
        log(f"skipped {len(skipped)} bad file(s), listed in {dest.display(MANIFEST_NAME)}")
    check_usable(doc, dest.display(MANIFEST_NAME))
    log(f"{dest.url}: {doc['num_records']} records in {doc['num_shards']} shards "
        f"(classes {doc['counts']['classes']})")
    return doc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfrecords_tools.convert",
        parents=[workers_flag("shards written in parallel", shown=default_workers()),
                 common_flags("storage_options", "no_progress", "break_lock")],
        description="Convert a Kaggle-layout split (.npy cadences) to lossless sharded TFRecords "
                    "on a local folder or gs://, resumably.")
    parser.add_argument("--data", required=True,
                        help="Kaggle-layout folder or URL (gs://...); for train_old/test_old the "
                             "old_leaky_data folder or the Kaggle folder holding it")
    parser.add_argument("--out", required=True,
                        help="output folder or URL (gs://bucket/prefix); one split per prefix")
    parser.add_argument("--split", default="train", choices=sorted(LABEL_FILES))
    parser.add_argument("--folds", type=int, default=5,
                        help="stratified folds for train splits (1: everything in fold 0)")
    parser.add_argument("--seed", type=int, default=0, help="fold and shard assignment seed")
    parser.add_argument("--shard-mb", type=float, default=100.0,
                        help="target shard size in MB (10^6 bytes, uncompressed)")
    parser.add_argument("--panels", default="all", choices=sorted(PANELS_SHAPES),
                        help="all: (6,273,256); on: ON panels 0,2,4 only, (3,273,256)")
    parser.add_argument("--compression", default="none", choices=sorted(COMPRESSIONS))
    parser.add_argument("--skip-bad", action="store_true",
                        help="leave bad .npy files out and list them in the manifest")
    parser.add_argument("--renormalize", action="store_true",
                        help="re-normalise every panel to mean 0, std 1 (removes the leak of "
                             "the old data)")
    # The old spelling, still accepted (benchmarks/domain_shift.py passes it).
    parser.add_argument("--quiet", dest="no_progress", action="store_true", help=argparse.SUPPRESS)
    return parser


@command(ConvertError, FileNotFoundError, FolderLocked)
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    convert(args.data, args.out, split=args.split, folds=args.folds, seed=args.seed,
            shard_mb=args.shard_mb, panels=args.panels,
            compression=COMPRESSIONS[args.compression], workers=args.workers,
            skip_bad=args.skip_bad, renormalize=args.renormalize,
            storage_options=args.storage_options,
            progress=not args.no_progress, break_lock=args.break_lock)
    return 0


if __name__ == "__main__":
    run_command(main)
