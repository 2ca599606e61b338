"""Writes ``hits_parity.h5`` and ``hits_parity_pad.h5``, the inputs of
``tests/dedoppler/test_hits_parity.py`` (committed with the ``.dat`` files turboSETI 2.3.2 wrote
from them; this script records how they were made):

    .venv/bin/python tests/dedoppler/data/make_hits_parity.py OUT_DIR [NAME ...]

GBT-like files made with setigen 2.7.0 (blimpy 2.1.4, numpy 2.x; ``FILES`` below): 8192 fine
channels, 2.7939677 Hz / 18.253611 s, ``fch1`` 6000 MHz, ``foff < 0`` (channel ``k`` at
``fch1 - k df``), chi^2 noise of mean 10 (setigen's ``add_noise(x_mean=10, noise_type="chi2")``,
a fixed seed per file), float32, and needles of known setigen SNR and constant drift with a
Gaussian profile one channel wide. setigen's noise is seeded but its stream may change between
setigen or numpy versions: the committed ``.h5`` files (and the ``.dat`` files turboSETI wrote
from them) are the reference, not this script's output on another machine.
"""

from __future__ import annotations

import logging
import os
import sys

import numpy as np

DF_HZ = 2.7939677238464355
DT_S = 18.253611008
FCH1_MHZ = 6000.0
MJD = 60000.0

# Per file: channels, integrations, noise seed, and the needles: (file channel at the first
# integration (channel k is at fch1 - k df; setigen's own frame index runs the other way,
# ascending in frequency), drift rate in Hz/s (+ = rising frequency = falling channel index, since
# foff < 0), setigen SNR).
FILES = {
    # turboSETI: max_drift 1, snr 10, n_coarse_chan 1. Both signs, drift blocks 0..6, a zero drift
    # (never a hit at drift 0: min_drift), a needle starting on the DC channel 4096 (blank_dc), one
    # near max_drift, one near the SNR threshold, two within one tophitsearch window (6200, 6300:
    # only the stronger is a top hit).
    "hits_parity": dict(fchans=8192, tchans=16, seed=2027, needles=(
        (600, 0.05, 40.0), (1300, -0.12, 30.0), (2000, 0.35, 50.0), (2700, -0.62, 60.0),
        (3400, 0.0, 40.0), (4096, -0.2, 40.0), (4800, 0.95, 80.0), (5500, -0.03, 14.0),
        (6200, 0.1, 50.0), (6300, -0.1, 25.0), (7000, 0.5, 25.0))),
    # turboSETI: max_drift 2, snr 8, n_coarse_chan 2. 12 integrations (zero-padded to 16), two
    # coarse channels of 4096 (DC channels 2048 and 6144: a fast needle starting on one, a
    # zero-drift needle sitting on the other), drift blocks up to 12.
    "hits_parity_pad": dict(fchans=8192, tchans=12, seed=2028, needles=(
        (400, 0.3, 30.0), (1200, -1.1, 60.0), (2048, 1.5, 60.0), (2900, -0.07, 9.5),
        (3700, 1.9, 80.0), (4500, -0.45, 25.0), (5300, 0.8, 40.0), (6144, 0.0, 40.0),
        (7000, -1.7, 70.0), (7800, 0.02, 20.0))),
}


def make(path: str, fchans: int, tchans: int, seed: int, needles) -> None:
    import setigen as stg

    name = os.path.splitext(os.path.basename(path))[0].upper()
    frame = stg.Frame(fchans=fchans, tchans=tchans, df=DF_HZ, dt=DT_S, fch1=FCH1_MHZ * 1e6,
                      ascending=False, seed=seed, mjd=MJD, source_name=name)
    frame.add_noise(x_mean=10.0, noise_type="chi2")
    for channel, drift, snr in needles:
        f_start = FCH1_MHZ * 1e6 - channel * DF_HZ  # == frame.get_frequency(fchans - 1 - channel)
        frame.add_signal(stg.constant_path(f_start=f_start, drift_rate=drift),
                         stg.constant_t_profile(level=frame.get_intensity(snr=snr)),
                         stg.gaussian_f_profile(width=DF_HZ),
                         stg.constant_bp_profile(level=1))
    frame.data = frame.data.astype(np.float32)
    logging.getLogger("hdf5plugin").setLevel(logging.ERROR)
    frame.save_h5(path)


if __name__ == "__main__":
    out_dir = sys.argv[1]
    names = sys.argv[2:] or list(FILES)
    for name in names:
        make(os.path.join(out_dir, f"{name}.h5"), **FILES[name])
