"""turboSETI's side of ``benchmarks/scan_bench.py``, run with a Python that has turboSETI (2.3) installed.

    PY turboseti_driver.py search --json OUT.json --out-dir DIR --max-drift 0.52 --snr 10 \\
        --n-coarse-chan 1 A1.h5 B.h5 A2.h5 C.h5 A3.h5 D.h5
    PY turboseti_driver.py events --json OUT.json --dat-list dats.lst --h5-list h5s.lst --csv events.csv

``search``: ``FindDoppler(...).search()`` on each file in turn (``DIR/<stem>.dat``), timed per file,
after an untimed search of ``--warmup`` (a tiny ``.h5``: numba compiles turboSETI's kernels on their
first call in a process, seconds whatever the file size). A ``.fil`` is converted
to ``.h5`` by turboSETI itself in the working directory (run this with ``cwd=DIR``); that
conversion is part of the file's time. ``events``: ``find_event_pipeline`` on a list of ``.dat``
files (paired with the ``.h5`` list by basename), its event rows written to the JSON.

Deliberately standalone: it must not import ``tfseti`` (turboSETI's environment pins numpy < 2 and
has none of tfseti's dependencies).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

EVENT_COLUMNS = ("TopHitNum", "DriftRate", "SNR", "Freq", "FileID", "Source", "Hit_ID", "status",
                 "in_n_ons", "RFI_in_range")


def count_hits(dat: str) -> int:
    with open(dat) as handle:
        return sum(1 for line in handle if line.strip() and not line.startswith("#"))


def search(args) -> dict:
    start = time.perf_counter()
    from turbo_seti.find_doppler.find_doppler import FindDoppler
    import_s = time.perf_counter() - start
    os.makedirs(args.out_dir, exist_ok=True)
    warmup_s = None
    if args.warmup:
        # numba compiles turboSETI's kernels on their first call in a process (seconds, whatever the
        # file size); a tiny file of the same layout pays that here, outside the timed searches.
        os.makedirs(os.path.join(args.out_dir, "warmup"), exist_ok=True)
        t0 = time.perf_counter()
        FindDoppler(os.path.abspath(args.warmup), max_drift=args.max_drift, min_drift=args.min_drift,
                    snr=args.snr, out_dir=os.path.join(args.out_dir, "warmup"), n_coarse_chan=1,
                    log_level_int=logging.WARNING).search()
        warmup_s = time.perf_counter() - t0
        print(f"warm-up {os.path.basename(args.warmup)}: {warmup_s:.2f} s", flush=True)
    files = []
    for path in args.files:
        path = os.path.abspath(path)
        stem = os.path.splitext(os.path.basename(path))[0]
        t0 = time.perf_counter()
        FindDoppler(path, max_drift=args.max_drift, min_drift=args.min_drift, snr=args.snr,
                    out_dir=args.out_dir, n_coarse_chan=args.n_coarse_chan,
                    log_level_int=logging.WARNING).search()
        seconds = time.perf_counter() - t0
        dat = os.path.abspath(os.path.join(args.out_dir, f"{stem}.dat"))
        # turboSETI converts a .fil to <stem>.h5 in the working directory and searches that.
        h5 = path if path.endswith(".h5") else os.path.abspath(f"{stem}.h5")
        files.append({"input": path, "h5": h5 if os.path.isfile(h5) else None, "dat": dat,
                      "seconds": seconds, "hits": count_hits(dat)})
        print(f"find_doppler {os.path.basename(path)}: {seconds:.2f} s, {files[-1]['hits']} hits", flush=True)
    return {"import_s": import_s, "warmup_s": warmup_s, "seconds": sum(f["seconds"] for f in files), "files": files,
            "max_drift": args.max_drift, "snr": args.snr, "n_coarse_chan": args.n_coarse_chan}


def events(args) -> dict:
    from turbo_seti.find_event.find_event_pipeline import find_event_pipeline

    t0 = time.perf_counter()
    table = find_event_pipeline(args.dat_list, args.h5_list, filter_threshold=args.filter,
                                number_in_cadence=6, on_off_first="ON", saving=True,
                                csv_name=args.csv, user_validation=False, sortby_tstart=True)
    seconds = time.perf_counter() - t0
    rows = []
    if table is not None:
        cols = [c for c in EVENT_COLUMNS if c in table.columns]
        for record in table[cols].to_dict("records"):
            rows.append({k: (v.item() if hasattr(v, "item") else v) for k, v in record.items()})
    return {"seconds": seconds, "filter_threshold": args.filter, "rows": rows,
            "events": len({r.get("Hit_ID") for r in rows}), "csv": args.csv if table is not None else None}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("search")
    s.add_argument("files", nargs="+")
    s.add_argument("--json", required=True)
    s.add_argument("--out-dir", required=True)
    s.add_argument("--max-drift", type=float, required=True)
    s.add_argument("--min-drift", type=float, default=1e-5)
    s.add_argument("--snr", type=float, default=10.0)
    s.add_argument("--n-coarse-chan", type=int, default=1)
    s.add_argument("--warmup", default=None, help="a small .h5 searched first, untimed (numba's compilation)")
    e = sub.add_parser("events")
    e.add_argument("--json", required=True)
    e.add_argument("--dat-list", required=True)
    e.add_argument("--h5-list", required=True)
    e.add_argument("--csv", required=True)
    e.add_argument("--filter", type=int, default=3)
    args = p.parse_args(argv)
    result = search(args) if args.mode == "search" else events(args)
    with open(args.json, "w") as handle:
        json.dump(result, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
