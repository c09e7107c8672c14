"""``csr``: compressed sparse rows (scipy.sparse's ``data``, ``indices``, ``indptr``)."""

from __future__ import annotations

from dataclasses import dataclass

from ._common import builtin
from ._compressed import CompressedSparse

__all__ = ["CSR"]


@builtin
@dataclass(frozen=True, kw_only=True)
class CSR(CompressedSparse):
    __doc__ = CompressedSparse.__doc__

    codec_id = "csr"
    description = "compressed sparse rows: values + column indices + row pointers"
    by_columns = False
