"""What a scan writes, the same for the local and the Beam runner.

::

    OUT/
      .tfseti.lock           the writer's lock (tfseti.io.folder_lock): one scan writes OUT at a time
      scan.json              settings, models, and every cadence scanned into OUT so far (written
                             once every check passed, before the first cadence is scanned)
      hits.csv               the candidates of every complete cadence listed in scan.json, best
                             first (written last, from the folders below)
      events.csv             the events of every complete cadence listed there, in that order:
                             each cadence's events.csv rows under one header (turboSETI's format)
      index.html, png/       the top-N candidates' waterfalls (tfseti.scan.page)
      <cadence>/
        windows.csv          one row per window (tfseti.scan.scoring.WINDOW_COLUMNS)
        hits.csv             the candidates (:func:`mark_candidates`: one row per run of touching
                             hit windows), best first
        <file stem>.dat x 6  each file's own hits: turboSETI's per-file search of that file alone
                             (tfseti.scan.filehits), in turboSETI's .dat format (tfseti.dedoppler.dat)
        hits_per_file.csv    the same hits, one row each, with the window they are most central
                             in and its model probability / classical score
                             (tfseti.scan.filehits.HIT_COLUMNS)
        events.csv           find_event_pipeline on the six .dat files at --event-filter (1/2/3;
                             tfseti.dedoppler.events): turboSETI's columns, byte for byte as its
                             to_csv writes them (a header line alone when there is no event)
        cadence.json         the cadence's facts, and the fingerprint of the scan that wrote it

A cadence folder is written under ``<cadence>.partial/`` and renamed when complete, so a folder
without the suffix is always whole. That makes a scan resumable per cadence: a rerun with the same
``--out`` skips every cadence whose folder exists with the same fingerprint (same files, models
and settings) and refuses one written by another scan, rather than mixing them. One ``OUT`` holds
one scan's settings and models (:func:`check_same_scan`); a rerun with other or fewer cadences
adds to it: ``scan.json`` lists the earlier cadences and this run's, and ``hits.csv`` merges every
complete cadence folder listed there, so a shorter rerun does not drop the earlier cadences'
hits. ``scan.json``, ``hits.csv`` and ``events.csv`` are written atomically (``tfseti.io.atomic``),
and a refused rerun (other settings, a cadence folder of another scan) writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil

import numpy as np

from tfseti.io.atomic import atomic_open, write_json
from tfseti.dedoppler.dat import header_lines
from tfseti.scan.filehits import HIT_COLUMNS, cadence_events, hit_rows
from tfseti.scan.scoring import WINDOW_COLUMNS

CADENCE_JSON = "cadence.json"
WINDOWS_CSV = "windows.csv"
HITS_CSV = "hits.csv"
EVENTS_CSV = "events.csv"
FILE_HITS_CSV = "hits_per_file.csv"
SCAN_JSON = "scan.json"


def fingerprint(paths: list[str], models: list[str], settings: dict) -> str:
    doc = json.dumps({"files": [os.path.abspath(p) for p in paths],
                      "models": [os.path.abspath(m) for m in models], "settings": settings},
                     sort_keys=True)
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


def cadence_info(cadence, plan, cfg, settings, width: int, fp: str) -> dict:
    """Plain-data facts of a cadence (picklable; what the writers and the page need)."""
    from dataclasses import asdict

    files = cadence.files
    return {"name": cadence.name, "paths": cadence.paths, "fingerprint": fp,
            "sources": [f.source_name for f in files], "tstarts": [f.tstart for f in files],
            "ra": [str(f.header.get("src_raj", "")) for f in files],
            "dec": [str(f.header.get("src_dej", "")) for f in files],
            "fch1": cadence.fch1, "foff": cadence.foff, "nchans": cadence.nchans,
            "tsamp": cadence.tsamp, "rows": cadence.rows, "gap_rows": cadence.gap_rows,
            "fine_per_coarse": plan.fine_per_coarse, "width": width, "overlap": plan.overlap,
            "windows": len(plan), "input_bytes": cadence.input_bytes, "notes": list(cadence.notes),
            "dedoppler": asdict(cfg), "max_drift_hz_s": settings.max_drift_hz,
            "pattern_snr": settings.pattern_snr, "hit_snr": settings.hit_snr,
            "event_filter": settings.event_filter}


def cadence_dir(out: str, name: str) -> str:
    return os.path.join(out, name)


def done_info(out: str, name: str, fp: str) -> dict | None:
    """The ``cadence.json`` of a complete folder written by the scan ``fp``; None if there is none.
    A complete folder of another scan is an error (see the module docstring)."""
    path = os.path.join(cadence_dir(out, name), CADENCE_JSON)
    if not os.path.isfile(path):
        return None
    with open(path) as handle:
        info = json.load(handle)
    if info.get("fingerprint") != fp:
        raise ValueError(f"{cadence_dir(out, name)}: holds a scan of cadence {name!r} with other "
                         f"files, models or settings (fingerprint {info.get('fingerprint')} != {fp}); "
                         f"use another --out or remove that folder")
    return info


def _probability(row: dict) -> float:
    return -1.0 if math.isnan(row["probability"]) else row["probability"]


def _rank(row: dict) -> tuple:
    """Best first: the model's probability (none: last), then the classical score."""
    return (-_probability(row), -row["dedoppler"], row["cadence"], row["window"])


