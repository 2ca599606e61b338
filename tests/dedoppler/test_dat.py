"""turboSETI ``.dat`` tables: byte for byte what turboSETI 2.3.2 writes, read back as its
``find_event.read_dat`` reads them, and the coarse channels and windows of the per-file search."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tfseti.dedoppler.dat import DAT_COLUMNS, header_lines, hit_line, read_dat, write_dat

# The first lines of a .dat file turboSETI 2.3.2's FindDoppler wrote (max_drift 4, snr 10) for a
# setigen-made GBT file: header and top hit, tabs and trailing spaces as written.
TURBOSETI_DAT = (
    "# -------------------------- o --------------------------\n"
    "# File ID: cad0_TARGET.h5 \n"
    "# -------------------------- o --------------------------\n"
    "# Source:TARGET\n"
    "# MJD: 60000.000000000000\tRA: 17h47m15s\tDEC: -28d22m59.16s\n"
    "# DELTAT:  18.253611\tDELTAF(Hz):  -2.793968\tmax_drift_rate:   4.000000\tobs_length: 292.057776\n"
    "# --------------------------\n"
    "# Top_Hit_# \tDrift_Rate \tSNR \tUncorrected_Frequency \tCorrected_Frequency \tIndex \tfreq_start "
    "\tfreq_end \tSEFD \tSEFD_freq \tCoarse_Channel_Number \tFull_number_of_hits \t\n"
    "# --------------------------\n"
    "000001\t  0.193881\t 43.029655\t   5999.999098\t   5999.999098\t323\t   6000.000000\t   5999.997142"
    "\t0.0\t      0.000000\t0\t87\t\n")


def turboseti_read_dat(text: str) -> tuple[dict, list[list[str]]]:
    """turboSETI 2.3.2 ``find_event.read_dat``'s parsing, line for line (it is not installable
    next to numpy 2): the header by line position, values after the last ':', hits from line 9
    split on whitespace, fields 0-3, 5-7, 10, 11 used."""
    hits = text.splitlines(keepends=True)
    header = {"FileID": hits[1].strip().split(":")[-1].strip(),
              "Source": hits[3].strip().split(":")[-1].strip(),
              "MJD": hits[4].strip().split("\t")[0].split(":")[-1].strip(),
              "RA": hits[4].strip().split("\t")[1].split(":")[-1].strip(),
              "DEC": hits[4].strip().split("\t")[2].split(":")[-1].strip(),
              "DELTAT": hits[5].strip().split("\t")[0].split(":")[-1].strip(),
              "DELTAF": hits[5].strip().split("\t")[1].split(":")[-1].strip(),
              "max_drift_rate": hits[5].strip().split("\t")[2].split(":")[-1].strip(),
              "obs_length": hits[5].strip().split("\t")[3].split(":")[-1].strip()}
    rows = [re.split(r"\s+", re.sub(r"[\t]", " ", line).strip()) for line in hits[9:]]
    for fields in rows:
        float(fields[1]), float(fields[2]), float(fields[3])
        int(fields[5]), float(fields[6]), float(fields[7]), int(fields[10]), int(fields[11])
    return header, rows


def test_header_and_hit_line_are_turboseti_bytes():
    header = header_lines("cad0_TARGET.h5", "TARGET", 60000.0, 17.7875, -28.383099999999992,
                          18.253611008, -2.7939677238464355e-06, 4.0, 16 * 18.253611008)
    line = hit_line(1, 0.193881, 43.029655, 5999.999098, 323, 6000.0, 5999.997142, 0, 87)
    assert header + line == TURBOSETI_DAT
    assert [c.strip() for c in header.splitlines()[7].lstrip("# ").split("\t") if c.strip()] == list(DAT_COLUMNS)


def test_written_file_reads_as_turboseti_reads_it(tmp_path):
    header = header_lines("A1.fil", "HIP 1:2", 60001.5, "17h00m00s", "-5d00m00s", 18.253611008,
                          -2.7939677238464355e-06, 0.52, 292.0)
    hits = [{"drift": -0.25, "snr": 12.5, "freq": 6000.1, "index": 7, "freq_start": 6000.2,
             "freq_end": 6000.0, "coarse": 3},
            {"drift": 0.1, "snr": 30.0, "freq": 6000.3, "index": 2, "freq_start": 6000.4,
             "freq_end": 6000.2, "coarse": 3}]
    path = tmp_path / "A1.dat"
    write_dat(str(path), header, hits)
    text = path.read_text()
    assert not text.endswith("\n\n") and "\n\n" not in text      # read_dat fails on a blank line
    theirs, rows = turboseti_read_dat(text)
    assert theirs["Source"] == "HIP 1_2"           # ':' would cut the name in read_dat
    assert (theirs["FileID"], theirs["MJD"], theirs["RA"], theirs["DEC"]) == (
        "A1.fil", "60001.500000000000", "17h00m00s", "-5d00m00s")
    assert float(theirs["max_drift_rate"]) == 0.52 and float(theirs["obs_length"]) == 292.0
    # sorted by channel index, numbered from 1, the file's hit count in the last column
    assert [r[5] for r in rows] == ["2", "7"] and [r[0] for r in rows] == ["000001", "000002"]
    assert [r[11] for r in rows] == ["2", "2"]
    ours, ours_hits = read_dat(str(path))
    assert ours["source"] == "HIP 1_2" and ours["foff_hz"] == pytest.approx(-2.793968)
    assert [(h["index"], h["drift"], h["snr"]) for h in ours_hits] == [(2, 0.1, 30.0), (7, -0.25, 12.5)]


def test_header_only_file_has_no_hits(tmp_path):
    path = tmp_path / "B.dat"
    write_dat(str(path), header_lines("B.h5", "OFF", 6e4, 0.0, 0.0, 1.0, -1e-6, 0.5, 16.0), [])
    assert turboseti_read_dat(path.read_text())[1] == []
    assert read_dat(str(path))[1] == []


def test_read_dat_names_a_broken_line(tmp_path):
    path = tmp_path / "C.dat"
    path.write_text(TURBOSETI_DAT + "000002\t1.0\t2.0\n")
    with pytest.raises(ValueError, match=r"C.dat, line 11: expected 12 fields, got 3"):
        read_dat(str(path))


def test_coarse_channels_and_the_window_of_a_hit():
    from tfseti.scan.filehits import coarse_ranges, nearest_window

    assert coarse_ranges(4096, None) == [(0, 0, 4096)]
    assert coarse_ranges(4096, 1024) == [(0, 0, 1024), (1, 1024, 2048), (2, 2048, 3072), (3, 3072, 4096)]
    assert coarse_ranges(2500, 1024) == [(0, 0, 1024), (1, 1024, 2048), (2, 2048, 2500)]
    starts = np.array([0, 128, 256, 384])           # width 256, overlap 128
    assert [nearest_window(starts, 256, c) for c in (0, 127, 191, 192, 250, 511)] == [0, 0, 0, 1, 1, 3]
