"""``python -m tfseti.data.preview SHARDS --fold K``: a look at what the pipeline feeds the model.

Prints a few training batches (raw cadences, then the images and targets after view,
augmentation and mixup, as the compiled train step makes them) and how the validation fold is
covered (every record once, the last batch padded and masked).
"""

from __future__ import annotations

import argparse

import tensorflow as tf

from tfseti.command import run_command
from tfseti.data.augmenter import Augmenter
from tfseti.data.config import VIEWS, AugmentConfig, DataConfig, MixupConfig, ViewConfig
from tfseti.data.pipeline import eval_dataset, fold_files, train_dataset


def main(argv=None) -> int:
    """Print a few training batches (raw and augmented+mixed) and the evaluation coverage."""
    parser = argparse.ArgumentParser(prog="python -m tfseti.data.preview", description=main.__doc__)
    parser.add_argument("data", help="folder of train-f{k}-*.tfrec shards (local or gs://)")
    parser.add_argument("--fold", type=int, default=0, help="validation fold (train on the others)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--view", choices=VIEWS, default="on")
    parser.add_argument("--mixup", type=float, default=0.5, help="fraction of each batch mixed up")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    cfg = DataConfig(data=args.data, batch_size=args.batch_size, seed=args.seed, with_ids=False)
    train_files = fold_files(args.data, "train", args.fold)
    val_files = fold_files(args.data, "val", args.fold)
    print(f"fold {args.fold}: {len(train_files)} train shards, {len(val_files)} validation shards")
    augmenter = Augmenter(ViewConfig(args.view), AugmentConfig(seed=args.seed, vflip_p=0.5),
                          MixupConfig(mixup_p=args.mixup))
    step_fn = tf.function(lambda b, s: augmenter(b, s, with_info=True), jit_compile=True)
    for step, batch in enumerate(train_dataset(train_files, cfg).take(args.batches)):
        out, info = step_fn(batch, tf.constant(step, tf.int64))
        raw, mixed = batch["target"].numpy(), out["target"].numpy()
        n_mixed = int(info["mix"]["mixup"]["applied"].numpy().sum()) if "mix" in info else 0
        print(f"batch {step}: cadence {tuple(batch['cadence'].shape)} {batch['cadence'].dtype.name}"
              f" positives {raw.mean():.2f} -> image {tuple(out['image'].shape)} targets"
              f" mean {mixed.mean():.2f} min {mixed.min():.2f} max {mixed.max():.2f}"
              f" ({n_mixed} of {len(mixed)} mixed up)")
    n_batches = n_records = positives = 0
    for batch in eval_dataset(val_files, cfg):
        mask = batch["mask"].numpy()
        n_batches += 1
        n_records += int(mask.sum())
        positives += int(batch["target"].numpy()[mask].sum())
    print(f"validation: {n_records} cadences ({positives} positive) in {n_batches} batches of "
          f"{args.batch_size}, last one padded to {args.batch_size} with a mask")
    return 0


if __name__ == "__main__":
    run_command(main)
