"""Checks that a planted bug would otherwise slip past: each test here fails if one validation
step of the frame or checkpoint readers is removed (issue 15, item 5; ``docs/security.md`` lists
the mutations tried and the test that catches each).

A JSON ``true`` is an ``int`` in Python (``isinstance(True, int)``), so every integer field of a
header must refuse booleans explicitly; a stored checksum of 0 must be checked like any other
value (a reader that treats 0 as "no checksum" accepts every corrupted frame whose last 8 bytes
are zeroed).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import sparsecodecs as sc
from sparsecodecs.registry import ChecksumError, FrameHeaderError, FrameLayoutError, read_frame
from sparsecodecs.testing import build_checkpoint, reframe, seal, split_checkpoint


def _raw(n: int) -> bytes:
    return sc.get_codec("raw").encode(np.arange(n, dtype=np.uint8))


# -- the checksum ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 16])
def test_a_zero_stored_checksum_is_checked_like_any_other(n: int) -> None:
    frame = _raw(n)
    assert struct.unpack("<Q", frame[-8:])[0] != 0
    with pytest.raises(ChecksumError, match="frame stores 0x0000000000000000"):
        sc.decode(frame[:-8] + bytes(8))
    with pytest.raises(ChecksumError):
        sc.inspect(frame[:-8] + bytes(8))


def test_a_corrupted_frame_with_a_zero_checksum_is_refused() -> None:
    body = bytearray(_raw(16)[:-8])
    body[-1] ^= 0x40  # a changed value: without the checksum it would decode as 0x4f
    with pytest.raises(ChecksumError):
        sc.decode(bytes(body) + bytes(8))


def test_a_frame_whose_checksum_really_is_zero_is_not_special() -> None:
    """The check compares; it never skips. A body hashing to some value v decodes only with v."""
    frame = _raw(4)
    assert seal(frame[:-8]) == frame
    with pytest.raises(ChecksumError):
        read_frame(frame[:-8] + struct.pack("<Q", struct.unpack("<Q", frame[-8:])[0] ^ 1))


# -- booleans are not integers ---------------------------------------------------------------------


@pytest.mark.parametrize(("n", "value"), [(1, True), (0, False)])
def test_a_boolean_section_size_is_a_header_error(n: int, value: bool) -> None:
    frame = _raw(n)
    # version 1: the JSON stays readable here (version 2 runs the same checks after inflating)
    lying = reframe(frame, header={"sections": [["values", "values", value]]}, version=1)
    assert json.loads(lying[12 : 12 + struct.unpack_from("<I", lying, 8)[0]])["sections"] == [
        ["values", "values", value]
    ]
    with pytest.raises(FrameHeaderError, match=r"section table entry 0 must be"):
        sc.decode(lying)
    with pytest.raises(FrameHeaderError):
        sc.inspect(lying)


def test_a_boolean_section_size_among_others_is_a_header_error() -> None:
    frame = sc.get_codec("csr").encode(np.eye(1, dtype=np.uint8))  # indices: 1 byte
    table = [["data", "values", 1], ["indices", "index", True], ["indptr", "index", 2]]
    with pytest.raises(FrameHeaderError, match="section table entry 1"):
        sc.decode(reframe(frame, header={"sections": table}))


@pytest.mark.parametrize("shape", [[True], [True, True], [1, True]])
def test_a_boolean_dimension_is_a_header_error(shape: list[Any]) -> None:
    frame = reframe(_raw(1), header={"shape": shape})
    with pytest.raises(FrameHeaderError, match="invalid dimension True"):
        sc.decode(frame)


def test_a_boolean_meta_integer_is_a_layout_error() -> None:
    frame = sc.get_codec("csr").encode(np.eye(1, dtype=np.uint8))
    with pytest.raises(FrameLayoutError, match="meta field 'nnz' must be an integer, got True"):
        sc.decode(reframe(frame, header={"meta": {"nnz": True}}))


# -- checkpoint headers ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def blocked(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("ckpt") / "m.safetensors"
    e = np.arange(40, dtype=np.int32).reshape(10, 4)
    sc.save_file({"e": e, "one": np.ones(1, np.uint8)}, path, codec="raw", block_bytes=48)
    return path.read_bytes()


def _open(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "x.safetensors"
    path.write_bytes(data)
    sc.load_file(path)


def _with_table(data: bytes, key: str, edit: Any) -> bytes:
    header, body = split_checkpoint(data)
    meta = dict(header["__metadata__"])
    table = json.loads(meta[key])
    edit(table)
    meta[key] = json.dumps(table)
    return build_checkpoint({**header, "__metadata__": meta}, body)


def test_the_checkpoint_edits_below_leave_a_readable_file(tmp_path: Path, blocked: bytes) -> None:
    _open(tmp_path, blocked)
    _open(tmp_path, _with_table(blocked, "sparsecodecs.blocks", lambda t: None))


def test_a_boolean_data_offset_is_refused(tmp_path: Path, blocked: bytes) -> None:
    header, body = split_checkpoint(blocked)
    first = min(("e", "one"), key=lambda k: header[k]["data_offsets"][0])
    assert header[first]["data_offsets"][0] == 0
    header[first] = {**header[first], "data_offsets": [False, header[first]["data_offsets"][1]]}
    with pytest.raises(sc.CheckpointError, match="malformed header entry"):
        _open(tmp_path, build_checkpoint(header, body))


def test_a_boolean_shape_in_the_entry_is_refused(tmp_path: Path, blocked: bytes) -> None:
    header, body = split_checkpoint(blocked)
    a, b = header["one"]["data_offsets"]
    header["one"] = {**header["one"], "shape": [b - a, True]}  # the same number of bytes
    with pytest.raises(sc.CheckpointError, match="malformed header entry"):
        _open(tmp_path, build_checkpoint(header, body))


def test_a_boolean_in_the_tensor_table_is_refused(tmp_path: Path, blocked: bytes) -> None:
    def edit(table: dict[str, Any]) -> None:
        table["one"]["shape"] = [True]

    with pytest.raises(sc.CheckpointError, match="tensor table entry 'one' is malformed"):
        _open(tmp_path, _with_table(blocked, "sparsecodecs.tensors", edit))


def test_a_boolean_in_the_block_table_is_refused(tmp_path: Path, blocked: bytes) -> None:
    def edit(table: dict[str, Any]) -> None:
        table["e"]["rows"][1] = True  # rows [0, 3, ...] -> [0, True, ...]: 1 is a valid bound
        table["e"]["rows"][0] = False

    with pytest.raises(sc.CheckpointError, match=r"sparsecodecs.blocks\['e'\] must be"):
        _open(tmp_path, _with_table(blocked, "sparsecodecs.blocks", edit))


def test_overlapping_entries_are_refused(tmp_path: Path, blocked: bytes) -> None:
    """Entries must tile the data area: one starting inside another is refused as such, even
    when the sizes still add up to the file's length."""
    header, body = split_checkpoint(blocked)
    second = max(("e", "one"), key=lambda k: header[k]["data_offsets"][0])
    a, b = header[second]["data_offsets"]
    header[second] = {**header[second], "shape": [b - a + 1], "data_offsets": [a - 1, b]}
    with pytest.raises(sc.CheckpointError, match="entries overlap or leave a gap"):
        _open(tmp_path, build_checkpoint(header, body))


