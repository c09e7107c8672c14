"""Running the bench: build the cells, run every method on them, measure and verify.

* sizes are ``len(frame)`` of the frames the codecs really produce (peers: the length of their
  real output; ``nvidia-2:4`` is computed from the layout and labelled so);
* every frame is decoded with :func:`sparsecodecs.decode` and compared bit for bit with the
  input; every peer output is decompressed and compared likewise. Failures are listed, counted
  and make the command exit with code 1;
* times come from :func:`time.perf_counter`, single thread, per tensor. A codec's first call is
  timed and reported on its own (tables, lazy imports, first-touch memory); the throughput is
  the median of up to ``--repeats`` further runs, which stop early once 0.3 s have been spent
  (at least one always runs). Peers compile nothing, so their first call is one of the runs.
  Throughput is MB (10^6 bytes) of dense data per second, the cell's dense bytes over the sum
  of its tensors' medians;
* the per-frame fixed cost (header, tables, call overhead) is measured on its own, on the
  smallest frames a checkpoint holds: a 384-element float32 vector and a 1536-element bfloat16
  one (a norm weight and a bias). Each method encodes it once, then its decode (and encode) is
  called in batches of many calls; the time per call is the median over batches of the batch
  mean, batches stopping after 0.2 s (0.01 s for ``--tiny``). ZipNN's codec object is built
  once, outside the timed calls, as a program decoding many tensors would;
* ratios against ZipNN (speed: ZipNN's time over the method's, so above 1 is faster than
  ZipNN; size: the method's bytes over ZipNN's) compare numbers of the same run only.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ..registry import (
    Codec,
    SparseCodecsError,
    as_bits,
    decode,
    get_codec,
    inspect,
    is_nibble,
    list_codecs,
    pack_nibbles,
    storage_nbytes,
)
from ..registry.errors import UsageError
from .corpus import (
    DTYPES,
    TensorSet,
    Variant,
    builtin_sets,
    fixed_cost_probes,
    load_model,
    parse_dtypes,
    parse_quant,
)
from .corpus import parse_variants as _parse_variants
from .entropy import entropy_bound
from .peers import NotApplicable, Peer, select_peers

__all__ = ["OUTPUT_FILES", "BenchOptions", "Method", "main", "run"]

REPEATS = 3
BUDGET_S = 0.3
#: Time spent per method and operation on each per-frame fixed-cost probe (``tiny``: 0.01 s).
FIXED_BUDGET_S = 0.2
OUTPUT_FILES = ("results.json", "results.md", "results.png", "headline.png")
#: Libraries whose versions results.json records (whether or not they were used).
VERSIONED = ("sparsecodecs", "numpy", "ml_dtypes", "zstandard", "lz4", "scipy",
             "zipnn", "torch", "safetensors", "matplotlib", "rich", "xxhash")


@dataclass
class Method:
    """A codec or a peer, as the harness runs it."""

    name: str
    kind: str  # "codec" or "peer"
    description: str
    codec: Codec | None = None
    peer: Peer | None = None
    skipped: str | None = None  # why it does not run at all (a peer that is not installed)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind,
                               "description": self.description}
        if self.codec is not None:
            out["config"] = self.codec.get_config()
        if self.peer is not None and self.peer.computed:
            out["computed"] = True
        if self.skipped:
            out["skipped"] = self.skipped
        return out


@dataclass
class BenchOptions:
    scope: str
    dtypes: list[str]
    variants: list[Variant]
    repeats: int
    out: Path
    force: bool
    model: Path | None = None
    codecs: list[Method] = field(default_factory=list)
    peers: list[Method] = field(default_factory=list)

    @property
    def methods(self) -> list[Method]:
        return self.codecs + self.peers


# -- options ----------------------------------------------------------------------------------


def select_codecs(spec: str | None) -> list[Method]:
    """Every registered codec (loadable plugins included), or the ones ``--codecs`` names."""
    if spec is None:
        names = [info.name for info in list_codecs() if info.error is None]
    else:
        names = list(dict.fromkeys(t.strip() for t in spec.split(",") if t.strip()))
        if not names:
            raise UsageError("--codecs needs at least one codec name")
    methods = []
    for name in names:
        codec = get_codec(name)  # UnknownCodecError: one line, exit code 2
        methods.append(Method(name, "codec", type(codec).description, codec=codec))
    return methods


def check_output(out: Path, force: bool) -> None:
    """Refuse to overwrite result files without ``--force``; fail early, before any work."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    existing = [name for name in OUTPUT_FILES if (out / name).exists()]
    if existing and not force:
        raise UsageError(
            f"{out}/ already holds {', '.join(existing)}; pass --force to overwrite, or choose "
            "another --out DIR"
        )


