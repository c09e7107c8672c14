"""Encoding on a Dask cluster, at its historical import path: the code lives in
:mod:`sparsecodecs.io.dask`. (Settings such as ``WORKER_TIMEOUT`` are read there: change them
on :mod:`sparsecodecs.io.dask`.)"""

from __future__ import annotations

from .io.dask import *  # noqa: F403
from .io.dask import __all__  # noqa: F401