def _sort_hits(rows: list[dict]) -> list[dict]:
    """The candidates among ``rows`` (hit windows that are their candidate's best), best first."""
    return sorted((r for r in rows if r["hit"] and r["candidate"] == r["window"]), key=_rank)


# Hit windows whose best paths are this close (channels at the first integration) are one
# candidate even when the windows do not overlap: twice the OFF veto's channel reach.
MERGE_CHANNELS = 8


def mark_candidates(rows: list[dict], width: int) -> list[dict]:
    """Set every row's ``candidate`` (in place; rows of one cadence sorted by window): a hit
    window and the next hit window are one candidate when they overlap or their best straight
    paths lie within :data:`MERGE_CHANNELS` of each other (a needle is seen by every window that
    overlaps it, by the model at least); a run of such windows is one candidate, named by the
    window with the best classical score (a path is counted in the one window that owns its
    channel, so that window's path, drift and pattern describe the signal; then the best
    probability). ``-1`` for the windows that are no hit. Returns ``rows``."""
    runs, run = [], []
    for row in rows:
        row["candidate"] = -1
        if not row["hit"]:
            continue
        if run and not (row["channel_start"] < run[-1]["channel_start"] + width
                        or abs(row["hit_channel"] - run[-1]["hit_channel"]) <= MERGE_CHANNELS):
            runs.append(run)
            run = []
        run.append(row)
    if run:
        runs.append(run)
    for run in runs:
        best = max(run, key=lambda r: (r["dedoppler"], _probability(r), -r["window"]))["window"]
        for row in run:
            row["candidate"] = best
    return rows


# Significant digits of the tables' numbers: frequencies near 10 GHz to 1e-7 MHz (0.1 Hz, a
# twentieth of a 2.79 Hz channel); 9 digits would round them to 10 Hz, several channels.
CSV_FLOAT_FORMAT = "%.13g"


def _write_csv(path: str, rows: list[dict], columns=WINDOW_COLUMNS) -> None:
    import pandas as pd

    table = pd.DataFrame(rows, columns=list(columns))
    with atomic_open(path, "w", newline="") as handle:  # OUT/hits.csv is replaced on every rerun
        table.to_csv(handle, index=False, float_format=CSV_FLOAT_FORMAT)


