"""Read a training run folder (local path or fsspec URL) as written by ``python -m tfseti.train``.

Two layouts are accepted:

* a run of several folds: ``RUN/fold{K}/`` folders (``--fold all`` adds ``RUN/oof.csv`` and
  ``RUN/cv.json``; a single ``--fold K`` run has one ``fold{K}/`` and neither);
* one fold's own folder: ``config.json``, ``result.json``, ``oof.csv`` and ``log.csv``.

A fold folder must hold ``config.json`` (the resolved config), ``result.json`` (best val AUC,
precision, replicas) and ``oof.csv`` (``id, fold, target, score``, score = positive log-odds);
``log.csv`` (Keras's CSVLogger) is read when present.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from tfseti.io import fs as fsutil
from tfseti.io.run_files import FOLD_DIR, RunFolderError, read_csv, read_json, read_oof

FOLD_FILES = ("config.json", "result.json", "oof.csv")


@dataclass
class FoldRun:
    fold: int
    path: str                      # the fold folder (local path or URL)
    config: dict
    result: dict
    oof: pd.DataFrame              # id, fold, target, score
    log: pd.DataFrame | None       # epoch, loss, val_auc, ... (None when log.csv is absent)
    sources: dict | None = None    # training records by source (data.json), when recorded


@dataclass
class Run:
    path: str
    folds: list[FoldRun]
    oof: pd.DataFrame              # every fold's rows, each id once
    cv: dict = field(default_factory=dict)   # cv.json, when the run wrote one

    @property
    def config(self) -> dict:
        """The first fold's resolved config (folds differ in ``train.fold`` only, normally)."""
        return self.folds[0].config


def _read_fold(fs, inner: str, shown: str) -> FoldRun:
    def paths(name: str) -> tuple[str, str]:  # (path inside fs, path as the user named it)
        return f"{inner}/{name}", fsutil.join(shown, name)

    config = read_json(fs, *paths("config.json"))
    result = read_json(fs, *paths("result.json"))
    if "best_val_auc" not in result:
        raise RunFolderError(f"{paths('result.json')[1]}: no 'best_val_auc', expected the "
                             f"result.json the trainer writes")
    oof = read_oof(fs, *paths("oof.csv"))
    log_inner, log_shown = paths("log.csv")
    log = read_csv(fs, log_inner, log_shown) if fs.exists(log_inner) else None
    if log is not None and "epoch" not in log.columns:
        raise RunFolderError(f"{log_shown}: no 'epoch' column, expected Keras's CSVLogger log")
    data_inner, data_shown = paths("data.json")
    sources = read_json(fs, data_inner, data_shown).get("sources") if fs.exists(data_inner) else None
    fold = (config.get("train") or {}).get("fold")
    if not isinstance(fold, int):
        folds = sorted(set(oof["fold"].tolist()))
        fold = int(folds[0]) if len(folds) == 1 else -1
    return FoldRun(fold=fold, path=shown, config=config, result=result, oof=oof, log=log,
                   sources=sources if isinstance(sources, dict) else None)


def _is_fold_folder(fs, inner: str) -> bool:
    return all(fs.exists(f"{inner}/{name}") for name in FOLD_FILES)


def read_run(run_dir: str) -> Run:
    """The run folder ``run_dir`` (see the module doc); raises RunFolderError when it is not one."""
    run_dir = str(run_dir).rstrip("/") or "/"
    fs, root = fsutil.url_to_fs(run_dir)
    if not fs.exists(root):
        raise RunFolderError(f"{run_dir}: not found, expected a run folder written by "
                             f"python -m tfseti.train --out RUN_DIR")
    if not fs.isdir(root):
        raise RunFolderError(f"{run_dir}: is a file, expected a run folder (RUN_DIR or RUN_DIR/foldK)")
    if _is_fold_folder(fs, root):
        fold = _read_fold(fs, root, run_dir)
        return Run(path=run_dir, folds=[fold], oof=fold.oof)

    fold_dirs = []
    for entry in fs.ls(root, detail=False):
        name = entry.rstrip("/").rsplit("/", 1)[-1]
        match = FOLD_DIR.match(name)
        if match and _is_fold_folder(fs, entry.rstrip("/")):
            fold_dirs.append((int(match.group(1)), entry.rstrip("/"), name))
    if not fold_dirs:
        raise RunFolderError(
            f"{run_dir}: no training run found, expected fold<K>/ folders or the files of one "
            f"fold ({', '.join(FOLD_FILES)}) written by python -m tfseti.train --out RUN_DIR")
    folds = [_read_fold(fs, inner, fsutil.join(run_dir, name))
             for _, inner, name in sorted(fold_dirs)]
    cv_inner = f"{root}/cv.json"
    cv = read_json(fs, cv_inner, fsutil.join(run_dir, "cv.json")) if fs.exists(cv_inner) else {}
    oof_inner = f"{root}/oof.csv"
    if fs.exists(oof_inner):
        oof = read_oof(fs, oof_inner, fsutil.join(run_dir, "oof.csv"))
    else:
        oof = pd.concat([f.oof for f in folds], ignore_index=True)
        duplicated = oof["id"][oof["id"].duplicated()]
        if len(duplicated):
            raise RunFolderError(f"{run_dir}: id {duplicated.iloc[0]!r} is in the oof.csv of "
                                 f"more than one fold")
    return Run(path=run_dir, folds=folds, oof=oof, cv=cv)
