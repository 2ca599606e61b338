"""``python -m tfseti.predict``: predict a test set with exported SavedModels into a Kaggle submission.

::

    python -m tfseti.predict --model runs/b0/fold0/saved_model,runs/b0 --data kaggle_dir \\
        --tta flips --ensemble mean --out submission.csv

``--model``: comma-separated SavedModels or run folders (``tfseti.predict.models``); ``--data``: a
Kaggle-layout folder, a complete shard folder or a shard glob (``tfseti.predict.test_data``);
``--tta flips``: the mean over the 4 time/frequency flips, as the training augmentation made them
(``tfseti.predict.tta``); ``--tta random:N`` (``--tta-seed``): the mean over N passes of the model's
own exact, label-preserving training augmentations (``tfseti.predict.random_tta``);
``--ensemble mean|rank`` across models (``tfseti.predict.ensembles``), or ``stack`` / ``stack:gbm``:
a level-2 model over the run folders' out-of-fold predictions (``tfseti.predict.stacking``; writes
``stack.json`` next to the submission). Writes ``id,target`` with every test id exactly once
(``tfseti.predict.submission``). Exit code 0, or 2 with one ``error:`` line.
"""

from __future__ import annotations

import argparse

from tfseti.command import command, common_flags, run_command
from tfseti.predict.ensembles import ENSEMBLES
from tfseti.predict.models import load_model, resolve_model_paths
from tfseti.predict.random_tta import RandomTta
from tfseti.predict.stacking import (ENSEMBLE_STACK, STACKERS, check_run_models, parse_stack, run_features,
                                     stack_runs, write_stack_json)
from tfseti.predict.submission import Prediction, predict, write_submission
from tfseti.predict.test_data import open_test_data
from tfseti.predict.tta import RANDOM_TTA, TTA_MODES, parse_tta

STACK_CHOICES = (ENSEMBLE_STACK, *(f"{ENSEMBLE_STACK}:{m}" for m in STACKERS))


def _stack_models(spec: str, folds: list[int]) -> tuple[list[str], list[list[int]]]:
    """The fold SavedModels of each run of ``--model`` and, per run, their indices."""
    paths, groups = [], []
    for run in (part.strip() for part in spec.split(",")):
        if not run:
            continue
        run_paths = resolve_model_paths(run)
        check_run_models(run, run_paths, folds)
        groups.append(list(range(len(paths), len(paths) + len(run_paths))))
        paths.extend(run_paths)
    return paths, groups


@command(ValueError, FileNotFoundError)
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tfseti.predict", parents=[common_flags("no_progress")],
        description="Predict a test set with exported SavedModels and write a Kaggle submission.")
    parser.add_argument("--model", required=True,
                        help="comma-separated SavedModel folders or run folders (every fold*/saved_model)")
    parser.add_argument("--data", required=True,
                        help="Kaggle-layout folder (test/ + sample_submission.csv), test shard folder "
                             "(test-*.tfrec) or shard glob pattern")
    parser.add_argument("--tta", default="none", metavar="|".join((*TTA_MODES, f"{RANDOM_TTA}:N")),
                        help="flips: mean over the 4 time/frequency flip combinations; random:N: "
                             "mean over N passes of the model's own training flips, frequency "
                             "roll and OFF shuffle (those it trained with), drawn per sample")
    parser.add_argument("--tta-seed", type=int, default=0, help="seed of --tta random:N")
    parser.add_argument("--ensemble", choices=(*ENSEMBLES, *STACK_CHOICES), default="mean",
                        help="combine models by mean probability or mean normalised rank; stack "
                             "(logistic regression) or stack:gbm: a level-2 model fit on the run "
                             "folders' oof.csv (every --model a run folder; writes stack.json)")
    parser.add_argument("--out", default="submission.csv", help="output csv (local or gs://)")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args(argv)

    mode, passes = parse_tta(args.tta)
    stacker = parse_stack(args.ensemble)
    stack = groups = None
    if stacker:   # fit (and show) the level-2 model before any SavedModel is loaded
        stack = stack_runs([p.strip() for p in args.model.split(",") if p.strip()], stacker)
        print(f"stacking over the out-of-fold predictions ({stack.rows} ids, folds "
              f"{stack.folds}; stack = leave-one-fold-out):\n{stack.table()}")
        paths, groups = _stack_models(args.model, stack.folds)
    else:
        paths = resolve_model_paths(args.model)
    models = [load_model(p) for p in paths]
    for model in models:
        print(f"model {model.describe()}")
    random_tta = RandomTta(models, passes, args.tta_seed) if mode == RANDOM_TTA else None
    for line in random_tta.describe() if random_tta else ():
        print(line)
    data = open_test_data(args.data)
    print(f"data: {data.description}")
    result = predict(models, data, args.tta, "mean" if stack else args.ensemble, args.batch_size,
                     progress=not args.no_progress, tta_seed=args.tta_seed, random_tta=random_tta)
    if stack:
        result = Prediction(result.ids, result.per_model,
                            stack.predict(run_features(result.per_model, groups)))
    write_submission(result, args.out)
    if stack:
        print(f"stack: {write_stack_json(stack, args.out, {'tta': args.tta, 'tta_seed': args.tta_seed})}")
    print(f"submission: {args.out}")
    print(f"{len(result.ids)} ids, mean target {float(result.target.mean()):.4f} "
          f"({len(models)} model(s), tta {args.tta}, ensemble {args.ensemble})")
    return 0


if __name__ == "__main__":
    run_command(main)
