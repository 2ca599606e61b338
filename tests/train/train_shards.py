"""Easy synthetic shards for trainer tests: noise cadences, positives carry a bright drifting
line in the ON panels only. Written with the project's record encoder, named like the converter's
shards (``train-f{k}-{i:05d}-of-{n:05d}.tfrec``), with the ``manifest.json`` readers require."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from tfseti.io.kaggle import CADENCE_SHAPE, ON_PANELS
from tfseti.io.records import encode_example

from harness import write_shard_manifest


def easy_cadence(rng: np.random.Generator, positive: bool, amplitude: float = 3.0) -> np.ndarray:
    cadence = rng.standard_normal(CADENCE_SHAPE, dtype=np.float32)
    if positive:
        _, time, freq = CADENCE_SHAPE
        start = rng.integers(32, freq - 32)
        drift = rng.uniform(-0.05, 0.05)  # channels per row: a straight, slowly drifting needle
        for panel_index, panel in enumerate(ON_PANELS):
            rows = np.arange(time) + 2 * panel_index * time
            cols = np.clip(np.round(start + drift * rows).astype(int), 0, freq - 4)
            for width in range(4):
                cadence[panel, np.arange(time), cols + width] += amplitude
    return cadence.astype(np.float16)


def write_easy_shards(folder, records_per_fold: int = 32, folds: int = 2, seed: int = 0) -> dict:
    """One shard per fold, half the records positive; returns ``{fold: targets}``."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    targets = {}
    for fold in range(folds):
        fold_targets = np.arange(records_per_fold) % 2
        rng.shuffle(fold_targets)
        path = os.path.join(folder, f"train-f{fold}-00000-of-00001.tfrec")
        with tf.io.TFRecordWriter(path) as writer:
            for i, target in enumerate(fold_targets):
                cadence_id = f"{fold:03x}{i:012x}"
                writer.write(encode_example(cadence_id, easy_cadence(rng, bool(target)),
                                            int(target), fold))
        targets[fold] = fold_targets
    write_shard_manifest(folder)
    return targets
