"""Speed of the XLA Taylor tree (``tfseti.dedoppler.taylor_tf``) against the numpy + Numba tree
(``tfseti.dedoppler.taylor.taylor_tree``), in one run.

    python -m benchmarks.taylor_tf_bench [--threads 2] [--repeat 5] [--out taylor_tf.json]

Cases (float32 random data, positive drifts, ``drift_block`` 0): one GBT-like spectrogram
``(16, 2^20)`` and a batch of windows ``(64, 273, 256)`` (``T_pad = 512``). Kernels:

* ``numba``: ``taylor_tree`` on the CPU (``--threads`` Numba threads);
* ``xla``: ``taylor_tree_xla`` (``tf.function(jit_compile=True)``) on the first GPU if TensorFlow
  sees one, else the CPU; the input already on the device, the output left there (synchronised
  before the clock stops): the kernel alone;
* ``xla+copy``: the same with a numpy array in and a numpy array out (host transfers included).

Prints seconds (best of ``--repeat``, after a warm-up call that also compiles; the compile time is
printed separately), GB/s of input and each kernel's speed relative to ``numba``, and the largest
difference between the two trees' outputs. Timings depend on the machine and its load: compare
rows of one run only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

CASES = {"16x2^20": (16, 1 << 20), "64x273x256": (64, 273, 256)}


def timed(fn, repeat: int) -> tuple[float, float]:
    """(first call incl. compile, best of ``repeat`` later calls), seconds."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return first, min(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.taylor_tf_bench",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="Numba and TensorFlow CPU threads")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numba
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))

    from tfseti.dedoppler import taylor as tt
    from tfseti.dedoppler import taylor_tf as tx

    gpus = tf.config.list_physical_devices("GPU")
    device = "/GPU:0" if gpus else "/CPU:0"
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        device_name = f"GPU: {details.get('device_name', gpus[0].name)}"
    else:
        device_name = f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    sync = getattr(tf.experimental, "sync_devices", None)
    print(f"XLA device: {device_name}; Numba/TF CPU threads: {args.threads}; "
          f"load average {os.getloadavg()[0]:.2f}")

    rows = []
    rng = np.random.default_rng(0)
    for case in args.cases:
        x = rng.standard_normal(CASES[case], dtype=np.float32)
        gb = x.nbytes / 1e9
        ref = None

        def run_numba():
            nonlocal ref
            ref = tt.taylor_tree(x)

        first, best = timed(run_numba, args.repeat)
        rows.append({"case": case, "kernel": "numba", "device": "CPU", "first_s": first,
                     "best_s": best, "gb_per_s": gb / best})

        with tf.device(device):
            xt = tf.identity(tf.constant(x))
            out = {}

            def run_xla():
                out["y"] = tx.taylor_tree_xla(xt)
                if sync is not None:
                    sync()
                else:
                    out["y"].numpy()

            def run_copy():
                out["z"] = tx.taylor_tree_xla(x).numpy()

            first, best = timed(run_xla, args.repeat)
            rows.append({"case": case, "kernel": "xla", "device": device_name, "first_s": first,
                         "best_s": best, "gb_per_s": gb / best})
            first, best = timed(run_copy, args.repeat)
            rows.append({"case": case, "kernel": "xla+copy", "device": device_name,
                         "first_s": first, "best_s": best, "gb_per_s": gb / best})
        diff = float(max(np.abs(out["y"].numpy() - ref).max(), np.abs(out["z"] - ref).max()))
        for row in rows[-3:]:
            row["max_abs_diff"] = diff
            row["input_gb"] = gb

    base = {r["case"]: r["best_s"] for r in rows if r["kernel"] == "numba"}
    print(f"{'case':<12} {'kernel':<9} {'first s':>8} {'best s':>8} {'GB/s':>7} {'vs numba':>9} "
          f"{'max |diff|':>10}")
    for r in rows:
        r["speed_vs_numba"] = base[r["case"]] / r["best_s"]
        print(f"{r['case']:<12} {r['kernel']:<9} {r['first_s']:8.3f} {r['best_s']:8.4f} "
              f"{r['gb_per_s']:7.3f} {r['speed_vs_numba']:8.2f}x {r['max_abs_diff']:10.2e}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "device": device_name, "threads": args.threads, "repeat": args.repeat,
            "load_average": os.getloadavg(), "tensorflow": tf.__version__,
            "rows": rows}, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
