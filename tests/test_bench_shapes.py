"""The bench's layer-shaped corpus (conv, vectors, rnn, odd rows), the per-frame fixed cost,
and the hybrid-vs-ZipNN tables (issue 13, items 4 and 6)."""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np
import pytest

import sparsecodecs as sc
from sparsecodecs.bench import corpus, harness, peers, report

pytest.importorskip("scipy")


def test_layer_sets_have_the_shapes_of_real_checkpoints():
    full = {s.name: dict(s.tensors) for s in corpus.builtin_sets("full")}
    shapes = {name: {k: a.shape for k, a in full[name].items()} for name in corpus.LAYER_SETS}
    assert set(shapes["conv"].values()) == {(64, 27), (128, 576), (256, 1152)}  # [out, in*k*k]
    # as PyTorch stores them: rows of 1, 3 and 5 entries
    assert set(shapes["conv-4d"].values()) == {(256, 64, 1, 1), (256, 1, 3, 3), (64, 32, 3, 3),
                                               (256, 80, 5)}
    for key, array in full["conv-4d"].items():  # He-normal over the fan-in, every axis but out
        fan_in = int(np.prod(array.shape[1:]))
        assert abs(float(array.std()) * np.sqrt(fan_in / 2) - 1) < 0.1, key
    assert sorted(a.shape for a in full["vectors"].values()) == [(384,)] * 2 + [(1536,)] * 2
    assert set(shapes["rnn"].values()) == {(4 * 256, 256), (3 * 256, 80)}
    assert set(shapes["odd-rows"].values()) == {(1000, 999), (97, 1531)}
    assert set(shapes["rounded"].values()) == {(384, 384), (1536, 384), (256, 384)}
    assert set(shapes["positive"].values()) == {(512,), (2048,), (256, 384)}
    assert all((a > 0).all() for a in full["positive"].values())  # one sign: rotate=0's case
    for key, array in full["rounded"].items():  # float32 held at bfloat16 / float16 precision
        narrow = ml_dtypes.bfloat16 if key.startswith("bf16") else np.float16
        assert np.array_equal(array.astype(narrow).astype(np.float32), array), key
        zeros = 16 if key.startswith("bf16") else 13
        assert not (array.view(np.uint32) & ((1 << zeros) - 1)).any(), key
        assert (array.view(np.uint32) & (1 << zeros)).any(), key
    assert all(a.dtype == np.float32 for s in corpus.LAYER_SETS for a in full[s].values())
    for scope in ("quick", "default"):
        for s in corpus.builtin_sets(scope):
            for key, array in s.tensors:
                assert np.array_equal(array, full[s.name][key]), (scope, s.name, key)
    quick = {s.name: len(s.tensors) for s in corpus.builtin_sets("quick")}
    assert all(quick[name] == 1 for name in corpus.LAYER_SETS)
    norms = full["vectors"]["norm 384"]
    assert 0.9 < float(norms.mean()) < 1.1  # a norm weight is near one, not near zero


def _cells() -> list[tuple[str, str, corpus.Variant]]:
    variants = [corpus.DENSE, corpus.DEFAULT_VARIANTS[1], *corpus.parse_quant("int4")]
    return [(s, d, v) for s in corpus.LAYER_SETS for d in ("bf16", "fp32") for v in variants
            if d == "fp32" or v.quant is None]


@pytest.mark.parametrize(("set_name", "dtype", "variant"), _cells(),
                         ids=lambda x: getattr(x, "name", x))
def test_every_codec_and_peer_runs_or_refuses_each_layer_shape(set_name, dtype, variant):
    (tset,) = [s for s in corpus.builtin_sets("quick") if s.name == set_name]
    cell, tensors = harness.build_cell(tset, dtype, variant)
    # the registered codecs (built-ins), without loading the environment's plugins
    methods = harness.select_codecs(",".join(sc.registry.registry.codecs)) + [
        harness.Method(p.name, "peer", p.description, peer=p)
        for p in peers.select_peers("nvidia,zstd-3,lz4,scipy")
    ]
    harness.resolve_peers(methods)
    statuses = {}
    for m in methods:
        result, _ = harness.run_method(m, tensors, cell["dense_bytes"], cell["bound_pct"], 1)
        statuses[m.name] = result["status"]
        assert result["status"] in {"ok", "n/a", "computed", "skipped"}, (m.name, result)
        if result["status"] == "n/a":
            assert result["reason"]
    assert statuses["hybrid"] == statuses["raw"] == "ok"
    if variant.pattern is None and variant.quant is None:
        # a dense tensor is refused, and reported, not a crash; rows of at most n = 2 entries
        # (a 1x1 convolution's) hold the pattern trivially, padded
        narrow = all(t.array.shape[-1] <= 2 for t in tensors)
        assert statuses["nm"] == ("ok" if narrow else "n/a")


