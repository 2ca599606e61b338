"""Background removal by matching overlapping snippets (the 1st place's "magic 2"), before conversion.

    python -m tfrecords_tools.snippet_matching --data DIR|gs://... --out DIR|gs://... \\
        [--splits train,test] [--min-confidence 0.9] [--min-overlap 16] [--workers 8] \\
        [--config FILE.toml] [key=value ...]

The search's settings (:class:`MatchConfig`) come from, lowest first: their defaults,
``--config FILE.toml`` (top-level keys: ``min_overlap = 32``), the settings flags given, and
``key=value`` arguments (``stride=4``); a key given both as a flag and as ``key=value`` is refused
(``tfseti.config.load_settings``).

The Kaggle cadences are 256-channel snippets of longer observations, and snippets of one
observation overlap in frequency: over their common channels they hold the same background
(noise, bandpass, RFI), each panel only normalised differently. For every cadence A this finds the
overlapping cadence B that matches best and writes ``A - fit(B)`` on the overlap:

1. **Columns.** Every frequency column of every panel is normalised over time (mean 0, unit L2
   norm); a column's descriptor is the six panels' normalised columns concatenated (unit norm).
   Two cadences overlapping with shift ``s`` have descriptors ``A[j] == B[j - s]`` (up to float16
   rounding) except where a needle differs.
2. **Candidates** (no O(N^2) comparison): each descriptor gets a ``bits``-bit signature, the
   signs of a seeded Gaussian projection (random-hyperplane LSH: equal columns get equal keys,
   unrelated ones collide with probability 2^-bits). The keys of every ``stride``-th column of
   every cadence form one sorted index; every column j of A looks its key up (binary search) and
   each hit (B, column k) votes for (B, shift ``j - k``). An overlap of L >= ``stride`` columns
   gives the true (B, s) about floor(L / stride) votes (a needle column, or float16 rounding
   flipping a sign, loses one). The ``candidates`` best-voted pairs go on.
3. **Verification** on the full data: for shifts ``s - refine .. s + refine`` the cosine
   similarity of each aligned column pair; the *confidence* is their median (1 for a true
   partner: the background is the same; ~0 for unrelated noise; a needle in a few columns does
   not move the median). Accepted when confidence >= ``min_confidence`` and overlap >=
   ``min_overlap``; of the accepted partners the one with the widest overlap wins (more of A is
   cleaned), then the most confident.
4. **Difference.** Per panel p, B's aligned overlap is fitted to A's by least squares
   (``A_p ~ alpha_p B_p + beta_p``: undoes the two snippets' different per-panel normalisation)
   and subtracted: the shared background cancels, A's needle stays at A's scale (a needle of B in
   the overlap appears with the opposite sign). Columns of A outside the overlap, and cadences
   without an accepted partner, keep their input values.

Output: a Kaggle-layout folder (``<split>/<id[0]>/<id>.npy``, float16 ``(6, 273, 256)``, the
label csv copied) that ``tfrecords_tools.convert`` turns into shards like any other (the record
schema is unchanged), plus ``matches.csv``: ``id, split, matched, partner, partner_split, shift,
overlap, overlap_start, overlap_stop, confidence, votes`` (``shift``: A's channel j is the
partner's channel ``j - shift``; ``overlap_start:overlap_stop`` the cleaned channels of A).

Cost: two reads of every cadence plus up to ``candidates`` partner reads per cadence (cached);
memory ``N x 256`` uint64 keys (60 000 cadences: 123 MB); the search is O(N C log(N C / stride))
for C = 256 columns (a sort and a binary search per column), the verification
O(N x candidates x (2 refine + 1) x 6 x 273 x 256) multiply-adds.
"""

from __future__ import annotations

import argparse
import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from tfseti.command import command, common_flags, run_command, workers_flag
from tfseti.config import SETTINGS_FILE_HELP, flag_values, load_settings
from tfseti.io import fs as fsutil
from tfseti.io.kaggle import LABEL_FILES, KaggleDataset, cadence_relpath, check_ids, save_cadence

