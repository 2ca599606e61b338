"""The local scan: every cadence's windows streamed through the scorer, one cadence folder at a time.

Set-up shared with the Beam runner (``tfseti.scan.beam``): :func:`load_models` (SavedModels of one
input shape), :func:`plan_cadence` (open and check the six files, plan the windows, make the
classical search's config, the fingerprint), :func:`prepare` (every check against ``OUT``, then
``scan.json``; a refused scan writes nothing) and :func:`finish` (merge the hits and the events of
every complete cadence scanned into ``OUT``, write the page). A cadence is its windows streamed
through the scorer, then each of its six files searched alone (``tfseti.scan.filehits``: the
``.dat`` files and the events), then its folder written. The caller holds ``OUT``'s lock
(``tfseti.io.folder_lock``; ``python -m tfseti.scan`` takes it).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

from tfseti.io.observations import ObservationCadence, open_cadence
from tfseti.scan import outputs
from tfseti.scan.page import PAGE, PNG_DIR
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

    def __post_init__(self):
        if not self.cadences:
            raise ValueError("no cadence to scan (--cadence or --cadence-list)")
        if not self.names:
            self.names = unique_names(self.cadences)


# Names a cadence folder may not take: the scan's own top-level files (OUT/hits.csv next to
# OUT/<cadence>/ ...). A first file named ``hits.csv.h5`` made the folder OUT/hits.csv.
RESERVED_NAMES = (outputs.HITS_CSV, outputs.EVENTS_CSV, outputs.SCAN_JSON, PAGE, PNG_DIR)


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


def describe(info: dict) -> str:
    mb = info["input_bytes"] / 1e6
    band = sorted((info["fch1"], info["fch1"] + info["nchans"] * info["foff"]))
    return (f"{info['name']}: {info['nchans']} channels {band[0]:.6f}-{band[1]:.6f} MHz, "
            f"{info['rows']} x {info['tsamp']:g} s integrations per file, slew {info['gap_rows']} "
            f"integrations, {info['windows']} windows, {mb:.1f} MB")


def scan_cadence(cadence: ObservationCadence, plan: WindowPlan, cfg, scorer: WindowScorer,
                 progress: bool = False, clock: dict | None = None) -> list[dict]:
    """Window-table rows of every window of a cadence, streamed: per read group, the band search
    over its own channels, then its windows in batches through the models. ``clock`` (a dict)
    gets the seconds spent reading, in the band search and in the models (with the rows)."""
    from tfseti.dedoppler.band_search import halo

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(plan), unit="window", desc=cadence.name, file=sys.stderr)
    rows = []
    size = scorer.settings.batch_size
    reach = halo(cfg, cadence.rows)
    clock = {} if clock is None else clock
    for key in ("read", "band search", "model"):
        clock.setdefault(key, 0.0)
    for group in read_groups(plan, cadence.rows, scorer.settings.read_mb, size):
        start = time.perf_counter()
        data = read_group(cadence, plan, group, reach, windows=bool(scorer.models))
        middle = time.perf_counter()
        classical = scorer.classical(plan, scorer.band(cfg, plan, data), data.indices)
        end = time.perf_counter()
        clock["read"] += middle - start
        clock["band search"] += end - middle
        for i in range(0, len(data.indices), size):
            native = None if data.native is None else data.native[i:i + size]
            rows.extend(scorer.rows(cadence, plan, data.indices[i:i + size], native,
                                    classical[i:i + size]))
            if bar is not None:
                bar.update(len(data.indices[i:i + size]))
        clock["model"] += time.perf_counter() - end
    if bar is not None:
        bar.close()
    return rows


def search_files(cadence: ObservationCadence, plan: WindowPlan, settings: ScanSettings) -> list[list]:
    """The six files' hits of the per-file search (``tfseti.scan.filehits``), in file order."""
    from tfseti.scan.filehits import search_cadence_file

    return [search_cadence_file(cadence, p, plan.fine_per_coarse, settings)
            for p in range(len(cadence.files))]


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
    """Scan every cadence of ``job`` here, skipping complete ones (resume), then merge."""
    models, model_shape = load_models(job.models)
    width = model_shape[2] if model_shape else job.width
    for m in models:
        log(f"model: {m.describe()}")
    done = prepare(job, model_shape, "local", log)
    scorer = WindowScorer(models, job.settings, model_shape)
    for index in range(len(job.cadences)):
        cadence, plan, cfg, info = plan_cadence(job, index, width)
        try:
            log(describe(info))
            for note in cadence.notes:
                log(f"  note: {note}")
            if done[index] is not None:
                log(f"  complete in {outputs.cadence_dir(job.out, info['name'])}: skipped")
                continue
            start = time.perf_counter()
            clock: dict = {}
            rows = scan_cadence(cadence, plan, cfg, scorer, progress, clock)
            seconds = time.perf_counter() - start
            start = time.perf_counter()
            per_file = search_files(cadence, plan, job.settings)
            file_seconds = time.perf_counter() - start
            # NaN/Inf samples were replaced (tfseti.scan.windows): say so, per file.
            blanked = nonfinite_notes(info["paths"], rows)
            for note in blanked:
                log(f"  note: {note}")
            info = {**info, "notes": [*info["notes"], *blanked]}
            folder = outputs.write_cadence(job.out, info, rows, per_file)
            hits = sum(r["hit"] for r in rows)
            found = sum(r["hit"] and r["candidate"] == r["window"] for r in rows)
            log(f"  {len(rows)} windows in {seconds:.1f} s ({len(rows) / seconds:.1f} windows/s, "
                f"{info['input_bytes'] / 1e6 / seconds:.1f} MB/s): {hits} hit window(s), "
                f"{found} candidate(s) -> {folder}")
            log("  of which " + ", ".join(f"{k} {v:.1f} s" for k, v in clock.items())
                + ("" if scorer.models else " (the window rows; no model)"))
            log(f"  per-file search in {file_seconds:.1f} s: "
                f"{'/'.join(str(len(h)) for h in per_file)} .dat hit(s) (SNR >= "
                f"{job.settings.hit_snr:g}) -> {outputs.EVENTS_CSV}")
        finally:
            cadence.close()
    return finish(job, log)
