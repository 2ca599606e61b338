"""Does each technique of the write-ups help? Every technique against the same recipe without it,
on the detection benchmark's data, at a size 2 CPU cores train.

    python -m benchmarks.detection --out runs/detection                 # once: data + classical scores
    python -m benchmarks.technique_check --data-from runs/detection --out runs/technique_check
    python -m benchmarks.technique_check --data-from runs/detection --variants image,image+nmf

Two bases, each a recipe cut to 4 epochs:

* ``cpu``: the ``cpu`` recipe (de-Doppler maps, plain CNN); the techniques that act on batches,
  labels and test-time inputs are measured on it (class balancing);
* ``image``: the ON panels stacked as one image, resized to 128 x 64 (``cpu_demo``'s view) with
  the plain CNN, the view the image techniques were made for (learned resizer, NMF channel,
  shift-scale-rotate, motion blur, sharpen, random TTA).

Each training variant is one ``benchmarks/detection.py --data-from`` run: trained on folds 1-4 of
the same train set, fold 0 validating, the test set predicted with flip TTA (``--tta`` of the
variant otherwise). A TTA variant predicts the test set again with its base's SavedModel (no
training). ``stack`` fits a level-2 model on the fold-0 out-of-fold predictions of every finished
training variant (``tfseti.predict.stacking``) and applies it to their test predictions.

The table: per variant, the validation AUC of its last epoch (fold 0: the only place a setting may
be chosen), the test AUC overall, per needle family and per SNR bin, and the difference from its
base with a paired-bootstrap 95 % interval over the test cadences (seeded). A variant whose
``results.json`` exists is not run again, so an interrupted check resumes. Writes ``summary.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks import detection
from tfseti.command import command
from tfseti.demo import Stage, run_stage
from tfseti.evaluate import fmt, fmt_interval, label
from tfseti.io.atomic import write_json
from tfseti.io.folder_lock import FolderLock, FolderLocked

EPOCHS = 4
# Each base: (recipe, overrides). The image base is cpu_demo's view (ON panels 819 x 256 -> 128 x 64,
# area) with the plain CNN at full resolution in its first stage: on this data it validated at AUC
# 0.66 after one epoch, where EfficientNet-B0 at this size stays near 0.58 (recipe_check.py).
BASES = {
    "cpu": ("cpu", (f"train.epochs={EPOCHS}",)),
    "image": ("cpu_demo", ("model.name=plain_cnn_s", "model.options.stem_strides=[1, 1]",
                           "model.options.pooling=max", f"train.epochs={EPOCHS}", "train.bn_momentum=0.9",
                           "data.shuffle_buffer=1024")),
}

# Each variant: (base, extra overrides, test-time augmentation, kind). kind "train": its own
# training run; "tta": its base's SavedModel predicts the test set with this TTA.
VARIANTS = {
    "cpu": ("cpu", (), "flips", "train"),
    # class-balanced batches: 16 of every 32 records positive (the train set is 20 % positive)
    "cpu+balance": ("cpu", ('data.balance="per_batch:16"',), "flips", "train"),
    "image": ("image", (), "flips", "train"),
    # 8 filters instead of the resizer's default 16, and 20 NMF updates instead of 50: both run at
    # the full 819 x 256 resolution on the CPU (about half and two fifths of the default cost)
    "image+learned_resizer": ("image", ('view.resize_method="learned"', "model.options.resizer_filters=8"),
                              "flips", "train"),
    "image+nmf": ("image", ('view.extra_channels=["nmf"]', "view.nmf_iterations=20"), "flips", "train"),
    "image+shift_scale_rotate": ("image", ("augment.ssr_p=0.5",), "flips", "train"),
    "image+motion_blur": ("image", ("augment.motion_blur_p=0.5",), "flips", "train"),
    "image+sharpen": ("image", ("augment.sharpen_p=0.5",), "flips", "train"),
    # 8 passes of the training augmentations (vflip, OFF shuffle) against the 4 flips; the 59th
    # place's 16 would take 2 x 8 minutes of this CPU's predicting
    "image+random_tta": ("image", (), "random:8", "tta"),
}
STACK = "stack"


def variant_dir(out: Path, name: str) -> Path:
    return out / name.replace("+", "_")


def run_training_variant(name: str, data_from: str, out: Path, tiny: bool) -> None:
    base, extra, tta, _ = VARIANTS[name]
    recipe, base_overrides = BASES[base]
    overrides = [*base_overrides, *extra]
    if tiny:   # one toy epoch (after the base's epochs): checks the plumbing only
        overrides += [*detection.TINY["overrides"], "train.warmup_epochs=0"]
    argv = ["--out", str(variant_dir(out, name)), "--data-from", data_from, "--config", recipe,
            "--tta", tta, *(["--tiny"] if tiny else []), *overrides]
    print(f"\n######## {name}: python -m benchmarks.detection {' '.join(argv)}", flush=True)
    if detection.main(argv) != 0:
        raise SystemExit(f"technique_check: the detection run of {name} failed")


def run_tta_variant(name: str, out: Path) -> None:
    """Predict the test set with the base's SavedModel and this variant's TTA; results.json as a
    detection run writes it (the base's validation history: the network is the base's)."""
    base, _, tta, _ = VARIANTS[name]
    base_dir, here = variant_dir(out, base), variant_dir(out, name)
    settings = json.loads((base_dir / "settings.json").read_text())
    s = detection.parse_args(["--out", str(here), "--data-from", settings["data_from"],
                              "--config", settings["config"], "--tta", tta,
                              *(["--tiny"] if settings["tiny"] else [])])
    s.predictions.mkdir(parents=True, exist_ok=True)
    model = base_dir / "runs" / s.config_name / f"fold{detection.VAL_FOLD}" / "saved_model"
    seconds = run_stage(1, 1, Stage(f"predict the test set (TTA {tta}) with {base}'s model", [
        sys.executable, "-m", "tfseti.predict", "--model", str(model), "--data", str(s.test_data),
        "--tta", tta, "--out", str(s.predictions / "model.csv"), "--no-progress"]))
    chosen = json.loads((base_dir / "results.json").read_text())["classical_background"]
    truth, scores = detection.score_table(s, chosen)
    rows = detection.compare(truth, scores, s.bootstrap, s.seed)
    history = json.loads((base_dir / "results.json").read_text())["val_auc_by_epoch"]
    write_json(str(here / "settings.json"), {**settings, "tta": tta, "seconds": {"predict": seconds}},
               default=str)
    # last: a variant folder with results.json is finished (main skips it)
    write_json(str(here / "results.json"),
               {"rows": rows, "classical_background": chosen, "val_auc_by_epoch": history})


def test_scores(out: Path, name: str):
    """Test truth and this variant's model scores in truth order."""
    settings = json.loads((variant_dir(out, name) / "settings.json").read_text())
    s = detection.parse_args(["--out", str(variant_dir(out, name)), "--data-from", settings["data_from"],
                              *(["--tiny"] if settings["tiny"] else [])])
    chosen = json.loads((variant_dir(out, name) / "results.json").read_text())["classical_background"]
    truth, scores = detection.score_table(s, chosen)
    return truth, scores[detection.MODEL]


