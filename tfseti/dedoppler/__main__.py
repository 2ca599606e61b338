"""``python -m tfseti.dedoppler``: the classical search over a test set, as a submission and a hit table.

::

    python -m tfseti.dedoppler DATA --out scores.csv [--split test] [--score two_of_three]
        [--background off_median] [--max-drift 0.2] [--drifts 65] [--block 7] [--clip 5]
        [--config FILE.toml] [key=value ...]

DATA is a Kaggle-layout folder (local or fsspec URL; ``--split train`` scores the labelled
cadences, ``test`` the sample submission's) or a TFRecord shard folder / glob (``test-*.tfrec``,
or every ``train-*`` shard with ``--split train``), read and checked exactly as ``tfseti.predict``
reads them: every id once; a shard folder must be complete (``tfseti.io.shards.open_shard_folder``)
and the ids read equal its manifest's count; an explicit glob's records are counted first.

Writes ``--out`` (``id,target``: the chosen score, a Kaggle submission: ROC AUC only needs the
order) and next to it ``<stem>_hits.csv``: per cadence every score, and the best straight path
(drift in channels per row and in Hz/s, its channel at the first row and at the reference time,
its ON SNR, each panel's SNR and the ON/OFF pattern). See ``tfseti.dedoppler.scores``.

Settings (:class:`DedopplerSettings`: the drift search, :class:`tfseti.data.config.DedopplerConfig`,
and the command's own) come from, lowest first: their defaults, ``--config FILE.toml`` (top-level
keys: ``drifts = 33``), the settings flags given (``--drifts 33``), and ``key=value`` arguments
after DATA (``drifts=33 clip=0``, values TOML literals). A key given both as a flag and as
``key=value`` is refused; every mistake is one ``error:`` line naming the file, flag or argument
and the key, before any data is read.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import typing
from dataclasses import dataclass, fields
from typing import Literal

from tfseti.command import command, common_flags, run_command
from tfseti.config import (SETTINGS_FILE_HELP, check_choices, flag_values, is_int, is_number,
                           load_settings)
from tfseti.console import show_progress
from tfseti.data.config import DEDOPPLER_BACKGROUNDS, DedopplerBackground, DedopplerConfig, Reference
from tfseti.dedoppler.scores import DEFAULT_PATTERN_SNR, SCORES

from tfseti.io.kaggle import CHANNEL_HZ, ROW_SECONDS

SPLITS = ("test", "train")
Score = Literal["straight_line", "two_of_three", "panel_maxima"]
assert typing.get_args(Score) == SCORES
_SEARCH = DedopplerConfig()
# The settings flags: left out, they are absent from the parsed arguments (not their default),
# so that only the flags given override the settings file.
GIVEN = argparse.SUPPRESS


@dataclass(frozen=True)
class DedopplerSettings:
    """The command's settings. The first seven fields are the drift search's
    (:class:`DedopplerConfig`, :meth:`search`; the keys of a recipe's ``[view.dedoppler]``
    table), the rest the command's own: the score written as ``target``, the panel SNR that counts
    as a detection in the ON/OFF pattern, the data's channel width (Hz) and row duration (s), for
    the hit table's Hz/s, and the cadences scored per batch."""

    max_drift: float = _SEARCH.max_drift
    drifts: int = _SEARCH.drifts
    block: int = _SEARCH.block
    background: DedopplerBackground = _SEARCH.background
    reference: Reference = _SEARCH.reference
    panel_gap: int = _SEARCH.panel_gap
    clip: float = _SEARCH.clip
    score: Score = "two_of_three"
    pattern_snr: float = DEFAULT_PATTERN_SNR
    channel_hz: float = CHANNEL_HZ
    row_seconds: float = ROW_SECONDS
    batch_size: int = 64

    def __post_init__(self):
        if not is_int(self.batch_size, 1):
            raise ValueError(f"DedopplerSettings.batch_size: expected an int >= 1, "
                             f"got {self.batch_size!r}")
        # The Hz/s of every drift rate is channel_hz / row_seconds: 0 was a ZeroDivisionError,
        # a zero channel width drift 0 everywhere. (Before check_choices, which would call an
        # infinite one only "not finite".)
        for name in ("row_seconds", "channel_hz"):
            value = getattr(self, name)
            if not (is_number(value) and math.isfinite(value) and value > 0):
                raise ValueError(f"DedopplerSettings.{name}: expected a finite number > 0, "
                                 f"got {value!r}")
        check_choices(self)  # and a NaN pattern_snr, which silently marked no panel
        if not is_number(self.pattern_snr):
            raise ValueError(f"DedopplerSettings.pattern_snr: expected a number, "
                             f"got {self.pattern_snr!r}")
        self.search()  # the drift search's own checks

    def search(self) -> DedopplerConfig:
        """The drift search's options."""
        return DedopplerConfig(**{f.name: getattr(self, f.name) for f in fields(DedopplerConfig)})


