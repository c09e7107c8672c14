"""Test-suite set-up: the Hypothesis profile named by ``HYPOTHESIS_PROFILE`` (default, ci or
long; see ``sparsecodecs.testing.profiles``), and pytester for testing the pytest plugin."""

from __future__ import annotations

from sparsecodecs.testing import load_profile

pytest_plugins = ["pytester"]

load_profile()
