"""Every sparsecodecs codec as a `numcodecs <https://numcodecs.readthedocs.io>`_ codec.

The numcodecs id of codec ``<name>`` is ``sparsecodecs.<name>``; the built-in codecs are declared
in numcodecs' own entry-point group (``numcodecs.codecs``), so ``numcodecs.get_codec({"id":
"sparsecodecs.hybrid"})`` and Zarr find them without importing sparsecodecs first. A third-party
sparsecodecs codec gets its numcodecs class from :func:`numcodec_class` (which also registers it
with numcodecs).

The numcodecs contract (bytes in, bytes out, in memory order) is kept, and so are dtype and shape:

memory order
    ``decode(encode(a))`` has ``a``'s shape, dtype and memory order (C or Fortran), so its
    bytes in memory order are ``a``'s. The frame holds the array in its logical (C) order, so
    N:M patterns stay along the last axis; a Fortran-ordered input (``ndim >= 2``, not also
    C-contiguous) is marked in the frame's meta (``"numcodecs": {"order": "F"}``) and decoded
    back into Fortran order. ``decode(buf, out=o)`` copies those bytes into ``o`` in ``o``'s
    memory order (numcodecs' ``ndarray_copy``), like numcodecs' own codecs: a C, F or flat
    ``o`` of the same order as the input gets the same values.
dtype and shape
    An ndarray of a supported dtype keeps its dtype and shape (0-d included). ``bool``,
    ``datetime64`` and ``timedelta64`` arrays are stored as their bit view (``uint8``,
    ``int64``) and marked (``"numcodecs": {"dtype": "bool"}``), so they come back as they went
    in. Any other dtype (complex, strings, structured, ``object``...) is refused at encode with
    :class:`UnsupportedDtypeError` (a ``TypeError``) instead of being changed silently. A buffer
    without a dtype (bytes, bytearray, array.array, a Zarr v3 bytes-to-bytes position) is
    encoded as its bytes (``uint8``, 1-D), losslessly but without the structure our codecs
    exploit, unless the codec is configured with ``dtype=``, e.g. ``{"id":
    "sparsecodecs.hybrid", "dtype": "bfloat16"}``: then the bytes (and any ndarray of another
    dtype) are read as a flat array of that dtype.
object buffers
    Object arrays are refused with a ``TypeError`` (:class:`UnsupportedDtypeError`) on encode
    and as ``out`` of ``decode``, before anything is written.

>>> import numcodecs, numpy as np
>>> codec = numcodecs.get_codec({"id": "sparsecodecs.hybrid"})
>>> x = np.array([[0, 1.5, 0, 0], [0, 0, -2, 0]], np.float32)
>>> codec.decode(codec.encode(x)).tobytes() == x.tobytes()
True
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import numpy as np
from numcodecs.abc import Codec as _Numcodec
from numcodecs.compat import ensure_contiguous_ndarray, ensure_ndarray_like, ndarray_copy
from numcodecs.registry import register_codec

from ..registry import (
    SUPPORTED_DTYPES,
    CodecConfigError,
    FrameHeaderError,
    FrameLayoutError,
    ShapeError,
    SparseCodecsError,
    UnsupportedDtypeError,
    get_codec,
    registry,
)
from ..registry import Codec as _Codec
from ..registry.accounting import codec_for_frame
from ..registry.dtypes import dtype_name
from ..registry.frame import read_frame, write_frame

__all__ = [
    "META_KEY",
    "PREFIX",
    "Bitmask",
    "Centroid",
    "Csc",
    "Csr",
    "Huffman",
    "Hybrid",
    "Nm",
    "Raw",
    "SparseCodecsNumcodec",
    "numcodec_class",
]

#: numcodecs ids are ``PREFIX + name``.
PREFIX = "sparsecodecs."


class SparseCodecsNumcodec(_Numcodec):  # type: ignore[misc]
    """A numcodecs codec that encodes with one sparsecodecs codec (see the module docstring).

    Parameters
    ----------
    dtype
        How to read a buffer that has no dtype of its own (``None``: as bytes); one of
        :data:`sparsecodecs.registry.SUPPORTED_DTYPES`.
    **params
        The sparsecodecs codec's parameters.
    """

    codec_id: ClassVar[str]
    #: The sparsecodecs codec this class wraps.
    name: ClassVar[str]

    def __init__(self, dtype: str | None = None, **params: Any) -> None:
        if dtype is not None and (not isinstance(dtype, str) or dtype not in SUPPORTED_DTYPES):
            raise CodecConfigError(
                f"dtype must be None or one of {', '.join(SUPPORTED_DTYPES)}; got dtype={dtype!r}"
            )
        self.dtype = dtype
        self._codec: _Codec = get_codec(self.name, **params)
        self._params = {k: v for k, v in self._codec.get_config().items() if k != "id"}

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"id": self.codec_id, **self._params}
        if self.dtype is not None:
            config["dtype"] = self.dtype
        return config

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "id")
        return f"{type(self).__name__}({params})"

    def _as_array(self, buf: Any) -> tuple[np.ndarray, dict[str, str]]:
        """The array to encode and the marks that restore the input from it."""
        if isinstance(buf, np.ndarray):
            if buf.dtype.hasobject:
                raise UnsupportedDtypeError(
                    f"{self.codec_id} cannot encode an array of dtype {buf.dtype} (object "
                    "arrays hold pointers, not values)"
                )
            marks: dict[str, str] = {}
            if buf.ndim >= 2 and buf.flags.f_contiguous and not buf.flags.c_contiguous:
                marks["order"] = "F"
            if self.dtype is None or buf.dtype == SUPPORTED_DTYPES[self.dtype]:
                view = _bit_view(buf)
                if view is not None:
                    if view.dtype != buf.dtype:
                        marks["dtype"] = buf.dtype.str if buf.dtype.kind in "Mm" else "bool"
                    return view, marks
                if self.dtype is None:
                    raise UnsupportedDtypeError(
                        f"{self.codec_id} keeps dtypes and cannot keep {buf.dtype}: supported "
                        f"are bool, datetime64, timedelta64 and {', '.join(SUPPORTED_DTYPES)}; "
                        "encode its bytes instead (a.view(numpy.uint8) or a.tobytes()), or "
                        "configure the codec's dtype= to read them as numbers"
                    )
        try:
            flat = ensure_contiguous_ndarray(buf).reshape(-1).view(np.uint8)
        except TypeError as exc:
            raise UnsupportedDtypeError(f"{self.codec_id} cannot encode {exc}") from exc
        except ValueError as exc:
            raise ShapeError(f"{self.codec_id} cannot encode this buffer: {exc}") from exc
        if self.dtype is None:
            return flat, {}
        want = SUPPORTED_DTYPES[self.dtype]
        if flat.nbytes % want.itemsize:
            raise ShapeError(
                f"a buffer of {flat.nbytes} bytes is not a whole number of {self.dtype} values "
                f"({want.itemsize} bytes each)"
            )
        return flat.view(want), {}

    def encode(self, buf: Any) -> bytes:
        """A frame holding ``buf`` (an ndarray keeps its dtype, shape and memory order)."""
        array, marks = self._as_array(buf)
        frame = self._codec.encode(array)
        if not marks:
            return frame
        parsed = read_frame(frame)
        meta = dict(parsed.info.meta)
        if META_KEY in meta:
            raise CodecConfigError(
                f"codec {parsed.codec_id!r} writes a meta key {META_KEY!r} of its own, which "
                "the numcodecs adapter needs for the memory order and dtype"
            )
        meta[META_KEY] = marks
        info = parsed.info
        return write_frame(
            parsed.codec_id, parsed.config, info.dtype, info.shape, parsed.sections, meta
        )

    def decode(self, buf: Any, out: Any = None) -> Any:
        """The array in frame ``buf`` (its dtype, shape and memory order); with ``out``, its
        bytes copied into ``out`` in ``out``'s memory order."""
        target = None if out is None else _check_out(out)
        try:
            flat = ensure_contiguous_ndarray(buf).reshape(-1).view(np.uint8)
        except (TypeError, ValueError) as exc:
            raise FrameHeaderError(
                f"a frame must be a contiguous bytes-like buffer: {exc}"
            ) from exc
        parsed = read_frame(memoryview(flat))
        array = codec_for_frame(parsed).decode_frame(parsed)
        array = _restore(array, parsed.info.meta.get(META_KEY))
        if target is None:
            return array
        if array.nbytes != target.nbytes:
            raise ShapeError(
                f"out has {target.nbytes} bytes ({target.dtype} {list(target.shape)}), the frame "
                f"decodes to {array.nbytes} ({array.dtype} {list(array.shape)})"
            )
        return ndarray_copy(array, target)


