"""The one ``.npy`` cadence writer: complete files only, local or through fsspec."""

import os

import numpy as np
import pytest

from harness import random_cadence
from tfseti.io.kaggle import load_cadence, save_cadence


@pytest.mark.parametrize("root", ["local", "memory://tfseti-save"])
def test_round_trip_through_the_reader(tmp_path, root):
    base = str(tmp_path) if root == "local" else root
    path = f"{base}/train/a/abc.npy"
    cadence = random_cadence(np.random.default_rng(0))
    save_cadence(path, cadence)
    np.testing.assert_array_equal(load_cadence(path).view(np.uint16), cadence.view(np.uint16))


def test_a_write_stopped_before_publishing_leaves_no_npy(tmp_path, monkeypatch):
    target = tmp_path / "a.npy"

    def killed(src, dst):
        raise KeyboardInterrupt   # the process dies after writing the temporary, before the rename

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        save_cadence(str(target), np.zeros(3, np.float16))
    assert not target.exists()
    assert not list(tmp_path.glob("*.npy"))
