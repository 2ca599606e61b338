"""Check a Kaggle-layout folder (local or any fsspec URL) file by file before anything uses it.

    python -m tfseti.data.validate DIR [--split train|test|train_old|test_old|all]
                                       [--max-errors N] [--workers N] [--no-progress]

Every split present is checked: its label csv (present, parseable, well-formed unique ids, label
values) and every file under its folder (name, subfolder, a row in the csv, readable ``.npy``
without unpickling, dtype float16, shape (6, 273, 256), only finite values). Each problem is one
line naming the file (or csv line) and what was expected; the exit code is 1 when any exists.
Files are read by a thread pool (the real data is 100k files, ~84 GB, often on GCS).

The Python API, ``validate(root, ...) -> ValidationReport``, is what the CLI and ``make demo`` use.
Reading goes through ``tfseti.io.kaggle``, the one reader of the layout.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from tfseti.command import common_flags, run_command, workers_flag
from tfseti.console import show_progress
from tfseti.io import fs as fsutil
from tfseti.io.kaggle import (CADENCE_DTYPE, CADENCE_SHAPE, ID_EXPECTATION, OLD_SPLITS, CadenceError,
                              KaggleDataset, cadence_problems, cadence_relpath, plain, split_root,
                              valid_id)

MAIN_SPLITS = ("train", "test")
SPLIT_CHOICES = MAIN_SPLITS + OLD_SPLITS + ("all",)
DEFAULT_WORKERS = 16


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the dataset: where (a file, or a csv and line) and what was expected."""

    location: str
    message: str
    split: str
    kind: str  # csv, id, label, duplicate, missing_file, unlisted_file, layout, content

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


@dataclass
class SplitSummary:
    split: str
    labels_file: str
    csv_rows: int = 0
    files_checked: int = 0
    positives: int = 0
    negatives: int = 0
    labeled: bool = True
    problems: int = 0

    def line(self) -> str:
        text = (f"{self.split}: {self.files_checked} files checked, {self.csv_rows} rows in "
                f"{self.labels_file}")
        if self.labeled:
            text += f" ({self.positives} positive, {self.negatives} negative)"
        return text


@dataclass
class ValidationReport:
    root: str
    problems: list[Problem] = field(default_factory=list)
    splits: list[SplitSummary] = field(default_factory=list)
    stopped_early: bool = False
    max_errors: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary_lines(self) -> list[str]:
        lines = [f"dataset {self.root}"] + [s.line() for s in self.splits]
        if self.ok:
            lines.append("0 problems")
        else:
            per_split = ", ".join(f"{s.split}: {s.problems}" for s in self.splits if s.problems)
            lines.append(f"problems found: {len(self.problems)}" + (f" ({per_split})" if per_split else ""))
        if self.stopped_early:
            plural = "s" if self.max_errors != 1 else ""
            lines.append(f"stopped early after {self.max_errors} problem{plural} (--max-errors "
                         f"{self.max_errors}); the rest of the dataset was not checked")
        return lines


class _StopValidation(Exception):
    """Raised once ``max_errors`` problems are collected."""


class _Collector:
    def __init__(self, report: ValidationReport, on_problem: Callable[[Problem], None] | None):
        self.report = report
        self.on_problem = on_problem
        self.summary: SplitSummary | None = None

    def add(self, location: str, message: str, split: str, kind: str) -> None:
        problem = Problem(location, " ".join(message.split()), split, kind)  # always one line
        self.report.problems.append(problem)
        if self.summary is not None:
            self.summary.problems += 1
        if self.on_problem is not None:
            self.on_problem(problem)
        limit = self.report.max_errors
        if limit is not None and len(self.report.problems) >= limit:
            self.report.stopped_early = True
            raise _StopValidation


