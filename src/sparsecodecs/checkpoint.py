"""Compressed checkpoints: safetensors files whose entries are sparsecodecs frames.

A compressed checkpoint is a valid `safetensors <https://github.com/huggingface/safetensors>`_
file: every tensor of the original is one entry of dtype ``U8`` and shape ``[n]`` holding the
tensor's frame, and the ``__metadata__`` names the format (``"format": "sparsecodecs"``) and keeps
what a frame does not (the original safetensors dtype and shape of each tensor, the user's own
metadata, and any lossy transform applied). Existing safetensors tooling can list such a file and
read single entries lazily; :class:`safe_open` here reads and decodes one tensor at a time.

The safetensors container is read and written by this module (it is a length, a JSON header and
the concatenated data), so the ``safetensors`` package is not needed; the tests check the files
against it. Compressing or decompressing a checkpoint streams tensor by tensor: one input tensor,
its transformed copy and its frame are in memory at a time (``workers`` of them with
``workers > 1``). Tensors larger than ``block_bytes`` are split into row blocks, each its own
frame, concatenated in the tensor's one entry with a block table in the metadata (container
version 2): blocks are the unit of parallel work (processes or a Dask cluster) and of reading by
row range (:meth:`safe_open.get_slice`). ``docs/checkpoints.md`` describes the layout and the
memory behaviour, ``docs/scaling.md`` the parallel work.

>>> import numpy as np, tempfile, os, sparsecodecs as sc
>>> w = np.zeros((4, 8), np.float32); w[:, ::4] = 1.5
>>> path = os.path.join(tempfile.mkdtemp(), "model.sc.safetensors")
>>> sc.save_file({"w": w}, path, metadata={"format": "pt"})
>>> with sc.safe_open(path) as f:
...     f.keys(), f.metadata(), f.get_tensor("w").tobytes() == w.tobytes()
(['w'], {'format': 'pt'}, True)
"""

from __future__ import annotations

import collections
import contextlib
import difflib
import itertools
import json
import math
import os
import shutil
import struct
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import ml_dtypes
import numpy as np

from ._atomic import atomic_dir as _atomic_dir  # one atomic writer for the library
from ._atomic import atomic_file as _atomic_file
from .registry import (
    ROLES,
    CheckpointError,
    Codec,
    DecodeLimitError,
    Report,
    SliceError,
    TensorNotFoundError,
    UnsupportedDtypeError,
    decode,
    get_codec,
    get_decode_limit,
    inspect,
    resolve_threads,
)
from .registry.accounting import SectionReport
from .registry.frame import read_frame

__all__ = [
    "DEFAULT_BLOCK_BYTES",
    "FORMAT_NAME",
    "CheckpointReport",
    "TensorSlice",
    "compress",
    "decompress",
    "inspect_checkpoint",
    "is_safetensors",
    "load_file",
    "safe_open",
    "save_file",
]

#: The value of ``__metadata__["format"]`` in a compressed checkpoint.
FORMAT_NAME = "sparsecodecs"
#: Version of the container layout described in ``docs/checkpoints.md``: ``"1"``, one frame per
#: tensor; ``"2"``, the same with a block table (written only when a tensor is split into row
#: blocks, so files without blocks stay readable by readers of version 1).
CONTAINER_VERSION = "1"
CONTAINER_VERSION_BLOCKS = "2"
#: Tensors with more dense bytes than this are split into row blocks of at most this size.
DEFAULT_BLOCK_BYTES = 32 << 20
_KEY_VERSION = "sparsecodecs.version"
_KEY_CONTAINER = "sparsecodecs.container"
_KEY_TENSORS = "sparsecodecs.tensors"
_KEY_METADATA = "sparsecodecs.metadata"
_KEY_TRANSFORMS = "sparsecodecs.transforms"
_KEY_BLOCKS = "sparsecodecs.blocks"

#: safetensors dtype names and the numpy dtype each is read as (``BOOL`` as its bytes).
ST_DTYPES: dict[str, np.dtype[Any]] = {
    name: np.dtype(t)
    for name, t in [
        ("F64", np.float64),
        ("F32", np.float32),
        ("F16", np.float16),
        ("BF16", ml_dtypes.bfloat16),
        ("F8_E4M3", ml_dtypes.float8_e4m3fn),
        ("F8_E5M2", ml_dtypes.float8_e5m2),
        ("I64", np.int64),
        ("I32", np.int32),
        ("I16", np.int16),
        ("I8", np.int8),
        ("U64", np.uint64),
        ("U32", np.uint32),
        ("U16", np.uint16),
        ("U8", np.uint8),
        ("BOOL", np.bool_),
    ]
}
_ST_BY_DTYPE = {dt: name for name, dt in ST_DTYPES.items()}
_FLOAT_ST = frozenset({"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"})
_MAX_HEADER = 100_000_000  # the limit safetensors itself enforces
_LEN = struct.Struct("<Q")
_BIG = 10**19  # wider than any real offset: sizes the reserved header
Progress = Callable[[str, int, int], None]


