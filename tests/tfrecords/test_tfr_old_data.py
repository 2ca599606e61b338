"""The old (leaky) data: both ``--data`` spellings, test_old with its labels, ``--renormalize``
removing a leak made on purpose, its place in the manifest, and training splits of a
``train_old`` folder."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from tfrecords_tools.convert import ConvertError, convert, renormalize_panels
from tfrecords_tools.convert import main as convert_main
from tfr_helpers import assert_bit_exact, read_shards, shard_files
from tfseti.io.kaggle import ON_PANELS, OFF_PANELS, cadence_relpath, save_cadence
from tfseti.io.shards import MANIFEST_NAME, PROGRESS_NAME
from tfseti.metrics import rank_auc

QUIET = {"progress": False, "log": lambda _: None}
N_TRAIN_OLD, N_TEST_OLD = 40, 8
SHARD_MB = 5.0  # 20 records of 0.84 MB per fold: 4 shards per fold
# The leak made on purpose: a positive's ON panels have another std and mean than its OFF panels
# and than a negative's panels (all N(0, 1)).
LEAK_STD, LEAK_MEAN = 1.3, 0.2


def write_old_data(root, seed: int = 11) -> dict:
    """``root/old_leaky_data`` with train_old (40, half positive) and test_old (8, half positive)
    noise cadences, the positives made leaky; returns ``{split: DataFrame}``."""
    rng = np.random.default_rng(seed)
    old = os.path.join(str(root), "old_leaky_data")
    frames = {}
    for split, csv, n in (("train_old", "train_labels_old.csv", N_TRAIN_OLD),
                          ("test_old", "test_labels_old.csv", N_TEST_OLD)):
        ids = [f"{v:012x}" for v in rng.choice(16 ** 12, size=n, replace=False)]
        targets = rng.permutation(np.arange(n) % 2)
        for cid, target in zip(ids, targets):
            cadence = rng.standard_normal((6, 273, 256), dtype=np.float32)
            if target:
                cadence[list(ON_PANELS)] = cadence[list(ON_PANELS)] * LEAK_STD + LEAK_MEAN
            save_cadence(os.path.join(old, *cadence_relpath(split, cid).split("/")),
                         cadence.astype(np.float16))
        frames[split] = pd.DataFrame({"id": ids, "target": targets})
        frames[split].to_csv(os.path.join(old, csv), index=False)
    return frames


@pytest.fixture(scope="module")
def old_data(tmp_path_factory):
    """(Kaggle root holding old_leaky_data/, {split: labels})."""
    root = tmp_path_factory.mktemp("kaggle_old")
    return str(root), write_old_data(root)


@pytest.fixture(scope="module")
def old_shards(old_data, tmp_path_factory):
    """train_old converted as it is (from the Kaggle root) and with --renormalize (from the
    old_leaky_data folder): {"raw": (out, manifest, log), "renormalized": (...)}."""
    root, _ = old_data
    out = tmp_path_factory.mktemp("old_shards")
    result = {}
    for name, data, renormalize in (("raw", root, False),
                                    ("renormalized", os.path.join(root, "old_leaky_data"), True)):
        messages = []
        manifest = convert(data, str(out / name), split="train_old", folds=2, seed=1,
                           shard_mb=SHARD_MB, workers=2, renormalize=renormalize, progress=False,
                           log=messages.append)
        result[name] = (str(out / name), manifest, messages)
    return result


def panel_stats(records: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(targets, per-panel means, per-panel stds) of the records, statistics in float32."""
    ids = sorted(records)
    cadences = np.stack([records[i]["cadence"].astype(np.float32) for i in ids])
    targets = np.array([records[i]["target"] for i in ids])
    return targets, cadences.mean(axis=(2, 3)), cadences.std(axis=(2, 3))


def leak_features(means: np.ndarray, stds: np.ndarray) -> dict[str, np.ndarray]:
    on, off = list(ON_PANELS), list(OFF_PANELS)
    return {"ON std": stds[:, on].mean(1), "ON mean": means[:, on].mean(1),
            "ON-OFF std": stds[:, on].mean(1) - stds[:, off].mean(1),
            "ON-OFF mean": means[:, on].mean(1) - means[:, off].mean(1)}


def feature_auc(feature: np.ndarray, targets: np.ndarray) -> float:
    return rank_auc(feature[targets == 1], feature[targets == 0])


