"""``python -m tfseti.noisy_student``: teacher -> pseudo-labels -> student, for several rounds.

::

    python -m tfseti.noisy_student --config k2_style --student-config k2_noisy_student \\
        --data shards/train --unlabelled kaggle_dir --rounds 2 --out runs/ns --tta flips

The 2nd place's loop (hirune924): a fold ensemble predicts the unlabelled (test) set as soft
probabilities; every unlabelled record joins every fold's training with that soft label; the
student starts from the teacher's weights with stronger noise; the student becomes the next
round's teacher. Every step is one of the project's own commands, run as a child process
(output shown as it comes), each into its own folder under ``--out``:

==================  ========================================================================
``round0/``         the teacher: ``python -m tfseti.train --config C`` (or ``--teacher RUN``,
                    an existing run, not trained again)
``pseudo<k>/``      round k's pseudo-labels: ``python -m tfseti.pseudo --teacher round<k>``
``round<k>/``       a student, k >= 1: ``python -m tfseti.train --config STUDENT_CONFIG``
                    with ``data.extra = [pseudo<k-1>]`` and ``train.init_from = round<k-1>``
                    (each fold from the teacher's same fold)
``unlabelled.csv``  in the last round's folder: its predictions of the unlabelled set
``rounds.json``     the table: every round's CV (or fold) AUC, pseudo-label counts, and where
                    the unlabelled set has a synthetic truth (``truth.csv``), its AUC
==================  ========================================================================

Resuming: run the same command again. A finished step is not redone (a finished fold is
skipped by the trainer, complete pseudo-labels are "nothing to do"), an interrupted training
resumes from its backup (``train.backup_every_steps`` is set to ``--backup-every`` unless the
recipe sets it), interrupted pseudo-labels start over. The settings are kept in
``noisy_student.json``; the same ``--out`` with other settings is refused. The children die with
this process (a kill of the loop does not leave a training running).

Overrides: ``key=value`` ones apply to every round (as ``tfseti.train``'s), ``--student
key=value`` to the students only (the 2nd place's stronger noise: ``model.options.dropout=0.5``),
``--last key=value`` to the last round only (their larger input size).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time

from tfseti import child
from tfseti.command import command, common_flags, run_command
from tfseti.io.atomic import finite_or_none, write_json
from tfseti.io.folder_lock import FolderLock, FolderLocked
from tfseti.io.fs import normal_location
from tfseti.pseudo.selection import FORMS, parse_selection

SETTINGS_FILE = "noisy_student.json"
TABLE_FILE = "rounds.json"
UNLABELLED_PREDICTIONS = "unlabelled.csv"
PREDICTIONS_FILE = "predictions.csv"  # what tfseti.pseudo writes: every unlabelled record


class LoopError(RuntimeError):
    """A step failed or the settings do not fit the output folder."""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tfseti.noisy_student", parents=[common_flags("no_progress", "break_lock")],
        description="Noisy-student rounds: a teacher pseudo-labels the unlabelled set, a student "
                    "trains on the labelled folds plus those pseudo-labels, and becomes the "
                    "next teacher.")
    parser.add_argument("--config", required=True, help="the teacher's recipe (as tfseti.train)")
    parser.add_argument("--student-config", default=None,
                        help="the students' recipe (default: --config)")
    parser.add_argument("--data", required=True, help="the labelled shard folder")
    parser.add_argument("--unlabelled", required=True,
                        help="the unlabelled set: Kaggle-layout folder (test/), test shard folder "
                             "or shard glob (as tfseti.pseudo --data)")
    parser.add_argument("--rounds", type=int, default=1, help="student rounds (default 1)")
    parser.add_argument("--out", required=True, help="the loop's folder (local)")
    parser.add_argument("--fold", default="all", help="'all' (default) or one fold K")
    parser.add_argument("--teacher", default=None,
                        help="an existing run folder as round 0 (not trained again)")
    parser.add_argument("--select", default="all", help=f"pseudo-labels: {FORMS}")
    parser.add_argument("--hard", action="store_true", help="pseudo-labels: hard, not soft")
    parser.add_argument("--tta", default="none", choices=("none", "flips"),
                        help="the teachers' test-time augmentation")
    parser.add_argument("--extra-ratio", type=float, default=None,
                        help="share of pseudo-labelled records in every batch (data.extra_ratio; "
                             "default: their share of all records)")
    parser.add_argument("--strategy", default="auto", help="as tfseti.train --strategy")
    parser.add_argument("--backup-every", type=int, default=50,
                        help="train.backup_every_steps when the recipe sets none (resumable "
                             "rounds; rounded up to whole executions)")
    parser.add_argument("--student", action="append", default=[], metavar="KEY=VALUE",
                        help="an override for the students only (repeatable)")
    parser.add_argument("--last", action="append", default=[], metavar="KEY=VALUE",
                        help="an override for the last round only (repeatable)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="overrides for every round (as tfseti.train)")
    return parser.parse_args(argv)


# -- the plan ---------------------------------------------------------------------------------
def settings_of(args) -> dict:
    """What decides the loop's outputs (compared with ``noisy_student.json`` on a rerun)."""
    return {"config": args.config, "student_config": args.student_config or args.config,
            "data": normal_location(args.data), "unlabelled": normal_location(args.unlabelled),
            "fold": args.fold, "teacher": normal_location(args.teacher),
            "select": str(parse_selection(args.select)),
            "hard": args.hard, "tta": args.tta, "extra_ratio": args.extra_ratio,
            "overrides": list(args.overrides), "student": list(args.student),
            "last": list(args.last)}


