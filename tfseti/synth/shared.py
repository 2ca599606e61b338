"""Several cadences cut from one wider observation, as the Kaggle snippets were.

The competition's cadences are 256-channel snippets of longer Breakthrough Listen observations;
snippets of one observation overlap in frequency, so they share the background (noise, bandpass
and RFI) over their common channels. That is what the 1st place's "magic 2" exploited, and what
``tfseti snippet-matching`` matches. This module makes such data:

1. an *observation*: a ``CadenceSpec`` whose frame is ``width_factor`` times wider (``256 m``
   channels), built with ``build_background`` (noise, one bandpass across the whole width, RFI
   drawn over the whole width with the per-256-channel densities of ``Ranges``);
2. *snippets*: ``SharedCadenceSpec`` = the observation, a channel ``offset`` (random, so snippets
   overlap by a random amount) and the snippet's own needle (or none), in snippet channels;
3. ``make_snippets``: inject each snippet's needle into the wide ON frames (``inject_needle``,
   at ``offset + f_start``), cut the 256 channels ``[offset, offset + 256)`` and normalise them
   per panel (``normalise``), then restore the wide frames for the next snippet. Before
   injection and normalisation, two snippets' common channels are therefore the same values.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

import numpy as np

from tfseti.synth.cadence import (CadenceConfig, CadenceSpec, NeedleSpec, build_background,
                                  draw_cadence_spec, draw_needle, inject_needle, normalise)
from tfseti.synth.families import NeedleShape


@dataclass(frozen=True)
class SharedCadenceSpec:
    """One snippet: the observation it is cut from, its first channel there, and its needle.

    ``needle.f_start`` is in snippet channels (0 = the observation's channel ``offset``);
    ``fchans`` is the snippet width.
    """

    observation: CadenceSpec
    offset: int
    needle: NeedleSpec | None = None
    fchans: int = 256

    def __post_init__(self):
        if self.observation.needle is not None:
            raise ValueError("SharedCadenceSpec.observation must hold no needle (needles belong to snippets)")
        width = self.observation.frame.fchans
        if not 0 <= self.offset <= width - self.fchans:
            raise ValueError(f"SharedCadenceSpec.offset must be in [0, {width - self.fchans}] for a "
                             f"{width}-channel observation and {self.fchans}-channel snippets, "
                             f"got {self.offset}")

    @property
    def target(self) -> int:
        return int(self.needle is not None)

    @property
    def channels(self) -> slice:
        return slice(self.offset, self.offset + self.fchans)

    def to_json(self) -> str:
        return json.dumps({"observation": asdict(self.observation), "offset": self.offset,
                           "needle": None if self.needle is None else asdict(self.needle),
                           "fchans": self.fchans}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "SharedCadenceSpec":
        raw = json.loads(text)
        needle = raw["needle"]
        if needle is not None:
            needle = NeedleSpec(**{**needle, "shape": NeedleShape(**needle["shape"])})
        observation = CadenceSpec.from_json(json.dumps(raw["observation"]))
        return cls(observation=observation, offset=int(raw["offset"]), needle=needle,
                   fchans=int(raw["fchans"]))


def observation_config(config: CadenceConfig, width_factor: int) -> CadenceConfig:
    """``config`` for an observation ``width_factor`` snippets wide: wider frame, and RFI counts
    scaled by the width so that the RFI density per channel stays that of a lone cadence."""
    if isinstance(width_factor, bool) or not isinstance(width_factor, (int, np.integer)) or width_factor < 1:
        raise ValueError(f"width_factor must be an integer >= 1, got {width_factor!r}")
    r = config.ranges
    ranges = replace(r, max_zero_drift_rfi=r.max_zero_drift_rfi * width_factor,
                     max_drifting_rfi=r.max_drifting_rfi * width_factor,
                     max_bursts=r.max_bursts * width_factor)
    frame = replace(config.frame, fchans=config.frame.fchans * int(width_factor))
    return replace(config, frame=frame, ranges=ranges)


def draw_observation_spec(rng: np.random.Generator, config: CadenceConfig, width_factor: int) -> CadenceSpec:
    """The wide background observation (no needle)."""
    return draw_cadence_spec(rng, 0, observation_config(config, width_factor))


def draw_snippet_spec(rng: np.random.Generator, observation: CadenceSpec, target: int,
                      config: CadenceConfig) -> SharedCadenceSpec:
    """A snippet at a uniformly random offset, with a needle (drawn as for a lone cadence of
    ``config.frame``, on the observation's clock) if ``target`` is 1."""
    fchans = config.frame.fchans
    offset = int(rng.integers(0, observation.frame.fchans - fchans + 1))
    needle = draw_needle(rng, observation.panel_times(), config) if target else None
    return SharedCadenceSpec(observation=observation, offset=offset, needle=needle, fchans=fchans)


def make_snippets(observation: CadenceSpec, snippets) -> list[np.ndarray]:
    """The Kaggle arrays ``float16 (6, 273, fchans)`` of snippets of one observation.

    The background is built once; each snippet's result equals ``make_shared_cadence`` of it
    alone (the wide frames are restored after each needle).
    """
    cadence = build_background(observation)
    clean = [frame.data.copy() for frame in cadence]
    arrays = []
    for snippet in snippets:
        if snippet.observation != observation:
            raise ValueError("make_snippets: every snippet must be cut from the given observation")
        if snippet.needle is not None:
            inject_needle(cadence, observation,
                          replace(snippet.needle, f_start=snippet.needle.f_start + snippet.offset))
        arrays.append(normalise(cadence, snippet.channels))
        if snippet.needle is not None:
            for frame, data in zip(cadence, clean):
                np.copyto(frame.data, data)
    return arrays


def make_shared_cadence(spec: SharedCadenceSpec) -> np.ndarray:
    """One snippet's Kaggle array, a pure function of ``spec``."""
    return make_snippets(spec.observation, [spec])[0]
