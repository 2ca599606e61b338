"""De-Doppler kernels on CPU without TensorFlow: turboSETI's Taylor tree and a brute-force reference.

numpy + Numba (``parallel=True``: the work is split over batch items and blocks of channels and
runs on ``numba.get_num_threads()`` threads). Importing this module imports no TensorFlow; the
kernels are compiled on their first call (a few seconds, once per process and argument types).

Inputs are spectrograms ``(T, F)`` (rows = integrations, columns = fine channels) or batches of
them ``(B, T, F)``, float32 (float16 / float64 are converted; anything else is a ``ValueError``).
Every output keeps the input's leading batch axis, if any. Channels outside the band read as zero:
a path that leaves the band sums only its in-band part (turboSETI leaves those channels partly
summed instead; see :func:`taylor_tree`).

Drift grid (turboSETI's)
------------------------
The time axis is padded with zero rows to ``T_pad = padded_time(T)``, the next power of two (as
turboSETI's ``DATAH5.load_data`` does), and drift index ``d`` (``0 <= d < T_pad``) is a drift of
``d`` channels over the ``T_pad - 1`` row steps: ``d / (T_pad - 1)`` channels per row
(turboSETI's ``drift_rate_resolution`` is ``DELTAF / ((T_pad - 1) DELTAT)``, the same unit in
Hz/s). ``drift_block = b`` adds ``b`` whole channels per row (turboSETI's ``drift_block``
loop, ``np.roll`` of row ``t`` by ``b t`` before the tree): index ``d`` of block ``b`` is the rate
``b + d / (T_pad - 1)``, i.e. the grid point ``b (T_pad - 1) + d``.

The path of a tree output
-------------------------
``taylor_tree(x)[d, f]`` is ``sum_t x[t, f + tree_offsets(T_pad, d)[t]]`` (rows ``t >= T`` are
the zero padding): a path that starts at channel ``f`` in row 0 and ends at ``f + d`` in row
``T_pad - 1``. ``tree_offsets`` is the Taylor (1974) recursion that turboSETI's ``flt`` kernel
computes: a block of ``n`` rows at drift ``d`` is its first half at drift ``d // 2`` plus its
second half at drift ``d // 2`` moved ``d - d // 2`` channels. The tree path is a staircase
close to the straight line ``f + d t / (T_pad - 1)``: equal to its rounding
(:func:`brute_force` at rate ``d / (T_pad - 1)``) for every ``d`` when ``T_pad <= 8``, and off by
one channel (never more) in some rows for some ``d`` beyond (:func:`exact_drifts` lists where they
agree): for 16 rows 10 of the 16 drifts are exact and every path is on the rounded line in at least
14 rows; for 273 rows (``T_pad = 512``) 20 of 512 are exact and some paths are on it in only 69 %
of the rows, so a one-channel-wide line loses up to a third of its power in the tree sum.
Negative drifts are turboSETI's: the band is flipped, searched with the tree, and the result
flipped back, so ``taylor_tree(x, negative=True)[d, f]`` is
``sum_t x[t, f - tree_offsets(T_pad, d)[t]]``, the mirror image (start channel ``f`` in row 0).

Brute force
-----------
``brute_force(x, rates)[k, f]`` is ``sum_t x[t, f + round(rates[k] t)]`` over the real rows
``t < T`` (rates in channels per row, any sign), with ``round`` half away from zero
(``sign(v) floor(|v| + 1/2)``), so that a negative rate's path is the mirror image of the positive
one, as in the tree. Cost ``O(T F D)`` against the tree's ``O(T_pad F log2 T_pad)``.

Desmearing
----------
A needle drifting ``|r| > 1`` channels per row crosses several channels within one integration,
each holding part of its power, while a plain path picks one channel per row: it loses about a
factor ``|r|`` of the summed power. ``desmear=True`` sums, in each row, every channel the path
crosses during that integration (as hyperseti's and BLISS's smearing corrections do, which then
recover ~``sqrt(|r|)`` in SNR since the noise of the extra channels adds too). The path is at
``a_t`` at the start of row ``t`` and at ``a_{t+1}`` at its end (setigen's convention: a path is
evaluated at the start of each integration and integrated over it):

* brute force, ``|r| > 1``: row ``t`` adds channels ``f + a_t .. f + a_{t+1}`` with
  ``a_t = round(r t)`` (``f + a_{t+1} .. f + a_t`` for ``r < 0``), ``|a_{t+1} - a_t| + 1`` channels;
  at ``|r| <= 1`` it is the plain sum (one channel per row).
* tree, ``drift_block = b >= 1`` (rates ``b .. b + 1``): row ``t`` adds the ``b + 1`` channels
  ``p_t .. p_t + b`` from its path channel ``p_t`` (all the channels crossed when the tree path
  moves ``b`` channels to the next row, all but the last when it moves ``b + 1``), mirrored for
  ``negative``; with ``b = 0`` desmearing changes nothing.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# Channels per parallel job (plus, for the tree, a halo of T_pad - 1 channels): the tree's two
# (T_pad, CHUNK) float32 buffers are 0.5 MB at T_pad = 16, within a core's L2 cache.
CHUNK = 4096


def padded_time(time: int) -> int:
    """Rows after turboSETI's zero padding: the next power of two ``>= time`` (``>= 1``)."""
    time = int(time)
    if time < 1:
        raise ValueError(f"de-Doppler: a spectrogram needs at least one row, got {time}")
    return 1 << (time - 1).bit_length()


