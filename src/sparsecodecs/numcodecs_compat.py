"""The numcodecs adapter at its historical import path: the code lives in
:mod:`sparsecodecs.io.numcodecs`; the same classes are re-exported here (entry points written
by older installs name this module)."""

from __future__ import annotations

from .io.numcodecs import *  # noqa: F403
from .io.numcodecs import __all__  # noqa: F401
