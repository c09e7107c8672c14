"""Compiled (numba) kernels of the Huffman stage. Imported lazily; see ``_huffman.py``.

Bit order: each stream is a sequence of 64-bit words; codes are written MSB-first, so a
stream's bits read left to right are its symbols' canonical codes in order. The words are
native integers here; ``_huffman.py`` stores them big-endian, so the byte stream is MSB-first.
Decoding keeps four streams in flight at once: their table look-ups are independent, which
hides the latency of each look-up.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def encode_streams(symbols, codes, lengths, bounds, word_offsets, out):  # type: ignore[no-untyped-def]
    """Encode ``symbols[bounds[s]:bounds[s+1]]`` into words ``out[word_offsets[s]:...]``."""
    for s in range(bounds.size - 1):
        q = word_offsets[s]
        acc = np.uint64(0)
        nacc = 0
        for i in range(bounds[s], bounds[s + 1]):
            sym = symbols[i]
            ln = np.int64(lengths[sym])
            c = np.uint64(codes[sym])
            if nacc + ln <= 64:
                acc = (acc << np.uint64(ln)) | c
                nacc += ln
            else:
                rest = ln - (64 - nacc)
                out[q] = (acc << np.uint64(64 - nacc)) | (c >> np.uint64(rest))
                q += 1
                acc = c & ((np.uint64(1) << np.uint64(rest)) - np.uint64(1))
                nacc = rest
        if nacc > 0:
            out[q] = acc << np.uint64(64 - nacc)


@njit(cache=True, nogil=True, inline="always")
def _window(words, pos):  # type: ignore[no-untyped-def]
    """The 64 bits starting at bit ``pos`` (``words`` has a zero word past every stream)."""
    q = pos >> 6
    off = np.uint64(pos & 63)
    hi = words[q] << off
    lo = (words[q + 1] >> np.uint64(1)) >> (np.uint64(63) - off)
    return hi | lo


@njit(cache=True, nogil=True)
def decode_streams(words, starts, limits, bounds, tsym, tlen, width, out):  # type: ignore[no-untyped-def]
    """Decode stream s (bits from ``starts[s]`` to ``limits[s]``) into ``out[bounds[s]:...]``.

    Streams are decoded four at a time in lockstep. Returns 0, -1 if a bit pattern matches no
    code, or -2 if a stream's symbols run past its end.
    """
    shift = np.uint64(64 - width)
    nstreams = bounds.size - 1
    for s0 in range(0, nstreams, 4):
        if s0 + 4 <= nstreams:
            p0 = starts[s0]
            p1 = starts[s0 + 1]
            p2 = starts[s0 + 2]
            p3 = starts[s0 + 3]
            o0 = bounds[s0]
            o1 = bounds[s0 + 1]
            o2 = bounds[s0 + 2]
            o3 = bounds[s0 + 3]
            n = min(bounds[s0 + 1] - o0, bounds[s0 + 2] - o1, bounds[s0 + 3] - o2,
                    bounds[s0 + 4] - o3)
            bad = 0
            for i in range(n):
                i0 = _window(words, p0) >> shift
                i1 = _window(words, p1) >> shift
                i2 = _window(words, p2) >> shift
                i3 = _window(words, p3) >> shift
                l0 = tlen[i0]
                l1 = tlen[i1]
                l2 = tlen[i2]
                l3 = tlen[i3]
                out[o0 + i] = tsym[i0]
                out[o1 + i] = tsym[i1]
                out[o2 + i] = tsym[i2]
                out[o3 + i] = tsym[i3]
                bad |= (l0 == 0) | (l1 == 0) | (l2 == 0) | (l3 == 0)
                p0 += l0
                p1 += l1
                p2 += l2
                p3 += l3
                if p0 > limits[s0] or p1 > limits[s0 + 1] or p2 > limits[s0 + 2] or (
                    p3 > limits[s0 + 3]
                ):
                    return -2
            if bad:
                return -1
            pos = (p0, p1, p2, p3)
            first = s0
            done = n
        else:
            pos = (starts[s0], 0, 0, 0)
            first = s0
            done = 0
        # The remaining symbols of each stream of this group, one stream at a time.
        for k in range(min(4, nstreams - s0)):
            s = first + k
            p = pos[k] if s0 + 4 <= nstreams else starts[s]
            for i in range(bounds[s] + done, bounds[s + 1]):
                idx = _window(words, p) >> shift
                ln = tlen[idx]
                if ln == 0:
                    return -1
                out[i] = tsym[idx]
                p += ln
                if p > limits[s]:
                    return -2
    return 0


@njit(cache=True, nogil=True)
def histogram(symbols, alphabet):  # type: ignore[no-untyped-def]
    """Counts of each symbol (every symbol must be < alphabet)."""
    counts = np.zeros(alphabet, np.int64)
    for i in range(symbols.size):
        counts[symbols[i]] += 1
    return counts


@njit(cache=True, nogil=True)
def stream_bits(symbols, lengths, bounds):  # type: ignore[no-untyped-def]
    """Coded bits of each block ``symbols[bounds[s]:bounds[s+1]]``."""
    bits = np.zeros(bounds.size - 1, np.int64)
    for s in range(bounds.size - 1):
        total = 0
        for i in range(bounds[s], bounds[s + 1]):
            total += lengths[symbols[i]]
        bits[s] = total
    return bits


@njit(cache=True, nogil=True)
def split_planes(values, rotate, mask, planes):  # type: ignore[no-untyped-def]
    """Byte planes of ``values``, most significant first, after rotating left by ``rotate``.

    ``planes`` has shape (itemsize, n). Rotating a float left by one bit moves the sign next to
    the mantissa, so the top plane holds (most of) the exponent. ``mask`` is the uint64 with
    the low ``8 * itemsize`` bits set.
    """
    nplanes = planes.shape[0]
    width = nplanes * 8
    for i in range(values.size):
        v = np.uint64(values[i])
        if rotate:
            v = ((v << np.uint64(rotate)) | (v >> np.uint64(width - rotate))) & mask
        for p in range(nplanes):
            planes[p, i] = np.uint8((v >> np.uint64(8 * (nplanes - 1 - p))) & np.uint64(0xFF))


@njit(cache=True, nogil=True)
def join_planes(planes, rotate, mask, out):  # type: ignore[no-untyped-def]
    """Inverse of :func:`split_planes`."""
    nplanes = planes.shape[0]
    width = nplanes * 8
    for i in range(out.size):
        v = np.uint64(0)
        for p in range(nplanes):
            v = (v << np.uint64(8)) | np.uint64(planes[p, i])
        if rotate:
            v = ((v >> np.uint64(rotate)) | (v << np.uint64(width - rotate))) & mask
        out[i] = v


@njit(cache=True, nogil=True)
def code_lengths(freqs, limit):  # type: ignore[no-untyped-def]
    """Huffman code lengths for ``freqs`` sorted ascending (all > 0, at least two).

    Moffat and Katajainen's in-place algorithm ("In-place calculation of minimum-redundancy
    codes", 1995): O(n) after sorting. Lengths above ``limit`` are then clamped and the Kraft
    inequality restored by lengthening the least frequent codes still shorter than the limit,
    after which spare Kraft space is given back to the most frequent codes.
    """
    n = freqs.size
    a = freqs.astype(np.int64)
    a[0] += a[1]
    root = 0
    leaf = 2
    for nxt in range(1, n - 1):
        if leaf >= n or a[root] < a[leaf]:
            a[nxt] = a[root]
            a[root] = nxt
            root += 1
        else:
            a[nxt] = a[leaf]
            leaf += 1
        if leaf >= n or (root < nxt and a[root] < a[leaf]):
            a[nxt] += a[root]
            a[root] = nxt
            root += 1
        else:
            a[nxt] += a[leaf]
            leaf += 1
    a[n - 2] = 0
    for nxt in range(n - 3, -1, -1):
        a[nxt] = a[a[nxt]] + 1
    avbl = 1
    used = 0
    depth = 0
    root = n - 2
    nxt = n - 1
    while avbl > 0:
        while root >= 0 and a[root] == depth:
            used += 1
            root -= 1
        while avbl > used:
            a[nxt] = depth
            nxt -= 1
            avbl -= 1
        avbl = 2 * used
        depth += 1
        used = 0
    # a[i] is now the code length of the i-th least frequent symbol.
    full = np.int64(1) << limit
    kraft = np.int64(0)
    for i in range(n):
        if a[i] > limit:
            a[i] = limit
        kraft += np.int64(1) << (limit - a[i])
    while kraft > full:
        # lengthen the least frequent code below the limit, longest first (cheapest in bits)
        best = -1
        for i in range(n):
            if a[i] < limit and (best < 0 or a[i] > a[best]):
                best = i
        kraft -= np.int64(1) << (limit - a[best] - 1)
        a[best] += 1
    for i in range(n - 1, -1, -1):
        while a[i] > 1 and kraft + (np.int64(1) << (limit - a[i])) <= full:
            kraft += np.int64(1) << (limit - a[i])
            a[i] -= 1
    return a


@njit(cache=True, nogil=True)
def split_fields(values, rotate, mask, width, top, syms, low):  # type: ignore[no-untyped-def]
    """Split each rotated value into its top ``top`` bits (``syms``) and the rest.

    The remaining ``width - top`` bits of every value are packed MSB-first, back to back, into
    the byte array ``low`` (at most 24 bits each).
    """
    lb = width - top
    lmask = (np.uint64(1) << np.uint64(lb)) - np.uint64(1)
    acc = np.uint64(0)
    nacc = 0
    p = 0
    for i in range(values.size):
        v = np.uint64(values[i])
        if rotate:
            v = ((v << np.uint64(rotate)) | (v >> np.uint64(width - rotate))) & mask
        syms[i] = v >> np.uint64(lb)
        acc = (acc << np.uint64(lb)) | (v & lmask)
        nacc += lb
        while nacc >= 8:
            nacc -= 8
            low[p] = np.uint8((acc >> np.uint64(nacc)) & np.uint64(0xFF))
            p += 1
    if nacc > 0:
        low[p] = np.uint8((acc << np.uint64(8 - nacc)) & np.uint64(0xFF))


@njit(cache=True, nogil=True)
def join_fields(syms, low, rotate, mask, width, top, out):  # type: ignore[no-untyped-def]
    """Inverse of :func:`split_fields` (``low`` must hold exactly the packed bits)."""
    lb = width - top
    lmask = (np.uint64(1) << np.uint64(lb)) - np.uint64(1)
    acc = np.uint64(0)
    nacc = 0
    p = 0
    for i in range(out.size):
        while nacc < lb:
            acc = (acc << np.uint64(8)) | np.uint64(low[p])
            p += 1
            nacc += 8
        nacc -= lb
        v = (np.uint64(syms[i]) << np.uint64(lb)) | ((acc >> np.uint64(nacc)) & lmask)
        if rotate:
            v = ((v >> np.uint64(rotate)) | (v << np.uint64(width - rotate))) & mask
        out[i] = v


@njit(cache=True, nogil=True)
def top_histogram(values, rotate, mask, width, top):  # type: ignore[no-untyped-def]
    """Histogram of the top ``top`` bits of each rotated value."""
    counts = np.zeros(1 << top, np.int64)
    for i in range(values.size):
        v = np.uint64(values[i])
        if rotate:
            v = ((v << np.uint64(rotate)) | (v >> np.uint64(width - rotate))) & mask
        counts[v >> np.uint64(width - top)] += 1
    return counts
