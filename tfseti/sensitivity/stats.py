"""The numbers of a sensitivity run: completeness per bin with Wilson intervals, SNR50 / SNR90
per drift bin with bootstrap intervals, and false alarms per MHz. No TensorFlow, no setigen.

* **Wilson score interval** (:func:`wilson`): the 95 % interval of a fraction ``k / n``; unlike
  ``k / n +/- 1.96 sqrt(p (1 - p) / n)`` it stays inside [0, 1] and is not zero-width at 0 or
  ``n`` found, where completeness curves live.
* **SNR50 / SNR90** (:func:`snr_at`): a logistic curve in ``log SNR`` fitted to the found (1) /
  missed (0) signals by maximum likelihood with Firth's penalty (:func:`fit_logistic`: finite
  and unique where found and missed signals do not overlap in SNR), solved for 50 % / 90 %.
  A value outside the planted SNR range is not reported (``None``, with ``below`` / ``above``):
  the fit says only that the curve crosses there, not where. All found: ``below``; none found:
  ``above``; a curve that does not rise with SNR: undefined (``None``, ``None``).
* **Their 95 % intervals** (:func:`snr_thresholds`): a percentile bootstrap over the planted
  signals of the group. Each of ``resamples`` resamples draws as many signals as the group has,
  with replacement, from a seeded generator, and the curve is refitted; the interval is the
  2.5 % and 97.5 % order statistics of the resampled SNR50 (SNR90). The resample is shared by
  every detector (their intervals are of the same draws). A resample that finds all its signals
  counts as crossing below the planted range, one that finds none or whose curve does not rise
  as never crossing; an end of the interval outside the planted range is reported as such
  (``below`` / ``above``), never extrapolated. Why not the Wilson bounds of the binned curve:
  they are pointwise, per SNR bin, and depend on the binning; reading a threshold off where they
  cross 50 % or 90 % has no stated coverage. The bootstrap carries the fit's own uncertainty,
  narrows as ``1 / sqrt(signals)``, and needs no bins.
* **False alarms per MHz** (:func:`rate_per_mhz`): detections in the untouched slots over their
  bandwidth, with the exact (Garwood) 95 % Poisson interval.
"""

from __future__ import annotations

import math

import numpy as np

Z95 = 1.959963984540054
LEVELS = (0.5, 0.9)


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | tuple[None, None]:
    """The Wilson score interval of ``k`` successes in ``n`` trials; ``(None, None)`` for n = 0."""
    if n <= 0:
        return None, None
    if not 0 <= k <= n:
        raise ValueError(f"wilson: {k} successes of {n} trials")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def log_edges(lo: float, hi: float, bins: int) -> np.ndarray:
    return np.exp(np.linspace(math.log(lo), math.log(hi), bins + 1)) if hi > lo else np.array([lo, hi])


def lin_edges(lo: float, hi: float, bins: int) -> np.ndarray:
    return np.linspace(lo, hi, bins + 1) if hi > lo else np.array([lo, hi])


def bin_index(values, edges: np.ndarray) -> np.ndarray:
    """Bin of each value: ``edges[i] <= v < edges[i + 1]``, the last bin closed."""
    values = np.asarray(values, float)
    return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)


# Fisher scoring on the penalized likelihood: stop when a step moves (a, b) less than this.
MAX_ITERATIONS = 100
TOLERANCE = 1e-9
DEFAULT_RESAMPLES = 1000
INTERVAL = 0.95


def _information(a, b, x, w):
    """``(p, s, I00, I01, I11)``: the fitted probabilities, the weights ``w p (1 - p)`` and the
    Fisher information of (a, b) for each row (a tiny ridge keeps it invertible when a row holds
    one SNR only)."""
    z = a[:, None] + b[:, None] * x
    p = 0.5 * (1.0 + np.tanh(0.5 * z))                 # the logistic function, overflow-free
    s = w * p * (1.0 - p)
    ridge = 1e-9 * w.sum(axis=1)
    return p, s, s.sum(axis=1) + ridge, (s * x).sum(axis=1), (s * x * x).sum(axis=1) + ridge


def _penalized_nll(a, b, x, y, w):
    """Each row's negative log-likelihood minus Firth's penalty ``log det I / 2``."""
    z = a[:, None] + b[:, None] * x
    nll = np.sum(w * (np.logaddexp(0.0, z) - y * z), axis=1)
    _, _, i00, i01, i11 = _information(a, b, x, w)
    return nll - 0.5 * np.log(np.maximum(i00 * i11 - i01 * i01, 1e-300))


