"""Stacking (``--ensemble stack`` / ``stack:gbm``): a level-2 model over the runs' out-of-fold scores.

Each ``--model`` entry is a run folder with the ``oof.csv`` a ``--fold all`` training writes
(``id, fold, target, score``, score = the fold model's log-odds on its validation records). The
level-2 features are one per run: that run's OOF score for the same id. All runs must hold the
same ids with the same folds and targets (the same fold split), or the OOF scores of one run
would have been made by models that trained on rows another run holds out.

Fitting without leaking: the stacker is estimated leave-one-fold-out over the OOF folds (fit on
the other folds' rows, score the held-out fold), which gives the stacked OOF AUC to compare with
each run's OOF AUC and with the mean ensemble's (:func:`fit_stack`, ``StackResult.table``). The
model applied to the test set is then fit on all OOF rows. A run's test feature is the mean over
its fold models of the logit of their (TTA-averaged) probabilities (:func:`run_features`): the
same scale as the single model's log-odds it was fit on. Logits on both sides are clipped to
``±LOGIT_CLIP`` (probabilities 1e-6 .. 1 - 1e-6: a float32 probability carries no more).

A run with a calibrator (``calibration.json``, ``tfseti.train.calibration``) enters with its
calibrated log-odds on both sides: its OOF scores mapped by its ``none`` calibrator here, its test
probabilities calibrated by ``tfseti.predict.models.load_model`` (the default; with ``--tta
flips`` by the ``flips`` calibrator, fitted on the same rows' flip-TTA scores). The map is
increasing and affine in the log-odds, so ``gbm`` is unchanged by it and ``logistic`` only through
its L2 penalty. Models loaded with ``calibrated=False`` do not match these features.

The OOF scores were made without TTA: with ``--tta`` the test features are TTA-averaged, which can
move them (see the measurements of flip TTA in docs/prediction.md); check TTA on a validation
fold first.

Stackers (``STACKERS``): ``logistic`` (sklearn ``LogisticRegression``, L2, C = 1; its coefficients
are the runs' weights) and ``gbm`` (sklearn ``HistGradientBoostingClassifier`` with defaults and a
fixed ``random_state``). :func:`stack_runs` is the whole fit from run folders, usable from
benchmarks without the CLI; :func:`fit_stack` starts from features already in memory.
"""

from __future__ import annotations

import json
import math
import os
import posixpath
import re
from dataclasses import dataclass, field

import numpy as np

from tfseti.metrics import auc

STACKERS = ("logistic", "gbm")
ENSEMBLE_STACK = "stack"          # --ensemble stack = stack:logistic
STACK_FILE = "stack.json"
LOGIT_CLIP = 13.8                 # logit(1 - 1e-6)
GBM_RANDOM_STATE = 0
_FOLD_MODEL = re.compile(r"(?:^|/)fold(\d+)/saved_model/?$")


def parse_stack(ensemble: str) -> str | None:
    """The stacker of an ``--ensemble`` value (``stack`` -> ``logistic``, ``stack:gbm`` -> ``gbm``),
    or None for ``mean`` / ``rank``."""
    mode, sep, method = str(ensemble).partition(":")
    if mode != ENSEMBLE_STACK:
        return None
    method = method if sep else STACKERS[0]
    if method not in STACKERS:
        raise ValueError(f"--ensemble: expected {ENSEMBLE_STACK} or "
                         f"{' or '.join(f'{ENSEMBLE_STACK}:{m}' for m in STACKERS)}, got {ensemble!r}")
    return method


def clipped_logit(probs: np.ndarray) -> np.ndarray:
    """``log(p / (1 - p))`` clipped to ``±LOGIT_CLIP``."""
    p = np.clip(np.asarray(probs, np.float64), 1e-6, 1 - 1e-6)
    return np.clip(np.log(p) - np.log1p(-p), -LOGIT_CLIP, LOGIT_CLIP)


@dataclass
class OofFeatures:
    """The level-2 training set: one row per id (sorted), one feature per run."""

    runs: list[str]
    ids: list[str]
    fold: np.ndarray          # (N,) int
    target: np.ndarray        # (N,) 0/1
    features: np.ndarray      # (N, R) OOF log-odds, clipped


