"""A smoke test of bench/scaling.py: a tiny checkpoint, serial only, outputs identical."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("safetensors")

import scaling


def test_scaling_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = scaling.main(["--rows", "64", "--cols", "64", "--block-bytes", "2048", "--no-dask",
                         "--no-processes", "--dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "| serial | 1 |" in out and "| yes |" in out and "load average" in out