def write_cadence(out: str, info: dict, rows: list[dict], per_file: list[list]) -> str:
    """Write a cadence's folder atomically; returns its path. ``rows``: its window rows;
    ``per_file``: the six files' hits (``tfseti.dedoppler.hitsearch.Hit``, in ``.dat`` order) of
    the per-file search (``tfseti.scan.filehits``): the ``.dat`` files, ``hits_per_file.csv`` and,
    from the ``.dat`` files, ``events.csv``."""
    from tfseti.dedoppler.events import write_events_csv
    from tfseti.dedoppler.hitsearch import write_hits_dat

    rows = mark_candidates(sorted(rows, key=lambda r: r["window"]), info["width"])
    if [r["window"] for r in rows] != list(range(info["windows"])):
        raise RuntimeError(f"cadence {info['name']}: {len(rows)} window rows for "
                           f"{info['windows']} windows; not writing an incomplete scan")
    if len(per_file) != len(info["paths"]):
        raise RuntimeError(f"cadence {info['name']}: hit searches of {len(per_file)} files for "
                           f"{len(info['paths'])}; not writing an incomplete scan")
    final = cadence_dir(out, info["name"])
    tmp = f"{final}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    _write_csv(os.path.join(tmp, WINDOWS_CSV), rows)
    hits = _sort_hits(rows)
    _write_csv(os.path.join(tmp, HITS_CSV), hits)
    info = {**info, "hits": len(hits), "dat_files": [], "file_hits": [len(h) for h in per_file]}
    dat_paths = []
    for p, (path, file_hits) in enumerate(zip(info["paths"], per_file)):
        stem = os.path.splitext(os.path.basename(path))[0]
        header = header_lines(os.path.basename(path), info["sources"][p], info["tstarts"][p] or 0.0,
                              info["ra"][p], info["dec"][p], info["tsamp"], info["foff"],
                              info["max_drift_hz_s"], info["rows"] * info["tsamp"])
        dat_paths.append(os.path.join(tmp, f"{stem}.dat"))
        write_hits_dat(dat_paths[-1], header, file_hits)
        info["dat_files"].append(f"{stem}.dat")
    _write_csv(os.path.join(tmp, FILE_HITS_CSV), hit_rows(info, rows, per_file), HIT_COLUMNS)
    events = cadence_events(dat_paths, info, info["event_filter"])
    write_events_csv(os.path.join(tmp, EVENTS_CSV), events)
    # rows of events.csv, and at level 3 the events (its distinct Hit_IDs; levels 1-2 have none)
    info["event_rows"] = len(events)
    info["events"] = len({e["Hit_ID"] for e in events}) if info["event_filter"] == 3 else None
    with open(os.path.join(tmp, CADENCE_JSON), "w") as handle:
        json.dump(info, handle, indent=2, default=_json_default)
    if os.path.exists(final):
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def write_scan_json(out: str, doc: dict) -> str:
    path = os.path.join(out, SCAN_JSON)
    write_json(path, doc, default=_json_default)
    return path


def read_scan_json(out: str) -> dict | None:
    """``OUT/scan.json`` of an earlier scan into ``out``; None when there is none."""
    path = os.path.join(out, SCAN_JSON)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as handle:
            doc = json.load(handle)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: unreadable ({err}); cannot tell what the folder holds. Use "
                         f"another --out, or remove it") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a JSON object (the scan's settings), got "
                         f"{type(doc).__name__}; use another --out, or remove it")
    return doc


# What makes two scans one: the settings and models every cadence fingerprint is taken over.
SAME_SCAN_KEYS = ("settings", "models", "width")


def _scan_identity(doc: dict) -> dict:
    models = doc.get("models") or []
    return {"settings": doc.get("settings"), "width": doc.get("width"),
            "models": [os.path.abspath(m) for m in models] if isinstance(models, list) else models}


