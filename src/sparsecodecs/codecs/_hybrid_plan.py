"""The hybrid codec's planner pieces outside its class: a candidate layout, the shortcuts of
the fill questions, the floors that prune layouts, N:M codes from mask bytes, and the sign and
padding tests of ``rotate``. Used by :mod:`.hybrid` only."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from ..registry.dtypes import bits_dtype
from . import _huffman as huff
from . import _huffman_kernels as hk
from ._distinct import SortedSample
from ._fill import row_modes
from ._kernels import count_fill, narrow_patterns, nm_codes_from_mask, paired_spare
from ._nm import nm_tables
from ._stages import (
    COUNT_PATTERNS_FROM,
    FieldsPlan,
    PlanesPlan,
    lent_value_counts,
    rotation,
    stages_floor,
    values_floor,
)

#: The most header bytes a frame's ``"rotate": 0`` takes (10-13 measured: the config's JSON
#: deflated with the preset dictionary, which does not hold the key).
ROTATE_HEADER = 14


@dataclass
class _Layout:
    """One candidate layout: its index sections (built lazily) and the values it keeps."""

    name: str
    values: np.ndarray
    index_nbytes: int
    index_sections: Any  # () -> tuple[list[Section], dict]
    fill: np.ndarray | None = None  # the bit patterns of the empty entries (None: zero)
    fill_label: str | int | float = "zero"  # what the frame config records
    # value_counts of ``values``, when known: the tensor's counts with bin ``unfilled`` (the
    # scalar fill's pattern) taken as 0, so that no candidate copies the 2**16 bins
    counts: np.ndarray | None = None
    unfilled: int | None = None


def _leading_zeros(sample: np.ndarray) -> int:
    """How many zero patterns a sorted sample holds (they sort first)."""
    return int(np.searchsorted(sample, 0, "right")) if sample.size and sample[0] == 0 else 0


def _worth_counting(sample: Callable[[], np.ndarray], hash_first: bool = True) -> bool:
    """For 32/64-bit values, whose exact mode takes a sort: does their :func:`sorted_sample`
    (``sample()``) repeat a non-zero pattern often enough (more than 1 in 64 * itemsize entries
    beyond the zeros, the margin :meth:`Hybrid._candidates` asks of a fill) for a mode fill to
    be worth computing? A pattern occurring ``run`` times or more is one equal to the pattern
    ``run - 1`` places on in the sorted sample. With ``hash_first`` (the caller will not sort
    the sample anyway), a :class:`SortedSample` not sorted yet is first asked by hash
    (:meth:`SortedSample.hashed`): mostly distinct weights answer no there, and the sample is
    not sorted for this question (73,728 float32 patterns: 0.27 ms). Not for 1024 patterns or
    fewer, which numpy sorts faster than the bins are cleared (384 float32: 125 -> 144 us an
    encode)."""
    if (hash_first and isinstance(sample, SortedSample) and not sample.ready
            and sample.itemsize in (4, 8) and sample.size > 1024):
        most, _, zeros = sample.hashed()
        if most < _mode_run(zeros, sample.size, sample.itemsize):
            return False
    if isinstance(sample, SortedSample) and sample.few:
        # the same question of the sample's runs, counted without a sort (few distinct values)
        uniq, counts = sample.runs()
        zeros = int(counts[0]) if uniq.size and uniq[0] == 0 else 0
        run = _mode_run(zeros, sample.size, sample.itemsize)
        return bool(run <= sample.size and (counts[1 if zeros else 0 :] >= run).any())
    s = sample()
    run = _mode_run(_leading_zeros(s), s.size, s.itemsize)
    if run > s.size:
        return False
    hits = s[run - 1 :] == s[: s.size - run + 1]
    return bool(np.any(hits & (s[: s.size - run + 1] != 0)))


def _mode_run(zeros: int, size: int, itemsize: int) -> int:
    """How often a non-zero pattern must occur among ``size`` entries of ``itemsize`` bytes,
    ``zeros`` of them zero, for a mode fill to be worth computing (:func:`_worth_counting`)."""
    return zeros + size // (64 * itemsize) + 1


def _narrow_answers(flat: np.ndarray) -> tuple[int | None, tuple[int, int] | None]:
    """For 32-bit patterns that 16-bit ones stand for in order
    (:func:`~._kernels.narrow_patterns`), the two questions :meth:`Hybrid._fills` sorts every
    value for, answered from their 2**16 counts: how many entries repeat a non-zero pattern
    before them (:func:`_row_modes_worth_counting`'s ``repeats``), and ``(the most frequent
    pattern, ties to the smaller, the most often a non-zero pattern occurs)``. ``(None, None)``
    for other patterns (the first 64 tell most)."""
    narrow = narrow_patterns(flat) if flat.size >= COUNT_PATTERNS_FROM else None
    if narrow is None:
        return None, None
    with lent_value_counts(narrow[0]) as counts:
        assert counts is not None
        nonzero = int(flat.size - counts[0])
        used = hk.used_bins(counts)
        used = used[1:] if used.size and used[0] == 0 else used  # the non-zero patterns'
        repeats = nonzero - used.size
        top = hk.argmax_counts(counts)
        most = int(counts[used].max(initial=0))
    return repeats, (int(narrow[1](np.array([top], np.uint16))[0]), most)


#: The widest rows :func:`_row_modes_worth_counting` bounds by their pairs of equal entries
#: (six pairs a row at four).
PAIRED_COLS = 4


def _row_modes_worth_counting(
    x: np.ndarray, zeros: int, sample: np.ndarray | None = None, repeats: int | None = None
) -> np.ndarray | None:
    """The modes of the rows of ``x`` if :func:`_worth_counting` holds per row, else None: the
    modes of <= 64 sampled columns of each row, counted over the whole rows, must beat the
    zeros by the same margin, less one entry a row (each row's fill is stored: a row whose mode
    occurs once spares nothing). ``sample``: the :func:`sorted_sample` of ``x`` if known; when
    it holds every entry, no row is counted unless the tensor's repeats pass the margin: a
    row's mode spares its count less one, and the count of a non-zero pattern summed over the
    rows it is the mode of, less one a row, is at most its count in the tensor less one. Rows
    of at most 127 entries are sampled whole, so their sampled modes are the modes.
    ``repeats``: that count of the tensor's repeats, when known without the sample.

    Rows of at most :data:`PAIRED_COLS` entries (a 3x3 or 1x2 convolution's) are first asked
    by pairs: a row whose mode, non-zero, occurs c times holds at least c - 1 pairs of equal
    non-zero entries, and its fill spares c less the row's zeros less itself, so the rows'
    pairs less their zeros (:func:`~._kernels.paired_spare`) bound what the modes can spare;
    one compiled pass where counting the modes cost ~16 ns a row (64x32x3x3 bfloat16), and the
    row modes and their fill's count (225 us of a 128x129x3 float16 encode at 2:4 + 16
    centroids, whose rows hold one zero and two kept values each) are skipped where the zeros
    answer for the pairs."""
    if repeats is None and sample is not None and sample.size == x.size:
        repeats = int(np.count_nonzero((sample[1:] == sample[:-1]) & (sample[1:] != 0)))
    if repeats is not None and repeats * 64 * x.dtype.itemsize <= x.size:
        return None
    if x.shape[1] <= PAIRED_COLS and paired_spare(x, x.shape[1]) * 64 * x.dtype.itemsize <= x.size:
        return None
    step = max(1, x.shape[1] // 64)
    sampled = row_modes(x, step)
    if not np.count_nonzero(sampled):
        return None
    matches = count_fill(np.ascontiguousarray(x).reshape(-1), sampled, x.shape[1])
    if (matches - zeros - x.shape[0]) * 64 * x.dtype.itemsize <= x.size:
        return None
    return sampled if step == 1 else row_modes(x)


def _kept_sample(
    whole: SortedSample, cand: _Layout, size: int
) -> Callable[[], np.ndarray] | None:
    """The :func:`sorted_sample` of a zero-fill layout's kept values, when it can be read off
    the whole tensor's (``whole``, of ``size`` entries) without a sort of its own: that one
    sorted already and holding every entry, and the kept values being exactly the non-zero
    entries (no N:M padding slots). Zero sorts first, so they are its tail, every value of
    which the kept values' own sample would take too (fewer than 131072 of them). Else None."""
    if cand.fill is not None or not whole.ready:
        return None
    s = whole()
    if s.size != size:
        return None
    zeros = _leading_zeros(s)
    if cand.values.size != s.size - zeros:
        return None
    tail = s[zeros:]
    return lambda: tail


