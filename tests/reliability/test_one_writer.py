"""One writer per output folder, files read back written whole, refused commands change nothing
(issue 26): the folder lock (``tfseti.io.folder_lock``) in the commands that write a folder, the
atomic ``log.csv`` / ``scan.json`` / ``hits.csv``, and scan reruns that keep earlier cadences.

A second writer is simulated by holding the lock in this process (or a subprocess), never by
running two trainings: the refusal must come before the command does anything else in the folder.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest
from scan.scan_helpers import shared_cadences

from tfseti.io import folder_lock
from tfseti.io.folder_lock import LOCK_NAME, FolderLock, FolderLocked

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOCKED = ("is being written by {command} (pid {pid} on {host} since ")
ADVICE = "); wait for it to finish or use another --out (--break-lock if that process is gone)"


def snapshot(folder) -> dict:
    """Every file under ``folder`` (the lock file aside) with its bytes: "changed nothing"."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            if name == LOCK_NAME:
                continue
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, folder)] = handle.read()
    return found


def assert_one_line_refusal(err: str, out, command: str, pid: int = None) -> None:
    pid = os.getpid() if pid is None else pid
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: {out} " + LOCKED.format(command=command, pid=pid,
                                                           host=socket.gethostname())), err
    assert err.rstrip("\n").endswith(ADVICE), err


# -- the lock itself ----------------------------------------------------------------------------
def test_a_second_writer_is_refused_until_the_first_releases(tmp_path):
    out = tmp_path / "out"
    with FolderLock(out, command="first command") as held:
        owner = json.loads((out / LOCK_NAME).read_text())
        assert owner["pid"] == os.getpid() and owner["command"] == "first command"
        assert owner["host"] == socket.gethostname() and owner["since"].endswith("Z")
        assert held.held
        with pytest.raises(FolderLocked) as caught:
            FolderLock(out, command="second").acquire()
        message = str(caught.value)
        assert message.startswith(f"{out} " + LOCKED.format(
            command="first command", pid=os.getpid(), host=socket.gethostname()))
        assert owner["since"] in message and message.endswith(ADVICE)
    # Released: the file is gone and the next writer gets it.
    assert not (out / LOCK_NAME).exists()
    with FolderLock(out, command="second"):
        assert json.loads((out / LOCK_NAME).read_text())["command"] == "second"


