"""``python -m tfseti.scan``: search observation cadences (``.fil`` / ``.h5``) with trained models and
the classical de-Doppler search.

::

    python -m tfseti.scan --cadence A1.h5,B.h5,A2.h5,C.h5,A3.h5,D.h5 --model runs/demo --out scan/
    python -m tfseti.scan --cadence-list obs.lst --model runs/k2,runs/k3 --tta flips --out scan/
    python -m tfseti.scan --cadence-list obs.lst --out scan/ --config my_scan.toml hit_snr=12 overlap=0
    python -m tfseti.scan --cadence-list obs.lst --out scan/ --workers 8      # 8 processes
    python -m tfseti.scan --cadence-list obs.lst --model runs/demo --out scan/ \\
        --runner DirectRunner [--direct_num_workers 2 ...]    # Apache Beam (tfseti.scan.beam)

Each file of a cadence is also searched alone (turboSETI's per-file search: its ``.dat``), and
``find_event_pipeline`` makes the cadence's events (``events.csv``) from the six ``.dat`` files.
Without ``--model`` only the classical searches run, and TensorFlow is not imported. Options
after the known ones are Beam pipeline options (``--project``, ``--region``,
``--temp_location`` ... for ``DataflowRunner``) and are refused with the local runner. See
``tfseti.scan`` for the outputs.

Settings (:class:`tfseti.scan.settings.ScanSettings`) come from, lowest first: their defaults,
``--config FILE.toml`` (the settings as top-level keys: ``hit_snr = 12``), the settings flags given
(``--hit-snr 12``), and ``key=value`` arguments (``hit_snr=12 overlap=0``, values TOML literals).
A key given both as a flag and as ``key=value`` is refused. Every mistake (an unknown key with
the closest one, a wrong type, a bad value) is one ``error:`` line naming the file, flag or
argument and the key, before anything is read or written.
"""

from __future__ import annotations

import argparse
import re

from tfseti.command import command, common_flags, run_command, workers_flag
from tfseti.config import SETTINGS_FILE_HELP, flag_values
from tfseti.console import positive_int, word_or_int
from tfseti.io.folder_lock import FolderLock, FolderLocked
from tfseti.io.observations import read_cadence_list
from tfseti.scan.settings import DEFAULT_MAX_DRIFT_HZ, ScanSettings, load_scan_settings
from tfseti.scan.windows import TIME_RESAMPLES

LOCAL = "local"
# A settings override: a (dotted) key, "=", a value; anything else left over is a Beam option.
OVERRIDE = re.compile(r"[A-Za-z_][\w.]*=")
# The settings flags: left out, they are absent from the parsed arguments (not their default),
# so that only the flags given override the settings file.
GIVEN = argparse.SUPPRESS


def build_parser() -> argparse.ArgumentParser:
    d = ScanSettings()
    p = argparse.ArgumentParser(
        prog="python -m tfseti.scan",
        parents=[common_flags("no_progress", "break_lock"),
                 workers_flag("worker processes of the local runner, each with its share of the "
                              "cores (tfseti.scan.workers: read groups and coarse channels; "
                              "the same files whatever N)", default=1)],
        description="Search six-file ABACAD observation cadences (.fil/.h5) with SavedModels and the "
                    "classical de-Doppler search: window tables, hit tables (CSV and turboSETI .dat) "
                    "and a page of the top candidates.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--cadence", help="six comma-separated .fil/.h5 paths in ABACAD order")
    src.add_argument("--cadence-list", help="a list file: one path per line, six per cadence (ABACAD), "
                                            "as turboSETI's find_event_pipeline takes")
    p.add_argument("--model", default="",
                   help="comma-separated SavedModels or run folders (every fold*/saved_model), "
                        "ensembled by mean probability; none: the classical search alone")
    p.add_argument("--out", required=True, help="output folder (resumable: complete cadences are skipped)")
    p.add_argument("--config", metavar="FILE.toml", default=None, help=SETTINGS_FILE_HELP)
    p.add_argument("--tta", choices=("none", "flips"), default=GIVEN,
                   help=f"flip TTA of the model (default {d.tta})")
    p.add_argument("--overlap", type=int, default=GIVEN,
                   help=f"channels shared by neighbouring windows (default {d.overlap})")
    p.add_argument("--fine-per-coarse", type=word_or_int(("auto", "none"), 2), default=GIVEN,
                   help="fine channels per coarse channel (DC spikes, coarse edges): auto (2^20 for "
                        f"high-resolution products), none, or a number (default {d.fine_per_coarse})")
    p.add_argument("--time-resample", choices=TIME_RESAMPLES, default=GIVEN,
                   help="integrations -> model rows: area (mean over overlap, default) or linear")
    p.add_argument("--max-drift-hz", type=float, default=GIVEN,
                   help=f"largest |drift| of the classical search, Hz/s (default {DEFAULT_MAX_DRIFT_HZ})")
    p.add_argument("--drifts", type=word_or_int(("auto",), 1), default=GIVEN,
                   help="drift rates searched: auto (half a channel at the cadence's ends; default) "
                        "or a number")
    p.add_argument("--pattern-snr", type=float, default=GIVEN,
                   help="a file's SNR along a window's path that counts as present (its pattern "
                        f"column; default {d.pattern_snr:g})")
    p.add_argument("--hit-snr", type=float, default=GIVEN,
                   help="SNR threshold of the per-file search (each file's .dat: turboSETI's "
                        f"find_doppler snr; default {d.hit_snr:g}, turboSETI's own default is 25)")
    p.add_argument("--event-filter", type=int, choices=(1, 2, 3), default=GIVEN,
                   help="find_event_pipeline level of events.csv: 1 every ON hit, 2 in no OFF file, "
                        "3 in every ON file and no OFF file (default, turboSETI's)")
    p.add_argument("--min-probability", type=float, default=GIVEN,
                   help="a window is a hit when the model probability reaches this (default "
                        f"{d.min_probability:g}) ...")
    p.add_argument("--min-dedoppler", type=float, default=GIVEN,
                   help="... or the classical two_of_three score reaches this (SNR units; default "
                        f"{d.min_dedoppler:g})")
    p.add_argument("--batch-size", type=int, default=GIVEN,
                   help=f"windows scored per batch (default {d.batch_size})")
    p.add_argument("--read-mb", type=float, default=GIVEN,
                   help="channels read at once from the six files, MB of float32 (default "
                        f"{d.read_mb:g})")
    p.add_argument("--top", type=int, default=GIVEN,
                   help=f"candidates on the page (0: no page; default {d.top})")
    p.add_argument("--width", type=positive_int, default=256,
                   help="window channels when there is no model (else the model's)")
    p.add_argument("--runner", default=LOCAL,
                   help="local (default) or an Apache Beam runner: DirectRunner, DataflowRunner, "
                        "FlinkRunner, SparkRunner ...")
    return p


