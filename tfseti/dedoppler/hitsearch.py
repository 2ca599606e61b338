"""turboSETI's per-file hit search of one coarse channel, in numpy + the Taylor tree of
:mod:`tfseti.dedoppler.taylor` (no TensorFlow): the hits of a ``.dat`` file.

This is ``find_doppler.search_coarse_channel`` / ``hitsearch`` / ``tophitsearch`` and
``FileWriter.report_tophit`` of turboSETI 2.3.2 (CPU kernels, ``precision=1``: float32,
``flagging=False``, ``blank_dc=True``, no shoulders), step by step. For a spectrogram ``(T, F)``
(rows = integrations, columns = the fine channels of one coarse channel in file order: channel
``i`` at ``fch1 + i foff``):

1. **Padding.** ``T`` is padded with zero rows to ``T_pad``, the next power of two
   (``DATAH5.load_data``); the drift resolution is ``|foff| / ((T_pad - 1) tsamp)`` Hz/s
   (``drift_rate_resolution``: one channel over the padded observation).
2. **Statistics** of the zero-drift spectrum ``s = spectra.sum(axis=0)`` (``comp_stats``): the
   median of ``s``, and the standard deviation of the values of ``s`` between its 5th and 95th
   percentiles (both inclusive), both float32. They are taken *before* the DC channel is blanked.
3. **DC spike** (``blank_dc``): channel ``F // 2`` is replaced, in every row, by the mean of
   channels ``F // 2 - 1`` and ``F // 2 + 1``.
4. **Early exit**: no hits when ``(max(spectra) T_pad - median) / std < snr`` (not even a line of
   the brightest pixel could reach the threshold).
5. **Drift grid.** ``nblock = floor(max_drift / (resolution T_pad))``; for ``drift_block`` ``b``
   from ``-nblock`` to ``nblock``: if ``b <= 0``, the negative tree (band flipped) with rows
   rolled by ``|b|`` channels per row, rates ``resolution g`` for the integers
   ``g = b (T_pad - 1) - (T_pad - 1) .. b (T_pad - 1)`` ascending, those ``>= -max_drift``; if
   ``b >= 0``, the positive tree rolled by ``b``, ``g = b (T_pad - 1) .. b (T_pad - 1) + T_pad - 1``,
   those ``<= max_drift``. (Block 0 is searched with both signs, so drift 0 is visited twice, and
   the rate ``|g| = |b| (T_pad - 1)`` is visited by blocks ``b`` and ``b -/+ 1``.) Tree drift
   ``d = |g| - |b| (T_pad - 1)`` of :func:`tfseti.dedoppler.taylor.taylor_tree` (``negative``,
   ``drift_block = |b|``) is that path: it starts at channel ``f`` in row 0. The rate written is
   ``resolution g`` in Hz/s, negated when ``foff < 0`` (+ = rising frequency).
6. **hitsearch**, for every grid rate with ``|rate| > min_drift``, in that order: the drift sum at
   every start channel is normalised, ``snr = (sum - median) / std`` (float32); every value
   ``> snr`` (the threshold) counts in ``Full_number_of_hits``; per channel, a value above the
   threshold that beats (strictly) the best so far replaces it and its rate (``maxsnr``,
   ``maxdrift``, float32; ties keep the first).
7. **tophitsearch**: ``distance = 2 ceil(max_drift / resolution)`` channels; channel ``i`` with
   ``maxsnr[i] > 0`` is a top hit unless some channel in ``[max(0, i - distance),
   min(F, i + distance))`` has a larger ``maxsnr`` -- with turboSETI's quirk kept: a larger value
   at the first channel of that window does not count (turboSETI tests
   ``(maxsnr[lo:hi] > maxsnr[i]).nonzero()[0].any()``, and position 0 of the slice is "false").
   Hits come out in channel order.
8. **Row**: ``Index`` is ``i`` (the channel within the coarse channel), the frequency
   ``FCNTR + (i - F / 2) foff`` with ``FCNTR`` the centre of the coarse channel (``chan_freq``),
   ``freq_start`` / ``freq_end`` the frequencies of the window's first and last channel
   (``lo``, ``hi - 1``), SEFD and SEFD_freq 0, and ``Full_number_of_hits`` the count of step 6
   for this coarse channel.

Deviations from turboSETI (all at the band edges or in float rounding):

* Band edges: here channels past the edge read as zero (a path that leaves the band sums its
  in-band part). turboSETI's ``flt`` leaves the last ``T_pad`` channels of each tree stage partly
  summed, so its drift sums that start within ``2 T_pad`` channels of the upper edge of the band
  (of the lower edge, for the flipped negative search) differ, and its ``drift_block`` rows are
  ``np.roll``-ed, so paths of block ``b`` wrap round the band within ``|b| T`` more channels of
  that edge. Hits away from the coarse channel's edges are the same; near them, turboSETI's can
  differ (artefacts of those partial or wrapped sums), and so can ``Full_number_of_hits``. Seen
  on three 8192-channel files with needles starting 3-40 channels from either edge (leaving the
  band or not): the same rows, and on one of them 174 crossings counted by turboSETI against
  168 here.
* ``FCNTR`` is ``fch1 + foff F / 2`` here; turboSETI computes it from the coarse channel's
  ``f_start`` / ``f_stop`` (the same number up to ~1e-12 MHz of float64 rounding).
* A zero (or non-finite) ``std`` -- a constant spectrum -- gives no hits here (turboSETI divides by
  it).

Steps 5 and 6 are one Numba kernel (:func:`tfseti.dedoppler.taylor.hitsearch_fused`): per block of channels, each tree
of the plan is built in a cache-sized buffer and searched at once, so the search costs about its
``2 nblock + 2`` trees and never holds a tree of the whole coarse channel (memory: the spectra and
three per-channel arrays).

Everything else (float32 normalisation, the order in which rates are visited, strict
comparisons, the window rule and its quirk, the total count) follows turboSETI, and
``tests/dedoppler/test_hits_parity.py`` checks it against a ``.dat`` that turboSETI 2.3.2 wrote.

API: :func:`search_coarse_channel` searches one spectrogram (one coarse channel of one file; a
scan calls it per coarse channel, or per window of one with ``stats`` / ``channel_offset``, see
its notes and :func:`window_margin`);
:func:`search_h5` runs it over the coarse channels of a BL ``.h5`` file as ``FindDoppler.search``
does; :func:`write_hits_dat` writes a ``.dat`` in turboSETI's row order and counts (through
:mod:`tfseti.dedoppler.dat`'s line formats); :meth:`Hit.dat_row` is the dict that
:func:`tfseti.dedoppler.dat.write_dat` takes (which numbers ``Full_number_of_hits`` as its own row count).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from tfseti.dedoppler.taylor import CHUNK, hitsearch_fused, padded_time

# FindDoppler's defaults (turboSETI 2.3.2).
DEFAULT_MAX_DRIFT = 10.0
DEFAULT_MIN_DRIFT = 0.00001
DEFAULT_SNR = 25.0


@dataclass(frozen=True)
class Hit:
    """One top hit: a ``.dat`` row (turboSETI's fields) and where it is in the search.

    ``drift_rate`` Hz/s (+ = rising frequency), ``snr``, ``freq_mhz`` (the path's frequency at the
    first integration: ``Uncorrected_Frequency`` = ``Corrected_Frequency``), ``index`` (its channel
    within the searched spectrogram: ``Index``), ``freq_start_mhz`` / ``freq_end_mhz`` (the
    window's first / last channel), ``coarse_channel``, ``n_hits`` (``Full_number_of_hits``: every
    (rate, channel) above the threshold in this coarse channel), ``channel`` (``channel_offset +
    index``: the file channel), ``drift_index`` (the signed rate in units of the drift resolution,
    in channel order: ``+`` = rising channel index).
    """

    drift_rate: float
    snr: float
    freq_mhz: float
    index: int
    freq_start_mhz: float
    freq_end_mhz: float
    coarse_channel: int
    n_hits: int
    channel: int
    drift_index: int

    def dat_row(self) -> dict:
        """The dict :func:`tfseti.dedoppler.dat.write_dat` writes (its keys)."""
        return {"drift": self.drift_rate, "snr": self.snr, "freq": self.freq_mhz, "index": self.index,
                "freq_start": self.freq_start_mhz, "freq_end": self.freq_end_mhz,
                "coarse": self.coarse_channel}

    def as_dict(self) -> dict:
        return asdict(self)


def drift_resolution(foff_mhz: float, tsamp_s: float, time: int) -> float:
    """turboSETI's ``drift_rate_resolution`` in Hz/s: ``|foff| / ((T_pad - 1) tsamp)``."""
    n = padded_time(time)
    if n < 2:
        raise ValueError(f"hit search: needs at least 2 integrations, got {time}")
    return (1e6 * abs(float(foff_mhz))) / ((n - 1) * float(tsamp_s))


def comp_stats(spectrum) -> tuple[np.float32, np.float32]:
    """turboSETI's ``comp_stats``: median of ``spectrum`` and std of its values within the 5th..95th
    percentiles (inclusive), both float32."""
    spectrum = np.asarray(spectrum)
    low, median, high = np.percentile(spectrum, [5, 50, 95])
    kept = spectrum[(spectrum <= high)]
    kept = kept[kept >= low]
    return np.float32(median), np.float32(kept.std())


def coarse_channel_stats(spectra) -> tuple[np.float32, np.float32]:
    """turboSETI's ``(median, std)`` of a coarse channel ``(T, F)``: :func:`comp_stats` of its
    zero-drift spectrum ``spectra.sum(axis=0)`` (float32; float64 when ``T`` is not a power of two,
    as turboSETI's zero padding is float64)."""
    x = np.asarray(spectra, dtype=np.float32)
    total = x.sum(axis=0) if padded_time(x.shape[0]) == x.shape[0] else x.astype(np.float64).sum(axis=0)
    return comp_stats(total)


def blank_dc_channel(spectra) -> None:
    """turboSETI's ``blank_dc``, in place: channel ``F // 2`` of ``spectra`` ``(T, F)`` becomes the
    mean of its two neighbours (nothing for ``F < 3``)."""
    width = spectra.shape[-1]
    if width >= 3:
        mid = width // 2
        spectra[..., mid] = (spectra[..., mid - 1] + spectra[..., mid + 1]) / 2


def window_margin(time: int, max_drift: float, foff_mhz: float, tsamp_s: float) -> int:
    """Channels at each side of a window whose hits can differ from the whole coarse channel's:
    the tophitsearch window (``2 ceil(max_drift / resolution)``) plus the longest path
    (``ceil(max_drift / resolution)``)."""
    return 3 * math.ceil(max_drift / drift_resolution(foff_mhz, tsamp_s, time))


def drift_plan(time: int, max_drift: float, resolution: float) -> list[tuple[int, bool, np.ndarray]]:
    """The drift grid in turboSETI's search order: ``(drift_block, negative, g)`` per tree, ``g``
    the signed grid integers searched from it (rate ``resolution g`` in channel order), in order.
    Tree drift ``d`` of grid integer ``g`` is ``|g| - |drift_block| (T_pad - 1)``."""
    n = padded_time(time)
    nblock = int(np.floor(max_drift / (resolution * n)))
    plan = []
    for block in range(-nblock, nblock + 1):
        start = (n - 1) * block
        if block <= 0:
            g = np.arange(start + 1 - n, start + 1)
            plan.append((block, True, g[resolution * g >= -max_drift]))
        if block >= 0:
            g = np.arange(start, start + n)
            plan.append((block, False, g[resolution * g <= max_drift]))
    return plan


def _top_hits(maxsnr: np.ndarray, distance: int) -> list[int]:
    """tophitsearch's channels, in order (with its first-of-window quirk)."""
    width = maxsnr.shape[0]
    out = []
    for i in np.nonzero(maxsnr > 0)[0]:
        lo, hi = max(0, i - distance), min(width, i + distance)
        # turboSETI: (maxsnr[lo:hi] > maxsnr[i]).nonzero()[0].any() -- position lo never counts.
        if lo + 1 < hi and np.any(maxsnr[lo + 1:hi] > maxsnr[i]):
            continue
        out.append(int(i))
    return out


def search_coarse_channel(spectra, *, fch1_mhz: float, foff_mhz: float, tsamp_s: float,
                          max_drift: float = DEFAULT_MAX_DRIFT, min_drift: float = DEFAULT_MIN_DRIFT,
                          snr: float = DEFAULT_SNR, coarse_channel: int = 0, channel_offset: int = 0,
                          blank_dc: bool = True, stats: tuple[float, float] | None = None) -> list[Hit]:
    """turboSETI's top hits of one coarse channel's spectrogram ``(T, F)`` (see the module notes).

    ``fch1_mhz``: the frequency of the spectrogram's channel 0; ``foff_mhz``: the channel step
    (negative for BL files); ``tsamp_s``: the integration time; ``max_drift`` / ``min_drift`` (Hz/s)
    and ``snr`` as ``FindDoppler``'s; ``coarse_channel`` is written in the rows and
    ``channel_offset`` (the file channel of column 0) only fills :attr:`Hit.channel`. The input is
    not modified.

    A window of a coarse channel instead of the whole of it (a scan's unit of reading): pass the
    coarse channel's ``stats=coarse_channel_stats(whole)`` and ``blank_dc=False`` (blank the
    coarse channel's DC channel before cutting windows, with :func:`blank_dc_channel`); the hits
    on the window's channels farther than :func:`window_margin` from its edges are then the
    coarse channel's, and those nearer may not be (keep them from the neighbouring window;
    ``n_hits`` counts the window's crossings only). Windows that overlap by twice the margin,
    each keeping its inner channels, give the coarse channel's hits.
    """
    x = np.asarray(spectra)
    if x.ndim != 2 or min(x.shape) < 1:
        raise ValueError(f"search_coarse_channel: expected a spectrogram (time, freq), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"search_coarse_channel: expected float spectra, got dtype {x.dtype}")
    if x.shape[0] < 2:
        raise ValueError("search_coarse_channel: turboSETI cannot search a single integration")
    if not (max_drift >= 0 and min_drift >= 0 and min_drift <= max_drift):
        raise ValueError(f"search_coarse_channel: need 0 <= min_drift <= max_drift, got "
                         f"min_drift={min_drift}, max_drift={max_drift}")
    if not (np.isfinite(foff_mhz) and foff_mhz != 0 and np.isfinite(tsamp_s) and tsamp_s > 0):
        raise ValueError(f"search_coarse_channel: need a non-zero foff and tsamp > 0, got "
                         f"foff_mhz={foff_mhz}, tsamp_s={tsamp_s}")
    time, width = x.shape
    n = padded_time(time)
    resolution = drift_resolution(foff_mhz, tsamp_s, time)
    x = np.array(x, dtype=np.float32)  # a copy: DC blanking writes to it
    median, std = coarse_channel_stats(x) if stats is None else (np.float32(stats[0]), np.float32(stats[1]))
    if not (np.isfinite(std) and std > 0):
        return []
    if blank_dc:
        blank_dc_channel(x)
    peak = np.max(x) if n == time else max(np.max(x), 0)  # turboSETI's max includes the zero padding
    if (peak * n - median) / std < snr:
        return []

    maxsnr = np.zeros(width, np.float32)
    maxdrift = np.zeros(width, np.float32)
    maxindex = np.zeros(width, np.int64)
    flip = foff_mhz < 0
    blocks, negatives, row_lo, rows, grids = [], [], [0], [], []
    for block, negative, g in drift_plan(time, max_drift, resolution):
        g = g[np.abs(resolution * g) > min_drift]
        if g.size == 0:
            continue
        blocks.append(abs(block))
        negatives.append(negative)
        rows.append(np.abs(g) - abs(block) * (n - 1))
        grids.append(g)
        row_lo.append(row_lo[-1] + g.size)
    n_hits = 0
    if blocks:
        grid = np.concatenate(grids).astype(np.int64)
        rates = ((-resolution if flip else resolution) * grid).astype(np.float32)
        n_hits = int(hitsearch_fused(x[None], np.array(blocks, np.int64), np.array(negatives),
                                      np.array(row_lo, np.int64), np.concatenate(rows).astype(np.int64),
                                      rates, grid, median, std, np.float32(snr),
                                      maxsnr, maxdrift, maxindex, CHUNK))

    distance = 2 * math.ceil(max_drift / abs(resolution))
    fcntr = float(fch1_mhz) + float(foff_mhz) * width / 2

    def freq(i: int) -> float:
        return fcntr + (i - width / 2) * float(foff_mhz)

    hits = []
    for i in _top_hits(maxsnr, distance):
        lo, hi = max(0, i - distance), min(width, i + distance)
        hits.append(Hit(drift_rate=float(maxdrift[i]), snr=float(maxsnr[i]), freq_mhz=freq(i), index=i,
                        freq_start_mhz=freq(lo), freq_end_mhz=freq(hi - 1),
                        coarse_channel=int(coarse_channel), n_hits=n_hits,
                        channel=int(channel_offset) + i, drift_index=int(maxindex[i])))
    return hits


def read_h5(path: str) -> tuple[np.ndarray, dict]:
    """A BL ``.h5`` file (``data`` ``(T, 1, F)`` with its header as attributes, bitshuffle
    compressed): ``(spectra (T, F) float32, header dict)``."""
    import h5py
    import hdf5plugin  # noqa: F401  (registers the bitshuffle filter)

    with h5py.File(path, "r") as handle:
        data = handle["data"]
        if data.ndim != 3 or data.shape[1] != 1:
            raise ValueError(f"{path}: expected data of shape (time, 1, freq), got {data.shape}")
        header = {k: (v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v)
                  for k, v in data.attrs.items() if k != "DIMENSION_LABELS"}
        spectra = np.asarray(data[:, 0, :], dtype=np.float32)
    return spectra, header


def search_h5(path: str, *, n_coarse_chan: int = 1, max_drift: float = DEFAULT_MAX_DRIFT,
              min_drift: float = DEFAULT_MIN_DRIFT, snr: float = DEFAULT_SNR,
              blank_dc: bool = True) -> tuple[list[Hit], dict]:
    """``FindDoppler(path, n_coarse_chan=...).search()`` without the files: ``(hits, header)``, the
    hits of every coarse channel in order (each its own ``fine = nchans // n_coarse_chan``
    channels, searched alone). Reads the whole file into memory."""
    spectra, header = read_h5(path)
    nchans = spectra.shape[1]
    if n_coarse_chan < 1 or nchans % n_coarse_chan:
        raise ValueError(f"search_h5: {nchans} channels do not split into {n_coarse_chan} coarse channels")
    fine = nchans // n_coarse_chan
    hits: list[Hit] = []
    for c in range(n_coarse_chan):
        hits += search_coarse_channel(spectra[:, c * fine:(c + 1) * fine],
                                      fch1_mhz=header["fch1"] + c * fine * header["foff"],
                                      foff_mhz=header["foff"], tsamp_s=header["tsamp"],
                                      max_drift=max_drift, min_drift=min_drift, snr=snr,
                                      coarse_channel=c, channel_offset=c * fine, blank_dc=blank_dc)
    header = dict(header, time=spectra.shape[0])
    return hits, header


def dat_header(file_name: str, header: dict, max_drift: float) -> str:
    """turboSETI's ``.dat`` header (``FileWriter``) for a file read by :func:`read_h5` /
    :func:`search_h5`: ``File ID`` is the file's stem + ``.h5`` and ``obs_length`` the unpadded
    ``time * tsamp``."""
    import os

    from tfseti.dedoppler.dat import header_lines

    stem = os.path.basename(file_name)
    for ext in (".h5", ".fits", ".fil"):
        stem = stem.replace(ext, "")
    return header_lines(f"{stem}.h5", header["source_name"], header["tstart"], header.get("src_raj"),
                        header.get("src_dej"), header["tsamp"], header["foff"], max_drift,
                        header["time"] * header["tsamp"])


def write_hits_dat(path: str, header: str, hits: list[Hit]) -> None:
    """A ``.dat`` with ``hits`` in the given order (turboSETI's: coarse channel, then channel),
    numbered from 1, each with its own ``n_hits`` as ``Full_number_of_hits`` (turboSETI's count);
    ``header`` from :func:`tfseti.dedoppler.dat.header_lines`. Written to a temporary file, then renamed."""
    from tfseti.dedoppler.dat import hit_line
    from tfseti.io.atomic import write_text

    lines = [hit_line(k, h.drift_rate, h.snr, h.freq_mhz, h.index, h.freq_start_mhz, h.freq_end_mhz,
                      h.coarse_channel, h.n_hits) for k, h in enumerate(hits, 1)]
    write_text(path, header + "".join(lines))
