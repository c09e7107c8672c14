"""Every sparsecodecs codec as a `numcodecs <https://numcodecs.readthedocs.io>`_ codec.

The numcodecs id of codec ``<name>`` is ``sparsecodecs.<name>``; the built-in codecs are declared
in numcodecs' own entry-point group (``numcodecs.codecs``), so ``numcodecs.get_codec({"id":
"sparsecodecs.hybrid"})`` and Zarr find them without importing sparsecodecs first. A third-party
sparsecodecs codec gets its numcodecs class from :func:`numcodec_class` (which also registers it
with numcodecs).

dtype and shape
    numcodecs codecs are handed chunks as buffers. An ndarray chunk (Zarr v2 compressors, Zarr v3
    array-to-bytes codecs) keeps its dtype and shape, and the frame records both, so decoding
    gives the same array back. A buffer without a dtype (bytes, bytearray, a Zarr v3
    bytes-to-bytes position) is encoded as its bytes (``uint8``), losslessly but without the
    structure our codecs exploit, unless the codec is configured with ``dtype=``, e.g.
    ``{"id": "sparsecodecs.hybrid", "dtype": "bfloat16"}``: then the bytes are read as a flat
    array of that dtype. ``decode(buf)`` returns the frame's array (its dtype and shape);
    ``decode(buf, out=...)`` copies its bytes into ``out``.

>>> import numcodecs, numpy as np
>>> codec = numcodecs.get_codec({"id": "sparsecodecs.hybrid"})
>>> x = np.array([[0, 1.5, 0, 0], [0, 0, -2, 0]], np.float32)
>>> codec.decode(codec.encode(x)).tobytes() == x.tobytes()
True
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numcodecs.abc import Codec as _Numcodec
from numcodecs.compat import ensure_contiguous_ndarray, ndarray_copy
from numcodecs.registry import register_codec

from .registry import (
    SUPPORTED_DTYPES,
    CodecConfigError,
    UnsupportedDtypeError,
    decode,
    get_codec,
    registry,
)
from .registry import Codec as _Codec
from .registry.dtypes import dtype_name

__all__ = [
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
        if dtype is not None and dtype not in SUPPORTED_DTYPES:
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

    def _as_array(self, buf: Any) -> np.ndarray:
        if isinstance(buf, np.ndarray) and buf.dtype.kind != "V":
            try:
                dtype_name(buf.dtype)
            except UnsupportedDtypeError:
                pass  # e.g. bool: encoded as its bytes
            else:
                if self.dtype is None or buf.dtype == SUPPORTED_DTYPES[self.dtype]:
                    return buf  # a supported dtype: dtype and shape kept
        flat = ensure_contiguous_ndarray(buf).reshape(-1).view(np.uint8)
        return flat if self.dtype is None else flat.view(SUPPORTED_DTYPES[self.dtype])

    def encode(self, buf: Any) -> bytes:
        """A frame holding ``buf`` (an ndarray keeps its dtype and shape)."""
        return self._codec.encode(self._as_array(buf))

    def decode(self, buf: Any, out: Any = None) -> Any:
        """The array in frame ``buf``; with ``out``, its bytes copied into ``out``."""
        frame = ensure_contiguous_ndarray(buf).reshape(-1).view(np.uint8)
        return ndarray_copy(decode(memoryview(frame)), out)


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
