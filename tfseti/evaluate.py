"""Scoring against a synthetic truth, one way for the whole project: the demo's test AUC, the
report's AUC by needle family and SNR, the noisy-student loop's unlabelled AUC and every
benchmark's table.

* ``read_truth(path, split=...)``: ``truth.csv`` as ``python -m tfseti.synth`` writes it (``id,
  target, split, index, family, snr, ...``), local or a URL, the rows of one split; every error
  (no file, not a csv, a missing column, a target other than 0/1, an id twice) names the file.
* ``align_scores`` / ``read_scores``: a submission (or any ``id, <column>`` table) in the truth's
  row order; an id of the truth missing from it, an id it has that the truth lacks, an id twice,
  a missing column or a non-finite score is an ``EvaluationError`` naming the table.
* ``compare(truth, scores, model=..., n_boot=..., seed=...)``: per group (overall, every needle
  family, every SNR group of the positives; each group's positives against *all* negatives), the
  AUC of every scorer with its bootstrap interval, and the difference model - baseline with its
  interval. The bootstrap is paired and stratified: each resample draws the group's positives
  and the negatives with replacement, separately (so every resample has both classes), and every
  scorer is scored on the same draw, so the difference's interval leaves out the noise the
  scorers share. Seeded: the same seed gives the same intervals.

An AUC with no positive or no negative is undefined: ``None`` in the rows (never NaN, so the rows
go into strict JSON as they are), "undefined" in print (``fmt``). The AUC itself is
``tfseti.metrics``'s (the one definition). No TensorFlow.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd

from tfseti.metrics import rank_auc, rank_aucs

TRUTH_COLUMNS = ("id", "target", "family", "snr")
OVERALL = "all"
MAX_SNR_BINS = 4
LEVEL = 0.95
UNDEFINED = "undefined"


class EvaluationError(ValueError):
    """A truth file or a submission that cannot be scored (the message names it)."""


# ----------------------------------------------------------------------------- the truth


def read_truth(path, split: str | None = None, *, exclude_split: str | None = None) -> pd.DataFrame:
    """The rows of ``truth.csv`` at ``path`` (local path or URL), with at least ``id, target,
    family, snr``: all of them, those of ``split`` only, or all but ``exclude_split`` (rows with
    no split, or a file without the column, count as train). ``id`` and ``family`` are strings
    (``""``: no needle), ``snr`` a float (NaN: no needle), ``target`` 0/1; the index runs 0..n-1."""
    from tfseti.io import fs as fsutil

    path = str(path)
    fs, inner = fsutil.url_to_fs(path)
    try:
        with fs.open(inner, "rb") as handle:
            text = handle.read().decode("utf-8")
    except FileNotFoundError:
        raise EvaluationError(f"{path}: truth file not found") from None
    except UnicodeDecodeError:
        raise EvaluationError(f"{path}: not a text csv file") from None
    try:
        truth = pd.read_csv(io.StringIO(text), dtype={"id": str, "family": str, "split": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise EvaluationError(f"{path}: cannot parse csv ({' '.join(str(err).split())})") from None
    needed = list(TRUTH_COLUMNS) + (["split"] if split else [])
    missing = [c for c in needed if c not in truth.columns]
    if missing:
        raise EvaluationError(f"{path}: missing column(s) {missing}, expected the truth.csv of "
                              f"tfseti.synth (id, target, split, family, snr, ...)")
    if truth["id"].isna().any():
        raise EvaluationError(f"{path}: an empty id in row {int(truth['id'].isna().argmax()) + 2}")
    target = pd.to_numeric(truth["target"], errors="coerce")
    bad = ~target.isin([0, 1])
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise EvaluationError(f"{path}: column 'target' must be 0 or 1, got "
                              f"{str(truth['target'].iloc[row])!r} (id {truth['id'].iloc[row]!r})")
    duplicated = truth["id"][truth["id"].duplicated()]
    if len(duplicated):
        raise EvaluationError(f"{path}: id {duplicated.iloc[0]!r} appears more than once")
    truth = truth.assign(target=target.astype(int), family=truth["family"].fillna(""),
                         snr=pd.to_numeric(truth["snr"], errors="coerce"))
    if split or (exclude_split and "split" in truth.columns):
        splits = truth["split"].fillna("train")
        keep = (splits == split) if split else (splits != exclude_split)
        truth = truth[keep]
        if split and truth.empty:
            raise EvaluationError(f"{path}: no row of split {split!r} (column 'split' holds "
                                  f"{sorted(splits.unique())})")
    return truth.reset_index(drop=True)


def align_scores(truth: pd.DataFrame, table: pd.DataFrame, column: str = "target",
                 name: str = "predictions") -> np.ndarray:
    """The ``column`` of ``table`` (``id, column``) in the row order of ``truth``, as float64.
    Every truth id exactly once and no other id, every score finite; else ``EvaluationError``
    naming ``name``."""
    for needed in ("id", column):
        if needed not in table.columns:
            raise EvaluationError(f"{name}: no column {needed!r} (columns: {list(table.columns)})")
    ids = table["id"].astype(str)
    twice = ids[ids.duplicated()]
    if len(twice):
        raise EvaluationError(f"{name}: id {twice.iloc[0]!r} appears more than once")
    wanted = truth["id"].astype(str)
    missing = wanted[~wanted.isin(ids)]
    extra = ids[~ids.isin(wanted)]
    if len(missing) or len(extra):
        parts = []
        if len(missing):
            parts.append(f"{len(missing)} id(s) of the truth missing (e.g. {missing.iloc[0]!r})")
        if len(extra):
            parts.append(f"{len(extra)} id(s) not in the truth (e.g. {extra.iloc[0]!r})")
        raise EvaluationError(f"{name}: {'; '.join(parts)}; expected each of the {len(wanted)} "
                              f"ids of the truth exactly once")
    values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=np.float64)
    by_id = pd.Series(values, index=ids.to_numpy())
    scores = by_id.loc[wanted.to_numpy()].to_numpy()
    bad = ~np.isfinite(scores)
    if bad.any():
        first = int(bad.argmax())
        raw = pd.Series(table[column].to_numpy(), index=ids.to_numpy())[wanted.iloc[first]]
        raise EvaluationError(f"{name}: {int(bad.sum())} score(s) in {column!r} not a finite "
                              f"number (e.g. id {wanted.iloc[first]!r}: {str(raw)!r})")
    return scores


def read_scores(path, truth: pd.DataFrame, column: str = "target") -> np.ndarray:
    """``align_scores`` of the csv at ``path`` (a Kaggle submission: ``id, target``)."""
    try:
        table = pd.read_csv(path, dtype={"id": str})
    except FileNotFoundError:
        raise EvaluationError(f"{path}: predictions not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise EvaluationError(f"{path}: cannot parse csv ({' '.join(str(err).split())})") from None
    return align_scores(truth, table, column, name=str(path))


# ----------------------------------------------------------------------------- groups


def snr_edges(snr) -> np.ndarray:
    """Bin edges: quantiles of the positives' SNR, up to four bins with at least two positives
    each (so each bin's AUC rests on more than one needle), edges rounded to 0.1."""
    snr = np.sort(np.asarray(snr, dtype=np.float64))
    snr = snr[np.isfinite(snr)]
    if snr.size == 0:
        return np.array([])
    n_bins = int(max(1, min(MAX_SNR_BINS, snr.size // 2)))
    edges = np.quantile(snr, np.linspace(0.0, 1.0, n_bins + 1))
    edges[0], edges[-1] = np.floor(snr[0] * 10) / 10, np.ceil(snr[-1] * 10) / 10
    edges[1:-1] = np.round(edges[1:-1], 1)
    return np.unique(edges)


def snr_groups(snr) -> tuple[list[tuple[str, np.ndarray]], str]:
    """``[(label, mask)]`` over the positives' SNR values ``snr`` (NaN: unknown) and the rule in
    words: one group per value when they take at most ``MAX_SNR_BINS`` values (a test set of
    fixed SNRs), else quantile bins (``snr_edges``); positives of no SNR in an ``unknown`` group."""
    snr = np.asarray(snr, dtype=np.float64)
    known = np.isfinite(snr)
    values = np.unique(snr[known])
    groups = []
    if 0 < values.size <= MAX_SNR_BINS:
        groups = [(f"{v:g}", snr == v) for v in values]
        rule = f"one group per SNR value ({values.size})"
    else:
        edges = snr_edges(snr)
        for i, (low, high) in enumerate(zip(edges[:-1], edges[1:])):
            last = i == len(edges) - 2
            inside = (snr >= low) & ((snr <= high) if last else (snr < high))
            groups.append((f"[{low:g}, {high:g}]" if last else f"[{low:g}, {high:g})", inside))
        rule = (f"{max(len(edges) - 1, 1)} bin(s) at the quantiles of the positives' SNR (at "
                f"least two per bin, at most {MAX_SNR_BINS} bins)")
    if (~known).any():
        groups.append(("unknown", ~known))
    return groups, rule


def groups(truth: pd.DataFrame, by=("family", "snr")) -> list[tuple[str, str, np.ndarray]]:
    """``(kind, name, mask of the group's positives)``: ``overall`` (every positive), then per
    needle family (sorted) and per SNR group (``snr_groups``), as ``by`` asks."""
    positives = (truth["target"] == 1).to_numpy()
    out = [("overall", OVERALL, positives)]
    if "family" in by:
        family = truth["family"].fillna("").astype(str).to_numpy()
        for name in sorted(set(family[positives])):
            out.append(("family", name or "(none)", positives & (family == name)))
    if "snr" in by:
        snr = pd.to_numeric(truth["snr"], errors="coerce").to_numpy(dtype=np.float64)
        for name, inside in snr_groups(snr[positives])[0]:
            mask = np.zeros(len(truth), bool)
            mask[np.flatnonzero(positives)[inside]] = True
            out.append(("snr", name, mask))
    return out


# ----------------------------------------------------------------------------- scoring


def _defined(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def score(truth: pd.DataFrame, scores) -> float | None:
    """The AUC of ``scores`` (truth order) against the truth's targets; None: undefined."""
    target = truth["target"].to_numpy()
    scores = np.asarray(scores, dtype=np.float64)
    return _defined(rank_auc(scores[target == 1], scores[target == 0]))


def _interval(draws: np.ndarray, level: float) -> list[float] | None:
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return None
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return [float(low), float(high)]


def compare(truth: pd.DataFrame, scores: dict, model: str | None = None, baselines=None,
            n_boot: int = 1000, seed: int = 0, by=("family", "snr"), level: float = LEVEL,
            chunk: int = 200) -> list[dict]:
    """One row per group of ``groups(truth, by)``: ``kind, group, n_pos, n_neg``; per scorer
    ``s``: ``auc_<s>`` and ``ci_auc_<s>`` (``[low, high]``, the ``level`` percentile interval);
    per baseline ``b``: ``diff_<b>`` (AUC of ``model`` - AUC of ``b``) and ``ci_diff_<b>``.
    Undefined values (a group with one class, ``n_boot`` 0) are None.

    ``scores``: ``{name: (N,) scores in truth order}`` (``align_scores``); ``model``: the scorer the
    others are compared with (default the first); ``baselines``: those compared (default every
    other one; naming ``model`` itself gives a difference of 0). Paired, stratified bootstrap of
    ``n_boot`` resamples, seeded with ``seed`` (one generator for the whole table, groups in
    order)."""
    names = list(scores)
    if not names:
        raise ValueError("compare: no scores")
    model = names[0] if model is None else model
    baselines = [n for n in names if n != model] if baselines is None else list(baselines)
    for name in [model, *baselines]:
        if name not in scores:
            raise ValueError(f"compare: no scores named {name!r} (have {names})")
    values = {n: np.asarray(scores[n], dtype=np.float64).reshape(-1) for n in names}
    for name, v in values.items():
        if v.shape[0] != len(truth):
            raise ValueError(f"compare: {v.shape[0]} scores of {name!r} for {len(truth)} truth rows")
        if not np.isfinite(v).all():
            raise EvaluationError(f"compare: scores of {name!r} hold a non-finite value")
    negatives = (truth["target"] == 0).to_numpy()
    rng = np.random.default_rng(seed)
    rows = []
    for kind, group, positives in groups(truth, by):
        n_pos, n_neg = int(positives.sum()), int(negatives.sum())
        row = {"kind": kind, "group": group, "n_pos": n_pos, "n_neg": n_neg}
        point = {n: rank_auc(v[positives], v[negatives]) for n, v in values.items()}
        draws = {n: np.full(0, np.nan) for n in names}
        if n_boot > 0 and n_pos and n_neg:
            draws = {n: [] for n in names}
            for start in range(0, n_boot, chunk):
                size = min(chunk, n_boot - start)
                p = rng.integers(0, n_pos, (size, n_pos))
                q = rng.integers(0, n_neg, (size, n_neg))
                for n, v in values.items():
                    draws[n].append(rank_aucs(v[positives][p], v[negatives][q]))
            draws = {n: np.concatenate(d) for n, d in draws.items()}
        for n in names:
            row[f"auc_{n}"] = _defined(point[n])
            row[f"ci_auc_{n}"] = _interval(draws[n], level) if row[f"auc_{n}"] is not None else None
        for b in baselines:
            row[f"diff_{b}"] = _defined(point[model] - point[b])
            row[f"ci_diff_{b}"] = (_interval(draws[model] - draws[b], level)
                                   if row[f"diff_{b}"] is not None else None)
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- printing


def fmt(value, digits: int = 4, signed: bool = False) -> str:
    """An AUC (or difference) for print: ``undefined`` for None/NaN."""
    if value is None or not math.isfinite(float(value)):
        return UNDEFINED
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def fmt_interval(interval, digits: int = 3, signed: bool = False) -> str:
    """``[low, high]`` for print: ``undefined`` for None."""
    if interval is None:
        return UNDEFINED
    return f"[{fmt(interval[0], digits, signed)}, {fmt(interval[1], digits, signed)}]"


def label(row: dict) -> str:
    """A row's group for print: ``all``, ``family sine``, ``snr 10``."""
    return row["group"] if row["kind"] == "overall" else f"{row['kind']} {row['group']}"
