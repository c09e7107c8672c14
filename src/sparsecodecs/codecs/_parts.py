"""The validated pieces of a sparse frame, before they are scattered into a dense array.

A sparse codec's ``decode_bits`` is two steps: read and validate its sections into one of these
*parts*, then scatter the parts into the dense bit-pattern array (:meth:`to_bits`). The compute
module (:mod:`sparsecodecs.compute`) stops after the first step and multiplies by the kept
values directly, so a codec that exposes ``decode_parts(sections, info)`` gets zero-skipping
matrix products for free. Every array here is 1-D, of native byte order, and already checked by
the codec: kernels may trust indices, counts and pattern codes.

The sparse parts carry a ``fill``: ``None`` when the empty entries are bit pattern 0 (the common
case, and the only one the zero-skipping products handle), else the bit pattern of the empty
entries, one item for the whole array or one per row of the 2-D view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..kernels import _native as kn
from ..registry import FrameLayoutError, bits_dtype, decode_threads
from ._common import as_2d
from ._kernels import bitmask_decode, bitmask_scatter_fill, csr_dense, csr_scatter_fill
from ._nm import code_reader, scatter_groups
from ._window import CODE_BITS, ESCAPE, PAIR_BITS, WINDOW, rest_values, unpack_rows, window_field

__all__ = ["CompressedParts", "DenseParts", "MaskParts", "NMParts", "Parts", "WindowParts"]


@dataclass(frozen=True)
class DenseParts:
    """Every element's bit pattern, in C order (``size`` values)."""

    values: np.ndarray

    def to_bits(self, shape: tuple[int, ...]) -> np.ndarray:
        return self.values.reshape(shape)


@dataclass(frozen=True)
class MaskParts:
    """An LSB-first bit per element (``ceil(size / 8)`` bytes) and the non-fill values."""

    mask: np.ndarray
    values: np.ndarray
    fill: np.ndarray | None = None

    def to_bits(self, shape: tuple[int, ...]) -> np.ndarray:
        out = np.empty(math.prod(shape), self.values.dtype)  # np.prod: ~10 us on a tuple
        self.scatter_into(out, shape)
        return out.reshape(shape)

    def scatter_into(self, out: np.ndarray, shape: tuple[int, ...]) -> None:
        """:meth:`to_bits` into ``out`` (1-D, every element of ``shape``, the values' dtype)."""
        if self.fill is None:
            bitmask_decode(self.mask, self.values, out, decode_threads())
        else:
            cols = as_2d(shape)[1]
            bitmask_scatter_fill(self.mask, self.values, out, self.fill, cols)


@dataclass(frozen=True)
class NMParts:
    """N:M groups along the last axis: group codes and ``n`` value slots per group.

    The code of group ``g`` is ``lut[packed[g // k], g % k]`` with ``k = lut.shape[1]`` (see
    :func:`sparsecodecs.codecs._nm.scatter_groups`); its slots sit at the ascending positions
    ``nm_tables(n, m).positions[code]`` of the group. Slots past the end of a row (padding) must
    hold the fill (zeros); :meth:`to_bits` checks that.
    """

    n: int
    m: int
    packed: np.ndarray
    lut: np.ndarray
    values: np.ndarray
    fill: np.ndarray | None = None

    def to_bits(self, shape: tuple[int, ...]) -> np.ndarray:
        return scatter_groups(
            self.packed, self.lut, self.values, shape, self.n, self.m, fill=self.fill
        )


@dataclass(frozen=True)
class CompressedParts:
    """scipy.sparse's ``data``, ``indices`` and ``indptr`` of the 2-D view.

    ``by_columns`` False: CSR (``indptr`` runs over rows, ``indices`` are columns); True: CSC.
    """

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    by_columns: bool
    fill: np.ndarray | None = None

    def to_bits(self, shape: tuple[int, ...]) -> np.ndarray:
        rows, cols = as_2d(shape)
        major, minor = (cols, rows) if self.by_columns else (rows, cols)
        if self.fill is None:  # onto zeros, CSC's columns written where they go
            out = np.zeros(major * minor, self.data.dtype)
            csr_dense(self.indptr, self.indices, self.data, out, major, minor, self.by_columns,
                      check=False)
            return out.reshape(shape)
        out = np.empty(major * minor, self.data.dtype)
        csr_scatter_fill(
            self.indptr, self.indices, self.data, out, major, minor, self.fill, self.by_columns,
        )
        if self.by_columns:
            out = np.ascontiguousarray(out.reshape(major, minor).T)
        return out.reshape(shape)


