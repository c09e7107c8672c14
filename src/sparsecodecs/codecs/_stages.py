"""Value stages shared by ``huffman``, ``centroid`` and ``hybrid``.

* **planes**: split each value's bit pattern into byte planes, most significant first. Floats
  are first rotated left by one bit, so the sign sits next to the mantissa and the top plane of
  bfloat16/float32 is exactly the exponent (ZipNN's and DFloat11's observation: the exponent
  carries ~2-3 bits of information in 8; sign and mantissa are nearly incompressible). Each plane
  is Huffman-coded if that is smaller, else stored raw. Sections: ``<p>.plane<i>`` (raw) or
  ``<p>.plane<i>.codebook`` + ``<p>.plane<i>.bits`` (coded). Meta: a string of ``h``/``r`` per
  plane.
* **fields**: the top 9-12 bits of each rotated value (exponent and top mantissa bits) as one
  Huffman-coded symbol (``<p>.top.codebook`` + ``<p>.top.bits``), the low bits packed MSB-first
  into big-endian 64-bit words (``<p>.low``). Meta: the number of top bits.
* **centroid**: the sorted distinct values (``<p>.centroids``, role ``codebook``) and one index
  per value, Huffman-coded (``<p>.idx.codebook`` + ``<p>.idx.bits``) or packed at
  ceil(log2 k) bits (``<p>.idx``).

The 4-bit dtypes have a single plane: the values packed two per byte (value ``2i`` in the low
nibble of byte ``i``), so a coded plane's symbols are *pairs* of nibbles (256 symbols), which
wastes far less to Huffman's whole-bit code lengths than coding single nibbles (16 symbols).
Their centroid codebooks are packed two per byte as well.

Every decoder here validates counts and ranges before it allocates or indexes.
"""

from __future__ import annotations

import itertools
import math
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..registry import (
    FLOAT_LAYOUTS,
    FrameLayoutError,
    Section,
    SectionReader,
    bits_dtype,
    decode_threads,
    is_nibble,
    pack_nibbles,
    unpack_nibbles,
    values_section,
)
from ..registry.dtypes import name_of
from . import _huffman as huff
from . import _huffman_kernels as hk
from ._common import lent_buffer, pack_fields, unpack_fields
from ._kernels import (
    centroid_index,
    gather_fields,
    gather_index,
)

if TYPE_CHECKING:
    from ._distinct import Runs

__all__ = [
    "MAX_CENTROIDS",
    "CentroidPlan",
    "FieldsPlan",
    "PlanesPlan",
    "centroid_floor",
    "decode_centroids",
    "decode_fields",
    "decode_planes",
    "encode_centroids",
    "encode_fields",
    "encode_planes",
    "lent_value_counts",
    "plan_centroids",
    "plan_fields",
    "plan_planes",
    "rotation",
    "value_counts",
    "value_histograms",
]

MAX_CENTROIDS = 1 << 16


def rotation(dtype: np.dtype[Any]) -> int:
    """Bits to rotate left before splitting into planes: 1 for floats, 0 for integers."""
    return 1 if name_of(dtype) in FLOAT_LAYOUTS else 0


def _mask(dtype: np.dtype[Any]) -> np.uint64:
    mask = _MASKS.get(dtype.itemsize)
    return np.uint64((1 << (8 * dtype.itemsize)) - 1) if mask is None else mask


#: The low ``8 * itemsize`` bits, by item size (a numpy scalar made once, not each call).
_MASKS = {n: np.uint64((1 << (8 * n)) - 1) for n in (1, 2, 4, 8)}


