"""Observation data the scan (``python -m tfseti.scan``) and ``python -m tfseti.dedoppler`` must
survive (issue 26): files of unequal length (the cadence clock), NaN/Inf samples, cadence folder
names that collide with each other or with the scan's own files, ``#`` in a path, and the
de-Doppler CLI's unit flags and empty inputs.

Cheap on purpose: the shared 4096-channel x 16-integration setigen cadence of the scan tests
(``tests/scan/scan_helpers.py``, made once per session), the classical search only (no model).
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
from scan.scan_helpers import NEEDLES, channel_of, shared_cadences

from tfseti.io.observations import open_observation, read_cadence_list
from tfseti.scan.__main__ import main as scan_main
from tfseti.dedoppler.dat import read_dat
from tfseti.scan.run import RESERVED_NAMES, unique_names
from tfseti.scan.windows import (NONFINITE_KEY, WindowPlan, nonfinite_notes, nonfinite_summary,
                                 own_channels, remove_dc, repair_nonfinite)

DT = 18.253611008          # the setigen writer's tsamp
SLEW_S = 30.0              # ... and slew between files
WIDTH = 256
# Window columns that are numbers whatever the data (probability is empty without a model).
SCORE_COLUMNS = ("dedoppler", "straight_line", "drift_rate_hz_s", "hit_channel", "hit_freq_mhz",
                 "snr", *(f"panel_snr_{p}" for p in range(6)))


@pytest.fixture(scope="module")
def cadences(tmp_path_factory, worker_id):
    return shared_cadences(tmp_path_factory, worker_id)


def _copy(paths: list[str], folder) -> list[str]:
    os.makedirs(folder, exist_ok=True)
    out = []
    for path in paths:
        out.append(str(folder / os.path.basename(path)))
        shutil.copy(path, out[-1])
    return out


def _fil_payload(path: str) -> tuple[int, int]:
    """(data offset, nchans) of a float32 filterbank."""
    obs = open_observation(path)
    try:
        return obs._fil[0], obs.nchans
    finally:
        obs.close()


def _windows(out: str, name: str) -> pd.DataFrame:
    table = pd.read_csv(os.path.join(out, name, "windows.csv"), dtype={"pattern": str, "flags": str})
    table["flags"] = table["flags"].fillna("")         # an empty field: no flag
    return table


# -- the cadence clock of files of unequal length ----------------------------------------------

@pytest.fixture(scope="module")
def short_file_scan(cadences, tmp_path_factory):
    """The .fil cadence with file 4 (an OFF file) cut to 10 of its 16 integrations, scanned."""
    root = tmp_path_factory.mktemp("unequal")
    paths = _copy(cadences["fil"], root / "cad")
    offset, nchans = _fil_payload(paths[3])
    with open(paths[3], "r+b") as handle:
        handle.truncate(offset + 10 * nchans * 4)
    out = str(root / "out")
    assert scan_main(["--cadence", ",".join(paths), "--out", out, "--top", "0", "--no-progress"]) == 0
    return paths, out


def test_unequal_files_keep_the_cadence_clock(short_file_scan):
    paths, out = short_file_scan
    name = os.path.splitext(os.path.basename(paths[0]))[0]
    info = json.load(open(os.path.join(out, name, "cadence.json")))
    # All six cut to 10; file starts stay 16 x 18.25 s + 30 s apart: the cut-off 6 integrations
    # are slew (8 = round(17.64 - 10)); counting the uncut 16 gave 2 and drifts ~45 % too steep.
    assert info["rows"] == 10
    assert info["gap_rows"] == round((16 * DT + SLEW_S) / DT - 10) == 8
    assert any("cut to 10" in n for n in info["notes"])
    windows = _windows(out, name)
    for needle in NEEDLES[:2]:                 # the two drifting needles, SNR 40 and 25
        true = channel_of(needle.freq_mhz)
        near = windows[(windows.hit_channel - true).abs() <= 3]
        best = near.loc[near.dedoppler.idxmax()]
        assert best.hit and best.pattern[0::2] == "111", (needle, best.to_dict())
        assert best.drift_rate_hz_s == pytest.approx(needle.drift_hz_s, abs=0.02), needle
    # The .dat rows: drift as found, frequency at each ON file's first integration (setigen's
    # clock: file p starts p x (16 x 18.25 s + 30 s) after file 1), obs_length the 10 used.
    for p in (0, 2, 4):
        stem = os.path.splitext(os.path.basename(paths[p]))[0]
        header, hits = read_dat(os.path.join(out, name, f"{stem}.dat"))
        assert header["obs_length"] == pytest.approx(10 * DT, abs=1e-5)
        for needle in NEEDLES[:2]:
            true = channel_of(needle.freq_mhz + needle.drift_hz_s * p * (16 * DT + SLEW_S) / 1e6)
            near = [h for h in hits if abs(h["index"] - true) <= 3]
            assert len(near) == 1, (p, needle, [h["index"] for h in hits], true)
            assert near[0]["drift"] == pytest.approx(needle.drift_hz_s, abs=0.02), (p, needle)


# -- NaN / Inf samples ----------------------------------------------------------------------------

def test_repair_nonfinite_replaces_by_the_integration_median():
    rng = np.random.default_rng(0)
    native = rng.normal(10.0, 1.0, (2, 6, 4, 8)).astype(np.float32)
    assert repair_nonfinite(native.copy()) is None                # all finite: untouched
    x = native.copy()
    x[0, 2, 1, 3] = np.nan
    x[0, 2, 1, 5] = np.inf
    x[1, 4, 2, :] = -np.inf                                       # a whole integration
    x[1, 5] = np.nan                                              # a whole panel
    mask = repair_nonfinite(x)
    assert np.isfinite(x).all()
    assert mask.sum() == 2 + 8 + 4 * 8 and mask[0, 2, 1, 3] and mask[1, 5].all()
    row = np.delete(native[0, 2, 1], [3, 5])
    assert x[0, 2, 1, 3] == x[0, 2, 1, 5] == pytest.approx(np.median(row))
    rest = np.delete(native[1, 4], 2, axis=0)                     # the panel's finite samples
    np.testing.assert_allclose(x[1, 4, 2], np.median(rest), rtol=1e-6)
    assert (x[1, 5] == 0).all()
    untouched = ~mask
    np.testing.assert_array_equal(x[untouched], native[untouched])


def test_dc_repair_uses_finite_neighbours_only():
    plan = WindowPlan(64, 16, 0, 16)                              # DC channels 8, 24, 40, 56
    block = np.ones((6, 2, 64), np.float32)
    block[..., 8] = 50.0
    block[0, 0, 7] = np.nan                                      # one neighbour bad
    block[1, 0, 23] = block[1, 0, 25] = np.nan                   # both bad: left for repair
    out = remove_dc(block, 0, plan)
    assert out[0, 0, 8] == 1.0 and np.isnan(out[0, 0, 7])
    assert out[1, 0, 24] == 1.0                                  # kept (not a spike here)
    assert (out[..., 40] == 1.0).all()


def test_nonfinite_counts_add_up_over_overlapping_windows():
    """Per-window counts over each window's own channels sum to the file's count, whatever
    the overlap, and the note names the first bad sample in file order."""
    rng = np.random.default_rng(1)
    plan = WindowPlan(1000, WIDTH, 128, None)                     # starts 0..640 and 744
    starts = plan.starts
    mask = rng.random((6, 16, 1000)) < 0.002
    mask[3] = False                                              # a clean file: no note
    rows = []
    for w, s in enumerate(starts):
        summary = nonfinite_summary(mask[..., s:s + WIDTH], int(s), own_channels(plan, starts, w))
        rows.append({NONFINITE_KEY: summary} if summary else {})
    paths = [f"f{p}.fil" for p in range(6)]
    notes = nonfinite_notes(paths, rows[::-1])                    # any order of rows
    assert len(notes) == 5 and not any(n.startswith("f3.fil") for n in notes)
    for p in (0, 1, 2, 4, 5):
        t, c = np.argwhere(mask[p])[0]
        (note,) = [n for n in notes if n.startswith(f"f{p}.fil")]
        assert f": {mask[p].sum()} non-finite sample(s)" in note
        assert f"the first at integration {t}, channel {c} (from 0):" in note


@pytest.fixture(scope="module")
def blanked_cadence(cadences, tmp_path_factory):
    """The .fil cadence with 10 NaN channels in integration 5 of file 3 (ON, over the first
    needle) and an Inf in integration 0 of file 4 (OFF): ``(paths, out, NaN channels)``."""
    root = tmp_path_factory.mktemp("blanked")
    paths = _copy(cadences["fil"], root / "cad")
    offset, nchans = _fil_payload(paths[2])
    needle = NEEDLES[0]
    t_s = 2 * (16 * DT + SLEW_S) + 5 * DT
    first = int(round(channel_of(needle.freq_mhz + needle.drift_hz_s * t_s / 1e6))) - 5
    data = np.memmap(paths[2], np.float32, "r+", offset=offset, shape=(16, nchans))
    data[5, first:first + 10] = np.nan
    data.flush()
    del data
    offset, _ = _fil_payload(paths[3])       # OFF source names are longer: another header size
    data = np.memmap(paths[3], np.float32, "r+", offset=offset, shape=(16, nchans))
    data[0, 3000] = np.inf
    data.flush()
    del data
    out = str(root / "out")
    return paths, out, range(first, first + 10)


def test_nonfinite_samples_are_replaced_noted_and_flagged(blanked_cadence, capsys):
    paths, out, bad = blanked_cadence
    assert scan_main(["--cadence", ",".join(paths), "--out", out, "--top", "0", "--no-progress"]) == 0
    log = capsys.readouterr().out
    name = os.path.splitext(os.path.basename(paths[0]))[0]
    nan_note = (f"synth_2_ON.fil: 10 non-finite sample(s) (NaN/Inf), the first at integration 5, "
                f"channel {bad[0]} (from 0):")
    inf_note = ("synth_3_OFF.fil: 1 non-finite sample(s) (NaN/Inf), the first at integration 0, "
                "channel 3000 (from 0):")
    assert nan_note in log and inf_note in log
    info = json.load(open(os.path.join(out, name, "cadence.json")))
    blanked = [n for n in info["notes"] if "non-finite" in n]
    assert len(blanked) == 2 and nan_note in blanked[0] and inf_note in blanked[1]
    windows = _windows(out, name)
    # no NaN reaches a score or the table; probability is empty only because there is no model
    assert np.isfinite(windows[list(SCORE_COLUMNS)].to_numpy()).all()
    assert windows.probability.isna().all() and len(windows) == 31
    # exactly the windows holding a bad sample are flagged
    holds = [any(s <= c < s + WIDTH for c in (*bad, 3000)) for s in windows.channel_start]
    assert windows["flags"].str.contains("nonfinite").tolist() == holds and sum(holds) >= 2
    # the needle under the NaN is still found, with its drift and ON/OFF pattern
    true = channel_of(NEEDLES[0].freq_mhz)
    near = windows[(windows.hit_channel - true).abs() <= 3]
    best = near.loc[near.dedoppler.idxmax()]
    assert best.hit and best.pattern == "101010" and "nonfinite" in best["flags"]
    assert best.drift_rate_hz_s == pytest.approx(NEEDLES[0].drift_hz_s, abs=0.02)
    hits = pd.read_csv(os.path.join(out, "hits.csv"))
    assert np.isfinite(hits[list(SCORE_COLUMNS)].to_numpy()).all()


# -- cadence folder names and paths -------------------------------------------------------------

def test_unique_names_never_collide():
    names = unique_names([["a/x.h5"], ["b/x_2.h5"], ["c/x.h5"], ["d/X.fil"], ["e/hits.csv.h5"],
                          ["f/png.h5"], ["g/scan.json.fil"], ["h/index.html.h5"], ["i/.lock.h5"],
                          ["j/y.partial.h5"], ["k/hits.csv_2.h5"], ["l/sensitivity.h5"]])
    assert names[:4] == ["x", "x_2", "x_3", "X_4"]        # X and x are one folder on macOS
    assert len({n.lower() for n in names}) == len(names)
    assert not any(n.lower() in RESERVED_NAMES or n.startswith(".") or n.endswith(".partial")
                   for n in names)
    # a generated name is never another cadence's stem: hits.csv -> not hits.csv_2 (taken)
    assert names[4] == "hits.csv_3" and names[-2] == "hits.csv_2"
    assert names[-1] == "sensitivity_2"   # OUT/sensitivity is a sensitivity run's (scan page)
    assert unique_names([["a/x.h5"], ["c/x.h5"], ["b/x_2.h5"]]) == ["x", "x_3", "x_2"]


def test_a_hash_in_a_path_is_not_a_comment(tmp_path):
    lst = tmp_path / "obs.lst"
    lst.write_text("# a comment\n   # an indented comment\n"
                   + "".join(f"run#2/f{p}.h5\n" for p in range(6)))
    (group,) = read_cadence_list(str(lst))
    assert group == [str(tmp_path / "run#2" / f"f{p}.h5") for p in range(6)]


def _linked_cadence(src: list[str], folder, first: str) -> list[str]:
    """The six files of ``src`` linked into ``folder``, the first one under the name ``first``."""
    os.makedirs(folder)
    names = [first, *(os.path.basename(p) for p in src[1:])]
    for path, name in zip(src, names):
        os.symlink(path, folder / name)
    return [str(folder / n) for n in names]


def test_colliding_reserved_and_hash_names_scan_and_resume(cadences, tmp_path, capsys):
    """x.h5, x_2.h5 and another x.h5 (the old names x, x_2, x_2 never finished), a first file
    named hits.csv.h5 (its folder was OUT/hits.csv) and a folder with '#' in its name."""
    src = cadences["h5"]
    groups = [_linked_cadence(src, tmp_path / "a", "x.h5"),
              _linked_cadence(src, tmp_path / "b", "x_2.h5"),
              _linked_cadence(src, tmp_path / "c#1", "x.h5"),
              _linked_cadence(src, tmp_path / "d", "hits.csv.h5")]
    lst = tmp_path / "obs.lst"
    lst.write_text("".join(f"{p}\n" for g in groups for p in g))
    out = tmp_path / "out"
    args = ["--cadence-list", str(lst), "--out", str(out), "--top", "0", "--no-progress",
            "--overlap", "0", "--max-drift-hz", "0.1"]
    assert scan_main(args) == 0, capsys.readouterr().err
    for name, group in zip(("x", "x_2", "x_3", "hits.csv_2"), groups):
        info = json.load(open(out / name / "cadence.json"))
        assert info["paths"] == group
    assert (out / "hits.csv").is_file()
    hits = pd.read_csv(out / "hits.csv", dtype={"cadence": str})
    assert set(hits.cadence) == {"x", "x_2", "x_3", "hits.csv_2"}
    capsys.readouterr()
    assert scan_main(args) == 0                             # and the list resumes to the end
    assert capsys.readouterr().out.count("skipped") == 4


# -- python -m tfseti.dedoppler: unit flags and empty inputs ------------------------------------

@pytest.fixture(scope="module")
def kaggle_dirs(tmp_path_factory):
    from harness import write_kaggle_dir

    root = tmp_path_factory.mktemp("dedoppler_inputs")
    write_kaggle_dir(root / "some", n_train=2, n_test=2, seed=5)
    write_kaggle_dir(root / "empty", n_train=2, n_test=0, seed=6)
    return {"some": str(root / "some"), "empty": str(root / "empty")}


@pytest.mark.parametrize("flags, message", [
    (["--row-seconds", "0"], "--row-seconds: expected a finite number > 0, got 0.0"),
    (["--row-seconds", "-1"], "--row-seconds: expected a finite number > 0, got -1.0"),
    (["--channel-hz", "0"], "--channel-hz: expected a finite number > 0, got 0.0"),
    (["--channel-hz", "inf"], "--channel-hz: expected a finite number > 0, got inf"),
    (["--pattern-snr", "nan"], "--pattern-snr: expected a finite number, got nan"),
])
def test_dedoppler_refuses_bad_units_in_one_line(kaggle_dirs, tmp_path, capsys, flags, message):
    from tfseti.dedoppler.__main__ import main

    out = tmp_path / "s.csv"
    assert main([kaggle_dirs["some"], "--out", str(out), "--no-progress", *flags]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {message}\n"
    assert not out.exists()


def test_dedoppler_header_only_input_is_one_line(kaggle_dirs, tmp_path, capsys):
    from tfseti.dedoppler.__main__ import main

    sample = os.path.join(kaggle_dirs["empty"], "sample_submission.csv")
    assert open(sample).read().strip() == "id,target"             # header only
    out = tmp_path / "s.csv"
    assert main([kaggle_dirs["empty"], "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and kaggle_dirs["empty"] in err
    assert not out.exists()


def test_dedoppler_source_with_no_cadences_is_one_line(monkeypatch, tmp_path, capsys):
    """Any source that yields no cadence (the Kaggle reader refuses a header-only csv itself):
    the empty table had no score column (KeyError: 'two_of_three')."""
    import types

    import tfseti.predict.test_data as test_data
    from tfseti.dedoppler.__main__ import main

    empty = types.SimpleNamespace(description="0 records in shards/", expected_ids=None,
                                  expected_count=None, batches=lambda size: iter(()))
    monkeypatch.setattr(test_data, "open_test_data", lambda data, split: empty)
    out = tmp_path / "s.csv"
    assert main(["shards/", "--out", str(out), "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert captured.err == "error: shards/: no test cadences to score (0 records in shards/)\n"
    assert not out.exists()


@pytest.mark.parametrize("flags, message", [
    (["--pattern-snr", "nan"], "--pattern-snr: expected a finite number, got nan"),
    (["--min-dedoppler", "nan"], "--min-dedoppler: expected a finite number, got nan"),
    (["--read-mb", "inf"], "--read-mb: expected a finite number > 0, got inf"),
])
def test_scan_refuses_non_finite_thresholds(tmp_path, capsys, flags, message):
    """A NaN threshold compared False with everything: no hit and no pattern, exit 0."""
    out = tmp_path / "out"
    assert scan_main(["--cadence", "a.h5", "--out", str(out), *flags]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not out.exists()
