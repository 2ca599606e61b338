"""Real observations: filterbank (``.fil``) and HDF5 (``.h5``) files and the six-file ABACAD
cadences ``tfseti.scan`` searches.

Headers are read with blimpy (``blimpy.io.file_wrapper.open_file`` with ``load_data=False``:
SIGPROC headers of ``.fil``, the ``data`` dataset's attributes of Breakthrough Listen ``.h5``).
Data are read by **channel index** straight from the file (one read per integration of the
``.fil`` payload, an ``h5py`` slice of the ``.h5`` dataset with ``hdf5plugin`` loaded for bitshuffle):
blimpy's own partial reads select by frequency in MHz and round to channels, and a window plan
must not gain or lose a channel to rounding. Only the channel range asked for is read, so a file
of several GB is searched a block of channels at a time (``ObservationCadence.read``).

A cadence (:func:`open_cadence`) is six files in ABACAD order (ON files 1st, 3rd, 5th). The six
headers must agree on ``nchans``, ``foff`` and ``fch1`` (same channels), ``tsamp`` and ``nifs``
(1: one Stokes-I spectrum per integration); ``tstart`` must increase along the list; the
``source_name`` s must fit the order (the three ON files share one name, no OFF file has it) unless
all six carry the same name, which says nothing (noted). A cadence whose files hold different
numbers of integrations is cut to the shortest (noted); the slew between files is then the
median start-to-start time (``tstart``) minus the integrations used, so the cadence clock stays the
files' own. Any mismatch is one ``ObservationError`` naming the file and the header field.

Frequencies: channel ``i`` of a file is at ``fch1 + i * foff`` MHz (Breakthrough Listen files have
``foff < 0``: channel 0 is the highest frequency). Everything downstream works in channel
indices and converts with :meth:`ObservationCadence.freq_mhz`.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

SUFFIXES = (".fil", ".h5")
PANELS = 6
ON_FILES = (0, 2, 4)
SECONDS_PER_DAY = 86400.0
# Relative tolerance for header floats that must agree between the six files.
HEADER_RTOL = 1e-9


class ObservationError(ValueError):
    """A file or cadence that cannot be searched: the message names the file and the field."""


@dataclass
class ObservationFile:
    """One ``.fil`` / ``.h5`` file, its header and channel-range reads of its first IF."""

    path: str
    header: dict
    rows: int                   # integrations in the file
    nchans: int
    dtype: np.dtype = np.dtype(np.float32)             # of the stored values
    _data: object = field(repr=False, default=None)    # the h5py dataset (h5)
    _h5: object = field(repr=False, default=None)
    _fil: tuple | None = field(repr=False, default=None)   # (data offset, bytes per integration)
    _handle: object = field(repr=False, default=None)

    @property
    def fch1(self) -> float:
        return float(self.header["fch1"])

    @property
    def foff(self) -> float:
        return float(self.header["foff"])

    @property
    def tsamp(self) -> float:
        return float(self.header["tsamp"])

    @property
    def tstart(self) -> float | None:
        value = self.header.get("tstart")
        return None if value is None else float(value)

    @property
    def source_name(self) -> str:
        return str(self.header.get("source_name", "")).strip()

    def read(self, start: int, stop: int) -> np.ndarray:
        """Channels ``[start, stop)`` of every integration: ``(rows, stop - start)`` float32."""
        if not 0 <= start < stop <= self.nchans:
            raise ObservationError(f"{self.path}: channels [{start}, {stop}) are outside the file's "
                                   f"{self.nchans}")
        if self._fil is None:
            try:
                block = self._data[:self.rows, 0, start:stop]
            except OSError as err:   # a corrupt / truncated HDF5 chunk
                raise ObservationError(f"{self.path}: reading channels [{start}, {stop}) failed: "
                                       f"{err}") from err
            return np.asarray(block, dtype=np.float32)
        # Filterbank: one read per integration of just these channels. (A memmap would be
        # simpler, but every page it touches stays mapped into the process until it ends: a
        # scan of a 5 GB file would show 5 GB resident.)
        offset, row_bytes = self._fil
        if self._handle is None:
            self._handle = open(self.path, "rb")
        block = np.empty((self.rows, stop - start), self.dtype)
        for r in range(self.rows):
            self._handle.seek(offset + r * row_bytes + start * self.dtype.itemsize)
            if self._handle.readinto(block[r]) != block[r].nbytes:
                raise ObservationError(f"{self.path}: integration {r} ends early (truncated file?)")
        return block.astype(np.float32, copy=False)

    def close(self) -> None:
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        self._data = None


def _header_value(header: dict, key: str, path: str, kind=float):
    if key not in header:
        raise ObservationError(f"{path}: header field {key!r} is missing")
    try:
        return kind(header[key])
    except (TypeError, ValueError):
        raise ObservationError(f"{path}: header field {key!r} = {header[key]!r} is not a "
                               f"{kind.__name__}") from None


def open_observation(path: str) -> ObservationFile:
    """Open one ``.fil`` or ``.h5`` file: header via blimpy, data by channel index (not loaded)."""
    import hdf5plugin  # noqa: F401  (registers bitshuffle/LZ4 for h5py before any read)
    import h5py

    if not os.path.isfile(path):
        raise ObservationError(f"{path}: no such file")
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        raise ObservationError(f"{path}: expected a filterbank .fil or HDF5 .h5 file, got suffix "
                               f"{suffix or '(none)'!r}")
    from blimpy.io import sigproc

    if suffix == ".h5":
        if not h5py.is_hdf5(path):
            raise ObservationError(f"{path}: not an HDF5 file")
        handle = h5py.File(path, "r")
        if "data" not in handle:
            handle.close()
            raise ObservationError(f"{path}: no 'data' dataset (expected the Breakthrough Listen "
                                   f"HDF5 layout: data[nints, nifs, nchans] with the header as "
                                   f"its attributes)")
        data = handle["data"]
        header = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in data.attrs.items()}
        if data.ndim != 3:
            handle.close()
            raise ObservationError(f"{path}: dataset 'data' has shape {data.shape}, expected "
                                   f"(nints, nifs, nchans)")
        rows, nifs, nchans = data.shape
        obs = ObservationFile(path, header, rows, nchans, np.dtype(data.dtype), data, handle)
    else:
        if not sigproc.is_filterbank(path):
            raise ObservationError(f"{path}: not a SIGPROC filterbank file (no HEADER_START)")
        try:
            header = sigproc.read_header(path)
            offset = sigproc.len_header(path)
        except Exception as err:   # blimpy raises bare exceptions on broken headers
            raise ObservationError(f"{path}: unreadable filterbank header: {err}") from err
        nbits = _header_value(header, "nbits", path, int)
        dtypes = {32: np.float32, 16: np.uint16, 8: np.uint8}
        if nbits not in dtypes:
            raise ObservationError(f"{path}: header field 'nbits' = {nbits}, expected 8, 16 or 32")
        nifs = _header_value(header, "nifs", path, int)
        nchans = _header_value(header, "nchans", path, int)
        row_bytes = nifs * nchans * nbits // 8
        payload = os.path.getsize(path) - offset
        if row_bytes <= 0 or payload % row_bytes:
            raise ObservationError(f"{path}: {payload} bytes of data is not a whole number of "
                                   f"integrations of nifs={nifs} x nchans={nchans} x {nbits} bits "
                                   f"(truncated file?)")
        rows = payload // row_bytes
        obs = ObservationFile(path, header, rows, nchans, np.dtype(dtypes[nbits]),
                              _fil=(offset, row_bytes))
    for key in ("fch1", "foff", "tsamp"):
        _header_value(obs.header, key, path)
    nifs = _header_value(obs.header, "nifs", path, int) if "nifs" in obs.header else 1
    if nifs != 1 or (obs._data is not None and obs._data.shape[1] != 1):
        obs.close()
        raise ObservationError(f"{path}: header field 'nifs' = {nifs}: expected 1 (one total-power "
                               f"spectrum per integration; split polarisations/beams first)")
    if obs.foff == 0 or obs.tsamp <= 0:
        obs.close()
        raise ObservationError(f"{path}: header fields foff = {obs.foff} MHz and tsamp = "
                               f"{obs.tsamp} s: expected foff != 0 and tsamp > 0")
    if obs.rows < 1:
        obs.close()
        raise ObservationError(f"{path}: no integrations")
    return obs


@dataclass
class ObservationCadence:
    """Six open files in ABACAD order, with the facts the scan needs."""

    name: str
    files: list[ObservationFile]
    rows: int                  # integrations used per file (the shortest file's)
    gap_rows: int              # slew between consecutive files, in integrations
    notes: list[str] = field(default_factory=list)

    @property
    def paths(self) -> list[str]:
        return [f.path for f in self.files]

    @property
    def nchans(self) -> int:
        return self.files[0].nchans

    @property
    def fch1(self) -> float:
        return self.files[0].fch1

    @property
    def foff(self) -> float:
        return self.files[0].foff

    @property
    def tsamp(self) -> float:
        return self.files[0].tsamp

    @property
    def input_bytes(self) -> int:
        """Bytes of data the scan reads (all channels of ``rows`` integrations of the six)."""
        return sum(f.dtype.itemsize * self.rows * f.nchans for f in self.files)

    def freq_mhz(self, channel) -> np.ndarray:
        """Frequency (MHz) of a (fractional) channel index."""
        return self.fch1 + np.asarray(channel, dtype=np.float64) * self.foff

    def read(self, start: int, stop: int) -> np.ndarray:
        """Channels ``[start, stop)`` of the six files: ``(6, rows, stop - start)`` float32."""
        return np.stack([f.read(start, stop)[:self.rows] for f in self.files])

    def close(self) -> None:
        for f in self.files:
            f.close()


def _agree(files: list[ObservationFile], key: str, exact: bool = False) -> None:
    first = files[0]
    for other in files[1:]:
        a, b = float(first.header[key]), float(other.header[key])
        same = a == b if exact else abs(a - b) <= HEADER_RTOL * max(abs(a), abs(b), 1e-300)
        if not same:
            raise ObservationError(f"{other.path}: header field {key!r} = {b!r} differs from "
                                   f"{first.path}'s {a!r}: the six files of a cadence must cover "
                                   f"the same channels with the same integration time")


def _check_sources(files: list[ObservationFile], notes: list[str]) -> None:
    names = [f.source_name for f in files]
    if len(set(names)) == 1:
        notes.append(f"all six files name source {names[0]!r}: ON/OFF taken from the list order "
                     f"(ABACAD: files 1, 3, 5 ON)")
        return
    # The ON source: the name most of the ON positions carry (so one misplaced file is named).
    on = Counter(names[i] for i in ON_FILES).most_common(1)[0][0]
    for i, (f, name) in enumerate(zip(files, names)):
        if i in ON_FILES and name != on:
            raise ObservationError(f"{f.path}: header field 'source_name' = {name!r}, but file "
                                   f"{i + 1} of an ABACAD cadence is ON and the ON files name "
                                   f"{on!r}; list the six files in ABACAD order (ON first)")
        if i not in ON_FILES and name == on:
            raise ObservationError(f"{f.path}: header field 'source_name' = {name!r} is the ON "
                                   f"source, but file {i + 1} of an ABACAD cadence is OFF; list "
                                   f"the six files in ABACAD order (ON first)")


def open_cadence(paths: list[str], name: str | None = None) -> ObservationCadence:
    """Open and check six files in ABACAD order (see the module docstring)."""
    paths = [str(p) for p in paths]
    if len(paths) != PANELS:
        raise ObservationError(f"cadence {paths}: expected {PANELS} files (ABACAD), got {len(paths)}")
    if len(set(map(os.path.abspath, paths))) != PANELS:
        raise ObservationError(f"cadence {paths}: a file is listed twice")
    files: list[ObservationFile] = []
    try:
        for path in paths:
            files.append(open_observation(path))
        first = files[0]
        for other in files[1:]:
            if other.nchans != first.nchans:
                raise ObservationError(f"{other.path}: header field 'nchans' = {other.nchans} "
                                       f"differs from {first.path}'s {first.nchans}")
        for key in ("foff", "fch1", "tsamp"):
            _agree(files, key)
        notes: list[str] = []
        _check_sources(files, notes)
        starts = [f.tstart for f in files]
        rows = min(f.rows for f in files)
        if len({f.rows for f in files}) > 1:
            notes.append(f"the files hold {[f.rows for f in files]} integrations: all cut to {rows}")
        gap_rows = 0
        if all(s is not None for s in starts):
            for prev, cur, f in zip(starts, starts[1:], files[1:]):
                if not cur > prev:
                    raise ObservationError(f"{f.path}: header field 'tstart' = {cur!r} MJD is not "
                                           f"after the previous file's {prev!r}; list the files "
                                           f"in observing order")
            # Slew between scans: start-to-start time minus the integrations *used* (``rows``),
            # not each file's own count: every clock downstream (the search's paths, the .dat
            # frequencies) puts file p at p * (rows + gap_rows) integrations, so when the files
            # are cut to the shortest, the cut-off integrations count as slew. (Subtracting the
            # uncut counts put the files too close together: drift rates off by ~45 %.)
            gaps = [(b - a) * SECONDS_PER_DAY / first.tsamp - rows
                    for a, b in zip(starts, starts[1:])]
            gap_rows = max(0, int(round(float(np.median(gaps)))))
        else:
            notes.append("no tstart in the headers: the files are taken as back to back (no slew)")
    except BaseException:
        for f in files:
            f.close()
        raise
    label = name or os.path.splitext(os.path.basename(paths[0]))[0]
    return ObservationCadence(label, files, rows, gap_rows, notes)


def read_cadence_list(path: str) -> list[list[str]]:
    """A turboSETI-style list file: one ``.fil``/``.h5`` path per line, six per cadence in ABACAD
    order (several cadences one after another); blank lines and lines starting with ``#`` are
    skipped (a ``#`` elsewhere is part of the path); relative paths are relative to the list file."""
    if not os.path.isfile(path):
        raise ObservationError(f"{path}: no such cadence list")
    base = os.path.dirname(os.path.abspath(path))
    entries = []
    with open(path) as handle:
        for number, line in enumerate(handle, 1):
            # Only a whole line is a comment: ``#`` inside a path is part of the path (a
            # file named ``run#2/A1.h5`` must be scannable).
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            if os.path.splitext(text)[1].lower() not in SUFFIXES:
                raise ObservationError(f"{path}, line {number}: expected a .fil or .h5 path, got {text!r}")
            entries.append(text if os.path.isabs(text) else os.path.join(base, text))
    if not entries or len(entries) % PANELS:
        raise ObservationError(f"{path}: expected six files per cadence (ABACAD), got {len(entries)} "
                               f"paths")
    return [entries[i:i + PANELS] for i in range(0, len(entries), PANELS)]
