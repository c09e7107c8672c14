"""Row blocks multiplied on 1 and 2 threads: ``sc.matmul(x, layer, threads=N)``.

Run: ``python bench/block_threads.py [SHAPE:CODEC ...]`` (default: 1536x384 and 384x1536
``hybrid``, 1536x384 ``nm``, 4096x4096 ``hybrid``). Each weight is 2:4-pruned normal bfloat16
in a ``CompressedLinear`` of 256-row blocks; ``x`` one row (batch 1). For each, the best of
three loops at ``threads=1`` and at ``threads=2`` (wall time: threads are about wall time).
The speed-up needs two free cores: the load average is printed with the result.
"""

from __future__ import annotations

import os
import sys
import time

import ml_dtypes
import numpy as np

import sparsecodecs as sc
from sparsecodecs.transforms import prune

DEFAULT = ["1536x384:hybrid", "384x1536:hybrid", "1536x384:nm", "4096x4096:hybrid"]


def main() -> None:
    rng = np.random.default_rng(0)
    for spec in sys.argv[1:] or DEFAULT:
        shape_text, codec = spec.split(":")
        rows, cols = (int(n) for n in shape_text.split("x"))
        w = prune((rng.standard_normal((rows, cols)) * 0.02).astype(np.float32), "2:4")[0]
        layer = sc.CompressedLinear.from_array(w.astype(ml_dtypes.bfloat16), codec,
                                               block_rows=256)
        x = rng.standard_normal((1, cols)).astype(np.float32)
        loops = max(5, 1_000_000 // (rows * cols // 100))
        best = {}
        for threads in (1, 2):
            sc.matmul(x, layer, threads=threads)  # warm-up
            times = []
            for _ in range(3):
                start = time.perf_counter()
                for _ in range(loops):
                    sc.matmul(x, layer, threads=threads)
                times.append((time.perf_counter() - start) / loops)
            best[threads] = min(times) * 1e3
        print(f"{spec} ({len(layer.frames)} blocks): 1 thread {best[1]:.3f} ms, "
              f"2 threads {best[2]:.3f} ms")
    print("load average:", " ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
