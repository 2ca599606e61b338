"""One writer per output folder: an exclusive lock that every command writing a folder takes
before it touches anything there (``tfseti.train``, ``tfseti.scan``, ``tfseti convert``,
``tfseti.pseudo``, ``tfseti.adapt``, ``tfseti.noisy_student``).

Two writers in one folder corrupt each other in ways no later check can see: a second trainer
deletes the first's folds and resumes from its live backup, two converters delete each other's
temporary shards. So the second writer is refused with one line naming the first::

    error: runs/k1 is being written by python -m tfseti.train ... (pid 4242 on host-a since
    2026-01-01T10:00:00Z); wait for it to finish or use another --out (--break-lock if that
    process is gone)

and changes nothing in the folder (it only opens the lock file).

**Local folders**: ``OUT/.tfseti.lock`` (:data:`LOCK_NAME`) is locked with ``fcntl.flock`` and
holds who holds it (JSON: host, pid, command, since in UTC ISO). The kernel drops the lock when
the holder exits, however it exits (``kill -9`` included), so a crash never leaves the folder
locked: the next writer takes it and replaces the stale contents. A clean release removes the
file while still holding the lock, and a writer that locked a file checks that it is still the
one under the lock's name (else it was removed meanwhile and it tries again), so two writers can
never hold two different files. A crashed writer leaves the file behind; commands that check or
clean their folder must ignore it and keep it (:func:`is_lock_file`).

Where ``flock`` is not honoured (some network and FUSE file systems answer ``ENOLCK`` /
``EOPNOTSUPP``, or grant every request), the file's contents decide: a lock file naming a holder
that is not known to be gone refuses the next writer. A holder on this host whose pid no longer
runs is gone, and its lock is taken over; a holder on another host cannot be checked from here,
and ``--break-lock`` (``break_lock=True``) takes the lock anyway (the old file is unlinked and a
fresh one locked, so even a live holder's OS lock no longer guards the folder: use it only when
that process is gone).

**Remote folders** (``gs://`` and other fsspec URLs): object stores have no locks, so the lock
is an object ``URL/.tfseti.lock`` holding the owner (host, pid, command, since, a random token)
and a ``heartbeat`` time that a background thread rewrites every :data:`HEARTBEAT_S` seconds.
A lock object whose heartbeat is older than :data:`STALE_AFTER_S` seconds belongs to a writer
that died (a killed process stops its heartbeat) and is taken over, as is one naming a process of
this host that no longer runs; a fresher one refuses the next writer unless ``--break-lock``. So
a run resumed on a new machine after its old one was preempted waits out those two minutes, or
passes ``--break-lock`` once the old machine is known to be gone. Taking the lock writes our object, waits
:data:`SETTLE_S` seconds and reads it back: of two writers racing for an absent lock, the one
whose object is not there any more is refused. That narrows the race to two writers starting
within the settle time of each other; it is not a compare-and-swap (fsspec has no conditional
write). A holder whose object was replaced by someone else (``--break-lock``) says so on stderr
at its next heartbeat. ``tfseti.io.staging.StagedFolder`` neither downloads nor deletes the lock
object when it mirrors a staged run folder.

Use it as a context manager::

    with FolderLock(out, break_lock=args.break_lock):
        ...  # everything that reads or writes OUT
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import socket
import sys
import threading
import time
import uuid

LOCK_NAME = ".tfseti.lock"
HEARTBEAT_S = 30.0      # a remote lock object is rewritten this often by its holder
STALE_AFTER_S = 120.0   # ... and counts as abandoned once its heartbeat is this old
SETTLE_S = 1.0          # remote: wait this long before reading our lock object back
BREAK_LOCK_HELP = ("take over the output folder's lock even though it names another writer: "
                   "only when that process is gone (a lock file on a file system without "
                   "working flock, or a gs:// lock object whose writer died)")


class FolderLocked(RuntimeError):
    """Another writer holds the output folder; the message is the one line to show."""


def is_lock_file(name: str) -> bool:
    """True for the lock file's name: cleanup code must not remove it."""
    return os.path.basename(os.fspath(name).rstrip("/")) == LOCK_NAME


