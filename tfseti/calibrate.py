"""Calibrated probabilities: temperature or Platt scaling on the logit, ECE and reliability bins.

One job: fit a calibrator on log-odds ``z`` and 0/1 labels ``y`` (a run's out-of-fold predictions,
``oof.csv``), apply it, and measure calibration. numpy and scipy only: nothing here imports
TensorFlow, so the trainer's run-folder step, the report and the loader of
``tfseti.predict.models`` share it.

**The maps** (both strictly increasing in ``z``, so a ranking and its ROC AUC are unchanged):

* temperature scaling: ``p = sigmoid(z / T)``, one parameter ``T > 0``;
* Platt scaling: ``p = sigmoid(a * z + b)``, slope ``a > 0`` and intercept ``b``.

Both are stored as ``(slope, intercept)`` (temperature: ``slope = 1 / T``, ``intercept = 0``).
``z`` is clipped to ``±LOGIT_LIMIT`` (16) before the map, in the fit and when applying: a float32
probability, which is what an exported SavedModel returns, holds no more than about ±16.6 of
log-odds (``1 - 2**-24``), so the fit sees the logits the loader will see.

**Fitting** is maximum likelihood (mean binary cross-entropy), convex in ``(slope, intercept)``,
minimised with scipy's L-BFGS-B from the identity (``slope = 1``, ``intercept = 0``) with the
analytic gradient, the slope bounded to ``[1e-3, 1e3]`` (a model no better than chance, or
separable data, stops at a bound instead of diverging; ``at_bound`` says so). The targets are
Platt's (1999) regularised ones, ``(N+ + 1) / (N+ + 2)`` for positives and ``1 / (N- + 2)`` for
negatives: they keep the optimum finite on separable or one-sided data and barely move it on
thousands of rows. Log-losses reported are against the 0/1 labels.

**The choice between the two** (:func:`fit`): Platt nests temperature scaling (``b = 0``), so its
log-loss on the fitting rows is never worse. Platt is chosen only when its intercept earns its
place: when the drop in deviance ``2 * N * (log-loss(temperature) - log-loss(Platt))`` exceeds
3.841, the 95 % quantile of chi-squared with one degree of freedom (a likelihood-ratio test of
``b = 0``); otherwise temperature scaling, the one-parameter map.

**ECE** (expected calibration error): ``sum over bins of (n_bin / N) * |mean(y) - mean(p)|`` over
``ECE_BINS`` = 15 equal-width probability bins ``[k/15, (k+1)/15)`` (the last one closed at 1);
:func:`reliability` gives the per-bin counts, mean probabilities and positive fractions that a
reliability diagram draws.

**Test-time augmentation**: a calibrator maps the scores it was fitted on, and TTA makes other
scores (the passes of a flip TTA are not the single pass the trainer's out-of-fold predictions
are). So a run holds one calibrator per TTA mode (:func:`document`, ``modes``): ``none`` fitted on
the single-pass out-of-fold log-odds, ``flips`` on the out-of-fold flip-TTA scores, where the TTA
score of a record is ``logit(mean of the passes' probabilities)``, the combination
``tfseti.predict`` has always used. (Averaging the passes' log-odds instead was measured on the
demo run's validation fold: flip-TTA AUC 0.852 against 0.911 for the mean probability, one
saturated flipped pass dominating the mean; ``tfseti.train.calibration`` has the numbers.) A TTA
mode without a calibrator gives raw probabilities.

**Honest numbers**: the fitting rows score the calibrator in-sample. :func:`fit` also cross-fits
it (:func:`cross_fitted`): with several folds, leave one fold out (fit on the others, apply to the
held-out fold); with one fold, 5 seeded random splits of its rows. Its ECE is the estimate of what
the calibrator does on data it did not see.

Non-finite logits, probabilities or labels other than 0/1 are refused (:class:`CalibrationError`
naming the count and the first position); a stored document is checked when read
(:func:`calibrators`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

FILE = "calibration.json"          # the run folder's calibrators (tfseti.train.calibration)
FORMAT = "tfseti-calibration"
VERSION = 1
METHODS = ("temperature", "platt")
ECE_BINS = 15
LOGIT_LIMIT = 16.0
SLOPE_BOUNDS = (1e-3, 1e3)
# Likelihood-ratio threshold for Platt's intercept: chi-squared, 1 degree of freedom, 95 %.
PLATT_DEVIANCE_DROP = 3.841458820694124
CROSS_FIT_SPLITS = 5               # random splits when the rows hold one fold only
CROSS_FIT_SEED = 0
RULE = (f"platt when 2 * N * (log-loss of temperature - log-loss of platt) on the fitting rows "
        f"> {PLATT_DEVIANCE_DROP:.3f} (likelihood-ratio test of its intercept, chi2(1) 95 %), "
        f"else temperature")


class CalibrationError(ValueError):
    """Calibration inputs or a stored calibrator are unusable; the message says which and why."""


# -- checked inputs and elementary maps ---------------------------------------------------------------
def _finite(values, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    bad = ~np.isfinite(array)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise CalibrationError(f"{what}: {int(bad.sum())} of {array.size} values are NaN or "
                               f"infinite (the first at position {first}: {float(array[first])!r}); "
                               f"calibration needs finite values")
    return array


def _labels(y, size: int, what: str = "labels") -> np.ndarray:
    labels = _finite(y, what)
    if labels.size != size:
        raise CalibrationError(f"{what}: {labels.size} values for {size} scores")
    if not np.isin(labels, (0.0, 1.0)).all():
        bad = float(labels[~np.isin(labels, (0.0, 1.0))][0])
        raise CalibrationError(f"{what}: value {bad!r}, expected 0 or 1")
    return labels


def checked_logits(z, what: str = "logits") -> np.ndarray:
    """``z`` as float64, refused when any value is NaN or infinite, clipped to ``±LOGIT_LIMIT``."""
    return np.clip(_finite(z, what), -LOGIT_LIMIT, LOGIT_LIMIT)


def sigmoid(z) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -z))


def logit(p, what: str = "probabilities") -> np.ndarray:
    """Log-odds of probabilities in [0, 1] (refused outside it or non-finite), clipped to
    ``±LOGIT_LIMIT``: 0 and 1 map to the limits."""
    prob = _finite(p, what)
    if ((prob < 0) | (prob > 1)).any():
        bad = float(prob[(prob < 0) | (prob > 1)][0])
        raise CalibrationError(f"{what}: value {bad!r} outside [0, 1]")
    with np.errstate(divide="ignore"):
        z = np.log(prob) - np.log1p(-prob)
    return np.clip(z, -LOGIT_LIMIT, LOGIT_LIMIT)


def log_loss(y, p) -> float:
    """Mean binary cross-entropy of probabilities ``p`` against 0/1 labels ``y`` (computed on
    their log-odds: a probability of exactly 0 or 1 costs ``LOGIT_LIMIT``-worth, not infinity)."""
    z = logit(p)
    labels = _labels(y, z.size)
    return float(np.mean(np.logaddexp(0.0, z) - labels * z)) if z.size else math.nan


# -- reliability and ECE ------------------------------------------------------------------------------
def _bin_index(p: np.ndarray, bins: int) -> np.ndarray:
    return np.minimum((p * bins).astype(np.int64), bins - 1)


def reliability(y, p, bins: int = ECE_BINS) -> list[dict]:
    """Per equal-width bin ``[k/bins, (k+1)/bins)`` (the last closed at 1): ``lower``, ``upper``,
    ``count``, ``mean_probability`` and ``positive_fraction`` (both None for an empty bin)."""
    prob = _finite(p, "probabilities")
    labels = _labels(y, prob.size)
    if ((prob < 0) | (prob > 1)).any():
        raise CalibrationError("probabilities: values outside [0, 1]")
    index = _bin_index(prob, bins)
    out = []
    for k in range(bins):
        inside = index == k
        count = int(inside.sum())
        out.append({"lower": k / bins, "upper": (k + 1) / bins, "count": count,
                    "mean_probability": float(prob[inside].mean()) if count else None,
                    "positive_fraction": float(labels[inside].mean()) if count else None})
    return out


def ece_of_bins(table: list[dict]) -> float:
    """The ECE of a :func:`reliability` table (NaN when it counts no rows)."""
    total = sum(row["count"] for row in table)
    if not total:
        return math.nan
    return float(sum(row["count"] / total * abs(row["positive_fraction"] - row["mean_probability"])
                     for row in table if row["count"]))


def ece(y, p, bins: int = ECE_BINS) -> float:
    """Expected calibration error over ``bins`` equal-width bins (see the module docstring)."""
    return ece_of_bins(reliability(y, p, bins))


def summary(y, p, bins: int = ECE_BINS) -> dict:
    """``log_loss``, ``ece``, ``mean_probability`` and the ``reliability`` table of ``p``."""
    table = reliability(y, p, bins)
    prob = np.asarray(p, dtype=np.float64).reshape(-1)
    return {"log_loss": log_loss(y, prob), "ece": ece_of_bins(table),
            "mean_probability": float(prob.mean()) if prob.size else math.nan,
            "reliability": table}


# -- the calibrator -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Calibrator:
    """``p = sigmoid(slope * clip(z, ±LOGIT_LIMIT) + intercept)`` on log-odds ``z``."""

    method: str
    slope: float
    intercept: float = 0.0

    def __post_init__(self):
        if self.method not in METHODS:
            raise CalibrationError(f"calibrator method {self.method!r}, expected one of {METHODS}")
        if not (isinstance(self.slope, (int, float)) and math.isfinite(self.slope) and self.slope > 0):
            raise CalibrationError(f"calibrator slope {self.slope!r}: expected a finite number > 0 "
                                   f"(a decreasing map would reverse the ranking)")
        if not (isinstance(self.intercept, (int, float)) and math.isfinite(self.intercept)):
            raise CalibrationError(f"calibrator intercept {self.intercept!r}: expected a finite "
                                   f"number")
        if self.method == "temperature" and self.intercept != 0:
            raise CalibrationError(f"temperature scaling has no intercept, got {self.intercept!r}")

    @property
    def temperature(self) -> float | None:
        return 1.0 / self.slope if self.method == "temperature" else None

    def calibrated_logit(self, z) -> np.ndarray:
        """The calibrated log-odds ``slope * clip(z) + intercept`` (float64)."""
        return self.slope * checked_logits(z) + self.intercept

    def from_logits(self, z) -> np.ndarray:
        """Calibrated probabilities of log-odds ``z`` (float64)."""
        return sigmoid(self.calibrated_logit(z))

    def __call__(self, p) -> np.ndarray:
        """Calibrated probabilities of raw probabilities ``p`` (float64)."""
        return self.from_logits(logit(p))

    def describe(self) -> str:
        if self.method == "temperature":
            return f"temperature scaling, T = {self.temperature:.4g}"
        return f"Platt scaling, sigmoid({self.slope:.4g} * logit {self.intercept:+.4g})"

    def tag(self) -> str:
        """A short exact identity (the pseudo-labels' settings record it)."""
        return f"{self.method}(slope={self.slope!r}, intercept={self.intercept!r})"

    def to_dict(self) -> dict:
        return {"method": self.method, "slope": float(self.slope), "intercept": float(self.intercept),
                "temperature": self.temperature, "logit_limit": LOGIT_LIMIT}

    @classmethod
    def from_dict(cls, doc, where: str = FILE) -> "Calibrator":
        """The calibrator of one mode's entry of a :func:`document` (or of :meth:`to_dict`);
        :class:`CalibrationError` naming ``where`` when it is not one."""
        if not isinstance(doc, dict):
            raise CalibrationError(f"{where}: expected a JSON object, got {type(doc).__name__}")
        if doc.get("format", FORMAT) != FORMAT or doc.get("version", VERSION) != VERSION:
            raise CalibrationError(f"{where}: format {doc.get('format')!r} version "
                                   f"{doc.get('version')!r}, expected {FORMAT!r} version {VERSION}")
        if doc.get("logit_limit", LOGIT_LIMIT) != LOGIT_LIMIT:
            raise CalibrationError(f"{where}: logit_limit {doc.get('logit_limit')!r}, this version "
                                   f"applies {LOGIT_LIMIT}")
        try:
            return cls(doc.get("method"), doc.get("slope"), doc.get("intercept", 0.0))
        except CalibrationError as err:
            raise CalibrationError(f"{where}: {err}") from None


IDENTITY = Calibrator("temperature", 1.0)


# -- fitting ------------------------------------------------------------------------------------------
def _platt_targets(y: np.ndarray) -> np.ndarray:
    positives, negatives = float(y.sum()), float(y.size - y.sum())
    return np.where(y > 0.5, (positives + 1.0) / (positives + 2.0), 1.0 / (negatives + 2.0))


@dataclass
class Candidate:
    calibrator: Calibrator
    log_loss: float                 # against the 0/1 labels, on the fitting rows
    converged: bool
    at_bound: bool


def _fit_one(method: str, z: np.ndarray, y: np.ndarray) -> Candidate:
    from scipy.optimize import minimize

    targets = _platt_targets(y)
    with_intercept = method == "platt"

    def objective(params):
        slope = params[0]
        intercept = params[1] if with_intercept else 0.0
        s = slope * z + intercept
        loss = np.mean(np.logaddexp(0.0, s) - targets * s)
        residual = sigmoid(s) - targets
        grad = [np.mean(residual * z)] + ([np.mean(residual)] if with_intercept else [])
        return loss, np.asarray(grad)

    start = [1.0, 0.0] if with_intercept else [1.0]
    bounds = [SLOPE_BOUNDS] + ([(None, None)] if with_intercept else [])
    result = minimize(objective, np.asarray(start), jac=True, method="L-BFGS-B", bounds=bounds,
                      options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 1000})
    slope = float(result.x[0])
    intercept = float(result.x[1]) if with_intercept else 0.0
    if not (math.isfinite(slope) and math.isfinite(intercept)):
        raise CalibrationError(f"{method} scaling: the optimiser gave non-finite parameters "
                               f"({result.message})")
    calibrator = Calibrator(method, slope, intercept)
    at_bound = bool(np.isclose(slope, SLOPE_BOUNDS, rtol=1e-6).any())
    loss = float(np.mean(np.logaddexp(0.0, slope * z + intercept) - y * (slope * z + intercept)))
    return Candidate(calibrator, loss, bool(result.success), at_bound)


