"""Throughput of ``sparsecodecs.compress`` with 1 and 2 workers: processes and a Dask cluster.

Writes a synthetic checkpoint (two big bfloat16 tensors, one dense and one 2:4-pruned, plus a
few small float32 layers; about 290 MB by default) with ``safetensors``, compresses it with each
configuration, checks that every output is byte-identical to the serial one, and prints a
Markdown table with the machine's load (``os.getloadavg``) before and after. Used for
``docs/scaling.md``::

    PYTHONPATH=src python bench/scaling.py                # the default run
    PYTHONPATH=src python bench/scaling.py --rows 4096    # a quick one (about 40 MB)

Needs ``safetensors`` (the ``bench`` extra) and, for the Dask rows, ``dask[distributed]`` (the
``dask`` extra; without it those rows are skipped).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np

import sparsecodecs as sc
from sparsecodecs.checkpoint import DEFAULT_BLOCK_BYTES


def save_safetensors(tensors: dict[str, np.ndarray], path: Path) -> None:
    """A plain safetensors file (written here: ``safetensors.numpy`` has no bfloat16)."""
    names = {np.dtype(ml_dtypes.bfloat16): "BF16", np.dtype(np.float32): "F32"}
    header, pos = {}, 0
    for name, a in tensors.items():
        header[name] = {"dtype": names[a.dtype], "shape": list(a.shape),
                        "data_offsets": [pos, pos + a.nbytes]}
        pos += a.nbytes
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(head)) + head)
        for a in tensors.values():
            fh.write(np.ascontiguousarray(a).tobytes())


def make_checkpoint(path: Path, rows: int, cols: int) -> int:
    """Write the synthetic input; returns its size in bytes."""
    rng = np.random.default_rng(0)
    embed = (rng.standard_normal((rows, cols), np.float32) * 0.02).astype(ml_dtypes.bfloat16)
    head = (rng.standard_normal((rows, cols), np.float32) * 0.02).astype(ml_dtypes.bfloat16)
    groups = head.reshape(rows, cols // 4, 4)
    order = np.argsort(np.abs(groups.astype(np.float32)), axis=-1)
    np.put_along_axis(groups, order[..., :2], 0, axis=-1)  # 2:4 along the rows
    tensors: dict[str, np.ndarray] = {
        "embed.weight": embed,
        "lm_head.weight": head,
    }
    for i in range(4):
        tensors[f"layers.{i}.weight"] = rng.standard_normal((1024, 1024), np.float32) * 0.02
    save_safetensors(tensors, path)
    return path.stat().st_size


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 24), b""):
            h.update(chunk)
    return h.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=32768, help="rows of each big tensor")
    parser.add_argument("--cols", type=int, default=2048, help="columns of each big tensor")
    parser.add_argument("--block-bytes", type=int, default=DEFAULT_BLOCK_BYTES)
    parser.add_argument("--repeat", type=int, default=1, help="runs per configuration (best)")
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask rows")
    parser.add_argument("--no-processes", action="store_true", help="skip the --workers rows")
    parser.add_argument("--dir", help="working folder (default: a temporary one)")
    args = parser.parse_args(argv)

    work = Path(args.dir or tempfile.mkdtemp(prefix="sc-scaling-"))
    work.mkdir(parents=True, exist_ok=True)
    src = work / "input.safetensors"
    size = make_checkpoint(src, args.rows, args.cols)
    warm = work / "warm.safetensors"  # a small file to load the codecs on fresh workers
    make_checkpoint(warm, 256, 256)
    sc.compress(warm, work / "warm.out", force=True)  # and in this process
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; load average before: {load()}")
    print(f"input: {size / 1e6:.1f} MB, 2 x {args.rows} x {args.cols} bfloat16 + 4 x 1024 x "
          f"1024 float32; block_bytes={args.block_bytes}\n")

    runs: list[tuple[str, int, Callable[[Path], Any]]] = [
        ("serial, no blocks", 1, lambda out: sc.compress(src, out, block_bytes=0)),
        ("serial", 1, lambda out: sc.compress(src, out, block_bytes=args.block_bytes)),
    ]
    if not args.no_processes:
        runs += [
            ("2 processes, no blocks", 2,
             lambda out: sc.compress(src, out, block_bytes=0, workers=2)),
            ("2 processes (--workers 2)", 2,
             lambda out: sc.compress(src, out, block_bytes=args.block_bytes, workers=2)),
        ]
    if not args.no_dask:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            print("dask.distributed is not installed: no Dask rows\n")
        else:

            def on_dask(n: int) -> Callable[[Path], Any]:
                def run(out: Path) -> Any:
                    return sc.compress(src, out, block_bytes=args.block_bytes, client=client)

                return run

            for n in (1, 2):
                runs.append((f"Dask, {n} worker{'s' if n > 1 else ''}", -n, on_dask(n)))
    rows = []
    reference: str | None = None
    client: Any = None
    for label, workers, run in runs:
        cluster = None
        if workers < 0:  # a Dask row: a fresh cluster of -workers workers, warmed up first
            workers = -workers
            started = time.perf_counter()
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=":0")
            client = Client(cluster, set_as_default=False)
            sc.compress(warm, work / "warm.out", client=client, force=True)
            print(f"Dask LocalCluster with {workers} worker(s) started and warmed up in "
                  f"{time.perf_counter() - started:.1f} s (not counted below)")
        try:
            best = float("inf")
            for _ in range(args.repeat):
                out = work / "out.sc.safetensors"
                out.unlink(missing_ok=True)
                started = time.perf_counter()
                report = run(out)
                best = min(best, time.perf_counter() - started)
        finally:
            if cluster is not None:
                client.close()
                cluster.close()
        d = digest(out)
        if "no blocks" not in label:
            reference = reference or d
            same = "yes" if d == reference else "NO"
        else:
            same = "-"
        rows.append((label, workers, best, size / 1e6 / best, report.file_bytes, same))
    print()
    serial = next(r[2] for r in rows if r[0] == "serial")
    print("| run | workers | seconds | MB/s (input) | speed-up vs serial | output bytes | "
          "identical to serial |")
    print("|---|---|---|---|---|---|---|")
    for label, workers, seconds, mbs, out_bytes, same in rows:
        print(f"| {label} | {workers} | {seconds:.2f} | {mbs:.1f} | {serial / seconds:.2f} | "
              f"{out_bytes:,} | {same} |")
    print(f"\nload average after: {load()}")
    if not args.dir:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(r[5] in ("yes", "-") for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
