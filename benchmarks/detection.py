"""Detection: does the trained model find needles better than the classical de-Doppler search?

    python -m benchmarks.detection [--out runs/detection] [--config cpu] [--seed 0]
    python -m benchmarks.detection --out /tmp/det --tiny      # the plumbing at toy size (no meaning)
    python -m benchmarks.detection --out runs/det_k1 --data-from runs/detection --config k1_style ...

Every stage runs through its command-line entry point, as a user would type it (``tfseti.demo``):

1. **train set** (``tfseti.synth``, seed S): ``--n-train`` cadences, 20 % positive, needles of the
   *train families* only (linear, squared, broad), SNR log-uniform over 5-50 (as many faint needles
   as bright ones), the default RFI;
2. **test set** (seed S + 1, its own folder): ``--n-test`` cadences, 20 % positive, *every* family
   (adding sine, pulsed: shapes the model never saw), SNR fixed at 5, 10, 20 or 40, and
   RFI-heavier backgrounds (``--rfi-scale 2``: up to twice as many interferers of each kind);
3. train set converted to shards, 5 stratified folds;
4. the recipe (``--config``, default ``cpu``) trained on folds 1-4; fold 0 validates (the only
   place settings may be chosen: the test set is never looked at before the table);
5. its SavedModel predicts the test set with flip TTA (``tfseti.predict``);
6. the classical search (``tfseti.dedoppler``) scores the *train* set with each per-channel
   background (``off_median``, ``panel_median``); for each score the background with the higher
   train AUC is kept (chosen on training data, not on the test set), and that setting scores the
   test set;
7. the table: ROC AUC overall, per needle family (that family's positives against all
   negatives) and per SNR bin (that bin's positives against all negatives), for the model and
   every classical score side by side, with the difference model - score and its 95 % interval
   (paired bootstrap over the test cadences, seeded: ``tfseti.evaluate.compare``).

Outputs in ``--out``: ``settings.json`` (resolved settings, every stage's command line and wall
time), ``results.json`` (the table, the background chosen per score and its train AUCs, the
validation AUC of every epoch) and the data, shards, run and predictions. The defaults finish in
about 45 minutes on 2 CPU cores, most of it training.

``--data-from DIR`` compares another recipe on the data of a finished run (its ``settings.json``
written, the same seed and data settings): stages 1-3 and the classical searches are not run again,
only the training and the model's predictions (``benchmarks/recipe_check.py`` does this for every
accelerator recipe).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tfseti import evaluate
from tfseti.command import command
from tfseti.demo import Stage, run_stage
from tfseti.io.atomic import write_json
from tfseti.io.folder_lock import FolderLock, FolderLocked
from tfseti.io.kaggle import TRUTH_FILE

TRAIN_FAMILIES = ("linear", "squared", "broad")
TEST_FAMILIES = ("linear", "squared", "broad", "sine", "pulsed")
TEST_SNRS = (5.0, 10.0, 20.0, 40.0)
BACKGROUNDS = ("off_median", "panel_median")
SCORES = ("straight_line", "two_of_three", "panel_maxima")
MODEL = "model"
FOLDS = 5
VAL_FOLD = 0
OVERALL = evaluate.OVERALL


@dataclass(frozen=True)
class Settings:
    out: str
    config: str = "cpu"
    n_train: int = 3000
    n_test: int = 2000
    positive_rate: float = 0.2
    train_snr: str = "5:50:log"
    test_snrs: tuple = TEST_SNRS
    rfi_scale: int = 2
    seed: int = 0
    workers: int = 2
    bootstrap: int = 1000
    overrides: tuple = ()
    tiny: bool = False
    data_from: str | None = None
    tta: str = "flips"
    data_only: bool = False

    @property
    def root(self) -> Path:
        return Path(self.out)

    @property
    def data_root(self) -> Path:
        """Where the data, shards and classical searches live: this run's folder, or ``data_from``."""
        return Path(self.data_from) if self.data_from else self.root

    @property
    def train_data(self) -> Path:
        return self.data_root / "data" / "train_set"

    @property
    def test_data(self) -> Path:
        return self.data_root / "data" / "test_set"

    @property
    def shards(self) -> Path:
        return self.data_root / "shards" / "train"

    @property
    def run_dir(self) -> Path:
        return self.root / "runs" / self.config_name

    @property
    def config_name(self) -> str:
        return Path(self.config).stem

    @property
    def predictions(self) -> Path:
        return self.root / "predictions"

    def classical(self, split: str, background: str) -> Path:
        return self.data_root / "predictions" / f"dedoppler_{split}_{background}.csv"


