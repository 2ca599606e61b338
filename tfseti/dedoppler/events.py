"""Cadence events as turboSETI 2.3.2's ``find_event_pipeline`` makes them (filter levels 1, 2, 3),
in plain Python (no pandas, no TensorFlow): the ON/OFF step after the per-file hit search of
:mod:`tfseti.dedoppler.hitsearch`.

Input: the hit tables of the files of one or more cadences -- ``.dat`` files read back
(:func:`read_dat`) or hit lists of :mod:`tfseti.dedoppler.hitsearch` (:func:`dat_file_from_hits`,
which goes through the ``.dat`` text so that the numbers are the 6-decimal ones turboSETI reads).
Output: event rows, one per (event, hit), with turboSETI's CSV columns (:data:`COLUMNS`) plus
``index``; :func:`write_events_csv` writes them byte for byte as turboSETI's ``to_csv`` does, so its
``plot_event_pipeline`` reads them.

What turboSETI does (``find_event/find_event.py`` and ``find_event_pipeline.py``), step by step:

1. **Files.** ``find_event_pipeline`` sorts the files by ``tstart`` (``sortby_tstart``; stable),
   cuts them into cadences of ``number_in_cadence`` files (leftover files are ignored) and runs
   ``find_events`` on each; the event rows of all cadences are concatenated.
2. **ON / OFF.** With ``on_off_first='ON'`` the files ``0, 2, 4, ...`` of a cadence are ON
   (``ceil(n / 2)`` ONs), with ``'OFF'`` the files ``1, 3, ...`` (``floor(n / 2)``). With
   ``on_source_complex_cadence=NAME`` a file is ON when its ``source_name`` is ``NAME`` (exact match).
   ON files with hits are numbered ``on_table_1, on_table_2, ...`` in order (the ``status``
   column), *skipping files without hits*; likewise OFF files.
3. **Rows.** Each ON hit becomes a row (its index: the running row number over the ON hits of the
   cadence, 0-based) with the ``.dat`` header's fields as text (``MJD``, ``RA``, ``DEC``,
   ``DELTAT``, ``DELTAF``, ``max_drift_rate``, ``obs_length``), ``Source`` upper-cased, and
   ``delta_t = (MJD - MJD_1) * 3600 * 24`` seconds from the first ``on_table_1`` file. All ON rows
   must have one source (after ``strip("'B")``), else ``ValueError``.
4. **Level 1** (every level): drop ``DriftRate == 0`` unless ``check_zero_drift``; keep
   ``|SNR| > |SNR_cut|``, ``|DriftRate| > |min_drift_rate|``, ``|DriftRate| < |max_drift_rate|``
   (each only when given; all strict). ``filter_threshold=1`` returns these rows.
5. **Level 2**: ``RFI_in_range`` = the number of OFF hits (all of them: no SNR or drift filter)
   with ``low < Freq_off < high``, ``[low, high] = Freq -/+ |max_drift_rate| obs_length / 1e6``
   (the header's *maximum* drift rate, or ``DELTAF / DELTAT`` when it is 0: :func:`rfi_window`);
   rows with 0 are kept.
6. **Level 3**: the level-2 rows of each ON file (``on_table_1..N``, ``N`` the number of ON files;
   no events when one of them is empty). For each row of ``on_table_1``, ``in_n_ons`` counts the
   other ON tables holding at least one row with ``low < Freq < high``, where
   ``[low, high] = Freq + r delta_t / 1e6 -/+ |r| 2 obs_length / 1e6`` (:func:`follow_window`;
   ``r`` the row's ``DriftRate`` or ``DELTAF / DELTAT`` when 0, ``delta_t`` that of the table's
   first row). Rows with ``in_n_ons == N - 1`` start events: for each of them, in order, and for
   each ON table in order, the table's rows inside the follow window get ``Hit_ID =
   SOURCE_<index of the starting row>``, and are added unless the ``TopHitNum`` of the *first* of
   them was already seen in this cadence (turboSETI's ``not_yet_seen``).

turboSETI's quirks are kept, because the CSV is what its other tools read:

* The level-3 dedup compares ``TopHitNum`` only, and ``.dat`` hit numbers restart at 1 in every
  file, so the rows of ON2 / ON3 whose first ``TopHitNum`` equals one already added (from any
  file) are dropped: an event may lack its ON2 / ON3 rows, or its ON1 row (the reference
  ``f3_snr10.csv`` has both). A hit may also appear in two events, and rows of ``on_table_1``
  inside an event's window join it even when they are not in all ONs.
* ``in_n_ons`` is filled only on ``on_table_1`` rows (``''`` on the others); ``RFI_in_range`` is
  ``''`` at level 1.
* A zero drift rate is followed at ``DELTAF / DELTAT`` (negative for ``foff < 0``): a zero-drift
  line present in every ON is *not* found in the later ONs (it has not moved, the window has).
* With ``on_source_complex_cadence``, the ON/OFF pattern is taken from the files in the order
  given, *before* the ``tstart`` sort, and the first cadence's pattern is used for every cadence.

Deviations (none changes a CSV turboSETI would write):

* Where turboSETI returns ``None`` (no hits, no events) this returns ``[]``; where it logs an error
  and returns ``None`` (a complex-cadence source not in the list, files whose ``fch1`` / ``foff``
  differ by more than 1 % or whose ``nchans`` differ) this raises ``ValueError``. The frequency
  check runs only when every file has ``fch1`` / ``foff`` / ``nchans`` (turboSETI reads them from
  the ``.h5`` next to each ``.dat``; here they are optional fields of :class:`DatFile`).
* ``on_off_first`` other than ``'ON'`` / ``'OFF'``, ``filter_threshold`` other than 1 / 2 / 3 and
  ``number_in_cadence < 1`` are ``ValueError`` (turboSETI reads anything but ``'ON'`` as ``'OFF'``
  and any level above 2 as 3).
* A level-3 window that holds no row (only possible with ``obs_length`` 0 or ``DELTAF`` 0) is
  skipped (turboSETI fails with ``IndexError``).
* ``tstart`` / ``source_name`` come from :class:`DatFile` (default: the ``.dat``'s ``MJD`` and
  ``Source``); turboSETI reads them from the ``.h5`` header. They agree for ``.dat`` files written
  by turboSETI or :mod:`tfseti.dedoppler.dat` except for a source name with ``:`` (written as ``_``).

``tests/dedoppler/test_events_parity.py`` checks the CSVs against turboSETI 2.3.2's on a six-file
cadence (levels 1-3, zero drift, SNR and drift cuts, complex cadence).
"""

