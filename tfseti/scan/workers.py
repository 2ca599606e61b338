"""``python -m tfseti.scan --workers N``: the local scan's work spread over N worker processes.

The units are those of the Beam runner (``tfseti.scan.beam``): a cadence's *read groups*
(``tfseti.scan.stream.read_groups``: the group read, the band search over its own channels, its
windows through the models; :func:`tfseti.scan.run.group_rows`) and its six files' *coarse
channels*, each searched alone (``tfseti.scan.filehits``). Every unit of a cadence is queued at
once, the coarse channels first (they are the larger units, so the queue ends on small ones),
and the results are put back in window and file order, so the cadence folder is byte-identical
to the one process's (tested). Without ``--workers`` (or with 1) the scan runs in this process,
the window stage and the per-file search side by side (``tfseti.scan.run.scan_and_search``).

Each worker is a fresh interpreter (``spawn``: a forked copy of a process whose OpenMP threads
have run is not safe), opens the files itself, and runs its Numba kernels on ``cores / N``
threads, so N workers do not oversubscribe the machine. With ``--model`` each worker loads the
models too: memory grows with N (about one TensorFlow process each). What it buys: the work that
is not inside a parallel kernel (reading, numpy's medians of the cleaning, the window rows, the
models) runs N at a time; on a many-core host scanning files of many coarse channels that is most
of the time. A worker's error stops the scan with that error; no cadence folder is written.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

# One process's state: the job, its opened cadences and its scorer (a worker runs one job).
_STATE: dict = {}


def _start(job, width: int, threads: int) -> None:
    """A worker's initializer: its Numba threads, and the job it serves."""
    import numba

    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    _STATE.update(job=job, width=width, cache={}, scorer=None)


def _scorer():
    if _STATE["scorer"] is None:
        from tfseti.scan.run import load_models
        from tfseti.scan.scoring import WindowScorer

        models, shape = load_models(_STATE["job"].models)
        _STATE["scorer"] = WindowScorer(models, _STATE["job"].settings, shape)
    return _STATE["scorer"]


def _group(index: int, group: tuple[int, int]) -> list[dict]:
    """The window rows of one read group of cadence ``index``."""
    from tfseti.scan.run import group_rows, opened

    cadence, plan, cfg, _ = opened(_STATE["job"], _STATE["width"], _STATE["cache"], index)
    return group_rows(cadence, plan, cfg, _scorer(), group, {})


def _coarse(index: int, p: int, coarse: int) -> list:
    """The hits of coarse channel ``coarse`` of file ``p`` of cadence ``index``."""
    from tfseti.scan.filehits import search_cadence_file
    from tfseti.scan.run import opened

    job = _STATE["job"]
    cadence, plan, _, _ = opened(job, _STATE["width"], _STATE["cache"], index)
    return search_cadence_file(cadence, p, plan.fine_per_coarse, job.settings, coarse)


def threads_per_worker(workers: int) -> int:
    """Numba threads for each of ``workers`` processes: this machine's cores shared out."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // workers)


def pool(job, width: int, workers: int) -> ProcessPoolExecutor:
    """The worker processes of a scan (each started on its first unit of work)."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start, initargs=(job, width, threads_per_worker(workers)))


def scan_cadence(executor: ProcessPoolExecutor, job, index: int, cadence, plan, bar=None):
    """``(rows, per_file, seconds)`` of cadence ``index`` (open, planned as ``plan``) on the
    workers: the window rows in window order, each file's hits in ``.dat`` order (coarse channel
    by coarse channel), and the wall seconds of it all."""
    from tfseti.scan.filehits import coarse_ranges
    from tfseti.scan.stream import read_groups

    start = time.perf_counter()
    s = job.settings
    coarse = len(coarse_ranges(cadence.nchans, plan.fine_per_coarse))
    files = {(p, c): executor.submit(_coarse, index, p, c)
             for p in range(len(cadence.files)) for c in range(coarse)}
    groups = [executor.submit(_group, index, g)
              for g in read_groups(plan, cadence.rows, s.read_mb, s.batch_size)]
    pending = [*files.values(), *groups]
    windows = set(groups)
    try:
        for future in as_completed(pending):
            part = future.result()      # a failed unit stops the scan now, with its error
            if bar is not None and future in windows:
                bar.update(len(part))
    except BaseException:
        for future in pending:
            future.cancel()
        raise
    rows = [row for future in groups for row in future.result()]
    per_file = [[hit for c in range(coarse) for hit in files[(p, c)].result()]
                for p in range(len(cadence.files))]
    return rows, per_file, time.perf_counter() - start
