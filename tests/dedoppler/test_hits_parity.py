"""tfseti.dedoppler.hitsearch against ``.dat`` files that turboSETI 2.3.2 wrote.

How the references were made (2026-12-07):

* Inputs: ``data/hits_parity.h5`` and ``data/hits_parity_pad.h5``, written by
  ``data/make_hits_parity.py`` (setigen 2.7.0, blimpy 2.1.4, numpy 2, in this project's venv;
  their parameters and needles are listed there): 8192 channels of 2.7939677 Hz, ``foff < 0``,
  18.253611 s integrations, chi^2 noise; ``hits_parity`` has 16 integrations and 11 needles,
  ``hits_parity_pad`` 12 integrations (turboSETI zero-pads them to 16) and 10 needles.
* turboSETI 2.3.2 in its own venv (Python 3.11, numpy 1.26.4, numba 0.68.1, blimpy 2.1.4,
  h5py 3.16.0, hdf5plugin 7.1.0)::

      python3.11 -m venv /tmp/tsvenv && /tmp/tsvenv/bin/pip install "numpy<2" turbo-seti
      cd OUT && /tmp/tsvenv/bin/python -c "import logging; \\
          from turbo_seti.find_doppler.find_doppler import FindDoppler; \\
          FindDoppler('OUT/hits_parity.h5', max_drift=1.0, min_drift=1e-5, snr=10.0, out_dir='OUT', \\
                      n_coarse_chan=1, log_level_int=logging.WARNING).search()"
      # and hits_parity_pad.h5 with max_drift=2.0, snr=8.0, n_coarse_chan=2

  (CPU kernels, float32, ``blank_dc=True``, ``flagging=False``: ``FindDoppler``'s defaults.)
  The ``.dat`` files it wrote are ``data/hits_parity.dat`` (10 hits: the needle at 6300 shares a
  tophitsearch window with the stronger one at 6200) and ``data/hits_parity_pad.dat`` (9 hits over
  two coarse channels: the zero-drift needle sitting on coarse channel 1's DC channel 6144 is
  blanked and drift 0 is never searched, so turboSETI reports nothing there either).

(turboSETI logs "Computed drift rate resolution: 0.0139..." for the 12-integration file, from the
unpadded 11 steps, but searches and writes rates with the padded 15: 0.0102043 Hz/s per bin, as
``hitsearch.drift_resolution`` does.)

Result: every row matches, and the ``.dat`` files we write are byte for byte turboSETI's (hit
number, drift rate, SNR, frequencies, index, window edges, coarse channel, Full_number_of_hits and
the header). The contract tested is the brief's tolerance (same hits, frequency within one
channel, drift within one drift bin, SNR within 5 %) plus exact equality of the integer fields
and of the frequencies and drift rates as written (6 decimals), and SNR within 1e-4.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tfseti.dedoppler import hitsearch as hs
from tfseti.dedoppler.dat import read_dat

DATA = os.path.join(os.path.dirname(__file__), "data")
CASES = {  # file: turboSETI's parameters
    "hits_parity": dict(max_drift=1.0, snr=10.0, n_coarse_chan=1),
    "hits_parity_pad": dict(max_drift=2.0, snr=8.0, n_coarse_chan=2),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request, tmp_path_factory):
    name = request.param
    params = CASES[name]
    hits, header = hs.search_h5(os.path.join(DATA, f"{name}.h5"), **params)
    out = str(tmp_path_factory.mktemp("dat") / f"{name}.dat")
    hs.write_hits_dat(out, hs.dat_header(f"{name}.h5", header, params["max_drift"]), hits)
    return name, params, hits, header, out


def test_same_hits_as_turboseti(case):
    name, params, hits, header, _ = case
    _, ref = read_dat(os.path.join(DATA, f"{name}.dat"))
    resolution = hs.drift_resolution(header["foff"], header["tsamp"], header["time"])
    df_mhz = abs(header["foff"])
    assert len(hits) == len(ref) and len(ref) >= 9
    for hit, row in zip(hits, ref):
        # the brief's tolerance ...
        assert abs(hit.freq_mhz - row["freq"]) <= df_mhz + 1e-6
        assert abs(hit.drift_rate - row["drift"]) <= resolution + 1e-6
        assert hit.snr == pytest.approx(row["snr"], rel=0.05)
        # ... and what we actually get: the same numbers as written
        assert (hit.index, hit.coarse_channel, hit.n_hits) == (row["index"], row["coarse"], row["total"])
        assert [round(v, 6) for v in (hit.drift_rate, hit.freq_mhz, hit.freq_start_mhz, hit.freq_end_mhz)] \
            == [row["drift"], row["freq"], row["freq_start"], row["freq_end"]]
        assert hit.snr == pytest.approx(row["snr"], rel=1e-4)


def test_dat_file_is_turboseti_byte_for_byte(case):
    name, _, _, _, out = case
    with open(out) as ours, open(os.path.join(DATA, f"{name}.dat")) as theirs:
        assert ours.read() == theirs.read()


def test_imports_no_tensorflow():
    code = ("import sys, numpy as np\n"
            "from tfseti.dedoppler import hitsearch as hs\n"
            "hs.coarse_channel_stats(np.ones((16, 8), np.float32))\n"
            "hs.dat_header('a.h5', dict(source_name='S', tstart=6e4, tsamp=1.0, foff=-1e-6, time=16), 1.0)\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
