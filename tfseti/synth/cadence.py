"""One Breakthrough-Listen-style ABACAD cadence, built with setigen from explicit parameters.

``draw_cadence_spec`` draws every random choice of one cadence into a ``CadenceSpec`` (plain
numbers and seeds, JSON-serialisable); ``make_cadence`` turns a spec into the Kaggle array
``float16 (6, 273, 256)``. The same spec always gives the same bytes, which is what makes the
dataset independent of the number of worker processes, and lets tests and later stages (needle
injection fidelity, reports) rebuild any cadence from ``truth.csv``'s ``spec`` column.

Steps (each a function, so that ``tfseti.synth.shared`` can cut several cadences out of one wider shared
background observation: build a wider background, inject each needle into it, cut each window):

1. ``build_background``: six setigen ``Frame``s with chi^2 radiometer noise times one smooth
   bandpass (the same receiver for all six pointings, a slightly different gain per pointing),
   gathered in a setigen ``OrderedCadence("ABACAD")`` whose frames carry absolute start times
   (panel ``i`` starts ``i * (panel length + slew)`` after the cadence start); then background RFI
   added to the whole cadence, so it is in ON and OFF panels alike.
2. ``inject_needle``: the needle is added to the ON frames only (``cadence.by_label("A")``) on
   setigen's cadence clock (``add_signal_on_cadence_clock``: ``Cadence.add_signal``'s time shift,
   with a frequency bound per frame for speed), so its path is one function of time since the
   cadence start and runs on through the OFF gaps. A "missing" ON panel is a window where the t-profile is zero.
3. ``normalise``: each panel to mean 0 / std 1, then float16.
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import setigen as stg

from tfseti.io.kaggle import N_PANELS, ON_PANELS
from tfseti.synth.families import NeedleShape, get_family, signed, uniform
from tfseti.synth.parameters import (DEFAULT_RANGES, DEFAULT_SNR, FAMILY_NAMES, FRAME, FrameParams,
                                     Ranges, check_families)

CADENCE_ORDER = "ABACAD"  # panels 0, 2, 4 ON the target (A); 1, 3, 5 OFF (B, C, D)
RFI_KINDS = ("zero_drift", "drifting", "burst")
SNR_SCALES = ("uniform", "log", "choice")




@dataclass(frozen=True)
class RFISpec:
    """One background interferer, present in all six panels.

    ``zero_drift`` / ``drifting``: a line starting at channel ``f_start`` at the cadence start,
    drifting ``drift_rate`` Hz/s, FWHM ``width`` Hz. ``burst``: broadband and short, centred on
    channel ``f_start`` with FWHM ``width`` Hz, at ``t_center`` s after the cadence start with FWHM
    ``duration`` s (it lands in whichever panel is observing then, or in a slew gap).
    ``snr`` is setigen's SNR (``frame.get_intensity(snr)`` sets the level).
    """

    kind: str
    f_start: float
    snr: float
    width: float
    drift_rate: float = 0.0
    t_center: float = 0.0
    duration: float = 0.0

    def __post_init__(self):
        if self.kind not in RFI_KINDS:
            raise ValueError(f"RFISpec.kind {self.kind!r} is not one of {RFI_KINDS}")


@dataclass(frozen=True)
class NeedleSpec:
    """The needle of a positive cadence: its family shape, start channel at the cadence start
    (``f_start``, channels, fractional), setigen SNR, the ON panel it is missing from (-1: none)
    and the seed of any random t-profile."""

    shape: NeedleShape
    f_start: float
    snr: float
    missing_on_panel: int = -1
    seed: int = 0

    def __post_init__(self):
        get_family(self.shape.family)
        if self.missing_on_panel not in (-1, *ON_PANELS):
            raise ValueError(f"NeedleSpec.missing_on_panel must be -1 or one of {ON_PANELS}, "
                             f"got {self.missing_on_panel}")

    @property
    def present_panels(self) -> tuple[int, ...]:
        return tuple(p for p in ON_PANELS if p != self.missing_on_panel)


@dataclass(frozen=True)
class CadenceSpec:
    """Every parameter of one cadence; ``make_cadence(spec)`` is a pure function of it."""

    noise_seed: int
    slew: float = 20.0
    panel_gain: tuple[float, ...] = (1.0,) * N_PANELS
    bandpass_tilt: float = 0.0
    bandpass_ripple: tuple[float, ...] = ()  # a_1, a_2, ...
    bandpass_phase: tuple[float, ...] = ()  # phi_1, phi_2, ...
    rfi: tuple[RFISpec, ...] = ()
    needle: NeedleSpec | None = None
    frame: FrameParams = field(default_factory=FrameParams)

    def __post_init__(self):
        if len(self.panel_gain) != N_PANELS:
            raise ValueError(f"CadenceSpec.panel_gain needs {N_PANELS} values, got {len(self.panel_gain)}")
        if len(self.bandpass_ripple) != len(self.bandpass_phase):
            raise ValueError("CadenceSpec.bandpass_ripple and bandpass_phase must have the same length")

    @property
    def target(self) -> int:
        return int(self.needle is not None)

    def panel_starts(self) -> np.ndarray:
        """Start time (s since the cadence start) of each of the six panels."""
        return np.arange(N_PANELS) * (self.frame.panel_seconds + self.slew)

    def panel_times(self) -> np.ndarray:
        """``(6, tchans)`` time of each row since the cadence start (setigen: row start times)."""
        rows = np.arange(self.frame.tchans) * self.frame.dt
        return self.panel_starts()[:, None] + rows[None, :]

    def bandpass(self) -> np.ndarray:
        """Multiplicative receiver bandpass over the frame's channels (same for all panels)."""
        x = np.arange(self.frame.fchans) / self.frame.fchans
        profile = 1.0 + self.bandpass_tilt * (x - 0.5)
        for k, (amp, phase) in enumerate(zip(self.bandpass_ripple, self.bandpass_phase), start=1):
            profile = profile + amp * np.cos(2 * np.pi * k * x + phase)
        return profile

    # -- serialisation (truth.csv's ``spec`` column) -----------------------------------------------
    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "CadenceSpec":
        raw = json.loads(text)
        needle = raw.pop("needle")
        if needle is not None:
            needle = NeedleSpec(**{**needle, "shape": NeedleShape(**needle["shape"])})
        return cls(**{**raw,
                      "panel_gain": tuple(raw["panel_gain"]),
                      "bandpass_ripple": tuple(raw["bandpass_ripple"]),
                      "bandpass_phase": tuple(raw["bandpass_phase"]),
                      "rfi": tuple(RFISpec(**item) for item in raw["rfi"]),
                      "frame": FrameParams(**raw["frame"]),
                      "needle": needle})


