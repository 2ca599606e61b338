"""Where the plantings of a cadence go, and what each one is: the units and slots of the band
(``tfseti.sensitivity.plant``'s notes), the chunks (one unit of one pass, the unit of work and of
resuming) and the seeded draw of each chunk's signals.

A *pass* lays one signal, or nothing, into every slot of every unit; when ``n`` signals need more
slots than the band has, further passes reuse the band with new draws. Chunk ``k`` is unit
``k % units`` of pass ``k // units``; its roles (``on`` signal, ON+OFF ``control``, ``empty``:
untouched, for the false-alarm rate) are a seeded permutation of fixed counts, and every random
number of the chunk comes from ``SeedSequence(seed, spawn_key=(k,))``: a chunk is the same
whichever chunks ran before it, so a resumed run rebuilds the same table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from tfseti.sensitivity.plant import PROFILE_CHANNELS, PROFILE_FWHM, Clock, Signal, offsets_hz

def _sine_amplitude_hz() -> float:
    """The sine family's largest wobble either side of its line (tfseti.synth.parameters.Ranges)."""
    from tfseti.synth.parameters import DEFAULT_RANGES

    return float(DEFAULT_RANGES.sine_amplitude_hz[1])


@dataclass(frozen=True)
class Draws:
    """The ranges signals are drawn from: SNR and width log-uniform (more draws where
    completeness changes, at low SNR; widths over decades), drift rate uniform, family uniform."""

    snr: tuple[float, float] = (5.0, 50.0)
    drift: tuple[float, float] = (-0.52, 0.52)
    width: tuple[float, float] = (1.0, 50.0)
    families: tuple[str, ...] = ("linear",)

    def __post_init__(self):
        from tfseti.synth.parameters import check_families

        for name, low in (("snr", 0.0), ("width", 0.0)):
            lo, hi = getattr(self, name)
            if not (math.isfinite(lo) and math.isfinite(hi) and low < lo <= hi):
                raise ValueError(f"--{name}: expected LO:HI with {low:g} < LO <= HI, got {lo:g}:{hi:g}")
        lo, hi = self.drift
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise ValueError(f"--drift: expected LO:HI (Hz/s) with LO <= HI, got {lo:g}:{hi:g}")
        object.__setattr__(self, "families", check_families(self.families))

    @property
    def max_drift(self) -> float:
        return max(abs(self.drift[0]), abs(self.drift[1]))


