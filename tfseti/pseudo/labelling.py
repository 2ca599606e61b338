"""Pseudo-label an unlabelled set with a teacher ensemble and write it as training shards.

One call of :func:`pseudo_label`:

1. the teachers (SavedModels or run folders, every fold) predict every unlabelled record
   (``tfseti.predict``: flip TTA, mean or rank ensemble) into ``predictions.csv`` (id,
   probability: the whole set); a teacher whose run has a ``calibration.json`` gives calibrated
   probabilities (``tfseti.predict.models``), and the settings record each teacher's calibrator;
2. ``--select`` chooses the records and their targets (:mod:`tfseti.pseudo.selection`), listed
   in ``pseudo_labels.csv`` (id, target, probability: the chosen ones);
3. a second pass over the unlabelled set writes the chosen records as schema-v2 shards
   ``pseudo-{i:05d}-of-{n:05d}.tfrec`` (soft target, ``source`` = ``pseudo:<teachers>``), each
   published under its name only once complete, then ``manifest.json`` last, with a ``pseudo``
   section: the teachers, the selection, the counts.

The folder is then a shard folder like any other (``tfseti.io.shards``: complete or refused), for
``data.extra`` of a training run. While it is written it holds ``_progress.json``; a rerun of the
same command after an interruption starts it over (prediction is the bulk of the work and is
not resumable piecewise), a rerun of a finished one does nothing, and a rerun with other
settings is refused unless ``overwrite``.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter

import numpy as np

from tfseti.io import fs as fsutil
from tfseti.io.folder_lock import is_lock_file
from tfseti.io.records import SOFT_SCHEMA_VERSION, encode_example
from tfseti.io.shard_writer import MB, Destination, dumps_manifest, manifest_header, num_shards
from tfseti.io.shards import (FORMAT, MANIFEST_NAME, PROGRESS_NAME, PSEUDO_LABELS_NAME,
                              SHARD_SUFFIX, loads_manifest, shard_name, summarize)
from tfseti.pseudo.selection import Selection, training_targets

SPLIT = "pseudo"
PREDICTIONS_FILE = "predictions.csv"
OURS = (PREDICTIONS_FILE, PSEUDO_LABELS_NAME, PROGRESS_NAME, MANIFEST_NAME)


class PseudoLabelError(ValueError):
    """The pseudo-labelling cannot go on; the message says why and what to do."""


def pseudo_label(teachers: str, data: str, out: str, select: Selection, *, hard: bool = False,
                 tta: str = "none", ensemble: str = "mean", batch_size: int = 16,
                 shard_mb: float = 100.0, overwrite: bool = False, progress: bool = True,
                 log=print) -> dict:
    """Write the pseudo-label shards of ``data`` under ``out`` (see the module docstring);
    returns the manifest."""
    from tfseti.predict import load_model, open_test_data, predict, resolve_model_paths

    model_paths = resolve_model_paths(teachers)
    # The unlabelled set (ids, files or shards) is checked before --out is touched: a refused
    # command leaves it as it was.
    unlabelled = open_test_data(data)
    # So are the teachers: load_model refuses one that gives NaN (tfseti.predict.models).
    models = [load_model(p) for p in model_paths]
    settings = {"teachers": [fsutil.normal_location(p) for p in model_paths],
                "data": fsutil.normal_location(data),
                "select": str(select), "hard": bool(hard), "tta": tta, "ensemble": ensemble,
                # Each teacher's calibrator (a refit one makes other labels): "raw" without one.
                "calibration": [m.tag() for m in models]}
    dest = Destination(out)
    try:
        dest.prepare()
        done = _existing(dest, settings, overwrite, log)
        if done is not None:
            return done
        dest.write_bytes_atomic(PROGRESS_NAME, dumps_manifest({
            "format": FORMAT, "schema_version": SOFT_SCHEMA_VERSION, "complete": False,
            "pseudo": {"settings": settings}}))

        for model in models:
            log(f"teacher {model.describe()}")
        log(f"unlabelled: {unlabelled.description}")
        prediction = predict(models, unlabelled, tta, ensemble, batch_size, progress=progress)
        probability = np.asarray(prediction.target, np.float64)
        chosen = select.choose(probability)
        targets = training_targets(probability[chosen], hard)
        chosen_ids = [i for i, keep in zip(prediction.ids, chosen) if keep]
        if not chosen_ids:
            raise PseudoLabelError(f"--select {select}: no record of the {len(probability)} "
                                   f"unlabelled ones is chosen (probabilities "
                                   f"{probability.min():.3f} to {probability.max():.3f})")
        _write_csv(dest, PREDICTIONS_FILE, ["id", "probability"],
                   zip(prediction.ids, probability))
        _write_csv(dest, PSEUDO_LABELS_NAME, ["id", "target", "probability"],
                   zip(chosen_ids, targets, probability[chosen]))

        source = "pseudo:" + ",".join(settings["teachers"])
        wanted = dict(zip(chosen_ids, targets))
        shards, shape = _write_shards(dest, unlabelled, prediction.ids, wanted, chosen_ids,
                                      source, shard_mb * MB, batch_size, log)
        digest = hashlib.sha256("".join(f"{i},{wanted[i]!r}\n" for i in chosen_ids).encode())
        params = {"source": settings["data"], "split": SPLIT, "folds": 0, "seed": 0,
                  "shard_mb": shard_mb, "panels": "all" if shape[0] == 6 else "on",
                  "compression": None}
        doc = manifest_header(SOFT_SCHEMA_VERSION, params, {"batch_size": batch_size},
                              digest.hexdigest(), shape, complete=True)
        doc.update(summarize(shards))
        doc["shards"] = shards
        doc["skipped"] = []
        doc["pseudo"] = {
            "settings": settings,
            "unlabelled": len(probability),
            "chosen": len(chosen_ids),
            "hard_positives": int((targets >= 0.5).sum()),
            "mean_target": float(np.mean(targets)),
            "probability_quantiles": {str(q): float(np.quantile(probability, q))
                                      for q in (0.0, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0)},
        }
        dest.write_bytes_atomic(MANIFEST_NAME, dumps_manifest(doc))
        dest.remove(PROGRESS_NAME)
        dest.cleanup_temporaries()
        dest.remove_tmp_dir()
        log(f"{dest.url}: {len(chosen_ids)} of {len(probability)} unlabelled records pseudo-"
            f"labelled ({select}{', hard' if hard else ''}): {doc['pseudo']['hard_positives']} "
            f"at target >= 0.5, mean target {doc['pseudo']['mean_target']:.4f}, "
            f"{len(shards)} shard(s)")
        return doc
    finally:
        dest.close()


def _existing(dest, settings: dict, overwrite: bool, log) -> dict | None:
    """The manifest of a finished run with the same settings (nothing to do), else None after
    clearing what an interrupted run (or, with ``overwrite``, another run) left."""
    listing = dest.listing()
    if MANIFEST_NAME in listing:
        doc = loads_manifest(dest.read_bytes(MANIFEST_NAME), dest.display(MANIFEST_NAME))
        old = (doc.get("pseudo") or {}).get("settings")
        if old == settings:
            log(f"{dest.url}: already pseudo-labelled with these settings; nothing to do")
            return doc
        if not overwrite:
            if old is None:
                raise PseudoLabelError(f"{dest.url}: holds shards that are not pseudo-labels "
                                       f"(its {MANIFEST_NAME} has no 'pseudo' section); choose "
                                       f"another --out")
            differences = [f"{k}: {old.get(k)!r} there, {v!r} now" for k, v in settings.items()
                           if old.get(k) != v]
            raise PseudoLabelError(f"{dest.url}: pseudo-labelled with other settings "
                                   f"({'; '.join(differences)}); pass --overwrite to replace it")
    ours = [n for n in listing if n in OURS or n.endswith(SHARD_SUFFIX)]
    others = [n for n in listing if n not in ours and not is_lock_file(n)]  # the lock is ours
    if others and not overwrite:
        raise PseudoLabelError(f"{dest.url}: holds other files ({sorted(others)[:5]}); choose an "
                               f"empty or pseudo-label --out")
    if ours:
        log(f"{dest.url}: removing what an earlier attempt left ({len(ours)} file(s)); starting over")
        dest.remove(MANIFEST_NAME)  # first: the folder stops being a complete shard folder
        for name in ours:
            dest.remove(name)
    dest.cleanup_temporaries()
    return None


def _write_csv(dest, name: str, header: list[str], rows) -> None:
    lines = [",".join(header)]
    for row in rows:
        lines.append(",".join(v if isinstance(v, str) else repr(float(v)) for v in row))
    dest.write_bytes_atomic(name, ("\n".join(lines) + "\n").encode())


def _write_shards(dest, unlabelled, predicted_ids, wanted: dict, order: list[str], source: str,
                  shard_bytes: float, batch_size: int, log):
    """Write the chosen records in read order, ``count`` shards of consecutive records; returns
    the manifest's shard entries and the cadence shape."""
    import tensorflow as tf

    n = len(order)
    count = None
    shards, shape = [], None
    writer = work = None
    index, written, seen = 0, 0, 0
    bounds = []

    def finish():
        nonlocal writer
        writer.close()
        writer = None
        classes = Counter(int(wanted[i] >= 0.5) for i in order[bounds[index]:bounds[index + 1]])
        shards.append(dest.publish_shard(work, shard_name(SPLIT, -1, index, count), -1, index,
                                         count, classes))

    for ids, cadences in unlabelled.batches(batch_size):
        for cadence_id, cadence in zip(ids, cadences):
            if seen >= len(predicted_ids) or predicted_ids[seen] != cadence_id:
                raise PseudoLabelError(f"the unlabelled set was read in another order the second "
                                       f"time (record {seen}: {cadence_id}); it changed while "
                                       f"being pseudo-labelled")
            seen += 1
            if cadence_id not in wanted:
                continue
            if count is None:
                shape = tuple(int(s) for s in cadence.shape)
                count = num_shards(n, int(np.prod(shape)) * 2 + 256, shard_bytes)
                bounds = [math.floor(i * n / count) for i in range(count + 1)]
            if writer is None:
                work = dest.local_work_path(shard_name(SPLIT, -1, index, count))
                writer = tf.io.TFRecordWriter(work)
            writer.write(encode_example(cadence_id, np.asarray(cadence, np.float16),
                                        soft_target=wanted[cadence_id], source=source))
            written += 1
            if written == bounds[index + 1]:
                finish()
                index += 1
    if written != n or seen != len(predicted_ids):
        raise PseudoLabelError(f"the second read of the unlabelled set gave {seen} records "
                               f"({written} chosen), the first {len(predicted_ids)} ({n} chosen)")
    if count:
        log(f"wrote {n} records in {count} shard(s)")
    return shards, shape
