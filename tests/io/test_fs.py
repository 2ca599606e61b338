"""Local paths and fsspec URLs go through one interface."""

import os

from tfseti.io import fs as fsutil


def test_join_uses_slashes_for_urls_and_os_separator_locally(tmp_path):
    assert fsutil.join("gs://bucket/prefix", "train", "a.npy") == "gs://bucket/prefix/train/a.npy"
    assert fsutil.join(str(tmp_path), "train") == os.path.join(str(tmp_path), "train")


def test_is_url():
    assert fsutil.is_url("gs://b/k") and fsutil.is_url("memory://x")
    assert not fsutil.is_url("/tmp/x") and not fsutil.is_url("file:///tmp/x")


def test_url_to_fs_and_unstrip_round_trip(tmp_path):
    fs, inner = fsutil.url_to_fs("memory://tfseti-test/a/b.txt")
    fs.pipe(inner, b"x")
    url = fsutil.unstrip(fs, inner)
    assert url.startswith("memory://")
    again_fs, again_inner = fsutil.url_to_fs(url)
    assert again_inner == inner and again_fs.cat(again_inner) == b"x"
    local_fs, local_inner = fsutil.url_to_fs(str(tmp_path / "c.txt"))
    assert fsutil.unstrip(local_fs, local_inner) == local_inner


def test_emulator_host_turns_off_the_hns_probe(monkeypatch):
    monkeypatch.delenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", raising=False)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:1")
    fsutil.configure_gcs_emulator()
    assert os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] == "false"
    # A user's explicit choice is kept.
    monkeypatch.setenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "true")
    fsutil.configure_gcs_emulator()
    assert os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] == "true"
