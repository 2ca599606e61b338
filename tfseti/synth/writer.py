"""Write a synthetic dataset in the exact Kaggle layout, in parallel, reproducibly.

Determinism: the parent draws the ids and labels from ``SeedSequence([seed])``; cadence ``i`` of a
split draws everything else from ``SeedSequence([seed, split_code, i])``. No global RNG is used,
so the bytes written do not depend on the number of workers or on the chunking.

With ``shared_background=K`` (K >= 2) the cadences of a split are cut, K at a time in index order,
from shared wider observations (``tfseti.synth.shared``): group ``g`` of a split draws its
observation from ``SeedSequence([seed, 100 + split_code, g])``, and cadence ``i`` its offset and
needle from ``SeedSequence([seed, split_code, i])``; a worker writes a whole group.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tfseti.console import show_progress
from tfseti.io.kaggle import (CADENCE_DTYPE, CADENCE_SHAPE, LABEL_FILES, TRUTH_FILE,
                              cadence_relpath, save_cadence)
from tfseti.synth.cadence import CadenceConfig, describe_rfi, draw_cadence_spec, make_cadence
from tfseti.synth.parameters import FAMILY_NAMES
from tfseti.synth.shared import draw_observation_spec, draw_snippet_spec, make_snippets

SPLIT_CODES = {"train": 0, "test": 1}
SUBMISSION_PLACEHOLDER = 0.5
ID_CHARS = 15
TRUTH_COLUMNS = ["id", "target", "split", "index", "family", "snr", "f_start", "drift_rate", "width",
                 "f_profile", "period", "amplitude", "pulse_width", "missing_on_panel", "slew_s",
                 "n_rfi", "rfi", "group", "channel_offset", "spec"]
GROUP_SEED_OFFSET = 100  # group seeds use 100 + split code, never a split code itself


@dataclass
class SynthSummary:
    """What ``generate_dataset`` wrote and how fast."""

    out: str
    n_train: int
    n_test: int
    n_positive_train: int
    n_positive_test: int
    families: dict = field(default_factory=dict)
    seconds: float = 0.0
    workers: int = 1

    @property
    def cadences_per_s(self) -> float:
        return (self.n_train + self.n_test) / self.seconds if self.seconds > 0 else float("inf")

    def __str__(self) -> str:
        return (f"wrote {self.n_train} train ({self.n_positive_train} positive) + {self.n_test} test "
                f"({self.n_positive_test} positive) cadences to {self.out} in {self.seconds:.1f} s: "
                f"{self.cadences_per_s:.1f} cadences/s with {self.workers} worker(s)")


def make_ids(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` unique ids of 15 lowercase hex characters, like the relaunched competition's."""
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < n:
        for value in rng.integers(0, 16**ID_CHARS, size=n - len(ids), dtype=np.int64):
            cid = f"{int(value):0{ID_CHARS}x}"
            if cid not in seen:
                seen.add(cid)
                ids.append(cid)
    return ids


def make_targets(rng: np.random.Generator, n: int, positive_rate: float) -> np.ndarray:
    """Exactly ``round(positive_rate * n)`` ones, in random positions."""
    targets = np.zeros(n, dtype=np.int64)
    targets[: int(round(positive_rate * n))] = 1
    rng.shuffle(targets)
    return targets


