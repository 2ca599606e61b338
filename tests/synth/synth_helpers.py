"""Measurements on synthetic cadences, made on the arrays themselves (not on the simulator's
own bookkeeping), so that the tests check what a model would actually see."""

from __future__ import annotations

import numpy as np

from tfseti.synth.cadence import CadenceSpec
from tfseti.synth.families import get_family


def mean_along(panel: np.ndarray, track: np.ndarray) -> float:
    """Mean of ``panel[row, track[row]]`` over the rows where the track is inside the band."""
    channels = np.rint(track).astype(int)
    inside = (channels >= 0) & (channels < panel.shape[1])
    if inside.sum() < panel.shape[0] // 4:
        return np.nan
    return float(panel[np.nonzero(inside)[0], channels[inside]].mean())


def excess_along(panel: np.ndarray, track: np.ndarray, width_channels: float) -> float:
    """Power along ``track`` above the typical power along parallel tracks a few widths away.

    The reference is the median over eight parallel tracks (both sides), so a background line
    crossing one of them, or the bandpass slope, does not bias it.
    """
    shift = int(np.ceil(1.5 * width_channels)) + 4
    references = [mean_along(panel, track + sign * (shift + k)) for sign in (-1, 1) for k in (0, 4, 8, 12)]
    return mean_along(panel, track) - float(np.nanmedian(references))


def source_track(spec: CadenceSpec) -> np.ndarray:
    """``(6, rows)`` channel where the needle's source is at every row of all six panels (in
    OFF panels: where it would appear if the telescope were still pointing at it)."""
    needle = spec.needle
    offsets = get_family(needle.shape.family).offsets_hz(needle.shape, spec.panel_times())
    return needle.f_start + offsets / spec.frame.df


def ridge(panel: np.ndarray, smooth: int = 3) -> np.ndarray:
    """Channel of the brightest (box-smoothed) pixel of every row: the track of a bright line."""
    kernel = np.ones(smooth) / smooth
    smoothed = np.apply_along_axis(lambda row: np.convolve(row, kernel, mode="same"), 1, panel.astype(np.float32))
    return smoothed.argmax(axis=1).astype(float)


def fit_line(times: np.ndarray, channels: np.ndarray) -> tuple[float, float]:
    """Least-squares ``channel = intercept + slope * time``; returns (slope, intercept)."""
    slope, intercept = np.polyfit(times, channels, 1)
    return float(slope), float(intercept)
