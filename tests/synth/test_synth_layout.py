"""tfseti.synth writes exactly the Kaggle layout, reproducibly, with the requested class balance."""

from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd
import pytest

from tfseti.io.kaggle import CADENCE_SHAPE, KaggleDataset, cadence_relpath
from tfseti.synth import CadenceSpec, generate_dataset, make_cadence
from tfseti.io.kaggle import save_cadence
from tfseti.synth.writer import TRUTH_COLUMNS

ID_RE = re.compile(r"^[0-9a-f]{15}$")


def _all_files(root) -> dict[str, bytes]:
    found = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, root)] = handle.read()
    return found


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "kaggle"
    summary = generate_dataset(out, n_train=16, n_test=8, positive_rate=0.25, seed=1, workers=1, progress=False)
    return out, summary


def test_layout_csvs_and_ids_match_kaggle(dataset):
    out, summary = dataset
    assert sorted(os.listdir(out)) == ["sample_submission.csv", "test", "train", "train_labels.csv", "truth.csv"]
    with open(out / "train_labels.csv") as handle:
        assert handle.readline().strip() == "id,target"
    with open(out / "sample_submission.csv") as handle:
        assert handle.readline().strip() == "id,target"
    labels = pd.read_csv(out / "train_labels.csv", dtype={"id": str})
    submission = pd.read_csv(out / "sample_submission.csv", dtype={"id": str})
    assert len(labels) == 16 and len(submission) == 8
    ids = list(labels.id) + list(submission.id)
    assert all(ID_RE.match(cid) for cid in ids), ids
    assert len(set(ids)) == len(ids)
    assert list(labels.id) == sorted(labels.id) and list(submission.id) == sorted(submission.id)
    assert set(labels.target) <= {0, 1} and labels.target.dtype.kind == "i"
    assert (submission.target == 0.5).all()
    # Positive rate respected exactly in both splits (the test split's labels are in truth.csv).
    truth = pd.read_csv(out / "truth.csv", dtype={"id": str})
    assert labels.target.sum() == 4 == summary.n_positive_train
    assert truth[truth.split == "test"].target.sum() == 2 == summary.n_positive_test


def test_every_file_is_a_kaggle_cadence(dataset):
    out, _ = dataset
    expected = set()
    for split in ("train", "test"):
        reader = KaggleDataset(str(out), split)
        ids = reader.ids()
        assert sorted(reader.list_files()) == sorted(ids)
        for cid in ids:
            expected.add(cadence_relpath(split, cid))
            cadence = reader.load(cid)  # checks dtype, shape and finiteness
            assert cadence.dtype == np.float16 and cadence.shape == CADENCE_SHAPE
            panels = cadence.astype(np.float32).reshape(6, -1)
            np.testing.assert_allclose(panels.mean(axis=1), 0.0, atol=0.01)
            np.testing.assert_allclose(panels.std(axis=1), 1.0, atol=0.01)
    npy = {path.replace(os.sep, "/") for path in _all_files(out) if path.endswith(".npy")}
    assert npy == expected  # nothing else, and no temporary files left behind
    assert not [path for path in _all_files(out) if path.endswith(".tmp")]


def test_truth_describes_and_rebuilds_every_cadence(dataset):
    out, _ = dataset
    truth = pd.read_csv(out / "truth.csv", dtype={"id": str}, keep_default_na=False)
    assert list(truth.columns) == TRUTH_COLUMNS
    labels = pd.read_csv(out / "train_labels.csv", dtype={"id": str})
    merged = labels.merge(truth[truth.split == "train"], on="id", suffixes=("", "_truth"))
    assert len(merged) == 16 and (merged.target == merged.target_truth).all()
    positives = truth[truth.target == 1]
    assert set(positives.family) <= {"linear", "squared", "sine", "pulsed", "broad"}
    assert (truth[truth.target == 0].family == "").all()
    # The spec column is the whole recipe: it rebuilds the very bytes that were written.
    for row in truth.itertuples():
        spec = CadenceSpec.from_json(row.spec)
        assert spec.target == row.target
        written = np.load(out / cadence_relpath(row.split, row.id), allow_pickle=False)
        assert np.array_equal(make_cadence(spec).view(np.uint16), written.view(np.uint16))


def test_same_seed_same_bytes_with_one_or_two_workers(tmp_path):
    kwargs = dict(n_train=10, n_test=4, positive_rate=0.5, progress=False)
    generate_dataset(tmp_path / "w1", seed=7, workers=1, **kwargs)
    generate_dataset(tmp_path / "w2", seed=7, workers=2, **kwargs)
    generate_dataset(tmp_path / "other", seed=8, workers=2, **kwargs)
    one, two, other = (_all_files(tmp_path / name) for name in ("w1", "w2", "other"))
    assert len([p for p in one if p.endswith(".npy")]) == 14
    assert one == two
    assert set(one).isdisjoint({p for p in other if p.endswith(".npy")})  # different ids
    first = lambda files: next(v for k, v in sorted(files.items()) if k.endswith(".npy"))  # noqa: E731
    assert first(one) != first(other)


def test_refuses_to_mix_with_an_existing_dataset(tmp_path):
    generate_dataset(tmp_path, n_train=2, n_test=1, seed=0, progress=False)
    with pytest.raises(FileExistsError, match="overwrite"):
        generate_dataset(tmp_path, n_train=3, n_test=0, seed=1, progress=False)
    generate_dataset(tmp_path, n_train=3, n_test=0, seed=1, progress=False, overwrite=True)
    assert len(KaggleDataset(str(tmp_path), "train").list_files()) == 3
    assert KaggleDataset(str(tmp_path), "test").list_files() == {}


def test_interrupted_write_leaves_no_npy(tmp_path, monkeypatch):
    target = tmp_path / "a.npy"

    def broken_save(handle, array, allow_pickle):
        handle.write(b"\x93NUMPY partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        save_cadence(str(target), np.zeros(3, np.float16))
    assert not target.exists()
    assert not list(tmp_path.glob("*.npy"))


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_train=-1), "n_train"),
    (dict(n_test=2.5), "n_test"),
    (dict(positive_rate=1.5), "positive_rate"),
    (dict(snr=(5,)), "snr"),
    (dict(snr=(20, 10)), "snr"),
    (dict(families=("linear", "zigzag")), "zigzag"),
    (dict(workers=0), "workers"),
    (dict(seed=-1), "seed"),
    (dict(missing_prob=-0.1), "missing_prob"),
])
def test_api_rejects_bad_arguments(tmp_path, kwargs, message):
    args = dict(n_train=2, n_test=1, progress=False) | kwargs
    with pytest.raises(ValueError, match=message):
        generate_dataset(tmp_path, **args)
    assert not list(tmp_path.rglob("*.npy"))
