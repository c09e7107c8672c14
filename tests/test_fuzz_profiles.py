"""What CI samples: the ``ci`` profile draws new examples on every run from a seed the run
prints, a printed seed replays the run, and the ``long`` profile is not capped by pinned
example counts (``sparsecodecs.testing.examples``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import settings

from sparsecodecs.testing import PROFILES, examples, load_profile, run_seed
from sparsecodecs.testing import profiles as profiles_module

CONFTEST = Path(__file__).with_name("conftest.py")

DRAWS = '''
import os
from hypothesis import given, strategies as st

@given(st.integers(0, 2**62))
def test_draws(x):
    with open(os.environ["DRAWS_FILE"], "a") as fh:
        fh.write(f"{x}\\n")
    modulus = int(os.environ["FAIL_ON"])
    assert modulus < 0 or x % modulus != 0
'''


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str,
         fail_on: int = -1) -> tuple[pytest.RunResult, list[str]]:
    draws = pytester.path / "draws.txt"
    draws.unlink(missing_ok=True)
    monkeypatch.setenv("DRAWS_FILE", str(draws))
    monkeypatch.setenv("FAIL_ON", str(fail_on))
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "ci")
    monkeypatch.delenv(profiles_module.SEED_VARIABLE, raising=False)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", *args)
    return result, draws.read_text().split() if draws.exists() else []


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(test_draws=DRAWS)
    return pytester


def _seed(result: pytest.RunResult) -> int:
    match = re.search(r"hypothesis seed (\d+) \(profile 'ci'\)", result.stdout.str())
    assert match, result.stdout.str()
    return int(match.group(1))


def test_ci_runs_draw_new_examples_and_a_printed_seed_replays_a_failure(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, draws1 = _run(suite, monkeypatch)
    first.assert_outcomes(passed=1)
    assert len(draws1) == PROFILES["ci"]["max_examples"]
    failing, draws2 = _run(suite, monkeypatch, fail_on=3)
    failing.assert_outcomes(failed=1)
    seed = _seed(failing)
    assert seed != _seed(first)
    assert draws2[: len(draws1)] != draws1  # derandomised, both runs began with the same draws
    assert f"--hypothesis-seed={seed}" in failing.stdout.str()
    replay, draws3 = _run(suite, monkeypatch, f"--hypothesis-seed={seed}", fail_on=3)
    replay.assert_outcomes(failed=1)
    assert _seed(replay) == seed and draws3 == draws2


def test_the_run_seed_comes_from_the_environment_when_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(profiles_module.SEED_VARIABLE, "1234")
    assert run_seed() == 1234
    monkeypatch.delenv(profiles_module.SEED_VARIABLE)
    assert run_seed() == run_seed()  # one seed per process


def test_pins_do_not_cap_the_long_profile() -> None:
    current = load_profile()
    try:
        load_profile("long")
        assert examples(60) == 1000 == settings().max_examples
        assert examples(3000) == 3000
        load_profile("ci")
        assert examples(60) == 60 and examples(10) == 10
        load_profile("default")
        assert examples(25) == 25  # a pin below Hypothesis' default stays a pin
        assert not settings().derandomize and settings().print_blob
    finally:
        load_profile(current)


def test_no_test_pins_a_bare_example_count() -> None:
    """Pinned counts go through ``examples()``, so that the long profile can go deeper."""
    pinned = re.compile(r"settings\(\s*max_examples\s*=\s*\d")
    offenders = [
        f"{path.name}:{n}"
        for path in sorted(Path(__file__).parent.rglob("test_*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pinned.search(line)
    ]
    assert not offenders, f"pin with examples(N) instead: {offenders}"