# What makes a run's data: with ``--data-from`` these come from that run, not the command line.
DATA_KEYS = ("n_train", "n_test", "positive_rate", "train_snr", "test_snrs", "rfi_scale", "seed")


def data_settings(data_from: str) -> dict:
    """The data settings of a *finished* run (``settings.json`` is written last, so a run that
    stopped half-way has none and is refused), after checking its data is still there."""
    root = Path(data_from)
    settings_file = root / "settings.json"
    if not settings_file.is_file():
        raise SystemExit(f"--data-from {root}: no settings.json there; expected the folder of a "
                         f"finished detection benchmark run (settings.json is written when it ends)")
    theirs = json.loads(settings_file.read_text())
    if theirs.get("data_from"):
        raise SystemExit(f"--data-from {root}: that run used the data of {theirs['data_from']}; "
                         f"pass --data-from {theirs['data_from']}")
    missing = [k for k in DATA_KEYS if k not in theirs]
    if missing:
        raise SystemExit(f"--data-from {settings_file}: no {missing} in it; expected the settings "
                         f"of a detection benchmark run")
    values = {k: theirs[k] for k in DATA_KEYS}
    values["test_snrs"] = tuple(values["test_snrs"])
    data = Settings(out=str(root), data_from=str(root), **values)
    for path in (data.train_data, data.test_data, data.shards,
                 *(data.classical("train", b) for b in BACKGROUNDS)):
        if not path.exists():
            raise SystemExit(f"--data-from {root}: {path} is missing")
    return values


# Toy sizes: 12 positives in the train set (2-3 in each of the 5 folds, so fold 0 validates with
# both classes), and a test set of at least one batch of SHOT's (tfseti.adapt --batch-size 32), which
# noisy_student.py --shot adapts on it.
TINY = {"n_train": 60, "n_test": 40, "bootstrap": 50,
        "overrides": ("train.epochs=1", "train.batch_per_replica=8", "train.steps_per_execution=1",
                      "view.dedoppler.drifts=9", "data.shuffle_buffer=64")}


# The easy setting (``--easy``, for ``benchmarks/recipe_check.py --easy``): bright needles only, and
# many of them, so that a recipe that cannot reach a high validation AUC here cannot learn at all,
# whatever its size. The test set keeps every family, at the two bright SNR bins.
EASY = {"n_train": 10000, "train_snr": "20:50", "test_snrs": (20.0, 40.0)}


def config_path(config: str) -> str:
    """The recipe file ``--config`` names (a shipped recipe's name or a path): what the trainer
    will read, written in full into the stage's command line."""
    from tfseti.config import resolve_config_path

    return str(resolve_config_path(config))


