"""The canonical, length-limited Huffman stage (``sparsecodecs.codecs._huffman``).

Oracles are independent of the library: ``dahuffman`` for optimal code lengths, the canonical
code construction of RFC 1951 section 3.2.2, a bit-by-bit Python decoder, and a codebook writer
that follows the format in ``_huffman``'s docstring byte by byte.
"""

from __future__ import annotations

import itertools
import math
import struct
from fractions import Fraction

import numpy as np
import pytest
from dahuffman import HuffmanCodec
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

import sparsecodecs as sc
from sparsecodecs.codecs import _huffman as huff
from sparsecodecs.registry import FrameLayoutError, Section, SectionReader
from sparsecodecs.testing import examples

MAX = huff.MAX_LENGTH
FOUR_STREAMS = 1 << 14  # from this many symbols on, a coded block is split into 4 streams


# -- independent oracles -----------------------------------------------------------------------


def optimal_lengths(counts: np.ndarray) -> np.ndarray:
    """Code lengths of an optimal (unlimited) Huffman code, built by dahuffman.

    dahuffman adds an end-of-file symbol unless ``eof`` is already one of the symbols; passing
    a real symbol as ``eof`` builds the code of exactly the real symbols.
    """
    used = np.flatnonzero(counts)
    freqs = {int(s): int(counts[s]) for s in used}
    table = HuffmanCodec.from_frequencies(freqs, eof=int(used[0])).get_code_table()
    assert set(table) == set(freqs)  # no EOF symbol crept in
    lengths = np.zeros(counts.size, np.int64)
    for symbol, (nbits, _) in table.items():
        lengths[symbol] = nbits
    return lengths


def cost(counts: np.ndarray, lengths: np.ndarray) -> int:
    return int((np.asarray(counts, np.int64) * np.asarray(lengths, np.int64)).sum())


def kraft(lengths: np.ndarray) -> Fraction:
    return sum((Fraction(1, 2 ** int(n)) for n in lengths if n), Fraction(0))


def rfc1951_codes(lengths: np.ndarray) -> list[int]:
    """Canonical codes by RFC 1951 3.2.2: count codes per length, first code per length."""
    top = int(max(lengths, default=0))
    bl_count = [0] * (top + 1)
    for n in lengths:
        if n:
            bl_count[int(n)] += 1
    next_code = [0] * (top + 2)
    code = 0
    for bits in range(1, top + 1):
        code = (code + bl_count[bits - 1]) << 1
        next_code[bits] = code
    next_code[1] = 0
    codes = [0] * len(lengths)
    for symbol, n in enumerate(lengths):
        if n:
            codes[symbol] = next_code[int(n)]
            next_code[int(n)] += 1
    return codes


