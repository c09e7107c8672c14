"""The compiled kernels: one C extension, ``sparsecodecs.kernels._native``, built by
``pip install`` (see ``setup.py``). No JIT: a fresh process runs them from its first call.

The contract every kernel keeps (``native.h`` says it for the C side):

* arrays arrive through the buffer protocol, C-contiguous; a strided array is refused with
  ``BufferError`` (the kernels address items from the data pointer);
* the Python layer validates first (sizes, index ranges, what a frame claims) and allocates
  the outputs; a kernel still checks whatever it reads from frame data and returns an error
  code, never writes outside its buffers;
* the work runs with the GIL released, so several threads can run kernels at once;
* every SIMD path (SSSE3, AVX2, AVX-512 on x86-64) has a portable scalar twin that writes the
  same bytes. The level is chosen once at import from the CPU (``avx512`` needs AVX-512 F, BW
  and VL; the ``window`` product and the zero-skipping SpMM have AVX-512 paths, every other
  kernel runs its AVX2 path there); ``SPARSECODECS_SIMD=scalar`` (or ``ssse3``, ``avx2``)
  caps it for a process, :func:`use_simd` for a block of code (tests).

Each kernel has a plain-numpy or pure-Python reference in the test suite that it must match
bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from . import _native

__all__ = ["LEVELS", "cpu_simd", "simd", "use_simd"]

#: SIMD levels by name, in increasing order.
LEVELS = {"scalar": _native.SCALAR, "ssse3": _native.SSSE3, "avx2": _native.AVX2,
          "avx512": _native.AVX512}


def simd() -> str:
    """The SIMD level in force: ``"scalar"``, ``"ssse3"``, ``"avx2"`` or ``"avx512"``."""
    level = _native.get_simd()
    return next(name for name, v in LEVELS.items() if v == level)


def cpu_simd() -> str:
    """The best SIMD level this CPU offers."""
    level = _native.cpu_simd()
    return next(name for name, v in LEVELS.items() if v == level)


@contextmanager
def use_simd(level: str) -> Iterator[None]:
    """Run the block at SIMD ``level`` (``"scalar"`` ... ``"avx512"``), then restore.

    Raises ValueError for an unknown level or one this CPU does not have. Not thread-safe:
    the level is process-wide (meant for tests comparing a SIMD path with its scalar twin).
    """
    if level not in LEVELS:
        raise ValueError(f"unknown SIMD level {level!r}; expected one of {', '.join(LEVELS)}")
    prev = _native.set_simd(LEVELS[level])
    try:
        yield
    finally:
        _native.set_simd(prev)
