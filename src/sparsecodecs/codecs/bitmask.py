"""``bitmask``: one bit per element saying non-zero, plus the non-zero values."""

from __future__ import annotations

from dataclasses import dataclass, field
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
from ._common import as_2d, builtin
from ._fill import (
    FillSpec,
    check_fill,
    fill_frame_config,
    fill_get_config,
    fill_sections,
    read_fill,
    resolve_fill,
)
from ._kernels import check_mask, kept_count, split_kept
from ._parts import MaskParts

__all__ = ["Bitmask"]


@builtin
@dataclass(frozen=True, kw_only=True)
class Bitmask(Codec):
    """Any sparsity, any shape: a bit per element plus the non-zero values in C order.

    "Non-zero" is by bit pattern, so ``-0.0`` and NaN are kept as values. Sections: ``mask``
    (index, ``ceil(size / 8)`` bytes, LSB-first) and ``values`` (``nnz * itemsize`` bytes;
    4-bit dtypes packed two per byte). Meta: ``nnz``. Theoretical size: the values section.

    ``fill`` is the value that counts as empty (see :mod:`._fill`): with a non-zero fill the
    mask marks the entries that differ from their row's fill, and the frame gets a ``fill``
    section.
    """

    codec_id = "bitmask"
    description = "1 bit per element + the non-zero values; any sparsity"

    fill: FillSpec = field(default="zero", metadata={"omit_default": True})

    def __post_init__(self) -> None:
        object.__setattr__(self, "fill", check_fill(self.fill))

    def get_config(self) -> dict[str, Any]:
        return fill_get_config(super().get_config())

    def encode_bits(self, bits: np.ndarray, dtype: np.dtype[Any]) -> Encoded:
        flat = bits.reshape(-1)
        fill = resolve_fill(self.fill, bits, dtype)
        rows, cols = as_2d(bits.shape)
        # the mask and the kept values in one pass of the layout kernels (hybrid's bitmask
        # layout's)
        mask, values = split_kept(flat, kept_count(flat, fill, cols), fill, cols)
        fsec, fmeta = fill_sections(fill, rows)
        return Encoded(
            [Section("mask", "index", mask), values_section("values", values, dtype), *fsec],
            meta={"nnz": int(values.size), **fmeta},
            config=fill_frame_config(self),
        )

    def decode_bits(self, sections: SectionReader, info: FrameInfo) -> np.ndarray:
        return self.decode_parts(sections, info).to_bits(info.shape)

    def decode_parts(self, sections: SectionReader, info: FrameInfo) -> MaskParts:
        """The validated mask and non-zero values (see :mod:`._parts`)."""
        size = info.size
        nnz = info.meta_int("nnz", 0, size)
        mask = sections.array("mask", np.uint8, (size + 7) // 8)
        values = sections.values("values", info.dtype, nnz)
        check_mask(mask, size, nnz, "section 'mask'")
        return MaskParts(mask, values, read_fill(sections, info))

    def theoretical_nbytes(self, info: FrameInfo) -> int:
        return storage_nbytes(info.dtype, info.meta_int("nnz", 0, info.size))
