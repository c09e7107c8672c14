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
``workers > 1``). ``docs/checkpoints.md`` describes the layout and the memory behaviour.

>>> import numpy as np, tempfile, os, sparsecodecs as sc
>>> w = np.zeros((4, 8), np.float32); w[:, ::4] = 1.5
>>> path = os.path.join(tempfile.mkdtemp(), "model.sc.safetensors")
>>> sc.save_file({"w": w}, path, metadata={"format": "pt"})
>>> with sc.safe_open(path) as f:
...     f.keys(), f.metadata(), f.get_tensor("w").tobytes() == w.tobytes()
(['w'], {'format': 'pt'}, True)
"""

from __future__ import annotations

import contextlib
import difflib
import json
import math
import os
import shutil
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import ml_dtypes
import numpy as np

from .registry import (
    ROLES,
    CheckpointError,
    Codec,
    OutputExistsError,
    Report,
    TensorNotFoundError,
    UnsupportedDtypeError,
    decode,
    get_codec,
    inspect,
)

__all__ = [
    "FORMAT_NAME",
    "CheckpointReport",
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
#: Version of the container layout described in ``docs/checkpoints.md``.
CONTAINER_VERSION = "1"
_KEY_VERSION = "sparsecodecs.version"
_KEY_CONTAINER = "sparsecodecs.container"
_KEY_TENSORS = "sparsecodecs.tensors"
_KEY_METADATA = "sparsecodecs.metadata"
_KEY_TRANSFORMS = "sparsecodecs.transforms"

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


# -- writing atomically -----------------------------------------------------------------------


def _check_output(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise OutputExistsError(f"{path} exists; pass force=True (--force) to overwrite it")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise CheckpointError(f"output directory {parent} does not exist")


def _publish(tmp: str, path: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, (0o777 if os.path.isdir(tmp) else 0o666) & ~umask)
    if path.is_dir() and not path.is_symlink():  # only reached with force
        old = tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old.")
        os.replace(path, os.path.join(old, "x"))
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


@contextlib.contextmanager
def _atomic_file(path: Path, force: bool) -> Iterator[IO[bytes]]:
    """A file opened for writing that becomes ``path`` only if the block succeeds."""
    _check_output(path, force)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w+b") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        _publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _atomic_dir(path: Path, force: bool) -> Iterator[Path]:
    """A folder that becomes ``path`` only if the block succeeds."""
    _check_output(path, force)
    tmp = tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        yield Path(tmp)
        _publish(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


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
    """The lossy steps asked for: applied to floating-point tensors of two or more axes."""

    prune: str | None = None
    cluster: int | None = None

    def __bool__(self) -> bool:
        return self.prune is not None or self.cluster is not None

    def applies(self, dtype: str, shape: tuple[int, ...]) -> bool:
        return bool(self) and dtype in _FLOAT_ST and len(shape) >= 2

    def apply(self, array: np.ndarray) -> tuple[np.ndarray, float]:
        """The transformed array and its relative RMS error against the input."""
        from .transforms import cluster, prune

        out, err = array, 0.0
        if self.prune is not None:
            out, pr = prune(out, self.prune)
            err = pr.rel_rms_error
        if self.cluster is not None:
            out, _ = cluster(out, self.cluster)
            err = _rel_rms(array, out)
        return out, err

    def record(self, names: list[str]) -> dict[str, Any]:
        spec: dict[str, Any] = {"lossy": True}
        if self.prune is not None:
            spec["prune"] = self.prune
        if self.cluster is not None:
            spec["cluster"] = self.cluster
        spec["tensors"] = names
        return spec


def _rel_rms(before: np.ndarray, after: np.ndarray) -> float:
    a = before.astype(np.float64)
    d = after.astype(np.float64) - a
    ok = np.isfinite(a) & np.isfinite(d)
    norm = float(np.sqrt(np.sum(a[ok] ** 2)))
    return float(np.sqrt(np.sum(d[ok] ** 2))) / norm if norm else 0.0


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
class _Info:
    """What a compressed checkpoint's header says: the tensor table and the metadata."""

    table: dict[str, tuple[str, tuple[int, ...]]]
    metadata: dict[str, str] | None
    transforms: dict[str, Any] | None


