"""Input pipeline throughput: tf.data from TFRecords vs the numpy ``.npy`` loader of the seeds.

    python -m benchmarks.pipeline_bench [--n 256] [--batch-size 32] [--batches 10] [--rounds 3] [--work DIR]
                                        [--nmf]

In one run, on the same cadences and the same augmentations (ON view 819x256, vertical and
horizontal flip, frequency roll, time and frequency masks, cutout, Gaussian noise, mixup-OR on
half of each batch):

* **numpy loader** (baseline): what every seed's PyTorch ``Dataset`` did: ``np.load`` one ``.npy``
  file per cadence, build the view and augment it in numpy, stack a batch, mix it up in numpy;
  one process;
* **tf.data, host augmentation**: ``tfseti.data.train_dataset`` with ``augment_on="host"``
  (read + parse + augment + mix in the tf.data graph);
* **tf.data, in-step augmentation**: the same pipeline yields raw cadences and the augmentation
  runs in an XLA-compiled step function (``augment_on="device"``; here the device is the CPU,
  so augmentation and input compete for the same cores);
* **tf.data, read + parse only**: what the host has left to do when the step runs on a TPU/GPU;
* with ``--nmf``, also **tf.data, in-step augmentation with the NMF channel**: the in-step case
  with ``ViewConfig(extra_channels=("nmf",))`` (default rank 4, 50 iterations;
  ``tfseti.data.nmf``), so the ON view is 819x256x2; compare with the in-step case of the same run.

Prints cadences/s of each and the ratios. Data: panel-normalised Gaussian noise cadences written
in the Kaggle layout, converted to shards with ``tfrecords_tools.convert`` (or, if that is not
importable, written directly with ``tfseti.io.records.encode_example``).
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd

from tfseti.io.kaggle import CADENCE_SHAPE, cadence_relpath

P_AUG = 0.5
ROLL_MAX = 0.25       # fractions of the image side, as in AugmentConfig
MASK_MAX = 0.1
CUTOUT_MAX = 0.25
NOISE_STD = (0.0, 0.1)
MIXUP_P = 0.5
ALPHA = 1.0


def make_kaggle_dir(root: str, n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    ids = [f"{i:015x}" for i in rng.choice(16 ** 8, size=n, replace=False)]
    for cid in ids:
        path = os.path.join(root, *cadence_relpath("train", cid).split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        np.save(path, rng.standard_normal(CADENCE_SHAPE, dtype=np.float32).astype(np.float16))
    targets = (rng.random(n) < 0.1).astype(int)
    pd.DataFrame({"id": ids, "target": targets}).to_csv(os.path.join(root, "train_labels.csv"),
                                                        index=False)
    return ids


def make_shards(data: str, out: str, shard_mb: float) -> str:
    try:
        from tfrecords_tools.convert import convert
    except ImportError:
        convert = None
    if convert is not None:
        convert(data, out, split="train", folds=2, seed=0, shard_mb=shard_mb, progress=False,
                log=lambda msg: None)
        return "tfrecords_tools.convert"
    import tensorflow as tf

    from tfseti.io.records import encode_example

    labels = pd.read_csv(os.path.join(data, "train_labels.csv"))
    with tf.io.TFRecordWriter(os.path.join(out, "train-f0-00000-of-00001.tfrec")) as writer:
        for cid, target in zip(labels["id"], labels["target"]):
            cadence = np.load(os.path.join(data, *cadence_relpath("train", cid).split("/")),
                              allow_pickle=False)
            writer.write(encode_example(cid, cadence, int(target), 0))
    return "encode_example (tfrecords_tools.convert not importable)"


# ----------------------------------------------------------------------------- numpy baseline


def numpy_sample(path: str, rng: np.random.Generator) -> np.ndarray:
    """One cadence as the seeds' Dataset.__getitem__ did it: load, ON view, augment."""
    cadence = np.load(path, allow_pickle=False)
    image = np.concatenate([cadence[0], cadence[2], cadence[4]], axis=0).astype(np.float32)[..., None]
    height, width = image.shape[:2]
    if rng.random() < P_AUG:
        image = image[::-1]
    if rng.random() < P_AUG:
        image = image[:, ::-1]
    if rng.random() < P_AUG:
        shift = int(round(ROLL_MAX * width))
        image = np.roll(image, rng.integers(-shift, shift + 1), axis=1)
    image = np.array(image)   # writable copy for the masks
    if rng.random() < P_AUG:
        w = rng.integers(1, int(round(MASK_MAX * height)) + 1)
        t0 = rng.integers(0, height - w + 1)
        image[t0:t0 + w] = 0
    if rng.random() < P_AUG:
        w = rng.integers(1, int(round(MASK_MAX * width)) + 1)
        f0 = rng.integers(0, width - w + 1)
        image[:, f0:f0 + w] = 0
    if rng.random() < P_AUG:
        h, w = (rng.integers(1, int(round(CUTOUT_MAX * s)) + 1) for s in (height, width))
        t0, f0 = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
        image[t0:t0 + h, f0:f0 + w] = 0
    if rng.random() < P_AUG:
        image += rng.uniform(*NOISE_STD) * rng.standard_normal(image.shape, dtype=np.float32)
    return image


