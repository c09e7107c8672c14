"""The lossy transforms: prune (N:M, unstructured) and cluster (k-means on the non-zeros)."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sparsecodecs import CodecConfigError, UnsupportedDtypeError
from sparsecodecs.registry import as_bits
from sparsecodecs.testing import examples
from sparsecodecs.transforms import ClusterReport, PruneReport, cluster, parse_pattern, prune

FLOATS = [np.dtype(ml_dtypes.bfloat16), np.dtype(np.float16), np.dtype(np.float32),
          np.dtype(np.float64)]


def weights(shape: tuple[int, ...], dtype: object = np.float32, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * 0.02).astype(dtype)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(as_bits(a)[0],
                                                                        as_bits(b)[0])


def expected_errors(before: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    a, b = before.astype(np.float64), after.astype(np.float64)
    diff = np.abs(a - b)
    return float(diff.max(initial=0.0)), float(np.sqrt((diff**2).sum() / (a**2).sum()))


def check_nm(before: np.ndarray, after: np.ndarray, n: int, m: int, axis: int) -> None:
    """``after`` is N:M along ``axis`` and kept exactly the n largest magnitudes of each group."""
    x = np.moveaxis(before, axis, -1).astype(np.float64)
    y = np.moveaxis(after, axis, -1).astype(np.float64)
    length = x.shape[-1]
    for start in range(0, length, m):
        gx, gy = x[..., start : start + m], y[..., start : start + m]
        kept = gy != 0
        assert (kept.sum(axis=-1) <= n).all()
        assert np.array_equal(gy[kept], gx[kept])  # kept values unchanged
        mag = np.abs(gx)
        min_kept = np.where(kept, mag, np.inf).min(axis=-1)
        max_dropped = np.where(kept, -np.inf, mag).max(axis=-1)
        # every group keeps min(n, width) elements unless it has fewer non-zeros
        width = gx.shape[-1]
        full = (gx != 0).sum(axis=-1) >= min(n, width)
        assert (kept.sum(axis=-1)[full] == min(n, width)).all()
        assert (min_kept >= max_dropped).all()


# -- prune: N:M -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize(("pattern", "n", "m"), [("2:4", 2, 4), ((1, 4), 1, 4), ("4:8", 4, 8),
                                                 ("2:3", 2, 3)])
def test_nm_keeps_largest_magnitudes_along_last_axis(dtype, pattern, n, m):
    w = weights((24, 40), dtype)
    out, report = prune(w, pattern)
    assert out.dtype == w.dtype and out.shape == w.shape
    check_nm(w, out, n, m, -1)
    assert report.pattern == f"{n}:{m}" and report.axis == 1


@pytest.mark.parametrize("axis", [0, 1, -1, -2, 2])
def test_nm_along_any_axis(axis):
    w = weights((8, 12, 16))
    out, report = prune(w, "2:4", axis=axis)
    check_nm(w, out, 2, 4, axis)
    assert report.axis == axis % 3


def test_nm_torch_linear_weight_along_input_dimension():
    """A torch Linear weight is (out, in); sparse tensor cores want 2:4 along `in` (axis -1)."""
    w = weights((6, 16))
    out, _ = prune(w, "2:4")
    groups = (out != 0).reshape(6, 4, 4).sum(axis=-1)
    assert (groups == 2).all()


def test_nm_short_last_group():
    w = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]], np.float32)  # groups [1,2,3,4] [5,6]
    out, report = prune(w, "2:4")
    assert out.tolist() == [[0, 0, 3, 4, 5, 6]]
    assert report.zeroed == 2
    out, _ = prune(np.array([[1.0, 2.0, 3.0, 4.0, 5.0]], np.float32), "2:4")
    assert out.tolist() == [[0, 0, 3, 4, 5]]


def test_nm_ties_go_to_the_lowest_position():
    out, _ = prune(np.array([[1.0, -1.0, 1.0, 1.0]], np.float32), "2:4")
    assert out.tolist() == [[1.0, -1.0, 0.0, 0.0]]


def test_nm_keeps_nan_and_drops_negative_zero():
    w = np.array([[np.nan, 0.5, -0.0, 1.0], [-0.0, -0.0, -0.0, 2.0]], np.float32)
    out, report = prune(w, "2:4")
    assert np.isnan(out[0, 0]) and out[0, 3] == 1.0 and out[0, 1] == 0
    # at most n non-zero *bit patterns* per group: what the nm codec needs
    assert ((as_bits(out)[0] != 0).reshape(-1, 4).sum(axis=1) <= 2).all()
    assert report.zeroed == 1  # only 0.5 was a non-zero value


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.uint16])
def test_nm_integers(dtype):
    w = np.arange(-8, 8).astype(dtype).reshape(2, 8)
    out, _ = prune(w, "2:4")
    assert out.dtype == dtype
    check_nm(w, out, 2, 4, -1)


@settings(max_examples=examples(50), deadline=None)
@given(
    hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=9),
               elements=st.floats(-4, 4, width=32)),
    st.sampled_from([(1, 2), (2, 4), (3, 8), (2, 5)]),
    st.integers(-3, 2),
)
def test_nm_property(w, nm, axis):
    axis = axis % w.ndim
    out, report = prune(w, nm, axis=axis)
    check_nm(w, out, nm[0], nm[1], axis)
    assert report.zeroed == int(np.count_nonzero(w)) - int(np.count_nonzero(out))


def test_nm_pass_through_is_bit_exact():
    w = weights((16, 32))
    once, _ = prune(w, "2:4")
    twice, report = prune(once, "2:4")
    assert same_bits(once, twice)
    assert twice is not once
    assert (report.zeroed, report.max_abs_error, report.rel_rms_error) == (0, 0.0, 0.0)
    assert report.density == 0.5


def test_prune_big_endian_input():
    w = weights((4, 8)).astype(">f4")
    out, _ = prune(w, "2:4")
    assert out.dtype == np.dtype(">f4")
    assert np.array_equal(out, prune(w.astype("<f4"), "2:4")[0])


def test_prune_does_not_modify_input():
    w = weights((8, 8))
    copy = w.copy()
    prune(w, "2:4")
    prune(w, None, density=0.3)
    assert same_bits(w, copy)


# -- prune: unstructured ----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("density", [0.0, 0.1, 0.5, 0.77, 1.0])
def test_unstructured_density_reached_with_largest_kept(dtype, density):
    w = weights((37, 23), dtype, seed=3)
    out, report = prune(w, None, density=density)
    kept = out != 0
    assert int(kept.sum()) == round(density * w.size)
    assert report.density == kept.sum() / w.size
    mag = np.abs(w.astype(np.float64))
    if 0 < kept.sum() < w.size:
        assert mag[kept].min() >= mag[~kept].max()
    assert np.array_equal(out[kept].astype(np.float64), w[kept].astype(np.float64))
    assert report.pattern == "unstructured" and report.axis is None


def test_unstructured_ties_in_c_order():
    w = np.ones((2, 3), np.float32)
    out, _ = prune(w, None, density=0.5)
    assert out.tolist() == [[1, 1, 1], [0, 0, 0]]


def test_unstructured_already_sparse_input():
    w = np.zeros((10, 10), np.float32)
    w[0, :3] = [1, 2, 3]
    out, report = prune(w, None, density=0.5)
    assert same_bits(out, w)
    assert report.zeroed == 0 and report.density == 0.03


@pytest.mark.parametrize("pattern", ["2:4", None])
def test_prune_report_matches_recomputation(pattern):
    w = weights((32, 64), seed=5)
    out, report = prune(w, pattern, density=None if pattern else 0.4)
    max_err, rel = expected_errors(w, out)
    assert isinstance(report, PruneReport)
    assert report.max_abs_error == pytest.approx(max_err, rel=1e-12)
    assert report.rel_rms_error == pytest.approx(rel, rel=1e-9)
    assert report.zeroed == int(np.count_nonzero(w) - np.count_nonzero(out))
    assert report.zeroed_fraction == report.zeroed / w.size
    assert report.size == w.size
    assert report.density == np.count_nonzero(out) / w.size


def test_prune_empty_and_scalar():
    out, report = prune(np.zeros((0, 4), np.float32), "2:4")
    assert out.shape == (0, 4) and report.zeroed == 0 and report.density == 0.0
    out, _ = prune(np.full((), 3.0, np.float32), None, density=0.0)
    assert out.shape == () and out == 0


# -- prune: structured (rows, blocks) --------------------------------------------------------


def check_blocks(before: np.ndarray, after: np.ndarray, bh: int, bw: int, keep: int) -> None:
    """``after`` keeps exactly ``keep`` whole blocks of ``before`` (bit for bit), those with the
    largest sums of squares, and zeroes the others."""
    rows, cols = (math.prod(before.shape[:-1]), before.shape[-1]) if before.ndim else (1, 1)
    x = before.astype(np.float64).reshape(rows, cols)
    y = after.astype(np.float64).reshape(rows, cols)
    kept, scores = [], []
    for r in range(0, rows, bh):
        for c in range(0, cols, bw):
            bx, by = x[r : r + bh, c : c + bw], y[r : r + bh, c : c + bw]
            whole = np.array_equal(as_bits(np.ascontiguousarray(bx))[0],
                                   as_bits(np.ascontiguousarray(by))[0])
            assert whole or not by.any(), "a block was changed but not removed"
            kept.append(whole and by.any())
            scores.append(float((bx**2).sum()))
    assert sum(kept) == min(keep, sum(s > 0 for s in scores))
    # every removed block with values scores at most as high as any kept block
    kept_scores = [s for s, k in zip(scores, kept, strict=True) if k]
    removed = [s for s, k in zip(scores, kept, strict=True) if not k and s > 0]
    if kept_scores and removed:
        assert max(removed) <= min(kept_scores)


@pytest.mark.parametrize("dtype", [*FLOATS, np.dtype(np.int8)], ids=str)
def test_rows_keeps_the_largest_rows(dtype):
    w = weights((10, 7), np.float32, seed=20)
    w[3] *= 100  # the largest row
    w[5] = 0  # an empty row goes first
    w = w.astype(dtype) if dtype.kind == "f" else (w * 1000).astype(dtype)
    out, report = prune(w, "rows", density=0.3)
    assert out.dtype == w.dtype and out.shape == w.shape
    kept = np.flatnonzero(np.abs(out.astype(np.float64)).sum(axis=1))
    assert kept.size == 3 and 3 in kept and 5 not in kept
    norms = (w.astype(np.float64) ** 2).sum(axis=1)
    assert norms[kept].min() >= np.delete(norms, kept).max()
    for r in kept:  # kept rows are bit for bit the input
        assert same_bits(out[r], w[r])
    assert report.pattern == "rows" and report.axis is None
    assert report.block == (1, 7) and report.blocks_removed == 7 and report.blocks_total == 10
    assert report.density == np.count_nonzero(out) / w.size


def test_rows_of_a_higher_rank_array_are_rows_of_its_2d_view():
    w = weights((2, 3, 8), seed=21)
    out, report = prune(w, "rows", density=0.5)
    check_blocks(w, out, 1, 8, 3)
    assert report.blocks_total == 6 and report.blocks_removed == 3


@pytest.mark.parametrize(("shape", "block"), [((8, 8), (2, 2)), ((10, 13), (4, 4)),
                                               ((3, 16), (1, 8)), ((9, 5), (9, 1))])
@pytest.mark.parametrize("density", [0.0, 0.25, 0.5, 1.0])
def test_blocks_keep_the_largest_blocks(shape, block, density):
    w = weights(shape, seed=22)
    out, report = prune(w, "blocks", density=density, block=block)
    total = -(-shape[0] // block[0]) * -(-shape[1] // block[1])
    keep = round(density * total)
    check_blocks(w, out, *block, keep)
    assert report.block == block and report.blocks_total == total
    assert report.blocks_removed == total - keep
    max_err, rel = expected_errors(w, out)
    assert report.max_abs_error == pytest.approx(max_err, rel=1e-12)
    assert report.rel_rms_error == pytest.approx(rel, rel=1e-9)
    assert report.zeroed == int(np.count_nonzero(w) - np.count_nonzero(out))


def test_blocks_remove_the_least_squared_error():
    # the greedy choice by sum of squares is optimal: compare with every choice of 2 of 4 blocks
    w = weights((4, 4), seed=23)
    out, _ = prune(w, "blocks", density=0.5, block=(2, 2))
    err = float(((w - out).astype(np.float64) ** 2).sum())
    blocks = [w[r : r + 2, c : c + 2] for r in (0, 2) for c in (0, 2)]
    sq = sorted(float((b.astype(np.float64) ** 2).sum()) for b in blocks)
    assert err == pytest.approx(sq[0] + sq[1])


def test_structured_ties_nan_and_determinism():
    w = np.ones((4, 4), np.float32)
    out, _ = prune(w, "rows", density=0.5)  # all rows equal: the lowest indices are kept
    assert out[:2].all() and not out[2:].any()
    w[3, 0] = np.nan  # NaN counts as infinitely large: its row is always kept
    out, _ = prune(w, "rows", density=0.25)
    assert np.isnan(out[3, 0]) and not out[:3].any()
    w = weights((32, 32), seed=24)
    a, ra = prune(w, "blocks", density=0.4, block=(4, 8))
    b, rb = prune(w, "blocks", density=0.4, block=(4, 8))
    assert same_bits(a, b) and ra == rb


def test_structured_edge_shapes():
    out, report = prune(np.zeros((0, 4), np.float32), "rows", density=0.5)
    assert out.shape == (0, 4) and report.blocks_total == 0
    out, report = prune(np.zeros((3, 0), np.float32), "blocks", density=0.5, block=(2, 2))
    assert out.shape == (3, 0) and report.blocks_total == 0
    out, report = prune(np.full((), 2.0, np.float32), "rows", density=0.0)
    assert out.shape == () and out == 0 and report.blocks_removed == 1
    out, _ = prune(np.arange(1, 6, dtype=np.float32), "blocks", density=0.5, block=(1, 2))
    np.testing.assert_array_equal(out, [0, 0, 3, 4, 5])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pattern": "rows"}, "pattern='rows' needs density= in [0, 1]"),
        ({"pattern": "rows", "density": 2}, "density=2"),
        ({"pattern": "rows", "density": 0.5, "axis": 0}, "axis= is for N:M pruning"),
        ({"pattern": "rows", "density": 0.5, "block": (2, 2)}, "block= is for pattern='blocks'"),
        ({"pattern": "blocks", "density": 0.5}, "needs block=(rows, columns)"),
        ({"pattern": "blocks", "density": 0.5, "block": (2,)}, "block must be a (rows, columns)"),
        ({"pattern": "blocks", "density": 0.5, "block": (0, 2)}, "block rows must be in [1, inf]"),
        ({"pattern": "2:4", "block": (2, 2)}, "block= is for pattern='blocks'"),
        ({"pattern": "columns", "density": 0.5}, "pattern must look like 'n:m'"),
    ],
)
def test_structured_config_errors(kwargs, message):
    with pytest.raises(CodecConfigError) as info:
        prune(weights((4, 8)), **kwargs)
    assert message in str(info.value)


# -- prune: errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pattern": "2-4"}, "n:m"),
        ({"pattern": "a:b"}, "n:m"),
        ({"pattern": "4:4"}, "1 <= n < m, got n=4, m=4"),
        ({"pattern": "0:4"}, "1 <= n < m"),
        ({"pattern": (2, 4, 8)}, "pattern must be"),
        ({"pattern": 24}, "pattern must be"),
        ({"pattern": "2:4", "density": 0.5}, "pass pattern=None"),
        ({"pattern": None}, "needs density= in [0, 1]"),
        ({"pattern": None, "density": 1.5}, "density=1.5"),
        ({"pattern": None, "density": True}, "density=True"),
        ({"pattern": "2:4", "axis": 2}, "axis must be an integer in [-2, 1]"),
        ({"pattern": "2:4", "axis": 1.0}, "axis must be"),
    ],
)
def test_prune_config_errors(kwargs, message):
    with pytest.raises(CodecConfigError) as info:
        prune(weights((4, 8)), **kwargs)
    assert message in str(info.value)


def test_prune_scalar_nm_error():
    with pytest.raises(CodecConfigError, match="at least one axis"):
        prune(np.ones((), np.float32), "2:4")


@pytest.mark.parametrize("bad", [[1.0, 2.0], np.ones(4, np.complex64), np.ones(4, bool)])
def test_prune_unsupported_input(bad):
    with pytest.raises(UnsupportedDtypeError):
        prune(bad, "2:4")  # type: ignore[arg-type]


def test_parse_pattern():
    assert parse_pattern("2:4") == (2, 4)
    assert parse_pattern([1, 2]) == (1, 2)
    assert parse_pattern(None) is None


# -- cluster ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("k", [1, 2, 16])
def test_cluster_distinct_at_most_k_and_zeros_kept(dtype, k):
    w, _ = prune(weights((64, 96), dtype, seed=1), "2:4")
    w[0, :4] = np.array([-0.0, 0.0, 0.0, -0.0], dtype=np.float32).astype(dtype)
    out, report = cluster(w, k)
    assert out.dtype == w.dtype and out.shape == w.shape
    zeros = w.astype(np.float64) == 0
    assert np.array_equal(as_bits(out)[0][zeros], as_bits(w)[0][zeros])  # bit-exact, -0 too
    assert not (out.astype(np.float64)[~zeros] == 0).any()
    distinct = np.unique(out.astype(np.float64)[~zeros])
    assert distinct.size <= k
    assert report.distinct == distinct.size
    assert report.clustered == int((~zeros).sum())


def test_cluster_values_go_to_the_nearest_centroid():
    w = weights((50, 40), np.float64, seed=2)
    out, _ = cluster(w, 8)
    centroids = np.unique(out)
    nearest = centroids[np.abs(w[..., None] - centroids).argmin(axis=-1)]
    assert np.allclose(np.abs(out - w), np.abs(nearest - w), rtol=0, atol=1e-15)


def test_cluster_per_row():
    w = weights((12, 200), seed=4)
    out, report = cluster(w, 4, per_row=True)
    for row in out:
        assert np.unique(row).size <= 4
    assert report.per_row and report.distinct > 4
    assert report.distinct == np.unique(out).size


def test_cluster_is_deterministic_for_a_seed():
    w = weights((40, 64), ml_dtypes.bfloat16, seed=7)
    for per_row in (False, True):
        a, ra = cluster(w, 16, seed=3, per_row=per_row)
        b, rb = cluster(w, 16, seed=3, per_row=per_row)
        assert same_bits(a, b) and ra == rb


def test_cluster_pass_through_when_few_values():
    w = np.array([[0.5, 0.0, -0.25, 0.5], [1.0, -0.0, 0.5, 0.0]], np.float32)
    out, report = cluster(w, 3)
    assert same_bits(out, w)
    assert (report.clustered, report.distinct, report.max_abs_error) == (0, 3, 0.0)
    # per row: the first row has 2 distinct values (left alone), the second 2 as well
    out, report = cluster(w, 2, per_row=True)
    assert same_bits(out, w) and report.clustered == 0


def test_cluster_only_rows_with_too_many_values_change():
    w = weights((3, 64), seed=9)
    w[1] = 0
    w[1, :2] = [0.25, -0.5]
    out, _ = cluster(w, 4, per_row=True)
    assert same_bits(out[1], w[1])
    assert not same_bits(out[0], w[0])


def test_cluster_keeps_non_finite_values():
    w = weights((10, 10))
    w[0, :3] = [np.nan, np.inf, -np.inf]
    out, report = cluster(w, 4)
    assert np.isnan(out[0, 0]) and out[0, 1] == np.inf and out[0, 2] == -np.inf
    assert math.isfinite(report.max_abs_error)


def test_cluster_report_matches_recomputation():
    w, _ = prune(weights((48, 64), seed=11), None, density=0.5)
    out, report = cluster(w, 16)
    max_err, rel = expected_errors(w, out)
    assert isinstance(report, ClusterReport)
    assert report.max_abs_error == pytest.approx(max_err, rel=1e-12)
    assert report.rel_rms_error == pytest.approx(rel, rel=1e-9)
    assert report.k == 16 and report.iterations >= 1
    assert 0 < report.rel_rms_error < 0.2


def test_cluster_quality_close_to_optimal_for_well_separated_values():
    rng = np.random.default_rng(0)
    centers = np.array([-3.0, -1.0, 1.0, 3.0])
    w = (centers[rng.integers(0, 4, 4000)] + rng.normal(0, 0.01, 4000)).astype(np.float32)
    out, _ = cluster(w, 4)
    assert np.allclose(np.sort(np.unique(out)), centers, atol=0.01)


def test_cluster_empty_and_all_zero():
    for w in (np.zeros((0, 3), np.float32), np.zeros((4, 4), np.float16)):
        out, report = cluster(w, 2)
        assert same_bits(out, w) and report.distinct == 0


def test_cluster_big_endian():
    w = weights((8, 8)).astype(">f4")
    out, _ = cluster(w, 4)
    assert out.dtype == np.dtype(">f4")
    assert np.array_equal(out, cluster(w.astype("<f4"), 4)[0])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"k": 0}, CodecConfigError, "k must be in [1, 65536], got k=0"),
        ({"k": 1 << 17}, CodecConfigError, "k must be in"),
        ({"k": 2.5}, CodecConfigError, "k must be an integer"),
        ({"k": 4, "seed": -1}, CodecConfigError, "seed"),
        ({"k": 4, "per_row": "yes"}, CodecConfigError, "per_row"),
    ],
)
def test_cluster_config_errors(kwargs, error, message):
    with pytest.raises(error) as info:
        cluster(weights((4, 4)), **kwargs)
    assert message in str(info.value)


def test_cluster_refuses_integers():
    with pytest.raises(UnsupportedDtypeError, match="floating-point"):
        cluster(np.arange(8, dtype=np.int8), 2)
    with pytest.raises(UnsupportedDtypeError):
        cluster([1.0, 2.0], 2)  # type: ignore[arg-type]


def test_reports_leave_no_blas_threads_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The transforms' error reports sum squares on the calling thread, not through BLAS (whose
    dot hands a long vector to worker threads that then spin on the other cores for ~0.1 s
    after it returns): numpy's BLAS entry points are made to fail, and every transform still
    reports the same error as a recomputation."""
    from sparsecodecs.transforms import quantize

    def no_blas(*args: object, **kwargs: object) -> None:
        raise AssertionError("a transform called BLAS")

    for name in ("dot", "vdot", "inner", "matmul"):
        monkeypatch.setattr(np, name, no_blas)
    w = weights((64, 4096))  # long enough for BLAS to have used its threads
    pruned, rep = prune(w, "2:4")
    assert rep.rel_rms_error == pytest.approx(expected_errors(w, pruned)[1], rel=1e-9)
    clustered, crep = cluster(w, 16)
    assert crep.rel_rms_error == pytest.approx(expected_errors(w, clustered)[1], rel=1e-9)
    _, qrep = quantize(w, bits=8)
    assert 0 < qrep.rel_rms_error < 0.03
