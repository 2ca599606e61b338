"""The Taylor-tree de-Doppler of :mod:`tfseti.dedoppler.taylor` as TensorFlow ops, for XLA.

Meant for accelerators (GPU/TPU) and for the ``dedoppler`` view of the models: every op has a
static shape (the spectrogram's ``T`` and ``F`` must be known when the function is traced), so
``tf.function(taylor_tree_tf, jit_compile=True)`` compiles to one XLA program per input shape and
set of Python arguments. :data:`taylor_tree_xla` and :data:`taylor_dedoppler_xla` are those
compiled functions. On CPU the numpy + Numba kernel (:func:`tfseti.dedoppler.taylor.taylor_tree`)
is the one to use; this module imports TensorFlow, and nothing else in ``tfseti.dedoppler``
imports it at module level.

Contract
--------
The same as :func:`tfseti.dedoppler.taylor.taylor_tree` and
:func:`tfseti.dedoppler.taylor.taylor_dedoppler` (see that module's notes; tested equal in
``tests/dedoppler/test_taylor_tf.py``): input ``(T, F)`` or ``(B, T, F)``; the time axis is padded
with zero rows to ``T_pad`` (the next power of two); output row ``d`` of ``taylor_tree_tf`` is, for
every start channel ``f``, ``sum_t x[t, f + s (drift_block t + tree_offsets(T_pad, d)[t])]`` with
``s = -1`` if ``negative`` else ``+1``; channels outside the band read as zero; ``desmear`` (with
``drift_block = b >= 1``) adds, in each row, the ``b + 1`` channels from the path's channel
onwards (mirrored when ``negative``).

Dtypes: float32, and bfloat16 / float16 (float64 is converted, as in the numpy kernel). Every
input is cast to float32 first, so the tree accumulates in float32 and the output is float32
whatever the input dtype: a bfloat16 spectrogram (8 bits of mantissa) gives the float32 tree of
its rounded values, not a bfloat16 sum whose error would grow with ``log2 T_pad`` stages.

How it is built (XLA-friendly)
------------------------------
The ``log2(T_pad)`` stages are unrolled at trace time; each is a handful of whole-array ops. A
stage of block size ``2h`` views the rows as ``(..., G, 2, h, W)`` and writes, for ``e < h``,
rows ``2e`` and ``2e + 1`` of each block as ``first[e] + second[e]`` moved ``e`` resp. ``e + 1``
channels. The per-row move (row ``e`` by ``c e + o`` channels) is a skew done with static
pad/reshape/slice, no gather and no loop over rows: pad each row with zeros to ``L`` channels,
flatten, and re-read the flat array as rows of ``L + c`` from offset ``o``; row ``e`` then starts
``c e + o`` further along its own data. The ``drift_block`` shift of the input rows (``b t``) is the
same skew with ``c = b``, and desmearing is a window sum of ``b + 1`` static slices before it.
Positive paths only move up in channel, so the working width is the band itself (a partial sum
that starts past the band is zero); negative drifts are the positive tree of the flipped band,
flipped back (turboSETI's own construction).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfseti.dedoppler.taylor import drift_rates, padded_time

_ACCEPTED = (tf.float32, tf.bfloat16, tf.float16, tf.float64)


def _as_batch(x, what: str) -> tuple[tf.Tensor, bool]:
    """``(B, T, F)`` float32 tensor of ``x`` (static shape) and whether ``x`` was unbatched."""
    if not isinstance(x, (tf.Tensor, tf.Variable)):
        x = np.asarray(x)
        if x.dtype not in (np.float32, np.float16, np.float64) and x.dtype != tf.bfloat16.as_numpy_dtype:
            raise ValueError(f"{what}: expected a float32 or bfloat16 spectrogram, got dtype {x.dtype}")
    x = tf.convert_to_tensor(x)
    if x.dtype not in _ACCEPTED:
        raise ValueError(f"{what}: expected a float32 or bfloat16 spectrogram (float16/float64 are "
                         f"converted), got dtype {x.dtype.name}")
    shape = x.shape
    if shape.rank not in (2, 3):
        raise ValueError(f"{what}: expected a spectrogram (time, freq) or a batch (batch, time, freq), "
                         f"got shape {shape}")
    if not shape[1:].is_fully_defined() or (shape.rank == 2 and shape[0] is None):
        raise ValueError(f"{what}: the time and frequency axes need static sizes (XLA), got {shape}")
    if any(s is not None and s < 1 for s in shape.as_list()):
        raise ValueError(f"{what}: empty spectrogram, shape {shape}")
    single = shape.rank == 2
    if single:
        x = x[None]
    return tf.cast(x, tf.float32), single


def _move(m: tf.Tensor, step: int, offset: int) -> tf.Tensor:
    """``out[..., e, j] = m[..., e, j + step e + offset]`` (zero past the last channel) for ``m``
    ``(..., h, W)`` with static ``h``, ``W``; ``step, offset >= 0``. Static pad/reshape/slice only."""
    h, width = m.shape[-2], m.shape[-1]
    lead = tf.shape(m)[:-2]
    if step == 0:
        if offset == 0:
            return m
        if offset >= width:
            return tf.zeros_like(m)
        pad = [[0, 0]] * (m.shape.rank - 1) + [[0, offset]]
        return tf.pad(m[..., offset:], pad)
    # Row e reads j + step e + offset < L for every j < W, e < h: padded to L channels, flat index
    # e L + j + step e + offset = e (L + step) + j + offset.
    length = width + step * (h - 1) + offset
    pad = [[0, 0]] * (m.shape.rank - 1) + [[0, length - width]]
    flat = tf.reshape(tf.pad(m, pad), tf.concat([lead, [h * length]], 0))
    need = offset + h * (length + step)
    flat = tf.pad(flat, [[0, 0]] * (m.shape.rank - 2) + [[0, need - h * length]])
    rows = tf.reshape(flat[..., offset:need], tf.concat([lead, [h, length + step]], 0))
    return rows[..., :width]


def _window_sum(x: tf.Tensor, k: int) -> tf.Tensor:
    """``out[..., j] = sum_{i < k} x[..., j + i]`` (zero past the last channel)."""
    out = x
    for i in range(1, k):
        out = out + _move(x, 0, i)
    return out


def _positive_tree(x: tf.Tensor, drift_block: int, width_k: int) -> tf.Tensor:
    """The tree of ``x`` ``(B, T, F)`` float32, paths going up: ``(B, T_pad, F)`` float32."""
    time, freq = x.shape[1], x.shape[2]
    n = padded_time(time)
    if width_k > 1:
        x = _window_sum(x, width_k)
    x = _move(x, drift_block, 0)             # row t read from t * drift_block channels up
    if n > time:
        x = tf.pad(x, [[0, 0], [0, n - time], [0, 0]])
    lead = tf.shape(x)[:1]
    h = 1
    while h < n:
        # blocks of 2h rows: (B, G, 2, h, F); row d = 2e + p of a block is first[e] + second[e]
        # moved e + p channels.
        blocks = tf.reshape(x, tf.concat([lead, [n // (2 * h), 2, h, freq]], 0))
        first, second = blocks[:, :, 0], blocks[:, :, 1]
        even = _move(second, 1, 0)
        odd = _move(even, 0, 1)
        x = tf.reshape(tf.stack([first + even, first + odd], axis=3),
                       tf.concat([lead, [n, freq]], 0))
        h *= 2
    return x


def _check_block(drift_block, what: str) -> int:
    if int(drift_block) != drift_block or drift_block < 0:
        raise ValueError(f"{what}: drift_block must be an integer >= 0, got {drift_block!r}")
    return int(drift_block)


def taylor_tree_tf(x, negative: bool = False, drift_block: int = 0, desmear: bool = False) -> tf.Tensor:
    """Taylor-tree de-Doppler of ``(T, F)`` or ``(B, T, F)`` -> ``(T_pad, F)`` / ``(B, T_pad, F)``
    float32 tensor: :func:`tfseti.dedoppler.taylor.taylor_tree` in TensorFlow ops (same sums).

    ``negative``, ``drift_block`` and ``desmear`` are Python values (static: a ``tf.function``
    traces once per combination). Compile with ``tf.function(..., jit_compile=True)`` or use
    :data:`taylor_tree_xla`. The batch size may be dynamic; ``T`` and ``F`` must be static.
    """
    x, single = _as_batch(x, "taylor_tree_tf")
    drift_block = _check_block(drift_block, "taylor_tree_tf")
    width_k = drift_block + 1 if desmear and drift_block >= 1 else 1
    if negative:
        out = tf.reverse(_positive_tree(tf.reverse(x, [2]), drift_block, width_k), [2])
    else:
        out = _positive_tree(x, drift_block, width_k)
    return out[0] if single else out


def taylor_dedoppler_tf(x) -> tuple[tf.Tensor, tf.Tensor]:
    """Both drift signs up to one channel per row: ``(maps, rates)``, maps ``(T_pad * 2 - 1, F)`` /
    ``(B, T_pad * 2 - 1, F)`` float32 and rates ``(T_pad * 2 - 1,)`` float32 channels per row,
    ascending: :func:`tfseti.dedoppler.taylor.taylor_dedoppler` in TensorFlow ops (the float64
    rates are ``taylor_dedoppler``'s; float32 here so that the function also runs on a TPU).

    Row ``i`` is drift index ``i - (T_pad - 1)``: rows ``T_pad - 1 ..`` are ``taylor_tree_tf(x)``,
    rows below are ``taylor_tree_tf(x, negative=True)[::-1]`` without its drift 0.
    """
    x, single = _as_batch(x, "taylor_dedoppler_tf")
    up = _positive_tree(x, 0, 1)
    n = up.shape[1]
    if n > 1:
        down = tf.reverse(_positive_tree(tf.reverse(x, [2]), 0, 1)[:, 1:], [1, 2])
        maps = tf.concat([down, up], axis=1)
    else:
        maps = up
    rates = drift_rates(x.shape[1])
    rates = tf.constant(np.concatenate([-rates[:0:-1], rates]), tf.float32)
    return (maps[0] if single else maps), rates


#: ``taylor_tree_tf`` compiled with XLA (one program per input shape, dtype and Python arguments).
taylor_tree_xla = tf.function(taylor_tree_tf, jit_compile=True)
#: ``taylor_dedoppler_tf`` compiled with XLA.
taylor_dedoppler_xla = tf.function(taylor_dedoppler_tf, jit_compile=True)