def _backup_override(config: str, overrides: list[str], every: int) -> list[str]:
    """``train.backup_every_steps`` for a resumable round (checks the recipe on the way)."""
    from tfseti.train.run_config import load_run_config

    run = load_run_config(config, overrides)
    if run.train.backup_every_steps:
        return []
    per_execution = run.train.steps_per_execution
    return [f"train.backup_every_steps={math.ceil(every / per_execution) * per_execution}"]


def round_overrides(args, k: int) -> list[str]:
    """The overrides of round ``k`` (0: the teacher), the loop's own after the user's."""
    overrides = list(args.overrides)
    if k > 0:
        overrides += list(args.student)
        pseudo = os.path.join(args.out, f"pseudo{k - 1}")
        overrides += [f"data.extra={json.dumps([os.path.abspath(pseudo)])}",
                      f"train.init_from={json.dumps(os.path.abspath(teacher_dir(args, k - 1)))}"]
        if args.extra_ratio is not None:
            overrides.append(f"data.extra_ratio={args.extra_ratio}")
    if k == args.rounds:
        overrides += list(args.last)
    config = args.config if k == 0 else (args.student_config or args.config)
    return overrides + _backup_override(config, overrides, args.backup_every)


def teacher_dir(args, k: int) -> str:
    if k == 0 and args.teacher:
        return args.teacher
    return os.path.join(args.out, f"round{k}")


def train_argv(args, k: int) -> list[str]:
    config = args.config if k == 0 else (args.student_config or args.config)
    return [sys.executable, "-m", "tfseti.train", "--config", config, "--strategy", args.strategy,
            "--fold", args.fold, "--data", args.data, "--out", teacher_dir(args, k), "--no-report",
            *round_overrides(args, k)]


def pseudo_argv(args, k: int) -> list[str]:
    argv = [sys.executable, "-m", "tfseti.pseudo", "--teacher", teacher_dir(args, k),
            "--data", args.unlabelled, "--out", os.path.join(args.out, f"pseudo{k}"),
            "--select", args.select, "--tta", args.tta]
    return argv + (["--hard"] if args.hard else []) + (["--no-progress"] if args.no_progress else [])


def predict_argv(args, out: str) -> list[str]:
    argv = [sys.executable, "-m", "tfseti.predict", "--model", teacher_dir(args, args.rounds),
            "--data", args.unlabelled, "--tta", args.tta, "--out", out]
    return argv + (["--no-progress"] if args.no_progress else [])


