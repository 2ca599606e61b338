"""Remote folders that TensorFlow and Keras must read or write as local files.

Two reasons a ``gs://`` (or any fsspec URL) folder goes through a local copy:

* Keras checkpoints, ``log.csv``, TensorBoard events and SavedModels are written to a local
  *staging* folder and mirrored to the URL with fsspec (:class:`StagedFolder`): one upload path
  for every output, resumable, and the object store only ever holds complete files.
* TensorFlow's own GCS client (TF 2.21) always talks to ``www.googleapis.com``; it has no
  endpoint setting, so with ``STORAGE_EMULATOR_HOST`` set (the gcp-storage-emulator, local
  notebooks, tests) it cannot reach the bucket. :func:`tf_readable` then fetches the folder
  through gcsfs, which honours the emulator; against real GCS, TensorFlow reads ``gs://``
  directly and nothing is copied.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import tempfile

from tfseti.io import fs as fsutil
from tfseti.io.folder_lock import LOCK_NAME

STAGING_ENV = "TFSETI_STAGING"  # root of the local copies (default: <tmp>/tfseti-staging)


def staging_root() -> str:
    return os.environ.get(STAGING_ENV) or os.path.join(tempfile.gettempdir(), "tfseti-staging")


def _local_copy_path(url: str, root: str | None) -> str:
    # One stable folder per URL: a restarted process finds the copy it made before.
    digest = hashlib.sha256(url.rstrip("/").encode("utf-8")).hexdigest()[:12]
    name = url.rstrip("/").rsplit("/", 1)[-1] or "root"
    return os.path.join(root or staging_root(), f"{name}-{digest}")


def tensorflow_reads_natively(path: str) -> bool:
    """True where ``tf.io.gfile`` / ``tf.data`` can open ``path`` as it is: local paths, and
    ``gs://`` unless an emulator is configured (TensorFlow's GCS client cannot be pointed at one)."""
    path = os.fspath(path)
    if not fsutil.is_url(path):
        return True
    return path.startswith("gs://") and not os.environ.get("STORAGE_EMULATOR_HOST")


class StagedFolder:
    """A folder at ``url`` (local path or fsspec URL) worked on through a local path.

    For a local ``url``, ``local`` is ``url`` itself and :meth:`pull` / :meth:`push` do nothing.
    For a remote one, ``local`` is a folder under ``staging_root`` (one per URL);
    :meth:`pull` copies the remote folder down, :meth:`push` uploads what changed locally since
    the last pull/push, the files named in ``last`` after all others (an index that lists the
    rest, such as a checkpoint's ``checkpoint`` file), then removes remote files that no longer
    exist locally.
    """

    def __init__(self, url: str, staging: str | None = None):
        self.url = os.fspath(url).rstrip("/") if fsutil.is_url(url) else os.fspath(url)
        self.remote = fsutil.is_url(self.url)
        self.local = _local_copy_path(self.url, staging) if self.remote else self.url
        self._synced: dict[str, tuple[int, int]] = {}  # relative path -> (size, mtime_ns) sent

    def __repr__(self) -> str:
        return f"StagedFolder({self.url!r}, local={self.local!r})"

    def _fs(self):
        fs, root = fsutil.url_to_fs(self.url)
        return fs, root.rstrip("/")

    def _local_files(self) -> dict[str, tuple[int, int]]:
        files = {}
        for folder, _, names in os.walk(self.local):
            for name in names:
                path = os.path.join(folder, name)
                stat = os.stat(path)
                files[os.path.relpath(path, self.local).replace(os.sep, "/")] = (
                    stat.st_size, stat.st_mtime_ns)
        return files

    def _remote_files(self, fs, root: str) -> list[str]:
        if not fs.exists(root):
            return []
        # The writer's lock object (tfseti.io.folder_lock) is neither fetched nor deleted: it
        # belongs to the bucket folder, not to the staged copy.
        return [name for name in (posixpath.relpath(path, root) for path in fs.find(root))
                if name != LOCK_NAME]

    def exists(self) -> bool:
        if not self.remote:
            return os.path.isdir(self.local)
        fs, root = self._fs()
        return bool(self._remote_files(fs, root))

    def pull(self) -> int:
        """Replace the local copy with the remote folder; returns the number of files fetched
        (0 when the remote folder is empty or absent: the local copy is then emptied)."""
        if not self.remote:
            return 0
        fs, root = self._fs()
        names = self._remote_files(fs, root)
        if os.path.isdir(self.local):
            shutil.rmtree(self.local)
        os.makedirs(self.local, exist_ok=True)
        for name in names:
            target = os.path.join(self.local, *name.split("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            fs.get_file(f"{root}/{name}", target)
        self._synced = self._local_files()
        return len(names)

    def push(self, last: tuple[str, ...] = ()) -> int:
        """Upload new and changed local files, ``last`` ones after the rest, then delete remote
        files gone locally; returns the number of files uploaded."""
        if not self.remote:
            return 0
        fs, root = self._fs()
        local = self._local_files()
        changed = sorted(name for name, stat in local.items() if self._synced.get(name) != stat)
        changed.sort(key=lambda name: posixpath.basename(name) in last)  # stable: index files last
        for name in changed:
            fs.put_file(os.path.join(self.local, *name.split("/")), f"{root}/{name}")
            self._synced[name] = local[name]
        stale = [name for name in self._remote_files(fs, root) if name not in local]
        if stale:
            fs.rm([f"{root}/{name}" for name in stale])
        for name in stale:
            self._synced.pop(name, None)
        return len(changed)


def tf_readable(path: str, staging: str | None = None) -> str:
    """``path`` itself where TensorFlow can read it (see :func:`tensorflow_reads_natively`),
    else a local copy of the folder (or file) fetched with fsspec."""
    path = os.fspath(path)
    if tensorflow_reads_natively(path):
        return path
    parent, name = path.rstrip("/").rsplit("/", 1)
    if any(char in name for char in "*?["):  # a shard pattern: copy its folder
        return os.path.join(tf_readable(parent, staging), name)
    fs, inner = fsutil.url_to_fs(path)
    if fs.isfile(inner):
        target = _local_copy_path(path, staging)
        os.makedirs(target, exist_ok=True)
        local = os.path.join(target, posixpath.basename(inner))
        fs.get_file(inner, local)
        return local
    folder = StagedFolder(path, staging)
    if folder.pull() == 0:
        raise FileNotFoundError(f"{path}: no such folder (or it is empty)")
    return folder.local
