"""A local stand-in for Google Cloud Storage: ``gcp-storage-emulator`` on a loopback port.

Used by the notebooks' ``local`` mode and by the tests. ``start_emulator`` only starts the
server; ``start_local_gcs`` also points this process (and every subprocess it starts) at it::

    gcs = start_local_gcs("my-bucket", storage_dir="/tmp/work/gcs")
    # gs://my-bucket/... now goes to the emulator through gcsfs, here and in `!python -m ...`
    gcs.stop()

With ``storage_dir`` the buckets are kept on disk, so emulators started one after the other on
the same folder (one per notebook kernel) see the same objects.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field

LOOPBACK = "127.0.0.1"


def emulator_env(host: str) -> dict[str, str]:
    """The variables that send gcsfs (in this process or a subprocess) to the emulator at ``host``.

    ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT`` is read once, when gcsfs is imported: left on, every
    bucket access waits 60 s for a gRPC probe the emulator does not answer. ``FSSPEC_GS_TOKEN``
    makes fsspec use anonymous credentials instead of looking for Google ones.
    """
    return {
        "STORAGE_EMULATOR_HOST": host,
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        "FSSPEC_GS_TOKEN": "anon",
    }


@dataclass
class EmulatorServer:
    """A running emulator: ``host`` is its ``http://127.0.0.1:PORT`` endpoint."""

    host: str
    bucket: str | None
    storage_dir: str | None
    process: subprocess.Popen = field(repr=False)

    @property
    def env(self) -> dict[str, str]:
        return emulator_env(self.host)

    def url(self, *parts: str) -> str:
        """``gs://<bucket>/<parts...>``."""
        if not self.bucket:
            raise ValueError("this emulator was started without a bucket")
        return "/".join([f"gs://{self.bucket}", *parts])

    def stop(self) -> None:
        """Stop the server (idempotent); objects in ``storage_dir`` stay on disk."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _die_with_parent():
    """Linux: a function for ``preexec_fn`` that makes the emulator get SIGTERM when the thread
    that started it dies (even by SIGKILL), so a killed kernel or test leaves no server behind.

    ``prctl`` is looked up here, before the fork: the child of a threaded process must not load
    libraries."""
    if sys.platform != "linux":
        return None
    import ctypes
    import signal

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, signal.SIGTERM)


def _ready_url(host: str, bucket: str | None) -> str:
    return f"{host}/storage/v1/b/{bucket}" if bucket else f"{host}/storage/v1/b"


def start_emulator(storage_dir: str | None = None, bucket: str | None = None,
                   timeout_s: float = 60.0) -> EmulatorServer:
    """Start ``gcp-storage-emulator`` on a free loopback port and wait until it answers.

    ``storage_dir``: keep the buckets in this folder (created if missing; reused if it already
    holds some); ``None`` keeps them in memory. ``bucket``: created if it does not exist yet.
    Leaves the environment alone (see ``start_local_gcs``). Raises ``RuntimeError`` naming the
    port and the emulator's own output if it exits or does not answer within ``timeout_s``.
    """
    if importlib.util.find_spec("gcp_storage_emulator") is None:
        raise RuntimeError(f"gcp-storage-emulator is not installed in {sys.executable}: "
                           "pip install -r requirements.txt")
    port = _free_port()
    host = f"http://{LOOPBACK}:{port}"
    argv = [sys.executable, "-m", "gcp_storage_emulator"]
    if storage_dir is None:
        storage = ["--in-memory"]
    else:
        storage_dir = os.path.abspath(storage_dir)
        os.makedirs(storage_dir, exist_ok=True)
        argv += ["--data-dir", storage_dir]  # an option of the program, not of `start`
        storage = []
    argv += ["start", "--host", LOOPBACK, "--port", str(port), "--quiet", *storage]
    if bucket:
        argv += ["--default-bucket", bucket]
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               preexec_fn=_die_with_parent())
    server = EmulatorServer(host, bucket, storage_dir, process)

    def failure(what: str) -> RuntimeError:
        server.stop()
        log.seek(0)
        output = log.read().decode(errors="replace").strip()[-2000:]
        log.close()
        where = f"storage {storage_dir}" if storage_dir else "in memory"
        return RuntimeError(f"gcp-storage-emulator on {host} ({where}) {what}"
                            + (f"; its output:\n{output}" if output else ""))

    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise failure(f"exited with code {process.returncode} while starting")
        try:
            with urllib.request.urlopen(_ready_url(host, bucket), timeout=2):
                break
        except OSError:  # refused, reset, or an HTTP error (URLError is an OSError)
            if time.monotonic() > deadline:
                raise failure(f"did not answer within {timeout_s:g} s") from None
            time.sleep(0.1)
    log.close()
    return server


def start_local_gcs(bucket: str, storage_dir: str | None = None,
                    timeout_s: float = 60.0) -> EmulatorServer:
    """Start the emulator with ``bucket`` and send every ``gs://`` access of this process to it.

    Sets ``emulator_env`` in ``os.environ`` (so ``!python -m ...`` commands inherit it) and the
    anonymous gcsfs token in this process's fsspec config; the server stops when this process
    exits, or earlier with ``stop()``. Must run before gcsfs is first imported in this process.
    """
    gcsfs = sys.modules.get("gcsfs")
    if gcsfs is not None and gcsfs.GCSFileSystem.__name__ != "GCSFileSystem":
        raise RuntimeError("gcsfs was imported before the GCS emulator was configured, with its "
                           "gRPC bucket probe on (each bucket access would wait 60 s): start the "
                           "emulator before anything touches gs:// (restart the kernel)")
    server = start_emulator(storage_dir, bucket, timeout_s)
    atexit.register(server.stop)
    os.environ.update(server.env)
    import fsspec.config

    fsspec.config.conf["gs"] = {**fsspec.config.conf.get("gs", {}), "token": "anon"}
    return server
