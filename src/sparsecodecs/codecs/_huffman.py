"""Canonical, length-limited Huffman coding of symbol streams: the entropy stage.

Used by the ``huffman``, ``centroid`` and ``hybrid`` codecs. A coded stream is two sections:

``<name>.codebook`` (role ``codebook``), as frame format version 3 writes it::

    u8      format: 2 = dense lengths, 3 = sparse lengths
    format 2:  varint first symbol F, varint count A, then ceil(A / 2) bytes of 4-bit code
               lengths of symbols F .. F+A-1 (symbol F+2i in the low nibble of byte i, F+2i+1
               in the high nibble; 0 = unused)
    format 3:  varint count K, then K x (u16 symbol, u8 length), symbols strictly ascending
    (S - 1) x varint  the length of each stream but the last, in 64-bit words

where S, the number of streams, is 4 for N >= 2**14 symbols and 1 below (:func:`_nstreams`),
the last stream is the rest of the bits section, and a varint is an unsigned LEB128 number (7
bits a byte, low first, the high bit set on every byte but the last) of at most 9 bytes whose
last byte is not 0 unless it is the only one (one encoding per number). Versions 1 and 2 wrote,
and every reader still reads, formats 0 (dense) and 1 (sparse): the same fields with F, A and K
as u32, then u8 S (1..64) and S x u64 byte lengths of the streams (multiples of 8). The compact
formats spare 14-15 bytes a one-stream codebook, about 32 a four-stream one: a small tensor's
frame is mostly overhead.

``<name>.bits`` (role given by the caller): the S streams, concatenated. The symbols are split
into S contiguous blocks, block s holding symbols ``[s*N//S, (s+1)*N//S)``; each stream is its
block's canonical codes, MSB-first, padded with zero bits to a whole number of big-endian
64-bit words (so a decoder can read whole words).

A coded stream *in blocks* (:func:`encode_symbols_blocked`, for symbols whose statistics
change along the tensor) is one such pair per block of ``B`` consecutive symbols, the last
holding the rest: ``<name>.<j>.codebook`` and ``<name>.<j>.bits`` for block ``j``, each block
with its own code. ``B`` is not in the sections: the stage that codes in blocks records it
(the ``hybrid`` codec's meta ``fields_block``).

Code lengths come from an exact Huffman construction; if the longest exceeds
``max_length`` (<= 15) the lengths are clamped and the Kraft sum repaired by lengthening the
least costly codes, so decoding tables stay at most 2**15 entries.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np

from ..registry import FrameLayoutError, Section, SectionReader, decode_threads
from . import _huffman_kernels as hk

__all__ = [
    "HuffmanTable",
    "canonical_codes",
    "coded_bits",
    "decode_symbols",
    "encode_symbols",
    "encode_symbols_blocked",
    "histogram",
    "huffman_lengths",
]

MAX_LENGTH = 15
MAX_STREAMS = 64
_U32 = struct.Struct("<I")


def histogram(symbols: np.ndarray, alphabet: int) -> np.ndarray:
    """Symbol counts (int64) over ``range(alphabet)`` of unsigned integer ``symbols``.

    Encode side only. A symbol >= alphabet (a caller's bug, never frame data) raises
    ValueError: the compiled kernel checks them all before it counts (the largest is named
    here, once it has refused them).
    """
    flat = np.ascontiguousarray(symbols).reshape(-1)
    try:
        return hk.histogram(flat, alphabet)
    except ValueError:
        if flat.size and int(flat.max()) >= alphabet:
            raise ValueError(
                f"symbol {int(flat.max())} is outside the alphabet of {alphabet}"
            ) from None
        raise


def huffman_lengths(counts: np.ndarray, max_length: int = MAX_LENGTH) -> np.ndarray:
    """Code length of each symbol (0 for symbols that never occur), at most ``max_length``."""
    lengths = np.zeros(counts.size, np.uint8)
    used = np.flatnonzero(counts)
    if used.size == 0:
        return lengths
    if used.size == 1:
        lengths[used[0]] = 1
        return lengths
    if used.size > 1 << max_length:
        raise ValueError(f"{used.size} symbols cannot have codes of at most {max_length} bits")
    order = used[np.argsort(counts[used], kind="stable")]
    lengths[order] = hk.code_lengths(counts[order].astype(np.int64), max_length)
    return lengths


def canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """Canonical codes (uint32) for the given lengths: ordered by (length, symbol).

    The first code of each length is ``(first[len-1] + count[len-1]) << 1`` (RFC 1951, 3.2.2);
    a symbol's code is its length's first code plus its rank among the symbols of that length.
    """
    return hk.canonical_codes(np.ascontiguousarray(lengths, np.uint8))


def coded_bits(counts: np.ndarray, lengths: np.ndarray) -> int:
    """Total bits of the coded stream for these counts and code lengths."""
    return int((counts * lengths.astype(np.int64)).sum())


#: Usual width of the fast decoding table: 2**12 uint64 entries (32 KiB) stay in L1 cache and
#: hold two symbols per entry for codes of up to 6 bits; longer codes (rare by construction)
#: are decoded canonically, without a second table.
FAST_BITS = 12
#: The widest fast table (2**14 entries, 128 KiB), used when codes are long on average.
MAX_FAST_BITS = 14


@dataclass(frozen=True)
class HuffmanTable:
    """Decoding tables (see ``_huffman_kernels.build_decoder``)."""

    width: int  # of the fast table
    table: np.ndarray  # uint64 entries
    full: int  # the longest code
    first: np.ndarray
    count: np.ndarray
    offset: np.ndarray
    order: np.ndarray

    @classmethod
    def from_lengths(cls, lengths: np.ndarray, symbols: int) -> HuffmanTable:
        """Tables for decoding ``symbols`` symbols coded with these code lengths.

        The fast table's width is ``_huffman_kernels.decode_coded_width``'s, the compiled
        decoder's own rule.
        """
        width = hk.decode_coded_width(np.ascontiguousarray(lengths, np.uint8), int(symbols),
                                      FAST_BITS, MAX_FAST_BITS)
        table, width, first, count, offset, order, full, kraft_ok = hk.build_decoder(lengths,
                                                                                    width)
        if not kraft_ok:
            raise FrameLayoutError("Huffman codebook is over-subscribed (Kraft sum > 1)")
        return cls(width, table, full, first, count, offset, order)


def _varint(value: int) -> bytes:
    """``value`` (>= 0) as an unsigned LEB128 varint."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


#: The longest varint a codebook holds: 9 bytes, 63 bits.
_VARINT_MAX = 9


def _read_varint(buf: bytes, at: int, what: str) -> tuple[int, int]:
    """(value, the offset after it) of the varint at ``buf[at:]``; FrameLayoutError for one
    cut short, longer than :data:`_VARINT_MAX` bytes, or with a redundant last byte of 0."""
    value = 0
    for k in range(_VARINT_MAX):
        if at + k >= len(buf):
            raise FrameLayoutError(f"{what}: codebook truncated in a varint")
        byte = buf[at + k]
        value |= (byte & 0x7F) << (7 * k)
        if not byte & 0x80:
            if k and not byte:
                raise FrameLayoutError(f"{what}: codebook varint at byte {at} has a redundant "
                                       "last byte")
            return value, at + k + 1
    raise FrameLayoutError(f"{what}: codebook varint at byte {at} is longer than "
                           f"{_VARINT_MAX} bytes")


def _serialize_lengths(lengths: np.ndarray) -> bytes:
    """The codebook's lengths part (the oracle of the compiled encoder's): the smaller of a
    dense run of 4-bit lengths (format 2) and a list of (symbol, length) pairs (format 3),
    the dense one on a tie."""
    nz = np.flatnonzero(lengths)
    nused, first, last = (nz.size, int(nz[0]), int(nz[-1])) if nz.size else (0, 0, 0)
    span = last + 1 - first if nused else 0
    dense = 1 + len(_varint(first)) + len(_varint(span)) + (span + 1) // 2
    sparse = 1 + len(_varint(nused)) + 3 * nused
    if dense <= sparse:
        ln = np.zeros(span + span % 2, np.uint8)
        ln[:span] = lengths[first : first + span]
        packed = ln[0::2] | (ln[1::2] << 4)
        return b"\x02" + _varint(first) + _varint(span) + packed.tobytes()
    used = np.flatnonzero(lengths)
    pairs = np.zeros(used.size, dtype=[("s", "<u2"), ("l", "u1")])
    pairs["s"] = used
    pairs["l"] = lengths[used]
    return b"\x03" + _varint(nused) + pairs.tobytes()


def _serialize_sizes(sizes: np.ndarray) -> bytes:
    """The codebook's stream lengths (format 2 and 3): every stream's but the last, in words."""
    return b"".join(_varint(int(n) // 8) for n in sizes[:-1])


def _parse_codebook(raw: memoryview, alphabet: int, what: str, count: int,
                    nbytes: int) -> tuple[np.ndarray, np.ndarray]:
    """(lengths, stream byte lengths) from a codebook section of ``count`` symbols whose bits
    section has ``nbytes``; validates everything (formats 0 and 1: the stream lengths as
    stored; formats 2 and 3: :func:`_nstreams` streams, the last one the rest)."""
    buf = bytes(raw)
    if len(buf) < (5 if buf[:1] in (b"\x00", b"\x01") else 2):
        raise FrameLayoutError(f"{what}: codebook of {len(buf)} bytes is too short")
    fmt = buf[0]
    lengths = np.zeros(alphabet, np.uint8)
    if fmt in (0, 2):
        if fmt == 0:
            if len(buf) < 9:
                raise FrameLayoutError(f"{what}: codebook truncated")
            first, span = _U32.unpack_from(buf, 1)[0], _U32.unpack_from(buf, 5)[0]
            at = 9
        else:
            first, at = _read_varint(buf, 1, what)
            span, at = _read_varint(buf, at, what)
        if first + span > alphabet:
            raise FrameLayoutError(
                f"{what}: codebook covers symbols {first}..{first + span - 1}, beyond the "
                f"alphabet of {alphabet}"
            )
        end = at + (span + 1) // 2
        if len(buf) < end:
            raise FrameLayoutError(f"{what}: codebook truncated")
        packed = np.frombuffer(buf, np.uint8, (span + 1) // 2, at)
        ln = np.empty(packed.size * 2, np.uint8)
        ln[0::2] = packed & 15
        ln[1::2] = packed >> 4
        lengths[first : first + span] = ln[:span]
    elif fmt in (1, 3):
        if fmt == 1:
            used, at = _U32.unpack_from(buf, 1)[0], 5
        else:
            used, at = _read_varint(buf, 1, what)
        end = at + 3 * used
        if used > alphabet or len(buf) < end:
            raise FrameLayoutError(f"{what}: sparse codebook of {used} entries is invalid")
        pairs = np.frombuffer(buf, dtype=[("s", "<u2"), ("l", "u1")], count=used, offset=at)
        syms = pairs["s"].astype(np.int64)
        if used and ((np.diff(syms) <= 0).any() or syms[-1] >= alphabet):
            raise FrameLayoutError(f"{what}: sparse codebook symbols not ascending or too big")
        lengths[syms] = pairs["l"]
    else:
        raise FrameLayoutError(f"{what}: unknown codebook format {fmt}")
    if lengths.max(initial=0) > MAX_LENGTH:
        raise FrameLayoutError(f"{what}: code length {int(lengths.max())} > {MAX_LENGTH}")
    if fmt >= 2:
        words = []
        nstreams = _nstreams(count)
        try:
            for _ in range(nstreams - 1):
                n, end = _read_varint(buf, end, what)
                words.append(n)
            if end != len(buf):
                raise FrameLayoutError(f"{what}: codebook has {len(buf) - end} bytes after its "
                                       "stream lengths")
        except FrameLayoutError as exc:
            raise FrameLayoutError(f"{exc} ({count} symbols are {nstreams} streams, "
                                   f"{nstreams - 1} lengths stored)") from None
        # Python ints: no wrap-around, whatever the varints hold
        rest = nbytes - 8 * sum(words)
        if rest < 0 or rest % 8:
            raise FrameLayoutError(
                f"{what}: stream sizes {[8 * n for n in words]} and the rest are not whole "
                f"words adding up to the section's {nbytes} bytes"
            )
        return lengths, np.array([8 * n for n in words] + [rest], np.uint64)
    if len(buf) < end + 1:
        raise FrameLayoutError(f"{what}: codebook has no stream count")
    nstreams = buf[end]
    if not 1 <= nstreams <= MAX_STREAMS or len(buf) != end + 1 + 8 * nstreams:
        raise FrameLayoutError(
            f"{what}: codebook declares {nstreams} streams but has {len(buf) - end - 1} bytes "
            "of stream lengths"
        )
    sizes = np.frombuffer(buf, "<u8", nstreams, end + 1)
    return lengths, sizes


def _stream_bounds(count: int, nstreams: int) -> np.ndarray:
    return (np.arange(nstreams + 1, dtype=np.int64) * count) // nstreams


def encode_symbols(
    symbols: np.ndarray,
    alphabet: int,
    name: str,
    role: str,
    *,
    max_length: int = MAX_LENGTH,
    counts: np.ndarray | None = None,
) -> list[Section]:
    """Huffman-code ``symbols`` (uint8/uint16 < alphabet) into a codebook and a bits section."""
    symbols = np.ascontiguousarray(symbols.reshape(-1))
    if counts is None:
        counts = histogram(symbols, alphabet)
    counts = np.ascontiguousarray(counts, np.int64)
    if counts.size > 1 << 16:
        raise ValueError(f"an alphabet of at most 2**16 symbols, got {counts.size} counts")
    codebook, bits = hk.encode_coded(symbols, counts, max_length, _nstreams(symbols.size))
    return [Section(f"{name}.codebook", "codebook", codebook), Section(f"{name}.bits", role, bits)]


#: The block a stream in blocks is coded in by this library's encoders: 2**17 symbols, what
#: ZipNN's 256 KiB chunks hold of 16-bit values.
BLOCK_SYMBOLS = 1 << 17
#: The blocks a frame may declare: powers of two from 2**10 to 2**24 symbols (smaller blocks
#: would make a frame of many small sections, each with its codebook).
MIN_BLOCK, MAX_BLOCK = 1 << 10, 1 << 24


def block_bounds(count: int, block: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each block of ``block`` symbols of ``count`` (the last the rest)."""
    return [(a, min(a + block, count)) for a in range(0, count, block)]


def encode_symbols_blocked(
    symbols: np.ndarray,
    alphabet: int,
    name: str,
    role: str,
    block: int,
    counts: np.ndarray,
    *,
    max_length: int = MAX_LENGTH,
) -> list[Section]:
    """:func:`encode_symbols` of each block of ``block`` symbols on its own, as sections
    ``<name>.<j>.codebook`` and ``<name>.<j>.bits``; ``counts``: each block's histogram (one
    row a block), as a planner that chose blocks has counted them."""
    symbols = np.ascontiguousarray(symbols.reshape(-1))
    bounds = block_bounds(symbols.size, block)
    if counts.shape[0] != len(bounds):
        raise ValueError(f"{len(bounds)} blocks of {block} symbols, {counts.shape[0]} histograms")
    sections: list[Section] = []
    for j, (a, b) in enumerate(bounds):
        sections += encode_symbols(symbols[a:b], alphabet, f"{name}.{j}", role,
                                   max_length=max_length, counts=counts[j])
    return sections


def encode_symbols_reference(
    symbols: np.ndarray, alphabet: int, name: str, role: str, *, max_length: int = MAX_LENGTH,
) -> list[Section]:
    """:func:`encode_symbols` composed of its pieces (:func:`huffman_lengths`,
    :func:`canonical_codes`, the codebook's writer, one stream encoder call): the test oracle
    of the one compiled call that :func:`encode_symbols` makes."""
    symbols = np.ascontiguousarray(symbols.reshape(-1))
    lengths = huffman_lengths(histogram(symbols, alphabet), max_length)
    codes = canonical_codes(lengths)
    nstreams = _nstreams(symbols.size)
    bounds = _stream_bounds(symbols.size, nstreams)
    # Each stream is written into room for its symbols at the longest code length, then the
    # streams are packed together.
    room = (np.diff(bounds) * int(lengths.max(initial=1)) + 63) // 64 * 8
    offsets = np.zeros(nstreams + 1, np.int64)
    np.cumsum(room, out=offsets[1:])
    buf = np.empty(int(offsets[-1]), np.uint8)
    sizes = np.empty(nstreams, np.int64)
    hk.encode_streams(symbols, codes, lengths, bounds, offsets, buf, sizes)
    out = np.concatenate([buf[offsets[s] : offsets[s] + sizes[s]] for s in range(nstreams)])
    codebook = _serialize_lengths(lengths) + _serialize_sizes(sizes)
    return [Section(f"{name}.codebook", "codebook", codebook), Section(f"{name}.bits", role, out)]


def _nstreams(count: int) -> int:
    return 4 if count >= 1 << 14 else 1


#: What :func:`coded_size` returns for counts no code of the length limit can cover: more than
#: any real size, so that a planner comparing sizes never picks it.
UNCODABLE = 1 << 62


def coded_size(counts: np.ndarray, max_length: int = MAX_LENGTH) -> int:
    """Exact bytes :func:`encode_symbols` would produce for these counts (both sections), or
    :data:`UNCODABLE`. The codebook is what :func:`_serialize_lengths` would write, in the
    smaller of its two formats, with the lengths of all streams but the last (:func:`_nstreams`
    streams); each stream is padded to whole 64-bit words, so four streams are an upper bound,
    exact to 8 * 3 bytes of padding and a byte or two of each length's varint (the compiled
    kernel computes it: ``huffman_sizes``)."""
    return hk.huffman_sizes(counts.reshape(1, -1), 1, max_length)[0]


def coded_sizes(counts: np.ndarray, max_length: int = MAX_LENGTH, levels: int = 1,
                extra: list[int] | None = None) -> list[int]:
    """:func:`coded_size` of each row of the 2-D ``counts`` and, with ``levels`` > 1, of the
    coarser histograms summing adjacent pairs (row by row, finest first), in one call. With
    ``extra`` (one row; the bytes each level adds), only the levels that may have the least
    size + extra, the finest on a tie, are sized: the others answer :data:`UNCODABLE`."""
    return hk.huffman_sizes(counts, levels, max_length,
                            None if extra is None else np.array(extra, np.int64))


_ONE_THREAD: ContextVar[bool] = ContextVar("sparsecodecs_streams_one_thread", default=False)


@contextmanager
def streams_on_one_thread() -> Iterator[None]:
    """Within the block, :func:`decode_symbols` decodes on one thread (its streams in
    lockstep) whatever :func:`~sparsecodecs.registry.decode_threads` says, while the steps
    around it keep their threads: for a decode that runs another part beside it."""
    token = _ONE_THREAD.set(True)
    try:
        yield
    finally:
        _ONE_THREAD.reset(token)


def decode_symbols(
    sections: SectionReader, name: str, count: int, alphabet: int, dtype: type = np.uint8,
    block: int | None = None,
) -> np.ndarray:
    """Inverse of :func:`encode_symbols`: ``count`` symbols of ``dtype``; with ``block``, of
    :func:`encode_symbols_blocked` (the caller has checked it: a power of two from
    :data:`MIN_BLOCK` to :data:`MAX_BLOCK`).

    One compiled call parses the codebook, builds the tables and decodes
    (``_huffman_kernels.decode_coded``); when it finds anything wrong, the frame is read again
    by :func:`_decode_checked`, whose error says what and where.
    """
    if block is not None:
        return _decode_blocks(sections, name, count, alphabet, dtype, block)
    # the sections' bytes as they are (memoryviews: the kernel reads any buffer; two numpy
    # views an encoded stream were a few microseconds of a small frame's decode)
    book = sections.raw(f"{name}.codebook")
    data = sections.raw(f"{name}.bits")
    threads = 1 if _ONE_THREAD.get() else decode_threads()
    if count <= 8 * data.nbytes:  # checked before allocating: every code is at least one bit
        out: np.ndarray = np.empty(count, dtype)
        # _decode_into's first step, inline (a small frame's decode is its calls)
        if not hk.decode_coded(book, data, count, alphabet, _nstreams(count),
                               MAX_LENGTH, FAST_BITS, MAX_FAST_BITS, out, threads):
            return out
    _decode_into(sections, name, book, data, None, count, alphabet, dtype, threads)
    raise AssertionError("unreachable: _decode_into raises for a stream it does not decode")


def _decode_into(
    sections: SectionReader, name: str, book: memoryview, data: memoryview,
    out: np.ndarray | None, count: int, alphabet: int, dtype: type, threads: int,
) -> None:
    """The ``count`` symbols of the stream ``name`` (its sections' bytes ``book`` and
    ``data``) into ``out``, in one compiled call; if that finds anything wrong, or ``out`` is
    None (the caller found the bytes too few for ``count``), the checked reader raises the
    error that says what and where."""
    if out is not None and not hk.decode_coded(book, data, count, alphabet, _nstreams(count),
                                               MAX_LENGTH, FAST_BITS, MAX_FAST_BITS, out,
                                               threads):
        return
    _decode_checked(sections, name, count, alphabet, dtype)
    raise FrameLayoutError(  # the two readers disagree: a bug, reported as a frame error
        f"section '{name}': the compiled decoder refused a stream the checked reader accepts"
    )


def _decode_blocks(
    sections: SectionReader, name: str, count: int, alphabet: int, dtype: type, block: int
) -> np.ndarray:
    """:func:`decode_symbols` of a stream in blocks: every block's sections found, and the
    symbols checked against their bytes, before the output is allocated; each block decoded
    into its part of it, a block's error named by the block's sections."""
    nblocks = -(-count // block)
    if 2 * nblocks > len(sections.names()):  # before listing the blocks: count may be huge
        raise FrameLayoutError(
            f"section '{name}': {count} symbols in blocks of {block} are {nblocks} blocks of two "
            f"sections each, and the frame has {len(sections.names())} sections"
        )
    bounds = block_bounds(count, block)
    books = [sections.raw(f"{name}.{j}.codebook") for j in range(len(bounds))]
    datas = [sections.raw(f"{name}.{j}.bits") for j in range(len(bounds))]
    nbits = 8 * sum(d.nbytes for d in datas)
    if count > nbits:  # checked before allocating: every code is at least one bit
        raise FrameLayoutError(
            f"section '{name}' in {len(bounds)} blocks: {nbits // 8} bytes of streams cannot "
            f"hold {count} symbols of at least one bit each"
        )
    out: np.ndarray = np.empty(count, dtype)
    threads = 1 if _ONE_THREAD.get() else decode_threads()
    for j, ((a, b), book, data) in enumerate(zip(bounds, books, datas, strict=True)):
        _decode_into(sections, f"{name}.{j}", book, data,
                     out[a:b] if b - a <= 8 * data.nbytes else None, b - a, alphabet, dtype,
                     threads)
    return out


def _decode_checked(
    sections: SectionReader, name: str, count: int, alphabet: int, dtype: type = np.uint8
) -> np.ndarray:
    """:func:`decode_symbols` with every check in Python, each with its own message: the
    reference the compiled path is tested against, and its error reporter."""
    what = f"section '{name}'"
    data = sections.array(f"{name}.bits", np.uint8)
    lengths, sizes = _parse_codebook(sections.raw(f"{name}.codebook"), alphabet, what, count,
                                     data.size)
    # A Python sum: summing the u64 sizes in numpy wraps around, which let hostile sizes through.
    if sum(sizes.tolist()) != data.size or (sizes % 8).any():
        raise FrameLayoutError(
            f"{what}: stream sizes {sizes.tolist()} are not whole words adding up to the "
            f"section's {data.size} bytes"
        )
    if sizes.size != _nstreams(count):
        raise FrameLayoutError(f"{what}: {sizes.size} streams, expected {_nstreams(count)}")
    if count > 8 * data.size:  # checked before allocating: every code is at least one bit
        raise FrameLayoutError(
            f"{what}: {data.size} bytes of streams cannot hold {count} symbols of at least one "
            "bit each"
        )
    out: np.ndarray = np.empty(count, dtype)
    if count == 0:
        return out
    if not lengths.any():
        raise FrameLayoutError(f"{what}: empty codebook for {count} symbols")
    table = HuffmanTable.from_lengths(lengths, count)
    # 32 zero bytes after the streams: the decoder reads 8 bytes from a position that may
    # itself overshoot the end by one batch of look-ups (4 of at most 14 bits) before the
    # overrun check catches it.
    padded = np.zeros(data.size + 32, np.uint8)
    padded[: data.size] = data
    starts = np.zeros(sizes.size + 1, np.int64)
    np.cumsum(sizes.astype(np.int64) * 8, out=starts[1:])
    bounds = _stream_bounds(count, sizes.size)
    t = table
    rc = hk.decode_streams(
        padded, starts[:-1], starts[1:], bounds, t.table, t.width, t.first, t.count, t.offset,
        t.order, t.full, out,
    )
    if rc == -1:
        raise FrameLayoutError(f"{what}: a bit pattern matches no code")
    if rc != 0:
        raise FrameLayoutError(f"{what}: the coded stream ends before {count} symbols")
    return out
