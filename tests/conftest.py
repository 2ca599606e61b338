"""Shared test fixtures: tiny Kaggle-layout folders and quiet TensorFlow."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd
import pytest

from tfseti.io.kaggle import CADENCE_SHAPE, cadence_relpath


def random_cadence(rng: np.random.Generator, shape=CADENCE_SHAPE) -> np.ndarray:
    """A panel-normalised noise cadence with the competition's dtype and shape."""
    return rng.standard_normal(shape, dtype=np.float32).astype(np.float16)


def random_id(rng: np.random.Generator) -> str:
    return "".join(rng.choice(list("0123456789abcdef"), size=15))


def write_kaggle_dir(root, n_train: int = 8, n_test: int = 4, seed: int = 0,
                     positive_rate: float = 0.25) -> dict:
    """Write a tiny Kaggle-layout folder of noise cadences; returns ``{"train": df, "test": df}``.

    Fast plain-numpy data for tests of I/O stages; physics lives in ``tfseti.synth``.
    """
    rng = np.random.default_rng(seed)
    frames = {}
    for split, n, csv in (("train", n_train, "train_labels.csv"), ("test", n_test, "sample_submission.csv")):
        ids = sorted({random_id(rng) for _ in range(n)})
        while len(ids) < n:
            ids = sorted(set(ids) | {random_id(rng)})
        if split == "train":
            n_pos = max(1, int(round(positive_rate * n))) if n else 0
            targets = np.array([1] * n_pos + [0] * (n - n_pos))
            rng.shuffle(targets)
        else:
            targets = np.full(n, 0.5)
        for cid in ids:
            path = os.path.join(root, *cadence_relpath(split, cid).split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            np.save(path, random_cadence(rng))
        frame = pd.DataFrame({"id": ids, "target": targets})
        frame.to_csv(os.path.join(root, csv), index=False)
        frames[split] = frame
    return frames


@pytest.fixture
def kaggle_dir(tmp_path):
    """A Kaggle-layout folder with 8 train (2 positive) and 4 test noise cadences."""
    root = tmp_path / "kaggle"
    root.mkdir()
    frames = write_kaggle_dir(str(root))
    return root, frames