# -- the safetensors container ----------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    """One tensor of a safetensors file: its dtype name, shape and absolute byte range."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class _Header:
    path: str
    metadata: dict[str, str] | None
    entries: tuple[_Entry, ...]  # in data order
    size: int

    def entry(self, name: str) -> _Entry:
        for e in self.entries:
            if e.name == name:
                return e
        names = [e.name for e in self.entries]
        close = difflib.get_close_matches(name, names, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise TensorNotFoundError(
            f"{self.path}: no tensor named {name!r}{hint} (the file has {len(names)} tensors)"
        )


def _fail(path: str, what: str) -> CheckpointError:
    return CheckpointError(f"{path}: {what}")


def _read_header(fh: IO[bytes], path: str) -> _Header:
    """Parse and check a safetensors header, trusting nothing in it."""
    size = os.fstat(fh.fileno()).st_size
    if size < _LEN.size:
        raise _fail(path, f"not a safetensors file: {size} bytes, shorter than the 8-byte prefix")
    fh.seek(0)
    (n,) = _LEN.unpack(fh.read(_LEN.size))
    if n > _MAX_HEADER or n < 2:
        raise _fail(path, f"not a safetensors file: header length {n} at offset 0 is implausible")
    if _LEN.size + n > size:
        raise _fail(
            path, f"not a safetensors file or truncated: header of {n} bytes, file of {size} bytes"
        )
    try:
        header = json.loads(fh.read(n).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _fail(path, f"not a safetensors file: header is not UTF-8 JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise _fail(path, "not a safetensors file: header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if metadata is not None and (
        not isinstance(metadata, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    ):
        raise _fail(path, "__metadata__ must be an object of strings")
    base = _LEN.size + n
    entries = []
    for name, spec in header.items():
        entries.append(_parse_entry(path, name, spec, base))
    entries.sort(key=lambda e: (e.start, e.end))
    pos = base
    for e in entries:
        if e.start != pos:
            raise _fail(
                path,
                f"tensor {e.name!r} starts at data offset {e.start - base}, expected "
                f"{pos - base}: entries overlap or leave a gap",
            )
        pos = e.end
    if pos > size:
        raise _fail(
            path, f"truncated: its tensors need {pos} bytes but the file has {size} bytes"
        )
    if pos != size:
        raise _fail(path, f"{size - pos} bytes after the last tensor at offset {pos}")
    return _Header(path, metadata, tuple(entries), size)


def _parse_entry(path: str, name: str, spec: object, base: int) -> _Entry:
    bad = _fail(path, f"tensor {name!r} has a malformed header entry: {spec!r:.200}")
    if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data_offsets"}:
        raise bad
    dtype, shape, offsets = spec["dtype"], spec["shape"], spec["data_offsets"]
    ints = (
        isinstance(shape, list)
        and isinstance(offsets, list)
        and len(offsets) == 2
        and all(type(d) is int and d >= 0 for d in [*shape, *offsets])
    )
    if not isinstance(dtype, str) or not ints or offsets[0] > offsets[1]:
        raise bad
    dt = ST_DTYPES.get(dtype)
    if dt is not None and math.prod(shape) * dt.itemsize != offsets[1] - offsets[0]:
        raise _fail(
            path,
            f"tensor {name!r} ({dtype} {shape}) needs {math.prod(shape) * dt.itemsize} bytes "
            f"but its data_offsets {offsets} span {offsets[1] - offsets[0]}",
        )
    return _Entry(name, dtype, tuple(shape), base + offsets[0], base + offsets[1])


def _header_bytes(
    specs: Iterable[tuple[str, str, list[int], int, int]], metadata: Mapping[str, str] | None
) -> bytes:
    header: dict[str, Any] = {}
    if metadata is not None:
        header["__metadata__"] = dict(metadata)
    for name, dtype, shape, start, end in specs:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [start, end]}
    return json.dumps(header, separators=(",", ":")).encode()


def _padded(head: bytes, size: int | None = None) -> bytes:
    """The 8-byte length and ``head`` padded with spaces to ``size`` (a multiple of 8)."""
    size = -(-len(head) // 8) * 8 if size is None else size
    return _LEN.pack(size) + head.ljust(size, b" ")


def _read_entry(fh: IO[bytes], entry: _Entry, path: str) -> bytearray:
    fh.seek(entry.start)
    buf = bytearray(entry.nbytes)
    if fh.readinto(buf) != entry.nbytes:  # type: ignore[attr-defined]
        raise _fail(path, f"truncated while reading tensor {entry.name!r}")
    return buf


def _entry_dtype(entry: _Entry, path: str) -> np.dtype[Any]:
    dt = ST_DTYPES.get(entry.dtype)
    if dt is None:
        raise UnsupportedDtypeError(
            f"{path}: tensor {entry.name!r} has safetensors dtype {entry.dtype}, which "
            f"sparsecodecs does not support; supported: {', '.join(ST_DTYPES)}"
        )
    return dt


def _read_tensor(fh: IO[bytes], entry: _Entry, path: str) -> np.ndarray:
    dt = _entry_dtype(entry, path)
    array = np.frombuffer(_read_entry(fh, entry, path), dt).reshape(entry.shape)
    return array.view(np.uint8) if entry.dtype == "BOOL" else array


# -- arrays in, arrays out --------------------------------------------------------------------


def _as_numpy(x: object, name: str) -> np.ndarray:
    """An ndarray view of ``x`` (an ndarray or a torch tensor; torch is never imported here)."""
    if isinstance(x, np.ndarray):
        return x
    if type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach"):
        torch = sys.modules["torch"]
        t = x.detach().cpu()
        kind = str(t.dtype).removeprefix("torch.")
        if kind == "bfloat16":
            return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
        if kind in ("float8_e4m3fn", "float8_e5m2"):
            return t.view(torch.uint8).numpy().view(getattr(ml_dtypes, kind))
        try:
            return np.asarray(t.numpy())
        except (TypeError, RuntimeError) as exc:
            raise UnsupportedDtypeError(
                f"tensor {name!r}: torch dtype {t.dtype} (layout {t.layout}) is not supported"
            ) from exc
    raise UnsupportedDtypeError(
        f"tensor {name!r}: expected a numpy.ndarray or torch.Tensor, got "
        f"{type(x).__module__}.{type(x).__qualname__}"
    )


def _st_dtype(array: np.ndarray, name: str) -> str:
    native = array.dtype.newbyteorder("=") if array.dtype.byteorder in "<>" else array.dtype
    st = _ST_BY_DTYPE.get(native)
    if st is None:
        raise UnsupportedDtypeError(
            f"tensor {name!r} has dtype {array.dtype}, which a checkpoint cannot hold; "
            f"supported: {', '.join(str(d) for d in ST_DTYPES.values())}"
        )
    return st


def _framework(framework: str) -> str:
    if framework in ("np", "numpy"):
        return "np"
    if framework in ("pt", "torch"):
        return "pt"
    raise CheckpointError(f"framework must be 'np' or 'pt', got framework={framework!r}")


def _to_framework(array: np.ndarray, framework: str) -> Any:
    if framework == "np":
        return array
    try:
        import torch
    except ImportError as exc:
        raise CheckpointError("framework='pt' needs torch, which is not installed") from exc
    name = array.dtype.name
    if name == "bfloat16":
        return torch.from_numpy(array.view(np.int16)).view(torch.bfloat16)
    if name in ("float8_e4m3fn", "float8_e5m2"):
        return torch.from_numpy(array.view(np.uint8)).view(getattr(torch, name))
    return torch.from_numpy(array)


# -- transforms -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Transforms:
    """The lossy steps asked for: applied to floating-point tensors of two or more axes (pruning
    only to those whose names ``prune_include`` / ``prune_exclude`` select, see
    :func:`sparsecodecs.transforms.prune_scope`)."""

    prune: str | None = None
    cluster: int | None = None
    prune_include: tuple[str, ...] | None = None
    prune_exclude: tuple[str, ...] | None = None

    def __bool__(self) -> bool:
        return self.prune is not None or self.cluster is not None

    def _prunes(self, name: str) -> bool:
        from .transforms import prune_scope

        return self.prune is not None and prune_scope(self.prune_include, self.prune_exclude)(name)

    def applies(self, name: str, dtype: str, shape: tuple[int, ...]) -> bool:
        return (
            (self.cluster is not None or self._prunes(name))
            and dtype in _FLOAT_ST and len(shape) >= 2
        )

    def apply(self, array: np.ndarray, name: str) -> np.ndarray:
        """The transformed array (a row block of a tensor is transformed on its own: with
        ``cluster``, each block gets its own centroids)."""
        from .transforms import cluster, prune

        out = array
        if self._prunes(name):
            out, _ = prune(out, self.prune)
        if self.cluster is not None:
            out, _ = cluster(out, self.cluster)
        return out

    def record(self, names: list[str]) -> dict[str, Any]:
        spec: dict[str, Any] = {"lossy": True}
        if self.prune is not None:
            spec["prune"] = self.prune
        if self.cluster is not None:
            spec["cluster"] = self.cluster
        spec["tensors"] = names
        return spec


# -- the tensor table -------------------------------------------------------------------------


def _checkpoint_metadata(
    table: Mapping[str, tuple[str, list[int]]],
    user: Mapping[str, str] | None,
    transforms: dict[str, Any] | None,
) -> dict[str, str]:
    from . import __version__

    meta = {
        "format": FORMAT_NAME,
        _KEY_VERSION: __version__,
        _KEY_CONTAINER: CONTAINER_VERSION,
        _KEY_TENSORS: json.dumps(
            {n: {"dtype": d, "shape": s} for n, (d, s) in table.items()}, separators=(",", ":")
        ),
    }
    if user is not None:
        meta[_KEY_METADATA] = json.dumps(dict(user), separators=(",", ":"))
    if transforms is not None:
        meta[_KEY_TRANSFORMS] = json.dumps(transforms, separators=(",", ":"))
    return meta


def _check_user_metadata(metadata: object) -> dict[str, str] | None:
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise CheckpointError(f"metadata must be a dict of str to str, got {metadata!r:.200}")
    return dict(metadata)


@dataclass(frozen=True)
class _Blocks:
    """A tensor split into row blocks: block ``i`` holds rows ``rows[i]:rows[i + 1]`` in the
    frame at bytes ``offsets[i]:offsets[i + 1]`` of the tensor's entry."""

    rows: np.ndarray  # int64, strictly increasing, rows[0] == 0, rows[-1] == shape[0]
    offsets: np.ndarray  # int64, strictly increasing, offsets[0] == 0, offsets[-1] == nbytes

    def __len__(self) -> int:
        return len(self.rows) - 1


@dataclass(frozen=True)
class _Info:
    """What a compressed checkpoint's header says: the tensor table and the metadata."""

    table: dict[str, tuple[str, tuple[int, ...]]]
    metadata: dict[str, str] | None
    transforms: dict[str, Any] | None
    blocks: dict[str, _Blocks] = field(default_factory=dict)


def _parse_blocks(
    header: _Header, raw: object, table: Mapping[str, tuple[str, tuple[int, ...]]]
) -> dict[str, _Blocks]:
    """The block table, checked against the tensor table and the entries (it is never trusted:
    rows must tile ``0..shape[0]`` and offsets the entry's bytes, in order, without overlap)."""
    path = header.path
    if not isinstance(raw, dict):
        raise _fail(path, f"{_KEY_BLOCKS} is not an object")
    out = {}
    for name, spec in raw.items():
        where = f"{_KEY_BLOCKS}[{name!r}]"
        if name not in table:
            raise _fail(path, f"{where} names no tensor of the file")
        shape = table[name][1]
        entry = header.entry(name)
        ok = (
            isinstance(spec, dict)
            and set(spec) == {"rows", "offsets"}
            and all(
                isinstance(spec[k], list)
                and all(type(v) is int and 0 <= v < 1 << 63 for v in spec[k])
                for k in ("rows", "offsets")
            )
        )
        if not ok:
            raise _fail(path, f"{where} must be {{'rows': [ints], 'offsets': [ints]}}, got "
                              f"{spec!r:.200}")
        rows, offsets = spec["rows"], spec["offsets"]
        if len(rows) < 2 or len(rows) != len(offsets):
            raise _fail(path, f"{where} needs as many row bounds as offsets, at least 2; got "
                              f"{len(rows)} and {len(offsets)}")
        if not shape:
            raise _fail(path, f"{where}: tensor {name!r} is a scalar and cannot have row blocks")
        if rows[0] != 0 or rows[-1] != shape[0]:
            raise _fail(path, f"{where}: blocks cover rows {rows[0]}..{rows[-1]}, but tensor "
                              f"{name!r} has rows 0..{shape[0]}: rows are missing")
        r = np.asarray(rows, np.int64)
        o = np.asarray(offsets, np.int64)
        bad = np.flatnonzero(np.diff(r) <= 0)
        if bad.size:
            i = int(bad[0])
            raise _fail(path, f"{where}: block {i + 1} starts at row {rows[i + 1]}, not after "
                              f"block {i}'s start {rows[i]}: blocks overlap or are empty")
        bad = np.flatnonzero(np.diff(o) <= 0)
        if o[0] != 0 or o[-1] != entry.nbytes or bad.size:
            raise _fail(path, f"{where}: frame offsets {offsets!s:.200} do not split the entry's "
                              f"{entry.nbytes} bytes into increasing, non-empty frames")
        out[name] = _Blocks(r, o)
    return out


def _checkpoint_info(header: _Header) -> _Info:
    path, meta = header.path, header.metadata or {}
    if meta.get("format") != FORMAT_NAME:
        raise _fail(
            path,
            f"not a sparsecodecs checkpoint (its __metadata__ format is {meta.get('format')!r}); "
            "compress it with sparsecodecs.compress or `sparsecodecs compress`",
        )
    version = meta.get(_KEY_CONTAINER)
    if version not in (CONTAINER_VERSION, CONTAINER_VERSION_BLOCKS):
        raise _fail(path, f"unsupported container version {version!r}; this library reads "
                          f"{CONTAINER_VERSION!r} and {CONTAINER_VERSION_BLOCKS!r}")
    if (version == CONTAINER_VERSION_BLOCKS) != (_KEY_BLOCKS in meta):
        raise _fail(path, f"container version {version!r} "
                          + ("needs" if version == CONTAINER_VERSION_BLOCKS else "must not have")
                          + f" a block table ({_KEY_BLOCKS})")
    try:
        table = json.loads(meta[_KEY_TENSORS])
        user = json.loads(meta[_KEY_METADATA]) if _KEY_METADATA in meta else None
        transforms = json.loads(meta[_KEY_TRANSFORMS]) if _KEY_TRANSFORMS in meta else None
        blocks = json.loads(meta[_KEY_BLOCKS]) if _KEY_BLOCKS in meta else {}
    except (KeyError, ValueError, RecursionError) as exc:
        raise _fail(path, f"malformed sparsecodecs metadata: {exc!r}") from exc
    names = [e.name for e in header.entries]
    if not isinstance(table, dict) or sorted(table) != sorted(names):
        raise _fail(path, "the sparsecodecs tensor table does not list the file's entries")
    parsed = {}
    for name, spec in table.items():
        ok = (
            isinstance(spec, dict)
            and spec.get("dtype") in ST_DTYPES
            and isinstance(spec.get("shape"), list)
            and all(type(d) is int and d >= 0 for d in spec["shape"])
        )
        if not ok:
            raise _fail(path, f"tensor table entry {name!r} is malformed: {spec!r:.200}")
        parsed[name] = (spec["dtype"], tuple(spec["shape"]))
    for e in header.entries:
        if e.dtype != "U8" or len(e.shape) != 1:
            raise _fail(path, f"entry {e.name!r} is {e.dtype} {list(e.shape)}, not a U8 frame")
    if user is not None and (
        not isinstance(user, dict) or not all(isinstance(v, str) for v in user.values())
    ):
        raise _fail(path, f"{_KEY_METADATA} is not an object of strings: {user!r:.200}")
    if transforms is not None and (
        not isinstance(transforms, dict)
        or not isinstance(transforms.get("tensors", []), list)
        or not all(isinstance(t, str) for t in transforms.get("tensors", []))
    ):
        raise _fail(path, f"{_KEY_TRANSFORMS} is not an object with a list of tensor names: "
                          f"{transforms!r:.200}")
    return _Info(parsed, user, transforms, _parse_blocks(header, blocks, parsed))


# -- reading ----------------------------------------------------------------------------------


class safe_open:  # the name safetensors users know
    """Lazy, per-tensor access to a compressed checkpoint, in the shape of ``safetensors``.

    Only the header is read on opening; :meth:`get_tensor` reads and decodes one frame.

    Parameters
    ----------
    filename
        A compressed checkpoint written by :func:`save_file` or :func:`compress`.
    framework
        ``"np"`` (numpy arrays, the default) or ``"pt"`` (torch tensors; needs torch).
    device
        Accepted for compatibility with ``safetensors.safe_open``; only ``"cpu"``.
    threads
        How many threads decode a tensor: the row blocks of a split tensor are decoded side by
        side, a single frame's streams split (see :func:`sparsecodecs.decode`). ``None``
        (default) is 1, ``0`` every core; the bits are the same whatever the number.

    Examples
    --------
    >>> import numpy as np, tempfile, os, sparsecodecs as sc
    >>> path = os.path.join(tempfile.mkdtemp(), "m.safetensors")
    >>> sc.save_file({"a": np.arange(6, dtype=np.int8).reshape(2, 3)}, path)
    >>> with sc.safe_open(path) as f:
    ...     f.get_tensor("a")
    array([[0, 1, 2],
           [3, 4, 5]], dtype=int8)
    """

    def __init__(self, filename: str | os.PathLike[str], framework: str = "np",
                 device: str = "cpu", *, threads: int | None = None) -> None:
        self._framework = _framework(framework)
        self._threads = resolve_threads(threads)
        if device != "cpu":
            raise CheckpointError(f"device must be 'cpu', got device={device!r}")
        self.path = os.fspath(filename)
        try:
            self._fh: IO[bytes] = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        except FileNotFoundError as exc:
            raise CheckpointError(f"{self.path}: no such file") from exc
        try:
            self._header = _read_header(self._fh, self.path)
            self._info = _checkpoint_info(self._header)
        except BaseException:
            self._fh.close()
            raise

    def __enter__(self) -> safe_open:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        self._fh.close()

    def keys(self) -> list[str]:
        """The tensor names, sorted (as ``safetensors`` lists them)."""
        return sorted(self._info.table)

    def metadata(self) -> dict[str, str] | None:
        """The user's metadata as it was given to :func:`save_file` (or in the input file)."""
        return None if self._info.metadata is None else dict(self._info.metadata)

    def transforms(self) -> dict[str, Any] | None:
        """The lossy transforms applied when compressing (``None``: the file is lossless)."""
        return self._info.transforms

    def dtype(self, name: str) -> str:
        """The safetensors dtype name of tensor ``name`` (e.g. ``"BF16"``)."""
        self._header.entry(name)
        return self._info.table[name][0]

    def shape(self, name: str) -> tuple[int, ...]:
        """The shape of tensor ``name``."""
        self._header.entry(name)
        return self._info.table[name][1]

    def get_frame(self, name: str) -> bytes:
        """The bytes of tensor ``name``'s entry, undecoded: its frame, or for a tensor split into
        row blocks its block frames one after the other (see :meth:`get_block_frames`)."""
        return bytes(_read_entry(self._fh, self._header.entry(name), self.path))

    def blocks(self, name: str) -> list[tuple[int, int]] | None:
        """The row ranges ``(start, stop)`` of tensor ``name``'s blocks, or ``None`` if the tensor
        is one frame."""
        self._header.entry(name)
        b = self._info.blocks.get(name)
        return None if b is None else list(itertools.pairwise(b.rows.tolist()))

    def get_block_frames(self, name: str) -> list[bytes]:
        """The frames of tensor ``name``: one per row block, or one for the whole tensor."""
        entry = self._header.entry(name)
        b = self._info.blocks.get(name)
        if b is None:
            return [self.get_frame(name)]
        return [self._block_frame(entry, b, i) for i in range(len(b))]

    def _block_frame(self, entry: _Entry, b: _Blocks, i: int) -> bytes:
        start, stop = int(b.offsets[i]), int(b.offsets[i + 1])
        part = _Entry(f"{entry.name}[block {i}]", "U8", (stop - start,), entry.start + start,
                      entry.start + stop)
        return bytes(_read_entry(self._fh, part, self.path))

    def _decode(self, frame: bytes, name: str, shape: tuple[int, ...], what: str,
                threads: int | None = None) -> np.ndarray:
        """Decode ``frame`` after checking that its header claims the dtype and shape the tensor
        table expects (before anything is allocated)."""
        dtype = self._info.table[name][0]
        stored = np.dtype(np.uint8) if dtype == "BOOL" else ST_DTYPES[dtype]
        info = read_frame(frame).info
        if info.dtype != stored or info.shape != shape:
            raise _fail(
                self.path,
                f"tensor {name!r}{what}: its frame holds {info.dtype} {list(info.shape)}, but the "
                f"tensor table says {dtype} {list(shape)}",
            )
        return decode(frame, threads=threads or self._threads)

    def _rows(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` of tensor ``name`` (``0 <= start <= stop <= rows``), decoding only
        the blocks that hold them."""
        entry = self._header.entry(name)
        dtype, shape = self._info.table[name]
        want = ST_DTYPES[dtype]
        b = self._info.blocks.get(name)
        if b is None:
            whole = self._decode(self.get_frame(name), name, shape, "")
            return whole.view(want) if not shape or (start, stop) == (0, shape[0]) else (
                whole[start:stop].view(want)
            )
        out_shape = (stop - start, *shape[1:])
        limit = get_decode_limit()
        if math.prod(out_shape) * want.itemsize > limit:
            raise DecodeLimitError(
                f"{self.path}: tensor {name!r} rows {start}:{stop} {list(out_shape)} need "
                f"{math.prod(out_shape) * want.itemsize} bytes, over the decode limit of {limit}; "
                "call sparsecodecs.set_decode_limit() to allow it"
            )
        out = np.empty(out_shape, np.uint8 if dtype == "BOOL" else want)
        first = max(int(np.searchsorted(b.rows, start, side="right")) - 1, 0)
        touched = [i for i in range(first, len(b) if stop > start else 0) if b.rows[i] < stop]

        def place(i: int, frame: bytes, threads: int | None) -> None:
            r0, r1 = int(b.rows[i]), int(b.rows[i + 1])
            block = self._decode(frame, name, (r1 - r0, *shape[1:]),
                                 f" block {i} (rows {r0}:{r1})", threads)
            lo, hi = max(r0, start), min(r1, stop)
            out[lo - start : hi - start] = block[lo - r0 : hi - r0]

        if self._threads > 1 and len(touched) > 1:
            # The file is read in order on this thread; the blocks decode side by side (the
            # kernels release the GIL), one thread each, into disjoint rows of ``out``.
            frames = [self._block_frame(entry, b, i) for i in touched]
            with ThreadPoolExecutor(min(self._threads, len(touched))) as pool:
                for f in [pool.submit(place, i, fr, 1) for i, fr in zip(touched, frames,
                                                                         strict=True)]:
                    f.result()
        else:
            for i in touched:
                place(i, self._block_frame(entry, b, i), None)
        return out.view(want)

    def get_array(self, name: str) -> np.ndarray:
        """Tensor ``name`` decoded as a numpy array (whatever ``framework`` is)."""
        self._header.entry(name)
        shape = self._info.table[name][1]
        return self._rows(name, 0, shape[0] if shape else 0)

    def get_tensor(self, name: str) -> Any:
        """Tensor ``name``, read and decoded alone, as a numpy array or a torch tensor."""
        return _to_framework(self.get_array(name), self._framework)

    def get_slice(self, name: str) -> TensorSlice:
        """A lazy view of tensor ``name`` that decodes only the row blocks a slice touches.

        ``f.get_slice(name)[a:b]`` (also ``[a]``, ``[:]``, and ``[a:b, ...]`` with plain slices
        of the other axes) reads and decodes the blocks holding rows ``a..b``; a tensor stored
        as one frame is decoded whole and sliced. Steps along the first axis and rows out of
        range raise :class:`SliceError`.

        Examples
        --------
        >>> import numpy as np, tempfile, os, sparsecodecs as sc
        >>> path = os.path.join(tempfile.mkdtemp(), "m.safetensors")
        >>> e = np.arange(40, dtype=np.int32).reshape(10, 4)
        >>> sc.save_file({"e": e}, path, block_bytes=48)  # 3 rows (48 bytes) a block
        >>> with sc.safe_open(path) as f:
        ...     f.blocks("e"), f.get_slice("e").get_shape(), f.get_slice("e")[4:6]
        ([(0, 3), (3, 6), (6, 9), (9, 10)], [10, 4], array([[16, 17, 18, 19],
               [20, 21, 22, 23]], dtype=int32))
        """
        self._header.entry(name)
        return TensorSlice(self, name)

    def inspect(self, name: str) -> Report:
        """The accounting of tensor ``name``'s frame (verified, not decoded); for a tensor in row
        blocks, the sum over its block frames."""
        frames = self.get_block_frames(name)
        reports = [inspect(f) for f in frames]
        return reports[0] if len(reports) == 1 else _merge_reports(
            reports, self._info.table[name][1]
        )

    def report(self) -> CheckpointReport:
        """The accounting of every tensor and the container (reads every frame, decodes none)."""
        reports = {e.name: self.inspect(e.name) for e in self._header.entries}
        return CheckpointReport(self.path, reports, self._header.size, self._info.transforms)


def _merge_reports(reports: list[Report], shape: tuple[int, ...]) -> Report:
    """One report for a tensor stored as several block frames: sizes summed, role by role and
    section by section."""
    roles: dict[str, int] = {}
    sections: dict[tuple[str, str], int] = {}
    for r in reports:
        for role, n in r.role_bytes.items():
            roles[role] = roles.get(role, 0) + n
        for sec in r.sections:
            sections[sec.name, sec.role] = sections.get((sec.name, sec.role), 0) + sec.nbytes
    codecs = list(dict.fromkeys(r.codec for r in reports))
    return Report(
        codec="+".join(codecs),
        config=dict(reports[0].config),
        dtype=reports[0].dtype,
        shape=tuple(shape),
        dense_bytes=sum(r.dense_bytes for r in reports),
        frame_bytes=sum(r.frame_bytes for r in reports),
        theoretical_bytes=sum(r.theoretical_bytes for r in reports),
        role_bytes=roles,
        sections=tuple(SectionReport(n, role, b) for (n, role), b in sections.items()),
    )


class TensorSlice:
    """What :meth:`safe_open.get_slice` returns (the shape of safetensors' ``PySafeSlice``)."""

    def __init__(self, f: safe_open, name: str) -> None:
        self._f = f
        self.name = name

    def get_shape(self) -> list[int]:
        """The tensor's shape."""
        return list(self._f.shape(self.name))

    def get_dtype(self) -> str:
        """The tensor's safetensors dtype name (e.g. ``"BF16"``)."""
        return self._f.dtype(self.name)

    def __getitem__(self, key: object) -> Any:
        shape = self._f.shape(self.name)
        start, stop, single, rest = _row_range(key, shape, self.name)
        rows = self._f._rows(self.name, start, stop)
        if rest:
            index: tuple[slice, ...] = (slice(None), *rest)
            rows = rows[index]
        if single:
            rows = rows[0]
        if self._f._framework == "pt":
            rows = np.ascontiguousarray(rows)
        return _to_framework(rows, self._f._framework)


_SUPPORTED_SLICES = "[a:b], [a], [:] and [a:b, <slices of the other axes>]"


def _row_range(
    key: object, shape: tuple[int, ...], name: str
) -> tuple[int, int, bool, tuple[slice, ...]]:
    """``(start, stop, single row?, slices of the other axes)`` of an index along axis 0."""
    if not shape:
        raise SliceError(f"tensor {name!r} is a scalar; read it with get_tensor")
    n = shape[0]
    rest: tuple[slice, ...] = ()
    if isinstance(key, tuple):
        if not key:
            return 0, n, False, ()
        whole: tuple[Any, ...] = key
        if len(whole) > len(shape) or not all(isinstance(k, slice) for k in whole[1:]):
            raise SliceError(
                f"tensor {name!r} {list(shape)}: unsupported index {whole!r}; "
                f"supported: {_SUPPORTED_SLICES}"
            )
        key, rest = whole[0], whole[1:]
    if isinstance(key, slice):
        if key.step not in (None, 1):
            raise SliceError(f"tensor {name!r}: slices with a step along the first axis are not "
                             f"supported, got step {key.step!r}; take [a:b] and step in numpy")
        bounds = []
        for value, default in ((key.start, 0), (key.stop, n)):
            if value is None:
                bounds.append(default)
                continue
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise SliceError(f"tensor {name!r}: slice bounds must be integers, got {key!r}")
            bounds.append(int(value) + n if value < 0 else int(value))
        start, stop = bounds
        if not 0 <= start <= stop <= n:
            raise SliceError(f"tensor {name!r}: rows {key.start}:{key.stop} are out of range for "
                             f"{n} rows (need 0 <= start <= stop <= {n}, negatives counted from "
                             "the end)")
        return start, stop, False, rest
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        i = int(key) + n if key < 0 else int(key)
        if not 0 <= i < n:
            raise SliceError(f"tensor {name!r}: row {key} is out of range for {n} rows")
        return i, i + 1, True, rest
    raise SliceError(f"tensor {name!r}: unsupported index {key!r}; supported: {_SUPPORTED_SLICES}")


def load_file(filename: str | os.PathLike[str], framework: str = "np", *,
              threads: int | None = None) -> dict[str, Any]:
    """Load every tensor of a compressed checkpoint (like ``safetensors.numpy.load_file``).

    Returns a dict in file order; with ``framework="pt"``, torch tensors. ``threads``: as
    :class:`safe_open`'s.
    """
    with safe_open(filename, framework=framework, threads=threads) as f:
        return {e.name: f.get_tensor(e.name) for e in f._header.entries}


# -- accounting -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointReport:
    """Where the bytes of a compressed checkpoint went: per tensor, by role, and in total.

    ``container_bytes`` is what the safetensors header costs (the file minus its frames);
    ``role_bytes`` sums the frames' roles (``header`` being the frames' own headers).
    """

    path: str
    tensors: dict[str, Report]
    file_bytes: int
    transforms: dict[str, Any] | None = None
    input_bytes: int | None = None
    seconds: float | None = None
    errors: dict[str, float] = field(default_factory=dict)

    @property
    def dense_bytes(self) -> int:
        return sum(r.dense_bytes for r in self.tensors.values())

    @property
    def frame_bytes(self) -> int:
        return sum(r.frame_bytes for r in self.tensors.values())

    @property
    def theoretical_bytes(self) -> int:
        return sum(r.theoretical_bytes for r in self.tensors.values())

    @property
    def container_bytes(self) -> int:
        return self.file_bytes - self.frame_bytes

    @property
    def role_bytes(self) -> dict[str, int]:
        roles = {"header": 0, **{r: 0 for r in ROLES}}
        for r in self.tensors.values():
            for role, n in r.role_bytes.items():
                roles[role] = roles.get(role, 0) + n
        return roles

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "file_bytes": self.file_bytes,
            "input_bytes": self.input_bytes,
            "dense_bytes": self.dense_bytes,
            "frame_bytes": self.frame_bytes,
            "theoretical_bytes": self.theoretical_bytes,
            "container_bytes": self.container_bytes,
            "role_bytes": self.role_bytes,
            "seconds": self.seconds,
            "transforms": self.transforms,
            "errors": dict(self.errors),
            "tensors": {n: r.to_dict() for n, r in self.tensors.items()},
        }

    def __str__(self) -> str:
        dense = self.dense_bytes

        def pct(n: int) -> str:
            return f"{100 * n / dense:8.3f}%" if dense else "       -"

        width = max([len(n) for n in self.tensors] + [6])
        lines = [f"{'tensor':<{width}}  {'dtype':<13} {'codec':<8} {'dense':>14} "
                 f"{'frame':>14} {'%':>9}"]
        for name, r in self.tensors.items():
            lines.append(
                f"{name:<{width}}  {r.dtype:<13} {r.codec:<8} {r.dense_bytes:>14,} "
                f"{r.frame_bytes:>14,} {100 * r.effective:8.3f}%"
            )
        lines.append(f"{len(self.tensors)} tensors in {self.path}")
        rows: list[tuple[str, int | None]] = [
            ("dense", dense), ("theoretical", self.theoretical_bytes)
        ]
        if self.input_bytes is not None:
            rows.insert(0, ("input file", self.input_bytes))
        rows += [("frames", self.frame_bytes), ("  by role:", None)]
        rows += [(f"    {role}", n) for role, n in self.role_bytes.items()]
        rows += [("  container (safetensors header)", self.container_bytes),
                 ("file", self.file_bytes),
                 ("overhead (file - theoretical)", self.file_bytes - self.theoretical_bytes)]
        for label, n in rows:
            lines.append(f"{label:<34}" + ("" if n is None else f"{n:>14,}  {pct(n)}"))
        if self.seconds is not None:
            mb = (self.input_bytes or dense) / 1e6
            lines.append(f"time {self.seconds:.2f} s ({mb / max(self.seconds, 1e-9):.1f} MB/s)")
        if self.transforms:
            worst = max(self.errors.values(), default=0.0)
            lines.append(
                f"LOSSY: {_describe_transforms(self.transforms)} changed "
                f"{len(self.transforms.get('tensors', []))} tensors (worst relative RMS error "
                f"{worst:.3g}); recorded in the file's metadata"
            )
        return "\n".join(lines)


def _describe_transforms(spec: Mapping[str, Any]) -> str:
    parts = []
    if "prune" in spec:
        parts.append(f"prune {spec['prune']}")
    if "cluster" in spec:
        parts.append(f"cluster {spec['cluster']}")
    return " + ".join(parts)


# -- writing ----------------------------------------------------------------------------------


def _write_checkpoint(
    fh: IO[bytes],
    plan: list[tuple[str, list[int] | None]],
    metadata: Mapping[str, str],
    frames: Iterable[bytes],
) -> None:
    """Stream ``frames`` into ``fh`` behind a reserved header.

    ``plan`` lists the tensors in data order, each with its row bounds if it is split into row
    blocks (``None``: one frame); ``frames`` yields the frames in that order, block by block. A
    blocked tensor's frames are concatenated into its one entry and the block table (row bounds,
    frame offsets) goes into the metadata. The header is sized for the widest possible offsets,
    written as zeros, and overwritten with the real (space-padded) header once the frame sizes
    are known: one pass, one frame at a time.
    """
    blocked = {name: rows for name, rows in plan if rows is not None}

    def full(offsets: Mapping[str, list[int]]) -> dict[str, str]:
        if not blocked:
            return dict(metadata)
        table = {n: {"rows": rows, "offsets": offsets[n]} for n, rows in blocked.items()}
        return {**metadata, _KEY_CONTAINER: CONTAINER_VERSION_BLOCKS,
                _KEY_BLOCKS: json.dumps(table, separators=(",", ":"))}

    widest = {n: [_BIG] * len(rows) for n, rows in blocked.items()}
    reserve = -(-len(_header_bytes(((n, "U8", [_BIG], _BIG, _BIG) for n, _ in plan),
                                   full(widest))) // 8) * 8
    fh.write(bytes(_LEN.size + reserve))
    specs: list[tuple[str, str, list[int], int, int]] = []
    offsets: dict[str, list[int]] = {}
    it = iter(frames)
    pos = 0
    for name, rows in plan:
        start = pos
        ends = [0]
        for _ in range(1 if rows is None else len(rows) - 1):
            frame = next(it)
            fh.write(frame)
            pos += len(frame)
            ends.append(pos - start)
        specs.append((name, "U8", [pos - start], start, pos))
        if rows is not None:
            offsets[name] = ends
    if next(it, None) is not None:  # pragma: no cover - an internal planning bug
        raise AssertionError("more frames than the plan has blocks")
    fh.seek(0)
    fh.write(_padded(_header_bytes(specs, full(offsets)), reserve))
    fh.seek(0, os.SEEK_END)


def _row_bounds(shape: Sequence[int], itemsize: int, block_bytes: int) -> list[int] | None:
    """Row bounds splitting a tensor into blocks of at most ``block_bytes`` dense bytes (at
    least one row each), or ``None`` if it stays one frame (small, a scalar, one row, or
    ``block_bytes == 0``)."""
    if block_bytes == 0 or len(shape) == 0 or shape[0] < 2:
        return None
    row = math.prod(shape[1:]) * itemsize
    if row == 0 or row * shape[0] <= block_bytes:
        return None
    per = max(1, block_bytes // row)
    return [*range(0, shape[0], per), shape[0]]


def _check_block_bytes(block_bytes: object) -> int:
    if type(block_bytes) is not int or block_bytes < 0:
        raise CheckpointError(
            f"block_bytes must be an integer >= 0 (0: never split), got {block_bytes!r}"
        )
    return block_bytes


def _codec_of(codec: str | Mapping[str, Any] | Codec) -> Codec:
    return codec if isinstance(codec, Codec) else get_codec(codec)


def save_file(
    tensors: Mapping[str, Any],
    filename: str | os.PathLike[str],
    codec: str | Mapping[str, Any] | Codec = "hybrid",
    metadata: Mapping[str, str] | None = None,
    *,
    force: bool = False,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> None:
    """Compress ``tensors`` into a checkpoint file (like ``safetensors.numpy.save_file``).

    Parameters
    ----------
    tensors
        Names to numpy arrays or torch tensors (any supported dtype, bfloat16 and float8
        included; torch is not imported unless a tensor is a torch tensor).
    filename
        The file to write, atomically (a temporary file renamed into place).
    codec
        A codec name, config or instance (default ``"hybrid"``); applied to every tensor.
    metadata
        String-to-string metadata, kept and given back by :meth:`safe_open.metadata`.
    force
        Replace ``filename`` if it exists (otherwise :class:`OutputExistsError`).
    block_bytes
        Tensors of more dense bytes than this are split into row blocks of at most this many
        bytes, one frame each (``0``: never split); see ``docs/checkpoints.md``.
    """
    user = _check_user_metadata(metadata)
    block_bytes = _check_block_bytes(block_bytes)
    codec_obj = _codec_of(codec)
    arrays: dict[str, np.ndarray] = {}
    table: dict[str, tuple[str, list[int]]] = {}
    for name, x in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise CheckpointError(f"tensor names must be strings other than __metadata__, "
                                  f"got {name!r}")
        array = _as_numpy(x, name)
        st = _st_dtype(array, name)
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        arrays[name] = array.view(np.uint8) if st == "BOOL" else array
        table[name] = (st, list(array.shape))
    meta = _checkpoint_metadata(table, user, None)
    plan = [(n, _row_bounds(a.shape, a.itemsize, block_bytes)) for n, a in arrays.items()]

    def frames() -> Iterator[bytes]:
        for name, rows in plan:
            a = arrays[name]
            if rows is None:
                yield codec_obj.encode(a)
            else:
                for r0, r1 in itertools.pairwise(rows):
                    yield codec_obj.encode(a[r0:r1])

    with _atomic_file(Path(filename), force) as fh:
        _write_checkpoint(fh, plan, meta, frames())


# -- compressing and decompressing files and folders -------------------------------------------


@dataclass(frozen=True)
class _Task:
    """Encode one tensor, or rows ``rows[0]:rows[1]`` of it, read from the file at ``path``."""

    path: str
    entry: _Entry
    codec: Codec
    transforms: _Transforms
    rows: tuple[int, int] | None = None


#: A task's result: the frame, its accounting, and (for a lossy transform) the squared error
#: and squared norm sums that give the relative RMS error.
_Result = tuple[bytes, Report, "tuple[float, float] | None"]


def _encode_task(task: _Task) -> _Result:
    """Read one tensor or row block, transform it if asked, encode it (run in the caller, a
    worker process or a Dask worker)."""
    e = task.entry
    if task.rows is not None:
        r0, r1 = task.rows
        row = e.nbytes // e.shape[0]
        e = _Entry(e.name, e.dtype, (r1 - r0, *e.shape[1:]), e.start + r0 * row,
                   e.start + r1 * row)
    try:
        fh = open(task.path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise CheckpointError(
            f"{task.path}: cannot read the input where tensor {e.name!r} is encoded ({exc}); on "
            "a Dask cluster every worker must see the input at the same path"
        ) from exc
    with fh:
        array = _read_tensor(fh, e, task.path)
    sums = None
    if task.transforms.applies(task.entry.name, task.entry.dtype, task.entry.shape):
        before = array
        array = task.transforms.apply(array, task.entry.name)
        sums = _sq_sums(before, array)
    frame = task.codec.encode(array)
    return frame, inspect(frame), sums


def _sq_sums(before: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    """(sum of squared changes, sum of squared values) over the finite elements: the relative
    RMS error of a tensor is ``sqrt(first / second)``, summed over its blocks first."""
    a = before.astype(np.float64)
    d = after.astype(np.float64) - a
    ok = np.isfinite(a) & np.isfinite(d)
    return float(np.dot(d[ok], d[ok])), float(np.dot(a[ok], a[ok]))


def _windowed(
    tasks: list[_Task], submit: Callable[[_Task], Any], window: int
) -> Iterator[_Result]:
    """Results in task order from futures made by ``submit``, at most ``window`` in flight."""
    pending: collections.deque[Any] = collections.deque()
    it = iter(tasks)
    try:
        for task in itertools.islice(it, window):
            pending.append(submit(task))
        while pending:
            nxt = next(it, None)
            if nxt is not None:
                pending.append(submit(nxt))
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


def _run(tasks: list[_Task], workers: int, client: Any = None) -> Iterator[_Result]:
    """Results in task order: here, in ``workers`` processes, or on a Dask cluster."""
    if client is not None:
        from .distributed import submitter

        submit, window = submitter(client, _encode_task)
        yield from _windowed(tasks, submit, window)
        return
    if workers <= 1 or len(tasks) <= 1:
        yield from map(_encode_task, tasks)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        yield from _windowed(tasks, lambda t: pool.submit(_encode_task, t), 2 * workers)


def is_safetensors(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a file that starts like a safetensors file (a plausible header
    length followed by ``{``); nothing else is checked."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_LEN.size + 1)
            size = os.fstat(fh.fileno()).st_size
    except OSError:
        return False
    if len(head) < _LEN.size + 1:
        return False
    (n,) = _LEN.unpack(head[: _LEN.size])
    return n <= min(_MAX_HEADER, size - _LEN.size) and head[_LEN.size :] == b"{"


def _open_input(path: str) -> _Header:
    try:
        with open(path, "rb") as fh:
            return _read_header(fh, path)
    except (FileNotFoundError, IsADirectoryError) as exc:
        raise CheckpointError(f"{path}: no such file") from exc


def _compress_file(
    src: str,
    header: _Header,
    dst_fh: IO[bytes],
    codec: Codec,
    transforms: _Transforms,
    block_bytes: int,
    run: Callable[[list[_Task]], Iterator[_Result]],
    tick: Callable[[str], None],
) -> tuple[dict[str, Report], dict[str, float], dict[str, Any] | None]:
    lossy = [e.name for e in header.entries if transforms.applies(e.name, e.dtype, e.shape)]
    record = transforms.record(lossy) if transforms else None
    table = {e.name: (e.dtype, list(e.shape)) for e in header.entries}
    meta = _checkpoint_metadata(table, header.metadata, record)
    plan = [
        (e, _row_bounds(e.shape, ST_DTYPES[e.dtype].itemsize, block_bytes))
        for e in header.entries
    ]
    tasks: list[_Task] = []
    for e, rows in plan:
        if rows is None:
            tasks.append(_Task(src, e, codec, transforms))
        else:
            tasks += [_Task(src, e, codec, transforms, (r0, r1))
                      for r0, r1 in itertools.pairwise(rows)]
    reports: dict[str, Report] = {}
    errors: dict[str, float] = {}

    def frames() -> Iterator[bytes]:
        results = run(tasks)
        for e, rows in plan:
            parts: list[Report] = []
            num = den = 0.0
            lossy_tensor = False
            for _ in range(1 if rows is None else len(rows) - 1):
                frame, report, sums = next(results)
                parts.append(report)
                if sums is not None:
                    lossy_tensor = True
                    num, den = num + sums[0], den + sums[1]
                yield frame
            reports[e.name] = parts[0] if rows is None else _merge_reports(parts, e.shape)
            if lossy_tensor:
                errors[e.name] = math.sqrt(num) / math.sqrt(den) if den else 0.0
            tick(e.name)

    _write_checkpoint(dst_fh, [(e.name, rows) for e, rows in plan], meta, frames())
    return reports, errors, record


@dataclass(frozen=True)
class _Layout:
    """An input checkpoint: one file, or a folder of shards with its index."""

    files: list[str]  # names relative to root (a folder) or the file itself
    headers: list[_Header]
    index: str | None  # the index file name, for a folder

    @property
    def size(self) -> int:
        return sum(h.size for h in self.headers)


def _layout(src: str | os.PathLike[str]) -> _Layout:
    root = Path(src)
    if root.is_dir():
        indexes = sorted(p.name for p in root.glob("*.index.json"))
        if len(indexes) != 1:
            raise CheckpointError(
                f"{root}: a checkpoint folder needs exactly one *.index.json, found "
                f"{len(indexes)}" + (f" ({', '.join(indexes)})" if indexes else "")
            )
        try:
            index = json.loads((root / indexes[0]).read_text("utf-8"))
            weight_map = index["weight_map"]
            if not isinstance(weight_map, dict):
                raise TypeError("weight_map is not an object")
            shards = sorted(set(weight_map.values()))
            if not all(isinstance(s, str) for s in shards):
                raise TypeError("weight_map values are not file names")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError) as exc:
            raise CheckpointError(f"{root / indexes[0]}: malformed index: {exc!r:.300}") from exc
        for shard in shards:
            if Path(shard).name != shard or not (root / shard).is_file():
                raise CheckpointError(
                    f"{root / indexes[0]} names shard {shard!r}, which does not exist in {root}"
                )
        headers = [_open_input(str(root / s)) for s in shards]
        held = {e.name: h.path for h in headers for e in h.entries}
        for name, shard in weight_map.items():
            if held.get(name) != str(root / shard):
                raise CheckpointError(
                    f"{root / indexes[0]} maps tensor {name!r} to {shard}, which does not hold it"
                )
        return _Layout(shards, headers, indexes[0])
    if not root.exists():
        raise CheckpointError(f"{root}: no such file or folder")
    return _Layout([str(root)], [_open_input(str(root))], None)


def compress(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    codec: str | Mapping[str, Any] | Codec = "hybrid",
    *,
    prune: str | None = None,
    cluster: int | None = None,
    prune_include: Sequence[str] | None = None,
    prune_exclude: Sequence[str] | None = None,
    workers: int = 1,
    force: bool = False,
    progress: Progress | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    client: Any = None,
) -> CheckpointReport:
    """Compress a safetensors file, or a folder of shards with its ``*.index.json``.

    Tensors (or row blocks of large tensors) are read, encoded and written one at a time
    (``workers`` processes, or the workers of a Dask cluster, each hold one); the output has the
    input's layout (a file, or a folder with the same shard names and a copy of the index) and
    is written atomically. Every input header is checked before anything is written.

    Parameters
    ----------
    src, dst
        Input and output paths (file or folder).
    codec
        Codec name, config or instance for every tensor (default ``"hybrid"``).
    prune, cluster
        Lossy, off by default: magnitude-prune (``"2:4"``) and/or cluster (``16`` centroids) the
        floating-point tensors of two or more axes before encoding (see
        :mod:`sparsecodecs.transforms`). Recorded in the output's metadata.
    prune_include, prune_exclude
        Which tensors ``prune`` touches: regular expressions searched in tensor names. A tensor
        is pruned if it matches one of ``prune_include`` (``None``: all) and none of
        ``prune_exclude`` (``None``: :data:`~sparsecodecs.transforms.DEFAULT_PRUNE_EXCLUDE`,
        i.e. embeddings, norms and the output head are left alone; ``()``: none excluded).
    workers
        Processes encoding in parallel; the output is byte-identical to ``workers=1``.
    force
        Replace ``dst`` if it exists.
    progress
        Called as ``progress(name, done, total)`` after each tensor.
    block_bytes
        Tensors of more dense bytes than this are split into row blocks of at most this many
        bytes, one frame each, encoded in parallel and decodable by row range (``0``: never
        split). Default 32 MiB.
    client
        A ``dask.distributed.Client`` (or a scheduler address such as
        ``"tcp://scheduler:8786"``): encode the tensors and blocks on its workers, which read
        them from ``src`` themselves (so ``src`` must be readable at the same path there); this
        process reads the headers and writes the output. Overrides ``workers``; the output is
        byte-identical to the serial run. See ``docs/scaling.md``.

    Returns
    -------
    CheckpointReport
        The accounting of the output, with the input size, the time and any lossy errors.
    """
    from .transforms import parse_pattern, prune_scope

    started = time.perf_counter()
    codec_obj = _codec_of(codec)
    if prune is not None:
        nm = parse_pattern(prune)
        if nm is None:
            raise CheckpointError(f"prune must be an N:M pattern such as '2:4', got {prune!r}")
        prune = f"{nm[0]}:{nm[1]}"
    include, exclude = (None if p is None else (p,) if isinstance(p, str) else tuple(p)
                        for p in (prune_include, prune_exclude))
    prune_scope(include, exclude)  # invalid patterns: CodecConfigError before anything is read
    if cluster is not None and (type(cluster) is not int or not 1 <= cluster <= 1 << 16):
        raise CheckpointError(f"cluster must be an integer in [1, 65536], got {cluster!r}")
    if type(workers) is not int or workers < 1:
        raise CheckpointError(f"workers must be an integer >= 1, got {workers!r}")
    block_bytes = _check_block_bytes(block_bytes)
    transforms = _Transforms(prune, cluster, include, exclude)
    layout = _layout(src)
    for h in layout.headers:
        for e in h.entries:
            _entry_dtype(e, h.path)  # refuse unsupported dtypes before writing anything
    with contextlib.ExitStack() as stack:
        if isinstance(client, str):
            from .distributed import connect

            client = stack.enter_context(connect(client))
        report = _compress(layout, src, dst, codec_obj, transforms, block_bytes, force,
                           progress, lambda tasks: _run(tasks, workers, client), started)
    return report


def _compress(
    layout: _Layout,
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    codec_obj: Codec,
    transforms: _Transforms,
    block_bytes: int,
    force: bool,
    progress: Progress | None,
    run: Callable[[list[_Task]], Iterator[_Result]],
    started: float,
) -> CheckpointReport:
    total = sum(len(h.entries) for h in layout.headers)
    done = [0]

    def tick(name: str) -> None:
        done[0] += 1
        if progress is not None:
            progress(name, done[0], total)

    reports: dict[str, Report] = {}
    errors: dict[str, float] = {}
    record: dict[str, Any] | None = None
    out = Path(dst)
    if layout.index is None:
        with _atomic_file(out, force) as fh:
            reports, errors, record = _compress_file(
                layout.files[0], layout.headers[0], fh, codec_obj, transforms, block_bytes, run,
                tick,
            )
        size = out.stat().st_size
    else:
        with _atomic_dir(out, force) as tmp:
            for shard, header in zip(layout.files, layout.headers, strict=True):
                with open(tmp / shard, "wb") as fh:
                    shard_reports, shard_errors, rec = _compress_file(
                        header.path, header, fh, codec_obj, transforms, block_bytes, run, tick
                    )
                reports.update(shard_reports)
                errors.update(shard_errors)
                if rec is not None:
                    record = {**rec, "tensors": (record or {}).get("tensors", []) + rec["tensors"]}
            shutil.copyfile(Path(src) / layout.index, tmp / layout.index)
        size = sum((out / s).stat().st_size for s in layout.files)
    return CheckpointReport(
        str(out), reports, size, record, layout.size, time.perf_counter() - started, errors
    )


def _decompress_file(header: _Header, dst_fh: IO[bytes], tick: Callable[[str], None],
                     threads: int = 1) -> None:
    info = _checkpoint_info(header)
    specs = []
    pos = 0
    for e in header.entries:
        dtype, shape = info.table[e.name]
        n = math.prod(shape) * ST_DTYPES[dtype].itemsize
        specs.append((e.name, dtype, list(shape), pos, pos + n))
        pos += n
    meta = info.metadata
    if info.transforms is not None:
        meta = {**(meta or {}), _KEY_TRANSFORMS: json.dumps(info.transforms)}
    dst_fh.write(_padded(_header_bytes(specs, meta)))
    with safe_open(header.path, threads=threads) as f:
        for e in header.entries:
            blocks = f.blocks(e.name)
            if blocks is None:
                dst_fh.write(f.get_array(e.name).tobytes())
            else:  # one block per thread in memory at a time
                for k in range(0, len(blocks), threads):
                    group = blocks[k : k + threads]
                    dst_fh.write(f._rows(e.name, group[0][0], group[-1][1]).tobytes())
            tick(e.name)


def decompress(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    force: bool = False,
    progress: Progress | None = None,
    threads: int | None = None,
) -> CheckpointReport:
    """Turn a compressed checkpoint (file or folder) back into plain safetensors.

    Tensors come back bit-identical, in their original order, with the user's metadata (plus
    ``sparsecodecs.transforms`` if a lossy transform was applied when compressing); one tensor is
    decoded at a time (with ``threads`` > 1, that many of its row blocks side by side, or one
    frame's streams split; ``None`` is 1, ``0`` every core). Returns the accounting of the
    *input*.
    """
    nthreads = resolve_threads(threads)
    started = time.perf_counter()
    layout = _layout(src)
    infos = [_checkpoint_info(h) for h in layout.headers]  # check all before writing
    total = sum(len(i.table) for i in infos)
    done = [0]

    def tick(name: str) -> None:
        done[0] += 1
        if progress is not None:
            progress(name, done[0], total)

    out = Path(dst)
    if layout.index is None:
        with _atomic_file(out, force) as fh:
            _decompress_file(layout.headers[0], fh, tick, nthreads)
        size = out.stat().st_size
    else:
        with _atomic_dir(out, force) as tmp:
            for shard, header in zip(layout.files, layout.headers, strict=True):
                with open(tmp / shard, "wb") as fh:
                    _decompress_file(header, fh, tick, nthreads)
            shutil.copyfile(Path(src) / layout.index, tmp / layout.index)
        size = sum((out / s).stat().st_size for s in layout.files)
    report = inspect_checkpoint(src)
    return CheckpointReport(
        report.path, report.tensors, report.file_bytes, report.transforms, size,
        time.perf_counter() - started,
    )


def inspect_checkpoint(path: str | os.PathLike[str]) -> CheckpointReport:
    """The per-tensor and total accounting of a compressed checkpoint (file or folder)."""
    layout = _layout(path)
    tensors: dict[str, Report] = {}
    transforms = None
    for h in layout.headers:
        with safe_open(h.path) as f:
            r = f.report()
        tensors.update(r.tensors)
        transforms = transforms or r.transforms
    return CheckpointReport(os.fspath(path), tensors, layout.size, transforms)