def fit_temperature(z, y) -> Candidate:
    """Temperature scaling fitted on log-odds ``z`` and 0/1 labels ``y``."""
    logits = checked_logits(z)
    return _fit_one("temperature", logits, _labels(y, logits.size))


def fit_platt(z, y) -> Candidate:
    """Platt scaling fitted on log-odds ``z`` and 0/1 labels ``y``."""
    logits = checked_logits(z)
    return _fit_one("platt", logits, _labels(y, logits.size))


def choose(z, y) -> tuple[Calibrator, dict[str, Candidate]]:
    """Both candidates fitted, and the one :data:`RULE` picks."""
    logits = checked_logits(z)
    labels = _labels(y, logits.size)
    if not logits.size:
        raise CalibrationError("no rows to fit a calibrator on")
    candidates = {"temperature": _fit_one("temperature", logits, labels),
                  "platt": _fit_one("platt", logits, labels)}
    drop = 2.0 * logits.size * (candidates["temperature"].log_loss - candidates["platt"].log_loss)
    method = "platt" if drop > PLATT_DEVIANCE_DROP else "temperature"
    return candidates[method].calibrator, candidates


def cross_fitted(z, y, groups=None, seed: int = CROSS_FIT_SEED) -> tuple[np.ndarray, str]:
    """Calibrated probabilities of every row by a calibrator (chosen by :data:`RULE`) that did
    not see it: leave one group out when ``groups`` (the folds) has several values, else
    ``CROSS_FIT_SPLITS`` seeded random splits. Returns ``(probabilities, scheme)``."""
    logits = checked_logits(z)
    labels = _labels(y, logits.size)
    keys = None if groups is None else np.asarray(groups).reshape(-1)
    if keys is not None and keys.size != logits.size:
        raise CalibrationError(f"groups: {keys.size} values for {logits.size} scores")
    if keys is not None and len(np.unique(keys)) > 1:
        values = np.unique(keys)
        scheme = f"leave one fold out over folds {[v.item() for v in values]}"
    else:
        splits = min(CROSS_FIT_SPLITS, logits.size)
        if splits < 2:
            raise CalibrationError(f"cross-fitting needs at least 2 rows, got {logits.size}")
        keys = np.random.default_rng(seed).permutation(logits.size) % splits
        values = np.arange(splits)
        scheme = f"{splits} random splits of the rows (seed {seed})"
    out = np.empty(logits.size)
    for value in values:
        held = keys == value
        calibrator, _ = choose(logits[~held], labels[~held])
        out[held] = calibrator.from_logits(logits[held])
    return out, scheme


