"""tfseti.dedoppler.band_search: the cadence-wide search from per-panel trees equals a direct sum
over the same paths, does not depend on how the band is cut into blocks, and finds a needle."""

from __future__ import annotations

import numpy as np
import pytest

from tfseti.data.config import DedopplerConfig
from tfseti.dedoppler import band_search as bs
from tfseti.dedoppler.scores import OFF_WINDOW
from tfseti.dedoppler.taylor import padded_time, tree_offsets
from tfseti.dedoppler.window_scores import clean

ON, OFF = [0, 2, 4], [1, 3, 5]


def reference(cleaned: np.ndarray, plan: bs.BandPlan, scale: float):
    """The scores by direct sums along each rate's path in each panel (numpy, no tree)."""
    panels, rows, freq = cleaned.shape
    n = padded_time(rows)
    values = np.zeros((len(plan.rates), panels, freq), np.float64)
    f = np.arange(freq)
    for k in range(len(plan.rates)):
        i, d = plan.rate_tree[k], plan.rate_row[k]
        sign = -1 if plan.tree_neg[i] else 1
        steps = tree_offsets(n, d)
        for p in range(panels):
            for t in range(rows):
                g = f + plan.offsets[p, k] + sign * (plan.tree_block[i] * t + steps[t])
                ok = (g >= 0) & (g < freq)
                values[k, p, ok] += cleaned[p, t, g[ok]]
    values *= scale
    line = (values[:, ON].sum(1) - values[:, OFF].sum(1)) / np.sqrt(6)
    second = np.sort(values[:, ON], axis=1)[:, 1]
    off = values[:, OFF].max(1)
    near = np.full_like(off, -np.inf)
    hk, hf = OFF_WINDOW
    rates = len(plan.rates)
    for a in range(-hk, hk + 1):          # max over the window, ignoring what is outside
        for c in range(-hf, hf + 1):
            shifted = np.full_like(off, -np.inf)
            shifted[max(0, -a):rates - max(0, a), max(0, -c):freq - max(0, c)] = \
                off[max(0, a):rates - max(0, -a), max(0, c):freq - max(0, -c)]
            near = np.maximum(near, shifted)
    best = line.argmax(0)
    return line.max(0), best, (second - near).max(0), values[best, :, f].T


@pytest.mark.parametrize("time, freq, max_drift, block, drifts", [
    (16, 1500, 0.5, 1, 21),       # one tree per sign
    (16, 1100, 3.4, 1, 61),       # four drift blocks per sign (the GBT product at 0.52 Hz/s)
    (20, 900, 0.3, 3, 15),        # rows summed in blocks, padded to a power of two
])
def test_band_search_equals_direct_sums_over_its_paths(time, freq, max_drift, block, drifts):
    cfg = DedopplerConfig(max_drift=max_drift, drifts=drifts, block=block, panel_gap=3)
    x = np.random.default_rng(time + freq).chisquare(4, size=(6, time, freq)).astype(np.float32)
    plan = bs.band_plan(cfg, time)
    got = bs.search_block(x, cfg, 0, freq, 256, 0, freq, plan)
    line, best, two, panels = reference(bs.clean_band(x, cfg, 0, freq, 256), plan, 1 / np.sqrt(time))
    np.testing.assert_allclose(got.straight_line, line, atol=2e-5)
    np.testing.assert_array_equal(got.rate_index, best)
    np.testing.assert_allclose(got.two_of_three, two, atol=2e-5)
    np.testing.assert_allclose(got.panel_snr, panels, atol=2e-5)


def test_tiles_are_cleaned_alone_and_the_remainder_joins_the_last():
    cfg = DedopplerConfig(max_drift=0.5, drifts=11, block=1)
    x = np.random.default_rng(1).chisquare(4, size=(6, 16, 700)).astype(np.float32)
    edges = bs.tile_edges(700, 256)
    np.testing.assert_array_equal(edges, [0, 256, 700])          # 188 channels join the second
    whole = bs.clean_band(x, cfg, 0, 700, 256)
    np.testing.assert_array_equal(whole[..., :256], clean(x[None, ..., :256], cfg)[0])
    np.testing.assert_array_equal(whole[..., 256:], clean(x[None, ..., 256:], cfg)[0])
    with pytest.raises(ValueError, match="not whole tiles"):
        bs.clean_band(x[..., 10:], cfg, 10, 700, 256)


def test_a_block_with_its_halo_gives_the_whole_bands_numbers():
    """What the scan relies on to cut a band into read groups (and the Beam runner to spread them)."""
    cfg = DedopplerConfig(max_drift=1.5, drifts=41, block=1, panel_gap=2)
    freq, tile = 4096, 256
    x = np.random.default_rng(2).chisquare(4, size=(6, 16, freq)).astype(np.float32)
    whole = bs.search_block(x, cfg, 0, freq, tile, 0, freq)
    reach = bs.halo(cfg, 16)
    for lo, hi in ((0, 1000), (1000, 2900), (2900, freq)):
        a, b = bs.read_span(lo, hi, freq, tile, reach)
        assert a % tile == 0 and (b % tile == 0 or b == freq)
        assert (a <= lo - reach or a == 0) and (b >= hi + reach or b == freq)
        part = bs.search_block(x[..., a:b], cfg, a, freq, tile, lo, hi)
        np.testing.assert_array_equal(part.straight_line, whole.straight_line[lo:hi])
        np.testing.assert_array_equal(part.two_of_three, whole.two_of_three[lo:hi])
        np.testing.assert_array_equal(part.rate_index, whole.rate_index[lo:hi])


def test_a_needle_is_found_at_its_channel_and_rate():
    cfg = DedopplerConfig(max_drift=1.0, drifts=81, block=1, panel_gap=2)
    time, freq = 16, 2048
    rng = np.random.default_rng(3)
    x = rng.chisquare(4, size=(6, time, freq)).astype(np.float32)
    plan = bs.band_plan(cfg, time)
    rate = plan.rates[60]                  # channels per integration
    reference_row = -plan.first_row        # rows from the first integration to the reference
    f_ref = 1000
    for p in ON:                           # a needle in the ON panels, on one line through all
        for t in range(time):
            row = p * (time + cfg.panel_gap) + t
            x[p, t, int(np.rint(f_ref + rate * (row - reference_row)))] += 12.0
    got = bs.search_block(x, cfg, 0, freq, 256, 0, freq, plan)
    best = int(np.argmax(got.two_of_three))
    assert abs(best - f_ref) <= 1 and got.two_of_three[best] > 10     # ~4 sigma a row, 16 rows
    assert abs(plan.rates[got.rate_index[best]] - rate) <= 2 * (plan.rates[1] - plan.rates[0])
    assert np.sort(got.two_of_three)[-20] < 6             # nothing else stands out
    assert got.start_channel(best) == pytest.approx(best + plan.rates[got.rate_index[best]] * plan.first_row)


def test_bad_blocks_are_refused():
    cfg = DedopplerConfig(max_drift=0.5, drifts=11, block=1)
    with pytest.raises(ValueError, match=r"expected a cadence block \(6, time, channels\)"):
        bs.search_block(np.zeros((3, 16, 256), np.float32), cfg, 0, 256, 256, 0, 256)
    with pytest.raises(ValueError, match="not inside the block"):
        bs.search_block(np.zeros((6, 16, 256), np.float32), cfg, 0, 256, 256, 0, 300)
