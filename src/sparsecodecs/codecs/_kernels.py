"""Compiled (numba) kernels for the hot decode paths.

Imported lazily by the codecs, so that importing sparsecodecs (and starting the CLI) does not pay
for numba. Every kernel is compiled with ``cache=True``: the first call in a fresh environment
compiles and writes the cache, later processes load it. Each kernel has a plain numpy
reference in the test suite that it must match exactly.

Kernels trust their inputs: the calling codec validates sizes and index ranges first.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic


@lru_cache(maxsize=1)
def byte_tables() -> tuple[np.ndarray, np.ndarray]:
    """(positions, counts): the set-bit positions (LSB first) and popcount of every byte."""
    pos = np.zeros((256, 8), np.uint8)
    cnt = np.zeros(256, np.uint8)
    for b in range(256):
        bits = [k for k in range(8) if (b >> k) & 1]
        pos[b, : len(bits)] = bits
        cnt[b] = len(bits)
    return pos, cnt


@njit(cache=True, nogil=True)
def popcount(mask, counts):  # type: ignore[no-untyped-def]
    """Set bits in the byte array ``mask`` (``counts`` is the popcount of every byte)."""
    total = 0
    for i in range(mask.size):
        total += counts[mask[i]]
    return total


def check_mask(mask: np.ndarray, size: int, nnz: int, what: str) -> None:
    """Raise FrameLayoutError unless ``mask`` has exactly ``nnz`` set bits among ``size``."""
    from ..registry import FrameLayoutError

    # A popcount table, not np.bitwise_count: that needs numpy 2 and we support 1.26.
    counted = int(popcount(mask, byte_tables()[1]))
    if counted != nnz:
        raise FrameLayoutError(f"{what} has {counted} set bits but meta nnz={nnz}")
    if size % 8 and mask[-1] >> (size % 8):
        raise FrameLayoutError(f"{what} has set bits past the last element")


def bitmask_decode(mask: np.ndarray, values: np.ndarray, out: np.ndarray) -> None:
    """Fill ``out`` (flat) from a validated LSB-first mask and the non-zero values."""
    if values.dtype.itemsize == 2 and values.flags.c_contiguous and has_ssse3():
        bitmask_expand16(mask, values, out, expand16_table(), byte_tables()[1])
    else:
        bitmask_scatter(mask, values, out, *byte_tables())


@lru_cache(maxsize=1)
def has_ssse3() -> bool:
    """Whether numba compiles for this CPU and it has the SSSE3 byte shuffle that
    :func:`bitmask_expand16` and :func:`bitmask_compress16` use (not when ``NUMBA_CPU_NAME`` or
    ``NUMBA_CPU_FEATURES`` asks for another target, e.g. a portable cache)."""
    import llvmlite.binding as llvm
    from numba.core import config

    if getattr(config, "CPU_NAME", None) not in (None, "host") or getattr(
            config, "CPU_FEATURES", None):
        return False
    return bool(llvm.get_host_cpu_features().get("ssse3", False))


def c_arrays(*tys: Any) -> bool:
    """For the intrinsics' typers: are these numba types all C-contiguous arrays? The
    intrinsics address items from the data pointer and ignore strides."""
    return all(isinstance(t, types.Array) and t.layout == "C" for t in tys)


@lru_cache(maxsize=1)
def expand16_table() -> np.ndarray:
    """(256, 16) uint8 byte-shuffle controls: row ``b`` moves 16-bit value ``r`` to the
    ``r``-th set bit of ``b`` (LSB first) and zeroes the other slots (control byte 0x80)."""
    pos, cnt = byte_tables()
    table = np.full((256, 8, 2), 0x80, np.uint8)
    for b in range(256):
        slots = pos[b, : cnt[b]]
        table[b, slots, 0] = 2 * np.arange(cnt[b])
        table[b, slots, 1] = 2 * np.arange(cnt[b]) + 1
    return table.reshape(256, 16)


def _expand8_typer(typingctx, values, j, table, row, out, base):  # type: ignore[no-untyped-def]
    """``out[base:base+8] = shuffle(values[j:j+8], table[row])`` on 16-bit items: one 16-byte
    load, one SSSE3 ``pshufb`` and one 16-byte store (unaligned; the caller keeps all three
    in bounds)."""
    if not c_arrays(values, table, out):
        return None

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        vals, jj, tab, rw, dst, at = args
        vty, _, tty, _, oty, _ = signature.args
        v16 = ir.VectorType(ir.IntType(8), 16)

        def address(aty: Any, arr: Any, index: Any) -> Any:
            data = context.make_array(aty)(context, builder, arr).data
            return builder.bitcast(builder.gep(data, [index]), v16.as_pointer())

        src = builder.load(address(vty, vals, jj), align=1)
        ctl = builder.load(address(tty, tab, builder.mul(rw, ir.Constant(rw.type, 16))),
                           align=1)
        shuffle = builder.module.declare_intrinsic(
            "llvm.x86.ssse3.pshuf.b.128", fnty=ir.FunctionType(v16, [v16, v16]))
        builder.store(builder.call(shuffle, [src, ctl]), address(oty, dst, at), align=1)
        return context.get_dummy_value()

    return types.void(values, j, table, row, out, base), codegen


#: Typed ``Any`` for mypy, which cannot see through numba's intrinsic wrapper.
_expand8: Any = intrinsic(_expand8_typer)


@njit(cache=True, nogil=True)
def bitmask_expand16(mask, values, out, table, bit_cnt):  # type: ignore[no-untyped-def]
    """:func:`bitmask_scatter` for 16-bit values on x86 (see :func:`has_ssse3`): each mask
    byte places its values with one byte shuffle (:func:`_expand8`) instead of one store per
    element. ``table`` is :func:`expand16_table`. The last bytes, where fewer than 8 values
    are left to load, take the scalar path."""
    n = out.size
    j = 0
    b = 0
    while b < n // 8 and j + 8 <= values.size:
        byte = mask[b]
        _expand8(values, j, table, np.int64(byte), out, b * 8)
        j += bit_cnt[byte]
        b += 1
    for i in range(8 * b, n):
        if (mask[i >> 3] >> (i & 7)) & 1:
            out[i] = values[j]
            j += 1
        else:
            out[i] = 0


@njit(cache=True, nogil=True)
def bitmask_scatter(mask, values, out, bit_pos, bit_cnt):  # type: ignore[no-untyped-def]
    """out[i] = next value if bit i of ``mask`` (LSB first) is set, else 0."""
    n = out.size
    j = 0
    for b in range(n // 8):
        byte = mask[b]
        base = b * 8
        for k in range(8):
            out[base + k] = 0
        c = bit_cnt[byte]
        for t in range(c):
            out[base + bit_pos[byte, t]] = values[j + t]
        j += c
    for i in range((n // 8) * 8, n):
        if (mask[i >> 3] >> (i & 7)) & 1:
            out[i] = values[j]
            j += 1
        else:
            out[i] = 0


@njit(cache=True, nogil=True, inline="always")
def _group_codes(packed, lut, ngroups):  # type: ignore[no-untyped-def]
    """The ``ngroups`` pattern codes, read as in :func:`nm_compose`."""
    codes = np.empty(ngroups, np.uint16)
    k = lut.shape[1]
    g = 0
    for w in range(packed.size):
        for j in range(k):
            if g < ngroups:
                codes[g] = lut[packed[w], j]
                g += 1
    return codes


@njit(cache=True, nogil=True)
def nm_scatter(packed, lut, positions, values, out, rows, cols, m):  # type: ignore[no-untyped-def]
    """Write N:M groups element by element (any m, rows padded to whole groups).

    Group g (codes read as in :func:`nm_compose`) holds values[g*n:(g+1)*n] at
    positions[code]. ``out`` is the flat (rows * cols) output; the last group of a row may be
    cut short by ``cols`` (padding), in which case its padded slots are skipped: they must hold
    zeros. Returns 0, or -1 if a padded slot holds a non-zero value (a corrupt frame).
    """
    codes = _group_codes(packed, lut, rows * ((cols + m - 1) // m))
    n = positions.shape[1]
    gpr = (cols + m - 1) // m
    full = cols // m
    g = 0
    for r in range(rows):
        row = r * cols
        for q in range(full):
            base = row + q * m
            for i in range(m):
                out[base + i] = 0
            c = codes[g]
            for t in range(n):
                out[base + positions[c, t]] = values[g * n + t]
            g += 1
        if gpr != full:
            base = row + full * m
            for i in range(cols - full * m):
                out[base + i] = 0
            c = codes[g]
            for t in range(n):
                p = full * m + positions[c, t]
                if p < cols:
                    out[row + p] = values[g * n + t]
                elif values[g * n + t] != 0:
                    return -1
            g += 1
    return 0


@njit(cache=True, nogil=True)
def nm_compose(packed, lut, ngroups, word_of, shifts, values, out):  # type: ignore[no-untyped-def]
    """Write N:M groups as whole machine words (groups aligned to words, no padding).

    Group codes are read as ``lut[packed[w], j]``: word ``w`` of ``packed`` holds the codes of
    groups ``w*k .. w*k+k-1`` with ``k = lut.shape[1]`` (for a plain code array, pass an
    identity ``lut`` of shape ``(C, 1)``). Group ``g`` occupies ``wpg = out.size // ngroups``
    words of ``out``; its t-th kept value goes to word ``word_of[c, t]`` of the group, shifted
    left by ``shifts[c, t]`` bits. With one word per group (e.g. 2:4 of 16-bit values in a
    uint64) the group is assembled in a register and stored once.
    """
    n = shifts.shape[1]
    k = lut.shape[1]
    if ngroups == 0:
        return
    wpg = out.size // ngroups
    g = 0
    for w in range(packed.size):
        b = packed[w]
        for j in range(k):
            if g == ngroups:
                break
            c = lut[b, j]
            if wpg == 1:
                acc = np.uint64(0)
                for t in range(n):
                    acc |= np.uint64(values[g * n + t]) << shifts[c, t]
                out[g] = acc
            else:
                base = g * wpg
                for i in range(wpg):
                    out[base + i] = 0
                for t in range(n):
                    out[base + word_of[c, t]] |= np.uint64(values[g * n + t]) << shifts[c, t]
            g += 1


@njit(cache=True, nogil=True)
def nm24_compose(packed, lut, ngroups, shifts, values, out):  # type: ignore[no-untyped-def]
    """:func:`nm_compose` unrolled for the hot case: 2:4, 3 codes per byte, 1 word per group."""
    nfull = ngroups // 3
    for w in range(nfull):
        b = packed[w]
        g = 3 * w
        c = lut[b, 0]
        out[g] = (np.uint64(values[2 * g]) << shifts[c, 0]) | (
            np.uint64(values[2 * g + 1]) << shifts[c, 1]
        )
        c = lut[b, 1]
        out[g + 1] = (np.uint64(values[2 * g + 2]) << shifts[c, 0]) | (
            np.uint64(values[2 * g + 3]) << shifts[c, 1]
        )
        c = lut[b, 2]
        out[g + 2] = (np.uint64(values[2 * g + 4]) << shifts[c, 0]) | (
            np.uint64(values[2 * g + 5]) << shifts[c, 1]
        )
    for g in range(3 * nfull, ngroups):
        c = lut[packed[nfull], g - 3 * nfull]
        out[g] = (np.uint64(values[2 * g]) << shifts[c, 0]) | (
            np.uint64(values[2 * g + 1]) << shifts[c, 1]
        )


@njit(cache=True, nogil=True)
def nm2_compose_codes(codes, shifts, values, out):  # type: ignore[no-untyped-def]
    """:func:`nm_compose` unrolled for n = 2, one code per group, one word per group."""
    for g in range(codes.size):
        c = codes[g]
        out[g] = (np.uint64(values[2 * g]) << shifts[c, 0]) | (
            np.uint64(values[2 * g + 1]) << shifts[c, 1]
        )


@njit(cache=True, nogil=True)
def nm_split(x, rows, cols, m, code_of_mask, positions, codes, values):  # type: ignore[no-untyped-def]
    """Pattern code and kept values of every N:M group of the flat (rows x cols) array ``x``.

    ``code_of_mask[mask]`` is the pattern code of the group's non-zero mask (filled up to n
    slots with its lowest zero positions), or -1 for more than n non-zeros; ``positions[c]``
    the n slots of code c. Returns -1, or the index of the first group with more than n
    non-zeros (then the outputs are incomplete). Positions past ``cols`` in a row's last group
    count as zeros.
    """
    return nm_split_fill(x, rows, cols, m, code_of_mask, positions, codes, values,
                         np.zeros(1, x.dtype))


@njit(cache=True, nogil=True)
def bitmask_split(x, mask, values):  # type: ignore[no-untyped-def]
    """LSB-first non-zero mask of ``x`` and its non-zero values, in one pass (``values``
    needs one spare slot: it writes ahead)."""
    _split_from(x, mask, values, 0, 0)


@njit(cache=True, nogil=True, inline="always")
def _split_from(x, mask, values, first, j):  # type: ignore[no-untyped-def]
    """:func:`bitmask_split` from mask byte ``first`` on, its values from ``values[j]`` on."""
    n = x.size
    for b in range(first, (n + 7) // 8):
        byte = 0
        for k in range(min(8, n - 8 * b)):
            e = x[8 * b + k]
            nz = e != 0
            byte |= nz << k
            values[j] = e
            j += nz
        mask[b] = byte


@lru_cache(maxsize=1)
def compress16_table() -> np.ndarray:
    """(256, 16) uint8 byte-shuffle controls, the inverse of :func:`expand16_table`: row ``b``
    moves the 16-bit items at the set bits of ``b`` (LSB first) to the front, in order."""
    pos, cnt = byte_tables()
    table = np.full((256, 8, 2), 0x80, np.uint8)
    for b in range(256):
        slots = pos[b, : cnt[b]].astype(np.uint8)
        table[b, : cnt[b], 0] = 2 * slots
        table[b, : cnt[b], 1] = 2 * slots + 1
    return table.reshape(256, 16)


def _compress8_typer(typingctx, x, b, table, values, j):  # type: ignore[no-untyped-def]
    """Block ``b`` of 8 16-bit items of ``x``: returns its non-zero mask byte (LSB first) and
    stores its non-zero items, in order, at ``values[j:]`` with one 16-byte store (8 items
    wide: the caller keeps ``j + 8 <= values.size``). One vector compare, one SSSE3
    ``pshufb`` with ``table`` (:func:`compress16_table`), little-endian lanes."""
    if not c_arrays(x, table, values):
        return None

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        xs, block, tab, vals, at = args
        xty, _, tty, vty, _ = signature.args
        i8x16 = ir.VectorType(ir.IntType(8), 16)
        i16x8 = ir.VectorType(ir.IntType(16), 8)

        def address(aty: Any, arr: Any, index: Any, ty: Any) -> Any:
            data = context.make_array(aty)(context, builder, arr).data
            return builder.bitcast(builder.gep(data, [index]), ty.as_pointer())

        first = builder.mul(block, ir.Constant(block.type, 8))
        items = builder.load(address(xty, xs, first, i16x8), align=1)
        nonzero = builder.icmp_unsigned("!=", items, ir.Constant(i16x8, [0] * 8))
        byte = builder.bitcast(nonzero, ir.IntType(8))
        row = builder.mul(builder.zext(byte, ir.IntType(64)), ir.Constant(ir.IntType(64), 16))
        ctl = builder.load(address(tty, tab, row, i8x16), align=1)
        shuffle = builder.module.declare_intrinsic(
            "llvm.x86.ssse3.pshuf.b.128", fnty=ir.FunctionType(i8x16, [i8x16, i8x16]))
        packed = builder.call(shuffle, [builder.bitcast(items, i8x16), ctl])
        builder.store(packed, address(vty, vals, at, i8x16), align=1)
        return byte

    return types.uint8(x, b, table, values, j), codegen


#: Typed ``Any`` for mypy, which cannot see through numba's intrinsic wrapper.
_compress8: Any = intrinsic(_compress8_typer)


@njit(cache=True, nogil=True)
def bitmask_compress16(x, mask, values, table, bit_cnt):  # type: ignore[no-untyped-def]
    """:func:`bitmask_split` for 16-bit items on x86 (see :func:`has_ssse3`): one vector
    compare and one byte shuffle per 8 items (:func:`_compress8`). ``values`` needs 8 spare
    slots; the last blocks, and any past the point where fewer are left, take the scalar
    path."""
    n = x.size
    j = 0
    b = 0
    while b < n // 8 and j + 8 <= values.size:
        byte = _compress8(x, b, table, values, j)
        mask[b] = byte
        j += bit_cnt[byte]
        b += 1
    _split_from(x, mask, values, b, j)


def split_mask(x: np.ndarray, mask: np.ndarray, values: np.ndarray) -> None:
    """:func:`bitmask_split`, by :func:`bitmask_compress16` where it applies: ``values`` needs
    8 spare slots."""
    if x.dtype.itemsize == 2 and x.flags.c_contiguous and has_ssse3():
        bitmask_compress16(x, mask, values, compress16_table(), byte_tables()[1])
    else:
        bitmask_split(x, mask, values)


@njit(cache=True, nogil=True)
def csr_scatter(indptr, indices, data, out, rows, cols):  # type: ignore[no-untyped-def]
    """Dense rows from CSR arrays (already validated: monotone pointers, indices < cols)."""
    for i in range(rows * cols):
        out[i] = 0
    for r in range(rows):
        base = r * cols
        for j in range(indptr[r], indptr[r + 1]):
            out[base + indices[j]] = data[j]


@njit(cache=True, nogil=True)
def csr_rows_increasing(indptr, indices):  # type: ignore[no-untyped-def]
    """True if ``indices`` is strictly increasing within each row (``indptr`` is monotone and
    ends at ``indices.size``). One pass, no temporaries."""
    for r in range(indptr.size - 1):
        for j in range(np.int64(indptr[r]) + 1, np.int64(indptr[r + 1])):
            if indices[j] <= indices[j - 1]:
                return False
    return True


@njit(cache=True, nogil=True)
def nm_codes_from_mask(mask, m, code_of, codes):  # type: ignore[no-untyped-def]
    """Pattern codes of N:M groups read straight from an LSB-first non-zero mask.

    For ``m`` dividing 8 and rows of whole groups, group g is bits ``g*m .. g*m+m-1`` of the
    mask. ``code_of[bits]`` is the code of a group with exactly n non-zeros, else -1. Returns
    True if every group has exactly n non-zeros: then the N:M layout keeps exactly the mask's
    values, in the same order. False as soon as one group does not (``codes`` incomplete).
    """
    per_byte = 8 // m
    gmask = (1 << m) - 1
    g = 0
    for b in range(-(-codes.size // per_byte)):
        byte = np.int64(mask[b])
        for j in range(min(per_byte, codes.size - g)):
            c = code_of[(byte >> (j * m)) & gmask]
            if c < 0:
                return False
            codes[g] = c
            g += 1
    return True


# -- non-zero fills ------------------------------------------------------------------------------
#
# A layout's "fill" is the bit pattern that counts as empty: one for the whole array
# (``fill.size == 1``) or one per row of the 2-D view. The zero-fill kernels above stay as they
# are (the common case keeps its speed); these variants write ``fill[row]`` where those write 0.


@njit(cache=True, nogil=True)
def fill_rows(out, fill, cols):  # type: ignore[no-untyped-def]
    """Set the flat (rows x cols) ``out`` to ``fill[0]``, or to ``fill[r]`` on row r."""
    if fill.size == 1:
        f = fill[0]
        for i in range(out.size):
            out[i] = f
        return
    for r in range(fill.size):
        f = fill[r]
        base = r * cols
        for j in range(cols):
            out[base + j] = f


@njit(cache=True, nogil=True)
def bitmask_scatter_fill(mask, values, out, bit_pos, bit_cnt, fill, cols):  # type: ignore[no-untyped-def]
    """:func:`bitmask_scatter` with the fill of each row where that writes 0."""
    fill_rows(out, fill, cols)
    n = out.size
    j = 0
    for b in range(n // 8):
        byte = mask[b]
        base = b * 8
        c = bit_cnt[byte]
        for t in range(c):
            out[base + bit_pos[byte, t]] = values[j + t]
        j += c
    for i in range((n // 8) * 8, n):
        if (mask[i >> 3] >> (i & 7)) & 1:
            out[i] = values[j]
            j += 1


@njit(cache=True, nogil=True)
def bitmask_split_fill(x, mask, values, fill, cols):  # type: ignore[no-untyped-def]
    """:func:`bitmask_split` with "non-zero" read as "not the fill of its row".

    ``values`` needs one spare slot (the kernel writes ahead); ``fill`` has 1 or rows items.
    """
    n = x.size
    if n == 0:
        return
    per_row = fill.size > 1
    f = fill[0]
    j = 0
    r = 0
    c = 0
    for b in range((n + 7) // 8):
        byte = 0
        for k in range(min(8, n - 8 * b)):
            if per_row:
                f = fill[r]
            e = x[8 * b + k]
            nz = e != f
            byte |= nz << k
            values[j] = e
            j += nz
            c += 1
            if c == cols:
                c = 0
                r += 1
        mask[b] = byte


@njit(cache=True, nogil=True)
def nm_split_fill(x, rows, cols, m, code_of_mask, positions, codes, values, fill):  # type: ignore[no-untyped-def]
    """:func:`nm_split` with "non-zero" read as "not the fill of its row" (padding: the fill)."""
    n = positions.shape[1]
    gpr = (cols + m - 1) // m
    full = cols // m
    per_row = fill.size > 1
    f = fill[0]
    g = 0
    for r in range(rows):
        if per_row:
            f = fill[r]
        row = r * cols
        for q in range(gpr):
            base = row + q * m
            mask = 0
            for i in range(m if q < full else cols - q * m):
                mask |= np.int64(x[base + i] != f) << i
            c = code_of_mask[mask]
            if c < 0:
                return g
            codes[g] = c
            for t in range(n):
                p = positions[c, t]
                if q < full or q * m + p < cols:
                    values[g * n + t] = x[base + p]
                else:
                    values[g * n + t] = f
            g += 1
    return -1


@njit(cache=True, nogil=True)
def nm_scatter_fill(packed, lut, positions, values, out, rows, cols, m, fill):  # type: ignore[no-untyped-def]
    """:func:`nm_scatter` with the fill of each row where that writes 0.

    Returns 0, or -1 if a padded slot holds anything but its row's fill (a corrupt frame).
    """
    codes = _group_codes(packed, lut, rows * ((cols + m - 1) // m))
    n = positions.shape[1]
    gpr = (cols + m - 1) // m
    full = cols // m
    per_row = fill.size > 1
    f = fill[0]
    g = 0
    for r in range(rows):
        if per_row:
            f = fill[r]
        row = r * cols
        for i in range(cols):
            out[row + i] = f
        for q in range(full):
            base = row + q * m
            c = codes[g]
            for t in range(n):
                out[base + positions[c, t]] = values[g * n + t]
            g += 1
        if gpr != full:
            c = codes[g]
            for t in range(n):
                p = full * m + positions[c, t]
                if p < cols:
                    out[row + p] = values[g * n + t]
                elif values[g * n + t] != f:
                    return -1
            g += 1
    return 0


@njit(cache=True, nogil=True)
def csr_scatter_fill(indptr, indices, data, out, major, minor, fill, per_minor):  # type: ignore[no-untyped-def]
    """:func:`csr_scatter` onto the fill: ``fill[0]``, or per major row (``per_minor`` False)
    or per minor index (True: CSC, whose minor axis is the rows of the 2-D view)."""
    if fill.size == 1 or not per_minor:
        fill_rows(out, fill, minor)
    else:
        for i in range(major):
            base = i * minor
            for j in range(minor):
                out[base + j] = fill[j]
    for r in range(major):
        base = r * minor
        for j in range(indptr[r], indptr[r + 1]):
            out[base + indices[j]] = data[j]


@njit(cache=True, nogil=True)
def row_modes_table(x, rows, cols, counts, out):  # type: ignore[no-untyped-def]
    """Most frequent bit pattern of each row of the flat (rows x cols) ``x`` (8/16-bit), ties
    to the smaller pattern; ``counts`` is a zeroed table of ``2**bits`` int64 (left zeroed).

    Rows at least as long as the table: one counting pass, then a scan of the table. Shorter
    rows: a row that is at least half zeros has mode 0 without counting; others are counted,
    scanned and the counts reset through the row's own values.
    """
    nbins = counts.size
    for r in range(rows):
        base = r * cols
        if nbins <= cols:
            for j in range(cols):
                counts[x[base + j]] += 1
            best = 0
            best_count = counts[0]
            counts[0] = 0
            for v in range(1, nbins):
                c = counts[v]
                if c > best_count:
                    best = v
                    best_count = c
                counts[v] = 0
            out[r] = best
            continue
        zeros = 0
        for j in range(cols):
            zeros += x[base + j] == 0
        if 2 * zeros >= cols:
            out[r] = 0
            continue
        for j in range(cols):
            counts[x[base + j]] += 1
        best_e = x[base]
        best_count = counts[best_e]
        for j in range(cols):
            e = x[base + j]
            c = counts[e]
            if c > best_count or (c == best_count and e < best_e):
                best_e = e
                best_count = c
        for j in range(cols):
            counts[x[base + j]] = 0
        out[r] = best_e


@njit(cache=True, nogil=True)
def row_modes_sort(x, rows, cols, out):  # type: ignore[no-untyped-def]
    """:func:`row_modes_table` for any width, by sorting a copy of each row."""
    for r in range(rows):
        base = r * cols
        zeros = 0
        for j in range(cols):
            zeros += x[base + j] == 0
        if 2 * zeros >= cols:
            out[r] = 0
            continue
        s = np.sort(x[base : base + cols])
        best = s[0]
        best_count = 0
        run = 0
        for j in range(cols):
            if j > 0 and s[j] != s[j - 1]:
                run = 0
            run += 1
            if run > best_count:  # strictly: ties keep the smaller (earlier) pattern
                best = s[j]
                best_count = run
        out[r] = best