@dataclass(frozen=True)
class Layout:
    """Units ``[(lo, hi), ...]`` of the band, the slot and guard widths (channels), and the
    roles per chunk."""

    units: tuple[tuple[int, int], ...]
    slot: int
    guard: int
    controls: int          # control slots per chunk
    empty: int             # empty slots per chunk

    @property
    def slots_per_unit(self) -> int:
        return (self.units[0][1] - self.units[0][0]) // self.slot

    @property
    def on_per_chunk(self) -> int:
        return self.slots_per_unit - self.controls - self.empty

    def chunks_for(self, n: int) -> int:
        return -(-n // self.on_per_chunk)

    def unit_of(self, chunk: int) -> tuple[int, int]:
        return self.units[chunk % len(self.units)]

    def slots(self, chunk: int) -> list[tuple[int, int]]:
        lo, _ = self.unit_of(chunk)
        return [(lo + i * self.slot, lo + (i + 1) * self.slot) for i in range(self.slots_per_unit)]


def make_layout(cadence, settings, width: int, draws: Draws, clock: Clock,
                control_fraction: float, empty_fraction: float) -> Layout:
    """The layout of a cadence for windows of ``width`` channels and the scan's ``settings``
    (the module notes; ``ValueError`` when a slot does not fit in a unit)."""
    from tfseti.dedoppler.band_search import halo
    from tfseti.dedoppler.hitsearch import window_margin
    from tfseti.scan.scoring import classical_config
    from tfseti.scan.windows import fine_per_coarse_for

    fpc = fine_per_coarse_for(cadence.nchans, settings.fine_per_coarse)
    if fpc:
        units = tuple((c * fpc, (c + 1) * fpc) for c in range(cadence.nchans // fpc))
    else:
        units = ((0, cadence.nchans),)
    stride = width - settings.overlap
    cfg = classical_config(cadence, settings)
    df = abs(cadence.foff) * 1e6
    guard = max(width, halo(cfg, cadence.rows),
                window_margin(cadence.rows, settings.max_drift_hz, cadence.foff, cadence.tsamp))
    wobble = 2 * _sine_amplitude_hz() if "sine" in draws.families else 0.0
    pad = PROFILE_FWHM * draws.width[1] / df + PROFILE_CHANNELS
    extent = (draws.max_drift * clock.span + wobble) / df + 2 * pad + 2
    slot = int(math.ceil((extent + guard) / stride)) * stride
    size = units[0][1] - units[0][0]
    per_unit = size // slot
    controls = int(round(per_unit * control_fraction))
    empty = max(1, int(round(per_unit * empty_fraction)))
    if per_unit - controls - empty < 1:
        raise ValueError(
            f"a drift range of {draws.max_drift:g} Hz/s over the cadence's {clock.span:.0f} s and "
            f"widths up to {draws.width[1]:g} Hz need slots of {slot} channels (guard {guard}); "
            f"{'a coarse channel' if fpc else 'the band'} of {size} channels holds {per_unit}, too "
            f"few for a signal besides {controls} control(s) and {empty} empty slot(s): narrow "
            f"--drift / --width or use a wider cadence")
    return Layout(units, slot, guard, controls, empty)


def _draw_log(rng, bounds) -> float:
    lo, hi = bounds
    return float(lo if lo == hi else math.exp(rng.uniform(math.log(lo), math.log(hi))))


def draw_chunk(chunk: int, layout: Layout, clock: Clock, foff_hz: float, draws: Draws, seed: int,
               n_on: int) -> tuple[list[Signal], list[tuple[int, int]]]:
    """The signals of chunk ``chunk`` (``n_on`` of kind ``on``: fewer than the layout's in the
    last chunk, whose other ON slots stay empty) and its empty slots (module notes). Noise and
    intensity are filled in later, from the data (:func:`with_levels`)."""
    from tfseti.synth.families import get_family
    from tfseti.synth.parameters import DEFAULT_RANGES

    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(chunk,)))
    slots = layout.slots(chunk)
    roles = (["on"] * layout.on_per_chunk + ["control"] * layout.controls
             + ["empty"] * layout.empty)
    roles = [roles[i] for i in rng.permutation(len(roles))]
    ons = 0
    signals, empty = [], []
    df = abs(foff_hz)
    for i, ((lo, hi), role) in enumerate(zip(slots, roles)):
        if role == "on":
            ons += 1
            if ons > n_on:
                role = "empty"
        # every slot draws, whatever its role, so that one chunk's draws do not depend on n
        family = str(rng.choice(draws.families))
        snr = _draw_log(rng, draws.snr)
        drift = float(rng.uniform(*draws.drift))
        width = _draw_log(rng, draws.width)
        shape = get_family(family).draw(rng, DEFAULT_RANGES)
        pulse_seed = int(rng.integers(2 ** 31))
        where = float(rng.uniform())
        if role == "empty":
            empty.append((lo, hi))
            continue
        # squared: setigen's rate is the acceleration; the drawn drift is its mean over the cadence
        rate = 2.0 * drift / clock.span if family == "squared" else drift
        signal = Signal(index=chunk * len(slots) + i, kind=role, family=family, snr=snr,
                        drift_hz_s=drift, width_hz=width, channel=0.0, slot=(lo, hi), rate=rate,
                        f_profile=shape.f_profile, period=shape.period, amplitude=shape.amplitude,
                        pulse_width=shape.pulse_width, pulse_seed=pulse_seed)
        times = np.concatenate([np.append(clock.row_times(p), clock.row_times(p)[-1] + clock.tsamp)
                                for p in range(6)])
        off = offsets_hz(signal, times) / foff_hz                       # channels from the start
        pad = PROFILE_FWHM * width / df + PROFILE_CHANNELS
        first = lo + layout.guard / 2 + pad - off.min()
        last = hi - layout.guard / 2 - pad - off.max()
        if first > last:
            raise RuntimeError(f"chunk {chunk}: signal {signal.index} ({family}, {drift:g} Hz/s, "
                               f"{width:g} Hz) does not fit its slot of {layout.slot} channels")
        signals.append(replace(signal, channel=first + where * (last - first)))
    return signals, empty


def with_levels(signals: list[Signal], noise: dict, rows: int) -> list[Signal]:
    """The signals with the slot's noise (``noise[slot]``) and setigen's intensity
    ``snr * noise / sqrt(rows)``; a slot without a finite, positive noise level is an error."""
    out = []
    for s in signals:
        sigma = noise[s.slot]
        if not (math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"channels [{s.slot[0]}, {s.slot[1]}): the ON files' noise level there "
                             f"is {sigma} (blank or constant data?); cannot plant an SNR")
        out.append(replace(s, noise_std=sigma, intensity=float(s.snr * sigma / math.sqrt(rows))))
    return out
