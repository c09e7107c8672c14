"""``nm``: N:M structured sparsity along the last axis (2:4 by default)."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import combinations
from typing import Any

import numpy as np

from ..registry import (
    Codec,
    CodecConfigError,
    Encoded,
    FrameInfo,
    FrameLayoutError,
    PatternError,
    Section,
    SectionReader,
    check_choice,
    check_int,
    storage_nbytes,
    values_section,
)
from ._common import as_2d, builtin, pack_fields, unpack_fields
from ._fill import (
    FillSpec,
    check_fill,
    fill_frame_config,
    fill_get_config,
    fill_sections,
    read_fill,
    resolve_fill,
)
from ._parts import NMParts

__all__ = [
    "NM",
    "NMTables",
    "code_reader",
    "geometry",
    "nm_tables",
    "pack_codes",
    "packed_code_reader",
    "pattern_packing",
    "scatter_groups",
    "split_groups",
]

METADATA = ("pattern", "index", "bitmask")
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

    @property
    def code_of_mask(self) -> np.ndarray:
        """(2**m,) int32: pattern code for any non-zero mask with <= n bits (filled), else -1."""
        return np.where(self.canon >= 0, self.code_of[np.maximum(self.canon, 0)], -1).astype(
            np.int32)

    @property
    def code_masks(self) -> np.ndarray:
        """(C,) int64: the m-bit mask of each pattern code."""
        return (np.int64(1) << self.positions.astype(np.int64)).sum(axis=1)

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
    """
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
    nwords = -(-codes.size // k)
    padded = np.zeros(nwords * k, np.uint64)
    padded[: codes.size] = codes
    digits = padded.reshape(nwords, k)
    acc = np.zeros(nwords, np.uint64)
    for j in range(k - 1, -1, -1):
        acc = acc * np.uint64(ncodes) + digits[:, j]
    return acc.astype(f"<u{word // 8}")


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
    2-D view. Raises PatternError naming the first group with more than ``n`` other entries.
    """
    from ._kernels import nm_split, nm_split_fill

    tables = nm_tables(n, m)
    rows, cols, gpr, ngroups = geometry(bits.shape, m)
    codes = np.empty(ngroups, np.uint16)
    values = np.empty(ngroups * n, bits.dtype)
    if fill is None:
        bad = nm_split(bits.reshape(-1), rows, cols, m, tables.code_of_mask, tables.positions,
                       codes, values)
    else:
        bad = nm_split_fill(bits.reshape(-1), rows, cols, m, tables.code_of_mask,
                            tables.positions, codes, values, fill)
    if bad >= 0:
        row, q = divmod(bad, gpr)
        where = np.unravel_index(row, bits.shape[:-1]) if bits.ndim > 1 else ()
        x = bits.reshape(rows, cols)
        empty = 0 if fill is None else fill[row if fill.size > 1 else 0]
        group = x[row, q * m : q * m + m]
        violations = _count_violations(x, n, m, fill)
        what = "non-zeros" if fill is None else f"entries other than the fill {int(empty):#x}"
        raise PatternError(
            f"input is not {n}:{m} sparse along the last axis: group {bad} (row index "
            f"{tuple(int(i) for i in where)}, columns {q * m}:{min(q * m + m, cols)}) has "
            f"{int(np.count_nonzero(group != empty))} {what}, more than n={n}; "
            f"{violations} of {ngroups} groups violate the pattern. Prune first with "
            "sparsecodecs.transforms.prune, or use 'bitmask' or 'hybrid'"
        )
    return codes, values


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
        if words.size and int(words.max()) >= top:
            raise FrameLayoutError(
                f"section 'pattern' holds a byte >= {top}, which is no valid pattern word"
            )
        _unpack_codes(words[-1:], ncodes, ngroups - (words.size - 1) * k)
        return words, _byte_lut(ncodes, k)
    return _unpack_codes(words, ncodes, ngroups), _identity_lut(ncodes)


def code_reader(codes: np.ndarray, ncodes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(packed, lut)`` for :func:`scatter_groups` from one code per group (validated)."""
    if codes.size and int(codes.max()) >= ncodes:
        raise FrameLayoutError(f"pattern code {int(codes.max())} >= {ncodes} patterns")
    return codes, _identity_lut(ncodes)


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
    from . import _kernels

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
    if cols % m == 0 and group_bytes & (group_bytes - 1) == 0 and _LITTLE:
        # Whole groups map to whole words: assemble each group in registers.
        word_of, shifts = _compose_tables(n, m, udt.itemsize)
        wdt = np.dtype(f"u{min(group_bytes, 8)}")
        out = np.empty(rows * cols * udt.itemsize // wdt.itemsize, wdt)
        if (n, m, lut.shape[1], out.size) == (2, 4, 3, ngroups):
            _kernels.nm24_compose(packed, lut, ngroups, shifts, values, out)
        elif (n, lut.shape[1], out.size) == (2, 1, ngroups):
            _kernels.nm2_compose_codes(packed, shifts, values, out)
        else:
            _kernels.nm_compose(packed, lut, ngroups, word_of, shifts, values, out)
        return out.view(udt).reshape(shape)
    out = np.empty(rows * cols, udt)
    if _kernels.nm_scatter(packed, lut, tables.positions, values, out, rows, cols, m):
        raise FrameLayoutError("section 'values' holds a non-zero value in a padding slot")
    return out.reshape(shape)


@builtin
@dataclass(frozen=True, kw_only=True)
class NM(Codec):
    """N:M structured sparsity: exactly ``n`` value slots per group of ``m`` along the last axis.

    Sections: ``values`` (``groups * n * itemsize`` bytes, 4-bit dtypes packed two per byte:
    each group's kept slots in position order; a group with fewer than ``n`` non-zeros keeps its
    lowest zero positions too) and one metadata section (role ``index``) chosen by ``metadata``:

    * ``"pattern"`` (default): the group's pattern as one of C(m, n) codes, packed as base-C
      digits into words (2:4: 6 codes, 3 per byte, 2.67 bits per group);
    * ``"index"``: ceil(log2 m) bits per kept value, NVIDIA's sparse-tensor-core layout;
    * ``"bitmask"``: m bits per group, the compressed-tensors 2:4 layout.

    A last axis that is not a multiple of ``m`` is padded with zeros to whole groups; the padding
    is implied by the shape. Theoretical size: the ``values`` section (kept values only).

    ``fill`` is the value that counts as empty (see :mod:`._fill`): with a non-zero fill, a
    group may hold at most ``n`` entries other than its row's fill, the slots kept for empty
    positions and the padding hold the fill, and the frame gets a ``fill`` section.
    """

    codec_id = "nm"
    description = "N:M structured sparsity (2:4 default): n values per m + pattern metadata"
    aliases = {"2:4": {"n": 2, "m": 4}, "bitmask-2:4": {"n": 2, "m": 4, "metadata": "bitmask"}}

    n: int = 2
    m: int = 4
    metadata: str = "pattern"
    fill: FillSpec = field(default="zero", metadata={"omit_default": True})

    def __post_init__(self) -> None:
        object.__setattr__(self, "fill", check_fill(self.fill))
        check_int("m", self.m, 2, MAX_M)
        check_int("n", self.n, 1, None)
        if self.n >= self.m:
            raise CodecConfigError(
                f"n must be < m, got n={self.n}, m={self.m} (n = m is dense: use 'raw')"
            )
        check_choice("metadata", self.metadata, METADATA)

    @property
    def nm_pattern(self) -> tuple[int, int]:
        return (self.n, self.m)

    def get_config(self) -> dict[str, Any]:
        return fill_get_config(super().get_config())

    def encode_bits(self, bits: np.ndarray, dtype: np.dtype[Any]) -> Encoded:
        tables = nm_tables(self.n, self.m)
        fill = resolve_fill(self.fill, bits, dtype)
        codes, values = split_groups(bits, self.n, self.m, fill)
        if self.metadata == "pattern":
            meta = pack_codes(codes, tables.ncodes)
            name = "pattern"
        elif self.metadata == "index":
            meta = pack_fields(tables.positions[codes].reshape(-1), tables.index_bits)
            name = "index"
        else:
            meta = pack_fields(tables.code_masks[codes], self.m)
            name = "mask"
        fsec, fmeta = fill_sections(fill, geometry(bits.shape, self.m)[0])
        return Encoded(
            [values_section("values", values, dtype), Section(name, "index", meta), *fsec],
            meta=fmeta, config=fill_frame_config(self),
        )

    def _decode_codes(self, sections: SectionReader, ngroups: int) -> np.ndarray:
        """Group codes from "index" or "bitmask" metadata (validated)."""
        tables = nm_tables(self.n, self.m)
        if self.metadata == "index":
            raw = sections.array("index", np.uint8)
            pos = unpack_fields(raw, tables.index_bits, ngroups * self.n, "section 'index'")
            pos = pos.reshape(ngroups, self.n).astype(np.int64)
            if (pos >= self.m).any() or (np.diff(pos, axis=1) <= 0).any():
                raise FrameLayoutError(
                    f"section 'index' has positions that are not {self.n} distinct ascending "
                    f"values below m={self.m}"
                )
            masks = (np.int64(1) << pos).sum(axis=1)
        else:
            raw = sections.array("mask", np.uint8)
            masks = unpack_fields(raw, self.m, ngroups, "section 'mask'").astype(np.int64)
        codes = tables.code_of[masks]
        if (codes < 0).any():
            raise FrameLayoutError(
                f"section 'mask' has a group without exactly n={self.n} of m={self.m} bits set"
            )
        return codes.astype(np.uint16)

    def decode_bits(self, sections: SectionReader, info: FrameInfo) -> np.ndarray:
        return self.decode_parts(sections, info).to_bits(info.shape)

    def decode_parts(self, sections: SectionReader, info: FrameInfo) -> NMParts:
        """The validated group codes and value slots (see :mod:`._parts`)."""
        tables = nm_tables(self.n, self.m)
        ngroups = geometry(info.shape, self.m)[3]
        values = sections.values("values", info.dtype, ngroups * self.n)
        if self.metadata == "pattern":
            word, k = pattern_packing(tables.ncodes)
            words = sections.array("pattern", f"<u{word // 8}", -(-ngroups // k))
            packed, lut = packed_code_reader(words, tables.ncodes, ngroups)
        else:
            packed, lut = code_reader(self._decode_codes(sections, ngroups), tables.ncodes)
        return NMParts(self.n, self.m, packed, lut, values, read_fill(sections, info))

    def theoretical_nbytes(self, info: FrameInfo) -> int:
        return storage_nbytes(info.dtype, geometry(info.shape, self.m)[3] * self.n)
