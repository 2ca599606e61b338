"""verify finds each kind of damage and says which shard and what."""

from __future__ import annotations

import json
import os
import shutil

import google_crc32c
import numpy as np
import pytest

from tfrecords_tools.verify import main as verify_main
from tfrecords_tools.verify import verify
from tfr_helpers import ARGUMENT_ERRORS, converted, kaggle40  # noqa: F401
from tfseti.io.records import encode_example
from tfseti.io.shards import MANIFEST_NAME


@pytest.fixture
def copy(converted, tmp_path):
    out, manifest = converted
    work = str(tmp_path / "shards")
    shutil.copytree(out, work)
    return work, json.loads(json.dumps(manifest))


def _rewrite_manifest(work, manifest):
    with open(os.path.join(work, MANIFEST_NAME), "w") as handle:
        json.dump(manifest, handle)


def test_intact_shards_pass(copy, capsys):
    work, manifest = copy
    report = verify(work)
    assert report.ok, report.text()
    assert report.records == 40 and report.shards == 20
    assert verify_main([work]) == 0
    assert "OK, 40 records in 20 shards" in capsys.readouterr().out


def test_several_folders_in_one_command_each_reported_and_any_failure_fails(copy, tmp_path,
                                                                            capsys):
    work, _ = copy
    missing = str(tmp_path / "nowhere")
    assert verify_main([work, work, "--no-progress"]) == 0
    assert capsys.readouterr().out.count("OK, 40 records in 20 shards") == 2
    assert verify_main([missing, work, "--no-progress"]) == 1     # the rest still checked
    captured = capsys.readouterr()
    assert f"verify {missing}: FAILED" in captured.err and "OK, 40 records" in captured.out


def test_missing_shard(copy, capsys):
    work, manifest = copy
    name = manifest["shards"][3]["name"]
    os.remove(os.path.join(work, name))
    report = verify(work)
    assert f"{name}: missing" in report.problems
    assert verify_main([work]) == 1
    assert f"{name}: missing" in capsys.readouterr().err


def test_changed_byte(copy):
    work, manifest = copy
    name = manifest["shards"][5]["name"]
    with open(os.path.join(work, name), "r+b") as handle:
        handle.seek(300_000)  # inside a cadence payload
        byte = handle.read(1)
        handle.seek(300_000)
        handle.write(bytes([byte[0] ^ 0x01]))
    problems = verify(work).problems
    assert any(p.startswith(f"{name}: crc32c") for p in problems), problems
    assert any(p.startswith(f"{name}: unreadable") and "DataLoss" in p for p in problems), problems


def test_truncated_shard(copy):
    work, manifest = copy
    entry = manifest["shards"][0]
    path = os.path.join(work, entry["name"])
    raw = open(path, "rb").read()
    open(path, "wb").write(raw[: len(raw) - 1000])
    problems = verify(work).problems
    assert f"{entry['name']}: {len(raw) - 1000} bytes, manifest says {len(raw)}" in problems
    assert any(p.startswith(f"{entry['name']}: unreadable after") for p in problems), problems


def test_wrong_record_count(copy):
    work, manifest = copy
    entry = manifest["shards"][7]
    entry["records"] += 1
    _rewrite_manifest(work, manifest)
    problems = verify(work).problems
    assert (f"{entry['name']}: {entry['records'] - 1} records decoded, manifest says "
            f"{entry['records']}") in problems
    assert any(p.startswith("manifest num_records is 40") for p in problems), problems


def test_nan_record_wrong_fold_and_unlisted_shard(copy):
    """A shard whose framing and checksum are right but whose records are not."""
    import tensorflow as tf

    work, manifest = copy
    entry = manifest["shards"][0]
    path = os.path.join(work, entry["name"])
    records = list(tf.data.TFRecordDataset(path).as_numpy_iterator())
    cadence = np.zeros((6, 273, 256), np.float16)
    cadence[1, 2, 3] = np.inf
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(encode_example("0123456789abcde", cadence, target=0, fold=entry["fold"]))
        writer.write(encode_example("0123456789abcdf", np.zeros_like(cadence), target=0, fold=9))
        for rec in records[2:]:
            writer.write(rec)
    raw = open(path, "rb").read()
    entry.update(bytes=len(raw), crc32c=f"{google_crc32c.value(raw):08x}")
    _rewrite_manifest(work, manifest)
    open(os.path.join(work, "train-f9-00000-of-00001.tfrec"), "wb").write(b"")
    problems = verify(work).problems
    assert any("holds NaN or Inf" in p and "0123456789abcde" in p for p in problems), problems
    assert any("has fold 9, the shard is fold" in p for p in problems), problems
    assert "train-f9-00000-of-00001.tfrec: in the prefix but not in the manifest" in problems
    assert not any("crc32c" in p for p in problems), problems


def test_no_manifest(tmp_path):
    report = verify(str(tmp_path))
    assert not report.ok and "no manifest.json" in report.problems[0]


def test_an_interrupted_conversion_says_rerun(copy, capsys):
    from tfseti.io.shards import PROGRESS_NAME

    work, manifest = copy
    os.rename(os.path.join(work, MANIFEST_NAME), os.path.join(work, PROGRESS_NAME))
    assert verify_main([work]) == 1
    err = capsys.readouterr().err
    assert "conversion interrupted" in err and "rerun the same tfseti convert command" in err


def test_a_manifest_of_no_records_fails(copy, capsys):
    """An empty conversion (every file left out by --skip-bad) used to verify OK."""
    from tfseti.io.shards import summarize

    work, manifest = copy
    for entry in manifest["shards"]:
        os.remove(os.path.join(work, entry["name"]))
    manifest.update(shards=[], **summarize([]))
    _rewrite_manifest(work, manifest)
    report = verify(work)
    assert not report.ok and report.problems == ["the manifest lists 0 records: nothing to read"]
    assert verify_main([work]) == 1
    assert "FAILED" in capsys.readouterr().err


def test_progress_bar_only_on_a_terminal_and_no_progress_turns_it_off(copy, capsys, monkeypatch):
    from tfseti import console

    work, _ = copy
    assert verify_main([work]) == 0
    assert capsys.readouterr().err == ""  # stderr is not a terminal: no bar
    monkeypatch.setattr(console, "interactive", lambda stream=None: True)
    assert verify_main([work, "--no-decode"]) == 0
    assert "20/20" in capsys.readouterr().err  # on a terminal: the bar, on by default
    assert verify_main([work, "--no-decode", "--no-progress"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("args, message", ARGUMENT_ERRORS)
def test_cli_argument_errors_are_one_line(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as caught:
        verify_main([str(tmp_path), *args])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
