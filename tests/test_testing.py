"""The testing kit itself: strategies produce what they promise, the bit comparison catches what
it must, frame rewriting keeps checksums valid, profiles load."""

from __future__ import annotations

import os

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

import sparsecodecs as sc
from sparsecodecs.registry import (
    SUPPORTED_DTYPES,
    BadMagicError,
    ChecksumError,
    SparseCodecsError,
    TruncatedFrameError,
    UnsupportedVersionError,
    read_frame,
)
from sparsecodecs.testing import (
    all_dtypes,
    assert_bits_equal,
    bits_of,
    examples,
    from_bits,
    hostile_frames,
    load_profile,
    mutated_frames,
    parse_pattern,
    seal,
    shapes,
    sparse_arrays,
    special_bit_patterns,
)


def _groups(a: np.ndarray, m: int) -> np.ndarray:
    """Non-zero counts of the groups of m along the last axis (the last one may be short)."""
    if a.size == 0:
        return np.zeros(0, int)
    bits = bits_of(a).reshape(-1, a.shape[-1] if a.ndim else 1)
    pad = -bits.shape[1] % m
    nonzero = np.pad(bits != 0, ((0, 0), (0, pad)))
    return nonzero.reshape(-1, m).sum(axis=1)


@pytest.mark.parametrize("pattern", ["2:4", (1, 4), (4, 8), (3, 5)])
def test_nm_arrays_have_at_most_n_per_group(pattern: str | tuple[int, int]) -> None:
    n, m = parse_pattern(pattern)

    @given(sparse_arrays(pattern=pattern, shape=shapes(max_size=200)))
    def run(a: np.ndarray) -> None:
        assert (_groups(a, m) <= n).all()

    run()


def test_nm_arrays_with_full_density_fill_every_group() -> None:
    @given(sparse_arrays("uint16", (3, 10), pattern="2:4", density=1.0, values="bits"))
    def run(a: np.ndarray) -> None:
        counts = _groups(a, 4).reshape(3, 3)
        assert (counts[:, :2] == 2).all()  # bit values are never zero
        assert (counts[:, 2] <= 2).all()  # the short group of 2 columns

    run()


@given(sparse_arrays(density=0.0))
def test_density_zero_is_all_zero(a: np.ndarray) -> None:
    assert not bits_of(a).any()


@given(sparse_arrays(density=1.0, values="bits", special_values=False))
def test_density_one_with_bit_values_is_fully_dense(a: np.ndarray) -> None:
    assert bits_of(a).all()


@given(sparse_arrays(clustered=3, shape=(50,)))
def test_clustered_arrays_have_at_most_k_distinct_non_zeros(a: np.ndarray) -> None:
    bits = bits_of(a)
    assert np.unique(bits[bits != 0]).size <= 3


@given(st.data())
def test_arrays_have_the_requested_dtype_and_shape(data: st.DataObject) -> None:
    dtype = data.draw(st.sampled_from(all_dtypes()))
    shape = data.draw(shapes())
    a = data.draw(sparse_arrays(dtype, shape))
    assert a.dtype == dtype
    assert a.shape == shape
    assert a.flags.c_contiguous


def test_special_values_appear() -> None:
    seen: set[int] = set()

    @settings(max_examples=examples(60))
    @given(sparse_arrays("float32", (40,), density=1.0, values="gaussian"))
    def run(a: np.ndarray) -> None:
        seen.update(int(b) for b in bits_of(a))

    run()
    assert len(seen & set(special_bit_patterns("float32"))) >= 3


def test_all_dtypes_covers_every_supported_dtype_and_big_endian() -> None:
    dtypes = all_dtypes()
    assert set(SUPPORTED_DTYPES.values()) <= set(dtypes)
    assert np.dtype(ml_dtypes.bfloat16) in dtypes
    assert np.dtype(">f4") in dtypes
    assert np.dtype(ml_dtypes.bfloat16).newbyteorder(">") in dtypes
    assert sum(d.byteorder == ">" for d in dtypes) == 10  # every multi-byte dtype
    assert all(d.itemsize > 1 for d in dtypes if d.byteorder == ">")


@given(shapes(min_dims=1, max_dims=3, max_size=50))
def test_shapes_respect_their_bounds(shape: tuple[int, ...]) -> None:
    assert 1 <= len(shape) <= 3
    assert np.prod(shape) <= 50


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        ("float32", {0x80000000, 0x7F800000, 0xFF800000, 0x7FFFFFFF, 0x00000001, 0x7F7FFFFF}),
        ("float16", {0x8000, 0x7C00, 0xFC00, 0x7FFF, 0x03FF, 0x7BFF}),
        (ml_dtypes.bfloat16, {0x8000, 0x7F80, 0xFF80, 0x7FFF, 0x007F, 0x7F7F}),
        ("int8", {1, 0xFF, 0x80, 0x7F}),
    ],
)
def test_special_bit_patterns(dtype: object, expected: set[int]) -> None:
    assert expected <= set(special_bit_patterns(np.dtype(dtype)))  # type: ignore[call-overload]


