"""Cold start, measured in fresh processes (issue 13, item 3).

Two measurements, each in new Python processes so nothing is imported or compiled already:

1. ``import sparsecodecs``: wall time of ``python -c "import sparsecodecs"`` over ``--repeats``
   fresh processes, next to ``python -c pass`` and ``python -c "import numpy"`` run in the same
   loop (the floor the library cannot go below), plus the slowest imports by ``-X importtime``.
2. The first ``encode`` + ``decode`` of one 384x384 2:4 bfloat16 tensor with ``hybrid`` and
   ``nm`` in a fresh process (the kernels are a C extension built at install time: nothing is
   compiled at run time; the child reports any JIT module loaded): it times each step with
   ``time.perf_counter`` and checks the round trip bit for bit; the parent times the whole
   process. A second call of each step shows the warm time.

Targets (issue 13): import <= 0.3 s, the whole first-call process <= 3 s.

    python bench/cold_start.py                  # both, 5 import runs (a few seconds)
    python bench/cold_start.py --no-first-call  # import only (a few seconds)
    python bench/cold_start.py --json out.json

Timing on a shared machine is noisy: compare the numbers of one run with each other.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[1] / "src"

#: The child of the first-call measurement: prints one JSON line of step timings.
FIRST_CALL = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
t1 = time.perf_counter()
import ml_dtypes
t2 = time.perf_counter()
import sparsecodecs as sc
t3 = time.perf_counter()
rng = np.random.default_rng(0)
w = (rng.standard_normal((384, 384)) * 0.02).astype(np.float32)
groups = w.reshape(-1, 4)
drop = np.argsort(np.abs(groups), axis=1)[:, :2]  # 2:4: zero the two smallest of each four
np.put_along_axis(groups, drop, 0.0, axis=1)
w = w.astype(ml_dtypes.bfloat16)
steps = {"import numpy": t1 - t0, "import ml_dtypes": t2 - t1, "import sparsecodecs": t3 - t2}
for name in CODECS:
    codec = sc.get_codec(name)
    for call in ("first", "warm"):
        a = time.perf_counter()
        frame = codec.encode(w)
        b = time.perf_counter()
        out = sc.decode(frame)
        c = time.perf_counter()
        assert out.dtype == w.dtype and out.view(np.uint16).tobytes() == w.view(np.uint16).tobytes()
        steps[f"{name} encode ({call})"] = b - a
        steps[f"{name} decode ({call})"] = c - b
steps["in-process total"] = time.perf_counter() - t0
jit = sorted(m for m in ("numba", "llvmlite", "scipy") if m in sys.modules)
print(json.dumps({"steps": steps, "jit_modules": jit}))
"""


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH", "")) if p)
    env.update(extra or {})
    return env


def _wall(code: str, env: dict[str, str], timeout: float = 120.0) -> tuple[float, str, str]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=timeout
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"child failed ({code[:40]!r}...):\n{done.stderr}")
    return wall, done.stdout, done.stderr


def importtime_top(stderr: str, n: int = 8, root: str = "sparsecodecs") -> list[tuple[str, float]]:
    """The ``n`` slowest modules of a ``-X importtime`` log by cumulative seconds (``root``
    itself excluded; a module counted inside another is listed too, so read it as a tree)."""
    rows: list[tuple[str, float]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self_us, cumulative_us, name = (p.strip() for p in line[12:].split("|", 2))
        if name != root:
            rows.append((name, int(cumulative_us) / 1e6))
    rows.sort(key=lambda r: -r[1])
    return rows[:n]


def measure_import(repeats: int) -> dict[str, Any]:
    env = _env()
    codes = {
        "python -c pass": "pass",
        "import numpy": "import numpy",
        "import sparsecodecs": "import sparsecodecs",
    }
    times: dict[str, list[float]] = {k: [] for k in codes}
    for _ in range(repeats):  # interleaved, so load changes hit all three alike
        for label, code in codes.items():
            times[label].append(_wall(code, env)[0])
    _, _, log = _wall("import sparsecodecs", _env({"PYTHONPROFILEIMPORTTIME": "1"}))
    heavy = _wall(
        "import sys, sparsecodecs; print(sorted({m.split('.')[0] for m in sys.modules} - "
        "set(sys.stdlib_module_names)))",
        env,
    )[1].strip()
    return {
        "repeats": repeats,
        "wall_s": {k: {"median": statistics.median(v), "min": min(v), "all": v}
                   for k, v in times.items()},
        "slowest_imports_s": importtime_top(log),
        "third_party_after_import": heavy,
    }


def measure_first_call(codecs: list[str], timeout: float) -> dict[str, Any]:
    code = f"CODECS = {codecs!r}\n{FIRST_CALL}"
    wall, out, _ = _wall(code, _env(), timeout=timeout)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["process_wall_s"] = wall
    return result


def render(imp: dict[str, Any] | None, first: dict[str, Any] | None) -> str:
    lines: list[str] = []
    if imp is not None:
        lines += [f"## import, {imp['repeats']} fresh processes each (wall, s)", "",
                  "| command | median | min |", "| --- | ---: | ---: |"]
        for label, t in imp["wall_s"].items():
            lines.append(f"| {label} | {t['median']:.3f} | {t['min']:.3f} |")
        lines += ["", "slowest imports inside `import sparsecodecs` (cumulative s, -X importtime):"]
        lines += [f"- {name}: {s:.3f}" for name, s in imp["slowest_imports_s"]]
        lines += [f"- third-party top-level modules loaded: {imp['third_party_after_import']}", ""]
    if first is not None:
        lines += ["## first encode + decode, 384x384 2:4 bf16, in a fresh process",
                  "", "| step | s |", "| --- | ---: |"]
        lines += [f"| {k} | {v:.3f} |" for k, v in first["steps"].items()]
        lines += [f"| **whole process (wall)** | **{first['process_wall_s']:.3f}** |", "",
                  f"JIT modules loaded: {first['jit_modules'] or 'none'}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="fresh processes per import timing")
    ap.add_argument("--codecs", default="hybrid,nm")
    ap.add_argument("--no-first-call", action="store_true", help="time the import only")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds for the first call")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error(f"--repeats must be >= 1, got {args.repeats}")
    imp = measure_import(args.repeats)
    first = None
    if not args.no_first_call:
        codecs = [c.strip() for c in args.codecs.split(",") if c.strip()]
        first = measure_first_call(codecs, args.timeout)
    print(render(imp, first))
    if args.json is not None:
        args.json.write_text(json.dumps({"import": imp, "first_call": first}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
