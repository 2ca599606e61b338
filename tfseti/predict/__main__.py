"""``python -m tfseti.predict``: predict a test set with exported SavedModels into a Kaggle submission.

::

    python -m tfseti.predict --model runs/b0/fold0/saved_model,runs/b0 --data kaggle_dir \\
        --tta flips --ensemble mean --out submission.csv

``--model``: comma-separated SavedModels or run folders (``tfseti.predict.models``); ``--data``: a
Kaggle-layout folder, a complete shard folder or a shard glob (``tfseti.predict.test_data``);
``--tta flips``: the mean over the 4 time/frequency flips, as the training augmentation made them
(``tfseti.predict.tta``); ``--ensemble mean|rank`` across models (``tfseti.predict.ensembles``).
Writes ``id,target`` with every test id exactly once (``tfseti.predict.submission``). Exit code 0,
or 2 with one ``error:`` line.
"""

from __future__ import annotations

import argparse
import sys

from tfseti.predict.ensembles import ENSEMBLES
from tfseti.predict.models import load_model, resolve_model_paths
from tfseti.predict.submission import predict, write_submission
from tfseti.predict.test_data import open_test_data
from tfseti.predict.tta import TTA_MODES


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tfseti.predict",
        description="Predict a test set with exported SavedModels and write a Kaggle submission.")
    parser.add_argument("--model", required=True,
                        help="comma-separated SavedModel folders or run folders (every fold*/saved_model)")
    parser.add_argument("--data", required=True,
                        help="Kaggle-layout folder (test/ + sample_submission.csv), test shard folder "
                             "(test-*.tfrec) or shard glob pattern")
    parser.add_argument("--tta", choices=TTA_MODES, default="none",
                        help="flips: mean over the 4 time/frequency flip combinations")
    parser.add_argument("--ensemble", choices=ENSEMBLES, default="mean",
                        help="combine models by mean probability or mean normalised rank")
    parser.add_argument("--out", default="submission.csv", help="output csv (local or gs://)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (there is none when stderr is not a terminal)")
    args = parser.parse_args(argv)

    try:
        models = [load_model(p) for p in resolve_model_paths(args.model)]
        for model in models:
            print(f"model {model.describe()}")
        data = open_test_data(args.data)
        print(f"data: {data.description}")
        result = predict(models, data, args.tta, args.ensemble, args.batch_size,
                         progress=not args.no_progress)
        write_submission(result, args.out)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"submission: {args.out}")
    print(f"{len(result.ids)} ids, mean target {float(result.target.mean()):.4f} "
          f"({len(models)} model(s), tta {args.tta}, ensemble {args.ensemble})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
