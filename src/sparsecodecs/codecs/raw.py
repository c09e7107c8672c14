"""``raw``: the dense bytes in a frame; the baseline every report compares against."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..registry import Codec, Encoded, FrameInfo, SectionReader, storage_nbytes, values_section
from ._common import builtin
from ._parts import DenseParts

__all__ = ["Raw"]


@builtin
@dataclass(frozen=True, kw_only=True)
class Raw(Codec):
    """Stores the array's bytes unchanged (little-endian bit patterns, C order).

    Layout: one ``values`` section of ``size * itemsize`` bytes (4-bit dtypes: ``ceil(size / 2)``
    bytes, two values per byte). Overhead: the header only.
    """

    codec_id = "raw"
    description = "dense bytes, no compression: the baseline"

    def encode_bits(self, bits: np.ndarray, dtype: np.dtype[Any]) -> Encoded:
        return Encoded([values_section("values", bits.reshape(-1), dtype)])

    def decode_bits(self, sections: SectionReader, info: FrameInfo) -> np.ndarray:
        return self.decode_parts(sections, info).values.reshape(info.shape).copy()

    def decode_parts(self, sections: SectionReader, info: FrameInfo) -> DenseParts:
        """The values section itself, read-only and not copied (see :mod:`._parts`)."""
        return DenseParts(sections.values("values", info.dtype, info.size))

    def theoretical_nbytes(self, info: FrameInfo) -> int:
        return storage_nbytes(info.dtype, info.size)
