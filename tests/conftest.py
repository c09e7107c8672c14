"""Test-suite set-up: the Hypothesis profile named by ``HYPOTHESIS_PROFILE`` (default, ci or
long; see ``sparsecodecs.testing.profiles``), the run's seed under ``ci`` (new examples every run,
the seed shown in the header and after failures), and pytester for testing the pytest plugin."""

from __future__ import annotations

import pytest

from sparsecodecs.testing import load_profile, run_seed

pytest_plugins = ["pytester"]

PROFILE = load_profile()
_SEED_OPTION = "hypothesis_seed"  # the dest of Hypothesis' --hypothesis-seed


@pytest.hookimpl(tryfirst=True)  # before Hypothesis' plugin reads the option
def pytest_configure(config: pytest.Config) -> None:
    if PROFILE == "ci" and getattr(config.option, _SEED_OPTION, None) is None:
        setattr(config.option, _SEED_OPTION, str(run_seed()))


def _seed_line(config: pytest.Config) -> str | None:
    seed = getattr(config.option, _SEED_OPTION, None)
    if seed is None:
        return None
    return (f"hypothesis seed {seed} (profile {PROFILE!r}); replay this run with "
            f"HYPOTHESIS_PROFILE={PROFILE} pytest --hypothesis-seed={seed}")


def pytest_report_header(config: pytest.Config) -> str | None:
    return _seed_line(config)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    line = _seed_line(config)
    if line is not None:  # also with -q, which hides the header
        terminalreporter.write_line(line)