MATCHES_FILE = "matches.csv"
EPSILON = 1e-6  # a column flatter than this (std over time) cannot be matched
# An index key held by more columns than this says nothing about a partner (e.g. columns that a
# strong broadband burst dominates look alike everywhere); such keys are dropped, which also keeps
# the number of hits, and so the search, linear in N.
MAX_BUCKET = 64


@dataclass(frozen=True)
class MatchConfig:
    """Search and acceptance parameters (see the module docstring)."""

    bits: int = 32
    stride: int = 8
    candidates: int = 3
    refine: int = 2
    min_confidence: float = 0.9
    min_overlap: int = 16
    seed: int = 0

    def __post_init__(self):
        for name in ("bits", "stride", "candidates", "min_overlap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"MatchConfig.{name} must be an integer >= 1, got {value!r}")
        if self.refine < 0:
            raise ValueError(f"MatchConfig.refine must be >= 0, got {self.refine}")
        if self.bits > 64:
            raise ValueError(f"MatchConfig.bits must be <= 64 (one uint64 key), got {self.bits}")
        if not -1 <= self.min_confidence <= 1:
            raise ValueError(f"MatchConfig.min_confidence must be in [-1, 1], got {self.min_confidence}")


@dataclass(frozen=True)
class Match:
    """The partner found for one cadence (``matched`` False: none accepted; input kept)."""

    id: str
    split: str
    matched: bool
    partner: str = ""
    partner_split: str = ""
    shift: int = 0
    overlap: int = 0
    overlap_start: int = 0
    overlap_stop: int = 0
    confidence: float = float("nan")
    votes: int = 0


# -- column arithmetic (one cadence or a pair; plain numpy) -----------------------------------------

def normalise_columns(cadence: np.ndarray) -> np.ndarray:
    """``(P, T, F)`` -> float32: every column of every panel centred over time and scaled to unit
    L2 norm (flat columns stay 0). The cosine similarity of two columns is then their dot product."""
    x = np.asarray(cadence, dtype=np.float32)
    x = x - x.mean(axis=1, keepdims=True)
    norm = np.sqrt(np.square(x).sum(axis=1, keepdims=True))
    return x / np.maximum(norm, EPSILON)


def column_cosines(a_norm: np.ndarray, b_norm: np.ndarray, shift: int) -> np.ndarray:
    """Cosine similarity (mean over panels) of A's column j with B's column ``j - shift`` for every
    overlapping j; inputs from ``normalise_columns``. Empty when they do not overlap."""
    start, stop = overlap_range(a_norm.shape[-1], shift)
    if stop <= start:
        return np.zeros(0, np.float32)
    a = a_norm[:, :, start:stop]
    b = b_norm[:, :, start - shift:stop - shift]
    return np.einsum("ptf,ptf->f", a, b) / a_norm.shape[0]


def overlap_range(freq: int, shift: int) -> tuple[int, int]:
    """A's channels ``[start, stop)`` that have a partner channel ``j - shift`` in ``[0, freq)``."""
    return max(0, shift), min(freq, freq + shift)


def shift_confidence(a_norm: np.ndarray, b_norm: np.ndarray, shifts) -> np.ndarray:
    """Median column cosine for each shift (NaN where there is no overlap)."""
    out = []
    for shift in shifts:
        cosines = column_cosines(a_norm, b_norm, int(shift))
        out.append(float(np.median(cosines)) if cosines.size else np.nan)
    return np.asarray(out)


def aligned_difference(a: np.ndarray, b: np.ndarray, shift: int) -> np.ndarray:
    """A minus B's aligned overlap fitted to A per panel (least squares ``alpha B + beta``);
    columns outside the overlap keep A's values. ``(P, T, F)`` -> float32."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    out = a.copy()
    start, stop = overlap_range(a.shape[-1], shift)
    if stop <= start:
        return out
    ya = a[:, :, start:stop]
    xb = b[:, :, start - shift:stop - shift]
    mean_a = ya.mean(axis=(1, 2), dtype=np.float64).astype(np.float32)[:, None, None]
    mean_b = xb.mean(axis=(1, 2), dtype=np.float64).astype(np.float32)[:, None, None]
    xc = xb - mean_b
    alpha = ((xc * (ya - mean_a)).sum(axis=(1, 2), dtype=np.float64)
             / np.maximum(np.square(xc).sum(axis=(1, 2), dtype=np.float64), EPSILON))
    out[:, :, start:stop] = ya - (alpha.astype(np.float32)[:, None, None] * xc + mean_a)
    return out


def projection(panels: int, time: int, bits: int, seed: int) -> np.ndarray:
    """The seeded Gaussian projection ``(panels, time, bits)`` whose signs are the column keys."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, panels, time, bits]))
    return rng.standard_normal((panels, time, bits)).astype(np.float32)


def column_keys(cadence: np.ndarray, proj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(F,)`` uint64 keys of a cadence's columns (sign bits of the projected descriptors) and a
    ``(F,)`` mask of matchable columns (not flat in any panel)."""
    norm = normalise_columns(cadence)
    valid = (np.abs(norm).max(axis=1) > 0).all(axis=0)
    projected = np.tensordot(norm, proj, axes=([0, 1], [0, 1]))          # (F, bits)
    weights = np.left_shift(np.uint64(1), np.arange(proj.shape[-1], dtype=np.uint64))
    keys = ((projected > 0).astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)
    return keys, valid


# -- the dataset-level search -------------------------------------------------------------------------

def candidate_pairs(keys: np.ndarray, valid: np.ndarray, cfg: MatchConfig, block: int = 256
                    ) -> list[list[tuple[int, int, int]]]:
    """For each cadence, up to ``cfg.candidates`` ``(partner index, shift, votes)``, most votes first.

    ``keys``: ``(N, F)`` uint64 from ``column_keys``; ``valid``: ``(N, F)``. Cadences are looked
    up ``block`` at a time (vectorised; memory ~ block x F x hits per column).
    """
    n, freq = keys.shape
    cols = np.arange(0, freq, cfg.stride)
    owner, slot = np.nonzero(valid[:, cols])
    column = cols[slot]
    index_keys = keys[owner, column]
    order = np.argsort(index_keys, kind="stable")
    index_keys, owner, column = index_keys[order], owner[order], column[order]
    _, bucket = np.unique(index_keys, return_counts=True)          # index_keys is sorted
    informative = np.repeat(bucket <= MAX_BUCKET, bucket)
    index_keys, owner, column = index_keys[informative], owner[informative], column[informative]
    out: list[list[tuple[int, int, int]]] = []
    for first in range(0, n, block):
        rows, query_cols = np.nonzero(valid[first:first + block])
        query = keys[first + rows, query_cols]
        lo = np.searchsorted(index_keys, query, side="left")
        hi = np.searchsorted(index_keys, query, side="right")
        counts = hi - lo
        total = int(counts.sum())
        # Expand each query's [lo, hi) run of index entries into one flat array of hits.
        starts = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(total)
        a = np.repeat(first + rows, counts)
        b = owner[starts]
        shift = np.repeat(query_cols, counts) - column[starts]
        keep = a != b
        pair_keys = (a[keep].astype(np.int64) * n + b[keep]) * (2 * freq) + (shift[keep] + freq)
        unique, votes = np.unique(pair_keys, return_counts=True)
        a_of = unique // (2 * freq) // n
        for i in range(first, min(n, first + block)):
            lo_i, hi_i = np.searchsorted(a_of, [i, i + 1])
            best = lo_i + np.argsort(-votes[lo_i:hi_i], kind="stable")[: cfg.candidates]
            out.append([(int(unique[j] // (2 * freq) % n), int(unique[j] % (2 * freq) - freq),
                         int(votes[j])) for j in best])
    return out


def verify_candidates(a_norm: np.ndarray, candidates, load_norm, cfg: MatchConfig
                      ) -> tuple[int, int, float, int] | None:
    """The accepted partner ``(index, shift, confidence, votes)`` of one cadence, or None."""
    freq = a_norm.shape[-1]
    best = None
    for partner, shift, votes in candidates:
        b_norm = load_norm(partner)
        shifts = np.arange(shift - cfg.refine, shift + cfg.refine + 1)
        shifts = shifts[np.abs(shifts) < freq]
        scores = shift_confidence(a_norm, b_norm, shifts)
        if np.all(np.isnan(scores)):
            continue
        k = int(np.nanargmax(scores))
        confidence, s = float(scores[k]), int(shifts[k])
        start, stop = overlap_range(freq, s)
        if confidence < cfg.min_confidence or stop - start < cfg.min_overlap:
            continue
        key = (stop - start, confidence)
        if best is None or key > best[0]:
            best = (key, (partner, s, confidence, votes))
    return None if best is None else best[1]


def match_cadences(cadences, cfg: MatchConfig = MatchConfig(), workers: int = 1) -> list[dict]:
    """Match a list of ``(P, T, F)`` arrays, or a sequence-like ``load(i)`` via ``cadences[i]``.

    Returns per cadence ``{"partner": index or -1, "shift", "overlap_start", "overlap_stop",
    "confidence", "votes"}``.
    """
    n = len(cadences)
    first = np.asarray(cadences[0])
    panels, time, freq = first.shape
    proj = projection(panels, time, cfg.bits, cfg.seed)
    keys = np.zeros((n, freq), np.uint64)
    valid = np.zeros((n, freq), bool)

    def sign(i):
        keys[i], valid[i] = column_keys(cadences[i], proj)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        list(pool.map(sign, range(n)))
    candidates = candidate_pairs(keys, valid, cfg)

    @functools.lru_cache(maxsize=64)   # partners of nearby cadences; 64 x 1.7 MB
    def load_norm(i):
        return normalise_columns(cadences[i])

    def verify(i):
        found = verify_candidates(load_norm(i), candidates[i], load_norm, cfg)
        if found is None:
            return {"partner": -1, "shift": 0, "overlap_start": 0, "overlap_stop": 0,
                    "confidence": float("nan"), "votes": 0}
        partner, shift, confidence, votes = found
        start, stop = overlap_range(freq, shift)
        return {"partner": partner, "shift": shift, "overlap_start": start, "overlap_stop": stop,
                "confidence": confidence, "votes": votes}

    # lru_cache is thread-safe for correctness (a miss may load twice); order kept by map.
    with ThreadPoolExecutor(max(1, workers)) as pool:
        return list(pool.map(verify, range(n)))


# -- folders ------------------------------------------------------------------------------------------

class _Loader:
    """``loader[i]`` loads cadence i of ``items`` = ``[(dataset, id), ...]``."""

    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        dataset, cadence_id = self.items[i]
        return dataset.load(cadence_id)


def remove_background(data: str, out: str, splits=("train", "test"), cfg: MatchConfig = MatchConfig(),
                      workers: int = 4, storage_options: dict | None = None) -> pd.DataFrame:
    """Match every cadence of ``splits`` in ``data`` (searched together: snippets of one
    observation may sit in different splits), write the difference cadences and ``matches.csv``
    to ``out``; returns the matches table."""
    datasets = {split: KaggleDataset(data, split, storage_options=storage_options) for split in splits}
    items = []
    for split, dataset in datasets.items():
        if not dataset.labels_exist():
            raise FileNotFoundError(f"{dataset.labels_file}: label file not found (is {split!r} a split of {data}?)")
        # Ids become the paths read under --data and written under --out: checked before either.
        ids = check_ids(dataset.ids(), dataset.labels_file, first_line=2)
        items += [(dataset, cadence_id) for cadence_id in ids]
    if not items:
        raise ValueError(f"{data}: no cadences listed in {', '.join(splits)}")
    loader = _Loader(items)
    found = match_cadences(loader, cfg, workers=workers)

    out_fs, out_root = fsutil.url_to_fs(out, **(storage_options or {}))
    rows = []

    def write(i):
        dataset, cadence_id = items[i]
        match = found[i]
        a = loader[i]
        if match["partner"] >= 0:
            b = loader[match["partner"]]
            a = aligned_difference(a, b, match["shift"]).astype(np.float16)
        save_cadence(f"{out_root}/{cadence_relpath(dataset.split, cadence_id)}", a, fs=out_fs)
        partner = items[match["partner"]] if match["partner"] >= 0 else (None, "")
        return asdict(Match(id=cadence_id, split=dataset.split, matched=match["partner"] >= 0,
                            partner=partner[1], partner_split=partner[0].split if partner[0] else "",
                            shift=match["shift"], overlap=match["overlap_stop"] - match["overlap_start"],
                            overlap_start=match["overlap_start"], overlap_stop=match["overlap_stop"],
                            confidence=match["confidence"], votes=match["votes"]))

    with ThreadPoolExecutor(max(1, workers)) as pool:
        rows = list(pool.map(write, range(len(items))))
    for split, dataset in datasets.items():
        with dataset.fs.open(f"{dataset._root}/{LABEL_FILES[split]}", "rb") as handle:
            labels = handle.read()
        with out_fs.open(f"{out_root}/{LABEL_FILES[split]}", "wb") as handle:
            handle.write(labels)
    table = pd.DataFrame(rows, columns=list(Match.__dataclass_fields__))
    with out_fs.open(f"{out_root}/{MATCHES_FILE}", "w") as handle:
        table.to_csv(handle, index=False)
    return table


def parse_command_line(argv=None) -> tuple[argparse.Namespace, MatchConfig]:
    """``(arguments, resolved MatchConfig)`` of a command line (raises ``ConfigError`` /
    ``FileNotFoundError``; reads nothing but ``--config``)."""
    parser = argparse.ArgumentParser(
        prog="python -m tfrecords_tools.snippet_matching",
        parents=[workers_flag("threads for reading/writing", 4), common_flags("storage_options")],
        description="Find each cadence's best-matching overlapping cadence and write the difference "
                    "of the aligned overlap as a Kaggle-layout folder (plus matches.csv).")
    parser.add_argument("--data", required=True, help="Kaggle-layout folder or URL")
    parser.add_argument("--out", required=True, help="output folder or URL (Kaggle layout)")
    parser.add_argument("--splits", default="train,test",
                        help="comma-separated splits searched together (default train,test)")
    defaults = MatchConfig()
    # The settings flags default to SUPPRESS: left out, they do not hide --config's values.
    given = argparse.SUPPRESS
    parser.add_argument("--config", metavar="FILE.toml", default=None, help=SETTINGS_FILE_HELP)
    parser.add_argument("--min-confidence", type=float, default=given,
                        help="median column cosine needed to accept a partner (default "
                             f"{defaults.min_confidence:g})")
    parser.add_argument("--min-overlap", type=int, default=given,
                        help=f"channels of overlap needed (default {defaults.min_overlap})")
    parser.add_argument("--stride", type=int, default=given,
                        help=f"index every STRIDE-th column (default {defaults.stride})")
    parser.add_argument("--bits", type=int, default=given,
                        help=f"bits of a column key (default {defaults.bits})")
    parser.add_argument("--candidates", type=int, default=given,
                        help=f"best-voted partners verified per cadence (default {defaults.candidates})")
    parser.add_argument("--refine", type=int, default=given,
                        help=f"shifts tried either side of the voted one (default {defaults.refine})")
    parser.add_argument("--seed", type=int, default=given,
                        help=f"projection seed (default {defaults.seed})")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="settings overrides, values as TOML literals (stride=4 min_overlap=32); "
                             "the keys are MatchConfig's fields")
    args = parser.parse_intermixed_args(argv)  # key=value arguments may come between flags
    return args, load_settings(MatchConfig, args.config, args.overrides,
                               flag_values(parser, args, MatchConfig))


@command(OSError, ValueError)  # ConfigError is a ValueError
def main(argv=None) -> int:
    args, cfg = parse_command_line(argv)
    splits = tuple(s.strip() for s in args.splits.split(",") if s.strip())
    table = remove_background(args.data, args.out, splits, cfg, workers=args.workers,
                              storage_options=args.storage_options)
    matched = table[table.matched]
    detail = (f" (median confidence {matched.confidence.median():.3f}, median overlap "
              f"{matched.overlap.median():.0f} channels)" if len(matched) else "")
    print(f"{len(table)} cadences, {len(matched)} matched{detail}, {len(table) - len(matched)} kept "
          f"their input (matched=False in {MATCHES_FILE}); wrote {args.out}")
    return 0


if __name__ == "__main__":
    run_command(main)
