"""Do the accelerator recipes learn? Each one, scaled down so 2 CPU cores can train it, on the
detection benchmark's data.

    python -m benchmarks.detection --out runs/detection                   # once: data + cpu recipe
    python -m benchmarks.recipe_check --data-from runs/detection --out runs/recipe_check
    python -m benchmarks.recipe_check --data-from runs/detection --recipes k1_style,k3_style

``b0_tpu``, ``k1_style`` ... ``k4_style`` and ``dedoppler_b0`` are sized for a TPU or a big GPU (full
resolution, EfficientNet-B3/B5/V2-S, ImageNet weights, 20 epochs). Here each keeps what makes it
that recipe (its view, augmentation, mixup, pooling, loss, optimiser and schedule) and changes only
what a CPU cannot afford; ``SCALE_DOWN`` lists every change and why. Each recipe is then one
``benchmarks/detection.py --data-from`` run: trained on folds 1-4 of the same train set, fold 0
validating, the test set predicted with flip TTA, and compared with the classical scores the data
run already made.

What this shows is that the recipe *learns* (validation AUC well above 0.5 and rising over the
epochs) and where it stands against the classical search at this size. It is not the recipe's
accuracy at full size: that needs the accelerator. Prints one table and writes ``summary.json``.

``--easy`` checks the recipes on easy data instead: 10,000 cadences with needles at SNR 20-50
(``benchmarks/detection.py --easy --data-only``, made once into ``OUT/easy_data`` and reused by
every later ``--easy`` run with that ``--out``). A recipe that does not reach a high validation
AUC there within ``EASY_MINUTES`` of training does not learn, whatever its size: a bug to find, or
a setting to name.

    python -m benchmarks.recipe_check --easy --out runs/recipe_easy --recipes b0_tpu
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks import detection
from tfseti.command import command
from tfseti.evaluate import fmt
from tfseti.io.atomic import write_json
from tfseti.io.folder_lock import FolderLock, FolderLocked

# Every recipe, on 2 CPU cores: no ImageNet download here, no XLA (on the CPU it makes an
# EfficientNet step ~15x slower, benchmarks/model_bench.py), float32 (no bfloat16 kernels worth
# having on a CPU), a batch a CPU steps through quickly, 4 epochs, and BatchNorm statistics that
# follow the weights within a short run (momentum 0.9 instead of Keras' 0.99: with 0.99, b0_tpu
# scaled down validated at AUC 0.509, 0.509, 0.542, 0.537 over its 4 epochs).
COMMON = ("model.options.weights=none", "train.jit_compile=false", "train.precision=float32",
          "train.epochs=4", "train.batch_per_replica=16", "train.steps_per_execution=4",
          "train.bn_momentum=0.9", "data.shuffle_buffer=1024", "data.cadence_dtype=float16")

# Per recipe: the input size and backbone cut to what 2 cores train in ~2 min an epoch.
SCALE_DOWN = {
    # 512 x 256 ON view -> 128 x 64 (area keeps thin needles); batch 64 -> 16
    "b0_tpu": ("view.resize=[128, 64]",),
    # full-resolution 819 x 256 ON view and ECA-NFNet-L2 -> 128 x 64 and ECA-NFNet-L0 (the same
    # family and block, 12 blocks instead of 36; L2 trains at ~1/3 of L0's speed on a CPU)
    "k1_style": ("model.name=eca_nfnet_l0", "view.resize=[128, 64]", 'view.resize_method="area"'),
    # all six panels at 512 x 512 and EfficientNet-B5 -> 192 x 64 and B0; without ImageNet weights
    # the head warm-up (which protects pretrained features) has nothing to protect
    "k2_style": ("model.name=efficientnet_b0", "view.resize=[192, 64]", 'view.resize_method="area"',
                 "train.head_warmup_epochs=0"),
    # ON view at 768 x 768 and EfficientNet-B3 -> 96 x 96 (still square) and B0, triplet attention kept
    "k3_style": ("model.name=efficientnet_b0", "view.resize=[96, 96]", 'view.resize_method="area"'),
    # ON view at 512 x 256 -> 128 x 64; NF-RegNet-B1 kept (NF-RegNet-B0 trained at 23.5 img/s on
    # 2 cores at this size, model_bench.py without XLA)
    "k4_style": ("view.resize=[128, 64]",),
    # the de-Doppler maps are 65 x 256 x 6 already: only COMMON's changes (no ImageNet weights,
    # float32, no XLA, batch 16); EfficientNet-B0 at stem stride (1, 1) is kept
    "dedoppler_b0": (),
}

# Test-time augmentation per recipe (default flips). k2_style's six-panel view with the OFF-median
# background has no flip of the raw cadences equal to its training time flip (tfseti.predict
# refuses flip TTA for it).
TTA = {"k2_style": "none"}


# The easy check's bar (issue: every accelerator recipe, scaled down, learns the easy data): a
# validation AUC of at least EASY_AUC within EASY_MINUTES of training on 2 cores.
EASY_AUC, EASY_MINUTES = 0.90, 45


def overrides(recipe: str) -> tuple[str, ...]:
    return COMMON + SCALE_DOWN[recipe]


def warmup_within(recipe: str, extra: tuple[str, ...]) -> tuple[str, ...]:
    """The override that keeps the recipe's warm-up inside a shorter check: when the caller sets
    ``train.epochs=N`` without ``train.warmup_epochs`` and the recipe warms up for N epochs or
    more (the trainer refuses that), the warm-up becomes N/4 epochs; otherwise nothing."""
    from tfseti.config import ConfigError, is_number, parse_override
    from tfseti.train.run_config import load_run_config

    try:
        given = {".".join(key): value for key, value in map(parse_override, extra)}
    except ConfigError:   # the run itself refuses a malformed override, with the config's own error
        return ()
    epochs = given.get("train.epochs")
    if not is_number(epochs) or "train.warmup_epochs" in given:
        return ()
    warmup = load_run_config(recipe, overrides(recipe)).train.warmup_epochs
    return () if warmup < epochs else (f"train.warmup_epochs={epochs / 4:g}",)


def run_recipe(recipe: str, data_from: str, out: Path, extra: tuple[str, ...] = (),
               tiny: bool = False) -> dict:
    """One ``detection.py --data-from`` run; its results, the training time and the overrides.
    ``tiny``: the detection benchmark's toy training settings, then ``extra`` (plumbing only)."""
    run_out = out / recipe
    if tiny:   # one toy epoch: the recipes' 1-epoch warm-ups would leave none
        extra = detection.TINY["overrides"] + ("train.warmup_epochs=0",) + extra   # the caller's last
    else:
        shorter = warmup_within(recipe, extra)
        if shorter:
            print(f"recipe_check: {recipe} warms up for longer than the check's epochs; "
                  f"{shorter[0]} (set train.warmup_epochs to choose)", flush=True)
        extra = shorter + extra
    argv = ["--out", str(run_out), "--data-from", data_from, "--config", recipe, *overrides(recipe), *extra]
    argv += ["--tta", TTA.get(recipe, "flips")] + (["--tiny"] if tiny else [])
    print(f"\n######## {recipe}: python -m benchmarks.detection {' '.join(argv)}", flush=True)
    if detection.main(argv) != 0:
        raise SystemExit(f"recipe_check: the detection run of {recipe} failed")
    results = json.loads((run_out / "results.json").read_text())
    settings = json.loads((run_out / "settings.json").read_text())
    train_seconds = next(v for k, v in settings["seconds"].items() if k.startswith("train "))
    return {"recipe": recipe, "overrides": list(overrides(recipe) + extra), "train_seconds": train_seconds,
            "val_auc_by_epoch": results["val_auc_by_epoch"], "rows": results["rows"]}


