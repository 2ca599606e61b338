"""Synthetic Breakthrough-Listen *observations*: the six filterbank (``.fil``) or HDF5 (``.h5``)
files of one ABACAD cadence, with needles and RFI at known frequencies.

The rest of ``tfseti.synth`` writes Kaggle snippets (``(6, 273, 256)`` arrays); this module writes
what a telescope writes, so that a search over real observations (``tfseti.scan``) can be tested
and benchmarked on data whose answer is known:

* ``write_observation_cadence``: small and medium cadences built with setigen (``Frame`` per file,
  ``OrderedCadence`` clock, ``Frame.save_h5`` / ``save_fil``); noise either setigen's chi^2 with
  levels drawn from real GBT observations (``noise="obs"``) or fixed chi^2 (``noise="chi2"``).
* ``write_large_cadence``: the same conventions for files of hundreds of MB each, written row by row
  with numpy (never a whole file in memory: a 6 x 179 MB cadence is written with ~11 MB buffers).

Conventions shared by both (and recorded in ``truth.json``):

* Files ``<stem>_<i>_ON.<fmt>`` / ``<stem>_<i>_OFF.<fmt>``, ``i = 0..5`` in ABACAD order; ON files
  0, 2, 4 carry ``source_name = on_source``, OFF files 1, 3, 5 the three ``off_sources``.
* Same ``fch1`` / ``foff`` / ``nchans`` / ``tsamp`` in all six; ``foff < 0`` (as BL files: ``fch1`` is
  the highest frequency, channel ``k`` is at ``fch1 + k * foff``); ``telescope_id`` 6 (GBT),
  ``machine_id`` 10 (BL GUPPI); ``tstart`` of file ``i`` is ``mjd_start + i * (tchans * dt + slew) / 86400``.
* One clock for the whole cadence: a signal at ``freq_mhz`` drifting ``drift_hz_s`` is at
  ``freq_mhz + drift_hz_s * t / 1e6`` MHz at ``t`` seconds after the start of file 0 (setigen's
  convention: the path is evaluated at each integration's start time), and runs on through the OFF
  files and slews whether or not a file holds it; each file holds it or not (``panels``).
* SNR is setigen's: intensity ``snr * noise_std / sqrt(tchans)`` above the noise, one noise level for
  the whole cadence (one receiver), so a signal's SNR is the same in every file that holds it.
* ``cadence.lst``: the six absolute paths, one a line (turboSETI's list format); ``truth.json``: the
  grid, the files and every signal with its frequency/channel at the start of each file.
"""

from __future__ import annotations

import json
import logging
import math
import os
import types
from dataclasses import dataclass
from typing import Literal

import numpy as np

from tfseti.command import command, run_command
from tfseti.config import check_choices, is_int, is_number
from tfseti.io.kaggle import N_PANELS, ON_PANELS

CADENCE_ORDER = "ABACAD"  # files 0, 2, 4 ON the target (A); 1, 3, 5 OFF (B, C, D)
LIST_FILE = "cadence.lst"
TRUTH_FILE = "truth.json"
FORMATS = ("h5", "fil")
NOISES = ("obs", "chi2")
GBT_TELESCOPE_ID = 6
BL_MACHINE_ID = 10
DEFAULT_DF_HZ = 2.7939677238464355  # BL high-frequency-resolution product (2**-20 of 2.9296875 MHz)
DEFAULT_DT_S = 18.253611008
CHI2_MEAN = 10.0  # noise mean of noise="chi2" and of write_large_cadence (setigen's add_noise(x_mean=10))
H5_CHUNK_CHANNELS = 65536  # h5 chunk length along frequency (blimpy's choice for BL high-resolution files)
# Pointing of the synthetic target and of the OFF fields (BL OFFs are ~0.5 deg away from the target).
ON_RAJ_HOURS, ON_DEJ_DEG, OFF_STEP_DEG = 17.7875, -28.3831, 0.5


def _positive(value) -> bool:
    return is_number(value) and math.isfinite(value) and value > 0


def _panels(value, where: str) -> tuple[int, ...]:
    try:
        panels = tuple(value)
    except TypeError:
        panels = None
    if (not panels or not all(is_int(p, 0) and p < N_PANELS for p in panels)
            or len(set(panels)) != len(panels)):
        raise ValueError(f"{where}: expected a non-empty tuple of distinct file indices in 0..5, got {value!r}")
    return tuple(sorted(panels))