def test_renormalize_removes_the_leak(old_shards, old_data):
    raw_out, raw_manifest, _ = old_shards["raw"]
    renorm_out, renorm_manifest, _ = old_shards["renormalized"]
    raw = read_shards(shard_files(raw_out))
    renorm = read_shards(shard_files(renorm_out))
    labels = dict(zip(old_data[1]["train_old"]["id"], old_data[1]["train_old"]["target"]))
    assert set(raw) == set(renorm) == set(labels)
    assert all(r["target"] == labels[c] for c, r in renorm.items())
    assert_bit_exact(raw, os.path.join(old_data[0], "old_leaky_data"), "train_old")
    assert raw_manifest["params"]["renormalize"] is False
    assert renorm_manifest["params"]["renormalize"] is True
    assert renorm_manifest["counts"] == raw_manifest["counts"]

    # Before: per-panel statistics alone predict the label.
    targets, means, stds = panel_stats(raw)
    before = {k: feature_auc(v, targets) for k, v in leak_features(means, stds).items()}
    assert before["ON std"] >= 0.95 and before["ON mean"] >= 0.95, before

    # After: every panel has mean 0 and std 1 up to float16 rounding, and the same statistics
    # no longer predict it: at float16 resolution they are constant (AUC 0.5), and even their
    # last float32 digits (rounding noise) rank no better than chance.
    targets, means, stds = panel_stats(renorm)
    assert all(r["cadence"].dtype == np.float16 for r in renorm.values())
    assert np.abs(means).max() < 1e-3 and np.abs(stds - 1).max() < 1e-3, (
        np.abs(means).max(), np.abs(stds - 1).max())
    after = {k: feature_auc(v, targets) for k, v in leak_features(means, stds).items()}
    resolved = {k: feature_auc(np.round(v, 3), targets)
                for k, v in leak_features(means, stds).items()}
    assert all(auc == 0.5 for auc in resolved.values()), resolved
    assert all(abs(auc - 0.5) <= 0.2 for auc in after.values()), after


def test_renormalize_panels_is_per_panel_and_survives_a_constant_panel():
    rng = np.random.default_rng(0)
    cadence = (rng.standard_normal((6, 273, 256)) * np.arange(1, 7)[:, None, None]
               + np.arange(6)[:, None, None]).astype(np.float16)
    cadence[3] = 2.5  # a constant panel: zeros, not NaN
    out = renormalize_panels(cadence)
    assert out.dtype == np.float16 and out.shape == cadence.shape
    values = out.astype(np.float32)
    assert np.isfinite(values).all() and not values[3].any()
    keep = [0, 1, 2, 4, 5]
    np.testing.assert_allclose(values[keep].mean(axis=(1, 2)), 0, atol=1e-3)
    np.testing.assert_allclose(values[keep].std(axis=(1, 2)), 1, atol=1e-3)


def test_both_data_spellings_and_test_old_with_labels(old_data, tmp_path, capsys):
    root, frames = old_data
    old = os.path.join(root, "old_leaky_data")
    outs = {}
    for name, data in (("root", root), ("old", old)):
        outs[name] = str(tmp_path / name)
        assert convert_main(["--data", data, "--out", outs[name], "--split", "test_old",
                             "--shard-mb", "2", "--workers", "2", "--no-progress"]) == 0
    err = capsys.readouterr().err
    # Only the Kaggle root is redirected, in one line; both record the same source.
    assert err.count(f"--split test_old: reading the old data from {old}") == 1, err
    manifests = [json.load(open(os.path.join(outs[n], MANIFEST_NAME))) for n in ("root", "old")]
    assert manifests[0]["params"] == manifests[1]["params"]
    assert manifests[0]["params"]["source"] == os.path.abspath(old)
    assert manifests[0]["params"]["folds"] == 0
    assert [os.path.basename(p) for p in shard_files(outs["root"])] == [
        f"test_old-{i:05d}-of-00004.tfrec" for i in range(4)]
    records = read_shards(shard_files(outs["root"]))
    assert records.keys() == read_shards(shard_files(outs["old"])).keys()
    labels = dict(zip(frames["test_old"]["id"], frames["test_old"]["target"]))
    assert {c: r["target"] for c, r in records.items()} == labels
    assert {r["target"] for r in records.values()} == {0, 1}
    assert all(r["fold"] == -1 for r in records.values())
    assert manifests[0]["counts"]["classes"] == {"0": 4, "1": 4}
    assert_bit_exact(records, old, "test_old")


