"""Multiply by many hostile frames and check every product against the frame's decode.

The product kernels (``kernels/compute.c``) read a frame's sections where they lie: pattern
codes, masks, row pointers and, for 2:4 weights, the values themselves. Each frame here is drawn
by ``sparsecodecs.testing.hostile_frames`` from weight frames of every codec configuration the
products take (``tests/test_compute.py``'s ``CODECS``: the zero-skipping layouts and the generic
ones), of bfloat16, float16 and float32 values, at shapes (40, 70), (33, 136) and (37, 1102):
rows filling more than one of the AVX-512 SpMM's blocks of 32, rows of several column blocks;
and at (33, 136) of positive values too (hybrid frames of ``rotate: 0``).
``sparsecodecs.matmul`` then multiplies it by an ``x`` of each kernel's batches (1, 5, 8, 13,
33, 64; float32 and bfloat16; one and two threads), and every outcome is checked against
``sparsecodecs.decode``'s:

* only ``SparseCodecsError`` subclasses escape, and numpy warns nothing;
* a frame that ``decode`` refuses, ``matmul`` refuses too (an ``x`` that the header's shape does
  not fit is refused with a ``ShapeError`` first, which counts);
* a frame that ``decode`` accepts as a 2-D bfloat16, float16 or float32 weight gives the
  product of the decoded weight: within float32 summation's bound ``2 (k + 2) eps sum|x||w|``
  where that sum is below 1e30, NaN where the exact product is NaN, not finite where it is
  infinite.

Failures do not stop the run; each is saved under ``--out`` (the frame, what was changed and
what went wrong). A product that takes longer than ``--hang`` seconds ends the run. Run it under
the AddressSanitizer build to check the kernels' reads as well (docs/security.md).

    python tests/fuzz/run_products.py --count 20000 --seed 1

Exit status: 0 if every frame kept the guarantee, 1 otherwise. About 100 frames a second.
"""

from __future__ import annotations

import collections
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed

import sparsecodecs as sc
from sparsecodecs.registry import read_frame
from sparsecodecs.testing import Mutation, hostile_frames
from sparsecodecs.transforms import prune

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from run_mutations import Watchdog, _save, report, runner_args

from test_compute import CODECS

BF16 = np.dtype(ml_dtypes.bfloat16)
#: The weight dtypes the products take.
WEIGHTS = {"bfloat16": BF16, "float16": np.dtype(np.float16), "float32": np.dtype(np.float32)}
SHAPES = [(40, 70), (33, 136), (37, 1102)]
#: (batch, dtype of x, threads): the GEMV (1), the batch 2-8 kernels (5, 8, and bfloat16 pair
#: products at 8), the SpMM at 16 and 64 lanes (13, 33, 64).
PRODUCTS = [(1, np.float32, 1), (1, np.float32, 2), (5, np.float32, 1), (8, np.float32, 2),
            (8, BF16, 1), (13, np.float32, 1), (33, np.float32, 2), (64, BF16, 1),
            (64, np.float32, 1)]
EPS32 = float(np.finfo(np.float32).eps)


def seed_weights() -> list[bytes]:
    """One frame of each codec config, weight dtype and shape (40% zeros, pruned N:M where the
    config needs it), and at the middle shape one of positive weights too (hybrid's
    ``rotate: 0`` frames)."""
    rng = np.random.default_rng(0)
    frames = []
    for config, _, pattern in CODECS:
        for dtype in WEIGHTS.values():
            for shape, sign in [*((s, None) for s in SHAPES), (SHAPES[1], 1)]:
                w = rng.standard_normal(shape) * 0.5
                w = (np.abs(w) if sign else w).astype(dtype)
                w[rng.random(shape) < 0.4] = 0
                if pattern is not None:
                    w = prune(w, pattern)[0]
                frames.append(sc.get_codec(config).encode(w))
    return frames


def _declared_cols(frame: bytes) -> int:
    """The columns of the 2-D weight the frame's header declares, if it parses (else 70)."""
    try:
        shape = read_frame(frame).info.shape
    except sc.SparseCodecsError:
        return 70
    return shape[1] if len(shape) == 2 and 0 < shape[1] <= 4096 else 70


