"""Smoke test of bench/compute_bench.py: the tiny run completes and its rows add up."""

from __future__ import annotations

import compute_bench


def test_tiny_run(tmp_path, capsys):
    out = tmp_path / "rows.json"
    rows = compute_bench.main(["--tiny", "--batches", "1", "3", "--repeat", "1", "--json",
                               str(out)])
    assert out.exists() and len(rows) == 2 * (7 + 3)
    table = capsys.readouterr().out
    assert table.count("\n") == len(rows) + 2
    for r in rows:
        assert r.ms_matmul > 0 and r.peak_decode > 0
        if r.weight.startswith("2:4") and r.codec in ("nm", "hybrid-nm"):
            assert r.path.endswith(":nm") and r.mac_fraction == 0.5
