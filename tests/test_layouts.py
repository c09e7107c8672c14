"""Behaviour specific to the sparse layouts: accounting, N:M, CSR/CSC, bitmask and dtypes.

Arrays are compared by bit pattern (dtype, shape and bytes), never by value. Hostile frames are
built by editing section bytes of a valid frame and recomputing the checksum here, from the
byte layout in ``docs/format.md``, without the library's own frame writer.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from collections.abc import Callable
from itertools import combinations
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest
import scipy.sparse
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

import sparsecodecs as sc
from sparsecodecs.registry import (
    FLOAT_LAYOUTS,
    NIBBLE_DTYPES,
    SUPPORTED_DTYPES,
    FrameLayoutError,
    PatternError,
    UnsupportedDtypeError,
)
from sparsecodecs.testing import examples

LAYOUT_CODECS = ["raw", "bitmask", "nm", "nm-index", "nm-mask", "csr", "csc"]
NM_PAIRS = [(1, 2), (1, 4), (2, 4), (2, 8), (4, 8), (3, 5), (8, 16)]
METADATA = ["pattern", "index", "bitmask"]


NM_PRESETS = {"nm-index": {"metadata": "index"}, "nm-mask": {"metadata": "bitmask"}}


def codec(name: str) -> sc.Codec:
    """A layout codec by short test name (``nm-index`` is nm with index metadata)."""
    if name in NM_PRESETS:
        return sc.get_codec("nm", **NM_PRESETS[name])
    return sc.get_codec(name)


def assert_same_bits(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    assert got.tobytes() == want.tobytes()


def round_trip(c: sc.Codec, x: np.ndarray) -> bytes:
    frame = c.encode(x)
    assert_same_bits(sc.decode(frame), x)
    return frame


def uint_of(dtype: Any) -> np.dtype:
    return np.dtype(f"u{np.dtype(dtype).itemsize}")


# -- frames, read and edited independently of the library ---------------------------------------


def frame_sections(frame: bytes) -> dict[str, tuple[int, int]]:
    """{name: (offset, nbytes)} from the section table of the JSON header."""
    version, _, hlen = struct.unpack_from("<HHI", frame, 4)
    stored = frame[12 : 12 + hlen]
    if version >= 2:  # raw DEFLATE against the preset dictionary (docs/format.md)
        dictionary = (Path(sc.__file__).parent / "registry" / "header_v2.dict").read_bytes()
        stored = zlib.decompressobj(-15, zdict=dictionary).decompress(stored)
    header = json.loads(stored)
    offset, table = 12 + hlen, {}
    for name, _role, nbytes in header["sections"]:
        table[name] = (offset, nbytes)
        offset += nbytes
    assert offset == len(frame) - 8
    return table


def section(frame: bytes, name: str, dtype: Any = np.uint8) -> np.ndarray:
    offset, nbytes = frame_sections(frame)[name]
    return np.frombuffer(frame, np.uint8, nbytes, offset).view(dtype)


def patched(frame: bytes, name: str, edit: Callable[[np.ndarray], Any], dtype: Any = np.uint8):
    """``frame`` with section ``name`` edited in place (seen as ``dtype``), checksum redone."""
    offset, nbytes = frame_sections(frame)[name]
    body = bytearray(frame[:-8])
    edit(np.frombuffer(body, np.uint8, nbytes, offset).view(dtype))
    out = bytes(body) + struct.pack("<Q", xxhash.xxh3_64_intdigest(bytes(body)))
    assert out != frame, "the edit changed nothing"
    return out


def assert_layout_error(frame: bytes, match: str) -> None:
    with pytest.raises(FrameLayoutError, match=match):
        sc.decode(frame)


# -- inputs -----------------------------------------------------------------------------------


def nm_sparse(shape: tuple[int, ...], n: int, m: int, dtype: Any, seed: int) -> np.ndarray:
    """Random bit patterns with 0..n non-zeros per group of m along the last axis."""
    rng = np.random.default_rng(seed)
    udt = uint_of(dtype)
    rows, cols = math.prod(shape[:-1]), shape[-1]
    gpr = -(-cols // m)
    ngroups = rows * gpr
    bits = rng.integers(1, np.iinfo(udt).max, (ngroups, m), dtype=udt, endpoint=True)
    rank = rng.random((ngroups, m)).argsort(axis=1).argsort(axis=1)
    keep = rank < rng.integers(0, n + 1, (ngroups, 1))
    dense = np.where(keep, bits, udt.type(0)).reshape(rows, gpr * m)[:, :cols]
    return np.ascontiguousarray(dense).reshape(shape).view(dtype)


def sparse_bits(shape: tuple[int, ...], dtype: Any, density: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    udt = uint_of(dtype)
    bits = rng.integers(1, np.iinfo(udt).max, shape, dtype=udt, endpoint=True)
    return np.where(rng.random(shape) < density, bits, udt.type(0)).view(dtype)


# -- the foundation's acceptance test: accounting of a 2:4-pruned bfloat16 matrix ---------------

SIDE = 4096
DENSE = SIDE * SIDE * 2
NNZ = SIDE * SIDE // 2
GROUPS = SIDE * SIDE // 4


@pytest.fixture(scope="module")
def pruned_24() -> np.ndarray:
    """A seeded gaussian bfloat16 matrix, magnitude-pruned to 2:4 (ties go to the lower index)."""
    w = np.random.default_rng(24).standard_normal((SIDE, SIDE), np.float32)
    w = w.astype(ml_dtypes.bfloat16)
    mag = np.abs(w.astype(np.float32)).reshape(-1, 4)
    beaten = np.zeros(mag.shape, np.int8)
    for i, j in combinations(range(4), 2):
        i_wins = mag[:, i] >= mag[:, j]
        beaten[:, j] += i_wins
        beaten[:, i] += ~i_wins
    bits = w.view(np.uint16).reshape(-1, 4) * (beaten < 2)
    assert ((bits != 0).sum(axis=1) == 2).all()
    return bits.reshape(SIDE, SIDE).view(ml_dtypes.bfloat16)


@pytest.mark.parametrize(
    ("name", "index_bytes", "max_effective"),
    [
        ("nm-index", GROUPS * 2 * 2 // 8, None),  # 2 bits per kept value
        ("nm", -(-GROUPS // 3), 0.542),  # 3 base-6 pattern codes per byte
        ("nm-mask", GROUPS * 4 // 8, None),
        ("bitmask", SIDE * SIDE // 8, None),
        ("csr", NNZ * 2 + (SIDE + 1) * 4, 1.001),  # uint16 indices, uint32 indptr
        ("csc", NNZ * 2 + (SIDE + 1) * 4, 1.001),
    ],
)
def test_accounting_of_24_pruned_bfloat16(
    pruned_24: np.ndarray, name: str, index_bytes: int, max_effective: float | None
):
    frame = codec(name).encode(pruned_24)
    report = sc.inspect(frame)
    header = report.role_bytes["header"]
    assert report.dense_bytes == DENSE
    assert report.theoretical_bytes == NNZ * 2
    assert report.theoretical == 0.5
    assert report.role_bytes == {
        "header": header,
        "values": NNZ * 2,
        "index": index_bytes,
        "codebook": 0,
    }
    assert sum(report.role_bytes.values()) == report.frame_bytes == len(frame)
    assert 0 < header < 400
    if max_effective is None:  # exactly 56.25 % plus the header
        assert report.frame_bytes == DENSE * 5625 // 10000 + header
    else:
        assert report.effective <= max_effective


# -- nm ---------------------------------------------------------------------------------------


def test_nm_pattern_error_names_group_and_columns():
    x = np.zeros((2, 3, 8), np.float32)
    x[1, 2, 0:3] = [1.0, -2.0, 3.0]
    x[1, 2, 5] = 4.0  # 1 non-zero in the next group: fine
    with pytest.raises(
        PatternError,
        match=r"group 10 \(row index \(1, 2\), columns 0:4\) has 3 "
        r"non-zeros, more than n=2; 1 of 12 groups",
    ):
        sc.get_codec("nm").encode(x)


def test_nm_pattern_error_in_a_padded_last_group():
    x = np.zeros((1, 7), np.float16)
    x[0, 4:7] = 1.0
    with pytest.raises(PatternError, match=r"group 1 \(row index \(0,\), columns 4:7\)"):
        sc.get_codec("nm").encode(x)
    with pytest.raises(ValueError, match="more than n=2"):  # PatternError is a ValueError
        sc.get_codec("nm").encode(-x.reshape(7))


def test_nm_negative_zero_counts_as_a_non_zero():
    x = np.array([[-0.0, -0.0, 1.0, 0.0]], np.float32)
    with pytest.raises(PatternError, match="3 non-zeros"):
        sc.get_codec("nm").encode(x)


@pytest.mark.parametrize("metadata", METADATA)
@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 7), (1, 1), (4, 2), (), (9,), (0, 5), (3, 0)])
def test_nm_padding_round_trips(metadata: str, shape: tuple[int, ...]):
    x = nm_sparse(shape or (1,), 2, 4, np.float32, seed=len(shape)).reshape(shape)
    frame = round_trip(sc.get_codec("nm", metadata=metadata), x)
    rows, cols = math.prod(shape[:-1]), (shape or (1,))[-1]
    padded_groups = rows * -(-cols // 4)
    assert frame_sections(frame)["values"][1] == padded_groups * 2 * 4


@pytest.mark.parametrize("dtype", [ml_dtypes.bfloat16, np.float64], ids=["bfloat16", "float64"])
@pytest.mark.parametrize(("n", "m"), NM_PAIRS, ids=[f"{n}:{m}" for n, m in NM_PAIRS])
@pytest.mark.parametrize("metadata", METADATA)
def test_nm_round_trips_every_pattern_and_metadata(metadata: str, n: int, m: int, dtype: Any):
    c = sc.get_codec("nm", n=n, m=m, metadata=metadata)
    for seed, shape in enumerate([(3, 2 * m), (2, 3, 2 * m + 1), (5, m - 1)]):
        x = nm_sparse(shape, n, m, dtype, seed)
        frame = round_trip(c, x)
        assert sc.inspect(frame).config == {"n": n, "m": m, "metadata": metadata}


def test_nm_groups_with_fewer_than_n_non_zeros_keep_zero_slots():
    x = np.array([[0, 0, 0, 0, 0, 0, 5, 0], [0, 7, 0, 0, 0, 0, 0, 0]], np.int16)
    frame = round_trip(sc.get_codec("nm"), x)
    # Each group keeps its non-zeros plus its lowest zero positions, in position order.
    assert section(frame, "values", "<i2").tolist() == [0, 0, 0, 5, 0, 7, 0, 0]
    assert sc.inspect(frame).theoretical_bytes == 4 * 2 * 2


def test_nm_aliases_preset_their_parameters():
    assert sc.get_codec("2:4") == sc.get_codec("nm", n=2, m=4, metadata="pattern")
    assert sc.get_codec("bitmask-2:4").get_config() == {
        "id": "nm",
        "n": 2,
        "m": 4,
        "metadata": "bitmask",
    }
    assert sc.get_codec("2:4", metadata="index").get_config()["metadata"] == "index"
    x = nm_sparse((4, 8), 2, 4, np.float16, seed=5)
    frame = round_trip(sc.get_codec("bitmask-2:4"), x)
    assert list(frame_sections(frame)) == ["values", "mask"]
    assert frame == sc.get_codec("nm", metadata="bitmask").encode(x)


def set_items(items: dict[int, int]) -> Callable[[np.ndarray], None]:
    """An edit writing ``{position: value}`` into a section array."""

    def edit(a: np.ndarray) -> None:
        for position, value in items.items():
            a[position] = value

    return edit


def hostile_nm(case_id, params, shape, section, edits, match, dtype="u1"):
    """A test case: an nm frame of ``shape`` with ``edits`` made to ``section``."""
    return pytest.param(params, shape, section, dtype, set_items(edits), match, id=case_id)


PATTERN_24, INDEX_24, MASK_24 = {}, {"metadata": "index"}, {"metadata": "bitmask"}
PATTERN_35, INDEX_35 = {"n": 3, "m": 5}, {"n": 3, "m": 5, "metadata": "index"}
NOT_ASCENDING = "not 2 distinct ascending values"
BAD_WORD_35 = f"holds a word >= {10**19}"  # 10 patterns, 19 per 64-bit word
NOT_N_BITS = "without exactly n=2 of m=4 bits"
NM_HOSTILE = [
    hostile_nm("pattern-216", PATTERN_24, (2, 8), "pattern", {0: 216}, "holds a byte >= 216"),
    hostile_nm("pattern-255", PATTERN_24, (2, 8), "pattern", {1: 255}, "holds a byte >= 216"),
    hostile_nm("pattern-tail", PATTERN_24, (1, 16), "pattern", {1: 6}, "non-zero codes after"),
    hostile_nm("pattern-3:5", PATTERN_35, (2, 5), "pattern", {0: 10**19}, BAD_WORD_35, "<u8"),
    hostile_nm("index-range", INDEX_35, (2, 5), "index", {0: 0b111}, "values below m=5"),
    hostile_nm("index-descending", INDEX_24, (2, 8), "index", {0: 0b0001}, NOT_ASCENDING),
    hostile_nm("index-repeated", INDEX_24, (2, 8), "index", {0: 0b0101}, NOT_ASCENDING),
    hostile_nm("index-padding", INDEX_35, (1, 5), "index", {1: 0b10}, "padding bits"),
    hostile_nm("mask-3-bits", MASK_24, (2, 8), "mask", {0: 0b0111}, NOT_N_BITS),
    hostile_nm("mask-1-bit", MASK_24, (2, 8), "mask", {0: 0b1000}, NOT_N_BITS),
]


@pytest.mark.parametrize(("params", "shape", "name", "dtype", "edit", "match"), NM_HOSTILE)
def test_nm_hostile_frames(params, shape, name, dtype, edit, match):
    c = sc.get_codec("nm", **params)
    x = np.zeros(shape, np.float32)
    x.reshape(-1, c.m)[:, : c.n] = 1.5  # every group keeps positions 0 .. n-1
    frame = round_trip(c, x)
    assert_layout_error(patched(frame, name, edit, dtype), match)


# -- csr and csc ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "shape", "nnz", "indices_size", "indptr_size"),
    [
        ("csr", (2, 256), 255, 1, 1),
        ("csr", (2, 257), 256, 2, 2),
        ("csr", (1, 65537), 65536, 4, 4),
        ("csc", (256, 2), 255, 1, 1),
        ("csc", (257, 3), 0, 2, 1),
        ("csc", (70000, 1), 70000, 4, 4),
    ],
)
def test_compressed_index_dtypes_are_the_narrowest(name, shape, nnz, indices_size, indptr_size):
    x = np.zeros(shape, np.uint8)
    x.reshape(-1)[:nnz] = 1
    frame = round_trip(sc.get_codec(name), x)
    major = shape[1] if name == "csc" else shape[0]
    table = frame_sections(frame)
    assert table["data"][1] == nnz
    assert table["indices"][1] == nnz * indices_size
    assert table["indptr"][1] == (major + 1) * indptr_size


@pytest.mark.parametrize("name", ["csr", "csc"])
@pytest.mark.parametrize("shape", [(), (7,), (6, 5), (2, 3, 5), (2, 2, 3, 4)])
def test_compressed_matches_scipy_on_the_2d_view(name: str, shape: tuple[int, ...]):
    if shape == ():
        x = np.array(-0.0, np.float16)  # non-zero by bit pattern
    else:
        x = sparse_bits(shape, np.float16, 0.4, seed=sum(shape))
    frame = round_trip(sc.get_codec(name), x)
    view = x.view(np.uint16).reshape(-1, (shape or (1,))[-1])
    ref = scipy.sparse.csr_matrix(view) if name == "csr" else scipy.sparse.csc_matrix(view)
    ref.sort_indices()
    assert ref.nnz > 0
    assert sc.inspect(frame).theoretical_bytes == ref.nnz * 2
    np.testing.assert_array_equal(section(frame, "data", "<u2"), ref.data)
    for part in ("indices", "indptr"):
        ours = section(frame, part)
        ours = ours.view(f"<u{ours.size // getattr(ref, part).size}")
        np.testing.assert_array_equal(ours.astype(np.int64), getattr(ref, part))


# One matrix (and its transpose for csc, which gives the same sections) with an empty row:
# indptr [0, 2, 2, 4], indices [0, 2, 1, 3]. The indices restart across a row boundary.
CSR_BASE = np.array([[1, 0, 2, 0], [0, 0, 0, 0], [0, 3, 0, 4]], np.float32)


@pytest.mark.parametrize(
    ("name", "x"), [("csr", CSR_BASE), ("csc", CSR_BASE.T)], ids=["csr", "csc"]
)
@pytest.mark.parametrize(
    ("part", "edit", "match"),
    [
        ("indptr", set_items({1: 3}), "not monotone"),
        ("indptr", set_items({3: 3}), "must start at 0 and end at nnz=4"),
        ("indptr", set_items({0: 1}), "must start at 0"),
        ("indices", set_items({3: 4}), "holds 4, out of range for an axis of length 4"),
        ("indices", set_items({2: 3, 3: 1}), "not strictly increasing within each row"),
        ("indices", set_items({3: 1}), "not strictly increasing within each row"),
    ],
)
def test_compressed_hostile_frames(name: str, x: np.ndarray, part: str, edit, match: str):
    frame = round_trip(sc.get_codec(name), x)
    assert section(frame, "indptr").tolist() == [0, 2, 2, 4]
    assert section(frame, "indices").tolist() == [0, 2, 1, 3]
    assert_layout_error(patched(frame, part, edit), match)


# -- bitmask ----------------------------------------------------------------------------------

# Ten elements, non-zero at 0, 2 and 9: mask bytes 0b101, 0b10.
BITMASK_BASE = np.array([1, 0, 2, 0, 0, 0, 0, 0, 0, 3], np.float32)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (set_items({0: 0b111}), "4 set bits but meta nnz=3"),
        (set_items({0: 0b100}), "2 set bits but meta nnz=3"),
        (set_items({0: 0b100, 1: 0b110}), "set bits past the last element"),
        (set_items({0: 0b100, 1: 0b10000010}), "set bits past the last element"),
    ],
)
def test_bitmask_hostile_frames(edit, match: str):
    frame = round_trip(sc.get_codec("bitmask"), BITMASK_BASE)
    assert section(frame, "mask").tolist() == [0b101, 0b10]
    assert_layout_error(patched(frame, "mask", edit), match)


def test_bitmask_keeps_negative_zero_and_nan_as_values():
    nan = np.uint32(0x7FA00001)  # a signalling NaN with a payload
    bits = np.array([0, 0x80000000, nan, 0, 0x3F800000, 0], np.uint32)
    x = bits.view(np.float32).reshape(2, 3)
    frame = round_trip(sc.get_codec("bitmask"), x)
    assert section(frame, "mask").tolist() == [0b010110]
    assert section(frame, "values", "<u4").tolist() == [0x80000000, 0x7FA00001, 0x3F800000]
    assert sc.inspect(frame).theoretical_bytes == 3 * 4


# -- dtypes -----------------------------------------------------------------------------------


def special_bits(name: str) -> np.ndarray:
    """Bit patterns worth keeping: every byte for 1-byte dtypes; else signed zero, infinities,
    NaN payloads, subnormals, extremes and a few random patterns."""
    udt = uint_of(SUPPORTED_DTYPES[name])
    width = udt.itemsize * 8
    if name in NIBBLE_DTYPES:  # every 4-bit value; the high nibble must stay zero
        return np.arange(16, dtype=udt)
    if width == 8:
        return np.arange(256, dtype=udt)
    sign, ones = 1 << (width - 1), (1 << width) - 1
    patterns = {0, 1, sign, sign | 1, ones, sign - 1, ones // 3}
    if name in FLOAT_LAYOUTS:
        exp_bits, man_bits = FLOAT_LAYOUTS[name]
        inf = ((1 << exp_bits) - 1) << man_bits
        top = 1 << (man_bits - 1)
        subnormal_max = (1 << man_bits) - 1
        patterns |= {
            inf,
            sign | inf,
            inf | 1,
            inf | top,
            sign | inf | top | 5,
            subnormal_max,
            sign | subnormal_max,
            inf - 1,
            1 << man_bits,
        }
    rng = np.random.default_rng(width)
    extra = rng.integers(0, np.iinfo(udt).max, 9, dtype=udt, endpoint=True)
    return np.concatenate([np.array(sorted(patterns), udt), extra])


def two_per_group(bits: np.ndarray) -> np.ndarray:
    """Rows of 4 holding the patterns two at a time, cycling through all 6 2:4 placements,
    with one all-zero row: valid input for every layout codec."""
    pairs = list(combinations(range(4), 2))
    vals = np.concatenate([bits, np.zeros(len(bits) % 2, bits.dtype)]).reshape(-1, 2)
    out = np.zeros((len(vals) + 1, 4), bits.dtype)
    for r, (a, b) in enumerate(vals):
        out[r, list(pairs[r % 6])] = a, b
    return out


def memory_layouts(x: np.ndarray) -> dict[str, np.ndarray]:
    """``x`` as C-ordered, Fortran-ordered, strided, reversed and (wider than a byte)
    big-endian arrays."""
    strided = np.repeat(x, 2, axis=0)[::2]
    assert not strided.flags.c_contiguous
    layouts = {"C": x, "F": np.asfortranarray(x), "strided": strided, "reversed": x[::-1, ::-1]}
    if x.dtype.itemsize > 1:
        swapped = x.view(uint_of(x.dtype)).byteswap().view(x.dtype.newbyteorder(">"))
        assert swapped.dtype.byteorder == ">"
        layouts["big-endian"] = swapped
    return layouts


@pytest.mark.parametrize("name", LAYOUT_CODECS)
@pytest.mark.parametrize("dtype_name", list(SUPPORTED_DTYPES))
def test_every_dtype_round_trips_special_values(name: str, dtype_name: str):
    dtype = SUPPORTED_DTYPES[dtype_name]
    x = two_per_group(special_bits(dtype_name)).view(dtype)
    c = codec(name)
    for layout, arr in memory_layouts(x).items():
        out = sc.decode(c.encode(arr))
        assert out.dtype == arr.dtype, layout
        assert out.flags.writeable, layout
        assert_same_bits(out, arr)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ([[1.0, 0.0]], "expected a numpy.ndarray, got builtins.list"),
        (np.array([True, False]), "dtype bool is not supported; supported dtypes: float64"),
        (np.zeros(4, np.complex64), "dtype complex64 is not supported"),
        (np.array([1.0, None], object), "dtype object is not supported"),
    ],
    ids=["list", "bool", "complex", "object"],
)
def test_unsupported_input_is_a_type_error(value: Any, match: str):
    for name in LAYOUT_CODECS:
        with pytest.raises(UnsupportedDtypeError, match=match) as info:
            codec(name).encode(value)
        assert isinstance(info.value, TypeError)


@settings(max_examples=examples(100), deadline=None)
@given(st.integers(1, 16), st.integers(0, 70), st.integers(0, 2**32 - 1))
def test_pack_fields_is_the_lsb_first_bit_string(bits: int, count: int, seed: int):
    """pack_fields (eight fields a word up to 8 bits, bit by bit above) writes the fields' bits
    LSB first as np.packbits does, unpack_fields inverts it, and a set padding bit is refused."""
    from sparsecodecs.codecs._common import pack_fields, unpack_fields

    rng = np.random.default_rng(seed)
    values = rng.integers(0, 1 << bits, count, dtype=np.uint64).astype(
        np.uint8 if bits <= 8 else np.uint16)
    bit_string = ((values.astype(np.uint64)[:, None] >> np.arange(bits, dtype=np.uint64)) & 1)
    want = np.packbits(bit_string.astype(np.uint8).reshape(-1), bitorder="little")
    packed = pack_fields(values, bits)
    assert packed.tobytes() == want.tobytes()
    assert unpack_fields(packed, bits, count, "x").tolist() == values.tolist()
    if count * bits % 8:
        bad = packed.copy()
        bad[-1] |= 0x80
        with pytest.raises(FrameLayoutError, match="padding bits"):
            unpack_fields(bad, bits, count, "x")
