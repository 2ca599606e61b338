"""Does a trained model find needles in observation-format data? Window AUCs of a scan, the model
against the classical search, on a synthetic cadence with many needles and interferers.

    python -m benchmarks.scan_auc --model runs/demo --out /tmp/scan_auc
    python -m benchmarks.scan_auc --model runs/demo --out /tmp/scan_auc_273 --tchans 273 --dt 1.073741824

1. **data** (``tfseti.synth.observation.write_large_cadence``, chi^2 noise, seed S): ``--fchans``
   channels x ``--tchans`` integrations of ``--dt`` s (default the GBT high-resolution product:
   16 x 18.25 s), ``--needles`` needles in the ON files (SNR log-uniform in ``--snr``, drift
   uniform in +-``--max-drift`` Hz/s, width 5-20 Hz) and ``--rfi`` interferers in all six files
   (SNR 30-100, drift +-0.1 Hz/s), every signal in its own slot of the band (slots of 1024
   channels, so no window holds two).
2. **scan**: ``python -m tfseti.scan`` (local runner) with ``--model`` and ``--scan-args``.
3. **labels per window**: *needle* when a needle's whole track over the cadence (first to last
   integration) lies inside the window and the window owns the track (its channel at the
   cadence's reference time, the middle of file 3, is one of the window's own channels: the scan
   reports a path in that window only, see ``tfseti.scan.scoring``); *RFI* likewise for an
   interferer that no needle touches; *empty* when no signal touches it. Every other window that
   touches a track is left out, so each signal is one labelled window.
4. **AUC** of the model's probability and of the classical ``two_of_three`` score: needle windows
   against every negative (empty + RFI) and against the RFI windows alone, with 95% bootstrap
   intervals (``--boot`` resamples of the windows, per class), and the difference model - search
   with its paired interval (``tfseti.evaluate.compare``). Printed and written to
   ``OUT/summary.json``.

Nothing is tuned on this data: it measures a model trained elsewhere (e.g. the demo's, on Kaggle-
format snippets of 273 rows) on windows of another format, next to the classical search.
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path

import numpy as np

SLOT = 1024          # channels per signal slot
WIDTH = 256
FCH1_MHZ = 6000.0


def draw_signals(args) -> tuple[list, list]:
    from tfseti.synth.observation import DEFAULT_DF_HZ, ObservationNeedle, ObservationRFI

    rng = np.random.default_rng(args.seed)
    slots = rng.permutation(np.arange(1, args.fchans // SLOT - 1))
    if len(slots) < args.needles + args.rfi:
        raise SystemExit(f"error: --fchans {args.fchans} has {len(slots)} slots of {SLOT} channels "
                         f"for {args.needles + args.rfi} signals")
    df_mhz = DEFAULT_DF_HZ * 1e-6
    low, high = (float(v) for v in args.snr.split(":"))

    def centre(slot):   # a slot's centre, jittered, as MHz (foff < 0)
        return FCH1_MHZ - (slot * SLOT + SLOT / 2 + rng.uniform(-100, 100)) * df_mhz

    needles = [ObservationNeedle(centre(s), float(rng.uniform(-args.max_drift, args.max_drift)),
                                 float(np.exp(rng.uniform(np.log(low), np.log(high)))),
                                 width_hz=float(rng.uniform(5, 20)))
               for s in slots[:args.needles]]
    rfi = [ObservationRFI(centre(s), float(rng.uniform(-0.1, 0.1)), float(rng.uniform(30, 100)),
                          width_hz=float(rng.uniform(5, 20)))
           for s in slots[args.needles:args.needles + args.rfi]]
    return needles, rfi


def track_extent(signal: dict, truth: dict) -> tuple[float, float]:
    """Lowest and highest channel of a signal's track over the whole cadence."""
    starts = np.asarray(truth["file_start_s"])
    ch = np.asarray(signal["channel_per_file"])
    rate = (ch[1] - ch[0]) / (starts[1] - starts[0])          # channels per second
    end = ch[-1] + rate * truth["tchans"] * truth["tsamp_s"]
    width = signal["width_hz"] / (abs(truth["foff_mhz"]) * 1e6)
    return min(ch[0], end) - width, max(ch[0], end) + width


def reference_channel(signal: dict, truth: dict) -> float:
    """A signal's channel at the cadence's reference time (the middle of file 3)."""
    starts = np.asarray(truth["file_start_s"])
    ch = np.asarray(signal["channel_per_file"])
    rate = (ch[1] - ch[0]) / (starts[1] - starts[0])          # channels per second
    return float(ch[2] + rate * (truth["tchans"] - 1) / 2 * truth["tsamp_s"])


def label_windows(starts: np.ndarray, truth: dict) -> np.ndarray:
    """Per window: 1 needle, 0 RFI, -1 empty, 2 left out (module notes)."""
    labels = np.full(len(starts), -1)
    own_end = np.append(starts[1:], starts[-1] + WIDTH)
    for kind, signals in (("rfi", truth["rfi"]), ("needle", truth["needles"])):
        for signal in signals:
            lo, hi = track_extent(signal, truth)
            ref = reference_channel(signal, truth)
            touches = (starts < hi) & (starts + WIDTH > lo)
            owner = touches & (starts <= lo) & (starts + WIDTH >= hi) & (starts <= ref) & (ref < own_end)
            if kind == "rfi":
                labels[touches & ~owner] = 2
                labels[owner & (labels == -1)] = 0
            else:
                labels[touches] = 2
                labels[owner] = 1
    return labels


