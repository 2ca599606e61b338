"""tfseti.dedoppler.taylor: the Taylor tree against brute force, turboSETI's kernel and planted lines."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tfseti.dedoppler import taylor as tt


def _noise(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _path_sum(x, offsets):
    """sum_t x[t, f + offsets[t]] for every f, zero outside the band (numpy, float64)."""
    time, freq = x.shape
    out = np.zeros(freq)
    for t in range(time):
        k = int(offsets[t])
        lo, hi = max(0, -k), min(freq, freq - k)
        if lo < hi:
            out[lo:hi] += x[t, lo + k:hi + k]
    return out


# --- turboSETI's CPU kernel, transcribed (turbo_seti/find_doppler/kernels/_taylor_tree/_core_numba.py
# and _bitrev, MIT licence) and run as plain Python on small inputs.

def _bitrev(value, nbits):
    return int(format(value, f"0{nbits}b")[::-1], 2) if nbits > 1 else value


def _turboseti_flt(outbuf, nchn):
    mlen = len(outbuf)
    nsamp = (mlen // nchn) - (2 * nchn)
    npts = nsamp + nchn
    nstages = int(np.log2(nchn))
    ndat1 = nsamp + 2 * nchn
    nmem = 1
    for istages in range(nstages):
        nmem *= 2
        nsec1 = nchn // nmem
        for isec in range(nsec1):
            ndelay = -1
            koff = isec * nmem
            for ipair in range(0, nmem - 1, 2):
                ioff1 = (_bitrev(ipair, istages + 1) + koff) * ndat1
                i2 = (_bitrev(ipair + 1, istages + 1) + koff) * ndat1
                ndelay += 1
                for i1 in range(ioff1, npts + ioff1):
                    itemp = outbuf[i1] + outbuf[i2 + ndelay]
                    outbuf[i2] = outbuf[i1] + outbuf[i2 + ndelay + 1]
                    outbuf[i1] = itemp
                    i2 += 1
    return outbuf


def test_tree_offsets_and_drift_grid():
    assert [tt.padded_time(t) for t in (1, 2, 3, 10, 16, 17, 273)] == [1, 2, 4, 16, 16, 32, 512]
    assert tt.tree_offsets(4, 1).tolist() == [0, 0, 1, 1]
    assert tt.tree_offsets(8, 3).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    for d in range(16):
        off = tt.tree_offsets(16, d)
        assert off[0] == 0 and off[-1] == d and np.all(np.diff(off) >= 0)
    np.testing.assert_allclose(tt.drift_rates(10), np.arange(16) / 15)
    np.testing.assert_allclose(tt.drift_rates(16, drift_block=2), 2 + np.arange(16) / 15)
    assert tt.exact_drifts(8).tolist() == list(range(8))
    assert 0 in tt.exact_drifts(273) and 511 in tt.exact_drifts(273)
    assert tt.round_half_away([0.5, -0.5, 1.49, -2.5]).tolist() == [1, -1, 1, -3]


@pytest.mark.parametrize("time", [16, 10, 273, 1, 3])
def test_tree_is_the_sum_along_its_paths_and_equals_brute_force_where_exact(time):
    freq = 300
    x = _noise((time, freq), seed=time)
    n = tt.padded_time(time)
    padded = np.zeros((n, freq), np.float32)
    padded[:time] = x
    pos, neg = tt.taylor_tree(x), tt.taylor_tree(x, negative=True)
    assert pos.shape == neg.shape == (n, freq) and pos.dtype == np.float32
    for d in sorted({*range(0, n, 1 if n <= 64 else 7), n - 1}):    # a sample of 512 drifts
        off = tt.tree_offsets(n, d)
        np.testing.assert_allclose(pos[d], _path_sum(padded, off), atol=2e-4 * np.sqrt(time))
        np.testing.assert_allclose(neg[d], _path_sum(padded, -off), atol=2e-4 * np.sqrt(time))
    exact = tt.exact_drifts(time)
    rates = tt.drift_rates(time)[exact]
    np.testing.assert_allclose(pos[exact], tt.brute_force(x, rates), atol=2e-4 * np.sqrt(time))
    np.testing.assert_allclose(neg[exact], tt.brute_force(x, -rates), atol=2e-4 * np.sqrt(time))


@pytest.mark.parametrize("time", [8, 16])
def test_tree_matches_turboseti_flt_inside_the_band(time):
    freq = 64
    x = _noise((time, freq), seed=3).astype(np.float64)
    out = _turboseti_flt(x.ravel().copy(), time).reshape(time, freq)
    ours = tt.taylor_tree(x.astype(np.float32))
    nbits = int(np.log2(time))
    for d in range(time):
        # turboSETI updates only its first `freq - time` channels at each stage (no shoulder), so
        # the paths it completes start below `freq - 2 time`; the CPU kernel's rows are
        # bit-reversed drift indices (Kernels.get_spectrum).
        inside = freq - 2 * time
        np.testing.assert_allclose(ours[d, :inside], out[_bitrev(d, nbits), :inside], atol=1e-4)


@pytest.mark.parametrize("time,drift,start", [(16, 5, 40), (16, 15, 7), (10, 11, 100), (273, 300, 60)])
@pytest.mark.parametrize("sign", [1, -1])
def test_planted_line_recovered(time, drift, start, sign):
    freq, level = 700, 2.0
    n = tt.padded_time(time)
    rate = drift / (n - 1)
    start = start if sign > 0 else freq - 1 - start
    x = np.zeros((time, freq), np.float32)
    x[np.arange(time), start + sign * tt.round_half_away(rate * np.arange(time))] = level
    maps, rates = tt.taylor_dedoppler(x)
    assert maps.shape == (2 * n - 1, freq) and rates.shape == (2 * n - 1,)
    row, channel = np.unravel_index(np.argmax(maps), maps.shape)
    assert (row, channel) == (n - 1 + sign * drift, start)
    assert rates[row] == pytest.approx(sign * rate)
    expected = level * time
    # The tree's staircase meets the line in every row for the exact drifts, in fewer otherwise.
    hit_rows = np.sum(tt.tree_offsets(n, drift)[:time] == tt.round_half_away(rate * np.arange(time)))
    assert (hit_rows == time) == (drift in tt.exact_drifts(time))
    assert maps[row, channel] == pytest.approx(level * hit_rows)
    brute = tt.brute_force(x, [sign * rate])
    assert brute[0, start] == pytest.approx(expected)
    # Against noise: still the maximum of the map.
    noisy = x + 0.3 * _noise(x.shape, seed=drift)
    maps = tt.taylor_dedoppler(noisy)[0]
    assert np.unravel_index(np.argmax(maps), maps.shape) == (n - 1 + sign * drift, start)


def test_batched_equals_looped():
    x = _noise((3, 10, 5000), seed=1)           # more than one channel chunk
    for fn in (tt.taylor_tree, lambda v: tt.taylor_tree(v, negative=True, drift_block=2, desmear=True),
               lambda v: tt.brute_force(v, [-1.7, 0.0, 0.3]),
               lambda v: tt.brute_force(v, [-2.5, 3.2], desmear=True),
               lambda v: tt.taylor_dedoppler(v)[0]):
        batched = fn(x)
        np.testing.assert_array_equal(batched, np.stack([fn(v) for v in x]))


def _continuous_line(time, freq, start, rate, power=1.0):
    """A needle moving `rate` channels per row continuously: in row t its power is split over the
    channels [c - 1/2, c + 1/2) it crosses between positions start + rate t and start + rate (t + 1),
    in proportion to the time spent in each."""
    x = np.zeros((time, freq), np.float32)
    edges = np.arange(freq + 1) - 0.5
    for t in range(time):
        a, b = sorted((start + rate * t, start + rate * (t + 1)))
        overlap = np.clip(np.minimum(edges[1:], b) - np.maximum(edges[:-1], a), 0, None)
        x[t] = power * overlap / (b - a)
    return x


@pytest.mark.parametrize("rate", [3.4, -2.6])
def test_desmearing_recovers_a_fast_line(rate):
    time, freq, start = 16, 256, 128
    x = _continuous_line(time, freq, start, rate)
    plain = tt.brute_force(x, [rate])[0, start]
    desmeared = tt.brute_force(x, [rate], desmear=True)[0, start]
    assert plain < 0.45 * time
    assert desmeared == pytest.approx(time, rel=1e-5)      # every channel the line crosses
    # Brute-force desmearing: channels round(r t) .. round(r (t + 1)) of every row t.
    y = _noise((time, freq))
    steps = tt.round_half_away(rate * np.arange(time + 1))
    spread = np.zeros(freq)
    for t in range(time):
        lo, hi = sorted(steps[t:t + 2])
        row = np.zeros((time, freq), np.float32)
        row[t] = y[t]
        spread += sum(_path_sum(row, np.full(time, k)) for k in range(lo, hi + 1))
    np.testing.assert_allclose(tt.brute_force(y, [rate], desmear=True)[0], spread, atol=1e-4)
    # At one channel per row or slower, desmearing is the plain sum.
    slow = [-1.0, -0.4, 0.0, 0.7, 1.0]
    np.testing.assert_array_equal(tt.brute_force(y, slow, desmear=True), tt.brute_force(y, slow))


def test_tree_desmearing_with_a_drift_block():
    time, freq, start, block, drift = 16, 256, 20, 3, 5
    rate = block + drift / 15
    x = _continuous_line(time, freq, start, rate)
    plain = tt.taylor_tree(x, drift_block=block)
    desmeared = tt.taylor_tree(x, drift_block=block, desmear=True)
    assert np.unravel_index(np.argmax(desmeared), desmeared.shape) == (drift, start)
    assert plain[drift, start] < 0.4 * time
    assert desmeared[drift, start] > 0.9 * time
    # drift_block paths: b t + tree offsets; negative ones mirrored.
    y = _noise((time, freq), seed=2)
    for d in (0, 7, 15):
        off = block * np.arange(time) + tt.tree_offsets(16, d)
        np.testing.assert_allclose(tt.taylor_tree(y, drift_block=block)[d],
                                   _path_sum(y, off), atol=1e-4)
        np.testing.assert_allclose(tt.taylor_tree(y, negative=True, drift_block=block)[d],
                                   _path_sum(y, -off), atol=1e-4)
        # Desmeared: the block + 1 channels from the path's channel on, in every row.
        spread = sum(_path_sum(y, off + k) for k in range(block + 1))
        np.testing.assert_allclose(tt.taylor_tree(y, drift_block=block, desmear=True)[d], spread,
                                   atol=1e-4)
        spread = sum(_path_sum(y, -off - k) for k in range(block + 1))
        np.testing.assert_allclose(tt.taylor_tree(y, negative=True, drift_block=block, desmear=True)[d],
                                   spread, atol=1e-4)


@pytest.mark.parametrize("bad,match", [
    (np.zeros((4, 8), np.int32), "dtype"),
    (np.zeros((2, 2, 4, 8), np.float32), "shape"),
    (np.zeros(8, np.float32), "shape"),
    (np.zeros((0, 8), np.float32), "empty"),
])
def test_bad_inputs(bad, match):
    for fn in (tt.taylor_tree, lambda v: tt.brute_force(v, [0.5]), tt.taylor_dedoppler):
        with pytest.raises(ValueError, match=match):
            fn(bad)
    with pytest.raises(ValueError, match="rates"):
        tt.brute_force(np.zeros((4, 8), np.float32), [[0.5]])
    with pytest.raises(ValueError, match="drift_block"):
        tt.taylor_tree(np.zeros((4, 8), np.float32), drift_block=-1)


def test_imports_no_tensorflow():
    code = ("import sys, tfseti.dedoppler.taylor\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
