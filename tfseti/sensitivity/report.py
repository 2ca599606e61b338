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
    bin and over all drift rates, each with its 95 % bootstrap interval
    (``tfseti.sensitivity.stats.snr_thresholds``; ``bootstrap`` says how it was drawn), the
    controls' rejection, the limits (``tfseti.sensitivity.limits``) from each SNR90, and the
    figures below (``figures``);
``completeness.png``
    completeness against SNR per drift bin, each detector a panel;
``completeness_drift_<j>.png``
    one per drift bin: the detectors side by side, each with its binned completeness, fitted
    curve, and SNR50 / SNR90 with their intervals (what the scan's page shows,
    ``tfseti.scan.page``).

The table of SNR50 / SNR90 with intervals (:func:`markdown_table`) ends the run's log.

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
DRIFT_PNG = "completeness_drift_{}.png"
# The bootstrap's streams: SeedSequence(seed, spawn_key=(BOOTSTRAP_KEY, group)); the chunks'
# are spawn_key=(chunk,) (tfseti.sensitivity.layout), so the two never share numbers.
BOOTSTRAP_KEY = 0xB007
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


def thresholds(table: pd.DataFrame, edges: dict, detectors, bounds, resamples: int,
               seed: int) -> list[dict]:
    """SNR50 / SNR90 with their 95 % intervals per drift bin and over all drift rates
    (``drift_lo`` None), per detector (``tfseti.sensitivity.stats.snr_thresholds``); group
    ``j``'s resamples come from ``(seed, j)`` alone: the same run, the same intervals."""
    drift_edges = edges["drift_hz_s"]
    index = stats.bin_index(table["drift_hz_s"], drift_edges) if len(table) else np.zeros(0, int)
    groups = [(drift_edges[j], drift_edges[j + 1], index == j) for j in range(len(drift_edges) - 1)]
    groups.append((None, None, np.ones(len(table), bool)))
    out = []
    for j, (lo, hi, sel) in enumerate(groups):
        part = table[sel]
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(BOOTSTRAP_KEY, j)))
        found = {d: part[f"found_{d}"].astype(bool).to_numpy() for d in detectors}
        fits = stats.snr_thresholds(part["snr"].to_numpy(float), found, tuple(bounds), resamples, rng)
        out.append({"drift_lo": lo, "drift_hi": hi, "planted": int(len(part)), **fits})
    return out


def drift_label(row: dict) -> str:
    return "all" if row["drift_lo"] is None else stats.drift_range(row["drift_lo"], row["drift_hi"])


def threshold_rows(doc: dict) -> tuple[list[str], list[list[str]]]:
    """``(header, rows)`` of the SNR50 / SNR90 table of a ``sensitivity.json`` document: each
    cell ``value [lo, hi]`` (``tfseti.sensitivity.stats.format_interval``), a threshold the
    planted signals never reach ``> max planted``."""
    detectors = doc["detectors"]
    bounds = tuple(doc["draws"]["snr"])
    header = ["drift (Hz/s)", "planted"] + [f"{d} {k} [lo, hi]" for d in detectors
                                            for k in ("SNR50", "SNR90")]
    rows = []
    for row in doc["snr_thresholds"]:
        rows.append([drift_label(row), str(row["planted"])]
                    + [stats.format_interval(row[d], k, bounds) for d in detectors
                       for k in ("snr50", "snr90")])
    return header, rows


def markdown_table(doc: dict) -> str:
    """The SNR50 / SNR90 table (:func:`threshold_rows`) in Markdown."""
    header, rows = threshold_rows(doc)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


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

    by_drift = thresholds(on, edges, detectors, job.draws.snr, job.bootstrap, job.seed)
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
           "bootstrap": {"resamples": job.bootstrap, "seed": job.seed, "interval": stats.INTERVAL,
                         "method": "percentile bootstrap over the planted signals of each drift "
                                   "bin; Firth-penalized logistic fit in log SNR"},
           "limits": {"sefd_jy": sefd, "sefd_default": job.sefd is None, "n_pol": lim.N_POL,
                      "channel_hz": channel_hz, "t_obs_s": t_obs, "distance_pc": job.distance_pc,
                      "n_stars": n_stars, "bandwidth_hz": common["bandwidth_hz"],
                      "centre_hz": common["centre_hz"],
                      **{d: by_drift[-1][d]["limits"] for d in detectors}}}
    doc = finite_or_none(doc)
    doc["figures"] = {"completeness": None, "by_drift": []}
    try:
        from tfseti.sensitivity.plot import completeness_png, drift_bin_png

        completeness_png(os.path.join(out, COMPLETENESS_PNG), on, edges, detectors)
        doc["figures"]["completeness"] = COMPLETENESS_PNG
        for j, row in enumerate(by_drift[:-1]):
            name = DRIFT_PNG.format(j)
            drift_bin_png(os.path.join(out, name), on, edges, j, row, detectors,
                          tuple(job.draws.snr))
            doc["figures"]["by_drift"].append(name)
    except ImportError as err:      # matplotlib is optional: the tables are the result
        log(f"no figures: {err}")
    # last, so that a sensitivity.json never names a figure that is not there yet
    write_json(os.path.join(out, SENSITIVITY_JSON), doc)
    bounds = tuple(job.draws.snr)
    for d in detectors:
        overall = by_drift[-1][d]
        a = alarms.get(d)
        log(f"{d}: SNR50 {stats.format_interval(overall, 'snr50', bounds)}, SNR90 "
            f"{stats.format_interval(overall, 'snr90', bounds)}"
            + (f", {a['count']} false alarm(s) in {mhz:.4f} MHz" if a else "")
            + f", controls passed {rejection[d]['passed']}/{rejection[d]['planted']}")
    log(markdown_table(doc))
    log(f"tables: {os.path.join(out, COMPLETENESS_CSV)}, {os.path.join(out, SENSITIVITY_JSON)}")
    return doc

