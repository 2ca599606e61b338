"""The Colab notebooks: stored clean, and run top to bottom in ``local`` mode (GCS emulator, CPU,
tiny synthetic data) one after the other on one shared work folder, as CI's proof that they work."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from tfseti.io.gcs_emulator import start_emulator

REPO = Path(__file__).resolve().parents[2]
COLAB = REPO / "colab"
NOTEBOOKS = ("01_create_dataset", "02_train_tpu", "03_inference")
BUCKET = "tfseti-colab"
N_TRAIN, N_TEST, FOLDS = 16, 6, 2

# Secrets that must never be stored in a notebook: Google OAuth tokens and API keys, service
# account keys, Kaggle API tokens/keys, GitHub tokens, and key=value credential assignments.
CREDENTIAL_PATTERNS = [
    r"ya29\.[\w-]{20,}", r"AIza[\w-]{35}", r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    r'"private_key(_id)?"\s*:', r"KGAT_[0-9a-f]{16,}", r"\bgh[pousr]_\w{30,}",
    r"\b[0-9a-f]{32}\b",  # a Kaggle legacy API key
    r"""(KAGGLE_KEY|KAGGLE_API_TOKEN|KAGGLE_USERNAME|password|secret)["']?\s*[:=]\s*["'][^"'{}]+["']""",
]


def _read(name: str):
    return nbformat.read(COLAB / f"{name}.ipynb", as_version=4)