# -- running ----------------------------------------------------------------------------------
def run_step(name: str, argv: list[str]) -> float:
    """One step as a child process that dies with the loop (``tfseti.child``: no training
    outlives a killed loop)."""
    print(f"\n[noisy-student] {name}\n$ {shlex.join(argv)}", flush=True)
    start = time.perf_counter()
    returncode = child.run(argv)
    seconds = time.perf_counter() - start
    if returncode != 0:
        raise LoopError(f"step '{name}' failed with exit code {returncode} (rerun the same "
                        f"command to continue from there)")
    print(f"[noisy-student] {name}: done in {seconds:.1f} s", flush=True)
    return seconds


def round_finished(run_dir: str, fold: str) -> bool:
    """Every fold asked for is trained (and, for 'all', the CV written)."""
    from tfseti.train.run_folder import fold_finished

    if fold == "all":
        return os.path.exists(os.path.join(run_dir, "cv.json"))
    return fold_finished(os.path.join(run_dir, f"fold{int(fold)}"))


def pseudo_finished(folder: str) -> bool:
    return os.path.exists(os.path.join(folder, "manifest.json"))


def check_inputs(args) -> None:
    """Every folder the rounds read, checked as its reader will check it, before anything is
    trained or written: otherwise a bad ``--unlabelled`` surfaces only after the teacher's
    training, in the pseudo-label step."""
    from tfseti.io import shards as shard_lib
    from tfseti.predict.test_data import _is_kaggle_folder, kaggle_test_data

    try:
        shard_lib.open_shard_folder(args.data)  # what tfseti.train opens
    except (ValueError, FileNotFoundError) as err:
        raise LoopError(f"--data: {err}") from None
    try:  # as tfseti.pseudo and tfseti.predict open it (ids, files, shards; nothing read yet)
        if _is_kaggle_folder(args.unlabelled):
            kaggle_test_data(args.unlabelled)
        elif shard_lib.is_glob(args.unlabelled):
            shard_lib.glob_files(args.unlabelled)
        else:
            shard_lib.open_shard_folder(args.unlabelled).files("test")
    except (ValueError, FileNotFoundError) as err:
        raise LoopError(f"--unlabelled: {err}") from None
    if args.teacher:
        from tfseti.predict.models import resolve_model_paths

        try:
            resolve_model_paths(args.teacher)
        except (ValueError, FileNotFoundError) as err:
            raise LoopError(f"--teacher: {err}") from None


def _check_settings(out: str, settings: dict) -> None:
    path = os.path.join(out, SETTINGS_FILE)
    if os.path.exists(path):
        with open(path) as handle:
            old = json.load(handle)
        differences = [f"{key}: {old.get(key)!r} there, {value!r} now"
                       for key, value in settings.items() if old.get(key) != value]
        if differences:
            raise LoopError(f"{out} holds a noisy-student run with other settings "
                            f"({'; '.join(differences)}); choose another --out")
        return
    os.makedirs(out, exist_ok=True)
    write_json(path, settings)  # read back by every rerun: whole or absent


# -- the table --------------------------------------------------------------------------------
def _validation_auc(run_dir: str, fold: str) -> float | None:
    if fold == "all":
        path = os.path.join(run_dir, "cv.json")
        key = "cv_auc"
    else:
        path = os.path.join(run_dir, f"fold{int(fold)}", "result.json")
        key = "best_val_auc"
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return json.load(handle).get(key)


def _truth(unlabelled: str):
    """The synthetic truth of the unlabelled set (the test rows of the ``truth.csv`` of a
    tfseti.synth folder), or None (no such file: real data)."""
    from tfseti.evaluate import read_truth
    from tfseti.io.kaggle import TRUTH_FILE

    path = os.path.join(unlabelled, TRUTH_FILE)
    if "://" in unlabelled or not os.path.exists(path):
        return None
    return read_truth(path, "test")


def unlabelled_auc(truth, predictions: str, column: str) -> float | None:
    """The AUC of ``predictions`` (every unlabelled id once) against the truth; None: no truth,
    no predictions yet, or undefined (one class). A file that does not match the truth id for id
    is an error (``tfseti.evaluate.EvaluationError``)."""
    if truth is None or not os.path.exists(predictions):
        return None
    from tfseti.evaluate import read_scores, score

    return score(truth, read_scores(predictions, truth, column))


