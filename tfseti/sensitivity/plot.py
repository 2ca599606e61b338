"""The figures of a sensitivity run (matplotlib, Agg; written atomically):

* ``completeness.png`` (:func:`completeness_png`): completeness against SNR, one panel per
  detector, one curve per drift bin, Wilson 95 % intervals as error bars;
* ``completeness_drift_<j>.png`` (:func:`drift_bin_png`): one drift bin, the detectors side by
  side (the scan's page shows these, ``tfseti.scan.page``): the binned completeness with its
  Wilson intervals, the fitted curve SNR50 / SNR90 come from, and SNR50 / SNR90 as lines with
  their bootstrap intervals shaded (``tfseti.sensitivity.stats``). A threshold outside the
  planted range is not drawn: the panel says "> max" or "< min" instead.
"""

from __future__ import annotations

import math

import numpy as np

from tfseti.io.atomic import atomic_open
from tfseti.sensitivity import stats


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str) -> str:
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
    return path


def _binned(on, found_column: str, snr_edges: np.ndarray, sel: np.ndarray):
    """``(snr centres, fractions, lower errors, upper errors)`` of the non-empty SNR bins of the
    signals ``sel``."""
    centres = np.sqrt(snr_edges[:-1] * snr_edges[1:])
    s_index = stats.bin_index(on["snr"], snr_edges) if len(on) else np.zeros(0, int)
    found = on[found_column].to_numpy().astype(bool) if len(on) else np.zeros(0, bool)
    xs, ys, lo, hi = [], [], [], []
    for i, c in enumerate(centres):
        part = sel & (s_index == i)
        n = int(part.sum())
        if not n:
            continue
        k = int(found[part].sum())
        a, b = stats.wilson(k, n)
        xs.append(c), ys.append(k / n), lo.append(max(0.0, k / n - a)), hi.append(max(0.0, b - k / n))
    return xs, ys, lo, hi


def completeness_png(path: str, on, edges: dict, detectors) -> str:
    plt = _pyplot()
    snr_edges, drift_edges = edges["snr"], edges["drift_hz_s"]
    d_index = stats.bin_index(on["drift_hz_s"], drift_edges) if len(on) else np.zeros(0, int)
    fig, axes = plt.subplots(1, len(detectors), figsize=(4.2 * len(detectors), 3.6), squeeze=False,
                             sharey=True)
    for ax, d in zip(axes[0], detectors):
        for j in range(len(drift_edges) - 1):
            xs, ys, lo, hi = _binned(on, f"found_{d}", snr_edges, d_index == j)
            if xs:
                ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", ms=3, capsize=2,
                            label=f"{stats.drift_range(drift_edges[j], drift_edges[j + 1])} Hz/s")
        ax.set_xscale("log")
        ax.set_title(d)
        ax.set_xlabel("planted SNR (setigen)")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("completeness")
    axes[0][-1].legend(fontsize=7, title="drift rate", title_fontsize=7)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path


def drift_bin_png(path: str, on, edges: dict, j: int, row: dict, detectors,
                  bounds: tuple[float, float]) -> str:
    """Drift bin ``j`` of ``edges``, the detectors side by side; ``row``: its entry of
    ``sensitivity.json``'s ``snr_thresholds`` (the thresholds and intervals drawn)."""
    plt = _pyplot()
    snr_edges, drift_edges = edges["snr"], edges["drift_hz_s"]
    d_index = stats.bin_index(on["drift_hz_s"], drift_edges) if len(on) else np.zeros(0, int)
    sel = d_index == j
    snr = on["snr"].to_numpy(float)[sel] if len(on) else np.zeros(0)
    grid = np.exp(np.linspace(math.log(bounds[0]), math.log(bounds[1]), 200))
    fig, axes = plt.subplots(1, len(detectors), figsize=(3.4 * len(detectors), 3.1), squeeze=False,
                             sharey=True)
    for ax, d in zip(axes[0], detectors):
        xs, ys, lo, hi = _binned(on, f"found_{d}", snr_edges, sel)
        if xs:
            ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o", ms=4, capsize=2, color="k",
                        label="found / planted (Wilson 95 %)")
        found = on[f"found_{d}"].to_numpy().astype(bool)[sel] if len(on) else np.zeros(0, bool)
        if 0 < found.sum() < len(found):
            # the curve the thresholds are read from (tfseti.sensitivity.stats.fit_logistic)
            centre, a, b = stats.data_fit(np.log(snr), found)
            z = a + b * (np.log(grid) - centre)
            ax.plot(grid, 0.5 * (1 + np.tanh(0.5 * z)), color="C0", lw=1.2, label="logistic fit")
        entry = row[d]
        for key, colour in (("snr50", "C1"), ("snr90", "C3")):
            text = stats.format_interval(entry, key, bounds)
            value = entry[key]
            if value is not None:
                ax.axvline(value, color=colour, lw=1)
                lo95 = entry[f"{key}_lo95"] if entry[f"{key}_lo95"] is not None else (
                    bounds[0] if entry[f"{key}_lo95_bound"] == "below" else value)
                hi95 = entry[f"{key}_hi95"] if entry[f"{key}_hi95"] is not None else (
                    bounds[1] if entry[f"{key}_hi95_bound"] == "above" else value)
                ax.axvspan(lo95, hi95, color=colour, alpha=0.15, lw=0)
            ax.plot([], [], color=colour, lw=1, label=f"{key.upper()} {text}")
        ax.set_xscale("log")
        ax.set_xlim(bounds[0], bounds[1])
        ax.set_title(f"{d} ({len(snr)} planted)", fontsize=9)
        ax.set_xlabel("planted SNR (setigen)", fontsize=8)
        ax.set_ylim(-0.03, 1.03)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="lower right")
    axes[0][0].set_ylabel("completeness", fontsize=8)
    fig.suptitle(f"drift {stats.drift_range(drift_edges[j], drift_edges[j + 1])} Hz/s",
                 fontsize=9)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return path
