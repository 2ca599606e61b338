"""Stage a finished training run as a Kaggle dataset folder: what inference needs, and the metadata.

The staged folder is itself a run folder that ``python -m tfseti.predict --model FOLDER`` takes
(``resolve_model_paths`` finds every ``fold*/saved_model``)::

    dataset-metadata.json     id USER/SLUG, title, licence CC0-1.0, subtitle, description
    README.md                 how to predict with it (tfseti.predict or plain TensorFlow), CV AUC
    cv.json                   the run's CV AUC ("config"; only when the run has one)
    calibration.json          the run's calibrators ("config"; only when the run has them)
    fold<K>/saved_model/      the exported SavedModel ("saved_model", always)
    fold<K>/config.json       the resolved config: the view that ``--tta flips`` needs ("config")
    fold<K>/model.keras       the Keras network, for fine-tuning or ``init_from`` ("keras")

Nothing else of the run travels (backups, ``*.weights.h5``, TensorBoard, logs, out-of-fold
predictions, the report): a Kaggle notebook only predicts. Of ``saved_model/`` only a SavedModel's
own files are staged, by name (``saved_model.pb``, ``fingerprint.pb``, ``variables/variables.index``
and ``.data-*`` shards, the ``assets/`` files its graph declares); anything else found there (a
stray ``kaggle.json``) is left out and named. ``README.md`` also keeps the fold
folders' names on Kaggle: the upload zips each folder (``dir_mode="zip"``) and Kaggle unpacks an
archive into a folder of its name when other files sit beside it.

Only a complete run is staged (:func:`check_run`): every ``fold<K>/`` finished by the trainer's
rule (``tfseti.train.run_folder.fold_finished``: ``result.json`` and ``oof.csv`` written and the
backup removed, the backup going last; a fold still training or killed has its backup) and
holding a complete SavedModel (``saved_model.pb``, ``variables.index`` and every
``variables.data-*-of-N`` shard), and all folds trained with one recipe; a fold whose
``result.json`` losses or ``oof.csv`` scores are not finite (training diverged) is refused before
anything is copied (:func:`_non_finite_training`). After copying, each staged SavedModel is loaded
with ``tfseti.predict.models.load_model``: what is published loads (a model giving non-finite
probabilities is refused there too), and the README states the input shape read from its signature.

The run may be a local folder or an fsspec URL (``gs://...``): one listing, then only the files
to publish are copied.
"""

from __future__ import annotations

import json
import math
import os
import posixpath
import re
from dataclasses import dataclass, field

from tfseti.evaluate import fmt as fmt_auc
from tfseti.io import fs as fsutil
from tfseti.io.run_files import FOLD_DIR
from tfseti.train import run_folder

METADATA_FILE = "dataset-metadata.json"   # the name the kaggle package reads
README_FILE = "README.md"
LICENSE = "CC0-1.0"
# What a fold contributes per --include choice (saved_model is a folder).
INCLUDES = ("saved_model", "keras", "config")
DEFAULT_INCLUDE = ("saved_model", "config")
KERAS_FILE = "model.keras"
CONFIG_FILE = run_folder.CONFIG_FILE
CV_FILE = "cv.json"
CALIBRATION_FILE = "calibration.json"   # tfseti.calibrate.FILE (no numpy import here)
# Kaggle's limits (kaggle 2.2.4 ``dataset_create_new`` checks the slug, title and subtitle lengths;
# the slug is the dataset's URL: lowercase letters, digits and hyphens).
SLUG_LENGTH = (6, 50)
TITLE_LENGTH = (6, 50)
SUBTITLE_LENGTH = (20, 80)
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
_OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?$")
_VARIABLE_SHARD = re.compile(r"^variables\.data-(\d+)-of-(\d+)$")
# The files of a SavedModel, relative to its folder: only these are staged (never the whole
# folder), so a stray file such as a kaggle.json under assets/ or variables/ is not uploaded.
# assets/ files are staged only when the SavedModel's own saved_model.pb declares them.
SAVED_MODEL_FILES = ("saved_model.pb", "fingerprint.pb", "variables/variables.index")


class PublishError(ValueError):
    """A run, a dataset name or credentials that cannot be published; the message says why and
    what to do."""


