"""Speed of the de-Doppler kernels on one GBT-like spectrogram: ``tfseti.dedoppler.taylor``'s Taylor
tree and brute force (numpy + Numba) against the TensorFlow kernel ``tfseti.data.drift_sums``, in
one run.

    python -m benchmarks.taylor_bench [--rows 16] [--channels 262144] [--threads 2] [--repeat 3]

Every kernel computes the same drift grid, turboSETI's up to one channel per row: ``2 T_pad - 1``
rates ``d / (T_pad - 1)``, ``|d| < T_pad`` (31 rates for 16 rows), on random float32 data:

* ``tree``: ``taylor_dedoppler`` (two Taylor trees, positive and negative drifts), whole band;
* ``brute``: ``brute_force`` at the same rates, whole band;
* ``tf``: ``drift_sums.drift_sums`` (FFT shift-and-sum, compiled with ``tf.function``; no
  cleaning, one row per block, reference at the centre row) on the band cut into windows of
  ``--tf-window`` channels as one batch, the way the scan feeds it (paths crossing a window edge
  are cut there, so its output is not the same maps, only the same amount of work per channel).

Prints seconds (best of ``--repeat``, after one warm-up call that also compiles), input MB/s and
each kernel's time relative to ``tree``. Timings depend on the machine and its load: compare rows
of one run only.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np


def best_time(fn, repeat: int) -> float:
    fn()                                     # compile / trace / warm up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.taylor_bench",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--channels", type=int, default=1 << 18)
    parser.add_argument("--threads", type=int, default=2, help="Numba and TensorFlow threads")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tf-window", type=int, default=1024,
                        help="channels per window of the TensorFlow kernel's batch")
    parser.add_argument("--no-tf", action="store_true", help="skip the TensorFlow kernel")
    args = parser.parse_args(argv)

    import numba

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    from tfseti.dedoppler import taylor as tt

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.rows, args.channels), dtype=np.float32)
    n = tt.padded_time(args.rows)
    drifts = 2 * n - 1
    rates = np.concatenate([-tt.drift_rates(args.rows)[:0:-1], tt.drift_rates(args.rows)])
    megabytes = x.nbytes / 1e6

    results = {}
    results["tree"] = best_time(lambda: tt.taylor_dedoppler(x), args.repeat)
    results["brute"] = best_time(lambda: tt.brute_force(x, rates), args.repeat)

    if not args.no_tf:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        from tfseti.data import drift_sums as ds
        from tfseti.data.config import DedopplerConfig

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
        cfg = DedopplerConfig(max_drift=float(rates[-1]), drifts=drifts, block=1,
                              background="panel_median", reference="panel", clip=0.0)
        assert np.allclose(ds.drift_rates(cfg), rates)
        windows = args.channels // args.tf_window
        batch = np.ascontiguousarray(
            x[:, :windows * args.tf_window].reshape(args.rows, windows, args.tf_window)
            .transpose(1, 0, 2)[:, None])                               # (N, 1, T, W)
        op = tf.function(lambda v: ds.drift_sums(v, cfg, args.rows))
        tensor = tf.constant(batch)
        results["tf"] = best_time(lambda: op(tensor).numpy(), args.repeat) * (
            args.channels / (windows * args.tf_window))

    print(f"spectrogram {args.rows} x {args.channels} float32 ({megabytes:.1f} MB), {drifts} drift "
          f"rates (|r| <= {rates[-1]:g} ch/row), {args.threads} threads, "
          f"numba {numba.__version__}")
    print(f"{'kernel':<8} {'seconds':>9} {'MB/s':>9} {'x tree':>8}")
    for name, seconds in results.items():
        print(f"{name:<8} {seconds:9.4f} {megabytes / seconds:9.1f} {seconds / results['tree']:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
