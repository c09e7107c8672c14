"""Compressed checkpoints, at their historical import path: the code lives in
:mod:`sparsecodecs.io.checkpoint` (``container``, ``reading``, ``files``). This module re-exports
its public names, and any other name of those modules is looked up there on access, so code
written against the single ``checkpoint.py`` keeps working. (To replace a function for a test,
patch it in the module that calls it, e.g. ``sparsecodecs.io.checkpoint.reading.decode``.)"""

from __future__ import annotations

from typing import Any

from .io.checkpoint import *  # noqa: F403  (the public API, as listed in __all__)
from .io.checkpoint import __all__  # noqa: F401


def __getattr__(name: str) -> Any:
    from .io.checkpoint import container, files, reading

    for module in (container, reading, files):
        if name in vars(module):
            return vars(module)[name]
    raise AttributeError(f"module 'sparsecodecs.checkpoint' has no attribute {name!r}")
