"""The local scan: every cadence's windows streamed through the scorer, one cadence folder at a time.

Set-up shared with the Beam runner (``tfseti.scan.beam``): :func:`load_models` (SavedModels of one
input shape), :func:`plan_cadence` (open and check the six files, plan the windows, make the
classical search's config, the fingerprint), :func:`prepare` (every check against ``OUT``, then
``scan.json``; a refused scan writes nothing) and :func:`finish` (merge the hits and the events of
every complete cadence scanned into ``OUT``, write the page). A cadence is its windows streamed
through the scorer while, in a second thread, each of its six files is searched alone
(``tfseti.scan.filehits``: the ``.dat`` files and the events; :func:`scan_and_search`), then its
folder written. The caller holds ``OUT``'s lock
(``tfseti.io.folder_lock``; ``python -m tfseti.scan`` takes it).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from tfseti.io.observations import ObservationCadence, open_cadence
from tfseti.scan import outputs
from tfseti.scan.page import PAGE, PNG_DIR, SENSITIVITY_DIR
from tfseti.scan.scoring import WindowScorer, classical_config
from tfseti.scan.settings import ScanSettings
from tfseti.scan.stream import read_group, read_groups
from tfseti.scan.windows import WindowPlan, fine_per_coarse_for, nonfinite_notes

DEFAULT_WIDTH = 256


@dataclass
class ScanJob:
    """What to scan: cadences (six paths each, ABACAD), models (SavedModel folders, may be empty:
    the classical search alone), where to write, and how."""

    cadences: list[list[str]]
    models: list[str]
    out: str
    settings: ScanSettings = field(default_factory=ScanSettings)
    width: int = DEFAULT_WIDTH          # used when there is no model (else the model's channels)
    names: list[str] = field(default_factory=list)
    # Worker processes of the local runner (tfseti.scan.workers); not part of what a scan is: any
    # number writes the same files, so a scan may resume with another.
    workers: int = 1

    def __post_init__(self):
        if not self.cadences:
            raise ValueError("no cadence to scan (--cadence or --cadence-list)")
        if not (isinstance(self.workers, int) and self.workers >= 1):
            raise ValueError(f"--workers: expected an integer >= 1, got {self.workers!r}")
        if not self.names:
            self.names = unique_names(self.cadences)


# Names a cadence folder may not take: the scan's own top-level files (OUT/hits.csv next to
# OUT/<cadence>/ ...). A first file named ``hits.csv.h5`` made the folder OUT/hits.csv.
RESERVED_NAMES = (outputs.HITS_CSV, outputs.EVENTS_CSV, outputs.SCAN_JSON, PAGE, PNG_DIR,
                  SENSITIVITY_DIR)


def _reserved(name: str) -> bool:
    # Hidden names (., .., lock files) and <name>.partial (another cadence's folder being
    # written, tfseti.scan.outputs) are not cadence folders either.
    low = name.lower()
    return low in RESERVED_NAMES or low.startswith(".") or low.endswith(".partial") or not low


def unique_names(cadences: list[list[str]]) -> list[str]:
    """A folder name per cadence: its first file's stem, or ``<stem>_2``, ``<stem>_3``... when
    that is taken. A generated name never equals any cadence's stem (``x.h5``, ``x_2.h5`` and
    another ``x.h5`` give ``x``, ``x_2``, ``x_3``), no two names are equal ignoring case (a
    case-insensitive file system would merge the folders), and none is a reserved name
    (:data:`RESERVED_NAMES`, hidden, ``.partial``). Depends only on the list, so a rerun finds
    the same folders."""
    stems = [os.path.splitext(os.path.basename(paths[0]))[0] for paths in cadences]
    all_stems = {s.lower() for s in stems}
    names, used = [], set()
    for stem in stems:
        base = f"_{stem}" if stem.startswith(".") else stem     # a suffix cannot unhide a name
        name, k = base, 1
        while name.lower() in used or _reserved(name) or (name != stem and name.lower() in all_stems):
            k += 1
            name = f"{base}_{k}"
        used.add(name.lower())
        names.append(name)
    return names


def load_models(paths: list[str]) -> tuple[list, tuple[int, int, int] | None]:
    """Loaded SavedModels and the ``(P, rows, channels)`` they all take (None without models:
    nothing of TensorFlow is imported then)."""
    if not paths:
        return [], None
    from tfseti.predict.models import load_model

    models = [load_model(p) for p in paths]
    if not models:
        return [], None
    shapes = {m.shape[1:] for m in models}
    if len(shapes) > 1:
        raise ValueError(f"--model: the models take different snippets "
                         f"{[(m.path, m.shape) for m in models]}; ensemble models of one input shape")
    return models, (6, *models[0].shape[1:])


def plan_cadence(job: ScanJob, index: int, width: int):
    """``(cadence, plan, cfg, info)`` of cadence ``index`` of the job (the files opened and checked)."""
    paths, name = job.cadences[index], job.names[index]
    cadence = open_cadence(paths, name)
    try:
        s = job.settings
        plan = WindowPlan(cadence.nchans, width, s.overlap,
                          fine_per_coarse_for(cadence.nchans, s.fine_per_coarse))
        cfg = classical_config(cadence, s)
    except ValueError as err:
        cadence.close()
        raise ValueError(f"cadence {name} ({paths[0]}, ...): {err}") from None
    fp = outputs.fingerprint(paths, job.models, s.to_dict() | {"width": width})
    return cadence, plan, cfg, outputs.cadence_info(cadence, plan, cfg, s, width, fp)


def opened(job: ScanJob, width: int, cache: dict, index: int):
    """``(cadence, plan, cfg, info)`` of cadence ``index`` (:func:`plan_cadence`), opened once per
    ``cache`` (a worker process's, or a Beam worker's)."""
    if index not in cache:
        cache[index] = plan_cadence(job, index, width)
    return cache[index]


def close_opened(cache: dict) -> None:
    """Close every cadence of an :func:`opened` cache."""
    for cadence, *_ in cache.values():
        cadence.close()
    cache.clear()


def describe(info: dict) -> str:
    mb = info["input_bytes"] / 1e6
    band = sorted((info["fch1"], info["fch1"] + info["nchans"] * info["foff"]))
    return (f"{info['name']}: {info['nchans']} channels {band[0]:.6f}-{band[1]:.6f} MHz, "
            f"{info['rows']} x {info['tsamp']:g} s integrations per file, slew {info['gap_rows']} "
            f"integrations, {info['windows']} windows, {mb:.1f} MB")


def group_rows(cadence: ObservationCadence, plan: WindowPlan, cfg, scorer: WindowScorer,
               group: tuple[int, int], clock: dict, bar=None) -> list[dict]:
    """Window-table rows of one read group (``tfseti.scan.stream.read_groups``): the group read,
    the band search over its own channels, then its windows in batches through the models.
    ``clock`` gets the seconds spent reading, in the band search and in the models (with the
    rows) added to its ``read`` / ``band search`` / ``model``."""
    from tfseti.dedoppler.band_search import halo

    size = scorer.settings.batch_size
    start = time.perf_counter()
    data = read_group(cadence, plan, group, halo(cfg, cadence.rows), windows=bool(scorer.models))
    middle = time.perf_counter()
    classical = scorer.classical(plan, scorer.band(cfg, plan, data), data.indices)
    end = time.perf_counter()
    rows = []
    for i in range(0, len(data.indices), size):
        native = None if data.native is None else data.native[i:i + size]
        rows.extend(scorer.rows(cadence, plan, data.indices[i:i + size], native,
                                classical[i:i + size]))
        if bar is not None:
            bar.update(len(data.indices[i:i + size]))
    for key, seconds in (("read", middle - start), ("band search", end - middle),
                         ("model", time.perf_counter() - end)):
        clock[key] = clock.get(key, 0.0) + seconds
    return rows


def progress_bar(cadence: ObservationCadence, plan: WindowPlan, progress: bool):
    """A tqdm bar over the cadence's windows on stderr, or None."""
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=len(plan), unit="window", desc=cadence.name, file=sys.stderr)


