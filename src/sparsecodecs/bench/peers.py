"""What sparsecodecs is compared with: general-purpose compressors and other sparse formats.

Every peer sees the same bit patterns as the codecs (the tensor's bytes, little-endian, C
order) and must give them back exactly; the harness checks that.

``nvidia-2:4``
    NVIDIA's 2:4 compressed format (cuSPARSELt / sparse tensor cores): the two kept values of
    every group of four along the last axis plus a 2-bit index per kept value. Its size is
    *computed* from the layout, ``groups * 2 * itemsize + ceil(groups / 2)`` (4-bit values at
    half a byte: ``groups + ceil(groups / 2)``); there are no bytes to time or to decode. Only
    for tensors that are 2:4 (zeros by bit pattern) along a last axis divisible by 4.
``zstd-3``, ``zstd-19``
    ``zstandard`` at levels 3 and 19, single-threaded.
``lz4``
    ``lz4.frame`` at its default level.
``scipy-csr``, ``scipy-csc``
    ``scipy.sparse`` CSR / CSC of the 2-D bit-pattern matrix; the size is
    ``data.nbytes + indices.nbytes + indptr.nbytes`` as scipy stores them.
Peers other than ``nvidia-2:4`` see 4-bit tensors packed two values per byte, as GPTQ/AWQ
store them; ``scipy-csr``/``scipy-csc`` do not apply to them (scipy has no 4-bit dtype).

``zipnn``
    ZipNN's byte API (``threads=1``) for bfloat16, float16 and float32. It imports torch, so it
    is imported only when used; it rewrites its input buffer for bfloat16 and float32, so it is
    always given a fresh copy (made outside the timed region). One ZipNN object per dtype is
    built on first use and reused.
"""

from __future__ import annotations

import difflib
import functools
import importlib
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..registry.dtypes import dtype_name, is_nibble, storage_nbytes
from ..registry.errors import UsageError

__all__ = ["PEERS", "NotApplicable", "Peer", "select_peers"]


class NotApplicable(Exception):
    """The peer does not handle this input (shown as n/a with the reason)."""


@dataclass(frozen=True)
class Peer:
    """A compressor run on the raw bit patterns of each tensor."""

    name: str
    family: str
    description: str
    module: str = ""  # the import that must succeed for the peer to run
    hint: str = ""  # how to install it
    #: The size is computed from the layout: nothing is encoded, timed or decoded.
    computed: ClassVar[bool] = False

    def missing(self) -> str | None:
        """Why the peer cannot run here (not installed), or None."""
        if not self.module:
            return None
        try:
            importlib.import_module(self.module)
        except ImportError as exc:
            return f"{self.module} is not installed ({exc}); {self.hint}"
        return None

    def prepare(self, bits: np.ndarray) -> Any:
        """The encoder's argument, built outside the timed region."""
        return bits

    def encode(self, prepared: Any, dtype: np.dtype[Any]) -> Any:
        raise NotImplementedError

    def decode(self, payload: Any, bits: np.ndarray) -> Any:
        """Bytes-like or array holding the bit patterns again (``bits`` gives shape/dtype)."""
        raise NotImplementedError

    def nbytes(self, payload: Any) -> int:
        return len(payload)

    def roles(self, payload: Any) -> dict[str, int]:
        """Bytes by role (``values``, ``index``) where the format has them, else empty."""
        return {}