@dataclass(frozen=True)
class ObservationNeedle:
    """A narrow-band drifting signal from the target, in the files listed in ``panels``.

    ``freq_mhz``: its frequency at the start of file 0; ``drift_hz_s``: constant drift, on the
    cadence clock (so it keeps drifting through the OFF files and the slews); ``snr``: setigen's
    SNR; ``width_hz``: FWHM of its Gaussian frequency profile; ``panels``: which of the six files
    hold it (ON files 0, 2, 4 by default; a subset to model a needle missing from one ON file, or
    OFF files to build a signal that a search must reject).
    """

    freq_mhz: float
    drift_hz_s: float
    snr: float
    width_hz: float = 10.0
    panels: tuple[int, ...] = ON_PANELS

    def __post_init__(self):
        _check_signal(self, type(self).__name__)
        object.__setattr__(self, "panels", _panels(self.panels, f"{type(self).__name__}.panels"))


@dataclass(frozen=True)
class ObservationRFI:
    """A terrestrial interferer: a line in all six files (ON and OFF alike), on the same clock as a
    needle; ``snr`` (default 50) and ``width_hz`` (FWHM, default 20) as for a needle."""

    freq_mhz: float
    drift_hz_s: float = 0.0
    snr: float = 50.0
    width_hz: float = 20.0

    def __post_init__(self):
        _check_signal(self, type(self).__name__)

    @property
    def panels(self) -> tuple[int, ...]:
        return tuple(range(N_PANELS))


def _check_signal(signal, name: str) -> None:
    if not _positive(signal.freq_mhz):
        raise ValueError(f"{name}.freq_mhz: expected a positive frequency in MHz, got {signal.freq_mhz!r}")
    if not (is_number(signal.drift_hz_s) and math.isfinite(signal.drift_hz_s)):
        raise ValueError(f"{name}.drift_hz_s: expected a finite drift rate in Hz/s, got {signal.drift_hz_s!r}")
    if not _positive(signal.snr):
        raise ValueError(f"{name}.snr: expected a positive SNR, got {signal.snr!r}")
    if not _positive(signal.width_hz):
        raise ValueError(f"{name}.width_hz: expected a positive FWHM in Hz, got {signal.width_hz!r}")


