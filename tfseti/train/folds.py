"""One fold, or every fold, of a run: the pipeline, the augmenter and the trainer put together.

``train_one_fold`` checks the fold's shards, builds the one ``Augmenter`` of the run (the
pipeline and the train step share it), trains with ``tfseti.train.trainer.fit_fold`` and writes
the fold's out-of-fold predictions. ``train_folds`` runs several folds, skips the ones a
preempted run finished, and writes the run's ``oof.csv`` and ``cv.json``, then fits the run's
calibrators (one per TTA mode) on the out-of-fold predictions of every finished fold
(``calibration.json``, ``tfseti.train.calibration``). The command line
(``tfseti.train.cli``) checks the config and the run folder before it imports this module,
which is where TensorFlow comes in.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

import pandas as pd

from tfseti.config import ConfigError
from tfseti.data import pipeline
from tfseti.data.augmenter import Augmenter
from tfseti.data.views import view_shape
from tfseti.io.atomic import finite_or_none, write_json
from tfseti.io.shards import ShardFolderError, detect_compression, open_shard_folder
from tfseti.train import oof, plan, run_folder
from tfseti.train import sources as sources_lib
from tfseti.train import strategy as strategy_lib
from tfseti.train.callbacks import NonFiniteTrainingError
from tfseti.train.run_config import RunConfig
from tfseti.train.trainer import fit_fold


def train_one_fold(run: RunConfig, strategy, out_dir: str, verbose="auto", data_root=None,
                   after_backup=None, extras=None):
    """Train ``run.train.fold`` into the local ``out_dir``; ``data_root``: where TensorFlow reads
    the shards of ``run.data.data`` (a local copy when it cannot read that URL itself);
    ``extras``: the open folders of ``run.data.extra`` (default: opened here as given)."""
    fold = run.train.fold
    global_batch = strategy_lib.global_batch_size(run.train.batch_per_replica, strategy)
    run = dataclasses.replace(run, data=dataclasses.replace(run.data, batch_size=global_batch))
    data = dataclasses.replace(run.data, data=data_root or run.data.data)
    folder = open_shard_folder(data.data)
    if extras is None:
        extras = sources_lib.open_extras(run.data.extra)
    sources = sources_lib.training_sources(folder, fold, extras, run.data.extra_ratio)
    train_files = sources.files
    val_files = folder.files("val", fold)
    shape = pipeline.cadence_shape(train_files, detect_compression(train_files[0]))
    view_shape(run.view, *shape)  # a view that needs OFF panels on ON-only shards fails here
    if run.augment.off_shuffle_p > 0 and shape[0] != 6:
        raise ConfigError("augment.off_shuffle_p", f"needs the 6-panel cadences; the shards hold "
                                                   f"{shape[0]} panels")
    steps = plan.steps_per_epoch(run.train, sources.records_per_epoch, global_batch)
    # Which shards trained this fold (compared by the run-folder check of a later run), and how
    # many records each source gave (the report's account of the training data).
    run_folder.write_shards_record(out_dir, {
        **run_folder.shards_record(run.data.data, folder.manifest,
                                   [s.folder.manifest for s in extras]),
        "sources": sources.counts()})
    augmenter = Augmenter(run.view, run.augment, run.mixup, total_steps=run.train.epochs * steps)
    # String ids cannot enter an XLA-compiled step; evaluation rows map back through `index`.
    step_data = dataclasses.replace(data, with_ids=False)
    # Built per fit from its first global step (a resumed or later-phase fit skips the batches
    # already consumed when data.deterministic).
    def train_ds(initial_step: int):
        return pipeline.distributed_train_dataset(strategy, train_files, step_data, augmenter,
                                                  initial_step=initial_step,
                                                  extra_files=sources.extra_files,
                                                  extra_ratio=sources.extra_ratio)

    # The validation ids, read before training: a record count that differs from the manifest
    # (a shard rewritten to the same size) fails here rather than after the fold.
    ids = validation_ids(val_files, data, shape)
    if len(ids) != folder.records_in(val_files):
        raise ShardFolderError(f"{data.data}: fold {fold}'s validation shards hold {len(ids)} "
                               f"records, the manifest lists {folder.records_in(val_files)} "
                               f"(tfseti verify {data.data} names the shard)")
    sources_lib.check_disjoint(extras, ids.values(), fold)
    val_ds = pipeline.distributed_eval_dataset(strategy, val_files, step_data, augmenter)
    try:
        result = fit_fold(run, strategy, augmenter, train_ds, val_ds, steps, out_dir,
                          cadence_shape=shape, verbose=verbose, after_backup=after_backup)
    except NonFiniteTrainingError as err:
        raise NonFiniteTrainingError(
            f"fold {fold}: {err} (train.learning_rate={run.train.learning_rate:g}); nothing "
            f"exported; {_backup_note(run, out_dir)}") from None
    frame = oof.fold_frame(result.predictions, ids, fold)
    frame.to_csv(os.path.join(out_dir, "oof.csv"), index=False)
    return result, frame


def _backup_note(run: RunConfig, out_dir: str) -> str:
    """What a diverged fold leaves to resume from (fit_fold never backs up a NaN state)."""
    if not run.train.backup_every_steps:
        return "no backup kept (train.backup_every_steps = 0); lower train.learning_rate and rerun"
    backup = os.path.join(out_dir, "backup")
    steps = sorted(int(name.rsplit("-", 1)[1].split(".")[0]) for name in
                   (os.listdir(backup) if os.path.isdir(backup) else ())
                   if name.startswith("ckpt-") and name.endswith(".index"))
    if not steps:
        return (f"no backup was written before it ({backup}); lower train.learning_rate "
                f"and rerun")
    return f"the last good backup (global step {steps[-1]}) is kept in {backup}"


def validation_ids(files: list[str], data, shape) -> dict[int, str]:
    """``index -> id`` of the validation records, read on the host in the eval read order."""
    ids = {}
    dataset = pipeline.eval_dataset(files, dataclasses.replace(data, with_ids=True), shape=shape)
    for batch in dataset.map(lambda b: {k: b[k] for k in ("id", "index", "mask")}):
        for cadence_id, index, real in zip(batch["id"].numpy(), batch["index"].numpy(),
                                           batch["mask"].numpy()):
            if real:
                ids[int(index)] = cadence_id.decode("utf-8")
    return ids


def finished_fold(fold_dir: str):
    """``(best val AUC, out-of-fold frame)`` of a fold a previous run completed (its outputs
    written and its backup removed), else None."""
    if not run_folder.fold_finished(fold_dir):
        return None
    with open(os.path.join(fold_dir, "result.json")) as handle:
        best = json.load(handle)["best_val_auc"]
    best = float("nan") if best is None else best  # null: undefined (older runs wrote NaN)
    return best, pd.read_csv(os.path.join(fold_dir, "oof.csv"), dtype={"id": str})


def train_folds(run: RunConfig, strategy, folds: list[int], out_dir: str, verbose="auto",
                data_root=None, sync=None, extras=None) -> dict:
    """Train each fold into the local ``out_dir/fold{k}``; with several folds also ``oof.csv``
    and the CV AUC in ``cv.json``; then ``calibration.json`` (every finished fold's out-of-fold
    rows). ``sync()`` (if given) runs after every backup and fold.
    Returns ``{"folds": {k: best val AUC}, "cv_auc": ..., "calibration": path or None, ...}``."""
    sync = sync or (lambda: None)
    summary = {"folds": {}, "models": {}, "saved_models": {}}
    frames = []
    for fold in folds:
        fold_run = dataclasses.replace(run, train=dataclasses.replace(run.train, fold=fold))
        fold_dir = os.path.join(out_dir, f"fold{fold}")
        done = finished_fold(fold_dir) if run.train.backup_every_steps else None
        if done is not None:  # a rerun after preemption: this fold completed before
            print(f"fold {fold}: already trained in {fold_dir}, skipped", flush=True)
            best_val_auc, frame = done
            paths = (os.path.join(fold_dir, "model.keras"), os.path.join(fold_dir, "saved_model"))
        else:
            result, frame = train_one_fold(fold_run, strategy, fold_dir, verbose=verbose,
                                           data_root=data_root, after_backup=sync, extras=extras)
            sync()
            best_val_auc = result.best_val_auc
            paths = (result.model_path, result.saved_model_path)
        summary["folds"][fold] = best_val_auc
        summary["models"][fold], summary["saved_models"][fold] = paths
        frames.append(frame)
    if len(folds) > 1:
        table, auc = oof.cv_auc(frames)
        table.to_csv(os.path.join(out_dir, "oof.csv"), index=False)
        summary["cv_auc"] = auc
        # Paths inside the run folder: valid wherever the folder is (a bucket, another machine).
        relative = {key: {fold: os.path.relpath(path, out_dir) for fold, path in summary[key].items()}
                    for key in ("models", "saved_models")}
        # Atomic and strict JSON: an undefined AUC (a one-class fold) is null, not a bare NaN.
        write_json(os.path.join(out_dir, "cv.json"), finite_or_none({**summary, **relative}))
        sync()
    summary["calibration"] = _calibrate(out_dir, data_root or run.data.data, run.train.calibrate)
    sync()
    return summary


def _calibrate(out_dir: str, shards: str, modes) -> str | None:
    """Fit the run's calibrators on the out-of-fold predictions of every finished fold in
    ``out_dir`` (``tfseti.train.calibration``; ``shards``: the TensorFlow-readable shard folder,
    for the flip-TTA predictions of the validation folds); its path, or None when none was
    written. A refused fit is reported and leaves the run uncalibrated: the trained folds stay
    complete."""
    from tfseti.train.calibration import CALIBRATION_FILE, calibrate_run

    try:
        doc = calibrate_run(out_dir, shards, modes, log=lambda line: print(line, flush=True))
    except (ValueError, OSError) as err:  # CalibrationError, RunFolderError, a shard problem
        run_folder.remove_present(out_dir, [CALIBRATION_FILE])
        print(f"error: calibration: {err} (the trained folds are complete; predictions stay "
              f"uncalibrated)", file=sys.stderr, flush=True)
        return None
    return None if doc is None else os.path.join(out_dir, CALIBRATION_FILE)
