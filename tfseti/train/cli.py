"""``python -m tfseti.train --config configs/NAME --strategy KIND [--fold K|all] [key=value ...]``.

Everything about the run is checked before anything is built: the config (keys, types, values,
combinations), then the shards (a complete shard folder: ``tfseti.io.shards.open_shard_folder``
refuses an interrupted conversion, missing, extra or resized shards; the fold exists, the cadence
shape suits the view, the input dtype suits the device). A shard that cannot be read during
training stops the run with one line naming it and the byte offset.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys

from tfseti.train.config import ConfigError
from tfseti.train.run_config import RunConfig, load_run_config

STRATEGIES = ("auto", "tpu", "mirrored", "multiworker", "onedevice", "cpu")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tfseti.train",
        description="Train a needle classifier on sharded cadences (one fold or all folds).")
    parser.add_argument("--config", required=True,
                        help="recipe: configs/NAME (.toml optional) or a path")
    parser.add_argument("--strategy", default="auto", choices=STRATEGIES)
    parser.add_argument("--tpu", default=None, help="TPU name or grpc:// address; 'local' on TPU VMs")
    parser.add_argument("--fold", default=None,
                        help="validation fold K (default: train.fold), or 'all': every fold, "
                             "out-of-fold predictions and the CV AUC")
    parser.add_argument("--data", default=None, help="shard folder (overrides data.data)")
    parser.add_argument("--out", default=None,
                        help="output folder, local or gs:// (default runs/<config name>); remote "
                             "outputs are written to a local staging folder ($TFSETI_STAGING, "
                             "default <tmp>/tfseti-staging) and mirrored after every backup and fold")
    parser.add_argument("--worker-out", default=None,
                        help="multi-worker runs: where a non-chief worker writes its copy of the "
                             "outputs (default: a temporary folder, removed at the end)")
    parser.add_argument("--no-report", action="store_true",
                        help="skip the HTML run report (python -m tfseti.report) at the end")
    parser.add_argument("--overwrite", action="store_true",
                        help="when --out holds folds trained with another config (or on other "
                             "shards), remove those fold folders (and the run's cv.json, oof.csv, "
                             "report/) and train anew; without it such a run is refused")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="dotted config overrides, values as TOML literals "
                             "(train.learning_rate=3e-4 view.resize=[256,128])")
    return parser.parse_args(argv)


def resolve_run(args: argparse.Namespace) -> RunConfig:
    """The validated run config of the command line (raises ConfigError / FileNotFoundError)."""
    overrides = list(args.overrides)
    if args.fold is not None and args.fold != "all":
        try:
            fold = int(args.fold)
        except ValueError:
            raise ConfigError("--fold", f"expected an integer or 'all', got {args.fold!r}") from None
        overrides.append(f"train.fold={fold}")
    if args.data is not None:
        overrides.append(f"data.data={json.dumps(args.data)}")
    return load_run_config(args.config, overrides)


def _compression_of(path: str) -> str:
    from tfseti.io.shards import detect_compression

    return detect_compression(path) or ""


def check_device_inputs(run: RunConfig, device_kind: str) -> None:
    """Inputs a device cannot take: TPUs have no float16 and no string tensors."""
    if device_kind == "tpu":
        if run.data.cadence_dtype == "float16":
            raise ConfigError("data.cadence_dtype", "float16 cannot be fed to a TPU; use "
                                                    "'bfloat16' (or 'float32')")
        if run.data.with_ids:
            raise ConfigError("data.with_ids", "TPUs take no string tensors; set false")


def train_one_fold(run: RunConfig, strategy, out_dir: str, verbose="auto", data_root=None,
                   after_backup=None):
    """Train ``run.train.fold`` into the local ``out_dir``; ``data_root``: where TensorFlow reads
    the shards of ``run.data.data`` (a local copy when it cannot read that URL itself)."""
    import tensorflow as tf  # noqa: F401  (heavy imports only once the config is valid)

    from tfseti.data import pipeline
    from tfseti.data.augment import Augmenter
    from tfseti.data.views import view_shape
    from tfseti.io.shards import open_shard_folder
    from tfseti.train import strategy as strategy_lib
    from tfseti.train import oof
    from tfseti.train import plan, run_folder
    from tfseti.train.trainer import fit_fold

    fold = run.train.fold
    global_batch = strategy_lib.global_batch_size(run.train.batch_per_replica, strategy)
    run = dataclasses.replace(run, data=dataclasses.replace(run.data, batch_size=global_batch))
    data = dataclasses.replace(run.data, data=data_root or run.data.data)
    folder = open_shard_folder(data.data)
    train_files = folder.files("train", fold)
    val_files = folder.files("val", fold)
    shape = pipeline.cadence_shape(train_files, _compression_of(train_files[0]) or None)
    view_shape(run.view, *shape)  # a view that needs OFF panels on ON-only shards fails here
    if run.augment.off_shuffle_p > 0 and shape[0] != 6:
        raise ConfigError("augment.off_shuffle_p", f"needs the 6-panel cadences; the shards hold "
                                                   f"{shape[0]} panels")
    steps = plan.steps_per_epoch(run.train, folder.records_in(train_files), global_batch)
    # Which shards trained this fold (compared by the run-folder check of a later run).
    run_folder.write_shards_record(out_dir, run_folder.shards_record(run.data.data,
                                                                     folder.manifest))
    augmenter = Augmenter(run.view, run.augment, run.mixup, total_steps=run.train.epochs * steps)
    # String ids cannot enter an XLA-compiled step; evaluation rows map back through `index`.
    step_data = dataclasses.replace(data, with_ids=False)
    # Built per fit from its first global step (a resumed or later-phase fit skips the batches
    # already consumed when data.deterministic).
    def train_ds(initial_step: int):
        return pipeline.distributed_train_dataset(strategy, train_files, step_data, augmenter,
                                                  initial_step=initial_step)

    # The validation ids, read before training: a record count that differs from the manifest
    # (a shard rewritten to the same size) fails here rather than after the fold.
    ids = validation_ids(val_files, data, shape)
    if len(ids) != folder.records_in(val_files):
        from tfseti.io.shards import ShardFolderError

        raise ShardFolderError(f"{data.data}: fold {fold}'s validation shards hold {len(ids)} "
                               f"records, the manifest lists {folder.records_in(val_files)} "
                               f"(python -m tfrecords_tools.verify {data.data} names the shard)")
    val_ds = pipeline.distributed_eval_dataset(strategy, val_files, step_data, augmenter)
    result = fit_fold(run, strategy, train_ds, val_ds, steps, out_dir, cadence_shape=shape,
                      verbose=verbose, after_backup=after_backup)
    frame = oof.fold_frame(result.predictions, ids, fold)
    frame.to_csv(os.path.join(out_dir, "oof.csv"), index=False)
    return result, frame


def validation_ids(files: list[str], data, shape) -> dict[int, str]:
    """``index -> id`` of the validation records, read on the host in the eval read order."""
    from tfseti.data import pipeline

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
    import pandas as pd

    paths = [os.path.join(fold_dir, name) for name in ("result.json", "oof.csv")]
    if not all(os.path.exists(p) for p in paths) or os.path.exists(os.path.join(fold_dir, "backup")):
        return None
    with open(paths[0]) as handle:
        best = json.load(handle)["best_val_auc"]
    return best, pd.read_csv(paths[1], dtype={"id": str})


def train_folds(run: RunConfig, strategy, folds: list[int], out_dir: str, verbose="auto",
                data_root=None, sync=None) -> dict:
    """Train each fold into the local ``out_dir/fold{k}``; with several folds also ``oof.csv``
    and the CV AUC in ``cv.json``. ``sync()`` (if given) runs after every backup and fold.
    Returns ``{"folds": {k: best val AUC}, "cv_auc": ..., ...}``."""
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
                                           data_root=data_root, after_backup=sync)
            sync()
            best_val_auc = result.best_val_auc
            paths = (result.model_path, result.saved_model_path)
        summary["folds"][fold] = best_val_auc
        summary["models"][fold], summary["saved_models"][fold] = paths
        frames.append(frame)
    if len(folds) > 1:
        from tfseti.train import oof

        table, auc = oof.cv_auc(frames)
        table.to_csv(os.path.join(out_dir, "oof.csv"), index=False)
        summary["cv_auc"] = auc
        # Paths inside the run folder: valid wherever the folder is (a bucket, another machine).
        relative = {key: {fold: os.path.relpath(path, out_dir) for fold, path in summary[key].items()}
                    for key in ("models", "saved_models")}
        with open(os.path.join(out_dir, "cv.json"), "w") as handle:
            json.dump({**summary, **relative}, handle, indent=2)
        sync()
    return summary


def _output_folder(args, run: RunConfig, strategy):
    """``(StagedFolder of the outputs, is_chief)``. Only the chief writes the run's outputs; other
    workers of a multi-worker run train into ``--worker-out`` or a temporary folder."""
    import tempfile

    from tfseti.io.staging import StagedFolder
    from tfseti.train import strategy as strategy_lib

    is_chief, task = strategy_lib.worker_role(strategy)
    if is_chief:
        return StagedFolder(args.out or os.path.join("runs", run.name)), True
    local = args.worker_out or tempfile.mkdtemp(prefix=f"tfseti-worker{task}-")
    print(f"worker {task} (not the chief): outputs go to {local}"
          f"{'' if args.worker_out else ', removed at the end'}", flush=True)
    return StagedFolder(local), False


def _folds(run: RunConfig, fold_arg, data_root: str) -> list[int]:
    if fold_arg != "all":
        return [run.train.fold]
    from tfseti.io.shards import open_shard_folder

    folds = sorted({s.fold for s in open_shard_folder(data_root).shards
                    if s.split == "train" and s.fold >= 0})
    if len(folds) < 2:
        raise ConfigError("--fold", f"'all' needs shards of at least 2 folds, found {folds}")
    return folds


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        run = resolve_run(args)
    except (ConfigError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    import tensorflow as tf

    from tfseti.io import shards as shard_lib
    from tfseti.io import staging
    from tfseti.train import strategy as strategy_lib

    try:
        strategy = strategy_lib.make_strategy(args.strategy, args.tpu)
    except strategy_lib.StrategyError as err:  # one line with the likely fix, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        check_device_inputs(run, strategy_lib.strategy_device_kind(strategy))
        if not run.data.data:
            raise ConfigError("data.data", "no shard folder: pass --data DIR or set data.data")
        data_root = staging.tf_readable(run.data.data)
        if data_root != run.data.data:
            print(f"shards {run.data.data} fetched to {data_root} (TensorFlow cannot read that "
                  "URL itself here)", flush=True)
        folder = shard_lib.open_shard_folder(data_root)
        print(f"shards: {folder.describe()}", flush=True)
        folds = _folds(run, args.fold, data_root)
        out, is_chief = _output_folder(args, run, strategy)
        if out.remote:
            fetched = out.pull()  # a rerun continues from what the bucket holds
            print(f"outputs staged in {out.local}, mirrored to {out.url}"
                  + (f" ({fetched} files of an earlier run fetched)" if fetched else ""), flush=True)
        sync = lambda: out.push(last=("checkpoint",))  # noqa: E731  (the index after its files)
        _check_run_folder(args, run, strategy, out, folder, sync, is_chief)
        from tfseti.train import plan
        from tfseti.train.config import resolve_config_path

        print(plan.describe(run, strategy, folds, folder, out.url, args.strategy,
                            config_path=str(resolve_config_path(args.config))), flush=True)
        try:
            summary = train_folds(run, strategy, folds, out.local, data_root=data_root, sync=sync)
        except tf.errors.DataLossError as err:  # one line naming the shard, not a traceback
            raise shard_lib.corrupt_shard_error(err, folder.paths) from None
        report, report_failed = None, False
        if is_chief and not args.no_report:
            report = _write_report(out)
            report_failed = report is None
        if not is_chief and not args.worker_out:
            import shutil

            shutil.rmtree(out.local, ignore_errors=True)
    except (ConfigError, FileNotFoundError, shard_lib.ShardFolderError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for fold, auc in summary["folds"].items():
        print(f"fold {fold}: best val AUC {auc:.4f}" if not math.isnan(auc)
              else f"fold {fold}: val AUC undefined (one class in the fold)")
        print(f"fold {fold} model: {_published(summary['models'][fold], out)} "
              f"(SavedModel: {_published(summary['saved_models'][fold], out)})")
    if "cv_auc" in summary:
        print(f"CV AUC (out-of-fold, {len(folds)} folds): {summary['cv_auc']:.4f}")
        print(f"out-of-fold predictions: {_published(os.path.join(out.local, 'oof.csv'), out)}")
    if report is not None:
        print(f"report: {_published(report, out)}")
    return 1 if report_failed else 0


def _check_run_folder(args, run: RunConfig, strategy, out, folder, sync, is_chief=True) -> None:
    """Refuse to train into a run folder whose folds were trained with another config or on
    other shards (``--overwrite``: remove those folds first); see :mod:`tfseti.train.run_folder`.
    A non-chief worker's folder is its scratch copy: the chief decides for the run, the worker
    replaces what differs in its copy (refusing there alone would leave the chief waiting)."""
    from tfseti.train import config as config_lib
    from tfseti.train import run_folder
    from tfseti.train import strategy as strategy_lib

    global_batch = strategy_lib.global_batch_size(run.train.batch_per_replica, strategy)
    resolved = dataclasses.replace(run, data=dataclasses.replace(run.data, batch_size=global_batch))
    removed = run_folder.check_run_folder(
        out.local, config_lib.to_dict(resolved),
        run_folder.shards_record(run.data.data, folder.manifest),
        overwrite=args.overwrite or not is_chief,
        log=lambda line: print(line, flush=True), shown=out.url)
    if removed:
        sync()  # a remote run folder loses the removed files too


def _write_report(out) -> str:
    """The run report inside the run folder (mirrored with it); returns the local index path."""
    from tfseti.report import write_report

    print("writing the run report", flush=True)
    try:
        index = write_report(out.local, log=lambda line: print(f"  {line}", flush=True))
    except (ValueError, FileNotFoundError) as err:
        print(f"error: run report: {err}\n(the training outputs are complete; rerun "
              f"python -m tfseti.report {out.url} once fixed)", file=sys.stderr)
        return None
    out.push()
    return index


def _published(local_path: str, out) -> str:
    """Where a file written under ``out.local`` ends up (its URL for a remote run)."""
    if not out.remote:
        return local_path
    relative = os.path.relpath(local_path, out.local).replace(os.sep, "/")
    return f"{out.url}/{relative}"
