"""Which unlabelled records become training records, and with which target (no TensorFlow).

``--select`` takes one of:

* ``all``: every record, with its soft target (2nd place: all 40,000 test cadences joined
  training with the fold ensemble's probability as their label);
* ``confident:NPOS,NNEG``: the NPOS records of highest and the NNEG of lowest probability (3rd
  place: the 5,000 most confident of each side, soft targets from the mean of 5 folds);
* ``threshold:LO,HI``: the records of probability <= LO or >= HI.

``--hard`` replaces each soft target by its hard label (probability >= 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("all", "confident", "threshold")
FORMS = "all | confident:NPOS,NNEG | threshold:LO,HI"


@dataclass(frozen=True)
class Selection:
    kind: str
    n_pos: int = 0
    n_neg: int = 0
    low: float = 0.0
    high: float = 1.0

    def __str__(self) -> str:
        if self.kind == "confident":
            return f"confident:{self.n_pos},{self.n_neg}"
        if self.kind == "threshold":
            return f"threshold:{self.low:g},{self.high:g}"
        return "all"

    def choose(self, probability: np.ndarray) -> np.ndarray:
        """Boolean mask of the chosen records (ties broken by position: deterministic)."""
        probability = np.asarray(probability, np.float64)
        n = len(probability)
        if self.kind == "all":
            return np.ones(n, bool)
        if self.kind == "threshold":
            return (probability <= self.low) | (probability >= self.high)
        if self.n_pos + self.n_neg > n:
            raise ValueError(f"--select {self}: asks for {self.n_pos + self.n_neg} records, the "
                             f"unlabelled set has {n}")
        order = np.argsort(-probability, kind="stable")
        chosen = np.zeros(n, bool)
        chosen[order[:self.n_pos]] = True
        chosen[order[n - self.n_neg:]] = True
        return chosen


def parse_selection(text: str) -> Selection:
    """``Selection`` of an ``--select`` value; ValueError naming the expected forms."""
    kind, _, rest = str(text).strip().partition(":")
    problem = f"--select: expected {FORMS}, got {text!r}"
    if kind == "all" and not rest:
        return Selection("all")
    parts = rest.split(",")
    if kind == "confident" and len(parts) == 2:
        try:
            n_pos, n_neg = (int(p) for p in parts)
        except ValueError:
            raise ValueError(problem) from None
        if n_pos < 0 or n_neg < 0 or n_pos + n_neg == 0:
            raise ValueError(f"--select {text}: NPOS and NNEG must be >= 0, not both 0")
        return Selection("confident", n_pos=n_pos, n_neg=n_neg)
    if kind == "threshold" and len(parts) == 2:
        try:
            low, high = (float(p) for p in parts)
        except ValueError:
            raise ValueError(problem) from None
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"--select {text}: expected 0 <= LO < HI <= 1")
        return Selection("threshold", low=low, high=high)
    raise ValueError(problem)


def training_targets(probability: np.ndarray, hard: bool) -> np.ndarray:
    """The targets records are written with: the probability, or its hard label."""
    probability = np.asarray(probability, np.float64)
    return (probability >= 0.5).astype(np.float64) if hard else probability
