"""The de-Doppler op: equal to a brute-force loop, finds setigen needles where they are, runs the
same eagerly, inside tf.data and under XLA, and the view built from it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from tf_harness import MODES, run

from tfseti.data import drift_sums as ds
from tfseti.data.config import REFERENCES, DedopplerConfig, ViewConfig
from tfseti.data.views import make_view, view_shape

SMALL = DedopplerConfig(max_drift=0.2, drifts=9, block=7, clip=0.0)


def brute_force(blocks: np.ndarray, cfg, time: int) -> np.ndarray:
    """The definition, as loops: sum the blocks along each path, zero outside the band."""
    n, panels, n_blocks, freq = blocks.shape
    shifts = ds.block_shifts(cfg, panels, time)
    out = np.zeros((n, panels, cfg.drifts, freq))
    for p in range(panels):
        for d in range(cfg.drifts):
            for b in range(n_blocks):
                s = shifts[p, d, b]
                for f in range(freq):
                    if 0 <= f + s < freq:
                        out[:, p, d, f] += blocks[:, p, b, f + s]
    return out / np.sqrt(time)


@pytest.mark.parametrize("reference", REFERENCES)
def test_drift_sums_equal_the_brute_force_definition(reference):
    cfg = replace(SMALL, reference=reference)
    rng = np.random.default_rng(0)
    blocks = rng.standard_normal((2, 6, 5, 32)).astype(np.float32)
    got = ds.drift_sums(blocks, cfg, time=35).numpy()
    np.testing.assert_allclose(got, brute_force(blocks, cfg, 35), atol=2e-5)


@pytest.mark.parametrize("mode", MODES)
def test_dedoppler_is_the_same_eagerly_in_tf_data_and_under_xla(mode):
    cfg = DedopplerConfig(drifts=5, clip=5.0)
    cadence = np.random.default_rng(1).standard_normal((2, 6, 21, 64)).astype(np.float16)
    want = ds.dedoppler(cadence, cfg).numpy()
    got = run(mode, lambda x: ds.dedoppler(x, cfg), cadence)
    assert got.shape == (2, 6, 5, 64)
    np.testing.assert_allclose(got, want, atol=1e-3)


def straight_needle(cfg, channel: float, drift_index: int, panels=(0, 2, 4), level=1.0,
                    shape=(6, 273, 256), seed=0) -> np.ndarray:
    """Noise plus a 1-channel line through the given panels along a searched path."""
    rng = np.random.default_rng(seed)
    cadence = rng.standard_normal(shape).astype(np.float32)
    offsets = ds.reference_rows(cfg, shape[0], shape[1])
    rate = ds.drift_rates(cfg)[drift_index]
    for p in panels:
        for t in range(shape[1]):
            f = int(round(channel + rate * offsets[p, t]))
            if 0 <= f < shape[2]:
                cadence[p, t, f] += level
    return cadence


def test_a_straight_needle_is_found_at_its_drift_and_channel_in_every_on_panel():
    cfg = DedopplerConfig()
    cadence = straight_needle(cfg, channel=120, drift_index=44, level=0.8)
    maps = ds.dedoppler(cadence[None], cfg).numpy()[0]
    for p in (0, 2, 4):
        d, f = np.unravel_index(np.argmax(maps[p]), maps[p].shape)
        assert abs(d - 44) <= 1 and abs(f - 120) <= 1, (p, d, f)
        assert maps[p, d, f] > 8        # 0.8 sigma per row over 273 rows: SNR ~ 13
    for p in (1, 3, 5):
        assert maps[p].max() < 6        # noise only


def test_a_setigen_needle_is_recovered_within_one_bin():
    """A needle drawn by setigen (the simulator of the Kaggle data) in the synthetic cadence layout."""
    import setigen as stg

    from tfseti.synth.cadence import FRAME

    cfg = DedopplerConfig(reference="panel", drifts=65, background="panel_median")
    drift_hz_s = 0.15
    start = 100.0
    frame = stg.Frame(fchans=256, tchans=273, df=FRAME.df, dt=FRAME.dt, fch1=FRAME.fch1, seed=3)
    frame.add_noise(x_mean=10, noise_type="chi2")
    frame.add_signal(stg.constant_path(f_start=frame.get_frequency(start), drift_rate=drift_hz_s),
                     stg.constant_t_profile(level=frame.get_intensity(snr=30)),
                     stg.gaussian_f_profile(width=2 * FRAME.df), stg.constant_bp_profile(level=1))
    data = frame.get_data()
    panel = (data - data.mean()) / data.std()
    cadence = np.zeros((3, 273, 256), np.float32)
    cadence[0] = panel
    maps = ds.dedoppler(cadence[None], cfg).numpy()[0, 0]
    d, f = np.unravel_index(np.argmax(maps), maps.shape)
    rates = ds.drift_rates(cfg)
    # The needle's track in array coordinates, from setigen's own channel frequencies.
    true_rate = drift_hz_s * FRAME.dt / (frame.fs[1] - frame.fs[0])          # channels per row
    true_centre = start + true_rate * (273 - 1) / 2                           # at the panel centre
    assert abs(rates[d] - true_rate) <= (rates[1] - rates[0]) + 1e-9
    assert abs(f - true_centre) <= 1.0
    assert maps[d, f] > 15


def test_rfi_in_all_six_panels_scores_below_an_on_only_needle_of_the_same_snr():
    from tfseti.dedoppler.scores import score_batch

    cfg = DedopplerConfig()
    needle = straight_needle(cfg, 90, 40, panels=(0, 2, 4), level=0.8, seed=1)
    rfi = straight_needle(cfg, 90, 40, panels=range(6), level=0.8, seed=1)
    result = score_batch(np.stack([needle, rfi]), cfg)
    for name, values in result.scores.items():
        assert values[0] > values[1] + 3, (name, values)
    assert result.pattern[0] == "101010"
    assert result.pattern[1] != "101010"     # its best ON-minus-OFF path is not the interferer
    assert abs(result.drift[0] - ds.drift_rates(cfg)[40]) < 1e-9
    assert abs(result.channel[0] - 90) <= 1


def test_clipping_stops_a_broadband_burst_from_dominating():
    cfg = DedopplerConfig(clip=5.0)
    burst = np.random.default_rng(2).standard_normal((6, 273, 256)).astype(np.float32)
    burst[1, 100:104, 40:140] += 40.0             # bright, short, 100 channels wide, OFF panel
    clipped = ds.dedoppler(burst[None], cfg).numpy()[0, 1].max()
    unclipped = ds.dedoppler(burst[None], replace(cfg, clip=0.0)).numpy()[0, 1].max()
    assert unclipped > 10 and clipped < 6, (clipped, unclipped)


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="DedopplerConfig.background"):
        DedopplerConfig(background="mean")
    with pytest.raises(ValueError, match="DedopplerConfig.drifts"):
        DedopplerConfig(drifts=0)
    with pytest.raises(ValueError, match="DedopplerConfig.max_drift"):
        DedopplerConfig(max_drift=-1)
    with pytest.raises(ValueError, match="OFF panels"):
        ds.dedoppler(np.zeros((1, 3, 14, 16), np.float32), DedopplerConfig(background="off_median"))


@pytest.mark.parametrize("panels", [6, 3])
def test_dedoppler_view_shape_and_content(panels):
    cfg = ViewConfig(name="dedoppler",
                     dedoppler=DedopplerConfig(drifts=7, background="panel_median"))
    cadence = np.random.default_rng(3).standard_normal((2, panels, 21, 32)).astype(np.float16)
    image = make_view(cadence, cfg).numpy()
    assert image.shape == (2, *view_shape(cfg, panels, 21, 32)) == (2, 7, 32, panels)
    maps = ds.dedoppler(cadence, cfg.dedoppler).numpy()
    np.testing.assert_allclose(image, np.transpose(maps, (0, 2, 3, 1)), atol=1e-6)


def test_dedoppler_view_refuses_time_frequency_options():
    with pytest.raises(ValueError, match="removes its own background"):
        ViewConfig(name="dedoppler", background="off_median")
