"""Products on compressed weights against torch's dense ``F.linear``, over a stack of layers
larger than the last-level cache (issue 14's measurement): the ``products`` section of
``sparsecodecs bench`` and ``python bench/compute_bench.py --ratios``.

A product at batch 1 is bound by the bytes it reads, so one weight multiplied in a loop (served
by the cache) says nothing: :func:`stack_ratios` draws a few 2:4-pruned bfloat16 weights,
encodes them once, and fills a stack of distinct copies (each its own buffer) until the dense
bfloat16 stack has the asked size; each pass multiplies every layer once, in order, as a forward
pass reads them, and the best of ``repeat`` passes counts. torch runs on the bfloat16 stack and
on a float32 copy of it (one at a time); the ratio is ours over the faster of the two, in wall
time and in process CPU time, with the load average beside it.

torch is optional: :func:`products_section` reports the section as skipped without it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import ml_dtypes
import numpy as np

import sparsecodecs as sc
from sparsecodecs.transforms import prune

__all__ = [
    "RATIO_HEADER",
    "STACK_CODECS",
    "STACK_OTHERS",
    "STACK_SHAPES",
    "Ratio",
    "format_ratio",
    "l3_bytes",
    "mib",
    "products_section",
    "stack_codec",
    "stack_ratios",
    "store",
    "weight",
]


def weight(shape: tuple[int, int], kind: str, seed: int = 0) -> np.ndarray:
    """A bfloat16 N(0, 0.02^2) weight: ``kind`` ``"2:4"`` (magnitude-pruned 2:4), ``"50%"``
    (the smaller half of its magnitudes zeroed, unstructured) or ``"dense"``."""
    if kind not in ("2:4", "50%", "dense"):
        raise ValueError(f"weights must be '2:4', '50%' or 'dense', got {kind!r}")
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(ml_dtypes.bfloat16)
    if kind == "2:4":
        return prune(w, "2:4")[0]
    if kind == "50%":
        return prune(w, None, density=0.5)[0]
    return w


def store(w: np.ndarray, codec: str) -> sc.CompressedLinear | bytes:
    """``codec``: a codec name, ``hybrid-nm`` (hybrid forced to its N:M layout; on these
    weights ``auto`` picks the bitmask layout) or ``<codec>/256`` (a CompressedLinear of
    256-row block frames)."""
    if codec.endswith("/256"):
        return sc.CompressedLinear.from_array(w, codec.split("/")[0], block_rows=256)
    if codec == "hybrid-nm":
        return sc.get_codec("hybrid", layout="nm").encode(w)
    return sc.get_codec(codec).encode(w)


def mib(n: int) -> str:
    return f"{n / 2**20:.2f} MiB"


#: name -> (out, in) of the stack runs.
STACK_SHAPES = {"4096x4096": (4096, 4096), "11008x4096": (11008, 4096)}
#: codecs of the stack runs: ``nm`` and ``window`` (one frame per layer), ``hybrid`` of 256-row
#: block frames (the layout the products decode block by block); each layer held as a
#: CompressedLinear. Their weights are 2:4-pruned.
STACK_CODECS = ("nm", "window", "hybrid/256")
#: Other runs on other weights, ``codec@weights`` (see :func:`weight`): unstructured 50% for
#: ``bitmask`` and ``csr``, dense for ``hybrid``.
STACK_OTHERS = ("bitmask@50%", "csr@50%", "hybrid/256@50%", "hybrid/256@dense")


def stack_codec(name: str) -> tuple[str, str]:
    """``(codec, weights)`` of a stack run's name: ``"nm"`` -> ``("nm", "2:4")``,
    ``"csr@50%"`` -> ``("csr", "50%")``."""
    codec, _, kind = name.partition("@")
    return codec, kind or "2:4"


@dataclass
class Ratio:
    shape: str
    codec: str
    batch: int
    threads: int
    layers: int
    distinct: int
    stack_bytes_ours: int
    stack_bytes_bf16: int
    ms_ours: float  # per layer, wall
    ms_torch_bf16: float
    ms_torch_f32: float
    ratio: float  # ms_ours / min(torch bf16, torch f32), wall
    cpu_ratio: float  # the same with process CPU time (threads 1: less sensitive to load)
    loadavg: str
    x: str = "float32"  # the dtype of x given to sc.matmul (bfloat16: pair products, batch >= 5)


def _pass_ms(fn: Callable[[int], Any], layers: int, repeat: int) -> tuple[float, float]:
    """Best wall and process-CPU times of ``repeat`` passes over the stack (``fn(i)``
    multiplies layer ``i``), per layer, in ms."""
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(layers):
            fn(i)
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return 1e3 * best / layers, 1e3 * best_cpu / layers


def stack_ratios(shape_name: str, codecs: Sequence[str], batches: Sequence[int],
                 threads: Sequence[int], stack_mib: int, distinct: int, repeat: int,
                 check: bool = True, echo: bool = True,
                 x_dtypes: Sequence[str] = ("float32",)) -> list[Ratio]:
    """Time ``sc.matmul`` against torch's dense ``F.linear`` over a stack of layers.

    ``distinct`` bf16 weights are drawn and encoded (2:4-pruned, or as a ``codec@weights`` name
    says: :data:`STACK_OTHERS`; torch's dense product, whose time does not depend on the
    values, is timed on the 2:4 ones); the stack holds as many copies
    of them as make the dense bf16 stack ``stack_mib`` MiB, each copy its own buffer (frames
    copied byte by byte, tensors cloned), so no product finds its weight in the cache. Each
    pass multiplies every layer once, in order, as a forward pass reads them; times are the
    best of ``repeat`` passes, per layer. torch runs on the bf16 stack and on a float32 copy of
    it (allocated in turn, the faster counts), with ``torch.set_num_threads(threads)``.
    ``x_dtypes``: ours runs on x in each of these (``float32``, ``bfloat16``: the same values,
    x drawn in float32 and rounded to bfloat16 once, as torch's bfloat16 run gets it).
    """
    import torch
    import torch.nn.functional as F

    out_f, in_f = STACK_SHAPES.get(shape_name) or _parse_shape(shape_name)
    layers = max(distinct, (stack_mib << 20) // (out_f * in_f * 2))
    kinds = {kind: [weight((out_f, in_f), kind, seed) for seed in range(distinct)]
             for kind in dict.fromkeys(stack_codec(c)[1] for c in ("nm", *codecs))}
    ws = kinds["2:4"]
    xs = {b: np.random.default_rng(b).standard_normal((b, in_f)).astype(np.float32)
          for b in batches}
    rows: list[Ratio] = []
    torch_ms: dict[tuple[int, int, str], tuple[float, float]] = {}
    for dt in ("bf16", "f32"):  # one dense stack at a time: the float32 one is 2x the bytes
        base = [torch.from_numpy(w.view(np.uint16).astype(np.int16)).view(torch.bfloat16)
                for w in ws]
        if dt == "f32":
            base = [t.float() for t in base]
        stack = [base[i % distinct].clone() for i in range(layers)]
        del base
        for b in batches:
            xt = {d: torch.from_numpy(xs[b]).to(d) for d in (torch.bfloat16, torch.float32)}
            xd = xt[stack[0].dtype]

            def dense(i: int, xd: Any = xd, stack: list[Any] = stack) -> Any:
                return F.linear(xd, stack[i])

            for t in threads:
                torch.set_num_threads(t)
                with torch.inference_mode():
                    torch_ms[(b, t, dt)] = _pass_ms(dense, layers, repeat)
        stack = []
    for name in codecs:
        codec, kind = stack_codec(name)
        ws = kinds[kind]
        # every layer a CompressedLinear: its frames are parsed and checksummed once, when
        # loaded, as a model holds its layers (sc.matmul on bytes re-verifies every call)
        held = [sc.CompressedLinear([f]) if isinstance(f, bytes) else f
                for f in (store(w, codec) for w in ws)]
        ours: list[Any] = [  # each layer its own copy of the bytes
            sc.CompressedLinear([bytes(bytearray(f)) for f in held[i % distinct].frames])
            for i in range(layers)]
        nbytes = sum(layer.nbytes for layer in ours)
        for b, xd_name in ((b, d) for b in batches for d in x_dtypes):
            x = xs[b] if xd_name == "float32" else xs[b].astype(ml_dtypes.bfloat16)
            if check:  # the products are right before they are timed
                # the references through torch on one thread: numpy's OpenBLAS threads spin
                # for a while after a call, and process CPU time would count them as ours
                torch.set_num_threads(1)
                x32 = torch.from_numpy(x.astype(np.float32))
                for i in range(distinct):
                    y = torch.from_numpy(sc.matmul(x, ours[i]))
                    w32 = torch.from_numpy(ws[i].astype(np.float32))
                    bound = float((x32.abs() @ w32.abs().T).max()) if y.numel() else 0.0
                    err = float((y - x32 @ w32.T).abs().max()) if y.numel() else 0.0
                    assert err <= 1e-4 * bound + 1e-30
            for t in threads:

                def product(i: int, x: np.ndarray = x, ours: list[Any] = ours, t: int = t) -> Any:
                    return sc.matmul(x, ours[i], threads=t)

                ms = _pass_ms(product, layers, repeat)
                tb, tf = torch_ms[(b, t, "bf16")], torch_ms[(b, t, "f32")]
                load = " ".join(f"{v:.2f}" for v in os.getloadavg())
                rows.append(Ratio(shape_name, name, b, t, layers, distinct, nbytes,
                                  layers * out_f * in_f * 2, ms[0], tb[0], tf[0],
                                  ms[0] / min(tb[0], tf[0]), ms[1] / min(tb[1], tf[1]), load,
                                  xd_name))
                if echo:
                    print(format_ratio(rows[-1]), file=sys.stderr, flush=True)
        ours = []
    return rows


RATIO_HEADER = (
    "| shape | codec | batch | threads | layers (distinct) | stack: ours / bf16 | ms/layer ours "
    "| torch bf16 | torch f32 | ratio (wall) | ratio (CPU) | load avg |"
)


def format_ratio(r: Ratio) -> str:
    return (
        f"| {r.shape} | {r.codec}{', x bf16' if r.x == 'bfloat16' else ''} | {r.batch} | "
        f"{r.threads} | {r.layers} ({r.distinct}) | "
        f"{mib(r.stack_bytes_ours)} / {mib(r.stack_bytes_bf16)} | {r.ms_ours:.3f} | "
        f"{r.ms_torch_bf16:.3f} | {r.ms_torch_f32:.3f} | **{r.ratio:.2f}x** | {r.cpu_ratio:.2f}x | "
        f"{r.loadavg} |"
    )


def _parse_shape(name: str) -> tuple[int, int]:
    out_f, in_f = (int(v) for v in name.split("x"))
    return out_f, in_f


def l3_bytes() -> int | None:
    """The largest CPU cache of CPU 0 in bytes (Linux sysfs), or None if unknown."""
    base = "/sys/devices/system/cpu/cpu0/cache"
    sizes = []
    try:
        entries = [e for e in os.listdir(base) if e.startswith("index")]
    except OSError:
        return None
    for entry in entries:
        try:
            with open(os.path.join(base, entry, "size")) as fh:
                text = fh.read().strip()
            scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
            sizes.append(int(text.rstrip("KMG")) * scale)
        except (OSError, ValueError):
            continue
    return max(sizes) if sizes else None


def _available_mib() -> int | None:
    """Physical memory available now, in MiB (None where the OS does not say)."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") >> 20
    except (AttributeError, OSError, ValueError):
        return None


