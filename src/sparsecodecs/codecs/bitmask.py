"""``bitmask``: one bit per element saying non-zero, plus the non-zero values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..registry import (
    Codec,
    Encoded,
    FrameInfo,
    Section,
    SectionReader,
    storage_nbytes,
    values_section,
)
from ._common import builtin
from ._parts import MaskParts

__all__ = ["Bitmask"]


@builtin
@dataclass(frozen=True, kw_only=True)
class Bitmask(Codec):
    """Any sparsity, any shape: a bit per element plus the non-zero values in C order.

    "Non-zero" is by bit pattern, so ``-0.0`` and NaN are kept as values. Sections: ``mask``
    (index, ``ceil(size / 8)`` bytes, LSB-first) and ``values`` (``nnz * itemsize`` bytes;
    4-bit dtypes packed two per byte). Meta: ``nnz``. Theoretical size: the values section.
    """

    codec_id = "bitmask"
    description = "1 bit per element + the non-zero values; any sparsity"

    def encode_bits(self, bits: np.ndarray, dtype: np.dtype[Any]) -> Encoded:
        flat = bits.reshape(-1)
        nonzero = flat != 0
        values = flat[nonzero]
        mask = np.packbits(nonzero, bitorder="little")
        return Encoded(
            [Section("mask", "index", mask), values_section("values", values, dtype)],
            meta={"nnz": int(values.size)},
        )

    def decode_bits(self, sections: SectionReader, info: FrameInfo) -> np.ndarray:
        return self.decode_parts(sections, info).to_bits(info.shape)

    def decode_parts(self, sections: SectionReader, info: FrameInfo) -> MaskParts:
        """The validated mask and non-zero values (see :mod:`._parts`)."""
        size = info.size
        nnz = info.meta_int("nnz", 0, size)
        mask = sections.array("mask", np.uint8, (size + 7) // 8)
        values = sections.values("values", info.dtype, nnz)
        from ._kernels import check_mask

        check_mask(mask, size, nnz, "section 'mask'")
        return MaskParts(mask, values)

    def theoretical_nbytes(self, info: FrameInfo) -> int:
        return storage_nbytes(info.dtype, info.meta_int("nnz", 0, info.size))
