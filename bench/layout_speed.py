"""Decode speed of the layout codecs on a 2:4-pruned bfloat16 4096x4096 tensor vs memcpy.

Run: ``python bench/layout_speed.py`` (single thread; best of 9 decodes, after a warm-up call
that builds the kernels' tables).
"""

from __future__ import annotations

import time

import ml_dtypes
import numpy as np

import sparsecodecs as sc
from sparsecodecs.transforms import prune


def best_of(fn: object, repeats: int = 9) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    rng = np.random.default_rng(0)
    dense = rng.standard_normal((4096, 4096), dtype=np.float32).astype(ml_dtypes.bfloat16)
    w, _ = prune(dense, "2:4")
    print(f"memcpy {w.nbytes / best_of(w.copy) / 1e9:6.2f} GB/s")
    for name in ("nm", "bitmask", "hybrid"):
        frame = sc.get_codec(name).encode(w)
        sc.decode(frame)
        seconds = best_of(lambda frame=frame: sc.decode(frame))
        print(f"{name:8} decode {w.nbytes / seconds / 1e9:6.2f} GB/s  "
              f"({100 * len(frame) / w.nbytes:.2f}% of dense)")


if __name__ == "__main__":
    main()