def build_stages(s: Settings) -> list[Stage]:
    py = [sys.executable, "-m"]
    snrs = ",".join(f"{v:g}" for v in s.test_snrs)
    data = [
        Stage(f"synthesise the train set (train families, SNR {s.train_snr})", py + [
            "tfseti.synth", "--out", str(s.train_data), "--n-train", str(s.n_train), "--n-test", "0",
            "--positive-rate", str(s.positive_rate), "--snr", s.train_snr,
            "--families", ",".join(TRAIN_FAMILIES), "--seed", str(s.seed),
            "--workers", str(s.workers), "--overwrite", "--no-progress"]),
        Stage("synthesise the test set (every family, fixed SNR bins, heavier RFI)", py + [
            "tfseti.synth", "--out", str(s.test_data), "--n-train", "0", "--n-test", str(s.n_test),
            "--positive-rate", str(s.positive_rate), "--snr", snrs,
            "--families", ",".join(TEST_FAMILIES), "--rfi-scale", str(s.rfi_scale),
            "--seed", str(s.seed + 1), "--workers", str(s.workers), "--overwrite", "--no-progress"]),
        Stage("convert the train set to shards (5 stratified folds)", py + [
            "tfrecords_tools.convert", "--data", str(s.train_data), "--out", str(s.shards),
            "--split", "train", "--folds", str(FOLDS), "--seed", str(s.seed), "--shard-mb", "20",
            "--workers", str(s.workers)]),
    ]
    model = [
        Stage(f"train {s.config_name} on folds 1-4 (fold 0 validates)", py + [
            "tfseti.train", "--config", config_path(s.config), "--strategy", "cpu",
            "--data", str(s.shards), "--fold", str(VAL_FOLD), "--out", str(s.run_dir),
            "--no-report", f"train.seed={s.seed}", *s.overrides]),
        Stage(f"predict the test set (TTA {s.tta})", py + [
            "tfseti.predict", "--model", str(s.run_dir / f"fold{VAL_FOLD}" / "saved_model"),
            "--data", str(s.test_data), "--tta", s.tta, "--out", str(s.predictions / "model.csv")]),
    ]
    classical = [
        Stage(f"classical search on the train set ({background}: chooses the setting)", py + [
            "tfseti.dedoppler", str(s.train_data), "--split", "train", "--background", background,
            "--out", str(s.classical("train", background)), "--no-progress"])
        for background in BACKGROUNDS]
    if s.data_only:
        return data + classical
    return model if s.data_from else data + model + classical


def test_stage(s: Settings, background: str) -> Stage:
    return Stage(f"classical search on the test set ({background})", [
        sys.executable, "-m", "tfseti.dedoppler", str(s.test_data), "--split", "test",
        "--background", background, "--out", str(s.classical("test", background)), "--no-progress"])


# ----------------------------------------------------------------------------- scoring


def compare(truth, scores: dict, bootstrap: int, seed: int) -> list[dict]:
    """``tfseti.evaluate.compare`` with the model (``MODEL``) against every other scorer: one row
    per group (overall, each family, each SNR value), each AUC and the difference model - score
    with their paired-bootstrap 95 % intervals (``ci_auc_<s>``, ``ci_diff_<s>``)."""
    return evaluate.compare(truth, scores, model=MODEL, n_boot=bootstrap, seed=seed)


def format_table(rows: list[dict], scorers: list[str]) -> str:
    baselines = [s for s in scorers if s != MODEL]
    head = f"{'group':<16}{'n_pos':>6}{'n_neg':>6}  {'model':>9}"
    for b in baselines:
        head += f"  {b:>13} {'diff':>9} {'95% CI':>20}"
    lines = [head, "-" * len(head)]
    for row in rows:
        line = (f"{evaluate.label(row):<16}{row['n_pos']:>6}{row['n_neg']:>6}  "
                f"{evaluate.fmt(row['auc_' + MODEL]):>9}")
        for b in baselines:
            interval = evaluate.fmt_interval(row.get(f"ci_diff_{b}"), signed=True)
            line += (f"  {evaluate.fmt(row['auc_' + b]):>13} "
                     f"{evaluate.fmt(row['diff_' + b], signed=True):>9} {interval:>20}")
        lines.append(line)
    return "\n".join(lines)


def _snr_low(group: str) -> float:
    """The lowest SNR of an SNR group's label (``10``, ``[10, 20)``; ``unknown``: NaN)."""
    try:
        return float(group.lstrip("[").split(",")[0])
    except ValueError:
        return float("nan")


def verdict(rows: list[dict], scorers: list[str], min_snr: float = 10.0) -> list[str]:
    """Where the model is not ahead of every classical score: overall, every family, every SNR
    bin from ``min_snr`` up (empty: ahead everywhere; an undefined AUC is not ahead)."""
    behind = []
    for row in rows:
        if row["kind"] == "snr" and not _snr_low(row["group"]) >= min_snr:
            continue
        for b in (s for s in scorers if s != MODEL):
            mine, theirs = row[f"auc_{MODEL}"], row[f"auc_{b}"]
            if mine is None or theirs is None or not mine > theirs:
                behind.append(f"{row['kind']} {row['group']}: model {evaluate.fmt(mine)} <= "
                              f"{b} {evaluate.fmt(theirs)}")
    return behind


