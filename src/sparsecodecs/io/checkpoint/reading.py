"""Reading compressed checkpoints: :class:`safe_open` (lazy, per tensor, row ranges of blocked
tensors through :meth:`safe_open.get_slice`), :func:`load_file`, and the accounting
(:class:`CheckpointReport`)."""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import IO, Any

import numpy as np

from ...registry import (
    ROLES,
    CheckpointError,
    DecodeLimitError,
    Report,
    SliceError,
    get_decode_limit,
    inspect,
    resolve_threads,
)
from ...registry._pool import imap_in_order, map_in_order
from ...registry.accounting import SectionReport, codec_for_frame
from ...registry.frame import Frame, use_frame
from .container import (
    ST_DTYPES,
    _Blocks,
    _checkpoint_info,
    _Entry,
    _fail,
    _framework,
    _read_entry,
    _read_header,
    _to_framework,
)

__all__ = [
    "CheckpointReport",
    "TensorSlice",
    "load_file",
    "safe_open",
]


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
        side, a single frame's streams split (see :func:`sparsecodecs.decode`); reading many
        tensors (:func:`load_file`, :func:`~sparsecodecs.decompress`), up to that many tensors
        stored as one frame each decode side by side, one thread each. ``None`` (default) is
        1, ``0`` every core; the bits are the same whatever the number.

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
        return bytes(self._read(name))

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

    def _decode(self, frame: bytes | bytearray, name: str, shape: tuple[int, ...], what: str,
                threads: int | None = None) -> np.ndarray:
        """Decode ``frame`` after checking that its header claims the dtype and shape the tensor
        table expects (before anything is allocated). The frame is parsed and hashed once."""
        dtype = self._info.table[name][0]
        stored = np.dtype(np.uint8) if dtype == "BOOL" else ST_DTYPES[dtype]
        wanted = threads or self._threads

        def use(parsed: Frame) -> np.ndarray:
            info = parsed.info
            if info.dtype != stored or info.shape != shape:
                raise _fail(
                    self.path,
                    f"tensor {name!r}{what}: its frame holds {info.dtype} {list(info.shape)}, "
                    f"but the tensor table says {dtype} {list(shape)}",
                )
            return codec_for_frame(parsed).decode_frame(parsed, threads=wanted)

        return use_frame(frame, use, threads=wanted)

    def _rows(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` of tensor ``name`` (``0 <= start <= stop <= rows``), decoding only
        the blocks that hold them."""
        entry = self._header.entry(name)
        dtype, shape = self._info.table[name]
        want = ST_DTYPES[dtype]
        b = self._info.blocks.get(name)
        if b is None:
            whole = self._whole(self._read(name), name)
            return whole if not shape or (start, stop) == (0, shape[0]) else whole[start:stop]
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
            map_in_order(lambda j: place(touched[j], frames[j], 1), range(len(touched)),
                         self._threads)
        else:
            for i in touched:
                place(i, self._block_frame(entry, b, i), None)
        return out.view(want)

    def _read(self, name: str) -> bytearray:
        """The bytes of tensor ``name``'s entry as read (get_frame's, not copied again)."""
        return _read_entry(self._fh, self._header.entry(name), self.path)

    def _whole(self, frame: bytes | bytearray, name: str, threads: int | None = None
               ) -> np.ndarray:
        """Tensor ``name``, stored as the one frame ``frame``, decoded."""
        dtype, shape = self._info.table[name]
        whole = self._decode(frame, name, shape, "", threads)
        return whole.view(ST_DTYPES[dtype])

    def _arrays(self, names: Iterable[str], *, blocked: bool = True
                ) -> Iterator[np.ndarray | None]:
        """What :meth:`get_array` gives for each of ``names``, in order. With ``threads`` > 1
        and more than one name, tensors stored as one frame decode side by side, one thread
        each, up to ``threads`` at a time (their frames read in order on this thread, one
        ahead): a checkpoint of many tensors gains about as many times, where one frame's
        streams split gained 1.1-1.5x (docs/benchmarks.md). A tensor in row blocks decodes its
        blocks side by side, alone; with ``blocked`` False it is None instead, for the caller
        to read in parts."""
        names = list(names)
        if self._threads <= 1 or len(names) <= 1:
            for name in names:
                self._header.entry(name)
                yield None if not blocked and name in self._info.blocks else self.get_array(name)
            return

        def thunks() -> Iterator[Callable[[], np.ndarray | None]]:
            for name in names:
                self._header.entry(name)
                if name not in self._info.blocks:
                    yield partial(self._whole, self._read(name), name, 1)
                else:
                    yield partial(_given, self.get_array(name) if blocked else None)

        yield from imap_in_order(thunks(), self._threads)

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


def _given(value: np.ndarray | None) -> np.ndarray | None:
    return value


def load_file(filename: str | os.PathLike[str], framework: str = "np", *,
              threads: int | None = None) -> dict[str, Any]:
    """Load every tensor of a compressed checkpoint (like ``safetensors.numpy.load_file``).

    Returns a dict in file order; with ``framework="pt"``, torch tensors. ``threads``: as
    :class:`safe_open`'s (tensors of one frame decode side by side, up to ``threads`` at a
    time).
    """
    with safe_open(filename, framework=framework, threads=threads) as f:
        names = [e.name for e in f._header.entries]
        return {name: _to_framework(a, f._framework)  # type: ignore[arg-type]
                for name, a in zip(names, f._arrays(names), strict=True)}


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
