"""``tfseti.io.shard_writer``: shard sizing, naming, assignment and folds (no TensorFlow), and the
publication of a finished shard with its manifest entry."""

from __future__ import annotations

import fnmatch
import os
from collections import Counter

import numpy as np
import pytest

from tfseti.io.shard_writer import (MIN_RECORDS_PER_SHARD, TMP_DIR, Destination, assign_folds,
                                   dumps_manifest, hash_file, manifest_header, num_shards,
                                   plan_digest, plan_shards)
from tfseti.io.shards import FORMAT, fold_pattern, loads_manifest, parse_shard_name, shard_name

RECORD = 838_800  # about one (6, 273, 256) float16 record
MB = 1_000_000


def test_num_shards_is_bytes_over_shard_size_without_enough_data():
    # 20 records of 0.84 MB at 2 MB per shard -> ceil(8.4) = 9 shards; 16 would leave < 8 records each
    assert num_shards(20, RECORD, 2 * MB) == 9
    assert num_shards(3, RECORD, 100 * MB) == 1
    assert num_shards(3, RECORD, 0.1 * MB) == 3  # never more shards than records
    assert num_shards(0, RECORD, MB) == 0


def test_num_shards_rounds_up_to_a_multiple_of_8_with_enough_data():
    # a Kaggle train fold: 12000 records, 100 MB shards -> ceil(100.7) = 101 -> 104
    assert num_shards(12000, RECORD, 100 * MB) == 104
    # 9 shards needed, 16 * 8 = 128 records available -> 16
    assert num_shards(128, RECORD, RECORD * 128 / 9) == 16
    # one record short of 8 per shard for 16 shards -> stays 9
    assert num_shards(127, RECORD, RECORD * 127 / 9) == 9
    for n in (64, 500, 12000, 40000):
        count = num_shards(n, RECORD, 100 * MB)
        if count % 8 == 0:
            assert n >= count * MIN_RECORDS_PER_SHARD


def test_shard_names_select_folds_by_pattern():
    names = [shard_name("train", f, i, 3) for f in range(5) for i in range(3)]
    assert names[0] == "train-f0-00000-of-00003.tfrec"
    assert shard_name("test", -1, 7, 12) == "test-00007-of-00012.tfrec"
    fold2 = fnmatch.filter(names, fold_pattern("train", 2))
    assert fold2 == [f"train-f2-{i:05d}-of-00003.tfrec" for i in range(3)]
    assert len(fnmatch.filter(names, fold_pattern("train"))) == 15
    assert parse_shard_name("train-f12-00003-of-00104.tfrec") == {
        "split": "train", "fold": 12, "index": 3, "count": 104}
    assert parse_shard_name("train_old-00001-of-00002.tfrec")["fold"] == -1
    assert parse_shard_name("train-f0-00000-of-00003.tfrec.part") is None


def test_assign_folds_is_stratified_seeded_and_total():
    targets = np.array([1] * 20 + [0] * 80)
    folds = assign_folds(targets, 5, seed=11)
    assert sorted(set(folds.tolist())) == [0, 1, 2, 3, 4]
    for fold in range(5):
        assert (folds == fold).sum() == 20
        assert targets[folds == fold].sum() == 4  # 20 % positives in every fold
    np.testing.assert_array_equal(folds, assign_folds(targets, 5, seed=11))
    assert not np.array_equal(folds, assign_folds(targets, 5, seed=12))
    np.testing.assert_array_equal(assign_folds(targets, 1, seed=0), np.zeros(100))
    with pytest.raises(ValueError, match="cannot be split into 5 folds"):
        assign_folds(np.array([0, 1, 0]), 5, seed=0)


def test_plan_puts_every_record_once_balanced_and_deterministic():
    rng = np.random.default_rng(0)
    ids = [f"{i:015x}" for i in range(200)]
    targets = (rng.random(200) < 0.2).astype(np.int64)
    folds = assign_folds(targets, 4, seed=1)
    plans = plan_shards("train", ids, targets, folds, seed=5, record_bytes=RECORD,
                        shard_bytes=4 * RECORD)
    placed = [cid for plan in plans for cid in plan.ids]
    assert sorted(placed) == sorted(ids)
    for plan in plans:
        assert all(folds[ids.index(cid)] == plan.fold for cid in plan.ids)
        assert plan.targets == [int(targets[ids.index(cid)]) for cid in plan.ids]
    for fold in range(4):
        shards = [p for p in plans if p.fold == fold]
        positives = [sum(p.targets) for p in shards]
        sizes = [len(p.ids) for p in shards]
        assert max(positives) - min(positives) <= 1  # each shard gets the fold's class mix
        assert max(sizes) - min(sizes) <= 1
    again = plan_shards("train", ids, targets, folds, seed=5, record_bytes=RECORD,
                        shard_bytes=4 * RECORD)
    assert plan_digest(again) == plan_digest(plans)
    other = plan_shards("train", ids, targets, folds, seed=6, record_bytes=RECORD,
                        shard_bytes=4 * RECORD)
    assert plan_digest(other) != plan_digest(plans)


def test_a_published_shard_appears_whole_with_its_manifest_entry(tmp_path):
    dest = Destination(str(tmp_path / "out"))
    dest.prepare()
    name = shard_name("train", 1, 0, 2)
    work = dest.local_work_path(name)
    assert os.path.dirname(work) == os.path.join(dest.root, TMP_DIR)  # never under a final name
    with open(work, "wb") as handle:
        handle.write(b"twelve bytes")
    entry = dest.publish_shard(work, name, 1, 0, 2, Counter({1: 2, 0: 3}))
    assert entry == {"name": name, "fold": 1, "index": 0, "count": 2, "records": 5,
                     "classes": {"0": 3, "1": 2}, "bytes": 12,
                     "crc32c": hash_file(os.path.join(dest.root, name))["crc32c"], "skipped": []}
    assert not os.path.exists(work) and dest.listing() == {name: 12}
    assert dest.checksum_matches(name, entry)
    assert not dest.checksum_matches(name, {**entry, "crc32c": "00000000"})


def test_the_manifest_document_round_trips():
    doc = manifest_header(2, {"split": "pseudo"}, {"batch_size": 4}, "abc", (6, 273, 256),
                          complete=False)
    assert doc["format"] == FORMAT and doc["complete"] is False
    assert doc["cadence_shape"] == [6, 273, 256] and doc["tool"]["name"] == "tfseti"
    assert loads_manifest(dumps_manifest(doc), "m") == doc
