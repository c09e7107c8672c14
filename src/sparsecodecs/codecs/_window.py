"""The ``window`` layout's pieces, shared by its codec and its parts
(:class:`~._parts.WindowParts`): the field a window codes, row-padded packing of small fields,
and the dtypes of the escape sections.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from ..kernels import _native as kn
from ..registry import FLOAT_LAYOUTS, FrameLayoutError, element_bits
from ..registry.dtypes import name_of
from ._common import narrowest_uint, unpack_fields

__all__ = [
    "CODE_BITS",
    "ESCAPE",
    "PAIR_BITS",
    "WINDOW",
    "escape_index_dtype",
    "escaped_dtype",
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


def escaped_dtype(width: int) -> np.dtype[Any]:
    """Dtype of section ``escaped``: uint8 for fields of up to 8 bits, else little-endian uint16."""
    return np.dtype("<u1" if width <= 8 else "<u2")


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
    """``(rows, k)`` codes of ``bits`` (3 or 6: the window's exponent and pair codes) bits, LSB
    first, each row padded to whole bytes, in one compiled pass (``window_pack``): what
    :func:`~._common.pack_fields` gives each row padded to a multiple of 8 fields, trimmed."""
    if bits not in (CODE_BITS, PAIR_BITS):
        raise ValueError(f"pack_rows packs {CODE_BITS}- or {PAIR_BITS}-bit codes, not {bits}")
    rows, k = fields.shape
    nbytes = -(-k * bits // 8)
    out = np.empty(rows * nbytes, np.uint8)
    if kn.window_pack(np.ascontiguousarray(fields, np.uint8).reshape(-1), rows, k, bits, out):
        raise ValueError(f"a field is wider than {bits} bits")
    return out.reshape(rows, nbytes)


def unpack_rows(packed: np.ndarray, bits: int, k: int, what: str) -> np.ndarray:
    """Inverse of :func:`pack_rows` for ``(rows, row bytes)``; padding bits must be zero."""
    rows, nbytes = packed.shape
    k8 = -(-k // 8) * 8
    full = np.zeros((rows, k8 // 8 * bits), np.uint8)
    full[:, :nbytes] = packed
    fields = unpack_fields(full.reshape(-1), bits, rows * k8, what).reshape(rows, k8)
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
