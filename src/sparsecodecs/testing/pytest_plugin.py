"""pytest plugin: ``--sparsecodecs-codec=NAME`` runs the conformance suite on a codec.

Installed with sparsecodecs (entry point ``pytest11``), so it is loaded by every pytest run in an
environment that has sparsecodecs; without the option it adds nothing. With it, each given codec
(a name or alias, or a JSON config such as ``'{"id": "nm", "n": 1, "m": 4}'``; the option can be
repeated) becomes one test item, ``sparsecodecs-conformance[SPEC]``, that runs
:func:`sparsecodecs.testing.check_codec`::

    pytest --sparsecodecs-codec=mycodec -k sparsecodecs-conformance

``--sparsecodecs-max-examples=N`` sets the Hypothesis examples per check (default: the loaded
profile's ``max_examples``). Everything heavier than pytest is imported only when such an item
runs.
"""

from __future__ import annotations

from typing import Any

import pytest

__all__ = ["CodecConformanceItem"]

_OPTION = "--sparsecodecs-codec"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sparsecodecs", "sparsecodecs codec conformance")
    group.addoption(
        _OPTION,
        action="append",
        default=[],
        metavar="NAME_OR_JSON",
        dest="sparsecodecs_codec",
        help="run the sparsecodecs conformance suite on this codec (a registered name or alias, "
        'or a JSON config like \'{"id": "nm", "n": 1, "m": 4}\'); repeatable',
    )
    group.addoption(
        "--sparsecodecs-max-examples",
        type=int,
        default=None,
        metavar="N",
        dest="sparsecodecs_max_examples",
        help="Hypothesis examples per conformance check (default: the loaded profile's)",
    )


class CodecConformanceItem(pytest.Item):
    """One test item: :func:`~sparsecodecs.testing.check_codec` on the codec ``spec`` names."""

    def __init__(self, *, spec: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec

    def codec(self) -> Any:
        """The codec instance ``spec`` describes (loading a plugin if needed)."""
        import json

        from sparsecodecs import get_codec

        if self.spec.lstrip().startswith("{"):
            try:
                config = json.loads(self.spec)
            except ValueError as exc:
                problem = str(exc)
            else:
                return get_codec(config)
            pytest.fail(f"{_OPTION}={self.spec} is not valid JSON: {problem}", pytrace=False)
        return get_codec(self.spec)

    def runtest(self) -> None:
        from sparsecodecs.testing import check_codec

        check_codec(self.codec(), max_examples=self.config.getoption("sparsecodecs_max_examples"))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        from sparsecodecs import SparseCodecsError

        if isinstance(excinfo.value, (AssertionError, SparseCodecsError)):
            return f"{type(excinfo.value).__name__}: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"sparsecodecs conformance of {self.spec}"


@pytest.hookimpl(tryfirst=True)  # before -k / -m deselection, so they can select these items
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    for spec in config.getoption("sparsecodecs_codec"):
        items.append(
            CodecConformanceItem.from_parent(
                session, name=f"sparsecodecs-conformance[{spec}]", spec=spec
            )
        )