@dataclass(frozen=True)
class CadenceLayout:
    """Grid, timing, names and format of the six files (shared by both writers).

    ``fch1_mhz`` is the centre of channel 0, the *highest* frequency (``foff = -df_hz``), as in BL
    files. ``df_hz * dt_s`` must be >= 0.5: setigen's chi^2 noise has ``4 * round(df * dt)``
    degrees of freedom. ``tchans >= 3``: blimpy refuses ``.h5`` files with fewer integrations.
    """

    fchans: int
    tchans: int = 16
    df_hz: float = DEFAULT_DF_HZ
    dt_s: float = DEFAULT_DT_S
    fch1_mhz: float = 6000.0
    fmt: Literal["h5", "fil"] = "h5"
    on_source: str = "SYNTH_ON"
    off_sources: tuple[str, ...] = ("SYNTH_OFF1", "SYNTH_OFF2", "SYNTH_OFF3")
    slew_s: float = 30.0
    mjd_start: float = 60000.0
    stem: str = "synth"

    def __post_init__(self):
        check_choices(self)
        if not is_int(self.fchans, 16):
            raise ValueError(f"CadenceLayout.fchans: expected an integer >= 16, got {self.fchans!r}")
        if not is_int(self.tchans, 3):
            raise ValueError(f"CadenceLayout.tchans: expected an integer >= 3 (blimpy reads .h5 files "
                             f"with at least 3 integrations), got {self.tchans!r}")
        for name in ("df_hz", "dt_s", "fch1_mhz", "mjd_start"):
            if not _positive(getattr(self, name)):
                raise ValueError(f"CadenceLayout.{name}: expected a positive number, got {getattr(self, name)!r}")
        if not (is_number(self.slew_s) and math.isfinite(self.slew_s) and self.slew_s >= 0):
            raise ValueError(f"CadenceLayout.slew_s: expected a number >= 0, got {self.slew_s!r}")
        if self.df_hz * self.dt_s < 0.5:
            raise ValueError(f"CadenceLayout: df_hz * dt_s must be >= 0.5 (chi^2 noise with 4 * round(df * dt) "
                             f"degrees of freedom), got {self.df_hz} * {self.dt_s}")
        if self.fch1_mhz - self.fchans * self.df_hz * 1e-6 <= 0:
            raise ValueError(f"CadenceLayout: the band of {self.fchans} channels of {self.df_hz} Hz below "
                             f"fch1_mhz={self.fch1_mhz} reaches 0 MHz")
        names = (self.on_source, *tuple(self.off_sources))
        if (len(tuple(self.off_sources)) != 3
                or not all(isinstance(n, str) and n and n.isascii() for n in names)):
            raise ValueError(f"CadenceLayout.off_sources: expected three non-empty ASCII source names (and a "
                             f"non-empty ASCII on_source), got on_source={self.on_source!r}, "
                             f"off_sources={self.off_sources!r}")
        object.__setattr__(self, "off_sources", tuple(self.off_sources))
        if not self.stem or os.sep in self.stem:
            raise ValueError(f"CadenceLayout.stem: expected a file-name stem without '{os.sep}', got {self.stem!r}")

    # -- times and frequencies ----------------------------------------------------------------------
    @property
    def file_seconds(self) -> float:
        return self.tchans * self.dt_s

    def file_starts(self) -> np.ndarray:
        """Start of each file, seconds since the start of file 0."""
        return np.arange(N_PANELS) * (self.file_seconds + self.slew_s)

    def file_mjds(self) -> list[float]:
        return [self.mjd_start + float(s) / 86400.0 for s in self.file_starts()]

    def row_times(self, file: int) -> np.ndarray:
        """``(tchans,)`` start time of each integration of ``file`` on the cadence clock."""
        return self.file_starts()[file] + np.arange(self.tchans) * self.dt_s

    @property
    def foff_mhz(self) -> float:
        return -self.df_hz * 1e-6

    @property
    def band_mhz(self) -> tuple[float, float]:
        """(lowest, highest) channel centre in MHz."""
        return self.fch1_mhz + (self.fchans - 1) * self.foff_mhz, self.fch1_mhz

    def channel(self, freq_mhz):
        """Fractional file channel index of a frequency (channel 0 = ``fch1``)."""
        return (self.fch1_mhz - np.asarray(freq_mhz, dtype=float)) / (self.df_hz * 1e-6)

    # -- files ------------------------------------------------------------------------------------
    def source_name(self, file: int) -> str:
        return self.on_source if file in ON_PANELS else self.off_sources[file // 2]

    def file_name(self, file: int) -> str:
        return f"{self.stem}_{file}_{'ON' if file in ON_PANELS else 'OFF'}.{self.fmt}"

    def header(self, file: int) -> dict:
        """The SIGPROC / BL-h5 header of ``file`` (blimpy's keys; angles as astropy ``Angle``)."""
        from astropy.coordinates import Angle

        off_number = 0 if file in ON_PANELS else file // 2 + 1
        return {
            "telescope_id": GBT_TELESCOPE_ID, "machine_id": BL_MACHINE_ID, "data_type": 1,
            "rawdatafile": self.file_name(file), "source_name": self.source_name(file),
            "src_raj": Angle(ON_RAJ_HOURS, unit="hourangle"),
            "src_dej": Angle(ON_DEJ_DEG + OFF_STEP_DEG * off_number, unit="deg"),
            "az_start": 0.0, "za_start": 0.0,
            "tstart": self.file_mjds()[file], "tsamp": float(self.dt_s),
            "fch1": float(self.fch1_mhz), "foff": self.foff_mhz, "nchans": self.fchans,
            "nbeams": 1, "ibeam": 1, "nbits": 32, "nifs": 1,
        }

    def check_in_band(self, signals, kind: str) -> None:
        """ValueError naming the signal and file when a signal's path leaves the band in a file holding it."""
        low, high = self.band_mhz
        for index, signal in enumerate(signals):
            for file in signal.panels:
                path = signal.freq_mhz + signal.drift_hz_s * self.row_times(file)[[0, -1]] * 1e-6
                if path.min() < low or path.max() > high:
                    raise ValueError(
                        f"{kind}[{index}]: at {signal.freq_mhz} MHz drifting {signal.drift_hz_s} Hz/s it is at "
                        f"{path[0]:.6f}..{path[1]:.6f} MHz in file {file}, outside the band "
                        f"[{low:.6f}, {high:.6f}] MHz")


# -- truth and lists ----------------------------------------------------------------------------------

def _signal_truth(layout: CadenceLayout, signal, level: float) -> dict:
    starts = layout.file_starts()
    freqs = [float(signal.freq_mhz + signal.drift_hz_s * t * 1e-6) for t in starts]
    return {
        "freq_mhz": float(signal.freq_mhz), "drift_hz_s": float(signal.drift_hz_s),
        "snr": float(signal.snr), "width_hz": float(signal.width_hz), "files": list(signal.panels),
        # on the cadence clock: where the path is at each file's start, held or not
        "freq_mhz_per_file": freqs,
        "channel_per_file": [float(c) for c in layout.channel(freqs)],
        "snr_per_file": [float(signal.snr) if f in signal.panels else 0.0 for f in range(N_PANELS)],
        "intensity": float(level),
    }


def _write_truth_and_list(out_dir: str, layout: CadenceLayout, paths: list[str], needles, rfi,
                          levels: dict, noise: str, seed: int, writer: str) -> None:
    truth = {
        "writer": writer, "format": layout.fmt, "noise": noise, "seed": seed,
        "cadence_order": CADENCE_ORDER, "files": [os.path.basename(p) for p in paths],
        "source_names": [layout.source_name(f) for f in range(N_PANELS)],
        "tstart_mjd": layout.file_mjds(), "file_start_s": [float(s) for s in layout.file_starts()],
        "fch1_mhz": float(layout.fch1_mhz), "foff_mhz": layout.foff_mhz, "nchans": layout.fchans,
        "tchans": layout.tchans, "tsamp_s": float(layout.dt_s), "slew_s": float(layout.slew_s),
        "noise_mean": levels["mean"], "noise_std": levels["std"],
        "needles": [_signal_truth(layout, s, levels["signal"](s)) for s in needles],
        "rfi": [_signal_truth(layout, s, levels["signal"](s)) for s in rfi],
    }
    with open(os.path.join(out_dir, TRUTH_FILE), "w") as handle:
        json.dump(truth, handle, indent=1)
    with open(os.path.join(out_dir, LIST_FILE), "w") as handle:
        handle.write("".join(os.path.abspath(p) + "\n" for p in paths))


def _prepare(out_dir: str, layout: CadenceLayout, needles, rfi, overwrite: bool):
    needles, rfi = tuple(needles), tuple(rfi)
    for kind, items, cls in (("needles", needles, ObservationNeedle), ("rfi", rfi, ObservationRFI)):
        for index, item in enumerate(items):
            if not isinstance(item, cls):
                raise ValueError(f"{kind}[{index}]: expected a {cls.__name__}, got {type(item).__name__}")
    layout.check_in_band(needles, "needles")
    layout.check_in_band(rfi, "rfi")
    os.makedirs(out_dir, exist_ok=True)
    paths = [os.path.join(out_dir, layout.file_name(f)) for f in range(N_PANELS)]
    existing = [p for p in (*paths, os.path.join(out_dir, TRUTH_FILE), os.path.join(out_dir, LIST_FILE))
                if os.path.exists(p)]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists; pass overwrite=True (--overwrite) to replace the cadence")
    return needles, rfi, paths


def _chi2_dof(layout: CadenceLayout) -> int:
    return 4 * round(layout.df_hz * layout.dt_s)  # setigen's Frame.chi2_df


def _intensity(snr: float, noise_std: float, tchans: int) -> float:
    return float(snr * noise_std / np.sqrt(tchans))  # setigen's Frame.get_intensity


# -- small / medium cadences with setigen ---------------------------------------------------------------

def write_observation_cadence(out_dir: str, *, fchans: int, tchans: int = 16, df_hz: float = DEFAULT_DF_HZ,
                              dt_s: float = DEFAULT_DT_S, fch1_mhz: float = 6000.0, needles=(), rfi=(),
                              noise: str = "obs", fmt: str = "h5", seed: int = 0, on_source: str = "SYNTH_ON",
                              off_sources=("SYNTH_OFF1", "SYNTH_OFF2", "SYNTH_OFF3"), slew_s: float = 30.0,
                              mjd_start: float = 60000.0, stem: str = "synth",
                              overwrite: bool = False) -> list[str]:
    """Write the six files of one ABACAD cadence with setigen; return their paths (in order).

    ``noise="obs"``: setigen's ``add_noise_from_obs`` (chi^2 with a mean drawn from real GBT
    C-band observations, scaled to ``dt_s``), drawn once for file 0 and used for all six (one
    receiver); ``"chi2"``: chi^2 of mean 10. Also writes ``cadence.lst`` and ``truth.json`` in
    ``out_dir``. The same arguments and ``seed`` give the same data.
    """
    layout = CadenceLayout(fchans=fchans, tchans=tchans, df_hz=df_hz, dt_s=dt_s, fch1_mhz=fch1_mhz, fmt=fmt,
                           on_source=on_source, off_sources=tuple(off_sources), slew_s=slew_s,
                           mjd_start=mjd_start, stem=stem)
    if noise not in NOISES:
        raise ValueError(f"write_observation_cadence.noise: expected one of {' | '.join(map(repr, NOISES))}, "
                         f"got {noise!r}")
    if not is_int(seed, 0):
        raise ValueError(f"write_observation_cadence.seed: expected an integer >= 0, got {seed!r}")
    needles, rfi, paths = _prepare(out_dir, layout, needles, rfi, overwrite)

    import setigen as stg

    from tfseti.synth.cadence import add_signal_on_cadence_clock

    seeds = np.random.SeedSequence(seed).spawn(N_PANELS)
    frames = [stg.Frame(fchans=layout.fchans, tchans=layout.tchans, df=layout.df_hz, dt=layout.dt_s,
                        fch1=layout.fch1_mhz * 1e6, ascending=False, seed=seeds[f],
                        mjd=layout.mjd_start, source_name=layout.source_name(f)) for f in range(N_PANELS)]
    if noise == "obs":
        frames[0].add_noise_from_obs(share_index=True)  # chi^2 around a real GBT level (frame 0's rng)
        x_mean = float(frames[0].noise_mean)
    else:
        x_mean = CHI2_MEAN
        frames[0].add_noise(x_mean=x_mean, noise_type="chi2")
    for frame in frames[1:]:
        frame.add_noise(x_mean=x_mean, noise_type="chi2")
    noise_std = float(frames[0].noise_std)
    # t_overwrite: file i starts i * (tchans * dt + slew) after file 0 (setigen's absolute unix t_start)
    cadence = stg.OrderedCadence(frames, order=CADENCE_ORDER, t_slew=layout.slew_s, t_overwrite=True)

    def level(signal) -> float:
        return _intensity(signal.snr, noise_std, layout.tchans)

    starts = layout.file_starts()
    half_row = 0.5 * layout.dt_s  # row times carry ~1e-7 s of unix rounding: compare half a row away
    for signal in (*needles, *rfi):
        windows = [(starts[f] - half_row, starts[f] + layout.file_seconds - half_row) for f in signal.panels]
        intensity = level(signal)

        def t_profile(t, windows=windows, intensity=intensity):
            t = np.asarray(t, dtype=float)
            inside = np.zeros(t.shape, dtype=bool)
            for start, stop in windows:
                inside |= (t >= start) & (t < stop)
            return np.where(inside, intensity, 0.0)

        add_signal_on_cadence_clock(
            cadence, path=stg.constant_path(f_start=signal.freq_mhz * 1e6, drift_rate=signal.drift_hz_s),
            t_profile=t_profile, f_profile=stg.gaussian_f_profile(width=signal.width_hz),
            bp_profile=stg.constant_bp_profile(level=1), width_hz=signal.width_hz,
            window=(min(w[0] for w in windows), max(w[1] for w in windows)))

    for file, (frame, path) in enumerate(zip(cadence, paths)):
        frame.data = frame.data.astype(np.float32)  # BL files are float32 (setigen keeps float64)
        # setigen's save_* build a blimpy Waterfall from its bundled sample.fil (GBT, telescope_id 6)
        # and, on every save, overwrite tsamp/tstart/nchans/fch1/foff from the frame (tstart =
        # frame.mjd, from frame.t_start); source_name is copied from frame.source_name when the
        # Waterfall is first built. The remaining keys (coordinates, ids, rawdatafile) are the
        # sample's: set them to this cadence's header; they survive the save.
        waterfall = frame.get_waterfall()
        waterfall.logger.setLevel(logging.WARNING)
        header = layout.header(file)
        for key in ("tstart", "tsamp", "fch1", "foff", "nchans"):
            header.pop(key)
        waterfall.header.update(header)
        waterfall.file_header.update(header)
        if not np.isclose(frame.mjd, layout.file_mjds()[file], rtol=0, atol=1e-9):
            raise RuntimeError(f"setigen placed file {file} at MJD {frame.mjd}, expected {layout.file_mjds()[file]}")
        with _quiet("hdf5plugin"):
            (frame.save_h5 if layout.fmt == "h5" else frame.save_fil)(path)

    _write_truth_and_list(out_dir, layout, paths, needles, rfi,
                          {"mean": x_mean, "std": noise_std, "signal": level}, noise, seed, "setigen")
    return paths


class _quiet:
    """Raise a logger to ERROR for a block (hdf5plugin warns that blimpy uses a deprecated argument)."""

    def __init__(self, name: str):
        self.logger = logging.getLogger(name)

    def __enter__(self):
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)

    def __exit__(self, *exc):
        self.logger.setLevel(self.level)


