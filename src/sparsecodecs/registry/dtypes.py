"""Supported dtypes and the normalisation every codec's input goes through.

Codecs never see floats: they see the *bit patterns* of the input as unsigned integers of the
same width, C-contiguous and native-endian. That is what makes every codec lossless for NaN
payloads, -0.0, infinities, subnormals and bfloat16 alike.
"""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np

from .errors import FrameHeaderError, UnsupportedDtypeError

__all__ = [
    "FLOAT_LAYOUTS",
    "SUPPORTED_DTYPES",
    "as_bits",
    "bits_dtype",
    "dtype_from_name",
    "dtype_name",
]

#: Every dtype a frame can hold, by the name stored in frame headers.
SUPPORTED_DTYPES: dict[str, np.dtype[Any]] = {
    name: np.dtype(t)
    for name, t in [
        ("float64", np.float64),
        ("float32", np.float32),
        ("float16", np.float16),
        ("bfloat16", ml_dtypes.bfloat16),
        ("float8_e4m3fn", ml_dtypes.float8_e4m3fn),
        ("float8_e5m2", ml_dtypes.float8_e5m2),
        ("int8", np.int8),
        ("int16", np.int16),
        ("int32", np.int32),
        ("int64", np.int64),
        ("uint8", np.uint8),
        ("uint16", np.uint16),
        ("uint32", np.uint32),
        ("uint64", np.uint64),
    ]
}

#: (exponent bits, mantissa bits) of each floating-point dtype; the sign is one more bit.
FLOAT_LAYOUTS: dict[str, tuple[int, int]] = {
    "float64": (11, 52),
    "float32": (8, 23),
    "float16": (5, 10),
    "bfloat16": (8, 7),
    "float8_e4m3fn": (4, 3),
    "float8_e5m2": (5, 2),
}

_UINT_BY_SIZE: dict[int, np.dtype[Any]] = {
    1: np.dtype(np.uint8),
    2: np.dtype(np.uint16),
    4: np.dtype(np.uint32),
    8: np.dtype(np.uint64),
}


def _supported_list() -> str:
    return ", ".join(SUPPORTED_DTYPES)


def dtype_name(dtype: np.dtype[Any]) -> str:
    """The header name of ``dtype``: e.g. ``"bfloat16"``, or ``">float32"`` for big-endian."""
    native = dtype.newbyteorder("=") if dtype.byteorder in "<>" else dtype
    if not isinstance(native, np.dtype):  # pragma: no cover - defensive
        raise UnsupportedDtypeError(f"not a dtype: {dtype!r}")
    name = native.name
    if name not in SUPPORTED_DTYPES or SUPPORTED_DTYPES[name] != native:
        raise UnsupportedDtypeError(
            f"dtype {dtype} is not supported; supported dtypes: {_supported_list()}"
        )
    big = dtype.byteorder == ">" or (dtype.byteorder == "=" and np.little_endian is False)
    return (">" if big and dtype.itemsize > 1 else "") + name


def dtype_from_name(name: object) -> np.dtype[Any]:
    """Inverse of :func:`dtype_name`; raises :class:`FrameHeaderError` for unknown names."""
    if not isinstance(name, str):
        raise FrameHeaderError(f"header field 'dtype' must be a string, got {name!r}")
    big = name.startswith(">")
    base = SUPPORTED_DTYPES.get(name[1:] if big else name)
    if base is None:
        raise FrameHeaderError(
            f"header field 'dtype' is {name!r}, not one of: {_supported_list()}"
        )
    result: np.dtype[Any] = base.newbyteorder(">") if big else base
    return result


def bits_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The native unsigned integer dtype with the same width as ``dtype``."""
    return _UINT_BY_SIZE[dtype.itemsize]


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
    return bits, dtype
