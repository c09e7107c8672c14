"""The Zarr v3 serializers at their historical import path: the code lives in
:mod:`sparsecodecs.io.zarr3`; the same classes are re-exported here (entry points written by
older installs name this module)."""

from __future__ import annotations

from .io.zarr3 import *  # noqa: F403
from .io.zarr3 import __all__  # noqa: F401
