"""``window``: 2:4 weights in a fixed-length layout that a product decodes in registers.

Every field has a fixed width, so a kernel finds the values of any row and block without
decoding what comes before them, and turns them into floats with a few vector instructions
(``kernels/compute.c``): what ``hybrid``'s entropy-coded values cannot do. Per kept value:

* a 3-bit **exponent code**: an index into a per-tensor window of up to 7 exponent values (the
  most frequent non-zero ones), code 7 meaning exponent 0; a value whose exponent is neither is
  an *escape*, listed with its exponent in two small sections;
* the **rest** of its bits raw (bfloat16: sign and 7 mantissa bits, one byte).

Per pair of groups, the two 2:4 pattern codes as one 6-bit code. On 2:4 bfloat16 weights that is
about 39% of the dense bytes (values 34.4%, patterns 4.7%, escapes what they are), against
``nm``'s 54.2% and NVIDIA's 56.25%.

The "exponent" is the float's exponent field (``FLOAT_LAYOUTS``); for integer dtypes it is the top
8 bits (all of them for 8- and 4-bit integers). Every dtype round-trips bit-exactly, but the
layout is made for bfloat16: the fused product reads bfloat16 frames in place, every other dtype
goes through the kept values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..registry import (
    Codec,
    Encoded,
    FrameInfo,
    FrameLayoutError,
    Section,
    SectionReader,
    storage_nbytes,
)
from ._common import builtin
from ._huffman import histogram
from ._kernels import gather_index
from ._nm import geometry, split_groups
from ._parts import WindowParts
from ._window import (
    CODE_BITS,
    ESCAPE,
    PAIR_BITS,
    WINDOW,
    escape_index_dtype,
    escaped_dtype,
    pack_rows,
    window_field,
)

__all__ = ["Window"]


@builtin
@dataclass(frozen=True, kw_only=True)
class Window(Codec):
    """2:4 sparsity with fixed-length values for computing: see the module docstring.

    Sections (the 2-D view has ``rows`` rows of ``gpr = ceil(cols / 4)`` groups; ``pairs =
    ceil(gpr / 2)``; every row of a packed section is padded to whole bytes):

    * ``pattern`` (index): per row, ``pairs`` 6-bit codes ``6 * c0 + c1`` of each pair of
      groups' 2:4 pattern codes (as ``nm``'s), LSB first; a missing last group has code 0;
    * ``exponents`` (values): per row, ``2 * gpr`` 3-bit codes, one per kept value, LSB first;
    * ``rest`` (values): per kept value, its bits without the window field, shifted together
      (``(x >> (shift + width)) << shift | x & (2**shift - 1)``), little-endian in
      ``ceil((bits - width) / 8)`` bytes (none for 8-bit integers);
    * ``escapes`` (index): the kept-value indices (ascending) whose field is not in the window
      and not 0, as the narrowest unsigned integer that holds the last index;
    * ``escaped`` (values): their fields (uint8, or little-endian uint16 above 8 bits).

    Meta ``window``: the field values of codes 0, 1, ... (at most 7, distinct, non-zero).
    """

    codec_id = "window"
    description = "2:4 sparsity, fixed-length values (3-bit exponent window) for fused products"

    @property
    def nm_pattern(self) -> tuple[int, int]:
        return (2, 4)

    def encode_bits(self, bits: np.ndarray, dtype: np.dtype[Any]) -> Encoded:
        shift, width, nbits = window_field(dtype)
        rows, _, gpr, _ = geometry(bits.shape, 4)
        codes, values = split_groups(bits, 2, 4)
        udt = values.dtype
        field = (values >> udt.type(shift)) & udt.type((1 << width) - 1)
        counts = histogram(field, 1 << width)
        counts[0] = 0
        ranked = np.argsort(-counts, kind="stable")[:WINDOW]
        window = np.sort(ranked[counts[ranked] > 0])
        lut = np.full(1 << width, ESCAPE, np.uint8)
        lut[window] = np.arange(window.size, dtype=np.uint8)
        # compiled for 1- and 2-byte fields (every float the window takes but float32's)
        vcodes = gather_index(field, lut, "field") if udt.itemsize <= 2 else np.take(lut, field)
        escaped = (vcodes == ESCAPE) & (field != 0)
        low = values & udt.type((1 << shift) - 1)
        if nbits > shift + width:  # floats: the sign bit above the exponent
            rest = ((values >> udt.type(shift + width)) << udt.type(shift)) | low
        else:
            rest = low
        sections = [
            Section("pattern", "index", self._pattern(codes, rows, gpr)),
            Section("exponents", "values", pack_rows(vcodes.reshape(rows, 2 * gpr), CODE_BITS)),
            Section("rest", "values", _rest_bytes(rest, nbits - width)),
        ]
        where = np.flatnonzero(escaped)
        sections += [
            Section("escapes", "index", where.astype(escape_index_dtype(values.size))),
            Section("escaped", "values", field[escaped].astype(escaped_dtype(width))),
        ]
        return Encoded(sections, meta={"window": [int(f) for f in window]})

    @staticmethod
    def _pattern(codes: np.ndarray, rows: int, gpr: int) -> np.ndarray:
        pairs = -(-gpr // 2)
        grid = np.zeros((rows, 2 * pairs), np.uint8)
        grid[:, :gpr] = codes.reshape(rows, gpr)
        return pack_rows(grid[:, 0::2] * np.uint8(6) + grid[:, 1::2], PAIR_BITS)

    def decode_parts(self, sections: SectionReader, info: FrameInfo) -> WindowParts:
        """The sections, size-checked, and the window (see :mod:`._parts`); per-value checks are
        left to :meth:`WindowParts.values` and the fused product."""
        _, width, nbits = window_field(info.dtype)
        rows, _, gpr, _ = geometry(info.shape, 4)
        pairs = -(-gpr // 2)
        nvals = rows * gpr * 2
        window = info.meta.get("window")
        if (not isinstance(window, list) or len(window) > WINDOW
                or not all(isinstance(f, int) and not isinstance(f, bool) for f in window)
                or len(set(window)) != len(window)
                or not all(0 < f < 1 << width for f in window)):
            raise FrameLayoutError(
                f"meta field 'window' must list at most {WINDOW} distinct field values in "
                f"[1, {(1 << width) - 1}], got {window!r:.200}"
            )
        pattern = sections.array("pattern", np.uint8, rows * -(-pairs * PAIR_BITS // 8))
        exponents = sections.array("exponents", np.uint8, rows * -(-gpr * 2 * CODE_BITS // 8))
        rest_bytes = -(-(nbits - width) // 8)
        rest = sections.array("rest", np.uint8, nvals * rest_bytes)
        escapes = sections.array("escapes", escape_index_dtype(nvals)).astype(np.int64)
        if escapes.size and (int(escapes[-1]) >= nvals or (np.diff(escapes) <= 0).any()):
            raise FrameLayoutError(
                f"section 'escapes' must hold ascending kept-value indices below {nvals}"
            )
        escaped = sections.array("escaped", escaped_dtype(width), escapes.size)
        if escaped.size and (not escaped.all() or int(escaped.max()) >= 1 << width
                             or np.isin(escaped, window).any()):
            raise FrameLayoutError(
                "section 'escaped' holds a field that is 0, in the window or wider than "
                f"{width} bits"
            )
        return WindowParts(
            shape=info.shape, dtype=info.dtype, window=tuple(window), pattern=pattern,
            exponents=exponents, rest=rest, escapes=escapes, escaped=escaped,
        )

    def decode_bits(self, sections: SectionReader, info: FrameInfo) -> np.ndarray:
        return self.decode_parts(sections, info).to_bits(info.shape)

    def theoretical_nbytes(self, info: FrameInfo) -> int:
        return storage_nbytes(info.dtype, geometry(info.shape, 4)[3] * 2)


def _rest_bytes(rest: np.ndarray, rest_bits: int) -> np.ndarray:
    nbytes = -(-rest_bits // 8)
    if nbytes == 0:
        return np.zeros(0, np.uint8)
    if nbytes == rest.dtype.itemsize:
        return rest.astype(rest.dtype.newbyteorder("<"))
    wide = rest.astype("<u8").view(np.uint8).reshape(-1, 8)
    return np.ascontiguousarray(wide[:, :nbytes]).reshape(-1)
