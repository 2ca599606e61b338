"""Where the ``cpu`` recipe's de-Doppler view loses a needle's power, family by family (no training).

    python -m benchmarks.family_loss --out DIR [--n 200] [--n-neg 400] [--seed 0]

The ``cpu`` recipe's network sees only the drift-rate x channel maps of its ``dedoppler`` view
(``[view.dedoppler]`` of ``tfseti/recipes/cpu.toml``), so whatever a needle does not put into those
maps is lost before any training. This measures how much each needle family puts in, why the rest
is lost, and which change to the maps would bring it back, on cadences made by the project's own
generator like the detection benchmark's test set (``benchmarks/detection.py``: every family, SNR
5/10/20/40, RFI-heavier backgrounds), ``--n`` positives per family (SNR bins in turn) and
``--n-neg`` negatives, all seeded.

**How.** Each positive is built twice from one spec, with and without its needle (same noise, same
RFI; the "with" array is exactly ``tfseti.synth.make_cadence``'s). Both are cleaned as the view does
(``tfseti.dedoppler.window_scores.clean``: the numpy twin of ``tfseti.data.drift_sums``, tested
equal), and the difference of the cleaned block sums is the needle's own contribution after the
view's background removal, noise scaling and 5-sigma clipping. The maps are linear in the cleaned
blocks, so the needle's own maps are the drift sums of that difference: a noise-free measurement of
what the needle adds to every map cell. Values are divided by the panel's *measured* noise (the
robust std of its needle-free cleaned blocks, per row): bright RFI inflates the view's own noise
estimate, which shrinks needle and noise alike (no loss of contrast) and must not read as a loss.

**Groups.** The five families of ``tfseti.synth.families``. The generator has no "steep sine"
family, so the sine needles are split by their steepest instantaneous slope over their ON rows:
``sine`` up to the view's ``max_drift``, ``steep sine`` above it (``max_drift`` = 0.2 channels per
row = 0.52 Hz/s in the ``cpu`` recipe).

**Columns** (per ON panel that holds the needle, pooled over the group; median, and
``[25 %, 75 %]`` where shown):

* ``snr``: the needle's setigen SNR = the map value, in noise stds, of an ideal needle (constant,
  on a channel centre, followed exactly for the whole panel): every ratio below is over it.
* ``noise``: the panel's measured noise in the view's units (1 = the view's scale is right).
* ``track/snr``: the needle's cleaned power along its *true* track at block resolution (in each
  7-row block the largest value within a channel of where the track passes), over ``snr``: what
  a search that followed the curve exactly would get. Below 1 by the time profile (pulses), the
  5-sigma clipping of bright blocks, the needle's centre falling between channels, and its
  smearing within a block (steep tracks).
* ``peak/snr``: the needle's best map cell in that panel (any drift, any channel) of the
  candidate's maps (``current``: the recipe's view), over ``snr``. This is what the needle adds to
  the pixel the network sees brightest.
* ``peak/track``: the part of the track's power that one straight path on the drift grid
  collects: the geometric loss (curvature, drift range, drift grid).
* ``aligned/snr``: the best cell of the median over the three ON panels of the needle's maps (a
  missing panel counts as zero): the needle's part of the classical ``two_of_three`` score, which
  needs the needle in the *same* cell of at least two ON panels (the maps are aligned on the
  cadence clock with the recipe's ``panel_gap``).
* ``exact/snr`` (constant-drift families): the needle's best channel at its *true* drift rate,
  off the grid. Drift table: ``grid/exact`` (``current``, ``fine x2``): the best cell of that grid
  over it, per panel (the drift-resolution loss); ``aligned grid/exact``, ``aligned fine/exact``:
  the same for ``aligned``; ``aligned true gap/exact``: ``aligned`` at the true rate with the panels
  laid out by the cadence's true slew instead of the fixed ``panel_gap``, over ``aligned`` at the
  true rate with ``panel_gap`` (the loss from the fixed gap).
* Under the SNR table: how high pure noise reaches somewhere in an ON panel's map (the largest
  cell, RFI-free negatives), to set a needle's best cell (SNR x ``peak/snr``) against.
* Steep sine: ``max slope`` (channels per row, the largest ``|d track / d row|`` over the ON rows)
  against ``max_drift``, and ``out of range``: the fraction of the needle's ON rows whose slope is
  beyond ``max_drift`` (a straight path of the grid cannot follow those).
* Pulsed: ``on-fraction``: the mean of the time profile over the panel's rows over its peak (the
  needle's power in that panel relative to a constant needle of the same SNR); ``pulses``: panel
  length over pulse period; ``halves`` / ``quarters``: the needle's best cell when each panel is
  searched in 2 or 4 time parts separately (each part's map in its own SNR units: drift sums over
  its blocks over the square root of its rows) and the best part is kept.

**Candidates** (the AUC table; ``two_of_three`` of ``tfseti.dedoppler`` computed on each kind of
map: each family's positives against all negatives, all SNR bins, then each SNR bin over all
families): ``current`` (the recipe's view); ``wide x2`` / ``wide x4`` (``max_drift`` 2x / 4x at the
same drift step); ``fine x2`` (twice as many drift rates over the same range); ``halves max`` /
``quarters max`` (each panel searched in 2 / 4 time parts, the larger map value per cell kept, ON
and OFF alike). With a different drift step the OFF neighbourhood of ``two_of_three`` keeps its
width in Hz/s (its drift half-width in rows scales with the step). The score is a cheap proxy
of what each map would give a network; it is not a trained model's AUC.

Outputs in ``--out``: ``tables.txt`` (what is printed) and ``results.json`` (the tables' numbers,
the settings and one record per cadence). The defaults take about 4 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from benchmarks.detection import TEST_FAMILIES, TEST_SNRS, Settings as DetectionSettings
from tfseti.config import from_dict, read_toml, resolve_config_path
from tfseti.data.config import DedopplerConfig, ViewConfig
from tfseti.dedoppler import window_scores as ws
from tfseti.dedoppler.scores import OFF_WINDOW
from tfseti.io.kaggle import OFF_PANELS, ON_PANELS
from tfseti.metrics import is_defined, rank_auc

ON = list(ON_PANELS)
OFF = list(OFF_PANELS)
CONSTANT_DRIFT = ("linear", "pulsed", "broad")     # families on a straight path: a true rate exists
GROUPS = ("linear", "squared", "sine", "steep sine", "pulsed", "broad")
RFI_SCALE = DetectionSettings(out="").rfi_scale    # the detection benchmark's test-set backgrounds
CHUNK = 25                                         # cadences per batch (bounds the memory of the maps)
FLOOR_CADENCES = 50                                # RFI-free noise cadences for the noise floor


@dataclass(frozen=True)
class Candidate:
    """One kind of map: the drift search ``cfg`` over ``parts`` time parts of each panel."""

    name: str
    cfg: DedopplerConfig
    parts: int = 1


def recipe_dedoppler(recipe: str = "cpu") -> DedopplerConfig:
    """The ``[view.dedoppler]`` settings of a shipped recipe (read without TensorFlow)."""
    view = from_dict(ViewConfig, read_toml(resolve_config_path(recipe)).get("view", {}))
    if view.name != "dedoppler":
        raise SystemExit(f"recipe {recipe!r} has view {view.name!r}, not 'dedoppler'")
    return view.dedoppler


def candidates(cfg: DedopplerConfig) -> list[Candidate]:
    steps = cfg.drifts - 1
    return [Candidate("current", cfg),
            Candidate("wide x2", replace(cfg, max_drift=2 * cfg.max_drift, drifts=2 * steps + 1)),
            Candidate("wide x4", replace(cfg, max_drift=4 * cfg.max_drift, drifts=4 * steps + 1)),
            Candidate("fine x2", replace(cfg, drifts=2 * steps + 1)),
            Candidate("halves max", cfg, 2),
            Candidate("quarters max", cfg, 4)]


def drift_step(cfg: DedopplerConfig) -> float:
    return 2 * cfg.max_drift / max(cfg.drifts - 1, 1)


# ----------------------------------------------------------------------------- data


def draw_specs(family: str | None, n: int, seed: int) -> list:
    """``n`` specs as the detection benchmark's test set draws them (``family`` None: negatives),
    the needle SNR cycling through its bins so that every bin holds the same number."""
    from tfseti.synth.cadence import CadenceConfig, draw_cadence_spec
    from tfseti.synth.parameters import DEFAULT_RANGES, FAMILY_NAMES, scaled_rfi

    stream = 0 if family is None else 1 + FAMILY_NAMES.index(family)
    rng = np.random.default_rng(np.random.SeedSequence([seed, stream]))
    config = CadenceConfig(families=(family,) if family else FAMILY_NAMES,
                           ranges=scaled_rfi(DEFAULT_RANGES, RFI_SCALE))
    specs = []
    for i in range(n):
        spec = draw_cadence_spec(rng, int(family is not None), config)
        if spec.needle is not None:
            spec = replace(spec, needle=replace(spec.needle, snr=float(TEST_SNRS[i % len(TEST_SNRS)])))
        specs.append(spec)
    return specs


def synthesise(spec) -> tuple[np.ndarray, np.ndarray]:
    """The cadence of ``spec`` with its needle (equal to ``make_cadence(spec)``) and without it."""
    from tfseti.synth.cadence import build_background, inject_needle, normalise

    cadence = build_background(spec)
    without = normalise(cadence)
    if spec.needle is None:
        return without, without
    inject_needle(cadence, spec, spec.needle)
    return normalise(cadence), without


# ----------------------------------------------------------------------------- maps


def rows_per_block(cfg: DedopplerConfig, time: int) -> np.ndarray:
    blocks = -(-time // cfg.block)
    return np.minimum(cfg.block, time - cfg.block * np.arange(blocks)).astype(np.float64)


def part_maps(cleaned: np.ndarray, cand: Candidate, time: int) -> np.ndarray:
    """Maps ``(N, 6, D, F)`` float32 in SNR units: each panel searched in ``cand.parts`` time
    parts, the largest part value kept per cell.

    A part's map is the drift sum over its blocks (the view's own shifts, aligned on the cadence
    clock) over the square root of its rows; one part is exactly the view's map."""
    shifts = ws.block_shifts(cand.cfg, cand.cfg.reference, cleaned.shape[1], time)
    rows = rows_per_block(cand.cfg, time)
    best = None
    for index in np.array_split(np.arange(cleaned.shape[2]), cand.parts):
        scale = np.float32(1.0 / np.sqrt(rows[index].sum()))
        maps = ws._shift_sum(np.ascontiguousarray(cleaned[:, :, index]),
                             np.ascontiguousarray(shifts[:, :, index]), scale)
        best = maps if best is None else np.maximum(best, maps, out=best)
    return best


