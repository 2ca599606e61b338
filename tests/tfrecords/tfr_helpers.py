"""Helpers and fixtures of the tfrecords_tools tests (imported by the test modules, as the other
folders' helper modules are; not a conftest)."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest

from harness import write_kaggle_dir

N_TRAIN, N_TEST = 40, 12
SHARD_MB = 2.0  # ~2 cadences per shard: several shards per fold from 40 cadences


def read_shards(paths, compression=None) -> dict:
    """id -> {target, fold, cadence, shard} of every record in ``paths`` (local files)."""
    import tensorflow as tf

    from tfseti.io.records import parse_example

    out = {}
    for path in sorted(paths):
        dataset = tf.data.TFRecordDataset(path, compression_type=compression or "")
        for rec in dataset.map(parse_example).as_numpy_iterator():
            cid = rec["id"].decode()
            assert cid not in out, f"{cid} in two records"
            out[cid] = {"target": int(rec["target"]), "fold": int(rec["fold"]),
                        "cadence": rec["cadence"], "shard": os.path.basename(path)}
    return out


def assert_bit_exact(records: dict, data_root: str, split: str, panels=None) -> None:
    """Every record's cadence has the same float16 bit patterns as its .npy file."""
    from tfseti.io.kaggle import cadence_relpath

    for cid, rec in records.items():
        array = np.load(os.path.join(data_root, *cadence_relpath(split, cid).split("/")))
        if panels is not None:
            array = array[list(panels)]
        assert rec["cadence"].dtype == np.float16
        assert rec["cadence"].shape == array.shape
        np.testing.assert_array_equal(rec["cadence"].view(np.uint16), array.view(np.uint16),
                                      err_msg=f"cadence {cid} differs from its .npy")


def shard_files(root) -> list[str]:
    return sorted(glob.glob(os.path.join(str(root), "*.tfrec")))


@pytest.fixture(scope="session")
def kaggle40(tmp_path_factory):
    """A Kaggle folder with 40 train (10 positive) and 12 test noise cadences."""
    root = tmp_path_factory.mktemp("kaggle40")
    frames = write_kaggle_dir(str(root), n_train=N_TRAIN, n_test=N_TEST, seed=7)
    return str(root), frames


@pytest.fixture(scope="session")
def converted(kaggle40, tmp_path_factory):
    """``kaggle40``'s train split converted locally (5 folds, seed 3, 2 MB shards)."""
    from tfrecords_tools.convert import convert

    out = str(tmp_path_factory.mktemp("shards") / "train")
    manifest = convert(kaggle40[0], out, split="train", folds=5, seed=3, shard_mb=SHARD_MB,
                       workers=2, progress=False, log=lambda _: None)
    return out, manifest


# The shared argparse types' one-line errors, as every tfrecords_tools command prints them.
ARGUMENT_ERRORS = [
    (["--workers", "0"], "argument --workers: expected an integer >= 1, got 0"),
    (["--storage-options", "{bad"], "argument --storage-options: not valid JSON (Expecting property "
                                    "name enclosed in double quotes: line 1 column 2 (char 1))"),
]
