"""``tfseti.synth.observation`` writes BL-style cadences whose files say what truth.json says.

Every check reads the files back with blimpy (as a search over real observations would) and
compares with an independent computation from the headers: where a signal is, row by row, and
how bright (setigen's Gaussian profile and SNR), in both writers and both formats.
"""

from __future__ import annotations

import json
import math
import os

import blimpy
import numpy as np
import pytest
from blimpy.io import sigproc

from tfseti.synth.observation import (LIST_FILE, TRUTH_FILE, CadenceLayout, ObservationNeedle, ObservationRFI,
                                      main, write_large_cadence, write_observation_cadence)

DF_HZ = 2.7939677238464355
FCH1 = 6000.0
FCHANS, TCHANS = 1024, 16
OFFS = ("OFF_A", "OFF_B", "OFF_C")


def _freq(channel: float) -> float:
    return FCH1 - channel * DF_HZ * 1e-6


# Channels at the start of file 0; over the 1932 s of the cadence, -0.3 Hz/s moves 207 channels up.
NEEDLES = (ObservationNeedle(_freq(200.3), -0.3, 40.0),
           ObservationNeedle(_freq(700.0), 0.25, 50.0, width_hz=12.0),
           ObservationNeedle(_freq(480.6), 0.0, 40.0, panels=(0, 4)),  # missing from ON file 2
           ObservationNeedle(_freq(20.0), -0.1, 40.0, panels=(5, 1, 3)))  # in the OFF files only
RFI = (ObservationRFI(_freq(850.0), 0.0, snr=60.0), ObservationRFI(_freq(950.2), 0.05, snr=60.0, width_hz=25.0))


def _read(path):
    wf = blimpy.Waterfall(path)
    assert wf.data.dtype == np.float32 and wf.data.shape == (TCHANS, 1, FCHANS)
    return wf.header, wf.data[:, 0, :].astype(np.float64)


def _template(header, tstart0: float, signal: dict, file: int) -> np.ndarray:
    """``(tchans, nchans)`` expected signal power of ``signal`` (a truth.json entry) in ``file``,
    from that file's header alone: its channel frequencies, its tstart, tsamp."""
    freqs_hz = (header["fch1"] + np.arange(header["nchans"]) * header["foff"]) * 1e6
    times = (header["tstart"] - tstart0) * 86400.0 + np.arange(TCHANS) * header["tsamp"]
    centres_hz = signal["freq_mhz"] * 1e6 + signal["drift_hz_s"] * times
    sigma = signal["width_hz"] / (2 * math.sqrt(2 * math.log(2)))
    out = signal["intensity"] * np.exp(-(freqs_hz[None, :] - centres_hz[:, None]) ** 2 / (2 * sigma ** 2))
    return out if file in signal["files"] else np.zeros_like(out)


def _write(out, fmt, noise, *, signals=True, seed=3):
    return write_observation_cadence(str(out), fchans=FCHANS, tchans=TCHANS, fch1_mhz=FCH1, noise=noise, fmt=fmt,
                                     needles=NEEDLES if signals else (), rfi=RFI if signals else (), seed=seed,
                                     on_source="TARGET", off_sources=OFFS, slew_s=25.0, mjd_start=59000.5)


@pytest.fixture(scope="module", params=[("h5", "obs"), ("fil", "chi2")], ids=["h5-obs", "fil-chi2"])
def small(request, tmp_path_factory):
    fmt, noise = request.param
    root = tmp_path_factory.mktemp(f"obs_{fmt}")
    paths = _write(root / "with", fmt, noise)
    blank = _write(root / "blank", fmt, noise, signals=False)
    with open(root / "with" / TRUTH_FILE) as handle:
        truth = json.load(handle)
    return fmt, paths, blank, truth


