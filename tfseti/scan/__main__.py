"""``python -m tfseti.scan``: search observation cadences (``.fil`` / ``.h5``) with trained models and
the classical de-Doppler search.

::

    python -m tfseti.scan --cadence A1.h5,B.h5,A2.h5,C.h5,A3.h5,D.h5 --model runs/demo --out scan/
    python -m tfseti.scan --cadence-list obs.lst --model runs/k2,runs/k3 --tta flips --out scan/
    python -m tfseti.scan --cadence-list obs.lst --model runs/demo --out scan/ \\
        --runner DirectRunner [--direct_num_workers 2 ...]    # Apache Beam (tfseti.scan.beam)

Each file of a cadence is also searched alone (turboSETI's per-file search: its ``.dat``), and
``find_event_pipeline`` makes the cadence's events (``events.csv``) from the six ``.dat`` files.
Without ``--model`` only the classical searches run, and TensorFlow is not imported. Options
after the known ones are Beam pipeline options (``--project``, ``--region``,
``--temp_location`` ... for ``DataflowRunner``) and are refused with the local runner. See
``tfseti.scan`` for the outputs.
"""

from __future__ import annotations

import argparse

from tfseti.command import command, common_flags, run_command
from tfseti.console import positive_int, word_or_int
from tfseti.io.folder_lock import FolderLock, FolderLocked
from tfseti.io.observations import read_cadence_list
from tfseti.scan.settings import DEFAULT_MAX_DRIFT_HZ, ScanSettings
from tfseti.scan.windows import TIME_RESAMPLES

LOCAL = "local"


def build_parser() -> argparse.ArgumentParser:
    d = ScanSettings()
    p = argparse.ArgumentParser(
        prog="python -m tfseti.scan", parents=[common_flags("no_progress", "break_lock")],
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
    p.add_argument("--tta", choices=("none", "flips"), default=d.tta, help="flip TTA of the model")
    p.add_argument("--overlap", type=int, default=d.overlap, help="channels shared by neighbouring windows")
    p.add_argument("--fine-per-coarse", type=word_or_int(("auto", "none"), 2), default=d.fine_per_coarse,
                   help="fine channels per coarse channel (DC spikes, coarse edges): auto (2^20 for "
                        "high-resolution products), none, or a number")
    p.add_argument("--time-resample", choices=TIME_RESAMPLES, default=d.time_resample,
                   help="integrations -> model rows: area (mean over overlap) or linear")
    p.add_argument("--max-drift-hz", type=float, default=d.max_drift_hz,
                   help=f"largest |drift| of the classical search, Hz/s (default {DEFAULT_MAX_DRIFT_HZ})")
    p.add_argument("--drifts", type=word_or_int(("auto",), 1), default=d.drifts,
                   help="drift rates searched: auto (half a channel at the cadence's ends) or a number")
    p.add_argument("--pattern-snr", type=float, default=d.pattern_snr,
                   help="a file's SNR along a window's path that counts as present (its pattern column)")
    p.add_argument("--hit-snr", type=float, default=d.hit_snr,
                   help="SNR threshold of the per-file search (each file's .dat: turboSETI's "
                        f"find_doppler snr; default {d.hit_snr:g}, turboSETI's own default is 25)")
    p.add_argument("--event-filter", type=int, choices=(1, 2, 3), default=d.event_filter,
                   help="find_event_pipeline level of events.csv: 1 every ON hit, 2 in no OFF file, "
                        "3 in every ON file and no OFF file (default, turboSETI's)")
    p.add_argument("--min-probability", type=float, default=d.min_probability,
                   help="a window is a hit when the model probability reaches this ...")
    p.add_argument("--min-dedoppler", type=float, default=d.min_dedoppler,
                   help="... or the classical two_of_three score reaches this (SNR units)")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--read-mb", type=float, default=d.read_mb,
                   help="channels read at once from the six files, MB of float32")
    p.add_argument("--top", type=int, default=d.top, help="candidates on the page (0: no page)")
    p.add_argument("--width", type=positive_int, default=256,
                   help="window channels when there is no model (else the model's)")
    p.add_argument("--runner", default=LOCAL,
                   help="local (default) or an Apache Beam runner: DirectRunner, DataflowRunner, "
                        "FlinkRunner, SparkRunner ...")
    return p


@command(ValueError, FileNotFoundError, FolderLocked)  # ObservationError is a ValueError
def main(argv=None) -> int:
    from tfseti.console import show_progress

    parser = build_parser()
    args, beam_args = parser.parse_known_args(argv)
    if beam_args and args.runner == LOCAL:
        raise ValueError(f"unknown arguments {beam_args} (Beam pipeline options need --runner)")
    settings = ScanSettings(
        overlap=args.overlap, fine_per_coarse=args.fine_per_coarse,
        time_resample=args.time_resample, tta=args.tta, batch_size=args.batch_size,
        max_drift_hz=args.max_drift_hz, drifts=args.drifts, pattern_snr=args.pattern_snr,
        min_probability=args.min_probability, min_dedoppler=args.min_dedoppler,
        read_mb=args.read_mb, top=args.top, hit_snr=args.hit_snr,
        event_filter=args.event_filter)
    if args.cadence:
        cadences = [[p.strip() for p in args.cadence.split(",") if p.strip()]]
    else:
        cadences = read_cadence_list(args.cadence_list)
    from tfseti.scan.run import ScanJob, run_local

    models = []
    if args.model.strip():     # TensorFlow is imported only with a model
        from tfseti.predict.models import resolve_model_paths

        models = resolve_model_paths(args.model)
    job = ScanJob(cadences, models, args.out, settings, width=args.width)
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
