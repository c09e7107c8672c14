"""``plan16``: one compiled call for what a planner of 16-bit values asks of their counts (the
plane and field histograms, every plan's coded sizes, the rotation's two questions, the
entropy, the unrotated top bytes' histogram and coded size), answering exactly what the
separate calls answer, at every SIMD level, with the table read whole or by its blocks in
use; and ``stages_floor16``, the same for the stage floors of a candidate's kept values."""

from __future__ import annotations

from collections.abc import Iterator

import ml_dtypes
import numpy as np
import pytest

from sparsecodecs import kernels
from sparsecodecs.codecs import _huffman as huff
from sparsecodecs.codecs import _huffman_kernels as hk
from sparsecodecs.codecs._hybrid_plan import IDLE_TOP_PLANE, _sign_constant, _top_plane_idle
from sparsecodecs.codecs._stages import (
    MAX_TOP_BITS,
    _entropy_bytes,
    _low_words,
    rotation,
    stages_floor,
)
from sparsecodecs.kernels import _native


def simd_levels() -> list[str]:
    names = list(kernels.LEVELS)
    return names[: names.index(kernels.cpu_simd()) + 1]


def _patterns(seed: int) -> list[np.ndarray]:
    """Weights of one sign and of both (float16 and bfloat16 exponents), with half of them
    zeros, subnormal-like values whose top byte idles, a few values, one pattern, every
    pattern, many distinct (more top fields than short codes), and none."""
    rng = np.random.default_rng(seed)
    half = rng.integers(0x3000, 0x3C00, 4000).astype(np.uint16)
    bf = rng.integers(0x3C00, 0x3E80, 3000).astype(np.uint16)
    both = np.concatenate([half, half[:1500] | 0x8000])
    pruned = both.copy()
    pruned[::2] = 0
    idle = rng.integers(0, 0x80, 5000).astype(np.uint16)
    idle[:200] |= 0x8000
    return [half, bf, both, pruned, idle, half[:7], np.full(300, 0x3C00, np.uint16),
            rng.integers(0, 1 << 16, 20000).astype(np.uint16),
            np.arange(1 << 16, dtype=np.uint16), np.zeros(0, np.uint16)]


def _separate(counts: np.ndarray, rotate: int, top: int, limit: int, count: int) -> tuple:
    """The answers of the calls plan16 stands for, as the planner made them."""
    planes, fine = hk.value_histograms16_counts(counts, rotate, top)
    upper = counts.reshape(256, 256).sum(axis=1)
    lows = [8 * _low_words(count, 16 - t) for t in range(top, 8, -1)]
    return (planes, fine, huff.coded_sizes(planes, limit) + huff.coded_sizes(
        fine.reshape(1, -1), limit, levels=top - 8, extra=lows),
        _sign_constant(np.zeros(0, np.uint16), planes), _top_plane_idle(planes, count),
        hk.entropy_bits(counts),
        # the top bytes unrotated (a float's sign on top) and their coded size: asked of a
        # float's rotation
        upper if rotate == 1 else np.zeros(256, np.int64),
        huff.coded_sizes(upper.reshape(1, -1), limit)[0] if rotate == 1 else -1)


