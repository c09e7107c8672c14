"""The 4-bit dtypes: packed two per byte in every raw-value section, checked on decode."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import sparsecodecs as sc
from sparsecodecs import PatternError
from sparsecodecs.registry import (
    FLOAT_LAYOUTS,
    NIBBLE_DTYPES,
    SUPPORTED_DTYPES,
    FrameLayoutError,
    element_bits,
    pack_nibbles,
    storage_nbytes,
    unpack_nibbles,
)
from sparsecodecs.testing import reframe, split_frame

NIBBLES = [np.dtype(t) for t in (ml_dtypes.int4, ml_dtypes.uint4, ml_dtypes.float4_e2m1fn)]
CODECS = ["raw", "bitmask", "nm", "csr", "csc", "huffman", "centroid", "hybrid",
          {"id": "hybrid", "values": "planes", "entropy": "none"},
          {"id": "hybrid", "layout": "bitmask", "values": "centroid"},
          {"id": "hybrid", "layout": "nm", "values": "planes"}]


def nibbles(
    shape: tuple[int, ...], seed: int = 0, nm: bool = True, std: float = 3.0
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    b = np.clip(np.rint(rng.standard_normal(shape) * std), -7, 7).astype(np.int64) & 0xF
    b = b.astype(np.uint8)
    if nm and shape:
        b[..., 1::4] = 0
        b[..., 2::4] = 0
    return b


def test_registered():
    assert {"int4", "uint4", "float4_e2m1fn"} == NIBBLE_DTYPES
    for dt in NIBBLES:
        assert SUPPORTED_DTYPES[dt.name] == dt
        assert element_bits(dt) == 4 and storage_nbytes(dt, 7) == 4
    assert FLOAT_LAYOUTS["float4_e2m1fn"] == (2, 1)
    assert element_bits(np.dtype(np.uint8)) == 8 and storage_nbytes(np.dtype(np.uint16), 7) == 14


def test_pack_nibbles():
    v = np.array([1, 2, 3, 15, 4], np.uint8)
    packed = pack_nibbles(v)
    assert packed.tolist() == [0x21, 0xF3, 0x04]
    assert unpack_nibbles(packed, 5, "x").tolist() == v.tolist()
    with pytest.raises(FrameLayoutError, match="x has 3 bytes, expected 2 for 4 packed"):
        unpack_nibbles(packed, 4, "x")
    with pytest.raises(FrameLayoutError, match="x: the padding nibble after the last"):
        unpack_nibbles(np.array([0x21, 0x13], np.uint8), 3, "x")
    assert pack_nibbles(np.zeros(0, np.uint8)).size == 0


@pytest.mark.parametrize("config", CODECS, ids=str)
@pytest.mark.parametrize("dtype", NIBBLES, ids=str)
@pytest.mark.parametrize("shape", [(0,), (1,), (7,), (3, 5), (6, 40), (2, 3, 12)])
def test_round_trip_bit_exact(config: object, dtype: np.dtype, shape: tuple[int, ...]):
    b = nibbles(shape, nm=True)
    a = b.view(dtype)
    frame = sc.get_codec(config).encode(a)
    out = sc.decode(frame)
    assert out.dtype == dtype and out.shape == shape
    assert np.array_equal(out.view(np.uint8), b)
    report = sc.inspect(frame)
    assert report.dense_bytes == (b.size + 1) // 2


@pytest.mark.parametrize("dtype", NIBBLES, ids=str)
def test_raw_values_are_packed(dtype: np.dtype):
    b = nibbles((3, 5), nm=False)
    frame = sc.get_codec("raw").encode(b.view(dtype))
    _, payloads = split_frame(frame)
    assert payloads == [pack_nibbles(b).tobytes()]
    assert len(payloads[0]) == 8
    assert sc.inspect(frame).theoretical_bytes == 8
    # sparse layouts count their kept values at half a byte
    sparse = nibbles((4, 8), nm=True)
    nnz = int(np.count_nonzero(sparse))
    for cid in ("bitmask", "csr", "csc"):
        f = sc.get_codec(cid).encode(sparse.view(dtype))
        assert sc.inspect(f).theoretical_bytes == (nnz + 1) // 2
        header, payloads = split_frame(f)
        names = [s[0] for s in header["sections"]]
        values = payloads[names.index("data" if cid != "bitmask" else "values")]
        assert len(values) == (nnz + 1) // 2
    assert sc.inspect(sc.get_codec("nm").encode(sparse.view(dtype))).theoretical_bytes == 8


@pytest.mark.parametrize("cid", ["raw", "bitmask", "nm", "csr"])
def test_hostile_padding_and_sizes(cid: str):
    b = nibbles((1, 12), nm=True)
    b[0, 8] = 3  # 2:4 kept at slots 0 and 3 of each group
    if cid != "nm":
        b = b[:, :11]  # an odd count of values
    frame = sc.get_codec(cid).encode(b.view(ml_dtypes.int4))
    header, payloads = split_frame(frame)
    names = [s[0] for s in header["sections"]]
    i = names.index("data" if cid == "csr" else "values")
    values = bytearray(payloads[i])
    count = {"raw": 11, "nm": 6}.get(cid, int(np.count_nonzero(b)))
    if count % 2:
        values[-1] |= 0x50
        with pytest.raises(FrameLayoutError, match="padding nibble"):
            sc.decode(reframe(frame, sections={names[i]: bytes(values)}))
    with pytest.raises(FrameLayoutError, match="packed 4-bit values"):
        sc.decode(reframe(frame, sections={names[i]: payloads[i] + b"\0"}))


def test_hostile_shape_is_refused_before_allocation():
    frame = sc.get_codec("raw").encode(np.zeros(5, ml_dtypes.uint4))
    with pytest.raises(FrameLayoutError, match=r"'values' has 3 bytes, expected 500000000000 for"):
        sc.decode(reframe(frame, header={"shape": [10**12]}), max_bytes=1 << 62)


def test_high_nibble_is_refused():
    packed_by_mistake = np.array([0x21, 0x03], np.uint8).view(ml_dtypes.int4)
    for cid in ("raw", "hybrid"):
        with pytest.raises(PatternError, match=r"holds byte 0x21 at flat index 0.*unpack_int4"):
            sc.get_codec(cid).encode(packed_by_mistake)


@pytest.mark.parametrize("dtype", NIBBLES, ids=str)
def test_planes_code_nibble_pairs(dtype: np.dtype):
    """The huffman plane of a 4-bit tensor has ceil(n/2) pair symbols; odd counts decode."""
    b = nibbles((1, 4097), nm=False, std=1.0)
    frame = sc.get_codec("huffman").encode(b.view(dtype))
    header, _ = split_frame(frame)
    assert header["meta"]["planes"] == "h"
    out = sc.decode(frame)
    assert np.array_equal(out.view(np.uint8), b)
    # 2.11 bits of entropy per nibble: the coded pairs take ~2.12 bits per value
    assert sc.inspect(frame).role_bytes["values"] < 2.2 / 8 * b.size


@pytest.mark.parametrize(("bits", "pattern"), [(8, None), (8, "2:4"), (4, None)])
def test_quantized_weights_code_close_to_their_order0_bound(bits: int, pattern: str | None):
    """hybrid on per-row quantized weights: within 2% of the order-0 bound (pattern + values;
    nibbles for int4), the target of the quantized bench cells."""
    from sparsecodecs.bench.entropy import entropy_bound
    from sparsecodecs.transforms import prune, quantize

    rng = np.random.default_rng(3)
    w = (rng.standard_t(5, (512, 768)) * 0.02).astype(np.float32)
    if pattern:
        w, _ = prune(w, pattern)
    q, _ = quantize(w, bits, "symmetric", axis=0)
    bound = entropy_bound(q, dense=pattern is None).nbytes
    frame = sc.get_codec("hybrid").encode(q)
    assert len(frame) < 1.02 * bound
    assert np.array_equal(sc.decode(frame).view(np.uint8), q.view(np.uint8))


@pytest.mark.parametrize("config", ["huffman", {"id": "hybrid", "entropy": "none"}], ids=str)
@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_one_byte_integer_plane_is_the_values(config: object, dtype: type):
    """int8/uint8: one plane, the values themselves; a raw plane decodes to a writeable copy."""
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (64, 64)).astype(np.uint8).view(dtype)  # incompressible: raw
    frame = sc.get_codec(config).encode(a)
    header, payloads = split_frame(frame)
    assert header["meta"]["planes"] == "r"
    assert a.view(np.uint8).tobytes() in payloads
    out = sc.decode(frame)
    assert out.flags.writeable and np.array_equal(out, a)
    skewed = np.clip(rng.standard_normal((64, 64)) * 4, -127, 127).astype(dtype)
    frame = sc.get_codec(config if config == "huffman" else "hybrid").encode(skewed)
    assert np.array_equal(sc.decode(frame), skewed) and sc.decode(frame).flags.writeable


@pytest.mark.parametrize(("std", "mode"), [(1.0, "h"), (None, "r")])
@pytest.mark.parametrize(
    "cid", ["huffman", {"id": "hybrid", "layout": "dense", "values": "planes"}], ids=str
)
def test_nibble_plane_padding_is_checked(cid: object, std: float | None, mode: str):
    """A frame claiming one value fewer than its plane holds must have a zero padding nibble."""
    rng = np.random.default_rng(0)
    b = nibbles((1, 600), nm=False, std=std) if std else rng.integers(0, 16, (1, 600))
    b = b.astype(np.uint8)
    b[0, -1] = 9  # the high nibble of the last byte
    frame = sc.get_codec(cid).encode(b.view(ml_dtypes.int4))
    header, _ = split_frame(frame)
    assert header["meta"]["planes"] == mode
    with pytest.raises(FrameLayoutError, match="padding nibble"):
        sc.decode(reframe(frame, header={"shape": [1, 599]}))
    b[0, -1] = 0
    frame = sc.get_codec(cid).encode(b.view(ml_dtypes.int4))
    out = sc.decode(reframe(frame, header={"shape": [1, 599]}))
    assert np.array_equal(out.view(np.uint8), b[:, :599])