def choose_backgrounds(s: Settings) -> dict:
    """Per classical score, the background with the higher AUC on the labelled train set."""
    import pandas as pd

    truth = read_split_truth(s.train_data, "train")
    chosen = {}
    for score in SCORES:
        aucs = {}
        for background in BACKGROUNDS:
            hits = str(s.classical("train", background)).replace(".csv", "_hits.csv")
            aucs[background] = evaluate.score(truth, evaluate.read_scores(hits, truth, score))
        defined = {b: v for b, v in aucs.items() if v is not None} or aucs
        chosen[score] = {"background": max(defined, key=lambda b: defined[b] or 0.0), "train_auc": aucs}
    return chosen


def read_split_truth(folder: Path, split: str):
    return evaluate.read_truth(folder / TRUTH_FILE, split)


def epoch_history(s: Settings) -> list[float]:
    """The validation AUC after every epoch of the trained fold (the trainer's ``result.json``)."""
    result = json.loads((s.run_dir / f"fold{VAL_FOLD}" / "result.json").read_text())
    return [float(v) for v in result["history"]["val_auc"]]


def score_table(s: Settings, chosen: dict):
    """Test truth and ``{scorer: scores in truth order}`` (the model and each classical score
    with its chosen background)."""
    truth = read_split_truth(s.test_data, "test")
    scores = {MODEL: evaluate.read_scores(s.predictions / "model.csv", truth)}
    for score in SCORES:
        hits = str(s.classical("test", chosen[score]["background"])).replace(".csv", "_hits.csv")
        scores[score] = evaluate.read_scores(hits, truth, score)
    return truth, scores


# ----------------------------------------------------------------------------- CLI


def _tta(value: str) -> str:
    """A ``--tta`` value ``tfseti.predict`` takes (checked here, before any stage runs)."""
    from tfseti.predict.tta import parse_tta

    try:
        parse_tta(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("--tta: ")) from None
    return value


