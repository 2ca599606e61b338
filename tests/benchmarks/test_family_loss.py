"""benchmarks/family_loss.py: its measures on needles whose answer is known (a straight needle
inside the drift range keeps its power in one map cell, one steeper than ``max_drift`` does not
until the range is widened; a pulsed needle carries its on-fraction of a constant one's power),
its maps and score against the project's own, and the command at toy size."""

import json

import numpy as np
import pytest

from benchmarks import family_loss as bench
from tfseti.dedoppler import window_scores as ws
from tfseti.synth.cadence import CadenceSpec, NeedleSpec, make_cadence
from tfseti.synth.families import NeedleShape
from tfseti.synth.parameters import FRAME

BASE = bench.recipe_dedoppler("cpu")
CANDS = {c.name: c for c in bench.candidates(BASE)}
HZ_S_PER_CH_ROW = FRAME.df / FRAME.dt
MIDDLE = 1  # index of ON panel 2 (the cadence's reference panel) in a record's per-panel lists


def _needle(shape: NeedleShape, seed: int, snr: float = 20.0, f_start: float = 128.0) -> CadenceSpec:
    """A cadence without RFI holding one needle in all three ON panels; a drifting needle starts
    where its track crosses ``f_start`` at the middle of ON panel 2."""
    spec = CadenceSpec(noise_seed=seed, slew=20.0, needle=NeedleSpec(shape, f_start=0.0, snr=snr, seed=seed))
    centre = spec.panel_times()[2, FRAME.tchans // 2]
    return CadenceSpec(noise_seed=seed, slew=20.0, needle=NeedleSpec(
        shape, f_start=f_start - shape.drift_rate * centre / FRAME.df, snr=snr, seed=seed))


def _linear(rate_ch_row: float, seed: int) -> CadenceSpec:
    return _needle(NeedleShape("linear", drift_rate=rate_ch_row * HZ_S_PER_CH_ROW, width=8.0), seed)


def test_straight_needle_in_range_keeps_its_power_and_a_steeper_one_does_not():
    cands = list(CANDS.values())
    inside = bench.measure_positives([_linear(0.1, s) for s in (1, 2)], cands, BASE)
    steep = bench.measure_positives([_linear(2.5 * BASE.max_drift, s) for s in (3, 4)], cands, BASE)
    for rec in inside:
        # Gaussian FWHM ~2.9 channels, no RFI, SNR 20: only the channel rounding of the path and
        # the needle's spread within a 7-row block are lost.
        assert all(0.8 < v < 1.05 for v in rec["peak"]["current"]), rec["peak"]["current"]
        assert all(v > 0.9 for v in np.divide(rec["peak"]["current"], rec["track"]))
        assert rec["aligned"]["current"] > 0.75
        assert rec["exact"][MIDDLE] == pytest.approx(rec["peak"]["current"][MIDDLE], rel=0.05)
        assert rec["max_slope"] == pytest.approx(0.1) and rec["out_of_range"] == 0.0
    for rec in steep:
        current = rec["peak"]["current"][MIDDLE]
        wide = rec["peak"]["wide x4"][MIDDLE]      # 0.5 ch/row is inside +-0.8
        assert current < 0.3 and wide > 2 * current, (current, wide)
        assert rec["out_of_range"] == 1.0 and rec["group"] == "linear"


def test_pulsed_needle_carries_its_on_fraction_and_parts_do_not_help_short_pulses():
    period, duty = 40.0, 0.3
    shape = NeedleShape("pulsed", drift_rate=0.05 * HZ_S_PER_CH_ROW, width=8.0, period=period,
                        pulse_width=duty * period)
    pulsed = bench.measure_positives([_needle(shape, s) for s in (5, 6)], list(CANDS.values()), BASE)
    constant = bench.measure_positives([_linear(0.05, s) for s in (5, 6)], list(CANDS.values()), BASE)
    gaussian_area = np.sqrt(np.pi / np.log(2)) / 2 * duty      # mean of unit Gaussian pulses
    for p, c in zip(pulsed, constant):
        assert np.allclose(p["on_fraction"], gaussian_area, rtol=0.05)
        ratio = np.divide(p["peak"]["current"], c["peak"]["current"])
        assert np.allclose(ratio, p["on_fraction"], rtol=0.15), (ratio, p["on_fraction"])
        # ~7 pulses per panel: each quarter holds a quarter of the power, over half the noise.
        quarters = np.divide(p["peak"]["quarters max"], p["peak"]["current"])
        assert np.all((quarters > 0.4) & (quarters < 0.7)), quarters


def test_maps_score_and_cadences_are_the_projects():
    specs = bench.draw_specs("sine", 2, 0) + bench.draw_specs(None, 2, 0)
    pairs = [bench.synthesise(s) for s in specs]
    np.testing.assert_array_equal(pairs[0][0], make_cadence(specs[0]))
    np.testing.assert_array_equal(pairs[2][0], pairs[2][1])      # a negative has no needle
    assert [s.needle.snr for s in specs[:2]] == [5.0, 10.0]
    x = np.stack([p[0] for p in pairs])
    cleaned = ws.clean(x, BASE)
    np.testing.assert_allclose(bench.part_maps(cleaned, CANDS["current"], 273),
                               ws.drift_sums(cleaned, BASE, "cadence", 273), rtol=1e-5, atol=1e-5)
    scores = bench.candidate_scores(cleaned, [CANDS["current"]], BASE, 273)["current"]
    classical = ws.score_batch(x, BASE, panel_maxima=False).scores["two_of_three"]
    np.testing.assert_allclose(scores, classical, rtol=1e-5, atol=1e-5)
    assert bench.off_half_width(CANDS["fine x2"], BASE) == 4
    assert bench.off_half_width(CANDS["wide x4"], BASE) == 2


def test_command_at_toy_size(tmp_path, capsys):
    assert bench.main(["--out", str(tmp_path), "--n", "4", "--n-neg", "4", "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    for title in ("A. needle power", "B. peak/snr", "C. peak/snr", "D. sine", "E. pulsed",
                  "F. drift resolution", "G. classical two_of_three AUC"):
        assert title in printed
    result = json.loads((tmp_path / "results.json").read_text())
    assert len(result["positives"]) == 4 * len(bench.TEST_FAMILIES)
    assert len(result["negatives"]) == 4
    assert (tmp_path / "tables.txt").read_text().strip() in printed
    with pytest.raises(SystemExit):
        bench.parse_args(["--out", str(tmp_path), "--n", "2"])