def test_names_headers_list_and_truth(small):
    fmt, paths, _, truth = small
    assert [os.path.basename(p) for p in paths] == [f"synth_{i}_{'ON' if i % 2 == 0 else 'OFF'}.{fmt}"
                                                    for i in range(6)]
    headers = [blimpy.Waterfall(p, load_data=False).header for p in paths]
    for h in headers:
        assert (h["fch1"], h["foff"], h["nchans"], h["tsamp"]) == (FCH1, -DF_HZ * 1e-6, FCHANS, 18.253611008)
        assert h["telescope_id"] == 6 and h["nbits"] == 32
    assert [h["source_name"] for h in headers] == ["TARGET", "OFF_A", "TARGET", "OFF_B", "TARGET", "OFF_C"]
    step = (TCHANS * 18.253611008 + 25.0) / 86400.0
    np.testing.assert_allclose([h["tstart"] for h in headers], 59000.5 + step * np.arange(6), rtol=0, atol=1e-10)
    with open(os.path.join(os.path.dirname(paths[0]), LIST_FILE)) as handle:
        assert handle.read().splitlines() == [os.path.abspath(p) for p in paths]
    assert truth["files"] == [os.path.basename(p) for p in paths] and truth["format"] == fmt
    assert [n["files"] for n in truth["needles"]] == [[0, 2, 4], [0, 2, 4], [0, 4], [1, 3, 5]]
    assert [r["files"] for r in truth["rfi"]] == [list(range(6))] * 2
    assert truth["needles"][2]["snr_per_file"] == [40.0, 0, 0, 0, 40.0, 0]
    for entry in truth["needles"] + truth["rfi"]:  # the clock: freq + drift * (tstart_i - tstart_0)
        expected = [entry["freq_mhz"] + entry["drift_hz_s"] * (h["tstart"] - headers[0]["tstart"]) * 86400 * 1e-6
                    for h in headers]
        np.testing.assert_allclose(entry["freq_mhz_per_file"], expected, rtol=0, atol=1e-10)
        np.testing.assert_allclose(entry["channel_per_file"],
                                   (FCH1 - np.array(expected)) / (DF_HZ * 1e-6), rtol=0, atol=1e-3)


def test_signals_sit_where_truth_says(small):
    """Brightest channel near the expected one, row by row, in every file holding a signal; no
    excess along the path in the files that do not hold it."""
    _, paths, _, truth = small
    tstart0 = blimpy.Waterfall(paths[0], load_data=False).header["tstart"]
    noise_std = truth["noise_std"]
    for file, path in enumerate(paths):
        header, data = _read(path)
        rows = np.arange(TCHANS)
        for entry in truth["needles"] + truth["rfi"]:
            times = (header["tstart"] - tstart0) * 86400 + rows * header["tsamp"]
            centre = (FCH1 - (entry["freq_mhz"] + entry["drift_hz_s"] * times * 1e-6)) / (DF_HZ * 1e-6)
            near = np.rint(centre).astype(int)
            if file in entry["files"]:
                # a profile's top is flat over ~FWHM / 2: noise may pick any channel of it
                tolerance = max(1.5, 0.5 * entry["width_hz"] / DF_HZ)
                for row in rows:
                    lo = near[row] - 8
                    assert abs(lo + int(np.argmax(data[row, lo:near[row] + 9])) - centre[row]) <= tolerance, \
                        (entry, file, row)
            else:
                along = data[rows, near].mean() - truth["noise_mean"]
                assert abs(along) < 4 * noise_std / math.sqrt(TCHANS), (entry, file)


def test_signal_power_is_setigens_profile(small):
    """With and without signals, same seed: same noise, and the difference is exactly the sum of
    the Gaussian profiles computed from the headers (both formats, obs and chi2 noise)."""
    _, paths, blank, truth = small
    tstart0 = blimpy.Waterfall(paths[0], load_data=False).header["tstart"]
    for file, (path, blank_path) in enumerate(zip(paths, blank)):
        header, data = _read(path)
        _, noise = _read(blank_path)
        expected = sum(_template(header, tstart0, entry, file) for entry in truth["needles"] + truth["rfi"])
        np.testing.assert_allclose(data - noise, expected, rtol=0, atol=1e-5 * truth["noise_mean"])
    intensity = truth["needles"][0]["intensity"]
    assert intensity == pytest.approx(40.0 * truth["noise_std"] / math.sqrt(TCHANS))


