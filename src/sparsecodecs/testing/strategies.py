"""Hypothesis strategies for weight-like arrays, built on :mod:`hypothesis.extra.numpy`.

* :func:`dtypes`: every dtype a frame can hold (``SUPPORTED_DTYPES``: bfloat16 and float8 from
  ml_dtypes included) and the big-endian variants of the multi-byte ones;
* :func:`shapes`: rank 0 to 4, with 0-size shapes, ``1 x n`` rows and last axes of any length;
* :func:`sparse_arrays`: arrays of a dtype and shape with zeros placed to a density or to an
  exact N:M pattern along the last axis, values drawn as raw bit patterns (NaN payloads, -0.0,
  infinities and subnormals appear) or gaussian-like, optionally from ``k`` distinct values.

Large arrays are filled by a numpy generator seeded from a Hypothesis draw, so generation stays
fast; the shape, dtype, density and seed are all Hypothesis draws and shrink towards small,
all-zero arrays of the first dtype.

>>> from hypothesis import given
>>> @given(sparse_arrays(dtype="float32", shape=(4, 8), pattern="2:4"))
... def test(a):
...     assert ((a.reshape(4, 2, 4) != 0).sum(axis=-1) <= 2).all()
>>> test()
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import hypothesis.extra.numpy as hnp
import ml_dtypes
import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from ..registry import FLOAT_LAYOUTS, SUPPORTED_DTYPES, element_bits

__all__ = [
    "EDGE_SHAPES",
    "all_dtypes",
    "dtypes",
    "from_bits",
    "parse_pattern",
    "shapes",
    "sparse_arrays",
    "special_bit_patterns",
]

#: Shapes every codec must handle, used by :func:`shapes` and the conformance edge cases.
EDGE_SHAPES: tuple[tuple[int, ...], ...] = (
    (),
    (0,),
    (7,),
    (1, 9),
    (3, 5),
    (2, 8),
    (4, 0),
    (2, 0, 3),
    (1, 2, 1, 5),
)

#: Arrays at most this large are filled element by element by Hypothesis (best shrinking);
#: larger ones by a seeded numpy generator.
_SMALL = 24

ValueMode = Literal["bits", "gaussian"]
_DTypeArg = Any  # a dtype, anything np.dtype() accepts, or a strategy of dtypes
_ShapeArg = Any  # an int, a tuple of ints, or a strategy of shapes


def all_dtypes(*, big_endian: bool = True) -> list[np.dtype[Any]]:
    """Every supported dtype; with ``big_endian``, also the ``>`` variant of each multi-byte one.

    >>> [str(d) for d in all_dtypes(big_endian=False)][:3]
    ['float64', 'float32', 'float16']
    """
    native = list(SUPPORTED_DTYPES.values())
    if not big_endian:
        return native
    return native + [d.newbyteorder(">") for d in native if d.itemsize > 1]


def dtypes(*, big_endian: bool = True) -> st.SearchStrategy[np.dtype[Any]]:
    """A strategy for every supported dtype (shrinks towards ``float64``).

    Parameters
    ----------
    big_endian
        Include the big-endian variants of the multi-byte dtypes (bfloat16 included).
    """
    return st.sampled_from(all_dtypes(big_endian=big_endian))


def shapes(
    *, min_dims: int = 0, max_dims: int = 4, max_size: int = 256
) -> st.SearchStrategy[tuple[int, ...]]:
    """A strategy for array shapes of rank ``min_dims`` to ``max_dims``.

    Mixes :data:`EDGE_SHAPES` (0-size, ``1 x n``, last axes that are not a multiple of 4),
    long single rows and random shapes with sides bounded so that no shape has more than
    ``max_size`` elements.

    Parameters
    ----------
    min_dims, max_dims
        The range of ranks, within 0 to 32.
    max_size
        The largest number of elements of a drawn shape.
    """
    if not 0 <= min_dims <= max_dims <= 32:
        raise InvalidArgument(
            f"need 0 <= min_dims <= max_dims <= 32, got min_dims={min_dims}, max_dims={max_dims}"
        )
    if max_size < 1:
        raise InvalidArgument(f"max_size must be >= 1, got max_size={max_size}")

    def of_rank(rank: int) -> st.SearchStrategy[tuple[int, ...]]:
        if rank == 0:
            return st.just(())
        side = max(1, math.floor(max_size ** (1 / rank)))
        return hnp.array_shapes(min_dims=rank, max_dims=rank, min_side=0, max_side=side)

    edges = [s for s in EDGE_SHAPES if min_dims <= len(s) <= max_dims and math.prod(s) <= max_size]
    options = [st.integers(min_dims, max_dims).flatmap(of_rank)]
    if edges:
        options.append(st.sampled_from(edges))
    if min_dims <= 2 <= max_dims:
        options.append(st.tuples(st.just(1), st.integers(1, max_size)))
    return st.one_of(options)


def parse_pattern(pattern: str | Sequence[int]) -> tuple[int, int]:
    """``"2:4"`` or ``(2, 4)`` as ``(n, m)``, validated (``1 <= n < m``).

    >>> parse_pattern("2:4")
    (2, 4)
    """
    try:
        parts = pattern.split(":") if isinstance(pattern, str) else list(pattern)
        n, m = (int(p) for p in parts)
    except (TypeError, ValueError):
        raise InvalidArgument(f"pattern must be 'n:m' or (n, m), got pattern={pattern!r}") from None
    if not 1 <= n < m:
        raise InvalidArgument(f"pattern needs 1 <= n < m, got n={n}, m={m}")
    return n, m


def special_bit_patterns(dtype: np.dtype[Any] | str) -> list[int]:
    """Bit patterns of the edge values of ``dtype``, as unsigned integers.

    For floats: -0.0, +-inf (or the largest exponent), NaNs with several payloads and both
    signs, the smallest and largest subnormals and the largest finite value. For integers: 1,
    -1 (all ones), the minimum (sign bit only) and the maximum.

    >>> [hex(b) for b in special_bit_patterns("float16")][:3]
    ['0x8000', '0x7c00', '0xfc00']
    """
    dt = np.dtype(dtype)
    width = element_bits(dt)  # 4 for the 4-bit dtypes: their high nibble is always zero
    ones = (1 << width) - 1
    sign = 1 << (width - 1)
    patterns = [1, ones, sign, ones ^ sign]
    layout = FLOAT_LAYOUTS.get(dt.newbyteorder("=").name)
    if layout is not None:
        exp_bits, mant_bits = layout
        exp = ((1 << exp_bits) - 1) << mant_bits
        mant = (1 << mant_bits) - 1
        quiet = 1 << (mant_bits - 1)
        patterns = [
            sign,  # -0.0
            exp,  # +inf (a large finite value where the format has no inf)
            exp | sign,  # -inf
            exp | mant,  # NaN with every payload bit set
            exp | 1,  # signalling NaN, payload 1
            exp | quiet | 1,  # quiet NaN with a payload
            exp | sign | quiet,  # negative quiet NaN
            1,  # smallest subnormal
            sign | 1,  # negative smallest subnormal
            mant,  # largest subnormal
            (exp - (1 << mant_bits)) | mant,  # largest finite
            ones,  # all bits set
        ]
    return list(dict.fromkeys(patterns))


def from_bits(bits: np.ndarray, dtype: np.dtype[Any] | str) -> np.ndarray:
    """The array of ``dtype`` whose C-order bit patterns are ``bits``.

    ``bits`` holds native unsigned integers of the dtype's width (what
    :func:`~sparsecodecs.testing.conformance.bits_of` returns); for a big-endian ``dtype`` the
    bytes are swapped, so the values are the same. A view when no swap is needed.

    >>> from_bits(np.array([0x3C00, 0x8000], np.uint16), ">f2")
    array([ 1., -0.], dtype='>f2')
    """
    dt = np.dtype(dtype)
    if bits.dtype != _bits_dtype(dt):
        raise InvalidArgument(f"bits of {dt} must be {_bits_dtype(dt)}, got {bits.dtype}")
    return bits.byteswap().view(dt) if dt.byteorder == ">" else bits.view(dt)


def _as_dtype(dtype: _DTypeArg) -> st.SearchStrategy[np.dtype[Any]]:
    if dtype is None:
        return dtypes()
    if isinstance(dtype, st.SearchStrategy):
        return dtype
    return st.just(np.dtype(dtype))


def _as_shape(shape: _ShapeArg) -> st.SearchStrategy[tuple[int, ...]]:
    if shape is None:
        return shapes()
    if isinstance(shape, st.SearchStrategy):
        return shape
    if isinstance(shape, (int, np.integer)):
        return st.just((int(shape),))
    return st.just(tuple(int(d) for d in shape))


def _as_density(
    density: float | tuple[float, float] | st.SearchStrategy[float] | None,
) -> st.SearchStrategy[float]:
    if density is None:
        return st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.0))
    if isinstance(density, st.SearchStrategy):
        return density
    lo, hi = density if isinstance(density, tuple) else (density, density)
    if not 0.0 <= lo <= hi <= 1.0:
        raise InvalidArgument(f"density must be within [0, 1], got density={density!r}")
    return st.just(float(lo)) if lo == hi else st.floats(lo, hi)


def _bits_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    return np.dtype(f"u{dtype.itemsize}")


def _gaussian_bits(rng: np.random.Generator, dtype: np.dtype[Any], size: int) -> np.ndarray:
    """Weight-like values: normal around 0 (floats) or rounded and clipped (integers)."""
    native = dtype.newbyteorder("=")
    normal = rng.standard_normal(size)
    if native.kind in "iu" or native.name in ("int4", "uint4"):
        info = ml_dtypes.iinfo(native)  # type: ignore[no-untyped-call]
        scale = max(min(info.max / 4, 2.0**20), 2.0)
        ints = np.rint(normal * scale)
        if info.min == 0:
            ints = np.abs(ints)
        return np.clip(ints, info.min, info.max).astype(native).view(_bits_dtype(dtype))
    scale = float(rng.choice([0.02, 1.0, 100.0]))
    return (normal * scale).astype(np.float32).astype(native).view(_bits_dtype(dtype))


def _nm_mask(
    rng: np.random.Generator, shape: tuple[int, ...], n: int, m: int, density: float
) -> np.ndarray:
    """At most ``n`` True per group of ``m`` along the last axis (the last group may be short).

    Each group keeps ``n`` random slots, each of which stays with probability ``density``.
    """
    cols = shape[-1] if shape else 1
    rows = math.prod(shape[:-1]) if shape else 1
    groups = -(-cols // m)
    rank = rng.random((rows, groups, m)).argsort(axis=-1).argsort(axis=-1)
    keep = (rank < n) & (rng.random((rows, groups, m)) < density)
    return keep.reshape(rows, groups * m)[:, :cols].reshape(shape)


@st.composite
def _sparse_arrays(
    draw: st.DrawFn,
    dtype: st.SearchStrategy[np.dtype[Any]],
    shape: st.SearchStrategy[tuple[int, ...]],
    density: st.SearchStrategy[float],
    nm: tuple[int, int] | None,
    values: ValueMode | None,
    special_values: bool,
    clustered: int | None,
) -> np.ndarray:
    dt = draw(dtype)
    shp = draw(shape)
    dens = draw(density)
    mode = values or draw(st.sampled_from(["bits", "gaussian"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    size = math.prod(shp)
    udt = _bits_dtype(dt)
    top = (1 << element_bits(dt)) - 1

    if clustered is not None:
        k = min(clustered, top)
        palette = draw(st.lists(st.integers(1, top), min_size=k, max_size=k, unique=True))
        bits = np.array(palette, udt)[rng.integers(0, k, size)]
    elif mode == "bits" and size <= _SMALL:
        bits = np.array(draw(st.lists(st.integers(1, top), min_size=size, max_size=size)), udt)
    elif mode == "bits":
        bits = rng.integers(1, top, size, dtype=udt, endpoint=True)
    else:
        bits = _gaussian_bits(rng, dt, size)
    bits = bits.reshape(shp)

    if nm is not None:
        mask = _nm_mask(rng, shp, *nm, dens)
    else:
        mask = rng.random(shp) < dens if 0.0 < dens < 1.0 else np.full(shp, dens == 1.0)
    bits = np.where(mask, bits, udt.type(0)).astype(udt)

    if special_values and size and clustered is None:
        where = np.flatnonzero(bits)
        count = draw(st.integers(0, min(where.size, 8)))
        if count:
            specials = np.array(special_bit_patterns(dt), udt)
            chosen = rng.choice(where, count, replace=False)
            bits.reshape(-1)[chosen] = specials[rng.integers(0, specials.size, count)]

    return from_bits(bits, dt)


def sparse_arrays(
    dtype: _DTypeArg = None,
    shape: _ShapeArg = None,
    *,
    density: float | tuple[float, float] | st.SearchStrategy[float] | None = None,
    pattern: str | tuple[int, int] | None = None,
    values: ValueMode | None = None,
    special_values: bool = True,
    clustered: int | None = None,
) -> st.SearchStrategy[np.ndarray]:
    """A strategy for weight-like sparse arrays.

    Parameters
    ----------
    dtype
        A dtype (anything :class:`numpy.dtype` accepts) or a strategy of dtypes; default
        :func:`dtypes`.
    shape
        An int, a tuple or a strategy of shapes; default :func:`shapes`.
    density
        The fraction of non-zero elements: a float, a ``(lo, hi)`` range or a strategy of floats.
        Default: all-zero, fully dense or anything between. With ``pattern``, the probability
        that each of the ``n`` slots of a group is filled.
    pattern
        ``"n:m"`` or ``(n, m)``: at most ``n`` non-zeros in every group of ``m`` along the last
        axis (groups with fewer occur; a last axis that is not a multiple of ``m`` ends in a short
        group).
    values
        ``"bits"``: uniformly random non-zero bit patterns (so NaNs with payloads, infinities and
        subnormals occur); ``"gaussian"``: normal values cast to the dtype, as trained weights
        look. Default: either.
    special_values
        Also put up to 8 edge values (:func:`special_bit_patterns`) at non-zero positions.
    clustered
        Draw the non-zero values from this many distinct bit patterns (as a clustered or
        quantized layer has); ``special_values`` is then ignored.

    Returns
    -------
    SearchStrategy[numpy.ndarray]
        C-contiguous arrays of the drawn dtype (big-endian ones included) and shape.
    """
    nm = None if pattern is None else parse_pattern(pattern)
    if values not in (None, "bits", "gaussian"):
        raise InvalidArgument(f"values must be 'bits', 'gaussian' or None, got values={values!r}")
    if clustered is not None and (not isinstance(clustered, int) or clustered < 1):
        raise InvalidArgument(f"clustered must be an int >= 1, got clustered={clustered!r}")
    return _sparse_arrays(
        _as_dtype(dtype),
        _as_shape(shape),
        _as_density(density),
        nm,
        values,
        special_values,
        clustered,
    )
