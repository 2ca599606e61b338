"""Waterfalls and drift-rate maps as PNG files (matplotlib, Agg backend), with an optional
Grad-CAM heat overlay. The report draws its plain waterfalls with the same :func:`waterfall`."""

from __future__ import annotations

import textwrap

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from tfseti.io.kaggle import ON_PANELS  # noqa: E402

DPI = 80
HEAT_CMAP = "jet"
HEAT_ALPHA = 0.55   # the overlay's opacity at heat 1; it fades with the heat, so cold places
                    # show the data underneath


TITLE_WIDTH = 85     # characters per title line at font size 7
TITLE_LINE = 0.125   # inches per title line


def _wrap(title: str) -> list[str]:
    return [piece for line in title.split("\n")
            for piece in (textwrap.wrap(line, TITLE_WIDTH) or [""])]


def _axes(fig, left: float, width: float, bottom: float, lines: int):
    """Axes from ``bottom`` up to below a title of ``lines`` lines."""
    top = 1.0 - (0.15 + lines * TITLE_LINE) / fig.get_figheight()
    return fig.add_axes((left, bottom, width, top - bottom))


def _save(fig, path: str) -> str:
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _stack(blocks: np.ndarray, fill=np.nan) -> tuple[np.ndarray, int]:
    """``(N, rows, cols)`` blocks top to bottom with gaps (``fill``) between them: one image,
    drawn with one ``imshow`` (a grid of axes takes five times longer); returns it and the
    stride from one block's top to the next."""
    n_blocks, rows, cols = blocks.shape
    gap = max(1, rows // 10)
    stride = rows + gap
    image = np.full((n_blocks * stride - gap, cols), fill, dtype=np.float32)
    for index in range(n_blocks):
        image[index * stride:index * stride + rows] = blocks[index]
    return image, stride


def _overlay(fig, ax, heat_image: np.ndarray) -> None:
    """Heat in [0, 1] (NaN: none) over what ``ax`` shows, opacity growing with the heat."""
    shown = np.nan_to_num(heat_image, nan=0.0)
    ax.imshow(shown, aspect="auto", cmap=HEAT_CMAP, vmin=0.0, vmax=1.0, interpolation="nearest",
              alpha=np.clip(shown, 0.0, 1.0) * HEAT_ALPHA)
    mappable = plt.cm.ScalarMappable(norm=matplotlib.colors.Normalize(0, 1), cmap=HEAT_CMAP)
    bar = fig.colorbar(mappable, ax=ax, fraction=0.04, pad=0.02)
    bar.set_label("Grad-CAM heat", fontsize=7)
    bar.ax.tick_params(labelsize=6)


def _peak_marker(ax, x: float, y: float) -> None:
    ax.plot([x], [y], marker="o", markersize=11, markerfacecolor="none", markeredgecolor="white",
            markeredgewidth=1.6)


def waterfall(cadence: np.ndarray, title: str, path: str, heat: np.ndarray | None = None,
              peak: tuple | None = None) -> str:
    """Every panel of one cadence, top to bottom in observing order (time down, frequency
    across), ON panels framed; one colour scale for the whole cadence so that a needle's
    brightness compares across panels. With ``heat`` (``(P, T, F)`` in [0, 1], NaN on panels
    without any) the data is drawn in grey under a semi-transparent heat map, and ``peak``
    ``(panel, row, channel)`` is circled."""
    cadence = np.asarray(cadence, dtype=np.float32)
    n_panels, n_time, n_freq = cadence.shape
    on_panels = ON_PANELS if n_panels == 6 else tuple(range(n_panels))  # ON-only shards: A A A
    low, high = np.percentile(cadence, [1.0, 99.5])
    image, stride = _stack(cadence)
    cmap = matplotlib.colormaps["viridis" if heat is None else "gray"].with_extremes(bad="white")
    lines = _wrap(title)
    fig = plt.figure(figsize=(4.6 if heat is None else 5.2,
                              1.2 * n_panels + 0.7 + TITLE_LINE * (len(lines) - 1)))
    ax = (_axes(fig, 0.17, 0.8, 0.07, len(lines)) if heat is None
          else _axes(fig, 0.15, 0.7, 0.07, len(lines)))
    ax.imshow(image, aspect="auto", cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
    if heat is not None:
        heat = np.asarray(heat, dtype=np.float32)
        if heat.shape != cadence.shape:
            raise ValueError(f"heat: expected the cadence's shape {cadence.shape}, got {heat.shape}")
        heat_image, _ = _stack(heat)
        _overlay(fig, ax, heat_image)
        if peak is not None and peak[0] is not None:
            _peak_marker(ax, peak[2], peak[0] * stride + peak[1])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ticks, labels = [], []
    for index in range(n_panels):
        top = index * stride
        ticks.append(top + n_time / 2)
        on = index in on_panels
        labels.append(f"{index} {'ON' if on else 'OFF'}")
        if on:
            ax.add_patch(Rectangle((-0.5, top - 0.5), n_freq, n_time, fill=False,
                                   edgecolor="crimson", linewidth=2))
    ax.set_yticks(ticks, labels, fontsize=8)
    for label, index in zip(ax.get_yticklabels(), range(n_panels)):
        if index in on_panels:
            label.set(color="crimson", fontweight="bold")
    ax.tick_params(axis="x", labelsize=7)
    ax.set_xlabel("frequency channel", fontsize=8)
    ax.set_ylabel(f"time, {n_time} rows per panel", fontsize=8)
    ax.set_title("\n".join(lines), fontsize=7)
    return _save(fig, path)


def drift_maps(maps: np.ndarray, heat: np.ndarray, rates: np.ndarray, title: str, path: str,
               peak: tuple | None = None) -> str:
    """The de-Doppler maps ``(P, drifts, F)`` of one cadence (drift rate down, channel at the
    reference time across; the ``dedoppler`` view's image channels), one above the other, grey,
    each under the same Grad-CAM ``heat`` ``(drifts, F)`` (the view's heat is per pixel, shared
    by its channels); ``peak`` ``(None, drift index, channel)`` circled on every map."""
    maps = np.asarray(maps, dtype=np.float32)
    n_maps, n_drifts, n_freq = maps.shape
    heat = np.asarray(heat, dtype=np.float32)
    if heat.shape != (n_drifts, n_freq):
        raise ValueError(f"heat: expected the maps' (drifts, channels) {(n_drifts, n_freq)}, got "
                         f"{heat.shape}")
    on_panels = ON_PANELS if n_maps == 6 else tuple(range(n_maps))
    low, high = np.percentile(maps, [1.0, 99.5])
    image, stride = _stack(maps)
    heat_image, _ = _stack(np.broadcast_to(heat, maps.shape))
    lines = _wrap(title)
    fig = plt.figure(figsize=(5.2, 0.9 * n_maps + 0.9 + TITLE_LINE * (len(lines) - 1)))
    ax = _axes(fig, 0.15, 0.7, 0.08, len(lines))
    ax.imshow(image, aspect="auto", cmap=matplotlib.colormaps["gray"].with_extremes(bad="white"),
              vmin=low, vmax=high, interpolation="nearest")
    _overlay(fig, ax, heat_image)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ticks, labels = [], []
    for index in range(n_maps):
        top = index * stride
        ticks.append(top + n_drifts / 2)
        labels.append(f"{index} {'ON' if index in on_panels else 'OFF'}")
        if peak is not None:
            _peak_marker(ax, peak[2], top + peak[1])
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_xlabel("frequency channel at the reference time", fontsize=8)
    ax.set_ylabel(f"drift rate, {rates[0]:+.2f} to {rates[-1]:+.2f} channels/row", fontsize=8)
    ax.set_title("\n".join(lines), fontsize=7)
    return _save(fig, path)
