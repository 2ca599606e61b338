"""The per-file search of ``python -m tfseti.scan`` (``tfseti.scan.filehits``): each file's ``.dat`` is
that file searched alone (turboSETI's ``find_doppler``), so a needle that starts again at the same
frequency in every ON file -- on no straight line through the cadence -- is a hit of each ON file and
of no OFF file; its events follow turboSETI's ``find_event_pipeline``."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from scan_helpers import DF_HZ, FCH1, channel_of

from tfseti.dedoppler.events import find_event_pipeline, read_dat as read_event_dat, read_events_csv
from tfseti.dedoppler.hitsearch import search_coarse_channel
from tfseti.io.observations import open_observation
from tfseti.scan.__main__ import main
from tfseti.dedoppler.dat import read_dat
from tfseti.synth.observation import ObservationNeedle, ObservationRFI, write_observation_cadence

FILE_STEP_S = 16 * 18.253611008 + 30.0        # start to start of consecutive files (setigen's clock)
FINE_PER_COARSE = 512                         # two coarse channels of the 1024-channel band
RESTART_CHANNEL = 300                         # the needle's channel at the start of every ON file
DRIFT = 0.15                                  # Hz/s
RFI_CHANNEL = 700


def _freq(channel: float) -> float:
    return FCH1 - channel * DF_HZ / 1e6


@pytest.fixture(scope="module")
def restart_scan(tmp_path_factory):
    root = tmp_path_factory.mktemp("restart")
    # One needle per ON file, each starting at the same frequency at its file's start: a
    # straight path through the cadence would be 35 channels off it in the next ON file.
    needles = tuple(ObservationNeedle(_freq(RESTART_CHANNEL) - DRIFT * p * FILE_STEP_S / 1e6, DRIFT, 40.0,
                                      panels=(p,)) for p in (0, 2, 4))
    paths = write_observation_cadence(str(root / "cad"), fchans=1024, tchans=16, fch1_mhz=FCH1,
                                      needles=needles, rfi=(ObservationRFI(_freq(RFI_CHANNEL), 0.0, 60.0),),
                                      noise="chi2", fmt="h5", seed=5)
    out = str(root / "out")
    assert main(["--cadence", ",".join(paths), "--out", out, "--top", "0", "--no-progress",
                 "--fine-per-coarse", str(FINE_PER_COARSE)]) == 0
    return paths, out, os.path.join(out, "synth_0_ON")


def test_a_needle_that_restarts_is_a_hit_of_every_on_file_and_no_off_file(restart_scan):
    paths, _, folder = restart_scan
    for p, path in enumerate(paths):
        stem = os.path.splitext(os.path.basename(path))[0]
        _, hits = read_dat(os.path.join(folder, f"{stem}.dat"))
        channels = [h["coarse"] * FINE_PER_COARSE + h["index"] for h in hits]
        near = [h for h, c in zip(hits, channels) if abs(c - RESTART_CHANNEL) <= 40]
        if p % 2:
            assert near == [], (p, channels)
        else:
            assert len(near) == 1, (p, channels)
            (hit,) = near
            assert hit["coarse"] == 0 and abs(hit["index"] - RESTART_CHANNEL) <= 2
            assert hit["drift"] == pytest.approx(DRIFT, abs=0.02) and hit["snr"] > 25
        # the RFI line (coarse channel 1) is a hit of every file, ON and OFF
        assert [c for c in channels if abs(c - RFI_CHANNEL) <= 3] != [], (p, channels)
        # Index counts from the coarse channel's first channel: the file channel is coarse x 512 + Index
        assert all(abs(channel_of(h["freq"]) - c) < 0.5 for h, c in zip(hits, channels))


def test_dat_rows_are_the_file_searched_alone(restart_scan):
    """The .dat of ON file 2 is tfseti.dedoppler.hitsearch (turboSETI's search) on that file's
    coarse channels, DC channel blanked: the scan wires the search, it does not re-implement it."""
    paths, _, folder = restart_scan
    observation = open_observation(paths[2])
    try:
        expected = []
        for coarse in range(2):
            lo = coarse * FINE_PER_COARSE
            expected += search_coarse_channel(observation.read(lo, lo + FINE_PER_COARSE),
                                              fch1_mhz=observation.fch1 + lo * observation.foff,
                                              foff_mhz=observation.foff, tsamp_s=observation.tsamp,
                                              max_drift=0.52, snr=10.0, coarse_channel=coarse)
    finally:
        observation.close()
    _, hits = read_dat(os.path.join(folder, "synth_2_ON.dat"))
    assert [(h["coarse"], h["index"], h["total"]) for h in hits] == [
        (e.coarse_channel, e.index, e.n_hits) for e in expected]
    np.testing.assert_allclose([h["snr"] for h in hits], [e.snr for e in expected], atol=1e-6)
    np.testing.assert_allclose([h["drift"] for h in hits], [e.drift_rate for e in expected], atol=1e-6)


def test_events_of_a_restarting_needle(restart_scan):
    """Level 3 (the default) follows a hit of ON 1 along its drift into ON 2 and ON 3: a needle that
    restarts is not there (turboSETI's semantics), so no event; level 2 keeps its three ON hits
    (no OFF file has a hit near them) and drops the RFI (in every OFF file)."""
    paths, out, folder = restart_scan
    assert read_events_csv(os.path.join(folder, "events.csv")) == []
    assert read_events_csv(os.path.join(out, "events.csv")) == []
    dats = [os.path.join(folder, os.path.splitext(os.path.basename(p))[0] + ".dat") for p in paths]
    level2 = find_event_pipeline([read_event_dat(d) for d in dats], filter_threshold=2)
    assert sorted(r["FileID"] for r in level2) == sorted(os.path.basename(paths[p]) for p in (0, 2, 4))
    assert all(abs(r["CoarseChanNum"] * FINE_PER_COARSE + r["ChanIndx"] - RESTART_CHANNEL) <= 2
               for r in level2)
    per_file = pd.read_csv(os.path.join(folder, "hits_per_file.csv"))
    assert per_file.probability.isna().all()                      # no model
    assert set(per_file.columns) >= {"file", "top_hit", "window", "probability", "dedoppler"}


def test_event_filter_and_hit_snr_flags(restart_scan, tmp_path, capsys):
    paths, _, _ = restart_scan
    out = str(tmp_path / "f2")
    assert main(["--cadence", ",".join(paths), "--out", out, "--top", "0", "--no-progress",
                 "--fine-per-coarse", str(FINE_PER_COARSE), "--event-filter", "2",
                 "--hit-snr", "100"]) == 0
    folder = os.path.join(out, "synth_0_ON")
    assert all(read_dat(os.path.join(folder, n))[1] == [] for n in os.listdir(folder) if n.endswith(".dat"))
    assert read_events_csv(os.path.join(out, "events.csv")) == []
    capsys.readouterr()
    for argv, message in ((["--hit-snr", "nan"], "--hit-snr"), (["--hit-snr", "0"], "--hit-snr")):
        assert main(["--cadence", ",".join(paths), "--out", str(tmp_path / "x"), *argv]) == 2
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--cadence", ",".join(paths), "--out", str(tmp_path / "x"), "--event-filter", "4"])