@pytest.mark.parametrize(
    "kwargs",
    [{"pattern": "4:4"}, {"pattern": "x"}, {"density": 1.5}, {"clustered": 0}, {"values": "u"}],
)
def test_invalid_strategy_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument):
        sparse_arrays(**kwargs).example()  # type: ignore[arg-type]


# -- bit comparison --------------------------------------------------------------------------


def test_bits_of_reads_big_endian_values() -> None:
    assert bits_of(np.array([1.0, -0.0], ">f4")).tolist() == [0x3F800000, 0x80000000]
    assert bits_of(np.array(2.0, ml_dtypes.bfloat16)).tolist() == 0x4000


@pytest.mark.parametrize(
    ("actual", "message"),
    [
        (np.array([0.0, 1.0], np.float32), r"first at index \(0,\): bits 0x0, expected 0x80000000"),
        (np.array([-0.0, 1.0], ">f4"), "has dtype >float32, expected float32"),
        (np.array([[-0.0, 1.0]], np.float32), r"has shape \(1, 2\), expected \(2,\)"),
        ([-0.0, 1.0], "is a list, not a numpy.ndarray"),
    ],
)
def test_assert_bits_equal_catches(actual: object, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        assert_bits_equal(actual, np.array([-0.0, 1.0], np.float32))


def test_assert_bits_equal_compares_nan_payloads() -> None:
    a = np.array([0x7FC00001, 0x7FC00001], np.uint32).view(np.float32)
    assert_bits_equal(a.copy(), a)
    b = np.array([0x7FC00001, 0x7FC00002], np.uint32).view(np.float32)
    with pytest.raises(AssertionError, match=r"in 1 of 2 elements.*bits 0x7fc00002, expected"):
        assert_bits_equal(b, a)


# -- frame mutations -------------------------------------------------------------------------


@given(sparse_arrays(shape=shapes(max_size=30)), st.data())
def test_mutated_frames_get_past_the_checksum(a: np.ndarray, data: st.DataObject) -> None:
    frame = sc.get_codec("csr").encode(a)
    mutation = data.draw(mutated_frames(frame))
    try:
        read_frame(mutation.frame)
    except (ChecksumError, BadMagicError, TruncatedFrameError) as exc:
        raise AssertionError(f"{mutation.description} did not reach the header checks") from exc
    except SparseCodecsError:
        pass


DONORS = tuple(
    sc.get_codec(spec).encode((np.arange(8) % 2).astype(dtype).reshape(2, 4))
    for spec, dtype in [("hybrid", np.float16), ("nm", np.int8), ("centroid", np.uint32)]
)


@given(sparse_arrays(shape=shapes(max_size=30)), st.data())
def test_mutated_frames_with_donors_get_past_the_checksum(
    a: np.ndarray, data: st.DataObject
) -> None:
    frame = sc.get_codec("bitmask").encode(a)
    mutation = data.draw(mutated_frames(frame, donors=DONORS))
    try:
        read_frame(mutation.frame)
    except ChecksumError as exc:
        raise AssertionError(f"{mutation.description} broke the checksum") from exc
    except SparseCodecsError:
        pass


@given(hostile_frames(DONORS))
def test_hostile_frames_are_frames_or_junk(mutation: object) -> None:
    assert isinstance(mutation, tuple) and isinstance(mutation[1], bytes)


def test_hostile_frames_need_a_seed() -> None:
    with pytest.raises(ValueError, match="at least one valid seed"):
        hostile_frames([])


def test_seal_appends_the_checksum() -> None:
    frame = DONORS[0]
    assert seal(frame[:-8]) == frame
    assert seal(memoryview(frame[:-8])) == frame
    with pytest.raises(UnsupportedVersionError):  # past the checksum to the next check
        read_frame(seal(b"SPCF\x07\x00\x00\x00\x00\x00\x00\x00"))


def test_from_bits_inverts_bits_of() -> None:
    for dtype in all_dtypes():
        bits = np.arange(6, dtype=f"u{dtype.itemsize}").reshape(2, 3)
        a = from_bits(bits, dtype)
        assert a.dtype == dtype and np.array_equal(bits_of(a), bits)
    with pytest.raises(InvalidArgument, match="must be uint16"):
        from_bits(np.zeros(2, np.uint8), np.float16)


# -- profiles --------------------------------------------------------------------------------


def test_profiles_load_by_name_and_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    current = os.environ.get("HYPOTHESIS_PROFILE") or "default"
    try:
        assert load_profile("long") == "long"
        assert settings().max_examples == 1000
        monkeypatch.setenv("HYPOTHESIS_PROFILE", "ci")
        assert load_profile() == "ci"
        assert not settings().derandomize  # new examples every run (the run seed)
        assert settings().database is None
        assert settings().deadline is None
        with pytest.raises(InvalidArgument):
            load_profile("no-such-profile")
    finally:
        load_profile(current)
