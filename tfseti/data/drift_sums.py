"""Incoherent de-Doppler: power summed along straight drift paths, for every panel of a cadence.

The classical Breakthrough Listen search (turboSETI) as one batched TensorFlow op, used twice:
by the classical search (``tfseti.dedoppler``: cadence scores and hit tables) and as the
``dedoppler`` input view of the models (``tfseti.data.views``), so the network sees the same
drift-rate maps the classical score is computed from.

Steps, for cadences ``(B, P, T, F)`` (P = 6 ABACAD panels, or 3 ON panels):

1. **Background** (``clean``, on the block sums of step 2): subtract a per-channel level (the bandpass and steady narrow-band
   RFI) and then each row's median over channels (broadband bursts), and scale each panel to unit
   noise. The per-channel level is either each panel's own median over its rows
   (``panel_median``, turboSETI's choice) or the median of the OFF panels' rows
   (``off_median``): a slowly drifting needle stays in one channel for most of a panel, so a
   panel's own median eats it, while the OFF panels never hold it.
2. **Blocks**: ``block`` consecutive rows are summed (273 = 39 x 7); a path drifting ``r``
   channels per row moves ``r * block`` channels inside a block, well under a needle's width
   for the drift range searched.
3. **Drift sums**: for each drift rate ``r`` (``drifts`` rates evenly spaced in
   ``[-max_drift, max_drift]`` channels per row) and each channel ``f`` at a *reference time*,
   the sum of the blocks along the path ``f + r (t - t_ref)``, shifted by whole channels
   (rounded, as brute-force de-Doppler does), zero outside the band. The shift-and-sum is done in
   the Fourier domain (one FFT per block, a matrix product over blocks per frequency bin, one
   inverse FFT), which is exact for integer shifts and static-shaped (XLA-compilable).
4. **Scale**: divided by ``sqrt(T)``, so a map value is the SNR of the path in that panel
   (noise std 1 where the whole path is in band).

Reference time (``reference``): ``panel`` puts each panel's reference at its own centre row
(a per-panel search, what turboSETI does per file); ``cadence`` puts every panel's reference at
the centre of the middle ON panel, the panels laid end to end with ``panel_gap`` rows between
them (the slew), so a needle that drifts straight through the cadence sits at the same
(drift, channel) in every ON panel's map, and a straight interferer at the same place in all six.

Output: ``(B, P, drifts, F)`` float32. Drift rates in channels per row; multiply by
``channel width / row duration`` for Hz/s (``drift_rates``).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfseti.data.config import DedopplerConfig
from tfseti.data.off_median import median, off_median

# Middle ON panel of an ABACAD cadence: the cadence reference time is its centre row.
REFERENCE_PANEL = 2
NOISE_CLIP = 5.0


def drift_rates(cfg: DedopplerConfig) -> np.ndarray:
    """The searched drift rates in channels per row, ascending: ``(drifts,)`` float64."""
    if cfg.drifts == 1:
        return np.zeros(1)
    return np.linspace(-cfg.max_drift, cfg.max_drift, cfg.drifts)


def reference_rows(cfg: DedopplerConfig, panels: int, time: int, rows: int | None = None
                   ) -> np.ndarray:
    """Time of every row minus the reference time, in rows: ``(P, rows)`` (``rows`` defaults to
    ``time``; rows past ``time`` continue the panel's clock).

    ON-only cadences (3 panels) are the ON panels 0, 2, 4 of the full cadence.
    """
    index = np.arange(time if rows is None else rows, dtype=np.float64)
    centre = (time - 1) / 2
    if cfg.reference == "panel":
        return np.tile(index - centre, (panels, 1))
    positions = np.arange(6) if panels == 6 else np.array([0, 2, 4])
    start = positions[:, None] * (time + cfg.panel_gap)
    return start + index[None, :] - (REFERENCE_PANEL * (time + cfg.panel_gap) + centre)


def n_blocks(cfg: DedopplerConfig, time: int) -> int:
    """Blocks of ``cfg.block`` rows in a ``time``-row panel (the last one may be short)."""
    return -(-time // cfg.block)


def block_shifts(cfg: DedopplerConfig, panels: int, time: int) -> np.ndarray:
    """Whole-channel shift of every (panel, drift, block): ``(P, drifts, blocks)`` int64.

    A block's time is the mean of its rows' times (rows padding the last block hold zeros).
    """
    blocks = n_blocks(cfg, time)
    offsets = reference_rows(cfg, panels, time, blocks * cfg.block)
    block_time = offsets.reshape(panels, blocks, cfg.block).mean(axis=-1)      # (P, blocks)
    rates = drift_rates(cfg)
    return np.rint(rates[None, :, None] * block_time[:, None, :]).astype(np.int64)


def fft_length(cfg: DedopplerConfig, panels: int, time: int, freq: int) -> int:
    """FFT size: the band plus the largest shift, so out-of-band samples read as zeros."""
    largest = int(np.abs(block_shifts(cfg, panels, time)).max())
    n = freq + largest
    return int(-(-n // 32) * 32)


def _check(cadence: tf.Tensor, cfg: DedopplerConfig) -> None:
    if cadence.shape.rank != 4:
        raise ValueError(f"cadence batch: expected rank 4 (batch, panels, time, freq), got shape "
                         f"{cadence.shape}")
    panels = cadence.shape[1]
    if panels not in (3, 6):
        raise ValueError(f"cadence batch: expected 6 panels (ABACAD) or 3 (ON only), got {panels}")
    if panels == 3 and cfg.background == "off_median":
        raise ValueError("de-Doppler background 'off_median' needs the OFF panels, but these cadences "
                         "hold only the 3 ON panels (shards converted with --panels on); use "
                         "background 'panel_median' or convert with --panels all")


def block_rows(cadence: tf.Tensor, cfg: DedopplerConfig) -> tf.Tensor:
    """Sums of ``block`` consecutive rows: ``(B, P, T, F)`` -> ``(B, P, ceil(T / block), F)``
    float32 (the last block zero-padded)."""
    cadence = tf.convert_to_tensor(cadence)
    _check(cadence, cfg)
    _, panels, time, freq = cadence.shape
    blocks = n_blocks(cfg, time)
    x = tf.pad(tf.cast(cadence, tf.float32), [[0, 0], [0, 0], [0, blocks * cfg.block - time], [0, 0]])
    return tf.reduce_sum(tf.reshape(x, [-1, panels, blocks, cfg.block, freq]), axis=3)


def _rows_per_block(cfg: DedopplerConfig, time: int) -> np.ndarray:
    starts = cfg.block * np.arange(n_blocks(cfg, time))
    return np.minimum(cfg.block, time - starts).astype(np.float32)


def clean(blocks: tf.Tensor, cfg: DedopplerConfig, time: int) -> tf.Tensor:
    """Background removal on block sums, scaled to unit noise per row: ``(B, P, Bk, F)`` from
    ``block_rows`` of ``time``-row panels -> float32, same shape.

    The medians are taken over block sums (per row of data: divided by the rows in the block),
    which is ``block`` times less sorting than over rows and estimates the same levels. After
    cleaning, a block of n rows has noise std ``sqrt(n)``, as n unit-noise rows would.
    """
    blocks = tf.convert_to_tensor(blocks, tf.float32)
    rows = tf.constant(_rows_per_block(cfg, time))[:, None]                  # (Bk, 1)
    per_row = blocks / rows
    if cfg.background == "off_median":
        level = off_median(per_row)                                          # (B, 1, 1, F)
    else:
        level = median(per_row, axis=2)                                      # (B, P, 1, F)
    per_row = per_row - level
    per_row = per_row - median(per_row, axis=3)                              # broadband bursts
    x = per_row * tf.sqrt(rows)                      # a block in units of its noise std (rows of std 1)
    # Noise per panel from the values within NOISE_CLIP of a first estimate: a bright needle or
    # interferer does not inflate the scale that its own significance is measured in.
    std = tf.sqrt(tf.reduce_mean(tf.square(x), axis=[2, 3], keepdims=True)) + 1e-6
    inside = tf.cast(tf.abs(x) < NOISE_CLIP * std, tf.float32)
    var = tf.reduce_sum(tf.square(x) * inside, axis=[2, 3], keepdims=True) / (
        tf.reduce_sum(inside, axis=[2, 3], keepdims=True) + 1.0)
    x = x / (tf.sqrt(var) + 1e-6)                                            # unit noise per block
    if cfg.clip > 0:
        x = tf.clip_by_value(x, -cfg.clip, cfg.clip)
    return x * tf.sqrt(rows)


def _phase(cfg: DedopplerConfig, panels: int, time: int, freq: int) -> tuple[tf.Tensor, int]:
    """The shift of every (panel, drift, block) as spectral phases ``(P, K, Bk, D)`` complex64
    and the FFT length ``n``.

    Shifting a block left by s channels multiplies bin k of its spectrum by exp(2 pi i k s / n).
    The phases are computed in the graph from the integer shifts (``k s mod n`` exactly in
    int32), not embedded: as a constant they are ~30 MB per map kind, and folding such a
    constant into a traced function costs ~9 s per trace on a CPU (measured), against ~15 ms a
    batch to compute them.
    """
    shifts = np.transpose(block_shifts(cfg, panels, time), (0, 2, 1)).astype(np.int32)  # (P, Bk, D)
    n = fft_length(cfg, panels, time, freq)
    bins = tf.range(n // 2 + 1, dtype=tf.int32)
    turns = tf.math.floormod(tf.constant(shifts)[:, None] * bins[None, :, None, None], n)
    angle = tf.cast(turns, tf.float32) * np.float32(2.0 * np.pi / n)
    return tf.complex(tf.cos(angle), tf.sin(angle)), n


def drift_sums(cleaned: tf.Tensor, cfg: DedopplerConfig, time: int) -> tf.Tensor:
    """De-Doppler maps of cleaned block sums ``(B, P, Bk, F)`` of ``time``-row panels ->
    ``(B, P, drifts, F)`` float32.

    ``out[b, p, d, f]`` = sum over the blocks of panel ``p`` of the value at channel
    ``f + round(r_d * (t_block - t_ref))`` (zero outside the band), divided by ``sqrt(time)``.
    """
    cleaned = tf.convert_to_tensor(cleaned, tf.float32)
    _, panels, blocks, freq = cleaned.shape
    phase, n = _phase(cfg, panels, time, freq)
    x = tf.pad(cleaned, [[0, 0], [0, 0], [0, 0], [0, n - freq]])
    spectrum = tf.signal.rfft(x)                                                     # (B, P, Bk, K)
    spectrum = tf.transpose(spectrum, [1, 3, 0, 2])                                  # (P, K, B, Bk)
    summed = tf.matmul(spectrum, phase)                                 # (P, K, B, D)
    maps = tf.signal.irfft(tf.transpose(summed, [2, 0, 3, 1]), fft_length=[n])      # (B, P, D, n)
    return maps[..., :freq] / np.float32(np.sqrt(time))


def dedoppler(cadence: tf.Tensor, cfg: DedopplerConfig = DedopplerConfig()) -> tf.Tensor:
    """Raw cadences ``(B, P, T, F)`` -> de-Doppler maps ``(B, P, drifts, F)`` float32, in SNR units."""
    cadence = tf.convert_to_tensor(cadence)
    time = cadence.shape[2]
    return drift_sums(clean(block_rows(cadence, cfg), cfg, time), cfg, time)
