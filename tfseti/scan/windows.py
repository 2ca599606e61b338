"""Frequency windows of an observation cadence, made into the snippets a Kaggle-trained model takes.

**Windows.** ``width`` channels (the model's frequency axis, 256) every ``width - overlap``
channels from channel 0; when the last stride does not end on the band's edge, one more window
ends exactly there, so every channel is in some window. With no overlap and Breakthrough
Listen's 2^20 fine channels per coarse channel, no window crosses a coarse channel boundary.

**Coarse channels** (``fine_per_coarse``: fine channels per coarse channel of the polyphase
filterbank, 2^20 for GBT high-resolution data; ``None`` when unknown). Every coarse channel has
a spike at its centre channel (the DC bin of the fine FFT); it is replaced, in every integration,
by the mean of its two neighbours (turboSETI's treatment), and windows holding one are flagged
``dc``. Windows that cross a coarse channel boundary (the filterbank's roll-off on both sides)
are flagged ``edge``. Flags are reported in the hit tables; nothing is dropped.

**Non-finite samples** (NaN / Inf: blanked or corrupt data; real filterbanks have them). One bad
sample must not stop an archive scan, and none may reach a score (a NaN makes a window's whole
drift map NaN: its scores NaN, its hit False, silently). So, like the DC spike, each is replaced
(:func:`repair_nonfinite`, in every window before it is scored): by the median of the finite
samples of its integration in that window and file (the level the search's per-integration
median takes away, so a replaced sample adds nothing to any path), or of the window's file when
the whole integration is bad, or 0 when the whole panel is. The window is flagged
``nonfinite``, and each file's count and its first bad sample (integration, channel) are a note
of the cadence (:func:`nonfinite_notes`: logged, and in ``cadence.json``). A DC channel next to a
bad sample is the mean of its finite neighbour (a bad DC channel is replaced anyway, not counted).

**Snippets.** Each window's six panels are resampled in time to the model's rows and normalised
per panel (mean 0, std 1) in float16, as the Kaggle snippets were. Resampling (``time_resample``):

``area`` (default)
    Each output row is the mean of the input rows it overlaps, weighted by the overlap. Going
    down (a 273+-row product) this is a flux-conserving average; going up (the GBT
    high-resolution product: 16 integrations of 18.25 s per 5-minute scan to 273 rows) every
    integration becomes a run of ~17 equal rows. The time span is unchanged: 16 x 18.25 s =
    292 s = 273 x 1.07 s, so a drift rate in Hz/s looks as it did in the Kaggle snippets, but
    a drifting needle appears as a staircase of 16 steps instead of a line, and the noise is
    constant along each step: the model sees a coarser picture than it was trained on.
``linear``
    Linear interpolation between the centres of the input rows: smoother steps, with noise
    correlated over ~17 rows.

Either way a high-resolution scan holds 16 independent integrations, not 273: a needle's per-
integration SNR is what it is, and a model trained on 273-row snippets has not seen this
texture. Fine-tuning on snippets cut from real observations is the remedy; the scan reports
the classical de-Doppler search, run on the native integrations, next to the model for this
reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TIME_RESAMPLES = ("area", "linear")
HIRES_FINE_PER_COARSE = 2 ** 20


@dataclass(frozen=True)
class WindowPlan:
    """Where the windows of a band of ``nchans`` channels start, and their flags."""

    nchans: int
    width: int
    overlap: int
    fine_per_coarse: int | None

    def __post_init__(self):
        if self.width < 1 or self.nchans < self.width:
            raise ValueError(f"the band holds {self.nchans} channels, fewer than one window of "
                             f"{self.width}")
        if not 0 <= self.overlap < self.width:
            raise ValueError(f"--overlap: expected channels in [0, {self.width}), got {self.overlap}")
        if self.fine_per_coarse is not None and not 2 <= self.fine_per_coarse <= self.nchans:
            raise ValueError(f"--fine-per-coarse: expected 2..{self.nchans} fine channels per coarse "
                             f"channel, got {self.fine_per_coarse}")

    @property
    def stride(self) -> int:
        return self.width - self.overlap

    @property
    def starts(self) -> np.ndarray:
        starts = np.arange(0, self.nchans - self.width + 1, self.stride, dtype=np.int64)
        if starts[-1] + self.width < self.nchans:
            starts = np.append(starts, self.nchans - self.width)
        return starts

    def __len__(self) -> int:
        return len(self.starts)

    def dc_channels(self, start: int, stop: int) -> np.ndarray:
        """The coarse channels' centre (DC) channels in ``[start, stop)``."""
        if self.fine_per_coarse is None:
            return np.zeros(0, np.int64)
        half = self.fine_per_coarse // 2
        first = max(0, -(-(start - half) // self.fine_per_coarse))
        last = -(-(stop - half) // self.fine_per_coarse)       # exclusive
        return half + self.fine_per_coarse * np.arange(first, max(first, last), dtype=np.int64)

    def flags(self, start: int) -> str:
        """``dc`` / ``edge`` / both (``dc;edge``) / ``""`` for the window starting at ``start``."""
        if self.fine_per_coarse is None:
            return ""
        out = []
        if len(self.dc_channels(start, start + self.width)):
            out.append("dc")
        if start // self.fine_per_coarse != (start + self.width - 1) // self.fine_per_coarse:
            out.append("edge")
        return ";".join(out)


def fine_per_coarse_for(nchans: int, requested: int | str | None) -> int | None:
    """``--fine-per-coarse``: a number, ``none``, or ``auto`` (2^20 when the band is a whole
    number of GBT/Parkes high-resolution coarse channels, else unknown)."""
    if requested in (None, "none"):
        return None
    if requested == "auto":
        return HIRES_FINE_PER_COARSE if nchans % HIRES_FINE_PER_COARSE == 0 else None
    return int(requested)


def remove_dc(block: np.ndarray, start: int, plan: WindowPlan) -> np.ndarray:
    """Replace every DC channel in a block ``(..., T, n)`` of channels ``[start, start + n)`` by
    the mean of its neighbours (in place; a neighbour outside the block is not used)."""
    n = block.shape[-1]
    for channel in plan.dc_channels(start, start + n):
        i = int(channel - start)
        neighbours = [j for j in (i - 1, i + 1) if 0 <= j < n]
        if neighbours:
            # Finite neighbours only: a NaN next to the spike must not spread to it (and be
            # counted twice); with no finite neighbour the value stays for repair_nonfinite.
            values = block[..., neighbours]
            finite = np.isfinite(values)
            count = finite.sum(axis=-1)
            mean = np.where(finite, values, 0).sum(axis=-1) / np.maximum(count, 1)
            block[..., i] = np.where(count > 0, mean, block[..., i])
    return block


NONFINITE_FLAG = "nonfinite"
# Key of a window row (not a table column) holding, per file, [replaced samples, first
# integration, first channel] among the window's own channels (see repair_nonfinite).
NONFINITE_KEY = "_nonfinite"


def repair_nonfinite(native: np.ndarray) -> np.ndarray | None:
    """Replace the NaN / Inf samples of native windows ``(N, 6, T, W)`` in place (module
    docstring); returns their mask ``(N, 6, T, W)``, or None when every sample is finite."""
    import warnings

    finite = np.isfinite(native)
    if finite.all():
        return None
    values = np.where(finite, native, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)       # all-NaN slices: handled below
        row = np.nanmedian(values, axis=-1, keepdims=True)
        panel = np.nanmedian(values, axis=(-2, -1), keepdims=True)
    fill = np.where(np.isfinite(row), row, panel)
    fill = np.where(np.isfinite(fill), fill, 0.0).astype(native.dtype)
    bad = ~finite
    native[bad] = np.broadcast_to(fill, native.shape)[bad]
    return bad


def own_channels(plan: WindowPlan, starts: np.ndarray, window: int) -> int:
    """Channels ``[start, start + own)`` of a window that no later window starts in: every channel
    of the band is the own channel of exactly one window, so per-window counts add up to per-file
    counts whatever the overlap."""
    return int(starts[window + 1] - starts[window]) if window + 1 < len(starts) else plan.width


def nonfinite_summary(mask: np.ndarray, start: int, own: int) -> list[list[int]] | None:
    """Per file ``[count, first integration, first channel]`` of the replaced samples of one
    window's mask ``(6, T, W)`` among its own channels (channel numbers of the band); None when
    there are none (``-1`` for a file without any)."""
    part = mask[..., :own]
    if not part.any():
        return None
    out = []
    for panel in part:
        where = np.argwhere(panel)              # row-major: by integration, then channel
        out.append([int(len(where)), *((int(where[0, 0]), start + int(where[0, 1]))
                                       if len(where) else (-1, -1))])
    return out


def nonfinite_notes(paths: list[str], rows: list[dict]) -> list[str]:
    """A note per file with replaced samples, from the window rows' ``NONFINITE_KEY``."""
    import os

    totals, firsts = [0] * len(paths), [None] * len(paths)
    for row in rows:
        for p, (count, t, c) in enumerate(row.get(NONFINITE_KEY) or ()):
            if count:
                totals[p] += count
                firsts[p] = min(firsts[p] or (t, c), (t, c))
    return [f"{os.path.basename(paths[p])}: {totals[p]} non-finite sample(s) (NaN/Inf), the first "
            f"at integration {firsts[p][0]}, channel {firsts[p][1]} (from 0): replaced by their "
            f"integration's median, windows flagged {NONFINITE_FLAG}"
            for p in range(len(paths)) if totals[p]]


def resample_matrix(rows_in: int, rows_out: int, method: str = "area") -> np.ndarray:
    """``(rows_out, rows_in)`` float64 matrix taking a panel's rows to ``rows_out`` (module docstring)."""
    if method not in TIME_RESAMPLES:
        raise ValueError(f"--time-resample: expected one of {TIME_RESAMPLES}, got {method!r}")
    if rows_in == rows_out:
        return np.eye(rows_out)
    if method == "area":
        edges_out = np.arange(rows_out + 1) * rows_in / rows_out
        lo = np.maximum(edges_out[:-1, None], np.arange(rows_in)[None, :])
        hi = np.minimum(edges_out[1:, None], np.arange(1, rows_in + 1)[None, :])
        weights = np.clip(hi - lo, 0.0, None)
    else:
        centres = (np.arange(rows_out) + 0.5) * rows_in / rows_out - 0.5
        centres = np.clip(centres, 0.0, rows_in - 1)
        low = np.floor(centres).astype(int)
        high = np.minimum(low + 1, rows_in - 1)
        frac = centres - low
        weights = np.zeros((rows_out, rows_in))
        np.add.at(weights, (np.arange(rows_out), low), 1.0 - frac)
        np.add.at(weights, (np.arange(rows_out), high), frac)
    return weights / weights.sum(axis=1, keepdims=True)


def make_snippets(native: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Native windows ``(N, 6, T, W)`` float32 -> model snippets ``(N, 6, rows_out, W)`` float16:
    resampled in time with ``matrix`` and normalised per panel (mean 0, std 1; a constant panel
    becomes zeros)."""
    x = np.einsum("ot,nptw->npow", matrix.astype(np.float32), native.astype(np.float32))
    mean = x.mean(axis=(2, 3), keepdims=True)
    std = x.std(axis=(2, 3), keepdims=True)
    x = (x - mean) / np.where(std > 0, std, 1.0)
    return x.astype(np.float16)
