"""``csc``: compressed sparse columns, CSR of the transposed 2-D view."""

from __future__ import annotations

from dataclasses import dataclass

from ._common import builtin
from ._compressed import CompressedSparse

__all__ = ["CSC"]


@builtin
@dataclass(frozen=True, kw_only=True)
class CSC(CompressedSparse):
    __doc__ = CompressedSparse.__doc__

    codec_id = "csc"
    description = "compressed sparse columns: values + row indices + column pointers"
    by_columns = True
