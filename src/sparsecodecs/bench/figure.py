"""The headline figure: one picture of the bench a person reads at a glance (``headline.png``).

Drawn from the results document of :func:`.harness.run`, on the **real-model cells** only (the
tensor sets read from a safetensors model: ``--model`` or the built-in ``minilm`` set; not the
synthetic ones). Panels, left to right:

1. **Effective size, % of dense** per cell: ``hybrid`` against NVIDIA's 2:4 layout, ZipNN and
   zstd -19, with the cell's order-0 entropy bound (red tick) and the theoretical 50% of a 2:4
   tensor (dashed line). Lower is better.
2. **Decode speed**: MB/s of dense data decoded by ``hybrid`` and by ZipNN, per cell, and their
   ratio. Higher is better. Single thread, medians; the same process measured both.
3. **Compute time against dense**, drawn only when the results hold compute rows
   (``results["compute"]``, see :func:`compute_rows`); until then the figure says where that
   panel goes.

:func:`summary_rows` gives the same numbers as a table (the head of ``results.md``). The figure
is at most :data:`MAX_HEIGHT_PX` pixels tall, whatever the number of cells.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

__all__ = [
    "HEADLINE_FILE",
    "MAX_CELLS",
    "MAX_HEIGHT_PX",
    "SIZE_METHODS",
    "compute_rows",
    "headline_cells",
    "headline_png",
    "summary_rows",
]

HEADLINE_FILE = "headline.png"
MAX_HEIGHT_PX = 1600
#: At most this many cells in the figure (the first ones, in bench order: dtypes, then variants).
MAX_CELLS = 8
#: The methods of the size panel, in drawing order, and their colours.
SIZE_METHODS: dict[str, str] = {
    "hybrid": "tab:blue",
    "nvidia-2:4": "tab:green",
    "zipnn": "tab:orange",
    "zstd-19": "tab:gray",
}
CODEC = "hybrid"
SPEED_PEER = "zipnn"
_DPI = 100


def _is_real(source: str) -> bool:
    return not source.startswith("synthetic")


def headline_cells(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The real-model cells of ``results`` (at most :data:`MAX_CELLS`), in bench order."""
    real = {s["set"] for s in results["corpus"] if _is_real(s["source"])}
    return [c for c in results["cells"] if c["set"] in real][:MAX_CELLS]


def _label(cell: dict[str, Any]) -> str:
    return f"{cell['set']} {cell['dtype']} {cell['variant']}"


def _value(cell: dict[str, Any], method: str, key: str) -> float | None:
    r = cell["results"].get(method)
    if r is None or r["status"] not in ("ok", "computed"):
        return None
    v = r.get(key)
    return float(v) if v is not None and math.isfinite(v) else None


def compute_rows(results: dict[str, Any]) -> list[tuple[str, float]]:
    """``(label, time / dense time)`` of every compute row in ``results``.

    A compute row is a mapping in ``results["compute"]`` with a ``label`` and either
    ``time_vs_dense`` (the product's time over dense's, measured in one process) or both
    ``seconds`` and ``dense_seconds``. Rows without a usable ratio are left out.
    """
    rows = []
    for row in results.get("compute") or ():
        ratio = row.get("time_vs_dense")
        if ratio is None and row.get("seconds") and row.get("dense_seconds"):
            ratio = row["seconds"] / row["dense_seconds"]
        if ratio is not None and math.isfinite(ratio) and ratio > 0:
            rows.append((str(row.get("label", "?")), float(ratio)))
    return rows


def _fmt(v: float | None, spec: str = ".1f", suffix: str = "") -> str:
    return "-" if v is None else format(v, spec) + suffix


