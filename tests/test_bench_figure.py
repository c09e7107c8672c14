"""The headline figure and summary table (sparsecodecs.bench.figure) on hand-made results."""

from __future__ import annotations

import struct
from typing import Any

import pytest

pytest.importorskip("matplotlib")

from sparsecodecs.bench import figure, report


def cell(set_name: str, variant: str, sizes: dict[str, float], speeds: dict[str, float],
         bound: float = 34.0, dtype: str = "bf16") -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, pct in sizes.items():
        status = "computed" if name == "nvidia-2:4" else "ok"
        results[name] = {"status": status, "effective_pct": pct}
        if name in speeds:
            results[name]["decode_mbps"] = speeds[name]
    results.setdefault("nvidia-2:4", {"status": "n/a", "reason": "not 2:4"})
    return {"set": set_name, "dtype": dtype, "variant": variant, "bound_pct": bound,
            "density": 0.5, "results": results}


def results_doc(cells: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "corpus": [{"set": "gaussian", "source": "synthetic, numpy default_rng((0, rows, cols))"},
                   {"set": "minilm", "source": "/x/model.safetensors"}],
        "cells": cells, "machine": {"cpu": "test CPU"}, "created": "2026-12-03T08:00:00",
        **extra,
    }


SIZES = {"hybrid": 34.7, "nvidia-2:4": 56.25, "zipnn": 43.4, "zstd-19": 46.4}
SPEEDS = {"hybrid": 900.0, "zipnn": 300.0}


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_only_real_model_cells_are_in_the_headline() -> None:
    doc = results_doc([cell("gaussian", "2:4", SIZES, SPEEDS),
                       cell("minilm", "2:4", SIZES, SPEEDS)])
    assert [c["set"] for c in figure.headline_cells(doc)] == ["minilm"]
    assert figure.headline_png(results_doc([cell("gaussian", "2:4", SIZES, SPEEDS)])) is None


def test_summary_rows_give_sizes_and_ratios() -> None:
    header, rows = figure.summary_rows(results_doc([cell("minilm", "2:4", SIZES, SPEEDS)]))
    row = dict(zip(header, rows[0], strict=True))
    assert row["cell"] == "minilm bf16 2:4" and row["bound %"] == "34.0"
    assert row["hybrid %"] == "34.7" and row["nvidia-2:4 %"] == "56.2"
    assert row["hybrid / zipnn size"] == f"{34.7 / 43.4:.2f}x"
    assert row["hybrid / zipnn dec speed"] == "3.00x"


def test_missing_methods_show_a_dash() -> None:
    header, rows = figure.summary_rows(results_doc([cell("minilm", "dense", {"hybrid": 66.0},
                                                         {"hybrid": 1000.0})]))
    row = dict(zip(header, rows[0], strict=True))
    assert row["nvidia-2:4 %"] == "-" and row["hybrid / zipnn dec speed"] == "-"


@pytest.mark.parametrize("ncells", [1, 40])
def test_figure_stays_within_the_height_limit(ncells: int) -> None:
    cells = [cell("minilm", f"v{i}", SIZES, SPEEDS) for i in range(ncells)]
    width, height = png_size(figure.headline_png(results_doc(cells)) or b"")
    assert height <= figure.MAX_HEIGHT_PX and width <= 1600
    assert len(figure.headline_cells(results_doc(cells))) == min(ncells, figure.MAX_CELLS)


def test_compute_rows_are_read_and_drawn_only_when_present() -> None:
    doc = results_doc([cell("minilm", "2:4", SIZES, SPEEDS)])
    assert figure.compute_rows(doc) == []
    doc["compute"] = [{"label": "nm b1", "time_vs_dense": 0.6},
                      {"label": "hybrid b1", "seconds": 3.0, "dense_seconds": 2.0},
                      {"label": "broken", "seconds": 1.0}]
    assert figure.compute_rows(doc) == [("nm b1", 0.6), ("hybrid b1", 1.5)]
    assert png_size(figure.headline_png(doc) or b"")[1] <= figure.MAX_HEIGHT_PX


def test_results_md_opens_with_the_headline_table() -> None:
    doc = results_doc([cell("minilm", "2:4", SIZES, SPEEDS)])
    lines = report.headline_markdown(doc, [figure.HEADLINE_FILE])
    assert lines[0] == "## Headline: the real-model cells"
    assert f"![headline figure]({figure.HEADLINE_FILE})" in lines
    assert any(line.startswith("| minilm bf16 2:4 | 34.0 | 34.7 |") for line in lines)
    assert f"![headline figure]({figure.HEADLINE_FILE})" not in report.headline_markdown(doc)
    assert report.headline_markdown(results_doc([])) == []