# -- large cadences, streamed -----------------------------------------------------------------------------

def _add_signals_to_row(row: np.ndarray, layout: CadenceLayout, signals, t: float) -> None:
    """Add each (signal, intensity) at time ``t`` (cadence clock) to ``row`` (file channel order),
    with setigen's Gaussian profile, over channels within 4 FWHM + 2 channels of its centre."""
    df_mhz = layout.df_hz * 1e-6
    for signal, intensity in signals:
        centre_mhz = signal.freq_mhz + signal.drift_hz_s * t * 1e-6
        centre = (layout.fch1_mhz - centre_mhz) / df_mhz
        pad = (4.0 * signal.width_hz + 2.0 * layout.df_hz) / layout.df_hz
        lo, hi = max(int(np.floor(centre - pad)), 0), min(int(np.ceil(centre + pad)) + 1, layout.fchans)
        if lo >= hi:
            continue
        offset_hz = (centre - np.arange(lo, hi)) * layout.df_hz  # channel freq - centre, in Hz
        sigma = signal.width_hz / (2 * np.sqrt(2 * np.log(2)))
        row[lo:hi] += (intensity * np.exp(-offset_hz ** 2 / (2 * sigma ** 2))).astype(np.float32)


def _h5_attr(key: str, value):
    """blimpy's h5 attributes: ``src_raj`` in hours, ``src_dej`` in degrees, the rest as is."""
    if key == "src_raj":
        return float(value.hour)
    if key == "src_dej":
        return float(value.deg)
    return value


