"""``python -m tfseti.scan`` end to end on a setigen-made cadence: the planted needles are found
where they are, the interference is not among the hits, each .dat holds its own file's hits (the
needles in the ON files, the RFI everywhere), the events are the drifting needles, the Beam DirectRunner writes the same as the local runner, scans resume, and a
trained run folder scores windows."""

from __future__ import annotations

import filecmp
import os
import tempfile

import numpy as np
import pandas as pd
import pytest
from scan_helpers import DF_HZ, FCH1, NEEDLES, RFI, channel_of, shared_cadences, shared_oracle

from tfseti.scan.__main__ import main
from tfseti.dedoppler.dat import read_dat

WIDTH = 256


@pytest.fixture(scope="module")
def cadences(tmp_path_factory, worker_id):
    return shared_cadences(tmp_path_factory, worker_id)


@pytest.fixture(scope="module")
def oracle(tmp_path_factory, worker_id):
    return shared_oracle(tmp_path_factory, worker_id)


@pytest.fixture(scope="module")
def local_scan(cadences, oracle, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("scan") / "local")
    assert main(["--cadence", ",".join(cadences["h5"]), "--model", oracle, "--out", out,
                 "--top", "6", "--no-progress"]) == 0
    return out


def _folder(out: str) -> str:
    (name,) = [n for n in os.listdir(out) if os.path.isdir(os.path.join(out, n)) and n != "png"]
    return os.path.join(out, name)


def _table(path: str) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"pattern": str, "flags": str})


def test_every_needle_is_a_hit_where_it_is(local_scan):
    hits = _table(os.path.join(local_scan, "hits.csv"))
    for needle in NEEDLES:
        true = channel_of(needle.freq_mhz)
        near = hits[(hits.hit_channel - true).abs() <= WIDTH]       # the bar: one window
        assert len(near), f"needle at {needle.freq_mhz} MHz (channel {true:.0f}) not in the hits"
        best = near.loc[near.dedoppler.idxmax()]
        # ... and in fact the classical path is on it: channel and drift
        assert abs(best.hit_channel - true) <= 2.5, (needle, best.hit_channel, true)
        assert best.drift_rate_hz_s == pytest.approx(needle.drift_hz_s, abs=0.02)
        assert best.pattern[0::2] == "111" and best.pattern[1::2] == "000"
        assert best.probability > 0.5 and best.dedoppler >= 6
        assert best.snr > 10


def test_table_frequencies_keep_sub_channel_precision(local_scan):
    windows = _table(os.path.join(_folder(local_scan), "windows.csv"))
    foff = -DF_HZ * 1e-6
    # to a tenth of a hertz: the path's frequency is its channel's, the window's its first channel's
    np.testing.assert_allclose(windows.hit_freq_mhz, FCH1 + windows.hit_channel * foff, rtol=0, atol=1e-7)
    np.testing.assert_allclose(windows.freq_start_mhz, FCH1 + windows.channel_start * foff, rtol=0, atol=1e-7)


def test_interference_is_not_among_the_hits(local_scan):
    hits = _table(os.path.join(local_scan, "hits.csv"))
    windows = _table(os.path.join(_folder(local_scan), "windows.csv"))
    for rfi in RFI:
        ch = channel_of(rfi.freq_mhz)
        assert not ((hits.hit_channel - ch).abs() <= 3).any(), rfi
        # the RFI's own windows are searched and score low
        holding = windows[(windows.channel_start <= ch) & (windows.channel_start + WIDTH > ch)]
        assert len(holding) >= 1 and (holding.dedoppler < 6).all()
    # every hit is a planted needle: the top hits are all needles
    needles = np.array([channel_of(n.freq_mhz) for n in NEEDLES])
    assert all(np.abs(needles - c).min() <= WIDTH for c in hits.hit_channel)
    assert len(windows) == 31 and windows.window.tolist() == list(range(31))    # 4096, overlap 128


def _file_channel(signal, p: int) -> float:
    """A signal's channel at the start of file ``p`` (setigen's cadence clock)."""
    return channel_of(signal.freq_mhz + signal.drift_hz_s * p * (16 * 18.253611008 + 30.0) / 1e6)


