"""The valid frames the fuzzers start from.

* the golden frames of the current format version (``tests/golden/v<N>/``): every built-in
  codec, its config variants and every supported dtype;
* frames of the edge shapes (rank 0, 0-size, ``1 x n``, rank 3, last axes that are not a
  multiple of ``m``) for every codec config of the golden manifest, in a 1-, 2- and 4-byte dtype;
* the golden frames outside the manifests (``tests/golden/blocks/``: hybrid frames whose top
  fields are coded in blocks, and whose low fields are shifted block by block).

Used by ``tests/test_fuzz.py``, ``run_mutations.py`` and ``fuzz_decode.py``.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

import sparsecodecs as sc
from sparsecodecs.registry import FORMAT_VERSION
from sparsecodecs.registry.dtypes import dtype_from_name
from sparsecodecs.testing import EDGE_SHAPES, from_bits

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / f"v{FORMAT_VERSION}"
BLOCKS = GOLDEN.parent / "blocks"
EDGE_DTYPES = ("uint8", "bfloat16", ">float32")


def golden_cases() -> list[dict[str, Any]]:
    """The current golden manifest's cases (FileNotFoundError if there is none)."""
    cases: list[dict[str, Any]] = json.loads((GOLDEN / "manifest.json").read_text())["cases"]
    return cases


@lru_cache(maxsize=1)
def golden_frames() -> tuple[bytes, ...]:
    return tuple((GOLDEN / case["frame"]).read_bytes() for case in golden_cases())


def _edge_array(shape: tuple[int, ...], dtype: str, nm: tuple[int, int] | None) -> np.ndarray:
    dt = dtype_from_name(dtype)
    width = np.dtype(f"u{dt.itemsize}")
    size = math.prod(shape)
    rng = np.random.default_rng(size)
    bits = rng.integers(0, 1 << (8 * dt.itemsize), size, dtype=width, endpoint=False)
    bits[rng.random(size) < 0.4] = 0
    bits = bits.reshape(shape)
    if nm is not None and shape:
        n, m = nm
        bits = np.where(np.arange(shape[-1]) % m < n, bits, width.type(0))
    return from_bits(np.ascontiguousarray(bits, width), dt)


@lru_cache(maxsize=1)
def edge_frames() -> tuple[bytes, ...]:
    configs = {json.dumps(case["codec"], sort_keys=True) for case in golden_cases()}
    frames = []
    for text in sorted(configs):
        config = json.loads(text)
        codec = sc.get_codec(config)
        for dtype in EDGE_DTYPES:
            for shape in EDGE_SHAPES:
                try:
                    frames.append(codec.encode(_edge_array(shape, dtype, codec.nm_pattern)))
                except sc.SparseCodecsError:  # e.g. values="fields" of 1-byte values
                    continue
    return tuple(frames)


def seed_frames() -> tuple[bytes, ...]:
    """Every seed: the golden frames, the edge-shape frames, then the other golden frames."""
    others = tuple(p.read_bytes() for p in sorted(BLOCKS.glob("*.spcf")))
    return golden_frames() + edge_frames() + others