def write_large_cadence(out_dir: str, *, fchans: int, tchans: int = 16, fmt: str = "fil", needles=(), rfi=(),
                        seed: int = 0, df_hz: float = DEFAULT_DF_HZ, dt_s: float = DEFAULT_DT_S,
                        fch1_mhz: float = 6000.0, on_source: str = "SYNTH_ON",
                        off_sources=("SYNTH_OFF1", "SYNTH_OFF2", "SYNTH_OFF3"), slew_s: float = 30.0,
                        mjd_start: float = 60000.0, stem: str = "synth", overwrite: bool = False) -> list[str]:
    """Write a cadence of any size, one integration (row) at a time; return the six paths.

    Same names, headers, clock, ``cadence.lst`` and ``truth.json`` as ``write_observation_cadence``,
    without setigen (whose Frame holds a file in float64 memory): chi^2 noise of mean 10 with
    setigen's ``4 * round(df * dt)`` degrees of freedom (``2 * Gamma(dof / 2) * 10 / dof``, float32,
    one seeded generator per file), plus the needles and RFI added to the rows they cross with
    setigen's Gaussian profile and SNR. ``.fil``: blimpy's SIGPROC header writer then raw float32
    rows; ``.h5``: the BL layout (``data`` ``(tchans, 1, fchans)`` float32, header as attributes,
    ``CLASS=FILTERBANK``, ``VERSION=1.0``, Bitshuffle+LZ4, chunks ``(1, 1, 65536)``). Memory: a
    few rows, whatever ``fchans``.
    """
    layout = CadenceLayout(fchans=fchans, tchans=tchans, df_hz=df_hz, dt_s=dt_s, fch1_mhz=fch1_mhz, fmt=fmt,
                           on_source=on_source, off_sources=tuple(off_sources), slew_s=slew_s,
                           mjd_start=mjd_start, stem=stem)
    if not is_int(seed, 0):
        raise ValueError(f"write_large_cadence.seed: expected an integer >= 0, got {seed!r}")
    needles, rfi, paths = _prepare(out_dir, layout, needles, rfi, overwrite)
    dof = _chi2_dof(layout)
    noise_std = CHI2_MEAN * np.sqrt(2.0 / dof)  # setigen's x_std for chi^2 noise

    def level(signal) -> float:
        return _intensity(signal.snr, noise_std, layout.tchans)

    seeds = np.random.SeedSequence(seed).spawn(N_PANELS)
    row = np.empty(layout.fchans, dtype=np.float32)
    for file, path in enumerate(paths):
        rng = np.random.default_rng(seeds[file])
        present = [(s, level(s)) for s in (*needles, *rfi) if file in s.panels]
        with _RowWriter(path, layout, layout.header(file)) as writer:
            for k, t in enumerate(layout.row_times(file)):
                rng.standard_gamma(dof / 2.0, out=row, dtype=np.float32)
                row *= np.float32(2.0 * CHI2_MEAN / dof)
                _add_signals_to_row(row, layout, present, float(t))
                writer.write(k, row)
    _write_truth_and_list(out_dir, layout, paths, needles, rfi,
                          {"mean": CHI2_MEAN, "std": float(noise_std), "signal": level}, "chi2", seed, "large")
    return paths