def test_same_seed_same_data_other_seed_other_noise(tmp_path):
    first = _write(tmp_path / "a", "h5", "chi2", seed=5)
    again = _write(tmp_path / "b", "h5", "chi2", seed=5)
    other = _write(tmp_path / "c", "h5", "chi2", seed=6)
    for a, b, c in zip(first, again, other):
        assert np.array_equal(_read(a)[1], _read(b)[1])
        assert not np.array_equal(_read(a)[1], _read(c)[1])
    truths = [json.load(open(os.path.join(os.path.dirname(p[0]), TRUTH_FILE))) for p in (first, again)]
    assert truths[0] == truths[1]


@pytest.mark.parametrize("make, message", [
    (lambda: ObservationNeedle(6000.0, 0.1, 0.0), "ObservationNeedle.snr: expected a positive SNR"),
    (lambda: ObservationNeedle(6000.0, float("nan"), 10.0), "ObservationNeedle.drift_hz_s"),
    (lambda: ObservationNeedle(-1.0, 0.1, 10.0), "ObservationNeedle.freq_mhz"),
    (lambda: ObservationNeedle(6000.0, 0.1, 10.0, width_hz=0), "ObservationNeedle.width_hz"),
    (lambda: ObservationNeedle(6000.0, 0.1, 10.0, panels=(0, 6)), "ObservationNeedle.panels"),
    (lambda: ObservationNeedle(6000.0, 0.1, 10.0, panels=()), "ObservationNeedle.panels"),
    (lambda: ObservationNeedle(6000.0, 0.1, 10.0, panels=(2, 2)), "ObservationNeedle.panels"),
    (lambda: ObservationRFI(6000.0, snr=-5), "ObservationRFI.snr"),
    (lambda: CadenceLayout(fchans=1024, fmt="hdf5"), "CadenceLayout.fmt: expected one of 'h5' | 'fil'"),
    (lambda: CadenceLayout(fchans=1024, tchans=2), "CadenceLayout.tchans: expected an integer >= 3"),
    (lambda: CadenceLayout(fchans=1024, off_sources=("A", "B")), "CadenceLayout.off_sources"),
    (lambda: CadenceLayout(fchans=1024, dt_s=0.01, df_hz=1.0), "df_hz \\* dt_s must be >= 0.5"),
])
def test_bad_specs_raise_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_cadences_raise_clear_errors(tmp_path):
    out = str(tmp_path / "x")
    with pytest.raises(ValueError, match="write_observation_cadence.noise: expected one of 'obs' | 'chi2'"):
        write_observation_cadence(out, fchans=64, noise="gauss")
    # 0.3 Hz/s for 1932 s is 207 channels: out of a 64-channel band before file 4
    with pytest.raises(ValueError, match=r"needles\[1\]: at .* drifting -0.3 Hz/s .* in file 2, outside the band"):
        write_observation_cadence(out, fchans=64, needles=[ObservationNeedle(_freq(10), 0.0, 20.0),
                                                            ObservationNeedle(_freq(10), -0.3, 20.0)])
    with pytest.raises(ValueError, match=r"rfi\[0\]: expected a ObservationRFI, got ObservationNeedle"):
        write_large_cadence(out, fchans=64, rfi=[ObservationNeedle(_freq(10), 0.0, 20.0)])
    assert not os.path.exists(out)  # nothing written for a bad spec
    write_large_cadence(out, fchans=64)
    with pytest.raises(FileExistsError, match="synth_0_ON.fil exists"):
        write_large_cadence(out, fchans=64)
    write_large_cadence(out, fchans=64, overwrite=True)


