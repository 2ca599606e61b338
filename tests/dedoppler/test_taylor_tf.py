"""tfseti.dedoppler.taylor_tf: the XLA Taylor tree equals the numpy + Numba one (tfseti.dedoppler.taylor)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from tfseti.dedoppler import taylor as tt  # noqa: E402
from tfseti.dedoppler import taylor_tf as tx  # noqa: E402


def _noise(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _close(got, want, what=""):
    got = np.asarray(got)
    assert got.shape == want.shape, what
    assert got.dtype == np.float32, what
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * scale, err_msg=what)


@pytest.mark.parametrize("time", [1, 2, 5, 16, 20, 64])
@pytest.mark.parametrize("freq", [7, 300])
def test_tree_equals_numpy_kernel(time, freq):
    """Every sign, drift_block 0/1/2 and desmear, on a batch (TF ops run eagerly here; the same ops
    are compiled by XLA in the tests below)."""
    x = _noise((2, time, freq), seed=time * 1000 + freq)
    for negative in (False, True):
        for block in (0, 1, 2):
            for desmear in (False, True):
                want = tt.taylor_tree(x, negative, block, desmear)
                got = tx.taylor_tree_tf(x, negative, block, desmear)
                _close(got, want, f"T={time} F={freq} neg={negative} b={block} desmear={desmear}")
    # unbatched: the batch axis is dropped as in the numpy kernel
    for negative in (False, True):
        want = tt.taylor_tree(x[1], negative, 2, True)
        _close(tx.taylor_tree_tf(x[1], negative, 2, True), want, f"unbatched T={time} F={freq}")


@pytest.mark.parametrize("shape, negative, block, desmear", [
    ((3, 20, 300), True, 2, True),
    ((20, 300), False, 1, False),
    ((4, 5, 7), False, 0, False),
])
def test_jit_compiled_tree_equals_numpy_kernel(shape, negative, block, desmear):
    x = _noise(shape, seed=7)
    fn = tf.function(tx.taylor_tree_tf, jit_compile=True)
    xt = tf.constant(x)
    hlo = fn.experimental_get_compiler_ir(xt, negative, block, desmear)(stage="hlo")
    assert "HloModule" in hlo
    _close(fn(xt, negative, block, desmear), tt.taylor_tree(x, negative, block, desmear))


def test_jit_dedoppler_equals_numpy_kernel():
    x = _noise((2, 20, 300), seed=3)
    want, want_rates = tt.taylor_dedoppler(x)
    maps, rates = tx.taylor_dedoppler_xla(tf.constant(x))
    _close(maps, want)
    assert rates.dtype == tf.float32
    np.testing.assert_allclose(rates.numpy(), want_rates, rtol=1e-6, atol=1e-7)
    # unbatched and one row (T_pad = 1: a single drift), eagerly
    want1, rates1 = tt.taylor_dedoppler(x[0])
    maps1, r1 = tx.taylor_dedoppler_tf(x[0])
    _close(maps1, want1)
    np.testing.assert_allclose(r1.numpy(), rates1, rtol=1e-6, atol=1e-7)
    one, one_rates = tx.taylor_dedoppler_tf(x[:, :1])
    _close(one, tt.taylor_dedoppler(x[:, :1])[0])
    assert one_rates.shape == (1,)


def test_bfloat16_accumulates_in_float32():
    x = _noise((2, 16, 300), seed=5) + 4.0
    xb = tf.constant(x, tf.bfloat16)
    got = tx.taylor_tree_xla(xb, True, 1, True)
    assert got.dtype == tf.float32
    # exactly the float32 tree of the rounded input ...
    rounded = xb.numpy().astype(np.float32)
    _close(got, tt.taylor_tree(rounded, True, 1, True))
    # ... and close to the float32 tree (bfloat16 keeps 8 bits: relative 2^-9 per value)
    want = tt.taylor_tree(x, True, 1, True)
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-2 * np.abs(want).max())


def test_dynamic_batch_in_tf_function():
    fn = tf.function(tx.taylor_tree_tf, input_signature=[tf.TensorSpec([None, 5, 7], tf.float32)])
    x = _noise((3, 5, 7), seed=9)
    _close(fn(x), tt.taylor_tree(x))


def test_bad_inputs():
    with pytest.raises(ValueError, match="dtype"):
        tx.taylor_tree_tf(np.zeros((4, 8), np.int32))
    with pytest.raises(ValueError, match="shape"):
        tx.taylor_tree_tf(np.zeros(8, np.float32))
    with pytest.raises(ValueError, match="drift_block"):
        tx.taylor_tree_tf(np.zeros((4, 8), np.float32), drift_block=-1)
    with pytest.raises(ValueError, match="static"):
        tf.function(tx.taylor_tree_tf,
                    input_signature=[tf.TensorSpec([None, None, 8], tf.float32)]).get_concrete_function()


def test_cpu_kernels_import_no_tensorflow():
    code = ("import sys; import tfseti.dedoppler, tfseti.dedoppler.taylor, "
            "tfseti.dedoppler.band_search, tfseti.dedoppler.hitsearch; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
