"""Speed of the classical search: cadences per second of ``tfseti.dedoppler`` scoring, against a
plain numpy brute-force de-Doppler (the loop a user would write first) in the same run.

    python -m benchmarks.dedoppler_bench [--cadences 512] [--batch 64] [--threads 2]

Prints, for random Kaggle-shaped cadences ``(6, 273, 256)`` float16:

* ``op``: ``tfseti.data.drift_sums.dedoppler`` alone (the maps, as the ``dedoppler`` view computes
  them), compiled with ``tf.function``;
* ``scores``: ``tfseti.dedoppler.scores.score_batch`` (both alignments, every score and the hit),
  what ``python -m tfseti.dedoppler`` runs per batch;
* ``numpy``: the same maps by brute force in numpy (per drift, shift each block and add), timed on
  a few cadences;

and the ratios ``scores / numpy`` and ``op / numpy``. The target on 2 CPU cores is at least 200
cadences/s for ``scores``.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def numpy_maps(cadence: np.ndarray, cfg) -> np.ndarray:
    """Brute-force maps of one cleaned cadence's block sums ``(P, Bk, F)``: ``(P, D, F)``."""
    from tfseti.data import drift_sums as ds

    panels, blocks, freq = cadence.shape
    shifts = ds.block_shifts(cfg, panels, 273)
    out = np.zeros((panels, cfg.drifts, freq), np.float32)
    padded = np.zeros((panels, blocks, 3 * freq), np.float32)
    padded[:, :, freq:2 * freq] = cadence
    for p in range(panels):
        for d in range(cfg.drifts):
            for b in range(blocks):
                s = shifts[p, d, b]
                out[p, d] += padded[p, b, freq + s:2 * freq + s]
    return out / np.sqrt(273)


def rate(fn, batches: list, repeat: int = 1) -> float:
    fn(batches[0])                      # trace / warm up
    start = time.perf_counter()
    n = 0
    for _ in range(repeat):
        for batch in batches:
            fn(batch)
            n += len(batch)
    return n / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dedoppler_bench",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--cadences", type=int, default=512)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow intra-op threads")
    parser.add_argument("--numpy-cadences", type=int, default=4)
    args = parser.parse_args(argv)

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from tfseti.data import drift_sums as ds
    from tfseti.dedoppler.scores import score_batch

    cfg = ds.DedopplerConfig()
    rng = np.random.default_rng(0)
    data = rng.standard_normal((args.cadences, 6, 273, 256), dtype=np.float32).astype(np.float16)
    batches = [data[i:i + args.batch] for i in range(0, len(data), args.batch)]

    op = tf.function(lambda x: ds.dedoppler(x, cfg))
    op_rate = rate(lambda b: op(b).numpy(), batches)
    scores_rate = rate(lambda b: score_batch(b, cfg), batches)

    cleaned = ds.clean(ds.block_rows(data[:args.numpy_cadences], cfg), cfg, 273).numpy()
    start = time.perf_counter()
    for cadence in cleaned:
        numpy_maps(cadence, cfg)
    numpy_rate = len(cleaned) / (time.perf_counter() - start)

    print(f"{'what':<8} {'cadences/s':>11}")
    print(f"{'op':<8} {op_rate:11.1f}")
    print(f"{'scores':<8} {scores_rate:11.1f}")
    print(f"{'numpy':<8} {numpy_rate:11.1f}")
    print(f"ratio scores/numpy: {scores_rate / numpy_rate:.1f}x   op/numpy: {op_rate / numpy_rate:.1f}x")
    print(f"target: scores >= 200 cadences/s on 2 cores: {'met' if scores_rate >= 200 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
