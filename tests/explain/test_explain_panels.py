"""Heat on a view image mapped back onto the cadence, against hand-made expectations for every
view, with and without the view's own resize."""

from __future__ import annotations

import numpy as np
import pytest

from tfseti.data.config import DedopplerConfig, ViewConfig
from tfseti.explain.panels import full_size, map_heat, resize_heat

T, F = 4, 3
NAN = np.nan


def numbered(rows: int, cols: int = F) -> np.ndarray:
    """Heat whose every pixel is distinct: value = (row * cols + col + 1) / (rows * cols)."""
    return (np.arange(rows * cols, dtype=np.float32).reshape(rows, cols) + 1) / (rows * cols)


def test_on_view_puts_the_three_blocks_on_the_on_panels():
    heat = numbered(3 * T)
    mapped = map_heat(heat, ViewConfig(name="on"), (6, T, F))
    for panel, block in ((0, 0), (2, 1), (4, 2)):
        np.testing.assert_array_equal(mapped.heat[panel], heat[block * T:(block + 1) * T])
    assert np.isnan(mapped.heat[[1, 3, 5]]).all()
    assert mapped.peak == (4, T - 1, F - 1) and not mapped.on_maps


def test_on_view_of_on_only_cadences_fills_all_three_panels():
    heat = numbered(3 * T)
    mapped = map_heat(heat, ViewConfig(name="on"), (3, T, F))
    np.testing.assert_array_equal(mapped.heat.reshape(3 * T, F), heat)
    assert mapped.peak == (2, T - 1, F - 1)


def test_on_off_view_gives_each_off_panel_the_heat_beside_it():
    heat = numbered(3 * T)
    mapped = map_heat(heat, ViewConfig(name="on_off"), (6, T, F))
    for on, off, block in ((0, 1, 0), (2, 3, 1), (4, 5, 2)):
        np.testing.assert_array_equal(mapped.heat[on], heat[block * T:(block + 1) * T])
        np.testing.assert_array_equal(mapped.heat[off], heat[block * T:(block + 1) * T])
    assert mapped.peak == (4, T - 1, F - 1)   # the ON panel wins the tie with panel 5


def test_all_view_maps_six_blocks_to_six_panels_in_order():
    heat = numbered(6 * T)
    heat[T + 2, 1] = 5.0                        # the peak: panel 1 (OFF), row 2, channel 1
    mapped = map_heat(heat, ViewConfig(name="all"), (6, T, F))
    np.testing.assert_array_equal(mapped.heat.reshape(6 * T, F), heat)
    assert mapped.peak == (1, 2, 1)


def test_a_resized_view_is_resized_back_to_full_resolution():
    # The view resized (3T, F) = (12, 3) to (6, 2); the heat comes back on 12 x 3 bilinearly:
    # out[i] samples the small grid at (i + 0.5) * small / full - 0.5 (clamped), each axis.
    view = ViewConfig(name="on", resize=(6, 2), resize_method="area")
    small = np.array([[0.0, 1.0], [0.2, 0.4], [0.6, 0.0], [1.0, 0.5], [0.0, 0.0], [0.3, 0.9]],
                     np.float32)
    rows = np.clip((np.arange(12) + 0.5) * 6 / 12 - 0.5, 0, 5)
    cols = np.clip((np.arange(3) + 0.5) * 2 / 3 - 0.5, 0, 1)
    by_rows = np.stack([np.interp(rows, np.arange(6), small[:, c]) for c in range(2)], axis=1)
    expected = np.stack([np.interp(cols, np.arange(2), r) for r in by_rows])
    mapped = map_heat(small, view, (6, T, F))
    np.testing.assert_allclose(mapped.heat[[0, 2, 4]].reshape(12, 3), expected, atol=1e-6)
    assert np.isnan(mapped.heat[[1, 3, 5]]).all()
    flat = np.argmax(expected)
    assert mapped.peak == ((0, 2, 4)[flat // 3 // T], flat // 3 % T, flat % 3)


def test_dedoppler_heat_stays_on_the_drift_maps():
    view = ViewConfig(name="dedoppler", dedoppler=DedopplerConfig(drifts=5), resize=(10, 6))
    assert full_size(view, 6, T, F) == (5, F)
    heat = np.zeros((10, 6), np.float32)
    heat[4:6, 2:4] = 1.0
    mapped = map_heat(heat, view, (6, T, F))
    assert mapped.on_maps and mapped.heat.shape == (5, F)
    np.testing.assert_allclose(mapped.heat, resize_heat(heat, (5, F)))
    assert mapped.heat[2, 1] == pytest.approx(1.0)    # rows 4-5 -> drift 2, columns 2-3 -> 1
    assert mapped.peak == (None, 2, 1)


def test_zero_heat_has_no_peak_and_a_bad_heat_is_refused():
    assert map_heat(np.zeros((3 * T, F)), ViewConfig(name="on"), (6, T, F)).peak is None
    with pytest.raises(ValueError, match=r"heat: expected \(height, width\)"):
        map_heat(np.zeros((1, 3 * T, F)), ViewConfig(name="on"), (6, T, F))