def scan_cadence(cadence: ObservationCadence, plan: WindowPlan, cfg, scorer: WindowScorer,
                 progress: bool = False, clock: dict | None = None) -> list[dict]:
    """Window-table rows of every window of a cadence, streamed read group by read group
    (:func:`group_rows`). ``clock`` (a dict) gets the seconds spent reading, in the band search
    and in the models."""
    bar = progress_bar(cadence, plan, progress)
    clock = {} if clock is None else clock
    for key in ("read", "band search", "model"):
        clock.setdefault(key, 0.0)
    rows = []
    for group in read_groups(plan, cadence.rows, scorer.settings.read_mb, scorer.settings.batch_size):
        rows.extend(group_rows(cadence, plan, cfg, scorer, group, clock, bar))
    if bar is not None:
        bar.close()
    return rows


def load_kernels(cadence: ObservationCadence, plan: WindowPlan, cfg, settings: ScanSettings) -> float:
    """Run the band search and the per-file search once on a small block of noise shaped as this
    cadence's, so that Numba's compiled kernels are loaded (from its on-disk cache; compiled on a
    first run) before the timed stages: the seconds it took. (Loading is once per process, about
    half a second; turboSETI's timing in ``benchmarks/scan_bench.py`` likewise leaves out its
    compilation.) Nothing of the cadence is read."""
    from tfseti.dedoppler.band_search import halo, search_block
    from tfseti.dedoppler.hitsearch import search_coarse_channel

    start = time.perf_counter()
    rows = cadence.rows
    width = min(plan.nchans, 2 * plan.width + 2 * halo(cfg, rows))
    noise = np.random.default_rng(0).standard_normal((6, rows, width)).astype(np.float32) + 10
    tile = min(plan.width, width)
    search_block(noise, cfg, 0, width, tile, 0, width)
    search_coarse_channel(noise[0], fch1_mhz=cadence.fch1, foff_mhz=cadence.foff,
                          tsamp_s=cadence.tsamp, max_drift=settings.max_drift_hz,
                          snr=settings.hit_snr)
    return time.perf_counter() - start


