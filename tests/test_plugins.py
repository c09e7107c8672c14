"""Third-party codecs: the example plugin distribution, broken plugins, and the pytest plugin.

The example plugin (``tests/plugins/sparsecodecs-example-plugin``) is a real distribution that
``.ci/run`` installs. Broken plugins are fake ``*.dist-info`` directories put on ``sys.path`` for
one test; the fixture removes them and makes the registry forget them afterwards.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import sparsecodecs as sc
from sparsecodecs.registry import CodecInfo, CodecRegistry, PluginError, registry
from sparsecodecs.testing import registered

PLUGIN_DIR = Path(__file__).parent / "plugins" / "sparsecodecs-example-plugin"
PLUGIN_MODULE = "sparsecodecs_example_plugin"
DOCS = Path(__file__).parents[1] / "docs" / "plugins.md"
INSTALL_HINT = f"the example plugin is not installed: pip install {PLUGIN_DIR}"

WEIGHTS = np.array([[0.0, 0.0, 1.5, 0.0], [0.0, -0.0, 0.0, 0.0], [7.0, 0.0, 0.0, np.nan]])


def _example_row() -> CodecInfo:
    rows = {row.name: row for row in sc.list_codecs()}
    assert "rle_zeros" in rows, INSTALL_HINT
    return rows["rle_zeros"]


def test_the_installed_example_plugin_is_listed() -> None:
    row = _example_row()
    assert row.source == "plugin sparsecodecs-example-plugin"
    assert row.description == "zero run lengths + the non-zero values (example plugin)"
    assert row.error is None


def test_a_plugin_is_not_imported_until_it_is_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, PLUGIN_MODULE, raising=False)
    fresh = CodecRegistry()
    assert "rle_zeros" in fresh.names(), INSTALL_HINT
    assert PLUGIN_MODULE not in sys.modules
    codec = fresh.get("RLE-Zeros", order="F")
    assert PLUGIN_MODULE in sys.modules
    assert type(codec).__module__ == PLUGIN_MODULE
    assert codec.get_config() == {"id": "rle_zeros", "order": "F"}


def test_a_fresh_process_decodes_a_plugin_frame_importing_the_plugin_only_then() -> None:
    frame = sc.get_codec("rle_zeros").encode(WEIGHTS)
    script = textwrap.dedent(
        f"""
        import sys
        import sparsecodecs as sc
        assert {PLUGIN_MODULE!r} not in sys.modules, "imported with sparsecodecs"
        assert "rle_zeros" in sc.registry.registry.names()
        assert {PLUGIN_MODULE!r} not in sys.modules, "imported by listing the names"
        out = sc.decode(bytes.fromhex(sys.argv[1]))
        assert {PLUGIN_MODULE!r} in sys.modules
        print(out.view("u8").tolist())
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script, frame.hex()], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(WEIGHTS.view("u8").tolist())


def test_plugin_frames_decode_and_inspect_through_the_library() -> None:
    codec = sc.get_codec("rle-zeros")
    frame = codec.encode(WEIGHTS)
    out = sc.decode(frame)
    assert out.dtype == WEIGHTS.dtype
    assert np.array_equal(out.view("u8"), WEIGHTS.view("u8"))  # -0.0 and NaN bit for bit
    report = sc.inspect(frame)
    assert report.codec == "rle_zeros"
    assert report.role_bytes["values"] == 4 * 8  # 1.5, -0.0, 7.0 and NaN
    assert report.role_bytes["index"] == 4  # four runs of at most 255 zeros: a byte each


def test_the_docs_show_the_example_plugin_verbatim() -> None:
    source = (PLUGIN_DIR / PLUGIN_MODULE / "__init__.py").read_text()
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    assert source in blocks, f"{DOCS} must quote {PLUGIN_MODULE}/__init__.py in a python block"


# -- broken plugins --------------------------------------------------------------------------


