"""Conversion and verification against a real GCS API (gcp-storage-emulator), and a SIGKILL."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import google_crc32c
import pytest

from harness import write_kaggle_dir
from tfrecords_tools.convert import convert
from tfrecords_tools.verify import main as verify_main
from tfrecords_tools.verify import verify
from tfr_helpers import assert_bit_exact, read_shards, shard_files
from tfseti.io.shard_writer import PUBLISH_DELAY_ENV
from tfseti.io.shards import MANIFEST_NAME, PROGRESS_NAME, parse_shard_name

QUIET = {"progress": False, "log": lambda _: None}
PARAMS = {"split": "train", "folds": 4, "seed": 5, "shard_mb": 2.0}
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def kaggle16(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("kaggle16"))
    frames = write_kaggle_dir(root, n_train=16, n_test=0, seed=3)
    return root, frames


def _objects(fs, url) -> dict:
    """name relative to ``url`` -> size, of every object under it (fresh listing)."""
    fs.invalidate_cache()
    prefix = url.split("://", 1)[1].rstrip("/") + "/"
    return {path[len(prefix):]: int(info["size"])
            for path, info in fs.find(prefix, detail=True).items()}


def _download(fs, url, names, local_dir) -> list[str]:
    paths = []
    for name in names:
        paths.append(os.path.join(local_dir, name))
        fs.get_file(f"{url.split('://', 1)[1]}/{name}", paths[-1])
    return paths


def test_convert_verify_and_read_back_on_gcs(gcs_emulator, kaggle16, tmp_path, capsys):
    data, frames = kaggle16
    out = gcs_emulator.unique_url("train")
    manifest = convert(data, out, workers=2, **PARAMS, **QUIET)
    fs = gcs_emulator.fs()
    names = [s["name"] for s in manifest["shards"]]
    assert sorted(_objects(fs, out)) == sorted([MANIFEST_NAME, *names])  # no _tmp/, no progress
    assert json.loads(fs.cat_file(f"{out[5:]}/{MANIFEST_NAME}")) == manifest
    assert verify(out).ok
    assert verify_main([out]) == 0
    assert "OK, 16 records" in capsys.readouterr().out

    records = read_shards(_download(fs, out, names, str(tmp_path)))
    assert set(records) == set(frames["train"]["id"])
    assert_bit_exact(records, data, "train")
    for entry in manifest["shards"]:
        local = os.path.join(str(tmp_path), entry["name"])
        assert f"{google_crc32c.value(open(local, 'rb').read()):08x}" == entry["crc32c"]

    # damage on the bucket is found too
    raw = bytearray(fs.cat_file(f"{out[5:]}/{names[1]}"))
    raw[200_000] ^= 0x10
    fs.pipe_file(f"{out[5:]}/{names[1]}", bytes(raw))
    fs.rm_file(f"{out[5:]}/{names[2]}")
    problems = verify(out).problems
    assert f"{names[2]}: missing" in problems
    assert any(p.startswith(f"{names[1]}: crc32c") for p in problems), problems


def test_npy_input_read_from_gcs(gcs_emulator, kaggle16, tmp_path):
    data, _ = kaggle16
    source = gcs_emulator.unique_url("kaggle")
    fs = gcs_emulator.fs()
    fs.put(data + "/", source[5:], recursive=True)
    from_gcs = str(tmp_path / "from_gcs")
    from_local = str(tmp_path / "from_local")
    manifest = convert(source, from_gcs, workers=2, **PARAMS, **QUIET)
    assert manifest["params"]["source"] == source
    convert(data, from_local, workers=2, **PARAMS, **QUIET)
    digests = [{os.path.basename(p): hashlib.sha256(open(p, "rb").read()).hexdigest()
                for p in shard_files(d)} for d in (from_gcs, from_local)]
    assert digests[0] == digests[1] and len(digests[0]) == manifest["num_shards"]


def test_sigkill_mid_upload_then_rerun_equals_an_uninterrupted_run(gcs_emulator, kaggle16):
    data, _ = kaggle16
    fs = gcs_emulator.fs()
    reference_url = gcs_emulator.unique_url("reference")
    reference = convert(data, reference_url, workers=1, **PARAMS, **QUIET)
    expected = {s["name"]: s for s in reference["shards"]}
    expected_sha256 = {name: hashlib.sha256(fs.cat_file(f"{reference_url[5:]}/{name}")).hexdigest()
                       for name in expected}

    out = gcs_emulator.unique_url("killed")
    env = {**os.environ, **gcs_emulator.env, PUBLISH_DELAY_ENV: "0.4",
           "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "tfrecords_tools.convert", "--data", data, "--out", out,
           "--split", "train", "--folds", "4", "--seed", "5", "--shard-mb", "2",
           "--workers", "1", "--quiet"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen_final: dict[str, str] = {}
    saw_temporary = False
    deadline = time.monotonic() + 240
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            objects = _objects(fs, out)
            # a shard upload in flight (the progress file also passes through _tmp/)
            temporaries = [n for n in objects if n.startswith("_tmp/") and ".tfrec." in n]
            for name, size in objects.items():
                if parse_shard_name(name) is None:
                    continue
                # under a final name there is only ever the complete shard
                assert size == expected[name]["bytes"], f"partial object listed as {name}"
                if name not in seen_final:
                    body = fs.cat_file(f"{out[5:]}/{name}")
                    seen_final[name] = hashlib.sha256(body).hexdigest()
                    assert seen_final[name] == expected_sha256[name], name
            recorded = []
            if PROGRESS_NAME in objects:
                recorded = json.loads(fs.cat_file(f"{out[5:]}/{PROGRESS_NAME}"))["shards"]
            # kill once a finished shard is on record and the next one is being uploaded
            if seen_final and recorded and temporaries:
                saw_temporary = True
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        output = proc.communicate(timeout=60)[0].decode(errors="replace")
    assert proc.returncode == -signal.SIGKILL, output
    assert saw_temporary, output

    left = _objects(fs, out)
    finals = [n for n in left if parse_shard_name(n)]
    assert 0 < len(finals) < len(expected)  # killed part-way
    assert MANIFEST_NAME not in left and PROGRESS_NAME in left
    assert any(n.startswith("_tmp/") and ".tfrec." in n for n in left)  # the interrupted upload
    assert not verify(out).ok

    messages = []
    manifest = convert(data, out, workers=2, **PARAMS, progress=False, log=messages.append)
    assert any(m.startswith("removed") and "temporary" in m for m in messages), messages
    assert any(m.startswith("resuming:") for m in messages), messages
    final = _objects(fs, out)
    assert sorted(final) == sorted([MANIFEST_NAME, *expected])
    for name, entry in expected.items():
        body = fs.cat_file(f"{out[5:]}/{name}")
        assert hashlib.sha256(body).hexdigest() == expected_sha256[name], name
    assert manifest["shards"] == reference["shards"]
    assert verify(out).ok