def window_aucs(table, labels: np.ndarray, boot: int, seed: int) -> tuple[list[dict], list[dict]]:
    """The AUC rows (per score and set of negatives: auc, low, high) and the difference rows
    (probability - dedoppler, per set of negatives) of ``tfseti.evaluate.compare``: needle windows
    against the negatives, the windows resampled per class, both scores on the same resamples."""
    import pandas as pd

    from tfseti.evaluate import compare

    names = ("probability", "dedoppler")
    aucs, differences = [], []
    for against, negative in (("empty + RFI", labels <= 0), ("RFI only", labels == 0)):
        keep = (labels == 1) | negative
        truth = pd.DataFrame({"target": (labels[keep] == 1).astype(int)})
        scores = {n: table[n].to_numpy(dtype=np.float64)[keep] for n in names}
        (row,) = compare(truth, scores, model="probability", n_boot=boot, seed=seed, by=())
        for n in names:
            low, high = row[f"ci_auc_{n}"] or (None, None)
            aucs.append({"score": n, "negatives": against, "auc": row[f"auc_{n}"],
                         "low": low, "high": high})
        low, high = row["ci_diff_dedoppler"] or (None, None)
        differences.append({"negatives": against, "difference": row["diff_dedoppler"],
                            "low": low, "high": high})
    return sorted(aucs, key=lambda r: names.index(r["score"])), differences


def main(argv=None) -> int:
    from tfseti.synth.observation import DEFAULT_DF_HZ, DEFAULT_DT_S

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="run folder(s) or SavedModel(s), as tfseti.scan takes")
    p.add_argument("--out", required=True)
    p.add_argument("--fchans", type=int, default=2 ** 17)
    p.add_argument("--tchans", type=int, default=16)
    p.add_argument("--dt", type=float, default=DEFAULT_DT_S, help="integration time, s")
    p.add_argument("--needles", type=int, default=50)
    p.add_argument("--rfi", type=int, default=25)
    p.add_argument("--snr", default="10:60", help="needle SNR range MIN:MAX (log-uniform)")
    p.add_argument("--max-drift", type=float, default=0.2, help="|needle drift| bound, Hz/s")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--boot", type=int, default=1000)
    p.add_argument("--scan-args", default="", help="more tfseti.scan options, one string")
    args = p.parse_args(argv)

    import pandas as pd

    from tfseti.evaluate import fmt, fmt_interval
    from tfseti.scan.__main__ import main as scan_main
    from tfseti.synth.observation import write_large_cadence

    out = Path(args.out)
    data = out / "data"
    needles, rfi = draw_signals(args)
    if not (data / "truth.json").exists():
        write_large_cadence(str(data), fchans=args.fchans, tchans=args.tchans, dt_s=args.dt,
                            df_hz=DEFAULT_DF_HZ, fch1_mhz=FCH1_MHZ, fmt="h5",
                            needles=needles, rfi=rfi, seed=args.seed)
    truth = json.loads((data / "truth.json").read_text())
    start = time.perf_counter()
    code = scan_main(["--cadence-list", str(data / "cadence.lst"), "--model", args.model,
                      "--out", str(out / "scan"), "--top", "0", "--no-progress",
                      *shlex.split(args.scan_args)])
    if code:
        return code
    seconds = time.perf_counter() - start
    (folder,) = [d for d in (out / "scan").iterdir() if d.is_dir()]
    table = pd.read_csv(folder / "windows.csv")
    labels = label_windows(table.channel_start.to_numpy(), truth)
    counts = {name: int((labels == v).sum()) for name, v in
              (("needle", 1), ("rfi", 0), ("empty", -1), ("left out", 2))}
    rows, differences = window_aucs(table, labels, args.boot, args.seed)
    print(f"data: {args.fchans} channels x {args.tchans} x {args.dt:g} s x 6 files, "
          f"{args.needles} needles (SNR {args.snr}), {args.rfi} RFI; scan {seconds:.1f} s")
    print(f"windows: {counts}")
    print(f"{'score':<12} | {'negatives':<12} | AUC    | 95% interval")
    for r in rows:
        print(f"{r['score']:<12} | {r['negatives']:<12} | {fmt(r['auc'])} | "
              f"{fmt_interval((r['low'], r['high']) if r['low'] is not None else None, 4)}")
    for r in differences:
        print(f"probability - dedoppler, against {r['negatives']}: {fmt(r['difference'], signed=True)} "
              f"{fmt_interval((r['low'], r['high']) if r['low'] is not None else None, 4, signed=True)}"
              f" (paired)")
    summary = {"args": vars(args), "windows": counts, "scan_seconds": seconds, "auc": rows,
               "difference": differences}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False))
    print(f"summary: {out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
