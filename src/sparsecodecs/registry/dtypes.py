"""Supported dtypes and the normalisation every codec's input goes through.

Codecs never see floats: they see the *bit patterns* of the input as unsigned integers of the
same width, C-contiguous and native-endian. That is what makes every codec lossless for NaN
payloads, -0.0, infinities, subnormals and bfloat16 alike.

The 4-bit dtypes (``int4``, ``uint4``, ``float4_e2m1fn`` from ml_dtypes) keep one value per
byte in memory, in the low nibble; the high nibble is not part of the value. Codecs see them as
uint8 bit patterns ``0..15``, and every frame section that holds raw element values stores them
*packed*, two per byte (see :func:`pack_nibbles` and ``docs/format.md``). An input byte whose
high nibble is not zero is refused (:class:`PatternError`) rather than silently cleared, so
every accepted array round-trips byte for byte, and packed int4 bytes viewed as ``int4`` by
mistake are caught instead of losing half their values.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from .errors import FrameHeaderError, FrameLayoutError, PatternError, UnsupportedDtypeError

__all__ = [
    "FLOAT_LAYOUTS",
    "NIBBLE_DTYPES",
    "SUPPORTED_DTYPES",
    "as_bits",
    "bits_dtype",
    "dtype_from_name",
    "dtype_name",
    "element_bits",
    "is_nibble",
    "name_of",
    "pack_nibbles",
    "storage_nbytes",
    "unpack_nibbles",
]

#: The dtypes numpy itself provides, by header name.
_NUMPY_DTYPES: dict[str, np.dtype[Any]] = {
    name: np.dtype(name)
    for name in (
        "float64", "float32", "float16", "int8", "int16", "int32", "int64",
        "uint8", "uint16", "uint32", "uint64",
    )
}
#: The dtypes ml_dtypes provides (header name = ml_dtypes attribute name).
_ML_NAMES: tuple[str, ...] = (
    "bfloat16", "float8_e4m3fn", "float8_e5m2", "int4", "uint4", "float4_e2m1fn"
)
#: Every header name, in the order :data:`SUPPORTED_DTYPES` lists them.
_ORDER: tuple[str, ...] = (
    "float64", "float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2",
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "int4", "uint4", "float4_e2m1fn",
)
_NAMES: frozenset[str] = frozenset(_ORDER)
_ml_cache: dict[str, np.dtype[Any]] = {}


def _ml_dtype(name: str) -> np.dtype[Any]:
    """The ml_dtypes dtype ``name``; imports ml_dtypes on first use (7 ms for 0.6.0, 0.8-1.0 s
    for 0.7.0), so that ``import sparsecodecs`` does not pay for it until a frame or array needs
    one of its types. UnsupportedDtypeError for a type the installed ml_dtypes lacks (older
    than the 0.5 that pyproject.toml asks for: ``float4_e2m1fn``)."""
    if not _ml_cache:
        import ml_dtypes

        found = ((n, getattr(ml_dtypes, n, None)) for n in _ML_NAMES)
        _ml_cache.update((n, np.dtype(t)) for n, t in found if t is not None)
    dt = _ml_cache.get(name)
    if dt is None:
        import ml_dtypes

        raise UnsupportedDtypeError(
            f"dtype {name} needs ml_dtypes >= 0.5, but ml_dtypes "
            f"{getattr(ml_dtypes, '__version__', '(unknown version)')} is installed"
        )
    return dt


def _lookup(name: str) -> np.dtype[Any] | None:
    """The supported dtype called ``name`` (loading ml_dtypes only for its names), or None."""
    dt = _NUMPY_DTYPES.get(name)
    if dt is None and name in _NAMES:
        return _ml_dtype(name)
    return dt


class _SupportedDtypes(Mapping[str, "np.dtype[Any]"]):
    """Read-only mapping of header name -> dtype whose ml_dtypes values load on first lookup.

    Iterating the names, ``len`` and ``in`` never import ml_dtypes; looking up ``bfloat16``
    (or listing the values) does.
    """

    __slots__ = ()

    def __getitem__(self, name: str) -> np.dtype[Any]:
        dt = _lookup(name)
        if dt is None:
            raise KeyError(name)
        return dt

    def __contains__(self, name: object) -> bool:
        return name in _NAMES

    def __iter__(self) -> Iterator[str]:
        return iter(_ORDER)

    def __len__(self) -> int:
        return len(_ORDER)

    def __repr__(self) -> str:
        return repr(dict(self))


#: Every dtype a frame can hold, by the name stored in frame headers (a read-only mapping;
#: the ml_dtypes types are imported on first lookup).
SUPPORTED_DTYPES: Mapping[str, np.dtype[Any]] = _SupportedDtypes()

#: The 4-bit dtypes: one value per byte in memory (low nibble), two per byte in frames.
NIBBLE_DTYPES: frozenset[str] = frozenset({"int4", "uint4", "float4_e2m1fn"})

#: (exponent bits, mantissa bits) of each floating-point dtype; the sign is one more bit.
FLOAT_LAYOUTS: dict[str, tuple[int, int]] = {
    "float64": (11, 52),
    "float32": (8, 23),
    "float16": (5, 10),
    "bfloat16": (8, 7),
    "float8_e4m3fn": (4, 3),
    "float8_e5m2": (5, 2),
    "float4_e2m1fn": (2, 1),
}

_UINT_BY_SIZE: dict[int, np.dtype[Any]] = {
    1: np.dtype(np.uint8),
    2: np.dtype(np.uint16),
    4: np.dtype(np.uint32),
    8: np.dtype(np.uint64),
}


def _supported_list() -> str:
    return ", ".join(SUPPORTED_DTYPES)


#: dtype_name's answers so far (every encode asks twice; its checks took 3 us a time), at
#: most 256, as name_of keeps its own
_HEADER_NAME: dict[np.dtype[Any], str] = {}


def dtype_name(dtype: np.dtype[Any]) -> str:
    """The header name of ``dtype``: e.g. ``"bfloat16"``, or ``">float32"`` for big-endian."""
    try:
        return _HEADER_NAME[dtype]
    except (KeyError, TypeError):  # TypeError: not a dtype, unhashable (checked below)
        pass
    name = _dtype_name(dtype)
    if len(_HEADER_NAME) < 256:
        _HEADER_NAME[dtype] = name
    return name


def _dtype_name(dtype: np.dtype[Any]) -> str:
    native = dtype.newbyteorder("=") if dtype.byteorder in "<>" else dtype
    if not isinstance(native, np.dtype):  # pragma: no cover - defensive
        raise UnsupportedDtypeError(f"not a dtype: {dtype!r}")
    name = name_of(native)
    # a dtype named like an ml_dtypes type can only exist once ml_dtypes is imported
    expected = _lookup(name)
    if expected is None or expected != native:
        raise UnsupportedDtypeError(
            f"dtype {dtype} is not supported; supported dtypes: {_supported_list()}"
        )
    big = dtype.byteorder == ">" or (dtype.byteorder == "=" and np.little_endian is False)
    return (">" if big and dtype.itemsize > 1 else "") + name


#: dtype_from_name's answers so far, by header name (a frame's decode asks once; the lookup
#: through _lookup took ~1 us)
_FROM_NAME: dict[str, np.dtype[Any]] = {}


def dtype_from_name(name: object) -> np.dtype[Any]:
    """Inverse of :func:`dtype_name`; raises :class:`FrameHeaderError` for unknown names."""
    if type(name) is str:
        known = _FROM_NAME.get(name)
        if known is not None:
            return known
    if not isinstance(name, str):
        raise FrameHeaderError(f"header field 'dtype' must be a string, got {name!r}")
    big = name.startswith(">")
    key = name[1:] if big else name
    base = _lookup(key)
    if base is None:
        raise FrameHeaderError(
            f"header field 'dtype' is {name!r}, not one of: {_supported_list()}"
        )
    result: np.dtype[Any] = base.newbyteorder(">") if big else base
    if len(_FROM_NAME) < 64:  # the supported names, each also big-endian: 34
        _FROM_NAME[name] = result
    return result


_NAME_OF: dict[np.dtype[Any], str] = {}


def name_of(dtype: np.dtype[Any]) -> str:
    """``dtype.name``, memoised: numpy computes it in Python on every access (about 5 us, a
    visible part of a small frame's decode)."""
    name = _NAME_OF.get(dtype)
    if name is None:
        name = dtype.name
        if len(_NAME_OF) < 256:
            _NAME_OF[dtype] = name
    return name


def bits_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The native unsigned integer dtype with the same width as ``dtype``."""
    return _UINT_BY_SIZE[dtype.itemsize]


def is_nibble(dtype: np.dtype[Any]) -> bool:
    """True for the 4-bit dtypes (:data:`NIBBLE_DTYPES`), whose frames pack two values a byte."""
    return dtype.itemsize == 1 and name_of(dtype) in NIBBLE_DTYPES


def element_bits(dtype: np.dtype[Any]) -> int:
    """Bits of information per element: 4 for the 4-bit dtypes, else ``8 * itemsize``."""
    return 4 if is_nibble(dtype) else 8 * dtype.itemsize


def storage_nbytes(dtype: np.dtype[Any], count: int) -> int:
    """Bytes that ``count`` raw values of ``dtype`` take in a frame (4-bit: two per byte)."""
    return (count + 1) // 2 if is_nibble(dtype) else count * dtype.itemsize


def pack_nibbles(values: np.ndarray) -> np.ndarray:
    """Pack uint8 values ``0..15`` two per byte: value ``2i`` in the low nibble of byte ``i``,
    ``2i+1`` in the high nibble; an odd count leaves the last high nibble zero."""
    flat = np.ascontiguousarray(values, dtype=np.uint8).reshape(-1)
    even = flat.size // 2 * 2
    out = np.empty((flat.size + 1) // 2, np.uint8)
    # one pass over little-endian byte pairs: (lo | hi << 8) -> lo | hi << 4
    pairs = flat[:even].view("<u2")
    out[: even // 2] = pairs | (pairs >> np.uint16(4))  # the cast keeps the low byte
    if flat.size % 2:
        out[-1] = flat[-1]
    return out


#: Byte -> its two nibbles as a little-endian uint16 (low nibble in the low byte).
_UNPACK = ((np.arange(256) & 0x0F) | ((np.arange(256) >> 4) << 8)).astype("<u2")


def unpack_nibbles(packed: np.ndarray, count: int, what: str) -> np.ndarray:
    """Inverse of :func:`pack_nibbles` for frame data: checks the byte count and that the
    padding nibble of an odd count is zero, raising :class:`FrameLayoutError` naming ``what``."""
    expected = (count + 1) // 2
    if packed.size != expected:
        raise FrameLayoutError(
            f"{what} has {packed.size} bytes, expected {expected} for {count} packed 4-bit values"
        )
    if count % 2 and packed[-1] >> 4:
        raise FrameLayoutError(f"{what}: the padding nibble after the last 4-bit value is not zero")
    out = np.empty(2 * expected, np.uint8)
    np.take(_UNPACK, packed, out=out.view("<u2"))
    return out[:count]


def as_bits(array: object) -> tuple[np.ndarray, np.dtype[Any]]:
    """Validate ``array`` and return ``(bits, dtype)``.

    ``bits`` is a C-contiguous, native-endian unsigned-integer array of the same shape holding
    the bit patterns of ``array`` (a view when possible, a copy for non-contiguous or
    big-endian input); ``dtype`` is the input's dtype, which decoding restores.
    """
    if not isinstance(array, np.ndarray):
        raise UnsupportedDtypeError(
            f"expected a numpy.ndarray, got {type(array).__module__}.{type(array).__qualname__}"
        )
    dtype = array.dtype
    dtype_name(dtype)  # raises for unsupported dtypes
    udt = bits_dtype(dtype)
    if dtype.byteorder == ">" and dtype.itemsize > 1:
        bits = array.view(udt.newbyteorder(">")).astype(udt, order="C")
    else:
        contiguous = array if array.flags.c_contiguous else array.copy(order="C")
        bits = contiguous.view(udt)
    if is_nibble(dtype):
        high = bits & np.uint8(0xF0)
        if high.any():
            at = int(np.flatnonzero(high.reshape(-1))[0])
            raise PatternError(
                f"{dtype} array holds byte {int(bits.reshape(-1)[at]):#04x} at flat index {at}: "
                "a 4-bit value must sit in the low nibble with the high nibble zero (ml_dtypes "
                "ignores it, a frame cannot keep it). If these bytes are packed pairs of 4-bit "
                "values, unpack them with sparsecodecs.transforms.unpack_int4; to drop the high "
                "nibbles, pass (a.view(numpy.uint8) & 0x0F).view(a.dtype)"
            )
    return bits, dtype
