"""``python -m tfseti.dedoppler``: the classical search over a test set, as a submission and a hit table.

::

    python -m tfseti.dedoppler DATA --out scores.csv [--split test] [--score two_of_three]
        [--background off_median] [--max-drift 0.2] [--drifts 65] [--block 7] [--clip 5]

DATA is a Kaggle-layout folder (local or fsspec URL; ``--split train`` scores the labelled
cadences, ``test`` the sample submission's) or a TFRecord shard folder / glob (``test-*.tfrec``,
or every ``train-*`` shard with ``--split train``), read and checked exactly as ``tfseti.predict``
reads them: every id once; a shard folder must be complete (``tfseti.io.shards.open_shard_folder``)
and the ids read equal its manifest's count; an explicit glob's records are counted first.

Writes ``--out`` (``id,target``: the chosen score, a Kaggle submission: ROC AUC only needs the
order) and next to it ``<stem>_hits.csv``: per cadence every score, and the best straight path
(drift in channels per row and in Hz/s, its channel at the first row and at the reference time,
its ON SNR, each panel's SNR and the ON/OFF pattern). See ``tfseti.dedoppler.scores``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from tfseti.command import command, common_flags, run_command
from tfseti.console import show_progress
from tfseti.dedoppler.scores import DEFAULT_PATTERN_SNR, SCORES

from tfseti.io.kaggle import CHANNEL_HZ, ROW_SECONDS

SPLITS = ("test", "train")


def build_parser() -> argparse.ArgumentParser:
    from tfseti.data.config import DEDOPPLER_BACKGROUNDS, DedopplerConfig

    d = DedopplerConfig()
    parser = argparse.ArgumentParser(
        prog="python -m tfseti.dedoppler", parents=[common_flags("no_progress")],
        description="Classical de-Doppler ON/OFF search: a score per cadence (Kaggle submission "
                    "format) and a table of the best hit of each cadence.")
    parser.add_argument("data", help="Kaggle-layout folder or TFRecord shard folder / glob")
    parser.add_argument("--split", choices=SPLITS, default="test",
                        help="test (sample submission / test-*.tfrec) or train (labelled cadences)")
    parser.add_argument("--out", default="dedoppler.csv",
                        help="submission csv (id,target); the hit table goes next to it as "
                             "<stem>_hits.csv (default dedoppler.csv)")
    parser.add_argument("--score", choices=SCORES, default="two_of_three",
                        help="the score written as target (all are in the hit table)")
    parser.add_argument("--background", choices=DEDOPPLER_BACKGROUNDS, default=d.background,
                        help="per-channel background: the OFF panels' median or each panel's own")
    parser.add_argument("--max-drift", type=float, default=d.max_drift,
                        help="largest |drift| searched, channels per row (default %(default)s)")
    parser.add_argument("--drifts", type=int, default=d.drifts,
                        help="drift rates searched (default %(default)s)")
    parser.add_argument("--block", type=int, default=d.block, help="rows summed per block")
    parser.add_argument("--clip", type=float, default=d.clip,
                        help="clip each block at this many noise sigmas (0 = off)")
    parser.add_argument("--panel-gap", type=int, default=d.panel_gap,
                        help="rows of slew between panels, for the straight path through the cadence")
    parser.add_argument("--pattern-snr", type=float, default=DEFAULT_PATTERN_SNR,
                        help="panel SNR that counts as a detection in the ON/OFF pattern")
    parser.add_argument("--channel-hz", type=float, default=CHANNEL_HZ, help="channel width (Hz)")
    parser.add_argument("--row-seconds", type=float, default=ROW_SECONDS, help="row duration (s)")
    parser.add_argument("--batch-size", type=int, default=64)
    return parser


def check_units(args) -> None:
    """``--row-seconds`` / ``--channel-hz`` (finite > 0) and ``--pattern-snr`` (finite): the Hz/s
    of every drift rate is ``channel_hz / row_seconds`` (0 gave a ZeroDivisionError, a zero
    channel width drift 0 everywhere), and a NaN pattern SNR silently marked no panel."""
    import math

    for flag, value in (("--row-seconds", args.row_seconds), ("--channel-hz", args.channel_hz)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{flag}: expected a finite number > 0, got {value!r}")
    if not math.isfinite(args.pattern_snr):
        raise ValueError(f"--pattern-snr: expected a finite number, got {args.pattern_snr!r}")


def hits_path(out: str) -> str:
    stem, _ = os.path.splitext(out)
    return f"{stem}_hits.csv"


def run(args) -> tuple[str, str, int, float]:
    import pandas as pd

    from tfseti.data.config import DedopplerConfig
    from tfseti.dedoppler.scores import score_batch
    from tfseti.io import fs as fsutil
    from tfseti.predict.submission import Prediction, write_submission
    from tfseti.predict.test_data import check_ids, open_test_data

    if args.batch_size < 1:
        raise ValueError(f"--batch-size: expected an int >= 1, got {args.batch_size}")
    check_units(args)
    cfg = DedopplerConfig(max_drift=args.max_drift, drifts=args.drifts, block=args.block,
                          background=args.background, clip=args.clip, panel_gap=args.panel_gap)
    data = open_test_data(args.data, args.split)
    print(f"data: {data.description}")
    bar = None
    if show_progress(not args.no_progress):
        from tqdm import tqdm

        bar = tqdm(total=data.expected_count, unit="cadence", desc="dedoppler", file=sys.stderr)
    ids, rows = [], []
    start = time.perf_counter()
    hz_s = args.channel_hz / args.row_seconds
    for batch_ids, cadence in data.batches(args.batch_size):
        if cadence.shape[1] != 6:
            raise ValueError(f"{args.data}: the ON/OFF search needs 6-panel cadences, the data holds "
                             f"{cadence.shape[1]} panels (ON-only shards, converted with --panels on)")
        result = score_batch(cadence, cfg, args.pattern_snr, pad_to=args.batch_size)
        for i, cid in enumerate(batch_ids):
            row = {"id": cid, **{name: float(v[i]) for name, v in result.scores.items()},
                   "drift_ch_per_row": float(result.drift[i]),
                   "drift_hz_s": float(result.drift[i] * hz_s),
                   "start_channel": float(result.start_channel[i]),
                   "reference_channel": int(result.channel[i]),
                   "snr": float(result.snr[i]), "pattern": result.pattern[i]}
            row.update({f"snr_panel{p}": float(result.panel_snr[i, p]) for p in range(6)})
            rows.append(row)
        ids.extend(batch_ids)
        if bar is not None:
            bar.update(len(batch_ids))
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - start
    check_ids(ids, data.expected_ids, data.expected_count)
    if not ids:
        # An empty table has no score columns to write (it was a KeyError): say what was read.
        raise ValueError(f"{args.data}: no {args.split} cadences to score ({data.description})")
    table = pd.DataFrame(rows)
    prediction = Prediction(ids, table[args.score].to_numpy()[None], table[args.score].to_numpy())
    write_submission(prediction, args.out)
    hits = hits_path(args.out)
    fs, inner = fsutil.url_to_fs(hits)
    with fs.open(inner, "w") as handle:
        table.to_csv(handle, index=False)
    return args.out, hits, len(ids), seconds


@command(ValueError, FileNotFoundError)
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    out, hits, count, seconds = run(args)
    rate = count / seconds if seconds > 0 else float("nan")
    print(f"scores ({args.score}): {out}")
    print(f"hits: {hits}")
    print(f"{count} cadences in {seconds:.1f} s ({rate:.0f} cadences/s)")
    return 0


if __name__ == "__main__":
    run_command(main)