def oof_features(frames: dict) -> OofFeatures:
    """Features from ``{run name: oof frame (id, fold, target, score)}``; every run must hold the
    same ids with the same folds and targets (ValueError naming the run otherwise)."""
    if not frames:
        raise ValueError("stack: no run given")
    runs, columns = list(frames), []
    first = None
    for run, frame in frames.items():
        missing = [c for c in ("id", "fold", "target", "score") if c not in frame.columns]
        if missing:
            raise ValueError(f"{run}: oof frame lacks column(s) {missing}")
        frame = frame.assign(id=frame["id"].astype(str)).sort_values("id", kind="stable")
        if frame["id"].duplicated().any():
            raise ValueError(f"{run}: id {frame['id'][frame['id'].duplicated()].iloc[0]!r} appears "
                             f"more than once in its OOF predictions")
        if first is None:
            first_run, first = run, frame
        else:
            ids, first_ids = set(frame["id"]), set(first["id"])
            if ids != first_ids:
                only_here, only_there = sorted(ids - first_ids), sorted(first_ids - ids)
                raise ValueError(
                    f"{run}: its OOF ids differ from {first_run}'s ({len(only_here)} only in "
                    f"{run}, e.g. {only_here[:3]}; {len(only_there)} only in {first_run}, e.g. "
                    f"{only_there[:3]}): stacking needs runs trained on the same records")
            for key, what in (("fold", "fold"), ("target", "target")):
                differ = frame[key].to_numpy() != first[key].to_numpy()
                if differ.any():
                    row = int(np.argmax(differ))
                    raise ValueError(
                        f"{run}: id {frame['id'].iloc[row]!r} has {what} {frame[key].iloc[row]} "
                        f"there but {first[key].iloc[row]} in {first_run} ({int(differ.sum())} "
                        f"id(s) differ): stacking needs runs with the same fold split and targets")
        columns.append(np.clip(frame["score"].to_numpy(np.float64), -LOGIT_CLIP, LOGIT_CLIP))
    return OofFeatures(runs=runs, ids=first["id"].tolist(), fold=first["fold"].to_numpy(np.int64),
                       target=first["target"].to_numpy(np.int64), features=np.stack(columns, axis=1))


def read_oof_features(runs: list[str]) -> OofFeatures:
    """:func:`oof_features` of the ``oof.csv`` of each run folder (local or fsspec URL)."""
    from tfseti.io import fs as fsutil
    from tfseti.io.run_files import read_oof   # the checked oof.csv reader

    frames = {}
    for run in runs:
        run = run.rstrip("/")
        fs, inner = fsutil.url_to_fs(run)
        if not fs.exists(f"{inner}/oof.csv"):
            raise FileNotFoundError(
                f"{run}: no oof.csv; --ensemble stack needs run folders trained with --fold all "
                f"(their out-of-fold predictions), not single SavedModels")
        if run in frames:
            raise ValueError(f"--model: run {run} is given twice")
        frame = read_oof(fs, f"{inner}/oof.csv", fsutil.join(run, "oof.csv"))
        frames[run] = _calibrated(fs, inner, run, frame)
    return oof_features(frames)


def _calibrated(fs, inner: str, run: str, frame):
    """``frame`` with its scores mapped by the run's ``none`` calibrator (``calibration.json``)
    when it has one (the calibrated log-odds): the SavedModels of that run load calibrated
    (``load_model``), so the test features :func:`run_features` makes are calibrated log-odds
    too."""
    from tfseti.calibrate import FILE, CalibrationError, calibrators
    from tfseti.io import fs as fsutil
    from tfseti.io.run_files import read_json

    if not fs.exists(f"{inner}/{FILE}"):
        return frame
    shown = fsutil.join(run, FILE)
    doc = read_json(fs, f"{inner}/{FILE}", shown)
    calibrator = calibrators(doc, shown).get("none")
    if calibrator is None:
        return frame
    folds = sorted(int(f) for f in frame["fold"].unique())
    fitted = (doc["modes"]["none"].get("data") or {}).get("folds")
    if isinstance(fitted, list) and sorted(fitted) != folds:
        raise CalibrationError(f"{shown}: fitted on the out-of-fold rows of folds {fitted}, the "
                               f"run's oof.csv holds folds {folds}: stale; rerun the training "
                               f"command to refit it")
    return frame.assign(score=calibrator.calibrated_logit(frame["score"].to_numpy()))