@dataclass(frozen=True)
class CadenceConfig:
    """What ``draw_cadence_spec`` draws from (validated here, once, for the API and the CLI)."""

    snr: tuple[float, float] = DEFAULT_SNR
    families: tuple[str, ...] = FAMILY_NAMES
    missing_prob: float = 0.2  # probability that a needle is absent from one of its ON panels
    rfi: bool = True
    ranges: Ranges = DEFAULT_RANGES
    frame: FrameParams = FRAME
    # How the needle SNR is drawn: "uniform" over ``snr``, "log" (log-uniform over ``snr``: as many
    # needles between 5 and 10 as between 25 and 50), or "choice" of one of ``snr_values`` (fixed
    # SNR bins, as a detection benchmark's test set wants).
    snr_scale: str = "uniform"
    snr_values: tuple[float, ...] = ()

    def __post_init__(self):
        snr = tuple(float(v) for v in self.snr)
        if len(snr) != 2 or not all(np.isfinite(snr)) or not 0 < snr[0] <= snr[1]:
            raise ValueError(f"snr must be (min, max) with 0 < min <= max, got {self.snr}")
        object.__setattr__(self, "snr", snr)
        if self.snr_scale not in SNR_SCALES:
            raise ValueError(f"snr_scale must be one of {SNR_SCALES}, got {self.snr_scale!r}")
        values = tuple(float(v) for v in self.snr_values)
        if (self.snr_scale == "choice") != bool(values) or not all(np.isfinite(v) and v > 0 for v in values):
            raise ValueError(f"snr_values must be positive SNRs, given exactly when snr_scale is "
                             f"'choice'; got {self.snr_values} with {self.snr_scale!r}")
        object.__setattr__(self, "snr_values", values)
        object.__setattr__(self, "families", check_families(self.families))
        if not 0.0 <= self.missing_prob <= 1.0:
            raise ValueError(f"missing_prob must be in [0, 1], got {self.missing_prob}")


