"""Matrix products straight from compressed weights: decode on the fly, skip the zeros.

**Convention.** A weight ``W`` has shape ``(out, in)``, like a torch ``Linear`` weight, and
:func:`matmul` computes ``x @ W.T``: ``x`` of shape ``(..., in)`` gives ``(..., out)``. The
result is float32 and every sum is accumulated in float32; it equals
``x.astype(float32) @ decode(frame).astype(float32).T`` up to the order of summation.

**Paths.** What :func:`matmul` does depends on what the frame stores:

* ``nm``, ``bitmask``, ``csr``, ``csc`` and ``hybrid`` frames over an N:M or bitmask layout take
  a *zero-skipping* path: the codec validates its sections (its ``decode_parts``) and a compiled
  kernel (``kernels/compute.c``, GIL released) multiplies only the kept values, gathering the
  matching entries of ``x`` by the stored pattern or indices; 2:4 with bfloat16, float16 or
  float32 values takes a fused AVX2 GEMV at batch 1-4 (a permutation of ``x`` per pair of
  groups), every layout a zero-skipping SpMM at larger batches. 2:4 does half the multiply-adds
  of a dense product. The values are read where they lie in the frame: nothing dense is ever
  allocated. A ``hybrid`` frame first decodes its value stage (Huffman), about half the dense
  size for 2:4.
* Every other frame (``raw``, ``huffman``, ``centroid``, ``hybrid`` with a dense layout, a
  sparse layout with a non-zero ``fill``, any plug-in codec) takes the *generic* path: the
  frame is decoded in one go (``raw`` is read in place) and multiplied one block of rows at a
  time, each block turned into float32 in a buffer and handed to BLAS, so the float32 copy of
  the whole matrix never exists (bfloat16 at batch 1-16: a compiled GEMV, no buffer).

**Peak memory.** To bound the memory of any codec to the compressed weight plus one block,
store the weight as a :class:`CompressedLinear`: :meth:`CompressedLinear.from_array` encodes
each block of ``block_rows`` rows as a frame of its own, and every product decodes one block
frame at a time.

**Non-finite values** follow IEEE as the dense product does: a zero weight the kernels skip
still turns an inf or NaN of ``x`` into NaN (see docs/compute.md). ``threads=`` (default 1)
splits each frame's rows over that many threads inside the kernel; a :class:`CompressedLinear`
of at least two row blocks a thread, of :data:`BLOCKS_ON_THREADS_FROM` bytes a frame on average,
gives each thread whole blocks instead (``x @ W.T`` only: the blocks of the transposed product
add into the same result, and run in order).

Decoding limits apply as for :func:`sparsecodecs.decode`: a frame whose dense size exceeds the
decode limit is refused with :class:`~sparsecodecs.registry.errors.DecodeLimitError`.

>>> import numpy as np, sparsecodecs as sc
>>> w = np.array([[1.0, 0, 0, 2.0], [0, -1.0, 3.0, 0]], dtype=np.float32)  # (out=2, in=4)
>>> frame = sc.get_codec("nm").encode(w)
>>> x = np.array([[1.0, 2.0, 3.0, 4.0]], dtype=np.float32)
>>> sc.matmul(x, frame)
array([[9., 7.]], dtype=float32)
>>> layer = sc.CompressedLinear.from_array(w, "nm", block_rows=1)
>>> layer(x)  # x @ W.T, like torch.nn.Linear
array([[9., 7.]], dtype=float32)
>>> layer @ np.ones(4, np.float32)  # W @ v
array([3., 2.], dtype=float32)
>>> np.ones(2, np.float32) @ layer  # x @ W
array([ 1., -1.,  3.,  2.], dtype=float32)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from ..codecs._nm import nm_tables, two_four_codes
from ..codecs._parts import CompressedParts, DenseParts, MaskParts, NMParts, WindowParts
from ..kernels import _native as kn
from ..registry import (
    FLOAT_LAYOUTS,
    Codec,
    CodecConfigError,
    DecodeLimitError,
    Frame,
    FrameLayoutError,
    SectionReader,
    ShapeError,
    UnsupportedDtypeError,
    as_bits,
    bits_dtype,
    check_int,
    codec_for_frame,
    get_codec,
    get_decode_limit,
    read_frame,
)
from ..registry._pool import map_in_order
from ..registry.dtypes import name_of

__all__ = ["DEFAULT_BLOCK_ROWS", "CompressedLinear", "MatmulStats", "matmul"]

FrameLike = bytes | bytearray | memoryview

#: Rows per frame that :meth:`CompressedLinear.from_array` stores by default.
DEFAULT_BLOCK_ROWS = 256
#: Elements per block of the generic (dense) path: 1 MiB of float32.
_DENSE_BLOCK_ELEMENTS = 1 << 18
#: The compiled dense bfloat16 GEMV takes batches up to this (kernels/compute.c DENSE_MAX_NB).
_DENSE_GEMV_MAX_NB = 16
_NO_FLOATS = np.zeros(0, np.float32)
#: How the kernels turn values into float32 (kernels/compute.c): a table over every bit pattern,
#: bfloat16 by a shift, a float32 array, all ones (counts kept entries), float16's table.
_TABLE, _BFLOAT16, _FLOATS, _ONES, _F16 = 0, 1, 2, 3, 4


@dataclass
class MatmulStats:
    """What one or more products did; pass one as ``stats=`` and it is filled in (added to).

    ``paths`` has one entry per frame multiplied, ``"<codec>:<path>"`` with the path one of
    ``nm``, ``bitmask``, ``csr``, ``csc`` (zero-skipping), ``dense`` (the values read in place
    or from a decoded value stage) or ``decoded`` (the generic path). ``macs`` counts the
    multiply-adds done, ``dense_macs`` those a dense product would do (``out * in * batch``);
    ``weight_bytes`` the frame bytes read, ``dense_bytes`` the dense weight's bytes in its
    dtype.
    """

    paths: list[str] = field(default_factory=list)
    macs: int = 0
    dense_macs: int = 0
    weight_bytes: int = 0
    dense_bytes: int = 0

    @property
    def mac_fraction(self) -> float:
        """``macs / dense_macs`` (NaN before any product)."""
        return self.macs / self.dense_macs if self.dense_macs else float("nan")

    @property
    def byte_fraction(self) -> float:
        """``weight_bytes / dense_bytes`` (NaN before any product)."""
        return self.weight_bytes / self.dense_bytes if self.dense_bytes else float("nan")


# -- inputs -----------------------------------------------------------------------------------


def _parse_weight(frame: FrameLike) -> Frame:
    """Parse and verify a weight frame; it must hold a 2-D array."""
    parsed = read_frame(frame)
    if len(parsed.info.shape) != 2:
        raise ShapeError(
            f"a weight frame must hold a 2-D array of shape (out, in); this one holds shape "
            f"{list(parsed.info.shape)} ({parsed.info.dtype}): reshape the weight to 2-D "
            "before encoding it"
        )
    return parsed


def _as_input(x: object, what: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu" and arr.dtype.name not in FLOAT_LAYOUTS:
        raise UnsupportedDtypeError(
            f"{what} must hold real numbers (floats, bfloat16, float8 or integers), got dtype "
            f"{arr.dtype}"
        )
    return arr


def _per_row(value: object, rows: int, name: str) -> np.ndarray | None:
    """``scale`` / ``bias``: None, a scalar or one float32 per output row."""
    if value is None:
        return None
    arr = _as_input(value, name).astype(np.float32)
    if arr.ndim == 0:
        return np.full(rows, arr, np.float32)
    if arr.shape != (rows,):
        raise ShapeError(
            f"{name} must be a scalar or have shape ({rows},), one value per output row of "
            f"the weight; got shape {arr.shape}"
        )
    return arr


# -- float32 values ---------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _table(dtype: np.dtype[Any]) -> np.ndarray:
    """float32 value of every bit pattern of an 8- or 16-bit dtype (its own ``astype``)."""
    patterns = np.arange(1 << (8 * dtype.itemsize), dtype=np.uint64).astype(bits_dtype(dtype))
    table = patterns.view(dtype).astype(np.float32)
    table.setflags(write=False)
    return table


def _native(dtype: np.dtype[Any]) -> np.dtype[Any]:
    return dtype.newbyteorder("=") if dtype.byteorder == ">" else dtype


def _float_source(bits: np.ndarray, dtype: np.dtype[Any]) -> tuple[np.ndarray, np.ndarray, int]:
    """``(vtab, vf, mode)``: how the kernels turn the value bit patterns into float32."""
    native = _native(dtype)
    if name_of(native) == "bfloat16":
        return _NO_FLOATS, _NO_FLOATS, _BFLOAT16
    if native == np.float16:
        return _table(native), _NO_FLOATS, _F16
    if native.itemsize <= 2:
        return _table(native), _NO_FLOATS, _TABLE
    if native == np.float32:
        return _NO_FLOATS, bits.view(np.float32), _FLOATS
    with np.errstate(all="ignore"):  # float64 beyond float32's range: inf, as astype gives
        return _NO_FLOATS, bits.view(native).astype(np.float32), _FLOATS


def _to_float32(bits: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
    """A block of bit patterns as float32 values (a view for float32)."""
    native = _native(dtype)
    if name_of(native) == "bfloat16":  # the top half of a float32: a shift, exact
        return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)
    if native == np.float32:
        return bits.view(np.float32)
    return bits.view(native).astype(np.float32)


# -- one frame ----------------------------------------------------------------------------------


def _dense_product(
    bits: np.ndarray, dtype: np.dtype[Any], xt: np.ndarray, yt: np.ndarray, trans: bool,
    threads: int = 1,
) -> None:
    """The generic path: ``bits`` (rows, cols) multiplied by BLAS one block of rows at a time;
    bfloat16 at batch 1 to 16 by a compiled GEMV that widens the values in registers (BLAS
    would need a float32 copy of each block first)."""
    rows, cols = bits.shape
    gemv = xt.shape[1] <= _DENSE_GEMV_MAX_NB and name_of(_native(dtype)) == "bfloat16"
    if gemv and not trans and cols and bits.flags.c_contiguous:
        kn.dense_matmul(bits.view(np.uint16), rows, cols, xt, yt, threads)
        return
    step = max(1, _DENSE_BLOCK_ELEMENTS // max(cols, 1))
    for r0 in range(0, rows, step):
        block = _to_float32(bits[r0 : r0 + step], dtype)
        if trans:
            yt += block.T @ xt[r0 : r0 + step]
        else:
            np.dot(block, xt, out=yt[r0 : r0 + step])


def _check_limit(parsed: Frame) -> None:
    info = parsed.info
    limit = get_decode_limit()
    if info.nbytes > limit:
        raise DecodeLimitError(
            f"weight frame holds {info.nbytes} dense bytes (shape {list(info.shape)}, "
            f"{info.dtype}), over the decode limit of {limit} bytes; call "
            "sparsecodecs.set_decode_limit() to allow it"
        )


_FRAME_ERRORS = {
    -1: "section 'values' holds a non-zero value in a padding slot",
    -3: "the frame's sparse sections index outside the weight (a code, index or count out of "
        "range)",
}


def _skipping_product(
    parts: Any, rows: int, cols: int, dtype: np.dtype[Any], xt: np.ndarray, yt: np.ndarray,
    trans: bool, threads: int, ones: bool = False, xbf16: bool = False,
) -> tuple[str, int]:
    """One zero-skipping kernel call (kernels/compute.c): ``(path, kept values multiplied)``.

    ``ones``: every kept value counts as 1.0 (the non-finite fix-up counts kept entries).
    ``xbf16``: ``xt`` holds bfloat16 values (2:4 bfloat16 weights from batch 5 then take
    bfloat16 pair products, see :func:`matmul`)."""
    values = parts.data if isinstance(parts, CompressedParts) else parts.values
    vtab, vf, mode = _float_source(values, dtype)
    if ones:
        vtab, vf, mode = _NO_FLOATS, _NO_FLOATS, _ONES
    if isinstance(parts, NMParts):
        path = "nm"
        lut = np.ascontiguousarray(parts.lut, np.uint16)
        count = kn.nm_matmul(
            np.ascontiguousarray(parts.packed), lut, lut.shape[1],
            nm_tables(parts.n, parts.m).positions, parts.n, parts.m, rows, cols, values,
            vtab, vf, mode, xt, yt, int(trans), threads, int(xbf16),
        )
    elif isinstance(parts, MaskParts):
        path = "bitmask"
        count = kn.mask_matmul(
            parts.mask, rows, cols, values, vtab, vf, mode, xt, yt, int(trans), threads
        )
    else:
        indptr = parts.indptr.astype(np.int64)  # small; one kernel for every indptr width
        if not parts.by_columns:
            path = "csr"
            count = kn.csr_matmul(
                indptr, parts.indices, cols, values, vtab, vf, mode, xt, yt, int(trans), threads
            )
        else:
            # CSC of W is CSR of A = W.T: x @ W.T = x @ A, the other mode of the kernel.
            path = "csc"
            out = np.zeros_like(yt)
            count = kn.csr_matmul(
                indptr, parts.indices, rows, values, vtab, vf, mode, xt, out, int(not trans),
                threads,
            )
            if trans:
                yt += out
            else:
                yt[...] = out
    if count < 0:
        raise FrameLayoutError(_FRAME_ERRORS.get(count, f"corrupt sparse sections ({count})"))
    return path, int(count)


#: From this batch on, a bfloat16 ``window`` frame's product decodes its kept values (half the
#: dense size, as the other dtypes' products do) and takes ``nm``'s kernels instead of the
#: fused kernel, whose passes of 4 columns of ``x`` cost in proportion to the batch: at the
#: AVX2 level and below (window_fused_below). At the AVX-512 level, whose 2:4 kernels are
#: faster, from WINDOW_FUSED_BELOW_AVX512. A stack of 4096x4096 2:4 layers, ms a layer, fused /
#: decoded: AVX-512, batch 12 11.6-12.1 / 13.3-13.9, 16 15.7-20.7 / 12.6-13.0; AVX2, batch 20
#: 22.2 / 28.3, 24 31.9-32.2 / 22.8-23.2 (docs/compute.md, "The window codec's kept values
#: 16 at a time").
WINDOW_FUSED_BELOW = 24
WINDOW_FUSED_BELOW_AVX512 = 16


def window_fused_below() -> int:
    """The batch from which a bfloat16 ``window`` product takes the kept values, at the SIMD
    level in force (read per product: ``use_simd`` may change it)."""
    if kn.get_simd() >= kn.AVX512:
        return min(WINDOW_FUSED_BELOW, WINDOW_FUSED_BELOW_AVX512)
    return WINDOW_FUSED_BELOW


def _window_product(parts: WindowParts, xt: np.ndarray, yt: np.ndarray, threads: int) -> int:
    """``yt = W @ xt`` straight from a bfloat16 ``window`` frame (kernels/compute.c; batches
    of 5 to ``window_fused_below() - 1`` in passes of 4)."""
    if yt.size == 0 or xt.size == 0:  # no output, or W has no columns: W @ xt is zeros
        yt[...] = 0
        return 0
    etab = np.ones(8, np.uint32)  # 1 marks a code the window does not have
    etab[: len(parts.window)] = np.array(parts.window, np.uint32) << np.uint32(23)
    etab[7] = 0
    count = kn.window_matmul(
        parts.pattern, parts.exponents, parts.rest, parts.escapes, parts.escaped, etab,
        parts.rows, parts.cols, xt, yt, threads,
    )
    if count < 0:
        raise FrameLayoutError(_FRAME_ERRORS.get(count, f"corrupt window sections ({count})"))
    return int(count)


def _non_finite_fixup(
    parts: Any, rows: int, cols: int, dtype: np.dtype[Any], bad: np.ndarray, yt: np.ndarray,
    trans: bool, threads: int,
) -> None:
    """IEEE for skipped zeros: where a product skipped a zero weight against an inf or NaN of
    ``x``, the dense product has ``0 * inf = NaN``; set those results to NaN.

    ``bad`` is the float32 indicator (1.0 where ``xt`` is not finite). The same kernel with
    every kept value 1.0 counts, per result, the non-finite entries of ``x`` it met on a kept
    weight; fewer than all of them means one met a skipped zero."""
    met = np.zeros_like(yt)
    _skipping_product(parts, rows, cols, dtype, bad, met, trans, threads, ones=True)
    total = bad.sum(axis=0)  # per batch column: exact small integers in float32
    yt[met < total] = np.nan


#: What the parts kept between products may hold of their own, beyond views of the frame:
#: this many bytes, or an eighth of the frame if more (lookup tables, row pointers).
_SMALL_OWNED = 1 << 16


def _views_of_the_frame(parts: Any, frame_nbytes: int) -> bool:
    """Whether ``parts`` holds views of the frame's bytes and little of its own: then keeping
    them between products costs (almost) no memory. Decoded values (``hybrid``'s
    entropy-coded ones, codes unpacked one per group) are arrays that own their memory; those
    are decoded again for every product, as the memory target of a product asks."""
    if not is_dataclass(parts):
        return False
    owned = 0
    for f in fields(parts):
        a = getattr(parts, f.name)
        if not isinstance(a, np.ndarray):
            continue
        while isinstance(a.base, np.ndarray):
            a = a.base
        if a.base is None:
            owned += a.nbytes
    return owned <= max(_SMALL_OWNED, frame_nbytes // 8)


def _frame_parts(parsed: Frame) -> tuple[Any, str]:
    """``(parts, path)`` of a frame: its codec's validated parts (path "dense"), or its decoded
    bits as DenseParts (path "decoded": a codec without ``decode_parts``, or a non-zero fill,
    whose empty entries are not zeros to skip)."""
    codec = codec_for_frame(parsed)
    decode_parts = getattr(codec, "decode_parts", None)
    if decode_parts is None:
        return DenseParts(as_bits(codec.decode_frame(parsed))[0].reshape(-1)), "decoded"
    reader = SectionReader(parsed.sections)
    parts = decode_parts(reader, parsed.info)
    reader.check_all_used()
    if getattr(parts, "fill", None) is not None:
        return DenseParts(parts.to_bits(parsed.info.shape).reshape(-1)), "decoded"
    return parts, "dense"


def _as_two_four(parts: MaskParts, rows: int, cols: int, dtype: np.dtype[Any]
                 ) -> MaskParts | NMParts:
    """A bitmask whose every group of four columns keeps exactly two, as 2:4 parts (the same
    kept values, in the same order): the product then takes the fused 2:4 kernels, which read
    a pattern code a group where the bitmask GEMV multiplies every column (4096x4096 2:4
    bfloat16, ms a layer: batch 1 1.9 against 2.5, batch 8 5.4-5.7 against 9.3-9.7), and from
    batch 9 the 2:4 SpMM, where the bitmask's made a list of columns a row (4096x4096 in
    hybrid frames of 256 rows, float32 x, AVX-512, ms: batch 16 25.7-26.6 -> 14.7-16.0, batch
    64 33.7-34.0 -> 24.5-24.7; at the AVX2 level, where the 2:4 SpMM is the generic one,
    batches 9 and 33 are ~20% slower, 24 and 64 faster: one path for every level, since the
    paths' sums differ in order). The codes cost 0.19 ms for 4096x4096. Anything else (a
    non-zero fill, rows not whole groups, values the fused kernels do not take, a group of one
    or three) keeps the bitmask."""
    if (parts.fill is not None or cols % 4 or rows * cols == 0
            or name_of(_native(dtype)) not in ("bfloat16", "float16", "float32")):
        return parts
    codes = two_four_codes(parts.mask, rows * cols // 4)
    if codes is None:
        return parts
    return NMParts(2, 4, codes[0], codes[1], parts.values)


def _frame_product(
    parsed: Frame, xt: np.ndarray, yt: np.ndarray, trans: bool, stats: MatmulStats | None,
    bad: np.ndarray | None = None, threads: int = 1, slot: list[Any] | None = None,
    xbf16: bool = False,
) -> None:
    """One frame's weight W: ``yt = W @ xt`` (``trans`` False) or ``yt += W.T @ xt``.

    ``bad``: None if ``xt`` is all finite, else its non-finite indicator (float32 0/1).
    ``slot``: a one-item list that keeps the frame's validated parts between products (a
    :class:`CompressedLinear`'s), when they are views of the frame (see
    :func:`_views_of_the_frame`); None: parse them for this product only."""
    _check_limit(parsed)
    info = parsed.info
    rows, cols = info.shape
    if slot is not None and slot[0] is not None:
        parts, path = slot[0]
    else:
        parts, path = _frame_parts(parsed)
        if slot is not None and path == "dense" and _views_of_the_frame(parts, parsed.nbytes):
            slot[0] = (parts, path)
    nb = xt.shape[1]
    count = rows * cols
    fused = (isinstance(parts, WindowParts) and not trans and bad is None
             and nb < window_fused_below() and name_of(_native(info.dtype)) == "bfloat16")
    if isinstance(parts, WindowParts) and not fused:
        parts = parts.nm_parts(threads)  # the kept values (half the dense size), nm's kernels
    if isinstance(parts, MaskParts) and not trans:
        parts = _as_two_four(parts, rows, cols, info.dtype)
    if fused:
        path, count = "window", _window_product(parts, xt, yt, threads)
    elif isinstance(parts, DenseParts):
        _dense_product(parts.values.reshape(rows, cols), info.dtype, xt, yt, trans, threads)
    elif isinstance(parts, (NMParts, MaskParts, CompressedParts)):
        if trans:
            partial = np.zeros_like(yt)
            path, count = _skipping_product(parts, rows, cols, info.dtype, xt, partial, True,
                                            threads)
        else:
            path, count = _skipping_product(parts, rows, cols, info.dtype, xt, yt, False,
                                            threads, xbf16=xbf16)
        if bad is not None:
            _non_finite_fixup(parts, rows, cols, info.dtype, bad,
                              partial if trans else yt, trans, threads)
        if trans:
            yt += partial
    else:  # pragma: no cover - a plug-in returning parts of its own kind
        raise TypeError(f"codec {parsed.codec_id!r} returned unknown parts {type(parts)}")
    if stats is not None:
        stats.paths.append(f"{parsed.codec_id}:{path}")
        stats.macs += int(count) * nb
        stats.dense_macs += rows * cols * nb
        stats.weight_bytes += parsed.nbytes
        stats.dense_bytes += info.nbytes


def _product(
    x: object,
    frames: Sequence[tuple[Frame, int, int]],
    shape: tuple[int, int],
    scale: np.ndarray | None,
    trans: bool,
    stats: MatmulStats | None,
    what: str,
    threads: int = 1,
    slots: Sequence[list[Any]] | None = None,
) -> np.ndarray:
    """``x @ (diag(scale) W).T`` (``trans`` False) or ``x @ diag(scale) W`` over row blocks.

    ``frames`` are ``(frame, first row, end row)`` of W, in order, covering ``shape[0]`` rows;
    ``slots``, one per frame, keep their parts between products (see :func:`_frame_product`).
    """
    arr = _as_input(x, "x")
    threads = check_int("threads", threads, 1, 256)
    rows, cols = shape
    k_in, k_out = (rows, cols) if trans else (cols, rows)
    if arr.ndim == 0 or arr.shape[-1] != k_in:
        got = "a scalar" if arr.ndim == 0 else f"shape {arr.shape}"
        product, axis = ("x @ W", "out") if trans else ("x @ W.T", "in")
        need = f"{product} needs x of shape (..., {axis})"
        raise ShapeError(
            f"{what}: the weight W has shape (out={rows}, in={cols}) and {need} = (..., {k_in}); "
            f"got x of {got}"
        )
    lead = arr.shape[:-1]
    batch = math.prod(lead)
    limit = get_decode_limit()
    if k_out * batch * 4 > limit:  # the frame's claimed shape sizes the result: bound it
        raise DecodeLimitError(
            f"{what}: the result would be {k_out} x {batch} float32 = {k_out * batch * 4} bytes, "
            f"over the decode limit of {limit} bytes (sparsecodecs.set_decode_limit)"
        )
    # IEEE arithmetic throughout (inf and NaN propagate as in the dense product); numpy's
    # warnings about them (overflow in a cast, inf - inf) are not errors of ours.
    with np.errstate(all="ignore"):
        if batch >= _ALIGN_FROM:
            xt = _aligned((k_in, batch))
            _transpose_into(arr.reshape(batch, k_in), xt)
        else:
            xt = np.ascontiguousarray(arr.reshape(batch, k_in).T, dtype=np.float32)
        if trans and scale is not None:
            xt *= scale[:, None]
        finite = bool(np.isfinite(xt).all())
        bad = None if finite else (~np.isfinite(xt)).astype(np.float32)
        if batch >= _ALIGN_FROM:
            yt = _aligned((k_out, batch))
            if trans:
                yt[...] = 0
        else:
            yt = (np.zeros((k_out, batch), np.float32) if trans
                  else np.empty((k_out, batch), np.float32))
        xbf16 = arr.dtype.name == "bfloat16"
        if (not trans and threads > 1 and len(frames) >= 2 * threads and sum(
                f.nbytes for f, _, _ in frames) >= BLOCKS_ON_THREADS_FROM * len(frames)):
            _blocks_in_parallel(frames, xt, yt, stats, bad, threads, slots, xbf16)
        else:
            for i, (parsed, r0, r1) in enumerate(frames):
                slot = None if slots is None else slots[i]
                if trans:
                    _frame_product(parsed, xt[r0:r1], yt, True, stats,
                                   None if bad is None else np.ascontiguousarray(bad[r0:r1]),
                                   threads, slot)
                else:
                    _frame_product(parsed, xt, yt[r0:r1], False, stats, bad, threads, slot,
                                   xbf16)
        if not trans and scale is not None:
            yt *= scale[:, None]
    if batch < _ALIGN_FROM:
        return np.ascontiguousarray(yt.T).reshape(*lead, k_out)
    y = np.empty((batch, k_out), np.float32)
    _transpose_into(yt, y)
    return y.reshape(*lead, k_out)


def _transpose_into(src: np.ndarray, dst: np.ndarray) -> None:
    """``dst[...] = src.T`` as float32 (``dst`` C-contiguous): the kernels' tiled transpose for
    C-contiguous float32 and bfloat16 (widened by a shift, exact), numpy's cast otherwise.
    numpy's transposed copy of a (64, 4096) float32 array takes 0.72 ms, the tiled one 0.15."""
    if src.flags.c_contiguous and src.dtype == np.float32:
        kn.transpose(src, dst, *src.shape)
    elif src.flags.c_contiguous and src.dtype.name == "bfloat16":
        kn.transpose(src.view(np.uint16), dst, *src.shape)
    else:
        np.copyto(dst, src.T, casting="unsafe")


