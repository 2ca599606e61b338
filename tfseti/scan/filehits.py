"""The per-file hit search of a cadence: each of the six files searched alone, coarse channel by
coarse channel, as turboSETI's ``find_doppler`` searches a file: its ``.dat`` rows, then the
cadence's events (``find_event_pipeline``).

This is the step the window scores (``tfseti.scan.scoring``) are not: those follow one straight
path through the whole ABACAD timeline (the cadence clock), so a signal that does not drift along
one line through the six files (one that restarts in each ON file, or changes its rate between
them) is not on any of their paths. Here each file is searched on its own, and a needle present in
an ON file is a hit of that file wherever it starts.

**Where the search runs.** Per coarse channel of each file (``fine_per_coarse`` channels:
``[c F, (c + 1) F)``; the last one may be short when ``--fine-per-coarse`` does not divide the
band; with ``fine_per_coarse`` unknown, the whole band is one coarse channel, as turboSETI's
``n_coarse_chan=1``), read from that one file by channel range (``ObservationFile.read``: one
coarse channel of one file in memory at a time, 64 MB for a GBT high-resolution coarse channel of
16 integrations; a band of unknown coarse channels is read whole, so pass ``--fine-per-coarse``
for large files of another product). It is :func:`tfseti.dedoppler.hitsearch.search_coarse_channel`
(turboSETI 2.3.2's search, rows byte-identical to its ``.dat`` on the committed references; see
that module for the steps and its few edge deviations) with:

* ``snr`` = ``hit_snr`` (``tfseti.scan.settings``: 10 by default; turboSETI's default is 25);
* ``max_drift`` = the scan's ``max_drift_hz`` (also the ``.dat`` header's ``max_drift_rate``),
  ``min_drift`` turboSETI's 1e-5 Hz/s (a drift of exactly 0 is not searched: a stationary line is
  found at the smallest rate, one channel over the file);
* the file's integrations as the cadence uses them (``cadence.rows``: a cadence of unequal files is
  cut to the shortest), zero-padded to a power of two as turboSETI does;
* the DC channel (the centre of the coarse channel) blanked as turboSETI does, in every whole
  coarse channel, and in the band's middle when the coarse channels are unknown (turboSETI's
  ``n_coarse_chan=1``; the scan's windows blank nothing then). A trailing coarse channel cut
  short by ``--fine-per-coarse`` is not blanked (its middle is no DC bin);
* NaN / Inf samples replaced first as the windows' are (``tfseti.scan.windows.repair_nonfinite``:
  the median of their integration in the coarse channel), so that one bad sample does not blank
  a coarse channel's statistics.

Against turboSETI 2.3.2 itself (``benchmarks/scan_bench.py``: 2^19 channels x 16 integrations,
one coarse channel, 4 needles and 2 RFI lines, ``find_doppler`` at max drift 0.52 Hz/s and SNR 10):
the same 24 rows in the six ``.dat`` files (drift, frequency, index, window), one OFF file
byte-identical; elsewhere SNRs differ by at most 4e-6 relative and one file's
``Full_number_of_hits`` by 1 of 8370 (float32 rounding of the statistics, a crossing at the
threshold); ``find_event_pipeline`` level 3: the same 4 events.

The rows are in turboSETI's order (coarse channel, then channel), numbered from 1 per file, with
turboSETI's ``Full_number_of_hits`` (the coarse channel's count of crossings of the threshold) and
its ``Index`` (the channel within the coarse channel; the file channel is ``coarse x
fine_per_coarse + Index``).

**Hits and windows.** :func:`hit_rows` gives each hit the window of the scan in which its path is
most central (the window whose centre channel is nearest the hit's channel at the file's first
integration; the lower window on a tie) with that window's model probability (NaN without a
model), its classical ``dedoppler`` score and whether the window is a hit: ``hits_per_file.csv``
(:data:`HIT_COLUMNS`). Join it to ``events.csv`` on ``file`` = ``FileID`` and ``top_hit`` =
``TopHitNum``.
"""

from __future__ import annotations

import math
import os

import numpy as np

# Columns of hits_per_file.csv, in order.
HIT_COLUMNS = ("cadence", "file", "file_index", "on", "top_hit", "drift_rate_hz_s", "snr",
               "freq_mhz", "channel", "coarse_channel", "index", "n_hits", "window", "probability",
               "dedoppler", "window_hit")


def coarse_ranges(nchans: int, fine_per_coarse: int | None) -> list[tuple[int, int, int]]:
    """``[(coarse channel, first channel, stop channel), ...]`` of a band (the module notes)."""
    if not fine_per_coarse:
        return [(0, 0, nchans)]
    return [(c, lo, min(lo + fine_per_coarse, nchans))
            for c, lo in enumerate(range(0, nchans, fine_per_coarse))]