def test_every_stored_notebook_is_checked():
    assert sorted(p.stem for p in COLAB.glob("*.ipynb")) == list(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_stored_notebook_is_clean(name):
    nb = _read(name)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert "papermill" not in nb.metadata, "an executed copy was stored"
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"cell {index} has output"
        assert "papermill" not in cell.metadata and "execution" not in cell.metadata, index
    parameters = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1, "exactly one cell tagged 'parameters'"
    assert parameters[0].cell_type == "code"
    assert re.search(r'^MODE = "colab"', parameters[0].source, re.M), "MODE defaults to colab"
    # decoded cell texts and metadata: in the raw JSON, quotes inside code are escaped
    stored = "\n".join([json.dumps(nb.metadata), *(c.source for c in nb.cells),
                        *(json.dumps(c.metadata) for c in nb.cells)])
    for pattern in CREDENTIAL_PATTERNS:
        match = re.search(pattern, stored)
        assert match is None, f"{name}.ipynb holds a credential-looking string: {match.group(0)!r}"


def test_credential_patterns_catch_secrets():
    """The scan above is only as good as its patterns: each kind of secret is caught."""
    secrets = ['"KAGGLE_KEY": "0123456789abcdef0123456789abcdef"',
               "os.environ['KAGGLE_API_TOKEN'] = 'KGAT_0123456789abcdef01234567'",
               "token = 'ya29.a0AfH6SMBx3kdlWpq0vQ_example-token-body'",
               '"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIE"']
    for secret in secrets:
        assert any(re.search(p, secret) for p in CREDENTIAL_PATTERNS), secret
    clean = 'os.environ[name] = userdata.get(name)\n!{PY} -m tfseti.download --out {DATA_DIR}'
    assert not any(re.search(p, clean) for p in CREDENTIAL_PATTERNS)


def test_emulator_that_cannot_start_is_named_with_its_output(tmp_path):
    storage = tmp_path / "gcs"
    (storage / ".cloudstorage").mkdir(parents=True)
    (storage / ".cloudstorage" / ".meta").write_text("{not json")
    with pytest.raises(RuntimeError, match=r"(?s)gcp-storage-emulator on http://127\.0\.0\.1:\d+ "
                       rf"\(storage {re.escape(str(storage))}\) exited with code 1 while starting; "
                       r"its output:.*JSONDecodeError"):
        start_emulator(str(storage), bucket="b")


def test_local_gcs_refuses_a_gcsfs_imported_with_its_bucket_probe(tmp_path):
    """Started after gcsfs was imported with the gRPC probe on, every bucket access would hang
    60 s: a clear error instead, before any server is started."""
    script = ("import gcsfs\nfrom tfseti.io.gcs_emulator import start_local_gcs\n"
              "try:\n    start_local_gcs('b')\nexcept RuntimeError as err:\n    print(err)\n")
    env = {**os.environ, "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "true"}
    result = subprocess.run([sys.executable, "-c", script], env=env, cwd=REPO, text=True,
                            capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "gcsfs was imported before the GCS emulator was configured" in result.stdout


def test_emulator_dies_with_the_process_that_started_it():
    """A kernel or test killed mid-run leaves no server behind (Linux)."""
    if sys.platform != "linux":
        pytest.skip("parent-death signal is Linux-only")
    script = ("from tfseti.io.gcs_emulator import start_emulator\n"
              "print(start_emulator().process.pid, flush=True)\nimport time\ntime.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, text=True,
                              stdout=subprocess.PIPE)
    pid = int(parent.stdout.readline())
    assert _process_state(pid) not in ("gone", "Z")
    parent.kill()
    parent.wait(timeout=30)
    deadline = time.monotonic() + 10
    while _process_state(pid) not in ("gone", "Z") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _process_state(pid) in ("gone", "Z")  # a zombie has exited; only its reaping is left


def _process_state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"


def _execute(name: str, out_dir: Path, parameters: dict) -> None:
    """Run one notebook with papermill from the repository root; a failing cell fails the test
    with the cell's own output (the failing command's messages), not only the exception."""
    import papermill

    output = out_dir / f"{name}.ipynb"
    try:
        papermill.execute_notebook(str(COLAB / f"{name}.ipynb"), str(output),
                                   parameters=parameters, kernel_name="python3", cwd=str(REPO),
                                   progress_bar=False, execution_timeout=600)
    except papermill.PapermillExecutionError as err:
        failed = nbformat.read(output, as_version=4)
        text = "".join(o.get("text", "") for c in failed.cells if c.cell_type == "code"
                       for o in c.get("outputs", []))
        pytest.fail(f"{name}: cell {err.cell_index} failed: {err.ename}: {err.evalue}\n"
                    f"output so far (tail):\n{text[-4000:]}", pytrace=False)


@pytest.mark.heavy
@pytest.mark.slow
def test_notebooks_run_in_local_mode(tmp_path, monkeypatch):
    work = tmp_path / "work"
    executed = tmp_path / "executed"
    executed.mkdir()
    common = {"MODE": "local", "WORK_DIR": str(work), "BUCKET": BUCKET, "GCS_PREFIX": "seti"}
    _execute("01_create_dataset", executed, {
        **common, "N_TRAIN": N_TRAIN, "N_TEST": N_TEST, "POSITIVE_RATE": 0.5, "FOLDS": FOLDS,
        "SHARD_MB": 2, "WORKERS": 1})
    _execute("02_train_tpu", executed, {
        **common, "CONFIG": "cpu_demo", "RUN_NAME": "tiny", "FOLD": "all",
        "OVERRIDES": ["view.resize=[32, 32]", "train.epochs=1", "train.batch_per_replica=4",
                      "train.steps_per_execution=1", "train.warmup_epochs=0",
                      "data.shuffle_buffer=16", "augment.vflip_p=0.0", "augment.off_shuffle_p=0.0",
                      "model.options.drop_connect_rate=0.0",
                      "model.name=plain_cnn_s"]})  # a small CNN: the notebooks are under test
    _execute("03_inference", executed, {**common, "RUN_NAME": "tiny", "TTA": "flips"})

    # What the notebooks left on the bucket, read back through a fresh emulator on its storage.
    server = start_emulator(storage_dir=str(work / "gcs"))
    try:
        for key, value in server.env.items():
            monkeypatch.setenv(key, value)
        import fsspec.config

        monkeypatch.setitem(fsspec.config.conf, "gs", {"token": "anon"})
        from tfrecords_tools.verify import verify
        from tfseti.io.fs import url_to_fs

        root = f"gs://{BUCKET}/seti"
        fs, _ = url_to_fs(root)
        fs.invalidate_cache()
        for split, records in (("train", N_TRAIN), ("test", N_TEST)):
            report = verify(f"{root}/{split}")
            assert report.ok, report.problems
            manifest = json.loads(fs.cat_file(f"{BUCKET}/seti/{split}/manifest.json"))
            assert manifest["num_records"] == records
        run = f"{BUCKET}/seti/runs/tiny"
        assert sorted(fs.glob(f"{run}/fold*/saved_model/saved_model.pb")) == [
            f"{run}/fold{k}/saved_model/saved_model.pb" for k in range(FOLDS)]
        cv = json.loads(fs.cat_file(f"{run}/cv.json"))
        assert sorted(int(k) for k in cv["folds"]) == list(range(FOLDS))
        bucket_submission = fs.cat_file(f"{run}/submission.csv")
    finally:
        server.stop()

    test_ids = pd.read_csv(work / "data" / "sample_submission.csv", dtype={"id": str})["id"]
    submission = pd.read_csv(work / "submission.csv", dtype={"id": str})
    assert list(submission.columns) == ["id", "target"]
    assert sorted(submission["id"]) == sorted(test_ids) and submission["id"].is_unique
    assert submission["target"].between(0, 1).all()
    assert bucket_submission == (work / "submission.csv").read_bytes()
    index = work / "report" / "tiny" / "index.html"
    assert index.is_file() and "<html" in index.read_text().lower()
    assert list(index.parent.glob("*.png"))
