"""One large frame decoded on 1 and 2 threads: ``sc.decode(frame, threads=N)``.

Run: ``python bench/threads_speed.py [codec ...]`` (default: hybrid nm bitmask). A 4096x4096
2:4-pruned bfloat16 tensor (normal weights) is encoded once per codec; each round decodes it
with ``threads=1`` and ``threads=2``, alternating, and the best wall time of each is kept
(wall time: threads are about wall time). The speed-up needs two free cores: the load average
is printed with the result.
"""

from __future__ import annotations

import os
import sys
import time

import ml_dtypes
import numpy as np

import sparsecodecs as sc
from sparsecodecs.transforms import prune


def main() -> None:
    codecs = sys.argv[1:] or ["hybrid", "nm", "bitmask"]
    rng = np.random.default_rng(0)
    dense = (rng.standard_normal((4096, 4096)) * 0.02).astype(np.float32)
    w = prune(dense, "2:4")[0].astype(ml_dtypes.bfloat16)
    for name in codecs:
        frame = sc.get_codec(name).encode(w)
        best = {1: float("inf"), 2: float("inf")}
        for _ in range(7):
            for threads in (1, 2):
                start = time.perf_counter()
                out = sc.decode(frame, threads=threads)
                best[threads] = min(best[threads], time.perf_counter() - start)
        assert out.tobytes() == w.tobytes()
        gbs = {t: w.nbytes / s / 1e9 for t, s in best.items()}
        print(f"{name:8} threads=1 {best[1] * 1e3:6.1f} ms ({gbs[1]:.2f} GB/s)   threads=2 "
              f"{best[2] * 1e3:6.1f} ms ({gbs[2]:.2f} GB/s)   speed-up {best[1] / best[2]:.2f}x"
              f"   load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
