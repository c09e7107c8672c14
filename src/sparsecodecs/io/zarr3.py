"""sparsecodecs codecs in Zarr v3 arrays, through zarr's numcodecs wrappers.

Zarr v3 names a numcodecs codec ``numcodecs.<id>``, so codec ``<name>`` is
``numcodecs.sparsecodecs.<name>`` in array metadata. Each class here is an *array-to-bytes*
codec (the ``serializer=`` of :func:`zarr.create_array`): it is handed each chunk as an ndarray,
so the frame keeps the chunk's dtype and shape. The classes are declared in zarr's entry-point
group ``zarr.codecs``, so reading an array needs no import; a third-party sparsecodecs codec
gets its class from :func:`serializer_class`, which also registers it with zarr (in the process
that calls it). Memory order, dtype and shape are kept as :mod:`sparsecodecs.io.numcodecs`
describes. This module imports zarr, which warns (``ZarrUserWarning``) that numcodecs codecs
are not in the Zarr v3 specification.
"""

from __future__ import annotations

from typing import Any

from zarr.codecs.numcodecs import _NumcodecsArrayBytesCodec
from zarr.registry import register_codec

from .numcodecs import PREFIX, numcodec_class

__all__ = [
    "Bitmask",
    "Centroid",
    "Csc",
    "Csr",
    "Huffman",
    "Hybrid",
    "Nm",
    "Raw",
    "serializer_class",
]


_classes: dict[str, Any] = {}


def serializer_class(name: str) -> Any:
    """The Zarr v3 array-to-bytes codec class of sparsecodecs codec ``name``, registered with
    zarr under ``numcodecs.sparsecodecs.<name>``."""
    ncls = numcodec_class(name)  # registers the numcodecs class too
    if ncls.name not in _classes:
        cls = type(
            ncls.__name__,
            (_NumcodecsArrayBytesCodec,),
            {"__module__": __name__, "__doc__": f"Zarr v3 serializer for ``{ncls.codec_id}``."},
            codec_name=PREFIX + ncls.name,
        )
        register_codec(f"numcodecs.{PREFIX}{ncls.name}", cls)
        _classes[ncls.name] = cls
    return _classes[ncls.name]


Raw = serializer_class("raw")
Bitmask = serializer_class("bitmask")
Nm = serializer_class("nm")
Csr = serializer_class("csr")
Csc = serializer_class("csc")
Huffman = serializer_class("huffman")
Centroid = serializer_class("centroid")
Hybrid = serializer_class("hybrid")
