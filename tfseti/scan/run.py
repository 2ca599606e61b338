"""The local scan: every cadence's windows streamed through the scorer, one cadence folder at a time.

Set-up shared with the Beam runner (``tfseti.scan.beam``): :func:`load_models` (SavedModels of one
input shape), :func:`plan_cadence` (open and check the six files, plan the windows, make the
classical search's config, the fingerprint) and :func:`finish` (merge the cadences' hits, write
the page).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

from tfseti.io.observations import ObservationCadence, open_cadence
from tfseti.scan import outputs
from tfseti.scan.scoring import WindowScorer, classical_config
from tfseti.scan.settings import ScanSettings
from tfseti.scan.stream import batches, read_groups
from tfseti.scan.windows import WindowPlan, fine_per_coarse_for

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


def unique_names(cadences: list[list[str]]) -> list[str]:
    """A folder name per cadence: its first file's stem, made unique with ``_2``, ``_3``..."""
    names, seen = [], {}
    for paths in cadences:
        stem = os.path.splitext(os.path.basename(paths[0]))[0]
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}_{seen[stem]}")
    return names


def load_models(paths: list[str]) -> tuple[list, tuple[int, int, int] | None]:
    """Loaded SavedModels and the ``(P, rows, channels)`` they all take (None without models)."""
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
                 progress: bool = False) -> list[dict]:
    """Window-table rows of every window of a cadence, streamed."""
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(plan), unit="window", desc=cadence.name, file=sys.stderr)
    rows = []
    groups = read_groups(plan, cadence.rows, scorer.settings.read_mb, scorer.settings.batch_size)
    for indices, native in batches(cadence, plan, groups, scorer.settings.batch_size):
        rows.extend(scorer.rows(cadence, cfg, plan, indices, native))
        if bar is not None:
            bar.update(len(indices))
    if bar is not None:
        bar.close()
    return rows


def scan_document(job: ScanJob, model_shape, runner: str) -> dict:
    import tfseti

    return {"tfseti": getattr(tfseti, "__version__", "unknown"), "runner": runner,
            "settings": job.settings.to_dict(), "models": job.models,
            "model_input": list(model_shape) if model_shape else None,
            "width": model_shape[2] if model_shape else job.width,
            "cadences": [{"name": n, "files": p} for n, p in zip(job.names, job.cadences)]}


def finish(job: ScanJob, log=print) -> tuple[str, list[dict]]:
    """Merge the cadences' hits into ``OUT/hits.csv`` and write the top-N page."""
    from tfseti.scan.page import write_page

    path, hits = outputs.merge_hits(job.out, job.names)
    log(f"hits: {path} ({len(hits)} over {len(job.names)} cadence(s))")
    if job.settings.top:
        log(f"page: {write_page(job.out, hits[:job.settings.top])}")
    return path, hits


def run_local(job: ScanJob, progress: bool = False, log=print) -> tuple[str, list[dict]]:
    """Scan every cadence of ``job`` here, skipping complete ones (resume), then merge."""
    models, model_shape = load_models(job.models)
    width = model_shape[2] if model_shape else job.width
    for m in models:
        log(f"model: {m.describe()}")
    log(f"scan.json: {outputs.write_scan_json(job.out, scan_document(job, model_shape, 'local'))}")
    scorer = WindowScorer(models, job.settings, model_shape)
    for index in range(len(job.cadences)):
        cadence, plan, cfg, info = plan_cadence(job, index, width)
        try:
            log(describe(info))
            for note in cadence.notes:
                log(f"  note: {note}")
            if outputs.done_info(job.out, info["name"], info["fingerprint"]) is not None:
                log(f"  complete in {outputs.cadence_dir(job.out, info['name'])}: skipped")
                continue
            start = time.perf_counter()
            rows = scan_cadence(cadence, plan, cfg, scorer, progress)
            seconds = time.perf_counter() - start
            folder = outputs.write_cadence(job.out, info, rows)
            hits = sum(r["hit"] for r in rows)
            log(f"  {len(rows)} windows in {seconds:.1f} s ({len(rows) / seconds:.1f} windows/s, "
                f"{info['input_bytes'] / 1e6 / seconds:.1f} MB/s): {hits} hit(s) -> {folder}")
        finally:
            cadence.close()
    return finish(job, log)