# -- drawing ----------------------------------------------------------------------------------------

def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**63 - 1))


def _fit_start(offsets_hz: np.ndarray, width_hz: float, frame: FrameParams, margin: float,
               rng: np.random.Generator) -> float:
    """A start channel that keeps a path with these offsets inside the band (centred if too wide)."""
    offsets = offsets_hz / frame.df
    half = 0.5 * width_hz / frame.df
    low, high = margin + half, frame.fchans - 1 - margin - half
    start_low, start_high = low - offsets.min(), high - offsets.max()
    if start_low > start_high:  # the path spans more than the band: keep its middle inside
        return float(0.5 * (low + high) - 0.5 * (offsets.min() + offsets.max()))
    return float(rng.uniform(start_low, start_high))


def _draw_rfi(rng: np.random.Generator, kind: str, times: np.ndarray, cfg: CadenceConfig) -> RFISpec:
    r, frame = cfg.ranges, cfg.frame
    if kind == "burst":
        return RFISpec(kind, f_start=uniform(rng, (0, frame.fchans - 1)), snr=uniform(rng, r.burst_snr),
                       width=uniform(rng, r.burst_bandwidth_hz),
                       t_center=float(rng.choice(times.ravel())), duration=uniform(rng, r.burst_duration_s))
    drift = 0.0 if kind == "zero_drift" else signed(rng, r.rfi_drift_hz_s)
    width = uniform(rng, r.rfi_width_hz)
    f_start = _fit_start(drift * times.ravel(), width, frame, 0.0, rng)
    return RFISpec(kind, f_start=f_start, snr=uniform(rng, r.rfi_snr), width=width, drift_rate=drift)


def draw_cadence_spec(rng: np.random.Generator, target: int,
                      config: CadenceConfig = CadenceConfig()) -> CadenceSpec:
    """Draw every random choice of one cadence (a needle only if ``target`` is 1)."""
    r, frame = config.ranges, config.frame
    base = CadenceSpec(noise_seed=_seed(rng), slew=uniform(rng, r.slew_s),
                       panel_gain=tuple(uniform(rng, r.panel_gain) for _ in range(N_PANELS)),
                       bandpass_tilt=float(rng.uniform(*r.bandpass_tilt)) * float(rng.choice((-1, 1))),
                       bandpass_ripple=tuple(uniform(rng, r.bandpass_ripple) for _ in range(2)),
                       bandpass_phase=tuple(uniform(rng, (0, 2 * np.pi)) for _ in range(2)),
                       frame=frame)
    times = base.panel_times()
    rfi = []
    if config.rfi:
        for kind, most in zip(RFI_KINDS, (r.max_zero_drift_rfi, r.max_drifting_rfi, r.max_bursts)):
            rfi += [_draw_rfi(rng, kind, times, config) for _ in range(int(rng.integers(0, most + 1)))]
    needle = draw_needle(rng, times, config) if target else None
    return replace(base, rfi=tuple(rfi), needle=needle)


def draw_needle(rng: np.random.Generator, times: np.ndarray, config: CadenceConfig) -> NeedleSpec:
    """Draw a needle whose path stays inside ``config.frame``'s band over the ON rows of ``times``
    (``(6, tchans)`` s since the cadence start, ``CadenceSpec.panel_times()``)."""
    r, frame = config.ranges, config.frame
    family = get_family(str(rng.choice(config.families)))
    shape = family.draw(rng, r)
    on_times = times[list(ON_PANELS)].ravel()
    f_start = _fit_start(family.offsets_hz(shape, on_times), shape.width, frame,
                         r.edge_margin_channels, rng)
    missing = int(rng.choice(ON_PANELS)) if rng.random() < config.missing_prob else -1
    return NeedleSpec(shape=shape, f_start=f_start, snr=draw_snr(rng, config),
                      missing_on_panel=missing, seed=_seed(rng))


def draw_snr(rng: np.random.Generator, config: CadenceConfig) -> float:
    """One needle SNR as ``config.snr_scale`` says (one draw from ``rng`` in every case)."""
    if config.snr_scale == "choice":
        return float(config.snr_values[int(rng.integers(len(config.snr_values)))])
    if config.snr_scale == "log":
        return float(np.exp(uniform(rng, (np.log(config.snr[0]), np.log(config.snr[1])))))
    return uniform(rng, config.snr)


