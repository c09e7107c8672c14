"""Arrows point down: the library never imports the CLI or the bench; codecs do not import codecs.

The imports are read from the source (every ``import`` statement, at any depth, lazy ones inside
functions included), not from ``sys.modules``, so an import that only runs on some code path
still counts. ``docs/STYLE``: CLI -> bench, io, compute -> codecs -> kernels -> registry.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "sparsecodecs"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in ``path``.

    ``from a import b`` yields both ``a`` and ``a.b`` (``b`` may be a submodule).
    """
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def library_modules(root: Path) -> list[Path]:
    return sorted((root / PACKAGE).rglob("*.py"))


def upward_imports(root: Path) -> list[str]:
    """Imports of the CLI from the library, and of the bench from outside the bench and CLI."""
    cli, bench = f"{PACKAGE}.cli", f"{PACKAGE}.bench"
    found: dict[str, str] = {}
    for path in library_modules(root):
        name = module_name(path, root)
        for line, target in imported_modules(path, root):
            where = f"{path.relative_to(root)}:{line}"
            imports_cli = within(target, cli) and not within(name, cli)
            imports_bench = within(target, bench) and not (
                within(name, bench) or within(name, cli)
            )
            if imports_cli or imports_bench:
                found.setdefault(where, f"{where} imports {target}")
    return sorted(found.values())


def codec_cross_imports(root: Path) -> list[str]:
    """Modules of ``codecs/`` importing a codec module (not a shared ``_helper``) of another."""
    codecs = f"{PACKAGE}.codecs"
    codec_modules = {
        module_name(p, root) for p in (root / PACKAGE / "codecs").glob("[!_]*.py")
    }
    found: dict[str, str] = {}
    for path in sorted((root / PACKAGE / "codecs").glob("*.py")):
        name = module_name(path, root)
        if name == codecs:  # the package's __init__ registers every codec
            continue
        for line, target in imported_modules(path, root):
            hit = next((c for c in codec_modules if within(target, c)), None)
            if hit is not None and hit != name:
                where = f"{path.relative_to(root)}:{line}"
                found.setdefault(where, f"{where} imports {hit}")
    return sorted(found.values())


def test_library_never_imports_the_cli_or_the_bench() -> None:
    assert upward_imports(SRC) == []


def test_no_codec_imports_another_codecs_module() -> None:
    assert codec_cross_imports(SRC) == []


# -- the checks can fail: a fake tree with each kind of upward import ---------------------------


def write(root: Path, relative: str, text: str) -> None:
    path = root / PACKAGE / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(
    ("relative", "text"),
    [
        ("checkpoint.py", "from .cli import CLIError\n"),
        ("checkpoint.py", "from sparsecodecs import cli\n"),
        ("bench/report.py", "from ..cli import atomic_write\n"),
        ("registry/frame.py", "def f():\n    import sparsecodecs.cli as c\n"),
        ("compute.py", "from .bench.harness import run\n"),
        ("codecs/nm.py", "def lazy():\n    from ..bench import corpus\n"),
    ],
)
def test_upward_imports_are_found(tmp_path: Path, relative: str, text: str) -> None:
    for ok in ("__init__.py", "cli.py", "bench/__init__.py", "codecs/__init__.py"):
        write(tmp_path, ok, "from . import registry\n")
    write(tmp_path, "cli.py", "from .bench import run_cli\nfrom . import checkpoint\n")
    write(tmp_path, "bench/harness.py", "from ..registry import decode\nfrom . import corpus\n")
    assert upward_imports(tmp_path) == []
    write(tmp_path, relative, text)
    found = upward_imports(tmp_path)
    assert len(found) == 1 and found[0].startswith(str(Path(PACKAGE, relative))), found


def test_codec_cross_imports_are_found(tmp_path: Path) -> None:
    write(tmp_path, "codecs/__init__.py", "from .nm import NM\nfrom .hybrid import Hybrid\n")
    write(tmp_path, "codecs/_common.py", "X = 1\n")
    write(tmp_path, "codecs/nm.py", "from ._common import X\n")
    write(tmp_path, "codecs/hybrid.py", "from . import _common\nfrom ..registry import Codec\n")
    assert codec_cross_imports(tmp_path) == []
    write(tmp_path, "codecs/hybrid.py", "from .nm import pack_codes\n")
    assert codec_cross_imports(tmp_path) == [
        f"{Path(PACKAGE, 'codecs', 'hybrid.py')}:1 imports {PACKAGE}.codecs.nm"
    ]