def two_of_three(maps: np.ndarray, drift_half: int) -> np.ndarray:
    """``tfseti.dedoppler`` ``two_of_three`` of aligned maps ``(N, 6, D, F)``: the best cell of
    (the middle ON value - the largest OFF value within ``drift_half`` rates and
    ``OFF_WINDOW[1]`` channels)."""
    on, off = maps[:, ON], maps[:, OFF]
    second = on.sum(axis=1) - on.max(axis=1) - on.min(axis=1)
    near = ws._max_filter(np.ascontiguousarray(off.max(axis=1)), drift_half, OFF_WINDOW[1])
    return (second - near).reshape(len(maps), -1).max(axis=1)


def off_half_width(cand: Candidate, base: DedopplerConfig) -> int:
    """``OFF_WINDOW``'s drift half-width in rows of ``cand``'s grid, kept at the same Hz/s."""
    return max(1, int(round(OFF_WINDOW[0] * drift_step(base) / drift_step(cand.cfg))))


def candidate_scores(cleaned: np.ndarray, cands: list[Candidate], base: DedopplerConfig,
                     time: int) -> dict[str, np.ndarray]:
    """``two_of_three`` of every candidate's maps (parts: the larger value per cell kept)."""
    return {c.name: two_of_three(part_maps(cleaned, c, time), off_half_width(c, base)) for c in cands}