def test_dat_files_hold_each_files_own_hits(local_scan, cadences):
    """Each .dat is its file searched alone (turboSETI's find_doppler): the needles in the ON files,
    the RFI in all six (until issue 27 the .dat rows were the hit windows' cadence paths, so OFF
    files held nothing and RFI was in no .dat)."""
    folder = _folder(local_scan)
    for p, path in enumerate(cadences["h5"]):
        stem = os.path.splitext(os.path.basename(path))[0]
        header, hits = read_dat(os.path.join(folder, f"{stem}.dat"))
        assert header["file_id"] == os.path.basename(path)
        assert header["source"] == ("SYNTH_ON" if p % 2 == 0 else f"SYNTH_OFF{p // 2 + 1}")
        assert header["obs_length"] == pytest.approx(16 * 18.253611008, abs=1e-5)
        assert header["max_drift_rate"] == pytest.approx(0.52)
        signals = [*RFI, *(NEEDLES if p % 2 == 0 else ())]
        # each signal at its frequency at the start of this file (setigen's truth), once
        for signal in signals:
            true = _file_channel(signal, p)
            near = [h for h in hits if abs(h["index"] - true) <= 3]
            assert len(near) == 1, (p, signal, [h["index"] for h in hits])
            # within 2.5 steps of the search's drift resolution (0.0102 Hz/s: one channel over 16
            # integrations); the 20 Hz wide RFI is found up to two steps off its 0 Hz/s
            assert near[0]["drift"] == pytest.approx(signal.drift_hz_s, abs=0.0255)
            assert near[0]["snr"] >= 10
        assert len(hits) == len(signals), (p, [h["index"] for h in hits])  # no noise above SNR 10
        assert all(h["total"] == hits[0]["total"] for h in hits)     # turboSETI's count per coarse channel


def test_events_are_the_drifting_needles(local_scan):
    """find_event_pipeline level 3 on the six .dat files: the drifting needles are events, the RFI
    (in the OFF files too) is not; the zero-drift needle is found at the smallest rate (turboSETI
    does not search 0) and turboSETI's follow window then misses it in the later ONs (kept)."""
    from tfseti.dedoppler.events import events, read_events_csv

    folder = _folder(local_scan)
    rows = read_events_csv(os.path.join(folder, "events.csv"))
    assert open(os.path.join(local_scan, "events.csv")).read() == open(os.path.join(folder, "events.csv")).read()
    found = events(rows)
    drifting = [n for n in NEEDLES if n.drift_hz_s != 0]
    assert len(found) == len(drifting)
    for needle in drifting:
        true = channel_of(needle.freq_mhz)
        assert any(abs(int(r["ChanIndx"]) - true) <= 3 and r["status"] == "on_table_1" for r in rows), needle
    for rfi in RFI:
        assert not any(abs(int(r["ChanIndx"]) - _file_channel(rfi, 0)) <= 5 for r in rows)
    # every .dat hit, with the window it is most central in and that window's probability
    per_file = pd.read_csv(os.path.join(folder, "hits_per_file.csv"))
    assert len(per_file) == sum(len(read_dat(os.path.join(folder, n))[1])
                                for n in os.listdir(folder) if n.endswith(".dat"))
    windows = _table(os.path.join(folder, "windows.csv")).set_index("window")
    assert (per_file.probability.to_numpy() == windows.probability[per_file.window].to_numpy()).all()
    for needle in drifting:
        row = per_file[(per_file.file_index == 0) & ((per_file.channel - channel_of(needle.freq_mhz)).abs() <= 3)]
        assert len(row) == 1 and row.probability.iloc[0] > 0.5 and row.window_hit.iloc[0]


def test_page_shows_the_top_candidates(local_scan):
    html = open(os.path.join(local_scan, "index.html")).read()
    pngs = sorted(os.listdir(os.path.join(local_scan, "png")))
    assert 4 <= len(pngs) <= 6 and all(f'src="png/{p}"' in html for p in pngs)
    assert "Top" in html and "de-Doppler" in html


def test_fil_and_h5_scan_alike_and_beam_equals_local(local_scan, cadences, oracle, tmp_path):
    out = str(tmp_path / "beam")
    assert main(["--cadence", ",".join(cadences["fil"]), "--model", oracle, "--out", out, "--top", "0",
                 "--runner", "DirectRunner", "--no-progress"]) == 0
    ours, theirs = _folder(local_scan), _folder(out)
    local = _table(os.path.join(ours, "windows.csv"))
    beam = _table(os.path.join(theirs, "windows.csv"))
    # same data in .h5 and .fil; the cadence name and the windows' rows agree
    pd.testing.assert_frame_equal(local.drop(columns="cadence"), beam.drop(columns="cadence"))
    for name in sorted(os.listdir(ours)):
        if name.endswith(".dat"):
            a, b = (open(os.path.join(d, name)).read().replace(".h5", "").replace(".fil", "")
                    for d in (ours, theirs))
            assert a == b, name


