"""The test set to predict (``--data``), read batch by batch, and the check of the ids predicted.

A Kaggle-layout folder (``test/`` + ``sample_submission.csv``, local or any fsspec URL such as
``gs://``), read in the sample submission's order; or TFRecord test shards, read once each in a
deterministic order (``tfseti.data.pipeline.eval_dataset``): a shard folder written by
``tfseti convert``, which must be complete (``tfseti.io.shards.open_shard_folder``: its
``manifest.json`` present and every shard there with the recorded size; an interrupted conversion,
a missing or extra shard is an error) and whose record count the ids read must equal; or an
explicit glob pattern (``DIR/test-*.tfrec``), whose records are counted first and the count shown.
A shard that cannot be read stops the run with one line naming it and the byte offset. Every id
must be predicted exactly once (``check_ids``).
"""

from __future__ import annotations

import collections
import concurrent.futures
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from tfseti.io.kaggle import LABEL_FILES

LOAD_THREADS = 8


@dataclass
class TestData:
    """A test set: ``batches(size)`` yields ``(ids, cadences (b, P, T, F) float16)``.

    expected_ids: the ids a submission must hold, in order (Kaggle folder), or None (shards: the
    read order); expected_count: the number of records when known (shard manifest).
    """

    description: str
    batches: object
    expected_ids: list[str] | None
    expected_count: int | None


def _is_kaggle_folder(data: str, split: str = "test") -> bool:
    from tfseti.io import fs as fsutil

    if any(c in data for c in "*?["):
        return False
    fs, inner = fsutil.url_to_fs(data.rstrip("/"))
    return fs.exists(f"{inner}/{LABEL_FILES[split]}") or fs.isdir(f"{inner}/{split}")


def kaggle_test_data(root: str, split: str = "test") -> TestData:
    """A split of a Kaggle-layout folder (default ``test``), in its label file's order (the
    sample submission's for ``test``)."""
    from tfseti.io.kaggle import KaggleDataset, check_ids

    dataset = KaggleDataset(root, split)
    # Ids become the paths read under --data: checked (tfseti.io.kaggle's one rule) first.
    ids = check_ids(dataset.ids(), dataset.labels_file, first_line=2)
    if not ids:
        # An empty submission would be "written successfully" and score nothing.
        raise ValueError(f"{dataset.labels_file}: no ids after the header, expected one "
                         f"'id,target' row per {split} cadence")
    duplicated = sorted(i for i, n in collections.Counter(ids).items() if n > 1)
    if duplicated:
        raise ValueError(f"{dataset.labels_file}: {len(duplicated)} id(s) listed more than once, "
                         f"e.g. {duplicated[:5]}")
    present = dataset.list_files()
    missing = [i for i in ids if i not in present]
    if missing:
        raise FileNotFoundError(f"{dataset.split_path()}: {len(missing)} id(s) of "
                                f"{dataset.labels_file} have no .npy file, e.g. "
                                f"{[dataset.path(i) for i in missing[:3]]}")

    def batches(size: int) -> Iterator[tuple[list[str], np.ndarray]]:
        with concurrent.futures.ThreadPoolExecutor(LOAD_THREADS) as pool:
            for start in range(0, len(ids), size):
                chunk = ids[start:start + size]
                yield chunk, np.stack(list(pool.map(dataset.load, chunk)))

    return TestData(f"Kaggle folder {root} ({len(ids)} {split} ids)", batches, ids, len(ids))


def shard_files(data: str, role: str = "test") -> tuple[list[str], int, str]:
    """``(shard paths, record count, description)`` of a complete shard folder (its ``test-*``
    shards, or every ``train-*`` shard with ``role="train"``; count from its manifest) or of an
    explicit glob pattern (every matching file; records counted)."""
    from tfseti.io import shards as shard_lib
    from tfseti.io.staging import tf_readable

    data = tf_readable(data)
    if shard_lib.is_glob(data):
        selection = shard_lib.open_shard_glob(data)
        return selection.files, selection.records, selection.describe()
    folder = shard_lib.open_shard_folder(data)
    files = folder.files(role)
    count = folder.records_in(files)
    return files, count, f"{len(files)} {role} shard(s) in {data} (manifest: {count} records)"


def shard_test_data(data: str, role: str = "test") -> TestData:
    """TFRecord shards (``test-*``, or ``train-*`` with ``role="train"``), every record once
    (``eval_dataset``); a read error becomes one CorruptShardError naming the shard."""
    files, count, description = shard_files(data, role)
    if not count:
        raise ValueError(f"{data}: no {role} records to predict ({description})")
    return files_test_data(files, count, description)


def files_test_data(files: list[str], count: int, description: str) -> TestData:
    """The records of the TFRecord shard ``files`` (TensorFlow-readable paths, ``count``
    records), every record once, e.g. one fold's validation shards."""
    import tensorflow as tf

    from tfseti.data.config import DataConfig
    from tfseti.data.pipeline import eval_dataset
    from tfseti.io.shards import corrupt_shard_error

    def batches(size: int) -> Iterator[tuple[list[str], np.ndarray]]:
        try:
            for batch in eval_dataset(files, DataConfig(batch_size=size)).as_numpy_iterator():
                mask = batch["mask"]
                yield [i.decode() for i in batch["id"][mask]], batch["cadence"][mask]
        except tf.errors.DataLossError as err:
            raise corrupt_shard_error(err, files) from None

    return TestData(description, batches, None, count)


def open_test_data(data: str, split: str = "test") -> TestData:
    """A split of a Kaggle-layout folder (has the split's label file or folder: for ``test``
    ``sample_submission.csv`` or ``test/``) or shards (``test-*``; every ``train-*`` for
    ``train``)."""
    if _is_kaggle_folder(data, split):
        return kaggle_test_data(data, split)
    return shard_test_data(data, role=split)


def check_ids(ids: list[str], expected_ids: list[str] | None, expected_count: int | None) -> None:
    """Every id exactly once (and, when known, exactly the expected ids / count)."""
    duplicated = sorted(i for i, n in collections.Counter(ids).items() if n > 1)
    if duplicated:
        raise ValueError(f"{len(duplicated)} id(s) predicted more than once, e.g. {duplicated[:5]}")
    if expected_ids is not None and ids != expected_ids:
        got, want = set(ids), set(expected_ids)
        missing = [i for i in expected_ids if i not in got]
        extra = [i for i in ids if i not in want]
        raise ValueError(f"predictions do not match the sample submission: {len(missing)} id(s) "
                         f"missing (e.g. {missing[:5]}), {len(extra)} not in it (e.g. {extra[:5]})"
                         + ("" if missing or extra else ", or in another order"))
    if expected_count is not None and len(ids) != expected_count:
        raise ValueError(f"{len(ids)} ids predicted but the shards hold {expected_count} records "
                         f"(manifest or count)")
