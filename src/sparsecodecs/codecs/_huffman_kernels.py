"""Kernels of the Huffman stage: a thin layer over the compiled ``kernels/huffman.c``.

Bit order: each stream is a sequence of 64-bit words; codes are written MSB-first, so a
stream's bits read left to right are its symbols' canonical codes in order. The encoders
write the bytes the frame holds (big-endian words); the decoders read them.
Decoding keeps four streams in flight at once: their table look-ups are independent, which
hides the latency of each look-up.

Each function keeps the name and arguments its callers (``_huffman.py``, ``_stages.py``, the
tests) use. This layer allocates the outputs and checks what the C side cannot see (a mask
against its width); the C side checks sizes and ranges again, refuses strided arrays
(``BufferError``) and raises ``ValueError`` for a caller's mistake. What a frame holds is
checked by :func:`decode_coded` and answered with an error code.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..kernels import _native

__all__ = [
    "BAD_CODEBOOK",
    "BAD_KRAFT",
    "TableBlocks",
    "argmax_counts",
    "build_decoder",
    "canonical_codes",
    "code_lengths",
    "decode_coded",
    "decode_coded_width",
    "decode_streams",
    "encode_coded",
    "encode_streams",
    "entropy_bits",
    "histogram",
    "histogram_blocks16",
    "histogram_into",
    "huffman_costs",
    "huffman_sizes",
    "join_fields",
    "join_fields16",
    "join_fields32",
    "join_planes",
    "plane_histograms",
    "split_fields",
    "split_planes",
    "stages_floor16",
    "top_histogram",
    "used_bins",
    "value_histograms",
    "value_histograms16",
    "value_histograms16_counts",
]

#: What :func:`decode_coded` returns for a codebook or stream table that fails a check; the
#: caller re-reads the sections with the Python parser for a precise message.
BAD_CODEBOOK = -3
#: ... for lengths that over-subscribe the code space (Kraft sum > 1).
BAD_KRAFT = -4


def _check_mask(mask: object, width: int) -> None:
    """``mask`` must be the low ``width`` bits: the C kernels derive it from the width."""
    if int(mask) != (1 << width) - 1:  # type: ignore[call-overload]
        raise ValueError(f"mask {int(mask):#x} is not the low {width} bits")  # type: ignore[call-overload]


def _lengths8(lengths: np.ndarray) -> np.ndarray:
    """Code lengths as contiguous uint8, refusing values a uint8 cannot hold."""
    arr = np.asarray(lengths)
    if arr.dtype != np.uint8 and arr.size and (int(arr.min()) < 0 or int(arr.max()) > 255):
        raise ValueError(f"code lengths must be 0..16, got {int(arr.min())}..{int(arr.max())}")
    return np.ascontiguousarray(arr, np.uint8)


# -- encoding ----------------------------------------------------------------------------------


def encode_streams(symbols: np.ndarray, codes: np.ndarray, lengths: np.ndarray,
                   bounds: np.ndarray, byte_offsets: np.ndarray, out: np.ndarray,
                   used: np.ndarray) -> None:
    """Encode ``symbols[bounds[s]:bounds[s+1]]`` into the bytes
    ``out[byte_offsets[s]:byte_offsets[s+1]]`` (uint8; the last stream runs to the end).

    Each stream is written MSB-first and zero-padded to whole 64-bit words: the bytes a frame
    holds. Its region must have room for its symbols at the longest code length, rounded up to
    words; the bytes stream s used are written to ``used[s]``. ``symbols`` may have 1-, 2-, 4-
    or 8-byte items; a symbol outside ``codes`` or a stream outgrowing its region raises
    ValueError.
    """
    _native.huf_encode_streams(symbols, codes, lengths, bounds, byte_offsets, out, used)


def canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """Canonical code of each symbol (uint32; 0 where the length is 0), lengths <= 16: codes
    ordered by (length, symbol), the first of each length ``(first[len-1] + count[len-1])
    << 1`` (RFC 1951, 3.2.2)."""
    lengths = _lengths8(lengths)
    codes = np.zeros(lengths.size, np.uint32)
    _native.huf_canonical_codes(lengths, codes)
    return codes


def code_lengths(freqs: np.ndarray, limit: int) -> np.ndarray:
    """Huffman code lengths for ``freqs`` sorted ascending (all > 0, at least two).

    Moffat and Katajainen's in-place algorithm ("In-place calculation of minimum-redundancy
    codes", 1995): O(n) after sorting. Lengths above ``limit`` are then limited with JPEG's
    adjustment of the per-length code counts (ITU T.81, Annex K.3), and the lengths handed
    back in frequency order (int64).
    """
    a = np.array(freqs, np.int64)
    _native.huf_code_lengths(a, int(limit))
    return a


def encode_coded(symbols: np.ndarray, counts: np.ndarray, limit: int,
                 nstreams: int) -> tuple[bytes, bytes]:
    """What :func:`_huffman.encode_symbols` stores, in one call: ``(codebook, bits)``.

    The code of ``counts`` (int64, at most 2**16 symbols; lengths as
    :func:`_huffman.huffman_lengths` assigns them: symbols in ascending (count, symbol) order,
    a lone symbol length 1; canonical codes), the codebook (its lengths, the stream count and
    each stream's bytes) and ``symbols`` coded in ``nstreams`` streams packed one after
    another. ValueError if more than ``2**limit`` symbols occur or a symbol has no count slot.
    """
    result: tuple[bytes, bytes] = _native.huf_encode_coded(symbols, counts, int(limit),
                                                           int(nstreams))
    return result


def huffman_costs(
    counts: np.ndarray, levels: int, limit: int, sizes: np.ndarray | None = None,
    extra: np.ndarray | None = None,
) -> np.ndarray:
    """What coding each row of the 2-D ``counts``, and ``levels - 1`` coarser histograms of it
    (each summing adjacent pairs of the one before), with codes of at most ``limit`` bits
    costs, in one call: rows of ``(bits, total, used, first, last)``, row by row and finest
    first (the coded bits, the symbol count, how many symbols occur, the first and last of
    them; ``bits`` -1 where more than ``2**limit`` symbols occur: no such code exists). The
    sum does not depend on how equal counts are ordered, so an unstable sort serves (unlike
    when the lengths are assigned). ``sizes`` (int64, one a histogram): also
    :func:`huffman_sizes`' answers. ``extra`` (int64, one a level; one row of counts, with
    ``sizes``): the bytes each level adds besides its coded size; then only the levels that may
    have the least ``sizes + extra`` (the finest on a tie) are costed, and the others answer
    bits -1 and ``1 << 62`` bytes, as if no code existed (see ``best_level_sizes``)."""
    counts = np.ascontiguousarray(counts, np.int64)
    out = np.empty((counts.shape[0] * levels, 5), np.int64)
    if sizes is None:
        _native.huf_huffman_costs(counts, counts.shape[0], int(levels), int(limit), out)
    elif extra is None:
        _native.huf_huffman_costs(counts, counts.shape[0], int(levels), int(limit), out, sizes)
    else:
        _native.huf_huffman_costs(counts, counts.shape[0], int(levels), int(limit), out, sizes,
                                  np.ascontiguousarray(extra, np.int64))
    return out


def huffman_sizes(counts: np.ndarray, levels: int, limit: int,
                  extra: np.ndarray | None = None) -> list[int]:
    """The bytes :func:`encode_coded` would store for each histogram :func:`huffman_costs`
    costs (row by row, finest first): its codebook exactly, its streams to within their
    padding (exact for one stream), ``1 << 62`` where no code of ``limit`` bits exists (or,
    with ``extra``, where the level cannot have the least total)."""
    sizes = np.empty(counts.shape[0] * levels, np.int64)
    huffman_costs(counts, levels, limit, sizes, extra)
    result: list[int] = sizes.tolist()
    return result


# -- decoding ----------------------------------------------------------------------------------


def decode_coded_width(lengths: np.ndarray, count: int, min_fast: int, max_fast: int) -> int:
    """The fast table's width for decoding ``count`` symbols with these code lengths.

    Under the code's own implied probabilities ``2**-len``: at least ``min_fast``
    (``_huffman.FAST_BITS``) and wide enough, up to ``max_fast``, that at most 1/64 of the
    codes are longer than the table (they take the slower canonical long-code path: a value
    stage with thousands of distinct values, codes of 12-15 bits, decodes 2.6x faster at 14
    bits than at 12); then wider still, up to ``max_fast``, if two codes of the average length
    fit, so that each look-up can decode two symbols (e.g. int8 values with ~7-bit codes),
    but only for byte alphabets (``len(lengths) <= 256``: the compiled decoder's table of
    uint32 entries) and at least 64 symbols an entry of that table: a wider table of uint64
    entries (float16 fields, ~6.4-bit codes) or one built for fewer symbols decoded slower
    (docs/benchmarks.md, issue 13's eighteenth pass). Near-uniform byte planes (~8-bit codes,
    two never fit) keep the narrow table, which stays in L1 cache. And no wider than the bit
    length of ``count // 8``, about one entry per 8 symbols to decode: an entry costs about as
    much to build as 4-5 symbols take to decode (``python bench/huffman_speed.py`` prints
    both), so the build stays below the decoding; unless that leaves codes on the long path
    that cost more than the entries would: of the widths from that cap up, the narrowest of
    least cost, counting a table's entries and 4 entries for each long code (its share of
    ``count`` under the code's probabilities). A centroid index of 63,615 symbols with half
    its codes 14 bits long took 13 bits under the cap, 14 now; one stream of 3,000 symbols of
    ~12-bit codes, 9 bits under the cap, decoded at 29-30 ns a symbol, at 10-11 now
    (docs/benchmarks.md, issue 13's thirty-first pass). (:func:`build_decoder` also caps it
    at twice the longest code.)
    """
    width: int = _native.huf_decode_coded_width(_lengths8(lengths), int(count), int(min_fast),
                                                int(max_fast))
    return width


def build_decoder(lengths: np.ndarray, width: int) -> tuple[
    np.ndarray, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, bool
]:
    """Every decoding table of a canonical code, in one pass over ``lengths``.

    Returns ``(table, width, first, count, offset, order, full, kraft_ok)``:

    * ``table``: the fast table, one uint64 entry per ``width``-bit prefix with up to two
      symbols: bits 0-5 the bits the counted symbols use, 8-15 the length of the first
      symbol's code, 16-31 the first symbol, 32-47 the second (when the code after the first
      also fits in ``width`` bits), 62-63 the count: 0 (no code of at most ``width`` bits: a
      long code, resolved canonically), 1 or 2 (``HUF_ENTRY`` in ``kernels/huffman.c``);
    * ``first[L]``, ``count[L]``: the first canonical code of length L and how many there are
      (RFC 1951, 3.2.2); ``offset[L]``: the index in ``order`` of the first symbol of length L;
      ``order``: the symbols sorted by (length, symbol). Long codes decode from these, with no
      second table to build;
    * ``full``: the longest code (at least 1); ``kraft_ok``: False if the lengths over-subscribe
      the code space (Kraft sum > 1), when no table can be trusted.

    ``width`` (1..16, capped at 14 and at twice ``full``: an entry holds two symbols; the
    returned one is the table's) may be narrower than ``full``; ``lengths`` must be at most
    16.
    """
    lengths = _lengths8(lengths)
    table = np.empty(1 << min(max(int(width), 1), 16), np.uint64)
    first = np.zeros(17, np.int64)
    count = np.zeros(17, np.int64)
    offset = np.zeros(17, np.int64)
    order = np.zeros(max(lengths.size, 1), np.uint16)
    width, full, used, kraft_ok = _native.huf_build_decoder(lengths, int(width), table, first,
                                                            count, offset, order)
    if not kraft_ok:
        return (np.zeros(1, np.uint64), 1, count, count, count, np.zeros(1, np.uint16), full,
                False)
    return table[: 1 << width], width, first, count, offset, order[: max(used, 1)], full, True


def decode_streams(data: np.ndarray, starts: np.ndarray, limits: np.ndarray,
                   bounds: np.ndarray, table: np.ndarray, width: int, first: np.ndarray,
                   count: np.ndarray, offset: np.ndarray, order: np.ndarray, full: int,
                   out: np.ndarray) -> int:
    """Decode stream s (bits from ``starts[s]`` to ``limits[s]`` of the bytes ``data``) into
    ``out[bounds[s]:...]``.

    Four streams are decoded in lockstep with a ``width``-bit table (at most 14) giving up to
    two symbols per look-up (:func:`build_decoder`); the rare codes longer than ``width`` (at
    most ``full`` bits) are resolved canonically. The lockstep loop works in batches: one
    64-bit window per stream, read from the bytes at its bit position, feeds four look-ups,
    and output room and stream ends are checked once per batch, not per symbol; ``data``
    must have 32 zero bytes after the last stream, so that a batch that overruns a stream's
    end stays in bounds (checked, as are the tables). Returns 0, -1 if a bit pattern matches
    no code, or -2 if a stream's symbols run past its end.
    """
    rc: int = _native.huf_decode_streams(data, starts, limits, bounds, table, int(width), first,
                                         count, offset, order, int(full), out)
    return rc


def decode_coded(book: np.ndarray | memoryview, data: np.ndarray | memoryview, count: int,
                 alphabet: int, nstreams: int, max_length: int, min_fast: int, max_fast: int,
                 out: np.ndarray, threads: int = 1) -> int:
    """Decode one coded stream, codebook to symbols, in one call: ``out`` (``count`` items).

    ``book`` and ``data`` are the raw bytes of the ``.codebook`` and ``.bits`` sections (see
    ``_huffman.py``). Everything is checked as the Python reader ``_huffman._parse_codebook``
    checks it, in the same order; the fast table is as wide as :func:`decode_coded_width`
    makes it (``min_fast`` .. ``max_fast`` bits). The caller must have checked
    ``count <= 8 * data.size`` before allocating ``out``. Returns 0, -1 (a bit pattern matches
    no code), -2 (a stream ends early), :data:`BAD_CODEBOOK` or :data:`BAD_KRAFT`.

    ``threads`` > 1 lets a large section (128K symbols and more, four streams) decode in two or
    four parts side by side, each part a pair of streams or one stream: the same symbols. A
    pair of streams of 65,536 symbols or more is decoded from their starts and, speculatively,
    from their middles, as four lanes (``spec_two`` in ``kernels/huffman.c``).
    """
    rc: int = _native.huf_decode_coded(book, data, count, alphabet, nstreams, max_length,
                                       min_fast, max_fast, out, threads)
    return rc


# -- histograms --------------------------------------------------------------------------------


def histogram(symbols: np.ndarray, alphabet: int) -> np.ndarray:
    """Counts of each symbol (int64); a symbol >= alphabet raises ValueError."""
    counts = np.zeros(alphabet, np.int64)
    _native.huf_histogram(symbols, counts)
    return counts


def histogram_into(symbols: np.ndarray, counts: np.ndarray) -> None:
    """Add the counts of ``symbols`` to int64 ``counts`` (its size is the alphabet); a symbol
    outside raises ValueError."""
    _native.huf_histogram(symbols, counts)


class TableBlocks:
    """A table of 2**16 int64 counts (``table``) whose bins are zero outside the 64-bin blocks
    marked in ``blocks`` (1024 bytes, 1 for a block that may hold counts), registered for
    a ``with`` block: :func:`entropy_bits`, :func:`value_histograms16_counts`,
    :func:`argmax_counts` and :func:`used_bins`, given this very table, read only its marked
    blocks, in the order of a scan of every bin (the same answers). A planner's table of a
    few thousand 16-bit values uses a few hundred of its 1024 blocks, and each pass over the
    512 KiB read it from L3 once something else had run. Whoever writes the table inside the
    block writes only marked bins. On a clean exit the map is zeroed and, with ``clear``, the
    marked blocks too (the table is then all zero again)."""

    __slots__ = ("blocks", "clear", "table")

    def __init__(self, table: np.ndarray, blocks: np.ndarray, clear: bool = True) -> None:
        self.table, self.blocks, self.clear = table, blocks, clear

    def __enter__(self) -> np.ndarray:
        _BLOCKS[id(self.table)] = self.blocks
        return self.table

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        del _BLOCKS[id(self.table)]
        if exc_type is None:
            if self.clear:
                _native.huf_clear_blocks(self.table, self.blocks)
            else:
                self.blocks.fill(0)


#: The blocks in use of the tables inside a :class:`TableBlocks` block, by the table's id (an
#: array is unhashable; the id is its own while the block holds it).
_BLOCKS: dict[int, np.ndarray] = {}


def histogram_blocks16(values: np.ndarray, table: np.ndarray, blocks: np.ndarray,
                       dirty: bool = False) -> bool:
    """Count uint16 ``values`` into ``table`` (2**16 int64, all zero before, or with ``dirty``
    holding anything) and map the 64-bin blocks they use in ``blocks`` (1024 uint8, all zero
    before; 1 for a block holding a count). True: each block was marked as its values were
    counted, no other touched. False (more than 2**16 values, or more than a quarter of the
    blocks in use): the table was zeroed whole and counted, and the map read off it after."""
    return bool(_native.huf_histogram_blocks16(values, table, blocks, int(dirty)))


def entropy_bits(counts: np.ndarray) -> tuple[float, int]:
    """``(bits, used)``: the order-0 entropy of int64 ``counts`` in bits (sum of
    ``c * log2(total / c)`` over the counts that are not 0) and how many those are."""
    blocks = _BLOCKS.get(id(counts))
    if blocks is not None:
        bits, used = _native.huf_entropy_bits_blocks(counts, blocks)
    else:
        bits, used = _native.huf_entropy_bits(np.ascontiguousarray(counts, np.int64))
    return float(bits), int(used)


def stages_floor16(counts: np.ndarray, rotate: int, top: int, count: int
                   ) -> tuple[float, float, int]:
    """``(bits, whole_bits, used)`` of 16-bit values' histogram ``counts`` (2**16 int64), in
    one call: ``bits`` the least of the entropies of the two byte planes of the values rotated
    left by ``rotate``, summed, and, for ``t`` = ``top`` .. 9, of their ``t``-bit top fields
    plus ``count * (16 - t)`` bits; ``whole_bits, used``: :func:`entropy_bits` of ``counts``.
    The same doubles as :func:`value_histograms16_counts` and :func:`entropy_bits` give
    (a table inside a :class:`TableBlocks` block is read by its blocks in use)."""
    bits, whole, used = _native.huf_stages_floor16(counts, _BLOCKS.get(id(counts)), rotate, top,
                                                   count)
    return float(bits), float(whole), int(used)


def argmax_counts(counts: np.ndarray) -> int:
    """``int(np.argmax(counts))``: the first bin of the largest count."""
    blocks = _BLOCKS.get(id(counts))
    if blocks is None:
        return int(np.argmax(counts))
    return int(_native.huf_argmax_blocks(counts, blocks)[0])


def used_bins(counts: np.ndarray) -> np.ndarray:
    """``np.flatnonzero(counts > 0)``: the bins in use, ascending. A table inside a
    :class:`TableBlocks` block is read in C, its blocks in use only."""
    blocks = _BLOCKS.get(id(counts))
    if blocks is None:
        return np.flatnonzero(counts > 0)  # on the booleans: 3x faster than on the counts
    out = np.empty(64 * np.count_nonzero(blocks), np.int64)
    return out[: _native.huf_used_bins(counts, blocks, out)]


def top_histogram(values: np.ndarray, rotate: int, mask: object, width: int,
                  top: int) -> np.ndarray:
    """Histogram of the top ``top`` bits of each rotated value."""
    _check_mask(mask, width)
    counts = np.zeros(1 << top, np.int64)
    _native.huf_top_histogram(values, rotate, width, top, counts)
    return counts


def plane_histograms(values: np.ndarray, rotate: int, mask: object,
                     nplanes: int) -> np.ndarray:
    """Byte histograms of each plane :func:`split_planes` would produce, without splitting."""
    _check_mask(mask, 8 * nplanes)
    planes = np.zeros((nplanes, 256), np.int64)
    _native.huf_value_histograms(values, rotate, nplanes, 0, planes, planes)
    return planes


def value_histograms(values: np.ndarray, rotate: int, mask: object, nplanes: int,
                     top: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`plane_histograms` and :func:`top_histogram` (``top`` >= 8) in one pass.

    The top plane's histogram is summed from the ``top``-bit one, so each value updates
    ``nplanes`` counters, as :func:`plane_histograms` alone does.
    """
    _check_mask(mask, 8 * nplanes)
    planes = np.zeros((nplanes, 256), np.int64)
    fine = np.zeros(1 << top, np.int64)
    _native.huf_value_histograms(values, rotate, nplanes, top, planes, fine)
    return planes, fine


def value_histograms16(values: np.ndarray, rotate: int,
                       top: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`value_histograms` of 16-bit values (two planes): two values per step, each
    counted in its own pair of tables, so that equal neighbours (common: the exponents of
    weights repeat) do not wait on each other's counter update."""
    planes = np.zeros((2, 256), np.int64)
    fine = np.zeros(1 << top, np.int64)
    _native.huf_value_histograms16(values, rotate, top, planes, fine, 0)
    return planes, fine


def value_histograms16_counts(counts: np.ndarray, rotate: int,
                              top: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`value_histograms16` from the histogram of the 16-bit values themselves
    (``counts``, int64, 2**16 items): 2**16 steps instead of a pass over the values."""
    planes = np.zeros((2, 256), np.int64)
    fine = np.zeros(1 << top, np.int64)
    blocks = _BLOCKS.get(id(counts))
    if blocks is not None:
        _native.huf_value_histograms16_blocks(counts, blocks, rotate, top, planes, fine)
    else:
        _native.huf_value_histograms16(counts, rotate, top, planes, fine, 1)
    return planes, fine


def plan16(counts: np.ndarray, rotate: int, top: int, limit: int, count: int, idle: float,
           entropy: bool) -> tuple[np.ndarray, np.ndarray, list[int], bool, bool, float, int,
                                   np.ndarray, int]:
    """What a planner asks of ``count`` 16-bit values' histogram ``counts`` (2**16 int64), in
    one compiled call: ``(planes, fine, sizes, sign, idle, bits, used, upper, upper_size)``.

    ``planes, fine``: :func:`value_histograms16_counts` (values rotated left by ``rotate``,
    ``top``-bit fields); ``sizes``: :func:`huffman_sizes` of the two planes, then of the top
    fields of ``top`` .. 9 bits with their raw low bits as ``extra`` (the bytes of ``count``
    fields of ``16 - t`` bits in 64-bit words); ``sign``: every value has the same bit 0 of the
    low plane (a float's sign, rotated); ``idle``: one top byte holds at least ``idle *
    count`` values; ``bits, used``: with ``entropy``, :func:`entropy_bits` of ``counts``, else
    -1.0 and -1; ``upper, upper_size``: with ``rotate`` 1 (a float's), the histogram of the
    values' top bytes unrotated (summed in the same pass) and its :func:`huffman_sizes`, else
    zeros and -1. A table inside a :class:`TableBlocks` block is read by its blocks in use, as
    those functions read it."""
    planes = np.empty((2, 256), np.int64)
    fine = np.empty(1 << top, np.int64)
    sizes = np.empty(2 + top - 8, np.int64)
    upper = np.empty(256, np.int64)
    sign, busy, bits, used, upper_size = _native.huf_plan16(
        counts, _BLOCKS.get(id(counts)), rotate, top, limit, count, idle, planes, fine, sizes,
        int(entropy), upper)
    return (planes, fine, sizes.tolist(), bool(sign), bool(busy), float(bits), int(used), upper,
            int(upper_size))


# -- byte planes and fields --------------------------------------------------------------------


def split_planes(values: np.ndarray, rotate: int, mask: object, planes: np.ndarray) -> None:
    """Byte planes of ``values``, most significant first, after rotating left by ``rotate``.

    ``planes`` has shape (itemsize, n). Rotating a float left by one bit moves the sign next to
    the mantissa, so the top plane holds (most of) the exponent. ``mask`` is the uint64 with
    the low ``8 * itemsize`` bits set.
    """
    nplanes, stride = planes.shape
    _check_mask(mask, 8 * nplanes)
    _native.huf_split_planes(values, rotate, planes, nplanes, stride)


def join_planes(planes: Sequence[np.ndarray], rotate: int, mask: object, out: np.ndarray,
                threads: int = 1) -> None:
    """Inverse of :func:`split_planes`: ``out[i]`` from byte ``i`` of each plane (the most
    significant first), rotated right by ``rotate``. ``planes`` are 1..8 uint8 arrays of at
    least ``out.size`` bytes each (the rows of a 2-D array, or separate arrays: a decoded
    plane is joined where it lies). ``threads`` > 1 joins 1M values or more in ranges side by
    side."""
    _check_mask(mask, 8 * len(planes))
    _native.huf_join_planes(rotate, out, threads, *planes)


def split_fields(values: np.ndarray, rotate: int, mask: object, width: int, top: int,
                 syms: np.ndarray, low: np.ndarray) -> None:
    """Split each rotated value into its top ``top`` bits (``syms``) and the rest.

    The remaining ``lb = width - top`` bits of value i are written MSB-first at bit ``i * lb``
    of the bytes ``low`` (uint8, at least ``8 * ceil(n * lb / 64)``), zero-padded to whole
    64-bit words: the bytes the frame holds.
    """
    _check_mask(mask, width)
    _native.huf_split_fields(values, rotate, width, top, syms, low)


def join_fields(syms: np.ndarray, low: np.ndarray, rotate: int, mask: object, width: int,
                top: int, out: np.ndarray) -> None:
    """Inverse of :func:`split_fields` (``low`` holds at least the packed words)."""
    _check_mask(mask, width)
    _native.huf_join_fields(syms, low, rotate, width, top, out)


def join_fields16(syms: np.ndarray, low: np.ndarray, rotate: int, top: int,
                  out: np.ndarray, threads: int = 1) -> None:
    """:func:`join_fields` for 16-bit values whose low field has at most 8 bits (``top`` >= 8).

    ``low`` is the raw bytes of the packed low fields (the big-endian words of the section),
    ``syms`` the uint16 top fields; ``out`` (uint16) may be ``syms`` itself. Eight values'
    fields take ``lb = 16 - top`` whole bytes, so each block of 8 is one vector step (SSSE3:
    a byte shuffle, then per-lane shifts; AVX2: two blocks at once) with no bit reader carried
    from value to value; the last blocks, whose 16-byte load could run past the section, are
    read a byte pair at a time, as the scalar twin reads them all
    (``kernels.use_simd("scalar")``). ``threads`` > 1 joins 512K values or more in runs of
    whole blocks side by side.
    """
    _native.huf_join_fields16(syms, low, rotate, top, out, threads)


def join_fields32(syms: np.ndarray, low: np.ndarray, rotate: int, top: int,
                  out: np.ndarray, threads: int = 1, width: int = 32) -> None:
    """:func:`join_fields` for 32-bit values whose low field has up to 24 bits (``top`` 8..16).

    ``low`` is the raw bytes of the packed low fields (the big-endian words of the section),
    ``syms`` the uint16 top fields, ``out`` uint32. Eight values' fields take ``lb = width -
    top`` whole bytes: the AVX2 step joins a block of 8 from two 16-byte loads (a byte shuffle,
    then per-lane shifts); the last blocks, whose loads could run past the section, are read
    four bytes a value, as the scalar twin reads them all (``kernels.use_simd("scalar")``).
    ``width`` below 32 (more than ``top``): values of that many bits, rotated within them and
    shifted left by ``32 - width`` (a run of low fields shifted past the zeros its values end
    in). ``threads`` > 1 joins 256K values or more in runs of whole blocks side by side.
    """
    _native.huf_join_fields32(syms, low, rotate, top, out, threads, width)
