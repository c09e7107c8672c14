"""Third-party codecs: the example plugin distribution, broken plugins, and the pytest plugin.

The example plugin (``tests/plugins/sparsecodecs-example-plugin``) and the broken one
(``tests/plugins/sparsecodecs-broken-plugin``: a valid hyphenated id and plugins that fail in
every way) are real distributions that ``.ci/run`` installs. More broken plugins are fake
``*.dist-info`` directories put on ``sys.path`` for one test; the fixture removes them and makes
the registry forget them afterwards.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import sparsecodecs as sc
from sparsecodecs.codecs import Raw
from sparsecodecs.registry import (
    CodecInfo,
    CodecRegistry,
    PluginError,
    RegistryError,
    registry,
)
from sparsecodecs.registry.registry import normalize_name
from sparsecodecs.testing import registered

PLUGIN_DIR = Path(__file__).parent / "plugins" / "sparsecodecs-example-plugin"
BROKEN_DIR = Path(__file__).parent / "plugins" / "sparsecodecs-broken-plugin"
BROKEN_HINT = f"the broken plugin is not installed: pip install --no-deps {BROKEN_DIR}"
BROKEN_DIST = "sparsecodecs-broken-plugin"
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


# -- the installed broken plugin distribution -------------------------------------------------


def _broken_rows() -> dict[str, CodecInfo]:
    rows = {row.name: row for row in sc.list_codecs()}
    assert "hyphen-codec" in rows, BROKEN_HINT
    return rows


def test_a_hyphenated_codec_id_is_valid() -> None:
    row = _broken_rows()["hyphen-codec"]
    assert row.error is None and row.source == f"plugin {BROKEN_DIST}"
    for name in ("hyphen-codec", "hyphen_codec", "Hyphen-Codec"):
        codec = sc.get_codec(name)
        assert codec.get_config() == {"id": "hyphen-codec"}
        frame = codec.encode(WEIGHTS)
        assert sc.inspect(frame).codec == "hyphen-codec"
        assert sc.decode(frame).tobytes() == WEIGHTS.tobytes()


#: (entry-point name, the original exception's class, what the error says)
BROKEN = [
    ("fails_on_import", RuntimeError, "failed to load: RuntimeError: this plugin needs a GPU"),
    ("exits_on_import", SystemExit, "failed to load: SystemExit: 3"),
    ("points_to_int", None, "points to 42, which is not a sparsecodecs Codec subclass"),
    ("bad_aliases", RegistryError, "aliases of BadAliases must map non-empty names to"),
    ("steals_alias", RegistryError, "codec name '2:4' is already taken by sparsecodecs.codecs"),
    ("upper_case", RegistryError, "codec_id 'UPPER_CASE' of UpperCase must be lower case"),
]


@pytest.mark.parametrize(("name", "cause", "message"), BROKEN)
def test_a_broken_installed_plugin_fails_alone(
    name: str, cause: type[BaseException] | None, message: str
) -> None:
    rows = _broken_rows()
    assert message in (rows[name].error or ""), rows[name]
    assert rows[name].source == f"plugin {BROKEN_DIST}"
    with pytest.raises(PluginError, match=re.escape(message)) as excinfo:
        sc.get_codec(name.replace("_", "-"))
    assert f"from distribution {BROKEN_DIST!r}" in str(excinfo.value)
    assert isinstance(excinfo.value, sc.SparseCodecsError)
    if cause is not None:
        assert isinstance(excinfo.value.__cause__, cause)
    # nothing of it was registered, and the built-ins are untouched
    assert normalize_name(name) not in registry.codecs
    assert type(sc.get_codec("2:4")).codec_id == "nm"
    assert sc.decode(sc.get_codec("raw").encode(WEIGHTS)).tobytes() == WEIGHTS.tobytes()


def test_the_command_line_lists_broken_plugins_and_exits_0() -> None:
    _broken_rows()
    script = [sys.executable, "-c", "import sys; from sparsecodecs.cli import main; "
              "sys.exit(main(sys.argv[1:]))", "list"]
    run = subprocess.run(script, capture_output=True, text=True, check=False, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = {line.split()[0]: line for line in run.stdout.splitlines()}
    assert "raw bytes under a hyphenated id" in lines["hyphen-codec"]
    for name, _, message in BROKEN:
        assert "failed to load" in lines[name] and message in lines[name], lines[name]
        assert f"[plugin {BROKEN_DIST}]" in lines[name]
    for name in ("raw", "nm", "hybrid", "rle_zeros"):
        assert "failed" not in lines[name]
    json_run = subprocess.run(
        [*script, "--json"], capture_output=True, text=True, check=False, timeout=120
    )
    assert json_run.returncode == 0, json_run.stderr
    rows = {row["name"]: row for row in json.loads(json_run.stdout)}
    assert "this plugin needs a GPU" in rows["fails_on_import"]["error"]
    assert rows["hyphen-codec"]["error"] is None


def test_a_registration_with_bad_aliases_changes_nothing() -> None:
    fresh = CodecRegistry()

    @dataclass(frozen=True, kw_only=True)
    class Half(Raw):
        codec_id = "half"
        aliases = {"half-a": {}, "raw": {}}

    fresh.register(Raw, source="builtin")
    with pytest.raises(RegistryError, match="'raw' is already taken"):
        fresh.register(Half)
    assert set(fresh.codecs) == {"raw"} and "half_a" not in fresh.names()


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


def test_a_name_two_distributions_declare_is_refused_not_shadowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = tmp_path / "copycat-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: copycat\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[sparsecodecs.codecs]\nrle-zeros = copycat_mod:RleZeros\n"
    )
    monkeypatch.syspath_prepend(tmp_path)
    fresh = CodecRegistry()
    with pytest.raises(PluginError, match="'rle_zeros' is declared by more than one") as exc:
        fresh.get("rle_zeros")
    assert "'copycat'" in str(exc.value) and "'sparsecodecs-example-plugin'" in str(exc.value)
    assert "copycat_mod" not in sys.modules
    rows = {row.name: row for row in fresh.info()}
    assert "uninstall all but one" in (rows["rle_zeros"].error or "")


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
