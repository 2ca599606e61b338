"""``python -m tfseti.adapt``: SHOT, adapting a trained model to an unlabelled set (5th place).

::

    python -m tfseti.adapt --model runs/cpu --unlabelled /data/seti --out runs/cpu_shot \\
        [--epochs 3] [--learning-rate 1e-4] [--beta 0.3] [--prior 0.1]

SHOT (source-hypothesis transfer, Liang et al. 2020): the classifier head (the ``logits`` layer)
is frozen, the feature extractor (backbone and pooling, BatchNorm statistics included) is trained
on the unlabelled cadences alone, by

* information maximisation: each prediction confident (low entropy ``H(p_i)``) but the mean
  prediction diverse (high ``H(mean p)``; with ``--prior P`` the mean is pulled towards the known
  positive rate P instead, ``KL(mean p || (1 - P, P))``: SHOT's uniform target assumes balanced
  classes, which needles are not);
* self-supervised pseudo-labels (weight ``--beta``): at the start of every epoch the features of
  every cadence are clustered around the two class centroids (weighted by the predictions, then
  by the nearest-centroid labels once more, cosine distance) and each cadence is trained towards
  its centroid's class.

Each fold of ``--model`` (a run folder: every ``fold<K>/``; or one fold folder) is adapted into
``--out/fold<K>/``: ``model.keras``, ``saved_model/`` (served and predicted like any run,
``python -m tfseti.predict --model OUT``), the fold's ``config.json`` and ``adapt.json`` (the
settings and every epoch's losses, mean prediction and pseudo-label counts). The unlabelled set is
read twice per epoch (features, then training), never held in memory whole.

Non-finite numbers stop where they arise, as in the trainer: ``--learning-rate`` and ``--beta``
must be finite and in range, the first NaN loss ends the fold naming the epoch and step, and a
network with a NaN weight is never exported.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil

import numpy as np

from tfseti.command import command, common_flags, run_command
from tfseti.io.atomic import write_json
from tfseti.io.folder_lock import FolderLock, FolderLocked, is_lock_file
from tfseti.train.train_config import MAX_LEARNING_RATE

MODEL_FILE = "model.keras"
HEAD_LAYER = "logits"
EPSILON = 1e-6
MAX_BETA = 10.0  # weight of the pseudo-label loss; SHOT uses 0.3


class AdaptError(ValueError):
    """The adaptation cannot run; the message names the file or option and what was expected."""


def fold_folders(model: str) -> list[tuple[str, str]]:
    """``(name, fold folder)`` of ``--model``: every ``fold<K>`` of a run folder, or the folder."""
    if os.path.isfile(os.path.join(model, MODEL_FILE)):
        return [(os.path.basename(os.path.normpath(model)), model)]
    if not os.path.isdir(model):
        raise AdaptError(f"--model {model}: no such run or fold folder")
    from tfseti.train.run_folder import fold_dirs

    folds = [(f"fold{k}", path) for k, path in fold_dirs(model)
             if os.path.isfile(os.path.join(path, MODEL_FILE))]
    if not folds:
        raise AdaptError(f"--model {model}: neither a fold folder ({MODEL_FILE}) nor a run folder "
                         f"with fold*/{MODEL_FILE}")
    return folds


def two_class(logits):
    """Class probabilities ``(B, 2)`` of a 1-logit (sigmoid) or 2-logit (softmax) head."""
    import tensorflow as tf

    from tfseti.models.heads import positive_logit

    p = tf.sigmoid(positive_logit(logits))
    return tf.stack([1.0 - p, p], axis=-1)


def entropy(q, axis=-1):
    import tensorflow as tf

    return -tf.reduce_sum(q * tf.math.log(q + EPSILON), axis=axis)


def information_loss(q, prior: float | None):
    """``(mean H(q_i), diversity term)``: the loss is ``ent + div`` with ``div = -H(mean q)``,
    or ``KL(mean q || (1 - prior, prior))`` with a prior."""
    import tensorflow as tf

    ent = tf.reduce_mean(entropy(q))
    mean = tf.reduce_mean(q, axis=0)
    if prior is None:
        div = -entropy(mean)
    else:
        target = tf.constant([1.0 - prior, prior], q.dtype)
        div = tf.reduce_sum(mean * (tf.math.log(mean + EPSILON) - tf.math.log(target)))
    return ent, div


def cluster_labels(features: np.ndarray, q: np.ndarray) -> np.ndarray:
    """SHOT's self-supervised labels: centroids weighted by ``q``, nearest by cosine distance,
    centroids recomputed from those labels, nearest again."""
    f = features / (np.linalg.norm(features, axis=1, keepdims=True) + EPSILON)
    f = np.concatenate([f, np.ones((len(f), 1), f.dtype)], axis=1)  # SHOT's bias feature
    f = f / np.linalg.norm(f, axis=1, keepdims=True)
    weights = q
    for _ in range(2):
        centroids = weights.T @ f / (weights.sum(axis=0)[:, None] + EPSILON)
        centroids /= np.linalg.norm(centroids, axis=1, keepdims=True) + EPSILON
        labels = np.argmax(f @ centroids.T, axis=1)
        weights = np.eye(2, dtype=f.dtype)[labels]
    return labels


def adapt_fold(fold_dir: str, out_dir: str, unlabelled, *, epochs: int, learning_rate: float,
               batch_size: int, beta: float, prior: float | None, seed: int, log) -> dict:
    """SHOT on one fold's network; writes ``out_dir`` (see the module docstring)."""
    import keras
    import tensorflow as tf

    from tfseti.config import from_dict
    from tfseti.data.views import make_view
    from tfseti.models import load_network
    from tfseti.train.export import export_saved_model
    from tfseti.train.run_config import RunConfig

    with open(os.path.join(fold_dir, "config.json")) as handle:
        run = from_dict(RunConfig, json.load(handle))
    keras.utils.set_random_seed(seed)
    net = load_network(os.path.join(fold_dir, MODEL_FILE))
    layer_names = [layer.name for layer in net.layers]
    if HEAD_LAYER not in layer_names:
        raise AdaptError(f"{fold_dir}: the network has no {HEAD_LAYER!r} layer to freeze (layers "
                         f"{layer_names}); SHOT needs a dense head (not pooling = 'attention')")
    head = net.get_layer(HEAD_LAYER)
    head.trainable = False
    features_of = keras.Model(net.inputs, [head.input, net.outputs[0]])
    optimizer = keras.optimizers.Adam(learning_rate)

    @tf.function
    def predict(cadence):
        return features_of(make_view(cadence, run.view), training=False)

    @tf.function
    def train_step(cadence, labels):
        images = make_view(cadence, run.view)
        with tf.GradientTape() as tape:
            q = two_class(net(images, training=True))
            ent, div = information_loss(q, prior)
            pseudo = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, q))
            loss = ent + div + beta * pseudo
        gradients = tape.gradient(loss, net.trainable_weights)
        optimizer.apply(gradients, net.trainable_weights)
        return loss, ent, div, pseudo

    history = []
    shape = None
    for epoch in range(epochs):
        features, probabilities = [], []
        for _, cadence in unlabelled.batches(batch_size):
            shape = shape or tuple(cadence.shape[1:])
            f, logits = predict(tf.constant(cadence))
            features.append(f.numpy().astype(np.float32))
            probabilities.append(two_class(logits).numpy())
        features, q = np.concatenate(features), np.concatenate(probabilities)
        labels = cluster_labels(features, q)
        sums = np.zeros(4)
        steps, start = 0, 0
        for _, cadence in unlabelled.batches(batch_size):
            chunk = labels[start:start + len(cadence)]
            start += len(cadence)
            if len(cadence) < batch_size:  # the last, smaller batch: skipped (one trace)
                continue
            values = [float(v) for v in train_step(tf.constant(cadence), tf.constant(chunk))]
            steps += 1
            if not all(math.isfinite(v) for v in values):  # stop where it arises, export nothing
                raise AdaptError(f"{fold_dir}: the loss became non-finite ({values[0]}) at epoch "
                                 f"{epoch + 1}, step {steps} (--learning-rate {learning_rate:g}, "
                                 f"--beta {beta:g}); nothing exported")
            sums += values
        if not steps:
            raise AdaptError(f"the unlabelled set has {len(labels)} records, fewer than one batch "
                             f"of {batch_size} (--batch-size)")
        loss, ent, div, pseudo = (sums / steps).tolist()
        row = {"epoch": epoch + 1, "loss": loss, "entropy": ent, "diversity": div,
               "pseudo_ce": pseudo, "mean_probability_before": float(q[:, 1].mean()),
               "cluster_positives": int(labels.sum()),
               "agreement_with_predictions": float(np.mean(labels == (q[:, 1] >= 0.5)))}
        history.append(row)
        log(f"  epoch {epoch + 1}/{epochs}: loss {loss:.4f} (entropy {ent:.4f}, diversity "
            f"{div:+.4f}, pseudo-label CE {pseudo:.4f}); {row['cluster_positives']} of "
            f"{len(labels)} clustered positive, mean probability {row['mean_probability_before']:.4f}")

    from tfseti.train.callbacks import non_finite_weights

    bad = non_finite_weights(net)
    if bad:
        raise AdaptError(f"{fold_dir}: the adapted weights hold NaN/Inf ({bad[0]}); nothing "
                         f"exported")
    os.makedirs(out_dir, exist_ok=True)
    head.trainable = True  # saved as the trained network it is
    net.save(os.path.join(out_dir, MODEL_FILE))
    export_saved_model(net, run.view, os.path.join(out_dir, "saved_model"), shape)
    shutil.copy(os.path.join(fold_dir, "config.json"), os.path.join(out_dir, "config.json"))
    result = {"source": fold_dir, "epochs": epochs, "learning_rate": learning_rate,
              "batch_size": batch_size, "beta": beta, "prior": prior, "seed": seed,
              "records": int(len(labels)), "history": history}
    write_json(os.path.join(out_dir, "adapt.json"), result)  # strict: no bare NaN
    return result


