"""Compiled (numba) kernels for :mod:`sparsecodecs.compute`: products that skip the zeros.

Each kernel walks the rows of a weight ``W`` in one sparse layout (N:M groups, a bitmask, CSR),
gathers a row's kept values and their column indices into a small scratch buffer, and hands the
row to :func:`_emit`, which does the arithmetic for every layout alike:

* ``trans=False``: ``yt[r, :] = sum_t vals[t] * xt[cols[t], :]``, i.e. ``Y.T = W @ X.T``, with
  ``xt`` of shape (in, batch) and ``yt`` of shape (out, batch);
* ``trans=True``: ``yt[cols[t], :] += vals[t] * xt[r, :]``, i.e. ``Y.T += W.T @ X.T``, with
  ``xt`` of shape (out, batch) and ``yt`` of shape (in, batch), zeroed by the caller.

Only kept values are multiplied; every sum is accumulated in float32, in ascending column
order. Values arrive as their bit patterns (``vbits``) and are turned into float32 either by a
look-up table over every bit pattern (``mode`` TABLE, for 8- and 16-bit dtypes: ``vtab`` is the
dtype's own ``astype(float32)``), by a shift (BFLOAT16: bfloat16 is the top half of float32) or
read from ``vf``, a float32 array of the same length (FLOATS). Every kernel returns the number
of kept values it multiplied (per batch column), or -1 for a corrupt frame (a non-zero value in
an N:M padding slot).

Kernels trust their inputs: the codecs' ``decode_parts`` validated indices, counts and codes.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["BFLOAT16", "FLOATS", "TABLE", "csr_matmul", "mask_matmul", "nm_matmul"]


#: How values become float32: through the table, as bfloat16 (shifted), or read from ``vf``.
TABLE, BFLOAT16, FLOATS = 0, 1, 2


@njit(cache=True, nogil=True, inline="always")
def _convert(vbits, v0, cnt, vtab, vf, mode, vals, vals_u):  # type: ignore[no-untyped-def]
    """``vals[:cnt]`` = values ``v0 .. v0+cnt-1`` as float32 (``vals_u`` is ``vals`` as uint32)."""
    if mode == BFLOAT16:
        for t in range(cnt):
            vals_u[t] = np.uint32(vbits[v0 + t]) << np.uint32(16)
    elif mode == TABLE:
        for t in range(cnt):
            vals[t] = vtab[vbits[v0 + t]]
    else:
        for t in range(cnt):
            vals[t] = vf[v0 + t]


@njit(cache=True, nogil=True, inline="always")
def _emit(r, cidx, vals, cnt, xt, yt, acc, trans):  # type: ignore[no-untyped-def]
    """Multiply row ``r`` of W (``cnt`` kept values at columns ``cidx``); see the module doc."""
    nb = xt.shape[1]
    if trans:
        for t in range(cnt):
            c = cidx[t]
            v = vals[t]
            for b in range(nb):
                yt[c, b] += v * xt[r, b]
    elif nb == 1:
        # four independent sums, so the additions do not wait on each other
        s0 = s1 = s2 = s3 = np.float32(0.0)
        t = 0
        while t + 4 <= cnt:
            s0 += vals[t] * xt[cidx[t], 0]
            s1 += vals[t + 1] * xt[cidx[t + 1], 0]
            s2 += vals[t + 2] * xt[cidx[t + 2], 0]
            s3 += vals[t + 3] * xt[cidx[t + 3], 0]
            t += 4
        while t < cnt:
            s0 += vals[t] * xt[cidx[t], 0]
            t += 1
        yt[r, 0] = (s0 + s1) + (s2 + s3)
    else:
        for b in range(nb):
            acc[b] = 0.0
        for t in range(cnt):
            c = cidx[t]
            v = vals[t]
            for b in range(nb):
                acc[b] += v * xt[c, b]
        for b in range(nb):
            yt[r, b] = acc[b]


@njit(cache=True, nogil=True)
def _scratch(cols, nb):  # type: ignore[no-untyped-def]
    """(column indices, float32 values, the values as uint32, batch accumulator) buffers."""
    vals_u = np.empty(cols + 1, np.uint32)
    return np.empty(cols + 1, np.int64), vals_u.view(np.float32), vals_u, np.empty(nb, np.float32)


@njit(cache=True, nogil=True, inline="always")
def _row_codes(packed, lut, w, j, count, codes):  # type: ignore[no-untyped-def]
    """The next ``count`` group codes into ``codes``, reading on from word ``w``, digit ``j``;
    returns the new ``(w, j)``. Whole words are unpacked without a per-group branch."""
    k = lut.shape[1]
    q = 0
    while q < count and j != 0:
        codes[q] = lut[packed[w], j]
        q += 1
        j += 1
        if j == k:
            j = 0
            w += 1
    while q + k <= count:
        b = packed[w]
        for d in range(k):
            codes[q + d] = lut[b, d]
        q += k
        w += 1
    while q < count:
        codes[q] = lut[packed[w], j]
        q += 1
        j += 1
    return w, j


@njit(cache=True, nogil=True)
def nm_matmul(packed, lut, positions, m, rows, cols, vbits, vtab, vf, mode, xt, yt, trans):  # type: ignore[no-untyped-def]
    """N:M groups along the rows: group ``g`` has code ``lut[packed[g // k], g % k]`` and its
    ``n`` values ``g*n .. g*n+n-1`` at the ascending positions ``positions[code]``. Slots past
    the end of a row (padding, the last slots of its last group) are skipped; they must hold
    zeros (else -1)."""
    n = positions.shape[1]
    gpr = (cols + m - 1) // m
    cidx, vals, vals_u, acc = _scratch(gpr * n, xt.shape[1])
    codes = np.empty(gpr + 1, np.int64)
    pos = positions.astype(np.int64)
    w = 0
    j = 0
    count = 0
    for r in range(rows):
        w, j = _row_codes(packed, lut, w, j, gpr, codes)
        if n == 2:  # the common case (2:4, 2:8), unrolled
            for q in range(gpr):
                c = codes[q]
                cidx[2 * q] = q * m + pos[c, 0]
                cidx[2 * q + 1] = q * m + pos[c, 1]
        else:
            for q in range(gpr):
                c = codes[q]
                for t in range(n):
                    cidx[q * n + t] = q * m + pos[c, t]
        cnt = gpr * n
        v0 = r * cnt
        while cnt and cidx[cnt - 1] >= cols:  # padding slots
            cnt -= 1
            if vbits[v0 + cnt] != 0:
                return -1
        _convert(vbits, v0, cnt, vtab, vf, mode, vals, vals_u)
        _emit(r, cidx, vals, cnt, xt, yt, acc, trans)
        count += cnt
    return count


@njit(cache=True, nogil=True)
def mask_matmul(mask, rows, cols, bit_pos, bit_cnt, vbits, vtab, vf, mode, xt, yt, trans):  # type: ignore[no-untyped-def]
    """A bit per element of the flat (rows x cols) weight, LSB first; the set bits' values in
    order. Whole mask bytes inside a row go through the ``bit_pos`` / ``bit_cnt`` tables."""
    cidx, vals, vals_u, acc = _scratch(cols, xt.shape[1])
    j = 0
    for r in range(rows):
        start = r * cols
        end = start + cols
        e = start
        cnt = 0
        while e < end:
            if (e & 7) == 0 and e + 8 <= end:
                byte = mask[e >> 3]
                for t in range(bit_cnt[byte]):
                    cidx[cnt] = e - start + bit_pos[byte, t]
                    cnt += 1
                e += 8
            else:
                if (mask[e >> 3] >> (e & 7)) & 1:
                    cidx[cnt] = e - start
                    cnt += 1
                e += 1
        _convert(vbits, j, cnt, vtab, vf, mode, vals, vals_u)
        _emit(r, cidx, vals, cnt, xt, yt, acc, trans)
        j += cnt
    return j


@njit(cache=True, nogil=True)
def csr_matmul(indptr, indices, cols, vbits, vtab, vf, mode, xt, yt, trans):  # type: ignore[no-untyped-def]
    """scipy.sparse CSR rows: row ``r`` holds values ``indptr[r] .. indptr[r+1]-1`` at the
    columns ``indices``. (CSC of W is CSR of W.T: the caller flips ``trans``.)"""
    rows = indptr.size - 1
    cidx, vals, vals_u, acc = _scratch(cols, xt.shape[1])
    for r in range(rows):
        v0 = np.int64(indptr[r])
        cnt = np.int64(indptr[r + 1]) - v0
        for t in range(cnt):
            cidx[t] = indices[v0 + t]
        _convert(vbits, v0, cnt, vtab, vf, mode, vals, vals_u)
        _emit(r, cidx, vals, cnt, xt, yt, acc, trans)
    return np.int64(indptr[rows])
