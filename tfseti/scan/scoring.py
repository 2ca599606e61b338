"""Scores of a batch of windows: the model(s) on the snippets and the classical search on the native
integrations, and the rows of the window table.

Model: every SavedModel (``tfseti.predict.models``) sees the resampled, normalised snippets
(``tfseti.scan.windows.make_snippets``), with flip TTA if asked (``tfseti.predict.tta``); the
ensemble is the mean probability (a rank average needs the whole set of windows and a scan
streams). Batches are always padded to ``batch_size`` so every batch runs the same traced
function and a window's score does not depend on which windows shared its batch (the local and
the Beam scan batch windows differently and must agree).

Classical: the cadence-wide band search (``tfseti.dedoppler.band_search``: the
``straight_line`` and ``two_of_three`` scores of ``tfseti.dedoppler.scores`` from per-panel
Taylor trees, numpy + Numba, so that a scan without ``--model`` never imports TensorFlow), run
once per read group over the group's own channels at the files' native time resolution (the
search turboSETI does; no resampled rows), with a ``DedopplerConfig`` made from the headers
(:func:`classical_config`): the drift range in channels per integration from ``max_drift_hz``,
the slew from the files' ``tstart`` s, rows summed per block so that a path moves at most
``BLOCK_SMEAR_CHANNELS`` inside a block, tiles of the window width. A window's classical columns
are those of its *own* channels (``tfseti.scan.windows.own_channels``: the channels no later
window starts in; every channel is the own channel of one window), where a path is placed by its
channel at the cadence's reference time: ``dedoppler`` the best ``two_of_three`` there, and the
best straight path there (its score, drift rate, channel at the first integration of file 1,
per-file SNRs and pattern). So a needle's best path is counted in one window, not in every
window that overlaps it, and each channel's paths are searched once, however large the overlap.
"""

from __future__ import annotations

import math

import numpy as np

from tfseti.io.kaggle import ON_PANELS
from tfseti.io.observations import ObservationCadence
from tfseti.scan.settings import BLOCK_SMEAR_CHANNELS, MAX_DRIFTS, ScanSettings
from tfseti.scan.windows import (NONFINITE_FLAG, NONFINITE_KEY, make_snippets, nonfinite_summary,
                                 own_channels, repair_nonfinite, resample_matrix)

PANELS = 6
# Columns of the window table, in order (``panel_snr_0..5`` after ``snr``).
WINDOW_COLUMNS = (
    "cadence", "window", "channel_start", "freq_start_mhz", "freq_end_mhz", "flags",
    "probability", "dedoppler", "straight_line", "drift_rate_hz_s", "hit_channel", "hit_freq_mhz",
    "snr", *(f"panel_snr_{p}" for p in range(PANELS)), "pattern", "hit", "candidate")


