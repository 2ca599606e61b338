"""``python -m tfseti.report RUN_DIR [--out DIR] [--truth PATH] [--examples N]``."""

from __future__ import annotations

import argparse

from tfseti.command import command, run_command


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tfseti.report",
        description="Write an HTML report (index.html + PNGs) of a training run folder.")
    parser.add_argument("run_dir", metavar="RUN_DIR",
                        help="run folder of python -m tfseti.train (all folds or one foldK "
                             "folder); local path or URL (gs://...)")
    parser.add_argument("--out", default=None,
                        help="local output folder (default RUN_DIR/report; required for a URL)")
    parser.add_argument("--truth", default=None,
                        help="truth.csv to use (default: the one beside the Kaggle folder the "
                             "shards were converted from, when there is one)")
    parser.add_argument("--examples", type=int, default=3,
                        help="waterfalls per kind (true positives, false positives, missed)")
    return parser.parse_args(argv)


@command(ValueError, FileNotFoundError)  # RunFolderError is a ValueError
def main(argv=None) -> int:
    args = parse_args(argv)
    from tfseti.report import write_report

    index = write_report(args.run_dir, out=args.out, truth=args.truth, examples=args.examples,
                         log=lambda line: print(line, flush=True))
    print(index)
    return 0


if __name__ == "__main__":
    run_command(main)