HOLDER = """
import sys, time
from tfseti.io.folder_lock import FolderLock
lock = FolderLock(sys.argv[1], command="holder").acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_a_killed_holder_releases_the_lock(tmp_path):
    """kill -9 leaves the lock file naming the dead process; the OS lock is gone, so the next
    writer takes the folder without --break-lock."""
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE,
                              text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(FolderLocked, match=f"by holder \\(pid {holder.pid} on "):
            FolderLock(out).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert json.loads((out / LOCK_NAME).read_text())["pid"] == holder.pid  # left behind
    with FolderLock(out, command="next"):
        assert json.loads((out / LOCK_NAME).read_text())["pid"] == os.getpid()


def test_break_lock_takes_a_lock_that_flock_does_not_guard(tmp_path):
    """A lock file naming a live process on this host but not flock-ed (a file system where flock
    is not honoured): refused, and --break-lock takes it."""
    out = tmp_path / "out"
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / LOCK_NAME).write_text(json.dumps({
            "host": socket.gethostname(), "pid": sleeper.pid, "command": "elsewhere",
            "since": "2026-01-01T00:00:00Z"}))
        with pytest.raises(FolderLocked, match=f"by elsewhere \\(pid {sleeper.pid} on .* since "
                                               f"2026-01-01T00:00:00Z\\)"):
            FolderLock(out).acquire()
        notes = []
        with FolderLock(out, command="breaker", break_lock=True, log=notes.append):
            assert json.loads((out / LOCK_NAME).read_text())["command"] == "breaker"
        assert notes and f"pid {sleeper.pid}" in notes[0]
        # The same file naming a process that no longer runs is taken without --break-lock.
    finally:
        sleeper.kill()
        sleeper.wait()
    (out / LOCK_NAME).write_text(json.dumps({"host": socket.gethostname(), "pid": sleeper.pid,
                                             "command": "dead", "since": "x"}))
    with FolderLock(out, command="after"):
        pass


def test_a_gs_lock_object_refuses_while_fresh_and_is_taken_when_stale(gcs_emulator, monkeypatch,
                                                                     tmp_path):
    """gs://: the lock is an object with a heartbeat; StagedFolder mirroring leaves it alone."""
    from tfseti.io.staging import StagedFolder

    monkeypatch.setattr(folder_lock, "SETTLE_S", 0.05)
    url = gcs_emulator.unique_url("locked")
    fs = gcs_emulator.fs()
    lock_path = f"{url[len('gs://'):]}/{LOCK_NAME}"
    with FolderLock(url, command="writer one"):
        owner = json.loads(fs.cat_file(lock_path))
        assert owner["command"] == "writer one" and owner["heartbeat"]
        with pytest.raises(FolderLocked, match=r"by writer one .*last heartbeat \d+ s ago\)"):
            FolderLock(url, command="writer two").acquire()
        # A run folder staged and mirrored to the same URL neither fetches nor deletes it.
        staged = StagedFolder(url, staging=str(tmp_path / "staging"))
        os.makedirs(staged.local, exist_ok=True)
        with open(os.path.join(staged.local, "cv.json"), "w") as handle:
            handle.write("{}")
        staged.push()
        fs.invalidate_cache()
        assert fs.exists(lock_path)
        assert staged.pull() == 1 and not os.path.exists(os.path.join(staged.local, LOCK_NAME))
    fs.invalidate_cache()
    assert not fs.exists(lock_path)  # released
    # A writer that died: its heartbeat stops; once stale, the next writer takes over.
    fs.pipe_file(lock_path, json.dumps({"host": "h", "pid": 1, "command": "dead writer",
                                        "since": "2026-01-01T00:00:00Z",
                                        "heartbeat": "2026-01-01T00:00:00Z"}).encode())
    notes = []
    with FolderLock(url, command="three", log=notes.append):
        assert json.loads(fs.cat_file(lock_path))["command"] == "three"
    assert "abandoned by dead writer" in notes[0]
    # A fresh heartbeat of a process of this host that was killed (a resume after kill -9).
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    fs.pipe_file(lock_path, json.dumps({"host": socket.gethostname(), "pid": dead.pid,
                                        "command": "killed run", "since": "x",
                                        "heartbeat": folder_lock._iso(folder_lock._now())}).encode())
    with FolderLock(url, command="resumed", log=notes.append):
        assert json.loads(fs.cat_file(lock_path))["command"] == "resumed"
    assert "killed run" in notes[1] and "no longer runs" in notes[1]
    # A fresh one needs --break-lock.
    with FolderLock(url, command="four"):
        with pytest.raises(FolderLocked):
            FolderLock(url).acquire()
        with FolderLock(url, command="five", break_lock=True, log=notes.append):
            assert json.loads(fs.cat_file(lock_path))["command"] == "five"


# -- commands refused by the lock -------------------------------------------------------------
def test_train_into_a_locked_out_is_refused_and_changes_nothing(tmp_path, capsys):
    """Before: a second run into the --out of a running one deleted its folds (--overwrite, or
    retraining finished folds) and resumed from its live backup. The lock comes before the run
    folder check: even --overwrite of a fold of another config removes nothing."""
    from train.train_shards import write_easy_shards

    from tfseti.train import cli

    data, out = tmp_path / "shards", tmp_path / "run"
    write_easy_shards(str(data), records_per_fold=4, folds=2)
    args = ["--config", "cpu_demo", "--strategy", "cpu", "--fold", "all", "--data", str(data),
            "--out", str(out), "--no-report", "--overwrite", "model.name=plain_cnn_s",
            "view.resize=[32, 32]", "train.epochs=1", "train.steps_per_epoch=1",
            "train.steps_per_execution=1", "train.batch_per_replica=4"]
    # A fold of another recipe, which --overwrite would delete, and a finished run's cv.json.
    (out / "fold0").mkdir(parents=True)
    (out / "fold0" / "config.json").write_text(json.dumps({"train": {"learning_rate": 0.002}}))
    (out / "fold0" / "log.csv").write_text("epoch,loss\r\n0,0.5\r\n")
    (out / "cv.json").write_text(json.dumps({"cv_auc": 0.5}))
    before = snapshot(out)
    with FolderLock(out, command="python -m tfseti.train (the first)"):
        assert cli.main(args) == 2
        captured = capsys.readouterr()
        assert_one_line_refusal(captured.err, out, "python -m tfseti.train (the first)")
        assert "removed" not in captured.out and "plan" not in captured.out
        assert snapshot(out) == before