from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from tfseti.io.atomic import atomic_open

# turboSETI's event CSV columns (after the unnamed index column), in order.
HIT_COLUMNS = ("TopHitNum", "DriftRate", "SNR", "Freq", "ChanIndx", "FreqStart", "FreqEnd",
               "CoarseChanNum", "FullNumHitsInRange")
COLUMNS = HIT_COLUMNS + ("FileID", "Source", "MJD", "RA", "DEC", "DELTAT", "DELTAF",
                         "max_drift_rate", "obs_length", "Hit_ID", "status", "in_n_ons",
                         "RFI_in_range", "delta_t")
# .dat field positions of HIT_COLUMNS (read_dat skips Corrected_Frequency, SEFD, SEFD_freq).
_DAT_FIELDS = (0, 1, 2, 3, 5, 6, 7, 10, 11)
_INT_COLUMNS = {"TopHitNum", "ChanIndx", "CoarseChanNum", "FullNumHitsInRange"}
RTOL_DIFF = 0.01  # find_event_pipeline's frequency-consistency tolerance


@dataclass(frozen=True)
class DatFile:
    """One file's hit table as ``find_event.read_dat`` reads it.

    Header fields are kept as the text after the last ``:`` (turboSETI writes them verbatim in
    the CSV); ``hits`` are dicts of :data:`HIT_COLUMNS` (ints / floats). ``tstart`` (MJD, for the
    sort) and ``source_name`` (for a complex cadence) stand for the ``.h5`` header turboSETI reads
    (``None``: the ``.dat``'s ``MJD`` / ``Source``); ``fch1`` / ``foff`` (MHz) / ``nchans`` for its
    frequency-consistency check (skipped unless every file has them).
    """

    file_id: str
    source: str
    mjd: str
    ra: str
    dec: str
    deltat: str
    deltaf: str
    max_drift_rate: str
    obs_length: str
    hits: tuple = ()
    path: str = ""
    tstart: float | None = None
    source_name: str | None = None
    fch1: float | None = None
    foff: float | None = None
    nchans: int | None = None

    @property
    def start(self) -> float:
        return float(self.mjd) if self.tstart is None else float(self.tstart)

    @property
    def name(self) -> str:
        return self.source if self.source_name is None else self.source_name


