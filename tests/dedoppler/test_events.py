"""tfseti.dedoppler.events, unit by unit: the two tolerance windows and their edges, the filters,
the ON/OFF bookkeeping, the errors and the CSV (turboSETI's own CSVs are ``test_events_parity.py``)."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from tfseti.dedoppler import events as ev
from tfseti.dedoppler import hitsearch as hs

DELTAT, DELTAF = "18.750000", "-3.750000"  # a zero drift is followed at -0.2 Hz/s
STEP = 1.0 / 64  # days between files: 1350 s, exact


def _dat(k: int, hits, source="STAR", max_drift="1.000000", obs="300.000000", **extra) -> ev.DatFile:
    """File ``k`` of a cadence: ``hits`` = [(freq MHz, drift Hz/s, snr)], numbered in order."""
    rows = tuple({"TopHitNum": n, "DriftRate": float(d), "SNR": float(s), "Freq": float(f), "ChanIndx": 0,
                  "FreqStart": float(f), "FreqEnd": float(f), "CoarseChanNum": 0,
                  "FullNumHitsInRange": len(hits)}
                 for n, (f, d, s) in enumerate(hits, 1))
    return ev.DatFile(file_id=f"f{k}.h5", source=source, mjd=f"{60001.0 + k * STEP:.12f}", ra="1h0m0s",
                      dec="1d0m0s", deltat=DELTAT, deltaf=DELTAF, max_drift_rate=max_drift, obs_length=obs,
                      hits=rows, **extra)


def _cadence(on1, off1=(), on2=(), off2=(), on3=(), off3=(), **kw):
    return [_dat(k, h, source="STAR" if k % 2 == 0 else f"OFF{k}", **kw)
            for k, h in enumerate((on1, off1, on2, off2, on3, off3))]


def _row(freq=6000.0, drift=0.5, max_drift="1.000000"):
    return {"Freq": freq, "DriftRate": drift, "max_drift_rate": max_drift, "obs_length": "300.000000",
            "DELTAF": DELTAF, "DELTAT": DELTAT}


# --- windows ---------------------------------------------------------------------------------

def test_rfi_window_is_max_drift_times_obs_length():
    low, high = ev.rfi_window(_row(max_drift="2.000000"))
    assert (low, high) == pytest.approx((6000.0 - 600e-6, 6000.0 + 600e-6), abs=1e-12)
    # max_drift_rate 0 -> |DELTAF / DELTAT| = 0.2 Hz/s -> +-60 Hz, whatever the hit's own drift
    assert ev.rfi_window(_row(drift=3.0, max_drift="0.000000")) == pytest.approx((6000 - 60e-6, 6000 + 60e-6),
                                                                                  abs=1e-12)


@pytest.mark.parametrize("drift, centre, half", [(0.5, 1350e-6, 300e-6), (-0.5, -1350e-6, 300e-6),
                                                 (0.0, -540e-6, 120e-6), (0.25, 675e-6, 150e-6)])
def test_follow_window_moves_with_the_signed_drift(drift, centre, half):
    low, high = ev.follow_window(_row(drift=drift), 2700.0)
    assert ((low + high) / 2 - 6000.0, (high - low) / 2) == pytest.approx((centre, half), abs=1e-10)


def _inward(value: float, towards: float) -> float:
    return math.nextafter(value, towards)


def test_rfi_window_edges_are_strict():
    on1 = [(6000.0, 0.5, 20.0)]
    low, high = ev.rfi_window(_row())
    for off_freq, vetoed in ((high, False), (low, False),
                             (_inward(high, 6000), True), (_inward(low, 6000), True)):
        rows = ev.find_events(_cadence(on1, off1=[(off_freq, 0.0, 5.0)]), filter_threshold=2)
        assert (rows == []) == vetoed, (off_freq, vetoed)
    rows = ev.find_events(_cadence(on1, off1=[(_inward(high, 6000), 0.1, 30.0), (6000.0001, 0.2, 1.0)]),
                          filter_threshold=1)
    assert rows[0]["RFI_in_range"] == ""  # not computed at level 1


@pytest.mark.parametrize("drift", [0.5, -0.5, 0.0])
def test_follow_window_edges_are_strict(drift):
    on1 = [(6000.0, drift, 20.0)]
    low, high = ev.follow_window(_row(drift=drift), 2 * 1350.0)
    on3 = [((sum(ev.follow_window(_row(drift=drift), 4 * 1350.0))) / 2, drift, 20.0)]
    centre = (low + high) / 2
    for on2_freq, found in ((high, False), (low, False),
                            (_inward(high, centre), True), (_inward(low, centre), True)):
        rows = ev.find_events(_cadence(on1, on2=[(on2_freq, drift, 20.0)], on3=on3), check_zero_drift=True)
        assert bool(rows) == found, (on2_freq, found)
        if found:
            assert rows[0]["in_n_ons"] == 2 and rows[0]["Hit_ID"] == "STAR_0"


def test_zero_drift_is_dropped_unless_checked():
    cadence = _cadence([(6000.0, 0.0, 20.0), (6000.1, 0.1, 20.0)])
    assert [r["Freq"] for r in ev.find_events(cadence, filter_threshold=1)] == [6000.1]
    assert len(ev.find_events(cadence, filter_threshold=1, check_zero_drift=True)) == 2


def test_cuts_are_strict_on_absolute_values():
    cadence = _cadence([(6000.0, 0.25, 10.0), (6000.1, -0.25, 11.0), (6000.2, 0.5, 12.0),
                        (6000.3, -0.4, 12.0)])
    kept = lambda **kw: [r["Freq"] for r in ev.find_events(cadence, filter_threshold=1, **kw)]  # noqa: E731
    assert kept(snr_cut=10) == [6000.1, 6000.2, 6000.3]
    assert kept(snr_cut=-10) == [6000.1, 6000.2, 6000.3]
    assert kept(min_drift_rate=0.25) == [6000.2, 6000.3]
    assert kept(max_drift_rate=-0.5) == [6000.0, 6000.1, 6000.3]


# --- ON / OFF bookkeeping ----------------------------------------------------------------------

def test_tables_are_numbered_over_files_with_hits():
    hit = [(6000.0, 0.5, 20.0)]
    rows = ev.find_events(_cadence([], on2=hit, on3=hit), filter_threshold=1)
    assert [r["status"] for r in rows] == ["on_table_1", "on_table_2"]
    assert [r["delta_t"] for r in rows] == [0.0, 2700.0]  # from the first ON file with hits
    assert ev.find_events(_cadence([], on2=hit, on3=hit)) == []  # level 3: an ON table is empty


def test_off_first_and_complex_cadence_pick_the_on_files():
    files = _cadence([(6000.0, 0.5, 20.0)], off1=[(6000.5, 0.5, 20.0)], off2=[(6000.6, 0.5, 20.0)])
    # BACADA: the odd files are ON (their sources differ: turboSETI refuses)
    with pytest.raises(ValueError, match="several sources"):
        ev.find_events(files, filter_threshold=1, on_off_first="OFF")
    rows = ev.find_events(files, filter_threshold=1, complex_cadence=[0, 1, 0, 0, 0, 0])
    assert [(r["Source"], r["Freq"], r["status"]) for r in rows] == [("OFF1", 6000.5, "on_table_1")]
    with pytest.raises(ValueError, match="on_off_first"):
        ev.find_events(files, on_off_first="on")
    with pytest.raises(ValueError, match="filter_threshold"):
        ev.find_events(files, filter_threshold=4)


def test_pipeline_sorts_by_tstart_and_cuts_cadences():
    hit = [(6000.0, 0.5, 20.0)]
    files = _cadence(hit, on2=[(6000.00135, 0.5, 20.0)], on3=[(6000.0027, 0.5, 20.0)])
    shuffled = [files[k] for k in (3, 0, 5, 2, 1, 4)]
    assert ev.find_event_pipeline(shuffled) == ev.find_events(files)
    assert ev.find_event_pipeline(shuffled, sortby_tstart=False) != ev.find_events(files)
    two = ev.find_event_pipeline(files + files + files[:3], sortby_tstart=False)  # 3 leftover files ignored
    assert two == ev.find_events(files) * 2


def test_complex_cadence_pattern_is_taken_before_the_sort():
    """turboSETI builds the 1/0 pattern from the files as listed and applies it to the sorted list."""
    files = _cadence([(6000.0, 0.5, 20.0)], off1=[(6000.5, 0.5, 20.0)], on2=[(6000.00135, 0.5, 20.0)],
                     on3=[(6000.0027, 0.5, 20.0)])
    assert ev.find_event_pipeline(files, on_source_complex_cadence="STAR") == ev.find_events(files)
    swapped = [files[1], files[0]] + files[2:]
    with pytest.raises(ValueError, match="several sources"):
        ev.find_event_pipeline(swapped, on_source_complex_cadence="STAR", filter_threshold=1)
    with pytest.raises(ValueError, match="not in this complex cadence"):
        ev.find_event_pipeline(files, on_source_complex_cadence="NOPE")


def test_frequency_consistency_check():
    hit = [(6000.0, 0.5, 20.0)]
    same = dict(fch1=6000.0, foff=-2.79e-6, nchans=1024)
    files = [_dat(k, hit, source="STAR" if k % 2 == 0 else f"OFF{k}", **same) for k in range(6)]
    assert ev.find_event_pipeline(files, filter_threshold=1)
    off = list(files)
    off[3] = _dat(3, hit, source="OFF3", fch1=6000.0, foff=-2.79e-6, nchans=2048)
    with pytest.raises(ValueError, match="inconsistent frequency range"):
        ev.find_event_pipeline(off)
    off[3] = _dat(3, hit, source="OFF3", fch1=6000.0, foff=-2.80e-6, nchans=1024)  # within 1 %
    assert ev.find_event_pipeline(off, filter_threshold=1)
    off[3] = _dat(3, hit, source="OFF3")  # unknown: no check
    off[1] = _dat(1, hit, source="OFF1", fch1=7000.0, foff=-2.79e-6, nchans=1024)
    assert ev.find_event_pipeline(off, filter_threshold=1)


def test_level3_dedup_on_first_top_hit_number():
    """turboSETI keeps a table's window rows only if the first one's TopHitNum is new."""
    files = _cadence([(6000.0, 0.5, 20.0)], on2=[(6000.00135, 0.5, 20.0)],
                     on3=[(5999.9, 0.3, 20.0), (6000.0027, 0.5, 20.0)])
    rows = ev.find_events(files)
    assert [(r["status"], r["TopHitNum"]) for r in rows] == [("on_table_1", 1), ("on_table_3", 2)]
    assert [r["in_n_ons"] for r in rows] == [2, ""]


# --- input / output ----------------------------------------------------------------------------

def test_dat_file_from_hits_is_the_dat_read_back(tmp_path):
    hits = [hs.Hit(drift_rate=0.1234567, snr=25.123456789, freq_mhz=5999.99912345678, index=10,
                   freq_start_mhz=5999.9992, freq_end_mhz=5999.9990, coarse_channel=0, n_hits=7,
                   channel=10, drift_index=3),
            hs.Hit(drift_rate=-1.5, snr=40.0, freq_mhz=5999.998, index=400, freq_start_mhz=5999.9981,
                   freq_end_mhz=5999.9979, coarse_channel=1, n_hits=7, channel=400, drift_index=-9)]
    header = hs.dat_header("x.h5", dict(source_name="S:1", tstart=60000.25, tsamp=18.253611008,
                                        foff=-2.7939677238464355e-6, time=16), 2.0)
    path = str(tmp_path / "x.dat")
    hs.write_hits_dat(path, header, hits)
    ours = ev.dat_file_from_hits(hits, header, path=path, tstart=60000.25)
    assert ours == ev.read_dat(path, tstart=60000.25)
    assert ours.source == "S_1" and ours.mjd == "60000.250000000000" and ours.max_drift_rate == "2.000000"
    assert ours.hits[0]["DriftRate"] == 0.123457 and ours.hits[0]["TopHitNum"] == 1
    assert ours.hits[1]["CoarseChanNum"] == 1 and ours.hits[1]["FullNumHitsInRange"] == 7


def test_read_dat_errors(tmp_path):
    bad = tmp_path / "bad.dat"
    bad.write_text("# a\n" * 4)
    with pytest.raises(ValueError, match="9 header lines"):
        ev.read_dat(str(bad))
    bad.write_text("# a\n# File ID: x.h5\n# a\n# Source:S\n# MJD: 1.0\n# DELTAT: 1\n# a\n# a\n# a\n")
    with pytest.raises(ValueError, match="out-of-date"):
        ev.read_dat(str(bad))


def test_csv_writer_and_reader(tmp_path):
    files = _cadence([(6000.0, 0.5, 20.0)], on2=[(6000.00135, 0.5, 20.0)], on3=[(6000.0027, 0.5, 20.0)])
    files = [ev.DatFile(**{**f.__dict__, "source": "A,B"}) if k % 2 == 0 else f for k, f in enumerate(files)]
    rows = ev.find_events(files)
    path = str(tmp_path / "e.csv")
    ev.write_events_csv(path, rows)
    text = open(path).read()
    assert text.splitlines()[0] == "," + ",".join(ev.COLUMNS)
    assert '"A,B"' in text and '"A,B_0"' in text
    back = ev.read_events_csv(path)
    assert [r["Hit_ID"] for r in back] == ["A,B_0"] and back[0]["delta_t"] == "0.0"
    ev.write_events_csv(path, [])
    assert open(path).read() == "," + ",".join(ev.COLUMNS) + "\n"


def test_default_csv_name():
    files = [ev.DatFile(**{**f.__dict__, "path": f"/d/{k}.dat"}) for k, f in enumerate(_cadence([]))]
    assert ev.default_csv_name(files, filter_threshold=2, snr_cut=10) == "/d/STAR_f2_snr10.csv"
    assert ev.default_csv_name(files, check_zero_drift=True) == "/d/STAR_f3_snrNone_zero.csv"


def test_imports_no_tensorflow():
    code = ("import sys\n"
            "from tfseti.dedoppler import events\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
            "assert 'pandas' not in sys.modules, 'pandas was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