def _results_with(cells: list[dict[str, Any]], fixed: list[dict[str, Any]]) -> dict[str, Any]:
    return {"cells": cells, "fixed_cost": fixed}


def _cell(label: str, hybrid: dict[str, Any], zipnn: dict[str, Any]) -> dict[str, Any]:
    set_name, dtype, variant = label.split()
    return {"set": set_name, "dtype": dtype, "variant": variant, "bound_pct": 60.0,
            "results": {"hybrid": hybrid, "zipnn": zipnn}}


def _ok(pct: float, nbytes: int, dec: float, enc: float) -> dict[str, Any]:
    return {"status": "ok", "effective_pct": pct, "bytes": nbytes, "decode_mbps": dec,
            "encode_mbps": enc, "bound_distance_pp": pct - 60.0}


def test_versus_rows_give_same_run_ratios_and_tally():
    results = _results_with([
        _cell("a bf16 dense", _ok(61.0, 610, 300.0, 150.0), _ok(62.0, 620, 200.0, 300.0)),
        _cell("a int8 dense", _ok(70.0, 700, 100.0, 100.0),
              {"status": "n/a", "reason": "ZipNN's byte API takes ..."}),
        _cell("b fp32 2:4", _ok(50.0, 500, 100.0, 240.0), _ok(49.0, 490, 200.0, 300.0)),
    ], [])
    header, rows, tally = report.versus_rows(results)
    assert header[:4] == ["cell", "hybrid %", "zipnn %", "bound %"]
    first, int8, third = rows
    assert first[4:] == ["0.9839", "+1.00", "1.50", "0.50"]  # 610/620, 300/200, 150/300
    assert int8[2] == "n/a" and int8[4:] == ["-", "+10.00", "-", "-"]
    assert third[6:] == ["0.50", "0.80"]
    assert tally == ("hybrid decode >= 1.0x zipnn: 1 of 2 cells; encode >= 0.75x: 1 of 2; "
                     "size <= zipnn: 1 of 2")


def test_fixed_cost_rows_compare_with_zipnn_on_the_same_probe():
    fixed = [
        {"probe": "384 float32", "method": "hybrid", "status": "ok", "bytes": 900,
         "decode_us": 20.0, "encode_us": 50.0},
        {"probe": "384 float32", "method": "nm", "status": "n/a", "reason": "not 2:4"},
        {"probe": "384 float32", "method": "zipnn", "status": "ok", "bytes": 1400,
         "decode_us": 30.0, "encode_us": 25.0},
        {"probe": "1536 bfloat16", "method": "hybrid", "status": "ok", "bytes": 2000,
         "decode_us": 40.0, "encode_us": 80.0},
    ]
    _, rows = report.fixed_cost_rows(_results_with([], fixed))
    assert rows[0] == ["384 float32", "hybrid", "900", "20.0", "50.0", "1.50", "0.50"]
    assert rows[1][2] == "n/a"
    assert rows[3][5:] == ["-", "-"]  # no ZipNN row for that probe: no ratio


def test_fixed_cost_is_measured_per_call_with_refusals_reported():
    probes = corpus.fixed_cost_probes()
    assert [(a.size, a.dtype) for _, a in probes] == [
        (384, np.dtype(np.float32)), (1536, np.dtype(ml_dtypes.bfloat16))]
    methods = harness.select_codecs("hybrid,nm,raw") + [
        harness.Method(p.name, "peer", p.description, peer=p)
        for p in peers.select_peers("nvidia,zstd-3")
    ]
    harness.resolve_peers(methods)
    rows = harness.measure_fixed_cost(methods, probes, 0.005)
    by = {(r["probe"], r["method"]): r for r in rows}
    assert len(rows) == 2 * len(methods)
    hybrid = by[("384 float32", "hybrid")]
    assert hybrid["status"] == "ok" and hybrid["verified"] and hybrid["decode_calls"] >= 2
    assert hybrid["bytes"] == len(sc.get_codec("hybrid").encode(probes[0][1]))
    assert 0 < hybrid["decode_us"] < 1e6
    assert by[("384 float32", "nm")]["status"] == "n/a"  # dense: nm refuses
    assert "PatternError" in by[("384 float32", "nm")]["reason"]
    assert by[("384 float32", "nvidia-2:4")]["status"] == "computed"
    if by[("384 float32", "zstd-3")]["status"] != "skipped":
        assert by[("384 float32", "zstd-3")]["status"] == "ok"


def test_fixed_cost_reports_a_crash_as_a_failure():
    class Broken:
        def encode(self, array: np.ndarray) -> bytes:
            raise RuntimeError("boom")

    method = harness.Method("broken", "codec", "", codec=Broken())  # type: ignore[arg-type]
    row, _ = harness.measure_fixed_cost([method], corpus.fixed_cost_probes(), 0.001)
    assert row["status"] == "FAILED" and "RuntimeError: boom" in row["reason"]