def _checkpoint_info(header: _Header) -> _Info:
    path, meta = header.path, header.metadata or {}
    if meta.get("format") != FORMAT_NAME:
        raise _fail(
            path,
            f"not a sparsecodecs checkpoint (its __metadata__ format is {meta.get('format')!r}); "
            "compress it with sparsecodecs.compress or `sparsecodecs compress`",
        )
    if meta.get(_KEY_CONTAINER) != CONTAINER_VERSION:
        raise _fail(path, f"unsupported container version {meta.get(_KEY_CONTAINER)!r}")
    try:
        table = json.loads(meta[_KEY_TENSORS])
        user = json.loads(meta[_KEY_METADATA]) if _KEY_METADATA in meta else None
        transforms = json.loads(meta[_KEY_TRANSFORMS]) if _KEY_TRANSFORMS in meta else None
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
    if user is not None and not isinstance(user, dict):
        raise _fail(path, "sparsecodecs.metadata is not an object")
    return _Info(parsed, user, transforms)


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
                 device: str = "cpu") -> None:
        self._framework = _framework(framework)
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
        """The frame of tensor ``name``, undecoded."""
        return bytes(_read_entry(self._fh, self._header.entry(name), self.path))

    def get_array(self, name: str) -> np.ndarray:
        """Tensor ``name`` decoded as a numpy array (whatever ``framework`` is)."""
        frame = self.get_frame(name)
        dtype, shape = self._info.table[name]
        array = decode(frame)
        want = ST_DTYPES[dtype]
        stored = np.dtype(np.uint8) if dtype == "BOOL" else want
        if array.dtype != stored or array.shape != shape:
            raise _fail(
                self.path,
                f"tensor {name!r}: its frame decodes to {array.dtype} {list(array.shape)}, but "
                f"the tensor table says {dtype} {list(shape)}",
            )
        return array.view(want)

    def get_tensor(self, name: str) -> Any:
        """Tensor ``name``, read and decoded alone, as a numpy array or a torch tensor."""
        return _to_framework(self.get_array(name), self._framework)

    def inspect(self, name: str) -> Report:
        """The accounting of tensor ``name``'s frame (verified, not decoded)."""
        return inspect(self.get_frame(name))

    def report(self) -> CheckpointReport:
        """The accounting of every tensor and the container (reads every frame, decodes none)."""
        reports = {e.name: inspect(self.get_frame(e.name)) for e in self._header.entries}
        return CheckpointReport(self.path, reports, self._header.size, self._info.transforms)


