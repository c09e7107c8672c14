"""The distinct values of a planner's values, found once and shared: a sorted sample of them,
its runs, the values' own distinct values and counts, and the centroid planner's question
(:func:`distinct_values`: are they few enough for a codebook?). Split out of ``_stages``, whose
value stages use them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import _huffman_kernels as hk
from ._kernels import (
    distinct_above,
    hash_bins,
    narrow_patterns,
    sorted_bits,
    sorted_runs,
    unique_bits,
    unique_few,
)
from ._stages import COUNT_PATTERNS_FROM, MAX_CENTROIDS, lent_value_counts, value_counts

__all__ = [
    "FEW_DISTINCT",
    "Runs",
    "SortedSample",
    "distinct_values",
    "sorted_sample",
    "unique_counts",
]


#: Distinct values and how often each occurs (int64), ascending: ``np.unique(values,
#: return_counts=True)``; or a function returning them, called only when they are asked for.
Runs = tuple[np.ndarray, np.ndarray] | Callable[[], tuple[np.ndarray, np.ndarray]]


#: The most distinct values a sample's or tensor's hash count (:func:`~._kernels.unique_few`)
#: looks for before they are sorted instead: a centroid codebook of 4096 float32 values is
#: 16 KiB, past which few tensors gain from one.
FEW_DISTINCT = 4096


class SortedSample:
    """:func:`sorted_sample` of ``values``, sorted at the first call and kept (a planner asks
    several questions of it); ``ready`` once it is sorted. It also keeps the sample's runs and
    the values' own distinct values, once asked (:meth:`runs`, :meth:`unique`)."""

    __slots__ = ("_hashed", "_runs", "_sorted", "_unique", "_values")

    def __init__(self, values: np.ndarray) -> None:
        self._values = values
        self._sorted: np.ndarray | None = None
        self._hashed: tuple[int, int, int] | None = None
        self._runs: tuple[np.ndarray, np.ndarray] | None = None
        self._unique: tuple[np.ndarray, np.ndarray] | None = None

    def __call__(self) -> np.ndarray:
        if self._sorted is None:
            # its runs counted already (few distinct values): repeated, not sorted
            self._sorted = (np.repeat(*self._runs) if self._runs is not None
                            else sorted_sample(self._values))
        return self._sorted

    @property
    def ready(self) -> bool:
        return self._sorted is not None

    def runs(self) -> tuple[np.ndarray, np.ndarray]:
        """:func:`~._kernels.sorted_runs` of the sorted sample, found once (the mode fill and
        the centroid planner both ask for them), by :func:`~._kernels.unique_few` without a sort
        where :attr:`few`: the same arrays to every caller, which reads them only (marking them
        read-only cost more than the runs saved, 64x27 float32)."""
        if self._runs is None:
            if self.few:
                self._runs = unique_few(_sample_of(self._values), FEW_DISTINCT)
            if self._runs is None:
                self._runs = sorted_runs(self())
        return self._runs

    @property
    def few(self) -> bool:
        """Whether :meth:`runs` are known, or are first counted without a sort: a sample of 4-
        or 8-byte patterns not sorted yet whose hash bins (:meth:`hashed`) in use are fewer
        than :data:`FEW_DISTINCT` (clustered or quantized float32), which
        :func:`~._kernels.unique_few` counts in one pass if they hold that few distinct
        patterns (73,728 float32 patterns of 17 values: ~0.1 ms, sorted ~0.3), else gives up
        and the sample is sorted."""
        return self._runs is not None or (
            self._sorted is None and self._hashed is not None
            and self._hashed[1] < FEW_DISTINCT and self.itemsize in (4, 8))

    def unique(self) -> tuple[np.ndarray, np.ndarray]:
        """:func:`unique_counts` of the values themselves, found once (the mode fill and the
        dense layout's centroid plan both ask): the sample's runs when it holds every value,
        else a count by :func:`~._kernels.unique_few` when the sample's runs are few, else a
        sort of every value (147,456 float32 patterns: ~0.4 ms a sort)."""
        if self._unique is None:
            flat = self._values.reshape(-1)
            if flat.size // 65536 <= 1:
                self._unique = self.runs()
            else:  # a sample of few distinct values: the whole tensor likely has few too
                if self._runs is not None and self._runs[0].size <= FEW_DISTINCT // 2:
                    self._unique = unique_few(flat, FEW_DISTINCT)
                if self._unique is None:
                    self._unique = unique_bits(flat)
        return self._unique

    @property
    def unique_ready(self) -> bool:
        """Whether :meth:`unique` is known without a sort."""
        return self._unique is not None

    @property
    def size(self) -> int:
        """The sample's entries."""
        return _sample_of(self._values).size

    @property
    def itemsize(self) -> int:
        """The bytes of one entry."""
        return int(self._values.dtype.itemsize)

    def hashed(self) -> tuple[int, int, int]:
        """(the most entries of one non-zero pattern at most, the distinct non-zero patterns
        at least, the zeros) of the sample, unsorted, from :func:`~._kernels.hash_bins` (4-
        and 8-byte patterns; computed once): what settles the planner's questions of a sample
        of mostly distinct float32 weights without sorting it."""
        if self._hashed is None:
            flat = self._values.reshape(-1)  # the sample, read where it lies
            self._hashed = hash_bins(flat, _sample_step(flat))
        return self._hashed