@pytest.mark.parametrize("fmt", ["fil", "h5"])
def test_large_writer_small_size(tmp_path, fmt):
    """Streamed files: headers and shape as blimpy reads them lazily, chi^2(204) noise of mean 10,
    and the needles (the same clock and profile as setigen's writer) exactly where truth says."""
    import setigen as stg

    fchans = 8192
    needles = (ObservationNeedle(_freq(3000.4), -0.3, 30.0), ObservationNeedle(_freq(6000.0), 0.2, 60.0, panels=(0, 2)))
    paths = write_large_cadence(str(tmp_path / "s"), fchans=fchans, fmt=fmt, needles=needles, seed=2)
    blank = write_large_cadence(str(tmp_path / "b"), fchans=fchans, fmt=fmt, seed=2)
    truth = json.load(open(tmp_path / "s" / TRUTH_FILE))
    frame = stg.Frame(fchans=16, tchans=TCHANS, df=DF_HZ, dt=18.253611008, fch1=FCH1 * 1e6, seed=0)
    frame.add_noise(x_mean=10, noise_type="chi2")
    assert truth["needles"][0]["intensity"] == pytest.approx(frame.get_intensity(snr=30.0))
    tstart0 = None
    for file, (path, blank_path) in enumerate(zip(paths, blank)):
        lazy = blimpy.Waterfall(path, load_data=False)
        assert tuple(int(v) for v in lazy.file_shape) == (TCHANS, 1, fchans)
        assert lazy.header["source_name"] == ("SYNTH_ON" if file % 2 == 0 else f"SYNTH_OFF{(file + 1) // 2}")
        assert lazy.header["telescope_id"] == 6 and lazy.header["foff"] == -DF_HZ * 1e-6
        if fmt == "fil":
            size = os.path.getsize(path)
            assert size - sigproc.len_header(path) == TCHANS * fchans * 4
        tstart0 = lazy.header["tstart"] if tstart0 is None else tstart0
        wf, noise_wf = blimpy.Waterfall(path), blimpy.Waterfall(blank_path)
        data, noise = wf.data[:, 0, :].astype(np.float64), noise_wf.data[:, 0, :].astype(np.float64)
        assert abs(noise.mean() - 10.0) < 0.01 and abs(noise.std() - 10 * math.sqrt(2 / 204)) < 0.01
        expected = sum(_template(wf.header, tstart0, entry, file) for entry in truth["needles"])
        np.testing.assert_allclose(data - noise, expected, rtol=0, atol=1e-4)
        for entry in truth["needles"]:
            if file in entry["files"]:
                near = int(round(entry["channel_per_file"][file]))
                assert abs(near - 8 + int(np.argmax(data[0, near - 8:near + 9])) - entry["channel_per_file"][file]) <= 1.5


def test_cli_default_demo_and_errors(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["--out", str(out), "--fchans", "4096", "--format", "fil", "--noise", "chi2"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[:6] == [str(out / f"synth_{i}_{'ON' if i % 2 == 0 else 'OFF'}.fil") for i in range(6)]
    assert printed[-1].endswith(str(out / TRUTH_FILE))
    truth = json.load(open(out / TRUTH_FILE))
    assert [n["drift_hz_s"] for n in truth["needles"]] == [-0.3, 0.0, 0.25] and len(truth["rfi"]) == 2
    header, data = blimpy.Waterfall(str(out / "synth_2_ON.fil")).header, blimpy.Waterfall(str(out / "synth_2_ON.fil")).data
    for entry in truth["needles"]:
        channel = entry["channel_per_file"][2]
        near = int(round(channel))
        assert abs(near - 8 + int(np.argmax(data[0, 0, near - 8:near + 9])) - channel) <= 1.5
    assert header["nchans"] == 4096

    assert main(["--out", str(tmp_path / "n"), "--fchans", "512", "--large",
                 "--needle", f"{_freq(100)}:0.0:30:15", "--rfi", f"{_freq(400)}:0:50"]) == 0
    truth = json.load(open(tmp_path / "n" / TRUTH_FILE))
    assert truth["writer"] == "large" and truth["needles"][0]["width_hz"] == 15.0 and len(truth["rfi"]) == 1
    capsys.readouterr()
    for argv, message in [
        (["--out", str(out), "--fchans", "4096"], "exists; pass overwrite=True (--overwrite)"),
        (["--out", str(tmp_path / "e"), "--fchans", "4096", "--needle", "6000:x:3"], "--needle: expected FREQ_MHZ"),
        (["--out", str(tmp_path / "e"), "--fchans", "4096", "--rfi", "6000:0:-3"], "ObservationRFI.snr"),
        (["--out", str(tmp_path / "e"), "--fchans", "256"], "the default demo signals do not fit in 256 channels"),
        (["--out", str(tmp_path / "e"), "--fchans", "4096", "--large", "--noise", "obs"], "--large writes chi2"),
    ]:
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's own errors
            code = exit_.code
        err = capsys.readouterr().err
        assert code == 2 and message in err and "error: " in err.strip().splitlines()[-1], argv