#: Row blocks go to threads whole (:func:`_blocks_in_parallel`) from this mean frame size on;
#: smaller blocks run in turn, each on the threads (its kernels split its rows). A block's
#: Python (its frame's checks, the parts' views) holds the GIL, which the threads then wait
#: on: 256-row blocks of 1536x384 (65 KiB hybrid, 104 KiB nm) ran slower on two threads than
#: on one, those of 4096x4096 (698 KiB hybrid) faster (docs/compute.md, "Kept threads for
#: row blocks").
BLOCKS_ON_THREADS_FROM = 512 << 10


def _blocks_in_parallel(
    frames: Sequence[tuple[Frame, int, int]], xt: np.ndarray, yt: np.ndarray,
    stats: MatmulStats | None, bad: np.ndarray | None, threads: int,
    slots: Sequence[list[Any]] | None, xbf16: bool,
) -> None:
    """``yt[r0:r1] = W_block @ xt`` for each row block, ``threads`` blocks at a time, each
    decoded and multiplied on one thread (its kernels release the GIL); for at least two blocks
    a thread, so that they share out evenly. Splitting each block's rows over the threads
    instead synchronised them once a block: on 256-row blocks of a 4096x4096 hybrid weight at
    batch 1 that made two threads slower than one (docs/compute.md, "Row blocks on threads").
    The blocks write disjoint rows of ``yt``; each block's stats are kept apart and added in
    block order, and the first block that fails, in block order, raises its error, as one
    thread would. The threads are kept between products (:func:`~..registry._pool.map_in_order`).
    """

    def one(i: int) -> MatmulStats:
        parsed, r0, r1 = frames[i]
        own = MatmulStats()
        _frame_product(parsed, xt, yt[r0:r1], False, own, bad, 1,
                       None if slots is None else slots[i], xbf16)
        return own

    results = map_in_order(one, range(len(frames)), threads)
    if stats is not None:
        for own in results:
            for f in fields(MatmulStats):  # every field, as the one-thread product adds it
                mine, theirs = getattr(stats, f.name), getattr(own, f.name)
                if isinstance(mine, list):
                    mine.extend(theirs)
                else:
                    setattr(stats, f.name, mine + theirs)


