"""Streaming a cadence's windows: blocks of channels read from the six files at once, cut into windows.

A cadence is never loaded whole. Its windows are split into *read groups* (:func:`read_groups`):
consecutive windows whose channels, for six files of ``rows`` integrations in float32, fit in
``read_mb`` (rounded to whole batches). A group is one read per file (an HDF5 slice decompresses each chunk once; a
filterbank is read one integration's span at a time), its DC channels are repaired
(``tfseti.scan.windows.remove_dc``) and it is cut into windows (:func:`read_group`). The same
read also holds what the classical band search (``tfseti.dedoppler.band_search``) needs for the
group's *own* channels (those of its windows' own channels: each channel of the band belongs to
one group): those channels and the paths' reach either side, in whole tiles of the window width.
Peak memory is about two groups (the block and its windows) plus one batch of snippets, whatever
the file size. The local scan walks the groups in order; the Beam scan makes one element per
group and one per window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from tfseti.io.observations import ObservationCadence
from tfseti.scan.windows import WindowPlan, remove_dc, repair_nonfinite

BYTES_PER_VALUE = 4


def read_groups(plan: WindowPlan, rows: int, read_mb: float, batch_size: int) -> list[tuple[int, int]]:
    """``[(first, stop), ...]`` window index ranges, each read at once.

    A group holds a whole number of batches (``batch_size`` windows; at least one batch even
    when that exceeds ``read_mb``), so the batches are windows ``[k B, (k + 1) B)`` whichever
    runner makes them: the local and the Beam scan score identical batches.
    """
    per_batch = int(plan.starts[min(batch_size, len(plan)) - 1]) + plan.width   # channels of one batch
    budget = read_mb * 1e6 / (6 * rows * BYTES_PER_VALUE)
    step = batch_size * max(1, int(budget // per_batch))
    return [(first, min(first + step, len(plan))) for first in range(0, len(plan), step)]


def own_span(plan: WindowPlan, group: tuple[int, int]) -> tuple[int, int]:
    """The channels ``[lo, hi)`` a read group reports in the band search: its windows' own
    channels (``tfseti.scan.windows.own_channels``); the groups' spans tile the band."""
    first, stop = group
    starts = plan.starts
    return int(starts[first]), int(starts[stop]) if stop < len(starts) else plan.nchans


@dataclass
class Group:
    """One read group: its windows, and the block the band search reads for its own channels."""

    indices: np.ndarray         # window indices
    native: np.ndarray | None   # (n, 6, rows, width) float32, the windows as read (DC repaired)
    band: np.ndarray            # (6, rows, C) channels [band_start, band_start + C), NaN/Inf repaired
    band_start: int
    own: tuple[int, int]        # the channels the band search reports (own_span)


def read_group(cadence: ObservationCadence, plan: WindowPlan, group: tuple[int, int],
               reach: int, windows: bool = True) -> Group:
    """Read one group (module notes); ``reach``: the band search's halo
    (``tfseti.dedoppler.band_search.halo``). ``windows=False`` (no model to feed): the windows
    are cut only when the block holds NaN/Inf samples (their flags come from the windows), else
    ``native`` is None."""
    from tfseti.dedoppler.band_search import read_span, tile_edges

    first, stop = group
    starts = plan.starts[first:stop]
    own = own_span(plan, group)
    a, b = read_span(own[0], own[1], plan.nchans, plan.width, reach)
    lo, hi = min(a, int(starts[0])), max(b, int(starts[-1]) + plan.width)
    block = remove_dc(cadence.read(lo, hi), lo, plan)
    finite = bool(np.isfinite(block).all())
    native = None
    if windows or not finite:
        native = np.stack([block[..., s - lo:s - lo + plan.width] for s in starts])   # copies
    band = block[..., a - lo:b - lo]
    if not finite:
        # Replaced tile by tile, as each window's samples are (repair_nonfinite, in place).
        edges = tile_edges(plan.nchans, plan.width)
        edges = edges[(edges >= a) & (edges <= b)] - a
        for e0, e1 in zip(edges[:-1], edges[1:]):
            repair_nonfinite(band[None, :, :, e0:e1])
    return Group(np.arange(first, stop), native, band, a, own)
