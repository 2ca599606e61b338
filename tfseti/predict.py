"""Predict a test set with exported SavedModels: flip TTA, fold/model ensembles, a Kaggle submission.

::

    python -m tfseti.predict --model runs/b0/fold0/saved_model,runs/b0 --data kaggle_dir \\
        --tta flips --ensemble mean --out submission.csv

Models (``--model``, comma-separated): a SavedModel folder written by the trainer
(``runs/<name>/fold<K>/saved_model``, ``serve``/``serving_default`` endpoint taking
``float16[None, P, 273, 256]`` raw cadences and returning probabilities), or a run folder
(``runs/<name>``: every ``fold*/saved_model`` in it). They load with plain ``tf.saved_model.load``;
nothing of the trainer is imported. P (6, or 3 for ON-only models) is read from the input signature;
6-panel data given to a 3-panel model is sliced to its ON panels (0, 2, 4); 3-panel data cannot feed a
6-panel model (error).

Data (``--data``): a Kaggle-layout folder (``test/`` + ``sample_submission.csv``, local or any fsspec
URL such as ``gs://``), read in the sample submission's order; or TFRecord test shards, read once
each in a deterministic order (``tfseti.data.pipeline.eval_dataset``): a shard folder written by
``tfrecords_tools.convert``, which must be complete (``tfseti.io.shards.open_shard_folder``: its
``manifest.json`` present and every shard there with the recorded size; an interrupted conversion,
a missing or extra shard is an error) and whose record count the ids read must equal; or an
explicit glob pattern (``DIR/test-*.tfrec``), whose records are counted first and the count shown.
A shard that cannot be read stops the run with one line naming it and the byte offset.

Flip TTA (``--tta flips``) averages the probabilities of the 4 flip combinations, made on the raw
cadences so that each equals the flip the training augmentation made on the model's view image:

* frequency flip (training ``hflip``, the image's W axis): reverse axis 3 (frequency) of every panel;
* time flip (training ``vflip``, the image's H axis): the view stacks the panels in time, so reversing
  H reverses the time rows of every panel *and* the order of the stacked panels. On raw cadences this
  is axis 2 (time) reversed plus a panel permutation that depends on the view the model was trained
  on: for ``on`` / ``on_off`` (ON panels A1 A2 A3 stacked, OFF panels B C D in their own channel) the
  ON and the OFF panels are each reversed among themselves, ABACAD -> panels ``(4, 5, 2, 3, 0, 1)``
  (ON-only cadences: ``(2, 1, 0)``); for ``all`` (all six panels stacked) the six are reversed,
  ``(5, 4, 3, 2, 1, 0)``. For ``dedoppler`` (drift-rate maps) the ``on`` order is used: reversing
  time and swapping the first and last pointings maps a needle drifting at ``r`` to one drifting
  at ``-r`` through the same reference channel, so the flip is label-preserving (it is not
  pixel-equal to the training flip of the map, which does not swap the panels). The view is read
  from the ``config.json`` the trainer writes next to
  ``saved_model/``; without it the ``on`` / ``on_off`` order is used (said in the log).
  The OFF-median background and the column normalisation commute with these flips, except for view
  ``all`` with ``background = "off_median"`` without column normalisation, where no raw-cadence
  transform equals the image flip (the reversed stack puts ON panels where the median is taken):
  flip TTA refuses that model.

Ensembles (``--ensemble``) across models: ``mean`` of the (TTA-averaged) probabilities, or ``rank``,
the mean of each model's ranks normalised to [0, 1] (``(rank - 1) / (n - 1)``, ties averaged).

The output is ``id,target``, every test id exactly once (in the sample submission's order for a
Kaggle folder, in read order for shards); a missing or duplicated id is an error.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import os
import sys
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from tfseti.console import show_progress
from tfseti.io.kaggle import LABEL_FILES, ON_PANELS

TTA_MODES = ("none", "flips")
ENSEMBLES = ("mean", "rank")
SIGNATURE_KEYS = ("serving_default", "serve")
# Raw-cadence panel order of a time flip, per (view family, panels): see the module docstring.
TIME_FLIP_PANELS = {("stacked_on", 6): (4, 5, 2, 3, 0, 1), ("stacked_on", 3): (2, 1, 0),
                    ("all", 6): (5, 4, 3, 2, 1, 0)}
LOAD_THREADS = 8


# ----------------------------------------------------------------------------- models


@dataclass
class ServingModel:
    """One loaded SavedModel: ``model(cadence)`` maps ``(B, P, T, F)`` float16 to ``(B,)`` float32.

    path: the SavedModel folder; panels: the P its signature takes; view: the training view's
    settings from the trainer's ``config.json`` next to it (``None`` when there is none);
    function: its serving signature.
    """

    path: str
    panels: int
    shape: tuple[int, int, int]
    view: dict | None
    function: object
    loaded: object = None   # the loaded SavedModel: its variables live as long as it does

    def __call__(self, cadence: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        outputs = self.function(cadence=tf.constant(cadence, tf.float16))
        if isinstance(outputs, dict):
            (outputs,) = outputs.values()
        return np.asarray(outputs, np.float32).reshape(-1)

    def time_flip_panels(self) -> tuple[int, ...]:
        """The panel permutation that goes with reversing time (see the module docstring)."""
        view = self.view or {}
        family = "all" if view.get("name") == "all" else "stacked_on"
        if (family == "all" and view.get("background", "none") != "none"
                and not view.get("normalize_columns", False)):
            raise ValueError(f"{self.path}: view 'all' with background {view.get('background')!r} "
                             f"and no column normalisation: no flip of the raw cadences equals the "
                             f"training time flip of its image; use --tta none for this model")
        return TIME_FLIP_PANELS[(family, self.panels)]

    def describe(self) -> str:
        view = (self.view or {}).get("name", "unknown (no config.json): time flip as for on/on_off")
        return f"{self.path}: {self.panels} panels, view {view}"


def resolve_model_paths(spec: str) -> list[str]:
    """SavedModel folders of ``--model``: comma-separated SavedModels or run folders (a local
    copy of those TensorFlow cannot read where they are, see ``tfseti.io.staging``)."""
    import tensorflow as tf

    from tfseti.io.staging import tf_readable

    paths = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        item = tf_readable(item.rstrip("/"))
        if tf.io.gfile.exists(f"{item}/saved_model.pb"):
            paths.append(item)
        elif tf.io.gfile.exists(f"{item}/saved_model/saved_model.pb"):
            paths.append(f"{item}/saved_model")
        elif tf.io.gfile.isdir(item):
            folds = sorted(f"{item}/{name.rstrip('/')}/saved_model"
                           for name in tf.io.gfile.listdir(item) if name.startswith("fold"))
            folds = [p for p in folds if tf.io.gfile.exists(f"{p}/saved_model.pb")]
            if not folds:
                raise FileNotFoundError(f"{item}: neither a SavedModel (no saved_model.pb) nor a run "
                                        f"folder with fold*/saved_model/")
            paths.extend(folds)
        else:
            raise FileNotFoundError(f"{item}: no such SavedModel or run folder")
    if not paths:
        raise ValueError(f"--model {spec!r}: no model given")
    if len(set(paths)) != len(paths):
        raise ValueError(f"--model {spec!r}: a SavedModel is given twice ({paths})")
    return paths


def _read_view(path: str) -> dict | None:
    import tensorflow as tf

    config = f"{os.path.dirname(path.rstrip('/'))}/config.json"
    if not tf.io.gfile.exists(config):
        return None
    with tf.io.gfile.GFile(config) as handle:
        view = json.load(handle).get("view")
    return view if isinstance(view, dict) else None


def load_model(path: str) -> ServingModel:
    """Load a SavedModel with plain TensorFlow and read P from its input signature."""
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    function = next((loaded.signatures[k] for k in SIGNATURE_KEYS if k in loaded.signatures), None)
    if function is None:
        raise ValueError(f"{path}: no {' / '.join(SIGNATURE_KEYS)} signature (has "
                         f"{sorted(loaded.signatures)})")
    _, kwargs = function.structured_input_signature
    if list(kwargs) != ["cadence"]:
        raise ValueError(f"{path}: expected one input 'cadence', the signature takes {sorted(kwargs)}")
    spec = kwargs["cadence"]
    dims = tuple(spec.shape.as_list())
    if len(dims) != 4 or dims[1] not in (3, 6) or spec.dtype != tf.float16:
        raise ValueError(f"{path}: expected input float16[None, 6 or 3, T, F], got "
                         f"{spec.dtype.name}{list(dims)}")
    return ServingModel(path=path, panels=dims[1], shape=dims[1:], view=_read_view(path),
                        function=function, loaded=loaded)


def fit_panels(cadence: np.ndarray, model: ServingModel) -> np.ndarray:
    """Cadences shaped for ``model``: 6-panel data to a 3-panel model keeps the ON panels."""
    panels = cadence.shape[1]
    if cadence.shape[2:] != model.shape[1:]:
        raise ValueError(f"{model.path}: takes cadences of {model.shape}, the data holds "
                         f"{cadence.shape[1:]}")
    if panels == model.panels:
        return cadence
    if panels == 6 and model.panels == 3:
        return cadence[:, list(ON_PANELS)]
    raise ValueError(f"{model.path}: the model takes {model.panels}-panel cadences but the data holds "
                     f"{panels} panels (ON-only shards, converted with --panels on); convert the test "
                     f"set with --panels all or use an ON-only model")


def flip_variants(cadence: np.ndarray, model: ServingModel, tta: str) -> list[np.ndarray]:
    """The TTA inputs: the cadences alone (``none``) or their 4 flip combinations (``flips``)."""
    if tta not in TTA_MODES:
        raise ValueError(f"--tta: expected one of {TTA_MODES}, got {tta!r}")
    if tta == "none":
        return [cadence]
    time_flipped = cadence[:, list(model.time_flip_panels()), ::-1, :]
    return [cadence, time_flipped, cadence[..., ::-1], time_flipped[..., ::-1]]


def predict_batch(models: list[ServingModel], cadence: np.ndarray, tta: str) -> np.ndarray:
    """``(n_models, B)`` probabilities, each the mean over the model's TTA variants."""
    out = []
    for model in models:
        fitted = fit_panels(cadence, model)
        out.append(np.mean([model(np.ascontiguousarray(v)) for v in flip_variants(fitted, model, tta)],
                           axis=0))
    return np.stack(out)