def _estimator(method: str, seed: int):
    if method == "logistic":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=1.0, max_iter=1000)
    if method == "gbm":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(random_state=seed)
    raise ValueError(f"stack: expected a stacker in {STACKERS}, got {method!r}")


def _fit(method: str, seed: int, features: np.ndarray, target: np.ndarray, where: str):
    classes = np.unique(target)
    if len(classes) < 2:
        raise ValueError(f"stack: the OOF rows {where} hold only target {int(classes[0])}: the "
                         f"level-2 model needs both classes")
    return _estimator(method, seed).fit(features, target)


def _nan_to_none(value: float):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


@dataclass
class StackResult:
    """A fitted stacker and its leave-one-fold-out evaluation.

    oof_probability: each row scored by the stacker fit without its fold; fold_auc / run_fold_auc
    / mean_fold_auc: the AUC of each held-out fold (stacked, per run, mean ensemble);
    model: the stacker fit on every OOF row (applied to the test features).
    """

    method: str
    runs: list[str]
    folds: list[int]
    rows: int
    oof_probability: np.ndarray
    oof_auc: float
    fold_auc: dict
    run_auc: list[float]
    run_fold_auc: list[dict]
    mean_auc: float
    mean_fold_auc: dict
    model: object = field(repr=False, default=None)

    @property
    def coefficients(self) -> list[float] | None:
        """The logistic stacker's weight per run (feature order = ``runs``); None for gbm."""
        coef = getattr(self.model, "coef_", None)
        return None if coef is None else [float(c) for c in np.asarray(coef).reshape(-1)]

    @property
    def intercept(self) -> float | None:
        value = getattr(self.model, "intercept_", None)
        return None if value is None else float(np.asarray(value).reshape(-1)[0])

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Stacked probabilities of ``(N, R)`` test features (:func:`run_features`)."""
        features = np.asarray(features, np.float64)
        if features.ndim != 2 or features.shape[1] != len(self.runs):
            raise ValueError(f"stack: expected features (N, {len(self.runs)}), got {features.shape}")
        return self.model.predict_proba(features)[:, 1]

    def table(self) -> str:
        """OOF AUC and per-fold AUC of each run, the mean ensemble and the stack, one line each."""
        width = max(len("stack (" + self.method + ")"), *(len(r) for r in self.runs))
        head = f"{'':<{width}}  {'OOF AUC':>8}" + "".join(f"  {'fold ' + str(f):>8}" for f in self.folds)

        def row(name, total, per_fold):
            return (f"{name:<{width}}  {total:>8.4f}"
                    + "".join(f"  {per_fold[f]:>8.4f}" for f in self.folds))

        lines = [head]
        lines += [row(run, a, fa) for run, a, fa in zip(self.runs, self.run_auc, self.run_fold_auc)]
        lines.append(row("mean", self.mean_auc, self.mean_fold_auc))
        lines.append(row(f"stack ({self.method})", self.oof_auc, self.fold_auc))
        return "\n".join(lines)

    def to_json(self) -> dict:
        """What ``stack.json`` holds."""
        def per_fold(values):
            return {str(f): _nan_to_none(values[f]) for f in self.folds}

        doc = {
            "method": self.method,
            "feature_order": self.runs,
            "features": (f"per run: train = its out-of-fold log-odds (oof.csv score), test = the "
                         f"mean over its fold models of logit(TTA-averaged probability); both "
                         f"clipped to +-{LOGIT_CLIP}"),
            "coefficients": self.coefficients,
            "intercept": self.intercept,
            "rows": self.rows,
            "folds": self.folds,
            "oof_auc": {"stack": _nan_to_none(self.oof_auc), "mean": _nan_to_none(self.mean_auc),
                        "runs": {r: _nan_to_none(a) for r, a in zip(self.runs, self.run_auc)}},
            "fold_auc": {"stack": per_fold(self.fold_auc), "mean": per_fold(self.mean_fold_auc),
                         "runs": {r: per_fold(fa) for r, fa in zip(self.runs, self.run_fold_auc)}},
        }
        if self.method == "gbm":
            doc["params"] = {k: v for k, v in self.model.get_params().items()
                             if isinstance(v, (int, float, str, bool, type(None)))}
            doc["n_iter"] = int(getattr(self.model, "n_iter_", 0))
        return doc


def fit_stack(oof: OofFeatures, method: str = "logistic", seed: int = GBM_RANDOM_STATE) -> StackResult:
    """Leave-one-fold-out evaluation of the stacker over ``oof``, then the fit on all rows."""
    if method not in STACKERS:
        raise ValueError(f"stack: expected a stacker in {STACKERS}, got {method!r}")
    folds = sorted(int(f) for f in np.unique(oof.fold))
    if len(folds) < 2:
        raise ValueError(f"stack: the OOF rows hold {len(folds)} fold(s) ({folds}); leave-one-fold-"
                         f"out fitting needs at least 2")
    held_out = np.full(len(oof.ids), np.nan)
    for fold in folds:
        test = oof.fold == fold
        model = _fit(method, seed, oof.features[~test], oof.target[~test], f"outside fold {fold}")
        held_out[test] = model.predict_proba(oof.features[test])[:, 1]

    def per_fold(score):
        return {f: auc(oof.target[oof.fold == f], score[oof.fold == f]) for f in folds}

    mean = (1.0 / (1.0 + np.exp(-oof.features))).mean(axis=1)   # --ensemble mean of the runs
    columns = [oof.features[:, k] for k in range(len(oof.runs))]
    return StackResult(
        method=method, runs=list(oof.runs), folds=folds, rows=len(oof.ids),
        oof_probability=held_out, oof_auc=auc(oof.target, held_out), fold_auc=per_fold(held_out),
        run_auc=[auc(oof.target, c) for c in columns], run_fold_auc=[per_fold(c) for c in columns],
        mean_auc=auc(oof.target, mean), mean_fold_auc=per_fold(mean),
        model=_fit(method, seed, oof.features, oof.target, "of all folds"))


def stack_runs(runs: list[str], method: str = "logistic", seed: int = GBM_RANDOM_STATE) -> StackResult:
    """:func:`fit_stack` over the ``oof.csv`` of the run folders ``runs`` (benchmarks call this)."""
    return fit_stack(read_oof_features(runs), method, seed)


def fold_of_model(path: str) -> int | None:
    """K of a ``.../fold<K>/saved_model`` path (None otherwise)."""
    match = _FOLD_MODEL.search(path.rstrip("/") + "/")
    return int(match[1]) if match else None


def check_run_models(run: str, model_paths: list[str], folds: list[int]) -> None:
    """The run's fold models must be exactly the folds of its OOF predictions."""
    found = sorted(f for f in (fold_of_model(p) for p in model_paths) if f is not None)
    if len(found) != len(model_paths) or found != sorted(folds):
        raise ValueError(f"{run}: its SavedModels are folds {found} but its oof.csv holds folds "
                         f"{sorted(folds)}: the test feature is the mean over the models of the "
                         f"folds the stacker was fit on")


def run_features(per_model: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    """``(N, R)`` test features from ``(n_models, N)`` TTA-averaged probabilities: for run r, the
    mean over its models ``groups[r]`` (indices into ``per_model``) of the clipped logit."""
    logits = clipped_logit(per_model)
    return np.stack([logits[list(group)].mean(axis=0) for group in groups], axis=1)


def write_stack_json(result: StackResult, submission: str, extra: dict | None = None) -> str:
    """Write ``stack.json`` next to the submission ``submission`` (local or fsspec URL)."""
    from tfseti.io import fs as fsutil

    parent = (posixpath if fsutil.is_url(submission) else os.path).dirname(submission)
    out = fsutil.join(parent, STACK_FILE)
    fs, inner = fsutil.url_to_fs(out)
    with fs.open(inner, "w") as handle:
        json.dump({**result.to_json(), **(extra or {})}, handle, indent=2)
        handle.write("\n")
    return out
