"""``make demo``: the whole job, end to end, on embedded synthetic data.

Each stage is run through its own command-line entry point, exactly as a user would type it,
so the demo exercises the real CLIs and shows them::

    python -m tfseti.demo --out demo_out

A failing stage stops the demo with the stage named and a non-zero exit.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tfseti import child
from tfseti.command import run_command, workers_flag
from tfseti.io.kaggle import TRUTH_FILE


FOLDS = 4
# Kaggle-like needle strengths (setigen SNR): faint enough that the classical search misses some.
SNR = "10:50"
# The cpu recipe at demo size: more cadences for fewer epochs, and a quarter of its CPU time per
# cadence: the first conv at stride (1, 2) and 33 drift rates instead of 65 (half the drift
# resolution). The maps are made in the input pipeline (augment_on = "host", XLA-compiled), where
# they overlap the network's step instead of preceding it. The train step is XLA-compiled too
# (32 maps: 0.86 s against 1.01 s in TensorFlow's graph; this plain CNN has none of the depthwise
# convolutions that make XLA slow on a CPU), and batches are 16: twice the updates for about the
# same CPU time, an epoch of 1,500 cadences 64-66 s. Chosen on the validation fold (fold 0, seed
# 0; 4 epochs with XLA): batch 32 at lr 1e-3 0.9064, at lr 2e-3 0.9184, batch 16 at lr 1e-3
# 0.9315 (3 epochs: 0.9116); 5 epochs of batch 32 without XLA had validated 0.9205.
# (Half the network's width in its full-resolution stages halved its step, 0.72 s instead of
# 1.44 s for 32 maps, but the model fell behind the classical search: validation AUC 0.885, test
# 0.878 against 0.900. The first conv at stride (2, 2) validated lower too: 0.903 against 0.921
# at (1, 2).)
DEMO_EPOCHS = 4
# 2,000 cadences (1,500 train on folds 1-3).
DEMO_N_TRAIN = 2000
# The demo predicts without TTA, so only that calibrator is fitted (a flips one costs four more
# passes over the validation fold).
DEMO_OVERRIDES = (f"train.epochs={DEMO_EPOCHS}", "train.batch_per_replica=16",
                  "train.jit_compile=true", "model.options.stem_strides=[1, 2]",
                  'augment.augment_on="host"', "view.dedoppler.drifts=33",
                  'train.calibrate=["none"]')
BOOTSTRAP = 1000  # paired resamples of the test set for the intervals of the summary


@dataclass
class Stage:
    name: str
    argv: list[str]


@dataclass
class DemoPlan:
    out: Path
    n_train: int = DEMO_N_TRAIN
    n_test: int = 400
    seed: int = 0
    workers: int = 2
    stages: list[Stage] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.out / "data"

    @property
    def shards(self) -> Path:
        return self.out / "shards"

    @property
    def runs(self) -> Path:
        return self.out / "runs"

    @property
    def submission(self) -> Path:
        return self.out / "submission.csv"

    @property
    def classical(self) -> Path:
        return self.out / "dedoppler.csv"

    @property
    def report(self) -> Path:
        return self.runs / "report" / "index.html"


def build_plan(out: Path, n_train: int, n_test: int, seed: int, workers: int) -> DemoPlan:
    plan = DemoPlan(out=out, n_train=n_train, n_test=n_test, seed=seed, workers=workers)
    py = [sys.executable, "-m"]
    tfseti = py + ["tfseti.cli"]  # the `tfseti` program: its added commands (convert, verify)
    plan.stages = [
        Stage("synthesise cadences (setigen, Kaggle layout, Kaggle-like SNR 10-50)", py + [
            "tfseti.synth", "--out", str(plan.data), "--n-train", str(n_train),
            "--n-test", str(n_test), "--positive-rate", "0.5", "--snr", SNR,
            "--seed", str(seed), "--workers", str(workers), "--overwrite"]),
        Stage("validate the dataset", py + ["tfseti.data.validate", str(plan.data), "--no-progress"]),
        Stage("convert train to TFRecord shards (stratified folds)", tfseti + [
            "convert", "--data", str(plan.data), "--out", str(plan.shards / "train"),
            "--split", "train", "--folds", str(FOLDS), "--seed", str(seed), "--shard-mb", "20",
            "--workers", str(workers)]),
        # The test set is predicted from its Kaggle-layout files, as on Kaggle: no test shards
        # (converting and verifying them took 35 s of the demo and fed nothing).
        Stage("verify the train shards", tfseti + [
            "verify", str(plan.shards / "train"), "--no-progress"]),
        Stage("input pipeline: a few augmented, mixed batches of fold 0", py + [
            "tfseti.data.preview", str(plan.shards / "train"), "--fold", "0", "--view", "on",
            "--batch-size", "8", "--batches", "3"]),
        Stage(f"train the cpu recipe ({DEMO_EPOCHS} epochs) on folds 1-3, validate on fold 0, export",
              py + ["tfseti.train", "--config", "cpu", "--strategy", "cpu",
                    "--data", str(plan.shards / "train"), "--fold", "0", "--out", str(plan.runs),
                    "--no-report", *DEMO_OVERRIDES]),
        Stage("predict the test set into a Kaggle submission (calibrated, no TTA)", py + [
            "tfseti.predict", "--model", str(plan.runs), "--data", str(plan.data),
            # no TTA: on the validation fold flips lowered the cpu recipe's AUC (0.921 -> 0.911)
            # and its calibration (ECE 0.05 -> 0.08 after Platt scaling), measured for issue 29
            "--tta", "none", "--out", str(plan.submission)]),
        Stage("classical de-Doppler search on the same test set", py + [
            "tfseti.dedoppler", str(plan.data), "--split", "test", "--out", str(plan.classical),
            "--no-progress"]),
        Stage("run report: curves, ROC, AUC by needle family/SNR, waterfalls", py + [
            "tfseti.report", str(plan.runs)]),
    ]
    return plan


def run_stage(index: int, total: int, stage: Stage) -> float:
    print(f"\n[{index}/{total}] {stage.name}\n$ {shlex.join(stage.argv)}", flush=True)
    start = time.perf_counter()
    # Each stage quiets TensorFlow's start-up lines itself (tfseti.console; TFSETI_TF_LOGS=1
    # brings them back). The stage dies with the demo (tfseti.child).
    returncode = child.run(stage.argv)
    seconds = time.perf_counter() - start
    if returncode != 0:
        print(f"\ndemo: stage '{stage.name}' failed with exit code {returncode}", file=sys.stderr)
        raise SystemExit(returncode or 1)
    print(f"[{index}/{total}] done in {seconds:.1f} s", flush=True)
    return seconds


def score_test_set(plan: DemoPlan, n_boot: int = BOOTSTRAP) -> dict | None:
    """The submission and the classical search scored against the synthetic truth (real Kaggle
    test labels are hidden): ``tfseti.evaluate.compare``'s overall row (``model`` against
    ``classical``, paired-bootstrap intervals seeded with the demo's seed); None when a file is
    absent. A file that does not cover the test ids raises ``EvaluationError``."""
    truth_file = plan.data / TRUTH_FILE
    if not all(p.exists() for p in (truth_file, plan.submission, plan.classical)):
        return None
    from tfseti import evaluate

    truth = evaluate.read_truth(truth_file, "test")
    scores = {"model": evaluate.read_scores(plan.submission, truth),
              "classical": evaluate.read_scores(plan.classical, truth)}
    return evaluate.compare(truth, scores, n_boot=n_boot, seed=plan.seed, by=())[0]


def print_comparison(row: dict, n_test: int) -> None:
    from tfseti.evaluate import fmt, fmt_interval

    print(f"test AUC against the synthetic truth.csv ({n_test} cadences, SNR {SNR}; 95 % "
          f"paired-bootstrap intervals):")
    for name, what in (("model", "model (cpu recipe)"),
                       ("classical", "classical de-Doppler (two_of_three)")):
        print(f"  {what:<38} {fmt(row['auc_' + name])}  {fmt_interval(row['ci_auc_' + name])}")
    diff = row["diff_classical"]
    verdict = ("undefined (one class in the test set)" if diff is None
               else "ahead of" if diff > 0 else "NOT ahead of")
    print(f"  the model is {verdict} the classical search by {fmt(diff, signed=True)} "
          f"{fmt_interval(row['ci_diff_classical'], signed=True)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfseti.demo", description=__doc__.split("\n")[0],
                                     parents=[workers_flag("parallel workers of the synth and "
                                                           "convert stages", 2)])
    parser.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    parser.add_argument("--n-train", type=int, default=DEMO_N_TRAIN)
    parser.add_argument("--n-test", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    plan = build_plan(Path(args.out), args.n_train, args.n_test, args.seed, args.workers)
    plan.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    timings = [run_stage(i, len(plan.stages), s) for i, s in enumerate(plan.stages, 1)]
    print("\n== demo summary ==")
    for stage, seconds in zip(plan.stages, timings):
        print(f"  {seconds:7.1f} s  {stage.name}")
    print(f"  {time.perf_counter() - start:7.1f} s  total; outputs in {plan.out.resolve()}")
    result_file = plan.runs / "fold0" / "result.json"
    if result_file.exists():
        result = json.loads(result_file.read_text())
        best = result["best_val_auc"]  # null: undefined (a validation fold of one class)
        print("validation AUC (fold 0, best epoch): "
              + ("undefined (one class in the fold)" if best is None else f"{best:.4f}"))
    print(f"submission: {plan.submission.resolve()}")
    from tfseti.evaluate import EvaluationError

    try:
        row = score_test_set(plan)
    except EvaluationError as err:
        print(f"demo: cannot score the test set: {err}", file=sys.stderr)
        return 1
    if row is not None:
        print_comparison(row, args.n_test)
    print(f"report: {plan.report.resolve()}")
    return 0


if __name__ == "__main__":
    run_command(main)
