"""Tables of 2**16 pattern counts read by their blocks in use (``TableBlocks``): every pass
that skips the blocks no value touched answers exactly what the pass over every bin answers,
and the tables a planner borrows are all zero again after every block, or flagged for their
next user to zero."""

from __future__ import annotations

import numpy as np
import pytest

from sparsecodecs import kernels
from sparsecodecs.codecs import _huffman_kernels as hk


def simd_levels() -> list[str]:
    """Every SIMD level this CPU runs, scalar first."""
    names = list(kernels.LEVELS)
    return names[: names.index(kernels.cpu_simd()) + 1]


def _values(seed: int) -> list[np.ndarray]:
    """16-bit patterns as planners see them: weights' few exponents of one sign and of both,
    2:4-style halves of zeros, every pattern, bins at the edges of blocks and of the table,
    counts past the entropy's table of c log2 c (4096), and none at all."""
    rng = np.random.default_rng(seed)
    weights = rng.integers(0x3C00, 0x3E80, 3000).astype(np.uint16)
    signed = np.concatenate([weights, weights | 0x8000])
    pruned = signed.copy()
    pruned[::2] = 0
    edges = np.array([0, 63, 64, 127, 0xFFC0, 0xFFFF, 0x8000, 0x7FFF] * 3, np.uint16)
    heavy = np.concatenate([np.full(5000, 0x3F80, np.uint16), rng.integers(0, 1 << 16, 600)
                            .astype(np.uint16)])
    peaked = np.concatenate([np.full(5000, 0x3F80, np.uint16), weights])  # marked, too
    return [weights, signed, pruned, edges, heavy, peaked,
            rng.integers(0, 1 << 16, 70000).astype(np.uint16), np.zeros(0, np.uint16),
            np.zeros(700, np.uint16)]


def _table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    buf = np.zeros((1 << 16) + 128, np.int64)
    return buf, buf[: 1 << 16], buf[1 << 16 :].view(np.uint8)


@pytest.mark.parametrize("seed", [0, 1])
def test_block_passes_answer_as_the_dense_ones(seed: int) -> None:
    """histogram_blocks16 counts as numpy does and marks exactly the values' blocks; inside a
    TableBlocks block, the entropy (bit for bit), the field and plane histograms at every
    rotation and top width, the mode and the bins in use equal those of the same counts
    without blocks, at every SIMD level; on leaving, the map is all zero, and the table too
    where it was marked as counted."""
    for values in _values(seed):
        _, table, blocks = _table()
        for level in simd_levels():
            with kernels.use_simd(level):
                marked = hk.histogram_blocks16(values, table, blocks)
                np.testing.assert_array_equal(table, np.bincount(values, minlength=1 << 16))
                want_blocks = np.zeros(1024, np.uint8)
                want_blocks[values >> 6] = 1
                # marked as counted up to 2**16 values in a quarter of the blocks; past that,
                # the same map read off the counts
                assert marked == (values.size <= 1 << 16 and want_blocks.sum() <= 256)
                np.testing.assert_array_equal(blocks, want_blocks)
                dense = table.copy()
                with hk.TableBlocks(table, blocks, clear=marked) as counts:
                    assert counts is table
                    assert hk.entropy_bits(table) == hk.entropy_bits(dense)
                    assert hk.argmax_counts(table) == int(np.argmax(dense))
                    np.testing.assert_array_equal(hk.used_bins(table), np.flatnonzero(dense))
                    for rotate in (0, 1, 15):
                        for top in (8, 12, 16):
                            got = hk.value_histograms16_counts(table, rotate, top)
                            want = hk.value_histograms16_counts(dense, rotate, top)
                            for g, w in zip(got, want, strict=True):
                                np.testing.assert_array_equal(g, w)
                assert not blocks.any() and (not marked or not table.any()), values.size
                table[:] = 0


def test_blocks_are_marked_as_counted_up_to_a_quarter_of_them() -> None:
    """Values in 256 blocks are marked as they are counted, in 257 are not, whether the 257th
    comes in the first chunk of 4096 values or a later one, and 2**16 values are, one more
    not; either way every value is counted and the map is that of the counts."""
    rng = np.random.default_rng(3)
    quarter = (np.arange(256, dtype=np.uint16) * 256 + 5).astype(np.uint16)
    for values, mapped in ((quarter, True), (np.append(quarter, np.uint16(70)), False),
                           (np.concatenate([np.tile(quarter, 40), [70]]).astype(np.uint16), False),
                           (np.tile(quarter, 40), True),
                           (np.tile(quarter, 256), True), (np.tile(quarter, 257), False),
                           (rng.permutation(np.tile(quarter, 40)), True)):
        _, table, blocks = _table()
        assert hk.histogram_blocks16(values, table, blocks) is mapped, values.size
        np.testing.assert_array_equal(table, np.bincount(values, minlength=1 << 16))
        np.testing.assert_array_equal(np.flatnonzero(blocks), np.unique(values >> 6))