def command_line() -> str:
    """How this process was started, as a user would type it (``python -m tfseti.train ...``)."""
    argv = list(sys.argv)
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and argv:
        name = spec.name[:-len(".__main__")] if spec.name.endswith(".__main__") else spec.name
        argv = ["python", "-m", name, *argv[1:]]
    text = " ".join(argv) or "python"
    return text if len(text) <= 200 else text[:197] + "..."


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _iso(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text) -> datetime.datetime | None:
    try:
        return datetime.datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc)
    except ValueError:
        return None


def _pid_running(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, TypeError, ValueError):
        return True  # exists but not ours (or unreadable): assume alive
    return True


def _holder_gone(owner: dict) -> bool:
    """The holder named in ``owner`` is known not to run any more (same host, dead pid)."""
    return owner.get("host") == socket.gethostname() and not _pid_running(owner.get("pid"))


def locked_message(shown: str, owner: dict, extra: str = "") -> str:
    return (f"{shown} is being written by {owner.get('command') or 'another command'} "
            f"(pid {owner.get('pid', '?')} on {owner.get('host', '?')} since "
            f"{owner.get('since', '?')}{extra}); wait for it to finish or use another --out "
            f"(--break-lock if that process is gone)")


class FolderLock:
    """The exclusive lock of the output folder ``out`` (local path or fsspec URL); see the
    module docstring. ``shown``: the folder's name in messages (default ``out``)."""

    def __init__(self, out, command: str | None = None, break_lock: bool = False,
                 shown: str | None = None, storage_options: dict | None = None, log=None):
        from tfseti.io import fs as fsutil

        self.out = os.fspath(out)
        self.remote = fsutil.is_url(self.out)
        self.out = self.out.rstrip("/") if self.remote else self.out
        self.shown = shown or self.out
        self.command = command or command_line()
        self.break_lock = break_lock
        self.storage_options = storage_options or {}
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.owner: dict | None = None
        self._fd: int | None = None
        self._fs = None
        self._path = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the owner document ---------------------------------------------------------------------
    def _owner(self) -> dict:
        return {"host": socket.gethostname(), "pid": os.getpid(), "command": self.command,
                "since": _iso(_now())}

    # -- local ----------------------------------------------------------------------------------
    def _read_fd(self, fd: int) -> dict:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            data = b""
            while chunk := os.read(fd, 65536):
                data += chunk
            doc = json.loads(data.decode("utf-8")) if data.strip() else {}
            return doc if isinstance(doc, dict) else {}
        except (OSError, ValueError):
            return {}

    def _acquire_local(self) -> None:
        import fcntl

        os.makedirs(self.out, exist_ok=True)
        path = os.path.join(self.out, LOCK_NAME)
        if self.break_lock and os.path.exists(path):
            # A fresh inode: whoever holds (or is stuck on) the old one no longer guards the folder.
            old = self._read_path(path)
            os.remove(path)
            if old:
                self.log(f"--break-lock: took over {self.shown} from "
                         f"{old.get('command') or '?'} (pid {old.get('pid', '?')} on "
                         f"{old.get('host', '?')})")
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            honoured = True
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = self._read_fd(fd)
                os.close(fd)
                raise FolderLocked(locked_message(self.shown, owner)) from None
            except OSError as err:
                if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    os.close(fd)
                    raise
                honoured = False  # no OS lock here: the file's contents decide
            if self._is_current(fd, path):
                break
            os.close(fd)  # the holder removed it as we locked it: lock the next one
        try:
            previous = self._read_fd(fd)
            if previous and not self.break_lock and not _holder_gone(previous):
                # With a working flock, a holder named in the file died (kill -9) unless it still
                # runs on this host, which means flock granted a lock it does not enforce; without
                # flock, a holder not known to be gone still holds the folder.
                if previous.get("host") == socket.gethostname() or not honoured:
                    raise FolderLocked(locked_message(self.shown, previous))
            self.owner = self._owner()
            data = json.dumps(self.owner).encode("utf-8")
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._path = fd, path

    @staticmethod
    def _is_current(fd: int, path: str) -> bool:
        try:
            return os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            return False

    @staticmethod
    def _read_path(path: str) -> dict:
        try:
            with open(path, encoding="utf-8") as handle:
                doc = json.load(handle)
            return doc if isinstance(doc, dict) else {}
        except (OSError, ValueError):
            return {}

    def _release_local(self) -> None:
        import fcntl

        fd, self._fd = self._fd, None
        try:
            # Removed while still locked (a writer that locks it next sees it is gone and
            # retries); only if it is still ours (--break-lock may have replaced it).
            if self._is_current(fd, self._path):
                os.ftruncate(fd, 0)
                os.remove(self._path)
            fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError:
            pass
        finally:
            os.close(fd)

    # -- remote ---------------------------------------------------------------------------------
    def _read_remote(self) -> dict | None:
        try:
            data = self._fs.cat_file(self._path)
        except FileNotFoundError:
            return None
        try:
            doc = json.loads(data.decode("utf-8"))
            return doc if isinstance(doc, dict) else {}
        except ValueError:
            return {}

    def _write_remote(self) -> None:
        doc = {**self.owner, "heartbeat": _iso(_now())}
        self._fs.pipe_file(self._path, json.dumps(doc).encode("utf-8"))

    def _acquire_remote(self) -> None:
        from tfseti.io import fs as fsutil

        self._fs, root = fsutil.url_to_fs(self.out, **self.storage_options)
        self._path = f"{root.rstrip('/')}/{LOCK_NAME}"
        self._fs.invalidate_cache()
        current = self._read_remote()
        if current is not None and not self.break_lock and _holder_gone(current):
            self.log(f"{self.shown}: taking over the lock of {current.get('command')} (pid "
                     f"{current.get('pid')} on this host, which no longer runs)")
        elif current is not None and not self.break_lock:
            beat = _parse_iso(current.get("heartbeat"))
            age = (_now() - beat).total_seconds() if beat else None
            if age is None or age < STALE_AFTER_S:
                shown_age = f", last heartbeat {age:.0f} s ago" if age is not None else ""
                raise FolderLocked(locked_message(self.shown, current, shown_age))
            self.log(f"{self.shown}: taking over a lock abandoned by {current.get('command')} "
                     f"(pid {current.get('pid')} on {current.get('host')}; no heartbeat for "
                     f"{age:.0f} s)")
        elif current is not None:
            self.log(f"--break-lock: took over {self.shown} from {current.get('command')} "
                     f"(pid {current.get('pid')} on {current.get('host')})")
        self.owner = {**self._owner(), "token": uuid.uuid4().hex}
        self._write_remote()
        time.sleep(SETTLE_S)
        self._fs.invalidate_cache()
        back = self._read_remote() or {}
        if back.get("token") != self.owner["token"]:
            self.owner = None
            raise FolderLocked(locked_message(self.shown, back))
        self._stop.clear()
        self._thread = threading.Thread(target=self._heartbeat, name="folder-lock-heartbeat",
                                        daemon=True)
        self._thread.start()

    def _heartbeat(self) -> None:
        warned = False
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self._fs.invalidate_cache()
                current = self._read_remote() or {}
                if current.get("token") != self.owner["token"]:
                    if not warned:
                        self.log(f"warning: the lock of {self.shown} was taken over by "
                                 f"{current.get('command') or 'another writer'} (pid "
                                 f"{current.get('pid', '?')} on {current.get('host', '?')}); this "
                                 f"process no longer has the folder to itself")
                        warned = True
                    continue
                self._write_remote()
            except Exception as err:  # a network hiccup: the next beat tries again
                self.log(f"warning: could not refresh the lock of {self.shown}: {err}")

    def _release_remote(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        try:
            self._fs.invalidate_cache()
            current = self._read_remote() or {}
            if current.get("token") == self.owner["token"]:
                self._fs.rm_file(self._path)
        except Exception as err:
            self.log(f"warning: could not remove the lock object of {self.shown}: {err}")

    # -- public ---------------------------------------------------------------------------------
    def acquire(self) -> "FolderLock":
        """Take the lock or raise :class:`FolderLocked`; returns ``self``."""
        if self.held:
            raise RuntimeError(f"{self.shown}: lock already held by this FolderLock")
        if self.remote:
            self._acquire_remote()
        else:
            self._acquire_local()
        return self

    @property
    def held(self) -> bool:
        return self._fd is not None or (self.remote and self._thread is not None)

    def release(self) -> None:
        if not self.held:
            return
        if self.remote:
            self._release_remote()
        else:
            self._release_local()
        self.owner = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