@pytest.fixture(scope="module")
def cadences(tmp_path_factory, worker_id):
    return shared_cadences(tmp_path_factory, worker_id)


def scan(out, *cadence_lists, extra=()) -> int:
    from tfseti.scan.__main__ import main

    listing = os.path.join(os.fspath(out) + ".lst")  # beside OUT: not one of its files
    with open(listing, "w") as handle:
        handle.write("\n".join(p for paths in cadence_lists for p in paths) + "\n")
    return main(["--cadence-list", listing, "--out", str(out), "--top", "0", "--no-progress",
                 *extra])


def test_scan_into_a_locked_out_is_refused_and_break_lock_takes_a_stale_one(
        cadences, tmp_path, capsys):
    out = tmp_path / "scan"
    with FolderLock(out, command="python -m tfseti.scan (the first)"):
        assert scan(out, cadences["h5"]) == 2
        assert_one_line_refusal(capsys.readouterr().err, out, "python -m tfseti.scan (the first)")
        assert snapshot(out) == {}
    # A lock file a live process left on a file system without flock: --break-lock scans.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / LOCK_NAME).write_text(json.dumps({"host": socket.gethostname(),
                                                 "pid": sleeper.pid, "command": "old scan",
                                                 "since": "2026-01-01T00:00:00Z"}))
        assert scan(out, cadences["h5"]) == 2
        assert_one_line_refusal(capsys.readouterr().err, out, "old scan", sleeper.pid)
        assert snapshot(out) == {}
        assert scan(out, cadences["h5"], extra=["--break-lock"]) == 0
    finally:
        sleeper.kill()
        sleeper.wait()
    assert (out / "scan.json").exists() and (out / "hits.csv").exists()
    assert not (out / LOCK_NAME).exists()  # released at the end


def test_convert_into_a_locked_out_is_refused_and_keeps_the_first_writers_temporaries(
        kaggle_dir, tmp_path, capsys):
    """Before: a second converter deleted the first's temporary shards ('.part file missing')."""
    from tfrecords_tools.convert import main as convert_main
    from tfseti.io.shard_writer import TMP_DIR

    data, out = str(kaggle_dir[0]), tmp_path / "shards"
    args = ["--data", data, "--out", str(out), "--folds", "2", "--shard-mb", "4", "--no-progress"]
    with FolderLock(out, command="python -m tfrecords_tools.convert (the first)"):
        (out / TMP_DIR).mkdir()
        (out / TMP_DIR / "train-f0-00000-of-00001.tfrec.part").write_bytes(b"half a shard")
        before = snapshot(out)
        assert convert_main(args) == 2
        assert_one_line_refusal(capsys.readouterr().err, out,
                                "python -m tfrecords_tools.convert (the first)")
        assert snapshot(out) == before
    assert convert_main(args) == 0  # released: the same command converts
    assert json.loads((out / "manifest.json").read_text())["num_records"] == 8


# -- atomic files -------------------------------------------------------------------------------
WRITER = """
import sys
from tfseti.io.atomic import write_json
rows = [{"epoch": i, "loss": 0.5, "val_auc": 0.75, "note": "x" * 40} for i in range(20000)]
print("writing", flush=True)
i = 0
while True:
    write_json(sys.argv[1], {"iteration": i, "rows": rows})
    i += 1
"""


def test_a_writer_killed_mid_write_leaves_a_whole_file(tmp_path):
    """kill -9 during a loop of ~2 MB rewrites: the file parses, whole, and no NUL bytes."""
    path = tmp_path / "result.json"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE,
                              text=True, cwd=REPO)
    try:
        assert writer.stdout.readline().strip() == "writing"
        deadline = time.monotonic() + 30
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # several rewrites in: the kill lands inside one of them
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    data = path.read_bytes()
    assert b"\x00" not in data
    doc = json.loads(data)
    assert len(doc["rows"]) == 20000 and doc["rows"][-1]["epoch"] == 19999


