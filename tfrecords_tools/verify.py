"""Check a shard prefix against its manifest.

    python -m tfrecords_tools.verify DIR|gs://bucket/prefix [--no-decode] [--workers N]
        [--no-progress]

Checks: first the folder check every reader makes (``tfseti.io.shards.check_shard_folder``: the
manifest is there, readable, of a known schema, consistent and holds records in every fold; every
listed shard exists with the recorded size; no unlisted ``*.tfrec`` file sits in the prefix), all
its problems listed; then every shard's crc32c, and every record of every
shard decodes with ``tfseti.io.records.parse_example`` to the declared shape and dtype, holds no
NaN/Inf, has a valid unique id, the shard's fold and a target of the shard's classes; the record
counts per shard, fold and class equal the manifest's. Exit status 0 when all hold, 1 with the
list of problems otherwise.

Reading from object stores: TensorFlow's own ``gs://`` filesystem cannot be pointed at an
emulator (and adds a second credential path), so each shard is streamed through fsspec into a
local temporary file while its crc32c is computed, and ``tf.data.TFRecordDataset`` reads that
copy (TFRecord framing, CRCs and GZIP handled by TensorFlow). Local shards are read in place.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from tfseti.command import common_flags, run_command, workers_flag
from tfseti.console import show_progress
from tfseti.io.kaggle import valid_id
from tfseti.io.shard_writer import HASH_CHUNK, TMP_DIR, Destination, crc32c_hasher, hash_file
from tfseti.io.shards import NoShardsError, check_shard_folder


@dataclass
class Report:
    """What ``verify`` found: ``problems`` (fail), ``warnings`` (informational) and totals."""

    path: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    records: int = 0
    shards: int = 0
    classes: dict = field(default_factory=dict)
    folds: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        lines = []
        if self.ok:
            lines.append(f"verify {self.path}: OK, {self.records} records in {self.shards} shards "
                         f"(classes {self.classes}, folds {self.folds})")
        else:
            lines.append(f"verify {self.path}: FAILED, {len(self.problems)} problem(s):")
            lines.extend(f"  - {p}" for p in self.problems)
        lines.extend(f"  warning: {w}" for w in self.warnings)
        return "\n".join(lines)


def _first_line(err: Exception) -> str:
    text = getattr(err, "message", None) or str(err)
    text = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    return f"{type(err).__name__}: {text}"


def _check_shard(dest: Destination, entry: dict, shape, compression, decode: bool, parse) -> dict:
    """Check one shard; returns ``{problems, records, classes, ids}``."""
    import tensorflow as tf

    name = entry["name"]
    out = {"problems": [], "records": 0, "classes": Counter(), "ids": []}
    problems = out["problems"]
    if dest.info(name) is None:  # gone since the folder check (which names missing shards)
        problems.append(f"{name}: missing")
        return out

    tmpdir = None
    try:
        if dest.local:
            local = dest.path(name)
            digest = hash_file(local)["crc32c"]
        else:
            tmpdir = tempfile.mkdtemp(prefix="tfrecords_verify-")
            local = os.path.join(tmpdir, name)
            crc = crc32c_hasher()
            with dest.fs.open(dest.path(name), "rb", block_size=HASH_CHUNK) as src, \
                    open(local, "wb") as dst:
                while chunk := src.read(HASH_CHUNK):
                    crc.update(chunk)
                    dst.write(chunk)
            digest = crc.digest().hex()
        if digest != entry.get("crc32c"):
            problems.append(f"{name}: crc32c {digest} differs from the manifest's "
                            f"{entry.get('crc32c')}")
        if not decode:
            return out

        fold = int(entry.get("fold", -2))
        allowed = {int(k) for k in (entry.get("classes") or {})} or {-1, 0, 1}
        dataset = tf.data.TFRecordDataset(local, compression_type=compression or "")
        bad_records = Counter()
        try:
            for serialized in dataset:
                rec = {k: v.numpy() for k, v in parse(serialized).items()}
                index = out["records"]
                out["records"] += 1
                cid = rec["id"].decode("utf-8", "replace")
                target = int(rec["label"])  # the hard class (a v2 record's soft target aside)
                out["ids"].append(cid)
                out["classes"][target] += 1
                cadence = rec["cadence"]
                if not valid_id(cid):  # the one id rule (tfseti.io.kaggle)
                    bad_records["id"] += 1
                    if bad_records["id"] == 1:
                        problems.append(f"{name}: record {index} has an invalid id {cid!r}")
                if int(rec["fold"]) != fold:
                    bad_records["fold"] += 1
                    if bad_records["fold"] == 1:
                        problems.append(f"{name}: record {index} ({cid}) has fold {int(rec['fold'])},"
                                        f" the shard is fold {fold}")
                if target not in allowed:
                    bad_records["target"] += 1
                    if bad_records["target"] == 1:
                        problems.append(f"{name}: record {index} ({cid}) has target {target}, "
                                        f"manifest classes are {sorted(allowed)}")
                if cadence.dtype != np.float16 or tuple(cadence.shape) != tuple(shape):
                    problems.append(f"{name}: record {index} ({cid}) decodes to {cadence.dtype} "
                                    f"{cadence.shape}, expected float16 {tuple(shape)}")
                elif not np.isfinite(cadence).all():
                    bad_records["finite"] += 1
                    if bad_records["finite"] == 1:
                        problems.append(f"{name}: record {index} ({cid}) holds NaN or Inf values")
        except tf.errors.OpError as err:
            problems.append(f"{name}: unreadable after {out['records']} record(s) "
                            f"({_first_line(err)})")
        for key, count in bad_records.items():
            if count > 1:
                problems.append(f"{name}: {count} records with the same kind of problem ({key})")
        if out["records"] != int(entry.get("records", -1)):
            problems.append(f"{name}: {out['records']} records decoded, manifest says "
                            f"{entry.get('records')}")
        classes = {str(k): out["classes"][k] for k in sorted(out["classes"])}
        if classes != (entry.get("classes") or {}):
            problems.append(f"{name}: classes {classes}, manifest says {entry.get('classes')}")
    except (OSError, tf.errors.OpError) as err:
        problems.append(f"{name}: cannot read ({_first_line(err)})")
    finally:
        if tmpdir is not None:
            import shutil

            shutil.rmtree(tmpdir, ignore_errors=True)
    return out


def _parser(shape):
    """``parse_example`` with the declared static shape, traced once for every shard."""
    import tensorflow as tf

    from tfseti.io.records import parse_example

    return tf.function(lambda serialized: parse_example(serialized, shape),
                       input_signature=[tf.TensorSpec([], tf.string)])


def verify(path: str, *, storage_options: dict | None = None, decode: bool = True,
           workers: int | None = None, progress: bool = False) -> Report:
    """Verify the shards under ``path`` (local folder or URL) against its ``manifest.json``."""
    dest = Destination(path, storage_options)
    report = Report(path=dest.url)
    try:
        check = check_shard_folder(dest.url, storage_options)
    except NoShardsError as err:
        report.problems.append(str(err))
        return report
    report.problems.extend(check.problems)
    report.warnings.extend(check.warnings)
    if check.folder is None:  # no manifest, or one that cannot be used at all
        return report
    doc = check.folder.manifest
    shape = tuple(doc["cadence_shape"])
    compression = (doc.get("params") or {}).get("compression")
    shards = [entry for entry in doc["shards"] if entry.get("name") not in check.missing]
    leftovers = dest.temporaries()
    if leftovers:
        report.warnings.append(f"{len(leftovers)} temporary file(s) under {TMP_DIR}/ "
                               f"(an interrupted run; the next conversion removes them)")

    workers = workers or max(1, min(4, os.cpu_count() or 1))
    parse = _parser(shape) if decode else None
    bar = None
    if show_progress(progress):
        from tqdm.auto import tqdm

        bar = tqdm(total=len(shards), unit="shard", desc="verify", dynamic_ncols=True)
    results = []
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(_check_shard, dest, entry, shape, compression, decode, parse)
                   for entry in shards]
        for fut in futures:
            results.append(fut.result())
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()

    ids: Counter = Counter()
    classes: Counter = Counter()
    folds: dict = {}
    for entry, result in zip(shards, results):
        report.problems.extend(result["problems"])
        ids.update(result["ids"])
        classes.update(result["classes"])
        fold_entry = folds.setdefault(str(entry.get("fold")), Counter())
        fold_entry.update(result["classes"])
    report.shards = len(doc["shards"])
    if decode:
        report.records = sum(r["records"] for r in results)
        dupes = sorted(k for k, v in ids.items() if v > 1)
        if dupes:
            report.problems.append(f"{len(dupes)} id(s) appear in more than one record, "
                                   f"e.g. {dupes[:3]}")
        report.classes = {str(k): classes[k] for k in sorted(classes)}
        report.folds = {f: sum(c.values()) for f, c in sorted(folds.items(), key=lambda x: int(x[0]))}
        counts = doc.get("counts") or {}
        if report.records != doc.get("num_records"):
            report.problems.append(f"{report.records} records decoded in all, manifest says "
                                   f"{doc.get('num_records')}")
        if report.classes != counts.get("classes"):
            report.problems.append(f"class counts decoded {report.classes}, manifest says "
                                   f"{counts.get('classes')}")
        decoded_folds = {f: {"records": sum(c.values()),
                             "classes": {str(k): c[k] for k in sorted(c)}}
                         for f, c in folds.items()}
        if decoded_folds != counts.get("folds"):
            report.problems.append(f"fold counts decoded {decoded_folds}, manifest says "
                                   f"{counts.get('folds')}")
    else:
        report.records = int(doc.get("num_records") or 0)
        report.classes = (doc.get("counts") or {}).get("classes", {})
        report.folds = {f: v.get("records") for f, v in ((doc.get("counts") or {}).get("folds")
                                                          or {}).items()}
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tfrecords_tools.verify",
        parents=[workers_flag("shards checked in parallel"),
                 common_flags("storage_options", "no_progress")],
        description="Check TFRecord shards (local or gs://) against their manifest.json.")
    parser.add_argument("paths", nargs="+", metavar="path",
                        help="shard prefix: local folder or URL (gs://bucket/prefix); several are "
                             "checked one after the other, in one process")
    parser.add_argument("--no-decode", action="store_true",
                        help="check existence, sizes and checksums only (no record decoding)")
    args = parser.parse_args(argv)
    failed = 0
    for path in args.paths:
        try:
            report = verify(path, storage_options=args.storage_options, decode=not args.no_decode,
                            workers=args.workers, progress=not args.no_progress)
        except (OSError, ValueError) as err:
            print(f"verify {path}: FAILED, cannot read the prefix: {err}", file=sys.stderr)
            failed += 1
            continue
        print(report.text(), file=sys.stdout if report.ok else sys.stderr)
        failed += not report.ok
    return 1 if failed else 0

if __name__ == "__main__":
    run_command(main)
