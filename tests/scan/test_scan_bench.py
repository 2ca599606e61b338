"""benchmarks/scan_bench.py end to end at toy size, without turboSETI: the cadence written with its
needles where planned, the scan run through its command line, its log parsed and its hits
checked against truth.json."""

import json
import os

import numpy as np
import pytest

from benchmarks import scan_bench as bench


def test_scan_bench_tiny_cadence_finds_every_needle(tmp_path, capsys):
    out = tmp_path / "bench"
    assert bench.main(["--out", str(out), "--fchans", "2048", "--needles", "3", "--seed", "3",
                       "--no-turboseti", "--scan-args", "--top 0"]) == 0
    printed = capsys.readouterr().out
    assert "tfseti.scan (classical)" in printed and "3 / 3" in printed
    summary = json.loads((out / "summary.json").read_text())

    truth = json.loads((out / "data" / "truth.json").read_text())
    assert truth["nchans"] == 2048 and truth["tchans"] == 16 and truth["format"] == "h5"
    assert len(truth["needles"]) == 3 and len(truth["rfi"]) == 2
    for needle in truth["needles"]:
        assert 25 <= needle["snr"] <= 60 and 0.05 <= abs(needle["drift_hz_s"]) <= 0.25
        assert needle["files"] == [0, 2, 4]
        assert all(0 <= c < 2048 for c in needle["channel_per_file"])
    assert [r["drift_hz_s"] for r in truth["rfi"]] == [0.0, -0.05]
    assert all(r["files"] == list(range(6)) for r in truth["rfi"])
    assert summary["data"]["bytes"] == 6 * 2048 * 16 * 4
    assert summary["data"]["reused"] is False

    # no turboSETI: the scan's two searches alone, no ratio, no turboSETI events
    [row, files, whole] = summary["rows"]
    assert summary["ratio_mb_per_s_scan_over_turboseti"] is None
    assert summary["ratio_mb_per_s_whole_scan_over_turboseti"] is None
    # the whole scan: both searches side by side, no longer than the two one after the other
    assert whole["tool"].startswith("tfseti.scan, both searches") and whole["found"] == files["found"]
    assert 0 < whole["seconds"] <= row["seconds"] + files["seconds"] + 0.02
    assert whole["mb_per_s"] == pytest.approx(row["input_bytes"] / 1e6 / whole["seconds"])
    assert whole["cpu_s"] > 0 and whole["kernels_s"] >= 0
    assert row["tool"] == "tfseti.scan (classical)" and row.get("events") is None
    # the per-file search: every needle in the ON files' .dat, the RFI in all six, the scan's own
    # level-3 events the needles
    # (the kernels are loaded before the timings: on 2048 channels the search takes milliseconds)
    assert files["tool"] == "tfseti.scan per-file search (.dat)" and files["seconds"] >= 0
    assert files["found"] == [0, 1, 2] and files["rfi_hits"] >= 6
    assert files["event_needles"] == [0, 1, 2] and files["false_events"] == 0
    # 2048 channels in windows of 256 overlapping by 128: 15 windows
    assert row["windows"] == 15 and row["width"] == 256 and row["input_bytes"] == 6 * 2048 * 16 * 4
    assert row["seconds"] > 0 and row["peak_rss_mb"] > 50 and row["wall_s"] > row["seconds"]
    assert row["windows_per_s"] == pytest.approx(15 / row["seconds"], rel=0.01)
    assert row["mb_per_s"] == pytest.approx(row["input_bytes"] / 1e6 / row["seconds"])
    assert row["found"] == [0, 1, 2]
    assert row["rfi_hits"] == 0      # RFI is in the OFF files too: the classical score rejects it
    assert row["hits"] >= 3
    assert "--top 0" in row["command"] and "--max-drift-hz 0.52" in row["command"]
    assert len(row["dat_files"]) == 6 and all(os.path.isfile(p) for p in row["dat_files"])

    # the found needles, recomputed from the scan's own hits.csv
    from tfseti.scan.outputs import read_table

    hits = read_table(os.path.join(row["folder"], "hits.csv"))
    chans = (truth["fch1_mhz"] - hits["hit_freq_mhz"].to_numpy()) / abs(truth["foff_mhz"])
    for needle in truth["needles"]:
        assert np.min(np.abs(chans - needle["channel_per_file"][0])) <= 256

    # a second run reuses the data it wrote (same settings)
    assert bench.main(["--out", str(out), "--fchans", "2048", "--needles", "3", "--seed", "3",
                       "--no-turboseti", "--scan-args", "--top 0"]) == 0
    assert json.loads((out / "summary.json").read_text())["data"]["reused"] is True


def test_truth_matching_of_hits_and_events():
    truth = {"fch1_mhz": 6000.0, "foff_mhz": -1e-6, "files": ["a_0_ON.h5", "a_1_OFF.h5"],
             "needles": [{"files": [0, 2, 4], "channel_per_file": [100.0, 130.0]},
                         {"files": [0, 2, 4], "channel_per_file": [5000.0, 5000.0]}],
             "rfi": [{"channel_per_file": [2000.0, 2000.0]}]}
    freq = lambda c: 6000.0 - c * 1e-6  # noqa: E731
    hits = [{"hit_freq_mhz": freq(350.0)}, {"hit_freq_mhz": freq(2004.0)}, {"hit_freq_mhz": freq(2006.0)}]
    got = bench.scan_truth(hits, truth, width=256)
    assert got == {"found": [0], "rfi_hits": 1, "hits": 3}
    assert bench.scan_truth(hits, truth, width=200)["found"] == []
    # a row in file 1 (an OFF file) never finds a needle; Hit_ID groups rows into events
    events = {"rows": [{"FileID": "a_0_ON.h5", "Freq": freq(101.0), "Hit_ID": "A_0"},
                       {"FileID": "a_1_OFF.h5", "Freq": freq(130.0), "Hit_ID": "A_1"},
                       {"FileID": "a_0_ON.h5", "Freq": freq(4990.0), "Hit_ID": "A_2"}]}
    got = bench.event_truth(events, truth, width=16)
    assert (got["events"], got["event_needles"], got["false_events"]) == (3, [0, 1], 1)
    assert bench.n_coarse_chan(2 ** 21) == 2 and bench.n_coarse_chan(2 ** 19) == 1