def against_base(out: Path, name: str, base: str, bootstrap: int, seed: int) -> list[dict]:
    """Rows of ``detection.compare`` with the base's scores as the one other scorer."""
    truth, mine = test_scores(out, name)
    _, theirs = test_scores(out, base)
    return detection.compare(truth, {detection.MODEL: mine, "base": theirs}, bootstrap, seed)


def stack_variant(out: Path, names: list[str], bootstrap: int, seed: int) -> dict:
    """A level-2 logistic regression on the fold-0 OOF predictions of ``names``, applied to their
    test predictions, against the mean of the same models on the test set.

    The detection runs train fold 0 only, so their OOF rows are one fold: for the stacker's
    held-out estimate (``tfseti.predict.stacking.fit_stack``, leave-one-fold-out) those rows are
    split into 5 stratified parts (seeded); the stacker applied to the test set is fit on all of
    them, as ``--ensemble stack`` does."""
    import numpy as np
    import pandas as pd
    from sklearn.model_selection import StratifiedKFold

    from tfseti.predict.stacking import clipped_logit, fit_stack, oof_features

    frames, tests = {}, []
    truth = None
    for name in names:
        (run_dir,) = [p for p in (variant_dir(out, name) / "runs").iterdir() if p.is_dir()]
        frames[name] = pd.read_csv(run_dir / f"fold{detection.VAL_FOLD}" / "oof.csv", dtype={"id": str})
        truth, scores = test_scores(out, name)
        tests.append(scores)
    oof = oof_features(frames)
    oof.fold = np.array(oof.fold)   # writable: pandas hands out read-only views
    parts = StratifiedKFold(5, shuffle=True, random_state=seed).split(oof.features, oof.target)
    for part, (_, rows) in enumerate(parts):
        oof.fold[rows] = part
    result = fit_stack(oof, "logistic", seed)
    stacked = result.predict(clipped_logit(np.stack(tests, axis=1)))
    mean = np.mean(np.stack(tests), axis=0)
    rows = detection.compare(truth, {detection.MODEL: stacked, "base": mean}, bootstrap, seed)
    return {"rows": rows, "members": names, "coefficients": result.coefficients,
            "oof_auc": {"stack": result.oof_auc, "mean": result.mean_auc,
                        **dict(zip(names, result.run_auc))}, "validation_table": result.table()}