def shifts_at(rate: float, cfg: DedopplerConfig, time: int, gap_rows: float) -> np.ndarray:
    """Whole-channel shifts ``(6, 1, blocks)`` of one drift ``rate`` (channels per row), the panels
    laid out ``gap_rows`` apart (the view's ``block_shifts`` with any rate and any gap)."""
    blocks = -(-time // cfg.block)
    index = np.arange(blocks * cfg.block, dtype=np.float64)
    start = np.arange(6)[:, None] * (time + gap_rows)
    ref = ws.REFERENCE_PANEL * (time + gap_rows) + (time - 1) / 2
    offsets = start + index[None, :] - ref
    block_time = offsets.reshape(6, blocks, cfg.block).mean(axis=-1)
    return np.rint(rate * block_time)[:, None, :].astype(np.int64)


# ----------------------------------------------------------------------------- per-cadence measures


def track_power(diff: np.ndarray, track: np.ndarray, cfg: DedopplerConfig, time: int) -> np.ndarray:
    """``(6,)``: the needle's cleaned power along its true track at block resolution (each block:
    the largest value within one channel of the channels the track crosses there), in map SNR
    units; NaN where there is no needle."""
    panels, blocks, freq = diff.shape
    padded = np.full((panels, blocks * cfg.block), np.nan)
    padded[:, :time] = track
    per_block = padded.reshape(panels, blocks, cfg.block)
    out = np.full(panels, np.nan)
    for p in range(panels):
        if np.isnan(track[p]).all():
            continue
        total = 0.0
        for b in range(blocks):
            rows = per_block[p, b][~np.isnan(per_block[p, b])]
            lo = max(0, int(np.floor(rows.min())) - 1)
            hi = min(freq, int(np.ceil(rows.max())) + 2)
            if hi > lo:
                total += float(diff[p, b, lo:hi].max())
        out[p] = total / np.sqrt(time)
    return out


def on_fraction(spec) -> np.ndarray:
    """``(6,)``: mean of the needle's time profile over each panel's rows over its peak level
    (NaN where there is no needle)."""
    from tfseti.synth.families import get_family

    needle = spec.needle
    times = spec.panel_times()
    profile = get_family(needle.shape.family).t_profile(needle.shape, 1.0, needle.seed)
    out = np.full(6, np.nan)
    for p in needle.present_panels:
        out[p] = float(np.mean(np.asarray(profile(times[p]), dtype=float)))
    return out


def slope_stats(spec, max_drift: float) -> tuple[float, float]:
    """Largest ``|slope|`` (channels per row) of the needle over its ON rows, and the fraction of
    those rows steeper than ``max_drift``."""
    from tfseti.synth.cadence import needle_track

    track = needle_track(spec)
    slopes = np.concatenate([np.abs(np.diff(track[p])) for p in spec.needle.present_panels])
    return float(slopes.max()), float((slopes > max_drift).mean())


def rate_channels_per_row(spec) -> float:
    return spec.needle.shape.drift_rate * spec.frame.dt / spec.frame.df


def _floats(values) -> list[float]:
    return [float(v) for v in values]


def block_noise(cleaned: np.ndarray, cfg: DedopplerConfig, time: int) -> np.ndarray:
    """``(N, 6)``: the robust noise std (1.4826 MAD) of needle-free cleaned blocks per row, in the
    view's units (1 if the view's own noise scale is right; bright RFI inflates that scale, so the
    view's unit is then larger than the noise and every value in it smaller, needle and noise alike)."""
    per_row = cleaned / np.sqrt(rows_per_block(cfg, time))[:, None].astype(np.float32)
    flat = per_row.reshape(*per_row.shape[:2], -1)
    centre = np.median(flat, axis=-1, keepdims=True)
    return 1.4826 * np.median(np.abs(flat - centre), axis=-1)


def measure_positives(specs: list, cands: list[Candidate], base: DedopplerConfig,
                      pairs: list | None = None) -> list[dict]:
    """One record per positive cadence: its needle, the per-panel ratios of the module notes for
    every candidate, and every candidate's ``two_of_three``. ``pairs``: ``synthesise`` of each
    spec, if already made.

    Needle values are in units of ``snr`` times the panel's measured noise (``block_noise``), so
    that 1 is an ideal needle whatever scale the view's cleaning chose for that panel."""
    from tfseti.synth.cadence import needle_track

    pairs = synthesise_all(specs) if pairs is None else pairs
    with_needle = np.stack([p[0] for p in pairs])
    without = np.stack([p[1] for p in pairs])
    time = with_needle.shape[2]
    cleaned = ws.clean(with_needle, base)
    clean_without = ws.clean(without, base)
    noise = block_noise(clean_without, base, time)
    diff = cleaned - clean_without
    scores = candidate_scores(cleaned, cands, base, time)
    # The needle's own maps (the maps are linear in the cleaned blocks): (N, 6, D, F) each.
    own = {c.name: part_maps(diff, c, time) for c in cands}
    records = []
    for i, spec in enumerate(specs):
        needle = spec.needle
        present = list(needle.present_panels)
        unit = needle.snr * noise[i]                                              # (6,)
        max_slope, out_of_range = slope_stats(spec, base.max_drift)
        track = track_power(diff[i], needle_track(spec), base, time)
        rec = {"family": needle.shape.family, "snr": needle.snr, "present": present,
               "noise": _floats(noise[i][present]), "max_slope": max_slope,
               "out_of_range": out_of_range,
               "group": ("steep sine" if needle.shape.family == "sine" and max_slope > base.max_drift
                         else needle.shape.family),
               "track": _floats(track[present] / unit[present]),
               "peak": {}, "aligned": {},
               "score": {name: float(v[i]) for name, v in scores.items()}}
        for name, maps in own.items():
            cells = maps[i] / unit[:, None, None]                                 # (6, D, F)
            rec["peak"][name] = _floats(cells[present].reshape(len(present), -1).max(axis=1))
            rec["aligned"][name] = float(np.median(cells[ON], axis=0).max())
        if needle.shape.family == "pulsed":
            rec["on_fraction"] = _floats(on_fraction(spec)[present])
            rec["pulses"] = spec.frame.panel_seconds / needle.shape.period
        if needle.shape.family in CONSTANT_DRIFT:
            rate = rate_channels_per_row(spec)
            scale = np.float32(1.0 / np.sqrt(time))
            one = np.ascontiguousarray(diff[i:i + 1])
            exact = ws._shift_sum(one, shifts_at(rate, base, time, base.panel_gap), scale)[0, :, 0]
            true_gap = ws._shift_sum(one, shifts_at(rate, base, time, spec.slew / spec.frame.dt),
                                     scale)[0, :, 0]                              # (6, F)
            exact, true_gap = exact / unit[:, None], true_gap / unit[:, None]
            rec["rate"] = rate
            rec["exact"] = _floats(exact[present].max(axis=1))
            rec["aligned_exact"] = float(np.median(exact[ON], axis=0).max())
            rec["aligned_true_gap"] = float(np.median(true_gap[ON], axis=0).max())
        records.append(rec)
    return records


def measure_negatives(specs: list, cands: list[Candidate], base: DedopplerConfig,
                      pairs: list | None = None) -> list[dict]:
    """One record per negative: every candidate's ``two_of_three`` and the panels' measured noise."""
    pairs = synthesise_all(specs) if pairs is None else pairs
    arrays = np.stack([p[0] for p in pairs])
    time = arrays.shape[2]
    cleaned = ws.clean(arrays, base)
    noise = block_noise(cleaned, base, time)
    scores = candidate_scores(cleaned, cands, base, time)
    return [{"score": {name: float(v[i]) for name, v in scores.items()}, "noise": _floats(noise[i][ON])}
            for i in range(len(specs))]


def noise_floor(specs: list, base: DedopplerConfig) -> list[float]:
    """The largest cell of each ON panel's map (the recipe's view) of these cadences made without
    their RFI (which would be the largest cell of most panels), in units of the panel's measured
    noise: how high pure noise reaches somewhere in a map."""
    arrays = np.stack([synthesise(replace(spec, rfi=()))[0] for spec in specs])
    time = arrays.shape[2]
    cleaned = ws.clean(arrays, base)
    top = part_maps(cleaned, Candidate("current", base), time)[:, ON].reshape(len(specs), len(ON), -1)
    return _floats((top.max(axis=2) / block_noise(cleaned, base, time)[:, ON]).ravel())


def synthesise_all(specs: list) -> list[tuple[np.ndarray, np.ndarray]]:
    return [synthesise(spec) for spec in specs]


def measure(n: int, n_neg: int, seed: int, base: DedopplerConfig, workers: int = 2,
            progress=print) -> dict:
    """Every record: ``n`` positives of each family, ``n_neg`` negatives.

    With ``workers`` > 1 the cadences are made in that many processes, one chunk ahead of the
    measurement (setigen takes about half the time, and the maps' Numba loops use the same
    cores in between); the results do not depend on it."""
    cands = candidates(base)
    jobs = [(family, chunk) for family in (*TEST_FAMILIES, None)
            for chunk in _chunks(draw_specs(family, n if family else n_neg, seed))]
    records = {family: [] for family in (*TEST_FAMILIES, None)}
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        def start(job):
            if pool is None:
                return None
            return [pool.submit(synthesise_all, part) for part in _chunks(job[1], -(-CHUNK // workers))]

        pending = start(jobs[0])
        for i, (family, specs) in enumerate(jobs):
            pairs = None if pending is None else [p for f in pending for p in f.result()]
            pending = start(jobs[i + 1]) if i + 1 < len(jobs) else None
            measure_fn = measure_negatives if family is None else measure_positives
            records[family] += measure_fn(specs, cands, base, pairs)
            if i + 1 == len(jobs) or jobs[i + 1][0] != family:
                progress(f"  {family or 'negatives'}: {len(records[family])} cadences measured")
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    floor = noise_floor(draw_specs(None, min(n_neg, FLOOR_CADENCES), seed), base)
    return {"candidates": [{"name": c.name, "parts": c.parts, **asdict(c.cfg)} for c in cands],
            "positives": [r for f in TEST_FAMILIES for r in records[f]], "negatives": records[None],
            "noise_floor": floor}


def _chunks(items: list, size: int = CHUNK) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


# ----------------------------------------------------------------------------- tables


def _pool(records: list[dict], key: str, sub: str | None = None) -> np.ndarray:
    values = []
    for rec in records:
        value = rec.get(key) if sub is None else rec.get(key, {}).get(sub)
        if value is None:
            continue
        values += list(value) if isinstance(value, list) else [value]
    return np.asarray(values, dtype=float)


def _med(values: np.ndarray, spread: bool = False) -> str:
    if values.size == 0:
        return "-"
    if not spread:
        return f"{np.median(values):.2f}"
    q1, q2, q3 = np.quantile(values, [0.25, 0.5, 0.75])
    return f"{q2:.2f} [{q1:.2f}, {q3:.2f}]"


def _deciles(values: np.ndarray) -> str:
    """``q10/q50/q90``."""
    return "/".join(f"{x:.2f}" for x in np.quantile(values, [.1, .5, .9])) if values.size else "-"


def _by_group(positives: list[dict]) -> dict[str, list[dict]]:
    return {g: [r for r in positives if r["group"] == g] for g in GROUPS}


def _table(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]

    def line(cells):
        return "  ".join(f"{str(c):<{w}}" if j == 0 else f"{str(c):>{w}}"
                         for j, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(head), "-" * len(line(head))] + [line(r) for r in rows])


def tables(result: dict, base: DedopplerConfig) -> dict[str, tuple[str, list[list]]]:
    """Every table: ``{title: (text, rows)}``."""
    pos, neg = result["positives"], result["negatives"]
    names = [c["name"] for c in result["candidates"]]
    groups = _by_group(pos)
    out = {}

    head = ["group", "cadences", "panels", "noise", "track/snr", "peak/snr", "peak/track",
            "aligned/snr", "exact/snr"]
    rows = []
    for g, recs in groups.items():
        track, peak = _pool(recs, "track"), _pool(recs, "peak", "current")
        rows.append([g, len(recs), track.size, _med(_pool(recs, "noise")), _med(track, True),
                     _med(peak, True), _med(peak / track if track.size else track, True),
                     _med(_pool(recs, "aligned", "current"), True), _med(_pool(recs, "exact"))])
    out["A. needle power in the best cell of the cpu view's maps (per ON panel holding it)"] = (
        _table(head, rows), rows)

    head = ["group"] + [f"SNR {s:g}" for s in TEST_SNRS]
    rows = [[g] + [_med(_pool([r for r in recs if r["snr"] == s], "peak", "current")) for s in TEST_SNRS]
            for g, recs in groups.items()]
    top = np.asarray(result.get("noise_floor", []))
    note = ("" if top.size == 0 else
            f"\nnoise only (RFI-free, {top.size // len(ON)} cadences): the largest cell of an ON panel's map is "
            f"{np.median(top):.2f} [10 %: {np.quantile(top, 0.1):.2f}, 90 %: {np.quantile(top, 0.9):.2f}]"
            f" noise std; a needle's best cell is SNR x peak/snr")
    out["B. peak/snr (current maps) by SNR bin"] = (_table(head, rows) + note, rows)

    head = ["group"] + names
    rows = [[g] + [_med(_pool(recs, "peak", c)) for c in names] for g, recs in groups.items()]
    out["C. peak/snr per panel for each kind of map (parts: best part, in its own SNR units)"] = (
        _table(head, rows), rows)

    sine = [r for r in pos if r["family"] == "sine"]
    slopes = _pool(sine, "max_slope")
    m = base.max_drift
    head = ["sine needles", "n", "max slope q10/q25/q50/q75/q90 (ch/row)", f"> {m:g}", f"> {2 * m:g}",
            f"> {4 * m:g}", "out of range (mean)"]
    q = "/".join(f"{v:.2f}" for v in np.quantile(slopes, [.1, .25, .5, .75, .9])) if slopes.size else "-"
    rows = [["all", len(sine), q] + [f"{(slopes > k * m).mean():.2f}" if slopes.size else "-"
                                     for k in (1, 2, 4)]
            + [f"{_pool(sine, 'out_of_range').mean():.2f}" if sine else "-"]]
    text = _table(head, rows)
    edges = [0.0, m / 2, m, 2 * m, 4 * m, np.inf]
    head2 = ["max slope (ch/row)", "n", "out of range", "track/snr"] + [f"peak/snr {c}" for c in names] + [
        "aligned/snr current"]
    rows2 = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        recs = [r for r in sine if lo < r["max_slope"] <= hi]
        rows2.append([f"({lo:g}, {hi:g}]", len(recs), _med(_pool(recs, "out_of_range")),
                      _med(_pool(recs, "track"))] + [_med(_pool(recs, "peak", c)) for c in names]
                     + [_med(_pool(recs, "aligned", "current"))])
    out["D. sine: steepest slope against max_drift, and the power kept by slope"] = (
        text + "\n\n" + _table(head2, rows2), rows + rows2)

    head = ["family", "panels", "on-fraction q10/q50/q90", "pulses per panel q10/q50/q90", "track/snr",
            "peak/snr whole", "halves", "quarters", "halves/whole", "quarters/whole"]
    rows = []
    for fam in ("pulsed", "linear"):
        recs = [r for r in pos if r["family"] == fam]
        whole, halves, quarters = (_pool(recs, "peak", c) for c in ("current", "halves max", "quarters max"))
        onf, pulses = _pool(recs, "on_fraction"), _pool(recs, "pulses")
        rows.append([fam, whole.size, _deciles(onf), _deciles(pulses), _med(_pool(recs, "track")), _med(whole),
                     _med(halves), _med(quarters), _med(halves / whole if whole.size else whole),
                     _med(quarters / whole if whole.size else whole)])
    out["E. pulsed: on-fraction, and the best time part against the whole panel (linear for reference)"] = (
        _table(head, rows), rows)

    head = ["family", "panels", "|rate| q50 (ch/row)", "grid/exact current", "grid/exact fine x2",
            "aligned grid/exact", "aligned fine/exact", "aligned true gap/exact"]
    rows = []
    for fam in CONSTANT_DRIFT:
        recs = [r for r in pos if r["family"] == fam]
        exact, aligned_exact = _pool(recs, "exact"), _pool(recs, "aligned_exact")

        def ratio(key, sub=None):
            return _med(_pool(recs, key, sub) / (exact if key == "peak" else aligned_exact))

        rows.append([fam, exact.size, _med(np.abs(_pool(recs, "rate"))), ratio("peak", "current"),
                     ratio("peak", "fine x2"), ratio("aligned", "current"), ratio("aligned", "fine x2"),
                     ratio("aligned_true_gap")])
    out[f"F. drift resolution (grid step {drift_step(base):.5f} ch/row) and panel alignment, "
        f"constant-drift families"] = (_table(head, rows), rows)

    head = ["group", "n_pos"] + names
    rows = []
    neg_scores = {c: _pool(neg, "score", c) for c in names}
    sets = [(g, recs) for g, recs in groups.items()] + [("sine (both)", sine), ("all", pos)] + [
        (f"SNR {s:g}", [r for r in pos if r["snr"] == s]) for s in TEST_SNRS]
    for label, recs in sets:
        cells = []
        for c in names:
            value = rank_auc(_pool(recs, "score", c), neg_scores[c])  # the project's one AUC
            cells.append(f"{value:.3f}" if is_defined(value) else "-")
        rows.append([label, len(recs)] + cells)
    out[f"G. classical two_of_three AUC per group and kind of map ({len(neg)} negatives)"] = (
        _table(head, rows), rows)
    return out


# ----------------------------------------------------------------------------- CLI


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.family_loss",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="folder for tables.txt and results.json")
    parser.add_argument("--n", type=int, default=200, help="positives per family (default 200)")
    parser.add_argument("--n-neg", type=int, help="negatives (default 2 x --n)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--recipe", default="cpu", help="recipe whose [view.dedoppler] is measured")
    parser.add_argument("--workers", type=int, default=2,
                        help="processes that make the cadences (default 2; 1 = in this process)")
    args = parser.parse_args(argv)
    if args.n < len(TEST_SNRS):
        parser.error(f"--n must be at least {len(TEST_SNRS)} (one needle per SNR bin)")
    args.n_neg = 2 * args.n if args.n_neg is None else args.n_neg
    if args.n_neg < 1:
        parser.error("--n-neg must be at least 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    base = recipe_dedoppler(args.recipe)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    print(f"family loss: recipe {args.recipe} view.dedoppler {asdict(base)}; {args.n} positives per "
          f"family (SNR {', '.join(f'{s:g}' for s in TEST_SNRS)} in turn), {args.n_neg} negatives, "
          f"RFI x{RFI_SCALE}, seed {args.seed}", flush=True)
    result = measure(args.n, args.n_neg, args.seed, base, args.workers,
                     progress=lambda s: print(s, flush=True))
    seconds = time.perf_counter() - start
    made = tables(result, base)
    text = "\n\n".join(f"== {title} ==\n{body}" for title, (body, _) in made.items())
    text += f"\n\nwall time {seconds:.0f} s"
    print("\n" + text)
    (out / "tables.txt").write_text(text + "\n")
    (out / "results.json").write_text(json.dumps(
        {"settings": {"recipe": args.recipe, "dedoppler": asdict(base), "n": args.n,
                      "n_neg": args.n_neg, "seed": args.seed, "workers": args.workers, "rfi_scale": RFI_SCALE,
                      "snrs": list(TEST_SNRS), "seconds": seconds},
         "tables": {title: rows for title, (_, rows) in made.items()}, **result}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
