"""Sizes of the layout codecs on a 2:4-pruned bfloat16 4096x4096 gaussian tensor.

Run: ``python bench/foundation_sizes.py`` (the foundation issue's acceptance numbers; the same
case is asserted in tests/test_layouts.py).
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

import sparsecodecs as sc
from sparsecodecs.transforms import prune


def main() -> None:
    rng = np.random.default_rng(0)
    dense = rng.standard_normal((4096, 4096), dtype=np.float32).astype(ml_dtypes.bfloat16)
    w, _ = prune(dense, "2:4")
    print(f"{'codec':38} {'frame %':>9} {'theoretical %':>14} {'header B':>9}")
    for name, params in [
        ("nm", {"metadata": "index"}),
        ("nm", {}),
        ("nm", {"metadata": "bitmask"}),
        ("bitmask", {}),
        ("csr", {}),
        ("csc", {}),
        ("hybrid", {}),
    ]:
        frame = sc.get_codec(name, **params).encode(w)
        assert sc.decode(frame).view(np.uint16).tobytes() == w.view(np.uint16).tobytes()
        rep = sc.inspect(frame)
        label = f"{name}({', '.join(f'{k}={v}' for k, v in rep.config.items())})"
        print(f"{label[:38]:38} {100 * rep.effective:9.3f} {100 * rep.theoretical:14.3f} "
              f"{rep.role_bytes['header']:9d}")


if __name__ == "__main__":
    main()