@dataclass
class Fit:
    """A fitted calibrator with the measurements that go into ``calibration.json``."""

    calibrator: Calibrator
    candidates: dict[str, Candidate]
    rows: int
    positives: int
    before: dict                    # summary() of sigmoid(z): the raw probabilities
    after: dict                     # summary() of the calibrated probabilities, in-sample
    cross_fitted: dict              # summary() of the cross-fitted probabilities, and its scheme
    data: dict = field(default_factory=dict)   # where the rows came from (folds, file, tta)

    def to_json(self) -> dict:
        """One mode's part of the document (no NaN: an undefined number is null)."""
        from tfseti.io.atomic import finite_or_none

        candidates = {name: {**c.calibrator.to_dict(), "log_loss": c.log_loss,
                             "converged": c.converged, "at_bound": c.at_bound}
                      for name, c in self.candidates.items()}
        return finite_or_none({
            **self.calibrator.to_dict(), "describe": self.calibrator.describe(),
            "data": {"rows": self.rows, "positives": self.positives,
                     "negatives": self.rows - self.positives,
                     "positive_fraction": self.positives / self.rows if self.rows else None,
                     **self.data},
            "candidates": candidates,
            "before": self.before, "after": self.after, "cross_fitted": self.cross_fitted})


def document(fits: dict[str, Fit]) -> dict:
    """The ``calibration.json`` document of a run: one fitted calibrator per TTA mode
    (``{"none": Fit, "flips": Fit}``), strict JSON."""
    return {"format": FORMAT, "version": VERSION, "rule": RULE, "ece_bins": ECE_BINS,
            "logit_limit": LOGIT_LIMIT,
            "apply": ("p = sigmoid(slope * clip(z, -logit_limit, logit_limit) + intercept) with "
                      "the calibrator of the TTA mode in use; z = logit of the model's "
                      "probability (with TTA: of the mean of the passes' probabilities)"),
            "modes": {mode: fit.to_json() for mode, fit in fits.items()}}