def parse_dat(text: str, path: str = "", **extra) -> DatFile:
    """A ``.dat`` file's text as ``find_event.read_dat`` parses it (header lines by position,
    values after the last ``:``; hit lines from line 10, split on whitespace). ``extra``: the
    optional :class:`DatFile` fields (``tstart``, ``source_name``, ``fch1``, ``foff``, ``nchans``)."""
    lines = text.splitlines(keepends=True)
    where = path or "<.dat text>"
    if len(lines) < 9:
        raise ValueError(f"{where}: a .dat file has 9 header lines, this one has {len(lines)}")

    def value(line: str, position: int | None = None) -> str:
        line = line.strip()
        if position is not None:
            line = line.split("\t")[position]
        return line.split(":")[-1].strip()

    try:
        head = dict(file_id=value(lines[1]), source=value(lines[3]), mjd=value(lines[4], 0),
                    ra=value(lines[4], 1), dec=value(lines[4], 2), deltat=value(lines[5], 0),
                    deltaf=value(lines[5], 1), max_drift_rate=value(lines[5], 2),
                    obs_length=value(lines[5], 3))
    except IndexError as exc:  # turboSETI: "Out-of-date DAT file format"
        raise ValueError(f"{where}: header lines 5-6 need MJD/RA/DEC and "
                         f"DELTAT/DELTAF/max_drift_rate/obs_length (an out-of-date .dat?)") from exc
    hits = []
    for number, line in enumerate(lines[9:], 10):
        fields = re.split(r"\s+", re.sub(r"[\t]", " ", line).strip())
        if len(fields) < 12:
            raise ValueError(f"{where}, line {number}: expected 12 fields, got {len(fields)}: {line!r}")
        hits.append({c: (int(fields[k]) if c in _INT_COLUMNS else float(fields[k]))
                     for c, k in zip(HIT_COLUMNS, _DAT_FIELDS)})
    return DatFile(hits=tuple(hits), path=path, **head, **extra)


def read_dat(path: str, **extra) -> DatFile:
    """:func:`parse_dat` of the file at ``path``."""
    with open(path) as handle:
        return parse_dat(handle.read(), path=path, **extra)


def dat_file_from_hits(hits: Sequence, header: str, path: str = "", **extra) -> DatFile:
    """The :class:`DatFile` of :mod:`tfseti.dedoppler.hitsearch` hits (``Hit`` objects, in ``.dat``
    order) under ``header`` (:func:`tfseti.dedoppler.hitsearch.dat_header`): the ``.dat`` text that
    :func:`~tfseti.dedoppler.hitsearch.write_hits_dat` would write, parsed back, so that the
    numbers are the 6-decimal ones turboSETI reads from the file."""
    from tfseti.dedoppler.dat import hit_line

    lines = [hit_line(k, h.drift_rate, h.snr, h.freq_mhz, h.index, h.freq_start_mhz, h.freq_end_mhz,
                      h.coarse_channel, h.n_hits) for k, h in enumerate(hits, 1)]
    return parse_dat(header + "".join(lines), path=path, **extra)