def parse_options(args: argparse.Namespace) -> BenchOptions:
    scope = "full" if args.full else "quick" if args.quick else "tiny" if args.tiny else "default"
    repeats = args.repeats if args.repeats is not None else (REPEATS if scope != "quick" else 1)
    if repeats < 1:
        raise UsageError(f"--repeats must be >= 1, got {repeats}")
    out = Path(args.out)
    check_output(out, args.force)
    model = None
    if args.model is not None:
        model = Path(args.model)
        if not model.exists():
            raise UsageError(f"--model {args.model}: no such file or directory")
    options = BenchOptions(
        scope=scope,
        dtypes=parse_dtypes(args.dtype),
        variants=_parse_variants(args.prune, args.cluster)
        + parse_quant(args.quant, default=args.prune is None and args.cluster is None),
        repeats=repeats,
        out=out,
        force=args.force,
        model=model,
        codecs=select_codecs(args.codecs),
    )
    for peer in select_peers(args.peers):
        options.peers.append(Method(peer.name, "peer", peer.description, peer=peer))
    return options


def resolve_peers(methods: list[Method]) -> None:
    """Mark peers whose library is missing as skipped (imports them: zipnn imports torch)."""
    for m in methods:
        if m.peer is not None:
            m.skipped = m.peer.missing()


# -- timing -----------------------------------------------------------------------------------


@dataclass
class Timing:
    first_s: float
    median_s: float
    runs: int  # timed runs behind the median


def _timed(fn: Callable[[Any], Any], prepare: Callable[[], Any], repeats: int,
           first_counts: bool) -> tuple[Timing, Any]:
    """Run ``fn(prepare())``: a timed first call, then up to ``repeats`` runs for the median.

    With ``first_counts`` (peers: nothing to compile) the first call is one of the runs.
    Runs stop once BUDGET_S has been spent, after at least one.
    """
    arg = prepare()
    t0 = time.perf_counter()
    result = fn(arg)
    first = time.perf_counter() - t0
    times = [first] if first_counts else []
    spent = sum(times)
    while len(times) < max(repeats, 1) and (not times or spent < BUDGET_S):
        arg = prepare()
        t0 = time.perf_counter()
        fn(arg)
        dt = time.perf_counter() - t0
        times.append(dt)
        spent += dt
    return Timing(first, statistics.median(times), len(times)), result


def _same_bits(out: Any, bits: np.ndarray) -> bool:
    if isinstance(out, np.ndarray):
        return out.shape == bits.shape and out.dtype == bits.dtype and np.array_equal(out, bits)
    got = np.frombuffer(out, np.uint8)
    return got.size == bits.nbytes and np.array_equal(got, bits.reshape(-1).view(np.uint8))


# -- cells ------------------------------------------------------------------------------------


@dataclass
class Tensor:
    name: str
    array: np.ndarray
    bits: np.ndarray
    transform: dict[str, Any]

    @property
    def stored(self) -> np.ndarray:
        """The bytes peers compress: the bit patterns, 4-bit values packed two per byte (as
        GPTQ/AWQ ship them and as the dense size counts them)."""
        return pack_nibbles(self.bits) if is_nibble(self.array.dtype) else self.bits


@dataclass
class Outcome:
    """One method on one tensor."""

    nbytes: int = 0
    roles: dict[str, int] = field(default_factory=dict)
    theoretical: int | None = None
    encode: Timing | None = None
    decode: Timing | None = None
    verified: bool | None = None


class Skip(Exception):
    """The method does not apply to a tensor of the cell: the whole cell is n/a."""


def _run_codec(codec: Codec, t: Tensor, repeats: int) -> Outcome:
    try:
        enc, frame = _timed(codec.encode, lambda: t.array, repeats, first_counts=False)
    except SparseCodecsError as exc:
        raise Skip(f"{t.name}: {type(exc).__name__}: {exc}") from exc
    report = inspect(frame)
    dec, out = _timed(decode, lambda: frame, repeats, first_counts=False)
    ok = out.dtype == t.array.dtype and _same_bits(as_bits(out)[0], t.bits)
    return Outcome(len(frame), dict(report.role_bytes), report.theoretical_bytes, enc, dec, ok)


