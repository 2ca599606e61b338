"""The small files of a training run folder, read and checked once for every stage that reads them
(the report, ``tfseti.explain``, stacking in ``tfseti.predict``): text, JSON objects, CSV tables
and the out-of-fold predictions ``oof.csv``.

``oof.csv`` (written by ``tfseti.train.oof``): ``id, fold, target, score``, one row per validation
cadence, score = the fold model's positive log-odds. Every reader gets it checked the same way:
the four columns, 0/1 targets, finite scores, unique ids. Paths are fsspec ``(fs, inner)`` pairs
plus the path as the user named it (``shown``), which every error message uses.
"""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pandas as pd

# A fold folder of a run: fold0, fold1, ...
FOLD_DIR = re.compile(r"^fold(\d+)$")
OOF_FILE = "oof.csv"
OOF_COLUMNS = ("id", "fold", "target", "score")


class RunFolderError(ValueError):
    """A run folder file is missing or malformed; the message names the file and what was expected."""


def read_text(fs, inner: str, shown: str) -> str:
    try:
        with fs.open(inner, "rb") as handle:
            return handle.read().decode("utf-8")
    except FileNotFoundError:
        raise RunFolderError(f"{shown}: not found") from None


def read_json(fs, inner: str, shown: str) -> dict:
    """A JSON object (a list or scalar at the top is an error)."""
    text = read_text(fs, inner, shown)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise RunFolderError(f"{shown}: not valid JSON ({err})") from None
    if not isinstance(doc, dict):
        raise RunFolderError(f"{shown}: expected a JSON object, got {type(doc).__name__}")
    return doc


def read_csv(fs, inner: str, shown: str, dtype=None) -> pd.DataFrame:
    text = read_text(fs, inner, shown)
    try:
        return pd.read_csv(io.StringIO(text), dtype=dtype)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        reason = " ".join(str(err).split())
        raise RunFolderError(f"{shown}: cannot parse csv ({reason})") from None


def read_oof(fs, inner: str, shown: str) -> pd.DataFrame:
    """An ``oof.csv``, checked: the four columns, 0/1 targets, finite scores, unique ids."""
    frame = read_csv(fs, inner, shown, dtype={"id": str})
    missing = [c for c in OOF_COLUMNS if c not in frame.columns]
    if missing:
        raise RunFolderError(f"{shown}: missing column(s) {missing}, expected header "
                             f"'{','.join(OOF_COLUMNS)}'")
    frame = frame[list(OOF_COLUMNS)]
    if frame.empty:
        raise RunFolderError(f"{shown}: no rows, expected one row per validation cadence")
    if not frame["target"].isin([0, 1]).all():
        bad = frame.loc[~frame["target"].isin([0, 1]), "target"].iloc[0]
        raise RunFolderError(f"{shown}: target value {str(bad)!r}, expected 0 or 1")
    scores = pd.to_numeric(frame["score"], errors="coerce")
    if not np.isfinite(scores).all():
        raise RunFolderError(f"{shown}: score column holds non-numeric or non-finite values, "
                             f"expected finite log-odds")
    duplicated = frame["id"][frame["id"].duplicated()]
    if len(duplicated):
        raise RunFolderError(f"{shown}: id {duplicated.iloc[0]!r} appears more than once")
    return frame.assign(target=frame["target"].astype(np.int64), score=scores.astype(np.float64))
