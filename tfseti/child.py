"""One way to run a command of the project as a child process, for the commands that chain others
(``tfseti.demo``'s stages, ``tfseti.noisy_student``'s steps and the benchmarks built on them): the
child's output comes as it is written, and the child does not outlive its parent.

* The child runs in its own process group (``process_group=0``, POSIX), so its own children (a
  synthesiser's workers, a data loader's) are in it too; when ``run`` returns, raises (Ctrl-C:
  ``KeyboardInterrupt``) or the parent is sent SIGTERM while it waits, the whole group is sent
  SIGTERM, given ``GRACE_S`` seconds, then SIGKILL.
* On Linux the child asks the kernel to SIGKILL it when its parent dies
  (``prctl(PR_SET_PDEATHSIG)``, through ctypes, in ``preexec_fn``): a parent killed with ``kill -9``
  runs no code, and its child goes with it all the same (a grandchild it started is then on its
  own). Elsewhere this part is skipped.

Standard library only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

PR_SET_PDEATHSIG = 1
GRACE_S = 5.0


def _prctl():
    """libc's ``prctl`` (Linux), looked up in the parent: the child, between fork and exec, only
    calls it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _die_with(parent: int, prctl) -> None:
    """In the child, before ``exec``: SIGKILL when ``parent`` dies; if it died already, now."""
    if prctl is None:
        return
    prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:  # the parent died between fork and prctl
        os.kill(os.getpid(), signal.SIGKILL)


def _kill_group(process: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM the child's process group, SIGKILL what is left after ``grace_s``, reap the child."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    try:  # the child's own children, and the child if it ignored SIGTERM
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


class _Terminated(BaseException):
    """SIGTERM arrived while a child ran (raised to unwind through ``run``'s cleanup)."""


def run(argv: list[str], *, cwd=None, env=None, grace_s: float = GRACE_S) -> int:
    """Run ``argv`` (stdin, stdout and stderr inherited) until it exits; its exit code. The child
    and its process group die with this process (see the module docstring)."""
    parent, prctl = os.getpid(), _prctl()
    main_thread = threading.current_thread() is threading.main_thread()
    previous = None
    if main_thread:
        def on_term(signum, frame):
            raise _Terminated()
        previous = signal.signal(signal.SIGTERM, on_term)
    process, finished = None, False
    try:
        process = subprocess.Popen(argv, cwd=cwd, env=env, process_group=0,
                                   preexec_fn=lambda: _die_with(parent, prctl))
        code = process.wait()
        finished = True
        return code
    except _Terminated:
        if process is not None:
            _kill_group(process, grace_s)
        finished = True
        raise SystemExit(128 + signal.SIGTERM) from None
    finally:
        if main_thread:  # None: a handler not set from Python, taken as the default
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
        if process is not None and not finished:  # an exception (Ctrl-C) while waiting
            _kill_group(process, grace_s)
        elif process is not None:  # whatever the child left running in its group
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
