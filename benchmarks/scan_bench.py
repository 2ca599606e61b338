"""Scan benchmark: ``python -m tfseti.scan`` on a synthetic observation cadence, timed, checked
against the planted needles, and set against turboSETI's ``find_doppler`` on the same six files.

    python -m benchmarks.scan_bench --out runs/scan_bench                      # ~200 MB .h5 cadence
    python -m benchmarks.scan_bench --out /tmp/sb --fchans 2048 --needles 3 --no-turboseti   # plumbing
    python -m benchmarks.scan_bench --out /tmp/sb --model runs/demo --scan-args "--overlap 0"
    python -m benchmarks.scan_bench --out /tmp/sb --make-turboseti-venv /tmp/tsvenv  # installs turboSETI

1. **data** (``tfseti.synth.observation.write_large_cadence``, seed S): six files (ABACAD, ``.h5``
   or ``--format fil``) of ``--fchans`` channels x 16 integrations (default 2^19 channels: 6 x 33.6
   MB = 201 MB of float32), chi^2 noise, ``--needles`` needles in the ON files (SNR 25-60, drift
   0.05-0.25 Hz/s of either sign; never 0, which turboSETI's ``find_event`` drops) and two RFI lines
   (drift 0 and -0.05 Hz/s) in all six files, each in its own slice of the band. ``--data DIR``
   reuses a cadence there (its ``cadence.lst`` / ``truth.json``), or writes one there.
2. **scan**: ``python -m tfseti.scan --cadence-list ... --max-drift-hz D`` in a child process (the
   local runner; ``--model`` and ``--scan-args`` passed through). Two rows: the window search
   (seconds, windows/s and MB/s from the scan's own log line: the windows streamed through the
   scorer, not Python's start-up or the imports; hits: its hit windows) and the per-file search
   (``tfseti.scan.filehits``, turboSETI's search of each file alone at ``--hit-snr``, default 10:
   seconds from its log line, Numba compilation included; hits: the ``.dat`` rows, events: the
   scan's own ``events.csv``, level 3); the scan runs the two side by side, so a third row is the
   whole scan (``both searches in S s``: the two together, what the per-file search found). The
   scan loads its Numba kernels before these timings (its log says how long), as turboSETI's
   are compiled before its own. Peak RSS is the child's (``os.wait4``), imports included, the same
   for every row.
3. **turboSETI** (``--turboseti-python``, default ``/tmp/tsvenv/bin/python`` when it exists):
   ``FindDoppler(max_drift=D, snr=10, n_coarse_chan=nchans // 2^20, or 1 when the band is not
   whole 2^20-channel coarse channels).search()`` on each file, run by
   ``benchmarks/turboseti_driver.py`` in a child (seconds: the six searches, after an untimed one
   of a tiny file that compiles turboSETI's numba kernels; MB/s: the cadence's bytes over those seconds); again with turboSETI's
   default ``max_drift`` 4 (``--turboseti-extra-drift``, 0: not). Then ``find_event_pipeline``
   (filter threshold 3, ON first) on turboSETI's ``.dat`` files and, separately, on the scan's
   (``OUT/scan/<cadence>/*.dat``, paired with the data files by basename; shown on the window
   row, to set against the scan's own ``events.csv`` on the per-file row).
4. **the table**: per tool the seconds, windows/s, MB/s, peak RSS, needles found / planted, RFI
   hits, hits, and the level-3 events (and how many needles they hold); the ratio scan MB/s /
   turboSETI MB/s (same max drift, same run), for the whole scan, the window search and the per-file search. Written to ``OUT/summary.json`` too, with the load
   average before and after (the machine may be shared: read the ratio, not the absolute numbers).

Truth: a needle is *found* by the scan when a hit row's ``hit_freq_mhz`` (the path at the first
integration of file 0) lies within one window width of the needle's frequency there; by turboSETI
when a ``.dat`` hit of an ON file lies within as many channels of the needle's frequency at that
file's start. A hit is *RFI* when it lies within 5 channels of an RFI line (scan: in file 0; the
``.dat``: in its file). The scan counts windows (overlapping windows see a needle more than once),
turboSETI counts hits per file. An event holds a needle when one of its rows does (same tolerance).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

DRIVER = Path(__file__).resolve().parent / "turboseti_driver.py"
DEFAULT_FCHANS = 2 ** 19            # 6 files x 16 x 2^19 x 4 B = 201 MB
DEFAULT_TURBOSETI_PYTHON = "/tmp/tsvenv/bin/python"
TURBOSETI_PIP = ("numpy<2", "turbo-seti")
HIRES = 2 ** 20                     # fine channels per coarse channel of BL high-resolution files
TURBOSETI_SNR = 10.0
FILTER_THRESHOLD = 3
RFI_CHANNELS = 5
NEEDLE_SNR = (25.0, 60.0)
NEEDLE_DRIFT = (0.05, 0.25)         # |drift| Hz/s
RFI_LINES = ((0.0, 100.0), (-0.05, 80.0))   # (drift Hz/s, SNR)
SCAN_LINE = re.compile(r"(\d+) windows in ([\d.]+) s \(([\d.]+) windows/s, ([\d.]+) MB/s\)")
FILE_LINE = re.compile(r"per-file search in ([\d.]+) s")
BOTH_LINE = re.compile(r"both searches in ([\d.]+) s \(([\d.]+) MB/s[^;)]*(?:; ([\d.]+) s of CPU time)?")
KERNELS_LINE = re.compile(r"kernels loaded in ([\d.]+) s")
BENCH_DATA = "bench_data.json"


# -- data ---------------------------------------------------------------------------------------------

def plan_signals(layout, n_needles: int, seed: int):
    """Needles and two RFI lines, each centred (at mid-cadence) in its own slice of the band, in a
    seeded order, away from the band's edges and the middle channel (turboSETI blanks it)."""
    from tfseti.synth.observation import ObservationNeedle, ObservationRFI

    rng = np.random.default_rng(seed)
    n = n_needles + len(RFI_LINES)
    margin = min(512, layout.fchans // 8)
    slot = (layout.fchans - 2 * margin) / n
    kinds = rng.permutation(["needle"] * n_needles + ["rfi"] * len(RFI_LINES))
    mid = 0.5 * (layout.file_starts()[-1] + layout.file_seconds)
    needles, rfi = [], []
    for k, kind in enumerate(kinds):
        centre = margin + (k + 0.5 + rng.uniform(-0.125, 0.125)) * slot
        if abs(centre - layout.fchans / 2) < 32:
            centre += 64
        if kind == "needle":
            drift = float(rng.choice([-1.0, 1.0]) * rng.uniform(*NEEDLE_DRIFT))
            snr = float(rng.uniform(*NEEDLE_SNR))
        else:
            drift, snr = RFI_LINES[len(rfi)]
        channel = centre + drift * mid / layout.df_hz      # where it is at the start of file 0
        freq = float(layout.fch1_mhz - channel * layout.df_hz * 1e-6)
        if kind == "needle":
            needles.append(ObservationNeedle(freq, drift, snr))
        else:
            rfi.append(ObservationRFI(freq, drift, snr))
    return tuple(needles), tuple(rfi)


def prepare_data(data_dir: str, fchans: int, fmt: str, n_needles: int, seed: int,
                 reuse_any: bool) -> dict:
    """The cadence in ``data_dir``: reused when there is one (``reuse_any``: whatever wrote it;
    else only one this script wrote with the same settings), else written. Returns facts."""
    from tfseti.synth.observation import LIST_FILE, TRUTH_FILE, CadenceLayout, write_large_cadence

    lst, truth_path = os.path.join(data_dir, LIST_FILE), os.path.join(data_dir, TRUTH_FILE)
    wanted = {"fchans": fchans, "format": fmt, "needles": n_needles, "seed": seed}
    marker = os.path.join(data_dir, BENCH_DATA)
    written = None
    if os.path.isfile(marker):
        with open(marker) as handle:
            written = json.load(handle)
    reuse = os.path.isfile(lst) and os.path.isfile(truth_path) and (reuse_any or written == wanted)
    seconds = 0.0
    if not reuse:
        layout = CadenceLayout(fchans=fchans, fmt=fmt)
        needles, rfi = plan_signals(layout, n_needles, seed)
        start = time.perf_counter()
        write_large_cadence(data_dir, fchans=fchans, fmt=fmt, needles=needles, rfi=rfi, seed=seed,
                            overwrite=True)
        seconds = time.perf_counter() - start
        with open(marker, "w") as handle:
            json.dump(wanted, handle)
    with open(truth_path) as handle:
        truth = json.load(handle)
    with open(lst) as handle:
        paths = [line.strip() for line in handle if line.strip()]
    if len(paths) != 6:
        raise ValueError(f"{lst}: expected the six files of one cadence, got {len(paths)} paths")
    return {"dir": os.path.abspath(data_dir), "list": os.path.abspath(lst), "paths": paths,
            "truth": truth, "reused": reuse, "write_s": seconds,
            "bytes": 6 * truth["nchans"] * truth["tchans"] * 4,
            "file_bytes": sum(os.path.getsize(p) for p in paths)}


# -- children -----------------------------------------------------------------------------------------

def run_child(cmd: list[str], log_path: str, cwd: str | None = None) -> dict:
    """Run ``cmd`` with its output in ``log_path``; wall seconds, exit code and the child's peak RSS."""
    start = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    with open(log_path) as handle:
        text = handle.read()
    if proc.returncode != 0:
        tail = "\n".join(text.splitlines()[-15:])
        raise RuntimeError(f"{shlex.join(cmd)} exited {proc.returncode} (log {log_path}):\n{tail}")
    return {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024.0, "log": text}


# -- truth --------------------------------------------------------------------------------------------

def _channel(truth: dict, freq_mhz) -> np.ndarray:
    return (truth["fch1_mhz"] - np.asarray(freq_mhz, dtype=float)) / abs(truth["foff_mhz"])


def scan_truth(hits: list[dict], truth: dict, width: int) -> dict:
    """Needles found and RFI hits among the scan's hit rows (module docstring)."""
    chans = _channel(truth, [h["hit_freq_mhz"] for h in hits])
    found = [i for i, n in enumerate(truth["needles"])
             if len(chans) and np.min(np.abs(chans - n["channel_per_file"][0])) <= width]
    rfi = [c for c in chans if any(abs(c - r["channel_per_file"][0]) <= RFI_CHANNELS for r in truth["rfi"])]
    return {"found": found, "rfi_hits": len(rfi), "hits": len(hits)}


def file_index(truth: dict, name: str) -> int | None:
    stem = os.path.splitext(os.path.basename(str(name)))[0]
    stems = [os.path.splitext(f)[0] for f in truth["files"]]
    return stems.index(stem) if stem in stems else None


def near_needle(truth: dict, file: int, freq_mhz: float, width: int) -> list[int]:
    """Needles held by ``file`` whose path at that file's start is within ``width`` channels."""
    c = float(_channel(truth, freq_mhz))
    return [i for i, n in enumerate(truth["needles"])
            if file in n["files"] and abs(c - n["channel_per_file"][file]) <= width]


def dat_truth(dats: list[str], truth: dict, width: int) -> dict:
    """Needles found (ON-file hits) and RFI hits among the hits of six ``.dat`` files."""
    from tfseti.dedoppler.dat import read_dat

    found, rfi, total = set(), 0, 0
    for dat in dats:
        file = file_index(truth, dat)
        _, hits = read_dat(dat)
        total += len(hits)
        for hit in hits:
            found.update(near_needle(truth, file, hit["freq"], width))
            c = float(_channel(truth, hit["freq"]))
            rfi += any(abs(c - r["channel_per_file"][file]) <= RFI_CHANNELS for r in truth["rfi"])
    return {"found": sorted(found), "rfi_hits": rfi, "hits": total}


def event_truth(result: dict, truth: dict, width: int) -> dict:
    """Level-3 events of ``find_event_pipeline`` and the needles they hold."""
    by_event: dict = {}
    for row in result["rows"]:
        file = file_index(truth, row.get("FileID", ""))
        held = near_needle(truth, file, row["Freq"], width) if file is not None else []
        by_event.setdefault(row.get("Hit_ID"), set()).update(held)
    needles = sorted(set().union(*by_event.values())) if by_event else []
    return {"events": len(by_event), "event_needles": needles,
            "false_events": sum(1 for held in by_event.values() if not held),
            "event_rows": result["rows"]}


# -- the tools ------------------------------------------------------------------------------------------

def run_scan(args, data: dict, out: str) -> dict:
    scan_out = os.path.join(out, "scan")
    shutil.rmtree(scan_out, ignore_errors=True)   # a complete cadence would be skipped (resume)
    cmd = [sys.executable, "-m", "tfseti.scan", "--cadence-list", data["list"], "--out", scan_out,
           "--max-drift-hz", str(args.max_drift_hz), "--no-progress"]
    if args.model:
        cmd += ["--model", args.model]
    cmd += shlex.split(args.scan_args)
    child = run_child(cmd, os.path.join(out, "scan.log"), cwd=str(ROOT))
    match = SCAN_LINE.search(child["log"])
    if match is None:
        raise RuntimeError(f"no 'N windows in S s' line in the scan's log {out}/scan.log")
    names = [d for d in sorted(os.listdir(scan_out)) if os.path.isfile(os.path.join(scan_out, d, "cadence.json"))]
    if len(names) != 1:
        raise RuntimeError(f"{scan_out}: expected one cadence folder, got {names}")
    folder = os.path.join(scan_out, names[0])
    with open(os.path.join(folder, "cadence.json")) as handle:
        info = json.load(handle)
    from tfseti.scan.outputs import read_table

    hits = read_table(os.path.join(folder, "hits.csv")).to_dict("records")
    windows, seconds = int(match.group(1)), float(match.group(2))
    seconds_exact = windows / float(match.group(3)) if float(match.group(3)) > 0 else seconds
    label = "tfseti.scan (model + classical)" if args.model else "tfseti.scan (classical)"
    row = {"tool": label, "seconds": seconds_exact, "windows": windows,
           "windows_per_s": float(match.group(3)), "mb_per_s": info["input_bytes"] / 1e6 / seconds_exact
           if seconds_exact > 0 else float(match.group(4)),
           "peak_rss_mb": child["peak_rss_mb"], "wall_s": child["wall_s"], "width": info["width"],
           "max_drift_hz_s": args.max_drift_hz, "input_bytes": info["input_bytes"],
           "dat_files": [os.path.join(folder, d) for d in info["dat_files"]], "folder": folder,
           "command": shlex.join(cmd)}
    row.update(scan_truth(hits, data["truth"], info["width"]))
    row["log"] = child["log"]
    return row


def file_search_row(scan: dict, log: str, truth: dict) -> dict:
    """The per-file search's row: its seconds (log line), the ``.dat`` hits against truth, and the
    scan's own ``events.csv`` (level 3)."""
    from tfseti.dedoppler.events import read_events_csv

    match = FILE_LINE.search(log)
    if match is None:
        raise RuntimeError("no 'per-file search in S s' line in the scan's log")
    seconds = float(match.group(1))
    row = {"tool": "tfseti.scan per-file search (.dat)", "seconds": seconds, "windows": None,
           "windows_per_s": None, "mb_per_s": scan["input_bytes"] / 1e6 / seconds if seconds > 0 else None,
           "peak_rss_mb": scan["peak_rss_mb"], "dat_files": scan["dat_files"]}
    row.update(dat_truth(scan["dat_files"], truth, scan["width"]))
    rows = [dict(r, Freq=float(r["Freq"])) for r in read_events_csv(os.path.join(scan["folder"], "events.csv"))]
    row.update(event_truth({"rows": rows}, truth, scan["width"]))
    return row


def whole_scan_row(scan: dict, files: dict, log: str) -> dict:
    """The whole classical scan's row: both searches (the window stage and the per-file search,
    run side by side) from the scan's ``both searches in S s`` log line, what each found being
    the rows above it."""
    match = BOTH_LINE.search(log)
    if match is None:
        raise RuntimeError("no 'both searches in S s' line in the scan's log")
    seconds = float(match.group(1))
    kernels = KERNELS_LINE.search(log)
    return {"tool": "tfseti.scan, both searches (the whole scan)", "seconds": seconds,
            "windows": scan["windows"], "windows_per_s": scan["windows"] / seconds if seconds > 0 else None,
            "mb_per_s": scan["input_bytes"] / 1e6 / seconds if seconds > 0 else None,
            "cpu_s": float(match.group(3)) if match.group(3) else None,
            "kernels_s": float(kernels.group(1)) if kernels else None,
            "peak_rss_mb": scan["peak_rss_mb"], "found": files["found"], "rfi_hits": files["rfi_hits"],
            "hits": files["hits"], "events": files.get("events"),
            "event_needles": files.get("event_needles", [])}


def n_coarse_chan(nchans: int) -> int:
    return nchans // HIRES if nchans % HIRES == 0 else 1


def warmup_file(out: str) -> str:
    """A tiny ``.h5`` (1024 channels) for turboSETI's untimed warm-up search (numba's compilation)."""
    from tfseti.synth.observation import write_large_cadence

    return write_large_cadence(os.path.join(out, "turboseti_warmup"), fchans=1024, fmt="h5", overwrite=True)[0]


def run_turboseti(python: str, data: dict, out: str, max_drift: float, width: int, warmup: str) -> dict:
    tag = f"turboseti_md{max_drift:g}"
    tdir = os.path.abspath(os.path.join(out, tag))
    shutil.rmtree(tdir, ignore_errors=True)
    os.makedirs(tdir)
    report = os.path.join(tdir, "search.json")
    cmd = [python, str(DRIVER), "search", "--json", report, "--out-dir", tdir,
           "--max-drift", str(max_drift), "--snr", str(TURBOSETI_SNR),
           "--n-coarse-chan", str(n_coarse_chan(data["truth"]["nchans"])), "--warmup", warmup,
           *data["paths"]]
    child = run_child(cmd, os.path.join(out, f"{tag}.log"), cwd=tdir)  # a .fil becomes tdir/<stem>.h5
    with open(report) as handle:
        result = json.load(handle)
    seconds = result["seconds"]
    row = {"tool": f"turboSETI find_doppler (max_drift {max_drift:g})", "seconds": seconds,
           "windows": None, "windows_per_s": None, "mb_per_s": data["bytes"] / 1e6 / seconds,
           "peak_rss_mb": child["peak_rss_mb"], "wall_s": child["wall_s"], "import_s": result["import_s"],
           "warmup_s": result["warmup_s"],
           "file_seconds": [f["seconds"] for f in result["files"]], "max_drift_hz_s": max_drift,
           "n_coarse_chan": result["n_coarse_chan"], "input_bytes": data["bytes"],
           "dat_files": [f["dat"] for f in result["files"]], "h5_files": [f["h5"] for f in result["files"]],
           "command": shlex.join(cmd)}
    row.update(dat_truth(row["dat_files"], data["truth"], width))
    return row


def run_events(python: str, dats: list[str], h5s: list[str], out: str, tag: str, truth: dict,
               width: int) -> dict:
    lists = {}
    for kind, paths in (("dat", dats), ("h5", h5s)):
        lists[kind] = os.path.join(out, f"{tag}_{kind}.lst")
        with open(lists[kind], "w") as handle:
            handle.write("".join(os.path.abspath(p) + "\n" for p in paths))
    report = os.path.join(out, f"{tag}_events.json")
    cmd = [python, str(DRIVER), "events", "--json", report, "--dat-list", lists["dat"],
           "--h5-list", lists["h5"], "--csv", os.path.join(out, f"{tag}_events.csv"),
           "--filter", str(FILTER_THRESHOLD)]
    run_child(cmd, os.path.join(out, f"{tag}_events.log"), cwd=out)
    with open(report) as handle:
        return event_truth(json.load(handle), truth, width)


def ensure_turboseti(args) -> str | None:
    if args.no_turboseti:
        return None
    if args.make_turboseti_venv:
        venv = args.make_turboseti_venv
        python = os.path.join(venv, "bin", "python")
        if not os.path.isfile(python):
            base = shutil.which("python3.11") or shutil.which("python3")
            print(f"creating a turboSETI venv in {venv} ({base}) ...", flush=True)
            subprocess.run([base, "-m", "venv", venv], check=True)
            subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", *TURBOSETI_PIP], check=True)
        return python
    python = args.turboseti_python
    if python is None:
        python = DEFAULT_TURBOSETI_PYTHON if os.path.isfile(DEFAULT_TURBOSETI_PYTHON) else None
    if python is not None and not os.path.isfile(python):
        raise FileNotFoundError(f"--turboseti-python: {python} does not exist")
    return python


# -- the table ------------------------------------------------------------------------------------------

def _fmt(value, spec: str) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def table(rows: list[dict], planted: int) -> str:
    header = ("tool", "seconds", "windows/s", "MB/s", "peak RSS MB", "needles found / planted",
              "RFI hits", "hits", f"events (level {FILTER_THRESHOLD})")
    lines = []
    for r in rows:
        events = "-" if r.get("events") is None else f"{r['events']} ({len(r['event_needles'])} needles)"
        lines.append((r["tool"], _fmt(r["seconds"], ".1f"), _fmt(r["windows_per_s"], ".1f"),
                      _fmt(r["mb_per_s"], ".2f"), _fmt(r["peak_rss_mb"], ".0f"),
                      f"{len(r['found'])} / {planted}", str(r["rfi_hits"]), str(r["hits"]), events))
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    fmt = lambda cells: " | ".join(str(c).ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([fmt(header), "-+-".join("-" * w for w in widths), *map(fmt, lines)])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output folder (summary.json, logs, scan and turboSETI outputs)")
    p.add_argument("--data", default=None,
                   help="cadence folder to reuse (cadence.lst, truth.json); written there if missing "
                        "(default OUT/data, rewritten when the settings change)")
    p.add_argument("--fchans", type=int, default=DEFAULT_FCHANS,
                   help=f"channels per file (default {DEFAULT_FCHANS}: a ~200 MB cadence of 16 integrations)")
    p.add_argument("--format", choices=("h5", "fil"), default="h5")
    p.add_argument("--needles", type=int, default=4, help="needles planted (default 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default="", help="passed to tfseti.scan --model (default: classical search only)")
    p.add_argument("--scan-args", default="", help='more tfseti.scan options, e.g. "--overlap 0 --read-mb 64"')
    p.add_argument("--max-drift-hz", type=float, default=0.52,
                   help="largest |drift| Hz/s of the scan and of turboSETI (default 0.52, the scan's default)")
    p.add_argument("--turboseti-python", default=None,
                   help=f"a Python with turboSETI (default {DEFAULT_TURBOSETI_PYTHON} if it exists)")
    p.add_argument("--make-turboseti-venv", default=None, metavar="DIR",
                   help="create a turboSETI venv in DIR (python3.11 -m venv; pip install 'numpy<2' "
                        "turbo-seti) unless there is one, and use it")
    p.add_argument("--turboseti-extra-drift", type=float, default=4.0,
                   help="also run turboSETI at this max_drift (default 4.0, its own default; 0: not)")
    p.add_argument("--no-turboseti", action="store_true", help="the scan alone")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.fchans < 256 or args.needles < 1 or args.seed < 0 or args.max_drift_hz <= 0:
        print("error: expected --fchans >= 256, --needles >= 1, --seed >= 0 and --max-drift-hz > 0",
              file=sys.stderr)
        return 2
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    load_start = os.getloadavg()
    try:
        python = ensure_turboseti(args)
        data = prepare_data(args.data or os.path.join(out, "data"), args.fchans, args.format,
                            args.needles, args.seed, reuse_any=args.data is not None)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    truth = data["truth"]
    how = "reused" if data["reused"] else f"written in {data['write_s']:.1f} s"
    print(f"data: {data['dir']} ({how}), "
          f"{truth['nchans']} x {truth['tchans']} x 6 {truth['format']}, {data['bytes'] / 1e6:.1f} MB, "
          f"{len(truth['needles'])} needles, {len(truth['rfi'])} RFI lines; load average {load_start[0]:.2f}",
          flush=True)
    scan = run_scan(args, data, out)
    print(f"scan: {scan['windows']} windows in {scan['seconds']:.1f} s, {scan['hits']} hits", flush=True)
    log = scan.pop("log")
    files = file_search_row(scan, log, truth)
    print(f"per-file search: {files['seconds']:.1f} s, {files['hits']} .dat hits, {files['events']} events",
          flush=True)
    whole = whole_scan_row(scan, files, log)
    print(f"both searches: {whole['seconds']:.1f} s ({_fmt(whole['cpu_s'], '.1f')} s of CPU time; "
          f"kernels loaded before, in {_fmt(whole['kernels_s'], '.1f')} s)", flush=True)
    rows, notes = [scan, files, whole], []
    turbo = 3
    ratio = file_ratio = whole_ratio = None
    if python is not None:
        drifts = [args.max_drift_hz] + ([args.turboseti_extra_drift] if args.turboseti_extra_drift > 0
                                        and args.turboseti_extra_drift != args.max_drift_hz else [])
        warmup = warmup_file(out)
        for drift in drifts:
            row = run_turboseti(python, data, out, drift, scan["width"], warmup)
            print(f"turboSETI max_drift {drift:g}: {row['seconds']:.1f} s, {row['hits']} hits", flush=True)
            h5s = row["h5_files"]
            if any(h is None for h in h5s):
                notes.append(f"turboSETI max_drift {drift:g}: no .h5 for every file; no events")
            else:
                row.update(run_events(python, row["dat_files"], h5s, out, f"turboseti_md{drift:g}",
                                      truth, scan["width"]))
            rows.append(row)
        h5s = rows[turbo]["h5_files"]
        if all(h is not None for h in h5s):
            scan.update(run_events(python, scan["dat_files"], h5s, out, "scan", truth, scan["width"]))
        if args.format == "fil":
            notes.append("turboSETI converts each .fil to .h5 first (its seconds include that); "
                         "find_event_pipeline read the converted .h5 headers")
        ratio = scan["mb_per_s"] / rows[turbo]["mb_per_s"]
        file_ratio = files["mb_per_s"] / rows[turbo]["mb_per_s"] if files["mb_per_s"] else None
        whole_ratio = whole["mb_per_s"] / rows[turbo]["mb_per_s"] if whole["mb_per_s"] else None
    load_end = os.getloadavg()
    print()
    print(table(rows, len(truth["needles"])))
    if ratio is not None:
        print(f"\nscan MB/s / turboSETI MB/s (max drift {args.max_drift_hz:g} Hz/s, same run): "
              f"{_fmt(whole_ratio, '.2f')} (the whole scan: both searches), {ratio:.2f} (window stage "
              f"alone), {_fmt(file_ratio, '.2f')} (per-file search alone); peak RSS "
              f"{scan['peak_rss_mb'] / rows[turbo]['peak_rss_mb']:.2f}x turboSETI's")
    print(f"load average: {load_start[0]:.2f} before, {load_end[0]:.2f} after ({os.cpu_count()} CPUs)")
    for note in notes:
        print(f"note: {note}")
    summary = {"settings": vars(args), "data": {k: v for k, v in data.items() if k != "truth"},
               "truth": {"needles": truth["needles"], "rfi": truth["rfi"], "nchans": truth["nchans"],
                         "tchans": truth["tchans"], "format": truth["format"]},
               "rows": rows, "ratio_mb_per_s_scan_over_turboseti": ratio,
               "ratio_mb_per_s_file_search_over_turboseti": file_ratio,
               "ratio_mb_per_s_whole_scan_over_turboseti": whole_ratio,
               "load_average": {"start": list(load_start), "end": list(load_end), "cpus": os.cpu_count()},
               "notes": notes}
    path = os.path.join(out, "summary.json")
    with open(path, "w") as handle:
        json.dump(summary, handle, indent=1, default=float)
    print(f"summary: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
