"""Each compiled kernel of ``codecs/_kernels.py`` (``kernels/layout.c``) against a plain-numpy
reference written here: bitmask_scatter and bitmask_split (at every SIMD level), nm_scatter,
nm_compose, nm24_compose, nm_split, csr_dense, csr_split; then each SIMD path against its
scalar twin.

The codecs validate frames first, so every input drawn here is valid (masks without padding
bits, codes below C(m, n), monotone ``indptr``, indices in range), except where a test checks
that a kernel refuses bad input. Outputs start filled with a non-zero pattern, so a kernel that
skips an element fails, and are followed by guard elements, so a kernel that writes past the
end fails too.
"""

from __future__ import annotations

import itertools
import sys
from itertools import combinations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sparsecodecs.codecs import _kernels as kernels
from sparsecodecs.codecs.nm import nm_tables
from sparsecodecs.kernels import LEVELS as ALL_LEVELS
from sparsecodecs.kernels import _native, cpu_simd, use_simd
from sparsecodecs.registry import FrameLayoutError
from sparsecodecs.testing import examples

UINTS = [np.dtype(t) for t in (np.uint8, np.uint16, np.uint32, np.uint64)]
#: The (n, m) the nm codec supports that tests exercise; compose needs m a power of two.
NM_PAIRS = [(1, 2), (1, 4), (2, 4), (2, 8), (4, 8), (3, 5), (8, 16)]
#: (indptr, indices) dtype pairs: the narrowest and a wide one (each a C variant).
CSR_INDEX_DTYPES = [(UINTS[0], UINTS[0]), (UINTS[2], UINTS[1])]
POW2_PAIRS = [(n, m) for n, m in NM_PAIRS if m & (m - 1) == 0]
SETTINGS = settings(max_examples=examples(25), deadline=None)
little_endian_only = pytest.mark.skipif(
    sys.byteorder != "little", reason="the compose kernels assume little-endian words"
)


GUARD = 8
#: The SIMD levels this CPU has, scalar first.
LEVELS = [name for name in ALL_LEVELS if ALL_LEVELS[name] <= ALL_LEVELS[cpu_simd()]]


def garbage(size: int, dtype: np.dtype) -> np.ndarray:
    """An output buffer full of a non-zero pattern, followed by GUARD more (see assert_same)."""
    buf = np.full((size + GUARD) * dtype.itemsize, 0xA5, np.uint8).view(dtype)
    return buf[:size]


def assert_guard_intact(out: np.ndarray) -> None:
    """The GUARD elements after ``out`` (made by :func:`garbage`) still hold the pattern."""
    whole = np.frombuffer(out.base, np.uint8)
    assert (whole[out.nbytes :] == 0xA5).all(), "the kernel wrote past the end of its output"


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert_guard_intact(got)
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


# -- references ------------------------------------------------------------------------------


def positions_table(n: int, m: int) -> np.ndarray:
    """Kept positions of every pattern code, lexicographic order (independent of nm.py)."""
    return np.array(list(combinations(range(m), n)), np.uint8).reshape(-1, n)