def numpy_batches(paths, targets, batch_size: int, n_batches: int, seed: int):
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(paths))
    for b in range(n_batches):   # cycles through the files (the page cache keeps them warm)
        idx = [order[(b * batch_size + i) % len(paths)] for i in range(batch_size)]
        images = np.stack([numpy_sample(paths[i], rng) for i in idx])
        y = targets[idx].astype(np.float32)
        mixed = rng.random(batch_size) < MIXUP_P
        partner = (np.arange(batch_size) + rng.integers(1, batch_size)) % batch_size
        lam = rng.beta(ALPHA, ALPHA, batch_size).astype(np.float32)
        lam = np.where(mixed, lam, 1.0)[:, None, None, None]
        images = lam * images + (1 - lam) * images[partner]
        y = np.where(mixed, y + y[partner] - y * y[partner], y)
        yield images, y


# ----------------------------------------------------------------------------- measurement


def interleaved_rates(loaders: dict, batch_size: int, n_batches: int, rounds: int,
                      warmup: int = 2) -> dict:
    """Best cadences/s of each loader over ``rounds`` rounds, the loaders taking turns within
    each round, so that a change in machine load between phases does not favour one of them.

    Every turn starts a fresh iterator (and drops it after), so no tf.data pipeline prefetches
    in the background while another loader is being timed; its ``warmup`` batches are not timed.
    """
    best = {name: 0.0 for name in loaders}
    for _ in range(rounds):
        for name, make in loaders.items():
            iterator = iter(make())
            for _ in range(warmup):
                next(iterator)
            start = time.perf_counter()
            for _ in range(n_batches):
                next(iterator)
            best[name] = max(best[name], n_batches * batch_size / (time.perf_counter() - start))
            del iterator
            gc.collect()
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=256, help="cadences written")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=10, help="timed batches per loader and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    parser.add_argument("--shard-mb", type=float, default=20.0)
    parser.add_argument("--work", default=None, help="scratch folder (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nmf", action="store_true",
                        help="also time the in-step case with the NMF background channel")
    args = parser.parse_args(argv)

    work = args.work or tempfile.mkdtemp(prefix="pipeline_bench_")
    data, shards = os.path.join(work, "kaggle"), os.path.join(work, "shards")
    os.makedirs(data, exist_ok=True)
    os.makedirs(shards, exist_ok=True)
    t0 = time.perf_counter()
    ids = make_kaggle_dir(data, args.n, args.seed)
    how = make_shards(data, shards, args.shard_mb)
    print(f"data: {args.n} noise cadences, shards by {how} ({time.perf_counter() - t0:.1f} s)")

    import tensorflow as tf

    from tfseti.data.config import AugmentConfig
    from tfseti.data.augmenter import Augmenter
    from tfseti.data.config import MixupConfig
    from tfseti.data.config import DataConfig
    from tfseti.data.pipeline import fold_files, train_dataset
    from tfseti.data.config import ViewConfig

    labels = pd.read_csv(os.path.join(data, "train_labels.csv")).set_index("id")
    paths = [os.path.join(data, *cadence_relpath("train", cid).split("/")) for cid in ids]
    targets = labels.loc[ids, "target"].to_numpy()
    files = fold_files(shards, "train")

    def augment_config(on):
        return AugmentConfig(seed=args.seed, augment_on=on, vflip_p=P_AUG, hflip_p=P_AUG,
                             freq_roll_p=P_AUG, freq_roll_max=ROLL_MAX, time_mask_p=P_AUG,
                             time_mask_max=MASK_MAX, freq_mask_p=P_AUG, freq_mask_max=MASK_MAX,
                             cutout_p=P_AUG, cutout_max=CUTOUT_MAX, noise_p=P_AUG, noise_std=NOISE_STD)

    mixup = MixupConfig(mixup_p=MIXUP_P, alpha=ALPHA)
    cfg = DataConfig(batch_size=args.batch_size, shuffle_buffer=64, seed=args.seed, with_ids=False)
    host = Augmenter(ViewConfig("on"), augment_config("host"), mixup)
    device = Augmenter(ViewConfig("on"), augment_config("device"), mixup)
    step = tf.function(lambda b, s: device(b, s)["image"], jit_compile=True)
    device_nmf = Augmenter(ViewConfig("on", extra_channels=("nmf",)), augment_config("device"), mixup)
    step_nmf = tf.function(lambda b, s: device_nmf(b, s)["image"], jit_compile=True)

    def in_step_nmf():
        for k, batch in enumerate(train_dataset(files, cfg)):
            yield step_nmf(batch, tf.constant(k, tf.int64)).numpy()

    def in_step():
        for k, batch in enumerate(train_dataset(files, cfg)):
            yield step(batch, tf.constant(k, tf.int64)).numpy()

    def raw():
        for batch in train_dataset(files, cfg):
            yield batch["cadence"].numpy()

    def on_host():
        for batch in train_dataset(files, cfg, augmenter=host):
            yield batch["image"].numpy()

    b, n = args.batch_size, args.batches
    loaders = {"numpy": lambda: numpy_batches(paths, targets, b, n + 2, args.seed),
               "host": on_host, "step": in_step, "raw": raw}
    if args.nmf:
        loaders["step_nmf"] = in_step_nmf
    rates = interleaved_rates(loaders, b, n, args.rounds)
    numpy_rate, host_rate, step_rate, raw_rate = (rates[k] for k in ("numpy", "host", "step", "raw"))

    print(f"cores visible: {os.cpu_count()}, batch {b}, best of {args.rounds} interleaved rounds of "
          f"{n} batches, ON view 819x256")
    print(f"numpy .npy loader (one process)        {numpy_rate:8.1f} cadences/s")
    print(f"tf.data TFRecords, host augmentation   {host_rate:8.1f} cadences/s"
          f"   ratio vs numpy {host_rate / numpy_rate:5.2f}x")
    print(f"tf.data TFRecords, in-step (XLA) aug.  {step_rate:8.1f} cadences/s"
          f"   ratio vs numpy {step_rate / numpy_rate:5.2f}x")
    print(f"in-step vs host augmentation: {step_rate / host_rate:.2f}x")
    print(f"tf.data TFRecords, read+parse only     {raw_rate:8.1f} cadences/s"
          f"   ratio vs numpy {raw_rate / numpy_rate:5.2f}x   (the host's whole job when the"
          f" in-step augmentation runs on a TPU/GPU)")
    if args.nmf:
        nmf_rate = rates["step_nmf"]
        print(f"tf.data TFRecords, in-step (XLA) aug. + NMF channel (rank 4, 50 it.)"
              f"  {nmf_rate:8.1f} cadences/s   {nmf_rate / step_rate:5.2f}x the in-step rate"
              f" without it")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