def easy_data(out: Path, tiny: bool = False) -> str:
    """The easy data run in ``out/easy_data``: made once (``detection.py --easy --data-only``), then
    reused while its ``settings.json`` (written last) is there."""
    root = out / "easy_data"
    if (root / "settings.json").is_file():
        made = json.loads((root / "settings.json").read_text())
        if bool(made.get("tiny")) != tiny or made.get("train_snr") != detection.EASY["train_snr"]:
            raise SystemExit(f"recipe_check: {root} holds {'toy' if made.get('tiny') else 'full'}-size "
                             f"data at SNR {made.get('train_snr')}, not the {'toy' if tiny else 'full'}"
                             f"-size easy data asked for; choose another --out")
        print(f"easy data: {root} (made before)", flush=True)
        return str(root)
    argv = ["--easy", "--data-only", "--out", str(root)] + (["--tiny"] if tiny else [])
    print(f"\n######## easy data: python -m benchmarks.detection {' '.join(argv)}", flush=True)
    if detection.main(argv) != 0:
        raise SystemExit("recipe_check: making the easy data failed")
    return str(root)


def easy_verdict(run: dict) -> str:
    """Whether a recipe met the easy check's bar, in words."""
    best = max((v for v in run["val_auc_by_epoch"] if v is not None), default=None)
    minutes = run["train_seconds"] / 60
    met = best is not None and best >= EASY_AUC and minutes <= EASY_MINUTES
    return (f"{run['recipe']}: best validation AUC {fmt(best, 3)} in {minutes:.0f} min of training: "
            f"{'meets' if met else 'MISSES'} the bar (>= {EASY_AUC} within {EASY_MINUTES} min)")


