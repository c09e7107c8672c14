"""Read many hostile compressed checkpoints and check the reading guarantee on every one.

Each case is drawn by ``sparsecodecs.testing.mutated_checkpoints`` from the seed checkpoints of
``sparsecodecs.testing.checkpoint_seeds`` and the pinned ``tests/golden/checkpoint`` file (the
header length, the entries' integers and strings, the metadata, the tensor and block tables, JSON
bytes, bit flips, truncation, frames rewritten behind a valid checksum or swapped between
tensors), or, one case in ``--shard-every``, by ``mutated_shards`` from a sharded folder with its
``model.safetensors.index.json`` (a lying or malformed index, a missing shard, a mutated shard).
The file (or folder) is written to ``--tmp`` and read through the public API
(``safe_open``/``get_tensor``/``get_slice``/``load_file``/``report``; for folders
``inspect_checkpoint`` and ``decompress``): each read must succeed or raise a
``SparseCodecsError``; mutations that cannot change the content must read bit-exactly like the
seed. Per case: at most ``--hang`` seconds (a watchdog saves the case and stops the run), and at
most ``--peak-mib`` MiB allocated (tracemalloc, which numpy reports to); decodes are limited to
64 MiB and the process's address space to ``--memory`` GiB. Failures are saved under ``--out``.

    python tests/fuzz/run_checkpoint_mutations.py --count 25000 --seed 1

Exit status: 0 if every case kept the guarantee, 1 otherwise. Reproducible: the same seed and
library give the same cases.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

import sparsecodecs as sc
from sparsecodecs.testing.checkpoints import (
    assert_folder_reads_or_refuses,
    assert_reads_or_refuses,
    checkpoint_seeds,
    mutated_checkpoints,
    mutated_shards,
    sharded_seed,
    written,
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "checkpoint"
GOLDEN = GOLDEN / "container-v1.sc.safetensors"
#: Decodes are refused above this; the seeds' tensors are a few KiB.
DECODE_LIMIT = 1 << 26
#: Cases drawn per Hypothesis example.
BATCH = 50


def seeds() -> tuple[bytes, ...]:
    """The generated seeds and the pinned golden checkpoint."""
    return (*checkpoint_seeds(), GOLDEN.read_bytes())


def _tensors(data: bytes, tmp: Path) -> dict[str, np.ndarray]:
    with written({"seed.safetensors": data}, tmp) as folder:
        return sc.load_file(folder / "seed.safetensors")


class Watchdog(threading.Thread):
    """Saves the case being read and ends the process if one case takes too long."""

    def __init__(self, limit: float, out: Path) -> None:
        super().__init__(daemon=True)
        self.limit, self.out = limit, out
        self.current: tuple[float, str, dict[str, bytes]] | None = None

    def run(self) -> None:
        while True:
            time.sleep(min(self.limit / 4, 1.0))
            current = self.current
            if current is not None and time.monotonic() - current[0] > self.limit:
                path = save(self.out, "hang", current[1], current[2])
                print(f"HANG: reading took over {self.limit} s: {current[1]}; saved as {path}",
                      flush=True)
                os._exit(2)


def save(out: Path, kind: str, description: str, files: dict[str, bytes], error: str = "") -> Path:
    """Save a failing case as a folder ``<kind>-NNNN`` holding its files and ``case.txt``."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{kind}-{len(list(out.glob(f'{kind}-*'))):04d}"
    path.mkdir()
    for name, data in files.items():
        (path / (name.replace("/", "_").replace("\0", "_") or "_")).write_bytes(data)
    (path / "case.txt").write_text(f"{description}\n{error}\n")
    return path


