"""The built-in codecs, one module each. Importing this package registers them all."""

from __future__ import annotations

from .bitmask import Bitmask
from .centroid import Centroid
from .csc import CSC
from .csr import CSR
from .huffman import Huffman
from .hybrid import Hybrid
from .nm import NM
from .raw import Raw
from .window import Window

__all__ = ["CSC", "CSR", "NM", "Bitmask", "Centroid", "Huffman", "Hybrid", "Raw", "Window"]