def _run_peer(peer: Peer, t: Tensor, repeats: int) -> Outcome:
    try:
        if peer.computed:
            payload = peer.encode(t.bits, t.array.dtype)
            return Outcome(peer.nbytes(payload), peer.roles(payload))
        stored = t.stored
        enc, payload = _timed(lambda a: peer.encode(a, t.array.dtype),
                              lambda: peer.prepare(stored), repeats, first_counts=True)
    except NotApplicable as exc:
        raise Skip(f"{t.name}: {exc}") from exc
    dec, out = _timed(lambda p: peer.decode(p, stored), lambda: payload, repeats,
                      first_counts=True)
    return Outcome(peer.nbytes(payload), peer.roles(payload), None, enc, dec,
                   _same_bits(out, stored))


def _pct(n: float, dense: int) -> float:
    return 100.0 * n / dense if dense else 0.0


def _mbps(nbytes: int, seconds: float) -> float | None:
    return nbytes / 1e6 / seconds if seconds > 0 else None


def _aggregate(outcomes: list[Outcome], names: list[str], dense: int,
               bound_pct: float, computed: bool) -> dict[str, Any]:
    total = sum(o.nbytes for o in outcomes)
    roles: dict[str, int] = {}
    for o in outcomes:
        for role, n in o.roles.items():
            roles[role] = roles.get(role, 0) + n
    result: dict[str, Any] = {
        "status": "computed" if computed else "ok",
        "bytes": total,
        "per_tensor_bytes": [o.nbytes for o in outcomes],
        "effective_pct": _pct(total, dense),
        "theoretical_pct": None,
        "roles_pct": {role: _pct(n, dense) for role, n in roles.items()},
        "bound_distance_pp": _pct(total, dense) - bound_pct,
    }
    if outcomes and outcomes[0].theoretical is not None:
        result["theoretical_pct"] = _pct(sum(o.theoretical or 0 for o in outcomes), dense)
    if computed:
        return result
    failures = [n for n, o in zip(names, outcomes, strict=True) if not o.verified]
    for op in ("encode", "decode"):
        timings = [getattr(o, op) for o in outcomes]
        median = sum(t.median_s for t in timings)
        result[f"{op}_mbps"] = _mbps(dense, median)
        result[f"{op}_median_s"] = median
        result[f"{op}_first_s"] = sum(t.first_s for t in timings)
        result[f"{op}_runs"] = min(t.runs for t in timings)
    result["verified"] = not failures
    result["failures"] = failures
    if failures:
        result["status"] = "FAILED"
    return result


def run_method(m: Method, tensors: list[Tensor], dense: int, bound_pct: float,
               repeats: int) -> tuple[dict[str, Any], Outcome | None]:
    """The method's results on a cell, and its outcome on the cell's first tensor."""
    if m.skipped:
        return {"status": "skipped", "reason": m.skipped}, None
    outcomes = []
    try:
        for t in tensors:
            if m.codec is not None:
                outcomes.append(_run_codec(m.codec, t, repeats))
            elif m.peer is not None:
                outcomes.append(_run_peer(m.peer, t, repeats))
    except Skip as exc:
        return {"status": "n/a", "reason": str(exc)}, None
    except Exception as exc:  # a crash in a codec or peer: a failure, shown, not hidden
        return {"status": "FAILED", "reason": f"{type(exc).__name__}: {exc}",
                "verified": False, "failures": ["crash"]}, None
    computed = m.peer is not None and m.peer.computed
    return (_aggregate(outcomes, [t.name for t in tensors], dense, bound_pct, computed),
            outcomes[0] if outcomes else None)


def build_cell(tset: TensorSet, dtype_key: str, variant: Variant) -> tuple[dict[str, Any],
                                                                           list[Tensor]]:
    dtype = DTYPES[dtype_key]
    tensors: list[Tensor] = []
    rows: list[dict[str, Any]] = []
    quantized = variant.quant is not None
    for name, base in tset.tensors:
        array = base if dtype is None or quantized else base.astype(dtype)
        array, transform, fill = variant.transform(array)
        array.setflags(write=False)  # a method that writes into its input crashes, visibly
        # quantized cells: the pattern is around the fill (the zero point); none when dense
        bound = entropy_bound(array, fill=fill,
                              dense=quantized and variant.pattern is None)
        bits = as_bits(array)[0]
        tensors.append(Tensor(name, array, bits, transform))
        # non-zero, or for a quantized tensor not the fill (the row's zero point)
        nnz = int(np.count_nonzero(bits if fill is None else bits != fill.astype(bits.dtype)))
        rows.append({
            "name": name, "shape": list(array.shape), "dtype": str(array.dtype),
            "dense_bytes": storage_nbytes(array.dtype, array.size),
            "nnz": nnz,
            "bound_bytes": bound.nbytes, "layout": bound.layout,
            "bound_layout_bytes": bound.layout_bits / 8,
            "bound_values_bytes": bound.values_bits / 8,
            "bound_values_joint": bound.values_joint_bits is not None
            and bound.values_joint_bits <= bound.values_split_bits,
            "transform": transform,
        })
    dense = sum(r["dense_bytes"] for r in rows)
    size = sum(t.array.size for t in tensors)
    bound_bytes = sum(r["bound_bytes"] for r in rows)
    cell = {
        "set": tset.name,
        "dtype": variant.quant_dtype or (dtype_key if dtype is not None else "keep"),
        "variant": variant.name,
        "quantized": quantized,
        "dense_bytes": dense,
        "density": sum(r["nnz"] for r in rows) / size if size else 0.0,
        "bound_bytes": bound_bytes,
        "bound_pct": _pct(bound_bytes, dense),
        "tensors": rows,
        "results": {},
    }
    return cell, tensors


