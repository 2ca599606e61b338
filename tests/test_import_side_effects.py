"""``import tfseti`` changes no global state: no import hook, no stream, fd or environment change.

Only a command sets up the console (``tfseti.command``); a library user's process is left as it
was. Checked in a fresh interpreter, with the environment a user has (no ``TF_CPP_MIN_LOG_LEVEL``
and no ``TFSETI_TF_LOGS``, under which the console set-up would be a no-op anyway).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

# Packages that import no TensorFlow (a TensorFlow import changes state of its own).
MODULES = ("tfseti", "tfseti.io", "tfseti.io.shards", "tfseti.dedoppler", "tfseti.scan.settings",
           "tfseti.console", "tfseti.command", "tfseti.cli", "tfseti.config")

SNAPSHOT = r"""
import json, os, signal, sys

def fd(n):
    st = os.fstat(n)
    return [st.st_dev, st.st_ino, st.st_mode]

def snapshot():
    return {
        "meta_path": [f"{type(f).__module__}.{type(f).__qualname__}@{id(f)}" for f in sys.meta_path],
        "path_hooks": [repr(h) for h in sys.path_hooks],
        "streams": [id(sys.stdin), id(sys.stdout), id(sys.stderr)],
        "fds": [fd(1), fd(2)],
        "environ": dict(os.environ),
        "hooks": [repr(sys.excepthook), repr(sys.displayhook)],
        "signals": [repr(signal.getsignal(s)) for s in (signal.SIGINT, signal.SIGTERM)],
    }

before = snapshot()
import importlib
for name in sys.argv[1:]:
    importlib.import_module(name)
after = snapshot()
print(json.dumps({"before": before, "after": after, "tensorflow": "tensorflow" in sys.modules}))
"""


def _user_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TFSETI_TF_LOGS")}


def _snapshots(*argv: str) -> dict:
    done = subprocess.run([sys.executable, *argv, *MODULES], capture_output=True, text=True,
                          env=_user_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr
    return json.loads(done.stdout)


def test_importing_tfseti_changes_no_global_state():
    state = _snapshots("-c", SNAPSHOT)
    assert not state["tensorflow"]  # what is imported here does not import TensorFlow
    for key, before in state["before"].items():
        assert state["after"][key] == before, key


def test_nor_while_python_m_locates_another_program(tmp_path):
    """``import tfseti`` while Python locates a ``-m`` module (the moment ``python -m tfseti.<x>``
    sets up the console) leaves the process alone when that module is not a tfseti command: here
    the package ``__init__`` of someone else's program imports tfseti."""
    package = tmp_path / "someone_elses_program"
    package.mkdir()
    (package / "__init__.py").write_text(SNAPSHOT)  # runs with sys.argv == ["-m", *MODULES]
    (package / "__main__.py").write_text("")
    done = subprocess.run([sys.executable, "-m", "someone_elses_program", *MODULES],
                          capture_output=True, text=True, env=_user_env(), cwd=tmp_path,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    state = json.loads(done.stdout)
    for key, before in state["before"].items():
        assert state["after"][key] == before, key