# -- building ---------------------------------------------------------------------------------------

def _bandpass_fn(spec: CadenceSpec):
    """The bandpass as setigen's ``bp_profile`` (a function of frequency in Hz)."""
    frame, profile = spec.frame, spec.bandpass()
    freqs = frame.channel_to_hz(np.arange(frame.fchans))
    return lambda f: np.interp(f, freqs, profile)


@functools.lru_cache(maxsize=8)
def _blank_frame(frame_params: FrameParams) -> stg.Frame:
    """An empty setigen Frame; copying it skips the sigma-clipped statistics of a fresh Frame."""
    return stg.Frame(fchans=frame_params.fchans, tchans=frame_params.tchans, df=frame_params.df,
                     dt=frame_params.dt, fch1=frame_params.fch1, ascending=False, t_start=0.0, seed=0)


def build_background(spec: CadenceSpec) -> stg.OrderedCadence:
    """Six noise frames sharing one bandpass, in an ABACAD cadence, plus the RFI of ``spec``."""
    frame_params = spec.frame
    bandpass = spec.bandpass()
    seeds = np.random.SeedSequence(spec.noise_seed).spawn(N_PANELS)
    frames = []
    for panel in range(N_PANELS):
        # deepcopy, not Frame.copy(): the latter builds a blimpy Waterfall for synthetic frames.
        frame = copy.deepcopy(_blank_frame(frame_params))
        frame.rng = np.random.default_rng(seeds[panel])  # what Frame(seed=...) sets
        frame.add_noise(x_mean=spec.panel_gain[panel], noise_type="chi2")
        frame.data *= bandpass[None, :]
        frames.append(frame)
    # t_overwrite spaces the frames by their length plus the slew: absolute times for signals.
    cadence = stg.OrderedCadence(frames, order=CADENCE_ORDER, t_slew=spec.slew, t_overwrite=True)
    for rfi in spec.rfi:
        add_rfi(cadence, spec, rfi)
    return cadence


def _level(cadence: stg.Cadence, snr: float) -> float:
    """setigen's intensity for an SNR, from the first panel's radiometer noise."""
    return float(cadence[0].get_intensity(snr=snr))


def add_signal_on_cadence_clock(cadence: stg.Cadence, *, path, t_profile, f_profile, bp_profile,
                                width_hz: float, window: tuple[float, float] | None = None) -> None:
    """``setigen.Cadence.add_signal`` with a frequency bound per frame.

    Same clock as setigen's: each frame's row times are shifted by the frame's start relative to
    the cadence start while its signal is computed, so ``path`` and ``t_profile`` are functions of
    time since the cadence start and a signal runs on through the gaps between frames. setigen
    takes one ``bounding_f_range`` for all frames; a drifting line crosses much of the band over a
    cadence but only a sliver of it per frame, so bounding each frame around its own part of the
    path makes the injection several times cheaper with identical values (the profiles are < 1e-9
    beyond the bound). ``window`` (s since the cadence start) skips frames outside it.
    """
    pad = 4.0 * width_hz + 2.0 * cadence.df
    for frame in cadence:
        shift = frame.t_start - cadence.t_start
        times = frame.ts + shift
        if window is not None and (times[-1] + frame.dt < window[0] or times[0] > window[1]):
            continue
        centre = np.asarray(path(times), dtype=float)
        bounds = (float(centre.min() - pad), float(centre.max() + pad))
        frame.ts += shift
        try:
            frame.add_signal(path=path, t_profile=t_profile, f_profile=f_profile, bp_profile=bp_profile,
                             bounding_f_range=bounds)
        finally:
            frame.ts -= shift


def add_rfi(cadence: stg.Cadence, spec: CadenceSpec, rfi: RFISpec) -> None:
    """Add one interferer to every frame of ``cadence`` (times counted from the cadence start)."""
    level = _level(cadence, rfi.snr)
    f_start_hz = float(spec.frame.channel_to_hz(rfi.f_start))
    window = None
    if rfi.kind == "burst":
        sigma = rfi.duration / (2 * np.sqrt(2 * np.log(2)))

        def t_profile(t):
            return level * np.exp(-0.5 * ((np.asarray(t) - rfi.t_center) / sigma) ** 2)

        window = (rfi.t_center - 6 * sigma, rfi.t_center + 6 * sigma)  # ~0 elsewhere
    else:
        t_profile = stg.constant_t_profile(level=level)
    add_signal_on_cadence_clock(cadence, path=stg.constant_path(f_start=f_start_hz, drift_rate=rfi.drift_rate),
                                t_profile=t_profile, f_profile=stg.gaussian_f_profile(width=rfi.width),
                                bp_profile=_bandpass_fn(spec), width_hz=rfi.width, window=window)


