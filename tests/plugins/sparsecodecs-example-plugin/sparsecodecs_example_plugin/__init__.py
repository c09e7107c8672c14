"""``rle_zeros``: each non-zero value with the number of zeros before it.

An example sparsecodecs plugin. It is declared in this distribution's ``pyproject.toml``::

    [project.entry-points."sparsecodecs.codecs"]
    rle_zeros = "sparsecodecs_example_plugin:RleZeros"

so ``sparsecodecs.get_codec("rle-zeros")`` and ``sparsecodecs.decode(frame)`` find it without
importing it first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sparsecodecs import Codec
from sparsecodecs.registry import (
    Encoded,
    FrameInfo,
    FrameLayoutError,
    Section,
    SectionReader,
    bits_dtype,
    check_choice,
)

__all__ = ["RleZeros"]

RUN_BYTES = (1, 2, 4, 8)


@dataclass(frozen=True, kw_only=True)
class RleZeros(Codec):
    """Zero runs: the non-zero values, and before each the length of the zero run it ends.

    The array is scanned in ``order`` ("C": rows, "F": columns). Sections: ``values`` (the
    non-zero values, ``nnz * itemsize`` bytes) and ``runs`` (index; one little-endian unsigned
    integer per value, of the narrowest width that holds the longest run). Trailing zeros are
    implied by the shape. Meta: ``nnz`` and ``run_bytes``. Theoretical size: ``nnz * itemsize``.
    """

    codec_id = "rle_zeros"
    description = "zero run lengths + the non-zero values (example plugin)"

    order: str = "C"

    def __post_init__(self) -> None:
        check_choice("order", self.order, ("C", "F"))

    def encode_bits(self, bits: np.ndarray, dtype: np.dtype[Any]) -> Encoded:
        flat = bits.ravel(order=self.order)
        where = np.flatnonzero(flat)
        runs = np.diff(where, prepend=-1) - 1  # zeros before each non-zero value
        width = np.min_scalar_type(int(runs.max()) if runs.size else 0)
        return Encoded(
            [
                Section("values", "values", flat[where]),
                Section("runs", "index", runs.astype(width.newbyteorder("<"))),
            ],
            meta={"nnz": int(where.size), "run_bytes": width.itemsize},
        )

    def decode_bits(self, sections: SectionReader, info: FrameInfo) -> np.ndarray:
        size = info.size
        nnz = info.meta_int("nnz", 0, size)
        run_bytes = info.meta_int("run_bytes", 1, 8)
        if run_bytes not in RUN_BYTES:
            raise FrameLayoutError(f"meta run_bytes is {run_bytes}, not one of {RUN_BYTES}")
        udt = bits_dtype(info.dtype)
        values = sections.array("values", udt, nnz)
        runs = sections.array("runs", f"<u{run_bytes}", nnz)
        # Value i lands at runs[0] + ... + runs[i] + i. Bound the total in floating point first,
        # so that the exact int64 sum cannot overflow on a hostile frame.
        if nnz + float(runs.sum(dtype=np.float64)) > size:
            raise FrameLayoutError(f"section 'runs' adds up to more than {size} elements")
        where = np.cumsum(runs.astype(np.int64) + 1) - 1
        if nnz and where[-1] >= size:
            raise FrameLayoutError(f"section 'runs' puts a value at {where[-1]} of {size}")
        out = np.zeros(size, udt)
        out[where] = values
        if self.order == "F":
            return out.reshape(info.shape[::-1]).T.copy()  # C-contiguous copy
        return out.reshape(info.shape)

    def theoretical_nbytes(self, info: FrameInfo) -> int:
        return info.meta_int("nnz", 0, info.size) * info.dtype.itemsize