def search_coarse(observation, rows: int, fine_per_coarse: int | None, coarse: int,
                  max_drift_hz: float, snr: float) -> list:
    """turboSETI's hits (:class:`tfseti.dedoppler.hitsearch.Hit`) of coarse channel ``coarse``
    (:func:`coarse_ranges`) of one open file (``tfseti.io.observations.ObservationFile``), its
    first ``rows`` integrations (the module notes)."""
    from tfseti.dedoppler.hitsearch import search_coarse_channel
    from tfseti.scan.windows import repair_nonfinite

    coarse, lo, hi = coarse_ranges(observation.nchans, fine_per_coarse)[coarse]
    spectra = observation.read(lo, hi)[:rows]
    repair_nonfinite(spectra[None, None])          # in place (a view of the block)
    return search_coarse_channel(
        spectra, fch1_mhz=observation.fch1 + lo * observation.foff, foff_mhz=observation.foff,
        tsamp_s=observation.tsamp, max_drift=max_drift_hz, snr=snr, coarse_channel=coarse,
        channel_offset=lo, blank_dc=not fine_per_coarse or hi - lo == fine_per_coarse)


def search_file(observation, rows: int, fine_per_coarse: int | None, max_drift_hz: float,
                snr: float) -> list:
    """The hits of every coarse channel of one open file, in order (:func:`search_coarse`)."""
    return [hit for c in range(len(coarse_ranges(observation.nchans, fine_per_coarse)))
            for hit in search_coarse(observation, rows, fine_per_coarse, c, max_drift_hz, snr)]


def search_cadence_file(cadence, index: int, fine_per_coarse: int | None, settings,
                        coarse: int | None = None) -> list:
    """The hits of file ``index`` (0-5) of an open ``ObservationCadence``: every coarse channel,
    or only ``coarse``."""
    observation = cadence.files[index]
    if coarse is None:
        return search_file(observation, cadence.rows, fine_per_coarse, settings.max_drift_hz,
                           settings.hit_snr)
    return search_coarse(observation, cadence.rows, fine_per_coarse, coarse, settings.max_drift_hz,
                         settings.hit_snr)


def nearest_window(starts: np.ndarray, width: int, channel: int) -> int:
    """The window whose centre channel is nearest ``channel`` (the lower one on a tie)."""
    centres = starts + (width - 1) / 2
    return int(np.argmin(np.abs(centres - channel)))


def hit_rows(info: dict, rows: list[dict], per_file: list[list]) -> list[dict]:
    """``hits_per_file.csv`` rows (:data:`HIT_COLUMNS`): every file's hits in ``.dat`` order, each
    with the window it is most central in (module notes). ``rows``: the cadence's window rows
    sorted by window; ``info``: ``tfseti.scan.outputs.cadence_info``."""
    starts = np.array([r["channel_start"] for r in rows], np.int64)
    out = []
    for p, (path, hits) in enumerate(zip(info["paths"], per_file)):
        for number, hit in enumerate(hits, 1):
            w = nearest_window(starts, info["width"], hit.channel)
            window = rows[w]
            out.append({"cadence": info["name"], "file": os.path.basename(path), "file_index": p,
                        "on": int(p % 2 == 0), "top_hit": number, "drift_rate_hz_s": hit.drift_rate,
                        "snr": hit.snr, "freq_mhz": hit.freq_mhz, "channel": hit.channel,
                        "coarse_channel": hit.coarse_channel, "index": hit.index,
                        "n_hits": hit.n_hits, "window": int(window["window"]),
                        "probability": float(window["probability"]),
                        "dedoppler": float(window["dedoppler"]), "window_hit": bool(window["hit"])})
    return out


def cadence_events(dat_paths: list[str], info: dict, event_filter: int) -> list[dict]:
    """``find_event_pipeline`` (``tfseti.dedoppler.events``, turboSETI's, ON first, sorted by
    ``tstart``) at level ``event_filter`` on a cadence's six ``.dat`` files: its event rows."""
    from tfseti.dedoppler.events import find_event_pipeline, read_dat

    files = [read_dat(path, tstart=(t if t is not None and not math.isnan(t) else None),
                      fch1=info["fch1"], foff=info["foff"], nchans=info["nchans"])
             for path, t in zip(dat_paths, info["tstarts"])]
    return find_event_pipeline(files, filter_threshold=event_filter, number_in_cadence=len(files),
                               on_off_first="ON", sortby_tstart=True)
