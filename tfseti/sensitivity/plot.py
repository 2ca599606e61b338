"""``completeness.png``: completeness against SNR, one panel per detector, one curve per drift
bin, Wilson 95 % intervals as error bars (matplotlib, Agg; written atomically)."""

from __future__ import annotations

import numpy as np

from tfseti.io.atomic import atomic_open
from tfseti.sensitivity import stats


def completeness_png(path: str, on, edges: dict, detectors) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    snr_edges, drift_edges = edges["snr"], edges["drift_hz_s"]
    centres = np.sqrt(snr_edges[:-1] * snr_edges[1:])
    s_index = stats.bin_index(on["snr"], snr_edges) if len(on) else np.zeros(0, int)
    d_index = stats.bin_index(on["drift_hz_s"], drift_edges) if len(on) else np.zeros(0, int)
    fig, axes = plt.subplots(1, len(detectors), figsize=(4.2 * len(detectors), 3.6), squeeze=False,
                             sharey=True)
    for ax, d in zip(axes[0], detectors):
        for j in range(len(drift_edges) - 1):
            xs, ys, lo, hi = [], [], [], []
            for i, c in enumerate(centres):
                sel = (s_index == i) & (d_index == j)
                n = int(sel.sum())
                if not n:
                    continue
                k = int(on[f"found_{d}"].to_numpy()[sel].astype(bool).sum())
                a, b = stats.wilson(k, n)
                xs.append(c), ys.append(k / n), lo.append(max(0.0, k / n - a)), hi.append(max(0.0, b - k / n))
            if xs:
                ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", ms=3, capsize=2,
                            label=f"{drift_edges[j]:+.2f}..{drift_edges[j + 1]:+.2f} Hz/s")
        ax.set_xscale("log")
        ax.set_title(d)
        ax.set_xlabel("planted SNR (setigen)")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("completeness")
    axes[0][-1].legend(fontsize=7, title="drift rate", title_fontsize=7)
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)
    return path