def validate(root, split: str = "all", *, max_errors: int | None = None,
             workers: int = DEFAULT_WORKERS, progress: bool = False,
             on_problem: Callable[[Problem], None] | None = None,
             storage_options: dict | None = None) -> ValidationReport:
    """Check every split of a Kaggle-layout folder; returns all problems and per-split counts.

    ``split`` is one split or ``"all"`` (every split present, including ``old_leaky_data/``).
    ``max_errors`` stops after that many problems; ``on_problem`` sees each as it is found.
    """
    if split not in SPLIT_CHOICES:
        raise ValueError(f"split {split!r} is not one of {list(SPLIT_CHOICES)}")
    if max_errors is not None and max_errors < 1:
        raise ValueError(f"max_errors must be >= 1, got {max_errors}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    root = str(root).rstrip("/") or "/"
    report = ValidationReport(root=root, max_errors=max_errors)
    collector = _Collector(report, on_problem)
    try:
        datasets = _datasets(root, split, storage_options, collector)
        for dataset in datasets:
            _validate_split(dataset, collector, workers, progress)
    except _StopValidation:
        pass
    return report


# -- which splits --------------------------------------------------------------------------------
def _datasets(root: str, split: str, storage_options, collector: _Collector) -> list[KaggleDataset]:
    fs, inner = fsutil.url_to_fs(root, **(storage_options or {}))
    if not fs.isdir(inner):
        collector.add(root, "folder not found, expected a Kaggle-layout folder (train/, test/, "
                            "train_labels.csv, sample_submission.csv)", split, "layout")
        return []
    # The old data lives in old_leaky_data/ of the competition folder, or DIR is that folder.
    old_root = split_root(root, OLD_SPLITS[0], storage_options)

    def make(name: str) -> KaggleDataset:
        return KaggleDataset(old_root if name in OLD_SPLITS else root, name, storage_options)

    if split != "all":
        return [make(split)]
    present = [ds for ds in map(make, MAIN_SPLITS + OLD_SPLITS)
               if ds.split_exists() or ds.labels_exist()]
    if not present:
        collector.add(root, "no Kaggle layout found, expected train_labels.csv with train/ "
                            "and/or sample_submission.csv with test/", split, "layout")
    return present


# -- one split -----------------------------------------------------------------------------------
def _validate_split(ds: KaggleDataset, collector: _Collector, workers: int, progress: bool) -> None:
    summary = SplitSummary(ds.split, ds.labels_file, labeled=ds.labeled)
    collector.report.splits.append(summary)
    collector.summary = summary
    csv_ids = _check_labels(ds, summary, collector)  # id -> csv line, None when the csv is unusable
    if not ds.split_exists():
        if csv_ids:
            collector.add(ds.split_path(), f"folder not found, expected the {len(csv_ids)} .npy files "
                                           f"listed in {ds.labels_file}", ds.split, "layout")
        return
    to_read = _check_listing(ds, csv_ids, collector)
    _check_contents(ds, to_read, summary, collector, workers, progress)


def _check_labels(ds: KaggleDataset, summary: SplitSummary, collector: _Collector) -> dict | None:
    import pandas as pd

    try:
        frame = ds.read_labels()
    except (FileNotFoundError, ValueError) as err:
        collector.add(ds.labels_file, _strip_location(str(err), ds.labels_file), ds.split, "csv")
        return None
    summary.csv_rows = len(frame)
    targets = pd.to_numeric(frame["target"], errors="coerce")
    first_line: dict[str, int] = {}
    csv = ds.labels_file
    for index, (cadence_id, raw_target, target) in enumerate(
            zip(frame["id"], frame["target"], targets)):
        line = index + 2  # 1-based, after the header line
        where = f"{csv} line {line}"
        if not isinstance(cadence_id, str) or not cadence_id:
            collector.add(where, f"empty id, {ID_EXPECTATION}", ds.split, "id")
            continue
        if cadence_id in first_line:
            collector.add(where, f"duplicate id {cadence_id} (first on line {first_line[cadence_id]}), "
                                 f"expected each id once", ds.split, "duplicate")
        else:
            first_line[cadence_id] = line
            if not valid_id(cadence_id):
                collector.add(where, f"malformed id {cadence_id!r}, {ID_EXPECTATION}", ds.split, "id")
        if ds.labeled:
            if target == 0 or target == 1:
                if target == 1:
                    summary.positives += 1
                else:
                    summary.negatives += 1
            else:
                collector.add(where, f"target {plain(raw_target)!r} for id {cadence_id}, "
                                     f"expected 0 or 1", ds.split, "label")
        elif not math.isfinite(target):  # NaN also for text that is not a number
            collector.add(where, f"target {plain(raw_target)!r} for id {cadence_id}, expected a "
                                 f"finite number (a probability)", ds.split, "label")
    return first_line


def _strip_location(message: str, location: str) -> str:
    prefix = f"{location}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def _check_listing(ds: KaggleDataset, csv_ids: dict | None, collector: _Collector) -> list[str]:
    """Report misplaced, misnamed and unlisted files and csv ids without a file; returns the
    relative paths of every ``.npy`` file to read."""
    to_read, ids_with_file = [], set()
    correct = f"{ds.split}/<id[0]>/<id>.npy"
    for relpath in ds.walk_files():
        path = ds.split_path(*relpath.split("/"))
        name = relpath.rsplit("/", 1)[-1]
        if not name.endswith(".npy"):
            collector.add(path, f"unexpected file, expected only {correct} files", ds.split, "layout")
            continue
        to_read.append(relpath)
        cadence_id = name[: -len(".npy")]
        ids_with_file.add(cadence_id)
        if not valid_id(cadence_id):
            collector.add(path, f"file name {cadence_id!r} is not a valid id, {ID_EXPECTATION}",
                          ds.split, "id")
            continue
        expected = cadence_relpath(ds.split, cadence_id)
        if f"{ds.split}/{relpath}" != expected:
            collector.add(path, f"in the wrong folder, expected {ds.split_path(cadence_id[0], name)}",
                          ds.split, "layout")
        if csv_ids is not None and cadence_id not in csv_ids:
            collector.add(path, f"no row for id {cadence_id} in {ds.labels_file}, expected every "
                                f"file to be listed there", ds.split, "unlisted_file")
    for cadence_id, line in (csv_ids or {}).items():
        # Ids whose file sits in a wrong folder were reported above, by the file.
        if valid_id(cadence_id) and cadence_id not in ids_with_file:
            collector.add(f"{ds.labels_file} line {line}", f"id {cadence_id} has no file, expected "
                                                           f"{ds.path(cadence_id)}", ds.split,
                          "missing_file")
    return to_read


def _check_contents(ds: KaggleDataset, relpaths: list[str], summary: SplitSummary,
                    collector: _Collector, workers: int, progress: bool) -> None:
    from tqdm import tqdm

    def check(relpath: str) -> tuple[str, list[str]]:
        try:
            array = ds.load_relpath(relpath, check=False)
        except CadenceError as err:
            return relpath, [err.problem]
        return relpath, cadence_problems(array, CADENCE_SHAPE)

    with tqdm(total=len(relpaths), desc=f"validate {ds.split}", unit="file",
              disable=not show_progress(progress), file=sys.stderr, dynamic_ncols=True) as bar:
        for relpath, problems in _ordered_parallel(check, relpaths, workers):
            summary.files_checked += 1
            bar.update(1)
            if problems:
                collector.add(ds.split_path(*relpath.split("/")), "; ".join(problems), ds.split,
                              "content")


def _ordered_parallel(fn, items: Iterable, workers: int) -> Iterator:
    """``map(fn, items)`` on a thread pool, in order, with a bounded read-ahead so that stopping
    early (``--max-errors``) leaves at most a few in-flight reads behind."""
    iterator = iter(items)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="validate") as pool:
        window = deque(pool.submit(fn, item) for item in itertools.islice(iterator, 4 * workers))
        try:
            while window:
                future = window.popleft()
                for item in itertools.islice(iterator, 1):
                    window.append(pool.submit(fn, item))
                yield future.result()
        finally:
            for future in window:
                future.cancel()


