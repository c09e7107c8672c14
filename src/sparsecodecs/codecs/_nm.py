"""N:M primitives shared by the ``nm`` and ``hybrid`` codecs (and the products of
:mod:`sparsecodecs.compute`): the pattern tables of an N:M layout, the packing of pattern codes,
the geometry of the groups, splitting an array into groups and scattering them back.

No codec's module: codecs import these from here, never from one another (as scipy.sparse
keeps what CSR and CSC share in ``_compressed.py``).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from functools import cached_property, lru_cache
from itertools import combinations

import numpy as np

from ..registry import FrameLayoutError, PatternError, decode_threads
from . import _kernels
from ._common import as_2d

__all__ = [
    "MAX_M",
    "NMTables",
    "code_reader",
    "geometry",
    "nm_tables",
    "pack_codes",
    "packed_code_reader",
    "pattern_packing",
    "scatter_groups",
    "split_groups",
    "try_split_groups",
]

MAX_M = 16


@dataclass(frozen=True)
class NMTables:
    """Lookup tables for one (n, m)."""

    n: int
    m: int
    positions: np.ndarray  # (C, n) uint8: the kept positions of each pattern code, ascending
    code_of: np.ndarray  # (2**m,) int32: pattern code of a mask with exactly n bits, else -1
    canon: np.ndarray  # (2**m,) int32: mask filled up to n bits with its lowest zeros; -1 if > n
    index_bits: int  # ceil(log2 m): bits per kept position in "index" metadata

    @cached_property
    def code_of_mask(self) -> np.ndarray:
        """(2**m,) int32: pattern code for any non-zero mask with <= n bits (filled), else -1.
        Made once per tables (every N:M split reads it: 3.6 us made each time). Read-only."""
        table = np.where(self.canon >= 0, self.code_of[np.maximum(self.canon, 0)], -1).astype(
            np.int32)
        table.flags.writeable = False
        return table

    @cached_property
    def code_masks(self) -> np.ndarray:
        """(C,) int64: the m-bit mask of each pattern code (made once per tables; read-only)."""
        masks = (np.int64(1) << self.positions.astype(np.int64)).sum(axis=1)
        masks.flags.writeable = False
        return masks

    @property
    def ncodes(self) -> int:
        return int(self.positions.shape[0])


@lru_cache(maxsize=32)
def nm_tables(n: int, m: int) -> NMTables:
    """The pattern tables for N:M; patterns are numbered in lexicographic order."""
    combos = list(combinations(range(m), n))
    positions = np.array(combos, dtype=np.uint8).reshape(len(combos), n)
    code_of = np.full(1 << m, -1, np.int32)
    for code, combo in enumerate(combos):
        code_of[sum(1 << p for p in combo)] = code
    canon = np.full(1 << m, -1, np.int32)
    for mask in range(1 << m):
        missing = n - bin(mask).count("1")
        if missing < 0:
            continue
        filled = mask
        for p in range(m):
            if missing == 0:
                break
            if not (filled >> p) & 1:
                filled |= 1 << p
                missing -= 1
        canon[mask] = filled
    return NMTables(n, m, positions, code_of, canon, max(1, math.ceil(math.log2(m))))


@lru_cache(maxsize=64)
def pattern_packing(ncodes: int) -> tuple[int, int]:
    """(word_bits, codes_per_word) that packs codes of a ``ncodes`` alphabet most densely.

    Codes are packed as base-``ncodes`` digits into little-endian words of 8, 16, 32 or 64 bits;
    the densest choice wins, ties going to the smaller word (2:4: 3 codes per byte).
    Raises PatternError for an alphabet of fewer than two codes (n:m with n >= m).
    """
    if ncodes < 2:
        raise PatternError(f"an N:M pattern alphabet needs at least 2 codes, got {ncodes}")
    best = (8, 1)
    best_bits = float("inf")
    for word in (8, 16, 32, 64):
        k = 0
        while ncodes ** (k + 1) <= 1 << word:
            k += 1
        if k and word / k < best_bits - 1e-12:
            best, best_bits = (word, k), word / k
    return best


_LITTLE = sys.byteorder == "little"


@lru_cache(maxsize=64)
def _compose_tables(n: int, m: int, itemsize: int) -> tuple[np.ndarray, np.ndarray]:
    """(word_of, shifts): where each kept value of each pattern lands in its group's words."""
    bit = nm_tables(n, m).positions.astype(np.int64) * itemsize * 8
    return (bit // 64).astype(np.int64), (bit % 64).astype(np.uint64)


@lru_cache(maxsize=32)
def _identity_lut(ncodes: int) -> np.ndarray:
    return np.arange(ncodes, dtype=np.uint16).reshape(ncodes, 1)


@lru_cache(maxsize=32)
def _byte_lut(ncodes: int, k: int) -> np.ndarray:
    """lut[b, j] = j-th base-``ncodes`` digit of byte b (only for 8-bit words)."""
    b = np.arange(256, dtype=np.int64)
    return np.stack([(b // ncodes**j) % ncodes for j in range(k)], axis=1).astype(np.uint16)


def pack_codes(codes: np.ndarray, ncodes: int) -> np.ndarray:
    """Pattern codes packed as base-``ncodes`` digits into words (see :func:`pattern_packing`)."""
    word, k = pattern_packing(ncodes)
    out = np.empty(-(-codes.size // k), f"u{word // 8}")  # native words, as the kernel writes
    if not _kernels.nm_pack_codes(np.ascontiguousarray(codes, np.uint16), ncodes, k, out):
        raise PatternError(f"pattern codes must be below ncodes={ncodes}, got {int(codes.max())}")
    return out.astype(f"<u{word // 8}", copy=False)


def _unpack_codes(words: np.ndarray, ncodes: int, count: int) -> np.ndarray:
    _, k = pattern_packing(ncodes)
    top = ncodes**k
    if words.size and int(words.max()) >= top:
        raise FrameLayoutError(
            f"section 'pattern' holds a word >= {top}, which is no valid pattern word"
        )
    w = words.astype(np.uint64)
    digits = np.empty((words.size, k), np.uint16)
    for j in range(k):
        digits[:, j] = w % np.uint64(ncodes)
        w //= np.uint64(ncodes)
    codes = digits.reshape(-1)
    if codes[count:].any():
        raise FrameLayoutError("section 'pattern' has non-zero codes after the last group")
    return codes[:count]


def geometry(shape: tuple[int, ...], m: int) -> tuple[int, int, int, int]:
    """(rows, cols, groups per row, groups) of the N:M view of ``shape``."""
    rows, cols = as_2d(shape)
    gpr = -(-cols // m)
    return rows, cols, gpr, rows * gpr


def split_groups(
    bits: np.ndarray, n: int, m: int, fill: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(pattern codes, kept values) of an N:M-sparse bit-pattern array along its last axis.

    ``fill`` (None: 0) is the bit pattern that counts as empty, one item or one per row of the
    2-D view. Raises PatternError naming the first group with more than ``n`` other entries
    and how many groups violate the pattern (a pass over the whole array: a planner that only
    asks whether N:M holds calls :func:`try_split_groups`).
    """
    codes, values, bad = _split(bits, n, m, fill)
    if bad >= 0:
        rows, cols, gpr, ngroups = geometry(bits.shape, m)
        row, q = divmod(bad, gpr)
        where = np.unravel_index(row, bits.shape[:-1]) if bits.ndim > 1 else ()
        x = bits.reshape(rows, cols)
        empty = 0 if fill is None else fill[row if fill.size > 1 else 0]
        group = x[row, q * m : q * m + m]
        what = "non-zeros" if fill is None else f"entries other than the fill {int(empty):#x}"
        raise PatternError(
            f"input is not {n}:{m} sparse along the last axis: group {bad} (row index "
            f"{tuple(int(i) for i in where)}, columns {q * m}:{min(q * m + m, cols)}) has "
            f"{int(np.count_nonzero(group != empty))} {what}, more than n={n}; "
            f"{_count_violations(x, n, m, fill)} of {ngroups} groups violate the pattern. "
            "Prune first with sparsecodecs.transforms.prune, or use 'bitmask' or 'hybrid'"
        )
    return codes, values


def try_split_groups(
    bits: np.ndarray, n: int, m: int, fill: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`split_groups`, or None where it would raise PatternError: for a planner, which
    only asks whether N:M holds (no message built: 7 us an N:M attempt on unstructured
    weights)."""
    codes, values, bad = _split(bits, n, m, fill)
    return None if bad >= 0 else (codes, values)


def _split(
    bits: np.ndarray, n: int, m: int, fill: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, int]:
    """(codes, values, the first group breaking the pattern or -1) of :func:`split_groups`."""
    tables = nm_tables(n, m)
    rows, cols, _, ngroups = geometry(bits.shape, m)
    codes = np.empty(ngroups, np.uint16)
    values = np.empty(ngroups * n, bits.dtype)
    if fill is None:
        bad = _kernels.nm_split(bits.reshape(-1), rows, cols, m, tables.code_of_mask,
                                tables.positions, codes, values)
    else:
        bad = _kernels.nm_split_fill(bits.reshape(-1), rows, cols, m, tables.code_of_mask,
                                     tables.positions, codes, values, fill)
    return codes, values, bad


def _count_violations(x: np.ndarray, n: int, m: int, fill: np.ndarray | None = None) -> int:
    pad = -x.shape[1] % m
    kept = x != 0 if fill is None else x != (fill[:, None] if fill.size > 1 else fill[0])
    nonzero = np.pad(kept, ((0, 0), (0, pad))).reshape(-1, m)
    return int((nonzero.sum(axis=1) > n).sum())


def packed_code_reader(
    words: np.ndarray, ncodes: int, ngroups: int
) -> tuple[np.ndarray, np.ndarray]:
    """Validate packed pattern words; return ``(packed, lut)`` for :func:`scatter_groups`."""
    word, k = pattern_packing(ncodes)
    if word == 8:
        top = ncodes**k
        # (a few hundred bytes: max of their bytes, ~3x cheaper than numpy's reduction)
        if words.size and int(max(words.tobytes()) if words.size <= 512 else words.max()) >= top:
            raise FrameLayoutError(
                f"section 'pattern' holds a byte >= {top}, which is no valid pattern word"
            )
        # the last word's digits past the last group must be 0: they are the word // ncodes**used
        used = ngroups - (words.size - 1) * k
        if words.size and 0 <= used < k and int(words[-1]) // ncodes**used:
            raise FrameLayoutError("section 'pattern' has non-zero codes after the last group")
        return words, _byte_lut(ncodes, k)
    return _unpack_codes(words, ncodes, ngroups), _identity_lut(ncodes)


def code_reader(codes: np.ndarray, ncodes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(packed, lut)`` for :func:`scatter_groups` from one code per group (validated)."""
    if codes.size and int(codes.max()) >= ncodes:
        raise FrameLayoutError(f"pattern code {int(codes.max())} >= {ncodes} patterns")
    return codes, _identity_lut(ncodes)


def two_four_codes(mask: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``(packed, lut)`` of 2:4 groups for :class:`~._parts.NMParts` from an LSB-first bitmask
    whose every 4-bit group keeps exactly two (the first ``groups``), or None if one does not:
    the same weight, the kept values in the same order (the compiled ``mask_codes24``)."""
    codes = np.empty(groups, np.uint8)
    if not _kernels.mask_codes24(mask, groups, codes):
        return None
    return codes, _identity_lut(6)


def scatter_groups(
    packed: np.ndarray,
    lut: np.ndarray,
    values: np.ndarray,
    shape: tuple[int, ...],
    n: int,
    m: int,
    fill: np.ndarray | None = None,
) -> np.ndarray:
    """The dense bit-pattern array of ``shape`` from group codes and kept values.

    ``fill`` (None: 0) is what the unkept positions hold, one item or one per row.
    """
    tables = nm_tables(n, m)
    rows, cols, _, ngroups = geometry(shape, m)
    udt = values.dtype
    if ngroups == 0:  # no element; but rows may be huge when cols is 0: loop over none of them
        return np.zeros(shape, udt)
    if fill is not None:
        out = np.empty(rows * cols, udt)
        if _kernels.nm_scatter_fill(packed, lut, tables.positions, values, out, rows, cols, m,
                                    fill):
            raise FrameLayoutError(
                "section 'values' holds a value other than the fill in a padding slot"
            )
        return out.reshape(shape)
    group_bytes = m * udt.itemsize
    if group_bytes & (group_bytes - 1) == 0 and _LITTLE:
        # Whole groups map to whole words: assemble each group in registers.
        word_of, shifts = _compose_tables(n, m, udt.itemsize)
        wdt = np.dtype(f"u{min(group_bytes, 8)}")
        out = np.empty(ngroups * group_bytes // wdt.itemsize, wdt)
        if (n, m, lut.shape[1], out.size) == (2, 4, 3, ngroups):
            _kernels.nm24_compose(packed, lut, ngroups, shifts, values, out, decode_threads())
        elif (n, lut.shape[1], out.size) == (2, 1, ngroups):
            _kernels.nm2_compose_codes(packed, shifts, values, out)
        else:
            _kernels.nm_compose(packed, lut, ngroups, word_of, shifts, values, out)
        if cols % m == 0:
            return out.view(udt).reshape(shape)
        # Rows of whole groups, padded past cols: the padding slots must be empty, then the
        # rows are cut to cols (a copy; 7x faster than scattering group by group on 97x1531;
        # compiled: numpy's strided copy took ~4.7 ns a row, 29 of a 64x32x3x3 decode's 105 us)
        cut = np.empty(rows * cols, udt)
        if _kernels.cut_rows(out.view(np.uint8), rows, ngroups // rows * group_bytes,
                             cols * udt.itemsize, cut.view(np.uint8)):
            raise FrameLayoutError("section 'values' holds a non-zero value in a padding slot")
        return cut.reshape(shape)
    out = np.empty(rows * cols, udt)
    if _kernels.nm_scatter(packed, lut, tables.positions, values, out, rows, cols, m):
        raise FrameLayoutError("section 'values' holds a non-zero value in a padding slot")
    return out.reshape(shape)
