"""The numbers of a sensitivity run: completeness per bin with Wilson intervals, SNR50 / SNR90
per drift bin, and false alarms per MHz. No TensorFlow, no setigen.

* **Wilson score interval** (:func:`wilson`): the 95 % interval of a fraction ``k / n``; unlike
  ``k / n +/- 1.96 sqrt(p (1 - p) / n)`` it stays inside [0, 1] and is not zero-width at 0 or
  ``n`` found, where completeness curves live.
* **SNR50 / SNR90** (:func:`snr_at`): a logistic curve in ``log SNR`` fitted to the found (1) /
  missed (0) signals by maximum likelihood, solved for 50 % / 90 %. A value outside the planted
  SNR range is not reported (``None``, with ``below`` / ``above``): the fit says only that the
  curve crosses there, not where. All found: ``below``; none found: ``above``.
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


def snr_at(snr, found, levels=LEVELS, bounds: tuple[float, float] | None = None) -> dict:
    """``{level: (snr or None, None | "below" | "above")}`` (module notes). ``bounds``: the
    planted SNR range (default: the values' range)."""
    from scipy.optimize import minimize

    snr = np.asarray(snr, float)
    found = np.asarray(found, bool)
    lo, hi = bounds or ((float(snr.min()), float(snr.max())) if len(snr) else (1.0, 1.0))
    out = {}
    if len(snr) == 0:
        return {q: (None, None) for q in levels}
    if found.all():
        return {q: (None, "below") for q in levels}
    if not found.any():
        return {q: (None, "above") for q in levels}
    x = np.log(snr)
    centre = float(np.median(x))

    def loss(theta):
        a, b = theta
        z = a + b * (x - centre)
        # log(1 + e^z) without overflow; the negative log-likelihood of the 0/1 outcomes
        return float(np.sum(np.logaddexp(0.0, z) - found * z))

    fit = minimize(loss, x0=np.array([0.0, 1.0]), method="Nelder-Mead",
                   options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000})
    a, b = fit.x
    for q in levels:
        if not (np.isfinite(a) and np.isfinite(b)) or b <= 0:
            out[q] = (None, None)         # completeness does not rise with SNR here
            continue
        value = math.exp(centre + (math.log(q / (1 - q)) - a) / b)
        out[q] = ((value, None) if lo <= value <= hi
                  else (None, "below" if value < lo else "above"))
    return out


def rate_per_mhz(count: int, mhz: float) -> dict:
    """False alarms per MHz with the exact 95 % Poisson interval (None where ``mhz`` is 0)."""
    from scipy.stats import chi2

    if mhz <= 0:
        return {"count": count, "mhz": mhz, "per_mhz": None, "lo95": None, "hi95": None}
    low = 0.0 if count == 0 else chi2.ppf(0.025, 2 * count) / 2
    high = chi2.ppf(0.975, 2 * count + 2) / 2
    return {"count": int(count), "mhz": float(mhz), "per_mhz": count / mhz,
            "lo95": float(low / mhz), "hi95": float(high / mhz)}