def drift_rates(time: int, drift_block: int = 0) -> np.ndarray:
    """Drift rate of every tree output row, in channels per row: ``(T_pad,)`` float64,
    ``drift_block + d / (T_pad - 1)`` for drift index ``d`` (0 for a one-row spectrogram)."""
    n = padded_time(time)
    if n == 1:
        return np.full(1, float(drift_block))
    return drift_block + np.arange(n) / (n - 1)


def tree_offsets(time_pad: int, drift: int) -> np.ndarray:
    """Channel offset, in every row, of the path that tree output row ``drift`` sums:
    ``(time_pad,)`` int64 (``time_pad`` a power of two, ``0 <= drift < time_pad``)."""
    if time_pad < 1 or time_pad & (time_pad - 1):
        raise ValueError(f"tree_offsets: time_pad must be a power of two, got {time_pad}")
    if not 0 <= drift < time_pad:
        raise ValueError(f"tree_offsets: drift must be in [0, {time_pad}), got {drift}")
    if time_pad == 1:
        return np.zeros(1, np.int64)
    half = tree_offsets(time_pad // 2, drift // 2)
    return np.concatenate([half, half + (drift - drift // 2)])


def round_half_away(v):
    """``sign(v) floor(|v| + 1/2)`` as int64: the brute force's rounding of path positions."""
    v = np.asarray(v, np.float64)
    return (np.sign(v) * np.floor(np.abs(v) + 0.5)).astype(np.int64)


def exact_drifts(time: int) -> np.ndarray:
    """Drift indices ``d`` whose tree path equals the brute-force path at rate ``d / (T_pad - 1)``
    in every real row ``t < time``: ``(K,)`` int64 (all ``T_pad`` of them for ``T_pad <= 8``)."""
    n = padded_time(time)
    rates = drift_rates(time)
    rows = np.arange(time)
    return np.array([d for d in range(n)
                     if np.array_equal(tree_offsets(n, d)[:time], round_half_away(rates[d] * rows))],
                    np.int64)


def _as_batch(x, what: str) -> tuple[np.ndarray, bool]:
    """``(B, T, F)`` float32 C-contiguous view or copy of ``x``, and whether ``x`` was unbatched."""
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float16, np.float64):
        raise ValueError(f"{what}: expected a float32 spectrogram (float16/float64 are converted), "
                         f"got dtype {x.dtype}")
    if x.ndim not in (2, 3):
        raise ValueError(f"{what}: expected a spectrogram (time, freq) or a batch (batch, time, freq), "
                         f"got shape {x.shape}")
    if min(x.shape) < 1:
        raise ValueError(f"{what}: empty spectrogram, shape {x.shape}")
    single = x.ndim == 2
    x = np.ascontiguousarray(x[None] if single else x, dtype=np.float32)
    return x, single


@njit(cache=True)
def tree_in_buffer(x, first, second, n, drift_block, width_k, negative, b, lo, width):
    """The tree of ``width`` local channels of spectrogram ``x[b]`` ``(B, T, F)`` in the work
    buffers ``first`` and ``second`` (each ``(>= n, >= width)`` float32); returns 0 when the
    result is in ``first``, 1 when in ``second`` (``first`` holds it after an even number of
    stages, ``log2 n``): row ``d`` of it is tree drift ``d`` of local channel ``j``, global
    channel ``lo + j`` (``lo`` may be negative: channels outside the band read as zero).

    The path of local ``j`` goes up from ``lo + j`` (row ``t`` at ``lo + j + drift_block t +
    tree_offsets(n, d)[t]``), or, when ``negative``, down (``lo + j - drift_block t - ...``): the
    mirror image, the same sums as the tree of the flipped band (turboSETI's negative drifts)
    without flipping anything. ``width_k > 1`` adds that many neighbouring channels per row, the
    path's own and those it moves on to (desmearing). Paths that leave the local buffer read zero
    there: only local ``j < width - (n - 1)`` (up) or ``j >= n - 1`` (down) are whole."""
    # Numba vectorises a loop only when its indices are the loop variable itself (an index
    # computed from it is checked for wrap-around, element by element): hence the sliced views.
    time, freq = x.shape[1], x.shape[2]
    for t in range(n):
        row = first[t]
        for j in range(width):
            row[j] = 0.0
    for t in range(time):
        src = x[b, t]
        for k in range(width_k):
            shift = drift_block * t + k
            p0 = lo - shift if negative else lo + shift     # global channel of local 0
            j0 = max(0, -p0)
            m = min(width, freq - p0)                      # in-band channels
            if m <= j0:
                continue
            row = first[t, j0:m]
            np.add(row, src[p0 + j0:p0 + m], row)
    half = 1
    stage = 0
    while half < n:
        size = 2 * half
        src2 = first if stage % 2 == 0 else second
        dst = second if stage % 2 == 0 else first
        for g in range(0, n, size):
            for d in range(size):
                h = d // 2
                # first half + second half moved d - h channels along the path (zero past the
                # buffer), written out here, not as a call: Numba vectorises it only inlined.
                shift = d - h
                a = src2[g + h]
                bb = src2[g + half + h]
                out = dst[g + d]
                if negative:
                    for j in range(shift):
                        out[j] = a[j]
                    ao = out[shift:]
                    aa = a[shift:]
                    for j in range(width - shift):
                        ao[j] = aa[j] + bb[j]
                else:
                    ahead = bb[shift:]
                    for j in range(width - shift):
                        out[j] = a[j] + ahead[j]
                    for j in range(width - shift, width):
                        out[j] = a[j]
        half = size
        stage += 1
    return stage % 2


@njit(cache=True)
def _tree_job(x, out, first, second, n, drift_block, width_k, negative, b, c0, c1, row0, row_step,
              d_first):
    """The tree of channels ``c0 .. c1 - 1`` of spectrogram ``b``: tree drift ``d >= d_first``
    goes to ``out[b, row0 + row_step * d]``."""
    # Every path of an output channel stays inside width: n - 1 more channels above (up) or
    # below (down).
    width = c1 - c0 + n - 1
    lo = c0 - (n - 1) if negative else c0
    org = n - 1 if negative else 0
    res = second if tree_in_buffer(x, first, second, n, drift_block, width_k, negative, b, lo, width) else first
    for d in range(d_first, n):
        row = res[d, org:org + c1 - c0]
        dest = out[b, row0 + row_step * d, c0:c1]
        for j in range(c1 - c0):
            dest[j] = row[j]


@njit(parallel=True, cache=True, nogil=True)
def _tree_kernel(x, out, n, drift_block, width_k, negative, chunk, row0, row_step, d_first):
    """Parallel over (spectrogram, block of ``chunk`` channels); see ``_tree_job``."""
    batch, freq = x.shape[0], x.shape[2]
    nchunks = (freq + chunk - 1) // chunk
    for job in prange(batch * nchunks):
        b = job // nchunks
        c0 = (job % nchunks) * chunk
        first = np.empty((n, chunk + n - 1), np.float32)
        second = np.empty((n, chunk + n - 1), np.float32)
        _tree_job(x, out, first, second, n, drift_block, width_k, negative, b, c0,
                  min(freq, c0 + chunk), row0, row_step, d_first)


def taylor_tree(x, negative: bool = False, drift_block: int = 0, desmear: bool = False) -> np.ndarray:
    """Taylor-tree de-Doppler of ``(T, F)`` or ``(B, T, F)`` -> ``(T_pad, F)`` / ``(B, T_pad, F)``
    float32.

    Row ``d`` holds, for every start channel ``f`` (the path's channel in row 0), the sum along
    ``f + s (drift_block t + tree_offsets(T_pad, d)[t])`` with ``s = -1`` if ``negative`` else
    ``+1``: drift rate ``s (drift_block + d / (T_pad - 1))`` channels per row
    (:func:`drift_rates`). ``desmear`` (with ``drift_block >= 1``): each row adds the
    ``drift_block + 1`` channels from the path's channel onwards (see the module notes).

    Against turboSETI's ``find_doppler`` (no shoulders): the same sums for start channels below
    ``F - 2 T_pad``, in natural drift order (turboSETI's CPU kernel stores them bit-reversed).
    turboSETI's paths from the last ``2 T_pad`` channels come out partly summed, and its
    ``drift_block`` rows are wrapped round the band by ``np.roll``; here channels past the band
    edge read as zero.
    """
    x, single = _as_batch(x, "taylor_tree")
    if int(drift_block) != drift_block or drift_block < 0:
        raise ValueError(f"taylor_tree: drift_block must be an integer >= 0, got {drift_block!r}")
    drift_block = int(drift_block)
    n = padded_time(x.shape[1])
    out = np.empty((x.shape[0], n, x.shape[2]), np.float32)
    width_k = drift_block + 1 if desmear and drift_block >= 1 else 1
    _tree_kernel(x, out, n, drift_block, width_k, bool(negative), CHUNK, 0, 1, 0)
    return out[0] if single else out


def taylor_dedoppler(x) -> tuple[np.ndarray, np.ndarray]:
    """Both drift signs of turboSETI's grid up to one channel per row (its ``drift_block`` 0):
    ``(maps, rates)`` with maps ``(T_pad * 2 - 1, F)`` / ``(B, T_pad * 2 - 1, F)`` float32 and
    rates ``(T_pad * 2 - 1,)`` channels per row, ascending.

    Row ``i`` is drift index ``i - (T_pad - 1)``: rows ``T_pad - 1 ..`` are ``taylor_tree(x)``,
    rows below are ``taylor_tree(x, negative=True)[::-1]`` without its drift 0 (computed in place,
    no concatenation). Every row is indexed by the path's start channel (row 0). No drift on this
    grid is above one channel per row, so there is nothing to desmear.
    """
    x, single = _as_batch(x, "taylor_dedoppler")
    n = padded_time(x.shape[1])
    maps = np.empty((x.shape[0], 2 * n - 1, x.shape[2]), np.float32)
    _tree_kernel(x, maps, n, 0, 1, False, CHUNK, n - 1, 1, 0)
    _tree_kernel(x, maps, n, 0, 1, True, CHUNK, n - 1, -1, 1)
    rates = drift_rates(x.shape[1])
    return maps[0] if single else maps, np.concatenate([-rates[:0:-1], rates])


@njit(parallel=True, cache=True, nogil=True)
def hitsearch_fused(x, blocks, negatives, row_lo, rows, rates, grid, median, std, threshold,
                     maxsnr, maxdrift, maxindex, chunk):
    """turboSETI's ``hitsearch`` (:mod:`tfseti.dedoppler.hitsearch`) over the trees of a drift plan, fused per block of
    ``chunk`` channels (parallel over blocks): tree ``i`` (``drift_block = blocks[i]``, flipped band
    when ``negatives[i]``) is computed for the block's channels in a cache-sized buffer, and its
    rows ``rows[row_lo[i]:row_lo[i + 1]]`` (tree drifts, in search order, with their ``rates`` and
    ``grid`` integers) are searched at once, so no tree of the whole band is ever stored.

    Per row ``snr = (sum - median) / std`` (float32); a value ``> threshold`` counts, and replaces
    ``maxsnr`` (with its rate and grid integer) when strictly larger. Each channel sees the trees
    and rows in plan order, so the result is the sequential one. Sums below ``bound`` (``median +
    threshold std`` less a relative 1e-5: float32 rounding cannot lift them over the threshold) are
    skipped without the division. Returns the count of values above the threshold."""
    time, freq = x.shape[1], x.shape[2]
    n = 1
    while n < time:
        n *= 2
    bound = -np.inf
    if threshold > 0:
        bound = np.float64(median) + np.float64(threshold) * np.float64(std) * (1.0 - 1e-5)
    nchunks = (freq + chunk - 1) // chunk
    counts = np.zeros(nchunks, np.int64)
    for job in prange(nchunks):
        c0 = job * chunk
        c1 = min(freq, c0 + chunk)
        out_w = c1 - c0
        first = np.empty((n, chunk + n - 1), np.float32)
        second = np.empty((n, chunk + n - 1), np.float32)
        count = 0
        for i in range(blocks.shape[0]):
            neg = negatives[i]
            # Channels c0 .. c1-1 are local 0 .. out_w-1 (up), or n-1 .. (down: the paths
            # reach n - 1 channels below).
            org = n - 1 if neg else 0
            res = second if tree_in_buffer(x, first, second, n, blocks[i], 1, neg, 0, c0 - org,
                                           out_w + n - 1) else first
            for k in range(row_lo[i], row_lo[i + 1]):
                src = res[rows[k], org:org + out_w]
                for j in range(out_w):
                    v0 = src[j]
                    if v0 <= bound:
                        continue
                    v = (v0 - median) / std
                    if v > threshold:
                        count += 1
                        c = c0 + j
                        if v > maxsnr[c]:
                            maxsnr[c] = v
                            maxdrift[c] = rates[k]
                            maxindex[c] = grid[k]
        counts[job] = count
    return counts.sum()


@njit(cache=True)
def _cadence_job(x, tree_block, tree_neg, n, rate_tree, rate_row, offsets, off_panels, on_panels,
                 scale, half_k, half_f, c0, c1, best_line, best_k, best_two, panel_snr):
    """One block of output channels ``c0 .. c1 - 1`` of :func:`cadence_search` (see there)."""
    panels, freq = x.shape[0], x.shape[2]
    ntree = tree_block.shape[0]
    nrate = rate_tree.shape[0]
    omin = offsets.min()
    omax = offsets.max()
    # Start channels every path of an output channel (with the OFF filter's channel halo) reads.
    s0 = c0 - half_f + omin
    s1 = c1 + half_f + omax
    span = s1 - s0
    width = span + n - 1
    # Each panel's trees, computed in place: start channel s of tree i is store[p, i, :, s - s0 +
    # org[i]] (org: the n - 1 channels a downward path reaches below its start).
    store = np.empty((panels, ntree, n, width), np.float32)
    spare = np.empty((n, width), np.float32)
    org = np.zeros(ntree, np.int64)
    for i in range(ntree):
        if tree_neg[i]:
            org[i] = n - 1
    for p in range(panels):
        for i in range(ntree):
            if tree_in_buffer(x, store[p, i], spare, n, tree_block[i], 1, tree_neg[i], p,
                              s0 - org[i], width):
                store[p, i, :, :] = spare
    out_w = c1 - c0
    wide = out_w + 2 * half_f
    # Channels outside the band take no part in the veto (TF's max_pool2d SAME ignores them).
    j_lo = max(0, half_f - c0)
    j_hi = min(wide, freq - c0 + half_f)
    # Rows k - half_k .. k of the OFF maxima and the ON second-best, in rings: the veto of rate
    # k - half_k is taken as soon as rate k is done, so the work stays in the cache.
    # Numba (LLVM) vectorises a loop that writes one array and only reads others, or a ufunc with
    # out=; a loop updating an array in place (a[j] = max(a[j], b[j])) runs element by element.
    # Hence the ufuncs, the ping-pong buffers and the sliced views (see tree_in_buffer) below.
    ring = 2 * half_k + 1
    near = np.empty((ring, out_w), np.float32)
    second = np.empty((ring, out_w), np.float32)
    om = np.empty((2, wide), np.float32)
    veto = np.empty(out_w, np.float32)
    diff = np.empty(out_w, np.float32)
    line = np.empty(out_w, np.float32)
    bl = np.full((2, out_w), -np.inf, np.float32)     # best straight line so far (ping-pong)
    bk = np.zeros((2, out_w), np.int32)               # its rate
    bt = np.full(out_w, -np.inf, np.float32)
    cur = 0
    root6 = np.float32(1.0 / np.sqrt(6.0))
    o1, o3, o5 = off_panels[0], off_panels[1], off_panels[2]
    e0, e2, e4 = on_panels[0], on_panels[1], on_panels[2]
    for k in range(nrate + half_k):
        if k < nrate:
            i = rate_tree[k]
            d = rate_row[k]
            base = org[i] - omin
            b1 = offsets[o1, k] + base
            b3 = offsets[o3, k] + base
            b5 = offsets[o5, k] + base
            a1 = store[o1, i, d, b1:]
            a3 = store[o3, i, d, b3:]
            a5 = store[o5, i, d, b5:]
            m0 = om[0]
            for j in range(wide):
                m0[j] = max(max(a1[j], a3[j]), a5[j])
            for j in range(j_lo):
                m0[j] = -np.inf
            for j in range(j_hi, wide):
                m0[j] = -np.inf
            # the OFF maxima within +-half_f channels, by doubling: log2(2 half_f + 1) + 1 passes
            src = 0
            width2 = 1
            while 2 * width2 <= 2 * half_f + 1:
                here = om[src]
                ahead = om[src, width2:]
                there = om[1 - src]
                for j in range(wide - width2):
                    there[j] = max(here[j], ahead[j])
                src = 1 - src
                width2 *= 2
            here = om[src]
            ahead = om[src, 2 * half_f + 1 - width2:]
            dst2 = near[k % ring]
            for j in range(out_w):
                dst2[j] = max(here[j], ahead[j])
            v0 = store[e0, i, d, offsets[e0, k] + base + half_f:]
            v2 = store[e2, i, d, offsets[e2, k] + base + half_f:]
            v4 = store[e4, i, d, offsets[e4, k] + base + half_f:]
            w1 = a1[half_f:]
            w3 = a3[half_f:]
            w5 = a5[half_f:]
            sec = second[k % ring]
            for j in range(out_w):
                p0 = v0[j]
                p2 = v2[j]
                p4 = v4[j]
                sec[j] = p0 + p2 + p4 - max(max(p0, p2), p4) - min(min(p0, p2), p4)
            for j in range(out_w):
                line[j] = (v0[j] + v2[j] + v4[j] - (w1[j] + w3[j] + w5[j])) * root6
            old_l, old_k = bl[cur], bk[cur]
            new_l, new_k = bl[1 - cur], bk[1 - cur]
            kk = np.int32(k)
            for j in range(out_w):      # one store per loop: then it vectorises
                new_k[j] = kk if line[j] > old_l[j] else old_k[j]
            np.maximum(old_l, line, new_l)
            cur = 1 - cur
        c = k - half_k
        if c >= 0:
            # the veto of rate c: the OFF maxima of rates c - half_k .. c + half_k
            k0 = max(0, c - half_k)
            k1 = min(nrate, c + half_k + 1)
            veto[:] = near[k0 % ring]
            for a in range(k0 + 1, k1):
                np.maximum(veto, near[a % ring], veto)
            np.subtract(second[c % ring], veto, diff)
            np.maximum(bt, diff, bt)
    bl = bl[cur]
    bk = bk[cur]
    for j in range(out_w):
        # the sums are scaled here, once (every score is linear in them)
        best_line[c0 + j] = bl[j] * scale
        best_two[c0 + j] = bt[j] * scale
        k = bk[j]
        best_k[c0 + j] = k
        i = rate_tree[k]
        d = rate_row[k]
        for p in range(panels):
            panel_snr[p, c0 + j] = store[p, i, d, offsets[p, k] + org[i] - omin + half_f + j] * scale


@njit(parallel=True, cache=True, nogil=True)
def cadence_search(x, tree_block, tree_neg, rate_tree, rate_row, offsets, off_panels, on_panels,
                   scale, half_k, half_f, out_lo, out_hi, chunk):
    """The straight-line and two-of-three searches of a cadence over a band, from per-panel trees
    (the kernel of :mod:`tfseti.dedoppler.band_search`, which documents the paths and scores).

    ``x`` ``(6, R, F)``: the cleaned block rows of the six panels. Tree ``i`` is the tree of each
    panel at ``drift_block = tree_block[i]`` (flipped band when ``tree_neg[i]``); cadence rate
    ``k`` reads, in panel ``p``, tree ``rate_tree[k]`` row ``rate_row[k]`` at start channel
    ``f + offsets[p, k]`` for output channel ``f``. Returns, for output channels ``out_lo ..
    out_hi - 1`` (parallel over blocks of ``chunk``): the best straight-line score and its rate
    index, the best two-of-three score, and the six panels' sums on the best straight path
    ``(6, F)`` (each scaled by ``scale``); channels outside ``[out_lo, out_hi)`` are NaN."""
    panels, freq = x.shape[0], x.shape[2]
    n = 1
    while n < x.shape[1]:
        n *= 2
    best_line = np.full(freq, np.nan, np.float32)
    best_k = np.zeros(freq, np.int64)
    best_two = np.full(freq, np.nan, np.float32)
    panel_snr = np.full((panels, freq), np.nan, np.float32)
    nchunks = (out_hi - out_lo + chunk - 1) // chunk
    for job in prange(nchunks):
        c0 = out_lo + job * chunk
        c1 = min(out_hi, c0 + chunk)
        _cadence_job(x, tree_block, tree_neg, n, rate_tree, rate_row, offsets, off_panels,
                     on_panels, scale, half_k, half_f, c0, c1, best_line, best_k, best_two,
                     panel_snr)
    return best_line, best_k, best_two, panel_snr


@njit(cache=True)
def _accumulate(acc, src, j0, j1, offset):
    """acc[j] += src[j + offset] for j in [j0, j1) (1-D rows: vectorised)."""
    for j in range(j0, j1):
        acc[j] += src[j + offset]


@njit(parallel=True, cache=True, nogil=True)
def _brute_kernel(x, lo, hi, out, chunk):
    batch, time, freq = x.shape
    ndrift = lo.shape[0]
    nchunks = (freq + chunk - 1) // chunk
    for job in prange(batch * ndrift * nchunks):
        b = job // (ndrift * nchunks)
        r = (job // nchunks) % ndrift
        c0 = (job % nchunks) * chunk
        c1 = min(freq, c0 + chunk)
        acc = out[b, r, c0:c1]
        acc[:] = 0.0
        for t in range(time):
            src = x[b, t]
            for k in range(lo[r, t], hi[r, t] + 1):
                # channels f in [c0, c1) with 0 <= f + k < freq
                f0 = max(c0, -k)
                f1 = min(c1, freq - k)
                _accumulate(acc, src, f0 - c0, f1 - c0, c0 + k)


def brute_force_paths(time: int, rates, desmear: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The channel offsets each brute-force path adds in each row: ``(lo, hi)``, both
    ``(len(rates), time)`` int64, inclusive (``lo == hi == round(r t)`` without desmearing or at
    ``|r| <= 1``)."""
    rates = np.asarray(rates, np.float64).reshape(-1)
    rows = np.arange(time + 1, dtype=np.float64)
    pos = round_half_away(rates[:, None] * rows[None, :])                 # (D, T + 1)
    a, nxt = pos[:, :-1], pos[:, 1:]
    if not desmear:
        return a.copy(), a.copy()
    fast = np.abs(rates[:, None]) > 1
    return np.where(fast, np.minimum(a, nxt), a), np.where(fast, np.maximum(a, nxt), a)


def brute_force(x, rates, desmear: bool = False) -> np.ndarray:
    """Brute-force de-Doppler of ``(T, F)`` or ``(B, T, F)`` at ``rates`` (channels per row, any
    sign): ``(D, F)`` / ``(B, D, F)`` float32, ``out[k, f] = sum_t x[t, f + round(rates[k] t)]``
    (half away from zero; zero outside the band), over the real rows only. ``desmear``: every
    channel the path crosses within a row (see the module notes)."""
    x, single = _as_batch(x, "brute_force")
    rates = np.asarray(rates, np.float64)
    if rates.ndim != 1 or rates.size == 0 or not np.all(np.isfinite(rates)):
        raise ValueError(f"brute_force: rates must be a non-empty 1-D array of finite drift rates, "
                         f"got shape {rates.shape}")
    lo, hi = brute_force_paths(x.shape[1], rates, desmear)
    out = np.empty((x.shape[0], rates.size, x.shape[2]), np.float32)
    _brute_kernel(x, lo, hi, out, CHUNK)
    return out[0] if single else out