def check_same_scan(out: str, earlier: dict, doc: dict) -> None:
    """Refuse (ValueError) adding this scan ``doc`` to ``out`` whose ``scan.json`` (``earlier``)
    holds other settings or models: its hits.csv would mix two searches."""
    before, now = _scan_identity(earlier), _scan_identity(doc)
    lines = []
    for key in SAME_SCAN_KEYS:
        old, new = before[key], now[key]
        if key == "settings" and isinstance(old, dict) and isinstance(new, dict):
            lines += [f"settings.{k}: {json.dumps(old.get(k))} there, {json.dumps(new.get(k))} now"
                      for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        elif old != new:
            lines.append(f"{key}: {json.dumps(old)} there, {json.dumps(new)} now")
    if lines:
        raise ValueError(f"{os.path.join(out, SCAN_JSON)}: {out} holds a scan with other settings "
                         f"or models ({'; '.join(lines)}); nothing was written. Rerun with the "
                         f"values there, or use another --out")


def merged_cadences(earlier: dict | None, doc: dict) -> list[dict]:
    """Every cadence scanned into OUT so far: the earlier scan.json's in their order (a name in
    both takes this run's files), then this run's new ones."""
    now = {c["name"]: c for c in doc["cadences"]}
    merged = [now.get(c.get("name"), c) for c in (earlier or {}).get("cadences") or []
              if isinstance(c, dict) and "name" in c and "files" in c]
    listed = {c["name"] for c in merged}
    return merged + [c for c in doc["cadences"] if c["name"] not in listed]


def complete_cadences(out: str, cadences: list[dict], models: list[str], settings: dict,
                      width: int) -> tuple[list[str], list[str]]:
    """``(complete, missing)`` names among ``cadences`` (scan.json entries): complete when the
    folder's ``cadence.json`` carries the fingerprint this scan gives its files."""
    complete, missing = [], []
    for entry in cadences:
        name = entry["name"]
        fp = fingerprint(entry["files"], models, settings | {"width": width})
        path = os.path.join(cadence_dir(out, name), CADENCE_JSON)
        try:
            with open(path) as handle:
                found = json.load(handle).get("fingerprint")
        except (OSError, ValueError, AttributeError):
            found = None
        (complete if found == fp else missing).append(name)
    return complete, missing


def read_table(path: str):
    """A ``windows.csv`` / ``hits.csv`` as a DataFrame (text columns kept as text)."""
    import pandas as pd

    table = pd.read_csv(path, dtype={"flags": str, "pattern": str, "cadence": str})
    table["flags"] = table["flags"].fillna("")
    return table


def merge_hits(out: str, names: list[str]) -> tuple[str, list[dict]]:
    """``OUT/hits.csv``: the hits of the cadences ``names`` (complete folders), best first."""
    import pandas as pd

    frames = [read_table(os.path.join(cadence_dir(out, n), HITS_CSV)) for n in names]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(WINDOW_COLUMNS))
    rows = _sort_hits(table.to_dict("records"))
    path = os.path.join(out, HITS_CSV)
    _write_csv(path, rows)
    return path, rows


def merge_events(out: str, names: list[str]) -> tuple[str, int]:
    """``OUT/events.csv``: the ``events.csv`` rows of the cadences ``names`` (complete folders), in
    that order, under one header line (turboSETI's ``find_event_pipeline`` over several cadences
    concatenates them the same way: each cadence's ``index`` column starts again at 0). Returns
    the path and the number of rows."""
    from tfseti.dedoppler.events import COLUMNS

    header = ",".join(("",) + COLUMNS) + "\n"
    body = []
    for name in names:
        path = os.path.join(cadence_dir(out, name), EVENTS_CSV)
        with open(path, newline="") as handle:
            text = handle.read()
        if not text.startswith(header):
            raise ValueError(f"{path}: not an events CSV of this scan (first line "
                             f"{text.split(chr(10))[0]!r})")
        body.append(text[len(header):])
    path = os.path.join(out, EVENTS_CSV)
    with atomic_open(path, "w", newline="") as handle:
        handle.write(header + "".join(body))
    return path, sum(part.count("\n") for part in body)
