"""hybrid's frame bytes against ZipNN's, tensor by tensor, on random tensors of many families.

Run: ``python bench/zipnn_sizes.py [--count N] [--seed S]`` (needs ``pip install zipnn``).
Issue 13 asks that hybrid be never larger than ZipNN; the bench's cells sum a cell's tensors,
which can hide one tensor that is larger. This draws ``N`` tensors (default 600), each of a
random dtype (bfloat16, float16, float32), shape (rows 1-1000 x cols 8-1536, the sizes of
biases and norms up to layers), family and sparsity, and compares the two frames' bytes
tensor by tensor. Families: ``normal`` and ``uniform`` weights, Student's ``t3``, ``kaiming``
uniform, ``lognormal`` (one sign: variances, positive scales), ``ones+noise`` (norm gains),
``tiny`` (1e-6 scale), ``int-valued`` floats (-8..7); scales 1e-4 to 3; dense, 2:4 or 50%
zeros. Prints how many tensors are larger than ZipNN's, the worst ones by bytes, and the
misses by dtype, family and sparsity.
"""

from __future__ import annotations

import argparse
import warnings

import ml_dtypes
import numpy as np

import sparsecodecs as sc
from sparsecodecs.transforms import prune

DTYPES = {"bf16": ("bfloat16", ml_dtypes.bfloat16), "fp16": ("float16", np.float16),
          "fp32": ("float32", np.float32)}
FAMILIES = ("normal", "uniform", "t3", "lognormal", "kaiming", "tiny", "ones+noise",
            "int-valued")


def draw(rng: np.random.Generator) -> tuple[str, np.ndarray, str]:
    """(dtype key, tensor, description) of one random tensor."""
    dt = str(rng.choice(list(DTYPES)))
    shape = (int(rng.choice([1, 3, 16, 64, 80, 256, 384, 768, 1000])),
             int(rng.choice([8, 27, 64, 80, 100, 384, 576, 1000, 1536])))
    family = str(rng.choice(FAMILIES))
    scale = float(10 ** rng.uniform(-4, 0.5))
    a = {
        "normal": lambda: rng.standard_normal(shape) * scale,
        "uniform": lambda: rng.uniform(-scale, scale, shape),
        "t3": lambda: rng.standard_t(3, shape) * scale,
        "lognormal": lambda: rng.lognormal(0, 1, shape) * scale,
        "kaiming": lambda: rng.uniform(-1, 1, shape) / np.sqrt(shape[1]),
        "tiny": lambda: rng.standard_normal(shape) * 1e-6,
        "ones+noise": lambda: 1 + rng.standard_normal(shape) * 0.01,
        "int-valued": lambda: rng.integers(-8, 8, shape).astype(float),
    }[family]().astype(np.float32)
    sparsity = str(rng.choice(["dense", "dense", "2:4", "50%"]))
    if sparsity == "2:4" and shape[1] % 4 == 0:
        a = prune(a, "2:4")[0]
    elif sparsity == "50%":
        a[rng.random(shape) < 0.5] = 0
    else:
        sparsity = "dense"
    return dt, a.astype(DTYPES[dt][1]), f"{dt} {shape[0]}x{shape[1]} {family} {sparsity}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # ZipNN's own warnings
    import zipnn

    rng = np.random.default_rng(args.seed)
    hybrid = sc.get_codec("hybrid")
    rows = []
    for _ in range(args.count):
        dt, a, what = draw(rng)
        z = zipnn.ZipNN(input_format="byte", bytearray_dtype=DTYPES[dt][0], threads=1)
        ours, theirs = len(hybrid.encode(a)), len(z.compress(bytearray(a.tobytes())))
        rows.append((ours - theirs, ours, theirs, what))
    larger = [r for r in rows if r[0] > 0]
    total = sum(r[1] for r in rows) / sum(r[2] for r in rows)
    print(f"{args.count} tensors (seed {args.seed}): hybrid larger than ZipNN on {len(larger)}, "
          f"by {sum(r[0] for r in larger)} bytes in all; all frames {total:.4f}x ZipNN's")
    for diff, ours, theirs, what in sorted(rows, reverse=True)[:15]:
        print(f"  {diff:+6d} B  {ours:8d} vs {theirs:8d}  {what}")
    # where the misses gather: by dtype, family and sparsity (the shape left out)
    groups: dict[str, list[int]] = {}
    for diff, _, _, what in larger:
        dt, _, family, sparsity = what.split()
        groups.setdefault(f"{dt} {family} {sparsity}", []).append(diff)
    if groups:
        print("larger, by kind (tensors, bytes in all):")
        for kind, diffs in sorted(groups.items(), key=lambda kv: -sum(kv[1])):
            print(f"  {kind:28s} {len(diffs):4d} {sum(diffs):7d}")


if __name__ == "__main__":
    main()