# -- names ---------------------------------------------------------------------------------------
def validate_dataset_ref(ref: str) -> tuple[str, str]:
    """``(owner, slug)`` of ``USER/SLUG``; PublishError naming the rule broken."""
    parts = str(ref).split("/")
    if len(parts) != 2 or not all(parts):
        raise PublishError(f"--kaggle-dataset: expected USER/SLUG (your Kaggle user name / the "
                           f"dataset's URL name), got {ref!r}")
    owner, slug = parts
    if not _OWNER.match(owner):
        raise PublishError(f"--kaggle-dataset: the user {owner!r} must be a Kaggle user name "
                           f"(letters, digits, '-' or '_')")
    low, high = SLUG_LENGTH
    if not low <= len(slug) <= high:
        raise PublishError(f"--kaggle-dataset: the slug {slug!r} has {len(slug)} characters; "
                           f"Kaggle needs {low} to {high}")
    if not _SLUG.match(slug):
        raise PublishError(f"--kaggle-dataset: the slug {slug!r} may only hold lowercase letters, "
                           f"digits and hyphens, and neither start nor end with a hyphen")
    return owner, slug


def validate_title(title: str) -> str:
    low, high = TITLE_LENGTH
    if not low <= len(title.strip()) <= high:
        raise PublishError(f"--title: {title!r} has {len(title.strip())} characters; Kaggle "
                           f"needs {low} to {high}")
    return title.strip()


def parse_include(spec: str | tuple | list) -> tuple[str, ...]:
    """``"saved_model,keras"`` -> ``("saved_model", "keras")``, in :data:`INCLUDES` order."""
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    items = [s for s in items if s]
    unknown = sorted(set(items) - set(INCLUDES))
    if unknown:
        raise PublishError(f"--include: expected a comma-separated subset of {', '.join(INCLUDES)}, "
                           f"got {', '.join(unknown)}")
    if "saved_model" not in items:
        raise PublishError("--include: must hold saved_model (what tfseti.predict and "
                           "tf.saved_model.load read)")
    return tuple(name for name in INCLUDES if name in items)


# -- the run ---------------------------------------------------------------------------------------
@dataclass
class RunFold:
    fold: int
    config: dict
    best_val_auc: float


@dataclass
class RunToPublish:
    """A complete run: its location, its folds and the files of each to copy."""

    path: str
    name: str
    folds: list[RunFold]
    cv: dict | None                  # cv.json when it covers exactly these folds
    cv_note: str | None = None       # why there is no CV AUC to state
    copies: list[str] = field(default_factory=list)   # run-relative '/' paths of files to stage
    left_out: list[str] = field(default_factory=list)  # files in a saved_model/ not staged

    @property
    def cv_auc(self) -> float | None:
        value = (self.cv or {}).get("cv_auc")
        return float(value) if isinstance(value, (int, float)) else None


def _read_json(fs, path: str, shown: str) -> dict:
    try:
        with fs.open(path, "r") as handle:
            value = json.load(handle)
    except (OSError, ValueError) as err:
        raise PublishError(f"{shown}: unreadable ({err})") from None
    if not isinstance(value, dict):
        raise PublishError(f"{shown}: expected a JSON object")
    return value


def _non_finite_training(fs, fold: str, shown: str, result: dict) -> str | None:
    """Where a finished fold shows non-finite numbers (its file and key), else None.

    Publish runs no model before staging and keeps TensorFlow out of the check, so it reads the
    fold's own records instead of its weights: the epoch logs in ``result.json`` (a NaN loss;
    ``best_val_auc`` / ``val_auc`` may be null or NaN legitimately, for a one-class fold) and
    the ``score`` column of ``oof.csv``, which is the exported weights' predictions on the
    validation fold: NaN weights give NaN scores there. (The trainer now refuses to export such
    a fold at all; this catches runs trained before it did.)"""
    for key, values in (result.get("history") or {}).items():
        if key == "val_auc" or not isinstance(values, list):
            continue
        for epoch, value in enumerate(values, 1):
            if value is None or (isinstance(value, float) and not math.isfinite(value)):
                return f"{shown}/result.json: history {key!r} is {value} at epoch {epoch}"
    import pandas as pd

    try:
        with fs.open(f"{fold}/oof.csv", "r") as handle:
            scores = pd.read_csv(handle, usecols=["score"])["score"].to_numpy(dtype=float)
    except (OSError, ValueError) as err:
        raise PublishError(f"{shown}/oof.csv: unreadable, expected the trainer's id,target,score"
                           f" table ({err})") from None
    bad = sum(not math.isfinite(score) for score in scores)
    if bad:
        return f"{shown}/oof.csv: {bad} of {len(scores)} scores are not finite"
    return None