def _split(values: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
    if is_nibble(dtype):
        return pack_nibbles(values).reshape(1, -1)
    if dtype.itemsize == 1 and not rotation(dtype):  # int8/uint8: the values are the plane
        return np.ascontiguousarray(values).reshape(1, -1)

    planes = np.empty((dtype.itemsize, values.size), np.uint8)
    hk.split_planes(np.ascontiguousarray(values), rotation(dtype), _mask(dtype), planes)
    return planes


@dataclass
class PlanesPlan:
    """Per byte plane of some values: its histogram and whether to Huffman-code it."""

    counts: np.ndarray  # (planes, 256)
    coded: list[bool]
    nbytes: int  # estimated section bytes (exact to 8 bytes per coded stream)


#: From this many values on, a planner of 8- and 16-bit values counts every bit pattern once
#: (:func:`value_counts`) and derives the rest from those counts: below it, a pass over the
#: values costs less than the 2**16 histogram bins.
COUNT_PATTERNS_FROM = 4096
#: 16-bit values are counted from this many on: their table is kept zero by its blocks in use
#: (:class:`lent_value_counts`), so a few values cost a few marked blocks, not 2**16 bins, and
#: the counted planner asks its questions in one compiled call (:func:`~._huffman_kernels.plan16`).
COUNT16_FROM = 1


def counted_from(itemsize: int) -> int:
    """How many 8- or 16-bit values of ``itemsize`` bytes a planner counts from."""
    return COUNT16_FROM if itemsize == 2 else COUNT_PATTERNS_FROM


def value_counts(values: np.ndarray) -> np.ndarray | None:
    """How often each bit pattern of 8- or 16-bit ``values`` occurs (int64, 2**bits items), or
    None for wider values and for fewer than :data:`COUNT_PATTERNS_FROM`: one pass that
    :func:`value_histograms`, :func:`~._distinct.distinct_values` and a mode need not repeat."""
    if not _counted(values):
        return None
    return hk.histogram(np.ascontiguousarray(values).reshape(-1), 1 << (8 * values.dtype.itemsize))


def _counted(values: np.ndarray) -> bool:
    """Whether a planner counts every bit pattern of ``values`` (:func:`value_counts`)."""
    return values.dtype.itemsize <= 2 and values.size >= counted_from(values.dtype.itemsize)


class lent_value_counts:  # used as a function: ``with lent_value_counts(v)``
    """:func:`value_counts` of ``values`` in a table this thread keeps between calls, for the
    block only (None for values it does not count). With a fresh 512 KiB table per encode,
    glibc trimmed the heap's top and faulted it in again on every encode of a 256x256 16-bit
    chunk (see docs/benchmarks.md, seventh pass).
    16-bit values' table comes with the map of its 64-bin blocks in use
    (:class:`~._huffman_kernels.TableBlocks`), and the passes over it read only those blocks.
    Where the values are at most 2**16 and touch at most a quarter of the blocks (weights of a
    few exponents in bfloat16, clustered values; marking costs ~0.25 ns a value, the passes it
    spares ~30 us a table), each block is marked as it is counted: such a table is left all
    zero by each block and never zeroed whole. Other tables (float16 weights) are zeroed whole
    by the block that next counts into them, as a stream of stores (bin by bin, counting into
    a table that another codec's call had pushed out of cache missed at every bin), and their
    map is read off the counts. The 16-bit tables are kept ready, views and all
    (:data:`_TABLES16`: a :func:`~._common.lent_buffer`'s bookkeeping and the views made
    each time: 5,000 float16 values counted in a block 20.3 -> 16.0-17.2 us, hot; an encode
    counts twice)."""

    __slots__ = ("_entry", "_lend", "_values")

    def __init__(self, values: np.ndarray) -> None:
        self._values = values
        self._entry: _Table16 | None = None
        self._lend: lent_buffer | None = None
        if values.dtype.itemsize == 1 and values.size >= COUNT_PATTERNS_FROM:
            self._lend = lent_buffer("value_counts", 256, np.int64, keep=3)

    def __enter__(self) -> np.ndarray | None:
        values = self._values
        if values.dtype.itemsize == 2 and values.size >= COUNT16_FROM:
            flat = np.ascontiguousarray(values).reshape(-1)
            if not flat.flags.aligned:  # (a view at an odd address: the kernel reads uint16)
                flat = flat.copy()
            free = _TABLES16.__dict__.setdefault("free", [])
            entry = free.pop() if free else _Table16()
            # ``dirty``: the table may hold counts (a table not marked as counted is left as
            # it is, and zeroed whole by its next user)
            marked = hk.histogram_blocks16(flat.view(np.uint16), entry.table, entry.blocks,
                                           entry.dirty)
            entry.dirty = not marked
            entry.lend.clear = marked
            self._entry = entry
            return entry.lend.__enter__()
        if self._lend is None:
            return None
        buf = self._lend.__enter__()
        try:
            buf.fill(0)
            hk.histogram_into(np.ascontiguousarray(values).reshape(-1), buf)
        except BaseException as exc:
            self._lend.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return buf

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: Any) -> None:
        entry, self._entry = self._entry, None
        if entry is not None:
            entry.lend.__exit__(exc_type, exc, tb)
            free = _TABLES16.__dict__.setdefault("free", [])
            if exc_type is None and len(free) < _KEEP_TABLES16:  # a table whose block raised
                free.append(entry)  # may hold counts outside its map: dropped
        elif self._lend is not None:
            self._lend.__exit__(exc_type, exc, tb)


class _Table16:
    """A 16-bit planner table made ready: 2**16 int64 counts (all zero, or with ``dirty``
    anything), the 1024-byte map of their blocks in use (all zero) and the
    :class:`~._huffman_kernels.TableBlocks` that lends them."""

    __slots__ = ("blocks", "dirty", "lend", "table")

    def __init__(self) -> None:
        buf = np.zeros((1 << 16) + 128, np.int64)
        self.table, self.blocks = buf[: 1 << 16], buf[1 << 16 :].view(np.uint8)
        self.lend = hk.TableBlocks(self.table, self.blocks)
        self.dirty = False


#: Each thread's ready 16-bit tables (``free``: a planner nests two, tensor and kept values).
_TABLES16 = threading.local()
_KEEP_TABLES16 = 3


#: The largest scratch buffer a thread keeps between encodes (larger ones are made and
#: dropped each time).
KEEP_SCRATCH_BYTES = 64 << 20