# -- per-frame fixed cost --------------------------------------------------------------------


def _per_call(fn: Callable[[], Any], budget_s: float) -> tuple[float, int]:
    """Seconds per call of ``fn`` (median over batches of the batch mean) and calls made."""
    calls = 0
    t0 = time.perf_counter()
    fn()
    single = max(time.perf_counter() - t0, 1e-7)
    batch = max(1, min(10_000, int(0.002 / single)))  # batches of about 2 ms
    means: list[float] = []
    spent = 0.0
    while not means or (spent < budget_s and len(means) < 1000):
        t0 = time.perf_counter()
        for _ in range(batch):
            fn()
        dt = time.perf_counter() - t0
        means.append(dt / batch)
        spent += dt
        calls += batch
    return statistics.median(means), calls


def _fixed_cost_one(m: Method, array: np.ndarray, bits: np.ndarray,
                    budget_s: float) -> dict[str, Any]:
    if m.codec is not None:
        codec = m.codec
        frame = codec.encode(array)
        out = decode(frame)
        ok = out.dtype == array.dtype and _same_bits(as_bits(out)[0], bits)
        enc_s, _ = _per_call(lambda: codec.encode(array), budget_s)
        dec_s, calls = _per_call(lambda: decode(frame), budget_s)
        nbytes = len(frame)
    else:
        peer = m.peer
        assert peer is not None
        payload = peer.encode(peer.prepare(bits), array.dtype)
        ok = _same_bits(peer.decode(payload, bits), bits)
        enc_s, _ = _per_call(lambda: peer.encode(peer.prepare(bits), array.dtype), budget_s)
        dec_s, calls = _per_call(lambda: peer.decode(payload, bits), budget_s)
        nbytes = peer.nbytes(payload)
    row: dict[str, Any] = {"status": "ok" if ok else "FAILED", "bytes": nbytes,
                           "encode_us": 1e6 * enc_s, "decode_us": 1e6 * dec_s,
                           "decode_calls": calls, "verified": ok}
    if not ok:
        row["reason"] = "round trip differs"
    return row


def measure_fixed_cost(methods: list[Method], probes: list[tuple[str, np.ndarray]],
                       budget_s: float) -> list[dict[str, Any]]:
    """Encode and decode time per call of each codec and timed peer on each small probe
    (ZipNN's encode time includes the copy of its input it needs, a few hundred ns here)."""
    rows: list[dict[str, Any]] = []
    for label, array in probes:
        array.setflags(write=False)
        bits = as_bits(array)[0]
        for m in methods:
            row: dict[str, Any] = {"probe": label, "method": m.name, "elements": int(array.size),
                                   "dtype": str(array.dtype)}
            if m.skipped or (m.peer is not None and m.peer.computed):
                row["status"] = "skipped" if m.skipped else "computed"
            else:
                try:
                    row.update(_fixed_cost_one(m, array, bits, budget_s))
                except (SparseCodecsError, NotApplicable) as exc:
                    row.update(status="n/a", reason=f"{type(exc).__name__}: {exc}")
                except Exception as exc:  # a crash: shown as a failure
                    row.update(status="FAILED", reason=f"{type(exc).__name__}: {exc}")
            rows.append(row)
    return rows


# -- progress ---------------------------------------------------------------------------------


