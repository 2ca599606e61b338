"""``OUT/index.html``: the top-N candidates of a scan, each with a waterfall of its window.

Self-contained like the run report (``tfseti.report.page``: inline style, no scripts, PNGs beside
it in ``png/``). A candidate's window is read again from its six files (only its channels), its
DC channels and NaN/Inf samples repaired as the scan did, each file's panel drawn at its native
integrations with the frequency axis in MHz, the six panels stacked in observing order with the
ON files marked,
and the classical search's best path drawn over them (dashed) so the eye can check what the two
opinions agree or disagree on.
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


def write_page(out: str, hits: list[dict]) -> str:
    """Write ``OUT/index.html`` (+ ``OUT/png/``) for the candidates ``hits`` (best first)."""
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
    path = os.path.join(out, PAGE)
    write_text(path, html.document("tfseti scan", sections))  # a reload never sees half a page
    return path