def _drift_or_step(drift: float, row: dict) -> float:
    """turboSETI: a drift rate of 0 is replaced by ``DELTAF / DELTAT`` (Hz/s, signed)."""
    return float(row["DELTAF"]) / float(row["DELTAT"]) if drift == 0.0 else drift


def rfi_window(row: dict) -> tuple[float, float]:
    """Level 2's open interval (MHz) of OFF frequencies that veto ON row ``row``
    (``calc_freq_range(hit)``): ``Freq -/+ |max_drift_rate| obs_length / 1e6``, with
    ``DELTAF / DELTAT`` for a ``max_drift_rate`` of 0."""
    drift = _drift_or_step(float(row["max_drift_rate"]), row)
    freq = float(row["Freq"])
    delta_t = 0.0 + float(row["obs_length"])
    return freq - abs(drift) * delta_t / 1e6, freq + abs(drift) * delta_t / 1e6


def follow_window(row: dict, delta_t: float) -> tuple[float, float]:
    """Level 3's open interval (MHz) where row ``row`` of ``on_table_1`` is looked for in an ON
    table starting ``delta_t`` s after it (``calc_freq_range(hit, delta_t, max_dr=False,
    follow=True)``): centre ``Freq + r delta_t / 1e6``, half-width ``|r| 2 obs_length / 1e6``,
    ``r`` the row's ``DriftRate`` (``DELTAF / DELTAT`` when 0)."""
    drift = _drift_or_step(float(row["DriftRate"]), row)
    freq = float(row["Freq"]) + drift * delta_t / 1e6
    width = 2.0 * float(row["obs_length"])
    return freq - abs(drift) * width / 1e6, freq + abs(drift) * width / 1e6


def _inside(rows: Iterable[dict], window: tuple[float, float]) -> list[dict]:
    low, high = window
    return [r for r in rows if low < r["Freq"] < high]


def _on_flags(count: int, on_off_first: str, complex_cadence) -> list[bool]:
    if complex_cadence:
        return [int(complex_cadence[i]) != 0 for i in range(count)]
    if on_off_first not in ("ON", "OFF"):
        raise ValueError(f"events: on_off_first must be 'ON' or 'OFF', got {on_off_first!r}")
    return [(i % 2 == 0) == (on_off_first == "ON") for i in range(count)]


