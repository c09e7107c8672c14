"""Per-frame fixed cost of decoding, split into its steps (issue 13, item 4).

Times, per call, ``sparsecodecs.decode`` of small frames (the bench's 384-element float32 and
1536-element bfloat16 probes, with ``hybrid`` and ``raw``) and its three steps: ``read_frame``
(checks, header JSON, section table), ``codec_for_frame`` (registry lookup and codec
construction) and ``decode_frame`` (the codec's decoder). ZipNN's decode of the same tensor is
timed in the same process (when installed) and every time is also given as a multiple of it,
which is what to compare across runs on a shared machine.

    python bench/frame_overhead.py            # about 10 s
    python bench/frame_overhead.py --profile  # and cProfile of hybrid's decode (384 float32)

``--ab`` measures what the two shortcuts of item 4 save, in one process, with on and off
batches interleaved (so machine load hits both alike): the codec instance reused for a
repeated frame config (``registry.codec._config_key``) and the memoised dtype names
(``registry.dtypes.name_of``). Off means both replaced by the code they replaced.
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


def _shortcuts(on: bool) -> None:
    from sparsecodecs.codecs import _stages
    from sparsecodecs.registry import codec as codec_module
    from sparsecodecs.registry import dtypes as dtypes_module

    real = _ORIGINAL.setdefault("all", (codec_module._config_key, dtypes_module.name_of))
    key, name_of = real if on else ((lambda cls, config: None), (lambda dtype: dtype.name))
    codec_module._config_key = key  # type: ignore[assignment]
    dtypes_module.name_of = name_of
    _stages.name_of = name_of  # type: ignore[attr-defined]


_ORIGINAL: dict[str, Any] = {}


def ab(rounds: int, budget_s: float) -> None:
    """Interleaved on/off batches of ``sc.decode`` on each probe with hybrid and raw."""
    print("| probe | codec | shortcuts off us | on us | off / on (median of paired rounds) |")
    print("|---|---|---:|---:|---:|")
    for label, array in fixed_cost_probes():
        for name in ("hybrid", "raw"):
            frame = sc.get_codec(name).encode(array)
            fn = lambda f=frame: sc.decode(f)  # noqa: E731
            fn()
            t0 = time.perf_counter()
            fn()
            batch = max(1, int(budget_s / rounds / 2 / max(time.perf_counter() - t0, 1e-7)))
            times: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(rounds):
                for on in (False, True):
                    _shortcuts(on)
                    fn()
                    t0 = time.perf_counter()
                    for _ in range(batch):
                        fn()
                    times[on].append((time.perf_counter() - t0) / batch)
            _shortcuts(True)
            pairs = zip(times[False], times[True], strict=True)
            paired = statistics.median(a / b for a, b in pairs)
            off, on_ = (statistics.median(times[k]) for k in (False, True))
            print(f"| {label} | {name} | {1e6 * off:.1f} | {1e6 * on_:.1f} | {paired:.2f} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=0.3, help="seconds per timed function")
    ap.add_argument("--profile", action="store_true", help="cProfile hybrid's decode")
    ap.add_argument("--ab", action="store_true",
                    help="only the interleaved on/off comparison of the item-4 shortcuts")
    ap.add_argument("--rounds", type=int, default=21, help="paired rounds for --ab")
    args = ap.parse_args(argv)
    if args.ab:
        ab(args.rounds, 4 * args.budget)
        return 0
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
