"""tfseti.download: real extraction of locally made competition zips, and the no-credentials path.

No network: the archive is built here with ``zipfile`` from a ``write_kaggle_dir`` folder.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest
import requests

from harness import random_cadence, write_kaggle_dir
from tfseti.data.validate import validate
from tfseti.download import (PARTIAL_SUFFIX, DownloadError, UnsafeArchiveError, download,
                             extract_archive, layout_problems)

OLD_IDS = {"train_old": ["0a1b2c3d4e5f", "ab12cd34ef56"], "test_old": ["fedcba987654"]}


def relative_files(root) -> dict[str, bytes]:
    """Every file under ``root`` by '/'-separated relative path, with its bytes."""
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            found[os.path.relpath(path, root).replace(os.sep, "/")] = open(path, "rb").read()
    return found


def zip_folder(source, archive, prefix: str = "", compression=zipfile.ZIP_DEFLATED) -> str:
    with zipfile.ZipFile(archive, "w", compression=compression, compresslevel=1) as zipped:
        for relpath in sorted(relative_files(source)):
            zipped.write(os.path.join(source, *relpath.split("/")), prefix + relpath)
    return str(archive)


@pytest.fixture(scope="module")
def competition(tmp_path_factory):
    """(source folder, zip of it): 4 train, 2 test and an old_leaky_data/ with 2 + 1 cadences."""
    base = tmp_path_factory.mktemp("competition")
    source = base / "source"
    source.mkdir()
    write_kaggle_dir(str(source), n_train=4, n_test=2, seed=7)
    rng = np.random.default_rng(7)
    old = source / "old_leaky_data"
    for split, ids in OLD_IDS.items():
        for cadence_id in ids:
            path = old / split / cadence_id[0] / f"{cadence_id}.npy"
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, random_cadence(rng))
        pd.DataFrame({"id": ids, "target": [1, 0][: len(ids)]}).to_csv(
            old / f"{split.replace('_old', '')}_labels_old.csv", index=False)
    return source, zip_folder(source, base / "seti-breakthrough-listen.zip")


def test_extraction_reproduces_the_kaggle_layout(competition, tmp_path):
    source, archive = competition
    result = extract_archive(archive, str(tmp_path / "out"), workers=2)
    expected = {k: v for k, v in relative_files(source).items() if not k.startswith("old_leaky_data/")}
    assert relative_files(tmp_path / "out") == expected  # byte for byte, old data left out
    assert (result.extracted, result.skipped, result.ignored) == (8, 0, 5)
    assert result.bytes_written == sum(len(data) for data in expected.values())
    assert layout_problems(str(tmp_path / "out")) == []
    assert validate(tmp_path / "out", workers=2).ok


def test_second_run_skips_and_finishes_an_interrupted_one(competition, tmp_path):
    source, archive = competition
    out = tmp_path / "out"
    extract_archive(archive, str(out), workers=2)
    again = extract_archive(archive, str(out), workers=2)
    assert (again.extracted, again.skipped) == (0, 8)

    # An interrupted run leaves a half-written temporary file and never the final name; a
    # user may also have damaged or deleted files since.
    files = sorted(k for k in relative_files(out) if k.endswith(".npy"))
    damaged, deleted = out / files[0], out / files[1]
    with open(damaged, "r+b") as handle:
        handle.truncate(1000)
    os.remove(deleted)
    (out / (files[1] + PARTIAL_SUFFIX)).write_bytes(b"half")
    resumed = extract_archive(archive, str(out), workers=2)
    assert (resumed.extracted, resumed.skipped) == (2, 6)
    assert relative_files(out) == {k: v for k, v in relative_files(source).items()
                                   if not k.startswith("old_leaky_data/")}


def test_parts_and_old_data_choose_what_is_extracted(competition, tmp_path):
    source, archive = competition
    labels_only = tmp_path / "labels"
    extract_archive(archive, str(labels_only), parts=["labels"])
    assert sorted(relative_files(labels_only)) == ["sample_submission.csv", "train_labels.csv"]

    out = tmp_path / "test_and_old"
    extract_archive(archive, str(out), parts=["test", "labels"], old_data=True)
    got = relative_files(out)
    assert not any(k.startswith("train/") for k in got)
    assert {k for k in got if k.startswith("old_leaky_data/")} == {
        k for k in relative_files(source) if k.startswith("old_leaky_data/")}
    assert layout_problems(str(out), parts=["test", "labels"], old_data=True) == []
    assert "train: folder not found" in " ".join(layout_problems(str(out))).replace(os.sep, "/")
    with pytest.raises(ValueError, match=r"unknown part\(s\) \['valid'\]"):
        extract_archive(archive, str(out), parts=["valid"])


def test_archive_with_an_extra_top_folder_is_unwrapped(competition, tmp_path):
    source, _ = competition
    archive = zip_folder(source, tmp_path / "wrapped.zip", prefix="seti-breakthrough-listen/")
    extract_archive(archive, str(tmp_path / "out"), old_data=True)
    assert relative_files(tmp_path / "out") == relative_files(source)


def _symlink_member(zipped: zipfile.ZipFile, name: str) -> None:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    zipped.writestr(info, "/etc")


@pytest.mark.parametrize("name, what", [
    ("../evil.npy", "a path outside the destination"),
    ("train/../../evil.npy", "a path outside the destination"),
    ("/tmp/evil.npy", "a path outside the destination"),
    ("C:/evil.npy", "a path outside the destination"),
    ("train/0/link", "a symbolic link"),
])
def test_unsafe_members_are_refused_before_anything_is_written(tmp_path, name, what):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("train_labels.csv", "id,target\n")
        if what == "a symbolic link":
            _symlink_member(zipped, name)
        else:
            zipped.writestr(zipfile.ZipInfo(name), b"payload")
    out = tmp_path / "deep" / "out"
    with pytest.raises(UnsafeArchiveError) as caught:
        extract_archive(str(archive), str(out))
    assert f"member {name!r} is {what}; refusing to extract anything" in str(caught.value)
    assert not (tmp_path / "deep").exists() and not (tmp_path / "evil.npy").exists()


def test_symlink_already_in_the_destination_is_not_followed(competition, tmp_path):
    _, archive = competition
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    os.symlink(elsewhere, out / "train")
    with pytest.raises(UnsafeArchiveError, match="resolves outside"):
        extract_archive(archive, str(out))
    assert list(elsewhere.iterdir()) == []


def test_unreadable_and_corrupt_archives_say_so(competition, tmp_path):
    source, _ = competition
    not_zip = tmp_path / "not.zip"
    not_zip.write_bytes(b"<html>Please log in</html>")
    with pytest.raises(DownloadError, match="not a readable zip archive"):
        extract_archive(str(not_zip), str(tmp_path / "a"))

    stored = zip_folder(source, tmp_path / "stored.zip", compression=zipfile.ZIP_STORED)
    with zipfile.ZipFile(stored) as zipped:
        info = next(i for i in zipped.infolist() if i.filename.startswith("train/"))
        data_start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    with open(stored, "r+b") as handle:  # flip payload bytes: the CRC check must catch it
        handle.seek(data_start + 5000)
        handle.write(b"\x00\x01" * 8)
    with pytest.raises(DownloadError, match="corrupt archive .*Bad CRC-32"):
        extract_archive(stored, str(tmp_path / "b"), workers=1)


def test_not_enough_disk_space_is_refused_before_writing(competition, tmp_path, monkeypatch):
    import tfseti.download as module

    source, archive = competition
    needed = sum(len(data) for relpath, data in relative_files(source).items()
                 if not relpath.startswith("old_leaky_data/"))
    real_usage = shutil.disk_usage
    monkeypatch.setattr(module.shutil, "disk_usage",
                        lambda path: real_usage(path)._replace(free=1_000_000))
    with pytest.raises(DownloadError, match=f"extracting needs {needed / 1e6:.1f} MB but only "
                                            r"1\.0 MB are free"):
        extract_archive(archive, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_incomplete_archive_fails_the_layout_check(competition, tmp_path):
    source, _ = competition
    partial_source = tmp_path / "partial"
    shutil.copytree(source, partial_source)
    victim = next(p for p in (partial_source / "test").rglob("*.npy"))
    victim.unlink()
    archive = zip_folder(partial_source, tmp_path / "partial.zip")
    with pytest.raises(DownloadError) as caught:
        download(str(tmp_path / "out"), from_zip=archive, progress=False, log=lambda _: None)
    message = str(caught.value)
    assert "does not look like the Kaggle layout" in message
    assert f"{tmp_path / 'out' / 'test'}: 1 .npy files, expected 2" in message


class LocalArchiveApi:
    """Stands in for ``KaggleApi`` (the network) only: it 'downloads' a local zip."""

    def __init__(self, archive: str, status: int | None = None):
        self.archive, self.status, self.calls = archive, status, []

    def competition_download_files(self, competition, path=None, force=False, quiet=True):
        self.calls.append((competition, path))
        if self.status is not None:
            response = requests.Response()
            response.status_code = self.status
            raise requests.HTTPError(f"{self.status} Client Error", response=response)
        shutil.copy(self.archive, os.path.join(path, f"{competition}.zip"))


def test_download_extracts_checks_and_deletes_the_archive(competition, tmp_path):
    _, archive = competition
    out = str(tmp_path / "out")
    api = LocalArchiveApi(archive)
    messages = []
    result = download(out, api=api, delete_zip=True, old_data=True, progress=False,
                      log=messages.append)
    assert api.calls == [("seti-breakthrough-listen", out)]
    assert result.extracted == 13 and layout_problems(out, old_data=True) == []
    assert not os.path.exists(os.path.join(out, "seti-breakthrough-listen.zip"))
    assert "python -m tfseti.data.validate" in messages[-1]
    # Complete already: no second download (and no credentials needed).
    assert download(out, api=api, old_data=True, progress=False, log=messages.append) is None
    assert len(api.calls) == 1 and "nothing to do" in messages[-1]


@pytest.mark.parametrize("status, expected", [
    (403, "accept the competition rules at https://www.kaggle.com/competitions/seti-breakthrough-listen/rules"),
    (401, "Kaggle rejected the credentials (401)"),
])
def test_download_http_errors_say_what_to_do(competition, tmp_path, status, expected):
    with pytest.raises(DownloadError) as caught:
        download(str(tmp_path / "out"), api=LocalArchiveApi(competition[1], status),
                 progress=False, log=lambda _: None)
    assert expected in str(caught.value)


def test_cli_extracts_a_local_zip(competition, tmp_path):
    source, archive = competition
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "tfseti.download", "--out", str(out),
                          "--from-zip", archive, "--old-data", "--no-progress"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "extracted 13 files" in run.stdout
    assert relative_files(out) == relative_files(source)
    report = validate(out, workers=2)
    assert report.ok and [s.split for s in report.splits] == ["train", "test", "train_old", "test_old"]


def test_no_credentials_gives_one_message_on_how_to_provide_them(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_")}
    config_dir = tmp_path / "kaggle-config"
    config_dir.mkdir()
    env.update(HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "xdg"),
               KAGGLE_CONFIG_DIR=str(config_dir),
               # Any attempt to reach the network fails at once instead of hanging.
               HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "tfseti.download", "--out", str(out)],
                         capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert run.returncode == 1
    assert run.stdout == ""  # the kaggle package's own help is not printed as well
    assert run.stderr.count("error:") == 1 and run.stderr.startswith("error: No Kaggle credentials")
    for needed in ("KAGGLE_API_TOKEN", "~/.kaggle/access_token", str(config_dir / "kaggle.json"),
                   "KAGGLE_USERNAME", "KAGGLE_KEY", "kaggle auth login",
                   "https://www.kaggle.com/competitions/seti-breakthrough-listen/rules"):
        assert needed in run.stderr, needed
    assert not out.exists()


def test_cli_refuses_fewer_than_one_worker(tmp_path, capsys):
    from tfseti.download import main

    with pytest.raises(SystemExit) as caught:
        main(["--out", str(tmp_path / "out"), "--from-zip", "x.zip", "--workers", "0"])
    assert caught.value.code == 2
    assert "argument --workers: expected an integer >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
