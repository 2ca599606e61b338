"""The cadence scores of :mod:`tfseti.dedoppler.scores` in numpy + Numba, without TensorFlow: what the
observation scan (``tfseti.scan.scoring``) computes for every window, so that a scan without a model
never imports TensorFlow.

Same steps and numbers as ``tfseti.data.drift_sums`` (``block_rows`` -> ``clean`` -> ``drift_sums``)
and ``tfseti.dedoppler.scores._score_function``, for raw cadences ``(N, 6, T, F)``:

1. **Blocks**: ``cfg.block`` consecutive rows summed (the last block zero-padded).
2. **Clean**: per row of a block (its sum over its rows), the per-channel level subtracted (the
   OFF panels' median, ``off_median``, or each panel's, ``panel_median``), then each row's median
   over channels; scaled to unit noise per panel from the values within ``NOISE_CLIP`` of a first
   estimate; clipped to ``+/- cfg.clip``; back to block sums (x ``sqrt(rows)``).
3. **Drift sums**: for each rate ``r`` (``cfg.drifts`` evenly in ``[-max_drift, max_drift]``
   channels per row) and channel ``f`` at the reference time, the sum over blocks of the value at
   ``f + rint(r (t_block - t_ref))`` (zero outside the band), divided by ``sqrt(T)``. TensorFlow does
   this shift-and-add in the Fourier domain; here it is the direct sum (:func:`_shift_sum`, one
   Numba loop): the same integer shifts, so the same sums up to float32 rounding (~1e-6 relative).
4. **Scores** (``straight_line``, ``two_of_three``, ``panel_maxima``) and the best straight path,
   as :func:`tfseti.dedoppler.scores.score_batch` returns them (:class:`CadenceScores`).

``tests/scan/test_window_scores.py`` checks it against the TensorFlow implementation.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from tfseti.dedoppler.scores import DEFAULT_PATTERN_SNR, OFF_WINDOW, CadenceScores
from tfseti.io.kaggle import OFF_PANELS, ON_PANELS

REFERENCE_PANEL = 2          # tfseti.data.drift_sums.REFERENCE_PANEL
NOISE_CLIP = 5.0             # tfseti.data.drift_sums.NOISE_CLIP


def drift_rates(cfg) -> np.ndarray:
    """``tfseti.data.drift_sums.drift_rates``: the searched rates, channels per row, ascending."""
    if cfg.drifts == 1:
        return np.zeros(1)
    return np.linspace(-cfg.max_drift, cfg.max_drift, cfg.drifts)


def reference_rows(cfg, reference: str, panels: int, time: int, rows: int | None = None) -> np.ndarray:
    """``tfseti.data.drift_sums.reference_rows`` with ``reference`` (``cadence`` / ``panel``)."""
    index = np.arange(time if rows is None else rows, dtype=np.float64)
    centre = (time - 1) / 2
    if reference == "panel":
        return np.tile(index - centre, (panels, 1))
    positions = np.arange(6) if panels == 6 else np.array([0, 2, 4])
    start = positions[:, None] * (time + cfg.panel_gap)
    return start + index[None, :] - (REFERENCE_PANEL * (time + cfg.panel_gap) + centre)


def block_shifts(cfg, reference: str, panels: int, time: int) -> np.ndarray:
    """``tfseti.data.drift_sums.block_shifts``: whole-channel shift per (panel, drift, block)."""
    blocks = -(-time // cfg.block)
    offsets = reference_rows(cfg, reference, panels, time, blocks * cfg.block)
    block_time = offsets.reshape(panels, blocks, cfg.block).mean(axis=-1)
    return np.rint(drift_rates(cfg)[None, :, None] * block_time[:, None, :]).astype(np.int64)


def clean(cadence: np.ndarray, cfg, edges: np.ndarray | None = None) -> np.ndarray:
    """Steps 1-2: raw ``(N, 6, T, F)`` -> cleaned block sums ``(N, 6, Bk, F)`` float32.

    ``edges`` (first channel of each tile, then ``F``; default ``[0, F]``): the channels are
    cleaned tile by tile (each tile as a window of its own), as the band search does
    (:mod:`tfseti.dedoppler.band_search`). The medians are numpy's (its vectorised partition,
    several times faster than a compiled loop); the rest is one Numba pass per (cadence, tile)."""
    cadence = np.ascontiguousarray(cadence, dtype=np.float32)
    n, panels, time, freq = cadence.shape
    edges = np.array([0, freq], np.int64) if edges is None else np.asarray(edges, np.int64)
    if panels != 6 and cfg.background == "off_median":
        raise ValueError(f"clean: the off_median background needs 6 panels, got {panels}")
    block = int(cfg.block)
    blocks = -(-time // block)
    rows = np.minimum(block, time - block * np.arange(blocks)).astype(np.float32)
    if block == 1:
        per_row = cadence
    else:
        padded = np.zeros((n, panels, blocks * block, freq), np.float32)
        padded[:, :, :time] = cadence
        per_row = padded.reshape(n, panels, blocks, block, freq).sum(axis=3, dtype=np.float32)
        per_row /= rows[:, None]
    if cfg.background == "off_median":
        level = median_last(np.moveaxis(per_row[:, list(OFF_PANELS)].reshape(n, -1, freq), 1, 2))
        level = level[:, None, None, :]
    else:
        level = median_last(np.moveaxis(per_row, 2, 3))[:, :, None, :]
    residual = per_row - level.astype(np.float32)
    medians = _tile_medians(residual, edges)                         # (N, P, Bk, tiles)
    return _scale_tiles(residual, medians, edges, np.sqrt(rows), np.float32(cfg.clip))


def median_last(x: np.ndarray) -> np.ndarray:
    """``np.median(x, axis=-1)`` (the same float32 values), about four times faster: one
    ``np.partition`` at the upper middle element (numpy's vectorised path, which ``np.median``'s
    two-element partition does not take), the lower middle being the largest element before it."""
    x = np.ascontiguousarray(x)
    size = x.shape[-1]
    k = size // 2
    part = np.partition(x, k, axis=-1)
    upper = part[..., k]
    if size % 2:
        return upper
    lower = part[..., :k].max(axis=-1)
    return ((lower + upper) / x.dtype.type(2)).astype(x.dtype)


def _tile_medians(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Median over each tile's channels of every row: ``(N, P, R, F)`` -> ``(N, P, R, tiles)``."""
    widths = np.diff(edges)
    out = np.empty((*x.shape[:3], len(widths)), np.float32)
    regular = np.flatnonzero(widths == widths[0])
    if len(regular) == len(widths) and edges[0] == 0:       # equal tiles: one call
        tiles = x[..., :edges[-1]].reshape(*x.shape[:3], len(widths), widths[0])
        out[:] = median_last(tiles)
        return out
    for t in range(len(widths)):
        out[..., t] = median_last(x[..., edges[t]:edges[t + 1]])
    return out