def ref_bitmask(keep: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.zeros(keep.size, values.dtype)
    out[keep] = values
    return out


def ref_nm(codes: np.ndarray, n: int, m: int, values: np.ndarray, rows: int, cols: int):
    """Dense (rows * cols) bit patterns: group g holds its n values at its code's positions."""
    gpr = -(-cols // m)
    groups = np.zeros((rows * gpr, m), values.dtype)
    where = positions_table(n, m)[codes].astype(np.intp)
    np.put_along_axis(groups, where, values.reshape(-1, n), axis=1)
    return groups.reshape(rows, gpr * m)[:, :cols].reshape(-1)


def ref_split(x: np.ndarray, n: int, m: int) -> tuple[int, list[int], list[int]]:
    """(first group with more than n non-zeros or -1, codes, kept values) of a 2-D array.

    A group keeps its non-zeros plus its lowest zero positions (padding counts as zeros)."""
    rows, cols = x.shape
    gpr = -(-cols // m)
    padded = np.zeros((rows, gpr * m), x.dtype)
    padded[:, :cols] = x
    code_of = {combo: c for c, combo in enumerate(combinations(range(m), n))}
    codes: list[int] = []
    values: list[int] = []
    for g, group in enumerate(padded.reshape(-1, m)):
        nonzero = np.flatnonzero(group).tolist()
        if len(nonzero) > n:
            return g, codes, values
        zeros = [p for p in range(m) if p not in nonzero][: n - len(nonzero)]
        kept = sorted(nonzero + zeros)
        codes.append(code_of[tuple(kept)])
        values.extend(group[kept].tolist())
    return -1, codes, values


def ref_csr(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, rows: int, cols: int):
    out = np.zeros((rows, cols), data.dtype)
    row_of = np.repeat(np.arange(rows), np.diff(indptr.astype(np.int64)))
    out[row_of, indices.astype(np.intp)] = data
    return out.reshape(-1)


def byte_packing(ncodes: int) -> tuple[np.ndarray, int]:
    """(lut, k): k base-``ncodes`` digits per byte, lut[b, j] the j-th digit of byte b."""
    k = 0
    while ncodes ** (k + 1) <= 256:
        k += 1
    b = np.arange(256)
    lut = np.stack([(b // ncodes**j) % ncodes for j in range(k)], axis=1)
    return lut.astype(np.uint16), k


def pack_bytes(codes: np.ndarray, ncodes: int, k: int) -> np.ndarray:
    padded = np.zeros(-(-codes.size // k) * k, np.int64)
    padded[: codes.size] = codes
    weights = ncodes ** np.arange(k)
    return (padded.reshape(-1, k) * weights).sum(axis=1).astype(np.uint8)


def code_inputs(codes: np.ndarray, ncodes: int, packed: bool) -> tuple[np.ndarray, np.ndarray]:
    """(packed, lut) as a kernel reads them: byte-packed digits, or one uint16 code per group."""
    if packed:
        lut, k = byte_packing(ncodes)
        return pack_bytes(codes, ncodes, k), lut
    return codes.astype(np.uint16), np.arange(ncodes, dtype=np.uint16).reshape(-1, 1)


def compose_tables(n: int, m: int, itemsize: int) -> tuple[np.ndarray, np.ndarray]:
    bit = positions_table(n, m).astype(np.int64) * itemsize * 8
    return bit // 64, (bit % 64).astype(np.uint64)


# -- checks shared by the drawn and the hand-picked cases --------------------------------------


def check_bitmask(keep: np.ndarray, values: np.ndarray) -> None:
    """bitmask_scatter (decode) of ``keep`` and ``values``, and bitmask_split (encode) of the
    dense result, at every SIMD level this CPU has (each SIMD path against the reference, and
    so against its scalar twin)."""
    mask = np.packbits(keep, bitorder="little")
    dense = ref_bitmask(keep, values)
    nonzero = dense != 0
    for level in LEVELS:
        with use_simd(level):
            out = garbage(keep.size, values.dtype)
            kernels.bitmask_scatter(mask, values, out)
            assert_same(out, dense)

            split_mask = garbage(mask.size, mask.dtype)
            kept = garbage(int(nonzero.sum()) + 8, dense.dtype)  # 8 spare slots: it writes ahead
            assert kernels.bitmask_split(dense, split_mask, kept) == int(nonzero.sum())
            assert_same(split_mask, np.packbits(nonzero, bitorder="little"))
            assert_guard_intact(kept)
            assert kept[: int(nonzero.sum())].tolist() == dense[nonzero].tolist()


def check_nm_scatter(
    n: int, m: int, rows: int, cols: int, codes: np.ndarray, values: np.ndarray, packed: bool
) -> None:
    ncodes = positions_table(n, m).shape[0]
    words, lut = code_inputs(codes, ncodes, packed)
    out = garbage(rows * cols, values.dtype)
    rc = kernels.nm_scatter(words, lut, positions_table(n, m), values, out, rows, cols, m)
    # A kept slot in the zero padding of a row's last group must hold zero, else the frame is
    # corrupt and the kernel says so.
    gpr, full = -(-cols // m), cols // m
    slots = positions_table(n, m)[codes.astype(np.int64)].reshape(rows, gpr, n) if rows else None
    padded = slots is not None and gpr > full and bool(
        (values.reshape(rows, gpr, n)[:, full, :][full * m + slots[:, full, :] >= cols] != 0).any()
    )
    assert rc == (-1 if padded else 0)
    if not padded:
        assert_same(out, ref_nm(codes, n, m, values, rows, cols))


def compose_out(m: int, ngroups: int, dtype: np.dtype) -> np.ndarray:
    word = np.dtype(f"u{min(m * dtype.itemsize, 8)}")
    return garbage(ngroups * m * dtype.itemsize // word.itemsize, word)


def check_nm_compose(n: int, m: int, codes: np.ndarray, values: np.ndarray, packed: bool) -> None:
    ngroups = codes.size
    ncodes = positions_table(n, m).shape[0]
    words, lut = code_inputs(codes, ncodes, packed)
    word_of, shifts = compose_tables(n, m, values.dtype.itemsize)
    out = compose_out(m, ngroups, values.dtype)
    kernels.nm_compose(words, lut, ngroups, word_of, shifts, values, out)
    assert_same(out.view(values.dtype), ref_nm(codes, n, m, values, ngroups, m))


def check_nm24(codes: np.ndarray, values: np.ndarray) -> None:
    ngroups = codes.size
    words, lut = code_inputs(codes, 6, packed=True)
    assert lut.shape[1] == 3
    out = compose_out(4, ngroups, values.dtype)
    assert out.size == ngroups
    kernels.nm24_compose(
        words, lut, ngroups, compose_tables(2, 4, values.dtype.itemsize)[1], values, out
    )
    assert_same(out.view(values.dtype), ref_nm(codes, 2, 4, values, ngroups, 4))


def check_nm_split(x: np.ndarray, n: int, m: int) -> None:
    rows, cols = x.shape
    ngroups = rows * -(-cols // m)
    tables = nm_tables(n, m)
    codes = garbage(ngroups, np.dtype(np.uint16))
    values = garbage(ngroups * n, x.dtype)
    bad = kernels.nm_split(
        x.reshape(-1), rows, cols, m, tables.code_of_mask, tables.positions, codes, values
    )
    want_bad, want_codes, want_values = ref_split(x, n, m)
    assert bad == want_bad
    assert_guard_intact(codes)
    assert_guard_intact(values)
    if bad < 0:  # on failure the outputs are incomplete by contract
        assert codes.tolist() == want_codes
        assert values.tolist() == want_values


def check_csr(
    keep: np.ndarray, data: np.ndarray, indptr_dtype: np.dtype, indices_dtype: np.dtype
) -> None:
    """csr_dense of ``keep``'s CSR (rows as the major axis) and of its CSC (columns: the
    transposed writes), trusting the indices and checking them, against the reference; and
    csr_split of the dense array gives those CSR and CSC arrays back."""
    rows, cols = keep.shape
    want = ref_csr(*csr_of(keep, data, indptr_dtype, indices_dtype), rows, cols)
    for by_columns in (False, True):
        major, minor = (cols, rows) if by_columns else (rows, cols)
        order = keep.T if by_columns else keep
        vals = np.zeros(keep.shape, data.dtype)
        vals[keep] = data
        kept = vals.T[order] if by_columns else data
        indptr, indices = csr_of(order, kept, indptr_dtype, indices_dtype)[:2]
        for check in (False, True):
            out = garbage(rows * cols, data.dtype)
            out[:] = 0  # csr_dense writes onto zeros
            assert kernels.csr_dense(indptr, indices, kept, out, major, minor, by_columns, check)
            assert_same(out, want)
        # csr_split keeps the non-zeros (a drawn value may be 0)
        grid = vals.T if by_columns else vals
        nz_ptr, nz_idx, nz = csr_of(grid != 0, grid[grid != 0], indptr_dtype, indices_dtype)
        got = (np.empty(nz.size + 1, data.dtype), np.empty(nz.size + 1, indices_dtype),
               np.empty(major + 1, indptr_dtype))
        assert kernels.csr_split(vals.reshape(-1), rows, cols, by_columns, None, *got) == nz.size
        np.testing.assert_array_equal(got[0][: nz.size], nz)
        np.testing.assert_array_equal(got[1][: nz.size], nz_idx)
        np.testing.assert_array_equal(got[2], nz_ptr)


def csr_of(
    keep: np.ndarray, data: np.ndarray, indptr_dtype: np.dtype, indices_dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr, indices, data) of the rows of ``keep``."""
    indptr = np.zeros(keep.shape[0] + 1, indptr_dtype)
    indptr[1:] = np.cumsum(keep.sum(axis=1))
    return indptr, np.nonzero(keep)[1].astype(indices_dtype), data


# -- strategies ------------------------------------------------------------------------------


@st.composite
def nm_case(draw: st.DrawFn, pairs: list[tuple[int, int]], whole_groups: bool):
    n, m = draw(st.sampled_from(pairs))
    dtype = draw(st.sampled_from(UINTS))
    rows = draw(st.integers(0, 4))
    cols = draw(st.integers(0, 3)) * m if whole_groups else draw(st.integers(0, 3 * m + 1))
    ngroups = rows * -(-cols // m)
    ncodes = positions_table(n, m).shape[0]
    codes = draw(hnp.arrays(np.int64, ngroups, elements=st.integers(0, ncodes - 1)))
    values = draw(hnp.arrays(dtype, ngroups * n))
    packed = ncodes <= 256 and draw(st.booleans())
    return n, m, rows, cols, codes, values, packed


# -- bitmask_scatter -------------------------------------------------------------------------


@SETTINGS
@given(data=st.data(), dtype=st.sampled_from(UINTS), size=st.integers(0, 70))
def test_bitmask_kernels_match_reference(data: st.DataObject, dtype: np.dtype, size: int):
    keep = data.draw(hnp.arrays(np.bool_, size))
    check_bitmask(keep, data.draw(hnp.arrays(dtype, int(keep.sum()))))


@pytest.mark.parametrize("density", [0.0, 0.05, 0.5, 0.95, 1.0])
@pytest.mark.parametrize("size", [64, 1000, 4099])
def test_bitmask_scatter_of_many_bytes(size: int, density: float):
    # Enough mask bytes for the vector loop of the SIMD scatter to run long and then hand over
    # to its scalar tail at every possible count of values left.
    rng = np.random.default_rng(size)
    keep = rng.random(size) < density
    check_bitmask(keep, rng.integers(1, 1 << 16, int(keep.sum())).astype(np.uint16))


@pytest.mark.parametrize("dtype", UINTS, ids=str)
@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 16, 23])
@pytest.mark.parametrize("fill", ["none", "all", "alternate"])
def test_bitmask_kernels_edges(dtype: np.dtype, size: int, fill: str):
    keep = {
        "none": np.zeros(size, bool),
        "all": np.ones(size, bool),
        "alternate": np.arange(size) % 2 == 1,
    }[fill]
    values = (np.arange(keep.sum()) + 1).astype(dtype) * dtype.type(3)
    check_bitmask(keep, values)


# -- nm_scatter ------------------------------------------------------------------------------


@SETTINGS
@given(case=nm_case(NM_PAIRS, whole_groups=False))
def test_nm_scatter_matches_reference(case):
    check_nm_scatter(*case)


@pytest.mark.parametrize("dtype", UINTS, ids=str)
@pytest.mark.parametrize(("rows", "cols"), [(0, 0), (0, 5), (3, 0), (1, 1), (2, 5), (3, 7)])
@pytest.mark.parametrize("packed", [False, True])
def test_nm_scatter_edges(dtype: np.dtype, rows: int, cols: int, packed: bool):
    ngroups = rows * -(-cols // 4)
    codes = np.arange(ngroups) % 6
    values = np.arange(1, 2 * ngroups + 1, dtype=dtype)
    check_nm_scatter(2, 4, rows, cols, codes, values, packed)


def test_nm_scatter_drops_values_in_padded_slots():
    # cols=5, m=4: the second group has one real column; pattern 3 is (1, 2): columns 5 and 6.
    codes = np.array([0, 3])
    values = np.array([1, 2, 3, 4], np.uint16)
    out = garbage(5, np.dtype(np.uint16))
    words, lut = code_inputs(codes, 6, packed=False)
    kernels.nm_scatter(words, lut, positions_table(2, 4), values, out, 1, 5, 4)
    assert out.tolist() == [1, 2, 0, 0, 0]
    assert_guard_intact(out)


# -- nm_compose and nm24_compose ---------------------------------------------------------------


@little_endian_only
@SETTINGS
@given(case=nm_case(POW2_PAIRS, whole_groups=True))
def test_nm_compose_matches_reference(case):
    n, m, _, _, codes, values, packed = case
    check_nm_compose(n, m, codes, values, packed)


@little_endian_only
@pytest.mark.parametrize("dtype", UINTS, ids=str)
@pytest.mark.parametrize(("n", "m"), POW2_PAIRS)
@pytest.mark.parametrize("ngroups", [0, 1, 4])
def test_nm_compose_edges(dtype: np.dtype, n: int, m: int, ngroups: int):
    ncodes = positions_table(n, m).shape[0]
    codes = (np.arange(ngroups) * 7 + ncodes - 1) % ncodes
    values = np.arange(1, n * ngroups + 1).astype(dtype) * dtype.type(0x11)
    check_nm_compose(n, m, codes, values, packed=ncodes <= 256)


@little_endian_only
@SETTINGS
@given(
    data=st.data(),
    dtype=st.sampled_from(UINTS[:2]),
    ngroups=st.integers(0, 40),
)
def test_nm24_compose_matches_reference(data: st.DataObject, dtype: np.dtype, ngroups: int):
    codes = data.draw(hnp.arrays(np.int64, ngroups, elements=st.integers(0, 5)))
    check_nm24(codes, data.draw(hnp.arrays(dtype, 2 * ngroups)))


@little_endian_only
@pytest.mark.parametrize("dtype", UINTS[:2], ids=str)
@pytest.mark.parametrize("ngroups", [0, 1, 2, 3, 4, 5, 6, 7])
def test_nm24_compose_tails(dtype: np.dtype, ngroups: int):
    codes = np.arange(ngroups) % 6
    values = np.iinfo(dtype).max - np.arange(2 * ngroups, dtype=dtype)
    check_nm24(codes, values)


@little_endian_only
@SETTINGS
@given(data=st.data(), m=st.sampled_from([4, 8]), ngroups=st.integers(0, 40))
def test_nm2_compose_codes_matches_reference(data: st.DataObject, m: int, ngroups: int):
    """2:m with one code per group (a Huffman-coded pattern stream), 16-bit and 8-bit values
    (one word per group)."""
    dtype = np.dtype(np.uint16) if m == 4 else np.dtype(np.uint8)
    ncodes = positions_table(2, m).shape[0]
    codes = data.draw(hnp.arrays(np.int64, ngroups, elements=st.integers(0, ncodes - 1)))
    values = data.draw(hnp.arrays(dtype, 2 * ngroups))
    words, _ = code_inputs(codes, ncodes, packed=False)
    out = compose_out(m, ngroups, dtype)
    assert out.size == ngroups
    kernels.nm2_compose_codes(words, compose_tables(2, m, dtype.itemsize)[1], values, out)
    assert_same(out.view(dtype), ref_nm(codes, 2, m, values, ngroups, m))


# -- nm_split --------------------------------------------------------------------------------


def at_most_n_per_group(keep: np.ndarray, n: int, m: int) -> np.ndarray:
    """``keep`` with each group's non-zeros after the n-th dropped."""
    rows, cols = keep.shape
    padded = np.zeros((rows, -(-cols // m) * m), bool)
    padded[:, :cols] = keep
    groups = padded.reshape(-1, m)
    groups &= np.cumsum(groups, axis=1) <= n
    return padded[:, :cols]


@SETTINGS
@given(
    data=st.data(),
    pair=st.sampled_from(NM_PAIRS),
    dtype=st.sampled_from(UINTS),
    rows=st.integers(0, 4),
    valid=st.booleans(),
)
def test_nm_split_matches_reference(data: st.DataObject, pair, dtype, rows: int, valid: bool):
    n, m = pair
    cols = data.draw(st.integers(0, 3 * m + 1))
    keep = data.draw(hnp.arrays(np.bool_, (rows, cols)))
    if valid:
        keep = at_most_n_per_group(keep, n, m)
    x = data.draw(hnp.arrays(dtype, (rows, cols), elements=st.integers(1, np.iinfo(dtype).max)))
    check_nm_split(np.where(keep, x, dtype.type(0)), n, m)


@pytest.mark.parametrize("dtype", UINTS, ids=str)
@pytest.mark.parametrize(
    "rows",
    [
        [],
        [0, 0, 0, 0, 0],
        [9, 0, 9, 0, 9],  # a full group, then a padded group with one value
        [0, 9, 9, 9, 0],  # the first group breaks 2:4
        [9, 9, 0, 0, 9],  # a padded last group
        [0, 0, 9, 9, 0, 9, 9, 0, 9, 9],  # the first two groups are fine, the last breaks 2:4
    ],
    ids=["empty", "zeros", "padded", "bad-first", "padded-last", "bad-last"],
)
def test_nm_split_edges(dtype: np.dtype, rows: list[int]):
    x = np.array([rows], dtype).reshape(1, len(rows))
    x[x == 9] = np.iinfo(dtype).max
    check_nm_split(x, 2, 4)
    check_nm_split(np.repeat(x, 3, axis=0), 2, 4)


def split_at_level(level: str, x: np.ndarray, fill: np.ndarray) -> tuple[int, bytes, bytes]:
    """(first bad group or -1, codes, values) of nm_split_fill at 2:4 on ``x`` at ``level``
    (codes and values up to the bad group: the rest is incomplete by contract)."""
    rows, cols = x.shape
    ngroups = rows * -(-cols // 4)
    tables = nm_tables(2, 4)
    with use_simd(level):
        codes = garbage(ngroups, np.dtype(np.uint16))
        values = garbage(2 * ngroups, x.dtype)
        bad = kernels.nm_split_fill(x.reshape(-1), rows, cols, 4, tables.code_of_mask,
                                    tables.positions, codes, values, fill)
        assert_guard_intact(codes)
        assert_guard_intact(values)
    done = ngroups if bad < 0 else bad
    return bad, codes[:done].tobytes(), values[: 2 * done].tobytes()


@pytest.mark.skipif(len(LEVELS) == 1, reason="this CPU has no SIMD level")
@pytest.mark.parametrize("dtype", UINTS, ids=str)
def test_nm_split_simd_path_writes_the_same_bytes_as_its_scalar_twin(dtype: np.dtype):
    """2:4 splits of 2- and 4-byte entries (SSSE3: two groups or one a vector step; a row's last
    whole group and its padded one as the scalar body) give the scalar twin's codes, values and
    first bad group, at every row length up to 21 and an odd one of 1531: zero, one and per-row
    fills; groups with fewer than two entries; a third entry in the first or second group of a
    step, in the last whole group or in the padded one. The input ends at an inaccessible page
    (a vector load past the last row would crash)."""
    from test_huffman import guarded  # tests/ is on sys.path: pytest's default rootdir import

    rng = np.random.default_rng(dtype.itemsize)
    for cols in [*range(22), 1531]:
        for rows in (1, 3):
            ngroups = rows * -(-cols // 4)
            fills = [np.zeros(1, dtype), np.array([7], dtype),
                     rng.integers(1, 50, rows).astype(dtype)]
            for fill in fills:
                row_fill = fill.reshape(-1, 1) if fill.size > 1 else fill[0]
                x = np.zeros((rows, cols), dtype) + row_fill
                for r in range(rows):  # 0 to 2 entries at random positions of each group
                    for g0 in range(0, cols, 4):
                        width = min(4, cols - g0)
                        pos = rng.choice(width, rng.integers(0, min(2, width) + 1), replace=False)
                        x[r, g0 + pos] = rng.integers(100, 250, pos.size)
                groups = {0, 1, ngroups - 1, ngroups - 2, ngroups // 2} & set(range(ngroups))
                for g in [None, *sorted(groups)]:
                    y = x.copy()
                    if g is not None:
                        r, q = divmod(g, -(-cols // 4))
                        width = min(4, cols - 4 * q)
                        if width < 3:
                            continue
                        y[r, 4 * q : 4 * q + 3] = 99  # three entries: breaks 2:4
                    z = guarded(y.tobytes()).view(dtype).reshape(rows, cols)
                    scalar = split_at_level("scalar", z, fill)
                    assert (scalar[0] >= 0) == (g is not None), (cols, rows, g)
                    for level in LEVELS[1:]:
                        assert split_at_level(level, z, fill) == scalar, (level, cols, rows, g)


# -- csr_dense and csr_split -----------------------------------------------------------------


@SETTINGS
@given(
    data=st.data(),
    shape=st.tuples(st.integers(0, 6), st.integers(0, 20)),
    dtype=st.sampled_from(UINTS),
    index_dtypes=st.sampled_from(CSR_INDEX_DTYPES),
)
def test_csr_dense_and_split_match_the_reference(data: st.DataObject, shape, dtype, index_dtypes):
    keep = data.draw(hnp.arrays(np.bool_, shape))
    check_csr(keep, data.draw(hnp.arrays(dtype, int(keep.sum()))), *index_dtypes)


@pytest.mark.parametrize("dtype", UINTS, ids=str)
@pytest.mark.parametrize("shape", [(0, 0), (0, 4), (4, 0), (1, 1), (3, 300)])
@pytest.mark.parametrize("density", [0.0, 0.3, 1.0])
def test_csr_dense_and_split_edges(dtype: np.dtype, shape: tuple[int, int], density: float):
    keep = np.random.default_rng(1).random(shape) < density
    data = (np.arange(keep.sum()) % 250 + 1).astype(dtype)
    check_csr(keep, data, *CSR_INDEX_DTYPES[1])


@pytest.mark.parametrize("dtype", UINTS, ids=str)
def test_csc_of_a_large_output_goes_through_blocks_the_same(dtype: np.dtype):
    """From 1 MiB of output the transposed rows (CSC's columns) are scattered into a block of
    64 bytes' worth of them and written out a row of the output at a time: the same output as
    the reference, a last block shorter than the others, trusted and checked; a bad column in
    the middle of a block refused with the output's guard intact."""
    rows = 515
    cols = -(-(1 << 20) // (dtype.itemsize * rows)) + 3  # past 1 MiB; not whole blocks
    rng = np.random.default_rng(dtype.itemsize)
    keep = rng.random((rows, cols)) < 0.3
    vals = np.zeros((rows, cols), dtype)
    vals[keep] = (rng.integers(1, 250, int(keep.sum()))).astype(dtype)
    indptr, indices, data = csr_of(keep.T, vals.T[keep.T], np.dtype(np.int64),
                                   np.dtype(np.uint16))
    for check in (False, True):
        out = garbage(rows * cols, dtype)
        out[:] = 0
        assert kernels.csr_dense(indptr, indices, data, out, cols, rows, True, check)
        assert_same(out, vals.reshape(-1))
    bad = indices.copy()
    col = 64 // dtype.itemsize + 3  # a column inside the second block
    a, b = int(indptr[col]), int(indptr[col + 1])
    assert b - a >= 2
    bad[a], bad[a + 1] = bad[a + 1], bad[a]
    out = garbage(rows * cols, dtype)
    out[:] = 0
    assert not kernels.csr_dense(indptr, bad, data, out, cols, rows, True, True)
    assert_guard_intact(out)


@pytest.mark.parametrize("by_columns", [False, True])
@pytest.mark.parametrize("bad", ["start", "down", "end", "order", "repeat", "range"])
def test_csr_dense_checked_refuses_a_bad_row_and_writes_nothing_outside(by_columns: bool,
                                                                       bad: str):
    """With ``check``, each row is checked before it is written: pointers from 0 ascending to
    nnz, indices strictly increasing and below minor. A bad one: False, and the output's
    guard is intact (indices of a bad row are never used to write)."""
    rows, cols = 3, 5
    keep = np.array([[1, 0, 1, 0, 1], [0, 1, 1, 0, 0], [1, 1, 0, 0, 1]], bool)
    order = keep.T if by_columns else keep
    major, minor = order.shape
    indptr, indices, data = csr_of(order, np.arange(1, keep.sum() + 1, dtype=np.uint16),
                                   np.dtype(np.int64), np.dtype(np.uint16))
    indptr, indices = indptr.copy(), indices.copy()
    second = int(indptr[1])  # the first index of major row 1 (each row keeps at least one)
    if bad == "start":
        indptr[0] = 1
    elif bad == "down":
        indptr[2] = indptr[1] - 1
    elif bad == "end":
        indptr[-1] -= 1
    elif bad == "order":
        indices[second], indices[second + 1] = indices[second + 1], indices[second]
    elif bad == "repeat":
        indices[second + 1] = indices[second]
    else:
        indices[second + 1] = 60000  # far past the output, not just past its row
    out = garbage(rows * cols, np.dtype(np.uint16))
    out[:] = 0
    assert not kernels.csr_dense(indptr, indices, data, out, major, minor, by_columns, True)
    assert_guard_intact(out)


@SETTINGS
@given(mask=hnp.arrays(np.uint8, st.integers(0, 300)))
def test_popcount_matches_unpackbits(mask: np.ndarray):
    assert kernels.popcount(mask) == int(np.unpackbits(mask).sum())


# -- nm_codes_from_mask ----------------------------------------------------------------------


@SETTINGS
@given(
    data=st.data(),
    pair=st.sampled_from([(n, m) for n, m in NM_PAIRS if 8 % m == 0]),
    rows=st.integers(0, 4),
    exact=st.booleans(),
)
def test_nm_codes_from_mask_matches_nm_split(data: st.DataObject, pair, rows: int, exact: bool):
    """On an exactly N:M mask the codes equal nm_split's; otherwise the kernel says False."""
    n, m = pair
    cols = m * data.draw(st.integers(0, 4))
    ngroups = rows * cols // m
    if exact:
        choice = data.draw(st.lists(st.sampled_from(list(combinations(range(m), n))),
                                    min_size=ngroups, max_size=ngroups))
        keep = np.zeros((ngroups, m), bool)
        for g, combo in enumerate(choice):
            keep[g, list(combo)] = True
    else:
        keep = data.draw(hnp.arrays(np.bool_, (ngroups, m)))
    x = np.where(keep.reshape(rows, cols), np.uint16(7), np.uint16(0))
    mask = np.packbits(keep.reshape(-1), bitorder="little")
    tables = nm_tables(n, m)
    codes = np.full(ngroups, 999, np.uint16)
    ok = kernels.nm_codes_from_mask(mask, m, tables.code_of, codes)
    assert ok == bool((keep.sum(axis=1) == n).all())
    if ok:
        ref = np.empty(ngroups, np.uint16)
        assert kernels.nm_split(x.reshape(-1), rows, cols, m, tables.code_of_mask,
                                tables.positions, ref, np.empty(ngroups * n, np.uint16)) == -1
        np.testing.assert_array_equal(codes, ref)


# -- SIMD paths against their scalar twins ---------------------------------------------------

#: Sizes hitting every tail of the 8-item blocks, and a few long odd ones.
SIMD_SIZES = [*range(71), 257, 1001, 4099]


def simd_inputs(dtype: np.dtype, size: int) -> list[tuple[str, np.ndarray]]:
    """Dense arrays of ``size`` items: all zero, all set, alternating, random masks, and
    values whose only non-zero byte is the last (a compare of the low byte would miss them)."""
    rng = np.random.default_rng(size * 8 + dtype.itemsize)
    bits = 8 * dtype.itemsize
    top = dtype.type(1) << dtype.type(bits - 1)  # only the last byte's top bit set
    rand = rng.integers(0, 1 << min(bits, 63), size, dtype=np.uint64).astype(dtype)
    rand[rand == 0] = 1
    last_byte = (rng.integers(1, 256, size).astype(dtype) << dtype.type(bits - 8))
    cases = {
        "zero": np.zeros(size, dtype),
        "all": rand,
        "alternate": np.where(np.arange(size) % 2 == 1, rand, dtype.type(0)),
        "sparse": np.where(rng.random(size) < 0.1, rand, dtype.type(0)),
        "half": np.where(rng.random(size) < 0.5, rand, dtype.type(0)),
        "dense": np.where(rng.random(size) < 0.9, rand, dtype.type(0)),
        "last-byte": np.where(rng.random(size) < 0.5, last_byte, dtype.type(0)),
        "top-bit": np.where(rng.random(size) < 0.5, top, dtype.type(0)),
    }
    return list(cases.items())


def run_level(level: str, dense: np.ndarray) -> tuple[bytes, bytes, bytes]:
    """(decoded bytes, split mask, split values) of ``dense`` at SIMD ``level``."""
    keep = dense != 0
    nnz = int(keep.sum())
    mask = np.packbits(keep, bitorder="little")
    with use_simd(level):
        out = garbage(dense.size, dense.dtype)
        kernels.bitmask_scatter(mask, dense[keep], out)
        assert_guard_intact(out)
        split = garbage(mask.size, np.dtype(np.uint8))
        kept = garbage(nnz + 8, dense.dtype)
        assert kernels.bitmask_split(dense, split, kept) == nnz
        assert_guard_intact(split)
        assert_guard_intact(kept)
    # The 8 spare slots of ``kept`` are scratch (the kernels write ahead): not compared.
    return out.tobytes(), split.tobytes(), kept[:nnz].tobytes()


@pytest.mark.skipif(len(LEVELS) == 1, reason="this CPU has no SIMD level")
@pytest.mark.parametrize("dtype", UINTS, ids=str)
def test_simd_paths_write_the_same_bytes_as_their_scalar_twins(dtype: np.dtype):
    """bitmask_scatter and bitmask_split at each SIMD level (SSSE3: 1- and 2-byte items, AVX2:
    4-byte items; 8-byte items have no vector path and must still agree) give the bytes of
    the scalar twin, which the reference tests above pin down."""
    for size in SIMD_SIZES:
        for name, dense in simd_inputs(dtype, size):
            scalar = run_level("scalar", dense)
            mask = np.packbits(dense != 0, bitorder="little").tobytes()
            assert scalar == (dense.tobytes(), mask, dense[dense != 0].tobytes()), (name, size)
            for level in LEVELS[1:]:
                assert run_level(level, dense) == scalar, (level, name, size)


@pytest.mark.skipif(len(LEVELS) == 1, reason="this CPU has no SIMD level")
@pytest.mark.parametrize("dtype", UINTS, ids=str)
def test_split_against_one_fill_item_at_every_simd_level(dtype: np.dtype):
    """bitmask_split_fill with one fill item runs the zero split's SIMD kernels, comparing with
    the fill: at every level it keeps exactly the items other than the fill (the input's
    zeros too, where the fill is not zero), writes no byte past its buffers, and refuses a
    values buffer one slot short."""
    for size in SIMD_SIZES:
        for name, dense in simd_inputs(dtype, size):
            rng = np.random.default_rng(size)
            # a fill that occurs (the last byte's value, a random item) and one that does not
            taken = dense[rng.integers(0, size)] if size else dtype.type(5)
            for fill in (taken, dtype.type(~taken)):
                x = np.where(rng.random(size) < 0.5, fill, dense).astype(dtype)
                keep = x != fill
                nnz = int(keep.sum())
                want = (np.packbits(keep, bitorder="little").tobytes(), x[keep].tobytes())
                for level in LEVELS:
                    with use_simd(level):
                        mask = garbage((size + 7) // 8, np.dtype(np.uint8))
                        kept = garbage(nnz + 8, dtype)
                        got = kernels.bitmask_split_fill(x, mask, kept, np.array([fill]), size)
                        assert_guard_intact(mask)
                        assert_guard_intact(kept)
                        assert got == nnz, (level, name, size)
                        assert (mask.tobytes(), kept[:nnz].tobytes()) == want, (level, name, size)
                        if nnz:
                            with pytest.raises(ValueError):
                                kernels.bitmask_split_fill(x, mask, np.empty(nnz - 1, dtype),
                                                           np.array([fill]), size)


def test_simd_level_really_switches():
    """use_simd changes the level the kernels read, and restores it (else the test above
    would compare a path with itself)."""
    from sparsecodecs.kernels import simd

    before = simd()
    with use_simd("scalar"):
        assert simd() == "scalar"
    assert simd() == before


def test_scatter_refuses_a_mask_asking_for_more_values_than_there_are():
    """A mask not checked against nnz cannot make the scatter read past ``values``, at any
    SIMD level: it says so."""
    from sparsecodecs.registry import FrameLayoutError

    for dtype in UINTS:
        for level in LEVELS:
            with use_simd(level), pytest.raises(FrameLayoutError, match="more set bits"):
                kernels.bitmask_scatter(np.full(8, 0xFF, np.uint8), np.ones(63, dtype),
                                        np.empty(64, dtype))


STRIDED_CALLS = {
    "bitmask_scatter out": lambda a: kernels.bitmask_scatter(np.zeros(1, np.uint8),
                                                             a[:0], a[::2][:8]),
    "bitmask_scatter values": lambda a: kernels.bitmask_scatter(
        np.full(1, 0xFF, np.uint8), a[::2][:8], np.empty(8, a.dtype)),
    "bitmask_split x": lambda a: kernels.bitmask_split(a[::2], np.empty(2, np.uint8),
                                                       np.empty(16, a.dtype)),
    "nm_scatter values": lambda a: kernels.nm_scatter(
        np.zeros(2, np.uint16), np.arange(6, dtype=np.uint16).reshape(6, 1),
        positions_table(2, 4), a[::2][:4], np.empty(8, a.dtype), 1, 8, 4),
    "nm_split x": lambda a: kernels.nm_split(
        a[::2][:8], 1, 8, 4, nm_tables(2, 4).code_of_mask, nm_tables(2, 4).positions,
        np.empty(2, np.uint16), np.empty(4, a.dtype)),
    "csr_dense indices": lambda a: kernels.csr_dense(
        np.array([0, 2], np.int64), np.arange(4, dtype=np.int32)[::2], a[:2],
        np.zeros(4, a.dtype), 1, 4, False, True),
    "csr_split x": lambda a: kernels.csr_split(
        a[::2][:4], 1, 4, False, None, np.empty(5, a.dtype), np.empty(5, np.uint8),
        np.empty(2, np.uint8)),
}


@pytest.mark.parametrize("call", list(STRIDED_CALLS), ids=list(STRIDED_CALLS))
def test_a_strided_array_is_refused_by_the_c_layer(call: str):
    with pytest.raises(BufferError, match="C-contiguous"):
        STRIDED_CALLS[call](np.arange(32, dtype=np.uint16))


@little_endian_only
@pytest.mark.skipif(len(LEVELS) == 1, reason="this CPU has no SIMD level")
@pytest.mark.parametrize("ngroups", [*range(71), 1001])
def test_simd_compose_writes_the_same_bytes_as_its_scalar_twin(ngroups: int):
    """nm24_compose (two pshufb per packed byte) and nm2_compose_codes (one per two groups) of
    2:4 16-bit values with the library's tables, at each SIMD level, against the reference:
    every tail of the 3- and 2-group steps, values needing their last byte, all codes."""
    from sparsecodecs.codecs._nm import _byte_lut, _compose_tables

    rng = np.random.default_rng(ngroups)
    codes = rng.integers(0, 6, ngroups)
    codes[: min(ngroups, 6)] = np.arange(min(ngroups, 6))
    values = (rng.integers(1, 256, 2 * ngroups) << 8).astype(np.uint16)
    values[::3] = rng.integers(1, 1 << 16, values[::3].size)
    shifts = _compose_tables(2, 4, 2)[1]
    want = ref_nm(codes, 2, 4, values, ngroups, 4)
    packed = pack_bytes(codes, 6, 3)
    for level in LEVELS:
        with use_simd(level):
            out = garbage(ngroups, np.dtype(np.uint64))
            kernels.nm24_compose(packed, _byte_lut(6, 3), ngroups, shifts, values, out)
            assert_same(out.view(np.uint16), want)
            for code_dtype in (np.uint8, np.uint16):
                out = garbage(ngroups, np.dtype(np.uint64))
                kernels.nm2_compose_codes(codes.astype(code_dtype), shifts, values, out)
                assert_same(out.view(np.uint16), want)


def test_compose_refuses_a_code_out_of_range():
    from sparsecodecs.codecs._nm import _compose_tables
    from sparsecodecs.registry import FrameLayoutError

    shifts = _compose_tables(2, 4, 2)[1]
    for level in LEVELS:
        for bad_at in (0, 1, 6):
            codes = np.zeros(7, np.uint8)
            codes[bad_at] = 6
            with use_simd(level), pytest.raises(FrameLayoutError, match="out of range"):
                kernels.nm2_compose_codes(codes, shifts, np.zeros(14, np.uint16),
                                          np.empty(7, np.uint64))
            # two words a group (2:4 of 32-bit values): codes as they are (the identity
            # table), and through a table that is not the identity (the general path)
            word_of, shifts32 = _compose_tables(2, 4, 4)
            swap = np.array([1, 0, 2, 3, 4, 5, 6], np.uint16).reshape(-1, 1)
            for packed, lut in ((codes.astype(np.uint16), np.arange(6, dtype=np.uint16)
                                 .reshape(-1, 1)), (codes, swap)):
                with use_simd(level), pytest.raises(FrameLayoutError, match="out of range"):
                    kernels.nm_compose(packed, lut, 7, word_of, shifts32,
                                       np.zeros(14, np.uint32), np.empty(14, np.uint64))


@pytest.mark.skipif(len(LEVELS) == 1, reason="this CPU has no SIMD level")
@pytest.mark.parametrize("size", [*range(0, 71, 7), 4099])
def test_popcount_and_row_modes_agree_at_every_level(size: int):
    """popcount (a POPCNT build at level avx2) and row_modes_table (an AVX2 build of its zero
    count) give the scalar twin's answers: all-zero, all-set, random rows."""
    rng = np.random.default_rng(size)
    masks = [np.zeros(size, np.uint8), np.full(size, 0xFF, np.uint8),
             rng.integers(0, 256, size).astype(np.uint8)]
    rows = [np.zeros((3, size), np.uint16), np.full((3, size), 0x8000, np.uint16),
            np.where(rng.random((3, size)) < 0.4, rng.integers(0, 4, (3, size)) << 14,
                     0).astype(np.uint16)]
    answers = {}
    for level in LEVELS:
        with use_simd(level):
            got = [kernels.popcount(mask) for mask in masks]
            for x in rows:
                out = np.full(3, 0xA5A5, np.uint16)
                kernels.row_modes_table(x.reshape(-1), 3, size, np.zeros(1 << 16, np.int64), out)
                got.append(out.tolist())
        answers[level] = got
    assert answers["scalar"][:3] == [int(np.unpackbits(m).sum()) for m in masks]
    assert all(answer == answers["scalar"] for answer in answers.values())


# -- count_fill: what a fill spares ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", UINTS)
@pytest.mark.parametrize("rows, cols", [(1, 1), (3, 7), (5, 64), (17, 33)])
def test_count_fill_counts_the_entries_equal_to_their_rows_fill(dtype: np.dtype, rows: int,
                                                                cols: int):
    """Against ``np.count_nonzero(x == fill)`` for one fill item and for one per row (rows
    drawn from a few patterns, so that a row's fill matches some of its entries and not all)."""
    rng = np.random.default_rng(rows * 100 + cols)
    x = rng.choice(np.array([0, 1, 7, np.iinfo(dtype).max], dtype), (rows, cols))
    per_row = rng.choice(np.array([1, 7, np.iinfo(dtype).max], dtype), rows)
    x[0, 0] = x[-1, -1] = per_row[0]  # the first and last entries count, for a single fill
    flat = x.reshape(-1)
    assert kernels.count_fill(flat, per_row, cols) == np.count_nonzero(x == per_row[:, None])
    assert kernels.count_fill(flat, per_row[:1], cols) == np.count_nonzero(x == per_row[0])
    if rows > 1:
        np.testing.assert_array_equal(kernels.count_fill_rows(flat, per_row, cols),
                                      np.count_nonzero(x == per_row[:, None], axis=1))
        with pytest.raises(ValueError, match="per_row takes one count a row's fill item"):
            _native.count_fill(flat, per_row, cols, np.empty(rows - 1, np.int64))
    for wrong in (rows + 2, 0):
        with pytest.raises(ValueError, match="fill items do not fit"):
            kernels.count_fill(flat, np.ones(wrong, dtype), cols)
    with pytest.raises(ValueError, match="fill has"):
        kernels.count_fill(flat, np.ones(1, np.uint8 if dtype.itemsize > 1 else np.uint16), cols)


@pytest.mark.parametrize("dtype", UINTS)
def test_count_fill_counts_the_same_at_every_simd_level(dtype: np.dtype):
    """count_fill at each SIMD level (AVX2: 128 and then 32 bytes of items a step, the rest
    one at a time) against numpy: rows of every length up to past two steps, one fill item and
    one a row, entries that differ from their fill in one byte only (a compare of narrower
    lanes would count some of them), read from a view one byte off its alignment."""
    rng = np.random.default_rng(dtype.itemsize)
    fill = dtype.type(int.from_bytes(b"\x5a" * dtype.itemsize, "little"))
    nears = np.array([int(fill) ^ (0xFF << (8 * b)) for b in range(dtype.itemsize)], dtype)
    for cols in [*range(1, 80), 127, 128, 129, 160, 255, 256, 257, 1000]:
        rows = 3
        x = np.where(rng.random((rows, cols)) < 0.5, fill, rng.choice(nears, (rows, cols)))
        raw = np.empty(x.nbytes + 1, np.uint8)
        flat = raw[1:].view(dtype)
        flat[:] = x.reshape(-1)
        per_row = np.array([fill, nears[-1], fill], dtype)
        want_rows = np.count_nonzero(x == per_row[:, None], axis=1)
        for level in LEVELS:
            with use_simd(level):
                assert kernels.count_fill(flat, per_row, cols) == want_rows.sum(), (level, cols)
                np.testing.assert_array_equal(kernels.count_fill_rows(flat, per_row, cols),
                                              want_rows, err_msg=f"{level} {cols}")
                assert kernels.count_fill(flat, per_row[:1], cols) == np.count_nonzero(
                    x == fill), (level, cols)


# -- gather_fields: packed indices into a table ---------------------------------------------------


def gather_reference(packed: np.ndarray, bits: int, count: int, table: np.ndarray) -> np.ndarray:
    """``table[field i]`` for the LSB-first bit stream ``packed``, bit by bit."""
    stream = np.unpackbits(packed, bitorder="little")[: count * bits].reshape(count, bits)
    idx = (stream.astype(np.int64) << np.arange(bits)).sum(axis=1)
    return table[idx]


@SETTINGS
@given(data=st.data(), bits=st.integers(1, 16), count=st.sampled_from([0, 1, 7, 8, 9, 33, 1000]),
       dtype=st.sampled_from(UINTS))
def test_gather_fields_matches_reference(data: st.DataObject, bits: int, count: int,
                                         dtype: np.dtype):
    k = data.draw(st.integers(1, 1 << bits))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    idx = rng.integers(0, k, count)
    packed = np.packbits(((idx[:, None] >> np.arange(bits)) & 1).astype(np.uint8).reshape(-1),
                         bitorder="little")
    table = rng.integers(0, np.iinfo(dtype).max, k, dtype=dtype, endpoint=True)
    got = kernels.gather_fields(packed, bits, count, table, "x")
    assert got.dtype == dtype and got.tobytes() == gather_reference(packed, bits, count,
                                                                    table).tobytes()


# -- gather_index: decoded centroid indices into their table -----------------------------------


@pytest.mark.parametrize("wide, k", [(False, 1), (False, 2), (False, 7), (False, 16),
                                     (False, 17), (False, 200), (False, 256), (True, 16),
                                     (True, 4097), (True, 65536)])
@pytest.mark.parametrize("dtype", UINTS)
def test_gather_index_matches_take_at_every_level(wide: bool, k: int, dtype: np.dtype):
    """``table[idx]`` at every SIMD level: 1-byte indices into tables of 1 to 256 entries (up
    to 16: the pshufb path for 1-, 2- and 4-byte items) and 2-byte ones into up to 65536, for
    counts around the 16-index step."""
    rng = np.random.default_rng(k)
    table = rng.integers(0, np.iinfo(dtype).max, k, dtype=dtype, endpoint=True)
    for count in (0, 1, 15, 16, 17, 33, 1000):
        idx = rng.integers(0, k, count).astype(np.uint16 if wide else np.uint8)
        want = table[idx.astype(np.int64)].tobytes()
        for level in LEVELS:
            with use_simd(level):
                got = kernels.gather_index(idx, table, "x")
            assert got.dtype == dtype and got.tobytes() == want, (level, count)


def distinct_sorted(rng: np.random.Generator, dtype: np.dtype, k: int) -> np.ndarray:
    """k distinct bit patterns of dtype, ascending, drawn over the whole range (top bits set
    and clear: an unsigned compare done as a signed one gets them wrong)."""
    info = np.iinfo(dtype)
    c = np.unique(rng.integers(0, info.max, 2 * k + 8, dtype=dtype, endpoint=True))
    while c.size < k:  # 1-byte values and k near 256: top up with the patterns not drawn
        c = np.union1d(c, np.setdiff1d(np.arange(1 << (8 * dtype.itemsize), dtype=dtype), c))
    return np.sort(rng.choice(c, k, replace=False))


@pytest.mark.parametrize("k", [1, 2, 16, 17, 32, 33, 256, 4097])
@pytest.mark.parametrize("dtype", UINTS)
def test_centroid_index_matches_searchsorted_at_every_level(k: int, dtype: np.dtype):
    """The index of every value among the centroids (what searchsorted gives for values that
    are centroids) at every SIMD level: tables for 1- and 2-byte values, the AVX2 count for
    4-byte values and up to 32 centroids, the binary search otherwise; counts around the
    8-value step."""
    if dtype.itemsize == 1 and k > 256:
        pytest.skip("1-byte values have 256 patterns")
    rng = np.random.default_rng(k * 8 + dtype.itemsize)
    c = distinct_sorted(rng, dtype, k)
    for count in (0, 1, 7, 8, 9, 1000):
        values = c[rng.integers(0, k, count)]
        want = np.searchsorted(c, values)
        for level in LEVELS:
            with use_simd(level):
                got = kernels.centroid_index(values, c)
            assert got.dtype == (np.uint8 if k <= 256 else np.uint16)
            assert np.array_equal(got, want), (level, count)


@pytest.mark.parametrize("dtype", UINTS)
def test_centroid_index_refuses_centroids_out_of_order(dtype: np.dtype):
    """The searches and the AVX2 count assume ascending, distinct centroids: unsorted or
    repeated ones are refused, not answered wrongly (the count would give a wrong index)."""
    values = np.array([1, 2, 3] * 6, dtype)
    for bad in ([2, 1, 3], [1, 2, 2, 3], [3, 2, 1]):
        with pytest.raises(ValueError, match="distinct bit patterns in ascending order"):
            kernels.centroid_index(values, np.array(bad, dtype))


def test_centroid_index_takes_strided_values():
    """Values that are a strided view (a column slice) are indexed as a copy would be."""
    c = np.array([3, 9, 200], np.uint32)
    v = np.repeat(c, 4).reshape(3, 4)[:, ::2]
    np.testing.assert_array_equal(kernels.centroid_index(v, c), [0, 0, 1, 1, 2, 2])


@pytest.mark.parametrize("k", [1, 16, 33])
@pytest.mark.parametrize("dtype", UINTS)
def test_centroid_index_refuses_a_value_that_is_not_a_centroid(k: int, dtype: np.dtype):
    """A value below, between or above the centroids, in an 8-value step or in the tail, is a
    ValueError at every level (a caller's bug: the encoder's centroids are its values')."""
    rng = np.random.default_rng(k)
    c = distinct_sorted(rng, dtype, k)
    top, known = int(np.iinfo(dtype).max), set(c.tolist())
    near = [int(c[0]) - 1, int(c[-1]) + 1, *(int(x) + 1 for x in c)]
    outside = [x for x in near if 0 <= x <= top and x not in known]
    for x in outside[:3]:
        for at in (0, 5, 16):
            values = np.repeat(c[:1], 17)
            values[at] = x
            for level in LEVELS:
                with use_simd(level), pytest.raises(ValueError, match="not among the centroids"):
                    kernels.centroid_index(values, c)


@pytest.mark.parametrize("k, bad", [(1, 1), (16, 16), (16, 255), (5, 128), (100, 200),
                                    (300, 300), (300, 65535)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.uint64])
def test_gather_index_refuses_an_index_past_the_table(k: int, bad: int, dtype: type):
    """An index past the table is a FrameLayoutError at every level, wherever it sits (in a
    SIMD step or in the scalar tail), and the kernel never reads past the table."""
    table = np.arange(1, k + 1, dtype=dtype)
    for level in LEVELS:
        for at in (0, 17, 32):
            idx = np.zeros(33, np.uint8 if bad < 256 else np.uint16)
            idx[at] = bad
            with use_simd(level), pytest.raises(FrameLayoutError,
                                                match=f"x holds index {bad} >= {k} centroids"):
                kernels.gather_index(idx, table, "x")


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
@pytest.mark.parametrize("dtype", UINTS)
def test_gather_fields_of_whole_bytes_at_every_level(bits: int, dtype: np.dtype):
    """Fields that divide a byte (the table look-ups, pshufb for 4- and 8-bit fields into up
    to 16 entries of 1, 2 or 4 bytes) against the bit-by-bit reference at every SIMD level,
    counts around the 16-field step; a field past the table, in a step or in the tail, and a
    set padding bit are refused at every level."""
    rng = np.random.default_rng(bits * 10 + dtype.itemsize)
    for k in sorted({1, min(5, 1 << bits), min(16, 1 << bits), 1 << bits}):
        table = rng.integers(0, np.iinfo(dtype).max, k, dtype=dtype, endpoint=True)
        for count in (0, 1, 15, 16, 17, 33, 1000):
            idx = rng.integers(0, k, count)
            packed = np.packbits(((idx[:, None] >> np.arange(bits)) & 1).astype(np.uint8)
                                 .reshape(-1), bitorder="little")
            want = gather_reference(packed, bits, count, table).tobytes()
            for level in LEVELS:
                with use_simd(level):
                    got = kernels.gather_fields(packed, bits, count, table, "x")
                assert got.tobytes() == want, (level, k, count)
    if bits == 1:
        return  # every 1-bit field is an index of a two-entry table
    table = np.arange(1, 4, dtype=dtype)  # 3 entries: field value 3 is past the table
    for at in (0, 17, 32):
        idx = np.zeros(33, np.int64)
        idx[at] = 3
        packed = np.packbits(((idx[:, None] >> np.arange(bits)) & 1).astype(np.uint8)
                             .reshape(-1), bitorder="little")
        for level in LEVELS:
            with use_simd(level), pytest.raises(FrameLayoutError, match="holds index 3 >= 3"):
                kernels.gather_fields(packed, bits, 33, table, "x")
    if bits < 8:
        pad = np.zeros((33 * bits + 7) // 8, np.uint8)
        pad[-1] = 0x80
        for level in LEVELS:
            with use_simd(level), pytest.raises(FrameLayoutError, match="padding bits"):
                kernels.gather_fields(pad, bits, 33, table, "x")


@pytest.mark.parametrize("bits", [1, 3, 4, 7, 12, 16])
def test_gather_fields_refuses_what_a_frame_can_get_wrong(bits: int):
    count = 13  # 13 x bits bits: padding bits in the last byte unless bits is 16
    table = np.arange(1 << bits, dtype=np.uint16)[: max(2, (1 << bits) - 1)]
    packed = np.zeros((count * bits + 7) // 8, np.uint8)
    assert kernels.gather_fields(packed, bits, count, table, "x").tobytes() == bytes(2 * count)
    with pytest.raises(FrameLayoutError, match="x: 1 bytes, expected"):
        kernels.gather_fields(packed[:1], bits, count, table, "x")
    if count * bits % 8:
        pad = packed.copy()
        pad[-1] |= 0x80
        with pytest.raises(FrameLayoutError, match="x: padding bits after the last field"):
            kernels.gather_fields(pad, bits, count, table, "x")
    if table.size < 1 << bits:  # the last field set to the first index past the table
        high = packed.copy()
        bit = (count - 1) * bits
        for i in range(bits):
            if (table.size >> i) & 1:
                high[(bit + i) // 8] |= 1 << ((bit + i) % 8)
        with pytest.raises(FrameLayoutError, match=f"x holds index {table.size} >= "):
            kernels.gather_fields(high, bits, count, table, "x")


@settings(max_examples=examples(60), deadline=None)
@given(data=st.data(), dtype=st.sampled_from([np.uint32, np.uint64]),
       size=st.sampled_from([0, 1, 2, 17, 1025, 1031, 4099]), numpy_sorts=st.booleans())
def test_sorted_bits_matches_np_sort(data: st.DataObject, dtype: type, size: int,
                                     numpy_sorts: bool):
    """sorted_bits (above 1024 4- and 8-byte keys the radix sort, or numpy's where it won the
    race: both, whichever won here; numpy's sort below) and unique_bits against np.sort and
    np.unique: keys drawn from few values (a digit the same in every key: a skipped pass), from
    a wide range, and made of single bytes at each position; the input strided, and left as it
    was."""
    saved = dict(kernels._NUMPY_SORTS)
    kernels._NUMPY_SORTS.update({4: numpy_sorts, 8: numpy_sorts})
    try:
        _check_sorted_bits(data, dtype, size)
    finally:
        kernels._NUMPY_SORTS.clear()
        kernels._NUMPY_SORTS.update(saved)


def _check_sorted_bits(data: st.DataObject, dtype: type, size: int) -> None:
    kind = data.draw(st.sampled_from(["wide", "few", "one byte"]))
    bits = 8 * np.dtype(dtype).itemsize
    if kind == "wide":
        keys = data.draw(hnp.arrays(dtype, size))
    elif kind == "few":
        keys = data.draw(hnp.arrays(dtype, size, elements=st.sampled_from([0, 5, 1 << 20])))
    else:
        shift = data.draw(st.integers(0, bits // 8 - 1)) * 8
        keys = data.draw(hnp.arrays(dtype, size, elements=st.integers(0, 255))) << dtype(shift)
    strided = np.repeat(keys, 2)[::2]  # a strided view: sorted_bits copies it
    out = kernels.sorted_bits(strided)
    assert out.dtype == keys.dtype
    np.testing.assert_array_equal(out, np.sort(keys))
    np.testing.assert_array_equal(strided, keys)  # the input is left as it was
    uniq, counts = kernels.unique_bits(keys)
    want_uniq, want_counts = np.unique(keys, return_counts=True)
    np.testing.assert_array_equal(uniq, want_uniq)
    np.testing.assert_array_equal(counts, want_counts)
    assert counts.dtype == np.int64


@pytest.mark.parametrize("size", [0, 1, 2, 17, 256, 257, 300])
@pytest.mark.parametrize("dtype", [np.uint32, np.uint64])
def test_sort_bits_sorts_short_arrays(size: int, dtype: type):
    """The kernel's quicksort (up to 256 keys) and its radix sort just above, called directly:
    sorted_bits hands arrays this short to numpy."""
    from sparsecodecs.kernels import _native

    keys = np.random.default_rng(size).integers(0, np.iinfo(dtype).max, size, dtype=dtype,
                                                  endpoint=True)
    out = keys.copy()
    _native.sort_bits(out)
    np.testing.assert_array_equal(out, np.sort(keys))


@pytest.mark.parametrize("itemsize", [4, 8])
def test_sort_race_runs_once_a_width(monkeypatch: pytest.MonkeyPatch, itemsize: int):
    """numpy_sorts_faster races the two sorts once a process per key width and keeps the
    answer; the race itself answers a bool (either may win on a machine)."""
    assert isinstance(kernels._race_sorts(itemsize), bool)
    monkeypatch.setattr(kernels, "_NUMPY_SORTS", {})
    races: list[int] = []
    monkeypatch.setattr(kernels, "_race_sorts", lambda w: races.append(w) or w == 8)
    assert [kernels.numpy_sorts_faster(itemsize) for _ in range(3)] == [itemsize == 8] * 3
    assert races == [itemsize]
    assert kernels.numpy_sorts_faster(12 - itemsize) == (itemsize == 4)  # the other width
    assert races == [itemsize, 12 - itemsize]


def test_sort_bits_refuses_narrow_keys():
    from sparsecodecs.kernels import _native

    with pytest.raises(ValueError, match="4 or 8 bytes"):
        _native.sort_bits(np.zeros(4, np.uint16))


def _draw_keys(data: st.DataObject, dtype: type, size: int) -> np.ndarray:
    """``size`` keys drawn from a few values with zero among them, from a wide range, or all
    distinct."""
    kind = data.draw(st.sampled_from(["wide", "few", "distinct"]))
    if kind == "wide":
        return data.draw(hnp.arrays(dtype, size))
    if kind == "few":
        return data.draw(hnp.arrays(dtype, size, elements=st.sampled_from([0, 5, 1 << 12])))
    return np.random.default_rng(size).permutation(size).astype(dtype)


@settings(max_examples=examples(80), deadline=None)
@given(data=st.data(), dtype=st.sampled_from([np.uint32, np.uint64, np.uint16]),
       size=st.sampled_from([0, 1, 2, 17, 300, 5000]))
def test_distinct_above_counts_as_np_unique(data: st.DataObject, dtype: type, size: int):
    """distinct_above against np.unique, with limits just below, at and above the distinct
    count (and past the ends): keys drawn from a few values with zero among them (the key
    the hash table counts aside), from a wide range, and all distinct; 2-byte keys go to a sort."""
    keys = _draw_keys(data, dtype, size)
    distinct = np.unique(keys).size
    for limit in {-1, 0, distinct - 1, distinct, distinct + 1, size, size + 1}:
        assert kernels.distinct_above(keys, limit) is (distinct > limit), (limit, distinct)


@settings(max_examples=examples(80), deadline=None)
@given(data=st.data(), dtype=st.sampled_from([np.uint32, np.uint64]),
       size=st.sampled_from([0, 1, 2, 17, 300, 5000]))
def test_hash_bins_counts_as_numpy_does(data: st.DataObject, dtype: type, size: int):
    """hash_bins against the same Fibonacci hash's bins counted by numpy (zeros skipped): the
    fullest bin, the bins in use and the zeros, for keys drawn from a few values with zero
    among them, from a wide range, and all distinct, whole or every step-th (a planner's
    sample, read in place); with a table left dirty by the call before. And what the planner
    reads off them holds: no pattern occurs more often than the fullest bin, and at least as
    many distinct non-zero patterns as bins in use occur."""
    keys = _draw_keys(data, dtype, size)
    step = data.draw(st.sampled_from([1, 1, 2, 3, 9]))
    sample = keys[::step]
    nonzero = sample[sample != 0].astype(np.uint64)
    with np.errstate(over="ignore"):
        bins = np.bincount((nonzero * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(48),
                           minlength=1 << 16)
    table = np.full(1 << 16, 7, np.uint32)  # what a call before may have left
    most, occupied, zeros = _native.hash_bins(keys, table, step)
    assert (most, occupied, zeros) == (int(bins.max(initial=0)), int(np.count_nonzero(bins)),
                                       sample.size - nonzero.size)
    assert kernels.hash_bins(keys, step) == (most, occupied, zeros)
    if step == 1:
        assert _native.hash_bins(keys, table) == (most, occupied, zeros)
    _, counts = np.unique(nonzero, return_counts=True)
    assert counts.max(initial=0) <= most and counts.size >= occupied


@settings(max_examples=examples(80), deadline=None)
@given(data=st.data(), dtype=st.sampled_from([np.uint32, np.uint64]),
       size=st.sampled_from([0, 1, 2, 17, 300, 5000]))
def test_unique_few_is_np_unique_or_says_more(data: st.DataObject, dtype: type, size: int):
    """unique_few against np.unique (values ascending, counts int64), with limits just below,
    at and above the distinct count, past the ends and the largest: keys drawn from a few
    values with zero among them (counted aside), from a wide range, and all distinct; None
    exactly when more than the limit are distinct (zero counts as one)."""
    keys = _draw_keys(data, dtype, size)
    want_u, want_c = np.unique(keys, return_counts=True)
    distinct = want_u.size
    for limit in {0, max(0, distinct - 1), distinct, distinct + 1, size, size + 1, 1 << 16}:
        got = kernels.unique_few(keys, limit)
        if distinct > limit:
            assert got is None, (limit, distinct)
            continue
        assert got is not None, (limit, distinct)
        assert got[0].dtype == keys.dtype and got[1].dtype == np.int64
        np.testing.assert_array_equal(got[0], want_u)
        np.testing.assert_array_equal(got[1], want_c)


def test_unique_few_gives_up_on_keys_crowding_its_table():
    """Keys whose hashes fall on one slot make every probe walk their cluster: past 64 slots
    the count gives up (-2: the caller sorts) rather than run in time quadratic in the keys;
    the same keys spread by others still count."""
    rng = np.random.default_rng(0)
    cand = rng.integers(1, 1 << 32, 2_000_000, dtype=np.uint64).astype(np.uint32)
    # their top 11 hash bits: the slot in a table of 2**11 slots, and in any smaller one (the
    # table is sized for the keys at hand, min(limit, len(keys)))
    with np.errstate(over="ignore"):
        slot = (cand.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - 11)
    crowd = np.unique(cand[slot == 5])[:80]
    assert crowd.size == 80
    keys = np.tile(crowd, 3)
    values, counts = np.empty(1000, np.uint32), np.empty(1000, np.int64)
    assert _native.unique_few(keys, 1000, values, counts) == -2
    assert kernels.unique_few(keys, 1000) is None
    assert _native.unique_few(crowd[:60], 1000, values, counts) == 60  # a cluster of 60: fine


def test_unique_few_refuses_bad_arguments():
    keys = np.zeros(8, np.uint32)
    with pytest.raises(ValueError, match="4 or 8 bytes"):
        _native.unique_few(np.zeros(4, np.uint16), 4, np.empty(4, np.uint16), np.empty(4, np.int64))
    with pytest.raises(ValueError, match="limit"):
        _native.unique_few(keys, 1 << 17, np.empty(8, np.uint32), np.empty(8, np.int64))
    with pytest.raises(ValueError, match="need 4 items"):
        _native.unique_few(keys, 4, np.empty(3, np.uint32), np.empty(4, np.int64))
    with pytest.raises(ValueError, match="need 4 items"):
        _native.unique_few(keys, 4, np.empty(4, np.uint64), np.empty(4, np.int64))


def test_hash_bins_refuses_narrow_keys_and_a_short_table():
    with pytest.raises(ValueError, match="4 or 8 bytes"):
        _native.hash_bins(np.zeros(4, np.uint16), np.zeros(1 << 16, np.uint32))
    with pytest.raises(ValueError, match="2\\*\\*16 bins"):
        _native.hash_bins(np.zeros(4, np.uint32), np.zeros(1 << 15, np.uint32))
    with pytest.raises(ValueError, match="step must be at least 1"):
        _native.hash_bins(np.zeros(4, np.uint32), np.zeros(1 << 16, np.uint32), 0)


def test_distinct_values_tells_mostly_distinct_samples_without_sorting_them():
    """The planner's test of a sample (more than half distinct: no codebook) gives the same
    answer by the early-stopping hash count as off the sorted sample, on either side of the
    half, for a whole array and a strided sample; only a sample not sorted yet is hashed. The
    pools of distinct values are drawn with no two in one hash bin as well as freely: then
    the bins in use (what tells the count without the hash table) are exactly the values."""
    from sparsecodecs.codecs import _distinct

    rng = np.random.default_rng(0)
    keys = rng.permutation(1 << 24)[:200_000].astype(np.uint32) + 1
    bins = (keys.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(48)
    keys_apart = keys[np.sort(np.unique(bins, return_index=True)[1])]  # each bin's first
    for size, apart in itertools.product((3000, 70000, 300000), (False, True)):
        step = max(1, size // 65536)
        half = size // step // 2
        for distinct in (half - 3, half, half + 1, half + 40):
            pool = rng.permutation(keys_apart if apart else keys)[:distinct]
            values = pool[rng.integers(0, distinct, size)]
            sample = values[::step]
            values[::step] = np.resize(pool, sample.size)  # the sample holds exactly them
            sorted_first = _distinct.SortedSample(values)
            sorted_first()
            hashed = _distinct.SortedSample(values)
            a = _distinct.distinct_values(values, sample=sorted_first)
            b = _distinct.distinct_values(values, sample=hashed)
            assert (a is None) is (b is None) is (distinct > half), (size, distinct)
            if b is None:  # told without a sort
                assert not hashed.ready


def _pack_codes_reference(codes: np.ndarray, ncodes: int) -> bytes:
    """Base-``ncodes`` words the slow way: one Python integer per word."""
    from sparsecodecs.codecs._nm import pattern_packing

    word, k = pattern_packing(ncodes)
    words = []
    for start in range(0, codes.size, k):
        words.append(sum(int(c) * ncodes**j for j, c in enumerate(codes[start:start + k])))
    return np.array(words, f"<u{word // 8}").tobytes()


@pytest.mark.parametrize("ncodes", [2, 3, 6, 7, 70, 255, 256, 257, 4096, 65536])
def test_pack_codes_writes_the_words_a_python_reference_writes(ncodes: int) -> None:
    from sparsecodecs.codecs._nm import pack_codes

    rng = np.random.default_rng(ncodes)
    for n in [0, 1, 2, 3, 5, 8, 9, 17, 64, 1001]:  # ragged and whole last words
        codes = rng.integers(0, ncodes, n).astype(np.uint16)
        codes[-1:] = ncodes - 1  # the largest digit, where there is one
        assert pack_codes(codes, ncodes).tobytes() == _pack_codes_reference(codes, ncodes)


def test_pack_codes_rejects_a_code_outside_its_alphabet() -> None:
    from sparsecodecs.codecs._nm import pack_codes
    from sparsecodecs.registry import PatternError

    codes = np.zeros(10, np.uint16)
    codes[7] = 6
    with pytest.raises(PatternError, match="below ncodes=6, got 6"):
        pack_codes(codes, 6)


@pytest.mark.parametrize("ncodes", [0, 1])
def test_pattern_packing_refuses_an_alphabet_of_fewer_than_two_codes(ncodes: int) -> None:
    from sparsecodecs.codecs._nm import pattern_packing
    from sparsecodecs.registry import PatternError

    with pytest.raises(PatternError, match="at least 2 codes"):
        pattern_packing(ncodes)


def test_half_patterns_stand_for_float32_at_float16_precision_in_order():
    """Every float16 pattern (zeros, subnormals, normals, infinities, NaNs with their payloads)
    widens to its float32 pattern exactly (numpy's conversion for all but NaNs, whose payload
    it may quiet) and narrows back; the map keeps the order of patterns; float32 values float16
    does not hold exactly (a mantissa bit below its ten, an exponent past its range, a tiny
    value whose significand a float16 subnormal cannot hold) are refused."""
    from sparsecodecs.codecs._kernels import narrow_patterns

    half = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    wide = np.empty(half.size, np.uint32)
    assert _native.half_patterns(half, wide)
    nan = np.isnan(half.view(np.float16))
    np.testing.assert_array_equal(wide[~nan], half.view(np.float16).astype(np.float32)
                                  .view(np.uint32)[~nan])
    assert (wide[nan] >> 13 & 0x3FF == half[nan] & 0x3FF).all()  # payloads kept, unquieted
    back = np.empty(half.size, np.uint16)
    assert _native.half_patterns(wide, back)
    np.testing.assert_array_equal(back, half)
    order = np.argsort(wide)
    assert (np.diff(half[order].astype(np.int64)) > 0).all()
    narrow = narrow_patterns(wide.reshape(256, 256))
    assert narrow is not None and narrow[0].shape == (256, 256)
    np.testing.assert_array_equal(narrow[0].reshape(-1), half)
    np.testing.assert_array_equal(narrow[1](narrow[0]), wide.reshape(256, 256))
    refused = [
        np.float32(1.0 + 2.0**-11),  # an eleventh mantissa bit
        np.float32(2.0**16),  # past float16's largest exponent
        np.float32(2.0**-25),  # below its smallest subnormal
        np.float32(3 * 2.0**-24 + 2.0**-25),  # a subnormal's bit float16 cannot hold
    ]
    for x in refused:
        one = np.array([x], np.float32).view(np.uint32)
        assert not _native.half_patterns(one, np.empty(1, np.uint16)), x
        # among patterns of 13 low zero bits, not 16 (the top halves would stand for these)
        assert narrow_patterns(np.concatenate([wide[0x3C00:0x3C64], one])) is None, x
    with pytest.raises(ValueError, match="items"):
        _native.half_patterns(wide, np.empty(3, np.uint16))
    with pytest.raises(ValueError, match="2 or 4 bytes"):
        _native.half_patterns(wide.astype(np.uint64), np.empty(wide.size, np.uint16))


@pytest.mark.parametrize("level", LEVELS)
def test_half_patterns_simd_path_answers_as_its_scalar_twin(level: str):
    """The AVX2 step (eight patterns, each case a lane mask) writes and answers what the scalar
    twin does: every float16 pattern widened in shuffled runs of every length up to past two
    steps, and a pattern float16 does not hold placed at every position of such a run (the
    answer False, whichever step it falls in)."""
    rng = np.random.default_rng(3)
    half = rng.permutation(np.arange(1 << 16, dtype=np.uint32).astype(np.uint16))
    wide = np.empty(half.size, np.uint32)
    _native.half_patterns(half, wide)
    bad = np.array([0x3F800001, 0x47800000, 0x33000000, 0x33C00000 | 0x2000], np.uint32)
    for n in [*range(20), 4096, wide.size]:
        out = {}
        for lv in ("scalar", level):
            with use_simd(lv):
                got = np.zeros(n, np.uint16)
                assert _native.half_patterns(wide[:n], got)
                out[lv] = got
        np.testing.assert_array_equal(out[level], half[:n])
        np.testing.assert_array_equal(out["scalar"], half[:n])
    for n in range(1, 20):
        for at in range(n):
            x = wide[:n].copy()
            x[at] = bad[(n + at) % bad.size]
            for lv in ("scalar", level):
                with use_simd(lv):
                    assert not _native.half_patterns(x, np.empty(n, np.uint16)), (n, at, lv)


@settings(max_examples=examples(200), deadline=None)
@given(rows=st.integers(0, 40), width=st.integers(0, 24), extra=st.integers(0, 9),
       seed=st.integers(0, 2**32 - 1), dirty=st.booleans())
def test_cut_rows_is_the_strided_copy(rows: int, width: int, extra: int, seed: int,
                                      dirty: bool):
    """Each row's first ``width`` bytes, as numpy's slice copies them, for every width (the
    overlapping-load paths of 4-7 and 8-16 bytes, and the rest); a nonzero byte anywhere past
    ``width`` is reported, zero padding is not."""
    rng = np.random.default_rng(seed)
    stride = width + extra
    src = rng.integers(0, 256, (rows, stride), dtype=np.uint8)
    src[:, width:] = 0
    if dirty and rows and extra:
        src[rng.integers(rows), width + rng.integers(extra)] = rng.integers(1, 256)
    out = np.full(rows * width + 3, 0xEE, np.uint8)  # past the rows: never written
    padded = kernels.cut_rows(src.reshape(-1), rows, stride, width, out)
    assert padded == bool(src[:, width:].any())
    assert out[: rows * width].tobytes() == np.ascontiguousarray(src[:, :width]).tobytes()
    assert (out[rows * width :] == 0xEE).all()


@pytest.mark.parametrize(("stride", "width"), [(8, 6), (16, 12), (16, 10), (32, 20), (16, 14),
                                               (32, 28)])
def test_cut_rows_of_kernel_rows_compiled_apart(stride: int, width: int):
    """The rows of 3, 5 and 7 entries of 2 or 4 bytes in groups of four, each compiled with
    its sizes as constants: the strided copy, and a nonzero byte at every padding position of
    the first, a middle and the last row reported (and zero padding not)."""
    rng = np.random.default_rng(stride * 100 + width)
    for rows in (0, 1, 7, 301):
        src = rng.integers(0, 256, (rows, stride), dtype=np.uint8)
        src[:, width:] = 0
        out = np.full(rows * width + 3, 0xEE, np.uint8)
        assert not kernels.cut_rows(src.reshape(-1), rows, stride, width, out)
        assert out[: rows * width].tobytes() == np.ascontiguousarray(src[:, :width]).tobytes()
        assert (out[rows * width :] == 0xEE).all()
        for r in {0, rows // 2, rows - 1} if rows else ():
            for at in range(width, stride):
                dirty = src.copy()
                dirty[r, at] = 1
                assert kernels.cut_rows(dirty.reshape(-1), rows, stride, width, out), (r, at)


def test_cut_rows_refuses_sizes_past_its_buffers():
    src, out = np.zeros(24, np.uint8), np.zeros(12, np.uint8)
    for rows, stride, width in [(4, 8, 3), (3, 8, 5), (3, 2, 3), (-1, 8, 3), (2**40, 2**40, 1)]:
        with pytest.raises(ValueError, match="cut_rows"):
            kernels.cut_rows(src, rows, stride, width, out)
    assert not kernels.cut_rows(src, 3, 8, 4, out)
