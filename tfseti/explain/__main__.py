"""``python -m tfseti.explain --model RUN [--fold K] --ids ID1,ID2,... [--data DIR] --out DIR``."""

from __future__ import annotations

import argparse

from tfseti.command import command, run_command


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tfseti.explain",
        description="Grad-CAM heat maps of a trained run's networks for chosen cadences: one "
                    "PNG per id (the waterfall, or the drift-rate maps of a dedoppler view, "
                    "under the heat) and gradcam.csv (id, fold, score, peak panel/row/channel).")
    parser.add_argument("--model", required=True, metavar="RUN",
                        help="run folder of python -m tfseti.train (fold<K>/model.keras), or one "
                             "fold folder; local path or URL")
    parser.add_argument("--fold", type=int, default=None, metavar="K",
                        help="explain every id with fold K's network (default: each id with the "
                             "fold that held it out, from oof.csv; needed for ids not in it)")
    parser.add_argument("--ids", required=True, metavar="ID1,ID2,...",
                        help="comma-separated cadence ids")
    parser.add_argument("--data", default=None, metavar="DIR",
                        help="Kaggle-layout folder (train, then test split) or shard folder "
                             "holding the cadences (default: the run's data, as the report "
                             "finds it)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="local output folder for gradcam-<id>.png and gradcam.csv")
    return parser.parse_args(argv)


@command(FileNotFoundError, ValueError)  # ExplainError is a ValueError
def main(argv=None) -> int:
    args = parse_args(argv)
    from tfseti.explain.run import explain_run, parse_ids

    path = explain_run(args.model, parse_ids(args.ids), args.out, fold=args.fold,
                       data=args.data, log=lambda line: print(line, flush=True))
    print(path)
    return 0


if __name__ == "__main__":
    run_command(main)