def format_summary(runs: list[dict]) -> str:
    """One line per recipe: validation AUC by epoch, test AUC overall and at each SNR bin, and the
    best classical score's overall test AUC on the same test set."""
    lines = []
    for run in runs:
        overall = next(r for r in run["rows"] if r["kind"] == "overall")
        best = max((k for k in overall if k.startswith("auc_") and k != f"auc_{detection.MODEL}"),
                   key=lambda k: -1.0 if overall[k] is None else overall[k])
        snr = " ".join(f"{r['group']}:{fmt(r['auc_' + detection.MODEL], 3)}"
                       for r in run["rows"] if r["kind"] == "snr")
        epochs = " ".join(fmt(v, 3) for v in run["val_auc_by_epoch"])
        lines.append(f"{run['recipe']:<10} train {run['train_seconds']:5.0f} s  val AUC by epoch {epochs}"
                     f"  | test {fmt(overall['auc_' + detection.MODEL], 3)} (SNR {snr})"
                     f"  | best classical {best[4:]} {fmt(overall[best], 3)}")
    return "\n".join(lines)


@command(FolderLocked)
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.recipe_check",
                                     description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data-from", metavar="DIR",
                        help="a finished benchmarks/detection.py run (its data and classical scores)")
    source.add_argument("--easy", action="store_true",
                        help=f"the easy data (SNR 20-50, {detection.EASY['n_train']} cadences), made "
                             f"once into OUT/easy_data; the bar: validation AUC >= {EASY_AUC} within "
                             f"{EASY_MINUTES} min of training")
    parser.add_argument("--out", default="runs/recipe_check")
    parser.add_argument("--recipes", default=",".join(SCALE_DOWN),
                        help=f"comma-separated, from {', '.join(SCALE_DOWN)}")
    parser.add_argument("--tiny", action="store_true",
                        help="one toy epoch each on a --tiny data run: checks the plumbing only")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="further overrides for every recipe (after the scale-down)")
    args = parser.parse_args(argv)
    recipes = [r for r in args.recipes.split(",") if r]
    unknown = [r for r in recipes if r not in SCALE_DOWN]
    if unknown:
        parser.error(f"--recipes: unknown {unknown}; expected names from {list(SCALE_DOWN)}")
    out = Path(args.out)
    with FolderLock(str(out)):   # one check per folder: two would make the easy data twice
        return check(args, recipes, out)


def check(args: argparse.Namespace, recipes: list[str], out: Path) -> int:
    data_from = easy_data(out, args.tiny) if args.easy else args.data_from
    runs = [run_recipe(r, data_from, out, tuple(args.overrides), args.tiny) for r in recipes]
    write_json(str(out / "summary.json"), runs)
    print("\n== accelerator recipes, scaled down to 2 CPU cores" + (" (easy data) ==" if args.easy else " =="))
    print(format_summary(runs))
    if args.easy:
        print("\n".join(easy_verdict(run) for run in runs))
    print(f"\nsummary: {out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
