"""Which planted signal each detector found, and what it reported in the untouched slots.

Three detectors, each at the scan's thresholds (``tfseti.scan.settings.ScanSettings``):

``classical``
    the per-file search and ``find_event_pipeline`` (``tfseti.scan.filehits``, turboSETI's): a
    signal is found when an event row of some ON file lies at the signal's frequency at the start
    of that file (within the frequency tolerance) with its drift rate within one drift bin of the
    turboSETI search (``|foff| / ((T_pad - 1) tsamp)``);
``dedoppler``
    the window stage's cadence-wide search (``two_of_three`` >= ``min_dedoppler``): a hit window
    whose best path starts (first integration of file 1) at the signal's channel, drift rate
    within one of the search's drift steps (``2 max_drift / (drifts - 1)`` channels per
    integration);
``model``
    the window stage's model (probability >= ``min_probability``): a hit window overlapping the
    signal's track in the ON files (the model reports no position or drift rate).

"Within one drift bin" is the grid rate nearest the truth or either neighbour of it
(:data:`DRIFT_TOLERANCE_BINS`), widened by the line's FWHM in channels: both grids step by about
one channel at the path's far end, and a line ``w`` channels wide fits paths ``w`` channels
apart there almost equally well (a 13 Hz line at -0.27 Hz/s was read 3 window bins off). The
window stage's truth is the signal's positions in the ON files against the scan's own clock,
whose slews are whole integrations (``tfseti.io.observations``: the median gap rounded): with
real ``tstart`` s between files it reports rates a few per cent off the true ones (0.25 Hz/s
read as 0.244 on the tests' cadences, 30 s slews of 18.25 s integrations), which is the clock's
doing, not a miss.

The frequency tolerance is :data:`FREQ_TOLERANCE_CHANNELS` plus the signal's FWHM in channels,
half the channels its path crosses in one integration, and its path's largest departure from a
straight line (non-linear families); the drift tolerance adds half the spread of the path's
instantaneous drift rate to the bin. A straight narrow line is matched within 2 channels and one
drift bin.

False alarms: in every empty slot, the events with a row there (distinct ``Hit_ID`` at filter
level 3, rows at levels 1-2), the dedoppler hit windows and the model hit windows whose own
channels start there.
"""

from __future__ import annotations

import math
import os

import numpy as np

from tfseti.io.kaggle import ON_PANELS
from tfseti.sensitivity.plant import PANELS, Clock, Signal, offsets_hz

FREQ_TOLERANCE_CHANNELS = 2.0
# "Within one drift bin": the grid rate nearest the truth or either of its neighbours.
DRIFT_TOLERANCE_BINS = 1.5
DETECTORS = ("classical", "dedoppler", "model")


def _mid_track(signal: Signal, clock: Clock, foff_hz: float) -> np.ndarray:
    """``(6, rows)`` band channel of the path's centre at the middle of each integration (where a
    smeared integration's power is centred)."""
    return np.stack([signal.channel + offsets_hz(signal, clock.row_times(p) + clock.tsamp / 2)
                     / foff_hz for p in range(PANELS)])


def truth(signal: Signal, clock: Clock, foff_hz: float) -> dict:
    """Where each detector should report the signal, and the tolerances (module notes)."""
    mid = _mid_track(signal, clock, foff_hz)
    times = np.stack([clock.row_times(p) + clock.tsamp / 2 for p in range(PANELS)])
    scan_times = np.stack([clock.scan_row_times(p) + clock.tsamp / 2 for p in range(PANELS)])
    on = list(ON_PANELS)
    # the line the window stage can report: the positions against the scan's clock
    t, c = scan_times[on].ravel(), mid[on].ravel()
    slope, intercept = np.polyfit(t, c, 1) if len(t) > 1 else (0.0, float(c[0]))
    residual = float(np.max(np.abs(c - (slope * t + intercept))))
    rates = np.concatenate([np.diff(mid[p]) / clock.tsamp for p in range(PANELS)]) * foff_hz
    spread = float(rates.max() - rates.min()) / 2 if len(rates) else 0.0
    step = float(np.max(np.abs(np.diff(mid, axis=1)), initial=0.0))
    per_file = []
    for p in range(PANELS):
        s, _ = np.polyfit(times[p], mid[p], 1) if clock.rows > 1 else (0.0, 0.0)
        per_file.append((float(mid[p, 0]), float(s * foff_hz)))
    return {"line_channel": float(intercept), "line_drift_hz_s": float(slope * foff_hz),
            "per_file": per_file, "on_span": (float(mid[on].min()), float(mid[on].max())),
            "freq_tol_channels": FREQ_TOLERANCE_CHANNELS + signal.width_hz / abs(foff_hz)
            + step / 2 + residual, "drift_spread_hz_s": spread}


