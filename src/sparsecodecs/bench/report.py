"""The bench's outputs: the console summary, results.md, results.json, the headline figure
(:mod:`.figure`, ``headline.png``) and the per-cell PNG grid (``results.png``).

Everything here reads the results document built by :func:`.harness.run`; nothing is measured
or computed anew except formatting.
"""

from __future__ import annotations

import io
import json
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._atomic import atomic_write
from . import entropy, figure, harness

__all__ = ["chart_png", "fixed_cost_rows", "headline_markdown", "markdown", "print_summary",
           "summary_rows", "versus_rows", "write_all"]

_NA = {"n/a": "n/a", "skipped": "skipped", "FAILED": "FAILED"}


def headline_markdown(results: dict[str, Any], files: Sequence[str] = ()) -> list[str]:
    """The opening of results.md: the headline figure and its numbers (real-model cells)."""
    header, rows = figure.summary_rows(results)
    if not rows:
        return []
    lines = ["## Headline: the real-model cells", ""]
    if figure.HEADLINE_FILE in files:
        lines += [f"![headline figure]({figure.HEADLINE_FILE})", ""]
    lines += ["Effective size in % of dense (lower is better; `bound`: the order-0 entropy "
             f"bound), and decode speed in MB/s of dense data, {figure.CODEC} against "
             f"{figure.SPEED_PEER}, medians of single-thread runs in this one process.", ""]
    return lines + _md_table(header, rows) + [""]


def _cell_label(cell: dict[str, Any]) -> str:
    return f"{cell['set']} {cell['dtype']} {cell['variant']}"


def _num(value: float | None, fmt: str = ".1f") -> str:
    return "-" if value is None or not math.isfinite(value) else format(value, fmt)


def _size(result: dict[str, Any]) -> str:
    status = result["status"]
    if status in _NA and "effective_pct" not in result:
        return _NA[status]
    text = _num(result["effective_pct"])
    if status == "computed":
        return text + "*"
    return text + (" FAILED" if status == "FAILED" else "")


def _method_names(results: dict[str, Any], kind: str) -> list[str]:
    return [m["name"] for m in results["methods"] if m["kind"] == kind]


