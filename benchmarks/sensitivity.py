"""How deep does a scan look? Injection-recovery completeness of the classical searches (and a
model) on a setigen observation cadence with real-GBT-level noise, as ``python -m
tfseti.sensitivity`` measures it, printed as a Markdown table.

    python -m benchmarks.sensitivity --out /tmp/sens_bench
    python -m benchmarks.sensitivity --out /tmp/sens_bench_demo --model runs/demo --n 2000 \\
        --fchans 1048576

1. **data** (``tfseti.synth.observation.write_observation_cadence``, ``noise="obs"``: setigen's
   ``add_noise_from_obs``, chi^2 at a level drawn from real GBT observations, seed S):
   ``--fchans`` channels x 16 integrations of 18.25 s, no signals (``OUT/cadence``). A cadence
   of your own: ``--cadence-list``.
2. **sensitivity**: ``python -m tfseti.sensitivity`` with ``--n`` signals, SNR ``--snr``, drift
   ``--drift``, width 1-50 Hz, families ``--families``, at the scan's default thresholds, with
   ``--model`` when given (``OUT/sensitivity``; resumable: rerun to finish).
3. **table**: SNR50 / SNR90 per drift bin for each detector with their 95 % bootstrap
   intervals (``value [lo, hi]``; ``> X``: not reached by the brightest planted signal), the
   false alarms per MHz and the controls rejected, from ``OUT/sensitivity/sensitivity.json``;
   printed and written to ``OUT/table.md``.

``--model`` takes what ``python -m tfseti.scan`` takes: SavedModels or a trained run folder
(every ``fold*/saved_model``); the window width is then the model's.
"""

from __future__ import annotations

import argparse
import json
import os
import time


def table(doc: dict) -> str:
    """The Markdown table of a ``sensitivity.json`` document: SNR50 / SNR90 with their 95 %
    intervals per drift bin (``tfseti.sensitivity.report.markdown_table``), then the false
    alarms, the controls and the classical limits."""
    from tfseti.sensitivity.report import markdown_table

    detectors = doc["detectors"]
    lines = [markdown_table(doc)]
    alarms = doc["false_alarms"]
    lines.append("")
    lines.append(f"False alarms in {alarms['untouched_mhz']:.4f} MHz of untouched band: "
                 + ", ".join(f"{d} {alarms[d]['count']} ({alarms[d]['per_mhz']:.3g}/MHz, 95 % up to "
                             f"{alarms[d]['hi95']:.3g})" for d in detectors if d in alarms)
                 + ". ON+OFF controls rejected: "
                 + ", ".join(f"{d} {doc['controls'][d]['planted'] - doc['controls'][d]['passed']}/"
                             f"{doc['controls'][d]['planted']}" for d in detectors) + ".")
    limits = doc["limits"]
    eirp = limits["classical"]["eirp_min_w"]
    lines.append(f"Classical S_min {limits['classical']['s_min_jy_hz'] or float('nan'):.3g} Jy Hz "
                 f"(SEFD {limits['sefd_jy']:.2f} Jy, {limits['t_obs_s']:.0f} s, "
                 f"{limits['channel_hz']:.2f} Hz channels)"
                 + (f", EIRP_min {eirp:.3g} W at {limits['distance_pc']:g} pc" if eirp else "") + ".")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--cadence-list", default=None, help="measure this cadence instead of a synthetic one")
    p.add_argument("--fchans", type=int, default=65536)
    p.add_argument("--model", default="")
    p.add_argument("--n", type=int, default=400)
    p.add_argument("--snr", default="5:50")
    p.add_argument("--drift", default="-0.5:0.5")
    p.add_argument("--families", default="linear")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--distance-pc", default="50")
    args = p.parse_args(argv)

    from tfseti.io.atomic import write_text
    from tfseti.sensitivity.__main__ import main as sensitivity_main

    os.makedirs(args.out, exist_ok=True)
    cadence_list = args.cadence_list
    if cadence_list is None:
        from tfseti.synth.observation import LIST_FILE, write_observation_cadence

        folder = os.path.join(args.out, "cadence")
        cadence_list = os.path.join(folder, LIST_FILE)
        if not os.path.isfile(cadence_list):
            write_observation_cadence(folder, fchans=args.fchans, tchans=16, noise="obs",
                                      seed=args.seed, overwrite=True)
    out = os.path.join(args.out, "sensitivity")
    start = time.perf_counter()
    rc = sensitivity_main(["--cadence-list", cadence_list, "--out", out, "--n", str(args.n),
                           "--snr", args.snr, f"--drift={args.drift}", "--families", args.families,
                           "--seed", str(args.seed), "--distance-pc", args.distance_pc]
                          + (["--model", args.model] if args.model else []))
    if rc:
        return rc
    with open(os.path.join(out, "sensitivity.json")) as handle:
        text = table(json.load(handle))
    text += f"\n\n({args.n} signals, {time.perf_counter() - start:.0f} s)\n"
    print(text)
    write_text(os.path.join(args.out, "table.md"), text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