def _kept_runs(
    whole: SortedSample, cand: _Layout, size: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """The distinct kept values of a layout with one fill item (zero, or a mode) and their
    counts, read off the whole tensor's (``whole``, of ``size`` entries), when those are known
    already (the mode fill or the dense layout's plan sorted every value): such a layout (a
    bitmask's, N:M's) keeps every entry other than the fill, and the rest of its slots hold the
    fill (entries equal to it; N:M's slots past a short last axis, padding), so only the fill's
    count differs (147,456 float32 patterns at 2:4 with 16 centroids: a sort of 117,118 kept
    values saved, ~0.4 ms). Else None."""
    if not whole.unique_ready or (cand.fill is not None and cand.fill.size != 1):
        return None
    uniq, counts = whole.unique()
    fill = 0 if cand.fill is None else cand.fill[0]
    at = int(np.searchsorted(uniq, fill))
    present = at < uniq.size and uniq[at] == fill
    kept_fill = cand.values.size - (size - (int(counts[at]) if present else 0))
    if kept_fill < 0 or (kept_fill and not present):
        return None  # not a layout of those entries: planned the long way
    if kept_fill:
        counts = counts.copy()
        counts[at] = kept_fill
        return uniq, counts
    if not present:
        return uniq, counts
    if at == 0:  # a zero fill (zero sorts first): views, not copies of 73,728 runs
        return uniq[1:], counts[1:]
    return np.delete(uniq, at), np.delete(counts, at)


class _UsedBins:
    """The distinct values of a layout's kept 8- or 16-bit values and their counts, off the
    encode's histogram ``counts`` (2**8 or 2**16 bins): its bins in use, found at the first
    call (a scan of 2**16 bins, ~16 us), less those a layout has taken out (its fill's bin
    ``out``, set to 0 by :class:`_without_bin` while it is planned: the first call, made inside
    such a block, counts that bin in use, and each call leaves out the bins then empty). Called
    only when the centroid planner asks, once a layout: the second and third layouts of an
    encode skip the scan."""

    __slots__ = ("_counts", "_dtype", "_used")

    def __init__(self, counts: np.ndarray, dtype: np.dtype[Any]) -> None:
        self._counts, self._dtype = counts, dtype
        self._used: np.ndarray | None = None

    def __call__(self, out: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        if self._used is None:
            used = hk.used_bins(self._counts)
            self._used = used if out is None else np.union1d(used, [out])
        kept = self._used[self._counts[self._used] > 0]
        return kept.astype(self._dtype), self._counts[kept]


class _without_bin:
    """``counts[unfilled]`` taken as 0 for a ``with`` block (an encode's own histogram,
    planned one candidate at a time; nothing planned keeps ``counts`` itself), then restored.
    A class: every candidate enters one, and a generator's context manager cost ~1 us."""

    __slots__ = ("_counts", "_kept", "_unfilled")

    def __init__(self, counts: np.ndarray | None, unfilled: int | None) -> None:
        self._counts, self._unfilled = counts, unfilled
        self._kept: Any = None

    def __enter__(self) -> None:
        if self._counts is not None and self._unfilled is not None:
            self._kept = self._counts[self._unfilled]
            self._counts[self._unfilled] = 0

    def __exit__(self, *exc: object) -> None:
        if self._counts is not None and self._unfilled is not None:
            self._counts[self._unfilled] = self._kept


class _without_rows:
    """``counts`` less a per-row fill's entries for a ``with`` block (``rows``: the fill, one
    item a row, and the count of each row's entries equal to it), then restored."""

    __slots__ = ("_counts", "_rows")

    def __init__(self, counts: np.ndarray | None,
                 rows: tuple[np.ndarray, np.ndarray] | None) -> None:
        self._counts = counts
        self._rows = None if rows is None else (rows[0].astype(np.intp), rows[1])

    def __enter__(self) -> None:
        if self._counts is not None and self._rows is not None:
            np.subtract.at(self._counts, *self._rows)

    def __exit__(self, *exc: object) -> None:
        if self._counts is not None and self._rows is not None:
            np.add.at(self._counts, *self._rows)


def _mask_loses(size: int, fill_nbytes: int, counts: np.ndarray, kept: int,
                dtype: np.dtype[Any], best: int | None, unfilled: int | None = None,
                rows: tuple[np.ndarray, np.ndarray] | None = None) -> bool:
    """Whether a bitmask layout of ``size`` entries, storing ``fill_nbytes`` of fill, cannot
    beat a plan of ``best`` bytes whatever its stages: its mask costs at least one bit a byte
    (coded) and its ``kept`` values (the tensor's ``counts`` less the bin ``unfilled``, or less
    a per-row fill's entries, ``rows`` as :func:`_without_rows` takes them) at least
    :func:`stages_floor` (16-bit values), else their order-0 entropy (:func:`values_floor`)."""
    if best is None:
        return False
    least = (size + 7) // 8 // 8 + fill_nbytes
    if least >= best:
        return True
    with _without_bin(counts, unfilled), _without_rows(counts, rows):
        if dtype.itemsize == 2 and counts.size == 1 << 16:
            floor = stages_floor(counts, dtype, kept)
        else:
            floor = values_floor(counts)
    return least + floor >= best


def _nm_code_counts(mask_counts: np.ndarray, tables: Any) -> np.ndarray | None:
    """Histogram of the N:M pattern codes of a mask whose bytes hold whole groups (m divides
    8), from the histogram of its bytes; None if some group does not hold exactly n bits."""
    # each byte's groups' codes weighted by the byte's count (exact int64 sums); the last
    # column counts the bytes with a group of other than n bits
    weighed = mask_counts @ _codes_per_byte(tables.n, tables.m)
    return None if weighed[-1] else weighed[:-1]


@lru_cache(maxsize=8)
def _codes_per_byte(n: int, m: int) -> np.ndarray:
    """A 256 x (codes + 1) int64 table: entry [b, c] is how many of the 8 // m groups of mask
    byte ``b`` have N:M pattern code ``c``, and the last column is 1 where one of them holds
    other than n bits (then the byte's row is otherwise 0). What :func:`_nm_code_counts`
    weighs by a mask's byte counts, one product (where a bincount of every used byte's groups
    cost ~9 us on a 384-value tensor, the product ~2)."""
    tables = nm_tables(n, m)
    groups = (np.arange(256)[:, None] >> (np.arange(8 // m) * m)) & ((1 << m) - 1)
    codes = tables.code_of[groups]
    foreign = (codes < 0).any(axis=1)
    table = np.zeros((256, tables.ncodes + 1), np.int64)
    ok = np.flatnonzero(~foreign)
    for g in range(codes.shape[1]):  # each group of the bytes whose groups all hold n bits
        np.add.at(table, (ok, codes[ok, g]), 1)
    table[:, -1] = foreign
    table.flags.writeable = False
    return table


def _unrotated(dtype: np.dtype[Any]) -> np.dtype[Any] | None:
    """The dtype whose planes or fields a 16- or 32-bit float's values are split as with
    ``rotate=0``: its unsigned integer of the same width, never rotated (the same bit
    patterns, the sign bit left on top). None for other dtypes (``rotate=0`` is theirs)."""
    if rotation(dtype) and dtype.itemsize in (2, 4):
        return bits_dtype(dtype)
    return None


def _sign_constant(values: np.ndarray, planes: np.ndarray | None) -> bool:
    """Whether every one of ``values`` (float bit patterns) has the same sign bit: from the
    byte-plane histograms of the values rotated left by one bit, when counted (``planes``: the
    sign is bit 0 of the last plane), else from the values' OR and AND."""
    if planes is not None:
        last = planes[-1]  # count_nonzero: a third of .any()'s time on 128 counts
        return not np.count_nonzero(last[0::2]) or not np.count_nonzero(last[1::2])
    if not values.size:
        return True
    top = np.uint64(8 * values.itemsize - 1)
    ored = np.uint64(np.bitwise_or.reduce(values, axis=None))
    anded = np.uint64(np.bitwise_and.reduce(values, axis=None))
    return bool((ored >> top) == (anded >> top))


#: The share of values at which a rotated float's top byte plane counts as idle (see
#: :func:`_top_plane_idle`).
IDLE_TOP_PLANE = 0.9


def _top_plane_idle(planes: np.ndarray | None, count: int) -> bool:
    """Whether the top byte plane of ``count`` rotated values (``planes``: their byte-plane
    histograms; None if not counted) holds one byte in at least :data:`IDLE_TOP_PLANE` of
    them: float16 subnormals (exponent zero, small mantissas) and the like. A Huffman code
    spends a bit a symbol there however little the plane holds; split unrotated, the sign bit
    joins that plane and rides in that bit, which can beat the rotated split even for values
    of both signs (planned, then kept only where smaller)."""
    # (a comparison and count_nonzero: cheaper than numpy's max of 256 counts)
    return planes is not None and count > 0 and bool(
        np.count_nonzero(planes[0] >= IDLE_TOP_PLANE * count))


def _padding(plan: Any, count: int) -> int:
    """How many bytes a value stage's estimate of ``count`` values may exceed its sections by:
    the estimates are upper bounds exact to a coded stream's padding (its last 64-bit word)."""
    streams = huff._nstreams(count)
    if isinstance(plan, PlanesPlan):
        coded = sum(plan.coded)
    elif isinstance(plan, FieldsPlan):
        coded, streams = (-(-count // plan.block), 4) if plan.block else (1, streams)
    else:
        coded = int(plan.coded)
    return 8 * streams * coded


def _nm_codes(mask: np.ndarray, ngroups: int, m: int, code_of: np.ndarray) -> np.ndarray:
    """The pattern codes of a mask :func:`_nm_code_counts` accepted."""
    codes = np.empty(ngroups, np.uint16)
    ok = nm_codes_from_mask(mask, m, code_of, codes)
    assert ok  # every group was checked through the byte histogram
    return codes
