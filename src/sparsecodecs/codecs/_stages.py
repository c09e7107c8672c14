"""Value stages shared by ``huffman``, ``centroid`` and ``hybrid``.

* **planes**: split each value's bit pattern into byte planes, most significant first. Floats
  are first rotated left by one bit, so the sign sits next to the mantissa and the top plane of
  bfloat16/float32 is exactly the exponent (ZipNN's and DFloat11's observation: the exponent
  carries ~2-3 bits of information in 8; sign and mantissa are nearly incompressible). Each plane
  is Huffman-coded if that is smaller, else stored raw. Sections: ``<p>.plane<i>`` (raw) or
  ``<p>.plane<i>.codebook`` + ``<p>.plane<i>.bits`` (coded). Meta: a string of ``h``/``r`` per
  plane.
* **centroid**: the sorted distinct values (``<p>.centroids``, role ``codebook``) and one index
  per value, Huffman-coded (``<p>.idx.codebook`` + ``<p>.idx.bits``) or packed at
  ceil(log2 k) bits (``<p>.idx``).

Every decoder here validates counts and ranges before it allocates or indexes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..registry import FLOAT_LAYOUTS, FrameLayoutError, Section, SectionReader, bits_dtype
from . import _huffman as huff
from ._common import pack_fields, unpack_fields

__all__ = [
    "MAX_CENTROIDS",
    "centroids_size",
    "decode_centroids",
    "decode_planes",
    "distinct_values",
    "encode_centroids",
    "encode_planes",
    "planes_size",
    "rotation",
]

MAX_CENTROIDS = 1 << 16


def rotation(dtype: np.dtype[Any]) -> int:
    """Bits to rotate left before splitting into planes: 1 for floats, 0 for integers."""
    return 1 if dtype.name in FLOAT_LAYOUTS else 0


def _mask(dtype: np.dtype[Any]) -> np.uint64:
    return np.uint64((1 << (8 * dtype.itemsize)) - 1)


def _split(values: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
    from . import _huffman_kernels as hk

    planes = np.empty((dtype.itemsize, values.size), np.uint8)
    hk.split_planes(np.ascontiguousarray(values), rotation(dtype), _mask(dtype), planes)
    return planes


def _plane_choice(plane: np.ndarray, max_length: int) -> tuple[bool, np.ndarray, int]:
    counts = huff.histogram(plane, 256)
    coded = huff.coded_size(counts, max_length)
    return coded < plane.size, counts, min(coded, plane.size)


def planes_size(values: np.ndarray, dtype: np.dtype[Any], max_length: int) -> int:
    """Bytes :func:`encode_planes` would write (within 8 bytes per coded stream)."""
    return sum(_plane_choice(p, max_length)[2] for p in _split(values, dtype))


def encode_planes(
    values: np.ndarray, dtype: np.dtype[Any], prefix: str, max_length: int, *, entropy: bool = True
) -> tuple[list[Section], str]:
    """Sections and the plane-mode string (``h`` coded / ``r`` raw, one per plane)."""
    sections: list[Section] = []
    modes = ""
    for i, plane in enumerate(_split(values, dtype)):
        name = f"{prefix}.plane{i}"
        use, counts, _ = _plane_choice(plane, max_length) if entropy else (False, None, 0)
        if use:
            sections += huff.encode_symbols(
                plane, 256, name, "values", max_length=max_length, counts=counts
            )
            modes += "h"
        else:
            sections.append(Section(name, "values", plane))
            modes += "r"
    return sections, modes


def check_modes(modes: object, dtype: np.dtype[Any]) -> str:
    if (
        not isinstance(modes, str)
        or len(modes) != dtype.itemsize
        or set(modes) - {"h", "r"}
    ):
        raise FrameLayoutError(
            f"meta 'planes' must be {dtype.itemsize} letters of 'h'/'r', got {modes!r:.100}"
        )
    return modes


def decode_planes(
    sections: SectionReader, prefix: str, count: int, dtype: np.dtype[Any], modes: str
) -> np.ndarray:
    """Inverse of :func:`encode_planes`: ``count`` values as unsigned bit patterns."""
    from . import _huffman_kernels as hk

    planes = np.empty((dtype.itemsize, count), np.uint8)
    for i, mode in enumerate(check_modes(modes, dtype)):
        name = f"{prefix}.plane{i}"
        if mode == "h":
            planes[i] = huff.decode_symbols(sections, name, count, 256)
        else:
            planes[i] = sections.array(name, np.uint8, count)
    out = np.empty(count, bits_dtype(dtype))
    hk.join_planes(planes, rotation(dtype), _mask(dtype), out)
    return out


def distinct_values(values: np.ndarray, limit: int = MAX_CENTROIDS) -> np.ndarray | None:
    """The sorted distinct values, or None if there are more than ``limit``."""
    if values.dtype.itemsize <= 2:
        from . import _huffman_kernels as hk

        counts = hk.histogram(values, 1 << (8 * values.dtype.itemsize))
        uniq = np.flatnonzero(counts).astype(values.dtype)
    else:
        sample = values[:: max(1, values.size // 65536)]
        if np.unique(sample).size > limit:
            return None
        uniq = np.unique(values)
    return uniq if uniq.size <= limit else None


def _indices(values: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    idx = np.searchsorted(centroids, values)
    return idx.astype(np.uint8 if centroids.size <= 256 else np.uint16)


def centroids_size(values: np.ndarray, centroids: np.ndarray, max_length: int) -> int:
    """Bytes :func:`encode_centroids` would write (within 8 bytes per coded stream)."""
    k = centroids.size
    counts = huff.histogram(_indices(values, centroids), k)
    packed = (values.size * max(1, math.ceil(math.log2(k))) + 7) // 8 if k > 1 else 0
    return int(centroids.nbytes) + min(packed, huff.coded_size(counts, max_length))


def encode_centroids(
    values: np.ndarray, centroids: np.ndarray, prefix: str, max_length: int, *, entropy: bool = True
) -> tuple[list[Section], str]:
    """Sections and the index mode (``h`` Huffman, ``p`` packed)."""
    k = centroids.size
    idx = _indices(values, centroids)
    sections = [Section(f"{prefix}.centroids", "codebook", centroids)]
    bits = max(1, math.ceil(math.log2(k))) if k > 1 else 0
    packed = (values.size * bits + 7) // 8
    counts = huff.histogram(idx, k) if k else None
    if entropy and k > 1 and counts is not None and huff.coded_size(counts, max_length) < packed:
        sections += huff.encode_symbols(idx, k, f"{prefix}.idx", "values", counts=counts,
                                        max_length=max_length)
        return sections, "h"
    sections.append(Section(f"{prefix}.idx", "values", pack_fields(idx, bits)))
    return sections, "p"


def decode_centroids(
    sections: SectionReader, prefix: str, count: int, dtype: np.dtype[Any], mode: object, k: int
) -> np.ndarray:
    """Inverse of :func:`encode_centroids`."""
    udt = bits_dtype(dtype)
    centroids = sections.array(f"{prefix}.centroids", udt, k)
    if k == 0 and count:
        raise FrameLayoutError(f"section '{prefix}.centroids' is empty but {count} values")
    if mode == "h":
        idx = huff.decode_symbols(
            sections, f"{prefix}.idx", count, k, np.uint8 if k <= 256 else np.uint16
        )
    elif mode == "p":
        bits = max(1, math.ceil(math.log2(k))) if k > 1 else 0
        raw = sections.array(f"{prefix}.idx", np.uint8)
        idx = unpack_fields(raw, bits, count, f"section '{prefix}.idx'")
        if count and int(idx.max()) >= k:
            raise FrameLayoutError(
                f"section '{prefix}.idx' holds index {int(idx.max())} >= {k} centroids"
            )
    else:
        raise FrameLayoutError(f"meta index mode must be 'h' or 'p', got {mode!r:.50}")
    return centroids[idx]
