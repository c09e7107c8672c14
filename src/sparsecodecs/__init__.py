"""sparsecodecs: lossless, accounted compression of sparse, clustered and quantized weights.

>>> import numpy as np, sparsecodecs as sc
>>> w = np.array([[0.5, 0, 0, -1.25], [0, 2.0, 0, 0]], dtype=np.float32)
>>> frame = sc.get_codec("nm", n=2, m=4).encode(w)
>>> bool((sc.decode(frame).view(np.uint32) == w.view(np.uint32)).all())
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import codecs as _codecs  # noqa: F401  (registers the built-in codecs)
from .registry import (
    CheckpointError,
    ClusterError,
    Codec,
    CodecConfigError,
    DecodeLimitError,
    DeviceError,
    FillError,
    FrameError,
    OutputDirError,
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
    UsageError,
    decode,
    get_codec,
    get_decode_limit,
    inspect,
    list_codecs,
    register_codec,
    set_decode_limit,
)

if TYPE_CHECKING:
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

__version__ = "0.1.0"

#: Public names whose modules load on first access, so that ``import sparsecodecs`` stays
#: cheap (checkpoint.py needs ml_dtypes, whose 0.7.0 took 0.8-1.0 s to import;
#: tests/test_bench_cold_start.py checks).
_LAZY: dict[str, str] = {
    "CheckpointReport": "checkpoint",
    "compress": "checkpoint",
    "decompress": "checkpoint",
    "inspect_checkpoint": "checkpoint",
    "load_file": "checkpoint",
    "safe_open": "checkpoint",
    "save_file": "checkpoint",
    "CompressedLinear": "compute",
    "MatmulStats": "compute",
    "matmul": "compute",
}


#: Submodules that ``import sparsecodecs`` used to load, still reachable as attributes.
_LAZY_MODULES = frozenset({"checkpoint", "compute"})


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY_MODULES:
        return importlib.import_module(f".{name}", __name__)  # also binds the attribute
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sparsecodecs' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_LAZY_MODULES})

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
    "OutputDirError",
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
    "UsageError",
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
