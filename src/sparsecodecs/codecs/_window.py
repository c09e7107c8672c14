"""The ``window`` layout's pieces, shared by its codec and the products of
:mod:`sparsecodecs.compute`: the field a window codes, row-padded packing of small fields, and
:class:`WindowParts` (the validated sections of a frame, decoded to kept values on demand).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from ..registry import FLOAT_LAYOUTS, FrameLayoutError, bits_dtype, element_bits
from ..registry.dtypes import name_of
from ._common import narrowest_uint
from ._nm import code_reader
from ._parts import NMParts

__all__ = [
    "CODE_BITS",
    "ESCAPE",
    "PAIR_BITS",
    "WINDOW",
    "WindowParts",
    "escape_index_dtype",
    "pack_rows",
    "rest_values",
    "unpack_rows",
    "window_field",
]

#: Exponent codes 0..WINDOW-1 index the window; ESCAPE means field 0 (or an escape's field).
WINDOW = 7
ESCAPE = 7
CODE_BITS = 3
PAIR_BITS = 6


def escape_index_dtype(nvals: int) -> np.dtype[Any]:
    """Little-endian dtype of section ``escapes``: the narrowest that holds index ``nvals - 1``."""
    return narrowest_uint(max(nvals - 1, 0)).newbyteorder("<")


@lru_cache(maxsize=64)
def window_field(dtype: np.dtype[Any]) -> tuple[int, int, int]:
    """``(shift, width, element bits)`` of the field the window codes for ``dtype``.

    Floats: the exponent field, above the mantissa. Integers: the top 8 bits (all of them for 8-
    and 4-bit integers).
    """
    native = dtype.newbyteorder("=") if dtype.byteorder in "<>" else dtype
    bits = element_bits(native)
    layout = FLOAT_LAYOUTS.get(name_of(native))
    if layout is not None:
        exponent, mantissa = layout
        return mantissa, exponent, bits
    width = min(8, bits)
    return bits - width, width, bits


def pack_rows(fields: np.ndarray, bits: int) -> np.ndarray:
    """``(rows, k)`` fields of ``bits`` <= 8 bits, LSB first, each row padded to whole bytes."""
    rows, k = fields.shape
    k8 = -(-k // 8) * 8
    if k8 == k and fields.dtype == np.uint8:
        groups = np.ascontiguousarray(fields).reshape(-1, 8)
    else:
        padded = np.zeros((rows, k8), np.uint8)
        padded[:, :k] = fields
        groups = padded.reshape(-1, 8)
    wdt = np.dtype("<u4" if 8 * bits <= 32 else "<u8")  # 8 fields of a group in one word
    word = groups[:, 0].astype(wdt)
    for j in range(1, 8):
        word |= groups[:, j].astype(wdt) << wdt.type(bits * j)
    packed = word.view(np.uint8).reshape(-1, wdt.itemsize)[:, :bits]
    return np.ascontiguousarray(packed.reshape(rows, k8 // 8 * bits)[:, : -(-k * bits // 8)])


def unpack_rows(packed: np.ndarray, bits: int, k: int, what: str) -> np.ndarray:
    """Inverse of :func:`pack_rows` for ``(rows, row bytes)``; padding bits must be zero."""
    rows, nbytes = packed.shape
    k8 = -(-k // 8) * 8
    full = np.zeros((rows, k8 // 8 * bits), np.uint8)
    full[:, :nbytes] = packed
    words = np.zeros((rows * k8 // 8, 8), np.uint8)
    words[:, :bits] = full.reshape(-1, bits)
    w = words.view("<u8").reshape(-1, 1).astype(np.uint64)
    fields = ((w >> (np.arange(8, dtype=np.uint64) * np.uint64(bits))) & np.uint64((1 << bits) - 1))
    fields = fields.reshape(rows, k8)
    if fields[:, k:].any():
        raise FrameLayoutError(f"{what}: padding bits after a row's last field are not zero")
    return fields[:, :k].astype(np.uint8)


def rest_values(rest: np.ndarray, count: int, rest_bits: int) -> np.ndarray:
    """The ``count`` rest fields of section ``rest`` as uint64 (their top bits checked)."""
    nbytes = -(-rest_bits // 8)
    if nbytes == 0:
        return np.zeros(count, np.uint64)
    wide = np.zeros((count, 8), np.uint8)
    wide[:, :nbytes] = rest.reshape(count, nbytes)
    out = wide.view("<u8").reshape(-1).astype(np.uint64)
    if rest_bits < 64 and count and int(out.max()) >> rest_bits:
        raise FrameLayoutError(f"section 'rest' holds a value wider than {rest_bits} bits")
    return out


@dataclass(frozen=True)
class WindowParts:
    """A ``window`` frame's sections, size-checked, with the 2-D geometry (see the codec).

    The per-value checks (pattern codes, exponent codes, padding) happen where the values are
    read: in :meth:`values` and :meth:`group_codes`, or in the fused product's kernel."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    shift: int
    width: int
    nbits: int
    window: tuple[int, ...]
    pattern: np.ndarray
    exponents: np.ndarray
    rest: np.ndarray
    escapes: np.ndarray
    escaped: np.ndarray
    rows: int
    cols: int
    gpr: int
    fill: None = None

    @property
    def nvals(self) -> int:
        return self.rows * self.gpr * 2

    def group_codes(self) -> np.ndarray:
        """The 2:4 pattern code of every group (uint8, C order), validated."""
        rows, gpr = self.rows, self.gpr
        pairs = -(-gpr // 2)
        codes = unpack_rows(self.pattern.reshape(rows, -1) if rows else
                            self.pattern.reshape(0, 0), PAIR_BITS, pairs, "section 'pattern'")
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
        rows, nvals = self.rows, self.nvals
        codes = unpack_rows(self.exponents.reshape(rows, -1) if rows else
                            self.exponents.reshape(0, 0), CODE_BITS, 2 * self.gpr,
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
        rest = rest_values(self.rest, nvals, self.nbits - self.width)
        shift = np.uint64(self.shift)
        out = ((rest >> shift) << np.uint64(self.shift + self.width)) | (field << shift) | (
            rest & np.uint64((1 << self.shift) - 1))
        return out.astype(bits_dtype(self.dtype))

    def _native(self, kept: bool) -> tuple[np.ndarray, np.ndarray | None] | None:
        """The compiled decode (2- and 4-byte dtypes): the dense bits, or the kept values and
        the group codes; None where it does not apply."""
        udt = bits_dtype(self.dtype)
        if udt.itemsize not in (2, 4) or self.width > 8:
            return None
        from ..kernels import _native

        out = np.empty(self.nvals if kept else self.rows * self.cols, udt)
        codes = np.empty(self.rows * self.gpr, np.uint8) if kept else None
        rc = _native.window_decode(
            self.pattern, self.exponents, self.rest, self.escapes, self.escaped,
            np.array(self.window, np.uint8), self.rows, self.cols, self.shift, self.width,
            self.nbits - self.width, out, codes,
        )
        if rc == -1:
            raise FrameLayoutError("section 'values' holds a non-zero value in a padding slot")
        if rc:  # the same checks in numpy, for their message
            self.group_codes()
            self.values()
            raise FrameLayoutError("corrupt window sections")  # pragma: no cover
        return out, codes

    def nm_parts(self) -> NMParts:
        """The same weight as ``nm``'s parts (kept values decoded: half the dense size)."""
        if self.nvals == 0:  # no group (cols 0, or rows 0): however many rows, nothing to read
            packed, lut = code_reader(np.zeros(0, np.uint8), 6)
            return NMParts(2, 4, packed, lut, np.zeros(0, bits_dtype(self.dtype)))
        native = self._native(kept=True)
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
        native = self._native(kept=False)
        if native is None:
            return self.nm_parts().to_bits(shape)
        return native[0].reshape(shape)
