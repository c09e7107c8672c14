"""Hostile frames: for any bytes, ``sparsecodecs.decode`` returns an array of the header's shape
and dtype or raises a ``SparseCodecsError``, without allocating for what the frame only claims.

Property tests mutate valid frames of every built-in codec (the golden frames and edge-shape
frames of ``tests/fuzz/seeds.py``) with ``sparsecodecs.testing.mutated_frames``, donors from
every other codec included; the example counts follow the Hypothesis profile (``ci``: 50 per
codec). Then regression tests for what fuzzing found, and tests of the fuzzing tools in
``tests/fuzz/``. ``docs/security.md`` describes the guarantee and how to run long fuzzing.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import threading
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sparsecodecs as sc
from sparsecodecs.registry import FrameHeaderError, FrameLayoutError
from sparsecodecs.testing import (
    assert_decodes_or_refuses,
    conformance,
    hostile_frames,
    mutated_frames,
    reframe,
    seal,
    split_frame,
)

FUZZ = Path(__file__).parent / "fuzz"
#: Decodes in these tests are refused above 64 MiB.
LIMIT = 1 << 26


def _load(name: str) -> ModuleType:
    """A module of ``tests/fuzz/`` by file name (that folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"sparsecodecs_fuzz_{name}", FUZZ / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


SEEDS: tuple[bytes, ...] = _load("seeds").seed_frames()
BUILTINS = sorted(info.name for info in sc.list_codecs() if info.source == "builtin")


def _examples(factor: int) -> settings:
    """The loaded profile's example count times ``factor``, without deadline or slow checks."""
    return settings(
        max_examples=settings().max_examples * factor,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def test_the_seeds_cover_every_builtin_codec() -> None:
    codecs = {split_frame(frame)[0]["codec"] for frame in SEEDS}
    assert codecs == set(BUILTINS)


@pytest.mark.parametrize("codec", BUILTINS)
def test_mutated_frames_of_each_codec_decode_or_raise_a_library_error(codec: str) -> None:
    own = [frame for frame in SEEDS if split_frame(frame)[0]["codec"] == codec]

    @_examples(2)
    @given(seed=st.sampled_from(own), data=st.data())
    def mutated(seed: bytes, data: st.DataObject) -> None:
        mutation = data.draw(mutated_frames(seed, donors=SEEDS), label="mutation")
        reference = sc.decode(seed) if mutation.equivalent else None
        assert_decodes_or_refuses(
            mutation.frame, mutation.description, max_bytes=LIMIT, reference=reference
        )

    mutated()


@_examples(2)
@given(hostile_frames(SEEDS))
def test_hostile_frames_decode_or_raise_a_library_error(mutation: Any) -> None:
    assert_decodes_or_refuses(mutation.frame, mutation.description, max_bytes=LIMIT)


@_examples(1)
@given(st.binary(max_size=512))
def test_random_bytes_with_a_valid_checksum_are_refused(body: bytes) -> None:
    out = assert_decodes_or_refuses(seal(body), "random bytes")
    assert isinstance(out, sc.SparseCodecsError)


# -- the checker can fail ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("effect", "message"),
    [
        (lambda: [][1], r"raised IndexError: .*only sparsecodecs.SparseCodecsError"),
        (lambda: np.ones(2) / np.zeros(2), r"raised RuntimeWarning: divide by zero"),
        (lambda: warnings.warn("deprecated", DeprecationWarning, stacklevel=1), "Deprecation"),
        (lambda: np.zeros(3, np.uint8), r"not an array of the header's shape \(2, 4\)"),
    ],
)
def test_assert_decodes_or_refuses_catches_a_broken_decoder(
    monkeypatch: pytest.MonkeyPatch, effect: Callable[[], Any], message: str
) -> None:
    frame = sc.get_codec("raw").encode(np.zeros((2, 4), np.float32))
    monkeypatch.setattr(conformance, "decode", lambda frame, max_bytes=None: effect())
    with pytest.raises(AssertionError, match=message):
        assert_decodes_or_refuses(frame, "a raw frame")


def test_assert_decodes_or_refuses_checks_inspect_too(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = sc.get_codec("raw").encode(np.zeros((2, 4), np.float32))
    monkeypatch.setattr(conformance, "inspect", lambda frame: {}["missing"])
    with pytest.raises(AssertionError, match=r"inspect\(\) raised KeyError"):
        assert_decodes_or_refuses(frame)


def test_assert_decodes_or_refuses_compares_with_a_reference() -> None:
    frame = sc.get_codec("raw").encode(np.zeros((2, 4), np.float32))
    assert isinstance(assert_decodes_or_refuses(frame, reference=np.zeros((2, 4), np.float32)),
                      np.ndarray)
    with pytest.raises(AssertionError, match="differs"):
        assert_decodes_or_refuses(frame, reference=np.ones((2, 4), np.float32))
    with pytest.raises(AssertionError, match="refused"):
        assert_decodes_or_refuses(frame[:-1] + b"\0", reference=np.zeros((2, 4), np.float32))


# -- regressions found by fuzzing --------------------------------------------------------------


def _finishes(call: Callable[[], Any], seconds: float = 20.0) -> Any:
    """``call()`` in a thread: its result, or a test failure if it runs past ``seconds``."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"still running after {seconds} s: decoding time must follow the frame size")
    return result[0]


def _empty_frame(spec: dict[str, Any], shape: tuple[int, ...]) -> bytes:
    return sc.get_codec(spec).encode(np.zeros(shape, np.float32))


@pytest.mark.parametrize(
    "spec",
    [
        {"id": "nm", "n": 1, "m": 3},  # the element-wise scatter, which looped over every row
        {"id": "nm", "n": 2, "m": 4},
        {"id": "hybrid", "layout": "nm", "n": 1, "m": 3, "values": "planes"},
        {"id": "csr"},
        {"id": "csc"},
        {"id": "bitmask"},
    ],
    ids=lambda s: "-".join(map(str, s.values())),
)
@pytest.mark.parametrize("shape", [[2**40, 0], [0, 2**40], [2**62 - 1, 0]], ids=str)
def test_an_empty_array_with_a_huge_side_decodes_at_once(
    spec: dict[str, Any], shape: list[int]
) -> None:
    frame = reframe(_empty_frame(spec, (2, 0)), header={"shape": shape})
    out = _finishes(lambda: assert_decodes_or_refuses(frame, f"shape {shape}"))
    if isinstance(out, np.ndarray):
        assert out.shape == tuple(shape) and out.size == 0


@pytest.mark.parametrize("codec", ["raw", "csr", "csc", "nm", "hybrid"])
@pytest.mark.parametrize(
    "shape", [[2**61, 2**61, 0], [2**31, 2**31, 2**31, 0], [0, 2**62 - 1, 2**62 - 1]], ids=str
)
def test_a_shape_no_array_can_have_is_a_header_error(codec: str, shape: list[int]) -> None:
    frame = reframe(_empty_frame({"id": codec}, (2, 0, 4)), header={"shape": shape})
    with pytest.raises(FrameHeaderError, match=r"too large for any float32 array"):
        sc.decode(frame)  # csc raised OverflowError from the 2-D view of such a shape


@pytest.mark.parametrize(
    ("spec", "array", "shape"),
    [
        # 2**28 rows of one column: 3 value slots per element in a 3:4 group (padding)
        (
            {"id": "hybrid", "layout": "nm", "n": 3, "m": 4, "values": "planes"},
            np.ones((1, 1), np.float64),
            [2**28, 1],
        ),
        # Huffman-coded indices or top fields: 16384 symbols and more are split in 4 streams
        ({"id": "centroid"}, np.arange(1 << 14, dtype=np.uint8) % 3, [2**30]),
        ({"id": "huffman"}, np.zeros(4096, np.uint8), [2**30]),
        ({"id": "hybrid", "layout": "dense", "values": "fields"}, np.ones(1 << 14, np.float32),
         [2**28]),
    ],
    ids=["hybrid-nm-padding", "centroid", "huffman", "hybrid-fields"],
)
def test_a_claimed_shape_is_checked_against_the_sections_before_allocating(
    spec: dict[str, Any], array: np.ndarray, shape: list[int]
) -> None:
    frame = reframe(sc.get_codec(spec).encode(array), header={"shape": shape})
    sc.decode(reframe(frame, header={"shape": list(array.shape)}))  # compiled and cached
    tracemalloc.start()  # numpy reports its allocations to tracemalloc
    try:
        with pytest.raises(FrameLayoutError):
            sc.decode(frame, max_bytes=1 << 34)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 24, f"allocated {peak} bytes for the claimed shape before checking it"


def test_histogram_refuses_symbols_outside_the_alphabet() -> None:
    from sparsecodecs.codecs import _huffman

    assert _huffman.histogram(np.array([0, 3, 3], np.uint16), 4).tolist() == [1, 0, 0, 2]
    with pytest.raises(ValueError, match="symbol 4 is outside the alphabet of 4"):
        _huffman.histogram(np.array([0, 4], np.uint16), 4)


# -- the fuzzing tools ---------------------------------------------------------------------------


def test_the_atheris_target_accepts_the_seed_corpus(tmp_path: Path) -> None:
    target = _load("fuzz_decode")
    assert target.write_corpus(tmp_path, SEEDS[::20]) == len(SEEDS[::20])
    inputs = sorted(tmp_path.iterdir())
    for path in inputs:
        target.TestOneInput(path.read_bytes())
    for junk in (b"", b"SPCF", bytes(64), inputs[0].read_bytes()[:-3]):
        target.TestOneInput(junk)


def test_the_atheris_target_reports_a_foreign_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    target = _load("fuzz_decode")
    monkeypatch.setattr(conformance, "decode", lambda frame, max_bytes=None: [][0])
    with pytest.raises(AssertionError, match="IndexError"):
        target.TestOneInput(SEEDS[0][:-8])


def test_the_fuzzing_dictionary_parses() -> None:
    """libFuzzer refuses a dictionary with a malformed line: each is ``[name=]"escaped"``."""
    entry = re.compile(r'^(\w+=)?"(\\(x[0-9a-fA-F]{2}|["\\])|[^"\\])+"$')
    lines = (FUZZ / "frame.dict").read_text().splitlines()
    entries = [line for line in lines if line and not line.startswith("#")]
    assert len(entries) > 50
    assert not [line for line in entries if not entry.match(line)]
    assert '"\\"codec\\""' in entries


def _clean_run(name: str, count: int, tmp_path: Path,
               capsys: pytest.CaptureFixture[str]) -> tuple[ModuleType, list[str], str]:
    """A runner of ``tests/fuzz/`` by file name, run on ``count`` frames: it passes, saves
    nothing and says how many frames it ran; returns it, its arguments and its report."""
    runner = _load(name)
    args = ["--count", str(count), "--seed", "3", "--out", str(tmp_path), "--memory", "0"]
    assert runner.main(args) == 0
    out = capsys.readouterr().out
    assert f"{count} hostile frames" in out
    assert not list(tmp_path.iterdir())
    return runner, args, out


def test_the_mutation_runner_counts_and_saves_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    runner, args, _ = _clean_run("run_mutations", 20, tmp_path, capsys)

    real = conformance.decode

    def broken(frame: bytes, max_bytes: int | None = None) -> None:
        real(frame, max_bytes=max_bytes)
        raise KeyError("injected")  # only reached for frames that decode

    monkeypatch.setattr(conformance, "decode", broken)
    assert runner.main(args) == 1
    report = capsys.readouterr().out
    assert "FAILURE" in report and "KeyError" in report
    saved = sorted(tmp_path.glob("fail-*.spcf"))
    assert saved and saved[0].with_suffix(".txt").read_text()


def test_the_product_runner_counts_and_saves_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    runner, args, out = _clean_run("run_products", 15, tmp_path, capsys)
    assert "multiplied" in out  # some frames decoded, and their products were checked

    real = sc.matmul

    def off(x: np.ndarray, frame: bytes, threads: int = 1) -> np.ndarray:
        return real(x, frame, threads=threads) * np.float32(1.001)  # a product slightly wrong

    monkeypatch.setattr(sc, "matmul", off)
    assert runner.main(args) == 1
    report = capsys.readouterr().out
    assert "FAILURE" in report and "the decoded weight's product" in report
    saved = sorted(tmp_path.glob("fail-*.spcf"))
    assert saved and "batch" in saved[0].with_suffix(".txt").read_text()


def test_the_product_runner_catches_a_product_of_a_refused_frame(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runner = _load("run_products")
    frame = runner.seed_weights()[0]
    assert runner.check(frame)[1] == []
    damaged = seal(frame[:-9])  # the last section one byte short, its checksum valid
    real = sc.matmul

    def lenient(x: np.ndarray, frame: bytes, threads: int = 1) -> np.ndarray:
        try:
            return real(x, frame, threads=threads)
        except sc.SparseCodecsError:
            return np.zeros((x.shape[0], 40), np.float32)

    monkeypatch.setattr(sc, "matmul", lenient)
    outcomes, problems = runner.check(damaged)
    assert outcomes == ["FAILURE"] and "matmul accepted a frame decode refuses" in problems[0]
