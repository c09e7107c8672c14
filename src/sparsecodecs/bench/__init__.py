"""``sparsecodecs bench``: every registered codec and the usual peers on a corpus of weights.

A *cell* is a tensor set x a dtype x a variant (dense, 2:4 magnitude-pruned along the input
dimension, 50% unstructured magnitude-pruned, 2:4 then clustered to 16 centroids), plus
quantized cells (per output channel: uint8 asymmetric 2:4, int8 symmetric dense and 2:4, int4
symmetric dense; ``--quant``). Each tensor
is compressed on its own and sizes are summed over the set. Per cell and method the bench
reports the effective size (``len(frame)`` of real frames) in % of dense, the codec's
theoretical size and per-role overhead (from :func:`sparsecodecs.inspect`), the order-0 entropy
bound (:mod:`sparsecodecs.bench.entropy`) and the distance to it, encode and decode throughput
(median of several single-thread runs, the first call reported separately) and the bit-exact
round trip of every frame. Results go to ``headline.png`` (the headline figure on the real-model
cells, :mod:`.figure`), ``results.md`` (opening with its numbers), ``results.json`` and
``results.png`` (one panel per cell).

The modules: :mod:`.corpus` (tensor sets and variants), :mod:`.peers` (zstd, lz4, scipy.sparse,
ZipNN, NVIDIA's 2:4 format), :mod:`.harness` (measurement), :mod:`.report` (table, markdown,
JSON, chart), :mod:`.figure` (the headline figure). Only this module is imported by
``sparsecodecs --help``; it imports nothing heavy.
"""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run_cli"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench`` options to ``parser``."""
    parser.description = (
        "Benchmark every registered codec and the peers (zstd, lz4, scipy.sparse, ZipNN, "
        "NVIDIA 2:4) on synthetic weights and, when installed, all-MiniLM-L6-v2. Writes "
        "headline.png (real-model cells), results.md, results.json and results.png to --out."
    )
    add = parser.add_argument
    add("--model", metavar="PATH",
        help="a .safetensors file or a folder of shards: bench its floating-point tensors of "
             "rank >= 2 instead of the built-in corpus")
    add("--prune", metavar="SPEC",
        help="variant to bench besides dense: 2:4 (any n:m), unstructured:0.5 or none "
             "(default: the four built-in variants)")
    add("--cluster", metavar="K", type=int,
        help="cluster the non-zero values to K centroids (after --prune)")
    add("--quant", metavar="LIST",
        help="quantized cells (per output channel, after optional N:M pruning): "
             "comma-separated int8, uint8, int4, uint4, each optionally -N:M (e.g. "
             "int8,uint8-2:4), or none (default: uint8-2:4,int8,int8-2:4,int4 unless "
             "--prune or --cluster is given)")
    add("--dtype", metavar="LIST", default="bf16,fp16,fp32",
        help="comma-separated dtypes among bf16, fp16, fp32, keep (the tensor's own dtype); "
             "default: bf16,fp16,fp32")
    add("--codecs", metavar="LIST",
        help="comma-separated codec names or aliases (default: every registered codec)")
    add("--peers", metavar="LIST",
        help="comma-separated peers or families: nvidia-2:4, zstd (zstd-3, zstd-19), lz4, "
             "scipy (scipy-csr, scipy-csc), zipnn; 'none' for none (default: all)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true",
                      help="one small tensor per set, one timed run: a smoke test")
    size.add_argument("--full", action="store_true",
                      help="every tensor of the corpus (the default runs a documented subset)")
    size.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    add("--repeats", metavar="N", type=int, default=None,
        help="timed runs per measurement after the first call (default 3, --quick 1); runs "
             "stop early once a measurement has taken 0.3 s")
    add("--out", metavar="DIR", default="bench-results",
        help="output directory (default: bench-results)")
    add("--force", action="store_true", help="overwrite existing result files in --out")


def run_cli(args: argparse.Namespace) -> int:
    """Run the benchmark for parsed ``args``; returns the exit code (1 if a round trip failed)."""
    from .harness import main

    return main(args)
