"""Every code example in README.md and docs/ runs, as written, with Sybil.

Per page, in order, in one namespace (a page's examples build on each other):

- ```` ```python ```` blocks run; blocks of ``>>>`` examples run as doctests, their output
  checked. A ```` ```text ```` block right after a python block (nothing between them) is that
  block's output: what it prints must match it (runs of spaces compared as one).
- ```` ```bash ```` / ```` ```sh ```` blocks: each ``sparsecodecs ...`` line runs the CLI in
  this process (``cli.main``; a ``/usr/bin/time`` prefix is dropped), and must exit 0 unless the
  line ends in ``# exits N``; ``cmp A B`` compares two files. Any other command must be
  skipped in the page with a reason (``<!-- skip: next "installs packages" -->``): an
  unskipped command this runner cannot run fails.
- Examples that take more than a few seconds are marked in the page with
  ``<!-- skip: next if(not SLOW, reason="slow") -->``: they run only with
  ``SPARSECODECS_SLOW_DOCS=1`` (then in the ``slow``-marked twin of each page's test).
- Hidden set-up, when a page needs some, is an ``<!-- invisible-code-block: python -->``
  comment in the page itself. Every page starts with the names of :func:`page_namespace` (small
  arrays the examples use as ``w``, ``q`` ...) and runs in a fresh temporary directory, so no
  example writes into the repository.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from sybil import Document, Example
from sybil.evaluators.doctest import NUMBER
from sybil.parsers.markdown import (
    ClearNamespaceParser,
    CodeBlockParser,
    PythonCodeBlockParser,
    SkipParser,
)

ROOT = Path(__file__).resolve().parents[1]
EXCLUDED: set[str] = set()
PAGES = sorted(
    p.relative_to(ROOT).as_posix()
    for p in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    if p.relative_to(ROOT).as_posix() not in EXCLUDED
)
SLOW = os.environ.get("SPARSECODECS_SLOW_DOCS", "") not in ("", "0")


def page_namespace() -> dict[str, Any]:
    """The names every page starts with: small arrays its examples use without defining."""
    from sparsecodecs.transforms import prune, quantize

    rng = np.random.default_rng(0)
    dense = (rng.standard_normal((64, 128)) * 0.02).astype(np.float32)
    w, _ = prune(dense, "2:4")  # float32, 2:4-sparse along the last axis
    q, report = quantize(w, 8, "asymmetric", axis=0)  # uint8, per-row zero points
    zero_points = report.zero_point.astype(np.uint8).reshape(-1)
    return {"np": np, "ml_dtypes": ml_dtypes, "w": w, "dense": dense, "q": q,
            "zero_points": zero_points, "buffer": np.empty_like(w)}


# -- shell blocks -----------------------------------------------------------------------------


def _shell_lines(source: str) -> Iterator[str]:
    """The commands of a shell block: continuation lines joined, comments and blanks dropped."""
    for line in source.replace("\\\n", " ").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            yield line


def evaluate_shell(example: Example) -> str | None:
    from sparsecodecs import cli

    for line in _shell_lines(example.parsed):
        expect = 0
        match = re.search(r"#\s*exits\s+(\d+)\s*$", line)
        if match:
            expect, line = int(match[1]), line[: match.start()].strip()
        line = line.split(" #", 1)[0].strip()
        words = shlex.split(line)
        if words[:1] == ["/usr/bin/time"]:  # a measurement: run the command it times
            words = words[1:]
            while words and words[0].startswith("-"):
                words = words[2:] if words[0] == "-f" else words[1:]
        if words[:1] == ["cmp"] and len(words) == 3:
            if Path(words[1]).read_bytes() != Path(words[2]).read_bytes():
                return f"{line!r}: the files differ"
            continue
        if words[0] != "sparsecodecs" or any(w in ("&&", "|", ";", ">") for w in words):
            return (f"cannot run {line!r}: only sparsecodecs commands run here; skip the block "
                    'in the page with <!-- skip: next "reason" -->')
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(words[1:])
            except SystemExit as exc:  # --help, --version and argparse errors
                code = exc.code if isinstance(exc.code, int) else 1
        if code != expect:
            return f"{line!r} exited {code}, expected {expect}:\n{err.getvalue()}"
    return None


# -- output blocks ----------------------------------------------------------------------------


def _same_text(got: str, want: str) -> bool:
    def norm(s: str) -> list[str]:
        return [re.sub(r"[ \t]+", " ", line).strip() for line in s.strip().splitlines()]

    return norm(got) == norm(want)


class OutputPython:
    """Runs python blocks, capturing what they print; a text block right after is checked."""

    def __init__(self) -> None:
        self.last: dict[int, tuple[int, str]] = {}  # id(document) -> (end offset, printed)

    def python(self, example: Example) -> None:
        buf = io.StringIO()
        code = compile(example.parsed, f"{example.path}:{example.line}", "exec")
        with contextlib.redirect_stdout(buf):
            exec(code, example.namespace)
        self.last[id(example.document)] = (example.end, buf.getvalue())

    def text(self, example: Example) -> str | None:
        end, printed = self.last.get(id(example.document), (-1, ""))
        between = example.document.text[end:example.start]
        if end < 0 or between.strip():
            return None  # not an output block: formulas, layouts, messages
        if not _same_text(printed, example.parsed):
            return (f"the python block above prints something else than this block shows:\n"
                    f"--- printed\n{printed}--- shown\n{example.parsed}")
        return None


def parse(page: str) -> Document:
    output = OutputPython()
    python = PythonCodeBlockParser(doctest_optionflags=NUMBER)
    python.codeblock_parser = CodeBlockParser("python", output.python)
    parsers = [
        python,
        CodeBlockParser("text", output.text),
        CodeBlockParser("bash", evaluate_shell),
        CodeBlockParser("sh", evaluate_shell),
        SkipParser(),
        ClearNamespaceParser(),
    ]
    return Document.parse(str(ROOT / page), *parsers)


def run_page(page: str, slow: bool) -> list[str]:
    """Evaluate every example of ``page``; returns the skip reasons met."""
    document = parse(page)
    skipped = []
    cwd = os.getcwd()
    with _tmp_cwd() as tmp, warnings.catch_warnings(), _registry_kept():
        # a warning an example's code causes is the user's to see, not a test failure
        # (pytest runs with filterwarnings=error); docs mention the ones that matter
        warnings.simplefilter("ignore")
        document.namespace.update(page_namespace(), SLOW=slow, tmp=tmp, __name__="__main__")
        try:
            for example in document.examples():
                try:
                    example.evaluate()
                except pytest.skip.Exception:
                    raise
                except Exception as exc:
                    if type(exc).__name__ == "SkipTest":
                        skipped.append(f"{page}:{example.line}: {exc}")
                        continue
                    raise AssertionError(
                        f"{page}, line {example.line}: {type(exc).__name__}: {exc}"
                    ) from exc
        finally:
            os.chdir(cwd)
    return skipped


@contextlib.contextmanager
def _registry_kept() -> Iterator[None]:
    """The codec registry as it was before the page: docs/plugins.md registers an example
    codec (an abstract one), which ``sparsecodecs bench`` in a later test would then try to
    make and fail on (tests/test_bench.py run after this file)."""
    from sparsecodecs.registry.registry import registry

    saved = dict(registry._classes), dict(registry._sources), dict(registry._aliases)
    try:
        yield
    finally:
        registry._classes, registry._sources, registry._aliases = saved


@contextlib.contextmanager
def _tmp_cwd() -> Iterator[Path]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="sc-docs-") as tmp:
        os.chdir(tmp)
        yield Path(tmp)


def _has_slow(page: str) -> bool:
    return "if(not SLOW" in (ROOT / page).read_text()


@pytest.mark.parametrize("page", PAGES)
def test_page_examples_run(page: str) -> None:
    before = sorted(p.name for p in ROOT.iterdir())
    run_page(page, slow=False)
    assert sorted(p.name for p in ROOT.iterdir()) == before, "an example wrote into the repo"


@pytest.mark.slow
@pytest.mark.skipif(not SLOW, reason="slow doc examples: SPARSECODECS_SLOW_DOCS=1")
@pytest.mark.parametrize("page", [p for p in PAGES if _has_slow(p)])
def test_page_slow_examples_run(page: str) -> None:
    run_page(page, slow=True)


# -- the runner itself can fail ------------------------------------------------------------------


def _write_page(tmp_path: Path, text: str) -> str:
    (tmp_path / "page.md").write_text(text)
    return str(tmp_path / "page.md")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("```python\nimport sparsecodecs as sc\nsc.get_codec('cssr')\n```\n", "did you mean"),
        ("```python\nprint(1 + 1)\n```\n```text\n3\n```\n", "prints something else"),
        ("```python\n>>> 1 + 1\n3\n```\n", "Expected"),
        ("```bash\nsparsecodecs decode nope.spc -o x.npy\n```\n", "exited 2, expected 0"),
        ("```bash\npip install sparsecodecs\n```\n", "cannot run"),
    ],
    ids=["raises", "wrong-output", "wrong-doctest", "cli-fails", "unknown-command"],
)
def test_runner_catches_broken_examples(tmp_path: Path, text: str, fragment: str) -> None:
    page = _write_page(tmp_path, text)
    with pytest.raises(AssertionError, match=fragment):
        run_page(page, slow=False)


def test_runner_accepts_right_examples_and_skips(tmp_path: Path) -> None:
    text = ("```python\nprint('a   b')\n```\n```text\na b\n```\n"
            "```bash\nsparsecodecs --version # exits 0\nsparsecodecs decode nope -o x # exits 2\n"
            "```\n<!-- skip: next \"installs\" -->\n```bash\npip install x\n```\n"
            '<!-- skip: next if(not SLOW, reason="slow") -->\n```python\nraise RuntimeError\n```\n')
    page = _write_page(tmp_path, text)
    assert [r.split(": ", 1)[1] for r in run_page(page, slow=False)] == ["installs", "slow"]
    with pytest.raises(AssertionError, match="RuntimeError"):
        run_page(page, slow=True)

