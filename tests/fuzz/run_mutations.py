"""Decode many hostile frames and check the decoding guarantee on every one.

Each frame is drawn by ``sparsecodecs.testing.hostile_frames`` from the seeds of ``seeds.py``
(the golden frames and edge-shape frames of every codec): one mutation of a seed (bit flips,
truncations, extensions, sections spliced from another frame, header fields rewritten behind a
valid checksum, ...) or random bytes. ``sparsecodecs.testing.assert_decodes_or_refuses`` then
checks that ``decode`` and ``inspect`` either succeed consistently or raise a
``SparseCodecsError``. Failures do not stop the run: each is saved under ``--out`` (the frame,
and what was changed) and counted. A decode that takes longer than ``--hang`` seconds is saved
as a hang and ends the run (a compiled loop cannot be interrupted).

    python tests/fuzz/run_mutations.py --count 100000 --seed 1

Exit status: 0 if every frame kept the guarantee, 1 otherwise. Reproducible: the same seed,
seeds and library give the same frames.
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed

import sparsecodecs as sc
from sparsecodecs.testing import Mutation, assert_decodes_or_refuses, hostile_frames

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seeds import seed_frames

#: The decode limit: frames claiming more are refused. High enough that claims of large arrays
#: reach the decoders, whose allocations must stay proportional to the frame, not the claim.
MAX_BYTES = 1 << 30


class Watchdog(threading.Thread):
    """Saves the frame being decoded and ends the process if one decode takes too long."""

    def __init__(self, limit: float, out: Path) -> None:
        super().__init__(daemon=True)
        self.limit, self.out = limit, out
        self.current: tuple[float, Mutation] | None = None

    def run(self) -> None:
        while True:
            time.sleep(min(self.limit / 4, 1.0))
            current = self.current
            if current is not None and time.monotonic() - current[0] > self.limit:
                path = _save(self.out, "hang", current[1])
                print(f"HANG: decoding took over {self.limit} s: {current[1].description}; "
                      f"saved as {path}", flush=True)
                os._exit(2)


def _save(out: Path, kind: str, mutation: Mutation, error: str = "") -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{kind}-{len(list(out.glob(f'{kind}-*.spcf'))):04d}.spcf"
    path.write_bytes(mutation.frame)
    path.with_suffix(".txt").write_text(f"{mutation.description}\n{error}\n")
    return path


def _outcome(mutation: Mutation) -> str:
    """"decoded", or the name of the SparseCodecsError raised (AssertionError if neither)."""
    out = assert_decodes_or_refuses(mutation.frame, mutation.description, max_bytes=MAX_BYTES)
    return type(out).__name__ if isinstance(out, sc.SparseCodecsError) else "decoded"


def run(count: int, seed: int, out: Path, hang: float) -> dict[str, Any]:
    """Decode ``count`` hostile frames; returns the counts by outcome and the failures."""
    seeds = seed_frames()
    outcomes: collections.Counter[str] = collections.Counter()
    failures: list[str] = []
    slowest = (0.0, "")
    watchdog = Watchdog(hang, out)
    watchdog.start()

    @hypothesis_seed(seed)
    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(hostile_frames(seeds))
    def one(mutation: Mutation) -> None:
        nonlocal slowest
        start = time.monotonic()
        watchdog.current = (start, mutation)
        try:
            outcomes[_outcome(mutation)] += 1
        except AssertionError as exc:
            cause = exc.__cause__ or exc
            path = _save(out, "fail", mutation, f"{type(cause).__name__}: {cause}")
            failures.append(f"{path}: {mutation.description}: {exc}")
            outcomes["FAILURE"] += 1
        finally:
            watchdog.current = None
        elapsed = time.monotonic() - start
        if elapsed > slowest[0]:
            slowest = (elapsed, mutation.description)
        done = sum(outcomes.values())
        if done % 10_000 == 0:
            print(f"{done} frames, {outcomes['FAILURE']} failures", flush=True)

    one()
    return {"outcomes": outcomes, "failures": failures, "slowest": slowest, "seeds": len(seeds)}


def runner_args(description: str, argv: list[str] | None, *, count: int, count_help: str,
                hang_help: str) -> argparse.Namespace:
    """The options of a frame runner (this one, run_products.py), parsed, and the address-space
    limit of ``--memory`` set."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--count", type=int, default=count, help=count_help)
    parser.add_argument("--seed", type=int, default=0, help="Hypothesis seed (reproducible)")
    parser.add_argument("--out", type=Path, default=Path("fuzz-failures"),
                        help="where failing frames are saved (default: ./fuzz-failures)")
    parser.add_argument("--hang", type=float, default=30.0, help=hang_help)
    parser.add_argument("--memory", type=int, default=8,
                        help="address-space limit in GiB, so runaway allocations fail fast")
    args = parser.parse_args(argv)
    if args.memory:
        limit = args.memory << 30
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return args


def main(argv: list[str] | None = None) -> int:
    args = runner_args(__doc__.split("\n\n")[0], argv, count=10_000, count_help="frames to decode",
                       hang_help="seconds after which one decode counts as a hang")
    start = time.monotonic()
    result = run(args.count, args.seed, args.out, args.hang)
    total = sum(result["outcomes"].values())
    print(f"{total} hostile frames from {result['seeds']} seeds (seed {args.seed}) in "
          f"{time.monotonic() - start:.0f} s; slowest decode {result['slowest'][0] * 1e3:.0f} ms "
          f"({result['slowest'][1]})")
    return report(result)


def report(result: dict[str, Any]) -> int:
    """Print a run's counts by outcome and its first 20 failures; the exit status (1 if any
    failed)."""
    for outcome, n in result["outcomes"].most_common():
        print(f"  {n:8d}  {outcome}")
    for failure in result["failures"][:20]:
        print(f"FAILURE {failure}")
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
