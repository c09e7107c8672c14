"""Helpers shared by the built-in codec modules (not public API)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from ..registry import Codec, FrameLayoutError, decoding_threads, registry

C = TypeVar("C", bound=type[Codec])
T = TypeVar("T")


def builtin(cls: C) -> C:
    """Register a built-in codec class."""
    return registry.register(cls, source="builtin")


_POOLS = threading.local()  # lent_buffer's buffers, by pool name, per thread


def beside(work: Callable[[], T]) -> Callable[[], T]:
    """Start ``work`` on a kept thread (:func:`~sparsecodecs.registry._pool.run_beside`: leaf
    work only), in a copy of the caller's context where
    :func:`~sparsecodecs.registry.decode_threads` is 1 (its kernels run on that thread only);
    the function returned waits for it and returns its result, or raises what it raised.
    Call it on every path (a ``finally``): the work may be using buffers the caller owns."""

    from ..registry._pool import run_beside  # threads: imported on first use

    def run() -> T:
        with decoding_threads(1):
            return work()

    return run_beside(run).result


class lent_buffer:  # used as a function: ``with lent_buffer(...) as buf``
    """``size`` items of ``dtype`` from a buffer this thread keeps in ``pool`` between calls,
    for the block only (nothing made in it may keep the buffer; a nested block gets another).

    The smallest kept buffer that is large enough, else a new one (zeroed with ``zeroed``;
    kept buffers hold what their last block left). Afterwards the buffer goes back unless it
    is over ``max_bytes``, or the block raised and not ``keep_on_error``; a pool keeps its
    ``keep`` largest. Why: the planner's large temporaries, made and freed on every encode,
    left glibc a free top of heap that it trimmed and faulted in again on the next encode
    (docs/benchmarks.md, seventh and eighth passes). A class, not a generator: an encode
    enters several, and ``contextlib.contextmanager`` cost ~1 us each (this ~0.3)."""

    __slots__ = ("_buf", "_dtype", "_keep", "_keep_on_error", "_max_bytes", "_pool", "_size",
                 "_zeroed")

    def __init__(self, pool: str, size: int, dtype: Any, *, keep: int, zeroed: bool = False,
                 keep_on_error: bool = True, max_bytes: int = 64 << 20) -> None:
        self._pool, self._size, self._dtype, self._keep = pool, size, dtype, keep
        self._zeroed, self._keep_on_error, self._max_bytes = zeroed, keep_on_error, max_bytes
        self._buf: np.ndarray | None = None

    def __enter__(self) -> np.ndarray:
        free: list[np.ndarray] = _POOLS.__dict__.setdefault(self._pool, [])
        size = self._size
        at = next((i for i, b in enumerate(free) if b.size >= size), None)
        if at is not None:
            buf = free.pop(at)
        else:
            buf = (np.zeros if self._zeroed else np.empty)(size, self._dtype)
        self._buf = buf
        return buf[:size]

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: Any) -> None:
        buf, self._buf = self._buf, None
        if buf is None or (exc_type is not None and not self._keep_on_error):
            return
        if buf.nbytes <= self._max_bytes:
            free: list[np.ndarray] = _POOLS.__dict__.setdefault(self._pool, [])
            free.append(buf)
            free.sort(key=lambda b: b.size)
            del free[: -self._keep]


def narrowest_uint(max_value: int) -> np.dtype[Any]:
    """The narrowest unsigned dtype that holds ``max_value`` (uint8 for 0)."""
    for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
        if max_value <= np.iinfo(dt).max:
            return np.dtype(dt)
    raise OverflowError(max_value)  # pragma: no cover - larger than any array


def as_2d(shape: tuple[int, ...]) -> tuple[int, int]:
    """(rows, cols) of the 2-D view of ``shape``: leading axes flattened, the last kept."""
    if not shape:
        return 1, 1
    cols = shape[-1]
    rows = 1
    for d in shape[:-1]:
        rows *= d
    return rows, cols


def pack_fields(values: np.ndarray, bits: int) -> np.ndarray:
    """Pack unsigned integers of ``bits`` bits each, LSB first, into bytes.

    Fields of up to 8 bits go eight at a time into one little-endian word (8 * bits bits, i.e.
    ``bits`` whole bytes); wider ones bit by bit."""
    if values.size == 0 or bits == 0:
        return np.zeros(0, np.uint8)
    if bits > 8:
        v = values.astype(np.uint64, copy=False).reshape(-1, 1)
        planes = ((v >> np.arange(bits, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
        return np.packbits(planes.reshape(-1), bitorder="little")
    flat = values.reshape(-1)
    n8 = -(-flat.size // 8) * 8
    if n8 == flat.size and flat.dtype == np.uint8:
        groups = np.ascontiguousarray(flat).reshape(-1, 8)
    else:
        padded = np.zeros(n8, np.uint8)
        padded[: flat.size] = flat
        groups = padded.reshape(-1, 8)
    wdt = np.dtype("<u4" if 8 * bits <= 32 else "<u8")
    word = groups[:, 0].astype(wdt)
    for j in range(1, 8):
        word |= groups[:, j].astype(wdt) << wdt.type(bits * j)
    packed = word.view(np.uint8).reshape(-1, wdt.itemsize)[:, :bits].reshape(-1)
    return np.ascontiguousarray(packed[: -(-flat.size * bits // 8)])


#: What unpack_fields (and the compiled gather of packed centroid indices) say about set bits
#: past the last field.
PADDING_BITS_SET = "padding bits after the last field are not zero"


def check_field_bytes(packed: np.ndarray, bits: int, count: int, what: str) -> None:
    """FrameLayoutError unless ``packed`` is exactly the bytes of ``count`` ``bits``-bit fields
    (:func:`pack_fields`)."""
    expected = (count * bits + 7) // 8
    if packed.size != expected:
        raise FrameLayoutError(
            f"{what}: {packed.size} bytes, expected {expected} for {count} x {bits}-bit fields"
        )


def unpack_fields(packed: np.ndarray, bits: int, count: int, what: str) -> np.ndarray:
    """Inverse of :func:`pack_fields`; checks the byte count and that padding bits are zero."""
    check_field_bytes(packed, bits, count, what)
    if count == 0 or bits == 0:
        return np.zeros(count, np.uint64)
    if bits > 8:
        flat = np.unpackbits(packed, bitorder="little")
        if flat[count * bits :].any():
            raise FrameLayoutError(f"{what}: {PADDING_BITS_SET}")
        planes = flat[: count * bits].reshape(count, bits).astype(np.uint64)
        return (planes << np.arange(bits, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)
    n8 = -(-count // 8) * 8  # eight fields a group of `bits` bytes, read as one word
    words = np.zeros((n8 // 8, 8), np.uint8)
    if packed.size == n8 // 8 * bits:  # whole groups (window rows come padded): no copy to pad
        full = packed
    else:
        full = np.zeros(n8 // 8 * bits, np.uint8)
        full[: packed.size] = packed
    words[:, :bits] = full.reshape(-1, bits)
    w = words.view("<u8").reshape(-1, 1).astype(np.uint64, copy=False)
    fields = ((w >> (np.arange(8, dtype=np.uint64) * np.uint64(bits)))
              & np.uint64((1 << bits) - 1)).reshape(-1)
    if fields[count:].any():  # the last byte's padding bits (the bytes after it are zeros)
        raise FrameLayoutError(f"{what}: {PADDING_BITS_SET}")
    return fields[:count]