def reference_decode(lengths: np.ndarray, sizes: list[int], data: bytes, count: int):
    """Decode bit by bit, walking the canonical code: the symbols, or the reason it fails."""
    table = {
        (int(n), code): symbol
        for symbol, (n, code) in enumerate(zip(lengths, rfc1951_codes(lengths), strict=True))
        if n
    }
    longest = int(max(lengths))
    nstreams = len(sizes)
    bounds = [s * count // nstreams for s in range(nstreams + 1)]
    out: list[int] = []
    start = 0
    for s in range(nstreams):
        bits = "".join(f"{b:08b}" for b in data[start : start + sizes[s]])
        start += sizes[s]
        pos = 0
        for _ in range(bounds[s + 1] - bounds[s]):
            code = n = 0
            while (n, code) not in table:
                if n == longest:
                    return "no code"
                if pos == len(bits):
                    return "truncated"
                code, n, pos = 2 * code + int(bits[pos]), n + 1, pos + 1
            out.append(table[n, code])
    return np.array(out, np.int64)


def leb128(n: int) -> bytes:
    """``n`` as the docstring's varint, written here from its description."""
    out = []
    while True:
        out.append((n & 127) | (128 if n >> 7 else 0))
        n >>= 7
        if not n:
            return bytes(out)


def codebook(
    lengths: list[int] | list[tuple[int, int]],
    sizes: list[int],
    *,
    fmt: int = 0,
    first: int = 0,
    nstreams: int | None = None,
    compact: bool = False,
) -> bytes:
    """A codebook section written from the docstring's format, not with the library.

    ``lengths``: the lengths of symbols ``first, first + 1, ...`` (dense format, or format
    ``fmt``), or ``(symbol, length)`` pairs, written in the given order (sparse format). The
    format of versions 1-2 (u32 fields, the stream count and every stream's u64 length), or
    with ``compact`` version 3's (varint fields, every stream's length in words but the
    last's: ``sizes`` then lists those, in bytes).
    """
    u32 = leb128 if compact else (lambda n: struct.pack("<I", n))
    if lengths and isinstance(lengths[0], tuple):
        body = b"".join(struct.pack("<HB", s, n) for s, n in lengths)
        head = bytes([3 if compact else 1]) + u32(len(lengths))
    else:
        nibbles = [*lengths, 0] if len(lengths) % 2 else list(lengths)
        body = bytes(lo | hi << 4 for lo, hi in zip(nibbles[0::2], nibbles[1::2], strict=True))
        head = bytes([fmt + 2 * compact]) + u32(first) + u32(len(lengths))
    if compact:
        return head + body + b"".join(leb128(n // 8) for n in sizes)
    count = len(sizes) if nstreams is None else nstreams
    return head + body + bytes([count]) + b"".join(struct.pack("<Q", n) for n in sizes)


def reader(book: bytes, bits: bytes, name: str = "s") -> SectionReader:
    return SectionReader(
        [Section(f"{name}.codebook", "codebook", book), Section(f"{name}.bits", "values", bits)]
    )


def read_leb128(book: bytes, at: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        byte = book[at]
        n |= (byte & 127) << shift
        shift, at = shift + 7, at + 1
        if byte < 128:
            return n, at


def parse_book(book: bytes, alphabet: int, nbytes: int | None = None,
               count: int | None = None) -> tuple[np.ndarray, list[int], int]:
    """(lengths, stream sizes, format) of a codebook written by the library, read by the spec
    (the compact formats 2 and 3: given the bits section's ``nbytes`` and the symbol
    ``count``)."""
    lengths = np.zeros(alphabet, np.int64)
    fmt = book[0]
    if fmt in (0, 2):
        if fmt == 0:
            first, span = struct.unpack_from("<II", book, 1)
            at = 9
        else:
            first, at = read_leb128(book, 1)
            span, at = read_leb128(book, at)
        end = at + (span + 1) // 2
        for i, byte in enumerate(book[at:end]):
            for j, n in enumerate((byte & 15, byte >> 4)):
                if 2 * i + j < span:
                    lengths[first + 2 * i + j] = n
    else:
        if fmt == 1:
            (k,) = struct.unpack_from("<I", book, 1)
            at = 5
        else:
            k, at = read_leb128(book, 1)
        end = at + 3 * k
        for s, n in struct.iter_unpack("<HB", book[at:end]):
            lengths[s] = n
    if fmt >= 2:
        assert nbytes is not None and count is not None
        sizes = []
        for _ in range((4 if count >= FOUR_STREAMS else 1) - 1):
            words, end = read_leb128(book, end)
            sizes.append(8 * words)
        assert end == len(book)
        return lengths, [*sizes, nbytes - sum(sizes)], fmt
    nstreams = book[end]
    assert len(book) == end + 1 + 8 * nstreams
    return lengths, list(struct.unpack_from(f"<{nstreams}Q", book, end + 1)), fmt


def encode(symbols: np.ndarray, alphabet: int, **kwargs) -> tuple[bytes, bytes]:
    book, bits = huff.encode_symbols(symbols, alphabet, "s", "values", **kwargs)
    assert (book.name, book.role, bits.name, bits.role) == (
        "s.codebook", "codebook", "s.bits", "values"
    )
    return bytes(book.data), bytes(memoryview(bits.data).cast("B"))


def skewed(rng: np.random.Generator, alphabet: int, count: int, spread: int = 1) -> np.ndarray:
    """Geometric-ish symbols (a few frequent, a long tail), ``spread`` apart."""
    dtype = np.uint8 if alphabet <= 256 else np.uint16
    return ((rng.geometric(0.15, count) - 1) * spread % alphabet).astype(dtype)


# -- code lengths ------------------------------------------------------------------------------

frequency_tables = st.lists(st.integers(1, 1 << 20), min_size=2, max_size=300).map(
    lambda c: np.array(c, np.int64)
)


@given(counts=frequency_tables, zeros=st.lists(st.integers(0, 299), max_size=20))
def test_lengths_are_optimal_when_the_limit_does_not_bind(counts: np.ndarray, zeros: list[int]):
    counts[[z for z in zeros if z < counts.size]] = 0  # symbols that never occur
    assume(np.count_nonzero(counts) >= 2)
    best = optimal_lengths(counts)
    assume(best.max() <= 32)
    for limit in (32, MAX) if best.max() <= MAX else (32,):
        lengths = huff.huffman_lengths(counts, limit)
        assert lengths.dtype == np.uint8
        assert ((lengths == 0) == (counts == 0)).all()
        assert cost(counts, lengths) == cost(counts, best), limit


@given(counts=frequency_tables, limit=st.integers(8, MAX))
def test_more_frequent_symbols_never_get_longer_codes(counts: np.ndarray, limit: int):
    lengths = huff.huffman_lengths(counts, limit).astype(np.int64)
    more = counts[:, None] > counts[None, :]
    assert not (more & (lengths[:, None] > lengths[None, :])).any()


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ([5, 5], [1, 1]),
        ([1] * 16, [4] * 16),
        ([0, 7, 0], [0, 1, 0]),  # a single symbol still gets a 1-bit code
        ([0, 0], [0, 0]),
        ([1, 1, 2, 4, 8], [4, 4, 3, 2, 1]),
    ],
)
def test_lengths_of_small_tables(counts: list[int], expected: list[int]):
    assert huff.huffman_lengths(np.array(counts, np.int64)).tolist() == expected


def fibonacci(n: int) -> np.ndarray:
    fib = [1, 1]
    while len(fib) < n:
        fib.append(fib[-1] + fib[-2])
    return np.array(fib[:n], np.int64)


def check_limited(counts: np.ndarray, limit: int) -> None:
    """A length-limited code: within the limit, Kraft <= 1, and at most the bound below.

    With Huffman lengths l_i, the lengths min(l_i + 1, L) also satisfy Kraft when at most
    2**(L-1) symbols occur (the codes below L use at most half the code space, the codes at L
    at most 2**(L-1) * 2**-L = 1/2), and cost at most one bit more per symbol. So an
    L-limited code costs at most cost(Huffman) + sum(counts), and never less than Huffman.
    """
    used = np.count_nonzero(counts)
    assert used <= 1 << (limit - 1)
    lengths = huff.huffman_lengths(counts, limit)
    assert ((lengths == 0) == (counts == 0)).all()
    assert lengths.max() <= limit
    assert kraft(lengths) <= 1
    best = cost(counts, optimal_lengths(counts))
    assert best <= cost(counts, lengths) <= best + int(counts.sum())
    assert cost(counts, lengths) <= math.ceil(math.log2(used)) * int(counts.sum())  # flat code


@pytest.mark.parametrize("limit", [8, 11, MAX])
@pytest.mark.parametrize("n", [20, 31, 45])
def test_limit_binds_on_fibonacci_frequencies(n: int, limit: int):
    counts = fibonacci(n)
    assert optimal_lengths(counts).max() == n - 1 > limit  # unlimited Huffman: a chain
    check_limited(counts, limit)


@given(
    exponents=st.lists(st.integers(0, 40), min_size=2, max_size=128),
    limit=st.integers(8, MAX),
)
def test_limited_lengths_on_heavy_tails(exponents: list[int], limit: int):
    check_limited(np.array([1 << e for e in exponents], np.int64), limit)


def test_too_many_symbols_for_the_limit():
    with pytest.raises(ValueError, match="cannot have codes of at most 8 bits"):
        huff.huffman_lengths(np.ones(257, np.int64), 8)


# -- canonical codes ---------------------------------------------------------------------------


@given(counts=frequency_tables, limit=st.integers(8, MAX))
def test_canonical_codes_are_rfc1951_prefix_free_and_ordered(counts: np.ndarray, limit: int):
    lengths = huff.huffman_lengths(counts, limit)
    codes = huff.canonical_codes(lengths)
    assert codes.dtype == np.uint32
    assert codes.tolist() == rfc1951_codes(lengths)
    assert (codes < (np.uint64(1) << lengths.astype(np.uint64))).all()
    # Each code owns the interval of `limit`-bit strings it prefixes. In (length, symbol)
    # order the intervals must be ascending and disjoint: that is prefix-free and canonical.
    order = sorted(np.flatnonzero(lengths), key=lambda s: (lengths[s], s))
    lo = [int(codes[s]) << (limit - int(lengths[s])) for s in order]
    hi = [(int(codes[s]) + 1) << (limit - int(lengths[s])) for s in order]
    assert all(h <= nxt for h, nxt in zip(hi, lo[1:], strict=False))


@pytest.mark.parametrize("size", [7, 8, 9, 64, 65, 4096])
@pytest.mark.parametrize("used", [1, 2, 5, 40])
def test_canonical_codes_of_sparse_alphabets(size: int, used: int):
    """Canonical codes where most symbols are unused (runs of eight unused ones are passed over
    at once): the codes RFC 1951 assigns, unused symbols code 0, in tables whose size is at
    and around multiples of eight."""
    rng = np.random.default_rng(size * 7 + used)
    counts = np.zeros(size, np.int64)
    k = min(used, size)
    counts[rng.choice(size, k, replace=False)] = rng.integers(1, 1000, k)
    lengths = huff.huffman_lengths(counts, MAX)
    codes = huff.canonical_codes(lengths)
    assert codes.tolist() == rfc1951_codes(lengths)
    assert not codes[lengths == 0].any()


def test_canonical_codes_of_a_known_code():
    # RFC 1951's example: lengths (3, 3, 3, 3, 3, 2, 4, 4) for symbols A..H
    lengths = np.array([3, 3, 3, 3, 3, 2, 4, 4], np.uint8)
    expected = [0b010, 0b011, 0b100, 0b101, 0b110, 0b00, 0b1110, 0b1111]
    assert huff.canonical_codes(lengths).tolist() == expected


# -- encode / decode ---------------------------------------------------------------------------

ALPHABETS = [(1, np.uint8), (2, np.uint8), (3, np.uint8), (256, np.uint8), (256, np.uint16),
             (257, np.uint16), (4096, np.uint16), (65536, np.uint16)]
COUNTS = [0, 1, 7, FOUR_STREAMS - 1, FOUR_STREAMS, 100_003]


def round_trip(symbols: np.ndarray, alphabet: int) -> tuple[bytes, bytes]:
    book, bits = encode(symbols, alphabet)
    out = huff.decode_symbols(reader(book, bits), "s", symbols.size, alphabet, symbols.dtype)
    assert out.dtype == symbols.dtype
    assert out.tobytes() == symbols.tobytes()
    return book, bits


@pytest.mark.parametrize("count", COUNTS)
@pytest.mark.parametrize(("alphabet", "dtype"), ALPHABETS)
def test_round_trip(alphabet: int, dtype: type, count: int):
    rng = np.random.default_rng(alphabet * 7 + count)
    spread = 1 if alphabet < 65536 else 4099  # few symbols spread out: the sparse format
    symbols = skewed(rng, alphabet, count, spread).astype(dtype)
    book, bits = round_trip(symbols, alphabet)
    lengths, sizes, _ = parse_book(book, alphabet, len(bits), count)
    counts = np.bincount(symbols, minlength=alphabet)
    assert ((lengths == 0) == (counts == 0)).all()
    assert len(sizes) == (4 if count >= FOUR_STREAMS else 1)
    assert all(n % 8 == 0 for n in sizes)
    assert sum(sizes) == len(bits)
    bounds = [s * count // len(sizes) for s in range(len(sizes) + 1)]
    for s, n in enumerate(sizes):  # each stream: its block's codes padded to whole words
        block = symbols[bounds[s] : bounds[s + 1]]
        assert n == (cost(np.bincount(block, minlength=alphabet), lengths) + 63) // 64 * 8
    actual = len(book) + len(bits)
    estimate = huff.coded_size(counts)
    # four streams: each may hold a word of padding, and its length's varint a byte or two
    # fewer than the estimate's (as long as all the streams' words need)
    assert actual <= estimate <= actual + (8 + 2) * (len(sizes) - 1)


@pytest.mark.parametrize("count", [1, 5, 64, 65, FOUR_STREAMS + 1])
@pytest.mark.parametrize(("symbol", "alphabet"), [(0, 1), (255, 256), (4000, 4096)])
def test_single_symbol_streams(symbol: int, alphabet: int, count: int):
    symbols = np.full(count, symbol, np.uint8 if alphabet <= 256 else np.uint16)
    book, bits = round_trip(symbols, alphabet)
    lengths, sizes, _ = parse_book(book, alphabet, len(bits), count)
    assert np.flatnonzero(lengths).tolist() == [symbol]
    assert lengths[symbol] == 1  # one bit per symbol: code "0"
    assert bits == bytes(len(bits))
    bounds = [s * count // len(sizes) for s in range(len(sizes) + 1)]
    assert sizes == [(b - a + 63) // 64 * 8 for a, b in itertools.pairwise(bounds)]


def test_bits_are_msb_first_big_endian_words():
    # lengths: 0 -> "0", 1 -> "10", 2 -> "11"; symbols 2 1 0 2 0 0 code to 11 10 0 11 0 0
    symbols = np.array([2, 1, 0, 2, 0, 0], np.uint8)
    book, bits = encode(symbols, 3)
    assert parse_book(book, 3, len(bits), symbols.size)[0].tolist() == [1, 2, 2]
    assert bits == bytes([0b11100110, 0b00000000]) + bytes(6)


@pytest.mark.parametrize(
    ("symbols", "alphabet", "fmt"),
    [
        (np.arange(200, dtype=np.uint8), 256, 2),  # contiguous: 4-bit lengths win
        (np.array([3, 3, 40000, 65535], np.uint16), 65536, 3),  # spread out: pairs win
        (np.array([], np.uint8), 256, 3),  # 2 bytes beat 3
        (np.array([200, 201], np.uint8), 256, 2),  # 5 bytes each: the dense one on a tie
        (np.full(FOUR_STREAMS, 7, np.uint8), 256, 2),  # four streams: three lengths stored
    ],
)
def test_codebook_format_is_the_smaller(symbols: np.ndarray, alphabet: int, fmt: int):
    book, bits = round_trip(symbols, alphabet)
    lengths, sizes, chosen = parse_book(book, alphabet, len(bits), symbols.size)
    assert chosen == fmt
    used = np.flatnonzero(lengths)
    first, span = (int(used[0]), int(used[-1] - used[0] + 1)) if used.size else (0, 0)
    dense = 1 + len(leb128(first)) + len(leb128(span)) + (span + 1) // 2
    sparse = 1 + len(leb128(used.size)) + 3 * used.size
    assert len(book) == min(dense, sparse) + sum(len(leb128(n // 8)) for n in sizes[:-1])


@given(
    data=st.data(),
    alphabet=st.sampled_from([2, 17, 256, 300, 4096]),
    count=st.integers(0, 3000),
)
def test_round_trip_of_random_symbols(data: st.DataObject, alphabet: int, count: int):
    dtype = np.uint8 if alphabet <= 256 else np.uint16
    top = data.draw(st.integers(0, alphabet - 1), label="largest symbol")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(top + 1, data.draw(st.sampled_from([0.05, 1.0, 20.0]))))
    round_trip(rng.choice(top + 1, count, p=probs).astype(dtype), alphabet)


def test_coded_size_is_exact_for_one_stream():
    counts = np.bincount(np.array([1, 1, 2], np.uint8), minlength=4)
    book, bits = encode(np.array([1, 1, 2], np.uint8), 4)
    assert huff.coded_size(counts) == len(book) + len(bits)  # one stream: exact


# -- the compiled decoder against a bit-by-bit reference ---------------------------------------


def check_against_reference(lengths: np.ndarray, sizes: list[int], data: bytes, count: int):
    alphabet = lengths.size
    book = codebook(lengths.tolist(), sizes)
    want = reference_decode(lengths, sizes, data, count)
    r = reader(book, data)
    if isinstance(want, str):
        refusals = r"matches no code|ends before|cannot hold"
        with pytest.raises(FrameLayoutError, match=refusals) as info:
            huff.decode_symbols(r, "s", count, alphabet, np.uint16)
        if count > 8 * len(data):  # refused before decoding: a code is at least one bit
            assert "cannot hold" in str(info.value)
        elif want == "no code" and len(sizes) == 1:
            assert "matches no code" in str(info.value)
    else:
        got = huff.decode_symbols(r, "s", count, alphabet, np.uint16)
        assert got.astype(np.int64).tolist() == want.tolist()


@st.composite
def codes(draw: st.DrawFn) -> np.ndarray:
    """Code lengths: optimal for drawn counts (long codes for heavy tails), maybe with a
    code taken away (an incomplete code: some bit patterns match nothing)."""
    exps = draw(st.lists(st.integers(0, 24), min_size=1, max_size=40), label="log2 counts")
    lengths = huff.huffman_lengths(np.array([1 << e for e in exps], np.int64),
                                   draw(st.integers(8, MAX), label="limit"))
    if lengths.size > 1 and draw(st.booleans(), label="drop a code"):
        lengths[draw(st.integers(0, lengths.size - 1))] = 0
    assume(lengths.any())
    return lengths


@settings(max_examples=examples(200))
@given(lengths=codes(), count=st.integers(1, 400), data=st.data())
def test_decoder_matches_reference_on_random_bits(lengths: np.ndarray, count: int,
                                                  data: st.DataObject):
    words = data.draw(st.integers(0, (count * int(lengths.max()) + 63) // 64 + 1), label="words")
    bits = data.draw(st.binary(min_size=8 * words, max_size=8 * words), label="bits")
    check_against_reference(lengths, [len(bits)], bits, count)


@settings(max_examples=examples(40))
@given(lengths=codes(), seed=st.integers(0, 2**32 - 1), flips=st.integers(0, 3))
def test_decoder_matches_reference_on_four_streams(lengths: np.ndarray, seed: int, flips: int):
    rng = np.random.default_rng(seed)
    used = np.flatnonzero(lengths)
    p = 0.5 ** lengths[used].astype(float)  # a distribution this code would suit
    symbols = rng.choice(used, FOUR_STREAMS + rng.integers(0, 999), p=p / p.sum())
    symbols = symbols.astype(np.uint16)
    book, bits = encode(symbols, lengths.size)
    raw = bytearray(bits)
    for pos in rng.integers(0, 8 * len(raw), flips):
        raw[pos // 8] ^= 0x80 >> (pos % 8)
    lengths, sizes, _ = parse_book(book, lengths.size, len(bits), symbols.size)
    check_against_reference(lengths, sizes, bytes(raw), symbols.size)


# -- hostile codebooks and streams -------------------------------------------------------------

W = bytes(8)  # one zero word
ONES = b"\xff" * 8

HOSTILE = {
    "too short": (b"\x00\x00", W, 4, 4, "too short"),
    "dense truncated": (b"\x00" + struct.pack("<II", 0, 4), W, 4, 4, "codebook truncated"),
    "no stream count": (bytes([0]) + struct.pack("<II", 0, 2) + b"\x11", W, 4, 4,
                        "no stream count"),
    "over-subscribed": (codebook([1, 1, 1], [8]), W, 4, 4, "over-subscribed"),
    "over-subscribed long": (codebook([1] + [2] * 2 + [15] * 3, [8]), W, 4, 6,
                             "over-subscribed"),
    "length 16": (codebook([(0, 1), (1, 16)], [8]), W, 4, 4, "code length 16 > 15"),
    "length 255": (codebook([(0, 255), (1, 1)], [8]), W, 4, 4, "code length 255 > 15"),
    "format 4": (codebook([1, 1], [8], fmt=4), W, 4, 4, "unknown codebook format 4"),
    # version 3's compact formats (2, 3): varints, no stream count, the last length implied
    "compact too short": (b"\x02", W, 4, 4, "too short"),
    "compact varint cut": (b"\x02\x80", W, 4, 4, "truncated in a varint"),
    "compact varint of 10 bytes": (b"\x02" + b"\x80" * 9 + b"\x01", W, 4, 4,
                                   "longer than 9 bytes"),
    "compact varint redundant": (b"\x02\x80\x00\x02\x11", W, 4, 4, "redundant last byte"),
    "compact dense beyond alphabet": (codebook([1, 1], [], first=3, compact=True), W, 4, 4,
                                      "beyond the alphabet"),
    "compact first far out": (codebook([1, 1], [], first=2**62, compact=True), W, 4, 4,
                              "beyond the alphabet"),
    "compact dense truncated": (codebook([1, 1, 1], [], compact=True)[:-1], W, 4, 4,
                                "codebook truncated"),
    "compact sparse too many": (codebook([(s, 3) for s in range(5)], [], compact=True), W, 4,
                                4, "sparse codebook of 5 entries"),
    "compact sparse descending": (codebook([(1, 1), (0, 1)], [], compact=True), W, 4, 4,
                                  "not ascending"),
    "compact one stream, a length stored": (codebook([1, 1], [8], compact=True), W, 4, 4,
                                            "1 bytes after its stream lengths"),
    "compact four streams, lengths missing": (codebook([1, 1], [8, 8], compact=True),
                                              bytes(32), FOUR_STREAMS, 4,
                                              "truncated in a varint"),
    "compact lengths past the data": (codebook([1, 1], [8, 8, 8], compact=True), bytes(16),
                                      FOUR_STREAMS, 4, "not whole words"),
    "compact lengths wrap around": (codebook([1, 1], [2**63] * 3, compact=True), bytes(32),
                                    FOUR_STREAMS, 4, "not whole words"),
    "compact data not whole words": (codebook([1, 1], [], compact=True), bytes(12), 4, 4,
                                     "not whole words"),
    "format 255": (codebook([1, 1], [8], fmt=255), W, 4, 4, "unknown codebook format 255"),
    "dense beyond alphabet": (codebook([1, 1], [8], first=3), W, 4, 4, "beyond the alphabet"),
    "dense first far out": (codebook([1, 1], [8], first=2**32 - 1), W, 4, 4,
                            "beyond the alphabet"),
    "sparse beyond alphabet": (codebook([(0, 1), (4, 1)], [8]), W, 4, 4,
                               "not ascending or too big"),
    "sparse too many": (codebook([(s, 3) for s in range(5)], [8]), W, 4, 4,
                        "sparse codebook of 5 entries"),
    "sparse descending": (codebook([(1, 1), (0, 1)], [8]), W, 4, 4, "not ascending"),
    "sparse repeated": (codebook([(1, 1), (2, 2), (2, 2)], [8]), W, 4, 4, "not ascending"),
    "sparse count beyond bytes": (bytes([1]) + struct.pack("<I", 3) + struct.pack("<HB", 0, 1),
                                  W, 4, 4, "sparse codebook of 3 entries"),
    "size not a word": (codebook([1, 1], [12]), bytes(12), 4, 4, "not whole words"),
    "sizes short of the data": (codebook([1, 1], [8]), bytes(16), 4, 4, "not whole words"),
    "sizes past the data": (codebook([1, 1], [16]), W, 4, 4, "not whole words"),
    # u64 sizes whose numpy sum wraps around to the data size (this crashed the decoder)
    "sizes wrap around": (codebook([1, 1], [2**37, 2**64 - 2**37 + 8, 8, 8]), bytes(24),
                          FOUR_STREAMS, 4, "not whole words"),
    "two streams for few symbols": (codebook([1, 1], [8, 8]), bytes(16), 4, 4,
                                    "2 streams, expected 1"),
    "one stream for many symbols": (codebook([1, 1], [2048]), bytes(2048), FOUR_STREAMS, 4,
                                    "1 streams, expected 4"),
    "no streams": (codebook([1, 1], []), b"", 4, 4, "declares 0 streams"),
    "65 streams": (codebook([1, 1], [0] * 65), b"", 4, 4, "declares 65 streams"),
    "stream sizes missing": (codebook([1, 1], [8], nstreams=2), W, 4, 4,
                             "declares 2 streams but has 8 bytes"),
    "stream sizes extra": (codebook([1, 1], [8, 8], nstreams=1), W, 4, 4,
                           "declares 1 streams but has 16 bytes"),
    "empty codebook": (codebook([0, 0], [8]), W, 4, 4, "empty codebook for 4 symbols"),
    "truncated stream": (codebook([2, 2, 2, 2], [8]), W, 40, 4, "ends before 40 symbols"),
    # checked before the symbols are allocated: a code is at least one bit
    "more symbols than bits": (codebook([1, 1], [8]), W, 65, 2,
                               "8 bytes of streams cannot hold 65 symbols"),
    "empty stream": (codebook([1, 2, 2], [0]), b"", 1, 3, "0 bytes of streams cannot hold 1"),
    "no code, short": (codebook([1], [8]), ONES, 4, 1, "matches no code"),
    "no code, 2 bits": (codebook([1, 2], [8]), ONES, 4, 2, "matches no code"),
    # codes longer than the fast table (at most 12 bits) are decoded canonically
    "no code, long": (codebook([1, 13, 13], [8]), ONES, 1, 3, "matches no code"),
    "no code after a long code": (codebook([1] + [14] * 3, [8]), b"\x80\x03\xff" + bytes(5), 2,
                                  4, "matches no code"),
}


@pytest.mark.parametrize(
    ("book", "bits", "count", "alphabet", "match"), HOSTILE.values(), ids=HOSTILE.keys()
)
def test_hostile_codebooks_and_streams(book: bytes, bits: bytes, count: int, alphabet: int,
                                       match: str):
    with pytest.raises(FrameLayoutError, match=match):
        huff.decode_symbols(reader(book, bits), "s", count, alphabet, np.uint16)


def test_hostile_four_streams_one_truncated():
    symbols = skewed(np.random.default_rng(5), 256, FOUR_STREAMS + 11)
    book, bits = encode(symbols, 256)
    lengths, sizes, _ = parse_book(book, 256, len(bits), symbols.size)
    cut = [sizes[0] - 8, *sizes[1:]]  # the last word of stream 0 is gone
    data = bits[: cut[0]] + bits[sizes[0] :]
    with pytest.raises(FrameLayoutError, match=r"ends before|matches no code"):
        huff.decode_symbols(reader(codebook(lengths.tolist(), cut), data), "s", symbols.size, 256)


def overrun_stream(last_bit: str) -> bytes:
    """One stream of 4097 symbols of the code 0 -> '0', 1 -> '10', 2 -> '11' in exactly 65
    words: 63 x '10', 4033 x '0', then the last symbol's code starts in the stream's very last
    bit. With ``last_bit`` '0' that code is complete (symbol 0); with '1' it is the first bit
    of '10' or '11', whose second bit lies past the stream's end."""
    bits = "10" * 63 + "0" * 4033 + last_bit
    assert len(bits) == 65 * 64
    return np.packbits(np.array([int(b) for b in bits], np.uint8)).tobytes()


@pytest.mark.parametrize("nstreams", [1, 4])
def test_a_last_code_running_past_its_stream_is_refused(nstreams: int):
    """Issue 15: a stream whose only fault is its last symbol's overrun (it ends mid-code) is
    refused, never decoded silently from the zero padding (one stream) or from the next
    stream's first bits (four streams: stream 1 starts with '0', which would complete '10').
    The decoders check the stream end once per batch of look-ups and after every look-up of
    the tail; the symbol count here sends the last symbol down the tail's single look-up, in
    both layouts, so only the check after it can catch the overrun."""
    per = 4097
    count = per * nstreams
    assert (count >= FOUR_STREAMS) == (nstreams == 4)
    rest = np.packbits(np.zeros(65 * 64, np.uint8)).tobytes()  # 4097 x '0', zero-padded
    book = codebook([1, 2, 2], [8 * 65] * nstreams)
    good = overrun_stream("0") + rest * (nstreams - 1)
    want = [1] * 63 + [0] * 4034 + [0] * per * (nstreams - 1)
    assert huff.decode_symbols(reader(book, good), "s", count, 3).tolist() == want
    bad = overrun_stream("1") + rest * (nstreams - 1)
    assert reference_decode(np.array([1, 2, 2]), [8 * 65] * nstreams, bad, count) == "truncated"
    for decode in (huff.decode_symbols, huff._decode_checked):
        with pytest.raises(FrameLayoutError, match=f"ends before {count} symbols"):
            decode(reader(book, bad), "s", count, 3)


def test_decoding_with_a_smaller_alphabet_is_refused():
    symbols = np.array([0, 1, 2], np.uint8)
    book, bits = encode(symbols, 3)
    with pytest.raises(FrameLayoutError, match="beyond the alphabet"):
        huff.decode_symbols(reader(book, bits), "s", 3, 2)


# -- the planner's one-pass histograms -------------------------------------------------------


@settings(max_examples=examples(30))
@given(
    dtype=st.sampled_from(["bfloat16", "float16", "float32", "uint16", "int32"]),
    data=st.data(),
)
def test_value_histograms_equal_the_two_separate_passes(dtype: str, data: st.DataObject):
    from hypothesis.extra import numpy as hnp

    from sparsecodecs.codecs import _huffman_kernels as hk
    from sparsecodecs.codecs import _stages
    from sparsecodecs.registry import SUPPORTED_DTYPES, bits_dtype

    dt = SUPPORTED_DTYPES[dtype]
    values = data.draw(hnp.arrays(bits_dtype(dt), st.integers(0, 300)))
    planes, fine = _stages.value_histograms(values, dt)
    rot, mask = _stages.rotation(dt), _stages._mask(dt)
    np.testing.assert_array_equal(planes, hk.plane_histograms(values, rot, mask, dt.itemsize))
    top = min(_stages.MAX_TOP_BITS, 8 * dt.itemsize - 1)
    np.testing.assert_array_equal(fine, hk.top_histogram(values, rot, mask, 8 * dt.itemsize, top))


@settings(max_examples=examples(30))
@given(dtype=st.sampled_from(["float32", "float32", "int32", "uint32"]), data=st.data())
def test_value_histograms_off_the_distinct_values_equal_the_pass(dtype: str,
                                                                  data: st.DataObject):
    """32-bit values whose distinct values and counts are known are counted off those,
    weighted (a few distinct values: at most one in 8), else by the pass: either way the
    histograms of the pass over the values, rotated as their dtype is."""
    from sparsecodecs.codecs import _stages
    from sparsecodecs.registry import SUPPORTED_DTYPES, bits_dtype

    dt = SUPPORTED_DTYPES[dtype]
    pool = data.draw(st.lists(st.integers(0, (1 << 32) - 1), min_size=1, max_size=40))
    n = data.draw(st.integers(1, 2000))
    rng = np.random.default_rng(n)
    values = np.array(pool, np.uint64).astype(bits_dtype(dt))[rng.integers(0, len(pool), n)]
    runs = np.unique(values, return_counts=True)
    want = _stages.value_histograms(values, dt)
    weighted = _stages._histograms_of_runs(runs, _stages.rotation(dt), _stages.MAX_TOP_BITS)
    for got in (weighted, _stages.value_histograms(values, dt, runs=runs)):
        for g, w in zip(got, want, strict=True):
            assert g.dtype == w.dtype == np.int64 and g.shape == w.shape
            np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize(("width", "itemsize"), [(16, 2), (32, 4), (19, 4), (8, 1)])
@pytest.mark.parametrize("count", [0, 1, 2, 3, 5000, 5001])
def test_top_histogram_counts_the_top_bits_of_each_rotated_value(width: int, itemsize: int,
                                                                 count: int):
    """Against numpy, rotated by 0, 1 and 3 bits: whole items rotated by 0 or 1 take a loop of
    their own (constant widths), other widths and rotations the general one; both either side
    of the second table (more values than 4 * 2**top), an odd count leaving one value over."""
    from sparsecodecs import kernels
    from sparsecodecs.codecs import _huffman_kernels as hk

    rng = np.random.default_rng(count + width)
    dt = np.dtype(f"u{itemsize}")
    values = np.where(rng.random(count) < 0.5, rng.integers(0, 1 << width, count),
                      rng.integers(0, 8, count) << (width - 4)).astype(dt)
    mask = np.uint64((1 << width) - 1)
    for rotate in (0, 1, 3):
        x = values.astype(np.uint64)
        rotated = ((x << np.uint64(rotate)) | (x >> np.uint64(width - rotate))) & mask
        for top in sorted({4, min(width - 1, 9)}):
            want = np.bincount((rotated >> np.uint64(width - top)).astype(np.int64),
                               minlength=1 << top)
            for level in simd_levels():
                with kernels.use_simd(level):
                    got = hk.top_histogram(values, rotate, mask, width, top)
                np.testing.assert_array_equal(got, want, err_msg=f"{rotate} {top} {level}")


@pytest.mark.parametrize("top", [8, 12, 16])
@pytest.mark.parametrize("count", [0, 1, 383, 4095, 4096, 9001])
def test_value_histograms_either_side_of_the_direct_count(top: int, count: int):
    """16- and 32-bit values fewer than the 2**top bins are counted straight into the tables,
    more through a pair of table sets summed after: the same histograms as the separate passes
    either way, at every SIMD level, rotated or not."""
    from sparsecodecs import kernels
    from sparsecodecs.codecs import _huffman_kernels as hk

    rng = np.random.default_rng(count + top)
    values = np.where(rng.random(count) < 0.5, rng.integers(0, 1 << 16, count),
                      rng.integers(0x3F00, 0x3F08, count)).astype(np.uint16)
    mask = np.uint64(0xFFFF)
    wide = (values.astype(np.uint32) << 16 | rng.integers(0, 1 << 16, count)).astype(np.uint32)
    mask32 = np.uint64(0xFFFFFFFF)
    for rotate in (0, 1):
        want = (hk.plane_histograms(values, rotate, mask, 2),
                hk.top_histogram(values, rotate, mask, 16, top))
        want32 = (hk.plane_histograms(wide, rotate, mask32, 4),
                  hk.top_histogram(wide, rotate, mask32, 32, top))
        for level in simd_levels():
            with kernels.use_simd(level):
                for got, w in zip(hk.value_histograms16(values, rotate, top), want, strict=True):
                    np.testing.assert_array_equal(got, w)
                for got, w in zip(hk.value_histograms(wide, rotate, mask32, 4, top), want32,
                                  strict=True):
                    np.testing.assert_array_equal(got, w)


@settings(max_examples=examples(40))
@given(
    alphabet=st.sampled_from([2, 16, 256, 4096]),
    sparse=st.booleans(),
    count=st.sampled_from([1, 7, 300, FOUR_STREAMS + 5]),
    seed=st.integers(0, 2**32 - 1),
)
def test_coded_size_bounds_the_encoded_size(alphabet: int, sparse: bool, count: int, seed: int):
    """coded_size: the codebook exactly (both formats), the streams to within their padding."""
    rng = np.random.default_rng(seed)
    support = rng.choice(alphabet, min(3, alphabet) if sparse else alphabet, replace=False)
    symbols = rng.choice(support, count).astype(np.uint16)
    book, bits = encode(symbols, alphabet)
    actual = len(book) + len(bits)
    estimate = huff.coded_size(np.bincount(symbols, minlength=alphabet))
    nstreams = 1 if count < FOUR_STREAMS else 4
    assert actual <= estimate < actual + 8 * nstreams


def test_fast_table_entries_follow_the_documented_layout():
    from sparsecodecs.codecs import _huffman_kernels as hk

    # Code 0 -> "0", 1 -> "10", 2 -> "11"; a 4-bit table (build_decoder's docstring).
    table, width, *_ = hk.build_decoder(np.array([1, 2, 2], np.uint8), 4)
    assert width == 4

    def entry(prefix: int) -> tuple[int, int, int, int, int]:
        x = int(table[prefix])
        return x & 63, (x >> 8) & 0xFF, (x >> 16) & 0xFFFF, (x >> 32) & 0xFFFF, x >> 62

    # (bits used, first code's length, first symbol, second symbol, count)
    assert entry(0b0000) == (2, 1, 0, 0, 2)  # "0" "0"
    assert entry(0b0100) == (3, 1, 0, 1, 2)  # "0" "10"
    assert entry(0b1000) == (3, 2, 1, 0, 2)  # "10" "0"
    assert entry(0b1011) == (4, 2, 1, 2, 2)  # "10" "11"
    assert entry(0b0111) == (3, 1, 0, 2, 2)  # "0" "11"
    narrow, _, *_ = hk.build_decoder(np.array([1, 2, 2], np.uint8), 2)
    # "0" "0"; "0" and a second code not within the 2 bits; "10"; "11"
    assert [int(x) >> 62 for x in narrow] == [2, 1, 1, 1]


@settings(max_examples=examples(60))
@given(lengths=codes(), width=st.integers(1, 14), lead=st.integers(0, 3))
def test_fast_table_matches_a_prefix_by_prefix_reading(lengths: np.ndarray, width: int,
                                                       lead: int):
    """Every entry of the fast table against reading its prefix code by code: the canonical
    codes assigned from scratch, the first code of at most ``width`` bits that starts the
    prefix, then a second one within the bits left. Complete and incomplete codes, long
    codes, leading symbols with no code (the table is built over the used span)."""
    from sparsecodecs.codecs import _huffman_kernels as hk

    lengths = np.concatenate([np.zeros(lead, np.uint8), lengths.astype(np.uint8)])
    table, w, *_ = hk.build_decoder(lengths, width)
    assert w == min(width, 2 * int(lengths.max()))
    code_of: dict[tuple[int, int], int] = {}  # (length, code) -> symbol
    code = 0
    previous = 0
    for length, symbol in sorted((int(n), s) for s, n in enumerate(lengths) if n):
        code <<= length - previous
        code_of[length, code] = symbol
        code, previous = code + 1, length

    def first_code(bits: int, nbits: int) -> tuple[int, int] | None:
        for length in range(1, nbits + 1):
            symbol = code_of.get((length, bits >> (nbits - length)))
            if symbol is not None:
                return length, symbol
        return None

    for prefix in range(1 << w):
        x = int(table[prefix])
        got = (x & 63, x >> 62, (x >> 8) & 0xFF, (x >> 16) & 0xFFFF, (x >> 32) & 0xFFFF)
        first = first_code(prefix, w)
        if first is None:
            assert x == 0, prefix
            continue
        a, s1 = first
        second = first_code(prefix & ((1 << (w - a)) - 1), w - a)
        if second is None:
            assert got == (a, 1, a, s1, 0), prefix
        else:
            assert got == (a + second[0], 2, a, s1, second[1]), prefix


def test_fast_table_widens_for_long_average_codes():
    """~7-bit average codes (int8 values) get a 14-bit fast table, so that a look-up can still
    decode two symbols, if the alphabet is of bytes and the symbols many; short codes and
    ~8-bit ones keep the 12-bit one; decoding agrees either way."""
    from sparsecodecs.codecs._huffman import FAST_BITS, MAX_FAST_BITS
    from sparsecodecs.codecs._huffman_kernels import decode_coded_width

    def width(lengths: np.ndarray, count: int = 1 << 40) -> int:
        return decode_coded_width(lengths, count, FAST_BITS, MAX_FAST_BITS)

    assert width(np.full(128, 7, np.uint8)) == MAX_FAST_BITS == 14
    # ... for byte alphabets only, with at least 64 symbols to decode an entry of the table
    assert width(np.full(128, 7, np.uint8), 64 << 14) == 14
    assert width(np.full(128, 7, np.uint8), (64 << 14) - 1) == FAST_BITS
    seven = np.zeros(512, np.uint8)
    seven[:128] = 7  # the same code, in a 512-symbol alphabet: a table of uint64 entries
    assert width(seven) == FAST_BITS
    assert width(np.array([1, 2, 3, 3], np.uint8)) == FAST_BITS == 12
    assert width(np.full(64, 6, np.uint8)) == 12
    # ~8-bit codes: two do not fit 14 bits, one look-up decodes one symbol anyway: the narrow
    # table, which stays in L1.
    assert width(np.full(256, 8, np.uint8)) == FAST_BITS
    assert width(np.array([7] * 2 + [8] * 252 + [9] * 4, np.uint8)) == FAST_BITS
    # Half the values one short code, the rest thousands of 12-15-bit codes (a value stage of
    # 5,000 distinct float16 values, half of them zero): a third of the codes would be longer
    # than 12 bits, so the table widens to keep them on the fast path.
    bimodal = np.array([2, 2] + [12] * 667 + [13] * 2137 + [14] * 83 + [15] * 2334, np.uint8)
    assert width(bimodal) == MAX_FAST_BITS
    # About one entry per 8 symbols (100 symbols, 100 // 8 = 12, a table of its bit length,
    # 4), but not so narrow that long codes cost more than entries: 7-bit codes all longer
    # than 4 bits take a table of 7, 128 entries for 100 symbols. 12 symbols of a short code
    # keep the narrow table.
    assert width(np.full(128, 7, np.uint8), 100) == 7
    assert width(np.array([1, 2, 3, 3], np.uint8), 12) == 3
    assert width(np.array([1, 2, 3, 3], np.uint8), 100) == 4
    # 63,615 symbols whose codes are half 14 bits (an index into 10,924 distinct float32
    # values, Silero VAD's STFT basis): the cap of 8,191 entries (13 bits) left half the codes
    # on the long path (its frame, with the lengths counted once too: 761-793 -> 302-317 us
    # a decode, docs/benchmarks.md, issue 13's thirty-first pass). The lengths of its code:
    stft = np.repeat(np.arange(8, 15, dtype=np.uint8), [1, 8, 31, 124, 504, 2304, 7952])
    assert width(stft, 63_615) == 14
    rng = np.random.default_rng(0)
    for scale in (3.0, 30.0):  # short codes; ~7-bit codes with a tail of 15-bit ones
        v = np.clip(np.rint(rng.standard_t(3, 50_000) * scale), -127, 127).astype(np.int8)
        frame = sc.get_codec("huffman").encode(v)
        assert np.array_equal(sc.decode(frame), v)


def _coded_width_reference(lengths: np.ndarray, count: int, min_fast: int, max_fast: int) -> int:
    """decode_coded_width's rule, symbol by symbol in Python (its docstring's order)."""
    mass = [0.0] * 17
    mean = 0.0
    for ln in lengths.tolist():
        if 0 < ln <= 16:
            mean += ln * 2.0**-ln
            mass[ln] += 2.0**-ln
    w, pair = min_fast, math.ceil(2 * mean)
    longer = sum(mass[min_fast + 1:])
    while w < max_fast and longer > 1 / 64:
        w += 1
        longer -= mass[w]
    if len(lengths) <= 256 and w < pair <= max_fast and count // 64 >= 1 << pair:
        w = pair
    bits = (count // 8).bit_length()
    if w > bits:  # of bits .. w, the narrowest that costs least: entries, and 4 a long code
        def cost(v: int) -> float:
            return 2.0**v + 4.0 * float(count) * sum(mass[v + 1:])
        w = min(range(bits, w + 1), key=lambda v: (cost(v), v))
    return max(1, w)


@settings(max_examples=examples(200))
@given(
    counts=st.lists(st.builds(lambda e, m: m << e, st.integers(0, 20), st.integers(0, 3)),
                    min_size=2, max_size=3000),
    limit=st.integers(10, 16),
    past=st.integers(0, 3),
    # counts small enough that the cap of about one entry per 8 symbols binds, and any
    count=st.one_of(st.integers(0, 1 << 17), st.integers(0, 1 << 40)),
    fast=st.tuples(st.integers(1, 14), st.integers(0, 4)),
)
# a float16 tensor's 12-bit top fields (63,615 of them, codes of 7-13 bits: 3.3% of the mass
# past 12 bits, so the table widens to 13)
@example(counts=[1 << (20 - ln) for ln, k in ((7, 1), (8, 32), (9, 204), (10, 280), (11, 251),
                                              (12, 164), (13, 268)) for _ in range(k)],
         limit=15, past=0, count=63615, fast=(12, 2))
def test_fast_table_width_is_the_rule_symbol_by_symbol(counts: list[int], limit: int, past: int,
                                                        count: int, fast: tuple[int, int]):
    """The compiled width (the codes counted by length, then their mass) against the rule
    summed symbol by symbol, on the lengths of Huffman codes of counts spread over six orders
    of magnitude (so that the mass past a width falls on either side of 1/64), with ``past``
    lengths above 16 appended (not codes: left out by both)."""
    from sparsecodecs.codecs._huffman_kernels import decode_coded_width

    c = np.array(counts, np.int64)
    if np.count_nonzero(c) > 1 << limit:
        return
    lengths = np.append(huff.huffman_lengths(c, limit), np.full(past, 17, np.uint8))
    min_fast, max_fast = fast[0], min(14, fast[0] + fast[1])
    assert decode_coded_width(lengths, count, min_fast, max_fast) == _coded_width_reference(
        lengths, count, min_fast, max_fast)


@settings(max_examples=examples(60))
@given(
    counts=st.lists(st.integers(0, 1 << 20), min_size=1, max_size=300),
    limit=st.integers(8, 15),
)
def test_huffman_cost_equals_the_lengths_the_encoder_assigns(counts: list[int], limit: int):
    """The planner's one-call cost: the same bits as the (stably sorted) lengths the encoder
    assigns, ties included, and the same refusal when the limit cannot cover the symbols."""

    c = np.array(counts, np.int64)
    bits, total, used, first, last = _huffman_cost(c, limit)
    assert (total, used) == (c.sum(), np.count_nonzero(c))
    if used:
        assert (first, last) == (np.flatnonzero(c)[0], np.flatnonzero(c)[-1])
    if used > 1 << limit:
        assert bits == -1
        return
    assert bits == huff.coded_bits(c, huff.huffman_lengths(c, limit))


@pytest.mark.parametrize("used", [65, 300, 1500])
@pytest.mark.parametrize("spread", [0.5, 4.0, 5.0])
def test_huffman_cost_of_many_small_counts(used: int, spread: float):
    """Many symbols whose counts are small against their number (a histogram's, sorted by
    counting them) and just too large for that (by bytes): the same bits as the lengths the
    encoder assigns."""
    rng = np.random.default_rng(used)
    top = int(spread * used) + 1024 * (spread > 4.5)  # past 4 used + 1024: sorted by bytes
    c = rng.integers(1, top + 1, used).astype(np.int64)
    c[rng.integers(0, used)] = top
    bits = _huffman_cost(c, 15)[0]
    assert bits == huff.coded_bits(c, huff.huffman_lengths(c, 15))


@pytest.mark.parametrize("size", [1, 7, 8, 9, 63, 64, 65, 4096])
@pytest.mark.parametrize("density", [0.0, 0.01, 0.1, 0.5])
def test_huffman_cost_of_sparse_counts(size: int, density: float):
    """Sparse histograms (runs of eight zero counts are skipped at once): the same total,
    symbols, first and last symbol, and bits as counted one by one, at and around the
    eight-count boundaries; a negative count anywhere is refused."""

    rng = np.random.default_rng(size * 100 + int(density * 100))
    c = np.where(rng.random(size) < density, rng.integers(1, 1 << 20, size), 0).astype(np.int64)
    if density and not c.any():
        c[rng.integers(0, size)] = 3
    bits, total, used, first, last = _huffman_cost(c, 15)
    nz = np.flatnonzero(c)
    assert (total, used) == (c.sum(), nz.size)
    if nz.size:
        assert (first, last) == (nz[0], nz[-1])
        lengths_bits = huff.coded_bits(c, huff.huffman_lengths(c, 15)) if nz.size > 1 else c.sum()
        assert bits == lengths_bits
    for at in {0, size // 2, size - 1}:
        bad = c.copy()
        bad[at] = -1
        with pytest.raises(ValueError, match="non-negative"):
            _huffman_cost(bad, 15)



def _huffman_cost(counts: np.ndarray, limit: int) -> tuple[int, int, int, int, int]:
    """huffman_costs' answer for one histogram, as a tuple."""
    from sparsecodecs.codecs import _huffman_kernels as hk

    bits, total, used, first, last = hk.huffman_costs(counts.reshape(1, -1), 1, limit)[0].tolist()
    return bits, total, used, first, last


def _coded_bytes_reference(bits: int, total: int, used: int, first: int, last: int) -> int:
    """What the compiled coded_bytes computes, stated plainly: the codebook as
    _serialize_lengths writes it (the smaller format), each stream's length but the last's (a
    varint as long as all the streams' words need), each stream padded to whole 64-bit words;
    UNCODABLE where no code exists."""
    if bits < 0:
        return huff.UNCODABLE
    nstreams = 4 if total >= 1 << 14 else 1
    first, span = (first, last + 1 - first) if used else (0, 0)
    words = (bits + 63) // 64 + nstreams - 1
    book = min(1 + len(leb128(first)) + len(leb128(span)) + (span + 1) // 2,
               1 + len(leb128(used)) + 3 * used)
    return book + (nstreams - 1) * len(leb128(words)) + 8 * words


@pytest.mark.parametrize("total", [0, 1, 5, (1 << 14) - 1, 1 << 14, 10**7])
def test_coded_sizes_are_the_plain_formula(total: int) -> None:
    """Histograms of every shape the codebook formats care about (one symbol, a few spread
    wide: the sparse format, many together: the dense one), totals on both sides of the four
    streams' threshold, and a histogram no 2-bit code covers."""

    rng = np.random.default_rng(total)
    rows = []
    for used in (0, 1, 2, 3, 40, 700):
        c = np.zeros(4096, np.int64)
        if used:
            at = rng.choice(4096, used, replace=False) if used < 40 else np.arange(100, 100 + used)
            c[at] = 1
            c[at[0]] += max(0, total - used)
        rows.append(c)
    counts = np.stack(rows)
    for limit in (2, 15):
        want = [_coded_bytes_reference(*_huffman_cost(c, limit)) for c in counts]
        assert huff.coded_sizes(counts, limit) == want
        assert [huff.coded_size(c, limit) for c in counts] == want
    assert huff.UNCODABLE in huff.coded_sizes(counts, 2)


@settings(max_examples=examples(40))
@given(
    rows=st.integers(1, 4),
    levels=st.integers(1, 4),
    width=st.integers(1, 64),
    limit=st.integers(2, 15),
    seed=st.integers(0, 2**32 - 1),
)
def test_huffman_costs_are_each_level_and_rows_huffman_cost(
    rows: int, levels: int, width: int, limit: int, seed: int
):
    """The planner's batched cost: row by row, the histogram and its pair-summed coarser
    levels, each answered as huffman_cost answers it (uncodable levels included: small
    limits); bad shapes and negative counts are refused."""
    from sparsecodecs.codecs import _huffman_kernels as hk

    rng = np.random.default_rng(seed)
    n = width << (levels - 1)
    counts = rng.integers(0, 50, (rows, n)) * (rng.random((rows, n)) < 0.7)
    each = _levels(counts, levels)
    assert hk.huffman_costs(counts, levels, limit).tolist() == [
        list(_huffman_cost(c, limit)) for c in each]
    assert huff.coded_sizes(counts, limit, levels) == [huff.coded_size(c, limit) for c in each]
    assert huff.coded_sizes(counts, limit, levels) == [
        _coded_bytes_reference(*_huffman_cost(c, limit)) for c in each]
    with pytest.raises(ValueError, match="rows of a length"):
        hk.huffman_costs(np.zeros((1, 6), np.int64), 3, limit)
    with pytest.raises(ValueError, match="non-negative"):
        hk.huffman_costs(-np.ones((rows, n), np.int64), levels, limit)
    empty = hk.huffman_costs(np.zeros((rows, 0), np.int64), levels, limit)
    assert empty.tolist() == [[0] * 5] * (rows * levels)  # no symbols, at every level


@settings(max_examples=examples(60), deadline=None)
@given(seed=st.integers(0, 2**32 - 1), used=st.integers(0, 40), levels=st.integers(2, 4),
       n=st.sampled_from([6, 12, 24, 4096]), limit=st.integers(2, 15))
def test_costs_of_levels_from_few_used_bins(seed: int, used: int, levels: int, n: int,
                                            limit: int):
    """Histograms with few bins in use (a small tensor's top fields: the coarser levels are
    found from the used bins alone): every level's cost is huffman_cost of the level summed
    densely, with and without ``extra``; bins at both ends, and levels whose length is not a
    multiple of eight (``n``: the coarsest level's), included."""
    from sparsecodecs.codecs import _huffman_kernels as hk

    rng = np.random.default_rng(seed)
    n <<= levels - 1
    counts = np.zeros(n, np.int64)
    at = rng.choice(n, min(used, n), replace=False)
    counts[at] = rng.integers(1, 3000, at.size)
    if used:
        counts[[0, n - 1]] = rng.integers(1, 3000, 2)
    each = _levels(counts.reshape(1, -1), levels)
    assert hk.huffman_costs(counts.reshape(1, -1), levels, limit).tolist() == [
        list(_huffman_cost(c, limit)) for c in each]
    extra = [int(e) for e in rng.integers(0, 200, levels)]
    pruned = huff.coded_sizes(counts.reshape(1, -1), limit, levels=levels, extra=extra)
    full = [_coded_bytes_reference(*_huffman_cost(c, limit)) for c in each]
    totals = [(s + e, lv) for lv, (s, e) in enumerate(zip(full, extra, strict=True))
              if s < huff.UNCODABLE]
    if totals:
        best = min(totals)[1]
        assert pruned[best] == full[best]
        assert min((s + e, lv) for lv, (s, e) in enumerate(zip(pruned, extra, strict=True))
                   if s < huff.UNCODABLE) == min(totals)
    for f, p in zip(full, pruned, strict=True):
        assert p in (f, huff.UNCODABLE)
    with pytest.raises(ValueError, match="non-negative"):
        bad = counts.copy()
        bad[n // 2] = -1
        huff.coded_sizes(bad.reshape(1, -1), limit, levels=levels, extra=extra)


def _levels(counts: np.ndarray, levels: int) -> list[np.ndarray]:
    """Each row of ``counts`` and its ``levels - 1`` pair-summed coarser histograms."""
    out = []
    for row in counts:
        level = row.astype(np.int64)
        for lv in range(levels):
            if lv:
                level = level[0::2] + level[1::2]
            out.append(level)
    return out


# -- the one-call compiled decoder against the checked Python reader ---------------------------


def decode_both(book: bytes, data: bytes, count: int, alphabet: int):
    """(result of decode_symbols, result of the Python-checked reader): arrays or error texts."""
    results = []
    for fn in (huff.decode_symbols, huff._decode_checked):
        try:
            results.append(fn(reader(book, data), "s", count, alphabet, np.uint16))
        except FrameLayoutError as exc:
            results.append(str(exc))
    return results


@st.composite
def mangled_streams(draw: st.DrawFn) -> tuple[bytes, bytes, int, int]:
    """A real coded stream with a few bytes of its codebook or data overwritten or cut."""
    alphabet = draw(st.sampled_from([2, 7, 256, 300, 4096]))
    count = draw(st.sampled_from([0, 1, 5, 200, FOUR_STREAMS, FOUR_STREAMS + 3]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    book, bits = encode(skewed(rng, alphabet, count).astype(np.uint16), alphabet)
    parts = [bytearray(book), bytearray(bits)]
    for _ in range(draw(st.integers(0, 3))):
        part = parts[draw(st.integers(0, 1))]
        if part:
            at = draw(st.integers(0, len(part) - 1))
            if draw(st.booleans()):
                part[at] = draw(st.integers(0, 255))
            else:
                del part[at:]
    return bytes(parts[0]), bytes(parts[1]), count + draw(st.sampled_from([0, 0, 1, -1])), alphabet


@given(mangled_streams())
@settings(max_examples=examples(300), deadline=None)
def test_compiled_decoder_agrees_with_the_checked_reader(case):
    # The compiled path decides alone whether a stream is good; only on refusal does the
    # Python reader run. Both must accept the same streams with the same symbols.
    book, data, count, alphabet = case
    if count < 0:
        return
    fast, checked = decode_both(book, data, count, alphabet)
    assert not (isinstance(fast, str) and "compiled decoder refused" in fast), fast
    if isinstance(checked, str):
        assert fast == checked  # the error comes from the checked reader, word for word
    else:
        assert not isinstance(fast, str), fast
        assert fast.tobytes() == checked.tobytes()


@pytest.mark.parametrize("delta", [-1, 1])
@pytest.mark.parametrize("count", [1, FOUR_STREAMS - 1, FOUR_STREAMS])
def test_compiled_decoder_refuses_a_count_the_streams_do_not_hold(count: int, delta: int):
    # One symbol more or fewer than coded: across the 4-stream boundary the stream count is
    # wrong, elsewhere the streams end early or hold one code too many (padding bits decode).
    book, data = encode(skewed(np.random.default_rng(count), 256, count).astype(np.uint16), 256)
    fast, checked = decode_both(book, data, count + delta, 256)
    assert isinstance(checked, str) or not isinstance(fast, str)
    assert (fast == checked) if isinstance(checked, str) else fast.tobytes() == checked.tobytes()
    if (count + delta >= FOUR_STREAMS) != (count >= FOUR_STREAMS):
        assert f"symbols are {4 if count + delta >= FOUR_STREAMS else 1} streams" in checked


# -- the block-wise join of 16-bit fields ------------------------------------------------------


def join_reference(syms: np.ndarray, low: bytes, lb: int, rotate: int) -> np.ndarray:
    """Value i: its top field ``syms[i]``, then bits ``i*lb .. i*lb+lb-1`` of the MSB-first
    bit string ``low``, rotated right by ``rotate`` within 16 bits."""
    bits = np.unpackbits(np.frombuffer(low, np.uint8))[: syms.size * lb].reshape(-1, lb)
    fields = (bits.astype(np.int64) << np.arange(lb - 1, -1, -1)).sum(axis=1)
    v = (syms.astype(np.int64) << lb) | fields
    return (((v >> rotate) | (v << (16 - rotate))) & 0xFFFF).astype(np.uint16)


@pytest.mark.parametrize("rotate", [0, 1])
@pytest.mark.parametrize("lb", range(1, 9))
@pytest.mark.parametrize("count", [0, 1, 7, 8, 9, 63, 64, 65, 1000, 4099])
def test_join_fields16_matches_the_bit_string(lb: int, rotate: int, count: int):
    from sparsecodecs.codecs import _huffman_kernels as hk

    rng = np.random.default_rng(lb * 1000 + count)
    syms = rng.integers(0, 1 << (16 - lb), count).astype(np.uint16)
    low = rng.integers(0, 256, (count * lb + 63) // 64 * 8).astype(np.uint8)  # whole words
    want = join_reference(syms, low.tobytes(), lb, rotate)
    out = np.full(count + 2, 0xABCD, np.uint16)  # guard values after the output
    hk.join_fields16(syms, low, rotate, 16 - lb, out[:count])
    assert out[:count].tobytes() == want.tobytes()
    assert out[count:].tolist() == [0xABCD, 0xABCD]
    hk.join_fields16(syms, low, rotate, 16 - lb, syms)  # in place, as decode_fields calls it
    assert syms.tobytes() == want.tobytes()


def test_join_fields16_refuses_strided_arrays():
    # The vector step addresses items from the data pointer: a strided view would be read and
    # written wrongly, so the C layer refuses it (numpy's buffer export raises) before any work.
    from sparsecodecs.codecs import _huffman_kernels as hk

    syms = np.zeros(64, np.uint16)
    low = np.zeros(64, np.uint8)
    out = np.full(128, 7, np.uint16)
    for args in ((syms, low, out[::2]), (np.zeros(128, np.uint16)[::2], low, out[:64]),
                 (syms, np.zeros(128, np.uint8)[::2], out[:64])):
        with pytest.raises((BufferError, ValueError), match="contiguous"):
            hk.join_fields16(args[0], args[1], 1, 11, args[2])
    assert (out == 7).all()  # nothing written


# -- SIMD paths against their scalar twins -----------------------------------------------------


def simd_levels() -> list[str]:
    """Every SIMD level this CPU runs, scalar first."""
    from sparsecodecs import kernels

    names = list(kernels.LEVELS)
    return names[: names.index(kernels.cpu_simd()) + 1]


_GUARDS: list[object] = []  # the mappings stay alive (and their guard pages protected)


def _before_guard_page(n: int) -> np.ndarray:
    """``n`` writable bytes ending exactly where an inaccessible page starts."""
    import ctypes
    import mmap

    page = mmap.PAGESIZE
    size = (n + page - 1) // page * page + page
    m = mmap.mmap(-1, size)
    buf = ctypes.c_char.from_buffer(m)
    addr = ctypes.addressof(buf)
    del buf
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    if libc.mprotect(addr + size - page, page, 0) != 0:  # PROT_NONE
        pytest.skip("mprotect is not available")
    _GUARDS.append(m)
    return np.frombuffer(m, np.uint8, n, size - page - n)


def guarded(data: bytes) -> np.ndarray:
    """``data`` as a read-only uint8 array that ends exactly where an inaccessible page starts:
    a kernel reading one byte past it crashes instead of passing unseen."""
    arr = _before_guard_page(len(data))
    arr[:] = np.frombuffer(data, np.uint8)
    arr.flags.writeable = False
    return arr


def join_fields_oracle(syms: np.ndarray, low: bytes, lb: int, rotate: int,
                       width: int = 16, value_width: int | None = None) -> np.ndarray:
    """:func:`join_fields` (the general bit reader) on the same fields, as 64-bit words
    (values of ``value_width`` bits, shifted left to fill ``width``)."""
    from sparsecodecs.codecs import _huffman_kernels as hk

    vw = width if value_width is None else value_width
    words = np.frombuffer(low + bytes(-len(low) % 8), ">u8").astype(np.uint64)
    out = np.empty(syms.size, f"u{width // 8}")
    hk.join_fields(syms, words, rotate, np.uint64((1 << vw) - 1), vw, vw - lb, out)
    return out << out.dtype.type(width - vw)


def check_join_twins(width: int, lb: int, rotate: int, n_max: int, edge: int,
                     value_width: int | None = None) -> None:
    """join_fields16/32 at every SIMD level this CPU has writes what its scalar twin writes and
    what join_fields writes, for every count 0..n_max on random fields and the first and last
    ``edge`` counts on adversarial ones (all ones, all zeros, alternating bits), with the
    packed fields ending at an inaccessible page (a vector load one byte too far would crash);
    16-bit joins also in place; 32-bit joins of values of ``value_width`` bits too."""
    from sparsecodecs import kernels
    from sparsecodecs.codecs import _huffman_kernels as hk

    vw = width if value_width is None else value_width
    if width == 16:
        join = hk.join_fields16
    else:
        def join(*args: object) -> None:
            hk.join_fields32(*args, 1, vw)
    rng = np.random.default_rng(lb * 10 + rotate + 100 * vw)
    top = vw - lb
    nlow = n_max * width // 8
    patterns = {
        "random": (rng.integers(0, 1 << top, n_max), rng.integers(0, 256, nlow)),
        "ones": (np.full(n_max, (1 << top) - 1), np.full(nlow, 0xFF)),
        "zeros": (np.zeros(n_max, np.int64), np.zeros(nlow, np.int64)),
        "alternating": (np.resize([0, (1 << top) - 1], n_max), np.resize([0xAA, 0x55], nlow)),
    }
    levels = simd_levels()
    assert levels[0] == "scalar"
    sentinel = 0x5A5A5A5A & ((1 << width) - 1)
    for name, (top_fields, low_bytes) in patterns.items():
        syms_all = top_fields.astype(np.uint16)
        low_all = low_bytes.astype(np.uint8).tobytes()
        counts = (range(n_max + 1) if name == "random"
                  else [*range(edge), *range(n_max - edge, n_max + 1)])
        for count in counts:
            low = low_all[: (count * lb + 7) // 8]  # exactly the fields' bytes
            guard = guarded(low)
            syms = syms_all[:count]
            results = []
            for level in levels:
                with kernels.use_simd(level):
                    out = np.full(count + 1, sentinel, f"u{width // 8}")
                    join(syms, guard, rotate, top, out[:count])
                    assert out[count] == sentinel, (name, count, level)
                    if width == 16:
                        inplace = syms.copy()
                        join(inplace, guard, rotate, top, inplace)
                        assert inplace.tobytes() == out[:count].tobytes(), (name, count, level)
                results.append(out[:count].tobytes())
            assert all(r == results[0] for r in results), (name, count)
            if count in (0, 1, 7, 8, 9, 15, 16, 17, 33, 1000, n_max) or name != "random":
                want = join_fields_oracle(syms, low, lb, rotate, width, vw)
                assert results[0] == want.tobytes()
        _GUARDS.clear()


@pytest.mark.parametrize("rotate", [0, 1])
@pytest.mark.parametrize("lb", range(1, 9))
def test_join_fields16_simd_paths_write_the_scalar_twins_bytes(lb: int, rotate: int):
    """AVX2: 16 values a step, SSSE3: 8, then a scalar tail."""
    check_join_twins(16, lb, rotate, 4099, 70)


@pytest.mark.parametrize("rotate", [0, 1, 31])
@pytest.mark.parametrize("lb", [16, 19, 20, 21, 23, 24])
def test_join_fields32_simd_paths_write_the_scalar_twins_bytes(lb: int, rotate: int):
    """AVX2: 8 values a step, then a scalar tail."""
    check_join_twins(32, lb, rotate, 2051, 40)


@pytest.mark.parametrize("rotate", [0, 1, -1])
@pytest.mark.parametrize(("value_width", "lb"),
                         [(16, 7), (19, 7), (19, 10), (20, 12), (24, 16), (25, 17), (31, 22)])
def test_join_fields32_of_narrower_values_write_the_scalar_twins_bytes(
        value_width: int, lb: int, rotate: int):
    """Values of fewer than 32 bits (a run of low fields shifted past the zeros its values end
    in: 16 bits at bfloat16 precision, 19 at float16), rotated within their width and shifted
    back: the AVX2 step and the scalar twin, against the general reader."""
    check_join_twins(32, lb, rotate % value_width, 1030, 40, value_width)


def test_join_fields32_refuses_short_or_strided_input():
    from sparsecodecs.codecs import _huffman_kernels as hk

    syms = np.zeros(64, np.uint16)
    out = np.full(64, 7, np.uint32)
    with pytest.raises(ValueError, match="too small"):
        hk.join_fields32(syms, np.zeros(64 * 21 // 8 - 1, np.uint8), 0, 11, out)
    with pytest.raises((BufferError, ValueError), match="contiguous"):
        hk.join_fields32(syms, np.zeros(400, np.uint8), 0, 11, np.zeros(128, np.uint32)[::2])
    assert (out == 7).all()


@settings(max_examples=examples(60), deadline=None)
@given(mangled_streams(), st.booleans())
def test_decoder_simd_build_matches_its_scalar_twin(case, wide: bool):
    """The decoder compiled for BMI2 (level avx2) and the plain one (its scalar twin) return
    the same code and write the same symbols, on good and on mangled streams, into 8- and
    16-bit outputs."""
    from sparsecodecs import kernels
    from sparsecodecs.codecs import _huffman as huff_mod
    from sparsecodecs.codecs import _huffman_kernels as hk

    book, data, count, alphabet = case
    if count < 0 or count > 8 * len(data):
        return
    dtype = np.uint16 if wide or alphabet > 256 else np.uint8
    results = []
    for level in simd_levels():
        with kernels.use_simd(level):
            out = np.zeros(count, dtype)
            rc = hk.decode_coded(np.frombuffer(book, np.uint8), np.frombuffer(data, np.uint8),
                                 count, alphabet, huff_mod._nstreams(count), huff_mod.MAX_LENGTH,
                                 huff_mod.FAST_BITS, huff_mod.MAX_FAST_BITS, out)
            results.append((rc, out.tobytes() if rc == 0 else b""))
    assert all(r == results[0] for r in results)


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32, np.uint64])
def test_value_kernels_read_unaligned_arrays(dtype: type):
    """A user's array may start at any byte (numcodecs hands over unaligned buffers): the
    value kernels read it as they read an aligned copy (the conformance suite found the 16-bit
    histogram refusing one)."""
    from sparsecodecs.codecs import _huffman_kernels as hk

    size = np.dtype(dtype).itemsize
    raw = np.random.default_rng(size).integers(0, 256, size * 1001 + 1).astype(np.uint8)
    v = raw[1:].view(dtype)
    assert not v.flags.aligned
    a = v.copy()
    width = 8 * size
    mask = np.uint64((1 << width) - 1)
    if size == 2:
        for x, y in zip(hk.value_histograms16(v, 1, 12), hk.value_histograms16(a, 1, 12),
                        strict=True):
            assert (x == y).all()
        # the 16-bit histogram reads uint16 in place when aligned, any address otherwise
        assert (hk.histogram(v, 1 << 16) == hk.histogram(a, 1 << 16)).all()
        table = np.zeros((1 << 16) + 128, np.int64)
        with pytest.raises(ValueError, match="2-byte aligned"):  # its caller aligns them
            hk.histogram_blocks16(v, table[: 1 << 16], table[1 << 16 :].view(np.uint8))
    for x, y in zip(hk.value_histograms(v, 1, mask, size, 12),
                    hk.value_histograms(a, 1, mask, size, 12), strict=True):
        assert (x == y).all()
    tops = [hk.top_histogram(x, 1, mask, width, 12) for x in (v, a)]
    assert (tops[0] == tops[1]).all()
    planes = [np.empty((size, v.size), np.uint8) for _ in range(2)]
    hk.split_planes(v, 1, mask, planes[0])
    hk.split_planes(a, 1, mask, planes[1])
    assert (planes[0] == planes[1]).all()
    fields = [(np.empty(v.size, np.uint16), np.empty((v.size * (width - 12) + 63) // 64 * 8,
                                                     np.uint8)) for _ in range(2)]
    hk.split_fields(v, 1, mask, width, 12, *fields[0])
    hk.split_fields(a, 1, mask, width, 12, *fields[1])
    assert all((x == y).all() for x, y in zip(fields[0], fields[1], strict=True))


@pytest.mark.parametrize("size", [1, 2, 4, 8])
def test_join_planes_inverts_split_planes_at_every_level_and_thread_count(size: int):
    """split_planes writes each rotated value's bytes, most significant first (against numpy);
    join_planes (the AVX2 build, whose 2- and 4-plane bodies the compiler vectorizes, and
    its plain twin; one thread and several) rebuilds exactly the values split_planes split, at
    every rotation, from the rows of one array or from separate arrays, and refuses a plane
    shorter than the output."""
    from sparsecodecs import kernels
    from sparsecodecs.codecs import _huffman_kernels as hk

    width = 8 * size
    rng = np.random.default_rng(size)
    n = (1 << 20) + 37 if size in (2, 4) else 4099
    values = rng.integers(0, 1 << 63, n, dtype=np.uint64).astype(f"u{size}")
    values[:64] = np.array([0, (1 << width) - 1] * 32, np.uint64).astype(f"u{size}")
    mask = np.uint64((1 << width) - 1)
    for rotate in sorted({0, 1, width - 1}):
        planes = np.empty((size, n), np.uint8)
        hk.split_planes(values, rotate, mask, planes)
        rotated = values.astype(np.uint64)
        if rotate:
            r = np.uint64(rotate)
            rotated = ((rotated << r) | (rotated >> (np.uint64(width) - r))) & mask
        want = [(rotated >> np.uint64(8 * (size - 1 - p))).astype(np.uint8) for p in range(size)]
        assert all((row == w).all() for row, w in zip(planes, want, strict=True)), rotate
        separate = [row.copy() for row in planes]
        for level in simd_levels():
            with kernels.use_simd(level):
                for source, threads in ((planes, 1), (separate, 1), (separate, 3)):
                    out = np.zeros(n + 1, f"u{size}")
                    hk.join_planes(source, rotate, mask, out[:n], threads)
                    assert out[:n].tobytes() == values.tobytes(), (level, rotate, threads)
                    assert out[n] == 0
    with pytest.raises(ValueError, match="shorter"):
        hk.join_planes([np.zeros(n, np.uint8)] * (size - 1) + [np.zeros(n - 1, np.uint8)], 0,
                       mask, np.zeros(n, f"u{size}"))


@settings(max_examples=examples(100))
@given(
    symbols=st.lists(st.integers(0, 599), max_size=400),
    alphabet_extra=st.integers(0, 70000),
    limit=st.integers(8, 15),
    dtype=st.sampled_from([np.uint8, np.uint16]),
)
def test_encode_coded_is_its_pieces(symbols: list[int], alphabet_extra: int, limit: int, dtype):
    """The one-call encoder writes the bytes the composed reference writes (huffman_lengths,
    canonical codes, the codebook writer, the stream encoder), dense and sparse codebooks
    alike; the same refusal past 2**limit symbols."""
    syms = np.array(symbols, np.int64)
    if dtype is np.uint8:
        syms %= 256
    alphabet = int(syms.max(initial=0)) + 1 + alphabet_extra % (256 if dtype is np.uint8 else 65536)
    alphabet = min(alphabet, 256 if dtype is np.uint8 else 65536)
    syms = syms.astype(dtype)
    if np.unique(syms).size > 1 << limit:
        with pytest.raises(ValueError, match="more symbols"):
            huff.encode_symbols(syms, alphabet, "s", "values", max_length=limit)
        return
    got = huff.encode_symbols(syms, alphabet, "s", "values", max_length=limit)
    want = huff.encode_symbols_reference(syms, alphabet, "s", "values", max_length=limit)
    assert [(x.name, x.role, bytes(memoryview(x.data).cast("B"))) for x in got] == [
        (x.name, x.role, bytes(memoryview(x.data).cast("B"))) for x in want]


@settings(max_examples=examples(100))
@given(
    counts=st.lists(st.integers(0, 1 << 40), min_size=1, max_size=600),
    limit=st.integers(8, 15),
)
def test_encode_coded_lengths_are_huffman_lengths(counts: list[int], limit: int):
    """The code the one-call encoder writes into its codebook, for any counts (up to 2**40,
    several bytes of radix-sort keys): the lengths huffman_lengths assigns, ties in symbol
    order; the same refusal past 2**limit symbols."""
    from sparsecodecs.codecs import _huffman_kernels as hk

    c = np.array(counts, np.int64)
    none = np.zeros(0, np.uint16)
    if np.count_nonzero(c) > 1 << limit:
        with pytest.raises(ValueError, match="more symbols"):
            hk.encode_coded(none, c, limit, 1)
        return
    book, bits = hk.encode_coded(none, c, limit, 1)
    lengths = huff.huffman_lengths(c, limit)
    assert book == huff._serialize_lengths(lengths)  # one stream: no length stored
    assert bits == b""


@pytest.mark.parametrize("used", [65, 300, 1621, 4096])
@pytest.mark.parametrize("top", [1 << 8, 1 << 20, 1 << 40])
def test_many_symbols_cost_and_code(used: int, top: int):
    """Hundreds to thousands of symbols (the compiled sort's radix path, keys of one to six
    bytes): huffman_cost's bits and the encoder's lengths are the reference's."""
    from sparsecodecs.codecs import _huffman_kernels as hk

    rng = np.random.default_rng(used + top)
    c = np.zeros(6000, np.int64)
    c[rng.choice(6000, used, replace=False)] = rng.integers(1, top, used)
    c[rng.integers(0, 6000, 50)] = 7  # ties
    lengths = huff.huffman_lengths(c, 15)
    assert _huffman_cost(c, 15)[0] == huff.coded_bits(c, lengths)
    book, _ = hk.encode_coded(np.zeros(0, np.uint16), c, 15, 1)
    assert book == huff._serialize_lengths(lengths)


@pytest.mark.parametrize("count", [0, 1, 16383, 16384, 16387, 70001])
@pytest.mark.parametrize("limit", [8, 15])
def test_encode_coded_streams_and_long_codes(count: int, limit: int):
    """Four streams from 2**14 symbols, codes up to the limit (a geometric alphabet), lengths
    at the limit after limiting: the reference's bytes."""
    rng = np.random.default_rng(count + limit)
    syms = np.minimum(rng.geometric(0.3, count) - 1, 4095).astype(np.uint16)
    got = huff.encode_symbols(syms, 4096, "s", "values", max_length=limit)
    want = huff.encode_symbols_reference(syms, 4096, "s", "values", max_length=limit)
    assert [bytes(memoryview(x.data).cast("B")) for x in got] == [
        bytes(memoryview(x.data).cast("B")) for x in want]


def test_encode_coded_refuses_bad_input():
    from sparsecodecs.codecs import _huffman_kernels as hk

    syms = np.zeros(4, np.uint8)
    for bad in ([1, -1, 2], [1, 1 << 50, 2]):
        with pytest.raises(ValueError, match="counts must be"):
            hk.encode_coded(syms, np.array(bad, np.int64), 15, 1)
    with pytest.raises(ValueError, match="outside the code table"):
        hk.encode_coded(np.array([0, 3], np.uint8), np.array([1, 1], np.int64), 15, 1)
    with pytest.raises(ValueError, match="nstreams"):
        hk.encode_coded(syms, np.array([4], np.int64), 15, 0)
    with pytest.raises(ValueError, match="2\\*\\*16 counts"):
        hk.encode_coded(syms, np.ones((1 << 16) + 1, np.int64), 15, 1)


def writable_guarded(n: int) -> np.ndarray:
    """``n`` writable bytes (0xEE) ending exactly where an inaccessible page starts: a kernel
    writing one byte past them crashes instead of passing unseen."""
    arr = _before_guard_page(n)
    arr[:] = 0xEE
    return arr


def msb_first_bytes(fields: list[tuple[int, int]]) -> bytes:
    """(value, bits) fields written MSB-first, zero-padded to whole 64-bit words."""
    bits = "".join(format(v, f"0{b}b") if b else "" for v, b in fields)
    bits += "0" * (-len(bits) % 64)
    return int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""


def check_encode_streams(symbols: np.ndarray, lengths: np.ndarray, bounds: np.ndarray) -> None:
    """encode_streams at every SIMD level writes each stream's codes MSB-first, padded to
    whole words, into regions of exactly the room the caller gives, the last one ending at an
    inaccessible page."""
    from sparsecodecs import kernels
    from sparsecodecs.codecs import _huffman_kernels as hk

    codes = hk.canonical_codes(lengths)
    nstreams = bounds.size - 1
    room = (np.diff(bounds) * int(lengths.max()) + 63) // 64 * 8
    offsets = np.zeros(nstreams + 1, np.int64)
    np.cumsum(room, out=offsets[1:])
    want = [msb_first_bytes([(int(codes[s]), int(lengths[s]))
                             for s in symbols[bounds[i] : bounds[i + 1]]])
            for i in range(nstreams)]
    for level in simd_levels():
        with kernels.use_simd(level):
            out = writable_guarded(int(offsets[-1]))
            used = np.full(nstreams, -1, np.int64)
            hk.encode_streams(symbols, codes, lengths, bounds, offsets, out, used)
            for i in range(nstreams):
                assert used[i] == len(want[i]), (level, i)
                got = out[offsets[i] : offsets[i] + used[i]].tobytes()
                assert got == want[i], (level, i)
        _GUARDS.clear()


@settings(max_examples=examples(120), deadline=None)
@given(st.integers(1, 9), st.integers(0, 700), st.integers(2, 4096), st.integers(8, 16),
       st.integers(0, 2**32 - 1))
def test_encode_streams_writes_the_bit_strings_at_every_level(
    nstreams: int, count: int, alphabet: int, limit: int, seed: int
):
    """The lockstep loop over four streams, the one-stream tail and the byte-by-byte flush at
    the end of a region, on skewed codes (long and short), uneven and empty streams."""
    from sparsecodecs.codecs import _huffman as huff_mod

    rng = np.random.default_rng(seed)
    skew = rng.exponential(1.0, alphabet) ** 4
    symbols = rng.choice(alphabet, count, p=skew / skew.sum()).astype(
        np.uint8 if alphabet <= 256 else np.uint16)
    counts = np.bincount(symbols, minlength=alphabet).astype(np.int64)
    counts[rng.integers(0, alphabet)] += 1  # at least one symbol has a code
    limit = max(limit, (int(np.count_nonzero(counts)) - 1).bit_length())  # room for them all
    lengths = huff_mod.huffman_lengths(counts, limit).astype(np.uint8)
    cuts = np.sort(rng.integers(0, count + 1, nstreams - 1))
    check_encode_streams(symbols, lengths, np.array([0, *cuts, count], np.int64))


@pytest.mark.parametrize("nstreams", [1, 4, 5])
@pytest.mark.parametrize("alphabet", [6000, 20000, 40000])
def test_encode_streams_of_long_codes_only(nstreams: int, alphabet: int):
    """Runs of mixed long codes (12-16 bits) fill the bit writer most between flushes."""
    from sparsecodecs.codecs import _huffman as huff_mod

    rng = np.random.default_rng(alphabet)
    lengths = huff_mod.huffman_lengths(rng.integers(1, 4, alphabet), 16).astype(np.uint8)
    assert lengths.min() >= 12
    symbols = rng.integers(0, alphabet, 3001).astype(np.uint16)
    check_encode_streams(symbols, lengths, np.arange(nstreams + 1, dtype=np.int64) * 3001
                         // nstreams)


def test_encode_streams_refuses_too_little_room_and_foreign_symbols():
    """A region smaller than its stream's bits is refused (never written past: it ends at an
    inaccessible page), and so is a symbol the code table does not have."""
    from sparsecodecs import kernels
    from sparsecodecs.codecs import _huffman_kernels as hk

    lengths = np.array([1, 2, 2], np.uint8)
    codes = hk.canonical_codes(lengths)
    symbols = np.full(4096, 2, np.uint16)  # 8192 bits: 1024 bytes
    bounds = np.array([0, 1024, 2048, 3072, 4096], np.int64)
    for level in simd_levels():
        with kernels.use_simd(level):
            out = writable_guarded(4 * 256 - 8)  # the last stream is 8 bytes short
            with pytest.raises(ValueError, match="outgrew"):
                hk.encode_streams(symbols, codes, lengths, bounds,
                                  np.array([0, 256, 512, 768], np.int64), out,
                                  np.zeros(4, np.int64))
            out = writable_guarded(1024 - 8)  # one stream (batches of codes), 8 bytes short
            with pytest.raises(ValueError, match="outgrew"):
                hk.encode_streams(symbols, codes, lengths, np.array([0, 4096], np.int64),
                                  np.array([0], np.int64), out, np.zeros(1, np.int64))
            _GUARDS.clear()
            bad = symbols.copy()
            bad[3000] = 3
            with pytest.raises(ValueError, match="outside the code table"):
                hk.encode_streams(bad, codes, lengths, bounds,
                                  np.array([0, 256, 512, 768, 1024], np.int64),
                                  np.zeros(1024, np.uint8), np.zeros(4, np.int64))
            with pytest.raises(ValueError, match="outside the code table"):  # one stream
                hk.encode_streams(bad, codes, lengths, np.array([0, 4096], np.int64),
                                  np.array([0, 1024], np.int64), np.zeros(1024, np.uint8),
                                  np.zeros(1, np.int64))


@pytest.mark.parametrize(
    "width,top",
    [(16, 9), (16, 12), (16, 15), (32, 3), (32, 9), (32, 10), (32, 11), (32, 12), (32, 16),
     (64, 16)],
)
def test_split_fields_writes_the_bit_string_at_every_level(width: int, top: int):
    """split_fields packs the low ``width - top`` bits MSB-first, zero-padded to whole words,
    into exactly the bytes they need (ending at an inaccessible page) and the top bits into
    syms, at every SIMD level and count (blocks between flushes, the one-value tail, fields
    wider than 28 bits in halves; 16-bit values sixteen a vector step, up to the last whole
    step whose 8-byte stores stay inside ``low``; 32-bit values eight a step, low fields of odd
    and even widths, up to the last step whose 16-byte stores stay inside it)."""
    rng = np.random.default_rng(width + top)
    values = rng.integers(0, 1 << 63, 300, dtype=np.uint64).astype(f"u{width // 8}")
    check_split_fields(values, width, top)


@pytest.mark.parametrize(
    "width,top", [(16, 9), (19, 9), (19, 12), (20, 16), (24, 9), (25, 9), (31, 12), (31, 15)]
)
def test_split_fields_of_narrower_values_in_32_bit_items_at_every_level(width: int, top: int):
    """Values of fewer than 32 bits held in 32-bit items (the low fields of values shifted
    past the zeros they end in: float32 at float16 precision splits 19-bit values) split as
    the reference does at every SIMD level: bits above ``width`` ignored, rotated within
    ``width``, low fields of 1..15 bits (eight a 128-bit store) and of 16..23 (two halves), up
    to the last step whose stores stay inside ``low``."""
    rng = np.random.default_rng(width * 32 + top)
    check_split_fields(rng.integers(0, 1 << 32, 300, dtype=np.uint64).astype(np.uint32),
                       width, top)


def check_split_fields(values: np.ndarray, width: int, top: int) -> None:
    """split_fields of the first 0..39, 63..65, 299 and 300 of ``values`` (``width``-bit
    values in their items, bits above ignored), rotated by 0, 1 and ``width - 1``, at every
    SIMD level: the low fields' bytes against :func:`msb_first_bytes` (ending at an
    inaccessible page) and the top fields."""
    from sparsecodecs import kernels
    from sparsecodecs.codecs import _huffman_kernels as hk

    lb = width - top
    mask = (1 << width) - 1
    for count, rotate in itertools.product([*range(40), 63, 64, 65, 299, 300],
                                           [0, 1, width - 1]):
        v = values[:count]
        rot = [(((int(x) & mask) << rotate) | ((int(x) & mask) >> (width - rotate))) & mask
               for x in v]
        want = msb_first_bytes([(x & ((1 << lb) - 1), lb) for x in rot])
        for level in simd_levels():
            with kernels.use_simd(level):
                syms = np.zeros(count, np.uint16)
                low = writable_guarded((count * lb + 63) // 64 * 8)
                hk.split_fields(v, rotate, np.uint64(mask), width, top, syms, low)
                assert low.tobytes() == want, (count, rotate, level)
                assert syms.tolist() == [x >> lb for x in rot], (count, rotate, level)
        _GUARDS.clear()


def test_byte_histograms_count_as_numpy_at_every_simd_level():
    """Bytes are counted in eight tables that take them in turn (hist_bytes): counts as numpy's
    at every SIMD level, for one byte repeated (a dense tensor's mask, the case the tables are
    for), random and skewed bytes, lengths either side of the 64-byte threshold and of the
    8-byte steps, misaligned starts, alphabets under 256; and counts already in the table are
    added to, a byte outside the alphabet refused."""
    from sparsecodecs import kernels
    from sparsecodecs.codecs import _huffman_kernels as hk

    rng = np.random.default_rng(7)
    sources = [np.full(5000, 255, np.uint8), rng.integers(0, 256, 5000).astype(np.uint8),
               np.minimum(rng.geometric(0.3, 5000), 199).astype(np.uint8)]
    for level in simd_levels():
        with kernels.use_simd(level):
            for source in sources:
                for start in (0, 1, 3, 7):
                    for n in (0, 1, 7, 8, 9, 63, 64, 65, 71, 72, 1000, 4993 - start):
                        symbols = source[start:start + n]
                        alphabet = 256 if source.max() > 199 else 200
                        want = np.bincount(symbols, minlength=alphabet)
                        got = hk.histogram(symbols, alphabet)
                        assert np.array_equal(got, want), (level, start, n, alphabet)
            counts = np.arange(256, dtype=np.int64)
            hk.histogram_into(sources[1][1:], counts)
            assert np.array_equal(counts, np.arange(256) + np.bincount(sources[1][1:],
                                                                         minlength=256))
            bad = sources[2].copy()
            bad[3000] = 200
            with pytest.raises(ValueError, match="outside the alphabet"):
                hk.histogram(bad, 200)


@pytest.mark.parametrize("zeros", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_histograms_of_16_bit_symbols_count_zeros_alike_at_every_simd_level(zeros: float):
    """16-bit symbols, however many are zeros (a block more than a quarter zeros has its other
    symbols packed and counted apart), are counted as numpy counts them at every SIMD level, for
    lengths around the 512-symbol blocks and the 8-symbol steps, blocks exactly a quarter zeros
    among them; a symbol outside the alphabet, anywhere, is refused at every level."""
    from sparsecodecs import kernels
    from sparsecodecs.codecs import _huffman_kernels as hk

    rng = np.random.default_rng(int(zeros * 10))
    base = rng.integers(1, 1 << 16, 4200).astype(np.uint16)
    base[rng.random(base.size) < zeros] = 0
    quarter = rng.integers(1, 1 << 16, 1024).astype(np.uint16)
    quarter[rng.permutation(512)[:128]] = 0  # the first block exactly a quarter zeros
    quarter[512 + rng.permutation(512)[:129]] = 0  # the second one zero over
    cases = [base[:n] for n in (*range(20), 511, 512, 513, 519, 520, 1030, 4200)] + [quarter]
    for symbols in cases:
        want = np.bincount(symbols, minlength=1 << 16)
        for level in simd_levels():
            with kernels.use_simd(level):
                assert np.array_equal(hk.histogram(symbols, 1 << 16), want), (symbols.size, level)
                top = int(symbols.max(initial=0))
                if symbols.size and top:
                    with pytest.raises(ValueError, match="outside the alphabet"):
                        hk.histogram(symbols, top)


@pytest.mark.parametrize("rotate", [0, 1, 15])
@pytest.mark.parametrize("top", [8, 11, 12, 16])
def test_value_histograms16_from_counts_equal_the_pass_over_the_values(rotate: int, top: int):
    """The planner's histograms summed from the counts of every pattern are the ones a pass
    over the values counts; counts of the wrong size are refused."""
    from sparsecodecs import kernels
    from sparsecodecs.codecs import _huffman_kernels as hk

    rng = np.random.default_rng(top * 16 + rotate)
    spread = np.concatenate([rng.integers(0, 1 << 16, 5000), rng.integers(0x3F00, 0x3F20, 5000),
                             [0, 0xFFFF, 0x8000]]).astype(np.uint16)
    # a few exponents, as weights have (most top bytes empty: the runs the counts' pass skips),
    # of one sign and of both, and a lone pattern in the last run
    weights = rng.integers(0x3C00, 0x3E80, 3000).astype(np.uint16)
    for values in (spread, weights, weights | 0x8000, np.concatenate([weights, weights | 0x8000]),
                   np.array([0xFFFE], np.uint16)):
        counts = hk.histogram(values, 1 << 16)
        want = hk.value_histograms16(values, rotate, top)
        for level in simd_levels():
            with kernels.use_simd(level):
                got = hk.value_histograms16_counts(counts, rotate, top)
            for g, w in zip(got, want, strict=True):
                np.testing.assert_array_equal(g, w)
    with pytest.raises(ValueError, match="2\\*\\*16"):
        hk.value_histograms16_counts(counts[:-1].copy(), rotate, top)


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(st.integers(0, 10**7), max_size=70), st.integers(0, 40))
def test_entropy_bits_is_the_order0_entropy(counts: list[int], zeros: int):
    """entropy_bits: sum c * log2(total / c) over the counts that are not 0 (small ones from a
    table, large ones by log2; runs of zeros skipped), and how many those are."""
    from sparsecodecs.codecs import _huffman_kernels as hk

    c = np.array([0] * zeros + counts, np.int64)
    bits, used = hk.entropy_bits(c)
    nz = c[c > 0].astype(np.float64)
    n = nz.sum()
    want = n * math.log2(n) - float(np.dot(nz, np.log2(nz))) if n else 0.0
    assert used == nz.size
    assert bits == pytest.approx(want, rel=1e-9, abs=1e-6)
    with pytest.raises(ValueError, match="negative"):
        hk.entropy_bits(np.array([5, -1], np.int64))


@pytest.mark.parametrize("n", [1 << 16, 1 << 16 | 13, 23, 15, 16, 8, 0])
def test_entropy_bits_scan_is_the_same_at_every_simd_level(n: int) -> None:
    """The AVX2 scan tests 16 counts at a time for zero runs, the scalar one 8: the same sums
    bit for bit (the same adds in the same order), on tables mostly zero runs with counts
    scattered at every offset of a run, one count from the log2 path, and any length; and a
    negative count is found in either half of a 16-count run and in the tail."""
    from sparsecodecs import kernels
    from sparsecodecs.codecs import _huffman_kernels as hk

    rng = np.random.default_rng(n)
    c = np.zeros(n, np.int64)
    if n:
        at = rng.choice(n, size=min(n, 3000), replace=False)
        c[at] = rng.integers(1, 5000, at.size)
        c[at[0]] = 10**9  # past the c log2 c table
        c[-1] = 7
    results = []
    for level in simd_levels():
        with kernels.use_simd(level):
            results.append(hk.entropy_bits(c))
    assert all(r == results[0] for r in results), results
    assert results[0][1] == np.count_nonzero(c)
    for bad_at in {i for i in (3, 12, 17, n - 1) if 0 <= i < n}:
        d = c.copy()
        d[bad_at] = -2
        for level in simd_levels():
            with kernels.use_simd(level), pytest.raises(ValueError, match="negative"):
                hk.entropy_bits(d)


@settings(max_examples=examples(150), deadline=None)
@given(seed=st.integers(0, 2**32 - 1), count=st.integers(0, 30000), spread=st.floats(0.1, 64),
       levels=st.integers(1, 4), low=st.integers(0, 3))
def test_costs_with_extra_size_only_the_levels_that_may_win(seed: int, count: int,
                                                          spread: float, levels: int, low: int):
    """With each level's extra bytes given, the levels costed exactly are the ones that may
    have the least size + extra: the winner (the finest on a tie) and its size are those of the
    full call, every level sized is sized as in it, the rest answer UNCODABLE, and a level no
    code covers is not taken for the winner."""
    rng = np.random.default_rng(seed)
    fine = np.bincount(np.clip(rng.normal(2048, spread * 16, count), 0, 4095).astype(np.int64),
                       minlength=4096).reshape(1, -1)
    extra = [low * 8 * lv * max(1, count // 64) for lv in range(levels)]  # coarser: more low bits
    limit = int(rng.integers(8, 16))
    full = huff.coded_sizes(fine, limit, levels=levels)
    pruned = huff.coded_sizes(fine, limit, levels=levels, extra=extra)

    def winner(sizes: list[int]) -> tuple[int, int] | None:
        totals = [(s + e, lv) for lv, (s, e) in enumerate(zip(sizes, extra, strict=True))
                  if s < huff.UNCODABLE]
        return min(totals) if totals else None

    assert winner(pruned) == winner(full)
    for f, p in zip(full, pruned, strict=True):
        assert p in (f, huff.UNCODABLE)
