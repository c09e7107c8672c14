"""Compiled (numba) kernels of the Huffman stage. Imported lazily; see ``_huffman.py``.

Bit order: each stream is a sequence of 64-bit words; codes are written MSB-first, so a
stream's bits read left to right are its symbols' canonical codes in order. The words are
native integers here; ``_huffman.py`` stores them big-endian, so the byte stream is MSB-first.
Decoding keeps four streams in flight at once: their table look-ups are independent, which
hides the latency of each look-up.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from ._kernels import c_arrays


@njit(cache=True, nogil=True)
def encode_streams(symbols, codes, lengths, bounds, word_offsets, out, used):  # type: ignore[no-untyped-def]
    """Encode ``symbols[bounds[s]:bounds[s+1]]`` into words ``out[word_offsets[s]:...]``.

    Each stream's region must have room for its symbols at the longest code length; the words
    stream s used are written to ``used[s]``.
    """
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
            q += 1
        used[s] = q - word_offsets[s]


@njit(cache=True, nogil=True, inline="always")
def _window(words, pos):  # type: ignore[no-untyped-def]
    """The 64 bits starting at bit ``pos`` (reads words ``pos // 64`` and the one after)."""
    q = pos >> 6
    off = np.uint64(pos & 63)
    hi = words[q] << off
    lo = (words[q + 1] >> np.uint64(1)) >> (np.uint64(63) - off)
    return hi | lo


@njit(cache=True, nogil=True)
def build_decoder(lengths, width):  # type: ignore[no-untyped-def]
    """Every decoding table of a canonical code, in one pass over ``lengths``.

    Returns ``(table, width, first, count, offset, order, full, kraft_ok)``:

    * ``table``: the fast table, one uint64 entry per ``width``-bit prefix with up to two
      symbols: bits 0-15 the first symbol, 16-31 the second (when the code after the first also
      fits in ``width`` bits), 32-39 the count, 0 (no code of at most ``width`` bits: a long
      code, see :func:`_long_code`), 1 or 2, 40-47 the bits the counted symbols use and 48-55
      the length of the first symbol's code;
    * ``first[L]``, ``count[L]``: the first canonical code of length L and how many there are
      (RFC 1951, 3.2.2); ``offset[L]``: the index in ``order`` of the first symbol of length L;
      ``order``: the symbols sorted by (length, symbol). Long codes decode from these, with no
      second table to build;
    * ``full``: the longest code (at least 1); ``kraft_ok``: False if the lengths over-subscribe
      the code space (Kraft sum > 1), when no table can be trusted.

    ``width`` (the returned one is at most twice ``full``: an entry holds two symbols) may be
    narrower than ``full``; ``lengths`` must be at most 16.
    """
    count = np.zeros(17, np.int64)
    for s in range(lengths.size):
        count[lengths[s]] += 1
    count[0] = 0
    full = 1
    kraft = 0
    for ln in range(1, 17):
        if count[ln]:
            full = ln
        kraft += count[ln] << (16 - ln)
    if kraft > 1 << 16:
        return (np.zeros(1, np.uint64), 1, count, count, count, np.zeros(1, np.uint16), full,
                False)
    width = min(width, 2 * full)
    first = np.zeros(17, np.int64)
    offset = np.zeros(17, np.int64)
    for ln in range(2, 17):
        first[ln] = (first[ln - 1] + count[ln - 1]) << 1
        offset[ln] = offset[ln - 1] + count[ln - 1]
    offset[1] = 0
    order = np.zeros(max(offset[16] + count[16], 1), np.uint16)
    nxt = offset.copy()
    size = 1 << width
    sym = np.zeros(size, np.uint16)
    length = np.zeros(size, np.uint8)
    for s in range(lengths.size):
        ln = np.int64(lengths[s])
        if ln == 0:
            continue
        code = first[ln] + nxt[ln] - offset[ln]
        order[nxt[ln]] = s
        nxt[ln] += 1
        if ln <= width:
            start = code << (width - ln)
            for i in range(start, start + (np.int64(1) << (width - ln))):
                sym[i] = s
                length[i] = ln
    table = np.zeros(size, np.uint64)
    mask = size - 1
    for i in range(size):
        a = np.int64(length[i])
        if a == 0:
            continue
        entry = np.uint64(sym[i]) | (np.uint64(1) << np.uint64(32)) | (
            np.uint64(a) << np.uint64(40))
        j = (i << a) & mask
        b = np.int64(length[j])
        if b != 0 and a + b <= width:
            entry = np.uint64(sym[i]) | (np.uint64(sym[j]) << np.uint64(16)) | (
                np.uint64(2) << np.uint64(32)) | (np.uint64(a + b) << np.uint64(40))
        table[i] = entry | (np.uint64(a) << np.uint64(48))
    return table, width, first, count, offset, order, full, True


@njit(cache=True, nogil=True, inline="always")
def _long_code(words, p, o, out, lng):  # type: ignore[no-untyped-def]
    """Decode one code longer than the fast table's width at bit ``p`` into ``out[o]``.

    ``lng = (width, full, first, count, offset, order)`` (see :func:`build_decoder`). In a
    canonical code the codes of length L are ``first[L] .. first[L] + count[L] - 1``, and a
    prefix beyond them continues at or after ``first[L + 1]``: the first L whose L-bit prefix
    is below ``first[L] + count[L]`` is the code's length. Returns ``(o + 1, p + L, True)``, or
    ``(o, p, False)`` if no code matches (the unused patterns of an incomplete code).
    """
    width, full, first, count, offset, order = lng
    v = _window(words, p) >> np.uint64(64 - full)
    for ln in range(width + 1, full + 1):
        c = np.int64(v >> np.uint64(full - ln))
        if c < first[ln] + count[ln]:
            out[o] = order[offset[ln] + c - first[ln]]
            return o + 1, p + ln, True
    return o, p, False


@njit(cache=True, nogil=True, inline="always")
def _one_code(words, p, o, out, table, shift, lng):  # type: ignore[no-untyped-def]
    """Decode exactly one symbol at bit ``p`` (a stream's last): as :func:`_long_code`."""
    entry = table[_window(words, p) >> shift]
    if (entry >> np.uint64(32)) & np.uint64(0xFF):
        out[o] = entry & np.uint64(0xFFFF)
        return o + 1, p + np.int64((entry >> np.uint64(48)) & np.uint64(0xFF)), True
    return _long_code(words, p, o, out, lng)


@njit(cache=True, nogil=True, inline="always")
def _fields(entry):  # type: ignore[no-untyped-def]
    """(first symbol, second symbol, count, bits) of a :func:`build_decoder` table entry."""
    m16 = np.uint64(0xFFFF)
    return (
        entry & m16,
        (entry >> np.uint64(16)) & m16,
        np.int64((entry >> np.uint64(32)) & np.uint64(0xFF)),
        np.int64((entry >> np.uint64(40)) & np.uint64(0xFF)),
    )


@njit(cache=True, nogil=True)
def _decode_rest(words, p, limit, o, e, table, shift, lng, out):  # type: ignore[no-untyped-def]
    """Decode ``out[o:e]`` from one stream starting at bit ``p``; 0, -1 or -2 as below.

    While 8 symbols of room are left, in batches as in :func:`decode_streams`: one window feeds
    four look-ups (at most 4 x 16 bits) and the stream end is checked once per batch. For a
    single stream (a block of fewer than 16384 symbols) this is what decodes it: the top fields
    of a 64x384 2:4 bf16 tensor (12288 symbols) took 41 us per ``decode_symbols`` call instead
    of 58 with one window and one check per look-up (tables included; a scratch script). The
    last symbols go one look-up at a time.
    """
    while e - o >= 8:
        w = _window(words, p)
        for _ in range(4):
            x = table[w >> shift]
            c = np.int64((x >> np.uint64(32)) & np.uint64(0xFF))
            n = (x >> np.uint64(40)) & np.uint64(0xFF)
            _put2(out, o, x)
            w = w << n
            p += np.int64(n)
            o += c
            if c == 0:
                o, p, ok = _long_code(words, p, o, out, lng)
                if not ok:
                    return -1
                w = _window(words, p)
        if p > limit:
            return -2
    while o < e - 1:
        first, second, c, nb = _fields(table[_window(words, p) >> shift])
        out[o] = first
        out[o + 1] = second
        o += c
        p += nb
        if c == 0:
            o, p, ok = _long_code(words, p, o, out, lng)
            if not ok:
                return -1
        if p > limit:
            return -2
    if o < e:
        o, p, ok = _one_code(words, p, o, out, table, shift, lng)
        if not ok:
            return -1
        if p > limit:
            return -2
    return 0


def _put2_typer(typingctx, out, o, entry):  # type: ignore[no-untyped-def]
    """``out[o], out[o + 1] = entry & 0xFFFF, (entry >> 16) & 0xFFFF`` (a fast-table entry's
    two symbols, see :func:`build_decoder`), without bounds or negative-index handling: the
    caller keeps ``o + 1`` in bounds. 16-bit outputs on a little-endian machine take one
    unaligned 32-bit store. Against the two indexed stores this cut the decode loop from 1.40
    to 0.96-0.99 ns per symbol of MiniLM's embedding top fields (scratch measurement, see the
    commit message)."""
    if not c_arrays(out) or not isinstance(out.dtype, types.Integer):
        return None
    width = out.dtype.bitwidth  # type: ignore[attr-defined]

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        arr, at, x = args
        data = context.make_array(signature.args[0])(context, builder, arr).data
        i64 = ir.IntType(64)
        if width == 16 and sys.byteorder == "little":
            both = builder.bitcast(builder.gep(data, [at]), ir.IntType(32).as_pointer())
            builder.store(builder.trunc(x, ir.IntType(32)), both, align=1)
            return context.get_dummy_value()
        for k in range(2):
            sym = builder.and_(builder.lshr(x, ir.Constant(i64, 16 * k)), ir.Constant(i64, 0xFFFF))
            if width < 64:
                sym = builder.trunc(sym, ir.IntType(width))
            builder.store(sym, builder.gep(data, [builder.add(at, ir.Constant(at.type, k))]))
        return context.get_dummy_value()

    return types.void(out, o, entry), codegen


#: Typed ``Any`` for mypy, which cannot see through numba's intrinsic wrapper.
_put2: Any = intrinsic(_put2_typer)


@njit(cache=True, nogil=True)
def decode_streams(  # type: ignore[no-untyped-def]
    words, starts, limits, bounds, table, width, first, count, offset, order, full, out
):
    """Decode stream s (bits from ``starts[s]`` to ``limits[s]``) into ``out[bounds[s]:...]``.

    Four streams are decoded in lockstep with a ``width``-bit table giving up to two symbols
    per look-up (:func:`build_decoder`); the rare codes longer than ``width`` (at most ``full``
    bits) are resolved canonically (:func:`_long_code`). The lockstep loop works in batches:
    one 64-bit window per stream feeds ``64 // width`` look-ups (each consumes at most
    ``width`` bits), and output room and stream ends are checked once per batch, not per
    symbol (the caller pads ``words`` so a batch that overruns a stream's end stays in
    bounds). Returns 0, -1 if a bit pattern matches no code, or -2 if a stream's symbols run
    past its end.
    """
    shift = np.uint64(64 - width)
    lng = (width, full, first, count, offset, order)
    per = 4  # look-ups per window: each consumes at most width <= 16 bits
    # The four look-ups of a batch are written out four times below, not as a loop: numba's
    # loop form measured 1.3-1.5x slower (`python bench/huffman_speed.py`).
    nstreams = bounds.size - 1
    for s0 in range(0, nstreams, 4):
        k = min(4, nstreams - s0)
        o0 = bounds[s0]
        p0 = starts[s0]
        if k == 4:
            o1 = bounds[s0 + 1]
            o2 = bounds[s0 + 2]
            o3 = bounds[s0 + 3]
            e0 = bounds[s0 + 1]
            e1 = bounds[s0 + 2]
            e2 = bounds[s0 + 3]
            e3 = bounds[s0 + 4]
            p1 = starts[s0 + 1]
            p2 = starts[s0 + 2]
            p3 = starts[s0 + 3]
            lim0 = limits[s0]
            lim1 = limits[s0 + 1]
            lim2 = limits[s0 + 2]
            lim3 = limits[s0 + 3]
            while True:
                # Each look-up writes at most two symbols: this many batches fit in every
                # stream's remaining output.
                batches = min(min(e0 - o0, e1 - o1), min(e2 - o2, e3 - o3)) // (2 * per)
                if batches == 0:
                    break
                for _ in range(batches):
                    w0 = _window(words, p0)
                    w1 = _window(words, p1)
                    w2 = _window(words, p2)
                    w3 = _window(words, p3)
                    x0 = table[w0 >> shift]
                    c0 = np.int64((x0 >> np.uint64(32)) & np.uint64(0xFF))
                    n0 = (x0 >> np.uint64(40)) & np.uint64(0xFF)
                    _put2(out, o0, x0)
                    w0 = w0 << n0
                    p0 += np.int64(n0)
                    o0 += c0
                    x1 = table[w1 >> shift]
                    c1 = np.int64((x1 >> np.uint64(32)) & np.uint64(0xFF))
                    n1 = (x1 >> np.uint64(40)) & np.uint64(0xFF)
                    _put2(out, o1, x1)
                    w1 = w1 << n1
                    p1 += np.int64(n1)
                    o1 += c1
                    x2 = table[w2 >> shift]
                    c2 = np.int64((x2 >> np.uint64(32)) & np.uint64(0xFF))
                    n2 = (x2 >> np.uint64(40)) & np.uint64(0xFF)
                    _put2(out, o2, x2)
                    w2 = w2 << n2
                    p2 += np.int64(n2)
                    o2 += c2
                    x3 = table[w3 >> shift]
                    c3 = np.int64((x3 >> np.uint64(32)) & np.uint64(0xFF))
                    n3 = (x3 >> np.uint64(40)) & np.uint64(0xFF)
                    _put2(out, o3, x3)
                    w3 = w3 << n3
                    p3 += np.int64(n3)
                    o3 += c3
                    if (c0 == 0) | (c1 == 0) | (c2 == 0) | (c3 == 0):  # a long code: rare
                        if c0 == 0:
                            o0, p0, ok = _long_code(words, p0, o0, out, lng)
                            if not ok:
                                return -1
                            w0 = _window(words, p0)
                        if c1 == 0:
                            o1, p1, ok = _long_code(words, p1, o1, out, lng)
                            if not ok:
                                return -1
                            w1 = _window(words, p1)
                        if c2 == 0:
                            o2, p2, ok = _long_code(words, p2, o2, out, lng)
                            if not ok:
                                return -1
                            w2 = _window(words, p2)
                        if c3 == 0:
                            o3, p3, ok = _long_code(words, p3, o3, out, lng)
                            if not ok:
                                return -1
                            w3 = _window(words, p3)
                    x0 = table[w0 >> shift]
                    c0 = np.int64((x0 >> np.uint64(32)) & np.uint64(0xFF))
                    n0 = (x0 >> np.uint64(40)) & np.uint64(0xFF)
                    _put2(out, o0, x0)
                    w0 = w0 << n0
                    p0 += np.int64(n0)
                    o0 += c0
                    x1 = table[w1 >> shift]
                    c1 = np.int64((x1 >> np.uint64(32)) & np.uint64(0xFF))
                    n1 = (x1 >> np.uint64(40)) & np.uint64(0xFF)
                    _put2(out, o1, x1)
                    w1 = w1 << n1
                    p1 += np.int64(n1)
                    o1 += c1
                    x2 = table[w2 >> shift]
                    c2 = np.int64((x2 >> np.uint64(32)) & np.uint64(0xFF))
                    n2 = (x2 >> np.uint64(40)) & np.uint64(0xFF)
                    _put2(out, o2, x2)
                    w2 = w2 << n2
                    p2 += np.int64(n2)
                    o2 += c2
                    x3 = table[w3 >> shift]
                    c3 = np.int64((x3 >> np.uint64(32)) & np.uint64(0xFF))
                    n3 = (x3 >> np.uint64(40)) & np.uint64(0xFF)
                    _put2(out, o3, x3)
                    w3 = w3 << n3
                    p3 += np.int64(n3)
                    o3 += c3
                    if (c0 == 0) | (c1 == 0) | (c2 == 0) | (c3 == 0):  # a long code: rare
                        if c0 == 0:
                            o0, p0, ok = _long_code(words, p0, o0, out, lng)
                            if not ok:
                                return -1
                            w0 = _window(words, p0)
                        if c1 == 0:
                            o1, p1, ok = _long_code(words, p1, o1, out, lng)
                            if not ok:
                                return -1
                            w1 = _window(words, p1)
                        if c2 == 0:
                            o2, p2, ok = _long_code(words, p2, o2, out, lng)
                            if not ok:
                                return -1
                            w2 = _window(words, p2)
                        if c3 == 0:
                            o3, p3, ok = _long_code(words, p3, o3, out, lng)
                            if not ok:
                                return -1
                            w3 = _window(words, p3)
                    x0 = table[w0 >> shift]
                    c0 = np.int64((x0 >> np.uint64(32)) & np.uint64(0xFF))
                    n0 = (x0 >> np.uint64(40)) & np.uint64(0xFF)
                    _put2(out, o0, x0)
                    w0 = w0 << n0
                    p0 += np.int64(n0)
                    o0 += c0
                    x1 = table[w1 >> shift]
                    c1 = np.int64((x1 >> np.uint64(32)) & np.uint64(0xFF))
                    n1 = (x1 >> np.uint64(40)) & np.uint64(0xFF)
                    _put2(out, o1, x1)
                    w1 = w1 << n1
                    p1 += np.int64(n1)
                    o1 += c1
                    x2 = table[w2 >> shift]
                    c2 = np.int64((x2 >> np.uint64(32)) & np.uint64(0xFF))
                    n2 = (x2 >> np.uint64(40)) & np.uint64(0xFF)
                    _put2(out, o2, x2)
                    w2 = w2 << n2
                    p2 += np.int64(n2)
                    o2 += c2
                    x3 = table[w3 >> shift]
                    c3 = np.int64((x3 >> np.uint64(32)) & np.uint64(0xFF))
                    n3 = (x3 >> np.uint64(40)) & np.uint64(0xFF)
                    _put2(out, o3, x3)
                    w3 = w3 << n3
                    p3 += np.int64(n3)
                    o3 += c3
                    if (c0 == 0) | (c1 == 0) | (c2 == 0) | (c3 == 0):  # a long code: rare
                        if c0 == 0:
                            o0, p0, ok = _long_code(words, p0, o0, out, lng)
                            if not ok:
                                return -1
                            w0 = _window(words, p0)
                        if c1 == 0:
                            o1, p1, ok = _long_code(words, p1, o1, out, lng)
                            if not ok:
                                return -1
                            w1 = _window(words, p1)
                        if c2 == 0:
                            o2, p2, ok = _long_code(words, p2, o2, out, lng)
                            if not ok:
                                return -1
                            w2 = _window(words, p2)
                        if c3 == 0:
                            o3, p3, ok = _long_code(words, p3, o3, out, lng)
                            if not ok:
                                return -1
                            w3 = _window(words, p3)
                    x0 = table[w0 >> shift]
                    c0 = np.int64((x0 >> np.uint64(32)) & np.uint64(0xFF))
                    n0 = (x0 >> np.uint64(40)) & np.uint64(0xFF)
                    _put2(out, o0, x0)
                    w0 = w0 << n0
                    p0 += np.int64(n0)
                    o0 += c0
                    x1 = table[w1 >> shift]
                    c1 = np.int64((x1 >> np.uint64(32)) & np.uint64(0xFF))
                    n1 = (x1 >> np.uint64(40)) & np.uint64(0xFF)
                    _put2(out, o1, x1)
                    w1 = w1 << n1
                    p1 += np.int64(n1)
                    o1 += c1
                    x2 = table[w2 >> shift]
                    c2 = np.int64((x2 >> np.uint64(32)) & np.uint64(0xFF))
                    n2 = (x2 >> np.uint64(40)) & np.uint64(0xFF)
                    _put2(out, o2, x2)
                    w2 = w2 << n2
                    p2 += np.int64(n2)
                    o2 += c2
                    x3 = table[w3 >> shift]
                    c3 = np.int64((x3 >> np.uint64(32)) & np.uint64(0xFF))
                    n3 = (x3 >> np.uint64(40)) & np.uint64(0xFF)
                    _put2(out, o3, x3)
                    w3 = w3 << n3
                    p3 += np.int64(n3)
                    o3 += c3
                    if (c0 == 0) | (c1 == 0) | (c2 == 0) | (c3 == 0):  # a long code: rare
                        if c0 == 0:
                            o0, p0, ok = _long_code(words, p0, o0, out, lng)
                            if not ok:
                                return -1
                            w0 = _window(words, p0)
                        if c1 == 0:
                            o1, p1, ok = _long_code(words, p1, o1, out, lng)
                            if not ok:
                                return -1
                            w1 = _window(words, p1)
                        if c2 == 0:
                            o2, p2, ok = _long_code(words, p2, o2, out, lng)
                            if not ok:
                                return -1
                            w2 = _window(words, p2)
                        if c3 == 0:
                            o3, p3, ok = _long_code(words, p3, o3, out, lng)
                            if not ok:
                                return -1
                            w3 = _window(words, p3)
                    if p0 > lim0 or p1 > lim1 or p2 > lim2 or p3 > lim3:
                        return -2
            pos = (p0, p1, p2, p3)
            outs = (o0, o1, o2, o3)
        else:
            pos = (p0, 0, 0, 0)
            outs = (o0, 0, 0, 0)
        # The rest of each stream of this group, one stream at a time.
        for j in range(k):
            s = s0 + j
            rc = _decode_rest(
                words, pos[j] if k == 4 else starts[s], limits[s],
                outs[j] if k == 4 else bounds[s], bounds[s + 1],
                table, shift, lng, out,
            )
            if rc != 0:
                return rc
    return 0


def _bswap64_typer(typingctx, x):  # type: ignore[no-untyped-def]
    """Reverse the bytes of a uint64 (one instruction)."""
    if x != types.uint64:
        return None

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        return builder.bswap(args[0])

    return types.uint64(types.uint64), codegen


#: Typed ``Any`` for mypy, which cannot see through numba's intrinsic wrapper.
_bswap64: Any = intrinsic(_bswap64_typer)


@njit(cache=True, nogil=True, inline="always")
def _le(buf, at, nbytes):  # type: ignore[no-untyped-def]
    """The little-endian unsigned integer of ``nbytes`` bytes of ``buf`` at ``at``."""
    v = np.uint64(0)
    for i in range(nbytes):
        v |= np.uint64(buf[at + i]) << np.uint64(8 * i)
    return v


#: What :func:`decode_coded` returns for a codebook or stream table that fails a check; the
#: caller re-reads the sections with the Python parser for a precise message.
BAD_CODEBOOK = -3
#: ... for lengths that over-subscribe the code space (Kraft sum > 1).
BAD_KRAFT = -4


@njit(cache=True, nogil=True)
def decode_coded_width(lengths, count, min_fast, max_fast):  # type: ignore[no-untyped-def]
    """The fast table's width for decoding ``count`` symbols with these code lengths.

    ``min_fast`` (``_huffman.FAST_BITS``), or wider up to ``max_fast`` when two codes of the
    average length, under the code's own implied probabilities ``2**-len``, do not fit in
    ``min_fast`` bits: then each look-up can still decode two symbols (e.g. int8 values with
    ~7-bit codes), which is worth the larger table. And no wider than the bit length of
    ``count // 8``, about one entry per 8 symbols to decode: an entry costs about as much to
    build as 4-5 symbols take to decode (``python bench/huffman_speed.py`` prints both), so the
    build stays well below the decoding, while a narrower table only sends more codes down the
    slower long-code path. (:func:`build_decoder` also caps it at twice the longest code.)
    """
    mean = 0.0
    for s in range(lengths.size):
        ln = np.int64(lengths[s])
        if ln:
            mean += ln * 2.0 ** -ln
    width = max(min_fast, min(max_fast, np.int64(np.ceil(2 * mean))))
    per8 = count // 8
    bits = 0
    while per8:
        bits += 1
        per8 >>= 1
    return max(1, min(width, bits))


@njit(cache=True, nogil=True)
def decode_coded(book, data, count, alphabet, nstreams, max_length, min_fast, max_fast, out):  # type: ignore[no-untyped-def]
    """Decode one coded stream, codebook to symbols, in one call: ``out`` (``count`` items).

    ``book`` and ``data`` are the raw bytes of the ``.codebook`` and ``.bits`` sections (see
    ``_huffman.py``). Everything is checked as the Python reader ``_huffman._parse_codebook``
    checks it, in the same order; the fast table is as wide as :func:`decode_coded_width`
    makes it (``min_fast`` .. ``max_fast`` bits). The
    caller must have checked ``count <= 8 * data.size`` before allocating ``out``. Returns 0,
    -1 (a bit pattern matches no code), -2 (a stream ends early), :data:`BAD_CODEBOOK` or
    :data:`BAD_KRAFT`.
    """
    n = book.size
    if n < 5:
        return BAD_CODEBOOK
    fmt = book[0]
    used = np.int64(_le(book, 1, 4))
    lengths = np.zeros(alphabet, np.uint8)
    if fmt == 0:
        if n < 9:
            return BAD_CODEBOOK
        first = used
        used = np.int64(_le(book, 5, 4))
        if first + used > alphabet:
            return BAD_CODEBOOK
        end = 9 + (used + 1) // 2
        if n < end:
            return BAD_CODEBOOK
        for i in range(used):
            lengths[first + i] = (book[9 + (i >> 1)] >> (4 * (i & 1))) & 15
    elif fmt == 1:
        end = 5 + 3 * used
        if used > alphabet or n < end:
            return BAD_CODEBOOK
        prev = -1
        for i in range(used):
            sym = np.int64(book[5 + 3 * i]) | (np.int64(book[6 + 3 * i]) << 8)
            if sym <= prev or sym >= alphabet:
                return BAD_CODEBOOK
            lengths[sym] = book[7 + 3 * i]
            prev = sym
    else:
        return BAD_CODEBOOK
    longest = 0
    for s in range(alphabet):
        longest = max(longest, np.int64(lengths[s]))
    if longest > max_length or n < end + 1:
        return BAD_CODEBOOK
    ns = np.int64(book[end])
    if ns < 1 or ns > 64 or n != end + 1 + 8 * ns:
        return BAD_CODEBOOK
    starts = np.zeros(ns + 1, np.int64)
    for s in range(ns):
        size = _le(book, end + 1 + 8 * s, 8)
        if size % np.uint64(8) or size > np.uint64(data.size - starts[s] // 8):
            return BAD_CODEBOOK
        starts[s + 1] = starts[s] + np.int64(size) * 8
    if starts[ns] != 8 * data.size or ns != nstreams:
        return BAD_CODEBOOK
    if count == 0:
        return 0
    if longest == 0:
        return BAD_CODEBOOK
    width = decode_coded_width(lengths, count, min_fast, max_fast)
    table, width, first_, count_, offset, order, full, kraft_ok = build_decoder(lengths, width)
    if not kraft_ok:
        return BAD_KRAFT
    nwords = data.size // 8
    # Four zero words after the streams: see _huffman._decode_checked.
    words = np.zeros(nwords + 4, np.uint64)
    for i in range(nwords):
        words[i] = _bswap64(np.uint64(_le(data, 8 * i, 8)))
    bounds = (np.arange(ns + 1, dtype=np.int64) * count) // ns
    return decode_streams(words, starts[:-1], starts[1:], bounds, table, width, first_,
                          count_, offset, order, full, out)


@njit(cache=True, nogil=True)
def histogram(symbols, alphabet):  # type: ignore[no-untyped-def]
    """Counts of each symbol (every symbol must be < alphabet)."""
    counts = np.zeros(alphabet, np.int64)
    for i in range(symbols.size):
        counts[symbols[i]] += 1
    return counts


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
    codes", 1995): O(n) after sorting. Lengths above ``limit`` are then limited with JPEG's
    adjustment of the per-length code counts, and the lengths handed back in frequency order.
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
    # a[i] is now the code length of the i-th least frequent symbol (non-increasing in i).
    longest = a[0]
    if longest <= limit:
        return a
    # Limit the lengths as JPEG does (ITU T.81, Annex K.3 "Adjust_BITS") on the count of
    # codes per length: a pair of the longest codes becomes one code a level up, and a
    # shorter code splits in two to make room. O(longest * limit), whatever the alphabet.
    count = np.zeros(longest + 1, np.int64)
    for i in range(n):
        count[a[i]] += 1
    for i in range(longest, limit, -1):
        while count[i] > 0:
            j = i - 2
            while count[j] == 0:
                j -= 1
            count[i] -= 2
            count[i - 1] += 1
            count[j + 1] += 2
            count[j] -= 1
    # The least frequent symbols take the longest codes.
    k = 0
    for length in range(limit, 0, -1):
        for _ in range(count[length]):
            a[k] = length
            k += 1
    return a


@njit(cache=True, nogil=True)
def split_fields(values, rotate, mask, width, top, syms, low):  # type: ignore[no-untyped-def]
    """Split each rotated value into its top ``top`` bits (``syms``) and the rest.

    The remaining ``lb = width - top`` bits (at most 23) of value i are written MSB-first at bit
    ``i * lb`` of the native uint64 words ``low`` (stored big-endian by the caller).
    """
    lb = width - top
    lmask = (np.uint64(1) << np.uint64(lb)) - np.uint64(1)
    acc = np.uint64(0)
    nacc = 0
    q = 0
    for i in range(values.size):
        v = np.uint64(values[i])
        if rotate:
            v = ((v << np.uint64(rotate)) | (v >> np.uint64(width - rotate))) & mask
        syms[i] = v >> np.uint64(lb)
        c = v & lmask
        if nacc + lb <= 64:
            acc = (acc << np.uint64(lb)) | c
            nacc += lb
        else:
            rest = lb - (64 - nacc)
            low[q] = (acc << np.uint64(64 - nacc)) | (c >> np.uint64(rest))
            q += 1
            acc = c & ((np.uint64(1) << np.uint64(rest)) - np.uint64(1))
            nacc = rest
    if nacc > 0:
        low[q] = acc << np.uint64(64 - nacc)


@njit(cache=True, nogil=True)
def join_fields(syms, low, rotate, mask, width, top, out):  # type: ignore[no-untyped-def]
    """Inverse of :func:`split_fields` (``low`` holds at least the packed words)."""
    lb = width - top
    lmask = (np.uint64(1) << np.uint64(lb)) - np.uint64(1)
    acc = np.uint64(0)
    nacc = 0
    q = 0
    for i in range(out.size):
        if nacc >= lb:
            nacc -= lb
            fld = (acc >> np.uint64(nacc)) & lmask
        else:
            nxt = low[q]
            q += 1
            need = lb - nacc
            fld = ((acc << np.uint64(need)) | (nxt >> np.uint64(64 - need))) & lmask
            acc = nxt
            nacc = 64 - need
        v = (np.uint64(syms[i]) << np.uint64(lb)) | fld
        if rotate:
            v = ((v >> np.uint64(rotate)) | (v << np.uint64(width - rotate))) & mask
        out[i] = v


def _join8_typer(typingctx, syms, low, out, j, lb, rotate):  # type: ignore[no-untyped-def]
    """Values ``8j .. 8j+7`` of :func:`join_fields16`, in 128-bit vectors: one 16-byte load of
    the low fields at byte ``j * lb``, a constant byte shuffle that puts each field's two bytes
    in its 16-bit lane, constant shifts that cut the field out, then the join with the 8 top
    fields and the rotation. ``lb`` and ``rotate`` must be compile-time constants; all loads
    and the store are unaligned and must be in bounds. Little-endian lanes."""
    if not isinstance(lb, types.IntegerLiteral) or not isinstance(rotate, types.IntegerLiteral):
        return None
    if not c_arrays(syms, low, out):
        return None
    nbits, rot = lb.literal_value, rotate.literal_value
    if not 1 <= nbits <= 8 or rot not in (0, 1):
        return None

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        top_arr, low_arr, out_arr, block = args[:4]
        i8x16 = ir.VectorType(ir.IntType(8), 16)
        i16x8 = ir.VectorType(ir.IntType(16), 8)

        def lanes(values: list[int]) -> Any:
            return ir.Constant(i16x8, values)

        def address(aty: Any, arr: Any, index: Any, vty: Any) -> Any:
            data = context.make_array(aty)(context, builder, arr).data
            return builder.bitcast(builder.gep(data, [index]), vty.as_pointer())

        sty, lty, oty = signature.args[:3]
        at = builder.mul(block, ir.Constant(block.type, nbits))
        raw = builder.load(address(lty, low_arr, at, i8x16), align=1)
        # Field k starts at bit k * lb of the block's MSB-first bytes: its byte pair, high
        # byte first, goes to lane k (low byte of the lane = the second byte).
        pick = [b for k in range(8) for b in (k * nbits // 8 + 1, k * nbits // 8)]
        pairs = builder.shuffle_vector(raw, raw, ir.Constant(ir.VectorType(ir.IntType(32), 16),
                                                             pick))
        fld = builder.lshr(builder.shl(builder.bitcast(pairs, i16x8),
                                       lanes([k * nbits % 8 for k in range(8)])),
                           lanes([16 - nbits] * 8))
        first = builder.mul(block, ir.Constant(block.type, 8))
        top = builder.load(address(sty, top_arr, first, i16x8), align=1)
        v = builder.or_(builder.shl(top, lanes([nbits] * 8)), fld)
        if rot:
            v = builder.or_(builder.lshr(v, lanes([rot] * 8)),
                            builder.shl(v, lanes([16 - rot] * 8)))
        builder.store(v, address(oty, out_arr, first, i16x8), align=1)
        return context.get_dummy_value()

    return types.void(syms, low, out, j, lb, rotate), codegen


#: Typed ``Any`` for mypy, which cannot see through numba's intrinsic wrapper.
_join8: Any = intrinsic(_join8_typer)


@njit(cache=True, nogil=True, inline="always")
def _join_blocks(syms, low, out, lb, rotate, nblocks):  # type: ignore[no-untyped-def]
    """Blocks ``0 .. nblocks - 1`` by :func:`_join8` (``lb`` and ``rotate`` constants)."""
    for j in range(nblocks):
        _join8(syms, low, out, j, lb, rotate)


@njit(cache=True, nogil=True, inline="always")
def _join_vectors(syms, low, out, lb, rotate, nblocks):  # type: ignore[no-untyped-def]
    """The first ``nblocks`` blocks of 8 values by :func:`_join8`, with ``lb`` made a constant
    for the widths a frame can hold (``fields`` is 9..12 bits of 16: ``lb`` 4..7). Returns the
    values joined: ``8 * nblocks``, or 0 for another ``lb`` (left to the caller's scalar loop).
    """
    if lb == 4:
        _join_blocks(syms, low, out, 4, rotate, nblocks)
    elif lb == 5:
        _join_blocks(syms, low, out, 5, rotate, nblocks)
    elif lb == 6:
        _join_blocks(syms, low, out, 6, rotate, nblocks)
    elif lb == 7:
        _join_blocks(syms, low, out, 7, rotate, nblocks)
    else:
        return 0
    return 8 * nblocks


@njit(cache=True, nogil=True)
def join_fields16(syms, low, rotate, top, out):  # type: ignore[no-untyped-def]
    """:func:`join_fields` for 16-bit values whose low field has at most 8 bits (``top`` >= 8),
    on a little-endian machine.

    ``low`` is the raw bytes of the packed low fields (the big-endian words of the section),
    ``syms`` the uint16 top fields; ``out`` (uint16) may be ``syms`` itself. Eight values'
    fields take ``lb = 16 - top`` whole bytes, so each block of 8 is one vector step
    (:func:`_join8`) with no bit reader carried from value to value: 5x faster than a scalar
    loop on a 384x384 tensor, 2.5x on MiniLM's embedding (scratch measurement, see the commit
    message). The last blocks, whose 16-byte load could run past the section, and the widths
    :func:`_join_vectors` does not specialise are read a byte pair at a time.
    """
    lb = 16 - top
    n = out.size
    nblocks = min(n // 8, (low.size - 16) // lb + 1) if low.size >= 16 else 0
    if rotate == 1:
        done = _join_vectors(syms, low, out, lb, 1, nblocks)
    else:
        done = _join_vectors(syms, low, out, lb, 0, nblocks)
    lmask = (1 << lb) - 1
    for i in range(done, n):
        pos = i * lb
        at = pos >> 3
        pair = np.int64(low[at]) << 8
        if at + 1 < low.size:
            pair |= np.int64(low[at + 1])
        fld = (pair >> (16 - lb - (pos & 7))) & lmask
        v = (np.int64(syms[i]) << lb) | fld
        out[i] = ((v >> rotate) | (v << (16 - rotate))) & 0xFFFF


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


@njit(cache=True, nogil=True)
def plane_histograms(values, rotate, mask, nplanes):  # type: ignore[no-untyped-def]
    """Byte histograms of each plane :func:`split_planes` would produce, without splitting."""
    counts = np.zeros((nplanes, 256), np.int64)
    width = nplanes * 8
    for i in range(values.size):
        v = np.uint64(values[i])
        if rotate:
            v = ((v << np.uint64(rotate)) | (v >> np.uint64(width - rotate))) & mask
        for p in range(nplanes):
            counts[p, (v >> np.uint64(8 * (nplanes - 1 - p))) & np.uint64(0xFF)] += 1
    return counts


@njit(cache=True, nogil=True)
def value_histograms(values, rotate, mask, nplanes, top):  # type: ignore[no-untyped-def]
    """:func:`plane_histograms` and :func:`top_histogram` (``top`` >= 8) in one pass.

    The top plane's histogram is summed from the ``top``-bit one, so each value updates
    ``nplanes`` counters, as :func:`plane_histograms` alone does.
    """
    width = nplanes * 8
    planes = np.zeros((nplanes, 256), np.int64)
    fine = np.zeros(1 << top, np.int64)
    for i in range(values.size):
        v = np.uint64(values[i])
        if rotate:
            v = ((v << np.uint64(rotate)) | (v >> np.uint64(width - rotate))) & mask
        fine[v >> np.uint64(width - top)] += 1
        for p in range(1, nplanes):
            planes[p, (v >> np.uint64(8 * (nplanes - 1 - p))) & np.uint64(0xFF)] += 1
    for t in range(1 << top):
        planes[0, t >> (top - 8)] += fine[t]
    return planes, fine


@njit(cache=True, nogil=True)
def value_histograms16(values, rotate, top):  # type: ignore[no-untyped-def]
    """:func:`value_histograms` of 16-bit values (two planes), 2.6x faster: two values per
    step, each counted in its own pair of tables, so that equal neighbours (common: the
    exponents of weights repeat) do not wait on each other's counter update."""
    sh = np.uint64(16 - top)
    fine_a = np.zeros(1 << top, np.int64)
    fine_b = np.zeros(1 << top, np.int64)
    low_a = np.zeros(256, np.int64)
    low_b = np.zeros(256, np.int64)
    r = np.uint64(rotate)
    rw = np.uint64(16 - rotate)
    m16 = np.uint64(0xFFFF)
    m8 = np.uint64(0xFF)
    n = values.size
    for i in range(0, n - 1, 2):
        v = np.uint64(values[i])
        u = np.uint64(values[i + 1])
        v = ((v << r) | (v >> rw)) & m16
        u = ((u << r) | (u >> rw)) & m16
        fine_a[v >> sh] += 1
        fine_b[u >> sh] += 1
        low_a[v & m8] += 1
        low_b[u & m8] += 1
    if n % 2:
        v = np.uint64(values[n - 1])
        v = ((v << r) | (v >> rw)) & m16
        fine_a[v >> sh] += 1
        low_a[v & m8] += 1
    fine = fine_a + fine_b
    planes = np.zeros((2, 256), np.int64)
    planes[1] = low_a + low_b
    for t in range(1 << top):
        planes[0, t >> (top - 8)] += fine[t]
    return planes, fine


@njit(cache=True, nogil=True)
def huffman_cost(counts, limit):  # type: ignore[no-untyped-def]
    """What coding ``counts`` with codes of at most ``limit`` bits costs, in one call.

    Returns ``(bits, total, used, first, last)``: the coded bits, the symbol count, how many
    symbols occur, and the first and last of them. ``bits`` is -1 when more than ``2**limit``
    symbols occur (no such code exists). The sum does not depend on how equal counts are
    ordered, so an unstable sort is fine here (unlike when the lengths are assigned).
    """
    used = np.flatnonzero(counts)
    n = used.size
    total = np.int64(0)
    for i in range(n):
        total += counts[used[i]]
    if n == 0:
        return np.int64(0), total, 0, 0, 0
    if n == 1:
        return total, total, 1, used[0], used[0]
    if n > (1 << limit):
        return np.int64(-1), total, n, used[0], used[n - 1]
    freqs = np.empty(n, np.int64)
    for i in range(n):
        freqs[i] = counts[used[i]]
    freqs.sort()
    lengths = code_lengths(freqs, limit)
    bits = np.int64(0)
    for i in range(n):
        bits += freqs[i] * lengths[i]
    return bits, total, n, used[0], used[n - 1]


@njit(cache=True, nogil=True)
def canonical_codes(lengths):  # type: ignore[no-untyped-def]
    """Canonical code of each symbol (uint32; 0 where the length is 0), lengths <= 16: codes
    ordered by (length, symbol), the first of each length ``(first[len-1] + count[len-1])
    << 1`` (RFC 1951, 3.2.2)."""
    count = np.zeros(17, np.int64)
    for s in range(lengths.size):
        count[lengths[s]] += 1
    count[0] = 0
    nxt = np.zeros(17, np.int64)
    for ln in range(2, 17):
        nxt[ln] = (nxt[ln - 1] + count[ln - 1]) << 1
    codes = np.zeros(lengths.size, np.uint32)
    for s in range(lengths.size):
        ln = lengths[s]
        if ln:
            codes[s] = nxt[ln]
            nxt[ln] += 1
    return codes
