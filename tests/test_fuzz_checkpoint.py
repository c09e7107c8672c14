"""Hostile compressed checkpoints: for any file (or folder of shards), every public read either
succeeds with the dtype and shape the file states or raises a ``SparseCodecsError``.

The property tests below are the bounded slice of ``tests/fuzz/run_checkpoint_mutations.py``
that runs in CI (example counts follow the Hypothesis profile); then regression tests for what
that runner found, and tests that the checker and the runner can fail. ``docs/security.md``
gives the commands and counts of the long runs.
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import sparsecodecs as sc
from sparsecodecs.testing import (
    assert_folder_reads_or_refuses,
    assert_reads_or_refuses,
    build_checkpoint,
    checkpoint_seeds,
    mutated_checkpoints,
    mutated_shards,
    sharded_seed,
    split_checkpoint,
    written,
)
from sparsecodecs.testing import checkpoints as kit
from test_fuzz import _load  # tests/ is on sys.path: pytest's default rootdir import

GOLDEN = Path(__file__).parent / "golden" / "checkpoint" / "container-v1.sc.safetensors"
SEEDS: tuple[bytes, ...] = (*checkpoint_seeds(), GOLDEN.read_bytes())
FOLDER = sharded_seed(SEEDS[1])
LIMIT = 1 << 26


def _examples(factor: int) -> settings:
    return settings(
        max_examples=settings().max_examples * factor,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.function_scoped_fixture],
    )


@pytest.fixture
def limited() -> Any:
    old = sc.get_decode_limit()
    sc.set_decode_limit(LIMIT)
    yield
    sc.set_decode_limit(old)


def _reference(data: bytes, tmp_path: Path) -> dict[str, np.ndarray]:
    with written({"s.safetensors": data}, tmp_path) as folder:
        return sc.load_file(folder / "s.safetensors")


def test_the_seeds_read_and_cover_the_container_features(tmp_path: Path) -> None:
    metas = [split_checkpoint(s)[0]["__metadata__"] for s in SEEDS]
    assert any("sparsecodecs.blocks" in m for m in metas)
    assert any("sparsecodecs.blocks" not in m for m in metas)
    assert any("sparsecodecs.transforms" in m for m in metas)
    assert any("sparsecodecs.metadata" in m for m in metas)
    for data in SEEDS:
        assert isinstance(_reference(data, tmp_path), dict)
    with written(FOLDER, tmp_path) as folder:
        out = assert_folder_reads_or_refuses(folder)
    assert isinstance(out, dict) and set(out) == set(_reference(SEEDS[1], tmp_path))


def test_split_and_build_are_inverse(tmp_path: Path) -> None:
    for data in SEEDS:
        again = build_checkpoint(*split_checkpoint(data))  # the writer's padding is dropped
        assert split_checkpoint(again) == split_checkpoint(data)
        assert len(again) <= len(data) and int.from_bytes(again[:8], "little") % 8 == 0
        ref, out = _reference(data, tmp_path), _reference(again, tmp_path)
        assert all(ref[k].tobytes() == out[k].tobytes() for k in ref) and set(ref) == set(out)


@_examples(4)
@given(mutated_checkpoints(SEEDS))
def test_mutated_checkpoints_read_or_raise_a_library_error(
    tmp_path: Path, limited: None, mutation: kit.CheckpointMutation
) -> None:
    reference = _reference(mutation.seed, tmp_path) if mutation.equivalent else None
    tracemalloc.start()
    try:
        with written({"m.safetensors": mutation.data}, tmp_path) as folder:
            assert_reads_or_refuses(folder / "m.safetensors", mutation.description,
                                    reference=reference)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * LIMIT, f"{mutation.description}: allocated {peak} bytes"


@_examples(1)
@given(mutated_shards(FOLDER))
def test_mutated_sharded_folders_read_or_raise_a_library_error(
    tmp_path: Path, limited: None, mutation: kit.ShardedMutation
) -> None:
    reference = _reference(SEEDS[1], tmp_path) if mutation.equivalent else None
    with written(mutation.files, tmp_path) as folder:
        assert_folder_reads_or_refuses(folder, mutation.description, reference=reference)


# -- regressions found by the runner ------------------------------------------------------------


def _file(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "x.safetensors"
    path.write_bytes(data)
    return path


def _meta(data: bytes, **changes: str) -> bytes:
    header, body = split_checkpoint(data)
    meta = {**header["__metadata__"], **{k.replace("_", "."): v for k, v in changes.items()}}
    return build_checkpoint({**header, "__metadata__": meta}, body)


@pytest.mark.parametrize("text", ["1", '"x"', "[]", '{"tensors":3}', '{"tensors":[1]}'])
def test_a_transforms_record_that_is_not_an_object_is_a_checkpoint_error(
    tmp_path: Path, text: str
) -> None:
    path = _file(tmp_path, _meta(SEEDS[0], sparsecodecs_transforms=text))
    with (
        pytest.raises(sc.CheckpointError, match=r"sparsecodecs\.transforms is not an object"),
        sc.safe_open(path) as f,
    ):
        str(f.report())  # AttributeError / TypeError in the report before the check


@pytest.mark.parametrize("text", ['{"a":1}', '{"a":[1]}', '{"a":null}'])
def test_user_metadata_of_non_strings_is_a_checkpoint_error(tmp_path: Path, text: str) -> None:
    path = _file(tmp_path, _meta(SEEDS[0], sparsecodecs_metadata=text))
    with (
        pytest.raises(sc.CheckpointError, match=r"sparsecodecs\.metadata is not an object of str"),
        sc.safe_open(path),
    ):
        pass


@pytest.mark.parametrize("key", ["rows", "offsets"])
@pytest.mark.parametrize("value", [2**63, 2**64, 2**70])
def test_a_block_table_integer_past_int64_is_a_checkpoint_error(
    tmp_path: Path, key: str, value: int
) -> None:
    header, body = split_checkpoint(SEEDS[1])
    meta = dict(header["__metadata__"])
    blocks = json.loads(meta["sparsecodecs.blocks"])
    name = sorted(blocks)[0]
    blocks[name][key][1] = value  # OverflowError from numpy before
    meta["sparsecodecs.blocks"] = json.dumps(blocks)
    path = _file(tmp_path, build_checkpoint({**header, "__metadata__": meta}, body))
    with pytest.raises(sc.CheckpointError, match=r"sparsecodecs\.blocks\[.*\] must be"):
        sc.load_file(path)


def test_a_deeply_nested_index_is_a_checkpoint_error(tmp_path: Path) -> None:
    files = {**FOLDER, kit.INDEX: b"[" * 100_000}
    with written(files, tmp_path) as folder, pytest.raises(sc.CheckpointError, match="malformed"):
        sc.inspect_checkpoint(folder)  # RecursionError before


# -- the checker and the runner can fail -------------------------------------------------------


@pytest.mark.parametrize(
    ("effect", "message"),
    [
        (lambda a: np.asarray(a, np.float64), r"read as float64"),
        (lambda a: [][0], r"IndexError"),
        (lambda a: np.float32(1) / np.float32(0), r"RuntimeWarning|divide by zero"),
    ],
)
def test_assert_reads_or_refuses_catches_a_broken_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, effect: Callable[[Any], Any], message: str
) -> None:
    real = sc.safe_open.get_array  # under get_tensor and load_file
    monkeypatch.setattr(sc.safe_open, "get_array", lambda self, name: effect(real(self, name)))
    with pytest.raises(AssertionError, match=message):
        assert_reads_or_refuses(_file(tmp_path, SEEDS[0]))


def test_assert_reads_or_refuses_compares_with_the_reference(tmp_path: Path) -> None:
    path = _file(tmp_path, SEEDS[0])
    reference = _reference(SEEDS[0], tmp_path)
    assert isinstance(assert_reads_or_refuses(path, reference=reference), dict)
    changed = {**reference, "ids": reference["ids"] + 1}
    with pytest.raises(AssertionError, match="should read exactly like its seed"):
        assert_reads_or_refuses(path, reference=changed)
    with pytest.raises(AssertionError, match="refused"):
        assert_reads_or_refuses(_file(tmp_path, SEEDS[0][:-1]), reference=reference)


def test_assert_reads_or_refuses_checks_slices_against_the_tensor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = sc.checkpoint.TensorSlice.__getitem__
    monkeypatch.setattr(sc.checkpoint.TensorSlice, "__getitem__",
                        lambda self, key: real(self, key) * 0)
    with pytest.raises(AssertionError, match="differs from the same rows"):
        assert_reads_or_refuses(_file(tmp_path, SEEDS[1]))


def test_the_checkpoint_runner_counts_and_saves_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    runner = _load("run_checkpoint_mutations")
    out = tmp_path / "out"
    args = ["--count", "150", "--seed", "5", "--out", str(out), "--memory", "0",
            "--tmp", str(tmp_path), "--shard-every", "3"]
    assert runner.main(args) == 0
    report = capsys.readouterr().out
    assert "150 hostile checkpoints" in report and "folder" in report
    assert not out.exists()

    from sparsecodecs.io.checkpoint import container, files, reading

    real = container._read_header

    def broken(fh: Any, path: str) -> Any:
        header = real(fh, path)
        if path.endswith("/model.safetensors"):  # a case, not a seed
            raise KeyError("injected")  # only reached for files whose container is valid
        return header

    for module in (reading, files):  # the modules that call it
        monkeypatch.setattr(module, "_read_header", broken)
    assert runner.main(args) == 1
    report = capsys.readouterr().out
    assert "FAILURE" in report and "KeyError" in report
    saved = sorted(out.glob("fail-*"))
    assert saved and (saved[0] / "case.txt").read_text()
