"""The ``sparsecodecs`` command line, run in-process through ``cli.main`` (plus one real start-up).

User errors must print exactly one line to stderr and exit with code 2; outputs are written
through a temporary file and a rename, and never replace an existing file without ``--force``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

import sparsecodecs as sc
from sparsecodecs import cli
from sparsecodecs.registry import registry

BUILTINS = ["bitmask", "csc", "csr", "nm", "raw"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def weights() -> np.ndarray:
    """A small 2:4-sparse float32 matrix with a NaN payload and a -0.0 among its values."""
    x = np.zeros((4, 8), np.float32)
    x[:, 0::4] = np.arange(1, 9, dtype=np.float32).reshape(4, 2)
    x[:, 3::4] = -2.5
    x.view(np.uint32)[0, 3] = 0x7FC00123
    x.view(np.uint32)[1, 0] = 0x80000000
    return x


def assert_same_bits(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    assert got.tobytes() == want.tobytes()


def assert_one_line_error(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith("sparsecodecs")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err


@pytest.fixture
def npy(tmp_path: Path) -> Path:
    path = tmp_path / "w.npy"
    np.save(path, weights())
    return path


@pytest.fixture
def frame_file(tmp_path: Path) -> Path:
    path = tmp_path / "w.spc"
    path.write_bytes(sc.get_codec("nm").encode(weights()))
    return path


def files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# -- list -------------------------------------------------------------------------------------


def test_list_names_every_codec_with_its_description(capsys):
    code, out, err = run(capsys, "list")
    assert (code, err) == (0, "")
    lines = {line.split()[0]: line for line in out.splitlines()}
    for name in BUILTINS:
        assert name in lines
        assert type(sc.get_codec(name)).description in lines[name]
    assert "aliases: 2:4" in lines["nm"]


def test_list_json(capsys):
    code, out, _ = run(capsys, "list", "--json")
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)}
    assert set(BUILTINS) <= set(rows)
    assert rows["csr"] == {
        "name": "csr",
        "description": type(sc.get_codec("csr")).description,
        "aliases": [],
        "source": "builtin",
        "error": None,
    }
    assert "2:4" in rows["nm"]["aliases"]


# -- inspect ----------------------------------------------------------------------------------


def test_inspect_prints_the_report_table(capsys, frame_file: Path):
    code, out, err = run(capsys, "inspect", str(frame_file))
    assert (code, err) == (0, "")
    report = sc.inspect(frame_file.read_bytes())
    assert out == f"{report}\n"
    assert out.startswith("codec nm(n=2, m=4, metadata='pattern')  float32 [4, 8]")
    assert f"{'frame (effective)':30}{frame_file.stat().st_size:>14,}" in out


def test_inspect_json(capsys, frame_file: Path):
    code, out, _ = run(capsys, "inspect", "--json", str(frame_file))
    assert code == 0
    data = json.loads(out)
    assert data == sc.inspect(frame_file.read_bytes()).to_dict()
    assert data["frame_bytes"] == frame_file.stat().st_size == sum(data["role_bytes"].values())
    assert data["theoretical_bytes"] == 4 * 4 * 4  # 4 groups per row keep 2 float32 each


# -- encode / decode ----------------------------------------------------------------------------


def test_encode_decode_round_trip(capsys, tmp_path: Path, npy: Path):
    frame = tmp_path / "w.spc"
    code, out, err = run(
        capsys, "encode", str(npy), "-o", str(frame), "-c", "nm", "-p", "metadata=index"
    )
    assert (code, err) == (0, "")
    assert out == f"{sc.inspect(frame.read_bytes())}\n"
    assert sc.inspect(frame.read_bytes()).config == {"n": 2, "m": 4, "metadata": "index"}
    back = tmp_path / "back.npy"
    code, out, err = run(capsys, "decode", str(frame), "-o", str(back))
    assert (code, out, err) == (0, "", "")
    assert_same_bits(np.load(back), weights())
    assert files(tmp_path) == ["back.npy", "w.npy", "w.spc"]  # no temporary files left


def test_encode_parses_parameters_as_json(capsys, tmp_path: Path):
    src = tmp_path / "x.npy"
    np.save(src, np.array([[0, 3], [4, 0], [0, 0]], np.int16))
    frame = tmp_path / "x.spc"
    code, _, err = run(
        capsys,
        "encode",
        str(src),
        "-o",
        str(frame),
        "-c",
        "nm",
        "-p",
        "n=1",
        "-p",
        "m=2",
        "-p",
        "metadata=bitmask",
    )
    assert (code, err) == (0, "")
    assert sc.inspect(frame.read_bytes()).config == {"n": 1, "m": 2, "metadata": "bitmask"}


def test_encode_uses_hybrid_by_default(capsys, tmp_path: Path, npy: Path):
    if "hybrid" not in registry.codecs:
        pytest.skip("the hybrid codec is not registered")
    frame = tmp_path / "w.spc"
    code, _, err = run(capsys, "encode", str(npy), "-o", str(frame))
    assert (code, err) == (0, "")
    assert sc.inspect(frame.read_bytes()).codec == "hybrid"
    assert_same_bits(sc.decode(frame.read_bytes()), weights())


def test_bfloat16_survives_a_npy_round_trip(capsys, tmp_path: Path):
    # np.save writes ml_dtypes arrays as raw void items ('|V2'): encode needs --dtype, and
    # decode writes the bit patterns (uint16) with a note saying how to view them.
    src = tmp_path / "b.npy"
    x = weights().astype(ml_dtypes.bfloat16)
    np.save(src, x)
    code, _, err = run(capsys, "encode", str(src), "-o", str(tmp_path / "b.spc"), "-c", "nm")
    assert code == 2 and "--dtype bfloat16" in err
    code, _, _ = run(
        capsys, "encode", str(src), "-o", str(tmp_path / "b.spc"), "-c", "nm", "--dtype", "bfloat16"
    )
    assert code == 0
    code, _, err = run(capsys, "decode", str(tmp_path / "b.spc"), "-o", str(tmp_path / "back.npy"))
    assert code == 0 and "view(ml_dtypes.bfloat16)" in err
    assert_same_bits(np.load(tmp_path / "back.npy").view(ml_dtypes.bfloat16), x)


# -- errors: one line on stderr, exit code 2, nothing written -------------------------------------


@pytest.mark.parametrize("command", ["inspect", "decode", "encode"])
def test_missing_input_file(capsys, tmp_path: Path, command: str):
    missing = tmp_path / "nope.bin"
    argv = [command, str(missing)] + ([] if command == "inspect" else ["-o", str(tmp_path / "o")])
    assert_one_line_error(*run(capsys, *argv), str(missing))
    assert files(tmp_path) == []


@pytest.mark.parametrize("command", ["inspect", "decode"])
def test_not_a_frame(capsys, tmp_path: Path, npy: Path, command: str):
    argv = [command, str(npy)] + ([] if command == "inspect" else ["-o", str(tmp_path / "o")])
    assert_one_line_error(*run(capsys, *argv), "BadMagicError", "not a sparsecodecs frame")
    assert files(tmp_path) == ["w.npy"]


def test_corrupted_frame(capsys, tmp_path: Path, frame_file: Path):
    data = bytearray(frame_file.read_bytes())
    data[20] ^= 1
    frame_file.write_bytes(bytes(data))
    code, out, err = run(capsys, "decode", str(frame_file), "-o", str(tmp_path / "o.npy"))
    assert_one_line_error(code, out, err, "ChecksumError", "checksum mismatch")
    assert files(tmp_path) == ["w.spc"]


def test_unknown_codec(capsys, tmp_path: Path, npy: Path):
    result = run(capsys, "encode", str(npy), "-o", str(tmp_path / "o"), "-c", "cssr")
    assert_one_line_error(
        *result, "UnknownCodecError", "unknown codec 'cssr'", "did you mean 'csr'?"
    )
    assert files(tmp_path) == ["w.npy"]


@pytest.mark.parametrize(
    ("array", "argv", "fragments"),
    [
        (np.ones((2, 4), np.float32), ["-c", "nm"], ["PatternError", "not 2:4 sparse"]),
        (np.ones(3, bool), ["-c", "raw"], ["UnsupportedDtypeError", "dtype bool"]),
        (weights(), ["-c", "nm", "-p", "n"], ["codec parameter 'n' must look like key=value"]),
        (weights(), ["-c", "nm", "-p", "n=5"], ["CodecConfigError", "n must be < m"]),
        (weights(), ["-c", "nm", "-p", "k=1"], ["CodecConfigError", "unknown parameter"]),
    ],
    ids=["pattern", "dtype", "param-syntax", "param-range", "param-name"],
)
def test_bad_input_or_parameters(capsys, tmp_path: Path, array, argv, fragments):
    src = tmp_path / "in.npy"
    np.save(src, array)
    result = run(capsys, "encode", str(src), "-o", str(tmp_path / "o.spc"), *argv)
    assert_one_line_error(*result, *fragments)
    assert files(tmp_path) == ["in.npy"]


def test_unreadable_npy(capsys, tmp_path: Path):
    src = tmp_path / "in.npy"
    src.write_bytes(b"not an npy file at all")
    result = run(capsys, "encode", str(src), "-o", str(tmp_path / "o"), "-c", "raw")
    assert_one_line_error(*result, "cannot read a .npy array")


def test_missing_output_directory(capsys, tmp_path: Path, npy: Path):
    out = tmp_path / "no" / "such" / "dir.spc"
    result = run(capsys, "encode", str(npy), "-o", str(out), "-c", "raw")
    assert_one_line_error(*result, "does not exist")
    assert files(tmp_path) == ["w.npy"]


# -- never overwrite without --force; atomic writes ------------------------------------------------


def test_encode_refuses_to_overwrite_without_force(capsys, tmp_path: Path, npy: Path):
    target = tmp_path / "w.spc"
    target.write_bytes(b"precious")
    result = run(capsys, "encode", str(npy), "-o", str(target), "-c", "nm")
    assert_one_line_error(*result, str(target), "exists; pass --force")
    assert target.read_bytes() == b"precious"
    code, _, _ = run(capsys, "encode", str(npy), "-o", str(target), "-c", "nm", "--force")
    assert code == 0
    assert_same_bits(sc.decode(target.read_bytes()), weights())
    assert files(tmp_path) == ["w.npy", "w.spc"]


def test_decode_refuses_to_overwrite_without_force(capsys, tmp_path: Path, frame_file: Path):
    target = tmp_path / "w.npy"
    target.write_bytes(b"precious")
    result = run(capsys, "decode", str(frame_file), "-o", str(target))
    assert_one_line_error(*result, "exists; pass --force")
    assert target.read_bytes() == b"precious"
    assert run(capsys, "decode", str(frame_file), "-o", str(target), "--force")[0] == 0
    assert_same_bits(np.load(target), weights())


@pytest.mark.parametrize("existing", [False, True])
def test_a_failed_write_leaves_nothing_behind(monkeypatch, tmp_path: Path, existing: bool):
    target = tmp_path / "out.spc"
    if existing:
        target.write_bytes(b"old")

    def fail(src: str, dst: str) -> None:
        assert Path(src).read_bytes() == b"new"  # fully written before the rename
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk on fire"):
        cli.atomic_write(target, b"new", force=True)
    assert files(tmp_path) == (["out.spc"] if existing else [])
    if existing:
        assert target.read_bytes() == b"old"


# -- the installed console script ----------------------------------------------------------------


def test_console_script_starts():
    script = Path(sys.executable).with_name("sparsecodecs")
    if not script.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    result = subprocess.run(
        [str(script), "list"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert {line.split()[0] for line in result.stdout.splitlines()} >= set(BUILTINS)


# -- --version -----------------------------------------------------------------------------------


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    out, err = capsys.readouterr()
    assert info.value.code == 0 and err == ""
    assert re.fullmatch(r"sparsecodecs (\S+) \(Python \d+\.\d+\.\d+\)\n", out), out
    assert out.split()[1] == sc.__version__


def test_version_agrees_with_pyproject():
    tomllib = pytest.importorskip("tomllib")
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    assert sc.__version__ == tomllib.loads(pyproject.read_text())["project"]["version"]


def test_user_errors_live_in_the_error_hierarchy(capsys, tmp_path: Path):
    assert cli.CLIError is sc.UsageError and issubclass(sc.UsageError, sc.SparseCodecsError)
    code, out, err = run(capsys, "bench", "--tiny", "--repeats", "0", "--out", str(tmp_path))
    assert (code, out) == (2, "") and err == "sparsecodecs: error: --repeats must be >= 1, got 0\n"
