"""The run folder's calibrators: ``calibration.json``, fitted on the run's out-of-fold predictions.

:func:`calibrate_run` fits one calibrator per TTA mode (``tfseti.calibrate``: temperature or Platt
scaling, chosen by its rule) on the out-of-fold rows of every finished ``fold<K>/`` of a local run
folder (folds trained by earlier commands into the same folder count too) and writes
``RUN/calibration.json`` atomically as strict JSON: per mode the chosen map, both candidates, the
fitting rows (count, class balance, folds) and log-loss / ECE raw, calibrated (in sample) and
cross-fitted.

* ``none``: the fold's ``oof.csv`` log-odds, the trainer's single pass (free).
* ``flips``: the fold's exported SavedModel predicts its validation shards with flip TTA
  (``tfseti.predict``, ``--tta flips``: the mean of the 4 passes' probabilities), written to
  ``fold<K>/oof_flips.csv`` (``id, fold, target, score`` = log-odds) once and reused by later
  commands; the trainer removes it when the fold is trained again. It costs 4 prediction passes
  over the validation fold, on the device TensorFlow places the SavedModel on (a GPU when there is
  one; the host CPU on a TPU VM). The shards are the ones given (the trainer passes its own),
  else the fold's ``config.json`` ``data.data``. Skipped (said in the log) when the model has no
  exact flip (``tfseti.predict.tta.time_flip_panels`` refuses its view).

Why a calibrator per mode, measured on the demo run (``make demo``: cpu recipe, dedoppler view,
validated on fold 0 = 500 of 2,000 synthetic cadences; test = its 400 held-out cadences): the
single-pass validation probabilities were already close to calibrated (ECE 0.048, where a
perfectly calibrated model shows 0.044 ± 0.009 from sampling alone at 500 rows), while flip TTA
moved them (mean probability 0.65 on a 50 % positive set, ECE 0.18). A calibrator fitted on single
passes and applied to the TTA passes' mean log-odds made that worse (ECE 0.28) and lowered the AUC
(0.852 against 0.911 for the mean probability, one saturated flipped pass dominating the mean).
The ``flips`` calibrator (Platt, intercept -1.14) brings the test set's flip-TTA mean probability
from 0.656 to 0.503, log-loss 0.448 -> 0.356, ECE 0.170 -> 0.092; it cannot do more, because the
flipped passes of that model are not label-preserving (its flip-TTA probabilities cluster where
1, 2 or 3 of the 4 passes fire), which also costs AUC: 0.911 with flips, 0.928 without.

``tfseti.train.folds.train_folds`` calls :func:`calibrate_run` once all folds of a command are
done; ``tfseti.predict.models.load_model`` applies the file. No calibrator is written (and a stale
file is removed) when the out-of-fold rows hold one class only. No TensorFlow at import.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pandas as pd

from tfseti import calibrate
from tfseti.io.atomic import write_json, write_text
from tfseti.io.run_files import OOF_FILE, read_oof
from tfseti.train import run_folder

CALIBRATION_FILE = calibrate.FILE
OOF_FLIPS_FILE = "oof_flips.csv"
MODES = ("none", "flips")
FLIPS_BATCH = 32


def _local_fs():
    import fsspec

    return fsspec.filesystem("file")


def _finished_folds(out_dir: str) -> list[tuple[int, str]]:
    return [(fold, path) for fold, path in run_folder.fold_dirs(out_dir)
            if run_folder.fold_finished(path)]


def _joined(frames: list[pd.DataFrame], out_dir: str, name: str) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame({"id": [], "fold": [], "target": [], "score": []})
    table = pd.concat(frames, ignore_index=True)
    duplicated = table["id"][table["id"].duplicated()]
    if len(duplicated):
        raise calibrate.CalibrationError(f"{out_dir}: id {duplicated.iloc[0]!r} is in the {name} "
                                         f"of more than one fold")
    return table


def run_oof(out_dir: str) -> pd.DataFrame:
    """Every finished fold's ``oof.csv`` rows of the local run folder ``out_dir`` (each checked
    by ``tfseti.io.run_files.read_oof``; an id in two folds is an error)."""
    frames = [read_oof(_local_fs(), os.path.join(path, OOF_FILE), os.path.join(path, OOF_FILE))
              for _, path in _finished_folds(out_dir)]
    return _joined(frames, out_dir, OOF_FILE)


def fold_flip_scores(fold_dir: str, fold: int, shards, log=print) -> pd.DataFrame | None:
    """The fold's ``oof_flips.csv`` (made and written when absent, see the module docstring);
    None when its model has no exact flip. ``shards``: the TensorFlow-readable shard folder of
    the run, or a callable giving it."""
    cache = os.path.join(fold_dir, OOF_FLIPS_FILE)
    if os.path.exists(cache):
        return read_oof(_local_fs(), cache, cache)
    shards = shards() if callable(shards) else shards
    from tfseti.io.shards import open_shard_folder
    from tfseti.predict.models import load_model
    from tfseti.predict.submission import predict
    from tfseti.predict.test_data import files_test_data
    from tfseti.predict.tta import time_flip_panels

    model = load_model(os.path.join(fold_dir, "saved_model"), calibrated=False)
    try:
        time_flip_panels(model)
    except ValueError as err:
        log(f"calibration: no flips calibrator ({err})")
        return None
    folder = open_shard_folder(shards)
    files = folder.files("val", fold)
    count = folder.records_in(files)
    result = predict([model], files_test_data(files, count, f"fold {fold}'s validation shards"),
                     tta="flips", batch_size=FLIPS_BATCH)
    oof = read_oof(_local_fs(), os.path.join(fold_dir, OOF_FILE), os.path.join(fold_dir, OOF_FILE))
    targets = dict(zip(oof["id"], oof["target"]))
    if sorted(result.ids) != sorted(targets):
        raise calibrate.CalibrationError(
            f"{fold_dir}: the validation shards of fold {fold} in {shards} hold other ids than its "
            f"{OOF_FILE} ({len(result.ids)} against {len(targets)})")
    frame = pd.DataFrame({"id": result.ids, "fold": fold,
                          "target": [int(targets[i]) for i in result.ids],
                          "score": calibrate.logit(result.target)})
    frame = frame.sort_values("id", kind="stable").reset_index(drop=True)
    text = io.StringIO()
    frame.to_csv(text, index=False, float_format="%.17g")
    write_text(cache, text.getvalue())
    return frame


def _fold_shards(fold_dir: str):
    """A callable giving a TensorFlow-readable path of the shard folder the fold was trained
    on (its ``config.json``'s ``data.data``; fetched locally when TensorFlow cannot read it),
    called only when the fold's flip scores must be made."""
    def where() -> str:
        import json

        from tfseti.io.staging import tf_readable

        with open(os.path.join(fold_dir, run_folder.CONFIG_FILE)) as handle:
            data = (json.load(handle).get("data") or {}).get("data")
        if not data:
            raise calibrate.CalibrationError(f"{fold_dir}: its {run_folder.CONFIG_FILE} names no "
                                             f"shard folder (data.data) to predict with")
        return tf_readable(data)
    return where


def _fit(table: pd.DataFrame, mode: str) -> calibrate.Fit:
    folds = sorted(int(f) for f in table["fold"].unique())
    source = {"none": f"fold<K>/{OOF_FILE} (the trainer's single pass over each validation fold)",
              "flips": (f"fold<K>/{OOF_FLIPS_FILE} (each fold's SavedModel on its validation "
                        f"shards, flip TTA: logit of the mean of the 4 passes' probabilities)")}
    return calibrate.fit(table["score"].to_numpy(), table["target"].to_numpy(),
                         groups=table["fold"].to_numpy(),
                         data={"folds": folds, "tta": mode, "source": source[mode]})


def calibrate_run(out_dir: str, shards: str | None = None, modes=MODES, log=print) -> dict | None:
    """Fit and write ``out_dir/calibration.json`` (see the module docstring) for the TTA
    ``modes``; ``shards``: a TensorFlow-readable path of the run's shard folder (for the ``flips``
    mode's missing ``oof_flips.csv``; default: each fold's ``data.data``). Returns the written
    document, or None when there is nothing to calibrate (no finished fold, or one class)."""
    path = os.path.join(out_dir, CALIBRATION_FILE)
    table = run_oof(out_dir)
    if table.empty or table["target"].nunique() < 2:
        why = ("no finished fold" if table.empty else
               f"the {len(table)} out-of-fold rows are all of class {int(table['target'].iloc[0])}")
        removed = run_folder.remove_present(out_dir, [CALIBRATION_FILE])
        log(f"calibration: none ({why}){'; removed the stale ' + path if removed else ''}")
        return None
    fits = {"none": _fit(table, "none")} if "none" in modes else {}
    if "flips" in modes:
        frames = []
        for fold, fold_dir in _finished_folds(out_dir):
            frame = fold_flip_scores(fold_dir, fold, shards or _fold_shards(fold_dir), log)
            if frame is None:
                break
            frames.append(frame)
        else:
            fits["flips"] = _fit(_joined(frames, out_dir, OOF_FLIPS_FILE), "flips")
    if not fits:
        removed = run_folder.remove_present(out_dir, [CALIBRATION_FILE])
        log(f"calibration: none (no mode of {list(modes)} could be fitted)"
            f"{'; removed the stale ' + path if removed else ''}")
        return None
    doc = calibrate.document(fits)
    write_json(path, doc)
    for mode, result in fits.items():
        log(f"calibration (--tta {mode}): {result.calibrator.describe()} on {result.rows} "
            f"out-of-fold rows ({result.positives} positive; folds {result.data['folds']}): ECE "
            f"{_fmt(result.before['ece'])} raw, {_fmt(result.after['ece'])} calibrated, "
            f"{_fmt(result.cross_fitted['ece'])} cross-fitted ({calibrate.ECE_BINS} bins)")
    log(f"calibration: {path}")
    return doc


def _fmt(value) -> str:
    return "undefined" if value is None or not np.isfinite(value) else f"{value:.4f}"