def split_extras(extras: list[str]) -> tuple[list[str], list[str]]:
    """The arguments argparse left over -> ``(key=value overrides, Beam pipeline options)``.

    A ``key=value`` word is an override, except right after a Beam option written without ``=``
    (``--labels team=seti``: that option's value, as Beam reads it); write such options
    ``--name=value``, or the overrides before them."""
    overrides, beam = [], []
    for i, word in enumerate(extras):
        after_option = i > 0 and extras[i - 1].startswith("--") and "=" not in extras[i - 1]
        if OVERRIDE.match(word) and not after_option:
            overrides.append(word)
        else:
            beam.append(word)
    return overrides, beam


def parse_command_line(argv=None) -> tuple[argparse.Namespace, ScanSettings, list[str]]:
    """``(arguments, resolved settings, Beam pipeline options)`` of a command line (raises
    ``ConfigError`` / ``FileNotFoundError`` / ``ValueError``; reads nothing but ``--config``)."""
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    overrides, beam_args = split_extras(extras)
    if beam_args and args.runner == LOCAL:
        raise ValueError(f"unknown arguments {beam_args} (Beam pipeline options need --runner)")
    if args.workers != 1 and args.runner != LOCAL:
        raise ValueError(f"--workers is the local runner's; --runner {args.runner} has its own "
                         f"(--direct_num_workers, a cluster's workers)")
    settings = load_scan_settings(args.config, overrides, flag_values(parser, args, ScanSettings))
    return args, settings, beam_args


def cadences_and_models(args) -> tuple[list[list[str]], list[str]]:
    """``(cadences, SavedModel paths)`` of ``--cadence`` / ``--cadence-list`` and ``--model``
    (this command's and ``python -m tfseti.sensitivity``'s)."""
    if args.cadence:
        cadences = [[p.strip() for p in args.cadence.split(",") if p.strip()]]
    else:
        cadences = read_cadence_list(args.cadence_list)
    models = []
    if args.model.strip():     # TensorFlow is imported only with a model
        from tfseti.predict.models import resolve_model_paths

        models = resolve_model_paths(args.model)
    return cadences, models


@command(ValueError, FileNotFoundError, FolderLocked)  # ObservationError, ConfigError: ValueErrors
def main(argv=None) -> int:
    from tfseti.console import show_progress
    from tfseti.scan.run import ScanJob, run_local

    args, settings, beam_args = parse_command_line(argv)
    cadences, models = cadences_and_models(args)
    job = ScanJob(cadences, models, args.out, settings, width=args.width, workers=args.workers)
    progress = show_progress(not args.no_progress)
    # One scan writes OUT at a time: a second one would rewrite scan.json and hits.csv under
    # the first, and both would scan the same cadences into the same .partial folders.
    with FolderLock(args.out, break_lock=args.break_lock):
        if args.runner == LOCAL:
            path, hits = run_local(job, progress)
        else:
            from tfseti.scan.beam import run_beam

            path, hits = run_beam(job, args.runner, beam_args)
    print(f"{len(hits)} hit(s): {path}")
    return 0


if __name__ == "__main__":
    run_command(main)