# ----------------------------------------------------------------------------- data


@dataclass
class TestData:
    """A test set: ``batches(size)`` yields ``(ids, cadences (b, P, T, F) float16)``.

    expected_ids: the ids a submission must hold, in order (Kaggle folder), or None (shards: the
    read order); expected_count: the number of records when known (shard manifest).
    """

    description: str
    batches: object
    expected_ids: list[str] | None
    expected_count: int | None


def _is_kaggle_folder(data: str, split: str = "test") -> bool:
    from tfseti.io import fs as fsutil

    if any(c in data for c in "*?["):
        return False
    fs, inner = fsutil.url_to_fs(data.rstrip("/"))
    return fs.exists(f"{inner}/{LABEL_FILES[split]}") or fs.isdir(f"{inner}/{split}")


def kaggle_test_data(root: str, split: str = "test") -> TestData:
    """A split of a Kaggle-layout folder (default ``test``), in its label file's order (the
    sample submission's for ``test``)."""
    from tfseti.io.kaggle import KaggleDataset

    dataset = KaggleDataset(root, split)
    ids = dataset.ids()
    duplicated = sorted(i for i, n in collections.Counter(ids).items() if n > 1)
    if duplicated:
        raise ValueError(f"{dataset.labels_file}: {len(duplicated)} id(s) listed more than once, "
                         f"e.g. {duplicated[:5]}")
    present = dataset.list_files()
    missing = [i for i in ids if i not in present]
    if missing:
        raise FileNotFoundError(f"{dataset.split_path()}: {len(missing)} id(s) of "
                                f"{dataset.labels_file} have no .npy file, e.g. "
                                f"{[dataset.path(i) for i in missing[:3]]}")

    def batches(size: int) -> Iterator[tuple[list[str], np.ndarray]]:
        with concurrent.futures.ThreadPoolExecutor(LOAD_THREADS) as pool:
            for start in range(0, len(ids), size):
                chunk = ids[start:start + size]
                yield chunk, np.stack(list(pool.map(dataset.load, chunk)))

    return TestData(f"Kaggle folder {root} ({len(ids)} {split} ids)", batches, ids, len(ids))