def fit_logistic(x, found, weights, start: tuple[float, float] = (0.0, 1.0)
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``P(found) = 1 / (1 + exp(-(a + b x)))`` for each row of ``weights`` (``(resamples, n)``
    counts of each of the ``n`` signals; a row of ones is the data itself), from ``start``.

    Maximum likelihood with Firth's penalty (the Jeffreys prior, ``log det I / 2``): where the
    found and the missed signals do not overlap in SNR (separation: frequent in a small drift
    bin, and in bootstrap resamples) the plain likelihood has no maximum, the slope runs to
    infinity and where the curve ends up depends on the optimiser; the penalized one has a
    unique finite maximum, and where the data overlap it moves the estimate by O(1/n).
    Returns ``(a, b)``, one per row; ``x`` should be centred (conditioning)."""
    x = np.asarray(x, float)
    y = np.asarray(found, float)
    w = np.atleast_2d(np.asarray(weights, float))
    a, b = np.full(len(w), float(start[0])), np.full(len(w), float(start[1]))
    loss = _penalized_nll(a, b, x, y, w)
    active = np.ones(len(w), bool)
    for _ in range(MAX_ITERATIONS):
        if not active.any():
            break
        idx = np.flatnonzero(active)
        wa = w[idx]
        p, s, i00, i01, i11 = _information(a[idx], b[idx], x, wa)
        det = i00 * i11 - i01 * i01
        v00, v01, v11 = i11 / det, -i01 / det, i00 / det          # I^-1
        h = s * (v00[:, None] + 2 * v01[:, None] * x + v11[:, None] * x * x)   # leverages
        u = wa * (y - p) + h * (0.5 - p)                          # Firth's modified score
        u0, u1 = u.sum(axis=1), (u * x).sum(axis=1)
        da, db = v00 * u0 + v01 * u1, v01 * u0 + v11 * u1
        # Halve a step until the penalized likelihood does not fall: a full step can overshoot.
        t = np.ones(len(idx))
        pending = np.ones(len(idx), bool)
        for _ in range(40):
            if not pending.any():
                break
            k = np.flatnonzero(pending)
            after = _penalized_nll(a[idx[k]] + t[k] * da[k], b[idx[k]] + t[k] * db[k], x, y, wa[k])
            before = loss[idx[k]]
            ok = after <= before + 1e-12 * np.abs(before)
            loss[idx[k[ok]]] = after[ok]
            pending[k[ok]] = False
            t[k[~ok]] *= 0.5
        t[pending] = 0.0
        a[idx] += t * da
        b[idx] += t * db
        active[idx] = np.abs(t * da) + np.abs(t * db) > TOLERANCE
    return a, b


def data_fit(x, found) -> tuple[float, float, float]:
    """The data's own curve in ``x`` = log SNR: ``(centre, a, b)``, ``P(found) = 1 / (1 +
    exp(-(a + b (x - centre))))`` (:func:`fit_logistic`), ``centre`` the median of ``x``
    (conditioning). The thresholds are read from it, and the figures draw it."""
    x = np.asarray(x, float)
    centre = float(np.median(x))
    a, b = fit_logistic(x - centre, found, np.ones((1, len(x))))
    return centre, float(a[0]), float(b[0])


def drift_range(lo: float, hi: float) -> str:
    """A drift bin as tables and figures name it: ``-0.50..-0.25`` (Hz/s)."""
    return f"{lo:+.2f}..{hi:+.2f}"


def _crossings(x, found, weights, levels) -> np.ndarray:
    """``log SNR`` where each row's fitted curve crosses each level, ``(rows, levels)``: ``-inf``
    for a row that finds every signal it holds, ``+inf`` for one that finds none or whose curve
    does not rise, NaN for an empty row."""
    x = np.asarray(x, float)
    y = np.asarray(found, bool)
    w = np.atleast_2d(np.asarray(weights, float))
    out = np.full((len(w), len(levels)), np.nan)
    n = w.sum(axis=1)
    k = (w * y).sum(axis=1)
    out[(n > 0) & (k == n)] = -np.inf
    out[(n > 0) & (k == 0)] = np.inf
    mixed = (n > 0) & (k > 0) & (k < n)
    if mixed.any():
        centre = float(np.median(x))
        start = (0.0, 1.0)
        if mixed.sum() > 1 and 0 < y.sum() < len(y):
            # resamples lie near the data's own fit: starting there saves most of the iterations
            _, a0, b0 = data_fit(x, y)
            if np.isfinite(a0) and np.isfinite(b0):
                start = (a0, b0)
        a, b = fit_logistic(x - centre, y, w[mixed], start)
        rising = np.isfinite(a) & np.isfinite(b) & (b > 0)
        for i, q in enumerate(levels):
            value = np.full(len(a), np.inf)
            value[rising] = centre + (math.log(q / (1 - q)) - a[rising]) / b[rising]
            out[mixed, i] = value
    return out


def _place(log_value: float, lo: float, hi: float, undefined=(None, None)) -> tuple:
    """``(snr, None)`` inside the planted range ``[lo, hi]``, else ``(None, "below" | "above")``."""
    if math.isnan(log_value):
        return undefined
    if log_value == -math.inf:
        return None, "below"
    if log_value == math.inf:
        return None, "above"
    value = math.exp(log_value)
    # the planted range, a hair wide: a crossing at the largest planted SNR is inside it
    if lo * (1 - 1e-12) <= value <= hi * (1 + 1e-12):
        return value, None
    return None, "below" if value < lo else "above"


def snr_at(snr, found, levels=LEVELS, bounds: tuple[float, float] | None = None) -> dict:
    """``{level: (snr or None, None | "below" | "above")}`` (module notes). ``bounds``: the
    planted SNR range (default: the values' range)."""
    snr = np.asarray(snr, float)
    found = np.asarray(found, bool)
    if len(snr) == 0:
        return {q: (None, None) for q in levels}
    lo, hi = bounds or (float(snr.min()), float(snr.max()))
    x = np.log(snr)
    crossing = _crossings(x, found, np.ones((1, len(x))), levels)[0]
    out = {}
    for q, c in zip(levels, crossing):
        if c == math.inf and found.any():
            # some found but the curve does not rise with SNR: no threshold, not "above"
            out[q] = (None, None)
        else:
            out[q] = _place(float(c), lo, hi)
    return out


def bootstrap_weights(n: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``(resamples, n)`` counts: each row ``n`` draws with replacement from ``n`` signals."""
    if n == 0:
        return np.zeros((resamples, 0))
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(float)


def snr_thresholds(snr, found_by: dict, bounds: tuple[float, float], resamples: int,
                   rng: np.random.Generator, levels=LEVELS) -> dict:
    """For each detector of ``found_by`` (``{detector: found flags}``, one per signal of
    ``snr``): ``{"snr50": .., "snr50_bound": .., "snr50_lo95": .., "snr50_lo95_bound": ..,
    "snr50_hi95": .., "snr50_hi95_bound": .., "snr90": ..}`` (module notes); the resamples are
    drawn once, from ``rng``, and shared by the detectors."""
    snr = np.asarray(snr, float)
    lo, hi = bounds
    weights = bootstrap_weights(len(snr), resamples, rng)
    x = np.log(snr) if len(snr) else snr
    cut_lo = int(math.floor((1 - INTERVAL) / 2 * resamples))
    cut_hi = int(math.ceil((1 + INTERVAL) / 2 * resamples)) - 1
    out = {}
    for d, found in found_by.items():
        found = np.asarray(found, bool)
        point = snr_at(snr, found, levels, bounds)
        entry = {}
        if len(snr):
            boot = np.sort(_crossings(x, found, weights, levels), axis=0)
        for i, q in enumerate(levels):
            key = f"snr{round(q * 100)}"
            entry[key], entry[f"{key}_bound"] = point[q]
            if len(snr):
                entry[f"{key}_lo95"], entry[f"{key}_lo95_bound"] = _place(float(boot[cut_lo, i]), lo, hi)
                entry[f"{key}_hi95"], entry[f"{key}_hi95_bound"] = _place(float(boot[cut_hi, i]), lo, hi)
            else:
                entry.update({f"{key}_lo95": None, f"{key}_lo95_bound": None,
                              f"{key}_hi95": None, f"{key}_hi95_bound": None})
        out[d] = entry
    return out


def format_snr(value, bound, bounds: tuple[float, float] | None = None, digits: int = 1) -> str:
    """A threshold for a table: the number, ``> 50`` (never reached within the planted range,
    whose largest SNR is 50), ``< 5`` (reached below its smallest), or ``n/a``."""
    if value is not None:
        return f"{value:.{digits}f}"
    if bound in ("below", "above") and bounds is not None:
        return f"{'<' if bound == 'below' else '>'} {bounds[0 if bound == 'below' else 1]:g}"
    return {"below": "< range", "above": "> range"}.get(bound, "n/a")


def format_interval(entry: dict, key: str, bounds=None, digits: int = 1) -> str:
    """``"23.0 [17.9, 31.2]"``: ``entry[key]`` and its 95 % interval (:func:`snr_thresholds`)."""
    point = format_snr(entry.get(key), entry.get(f"{key}_bound"), bounds, digits)
    if f"{key}_lo95" not in entry:
        return point
    lo = format_snr(entry[f"{key}_lo95"], entry[f"{key}_lo95_bound"], bounds, digits)
    hi = format_snr(entry[f"{key}_hi95"], entry[f"{key}_hi95_bound"], bounds, digits)
    return f"{point} [{lo}, {hi}]"


def rate_per_mhz(count: int, mhz: float) -> dict:
    """False alarms per MHz with the exact 95 % Poisson interval (None where ``mhz`` is 0)."""
    from scipy.stats import chi2

    if mhz <= 0:
        return {"count": count, "mhz": mhz, "per_mhz": None, "lo95": None, "hi95": None}
    low = 0.0 if count == 0 else chi2.ppf(0.025, 2 * count) / 2
    high = chi2.ppf(0.975, 2 * count + 2) / 2
    return {"count": int(count), "mhz": float(mhz), "per_mhz": count / mhz,
            "lo95": float(low / mhz), "hi95": float(high / mhz)}
