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


# -- GCS emulator (shared by every area that touches gs://) ------------------------------------
# gcsfs reads GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT once, when it is first imported: with it on, every
# bucket access against an emulator waits 60 s for a gRPC probe. Nothing above imports gcsfs.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")


class GcsEmulator:
    """A running ``gcp-storage-emulator`` (in memory, loopback) with one bucket.

    ``url(*parts)`` gives ``gs://<bucket>/...``; ``env`` holds the variables a subprocess needs
    to reach the emulator through gcsfs; ``fs()`` is a gcsfs filesystem on it.
    """

    def __init__(self, host: str, bucket: str):
        self.host = host
        self.bucket = bucket
        self.env = {
            "STORAGE_EMULATOR_HOST": host,
            "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
            "FSSPEC_GS_TOKEN": "anon",  # fsspec config: no credential lookup against the emulator
        }

    def url(self, *parts: str) -> str:
        return "/".join([f"gs://{self.bucket}", *parts])

    def unique_url(self, name: str) -> str:
        import uuid

        return self.url(f"{name}-{uuid.uuid4().hex[:8]}")

    def fs(self):
        from tfseti.io.fs import url_to_fs

        return url_to_fs(self.url())[0]


@pytest.fixture(scope="session")
def gcs_emulator():
    """Start ``gcp-storage-emulator`` on a free loopback port for the session (per xdist worker).

    Sets ``STORAGE_EMULATOR_HOST`` (and anonymous gcsfs credentials) in this process, so every
    ``gs://`` path goes to the emulator; restores the environment afterwards.
    """
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    import fsspec.config
    import portpicker

    exe = Path(sys.executable).with_name("gcp-storage-emulator")
    port = portpicker.pick_unused_port()
    host = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([str(exe), "start", "--host", "127.0.0.1", "--port", str(port),
                             "--in-memory", "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"gcp-storage-emulator exited with {proc.returncode} on port {port}")
        try:
            with urllib.request.urlopen(f"{host}/storage/v1/b", timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"gcp-storage-emulator not ready on {host} after 60 s") from None
            time.sleep(0.1)

    emulator = GcsEmulator(host, "tfseti-test")
    saved_env = {k: os.environ.get(k) for k in emulator.env}
    os.environ.update(emulator.env)
    saved_conf = fsspec.config.conf.get("gs")
    fsspec.config.conf["gs"] = {**(saved_conf or {}), "token": "anon"}
    try:
        emulator.fs().mkdir(emulator.bucket)
        yield emulator
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if saved_conf is None:
            fsspec.config.conf.pop("gs", None)
        else:
            fsspec.config.conf["gs"] = saved_conf