def _each_table(seed: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Each pattern's values, their counts and an all-zero table with its map of blocks, at
    each SIMD level (set while the caller runs)."""
    for values in _patterns(seed):
        counts = np.bincount(values, minlength=1 << 16).astype(np.int64)
        buf = np.zeros((1 << 16) + 128, np.int64)
        table, blocks = buf[: 1 << 16], buf[1 << 16:].view(np.uint8)
        for level in simd_levels():
            with kernels.use_simd(level):
                yield values, counts, table, blocks


@pytest.mark.parametrize("seed", [0, 1])
def test_plan16_answers_as_the_separate_calls(seed: int) -> None:
    for values, counts, table, blocks in _each_table(seed):
        for rotate in (1, 0):
            for top, limit in ((MAX_TOP_BITS, 15), (MAX_TOP_BITS, 9), (9, 15), (16, 15)):
                want = _separate(counts, rotate, top, limit, values.size)
                got = hk.plan16(counts, rotate, top, limit, values.size, IDLE_TOP_PLANE, True)
                _same(got, want)
                assert hk.plan16(counts, rotate, top, limit, values.size, IDLE_TOP_PLANE,
                                 False)[5:7] == (-1.0, -1)
                # the same table read by its blocks in use
                hk.histogram_blocks16(values, table, blocks)
                with hk.TableBlocks(table, blocks):
                    _same(hk.plan16(table, rotate, top, limit, values.size, IDLE_TOP_PLANE,
                                    True), want)
                assert not table.any() and not blocks.any()


def _same(got: tuple, want: tuple) -> None:
    planes, fine, sizes, sign, idle, bits, used, upper, upper_size = got
    np.testing.assert_array_equal(planes, want[0])
    np.testing.assert_array_equal(fine, want[1])
    assert sizes == want[2]
    assert (sign, idle) == (want[3], want[4])
    assert (bits, used) == want[5]  # bit for bit: the same sums in the same order
    np.testing.assert_array_equal(upper, want[6])
    assert upper_size == want[7]


def test_plan16_idle_threshold_and_no_values() -> None:
    """The idle question at its threshold exactly (a top byte of 9 of 10 values at 0.9: idle;
    8 of 10: not), and no values at all (never idle, the sign constant)."""
    counts = np.zeros(1 << 16, np.int64)
    counts[0x0001] = 9  # rotated left by 1: 0x0002, top byte 0
    counts[0x4000] = 1
    assert hk.plan16(counts, 1, 12, 15, 10, 0.9, False)[4]
    counts[0x0001], counts[0x4001] = 8, 1
    assert not hk.plan16(counts, 1, 12, 15, 10, 0.9, False)[4]
    empty = hk.plan16(np.zeros(1 << 16, np.int64), 1, 12, 15, 0, 0.9, True)
    assert empty[3:7] == (True, False, 0.0, 0)


def test_plan16_refuses_what_it_cannot_read() -> None:
    counts = np.zeros(1 << 16, np.int64)
    planes, fine, sizes = np.empty((2, 256), np.int64), np.empty(4096, np.int64), np.empty(6,
                                                                                        np.int64)
    upper = np.empty(256, np.int64)

    def call(*args: object) -> None:
        _native.huf_plan16(*args)

    with pytest.raises(ValueError, match="2\\*\\*16"):
        call(counts[:100], None, 1, 12, 15, 10, 0.9, planes, fine, sizes, 1, upper)
    with pytest.raises(ValueError, match="need planes"):
        call(counts, None, 1, 12, 15, 10, 0.9, planes, fine[:100], sizes, 1, upper)
    with pytest.raises(ValueError, match="need planes"):
        call(counts, None, 1, 12, 15, 10, 0.9, planes, fine, sizes[:5], 1, upper)
    with pytest.raises(ValueError, match="upper of 256"):
        call(counts, None, 1, 12, 15, 10, 0.9, planes, fine, sizes, 1, upper[:255])
    with pytest.raises(ValueError, match="need rotate"):
        call(counts, None, 16, 12, 15, 10, 0.9, planes, fine, sizes, 1, upper)
    with pytest.raises(ValueError, match="need rotate"):
        call(counts, None, 1, 8, 15, 10, 0.9, planes, fine, sizes, 1, upper)
    with pytest.raises(ValueError, match="1024 blocks"):
        call(counts, np.zeros(10, np.uint8), 1, 12, 15, 10, 0.9, planes, fine, sizes, 1, upper)
    bad = counts.copy()
    bad[5] = -1
    with pytest.raises(ValueError, match="negative"):
        call(bad, None, 1, 12, 15, 10, 0.9, planes, fine, sizes, 1, upper)
    with pytest.raises(TypeError):
        call(counts, None, 1, 12, 15, 10, "x", planes, fine, sizes, 1, upper)


def _stages_floor_bits(counts: np.ndarray, rotate: int, top: int, count: int) -> tuple:
    """What stages_floor16 stands for, by the separate calls (stages_floor's earlier body)."""
    planes, fine = hk.value_histograms16_counts(counts, rotate, top)
    bits = sum(hk.entropy_bits(plane)[0] for plane in planes)
    for t in range(top, 8, -1):
        if t < top:
            fine = fine[0::2] + fine[1::2]
        bits = min(bits, hk.entropy_bits(fine)[0] + count * (16 - t))
    return (bits, *hk.entropy_bits(counts))


@pytest.mark.parametrize("seed", [0, 1])
def test_stages_floor16_answers_as_the_separate_calls(seed: int) -> None:
    """The same doubles, bit for bit, at every SIMD level, the table read whole or by its
    blocks in use (and stages_floor, which reads them, the same bytes)."""
    for values, counts, table, blocks in _each_table(seed):
        for rotate in (1, 0, 3):
            for top in (MAX_TOP_BITS, 9, 16):
                for count in (values.size, 3 * values.size + 1):
                    want = _stages_floor_bits(counts, rotate, top, count)
                    assert hk.stages_floor16(counts, rotate, top, count) == want
                    hk.histogram_blocks16(values, table, blocks)
                    with hk.TableBlocks(table, blocks):
                        assert hk.stages_floor16(table, rotate, top, count) == want
        for dtype in (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16)):
            bits, whole, used = _stages_floor_bits(counts, rotation(dtype), MAX_TOP_BITS,
                                                   values.size)
            assert stages_floor(counts, dtype, values.size) == min(
                _entropy_bytes(bits), used * 2 + _entropy_bytes(whole))


def test_stages_floor16_refuses_what_it_cannot_read() -> None:
    counts = np.zeros(1 << 16, np.int64)
    with pytest.raises(ValueError, match="2\\*\\*16"):
        _native.huf_stages_floor16(counts[:100], None, 1, 12, 10)
    with pytest.raises(ValueError, match="need rotate"):
        _native.huf_stages_floor16(counts, None, 16, 12, 10)
    with pytest.raises(ValueError, match="need rotate"):
        _native.huf_stages_floor16(counts, None, 1, 8, 10)
    with pytest.raises(ValueError, match="need rotate"):
        _native.huf_stages_floor16(counts, None, 1, 12, -1)
    with pytest.raises(ValueError, match="1024 blocks"):
        _native.huf_stages_floor16(counts, np.zeros(10, np.uint8), 1, 12, 10)
    bad = counts.copy()
    bad[5] = -1
    with pytest.raises(ValueError, match="negative"):
        _native.huf_stages_floor16(bad, None, 1, 12, 10)
