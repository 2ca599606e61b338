"""Scores of a batch of windows: the model(s) on the snippets and the classical search on the native
integrations, and the rows of the window table.

Model: every SavedModel (``tfseti.predict.models``) sees the resampled, normalised snippets
(``tfseti.scan.windows.make_snippets``), with flip TTA if asked (``tfseti.predict.tta``); the
ensemble is the mean probability (a rank average needs the whole set of windows and a scan
streams). Batches are always padded to ``batch_size`` so every batch runs the same traced
function and a window's score does not depend on which windows shared its batch (the local and
the Beam scan batch windows differently and must agree).

Classical: ``tfseti.dedoppler.window_scores.score_batch`` (the scores of
``tfseti.dedoppler.scores`` in numpy + Numba, equal to the TensorFlow ones up to float32 rounding,
so that a scan without ``--model`` never imports TensorFlow; with a model the classical columns
are the same numbers) on the windows at their native time resolution (the search turboSETI does;
no resampled rows), with a ``DedopplerConfig`` made from the headers
(:func:`classical_config`): the drift range in channels per integration from ``max_drift_hz``,
the slew from the files' ``tstart`` s, rows summed per block so that a path moves at most
``BLOCK_SMEAR_CHANNELS`` inside a block.
"""

from __future__ import annotations

import math

import numpy as np

from tfseti.io.observations import ObservationCadence
from tfseti.scan.settings import BLOCK_SMEAR_CHANNELS, MAX_DRIFTS, ScanSettings
from tfseti.scan.windows import (NONFINITE_FLAG, NONFINITE_KEY, make_snippets, nonfinite_summary,
                                 own_channels, repair_nonfinite, resample_matrix)

PANELS = 6
# Columns of the window table, in order (``panel_snr_0..5`` after ``snr``).
WINDOW_COLUMNS = (
    "cadence", "window", "channel_start", "freq_start_mhz", "freq_end_mhz", "flags",
    "probability", "dedoppler", "straight_line", "drift_rate_hz_s", "hit_channel", "hit_freq_mhz",
    "snr", *(f"panel_snr_{p}" for p in range(PANELS)), "pattern", "hit")


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

    def rows(self, cadence: ObservationCadence, cfg, plan, windows: np.ndarray,
             native: np.ndarray) -> list[dict]:
        """Window-table rows (``WINDOW_COLUMNS``) of windows ``windows`` (indices into ``plan``)."""
        from tfseti.dedoppler.window_scores import score_batch

        s = self.settings
        # NaN/Inf samples are replaced before anything scores them (tfseti.scan.windows).
        blanked = repair_nonfinite(native)
        starts = plan.starts
        probability = self.probabilities(native)
        # The per-panel maxima score is not reported: leaving its maps out saves ~17% of a batch.
        result = score_batch(native, cfg, s.pattern_snr, panel_maxima=False)
        drift = drift_hz_s(cadence, result.drift)
        width = native.shape[3]
        out = []
        for i, w in enumerate(windows):
            start = int(starts[w])
            # The best path's channel at the first integration of file 1 (turboSETI's convention).
            hit_channel = start + float(result.start_channel[i])
            dedoppler = float(result.scores["two_of_three"][i])
            prob = float(probability[i])
            row = {"cadence": cadence.name, "window": int(w), "channel_start": start,
                   "freq_start_mhz": float(cadence.freq_mhz(start)),
                   "freq_end_mhz": float(cadence.freq_mhz(start + width - 1)),
                   "flags": plan.flags(start), "probability": prob, "dedoppler": dedoppler,
                   "straight_line": float(result.scores["straight_line"][i]),
                   "drift_rate_hz_s": float(drift[i]), "hit_channel": hit_channel,
                   "hit_freq_mhz": float(cadence.freq_mhz(hit_channel)),
                   "snr": float(result.snr[i]),
                   **{f"panel_snr_{p}": float(result.panel_snr[i, p]) for p in range(PANELS)},
                   "pattern": result.pattern[i],
                   "hit": bool((not math.isnan(prob) and prob >= s.min_probability)
                               or dedoppler >= s.min_dedoppler)}
            if blanked is not None and blanked[i].any():
                row["flags"] = ";".join(filter(None, (row["flags"], NONFINITE_FLAG)))
                row[NONFINITE_KEY] = nonfinite_summary(blanked[i], start,
                                                       own_channels(plan, starts, int(w)))
            out.append(row)
        return out