def inject_needle(cadence: stg.OrderedCadence, spec: CadenceSpec, needle: NeedleSpec) -> None:
    """Add the needle to the ON frames of ``cadence``, continuous in time across the OFF gaps."""
    family = get_family(needle.shape.family)
    level = _level(cadence, needle.snr)
    f_start_hz = float(spec.frame.channel_to_hz(needle.f_start))
    t_profile = family.t_profile(needle.shape, level, needle.seed)
    if needle.missing_on_panel >= 0:
        start = spec.panel_starts()[needle.missing_on_panel]
        stop = start + spec.frame.panel_seconds
        inner = t_profile

        def t_profile(t):  # the transmitter is silent during the missing pointing
            t = np.asarray(t, dtype=float)
            return np.where((t >= start) & (t < stop), 0.0, inner(t))

    # by_label keeps the frames (and their absolute start times) of panels 0, 2, 4; the clock
    # still starts at panel 0, the cadence start.
    on_frames = cadence.by_label("A")
    add_signal_on_cadence_clock(on_frames, path=family.path(needle.shape, f_start_hz), t_profile=t_profile,
                                f_profile=family.f_profile(needle.shape), bp_profile=_bandpass_fn(spec),
                                width_hz=needle.shape.width)


def normalise(cadence: stg.Cadence, channels: slice | None = None) -> np.ndarray:
    """Each panel to mean 0 / std 1 (as the Kaggle data were), as float16 ``(6, tchans, fchans)``.

    ``channels`` cuts a window of the frames' channels first (``tfseti.synth.shared``: snippets of
    one wider observation), so that the statistics are the window's own, as a snippet's were.
    """
    data = np.stack([frame.data if channels is None else frame.data[:, channels] for frame in cadence],
                    dtype=np.float32)
    mean = data.mean(axis=(1, 2), keepdims=True, dtype=np.float64)
    std = data.std(axis=(1, 2), keepdims=True, dtype=np.float64)
    data -= mean.astype(np.float32)
    data /= std.astype(np.float32)
    return data.astype(np.float16)


def make_cadence(spec: CadenceSpec) -> np.ndarray:
    """The Kaggle array ``float16 (6, 273, 256)`` of one cadence, a pure function of ``spec``."""
    cadence = build_background(spec)
    if spec.needle is not None:
        inject_needle(cadence, spec, spec.needle)
    return normalise(cadence)


# -- where things are (for tests, truth and later fidelity checks) ----------------------------------

def needle_track(spec: CadenceSpec) -> np.ndarray:
    """``(6, tchans)`` channel of the needle centre in each row; NaN where there is no needle
    (OFF panels, the missing ON panel, negatives)."""
    track = np.full((N_PANELS, spec.frame.tchans), np.nan)
    needle = spec.needle
    if needle is None:
        return track
    times = spec.panel_times()
    offsets = get_family(needle.shape.family).offsets_hz(needle.shape, times[list(needle.present_panels)])
    track[list(needle.present_panels)] = needle.f_start + offsets / spec.frame.df
    return track


def rfi_track(spec: CadenceSpec, rfi: RFISpec) -> np.ndarray:
    """``(6, tchans)`` channel of a line interferer's centre in each row (all six panels)."""
    if rfi.kind == "burst":
        raise ValueError("a burst has no track: it is broadband and short")
    return rfi.f_start + rfi.drift_rate * spec.panel_times() / spec.frame.df


def describe_rfi(rfi: RFISpec) -> str:
    """Short human-readable description for truth.csv."""
    if rfi.kind == "burst":
        return f"burst@{rfi.f_start:.1f}ch,t={rfi.t_center:.0f}s,bw={rfi.width:.0f}Hz,snr={rfi.snr:.0f}"
    return f"{rfi.kind}@{rfi.f_start:.1f}ch,{rfi.drift_rate:+.3f}Hz/s,snr={rfi.snr:.0f}"
