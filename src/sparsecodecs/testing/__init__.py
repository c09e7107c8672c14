"""The public testing kit: the conformance suite every codec runs, Hypothesis strategies for
weight-like arrays, frame rewriting for fuzz tests, Hypothesis profiles and a pytest plugin.

A third-party codec is tested with one call::

    from sparsecodecs.testing import check_codec

    def test_conformance():
        check_codec(MyCodec())

or from the command line with ``pytest --sparsecodecs-codec=mycodec``. See ``docs/plugins.md``
and ``docs/testing.md``.

The public names are those of the submodules ``checkpoints``, ``conformance``, ``frames``,
``profiles`` and ``strategies``. Those need Hypothesis (the ``test`` extra) and are imported on
first use, so that the pytest plugin, which pytest loads in every run, costs nothing when it is
not used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .checkpoints import *  # noqa: F403
    from .conformance import *  # noqa: F403
    from .frames import *  # noqa: F403
    from .profiles import *  # noqa: F403
    from .strategies import *  # noqa: F403

_SUBMODULES = ("checkpoints", "conformance", "frames", "profiles", "strategies")


def _public_names() -> dict[str, Any]:
    """Every name in the submodules' ``__all__``, importing them."""
    names: dict[str, Any] = {}
    for submodule in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{submodule}")
        names.update((name, getattr(module, name)) for name in module.__all__)
    return names


def __getattr__(name: str) -> Any:
    public = _public_names()
    if name == "__all__":
        return sorted(public)
    if name not in public:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals().update(public)
    return public[name]


def __dir__() -> list[str]:
    return sorted([*globals(), *_public_names()])