#: The frame meta key under which the adapter records what restores the input.
META_KEY = "numcodecs"
_TIME_DTYPE = re.compile(r"[<>]?[Mm]8\[(?:[1-9][0-9]{0,6})?(?:Y|M|W|D|h|m|s|ms|us|ns|ps|fs|as)\]")


def _bit_view(a: np.ndarray) -> np.ndarray | None:
    """``a`` itself if its dtype is supported, its bits for bool and datetime/timedelta, else
    None."""
    if a.dtype.kind == "b":
        return a.view(np.uint8)
    if a.dtype.kind in "Mm":
        return a.view(np.dtype(np.int64).newbyteorder(a.dtype.byteorder))
    try:
        dtype_name(a.dtype)
    except UnsupportedDtypeError:
        return None
    return a


def _check_out(out: Any) -> np.ndarray:
    """``out`` as an ndarray it is safe to copy into, checked before anything is decoded."""
    try:
        target = ensure_ndarray_like(out)
    except (TypeError, ValueError) as exc:
        raise UnsupportedDtypeError(f"out must be a writable buffer: {exc}") from exc
    if not isinstance(target, np.ndarray):
        raise UnsupportedDtypeError(f"out must be a numpy-compatible buffer, got {type(out)}")
    if target.dtype.hasobject:
        raise UnsupportedDtypeError(
            f"cannot decode into an array of dtype {target.dtype}: object arrays hold "
            "pointers, not values"
        )
    if not target.flags.writeable:
        raise SparseCodecsError("out is read-only")
    if not (target.flags.c_contiguous or target.flags.f_contiguous):
        raise ShapeError("out must be contiguous (C or Fortran order)")
    return target


