"""Files that are read back appear whole or not at all: written under a temporary name in the
same folder, flushed to disk, then moved over the final name with ``os.replace`` (atomic on one
filesystem). A process killed mid-write leaves the old file (or none) and a ``*.tmp`` leftover that
no reader looks at; never a truncated file or one padded with NUL bytes.

JSON is written strictly: ``NaN`` and ``Infinity`` are not JSON, and a bare ``NaN`` in a results
file breaks every strict reader downstream, so a non-finite number refuses the write
(:class:`NonFiniteError`, naming the file and the key) unless the caller turned it into ``null``
first (:func:`finite_or_none`).

Local paths only: remote outputs are staged in a local folder first (``tfseti.io.staging``).
Standard library only.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from contextlib import contextmanager


class NonFiniteError(ValueError):
    """A number that must be finite is not; the message names where it is."""


@contextmanager
def atomic_open(path: str, mode: str = "w", encoding: str | None = "utf-8", newline=None):
    """``with atomic_open(path) as handle: ...``: the file appears under ``path`` only when the
    block finishes without an exception (an exception leaves the old file untouched)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, **({} if binary else {"encoding": encoding, "newline": newline})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def write_text(path: str, text: str) -> None:
    """``text`` exactly as given (no newline translation), written atomically."""
    with atomic_open(path, "w", newline="") as handle:
        handle.write(text)


def write_bytes(path: str, data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def _first_non_finite(value, where: str = "") -> str | None:
    """The dotted key of the first non-finite float inside ``value`` (None when all are finite)."""
    if isinstance(value, float):
        return None if math.isfinite(value) else (where or "(top level)")
    if isinstance(value, dict):
        for key, item in value.items():
            found = _first_non_finite(item, f"{where}.{key}" if where else str(key))
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _first_non_finite(item, f"{where}[{index}]")
            if found:
                return found
    return None


def finite_or_none(value):
    """``value`` with every non-finite float replaced by ``None`` (JSON ``null``), recursively:
    for fields where "undefined" is a legitimate answer (an AUC of a one-class fold)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(item) for item in value]
    return value


def dumps_json(doc, shown: str = "JSON document", default=None, indent: int | None = 2) -> str:
    """Strict JSON text of ``doc``: a non-finite float raises :class:`NonFiniteError` naming
    ``shown`` and the key."""
    try:
        return json.dumps(doc, indent=indent, allow_nan=False, default=default) + "\n"
    except ValueError as err:
        if "JSON compliant" not in str(err):
            raise
        # Find the key for the message (numpy floats reach here through ``default``).
        plain = json.loads(json.dumps(doc, allow_nan=True, default=default))
        key = _first_non_finite(plain) or "?"
        raise NonFiniteError(f"{shown}: {key} is not a finite number; refusing to write "
                             f"NaN/Infinity into JSON") from None


def write_json(path: str, doc, default=None, indent: int | None = 2) -> None:
    """``doc`` as strict JSON (see :func:`dumps_json`), written atomically."""
    write_text(path, dumps_json(doc, shown=os.fspath(path), default=default, indent=indent))