def write_csv_atomic(frame: pd.DataFrame, path: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


def _truth_row(split: str, index: int, cadence_id: str, spec, group: int = -1) -> dict:
    """One truth.csv row; ``spec`` is a ``CadenceSpec`` or a ``SharedCadenceSpec`` (then ``group``
    is its observation's id, ``channel_offset`` its first channel there, and slew/RFI those of the
    observation, RFI channels counted in the observation)."""
    shared = hasattr(spec, "observation")
    background = spec.observation if shared else spec
    needle = spec.needle
    shape = needle.shape if needle is not None else None
    return {
        "id": cadence_id, "target": spec.target, "split": split, "index": index,
        "family": shape.family if shape else "",
        "snr": needle.snr if needle else np.nan,
        "f_start": needle.f_start if needle else np.nan,
        "drift_rate": shape.drift_rate if shape else np.nan,
        "width": shape.width if shape else np.nan,
        "f_profile": shape.f_profile if shape else "",
        "period": shape.period if shape else np.nan,
        "amplitude": shape.amplitude if shape else np.nan,
        "pulse_width": shape.pulse_width if shape else np.nan,
        "missing_on_panel": needle.missing_on_panel if needle else -1,
        "slew_s": background.slew,
        "n_rfi": len(background.rfi),
        "rfi": ";".join(describe_rfi(rfi) for rfi in background.rfi),
        "group": group,
        "channel_offset": spec.offset if shared else -1,
        "spec": spec.to_json(),
    }


def _write_one(job) -> dict:
    """Worker: draw, build and write one cadence; return its truth row."""
    out, split, index, cadence_id, target, seed, config = job
    rng = np.random.default_rng(np.random.SeedSequence([seed, SPLIT_CODES[split], index]))
    spec = draw_cadence_spec(rng, int(target), config)
    array = make_cadence(spec)
    assert array.shape == CADENCE_SHAPE and array.dtype == CADENCE_DTYPE, (array.shape, array.dtype)
    save_cadence(os.path.join(out, *cadence_relpath(split, cadence_id).split("/")), array)
    return _truth_row(split, index, cadence_id, spec)


def _write_group(job) -> list[dict]:
    """Worker: draw one shared observation and its snippets, build and write them; truth rows."""
    out, split, group, members, seed, config, width_factor = job
    group_rng = np.random.default_rng(np.random.SeedSequence([seed, GROUP_SEED_OFFSET + SPLIT_CODES[split], group]))
    observation = draw_observation_spec(group_rng, config, width_factor)
    specs = []
    for index, _, target in members:
        rng = np.random.default_rng(np.random.SeedSequence([seed, SPLIT_CODES[split], index]))
        specs.append(draw_snippet_spec(rng, observation, int(target), config))
    rows = []
    for (index, cadence_id, _), spec, array in zip(members, specs, make_snippets(observation, specs)):
        assert array.shape == CADENCE_SHAPE and array.dtype == CADENCE_DTYPE, (array.shape, array.dtype)
        save_cadence(os.path.join(out, *cadence_relpath(split, cadence_id).split("/")), array)
        rows.append(_truth_row(split, index, cadence_id, spec, group=group))
    return rows


def _pool_context():
    """``fork`` (workers inherit the imported setigen: instant start, and no re-import of the
    caller's ``__main__``, which under forkserver/spawn re-runs unguarded scripts) unless
    TensorFlow is loaded: its threads make fork unsafe, so then ``forkserver``, whose server
    imports setigen once and forks clean workers from it."""
    if "tensorflow" not in sys.modules:
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tfseti.synth.cadence"])
    return context


def _prepare_out(out: str, overwrite: bool) -> None:
    owned = ["train", "test", LABEL_FILES["train"], LABEL_FILES["test"], TRUTH_FILE]
    present = [name for name in owned if os.path.exists(os.path.join(out, name))]
    if present and not overwrite:
        raise FileExistsError(f"{out}: already holds {', '.join(present)}; pass overwrite=True "
                              f"(CLI: --overwrite) to replace them, or choose an empty folder")
    for name in present:
        path = os.path.join(out, name)
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    for split in SPLIT_CODES:
        for char in "0123456789abcdef":
            os.makedirs(os.path.join(out, split, char), exist_ok=True)


def generate_dataset(out, n_train: int, n_test: int, positive_rate: float = 0.1,
                     snr: tuple[float, float] = (10.0, 40.0), families=FAMILY_NAMES, seed: int = 0,
                     workers: int = 1, progress: bool = True, missing_prob: float = 0.2,
                     rfi: bool = True, overwrite: bool = False,
                     config: CadenceConfig | None = None, shared_background: int = 1,
                     shared_width: int = 2) -> SynthSummary:
    """Write ``n_train`` + ``n_test`` synthetic cadences to ``out`` in the Kaggle layout.

    Writes ``train/<id[0]>/<id>.npy``, ``test/<id[0]>/<id>.npy``, ``train_labels.csv`` (id,target),
    ``sample_submission.csv`` (id,target = 0.5) and ``truth.csv`` (every parameter of every
    cadence, test included, for analysis only; its ``spec`` column rebuilds the cadence with
    ``CadenceSpec.from_json`` + ``make_cadence``). Both splits have the same positive rate.
    ``config`` (a ``CadenceConfig``) replaces snr/families/missing_prob/rfi when given.

    ``shared_background=K`` (>= 2) cuts the cadences of each split, K at a time, from shared
    observations ``shared_width`` x 256 channels wide at random channel offsets
    (``tfseti.synth.shared``); truth.csv's ``group`` (observation id, numbered over both splits)
    and ``channel_offset`` say where each came from, and its ``spec`` is then a
    ``SharedCadenceSpec`` (``make_shared_cadence`` rebuilds it). ``1`` (default): independent
    cadences, ``group`` and ``channel_offset`` -1.
    """
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    if n_train + n_test == 0:
        raise ValueError("n_train + n_test must be at least 1")
    if not 0.0 <= positive_rate <= 1.0:
        raise ValueError(f"positive_rate must be in [0, 1], got {positive_rate}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    for name, value in (("shared_background", shared_background), ("shared_width", shared_width)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if config is None:
        config = CadenceConfig(snr=tuple(snr), families=tuple(families), missing_prob=missing_prob, rfi=rfi)
    out = os.fspath(out)
    _prepare_out(out, overwrite)

    rng = np.random.default_rng(np.random.SeedSequence([seed]))
    ids = make_ids(rng, n_train + n_test)
    split_ids = {"train": ids[:n_train], "test": ids[n_train:]}
    jobs = []
    group = 0
    for split, n in (("train", n_train), ("test", n_test)):
        targets = make_targets(rng, n, positive_rate)
        if shared_background == 1:
            jobs += [(out, split, i, cid, int(t), seed, config)
                     for i, (cid, t) in enumerate(zip(split_ids[split], targets))]
            continue
        members = [(i, cid, int(t)) for i, (cid, t) in enumerate(zip(split_ids[split], targets))]
        for start in range(0, n, shared_background):
            jobs.append((out, split, group, members[start:start + shared_background], seed, config,
                         int(shared_width)))
            group += 1
    worker = _write_one if shared_background == 1 else _write_group
    n_cadences = n_train + n_test

    from tqdm.auto import tqdm

    start = time.perf_counter()
    bar = tqdm(total=n_cadences, desc="synth", unit="cadence", disable=not show_progress(progress))
    rows = []

    def collect(result):
        new = result if isinstance(result, list) else [result]
        rows.extend(new)
        bar.update(len(new))

    try:
        if workers == 1:
            for job in jobs:
                collect(worker(job))
        else:
            chunksize = max(1, min(16, len(jobs) // (4 * workers)))
            with _pool_context().Pool(workers) as pool:
                for result in pool.imap(worker, jobs, chunksize=chunksize):
                    collect(result)
    finally:
        bar.close()
    seconds = time.perf_counter() - start

    truth = pd.DataFrame(rows, columns=TRUTH_COLUMNS).sort_values(["split", "id"], ignore_index=True)
    train = truth[truth.split == "train"]
    test = truth[truth.split == "test"]
    # Kaggle's csv files list ids in sorted order.
    write_csv_atomic(train[["id", "target"]], os.path.join(out, LABEL_FILES["train"]))
    write_csv_atomic(pd.DataFrame({"id": test["id"], "target": SUBMISSION_PLACEHOLDER}),
                     os.path.join(out, LABEL_FILES["test"]))
    write_csv_atomic(truth, os.path.join(out, TRUTH_FILE))
    counts = truth[truth.target == 1].family.value_counts()
    return SynthSummary(out=out, n_train=n_train, n_test=n_test,
                        n_positive_train=int(train.target.sum()), n_positive_test=int(test.target.sum()),
                        families={name: int(counts.get(name, 0)) for name in config.families},
                        seconds=seconds, workers=int(workers))