def _saved_model_problem(files: set[str], prefix: str) -> str | None:
    """Why ``prefix`` (``fold0/saved_model``) is not a complete SavedModel, else None."""
    if f"{prefix}/saved_model.pb" not in files:
        return "no saved_model/saved_model.pb"
    if f"{prefix}/variables/variables.index" not in files:
        return "no saved_model/variables/variables.index"
    shards = [_VARIABLE_SHARD.match(posixpath.basename(name)) for name in files
              if name.startswith(f"{prefix}/variables/variables.data-")]
    counts = {int(m[2]) for m in shards if m}
    if not counts:
        return "no saved_model/variables/variables.data-* shard"
    if len(counts) > 1:
        return f"variables.data-* shards of different counts {sorted(counts)}"
    (count,) = counts
    missing = sorted(set(range(count)) - {int(m[1]) for m in shards if m})
    if missing:
        return f"saved_model/variables is missing shard(s) {missing} of {count}"
    return None


def _declared_assets(fs, saved_model_pb: str, shown: str) -> set[str]:
    """The asset file names (relative to ``assets/``) that a ``saved_model.pb`` declares."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    try:
        with fs.open(saved_model_pb, "rb") as handle:
            proto.ParseFromString(handle.read())
    except Exception as err:  # noqa: BLE001 -- a protobuf DecodeError or a read error alike
        raise PublishError(f"{shown}: unreadable ({type(err).__name__}: {err})") from None
    return {asset.filename for graph in proto.meta_graphs for asset in graph.asset_file_def}


def saved_model_files(fs, root: str, shown: str, inside: set[str],
                      prefix: str) -> tuple[list[str], list[str]]:
    """``(to stage, left out)``: the run-relative files under ``prefix`` (``fold0/saved_model``)
    split by the allow-list of a SavedModel's files (:data:`SAVED_MODEL_FILES`, every
    ``variables/variables.data-*-of-*`` shard, and the ``assets/`` files its ``saved_model.pb``
    declares); both sorted."""
    under = sorted(f for f in inside if f.startswith(f"{prefix}/"))
    assets = [f for f in under if f.startswith(f"{prefix}/assets/")]
    # Reading the graph (TensorFlow's protobuf) only when there is an asset to judge; the
    # trainer's export declares none.
    declared = (_declared_assets(fs, f"{root}/{prefix}/saved_model.pb",
                                 f"{shown}/{prefix}/saved_model.pb") if assets else set())
    keep, left = [], []
    for name in under:
        rel = name[len(prefix) + 1:]
        allowed = (rel in SAVED_MODEL_FILES
                   or (rel.startswith("variables/") and rel.count("/") == 1
                       and _VARIABLE_SHARD.match(rel[len("variables/"):]))
                   or (rel.startswith("assets/") and rel[len("assets/"):] in declared))
        (keep if allowed else left).append(name)
    return keep, left


def check_run(run: str, include=DEFAULT_INCLUDE) -> RunToPublish:
    """Check that ``run`` is a complete run folder and list what to stage; PublishError else.

    Every problem of every fold is named in the one error, so one fix-and-rerun suffices.
    """
    include = parse_include(include)
    shown = str(run).rstrip("/")
    fs, root = fsutil.url_to_fs(shown)
    root = root.rstrip("/")
    if not fs.isdir(root):
        raise PublishError(f"{shown}: no such run folder")
    entries = fs.find(root, withdirs=True, detail=True)
    files = {posixpath.relpath(p, root) for p, info in entries.items() if info["type"] == "file"}
    backups = {posixpath.relpath(p, root).split("/", 1)[0] for p in entries
               if posixpath.relpath(p, root).split("/")[1:2] == ["backup"]}
    folds = sorted({int(m[1]) for m in (FOLD_DIR.match(name.split("/", 1)[0]) for name in files
                                        if "/" in name) if m})
    if not folds:
        raise PublishError(f"{shown}: not a run folder (no fold<K>/ folder with files); give the "
                           f"--out folder of python -m tfseti.train")
    problems, loaded, copies, left_out = [], [], [], []
    for fold in folds:
        name = f"fold{fold}"
        inside = {f for f in files if f.startswith(f"{name}/")}
        lacking = []
        # tfseti.train.run_folder.fold_finished's rule, on a listing (the run may be remote).
        backup = name in backups
        if backup or not {f"{name}/result.json", f"{name}/oof.csv"} <= inside:
            lacking.append("not finished (" + ("its backup/ is still there: training or "
                                               "interrupted" if backup else
                                               "no result.json/oof.csv yet") + ")")
        problem = _saved_model_problem(inside, f"{name}/saved_model")
        if problem:
            lacking.append(f"incomplete SavedModel: {problem}")
        if f"{name}/{CONFIG_FILE}" not in inside:
            lacking.append(f"no {CONFIG_FILE}")
        if "keras" in include and f"{name}/{KERAS_FILE}" not in inside:
            lacking.append(f"no {KERAS_FILE} (--include keras)")
        if lacking:
            problems.append(f"  {name}: " + "; ".join(lacking))
            continue
        config = _read_json(fs, f"{root}/{name}/{CONFIG_FILE}", f"{shown}/{name}/{CONFIG_FILE}")
        result = _read_json(fs, f"{root}/{name}/result.json", f"{shown}/{name}/result.json")
        diverged = _non_finite_training(fs, f"{root}/{name}", f"{shown}/{name}", result)
        if diverged:
            raise PublishError(f"{diverged}: its training diverged, the model gives NaN; nothing "
                               f"was published (retrain the fold)")
        best = result.get("best_val_auc")
        loaded.append(RunFold(fold, config, float(best) if isinstance(best, (int, float))
                              else float("nan")))
        keep, left = saved_model_files(fs, root, shown, inside, f"{name}/saved_model")
        copies.extend(keep)
        left_out.extend(left)
        if "config" in include:
            copies.append(f"{name}/{CONFIG_FILE}")
        if "keras" in include:
            copies.append(f"{name}/{KERAS_FILE}")
    if problems:
        raise PublishError(f"{shown}: not a complete run, nothing was published:\n"
                           + "\n".join(problems)
                           + "\n  let training finish (or rerun it: an interrupted fold resumes "
                             "from its backup), or move the incomplete fold folder out of the run")
    first = loaded[0]
    for other in loaded[1:]:
        diffs = run_folder.differences(first.config, other.config)
        if diffs:
            key, a, b = diffs[0]
            raise PublishError(f"{shown}: fold{first.fold} and fold{other.fold} were trained with "
                               f"different recipes ({key}: {json.dumps(a, default=str)} vs "
                               f"{json.dumps(b, default=str)}"
                               f"{f' and {len(diffs) - 1} more' if len(diffs) > 1 else ''}); "
                               f"one dataset holds one run")
    cv, cv_note = None, None
    if CV_FILE in files:
        cv = _read_json(fs, f"{root}/{CV_FILE}", f"{shown}/{CV_FILE}")
        covered = sorted(int(k) for k in (cv.get("folds") or {}))
        if covered != folds:
            cv_note = (f"{CV_FILE} covers folds {covered}, the run holds {folds}: no CV AUC is "
                       f"stated")
            cv = None
        elif "config" in include:
            copies.append(CV_FILE)
    elif len(folds) > 1:
        cv_note = f"no {CV_FILE} (folds trained one by one): the per-fold AUCs only"
    if CALIBRATION_FILE in files and "config" in include:
        calibration = _read_json(fs, f"{root}/{CALIBRATION_FILE}", f"{shown}/{CALIBRATION_FILE}")
        modes = calibration.get("modes") if isinstance(calibration.get("modes"), dict) else {}
        for mode, item in modes.items():
            fitted = (item.get("data") or {}).get("folds") if isinstance(item, dict) else None
            # As tfseti.predict.models reads it: stale when a fold's rows were not fitted on.
            if isinstance(fitted, list) and not set(folds) <= set(fitted):
                raise PublishError(f"{shown}/{CALIBRATION_FILE}: its {mode} calibrator was "
                                   f"fitted on the out-of-fold rows of folds {fitted}, the run "
                                   f"holds folds {folds}: stale; rerun the training command (it "
                                   f"refits it), or remove it to publish raw probabilities")
        copies.append(CALIBRATION_FILE)
    return RunToPublish(path=shown, name=posixpath.basename(shown) or shown, folds=loaded,
                        cv=cv, cv_note=cv_note, copies=copies, left_out=left_out)


# -- staging -----------------------------------------------------------------------------------------
@dataclass
class StagedDataset:
    folder: str
    ref: str
    title: str
    metadata: dict
    run: RunToPublish
    input_shape: tuple[int, int, int]   # (P, T, F) of the SavedModels' cadence input
    files: list[tuple[str, int]]        # (relative '/' path, bytes), sorted

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.files)


def subtitle(run: RunToPublish) -> str:
    """20-80 characters: folds and the CV AUC (or the best fold AUC)."""
    folds = len(run.folds)
    score = (f"CV AUC {fmt_auc(run.cv_auc)}" if run.cv_auc is not None
             else f"fold AUC {fmt_auc(run.folds[0].best_val_auc)}" if folds == 1
             else f"{folds} fold AUCs in README")
    text = f"tfseti SETI needle classifier, {folds} fold SavedModel{'s' * (folds > 1)}, {score}"
    return text[:SUBTITLE_LENGTH[1]]


def dataset_readme(run: RunToPublish, ref: str, title: str, include, input_shape) -> str:
    """The dataset's README.md (also its Kaggle description)."""
    slug = ref.split("/")[1]
    panels, rows, channels = input_shape
    config = run.folds[0].config
    model = (config.get("model") or {}).get("name", "?")
    view = (config.get("view") or {}).get("name", "?")
    fold_lines = "\n".join(f"| fold{f.fold} | {fmt_auc(f.best_val_auc)} |" for f in run.folds)
    cv_line = (f"CV AUC (out-of-fold, {len(run.folds)} folds): **{fmt_auc(run.cv_auc)}**"
               if run.cv_auc is not None else f"CV AUC: not stated ({run.cv_note})" if run.cv_note
               else "One fold: its best validation AUC below.")
    on_only = ("\ncadence = cadence[:, [0, 2, 4]]  # this model takes the 3 ON panels"
               if panels == 3 else "")
    extra = []
    if "config" in include:
        extra.append("`fold<K>/config.json` (the training recipe; `--tta flips` reads its view)")
        if CALIBRATION_FILE in run.copies:
            extra.append(f"`{CALIBRATION_FILE}`: the run's calibrators (fitted on its "
                         f"out-of-fold predictions, per `--tta` mode); `tfseti.predict` applies "
                         f"them, the SavedModel's own output is the uncalibrated probability")
    if "keras" in include:
        extra.append("`fold<K>/model.keras` (the Keras network, for fine-tuning)")
    extras = "".join(f"\n* {item}" for item in extra)
    return f"""# {title}

SETI Breakthrough Listen needle classifier trained with tfseti (`python -m tfseti.train`), run
`{run.name}`: recipe `{config.get("name", "?")}`, model `{model}`, view `{view}`.

{cv_line}

| fold | best validation AUC |
|------|---------------------|
{fold_lines}

## Files

* `fold<K>/saved_model/`: SavedModel, endpoint `serve` (also `serving_default`): raw cadences
  `float16[batch, {panels}, {rows}, {channels}]` in, needle probabilities `float32[batch]` out
  (view, resize and normalisation run inside the graph).{extras}

## Predict in a Kaggle notebook (offline)

Add this dataset and the competition data to the notebook. With tfseti installed (it must be
available offline, e.g. its wheel in another dataset: `pip install --no-index PATH/tfseti-*.whl`):

```bash
python -m tfseti.predict --model /kaggle/input/{slug} \\
    --data /kaggle/input/seti-breakthrough-listen --tta flips --out submission.csv
```

Every `fold*/saved_model` is loaded and their probabilities averaged (`--ensemble rank` for rank
averaging); `--tta flips` averages the 4 time/frequency flips.

With plain TensorFlow (nothing of tfseti needed):

```python
import numpy as np
import tensorflow as tf

model = tf.saved_model.load("/kaggle/input/{slug}/fold{run.folds[0].fold}/saved_model")
cadence = np.load("/kaggle/input/seti-breakthrough-listen/test/0/ID.npy")[None]  # (1, 6, 273, 256){on_only}
probability = model.serve(tf.constant(cadence, tf.float16)).numpy()  # shape (1,)
```
"""