# -- CLI -----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tfseti.data.validate",
        parents=[workers_flag("parallel file reads", DEFAULT_WORKERS), common_flags("no_progress")],
        description="Check every file of a Kaggle-layout SETI folder (local path or fsspec URL): "
                    f"{CADENCE_DTYPE} {CADENCE_SHAPE} cadences, finite values, readable .npy files, "
                    "csv rows and files matching, unique well-formed ids, label values.")
    parser.add_argument("root", metavar="DIR", help="Kaggle-layout folder or URL (gs://bucket/seti)")
    parser.add_argument("--split", choices=SPLIT_CHOICES, default="all",
                        help="which split to check (default: every split present)")
    parser.add_argument("--max-errors", type=int, default=None, metavar="N",
                        help="stop after N problems")
    args = parser.parse_args(argv)
    if args.max_errors is not None and args.max_errors < 1:
        parser.error(f"--max-errors must be >= 1, got {args.max_errors}")

    from tqdm import tqdm

    def show(problem: Problem) -> None:
        tqdm.write(str(problem), file=sys.stdout)  # keeps the progress bar intact

    report = validate(args.root, args.split, max_errors=args.max_errors, workers=args.workers,
                      progress=not args.no_progress, on_problem=show)
    print("\n".join(report.summary_lines()))
    return 0 if report.ok else 1


if __name__ == "__main__":
    run_command(main)