@njit(cache=True, fastmath={"reassoc", "nsz"})
def _squares_within(x, medians, root, c, p, t, lo, hi, cut):
    """``(sum of v^2, count)`` over the values ``v = (x - row median) sqrt(rows)`` of panel ``p``,
    tile ``t`` of cadence ``c`` with ``|v| < cut`` (float64 sums)."""
    sq = 0.0
    count = 0.0
    for b in range(x.shape[2]):
        src = x[c, p, b, lo:hi]
        m = medians[c, p, b, t]
        r = root[b]
        for j in range(hi - lo):
            v = (src[j] - m) * r
            inside = abs(v) < cut
            sq += np.float64(v * v) if inside else 0.0
            count += 1.0 if inside else 0.0
    return sq, count


@njit(parallel=True, cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def _scale_tiles(x, medians, edges, root, clip):
    """The rest of :func:`clean` per (cadence, tile), parallel over them: each row's median
    taken away, times ``sqrt(rows)``, scaled to unit noise per panel from the values within
    ``NOISE_CLIP`` of a first estimate, clipped, times ``sqrt(rows)``. Three passes, each reading
    the input and writing at most once, so that they vectorise (the noise sums in float64, in
    vector order: the last bits may differ from numpy's)."""
    n, panels, blocks, freq = x.shape
    out = np.empty((n, panels, blocks, freq), np.float32)
    ntile = edges.shape[0] - 1
    for job in prange(n * ntile):
        c = job // ntile
        t = job % ntile
        lo, hi = edges[t], edges[t + 1]
        w = hi - lo
        for p in range(panels):
            sq, count = _squares_within(x, medians, root, c, p, t, lo, hi, np.float32(np.inf))
            std = np.float32(np.sqrt(sq / count)) + np.float32(1e-6)
            sq_in, count = _squares_within(x, medians, root, c, p, t, lo, hi,
                                           np.float32(NOISE_CLIP) * std)
            scale = np.float32(np.sqrt(np.float32(sq_in / (count + 1.0)))) + np.float32(1e-6)
            for b in range(blocks):
                src = x[c, p, b, lo:hi]
                dst = out[c, p, b, lo:hi]
                m = medians[c, p, b, t]
                r = root[b]
                for j in range(w):
                    v = (src[j] - m) * r / scale
                    if clip > 0:
                        v = min(max(v, -clip), clip)
                    dst[j] = v * r
    return out


@njit(parallel=True, cache=True, nogil=True)
def _shift_sum(x, shifts, scale):
    """``out[n, p, d, f] = scale * sum_b x[n, p, b, f + shifts[p, d, b]]`` (0 outside the band),
    parallel over cadences and panels (ufuncs with ``out=`` on sliced rows: the loops Numba
    vectorises, see ``tfseti.dedoppler.taylor.tree_in_buffer``)."""
    n_cad, panels, blocks, freq = x.shape
    drifts = shifts.shape[1]
    out = np.zeros((n_cad, panels, drifts, freq), np.float32)
    for job in prange(n_cad * panels):
        n = job // panels
        p = job % panels
        for d in range(drifts):
            row = out[n, p, d]
            for b in range(blocks):
                s = shifts[p, d, b]
                lo = max(0, -s)
                hi = min(freq, freq - s)
                if hi > lo:
                    part = row[lo:hi]
                    np.add(part, x[n, p, b, lo + s:hi + s], part)
            np.multiply(row, scale, row)
    return out


def drift_sums(cleaned: np.ndarray, cfg, reference: str, time: int) -> np.ndarray:
    """Step 3: cleaned ``(N, P, Bk, F)`` -> maps ``(N, P, drifts, F)`` float32 (SNR units)."""
    shifts = block_shifts(cfg, reference, cleaned.shape[1], time)
    return _shift_sum(np.ascontiguousarray(cleaned, np.float32), shifts, np.float32(1.0 / np.sqrt(time)))


@njit(cache=False)
def _max_filter(x, half_rows, half_cols):
    """Max over the centred ``(2 half_rows + 1, 2 half_cols + 1)`` window of the last two axes of
    ``x`` ``(N, R, C)``, ignoring what is outside (TF's ``max_pool2d``, ``SAME``, stride 1); in two
    separable passes."""
    n_cad, rows, cols = x.shape
    tmp = np.empty_like(x)
    out = np.empty_like(x)
    for n in range(n_cad):
        for r in range(rows):
            lo, hi = max(0, r - half_rows), min(rows, r + half_rows + 1)
            for c in range(cols):
                best = x[n, lo, c]
                for k in range(lo + 1, hi):
                    if x[n, k, c] > best:
                        best = x[n, k, c]
                tmp[n, r, c] = best
        for r in range(rows):
            for c in range(cols):
                lo, hi = max(0, c - half_cols), min(cols, c + half_cols + 1)
                best = tmp[n, r, lo]
                for k in range(lo + 1, hi):
                    if tmp[n, r, k] > best:
                        best = tmp[n, r, k]
                out[n, r, c] = best
    return out


def score_batch(cadence, cfg, pattern_snr: float = DEFAULT_PATTERN_SNR,
                panel_maxima: bool = True) -> CadenceScores:
    """:func:`tfseti.dedoppler.scores.score_batch` without TensorFlow (module notes): raw cadences
    ``(N, 6, T, F)`` -> :class:`CadenceScores`. ``cfg`` is a ``DedopplerConfig`` (its
    ``reference`` is ignored: the straight-line scores use ``cadence``, ``panel_maxima`` ``panel``)."""
    cadence = np.asarray(cadence, dtype=np.float32)
    if cadence.ndim != 4 or cadence.shape[1] != 6:
        raise ValueError(f"cadence batch: the classical ON/OFF scores need 6-panel cadences "
                         f"(N, 6, T, F), got shape {cadence.shape}")
    n, _, time, freq = cadence.shape
    on, off = list(ON_PANELS), list(OFF_PANELS)
    cleaned = clean(cadence, cfg)
    aligned = drift_sums(cleaned, cfg, "cadence", time)                    # (N, 6, D, F)
    on_maps, off_maps = aligned[:, on], aligned[:, off]
    on_sum = on_maps.sum(axis=1, dtype=np.float32)
    line = (on_sum - off_maps.sum(axis=1, dtype=np.float32)) / np.float32(np.sqrt(6.0))
    flat = line.reshape(n, -1)
    best = flat.argmax(axis=1)
    straight = flat.max(axis=1)
    second_on = on_sum - on_maps.max(axis=1) - on_maps.min(axis=1)
    off_near = _max_filter(np.ascontiguousarray(off_maps.max(axis=1)), OFF_WINDOW[0], OFF_WINDOW[1])
    two_of_three = (second_on - off_near).reshape(n, -1).max(axis=1)
    if panel_maxima:
        peaks = drift_sums(cleaned, cfg, "panel", time).reshape(n, 6, -1).max(axis=2)
        maxima = peaks[:, on].mean(axis=1) - peaks[:, off].mean(axis=1)
    else:
        maxima = np.full(n, np.nan, np.float32)
    d, f = best // freq, best % freq
    panel_snr = aligned[np.arange(n), :, d, f]                              # (N, 6)
    rates = drift_rates(cfg)[d]
    first_row = reference_rows(cfg, "cadence", 6, time)[0, 0]
    pattern = ["".join("1" if v >= pattern_snr else "0" for v in row) for row in panel_snr]
    return CadenceScores(
        scores={"straight_line": straight.astype(np.float32),
                "two_of_three": two_of_three.astype(np.float32),
                "panel_maxima": maxima.astype(np.float32)},
        drift=rates, channel=f.astype(np.int64), start_channel=f + rates * first_row,
        snr=panel_snr[:, on].sum(axis=1) / np.sqrt(3.0), panel_snr=panel_snr, pattern=pattern)
