"""Every registered codec passes every conformance check; codecs broken on purpose fail them.

The codecs are whatever the registry holds once sparsecodecs is imported, with default
parameters, plus nm's other metadata layouts and patterns: a codec registered later is tested
without editing this file. Each check is a separate test, so a failure names codec and check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import sparsecodecs as sc
from sparsecodecs.codecs import Raw
from sparsecodecs.registry import Codec, Encoded, FrameInfo, SectionReader, bits_dtype, registry
from sparsecodecs.testing import CHECKS, check_codec, registered


def _codecs() -> list[Codec]:
    codecs = [cls() for cls in registry.codecs.values()]
    codecs += [
        sc.get_codec("nm", metadata="index"),
        sc.get_codec("nm", metadata="bitmask"),
        sc.get_codec("nm", n=1, m=4),
        sc.get_codec("nm", n=4, m=8),
    ]
    unique = {tuple(sorted(c.get_config().items())): c for c in codecs}
    return list(unique.values())


def _codec_id(codec: Codec) -> str:
    params = ",".join(f"{k}={v}" for k, v in codec.get_config().items() if k != "id")
    return f"{codec.codec_id}({params})"


CODECS = _codecs()


@pytest.mark.parametrize("check", list(CHECKS))
@pytest.mark.parametrize("codec", CODECS, ids=_codec_id)
def test_codec_conforms(codec: Codec, check: str) -> None:
    CHECKS[check](codec)


def test_the_builtin_codecs_and_nm_variants_are_all_tested() -> None:
    tested = {_codec_id(c) for c in CODECS}
    assert {"raw()", "bitmask()", "csr()", "csc()", "nm(n=2,m=4,metadata=pattern)"} <= tested
    assert {"nm(n=2,m=4,metadata=index)", "nm(n=1,m=4,metadata=pattern)"} <= tested
    assert {"nm(n=4,m=8,metadata=pattern)", "nm(n=2,m=4,metadata=bitmask)"} <= tested


# -- codecs broken on purpose: each check must catch its kind of bug ---------------------------


@dataclass(frozen=True, kw_only=True)
class DropsLowBit(Raw):
    """Lossy: clears the lowest bit of every value (a NaN payload or mantissa bit is lost)."""

    codec_id = "test_drops_low_bit"

    def encode_bits(self, bits: np.ndarray, dtype: np.dtype[Any]) -> Encoded:
        return super().encode_bits(bits & ~bits.dtype.type(1), dtype)


@dataclass(frozen=True, kw_only=True)
class TupleConfig(Raw):
    """A parameter that is not JSON-native: a tuple comes back from JSON as a list."""

    codec_id = "test_tuple_config"
    block: tuple[int, int] = (4, 4)


@dataclass(frozen=True, kw_only=True)
class TrustsFrames(Raw):
    """Reads the values without checking their count, so a bad frame raises a numpy error."""

    codec_id = "test_trusts_frames"

    def decode_bits(self, sections: SectionReader, info: FrameInfo) -> np.ndarray:
        values = np.frombuffer(sections.raw("values"), bits_dtype(info.dtype))
        return values.reshape(info.shape).copy()


@dataclass(frozen=True, kw_only=True)
class AcceptsLists(Raw):
    """Converts whatever it is given with ``np.asarray``, lists and bools included."""

    codec_id = "test_accepts_lists"

    def encode(self, array: Any) -> bytes:
        a = np.asarray(array)
        return super().encode(a.astype(np.uint8) if a.dtype == bool else a)


@dataclass(frozen=True, kw_only=True)
class ClaimsNM(Raw):
    """Says it only takes 2:4 input but never checks."""

    codec_id = "test_claims_nm"

    @property
    def nm_pattern(self) -> tuple[int, int]:
        return (2, 4)


@dataclass(frozen=True, kw_only=True)
class SwallowsErrors(Raw):
    """Returns an empty array instead of raising on a bad frame."""

    codec_id = "test_swallows_errors"

    def decode(self, frame: Any, *, max_bytes: int | None = None) -> np.ndarray:
        try:
            return super().decode(frame, max_bytes=max_bytes)
        except sc.SparseCodecsError:
            return np.zeros(0, np.float32)


@dataclass(frozen=True, kw_only=True)
class MemoryOrder(Raw):
    """Takes the input's bytes in memory order, which scrambles Fortran-ordered arrays."""

    codec_id = "test_memory_order"

    def encode(self, array: Any) -> bytes:
        if isinstance(array, np.ndarray) and array.flags.f_contiguous and array.ndim > 1:
            array = np.frombuffer(array.tobytes(order="A"), array.dtype).reshape(array.shape)
        return super().encode(array)


@dataclass(frozen=True, kw_only=True)
class BadTheory(Raw):
    """Its theoretical size needs a meta field the frames do not have."""

    codec_id = "test_bad_theory"

    def theoretical_nbytes(self, info: FrameInfo) -> int:
        return info.meta_int("nnz") * info.dtype.itemsize


@pytest.mark.parametrize(
    ("cls", "check", "message"),
    [
        (DropsLowBit, "roundtrip", r"differs from the input in \d+ of \d+ elements"),
        (DropsLowBit, "edge_cases", r"first at index .*: bits 0x\w*[02468ace], expected"),
        (TupleConfig, "config", r"not JSON-native: .*\(4, 4\).* as .*\[4, 4\]"),
        (TrustsFrames, "reframed", r"raised ValueError: .*only sparsecodecs.SparseCodecsError"),
        (AcceptsLists, "unsupported_input", r"encode\(a list\) returned a frame"),
        (ClaimsNM, "pattern", r"has nm_pattern \(2, 4\) but encoded a fully dense group"),
        (SwallowsErrors, "corruption", r"decoded a frame with byte 0 of \d+ XORed"),
        (MemoryOrder, "layouts", r"for x a Fortran-ordered .* differs from the input"),
        (BadTheory, "accounting", r"inspecting the frame of .* raised FrameLayoutError"),
    ],
)
def test_a_broken_codec_fails_its_check(cls: type[Codec], check: str, message: str) -> None:
    codec = cls()
    with registered(cls):
        CHECKS["registered"](codec)
        # Enough examples that every planted bug is met whatever the run's seed (the ci profile
        # draws new examples each run: with 30, a run in ~8 drew no 2-D array MemoryOrder
        # scrambles).
        with pytest.raises(AssertionError, match=message):
            CHECKS[check](codec, max_examples=200)


def test_check_codec_names_the_failed_check() -> None:
    with (
        registered(DropsLowBit),
        pytest.raises(AssertionError, match=r"fails conformance check 'edge_cases': "),
    ):
        check_codec(DropsLowBit(), max_examples=5)


def test_an_unregistered_codec_fails_with_how_to_register_it() -> None:
    with pytest.raises(
        AssertionError, match=r"'test_drops_low_bit' .* is not registered.*register_"
    ):
        check_codec(DropsLowBit())


@dataclass(frozen=True, kw_only=True)
class Impostor(Raw):
    """Raw's id, but another class: its frames would decode as Raw's."""


def test_a_codec_registered_under_another_class_fails() -> None:
    with pytest.raises(AssertionError, match=r"maps 'raw' to sparsecodecs.codecs.raw.Raw, not to"):
        CHECKS["registered"](Impostor())
