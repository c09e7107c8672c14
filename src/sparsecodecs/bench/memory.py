"""Peak memory of a call, as :mod:`tracemalloc` sees it (used by the compute benchmark)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

__all__ = ["traced_peak"]


def traced_peak(fn: Callable[[], Any]) -> int:
    """Bytes allocated at the peak of ``fn()``, above what was allocated before it.

    numpy registers its buffers with :mod:`tracemalloc`, so this counts every array ``fn``
    creates; memory the C kernels allocate for themselves (small scratch buffers) is not seen.
    Tracing slows allocation down: time the call separately.
    """
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        fn()
        return max(0, tracemalloc.get_traced_memory()[1] - before)
    finally:
        if not was_tracing:
            tracemalloc.stop()
