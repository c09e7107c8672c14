"""The planner's passes over a table of 2**16 pattern counts, dense and by blocks in use, timed.

Run: ``python bench/table_passes.py [--model PATH] [--repeat N]``. For each tensor of the
default corpus of at least 4096 values (or of a safetensors file), dense, in bfloat16 and
float16: how many of the table's 1024 blocks of 64 bins its patterns use, whether
``histogram_blocks16`` marks them as it counts (at most 2**16 values in at most a quarter of
the blocks; else it reads the map off the counts), and each pass's best hot time over
``--repeat`` calls: counting (zeroing the table, then a histogram; against counting as a
planner's block does and leaving the table as it does), the entropy, the mode, the field and
plane histograms and the used bins (the dense pass against the same pass reading the blocks
in use). Every answer by
blocks is checked equal to the dense one. Hot times only: what the map also spares, a table
read back from L3 after another codec's call, shows in ``bench/zipnn_cells.py``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sparsecodecs.bench.corpus import builtin_sets, load_model
from sparsecodecs.codecs import _huffman_kernels as hk


def best_us(fn: Callable[[], object], repeat: int) -> float:
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e6


def passes(values: np.ndarray, repeat: int) -> tuple[bool, dict[str, tuple[float, float]]]:
    """Whether ``values``' blocks are marked as counted, and the (dense, by blocks) best times
    of each pass over their table."""
    buf = np.zeros((1 << 16) + 128, np.int64)
    table, blocks = buf[: 1 << 16], buf[1 << 16 :].view(np.uint8)
    dense = np.zeros(1 << 16, np.int64)

    def count_dense() -> None:
        dense.fill(0)
        hk.histogram_into(values, dense)

    count_dense()
    marked = hk.histogram_blocks16(values, table, blocks)

    def count_blocks() -> None:  # as a planner's block counts and leaves its table
        with hk.TableBlocks(table, blocks, clear=hk.histogram_blocks16(values, table, blocks,
                                                                       not marked)):
            pass

    blocks.fill(0)
    table.fill(0)
    times = {"count": (best_us(count_dense, repeat), best_us(count_blocks, repeat))}
    table.fill(0)
    hk.histogram_blocks16(values, table, blocks)
    with hk.TableBlocks(table, blocks, clear=marked):
        for name, fn in (("entropy", hk.entropy_bits), ("mode", hk.argmax_counts),
                         ("used bins", hk.used_bins),
                         ("fields", lambda c: hk.value_histograms16_counts(c, 1, 12))):
            a, b = fn(dense), fn(table)
            same = (all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
                    if isinstance(a, tuple) else np.array_equal(a, b))
            if not same:
                raise SystemExit(f"{name}: the pass by blocks differs from the dense one")
            times[name] = (best_us(lambda f=fn: f(dense), repeat),
                           best_us(lambda f=fn: f(table), repeat))
    return marked, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a safetensors file instead of the corpus")
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    import ml_dtypes

    sets = [load_model(args.model)] if args.model else builtin_sets("default")
    names = ("count", "entropy", "mode", "used bins", "fields")
    print("| tensor | dtype | values | blocks used | marked | " + " | ".join(
        f"{n} dense -> blocks (us)" for n in names) + " |")
    print("|---|---|---:|---:|---|" + "---:|" * len(names))
    for tset in sets:
        for name, array in tset.tensors:
            if array.size < 4096:  # the planner counts from 4096 values on
                continue
            for label, dt in (("bf16", ml_dtypes.bfloat16), ("fp16", np.float16)):
                values = np.ascontiguousarray(array, dtype=np.float32).astype(dt)
                values = values.reshape(-1).view(np.uint16)
                used = np.unique(values >> 6).size
                marked, times = passes(values, args.repeat)
                cells = " | ".join(f"{a:.1f} -> {b:.1f}" for a, b in times.values())
                print(f"| {tset.name}/{name} | {label} | {values.size} | {used} | "
                      f"{'yes' if marked else 'no'} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