def shard_files(data: str, role: str = "test") -> tuple[list[str], int, str]:
    """``(shard paths, record count, description)`` of a complete shard folder (its ``test-*``
    shards, or every ``train-*`` shard with ``role="train"``; count from its manifest) or of an
    explicit glob pattern (every matching file; records counted)."""
    from tfseti.io import shards as shard_lib
    from tfseti.io.staging import tf_readable

    data = tf_readable(data)
    if shard_lib.is_glob(data):
        selection = shard_lib.open_shard_glob(data)
        return selection.files, selection.records, selection.describe()
    folder = shard_lib.open_shard_folder(data)
    files = folder.files(role)
    count = folder.records_in(files)
    return files, count, f"{len(files)} {role} shard(s) in {data} (manifest: {count} records)"


def shard_test_data(data: str, role: str = "test") -> TestData:
    """TFRecord shards (``test-*``, or ``train-*`` with ``role="train"``), every record once
    (``eval_dataset``); a read error becomes one CorruptShardError naming the shard."""
    import tensorflow as tf

    from tfseti.data.pipeline import DataConfig, eval_dataset
    from tfseti.io.shards import corrupt_shard_error

    files, count, description = shard_files(data, role)

    def batches(size: int) -> Iterator[tuple[list[str], np.ndarray]]:
        try:
            for batch in eval_dataset(files, DataConfig(batch_size=size)).as_numpy_iterator():
                mask = batch["mask"]
                yield [i.decode() for i in batch["id"][mask]], batch["cadence"][mask]
        except tf.errors.DataLossError as err:
            raise corrupt_shard_error(err, files) from None

    return TestData(description, batches, None, count)


