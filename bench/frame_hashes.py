"""The SHA-1 of every hybrid frame over a varied set of tensors: diff two trees' outputs.

Run: ``python bench/frame_hashes.py [--seed S] [--count N] [--model PATH ...]`` in each tree
(``PYTHONPATH=TREE/src``), then ``diff`` the two outputs. A planner change that should choose
the same frames (a faster count, a pruned candidate that could not win) must print the same
lines; one that may choose differently must print no line whose size grew (issue 13: frames
may change only where they do not grow). The test suite holds frames to the golden files and
plans to their slower twins on the tensors it draws; this covers many more kinds of tensor at
once: it caught a planner change that failed on a kind the suite did not draw.

The tensors, each decoded and compared bit for bit before its line is printed:

- ``N`` narrow-row tensors (default 1200): rows of 1-9 entries (convolution kernels as
  checkpoints store them: ``[out, in, k, k]``, ``[out, in, k]``) under 1-3 leading axes,
  float32, bfloat16, float16, int8 or uint8; dense, unstructured, clustered, a frequent non-zero
  value, clustered at 50% zeros, offset per row, or clustered at 2:4 with one value in most
  kept slots (zeros and a non-zero mode: both fills planned);
- ``N // 4`` wide tensors of few or many distinct values: float32, float64, int32, uint32,
  bfloat16; sizes past 131,072 values (a planner's sample skips values) and rows padded past
  N:M's groups; 2:4, 50% or 70% zeros, or a frequent non-zero value (a mode fill);
- the cells of the default corpus (every dtype and variant), and of each ``--model`` file.

Each line: ``tag bytes sha1``.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np

import sparsecodecs as sc
from sparsecodecs.bench.corpus import builtin_sets, load_model, parse_variants
from sparsecodecs.bench.harness import build_cell
from sparsecodecs.transforms import prune

NARROW_DTYPES = (np.float32, ml_dtypes.bfloat16, np.float16, np.int8, np.uint8)
WIDE_DTYPES = (np.float32, np.float64, np.int32, np.uint32, ml_dtypes.bfloat16)
WIDE_SHAPES = ((300, 500), (384, 383), (64, 64), (4096, 40), (1000,), (131, 1001), (17, 3),
               (256, 258))


def narrow_tensor(rng: np.random.Generator) -> tuple[str, np.ndarray]:
    cols = int(rng.choice([1, 1, 2, 2, 3, 3, 4, 5, 7, 9]))
    lead = [int(rng.integers(1, 60)) for _ in range(int(rng.integers(1, 4)))]
    shape = (*lead, cols)
    dt = NARROW_DTYPES[int(rng.integers(len(NARROW_DTYPES)))]
    kind = int(rng.integers(7))
    x = rng.standard_normal(shape) * 0.05
    if kind == 1:
        x[rng.random(shape) < rng.random()] = 0
    elif kind == 2:
        x = np.round(x * 40) / 40
    elif kind == 3:
        x = np.where(rng.random(shape) < 0.6, 0.25, x)
    elif kind == 4:
        x = np.where(rng.random(shape) < 0.5, 0, np.round(x * 10))
    elif kind == 5:
        x = x + np.arange(x.shape[0]).reshape((-1,) + (1,) * (x.ndim - 1)) * 0.01
    elif kind == 6:  # clustered, 2:4 along the rows, one value in most kept slots: zeros and
        x = prune(np.round(x * 40) / 40, "2:4")[0]  # a non-zero mode, both fills planned
        x[(x != 0) & (rng.random(shape) < 0.7)] = 0.125
    if np.dtype(dt).kind in "iu":
        info = np.iinfo(dt)
        a = np.clip(np.round(x * 400) + (128 if dt == np.uint8 else 0), info.min, info.max)
    else:
        a = x
    return f"narrow {shape} {np.dtype(dt).name} kind{kind}", np.ascontiguousarray(_cast(a, dt))


def wide_tensor(rng: np.random.Generator, i: int) -> tuple[str, np.ndarray]:
    shape = WIDE_SHAPES[i % len(WIDE_SHAPES)]
    dt = WIDE_DTYPES[int(rng.integers(len(WIDE_DTYPES)))]
    x = rng.standard_normal(shape) * 0.05
    k = int(rng.choice([2, 5, 16, 200, 5000, 0]))
    if k:
        x = (rng.standard_normal(k) * 0.05)[rng.integers(0, k, shape)]
    kind = int(rng.integers(5))
    if kind == 1 and x.ndim == 2 and x.shape[1] % 4 == 0:
        x = prune(x, "2:4")[0]
    elif kind == 2:
        x[rng.random(shape) < 0.5] = 0
    elif kind == 3:
        x = np.where(rng.random(shape) < 0.6, x.flat[0], x)
    elif kind == 4:
        x = np.where(rng.random(shape) < 0.7, 0, x)
    a = np.round(x * 1000).astype(np.int64) if np.dtype(dt).kind in "iu" else x
    return f"wide {shape} {np.dtype(dt).name} k{k} kind{kind}", np.ascontiguousarray(_cast(a, dt))


def _cast(a: np.ndarray, dt: Any) -> np.ndarray:
    """``a.astype(dt)``, float64 -> bfloat16 through float32 whatever the ml_dtypes version
    (before 0.7 it rounds that way; 0.7.0 directly, which moves ~1 value in 10**5)."""
    if np.dtype(dt) == np.dtype(ml_dtypes.bfloat16) and a.dtype == np.float64:
        a = a.astype(np.float32)
    return a.astype(dt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=1200, help="narrow tensors; wide: 1/4")
    parser.add_argument("--model", type=Path, action="append", default=[],
                        help="a safetensors file whose cells to add (repeatable)")
    args = parser.parse_args()
    codec = sc.get_codec("hybrid")
    rng = np.random.default_rng(args.seed)

    def line(tag: str, a: np.ndarray) -> None:
        frame = codec.encode(a)
        if sc.decode(frame).tobytes() != a.tobytes():
            raise SystemExit(f"{tag}: the round trip is not bit-exact")
        print(tag, len(frame), hashlib.sha1(frame).hexdigest(), flush=True)

    for _ in range(args.count):
        line(*narrow_tensor(rng))
    for i in range(args.count // 4):
        line(*wide_tensor(rng, i))
    sets = [*builtin_sets("default"), *(load_model(m) for m in args.model)]
    for tset in sets:
        for dtype_key in ("bf16", "fp16", "fp32"):
            for variant in parse_variants(None, None):
                for t in build_cell(tset, dtype_key, variant)[1]:
                    line(f"{tset.name} {dtype_key} {variant.name} {t.name}", t.array)


if __name__ == "__main__":
    main()
