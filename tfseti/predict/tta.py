"""Flip test-time augmentation (``--tta flips``): the mean probability of the 4 flip combinations,
then the run's ``flips`` calibrator when it has one (``tfseti.predict.models.ServingModel.combine``).

(``--tta random:N``, the model's own training augmentations drawn at random, is
``tfseti.predict.random_tta``; ``parse_tta`` here reads every ``--tta`` value.)

The flips are made on the raw cadences so that each equals the flip the training augmentation made
on the model's view image:

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
  pixel-equal to the training flip of the map, which does not swap the panels). The view is the
  model's (``ServingModel.view``, from the trainer's ``config.json``); without it the
  ``on`` / ``on_off`` order is used (said in the log).
  The OFF-median background and the column normalisation commute with these flips, except for view
  ``all`` with ``background = "off_median"`` without column normalisation, where no raw-cadence
  transform equals the image flip (the reversed stack puts ON panels where the median is taken):
  flip TTA refuses that model. The same holds for view ``all`` with the ``nmf`` extra channel
  (its background is fitted on the OFF panels); for ``on`` / ``on_off`` the NMF channel commutes
  with both flips (``tfseti.data.nmf``).
"""

from __future__ import annotations

import numpy as np

from tfseti.predict.models import ServingModel, fit_panels

TTA_MODES = ("none", "flips")
RANDOM_TTA = "random"   # --tta random:N (tfseti.predict.random_tta)
# Raw-cadence panel order of a time flip, per (view family, panels): see the module docstring.
TIME_FLIP_PANELS = {("stacked_on", 6): (4, 5, 2, 3, 0, 1), ("stacked_on", 3): (2, 1, 0),
                    ("all", 6): (5, 4, 3, 2, 1, 0)}


def parse_tta(tta: str) -> tuple[str, int]:
    """``(mode, passes)`` of a ``--tta`` value: ``none`` (1 pass), ``flips`` (4) or ``random:N``
    (N >= 1 passes of random training augmentations)."""
    if tta in TTA_MODES:
        return tta, (4 if tta == "flips" else 1)
    mode, sep, count = str(tta).partition(":")
    if mode == RANDOM_TTA and sep and count.isascii() and count.isdigit() and int(count) >= 1:
        return RANDOM_TTA, int(count)
    raise ValueError(f"--tta: expected one of {TTA_MODES} or {RANDOM_TTA}:N (N >= 1 passes), "
                     f"got {tta!r}")


def _check_mode(tta: str) -> None:
    if parse_tta(tta)[0] == RANDOM_TTA:
        raise ValueError(f"--tta {tta}: random TTA keeps its draws across batches; use "
                         f"tfseti.predict.random_tta.RandomTta (predict() does)")


def time_flip_panels(model: ServingModel) -> tuple[int, ...]:
    """The panel permutation that goes with reversing time for ``model`` (see the module docstring)."""
    view = model.view or {}
    family = "all" if view.get("name") == "all" else "stacked_on"
    if (family == "all" and view.get("background", "none") != "none"
            and not view.get("normalize_columns", False)):
        raise ValueError(f"{model.path}: view 'all' with background {view.get('background')!r} "
                         f"and no column normalisation: no flip of the raw cadences equals the "
                         f"training time flip of its image; use --tta none for this model")
    if family == "all" and "nmf" in view.get("extra_channels", ()):
        raise ValueError(f"{model.path}: view 'all' with the 'nmf' extra channel: reversing the "
                         f"six panels puts ON panels where the NMF background is fitted, so no "
                         f"flip of the raw cadences equals the training time flip of its image; "
                         f"use --tta none for this model")
    return TIME_FLIP_PANELS[(family, model.panels)]


def check_tta(tta: str, models: list[ServingModel]) -> None:
    """Refuse an unknown mode, or flips for a model without an exact time flip (before reading data;
    ``random:N`` is checked by building its ``RandomTta``)."""
    if parse_tta(tta)[0] == "flips":
        for model in models:
            time_flip_panels(model)


def flip_variants(cadence: np.ndarray, model: ServingModel, tta: str) -> list[np.ndarray]:
    """The TTA inputs: the cadences alone (``none``) or their 4 flip combinations (``flips``)."""
    _check_mode(tta)
    if tta == "none":
        return [cadence]
    time_flipped = cadence[:, list(time_flip_panels(model)), ::-1, :]
    return [cadence, time_flipped, cadence[..., ::-1], time_flipped[..., ::-1]]


def predict_batch(models: list[ServingModel], cadence: np.ndarray, tta: str) -> np.ndarray:
    """``(n_models, B)`` probabilities, each the mean over the model's TTA variants, calibrated
    for that TTA mode when the model's run has a calibrator for it (``ServingModel.combine``)."""
    out = []
    for model in models:
        fitted = fit_panels(cadence, model)
        out.append(model.combine([model.raw(np.ascontiguousarray(v))
                                  for v in flip_variants(fitted, model, tta)], tta))
    return np.stack(out)
