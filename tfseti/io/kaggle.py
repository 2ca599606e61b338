"""The competition's on-disk layout, read once here for every stage.

Layout (local folder or any fsspec URL such as ``gs://bucket/seti``)::

    train/<id[0]>/<id>.npy      one cadence per file, float16 (6, 273, 256)
    test/<id[0]>/<id>.npy
    train_labels.csv            id,target
    sample_submission.csv       id,target   (target is a placeholder)
    old_leaky_data/train_old/... , train_labels_old.csv, test_old/..., test_labels_old.csv

Axis 0 holds the six panels of an ABACAD cadence (ON = 0, 2, 4), axis 1 time, axis 2 frequency.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from dataclasses import dataclass

import numpy as np

from tfseti.io import fs as fsutil

N_PANELS, N_TIME, N_FREQ = 6, 273, 256
CADENCE_SHAPE = (N_PANELS, N_TIME, N_FREQ)
CADENCE_DTYPE = np.dtype(np.float16)
ON_PANELS = (0, 2, 4)
OFF_PANELS = (1, 3, 5)
# Resolution of the snippets (Breakthrough Listen's high-resolution GBT product): channel width
# in Hz and row duration in s (2^30 ns); one channel per row is a drift of 2.60 Hz/s.
CHANNEL_HZ = 2.7939677238464355
ROW_SECONDS = 1.073741824

# Label file of each split folder. Test labels are placeholders in sample_submission.csv.
LABEL_FILES = {
    "train": "train_labels.csv",
    "test": "sample_submission.csv",
    "train_old": "train_labels_old.csv",
    "test_old": "test_labels_old.csv",
}
LABELED_SPLITS = ("train", "train_old", "test_old")
# The old (leaky) release: its splits live in this folder of the competition folder.
OLD_DATA_DIR = "old_leaky_data"
OLD_SPLITS = ("train_old", "test_old")
# Synthetic folders (tfseti.synth) also hold the parameters of every cadence; reports and
# benchmarks score against it.
TRUTH_FILE = "truth.csv"
# 15 lowercase hex characters in the relaunched data, 12 in the old (leaky) data.
ID_PATTERN = re.compile(r"^(?:[0-9a-f]{15}|[0-9a-f]{12})$")
ID_EXPECTATION = "expected 15 lowercase hex characters (12 in old_leaky_data)"


class CadenceError(ValueError):
    """A cadence file that cannot be used; the message names the file and what was expected."""

    def __init__(self, path: str, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def plain(value):
    """A value read from a csv as Python would write it: numpy scalars become plain ints, floats
    and strings, so messages read ``target 2``, not ``target np.int64(2)``."""
    return value.item() if isinstance(value, np.generic) else value


class CadenceIdError(ValueError):
    """A cadence id that is not one: refused before it can become part of a path (an id such
    as ``../../x`` would otherwise read or write outside the data or output folder)."""


def valid_id(cadence_id) -> bool:
    """True for a Kaggle cadence id (a str of 15, or 12, lowercase hex characters)."""
    # fullmatch, not match: ``$`` also matches before a trailing newline.
    return isinstance(cadence_id, str) and ID_PATTERN.fullmatch(cadence_id) is not None


def check_ids(ids, source: str, first_line: int | None = None) -> list[str]:
    """``ids`` as a list when every one is a cadence id, else CadenceIdError (one line) naming
    ``source`` (the csv, or the option the ids came from), the first bad id and how many are bad.

    The one id check of every reader of ids (converter, snippet matching, predict, pseudo,
    explain): ids become file paths, so this runs before anything is read or written.
    ``first_line``: the csv line of ``ids[0]`` (2 after a header), so the message names the line.
    """
    ids = list(ids)
    bad = [n for n, cadence_id in enumerate(ids) if not valid_id(cadence_id)]
    if bad:
        where = f"{source} line {bad[0] + first_line}" if first_line is not None else source
        more = f" ({len(bad)} of the {len(ids)} ids are malformed)" if len(bad) > 1 else ""
        raise CadenceIdError(f"{where}: id {plain(ids[bad[0]])!r} is not a cadence id, "
                             f"{ID_EXPECTATION}{more}")
    return ids


def cadence_relpath(split: str, cadence_id: str) -> str:
    """``train/a/a1b2....npy`` for id ``a1b2...`` (always '/'-separated).

    Every Kaggle-layout path is built here, so a malformed id is refused here too
    (CadenceIdError), whichever reader forgot :func:`check_ids`.
    """
    if not valid_id(cadence_id):
        raise CadenceIdError(f"id {plain(cadence_id)!r} is not a cadence id, {ID_EXPECTATION}; "
                             f"refused as a file name under {split}/")
    return f"{split}/{cadence_id[0]}/{cadence_id}.npy"


def _all_finite(array: np.ndarray) -> bool:
    if array.dtype == CADENCE_DTYPE:
        # NaN and Inf are the float16 values whose five exponent bits are all set; testing the
        # bits is ~10x faster than np.isfinite on float16 (which matters over 100k files).
        return not np.any((array.view(np.uint16) & 0x7C00) == 0x7C00)
    return bool(np.isfinite(array).all())


def cadence_problems(array: np.ndarray, expected_shape: tuple[int, ...] = CADENCE_SHAPE) -> list[str]:
    """Everything wrong with a loaded cadence array, as sentences; empty when it is usable."""
    problems = []
    if array.dtype != CADENCE_DTYPE:
        problems.append(f"dtype is {array.dtype}, expected float16")
    if tuple(array.shape) != tuple(expected_shape):
        problems.append(f"shape is {tuple(array.shape)}, expected {tuple(expected_shape)}")
    if np.issubdtype(array.dtype, np.floating):
        if not _all_finite(array):
            n_nan = int(np.isnan(array).sum())
            n_inf = int(np.isinf(array).sum())
            problems.append(f"holds {n_nan} NaN and {n_inf} Inf values, expected only finite values")
    elif not np.issubdtype(array.dtype, np.number):
        problems.append("is not numeric")
    return problems


def _expected() -> str:
    return f"expected a .npy file holding {CADENCE_DTYPE} {CADENCE_SHAPE}"


def decode_npy(data: bytes, path: str) -> np.ndarray:
    """Parse ``.npy`` bytes (never unpickling); an unusable file raises CadenceError.

    The header is read first so that the error says what is wrong: not a ``.npy`` file at all,
    a pickled object array (refused, never unpickled), or data shorter than the header promises.
    """
    if not data:
        raise CadenceError(path, f"file is empty, {_expected()}")
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
    except ValueError as err:
        raise CadenceError(path, f"not a .npy file ({err}), {_expected()}") from None
    try:
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read_header(stream)
    except (ValueError, EOFError) as err:
        raise CadenceError(path, f"corrupt .npy header ({err}), {_expected()}") from None
    if dtype.hasobject:
        raise CadenceError(path, f"holds a pickled object array (dtype {dtype}; refused, never "
                                 f"unpickled), {_expected()}")
    n_needed = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    n_present = len(data) - stream.tell()
    if n_present < n_needed:
        raise CadenceError(path, f"truncated .npy file: {n_present} of the {n_needed} data bytes "
                                 f"its header ({dtype} {tuple(shape)}) promises are present")
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, EOFError, OSError) as err:
        raise CadenceError(path, f"corrupt .npy file ({err or type(err).__name__}), "
                                 f"{_expected()}") from None


def save_cadence(path: str, array: np.ndarray, *, fs=None) -> None:
    """Write one ``.npy`` so that it only ever appears complete under its final name.

    Local paths go through a temporary name (not ending in ``.npy``, so listings never see it)
    and ``os.replace``; object stores (gs://) publish an object only when its upload finishes, so
    the bytes are written in one piece.
    """
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    if fs is None:
        fs, path = fsutil.url_to_fs(path)
    parent = path.rsplit("/", 1)[0] if "/" in path else "."
    fs.makedirs(parent, exist_ok=True)
    if fsutil.is_local(fs):
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as handle:
            handle.write(buffer.getvalue())
        os.replace(tmp, path)
    else:
        fs.pipe_file(path, buffer.getvalue())


def load_cadence(path: str, *, fs=None, check: bool = True,
                 expected_shape: tuple[int, ...] = CADENCE_SHAPE) -> np.ndarray:
    """Load one cadence from a local path or URL. With ``check``, a bad cadence raises CadenceError."""
    if fs is None:
        fs, inner = fsutil.url_to_fs(path)
    else:
        inner = path
    try:
        with fs.open(inner, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise CadenceError(path, "file not found") from None
    array = decode_npy(data, path)
    if check:
        problems = cadence_problems(array, expected_shape)
        if problems:
            raise CadenceError(path, "; ".join(problems))
    return array


def split_root(root: str, split: str, storage_options: dict | None = None) -> str:
    """The folder holding ``split`` (its folder and csv): for the old splits
    ``root/old_leaky_data`` when ``root`` is the competition folder holding it, else ``root``."""
    if split not in OLD_SPLITS:
        return root
    fs, inner = fsutil.url_to_fs(str(root), **(storage_options or {}))
    if not fs.isdir(f"{inner.rstrip('/')}/{OLD_DATA_DIR}"):
        return root
    return fsutil.join(str(root).rstrip("/"), OLD_DATA_DIR)


@dataclass
class KaggleDataset:
    """One split of a Kaggle-layout folder: its label csv and its ``.npy`` files.

    ``root`` is the folder holding ``train/``, ``test/`` and the csv files (for the old data,
    the ``old_leaky_data`` folder). ``split`` is ``train``, ``test``, ``train_old`` or ``test_old``.
    """

    root: str
    split: str = "train"
    storage_options: dict | None = None

    def __post_init__(self):
        if self.split not in LABEL_FILES:
            raise ValueError(f"split {self.split!r} is not one of {sorted(LABEL_FILES)}")
        self.root = str(self.root).rstrip("/") or "/"
        self.fs, self._root = fsutil.url_to_fs(self.root, **(self.storage_options or {}))

    # -- paths -----------------------------------------------------------------------------
    @property
    def labels_file(self) -> str:
        return fsutil.join(self.root, LABEL_FILES[self.split])

    @property
    def labeled(self) -> bool:
        return self.split in LABELED_SPLITS

    def path(self, cadence_id: str) -> str:
        """Full path or URL of a cadence's file."""
        return fsutil.join(self.root, *cadence_relpath(self.split, cadence_id).split("/"))

    def _inner(self, cadence_id: str) -> str:
        return f"{self._root}/{cadence_relpath(self.split, cadence_id)}"

    def split_path(self, *relparts: str) -> str:
        """Full path or URL of the split folder, or of ``relparts`` inside it."""
        return fsutil.join(self.root, self.split, *relparts)

    def split_exists(self) -> bool:
        """True when the ``<split>/`` folder exists."""
        return self.fs.isdir(f"{self._root}/{self.split}")

    def walk_files(self) -> list[str]:
        """Every file under ``<split>/`` at any depth, '/'-separated and relative to it, sorted.

        Unlike ``list_files`` this also returns files at the wrong depth or with other suffixes,
        so that validation can report them.
        """
        prefix = f"{self._root}/{self.split}/"
        return sorted(p[len(prefix):] for p in self.fs.find(prefix) if p.startswith(prefix))

    def labels_exist(self) -> bool:
        """True when the split's label csv exists."""
        return self.fs.exists(f"{self._root}/{LABEL_FILES[self.split]}")

    def load_relpath(self, relpath: str, check: bool = True) -> np.ndarray:
        """Load the file at ``<split>/<relpath>`` (a ``walk_files`` entry, wherever it sits)."""
        try:
            return load_cadence(f"{self._root}/{self.split}/{relpath}", fs=self.fs, check=check)
        except CadenceError as err:
            raise CadenceError(self.split_path(*relpath.split("/")), err.problem) from None

    # -- listings ----------------------------------------------------------------------------
    def read_labels(self):
        """The split's csv as a DataFrame with columns ``id`` (str) and ``target``.

        Raises FileNotFoundError / ValueError naming the csv when it is missing or malformed.
        Values are returned as read; ``tfseti.data.validate`` reports bad ids and labels.
        """
        import pandas as pd

        inner = f"{self._root}/{LABEL_FILES[self.split]}"
        if not self.fs.exists(inner):
            raise FileNotFoundError(f"{self.labels_file}: label file not found "
                                    f"(expected the Kaggle layout under {self.root})")
        with self.fs.open(inner, "rb") as handle, warnings.catch_warnings():
            # Rows longer than the header would otherwise silently become the index.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            try:
                frame = pd.read_csv(handle, dtype={"id": str}, index_col=False)
            except pd.errors.EmptyDataError:
                raise ValueError(f"{self.labels_file}: the file is empty, expected a header line "
                                 f"'id,target' and one row per cadence") from None
            except Exception as err:  # pandas raises several parser error types
                reason = " ".join(str(err).split())
                raise ValueError(f"{self.labels_file}: cannot parse csv ({reason})") from None
        missing = {"id", "target"} - set(frame.columns)
        if missing:
            raise ValueError(f"{self.labels_file}: missing column(s) {sorted(missing)}, "
                             f"expected header 'id,target'")
        return frame[["id", "target"]]

    def list_files(self) -> dict[str, str]:
        """Map id -> inner path of every ``<split>/<x>/<id>.npy`` file present."""
        found = {}
        for inner in sorted(self.fs.glob(f"{self._root}/{self.split}/*/*.npy")):
            name = inner.rsplit("/", 1)[-1]
            found[name[: -len(".npy")]] = inner
        return found

    def ids(self) -> list[str]:
        """Ids in csv order (the order every stage uses)."""
        return list(self.read_labels()["id"])

    # -- loading -----------------------------------------------------------------------------
    def load(self, cadence_id: str, check: bool = True) -> np.ndarray:
        """Load a cadence by id; a missing or bad file raises CadenceError naming its path."""
        try:
            return load_cadence(self._inner(cadence_id), fs=self.fs, check=check)
        except CadenceError as err:
            # Name the path the user gave (``gs://...`` or local), not the filesystem-internal one.
            raise CadenceError(self.path(cadence_id), err.problem) from None
