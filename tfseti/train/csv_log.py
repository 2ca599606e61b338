"""``log.csv``: one row per epoch, in the columns and format of ``keras.callbacks.CSVLogger``
(``epoch`` then the sorted log keys, ``val_`` copies when there are none, CSV excel dialect), so
the run report (``tfseti.report.runs``) and the resume (``tfseti.train.resume.truncate_csv_log``)
read it as before.

Why not Keras's CSVLogger: it appends to an open file and flushes a row at a time. A process
killed mid-row leaves half a row, and two processes appending to one file (two runs in one
``--out``) interleave and pad it with NUL bytes; the report then fails on it. Here the whole file
is rewritten atomically (``tfseti.io.atomic``) at every epoch end: a reader, or the resume after
a kill, sees the previous epoch's complete file or this one's, never a torn one.
"""

from __future__ import annotations

import collections
import csv
import io
import os

import keras
import numpy as np

from tfseti.io.atomic import atomic_open


def _cell(value):
    """A log value as Keras's CSVLogger writes it (1-D iterables as a quoted list)."""
    if isinstance(value, str):
        return value
    if isinstance(value, collections.abc.Iterable) and not (
            isinstance(value, np.ndarray) and value.ndim == 0):
        return f'"[{", ".join(map(str, value))}]"'
    return value


class AtomicCSVLogger(keras.callbacks.Callback):
    """Keras's ``CSVLogger(path, append=append)``, but every epoch rewrites the file whole.

    ``append``: keep the rows already in ``path`` (a resumed fold, a later training phase); the
    header is written only when the file is absent or empty, as Keras does."""

    def __init__(self, path: str, append: bool = False):
        super().__init__()
        self.path = os.fspath(path)
        self.append = append
        self._before = ""       # the file as this fit found it (append) or nothing
        self._rows = io.StringIO()
        self._writer = None
        self._keys = None

    def on_train_begin(self, logs=None):
        self._before = ""
        if self.append and os.path.exists(self.path):
            with open(self.path, newline="") as handle:
                self._before = handle.read()
        self._rows = io.StringIO()
        self._writer = None
        self._keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._keys is None:
            self._keys = sorted(logs.keys())
            if self._keys and not any(key.startswith("val_") for key in self._keys):
                self._keys += [f"val_{key}" for key in self._keys]
        if self._writer is None:
            self._writer = csv.DictWriter(self._rows, fieldnames=["epoch"] + self._keys,
                                          dialect=csv.excel)
            if not self._before.strip():
                self._before = ""
                self._writer.writeheader()
        row = {"epoch": epoch}
        row.update((key, _cell(logs.get(key, "NA"))) for key in self._keys)
        self._writer.writerow(row)
        with atomic_open(self.path, "w", newline="") as handle:  # the csv module's \r\n as is
            handle.write(self._before + self._rows.getvalue())
