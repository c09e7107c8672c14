"""The ``centroid`` codec: the distinct values once, and an index per element.

Arrays are compared by bit pattern. Hostile frames are rewritten behind a valid checksum with
``sparsecodecs.testing.reframe``.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sparsecodecs as sc
from sparsecodecs.registry import FrameLayoutError, PatternError
from sparsecodecs.testing import assert_bits_equal, examples, reframe, split_frame

K_VALUES = [1, 2, 255, 256, 257, 4096, 65535, 65536]
DTYPES = [np.uint8, np.uint16, ml_dtypes.bfloat16, np.float32]


def clustered(k: int, dtype: type, seed: int = 0) -> np.ndarray:
    """An array with exactly ``k`` distinct bit patterns (NaN payloads and -0.0 included),
    each at least once, the rest drawn with a skew so some indices are far more common."""
    dt = np.dtype(dtype)
    udt = np.dtype(f"u{dt.itemsize}")
    rng = np.random.default_rng(seed)
    top = 1 << (8 * dt.itemsize)
    patterns = rng.permutation(top)[:k] if top <= 1 << 16 else np.unique(
        rng.integers(0, top, 2 * k + 10, dtype=np.uint64))[:k]
    patterns = rng.permutation(patterns)
    assert patterns.size == k
    size = k + max(1000, k)
    size += -size % 8
    extra = np.minimum(rng.geometric(0.05, size - k) - 1, k - 1)
    bits = rng.permutation(np.concatenate([patterns, patterns[extra]])).astype(udt)
    return bits.view(dt)


def sections(frame: bytes) -> dict[str, tuple[str, bytes]]:
    header, payloads = split_frame(frame)
    return {name: (role, p) for (name, role, _), p in zip(header["sections"], payloads,
                                                          strict=True)}


def index_bits(k: int) -> int:
    return math.ceil(math.log2(k)) if k > 1 else 0


# every k a dtype can hold (uint8 has only 256 bit patterns)
CASES = [
    pytest.param(k, d, id=f"{k}-{np.dtype(d).name}")
    for k in K_VALUES
    for d in DTYPES
    if k <= 1 << (8 * np.dtype(d).itemsize)
]


@pytest.mark.parametrize("coding", ["auto", "packed"])
@pytest.mark.parametrize(("k", "dtype"), CASES)
def test_round_trip(k: int, dtype: type, coding: str):
    x = clustered(k, dtype, seed=k).reshape(-1, 8)
    frame = sc.get_codec("centroid", index_coding=coding).encode(x)
    assert_bits_equal(sc.decode(frame), x)
    report = sc.inspect(frame)
    header, _ = split_frame(frame)
    mode = header["meta"]["index"]
    assert header["meta"]["k"] == k
    secs = sections(frame)
    role, centroids = secs.pop("c.centroids")
    assert role == "codebook"
    udt = np.dtype(f"<u{x.itemsize}")
    assert centroids == np.unique(x.view(udt)).tobytes()  # sorted distinct bit patterns
    if mode == "p":
        assert list(secs) == ["c.idx"]
        assert len(secs["c.idx"][1]) == (x.size * index_bits(k) + 7) // 8
        book = 0
    else:
        assert coding == "auto"
        assert 1 < k <= 1 << 15  # only a prefix code of at most 15 bits: k <= 2**15
        assert [(n, r) for n, (r, _) in secs.items()] == [
            ("c.idx.codebook", "codebook"), ("c.idx.bits", "values")]
        book = len(secs["c.idx.codebook"][1])
    assert report.role_bytes == {
        "header": report.frame_bytes - sum(s.nbytes for s in report.sections),
        "values": sum(s.nbytes for s in report.sections if s.name.startswith("c.idx")) - book,
        "index": 0,
        "codebook": k * x.itemsize + book,
    }


@pytest.mark.parametrize("k", [3, 16, 200, 3000, 40000])
def test_auto_index_coding_is_never_larger_than_packed(k: int):
    x = clustered(k, np.float32, seed=k)
    auto = sc.inspect(sc.get_codec("centroid").encode(x))
    packed = sc.inspect(sc.get_codec("centroid", index_coding="packed").encode(x))
    # Huffman's size estimate is an upper bound, so the choice can only be right or a tie
    assert auto.frame_bytes - auto.role_bytes["header"] <= (
        packed.frame_bytes - packed.role_bytes["header"])
    if 1 < k <= 256:  # skewed indices, small codebook: Huffman must win outright
        assert auto.frame_bytes < packed.frame_bytes


def test_packed_indices_layout():
    # k = 5 distinct values -> 3-bit indices into the sorted bit patterns, packed LSB first
    x = np.array([7.5, 2.0, 7.5, 0.0, -1.0, -1.0, np.inf], np.float32)
    frame = sc.get_codec("centroid", index_coding="packed").encode(x)
    uniq = np.unique(x.view(np.uint32))
    idx = np.searchsorted(uniq, x.view(np.uint32))
    packed = sum(int(i) << (3 * j) for j, i in enumerate(idx))
    assert sections(frame)["c.idx"][1] == packed.to_bytes(3, "little")
    assert sections(frame)["c.centroids"][1] == uniq.astype("<u4").tobytes()


@pytest.mark.parametrize("dtype", [np.uint32, np.float32])
def test_more_than_65536_distinct_values_raise_pattern_error(dtype: type):
    x = np.arange(1, 65538, dtype=np.uint32).view(dtype)
    with pytest.raises(PatternError, match="more than 65536 distinct values"):
        sc.get_codec("centroid").encode(x)


@pytest.mark.parametrize("dtype", [np.float16, np.int8, ml_dtypes.float8_e4m3fn, np.float64])
def test_round_trip_of_other_dtypes(dtype: type):
    x = clustered(min(100, 1 << (8 * np.dtype(dtype).itemsize)), dtype)
    assert_bits_equal(sc.decode(sc.get_codec("centroid").encode(x)), x)


@pytest.mark.parametrize("shape", [(0,), (3, 0), ()])
def test_empty_and_scalar(shape: tuple[int, ...]):
    x = np.full(shape, -0.0, np.float32)
    frame = sc.get_codec("centroid").encode(x)
    assert split_frame(frame)[0]["meta"]["k"] == (1 if x.size else 0)
    assert_bits_equal(sc.decode(frame), x)


# -- hostile frames ----------------------------------------------------------------------------


def frame_of(k: int, mode: str = "h", size: int = 2000) -> bytes:
    """A float32 frame with ``k`` centroids and index mode ``mode`` (``h`` needs skew)."""
    idx = np.arange(size) % (4 * k)
    x = np.where(idx < k, idx, 0).astype(np.float32) * 0.5  # index 0 three times in four
    frame = sc.get_codec("centroid", index_coding="auto" if mode == "h" else "packed").encode(x)
    assert split_frame(frame)[0]["meta"] == {"k": k, "index": mode}
    return frame


def with_meta(frame: bytes, **changes) -> bytes:
    meta = split_frame(frame)[0]["meta"]
    return reframe(frame, header={"meta": {**meta, **changes}})


def assert_layout_error(frame: bytes, match: str) -> None:
    with pytest.raises(FrameLayoutError, match=match):
        sc.decode(frame)


def test_hostile_packed_index_beyond_k():
    frame = frame_of(3, "p", size=4)  # 2-bit fields: 0 1 2 0
    assert sections(frame)["c.idx"][1] == bytes([0b00100100])
    assert_layout_error(reframe(frame, sections={"c.idx": bytes([0b00100111])}),
                        "holds index 3 >= 3 centroids")


def test_hostile_packed_padding_bits():
    frame = frame_of(3, "p", size=3)  # 6 bits used of the byte
    assert_layout_error(reframe(frame, sections={"c.idx": bytes([0b11100100])}), "padding bits")


def test_hostile_packed_index_of_wrong_size():
    frame = frame_of(3, "p", size=4)
    assert_layout_error(reframe(frame, sections={"c.idx": b"\x00\x00"}), "2 bytes, expected 1")


def test_hostile_coded_index_beyond_k():
    # k lowered to 3 with 3 centroids kept: the Huffman codebook still codes index 3
    frame = frame_of(4)
    centroids = sections(frame)["c.centroids"][1]
    bad = reframe(with_meta(frame, k=3), sections={"c.centroids": centroids[:12]})
    assert_layout_error(bad, "beyond the alphabet of 3|too big")


@pytest.mark.parametrize(("mode", "size"), [("h", 2000), ("p", 8)])
def test_hostile_k_larger_than_size(mode: str, size: int):
    frame = frame_of(4, mode, size)
    assert_layout_error(with_meta(frame, k=size + 1),
                        rf"'k' is {size + 1}, outside the valid range \[0, {size}\]")


@pytest.mark.parametrize("k", [-1, 65537, "4", None, True, 4.0])
def test_hostile_k_not_an_integer_in_range(k: object):
    frame = frame_of(4, "p")
    assert_layout_error(with_meta(frame, k=k), "meta field 'k'")


@pytest.mark.parametrize("delta", [-4, 4, 1])
def test_hostile_centroid_section_of_wrong_size(delta: int):
    frame = frame_of(4)
    centroids = sections(frame)["c.centroids"][1]
    new = centroids[:delta] if delta < 0 else centroids + bytes(delta)
    assert_layout_error(reframe(frame, sections={"c.centroids": new}),
                        f"'c.centroids' has {16 + delta} bytes, expected 4 x 4 = 16")


def test_hostile_k_zero_for_a_non_empty_array():
    frame = frame_of(1, "p")
    assert_layout_error(
        reframe(with_meta(frame, k=0), sections={"c.centroids": b""}), "is empty but 2000 values"
    )


@pytest.mark.parametrize("mode", ["x", "", None, 1, "H"])
def test_hostile_index_mode(mode: object):
    frame = frame_of(4)
    assert_layout_error(with_meta(frame, index=mode), "index mode must be 'h' or 'p'")


def test_hostile_mode_swapped():
    # a Huffman-coded frame that claims packed indices: the sections do not match
    frame = frame_of(4)
    assert_layout_error(with_meta(frame, index="p"), "section 'c.idx' is missing")


def test_hostile_coded_stream_truncated():
    frame = frame_of(5, size=4000)
    # a single stream, whose length the codebook does not store (it is the section's): keep
    # its first 63 words (room for 4032 one-bit codes, but the codes of 5 centroids take 2 or
    # 3 bits)
    assert_layout_error(
        reframe(frame, sections={"c.idx.bits": sections(frame)["c.idx.bits"][1][:504]}),
        "ends before 4000 symbols",
    )
    # 64 bits cannot hold 4000 codes: refused up front
    assert_layout_error(
        reframe(frame, sections={"c.idx.bits": sections(frame)["c.idx.bits"][1][:8]}),
        "8 bytes of streams cannot hold 4000 symbols",
    )


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.integers(1, 10**6), min_size=1, max_size=300), st.booleans(),
       st.sampled_from([8, 12, 15]))
def test_centroid_floor_never_exceeds_the_plan(counts: list[int], entropy: bool, limit: int):
    """The entropy bound the hybrid planner uses to skip a centroid plan is a lower bound on
    that plan's bytes, Huffman-coded or packed, for one centroid or many."""
    from sparsecodecs.codecs._stages import centroid_floor, plan_centroids

    c = np.array(counts, np.int64)
    distinct = (np.arange(c.size, dtype=np.uint16), c)
    plan = plan_centroids(int(c.sum()), distinct, limit, entropy=entropy)
    assert centroid_floor(c, 2) <= plan.nbytes
    assert centroid_floor(np.insert(c, 0, [0, 0]), 2) == centroid_floor(c, 2)  # zeros skipped
