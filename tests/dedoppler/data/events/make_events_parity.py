"""Writes the inputs of ``tests/dedoppler/test_events_parity.py`` (the ``.dat`` files of two six-file
cadences) and the event CSVs turboSETI 2.3.2's ``find_event_pipeline`` makes from them::

    .venv/bin/python tests/dedoppler/data/events/make_events_parity.py OUT_DIR [TURBOSETI_PYTHON]

Stage 1 (this project's venv: setigen 2.7.0, blimpy 2.1.4): the ``.dat`` files -- ``on1 .. off3``
(ABACAD, ``CASES`` below) and ``edge_on1 .. edge_off3`` (``_edge_hits``), written line by line
with :func:`tfseti.dedoppler.dat.header_lines` / ``hit_line`` -- and, next to each, a header-only
``.h5`` (all-zero data, 16 x 16384, through setigen's ``Frame.save_h5``): ``find_event_pipeline``
reads ``tstart`` / ``source_name`` / ``fch1`` / ``foff`` / ``nchans`` from the ``.h5`` of each
``.dat`` (same stem), nothing else.
Stage 2 (``TURBOSETI_PYTHON``, default ``/tmp/tsvenv/bin/python``: turboSETI 2.3.2, Python 3.11.7,
numpy 1.26.4, pandas 3.0.6, blimpy 2.1.4): ``find_event_pipeline(OUT_DIR/<name>.lst, ...)`` for
each ``<name>`` of ``CONFIGS`` (the ``.dat`` paths, one a line, in ``NAMES`` order or the
configuration's ``order``; ``saving=True, csv_name=OUT_DIR/<name>.csv``, the other keywords as
listed, everything else its default). It prints the number of rows per configuration (``null``:
turboSETI found nothing and wrote no CSV; none of the committed configurations does that).

The committed ``.dat`` files and CSVs under ``tests/dedoppler/data/events/`` are the reference; the
``.h5`` stubs and ``.lst`` files are not committed (this script remakes them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

FCH1_MHZ = 6000.0
FOFF_MHZ = -2.7939677238464355e-6
TSAMP_S = 18.253611008
TIME = 16
NCHANS = 16384
MAX_DRIFT = 2.0  # Hz/s, the .dat header's max_drift_rate (level 2's RFI window: +-584 Hz)
MJD0 = 60000.5
STEP_S = 330.0  # file k starts k * STEP_S after file 0 (292 s scans + 38 s slews)
SOURCES = ("TESTSTAR", "OFF_A", "TESTSTAR", "OFF_B", "TESTSTAR", "OFF_C")  # ABACAD
NAMES = ("on1", "off1", "on2", "off2", "on3", "off3")

# (file channel at file 0's start, drift Hz/s, {file: SNR}, note). A needle's channel in file k is
# its straight path at the start of file k: channel0 - drift * k * STEP_S / |foff| (foff < 0:
# rising frequency = falling channel). ``shift`` moves it in one file (channels), to miss a window.
CASES = [
    # RFI in ON2 + OFF2 and twice in ON3 + OFF3 (level 1 only), low in the band: they shift the
    # hit numbers of ON2 (by 1) and ON3 (by 2) against ON1's, which turboSETI's level-3 dedup
    # (on the first TopHitNum of each file's rows) depends on
    dict(channel=300, drift=0.7, snr={2: 30.0, 3: 35.0}, shift={3: 50}),
    dict(channel=100, drift=-0.1, snr={4: 30.0, 5: 35.0}, shift={5: -40}),
    dict(channel=160, drift=-0.1, snr={4: 30.0, 5: 35.0}),
    # all three ONs, positive drift: a level-3 event
    dict(channel=1000, drift=0.5, snr={0: 40.0, 2: 38.0, 4: 41.0}),
    # all three ONs, negative drift: a level-3 event
    dict(channel=2600, drift=-1.2, snr={0: 30.0, 2: 33.0, 4: 29.0}),
    # only ON2: level 2, not 3
    dict(channel=3800, drift=0.3, snr={2: 25.0}),
    # RFI: ON1 and OFF1 (70 channels = 196 Hz apart, inside +-584 Hz): level 1 only
    dict(channel=5000, drift=0.8, snr={0: 50.0, 1: 45.0}, shift={1: 70}),
    # zero-drift line in all six files: removed unless check_zero_drift; then vetoed by the OFFs
    dict(channel=6200, drift=0.0, snr={k: 60.0 for k in range(6)}),
    # zero-drift line in the three ONs only: with check_zero_drift, turboSETI follows it at
    # DELTAF/DELTAT = -0.153 Hz/s (foff < 0), which misses it in ON2 and ON3: never level 3
    dict(channel=7400, drift=0.0, snr={0: 35.0, 2: 36.0, 4: 37.0}),
    # all three ONs but SNR 8: below SNR_cut=10 (a level-3 event with SNR_cut=None)
    dict(channel=8600, drift=0.2, snr={0: 8.0, 2: 8.5, 4: 9.0}),
    # ON3 with an OFF3 hit 230 channels (643 Hz) away, just outside +-584 Hz: level 2
    dict(channel=9800, drift=-0.4, snr={4: 28.0, 5: 40.0}, shift={5: 230}),
    # ON1 and ON3 on the path, ON2 on the mirrored path (drift sign flipped): not level 3
    dict(channel=11000, drift=0.6, snr={0: 30.0, 2: 31.0, 4: 32.0}, mirror={2}),
    # two needles 10 channels apart in all ONs, within each other's follow windows: turboSETI's
    # event rows repeat / are dropped by its first-TopHitNum dedup
    dict(channel=12400, drift=1.0, snr={0: 45.0, 2: 44.0, 4: 43.0}),
    dict(channel=12410, drift=1.0, snr={0: 20.0, 2: 21.0, 4: 22.0}),
    # in OFF2 only (the OFF_B complex cadences' one ON hit that no other file vetoes)
    dict(channel=13500, drift=0.9, snr={3: 33.0}),
    # steep negative drift, all ONs, min/max drift filters exercise it (|drift| 1.9)
    dict(channel=14600, drift=-1.9, snr={0: 26.0, 2: 27.0, 4: 28.0}),
]

# The "edge" cadence: six more files whose windows land on 6-decimal frequencies, to pin down the
# strict inequalities and float rounding of both windows. Header: DELTAT 18.75 s, DELTAF -3.75 Hz
# (a zero drift is followed at -0.2 Hz/s), max_drift_rate 1 Hz/s, obs_length 300 s (RFI window
# +-300 Hz); files 1350 s apart (MJD steps of 1/64 day, exact: delta_t 2700 s for ON2, 5400 s for
# ON3); follow window: centre Freq + r delta_t, half-width |r| 600 Hz.
EDGE_NAMES = tuple(f"edge_{n}" for n in NAMES)
EDGE_SOURCES = ("EDGESTAR", "E_OFF_A", "EDGESTAR", "E_OFF_B", "EDGESTAR", "E_OFF_C")
EDGE_MJD0 = 60001.0
EDGE_STEP_DAYS = 1.0 / 64


def _edge_hits():
    """Per file, ``[(freq MHz, drift Hz/s, snr)]`` (each case at its own 10 kHz, ON1 at ``F``)."""
    files = [[] for _ in range(6)]

    def case(i, drift, on2, on3, snr1=20.0, off=None):
        f = round(6000.0 + 0.01 * (i + 1), 6)
        files[0].append((f, drift, snr1))
        files[2].append((round(f + on2, 6), drift, 20.0))
        files[4].append((round(f + on3, 6), drift, 20.0))
        if off:
            files[off[0]].append((round(f + off[1], 6), 0.3, 30.0))

    case(0, 0.5, 0.00135 + 0.0003, 0.0027)            # ON2 on the upper edge of the follow window
    case(1, 0.5, 0.00135 - 0.0003, 0.0027)            # ON2 on the lower edge
    case(2, 0.5, 0.00135 + 0.000299, 0.0027 + 0.000299)  # 1 Hz inside
    case(3, -0.5, -0.00135 - 0.0003, -0.0027)         # negative drift, lower edge
    case(4, -0.5, -0.00135 + 0.0003, -0.0027 - 0.0003)  # negative drift, upper edge in ON2, lower in ON3
    case(5, 0.25, 0.000675 + 0.00015, 0.00135 - 0.00015)  # |r| 0.25: edges of +-150 Hz
    case(6, 0.5, 0.00135, 0.0027, off=(1, 0.0003))    # OFF1 on the RFI window's upper edge
    case(7, 0.5, 0.00135, 0.0027, off=(5, -0.0003))   # OFF3 on its lower edge
    case(8, 0.5, 0.00135, 0.0027, off=(3, 0.000299))  # OFF2 1 Hz inside: vetoed
    case(9, 0.0, -0.00054 + 0.00012, -0.00108)        # zero drift, followed at -0.2 Hz/s: ON2 on the edge
    case(10, 0.5, 0.00135, 0.0027, snr1=10.0)         # SNR exactly SNR_cut in ON1
    case(11, 0.25, 0.000675, 0.00135)                 # |drift| exactly min_drift_rate 0.25
    case(12, 0.0, -0.00054 + 0.000119, -0.00108)      # zero drift, ON2 1 Hz inside: level 3 (zero)
    return [sorted(f) for f in files]


CONFIGS = {  # CSV name: find_event_pipeline keyword arguments
    "f1_snr10": dict(filter_threshold=1, SNR_cut=10),
    "f2_snr10": dict(filter_threshold=2, SNR_cut=10),
    "f3_snr10": dict(filter_threshold=3, SNR_cut=10),
    "f3_nocut": dict(filter_threshold=3),
    "f1_zero": dict(filter_threshold=1, SNR_cut=10, check_zero_drift=True),
    "f2_zero": dict(filter_threshold=2, SNR_cut=10, check_zero_drift=True),
    "f3_zero": dict(filter_threshold=3, SNR_cut=10, check_zero_drift=True),
    "f2_drift": dict(filter_threshold=2, SNR_cut=10, min_drift_rate=0.4, max_drift_rate=1.5),
    "f3_complex": dict(filter_threshold=3, SNR_cut=10, on_source_complex_cadence="TESTSTAR"),
    # a non-alternating complex cadence: OFF_B (file 3) is the only ON, the other five are OFFs
    "f2_complex_offb": dict(filter_threshold=2, SNR_cut=10, on_source_complex_cadence="OFF_B"),
    "f3_complex_offb": dict(filter_threshold=3, SNR_cut=10, on_source_complex_cadence="OFF_B"),
    # BACADA: the list given as off1, on1, off2, on2, off3, on3, not sorted by tstart
    "f3_offfirst": dict(filter_threshold=3, SNR_cut=10, on_off_first="OFF", sortby_tstart=False,
                        order=("off1", "on1", "off2", "on2", "off3", "on3")),
    # two cadences: the six files listed twice, not sorted (the rows of both, concatenated)
    "f3_two_cadences": dict(filter_threshold=3, SNR_cut=10, sortby_tstart=False, order=NAMES * 2),
    "edge_f2": dict(filter_threshold=2, SNR_cut=10, order=EDGE_NAMES),
    "edge_f3": dict(filter_threshold=3, SNR_cut=10, order=EDGE_NAMES),
    "edge_f3_zero": dict(filter_threshold=3, SNR_cut=10, check_zero_drift=True, order=EDGE_NAMES),
    "edge_f3_cuts": dict(filter_threshold=3, SNR_cut=10, min_drift_rate=0.25, max_drift_rate=0.6,
                         order=EDGE_NAMES),
    "edge_f1_cuts": dict(filter_threshold=1, SNR_cut=10, min_drift_rate=0.2, max_drift_rate=0.5,
                         order=EDGE_NAMES),
}


def mjd(k: int) -> float:
    return MJD0 + k * STEP_S / 86400.0


def file_hits(k: int) -> list[tuple[float, float, int]]:
    """``(drift, snr, channel)`` of file ``k``, in channel order."""
    hits = []
    for case in CASES:
        if k not in case["snr"]:
            continue
        drift = -case["drift"] if k in case.get("mirror", ()) else case["drift"]
        channel = case["channel"] - drift * k * STEP_S / (abs(FOFF_MHZ) * 1e6)
        channel = int(round(channel)) + case.get("shift", {}).get(k, 0)
        hits.append((case["drift"] if k not in case.get("mirror", ()) else drift, case["snr"][k], channel))
    return sorted(hits, key=lambda h: h[2])


def write_inputs(out_dir: str) -> None:
    sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "..")))
    from tfseti.dedoppler.dat import header_lines, hit_line

    window = 2 * 8  # channels at each side written as freq_start / freq_end (informative only)
    for k, name in enumerate(NAMES):
        header = header_lines(f"{name}.h5", SOURCES[k], mjd(k), "17h47m15s", "-28d22m59s", TSAMP_S,
                              FOFF_MHZ, MAX_DRIFT, TIME * TSAMP_S)
        hits = file_hits(k)
        lines = [hit_line(n, drift, snr, FCH1_MHZ + ch * FOFF_MHZ, ch,
                          FCH1_MHZ + max(0, ch - window) * FOFF_MHZ,
                          FCH1_MHZ + min(NCHANS - 1, ch + window) * FOFF_MHZ, 0, len(hits))
                 for n, (drift, snr, ch) in enumerate(hits, 1)]
        with open(os.path.join(out_dir, f"{name}.dat"), "w") as handle:
            handle.write(header + "".join(lines))
    for k, (name, hits) in enumerate(zip(EDGE_NAMES, _edge_hits())):
        header = header_lines(f"{name}.h5", EDGE_SOURCES[k], EDGE_MJD0 + k * EDGE_STEP_DAYS, "17h47m15s",
                              "-28d22m59s", 18.75, -3.75e-6, 1.0, 300.0)
        lines = [hit_line(n, drift, snr, freq, 0, freq, freq, 0, len(hits))
                 for n, (freq, drift, snr) in enumerate(hits, 1)]
        with open(os.path.join(out_dir, f"{name}.dat"), "w") as handle:
            handle.write(header + "".join(lines))
    write_h5_stubs(out_dir)


def write_h5_stubs(out_dir: str) -> None:
    import logging

    import numpy as np
    import setigen as stg

    logging.getLogger("hdf5plugin").setLevel(logging.ERROR)
    stubs = [(n, mjd(k), SOURCES[k]) for k, n in enumerate(NAMES)]
    stubs += [(n, EDGE_MJD0 + k * EDGE_STEP_DAYS, EDGE_SOURCES[k]) for k, n in enumerate(EDGE_NAMES)]
    for name, start, source in stubs:
        frame = stg.Frame(fchans=NCHANS, tchans=TIME, df=abs(FOFF_MHZ) * 1e6, dt=TSAMP_S,
                          fch1=FCH1_MHZ * 1e6, ascending=False, mjd=start, source_name=source)
        frame.data = np.zeros((TIME, NCHANS), np.float32)
        frame.save_h5(os.path.join(out_dir, f"{name}.h5"))


# End to end: six small setigen .h5 files (committed), searched by turboSETI's FindDoppler (its
# .dat files are committed) and then by find_event_pipeline; the test runs hitsearch + events on
# the same .h5 files. 1024 channels x 16 integrations, chi^2 noise, GBT-like header, file k at
# mjd(k) as above; needles (channel at file 0's start, drift Hz/s, files, setigen SNR).
E2E_NAMES = tuple(f"e2e_{n}" for n in NAMES)
E2E_FCHANS = 1024
E2E_SEARCH = dict(max_drift=0.5, snr=10.0, n_coarse_chan=1)  # FindDoppler's parameters
E2E_NEEDLES = (
    (200, 0.3, (0, 2, 4), 40.0),           # in all three ONs: a level-3 event
    (620, -0.2, tuple(range(6)), 40.0),    # in every file: RFI
    (850, 0.1, (2,), 40.0),                # ON2 only: level 2
    (950, 0.0, (0, 2, 4), 40.0),           # zero drift: never searched (min_drift), no hit
)
E2E_CONFIGS = {
    "e2e_f1": dict(filter_threshold=1, SNR_cut=10, order=E2E_NAMES),
    "e2e_f2": dict(filter_threshold=2, SNR_cut=10, order=E2E_NAMES),
    "e2e_f3": dict(filter_threshold=3, SNR_cut=10, order=E2E_NAMES),
}


def write_e2e_h5(out_dir: str) -> None:
    import logging

    import numpy as np
    import setigen as stg

    logging.getLogger("hdf5plugin").setLevel(logging.ERROR)
    df_hz = abs(FOFF_MHZ) * 1e6
    for k, name in enumerate(E2E_NAMES):
        frame = stg.Frame(fchans=E2E_FCHANS, tchans=TIME, df=df_hz, dt=TSAMP_S, fch1=FCH1_MHZ * 1e6,
                          ascending=False, seed=3000 + k, mjd=mjd(k), source_name=SOURCES[k])
        frame.add_noise(x_mean=10.0, noise_type="chi2")
        for channel, drift, files, snr in E2E_NEEDLES:
            if k not in files:
                continue
            f_start = FCH1_MHZ * 1e6 - channel * df_hz + drift * k * STEP_S  # on the cadence path
            frame.add_signal(stg.constant_path(f_start=f_start, drift_rate=drift),
                             stg.constant_t_profile(level=frame.get_intensity(snr=snr)),
                             stg.gaussian_f_profile(width=df_hz), stg.constant_bp_profile(level=1))
        frame.data = frame.data.astype(np.float32)
        frame.save_h5(os.path.join(out_dir, f"{name}.h5"))


def run_turboseti(out_dir: str) -> None:
    import contextlib
    import io
    import logging

    from turbo_seti.find_doppler.find_doppler import FindDoppler
    from turbo_seti.find_event.find_event_pipeline import find_event_pipeline

    for name in E2E_NAMES:
        with contextlib.redirect_stdout(io.StringIO()):
            FindDoppler(os.path.join(out_dir, f"{name}.h5"), min_drift=1e-5, out_dir=out_dir,
                        log_level_int=logging.WARNING, **E2E_SEARCH).search()
    made = {}
    for name, kwargs in {**CONFIGS, **E2E_CONFIGS}.items():
        kwargs = dict(kwargs)
        lst = os.path.join(out_dir, f"{name}.lst")
        with open(lst, "w") as handle:
            order = kwargs.pop("order", NAMES)
            handle.write("".join(os.path.join(out_dir, f"{n}.dat") + "\n" for n in order))
        csv = os.path.join(out_dir, f"{name}.csv")
        with contextlib.redirect_stdout(io.StringIO()):
            df = find_event_pipeline(lst, csv_name=csv, saving=True, **kwargs)
        made[name] = None if df is None else len(df)
    print(json.dumps(made))


if __name__ == "__main__":
    if sys.argv[1] == "--turboseti":
        run_turboseti(sys.argv[2])
    else:
        out = os.path.abspath(sys.argv[1])
        os.makedirs(out, exist_ok=True)
        write_inputs(out)
        write_e2e_h5(out)
        python = sys.argv[2] if len(sys.argv) > 2 else "/tmp/tsvenv/bin/python"
        subprocess.run([python, os.path.abspath(__file__), "--turboseti", out], check=True)