# Numba threading layers that run parallel kernels called from two threads at once (Numba's
# "threading layers" notes: workqueue is not thread-safe).
SIDE_BY_SIDE_LAYERS = ("omp", "tbb")


def concurrent_ok() -> bool:
    """Whether the window stage and the per-file search may run at the same time: the kernels
    have run once (:func:`load_kernels`), on a thread-safe layer."""
    import numba

    try:
        return numba.threading_layer() in SIDE_BY_SIDE_LAYERS
    except ValueError:      # no parallel kernel has run yet: the layer is not chosen
        return False


def scan_and_search(job: ScanJob, index: int, cadence: ObservationCadence, plan: WindowPlan, cfg,
                    scorer: WindowScorer, progress: bool, clock: dict):
    """The window stage (:func:`scan_cadence`) and the per-file search (:func:`search_files`) of
    one cadence: ``(rows, per_file, window seconds, per-file seconds)``.

    They share nothing but the files, so they run side by side: the per-file search in a second
    thread, on its own handles of the six files (a file handle is not shared between threads).
    The kernels release the GIL (``nogil``), so one stage's reading and numpy work fill the gaps of
    the other's parallel kernels, and the whole is close to their total CPU time over the cores
    rather than the sum of their times. Results are those of running them one after the other.
    On a Numba threading layer that is not thread-safe they do run one after the other."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    stop = threading.Event()     # the window stage failed (or was interrupted): stop between files

    def files_alone(own_handles: bool):
        start = time.perf_counter()
        source = open_cadence(job.cadences[index], job.names[index]) if own_handles else cadence
        try:
            return search_files(source, plan, job.settings, stop), time.perf_counter() - start
        finally:
            if own_handles:
                source.close()

    if not concurrent_ok():
        start = time.perf_counter()
        rows = scan_cadence(cadence, plan, cfg, scorer, progress, clock)
        seconds = time.perf_counter() - start
        per_file, file_seconds = files_alone(own_handles=False)
        return rows, per_file, seconds, file_seconds
    with ThreadPoolExecutor(1, thread_name_prefix="per-file-search") as pool:
        future = pool.submit(files_alone, True)
        start = time.perf_counter()
        try:
            rows = scan_cadence(cadence, plan, cfg, scorer, progress, clock)
        except BaseException:
            stop.set()
            raise
        seconds = time.perf_counter() - start
        per_file, file_seconds = future.result()
    return rows, per_file, seconds, file_seconds


def search_files(cadence: ObservationCadence, plan: WindowPlan, settings: ScanSettings,
                 stop=None) -> list[list]:
    """The six files' hits of the per-file search (``tfseti.scan.filehits``), in file order.
    ``stop`` (a ``threading.Event``): when set, the search ends before the next file, raising."""
    from tfseti.scan.filehits import search_cadence_file

    out = []
    for p in range(len(cadence.files)):
        if stop is not None and stop.is_set():
            raise RuntimeError(f"{cadence.name}: per-file search stopped (the window stage failed)")
        out.append(search_cadence_file(cadence, p, plan.fine_per_coarse, settings))
    return out


def scan_document(job: ScanJob, model_shape, runner: str) -> dict:
    import tfseti

    return {"tfseti": getattr(tfseti, "__version__", "unknown"), "runner": runner,
            "settings": job.settings.to_dict(), "models": job.models,
            "model_input": list(model_shape) if model_shape else None,
            "width": model_shape[2] if model_shape else job.width,
            "cadences": [{"name": n, "files": p} for n, p in zip(job.names, job.cadences)]}


def prepare(job: ScanJob, model_shape, runner: str, log=print) -> dict[int, dict | None]:
    """Every check of the job against ``OUT`` before anything there is written, then
    ``scan.json``: the earlier scan.json's settings and models must be this run's, every cadence
    must open and plan, and a complete cadence folder must be of this scan (its fingerprint).
    ``scan.json`` then lists the earlier cadences and this run's (:func:`outputs.merged_cadences`).
    Returns ``{cadence index: the cadence.json of its complete folder, or None}``."""
    width = model_shape[2] if model_shape else job.width
    doc = scan_document(job, model_shape, runner)
    done = {}
    for index in range(len(job.cadences)):  # a cadence folder of another scan is named first
        cadence, _, _, info = plan_cadence(job, index, width)
        cadence.close()
        done[index] = outputs.done_info(job.out, info["name"], info["fingerprint"])
    earlier = outputs.read_scan_json(job.out)
    if earlier is not None:  # other cadences, other settings: hits.csv would mix two searches
        outputs.check_same_scan(job.out, earlier, doc)
    doc["cadences"] = outputs.merged_cadences(earlier, doc)
    log(f"scan.json: {outputs.write_scan_json(job.out, doc)}")
    return done


def finish(job: ScanJob, log=print) -> tuple[str, list[dict]]:
    """Merge the hits and events of every complete cadence listed in ``OUT/scan.json`` (this run's
    and the earlier runs') into ``OUT/hits.csv`` and ``OUT/events.csv``, and write the top-N page."""
    from tfseti.scan.page import write_page

    doc = outputs.read_scan_json(job.out) or {}
    listed = doc.get("cadences") or [{"name": n, "files": p} for n, p in zip(job.names, job.cadences)]
    width = doc.get("width") or job.width
    names, missing = outputs.complete_cadences(job.out, listed, job.models,
                                               job.settings.to_dict(), width)
    for name in missing:
        log(f"{name}: listed in {outputs.SCAN_JSON} but not complete in "
            f"{outputs.cadence_dir(job.out, name)}; not in hits.csv (rerun with it to finish it)")
    path, hits = outputs.merge_hits(job.out, names)
    log(f"hits: {path} ({len(hits)} over {len(names)} cadence(s))")
    events_path, count = outputs.merge_events(job.out, names)
    log(f"events: {events_path} ({count} row(s), filter level {job.settings.event_filter})")
    if job.settings.top:
        log(f"page: {write_page(job.out, hits[:job.settings.top])}")
    return path, hits


def run_local(job: ScanJob, progress: bool = False, log=print) -> tuple[str, list[dict]]:
    """Scan every cadence of ``job`` here, skipping complete ones (resume), then merge: in this
    process (:func:`scan_and_search`), or on ``job.workers`` worker processes
    (``tfseti.scan.workers``)."""
    models, model_shape = load_models(job.models)
    width = model_shape[2] if model_shape else job.width
    for m in models:
        log(f"model: {m.describe()}")
    done = prepare(job, model_shape, "local", log)
    scorer = WindowScorer(models, job.settings, model_shape)
    executor = None
    if job.workers > 1:
        from tfseti.scan import workers

        executor = workers.pool(job, width, job.workers)
        log(f"{job.workers} worker processes, {workers.threads_per_worker(job.workers)} Numba "
            f"thread(s) each")
    kernels_loaded = False
    try:
        for index in range(len(job.cadences)):
            cadence, plan, cfg, info = plan_cadence(job, index, width)
            try:
                log(describe(info))
                for note in cadence.notes:
                    log(f"  note: {note}")
                if done[index] is not None:
                    log(f"  complete in {outputs.cadence_dir(job.out, info['name'])}: skipped")
                    continue
                if executor is None and not kernels_loaded:
                    log(f"  kernels loaded in {load_kernels(cadence, plan, cfg, job.settings):.1f} s "
                        f"(Numba's compiled code, once per process; not in the times below)")
                    kernels_loaded = True
                _scan_one(job, index, cadence, plan, cfg, info, scorer, executor, progress, log)
            finally:
                cadence.close()
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
    return finish(job, log)


def _scan_one(job: ScanJob, index: int, cadence: ObservationCadence, plan: WindowPlan, cfg,
              info: dict, scorer: WindowScorer, executor, progress: bool, log) -> None:
    """One cadence searched (here or on the workers), its folder written, its lines logged."""
    start, cpu = time.perf_counter(), time.process_time()
    clock: dict = {}
    if executor is None:
        rows, per_file, seconds, file_seconds = scan_and_search(
            job, index, cadence, plan, cfg, scorer, progress, clock)
    else:
        from tfseti.scan import workers

        bar = progress_bar(cadence, plan, progress)
        rows, per_file, seconds = workers.scan_cadence(executor, job, index, cadence, plan, bar)
        file_seconds = None
        if bar is not None:
            bar.close()
    both, cpu = time.perf_counter() - start, time.process_time() - cpu
    # NaN/Inf samples were replaced (tfseti.scan.windows): say so, per file.
    blanked = nonfinite_notes(info["paths"], rows)
    for note in blanked:
        log(f"  note: {note}")
    info = {**info, "notes": [*info["notes"], *blanked]}
    folder = outputs.write_cadence(job.out, info, rows, per_file)
    hits = sum(r["hit"] for r in rows)
    found = sum(r["hit"] and r["candidate"] == r["window"] for r in rows)
    mb = info["input_bytes"] / 1e6
    log(f"  {len(rows)} windows in {seconds:.1f} s ({len(rows) / seconds:.1f} windows/s, "
        f"{mb / seconds:.1f} MB/s): {hits} hit window(s), {found} candidate(s) -> {folder}")
    if clock:
        log("  of which " + ", ".join(f"{k} {v:.1f} s" for k, v in clock.items())
            + ("" if scorer.models else " (the window rows; no model)"))
    searched = (f"{'/'.join(str(len(h)) for h in per_file)} .dat hit(s) (SNR >= "
                f"{job.settings.hit_snr:g}) -> {outputs.EVENTS_CSV}")
    if file_seconds is None:
        log(f"  per-file search on the workers, with the windows: {searched}")
        log(f"  both searches in {both:.2f} s ({mb / both:.1f} MB/s, {job.workers} workers)")
    else:
        log(f"  per-file search in {file_seconds:.2f} s: {searched}")
        log(f"  both searches in {both:.2f} s ({mb / both:.1f} MB/s"
            f"{', side by side' if concurrent_ok() else ''}; {cpu:.1f} s of CPU time)")