#: From this batch on, xt and yt start on a 64-byte line (:func:`_aligned`).
_ALIGN_FROM = 8


def _aligned(shape: tuple[int, int]) -> np.ndarray:
    """An uninitialised float32 array of ``shape`` whose data starts on a 64-byte line.

    The SpMM kernels read a kept value's row of ``xt`` (``batch`` floats) in 32- and 64-byte
    vectors; in an array that starts 16 bytes into a line (as large numpy arrays do, after
    malloc's header) every such read straddles two lines. At batch 64 that made ``nm`` 2:4
    products 1.3-1.7x slower (4096x4096, an A/B of the kernel on both alignments: 28 ms a layer
    aligned, 36-49 ms not).
    """
    n = shape[0] * shape[1]
    buf = np.empty(n + 16, np.float32)
    start = (-buf.ctypes.data % 64) // 4
    return buf[start : start + n].reshape(shape)


def matmul(
    x: object,
    weight: FrameLike | CompressedLinear,
    *,
    scale: object = None,
    stats: MatmulStats | None = None,
    threads: int = 1,
) -> np.ndarray:
    """``x @ W.T`` for a weight ``W`` of shape ``(out, in)`` stored compressed.

    Parameters
    ----------
    x
        The input, shape ``(..., in)``: a vector, a batch of rows or any stack of them; any
        real dtype (converted to float32). A bfloat16 ``x`` (ml_dtypes) on a 2:4 bfloat16 weight
        (``nm``, or ``hybrid`` over its N:M layout, its values decoded first) at a batch of 5
        or more takes pairs of bfloat16 products, as torch's bfloat16 product does on a CPU with
        AVX512-BF16: each output one float32 chain over the row's groups of four, a group's
        second kept value's product added first, subnormal inputs read as zero and results under
        2**-126 flushed to zero (the rules of the ``vdpbf16ps`` instruction, which runs it
        where the CPU has it; elsewhere its AVX2 and scalar twins write the same bytes).
    weight
        A frame of a 2-D weight, from any codec, or a :class:`CompressedLinear` (then its own
        ``scale`` applies and its bias does not: call the layer for that).
    scale
        Frames only: a scalar or one value per output row, multiplied into the result, i.e.
        the weight is ``scale[:, None] * W`` (e.g. an int8 weight and its per-channel scale).
    stats
        A :class:`MatmulStats` to add this product's paths, multiply-adds and bytes to.
    threads
        Threads the zero-skipping kernels split the rows of each frame over (default 1: the
        caller decides the parallelism; a product of ``x @ W``, ``trans``, always runs on one).
        A :class:`CompressedLinear` of at least two row blocks a thread (of 512 KiB a frame
        on average) gives each thread whole blocks, each decoded and multiplied on that
        thread. The result does not depend on it.

    Returns
    -------
    numpy.ndarray
        float32, shape ``(..., out)``: ``x @ W.T`` accumulated in float32.

    Raises
    ------
    ShapeError
        ``x``'s last axis is not ``in``, the frame does not hold a 2-D array, or ``scale`` has
        the wrong shape.
    UnsupportedDtypeError
        ``x`` does not hold real numbers.
    FrameError
        The frame is corrupt (any :class:`~sparsecodecs.registry.errors.FrameError`).

    Examples
    --------
    >>> import numpy as np, sparsecodecs as sc
    >>> w = np.array([[2, 0, 0, -1], [0, 0, 3, 0]], dtype=np.int8)
    >>> sc.matmul(np.ones((1, 4), np.float32), sc.get_codec("csr").encode(w), scale=0.5)
    array([[0.5, 1.5]], dtype=float32)
    """
    if isinstance(weight, CompressedLinear):
        if scale is not None:
            raise CodecConfigError(
                "scale= is for frames; a CompressedLinear carries its own scale (pass it to "
                "CompressedLinear.from_array)"
            )
        return weight.matmul(x, stats=stats, threads=threads)
    parsed = _parse_weight(weight)
    rows, cols = parsed.info.shape
    return _product(
        x, [(parsed, 0, rows)], (rows, cols), _per_row(scale, rows, "scale"), False, stats,
        "matmul", threads,
    )


