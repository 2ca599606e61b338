"""``tfseti.child.run``: a child (and its process group) does not outlive the parent that ran it,
whether the parent is killed with SIGKILL (no code runs: the kernel's parent-death signal), sent
SIGTERM, or returns."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tfseti import child

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl: Linux only")

# The fake parent: runs a child that starts a grandchild (its own process group member), both
# writing their pids, then sleeping.
SLEEPER = ("import os, subprocess, sys, time\n"
           "folder = sys.argv[1]\n"
           "grand = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
           "open(os.path.join(folder, 'grandchild.pid'), 'w').write(str(grand.pid))\n"
           "open(os.path.join(folder, 'child.pid'), 'w').write(str(os.getpid()))\n"
           "time.sleep(120)\n")
PARENT = ("import sys\n"
          "from tfseti.child import run\n"
          "sys.exit(run([sys.executable, '-c', sys.argv[1], sys.argv[2]]))\n")


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _start_parent(folder: Path) -> tuple[subprocess.Popen, int, int]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    parent = subprocess.Popen([sys.executable, "-c", PARENT, SLEEPER, str(folder)], env=env)
    pids = [folder / "child.pid", folder / "grandchild.pid"]
    assert _wait_for(lambda: all(p.exists() and p.read_text() for p in pids), 60), "no child"
    return parent, int(pids[0].read_text()), int(pids[1].read_text())


def _cleanup(*pids: int) -> None:
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_child_dies_when_its_parent_is_killed_with_sigkill(tmp_path):
    parent, kid, grandkid = _start_parent(tmp_path)
    try:
        assert _alive(kid)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert _wait_for(lambda: not _alive(kid), 5), "the child outlived its parent"
    finally:
        _cleanup(kid, grandkid)


def test_sigterm_to_the_parent_ends_the_child_and_its_children(tmp_path):
    parent, kid, grandkid = _start_parent(tmp_path)
    try:
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(20) == 128 + signal.SIGTERM
        assert _wait_for(lambda: not _alive(kid) and not _alive(grandkid), 5)
    finally:
        _cleanup(kid, grandkid)


def test_run_returns_the_exit_code_and_passes_output_through(tmp_path, capfd):
    before = signal.getsignal(signal.SIGTERM)
    code = child.run([sys.executable, "-c", "print('hello from the child'); raise SystemExit(3)"])
    assert code == 3
    assert "hello from the child" in capfd.readouterr().out
    assert signal.getsignal(signal.SIGTERM) == before      # the parent's handler given back


def test_keyboard_interrupt_kills_the_child_group(tmp_path, monkeypatch):
    started = []
    real_popen = subprocess.Popen

    class Interrupted(real_popen):
        def wait(self, timeout=None):
            if timeout is None and not started:
                started.append(self.pid)
                _wait_for(lambda: (tmp_path / "grandchild.pid").exists()
                          and (tmp_path / "grandchild.pid").read_text(), 30)
                raise KeyboardInterrupt
            return super().wait(timeout)

    monkeypatch.setattr(child.subprocess, "Popen", Interrupted)
    with pytest.raises(KeyboardInterrupt):
        child.run([sys.executable, "-c", SLEEPER, str(tmp_path)], grace_s=2)
    grandkid = int((tmp_path / "grandchild.pid").read_text())
    try:
        assert not _alive(started[0])
        assert _wait_for(lambda: not _alive(grandkid), 5)
    finally:
        _cleanup(grandkid)
