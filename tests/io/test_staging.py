"""Local copies of remote folders: staged outputs mirrored to the bucket, and shards/models that
TensorFlow cannot read where they are (its GCS client ignores the emulator)."""

from __future__ import annotations

import os

import pytest

from tfseti.io import staging
from tfseti.io.staging import StagedFolder, tensorflow_reads_natively, tf_readable


def _write(path, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)


def _remote(fs, url: str) -> dict[str, bytes]:
    root = url[len("gs://"):]
    return {os.path.relpath(p, root): fs.cat_file(p) for p in fs.find(root)}


def test_tensorflow_reads_gs_natively_only_without_an_emulator(monkeypatch):
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    assert tensorflow_reads_natively("/data/shards")
    assert tensorflow_reads_natively("gs://bucket/shards")
    assert not tensorflow_reads_natively("memory://bucket/shards")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
    assert not tensorflow_reads_natively("gs://bucket/shards")
    assert tensorflow_reads_natively("/data/shards")


def test_local_folder_is_used_in_place(tmp_path):
    folder = StagedFolder(str(tmp_path / "run"))
    assert not folder.remote and folder.local == str(tmp_path / "run")
    assert folder.pull() == 0 and folder.push() == 0
    assert tf_readable(str(tmp_path)) == str(tmp_path)


def test_push_uploads_changes_index_last_and_removes_stale_files(gcs_emulator, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setenv(staging.STAGING_ENV, str(tmp_path / "staging"))
    url = gcs_emulator.unique_url("run")
    folder = StagedFolder(url)
    assert folder.remote and folder.local.startswith(str(tmp_path / "staging"))
    _write(os.path.join(folder.local, "fold0", "backup", "checkpoint"), "index v1")
    _write(os.path.join(folder.local, "fold0", "backup", "ckpt-2.index"), "data 2")
    _write(os.path.join(folder.local, "fold0", "log.csv"), "epoch,loss\n")

    fs = gcs_emulator.fs()
    uploaded = []
    real_put = type(fs).put_file
    monkeypatch.setattr(fs, "put_file", lambda lpath, rpath, *a, **k: (
        uploaded.append(os.path.basename(rpath)), real_put(fs, lpath, rpath, *a, **k))[1])
    assert folder.push(last=("checkpoint",)) == 3
    assert uploaded[-1] == "checkpoint"  # the index never lists a file not yet uploaded
    assert _remote(fs, url) == {"fold0/backup/checkpoint": b"index v1",
                                "fold0/backup/ckpt-2.index": b"data 2",
                                "fold0/log.csv": b"epoch,loss\n"}

    # Nothing changed: nothing sent. Then a new backup replaces the old one.
    uploaded.clear()
    assert folder.push(last=("checkpoint",)) == 0 and uploaded == []
    os.remove(os.path.join(folder.local, "fold0", "backup", "ckpt-2.index"))
    _write(os.path.join(folder.local, "fold0", "backup", "ckpt-4.index"), "data 4")
    _write(os.path.join(folder.local, "fold0", "backup", "checkpoint"), "index v2")
    assert folder.push(last=("checkpoint",)) == 2
    assert uploaded == ["ckpt-4.index", "checkpoint"]
    assert _remote(fs, url) == {"fold0/backup/checkpoint": b"index v2",
                                "fold0/backup/ckpt-4.index": b"data 4",
                                "fold0/log.csv": b"epoch,loss\n"}

    # Another machine (another staging root) pulls what the bucket holds.
    monkeypatch.setenv(staging.STAGING_ENV, str(tmp_path / "elsewhere"))
    again = StagedFolder(url)
    assert again.local != folder.local and again.exists()
    assert again.pull() == 3
    with open(os.path.join(again.local, "fold0", "backup", "checkpoint")) as handle:
        assert handle.read() == "index v2"
    assert again.push() == 0  # pulled files count as in sync


def test_tf_readable_copies_what_tensorflow_cannot_reach(gcs_emulator, tmp_path, monkeypatch):
    import tensorflow as tf

    monkeypatch.setenv(staging.STAGING_ENV, str(tmp_path / "staging"))
    url = gcs_emulator.unique_url("shards")
    fs = gcs_emulator.fs()
    root = url[len("gs://"):]
    fs.pipe_file(f"{root}/test-00000-of-00002.tfrec", b"a" * 10)
    fs.pipe_file(f"{root}/test-00001-of-00002.tfrec", b"b" * 20)
    fs.pipe_file(f"{root}/manifest.json", b"{}")

    local = tf_readable(url)
    assert sorted(tf.io.gfile.listdir(local)) == ["manifest.json", "test-00000-of-00002.tfrec",
                                                  "test-00001-of-00002.tfrec"]
    with tf.io.gfile.GFile(os.path.join(local, "test-00001-of-00002.tfrec"), "rb") as handle:
        assert handle.read() == b"b" * 20
    pattern = tf_readable(f"{url}/test-*.tfrec")
    assert len(tf.io.gfile.glob(pattern)) == 2 and os.path.dirname(pattern) == local
    single = tf_readable(f"{url}/manifest.json")
    assert open(single, "rb").read() == b"{}"
    with pytest.raises(FileNotFoundError, match="no such folder"):
        tf_readable(gcs_emulator.unique_url("missing"))