def open_test_data(data: str, split: str = "test") -> TestData:
    """A split of a Kaggle-layout folder (has the split's label file or folder: for ``test``
    ``sample_submission.csv`` or ``test/``) or shards (``test-*``; every ``train-*`` for
    ``train``)."""
    if _is_kaggle_folder(data, split):
        return kaggle_test_data(data, split)
    return shard_test_data(data, role=split)


# ----------------------------------------------------------------------------- ensemble, output


def normalised_ranks(probs: np.ndarray) -> np.ndarray:
    """Ranks of ``probs`` (ties averaged) scaled to [0, 1]: ``(rank - 1) / (n - 1)``."""
    from scipy.stats import rankdata

    if len(probs) < 2:
        return np.full(len(probs), 0.5)
    return (rankdata(probs) - 1.0) / (len(probs) - 1.0)


def ensemble(per_model: np.ndarray, method: str) -> np.ndarray:
    """Combine ``(n_models, N)`` probabilities: ``mean``, or ``rank`` (mean of normalised ranks)."""
    if method not in ENSEMBLES:
        raise ValueError(f"--ensemble: expected one of {ENSEMBLES}, got {method!r}")
    if method == "rank":
        per_model = np.stack([normalised_ranks(p) for p in per_model])
    return per_model.mean(axis=0)


def check_ids(ids: list[str], expected_ids: list[str] | None, expected_count: int | None) -> None:
    """Every id exactly once (and, when known, exactly the expected ids / count)."""
    duplicated = sorted(i for i, n in collections.Counter(ids).items() if n > 1)
    if duplicated:
        raise ValueError(f"{len(duplicated)} id(s) predicted more than once, e.g. {duplicated[:5]}")
    if expected_ids is not None and ids != expected_ids:
        got, want = set(ids), set(expected_ids)
        missing = [i for i in expected_ids if i not in got]
        extra = [i for i in ids if i not in want]
        raise ValueError(f"predictions do not match the sample submission: {len(missing)} id(s) "
                         f"missing (e.g. {missing[:5]}), {len(extra)} not in it (e.g. {extra[:5]})"
                         + ("" if missing or extra else ", or in another order"))
    if expected_count is not None and len(ids) != expected_count:
        raise ValueError(f"{len(ids)} ids predicted but the shards hold {expected_count} records "
                         f"(manifest or count)")