def calibrators(doc, where: str = FILE) -> dict[str, Calibrator]:
    """``{TTA mode: Calibrator}`` of a :func:`document`; :class:`CalibrationError` naming
    ``where`` when it is not one (format, version, logit limit, each calibrator checked)."""
    if not isinstance(doc, dict):
        raise CalibrationError(f"{where}: expected a JSON object, got {type(doc).__name__}")
    if doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise CalibrationError(f"{where}: format {doc.get('format')!r} version "
                               f"{doc.get('version')!r}, expected {FORMAT!r} version {VERSION}")
    modes = doc.get("modes")
    if not isinstance(modes, dict) or not modes:
        raise CalibrationError(f"{where}: no 'modes' object of calibrators")
    return {str(mode): Calibrator.from_dict(item, f"{where} (mode {mode})")
            for mode, item in modes.items()}


def fit(z, y, groups=None, data: dict | None = None) -> Fit:
    """Fit both maps on log-odds ``z`` and labels ``y``, choose by :data:`RULE`, and measure the
    raw, calibrated (in-sample) and cross-fitted probabilities (``groups``: each row's fold)."""
    logits = checked_logits(z)
    labels = _labels(y, logits.size)
    calibrator, candidates = choose(logits, labels)
    held, scheme = cross_fitted(logits, labels, groups)
    return Fit(calibrator=calibrator, candidates=candidates, rows=int(logits.size),
               positives=int(labels.sum()), before=summary(labels, sigmoid(logits)),
               after=summary(labels, calibrator.from_logits(logits)),
               cross_fitted={"scheme": scheme, **summary(labels, held)}, data=dict(data or {}))
