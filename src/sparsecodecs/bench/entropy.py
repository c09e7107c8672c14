"""Order-0 entropy bounds: how small a cell could get without modelling context.

The bound of a tensor is ``layout + values`` bits:

* layout, where the non-zeros are. No zero: 0 bits. N:M along the last axis (2:4 by default; a
  last group shorter than m is padded with zeros): ``H0(group patterns) * groups``, the pattern
  of a group being its m-bit non-zero mask. Otherwise: the binary entropy of the non-zero mask
  times the number of elements.
* values, the non-zero values (non-zero by bit pattern, as the codecs see them). Floats: each
  value's bits split into the exponent field and the sign+mantissa field,
  ``H0(exponent) + H0(sign+mantissa)`` per value, a sign+mantissa field wider than 16 bits split
  into byte planes whose H0 are summed (layouts from
  :data:`sparsecodecs.registry.FLOAT_LAYOUTS`). Integers: the sum of the H0 of the byte planes.
  When the values take at most 65536 distinct bit patterns, the joint bound
  ``H0(whole values)`` is computed too, and the smaller of the two is used.

Quantized tensors: the non-zero test is against a *fill*, the value a removed weight takes (the
per-row zero point of an asymmetric quantization, where pruned weights are not zero), and a
dense quantized tensor has no layout term: its bound is ``H0(values) * size``. The 4-bit
dtypes' values are their nibbles (``H0`` over 16 symbols); their dense size is the packed one,
half a byte per value.

``H0`` is the empirical Shannon entropy of the symbols' own histogram (order 0: no context, the
cost of the histogram itself not counted). Everything is computed from the data.

>>> import numpy as np
>>> h0(np.arange(256, dtype=np.uint8))
8.0
>>> h0(np.zeros(10, np.uint16))
0.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..registry import FLOAT_LAYOUTS, as_bits, storage_nbytes
from ..registry.dtypes import dtype_name

__all__ = [
    "JOINT_MAX_DISTINCT",
    "EntropyBound",
    "entropy_bound",
    "h0",
    "h0_bits",
    "layout_bits",
    "value_bits",
]

#: The joint value bound is computed when the values have at most this many distinct patterns.
JOINT_MAX_DISTINCT = 1 << 16
_SAMPLE = 1 << 18  # a prefix this long with too many distinct values settles the question


def _bits_from_counts(counts: np.ndarray) -> float:
    """n * H0 in bits, from symbol counts: n log2 n - sum c log2 c."""
    c = counts[counts > 0].astype(np.float64)
    n = float(c.sum())
    if n == 0:
        return 0.0
    # (einsum, not np.dot: BLAS's dot leaves its worker threads spinning on the other cores
    # for ~0.1 s, beside the codecs timed next; see transforms._sum_squares)
    return max(0.0, n * math.log2(n) - float(np.einsum("i,i->", c, np.log2(c))))


def _counts(symbols: np.ndarray) -> np.ndarray:
    flat = np.ascontiguousarray(symbols).reshape(-1)
    if flat.dtype.kind in "ub" and flat.dtype.itemsize <= 2:
        return np.bincount(flat.astype(np.intp, copy=False))
    return np.unique(flat, return_counts=True)[1]


def h0_bits(symbols: np.ndarray) -> float:
    """Total bits of ``symbols`` under their own order-0 model: ``len * H0``."""
    return _bits_from_counts(_counts(symbols))


def h0(symbols: np.ndarray) -> float:
    """Order-0 entropy of ``symbols`` in bits per symbol (0.0 for an empty array).

    >>> h0(np.array([0, 1, 0, 1], np.uint8))
    1.0
    """
    size = np.asarray(symbols).size
    return h0_bits(symbols) / size if size else 0.0


def _nm_masks(nonzero: np.ndarray, n: int, m: int) -> np.ndarray | None:
    """The m-bit non-zero mask of every group of m along the last axis, or None if some group
    has more than n non-zeros."""
    shape = nonzero.shape if nonzero.ndim else (1,)
    cols = shape[-1]
    lines = nonzero.reshape(-1, cols)
    pad = -cols % m
    if pad:
        lines = np.pad(lines, ((0, 0), (0, pad)))
    groups = lines.reshape(-1, m)
    if (groups.sum(axis=1) > n).any():
        return None
    weights = (1 << np.arange(m, dtype=np.int64)).astype(np.int64)
    return (groups.astype(np.int64) @ weights).astype(np.uint16)


def layout_bits(bits: np.ndarray, n: int = 2, m: int = 4) -> tuple[str, float]:
    """``(kind, bits)`` of the layout bound of a bit-pattern array.

    ``kind`` is ``"dense"`` (no zero), ``"n:m"`` (at most n non-zeros per group of m along the
    last axis) or ``"mask"`` (anything else).

    >>> layout_bits(np.array([[1, 0, 2, 0], [0, 3, 0, 4]], np.uint16))
    ('2:4', 2.0)
    """
    nonzero = bits != 0
    nnz = int(np.count_nonzero(nonzero))
    if nnz == bits.size:
        return "dense", 0.0
    if bits.size:
        masks = _nm_masks(nonzero, n, m)
        if masks is not None:
            return f"{n}:{m}", h0_bits(masks)
    return "mask", _bits_from_counts(np.array([nnz, bits.size - nnz]))


def _byte_planes(values: np.ndarray, width: int) -> list[np.ndarray]:
    """The ``ceil(width / 8)`` byte planes of unsigned ``values`` (lowest byte first)."""
    v = values.astype(np.uint64, copy=False)
    return [((v >> np.uint64(8 * i)) & np.uint64(0xFF)).astype(np.uint8)
            for i in range(-(-width // 8))]


def value_bits(values: np.ndarray, dtype: Any) -> tuple[float, float | None]:
    """``(split, joint)`` bounds in bits of the bit patterns ``values`` of a ``dtype`` array.

    ``split`` is the per-field bound described in the module docstring; ``joint`` is
    ``H0(values) * len`` when there are at most :data:`JOINT_MAX_DISTINCT` distinct patterns,
    else ``None``.

    >>> import ml_dtypes
    >>> v = np.array([1.0, -1.0, 2.0, -2.0], ml_dtypes.bfloat16).view(np.uint16)
    >>> value_bits(v, ml_dtypes.bfloat16)  # 1 bit of exponent + 1 bit of sign per value
    (8.0, 8.0)
    """
    dt = np.dtype(dtype)
    flat = np.ascontiguousarray(values).reshape(-1)
    name = dtype_name(dt).lstrip(">")
    width = dt.itemsize * 8
    if name in FLOAT_LAYOUTS:
        e, mant = FLOAT_LAYOUTS[name]
        v = flat.astype(np.uint64)
        exponent = ((v >> np.uint64(mant)) & np.uint64((1 << e) - 1)).astype(np.uint16)
        sign = v >> np.uint64(e + mant)
        sign_mantissa = (sign << np.uint64(mant)) | (v & np.uint64((1 << mant) - 1))
        if mant + 1 <= 16:
            fields = [exponent, sign_mantissa.astype(np.uint16)]
        else:
            fields = [exponent, *_byte_planes(sign_mantissa, mant + 1)]
    else:
        fields = _byte_planes(flat, width)
    split = sum(h0_bits(f) for f in fields)
    joint: float | None = None
    if width <= 16:
        joint = h0_bits(flat)
    elif np.unique(flat[:_SAMPLE]).size <= JOINT_MAX_DISTINCT:
        counts = np.unique(flat, return_counts=True)[1]
        if counts.size <= JOINT_MAX_DISTINCT:
            joint = _bits_from_counts(counts)
    return float(split), joint


@dataclass(frozen=True)
class EntropyBound:
    """The order-0 bound of one array (see the module docstring), in bits."""

    dense_bytes: int
    layout: str
    layout_bits: float
    values_split_bits: float
    values_joint_bits: float | None

    @property
    def values_bits(self) -> float:
        """The smaller of the split and the joint value bounds."""
        if self.values_joint_bits is None:
            return self.values_split_bits
        return min(self.values_split_bits, self.values_joint_bits)

    @property
    def bits(self) -> float:
        return self.layout_bits + self.values_bits

    @property
    def nbytes(self) -> float:
        """The bound in (fractional) bytes."""
        return self.bits / 8


def entropy_bound(
    array: np.ndarray,
    n: int = 2,
    m: int = 4,
    *,
    fill: np.ndarray | int | None = None,
    dense: bool = False,
) -> EntropyBound:
    """The order-0 bound of ``array`` (any supported dtype), N:M detected for ``(n, m)``.

    ``fill``: the bit pattern(s) of an empty slot, broadcastable to the array (e.g. per-row
    zero points of shape ``(rows, 1)``); default 0. ``dense``: no layout term, every value
    counts (``H0`` of all values).

    >>> import numpy as np
    >>> b = entropy_bound(np.zeros((4, 4), np.float32))
    >>> b.layout, b.bits
    ('2:4', 0.0)
    """
    bits, dtype = as_bits(array)
    nbytes = storage_nbytes(dtype, bits.size)
    if dense:
        split, joint = value_bits(bits, dtype)
        return EntropyBound(nbytes, "dense", 0.0, split, joint)
    if fill is None:
        kind, lbits = layout_bits(bits, n, m)
        kept = bits != 0
    else:
        kept = bits != np.asarray(fill).astype(bits.dtype)
        kind, lbits = layout_bits(kept.astype(np.uint8), n, m)
    split, joint = value_bits(bits[kept], dtype)
    return EntropyBound(nbytes, kind, lbits, split, joint)
