"""sparsecodecs: lossless, accounted compression of sparse, clustered and quantized weights.

>>> import numpy as np, sparsecodecs as sc
>>> w = np.array([[0.5, 0, 0, -1.25], [0, 2.0, 0, 0]], dtype=np.float32)
>>> frame = sc.get_codec("nm", n=2, m=4).encode(w)
>>> bool((sc.decode(frame).view(np.uint32) == w.view(np.uint32)).all())
True
"""

from __future__ import annotations

from . import codecs as _codecs  # noqa: F401  (registers the built-in codecs)
from .checkpoint import (
    CheckpointReport,
    compress,
    decompress,
    inspect_checkpoint,
    load_file,
    safe_open,
    save_file,
)
from .compute import CompressedLinear, MatmulStats, matmul
from .registry import (
    CheckpointError,
    ClusterError,
    Codec,
    CodecConfigError,
    DecodeLimitError,
    DeviceError,
    FillError,
    FrameError,
    OutputExistsError,
    PatternError,
    PluginError,
    Report,
    ShapeError,
    SliceError,
    SparseCodecsError,
    TensorNotFoundError,
    UnknownCodecError,
    UnsupportedDtypeError,
    decode,
    get_codec,
    get_decode_limit,
    inspect,
    list_codecs,
    register_codec,
    set_decode_limit,
)

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "CheckpointReport",
    "ClusterError",
    "Codec",
    "CodecConfigError",
    "CompressedLinear",
    "DecodeLimitError",
    "DeviceError",
    "FillError",
    "FrameError",
    "MatmulStats",
    "OutputExistsError",
    "PatternError",
    "PluginError",
    "Report",
    "ShapeError",
    "SliceError",
    "SparseCodecsError",
    "TensorNotFoundError",
    "UnknownCodecError",
    "UnsupportedDtypeError",
    "__version__",
    "compress",
    "decode",
    "decompress",
    "get_codec",
    "get_decode_limit",
    "inspect",
    "inspect_checkpoint",
    "list_codecs",
    "load_file",
    "matmul",
    "register_codec",
    "safe_open",
    "save_file",
    "set_decode_limit",
]
