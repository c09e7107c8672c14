"""CSR and CSC, written once: CSC is CSR of the transposed 2-D view."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..registry import (
    Codec,
    Encoded,
    FrameInfo,
    FrameLayoutError,
    Section,
    SectionReader,
    storage_nbytes,
    values_section,
)
from ._common import as_2d, narrowest_uint
from ._fill import (
    FillSpec,
    check_fill,
    fill_frame_config,
    fill_get_config,
    fill_sections,
    read_fill,
    resolve_fill,
)
from ._kernels import csr_dense, csr_rows_increasing, csr_split, kept_count
from ._parts import CompressedParts

__all__ = ["CompressedSparse"]


@dataclass(frozen=True, kw_only=True)
class CompressedSparse(Codec):
    """scipy.sparse's compressed layout over the 2-D view of the input.

    Tensors of rank other than 2 are viewed as 2-D: leading axes flattened, the last axis kept
    (rank 0 is 1 x 1, rank 1 is 1 x n). Sections: ``data`` (values), ``indices`` (index; the
    minor-axis position of each value, the narrowest unsigned dtype holding ``minor - 1``) and
    ``indptr`` (index; ``major + 1`` offsets, the narrowest unsigned dtype holding ``nnz``).
    ``data`` of the 4-bit dtypes is packed two values per byte. Meta: ``nnz``. Theoretical size:
    the ``data`` section.

    ``fill`` is the value that counts as empty (see :mod:`._fill`): with a non-zero fill the
    layout stores the entries that differ from their row's fill (rows of the 2-D view, also
    for CSC), and the frame gets a ``fill`` section.
    """

    fill: FillSpec = field(default="zero", metadata={"omit_default": True})

    #: False: rows are the major axis (CSR). True: columns are (CSC).
    by_columns: ClassVar[bool] = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "fill", check_fill(self.fill))

    def get_config(self) -> dict[str, Any]:
        return fill_get_config(super().get_config())

    def _dims(self, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        rows, cols = as_2d(shape)
        major, minor = (cols, rows) if self.by_columns else (rows, cols)
        return rows, cols, major, minor

    def encode_bits(self, bits: np.ndarray, dtype: np.dtype[Any]) -> Encoded:
        rows, cols, major, minor = self._dims(bits.shape)
        flat = bits.reshape(-1)
        fill = resolve_fill(self.fill, bits, dtype)
        # the entries kept counted first (the index and pointer widths depend on it), then
        # the layout in one pass of the kernel, which writes ahead into a spare slot
        nnz = kept_count(flat, fill, cols)
        indptr = np.empty(major + 1, narrowest_uint(nnz))
        data = np.empty(nnz + 1, flat.dtype)
        indices = np.empty(nnz + 1, narrowest_uint(max(minor - 1, 0)))
        csr_split(flat, rows, cols, self.by_columns, fill, data, indices, indptr)
        data, indices = data[:nnz], indices[:nnz]
        fsec, fmeta = fill_sections(fill, rows)
        return Encoded(
            [
                values_section("data", data, dtype),
                Section("indices", "index", indices),
                Section("indptr", "index", indptr),
                *fsec,
            ],
            meta={"nnz": nnz, **fmeta},
            config=fill_frame_config(self),
        )

    def decode_bits(self, sections: SectionReader, info: FrameInfo) -> np.ndarray:
        if "fill" in info.meta:  # onto the fill: the checked parts' scatter
            return self.decode_parts(sections, info).to_bits(info.shape)
        # onto zeros: decode_parts' checks made by the kernel, row by row as it writes, in
        # one pass; if it finds anything wrong, decode_parts says what
        data, indices, indptr, major, minor = self._arrays(sections, info)
        out = np.zeros(major * minor, data.dtype)
        if not csr_dense(indptr, indices, data, out, major, minor, self.by_columns, check=True):
            self._check(indices, indptr, minor)
            raise FrameLayoutError(  # the two readers disagree: a bug, reported as a frame error
                "the compiled CSR decode refused sections that decode_parts accepts")
        return out.reshape(info.shape)

    def _arrays(
        self, sections: SectionReader, info: FrameInfo
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
        """``data``, ``indices`` and ``indptr``, of the sizes the header gives; major, minor."""
        _, _, major, minor = self._dims(info.shape)
        nnz = info.meta_int("nnz", 0, info.size)
        data = sections.values("data", info.dtype, nnz)
        indices = sections.array("indices", narrowest_uint(max(minor - 1, 0)), nnz)
        indptr = sections.array("indptr", narrowest_uint(nnz), major + 1)
        return data, indices, indptr, major, minor

    @staticmethod
    def _check(indices: np.ndarray, indptr: np.ndarray, minor: int) -> None:
        """FrameLayoutError unless the pointers run from 0 to nnz, never down, and the indices
        are below ``minor`` and strictly increasing within each row."""
        nnz = indices.size
        if indptr[0] != 0 or indptr[-1] != nnz:
            raise FrameLayoutError(
                f"section 'indptr' must start at 0 and end at nnz={nnz}, "
                f"got {int(indptr[0])} .. {int(indptr[-1])}"
            )
        if (indptr[1:] < indptr[:-1]).any():
            raise FrameLayoutError("section 'indptr' is not monotone non-decreasing")
        if nnz:
            if int(indices.max()) >= minor:
                raise FrameLayoutError(
                    f"section 'indices' holds {int(indices.max())}, out of range for an axis of "
                    f"length {minor}"
                )
            if not csr_rows_increasing(indptr, indices):
                raise FrameLayoutError(
                    "section 'indices' is not strictly increasing within each row"
                )

    def decode_parts(self, sections: SectionReader, info: FrameInfo) -> CompressedParts:
        """The validated ``data``, ``indices`` and ``indptr`` (see :mod:`._parts`)."""
        data, indices, indptr, _, minor = self._arrays(sections, info)
        self._check(indices, indptr, minor)
        return CompressedParts(data, indices, indptr, self.by_columns, read_fill(sections, info))

    def theoretical_nbytes(self, info: FrameInfo) -> int:
        return storage_nbytes(info.dtype, info.meta_int("nnz", 0, info.size))