def _threshold_met(value, threshold) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and value >= threshold


def match_chunk(signals: list[Signal], empty: list[tuple[int, int]], rows: list[dict],
                events: list[dict], *, lo: int, width: int, clock: Clock, fch1: float, foff: float,
                paths: list[str], settings, window_bin_hz_s: float, file_bin_hz_s: float,
                has_model: bool) -> tuple[list[dict], list[dict]]:
    """Per signal its detections (``found_<detector>`` booleans, ``None`` for the model without
    one, and what was measured), and per empty slot the false alarms (module notes). ``rows``:
    the window rows of the sub-band starting at band channel ``lo``; ``events``: its events;
    ``fch1`` / ``foff``: the full band's (MHz)."""
    foff_hz = foff * 1e6
    panel_of = {os.path.basename(p): i for i, p in enumerate(paths)}
    starts = np.array([r["channel_start"] for r in rows], np.int64) + lo
    hit_channel = np.array([r["hit_channel"] for r in rows], float) + lo
    drift = np.array([r["drift_rate_hz_s"] for r in rows], float)
    dedoppler = np.array([r["dedoppler"] for r in rows], float)
    probability = np.array([r["probability"] for r in rows], float)
    event_rows = []
    for e in events:
        channel = (float(e["Freq"]) - fch1) / foff
        event_rows.append((panel_of.get(str(e["FileID"])), channel, float(e["DriftRate"]),
                           float(e["SNR"]), e["Hit_ID"] or f"row{e['index']}"))
    found = []
    for s in signals:
        t = truth(s, clock, foff_hz)
        tol = t["freq_tol_channels"]
        spread = t["drift_spread_hz_s"]
        bins = DRIFT_TOLERANCE_BINS + s.width_hz / abs(foff_hz)
        near = (np.abs(hit_channel - t["line_channel"]) <= tol) & \
            (np.abs(drift - t["line_drift_hz_s"]) <= window_bin_hz_s * bins + spread)
        a, b = t["on_span"]
        pad = s.width_hz / abs(foff_hz) + 1
        overlap = (starts <= b + pad) & (starts + width > a - pad)
        best_snr = None
        for panel, channel, rate, snr, _ in event_rows:
            if panel is None or panel not in ON_PANELS:
                continue
            c0, r0 = t["per_file"][panel]
            if abs(channel - c0) <= tol and abs(rate - r0) <= file_bin_hz_s * bins + spread:
                best_snr = snr if best_snr is None else max(best_snr, snr)
        window_d = float(dedoppler[overlap].max()) if overlap.any() else None
        window_p = (float(np.nanmax(probability[overlap])) if has_model and overlap.any() else None)
        found.append({
            "index": s.index,
            "found_classical": best_snr is not None,
            "found_dedoppler": bool((near & (dedoppler >= settings.min_dedoppler)).any()),
            "found_model": (bool((overlap & (probability >= settings.min_probability)).any())
                            if has_model else None),
            "event_snr": best_snr, "window_dedoppler": window_d, "window_probability": window_p})
    alarms = []
    for a, b in empty:
        in_slot = (starts >= a) & (starts < b)
        ids = {hid for panel, channel, _, _, hid in event_rows if a <= channel < b}
        alarms.append({"slot": [a, b], "mhz": (b - a) * abs(foff),
                       "classical": len(ids),
                       "dedoppler": int((in_slot & (dedoppler >= settings.min_dedoppler)).sum()),
                       "model": (int((in_slot & (probability >= settings.min_probability)).sum())
                                 if has_model else None)})
    return found, alarms
