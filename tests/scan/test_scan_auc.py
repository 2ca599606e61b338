"""benchmarks/scan_auc.py: window labels from the truth, and a tiny end-to-end run."""

from __future__ import annotations

import json
import os

import numpy as np
from scan_helpers import shared_oracle

from benchmarks import scan_auc


def _bench():
    return scan_auc


def test_windows_are_labelled_by_the_window_that_owns_a_whole_track():
    bench = _bench()
    truth = {"file_start_s": [0.0, 100.0, 200.0, 300.0, 400.0, 500.0], "tchans": 10, "tsamp_s": 10.0,
             "foff_mhz": -1e-6,
             # a needle drifting 0.1 channel/s: channel 300 at 0 s to 360 at the end (600 s), 2 Hz wide
             "needles": [{"channel_per_file": [300.0, 310.0, 320.0, 330.0, 340.0, 350.0], "width_hz": 2.0}],
             "rfi": [{"channel_per_file": [1100.0] * 6, "width_hz": 4.0}]}
    assert bench.track_extent(truth["needles"][0], truth) == (298.0, 362.0)
    assert bench.reference_channel(truth["needles"][0], truth) == 324.5      # middle of file 3
    starts = np.arange(0, 1536, 128)
    labels = bench.label_windows(starts, truth)
    expected = np.full(len(starts), -1)
    expected[2] = 1       # [256, 512) holds 298..362 and owns 324.5 ([256, 384) are its own channels)
    expected[1] = 2       # [128, 384) holds the whole track too, but the next window owns it
    expected[8] = 0       # [1024, 1280) holds the RFI's 1096..1104 and owns 1100
    expected[7] = 2
    np.testing.assert_array_equal(labels, expected)
    truth["needles"][0]["channel_per_file"] = [230.0, 240.0, 250.0, 260.0, 270.0, 280.0]  # 228..292
    labels = bench.label_windows(starts, truth)
    # [128, 384) holds it whole but 254.5 is owned by [128, 256)'s window: that is window 1
    assert labels[1] == 1 and labels[0] == 2 and labels[2] == 2


def test_tiny_run_prints_aucs(tmp_path_factory, worker_id, tmp_path, capsys):
    oracle = shared_oracle(tmp_path_factory, worker_id)
    bench = _bench()
    code = bench.main(["--model", oracle, "--out", str(tmp_path), "--fchans", "16384", "--needles", "4",
                       "--rfi", "3", "--snr", "30:60", "--boot", "20", "--scan-args", "--overlap 128"])
    assert code == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["windows"]["needle"] >= 4 and summary["windows"]["empty"] > 20
    aucs = {(r["score"], r["negatives"]): r for r in summary["auc"]}
    assert set(aucs) == {(s, n) for s in ("probability", "dedoppler") for n in ("empty + RFI", "RFI only")}
    # strong needles: both the oracle (the classical score on the snippet) and the search are perfect
    assert all(r["auc"] == 1.0 and r["low"] <= r["auc"] <= r["high"] for r in aucs.values())
    assert "probability  | empty + RFI  | 1.0000" in capsys.readouterr().out
