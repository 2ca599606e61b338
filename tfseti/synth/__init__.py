"""Breakthrough-Listen-style synthetic cadences made with setigen, in the exact Kaggle layout.

* ``generate_dataset(out, n_train, n_test, ...)`` / ``python -m tfseti.synth``: a whole dataset.
* ``draw_cadence_spec(rng, target, config)`` then ``make_cadence(spec)``: one cadence from explicit
  parameters (``CadenceSpec``, ``NeedleSpec``, ``RFISpec``); ``needle_track(spec)`` and
  ``rfi_track(spec, rfi)`` say where a signal is, row by row.
* ``shared``: several cadences cut from one wider observation (``--shared-background K``).
* ``parameters.Ranges``: every random range, documented in one place (no setigen: configs load it).
* ``observation``: whole BL observation cadences (six ``.h5`` / ``.fil`` files, ``cadence.lst``,
  ``truth.json``): ``write_observation_cadence`` (setigen), ``write_large_cadence`` (streamed, GBs);
  ``python -m tfseti.synth.observation``.

Names are loaded on first use: importing setigen takes ~2 s.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "generate_dataset": "tfseti.synth.writer",
    "SynthSummary": "tfseti.synth.writer",
    "TRUTH_FILE": "tfseti.synth.writer",
    "make_cadence": "tfseti.synth.cadence",
    "draw_cadence_spec": "tfseti.synth.cadence",
    "build_background": "tfseti.synth.cadence",
    "inject_needle": "tfseti.synth.cadence",
    "normalise": "tfseti.synth.cadence",
    "needle_track": "tfseti.synth.cadence",
    "rfi_track": "tfseti.synth.cadence",
    "CadenceSpec": "tfseti.synth.cadence",
    "CadenceConfig": "tfseti.synth.cadence",
    "NeedleSpec": "tfseti.synth.cadence",
    "RFISpec": "tfseti.synth.cadence",
    "FrameParams": "tfseti.synth.cadence",
    "FRAME": "tfseti.synth.cadence",
    "SharedCadenceSpec": "tfseti.synth.shared",
    "make_snippets": "tfseti.synth.shared",
    "make_shared_cadence": "tfseti.synth.shared",
    "draw_observation_spec": "tfseti.synth.shared",
    "draw_snippet_spec": "tfseti.synth.shared",
    "NeedleShape": "tfseti.synth.families",
    "Ranges": "tfseti.synth.parameters",
    "write_observation_cadence": "tfseti.synth.observation",
    "write_large_cadence": "tfseti.synth.observation",
    "ObservationNeedle": "tfseti.synth.observation",
    "ObservationRFI": "tfseti.synth.observation",
    "FAMILY_NAMES": "tfseti.synth.parameters",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tfseti.synth' has no attribute {name!r}")