def test_train_old_is_folded_and_its_log_names_the_old_folder(old_shards, old_data):
    out, manifest, messages = old_shards["raw"]
    old = os.path.join(old_data[0], "old_leaky_data")
    assert any(m == f"--split train_old: reading the old data from {old}" for m in messages)
    assert manifest["params"]["source"] == os.path.abspath(old)
    names = [os.path.basename(p) for p in shard_files(out)]
    assert names == [f"train_old-f{f}-{i:05d}-of-00004.tfrec" for f in range(2) for i in range(4)]
    assert manifest["counts"]["folds"] == {str(f): {"records": 20, "classes": {"0": 10, "1": 10}}
                                           for f in range(2)}


def test_rerun_flipped_renormalize_and_manifests_without_the_key(old_shards, old_data, tmp_path):
    root = old_data[0]
    src, manifest, _ = old_shards["raw"]
    work = str(tmp_path / "work")
    shutil.copytree(src, work)
    base = dict(split="train_old", folds=2, seed=1, shard_mb=SHARD_MB, workers=2, progress=False)

    messages = []
    assert convert(root, work, **base, log=messages.append) == manifest
    assert any("nothing to do" in m for m in messages), messages

    with pytest.raises(ConvertError, match="refusing to mix") as info:
        convert(root, work, **base, renormalize=True, log=lambda _: None)
    assert "renormalize is False there, True now" in str(info.value)

    # A manifest written before the option existed counts as renormalize: false.
    doc = json.load(open(os.path.join(work, MANIFEST_NAME)))
    del doc["params"]["renormalize"]
    json.dump(doc, open(os.path.join(work, MANIFEST_NAME), "w"))
    messages = []
    assert convert(root, work, **base, log=messages.append) == doc
    assert any("nothing to do" in m for m in messages), messages
    with pytest.raises(ConvertError, match="renormalize is False there, True now"):
        convert(root, work, **base, renormalize=True, log=lambda _: None)

    # ... and so does an interrupted run's progress file: the rerun resumes and finishes.
    os.remove(os.path.join(work, MANIFEST_NAME))
    os.remove(os.path.join(work, doc["shards"][-1]["name"]))
    progress = {k: v for k, v in doc.items() if k not in ("counts", "num_records", "num_shards")}
    progress.update(complete=False, shards=doc["shards"][:-1])
    json.dump(progress, open(os.path.join(work, PROGRESS_NAME), "w"))
    messages = []
    resumed = convert(root, work, **base, log=messages.append)
    assert any("resuming: 7 of 8" in m for m in messages), messages
    assert resumed["shards"] == manifest["shards"]
    assert resumed["params"]["renormalize"] is False


def test_a_train_old_folder_gives_train_and_val_shards(old_shards):
    from tfseti.io.shards import NoShardsError, open_shard_folder

    out, _, _ = old_shards["renormalized"]
    folder = open_shard_folder(out)
    assert folder.split == "train_old" and folder.folds == [0, 1]
    train = folder.select("train", 0)
    val = folder.select("val", 0)
    assert {s.fold for s in train} == {1} and {s.fold for s in val} == {0}
    assert len(train) == len(val) == 4 and all(s.split == "train_old" for s in train + val)
    assert folder.records_in(folder.files("train", 0)) == 20
    assert len(folder.select("train")) == 8
    with pytest.raises(NoShardsError, match=f"{out}: no val shards for fold 2"):
        folder.select("val", 2)
    with pytest.raises(NoShardsError, match=f"{out}: no test-\\*.tfrec shards"):
        folder.select("test")


def test_a_test_old_folder_gives_test_shards(old_data, tmp_path):
    from tfseti.io.shards import NoShardsError, open_shard_folder

    out = str(tmp_path / "test_old")
    convert(old_data[0], out, split="test_old", shard_mb=2.0, workers=2, **QUIET)
    folder = open_shard_folder(out)
    assert [s.name for s in folder.select("test")] == [
        f"test_old-{i:05d}-of-00004.tfrec" for i in range(4)]
    with pytest.raises(NoShardsError, match=f"{out}: no train-\\*.tfrec shards"):
        folder.select("train", 0)


def test_validate_accepts_the_old_layout(old_data):
    from tfseti.data.validate import validate

    root, _ = old_data
    for data, split in ((root, "all"), (root, "train_old"),
                        (os.path.join(root, "old_leaky_data"), "all")):
        report = validate(data, split, workers=2)
        assert report.ok, [str(p) for p in report.problems]
    assert [s.split for s in validate(root, workers=2).splits] == ["train_old", "test_old"]
    assert validate(root, "test_old", workers=2).splits[0].files_checked == N_TEST_OLD
