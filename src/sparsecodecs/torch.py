"""The PyTorch drop-in at its public import path, ``sparsecodecs.torch``: the code lives in
:mod:`sparsecodecs.compute.torch` (needs torch; an ImportError saying how to install it
otherwise)."""

from __future__ import annotations

from .compute.torch import *  # noqa: F403
from .compute.torch import INPUT_DTYPES, METADATA_KEY, __all__  # noqa: F401
