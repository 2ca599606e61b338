"""``python -m tfseti.train --config NAME --strategy KIND [--fold K|all] [key=value ...]``.

Everything about the run is checked before anything is built: the config (keys, types, values,
combinations), then the shards (a complete shard folder: ``tfseti.io.shards.open_shard_folder``
refuses an interrupted conversion, missing, extra or resized shards; the fold exists, the cadence
shape suits the view, the input dtype suits the device; the global batch fits in every fold's
training records). A shard that cannot be read during training stops the run with one line naming
it and the byte offset; a loss that becomes NaN stops it with one line naming the fold, epoch and
step (nothing exported, the last finite backup kept). Before anything in ``--out`` is read or
written, the run takes the folder's lock (``tfseti.io.folder_lock``): a second run into the same
folder is refused with one line naming the first (``--break-lock`` for a lock whose process is
gone).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys

from tfseti.command import command
from tfseti.config import ConfigError
from tfseti.io.folder_lock import BREAK_LOCK_HELP, FolderLock, FolderLocked
from tfseti.io.shards import ShardFolderError
from tfseti.train.run_config import RunConfig, load_run_config

STRATEGIES = ("auto", "tpu", "mirrored", "multiworker", "onedevice", "cpu")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tfseti.train",
        description="Train a needle classifier on sharded cadences (one fold or all folds).")
    parser.add_argument("--config", required=True,
                        help="recipe: a shipped recipe's NAME (tfseti/recipes: cpu, cpu_demo, "
                             "k1_style, ...; configs/NAME also works) or a .toml path")
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
                             "calibration.json, report/) and train anew; without it such a run is refused")
    parser.add_argument("--break-lock", action="store_true", help=BREAK_LOCK_HELP)
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


def check_device_inputs(run: RunConfig, device_kind: str) -> None:
    """Inputs a device cannot take: TPUs have no float16 and no string tensors."""
    if device_kind == "tpu":
        if run.data.cadence_dtype == "float16":
            raise ConfigError("data.cadence_dtype", "float16 cannot be fed to a TPU; use "
                                                    "'bfloat16' (or 'float32')")
        if run.data.with_ids:
            raise ConfigError("data.with_ids", "TPUs take no string tensors; set false")


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

    folds = open_shard_folder(data_root).folds  # of the folded split: train, or train_old
    if len(folds) < 2:
        raise ConfigError("--fold", f"'all' needs shards of at least 2 folds, found {folds}")
    return folds


# The refusals (one error: line, exit 2): the config, the inputs, the run folder's lock; and the
# Refusal classes of the trainer (a strategy that cannot start, with the likely fix; an
# --init-from that does not fit; a run that went non-finite).
@command(ConfigError, FileNotFoundError, ShardFolderError, FolderLocked)
def main(argv=None) -> int:
    args = parse_args(argv)
    run = resolve_run(args)
    import tensorflow as tf

    from tfseti.io import shards as shard_lib
    from tfseti.io import staging
    from tfseti.train import strategy as strategy_lib

    strategy = strategy_lib.make_strategy(args.strategy, args.tpu)
    lock = None
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
        from tfseti.train.sources import open_extras

        extras = open_extras(run.data.extra, readable=staging.tf_readable)
        folds = _folds(run, args.fold, data_root)
        from tfseti.train.plan import check_batch

        check_batch(run, strategy, folds, folder, extras)  # before the output folder is touched
        if run.train.init_from:  # a wrong path fails now, not after the first fold
            from tfseti.train.init_from import resolve_source

            for fold in folds:
                resolve_source(run.train.init_from, fold)
        out, is_chief = _output_folder(args, run, strategy)
        # One writer per run folder, locked before anything in it is read or written: a second
        # run would delete this one's folds or resume from its live backup.
        lock = FolderLock(out.url, break_lock=args.break_lock).acquire()
        if out.remote:
            fetched = out.pull()  # a rerun continues from what the bucket holds
            print(f"outputs staged in {out.local}, mirrored to {out.url}"
                  + (f" ({fetched} files of an earlier run fetched)" if fetched else ""), flush=True)
        sync = lambda: out.push(last=("checkpoint",))  # noqa: E731  (the index after its files)
        _check_run_folder(args, run, strategy, out, folder, sync, is_chief, extras)
        from tfseti.config import resolve_config_path
        from tfseti.train import plan
        from tfseti.train.folds import train_folds

        print(plan.describe(run, strategy, folds, folder, out.url, args.strategy,
                            config_path=str(resolve_config_path(args.config)), extras=extras),
              flush=True)
        try:
            summary = train_folds(run, strategy, folds, out.local, data_root=data_root, sync=sync,
                                  extras=extras)
        except tf.errors.DataLossError as err:  # one line naming the shard, not a traceback
            paths = folder.paths + [p for source in extras for p in source.files]
            raise shard_lib.corrupt_shard_error(err, paths) from None
        report, report_failed = None, False
        if is_chief and not args.no_report:
            report = _write_report(out)
            report_failed = report is None
        if not is_chief and not args.worker_out:
            import shutil

            shutil.rmtree(out.local, ignore_errors=True)
    finally:
        if lock is not None:
            lock.release()
    for fold, auc in summary["folds"].items():
        # Undefined only for a one-class fold: non-finite scores stop training (callbacks).
        print(f"fold {fold}: best val AUC {auc:.4f}" if auc is not None and not math.isnan(auc)
              else f"fold {fold}: val AUC undefined (one class in the fold)")
        print(f"fold {fold} model: {_published(summary['models'][fold], out)} "
              f"(SavedModel: {_published(summary['saved_models'][fold], out)})")
    if "cv_auc" in summary:
        print(f"CV AUC (out-of-fold, {len(folds)} folds): {summary['cv_auc']:.4f}")
        print(f"out-of-fold predictions: {_published(os.path.join(out.local, 'oof.csv'), out)}")
    if report is not None:
        print(f"report: {_published(report, out)}")
    return 1 if report_failed else 0


def _check_run_folder(args, run: RunConfig, strategy, out, folder, sync, is_chief=True,
                      extras=()) -> None:
    """Refuse to train into a run folder whose folds were trained with another config or on
    other shards (``--overwrite``: remove those folds first); see :mod:`tfseti.train.run_folder`.
    A non-chief worker's folder is its scratch copy: the chief decides for the run, the worker
    replaces what differs in its copy (refusing there alone would leave the chief waiting)."""
    from tfseti import config as config_lib
    from tfseti.train import run_folder
    from tfseti.train import strategy as strategy_lib

    global_batch = strategy_lib.global_batch_size(run.train.batch_per_replica, strategy)
    resolved = dataclasses.replace(run, data=dataclasses.replace(run.data, batch_size=global_batch))
    removed = run_folder.check_run_folder(
        out.local, config_lib.to_dict(resolved),
        run_folder.shards_record(run.data.data, folder.manifest,
                                 [source.folder.manifest for source in extras]),
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
