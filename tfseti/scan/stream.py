"""Streaming a cadence's windows: blocks of channels read from the six files at once, cut into windows.

A cadence is never loaded whole. Its windows are split into *read groups* (:func:`read_groups`):
consecutive windows whose channels, for six files of ``rows`` integrations in float32, fit in
``read_mb`` (rounded to whole batches). A group is one read per file (an HDF5 slice decompresses each chunk once; a
filterbank is read one integration's span at a time), its DC channels are repaired
(``tfseti.scan.windows.remove_dc``) and it is cut into windows. Peak memory is about two groups
(the block and its windows) plus one batch of snippets, whatever the file size. The local scan
walks the groups in order; the Beam scan makes one element per group and one per window.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from tfseti.io.observations import ObservationCadence
from tfseti.scan.windows import WindowPlan, remove_dc

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


def group_windows(cadence: ObservationCadence, plan: WindowPlan, group: tuple[int, int]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``(window indices, native windows (n, 6, rows, width) float32)`` of one read group."""
    first, stop = group
    starts = plan.starts[first:stop]
    lo, hi = int(starts[0]), int(starts[-1]) + plan.width
    block = remove_dc(cadence.read(lo, hi), lo, plan)
    native = np.stack([block[..., s - lo:s - lo + plan.width] for s in starts])
    return np.arange(first, stop), native


def batches(cadence: ObservationCadence, plan: WindowPlan, groups: list[tuple[int, int]],
            batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(window indices, native windows)`` in batches ``[k B, (k + 1) B)`` (``B = batch_size``;
    the last may be short), in order."""
    for group in groups:
        indices, native = group_windows(cadence, plan, group)
        for i in range(0, len(indices), batch_size):
            yield indices[i:i + batch_size], native[i:i + batch_size]
