"""Products on compressed weights: :func:`matmul` and :class:`CompressedLinear`
(:mod:`sparsecodecs.compute.products`, over the fused kernels of ``kernels/compute.c``), and the
PyTorch drop-in :mod:`sparsecodecs.compute.torch` (also importable as
:mod:`sparsecodecs.torch`; it needs torch, which importing this package never does)."""

from __future__ import annotations

from .products import DEFAULT_BLOCK_ROWS, CompressedLinear, MatmulStats, matmul

__all__ = ["DEFAULT_BLOCK_ROWS", "CompressedLinear", "MatmulStats", "matmul"]
