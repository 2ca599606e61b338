"""The window plan (coverage, coarse-channel flags, DC repair), the time resampling, the model's
snippets, the read groups and the scan settings."""

from __future__ import annotations

import numpy as np
import pytest

from tfseti.scan.settings import ScanSettings
from tfseti.scan.stream import read_groups
from tfseti.scan.windows import WindowPlan, fine_per_coarse_for, make_snippets, remove_dc, resample_matrix


@pytest.mark.parametrize("nchans, overlap, expected", [
    (1024, 0, [0, 256, 512, 768]),
    (1024, 128, [0, 128, 256, 384, 512, 640, 768]),
    (1000, 0, [0, 256, 512, 744]),             # one more window ending at the band's edge
    (256, 100, [0]),
])
def test_windows_cover_the_band(nchans, overlap, expected):
    plan = WindowPlan(nchans, 256, overlap, None)
    assert plan.starts.tolist() == expected and len(plan) == len(expected)
    covered = np.zeros(nchans, bool)
    for s in plan.starts:
        covered[s:s + 256] = True
    assert covered.all()


def test_coarse_channel_flags_and_dc_channels():
    plan = WindowPlan(4096, 256, 128, 1024)
    assert plan.dc_channels(0, 4096).tolist() == [512, 1536, 2560, 3584]
    assert plan.dc_channels(513, 1536).tolist() == []
    assert plan.dc_channels(1536, 1537).tolist() == [1536]
    flags = {int(s): plan.flags(int(s)) for s in plan.starts}
    assert flags[384] == "dc" and flags[512] == "dc" and flags[256] == ""   # channel 512
    assert flags[896] == "edge" and flags[1408] == "dc"    # crosses 1024; holds 1536
    assert flags[0] == "" and flags[1024] == ""
    assert WindowPlan(4096, 256, 0, None).flags(256) == ""
    assert fine_per_coarse_for(3 * 2 ** 20, "auto") == 2 ** 20
    assert fine_per_coarse_for(4096, "auto") is None and fine_per_coarse_for(4096, 512) == 512
    with pytest.raises(ValueError, match="--overlap"):
        WindowPlan(4096, 256, 256, None)
    with pytest.raises(ValueError, match="fewer than one window"):
        WindowPlan(200, 256, 0, None)


def test_dc_spike_is_replaced_by_its_neighbours_mean():
    plan = WindowPlan(4096, 256, 0, 1024)
    block = np.random.default_rng(0).normal(size=(6, 16, 300)).astype(np.float32)
    block[..., 512 - 400] = 1e6                      # the DC channel 512 of a block from 400
    before = block.copy()
    remove_dc(block, 400, plan)
    i = 112
    np.testing.assert_allclose(block[..., i], (before[..., i - 1] + before[..., i + 1]) / 2, rtol=1e-6)
    np.testing.assert_array_equal(np.delete(block, i, -1), np.delete(before, i, -1))
    edge = before.copy()                             # DC at the block's last channel: one neighbour
    remove_dc(edge, 512 - 299, plan)
    np.testing.assert_array_equal(edge[..., 299], before[..., 298])


def test_area_resampling_averages_down_and_repeats_up():
    down = resample_matrix(546, 273, "area")
    x = np.arange(546.0)
    np.testing.assert_allclose(down @ x, (x[0::2] + x[1::2]) / 2)
    up = resample_matrix(16, 273, "area")
    np.testing.assert_allclose(up.sum(axis=1), 1.0)
    y = up @ np.arange(16.0)
    assert y[0] == 0 and y[-1] == 15 and np.all(np.diff(y) >= 0)
    # 273 / 16 = 17.06 rows per integration: all but the boundary rows copy one integration
    assert np.sum(np.isclose(y, np.round(y))) >= 273 - 15
    lin = resample_matrix(16, 273, "linear") @ np.arange(16.0)
    assert lin[0] == 0 and lin[-1] == 15 and np.all(np.diff(lin) > -1e-12)
    np.testing.assert_array_equal(resample_matrix(273, 273), np.eye(273))
    with pytest.raises(ValueError, match="--time-resample"):
        resample_matrix(16, 273, "cubic")


def test_snippets_are_float16_panels_of_mean_0_std_1():
    rng = np.random.default_rng(1)
    native = rng.normal(50.0, 7.0, size=(3, 6, 16, 256)).astype(np.float32)
    native[1, 4] = 3.0                               # a constant panel becomes zeros
    snip = make_snippets(native, resample_matrix(16, 273))
    assert snip.shape == (3, 6, 273, 256) and snip.dtype == np.float16
    x = snip.astype(np.float64)
    ok = np.ones((3, 6), bool)
    ok[1, 4] = False
    np.testing.assert_allclose(x.mean(axis=(2, 3))[ok], 0.0, atol=2e-3)
    np.testing.assert_allclose(x.std(axis=(2, 3))[ok], 1.0, atol=2e-3)
    assert not x[1, 4].any()
    # row r of the snippet is integration floor(r * 16 / 273) (area, away from boundaries)
    ref = (native[0, 2, 5] - native[0, 2].mean()) / native[0, 2].std()
    np.testing.assert_allclose(x[0, 2, 90], ref, rtol=2e-2, atol=1e-2)   # std of 16 vs 273 rows


@pytest.mark.parametrize("read_mb, batch", [(0.001, 4), (1.0, 4), (100.0, 3)])
def test_read_groups_hold_whole_batches(read_mb, batch):
    plan = WindowPlan(8192, 256, 128, None)
    groups = read_groups(plan, 16, read_mb, batch)
    assert groups[0][0] == 0 and groups[-1][1] == len(plan)
    assert all(a[1] == b[0] for a, b in zip(groups, groups[1:]))
    assert all(first % batch == 0 for first, _ in groups)
    assert all((stop - first) % batch == 0 for first, stop in groups[:-1])
    if read_mb >= 100:
        assert len(groups) == 1


@pytest.mark.parametrize("field, value, match", [
    ("overlap", -1, "--overlap"), ("batch_size", 0, "--batch-size"), ("drifts", 0, "--drifts"),
    ("tta", "random:4", "--tta"), ("time_resample", "nearest", "--time-resample"),
    ("min_probability", 1.5, "--min-probability"), ("fine_per_coarse", 1, "--fine-per-coarse"),
    ("max_drift_hz", 0.0, "--max-drift-hz"),
])
def test_settings_refuse_bad_values(field, value, match):
    with pytest.raises(ValueError, match=match):
        ScanSettings(**{field: value})
    assert ScanSettings().drifts == "auto" and ScanSettings(drifts=33).drifts == 33
