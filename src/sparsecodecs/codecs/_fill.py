"""The ``fill`` of the sparse layouts: which value counts as empty (not public API).

``bitmask``, ``nm``, ``csr``, ``csc`` and ``hybrid`` store only the entries that differ from the
fill. The fill is a bit pattern, for the whole array or one per row of the 2-D view (leading
axes flattened, the last kept), from one of these specs:

* ``"zero"`` (default): bit pattern 0;
* a number: a value of the array's dtype, checked at encode time to be exactly representable;
* a sequence of numbers: one per row ("per output channel" of an ``(out, in)`` weight);
* ``"mode"``: the most frequent bit pattern of the array (ties: the smaller pattern);
* ``"row-mode"``: the most frequent bit pattern of each row (ties: the smaller pattern);
* ``"rows"``: what a frame config records for an explicit sequence; decodable, not encodable.

A zero fill writes nothing. Any other writes a section ``fill`` (role ``codebook``) of 1 or
``rows`` bit patterns (little-endian, the dtype's width) and meta ``"fill"``: ``"scalar"`` or
``"rows"``; a per-row fill whose rows all agree is stored as a scalar.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..registry import (
    FLOAT_LAYOUTS,
    CodecConfigError,
    FillError,
    FrameInfo,
    FrameLayoutError,
    Section,
    SectionReader,
    bits_dtype,
)
from ._common import as_2d, lent_buffer
from ._huffman import histogram
from ._kernels import narrow_patterns, row_modes_sort, row_modes_table, unique_bits

__all__ = [
    "FILL_WORDS",
    "FillSpec",
    "check_fill",
    "fill_config",
    "fill_frame_config",
    "fill_get_config",
    "fill_sections",
    "read_fill",
    "resolve_fill",
    "row_modes",
    "tensor_mode",
]

#: The named fill specs every layout accepts.
FILL_WORDS = ("zero", "mode", "row-mode", "rows")
FillSpec = str | int | float | tuple[int | float, ...]


def _number(value: object, what: str) -> int | float | None:
    """``value`` as a Python int or finite float, or None if it is no number."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if not math.isfinite(number):
            raise CodecConfigError(
                f"{what} must be a finite number, got {number!r}; to treat NaN or an infinity "
                "as empty, use fill='mode' or 'row-mode'"
            )
        return number
    return None


def check_fill(value: object, words: Sequence[str] = FILL_WORDS) -> FillSpec:
    """Validate a ``fill`` parameter; returns it normalised (sequences become tuples)."""
    allowed = (
        f"one of {', '.join(map(repr, words))}, a number of the array's dtype or a sequence "
        "of numbers (one per row)"
    )
    if isinstance(value, str):
        if value not in words:
            raise CodecConfigError(f"fill must be {allowed}; got fill={value!r}")
        return value
    number = _number(value, "fill")
    if number is not None:
        return number
    if isinstance(value, np.ndarray) and value.ndim != 1:
        raise CodecConfigError(f"a fill array must be 1-D (one value per row), got {value.shape}")
    if isinstance(value, (list, tuple, np.ndarray)):
        items = value.tolist() if isinstance(value, np.ndarray) else value
        out = []
        for i, item in enumerate(items):
            n = _number(item, f"fill[{i}]")
            if n is None:
                raise CodecConfigError(f"fill[{i}] must be a number, got {item!r:.50}")
            out.append(n)
        return tuple(out)
    raise CodecConfigError(f"fill must be {allowed}; got {value!r:.100}")


def fill_config(spec: FillSpec) -> str | int | float:
    """The small form a frame config records: an explicit sequence becomes ``"rows"``."""
    return "rows" if isinstance(spec, tuple) else spec


def fill_get_config(config: dict[str, Any]) -> dict[str, Any]:
    """A layout's ``get_config()``: an explicit per-row fill as a JSON list."""
    if isinstance(config.get("fill"), tuple):
        config["fill"] = list(config["fill"])
    return config


def fill_frame_config(codec: Any) -> dict[str, Any] | None:
    """The config a layout writes into its frame: None (its own) unless the fill is a sequence,
    which the frame records as ``"rows"`` (the values are in its ``fill`` section)."""
    if not isinstance(codec.fill, tuple):
        return None
    return {**codec.get_config(), "fill": "rows"}


def _representable(values: Sequence[int | float], dtype: np.dtype[Any], spec: object) -> np.ndarray:
    """Bit patterns of ``values`` in ``dtype``; FillError unless each is exact."""
    native = dtype.newbyteorder("=")
    udt = bits_dtype(dtype)
    where = "fill" if len(values) == 1 and not isinstance(spec, tuple) else "fill[{i}]"
    if native.kind in "iu" or native.name in ("int4", "uint4"):
        import ml_dtypes  # its iinfo also knows the 4-bit integers

        info = ml_dtypes.iinfo(native)  # type: ignore[no-untyped-call]
        for i, v in enumerate(values):
            if not float(v).is_integer() or not info.min <= v <= info.max:
                raise FillError(
                    f"{where.format(i=i)}={v!r} is not a value of {native}: it holds integers in "
                    f"[{info.min}, {info.max}]"
                )
        return np.array([int(v) for v in values], native).view(udt)
    assert native.name in FLOAT_LAYOUTS
    arr = np.array(values, np.float64)
    exact = np.array([isinstance(v, float) or float(v) == v for v in values], bool)
    with np.errstate(over="ignore", invalid="ignore"):
        conv = arr.astype(native)
        back = conv.astype(np.float64)
    bad = np.flatnonzero(~((back == arr) & exact))
    if bad.size:
        i = int(bad[0])
        raise FillError(
            f"{where.format(i=i)}={values[i]!r} is not exactly representable in {native} (it "
            f"would become {float(back[i])!r}); pass a value that converts to {native} and back "
            "unchanged, or fill='mode' / 'row-mode' to take it from the data"
        )
    return conv.view(udt)


