"""The compressed checkpoint's container: the safetensors layout (length, JSON header, data),
atomic files, arrays in and out, lossy transforms' records, and the tensor and block tables of
the metadata. Everything here reads untrusted bytes and checks them before allocating."""

from __future__ import annotations

import difflib
import json
import math
import os
import struct
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

import ml_dtypes
import numpy as np

from ...registry import (
    CheckpointError,
    TensorNotFoundError,
    UnsupportedDtypeError,
)

__all__ = [
    "DEFAULT_BLOCK_BYTES",
    "FORMAT_NAME",
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
        from ...transforms import prune_scope

        return self.prune is not None and prune_scope(self.prune_include, self.prune_exclude)(name)

    def applies(self, name: str, dtype: str, shape: tuple[int, ...]) -> bool:
        return (
            (self.cluster is not None or self._prunes(name))
            and dtype in _FLOAT_ST and len(shape) >= 2
        )

    def apply(self, array: np.ndarray, name: str) -> np.ndarray:
        """The transformed array (a row block of a tensor is transformed on its own: with
        ``cluster``, each block gets its own centroids)."""
        from ...transforms import cluster, prune

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
    from ... import __version__

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