def test_beam_and_local_runner_write_identical_files(cadences, tmp_path, monkeypatch):
    # Beam stages each pipeline into a temporary folder it never removes; the scan removes it.
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    # four coarse channels (Beam searches each file's coarse channels as separate elements) and
    # several read groups (each group's band search reads its halo from its neighbours' channels)
    args = ["--cadence", ",".join(cadences["h5"]), "--top", "0", "--no-progress", "--batch-size", "5",
            "--fine-per-coarse", "1024", "--read-mb", "0.5"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b"), "--runner", "DirectRunner",
                 "--direct_num_workers", "1"]) == 0
    assert os.listdir(temporary) == [] and tempfile.gettempdir() == str(temporary)
    a, b = _folder(str(tmp_path / "a")), _folder(str(tmp_path / "b"))
    names = sorted(n for n in os.listdir(a) if n != "cadence.json")
    assert names == sorted(n for n in os.listdir(b) if n != "cadence.json") and len(names) == 10
    match, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    assert mismatch == [] and errors == []
    for name in ("hits.csv", "events.csv"):
        assert filecmp.cmp(str(tmp_path / "a" / name), str(tmp_path / "b" / name), shallow=False)
    # and the read groups change nothing: one group for the whole band gives the same tables
    assert main([*args[:-2], "--out", str(tmp_path / "c")]) == 0
    c = _folder(str(tmp_path / "c"))
    for name in ("windows.csv", "hits.csv", "events.csv"):
        assert filecmp.cmp(os.path.join(a, name), os.path.join(c, name), shallow=False), name
    # resumable per cadence on Beam too: a complete cadence is not scanned again
    stamp = os.path.getmtime(os.path.join(b, "windows.csv"))
    assert main([*args, "--out", str(tmp_path / "b"), "--runner", "DirectRunner"]) == 0
    assert os.path.getmtime(os.path.join(b, "windows.csv")) == stamp


