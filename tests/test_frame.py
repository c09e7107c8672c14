"""The frame format and each error a bad frame raises.

Frames are rewritten with ``sparsecodecs.testing.reframe``, which recomputes the checksum, so
that the checks behind the checksum are reached.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xxhash

import sparsecodecs as sc
from sparsecodecs.registry import (
    FORMAT_VERSION,
    MAGIC,
    BadMagicError,
    ChecksumError,
    CodecConfigError,
    DecodeLimitError,
    FrameHeaderError,
    FrameLayoutError,
    SparseCodecsError,
    TruncatedFrameError,
    UnknownCodecError,
    UnsupportedVersionError,
    errors,
    read_frame,
)
from sparsecodecs.testing import reframe, seal, split_frame

ARRAY = np.array([[0.5, 0.0, -0.0, 2.0], [0.0, 0.0, 0.0, 7.0]], dtype=np.float32)


@pytest.fixture
def frame() -> bytes:
    return sc.get_codec("bitmask").encode(ARRAY)


@pytest.fixture
def decode_limit() -> Iterator[None]:
    """Restore the global decode limit after the test."""
    before = sc.get_decode_limit()
    yield
    sc.set_decode_limit(None)
    assert sc.get_decode_limit() == before


def test_the_layout_is_the_documented_one(frame: bytes) -> None:
    magic, version, flags, hlen = struct.unpack_from("<4sHHI", frame)
    assert (magic, version, flags) == (b"SPCF", 3, 0) == (MAGIC, FORMAT_VERSION, 0)
    # Versions 2 and 3: raw DEFLATE against the preset dictionary, whose frozen bytes are
    # checked too.
    dictionary = (Path(sc.__file__).parent / "registry" / "header_v2.dict").read_bytes()
    assert xxhash.xxh3_64_intdigest(dictionary) == 0xB0733519A5B5598E
    inflate = zlib.decompressobj(-15, zdict=dictionary)
    header = json.loads(inflate.decompress(frame[12 : 12 + hlen]))
    assert inflate.eof and not inflate.unused_data
    assert header == {
        "codec": "bitmask",
        "config": {},
        "dtype": "float32",
        "shape": [2, 4],
        "sections": [["mask", "index", 1], ["values", "values", 16]],
        "meta": {"nnz": 4},
    }
    body = frame[:-8]
    assert len(body) == 12 + hlen + 1 + 16
    assert frame[12 + hlen] == 0b1000_1101  # LSB first: elements 0, 2 (-0.0), 3, then 7
    assert np.array_equal(
        np.frombuffer(frame[13 + hlen : -8], "<u4"), ARRAY.view("<u4")[ARRAY.view("<u4") != 0]
    )
    assert struct.unpack("<Q", frame[-8:])[0] == xxhash.xxh3_64_intdigest(body)


def test_reframe_without_changes_gives_the_same_bytes(frame: bytes) -> None:
    assert reframe(frame) == frame
    header, payloads = split_frame(frame)
    assert reframe(frame, header=header, sections=payloads) == frame


@pytest.mark.parametrize("data", [b"", b"SP", b"SPCF\x01"], ids=repr)
def test_shorter_than_any_frame_is_truncated(data: bytes) -> None:
    with pytest.raises(TruncatedFrameError, match=f"frame is {len(data)} bytes, shorter than"):
        sc.decode(data)


@pytest.mark.parametrize(
    "data",
    [b"PK\x03\x04" + b"\0" * 40, b"\x93NUMPY" + b"\0" * 40, b"SPC" + b"\0" * 8, b"abcd"],
    ids=["zip", "npy", "almost", "short"],
)
def test_wrong_magic(data: bytes) -> None:
    with pytest.raises(
        BadMagicError, match=re.escape(f"not a sparsecodecs frame: starts with {data[:4]!r}")
    ):
        sc.decode(data)


@pytest.mark.parametrize("version", [0, 4, 0xFFFF])
def test_unknown_version(frame: bytes, version: int) -> None:
    with pytest.raises(
        UnsupportedVersionError,
        match=f"version {version} is not supported; this library reads versions 1, 2, 3",
    ):
        sc.decode(reframe(frame, version=version))


def test_version_1_frames_still_read(frame: bytes) -> None:
    """The same frame with its header stored as plain JSON (version 1) decodes the same."""
    v1 = reframe(frame, version=1)
    assert struct.unpack_from("<H", v1, 4)[0] == 1 and len(v1) > len(frame)
    assert json.loads(v1[12 : 12 + struct.unpack_from("<I", v1, 8)[0]]) == split_frame(frame)[0]
    assert sc.decode(v1).tobytes() == sc.decode(frame).tobytes() == ARRAY.tobytes()


def _with_header(frame: bytes, stored: bytes) -> bytes:
    """``frame`` with ``stored`` as its (version 2) header bytes, checksum recomputed."""
    hlen = struct.unpack_from("<I", frame, 8)[0]
    body = frame[:8] + struct.pack("<I", len(stored)) + stored + frame[12 + hlen : -8]
    return seal(body)


def _deflate(data: bytes, zdict: bytes | None = None) -> bytes:
    c = (zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, zdict=zdict)
         if zdict else zlib.compressobj(9, zlib.DEFLATED, -15))
    return c.compress(data) + c.flush()


def test_compressed_headers_that_lie_are_refused(frame: bytes) -> None:
    from sparsecodecs.registry.frame import MAX_HEADER_BYTES, header_dictionary

    hlen = struct.unpack_from("<I", frame, 8)[0]
    stored = frame[12 : 12 + hlen]
    cases = {
        "does not inflate": b"\xff" * 8,
        "is cut short": stored[:-2],
        "bytes after its end": stored + b"\x00\x01",
        # a bomb: 2 MiB of spaces in a few kB, refused before the JSON is parsed
        "inflates past the limit": _deflate(b" " * (MAX_HEADER_BYTES + 4096),
                                            header_dictionary()),
    }
    for message, bad in cases.items():
        with pytest.raises(FrameHeaderError, match=message):
            sc.decode(_with_header(frame, bad))
    # A stream that refers to nothing in the dictionary is a valid header as well.
    plain = _deflate(json.dumps(split_frame(frame)[0], separators=(",", ":")).encode())
    assert sc.decode(_with_header(frame, plain)).tobytes() == ARRAY.tobytes()


def test_non_zero_flags(frame: bytes) -> None:
    with pytest.raises(FrameHeaderError, match="frame flags at offset 6 are 0x0004, expected 0"):
        sc.decode(reframe(frame, flags=4))


def test_header_longer_than_the_frame_is_truncated(frame: bytes) -> None:
    hlen = struct.unpack_from("<I", frame, 8)[0]
    with pytest.raises(TruncatedFrameError, match="but its header alone needs"):
        sc.decode(frame[: 12 + hlen])
    huge = frame[:8] + struct.pack("<I", 1 << 24) + frame[12:]
    with pytest.raises(FrameHeaderError, match="header length 16777216 exceeds the limit"):
        sc.decode(huge)


@pytest.mark.parametrize("where", [12, -20, -1])
def test_checksum_mismatch(frame: bytes, where: int) -> None:
    bad = bytearray(frame)
    bad[where] ^= 0x10
    with pytest.raises(ChecksumError, match=r"checksum mismatch: frame stores 0x[0-9a-f]{16}, "):
        sc.decode(bytes(bad))


def test_a_frame_cut_in_its_sections_fails_the_checksum(frame: bytes) -> None:
    with pytest.raises(ChecksumError, match=f"frame of {len(frame) - 3} bytes is corrupted or "):
        sc.decode(frame[:-3])


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{", "header is not valid UTF-8 JSON"),
        (b"\xff\xfe{}", "header is not valid UTF-8 JSON"),
        (b"[" * 100_000, "header is not valid UTF-8 JSON"),
        (b"[]", "header must be a JSON object, got list"),
        (b'{"codec": "raw"}', r"header keys are wrong: missing \['config', 'dtype', 'meta'"),
    ],
)
def test_header_that_is_not_a_json_object(frame: bytes, raw: bytes, message: str) -> None:
    with pytest.raises(FrameHeaderError, match=message):
        sc.decode(reframe(frame, raw_header=raw))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"extra": 1}, r"missing \[\], unexpected \['extra'\]"),
        ({"codec": 3}, "header field 'codec' must be a string, got 3"),
        ({"config": []}, "header field 'config' must be an object, got"),
        ({"meta": None}, "header field 'meta' must be an object, got None"),
        ({"dtype": "float128"}, "header field 'dtype' is 'float128', not one of: float64,"),
        ({"dtype": 4}, "header field 'dtype' must be a string, got 4"),
        ({"shape": "2,4"}, "header field 'shape' must be a list of integers"),
        ({"shape": [2, -4]}, r"shape \[2, -4\] has an invalid dimension -4"),
        ({"shape": [2, 4.0]}, r"has an invalid dimension 4.0"),
        ({"shape": [True, 8]}, r"has an invalid dimension True"),
        ({"shape": [2**62, 1]}, rf"has an invalid dimension {2**62}"),
        ({"shape": [2**62 - 1, 0, 2]}, r"is too large for any \w+ array"),
        ({"shape": [1] * 33}, "shape has rank 33, more than 32"),
        ({"sections": {}}, "header field 'sections' must be a list"),
        ({"sections": [["mask", "index"]]}, r"section table entry 0 must be \[name, role in"),
        ({"sections": [["mask", "weights", 1]]}, "section table entry 0 must be"),
        ({"sections": [["mask", "index", -1]]}, "section table entry 0 must be"),
        (
            {"sections": [["mask", "index", 1], ["mask", "values", 16]]},
            "section 'mask' appears twice in the section table",
        ),
        ({"codec": "RAW"}, "frame codec id 'RAW' is not a canonical codec id"),
    ],
)
def test_header_fields_are_checked(frame: bytes, change: dict[str, Any], message: str) -> None:
    with pytest.raises(FrameHeaderError, match=message):
        sc.decode(reframe(frame, header=change))


def test_a_frame_of_an_unknown_codec(frame: bytes) -> None:
    with pytest.raises(UnknownCodecError, match="unknown codec 'bitmasq'; did you mean 'bitmask'"):
        sc.decode(reframe(frame, header={"codec": "bitmasq"}))


def test_a_codec_decodes_only_its_own_frames(frame: bytes) -> None:
    with pytest.raises(FrameHeaderError, match="written by codec 'bitmask', not 'raw'; use spar"):
        sc.get_codec("raw").decode(frame)


def test_an_invalid_config_in_a_frame_is_a_header_error() -> None:
    frame = sc.get_codec("nm").encode(np.zeros(8, np.float32))
    with pytest.raises(FrameHeaderError, match="invalid config: n must be < m, got n=4, m=4"):
        sc.decode(reframe(frame, header={"config": {"n": 4, "m": 4, "metadata": "pattern"}}))


@pytest.mark.parametrize("data", ["a string", 12, None])
def test_a_frame_must_be_bytes_like(data: Any) -> None:
    with pytest.raises(FrameHeaderError, match="a frame must be bytes-like, got"):
        sc.decode(data)


def test_any_bytes_like_frame_decodes(frame: bytes) -> None:
    for data in (frame, bytearray(frame), memoryview(frame), np.frombuffer(frame, np.uint8)):
        assert sc.decode(data).tobytes() == ARRAY.tobytes()


# -- layout: sizes that do not add up --------------------------------------------------------


def test_sections_longer_than_the_frame(frame: bytes) -> None:
    table = [["mask", "index", 1], ["values", "values", 17]]
    with pytest.raises(FrameLayoutError, match=r"section 'values' \(17 bytes at offset \d+\) runs"):
        sc.decode(reframe(frame, header={"sections": table}))


def test_bytes_left_over_after_the_sections(frame: bytes) -> None:
    table = [["mask", "index", 1], ["values", "values", 12]]
    with pytest.raises(FrameLayoutError, match="4 bytes unaccounted for"):
        sc.decode(reframe(frame, header={"sections": table}))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"meta": {"nnz": 5}}, r"section 'values' has 16 bytes, expected 5 x 4 = 20"),
        ({"meta": {"nnz": 9}}, r"meta field 'nnz' is 9, outside the valid range \[0, 8\]"),
        ({"meta": {"nnz": "4"}}, "meta field 'nnz' must be an integer, got '4'"),
        ({"meta": {}}, "meta field 'nnz' must be an integer, got None"),
        ({"shape": [4, 4]}, r"section 'mask' has 1 bytes, expected 2 x 1 = 2"),
        ({"dtype": "float16"}, r"section 'values' has 16 bytes, expected 4 x 2 = 8"),
        (
            {"sections": [["mask", "index", 1], ["value", "values", 16]]},
            r"section 'values' is missing; the frame has \['mask', 'value'\]",
        ),
    ],
)
def test_sizes_and_meta_must_agree(frame: bytes, change: dict[str, Any], message: str) -> None:
    with pytest.raises(FrameLayoutError, match=message):
        sc.decode(reframe(frame, header=change))


def test_a_section_the_decoder_does_not_read(frame: bytes) -> None:
    header, payloads = split_frame(frame)
    table = [*header["sections"], ["spare", "index", 2]]
    mutated = reframe(frame, header={"sections": table}, sections=[*payloads, b"\0\0"])
    with pytest.raises(FrameLayoutError, match=r"unexpected sections in frame: \['spare'\]"):
        sc.decode(mutated)


def test_a_mask_that_disagrees_with_nnz(frame: bytes) -> None:
    with pytest.raises(FrameLayoutError, match="section 'mask' has 5 set bits but meta nnz=4"):
        sc.decode(reframe(frame, sections={"mask": b"\x8f"}))


# -- the decode limit ------------------------------------------------------------------------


def test_max_bytes_limits_one_decode(frame: bytes) -> None:
    assert sc.decode(frame, max_bytes=ARRAY.nbytes).shape == ARRAY.shape
    with pytest.raises(
        DecodeLimitError,
        match=r"frame decodes to 32 bytes \(shape \[2, 4\], "
        r"float32\), over the limit of 31 bytes; pass max_bytes=",
    ):
        sc.decode(frame, max_bytes=ARRAY.nbytes - 1)
    with pytest.raises(DecodeLimitError):
        sc.get_codec("bitmask").decode(frame, max_bytes=0)


@pytest.mark.usefixtures("decode_limit")
def test_set_decode_limit_applies_to_every_decode(frame: bytes) -> None:
    sc.set_decode_limit(16)
    assert sc.get_decode_limit() == 16
    with pytest.raises(DecodeLimitError, match="over the limit of 16 bytes"):
        sc.decode(frame)
    assert sc.decode(frame, max_bytes=32).shape == (2, 4)  # an explicit limit wins
    sc.set_decode_limit(None)
    assert sc.get_decode_limit() == 1 << 34
    assert sc.decode(frame).shape == (2, 4)


def test_a_huge_shape_is_refused_before_any_allocation(frame: bytes) -> None:
    big = reframe(frame, header={"shape": [1 << 40, 1 << 20]})
    with pytest.raises(DecodeLimitError, match="over the limit of 17179869184 bytes"):
        sc.decode(big)


@pytest.mark.usefixtures("decode_limit")
@pytest.mark.parametrize("value", [-1, 1.5, "1"])
def test_an_invalid_limit_is_a_config_error(frame: bytes, value: Any) -> None:
    with pytest.raises(CodecConfigError, match="max_bytes must be"):
        sc.set_decode_limit(value)
    with pytest.raises(CodecConfigError, match="max_bytes must be"):
        sc.decode(frame, max_bytes=value)


# -- the hierarchy ---------------------------------------------------------------------------


FRAME_ERRORS = [
    BadMagicError,
    UnsupportedVersionError,
    TruncatedFrameError,
    ChecksumError,
    FrameHeaderError,
    FrameLayoutError,
    DecodeLimitError,
]


@pytest.mark.parametrize("name", errors.__all__)
def test_every_error_is_a_sparsecodecs_error_and_a_value_error(name: str) -> None:
    cls = getattr(errors, name)
    assert issubclass(cls, SparseCodecsError)
    assert issubclass(cls, ValueError)
    assert getattr(sc, name, cls) is cls  # where the top-level package exports it, it is the same


@pytest.mark.parametrize("cls", FRAME_ERRORS)
def test_frame_errors_are_frame_errors(cls: type[Exception]) -> None:
    assert issubclass(cls, sc.FrameError)


def test_read_frame_reports_what_it_parsed(frame: bytes) -> None:
    parsed = read_frame(frame)
    assert (parsed.codec_id, parsed.config, parsed.nbytes) == ("bitmask", {}, len(frame))
    assert parsed.info.shape == (2, 4)
    assert parsed.info.dtype == np.float32
    assert [(s.name, s.role, s.nbytes) for s in parsed.sections] == [
        ("mask", "index", 1),
        ("values", "values", 16),
    ]
    assert parsed.header_nbytes + 17 == len(frame)


def test_header_deflate_is_a_fresh_primed_compressor_every_time():
    """pack_header copies one primed compressor: every header, from any thread, gets the bytes
    a freshly primed compressor writes (fails if the primed state is used, not copied)."""
    from concurrent.futures import ThreadPoolExecutor

    from sparsecodecs.registry.frame import header_dictionary, pack_header

    def fresh(head: bytes) -> bytes:
        c = zlib.compressobj(9, zlib.DEFLATED, -15, 1, zlib.Z_DEFAULT_STRATEGY,
                             zdict=header_dictionary())
        return c.compress(head) + c.flush()

    heads = [json.dumps({"codec": "hybrid", "shape": [i, 3 * i], "meta": {"k": "x" * i}}).encode()
             for i in range(40)]
    assert [pack_header(h) for h in heads] == [fresh(h) for h in heads]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(pack_header, heads * 5)) == [fresh(h) for h in heads] * 5


def test_header_deflate_small_window_writes_the_full_windows_bytes():
    """Headers up to _SMALL_WINDOW_HEAD bytes are deflated with a 2**14-byte window: the same
    bytes as the 2**15 one for headers that match back into every part of the dictionary,
    at the longest such header and past it (fails with the bound 64 bytes longer or more,
    e.g. without DEFLATE's look-ahead: a match then reaches past the small window's
    farthest distance; a few bytes past it, no match fits before the input ends)."""
    import random

    from sparsecodecs.registry.frame import _SMALL_WINDOW_HEAD, header_dictionary, pack_header

    dictionary = header_dictionary()

    def full(head: bytes) -> bytes:
        c = zlib.compressobj(9, zlib.DEFLATED, -15, 1, zlib.Z_DEFAULT_STRATEGY,
                             zdict=dictionary)
        return c.compress(head) + c.flush()

    rng = random.Random(5)

    def head_of(length: int) -> bytes:
        # random bytes and runs copied from the dictionary (its first bytes most of all, the
        # farthest a match can reach back), cut to length
        parts: list[bytes] = []
        while sum(map(len, parts)) < length:
            if rng.random() < 0.3:
                parts.append(rng.randbytes(rng.randint(1, 40)))
            else:
                at = 0 if rng.random() < 0.3 else rng.randrange(len(dictionary) - 64)
                parts.append(dictionary[at:at + rng.randint(3, 64)])
        return b"".join(parts)[:length]

    lengths = [1, 2, 100, 1000, 4000, *range(_SMALL_WINDOW_HEAD - 40, _SMALL_WINDOW_HEAD + 41),
               20_000]
    heads = [head_of(n) for n in lengths for _ in range(3)]
    # the worst cases: a run of the dictionary's first bytes (the farthest back) starting
    # around where the 2**14 window's farthest match distance ends (its own sum, not the
    # module's constant)
    reach = (1 << 14) - 262 - len(dictionary)
    heads += [rng.randbytes(at) + dictionary[:k] for at in range(reach - 8, reach + 9)
              for k in (4, 64)]
    assert [pack_header(h) for h in heads] == [full(h) for h in heads]


def test_frame_nbytes_is_the_length_of_the_frame_written():
    from sparsecodecs.registry import frame_nbytes
    from sparsecodecs.registry.frame import write_frame

    rng = np.random.default_rng(0)
    for config in ({"id": "hybrid"}, {"id": "raw"}, {"id": "bitmask"}):
        codec = sc.get_codec(config)
        for x in (rng.standard_normal((7, 9)).astype(np.float32), np.zeros(0, np.uint8),
                  np.abs(rng.standard_normal(300)).astype(np.float16)):
            enc = codec.encode_bits(*sc.registry.as_bits(x))
            args = (codec.codec_id, codec._frame_config(enc), x.dtype, x.shape, enc.sections,
                    enc.meta)
            assert frame_nbytes(*args) == len(write_frame(*args)) == len(codec.encode(x))
            assert codec.encoded_nbytes(enc, x.dtype, x.shape) == len(codec.encode(x))


def test_encode_writes_the_header_encoded_nbytes_packed_only_for_its_dtype_and_shape():
    """An encoder that weighs encodings by ``encoded_nbytes`` (hybrid) has packed the winner's
    header: ``encode`` writes those bytes, the frame it would pack afresh, and only for the
    dtype and shape they were packed for."""
    from unittest.mock import patch

    from sparsecodecs.registry.frame import packed_header, write_frame

    codec = sc.get_codec("hybrid")
    x = np.random.default_rng(1).standard_normal((8, 16)).astype(np.float32)
    bits, dtype = sc.registry.as_bits(x)
    enc = codec.encode_bits(bits, dtype)
    args = (codec.codec_id, codec._frame_config(enc), dtype, bits.shape, enc.sections, enc.meta)
    fresh = write_frame(*args)
    with patch.object(type(codec), "encode_bits", lambda self, b, d: enc):
        assert codec.encoded_nbytes(enc, dtype, bits.shape) == len(fresh)
        assert enc._header == ((dtype, bits.shape), packed_header(*args))
        assert codec.encode(x) == fresh
        other = packed_header(*args[:3], (16, 8), *args[4:])
        assert other != packed_header(*args)  # the shape is in the header
        codec.encoded_nbytes(enc, dtype, (16, 8))  # packed for another shape: not written
        assert enc._header == ((dtype, (16, 8)), other)
        assert codec.encode(x) == fresh
    assert sc.decode(fresh).tobytes() == x.tobytes()