def run(count: int, seed: int, out: Path, hang: float, tmp: Path, shard_every: int,
        peak_mib: int) -> dict[str, Any]:
    """Read ``count`` hostile checkpoints; the counts by outcome, the failures, the slowest."""
    pool = seeds()
    references = {data: _tensors(data, tmp) for data in pool}
    folder = sharded_seed(pool[1])
    folder_reference = references[pool[1]]
    outcomes: collections.Counter[str] = collections.Counter()
    failures: list[str] = []
    slowest = (0.0, "")
    peak = (0, "")
    watchdog = Watchdog(hang, out)
    watchdog.start()
    # Cases are drawn in batches: Hypothesis' per-example work (saving and restoring the global
    # random states) costs more than reading most hostile files.
    batch = min(BATCH, count)

    @hypothesis_seed(seed)
    @settings(max_examples=-(-count // batch), database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck),
              report_multiple_bugs=False)
    @given(st.data())
    def some(data: st.DataObject) -> None:
        for k in range(batch):  # what is drawn depends on k alone (Hypothesis replays draws)
            sharded = shard_every and k % shard_every == shard_every - 1
            case = data.draw(mutated_shards(folder) if sharded else mutated_checkpoints(pool))
            if sum(outcomes.values()) < count:
                one(case)

    def one(case: Any) -> None:
        nonlocal slowest, peak
        sharded = hasattr(case, "files")
        files = case.files if sharded else {"model.safetensors": case.data}
        start = time.monotonic()
        watchdog.current = (start, case.description, files)
        if peak_mib:
            tracemalloc.reset_peak()
        try:
            with written(files, tmp) as where:
                if sharded:
                    ref = folder_reference if case.equivalent else None
                    result = assert_folder_reads_or_refuses(where, case.description,
                                                            reference=ref)
                else:
                    ref = references[case.seed] if case.equivalent else None
                    result = assert_reads_or_refuses(where / "model.safetensors",
                                                     case.description, reference=ref)
            used = tracemalloc.get_traced_memory()[1] if peak_mib else 0
            if used > peak[0]:
                peak = (used, case.description)
            if peak_mib and used > peak_mib << 20:
                raise AssertionError(f"allocated {used} bytes, over the limit of {peak_mib} MiB")
            label = type(result).__name__ if isinstance(result, sc.SparseCodecsError) else "read"
            outcomes[("folder " if sharded else "file ") + label] += 1
        except AssertionError as exc:
            cause = exc.__cause__ or exc
            path = save(out, "fail", case.description, files, f"{type(cause).__name__}: {cause}")
            failures.append(f"{path}: {case.description}: {exc}")
            outcomes["FAILURE"] += 1
        finally:
            watchdog.current = None
        elapsed = time.monotonic() - start
        if elapsed > slowest[0]:
            slowest = (elapsed, case.description)
        done = sum(outcomes.values())
        if done % 5_000 == 0:
            print(f"{done} cases, {outcomes['FAILURE']} failures", flush=True)

    old_limit = sc.get_decode_limit()
    sc.set_decode_limit(DECODE_LIMIT)
    if peak_mib:
        tracemalloc.start()
    try:
        some()
    finally:
        tracemalloc.stop()
        sc.set_decode_limit(old_limit)
    return {"outcomes": outcomes, "failures": failures, "slowest": slowest, "peak": peak,
            "seeds": len(pool)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="cases to read")
    parser.add_argument("--seed", type=int, default=0, help="Hypothesis seed (reproducible)")
    parser.add_argument("--out", type=Path, default=Path("fuzz-failures"),
                        help="where failing cases are saved (default: ./fuzz-failures)")
    parser.add_argument("--hang", type=float, default=30.0,
                        help="seconds after which one case counts as a hang")
    parser.add_argument("--memory", type=int, default=8,
                        help="address-space limit in GiB, so runaway allocations fail fast")
    parser.add_argument("--peak-mib", type=int, default=256,
                        help="most MiB one case may allocate (tracemalloc peak; 0: no tracing, "
                        "which is faster; --memory still bounds the process)")
    parser.add_argument("--shard-every", type=int, default=20,
                        help="one case in this many is a sharded folder (0: none)")
    parser.add_argument("--tmp", type=Path, default=None,
                        help="where cases are written (default: /dev/shm if present)")
    parser.add_argument("--json", type=Path, default=None, help="also write the counts here")
    args = parser.parse_args(argv)
    if args.memory:
        limit = args.memory << 30
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    base = args.tmp or (Path("/dev/shm") if Path("/dev/shm").is_dir() else None)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(dir=base, prefix="sc-ckpt-fuzz-") as tmp:
        result = run(args.count, args.seed, args.out, args.hang, Path(tmp), args.shard_every,
                     args.peak_mib)
    total = sum(result["outcomes"].values())
    print(f"{total} hostile checkpoints from {result['seeds']} seeds (seed {args.seed}) in "
          f"{time.monotonic() - start:.0f} s; slowest case {result['slowest'][0] * 1e3:.0f} ms "
          f"({result['slowest'][1]}); largest traced peak {result['peak'][0] / 2**20:.1f} MiB "
          f"({result['peak'][1]}); max RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB")
    for outcome, n in result["outcomes"].most_common():
        print(f"  {n:8d}  {outcome}")
    for failure in result["failures"][:20]:
        print(f"FAILURE {failure}")
    if args.json is not None:
        args.json.write_text(json.dumps({"seed": args.seed, "cases": total,
                                         "outcomes": dict(result["outcomes"])}, indent=1))
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
