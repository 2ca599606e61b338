"""Domain shift: AUC per needle family of a model trained on linear needles only, without and
with injection of the families it never saw.

    python -m benchmarks.domain_shift [--out runs/domain_shift] [--n-train 320] [--n-eval 1200] [--seed 0]
    python -m benchmarks.domain_shift --out /tmp/ds --tiny    # the plumbing at toy size (no meaning)

The Kaggle test set held sine-drift ("s-shaped") needles that train lacked; the 1st place answered
with on-the-fly injection of synthetic needles ("magic 1"). This reproduces that shift on synthetic
data, every stage through its command-line entry point (as ``tfseti.demo`` does):

1. train set (``tfseti.synth``, seed S): ``linear`` needles only;
2. evaluation set (seed S + 1, a separate folder, its test split): ``linear``, ``sine`` and
   ``squared`` needles; both sets use the same SNR range (setigen's SNR, default 60:150 as the demo:
   at 20-60 cpu_demo does not learn in a few epochs), missing-panel probability and RFI;
3. the train set converted to shards, 4 stratified folds;
4. ``cpu_demo`` trained twice on folds 1-3 (fold 0, linear only, validates), same seeds and the
   same batch sequence (``data.deterministic``): ``baseline`` with no injection, ``injected`` with
   ``augment.inject`` adding ``sine`` and ``squared`` needles (probability ``--inject-p``) drawn
   from the same SNR range and missing-panel probability as the synthetic ones;
5. each SavedModel predicts the evaluation set (``tfseti.predict``);
6. needle scale check: for a few evaluation positives of each family, the synthetic needle (setigen,
   in units of its normalised background) against the needle the injection op draws for the same
   parameters on the same background (``needle_params_from_spec``): a ratio near 1 means the two
   SNR scales agree;
7. AUC per family (that family's positives against all negatives) and overall, both runs side by
   side, with the difference injected - baseline and its 95 % interval (paired bootstrap over the
   evaluation cadences, ``tfseti.evaluate``: is the difference more than the noise of a few dozen
   positives?).

Outputs in ``--out``: ``settings.json`` (the resolved settings and every stage's command line),
``results.json`` and ``results.csv`` (the table), ``scale_check.json``, and the data, shards, runs and
predictions of each stage.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tfseti.demo import Stage, run_stage
from tfseti.evaluate import read_truth
from tfseti.io.kaggle import TRUTH_FILE

TRAIN_FAMILIES = ("linear",)
EVAL_FAMILIES = ("linear", "sine", "squared")
INJECT_FAMILIES = ("sine", "squared")
RUNS = ("baseline", "injected")
FOLDS = 4
VAL_FOLD = 0
OVERALL = "all"  # the row of every family (tfseti.evaluate.OVERALL)


@dataclass(frozen=True)
class Settings:
    """Everything the benchmark depends on (written to ``settings.json``).

    positive_rate 0.5, SNR 60:150, 6 epochs: the demo's, with which cpu_demo learns linear needles
    from ~240 training cadences. n_eval 1200: ~200 positives per family, so that the evaluation
    noise of an AUC difference is a few hundredths (synthesis and prediction are cheap; training
    is the cost). The bootstrap interval covers that evaluation noise only, not the spread between
    training seeds. missing_prob: ``tfseti.synth``'s default, used for the injected
    needles too. inject_p 0.33: with half the cadences positive, about a third of the training
    samples then carry an injected needle, a third only a linear one, a third none.
    """

    out: str
    n_train: int = 320
    n_eval: int = 1200
    positive_rate: float = 0.5
    snr: tuple[float, float] = (60.0, 150.0)
    missing_prob: float = 0.2
    inject_p: float = 0.33
    epochs: int = 6
    steps_per_epoch: int | None = None   # None: the trainer's (train records // batch)
    seed: int = 0
    workers: int = 2
    scale_check: int = 4                 # evaluation positives per family in the scale check
    bootstrap: int = 1000                # paired resamples for the interval of the AUC difference
    tiny: bool = False

    @property
    def train_data(self) -> Path:
        return Path(self.out) / "train_data"

    @property
    def eval_data(self) -> Path:
        return Path(self.out) / "eval_data"

    @property
    def shards(self) -> Path:
        return Path(self.out) / "shards"

    def run_dir(self, run: str) -> Path:
        return Path(self.out) / "runs" / run

    def predictions(self, run: str) -> Path:
        return Path(self.out) / f"predictions_{run}.csv"


TINY = dict(n_train=24, n_eval=24, epochs=1, steps_per_epoch=1, scale_check=1)


def _snr_text(snr) -> str:
    return f"{snr[0]:g}:{snr[1]:g}"


def train_overrides(settings: Settings, run: str) -> list[str]:
    """``key=value`` overrides of cpu_demo for ``run``: the seeds, the fixed batch sequence, and
    for ``injected`` the ``[augment.inject]`` table (tfseti.data.inject.InjectConfig)."""
    seed = settings.seed
    overrides = [f"train.seed={seed}", f"augment.seed={seed}", f"data.seed={seed}",
                 "data.deterministic=true", f"train.epochs={settings.epochs}"]
    if settings.steps_per_epoch is not None:
        overrides.append(f"train.steps_per_epoch={settings.steps_per_epoch}")
    if settings.tiny:
        overrides += ["train.batch_per_replica=4", "train.steps_per_execution=1"]
    if run == "injected":
        overrides += [f"augment.inject.p={settings.inject_p}",
                      f"augment.inject.families={json.dumps(list(INJECT_FAMILIES))}",
                      f"augment.inject.snr=[{settings.snr[0]}, {settings.snr[1]}]",
                      f"augment.inject.missing_prob={settings.missing_prob}"]
    elif run != "baseline":
        raise ValueError(f"run: expected one of {RUNS}, got {run!r}")
    return overrides


def build_stages(settings: Settings) -> list[Stage]:
    py = [sys.executable, "-m"]
    common = ["--positive-rate", str(settings.positive_rate), "--snr", _snr_text(settings.snr),
              "--missing-prob", str(settings.missing_prob), "--workers", str(settings.workers),
              "--overwrite", "--no-progress"]
    stages = [
        Stage(f"synthesise the train set: {settings.n_train} cadences, families "
              f"{','.join(TRAIN_FAMILIES)}", py + [
                  "tfseti.synth", "--out", str(settings.train_data), "--n-train", str(settings.n_train),
                  "--n-test", "0", "--families", ",".join(TRAIN_FAMILIES),
                  "--seed", str(settings.seed)] + common),
        Stage(f"synthesise the evaluation set: {settings.n_eval} cadences, families "
              f"{','.join(EVAL_FAMILIES)}", py + [
                  "tfseti.synth", "--out", str(settings.eval_data), "--n-train", "0",
                  "--n-test", str(settings.n_eval), "--families", ",".join(EVAL_FAMILIES),
                  "--seed", str(settings.seed + 1)] + common),
        Stage(f"convert the train set to shards ({FOLDS} folds)", py + [
            "tfrecords_tools.convert", "--data", str(settings.train_data), "--out", str(settings.shards),
            "--split", "train", "--folds", str(FOLDS), "--seed", str(settings.seed), "--shard-mb", "20",
            "--workers", str(settings.workers), "--no-progress"]),
    ]
    for run in RUNS:
        what = ("no injection" if run == "baseline"
                else f"injecting {','.join(INJECT_FAMILIES)} needles, p = {settings.inject_p}")
        stages.append(Stage(f"train cpu_demo, {run}: {what}", py + [
            "tfseti.train", "--config", "cpu_demo", "--strategy", "cpu",
            "--data", str(settings.shards), "--fold", str(VAL_FOLD), "--out", str(settings.run_dir(run)),
            *train_overrides(settings, run)]))
    for run in RUNS:
        stages.append(Stage(f"predict the evaluation set, {run}", py + [
            "tfseti.predict", "--model", str(settings.run_dir(run)), "--data", str(settings.eval_data),
            "--out", str(settings.predictions(run))]))
    return stages


# ----------------------------------------------------------------------------- scoring


def family_aucs(truth, scores: dict, bootstrap: int = 1000, seed: int = 0) -> "pd.DataFrame":
    """One row per needle family of ``truth`` and one for all of them: ``n_pos``, ``n_neg``; per
    run, the AUC of that family's positives against all negatives (NaN where a family has no
    positive or there is no negative); ``diff_low`` / ``diff_high``: the 95 % interval of the AUC
    difference last run - first run over ``bootstrap`` paired resamples (``tfseti.evaluate.compare``:
    positives and negatives drawn with replacement, the same draw for both runs; seeded).

    ``truth``: the evaluation rows of ``truth.csv`` (``id``, ``target``, ``family``);
    ``scores``: ``{run: DataFrame(id, target)}``, each covering every id of ``truth`` once
    (else ``tfseti.evaluate.EvaluationError``).
    """
    import pandas as pd

    from tfseti import evaluate

    runs = list(scores)
    aligned = {run: evaluate.align_scores(truth, frame, "target", name=f"predictions of {run!r}")
               for run, frame in scores.items()}
    rows = evaluate.compare(truth, aligned, model=runs[-1],
                            baselines=[runs[0]], n_boot=bootstrap, seed=seed, by=("family",))
    table = []
    for row in rows[1:] + rows[:1]:  # the families, then all of them
        interval = row[f"ci_diff_{runs[0]}"] or [None, None]
        table.append({"family": row["group"], "n_pos": row["n_pos"], "n_neg": row["n_neg"],
                      **{run: row[f"auc_{run}"] for run in runs},
                      "diff_low": interval[0], "diff_high": interval[1]})
    return pd.DataFrame(table).astype({run: float for run in runs} | {"diff_low": float,
                                                                      "diff_high": float})


def format_table(table, runs=RUNS) -> str:
    """The side-by-side table: family, n, AUC of each run, difference (last run - first run) and
    its bootstrap 95 % interval; an undefined value prints as ``tfseti.evaluate.fmt`` has it."""
    from tfseti.evaluate import fmt, fmt_interval

    first, last = runs[0], runs[-1]
    header = (f"{'family':<8} {'n_pos':>5} {'n_neg':>5}  "
              + "  ".join(f"{'AUC ' + run:>12}" for run in runs) + f"  {'diff':>7}  {'diff 95% CI':>18}")
    lines = [header, "-" * len(header)]
    for row in table.to_dict("records"):
        interval = fmt_interval(None if math.isnan(row["diff_low"])
                                else (row["diff_low"], row["diff_high"]), 4, signed=True)
        lines.append(f"{row['family']:<8} {row['n_pos']:>5} {row['n_neg']:>5}  "
                     + "  ".join(f"{fmt(row[run]):>12}" for run in runs)
                     + f"  {fmt(row[last] - row[first], signed=True):>7}  {interval:>18}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- scale check


def needle_scale_ratios(truth, families, per_family: int) -> dict[str, list[float]]:
    """Synthetic needle / injected needle for the first ``per_family`` positives of each family.

    The synthetic needle is what ``tfseti.synth`` adds to the raw setigen frames, divided by each
    ON panel's background std (the normalisation the cadence gets); the injected one is
    ``needle_pattern`` for the same parameters, scaled by ``noise_std`` of the normalised
    background, as ``inject_needles`` scales it. The ratio is the least-squares scale of the second
    onto the first over the ON panels.
    """
    import numpy as np

    from tfseti.data.inject import needle_params_from_spec, needle_pattern, noise_std
    from tfseti.io.kaggle import ON_PANELS
    from tfseti.synth.cadence import CadenceSpec, build_background, inject_needle, normalise

    on = list(ON_PANELS)
    ratios = {}
    for family in families:
        rows = truth[(truth["target"] == 1) & (truth["family"] == family)].head(per_family)
        ratios[family] = []
        for text in rows["spec"]:
            spec = CadenceSpec.from_json(text)
            cadence = build_background(spec)
            raw = np.stack([frame.data.copy() for frame in cadence])
            background = normalise(cadence).astype(np.float32)[on]
            inject_needle(cadence, spec, spec.needle)
            needle = (np.stack([frame.data for frame in cadence]) - raw)[on]
            needle /= raw[on].std(axis=(1, 2), keepdims=True)
            sigma = noise_std(background[None]).numpy()
            pattern = needle_pattern(needle_params_from_spec(spec), sigma, *background.shape[1:]).numpy()[0]
            ratios[family].append(float((needle * pattern).sum() / (pattern * pattern).sum()))
    return ratios


# ----------------------------------------------------------------------------- main


def parse_args(argv=None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/domain_shift", help="output folder")
    parser.add_argument("--n-train", type=int, default=Settings.n_train, help="train cadences")
    parser.add_argument("--n-eval", type=int, default=Settings.n_eval, help="evaluation cadences")
    parser.add_argument("--snr", default=_snr_text(Settings.snr),
                        help="setigen SNR range MIN:MAX of the synthetic and the injected needles")
    parser.add_argument("--inject-p", type=float, default=Settings.inject_p,
                        help="per-sample injection probability of the injected run")
    parser.add_argument("--epochs", type=int, default=Settings.epochs)
    parser.add_argument("--seed", type=int, default=Settings.seed)
    parser.add_argument("--workers", type=int, default=Settings.workers)
    parser.add_argument("--scale-check", type=int, default=Settings.scale_check,
                        help="evaluation positives per family in the needle scale check (0: none)")
    parser.add_argument("--tiny", action="store_true",
                        help=f"toy sizes to check the plumbing: {TINY}")
    args = parser.parse_args(argv)
    try:
        low, high = (float(v) for v in args.snr.split(":"))
    except ValueError:
        parser.error(f"--snr: expected MIN:MAX, got {args.snr!r}")
    settings = dict(out=args.out, n_train=args.n_train, n_eval=args.n_eval, snr=(low, high),
                    inject_p=args.inject_p, epochs=args.epochs, seed=args.seed, workers=args.workers,
                    scale_check=args.scale_check, tiny=args.tiny)
    if args.tiny:
        settings.update(TINY)
    return Settings(**settings)


def summarise(settings: Settings, timings: dict[str, float], step: int, total: int):
    """The stages after prediction: the needle scale check and the per-family table, printed and
    written to ``settings.out``; returns the table."""
    import pandas as pd

    out = Path(settings.out)
    truth = read_truth(settings.eval_data / TRUTH_FILE, "test")

    print(f"\n[{step}/{total}] needle scale check: synthetic / injected, "
          f"{settings.scale_check} positive(s) per family", flush=True)
    ratios = needle_scale_ratios(truth, INJECT_FAMILIES, settings.scale_check)
    (out / "scale_check.json").write_text(json.dumps(ratios, indent=2))
    for family, values in ratios.items():
        shown = " ".join(f"{v:.3f}" for v in values) or "none"
        print(f"  {family:<8} {shown}")

    print(f"\n[{step + 1}/{total}] AUC per family", flush=True)
    scores = {run: pd.read_csv(settings.predictions(run), dtype={"id": str}) for run in RUNS}
    table = family_aucs(truth, scores, settings.bootstrap, settings.seed)
    table.to_csv(out / "results.csv", index=False)
    (out / "results.json").write_text(json.dumps(
        {"table": table.astype(object).where(table.notna(), None).to_dict("records"),
         "scale_check": ratios, "seconds": timings}, indent=2, allow_nan=False))
    print(f"\n== domain shift: train families {','.join(TRAIN_FAMILIES)}; injected run adds "
          f"{','.join(INJECT_FAMILIES)} (p = {settings.inject_p}); SNR {_snr_text(settings.snr)}; "
          f"seed {settings.seed} ==")
    print(format_table(table))
    return table


def main(argv=None) -> int:
    settings = parse_args(argv)
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    stages = build_stages(settings)
    total = len(stages) + 2
    (out / "settings.json").write_text(json.dumps(
        {"settings": asdict(settings), "train_families": TRAIN_FAMILIES, "eval_families": EVAL_FAMILIES,
         "inject_families": INJECT_FAMILIES, "stages": [{"name": s.name, "argv": s.argv} for s in stages]},
        indent=2))
    start = time.perf_counter()
    timings = {stage.name: run_stage(i, total, stage) for i, stage in enumerate(stages, 1)}
    summarise(settings, timings, len(stages) + 1, total)
    print(f"wall time {time.perf_counter() - start:.0f} s; outputs in {out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