class _RowWriter:
    """Write a filterbank file one float32 row at a time (``.fil`` or BL ``.h5``)."""

    def __init__(self, path: str, layout: CadenceLayout, header: dict):
        self.path, self.layout, self.header = path, layout, header

    def __enter__(self):
        if self.layout.fmt == "fil":
            from blimpy.io.sigproc import generate_sigproc_header

            self.handle = open(self.path, "wb")
            self.handle.write(generate_sigproc_header(types.SimpleNamespace(header=self.header)))
        else:
            import h5py
            import hdf5plugin

            self.handle = h5py.File(self.path, "w")
            self.handle.attrs["CLASS"] = "FILTERBANK"
            self.handle.attrs["VERSION"] = "1.0"
            shape = (self.layout.tchans, 1, self.layout.fchans)
            self.dset = self.handle.create_dataset(
                "data", shape=shape, dtype=np.float32, chunks=(1, 1, min(H5_CHUNK_CHANNELS, self.layout.fchans)),
                **hdf5plugin.Bitshuffle(nelems=0, cname="lz4"))
            for axis, label in enumerate(("time", "feed_id", "frequency")):
                self.dset.dims[axis].label = label
            for key, value in self.header.items():
                self.dset.attrs[key] = _h5_attr(key, value)
        return self

    def write(self, k: int, row: np.ndarray) -> None:
        if self.layout.fmt == "fil":
            self.handle.write(row.tobytes())
        else:
            self.dset[k, 0, :] = row

    def __exit__(self, *exc):
        self.handle.close()


