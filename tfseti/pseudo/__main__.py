"""``python -m tfseti.pseudo``: pseudo-label an unlabelled set into training shards.

::

    python -m tfseti.pseudo --teacher runs/teacher --data kaggle_dir --out shards/pseudo \\
        --select all --tta flips

``--teacher``: comma-separated run folders (every ``fold*/saved_model``) or SavedModels, whose
predictions are ensembled (``--ensemble mean|rank``); ``--data``: a Kaggle-layout folder (its
``test/``), a test shard folder or a shard glob. ``--select`` (default ``all``) and ``--hard`` as
in :mod:`tfseti.pseudo.selection`. Exit code 0, or 2 with one ``error:`` line.
"""

from __future__ import annotations

import argparse

from tfseti.command import command, common_flags, run_command
from tfseti.io.folder_lock import FolderLock, FolderLocked
from tfseti.pseudo.selection import FORMS, parse_selection


def parse_args(argv=None) -> argparse.Namespace:
    from tfseti.predict.ensembles import ENSEMBLES
    from tfseti.predict.tta import TTA_MODES

    parser = argparse.ArgumentParser(
        prog="python -m tfseti.pseudo", parents=[common_flags("no_progress", "break_lock")],
        description="Predict an unlabelled set with a teacher ensemble and write the chosen "
                    "records with their (soft) pseudo-labels as training shards (data.extra).")
    parser.add_argument("--teacher", required=True,
                        help="comma-separated run folders (every fold*/saved_model) or SavedModels")
    parser.add_argument("--data", required=True,
                        help="the unlabelled set: Kaggle-layout folder (test/ + "
                             "sample_submission.csv), test shard folder or shard glob")
    parser.add_argument("--out", required=True, help="output shard folder (local or gs://)")
    parser.add_argument("--select", default="all", help=f"{FORMS} (default all)")
    parser.add_argument("--hard", action="store_true",
                        help="hard labels (probability >= 0.5) instead of the soft probability")
    parser.add_argument("--tta", choices=TTA_MODES, default="none",
                        help="flips: the teachers' mean over the 4 time/frequency flips")
    parser.add_argument("--ensemble", choices=ENSEMBLES, default="mean",
                        help="combine the teachers by mean probability or mean normalised rank")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--shard-mb", type=float, default=100.0,
                        help="target shard size in MB (as tfseti convert)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace pseudo-labels written with other settings in --out")
    return parser.parse_args(argv)


@command(ValueError, FileNotFoundError, FolderLocked)
def main(argv=None) -> int:
    args = parse_args(argv)
    selection = parse_selection(args.select)
    if not args.shard_mb > 0:
        raise ValueError(f"--shard-mb must be > 0, got {args.shard_mb}")
    from tfseti.pseudo.labelling import pseudo_label

    # One writer per shard folder (as tfseti convert): two would delete each
    # other's temporary shards.
    with FolderLock(args.out, break_lock=args.break_lock):
        pseudo_label(args.teacher, args.data, args.out, selection, hard=args.hard,
                     tta=args.tta, ensemble=args.ensemble, batch_size=args.batch_size,
                     shard_mb=args.shard_mb, overwrite=args.overwrite,
                     progress=not args.no_progress, log=lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    run_command(main)