def build_parser() -> argparse.ArgumentParser:
    d = DedopplerSettings()
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
    parser.add_argument("--config", metavar="FILE.toml", default=None, help=SETTINGS_FILE_HELP)
    parser.add_argument("--score", choices=SCORES, default=GIVEN,
                        help="the score written as target (all are in the hit table; default "
                             f"{d.score})")
    parser.add_argument("--background", choices=DEDOPPLER_BACKGROUNDS, default=GIVEN,
                        help="per-channel background: the OFF panels' median or each panel's own "
                             f"(default {d.background})")
    parser.add_argument("--max-drift", type=float, default=GIVEN,
                        help=f"largest |drift| searched, channels per row (default {d.max_drift:g})")
    parser.add_argument("--drifts", type=int, default=GIVEN,
                        help=f"drift rates searched (default {d.drifts})")
    parser.add_argument("--block", type=int, default=GIVEN,
                        help=f"rows summed per block (default {d.block})")
    parser.add_argument("--clip", type=float, default=GIVEN,
                        help=f"clip each block at this many noise sigmas (0 = off; default {d.clip:g})")
    parser.add_argument("--panel-gap", type=int, default=GIVEN,
                        help="rows of slew between panels, for the straight path through the cadence "
                             f"(default {d.panel_gap})")
    parser.add_argument("--pattern-snr", type=float, default=GIVEN,
                        help="panel SNR that counts as a detection in the ON/OFF pattern "
                             f"(default {d.pattern_snr:g})")
    parser.add_argument("--channel-hz", type=float, default=GIVEN,
                        help=f"channel width (Hz; default {d.channel_hz:g})")
    parser.add_argument("--row-seconds", type=float, default=GIVEN,
                        help=f"row duration (s; default {d.row_seconds:g})")
    parser.add_argument("--batch-size", type=int, default=GIVEN,
                        help=f"cadences scored per batch (default {d.batch_size})")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="settings overrides after DATA, values as TOML literals (drifts=33 "
                             "background=panel_median); the keys are DedopplerSettings' fields")
    return parser


def parse_command_line(argv=None) -> tuple[argparse.Namespace, DedopplerSettings]:
    """``(arguments, resolved settings)`` of a command line (raises ``ConfigError`` /
    ``FileNotFoundError``; reads nothing but ``--config``)."""
    parser = build_parser()
    # intermixed: the key=value arguments may follow the flags (DATA comes first)
    args = parser.parse_intermixed_args(argv)
    flags = flag_values(parser, args, DedopplerSettings)
    return args, load_settings(DedopplerSettings, args.config, args.overrides, flags)


def hits_path(out: str) -> str:
    stem, _ = os.path.splitext(out)
    return f"{stem}_hits.csv"


def run(args, settings: DedopplerSettings) -> tuple[str, str, int, float]:
    import pandas as pd

    # numpy + Numba (equal to tfseti.dedoppler.scores' TensorFlow op to float rounding, tested):
    # a Kaggle folder is scored without importing TensorFlow; shards still read through tf.data
    from tfseti.dedoppler.window_scores import score_batch
    from tfseti.io import fs as fsutil
    from tfseti.predict.submission import Prediction, write_submission
    from tfseti.predict.test_data import check_ids, open_test_data

    cfg = settings.search()
    data = open_test_data(args.data, args.split)
    print(f"data: {data.description}")
    bar = None
    if show_progress(not args.no_progress):
        from tqdm import tqdm

        bar = tqdm(total=data.expected_count, unit="cadence", desc="dedoppler", file=sys.stderr)
    ids, rows = [], []
    start = time.perf_counter()
    hz_s = settings.channel_hz / settings.row_seconds
    for batch_ids, cadence in data.batches(settings.batch_size):
        if cadence.shape[1] != 6:
            raise ValueError(f"{args.data}: the ON/OFF search needs 6-panel cadences, the data holds "
                             f"{cadence.shape[1]} panels (ON-only shards, converted with --panels on)")
        result = score_batch(cadence, cfg, settings.pattern_snr)
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
    target = table[settings.score].to_numpy()
    prediction = Prediction(ids, target[None], target)
    write_submission(prediction, args.out)
    hits = hits_path(args.out)
    fs, inner = fsutil.url_to_fs(hits)
    with fs.open(inner, "w") as handle:
        table.to_csv(handle, index=False)
    return args.out, hits, len(ids), seconds


@command(ValueError, FileNotFoundError)  # ConfigError is a ValueError
def main(argv=None) -> int:
    args, settings = parse_command_line(argv)
    out, hits, count, seconds = run(args, settings)
    rate = count / seconds if seconds > 0 else float("nan")
    print(f"scores ({settings.score}): {out}")
    print(f"hits: {hits}")
    print(f"{count} cadences in {seconds:.1f} s ({rate:.0f} cadences/s)")
    return 0


if __name__ == "__main__":
    run_command(main)