# -- a demo set and the command line ------------------------------------------------------------------

DEFAULT_NEEDLES = ((-0.3, 30.0), (0.0, 45.0), (0.25, 60.0))  # (drift Hz/s, SNR)
DEFAULT_RFI = ((0.0, 100.0), (-0.05, 80.0))


def default_signals(layout: CadenceLayout) -> tuple[tuple[ObservationNeedle, ...], tuple[ObservationRFI, ...]]:
    """A demo set: three needles (drifts -0.3, 0, +0.25 Hz/s; SNR 30, 45, 60) centred, at mid-cadence,
    at 1/6, 1/2 and 5/6 of the band, and two RFI lines (0 and -0.05 Hz/s) at 1/3 and 2/3 of it."""
    mid = 0.5 * (layout.file_starts()[-1] + layout.file_seconds)

    def freq(drift: float, fraction: float) -> float:
        channel = fraction * (layout.fchans - 1) + drift * mid / layout.df_hz  # where it starts
        return float(layout.fch1_mhz - channel * layout.df_hz * 1e-6)

    needles = tuple(ObservationNeedle(freq(drift, fraction), drift, snr)
                    for (drift, snr), fraction in zip(DEFAULT_NEEDLES, (1 / 6, 1 / 2, 5 / 6)))
    rfi = tuple(ObservationRFI(freq(drift, fraction), drift, snr)
                for (drift, snr), fraction in zip(DEFAULT_RFI, (1 / 3, 2 / 3)))
    try:
        layout.check_in_band(needles, "needles")
        layout.check_in_band(rfi, "rfi")
    except ValueError as err:
        raise ValueError(f"the default demo signals do not fit in {layout.fchans} channels ({err}); "
                         f"use more channels or give --needle / --rfi") from None
    return needles, rfi