def table(args) -> list[dict]:
    truth = _truth(args.unlabelled)
    rows = []
    for k in range(args.rounds + 1):
        pseudo = os.path.join(args.out, f"pseudo{k}")
        row = {"round": k, "role": "teacher" if k == 0 else "student",
               "run": teacher_dir(args, k),
               "validation_auc": _validation_auc(teacher_dir(args, k), args.fold)}
        if k < args.rounds:
            with open(os.path.join(pseudo, "manifest.json")) as handle:
                summary = json.load(handle)["pseudo"]
            row.update(pseudo_records=summary["chosen"], pseudo_mean_target=summary["mean_target"],
                       unlabelled_auc=unlabelled_auc(truth, os.path.join(pseudo, PREDICTIONS_FILE),
                                                     "probability"))
        else:
            row["unlabelled_auc"] = unlabelled_auc(
                truth, os.path.join(teacher_dir(args, k), UNLABELLED_PREDICTIONS), "target")
        rows.append(row)
    return rows


def format_table(rows: list[dict], fold: str) -> str:
    def cell(value, digits=4):
        return "-" if value is None else f"{value:.{digits}f}"

    what = "CV AUC" if fold == "all" else f"fold {fold} AUC"
    lines = [f"round  role     {what:>12}  unlabelled AUC  pseudo-labels (mean target)"]
    for row in rows:
        pseudo = (f"{row['pseudo_records']} ({row['pseudo_mean_target']:.3f})"
                  if "pseudo_records" in row else "-")
        lines.append(f"{row['round']:>5}  {row['role']:<7}  {cell(row['validation_auc']):>12}  "
                     f"{cell(row['unlabelled_auc']):>14}  {pseudo}")
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------------------
def run_loop(args) -> list[dict]:
    if args.rounds < 1:
        raise LoopError(f"--rounds must be >= 1, got {args.rounds}")
    if args.fold != "all":
        try:
            int(args.fold)
        except ValueError:
            raise LoopError(f"--fold: expected an integer or 'all', got {args.fold!r}") from None
    settings = settings_of(args)
    for k in range(args.rounds + 1):  # every round's recipe and overrides, checked up front
        if not (k == 0 and args.teacher):
            round_overrides(args, k)
    check_inputs(args)
    # One loop per --out: two would train the same rounds into the same folders at once.
    with FolderLock(args.out, break_lock=args.break_lock):
        _check_settings(args.out, settings)
        return _rounds(args)


def _rounds(args) -> list[dict]:
    """The rounds, in the locked ``--out`` (finished steps are skipped)."""
    for k in range(args.rounds + 1):
        run_dir = teacher_dir(args, k)
        role = "teacher" if k == 0 else "student"
        if k == 0 and args.teacher:
            print(f"[noisy-student] round 0: the teacher is {args.teacher} (not trained here)")
        elif round_finished(run_dir, args.fold):
            print(f"[noisy-student] round {k} ({role}): finished in {run_dir}, skipped")
        else:
            run_step(f"round {k}: train the {role}", train_argv(args, k))
        if k < args.rounds:
            pseudo = os.path.join(args.out, f"pseudo{k}")
            if pseudo_finished(pseudo):
                print(f"[noisy-student] round {k}: pseudo-labels in {pseudo}, skipped")
            else:
                run_step(f"round {k}: pseudo-label the unlabelled set", pseudo_argv(args, k))
        else:
            final = os.path.join(run_dir, UNLABELLED_PREDICTIONS)
            if os.path.exists(final):
                print(f"[noisy-student] round {k}: predictions in {final}, skipped")
            else:
                partial = final + ".part"
                run_step(f"round {k}: predict the unlabelled set", predict_argv(args, partial))
                os.replace(partial, final)  # present only once complete
    rows = table(args)
    write_json(os.path.join(args.out, TABLE_FILE), finite_or_none(rows))
    return rows


@command(LoopError, FileNotFoundError, ValueError, FolderLocked)  # ConfigError is a ValueError
def main(argv=None) -> int:
    args = parse_args(argv)
    rows = run_loop(args)
    print(f"\n{format_table(rows, args.fold)}\n(table: {os.path.join(args.out, TABLE_FILE)})")
    return 0


if __name__ == "__main__":
    run_command(main)
