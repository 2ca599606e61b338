"""The cadence-wide classical search over a whole band at once, from per-panel Taylor trees (no
TensorFlow): the ``straight_line`` and ``two_of_three`` scores of :mod:`tfseti.dedoppler.scores`
for every channel of an observation cadence, computed once per channel instead of once per
(overlapping) window.

Inputs are raw cadence blocks ``(6, T, C)`` (ABACAD, rows = integrations, columns = a run of
channels of the band) and a ``DedopplerConfig`` (``tfseti.scan.scoring.classical_config`` makes it
from the files' headers). Three steps:

1. **Clean** (:func:`clean_band`): the band is cut into *tiles* of ``tile`` channels from channel 0
   (the last, shorter remainder joins the tile before it), and each tile is cleaned as
   :func:`tfseti.dedoppler.window_scores.clean` cleans a window: ``cfg.block`` rows summed, the OFF
   panels' per-channel median level and each block row's median over the tile's channels taken
   away, scaled to unit noise per panel and tile, clipped. The scan's tile is its window width, so
   with ``--overlap 0`` every window is cleaned exactly as before.
2. **Trees** (:func:`tfseti.dedoppler.taylor.cadence_search`): every panel's block rows go through
   turboSETI's Taylor tree (:func:`tfseti.dedoppler.taylor.taylor_tree`, both signs, the
   ``drift_block`` s that reach ``cfg.max_drift``), in blocks of channels that fit a core's cache.
3. **Cadence paths.** Cadence rate ``r`` (``cfg.drifts`` rates evenly in ``[-max_drift,
   max_drift]`` channels per integration, as :func:`tfseti.dedoppler.window_scores.drift_rates`) at
   channel ``f`` at the cadence's reference time (the centre of panel 2) enters panel ``p`` at
   ``f + rint(r t_p)`` (``t_p``: the time of the panel's first block relative to the reference, in
   integrations) and crosses the panel along the tree path of the tree's grid point nearest ``r
   cfg.block`` channels per block row (``g = rint(r block (T_pad - 1))``). The brute force of
   :mod:`tfseti.dedoppler.window_scores` sums ``f + rint(r t)`` at each block's own time instead;
   the two paths differ by at most one channel in a row (the tree's staircase and the rounding of
   the entry point), which costs a one-channel-wide needle a little of its power at some rates.
   On these paths, per channel: the straight-line score ``(sum ON - sum OFF) / sqrt(6)`` maximised
   over rates (with its rate and the six panels' sums there) and the two-of-three score (the
   second-best ON panel minus the largest OFF panel within ``OFF_WINDOW`` rates and channels of the
   path) maximised over rates. Sums are in units of the noise of one integration times
   ``sqrt(T)``, as the window scores' maps.

Paths run across tile boundaries and read zero only outside the band, so a needle near a window
edge is summed whole (the per-window search cut it at the window's edge). A block read from a
file needs :func:`halo` channels either side of the channels it reports (the paths' reach), cut
to whole tiles (:func:`read_span`).

Cost: the trees ``O(6 T_pad F log T_pad)`` per drift block, and ``O(6 D F)`` for the cadence paths
(``D = cfg.drifts``), against the brute force's ``O(6 T D W)`` per window of ``W`` channels, twice
over with half-overlapping windows.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba
import numpy as np

from tfseti.dedoppler.scores import OFF_WINDOW
from tfseti.dedoppler.taylor import cadence_search, padded_time
from tfseti.dedoppler.window_scores import block_shifts, clean, drift_rates, reference_rows
from tfseti.io.kaggle import OFF_PANELS, ON_PANELS

# Output channels per parallel job: its trees (6 panels x trees x T_pad rows x (CHUNK + 2 halo))
# and its rate x channel work arrays stay within a few MB.
CHUNK = 2048


@dataclass(frozen=True)
class BandPlan:
    """The trees and the cadence paths of a config and a cadence shape (module notes)."""

    tree_block: np.ndarray      # (I,) drift_block of tree i
    tree_neg: np.ndarray        # (I,) bool: tree i searches the flipped band
    rate_tree: np.ndarray       # (D,) tree of cadence rate k
    rate_row: np.ndarray        # (D,) tree row (drift index) of rate k
    offsets: np.ndarray         # (6, D) channel where rate k's path enters panel p, from f
    rates: np.ndarray           # (D,) channels per integration
    time: int                   # integrations per panel
    block_rows: int             # rows per panel after summing cfg.block integrations
    first_row: float            # the first integration of panel 0, relative to the reference

    @property
    def reach(self) -> int:
        """Channels a path of an output channel reads on either side of it (at most)."""
        n = padded_time(self.block_rows)
        inside = int(np.max(self.tree_block, initial=0) + 1) * n
        return int(np.abs(self.offsets).max(initial=0)) + inside


def band_plan(cfg, time: int) -> BandPlan:
    """:class:`BandPlan` of ``DedopplerConfig`` ``cfg`` for panels of ``time`` integrations."""
    blocks = -(-time // cfg.block)
    n = padded_time(blocks)
    rates = drift_rates(cfg)
    offsets = block_shifts(cfg, "cadence", 6, time)[:, :, 0]           # (6, D): entry channel
    step = max(n - 1, 1)
    g = np.rint(rates * cfg.block * step).astype(np.int64) if n > 1 else np.zeros(len(rates), np.int64)
    block = np.abs(g) // step
    row = np.abs(g) - block * step
    neg = g < 0
    keys = sorted(set(zip(neg.tolist(), block.tolist())))
    index = {key: i for i, key in enumerate(keys)}
    plan = BandPlan(tree_block=np.array([b for _, b in keys], np.int64),
                    tree_neg=np.array([s for s, _ in keys], np.bool_),
                    rate_tree=np.array([index[(s, b)] for s, b in zip(neg.tolist(), block.tolist())], np.int64),
                    rate_row=row.astype(np.int64), offsets=np.ascontiguousarray(offsets, np.int64),
                    rates=rates, time=int(time), block_rows=int(blocks),
                    first_row=float(reference_rows(cfg, "cadence", 6, time)[0, 0]))
    return plan


def halo(cfg, time: int) -> int:
    """Channels a block must hold beyond the channels it reports (the paths' reach and the OFF
    veto's channel window)."""
    return band_plan(cfg, time).reach + OFF_WINDOW[1] + 1


def tile_edges(nchans: int, tile: int) -> np.ndarray:
    """First channel of every tile of a band, and ``nchans`` (module notes: the remainder joins
    the last whole tile)."""
    whole = max(1, nchans // tile)
    return np.append(np.arange(whole, dtype=np.int64) * tile, nchans)


def read_span(lo: int, hi: int, nchans: int, tile: int, reach: int) -> tuple[int, int]:
    """The channels ``[a, b)`` to read for reporting ``[lo, hi)``: ``reach`` more either side,
    widened to whole tiles (and the band)."""
    edges = tile_edges(nchans, tile)
    a = edges[max(0, np.searchsorted(edges, max(0, lo - reach), side="right") - 1)]
    b = edges[min(len(edges) - 1, np.searchsorted(edges, min(nchans, hi + reach), side="left"))]
    return int(a), int(b)


def clean_band(block: np.ndarray, cfg, start: int, nchans: int, tile: int) -> np.ndarray:
    """Step 1: raw ``(6, T, C)`` channels ``[start, start + C)`` (whole tiles of the band) ->
    cleaned block rows ``(6, Bk, C)`` float32."""
    edges = tile_edges(nchans, tile)
    stop = start + np.shape(block)[-1]
    inside = edges[(edges >= start) & (edges <= stop)]
    if len(inside) < 2 or inside[0] != start or inside[-1] != stop:
        raise ValueError(f"band search: channels [{start}, {stop}) are not whole tiles of {tile} "
                         f"channels of a {nchans}-channel band")
    block = np.asarray(block, np.float32)[None]
    edges = inside - start
    # Tiles are cleaned independently, and most of the cleaning is numpy's medians, which release
    # the GIL: a few runs of whole tiles in threads use the cores the serial medians leave idle.
    # As many as the process's Numba threads (its share of the cores: tfseti.scan.workers gives
    # each worker process cores / N).
    parts = min(numba.get_num_threads(), len(edges) - 1)
    if parts < 2:
        return clean(block, cfg, edges)[0]
    cuts = edges[np.linspace(0, len(edges) - 1, parts + 1).round().astype(int)]
    out = np.empty((6, -(-block.shape[2] // cfg.block), block.shape[3]), np.float32)

    def one(a, b):
        out[..., a:b] = clean(block[..., a:b], cfg, edges[(edges >= a) & (edges <= b)] - a)[0]

    with ThreadPoolExecutor(parts) as pool:
        for done in [pool.submit(one, int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:])]:
            done.result()
    return out


@dataclass
class BandScores:
    """Per channel ``[lo, hi)`` of a band (arrays indexed by ``channel - lo``)."""

    lo: int
    straight_line: np.ndarray   # best straight-line score over the rates
    rate_index: np.ndarray      # its rate (index into BandPlan.rates)
    two_of_three: np.ndarray    # best two-of-three score over the rates
    panel_snr: np.ndarray       # (6, n) the panels' sums on the best straight path
    rates: np.ndarray           # (D,) the rates, channels per integration (BandPlan.rates)
    first_row: float            # the first integration of panel 0 relative to the reference

    def start_channel(self, i: int) -> float:
        """Channel ``lo + i``'s best straight path at the first integration of panel 0 (file 1):
        turboSETI's convention for where a hit is."""
        return self.lo + i + float(self.rates[self.rate_index[i]]) * self.first_row


def search_block(block: np.ndarray, cfg, start: int, nchans: int, tile: int, lo: int, hi: int,
                 plan: BandPlan | None = None) -> BandScores:
    """Steps 1-3 on a raw block ``(6, T, C)`` of channels ``[start, start + C)`` (whole tiles):
    the scores of channels ``[lo, hi)`` (within the block; exact when the block reaches
    :func:`halo` channels beyond them or the band's edge)."""
    block = np.asarray(block)
    if block.ndim != 3 or block.shape[0] != 6:
        raise ValueError(f"band search: expected a cadence block (6, time, channels), got shape {block.shape}")
    if not start <= lo < hi <= start + block.shape[-1]:
        raise ValueError(f"band search: channels [{lo}, {hi}) are not inside the block [{start}, "
                         f"{start + block.shape[-1]})")
    plan = plan or band_plan(cfg, block.shape[1])
    cleaned = clean_band(block, cfg, start, nchans, tile)
    line, k, two, panels = cadence_search(
        np.ascontiguousarray(cleaned), plan.tree_block, plan.tree_neg, plan.rate_tree, plan.rate_row,
        plan.offsets, np.array(OFF_PANELS, np.int64), np.array(ON_PANELS, np.int64),
        np.float32(1.0 / np.sqrt(block.shape[1])), OFF_WINDOW[0], OFF_WINDOW[1],
        lo - start, hi - start, CHUNK)
    sl = slice(lo - start, hi - start)
    return BandScores(lo=lo, straight_line=line[sl], rate_index=k[sl], two_of_three=two[sl],
                      panel_snr=panels[:, sl], rates=plan.rates, first_row=plan.first_row)