def _sample_step(flat: np.ndarray) -> int:
    return max(1, flat.size // 65536)


def _sample_of(values: np.ndarray) -> np.ndarray:
    flat = values.reshape(-1)
    return flat[:: _sample_step(flat)]


def sorted_sample(values: np.ndarray) -> np.ndarray:
    """Every ``size // 65536``-th value of ``values`` (all of them up to 131071), sorted: what
    :func:`distinct_values` judges wide values by, and the planner's mode tests."""
    return sorted_bits(_sample_of(values))


def unique_counts(
    values: np.ndarray, sample: Callable[[], np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_counts=True)`` (counts int64). When :func:`sorted_sample`
    holds every value (up to 131071 of them) the runs of the sorted sample give it: the caller's
    ``sample()``, sorted once for several questions, or sorted here."""
    flat = values.reshape(-1)
    if isinstance(sample, SortedSample):
        return sample.unique()
    if flat.size // 65536 > 1 or sample is None:  # the sample skips values, or is not sorted
        return unique_bits(flat)
    return sorted_runs(sample())


def distinct_values(
    values: np.ndarray,
    limit: int = MAX_CENTROIDS,
    *,
    give_up_early: bool = True,
    counts: np.ndarray | None = None,
    sample: Callable[[], np.ndarray] | None = None,
    low_zeros: int = 0,
    runs: Runs | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(sorted distinct values, their counts)``, or None if there are more than ``limit``.

    With ``give_up_early``, also None when a sample shows the values are mostly distinct (no
    codebook would pay off); the ``centroid`` codec, which must take any k <= limit, passes False.
    ``counts``: :func:`value_counts` of ``values``, when known; ``sample()``: their
    :func:`sorted_sample`, when the caller has it (called only if the sample is needed);
    ``low_zeros``: how many zero bits every value is known to end in (32-bit values ending in
    16 or 13, float32 at bfloat16 or float16 precision, are counted as the 16-bit patterns that
    stand for them are: :func:`~._kernels.narrow_patterns`); ``runs``: the answer, ``(sorted
    distinct values, int64 counts)`` (or a function giving it), when the caller knows it
    without a sort or a scan of the counts: what the give-up test would answer is read off it
    where it can be (the sample finds no more distinct values than ``runs`` holds, and where it
    holds every value, exactly as many).
    """
    if callable(runs):
        runs = runs()
    narrow = (narrow_patterns(values, low_zeros) if low_zeros >= 13
              and values.size >= COUNT_PATTERNS_FROM else None)
    if narrow is not None:  # 393,216 at bfloat16 precision: counted 0.35 ms, sorted 1.15 ms
        with lent_value_counts(narrow[0]) as narrow_counts:
            assert narrow_counts is not None
            uniq = hk.used_bins(narrow_counts)
            found = narrow_counts[uniq]
        return (narrow[1](uniq.astype(np.uint16)), found) if uniq.size <= limit else None
    if counts is not None and runs is not None:  # counted, and their used bins at hand
        return runs if runs[0].size <= limit else None
    if counts is None:
        counts = value_counts(values)
    if counts is not None:
        uniq = hk.used_bins(counts)
        if uniq.size > limit:
            return None
        return uniq.astype(values.dtype), counts[uniq]
    if runs is not None:  # wide values (narrower ones are counted above)
        sampled = _sample_of(values).size
        cap = min(limit, sampled // 2) if give_up_early else limit
        if runs[0].size <= cap:
            return runs
        # more than the limit; or, where the sample holds every value, more than the give-up
        # test's cap of them: its answer either way
        if runs[0].size > limit or sampled == values.size:
            return None
    if values.size < 4096:  # small: a sort beats a scan of 2**16 histogram bins (67 us)
        cap = min(limit, values.size // 2)
        wide = give_up_early and values.dtype.itemsize > 2  # the test below, the array whole
        if wide and not _sorted_at_hand(sample) and distinct_above(values.reshape(-1), cap):
            return None
        uniq, counts = unique_counts(values, sample)
        if wide and uniq.size > cap:
            return None
        return (uniq, counts.astype(np.int64)) if uniq.size <= limit else None
    # Mostly distinct values (no codebook will pay off) are told by the sample's distinct
    # count: off the sorted sample when it is at hand, else by a hash count that stops early
    # (numpy's hashing np.unique took 12 ms on 65536 float32 patterns, a sort 0.3 ms, the
    # hash count that stops at half of them 0.04 ms: docs/benchmarks.md, issue 13).
    if give_up_early:
        if _sorted_at_hand(sample):
            assert sample is not None
            s = sample()
            above = s.size > 0 and int(np.count_nonzero(s[1:] != s[:-1])) + 1 > min(
                limit, s.size // 2)
        else:
            raw = _sample_of(values)  # sorted_sample's
            cap = min(limit, raw.size // 2)
            above = None
            if isinstance(sample, SortedSample) and values.dtype.itemsize in (4, 8):
                _, occupied, zeros = sample.hashed()  # the same sample's, counted by hash
                above = True if occupied + (zeros > 0) > cap else None
            if above is None:
                above = distinct_above(raw, cap)
        if above:
            return None
    uniq, counts = unique_counts(values, sample)
    return (uniq, counts) if uniq.size <= limit else None


def _sorted_at_hand(sample: Callable[[], np.ndarray] | None) -> bool:
    """Whether ``sample()`` returns a sorted sample without sorting: a :class:`SortedSample`
    sorted already, or another callable (one read off a sorted sample, returning it)."""
    return sample is not None and getattr(sample, "ready", True)
