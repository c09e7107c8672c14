"""Hypothesis profiles for sparsecodecs test suites, chosen by ``HYPOTHESIS_PROFILE``.

``default``
    Hypothesis' defaults without a deadline (a first call may be slow on a loaded machine).
``ci``
    25 examples a test, new ones on every run: the run draws one seed (:func:`run_seed`:
    ``$SPARSECODECS_HYPOTHESIS_SEED`` if set, else random), which the test suite's ``conftest.py``
    passes to Hypothesis as ``--hypothesis-seed`` and prints in the pytest header and after
    failures, so a failing run is replayed with ``pytest --hypothesis-seed=N``. No example
    database; failing examples are also printed as ``@reproduce_failure`` blobs.
``long``
    1000 examples a test, for a nightly or a pre-release run. Tests that pin an example count
    write it as ``settings(max_examples=examples(60))``: :func:`examples` keeps the pin under
    ``default`` and ``ci`` and raises it to 1000 under ``long``, so no pin caps the long profile.

A test suite loads them once, in its ``conftest.py``::

    from sparsecodecs.testing import load_profile

    load_profile()  # HYPOTHESIS_PROFILE=ci pytest ... selects "ci"
"""

from __future__ import annotations

import os
import random
from typing import Any

from hypothesis import HealthCheck, settings

__all__ = [
    "PROFILES",
    "SEED_VARIABLE",
    "examples",
    "load_profile",
    "register_profiles",
    "run_seed",
]

#: The settings of each profile, as keyword arguments of :class:`hypothesis.settings`.
PROFILES: dict[str, dict[str, Any]] = {
    "default": {"deadline": None},
    "ci": {
        "derandomize": False,
        "database": None,
        "max_examples": 25,
        "deadline": None,
        "print_blob": True,
        "suppress_health_check": [HealthCheck.too_slow],
    },
    "long": {"max_examples": 1000, "deadline": None},
}


def register_profiles() -> None:
    """Register :data:`PROFILES` with Hypothesis (without loading any)."""
    for name, kwargs in PROFILES.items():
        settings.register_profile(name, **kwargs)


def load_profile(name: str | None = None) -> str:
    """Register the profiles and load ``name``, by default ``$HYPOTHESIS_PROFILE`` or "default".

    Returns the name of the loaded profile. An unknown name raises
    :class:`hypothesis.errors.InvalidArgument` listing the registered ones.
    """
    register_profiles()
    chosen = name or os.environ.get("HYPOTHESIS_PROFILE") or "default"
    settings.get_profile(chosen)  # raises InvalidArgument before any state changes
    settings.load_profile(chosen)
    return chosen


#: The environment variable that fixes the seed of a ``ci`` run (e.g. to replay a CI failure).
SEED_VARIABLE = "SPARSECODECS_HYPOTHESIS_SEED"


def run_seed() -> int:
    """The Hypothesis seed of this run: ``$SPARSECODECS_HYPOTHESIS_SEED``, or a random one.

    A random seed is drawn once per process and kept, so every caller in a run sees the same.
    """
    value = os.environ.get(SEED_VARIABLE)
    if value:
        return int(value)
    if not _seed:
        _seed.append(random.SystemRandom().randrange(1 << 32))
    return _seed[0]


_seed: list[int] = []


#: Hypothesis' own example count: profiles asking for more than this are "long" runs.
_BASELINE = 100


def examples(pinned: int) -> int:
    """A test's pinned example count, raised to the loaded profile's ``max_examples`` when that
    profile asks for more than Hypothesis' default of 100 (the ``long`` profile).

    Write ``@settings(max_examples=examples(60))`` rather than ``max_examples=60``: the test
    runs 60 examples under the ``default`` and ``ci`` profiles and 1000 under ``long``, so a pin
    never caps a long run. Call it after the profile is loaded (a ``conftest.py`` loads it before
    test modules are imported).

    >>> from hypothesis import settings
    >>> examples(60) == (60 if settings().max_examples <= 100 else settings().max_examples)
    True
    """
    current = settings().max_examples
    return pinned if current <= _BASELINE else max(pinned, current)