@dataclass
class Prediction:
    ids: list[str]
    per_model: np.ndarray   # (n_models, N), TTA-averaged probabilities
    target: np.ndarray      # (N,), the ensemble


def predict(models: list[ServingModel], data: TestData, tta: str = "none", ensemble_method: str = "mean",
            batch_size: int = 16, progress: bool = False) -> Prediction:
    """Predict every test record with every model; checks the ids (see ``check_ids``)."""
    if tta not in TTA_MODES:
        raise ValueError(f"--tta: expected one of {TTA_MODES}, got {tta!r}")
    if batch_size < 1:
        raise ValueError(f"--batch-size: expected an int >= 1, got {batch_size}")
    if tta == "flips":
        for model in models:
            model.time_flip_panels()   # fail before reading any data
    ids, chunks = [], []
    bar = None
    if show_progress(progress):  # a bar on a terminal only, not into logs
        from tqdm import tqdm

        bar = tqdm(total=data.expected_count, unit="cadence", desc="predict", file=sys.stderr)
    for batch_ids, cadence in data.batches(batch_size):
        chunks.append(predict_batch(models, cadence, tta))
        ids.extend(batch_ids)
        if bar is not None:
            bar.update(len(batch_ids))
    if bar is not None:
        bar.close()
    check_ids(ids, data.expected_ids, data.expected_count)
    per_model = np.concatenate(chunks, axis=1) if chunks else np.zeros((len(models), 0), np.float32)
    return Prediction(ids, per_model, ensemble(per_model, ensemble_method))


def write_submission(prediction: Prediction, out: str) -> str:
    """Write ``id,target`` (local path or fsspec URL); returns ``out``."""
    import pandas as pd

    from tfseti.io import fs as fsutil

    fs, inner = fsutil.url_to_fs(out)
    parent = os.path.dirname(inner)
    if parent and not fsutil.is_url(out):
        os.makedirs(parent, exist_ok=True)
    frame = pd.DataFrame({"id": prediction.ids, "target": prediction.target})
    with fs.open(inner, "w") as handle:
        frame.to_csv(handle, index=False)
    return out


# ----------------------------------------------------------------------------- CLI


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tfseti.predict",
        description="Predict a test set with exported SavedModels and write a Kaggle submission.")
    parser.add_argument("--model", required=True,
                        help="comma-separated SavedModel folders or run folders (every fold*/saved_model)")
    parser.add_argument("--data", required=True,
                        help="Kaggle-layout folder (test/ + sample_submission.csv), test shard folder "
                             "(test-*.tfrec) or shard glob pattern")
    parser.add_argument("--tta", choices=TTA_MODES, default="none",
                        help="flips: mean over the 4 time/frequency flip combinations")
    parser.add_argument("--ensemble", choices=ENSEMBLES, default="mean",
                        help="combine models by mean probability or mean normalised rank")
    parser.add_argument("--out", default="submission.csv", help="output csv (local or gs://)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (there is none when stderr is not a terminal)")
    args = parser.parse_args(argv)

    try:
        models = [load_model(p) for p in resolve_model_paths(args.model)]
        for model in models:
            print(f"model {model.describe()}")
        data = open_test_data(args.data)
        print(f"data: {data.description}")
        result = predict(models, data, args.tta, args.ensemble, args.batch_size,
                         progress=not args.no_progress)
        write_submission(result, args.out)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"submission: {args.out}")
    print(f"{len(result.ids)} ids, mean target {float(result.target.mean()):.4f} "
          f"({len(models)} model(s), tta {args.tta}, ensemble {args.ensemble})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
