"""The dataset-level matcher ("magic 2"): finds the true partner and channel offset among snippets
of shared observations, and the aligned difference removes the shared RFI but keeps the needle."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from tfrecords_tools.snippet_matching import (MatchConfig, aligned_difference, column_cosines,
                                              main, match_cadences, normalise_columns,
                                              shift_confidence)
from tfseti.io.kaggle import OFF_PANELS, ON_PANELS, KaggleDataset
from tfseti.synth import (CadenceSpec, NeedleShape, NeedleSpec, RFISpec, SharedCadenceSpec, generate_dataset,
                          make_snippets, needle_track)
from tfr_helpers import ARGUMENT_ERRORS

WIDE = dataclasses.replace(CadenceSpec(0).frame, fchans=512)
RFI_CHANNEL = 210   # of the observation: channel 40 of snippet a, clear of its needle (150 -> ~97)


def _observation(seed):
    return CadenceSpec(noise_seed=seed, frame=WIDE, bandpass_tilt=0.04,
                       rfi=(RFISpec("zero_drift", f_start=RFI_CHANNEL, snr=200.0, width=8.0),
                            RFISpec("drifting", f_start=190.0, snr=150.0, width=6.0, drift_rate=0.05)))


NEEDLE = NeedleSpec(NeedleShape("linear", drift_rate=-0.08, width=6.0), f_start=150.0, snr=60.0)


@pytest.fixture(scope="module")
def pair():
    """Snippet a (needle) at offset 170 and b (none) at 100 of one observation; c from another."""
    observation = _observation(21)
    a, b = make_snippets(observation, [SharedCadenceSpec(observation, 170, NEEDLE),
                                       SharedCadenceSpec(observation, 100)])
    (c,) = make_snippets(_observation(22), [SharedCadenceSpec(_observation(22), 170)])
    track = needle_track(dataclasses.replace(observation, needle=NEEDLE))
    return a, b, c, track


def test_confidence_peaks_only_at_the_true_shift_of_the_true_partner(pair):
    a, b, c, _ = pair
    an, bn, cn = (normalise_columns(x) for x in (a, b, c))
    shifts = np.arange(-255, 256)
    scores = shift_confidence(an, bn, shifts)
    assert shifts[np.nanargmax(scores)] == -70              # a's channel j is b's channel j + 70
    assert scores[shifts == -70][0] > 0.99
    assert np.nanmax(np.delete(scores, np.where(shifts == -70)[0])) < 0.3
    # The same observation's RFI makes c resemble a a little, but never like a true partner.
    assert np.nanmax(shift_confidence(an, cn, shifts)) < 0.5
    # The needle columns are the ones that differ; the median ignores them.
    cosines = column_cosines(an, bn, -70)
    assert cosines.min() < 0.97 and np.median(cosines) > 0.999


def test_difference_removes_shared_rfi_and_keeps_the_needle(pair):
    a, b, _, track = pair
    diff = aligned_difference(a, b, -70)
    assert diff.shape == a.shape
    a32 = a.astype(np.float32)
    rfi = RFI_CHANNEL - 170                                     # in a's channels (inside the overlap)
    assert a32[:, :, rfi].mean() > 3.0                          # bright in a (all panels) ...
    assert np.abs(diff[:, :, rfi]).max() < 0.05                 # ... gone from the difference
    overlap = diff[:, :, :186]                                  # a's channels 0..185 lie in b too
    assert np.abs(overlap[list(OFF_PANELS)]).max() < 0.05       # OFF panels: nothing left at all
    rows = np.arange(a.shape[1])
    for panel in ON_PANELS:
        channels = np.round(track[panel]).astype(int)
        assert (channels < 186).all()
        kept = diff[panel, rows, channels]
        # The needle is all that is left, at a's own scale (a minus its background there).
        assert kept.mean() > 1.0
        np.testing.assert_allclose(kept.mean(), (a32[panel, rows, channels] - a32[panel, rows, channels + 20]).mean(),
                                   rtol=0.25)
        off_track = np.delete(overlap[panel], np.unique(np.concatenate([channels + k for k in range(-4, 5)])), axis=1)
        assert np.abs(off_track).max() < 0.05
    # Outside the overlap a keeps its input.
    np.testing.assert_array_equal(diff[:, :, 186:], a32[:, :, 186:])


def test_matcher_pairs_arrays_and_leaves_a_loner_unmatched(pair):
    a, b, c, _ = pair
    found = match_cadences([a, c, b], MatchConfig())
    assert (found[0]["partner"], found[0]["shift"]) == (2, -70)
    assert (found[2]["partner"], found[2]["shift"]) == (0, 70)
    assert found[0]["confidence"] > 0.99 and found[0]["overlap_stop"] - found[0]["overlap_start"] == 186
    assert found[1]["partner"] == -1                            # c has no partner here


def test_cli_finds_true_partners_and_offsets_on_a_shared_synthetic_set(tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    # 4 observations x 4 snippets in train and 1 x 4 in test, searched together, plus needles.
    generate_dataset(data, n_train=16, n_test=4, positive_rate=0.5, snr=(20, 40), seed=5, progress=False,
                     shared_background=4, shared_width=2)
    assert main(["--data", str(data), "--out", str(out), "--workers", "2"]) == 0
    truth = pd.read_csv(data / "truth.csv", dtype={"id": str}).set_index("id")
    matches = pd.read_csv(out / "matches.csv", dtype={"id": str, "partner": str}, keep_default_na=False)
    assert sorted(matches.id) == sorted(truth.index)
    for row in matches.itertuples():
        if not row.matched:
            continue
        # The true partner: same observation, and the recorded offset difference as the shift.
        assert truth.group[row.partner] == truth.group[row.id], row
        assert row.shift == truth.channel_offset[row.partner] - truth.channel_offset[row.id], row
        assert row.partner_split == truth.split[row.partner] and row.confidence > 0.9
    possible = {cid for cid in truth.index
                if (np.abs(truth.channel_offset[truth.group == truth.group[cid]] - truth.channel_offset[cid])
                    <= 256 - 16).sum() > 1}
    assert set(matches.id[matches.matched.astype(bool)]) == possible
    # The output is a Kaggle-layout folder of differences; unmatched cadences keep their input.
    for split in ("train", "test"):
        source, result = KaggleDataset(str(data), split), KaggleDataset(str(out), split)
        assert result.ids() == source.ids()
        for cid in source.ids():
            row = matches.set_index("id").loc[cid]
            before, after = source.load(cid), result.load(cid)
            if row.matched in (True, "True"):
                span = slice(int(row.overlap_start), int(row.overlap_stop))
                assert np.abs(after[list(OFF_PANELS), :, span].astype(np.float32)).max() < 0.05
            else:
                np.testing.assert_array_equal(after, before)


def test_config_validation():
    with pytest.raises(ValueError, match="stride"):
        MatchConfig(stride=0)
    with pytest.raises(ValueError, match="min_confidence"):
        MatchConfig(min_confidence=2.0)


@pytest.mark.parametrize("args, message", ARGUMENT_ERRORS)
def test_cli_argument_errors_are_one_line(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as caught:
        main(["--data", str(tmp_path), "--out", str(tmp_path / "out"), *args])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_settings_from_a_file_flags_and_overrides(tmp_path, capsys):
    """MatchConfig from ``--config FILE.toml`` (top-level keys), the flags given and ``key=value``
    overrides (``tfseti.config.load_settings``); a typo is one line and writes nothing."""
    from tfrecords_tools.snippet_matching import parse_command_line

    path = tmp_path / "match.toml"
    path.write_text("stride = 4\nmin_overlap = 32\n")
    base = ["--data", str(tmp_path), "--out", str(tmp_path / "out")]
    from_file = parse_command_line([*base, "--config", str(path)])[1]
    assert from_file == parse_command_line([*base, "--stride", "4", "--min-overlap", "32"])[1]
    assert from_file == MatchConfig(stride=4, min_overlap=32)
    assert parse_command_line([*base, "--config", str(path), "--stride", "2", "bits=16"])[1] == \
        MatchConfig(stride=2, min_overlap=32, bits=16)
    assert main([*base, "--config", str(path), "strid=3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: override strid=3 (command line): strid: unknown key in MatchConfig")
    assert "did you mean 'stride'?" in err and err.count("\n") == 1
    assert main([*base, "--config", str(path), "stride=0"]) == 2
    assert capsys.readouterr().err == ("error: override stride=0 (command line): stride must be an "
                                       "integer >= 1, got 0\n")
    assert not (tmp_path / "out").exists()
