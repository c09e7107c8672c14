"""``nm``: N:M structured sparsity along the last axis (2:4 by default)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..registry import (
    Codec,
    CodecConfigError,
    Encoded,
    FrameInfo,
    FrameLayoutError,
    Section,
    SectionReader,
    check_choice,
    check_int,
    storage_nbytes,
    values_section,
)
from ._common import builtin, pack_fields, unpack_fields
from ._fill import (
    FillSpec,
    check_fill,
    fill_frame_config,
    fill_get_config,
    fill_sections,
    read_fill,
    resolve_fill,
)
from ._nm import (
    MAX_M,
    NMTables,
    code_reader,
    geometry,
    nm_tables,
    pack_codes,
    packed_code_reader,
    pattern_packing,
    scatter_groups,
    split_groups,
)
from ._parts import NMParts

__all__ = [
    "NM",
    "NMTables",
    "code_reader",
    "geometry",
    "nm_tables",
    "pack_codes",
    "packed_code_reader",
    "pattern_packing",
    "scatter_groups",
    "split_groups",
]

METADATA = ("pattern", "index", "bitmask")

@builtin
@dataclass(frozen=True, kw_only=True)
class NM(Codec):
    """N:M structured sparsity: exactly ``n`` value slots per group of ``m`` along the last axis.

    Sections: ``values`` (``groups * n * itemsize`` bytes, 4-bit dtypes packed two per byte:
    each group's kept slots in position order; a group with fewer than ``n`` non-zeros keeps its
    lowest zero positions too) and one metadata section (role ``index``) chosen by ``metadata``:

    * ``"pattern"`` (default): the group's pattern as one of C(m, n) codes, packed as base-C
      digits into words (2:4: 6 codes, 3 per byte, 2.67 bits per group);
    * ``"index"``: ceil(log2 m) bits per kept value, NVIDIA's sparse-tensor-core layout;
    * ``"bitmask"``: m bits per group, the compressed-tensors 2:4 layout.

    A last axis that is not a multiple of ``m`` is padded with zeros to whole groups; the padding
    is implied by the shape. Theoretical size: the ``values`` section (kept values only).

    ``fill`` is the value that counts as empty (see :mod:`._fill`): with a non-zero fill, a
    group may hold at most ``n`` entries other than its row's fill, the slots kept for empty
    positions and the padding hold the fill, and the frame gets a ``fill`` section.
    """

    codec_id = "nm"
    description = "N:M structured sparsity (2:4 default): n values per m + pattern metadata"
    aliases = {"2:4": {"n": 2, "m": 4}, "bitmask-2:4": {"n": 2, "m": 4, "metadata": "bitmask"}}

    n: int = 2
    m: int = 4
    metadata: str = "pattern"
    fill: FillSpec = field(default="zero", metadata={"omit_default": True})

    def __post_init__(self) -> None:
        object.__setattr__(self, "fill", check_fill(self.fill))
        check_int("m", self.m, 2, MAX_M)
        check_int("n", self.n, 1, None)
        if self.n >= self.m:
            raise CodecConfigError(
                f"n must be < m, got n={self.n}, m={self.m} (n = m is dense: use 'raw')"
            )
        check_choice("metadata", self.metadata, METADATA)

    @property
    def nm_pattern(self) -> tuple[int, int]:
        return (self.n, self.m)

    def get_config(self) -> dict[str, Any]:
        return fill_get_config(super().get_config())

    def encode_bits(self, bits: np.ndarray, dtype: np.dtype[Any]) -> Encoded:
        tables = nm_tables(self.n, self.m)
        fill = resolve_fill(self.fill, bits, dtype)
        codes, values = split_groups(bits, self.n, self.m, fill)
        if self.metadata == "pattern":
            meta = pack_codes(codes, tables.ncodes)
            name = "pattern"
        elif self.metadata == "index":
            meta = pack_fields(tables.positions[codes].reshape(-1), tables.index_bits)
            name = "index"
        else:
            meta = pack_fields(tables.code_masks[codes], self.m)
            name = "mask"
        fsec, fmeta = fill_sections(fill, geometry(bits.shape, self.m)[0])
        return Encoded(
            [values_section("values", values, dtype), Section(name, "index", meta), *fsec],
            meta=fmeta, config=fill_frame_config(self),
        )

    def _decode_codes(self, sections: SectionReader, ngroups: int) -> np.ndarray:
        """Group codes from "index" or "bitmask" metadata (validated)."""
        tables = nm_tables(self.n, self.m)
        if self.metadata == "index":
            raw = sections.array("index", np.uint8)
            pos = unpack_fields(raw, tables.index_bits, ngroups * self.n, "section 'index'")
            pos = pos.reshape(ngroups, self.n).astype(np.int64)
            if (pos >= self.m).any() or (np.diff(pos, axis=1) <= 0).any():
                raise FrameLayoutError(
                    f"section 'index' has positions that are not {self.n} distinct ascending "
                    f"values below m={self.m}"
                )
            masks = (np.int64(1) << pos).sum(axis=1)
        else:
            raw = sections.array("mask", np.uint8)
            masks = unpack_fields(raw, self.m, ngroups, "section 'mask'").astype(np.int64)
        codes = tables.code_of[masks]
        if (codes < 0).any():
            raise FrameLayoutError(
                f"section 'mask' has a group without exactly n={self.n} of m={self.m} bits set"
            )
        return codes.astype(np.uint16)

    def decode_bits(self, sections: SectionReader, info: FrameInfo) -> np.ndarray:
        return self.decode_parts(sections, info).to_bits(info.shape)

    def decode_parts(self, sections: SectionReader, info: FrameInfo) -> NMParts:
        """The validated group codes and value slots (see :mod:`._parts`)."""
        tables = nm_tables(self.n, self.m)
        ngroups = geometry(info.shape, self.m)[3]
        values = sections.values("values", info.dtype, ngroups * self.n)
        if self.metadata == "pattern":
            word, k = pattern_packing(tables.ncodes)
            words = sections.array("pattern", f"<u{word // 8}", -(-ngroups // k))
            packed, lut = packed_code_reader(words, tables.ncodes, ngroups)
        else:
            packed, lut = code_reader(self._decode_codes(sections, ngroups), tables.ncodes)
        return NMParts(self.n, self.m, packed, lut, values, read_fill(sections, info))

    def theoretical_nbytes(self, info: FrameInfo) -> int:
        return storage_nbytes(info.dtype, geometry(info.shape, self.m)[3] * self.n)
