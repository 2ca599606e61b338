"""tfseti.io.atomic: a file read back appears whole or not at all; JSON never holds NaN."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from tfseti.io import atomic


def test_write_json_round_trip_and_no_leftovers(tmp_path):
    path = tmp_path / "sub" / "doc.json"
    atomic.write_json(path, {"a": 1, "b": [0.5, None]})
    assert json.loads(path.read_text()) == {"a": 1, "b": [0.5, None]}
    assert os.listdir(path.parent) == ["doc.json"]  # no temporary file left behind


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), np.float32("nan")])
def test_write_json_refuses_non_finite_and_names_the_key(tmp_path, bad):
    path = tmp_path / "result.json"
    path.write_text('{"old": true}\n')
    default = (lambda v: v.item()) if isinstance(bad, np.generic) else None
    with pytest.raises(atomic.NonFiniteError, match=r"result\.json: history\.val_auc\[1\] is not "
                                                     r"a finite number"):
        atomic.write_json(path, {"history": {"val_auc": [0.5, bad]}}, default=default)
    assert path.read_text() == '{"old": true}\n'  # the refused write changed nothing
    assert os.listdir(tmp_path) == ["result.json"]


def test_finite_or_none_turns_undefined_numbers_into_null():
    doc = {"auc": float("nan"), "x": [1.0, float("inf"), "text"], "n": 3}
    assert atomic.finite_or_none(doc) == {"auc": None, "x": [1.0, None, "text"], "n": 3}
    assert "NaN" not in atomic.dumps_json(atomic.finite_or_none(doc))


def test_exception_inside_the_block_keeps_the_old_file(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("epoch,loss\n0,1.0\n")
    with pytest.raises(RuntimeError):
        with atomic.atomic_open(path) as handle:
            handle.write("epoch,loss\n0,1.0\n1,")
            raise RuntimeError("killed mid-write")
    assert path.read_text() == "epoch,loss\n0,1.0\n"
    assert os.listdir(tmp_path) == ["log.csv"]


def test_kill_9_during_writes_leaves_a_whole_file(tmp_path):
    """A writer killed at a random moment of a rewrite loop: the file is always one of the
    complete versions (never truncated, never NUL-padded)."""
    path = tmp_path / "log.csv"
    script = textwrap.dedent(f"""
        import sys
        from tfseti.io.atomic import write_text
        rows = ["epoch,loss"]
        i = 0
        while True:
            rows.append(f"{{i}},{{1.0 / (i + 1)}}" + "x" * 2000)
            write_text({str(path)!r}, "\\n".join(rows) + "\\n")
            if i == 3:
                print("ready", flush=True)
            i += 1
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    text = path.read_text()
    assert "\x00" not in text
    lines = text.splitlines()
    assert lines[0] == "epoch,loss" and len(lines) > 4
    for index, line in enumerate(lines[1:]):
        epoch, loss = line.rstrip("x").split(",")
        assert int(epoch) == index and float(loss) == pytest.approx(1.0 / (index + 1))
