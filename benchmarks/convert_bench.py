"""Converter throughput against a plain copy of the same .npy bytes to the same destination.

    python -m benchmarks.convert_bench --n 200 [--out DIR|gs://bucket/prefix] [--workers N]
    python -m benchmarks.convert_bench --n 200 --gcs-emulator   # destination: a local emulator

Writes ``--n`` noise cadences in the Kaggle layout to a local temporary folder, reads them once
(so both contenders find them in the page cache), then alternately, ``--repeat`` times:

* copy: every ``.npy`` file copied to ``<out>/copy-<k>/`` with ``fs.put_file`` from the same
  number of threads (the floor any converter has to pay: read + write of the same bytes);
* convert: ``tfrecords_tools.convert.convert`` (5 folds, ``--shard-mb``) into ``<out>/shards-<k>/``
  end to end: read, check, encode, TFRecord write, sha256+md5, atomic publish, manifest.

Prints MB/s of input (.npy bytes) for both, best of the repeats, and the ratio convert/copy
(goal >= 0.5). TensorFlow is imported before any timing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from tfrecords_tools.convert import convert, default_workers
from tfseti.io import fs as fsutil
from tfseti.io.kaggle import CADENCE_SHAPE, cadence_relpath


def make_data(root: str, n: int, seed: int) -> list[str]:
    """``n`` noise cadences (10 % positive) in the Kaggle layout; returns the .npy paths."""
    rng = np.random.default_rng(seed)
    ids = sorted({"".join(rng.choice(list("0123456789abcdef"), 15)) for _ in range(n)})
    paths = []
    for cid in ids:
        path = os.path.join(root, *cadence_relpath("train", cid).split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        np.save(path, rng.standard_normal(CADENCE_SHAPE, dtype=np.float32).astype(np.float16))
        paths.append(path)
    targets = (rng.random(len(ids)) < 0.1).astype(int)
    pd.DataFrame({"id": ids, "target": targets}).to_csv(os.path.join(root, "train_labels.csv"),
                                                        index=False)
    return paths


def plain_copy(paths: list[str], data: str, dest_url: str, workers: int) -> None:
    fs, root = fsutil.url_to_fs(dest_url)
    local = not fsutil.is_url(dest_url)

    def one(path):
        rel = os.path.relpath(path, data).replace(os.sep, "/")
        target = f"{root}/{rel}"
        if local:
            os.makedirs(os.path.dirname(target), exist_ok=True)
        fs.put_file(path, target)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, paths))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="cadences")
    parser.add_argument("--out", default=None, help="destination (default: a local temp folder)")
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--shard-mb", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gcs-emulator", action="store_true",
                        help="start gcp-storage-emulator and use it as the destination")
    args = parser.parse_args(argv)
    emulator = None
    if args.gcs_emulator:
        from tfseti.io.gcs_emulator import start_local_gcs

        emulator, args.out = start_local_gcs("bench"), "gs://bench/run"

    work = tempfile.mkdtemp(prefix="convert_bench-")
    out = args.out or os.path.join(work, "out")
    try:
        data = os.path.join(work, "kaggle")
        paths = make_data(data, args.n, args.seed)
        total = sum(os.path.getsize(p) for p in paths)
        for path in paths:  # page cache, the same for both contenders
            with open(path, "rb") as handle:
                handle.read()
        fs, _ = fsutil.url_to_fs(out)
        best = {"copy": float("inf"), "convert": float("inf")}
        for k in range(args.repeat):
            start = time.perf_counter()
            plain_copy(paths, data, fsutil.join(out, f"copy-{k}"), args.workers)
            best["copy"] = min(best["copy"], time.perf_counter() - start)
            start = time.perf_counter()
            convert(data, fsutil.join(out, f"shards-{k}"), split="train", folds=5, seed=0,
                    shard_mb=args.shard_mb, workers=args.workers, progress=False,
                    log=lambda _: None)
            best["convert"] = min(best["convert"], time.perf_counter() - start)
        mb = total / 1e6
        copy_rate, convert_rate = mb / best["copy"], mb / best["convert"]
        print(f"input: {args.n} cadences, {mb:.1f} MB; destination {out}; "
              f"{args.workers} workers; best of {args.repeat}")
        print(f"plain copy : {best['copy']:.2f} s  {copy_rate:8.1f} MB/s")
        print(f"convert    : {best['convert']:.2f} s  {convert_rate:8.1f} MB/s")
        print(f"ratio convert/copy = {convert_rate / copy_rate:.2f} (goal >= 0.5)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if args.out:
            for k in range(args.repeat):
                for name in (f"copy-{k}", f"shards-{k}"):
                    try:
                        fs.rm(fsutil.url_to_fs(fsutil.join(args.out, name))[1], recursive=True)
                    except FileNotFoundError:
                        pass
        if emulator is not None:
            emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