def _mismatch(y: np.ndarray, x: np.ndarray, w: np.ndarray) -> str:
    """What is wrong with ``y`` as ``x @ w.T`` in float32 ('' if nothing)."""
    with np.errstate(all="ignore"):
        x64, w64 = x.astype(np.float64), w.astype(np.float64)
        ref = x64 @ w64.T
        bound = np.abs(x64) @ np.abs(w64).T
        if y.shape != ref.shape or y.dtype != np.float32:
            return f"result {y.shape} {y.dtype}, expected {ref.shape} float32"
        y64 = y.astype(np.float64)
        k = w.shape[1]
        close = np.isfinite(ref) & (bound < 1e30)
        err = np.abs(y64 - ref)
        tol = 2 * (k + 2) * EPS32 * bound + (k + 2) * 2.0**-120  # subnormals flushed
        bad = close & ~(err <= tol)
        bad |= np.isnan(ref) & ~np.isnan(y64)
        bad |= np.isinf(ref) & np.isfinite(y64)
    if bad.any():
        i = tuple(int(v) for v in np.argwhere(bad)[0])
        return f"element {i} is {y[i]!r}, the decoded weight's product {ref[i]!r}"
    return ""


def check(frame: bytes) -> tuple[list[str], list[str]]:
    """(outcomes, problems) of ``frame`` through decode and every product of PRODUCTS."""
    problems: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            decoded: np.ndarray | sc.SparseCodecsError = sc.decode(frame, max_bytes=1 << 28)
    except sc.SparseCodecsError as exc:
        decoded = exc
    except Exception as exc:
        return ["FAILURE"], [f"decode raised {type(exc).__name__}: {exc}"]
    weight = (isinstance(decoded, np.ndarray) and decoded.ndim == 2
              and decoded.dtype in WEIGHTS.values() and 0 < decoded.shape[1] <= 4096
              and decoded.shape[0] <= 1 << 16)
    cols = decoded.shape[1] if weight else _declared_cols(frame)  # type: ignore[union-attr]
    outcomes = []
    for batch, xdtype, threads in PRODUCTS:
        what = f"batch {batch} {np.dtype(xdtype).name} x, {threads} thread(s)"
        x = np.random.default_rng(batch).standard_normal((batch, cols)).astype(xdtype)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                y = sc.matmul(x, frame, threads=threads)
        except sc.SparseCodecsError as exc:
            outcomes.append(f"refused: {type(exc).__name__}")
            if weight:
                problems.append(f"{what}: matmul refused a weight decode accepts: "
                                f"{type(exc).__name__}: {exc}")
            continue
        except Exception as exc:
            problems.append(f"{what}: matmul raised {type(exc).__name__}: {exc}")
            continue
        if not isinstance(decoded, np.ndarray):
            problems.append(f"{what}: matmul accepted a frame decode refuses "
                            f"({type(decoded).__name__}: {decoded})")
        elif weight:
            wrong = _mismatch(y, x, decoded)
            if wrong:
                problems.append(f"{what}: {wrong}")
        outcomes.append("multiplied")
    return (["FAILURE"] if problems else outcomes), problems


def run(count: int, seed: int, out: Path, hang: float) -> dict[str, Any]:
    """Multiply by ``count`` hostile frames; returns the counts by outcome and the failures."""
    seeds = seed_weights()
    outcomes: collections.Counter[str] = collections.Counter()
    failures: list[str] = []
    frames = 0
    watchdog = Watchdog(hang, out)
    watchdog.start()

    @hypothesis_seed(seed)
    @settings(max_examples=count, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    @given(hostile_frames(seeds))
    def one(mutation: Mutation) -> None:
        nonlocal frames
        watchdog.current = (time.monotonic(), mutation)
        try:
            kinds, problems = check(mutation.frame)
        finally:
            watchdog.current = None
        outcomes.update(kinds)
        if problems:
            path = _save(out, "fail", mutation, "\n".join(problems))
            failures.append(f"{path}: {mutation.description}: {problems[0]}")
        frames += 1
        if frames % 5_000 == 0:
            print(f"{frames} frames, {len(failures)} failures", flush=True)

    one()
    return {"outcomes": outcomes, "failures": failures, "seeds": len(seeds)}


def main(argv: list[str] | None = None) -> int:
    args = runner_args(__doc__.split("\n\n")[0], argv, count=2_000,
                       count_help="frames to multiply by",
                       hang_help="seconds after which one frame's products count as a hang")
    start = time.monotonic()
    result = run(args.count, args.seed, args.out, args.hang)
    print(f"{args.count} hostile frames from {result['seeds']} seeds (seed {args.seed}), "
          f"{len(PRODUCTS)} products each, in {time.monotonic() - start:.0f} s")
    return report(result)


if __name__ == "__main__":
    sys.exit(main())
