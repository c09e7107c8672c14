"""Hypothesis profiles for sparsecodecs test suites, chosen by ``HYPOTHESIS_PROFILE``.

``default``
    Hypothesis' defaults without a deadline (encoders compile numba kernels on first use).
``ci``
    Derandomised (the same examples on every run), no example database, modest sizes.
``long``
    Many examples, for a nightly or a pre-release run.

A test suite loads them once, in its ``conftest.py``::

    from sparsecodecs.testing import load_profile

    load_profile()  # HYPOTHESIS_PROFILE=ci pytest ... selects "ci"
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings

__all__ = ["PROFILES", "load_profile", "register_profiles"]

#: The settings of each profile, as keyword arguments of :class:`hypothesis.settings`.
PROFILES: dict[str, dict[str, Any]] = {
    "default": {"deadline": None},
    "ci": {
        "derandomize": True,
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