#: Scratch of fewer bytes is made fresh instead of lent: malloc serves it from the heap's free
#: lists, with no page faults to spare, in less time than a kept buffer's bookkeeping (0.2 us
#: against 3.4 for the 768 bytes of a 384-value tensor's top fields).
LEND_SCRATCH_FROM = 64 << 10


def lent_scratch(nbytes: int) -> lent_buffer:
    """``nbytes`` of uint8 scratch that this thread keeps between calls
    (:func:`~._common.lent_buffer`, its two largest), for a ``with`` block only: the planner's
    large temporaries (the top fields of a tensor, 2 bytes a value). A process encoding
    1536x384 bfloat16 tensors took ~500 page faults an encode while they were made and freed
    each time."""
    return lent_buffer("scratch", nbytes, np.uint8, keep=2, max_bytes=KEEP_SCRATCH_BYTES)


def value_histograms(
    values: np.ndarray, dtype: np.dtype[Any], counts: np.ndarray | None = None,
    runs: Runs | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(byte-plane histograms, top-field histogram) of 16- or 32-bit ``values`` in one pass:
    what :func:`plan_planes` and :func:`plan_fields` need, for a planner trying both.
    ``counts``: :func:`value_counts` of 16-bit values, when known (no pass over the values);
    ``runs``: the distinct values of 32-bit ones and their counts, when known: a few of them
    (at most one in 8 values) are weighted by their counts instead of a pass over the values
    (147,456 float32 patterns of 17 values: ~0.16 ms a pass)."""
    tmax = min(MAX_TOP_BITS, 8 * dtype.itemsize - 1)
    if dtype.itemsize == 2:
        if counts is not None:
            return hk.value_histograms16_counts(counts, rotation(dtype), tmax)
        return hk.value_histograms16(np.ascontiguousarray(values), rotation(dtype), tmax)
    if isinstance(runs, tuple) and dtype.itemsize == 4 and 8 * runs[0].size <= values.size:
        return _histograms_of_runs(runs, rotation(dtype), tmax)
    planes, fine = hk.value_histograms(np.ascontiguousarray(values), rotation(dtype),
                                       _mask(dtype), dtype.itemsize, tmax)
    return planes, fine


def _histograms_of_runs(
    runs: tuple[np.ndarray, np.ndarray], rotate: int, top: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`value_histograms` of the 32-bit values whose distinct values and counts are
    ``runs``: each distinct value, rotated left by ``rotate``, counted as often as it occurs
    (the weights are below 2**53: float64 sums them exactly)."""
    x = runs[0].astype(np.uint32)
    if rotate:
        x = (x << np.uint32(rotate)) | (x >> np.uint32(32 - rotate))
    weights = runs[1]
    planes = np.empty((4, 256), np.int64)
    for p in range(4):
        planes[p] = np.bincount((x >> np.uint32(24 - 8 * p)) & np.uint32(0xFF), weights,
                                minlength=256)
    fine = np.bincount(x >> np.uint32(32 - top), weights, minlength=1 << top).astype(np.int64)
    return planes, fine


def plan_planes(
    values: np.ndarray,
    dtype: np.dtype[Any],
    max_length: int,
    *,
    entropy: bool = True,
    counts: np.ndarray | None = None,
    sizes: list[int] | None = None,
) -> PlanesPlan:
    """Decide which byte planes of ``values`` to Huffman-code (from histograms alone).

    ``counts``: the planes' histograms when already known (:func:`value_histograms`);
    ``sizes``: with them, their coded sizes (:func:`~._huffman.coded_sizes`), when known.
    """
    raw = values.size
    if is_nibble(dtype):  # one plane: the packed nibble pairs
        plane = pack_nibbles(values)
        counts = hk.histogram(plane, 256).reshape(1, 256)
        raw = plane.size
    elif counts is not None:
        pass
    elif dtype.itemsize == 1 and not rotation(dtype):  # int8/uint8: one plane, the values
        counts = hk.histogram(np.ascontiguousarray(values), 256).reshape(1, 256)
    else:
        counts = hk.plane_histograms(np.ascontiguousarray(values), rotation(dtype), _mask(dtype),
                                     dtype.itemsize)
    coded, total = [], 0
    if sizes is None:
        sizes = huff.coded_sizes(counts, max_length) if entropy else [raw + 1] * len(counts)
    for size in sizes:
        coded.append(size < raw)
        total += min(size, raw)
    return PlanesPlan(counts, coded, total)


def encode_planes(
    values: np.ndarray,
    dtype: np.dtype[Any],
    prefix: str,
    max_length: int,
    *,
    entropy: bool = True,
    plan: PlanesPlan | None = None,
) -> tuple[list[Section], str]:
    """Sections and the plane-mode string (``h`` coded / ``r`` raw, one per plane)."""
    plan = plan_planes(values, dtype, max_length, entropy=entropy) if plan is None else plan
    sections: list[Section] = []
    modes = ""
    for i, plane in enumerate(_split(values, dtype)):
        name = f"{prefix}.plane{i}"
        if plan.coded[i]:
            sections += huff.encode_symbols(
                plane, 256, name, "values", max_length=max_length, counts=plan.counts[i]
            )
            modes += "h"
        else:
            sections.append(Section(name, "values", plane))
            modes += "r"
    return sections, modes


@dataclass
class FieldsPlan:
    """Top ``top`` bits of each (rotated) value Huffman-coded, the low bits packed raw."""

    top: int
    fine: np.ndarray  # the histogram of a top field at least ``top`` bits wide
    nbytes: int  # estimated section bytes
    #: The top fields coded in blocks of this many (each block its own code), or 0 for one
    #: code; ``block_counts``: then the counts each block's code is built from, one row a
    #: block; ``block_single``: one code's estimated bytes, which the blocks must beat.
    #: :func:`encode_fields` sets ``block`` to 0 if they did not.
    block: int = 0
    block_counts: np.ndarray | None = None
    block_single: int = 0
    #: The low fields stored in blocks of ``low_block`` values, each shifted right past the
    #: zero bits all its values end in (``low_shifts``: one count a block), or 0 and None:
    #: stored as they are.
    low_block: int = 0
    low_shifts: np.ndarray | None = None

    @property
    def counts(self) -> np.ndarray:
        """The histogram of the ``top``-bit fields: pairs of ``fine`` summed down to them, when
        the plan is encoded (a planner builds plans it does not use)."""
        counts = self.fine
        while counts.size > 1 << self.top:  # pairs (a reshape-and-sum took 27 us)
            counts = counts[0::2] + counts[1::2]
        return counts


#: Largest top field: 12 bits, so the alphabet (4096) stays small and so does its codebook.
MAX_TOP_BITS = 12


def plan_fields(
    values: np.ndarray, dtype: np.dtype[Any], max_length: int, fine: np.ndarray | None = None,
    coded: list[int] | None = None,
) -> FieldsPlan | None:
    """The best split of each value into a coded top field (9..12 bits) and raw low bits.

    This captures what byte planes miss: the exponent and the top mantissa bits are not
    independent (within a binade, a bell-shaped distribution favours small mantissas). Only
    for 16- and 32-bit values; None when no split is possible (another width, or more distinct
    top fields than codes of ``max_length`` bits). ``fine``: the histogram of the top 12 bits
    when already known (:func:`value_histograms`); ``coded``: with it, the coded sizes of its
    top fields as the call below sizes them, when known (:func:`~._huffman_kernels.plan16`).
    """
    width = 8 * dtype.itemsize
    if dtype.itemsize not in (2, 4):
        return None
    tmax = min(MAX_TOP_BITS, width - 1)
    if fine is None:
        fine = hk.top_histogram(np.ascontiguousarray(values), rotation(dtype), _mask(dtype),
                                width, tmax)
    # every top field width's coded size in one call (each histogram sums pairs of the finer);
    # 16-bit values: only where it may be the least with its low bits, the others answer
    # UNCODABLE (192x48x1x1 bfloat16: 375-382 -> 353-360 us an encode; float32's widths are
    # seldom told apart by their floors, which cost more than they spared: 230 -> 240 us)
    if coded is None:
        lows = [8 * _low_words(values.size, width - top) for top in range(tmax, 8, -1)]
        coded = huff.coded_sizes(fine.reshape(1, -1), max_length, levels=tmax - 8,
                                 extra=lows if width == 16 else None)
    if len(coded) != tmax - 8:
        raise ValueError(f"plan_fields: {len(coded)} coded sizes for {tmax - 8} top fields")
    best: tuple[int, int] | None = None  # (bytes, top)
    top, count = tmax, values.size
    for size in coded:  # widths tmax, tmax - 1, .. 9; each with its raw low bits
        if size < huff.UNCODABLE:  # else more top fields than codes, or it cannot win
            size += 8 * ((count * (width - top) + 63) // 64)  # _low_words, inline
            if best is None or size < best[0]:
                best = (size, top)
        top -= 1
    if best is None:
        return None
    plan = FieldsPlan(best[1], fine, best[0])
    values = np.ascontiguousarray(values)  # both below read it in place, by blocks
    if values.size >= BLOCKS_FROM:
        _plan_blocks(plan, values, dtype, max_length, coded[tmax - plan.top])
    if values.size >= 2 * LOW_BLOCK:
        _plan_low_shifts(plan, values, dtype)
    return plan


#: Low fields are stored in blocks of this many values, each block's shifted past the zero
#: bits all its values end in, where that is smaller (:func:`_plan_low_shifts`; meta
#: ``low_block``, section ``<prefix>.low.shift``). A multiple of 64, so that the blocks' packed
#: fields meet at word boundaries (a run of blocks is packed as one).
LOW_BLOCK = 1 << 14


def _plan_low_shifts(plan: FieldsPlan, values: np.ndarray, dtype: np.dtype[Any]) -> None:
    """Store ``plan``'s low fields shifted block by block if that saves more than 64 bytes.

    A block whose values all end in ``z`` zero bits below the low field's top bit (the sign,
    rotated, for floats) stores each value shifted right by ``z`` as a field of ``W - z`` bits:
    the same top field, ``z`` fewer low bits. Values rounded to a lower precision do this: rows
    of a float32 embedding kept at bfloat16 precision end in 16 zero bits, the position rows
    MiniLM never trained in 13. The first 64 values of each block decide most tensors: an odd
    one in every block, nothing to shift."""
    width, block = 8 * dtype.itemsize, LOW_BLOCK
    lb = width - plan.top
    full = values.size // block
    blocks = values[: full * block].reshape(full, block)
    if (np.bitwise_or.reduce(blocks[:, :64], axis=1) & 1).all():
        return
    ors = np.bitwise_or.reduce(blocks, axis=1).astype(np.uint64)
    if values.size > full * block:
        ors = np.append(ors, np.uint64(np.bitwise_or.reduce(values[full * block :])))
    ors &= np.uint64((1 << (lb - 1)) - 1)  # the bits a shift may drop
    lowest = ors & (~ors + np.uint64(1))  # each one's lowest set bit (0 if none)
    shifts = np.full(ors.size, lb - 1, np.uint8)
    nonzero = lowest != 0
    shifts[nonzero] = np.log2(lowest[nonzero].astype(np.float64)).astype(np.uint8)
    if not shifts.any():
        return
    sizes = np.full(ors.size, block, np.int64)
    sizes[-1] = values.size - block * (ors.size - 1)
    shifted = int((8 * ((sizes * (lb - shifts.astype(np.int64)) + 63) // 64)).sum())
    plain = 8 * _low_words(values.size, lb)
    if shifted + shifts.size + 64 < plain:  # and the meta entry and the section's in the header
        plan.low_block, plan.low_shifts = block, shifts
        plan.nbytes += shifted + shifts.size - plain


def _low_runs(shifts: np.ndarray, count: int, block: int) -> list[tuple[int, int, int]]:
    """``(start, stop, shift)`` of each run of consecutive blocks with the same shift."""
    edges = [0, *(np.flatnonzero(np.diff(shifts)) + 1).tolist(), shifts.size]
    return [(a * block, min(b * block, count), int(shifts[a]))
            for a, b in itertools.pairwise(edges)]


#: Top fields are coded in blocks (:func:`~._huffman.encode_symbols_blocked`) only for this
#: many values or more, and only where it saves bytes: one code for a whole tensor is the
#: order-0 bound of the whole, and a large tensor's statistics may change along it (a word
#: embedding's rows of unused tokens, stored at a lower precision, against the rest). Below
#: it the test is not made, so the planner of smaller tensors costs what it did.
BLOCKS_FROM = 8 * huff.BLOCK_SYMBOLS
#: The blocks' codes are built from the first 1/4 of each block, counted in place: counting
#: every block whole took 9 ms of a 34 ms encode of MiniLM's bfloat16 word embedding, and the
#: quarters' codes cost part of the gain (the float16 one: 19,863,203 bytes in one code,
#: 19,812,571 with every block counted, 19,824,777 with the quarters).
_BLOCK_SAMPLE = 4
#: What a block may add beyond its sections' bytes: its two entries in the frame header's
#: section table, 8-12 bytes once the header is compressed, 60-80 before.
_BLOCK_SLACK = 64


def _plan_blocks(plan: FieldsPlan, values: np.ndarray, dtype: np.dtype[Any], max_length: int,
                 single: int) -> None:
    """Plan ``plan``'s top fields in blocks (``plan.block``, ``block_counts``,
    ``block_single``) if a sample says they pay: the order-0 entropy of the first quarter of
    each block against that of all those quarters (each with Miller and Madow's correction
    for a sample's bias) must promise more than twice the blocks' slack. Each block's code is
    then built from its quarter's counts, plus one for every top field the tensor has (a field
    of the block that its quarter lacks must have a code). The plan's size is not changed:
    :func:`encode_fields` codes the blocks, and keeps them only if they come out smaller than
    the one code's ``single`` estimated bytes by more than their slack (else one code, as the
    size the value stages were compared by says)."""
    block, width, top = huff.BLOCK_SYMBOLS, 8 * dtype.itemsize, plan.top
    bounds = huff.block_bounds(values.size, block)
    sampled = np.empty((len(bounds), 1 << top), np.int64)
    for j, (a, b) in enumerate(bounds):  # each block's first (b - a) // 4 values
        sampled[j] = hk.top_histogram(values[a : a + max(1, (b - a) // _BLOCK_SAMPLE)],
                                      rotation(dtype), _mask(dtype), width, top)

    def corrected_bits(counts: np.ndarray) -> float:
        bits, used = hk.entropy_bits(counts)
        return bits + (used - 1) / (2 * math.log(2))

    gain = _BLOCK_SAMPLE * (corrected_bits(sampled.sum(axis=0))
                            - sum(corrected_bits(row) for row in sampled)) / 8
    if gain <= 2 * _blocks_slack(len(bounds)):
        return
    plan.block, plan.block_single = block, single
    plan.block_counts = sampled + (plan.counts > 0)


def _blocks_slack(nblocks: int) -> int:
    """The bytes blocks must save: their header entries, the meta entry, and the 8 * 4 bytes
    by which one code's estimate may be over its bytes (an estimate is never under them)."""
    return _BLOCK_SLACK * nblocks + 64


def encode_fields(
    values: np.ndarray, dtype: np.dtype[Any], prefix: str, plan: FieldsPlan, max_length: int
) -> list[Section]:
    if 2 * values.size < LEND_SCRATCH_FROM:
        return _encode_fields_with(np.empty(values.size, np.uint16), values, dtype, prefix,
                                   plan, max_length)
    with lent_scratch(2 * values.size) as scratch:  # the top fields, coded in the block
        return _encode_fields_with(scratch.view(np.uint16), values, dtype, prefix, plan,
                                   max_length)


def _encode_fields_with(
    syms: np.ndarray, values: np.ndarray, dtype: np.dtype[Any], prefix: str, plan: FieldsPlan,
    max_length: int,
) -> list[Section]:
    """:func:`encode_fields` with ``syms`` (a uint16 per value) to hold the top fields."""
    width = 8 * dtype.itemsize
    values = np.ascontiguousarray(values)
    extra: list[Section] = []
    runs = [(0, values.size, 0)]
    if plan.low_shifts is not None:
        runs = _low_runs(plan.low_shifts, values.size, plan.low_block)
        extra = [Section(f"{prefix}.low.shift", "codebook", plan.low_shifts)]
    parts = []
    for a, b, shift in runs:
        w = width - shift
        part = np.empty(8 * _low_words(b - a, w - plan.top), np.uint8)
        run = values[a:b] >> values.dtype.type(shift) if shift else values[a:b]
        if w == 16 and run.dtype.itemsize > 2:  # 16-bit values (bfloat16 precision):
            run = run.astype(np.uint16)  # the vector split of 16-bit items, same bytes
        hk.split_fields(run, rotation(dtype), np.uint64((1 << w) - 1), w, plan.top,
                        syms[a:b], part)
        parts.append(part)
    low = parts[0] if len(parts) == 1 else np.concatenate(parts)
    sections = None
    if plan.block:
        assert plan.block_counts is not None
        sections = huff.encode_symbols_blocked(syms, 1 << plan.top, f"{prefix}.top", "values",
                                               plan.block, plan.block_counts,
                                               max_length=max_length)
        nblocks = len(sections) // 2
        if sum(s.nbytes for s in sections) + _blocks_slack(nblocks) >= plan.block_single:
            sections, plan.block = None, 0  # the blocks' sampled codes lost: one code
    if sections is None:
        sections = huff.encode_symbols(syms, 1 << plan.top, f"{prefix}.top", "values",
                                       counts=plan.counts, max_length=max_length)
    return [*sections, Section(f"{prefix}.low", "values", low), *extra]


def _low_words(count: int, bits: int) -> int:
    return (count * bits + 63) // 64


def _block_meta(key: str, block: object) -> int | None:
    """A meta entry naming a block of symbols or values, checked; None if absent."""
    if block is not None and (
        not isinstance(block, int) or isinstance(block, bool) or block & (block - 1)
        or not huff.MIN_BLOCK <= block <= huff.MAX_BLOCK
    ):
        raise FrameLayoutError(
            f"meta {key!r} is {block!r:.50}: it must be a power of two from "
            f"{huff.MIN_BLOCK} to {huff.MAX_BLOCK}"
        )
    return block if isinstance(block, int) else None


def decode_fields(
    sections: SectionReader, prefix: str, count: int, dtype: np.dtype[Any], top: object,
    block: object = None, low_block: object = None,
) -> np.ndarray:
    """Inverse of :func:`encode_fields` (``top``: meta ``fields``; ``block``: meta
    ``fields_block``, the top fields' blocks, or None for one code; ``low_block``: meta
    ``low_block``, the blocks of the shifted low fields, or None: not shifted)."""
    width = 8 * dtype.itemsize
    if dtype.itemsize not in (2, 4) or not isinstance(top, int) or not 9 <= top <= min(
        MAX_TOP_BITS, width - 1
    ):
        raise FrameLayoutError(f"meta 'fields' is {top!r:.50}, invalid for {dtype}")
    block = _block_meta("fields_block", block)
    low_block = _block_meta("low_block", low_block)
    # the top fields first, then the low ones: a frame of neither kind of blocks is checked,
    # and fails, in the order it was before there were blocks
    syms = huff.decode_symbols(sections, f"{prefix}.top", count, 1 << top, np.uint16, block)
    lb = width - top
    if low_block is None:
        runs = [(0, count, 0)]
    else:  # the shifts sized by the block count, before anything of that size is made
        shifts = sections.array(f"{prefix}.low.shift", np.uint8, -(-count // low_block))
        if shifts.size and int(shifts.max()) >= lb:
            raise FrameLayoutError(
                f"section '{prefix}.low.shift' shifts a block by {int(shifts.max())} bits, not "
                f"fewer than its {lb}-bit low fields"
            )
        runs = _low_runs(shifts, count, low_block)
    nbytes = [8 * _low_words(b - a, lb - shift) for a, b, shift in runs]
    raw = sections.array(f"{prefix}.low", np.uint8, sum(nbytes))
    # 16-bit values are joined in place, in the decoded top fields
    out = syms if width == 16 else np.empty(count, bits_dtype(dtype))
    offset = 0
    for (a, b, shift), n in zip(runs, nbytes, strict=True):
        _join_run(syms[a:b], raw[offset : offset + n], out[a:b], dtype, top, shift)
        offset += n
    return out


def _join_run(syms: np.ndarray, raw: np.ndarray, out: np.ndarray, dtype: np.dtype[Any],
              top: int, shift: int) -> None:
    """The values of a run of low fields shifted by ``shift`` (0: not shifted) into ``out``."""
    width = 8 * dtype.itemsize
    if width == 32 and sys.byteorder == "little":
        # blocks of 8 values, read as bytes; values shifted right past their zeros (float32 at
        # bfloat16 precision: to 16 bits, at float16 precision: 19) are joined in their width,
        # rotated and shifted back in the same pass
        hk.join_fields32(syms, raw, rotation(dtype), top, out, decode_threads(), width - shift)
    elif shift:  # fields of the values shifted right, in a narrower width: joined, shifted back
        w = width - shift
        joined = np.empty(syms.size, out.dtype)
        hk.join_fields(syms, raw.view(">u8").astype(np.uint64), rotation(dtype),
                       np.uint64((1 << w) - 1), w, top, joined)
        np.left_shift(joined, out.dtype.type(shift), out=out)
    elif width == 16 and sys.byteorder == "little":  # at most 7 low bits: vectors
        hk.join_fields16(syms, raw, rotation(dtype), top, out, decode_threads())
    else:
        hk.join_fields(syms, raw.view(">u8").astype(np.uint64), rotation(dtype), _mask(dtype),
                       width, top, out)


def check_modes(modes: object, dtype: np.dtype[Any]) -> str:
    if not isinstance(modes, str) or len(modes) != dtype.itemsize or modes.strip("hr"):
        raise FrameLayoutError(
            f"meta 'planes' must be {dtype.itemsize} letters of 'h'/'r', got {modes!r:.100}"
        )
    return modes


def _decode_plane(sections: SectionReader, name: str, mode: str, count: int) -> np.ndarray:
    if mode == "h":
        return huff.decode_symbols(sections, name, count, 256)
    return sections.array(name, np.uint8, count)


def decode_planes(
    sections: SectionReader, prefix: str, count: int, dtype: np.dtype[Any], modes: object
) -> np.ndarray:
    """Inverse of :func:`encode_planes`: ``count`` values as unsigned bit patterns."""
    modes = check_modes(modes, dtype)
    if is_nibble(dtype):
        name = f"{prefix}.plane0"
        packed = _decode_plane(sections, name, modes[0], (count + 1) // 2)
        return unpack_nibbles(packed, count, f"section {name!r}")
    if dtype.itemsize == 1 and not rotation(dtype):  # int8/uint8: the plane is the values
        plane = _decode_plane(sections, f"{prefix}.plane0", modes[0], count)
        return plane if modes[0] == "h" else plane.copy()  # a raw plane is a read-only view
    # The first plane is checked against ``count`` before ``itemsize * count`` bytes are
    # allocated: a hostile shape can claim far more values than the sections hold.
    planes = [_decode_plane(sections, f"{prefix}.plane{i}", modes[i], count)
              for i in range(dtype.itemsize)]
    out = np.empty(count, bits_dtype(dtype))
    hk.join_planes(planes, rotation(dtype), _mask(dtype), out, decode_threads())
    return out


@dataclass
class CentroidPlan:
    """Centroids, how often each occurs, and the chosen index coding."""

    centroids: np.ndarray
    counts: np.ndarray
    coded: bool
    nbytes: int  # estimated section bytes (exact to 8 bytes per coded stream)


def _index_bits(k: int) -> int:
    return max(1, math.ceil(math.log2(k))) if k > 1 else 0


def centroid_floor(counts: np.ndarray, itemsize: int,
                   entropy: tuple[float, int] | None = None) -> int:
    """A lower bound on :func:`plan_centroids`'s bytes for values of ``itemsize`` bytes whose
    distinct values occur ``counts`` times (zeros, values that do not occur, are skipped): the
    codebook plus the indices at their order-0 entropy, which neither a prefix code nor packed
    indices beat. A planner skips listing the distinct values and the exact plan (a code over
    up to 2**16 symbols) when this already loses. ``entropy``: ``counts``'
    :func:`~._huffman_kernels.entropy_bits`, when known."""
    bits, used = hk.entropy_bits(counts) if entropy is None else entropy
    return used * itemsize + _entropy_bytes(bits)


def values_floor(counts: np.ndarray) -> int:
    """A lower bound on the bytes of any value stage (``fields``, ``planes``, ``centroid``)
    of values whose distinct values occur ``counts`` times: their order-0 entropy, which a
    prefix code of the top fields plus raw low bits, of each byte plane, or of centroid
    indices does not beat. (Top fields in blocks, planned for :data:`BLOCKS_FROM` values or
    more, can: a floor then prunes a layout that blocks might have made smaller than the
    plan at hand, never the plan at hand itself, so a frame is no larger than without
    blocks.)"""
    return _entropy_bytes(hk.entropy_bits(counts)[0])


def stages_floor(counts: np.ndarray, dtype: np.dtype[Any], count: int) -> int:
    """:func:`values_floor` for ``count`` 16-bit values whose bit patterns occur ``counts``
    times (:func:`value_counts`' 65536 bins), tighter: each stage at the order-0 entropy of
    what it codes. ``fields`` of ``t`` top bits cost at least the top fields' entropy plus
    their raw low bits, ``planes`` at least the sum of the planes' entropies (a raw plane
    costs more), ``centroid`` at least :func:`centroid_floor`. The values' entropy alone sits
    about as far below ``fields`` as a mask of a few fill entries costs (the low bits are
    near uniform but not quite), so it cannot rule out a fill that does not pay."""
    width = 8 * dtype.itemsize
    if width != 16 or counts.size != 1 << 16:
        raise ValueError(f"stages_floor takes 16-bit values' counts, got {dtype} / {counts.size}")
    # planes, then the widths plan_fields tries, each from the next finer, and the values'
    # own entropy for the centroids, in one compiled call
    bits, whole, used = hk.stages_floor16(counts, rotation(dtype), min(MAX_TOP_BITS, width - 1),
                                          count)
    return min(_entropy_bytes(bits), centroid_floor(counts, dtype.itemsize, (whole, used)))


def _entropy_bytes(bits: float) -> int:
    """``bits`` of entropy in whole bytes, rounded down past float error."""
    return max(0, math.floor(bits * (1 - 1e-9) / 8) - 1)


def plan_centroids(
    count: int, distinct: tuple[np.ndarray, np.ndarray], max_length: int, *, entropy: bool = True
) -> CentroidPlan:
    """Plan coding ``count`` values as indices into ``distinct`` (from
    :func:`~._distinct.distinct_values`)."""
    centroids, counts = distinct
    k = centroids.size
    packed = (count * _index_bits(k) + 7) // 8
    codable = entropy and 1 < k <= 1 << max_length  # a prefix code needs k <= 2**max_length
    coded = huff.coded_size(counts, max_length) if codable else packed + 1
    return CentroidPlan(centroids, counts, coded < packed,
                        int(centroids.nbytes) + min(packed, coded))


def encode_centroids(
    values: np.ndarray, prefix: str, plan: CentroidPlan, max_length: int, dtype: np.dtype[Any]
) -> tuple[list[Section], str]:
    """Sections and the index mode (``h`` Huffman, ``p`` packed)."""
    k = plan.centroids.size
    idx = centroid_index(values, plan.centroids)
    sections = [values_section(f"{prefix}.centroids", plan.centroids, dtype, "codebook")]
    if plan.coded:
        sections += huff.encode_symbols(idx, k, f"{prefix}.idx", "values", counts=plan.counts,
                                        max_length=max_length)
        return sections, "h"
    sections.append(Section(f"{prefix}.idx", "values", pack_fields(idx, _index_bits(k))))
    return sections, "p"


def decode_centroids(
    sections: SectionReader, prefix: str, count: int, dtype: np.dtype[Any], mode: object, k: int
) -> np.ndarray:
    """Inverse of :func:`encode_centroids`."""
    centroids = sections.values(f"{prefix}.centroids", dtype, k)
    if k == 0 and count:
        raise FrameLayoutError(f"section '{prefix}.centroids' is empty but {count} values")
    if mode == "h":
        idx = huff.decode_symbols(
            sections, f"{prefix}.idx", count, k, np.uint8 if k <= 256 else np.uint16
        )
    elif mode == "p":
        bits = _index_bits(k)
        raw = sections.array(f"{prefix}.idx", np.uint8)
        what = f"section '{prefix}.idx'"
        if bits:  # unpack and gather in one pass
            return gather_fields(raw, bits, count, centroids, what)
        unpack_fields(raw, bits, count, what)  # one centroid: no bits (the section checked)
        return np.repeat(centroids[:1], count)
    else:
        raise FrameLayoutError(f"meta index mode must be 'h' or 'p', got {mode!r:.50}")
    return gather_index(idx, centroids, f"section '{prefix}.idx'")