def summary_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the headline table: sizes (% of dense) and decode speeds per cell."""
    header = ["cell", "bound %", *(f"{m} %" for m in SIZE_METHODS),
              f"{CODEC} / {SPEED_PEER} size", f"dec MB/s {CODEC}", f"dec MB/s {SPEED_PEER}",
              f"{CODEC} / {SPEED_PEER} dec speed"]
    rows = []
    for cell in headline_cells(results):
        sizes = [_value(cell, m, "effective_pct") for m in SIZE_METHODS]
        ours, peer = sizes[0], _value(cell, SPEED_PEER, "effective_pct")
        dec, peer_dec = (_value(cell, m, "decode_mbps") for m in (CODEC, SPEED_PEER))
        rows.append([
            _label(cell), _fmt(cell["bound_pct"]), *(_fmt(v) for v in sizes),
            _fmt(ours / peer if ours and peer else None, ".2f", "x"),
            _fmt(dec, ".0f"), _fmt(peer_dec, ".0f"),
            _fmt(dec / peer_dec if dec and peer_dec else None, ".2f", "x"),
        ])
    return header, rows


def headline_png(results: dict[str, Any]) -> bytes | None:
    """The headline figure as PNG bytes, or None when the results hold no real-model cell."""
    cells = headline_cells(results)
    if not cells:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    compute = compute_rows(results)
    names = [m for m in SIZE_METHODS if any(m in c["results"] for c in cells)]
    n = len(cells)
    height = min(2.8 + n * (0.32 + 0.22 * len(names)), MAX_HEIGHT_PX / _DPI)
    fig, axes = plt.subplots(1, 3, figsize=(15, height), dpi=_DPI,
                             gridspec_kw={"width_ratios": [2.3, 1.3, 1.1]})
    size_ax, speed_ax, compute_ax = axes
    ys = list(range(n))[::-1]  # the first cell on top
    bar = 0.8 / max(len(names), 1)

    for y, cell in zip(ys, cells, strict=True):
        for i, m in enumerate(names):
            yy = y + 0.4 - bar * (i + 0.5)
            v = _value(cell, m, "effective_pct")
            if v is None:
                status = cell["results"].get(m, {}).get("status", "not run")
                size_ax.text(1, yy, f"{m}: {status}", va="center", fontsize=7, color="dimgray")
                continue
            size_ax.barh(yy, v, height=bar * 0.9, color=SIZE_METHODS[m],
                         hatch="//" if cell["results"][m]["status"] == "computed" else None,
                         edgecolor="white", linewidth=0)
            size_ax.text(v + 0.8, yy, f"{v:.1f}%", va="center", fontsize=7)
        bound = cell["bound_pct"]
        size_ax.plot([bound, bound], [y - 0.42, y + 0.42], color="tab:red", linewidth=2.2)
    size_ax.axvline(50, color="black", linestyle="--", linewidth=1)
    size_ax.set_yticks(ys, [_label(c) for c in cells], fontsize=9)
    size_ax.set_xlim(0, 110)
    size_ax.set_xlabel("effective size, % of dense (lower is better)", fontsize=9)
    size_ax.set_title("Effective size (bit-exact round trips)", fontsize=11, loc="left")
    size_ax.grid(axis="x", alpha=0.3)
    computed = {m for c in cells for m in names
                if c["results"].get(m, {}).get("status") == "computed"}
    handles: list[Any] = [
        Patch(facecolor=SIZE_METHODS[m], hatch="//" if m in computed else None,
              edgecolor="white", label=m + (" (computed from the layout)" if m in computed
                                            else ""))
        for m in names
    ]
    handles += [Line2D([], [], color="tab:red", linewidth=2.2, label="order-0 entropy bound"),
                Line2D([], [], color="black", linestyle="--", label="50%: 2:4 theoretical")]
    size_ax.legend(handles=handles, fontsize=8, loc="upper center", ncol=3, frameon=False,
                   bbox_to_anchor=(0.5, -0.13 - 0.5 / height))

    pair = (CODEC, SPEED_PEER)
    for y, cell in zip(ys, cells, strict=True):
        speeds = [_value(cell, m, "decode_mbps") for m in pair]
        for i, (m, v) in enumerate(zip(pair, speeds, strict=True)):
            yy = y + 0.2 - 0.4 * i
            if v is None:
                speed_ax.text(0, yy, f" {m}: n/a", va="center", fontsize=7, color="dimgray")
                continue
            speed_ax.barh(yy, v, height=0.36, color=SIZE_METHODS[m])
            speed_ax.text(v, yy, f" {v:.0f}", va="center", fontsize=7)
        if speeds[0] and speeds[1]:
            speed_ax.text(0.98, y, f"{speeds[0] / speeds[1]:.2f}x", va="center", ha="right",
                          fontsize=9, fontweight="bold", transform=speed_ax.get_yaxis_transform())
    speed_ax.set_yticks(ys, [""] * n)
    speed_ax.set_xlabel("decode, MB/s of dense data (higher is better)", fontsize=9)
    speed_ax.set_title(f"Decode speed: {CODEC} / {SPEED_PEER}", fontsize=11, loc="left")
    speed_ax.grid(axis="x", alpha=0.3)
    speed_ax.set_xlim(0, speed_ax.get_xlim()[1] * 1.35)
    speed_ax.legend(handles=[Patch(color=SIZE_METHODS[m], label=m) for m in pair], fontsize=8,
                    loc="upper center", ncol=2, frameon=False,
                    bbox_to_anchor=(0.5, -0.13 - 0.5 / height))

    compute_ax.set_title("Compute time vs dense", fontsize=11, loc="left")
    if compute:
        cy = list(range(len(compute)))[::-1]
        ratios = [r for _, r in compute]
        compute_ax.barh(cy, ratios, color=["tab:blue" if r < 1 else "tab:gray" for r in ratios])
        for y, r in zip(cy, ratios, strict=True):
            compute_ax.text(r, y, f" {r:.2f}x", va="center", fontsize=7)
        compute_ax.axvline(1, color="black", linewidth=1)
        compute_ax.set_yticks(cy, [label for label, _ in compute], fontsize=7)
        compute_ax.set_xlabel("time / dense time (< 1: faster)", fontsize=9)
        compute_ax.set_xlim(0, max(ratios) * 1.3)
    else:
        compute_ax.set_xticks([])
        compute_ax.set_yticks([])
        for side in compute_ax.spines.values():
            side.set_linestyle(":")
            side.set_color("gray")
        compute_ax.text(0.5, 0.5, "no compute rows in these results:\nthis panel shows the "
                        "time of products\nfrom compressed weights against\ndense once the "
                        "bench measures them", ha="center", va="center", fontsize=8,
                        color="dimgray", transform=compute_ax.transAxes)

    machine = results.get("machine", {})
    fig.suptitle(
        f"sparsecodecs bench on real weights ({', '.join(_sets(cells))}): {CODEC} against "
        f"NVIDIA's 2:4 layout, ZipNN and zstd -19   [{machine.get('cpu', '?')}, single thread, "
        f"{str(results.get('created', ''))[:10]}]",
        fontsize=10, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.12 / height))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    plt.close(fig)
    return buf.getvalue()


def _sets(cells: Sequence[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(c["set"] for c in cells))
