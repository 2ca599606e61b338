"""tfseti.io.kaggle: the one reader of the Kaggle layout, on local folders and through fsspec."""

from __future__ import annotations

import io
import os

import fsspec
import numpy as np
import pytest

from harness import random_cadence
from tfseti.io.kaggle import (CADENCE_SHAPE, ID_PATTERN, CadenceError, KaggleDataset,
                              cadence_problems, cadence_relpath, decode_npy, load_cadence)


def npy_bytes(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


@pytest.fixture
def memory_copy(kaggle_dir, tmp_path):
    """The ``kaggle_dir`` folder copied into fsspec's in-memory filesystem, as a URL."""
    root, frames = kaggle_dir
    memory = fsspec.filesystem("memory")
    base = f"/reader-{tmp_path.name}"
    memory.put(str(root), base, recursive=True)
    yield f"memory://{base}", frames
    memory.rm(base, recursive=True)


def test_relpath_and_id_pattern():
    assert cadence_relpath("test", "a1b2c3d4e5f6a7b") == "test/a/a1b2c3d4e5f6a7b.npy"
    assert ID_PATTERN.match("0123456789abcde") and ID_PATTERN.match("0123456789ab")
    for bad in ("0123456789ABCDE", "0123456789abcd", "0123456789abcdef", "g123456789abcde", ""):
        assert not ID_PATTERN.match(bad), bad


def test_ids_labels_and_files_of_each_split(kaggle_dir):
    root, frames = kaggle_dir
    train, test = KaggleDataset(root, "train"), KaggleDataset(str(root) + "/", "test")
    assert train.ids() == list(frames["train"].id)  # csv order
    labels = train.read_labels()
    assert list(labels.columns) == ["id", "target"] and labels.target.tolist() == frames["train"].target.tolist()
    assert train.labeled and not test.labeled
    assert test.labels_file == os.path.join(str(root), "sample_submission.csv")
    files = test.list_files()
    assert sorted(files) == sorted(frames["test"].id)
    assert all(path.endswith(cadence_relpath("test", i)) for i, path in files.items())
    assert train.walk_files() == sorted(cadence_relpath("train", i)[len("train/"):] for i in frames["train"].id)
    assert train.split_exists() and train.labels_exist()


def test_load_returns_the_saved_cadence(kaggle_dir):
    root, frames = kaggle_dir
    dataset = KaggleDataset(root, "train")
    cadence_id = frames["train"].id[0]
    expected = np.load(dataset.path(cadence_id))
    loaded = dataset.load(cadence_id)
    assert loaded.dtype == np.float16 and loaded.shape == CADENCE_SHAPE
    np.testing.assert_array_equal(loaded, expected)
    np.testing.assert_array_equal(load_cadence(dataset.path(cadence_id)), expected)


def test_unknown_split_is_refused(kaggle_dir):
    with pytest.raises(ValueError, match="split 'valid' is not one of"):
        KaggleDataset(kaggle_dir[0], "valid")


def test_missing_and_malformed_label_files_name_the_csv(kaggle_dir):
    root, _ = kaggle_dir
    os.remove(root / "train_labels.csv")
    with pytest.raises(FileNotFoundError, match=r"train_labels\.csv: label file not found"):
        KaggleDataset(root, "train").read_labels()
    (root / "sample_submission.csv").write_text("id,score\nabc,1\n")
    with pytest.raises(ValueError, match=r"sample_submission\.csv: missing column\(s\) \['target'\]"):
        KaggleDataset(root, "test").ids()
    for text in ("id,target\nabc,1\ndef,1,2\n", "id,target\nabc,1,2\n"):  # too many fields
        (root / "sample_submission.csv").write_text(text)
        with pytest.raises(ValueError) as caught:
            KaggleDataset(root, "test").read_labels()
        message = str(caught.value)
        assert message.startswith(f"{root / 'sample_submission.csv'}: cannot parse csv (")
        assert "\n" not in message


def test_empty_label_file_says_what_was_expected(kaggle_dir):
    root, _ = kaggle_dir
    for text in ("", "\n"):
        (root / "train_labels.csv").write_text(text)
        with pytest.raises(ValueError) as caught:
            KaggleDataset(root, "train").read_labels()
        assert str(caught.value) == (f"{root / 'train_labels.csv'}: the file is empty, expected a "
                                     f"header line 'id,target' and one row per cadence")


def test_plain_shows_numpy_scalars_as_python_values():
    from tfseti.io.kaggle import plain

    assert [repr(plain(v)) for v in (np.int64(2), np.float64(0.5), "x", 3)] == ["2", "0.5", "'x'", "3"]


def test_missing_cadence_names_the_path(kaggle_dir):
    root, _ = kaggle_dir
    dataset = KaggleDataset(root, "train")
    with pytest.raises(CadenceError) as caught:
        dataset.load("0000000000000ff")
    assert caught.value.path == dataset.path("0000000000000ff")
    assert str(caught.value) == f"{dataset.path('0000000000000ff')}: file not found"


def test_bad_cadence_raises_only_when_checked(kaggle_dir):
    root, frames = kaggle_dir
    dataset = KaggleDataset(root, "test")
    cadence_id = frames["test"].id[0]
    np.save(dataset.path(cadence_id), np.zeros((6, 273, 128), np.float32))
    with pytest.raises(CadenceError, match="dtype is float32, expected float16; shape is "
                                           r"\(6, 273, 128\), expected \(6, 273, 256\)"):
        dataset.load(cadence_id)
    assert dataset.load(cadence_id, check=False).shape == (6, 273, 128)


def test_cadence_problems_lists_each_defect():
    good = random_cadence(np.random.default_rng(0))
    assert cadence_problems(good) == []
    bad = good.copy()
    bad[1, 2, 3], bad[2, 0, 0] = np.nan, -np.inf
    assert cadence_problems(bad) == ["holds 1 NaN and 1 Inf values, expected only finite values"]
    assert cadence_problems(np.zeros((3, 273, 256), np.float16), (3, 273, 256)) == []
    assert cadence_problems(np.array(["a"])) == ["dtype is <U1, expected float16",
                                                 "shape is (1,), expected (6, 273, 256)",
                                                 "is not numeric"]


@pytest.mark.parametrize("data, message", [
    (b"", "file is empty, expected a .npy file holding float16 (6, 273, 256)"),
    (b"PK\x03\x04 a zip, not an npy", "not a .npy file"),
    (b"\x93NUMPY\x01\x00\x40\x00{'descr'", "corrupt .npy header"),
    (npy_bytes(np.zeros(CADENCE_SHAPE, np.float16))[:-10],
     "truncated .npy file: 838646 of the 838656 data bytes its header (float16 (6, 273, 256))"),
    (npy_bytes(np.array([{"a": 1}], dtype=object), allow_pickle=True),
     "holds a pickled object array (dtype object; refused, never unpickled)"),
], ids=["empty", "not-npy", "bad-header", "truncated", "pickle"])
def test_decode_npy_says_what_is_wrong(data, message):
    with pytest.raises(CadenceError) as caught:
        decode_npy(data, "somewhere/x.npy")
    assert caught.value.path == "somewhere/x.npy"
    assert message in caught.value.problem


def test_decode_npy_reads_npy_format_v2():
    array = np.arange(12, dtype=np.float16).reshape(3, 4)
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, version=(2, 0))
    np.testing.assert_array_equal(decode_npy(buffer.getvalue(), "v2.npy"), array)


def test_reader_through_a_non_local_fsspec_filesystem(memory_copy):
    url, frames = memory_copy
    train = KaggleDataset(url, "train")
    assert train.ids() == list(frames["train"].id)
    assert sorted(train.list_files()) == sorted(frames["train"].id)
    cadence_id = frames["train"].id[3]
    assert train.path(cadence_id) == f"{url}/{cadence_relpath('train', cadence_id)}"
    assert train.load(cadence_id).shape == CADENCE_SHAPE
    assert load_cadence(train.path(cadence_id)).dtype == np.float16
    with pytest.raises(CadenceError) as caught:
        train.load("abcabcabcabcabc")
    assert caught.value.path == f"{url}/train/a/abcabcabcabcabc.npy"  # the URL, not the inner path

    fsspec.filesystem("memory").pipe(f"{url[len('memory://'):]}/train/x/bad.npy", b"junk")
    assert "x/bad.npy" in train.walk_files()
    with pytest.raises(CadenceError, match=f"^{url}/train/x/bad.npy: not a .npy file"):
        train.load_relpath("x/bad.npy")
    assert not KaggleDataset(url + "-missing", "test").split_exists()