def load_file(filename: str | os.PathLike[str], framework: str = "np") -> dict[str, Any]:
    """Load every tensor of a compressed checkpoint (like ``safetensors.numpy.load_file``).

    Returns a dict in file order; with ``framework="pt"``, torch tensors.
    """
    with safe_open(filename, framework=framework) as f:
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
    names: list[str],
    metadata: Mapping[str, str],
    frames: Iterable[tuple[str, bytes]],
) -> None:
    """Stream ``frames`` (in ``names`` order) into ``fh`` behind a reserved header.

    The header is sized for the widest possible offsets, written as zeros, and overwritten with
    the real (space-padded) header once the frame sizes are known: one pass, one frame at a time.
    """
    reserve = -(-len(_header_bytes(((n, "U8", [_BIG], _BIG, _BIG) for n in names), metadata))
                // 8) * 8
    fh.write(bytes(_LEN.size + reserve))
    specs: list[tuple[str, str, list[int], int, int]] = []
    pos = 0
    for (name, frame), want in zip(frames, names, strict=True):
        if name != want:  # pragma: no cover - an internal ordering bug
            raise AssertionError(f"frame for {name!r} arrived in place of {want!r}")
        fh.write(frame)
        specs.append((name, "U8", [len(frame)], pos, pos + len(frame)))
        pos += len(frame)
    fh.seek(0)
    fh.write(_padded(_header_bytes(specs, metadata), reserve))
    fh.seek(0, os.SEEK_END)


def _codec_of(codec: str | Mapping[str, Any] | Codec) -> Codec:
    return codec if isinstance(codec, Codec) else get_codec(codec)


def save_file(
    tensors: Mapping[str, Any],
    filename: str | os.PathLike[str],
    codec: str | Mapping[str, Any] | Codec = "hybrid",
    metadata: Mapping[str, str] | None = None,
    *,
    force: bool = False,
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
    """
    user = _check_user_metadata(metadata)
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
    frames = ((name, codec_obj.encode(a)) for name, a in arrays.items())
    with _atomic_file(Path(filename), force) as fh:
        _write_checkpoint(fh, list(arrays), meta, frames)


# -- compressing and decompressing files and folders -------------------------------------------


@dataclass(frozen=True)
class _Task:
    path: str
    entry: _Entry
    codec: Codec
    transforms: _Transforms


def _encode_task(task: _Task) -> tuple[bytes, Report, float | None]:
    """Read one tensor, transform it if asked, encode it (run in the caller or a worker)."""
    with open(task.path, "rb") as fh:
        array = _read_tensor(fh, task.entry, task.path)
    err = None
    if task.transforms.applies(task.entry.dtype, task.entry.shape):
        array, err = task.transforms.apply(array)
    frame = task.codec.encode(array)
    return frame, inspect(frame), err


def _run(tasks: list[_Task], workers: int) -> Iterator[tuple[bytes, Report, float | None]]:
    """Results in task order; at most ``2 * workers`` tasks in flight."""
    if workers <= 1 or len(tasks) <= 1:
        yield from map(_encode_task, tasks)
        return
    import multiprocessing
    from concurrent.futures import Future, ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        pending: list[Future[tuple[bytes, Report, float | None]]] = []
        it = iter(tasks)
        for task in it:
            pending.append(pool.submit(_encode_task, task))
            if len(pending) >= 2 * workers:
                break
        while pending:
            result = pending.pop(0).result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.submit(_encode_task, nxt))
            yield result


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
    workers: int,
    tick: Callable[[str], None],
) -> tuple[dict[str, Report], dict[str, float], dict[str, Any] | None]:
    lossy = [e.name for e in header.entries if transforms.applies(e.dtype, e.shape)]
    record = transforms.record(lossy) if transforms else None
    table = {e.name: (e.dtype, list(e.shape)) for e in header.entries}
    meta = _checkpoint_metadata(table, header.metadata, record)
    tasks = [_Task(src, e, codec, transforms) for e in header.entries]
    reports: dict[str, Report] = {}
    errors: dict[str, float] = {}

    def frames() -> Iterator[tuple[str, bytes]]:
        for task, (frame, report, err) in zip(tasks, _run(tasks, workers), strict=True):
            reports[task.entry.name] = report
            if err is not None:
                errors[task.entry.name] = err
            tick(task.entry.name)
            yield task.entry.name, frame

    _write_checkpoint(dst_fh, [e.name for e in header.entries], meta, frames())
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
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{root / indexes[0]}: malformed index: {exc!r}") from exc
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
    workers: int = 1,
    force: bool = False,
    progress: Progress | None = None,
) -> CheckpointReport:
    """Compress a safetensors file, or a folder of shards with its ``*.index.json``.

    Tensors are read, encoded and written one at a time (``workers`` processes each hold one);
    the output has the input's layout (a file, or a folder with the same shard names and a copy
    of the index) and is written atomically. Every input header is checked before anything is
    written.

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
    workers
        Processes encoding in parallel; the output is byte-identical to ``workers=1``.
    force
        Replace ``dst`` if it exists.
    progress
        Called as ``progress(name, done, total)`` after each tensor.

    Returns
    -------
    CheckpointReport
        The accounting of the output, with the input size, the time and any lossy errors.
    """
    from .transforms import parse_pattern

    started = time.perf_counter()
    codec_obj = _codec_of(codec)
    if prune is not None:
        nm = parse_pattern(prune)
        if nm is None:
            raise CheckpointError(f"prune must be an N:M pattern such as '2:4', got {prune!r}")
        prune = f"{nm[0]}:{nm[1]}"
    if cluster is not None and (type(cluster) is not int or not 1 <= cluster <= 1 << 16):
        raise CheckpointError(f"cluster must be an integer in [1, 65536], got {cluster!r}")
    if type(workers) is not int or workers < 1:
        raise CheckpointError(f"workers must be an integer >= 1, got {workers!r}")
    transforms = _Transforms(prune, cluster)
    layout = _layout(src)
    for h in layout.headers:
        for e in h.entries:
            _entry_dtype(e, h.path)  # refuse unsupported dtypes before writing anything
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
                layout.files[0], layout.headers[0], fh, codec_obj, transforms, workers, tick
            )
        size = out.stat().st_size
    else:
        with _atomic_dir(out, force) as tmp:
            for shard, header in zip(layout.files, layout.headers, strict=True):
                with open(tmp / shard, "wb") as fh:
                    shard_reports, shard_errors, rec = _compress_file(
                        header.path, header, fh, codec_obj, transforms, workers, tick
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


def _decompress_file(header: _Header, dst_fh: IO[bytes], tick: Callable[[str], None]) -> None:
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
    with safe_open(header.path) as f:
        for e in header.entries:
            dst_fh.write(f.get_array(e.name).tobytes())
            tick(e.name)


def decompress(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> CheckpointReport:
    """Turn a compressed checkpoint (file or folder) back into plain safetensors.

    Tensors come back bit-identical, in their original order, with the user's metadata (plus
    ``sparsecodecs.transforms`` if a lossy transform was applied when compressing); one tensor is
    decoded at a time. Returns the accounting of the *input*.
    """
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
            _decompress_file(layout.headers[0], fh, tick)
        size = out.stat().st_size
    else:
        with _atomic_dir(out, force) as tmp:
            for shard, header in zip(layout.files, layout.headers, strict=True):
                with open(tmp / shard, "wb") as fh:
                    _decompress_file(header, fh, tick)
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
