"""The built-in codecs, one module each. Importing this package registers them all."""

from __future__ import annotations

from .bitmask import Bitmask
from .csc import CSC
from .csr import CSR
from .nm import NM
from .raw import Raw

__all__ = ["CSC", "CSR", "NM", "Bitmask", "Raw"]