def dataset_metadata(ref: str, title: str, run: RunToPublish, readme: str) -> dict:
    """The ``dataset-metadata.json`` the kaggle package reads (id, title, licences, subtitle,
    description)."""
    return {"title": title, "id": ref, "licenses": [{"name": LICENSE}],
            "subtitle": subtitle(run), "description": readme}


def _check_staging(folder: str) -> None:
    if os.path.isfile(folder):
        raise PublishError(f"--staging {folder}: is a file; give a new or empty folder")
    if os.path.isdir(folder) and os.listdir(folder):
        raise PublishError(f"--staging {folder}: not empty (a dataset version is everything in "
                           f"it); give a new or empty folder")


def list_files(folder: str) -> list[tuple[str, int]]:
    found = []
    for parent, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(parent, name)
            found.append((os.path.relpath(path, folder).replace(os.sep, "/"),
                          os.path.getsize(path)))
    return sorted(found)


def stage_run(run: str, folder: str, ref: str, title: str | None = None,
              include=DEFAULT_INCLUDE, log=print) -> StagedDataset:
    """Check ``run`` (:func:`check_run`), copy what inference needs into ``folder`` (new or
    empty), load every staged SavedModel, write README.md and dataset-metadata.json."""
    owner, slug = validate_dataset_ref(ref)
    title = validate_title(title if title is not None else slug)
    include = parse_include(include)
    _check_staging(folder)
    checked = check_run(run, include)
    if checked.cv_note:
        log(f"note: {checked.cv_note}")
    if checked.left_out:
        log(f"note: left out {len(checked.left_out)} file(s) that are not part of a SavedModel: "
            f"{', '.join(checked.left_out)}")
    fs, root = fsutil.url_to_fs(checked.path)
    root = root.rstrip("/")
    os.makedirs(folder, exist_ok=True)
    for name in checked.copies:
        target = os.path.join(folder, *name.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        fs.get_file(f"{root}/{name}", target)
    input_shape = _check_loadable(folder, [f.fold for f in checked.folds])
    readme = dataset_readme(checked, ref, title, include, input_shape)
    with open(os.path.join(folder, README_FILE), "w") as handle:
        handle.write(readme)
    metadata = dataset_metadata(f"{owner}/{slug}", title, checked, readme)
    with open(os.path.join(folder, METADATA_FILE), "w") as handle:
        json.dump(metadata, handle, indent=2)
        handle.write("\n")
    return StagedDataset(folder=folder, ref=f"{owner}/{slug}", title=title, metadata=metadata,
                         run=checked, input_shape=input_shape, files=list_files(folder))


def _check_loadable(folder: str, folds: list[int]) -> tuple[int, int, int]:
    """Load each staged SavedModel as ``tfseti.predict`` does; the (common) cadence shape."""
    from tfseti.predict.models import load_model

    shapes = {}
    for fold in folds:
        path = os.path.join(folder, f"fold{fold}", "saved_model")
        try:
            shapes[fold] = tuple(load_model(path).shape)
        except Exception as err:  # noqa: BLE001 -- any load failure means: do not publish
            raise PublishError(f"fold{fold}/saved_model does not load ({type(err).__name__}: "
                               f"{str(err).splitlines()[0] if str(err) else ''})") from None
    if len(set(shapes.values())) > 1:
        raise PublishError(f"the folds' SavedModels take different cadence shapes {shapes}")
    return next(iter(shapes.values()))
