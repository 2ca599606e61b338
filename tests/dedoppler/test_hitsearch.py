"""tfseti.dedoppler.hitsearch: turboSETI's per-file hit search, unit by unit (the comparison with
turboSETI's own ``.dat`` files is ``test_hits_parity.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from tfseti.dedoppler import hitsearch as hs
from tfseti.dedoppler.taylor import taylor_tree

DF_MHZ = 2.7939677238464355e-6
DT_S = 18.253611008
FCH1 = 6000.0


def _noise(time, width, seed):
    return np.random.default_rng(seed).chisquare(200, size=(time, width)).astype(np.float32) / 20


def _plant(x, channel, rate, level):
    """A one-channel needle from ``channel`` at ``rate`` channels per row (brute force's rounding)."""
    for t in range(x.shape[0]):
        x[t, channel + int(np.sign(rate) * np.floor(abs(rate) * t + 0.5))] += level


def _search(x, **kw):
    kw = {"fch1_mhz": FCH1, "foff_mhz": -DF_MHZ, "tsamp_s": DT_S, "max_drift": 0.5, "snr": 10.0} | kw
    return hs.search_coarse_channel(x, **kw)


def test_needle_restarting_in_each_file_is_a_hit_in_each():
    """Per-file searches: a needle that starts again at the same frequency in each of three files
    (a cadence's ON files) is a top hit in each, at that frequency and rate."""
    rate = 4 / 15  # channels per row: drift index 4 of T_pad = 16 (a tree path on the rounded line)
    hz_s = -hs.drift_resolution(-DF_MHZ, DT_S, 16) * 4  # rising channel index = falling frequency
    for seed in (1, 2, 3):
        x = _noise(16, 2048, seed)
        _plant(x, 700, rate, 3.0)
        hits = _search(x, coarse_channel=5, channel_offset=5 * 2048)
        assert [h.index for h in hits] == [700], hits
        (hit,) = hits
        assert hit.drift_index == 4 and hit.drift_rate == pytest.approx(hz_s, rel=1e-6)
        assert hit.freq_mhz == pytest.approx(FCH1 - 700 * DF_MHZ, abs=1e-9)
        assert hit.channel == 5 * 2048 + 700 and hit.coarse_channel == 5
        assert hit.snr > 12


def test_snr_is_turboseti_normalised_drift_sum():
    """SNR = (path sum - median) / std of the zero-drift spectrum's 5-95 % values; both signs; the
    drift rate's sign flips with foff."""
    x = _noise(16, 1024, 7)
    _plant(x, 300, -7 / 15, 4.0)
    median, std = hs.coarse_channel_stats(x)
    total = x.sum(axis=0)
    lo, hi = np.percentile(total, [5, 95])
    assert median == pytest.approx(np.median(total), rel=1e-6)
    assert std == pytest.approx(total[(total >= lo) & (total <= hi)].std(), rel=1e-5)
    rows = np.arange(16)
    path_sum = x[rows, 300 - np.floor(7 / 15 * rows + 0.5).astype(int)].sum()  # drift 7: on the line
    assert path_sum == pytest.approx(taylor_tree(x, negative=True)[7, 300], rel=1e-6)
    for foff, sign in ((-DF_MHZ, 1), (DF_MHZ, -1)):
        (hit,) = _search(x, foff_mhz=foff, blank_dc=False)
        assert hit.index == 300 and hit.drift_index == -7
        assert hit.snr == pytest.approx((path_sum - median) / std, rel=1e-5)
        assert np.sign(hit.drift_rate) == sign


def test_min_drift_threshold_and_count():
    """Drift 0 is never searched (|rate| > min_drift); nothing below the threshold; n_hits counts
    every (rate, channel) above it."""
    x = _noise(16, 1024, 3)
    x[:, 400] += 6.0  # a zero-drift line: seen only at +-1 drift bin, in part
    hits = _search(x)
    assert [h.index for h in hits] in ([400], [399], [401]) and abs(hits[0].drift_index) >= 1
    assert not _search(x, snr=hits[0].snr + 1)
    assert hits[0].n_hits >= 2  # at least both signs of the first bin
    assert not _search(_noise(16, 1024, 4), snr=10.0)


def test_tophitsearch_window_and_its_first_channel_quirk():
    """A weaker hit within 2 ceil(max_drift / resolution) channels of a stronger one is dropped,
    except when the stronger one sits exactly on the first channel of its window (turboSETI tests
    ``(maxsnr[lo:hi] > maxsnr[i]).nonzero()[0].any()``)."""
    snr = np.zeros(200, np.float32)
    snr[[50, 60, 150]] = [20, 15, 12]
    assert hs._top_hits(snr, 20) == [50, 150]
    assert hs._top_hits(snr, 10) == [50, 60, 150]  # 50 is the first channel of 60's window
    assert hs._top_hits(snr, 11) == [50, 150]
    snr[[100, 101]] = 30  # ties: both kept
    assert hs._top_hits(snr, 20) == [50, 100, 101, 150]


def test_drift_plan_covers_the_grid_in_turboseti_order():
    res = hs.drift_resolution(-DF_MHZ, DT_S, 16)
    plan = hs.drift_plan(16, 0.5, res)
    assert [(b, neg) for b, neg, _ in plan][:3] == [(-3, True), (-2, True), (-1, True)]
    g = np.concatenate([g for _, _, g in plan])
    top = int(np.floor(0.5 / res))
    assert set(g.tolist()) == set(range(-top, top + 1))
    assert g.min() == -top and g.max() == top
    for block, negative, gs in plan:  # tree drift index in range
        d = np.abs(gs) - abs(block) * 15
        assert d.min() >= 0 and d.max() <= 15 and np.all(np.sign(gs[gs != 0]) == (-1 if negative else 1))


def test_dc_blanking_and_input_untouched():
    x = _noise(16, 1024, 5)
    x[:, 512] += 50.0  # a DC spike in every row, zero drift
    before = x.copy()
    assert not _search(x)  # blanked (and drift 0 is not searched)
    assert np.array_equal(x, before)
    assert _search(x, blank_dc=False)  # its +-1-bin neighbours are bright enough


def test_window_of_a_coarse_channel_matches_the_whole():
    """A window searched with the coarse channel's stats (DC blanked first) has the whole coarse
    channel's hits on its channels farther than window_margin from its edges."""
    x = _noise(16, 4096, 9)
    for channel, rate, level in ((500, 8 / 15, 4.0), (1500, -1 - 2 / 15, 5.0), (2000, 1 / 15, 4.0),
                                 (3000, -14 / 15, 4.0)):
        _plant(x, channel, rate, level)
    whole = _search(x)
    stats = hs.coarse_channel_stats(x)
    blanked = x.copy()
    hs.blank_dc_channel(blanked)
    margin = hs.window_margin(16, 0.5, -DF_MHZ, DT_S)
    a, b = 1000, 3500
    part = _search(blanked[:, a:b], stats=stats, blank_dc=False, channel_offset=a,
                   fch1_mhz=FCH1 - a * DF_MHZ)
    inner = lambda hits: [(h.channel, h.drift_rate, h.snr, round(h.freq_mhz, 9))  # noqa: E731
                          for h in hits if a + margin <= h.channel < b - margin]
    assert len(inner(whole)) == 3 and inner(part) == inner(whole)


def test_dat_rows_write_with_scan_writer(tmp_path):
    from tfseti.dedoppler.dat import header_lines, read_dat, write_dat

    x = _noise(16, 2048, 11)
    _plant(x, 300, 0.2, 3.0)
    _plant(x, 1500, -0.5, 3.0)
    hits = _search(x)
    header = header_lines("f.h5", "SRC", 60000.0, 17.7875, -28.38, DT_S, -DF_MHZ, 0.5, 16 * DT_S)
    write_dat(str(tmp_path / "a.dat"), header, [h.dat_row() for h in hits])
    hs.write_hits_dat(str(tmp_path / "b.dat"), header, hits)
    for name, total in (("a.dat", len(hits)), ("b.dat", hits[0].n_hits)):
        _, rows = read_dat(str(tmp_path / name))
        assert [r["index"] for r in rows] == [300, 1500]
        assert [r["total"] for r in rows] == [total] * 2
        assert [r["drift"] for r in rows] == [round(h.drift_rate, 6) for h in hits]


def test_refuses_bad_input():
    with pytest.raises(ValueError, match="spectrogram"):
        _search(np.zeros(16, np.float32))
    with pytest.raises(ValueError, match="single integration"):
        _search(np.zeros((1, 64), np.float32))
    with pytest.raises(ValueError, match="float"):
        _search(np.zeros((16, 64), np.int32))
    with pytest.raises(ValueError, match="min_drift"):
        _search(np.zeros((16, 64), np.float32), min_drift=1.0, max_drift=0.5)
    with pytest.raises(ValueError, match="foff"):
        _search(np.zeros((16, 64), np.float32), foff_mhz=0.0)
    assert _search(np.ones((16, 64), np.float32)) == []  # std 0: no hits