@dataclass(frozen=True)
class WindowParts:
    """A ``window`` frame's sections, size-checked (see :mod:`sparsecodecs.codecs.window`):
    ``window`` the field values of codes 0, 1, ...; ``escapes`` ascending kept-value indices
    (int64) and ``escaped`` their fields. Geometry and field come from ``shape`` and ``dtype``.

    The per-value checks (pattern codes, exponent codes, padding) happen where the values are
    read: in :meth:`values` and :meth:`group_codes`, or in the fused product's kernel."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    window: tuple[int, ...]
    pattern: np.ndarray
    exponents: np.ndarray
    rest: np.ndarray
    escapes: np.ndarray
    escaped: np.ndarray
    fill: None = None

    @property
    def rows(self) -> int:
        return as_2d(self.shape)[0]

    @property
    def cols(self) -> int:
        return as_2d(self.shape)[1]

    @property
    def gpr(self) -> int:
        """Groups of 4 per row."""
        return -(-self.cols // 4)

    @property
    def nvals(self) -> int:
        return self.rows * self.gpr * 2

    @property
    def field(self) -> tuple[int, int, int]:
        """``(shift, width, element bits)`` of the window's field (``window_field``)."""
        return window_field(self.dtype)

    def group_codes(self) -> np.ndarray:
        """The 2:4 pattern code of every group (uint8, C order), validated."""
        rows, gpr = self.rows, self.gpr
        pairs = -(-gpr // 2)
        codes = unpack_rows(self.pattern.reshape(rows, -1), PAIR_BITS, pairs, "section 'pattern'")
        if codes.size and int(codes.max()) >= 36:
            raise FrameLayoutError(
                f"section 'pattern' holds pair code {int(codes.max())}; pair codes are 0..35"
            )
        groups = np.empty((rows, 2 * pairs), np.uint8)
        groups[:, 0::2] = codes // 6
        groups[:, 1::2] = codes % 6
        if gpr % 2 and groups[:, -1].any():
            raise FrameLayoutError(
                "section 'pattern': the missing last group of a row has a code other than 0"
            )
        return np.ascontiguousarray(groups[:, :gpr]).reshape(-1)

    def values(self) -> np.ndarray:
        """The kept values' bit patterns (``bits_dtype``; 2 per group), validated."""
        shift, width, nbits = self.field
        codes = unpack_rows(self.exponents.reshape(self.rows, -1), CODE_BITS, 2 * self.gpr,
                            "section 'exponents'").reshape(-1)
        ntab = len(self.window)
        if ntab < WINDOW and codes.size and ((codes >= ntab) & (codes != ESCAPE)).any():
            raise FrameLayoutError(
                f"section 'exponents' holds a code the window of {ntab} values does not have"
            )
        table = np.zeros(8, np.uint64)
        table[:ntab] = self.window
        field = table[codes]
        if self.escapes.size:
            if (codes[self.escapes] != ESCAPE).any():
                raise FrameLayoutError(
                    f"section 'escapes' lists a value whose exponent code is not {ESCAPE}"
                )
            field[self.escapes] = self.escaped
        rest = rest_values(self.rest, self.nvals, nbits - width)
        out = ((rest >> np.uint64(shift)) << np.uint64(shift + width)) | (
            field << np.uint64(shift)) | (rest & np.uint64((1 << shift) - 1))
        return out.astype(bits_dtype(self.dtype))

    def _native(self, kept: bool, threads: int) -> tuple[np.ndarray, np.ndarray | None] | None:
        """The compiled decode (2- and 4-byte dtypes) on up to ``threads`` threads: the dense
        bits, or the kept values and the group codes; None where it does not apply."""
        udt = bits_dtype(self.dtype)
        shift, width, nbits = self.field
        if udt.itemsize not in (2, 4) or width > 8:
            return None
        out = np.empty(self.nvals if kept else self.rows * self.cols, udt)
        codes = np.empty(self.rows * self.gpr, np.uint8) if kept else None
        rc = kn.window_decode(
            self.pattern, self.exponents, self.rest, self.escapes, self.escaped,
            np.array(self.window, np.uint8), self.rows, self.cols, shift, width, nbits - width,
            out, codes, threads,
        )
        if rc == -1:
            raise FrameLayoutError("section 'values' holds a non-zero value in a padding slot")
        if rc:  # the same checks in numpy, for their message
            self.group_codes()
            self.values()
            raise FrameLayoutError("corrupt window sections")  # pragma: no cover
        return out, codes

    def nm_parts(self, threads: int | None = None) -> NMParts:
        """The same weight as ``nm``'s parts (kept values decoded: half the dense size), on
        ``threads`` threads (None: :func:`~sparsecodecs.registry.decode_threads`)."""
        if self.nvals == 0:  # no group (cols 0, or rows 0): however many rows, nothing to read
            packed, lut = code_reader(np.zeros(0, np.uint8), 6)
            return NMParts(2, 4, packed, lut, np.zeros(0, bits_dtype(self.dtype)))
        native = self._native(True, decode_threads() if threads is None else threads)
        if native is not None:
            values, codes = native
            assert codes is not None  # kept=True returns them
            packed, lut = code_reader(codes, 6)
            return NMParts(2, 4, packed, lut, values)
        packed, lut = code_reader(self.group_codes(), 6)
        return NMParts(2, 4, packed, lut, self.values())

    def to_bits(self, shape: tuple[int, ...]) -> np.ndarray:
        if self.nvals == 0:
            return np.zeros(shape, bits_dtype(self.dtype))
        native = self._native(False, decode_threads())
        if native is None:
            return self.nm_parts().to_bits(shape)
        return native[0].reshape(shape)


Parts = DenseParts | MaskParts | NMParts | CompressedParts | WindowParts
