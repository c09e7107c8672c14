"""The layout kernels: a thin layer over the compiled ``sparsecodecs.kernels._native``
(``kernels/layout.c``).

Each function keeps the name and semantics its callers (``nm.py``, ``hybrid.py``,
``bitmask.py``, ``_parts.py``, ``_compressed.py``, ``_fill.py``) use. Arrays go to C as they are,
through the buffer protocol: C-contiguous (a strided array raises ``BufferError``), values as
unsigned bit patterns of 1, 2, 4 or 8 bytes, index arrays of any integer width (the C side
dispatches on item size, so no copy is made). The C side checks that the buffers' sizes fit
each other (``ValueError``: a caller's bug) and checks what a frame could have set (pattern
codes, CSR pointers, how many values a mask asks for); such a problem comes back as a return
code, raised here as :class:`~sparsecodecs.FrameLayoutError`. Every kernel runs
with the GIL released; the SIMD paths (bitmask scatter and split of 1-, 2- and 4-byte items,
byte indices into small tables) follow :func:`sparsecodecs.kernels.use_simd`.

Each kernel has a plain numpy reference in the test suite that it must match exactly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import lru_cache

import numpy as np

from ..kernels import _native
from ..registry import FrameLayoutError
from ._common import PADDING_BITS_SET, check_field_bytes, lent_buffer


@lru_cache(maxsize=1)
def byte_tables() -> tuple[np.ndarray, np.ndarray]:
    """(positions, counts): the set-bit positions (LSB first) and popcount of every byte."""
    pos = np.zeros((256, 8), np.uint8)
    cnt = np.zeros(256, np.uint8)
    for b in range(256):
        bits = [k for k in range(8) if (b >> k) & 1]
        pos[b, : len(bits)] = bits
        cnt[b] = len(bits)
    return pos, cnt


def touch_pages(buf: np.ndarray, cursor: np.ndarray | None = None) -> None:
    """Write a zero byte every 4096 bytes of the writable C-contiguous ``buf``, and its last
    byte (its pages faulted in: the first touch of a fresh output, on a thread of its own).
    With ``cursor`` (one int64, 0 at first), calls on several threads share the pages: each
    claims runs of 2 MiB not yet claimed, and returns when none is left."""
    if cursor is None:
        _native.touch_pages(buf)
    else:
        _native.touch_pages(buf, cursor)


def pages_resident(buf: np.ndarray) -> bool:
    """Whether the pages of the C-contiguous ``buf`` are in memory already (8 probed, first
    and last among them): a reused allocation's are, a fresh mapping's not until touched.
    False off Linux."""
    return bool(_native.pages_resident(buf))


def mask_codes24(mask: np.ndarray, groups: int, out: np.ndarray) -> bool:
    """``out[g]`` = the 2:4 pattern code (0-5) of the 4-bit group ``g`` of an LSB-first
    bitmask, for ``g < groups``; False if a group does not keep exactly two."""
    return bool(_native.mask_codes24(mask, groups, out))


def popcount(mask: np.ndarray) -> int:
    """Set bits in the byte array ``mask``."""
    return int(_native.mask_popcount(mask))


def check_mask(mask: np.ndarray, size: int, nnz: int, what: str) -> None:
    """Raise FrameLayoutError unless ``mask`` has exactly ``nnz`` set bits among ``size``."""
    counted = popcount(mask)
    if counted != nnz:
        raise FrameLayoutError(f"{what} has {counted} set bits but meta nnz={nnz}")
    if size % 8 and mask[-1] >> (size % 8):
        raise FrameLayoutError(f"{what} has set bits past the last element")


def _too_few(used: int, what: str) -> None:
    if used < 0:
        raise FrameLayoutError(f"{what}: the mask has more set bits than there are values")


def bitmask_scatter(mask: np.ndarray, values: np.ndarray, out: np.ndarray,
                    threads: int = 1) -> None:
    """Fill ``out`` (flat): the next value where bit i of ``mask`` (LSB first) is set, else 0.

    SSSE3 places the values of a mask byte with one byte shuffle for 1- and 2-byte items, AVX2
    with one ``vpermd`` for 4-byte items; the scalar twin writes the same bytes. Raises
    FrameLayoutError if the mask asks for more values than ``values`` holds. ``threads`` > 1
    splits an ``out`` of 512K items or more into runs of whole mask bytes, each run's first
    value found by counting the set bits before it.
    """
    _too_few(_native.bitmask_scatter(mask, values, out, threads), "bitmask decode")


#: The decode entry point of the bitmask layouts (the kernel picks its SIMD path itself).
bitmask_decode = bitmask_scatter


def bitmask_scatter_fill(
    mask: np.ndarray, values: np.ndarray, out: np.ndarray, fill: np.ndarray, cols: int
) -> None:
    """:func:`bitmask_scatter` with the fill of each row (``fill``: 1 item, or one per row of
    ``cols`` items) where that writes 0."""
    _too_few(_native.bitmask_scatter_fill(mask, values, out, fill, cols), "bitmask decode")


def _values_room(kept: int) -> int:
    if kept < 0:
        raise ValueError("values has no room for every non-zero (give it nnz + 8 slots)")
    return kept


def bitmask_split(x: np.ndarray, mask: np.ndarray, values: np.ndarray) -> int:
    """LSB-first non-zero mask of ``x`` and its non-zero values, in one pass; returns nnz.

    ``values`` needs 8 spare slots past the non-zeros to run at full speed (the kernels write
    ahead; what they leave in the spare slots is unspecified), at least the non-zeros' count.
    """
    return _values_room(_native.bitmask_split(x, mask, values))


def kept_count(flat: np.ndarray, fill: np.ndarray | None, cols: int) -> int:
    """How many entries of the flat (rows x cols) ``flat`` are not their row's fill (None:
    zero; 1 item, or one per row): the count the layouts size their kept values by."""
    if fill is None:
        return int(np.count_nonzero(flat))
    return flat.size - count_fill(flat, fill, cols)


def split_kept(flat: np.ndarray, nnz: int, fill: np.ndarray | None,
               cols: int) -> tuple[np.ndarray, np.ndarray]:
    """``(mask, kept)`` of the flat (rows x cols) ``flat`` in one pass: the LSB-first mask of
    the entries that are not their row's fill (None: zero) and those ``nnz`` entries
    (:func:`kept_count`), from a buffer with the spare slots the kernels write ahead into: the
    encode of the bitmask layouts (``bitmask``'s and ``hybrid``'s; the kernels pick their SIMD
    path)."""
    mask = np.empty((flat.size + 7) // 8, np.uint8)
    spare = np.empty(nnz + 8, flat.dtype)
    if fill is None:
        bitmask_split(flat, mask, spare)
    else:
        bitmask_split_fill(flat, mask, spare, fill, cols)
    return mask, spare[:nnz]


def bitmask_split_fill(
    x: np.ndarray, mask: np.ndarray, values: np.ndarray, fill: np.ndarray, cols: int
) -> int:
    """:func:`bitmask_split` with "non-zero" read as "not the fill of its row" (``fill``: 1
    item or one per row of ``cols``); returns the count kept."""
    return _values_room(_native.bitmask_split_fill(x, mask, values, fill, cols))


def _codes_ok(rc: int) -> int:
    if rc == -2:
        raise FrameLayoutError("section 'pattern' holds a pattern code out of range")
    return rc


def nm_scatter(packed: np.ndarray, lut: np.ndarray, positions: np.ndarray, values: np.ndarray,
               out: np.ndarray, rows: int, cols: int, m: int) -> int:
    """Write N:M groups element by element (any m, rows padded to whole groups).

    Group g (code ``lut[packed[g // k], g % k]``, ``k = lut.shape[1]``) holds
    values[g*n:(g+1)*n] at positions[code]. ``out`` is the flat (rows * cols) output; the last
    group of a row may be cut short by ``cols`` (padding), in which case its padded slots are
    skipped: they must hold zeros. Returns 0, or -1 if a padded slot holds a non-zero value (a
    corrupt frame); FrameLayoutError for a code out of range.
    """
    return _codes_ok(_native.nm_scatter(packed, lut, lut.shape[1], positions,
                                        positions.shape[1], values, out, rows, cols, m, None))


def nm_scatter_fill(packed: np.ndarray, lut: np.ndarray, positions: np.ndarray,
                    values: np.ndarray, out: np.ndarray, rows: int, cols: int, m: int,
                    fill: np.ndarray) -> int:
    """:func:`nm_scatter` with the fill of each row where that writes 0.

    Returns 0, or -1 if a padded slot holds anything but its row's fill (a corrupt frame).
    """
    return _codes_ok(_native.nm_scatter(packed, lut, lut.shape[1], positions,
                                        positions.shape[1], values, out, rows, cols, m, fill))


def nm_compose(packed: np.ndarray, lut: np.ndarray, ngroups: int, word_of: np.ndarray,
               shifts: np.ndarray, values: np.ndarray, out: np.ndarray) -> None:
    """Write N:M groups as whole machine words (groups aligned to words, no padding).

    Group codes are read as in :func:`nm_scatter` (for a plain code array, pass an identity
    ``lut`` of shape ``(C, 1)``). Group ``g`` occupies ``wpg = out.size // ngroups`` words of
    ``out``; its t-th kept value goes to word ``word_of[c, t]`` of the group, shifted left by
    ``shifts[c, t]`` bits. With one word per group (e.g. 2:4 of 16-bit values in a uint64) the
    group is assembled in a register and stored once.
    """
    _codes_ok(_native.nm_compose(packed, lut, lut.shape[1], ngroups, word_of, shifts,
                                 shifts.shape[1], values, out))


def nm24_compose(packed: np.ndarray, lut: np.ndarray, ngroups: int, shifts: np.ndarray,
                 values: np.ndarray, out: np.ndarray, threads: int = 1) -> None:
    """:func:`nm_compose` for the hot case: 2:4, 3 codes per byte, 1 word per group; split
    over ``threads`` (whole pattern bytes each) when there are 3 * 65536 groups per thread."""
    _native.nm24_compose(packed, lut, ngroups, shifts, values, out, threads)


def nm2_compose_codes(codes: np.ndarray, shifts: np.ndarray, values: np.ndarray,
                      out: np.ndarray) -> None:
    """:func:`nm_compose` for n = 2, one code per group, one word per group."""
    _codes_ok(_native.nm2_compose_codes(codes, shifts, values, out))


_ZERO_FILLS = {s: np.zeros(1, f"u{s}") for s in (1, 2, 4, 8)}


def nm_split(x: np.ndarray, rows: int, cols: int, m: int, code_of_mask: np.ndarray,
             positions: np.ndarray, codes: np.ndarray, values: np.ndarray) -> int:
    """Pattern code and kept values of every N:M group of the flat (rows x cols) array ``x``.

    ``code_of_mask[mask]`` is the pattern code of the group's non-zero mask (filled up to n
    slots with its lowest zero positions), or -1 for more than n non-zeros; ``positions[c]``
    the n slots of code c. Returns -1, or the index of the first group with more than n
    non-zeros (then the outputs are incomplete). Positions past ``cols`` in a row's last group
    count as zeros.
    """
    return int(_native.nm_split(x, rows, cols, m, code_of_mask, positions, positions.shape[1],
                                codes, values, _ZERO_FILLS[x.dtype.itemsize]))


def nm_split_fill(x: np.ndarray, rows: int, cols: int, m: int, code_of_mask: np.ndarray,
                  positions: np.ndarray, codes: np.ndarray, values: np.ndarray,
                  fill: np.ndarray) -> int:
    """:func:`nm_split` with "non-zero" read as "not the fill of its row" (padding: the fill)."""
    return int(_native.nm_split(x, rows, cols, m, code_of_mask, positions, positions.shape[1],
                                codes, values, fill))


def _csr_ok(rc: int) -> None:
    if rc < 0:
        raise FrameLayoutError("section 'indptr' holds a pointer out of range")


def csr_dense(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, out: np.ndarray,
              major: int, minor: int, transposed: bool, check: bool) -> bool:
    """CSR arrays (CSC's with ``transposed``) onto ``out``, zeros of ``major x minor`` items
    (``np.zeros``: fresh pages come zeroed), no transposed copy. With ``check``, every row is
    checked before it is written (pointers from 0 ascending to nnz, indices strictly
    increasing and below ``minor``): False if one is wrong, nothing past the buffers touched.
    Without, the pointers are checked and the indices trusted (``decode_parts`` checked them;
    FrameLayoutError for a pointer)."""
    rc = _native.csr_scatter(indptr, indices, data, out, major, minor, None, False, transposed,
                             check)
    if not check:
        _csr_ok(rc)
    return rc == 0


def csr_scatter_fill(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray,
                     out: np.ndarray, major: int, minor: int, fill: np.ndarray,
                     per_minor: bool) -> None:
    """Dense rows from CSR arrays onto the fill: ``fill[0]``, or per major row (``per_minor``
    False) or per minor index (True: CSC, whose minor axis is the rows of the 2-D view). The
    pointers are checked again (FrameLayoutError); the indices are trusted to be < ``minor``:
    ``_compressed.decode_parts`` checked them."""
    _csr_ok(_native.csr_scatter(indptr, indices, data, out, major, minor, fill, per_minor, False,
                                False))


def csr_split(x: np.ndarray, rows: int, cols: int, by_columns: bool, fill: np.ndarray | None,
              data: np.ndarray, indices: np.ndarray, indptr: np.ndarray) -> int:
    """The CSR (CSC with ``by_columns``) layout of the flat ``rows x cols`` ``x`` in one pass a
    row: the entries other than their row's fill (``fill``: None for zero, 1 item or one per
    row) into ``data``, their columns (rows) into ``indices``, the pointers into ``indptr``
    (``major + 1`` items); returns how many were kept. ``data`` and ``indices`` need a spare
    slot past them (the kernel writes ahead into it)."""
    kept: int = _native.csr_split(x, rows, cols, by_columns, fill, data, indices, indptr)
    if kept < 0:
        raise ValueError("data and indices have no room for every entry kept and a spare slot")
    return kept


def csr_rows_increasing(indptr: np.ndarray, indices: np.ndarray) -> bool:
    """True if ``indices`` is strictly increasing within each row (``indptr`` is monotone and
    ends at ``indices.size``; FrameLayoutError if a pointer is past the end)."""
    rc = _native.csr_rows_increasing(indptr, indices)
    _csr_ok(rc)
    return bool(rc)


def nm_pack_codes(codes: np.ndarray, ncodes: int, k: int, out: np.ndarray) -> bool:
    """uint16 ``codes`` as base-``ncodes`` digits, ``k`` a word of ``out`` (code i is digit
    ``i % k`` of word ``i // k``; a last word's missing digits 0). False if a code is
    ``>= ncodes`` (then ``out`` holds no valid words)."""
    return bool(_native.nm_pack_codes(codes, ncodes, k, out))


def nm_codes_from_mask(mask: np.ndarray, m: int, code_of: np.ndarray,
                       codes: np.ndarray) -> bool:
    """Pattern codes of N:M groups read straight from an LSB-first non-zero mask.

    For ``m`` dividing 8 and rows of whole groups, group g is bits ``g*m .. g*m+m-1`` of the
    mask. ``code_of[bits]`` is the code of a group with exactly n non-zeros, else -1. Returns
    True if every group has exactly n non-zeros: then the N:M layout keeps exactly the mask's
    values, in the same order. False as soon as one group does not (``codes`` incomplete).
    """
    return bool(_native.nm_codes_from_mask(mask, m, code_of, codes))


def cut_rows(src: np.ndarray, rows: int, stride: int, width: int, out: np.ndarray) -> bool:
    """Copy the first ``width`` bytes of each of the ``rows`` rows of ``stride`` bytes of the
    byte array ``src`` into the byte array ``out`` (rows of ``width``); True if a byte past
    ``width`` of some row is not zero."""
    return bool(_native.cut_rows(src, rows, stride, width, out))


def fill_rows(out: np.ndarray, fill: np.ndarray, cols: int) -> None:
    """Set the flat (rows x cols) ``out`` to ``fill[0]``, or to ``fill[r]`` on row r."""
    _native.fill_rows(out, fill, cols)


def count_fill(x: np.ndarray, fill: np.ndarray, cols: int) -> int:
    """How many entries of the flat (rows x cols) ``x`` equal ``fill[0]``, or ``fill[r]`` on
    row r: ``np.count_nonzero(x == fill)`` without its temporary array."""
    count: int = _native.count_fill(x, fill, cols)
    return count


def count_fill_rows(x: np.ndarray, fill: np.ndarray, cols: int) -> np.ndarray:
    """:func:`count_fill` row by row, for a fill of one item a row (at least two rows): the
    count of each row's entries equal to its fill item, as int64."""
    per_row = np.empty(fill.size, np.int64)
    _native.count_fill(x, fill, cols, per_row)
    return per_row


def paired_spare(x: np.ndarray, cols: int) -> int:
    """For the flat ``x`` in rows of ``cols`` <= 8 entries: the sum over the rows of
    ``max(0, pairs - zeros)``, a row's pairs of equal non-zero entries less its zeros, which
    bounds what the rows' mode fills spare over zero fills (a row's non-zero mode occurring k
    times makes at least k - 1 such pairs; its fill spares k less the zeros less itself)."""
    bound: int = _native.paired_spare(np.ascontiguousarray(x).reshape(-1), cols)
    return bound


def row_modes_table(x: np.ndarray, rows: int, cols: int, counts: np.ndarray,
                    out: np.ndarray, step: int = 1) -> None:
    """Most frequent bit pattern of each row of the flat (rows x cols) ``x`` (8/16-bit), ties
    to the smaller pattern, over the columns ``0, step, 2 * step, ...`` (read in place);
    ``counts`` is a zeroed table of ``2**bits`` int64 (left zeroed)."""
    _native.row_modes_table(x, rows, cols, counts, out, step)


def row_modes_sort(x: np.ndarray, rows: int, cols: int, out: np.ndarray) -> None:
    """:func:`row_modes_table` for any width, by sorting a copy of each row."""
    _native.row_modes_sort(x, rows, cols, out)


def sorted_bits(values: np.ndarray) -> np.ndarray:
    """``np.sort`` of the 1-D ``values`` (a new array). Over 1024 unsigned 4- and 8-byte bit
    patterns go to the faster of numpy's sort and a compiled radix sort on this machine
    (:func:`numpy_sorts_faster`). numpy radix-sorts narrower ones itself when asked for a
    stable sort, and over 1024 of them that pays (its default sorts by comparisons too:
    147,456 float16 patterns 2.47 ms, radix-sorted 0.33 ms; 300 of them 0.9 against 1.9 us)."""
    if values.dtype.kind in "ui" and values.dtype.itemsize <= 2 and values.size > 1024:
        return np.sort(values, kind="stable")
    if (values.dtype.kind != "u" or values.dtype.itemsize not in (4, 8) or values.size <= 1024
            or numpy_sorts_faster(values.dtype.itemsize)):
        return np.sort(values)
    out = np.array(values, order="C")  # a contiguous copy, sorted in place
    _native.sort_bits(out)
    return out


#: Per key width in bytes (4, 8): whether ``np.sort`` beat ``sort_bits`` in this process's
#: race (:func:`numpy_sorts_faster`), once run.
_NUMPY_SORTS: dict[int, bool] = {}
#: The keys of that race: gaussian weights' bit patterns, as the planner sorts.
_RACE_KEYS = 8192


def numpy_sorts_faster(itemsize: int) -> bool:
    """Whether ``np.sort`` sorts ``itemsize``-byte (4 or 8) unsigned keys faster than the
    compiled radix sort (``sort_bits``) on this machine: a race on 8192 keys, best of three
    each, run once a process per width (~1 ms). Both sort to the same order, so only the
    speed depends on it, and that depends on the machine: numpy 2.4.6 took 1.34 ms on 65,536
    float32 patterns on an AMD EPYC with AVX-512 where the radix sort took 0.24, and 0.22 ms
    on 61,440 on an Intel Xeon with AVX-512 where the radix sort took 0.60 (8-byte keys 0.45
    against 1.33; docs/benchmarks.md, issue 13's eleventh and thirty-seventh passes)."""
    known = _NUMPY_SORTS.get(itemsize)
    if known is None:
        known = _NUMPY_SORTS[itemsize] = _race_sorts(itemsize)
    return known


def _race_sorts(itemsize: int) -> bool:
    """:func:`numpy_sorts_faster`'s race, run."""
    # gaussian by Box and Muller from two uniforms of a multiplicative hash (numpy.random
    # takes ~10 ms to import)
    i = np.arange(1, _RACE_KEYS + 1, dtype=np.uint64)
    u1 = ((i * np.uint64(2654435761)) % np.uint64(1 << 32) + 1.0) / (2.0**32 + 2.0)
    u2 = ((i * np.uint64(40503)) % np.uint64(65521)) / 65521.0
    floats = 0.05 * np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
    keys = floats.astype(np.float32 if itemsize == 4 else np.float64).view(f"u{itemsize}")
    best_numpy = best_radix = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        np.sort(keys)
        t1 = time.perf_counter()
        out = np.array(keys)
        _native.sort_bits(out)
        t2 = time.perf_counter()
        best_numpy, best_radix = min(best_numpy, t1 - t0), min(best_radix, t2 - t1)
    return best_numpy < best_radix


def distinct_above(values: np.ndarray, limit: int) -> bool:
    """Whether the 1-D ``values`` hold more than ``limit`` distinct ones. Unsigned 4- and
    8-byte bit patterns go to a compiled hash count that stops once it has seen ``limit + 1``
    (mostly distinct float32 weights answer in a fifth of the time a sort takes); others are
    sorted."""
    if values.dtype.kind != "u" or values.dtype.itemsize < 4:
        return unique_bits(values)[0].size > limit
    return bool(_native.distinct_above(np.ascontiguousarray(values), int(limit)))


def unique_few(values: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``np.unique(values, return_counts=True)`` (counts int64) of the 1-D unsigned 4- or
    8-byte ``values`` when they hold at most ``limit`` (<= 65536) distinct ones, by a compiled
    hash count in one pass that stops at ``limit + 1`` (a sort takes three passes and one for
    its runs); None when more are distinct, or when the count's probes run long (keys crowding
    the table: sort them instead)."""
    room = min(limit, values.size)
    uniq, counts = np.empty(room, values.dtype), np.empty(room, np.int64)
    k = _native.unique_few(np.ascontiguousarray(values), limit, uniq, counts)
    return None if k < 0 else (uniq[:k], counts[:k])


def hash_bins(values: np.ndarray, step: int = 1) -> tuple[int, int, int]:
    """Entries ``0, step, 2 step, ...`` of the 1-D unsigned 4- or 8-byte ``values``, the
    non-zero ones counted by their hash into 2**16 bins, in one pass: (the fullest bin's count,
    the bins not empty, the zero entries). No non-zero pattern occurs more often than the
    first; at least the second distinct ones do."""
    with lent_buffer("hash_bins", 1 << 16, np.uint32, keep=1) as bins:
        most, occupied, zeros = _native.hash_bins(np.ascontiguousarray(values), bins, step)
    return most, occupied, zeros


#: Up to this many sorted values, their runs are found by the compiled pass (arrays of their
#: length made for it); beyond, by numpy (arrays the size of the runs).
COMPILED_RUNS_UP_TO = 4096


def sorted_runs(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of the sorted 1-D ``s`` and how often each occurs (int64): its
    runs, by one compiled pass for a few (numpy's six calls took ~3 us on 384 values, most of a
    small tensor's), else found into preallocated arrays (a mask, then the starts'
    differences) rather than through ``concatenate``, ``diff`` and ``append``'s temporaries."""
    if not s.size:
        return s, np.zeros(0, np.int64)
    if s.size <= COMPILED_RUNS_UP_TO and s.dtype.itemsize in (1, 2, 4, 8):
        values, counts = np.empty_like(s), np.empty(s.size, np.int64)
        k = _native.sorted_runs(np.ascontiguousarray(s), values, counts)
        return values[:k], counts[:k]
    first = np.empty(s.size, bool)
    first[0] = True
    np.not_equal(s[1:], s[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.empty(starts.size, np.int64)
    np.subtract(starts[1:], starts[:-1], out=counts[:-1])
    counts[-1] = s.size - starts[-1]
    return s[starts], counts


def unique_bits(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_counts=True)`` of the 1-D ``values``, counts as int64, by
    :func:`sorted_bits`."""
    return sorted_runs(sorted_bits(values))


def centroid_index(values: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """The index of every value among ``centroids`` (distinct bit patterns, ascending, the
    values' dtype; ``ValueError`` if not): uint8 for up to 256 centroids, else uint16 (up to
    65536). Every value must be a centroid (the encoder's centroids are the values' distinct
    ones): ``ValueError`` if one is not."""
    out = np.empty(values.size, np.uint8 if centroids.size <= 256 else np.uint16)
    if _native.centroid_index(np.ascontiguousarray(values).reshape(-1),
                              np.ascontiguousarray(centroids), out) < 0:
        raise ValueError("centroid_index: a value is not among the centroids")
    return out


def gather_index(idx: np.ndarray, table: np.ndarray, what: str) -> np.ndarray:
    """``table[idx]`` for unsigned indices of 1 or 2 bytes (at most 256 entries for 1-byte
    ones): centroid indices into their table, in one compiled pass (16-entry tables of 1-, 2-
    and 4-byte items by pshufb). An index past the table raises ``FrameLayoutError``."""
    out = np.empty(idx.size, table.dtype)
    top = _native.gather_index(idx, table, out)
    if idx.size and top >= table.size:
        raise FrameLayoutError(f"{what} holds index {top} >= {table.size} centroids")
    return out


def gather_fields(packed: np.ndarray, bits: int, count: int, table: np.ndarray,
                  what: str) -> np.ndarray:
    """``table[unpack_fields(packed, bits, count, what)]`` in one pass, for fields of 1 to 16
    bits: centroid indices into their table. The same checks and messages as
    :func:`~._common.unpack_fields`, then an index past the table (``FrameLayoutError``)."""
    check_field_bytes(packed, bits, count, what)
    out = np.empty(count, table.dtype)
    top = _native.gather_fields(packed, bits, count, table, out)
    if top < 0:
        raise FrameLayoutError(f"{what}: {PADDING_BITS_SET}")
    if count and top >= table.size:
        raise FrameLayoutError(f"{what} holds index {top} >= {table.size} centroids")
    return out


def narrow_patterns(
    bits: np.ndarray, low_zeros: int = 0
) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]] | None:
    """``(narrow, widen)`` when the 32-bit patterns ``bits`` stand one to one, in the same
    order, for 16-bit ones: those that all end in 16 zero bits (float32 at bfloat16 precision:
    their top halves), or float32 values float16 holds exactly (at float16 precision, 13 zero
    bits: their float16 patterns, which order as float32's do, by sign and then magnitude).
    ``narrow``: the 16-bit patterns, shaped as ``bits``; ``widen``: 16-bit patterns back to
    32-bit ones. None for other patterns (the first 64 tell most). ``low_zeros``: how many
    zero bits every pattern is known to end in (not looked at again)."""
    if bits.dtype != np.uint32:
        return None
    flat = bits.reshape(-1)
    if low_zeros < 13 and (flat[:64] & 0x1FFF).any():  # most float32 tensors: one look
        return None
    if low_zeros >= 16 or not (flat & 0xFFFF).any():
        return (bits >> np.uint32(16)).astype(np.uint16), _from_top_halves
    if low_zeros < 13 and (flat & 0x1FFF).any():
        return None
    flat = np.ascontiguousarray(flat)
    half = np.empty(flat.size, np.uint16)
    if not _native.half_patterns(flat, half):
        return None
    return half.reshape(bits.shape), _from_half_patterns


def _from_top_halves(narrow: np.ndarray) -> np.ndarray:
    return narrow.astype(np.uint32) << np.uint32(16)


def _from_half_patterns(narrow: np.ndarray) -> np.ndarray:
    wide = np.empty(narrow.shape, np.uint32)
    _native.half_patterns(np.ascontiguousarray(narrow, np.uint16).reshape(-1), wide.reshape(-1))
    return wide
