"""Cadence scores and hits of the classical search, from the de-Doppler maps of ``tfseti.data.drift_sums``.

Three ways to turn six panels' drift maps into one number per cadence (the Breakthrough Listen
ON/OFF logic, higher = more needle-like):

``straight_line``
    One straight path through the whole ABACAD timeline (maps aligned to the cadence reference):
    the largest ``(sum of the ON panels' SNRs - sum of the OFF panels') / sqrt(6)`` over drift
    rates and channels. A needle drifting straight through the cadence adds up in all three ON
    panels; a straight interferer cancels against the OFF panels.
``two_of_three``
    turboSETI's ON/OFF filter at every path (aligned maps): the second-best ON panel's SNR minus
    the largest OFF panel SNR anywhere near that path (within ``OFF_WINDOW`` drift rates and
    channels, so an interferer slightly off the assumed alignment still vetoes), maximised over
    paths. A needle must show in at least two ON scans (room for one missing ON panel) and nothing
    may show at its place in any OFF scan.
``panel_maxima``
    Per-panel search (each panel's own best path, wherever it is): mean of the ON panels' maxima
    minus mean of the OFF panels' maxima. It ignores *where* the hits are, so any interferer
    brighter than the needle anywhere in the band masks it: the simplest score, and the weakest
    on cadences with RFI.

The hit of a cadence is the best straight path: its drift rate, its channel at the first row of
panel 0 (``start_channel``, the turboSETI convention) and at the reference time, the ON SNR
(``sum of the ON SNRs / sqrt(3)``) and the ON/OFF pattern: one character per panel in ABACAD
order, ``1`` where that panel's SNR along the path reaches ``pattern_snr``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np

from tfseti.io.kaggle import OFF_PANELS, ON_PANELS

SCORES = ("straight_line", "two_of_three", "panel_maxima")
DEFAULT_PATTERN_SNR = 6.0
# (drift rates, channels) either side of a path searched for an OFF-panel veto.
OFF_WINDOW = (2, 4)


@dataclass
class CadenceScores:
    """Scores and best hit of a batch of ``N`` cadences (arrays of length N)."""

    scores: dict            # score name -> (N,) float32
    drift: np.ndarray       # (N,) channels per row of the best straight path
    channel: np.ndarray     # (N,) its channel at the reference time
    start_channel: np.ndarray   # (N,) its channel at the first row of panel 0
    snr: np.ndarray         # (N,) sum of the ON panels' SNRs along it / sqrt(3)
    panel_snr: np.ndarray   # (N, 6) each panel's SNR along it
    pattern: list           # (N,) strings such as "101000"


@functools.lru_cache(maxsize=8)
def _score_function(cfg, time: int, panel_maxima: bool = True):
    """One compiled TF function: raw cadences ``(N, 6, T, F)`` -> every score and the best path.

    ``panel_maxima=False`` leaves out the per-panel maps (that score is then NaN), for callers
    that do not report it (``tfseti.scan``): 17% of a batch of 16-integration windows with 419
    drift rates (0.475 -> 0.393 s per 32 windows on 2 cores, measured).
    """
    import tensorflow as tf

    from tfseti.data import drift_sums as ds

    line_cfg, panel_cfg = replace(cfg, reference="cadence"), replace(cfg, reference="panel")
    on, off = list(ON_PANELS), list(OFF_PANELS)
    window = [1, 2 * OFF_WINDOW[0] + 1, 2 * OFF_WINDOW[1] + 1, 1]

    @tf.function(reduce_retracing=True)
    def scores(cadence):
        cleaned = ds.clean(ds.block_rows(cadence, cfg), cfg, time)
        aligned = ds.drift_sums(cleaned, line_cfg, time)                         # (N, 6, D, F)
        on_maps, off_maps = tf.gather(aligned, on, axis=1), tf.gather(aligned, off, axis=1)
        line = (tf.reduce_sum(on_maps, 1) - tf.reduce_sum(off_maps, 1)) / np.sqrt(6.0)
        n, freq = tf.shape(line)[0], line.shape[2]
        flat = tf.reshape(line, [n, -1])
        best = tf.argmax(flat, axis=1, output_type=tf.int32)
        straight = tf.reduce_max(flat, axis=1)
        # Second-best of three = sum - largest - smallest.
        second_on = (tf.reduce_sum(on_maps, 1) - tf.reduce_max(on_maps, 1)
                     - tf.reduce_min(on_maps, 1))
        off_near = tf.nn.max_pool2d(tf.reduce_max(off_maps, 1)[..., None], window[1:3], 1,
                                    "SAME")[..., 0]
        two_of_three = tf.reduce_max(tf.reshape(second_on - off_near, [n, -1]), axis=1)
        if panel_maxima:
            per_panel = ds.drift_sums(cleaned, panel_cfg, time)
            peaks = tf.reduce_max(tf.reshape(per_panel, [n, 6, -1]), axis=2)        # (N, 6)
            maxima = (tf.reduce_mean(tf.gather(peaks, on, axis=1), 1)
                      - tf.reduce_mean(tf.gather(peaks, off, axis=1), 1))
        else:
            maxima = tf.fill([n], np.float32(np.nan))
        d, f = best // freq, best % freq
        panel_snr = tf.gather_nd(tf.transpose(aligned, [0, 2, 3, 1]), tf.stack([d, f], axis=1),
                                 batch_dims=1)                                       # (N, 6)
        return straight, two_of_three, maxima, d, f, panel_snr

    return scores


def score_batch(cadence, cfg, pattern_snr: float = DEFAULT_PATTERN_SNR,
                pad_to: int | None = None, panel_maxima: bool = True) -> CadenceScores:
    """All scores and the best hit of raw cadences ``(N, 6, T, F)`` (numpy or tensor).

    ``cfg`` is a ``DedopplerConfig``; its ``reference`` is ignored (both are computed).
    ``pad_to``: a batch of fewer cadences is padded with zeros to this many (the results are
    those of the ``N`` real ones), so that a smaller last batch reuses the traced function
    instead of tracing it again. ``panel_maxima=False``: that score is NaN and the per-panel
    maps are not computed.
    """
    from tfseti.data import drift_sums as ds

    shape = tuple(cadence.shape)
    if len(shape) != 4 or shape[1] != 6:
        raise ValueError(f"cadence batch: the classical ON/OFF scores need 6-panel cadences "
                         f"(N, 6, T, F), got shape {shape}")
    n, time = shape[0], shape[2]
    if pad_to is not None and n < pad_to:
        # Every op of the search is per cadence: zero padding changes nothing of the real rows.
        cadence = np.asarray(cadence)
        cadence = np.concatenate([cadence, np.zeros((pad_to - n, *shape[1:]), cadence.dtype)])
    line_cfg = replace(cfg, reference="cadence")
    straight, two_of_three, maxima, d, f, panel_snr = (
        t.numpy()[:n] for t in _score_function(cfg, time, panel_maxima)(cadence))
    rates = ds.drift_rates(line_cfg)[d]
    first_row = ds.reference_rows(line_cfg, 6, time)[0, 0]
    pattern = ["".join("1" if v >= pattern_snr else "0" for v in row) for row in panel_snr]
    return CadenceScores(
        scores={"straight_line": straight, "two_of_three": two_of_three, "panel_maxima": maxima},
        drift=rates, channel=f.astype(np.int64), start_channel=f + rates * first_row,
        snr=panel_snr[:, list(ON_PANELS)].sum(axis=1) / np.sqrt(3.0), panel_snr=panel_snr,
        pattern=pattern)
