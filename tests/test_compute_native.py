"""The compiled product kernels (kernels/compute.c) beyond what tests/test_compute.py checks:

* every SIMD path writes the same bytes as its scalar twin (the 2:4 GEMV for every metadata
  form and value dtype, the zero-skipping SpMM of every layout), whatever the thread count;
* non-finite inputs follow IEEE as the dense product does (a skipped zero times inf is NaN),
  for every codec and both product directions;
* hostile frames make ``matmul`` raise library errors only, and no numpy warning (the suite
  turns warnings into errors).
"""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sparsecodecs as sc
from sparsecodecs.kernels import LEVELS, cpu_simd, use_simd
from sparsecodecs.registry import FrameLayoutError
from sparsecodecs.testing import examples, hostile_frames
from sparsecodecs.testing.frames import reframe, split_frame
from test_compute import CODEC_IDS, CODECS, assert_close, encode, reference, weight
from test_fuzz import _load

AVX2 = pytest.mark.skipif(LEVELS[cpu_simd()] < LEVELS["avx2"], reason="the CPU has no AVX2")
#: The SIMD levels from AVX2 up that this CPU runs (the SpMM has an AVX-512 build).
SIMD_LEVELS = [name for name, rank in LEVELS.items()
               if LEVELS["avx2"] <= rank <= LEVELS[cpu_simd()]]
FLOATS = {
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "float16": np.dtype(np.float16),
    "float32": np.dtype(np.float32),
}
BF16 = FLOATS["bfloat16"]
NM_FORMS = [
    {"id": "nm"},
    {"id": "nm", "metadata": "index"},
    {"id": "nm", "metadata": "bitmask"},
    {"id": "hybrid", "layout": "nm", "entropy": "none"},
]
#: (rows, cols): whole steps of 8 and of 4 groups, leftover groups, a padded last group; rows
#: of 100 and 194 groups, whose pattern bytes (three codes each) the AVX2 path decodes 48 codes
#: at a time, rows starting at every position within a byte.
SHAPES = [(5, 64), (3, 48), (7, 37), (4, 130), (2, 4), (3, 3), (5, 400), (4, 776)]


