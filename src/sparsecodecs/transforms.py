"""The lossy transforms: magnitude pruning, weight clustering and integer quantization.

Codecs are lossless; these functions are where information is thrown away, on purpose and
in the open. Each returns ``(new_array, report)``: the transformed array, in the input's dtype
and shape, and a small frozen report saying what was removed and how large the error is.
Nothing is copied back into the input, and an input the transform would not change comes back
bit for bit (as a new array).

>>> import numpy as np
>>> from sparsecodecs.transforms import cluster, prune
>>> w = np.array([[0.5, -2.0, 0.25, 1.0], [3.0, 0.0, -0.5, 0.125]], dtype=np.float32)
>>> pruned, report = prune(w, "2:4")
>>> pruned
array([[ 0. , -2. ,  0. ,  1. ],
       [ 3. ,  0. , -0.5,  0. ]], dtype=float32)
>>> report.zeroed, report.density
(3, 0.5)
>>> clustered, creport = cluster(pruned, 2)
>>> sorted(set(clustered[clustered != 0].tolist()))
[-1.25, 2.0]
>>> creport.distinct
2
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import ml_dtypes
import numpy as np

from .registry import (
    FLOAT_LAYOUTS,
    CodecConfigError,
    PatternError,
    ShapeError,
    UnsupportedDtypeError,
    as_bits,
    check_choice,
    check_int,
)
from .registry.dtypes import dtype_name

__all__ = [
    "DEFAULT_PRUNE_EXCLUDE",
    "QUANT_DTYPES",
    "STRUCTURED",
    "ClusterReport",
    "PruneReport",
    "QuantizeReport",
    "cluster",
    "dequantize",
    "pack_int4",
    "parse_pattern",
    "prune",
    "prune_scope",
    "quantize",
    "unpack_int4",
]

#: The largest number of centroids :func:`cluster` accepts (a 16-bit codebook).
MAX_CENTROIDS = 1 << 16


@dataclass(frozen=True)
class PruneReport:
    """What :func:`prune` removed.

    ``pattern`` is ``"n:m"``, ``"unstructured"``, ``"rows"`` or ``"blocks"``; ``axis`` the
    (non-negative) axis of the N:M groups, ``None`` otherwise. ``zeroed`` counts the non-zero
    values set to zero (``zeroed_fraction`` = ``zeroed / size``), ``density`` is the fraction of
    non-zero values in the result. ``max_abs_error`` and ``rel_rms_error``
    (``||w' - w|| / ||w||`` over finite values) compare the result with the input. For
    structured pruning, ``block`` is the ``(rows, columns)`` shape of the unit removed whole
    (``(1, columns)`` for ``"rows"``) and ``blocks_removed`` how many units were removed, out of
    ``blocks_total``; both are ``None`` / 0 for the other patterns.
    """

    pattern: str
    axis: int | None
    size: int
    zeroed: int
    zeroed_fraction: float
    density: float
    max_abs_error: float
    rel_rms_error: float
    block: tuple[int, int] | None = None
    blocks_removed: int = 0
    blocks_total: int = 0


@dataclass(frozen=True)
class ClusterReport:
    """What :func:`cluster` changed.

    ``clustered`` counts the values that were replaced by a centroid (the finite non-zero values
    of the rows that had more than ``k`` distinct values; 0 means the input came back
    unchanged). ``distinct`` is the number of distinct finite non-zero values in the result (at
    most ``k``, or ``k`` per row with ``per_row``); ``iterations`` the number of Lloyd iterations
    run. The errors are as in :class:`PruneReport`.
    """

    k: int
    per_row: bool
    clustered: int
    distinct: int
    iterations: int
    max_abs_error: float
    rel_rms_error: float


# -- shared helpers ---------------------------------------------------------------------------


def _check_array(w: object, what: str) -> np.ndarray:
    if not isinstance(w, np.ndarray):
        raise UnsupportedDtypeError(
            f"{what} expects a numpy.ndarray, got {type(w).__module__}.{type(w).__qualname__}"
        )
    as_bits(w)  # raises UnsupportedDtypeError for dtypes sparsecodecs does not support
    return w


def _magnitude(w: np.ndarray) -> np.ndarray:
    """|w| as float64, NaN counted as larger than anything (so pruning never drops a NaN)."""
    mag = np.abs(w.astype(np.float64))
    return np.where(np.isnan(mag), np.inf, mag)


def _errors(before: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    """(max abs error, relative RMS error); elements with unchanged bits count as exact."""
    changed = as_bits(before)[0] != as_bits(after)[0]
    if not changed.any():
        return 0.0, 0.0
    a = before.astype(np.float64)
    diff = np.abs(a[changed] - after.astype(np.float64)[changed])
    finite = a[np.isfinite(a)]
    norm, err = math.sqrt(_sum_squares(finite)), math.sqrt(_sum_squares(diff))
    return float(diff.max()), (err / norm if norm else math.inf)


def _sum_squares(x: np.ndarray) -> float:
    """The sum of the squares of the float64 ``x``, on the calling thread. Not ``np.dot``:
    BLAS hands a long vector to its worker threads, which then spin on the other cores for
    about 0.1 s after the call has returned (process CPU time 1.96x wall time for 50 ms after
    pruning a 4096x4096 tensor on a 2-core machine), taking them from whatever runs next."""
    return float(np.einsum("i,i->", x.reshape(-1), x.reshape(-1)))


def _nonzero_count(w: np.ndarray) -> int:
    return int(np.count_nonzero(w))


# -- prune ------------------------------------------------------------------------------------


#: Tensor (or module) names that pruning leaves alone unless told otherwise, as pruning tools
#: do: embeddings (token, position, type; ``wte``/``wpe``), normalisation layers and the output
#: head. Regular expressions searched (:func:`re.search`) in the name, case-insensitively.
#: Tensors with fewer than two axes (biases, norm scales) are never pruned in any case.
DEFAULT_PRUNE_EXCLUDE: tuple[str, ...] = (
    r"embed",
    r"norm",
    r"(^|\.)(wte|wpe|ln_\w*|ln\d*)(\.|$)",
    r"(^|\.)lm_head(\.|$)",
)


def _compile_patterns(patterns: Sequence[str] | str | None, what: str) -> list[re.Pattern[str]]:
    if patterns is None:
        return []
    if isinstance(patterns, str):
        patterns = [patterns]
    out = []
    for p in patterns:
        if not isinstance(p, str):
            raise CodecConfigError(f"{what} must be regular expressions (str), got {p!r:.100}")
        try:
            out.append(re.compile(p, re.IGNORECASE))
        except re.error as exc:
            raise CodecConfigError(
                f"{what}: {p!r} is not a valid regular expression ({exc})"
            ) from exc
    return out


def prune_scope(
    include: Sequence[str] | str | None = None, exclude: Sequence[str] | str | None = None
) -> Callable[[str], bool]:
    """A predicate on tensor (or module) names: should pruning touch this one?

    A name is pruned if it matches one of ``include`` (``None``: every name) and none of
    ``exclude`` (``None``: :data:`DEFAULT_PRUNE_EXCLUDE`; ``()``: exclude nothing). Patterns
    are regular expressions searched in the name, case-insensitively. Invalid patterns raise
    :class:`~sparsecodecs.registry.errors.CodecConfigError`.

    >>> keep = prune_scope()
    >>> names = ["encoder.layer.0.attention.self.query.weight", "lm_head.weight",
    ...          "embeddings.word_embeddings.weight", "encoder.layer.0.output.LayerNorm.weight"]
    >>> [keep(n) for n in names]
    [True, False, False, False]
    >>> prune_scope(include=[r"[.]mlp[.]"], exclude=())("h.0.mlp.c_fc.weight")
    True
    """
    inc = _compile_patterns(include, "prune include patterns")
    exc = _compile_patterns(
        DEFAULT_PRUNE_EXCLUDE if exclude is None else exclude, "prune exclude patterns"
    )

    def selected(name: str) -> bool:
        if include is not None and not any(p.search(name) for p in inc):
            return False
        return not any(p.search(name) for p in exc)

    return selected


def parse_pattern(pattern: object) -> tuple[int, int] | None:
    """``"2:4"`` or ``(2, 4)`` -> ``(2, 4)``; ``None`` -> ``None``. Requires ``1 <= n < m``.

    >>> parse_pattern("1:4"), parse_pattern((4, 8)), parse_pattern(None)
    ((1, 4), (4, 8), None)
    """
    if pattern is None:
        return None
    if isinstance(pattern, str):
        n_text, sep, m_text = pattern.partition(":")
        try:
            n, m = int(n_text), int(m_text)
        except ValueError:
            n = m = -1
        if not sep or n < 0:
            raise CodecConfigError(
                f"pattern must look like 'n:m' (e.g. '2:4'), be a (n, m) tuple or None; "
                f"got {pattern!r}"
            )
    elif isinstance(pattern, (tuple, list)) and len(pattern) == 2:
        n, m = check_int("pattern n", pattern[0]), check_int("pattern m", pattern[1])
    else:
        raise CodecConfigError(
            f"pattern must be 'n:m' (e.g. '2:4'), a (n, m) tuple or None; got {pattern!r:.100}"
        )
    if not 1 <= n < m:
        raise CodecConfigError(f"pattern n:m needs 1 <= n < m, got n={n}, m={m}")
    return n, m


def _nm_drop(w: np.ndarray, n: int, m: int, axis: int) -> np.ndarray:
    """Mask of the elements N:M pruning removes: all but the n largest of each group of m."""
    x = np.moveaxis(w, axis, -1)
    length = x.shape[-1]
    groups_per_line = -(-length // m)
    mag = _magnitude(x)
    pad = groups_per_line * m - length
    if pad:  # a short last group: padding slots rank below every real element
        mag = np.pad(mag, [(0, 0)] * (x.ndim - 1) + [(0, pad)], constant_values=-1.0)
    groups = mag.reshape(-1, m)
    # rank[i] = how many elements of the group beat element i: larger magnitude, or equal
    # magnitude at a lower position. The n elements with rank < n are kept.
    rank = np.zeros(groups.shape, np.int32)
    for j in range(m):
        col = groups[:, j : j + 1]
        rank += col > groups
        ties = col == groups
        ties[:, : j + 1] = False
        rank += ties
    drop = (rank >= n).reshape(*x.shape[:-1], groups_per_line * m)[..., :length]
    return np.moveaxis(drop, -1, axis)


def _unstructured_drop(w: np.ndarray, density: float) -> np.ndarray:
    """Mask of all but the ``round(density * size)`` largest magnitudes (ties: C order)."""
    size = w.size
    keep_count = min(size, round(density * size))
    mag = _magnitude(w).reshape(-1)
    keep = np.zeros(size, bool)
    if keep_count:
        threshold = np.partition(mag, size - keep_count)[size - keep_count]
        keep = mag > threshold
        ties = np.flatnonzero(mag == threshold)[: keep_count - int(keep.sum())]
        keep[ties] = True
    return ~keep.reshape(w.shape)


#: The structured patterns of :func:`prune`: whole units of the 2-D view removed at once.
STRUCTURED = ("rows", "blocks")


def _as_2d(shape: tuple[int, ...]) -> tuple[int, int]:
    """(rows, columns) of the 2-D view: leading axes flattened, the last axis kept."""
    if not shape:
        return 1, 1
    return math.prod(shape[:-1]), shape[-1]


def _check_block(block: object) -> tuple[int, int]:
    if not isinstance(block, (tuple, list)) or len(block) != 2:
        raise CodecConfigError(
            f"block must be a (rows, columns) pair of positive integers, e.g. (4, 4); "
            f"got block={block!r:.100}"
        )
    return check_int("block rows", block[0], 1), check_int("block columns", block[1], 1)


def _check_density(density: object, what: str) -> float:
    if (
        density is None
        or isinstance(density, bool)
        or not isinstance(density, (int, float, np.floating))
        or not 0.0 <= float(density) <= 1.0
    ):
        raise CodecConfigError(f"{what} needs density= in [0, 1], got density={density!r}")
    return float(density)


def _block_drop(w: np.ndarray, bh: int, bw: int, density: float) -> tuple[np.ndarray, int, int]:
    """(mask of removed elements, blocks removed, blocks) for block pruning of the 2-D view.

    Keeps the ``round(density * blocks)`` blocks of ``bh x bw`` elements (edge blocks cut
    short) with the largest sum of squares, which removes the least squared error possible.
    NaN and infinity count as infinitely large; ties keep the lowest block index (C order).
    """
    rows, cols = _as_2d(w.shape)
    nbr, nbc = -(-rows // bh), -(-cols // bw)
    total = nbr * nbc
    square = _magnitude(w).reshape(rows, cols) ** 2
    padded = np.zeros((nbr * bh, nbc * bw))
    padded[:rows, :cols] = square
    scores = padded.reshape(nbr, bh, nbc, bw).sum(axis=(1, 3)).reshape(-1)
    keep_count = min(total, round(density * total))
    keep = np.zeros(total, bool)
    keep[np.argsort(-scores, kind="stable")[:keep_count]] = True
    drop = np.repeat(np.repeat(~keep.reshape(nbr, nbc), bh, axis=0), bw, axis=1)
    return drop[:rows, :cols].reshape(w.shape), total - keep_count, total


def _structured_unit(w: np.ndarray, pattern: str, axis: object, block: object) -> tuple[int, int]:
    """The (rows, columns) unit that ``"rows"`` / ``"blocks"`` pruning removes whole."""
    if axis != -1:
        raise CodecConfigError(
            f"axis= is for N:M pruning; pattern={pattern!r} works on the 2-D view "
            f"(leading axes flattened), got axis={axis!r}"
        )
    if pattern == "blocks":
        if block is None:
            raise CodecConfigError("pattern='blocks' needs block=(rows, columns), e.g. (4, 4)")
        return _check_block(block)
    if block is not None:
        raise CodecConfigError(
            f"block= is for pattern='blocks'; pattern='rows' removes whole rows, got "
            f"block={block!r}"
        )
    return 1, max(1, _as_2d(w.shape)[1])


def prune(
    w: np.ndarray,
    pattern: str | tuple[int, int] | None = "2:4",
    *,
    density: float | None = None,
    axis: int = -1,
    block: tuple[int, int] | None = None,
) -> tuple[np.ndarray, PruneReport]:
    """Magnitude pruning: N:M along ``axis``, unstructured, or whole rows or blocks.

    Parameters
    ----------
    w
        The weights (any supported dtype; floats are compared by magnitude, NaN counts as the
        largest).
    pattern
        ``"n:m"`` or ``(n, m)``: keep the ``n`` largest magnitudes of every group of ``m``
        consecutive elements along ``axis`` (a last group shorter than ``m`` keeps at most
        ``n``). ``None``: unstructured pruning to ``density``.
    density
        With ``pattern=None``: the fraction of elements to keep, in [0, 1]; the
        ``round(density * size)`` largest magnitudes of the whole array are kept.
    axis
        The axis of the N:M groups. For a torch ``Linear`` weight of shape (out, in), pruning
        "along the input dimension" (what sparse tensor cores need) is ``axis=-1``.

    Returns
    -------
    (pruned, report)
        ``pruned`` has the input's dtype and shape; removed elements are ``+0``, kept elements
        keep their exact bit patterns. Ties are broken by position, lowest first, so the result
        is deterministic (no randomness is involved).

    Examples
    --------
    >>> import numpy as np
    >>> w = np.arange(1, 9, dtype=np.float32).reshape(2, 4)
    >>> prune(w, None, density=0.25)[0]
    array([[0., 0., 0., 0.],
           [0., 0., 7., 8.]], dtype=float32)
    >>> prune(w, (1, 2), axis=0)[0]
    array([[0., 0., 0., 0.],
           [5., 6., 7., 8.]], dtype=float32)
    >>> prune(w, "rows", density=0.5)[0]
    array([[0., 0., 0., 0.],
           [5., 6., 7., 8.]], dtype=float32)
    >>> pruned, report = prune(w, "blocks", density=0.5, block=(2, 2))
    >>> pruned
    array([[0., 0., 3., 4.],
           [0., 0., 7., 8.]], dtype=float32)
    >>> report.block, report.blocks_removed, report.blocks_total
    ((2, 2), 1, 2)
    """
    w = _check_array(w, "prune")
    block_shape: tuple[int, int] | None = None
    removed = total = 0
    if isinstance(pattern, str) and pattern in STRUCTURED:
        block_shape = _structured_unit(w, pattern, axis, block)
        drop, removed, total = _block_drop(
            w, *block_shape, _check_density(density, f"pattern={pattern!r}")
        )
        name, report_axis = pattern, None
    elif block is not None:
        raise CodecConfigError(
            f"block= is for pattern='blocks', got pattern={pattern!r} with block={block!r}"
        )
    elif (nm := parse_pattern(pattern)) is not None:
        if density is not None:
            raise CodecConfigError(
                f"density= is for unstructured pruning; pass pattern=None with it "
                f"(got pattern={pattern!r}, density={density!r})"
            )
        if w.ndim == 0:
            raise CodecConfigError("N:M pruning needs an array with at least one axis")
        if not isinstance(axis, (int, np.integer)) or not -w.ndim <= axis < w.ndim:
            raise CodecConfigError(
                f"axis must be an integer in [{-w.ndim}, {w.ndim - 1}] for a {w.ndim}-D array, "
                f"got axis={axis!r}"
            )
        axis = int(axis) % w.ndim
        drop = _nm_drop(w, nm[0], nm[1], axis)
        name, report_axis = f"{nm[0]}:{nm[1]}", axis
    else:
        drop = _unstructured_drop(
            w, _check_density(density, "unstructured pruning (pattern=None)")
        )
        name, report_axis = "unstructured", None
    zeroed = int(np.count_nonzero(w[drop]))
    out = w.copy()
    out[drop & (as_bits(w)[0] != 0)] = 0  # bits already +0 stay as they are
    max_err, rel_err = _errors(w, out)
    size = int(w.size)
    report = PruneReport(
        pattern=name,
        axis=report_axis,
        size=size,
        zeroed=zeroed,
        zeroed_fraction=zeroed / size if size else 0.0,
        density=_nonzero_count(out) / size if size else 0.0,
        max_abs_error=max_err,
        rel_rms_error=rel_err,
        block=block_shape,
        blocks_removed=removed,
        blocks_total=total,
    )
    return out, report


# -- cluster ----------------------------------------------------------------------------------


def _row_search(
    keys: np.ndarray, key_rows: np.ndarray, queries: np.ndarray, query_rows: np.ndarray,
    side: Any,
) -> np.ndarray:
    """``np.searchsorted`` inside rows: ``keys`` is sorted within each row, rows ascending.

    Returns indices into the whole ``keys`` array. Several rows are searched at once, exactly,
    by keying every value as the complex number ``row + 1j * value``: numpy orders complex
    numbers lexicographically (real part first).
    """
    if key_rows.size == 0 or key_rows[0] == key_rows[-1]:
        return np.searchsorted(keys, queries, side=side)
    return np.searchsorted(key_rows + 1j * keys, query_rows + 1j * queries, side=side)


def _init_centroids(
    s: np.ndarray, ptr: np.ndarray, row_of: np.ndarray, k: int, rng: np.random.Generator
) -> np.ndarray:
    """k-means++ seeding (D^2 sampling), all rows at once. Every row has more than k values."""
    rows = ptr.size - 1
    starts, ends = ptr[:-1], ptr[1:]
    centroids = np.empty((rows, k))
    pick = starts + np.floor(rng.random(rows) * (ends - starts)).astype(np.int64)
    centroids[:, 0] = s[pick]
    d2 = (s - centroids[row_of, 0]) ** 2
    for c in range(1, k):
        cum = np.concatenate(([0.0], np.cumsum(d2)))
        lo, hi = cum[starts], cum[ends]
        u = lo + rng.random(rows) * (hi - lo)
        pick = np.searchsorted(cum, u, side="right") - 1
        pick = np.where(hi > lo, np.clip(pick, starts, ends - 1), starts)
        centroids[:, c] = s[pick]
        np.minimum(d2, (s - centroids[row_of, c]) ** 2, out=d2)
    return np.sort(centroids, axis=1)


def _lloyd(
    s: np.ndarray, ptr: np.ndarray, row_of: np.ndarray, centroids: np.ndarray, max_iter: int
) -> tuple[np.ndarray, int]:
    """1-D Lloyd iterations on sorted rows: cluster j of a row is the run of its sorted values
    between the midpoints around centroid j, its mean a difference of prefix sums."""
    rows, k = centroids.shape
    prefix = np.concatenate(([0.0], np.cumsum(s)))
    mid_rows = np.repeat(np.arange(rows), k - 1).astype(np.float64)
    row_keys = row_of.astype(np.float64)
    bounds = np.empty((rows, k + 1), np.int64)
    bounds[:, 0], bounds[:, -1] = ptr[:-1], ptr[1:]
    previous = None
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007  (the count is returned)
        mids = (centroids[:, :-1] + centroids[:, 1:]) / 2
        inner = _row_search(s, row_keys, mids.reshape(-1), mid_rows, "left")
        bounds[:, 1:-1] = inner.reshape(rows, k - 1)
        if previous is not None and np.array_equal(previous, bounds):
            break
        previous = bounds.copy()
        counts = np.diff(bounds, axis=1)
        sums = prefix[bounds[:, 1:]] - prefix[bounds[:, :-1]]
        with np.errstate(invalid="ignore", divide="ignore"):
            centroids = np.sort(np.where(counts > 0, sums / counts, centroids), axis=1)
    return centroids, iterations


def cluster(
    w: np.ndarray, k: int, *, seed: int = 0, per_row: bool = False, max_iter: int = 300
) -> tuple[np.ndarray, ClusterReport]:
    """k-means weight clustering of the non-zero values (weight sharing).

    Every finite non-zero value is replaced by the nearest of ``k`` centroids (1-D k-means:
    k-means++ seeding drawn from ``numpy.random.default_rng(seed)``, then Lloyd iterations on
    the sorted values until the clusters stop changing or ``max_iter``). Zeros (``+0`` and
    ``-0``), NaN and infinities are kept bit for bit, so the sparsity pattern survives; the
    centroids are rounded to the input dtype. A set of values with at most ``k`` distinct values
    comes back unchanged.

    Parameters
    ----------
    w
        Floating-point weights (bfloat16, float16, float32, float64, float8).
    k
        Number of centroids, 1 to 65536.
    seed
        Seed of the k-means++ draws; equal inputs and seeds give bit-identical results.
    per_row
        Cluster each row of the 2-D view (leading axes flattened, last axis kept) on its own,
        with ``k`` centroids per row.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.array([0.0, 1.0, 1.1, 5.0, 5.2, -0.0], dtype=np.float32)
    >>> cluster(w, 2)[0]
    array([ 0.  ,  1.05,  1.05,  5.1 ,  5.1 , -0.  ], dtype=float32)
    """
    w = _check_array(w, "cluster")
    if dtype_name(w.dtype).lstrip(">") not in FLOAT_LAYOUTS:
        raise UnsupportedDtypeError(
            f"cluster works on floating-point weights, got dtype {w.dtype}; integer weights are "
            "already quantized"
        )
    k = check_int("k", k, 1, MAX_CENTROIDS)
    seed = check_int("seed", seed, 0)
    max_iter = check_int("max_iter", max_iter, 1)
    if not isinstance(per_row, (bool, np.bool_)):
        raise CodecConfigError(f"per_row must be True or False, got {per_row!r}")
    cols = w.shape[-1] if w.ndim and per_row else w.size
    rows = w.size // cols if cols else 0
    values = w.astype(np.float64).reshape(rows, cols)
    selected = (values != 0) & np.isfinite(values)
    counts = selected.sum(axis=1)
    # Sorted selected values of every row, concatenated (row-major).
    ordered = np.sort(np.where(selected, values, np.inf), axis=1)
    s = ordered[np.arange(cols) < counts[:, None]]
    ptr = np.concatenate(([0], np.cumsum(counts)))
    row_of = np.repeat(np.arange(rows), counts)
    first = np.ones(s.size, bool)
    first[1:] = s[1:] != s[:-1]
    first[ptr[:-1][counts > 0]] = True
    distinct = np.bincount(row_of[first], minlength=rows)
    active = distinct > k  # the other rows already have at most k values: left as they are
    out = w.copy()
    iterations = 0
    if active.any():
        keep = active[row_of]
        s_act, counts_act = s[keep], counts[active]
        ptr_act = np.concatenate(([0], np.cumsum(counts_act)))
        row_act = np.repeat(np.arange(counts_act.size), counts_act)
        rng = np.random.default_rng(seed)
        centroids = _init_centroids(s_act, ptr_act, row_act, k, rng)
        centroids, iterations = _lloyd(s_act, ptr_act, row_act, centroids, max_iter)
        # Assign every selected value of the active rows to its nearest centroid.
        target = selected & active[:, None]
        r_idx, c_idx = np.nonzero(target)
        local = np.cumsum(active) - 1  # row -> index among active rows
        lr = local[r_idx]
        mids = ((centroids[:, :-1] + centroids[:, 1:]) / 2).reshape(-1)
        mid_rows = np.repeat(np.arange(centroids.shape[0]), k - 1).astype(np.float64)
        where = _row_search(mids, mid_rows, values[r_idx, c_idx], lr.astype(np.float64), "right")
        label = where - lr * (k - 1)
        out.reshape(rows, cols)[r_idx, c_idx] = centroids.astype(w.dtype)[lr, label]
    out_values = out.astype(np.float64).reshape(-1)
    finite_nz = out_values[(out_values != 0) & np.isfinite(out_values)]
    max_err, rel_err = _errors(w, out)
    report = ClusterReport(
        k=k,
        per_row=bool(per_row),
        clustered=int(counts[active].sum()),
        distinct=int(np.unique(finite_nz).size),
        iterations=iterations,
        max_abs_error=max_err,
        rel_rms_error=rel_err,
    )
    return out, report


# -- quantize ---------------------------------------------------------------------------------

#: The integer dtype :func:`quantize` returns for each ``(bits, scheme)``.
QUANT_DTYPES: dict[tuple[int, str], np.dtype[Any]] = {
    (8, "symmetric"): np.dtype(np.int8),
    (8, "asymmetric"): np.dtype(np.uint8),
    (4, "symmetric"): np.dtype(ml_dtypes.int4),
    (4, "asymmetric"): np.dtype(ml_dtypes.uint4),
}
_INT4_NAMES = ("int4", "uint4")


@dataclass(frozen=True, eq=False)
class QuantizeReport:
    """The parameters and the error of :func:`quantize`.

    ``scale`` (float32) and ``zero_point`` (int32) have shape ``()`` for a per-tensor
    quantization (``axis=None``) or ``(w.shape[axis],)`` per channel; the weights are
    ``dequantize(q, scale, zero_point, axis=axis)``. ``bits`` is 8 or 4, ``scheme``
    ``"symmetric"`` (zero point 0, levels ``-(2**(bits-1) - 1) .. 2**(bits-1) - 1``) or
    ``"asymmetric"`` (levels ``0 .. 2**bits - 1``); ``dtype`` the name of ``q``'s dtype.
    ``max_abs_error`` and ``rel_rms_error`` (``||w' - w|| / ||w||``) compare the dequantized
    tensor, computed in float64, with the input.
    """

    bits: int
    scheme: str
    axis: int | None
    dtype: str
    scale: np.ndarray
    zero_point: np.ndarray
    max_abs_error: float
    rel_rms_error: float


def _check_axis(axis: object, ndim: int, what: str) -> int | None:
    if axis is None:
        return None
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool) or not (
        -ndim <= axis < ndim
    ):
        raise CodecConfigError(
            f"{what}: axis must be None (per tensor) or an integer in [{-ndim}, {ndim - 1}] for "
            f"a {ndim}-D array, got axis={axis!r}"
        )
    return int(axis) % ndim


def _per_channel(x: np.ndarray, axis: int | None, ndim: int) -> np.ndarray:
    """``x`` (shape ``()`` or ``(channels,)``) shaped to broadcast against an ``ndim`` array."""
    if axis is None:
        return x
    shape = [1] * ndim
    shape[axis] = -1
    return x.reshape(shape)


def quantize(
    w: np.ndarray, bits: int = 8, scheme: str = "symmetric", *, axis: int | None = None
) -> tuple[np.ndarray, QuantizeReport]:
    """Round-to-nearest integer quantization, per tensor or per channel.

    ``q = clip(round(w / scale) + zero_point)``, computed in float64 with the float32 scale
    that is returned, so :func:`dequantize` reproduces exactly the reported error. Zeros
    (``+0`` and ``-0``, e.g. the slots a 2:4 prune emptied) map exactly to the zero point, and
    every value comes back within half a step (``scale / 2``) of itself.

    Parameters
    ----------
    w
        Finite floating-point weights (any supported float dtype).
    bits
        8 or 4.
    scheme
        ``"symmetric"``: ``scale = max|w| / (2**(bits-1) - 1)``, zero point 0, result int8 or
        int4 (the most negative level, -128 or -8, is not used). ``"asymmetric"``: the range
        ``[min(w, 0), max(w, 0)]`` over ``2**bits - 1`` steps, zero point
        ``round(-min / scale)``, result uint8 or uint4.
    axis
        ``None``: one scale for the tensor. An integer: one scale (and zero point) per index
        along that axis; for a torch ``Linear`` weight of shape (out, in), per output channel
        (per row) is ``axis=0``.

    Returns
    -------
    (q, report)
        ``q`` of shape ``w.shape`` and dtype :data:`QUANT_DTYPES` ``[(bits, scheme)]``, and a
        :class:`QuantizeReport` with the scales, zero points and errors. A channel of zeros
        gets scale 1.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.array([[0.5, -1.0, 0.0, 0.25], [2.0, 0.0, 1.0, -0.5]], dtype=np.float32)
    >>> q, report = quantize(w, 8, "asymmetric", axis=0)
    >>> q
    array([[255,   0, 170, 212],
           [255,  51, 153,   0]], dtype=uint8)
    >>> report.zero_point
    array([170,  51], dtype=int32)
    >>> bool(np.abs(dequantize(q, report.scale, report.zero_point, axis=0) - w).max()
    ...      <= report.scale.max() / 2)
    True
    """
    w = _check_array(w, "quantize")
    if dtype_name(w.dtype).lstrip(">") not in FLOAT_LAYOUTS:
        raise UnsupportedDtypeError(
            f"quantize works on floating-point weights, got dtype {w.dtype}"
        )
    if bits not in (8, 4) or isinstance(bits, bool):
        raise CodecConfigError(f"bits must be 8 or 4, got bits={bits!r}")
    check_choice("scheme", scheme, ("symmetric", "asymmetric"))
    ax = _check_axis(axis, w.ndim, "quantize")
    x = w.astype(np.float64)
    if not np.isfinite(x).all():
        at = int(np.flatnonzero(~np.isfinite(x).reshape(-1))[0])
        raise PatternError(
            f"quantize needs finite weights; w holds {x.reshape(-1)[at]} at flat index {at}"
        )
    reduce = tuple(i for i in range(w.ndim) if i != ax) if ax is not None else None
    channels = w.shape[ax] if ax is not None else None
    if x.size == 0:
        lo = hi = np.zeros(() if channels is None else (channels,))
    else:
        lo = np.minimum(x.min(axis=reduce), 0.0)
        hi = np.maximum(x.max(axis=reduce), 0.0)
    if scheme == "symmetric":
        qmin, qmax = -(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1
        span = np.maximum(-lo, hi) / qmax
    else:
        qmin, qmax = 0, 2**bits - 1
        span = (hi - lo) / qmax
    scale32 = np.where(span > 0, span, 1.0).astype(np.float32)
    scale = scale32.astype(np.float64)
    if scheme == "symmetric":
        zero = np.zeros(scale.shape, np.int32)
    else:
        zero = np.clip(np.rint(-lo / scale), qmin, qmax).astype(np.int32)
    s, z = _per_channel(scale, ax, w.ndim), _per_channel(zero, ax, w.ndim)
    levels = np.clip(np.rint(x / s) + z, qmin, qmax)
    levels[x == 0] = np.broadcast_to(z, x.shape)[x == 0]  # exact, whatever the rounding
    dtype = QUANT_DTYPES[(bits, scheme)]
    q = levels.astype(np.int8 if qmin < 0 else np.uint8).astype(dtype)
    diff = np.abs((levels - z) * s - x)
    norm, err = math.sqrt(_sum_squares(x)), math.sqrt(_sum_squares(diff))
    report = QuantizeReport(
        bits=int(bits),
        scheme=scheme,
        axis=ax,
        dtype=dtype.name,
        scale=scale32,
        zero_point=zero,
        max_abs_error=float(diff.max(initial=0.0)),
        rel_rms_error=err / norm if norm else (0.0 if err == 0 else math.inf),
    )
    return q, report


def dequantize(
    q: np.ndarray,
    scale: np.ndarray | float,
    zero_point: np.ndarray | int = 0,
    *,
    axis: int | None = None,
    dtype: Any = np.float32,
) -> np.ndarray:
    """``(q - zero_point) * scale`` as ``dtype`` (float32 by default): the inverse of
    :func:`quantize`.

    ``q`` is an integer array (int8, uint8, int4, uint4 or any numpy integer dtype);
    ``scale`` and ``zero_point`` are scalars (per tensor) or 1-D arrays of length
    ``q.shape[axis]`` (per channel).

    >>> import numpy as np
    >>> dequantize(np.array([[0, 2], [4, 6]], np.uint8), np.array([0.5, 1.0]), [2, 4], axis=0)
    array([[-1.,  0.],
           [ 0.,  2.]], dtype=float32)
    """
    if not isinstance(q, np.ndarray):
        raise UnsupportedDtypeError(
            f"dequantize expects a numpy.ndarray, got {type(q).__module__}.{type(q).__qualname__}"
        )
    if not (q.dtype.kind in "iu" or q.dtype.name in _INT4_NAMES):
        raise UnsupportedDtypeError(f"dequantize expects an integer array, got dtype {q.dtype}")
    ax = _check_axis(axis, q.ndim, "dequantize")
    want: tuple[int, ...] = () if ax is None else (q.shape[ax],)
    parts = []
    for name, value in (("scale", scale), ("zero_point", zero_point)):
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim == 1 and ax is None and arr.size == 1:
            arr = arr.reshape(())
        if arr.shape not in (want, ()):
            raise ShapeError(
                f"dequantize: {name} has shape {arr.shape}, expected {want or '()'} "
                f"(one per index along axis={axis} of q's shape {q.shape}) or a scalar"
            )
        parts.append(_per_channel(arr, ax, q.ndim) if arr.shape else arr)
    s, z = parts
    return ((q.astype(np.float64) - z) * s).astype(dtype)


# -- packed int4 ------------------------------------------------------------------------------


def pack_int4(q: np.ndarray) -> np.ndarray:
    """Pack an int4 or uint4 array two values per byte along its last axis.

    Element ``2i`` of the last axis goes to the low nibble of byte ``i``, element ``2i+1`` to
    the high nibble (the order of torch's ``uint4x2``, ONNX ``INT4`` and sparsecodecs frames);
    the result is uint8 with the last axis halved. GPTQ/AWQ checkpoints pack 8 values into an
    int32 along varying axes and orders: view such a tensor as uint8 bytes in its own order
    first.

    >>> import ml_dtypes, numpy as np
    >>> pack_int4(np.array([[1, -1, 7, -8]], dtype=ml_dtypes.int4))
    array([[241, 135]], dtype=uint8)
    """
    if not isinstance(q, np.ndarray) or q.dtype.name not in _INT4_NAMES:
        got = q.dtype if isinstance(q, np.ndarray) else type(q).__qualname__
        raise UnsupportedDtypeError(f"pack_int4 expects an int4 or uint4 array, got {got}")
    if q.ndim == 0 or q.shape[-1] % 2:
        raise ShapeError(
            f"pack_int4 packs pairs along the last axis, which must have an even length; got "
            f"shape {q.shape}: pad the last axis with one zero first"
        )
    nib = np.ascontiguousarray(q).view(np.uint8) & np.uint8(0x0F)
    return (nib[..., 0::2] | (nib[..., 1::2] << 4)).astype(np.uint8)


def unpack_int4(packed: np.ndarray, dtype: Any = "int4") -> np.ndarray:
    """Inverse of :func:`pack_int4`: uint8 bytes to ``dtype`` (``"int4"`` or ``"uint4"``, or
    the ml_dtypes types) with the last axis doubled.

    >>> unpack_int4(np.array([[241, 135]], np.uint8))
    array([[1, -1, 7, -8]], dtype=int4)
    """
    if not isinstance(packed, np.ndarray) or packed.dtype != np.uint8:
        got = packed.dtype if isinstance(packed, np.ndarray) else type(packed).__qualname__
        raise UnsupportedDtypeError(f"unpack_int4 expects a uint8 array, got {got}")
    try:
        dt = np.dtype(ml_dtypes.int4 if dtype == "int4" else ml_dtypes.uint4
                      if dtype == "uint4" else dtype)
    except TypeError as exc:
        raise UnsupportedDtypeError(f"unpack_int4: dtype must be int4 or uint4, got {dtype!r}"
                                    ) from exc
    if dt.name not in _INT4_NAMES:
        raise UnsupportedDtypeError(f"unpack_int4: dtype must be int4 or uint4, got {dtype!r}")
    if packed.ndim == 0:
        raise ShapeError("unpack_int4 needs an array with at least one axis, got a 0-D array")
    out = np.empty((*packed.shape[:-1], 2 * packed.shape[-1]), np.uint8)
    out[..., 0::2] = packed & np.uint8(0x0F)
    out[..., 1::2] = packed >> 4
    return out.view(dt)
