"""``OUT/index.html``: the top-N candidates of a scan, each with a waterfall of its window.

Self-contained like the run report (``tfseti.report.page``: inline style, no scripts, PNGs beside
it in ``png/``). A candidate's window is read again from its six files (only its channels), its
DC channels and NaN/Inf samples repaired as the scan did, each file's panel drawn at its native
integrations with the frequency axis in MHz, the six panels stacked in observing order with the
ON files marked,
and the classical search's best path drawn over them (dashed) so the eye can check what the two
opinions agree or disagree on.

How deep the scan looked sits next to the candidates when a sensitivity run
(``python -m tfseti.sensitivity``) is in ``OUT/sensitivity/`` (its ``--out``; or the folder
:func:`write_page` is given): its completeness-vs-SNR curves per drift bin (the detectors side
by side, copied to ``png/``), its SNR50 / SNR90 table with 95 % intervals, and its false alarms
per MHz, read from its ``sensitivity.json`` (machine-readable values ride along as ``data-*``
attributes). The page is written when the scan finishes: a sensitivity run made after the scan
shows once the scan command is rerun (it skips the complete cadences and rewrites the page).
"""

from __future__ import annotations

import math
import os
from collections import defaultdict

import numpy as np

from tfseti.io.atomic import write_text
from tfseti.report import page as html
from tfseti.dedoppler.dat import path_channel

PNG_DIR = "png"
PAGE = "index.html"
DPI = 80
SENSITIVITY_DIR = "sensitivity"      # OUT/sensitivity: a sensitivity run shown on the page


