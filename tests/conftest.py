"""Shared test fixtures: tiny Kaggle-layout folders, the GCS emulator, quiet TensorFlow.

Plain helpers (``write_kaggle_dir``, ``random_cadence``, ``GcsEmulator``) are in ``harness.py``.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

from harness import GcsEmulator, write_kaggle_dir


def pytest_collection_modifyitems(config, items):
    # The modules holding a test marked heavy run first: with pytest-xdist's loadscope scheduling
    # in collection order (`make test`: --dist loadscope --no-loadscope-reorder) each worker takes
    # a heavy module and the short ones fill in while the long ones run, instead of one worker
    # finishing a three-minute test alone at the end. A stable sort by module: each module stays
    # whole and in order, so its module fixtures are set up once.
    heavy = {item.path for item in items if item.get_closest_marker("heavy")}
    items.sort(key=lambda item: item.path not in heavy)


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


@pytest.fixture(scope="session")
def gcs_emulator():
    """Start ``gcp-storage-emulator`` on a free loopback port for the session (per xdist worker).

    Sets ``STORAGE_EMULATOR_HOST`` (and anonymous gcsfs credentials) in this process, so every
    ``gs://`` path goes to the emulator; restores the environment afterwards.
    """
    import fsspec.config

    from tfseti.io.gcs_emulator import start_emulator

    server = start_emulator(bucket="tfseti-test")  # in memory
    emulator = GcsEmulator(server.host, server.bucket)
    saved_env = {k: os.environ.get(k) for k in emulator.env}
    os.environ.update(emulator.env)
    saved_conf = fsspec.config.conf.get("gs")
    fsspec.config.conf["gs"] = {**(saved_conf or {}), "token": "anon"}
    try:
        yield emulator
    finally:
        server.stop()
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if saved_conf is None:
            fsspec.config.conf.pop("gs", None)
        else:
            fsspec.config.conf["gs"] = saved_conf
