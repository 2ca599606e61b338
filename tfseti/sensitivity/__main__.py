"""``python -m tfseti.sensitivity``: injection-recovery completeness of the scan on a cadence's own
data, and the transmitter limits it implies.

::

    python -m tfseti.sensitivity --cadence A1.h5,B.h5,A2.h5,C.h5,A3.h5,D.h5 --out sens/
    python -m tfseti.sensitivity --cadence-list obs.lst --model runs/demo --out sens/ \\
        --n 2000 --snr 5:50 --drift -0.5:0.5 --width 1:50 --families linear,sine --seed 1 \\
        --sefd 10 --distance-pc 50

Resumable: a rerun with the same arguments skips the chunks already in ``OUT/chunks`` and rebuilds
the tables. See ``tfseti.sensitivity`` and docs/sensitivity.md for the outputs.
"""

from __future__ import annotations

import argparse
import re
import sys

from tfseti.command import command, common_flags, run_command
from tfseti.console import non_negative_int, positive_int, word_or_int
from tfseti.io.folder_lock import FolderLock, FolderLocked
from tfseti.scan.settings import ScanSettings


def number_range(text: str) -> tuple[float, float]:
    """``LO:HI`` (or one number) -> ``(LO, HI)``."""
    try:
        parts = [float(p) for p in text.split(":")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected LO:HI (e.g. 5:50), got {text!r}")
    return parts[0], parts[1]


RANGE_FLAGS = ("--snr", "--drift", "--width")
_RANGE = re.compile(r"-?[0-9.]+(e[-+]?[0-9]+)?(:-?[0-9.]+(e[-+]?[0-9]+)?)?", re.IGNORECASE)


def join_ranges(argv: list[str]) -> list[str]:
    """``--drift -4:4`` -> ``--drift=-4:4``: argparse takes a value starting with ``-`` that is
    not a plain negative number for an option."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] in RANGE_FLAGS and i + 1 < len(argv) and _RANGE.fullmatch(argv[i + 1]):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def bins(text: str) -> tuple[int, int, int]:
    try:
        values = tuple(int(p) for p in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected SNR,DRIFT,WIDTH bin counts >= 1 (e.g. 9,4,3), "
                                         f"got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    d = ScanSettings()
    p = argparse.ArgumentParser(
        prog="python -m tfseti.sensitivity", parents=[common_flags("break_lock")],
        description="Plant signals in memory into observation cadences, run the scan's searches on "
                    "them at its thresholds, and report completeness by SNR, drift rate, width and "
                    "family, false alarms per MHz, SNR50/SNR90 and transmitter limits.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--cadence", help="six comma-separated .fil/.h5 paths in ABACAD order")
    src.add_argument("--cadence-list", help="a list file: one path per line, six per cadence (ABACAD)")
    p.add_argument("--out", required=True, help="output folder (resumable)")
    p.add_argument("--model", default="", help="SavedModels or run folders, as tfseti.scan takes them; "
                                               "none: the classical searches alone")
    p.add_argument("--n", type=positive_int, default=2000, help="ON signals per cadence (default 2000)")
    p.add_argument("--snr", type=number_range, default=(5.0, 50.0), metavar="LO:HI",
                   help="setigen SNR, drawn log-uniform (default 5:50)")
    p.add_argument("--drift", type=number_range, default=None, metavar="LO:HI",
                   help="drift rate, Hz/s, drawn uniform (default: the scan's searched range, "
                        f"+/- --max-drift-hz = {d.max_drift_hz:g})")
    p.add_argument("--width", type=number_range, default=(1.0, 50.0), metavar="LO:HI",
                   help="FWHM of the frequency profile, Hz, drawn log-uniform (default 1:50)")
    p.add_argument("--families", default="linear",
                   help="comma-separated: linear, squared, sine, pulsed, broad (default linear)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    p.add_argument("--controls", type=float, default=0.2,
                   help="fraction of slots holding ON+OFF controls (default 0.2)")
    p.add_argument("--empty", type=float, default=0.1,
                   help="fraction of slots left untouched, for the false-alarm rate (default 0.1)")
    p.add_argument("--bins", type=bins, default=(9, 4, 3), metavar="SNR,DRIFT,WIDTH",
                   help="bins of completeness.csv (default 9,4,3)")
    p.add_argument("--sefd", type=float, default=None, metavar="JY",
                   help="system equivalent flux density (default GBT L-band, 2 k 20 K / (0.72 pi 50^2 m^2) "
                        "= 9.77 Jy)")
    p.add_argument("--distance-pc", type=float, default=None, metavar="D",
                   help="distance of the target, pc: EIRP_min and CWTFM (none: not computed)")
    p.add_argument("--n-stars", type=positive_int, default=None,
                   help="stars of the survey for CWTFM (default: the number of cadences)")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="bootstrap resamples of the SNR50 / SNR90 95 %% intervals, drawn from --seed "
                        "(default 1000; only shapes the tables)")
    p.add_argument("--window-width", type=positive_int, default=256,
                   help="window channels when there is no model (else the model's)")
    g = p.add_argument_group("scan settings (tfseti.scan's flags and defaults)")
    g.add_argument("--max-drift-hz", type=float, default=d.max_drift_hz)
    g.add_argument("--hit-snr", type=float, default=d.hit_snr)
    g.add_argument("--event-filter", type=int, choices=(1, 2, 3), default=d.event_filter)
    g.add_argument("--min-dedoppler", type=float, default=d.min_dedoppler)
    g.add_argument("--min-probability", type=float, default=d.min_probability)
    g.add_argument("--fine-per-coarse", type=word_or_int(("auto", "none"), 2), default=d.fine_per_coarse)
    return p


def job_from_args(args):
    """The ``SensitivityJob`` of parsed arguments (``ValueError`` for a bad one)."""
    from tfseti.scan.__main__ import cadences_and_models
    from tfseti.sensitivity.layout import Draws
    from tfseti.sensitivity.run import SensitivityJob

    settings = ScanSettings(max_drift_hz=args.max_drift_hz, hit_snr=args.hit_snr,
                            event_filter=args.event_filter, min_dedoppler=args.min_dedoppler,
                            min_probability=args.min_probability, fine_per_coarse=args.fine_per_coarse)
    drift = args.drift or (-settings.max_drift_hz, settings.max_drift_hz)
    families = tuple(f.strip() for f in args.families.split(",") if f.strip())
    draws = Draws(snr=args.snr, drift=drift, width=args.width, families=families)
    cadences, models = cadences_and_models(args)
    return SensitivityJob(cadences, args.out, models=models, settings=settings, draws=draws, n=args.n,
                          seed=args.seed, controls=args.controls, empty=args.empty,
                          width=args.window_width, bins=args.bins, sefd=args.sefd,
                          distance_pc=args.distance_pc, n_stars=args.n_stars,
                          bootstrap=args.bootstrap)


@command(ValueError, FileNotFoundError, FolderLocked)   # ObservationError is a ValueError
def main(argv=None) -> int:
    from tfseti.sensitivity.run import open_job, run

    argv = join_ranges(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(argv)
    job = job_from_args(args)
    opened = open_job(job)            # every refusal before OUT is created
    try:
        # One writer per OUT: two runs would write the same chunk files and tables.
        with FolderLock(job.out, break_lock=args.break_lock):
            run(job, opened, log=lambda line: print(line, flush=True))
    finally:
        opened.close()
    return 0


if __name__ == "__main__":
    run_command(main)