# -- codec parameters and codes behind other checks ------------------------------------------------


@pytest.mark.parametrize(("n", "m"), [(4, 4), (2, 2), (5, 4)])
def test_an_nm_pattern_needs_n_below_m(n: int, m: int) -> None:
    with pytest.raises(sc.CodecConfigError, match=f"n must be < m, got n={n}, m={m}"):
        sc.get_codec("nm", n=n, m=m)
    frame = sc.get_codec("nm", n=1, m=m).encode(np.eye(m, dtype=np.float32))
    with pytest.raises(sc.SparseCodecsError, match="n must be < m"):
        sc.decode(reframe(frame, header={"config": {"n": n, "m": m, "metadata": "pattern"}}))


def test_a_pattern_code_of_c_m_n_is_refused_by_the_code_reader() -> None:
    """The N:M code reader is the last check before the compiled scatter indexes its table with
    each code; the codes reaching it are already checked by the section decoders (pattern words,
    masks, positions, Huffman alphabets), so it is tested directly."""
    from sparsecodecs.codecs.nm import code_reader, nm_tables

    ncodes = nm_tables(2, 4).ncodes  # C(4, 2) = 6
    assert ncodes == 6
    packed, lut = code_reader(np.array([0, 5, 3], np.uint16), ncodes)
    assert packed.tolist() == [0, 5, 3] and len(lut) == ncodes
    with pytest.raises(FrameLayoutError, match="pattern code 6 >= 6 patterns"):
        code_reader(np.array([0, 6], np.uint16), ncodes)


@pytest.mark.parametrize("extra", [b"\0", b" " * 8, b"SPCF"])
def test_bytes_after_the_last_tensor_are_refused(
    tmp_path: Path, blocked: bytes, extra: bytes
) -> None:
    with pytest.raises(sc.CheckpointError, match=f"{len(extra)} bytes after the last tensor"):
        _open(tmp_path, blocked + extra)


@pytest.mark.parametrize("length", [0, 1])
def test_a_header_too_short_for_a_json_object_is_refused_first(
    tmp_path: Path, blocked: bytes, length: int
) -> None:
    data = struct.pack("<Q", length) + b"{" + blocked[9:]
    with pytest.raises(sc.CheckpointError, match=f"header length {length} at offset 0"):
        _open(tmp_path, data)


def test_data_offsets_that_run_backwards_are_malformed(tmp_path: Path, blocked: bytes) -> None:
    """``[end, start]`` is refused as such, also for a dtype whose size cannot be checked."""
    header, body = split_checkpoint(blocked)
    first = min(("e", "one"), key=lambda k: header[k]["data_offsets"][0])
    a, b = header[first]["data_offsets"]
    header[first] = {"dtype": "C64", "shape": [], "data_offsets": [b, a]}
    with pytest.raises(sc.CheckpointError, match="malformed header entry"):
        _open(tmp_path, build_checkpoint(header, body))
