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

from dataclasses import dataclass

import numpy as np

from ..registry import decode_threads

__all__ = ["CompressedParts", "DenseParts", "MaskParts", "NMParts", "Parts"]


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
        from ._kernels import bitmask_decode, bitmask_scatter_fill

        out = np.empty(int(np.prod(shape, dtype=np.int64)), self.values.dtype)
        if self.fill is None:
            bitmask_decode(self.mask, self.values, out, decode_threads())
        else:
            from ._common import as_2d

            cols = as_2d(shape)[1]
            bitmask_scatter_fill(self.mask, self.values, out, self.fill, cols)
        return out.reshape(shape)


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
        from ._nm import scatter_groups

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
        from ._common import as_2d
        from ._kernels import csr_scatter, csr_scatter_fill

        rows, cols = as_2d(shape)
        major, minor = (cols, rows) if self.by_columns else (rows, cols)
        out = np.empty(major * minor, self.data.dtype)
        if self.fill is None:
            csr_scatter(self.indptr, self.indices, self.data, out, major, minor)
        else:
            csr_scatter_fill(
                self.indptr, self.indices, self.data, out, major, minor, self.fill,
                self.by_columns,
            )
        if self.by_columns:
            out = np.ascontiguousarray(out.reshape(major, minor).T)
        return out.reshape(shape)


Parts = DenseParts | MaskParts | NMParts | CompressedParts  # and _window.WindowParts