def _waterfall(native: np.ndarray, info: dict, row: dict, path: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start, width = int(row["channel_start"]), native.shape[2]
    freqs = info["fch1"] + (start + np.arange(width)) * info["foff"]
    rows, tsamp = info["rows"], info["tsamp"]
    fig, axes = plt.subplots(6, 1, figsize=(5.2, 6.4), sharex=True, layout="constrained")
    for p, ax in enumerate(axes):
        panel = native[p]
        panel = (panel - np.median(panel)) / (panel.std() or 1.0)
        ax.imshow(panel, aspect="auto", origin="upper", cmap="viridis", vmin=-1, vmax=4,
                  extent=(freqs[0], freqs[-1], rows * tsamp, 0))
        t = np.array([0.0, rows * tsamp])
        f = info["fch1"] + path_channel(info, row, p, t) * info["foff"]
        ax.plot(f, t, "--", color="white", linewidth=0.8)
        ax.set_xlim(freqs[0], freqs[-1])
        ax.set_ylabel(("ON " if p % 2 == 0 else "OFF ") + str(p + 1), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_yticks([])
    axes[-1].set_xlabel("frequency (MHz)", fontsize=8)
    axes[-1].ticklabel_format(axis="x", useOffset=False)
    prob = row["probability"]
    axes[0].set_title(f"{row['cadence']} window {row['window']}: "
                      + ("" if math.isnan(prob) else f"p={prob:.3f} ")
                      + f"de-Doppler {row['dedoppler']:.1f}", fontsize=9)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _read_windows(out: str, name: str, rows: list[dict]) -> tuple[dict, dict[int, np.ndarray]]:
    import json

    from tfseti.io.observations import open_cadence
    from tfseti.scan.outputs import CADENCE_JSON, cadence_dir
    from tfseti.scan.windows import WindowPlan, remove_dc, repair_nonfinite

    with open(os.path.join(cadence_dir(out, name), CADENCE_JSON)) as handle:
        info = json.load(handle)
    plan = WindowPlan(info["nchans"], info["width"], info["overlap"], info["fine_per_coarse"])
    cadence = open_cadence(info["paths"], name)
    try:
        windows = {}
        for row in rows:
            start = int(row["channel_start"])
            native = remove_dc(cadence.read(start, start + plan.width), start, plan)
            repair_nonfinite(native)      # as the scan did: a NaN would blank the whole panel
            windows[row["window"]] = native
    finally:
        cadence.close()
    return info, windows


def _value_attrs(entry: dict, key: str) -> str:
    """``data-*`` of one threshold: the value, its interval and their bounds (full precision;
    ``null`` where ``sensitivity.json`` has null)."""
    attrs = []
    for suffix in ("", "_lo95", "_hi95"):
        value, bound = entry.get(f"{key}{suffix}"), entry.get(f"{key}{suffix}_bound")
        name = "value" if not suffix else suffix[1:]
        attrs.append(f' data-{name}="{"null" if value is None else repr(float(value))}"')
        attrs.append(f' data-{name}-bound="{html.esc(bound or "")}"')
    return "".join(attrs)


def _scanned_files(out: str) -> set[str]:
    from tfseti.scan.outputs import read_scan_json

    doc = read_scan_json(out) or {}
    return {os.path.abspath(p) for c in doc.get("cadences") or [] for p in c.get("files") or []}


def sensitivity_sections(out: str, folder: str) -> list[str]:
    """The page's sections of the sensitivity run in ``folder`` (module notes); its figures are
    copied into ``OUT/png/`` so that the page stands alone."""
    import json

    from tfseti.io.atomic import write_bytes
    from tfseti.sensitivity.report import SENSITIVITY_JSON, drift_label, threshold_rows
    from tfseti.sensitivity.stats import format_interval

    path = os.path.join(folder, SENSITIVITY_JSON)
    with open(path) as handle:
        doc = json.load(handle)
    detectors = doc["detectors"]
    bounds = tuple(doc["draws"]["snr"])
    header, _ = threshold_rows(doc)
    body = []
    for row in doc["snr_thresholds"]:
        cells = [html.cell(drift_label(row)), html.cell(row["planted"])]
        for d in detectors:
            for key in ("snr50", "snr90"):
                cells.append(f'<td data-detector="{html.esc(d)}" data-key="{key}"'
                             f'{_value_attrs(row[d], key)}>'
                             f'{html.esc(format_interval(row[d], key, bounds))}</td>')
        body.append(html.row(cells, f' data-drift="{html.esc(drift_label(row))}"'))
    files = [os.path.abspath(p) for c in doc["cadences"] for p in c["files"]]
    names = ", ".join(c["name"] for c in doc["cadences"])
    boot = doc.get("bootstrap") or {}
    parts = [html.note(
        f"Injection-recovery on this data (python -m tfseti.sensitivity, {folder}): "
        f"{doc['planted']['on']} signals planted into {names}, SNR {bounds[0]:g}-{bounds[1]:g} "
        f"(setigen), drift {doc['draws']['drift'][0]:+g}..{doc['draws']['drift'][1]:+g} Hz/s, "
        f"seed {doc['seed']}, searched at the scan's thresholds. Each cell: the SNR at which "
        f"the detector finds 50 % / 90 % of the signals, with its 95 % interval "
        f"({boot.get('resamples', '?')} bootstrap resamples of the planted signals); '> X': "
        f"not reached by the brightest planted signal, X.")]
    scanned = _scanned_files(out)
    if scanned and not set(files) <= scanned:
        parts.insert(0, html.unavailable(f"Measured on files this scan did not search ({names}): "
                                         f"the numbers describe those files' data."))
    parts.append(html.table(header, body, ' id="snr-thresholds"'))

    alarms, controls = doc["false_alarms"], doc["controls"]
    alarm_rows = []
    for d in detectors:
        a, c = alarms.get(d), controls[d]
        per = [html.cell("-" if a is None else a["count"]), html.cell("-"), html.cell("-")] \
            if a is None or a["per_mhz"] is None else [
            html.cell(a["count"]),
            f'<td data-metric="per_mhz" data-value="{a["per_mhz"]!r}">{a["per_mhz"]:.3g}</td>',
            f'<td data-metric="hi95" data-value="{a["hi95"]!r}">{a["lo95"]:.3g} - {a["hi95"]:.3g}</td>']
        alarm_rows.append(html.row([html.cell(d), *per,
                                    html.cell(f"{c['planted'] - c['passed']} / {c['planted']}")],
                                   f' data-detector="{html.esc(d)}"'))
    parts.append(html.table(["detector", "false alarms", "per MHz", "95 % interval (per MHz)",
                             "ON+OFF controls rejected"], alarm_rows, ' id="false-alarms"'))
    parts.append(html.note(f"False alarms: detections in {alarms['untouched_mhz']:.4f} MHz of "
                           f"untouched band (exact Poisson interval). 'both': classical and model."))

    figures = []
    for j, name in enumerate((doc.get("figures") or {}).get("by_drift") or []):
        png = f"{PNG_DIR}/{SENSITIVITY_DIR}_{name}"
        with open(os.path.join(folder, name), "rb") as handle:
            write_bytes(os.path.join(out, png), handle.read())
        label = drift_label(doc["snr_thresholds"][j])
        figures.append(f"<figure>{html.image(png, f'completeness, drift {label} Hz/s')}"
                       f"<figcaption>completeness against SNR, drift {html.esc(label)} Hz/s"
                       f"</figcaption></figure>")
    parts.append(f'<div class="figures">{"".join(figures)}</div>' if figures
                 else html.unavailable("No completeness figures in the sensitivity run "
                                       "(matplotlib was missing when it ran)."))
    return [html.section("sensitivity", "How deep the scan looked", "".join(parts))]


def write_page(out: str, hits: list[dict], sensitivity: str | None = None) -> str:
    """Write ``OUT/index.html`` (+ ``OUT/png/``) for the candidates ``hits`` (best first), with
    the sensitivity run in ``sensitivity`` (default ``OUT/sensitivity`` when it holds one;
    module notes)."""
    from tfseti.sensitivity.report import SENSITIVITY_JSON

    if sensitivity is not None and not os.path.isfile(os.path.join(sensitivity, SENSITIVITY_JSON)):
        raise FileNotFoundError(f"sensitivity: no {SENSITIVITY_JSON} in {sensitivity} (the --out "
                                f"of a finished python -m tfseti.sensitivity run)")
    if sensitivity is None and os.path.isfile(os.path.join(out, SENSITIVITY_DIR, SENSITIVITY_JSON)):
        sensitivity = os.path.join(out, SENSITIVITY_DIR)
    os.makedirs(os.path.join(out, PNG_DIR), exist_ok=True)
    by_cadence = defaultdict(list)
    for row in hits:
        by_cadence[row["cadence"]].append(row)
    images = {}
    for name, rows in by_cadence.items():
        info, windows = _read_windows(out, name, rows)
        for row in rows:
            png = f"{PNG_DIR}/{name}_w{row['window']}.png"
            _waterfall(windows[row["window"]], info, row, os.path.join(out, png))
            images[(name, row["window"])] = png
    header = ["#", "cadence", "window", "hit freq (MHz)", "drift (Hz/s)", "SNR", "probability",
              "de-Doppler", "pattern", "flags"]
    body, figures = [], []
    for rank, row in enumerate(hits, 1):
        prob = row["probability"]
        body.append(html.row([html.cell(rank), html.cell(row["cadence"]), html.cell(row["window"]),
                              html.cell(f"{row['hit_freq_mhz']:.6f}"),
                              html.cell(f"{row['drift_rate_hz_s']:+.4f}"),
                              html.cell(f"{row['snr']:.1f}"),
                              html.cell("" if math.isnan(prob) else f"{prob:.4f}"),
                              html.cell(f"{row['dedoppler']:.2f}"), html.cell(row["pattern"]),
                              html.cell(row["flags"])]))
        png = images[(row["cadence"], row["window"])]
        alt = f"window {row['window']}"
        figures.append(f"<figure>{html.image(png, alt)}"
                       f"<figcaption>#{rank} {html.esc(row['cadence'])} window {row['window']}, "
                       f"{row['hit_freq_mhz']:.6f} MHz, {row['drift_rate_hz_s']:+.4f} Hz/s"
                       f"</figcaption></figure>")
    if hits:
        sections = [html.section("candidates", f"Top {len(hits)} candidates",
                                 html.table(header, body)
                                 + html.note("Hits ranked by model probability, then by the "
                                             "classical de-Doppler score (two_of_three). Pattern: "
                                             "one digit per file in ABACAD order, 1 where the best "
                                             "path's SNR in that file reaches the pattern SNR.")),
                    html.section("waterfalls", "Waterfalls",
                                 f'<div class="figures">{"".join(figures)}</div>')]
    else:
        sections = [html.section("candidates", "No candidates",
                                 html.note("No window reached the hit thresholds."))]
    if sensitivity is not None:
        sections += sensitivity_sections(out, sensitivity)
    path = os.path.join(out, PAGE)
    write_text(path, html.document("tfseti scan", sections))  # a reload never sees half a page
    return path