@dataclass(frozen=True)
class Nvidia24(Peer):
    computed: ClassVar[bool] = True

    def encode(self, prepared: Any, dtype: np.dtype[Any]) -> Any:
        bits = prepared
        if bits.ndim == 0 or bits.shape[-1] % 4:
            raise NotApplicable("the last axis is not a multiple of 4")
        groups = (bits != 0).reshape(-1, 4).sum(axis=1)
        if (groups > 2).any():
            raise NotApplicable("not 2:4 sparse along the last axis")
        ngroups = groups.size
        return {"values": storage_nbytes(dtype, ngroups * 2), "index": -(-ngroups * 2 * 2 // 8)}

    def nbytes(self, payload: Any) -> int:
        return int(payload["values"] + payload["index"])

    def roles(self, payload: Any) -> dict[str, int]:
        return dict(payload)


@dataclass(frozen=True)
class Zstd(Peer):
    level: int = 3

    def encode(self, prepared: Any, dtype: np.dtype[Any]) -> Any:
        import zstandard

        return zstandard.ZstdCompressor(level=self.level).compress(prepared)

    def decode(self, payload: Any, bits: np.ndarray) -> Any:
        import zstandard

        return zstandard.ZstdDecompressor().decompress(payload)


@dataclass(frozen=True)
class Lz4(Peer):
    def encode(self, prepared: Any, dtype: np.dtype[Any]) -> Any:
        import lz4.frame

        return lz4.frame.compress(prepared)

    def decode(self, payload: Any, bits: np.ndarray) -> Any:
        import lz4.frame

        return lz4.frame.decompress(payload)


@dataclass(frozen=True)
class ScipySparse(Peer):
    fmt: str = "csr"

    def encode(self, prepared: Any, dtype: np.dtype[Any]) -> Any:
        import scipy.sparse

        if is_nibble(dtype):
            raise NotApplicable(f"scipy.sparse has no 4-bit dtype ({dtype})")
        bits = prepared
        matrix = bits.reshape(-1, bits.shape[-1]) if bits.ndim else bits.reshape(1, 1)
        return (scipy.sparse.csr_array if self.fmt == "csr" else scipy.sparse.csc_array)(matrix)

    def decode(self, payload: Any, bits: np.ndarray) -> Any:
        return payload.toarray().reshape(bits.shape)  # 1-D tensors were stored as one row

    def roles(self, payload: Any) -> dict[str, int]:
        return {"values": int(payload.data.nbytes),
                "index": int(payload.indices.nbytes + payload.indptr.nbytes)}

    def nbytes(self, payload: Any) -> int:
        return sum(self.roles(payload).values())


_ZIPNN_DTYPES = {"bfloat16", "float16", "float32"}


@functools.cache
def _zipnn_codec(name: str) -> Any:
    """One ZipNN object per dtype, reused (as a program decoding many tensors would), so the
    timed calls measure compression, not ZipNN's construction."""
    import zipnn

    return zipnn.ZipNN(input_format="byte", bytearray_dtype=name, threads=1)


@dataclass(frozen=True)
class ZipNN(Peer):
    def prepare(self, bits: np.ndarray) -> Any:
        return bytearray(bits.tobytes())  # a copy: ZipNN rewrites its input in place

    def _codec(self, dtype: np.dtype[Any]) -> Any:
        name = dtype_name(dtype)
        if name not in _ZIPNN_DTYPES:
            raise NotApplicable(f"ZipNN's byte API takes bfloat16, float16, float32; not {name}")
        return _zipnn_codec(name)

    def encode(self, prepared: Any, dtype: np.dtype[Any]) -> Any:
        return (self._codec(dtype).compress(prepared), dtype)

    def decode(self, payload: Any, bits: np.ndarray) -> Any:
        data, dtype = payload
        return self._codec(dtype).decompress(data)

    def nbytes(self, payload: Any) -> int:
        return len(payload[0])


ZIPNN_HINT = "pip install torch==2.13.0 zipnn"

#: Every peer, in the order reports list them.
PEERS: tuple[Peer, ...] = (
    Nvidia24("nvidia-2:4", "nvidia", "NVIDIA 2:4 compressed format (size computed)"),
    Zstd("zstd-3", "zstd", "zstandard level 3", "zstandard", "pip install zstandard", level=3),
    Zstd("zstd-19", "zstd", "zstandard level 19", "zstandard", "pip install zstandard",
         level=19),
    Lz4("lz4", "lz4", "lz4.frame, default level", "lz4.frame", "pip install lz4"),
    ScipySparse("scipy-csr", "scipy", "scipy.sparse CSR (data + indices + indptr)",
                "scipy.sparse", "pip install scipy", fmt="csr"),
    ScipySparse("scipy-csc", "scipy", "scipy.sparse CSC (data + indices + indptr)",
                "scipy.sparse", "pip install scipy", fmt="csc"),
    ZipNN("zipnn", "zipnn", "ZipNN byte API, threads=1", "zipnn", ZIPNN_HINT),
)


def select_peers(spec: str | None) -> list[Peer]:
    """The peers named by ``--peers`` (names or families, comma-separated; ``none``)."""
    if spec is None:
        return list(PEERS)
    names = [t.strip().lower() for t in spec.split(",") if t.strip()]
    if names == ["none"]:
        return []
    known = [p.name for p in PEERS] + sorted({p.family for p in PEERS})
    chosen: list[Peer] = []
    for name in names:
        match = [p for p in PEERS if name in (p.name, p.family)]
        if not match:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UsageError(f"unknown peer {name!r}; {hint}available: {', '.join(known)}, none")
        chosen.extend(p for p in match if p not in chosen)
    return sorted(chosen, key=PEERS.index)