def test_the_atomic_csv_log_is_keras_csvlogger_byte_for_byte(tmp_path):
    """log.csv keeps Keras's columns and format (the report and the resume read it), appends
    across fits, and a resume's truncation keeps the rows before the backup."""
    import keras

    from tfseti.train.csv_log import AtomicCSVLogger
    from tfseti.train.resume import truncate_csv_log

    epochs = [{"loss": 0.69, "auc": 0.5, "val_auc": float("nan"), "learning_rate": 1e-3},
              {"loss": 0.5, "auc": 0.7, "val_auc": 0.75, "learning_rate": 5e-4},
              {"loss": 0.4, "auc": 0.8, "val_auc": 0.8125, "learning_rate": 2.5e-4}]
    paths = {"keras": tmp_path / "keras.csv", "ours": tmp_path / "ours.csv"}
    for name, make in (("keras", keras.callbacks.CSVLogger), ("ours", AtomicCSVLogger)):
        for first, fit in ((0, epochs[:2]), (2, epochs[2:])):  # two fits: the second appends
            callback = make(str(paths[name]), append=first > 0)
            callback.on_train_begin()
            for offset, logs in enumerate(fit):
                callback.on_epoch_end(first + offset, dict(logs))
            callback.on_train_end()
    assert paths["ours"].read_bytes() == paths["keras"].read_bytes()
    table = pd.read_csv(paths["ours"])
    assert list(table.columns) == ["epoch", "auc", "learning_rate", "loss", "val_auc"]
    assert table["epoch"].tolist() == [0, 1, 2] and table["val_auc"].isna().tolist()[0]
    truncate_csv_log(str(paths["ours"]), 2)
    assert pd.read_csv(paths["ours"])["epoch"].tolist() == [0, 1]
    assert [n for n in os.listdir(tmp_path) if n.endswith(".tmp")] == []


# -- scan reruns ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_cadence_scan(cadences, tmp_path_factory):
    """OUT scanned with two cadences (the same observation as .h5 and .fil), classical only."""
    out = tmp_path_factory.mktemp("rerun") / "scan"
    assert scan(out, cadences["h5"], cadences["fil"]) == 0
    return out


def test_a_scan_rerun_with_fewer_cadences_keeps_the_others(two_cadence_scan, cadences, tmp_path):
    """Before: the rerun replaced OUT/hits.csv with its own cadence's rows and scan.json listed
    only it, orphaning the other cadence folder."""
    import shutil

    out = tmp_path / "scan"
    shutil.copytree(two_cadence_scan, out)
    full = pd.read_csv(out / "hits.csv", dtype={"cadence": str})
    names = sorted(set(full["cadence"]))
    assert len(names) == 2 and len(full) > 4
    assert scan(out, cadences["h5"]) == 0  # the first cadence alone: complete, skipped
    after = pd.read_csv(out / "hits.csv", dtype={"cadence": str})
    pd.testing.assert_frame_equal(after, full)
    doc = json.loads((out / "scan.json").read_text())
    assert sorted(c["name"] for c in doc["cadences"]) == names
    assert [c["files"] for c in doc["cadences"]] == [cadences["h5"], cadences["fil"]]


def test_a_refused_scan_rerun_writes_nothing(two_cadence_scan, cadences, tmp_path, capsys):
    """Before: --overlap 64 into a folder scanned with 128 was refused, but scan.json already held
    the new settings. Refused now before anything is written: by a cadence folder's fingerprint,
    or, for a cadence not scanned there yet, by the settings in the earlier scan.json."""
    import shutil

    out = tmp_path / "scan"
    shutil.copytree(two_cadence_scan, out)
    before = snapshot(out)
    assert scan(out, cadences["h5"], extra=["--overlap", "64"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "holds a scan of cadence" in err
    assert snapshot(out) == before  # scan.json byte-identical, hits.csv too
    doc = json.loads((out / "scan.json").read_text())
    (h5,) = [c["name"] for c in doc["cadences"] if c["files"] == cadences["h5"]]
    shutil.rmtree(out / h5)  # that cadence has no folder in OUT now: only scan.json can refuse
    before = snapshot(out)
    assert scan(out, cadences["h5"], extra=["--overlap", "64"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {out / 'scan.json'}: ") and err.count("\n") == 1, err
    assert "settings.overlap: 128 there, 64 now" in err and "nothing was written" in err
    assert snapshot(out) == before and not (out / h5).exists()
