"""Stateless, reproducible random numbers for the batched augmentations.

Every random draw of the pipeline comes from a ``[2]`` int64 seed made of the config seed and the
training step (``step_seed``), split into one seed per op at a fixed position (``split``, see
``augment.OP_IDS``): a resumed run reproduces its batches, and adding an op does not change the
draws of the others.

Floats are made from Philox integer bits here rather than with ``tf.random.stateless_uniform``:
TF's float kernels give different numbers in eager/tf.data and under XLA, the integer ones do not,
so the same seed gives the same batch whether augmentation runs on the host or in the compiled
step (up to float rounding). ``alg="philox"`` is explicit: the automatic choice is ThreeFry under
XLA on CPU, about 80x slower, and differs between devices.
"""

from __future__ import annotations

import math

import tensorflow as tf

ALG = "philox"
_BITS = 24   # float32 mantissa: every value (k + 0.5) / 2**24 is exact

# Each Philox call costs about half a second of XLA compile time on a CPU, so ops draw all their
# numbers in one call (``uniform([n, B], seed)``) and split the seed once per step (``split``).


def step_seed(seed, step) -> tf.Tensor:
    """The ``[2]`` int64 seed of one training step."""
    return tf.stack([tf.cast(seed, tf.int64), tf.cast(step, tf.int64)])


def op_seed(seed: tf.Tensor, op_id) -> tf.Tensor:
    """An independent ``[2]`` seed for sub-stream ``op_id`` of ``seed``."""
    return tf.random.experimental.stateless_fold_in(seed, tf.cast(op_id, tf.int64), alg=ALG)


def split(seed: tf.Tensor, num: int) -> tf.Tensor:
    """``num`` independent ``[2]`` seeds as rows of a ``[num, 2]`` tensor (one Philox call)."""
    return tf.random.experimental.stateless_split(seed, num=num, alg=ALG)


def uniform(shape, seed) -> tf.Tensor:
    """float32 uniform on the open interval (0, 1)."""
    bits = tf.random.stateless_uniform(shape, seed, minval=0, maxval=2 ** _BITS, dtype=tf.int32,
                                       alg=ALG)
    return (tf.cast(bits, tf.float32) + 0.5) * (1.0 / 2 ** _BITS)


def box_muller(u1: tf.Tensor, u2: tf.Tensor) -> tf.Tensor:
    """Standard normals from two uniforms on (0, 1)."""
    return tf.sqrt(-2.0 * tf.math.log(u1)) * tf.cos((2.0 * math.pi) * u2)


def normal(shape, seed) -> tf.Tensor:
    """float32 standard normal: 24-bit uniforms through the inverse normal CDF (erfinv, a
    polynomial, fast under XLA; XLA's CPU cos is not, so no Box-Muller). |z| <= 5.3."""
    bits = tf.random.stateless_uniform(shape, seed, minval=None, maxval=None, dtype=tf.uint32,
                                       alg=ALG)
    u = (tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32) + 0.5) * (1.0 / 2 ** _BITS)
    return math.sqrt(2.0) * tf.math.erfinv(2.0 * u - 1.0)


def to_int(u: tf.Tensor, low, high) -> tf.Tensor:
    """Map uniforms on (0, 1) to int32 uniform on ``[low, high]`` (bounds may be per-sample)."""
    low = tf.cast(low, tf.float32)
    high = tf.cast(high, tf.float32)
    return tf.cast(tf.minimum(tf.floor(low + u * (high - low + 1.0)), high), tf.int32)


def randint(shape, seed, low, high) -> tf.Tensor:
    """int32 uniform on ``[low, high]`` inclusive; ``low``/``high`` may be per-sample tensors."""
    return to_int(uniform(shape, seed), low, high)


def bernoulli(shape, seed, p) -> tf.Tensor:
    """bool, True with probability ``p`` (exactly never for p = 0, always for p = 1)."""
    return uniform(shape, seed) < tf.cast(p, tf.float32)


def gamma(shape, seed, alpha: float, rounds: int = 8) -> tf.Tensor:
    """float32 Gamma(alpha, 1) by Marsaglia-Tsang with a fixed number of proposals.

    ``tf.random.stateless_gamma`` has no XLA kernel; this draws ``rounds`` proposals at once and
    keeps the first accepted one (acceptance >= 95 % per proposal, so all fail with p < 1e-10;
    then the mode is returned). alpha < 1 uses Gamma(alpha + 1) * U ** (1 / alpha).
    """
    if alpha <= 0:
        raise ValueError(f"gamma: alpha must be > 0, got {alpha}")
    a = alpha + 1.0 if alpha < 1.0 else alpha
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    shape = list(shape)
    u = uniform([4] + shape + [rounds], seed)
    x = box_muller(u[0], u[1])
    v = tf.pow(1.0 + c * x, 3.0)
    safe_v = tf.maximum(v, 1e-30)
    accept = (v > 0.0) & (tf.math.log(u[2]) < 0.5 * tf.square(x) + d - d * safe_v + d * tf.math.log(safe_v))
    first = tf.argmax(tf.cast(accept, tf.int32), axis=-1, output_type=tf.int32)
    chosen = tf.gather(d * safe_v, first, axis=-1, batch_dims=len(shape))
    sample = tf.where(tf.reduce_any(accept, axis=-1), chosen, d)
    if alpha < 1.0:
        sample = sample * tf.pow(u[3][..., 0], 1.0 / alpha)
    return sample


def beta(shape, seed, alpha: float) -> tf.Tensor:
    """float32 Beta(alpha, alpha) as G1 / (G1 + G2) of two independent gammas (one draw)."""
    g = gamma([2] + list(shape), seed, alpha)
    return g[0] / (g[0] + g[1])
