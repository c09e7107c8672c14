"""The pytest-benchmark micro-suite: off by default, a smoke test in the normal test run.

pytest-benchmark's ``--benchmark-disable`` runs each benchmarked function once, untimed, and on
small inputs (see ``shape``), so ``python -m pytest`` stays fast. ``--benchmark-enable`` turns
the suite into real measurements on the full-size inputs; ``bench/README.md`` has the commands.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

if importlib.util.find_spec("pytest_benchmark") is None:  # the 'bench' extra is not installed
    collect_ignore_glob = ["test_*.py"]


def pytest_configure(config: pytest.Config) -> None:
    # Runs before pytest-benchmark's own (trylast) pytest_configure reads the option.
    if hasattr(config.option, "benchmark_disable") and not config.option.benchmark_enable:
        config.option.benchmark_disable = True


def benchmarks_enabled(config: Any) -> bool:
    return bool(getattr(config.option, "benchmark_enable", False))


@pytest.fixture(scope="session")
def shape(request: pytest.FixtureRequest) -> tuple[int, int]:
    """4096 x 4096 when measuring, 256 x 256 for the smoke run."""
    return (4096, 4096) if benchmarks_enabled(request.config) else (256, 256)
