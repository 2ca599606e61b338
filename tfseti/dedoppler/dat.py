"""turboSETI ``.dat`` hit tables: one per observation file, byte for byte in turboSETI's layout, so
``find_event_pipeline`` and the tools built on it read the scan's hits.

Layout (turboSETI 2.3 ``find_doppler/file_writers.py``; ``find_event.read_dat`` reads the header
by line position and splits hit lines on whitespace)::

    # -------------------------- o --------------------------
    # File ID: A1.h5 
    # -------------------------- o --------------------------
    # Source:TARGET
    # MJD: 60000.000000000000	RA: 17h47m15s	DEC: -28d22m59.16s
    # DELTAT:  18.253611	DELTAF(Hz):  -2.793968	max_drift_rate:   0.520000	obs_length: 292.057776
    # --------------------------
    # Top_Hit_# 	Drift_Rate 	SNR 	Uncorrected_Frequency 	...	Full_number_of_hits 	
    # --------------------------
    000001	  0.193881	 43.029655	   5999.999098	   5999.999098	323	   5999.999645	...

A hit line per detection in that file: drift rate (Hz/s, + = rising frequency), SNR, the
frequency (MHz) of the path at the file's first integration (``Uncorrected_Frequency``; the
``Corrected_Frequency`` is the same: no barycentric correction), its channel ``Index``
(``Freq = fch1 + Index * foff``), ``freq_start`` / ``freq_end`` (the edges of the searched
window, in channel order), SEFD and its frequency (0: not measured), the coarse channel and the
number of hits in the file. Every hit line ends with a tab; there is no blank line (``read_dat``
fails on one). A value after the last ``:`` of a header line is what ``read_dat`` takes, so
``:`` in a source name is written as ``_``; RA/DEC are written as ``17h47m15s`` / ``-28d22m59s``.

The scan's rows are each file's own hits: turboSETI's per-file search of that file alone
(``tfseti.scan.filehits``, through ``tfseti.dedoppler.hitsearch``, which writes them with
:func:`hit_line` in turboSETI's order and with its ``Full_number_of_hits``), not the windows'
cadence-wide paths. ``find_event_pipeline`` (``tfseti.dedoppler.events``) then applies its ON/OFF
filters to them as to turboSETI's own hits. (Until issue 27 a file's rows were the projections of
the hit windows' straight cadence paths onto it; a signal off such a line was in no ``.dat``.)
"""

from __future__ import annotations

import re

import numpy as np

from tfseti.io.atomic import write_text

DAT_COLUMNS = ("Top_Hit_#", "Drift_Rate", "SNR", "Uncorrected_Frequency", "Corrected_Frequency",
               "Index", "freq_start", "freq_end", "SEFD", "SEFD_freq", "Coarse_Channel_Number",
               "Full_number_of_hits")
_RULE = "# -------------------------- o --------------------------\n"
_SHORT_RULE = "# --------------------------\n"


def _angle(value, unit: str) -> str:
    """RA (hours) / DEC (degrees) as ``17h47m15s`` / ``-28d22m59.16s`` (no ``:``)."""
    if value is None or value == "":
        return "0h0m0s" if unit == "hourangle" else "0d0m0s"
    from astropy.coordinates import Angle

    angle = value if isinstance(value, Angle) else Angle(value, unit=unit)
    return angle.to_string(unit=unit, sep="hms" if unit == "hourangle" else "dms")


def header_lines(file_id: str, source: str, mjd: float, ra, dec, tsamp: float, foff_mhz: float,
                 max_drift_hz_s: float, obs_length_s: float) -> str:
    source = str(source).replace(":", "_").strip() or "UNKNOWN"
    return (_RULE + f"# File ID: {file_id} \n" + _RULE
            + f"# Source:{source}\n"
            + f"# MJD: {mjd:18.12f}\tRA: {_angle(ra, 'hourangle')}\tDEC: {_angle(dec, 'deg')}\n"
            + f"# DELTAT: {tsamp:10.6f}\tDELTAF(Hz): {foff_mhz * 1e6:10.6f}\t"
            + f"max_drift_rate: {max_drift_hz_s:10.6f}\tobs_length: {obs_length_s:10.6f}\n"
            + _SHORT_RULE
            + "# " + "".join(f"{c} \t" for c in DAT_COLUMNS) + "\n"
            + _SHORT_RULE)


def hit_line(number: int, drift: float, snr: float, freq: float, index: int, freq_start: float,
             freq_end: float, coarse: int, total: int) -> str:
    return (f"{number:06d}\t{drift:10.6f}\t{snr:10.6f}\t{freq:14.6f}\t{freq:14.6f}\t{index:d}\t"
            f"{freq_start:14.6f}\t{freq_end:14.6f}\t0.0\t{0.0:14.6f}\t{coarse:d}\t{total:d}\t\n")


def write_dat(path: str, header: str, hits: list[dict]) -> None:
    """``hits``: dicts with drift, snr, freq, index, freq_start, freq_end, coarse (sorted by index)."""
    hits = sorted(hits, key=lambda h: (h["index"], -h["snr"]))
    lines = [hit_line(n, h["drift"], h["snr"], h["freq"], h["index"], h["freq_start"], h["freq_end"],
                      h["coarse"], len(hits)) for n, h in enumerate(hits, 1)]
    write_text(path, header + "".join(lines))


def read_dat(path: str) -> tuple[dict, list[dict]]:
    """``(header, hits)`` of a ``.dat`` file, read as ``find_event.read_dat`` reads it (by line
    position; values after the last ``:``), with a clear error for anything it would choke on."""
    with open(path) as handle:
        lines = handle.readlines()
    if len(lines) < 9:
        raise ValueError(f"{path}: a .dat file has 9 header lines, this one has {len(lines)} lines")

    def value(line: str, field: int | None = None) -> str:
        text = line.strip()
        if field is not None:
            text = text.split("\t")[field]
        return text.split(":")[-1].strip()

    header = {"file_id": value(lines[1]), "source": value(lines[3]),
              "mjd": float(value(lines[4], 0)), "ra": value(lines[4], 1), "dec": value(lines[4], 2),
              "tsamp": float(value(lines[5], 0)), "foff_hz": float(value(lines[5], 1)),
              "max_drift_rate": float(value(lines[5], 2)), "obs_length": float(value(lines[5], 3))}
    hits = []
    for number, line in enumerate(lines[9:], 10):
        fields = re.split(r"\s+", line.replace("\t", " ").strip())
        if len(fields) != len(DAT_COLUMNS):
            raise ValueError(f"{path}, line {number}: expected {len(DAT_COLUMNS)} fields, got "
                             f"{len(fields)}: {line!r}")
        hits.append({"number": int(fields[0]), "drift": float(fields[1]), "snr": float(fields[2]),
                     "freq": float(fields[3]), "index": int(fields[5]),
                     "freq_start": float(fields[6]), "freq_end": float(fields[7]),
                     "coarse": int(fields[10]), "total": int(fields[11])})
    return header, hits


def path_channel(info: dict, row: dict, panel: int, seconds=0.0):
    """Channel of a window row's best path ``seconds`` after the start of file ``panel``, on the
    cadence clock of the search (files ``rows + gap_rows`` integrations apart, from
    ``hit_channel`` at the start of file 1)."""
    offset = panel * (info["rows"] + info["gap_rows"]) * info["tsamp"] + np.asarray(seconds)
    return row["hit_channel"] + row["drift_rate_hz_s"] * offset / (info["foff"] * 1e6)
