"""The frame format: how encoded bytes are laid out, written and (never trustingly) read.

A frame is::

    offset  size  field
    0       4     magic  b"SPCF"
    4       2     format version, uint16 little-endian (currently 3; 1 and 2 are still read)
    6       2     flags, uint16 little-endian (must be 0)
    8       4     H = length of the header in bytes, uint32 little-endian
    12      H     header: a UTF-8 JSON object (see below); from version 2 on compressed with
                  raw DEFLATE (RFC 1951) against the preset dictionary ``header_v2.dict``
    12+H    ...   sections, concatenated in the order of the header's section table
    end-8   8     xxh3_64 of every byte before it, uint64 little-endian

The header object has exactly the keys ``codec`` (str), ``config`` (object of the codec's
parameters), ``dtype`` (str, see :func:`sparsecodecs.registry.dtypes.dtype_name`), ``shape``
(list of int), ``sections`` (list of ``[name, role, nbytes]``) and ``meta`` (object of
codec-specific, data-derived values such as ``nnz``). ``docs/format.md`` is the reference.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import orjson
import xxhash

from .dtypes import bits_dtype, dtype_from_name, dtype_name, is_nibble, pack_nibbles, unpack_nibbles
from .errors import (
    BadMagicError,
    ChecksumError,
    FrameHeaderError,
    FrameLayoutError,
    TruncatedFrameError,
    UnsupportedVersionError,
)

if TYPE_CHECKING:
    from concurrent.futures import Future

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "READ_VERSIONS",
    "ROLES",
    "Frame",
    "FrameInfo",
    "Section",
    "SectionReader",
    "packed_header",
    "read_frame",
    "values_section",
    "write_frame",
]

T = TypeVar("T")

MAGIC = b"SPCF"
#: The version :func:`write_frame` writes. Version 3 changed only the Huffman codebooks'
#: fixed fields (varints, no stream count, no last stream length: ``codecs/_huffman.py``);
#: version 2 only the header's storage (DEFLATE).
FORMAT_VERSION = 3
#: Every version :func:`read_frame` reads: version 1 (a plain JSON header) stays readable.
READ_VERSIONS = (1, 2, 3)
#: The preset dictionary of version 2 and 3 headers and its xxh3_64: frozen with the version
#: (a different dictionary would be a new version). Typical headers of every built-in codec, the
#: likeliest last: against it a header of 150-300 bytes compresses to 25-50.
_HEADER_DICT_V2 = Path(__file__).with_name("header_v2.dict")
_HEADER_DICT_V2_XXH3 = 0xb0733519a5b5598e
#: The roles a section can have, in the order reports list them.
ROLES = ("values", "index", "codebook")
_PREFIX = struct.Struct("<4sHHI")
_CHECKSUM = struct.Struct("<Q")
#: The smallest possible frame: prefix, an empty header and the checksum.
MIN_FRAME = _PREFIX.size + _CHECKSUM.size
MAX_HEADER_BYTES = 1 << 20
MAX_RANK = 32
_HEADER_KEYS = frozenset({"codec", "config", "dtype", "shape", "sections", "meta"})


@dataclass(frozen=True)
class Section:
    """One named run of bytes in a frame, with the role it plays in the accounting."""

    name: str
    role: str
    data: bytes | bytearray | memoryview | np.ndarray

    @property
    def nbytes(self) -> int:
        data = self.data
        if isinstance(data, np.ndarray):
            return int(data.nbytes)
        return memoryview(data).nbytes


@dataclass(frozen=True)
class FrameInfo:
    """What a codec's decoder knows about the frame besides its sections."""

    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)

    @cached_property
    def size(self) -> int:
        """Number of elements (computed once: every decode asks, some twice)."""
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes of the dense array."""
        return self.size * self.dtype.itemsize

    def meta_int(self, key: str, lo: int = 0, hi: int | None = None) -> int:
        """``meta[key]`` checked to be an int in ``[lo, hi]``; raises FrameLayoutError otherwise."""
        value = self.meta.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise FrameLayoutError(f"meta field {key!r} must be an integer, got {value!r}")
        if value < lo or (hi is not None and value > hi):
            raise FrameLayoutError(
                f"meta field {key!r} is {value}, outside the valid range [{lo}, {hi}]"
            )
        return value


@dataclass(frozen=True)
class Frame:
    """A parsed, checksum-verified frame. Produced only by :func:`read_frame`."""

    codec_id: str
    config: dict[str, Any]
    info: FrameInfo
    sections: tuple[Section, ...]
    header_nbytes: int
    nbytes: int


def _built(cls: type[Any], fields: dict[str, Any]) -> Any:
    """An instance of the frozen dataclass ``cls`` (no ``__slots__``) holding ``fields``, all
    of them, without its ``__init__``: a frozen dataclass sets each field through
    ``object.__setattr__``, which made the objects a frame is read into (a section, the
    frame, its info) ~3 us of a small frame's decode. Only for :func:`read_frame`'s own
    objects, whose fields it has checked."""
    obj = object.__new__(cls)
    obj.__dict__.update(fields)
    return obj


class SectionReader:
    """Typed, size-checked access to a frame's sections for a codec's decoder."""

    def __init__(self, sections: Sequence[Section]) -> None:
        self._sections = {s.name: s for s in sections}
        self._used: set[str] = set()

    def names(self) -> list[str]:
        return list(self._sections)

    @property
    def nbytes(self) -> int:
        """The bytes of every section together (what a decoder can check a claimed size
        against before it allocates)."""
        return sum(s.nbytes for s in self._sections.values())

    def raw(self, name: str) -> memoryview:
        """The bytes of section ``name``; FrameLayoutError if there is no such section."""
        section = self._sections.get(name)
        if section is None:
            raise FrameLayoutError(
                f"section {name!r} is missing; the frame has {sorted(self._sections)}"
            )
        self._used.add(name)
        data = section.data
        if (type(data) is memoryview and data.format == "B" and data.ndim == 1
                and data.c_contiguous):  # read_frame's: a slice of the frame, as it is
            return data
        if isinstance(data, np.ndarray):
            return data.reshape(-1).view(np.uint8).data
        return memoryview(data).cast("B")

    def array(
        self, name: str, dtype: np.dtype[Any] | type | str, count: int | None = None
    ) -> np.ndarray:
        """Section ``name`` as a read-only 1-D array of ``dtype``.

        With ``count``, the section must hold exactly ``count`` items; without, its size must be a
        whole number of items. Either way a mismatch raises :class:`FrameLayoutError`.
        """
        dt = np.dtype(dtype)
        buf = self.raw(name)
        if count is not None and buf.nbytes != count * dt.itemsize:
            raise FrameLayoutError(
                f"section {name!r} has {buf.nbytes} bytes, expected {count} x {dt.itemsize} = "
                f"{count * dt.itemsize}"
            )
        if buf.nbytes % dt.itemsize:
            raise FrameLayoutError(
                f"section {name!r} has {buf.nbytes} bytes, not a multiple of {dt.itemsize}"
            )
        return np.frombuffer(buf, dtype=dt)

    def values(self, name: str, dtype: np.dtype[Any], count: int) -> np.ndarray:
        """Section ``name`` holding ``count`` raw element values of ``dtype``, as bit patterns.

        The inverse of :func:`values_section`: a 1-D array of :func:`bits_dtype` (read-only and
        not copied, except for the 4-bit dtypes, whose packed nibbles are unpacked into a new
        array after the byte count and the padding nibble are checked).
        """
        if is_nibble(dtype):
            packed = self.array(name, np.uint8)
            return unpack_nibbles(packed, count, f"section {name!r}")
        return self.array(name, bits_dtype(dtype), count)

    def check_all_used(self) -> None:
        """Raise FrameLayoutError if the frame has a section the decoder did not read."""
        extra = set(self._sections) - self._used
        if extra:
            raise FrameLayoutError(f"unexpected sections in frame: {sorted(extra)}")


def values_section(
    name: str, values: np.ndarray, dtype: np.dtype[Any], role: str = "values"
) -> Section:
    """A section holding raw element values (bit patterns) of ``dtype``.

    Every codec stores raw values through this one function, so that the 4-bit dtypes are
    packed two per byte everywhere (:func:`~sparsecodecs.registry.dtypes.pack_nibbles`); other
    dtypes are stored as their native little-endian bit patterns. Read back with
    :meth:`SectionReader.values`.
    """
    if is_nibble(dtype):
        return Section(name, role, pack_nibbles(values))
    return Section(name, role, values)


def _json_default(obj: object) -> object:
    if isinstance(obj, np.integer):
        return int(obj)
    raise TypeError(f"not JSON-serialisable in a frame header: {obj!r}")


#: The header's JSON writer, made once (``json.dumps`` with options builds one per call).
_HEADER_JSON = json.JSONEncoder(separators=(",", ":"), default=_json_default)


#: The types whose JSON orjson writes as ``json`` does (a str's but for DEL and non-ASCII).
_PLAIN = frozenset({str, int, bool, type(None)})


def _plain(obj: Any) -> bool:
    """Whether ``obj`` (a dict or list) holds only :data:`_PLAIN` values, in dicts and lists
    at any depth."""
    items = obj.values() if type(obj) is dict else obj
    if _PLAIN.issuperset(map(type, items)):  # flat (most configs): one pass in C
        return True
    for v in items:
        t = type(v)
        if t not in _PLAIN and not ((t is dict or t is list) and _plain(v)):
            return False
    return True


def header_json(header: dict[str, Any]) -> bytes:
    """A header's JSON bytes, exactly as :data:`_HEADER_JSON` writes them (compact, ASCII,
    Python's float repr). orjson writes them, 15x faster (0.3 against 4.2 us a small frame's),
    where the two write the same bytes: a config and meta of strings, integers, booleans and
    None in dicts and lists (no float: orjson spells ``1e-05`` and NaN otherwise; no numpy
    integer, nothing ``_json_default`` is asked about) and ASCII out but DEL (orjson escapes
    neither, json both). Anything else, or anything orjson refuses (a key that is not a
    string, an integer past 64 bits), goes to :data:`_HEADER_JSON`, which writes it or
    raises its own error."""
    config, meta = header.get("config"), header.get("meta")
    if type(config) is dict and type(meta) is dict and _plain(config) and _plain(meta):
        try:
            out: bytes = orjson.dumps(header, default=_json_default)
        except TypeError:  # orjson.JSONEncodeError is one
            pass
        else:
            if out.isascii() and b"\x7f" not in out:  # json escapes DEL, orjson does not
                return out
    return _HEADER_JSON.encode(header).encode()


def parse_json(head: bytes) -> Any:
    """``json.loads`` of the header's UTF-8 JSON bytes: by orjson (3x faster on a small
    frame's header), or where orjson refuses them (it is stricter: no NaN, nesting within
    1024) or may read them otherwise (a run of 19 digits or more: orjson reads an integer
    past 64 bits as a float), by ``json``, which accepts them or raises its error
    (UnicodeDecodeError, ValueError, RecursionError), as it did alone. The two read any JSON
    both accept as the same values (tests/test_header_json.py holds them to it)."""
    if _LONG_DIGITS not in head.translate(_DIGITS):  # orjson reads past 64 bits as a float
        try:
            return orjson.loads(head)
        except orjson.JSONDecodeError:
            pass
    return json.loads(head.decode("utf-8"))


#: Every digit as b"0", every other byte as b" ": a run of :data:`_LONG_DIGITS` in a header's
#: translation is a number of 19 digits or more (2**63 has 19), which ``json`` reads.
_DIGITS = bytes(48 if 48 <= i <= 57 else 32 for i in range(256))
_LONG_DIGITS = b"0" * 19


@lru_cache(maxsize=1)
def header_dictionary() -> bytes:
    """The preset DEFLATE dictionary of version 2 and 3 headers (checked against its hash)."""
    data = _HEADER_DICT_V2.read_bytes()
    if xxhash.xxh3_64_intdigest(data) != _HEADER_DICT_V2_XXH3:  # an installation problem
        raise RuntimeError(f"{_HEADER_DICT_V2} is damaged: its hash is not the frozen one")
    return data


def pack_header(head: bytes, version: int = FORMAT_VERSION) -> bytes:
    """The header bytes a frame of ``version`` stores for the JSON ``head``."""
    if version < 2:
        return head
    # a copy of a primed state: 3x cheaper than priming one; of the 16 KiB window's state
    # where the dictionary and the header fit it, half the bytes of the 32 KiB one's to copy
    # (2.9 -> 1.7 us) for the same output (see _header_deflater)
    small = len(head) <= _SMALL_WINDOW_HEAD
    c = _header_deflater(small).copy()
    return c.compress(head) + c.flush()


#: The longest header JSON that the dictionary (8,140 bytes, frozen by its hash) and a
#: 2**14-byte window hold together with DEFLATE's look-ahead (262 bytes): within that, no
#: match reaches back past either window.
_SMALL_WINDOW_HEAD = (1 << 14) - 262 - 8140


@lru_cache(maxsize=2)
def _header_deflater(small: bool = False) -> Any:
    """A raw DEFLATE compressor primed with the header dictionary; never used itself, only
    copied (zlib's copy holds the object's lock, so threads may share it). ``small``: with a
    2**14-byte window instead of 2**15, for headers of at most :data:`_SMALL_WINDOW_HEAD`
    bytes. The stream does not record its window, and zlib's choices depend on it only
    through the farthest match distance (the window less the look-ahead) and the positions
    it wraps at: where the dictionary, the header and the look-ahead fit the smaller window,
    neither is reached, so both write the same bytes (tests/test_frame.py holds them
    equal)."""
    return zlib.compressobj(9, zlib.DEFLATED, -14 if small else -15, 1,
                            zlib.Z_DEFAULT_STRATEGY, zdict=header_dictionary())


def unpack_header(raw: memoryview | bytes, version: int) -> bytes:
    """The JSON bytes of a stored header (inflated from version 2 on, at most
    ``MAX_HEADER_BYTES``); FrameHeaderError for a damaged or oversized stream."""
    if version < 2:
        return bytes(raw)
    d = zlib.decompressobj(-15, zdict=header_dictionary())
    try:
        head = d.decompress(bytes(raw), MAX_HEADER_BYTES + 1)
    except zlib.error as exc:
        raise FrameHeaderError(f"compressed header does not inflate: {exc}") from exc
    if len(head) > MAX_HEADER_BYTES:
        raise FrameHeaderError(f"compressed header inflates past the limit {MAX_HEADER_BYTES}")
    if not d.eof or d.unused_data:
        raise FrameHeaderError(
            "compressed header is cut short" if not d.eof else
            f"compressed header has {len(d.unused_data)} bytes after its end")
    return head


def packed_header(
    codec_id: str, config: Mapping[str, Any], dtype: np.dtype[Any], shape: Sequence[int],
    sections: Sequence[Section], meta: Mapping[str, Any] | None = None,
) -> bytes:
    """The header bytes of the frame :func:`write_frame` assembles from these (pass them back
    as its or :func:`frame_nbytes`'s ``packed``)."""
    names = [s.name for s in sections]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate section names: {names}")  # a codec bug, not user input
    header = {
        "codec": codec_id,
        "config": dict(config),
        "dtype": dtype_name(dtype),
        "shape": [int(d) for d in shape],
        "sections": [[s.name, s.role, s.nbytes] for s in sections],
        "meta": dict(meta or {}),
    }
    return pack_header(header_json(header))


def frame_nbytes(
    codec_id: str, config: Mapping[str, Any], dtype: np.dtype[Any], shape: Sequence[int],
    sections: Sequence[Section], meta: Mapping[str, Any] | None = None,
    *, packed: bytes | None = None,
) -> int:
    """The bytes of the frame :func:`write_frame` would assemble from the same arguments,
    without assembling it (for an encoder choosing between two encodings exactly).
    ``packed``: as :func:`write_frame` takes it."""
    head = packed if packed is not None else packed_header(codec_id, config, dtype, shape,
                                                            sections, meta)
    return _PREFIX.size + len(head) + sum(s.nbytes for s in sections) + _CHECKSUM.size


def write_frame(
    codec_id: str,
    config: Mapping[str, Any],
    dtype: np.dtype[Any],
    shape: Sequence[int],
    sections: Sequence[Section],
    meta: Mapping[str, Any] | None = None,
    *,
    packed: bytes | None = None,
) -> bytes:
    """Assemble and checksum a frame. Section names must be unique.

    ``packed``: the header bytes :func:`packed_header` made of these same arguments, if at
    hand (an encoder that weighed encodings by :func:`frame_nbytes` has the winner's): not
    packed again (a header's DEFLATE at level 9, ~9 us)."""
    head = packed if packed is not None else packed_header(codec_id, config, dtype, shape,
                                                            sections, meta)
    parts: list[Any] = [_PREFIX.pack(MAGIC, FORMAT_VERSION, 0, len(head)), head]
    parts.extend(s.data for s in sections)
    digest = xxhash.xxh3_64()  # over the parts as they are: the frame is copied once, by join
    for part in parts:
        digest.update(part)
    parts.append(_CHECKSUM.pack(digest.intdigest()))
    return b"".join(parts)


def _field(header: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = header[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise FrameHeaderError(f"header field {key!r} must be {what}, got {value!r:.200}")
    return value


def _parse_header(raw: memoryview, version: int) -> dict[str, Any]:
    head = unpack_header(raw, version)
    try:
        header = parse_json(head)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FrameHeaderError(f"header is not valid UTF-8 JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise FrameHeaderError(f"header must be a JSON object, got {type(header).__name__}")
    keys = set(header)
    if keys != _HEADER_KEYS:
        missing, extra = sorted(_HEADER_KEYS - keys), sorted(keys - _HEADER_KEYS)
        raise FrameHeaderError(f"header keys are wrong: missing {missing}, unexpected {extra}")
    return header


def read_frame(data: bytes | bytearray | memoryview,
               _hashing: Callable[[memoryview], None] | None = None) -> Frame:
    """Parse and verify a frame, trusting nothing in it.

    Checks, in order: length, magic, version, flags, header length, checksum, header JSON and
    the type of every field, and that the section sizes add up to the frame length. Raises a
    :class:`~sparsecodecs.registry.errors.FrameError` subclass naming the failed check.

    ``_hashing`` (:func:`use_frame`'s, internal): called with the frame's bytes where the
    checksum would be verified, for it to verify instead.
    """
    try:
        buf = memoryview(data).cast("B")
    except TypeError as exc:
        raise FrameHeaderError(
            f"a frame must be bytes-like, got {type(data).__name__}"
        ) from exc
    n = buf.nbytes
    if n < MIN_FRAME:
        if n >= 4 and bytes(buf[:4]) != MAGIC:
            raise BadMagicError(f"not a sparsecodecs frame: starts with {bytes(buf[:4])!r}")
        raise TruncatedFrameError(f"frame is {n} bytes, shorter than the minimum {MIN_FRAME}")
    magic, version, flags, hlen = _PREFIX.unpack_from(buf, 0)
    if magic != MAGIC:
        raise BadMagicError(f"not a sparsecodecs frame: starts with {magic!r}, expected {MAGIC!r}")
    if version not in READ_VERSIONS:
        raise UnsupportedVersionError(
            f"frame format version {version} is not supported; this library reads versions "
            f"{', '.join(map(str, READ_VERSIONS))}"
        )
    if flags != 0:
        raise FrameHeaderError(f"frame flags at offset 6 are {flags:#06x}, expected 0")
    if hlen > MAX_HEADER_BYTES:
        raise FrameHeaderError(f"header length {hlen} exceeds the limit {MAX_HEADER_BYTES}")
    if _PREFIX.size + hlen + _CHECKSUM.size > n:
        raise TruncatedFrameError(
            f"frame is {n} bytes but its header alone needs {_PREFIX.size + hlen + _CHECKSUM.size}"
        )
    if _hashing is None:  # _checksum_error's lines, inline: the call was 752 instructions
        (stored,) = _CHECKSUM.unpack_from(buf, n - _CHECKSUM.size)  # of a small frame's decode
        actual = xxhash.xxh3_64_intdigest(buf[: n - _CHECKSUM.size])
        if stored != actual:
            raise _mismatch(stored, actual, n)
    else:
        _hashing(buf)
    header = _parse_header(buf[_PREFIX.size : _PREFIX.size + hlen], version)
    # JSON gives exact types: ``type(x) is str`` is a str (and never a bool), and so on
    codec_id, config, meta = header["codec"], header["config"], header["meta"]
    if type(codec_id) is not str:
        _field(header, "codec", str, "a string")
    if type(config) is not dict:
        _field(header, "config", dict, "an object")
    if type(meta) is not dict:
        _field(header, "meta", dict, "an object")
    dtype = dtype_from_name(header["dtype"])
    shape_list = header["shape"]
    if type(shape_list) is not list:
        _field(header, "shape", list, "a list of integers")
    if len(shape_list) > MAX_RANK:
        raise FrameHeaderError(f"shape has rank {len(shape_list)}, more than {MAX_RANK}")
    for d in shape_list:
        if type(d) is not int or not 0 <= d < 1 << 62:  # JSON's ints are ints, never bools
            raise FrameHeaderError(f"shape {shape_list} has an invalid dimension {d!r}")
    # numpy's own limit, which holds even for an empty array: the non-zero dimensions and the
    # item size multiply to less than 2**63. Beyond it no array (and no 2-D view) exists.
    elements = math.prod(shape_list)
    if (elements or math.prod([d for d in shape_list if d])) * dtype.itemsize >= 1 << 63:
        raise FrameHeaderError(
            f"shape {shape_list} is too large for any {dtype} array: its non-zero dimensions "
            "and item size multiply to 2**63 bytes or more"
        )
    table = header["sections"]
    if type(table) is not list:
        _field(header, "sections", list, "a list")
    sections: list[Section] = []
    offset = _PREFIX.size + hlen
    end = n - _CHECKSUM.size
    seen: set[str] = set()
    for i, entry in enumerate(table):
        # JSON gives exact types: ``type(x) is int`` is an int and not a bool
        if type(entry) is not list or len(entry) != 3 or type(entry[0]) is not str or (
                entry[1] not in ROLES or type(entry[2]) is not int or entry[2] < 0):
            raise FrameHeaderError(
                f"section table entry {i} must be [name, role in {ROLES}, nbytes >= 0], "
                f"got {entry!r:.200}"
            )
        name, role, size = entry
        if name in seen:
            raise FrameHeaderError(f"section {name!r} appears twice in the section table")
        seen.add(name)
        if offset + size > end:
            raise FrameLayoutError(
                f"section {name!r} ({size} bytes at offset {offset}) runs past the end of the "
                f"section area at offset {end}"
            )
        section = object.__new__(Section)  # _built's, inline (a call a section)
        section.__dict__.update(name=name, role=role, data=buf[offset : offset + size])
        sections.append(section)
        offset += size
    if offset != end:
        raise FrameLayoutError(
            f"sections end at offset {offset} but the checksum starts at {end}: "
            f"{end - offset} bytes unaccounted for"
        )
    # ``size`` set here is what the cached property would compute on first use (its lock)
    info = _built(FrameInfo, {"dtype": dtype, "shape": tuple(shape_list), "meta": meta,
                              "size": elements})
    return _built(Frame, {"codec_id": codec_id, "config": config, "info": info,
                          "sections": tuple(sections),
                          "header_nbytes": _PREFIX.size + hlen + _CHECKSUM.size, "nbytes": n})


def _mismatch(stored: int, actual: int, n: int) -> ChecksumError:
    return ChecksumError(
        f"checksum mismatch: frame stores {stored:#018x}, bytes hash to {actual:#018x} "
        f"(frame of {n} bytes is corrupted or truncated)"
    )


def _checksum_error(buf: memoryview) -> ChecksumError | None:
    """The ChecksumError of a frame whose prefix :func:`read_frame` checked, or None if its
    checksum holds."""
    n = buf.nbytes
    (stored,) = _CHECKSUM.unpack_from(buf, n - _CHECKSUM.size)
    actual = xxhash.xxh3_64_intdigest(buf[: n - _CHECKSUM.size])
    return None if stored == actual else _mismatch(stored, actual, n)


#: The smallest frame :func:`use_frame` hashes beside its decode (20-40 us of hashing).
CHECK_BESIDE_FROM = 1 << 20


def use_frame(data: bytes | bytearray | memoryview, use: Callable[[Frame], T], *,
              threads: int | None = None) -> T:
    """``use(read_frame(data))``, for a caller decoding ``data`` on ``threads`` threads. For
    a frame of :data:`CHECK_BESIDE_FROM` bytes or more on more than one thread, the checksum is
    hashed on a kept thread while ``use`` runs on the frame parsed meanwhile: the same result
    and the same error, a ChecksumError before any other (what ``use`` raised or returned is
    dropped for it; a KeyboardInterrupt or SystemExit is not). The decoders take any frame
    without harm, verified or not (the hostile frames of tests/fuzz carry good checksums); the
    hash was ~1 ms, serial, of a 4096x4096 ``hybrid`` decode on two threads that took 11-15 ms
    (docs/benchmarks.md)."""
    if not _beside_worth(data, threads):
        return use(read_frame(data))
    from ._pool import run_beside  # threads: not imported by `import sparsecodecs`

    pending: list[Future[ChecksumError | None]] = []
    try:
        result = use(read_frame(data, _hashing=lambda buf: pending.append(
            run_beside(_checksum_error, buf))))
    except Exception:
        error = pending[0].result() if pending else None  # none: refused before the hash
        if error is not None:
            raise error from None
        raise
    except BaseException:  # an interrupt stays one; the hash is waited for, not reported
        if pending:
            pending[0].result()
        raise
    error = pending[0].result()
    if error is not None:
        raise error
    return result


def _beside_worth(data: object, threads: object) -> bool:
    """Whether ``threads`` asks for more than one thread (a value :func:`resolve_threads`
    takes: any other is refused where it always was) and ``data`` is a large frame."""
    if type(threads) is not int or threads == 1 or threads < 0:
        return False
    if threads == 0 and (os.cpu_count() or 1) < 2:
        return False
    try:
        return memoryview(data).nbytes >= CHECK_BESIDE_FROM  # type: ignore[arg-type]
    except TypeError:
        return False
