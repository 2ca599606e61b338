"""Local paths and fsspec URLs (gs://, memory://, ...) through one interface."""

from __future__ import annotations

import os
import posixpath

import fsspec


def configure_gcs_emulator() -> None:
    """Make gcsfs usable against a GCS emulator named by ``STORAGE_EMULATOR_HOST``.

    gcsfs probes every bucket for a hierarchical namespace over gRPC, which an emulator does not
    serve: each bucket access then waits 60 s for the probe to time out. The probe is only
    switched off when an emulator is in use and the user has not chosen otherwise.
    """
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")


def is_url(path: str) -> bool:
    """True for ``scheme://...`` paths other than ``file://``."""
    path = os.fspath(path)
    return "://" in path and not path.startswith("file://")


def url_to_fs(path: str, **storage_options) -> tuple[fsspec.AbstractFileSystem, str]:
    """Return ``(filesystem, path inside it)`` for a local path or an fsspec URL."""
    path = os.fspath(path)
    if path.startswith("gs://") or path.startswith("gcs://"):
        configure_gcs_emulator()
    return fsspec.core.url_to_fs(path, **storage_options)


def normal_location(path: str | None) -> str | None:
    """One spelling of a location, for comparing settings between runs: a URL without its
    trailing '/', a local path made absolute (an empty or None path as it is)."""
    if not path:
        return path
    path = os.fspath(path)
    return path.rstrip("/") if is_url(path) else os.path.abspath(path)


def join(base: str, *parts: str) -> str:
    """Join path parts with '/' for URLs and the OS separator for local paths."""
    base = os.fspath(base)
    if is_url(base):
        return posixpath.join(base, *parts)
    return os.path.join(base, *parts)


def unstrip(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """Turn a path inside ``fs`` back into a URL usable by any reader (``gs://b/k`` or local)."""
    return fs.unstrip_protocol(path) if not is_local(fs) else path


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    """True for the local filesystem."""
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")
