"""The networks of a training run folder and which fold held each id out.

A fold folder of ``python -m tfseti.train`` holds ``config.json`` (the resolved config: the view
and the dtype the cadences were fed in) and, once the fold finished, ``model.keras`` (the
network of the best epoch, images in, logits out). ``RUN`` is a run folder (``fold<K>/``
folders) or one fold's folder, local or a URL. ``oof.csv`` (``id, fold, target, score``; the
run's, else each fold's) says which fold's network never trained on an id: that network's score
is the out-of-fold score, and its Grad-CAM is the one that explains it.

No trainer import: the report (which the trainer runs) uses this too.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass

import pandas as pd

from tfseti.io import fs as fsutil
from tfseti.io.run_files import FOLD_DIR, OOF_COLUMNS, OOF_FILE, read_json, read_oof

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"


class ExplainError(ValueError):
    """Nothing to explain with: the message names the path or id and what was expected."""


@dataclass
class FoldNetwork:
    """One fold's network: ``folder`` (local or URL) and its resolved ``config`` dict."""

    fold: int
    folder: str
    config: dict

    @property
    def model_path(self) -> str:
        return fsutil.join(self.folder, MODEL_FILE)

    def has_model(self) -> bool:
        fs, inner = fsutil.url_to_fs(self.model_path)
        return fs.isfile(inner)

    @property
    def view(self):
        """The fold's :class:`~tfseti.data.config.ViewConfig`, from its ``config.json``."""
        from tfseti.config import ConfigError, from_dict
        from tfseti.data.config import ViewConfig

        try:
            return from_dict(ViewConfig, self.config.get("view") or {}, "view")
        except ConfigError as err:
            raise ExplainError(f"{fsutil.join(self.folder, CONFIG_FILE)}: {err}") from None

    @property
    def cadence_dtype(self) -> str:
        """The dtype the trainer fed cadences in (``data.cadence_dtype``): the view is computed
        from cadences of that dtype, as in training and validation."""
        return str((self.config.get("data") or {}).get("cadence_dtype") or "float16")

    def load(self):
        """The Keras network, loaded in safe mode (``tfseti.models.load_network``); a URL is
        copied to a temporary local file first."""
        from tfseti.models.factory import load_network

        if not self.has_model():
            raise ExplainError(f"{self.model_path}: not found (a fold writes it when it "
                               f"finishes training)")
        local, temporary = self.model_path, None
        if fsutil.is_url(self.model_path):
            temporary = tempfile.mkdtemp(prefix="tfseti-explain-")
            local = os.path.join(temporary, MODEL_FILE)
            fs, inner = fsutil.url_to_fs(self.model_path)
            fs.get_file(inner, local)
        try:
            return load_network(local)
        except (ValueError, TypeError, OSError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ExplainError(f"{self.model_path}: cannot load the network ({first})") from None
        finally:
            if temporary:
                shutil.rmtree(temporary, ignore_errors=True)


def _fold_of(config: dict, name: str) -> int:
    fold = (config.get("train") or {}).get("fold")
    if isinstance(fold, int) and not isinstance(fold, bool):
        return fold
    match = FOLD_DIR.match(name)
    return int(match.group(1)) if match else 0


def fold_folders(run_dir: str) -> list[FoldNetwork]:
    """Every fold of ``run_dir`` that has a ``config.json`` (by fold; a fold folder itself: one),
    with or without its ``model.keras``."""
    run_dir = str(run_dir).rstrip("/") or "/"
    fs, root = fsutil.url_to_fs(run_dir)
    if not fs.isdir(root):
        raise ExplainError(f"{run_dir}: no such run folder (--model expects the --out folder of "
                           f"python -m tfseti.train, or one fold<K> folder of it)")
    if fs.isfile(f"{root}/{CONFIG_FILE}"):
        config = read_json(fs, f"{root}/{CONFIG_FILE}", fsutil.join(run_dir, CONFIG_FILE))
        return [FoldNetwork(_fold_of(config, run_dir.rsplit("/", 1)[-1]), run_dir, config)]
    folds = []
    for entry in fs.ls(root, detail=False):
        name = entry.rstrip("/").rsplit("/", 1)[-1]
        inner = f"{root}/{name}"
        if FOLD_DIR.match(name) and fs.isfile(f"{inner}/{CONFIG_FILE}"):
            folder = fsutil.join(run_dir, name)
            config = read_json(fs, f"{inner}/{CONFIG_FILE}", fsutil.join(folder, CONFIG_FILE))
            folds.append(FoldNetwork(_fold_of(config, name), folder, config))
    return sorted(folds, key=lambda f: f.fold)


def find_networks(run_dir: str) -> dict[int, FoldNetwork]:
    """``{fold: network}`` of the folds of ``run_dir`` that hold a ``model.keras``; ExplainError
    when there are none."""
    folds = fold_folders(run_dir)
    networks = {f.fold: f for f in folds if f.has_model()}
    if not networks:
        found = (f"; its folds {[os.path.basename(f.folder) for f in folds]} have no {MODEL_FILE} "
                 f"(unfinished, or trained before networks were saved)" if folds
                 else f"; it holds no fold<K>/{CONFIG_FILE} either")
        raise ExplainError(f"{run_dir}: no .keras network to explain, expected "
                           f"fold<K>/{MODEL_FILE} written by python -m tfseti.train{found}")
    return networks


def out_of_fold(run_dir: str, folds: list[FoldNetwork]) -> pd.DataFrame:
    """``id, fold, target, score`` of every out-of-fold row: the run's ``oof.csv``, else the
    folds' own (an empty frame when there is none)."""
    run_dir = str(run_dir).rstrip("/") or "/"
    candidates = [fsutil.join(run_dir, OOF_FILE)]
    candidates += [fsutil.join(f.folder, OOF_FILE) for f in folds if f.folder != run_dir]
    frames = []
    for path in candidates:
        fs, inner = fsutil.url_to_fs(path)
        if not fs.isfile(inner):
            continue
        frame = read_oof(fs, inner, path)
        frames.append(frame)
        if path == candidates[0]:
            break  # the run's own: every fold's rows
    if not frames:
        return pd.DataFrame(columns=list(OOF_COLUMNS))
    return pd.concat(frames, ignore_index=True).drop_duplicates("id")