def summary_rows(results: dict[str, Any], kind: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the effective-size table for ``kind`` (``codec`` or ``peer``)."""
    names = _method_names(results, kind)
    header = ["cell", "density", "bound", *names]
    rows = []
    for cell in results["cells"]:
        rows.append([_cell_label(cell), f"{100 * cell['density']:.0f}%",
                     _num(cell["bound_pct"]),
                     *(_size(cell["results"][n]) for n in names)])
    return header, rows


def _best(cell: dict[str, Any], names: Sequence[str]) -> str | None:
    ok = [(r["effective_pct"], n) for n in names
          if (r := cell["results"][n])["status"] in ("ok", "computed")]
    return min(ok)[1] if ok else None


def _throughput_rows(results: dict[str, Any], where: bool = True) -> tuple[list[str],
                                                                            list[list[str]]]:
    header = ["method", "cells", "enc MB/s", "dec MB/s", "1st enc ms", "warm enc ms",
              "1st dec ms", "warm dec ms", "first call on"][: 9 if where else 8]
    rows = []
    for m in results["methods"]:
        name = m["name"]
        runs = [c["results"][name] for c in results["cells"]
                if c["results"][name].get("encode_mbps") is not None]
        cold = results["cold_start"].get(name)
        if not runs:
            status = "skipped" if m.get("skipped") else "computed" if m.get("computed") else "n/a"
            rows.append([name, "0", status] + [""] * (len(header) - 3))
            continue
        enc = sorted(r["encode_mbps"] for r in runs)
        dec = sorted(r["decode_mbps"] for r in runs if r.get("decode_mbps") is not None)
        row = [name, str(len(runs)), _num(enc[len(enc) // 2], ".0f"),
               _num(dec[len(dec) // 2], ".0f") if dec else "-"]
        if cold:
            row += [_num(1e3 * cold[k], ".1f") for k in ("encode_first_s", "encode_median_s",
                                                          "decode_first_s", "decode_median_s")]
            row += [f"{cold['cell']} / {cold['tensor']}"] if where else []
        else:
            row += [""] * (len(header) - 4)
        rows.append(row)
    return header, rows


def _ratio(num: float | None, den: float | None) -> float | None:
    return num / den if num is not None and den else None


def _status_text(r: dict[str, Any] | None) -> str:
    return "not run" if r is None else str(r["status"])


def versus_rows(results: dict[str, Any], codec: str = "hybrid",
                peer: str = "zipnn") -> tuple[list[str], list[list[str]], str]:
    """Per cell, ``codec`` against ``peer`` in the same run: sizes (and the order-0 bound),
    size ratio, and speed ratios (the peer's time over the codec's: above 1 is faster).
    Also a one-line tally of the cells meeting issue 13's targets."""
    header = ["cell", f"{codec} %", f"{peer} %", "bound %", f"size / {peer}",
              "vs bound (pp)", f"dec x {peer}", f"enc x {peer}"]
    rows: list[list[str]] = []
    tally = {"dec": [0, 0], "enc": [0, 0], "size": [0, 0]}
    for cell in results["cells"]:
        mine, theirs = cell["results"].get(codec), cell["results"].get(peer)
        if mine is None:
            continue
        if "effective_pct" not in mine:
            rows.append([_cell_label(cell), _status_text(mine), "", _num(cell["bound_pct"], ".2f"),
                         "", "", "", ""])
            continue
        compared = theirs is not None and theirs["status"] == "ok"
        size = _ratio(mine["bytes"], theirs["bytes"]) if compared else None
        dec = _ratio(mine.get("decode_mbps"), theirs.get("decode_mbps")) if compared else None
        enc = _ratio(mine.get("encode_mbps"), theirs.get("encode_mbps")) if compared else None
        for key, value, target in (("dec", dec, 1.0), ("enc", enc, 0.75), ("size", size, None)):
            if value is not None:
                tally[key][1] += 1
                tally[key][0] += value <= 1.0 if target is None else value >= target
        rows.append([
            _cell_label(cell), _num(mine["effective_pct"], ".2f"),
            _num(theirs["effective_pct"], ".2f") if compared and theirs else
            _status_text(theirs), _num(cell["bound_pct"], ".2f"),
            _num(size, ".4f"), _num(mine["bound_distance_pp"], "+.2f"),
            _num(dec, ".2f"), _num(enc, ".2f"),
        ])
    line = (f"{codec} decode >= 1.0x {peer}: {tally['dec'][0]} of {tally['dec'][1]} cells; "
            f"encode >= 0.75x: {tally['enc'][0]} of {tally['enc'][1]}; size <= {peer}: "
            f"{tally['size'][0]} of {tally['size'][1]}")
    return header, rows, line


def fixed_cost_rows(results: dict[str, Any], peer: str = "zipnn") -> tuple[list[str],
                                                                           list[list[str]]]:
    """Per small probe and method: frame bytes, time per decode / encode call, and the peer's
    decode time over the method's (above 1: the method's fixed cost is below the peer's)."""
    header = ["probe", "method", "bytes", "dec us", "enc us", f"dec x {peer}",
              f"enc x {peer}"]
    rows_in = results.get("fixed_cost", [])
    ref = {r["probe"]: r for r in rows_in if r["method"] == peer and r["status"] == "ok"}
    rows = []
    for r in rows_in:
        if r["status"] != "ok":
            rows.append([r["probe"], r["method"], r["status"], "", "", "", ""])
            continue
        base = ref.get(r["probe"])
        rows.append([
            r["probe"], r["method"], str(r["bytes"]), _num(r["decode_us"], ".1f"),
            _num(r["encode_us"], ".1f"),
            _num(_ratio(base["decode_us"], r["decode_us"]), ".2f") if base else "-",
            _num(_ratio(base["encode_us"], r["encode_us"]), ".2f") if base else "-",
        ])
    return header, rows


# -- markdown ---------------------------------------------------------------------------------


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _detail_rows(cell: dict[str, Any], results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for m in results["methods"]:
        r = cell["results"][m["name"]]
        if "effective_pct" not in r:
            rows.append([m["name"], _NA.get(r["status"], r["status"])] + [""] * 10)
            continue
        roles = r["roles_pct"]
        verified = {True: "bit-exact", False: "FAILED: " + ", ".join(r.get("failures", []))}
        rows.append([
            m["name"] + (" (computed)" if r["status"] == "computed" else ""),
            _num(r["effective_pct"], ".2f"), _num(r["theoretical_pct"], ".2f"),
            *(_num(roles.get(role), ".3f") for role in ("header", "index", "codebook")),
            _num(r["bound_distance_pp"], "+.2f"),
            _num(r.get("encode_mbps"), ".0f"), _num(r.get("decode_mbps"), ".0f"),
            _num(1e3 * r["encode_first_s"], ".1f") if "encode_first_s" in r else "-",
            _num(1e3 * r["decode_first_s"], ".1f") if "decode_first_s" in r else "-",
            verified.get(r.get("verified"), "not decodable (computed)"),
        ])
    return rows


_DETAIL_HEADER = ["method", "effective %", "theoretical %", "header %", "index %", "codebook %",
                  "vs bound (pp)", "enc MB/s", "dec MB/s", "1st enc ms", "1st dec ms",
                  "round trip"]


def markdown(results: dict[str, Any], files: Sequence[str] = ()) -> str:
    """results.md: summary tables, per-cell details, corpus, methods, definitions."""
    out = ["# sparsecodecs bench", ""]
    machine = results["machine"]
    out += [
        f"- command: `{results['command']}`",
        f"- date: {results['created']}, duration {results['duration_s']:.1f} s",
        f"- machine: {machine['cpu']}, {machine['cores']} cores "
        f"({machine['usable_cores']} usable), {machine['platform']}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items() if v),
        f"- frames and peer outputs verified bit-exact: {results['verified_outputs']}; "
        f"failures: {len(results['failures'])}",
        "",
    ]
    out += headline_markdown(results, files)
    if results["failures"]:
        out += ["## Failures", ""]
        out += [f"- **{f['cell']} / {f['method']}**: {f['reason']}" for f in results["failures"]]
        out.append("")
    for kind, title in (("codec", "sparsecodecs codecs"), ("peer", "peers")):
        header, rows = summary_rows(results, kind)
        if len(header) == 3:
            continue
        out += [f"## Effective size, % of dense: {title}", "",
                "Lower is better. *bound*: the order-0 entropy bound of the cell. "
                "`*`: computed from the layout, no bytes produced. n/a: the method refuses "
                "this input (reasons in the cell details).", ""]
        out += _md_table(header, rows)
        out.append("")
    out += ["## Throughput and first call", "",
            "MB/s of dense data, median over cells of the per-cell throughput. First call: "
            "the method's very first call in the process (nothing is compiled at run time: it "
            "shows first-touch costs), "
            "against the warm median on the same tensor.", ""]
    out += _md_table(*_throughput_rows(results))
    out += _comparison_md(results)
    out += ["", "## Cells", ""]
    for cell in results["cells"]:
        tensors = ", ".join(_tensor_label(t) for t in cell["tensors"])
        layout = sum(t["bound_layout_bytes"] for t in cell["tensors"])
        values = sum(t["bound_values_bytes"] for t in cell["tensors"])
        dense = cell["dense_bytes"]
        out += [f"### {_cell_label(cell)}", "",
                f"{len(cell['tensors'])} tensor(s), {dense:,} dense bytes, density "
                f"{100 * cell['density']:.2f}%: {tensors}", "",
                f"Order-0 bound {cell['bound_pct']:.2f}% of dense (layout "
                f"{100 * layout / dense:.2f}%, values {100 * values / dense:.2f}%).", ""]
        transform = _transform_summary(cell)
        if transform:
            out += [transform, ""]
        out += _md_table(_DETAIL_HEADER, _detail_rows(cell, results))
        notes = [f"- {name}: {r['reason']}" for name, r in cell["results"].items()
                 if r["status"] in ("n/a", "FAILED") and r.get("reason")]
        out += ["", *notes, ""] if notes else [""]
    out += ["## Corpus", ""]
    for s in results["corpus"]:
        names = ", ".join(f"{_tensor_label(t)} {t['dtype']}" for t in s["tensors"])
        out.append(f"- **{s['set']}** ({s['source']}): {names}")
        if s["skipped"]:
            out.append(f"  - not benched: {len(s['skipped'])} tensor(s) (rank < 2 or not "
                       "floating point)")
    if results["options"]["scope"] == "default":
        out += ["", "The default run uses a subset (see `sparsecodecs.bench.corpus."
                "DEFAULT_SUBSET`); `--full` runs every tensor."]
    out += ["", "## Methods", ""]
    for m in results["methods"]:
        extra = f" **skipped**: {m['skipped']}" if m.get("skipped") else ""
        config = f" `{json.dumps(m['config'])}`" if "config" in m else ""
        out.append(f"- `{m['name']}` ({m['kind']}): {m['description']}{config}{extra}")
    out += ["", "## How it is measured", "", _rst_to_md(harness.__doc__), "",
            "## The entropy bound", "", _rst_to_md(entropy.__doc__), ""]
    if files:
        out += ["Files: " + ", ".join(files), ""]
    return "\n".join(out)


def _comparison_md(results: dict[str, Any]) -> list[str]:
    """The hybrid-vs-ZipNN and per-frame fixed-cost sections of results.md."""
    out: list[str] = []
    header, rows, tally = versus_rows(results)
    if rows:
        out += ["", "## hybrid against ZipNN, per cell (same run)", "",
                "Sizes in % of dense; *size / zipnn*: hybrid's bytes over ZipNN's (<= 1: not "
                "larger); *vs bound*: hybrid minus the order-0 bound, in percentage points; "
                "*dec / enc x zipnn*: hybrid's throughput over ZipNN's on the same cell, same "
                "run (issue 13's targets: decode >= 1.0, encode >= 0.75). ZipNN takes bfloat16, "
                "float16 and float32 only.", ""]
        out += [*_md_table(header, rows), "", tally]
    header, rows = fixed_cost_rows(results)
    if rows:
        out += ["", "## Per-frame fixed cost", "",
                "Time per call on the smallest frames a checkpoint holds (a norm weight, a "
                "bias), where header parsing, tables and call overhead dominate. *dec x zipnn*: "
                "ZipNN's decode time over the method's on the same tensor (above 1: faster).",
                ""]
        out += _md_table(header, rows)
    return out + _products_md(results.get("products"))


def _products_md(products: dict[str, Any] | None) -> list[str]:
    """The products section: ``sc.matmul`` against torch's dense ``F.linear`` over a stack."""
    if not products:
        return []
    out = ["", "## Products on compressed weights (same run)", "",
           "`sc.matmul` at batch 1 on one thread against torch's dense `F.linear` on the same "
           "2:4-pruned bfloat16 weights (the faster of bf16 and a float32 copy), over a stack "
           "of distinct layers about four times the last-level cache, as a forward pass reads "
           "them (`codec@50%`: on weights pruned to 50% unstructured, `@dense`: unpruned); "
           "then `nm` at larger batches on a float32 x, and on a bfloat16 x as torch's "
           "bfloat16 run gets it (the pair products); `sparsecodecs.bench.products`, and "
           "`python bench/compute_bench.py --ratios` for more shapes, batches and threads. "
           "*ratio*: our time over torch's (below 1: faster than dense).", ""]
    if products.get("status") != "ok":
        return [*out, f"Skipped: {products.get('reason', '')}"]
    header = ["shape", "codec", "batch", "x", "layers (distinct)", "stack ours / bf16",
              "ms/layer ours", "torch bf16", "torch f32", "ratio (wall)", "ratio (CPU)",
              "load avg"]
    rows = [[r["shape"], r["codec"], str(r["batch"]), r.get("x", "float32"),
             f"{r['layers']} ({r['distinct']})",
             f"{r['stack_bytes_ours'] / 2**20:.0f} / {r['stack_bytes_bf16'] / 2**20:.0f} MiB",
             f"{r['ms_ours']:.3f}", f"{r['ms_torch_bf16']:.3f}", f"{r['ms_torch_f32']:.3f}",
             f"**{r['ratio']:.2f}x**", f"{r['cpu_ratio']:.2f}x", r["loadavg"]]
            for r in products["rows"]]
    return out + _md_table(header, rows)


def _tensor_label(tensor: dict[str, Any]) -> str:
    shape = "x".join(map(str, tensor["shape"]))
    return shape if tensor["name"] == shape else f"{tensor['name']} ({shape})"


def _rst_to_md(doc: str | None) -> str:
    """A module docstring minus its title line, with RST roles and literals as markdown."""
    body = (doc or "").split("\n\n", 1)[-1].split("\n>>>", 1)[0].strip()
    body = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", body)
    return body.replace("``", "`")


def _transform_summary(cell: dict[str, Any]) -> str:
    parts = []
    for key, label in (("prune", "pruning"), ("cluster", "clustering")):
        reports = [t["transform"][key] for t in cell["tensors"] if key in t["transform"]]
        if reports:
            worst = max(r["rel_rms_error"] for r in reports)
            max_abs = max(r["max_abs_error"] for r in reports)
            parts.append(f"{label}: relative RMS error up to {worst:.4f}, max abs error "
                         f"{max_abs:.3g}")
    return "Transform: " + "; ".join(parts) + "." if parts else ""


# -- chart ------------------------------------------------------------------------------------


def chart_png(results: dict[str, Any]) -> bytes:
    """One panel per cell: effective size per method, with the 50% and entropy-bound lines.

    Rows are (tensor set, variant), columns dtypes; a set's quantized cells (whose dtype is
    their own) fill rows of their own, left to right. Bars beyond the axis are clipped and
    labelled with their value.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    cells = results["cells"]
    dtypes = list(dict.fromkeys(c["dtype"] for c in cells if not c.get("quantized")))
    ncols = max(len(dtypes), 1)
    seen: dict[str, int] = {}
    place: list[tuple[tuple[str, str], int]] = []  # (row key, column) of every cell
    for c in cells:
        if c.get("quantized"):
            i = seen[c["set"]] = seen.get(c["set"], -1) + 1
            place.append(((c["set"], f"quantized {i // ncols}"), i % ncols))
        else:
            place.append(((c["set"], c["variant"]), dtypes.index(c["dtype"])))
    row_keys = list(dict.fromkeys(key for key, _ in place))
    names = [m["name"] for m in results["methods"]]
    colors = {m["name"]: _COLORS[m["kind"]] for m in results["methods"]}
    nrows = len(row_keys)
    panel_h, head_h, foot_h = 0.75 + 0.2 * len(names), 1.0, 0.5
    fig_h = panel_h * nrows + head_h + foot_h
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.2 + 4.6 * ncols, fig_h), squeeze=False,
                             sharey=True)
    ys = list(range(len(names)))[::-1]
    for cell, (key, col) in zip(cells, place, strict=True):
        ax = axes[row_keys.index(key)][col]
        for y, name in zip(ys, names, strict=True):
            r = cell["results"][name]
            if "effective_pct" not in r:
                ax.text(2, y, _NA.get(r["status"], r["status"]), va="center", fontsize=7,
                        color="firebrick" if r["status"] == "FAILED" else "dimgray")
                continue
            value = r["effective_pct"]
            failed = r["status"] == "FAILED"
            ax.barh(y, min(value, _CHART_MAX), color="firebrick" if failed else colors[name],
                    hatch="//" if r["status"] == "computed" else None, edgecolor="white")
            label = f"{value:.1f}" + (" FAILED" if failed else "")
            if value > _CHART_MAX:
                ax.text(_CHART_MAX - 1, y, label + " >", va="center", ha="right", fontsize=7,
                        color="white")
            else:
                ax.text(value + 1, y, label, va="center", fontsize=7)
        ax.axvline(50, color="black", linestyle="--", linewidth=1)
        ax.axvline(cell["bound_pct"], color="tab:red", linewidth=1.5)
        ax.set_xlim(0, _CHART_MAX)
        ax.set_xticks(range(0, int(_CHART_MAX) + 1, 25))
        ax.set_title(f"{_cell_label(cell)}   bound {cell['bound_pct']:.1f}%", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(ys, names)
    for row in axes:
        for ax in row:
            if not ax.has_data():
                ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("effective size, % of dense (lower is better)", fontsize=8)
    handles = [Patch(color=_COLORS["codec"], label="sparsecodecs codec"),
               Patch(color=_COLORS["peer"], label="peer"),
               Patch(facecolor=_COLORS["peer"], hatch="//", edgecolor="white",
                     label="computed from the layout"),
               Line2D([], [], color="black", linestyle="--", label="50%: 2:4 theoretical"),
               Line2D([], [], color="tab:red", label="order-0 entropy bound")]
    fig.suptitle("sparsecodecs bench: effective size, % of dense, per cell (tensor set, dtype, "
                 "variant)", y=1 - 0.15 / fig_h, fontsize=11)
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 1 - 0.45 / fig_h),
               ncol=len(handles), fontsize=8, frameon=False)
    fig.subplots_adjust(left=1.0 / fig.get_figwidth(), right=0.98, top=1 - head_h / fig_h,
                        bottom=foot_h / fig_h, hspace=0.75 / panel_h, wspace=0.06)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


_COLORS = {"codec": "tab:blue", "peer": "tab:gray"}
_CHART_MAX = 125.0


# -- files and console ------------------------------------------------------------------------


def write_all(results: dict[str, Any], out: Path, *, force: bool) -> list[Path]:
    """Write results.json, results.md, results.png and, when there are real-model cells,
    headline.png (each atomically) into ``out``."""
    harness.check_output(out, force)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path, png_path = (out / name for name in harness.OUTPUT_FILES[:3])
    files: list[tuple[Path, bytes]] = []
    try:
        headline = figure.headline_png(results)
        if headline is None:
            results["headline"] = "not drawn: no real-model cells (--model, or minilm installed)"
        else:
            files.append((out / figure.HEADLINE_FILE, headline))
        files.append((png_path, chart_png(results)))
    except ImportError as exc:
        results["chart"] = f"not drawn: {exc} (pip install matplotlib)"
    written = [p.name for p, _ in files] + [md_path.name, json_path.name]
    files.append((md_path, markdown(results, written).encode()))
    files.append((json_path, json.dumps(results, indent=1, allow_nan=False).encode()))
    for path, data in files:
        atomic_write(path, data, force=True)
    return [p for p, _ in files]


def print_summary(results: dict[str, Any], written: Sequence[Path]) -> None:
    """The summary tables on stdout (rich when installed), then where the files went."""
    tables: list[tuple[str, list[str], list[list[str]], list[int]]] = []
    for kind, title in (("codec", "Effective size, % of dense: sparsecodecs codecs"),
                        ("peer", "Effective size, % of dense: peers (* computed)")):
        header, rows = summary_rows(results, kind)
        if len(header) > 3:
            names = _method_names(results, kind)
            winners = [_best(c, names) for c in results["cells"]]
            tables.append((title, header, rows,
                           [header.index(w) if w else -1 for w in winners]))
    tables.append(("Throughput, MB/s of dense data (median over cells), and the first call",
                   *_throughput_rows(results, where=False), []))
    header, rows, tally = versus_rows(results)
    if rows:
        tables.append((f"hybrid against ZipNN, same run ({tally})", header, rows, []))
    header, rows = fixed_cost_rows(results)
    if rows:
        tables.append(("Per-frame fixed cost, us per call (dec x zipnn: ZipNN's time over the "
                       "method's)", header, rows, []))
    footer = (f"{results['verified_outputs']} frames/outputs verified bit-exact, "
              f"{len(results['failures'])} failure(s); {results['duration_s']:.1f} s. "
              f"Wrote {', '.join(str(p) for p in written)}")
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        for title, header, rows, _ in tables:
            print(f"\n{title}")
            print("\n".join(_md_table(header, rows)))
        for f in results["failures"]:
            print(f"FAILED {f['cell']} / {f['method']}: {f['reason']}")
        print(footer)
        return
    console = Console(width=None if sys.stdout.isatty() else 200)
    for title, header, rows, best in tables:
        table = Table(title=title, title_justify="left", header_style="bold")
        for i, name in enumerate(header):
            table.add_column(name, justify="left" if i == 0 else "right",
                             no_wrap=i == 0)
        for row, b in zip(rows, best or [-1] * len(rows), strict=True):
            table.add_row(*(f"[bold green]{v}[/]" if i == b else
                            f"[red]{v}[/]" if "FAILED" in v else v
                            for i, v in enumerate(row)))
        console.print(table)
    for f in results["failures"]:
        console.print(f"[red]FAILED[/] {f['cell']} / {f['method']}: {f['reason']}")
    console.print(footer)