def format_rows(name: str, base: str | None, val: float | None, rows: list[dict]) -> list[str]:
    lines = []
    for row in rows:
        line = f"{name:<26}{label(row):<16}{row['n_pos']:>6}  {fmt(row['auc_' + detection.MODEL]):>9}"
        if base is not None and "auc_base" in row:
            interval = fmt_interval(row.get("ci_diff_base"), signed=True)
            line += (f"  {fmt(row['auc_base']):>9} {fmt(row['diff_base'], signed=True):>9} "
                     f"{interval:>20}")
        if row["kind"] == "overall" and val is not None:
            line += f"   val {val:.4f}"
        lines.append(line)
    return lines


@command(FolderLocked)
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.technique_check",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--data-from", required=True, metavar="DIR",
                        help="a finished benchmarks/detection.py run (its data and classical scores)")
    parser.add_argument("--out", default="runs/technique_check")
    parser.add_argument("--variants", default=",".join([*VARIANTS, STACK]),
                        help=f"comma-separated, from {', '.join([*VARIANTS, STACK])} (bases run first)")
    parser.add_argument("--tiny", action="store_true", help="one toy epoch each on a --tiny data run")
    args = parser.parse_args(argv)
    wanted = [v for v in args.variants.split(",") if v]
    unknown = [v for v in wanted if v not in VARIANTS and v != STACK]
    if unknown:
        parser.error(f"--variants: unknown {unknown}; expected names from {[*VARIANTS, STACK]}")
    # Bases first: every other variant is read against its base.
    order = [*dict.fromkeys([VARIANTS[v][0] for v in wanted if v in VARIANTS] + wanted)]
    out = Path(args.out)
    with FolderLock(str(out)):   # one writer per folder: variants are skipped once finished
        return compare_variants(args, wanted, order, out)


def compare_variants(args: argparse.Namespace, wanted: list[str], order: list[str], out: Path) -> int:
    for name in order:
        if name == STACK or (variant_dir(out, name) / "results.json").exists():
            continue
        if VARIANTS[name][3] == "tta":
            run_tta_variant(name, out)
        else:
            run_training_variant(name, args.data_from, out, args.tiny)

    settings = detection.parse_args(["--out", str(out), "--data-from", args.data_from,
                                     *(["--tiny"] if args.tiny else [])])
    bootstrap, seed = settings.bootstrap, settings.seed
    summary, lines = {}, []
    for name in order:
        if name == STACK:
            continue
        base = VARIANTS[name][0]
        results = json.loads((variant_dir(out, name) / "results.json").read_text())
        val = results["val_auc_by_epoch"][-1] if results["val_auc_by_epoch"] else None
        rows = against_base(out, name, base, bootstrap, seed) if name != base else results["rows"]
        summary[name] = {"base": base, "overrides": list(VARIANTS[name][1]), "tta": VARIANTS[name][2],
                         "val_auc_by_epoch": results["val_auc_by_epoch"], "rows": rows}
        lines += format_rows(name, None if name == base else base, val, rows) + [""]
    if STACK in wanted:
        members = [n for n in order if n in VARIANTS and VARIANTS[n][3] == "train"]
        summary[STACK] = stack_variant(out, members, bootstrap, seed)
        lines += format_rows(STACK, "mean", None, summary[STACK]["rows"]) + [""]
        lines += ["stack: fold-0 OOF AUC (held-out parts), each member, the mean and the stack:",
                  summary[STACK]["validation_table"], ""]
    write_json(str(out / "summary.json"), summary)
    head = f"{'variant':<26}{'group':<16}{'n_pos':>6}  {'test':>9}  {'base':>9} {'diff':>9} {'95% CI':>20}"
    print("\n== techniques against the same recipe without them (test AUC; diff = variant - base) ==")
    print(head)
    print("-" * len(head))
    print("\n".join(lines))
    print(f"summary: {out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