def tensor_mode(flat: np.ndarray, zeros: int | None = None) -> int:
    """The most frequent bit pattern of ``flat`` (ties: the smaller); 0 for an empty array.

    ``zeros`` (the count of zero patterns, if known) short-cuts the common case: an array that
    is at least half zeros has mode 0.
    """
    if flat.size == 0:
        return 0
    if zeros is None:
        zeros = flat.size - int(np.count_nonzero(flat))
    if 2 * zeros >= flat.size:
        return 0
    if flat.dtype.itemsize <= 2 and flat.size >= 4096:
        # compiled, and no int64 copy as np.bincount makes
        return int(np.argmax(histogram(flat, 1 << (8 * flat.dtype.itemsize))))
    # wider values, or a few: a sort beats 2**16 histogram bins (argmax: ties the smaller)
    patterns, counts = unique_bits(flat)
    return int(patterns[np.argmax(counts)])


def row_modes(x: np.ndarray, step: int = 1) -> np.ndarray:
    """The most frequent bit pattern of each row of the 2-D ``x`` (ties: the smaller), over
    its columns ``0, step, 2 * step, ...`` (8/16-bit items read in place; wider ones copied)."""
    rows, cols = x.shape
    out = np.zeros(rows, x.dtype)
    if x.dtype.itemsize <= 2:
        flat = np.ascontiguousarray(x).reshape(-1)
        # The kernel leaves its table zeroed, so this thread's table serves every call, not a
        # fresh 512 KiB one (zeroed, and in a process of mid-size tensors faulted in, each
        # time). A call that fails drops it.
        with lent_buffer("row_modes", 1 << (8 * x.dtype.itemsize), np.int64, keep=2,
                         zeroed=True, keep_on_error=False) as counts:
            row_modes_table(flat, rows, cols, counts, out, step)
    else:
        sampled = np.ascontiguousarray(x[:, ::step])
        narrow = narrow_patterns(sampled)
        if narrow is not None:  # float32 at bfloat16 or float16 precision: the modes of the
            # 16-bit patterns standing for them in order, counted by the table (1024x384 at
            # bfloat16 precision, step 6: 327 -> 125 us)
            return narrow[1](row_modes(narrow[0]))
        row_modes_sort(sampled.reshape(-1), rows, sampled.shape[1], out)
    return out


def resolve_fill(spec: FillSpec, bits: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray | None:
    """The fill bit patterns of ``bits`` (1 or ``rows`` items), or None for a zero fill."""
    rows, cols = as_2d(bits.shape)
    udt = bits.dtype
    if spec == "zero":
        return None
    if spec == "rows":
        raise CodecConfigError(
            "fill='rows' only describes a frame (its per-row fill is stored in the frame); to "
            "encode, pass the values themselves (one number per row) or fill='row-mode'"
        )
    if spec == "mode":
        fill = np.array([tensor_mode(bits.reshape(-1))], udt)
    elif spec == "row-mode":
        fill = row_modes(bits.reshape(rows, cols))
    elif isinstance(spec, tuple):
        if len(spec) != rows:
            raise FillError(
                f"fill has {len(spec)} values but the input has {rows} rows (shape "
                f"{list(bits.shape)}; rows = the product of all axes but the last): pass one "
                "value per row"
            )
        fill = _representable(spec, dtype, spec)
    else:
        assert isinstance(spec, (int, float))
        fill = _representable([spec], dtype, spec)
    return compact_fill(fill)


def compact_fill(fill: np.ndarray) -> np.ndarray | None:
    """None for an all-zero fill, one item if every row agrees, else ``fill`` as is."""
    if not np.count_nonzero(fill):  # (count_nonzero: cheaper than .any() on a few items)
        return None
    if fill.size > 1 and not np.count_nonzero(fill != fill[0]):
        return fill[:1].copy()
    return fill


def fill_sections(fill: np.ndarray | None, rows: int) -> tuple[list[Section], dict[str, Any]]:
    """The ``fill`` section and meta of a resolved fill (nothing for a zero fill)."""
    if fill is None:
        return [], {}
    kind = "scalar" if fill.size == 1 else "rows"
    assert kind == "scalar" or fill.size == rows
    return [Section("fill", "codebook", fill.astype(fill.dtype.newbyteorder("<")))], {
        "fill": kind
    }


def read_fill(sections: SectionReader, info: FrameInfo) -> np.ndarray | None:
    """The validated fill of a frame (from meta ``fill`` and section ``fill``), or None."""
    if "fill" not in info.meta:
        return None
    kind = info.meta["fill"]
    rows = as_2d(info.shape)[0]
    if kind == "scalar":
        count = 1
    elif kind == "rows":
        count = rows
    else:
        raise FrameLayoutError(f"meta 'fill' must be 'scalar' or 'rows', got {kind!r:.50}")
    udt = bits_dtype(info.dtype)
    fill = sections.array("fill", udt.newbyteorder("<"), count)
    if fill.size == 0:  # an empty array: no element takes a fill
        return None
    return fill.astype(udt, copy=False)