@pytest.fixture
def fake_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fake installed distribution ``broken-plugin`` whose entry points go wrong in
    different ways; it is on ``sys.path`` and known to the registry for one test."""
    (tmp_path / "broken_plugin_mod.py").write_text(
        textwrap.dedent(
            """
            import numpy as np

            from sparsecodecs.codecs import Raw

            NOT_A_CODEC = 42


            class Misnamed(Raw):
                codec_id = "something_else"
            """
        )
    )
    (tmp_path / "failing_plugin_mod.py").write_text(
        "raise RuntimeError('this plugin needs a GPU')\n"
    )
    info = tmp_path / "broken_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            """
            [sparsecodecs.codecs]
            failing = failing_plugin_mod:Codec
            missing = no_such_module_anywhere:Codec
            not_a_codec = broken_plugin_mod:NOT_A_CODEC
            misnamed = broken_plugin_mod:Misnamed
            """
        )
    )
    modules = ["broken_plugin_mod", "failing_plugin_mod"]
    for name in modules:
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.syspath_prepend(tmp_path)
    registry.refresh_plugins()
    with registered():  # whatever gets registered is forgotten afterwards
        yield tmp_path
    for name in modules:
        sys.modules.pop(name, None)
    monkeypatch.undo()
    registry.refresh_plugins()


@pytest.mark.usefixtures("fake_plugins")
@pytest.mark.parametrize(
    ("name", "cause", "message"),
    [
        (
            "failing",
            RuntimeError,
            r"codec plugin 'failing' \(failing_plugin_mod:Codec\) from distribution "
            r"'broken-plugin' failed to load: RuntimeError: this plugin needs a GPU",
        ),
        (
            "missing",
            ModuleNotFoundError,
            r"'missing' \(no_such_module_anywhere:Codec\) from distribution 'broken-plugin' "
            r"failed to load: ModuleNotFoundError",
        ),
    ],
)
def test_a_plugin_that_fails_to_import_names_itself_and_its_distribution(
    name: str, cause: type[Exception], message: str
) -> None:
    with pytest.raises(PluginError, match=message) as excinfo:
        sc.get_codec(name)
    assert isinstance(excinfo.value.__cause__, cause)
    assert isinstance(excinfo.value, ImportError)


@pytest.mark.usefixtures("fake_plugins")
def test_a_plugin_that_is_not_a_codec_class() -> None:
    with pytest.raises(
        PluginError,
        match="'not_a_codec' from distribution 'broken-plugin' points to 42, which is not a "
        "sparsecodecs Codec subclass",
    ):
        sc.get_codec("not-a-codec")


@pytest.mark.usefixtures("fake_plugins")
def test_a_plugin_whose_codec_id_differs_from_its_entry_point_name() -> None:
    with pytest.raises(PluginError, match="codec_id is 'something_else'; they must match"):
        sc.get_codec("misnamed")


@pytest.mark.usefixtures("fake_plugins")
def test_list_codecs_reports_broken_plugins_without_failing() -> None:
    rows = {row.name: row for row in sc.list_codecs()}
    assert "RuntimeError: this plugin needs a GPU" in (rows["failing"].error or "")
    assert "not a sparsecodecs Codec subclass" in (rows["not_a_codec"].error or "")
    assert rows["raw"].error is None


def test_the_fake_plugins_are_gone_after_the_test() -> None:
    assert "failing" not in registry.names()
    assert "broken_plugin_mod" not in sys.modules


# -- the pytest plugin -----------------------------------------------------------------------


def test_the_pytest_option_runs_the_conformance_suite(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(
        "-v",
        "--sparsecodecs-max-examples=10",
        "--sparsecodecs-codec=raw",
        '--sparsecodecs-codec={"id": "nm", "n": 1, "m": 4}',
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*sparsecodecs-conformance?raw? PASSED*",
            '*sparsecodecs-conformance?{"id": "nm", "n": 1, "m": 4}? PASSED*',
        ]
    )


def test_the_pytest_option_reports_a_failing_codec(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        from dataclasses import dataclass

        import sparsecodecs as sc
        from sparsecodecs.codecs import Raw


        @sc.register_codec
        @dataclass(frozen=True, kw_only=True)
        class Lossy(Raw):
            codec_id = "test_lossy"

            def encode_bits(self, bits, dtype):
                return super().encode_bits(bits & ~bits.dtype.type(1), dtype)
        """
    )
    with registered():  # forget the conftest's codec afterwards
        result = pytester.runpytest("--sparsecodecs-codec=test-lossy", "--sparsecodecs-codec=cssr")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: Lossy() fails conformance check 'edge_cases': *differs from the*",
            "*UnknownCodecError: unknown codec 'cssr'; did you mean 'csr'?*",
        ]
    )


def test_the_pytest_option_can_be_selected_with_k(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_other():\n    raise AssertionError('must not run')\n")
    result = pytester.runpytest("--sparsecodecs-codec=raw", "-k", "sparsecodecs-conformance")
    result.assert_outcomes(passed=1, deselected=1)


def test_an_invalid_json_config_fails_its_item(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--sparsecodecs-codec={'id': 'raw'}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*--sparsecodecs-codec={'id': 'raw'} is not valid JSON*"])


def test_without_the_option_the_plugin_adds_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_one():\n    pass\n")
    result = pytester.runpytest("-W", "error", "--collect-only", "-q")
    assert "sparsecodecs" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*test_one*", "1 test collected*"])
    help_text = pytester.runpytest("--help").stdout.str()
    assert "--sparsecodecs-codec=NAME_OR_JSON" in help_text


def test_the_pytest_option_in_a_fresh_process(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(
        "-W", "error", "--sparsecodecs-codec=rle_zeros", "--sparsecodecs-max-examples=5"
    )
    result.assert_outcomes(passed=1)
