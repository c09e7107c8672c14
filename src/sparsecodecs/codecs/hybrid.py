"""``hybrid``: a sparsity layout + a value stage + an entropy stage, chosen per tensor."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from ..registry import (
    Codec,
    CodecConfigError,
    Encoded,
    FrameInfo,
    FrameLayoutError,
    PatternError,
    Section,
    SectionReader,
    bits_dtype,
    check_choice,
    check_int,
    decode_threads,
    storage_nbytes,
)
from . import _huffman as huff
from . import _huffman_kernels as hk
from ._common import as_2d, beside, builtin
from ._distinct import Runs, SortedSample, distinct_values, unique_counts
from ._fill import (
    FILL_WORDS,
    FillSpec,
    check_fill,
    compact_fill,
    fill_config,
    fill_get_config,
    fill_sections,
    read_fill,
    resolve_fill,
    row_modes,
)
from ._hybrid_plan import (
    IDLE_TOP_PLANE,
    PAIRED_COLS,
    ROTATE_HEADER,
    _kept_runs,
    _kept_sample,
    _Layout,
    _mask_loses,
    _mode_run,
    _narrow_answers,
    _nm_code_counts,
    _nm_codes,
    _padding,
    _row_modes_worth_counting,
    _sign_constant,
    _top_plane_idle,
    _unrotated,
    _UsedBins,
    _without_bin,
    _worth_counting,
)
from ._kernels import (
    check_mask,
    count_fill,
    count_fill_rows,
    pages_resident,
    split_kept,
    touch_pages,
)
from ._nm import (
    MAX_M,
    code_reader,
    geometry,
    nm_tables,
    pack_codes,
    packed_code_reader,
    pattern_packing,
    split_groups,
    try_split_groups,
)
from ._parts import DenseParts, MaskParts, NMParts
from ._stages import (
    MAX_CENTROIDS,
    MAX_TOP_BITS,
    PlanesPlan,
    centroid_floor,
    counted_from,
    decode_centroids,
    decode_fields,
    decode_planes,
    encode_centroids,
    encode_fields,
    encode_planes,
    lent_value_counts,
    plan_centroids,
    plan_fields,
    plan_planes,
    rotation,
    value_histograms,
)

__all__ = ["Hybrid"]

LAYOUTS = ("auto", "dense", "bitmask", "nm")
ROTATIONS = ("auto", 0, 1)
VALUE_STAGES = ("auto", "planes", "fields", "centroid")
ENTROPY = ("huffman", "none")
#: A bitmask frame of at least this many elements, decoded on two threads or more, decodes its
#: values and its mask side by side (Hybrid._bitmask_side_by_side); a smaller one splits each
#: step over the threads.
SIDE_BY_SIDE = 1 << 20


@builtin
@dataclass(frozen=True, kw_only=True)
class Hybrid(Codec):
    """The recommended codec: layout, value stage and entropy stage composed per tensor.

    * ``layout``: ``dense`` (no index), ``bitmask`` (a bit per element, raw or Huffman-coded
      bytes; meta ``nnz``), ``nm`` (one N:M pattern code per group of ``m`` along the last axis,
      packed as base-C digits or Huffman-coded), or ``auto``.
    * ``values``: ``planes`` (byte planes, floats rotated so the exponent is a plane of its own,
      each plane Huffman-coded or raw), ``fields`` (the top 9-12 bits of each rotated value,
      i.e. exponent + top mantissa bits, Huffman-coded as one symbol, the low bits packed raw;
      meta ``fields`` = top bits; on a large tensor whose top fields' statistics change along
      it, meta ``fields_block`` = B: the top fields coded in blocks of B, each with its own
      code, where that is smaller; where blocks of values all end in zero bits, meta
      ``low_block`` and section ``v.low.shift``: their low fields stored shifted past them),
      ``centroid`` (the distinct values once + an index per
      value), or ``auto``.
    * ``entropy``: ``huffman`` or ``none`` (index and values stored packed/raw).
    * ``rotate``: for ``planes`` and ``fields`` of 16- and 32-bit floats, the bits each value
      is rotated left by before it is split: ``1`` moves the sign bit below the mantissa, so
      that the exponent heads the value (a plane, or the top of the top field, of its own);
      ``0`` leaves the sign bit with the exponent, where a Huffman code takes it for nothing
      when every kept value has the same sign (norm gains, variances, positive weights), and
      not as a raw bit of the mantissa; ``"auto"`` (default): 1, and 0 too when the kept
      values' sign bit is constant or the rotated top byte plane nearly so (float16
      subnormals), when 16-bit values' top bytes unrotated, coded, with the low plane raw
      come to less than the rotated planes, or when the rotated planes are the best rotated
      plan and their low plane codes to within 1/32 of its bytes (a sign that follows the
      magnitude), the smaller kept. A frame records ``rotate`` only when it is 0. Integers
      are never rotated.
    * ``fill``: the value that counts as empty for ``bitmask`` and ``nm`` (see :mod:`._fill`):
      ``"zero"``, ``"mode"``, ``"row-mode"``, a number, one number per row, or ``"auto"``
      (default): zero, the tensor's mode and each row's mode compete, the latter two only when
      they differ from zero (a tensor at least half zeros has mode zero and pays nothing). A
      non-zero fill adds a ``fill`` section (codebook) and meta ``fill``.

    With ``auto`` the encoder computes the exact coded size of every candidate from symbol
    histograms (no trial encoding) and keeps the smallest; the frame's config records the
    resolved choice, so ``inspect`` shows it (a zero fill is recorded by leaving ``fill``
    out). Sections: ``pattern``/``mask`` (index; with a
    ``.codebook`` and ``.bits`` pair when Huffman-coded) and the value stage's sections under
    the prefix ``v``. Theoretical size: the layout's kept values (``nm``: groups x n; ``bitmask``:
    nnz; ``dense``: all) x itemsize.
    """

    codec_id = "hybrid"
    description = "layout (dense/bitmask/N:M) + planes or centroids + Huffman, auto-chosen"

    layout: str = "auto"
    n: int = 2
    m: int = 4
    values: str = "auto"
    entropy: str = "huffman"
    max_code_length: int = huff.MAX_LENGTH
    fill: FillSpec = field(default="auto", metadata={"omit_default": True})
    rotate: str | int = field(default="auto", metadata={"omit_default": True})

    def __post_init__(self) -> None:
        object.__setattr__(self, "fill", check_fill(self.fill, (*FILL_WORDS, "auto")))
        if not (self.rotate == "auto" and isinstance(self.rotate, str)) and not (
                type(self.rotate) is int and self.rotate in ROTATIONS):
            raise CodecConfigError(
                f"rotate must be 'auto', 0 or 1 (bits a float is rotated left by before its "
                f"planes or fields are split); got rotate={self.rotate!r}"
            )
        check_choice("layout", self.layout, LAYOUTS)
        check_choice("values", self.values, VALUE_STAGES)
        check_choice("entropy", self.entropy, ENTROPY)
        check_int("m", self.m, 2, MAX_M)
        check_int("n", self.n, 1, self.m - 1)
        check_int("max_code_length", self.max_code_length, 8, huff.MAX_LENGTH)
        if self.values == "fields" and self.entropy != "huffman":
            raise CodecConfigError(
                f"values='fields' Huffman-codes the top bits, so it needs entropy='huffman'; got "
                f"entropy={self.entropy!r}: use values='planes' for raw values"
            )

    # -- encoding ------------------------------------------------------------------------------

    def _coded(self) -> bool:
        return self.entropy == "huffman"

    def _index_stream(
        self,
        name: str,
        raw_nbytes: int,
        raw: Any,
        symbols: Any,
        alphabet: int,
        counts: np.ndarray | None = None,
    ) -> tuple[int, Any]:
        """Smaller of the raw index (``raw_nbytes``, built by ``raw()``) and Huffman-coded
        ``symbols`` (an array, or with ``counts`` given, a function building it when chosen):
        (bytes, builder)."""
        if self._coded() and raw_nbytes:
            if counts is None:
                counts = huff.histogram(symbols, alphabet)
            coded = huff.coded_size(counts, self.max_code_length)
            if coded < raw_nbytes:
                def build_coded() -> tuple[list[Section], dict[str, Any]]:
                    syms = symbols() if callable(symbols) else symbols
                    return huff.encode_symbols(
                        syms, alphabet, name, "index", counts=counts,
                        max_length=self.max_code_length,
                    ), {"index": "h"}
                return coded, build_coded

        def build_raw() -> tuple[list[Section], dict[str, Any]]:
            return [Section(name, "index", raw())], {"index": "r"}

        return raw_nbytes, build_raw

    def _fills(
        self, bits: np.ndarray, dtype: np.dtype[Any], zeros: int, counts: np.ndarray | None,
        sample: Callable[[], np.ndarray],
    ) -> list[tuple[Any, Any]]:
        """``(label, fill)`` of each fill to try; fill None is zero, listed first if tried.
        ``counts``: :func:`value_counts` of ``bits``, when known; ``sample()``: their
        :func:`sorted_sample` (computed once)."""
        if self.fill != "auto":
            return [(fill_config(self.fill), resolve_fill(self.fill, bits, dtype))]
        fills: list[tuple[Any, Any]] = [("zero", None)]
        flat = bits.reshape(-1)
        # At least half zeros: zero is the mode. Wide values: a sample must show a repeat first.
        wide = flat.dtype.itemsize > 2
        rows, cols = as_2d(bits.shape)
        # sorted_sample takes every value: its repeats may settle the rows without
        # counting them. Not for a tensor at least half zeros, whose rows the row-mode
        # kernel settles by their zero counts alone (a row at least half zeros has mode
        # 0): sorting it cost more than the rows (768x80 float32 at 2:4, a sort of 61,440)
        # Nor for rows of at most PAIRED_COLS entries (a 3x3 convolution's), which their pairs
        # of equal entries settle (_row_modes_worth_counting; 64x32x3x3 float32: 248-256 ->
        # 218-222 us, but 2:4 with 16 centroids, which sorts for its centroids anyway, 439-442
        # -> 465)
        whole = (rows > 1 and cols > PAIRED_COLS and wide and flat.size < 2 * 65536
                 and 2 * zeros < flat.size)
        # ... unless 16-bit patterns stand for every value (float32 at bfloat16 or float16
        # precision): their 2**16 counts answer both questions exactly, as the sort would
        repeats, narrow_top = _narrow_answers(flat) if whole else (None, None)
        if narrow_top is None and cols > 127:
            # rows of more than 127 entries are sampled, 64 entries each: their modes and a
            # hash of every value cost less than a sort of every value (a 128x576 float32
            # encode: 630 -> 458 us), and answer the same (the sorted repeats only skip the
            # modes where the modes would refuse too)
            whole = False
        # A mode spares at most the non-zero entries less the zeros (which it keeps) and its
        # own pattern: where that cannot pass _candidates' margin (at least half zeros, or a
        # hair fewer: 74,253 zeros of 148,507), no mode is looked for
        if (flat.size - 2 * zeros - 1) * 64 * flat.itemsize <= flat.size or (
                narrow_top is not None and narrow_top[1] < _mode_run(zeros, flat.size,
                                                                     flat.itemsize)):
            mode = None
        elif narrow_top is not None:
            mode = compact_fill(np.array([narrow_top[0]], flat.dtype))
        elif wide and not _worth_counting(sample, not whole):
            mode = None
        else:
            if counts is not None:
                top = hk.argmax_counts(counts)
            else:  # the sorted sample's runs, when it holds every value (argmax: ties the smaller)
                patterns, pattern_counts = unique_counts(flat, sample)
                top = int(patterns[np.argmax(pattern_counts)])
            mode = compact_fill(np.array([top], flat.dtype))
        if mode is not None:
            fills.append(("mode", mode))
        # Rows of one entry (a 1x1 convolution's [out, in, 1, 1]): each row's mode is its
        # entry, which the per-row fill then stores instead of the value, so it spares
        # nothing (nnz0 - rows <= 0); its modes cost ~7 ns a row to find
        if rows > 1 and cols > 1:
            x = bits.reshape(rows, cols)
            if flat.dtype.itemsize > 1:
                modes = _row_modes_worth_counting(
                    x, zeros, sample() if whole and repeats is None else None, repeats)
                per_row = None if modes is None else compact_fill(modes)
            else:
                per_row = compact_fill(row_modes(x))
            if per_row is not None and (mode is None or not np.array_equal(per_row, mode)):
                fills.append(("row-mode", per_row))
        return fills

    def _candidates(
        self, bits: np.ndarray, dtype: np.dtype[Any], counts: np.ndarray | None = None,
        sample: Callable[[], np.ndarray] | None = None, nnz: int | None = None,
        bound: Callable[[], int | None] | None = None,
    ) -> Iterator[_Layout]:
        """The layouts worth planning, one at a time; ``counts``: :func:`value_counts` of
        ``bits``, when known (then the kept values' counts follow for a scalar fill);
        ``sample()``: their :func:`sorted_sample`, computed once; ``nnz``: their non-zero
        count, when known; ``bound()``: the smallest total planned so far (None: none yet),
        which a layout's least possible size must beat for it to be built."""
        flat = bits.reshape(-1)
        cols = as_2d(bits.shape)[1]
        nnz0 = int(np.count_nonzero(flat)) if nnz is None else nnz
        wanted = [self.layout] if self.layout != "auto" else ["dense", "bitmask", "nm"]
        listed = False
        ngroups = geometry(bits.shape, self.m)[3]
        fills = []
        if sample is None:
            sample = SortedSample(flat)
        for label, fill in self._fills(bits, dtype, flat.size - nnz0, counts, sample):
            rows = None  # a per-row fill and each row's entries equal to it, when counted
            if fill is None:
                nnz = nnz0
            elif counts is not None and fill.size == 1:
                nnz = flat.size - int(counts[fill[0]])
            elif counts is not None:  # the kept values' counts follow: see _mask_loses below
                rows = (fill, count_fill_rows(flat, fill, cols))
                nnz = flat.size - int(rows[1].sum())
            else:
                nnz = flat.size - count_fill(flat, fill, cols)
            # Under fill="auto", a fill must spare at least one value in 64 * itemsize over
            # zero (1/8 bit per element, the least a Huffman-coded mask can cost) beyond the
            # fill values it stores, to be worth planning: a dense bfloat16 tensor's most
            # frequent value does not pay for a layout of its own, nor do the modes of rows
            # of distinct values (each occurs once: one value spared per row, one stored).
            spared = nnz0 - nnz - (0 if fill is None else fill.size)
            if fill is None or self.fill != "auto" or spared * 64 * flat.itemsize > flat.size:
                fills.append((label, fill, nnz, rows))
        if len(fills) == 3:
            # "mode" and "row-mode" keep the same kinds of values; the per-row modes keep fewer
            # (never more) and store rows - 1 more fill patterns. Plan only the cheaper one.
            (_, mode, n_mode, _), (_, per_row, n_rows, _) = fills[1], fills[2]
            del fills[1 if n_mode * mode.itemsize + mode.nbytes > n_rows * per_row.itemsize
                      + per_row.nbytes else 2]
        # dense only competes when most values are non-zero: below that a mask is cheaper
        # than coding every zero as a value. It is listed after the fills are found, so that
        # its plan finds the sorted sample they sorted (if they did), and before the layouts
        # it may spare building (bound).
        # Rows of at most n entries (a 1x1 convolution's rows of one): every group holds all of
        # its row and N:M keeps n values a group, padding included, so its values hold every
        # entry of the tensor, the dense layout's values, and more, besides its pattern codes.
        # With the same value stage N:M cannot beat dense there; dense is planned in its
        # place (a real 1x1 convolution, 384x384x1x1 float32: 8.5 -> 1.7 ms an encode).
        narrow = self.layout == "auto" and cols <= self.n
        if "dense" in wanted and (self.layout == "dense" or 10 * nnz0 > 7 * flat.size or not nnz0
                                  or narrow):
            listed = True
            yield _Layout("dense", flat, 0, lambda: ([], {}), counts=counts)
        for label, fill, nnz, rows in fills:
            fill_nbytes = 0 if fill is None else fill.nbytes
            mask = kept = mask_counts = None
            kept_counts = unfilled = None  # the counts of the entries that are not the fill
            if counts is not None and (fill is None or fill.size == 1):
                kept_counts, unfilled = counts, 0 if fill is None else int(fill[0])
            if "bitmask" in wanted and (
                self.layout == "bitmask" or 0 < nnz < flat.size or (fill is not None and nnz == 0)
            ) and not (
                # a mask whose least size (1 bit a mask byte) and the kept values' floor
                # already lose to a plan at hand is not split: a dense tensor with a few zeros,
                # or a few entries equal to its (rows') mode (N:M, which would reuse the mask,
                # needs half of the values to be the fill)
                self.layout == "auto" and counts is not None and bound is not None
                and nnz > ngroups * self.n
                and _mask_loses(flat.size, fill_nbytes, counts, nnz, dtype, bound(),
                                unfilled, rows)
            ):
                mask, kept = split_kept(flat, nnz, fill, cols)
                mask_counts = huff.histogram(mask, 256) if self._coded() else None
                size, build = self._index_stream(
                    "mask", mask.nbytes, lambda mask=mask: mask, mask, 256, mask_counts
                )

                def build_mask(
                    build: Any = build, nnz: int = nnz
                ) -> tuple[list[Section], dict[str, Any]]:
                    sections, meta = build()
                    return sections, {**meta, "nnz": nnz}

                listed = True
                yield _Layout("bitmask", kept, size + fill_nbytes, build_mask, fill, label,
                              kept_counts, unfilled)
            if "nm" in wanted and not narrow and (self.layout == "nm" or nnz <= ngroups * self.n):
                codes: Any = None
                values = code_counts = nm_counts = nm_unfilled = None
                whole_groups = 8 % self.m == 0 and cols % self.m == 0 and ngroups * self.m % 8 == 0
                if mask is not None and mask_counts is not None and whole_groups and (
                    nnz == ngroups * self.n
                ):
                    # Every group then holds exactly n non-fill entries, if every group of the
                    # mask does: the codes' histogram follows from the mask bytes' (no pass over
                    # the groups), the codes themselves are read off the mask only if N:M is
                    # chosen, and the kept values are the mask's, in the same order.
                    code_counts = _nm_code_counts(mask_counts, nm_tables(self.n, self.m))
                    if code_counts is not None:
                        values, nm_counts, nm_unfilled = kept, kept_counts, unfilled
                        codes = partial(_nm_codes, mask, ngroups, self.m,
                                        nm_tables(self.n, self.m).code_of)
                if values is None:
                    if self.layout == "nm" and self.fill != "auto":  # its error is the user's
                        codes, values = split_groups(bits, self.n, self.m, fill)
                    else:
                        split = try_split_groups(bits, self.n, self.m, fill)
                        if split is not None:
                            codes, values = split
                if values is not None:
                    assert codes is not None
                    ncodes = nm_tables(self.n, self.m).ncodes
                    word, k = pattern_packing(ncodes)
                    size, build = self._index_stream(
                        "pattern", -(-ngroups // k) * word // 8,
                        lambda codes=codes, c=ncodes: pack_codes(
                            codes() if callable(codes) else codes, c),
                        codes, ncodes, code_counts,
                    )
                    listed = True
                    yield _Layout("nm", values, size + fill_nbytes, build, fill, label,
                                  nm_counts, nm_unfilled)
        if not listed and self.layout == "nm":
            split_groups(bits, self.n, self.m)  # raises the PatternError of the zero fill

    def _value_stages(
        self, values: np.ndarray, dtype: np.dtype[Any], counts: np.ndarray | None = None,
        sample: Callable[[], np.ndarray] | None = None,
        runs: Runs | None = None,
    ) -> list[tuple[str, int, Any]]:
        """(stage, estimated bytes, plan) for each value stage worth trying on ``values``
        (``counts``: their :func:`value_counts`, when known, else counted here once;
        ``sample()``: their :func:`sorted_sample`, when it is at hand; ``runs``: their distinct
        values and counts, when known without a sort).

        With ``values="auto"`` every stage is tried, except ``centroid`` when a sample shows
        the values are mostly distinct. ``planes`` and ``centroid`` are not pruned further:
        ``fields`` stores the low bits raw, so planes beat it whenever the low planes compress
        (float16 weights upcast to float32: 2x), and a tensor of a few thousand distinct
        float32 values is 2x smaller as centroids than as fields.
        """
        if counts is None and self.values in ("auto", "centroid"):
            with lent_value_counts(values) as lent:
                return self._planned_stages(values, dtype, lent, sample, runs)
        return self._planned_stages(values, dtype, counts, sample, runs)

    def _fields_and_planes(
        self, values: np.ndarray, vdt: np.dtype[Any], suffix: str,
        plane_counts: np.ndarray | None, fine: np.ndarray | None,
        stages: list[tuple[str, int, Any]], sizes: list[int] | None = None,
    ) -> Any:
        """The ``fields`` and ``planes`` stages of ``values`` split as ``vdt`` (their dtype, or
        with ``suffix`` ":0" the unrotated one), appended to ``stages`` as ``fields<suffix>``
        and ``planes<suffix>``; returns the fields plan (None if there is none). ``sizes``:
        the planes' coded sizes, then the top fields', when known (:func:`hk.plan16`)."""
        fplan = None
        if self.values in ("auto", "fields") and self._coded():
            fplan = plan_fields(values, vdt, self.max_code_length, fine,
                                None if sizes is None else sizes[2:])
            if fplan is None and self.values == "fields":
                if vdt.itemsize not in (2, 4):
                    raise CodecConfigError(
                        f"values='fields' needs 16- or 32-bit values, got {vdt}"
                    )
                raise PatternError(
                    f"values='fields' cannot code the top bits of this input with codes of at "
                    f"most max_code_length={self.max_code_length} bits: even 9-bit top fields "
                    f"take more than {1 << self.max_code_length} values; raise max_code_length "
                    "or use values='auto'"
                )
            if fplan is not None:
                stages.append(("fields" + suffix, fplan.nbytes, fplan))
        if self.values in ("auto", "planes"):
            plan = plan_planes(values, vdt, self.max_code_length, entropy=self._coded(),
                               counts=plane_counts, sizes=None if sizes is None else sizes[:2])
            stages.append(("planes" + suffix, plan.nbytes, plan))
        return fplan

    def _planned_stages(
        self, values: np.ndarray, dtype: np.dtype[Any], counts: np.ndarray | None,
        sample: Callable[[], np.ndarray] | None,
        runs: Runs | None = None,
    ) -> list[tuple[str, int, Any]]:
        """:meth:`_value_stages` once ``values``' counts are known (or None: not counted)."""
        auto = self.values == "auto"
        stages: list[tuple[str, int, Any]] = []
        fplan = None
        unrotated = _unrotated(dtype)
        # the rotations to plan planes and fields at, as (stage suffix, dtype split): the
        # float's own, and with rotate "auto" unrotated too (":0") where every value has the
        # same sign or the rotated top plane is idle (or its low plane nearly raw, below);
        # with rotate 0, unrotated only
        rotations = [("", dtype)] if self.rotate != 0 or unrotated is None else [(":0", unrotated)]
        at = 0
        entropy: tuple[float, int] | None = None  # counts' entropy_bits, once asked with them
        while at < len(rotations):
            suffix, vdt = rotations[at]
            at += 1
            plane_counts = fine = sizes = None
            sign = idle = False  # (asked of plan16 only: else of the histograms, below)
            upper = -1  # the bytes of the unrotated planes, the top coded, the low raw (-1: none)
            nearly_raw = False  # the rotated low plane coded, for less than 1/32 of its bytes
            # the unrotated split, where this rotation may list or plan it too
            unrot = unrotated if not suffix and self.rotate == "auto" else None
            if auto and self._coded() and vdt.itemsize == 2 and counts is not None:
                # 16-bit values counted: both histograms, every plan's sizes, the rotation's
                # two questions and the centroids' floor, in one compiled call (six, and the
                # Python between them)
                plane_counts, fine, sizes, sign, idle, bits, used, tops, tops_size = hk.plan16(
                    counts, rotation(vdt), MAX_TOP_BITS, self.max_code_length, values.size,
                    IDLE_TOP_PLANE, entropy is None)
                entropy = (bits, used) if entropy is None else entropy
                # A float16 tensor whose sign follows its exponent and whose low mantissa bits
                # are near uniform (PP-OCRv4 rec's (120, 6625) embedding): its rotated low
                # plane codes to 98% of its bytes and decodes at a coded plane's speed, where
                # the top bytes unrotated (the sign on top: `tops`, their histogram), coded,
                # and the low ones raw are smaller still. Listed as that plan alone, from the
                # counts plan16 summed; its frame is kept only if smaller (_encode_planned).
                rotated_planes = sizes[0] + min(sizes[1], values.size)
                if unrot is not None and tops_size >= 0 and (
                        tops_size + values.size < rotated_planes):
                    upper = tops_size + values.size
                # The same embedding in bfloat16: its rotated low plane codes to 97.7%, and
                # unrotated 11-bit top fields come to fewer bytes (one coded stream where the
                # rotated planes have two): planned whole (with its fields), below, where the
                # rotated planes are the best rotated plan and their low plane saves less
                # than 1/32 of its bytes coded.
                nearly_raw = 31 * values.size <= 32 * sizes[1] < 32 * values.size
            elif auto and self._coded() and vdt.itemsize in (2, 4):
                # both plans' histograms, in one pass (or off the distinct values, when known)
                plane_counts, fine = value_histograms(values, vdt, counts, runs)
            if (unrot is not None and self._coded() and self.values != "centroid" and (
                        (_sign_constant(values, plane_counts) if sizes is None else sign)
                        or (_top_plane_idle(plane_counts, values.size) if sizes is None
                            else idle))):
                rotations.append((":0", unrot))
            elif upper >= 0:  # (listed only where the values are "auto")
                # its plan made only here, where it is listed (a stack of the counts cost ~4
                # us, in every small 16-bit encode that asked)
                top_and_low = np.zeros((2, 256), np.int64)
                top_and_low[0] = tops
                stages.append(("planes:0", upper, PlanesPlan(top_and_low, [True, False], upper)))
            plan = self._fields_and_planes(values, vdt, suffix, plane_counts, fine, stages,
                                           sizes)
            fplan = plan if fplan is None else fplan
            if (nearly_raw and unrot is not None and (":0", unrot) not in rotations
                    and min(stages, key=lambda st: st[1])[0] == "planes"):
                rotations.append((":0", unrot))
        if self.values in ("auto", "centroid"):
            # Under values="auto", centroids whose entropy bound cannot beat a stage planned
            # already are neither listed nor planned (the exact plan codes up to 2**16
            # symbols). Explicit values='centroid' must take any k <= MAX_CENTROIDS, however
            # distinct.
            best = min((st[1] for st in stages), default=None) if auto else None
            if best is not None and counts is not None and centroid_floor(
                    counts, values.itemsize, entropy) >= best:
                return stages
            low_zeros = 0  # every value ends in as many zero bits as the least shift
            if fplan is not None and fplan.low_shifts is not None:
                low_zeros = int(fplan.low_shifts.min())
            distinct = distinct_values(values, give_up_early=auto, counts=counts,
                                       sample=sample, low_zeros=low_zeros, runs=runs)
            if distinct is None and self.values == "centroid":
                raise PatternError(
                    f"values='centroid' needs at most {MAX_CENTROIDS} distinct values; "
                    "cluster first (sparsecodecs.transforms.cluster) or use values='auto'"
                )
            if distinct is not None and (
                best is None or centroid_floor(distinct[1], values.itemsize) < best
            ):
                cplan = plan_centroids(values.size, distinct, self.max_code_length,
                                       entropy=self._coded())
                stages.append(("centroid", cplan.nbytes, cplan))
        return stages

    def encode_bits(self, bits: np.ndarray, dtype: np.dtype[Any]) -> Encoded:
        if self.rotate == 0 and _unrotated(dtype) is None and rotation(dtype):
            raise CodecConfigError(
                f"rotate=0 applies to 16- and 32-bit floats (bfloat16, float16, float32); "
                f"{dtype} is split as it is rotated: use rotate='auto'"
            )
        if self.rotate == 1 and not rotation(dtype):
            raise CodecConfigError(
                f"rotate=1 applies to floats; {dtype} values are never rotated: use "
                "rotate='auto' or 0"
            )
        # every pattern counted once, for the mode fill and the value stages' histograms
        if self.fill == "auto" or self.values in ("auto", "centroid"):
            nnz = int(np.count_nonzero(bits))
            if (self.fill == "auto" and 2 * nnz <= bits.size
                    and nnz >= counted_from(bits.itemsize)):
                # At least half zeros: the mode is zero, so the counts would serve only as
                # the kept values' counts (the tensor's less its zeros), which the value stage
                # counts from the kept values themselves (at least counted_from() of them:
                # the same counted plan). Counting the zeros too is slow: one counter
                # incremented back to back waits on its own store (1536x384 bfloat16: 582 us
                # at 2:4, 236 us dense; docs/benchmarks.md, issue 13's tenth pass).
                return self._encode_planned(bits, dtype, None, nnz)
            with lent_value_counts(bits) as counts:
                return self._encode_planned(bits, dtype, counts, nnz)
        return self._encode_planned(bits, dtype, None)

    def _encode_planned(
        self, bits: np.ndarray, dtype: np.dtype[Any], counts: np.ndarray | None,
        nnz: int | None = None,
    ) -> Encoded:
        """:meth:`encode_bits` once the patterns are counted (``counts``: None if not;
        ``nnz``: the non-zero count, when known)."""
        best: tuple[int, _Layout, str, Any] | None = None
        rotated: tuple[int, _Layout, str, Any] | None = None  # the best of rotation 1
        planned: list[tuple[np.ndarray, list[tuple[str, int, Any]]]] = []
        sample = SortedSample(bits)  # sorted once, if a question needs it
        used: _UsedBins | None = None  # the bins of ``counts`` in use, once asked

        def smallest() -> int | None:  # the best total so far, read as candidates are listed
            return None if best is None else best[0]

        for cand in self._candidates(bits, dtype, counts, sample, nnz, smallest):
            # Layouts that keep the very same values (e.g. bitmask and nm on an exact 2:4
            # tensor) share one plan.
            same = [st for v, st in planned if v is cand.values or (
                v.size == cand.values.size and np.array_equal(v, cand.values))]
            if same:
                stages = same[0]
            else:
                vsample = sample if cand.name == "dense" else _kept_sample(sample, cand, bits.size)
                # the kept values' distinct values and counts, where known without a sort (wide
                # values) or a scan of the 2**16 bins (narrower ones: the tensor's used bins,
                # found once, less the fill's once it is taken out)
                runs: Runs | None = None
                if bits.itemsize >= 4 and cand.name == "dense":
                    runs = sample.unique() if sample.unique_ready else None
                elif bits.itemsize >= 4:
                    runs = _kept_runs(sample, cand, bits.size)
                elif counts is not None and cand.counts is counts:
                    used = _UsedBins(counts, bits.dtype) if used is None else used
                    runs = partial(used, cand.unfilled)
                with _without_bin(cand.counts, cand.unfilled):
                    stages = self._value_stages(cand.values, dtype, cand.counts, vsample, runs)
            planned.append((cand.values, stages))
            for stage, size, state in stages:
                total = cand.index_nbytes + size
                if best is None or total < best[0]:
                    best = (total, cand, stage, state)
                if not stage.endswith(":0") and (rotated is None or total < rotated[0]):
                    rotated = (total, cand, stage, state)
        assert best is not None  # at least one layout is always possible
        rows = as_2d(bits.shape)[0]
        enc = self._encoded(dtype, rows, *best[1:])
        if (best[2].endswith(":0") and rotated is not None and (
                rotated[1] is not best[1] or best[0] + ROTATE_HEADER
                > rotated[0] - _padding(rotated[3], best[1].values.size))):
            # unrotated won the estimate, but not by more than the estimates may be off (the
            # rotated plan's padding, rotate=0's header bytes): kept only if its frame is
            # smaller, exactly
            other = self._encoded(dtype, rows, *rotated[1:])
            if self.encoded_nbytes(other, dtype, bits.shape) <= self.encoded_nbytes(
                    enc, dtype, bits.shape):
                return other
        return enc

    def _encoded(self, dtype: np.dtype[Any], rows: int, cand: _Layout, stage: str,
                 state: Any) -> Encoded:
        """The sections, meta and config of layout ``cand`` (of a tensor of ``rows`` rows) with
        value stage ``stage`` (``:0``: unrotated) planned as ``state``."""
        stage, unrotated = stage.removesuffix(":0"), stage.endswith(":0")
        vdt = _unrotated(dtype) if unrotated else dtype
        assert vdt is not None
        sections, meta = cand.index_sections()
        fsec, fmeta = fill_sections(cand.fill, rows)
        sections += fsec
        meta.update(fmeta)
        if stage == "planes":
            vsec, modes = encode_planes(cand.values, vdt, "v", self.max_code_length, plan=state)
            meta["planes"] = modes
        elif stage == "fields":
            vsec = encode_fields(cand.values, vdt, "v", state, self.max_code_length)
            meta["fields"] = state.top
            if state.block:
                meta["fields_block"] = state.block
            if state.low_block:
                meta["low_block"] = state.low_block
        else:
            vsec, mode = encode_centroids(cand.values, "v", state, self.max_code_length, dtype)
            meta.update(k=int(state.centroids.size), centroid_index=mode)
        config = {**self.get_config(), "layout": cand.name, "values": stage}
        config.pop("rotate", None)
        if unrotated:  # recorded only when not the float's own rotation
            config["rotate"] = 0
        config.pop("fill", None)
        if cand.fill is not None:  # a zero fill is recorded by its absence (as before fills)
            config["fill"] = cand.fill_label
        return Encoded(sections + vsec, meta=meta, config=config)

    # -- decoding ------------------------------------------------------------------------------

    def _resolved(self) -> None:
        if self.layout == "auto" or self.values == "auto":
            raise FrameLayoutError(
                f"a hybrid frame must record its resolved layout and values, got "
                f"layout={self.layout!r}, values={self.values!r}"
            )

    def _count(self, info: FrameInfo) -> int:
        if self.layout == "dense":
            return info.size
        if self.layout == "bitmask":
            return info.meta_int("nnz", 0, info.size)
        return geometry(info.shape, self.m)[3] * self.n

    def _index(self, sections: SectionReader, info: FrameInfo, name: str, count: int,
               alphabet: int, raw_dtype: Any, raw_count: int) -> tuple[np.ndarray, bool]:
        mode = info.meta.get("index")
        if mode == "h":
            dt = np.uint8 if alphabet <= 256 else np.uint16
            return huff.decode_symbols(sections, name, count, alphabet, dt), True
        if mode == "r":
            return sections.array(name, raw_dtype, raw_count), False
        raise FrameLayoutError(f"meta 'index' must be 'h' or 'r', got {mode!r:.50}")

    def decode_bits(self, sections: SectionReader, info: FrameInfo) -> np.ndarray:
        if self.layout == "bitmask" and info.size >= SIDE_BY_SIDE and decode_threads() > 1:
            return self._bitmask_side_by_side(sections, info)
        return self.decode_parts(sections, info).to_bits(info.shape)

    def _bitmask_side_by_side(self, sections: SectionReader, info: FrameInfo) -> np.ndarray:
        """:meth:`decode_parts` and ``to_bits`` of a large bitmask frame on two threads or
        more, in two parts side by side: the values' Huffman streams here, on one thread
        (four streams in lockstep, where two threads would each run two, a slower loop),
        while a thread of its own decodes the mask and touches the output's pages first (the
        kernel zeroing 32 MiB of fresh pages is a quarter of a 4096x4096 bfloat16 decode),
        this thread touching those it has not reached once the values are done; then the
        values' join and the scatter on every thread. An output whose pages are in memory
        already (a reused allocation) has nothing to touch: each step then runs on every
        thread, as below SIDE_BY_SIDE (2048x2048 bfloat16 in a loop: 3.28-3.40 ms against
        3.77-3.80 side by side; fresh pages: 4.39-4.76 against 4.27-4.30). The same checks,
        and the same error first, as decode_parts: the values', the fill's, the mask's. The
        output is allocated once the sections hold at least a bit a mask byte and a value
        (each coded symbol takes one)."""
        self._resolved()
        size, nbytes, count = info.size, (info.size + 7) // 8, self._count(info)
        if 8 * sections.nbytes < nbytes + count:
            return self.decode_parts(sections, info).to_bits(info.shape)
        out = np.empty(size, bits_dtype(info.dtype))
        if pages_resident(out):  # no first touch to do beside: each step on every thread
            parts = self.decode_parts(sections, info)
            assert isinstance(parts, MaskParts)
            parts.scatter_into(out, info.shape)
            return out.reshape(info.shape)
        touched = np.zeros(1, np.int64)  # the pages' cursor, shared by the two threads

        def side() -> np.ndarray:
            mask, _ = self._index(sections, info, "mask", nbytes, 256, np.uint8, nbytes)
            touch_pages(out, touched)
            return mask

        join = beside(side)
        try:
            with huff.streams_on_one_thread():
                values = self._values(sections, info, count)
            fill = read_fill(sections, info)
        except BaseException:
            with suppress(Exception):  # the values' error comes first, as in decode_parts
                join()
            raise
        touch_pages(out, touched)  # the pages the side part has not reached yet
        mask = join()
        check_mask(mask, size, values.size, "section 'mask'")
        MaskParts(mask, values, fill).scatter_into(out, info.shape)
        return out.reshape(info.shape)

    def _split_dtype(self, dtype: np.dtype[Any]) -> np.dtype[Any]:
        """The dtype a frame's planes or fields were split as: ``dtype``, or with ``rotate``
        0 its unsigned integer; FrameLayoutError for a rotation the dtype or stage does not
        take."""
        if self.rotate == "auto" or (self.rotate == 1 and rotation(dtype)):
            return dtype
        unrotated = _unrotated(dtype) if self.rotate == 0 else None
        if unrotated is None or self.values not in ("planes", "fields"):
            raise FrameLayoutError(
                f"a hybrid frame of rotate={self.rotate!r} must hold the planes or fields of "
                f"16- or 32-bit floats (rotate 1: of floats), not the {self.values!r} of {dtype}"
            )
        return unrotated

    def _values(self, sections: SectionReader, info: FrameInfo, count: int) -> np.ndarray:
        if self.values == "planes":
            return decode_planes(sections, "v", count, self._split_dtype(info.dtype),
                                 info.meta.get("planes"))
        if self.values == "fields":
            return decode_fields(sections, "v", count, self._split_dtype(info.dtype),
                                 info.meta.get("fields"), info.meta.get("fields_block"),
                                 info.meta.get("low_block"))
        self._split_dtype(info.dtype)  # rotate is refused with centroids
        k = info.meta_int("k", 0, min(MAX_CENTROIDS, max(count, 0)))
        return decode_centroids(
            sections, "v", count, info.dtype, info.meta.get("centroid_index"), k
        )

    def decode_parts(
        self, sections: SectionReader, info: FrameInfo
    ) -> DenseParts | MaskParts | NMParts:
        """The decoded value stage and the validated layout index (see :mod:`._parts`)."""
        self._resolved()
        count = self._count(info)
        values = self._values(sections, info, count)
        fill = read_fill(sections, info)
        if self.layout == "dense":
            if fill is not None:
                raise FrameLayoutError("a hybrid frame of layout 'dense' has a fill (meta 'fill')")
            return DenseParts(values)
        if self.layout == "bitmask":
            return self._decode_bitmask(sections, info, values, fill)
        tables = nm_tables(self.n, self.m)
        ngroups = geometry(info.shape, self.m)[3]
        word, k = pattern_packing(tables.ncodes)
        index, coded = self._index(
            sections, info, "pattern", ngroups, tables.ncodes, f"<u{word // 8}", -(-ngroups // k)
        )
        if coded:
            packed, lut = code_reader(index, tables.ncodes)
        else:
            packed, lut = packed_code_reader(index, tables.ncodes, ngroups)
        return NMParts(self.n, self.m, packed, lut, values, fill)

    def _decode_bitmask(
        self, sections: SectionReader, info: FrameInfo, values: np.ndarray,
        fill: np.ndarray | None,
    ) -> MaskParts:
        size = info.size
        nbytes = (size + 7) // 8
        mask, _ = self._index(sections, info, "mask", nbytes, 256, np.uint8, nbytes)
        check_mask(mask, size, values.size, "section 'mask'")
        return MaskParts(mask, values, fill)

    def get_config(self) -> dict[str, Any]:
        return fill_get_config(super().get_config())

    def theoretical_nbytes(self, info: FrameInfo) -> int:
        self._resolved()  # a frame's config records the layout (FrameLayoutError if not)
        return storage_nbytes(info.dtype, self._count(info))