SIGNAL_HELP = "FREQ_MHZ:DRIFT_HZ_S:SNR[:WIDTH_HZ]"


def _signal_arg(cls):
    def parse(text: str):
        import argparse

        try:
            values = [float(v) for v in text.split(":")]
            if len(values) not in (3, 4):
                raise ValueError("expected 3 or 4 numbers")
            return cls(*values)
        except (ValueError, TypeError) as err:
            raise argparse.ArgumentTypeError(f"expected {SIGNAL_HELP} (e.g. 5999.995:-0.3:40), got {text!r}: "
                                             f"{err}") from None
    return parse


def build_parser():
    import argparse

    from tfseti.console import non_negative_int, positive_int

    parser = argparse.ArgumentParser(
        prog="python -m tfseti.synth.observation",
        description="Write a synthetic Breakthrough-Listen observation cadence: six .h5 or .fil files "
                    "(ABACAD, GBT headers) with needles and RFI at known frequencies, cadence.lst and "
                    "truth.json. Without --needle/--rfi: a demo set of 3 needles and 2 RFI lines.")
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument("--fchans", type=positive_int, required=True, help="fine channels per file")
    parser.add_argument("--tchans", type=positive_int, default=16, help="integrations per file (default 16)")
    parser.add_argument("--fch1", type=float, default=6000.0, metavar="MHZ",
                        help="frequency of channel 0, the highest (default 6000)")
    parser.add_argument("--format", choices=FORMATS, default="h5", help="file format (default h5)")
    parser.add_argument("--noise", choices=NOISES, default=None,
                        help="obs: chi^2 at a level drawn from real GBT data (setigen; default), chi2: "
                             "chi^2 of mean 10 (the only noise of --large)")
    parser.add_argument("--needle", type=_signal_arg(ObservationNeedle), action="append", default=[],
                        metavar=SIGNAL_HELP, help="a needle in the ON files 0, 2, 4 (repeatable); FREQ_MHZ "
                                                  "at the start of file 0; WIDTH_HZ default 10")
    parser.add_argument("--rfi", type=_signal_arg(ObservationRFI), action="append", default=[],
                        metavar=SIGNAL_HELP, help="an RFI line in all six files (repeatable); WIDTH_HZ default 20")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    parser.add_argument("--large", action="store_true",
                        help="stream the files row by row (numpy chi^2 noise), for cadences of GBs")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing cadence in --out")
    return parser


@command(FileExistsError, ValueError)
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    noise = args.noise or ("chi2" if args.large else "obs")
    if args.large and noise != "chi2":
        raise ValueError("--noise obs needs setigen's writer; --large writes chi2 noise")
    common = dict(fchans=args.fchans, tchans=args.tchans, fch1_mhz=args.fch1, fmt=args.format,
                  seed=args.seed, overwrite=args.overwrite)
    needles, rfi = tuple(args.needle), tuple(args.rfi)
    if not needles and not rfi:
        needles, rfi = default_signals(CadenceLayout(fchans=args.fchans, tchans=args.tchans,
                                                     fch1_mhz=args.fch1, fmt=args.format))
    if args.large:
        paths = write_large_cadence(args.out, needles=needles, rfi=rfi, **common)
    else:
        paths = write_observation_cadence(args.out, needles=needles, rfi=rfi, noise=noise, **common)
    for path in paths:
        print(path)
    print(f"cadence list: {os.path.join(args.out, LIST_FILE)}")
    print(f"truth ({len(needles)} needles, {len(rfi)} RFI): {os.path.join(args.out, TRUTH_FILE)}")
    return 0


if __name__ == "__main__":
    run_command(main)
