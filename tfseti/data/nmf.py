"""NMF background model: the OFF panels factorised, every panel minus its reconstruction.

A seed technique of the competition ("NMF denoised image as an extra channel"). The OFF panels
(B, C, D) of a cadence hold only what does not come from the target: the bandpass, steady or
slowly changing RFI, gain drifts. Stacked in time, they form a ``3T x F`` matrix that a few
non-negative spectral profiles explain: ``V_off ~ W_off H``, ``H`` (``rank x F``) the background
spectra, ``W_off`` (``3T x rank``) how strongly each is present in each row. With ``H`` fixed, the
ON panels' own weights ``W_on`` are fitted the same way, so ``W_on H`` is the ON panels' background
*as the OFF panels describe it*; ``ON - W_on H`` keeps what the OFF spectra cannot explain: a
needle, which is narrow-band and only ON target, survives; the bandpass and RFI seen in the OFF
pointings go. Unlike ``off_median`` (one level per channel for the whole cadence) the weights
follow the background's changes over time, row by row.

How (``nmf_residual``), per cadence, all batched and static-shaped:

1. **Non-negative by a shift.** NMF needs ``V >= 0``; the Kaggle panels are standardised (negative
   values). Every panel is shifted by ``min(0, min(cadence))`` (the cadence's minimum over all
   six panels, or nothing when it is already non-negative), a constant that only moves the
   reconstruction's level and cancels in ``ON - reconstruction``. Then everything is divided by the
   shifted cadence's mean (put back at the end), so the updates run at unit scale whatever the
   input's units (the result is scale-equivariant and ``NMF_EPSILON`` is a relative guard).
2. **Lee–Seung multiplicative updates** for the Frobenius loss ``|V_off - W H|^2``,
   ``nmf_iterations`` of them: ``H <- H * (W^T V) / (W^T W H + eps)``, then
   ``W <- W * (V H^T) / (W H H^T + eps)``. They keep both factors non-negative and never increase
   the loss. Initialisation (sklearn's ``init="random"``, deterministic): ``W, H = a * U`` with
   ``a = sqrt(mean(V_off) / rank)`` and ``U`` a fixed uniform ``[0.5, 1.5)`` pattern drawn once
   from ``numpy.random.default_rng(INIT_SEED)`` (``init_patterns``): the same for every cadence,
   so the channel is a pure function of the cadence; distinct columns break the factors'
   symmetry. The patterns are palindromes in time and frequency, so the channel commutes with
   the time and frequency flips (of the ``on`` / ``on_off`` views: flip TTA stays exact).
3. **ON weights with H fixed**: ``W_on <- W_on * (V_on H^T) / (W_on H H^T + eps)``, as many
   iterations, from each ON row's own level (``W_on[t, :] = mean_f V_on[t] / sum_k mean_f H[k]``);
   with ``H`` fixed this is a non-negative least-squares fit per row (convex), so it converges to
   the best fit whatever the start.
4. **Residual**: ``V - W H`` for every panel (OFF rows with ``W_off``, ON rows with ``W_on``),
   scaled back, in the cadence's panel order ``(B, 6, T, F)``.

Cost: ``4 * rank * 3T * F`` multiply-adds per iteration (two ``3T x F`` by ``rank`` products), about
170 MFLOP per Kaggle cadence at rank 4 and 50 iterations, all in batched matrix products;
measured with ``benchmarks/pipeline_bench.py --nmf``. Multiplicative updates converge slowly (an
exactly rank-3 non-negative background of random factors is fitted to about 6 % relative error
after 50 iterations and 1 % after 200), but the background's strong, smooth components come first:
on noise cadences with a bandpass and a gain drift the residual's norm after 50 iterations is
within 2 % of its value after 1,000.

``ViewConfig(extra_channels=("nmf",), nmf_rank=4, nmf_iterations=50)`` appends the residual as
an image channel (``tfseti.data.views``). Float32 inside (the input's dtype out); compiles with
XLA (``jit_compile=True``: the iterations are a ``tf.while_loop``) and runs in ``tf.data`` maps.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from tfseti.io.kaggle import OFF_PANELS, ON_PANELS

NMF_EPSILON = 1e-9      # added to every update's denominator (the data are at unit mean here)
INIT_SEED = 0           # seed of the fixed initialisation pattern (init_patterns)
_TINY = 1e-30           # floor of the cadence scale (an all-zero shifted cadence)


def _palindrome(rng: np.random.Generator, length: int, rank: int) -> np.ndarray:
    half = rng.uniform(0.5, 1.5, ((length + 1) // 2, rank))
    return np.concatenate([half, half[: length // 2][::-1]]).astype(np.float32)   # (length, rank)


@functools.lru_cache(maxsize=16)
def init_patterns(rows: int, freq: int, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """The fixed ``U_w (rows, rank)`` and ``U_h (rank, freq)`` float32 patterns in ``[0.5, 1.5)``
    that, times ``sqrt(mean(V_off) / rank)``, start the OFF factorisation (seed ``INIT_SEED``).

    Both are palindromes (``U_w`` along its rows, ``U_h`` along frequency): reversing time (with
    the OFF panels' order) or frequency reverses the start the same way, and every update is
    equivariant to such permutations, so the channel of a flipped cadence is the flipped channel
    (flip TTA, ``tfseti.predict.tta``, stays exact)."""
    rng = np.random.default_rng(INIT_SEED)
    u_w = _palindrome(rng, rows, rank)
    u_h = np.ascontiguousarray(_palindrome(rng, freq, rank).T)
    u_w.flags.writeable = u_h.flags.writeable = False
    return u_w, u_h


def _check(cadence: tf.Tensor, rank: int, iterations: int) -> None:
    if cadence.shape.rank != 4:
        raise ValueError(f"cadence batch: expected rank 4 (batch, panels, time, freq), got shape "
                         f"{cadence.shape}")
    _, panels, time, freq = cadence.shape
    if panels != 6:
        raise ValueError(f"extra channel 'nmf' needs the OFF panels (B, C, D), but these cadences "
                         f"hold {panels} panels (ON-only shards, converted with --panels on, hold "
                         f"3); drop view.extra_channels or convert with --panels all")
    if not (isinstance(rank, int) and 1 <= rank <= min(3 * time, freq)):
        raise ValueError(f"ViewConfig.nmf_rank: expected an int in [1, {min(3 * time, freq)}] "
                         f"(at most the OFF matrix's 3T = {3 * time} rows and F = {freq} channels), "
                         f"got {rank!r}")
    if not (isinstance(iterations, int) and iterations >= 1):
        raise ValueError(f"ViewConfig.nmf_iterations: expected an int >= 1, got {iterations!r}")


def _repeat(body, iterations: int, state: tuple) -> tuple:
    """``state = body(*state)`` ``iterations`` times, as one ``tf.while_loop`` (XLA-compilable)."""
    def loop(i, *s):
        return (i + 1, *body(*s))
    out = tf.while_loop(lambda i, *s: i < iterations, loop, (tf.constant(0), *state),
                        maximum_iterations=iterations)
    return tuple(out[1:])


def nmf_residual(cadence: tf.Tensor, rank: int = 4, iterations: int = 50) -> tf.Tensor:
    """Every panel minus its NMF background (see the module doc): ``(B, 6, T, F)`` -> same shape
    and dtype. OFF panels: ``V_off - W_off H``; ON panels: ``V_on - W_on H`` with ``H`` fitted on
    the OFF panels only."""
    cadence = tf.convert_to_tensor(cadence)
    _check(cadence, rank, iterations)
    _, _, time, freq = cadence.shape
    x = tf.cast(cadence, tf.float32)
    shift = tf.minimum(tf.reduce_min(x, axis=[1, 2, 3], keepdims=True), 0.0)      # (B, 1, 1, 1)
    v = x - shift
    scale = tf.maximum(tf.reduce_mean(v, axis=[1, 2, 3], keepdims=True), _TINY)
    v = v / scale
    v_off = tf.reshape(tf.gather(v, OFF_PANELS, axis=1), [-1, 3 * time, freq])   # (B, 3T, F)
    v_on = tf.reshape(tf.gather(v, ON_PANELS, axis=1), [-1, 3 * time, freq])

    u_w, u_h = init_patterns(3 * time, freq, rank)
    a = tf.sqrt(tf.reduce_mean(v_off, axis=[1, 2], keepdims=True) / rank)          # (B, 1, 1)
    w0 = a * tf.constant(u_w)                                                     # (B, 3T, k)
    h0 = a * tf.constant(u_h)                                                     # (B, k, F)

    def off_step(w, h):
        h = h * tf.matmul(w, v_off, transpose_a=True) / (
            tf.matmul(tf.matmul(w, w, transpose_a=True), h) + NMF_EPSILON)
        w = w * tf.matmul(v_off, h, transpose_b=True) / (
            tf.matmul(w, tf.matmul(h, h, transpose_b=True)) + NMF_EPSILON)
        return w, h

    w_off, h = _repeat(off_step, iterations, (w0, h0))

    # ON weights with H fixed: V_on H^T and H H^T are constants of the loop.
    vh = tf.matmul(v_on, h, transpose_b=True)                                     # (B, 3T, k)
    hh = tf.matmul(h, h, transpose_b=True)                                        # (B, k, k)
    level = tf.reduce_sum(tf.reduce_mean(h, axis=2), axis=1)[:, None, None]       # (B, 1, 1)
    w_on0 = tf.reduce_mean(v_on, axis=2, keepdims=True) / (level + NMF_EPSILON) * tf.ones_like(vh)

    def on_step(w):
        return (w * vh / (tf.matmul(w, hh) + NMF_EPSILON),)

    (w_on,) = _repeat(on_step, iterations, (w_on0,))

    r_on = tf.reshape(v_on - tf.matmul(w_on, h), [-1, 3, time, freq])
    r_off = tf.reshape(v_off - tf.matmul(w_off, h), [-1, 3, time, freq])
    # Back to the cadence's panel order: ON_PANELS = (0, 2, 4), OFF_PANELS = (1, 3, 5).
    residual = tf.reshape(tf.stack([r_on, r_off], axis=2), [-1, 6, time, freq]) * scale
    return tf.cast(residual, cadence.dtype)
