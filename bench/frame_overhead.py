"""Per-frame fixed cost of decoding, split into its steps (issue 13, item 4).

Times, per call, ``sparsecodecs.decode`` of small frames (the bench's 384-element float32 and
1536-element bfloat16 probes, with ``hybrid`` and ``raw``) and its three steps: ``read_frame``
(checks, header JSON, section table), ``codec_for_frame`` (registry lookup and codec
construction) and ``decode_frame`` (the codec's decoder). ZipNN's decode of the same tensor is
timed in the same process (when installed) and every time is also given as a multiple of it,
which is what to compare across runs on a shared machine.

    python bench/frame_overhead.py            # about 10 s
    python bench/frame_overhead.py --profile  # and cProfile of hybrid's decode (384 float32)

To compare two versions of the library, run it once per version, alternating, with
``PYTHONPATH`` pointing at each ``src``, and compare the ``x zipnn`` columns.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import sparsecodecs as sc
from sparsecodecs.bench.corpus import fixed_cost_probes
from sparsecodecs.registry.accounting import codec_for_frame
from sparsecodecs.registry.frame import read_frame


def per_call(fn: Callable[[], Any], budget_s: float, rounds: int = 7) -> float:
    """Median over ``rounds`` batches of the mean time per call, in seconds."""
    fn()
    t0 = time.perf_counter()
    fn()
    single = max(time.perf_counter() - t0, 1e-7)
    batch = max(1, int(budget_s / rounds / single))
    means = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(batch):
            fn()
        means.append((time.perf_counter() - t0) / batch)
    return statistics.median(means)


def zipnn_decode(array: np.ndarray) -> Callable[[], Any] | None:
    try:
        import zipnn
    except ImportError:
        return None
    z = zipnn.ZipNN(input_format="byte", bytearray_dtype=str(array.dtype), threads=1)
    packed = z.compress(bytearray(array.tobytes()))
    assert bytes(z.decompress(packed)) == array.tobytes()
    return lambda: z.decompress(packed)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=0.3, help="seconds per timed function")
    ap.add_argument("--profile", action="store_true", help="cProfile hybrid's decode")
    args = ap.parse_args(argv)
    print("| probe | codec | step | us per call | x zipnn decode |")
    print("|---|---|---|---:|---:|")
    for label, array in fixed_cost_probes():
        ref = zipnn_decode(array)
        ref_s = per_call(ref, args.budget) if ref is not None else None
        if ref_s is not None:
            print(f"| {label} | zipnn | decode | {1e6 * ref_s:.1f} | 1.00 |")
        for name in ("hybrid", "raw"):
            frame = sc.get_codec(name).encode(array)
            assert sc.decode(frame).tobytes() == array.tobytes()
            parsed = read_frame(frame)
            codec = codec_for_frame(parsed)
            steps: dict[str, Callable[[], Any]] = {
                "sc.decode": lambda f=frame: sc.decode(f),
                "read_frame": lambda f=frame: read_frame(f),
                "codec_for_frame": lambda p=parsed: codec_for_frame(p),
                "decode_frame": lambda c=codec, p=parsed: c.decode_frame(p),
            }
            for step, fn in steps.items():
                t = per_call(fn, args.budget)
                rel = f"{t / ref_s:.2f}" if ref_s else "-"
                print(f"| {label} | {name} | {step} | {1e6 * t:.1f} | {rel} |")
    if args.profile:
        frame = sc.get_codec("hybrid").encode(fixed_cost_probes()[0][1])
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(3000):
            sc.decode(frame)
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