def find_events(files: Sequence[DatFile], *, filter_threshold: int = 3, check_zero_drift: bool = False,
                on_off_first: str = "ON", complex_cadence: Sequence[int] | None = None,
                snr_cut: float | None = None, min_drift_rate: float | None = None,
                max_drift_rate: float | None = None) -> list[dict]:
    """turboSETI's ``find_events`` on the files of one cadence, in the order given: the rows (dicts
    with ``index`` and :data:`COLUMNS`) of ``filter_threshold`` 1, 2 or 3 (see the module notes;
    ``complex_cadence``: a 1/0 per file, 1 = ON, instead of the alternating pattern).
    ``[]`` when turboSETI returns ``None``."""
    if filter_threshold not in (1, 2, 3):
        raise ValueError(f"events: filter_threshold must be 1, 2 or 3, got {filter_threshold!r}")
    on_flags = _on_flags(len(files), on_off_first, complex_cadence)
    if complex_cadence:
        number_of_ons = sum(int(complex_cadence[i]) for i in range(len(files)))
    else:
        number_of_ons = (len(files) + 1) // 2 if on_off_first == "ON" else len(files) // 2

    on_rows: list[dict] = []
    off_freqs: list[float] = []
    on_count = 0
    for dat, is_on in zip(files, on_flags):
        if not dat.hits:
            continue
        if not is_on:
            off_freqs += [h["Freq"] for h in dat.hits]
            continue
        on_count += 1
        for hit in dat.hits:
            on_rows.append(dict(index=len(on_rows), **hit, FileID=dat.file_id, Source=dat.source.upper(),
                                MJD=dat.mjd, RA=dat.ra, DEC=dat.dec, DELTAT=dat.deltat,
                                DELTAF=dat.deltaf, max_drift_rate=dat.max_drift_rate,
                                obs_length=dat.obs_length, Hit_ID="", status=f"on_table_{on_count}",
                                in_n_ons="", RFI_in_range=""))
    if not on_rows:
        return []
    sources = {row["Source"].strip("'B") for row in on_rows}
    if len(sources) > 1:
        raise ValueError(f"events: the ON files of a cadence have several sources {sorted(sources)}: "
                         "check the file list, on_off_first or the complex cadence")
    ref_time = float(on_rows[0]["MJD"])
    for row in on_rows:
        row["delta_t"] = (float(row["MJD"]) - ref_time) * 3600 * 24

    rows = on_rows if check_zero_drift else [r for r in on_rows if r["DriftRate"] != 0.0]
    if snr_cut is not None:
        rows = [r for r in rows if abs(r["SNR"]) > abs(float(snr_cut))]
    if min_drift_rate is not None:
        rows = [r for r in rows if abs(r["DriftRate"]) > abs(float(min_drift_rate))]
    if max_drift_rate is not None:
        rows = [r for r in rows if abs(r["DriftRate"]) < abs(float(max_drift_rate))]
    if not rows or filter_threshold == 1:
        return [dict(r) for r in rows]

    for row in rows:
        low, high = rfi_window(row)
        row["RFI_in_range"] = sum(1 for f in off_freqs if low < f < high)
    rows = [r for r in rows if r["RFI_in_range"] == 0]
    if not rows or filter_threshold == 2:
        return [dict(r) for r in rows]

    tables = [[r for r in rows if r["status"] == f"on_table_{i}"] for i in range(1, number_of_ons + 1)]
    if any(not t for t in tables):
        return []
    first_on = tables[0]
    for row in first_on:
        row["in_n_ons"] = sum(1 for table in tables[1:]
                              if _inside(table, follow_window(row, table[0]["delta_t"])))
    events: list[dict] = []
    seen: set[int] = set()
    for hit in [r for r in first_on if r["in_n_ons"] == number_of_ons - 1]:
        for table in tables:
            members = _inside(table, follow_window(hit, table[0]["delta_t"]))
            if not members or members[0]["TopHitNum"] in seen:
                continue
            seen.add(members[0]["TopHitNum"])
            events += [dict(m, Hit_ID=f"{hit['Source']}_{hit['index']}") for m in members]
    return events


def _close_enough(x: float, y: float) -> bool:
    """``np.isclose(x, y, rtol=0.01)``."""
    return abs(float(x) - float(y)) <= 1e-8 + RTOL_DIFF * abs(float(y))