@contextmanager
def _progress(total: int) -> Iterator[Callable[[str], None]]:
    """A progress bar on stderr (rich when installed); yields ``step(description)``."""
    try:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )
    except ImportError:
        def step(text: str) -> None:
            print(f"  {text}", file=sys.stderr, flush=True)
        yield step
        return
    columns = (TextColumn("{task.description:<48}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("bench", total=total)

        def advance(text: str) -> None:
            progress.update(task, description=text, advance=1)
        yield advance


# -- the run ----------------------------------------------------------------------------------


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(affinity(0)) if affinity else os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "machine": platform.machine(),
    }


def load_sets(options: BenchOptions) -> list[TensorSet]:
    if options.model is not None:
        return [load_model(options.model)]
    return builtin_sets(options.scope)


def command_line(args: argparse.Namespace) -> str:
    """The ``sparsecodecs bench`` command equivalent to parsed ``args``."""
    words = ["sparsecodecs", "bench"]
    for key, value in sorted(vars(args).items()):
        if key in ("command", "func") or value in (None, False):
            continue
        flag = "--" + key.replace("_", "-")
        words.extend([flag] if value is True else [flag, str(value)])
    return shlex.join(words)


def run(options: BenchOptions, command: str = "") -> dict[str, Any]:
    """Run the bench; returns the results document (what results.json holds)."""
    started = time.perf_counter()
    sets = load_sets(options)
    resolve_peers(options.peers)
    methods = options.methods
    floats = [v for v in options.variants if v.quant is None]
    quants = [v for v in options.variants if v.quant is not None]
    # quantized cells start from each tensor as loaded, whatever --dtype: once per set
    plan = [(s, d, v) for s in sets
            for d, v in [(d, v) for d in options.dtypes for v in floats]
            + [("keep", v) for v in quants]]
    cells = []
    cold: dict[str, dict[str, Any]] = {}
    products_too = options.scope in ("default", "full")
    with _progress(len(plan) * (len(methods) + 1) + 1 + products_too) as step:
        for tset, dtype_key, variant in plan:
            label = f"{tset.name} {variant.quant_dtype or dtype_key} {variant.name}"
            step(f"{label}: preparing")
            cell, tensors = build_cell(tset, dtype_key, variant)
            for m in methods:
                step(f"{label}: {m.name}")
                result, first = run_method(m, tensors, cell["dense_bytes"], cell["bound_pct"],
                                           options.repeats)
                cell["results"][m.name] = result
                if first is not None and first.encode is not None and m.name not in cold:
                    assert first.decode is not None
                    cold[m.name] = {
                        "cell": label, "tensor": tensors[0].name,
                        "encode_first_s": first.encode.first_s,
                        "encode_median_s": first.encode.median_s,
                        "decode_first_s": first.decode.first_s,
                        "decode_median_s": first.decode.median_s,
                    }
            cells.append(cell)
        step("per-frame fixed cost")
        fixed = measure_fixed_cost(methods, fixed_cost_probes(),
                                   0.01 if options.scope == "tiny" else FIXED_BUDGET_S)
        products: dict[str, Any] = {"status": "skipped",
                                    "reason": f"not measured in the {options.scope} scope"}
        if products_too:
            step("products on compressed weights (a layer stack against torch)")
            from .products import products_section

            products = products_section()
    failures = [
        {"cell": f"{c['set']} {c['dtype']} {c['variant']}", "method": name,
         "reason": r.get("reason") or f"round trip differs: {', '.join(r['failures'])}"}
        for c in cells for name, r in c["results"].items() if r["status"] == "FAILED"
    ] + [{"cell": f"fixed cost {r['probe']}", "method": r["method"], "reason": r["reason"]}
         for r in fixed if r["status"] == "FAILED"]
    frames = sum(len(c["tensors"]) for c in cells for r in c["results"].values()
                 if r["status"] == "ok")
    return {
        "schema": "sparsecodecs-bench/1",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "argv": list(sys.argv),
        "options": {
            "scope": options.scope,
            "model": str(options.model) if options.model else None,
            "dtypes": options.dtypes,
            "variants": [v.name for v in options.variants],
            "repeats": options.repeats,
            "run_budget_s": BUDGET_S,
        },
        "machine": _machine(),
        "versions": _versions(),
        "methods": [m.describe() for m in methods],
        "corpus": [s.describe() for s in sets],
        "cells": cells,
        "cold_start": cold,
        "fixed_cost": fixed,
        "products": products,
        "verified_outputs": frames,
        "failures": failures,
        "duration_s": time.perf_counter() - started,
    }


def main(args: argparse.Namespace) -> int:
    """``sparsecodecs bench``: run, write the files, print the summary. Exit 1 on failures."""
    from . import report

    options = parse_options(args)
    results = run(options, command_line(args))
    written = report.write_all(results, options.out, force=options.force)
    report.print_summary(results, written)
    return 1 if results["failures"] else 0