def classical_config(cadence: ObservationCadence, settings: ScanSettings):
    """The ``DedopplerConfig`` of the native integrations of ``cadence`` (module docstring)."""
    from tfseti.data.config import DedopplerConfig

    max_drift = settings.max_drift_hz * cadence.tsamp / abs(cadence.foff * 1e6)
    if max_drift > 4:
        raise ValueError(f"--max-drift-hz {settings.max_drift_hz}: {max_drift:.2f} channels per "
                         f"integration of {cadence.tsamp:g} s x {abs(cadence.foff) * 1e6:g} Hz; the "
                         f"search takes at most 4 (use a smaller --max-drift-hz)")
    block = max(1, min(int(BLOCK_SMEAR_CHANNELS / max_drift), cadence.rows // 8 or 1))
    drifts = settings.drifts
    if drifts == "auto":
        span = 3 * (cadence.rows + cadence.gap_rows) + (cadence.rows - 1) / 2
        drifts = min(MAX_DRIFTS, 2 * math.ceil(max_drift * span) + 1)
    return DedopplerConfig(max_drift=max_drift, drifts=drifts, block=block,
                           background="off_median", reference="cadence",
                           panel_gap=cadence.gap_rows)


def drift_hz_s(cadence: ObservationCadence, channels_per_row) -> np.ndarray:
    """Channels per integration -> Hz/s (signed: increasing frequency is positive)."""
    return np.asarray(channels_per_row) * cadence.foff * 1e6 / cadence.tsamp


class WindowScorer:
    """Scores batches of native windows ``(N, 6, T, W)`` of one kind of cadence."""

    def __init__(self, models: list, settings: ScanSettings, model_shape: tuple[int, int, int] | None):
        self.models = models
        self.settings = settings
        self.model_shape = model_shape     # (P, rows, width) the models take; None: classical only
        self._matrices: dict = {}
        self._band_plan = None

    def snippets(self, native: np.ndarray) -> np.ndarray:
        rows_in, rows_out = native.shape[2], self.model_shape[1]
        key = (rows_in, rows_out)
        if key not in self._matrices:
            self._matrices[key] = resample_matrix(rows_in, rows_out, self.settings.time_resample)
        return make_snippets(native, self._matrices[key])

    def _pad(self, x: np.ndarray) -> np.ndarray:
        short = self.settings.batch_size - len(x)
        return x if short <= 0 else np.concatenate([x, np.zeros((short, *x.shape[1:]), x.dtype)])

    def probabilities(self, native: np.ndarray) -> np.ndarray:
        """Ensemble-mean probability per window (NaN without a model)."""
        n = len(native)
        if not self.models:
            return np.full(n, np.nan, np.float32)
        from tfseti.predict.tta import predict_batch

        per_model = predict_batch(self.models, self._pad(self.snippets(native)), self.settings.tta)
        return per_model.mean(axis=0)[:n].astype(np.float32)

    def band(self, cfg, plan, group) -> "BandScores":
        """The classical band search over a read group's own channels
        (``tfseti.dedoppler.band_search``; the group from ``tfseti.scan.stream.read_group``)."""
        from tfseti.dedoppler.band_search import band_plan, search_block

        key = (cfg, group.band.shape[1])
        if self._band_plan is None or self._band_plan[0] != key:
            self._band_plan = (key, band_plan(cfg, group.band.shape[1]))
        return search_block(group.band, cfg, group.band_start, plan.nchans, plan.width,
                            group.own[0], group.own[1], self._band_plan[1])

    def classical(self, plan, band, windows: np.ndarray) -> list[dict]:
        """The classical columns of windows ``windows`` (consecutive) from their own channels'
        band scores (module notes)."""
        starts = plan.starts
        windows = np.asarray(windows)
        lo = starts[windows] - band.lo                                    # own channels [lo, hi)
        hi = np.array([int(starts[w]) + own_channels(plan, starts, int(w)) for w in windows]) - band.lo
        dedoppler = np.maximum.reduceat(band.two_of_three, lo)
        best_line = np.maximum.reduceat(band.straight_line, lo)
        # first channel of each window reaching its maximum
        at_max = band.straight_line == np.repeat(best_line, hi - lo)
        first = lo + np.array([int(np.argmax(at_max[a:b])) for a, b in zip(lo, hi)])
        panel_snr = band.panel_snr[:, first].T.astype(np.float64)           # (n, 6)
        rates = band.rates[band.rate_index[first]]
        snr = panel_snr[:, list(ON_PANELS)].sum(axis=1) / np.sqrt(3.0)
        present = panel_snr >= self.settings.pattern_snr
        return [{"dedoppler": float(dedoppler[i]), "straight_line": float(best_line[i]),
                 "drift": float(rates[i]), "hit_channel": band.start_channel(int(first[i])),
                 "snr": float(snr[i]), "panel_snr": panel_snr[i],
                 "pattern": "".join("1" if v else "0" for v in present[i])}
                for i in range(len(windows))]

    def rows(self, cadence: ObservationCadence, plan, windows: np.ndarray, native: np.ndarray,
             classical: list[dict]) -> list[dict]:
        """Window-table rows (``WINDOW_COLUMNS``) of windows ``windows`` (indices into ``plan``):
        the models on ``native`` and the classical columns ``classical`` (:meth:`classical`)."""
        s = self.settings
        # NaN/Inf samples are replaced before anything scores them (tfseti.scan.windows).
        # native is None when there is no model and the windows hold none (stream.read_group).
        blanked = None if native is None else repair_nonfinite(native)
        starts = plan.starts
        probability = (np.full(len(windows), np.nan, np.float32) if native is None
                       else self.probabilities(native))
        width = plan.width
        out = []
        for i, w in enumerate(windows):
            start = int(starts[w])
            c = classical[i]
            dedoppler = c["dedoppler"]
            prob = float(probability[i])
            row = {"cadence": cadence.name, "window": int(w), "channel_start": start,
                   "freq_start_mhz": float(cadence.freq_mhz(start)),
                   "freq_end_mhz": float(cadence.freq_mhz(start + width - 1)),
                   "flags": plan.flags(start), "probability": prob, "dedoppler": dedoppler,
                   "straight_line": c["straight_line"],
                   "drift_rate_hz_s": float(drift_hz_s(cadence, c["drift"])),
                   "hit_channel": c["hit_channel"],
                   "hit_freq_mhz": float(cadence.freq_mhz(c["hit_channel"])),
                   "snr": c["snr"],
                   **{f"panel_snr_{p}": float(c["panel_snr"][p]) for p in range(PANELS)},
                   "pattern": c["pattern"],
                   "hit": bool((not math.isnan(prob) and prob >= s.min_probability)
                               or dedoppler >= s.min_dedoppler)}
            if blanked is not None and blanked[i].any():
                row["flags"] = ";".join(filter(None, (row["flags"], NONFINITE_FLAG)))
                row[NONFINITE_KEY] = nonfinite_summary(blanked[i], start,
                                                       own_channels(plan, starts, int(w)))
            out.append(row)
        return out
