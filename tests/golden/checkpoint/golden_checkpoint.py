"""The tensors of ``container-v1.sc.safetensors``, a checkpoint of container version 1 written by
sparsecodecs 0.1.0 before row blocks existed (commit a586ff4), kept to prove that such files stay
readable. It is never regenerated: it was written once with that commit's code by running this
file as a script (``PYTHONPATH=<a586ff4>/src python tests/golden/checkpoint/golden_checkpoint.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import ml_dtypes
import numpy as np

FILE = Path(__file__).with_name("container-v1.sc.safetensors")


def golden_tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(6)
    w = rng.standard_normal((64, 32)).astype(np.float32)
    w[:, 1::2] = 0
    w.view(np.uint32)[0, 0] = 0x7FC00123  # a NaN payload
    return {
        "embed": w,
        "bf16": rng.standard_normal((40, 8)).astype(ml_dtypes.bfloat16),
        "mask": np.arange(12).reshape(4, 3) % 3 == 0,
        "ids": np.arange(-5, 5, dtype=np.int64),
    }


if __name__ == "__main__":  # pragma: no cover - run once, with the old code
    import sparsecodecs as sc

    if FILE.exists():
        sys.exit(f"{FILE} exists; it is pinned and never regenerated")
    sc.save_file(golden_tensors(), FILE, metadata={"format": "pt"})
