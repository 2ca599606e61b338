"""tfseti.dedoppler.events against the event CSVs that turboSETI 2.3.2's ``find_event_pipeline``
wrote from the same ``.dat`` files.

How the references were made (2026-12-07), all by ``data/events/make_events_parity.py``::

    .venv/bin/python tests/dedoppler/data/events/make_events_parity.py OUT /tmp/tsvenv/bin/python

* Inputs (``data/events/*.dat``, committed): two six-file cadences written line by line with
  ``tfseti.dedoppler.dat.header_lines`` / ``hit_line`` (the script's ``CASES`` and ``_edge_hits``), and
  a header-only ``.h5`` next to each (setigen 2.7.0 / blimpy 2.1.4 in this project's venv; not
  committed: ``find_event_pipeline`` reads only ``tstart``, ``source_name``, ``fch1``, ``foff``,
  ``nchans`` from them).

  - ``on1 off1 on2 off2 on3 off3`` (ABACAD, TESTSTAR / OFF_A / OFF_B / OFF_C, 16384 channels of
    2.79 Hz, files 330 s apart, max_drift_rate 2 Hz/s): needles in all three ONs with both drift
    signs, one in ON2 only, RFI in ON and OFF, zero-drift lines in all six files and in the ONs
    only, an all-ON needle at SNR 8, an OFF hit just outside the RFI window, a needle whose ON2 hit
    has the mirrored drift, two needles within each other's follow windows, a hit in OFF2 only,
    and RFI that shifts the hit numbers of ON2 / ON3 (so turboSETI's TopHitNum dedup shows).
  - ``edge_*`` (EDGESTAR): windows on 6-decimal frequencies (DELTAT 18.75 s, DELTAF -3.75 Hz,
    max_drift_rate 1 Hz/s, obs_length 300 s, files 1350 s apart): hits exactly on, and 1 Hz
    inside, the follow windows (both drift signs, zero drift) and the RFI window; an SNR equal to
    SNR_cut and drift rates equal to the min / max cuts.

* turboSETI 2.3.2 in its own venv (Python 3.11.7, numpy 1.26.4, pandas 3.0.6, blimpy 2.1.4,
  h5py 3.16.0, hdf5plugin 7.1.0), per configuration ``NAME`` of the script's ``CONFIGS``::

      find_event_pipeline("OUT/NAME.lst", csv_name="OUT/NAME.csv", saving=True, **CONFIGS[NAME])

  (``NAME.lst``: the ``.dat`` paths in the configuration's ``order``; keywords: ``filter_threshold``
  1/2/3, ``SNR_cut`` 10 or None, ``check_zero_drift``, ``min_drift_rate`` / ``max_drift_rate``,
  ``on_source_complex_cadence`` TESTSTAR and OFF_B, ``on_off_first='OFF'`` with the list given as
  BACADA and ``sortby_tstart=False``, and the ABACAD list twice: two cadences.) The CSVs it wrote
  are ``data/events/NAME.csv``.

* End to end (``e2e_*``): six setigen ``.h5`` files (committed; 1024 channels x 16 integrations,
  chi^2 noise; a needle in the three ONs, RFI in all six files, a needle in ON2 only, a zero-drift
  line in the ONs), searched by turboSETI's ``FindDoppler(h5, max_drift=0.5, min_drift=1e-5,
  snr=10, n_coarse_chan=1, out_dir=OUT).search()`` (its ``.dat`` files are committed), then
  ``find_event_pipeline`` at levels 1, 2, 3 (``SNR_cut=10``). The test runs
  ``hitsearch.search_h5`` + :func:`events.dat_file_from_hits` + :func:`events.find_event_pipeline`
  on the same ``.h5`` files (given in reverse order: sorted back by ``tstart``).

Result: for all 18 ``.dat``-input configurations our CSV is byte for byte turboSETI's (same rows, same order,
same event ids, same index, same text of every field), and so the same hits are grouped into the
same events; end to end, our hits are turboSETI's ``.dat`` rows and our event CSVs are its CSVs,
byte for byte, at the three levels. In the edge cadence turboSETI's windows exclude the hits that sit exactly on their
edges (follow and RFI windows alike) and include those 1 Hz inside; ours do the same.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from tfseti.dedoppler import events as ev
from tfseti.dedoppler import hitsearch as hs

DATA = os.path.join(os.path.dirname(__file__), "data", "events")


def _maker():
    spec = importlib.util.spec_from_file_location("make_events_parity",
                                                  os.path.join(DATA, "make_events_parity.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKER = _maker()


def _run(name: str) -> list[dict]:
    kwargs = dict(MAKER.CONFIGS[name])
    order = kwargs.pop("order", MAKER.NAMES)
    kwargs["snr_cut"] = kwargs.pop("SNR_cut", None)
    return ev.find_event_pipeline([os.path.join(DATA, f"{n}.dat") for n in order], **kwargs)


def _grouping(rows):
    return {hit_id: [(r["FileID"], r["status"], str(r["TopHitNum"]), str(r["index"])) for r in members]
            for hit_id, members in ev.events(rows).items()}


@pytest.mark.parametrize("name", sorted(MAKER.CONFIGS))
def test_events_csv_is_turboseti_byte_for_byte(name, tmp_path):
    rows = _run(name)
    ref_path = os.path.join(DATA, f"{name}.csv")
    assert rows, f"{name}: turboSETI found events, we found none"
    out = tmp_path / f"{name}.csv"
    ev.write_events_csv(str(out), rows)
    ref = ev.read_events_csv(ref_path)
    assert _grouping(rows) == _grouping(ref)  # same hits in the same events
    with open(ref_path) as theirs:
        assert out.read_text() == theirs.read()


def _ids(name):
    return {(r["status"], r["TopHitNum"]) for r in ev.read_events_csv(os.path.join(DATA, f"{name}.csv"))}


def test_reference_cases_came_out_as_designed():
    """The cases of the reference cadence, as turboSETI decided them (and so as we do)."""
    f1, f2, f3 = (ev.read_events_csv(os.path.join(DATA, f"f{k}_snr10.csv")) for k in (1, 2, 3))

    def freqs(rows):
        return {round(float(r["Freq"]), 3) for r in rows if r["status"] == "on_table_1"}

    assert 5999.986 in freqs(f1) - freqs(f2)        # RFI in ON1 + OFF1: level 1 only
    assert 5999.976 not in freqs(f1)                # SNR 8 < SNR_cut
    assert 5999.983 not in freqs(f1)                # zero drift dropped
    by_event = ev.events(f3)
    assert sorted(by_event) == ["TESTSTAR_0", "TESTSTAR_1", "TESTSTAR_7", "TESTSTAR_9"]
    # the +0.5 Hz/s needle: one row per ON; the -1.2 one keeps only ON3 (TopHitNum dedup)
    assert [r["status"] for r in by_event["TESTSTAR_0"]] == ["on_table_1", "on_table_2", "on_table_3"]
    assert [r["status"] for r in by_event["TESTSTAR_1"]] == ["on_table_3"]
    assert len(by_event["TESTSTAR_7"]) == 6         # two needles 10 channels apart, one event
    nocut = ev.events(ev.read_events_csv(os.path.join(DATA, "f3_nocut.csv")))
    assert "TESTSTAR_5" in nocut                     # the SNR-8 needle without SNR_cut
    # edge cadence: on the edge -> out, 1 Hz inside -> in
    assert sorted(ev.events(ev.read_events_csv(os.path.join(DATA, "edge_f3.csv")))) == \
        ["EDGESTAR_11", "EDGESTAR_2", "EDGESTAR_6", "EDGESTAR_7"]
    assert "EDGESTAR_12" in ev.events(ev.read_events_csv(os.path.join(DATA, "edge_f3_zero.csv")))
    assert _ids("f3_complex") == _ids("f3_snr10")


@pytest.fixture(scope="module")
def e2e_files():
    """hitsearch on the six end-to-end ``.h5`` files, as :class:`events.DatFile` (with the ``.h5``
    header's tstart / source_name / fch1 / foff / nchans, as turboSETI reads them)."""
    params = MAKER.E2E_SEARCH
    files = []
    for name in MAKER.E2E_NAMES:
        path = os.path.join(DATA, f"{name}.h5")
        hits, header = hs.search_h5(path, **params)
        files.append(ev.dat_file_from_hits(hits, hs.dat_header(path, header, params["max_drift"]),
                                           path=os.path.join(DATA, f"{name}.dat"), tstart=header["tstart"],
                                           source_name=header["source_name"], fch1=header["fch1"],
                                           foff=header["foff"], nchans=header["nchans"]))
    return files


@pytest.mark.slow  # hitsearch's Numba compilation: ~5-13 s on a shared 2-core machine
def test_end_to_end_hits_are_turboseti_dat(e2e_files):
    for dat in e2e_files:
        assert dat == ev.read_dat(dat.path, tstart=dat.tstart, source_name=dat.source_name,
                                  fch1=dat.fch1, foff=dat.foff, nchans=dat.nchans)
    assert [len(d.hits) for d in e2e_files] == [3, 1, 4, 1, 3, 1]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MAKER.E2E_CONFIGS))
def test_end_to_end_events_are_turboseti(name, e2e_files, tmp_path):
    kwargs = dict(MAKER.E2E_CONFIGS[name])
    kwargs.pop("order")
    kwargs["snr_cut"] = kwargs.pop("SNR_cut")
    rows = ev.find_event_pipeline(e2e_files[::-1], **kwargs)  # sorted back by tstart
    out = tmp_path / f"{name}.csv"
    ev.write_events_csv(str(out), rows)
    with open(os.path.join(DATA, f"{name}.csv")) as theirs:
        assert out.read_text() == theirs.read()
