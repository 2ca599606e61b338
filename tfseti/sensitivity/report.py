"""The outputs of a sensitivity run, made from its chunk files alone (``tfseti.sensitivity.run``):

``plantings.csv``
    every planted signal: what was planted (kind, family, SNR, drift rate, width, channel,
    frequency, the slot's noise and the intensity) and what each detector did with it;
``completeness.csv``
    the ON signals, one row per SNR x drift x width x family bin: ``planted``, ``found_<d>`` for
    ``classical``, ``dedoppler``, ``model`` and ``both`` (classical and model), each fraction
    with its Wilson 95 % interval (``tfseti.sensitivity.stats``); model columns empty without a
    model;
``controls.csv``
    the same for the ON+OFF controls: the fraction each detector *passed* (a false positive;
    a good search passes none);
``sensitivity.json``
    per detector: the false alarms per MHz of the untouched slots, SNR50 and SNR90 per drift
    bin and over all drift rates, the controls' rejection, and the limits
    (``tfseti.sensitivity.limits``) from each SNR90;
``completeness.png``
    completeness against SNR per drift bin, each detector a panel.

Every file is written atomically; numbers that are undefined (an empty bin, an SNR90 outside
the planted range) are empty cells and JSON ``null``, never NaN.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from tfseti.io.atomic import atomic_open, finite_or_none, write_json
from tfseti.sensitivity import limits as lim
from tfseti.sensitivity import stats

PLANTINGS_CSV = "plantings.csv"
COMPLETENESS_CSV = "completeness.csv"
CONTROLS_CSV = "controls.csv"
SENSITIVITY_JSON = "sensitivity.json"
COMPLETENESS_PNG = "completeness.png"
DETECTORS = ("classical", "dedoppler", "model", "both")
FLOAT_FORMAT = "%.10g"


def plantings(docs: list[dict], fch1_of: dict, foff_of: dict) -> pd.DataFrame:
    rows = []
    for doc in docs:
        name = doc["cadence"]
        for s in doc["signals"]:
            row = {"cadence": name, "chunk": doc["chunk"], **{k: v for k, v in s.items() if k != "slot"}}
            row["slot_lo"], row["slot_hi"] = s["slot"]
            row["freq_mhz"] = fch1_of[name] + s["channel"] * foff_of[name]
            model = s["found_model"]
            row["found_both"] = None if model is None else bool(s["found_classical"] and model)
            rows.append(row)
    return pd.DataFrame(rows)


def _edges(job) -> dict:
    d = job.draws
    b_snr, b_drift, b_width = job.bins
    return {"snr": stats.log_edges(*d.snr, b_snr), "drift_hz_s": stats.lin_edges(*d.drift, b_drift),
            "width_hz": stats.log_edges(*d.width, b_width)}


def binned(table: pd.DataFrame, edges: dict, families, has_model: bool) -> pd.DataFrame:
    """One row per bin (module notes), every bin of the grid, in order."""
    index = {k: (stats.bin_index(table[k], e) if len(table) else np.zeros(0, int))
             for k, e in edges.items()}
    out = []
    for i in range(len(edges["snr"]) - 1):
        for j in range(len(edges["drift_hz_s"]) - 1):
            for k in range(len(edges["width_hz"]) - 1):
                for family in families:
                    sel = ((index["snr"] == i) & (index["drift_hz_s"] == j) & (index["width_hz"] == k)
                           & (table["family"].to_numpy() == family)) if len(table) else np.zeros(0, bool)
                    part = table[sel]
                    row = {"snr_lo": edges["snr"][i], "snr_hi": edges["snr"][i + 1],
                           "drift_lo": edges["drift_hz_s"][j], "drift_hi": edges["drift_hz_s"][j + 1],
                           "width_lo": edges["width_hz"][k], "width_hi": edges["width_hz"][k + 1],
                           "family": family, "planted": len(part)}
                    for d in DETECTORS:
                        if d in ("model", "both") and not has_model:
                            row.update({f"found_{d}": None, f"fraction_{d}": None,
                                        f"{d}_lo95": None, f"{d}_hi95": None})
                            continue
                        found = int(part[f"found_{d}"].astype(bool).sum()) if len(part) else 0
                        lo, hi = stats.wilson(found, len(part))
                        row.update({f"found_{d}": found,
                                    f"fraction_{d}": found / len(part) if len(part) else None,
                                    f"{d}_lo95": lo, f"{d}_hi95": hi})
                    out.append(row)
    return pd.DataFrame(out)


def _write_csv(path: str, frame: pd.DataFrame) -> None:
    with atomic_open(path, "w", newline="") as handle:
        frame.to_csv(handle, index=False, float_format=FLOAT_FORMAT)


def thresholds(table: pd.DataFrame, edges: dict, detectors, bounds) -> list[dict]:
    """SNR50 / SNR90 per drift bin and over all drift rates (``drift_lo`` None), per detector."""
    drift_edges = edges["drift_hz_s"]
    index = stats.bin_index(table["drift_hz_s"], drift_edges) if len(table) else np.zeros(0, int)
    groups = [(drift_edges[j], drift_edges[j + 1], index == j) for j in range(len(drift_edges) - 1)]
    groups.append((None, None, np.ones(len(table), bool)))
    out = []
    for lo, hi, sel in groups:
        part = table[sel]
        row = {"drift_lo": lo, "drift_hi": hi, "planted": int(len(part))}
        for d in detectors:
            fit = stats.snr_at(part["snr"], part[f"found_{d}"].astype(bool), bounds=bounds)
            row[d] = {"snr50": fit[0.5][0], "snr50_bound": fit[0.5][1],
                      "snr90": fit[0.9][0], "snr90_bound": fit[0.9][1]}
        out.append(row)
    return out


def write(job, plans, docs: list[dict], has_model: bool, log=print) -> dict:
    """Write every output (module notes) into ``job.out``; returns ``sensitivity.json``'s document."""
    out = job.out
    first = plans[0].cadence
    table = plantings(docs, {p.name: p.cadence.fch1 for p in plans},
                      {p.name: p.cadence.foff for p in plans})
    _write_csv(os.path.join(out, PLANTINGS_CSV), table)
    edges = _edges(job)
    detectors = DETECTORS if has_model else ("classical", "dedoppler")
    kinds = table["kind"].to_numpy() if len(table) else np.zeros(0, str)
    on, controls = table[kinds == "on"], table[kinds == "control"]
    _write_csv(os.path.join(out, COMPLETENESS_CSV), binned(on, edges, job.draws.families, has_model))
    _write_csv(os.path.join(out, CONTROLS_CSV), binned(controls, edges, job.draws.families, has_model))

    seen, counts, mhz = set(), {d: 0 for d in detectors if d != "both"}, 0.0
    for doc in docs:                   # each untouched slot of data counted once, whatever the pass
        for e in doc["empty"]:
            key = (doc["cadence"], *e["slot"])
            if key in seen:
                continue
            seen.add(key)
            mhz += e["mhz"]
            for d in counts:
                counts[d] += e[d] or 0
    alarms = {d: stats.rate_per_mhz(counts[d], mhz) for d in counts}

    rejection = {}
    for d in detectors:
        passed = int(controls[f"found_{d}"].astype(bool).sum()) if len(controls) else 0
        lo, hi = stats.wilson(len(controls) - passed, len(controls))
        rejection[d] = {"planted": int(len(controls)), "passed": passed,
                        "rejected": None if not len(controls) else (len(controls) - passed) / len(controls),
                        "rejected_lo95": lo, "rejected_hi95": hi}

    by_drift = thresholds(on, edges, detectors, job.draws.snr)
    channel_hz = abs(first.foff) * 1e6
    t_obs = first.rows * first.tsamp
    band = sorted((first.fch1, first.fch1 + first.nchans * first.foff))
    sefd = job.sefd if job.sefd is not None else lim.GBT_LBAND_SEFD_JY
    n_stars = job.n_stars or len(plans)
    common = dict(sefd=sefd, channel_hz=channel_hz, t_obs_s=t_obs, distance_pc=job.distance_pc,
                  n_stars=n_stars, bandwidth_hz=(band[1] - band[0]) * 1e6,
                  centre_hz=(band[0] + band[1]) / 2 * 1e6)
    for row in by_drift:
        for d in detectors:
            row[d]["limits"] = lim.limits(row[d]["snr90"], **common)
    doc = {"cadences": [{"name": p.name, "files": p.cadence.paths, "chunks": p.chunks,
                         "slot_channels": p.layout.slot} for p in plans],
           "planted": {"on": int(len(on)), "control": int(len(controls))},
           "settings": job.settings.to_dict(), "draws": {**job.draws.__dict__, "families": list(job.draws.families)},
           "seed": job.seed, "bins": {k: [float(x) for x in v] for k, v in edges.items()},
           "detectors": list(detectors),
           "false_alarms": {"untouched_mhz": mhz, **alarms},
           "controls": rejection, "snr_thresholds": by_drift,
           "limits": {"sefd_jy": sefd, "sefd_default": job.sefd is None, "n_pol": lim.N_POL,
                      "channel_hz": channel_hz, "t_obs_s": t_obs, "distance_pc": job.distance_pc,
                      "n_stars": n_stars, "bandwidth_hz": common["bandwidth_hz"],
                      "centre_hz": common["centre_hz"],
                      **{d: by_drift[-1][d]["limits"] for d in detectors}}}
    doc = finite_or_none(doc)
    write_json(os.path.join(out, SENSITIVITY_JSON), doc)
    try:
        from tfseti.sensitivity.plot import completeness_png

        completeness_png(os.path.join(out, COMPLETENESS_PNG), on, edges, detectors)
    except ImportError as err:      # matplotlib is optional: the tables are the result
        log(f"no {COMPLETENESS_PNG}: {err}")
    for d in detectors:
        overall = by_drift[-1][d]
        a = alarms.get(d)
        log(f"{d}: SNR50 {_fmt(overall['snr50'], overall['snr50_bound'])}, SNR90 "
            f"{_fmt(overall['snr90'], overall['snr90_bound'])}"
            + (f", {a['count']} false alarm(s) in {mhz:.4f} MHz" if a else "")
            + f", controls passed {rejection[d]['passed']}/{rejection[d]['planted']}")
    log(f"tables: {os.path.join(out, COMPLETENESS_CSV)}, {os.path.join(out, SENSITIVITY_JSON)}")
    return doc


def _fmt(value, bound) -> str:
    if value is not None:
        return f"{value:.1f}"
    return {"below": "below the planted range", "above": "above the planted range"}.get(bound, "undefined")
