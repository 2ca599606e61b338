"""Noisy student on the detection benchmark: do pseudo-labelled test cadences help the model?

    python -m benchmarks.noisy_student --data-from runs/detection [--out runs/noisy_student] \\
        [--rounds 2] [--extra-ratio 0.5] [--student-epochs 4] [key=value ...]
    python -m benchmarks.noisy_student --data-from /tmp/det --out /tmp/ns --student-epochs 1
        # on a `detection.py --tiny` run: the plumbing only

Takes a finished ``benchmarks/detection.py`` run (``--data-from``): its train shards, its test set
(every needle family, two of them absent from training; the truth is read only to score) and its
trained fold-0 model as the teacher (round 0). Then, with ``python -m tfseti.noisy_student`` as a
user would run it:

1. the teacher predicts the test set (``--tta``, default flips as in the detection benchmark);
   every test cadence becomes a training record with that probability as its soft target (2nd
   place: all test rows, soft labels; ``--select`` / ``--hard`` choose otherwise);
2. a student starts from the teacher's weights (``train.init_from``) with stronger noise
   (``model.options.dropout``, default 0.5 where the teacher had none) and trains on folds 1-4 plus
   the pseudo-labelled test cadences (``--extra-ratio`` of every batch), fold 0 validating;
3. the student becomes the teacher of the next round (``--rounds``).

The settings are fixed before the test set is looked at (nothing is tuned here). This is
transductive, as on Kaggle: the students see the unlabelled test cadences they are scored on
(never their labels). The table: every round's test AUC overall, per family and per SNR bin,
with the difference to the teacher (round 0) and its 95 % paired-bootstrap interval, and the
classical search's best score beside them. ``results.json`` in ``--out`` holds the rows.
Killing this script (or the loop) and running the same command again continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from benchmarks import detection  # the detection benchmark's data, truth and table
from tfseti import evaluate
from tfseti.command import command
from tfseti.demo import Stage, run_stage
from tfseti.io.atomic import write_json
from tfseti.io.folder_lock import FolderLock, FolderLocked

TEACHER = "teacher"
CLASSICAL = "two_of_three"   # the classical score the detection benchmark found strongest


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.noisy_student",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--data-from", required=True, metavar="DIR",
                        help="a finished benchmarks/detection.py run (data, shards, teacher)")
    parser.add_argument("--out", default="runs/noisy_student")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--select", default="all",
                        help="which test cadences are pseudo-labelled (tfseti.pseudo --select; "
                             "default all: the 2nd place's choice)")
    parser.add_argument("--hard", action="store_true", help="hard pseudo-labels, not soft")
    parser.add_argument("--tta", choices=("none", "flips"), default="flips",
                        help="the teachers' test-time augmentation for pseudo-labels and scores "
                             "(flips: the detection benchmark's; see docs/prediction.md on calibration)")
    parser.add_argument("--extra-ratio", type=float, default=0.5,
                        help="share of pseudo-labelled test cadences in every batch")
    parser.add_argument("--student-epochs", type=int, default=4)
    parser.add_argument("--dropout", type=float, default=0.5, help="the students' dropout")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--shot", action="store_true",
                        help="also adapt the teacher with SHOT (python -m tfseti.adapt) and score it")
    parser.add_argument("--shot-epochs", type=int, default=3)
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="more overrides for the students (tfseti.train)")
    return parser.parse_args(argv)


def detection_run(data_from: str) -> detection.Settings:
    """The finished detection run's settings (its recipe and overrides: the teacher's)."""
    values = detection.data_settings(data_from)
    theirs = json.loads((Path(data_from) / "settings.json").read_text())
    run = detection.Settings(out=data_from, config=theirs["config"], data_from=data_from,
                             overrides=tuple(theirs.get("overrides") or ()), **values)
    if not (run.run_dir / f"fold{detection.VAL_FOLD}" / "saved_model").is_dir():
        raise SystemExit(f"--data-from {data_from}: no trained fold {detection.VAL_FOLD} in "
                         f"{run.run_dir}")
    return run


def loop_stage(args, run: detection.Settings, loop_dir: Path) -> Stage:
    student = [f"train.epochs={args.student_epochs}", f"model.options.dropout={args.dropout}",
               *args.overrides]
    argv = [sys.executable, "-m", "tfseti.noisy_student", "--config",
            detection.config_path(run.config), "--data", str(run.shards),
            "--unlabelled", str(run.test_data), "--teacher", str(run.run_dir),
            "--fold", str(detection.VAL_FOLD), "--rounds", str(args.rounds), "--out", str(loop_dir),
            "--tta", args.tta, "--extra-ratio", str(args.extra_ratio), "--strategy", "cpu",
            "--select", args.select, *(["--hard"] if args.hard else []),
            "--no-progress", f"train.seed={run.seed}", *run.overrides]  # as the teacher was trained
    for override in student:
        argv += ["--student", override]
    return Stage(f"noisy student: {args.rounds} round(s) from {run.run_dir}", argv)


def shot_stages(args, run: detection.Settings, out: Path) -> list[Stage]:
    """SHOT on the teacher, its mean prediction pulled to the train set's positive rate (known
    from the labelled data), then its flip-TTA predictions of the test set."""
    py = [sys.executable, "-m"]
    return [
        Stage("SHOT: adapt the teacher to the test set", py + [
            "tfseti.adapt", "--model", str(run.run_dir / f"fold{detection.VAL_FOLD}"),
            "--unlabelled", str(run.test_data), "--out", str(out / "shot"),
            "--epochs", str(args.shot_epochs), "--prior", str(run.positive_rate),
            "--seed", str(run.seed), "--overwrite"]),
        Stage(f"SHOT: predict the test set (TTA {args.tta})", py + [
            "tfseti.predict", "--model", str(out / "shot"), "--data", str(run.test_data),
            "--tta", args.tta, "--out", str(out / "shot_predictions.csv.part"), "--no-progress"]),
    ]


def run_shot(stages: list[Stage], out: Path) -> float:
    """The SHOT stages, each skipped when a rerun finds its output complete."""
    seconds = 0.0
    adapted, predictions = out / "shot" / f"fold{detection.VAL_FOLD}" / "adapt.json", \
        out / "shot_predictions.csv"
    for index, (stage, done) in enumerate(zip(stages, (adapted, predictions)), 2):
        if done.exists():
            print(f"[{index}/{len(stages) + 1}] {stage.name}: done before ({done}), skipped")
            continue
        seconds += run_stage(index, len(stages) + 1, stage)
        if done == predictions:
            (out / "shot_predictions.csv.part").replace(predictions)  # complete, or absent
    return seconds


def round_scores(loop_dir: Path, rounds: int, truth) -> dict:
    """``{round: test probabilities in truth order}`` (round 0: the teacher)."""
    out = {}
    for k in range(rounds + 1):
        if k < rounds:
            path, column = loop_dir / f"pseudo{k}" / "predictions.csv", "probability"
        else:
            path, column = loop_dir / f"round{k}" / "unlabelled.csv", "target"
        out[k] = evaluate.read_scores(path, truth, column)
    return out


@command(FolderLocked)
def main(argv=None) -> int:
    args = parse_args(argv)
    run = detection_run(args.data_from)
    out = Path(args.out)
    with FolderLock(str(out)):   # one writer per benchmark folder
        return measure(args, run, out)


def measure(args: argparse.Namespace, run, out: Path) -> int:
    loop_dir = out / "loop"
    stage = loop_stage(args, run, loop_dir)
    start = time.perf_counter()
    extra = shot_stages(args, run, out) if args.shot else []
    seconds = run_stage(1, 1 + len(extra), stage)
    shot_seconds = run_shot(extra, out) if extra else 0.0

    chosen = json.loads((Path(args.data_from) / "results.json").read_text())["classical_background"]
    truth, detection_scores = detection.score_table(run, chosen)
    classical = detection_scores[CLASSICAL]
    per_round = round_scores(loop_dir, args.rounds, truth)
    loop_rows = json.loads((loop_dir / "rounds.json").read_text())
    results = {"settings": {**vars(args), "teacher": str(run.run_dir), "argv": stage.argv,
                            "loop_seconds": seconds, "total_seconds": time.perf_counter() - start},
               "rounds": loop_rows, "tables": {}}
    print("\n== noisy student on the detection benchmark ==")
    print(f"test set: {len(truth)} cadences ({int(truth.target.sum())} needles); teacher "
          f"{run.run_dir}; {args.rounds} round(s), students {args.student_epochs} epochs, dropout "
          f"{args.dropout}, pseudo-labels {args.select}{' hard' if args.hard else ''} (TTA "
          f"{args.tta}), their share "
          f"{args.extra_ratio}; loop wall time {seconds:.0f} s")
    for row in loop_rows:
        print(f"round {row['round']} ({row['role']}): fold-0 validation AUC "
              f"{evaluate.fmt(row['validation_auc'])}")
    for k in range(1, args.rounds + 1):
        scores = {detection.MODEL: per_round[k], TEACHER: per_round[0], CLASSICAL: classical}
        rows = detection.compare(truth, scores, args.bootstrap, run.seed)
        results["tables"][f"round{k}"] = rows
        print(f"\nround {k} student ('model') against the teacher (round 0) and the classical "
              f"{CLASSICAL}:")
        print(detection.format_table(rows, list(scores)))
    if args.shot:
        shot = evaluate.read_scores(out / "shot_predictions.csv", truth)
        scores = {detection.MODEL: shot, TEACHER: per_round[0], CLASSICAL: classical}
        rows = detection.compare(truth, scores, args.bootstrap, run.seed)
        results["tables"]["shot"] = rows
        results["settings"]["shot_seconds"] = shot_seconds
        adapt = json.loads((out / "shot" / f"fold{detection.VAL_FOLD}" / "adapt.json").read_text())
        results["shot_history"] = adapt["history"]
        print(f"\nSHOT ('model': {args.shot_epochs} epochs, prior {run.positive_rate}, "
              f"{shot_seconds:.0f} s) against the teacher and the classical {CLASSICAL}:")
        print(detection.format_table(rows, list(scores)))
    write_json(str(out / "results.json"), results, default=str)
    print(f"\nresults: {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