def test_a_scan_resumes_and_refuses_mixing(cadences, tmp_path, capsys):
    out = str(tmp_path / "r")
    args = ["--cadence", ",".join(cadences["h5"]), "--top", "0", "--no-progress", "--out", out]
    assert main(args) == 0
    folder = _folder(out)
    stamp = os.path.getmtime(os.path.join(folder, "windows.csv"))
    capsys.readouterr()
    assert main(args) == 0
    assert "skipped" in capsys.readouterr().out
    assert os.path.getmtime(os.path.join(folder, "windows.csv")) == stamp
    assert main([*args, "--overlap", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "holds a scan of cadence" in err and folder in err
    assert not any(n.endswith(".partial") for n in os.listdir(out))


def test_cli_errors(cadences, tmp_path, capsys):
    good = cadences["h5"]
    cases = [
        (["--cadence", ",".join(good[:5])], "expected 6 files"),
        (["--cadence", ",".join([good[1], good[0], *good[2:]])], "header field 'source_name'"),
        (["--cadence", ",".join(good), "--direct_num_workers", "2"], "need --runner"),
        (["--cadence", ",".join(good), "--model", str(tmp_path / "none")], "no such SavedModel"),
        (["--cadence", ",".join(good), "--max-drift-hz", "9"], "at most 4"),
    ]
    for argv, message in cases:
        assert main([*argv, "--out", str(tmp_path / "x")]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, (argv, err)
    with pytest.raises(SystemExit) as exit_info:          # argparse's own checks
        main(["--cadence", ",".join(good), "--out", str(tmp_path / "x"), "--width", "0"])
    assert exit_info.value.code == 2
    assert "argument --width: expected an integer >= 1, got 0" in capsys.readouterr().err


@pytest.mark.slow
def test_a_trained_run_scores_the_windows(cadences, tmp_path_factory, worker_id, tmp_path):
    """The trainer's run folder (two folds, flip TTA): every window gets a probability."""
    from report.report_helpers import shared_tiny_run

    run = shared_tiny_run(tmp_path_factory, worker_id)["run"]
    out = str(tmp_path / "run")
    assert main(["--cadence", ",".join(cadences["fil"]), "--model", run, "--tta", "flips",
                 "--out", out, "--top", "2", "--no-progress", "--batch-size", "8"]) == 0
    windows = _table(os.path.join(_folder(out), "windows.csv"))
    assert len(windows) == 31 and windows.probability.between(0, 1).all()
    assert windows.probability.nunique() > 1
    import json

    doc = json.load(open(os.path.join(out, "scan.json")))
    assert len(doc["models"]) == 2 and doc["model_input"] == [6, 273, 256]


def test_each_needle_is_one_candidate(local_scan):
    """Overlapping windows see a needle twice (the model scores every window); the scan reports it
    once: one row of hits.csv per needle, and its windows in windows.csv name that row."""
    hits = _table(os.path.join(local_scan, "hits.csv"))
    windows = _table(os.path.join(_folder(local_scan), "windows.csv"))
    needles = np.array([channel_of(n.freq_mhz) for n in NEEDLES])
    nearest = [int(np.abs(needles - c).argmin()) for c in hits.hit_channel]
    assert sorted(nearest) == list(range(len(NEEDLES))), hits[["window", "hit_channel", "dedoppler"]]
    assert (windows.hit > windows.probability.isna()).sum() >= len(NEEDLES)
    assert set(windows.candidate[windows.hit]) == set(hits.window)
    assert (windows.candidate[~windows.hit] == -1).all()
    # the model sees the needles in more windows than there are candidates
    assert windows.hit.sum() > len(hits)


def test_side_by_side_searches_equal_one_after_the_other(cadences, tmp_path, capsys, monkeypatch):
    # The window stage and the per-file search run in two threads; run one after the other they
    # must write the same files.
    import tfseti.scan.run as run

    args = ["--cadence", ",".join(cadences["h5"]), "--top", "0", "--no-progress", "--read-mb", "0.5",
            "--fine-per-coarse", "1024"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert "side by side" in capsys.readouterr().out       # the threads were used
    monkeypatch.setattr(run, "concurrent_ok", lambda: False)
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    assert "side by side" not in capsys.readouterr().out
    a, b = _folder(str(tmp_path / "a")), _folder(str(tmp_path / "b"))
    names = sorted(n for n in os.listdir(a) if n != "cadence.json")
    assert len(names) == 10
    match, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    assert mismatch == [] and errors == []


def test_a_failing_window_stage_stops_the_per_file_search(cadences, tmp_path, capsys, monkeypatch):
    # One clear error, nothing complete written, and the per-file thread stops before its next
    # file instead of searching the cadence to the end for nothing.
    import threading

    import tfseti.scan.filehits as filehits
    import tfseti.scan.run as run

    searched = []
    started = threading.Event()
    real = filehits.search_cadence_file

    def slow_search(cadence, index, *a, **k):
        searched.append(index)
        started.set()
        threading.Event().wait(0.3)     # the window stage fails while file 0 is searched
        return real(cadence, index, *a, **k)

    def failing_stage(*a, **k):
        started.wait(10)
        raise ValueError("window stage broke")

    monkeypatch.setattr(filehits, "search_cadence_file", slow_search)
    monkeypatch.setattr(run, "scan_cadence", failing_stage)
    out = tmp_path / "x"
    assert main(["--cadence", ",".join(cadences["h5"]), "--top", "0", "--no-progress",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "window stage broke" in err and err.count("\n") == 1
    assert searched == [0]
    assert not any(t.name.startswith("per-file-search") for t in threading.enumerate())
    assert not any(os.path.isfile(os.path.join(out, n, "cadence.json")) for n in os.listdir(out)
                   if os.path.isdir(os.path.join(out, n)))


def test_worker_processes_write_the_same_files(cadences, tmp_path, capsys):
    # --workers 2: read groups and coarse channels on two processes, put back in order
    args = ["--cadence", ",".join(cadences["h5"]), "--top", "0", "--no-progress", "--read-mb", "0.5",
            "--fine-per-coarse", "1024", "--batch-size", "5"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    assert main([*args, "--out", str(tmp_path / "two"), "--workers", "2"]) == 0
    assert "2 worker processes" in capsys.readouterr().out
    a, b = _folder(str(tmp_path / "one")), _folder(str(tmp_path / "two"))
    names = sorted(n for n in os.listdir(a) if n != "cadence.json")
    assert len(names) == 10
    match, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    assert mismatch == [] and errors == []
    # the number of workers is not part of the scan: a rerun with another resumes
    assert main([*args, "--out", str(tmp_path / "two")]) == 0
    assert "skipped" in capsys.readouterr().out
    bad = str(tmp_path / "bad")
    with pytest.raises(SystemExit):                     # argparse: an integer >= 1
        main([*args, "--out", bad, "--workers", "0"])
    assert "--workers" in capsys.readouterr().err
    assert main([*args, "--out", bad, "--workers", "2", "--runner", "DirectRunner"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "local runner" in err
    assert not os.path.exists(os.path.join(bad, "scan.json"))
