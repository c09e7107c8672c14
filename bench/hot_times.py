"""Each corpus tensor's best hot hybrid encode (or decode) time: run in two trees and compare.

Run: ``python bench/hot_times.py [--op encode|decode] [--repeat N] [--sets S,...]
[--dtypes D,...] [--model PATH] > A.txt`` in each tree (``PYTHONPATH=TREE/src``), one tree
after the other and then again (machine load drifts), then ``python bench/hot_times.py
--compare A1.txt,A2.txt B1.txt,B2.txt``: each tensor's best over the runs of each side,
summed per dtype and in all, the geometric mean of B over A, and the tensors that moved most.

What it is for: a change to the encoder's or decoder's fixed costs moves a few percent, which
``zipnn_cells.py``'s cell counts (cold caches, interleaved with ZipNN, +-10 cells from run to
run) cannot show. Here every tensor is timed alone, hot, ``--repeat`` times in a row (best
kept), which is what a fixed cost is measured by; the cells stay the measure of the targets.
A change that only moves code can move a short hot loop across a cache line and a kernel by
1.6x (see the build's ``-falign-loops``): a per-tensor comparison shows that at once.

``--model``: a safetensors file's tensors (as ``sparsecodecs bench --model`` reads them) instead
of the corpus. Each line: ``set|dtype|variant|tensor microseconds``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import sparsecodecs as sc
from sparsecodecs.bench.corpus import builtin_sets, load_model, parse_variants
from sparsecodecs.bench.harness import build_cell


def measure(op: str, repeat: int, sets: list[str] | None, dtypes: list[str],
            model: Path | None = None) -> None:
    hybrid = sc.get_codec("hybrid")
    for tset in [load_model(model)] if model else builtin_sets("default"):
        if sets and tset.name not in sets:
            continue
        for dtype in dtypes:
            for variant in parse_variants(None, None):
                _, tensors = build_cell(tset, dtype, variant)
                for t in tensors:
                    array = t.array
                    frame = hybrid.encode(array)
                    if sc.decode(frame).tobytes() != array.tobytes():
                        raise SystemExit(f"{t.name}: the round trip is not bit-exact")
                    fn = (lambda a=array: hybrid.encode(a)) if op == "encode" else (
                        lambda f=frame: sc.decode(f))
                    best = math.inf
                    for _ in range(repeat):
                        start = time.perf_counter()
                        fn()
                        best = min(best, time.perf_counter() - start)
                    print(f"{tset.name}|{dtype}|{variant.name}|{t.name} {best * 1e6:.1f}",
                          flush=True)


def _load(paths: str) -> dict[str, float]:
    """Each tensor's best time over the comma-separated files."""
    best: dict[str, float] = {}
    for path in paths.split(","):
        for line in Path(path).read_text().splitlines():
            key, value = line.rsplit(" ", 1)
            best[key] = min(best.get(key, math.inf), float(value))
    return best


def compare(a_paths: str, b_paths: str, show: int = 6) -> None:
    a, b = _load(a_paths), _load(b_paths)
    keys = [k for k in a if k in b]
    if not keys:
        raise SystemExit("no tensor in both")
    for dtype in sorted({k.split("|")[1] for k in keys}):
        ks = [k for k in keys if k.split("|")[1] == dtype]
        print(f"{dtype}: A {sum(a[k] for k in ks) / 1e3:.2f} ms, "
              f"B {sum(b[k] for k in ks) / 1e3:.2f} ms")
    ratios = sorted((b[k] / a[k], k) for k in keys)
    geo = math.exp(sum(math.log(r) for r, _ in ratios) / len(ratios))
    print(f"all {len(keys)} tensors: A {sum(a[k] for k in keys) / 1e3:.2f} ms, "
          f"B {sum(b[k] for k in keys) / 1e3:.2f} ms; B / A geometric mean {geo:.3f}, "
          f"from {ratios[0][0]:.3f} to {ratios[-1][0]:.3f}")
    for r, k in ratios[:show] + ratios[-show:]:
        print(f"  {r:.3f}  {a[k]:9.1f} -> {b[k]:9.1f} us  {k}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--op", choices=("encode", "decode"), default="encode")
    parser.add_argument("--repeat", type=int, default=60)
    parser.add_argument("--sets", help="comma-separated corpus sets (default: all)")
    parser.add_argument("--dtypes", default="bf16,fp16,fp32")
    parser.add_argument("--model", type=Path, help="a safetensors file instead of the corpus")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"),
                        help="two outputs (each a comma-separated list of runs) to compare")
    args = parser.parse_args()
    if args.compare:
        compare(*args.compare)
    else:
        measure(args.op, args.repeat, args.sets.split(",") if args.sets else None,
                args.dtypes.split(","), args.model)


if __name__ == "__main__":
    main()