# -- the layer ------------------------------------------------------------------------------------


class CompressedLinear:
    """A weight ``W`` of shape ``(out, in)`` kept compressed, as a list of row-block frames.

    Frame ``i`` holds rows ``offsets[i]:offsets[i+1]`` of ``W``; every product decodes one
    frame at a time, so its peak memory is the compressed weight plus one block, whatever the
    codec. The effective weight is ``scale[:, None] * W`` (``scale``: None, a scalar or one
    value per output row, e.g. for int8 weights).

    * ``layer(x)``: ``x @ W.T + bias``, like ``torch.nn.Linear`` (``x``: ``(..., in)``);
    * ``layer @ v``: ``W @ v`` (``v``: ``(in,)`` or ``(..., in, k)``), the matrix ``W``;
    * ``x @ layer``: ``x @ W`` (``x``: ``(..., out)``), the matrix ``W`` again;
    * :meth:`matmul`: ``x @ W.T`` without the bias (what :func:`matmul` does).

    Every result is float32, accumulated in float32.

    Parameters
    ----------
    frames
        Frames of 2-D arrays with the same number of columns and dtype, in row order (from any
        codec; see :meth:`from_array`).
    scale, bias
        None, a scalar or one value per output row.
    """

    #: Makes ``x @ layer`` with a numpy ``x`` call :meth:`__rmatmul__`.
    __array_ufunc__ = None

    def __init__(
        self, frames: Iterable[FrameLike], *, scale: object = None, bias: object = None
    ) -> None:
        self._frames = tuple(frames)
        if not self._frames:
            raise ShapeError("a CompressedLinear needs at least one frame")
        self._parsed = tuple(_parse_weight(f) for f in self._frames)
        # per frame, its validated parts once a product has made them (_frame_product)
        self._slots: tuple[list[Any], ...] = tuple([None] for _ in self._parsed)
        first = self._parsed[0].info
        offsets = [0]
        for i, p in enumerate(self._parsed):
            if p.info.shape[1] != first.shape[1] or p.info.dtype != first.dtype:
                raise ShapeError(
                    f"frame {i} holds {list(p.info.shape)} {p.info.dtype}, but frame 0 holds "
                    f"{list(first.shape)} {first.dtype}: every frame needs the same number of "
                    "columns and dtype"
                )
            offsets.append(offsets[-1] + p.info.shape[0])
        self._offsets = tuple(offsets)
        self._shape = (offsets[-1], first.shape[1])
        self._dtype = first.dtype
        self._scale = _per_row(scale, self._shape[0], "scale")
        self._bias = _per_row(bias, self._shape[0], "bias")

    @classmethod
    def from_array(
        cls,
        w: np.ndarray,
        codec: str | Codec = "hybrid",
        *,
        block_rows: int = DEFAULT_BLOCK_ROWS,
        scale: object = None,
        bias: object = None,
    ) -> CompressedLinear:
        """Encode ``w`` (shape ``(out, in)``) as one frame per ``block_rows`` rows.

        ``codec`` is a codec name (e.g. ``"hybrid"``, ``"nm"``, ``"2:4"``) or instance. Smaller
        blocks lower the peak memory of a product and add a frame header (and for entropy
        codecs a codebook) per block.
        """
        if isinstance(codec, str):
            codec = get_codec(codec)
        elif not isinstance(codec, Codec):
            raise CodecConfigError(f"codec must be a codec name or instance, got {codec!r:.100}")
        block_rows = check_int("block_rows", block_rows, 1)
        if not isinstance(w, np.ndarray) or w.ndim != 2:
            got = f"shape {w.shape}" if isinstance(w, np.ndarray) else type(w).__name__
            raise ShapeError(f"from_array needs a 2-D numpy array (out, in), got {got}")
        starts = range(0, max(w.shape[0], 1), block_rows)
        frames = [codec.encode(w[r0 : r0 + block_rows]) for r0 in starts]
        return cls(frames, scale=scale, bias=bias)

    # -- what it holds ----------------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, int]:
        """``(out, in)``, the shape of ``W``."""
        return self._shape

    @property
    def dtype(self) -> np.dtype[Any]:
        """The dtype ``W`` is stored in."""
        return self._dtype

    @property
    def frames(self) -> tuple[FrameLike, ...]:
        """The row-block frames, in row order."""
        return self._frames

    @property
    def offsets(self) -> tuple[int, ...]:
        """Row offsets of the frames: frame ``i`` holds rows ``offsets[i]:offsets[i+1]``."""
        return self._offsets

    @property
    def scale(self) -> np.ndarray | None:
        return self._scale

    @property
    def bias(self) -> np.ndarray | None:
        return self._bias

    @property
    def nbytes(self) -> int:
        """Bytes held: the frames, plus the scale and bias if any."""
        extra = sum(a.nbytes for a in (self._scale, self._bias) if a is not None)
        return sum(p.nbytes for p in self._parsed) + extra

    @property
    def dense_nbytes(self) -> int:
        """Bytes of ``W`` as a dense array of its dtype."""
        return self._shape[0] * self._shape[1] * self._dtype.itemsize

    def decode(self) -> np.ndarray:
        """``W`` as a dense array of its dtype (without the scale)."""
        from ..registry import decode

        return np.concatenate([decode(f) for f in self._frames], axis=0).reshape(self._shape)

    def __repr__(self) -> str:
        codecs = sorted({p.codec_id for p in self._parsed})
        pct = 100 * self.nbytes / self.dense_nbytes if self.dense_nbytes else 0.0
        return (
            f"CompressedLinear(shape={self._shape}, dtype={self._dtype}, "
            f"frames={len(self._frames)}, codecs={codecs}, nbytes={self.nbytes} "
            f"({pct:.1f}% of dense))"
        )

    # -- products -----------------------------------------------------------------------------

    def _blocks(self) -> list[tuple[Frame, int, int]]:
        o = self._offsets
        return [(p, o[i], o[i + 1]) for i, p in enumerate(self._parsed)]

    def matmul(
        self, x: object, *, stats: MatmulStats | None = None, threads: int = 1
    ) -> np.ndarray:
        """``x @ W.T`` (times ``scale``), no bias; ``x`` of shape ``(..., in)``; ``threads`` as
        for :func:`matmul`."""
        return _product(
            x, self._blocks(), self._shape, self._scale, False, stats, "matmul", threads,
            self._slots,
        )

    def __call__(
        self, x: object, *, stats: MatmulStats | None = None, threads: int = 1
    ) -> np.ndarray:
        """``x @ W.T + bias``; ``x`` of shape ``(..., in)``."""
        y = self.matmul(x, stats=stats, threads=threads)
        if self._bias is not None:
            y += self._bias
        return y

    def __matmul__(self, v: object) -> np.ndarray:
        """``W @ v``; ``v`` of shape ``(in,)`` or ``(..., in, k)``."""
        arr = _as_input(v, "v")
        if arr.ndim == 0 or arr.shape[-1 if arr.ndim == 1 else -2] != self._shape[1]:
            raise ShapeError(
                f"layer @ v: the weight W has shape (out={self._shape[0]}, in={self._shape[1]}) "
                f"and W @ v needs v of shape ({self._shape[1]},) or (..., {self._shape[1]}, k); "
                f"got v of shape {arr.shape}"
            )
        if arr.ndim == 1:
            return self.matmul(arr)
        y = _product(
            np.swapaxes(arr, -1, -2), self._blocks(), self._shape, self._scale, False, None,
            "layer @ v", slots=self._slots,
        )
        return np.ascontiguousarray(np.swapaxes(y, -1, -2))

    def __rmatmul__(self, x: object) -> np.ndarray:
        """``x @ W``; ``x`` of shape ``(..., out)``."""
        return _product(x, self._blocks(), self._shape, self._scale, True, None, "x @ layer",
                        slots=self._slots)
