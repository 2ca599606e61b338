"""A sensitivity run: plant, scan with the scan's own code, match, chunk by chunk, resumably; then
the tables.

Per chunk (``tfseti.sensitivity.layout``): draw its signals, estimate the noise of their slots
from the ON files, render them (``tfseti.sensitivity.plant``), and wrap the chunk's unit of the
cadence (:class:`~tfseti.sensitivity.plant.PlantedCadence`) so that the scan reads the planted
data: ``tfseti.scan.run.scan_cadence`` (the window stage: band search, and the model when there is
one) and ``tfseti.scan.run.search_files`` (the per-file search), then ``find_event_pipeline`` on
the six files' hits as the scan's ``events.csv`` makes them (``.dat`` text, turboSETI's), all at
the scan's thresholds. The files are only read. The matches (``tfseti.sensitivity.match``) are
written to ``OUT/chunks/<cadence>/chunk_<k>.json`` atomically; a rerun with the same arguments
skips the chunks that exist, so an interrupted run resumes, and the tables are made from the
chunk files alone: the same table either way.

``OUT/run.json`` holds what the chunks depend on (files, models, scan settings, draws, seed); a
rerun into a folder of another run is refused. The limits (``--sefd``, ``--distance-pc``,
``--n-stars``), ``--bins`` and ``--bootstrap`` only shape the tables: change them and rerun,
nothing is replanted.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from tfseti.io.atomic import write_json
from tfseti.scan.settings import ScanSettings
from tfseti.sensitivity.layout import Draws, Layout, draw_chunk, make_layout, with_levels
from tfseti.sensitivity.plant import Clock, PlantedCadence, noise_std, render

RUN_JSON = "run.json"
CHUNKS = "chunks"
DEFAULT_WIDTH = 256
FORMAT = 1
MIN_BOOTSTRAP = 100


@dataclass
class SensitivityJob:
    """What to measure (the command's arguments)."""

    cadences: list[list[str]]
    out: str
    models: list[str] = field(default_factory=list)
    settings: ScanSettings = field(default_factory=ScanSettings)
    draws: Draws = field(default_factory=Draws)
    n: int = 2000
    seed: int = 0
    controls: float = 0.2
    empty: float = 0.1
    width: int = DEFAULT_WIDTH             # window channels without a model (else the model's)
    bins: tuple[int, int, int] = (9, 4, 3)
    sefd: float | None = None
    distance_pc: float | None = None
    n_stars: int | None = None
    bootstrap: int = 1000                  # resamples of the SNR50 / SNR90 intervals
    names: list[str] = field(default_factory=list)

    def __post_init__(self):
        from tfseti.scan.run import unique_names

        if not self.cadences:
            raise ValueError("no cadence (--cadence or --cadence-list)")
        if not (isinstance(self.n, int) and self.n >= 1):
            raise ValueError(f"--n: expected an integer >= 1, got {self.n!r}")
        if not (isinstance(self.seed, int) and self.seed >= 0):
            raise ValueError(f"--seed: expected an integer >= 0, got {self.seed!r}")
        for name in ("controls", "empty"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value < 1):
                raise ValueError(f"--{name}: expected a fraction in [0, 1), got {value!r}")
        if self.controls + self.empty >= 1:
            raise ValueError(f"--controls {self.controls:g} + --empty {self.empty:g} leave no slot "
                             f"for signals")
        if len(self.bins) != 3 or not all(isinstance(b, int) and b >= 1 for b in self.bins):
            raise ValueError(f"--bins: expected three integers >= 1 (SNR, drift, width), got {self.bins!r}")
        for name in ("sefd", "distance_pc"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"--{name.replace('_', '-')}: expected a finite number > 0, got {value!r}")
        if not (isinstance(self.bootstrap, int) and self.bootstrap >= MIN_BOOTSTRAP):
            # fewer resamples put the 2.5 % / 97.5 % order statistics at the extremes
            raise ValueError(f"--bootstrap: expected an integer >= {MIN_BOOTSTRAP}, got {self.bootstrap!r}")
        if self.n_stars is not None and not (isinstance(self.n_stars, int) and self.n_stars >= 1):
            raise ValueError(f"--n-stars: expected an integer >= 1, got {self.n_stars!r}")
        if not self.names:
            self.names = unique_names(self.cadences)

    def identity(self) -> dict:
        """What the chunk files depend on (``run.json``'s fingerprint)."""
        return {"format": FORMAT,
                "cadences": [{"name": n, "files": [os.path.abspath(p) for p in paths]}
                             for n, paths in zip(self.names, self.cadences)],
                "models": [os.path.abspath(m) for m in self.models],
                "settings": self.settings.to_dict(), "draws": asdict(self.draws), "n": self.n,
                "seed": self.seed, "controls": self.controls, "empty": self.empty}


def fingerprint(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Plan:
    """One cadence, opened, with its clock, layout and chunk count."""

    name: str
    cadence: object
    clock: Clock
    layout: Layout
    chunks: int


def prepare(job: SensitivityJob, width: int) -> list[Plan]:
    """Open every cadence and lay it out (every refusal before anything is written)."""
    from tfseti.io.observations import open_cadence

    plans = []
    try:
        for name, paths in zip(job.names, job.cadences):
            cadence = open_cadence(paths, name)
            clock = Clock.of(cadence)
            try:
                layout = make_layout(cadence, job.settings, width, job.draws, clock,
                                     job.controls, job.empty)
            except ValueError as err:
                cadence.close()
                raise ValueError(f"cadence {name} ({paths[0]}, ...): {err}") from None
            plans.append(Plan(name, cadence, clock, layout, layout.chunks_for(job.n)))
    except BaseException:
        for plan in plans:
            plan.cadence.close()
        raise
    return plans


def chunk_path(out: str, name: str, chunk: int) -> str:
    return os.path.join(out, CHUNKS, name, f"chunk_{chunk:05d}.json")


def events_in_memory(sub: PlantedCadence, per_file: list[list], settings: ScanSettings) -> list[dict]:
    """``find_event_pipeline`` on the six files' hits, through the ``.dat`` text the scan writes
    (``tfseti.scan.outputs.write_cadence``, ``tfseti.scan.filehits.cadence_events``)."""
    from tfseti.dedoppler.dat import header_lines
    from tfseti.dedoppler.events import dat_file_from_hits, find_event_pipeline

    files = []
    for f, hits in zip(sub.files, per_file):
        name = os.path.basename(f.path)
        tstart = f.tstart if f.tstart is not None and math.isfinite(f.tstart) else None
        header = header_lines(name, f.source_name, tstart or 0.0, str(f.header.get("src_raj", "")),
                              str(f.header.get("src_dej", "")), sub.tsamp, sub.foff,
                              settings.max_drift_hz, sub.rows * sub.tsamp)
        files.append(dat_file_from_hits(hits, header, path=name, tstart=tstart, fch1=sub.fch1,
                                        foff=sub.foff, nchans=sub.nchans))
    return find_event_pipeline(files, filter_threshold=settings.event_filter,
                               number_in_cadence=len(files), on_off_first="ON", sortby_tstart=True)


def slot_noise(cadence, unit: tuple[int, int], slots: set, rows: int) -> dict:
    """``{slot: noise}`` from the ON files' channels of each slot (``plant.noise_std``), one
    unit read per ON file."""
    from tfseti.io.kaggle import ON_PANELS

    u0, u1 = unit
    parts: dict = {s: [] for s in slots}
    for p in ON_PANELS:
        block = cadence.files[p].read(u0, u1)[:rows]
        for a, b in slots:
            parts[(a, b)].append(np.asarray(block[:, a - u0:b - u0], np.float64))
    return {s: noise_std(np.stack(v)) for s, v in parts.items()}


def run_chunk(job: SensitivityJob, plan: Plan, chunk: int, scorer, width: int, fp: str) -> dict:
    """Plant, scan and match chunk ``chunk`` of ``plan`` (module notes): its chunk document."""
    from tfseti.dedoppler.hitsearch import drift_resolution
    from tfseti.dedoppler.window_scores import drift_rates
    from tfseti.scan.run import scan_cadence, search_files
    from tfseti.scan.scoring import classical_config
    from tfseti.scan.windows import WindowPlan, fine_per_coarse_for
    from tfseti.sensitivity.match import match_chunk

    start = time.perf_counter()
    cadence, layout, clock = plan.cadence, plan.layout, plan.clock
    foff_hz = cadence.foff * 1e6
    n_on = min(layout.on_per_chunk, job.n - chunk * layout.on_per_chunk)
    signals, empty = draw_chunk(chunk, layout, clock, foff_hz, job.draws, job.seed, n_on)
    unit = layout.unit_of(chunk)
    noise = slot_noise(cadence, unit, {s.slot for s in signals}, cadence.rows)
    signals = with_levels(signals, noise, cadence.rows)
    patches: dict = {}
    for s in signals:
        for p in s.panels:
            patches.setdefault(p, []).append(render(s, clock, p, foff_hz))
    sub = PlantedCadence(cadence, unit[0], unit[1], patches)
    settings = job.settings
    windows = WindowPlan(sub.nchans, width, settings.overlap,
                         fine_per_coarse_for(sub.nchans, settings.fine_per_coarse))
    cfg = classical_config(sub, settings)
    rows = scan_cadence(sub, windows, cfg, scorer)
    per_file = search_files(sub, windows, settings)
    events = events_in_memory(sub, per_file, settings)
    rates = drift_rates(cfg)
    step = float(rates[1] - rates[0]) if len(rates) > 1 else 0.0
    found, alarms = match_chunk(
        signals, empty, rows, events, lo=unit[0], width=width, clock=clock, fch1=cadence.fch1,
        foff=cadence.foff, paths=cadence.paths, settings=settings,
        window_bin_hz_s=step * abs(foff_hz) / cadence.tsamp,
        file_bin_hz_s=drift_resolution(cadence.foff, cadence.tsamp, cadence.rows),
        has_model=bool(scorer.models))
    return {"fingerprint": fp, "cadence": plan.name, "chunk": chunk, "unit": list(unit),
            "signals": [{**s.as_dict(), **f} for s, f in zip(signals, found)],
            "empty": alarms, "seconds": round(time.perf_counter() - start, 3)}


def read_chunk(path: str, fp: str, name: str, chunk: int) -> dict | None:
    """A chunk file of this run, or None when there is none; one of another run is an error."""
    if not os.path.isfile(path):
        return None
    with open(path) as handle:
        doc = json.load(handle)
    if doc.get("fingerprint") != fp or doc.get("cadence") != name or doc.get("chunk") != chunk:
        raise ValueError(f"{path}: a chunk of another sensitivity run (fingerprint "
                         f"{doc.get('fingerprint')} != {fp}); use another --out")
    return doc


def check_run_json(out: str, identity: dict, fp: str) -> None:
    """Refuse an ``OUT`` of another run, then (re)write ``run.json``."""
    path = os.path.join(out, RUN_JSON)
    if os.path.isfile(path):
        with open(path) as handle:
            earlier = json.load(handle)
        if earlier.get("fingerprint") != fp:
            raise ValueError(f"{out} holds a sensitivity run of other files, models, settings, "
                             f"draws or seed ({path}); use another --out or remove it")
    write_json(path, {"fingerprint": fp, **identity})


def describe(doc: dict, total: int, on_detectors) -> str:
    signals = doc["signals"]
    on = [s for s in signals if s["kind"] == "on"]
    controls = [s for s in signals if s["kind"] == "control"]
    parts = [f"{d} {sum(bool(s['found_' + d]) for s in on)}/{len(on)}" for d in on_detectors]
    passed = [f"{d} {sum(bool(s['found_' + d]) for s in controls)}" for d in on_detectors]
    return (f"{doc['cadence']} chunk {doc['chunk'] + 1}/{total} (channels {doc['unit'][0]}-"
            f"{doc['unit'][1]}): found {', '.join(parts)}; of {len(controls)} ON+OFF controls "
            f"passed {', '.join(passed)}; {doc['seconds']:.1f} s")


@dataclass
class Opened:
    """A job's models and cadences, opened and checked (:func:`open_job`)."""

    models: list
    model_shape: tuple | None
    width: int
    plans: list[Plan]

    def close(self) -> None:
        for plan in self.plans:
            plan.cadence.close()


def open_job(job: SensitivityJob) -> Opened:
    """Load the models and open and lay out every cadence: every refusal of the job happens
    here, before ``OUT`` is touched."""
    from tfseti.scan.run import load_models

    models, model_shape = load_models(job.models)
    width = model_shape[2] if model_shape else job.width
    return Opened(models, model_shape, width, prepare(job, width))


def run(job: SensitivityJob, opened: Opened, log=print) -> dict:
    """The whole run, in ``job.out`` (the caller holds its lock): chunks, then the tables
    (``tfseti.sensitivity.report``). Returns ``sensitivity.json``'s document."""
    from tfseti.scan.scoring import WindowScorer
    from tfseti.sensitivity import report

    identity = job.identity() | {"width": opened.width}
    fp = fingerprint(identity)
    check_run_json(job.out, identity, fp)
    scorer = WindowScorer(opened.models, job.settings, opened.model_shape)
    has_model = bool(opened.models)
    detectors = ("classical", "dedoppler", "model") if has_model else ("classical", "dedoppler")
    docs = []
    for plan in opened.plans:
        log(f"{plan.name}: {plan.cadence.nchans} channels, {len(plan.layout.units)} unit(s), "
            f"slots of {plan.layout.slot} channels, {plan.layout.on_per_chunk} signal(s) + "
            f"{plan.layout.controls} control(s) + {plan.layout.empty} empty slot(s) per chunk, "
            f"{plan.chunks} chunk(s)")
        for chunk in range(plan.chunks):
            path = chunk_path(job.out, plan.name, chunk)
            doc = read_chunk(path, fp, plan.name, chunk)
            if doc is not None:
                log(f"{plan.name} chunk {chunk + 1}/{plan.chunks}: done earlier, skipped")
            else:
                doc = run_chunk(job, plan, chunk, scorer, opened.width, fp)
                write_json(path, doc)
                log(describe(doc, plan.chunks, detectors))
            docs.append(doc)
    return report.write(job, opened.plans, docs, has_model, log)