#: What ``sparsecodecs bench`` measures: one shape, the compute codecs (and those the issue
#: also asks for: unstructured 50% on ``bitmask`` and ``csr``, dense ``hybrid``), batch 1, one
#: thread; then ``nm`` at these batches on a float32 x and on a bfloat16 x (the pair
#: products), one thread.
SECTION_SHAPE = "4096x4096"
SECTION_CODECS = ("nm", "window", "hybrid/256", "bitmask@50%", "csr@50%", "hybrid/256@dense")
SECTION_BATCHES = (8, 64)
#: The dense bf16 stack: four times the last-level cache, at least 256 MiB, at most 1 GiB.
SECTION_STACK = (256, 1024)


def products_section(*, shape: str = SECTION_SHAPE, codecs: Sequence[str] = SECTION_CODECS,
                     stack_mib: int | None = None, repeat: int = 2,
                     batches: Sequence[int] = SECTION_BATCHES) -> dict[str, Any]:
    """The ``products`` section of the bench results: ratios against torch at batch 1 on one
    thread, then ``nm`` at ``batches`` on a float32 and on a bfloat16 x, or ``{"status":
    "skipped", "reason": ...}`` without torch."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return {"status": "skipped", "reason": "torch is not installed (pip install torch)"}
    if stack_mib is None:
        l3 = l3_bytes() or (64 << 20)
        stack_mib = min(SECTION_STACK[1], max(SECTION_STACK[0], 4 * l3 >> 20))
        free = _available_mib()  # the peak is ~3.5x the bf16 stack (its float32 copy, ours)
        if free is not None and 4 * stack_mib > free:
            stack_mib = max(SECTION_STACK[0], free // 4)
            if 4 * stack_mib > free:
                return {"status": "skipped",
                        "reason": f"{free} MiB of memory available; the layer stack needs "
                                  f"about {4 * stack_mib} MiB"}
    try:
        rows = stack_ratios(shape, codecs, [1], [1], stack_mib, 2, repeat, echo=False)
        if batches:
            rows += stack_ratios(shape, ["nm"], batches, [1], stack_mib, 2, repeat, echo=False,
                                 x_dtypes=("float32", "bfloat16"))
    except MemoryError:
        return {"status": "skipped", "reason": f"out of memory for a {stack_mib} MiB stack"}
    return {"status": "ok", "l3_bytes": l3_bytes(), "stack_mib": stack_mib,
            "rows": [asdict(r) for r in rows]}