def find_event_pipeline(files: Sequence[DatFile | str], *, filter_threshold: int = 3,
                        check_zero_drift: bool = False, on_off_first: str = "ON",
                        number_in_cadence: int = 6, on_source_complex_cadence: str | None = None,
                        sortby_tstart: bool = True, snr_cut: float | None = None,
                        min_drift_rate: float | None = None,
                        max_drift_rate: float | None = None) -> list[dict]:
    """turboSETI's ``find_event_pipeline`` on ``files`` (:class:`DatFile` or ``.dat`` paths, the
    ``.lst``'s lines): the event rows of every cadence of ``number_in_cadence`` files, concatenated
    (``[]``: none). Keywords as turboSETI's (``snr_cut`` is its ``SNR_cut``); write them with
    :func:`write_events_csv`."""
    files = [read_dat(f) if isinstance(f, (str, os.PathLike)) else f for f in files]
    if number_in_cadence < 1:
        raise ValueError(f"events: number_in_cadence must be >= 1, got {number_in_cadence}")
    names = [f.name for f in files]  # in the order given (turboSETI's source_name_list)
    if sortby_tstart:
        files = sorted(files, key=lambda f: f.start)

    complex_cadence = None
    if on_source_complex_cadence:
        matcher = next((f for f in files if f.name == on_source_complex_cadence), None)
        if matcher is None:
            raise ValueError(f"events: source {on_source_complex_cadence!r} is not in this complex "
                             f"cadence (sources: {names})")
        complex_cadence = [1 if name == on_source_complex_cadence else 0 for name in names]
    else:
        matcher = files[0] if files else None
    checked = [f for f in files if not on_source_complex_cadence or f.name == on_source_complex_cadence]
    if matcher is not None and all(None not in (f.fch1, f.foff, f.nchans) for f in files):
        for f in checked:
            if (not _close_enough(f.fch1, matcher.fch1) or not _close_enough(f.foff, matcher.foff)
                    or f.nchans != matcher.nchans):
                raise ValueError(f"events: inconsistent frequency range ({f.path or f.file_id}: fch1 "
                                 f"{f.fch1}, foff {f.foff}, nchans {f.nchans}; first file: fch1 "
                                 f"{matcher.fch1}, foff {matcher.foff}, nchans {matcher.nchans}): "
                                 "this does not look like a cadence of related files")

    rows: list[dict] = []
    for k in range(len(files) // number_in_cadence):
        rows += find_events(files[k * number_in_cadence:(k + 1) * number_in_cadence],
                            filter_threshold=filter_threshold, check_zero_drift=check_zero_drift,
                            on_off_first=on_off_first, complex_cadence=complex_cadence,
                            snr_cut=snr_cut, min_drift_rate=min_drift_rate, max_drift_rate=max_drift_rate)
    return rows


def default_csv_name(files: Sequence[DatFile], *, filter_threshold: int = 3, snr_cut=None,
                     check_zero_drift: bool = False) -> str:
    """turboSETI's CSV path when ``csv_name`` is not given: the folder of the first file after the
    ``tstart`` sort, the ``source_name`` of the first file as given, ``_f<level>_snr<SNR_cut>``
    (``None`` when not given) and ``_zero`` with ``check_zero_drift``."""
    first = sorted(files, key=lambda f: f.start)[0]
    prefix = os.path.dirname(first.path) + "/" + files[0].name
    return f"{prefix}_f{filter_threshold}_snr{snr_cut}{'_zero' if check_zero_drift else ''}.csv"


def _cell(value):
    """pandas writes NaN as an empty field (and floats as ``repr``, as ``csv`` does)."""
    return "" if isinstance(value, float) and math.isnan(value) else value


def write_events_csv(path: str, rows: Sequence[dict]) -> None:
    """The event rows as turboSETI's ``DataFrame.to_csv`` writes them: an unnamed index column,
    then :data:`COLUMNS`; floats as Python's ``repr``, ``''`` as empty, minimal quoting, ``\\n``
    line ends. Written to a temporary file, then renamed. turboSETI writes no file when there are
    no events; this writes the header line alone."""
    with atomic_open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("",) + COLUMNS)
        for row in rows:
            writer.writerow([_cell(row["index"])] + [_cell(row[c]) for c in COLUMNS])


def read_events_csv(path: str) -> list[dict]:
    """An events CSV (turboSETI's or :func:`write_events_csv`'s) as rows of text: ``index`` and
    :data:`COLUMNS`, each a ``str``."""
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        if tuple(header[1:]) != COLUMNS:
            raise ValueError(f"{path}: not an events CSV (columns {header})")
        return [dict(zip(("index",) + COLUMNS, line)) for line in reader]


def events(rows: Sequence[dict]) -> dict[str, list[dict]]:
    """The rows grouped by ``Hit_ID`` (an event per key, in first-seen order; level 3 only: levels
    1 and 2 leave ``Hit_ID`` empty)."""
    out: dict[str, list[dict]] = {}
    for row in rows:
        out.setdefault(row["Hit_ID"], []).append(row)
    return out


__all__ = ["COLUMNS", "HIT_COLUMNS", "DatFile", "parse_dat", "read_dat", "dat_file_from_hits",
           "rfi_window", "follow_window", "find_events", "find_event_pipeline", "default_csv_name",
           "write_events_csv", "read_events_csv", "events"]