def _contents(folder: str) -> list[str]:
    """What ``folder`` holds besides its writer's lock file (nothing when it does not exist)."""
    if not os.path.isdir(folder):
        return []
    return sorted(name for name in os.listdir(folder) if not is_lock_file(name))


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tfseti.adapt", parents=[common_flags("break_lock")],
        description="SHOT: adapt a trained model's feature extractor to an unlabelled set "
                    "(head frozen; information maximisation + self-supervised pseudo-labels).")
    parser.add_argument("--model", required=True, help="a run folder (every fold) or a fold folder")
    parser.add_argument("--unlabelled", required=True,
                        help="Kaggle-layout folder (test/), test shard folder or shard glob")
    parser.add_argument("--out", required=True, help="where the adapted fold folders go")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--beta", type=float, default=0.3, help="weight of the pseudo-label loss")
    parser.add_argument("--prior", type=float, default=None,
                        help="positive rate the mean prediction is pulled to (default: SHOT's "
                             "uniform diversity)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    return parser.parse_args(argv)


@command(ValueError, FileNotFoundError, FolderLocked)  # AdaptError is a ValueError
def main(argv=None) -> int:
    args = parse_args(argv)
    lock = None
    try:
        if args.epochs < 1 or args.batch_size < 1:
            raise AdaptError("--epochs and --batch-size must be >= 1")
        # NaN passes every comparison but equality checks, hence the explicit finiteness; the
        # upper bounds are the trainer's (a rate above it only diverges) and far above SHOT's 0.3.
        if not (math.isfinite(args.learning_rate) and 0 < args.learning_rate <= MAX_LEARNING_RATE):
            raise AdaptError(f"--learning-rate must be a finite number in (0, "
                             f"{MAX_LEARNING_RATE:g}], got {args.learning_rate}")
        if not (math.isfinite(args.beta) and 0 <= args.beta <= MAX_BETA):
            raise AdaptError(f"--beta must be a finite number in [0, {MAX_BETA:g}], got {args.beta}")
        if args.prior is not None and not 0.0 < args.prior < 1.0:
            raise AdaptError(f"--prior must be in (0, 1), got {args.prior}")
        # One writer per --out, locked before it is looked at; the lock file is not content.
        lock = FolderLock(args.out, break_lock=args.break_lock).acquire()
        if _contents(args.out) and not args.overwrite:
            raise AdaptError(f"--out {args.out} is not empty; pass --overwrite to replace it")
        folds = fold_folders(args.model)
        from tfseti.predict import open_test_data

        unlabelled = open_test_data(args.unlabelled)
        print(f"unlabelled: {unlabelled.description}", flush=True)
        if args.overwrite:
            for name in _contents(args.out):  # everything but the lock we hold
                path = os.path.join(args.out, name)
                if os.path.isdir(path):
                    shutil.rmtree(path)
                else:
                    os.remove(path)
        for name, fold_dir in folds:
            print(f"{name}: adapting {fold_dir} ({args.epochs} epochs)", flush=True)
            adapt_fold(fold_dir, os.path.join(args.out, name), unlabelled, epochs=args.epochs,
                       learning_rate=args.learning_rate, batch_size=args.batch_size,
                       beta=args.beta, prior=args.prior, seed=args.seed,
                       log=lambda line: print(line, flush=True))
    finally:
        if lock is not None:
            lock.release()
    print(f"adapted: {args.out} (predict with python -m tfseti.predict --model {args.out})")
    return 0


if __name__ == "__main__":
    run_command(main)