def parse_args(argv=None) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.detection",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/detection")
    parser.add_argument("--config", default="cpu", help="recipe name (tfseti/recipes) or a .toml path (default cpu)")
    parser.add_argument("--n-train", type=int)
    parser.add_argument("--n-test", type=int)
    parser.add_argument("--seed", type=int, help="data and training seed (default 0)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--bootstrap", type=int)
    parser.add_argument("--tiny", action="store_true", help="toy sizes: checks the plumbing only")
    parser.add_argument("--easy", action="store_true",
                        help=f"the easy data: {EASY['n_train']} train cadences at SNR "
                             f"{EASY['train_snr'].replace(':', '-')}, test SNR bins "
                             f"{', '.join(f'{v:g}' for v in EASY['test_snrs'])} (--tiny keeps its sizes)")
    parser.add_argument("--data-only", action="store_true",
                        help="make the data, shards and classical searches, train nothing: a run "
                             "for --data-from")
    parser.add_argument("--tta", type=_tta, default="flips",
                        help="the model's test-time augmentation: flips (default), none (for a model "
                             "flip TTA refuses, e.g. view 'all' with the OFF-median background) or "
                             "random:N (tfseti.predict --tta)")
    parser.add_argument("--data-from", metavar="DIR",
                        help="reuse the data, shards and classical searches of a finished run with the "
                             "same data settings (compare another recipe)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides passed to tfseti.train")
    args = parser.parse_args(argv)
    if args.data_from and (args.easy or args.data_only):
        parser.error("--data-from takes the data of another run: not with --easy or --data-only")
    values = dict(EASY) if args.easy else {}
    values.update(TINY if args.tiny else {})
    values["overrides"] = tuple(values.get("overrides", ())) + tuple(args.overrides)
    for key in ("n_train", "n_test", "bootstrap", "seed"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    if args.data_from:
        # The data (and so its sizes and seed) are the other run's: given here, they must agree.
        theirs = data_settings(args.data_from)
        for key in ("n_train", "n_test", "seed"):
            if getattr(args, key) is not None and getattr(args, key) != theirs[key]:
                parser.error(f"--{key.replace('_', '-')} {getattr(args, key)}: the data in "
                             f"{args.data_from} was made with {theirs[key]}")
        values.update(theirs)
    return Settings(out=args.out, config=args.config, workers=args.workers, tiny=args.tiny,
                    data_from=args.data_from, tta=args.tta, data_only=args.data_only, **values)


def write_settings(s: Settings, stages: list[Stage], timings: dict, seconds: float) -> None:
    """``settings.json``, written last and atomically: a run without it is unfinished
    (``--data-from`` refuses it)."""
    settings = {**asdict(s), "stages": [{"name": st.name, "argv": st.argv} for st in stages],
                "seconds": timings, "total_seconds": seconds}
    write_json(str(s.root / "settings.json"), settings, default=str)


def chosen_lines(chosen: dict) -> str:
    """The background each classical score chose, with both backgrounds' train AUCs."""
    lines = []
    for score, c in chosen.items():
        aucs = ", ".join(f"{b} {evaluate.fmt(v)}" for b, v in c["train_auc"].items())
        lines.append(f"classical {score}: background {c['background']} (train AUC {aucs})")
    return "\n".join(lines)


def _data_only_summary(s: Settings, stages: list[Stage], timings: dict, chosen: dict,
                       seconds: float) -> int:
    write_settings(s, stages, timings, seconds)
    test = read_split_truth(s.test_data, "test")
    print("\n== detection benchmark data (no model trained) ==")
    print(f"train: {s.n_train} cadences at SNR {s.train_snr}; test: {len(test)} cadences "
          f"({int(test.target.sum())} needles) at SNR {', '.join(f'{v:g}' for v in s.test_snrs)}")
    print(chosen_lines(chosen))
    print(f"\ncompare recipes on it: python -m benchmarks.detection --data-from {s.root} --config NAME")
    return 0


@command(FolderLocked)
def main(argv=None) -> int:
    s = parse_args(argv)
    with FolderLock(str(s.root)):   # one benchmark run per folder, as one training per run folder
        return run(s)


def run(s: Settings) -> int:
    s.root.mkdir(parents=True, exist_ok=True)
    s.predictions.mkdir(parents=True, exist_ok=True)
    stages = build_stages(s)
    timings = {}
    start = time.perf_counter()
    # The test set is scored with each background some score chose: at most len(BACKGROUNDS).
    total = len(stages) + (0 if s.data_from else len(BACKGROUNDS))
    for i, stage in enumerate(stages, 1):
        timings[stage.name] = run_stage(i, total, stage)
    chosen = choose_backgrounds(s)
    if not s.data_from:
        backgrounds = sorted({c["background"] for c in chosen.values()})
        for i, background in enumerate(backgrounds, len(stages) + 1):
            stage = test_stage(s, background)
            timings[stage.name] = run_stage(i, total, stage)
    if s.data_only:
        return _data_only_summary(s, stages, timings, chosen, time.perf_counter() - start)
    truth, scores = score_table(s, chosen)
    history = epoch_history(s)
    rows = compare(truth, scores, s.bootstrap, s.seed)
    scorers = list(scores)
    table = format_table(rows, scorers)
    behind = verdict(rows, scorers)
    write_settings(s, stages, timings, time.perf_counter() - start)
    # last: technique_check takes a variant folder with results.json as finished
    write_json(str(s.root / "results.json"),
               {"rows": rows, "classical_background": chosen, "behind": behind, "val_auc_by_epoch": history})
    print("\n== detection benchmark ==")
    print(f"test set: {len(truth)} cadences ({int(truth.target.sum())} needles), families "
          f"{', '.join(TEST_FAMILIES)} (train: {', '.join(TRAIN_FAMILIES)}); recipe {s.config_name}")
    print(chosen_lines(chosen))
    train_seconds = next(v for k, v in timings.items() if k.startswith("train "))
    print(f"training wall time: {train_seconds:.0f} s")
    print("validation AUC by epoch (fold 0): " + " ".join(f"{v:.3f}" for v in history) + "\n")
    print(table)
    print()
    if behind:
        print("model NOT ahead of every classical score (overall, every family, SNR >= 10):")
        print("\n".join(f"  {line}" for line in behind))
    else:
        print("model ahead of every classical score overall, in every family and every SNR bin >= 10")
    print(f"\nresults: {s.root / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
