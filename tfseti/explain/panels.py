"""Grad-CAM heat on the view image, mapped back to where it came from in the cadence.

A time-frequency view (``tfseti.data.views``) lays whole panels end to end in time, each
``T`` rows of the image, the frequency channels across, so its heat maps exactly back onto the
waterfall panels:

=========  =====================================================================
view       image rows ``k T .. (k+1) T - 1`` are
=========  =====================================================================
``on``     ON panel ``k`` (panels 0, 2, 4 of ABACAD; 0, 1, 2 of ON-only cadences);
           the OFF panels are not in the image and get no heat (NaN)
``on_off`` ON panel ``k`` in image channel 0 *and* OFF panel ``k`` (1, 3, 5) in
           channel 1: Grad-CAM's heat is spatial, so both get the same heat
``all``    panel ``k`` of the six
=========  =====================================================================

A view that resized its image (``view.resize`` with a resize method of the view's own) is undone
by resizing the heat back to the full ``(panels x T, F)`` grid (bilinear, so it stays in [0, 1]).
Background removal, column normalisation and extra channels change values, not places.

The ``dedoppler`` view's image is drift rate x channel (one image channel per panel's map), not
time x frequency: a straight path through the whole cadence is one pixel of it, so its heat
cannot be spread back over the panels' rows. Its heat stays on the drift-rate maps
(``(drifts, F)``, the resize undone the same way) and is drawn over them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfseti.io.kaggle import OFF_PANELS, ON_PANELS

DEDOPPLER = "dedoppler"


@dataclass
class PanelHeat:
    """Heat in cadence coordinates.

    heat: ``(P, T, F)`` on the waterfall (NaN on panels the view does not show), or
    ``(drifts, F)`` on the drift-rate maps (``on_maps``);
    peak: ``(panel, row, channel)`` of the largest heat (panel None on the drift maps, whose row
    is the drift-rate index); on a tie the first in panel, row, channel order (for ``on_off``
    the ON panel, before the OFF panel that shares its heat); None when the heat is zero
    everywhere (no place raised the score).
    """

    heat: np.ndarray
    peak: tuple[int | None, int, int] | None
    on_maps: bool


def full_size(view, panels: int, time: int, freq: int) -> tuple[int, int]:
    """``(height, width)`` of the view's image before any resize of the view's own."""
    if view.name == DEDOPPLER:
        return view.dedoppler.drifts, freq
    rows = {"on": 3, "on_off": 3, "all": 6}
    if view.name not in rows:
        raise ValueError(f"view {view.name!r}: no panel layout known for it (expected one of "
                         f"{sorted([*rows, DEDOPPLER])})")
    return rows[view.name] * time, freq


def resize_heat(heat: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` heat bilinearly resized to ``size`` (itself when it already has that size)."""
    heat = np.asarray(heat, np.float32)
    if heat.shape == tuple(size):
        return heat
    import tensorflow as tf

    return tf.image.resize(heat[None, :, :, None], size, method="bilinear").numpy()[0, :, :, 0]


def shown_panels(view_name: str, panels: int) -> dict[int, int]:
    """``{cadence panel: block of T image rows}`` of a time-frequency view."""
    on = tuple(range(3)) if panels == 3 else ON_PANELS
    if view_name == "on":
        return {panel: k for k, panel in enumerate(on)}
    if view_name == "on_off":
        return {**{panel: k for k, panel in enumerate(on)},
                **{panel: k for k, panel in enumerate(OFF_PANELS)}}
    if view_name == "all":
        return {panel: panel for panel in range(6)}
    raise ValueError(f"view {view_name!r}: not a time-frequency view")


def map_heat(heat: np.ndarray, view, cadence_shape: tuple[int, int, int]) -> PanelHeat:
    """Heat ``(H, W)`` on the image the view made of a cadence of ``(P, T, F)``, in cadence
    coordinates (see the module docstring)."""
    panels, time, freq = (int(d) for d in cadence_shape)
    heat = np.asarray(heat, np.float32)
    if heat.ndim != 2:
        raise ValueError(f"heat: expected (height, width), got shape {heat.shape}")
    full = resize_heat(heat, full_size(view, panels, time, freq))
    if view.name == DEDOPPLER:
        row, channel = np.unravel_index(int(np.argmax(full)), full.shape)
        peak = (None, int(row), int(channel)) if full.max() > 0 else None
        return PanelHeat(heat=full, peak=peak, on_maps=True)
    out = np.full((panels, time, freq), np.nan, np.float32)
    for panel, block in shown_panels(view.name, panels).items():
        out[panel] = full[block * time:(block + 1) * time]
    flat = np.where(np.isnan(out), -np.inf, out)
    panel, row, channel = np.unravel_index(int(np.argmax(flat)), out.shape)
    peak = (int(panel), int(row), int(channel)) if flat.max() > 0 else None
    return PanelHeat(heat=out, peak=peak, on_maps=False)
