"""``python -m tfseti.synth --out DIR --n-train N --n-test M ...``: write a synthetic Kaggle-layout dataset."""

from __future__ import annotations

import argparse

from tfseti.command import command, common_flags, run_command, workers_flag
from tfseti.console import non_negative_int as _non_negative_int
from tfseti.console import positive_int as _positive_int
from tfseti.synth.parameters import FAMILY_NAMES


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {value}")
    return value


SNR_HELP = ("expected MIN:MAX (uniform, e.g. 10:40), MIN:MAX:log (log-uniform, e.g. 5:50:log) "
            "or a comma-separated list of values (one drawn per needle, e.g. 5,10,20,40)")


def _snr_range(text: str) -> dict:
    """``--snr``: ``{"snr": (low, high), "snr_scale": ..., "snr_values": (...)}``."""
    try:
        if "," in text:
            values = tuple(float(v) for v in text.split(","))
            if not all(0 < v < float("inf") for v in values):
                raise ValueError
            return {"snr": (min(values), max(values)), "snr_scale": "choice", "snr_values": values}
        parts = text.split(":")
        scale = "uniform"
        if len(parts) == 3 and parts[2] == "log":
            scale, parts = "log", parts[:2]
        if len(parts) != 2:
            raise ValueError
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(f"{SNR_HELP}, got {text!r}") from None
    if not 0 < low <= high or high == float("inf"):
        raise argparse.ArgumentTypeError(f"expected MIN:MAX with 0 < MIN <= MAX, got {text!r}")
    return {"snr": (low, high), "snr_scale": scale, "snr_values": ()}


def _families(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in FAMILY_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown family {', '.join(unknown) or '(none given)'}; "
                                         f"expected a comma-separated subset of {','.join(FAMILY_NAMES)}")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"a family is listed twice in {text!r}")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfseti.synth", parents=[workers_flag("worker processes", 1),
                                                common_flags("no_progress")],
        description="Write Breakthrough-Listen-style synthetic cadences (setigen) in the Kaggle layout: "
                    "train/<id[0]>/<id>.npy, test/..., train_labels.csv, sample_submission.csv, truth.csv.")
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument("--n-train", type=_non_negative_int, default=200, help="train cadences (default 200)")
    parser.add_argument("--n-test", type=_non_negative_int, default=50, help="test cadences (default 50)")
    parser.add_argument("--positive-rate", type=_fraction, default=0.1,
                        help="fraction of cadences with a needle, in both splits (default 0.1)")
    parser.add_argument("--snr", type=_snr_range, default=_snr_range("10:40"), metavar="MIN:MAX",
                        help="needle SNR (setigen's SNR): MIN:MAX uniform, MIN:MAX:log log-uniform, "
                             "or a list V1,V2,... of fixed values drawn one per needle (default 10:40)")
    parser.add_argument("--families", type=_families, default=FAMILY_NAMES, metavar="NAMES",
                        help=f"comma-separated needle families (default {','.join(FAMILY_NAMES)})")
    parser.add_argument("--missing-prob", type=_fraction, default=0.2,
                        help="probability that a needle is absent from one of its ON panels (default 0.2)")
    parser.add_argument("--no-rfi", action="store_true", help="no background RFI (noise and bandpass only)")
    parser.add_argument("--rfi-scale", type=_positive_int, default=1, metavar="K",
                        help="K times the most interferers of each kind per cadence (zero-drift "
                             "lines, drifting lines, bursts; counts drawn from 0..K x the default "
                             "maximum): RFI-heavier backgrounds (default 1)")
    parser.add_argument("--shared-background", type=_positive_int, default=1, metavar="K",
                        help="cut the cadences K at a time from shared wider observations at random "
                             "channel offsets, as the real snippets were (truth.csv: group, "
                             "channel_offset); 1 = independent cadences (default 1)")
    parser.add_argument("--shared-width", type=_positive_int, default=2, metavar="M",
                        help="width of a shared observation in cadences: 256 x M channels (default 2)")
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset in --out")
    return parser


@command(FileExistsError, ValueError)
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.n_train + args.n_test == 0:
        build_parser().error("--n-train and --n-test are both 0: nothing to write")
    from tfseti.synth.cadence import CadenceConfig
    from tfseti.synth.parameters import DEFAULT_RANGES, scaled_rfi
    from tfseti.synth.writer import generate_dataset

    config = CadenceConfig(**args.snr, families=args.families, missing_prob=args.missing_prob,
                           rfi=not args.no_rfi, ranges=scaled_rfi(DEFAULT_RANGES, args.rfi_scale))
    summary = generate_dataset(args.out, n_train=args.n_train, n_test=args.n_test,
                               positive_rate=args.positive_rate, config=config,
                               seed=args.seed, workers=args.workers, progress=not args.no_progress,
                               overwrite=args.overwrite,
                               shared_background=args.shared_background, shared_width=args.shared_width)
    print(summary)
    return 0


if __name__ == "__main__":
    run_command(main)
