"""Products on compressed weights: time, peak memory, bytes read and multiply-adds.

For each weight (bfloat16, N(0, 0.02), seeded; pruned 2:4 along the input axis, or dense) and
shape (4096 x 4096 and the all-MiniLM-L6-v2 layer shapes), each codec and each batch size, it
measures three ways of computing ``x @ W.T`` in float32, single-threaded:

* ``sc.matmul``: :func:`sparsecodecs.matmul` on the frame (or the :class:`CompressedLinear`
  of 256-row block frames, codec ``hybrid/256``; ``hybrid-nm`` is hybrid with ``layout="nm"``);
* ``(a) decode``: ``x @ sc.decode(frame).astype(float32).T``, decode to dense first;
* ``(b) f32 copy``: ``x @ w32.T`` on a dense float32 copy kept in memory.

Times are the minimum over ``--repeat`` calls (after a warm-up call). Peak memory is what
:mod:`tracemalloc` sees allocated during one call (numpy buffers; the few kilobytes of kernel
scratch, malloc'd in C, are not traced), and ``held`` is what each way keeps between
calls: the frame(s), or the float32 copy. ``read`` is the weight bytes one product reads (the
frame), next to the dense bfloat16 and float32 sizes, and ``MACs`` the multiply-adds the product
did as a fraction of a dense product's (counted by the kernels, see ``MatmulStats``).

Usage::

    python bench/compute_bench.py                  # everything (a few minutes on 2 cores)
    python bench/compute_bench.py --shapes 4096x4096 --batches 1 --repeat 7
    python bench/compute_bench.py --tiny           # a smoke run on 64 x 64
    python bench/compute_bench.py --json out.json  # also write every row as JSON
    python bench/compute_bench.py --ratios         # against torch F.linear over a layer stack
    python bench/compute_bench.py --ratios --codecs nm --batches 8 64 --x float32 bfloat16

``--ratios`` (see :func:`stack_ratios`) is the issue-14 measurement: ``sc.matmul`` against
torch's dense ``F.linear`` on the same 2:4 bfloat16 weights (the faster of bf16 and a float32
copy), over a stack of layers much larger than the last-level cache, 4096x4096 and 11008x4096,
batch 1/8/64, 1 and 2 threads, with the load average of the machine beside every ratio.
``--x bfloat16`` gives our products x in bfloat16, as torch's bfloat16 run gets it (2:4
bfloat16 weights then take pair products from batch 5; see ``sparsecodecs.matmul``).
``--codecs bitmask@50% csr@50% hybrid/256@dense`` (and ``hybrid/256@50%``) run on other weights:
unstructured 50% and dense (torch's dense time does not depend on the values).

Not part of the test suite's timing; ``bench/test_compute_bench.py`` runs ``--tiny`` once.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # single-threaded BLAS, before numpy loads it

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

import sparsecodecs as sc  # noqa: E402
from sparsecodecs.bench.memory import traced_peak  # noqa: E402
from sparsecodecs.bench.products import (  # noqa: E402
    RATIO_HEADER,
    STACK_CODECS,
    STACK_OTHERS,
    STACK_SHAPES,
    Ratio,
    format_ratio,
    mib,
    stack_ratios,
    store,
    weight,
)

#: name -> (out, in): a square 4096 weight and the MiniLM-L6 layer shapes.
SHAPES = {
    "4096x4096": (4096, 4096),
    "minilm-attn 384x384": (384, 384),
    "minilm-ffn-up 1536x384": (1536, 384),
    "minilm-ffn-down 384x1536": (384, 1536),
}
CODECS = {
    "2:4": ["nm", "bitmask", "csr", "hybrid", "hybrid-nm", "hybrid/256", "raw"],
    "dense": ["raw", "hybrid", "hybrid/256"],
}
BATCHES = (1, 8, 64)


@dataclass
class Row:
    weight: str
    shape: str
    codec: str
    path: str
    batch: int
    held_bytes: int  # what sc.matmul keeps: the frame(s)
    dense_bf16_bytes: int
    read_bytes: int  # weight bytes one product reads
    mac_fraction: float
    ms_matmul: float
    ms_decode: float  # (a)
    ms_f32: float  # (b)
    peak_matmul: int
    peak_decode: int
    peak_f32: int


def best_ms(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def measure(w: np.ndarray, held: sc.CompressedLinear | bytes, kind: str, shape_name: str,
            codec: str, batch: int, repeat: int) -> Row:
    """One row: the three ways of computing ``x @ W.T`` for one stored weight and batch size."""
    frames = held.frames if isinstance(held, sc.CompressedLinear) else [held]
    w32 = w.astype(np.float32)
    x = np.random.default_rng(batch).standard_normal((batch, w.shape[1])).astype(np.float32)

    def ours() -> np.ndarray:
        return sc.matmul(x, held)

    def decode_first() -> np.ndarray:  # (a)
        dense = np.concatenate([sc.decode(f) for f in frames])
        return x @ dense.astype(np.float32).T

    def f32_copy() -> np.ndarray:  # (b)
        return x @ w32.T

    stats = sc.MatmulStats()
    y = sc.matmul(x, held, stats=stats)  # warm-up: the kernels are loaded
    bound = (np.abs(x) @ np.abs(w32).T).max(initial=0)
    assert np.abs(y - f32_copy()).max(initial=0) <= 1e-4 * bound + 1e-30
    decode_first()
    return Row(
        weight=f"{kind} bf16", shape=shape_name, codec=codec,
        path=",".join(sorted(set(stats.paths))), batch=batch,
        held_bytes=held.nbytes if isinstance(held, sc.CompressedLinear) else len(held),
        dense_bf16_bytes=w.nbytes, read_bytes=stats.weight_bytes,
        mac_fraction=stats.mac_fraction,
        ms_matmul=best_ms(ours, repeat), ms_decode=best_ms(decode_first, repeat),
        ms_f32=best_ms(f32_copy, repeat),
        peak_matmul=traced_peak(ours), peak_decode=traced_peak(decode_first),
        peak_f32=traced_peak(f32_copy),
    )


def run(shapes: Sequence[str], kinds: Sequence[str], batches: Sequence[int], repeat: int,
        tiny: bool = False) -> list[Row]:
    rows: list[Row] = []
    for shape_name in shapes:
        shape = (64, 64) if tiny else SHAPES[shape_name]
        for kind in kinds:
            w = weight(shape, kind)
            for codec in CODECS[kind]:
                held = store(w, codec)
                for batch in batches:
                    rows.append(measure(w, held, kind, shape_name, codec, batch, repeat))
                    print(format_row(rows[-1]), file=sys.stderr, flush=True)
    return rows


HEADER = (
    "| weight | shape | codec | path | batch | held | read / bf16 dense | MACs | sc.matmul ms "
    "| (a) decode ms | (b) f32 copy ms | peak sc.matmul | peak (a) | peak (b) + held f32 |"
)


def format_row(r: Row) -> str:
    f32_held = r.dense_bf16_bytes * 2
    return (
        f"| {r.weight} | {r.shape} | {r.codec} | {r.path} | {r.batch} | {mib(r.held_bytes)} | "
        f"{100 * r.read_bytes / r.dense_bf16_bytes:.1f}% | {100 * r.mac_fraction:.0f}% | "
        f"{r.ms_matmul:.2f} | {r.ms_decode:.2f} | {r.ms_f32:.2f} | {mib(r.peak_matmul)} | "
        f"{mib(r.peak_decode)} | {mib(r.peak_f32)} + {mib(f32_held)} |"
    )


def ratio_main(args: argparse.Namespace) -> list[Ratio]:
    rows: list[Ratio] = []
    for shape_name in args.stack_shapes:
        rows += stack_ratios(shape_name, args.codecs, args.batches, args.threads,
                             args.stack_mib, args.distinct, args.repeat, x_dtypes=args.x)
    print(RATIO_HEADER)
    print("|" + "---|" * RATIO_HEADER.count(" | ") + "---|")
    for r in rows:
        print(format_ratio(r))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([asdict(r) for r in rows], fh, indent=1)
    return rows


def main(argv: Sequence[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="+", choices=sorted(SHAPES), default=list(SHAPES))
    parser.add_argument("--weights", nargs="+", choices=sorted(CODECS), default=list(CODECS))
    parser.add_argument("--batches", nargs="+", type=int, default=list(BATCHES))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tiny", action="store_true", help="smoke run: 64 x 64, one shape")
    parser.add_argument("--json", help="write every row to this JSON file")
    parser.add_argument("--ratios", action="store_true",
                        help="time against torch's F.linear over a stack of layers instead")
    parser.add_argument("--stack-shapes", nargs="+", choices=sorted(STACK_SHAPES),
                        default=list(STACK_SHAPES))
    parser.add_argument("--codecs", nargs="+", choices=STACK_CODECS + STACK_OTHERS,
                        default=list(STACK_CODECS),
                        help="codecs of --ratios, on 2:4 weights; codec@weights: on others")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--stack-mib", type=int, default=1024,
                        help="size of the dense bf16 stack (default 1024 MiB)")
    parser.add_argument("--distinct", type=int, default=2,
                        help="distinct weights drawn and encoded (the stack holds copies)")
    parser.add_argument("--x", nargs="+", choices=["float32", "bfloat16"], default=["float32"],
                        help="dtypes of x for our products (bfloat16: 2:4 bfloat16 weights "
                             "take pair products from batch 5, as torch's bfloat16 run does)")
    args = parser.parse_args(argv)
    if args.ratios:
        return ratio_main(args)  # type: ignore[return-value]
    shapes = args.shapes[:1] if args.tiny else args.shapes
    rows = run(shapes, args.weights, args.batches, args.repeat, tiny=args.tiny)
    print(HEADER)
    print("|" + "---|" * HEADER.count(" | ") + "---|")
    for r in rows:
        print(format_row(r))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([asdict(r) for r in rows], fh, indent=1)
    return rows


if __name__ == "__main__":
    main()
