"""Local conversion: bit-exact round trip, folds, manifest, resume, bad input, the prefix guard."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil

import google_crc32c
import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import StratifiedKFold

from tfrecords_tools.convert import ConvertError, convert
from tfrecords_tools.convert import main as convert_main
from tfrecords_tools.verify import main as verify_main
from tfrecords_tools.verify import verify
from tfr_helpers import (N_TRAIN, SHARD_MB, assert_bit_exact, converted, kaggle40,  # noqa: F401
                         read_shards, shard_files)
from harness import write_kaggle_dir
from tfseti.io.kaggle import cadence_relpath
from tfseti.io.shards import MANIFEST_NAME, PROGRESS_NAME, fold_pattern

QUIET = {"progress": False, "log": lambda _: None}


def sha256(path) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def shard_digests(root) -> dict:
    return {os.path.basename(p): sha256(p) for p in shard_files(root)}


def test_round_trip_is_bit_exact_with_stratified_folds(converted, kaggle40):
    out, manifest = converted
    data, frames = kaggle40
    records = read_shards(shard_files(out))
    labels = dict(zip(frames["train"]["id"], frames["train"]["target"]))
    assert set(records) == set(labels)
    assert_bit_exact(records, data, "train")
    # folds are scikit-learn's StratifiedKFold(5, shuffle, seed 3) over the csv order
    ids = list(frames["train"]["id"])
    y = frames["train"]["target"].to_numpy()
    splitter = StratifiedKFold(n_splits=5, shuffle=True, random_state=3)
    for fold, (_, valid) in enumerate(splitter.split(np.zeros(len(ids)), y)):
        assert {ids[i] for i in valid} == {c for c, r in records.items() if r["fold"] == fold}
    for cid, rec in records.items():
        assert rec["target"] == labels[cid]
        assert rec["shard"].startswith(f"train-f{rec['fold']}-")
    for fold in range(5):  # 40 cadences, 10 positive: 8 per fold, 2 of them positive
        members = [r for r in records.values() if r["fold"] == fold]
        assert len(members) == 8 and sum(r["target"] for r in members) == 2


def test_manifest_describes_the_shards(converted):
    out, manifest = converted
    on_disk = json.load(open(os.path.join(out, MANIFEST_NAME)))
    assert on_disk == manifest
    assert manifest["format"] == "tfseti-tfrecords" and manifest["schema_version"] == 1
    assert manifest["complete"] is True
    assert manifest["params"] == {"source": manifest["params"]["source"], "split": "train",
                                  "folds": 5, "seed": 3, "shard_mb": SHARD_MB, "panels": "all",
                                  "compression": None, "renormalize": False}
    assert manifest["cadence_shape"] == [6, 273, 256] and manifest["cadence_dtype"] == "float16"
    assert manifest["num_records"] == N_TRAIN and manifest["skipped"] == []
    assert manifest["counts"]["classes"] == {"0": 30, "1": 10}
    assert manifest["counts"]["folds"] == {str(f): {"records": 8, "classes": {"0": 6, "1": 2}}
                                           for f in range(5)}
    names = [s["name"] for s in manifest["shards"]]
    assert names == [os.path.basename(p) for p in shard_files(out)]
    assert manifest["num_shards"] == len(names) == 20  # 8 records of 0.84 MB at 2 MB: 4 per fold
    records = read_shards(shard_files(out))
    for entry in manifest["shards"]:
        path = os.path.join(out, entry["name"])
        assert entry["bytes"] == os.path.getsize(path)
        assert entry["crc32c"] == f"{google_crc32c.value(open(path, 'rb').read()):08x}"
        in_shard = [r for r in records.values() if r["shard"] == entry["name"]]
        assert entry["records"] == len(in_shard)
        assert entry["classes"] == {str(t): sum(r["target"] == t for r in in_shard)
                                    for t in sorted({r["target"] for r in in_shard})}
    assert sorted(os.listdir(out)) == sorted([MANIFEST_NAME, *names])  # no _tmp, no _progress


def test_a_fold_is_selected_by_file_pattern(converted):
    out, _ = converted
    fold2 = fnmatch.filter(os.listdir(out), fold_pattern("train", 2))
    assert len(fold2) == 4
    records = read_shards([os.path.join(out, n) for n in fold2])
    assert len(records) == 8 and {r["fold"] for r in records.values()} == {2}


def test_rerun_is_a_no_op_and_output_is_deterministic(converted, kaggle40, tmp_path):
    out, manifest = converted
    before = {p: os.stat(p).st_mtime_ns for p in shard_files(out)}
    messages = []
    again = convert(kaggle40[0], out, split="train", folds=5, seed=3, shard_mb=SHARD_MB,
                    workers=2, progress=False, log=messages.append)
    assert again == manifest
    assert any("nothing to do" in m for m in messages)
    assert {p: os.stat(p).st_mtime_ns for p in shard_files(out)} == before
    # another prefix, another worker count: byte-identical shards
    other = str(tmp_path / "other")
    convert(kaggle40[0], other, split="train", folds=5, seed=3, shard_mb=SHARD_MB, workers=1,
            **QUIET)
    assert shard_digests(other) == shard_digests(out)


def test_resume_keeps_good_shards_and_rewrites_the_rest(converted, kaggle40, tmp_path):
    out, manifest = converted
    work = str(tmp_path / "resume")
    shutil.copytree(out, work)
    shards = manifest["shards"]
    # The state an interrupted run leaves: no manifest, a progress file naming the first half,
    # one recorded shard lost, one recorded shard damaged, an unrecorded final shard of the
    # second half (published, then killed before the progress update) and a stale temporary.
    os.remove(os.path.join(work, MANIFEST_NAME))
    progress = {k: v for k, v in manifest.items() if k not in ("counts", "num_records", "num_shards")}
    progress.update(complete=False, shards=shards[:10])
    with open(os.path.join(work, PROGRESS_NAME), "w") as handle:
        json.dump(progress, handle)
    os.remove(os.path.join(work, shards[1]["name"]))
    with open(os.path.join(work, shards[2]["name"]), "r+b") as handle:
        handle.seek(500)
        byte = handle.read(1)
        handle.seek(500)
        handle.write(bytes([byte[0] ^ 0xFF]))
    for entry in shards[11:]:
        os.remove(os.path.join(work, entry["name"]))
    kept_mtime = os.stat(os.path.join(work, shards[0]["name"])).st_mtime_ns
    os.makedirs(os.path.join(work, "_tmp"))
    with open(os.path.join(work, "_tmp", shards[12]["name"] + ".123-abc.part"), "wb") as handle:
        handle.write(b"partial")

    messages = []
    result = convert(kaggle40[0], work, split="train", folds=5, seed=3, shard_mb=SHARD_MB,
                     workers=2, progress=False, log=messages.append)
    assert any("resuming: 8 of 20" in m for m in messages), messages  # 10 recorded - 2 damaged
    assert any("removed 1 temporary" in m for m in messages), messages
    assert shard_digests(work) == shard_digests(out)
    assert os.stat(os.path.join(work, shards[0]["name"])).st_mtime_ns == kept_mtime
    assert result["shards"] == manifest["shards"]
    assert sorted(os.listdir(work)) == sorted([MANIFEST_NAME, *(s["name"] for s in shards)])
    assert verify(work).ok


def test_test_split_with_gzip_and_on_panels(kaggle40, tmp_path):
    data, frames = kaggle40
    out = str(tmp_path / "test")
    manifest = convert(data, out, split="test", seed=3, shard_mb=1.0, panels="on",
                       compression="gzip", workers=2, **QUIET)
    assert manifest["params"]["compression"] == "GZIP"
    assert manifest["cadence_shape"] == [3, 273, 256]
    assert manifest["counts"] == {"classes": {"-1": 12},
                                  "folds": {"-1": {"records": 12, "classes": {"-1": 12}}}}
    # 12 records of 0.42 MB at 1 MB per shard: 6 shards named without a fold
    assert sorted(os.listdir(out)) == [MANIFEST_NAME] + [f"test-{i:05d}-of-00006.tfrec"
                                                         for i in range(6)]
    for path in shard_files(out):
        assert open(path, "rb").read(2) == b"\x1f\x8b"  # gzip member
    records = read_shards(shard_files(out), compression="GZIP")
    assert set(records) == set(frames["test"]["id"])
    assert all(r["target"] == -1 and r["fold"] == -1 for r in records.values())
    assert_bit_exact(records, data, "test", panels=(0, 2, 4))
    assert verify(out).ok


BAD_KINDS = ("shape", "dtype", "nan", "truncated", "missing")


def _spoil(data: str, cid: str, kind: str) -> str:
    path = os.path.join(data, *cadence_relpath("train", cid).split("/"))
    good = np.load(path)
    if kind == "shape":
        np.save(path, good[:, :, :255])
    elif kind == "dtype":
        np.save(path, good.astype(np.float32))
    elif kind == "nan":
        good[3, 100, 7] = np.nan
        np.save(path, good)
    elif kind == "truncated":
        raw = open(path, "rb").read()
        open(path, "wb").write(raw[: len(raw) // 2])
    else:
        os.remove(path)
    return path


EXPECTED_PROBLEM = {"shape": "shape is (6, 273, 255)", "dtype": "dtype is float32",
                    "nan": "NaN", "truncated": "truncated", "missing": "not found"}


@pytest.fixture
def small_dir(tmp_path):
    data = str(tmp_path / "kaggle")
    frames = write_kaggle_dir(data, n_train=12, n_test=0, seed=21, positive_rate=0.5)
    return data, list(frames["train"]["id"])


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_npy_stops_the_run_naming_the_file(small_dir, tmp_path, kind):
    data, ids = small_dir
    path = _spoil(data, ids[5], kind)
    with pytest.raises(ConvertError) as info:
        convert(data, str(tmp_path / "out"), folds=2, seed=0, shard_mb=4.0, workers=2, **QUIET)
    message = str(info.value)
    assert path in message and EXPECTED_PROBLEM[kind] in message and "--skip-bad" in message
    assert not os.path.exists(tmp_path / "out" / MANIFEST_NAME)


def test_skip_bad_lists_skipped_files_in_the_manifest(small_dir, tmp_path, capsys):
    data, ids = small_dir
    spoiled = {ids[i]: _spoil(data, ids[i], kind) for i, kind in enumerate(BAD_KINDS)}
    out = str(tmp_path / "out")
    assert convert_main(["--data", data, "--out", out, "--folds", "2", "--shard-mb", "4",
                         "--no-progress"]) == 2
    assert "bad cadence file" in capsys.readouterr().err
    assert convert_main(["--data", data, "--out", out, "--folds", "2", "--shard-mb", "4",
                         "--skip-bad", "--quiet"]) == 0  # the old spelling is still accepted
    manifest = json.load(open(os.path.join(out, MANIFEST_NAME)))
    assert {s["id"]: s["path"] for s in manifest["skipped"]} == spoiled
    assert {s["id"]: EXPECTED_PROBLEM[k] in s["problem"]
            for s, k in zip(sorted(manifest["skipped"], key=lambda s: ids.index(s["id"])),
                            BAD_KINDS)} == {cid: True for cid in spoiled}
    assert manifest["num_records"] == 12 - len(BAD_KINDS)
    assert manifest["options"]["skip_bad"] is True
    records = read_shards(shard_files(out))
    assert set(records) == set(ids) - set(spoiled)
    assert_bit_exact(records, data, "train")
    assert verify(out).ok


def test_skip_bad_that_leaves_no_record_fails_and_is_refused(tmp_path, capsys):
    """--skip-bad over a dataset with no readable file used to write 0 records, exit 0, and
    verify then said OK."""
    from tfseti.io.shards import ShardFolderError, open_shard_folder

    data = str(tmp_path / "kaggle")
    frames = write_kaggle_dir(data, n_train=4, n_test=0, seed=5, positive_rate=0.5)
    for cid in frames["train"]["id"]:
        _spoil(data, cid, "nan")
    out = str(tmp_path / "out")
    args = ["--data", data, "--out", out, "--folds", "2", "--shard-mb", "4", "--skip-bad",
            "--quiet"]
    assert convert_main(args) == 2
    assert "error: no records written: 4 file(s) were bad" in capsys.readouterr().err
    assert convert_main(args) == 2  # the rerun (nothing left to write) fails the same way
    assert "no records written" in capsys.readouterr().err
    report = verify(out)
    assert not report.ok and any("the manifest lists 0 records" in p for p in report.problems)
    assert verify_main([out]) == 1
    with pytest.raises(ShardFolderError, match="lists 0 records"):
        open_shard_folder(out)


def test_a_fold_left_without_records_fails(small_dir, tmp_path, capsys):
    from tfseti.io.shard_writer import assign_folds

    data, ids = small_dir
    targets = pd.read_csv(os.path.join(data, "train_labels.csv"))["target"].to_numpy()
    folds = assign_folds(targets, 2, 0)
    for cid, fold in zip(ids, folds):
        if fold == 1:
            _spoil(data, cid, "nan")
    out = str(tmp_path / "out")
    assert convert_main(["--data", data, "--out", out, "--folds", "2", "--seed", "0",
                         "--shard-mb", "4", "--skip-bad", "--quiet"]) == 2
    assert "error: fold(s) [1] hold no records" in capsys.readouterr().err
    problems = verify(out).problems
    assert any("fold(s) [1] hold no records" in p for p in problems), problems


def test_files_without_a_csv_row_are_reported(small_dir, tmp_path):
    data, ids = small_dir
    extra = ["fedcba987654321", "fedcba987654322"]
    for cid in extra:
        path = os.path.join(data, *cadence_relpath("train", cid).split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        np.save(path, np.zeros((6, 273, 256), np.float16))
    messages = []
    doc = convert(data, str(tmp_path / "out"), folds=2, seed=0, shard_mb=4.0, workers=2,
                  progress=False, log=messages.append)
    assert doc["num_records"] == len(ids)
    (line,) = [m for m in messages if "no row" in m]
    assert line.startswith("warning: 2 .npy file(s) under ") and "train_labels.csv" in line
    assert str(extra) in line


def test_progress_bar_only_on_a_terminal_and_drawn_with_its_total(small_dir, tmp_path, capsys,
                                                                  monkeypatch):
    from tfseti import console

    data, _ = small_dir
    convert(data, str(tmp_path / "piped"), folds=2, shard_mb=4.0, workers=1, log=lambda _: None)
    assert capsys.readouterr().err == ""  # stderr is not a terminal: no bar, no escape codes
    monkeypatch.setattr(console, "interactive", lambda stream=None: True)
    convert(data, str(tmp_path / "tty"), folds=2, shard_mb=4.0, workers=1, log=lambda _: None)
    frames = [f for f in capsys.readouterr().err.replace("\n", "\r").split("\r") if f.strip()]
    # every frame, the first included, shows the total: no empty "0 cadence" bar first
    assert frames and all("/12 " in f for f in frames), frames


def test_label_file_problems_say_what_was_expected(small_dir, tmp_path):
    data, ids = small_dir
    labels = os.path.join(data, "train_labels.csv")
    original = open(labels).read()
    open(labels, "w").write(original.replace(f"{ids[3]},0", f"{ids[3]},2")
                            .replace(f"{ids[3]},1", f"{ids[3]},2"))
    with pytest.raises(ConvertError) as info:
        convert(data, str(tmp_path / "out"), folds=2, **QUIET)
    assert str(info.value).endswith(f"1 target(s) are not 0 or 1, e.g. ['{ids[3]}=2']")
    for text, problem in [("", "the file is empty, expected a header line 'id,target'"),
                          ("id,target\n", "no rows after the header, expected one 'id,target' row")]:
        open(labels, "w").write(text)
        with pytest.raises(ConvertError, match=problem):
            convert(data, str(tmp_path / "out"), folds=2, **QUIET)


@pytest.mark.parametrize("args, message", [
    (["--workers", "0"], "argument --workers: expected an integer >= 1, got 0"),
    (["--storage-options", "{bad"], "argument --storage-options: not valid JSON (Expecting property "
                                    "name enclosed in double quotes: line 1 column 2 (char 1)): '{bad'"),
    (["--storage-options", '["anon"]'], "argument --storage-options: expected a JSON object"),
])
def test_cli_argument_errors_are_one_line(small_dir, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as caught:
        convert_main(["--data", small_dir[0], "--out", str(tmp_path / "out"), *args])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_prefix_of_other_parameters_or_schema_is_refused(converted, kaggle40, tmp_path):
    out, manifest = converted
    data = kaggle40[0]
    work = str(tmp_path / "guard")
    shutil.copytree(out, work)
    before = shard_digests(work)
    base = dict(split="train", folds=5, seed=3, shard_mb=SHARD_MB, workers=2, **QUIET)
    for change, words in (({"seed": 4}, "seed is 3 there, 4 now"),
                          ({"panels": "on"}, "panels is 'all' there, 'on' now"),
                          ({"compression": "gzip"}, "compression is None there, 'GZIP' now"),
                          ({"shard_mb": 3.0}, "shard_mb is 2.0 there, 3.0 now"),
                          ({"split": "test"}, "split is 'train' there, 'test' now")):
        with pytest.raises(ConvertError, match="refusing to mix") as info:
            convert(data, work, **{**base, **change})
        assert words in str(info.value)
    doc = json.load(open(os.path.join(work, MANIFEST_NAME)))
    doc["schema_version"] = 2
    json.dump(doc, open(os.path.join(work, MANIFEST_NAME), "w"))
    with pytest.raises(ConvertError, match="schema_version is 2"):
        convert(data, work, **base)
    assert shard_digests(work) == before  # nothing touched

    # shards without any manifest, and foreign shard names next to ours
    os.remove(os.path.join(work, MANIFEST_NAME))
    with pytest.raises(ConvertError, match="no manifest.json or _progress.json"):
        convert(data, work, **base)
    foreign = str(tmp_path / "foreign")
    os.makedirs(foreign)
    open(os.path.join(foreign, "train-f0-00000-of-00001.tfrec"), "wb").write(b"x")
    with pytest.raises(ConvertError, match="would not write"):
        convert(data, foreign, **base)
    assert shard_digests(work) == before