def _restore(array: np.ndarray, marks: Any) -> np.ndarray:
    """Undo what the adapter's encode recorded in the frame's meta (validated first)."""
    if marks is None:
        return array
    if not isinstance(marks, dict) or not set(marks) <= {"order", "dtype"}:
        raise FrameLayoutError(
            f"meta {META_KEY!r} must be an object with keys 'order' and/or 'dtype', got "
            f"{marks!r:.200}"
        )
    kind = marks.get("dtype")
    if kind is not None:
        if kind == "bool":
            if array.dtype != np.uint8:
                raise FrameLayoutError(f"meta dtype 'bool' needs uint8 values, not {array.dtype}")
            if array.size and int(array.max()) > 1:
                raise FrameLayoutError("meta dtype 'bool' but the values are not all 0 or 1")
            array = array.view(np.bool_)
        elif isinstance(kind, str) and _TIME_DTYPE.fullmatch(kind):
            dt = np.dtype(kind)
            if array.dtype != np.dtype(np.int64).newbyteorder(dt.byteorder):
                raise FrameLayoutError(f"meta dtype {kind!r} needs int64 values, not {array.dtype}")
            array = array.view(dt)
        else:
            raise FrameLayoutError(
                f"meta dtype must be 'bool' or a datetime64/timedelta64 dtype such as "
                f"'<M8[ns]', got {kind!r:.100}"
            )
    order = marks.get("order")
    if order is not None:
        if order != "F":
            raise FrameLayoutError(f"meta order must be 'F', got {order!r:.100}")
        array = np.asfortranarray(array)
    return array


_classes: dict[str, type[SparseCodecsNumcodec]] = {}


def numcodec_class(name: str) -> type[SparseCodecsNumcodec]:
    """The numcodecs class of sparsecodecs codec ``name`` (id ``sparsecodecs.<name>``),
    registered with numcodecs."""
    canonical = registry.resolve(name)[0].codec_id
    if canonical not in _classes:
        cls = type(
            canonical.title().replace("-", "").replace("_", ""),
            (SparseCodecsNumcodec,),
            {"codec_id": PREFIX + canonical, "name": canonical, "__module__": __name__},
        )
        register_codec(cls)
        _classes[canonical] = cls
    return _classes[canonical]


Raw = numcodec_class("raw")
Bitmask = numcodec_class("bitmask")
Nm = numcodec_class("nm")
Csr = numcodec_class("csr")
Csc = numcodec_class("csc")
Huffman = numcodec_class("huffman")
Centroid = numcodec_class("centroid")
Hybrid = numcodec_class("hybrid")
