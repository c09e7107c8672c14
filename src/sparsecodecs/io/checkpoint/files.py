"""Writing compressed checkpoints (:func:`save_file`), and compressing, decompressing and
inspecting files and folders of shards (:func:`compress`, :func:`decompress`,
:func:`inspect_checkpoint`), serially, on worker processes or on a Dask cluster."""

from __future__ import annotations

import collections
import contextlib
import itertools
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..._atomic import atomic_dir as _atomic_dir  # one atomic writer for the library
from ..._atomic import atomic_file as _atomic_file
from ...registry import (
    CheckpointError,
    Codec,
    Report,
    get_codec,
    inspect,
    resolve_threads,
)
from .container import (
    _BIG,
    _KEY_BLOCKS,
    _KEY_CONTAINER,
    _KEY_TRANSFORMS,
    _LEN,
    _MAX_HEADER,
    CONTAINER_VERSION_BLOCKS,
    DEFAULT_BLOCK_BYTES,
    ST_DTYPES,
    Progress,
    _as_numpy,
    _check_user_metadata,
    _checkpoint_info,
    _checkpoint_metadata,
    _Entry,
    _entry_dtype,
    _Header,
    _header_bytes,
    _padded,
    _read_header,
    _read_tensor,
    _st_dtype,
    _Transforms,
)
from .reading import (
    CheckpointReport,
    _merge_reports,
    safe_open,
)

__all__ = [
    "compress",
    "decompress",
    "inspect_checkpoint",
    "is_safetensors",
    "save_file",
]


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
    from ...transforms import _sum_squares  # (not BLAS's dot: see there)

    return _sum_squares(d[ok]), _sum_squares(a[ok])


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
        from ..dask import submitter

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
    from ...transforms import parse_pattern, prune_scope

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
            from ..dask import connect

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
        names = [e.name for e in header.entries]
        for name, whole in zip(names, f._arrays(names, blocked=False), strict=True):
            if whole is not None:
                dst_fh.write(whole.tobytes())
            else:  # in row blocks: one block per thread in memory at a time
                blocks = f.blocks(name)
                assert blocks is not None
                for k in range(0, len(blocks), threads):
                    group = blocks[k : k + threads]
                    dst_fh.write(f._rows(name, group[0][0], group[-1][1]).tobytes())
            tick(name)


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
    decoded at a time, or with ``threads`` > 1 that many tensors of one frame side by side (and
    one more read ahead), a tensor in row blocks that many of its blocks (``None`` is 1, ``0``
    every core). Returns the accounting of the *input*.
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