def bits(y: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(y).view(np.uint32)


def product(frame: bytes, x: np.ndarray, threads: int = 1, level: str | None = None
            ) -> tuple[np.ndarray, list[str]]:
    stats = sc.MatmulStats()
    if level is None:
        return sc.matmul(x, frame, stats=stats, threads=threads), stats.paths
    with use_simd(level):
        return sc.matmul(x, frame, stats=stats, threads=threads), stats.paths


# -- SIMD paths and their scalar twins --------------------------------------------------------


@AVX2
@pytest.mark.parametrize("config", NM_FORMS, ids=lambda c: "-".join(map(str, c.values())))
@pytest.mark.parametrize("dtype", sorted(FLOATS))
def test_two_four_gemv_twins_write_the_same_bytes(config, dtype):
    # (37, 1102): batches 5-8 run rows 16 at a time over 512-column blocks; three row blocks,
    # the last short, three column blocks, the last group padded
    for shape in [*SHAPES, (37, 1102)]:
        w = weight(shape, FLOATS[dtype], 0.9, 1, (2, 4))
        frame = encode(config, w)
        for batch in (1, 2, 3, 4, 5, 8, 13):
            x = np.random.default_rng(batch).standard_normal((batch, shape[1])).astype(np.float32)
            y_scalar, _ = product(frame, x, level="scalar")
            # rows two at a time, split; batches 1-4 have an AVX-512 build too
            for threads, level in itertools.product((1, 2, 3) if batch <= 4 else (1,),
                                                    SIMD_LEVELS):
                y_simd, paths = product(frame, x, threads, level=level)
                assert paths == [f"{config['id']}:nm"]
                np.testing.assert_array_equal(bits(y_simd), bits(y_scalar),
                                              err_msg=f"{shape} {batch} {threads} {level}")
            assert_close(y_simd, *reference(x, w))


@pytest.mark.parametrize("batch", [8, 64, 100])
def test_x_and_the_result_start_on_a_cache_line_from_batch_8(batch, monkeypatch):
    """The SpMM reads a kept value's row of x in 64-byte vectors: x (and y) must not start
    16 bytes into a line, as large numpy arrays do, or every read straddles two lines."""
    from sparsecodecs.kernels import _native

    calls: list[tuple[Any, ...]] = []
    kernel = _native.nm_matmul
    monkeypatch.setattr(_native, "nm_matmul", lambda *a: calls.append(a) or kernel(*a))
    w = weight((40, 4096), FLOATS["bfloat16"], 0.9, 6, (2, 4))
    x = np.random.default_rng(0).standard_normal((batch, 4096)).astype(np.float32)
    y = sc.matmul(x, encode({"id": "nm"}, w))
    assert_close(y, *reference(x, w))
    (args,) = calls
    assert args[12].ctypes.data % 64 == 0 and args[13].ctypes.data % 64 == 0


@pytest.mark.parametrize("level", ["scalar", *SIMD_LEVELS])
@pytest.mark.parametrize("at", [0, 33, 40, 49, 66])
def test_a_pattern_byte_past_215_is_refused_wherever_it_lies(level, at, monkeypatch):
    """A 2:4 pattern byte holds three base-6 codes (0..215). A larger one is refused by the
    reader before any kernel runs, and by the kernel itself if it gets one: in a run of 16
    bytes the AVX2 path decodes at once, or in the bytes around it."""
    from sparsecodecs.kernels import _native

    w = weight((3, 400), FLOATS["bfloat16"], 0.9, 5, (2, 4))  # 100 groups a row: 33.3 bytes
    frame = encode({"id": "nm"}, w)
    header, payloads = split_frame(frame)
    names = [name for name, _, _ in header["sections"]]
    pattern = bytearray(payloads[names.index("pattern")])
    pattern[at] = 216 + at % 40
    bad = reframe(frame, sections={"pattern": bytes(pattern)})
    calls: list[tuple[Any, ...]] = []
    kernel = _native.nm_matmul
    monkeypatch.setattr(_native, "nm_matmul", lambda *a: calls.append(a) or kernel(*a))
    for batch in (1, 3, 8):
        x = np.ones((batch, 400), np.float32)
        with use_simd(level):
            with pytest.raises(FrameLayoutError, match="byte >= 216"):
                sc.matmul(x, bad)
            calls.clear()
            sc.matmul(x, frame)
            args = list(calls[0])
            args[0] = np.frombuffer(bytes(pattern), np.uint8)  # what the reader refused
            assert kernel(*args) == -3  # the kernel's "index outside the weight"


@AVX2
@pytest.mark.parametrize("dtype", [*sorted(FLOATS), "int8"])
def test_csr_gemv_twins_write_the_same_bytes(dtype):
    """The CSR GEMV (batch 1) at AVX2 writes the scalar twin's bytes: indices of 1, 2 and 4
    bytes, rows of every length mod 8 (and empty ones), bfloat16 widened in registers, the
    other value kinds converted first; the same with 3 threads, and with x[0] infinite (a
    row's padding lanes gather it: they must not reach the sum)."""
    dt = np.dtype(np.int8) if dtype == "int8" else FLOATS[dtype]
    for shape, density in [((17, 70), 0.3), ((9, 300), 0.05), ((4, 70_000), 0.0004),
                           ((5, 24), 1.0), ((3, 40), 0.0)]:
        w = weight(shape, dt, density, 11)
        frame = encode({"id": "csr"}, w)
        x = np.random.default_rng(5).standard_normal((1, shape[1])).astype(np.float32)
        for first in (None, np.inf):  # x[0] is what a row's padding lanes would gather
            if first is not None:
                x[0, 0] = first
            y_scalar, paths = product(frame, x, level="scalar")
            assert paths == ["csr:csr"]
            for level, threads in itertools.product(SIMD_LEVELS, (1, 3)):
                y_simd, _ = product(frame, x, threads, level)
                np.testing.assert_array_equal(bits(y_simd), bits(y_scalar),
                                              err_msg=f"{shape} {level} {threads} {first}")
        assert_ieee(y_scalar, x, w)


@pytest.mark.parametrize("level", ["scalar", *SIMD_LEVELS])
@pytest.mark.parametrize("cols", [70, 300, 70_000], ids=["u8-indices", "u16-indices",
                                                       "u32-indices"])
@pytest.mark.parametrize("batch", [1, 5])
def test_the_csr_gemv_refuses_an_index_outside_the_weight(level, cols, batch, monkeypatch):
    """Batch 1 on CSR takes the GEMV, eight indices a vector at AVX2 (batch 5: the SpMM): an
    index at or past the row length (the largest of its item size; for 4-byte indices also one
    that is negative as a signed 32-bit lane), in a whole block of eight or in a row's last
    ones, is the kernel's -3, never a read of x past its end."""
    from sparsecodecs.kernels import _native

    w = weight((3, cols), FLOATS["bfloat16"], 20 / cols, 7)  # ~20 kept a row
    frame = encode({"id": "csr"}, w)
    calls: list[tuple[Any, ...]] = []
    kernel = _native.csr_matmul
    monkeypatch.setattr(_native, "csr_matmul", lambda *a: calls.append(a) or kernel(*a))
    x = np.ones((batch, cols), np.float32)
    with use_simd(level):
        sc.matmul(x, frame)
        args = list(calls[0])
        indptr, indices = args[0], args[1]
        assert indices.itemsize == {70: 1, 300: 2}.get(cols, 4) and indptr[1] > 8
        bad_values = [cols, 2 ** (8 * indices.itemsize) - 1, *([2**31 + 5] if cols > 300 else [])]
        for at in (1, int(indptr[1]) - 1, int(indptr[3]) - 1):  # a whole block, row ends
            for value in bad_values:
                bad = indices.copy()
                bad[at] = value
                args[1] = bad
                assert kernel(*args) == -3, (at, value)
        args[1] = indices
        assert kernel(*args) == int(indptr[-1])


@pytest.mark.parametrize("level", ["scalar", *SIMD_LEVELS])
def test_a_2_4_gemv_reports_the_first_bad_row_first(level, monkeypatch):
    """Batch 1 on bfloat16 2:4 runs two rows at a time at AVX2. Row 0 with a non-zero padding
    slot and row 1 with a pattern byte past 215: the kernel reports row 0's error (-1), as the
    scalar twin, which goes row by row, does; each fault alone gives its own code."""
    from sparsecodecs.kernels import _native

    w = weight((3, 37), FLOATS["bfloat16"], 0.9, 3, (2, 4))  # 10 groups a row, the last padded
    frame = encode({"id": "nm"}, w)
    calls: list[tuple[Any, ...]] = []
    kernel = _native.nm_matmul
    monkeypatch.setattr(_native, "nm_matmul", lambda *a: calls.append(a) or kernel(*a))
    x = np.ones((1, 37), np.float32)
    sc.matmul(x, frame)
    args = list(calls[0])
    packed, values = args[0].copy(), args[8].copy()
    assert packed.dtype == np.uint8 and values.dtype.itemsize == 2
    assert values[19] == 0  # row 0, group 9, second slot: past column 36, padding
    bad_pattern, bad_values = packed.copy(), values.copy()
    bad_pattern[4] = 250  # groups 12-14: row 1
    bad_values[19] = 0x3F80  # bfloat16 1.0
    with use_simd(level):
        for p, v, code in [(bad_pattern, values, -3), (packed, bad_values, -1),
                           (bad_pattern, bad_values, -1), (packed, values, 3 * 19)]:
            args[0], args[8] = p, v
            assert kernel(*args) == code, (level, code)  # the clean frame: 3 x 19 products


@AVX2
@pytest.mark.parametrize("codec", ["bitmask", "csr", "csc", "nm-4:8", "nm-2:4"])
def test_spmm_twins_write_the_same_bytes(codec):
    """The zero-skipping SpMM (batch >= 2, and nm batch > 4) writes the scalar twin's bytes at
    AVX2 and AVX-512: blocks of 32 lanes, 64 at once, and the four-chain lanes after them; and
    where x is larger than 32 KB (70 rows of 300 columns, batch >= 32), in column blocks over
    stashes of 32 rows (and with a padded last group: 301 columns); batches of 9 and more but
    16 on x padded to a multiple of 32 lanes (9-15 on x of at most 768 columns to 16 lanes;
    800 columns: to 32), 16 on masked 16-lane vectors. 2:4 at batch 5-8 runs bfloat16 rows in
    pairs (9 rows: the last alone; 70: blocks of 16 rows and a last of 6). 2:4 from batch 9 at
    AVX-512 runs its own kernel: rows two at a time (9 rows: the last alone; 70: blocks of 32,
    32 and 6), lanes 64 at a time and 32 after them (batch 32: 32 lanes; 130: 64 + 64 + 32),
    x laid out in tiles of those lanes where it is padded (45, 100, 130) or its rows are a
    multiple of 128 lanes (128; from 128 lanes blocks of 128 rows: 150 rows are 128 and 22),
    16 lanes as four chains (batches 9-15 on at most 768 columns, and 16), 9-15 lanes on wider
    x as 16 lanes of one chain each (800 columns; 803: rows ending in a tail of two), column
    blocks of 128 (800 columns), values of every kind (float16: the table)."""
    n, m = (4, 8) if codec == "nm-4:8" else (2, 4)
    config = {"id": "nm", "n": n, "m": m} if codec.startswith("nm") else {"id": codec}
    cases = [((9, 70), (1, 2, 7, 8, 9, 13, 16, 32, 45, 64, 100, 130)),
             ((70, 300), (8, 13, 16, 32, 64, 130)), ((70, 301), (8, 13, 33, 64)),
             ((5, 800), (8, 13, 16, 40)), ((69, 803), (9, 15)), ((150, 300), (128, 130))]
    dtypes = ("bfloat16", "float32", "float16")
    for dtype, ((rows, cols), batches) in itertools.product(dtypes, cases):
        w = weight((rows, cols), FLOATS[dtype], 0.4, 2, (n, m) if "nm" in config["id"] else None)
        frame = encode(config, w)
        for batch in batches:
            x = np.random.default_rng(batch).standard_normal((batch, cols)).astype(np.float32)
            y_scalar, _ = product(frame, x, level="scalar")
            for level, threads in itertools.product(SIMD_LEVELS, (1, 3) if rows > 32 else (1,)):
                y_simd, _ = product(frame, x, threads, level)
                np.testing.assert_array_equal(bits(y_simd), bits(y_scalar),
                                              err_msg=f"{batch} {level} {threads}")
            assert_close(y_scalar, *reference(x, w))


@AVX2
@pytest.mark.parametrize("config", [{"id": "bitmask"}, {"id": "hybrid", "layout": "bitmask"}],
                         ids=["bitmask", "hybrid-bitmask"])
@pytest.mark.parametrize("dtype", [*sorted(FLOATS), "int8"])
def test_bitmask_gemv_twins_write_the_same_bytes(config, dtype):
    # an odd number of mask bytes a row (72, 8, 40, 1032 columns: the last byte alone), rows
    # of 129 bytes; every SIMD level (batch 1 has an AVX-512 build, bfloat16 widened in it);
    # batches 4-24 four columns of x at a time, the rest one by one (13: three fours and one)
    dt = np.dtype(np.int8) if dtype == "int8" else FLOATS[dtype]
    for shape, density in [((5, 64), 0.5), ((3, 72), 0.9), ((4, 8), 0.3), ((2, 16), 0.0),
                           ((6, 40), 1.0), ((7, 1032), 0.5), ((3, 1032), 0.97)]:
        w = weight(shape, dt, density, 4)
        frame = encode(config, w)
        for batch in (1, 2, 5, 8, 13, 24):
            x = np.random.default_rng(batch).standard_normal((batch, shape[1])).astype(np.float32)
            y_scalar, _ = product(frame, x, level="scalar")
            for level in SIMD_LEVELS:
                y_simd, paths = product(frame, x, level=level)
                # (hybrid may pick a non-zero fill on some of these, then its path is "decoded")
                assert config["id"] == "hybrid" or paths == ["bitmask:bitmask"]
                np.testing.assert_array_equal(bits(y_simd), bits(y_scalar),
                                              err_msg=f"{shape} {batch} {level}")
            assert_close(y_scalar, *reference(x, w))


@pytest.mark.parametrize("dtype", sorted(FLOATS))
def test_a_two_four_bitmask_takes_the_2_4_kernels(dtype):
    """A bitmask (and hybrid's bitmask layout) whose every group of four keeps exactly two is
    multiplied by the 2:4 kernels at every batch (the GEMV, the SpMM at batch 5-8 and from
    batch 9, the pair products on a bfloat16 x), on the same kept values: the same bytes as the
    nm frame of that weight, at every level. One group of three, a fill, or rows that are not
    whole groups keep the bitmask's kernels."""
    from sparsecodecs.codecs import _kernels

    w = weight((37, 1104), FLOATS[dtype], 1.0, 3, (2, 4))
    kept = w.reshape(-1, 4).view(f"u{w.itemsize}") != 0  # (bit patterns: -0.0 is kept)
    assert (kept.sum(axis=1) == 2).all()
    nm = encode({"id": "nm"}, w)
    for config in ({"id": "bitmask"}, {"id": "hybrid", "layout": "bitmask"}):
        frame = encode(config, w)
        for batch, xdt in itertools.product((1, 3, 8, 9, 16, 33), (np.float32, BF16)):
            x = np.random.default_rng(batch).standard_normal((batch, 1104)).astype(xdt)
            for level in ["scalar", *SIMD_LEVELS]:
                want, _ = product(nm, x, level=level)
                got, paths = product(frame, x, level=level)
                assert paths == [f"{config['id']}:nm"], paths
                np.testing.assert_array_equal(bits(got), bits(want),
                                              err_msg=f"{batch} {xdt} {level}")
    three = w.copy()
    three[5, 0:4] = 1  # a group of four kept
    x9 = np.ones((9, 1104), np.float32)
    for x in (x9[:1], x9):
        assert product(encode({"id": "bitmask"}, three), x)[1] == ["bitmask:bitmask"]
    odd = weight((6, 42), FLOATS[dtype], 1.0, 3, (2, 4))  # 42 columns: a row ends mid-group
    assert product(encode({"id": "bitmask"}, odd), np.ones((1, 42), np.float32))[1] == [
        "bitmask:bitmask"]
    # the compiled mapping, and a group of one or three refused wherever it lies
    mask = np.packbits(np.tile([1, 1, 0, 0, 0, 1, 0, 1], 40).astype(np.uint8), bitorder="little")
    out = np.empty(80, np.uint8)
    assert _kernels.mask_codes24(mask, 80, out) and set(out) == {0, 4}
    for g in (0, 33, 79):
        bad = np.unpackbits(mask, bitorder="little")
        bad[4 * g] ^= 1  # one or three kept
        assert not _kernels.mask_codes24(np.packbits(bad, bitorder="little"), 80, out)


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_bitmask_gemv_reads_nothing_past_its_sections(monkeypatch, dtype):
    """The mask and the values handed to the kernel end where an inaccessible page starts,
    the last row's last columns kept: a load past the last value (the AVX-512 level at batch 1
    loads bfloat16 values 16 lanes at a time, masked to the ones kept) crashes instead of
    passing unseen."""
    from sparsecodecs.compute import products
    from test_huffman import guarded

    real = products.kn.mask_matmul
    calls: list[int] = []

    def at_page_ends(*args: Any) -> int:
        moved = [guarded(np.asarray(a).tobytes()).view(np.asarray(a).dtype) if i in (0, 3)
                 else a for i, a in enumerate(args)]
        calls.append(1)
        return int(real(*moved))

    levels = ["scalar", *SIMD_LEVELS]
    for shape in [(3, 64), (5, 72), (2, 1032)]:
        w = weight(shape, FLOATS[dtype], 0.5, 5)
        w[-1, -3:] = 1  # the last values are the last columns' (a masked load must stop there)
        frame = encode({"id": "bitmask"}, w)
        x = np.random.default_rng(1).standard_normal((1, shape[1])).astype(np.float32)
        for level in levels:
            with use_simd(level):
                want = sc.matmul(x, frame)
                with monkeypatch.context() as m:
                    m.setattr(products.kn, "mask_matmul", at_page_ends)
                    got = sc.matmul(x, frame)
            np.testing.assert_array_equal(bits(got), bits(want), err_msg=f"{shape} {level}")
    assert len(calls) == 3 * len(levels)  # every product ran the kernel


@AVX2
@pytest.mark.parametrize("config", [{"id": "raw"}, {"id": "hybrid", "layout": "dense"}],
                         ids=["raw", "hybrid-dense"])
def test_dense_bfloat16_gemv_twins_write_the_same_bytes(config):
    """A dense bfloat16 weight at batch 1-16 (the generic path) takes the compiled GEMV: at
    AVX2 the scalar twin's bytes, rows of every length mod 16 (the last columns from padded
    copies), four columns of x at a time and the rest one by one (batch 13: three fours and
    one), whatever the thread count; batch 17 takes BLAS."""
    for cols in (1, 7, 8, 15, 16, 17, 40, 300, 1031):
        w = weight((9, cols), BF16, 1.0, cols)
        frame = encode(config, w)
        for batch in (1, 2, 5, 13, 16, 17):
            x = np.random.default_rng(cols).standard_normal((batch, cols)).astype(np.float32)
            y_scalar, paths = product(frame, x, level="scalar")
            assert paths == [f"{config['id']}:dense"]
            for level, threads in itertools.product(SIMD_LEVELS, (1, 4)):
                y_simd, _ = product(frame, x, threads, level)
                np.testing.assert_array_equal(bits(y_simd), bits(y_scalar),
                                              err_msg=f"{cols} {batch} {level} {threads}")
            assert_close(y_scalar, *reference(x, w))


def test_the_dense_gemv_checks_its_arguments():
    from sparsecodecs.kernels import _native

    w, x, y = np.zeros(12, np.uint16), np.zeros(4, np.float32), np.zeros(3, np.float32)
    assert _native.dense_matmul(w, 3, 4, x, y, 1) == 3
    assert _native.dense_matmul(w, 3, 4, np.zeros(8, np.float32), np.zeros(6, np.float32), 1) == 3
    for rows, cols, xs, ys in [(3, 5, 4, 3), (4, 4, 4, 3), (3, 4, 5, 3), (3, 4, 4, 4),
                               (-1, 4, 4, 3), (2**40, 2**40, 4, 3), (3, 0, 4, 3),
                               (3, 4, 4 * 17, 3 * 17)]:
        with pytest.raises(ValueError, match="do not fit"):
            _native.dense_matmul(w, rows, cols, np.zeros(xs, np.float32),
                                 np.zeros(ys, np.float32), 1)


@pytest.mark.parametrize("config", [{"id": "nm"}, {"id": "nm", "n": 4, "m": 8},
                                    {"id": "bitmask"}, {"id": "csr"}, {"id": "csc"}],
                         ids=lambda c: "-".join(map(str, c.values())))
def test_threads_do_not_change_a_bit(config):
    pattern = (config.get("n", 2), config.get("m", 4)) if config["id"] == "nm" else None
    w = weight((37, 72), FLOATS["bfloat16"], 0.5, 3, pattern)
    frame = encode(config, w)
    layer = sc.CompressedLinear.from_array(w, sc.get_codec(config), block_rows=16)
    for batch in (1, 3, 8, 20):
        x = np.random.default_rng(batch).standard_normal((batch, 72)).astype(np.float32)
        one = sc.matmul(x, frame)
        assert_close(one, *reference(x, w))
        for threads in (2, 3, 64):
            np.testing.assert_array_equal(bits(sc.matmul(x, frame, threads=threads)), bits(one))
            np.testing.assert_array_equal(bits(layer(x, threads=threads)), bits(layer(x)))


def test_threads_is_checked():
    frame = encode({"id": "nm"}, np.zeros((4, 8), np.float32))
    with pytest.raises(sc.SparseCodecsError, match="threads"):
        sc.matmul(np.ones(8), frame, threads=0)


# -- non-finite values: IEEE, as the dense product ---------------------------------------------


def dense_ieee(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x @ W.T with every product formed (no BLAS shortcut past zeros), in float64."""
    x64, w64 = x.astype(np.float64), w.astype(np.float32).astype(np.float64)
    with np.errstate(all="ignore"):
        return (x64[:, None, :] * w64[None, :, :]).sum(axis=-1)


def assert_ieee(y: np.ndarray, x: np.ndarray, w: np.ndarray) -> None:
    ref = dense_ieee(x, w)
    y64 = y.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(y64), np.isnan(ref), err_msg="NaN where")
    np.testing.assert_array_equal(np.isinf(y64), np.isinf(ref), err_msg="inf where")
    np.testing.assert_array_equal(y64[np.isinf(ref)], ref[np.isinf(ref)], err_msg="inf signs")
    fin = np.isfinite(ref)
    finite_x = np.where(np.isfinite(x), x, 0).astype(np.float32)
    _, tol = reference(finite_x, np.where(np.isfinite(w.astype(np.float32)), w, 0))
    assert (np.abs(y64[fin] - ref[fin]) <= tol[fin] + 1e-30).all()


def non_finite_x(batch: int, cols: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, cols)).astype(np.float32)
    x[0, cols // 3] = np.inf
    if batch > 1:
        x[1, cols // 2] = -np.inf
        x[1, 1] = np.nan
    if batch > 2:
        x[2, :] = 0.0
    return x


@pytest.mark.parametrize(("config", "path", "pattern"), CODECS, ids=CODEC_IDS)
def test_non_finite_x_gives_what_the_dense_product_gives(config, path, pattern):
    for dtype in ("bfloat16", "float16", "float32"):
        w = weight((11, 40), FLOATS[dtype], 0.4, 7, pattern)
        frame = encode(config, w)
        for batch in (1, 3, 9):
            x = non_finite_x(batch, 40, batch)
            stats = sc.MatmulStats()
            y = sc.matmul(x, frame, stats=stats)
            assert stats.paths == [f"{config['id']}:{path.split('|')[-1]}"]  # never fused
            assert_ieee(y, x, w)
            xb = x.astype(BF16)  # batch 9 of 2:4 bfloat16: the pair products
            assert_ieee(sc.matmul(xb, frame), xb.astype(np.float32), w)
            # the other direction: x @ W, through a layer of row blocks
            layer = sc.CompressedLinear.from_array(w, sc.get_codec(config), block_rows=4)
            xo = non_finite_x(batch, 11, batch + 1)
            assert_ieee(xo @ layer, xo, w.T)


@pytest.mark.parametrize(("config", "path", "pattern"), CODECS, ids=CODEC_IDS)
def test_non_finite_weights_give_what_the_dense_product_gives(config, path, pattern):
    for dtype in ("bfloat16", "float16", "float32"):
        w = weight((11, 40), FLOATS[dtype], 0.4, 8, pattern)
        kept = np.flatnonzero(w.reshape(-1))
        flat = w.reshape(-1)
        flat[kept[:3]] = [np.inf, -np.inf, np.nan]
        frame = encode(config, w)
        for batch in (1, 4, 8):
            x = np.random.default_rng(batch).standard_normal((batch, 40)).astype(np.float32)
            x[0, 5] = 0.0  # inf * 0 somewhere, perhaps
            x[-1, :] = 0.0
            assert_ieee(sc.matmul(x, frame), x, w)
            xi = non_finite_x(batch, 40, batch)
            assert_ieee(sc.matmul(xi, frame), xi, w)
            xb = xi.astype(BF16)  # batch 8 of 2:4 bfloat16: the pair products
            assert_ieee(sc.matmul(xb, frame), xb.astype(np.float32), w)


def test_the_issue_example():
    """x = [inf, 1] times W = [[1, 0], [0, 2]] gives [inf, nan] with every codec."""
    w = np.array([[1.0, 0.0], [0.0, 2.0]], np.float32)
    x = np.array([np.inf, 1.0], np.float32)
    for config in ({"id": "raw"}, {"id": "bitmask"}, {"id": "csr"}, {"id": "csc"},
                   {"id": "hybrid"}, {"id": "nm", "n": 1, "m": 2}):
        y = sc.matmul(x, encode(config, w))
        assert y[0] == np.inf and np.isnan(y[1]), config


# -- hostile frames --------------------------------------------------------------------------


def _seeds() -> list[bytes]:
    rng = np.random.default_rng(0)
    out = []
    for config, _, pattern in CODECS:
        for dtype in ("bfloat16", "float32"):
            w = weight((6, 12), FLOATS[dtype], 0.5, int(rng.integers(1 << 16)), pattern)
            out.append(encode(config, w))
    return out


SEEDS = _seeds()


@settings(max_examples=examples(300))
@given(hostile_frames(SEEDS))
def test_hostile_frames_raise_library_errors_and_warn_nothing(mutation: Any):
    x = np.random.default_rng(0).standard_normal((3, 12)).astype(np.float32)
    x[1, 2] = np.inf
    x8 = np.random.default_rng(1).standard_normal((8, 12)).astype(BF16)  # 2:4 pair products
    x13 = np.random.default_rng(2).standard_normal((13, 12)).astype(np.float32)  # SpMM, 16 lanes
    x33 = np.random.default_rng(3).standard_normal((33, 12)).astype(np.float32)  # 64 lanes
    for f in (lambda: sc.matmul(x, mutation.frame),
              lambda: sc.matmul(x[0], mutation.frame, threads=2),
              lambda: sc.matmul(x8, mutation.frame, threads=2),
              lambda: sc.matmul(x13, mutation.frame),
              lambda: sc.matmul(x33, mutation.frame, threads=2),
              lambda: sc.CompressedLinear([mutation.frame]).__rmatmul__(x[:, :6])):
        with contextlib.suppress(sc.SparseCodecsError):
            f()


#: tests/fuzz/run_products.py, and every third of its seed weights (64 frames).
PRODUCTS_RUNNER = _load("run_products")
PRODUCT_SEEDS = PRODUCTS_RUNNER.seed_weights()[::3]


@settings(max_examples=examples(120), deadline=None)
@given(hostile_frames(PRODUCT_SEEDS))
def test_hostile_frames_multiply_as_they_decode(mutation: Any):
    """The product runner's check on hostile frames of product-sized weights (rows of more than
    one SpMM block, of several column blocks): a frame decode refuses is refused, one it accepts
    multiplies as its decoded weight does, at every batch kernel and thread count."""
    _, problems = PRODUCTS_RUNNER.check(mutation.frame)
    assert not problems, (mutation.description, problems)


# -- bfloat16 x on 2:4 bfloat16 weights: pair products ----------------------------------------


def pair_chains(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The documented order, in numpy: each output lane one float32 chain over the row's groups,
    each group's second kept value's product first, then its first's (a product of two
    bfloat16 values is exact in float32, so ``acc + p`` rounds as the fused multiply-add does);
    results under 2**-126 flushed (data here never comes near the tie the C twin decides)."""
    rows, cols = w.shape
    w32 = np.zeros((rows, -(-cols // 4) * 4), np.float32)
    w32[:, :cols] = w.astype(np.float32)
    x32 = np.zeros((x.shape[0], w32.shape[1]), np.float32)
    x32[:, :cols] = x.astype(np.float32)
    acc = np.zeros((x.shape[0], rows), np.float32)
    with np.errstate(all="ignore"):
        for g in range(w32.shape[1] // 4):
            grp = w32[:, 4 * g:4 * g + 4]
            kept = np.argsort(grp == 0, axis=1, kind="stable")[:, :2]  # first two non-zeros
            kept.sort(axis=1)
            for t in (1, 0):
                col = 4 * g + kept[:, t]
                acc = acc + x32[:, col] * w32[np.arange(rows), col][None, :]
                acc[np.abs(acc) < np.float32(2.0**-126)] = 0
    return acc


@pytest.mark.parametrize("config", NM_FORMS, ids=lambda c: "-".join(map(str, c.values())))
@pytest.mark.parametrize("shape", [(5, 64), (7, 37), (130, 1102), (20, 512)])
def test_bfloat16_x_takes_pair_products_the_same_bytes_on_every_path(config, shape):
    """x of dtype bfloat16 on a 2:4 bfloat16 weight from batch 5: the scalar twin, the AVX2 twin
    (FMAs under DAZ and FTZ) and, on a CPU with AVX512-BF16, vdpbf16ps write the same bytes, in
    the documented order (pair_chains), on 8-lane tables (batch 5-8), 16-lane vectors and 64-lane
    chunks (batch 100: two of them), with leftover rows one at a time and a padded last group;
    130 x 1102: three blocks of 64 rows (the last of 2), and from batch 33 several column
    blocks; batch 300 on the small weights: lanes in two tables of 256 and 44. Every metadata
    form of ``nm``, and ``hybrid``'s N:M layout (stored plain here; its values are decoded first
    whatever their stage)."""
    w = weight(shape, BF16, 0.9, 3, (2, 4))
    frame = encode(config, w)
    for batch in (5, 8, 9, 16, 33, 64, 100, *((300,) if shape[0] < 100 else ())):
        x = np.random.default_rng(batch).standard_normal((batch, shape[1])).astype(BF16)
        y_scalar, paths = product(frame, x, level="scalar")
        assert paths == [f"{config['id']}:nm"]
        np.testing.assert_array_equal(bits(y_scalar), bits(pair_chains(x, w)), err_msg=f"{batch}")
        kept, dense = sc.MatmulStats(), sc.MatmulStats()
        sc.matmul(x, frame, stats=kept)
        sc.matmul(x.astype(np.float32), frame, stats=dense)
        assert kept.macs == dense.macs  # kept values a lane, times the batch, once
        for level, threads in itertools.product(SIMD_LEVELS, (1, 3)):
            y_simd, _ = product(frame, x, threads, level)
            np.testing.assert_array_equal(bits(y_simd), bits(y_scalar),
                                          err_msg=f"{batch} {level} {threads}")


#: (w's four columns, x's four columns, the expected result): each checked on every path, as
#: vdpbf16ps computes it (tried on the hardware). Column 3 (the pair's high half) goes first.
TINY_CASES = {
    # 2**-126, then - 2**-151: halfway between 2**-126 and 2**-126 - 2**-150 (the 24-bit grid
    # just under it), rounded to even: 2**-126, a normal
    "tie-under-normal": ([0, 2.0**-75, 0, 2.0**-63], [1, -(2.0**-76), 1, 2.0**-63], 2.0**-126),
    # - 1.5 * 2**-151: rounds to 2**-126 - 2**-150 on that grid: tiny, 0 (fmaf alone: 2**-126)
    "just-tiny": ([0, 1.5 * 2.0**-76, 0, 2.0**-63], [1, -(2.0**-75), 1, 2.0**-63], 0.0),
    # - 2**-150: exactly 2**-126 - 2**-150, tiny
    "exactly-tiny": ([0, 2.0**-75, 0, 2.0**-63], [1, -(2.0**-75), 1, 2.0**-63], 0.0),
    # a subnormal weight reads as zero (else 2**-33)
    "subnormal-weight": ([0, 0, 0, 2.0**-133], [1, 1, 1, 2.0**100], 0.0),
    # a subnormal x reads as zero
    "subnormal-x": ([0, 0, 0, 2.0**100], [1, 1, 1, 2.0**-133], 0.0),
    # a product under 2**-126 is not flushed on its own: 2**-120 + 2**-140 is exact
    "fused-tiny-product": ([0, 2.0**-70, 0, 2.0**-60], [1, 2.0**-70, 1, 2.0**-60],
                           2.0**-120 + 2.0**-140),
    # a result under 2**-126 is: 2**-130 -> 0
    "tiny-result": ([0, 0, 0, 2.0**-65], [1, 1, 1, 2.0**-65], 0.0),
}


@settings(max_examples=examples(60), deadline=None)
@given(rows=st.integers(1, 70), cols=st.integers(1, 300), batch=st.integers(5, 40),
       seed=st.integers(0, 2**16))
def test_bfloat16_pair_products_on_any_shape(rows: int, cols: int, batch: int, seed: int):
    """Any shape (rows and columns of 1 to 3, a padded last group, leftover rows of every
    count), batch 5-40, at every level and on 1 and 2 threads: the documented order."""
    w = weight((rows, cols), BF16, 0.9, seed, (2, 4))
    frame = encode({"id": "nm"}, w)
    x = np.random.default_rng(seed).standard_normal((batch, cols)).astype(BF16)
    want = bits(pair_chains(x, w))
    for level, threads in itertools.product(["scalar", *SIMD_LEVELS], (1, 2)):
        y, _ = product(frame, x, threads, level)
        np.testing.assert_array_equal(bits(y), want, err_msg=f"{level} {threads}")


@pytest.mark.parametrize("case", sorted(TINY_CASES))
@pytest.mark.parametrize("level", ["scalar", *SIMD_LEVELS])
def test_bfloat16_pair_products_flush_as_vdpbf16ps_does(case, level):
    wv, xv, want = TINY_CASES[case]
    w = np.array([wv], np.float32).astype(BF16)
    assert [float(v) for v in w[0]] == [float(v) for v in wv]  # every value a bfloat16
    x = np.tile(np.array(xv, np.float32).astype(BF16), (5, 1))
    y, _ = product(encode({"id": "nm"}, w), x, level=level)
    np.testing.assert_array_equal(bits(y), bits(np.full((5, 1), want, np.float32)))


@pytest.mark.parametrize("level", ["scalar", *SIMD_LEVELS])
def test_bfloat16_pairs_add_the_high_product_first(level):
    """Two groups: 1.0 from the first; then 2**-24 (the high half) and 2**-24 (1 + 2**-7). High
    first: 1 (a tie to even), then 1 + 2**-23. Low first would give 1 + 2**-22."""
    w = np.array([[1, 0, 0, 0, 0, 1.0 + 2.0**-7, 0, 1]], np.float32).astype(BF16)
    x = np.tile(np.array([1, 1, 1, 1, 1, 2.0**-24, 1, 2.0**-24], np.float32).astype(BF16), (6, 1))
    y, _ = product(encode({"id": "nm"}, w), x, level=level)
    np.testing.assert_array_equal(bits(y), bits(np.full((6, 1), 1 + 2.0**-23, np.float32)))


@pytest.mark.parametrize("level", ["scalar", *SIMD_LEVELS])
@pytest.mark.parametrize("shape", [(0, 5), (1, 1), (3, 17), (8, 8), (64, 100), (13, 4096),
                                   (240, 384), (23, 41)])
def test_the_tiled_transpose_copies_float32_and_widens_bfloat16(shape, level):
    """kernels.transpose (x.T for the products from batch 8, and their result back): 8x8 tiles
    (whole ones by AVX2 shuffles, at that level) with partial ones at both edges, float32 bits
    copied (NaN payloads too), bfloat16 widened."""
    from sparsecodecs.kernels import _native

    rng = np.random.default_rng(shape[0] * 7 + shape[1])
    bits32 = rng.integers(0, 2**32, shape, dtype=np.uint32)
    out = np.empty(shape[::-1], np.float32)
    with use_simd(level):
        _native.transpose(bits32.view(np.float32), out, *shape)
    np.testing.assert_array_equal(out.view(np.uint32), bits32.T)
    bits16 = rng.integers(0, 2**16, shape, dtype=np.uint16)
    with use_simd(level):
        _native.transpose(bits16, out, *shape)
    np.testing.assert_array_equal(out.view(np.uint32), bits16.T.astype(np.uint32) << 16)
    with pytest.raises(ValueError, match="rows x cols"):
        _native.transpose(bits16, out, shape[0] + 1, shape[1])