def test_mode_ties_and_taken_out_bins() -> None:
    """The mode is the first bin of the largest count, ties to the smaller bin, in any block;
    with every marked count taken to 0 (a fill's bin taken out while planned) it is bin 0,
    as numpy's argmax; bin 0's own count wins its ties."""
    for values in ([5, 9000, 9000, 5], [0x8000, 7, 0x8000, 7], [3, 3, 0, 0], [0xFFFF]):
        _, table, blocks = _table()
        v = np.array(values, np.uint16)
        hk.histogram_blocks16(v, table, blocks)
        with hk.TableBlocks(table, blocks):
            assert hk.argmax_counts(table) == int(np.argmax(np.bincount(v, minlength=1 << 16)))
            kept = table.copy()
            table[:] = 0
            assert hk.argmax_counts(table) == 0
            assert hk.entropy_bits(table) == (0.0, 0)
            assert hk.used_bins(table).size == 0
            table[:] = kept


def test_a_block_that_raises_leaves_its_table_as_it_was() -> None:
    """An error inside the block unregisters the table and does not clear it (its owner drops
    it: it may hold counts outside the marked blocks)."""
    _, table, blocks = _table()
    hk.histogram_blocks16(np.array([1, 2, 70], np.uint16), table, blocks)
    with pytest.raises(RuntimeError), hk.TableBlocks(table, blocks):
        raise RuntimeError
    assert table[[1, 2, 70]].tolist() == [1, 1, 1] and blocks[:2].tolist() == [1, 1]
    assert not hk._BLOCKS


def test_block_kernels_refuse_other_shapes() -> None:
    """A table not of 2**16 counts, a map not of 1024 blocks, or an output without room for
    the marked blocks' bins: ValueError, nothing read or written past them."""
    from sparsecodecs.kernels import _native

    _, table, blocks = _table()
    for bad_table, bad_blocks in ((table[:-1], blocks), (table, blocks[:-1]),
                                  (np.zeros(1 << 17, np.int64), blocks)):
        with pytest.raises(ValueError, match="1024 blocks"):
            _native.huf_clear_blocks(bad_table, bad_blocks)
        with pytest.raises(ValueError, match="1024 blocks"):
            _native.huf_entropy_bits_blocks(bad_table, bad_blocks)
        with pytest.raises(ValueError, match="1024 blocks"):
            _native.huf_argmax_blocks(bad_table, bad_blocks)
        with pytest.raises(ValueError, match="1024 blocks"):
            _native.huf_histogram_blocks16(np.zeros(3, np.uint16), bad_table, bad_blocks, 0)
    blocks[[3, 9]] = 1
    with pytest.raises(ValueError, match="room"):
        _native.huf_used_bins(table, blocks, np.empty(127, np.int64))
    assert _native.huf_used_bins(table, blocks, np.empty(128, np.int64)) == 0
    with pytest.raises(ValueError, match="rotate"):
        _native.huf_value_histograms16_blocks(table, blocks, 16, 12, np.zeros(512, np.int64),
                                              np.zeros(4096, np.int64))


def test_lent_tables_are_all_zero_after_every_encode() -> None:
    """After encodes of 16-bit tensors whose planning counts patterns (dense, pruned, rows with
    a mode, a scalar mode, clustered, 2:4; tables mapped and not), every table this thread
    keeps has its map all zero and, unless flagged as holding counts, is all zero itself, and
    none stays registered: fails if a pass writes a bin outside the marked blocks or a table
    goes back uncleared and unflagged."""
    import ml_dtypes

    import sparsecodecs as sc
    from sparsecodecs.codecs._stages import _TABLES16

    rng = np.random.default_rng(7)
    hybrid = sc.get_codec("hybrid")
    w = (rng.standard_normal((96, 100)) * 0.05).astype(np.float32)
    pruned = w.copy()
    pruned.reshape(-1, 4)[:, :2] = 0
    moded = w.copy()
    moded[:, ::3] = w[:, :1]  # each row's own mode
    scalar = w.copy()
    scalar.reshape(-1)[::2] = 0.125  # one mode for the tensor
    clustered = rng.choice(w.reshape(-1)[:16], w.shape)
    for dt in (ml_dtypes.bfloat16, np.float16):
        for x in (w, pruned, moded, scalar, clustered):
            a = x.astype(dt)
            frame = hybrid.encode(a)
            assert sc.decode(frame).tobytes() == a.tobytes()
    kept = _TABLES16.__dict__.get("free", [])
    assert kept, "no table was lent"
    for entry in kept:  # the map always clear; the table too unless flagged dirty
        assert not entry.blocks.any()
        assert entry.dirty or not entry.table.any()
    assert not hk._BLOCKS


def test_lent_tables_a_block_that_raises_drops_its_table() -> None:
    """A 16-bit table whose block raised is not kept (it may hold counts outside its map), one
    that did not is, up to three, and nested blocks get different tables."""
    from sparsecodecs.codecs._stages import _TABLES16, lent_value_counts

    free = _TABLES16.__dict__.setdefault("free", [])
    free.clear()
    v = np.arange(100, dtype=np.uint16)
    with pytest.raises(KeyError), lent_value_counts(v) as t:
        assert t is not None and t[5] == 1
        raise KeyError("x")
    assert free == [] and not hk._BLOCKS
    with lent_value_counts(v) as a, lent_value_counts(v[:7]) as b:
        assert a is not None and b is not None and a is not b
        assert a.sum() == 100 and b.sum() == 7
    assert len(free) == 2 and not hk._BLOCKS
    for _ in range(5):
        with lent_value_counts(v), lent_value_counts(v), lent_value_counts(v), \
                lent_value_counts(v):
            pass
    assert len(free) == 3
