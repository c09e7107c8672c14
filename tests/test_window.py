"""The ``window`` codec: its layout, its fused product (kernels/compute.c) and the checks both
make on a frame. The conformance suite (tests/test_conformance.py) covers the round trip of
every dtype and shape; tests/test_compute.py the products against the float32 reference."""

from __future__ import annotations

import itertools
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sparsecodecs as sc
from sparsecodecs.codecs._common import pack_fields
from sparsecodecs.codecs._window import escape_index_dtype, pack_rows, unpack_rows
from sparsecodecs.compute.products import WINDOW_FUSED_BELOW
from sparsecodecs.kernels import LEVELS, cpu_simd, use_simd
from sparsecodecs.registry import FrameLayoutError, Section, read_frame
from sparsecodecs.registry.frame import write_frame
from sparsecodecs.testing import examples
from sparsecodecs.transforms import prune
from test_compute import assert_close, reference

BF16 = np.dtype(ml_dtypes.bfloat16)
AVX2 = pytest.mark.skipif(LEVELS[cpu_simd()] < LEVELS["avx2"], reason="the CPU has no AVX2")


def weight(shape: tuple[int, int], seed: int, spread: bool = False) -> np.ndarray:
    """A 2:4-pruned bfloat16 weight; ``spread``: magnitudes over 60 binades (many escapes)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(shape) * 0.05
    if spread:
        w *= 2.0 ** rng.integers(-30, 30, shape)
    return prune(w.astype(BF16), "2:4")[0]


def bits32(y: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(y).view(np.uint32)


def rebuilt(frame: bytes, **sections: np.ndarray) -> bytes:
    """``frame`` with the named sections replaced (and a valid checksum)."""
    parsed = read_frame(frame)
    new = [Section(s.name, s.role, sections.get(s.name, s.data)) for s in parsed.sections]
    return write_frame(parsed.codec_id, parsed.config, parsed.info.dtype, parsed.info.shape, new,
                       dict(parsed.info.meta))


def section(frame: bytes, name: str) -> np.ndarray:
    data = next(s.data for s in read_frame(frame).sections if s.name == name)
    return np.frombuffer(bytes(data), np.uint8).copy()


# -- the layout -------------------------------------------------------------------------------


@settings(max_examples=examples(50))
@given(rows=st.integers(0, 5), k=st.integers(0, 40), bits=st.sampled_from([3, 6]),
       seed=st.integers(0, 2**16))
def test_pack_rows_round_trips_and_pads_each_row(rows, k, bits, seed):
    fields = np.random.default_rng(seed).integers(0, 1 << bits, (rows, k)).astype(np.uint8)
    packed = pack_rows(fields, bits)
    assert packed.shape == (rows, -(-k * bits // 8))
    np.testing.assert_array_equal(unpack_rows(packed, bits, k, "x"), fields)
    if rows and k:  # LSB first: field 0 in the low bits of byte 0
        assert packed[0, 0] & ((1 << min(bits, 8)) - 1) == fields[0, 0]
    # the compiled packer (window_pack) against pack_fields on each row padded to 8 fields
    k8 = -(-k // 8) * 8
    padded = np.zeros((rows, k8), np.uint8)
    padded[:, :k] = fields
    for r in range(rows):
        want = pack_fields(padded[r], bits)[: -(-k * bits // 8)]
        np.testing.assert_array_equal(packed[r], want)
    if rows and k:
        wide = fields.copy()
        wide[-1, -1] = 1 << bits
        with pytest.raises(ValueError, match="wider"):
            pack_rows(wide, bits)


def test_bfloat16_2_4_takes_about_39_percent_and_pays_escapes_only_where_they_are():
    w = weight((256, 512), 0)
    frame = sc.get_codec("window").encode(w)
    report = sc.inspect(frame)
    sizes = {s.name: s.nbytes for s in report.sections}
    values = w.size // 2
    assert sizes["rest"] == values and sizes["exponents"] == values * 3 // 8
    assert sizes["pattern"] == w.size // 4 * 3 // 8
    assert len(frame) / w.nbytes < 0.40
    spread = sc.get_codec("window").encode(weight((256, 512), 0, spread=True))
    assert read_frame(spread).info.meta["window"] and len(spread) > len(frame) + values


def test_minus_zero_and_a_rare_exponent_need_no_escape_while_the_window_has_room():
    w = np.zeros((1, 8), BF16)
    w[0, ::2] = np.array([1.0, 2.0**-100, -0.0, 3.0], np.float32).astype(BF16)
    frame = sc.get_codec("window").encode(w)
    sizes = {s.name: s.nbytes for s in sc.inspect(frame).sections}
    # 4 kept values; -0.0 has exponent field 0 (code 7, no escape); 2**-100 is the 3rd exponent
    assert sizes["escapes"] == 0 and sizes["escaped"] == 0
    assert len(read_frame(frame).info.meta["window"]) == 3
    np.testing.assert_array_equal(sc.decode(frame).view(np.uint16), w.view(np.uint16))


def test_more_than_seven_exponents_escape_the_rarest():
    w = np.zeros((1, 40), np.float32)
    w[0, ::2] = 2.0 ** np.arange(20)  # 20 distinct exponents, once each
    w[0, 2] = 1.0  # then 2**0 twice: in the window, with the 6 lowest of the rest (ties)
    frame = sc.get_codec("window").encode(w.astype(BF16))
    sizes = {s.name: s.nbytes for s in sc.inspect(frame).sections}
    assert sizes["escapes"] == 12 and sizes["escaped"] == 12  # 2**8 .. 2**19
    assert read_frame(frame).info.meta["window"] == [127 + e for e in (0, 2, 3, 4, 5, 6, 7)]
    np.testing.assert_array_equal(sc.decode(frame).view(np.uint16), w.astype(BF16).view(np.uint16))


# -- the fused product ------------------------------------------------------------------------

#: (rows, cols): whole blocks of 32 columns, a tail of whole groups, a padded last group, an odd
#: number of groups (a missing last pair member), fewer columns than a block.
SHAPES = [(5, 64), (3, 96), (4, 100), (7, 37), (2, 30), (6, 4), (3, 1), (9, 130)]


@AVX2
@pytest.mark.parametrize("spread", [False, True], ids=["plain", "escapes"])
def test_fused_twins_write_the_same_bytes_on_any_thread_count(spread):
    """scalar, AVX2 and (where the CPU has it) AVX-512: the same bytes."""
    for shape in SHAPES:
        frame = sc.get_codec("window").encode(weight(shape, shape[1], spread))
        for batch in (1, 2, 3, 4):
            x = np.random.default_rng(batch).standard_normal((batch, shape[1])).astype(np.float32)
            out = []
            for level in [name for name in LEVELS if LEVELS[name] <= LEVELS[cpu_simd()]]:
                for threads in (1, 2, 3):
                    stats = sc.MatmulStats()
                    with use_simd(level):
                        out.append(sc.matmul(x, frame, threads=threads, stats=stats))
                    assert stats.paths == ["window:window"]
            for y in out[1:]:
                np.testing.assert_array_equal(bits32(y), bits32(out[0]), err_msg=f"{shape}")


@pytest.mark.parametrize("spread", [False, True], ids=["plain", "escapes"])
def test_the_fused_product_reads_nothing_past_its_sections(monkeypatch, spread):
    """Every section handed to the kernel ends where an inaccessible page starts: a load of the
    last block's pattern or exponent bytes past its row's end (the AVX-512 level takes whole
    words unchecked before the last ones) crashes instead of passing unseen."""
    from sparsecodecs.compute import products
    from test_huffman import guarded

    real = products.kn.window_matmul
    calls: list[int] = []

    def at_page_ends(*args: Any) -> int:
        moved = [guarded(a.tobytes()).view(a.dtype) for a in args[:5]]
        calls.append(1)
        return int(real(*moved, *args[5:]))

    shapes = [*SHAPES, (3, 256), (2, 4096)]
    levels = [name for name in LEVELS if LEVELS[name] <= LEVELS[cpu_simd()]]
    for shape in shapes:
        frame = sc.get_codec("window").encode(weight(shape, shape[1], spread))
        for batch, level in itertools.product((1, 2, 4), levels):
            x = np.random.default_rng(batch).standard_normal((batch, shape[1])).astype(np.float32)
            with use_simd(level):
                want = sc.matmul(x, frame)
                with monkeypatch.context() as m:
                    m.setattr(products.kn, "window_matmul", at_page_ends)
                    got = sc.matmul(x, frame)
            np.testing.assert_array_equal(bits32(got), bits32(want),
                                          err_msg=f"{shape} {batch} {level}")
    assert len(calls) == len(shapes) * 3 * len(levels)  # every product ran the fused kernel


def test_fused_product_equals_nms_fused_product_bit_for_bit():
    """On whole blocks both kernels sum the same lanes in the same order: the same bytes."""
    for shape in [(8, 64), (5, 128), (3, 4096)]:
        w = weight(shape, 7, spread=True)
        x = np.random.default_rng(1).standard_normal((2, shape[1])).astype(np.float32)
        stats = sc.MatmulStats()
        y = sc.matmul(x, sc.get_codec("window").encode(w), stats=stats)
        assert stats.paths == ["window:window"]
        np.testing.assert_array_equal(bits32(y), bits32(sc.matmul(x, sc.get_codec("nm").encode(w))))


def test_a_batch_over_four_runs_in_passes_of_four():
    w = weight((9, 100), 3, spread=True)
    frame = sc.get_codec("window").encode(w)
    x = np.random.default_rng(0).standard_normal((11, 100)).astype(np.float32)
    stats = sc.MatmulStats()
    y = sc.matmul(x, frame, stats=stats, threads=2)
    assert stats.paths == ["window:window"]
    for i in range(0, 11, 4):  # each pass equals the product of its own columns
        np.testing.assert_array_equal(bits32(y[i:i + 4]), bits32(sc.matmul(x[i:i + 4], frame)))
    ref, tol = reference(x, w)
    assert_close(y, ref, tol)
    for shape in [(0, 8), (3, 0), (0, 0)]:  # empty weights, and an empty batch
        empty = sc.get_codec("window").encode(np.zeros(shape, BF16))
        assert (sc.matmul(np.ones((2, shape[1]), np.float32), empty) == 0).all()
    assert sc.matmul(np.ones((0, 100), np.float32), frame).shape == (0, 9)


def test_the_kept_values_take_over_from_a_batch_that_depends_on_the_simd_level() -> None:
    """window_fused_below: WINDOW_FUSED_BELOW_AVX512 at the AVX-512 level (its 2:4 kernels are
    faster), WINDOW_FUSED_BELOW below it; the fused kernel under it, the same sums either way
    within the float32 reference's tolerance."""
    from sparsecodecs.compute.products import WINDOW_FUSED_BELOW_AVX512, window_fused_below

    w = weight((16, 64), 4)
    frame = sc.get_codec("window").encode(w)
    for level in LEVELS_HERE:
        with use_simd(level):
            edge = window_fused_below()
            assert edge == (WINDOW_FUSED_BELOW_AVX512 if level == "avx512" else WINDOW_FUSED_BELOW)
            for nb, path in ((edge - 1, "window:window"), (edge, "window:nm")):
                x = np.random.default_rng(nb).standard_normal((nb, 64)).astype(np.float32)
                stats = sc.MatmulStats()
                y = sc.matmul(x, frame, stats=stats)
                assert stats.paths == [path], (level, nb)
                assert_close(y, *reference(x, w))


def test_other_dtypes_directions_and_non_finite_x_go_through_the_kept_values():
    w = weight((6, 40), 3)
    frame = sc.get_codec("window").encode(w)
    x = np.random.default_rng(0).standard_normal((6, 40)).astype(np.float32)
    stats = sc.MatmulStats()
    layer = sc.CompressedLinear([frame])
    layer.matmul(x, stats=stats)  # fused
    assert stats.paths == ["window:window"]
    stats = sc.MatmulStats()
    xo = x[:, :6]  # x @ W: the kept values, nm's transposed kernel
    np.testing.assert_allclose(xo @ layer, xo @ w.astype(np.float32), rtol=1e-5, atol=1e-5)
    f32 = sc.get_codec("window").encode(w.astype(np.float32))
    sc.matmul(x[0], f32, stats=stats)  # float32 values
    x[0, 3] = np.inf
    y = sc.matmul(x[0], frame, stats=stats)  # a non-finite x: the IEEE fix-up
    assert stats.paths == ["window:nm"] * 2
    zero = w[:, 3].astype(np.float32) == 0  # 0 * inf: NaN, as the dense product has it
    assert (np.isnan(y) == zero).all() and np.isinf(y[~zero]).all()


@pytest.mark.parametrize("dtype", [BF16, np.dtype(np.float16), np.dtype(np.float32)],
                         ids=["bfloat16", "float16", "float32"])
def test_the_kept_values_are_decode_s_values(dtype):
    """The kept values and group codes the products decode (``nm_parts``: from batch
    WINDOW_FUSED_BELOW, and for other dtypes) are the decoded weight's, bit for bit: rows of an
    odd number of groups (the last pair's second group missing), a padded last group, escapes
    (more exponents than the window holds); and the product at that batch takes them."""
    from sparsecodecs.compute.products import _frame_parts

    for shape in [(5, 9), (4, 36), (3, 40), (7, 100), (2, 4096)]:
        if dtype == np.float16:  # 60 binades do not fit float16: 15 of them do
            scale = 2.0 ** np.random.default_rng(6).integers(-10, 5, shape)
            w = (weight(shape, 5).astype(np.float32) * scale).astype(dtype)
        else:
            w = weight(shape, 5, spread=True).astype(dtype)
        frame = sc.get_codec("window").encode(w)
        parts, _ = _frame_parts(read_frame(frame))
        assert parts.escapes.size >= shape[0]
        decoded = sc.decode(frame)
        np.testing.assert_array_equal(parts.nm_parts().to_bits(shape),
                                      decoded.view(f"u{dtype.itemsize}"), err_msg=f"{shape}")
        x = np.random.default_rng(2).standard_normal((WINDOW_FUSED_BELOW, shape[1]))
        stats = sc.MatmulStats()
        y = sc.matmul(x.astype(np.float32), frame, stats=stats)
        assert stats.paths == ["window:nm"]
        ref, tol = reference(x.astype(np.float32), decoded)
        assert_close(y, ref, tol)


LEVELS_HERE = [name for name in LEVELS if LEVELS[name] <= LEVELS[cpu_simd()]]


@pytest.mark.parametrize("dtype", [BF16, np.dtype(np.float16), np.dtype(np.float32)])
def test_decode_and_kept_values_write_the_same_bytes_at_every_simd_level(dtype: Any) -> None:
    """The decode (dense, and the kept values the products take) at every SIMD level the CPU
    has: the AVX2 kept-value loop for 2-byte values (16 at a time) and its scalar twin, on rows
    of fewer than 16 kept values, exactly 16, and 16s with a tail; escapes among them."""
    from sparsecodecs.compute.products import _frame_parts

    for shape in [(3, 4), (3, 32), (5, 36), (4, 100), (2, 4096)]:
        if dtype == np.float16:
            scale = 2.0 ** np.random.default_rng(6).integers(-10, 5, shape)
            w = (weight(shape, 7).astype(np.float32) * scale).astype(dtype)
        else:
            w = weight(shape, 7, spread=True).astype(dtype)
        frame = sc.get_codec("window").encode(w)
        assert read_frame(frame).info.meta["window"]
        kept = []
        for level in LEVELS_HERE:
            with use_simd(level):
                decoded = sc.decode(frame)
                kept.append(_frame_parts(read_frame(frame))[0].nm_parts().to_bits(shape))
            assert decoded.tobytes() == w.tobytes(), (shape, level)
            assert kept[-1].tobytes() == kept[0].tobytes(), (shape, level)


def test_decode_on_threads_writes_the_same_bytes_and_refuses_the_same_frames() -> None:
    """From 2**18 kept values the decode (dense, and the kept values) runs in runs of rows side
    by side, each from the first escape at or after its rows: the same bytes as one thread,
    with escapes on both sides of the parts' boundary; a bad code in the second run's rows is
    refused on two threads as on one."""
    from sparsecodecs.compute.products import _frame_parts

    shape = (513, 1024)  # 513 x 256 groups x 2 = 262,656 kept values: two parts of 256 rows
    w = weight(shape, 9, spread=True)
    frame = sc.get_codec("window").encode(w)
    parts = _frame_parts(read_frame(frame))[0]
    boundary = 256 * 256 * 2
    assert (parts.escapes < boundary).any() and (parts.escapes >= boundary).any()
    for threads in (1, 2, 3):
        assert sc.decode(frame, threads=threads).tobytes() == w.tobytes(), threads
        assert parts.nm_parts(threads).to_bits(shape).tobytes() == w.view(np.uint16).tobytes()
    exps = section(frame, "exponents").reshape(shape[0], -1)
    codes = unpack_rows(exps, 3, 512, "x")
    bad = parts.escapes[np.searchsorted(parts.escapes, 300 * 512)]  # an escape in row 300+
    codes[bad // 512, bad % 512] = 0  # an escape whose code is not 7
    broken = rebuilt(frame, exponents=pack_rows(codes, 3).reshape(-1))
    for threads in (1, 2):
        with pytest.raises(FrameLayoutError, match="exponent code is not 7"):
            sc.decode(broken, threads=threads)


def _every_level_refuses(frame: bytes, match: str) -> None:
    """decode and the kept values (the products from WINDOW_FUSED_BELOW) refuse ``frame`` at
    every SIMD level the CPU has."""
    from sparsecodecs.compute.products import _frame_parts

    for level in LEVELS_HERE:
        with use_simd(level):
            with pytest.raises(FrameLayoutError, match=match):
                sc.decode(frame)
            with pytest.raises(FrameLayoutError, match=match):
                _frame_parts(read_frame(frame))[0].nm_parts()


@pytest.mark.parametrize("value", [3, 21])  # a row's 16-value SIMD step, and the scalar tail
def test_a_code_outside_the_window_or_a_rest_past_its_bits_is_refused_at_every_level(
        value: int) -> None:
    w = np.zeros((2, 44), np.float32)  # 11 groups: 22 kept values a row, 16 + a tail of 6
    w[:, 0::4] = 1.0
    w[:, 2::4] = -3.0
    frame = sc.get_codec("window").encode(w.astype(np.float16))
    assert len(read_frame(frame).info.meta["window"]) == 2
    exps = section(frame, "exponents").reshape(2, -1)
    codes = unpack_rows(exps, 3, 22, "x")
    assert set(codes.reshape(-1).tolist()) <= {0, 1}
    codes[1, value] = 4  # the window has codes 0 and 1
    bad = pack_rows(codes, 3).reshape(-1)
    _every_level_refuses(rebuilt(frame, exponents=bad), "window of 2")
    rest = section(frame, "rest").view("<u2").copy()  # float16: 11 rest bits in 2 bytes
    rest[22 + value] |= 1 << 11
    _every_level_refuses(rebuilt(frame, rest=rest.view(np.uint8)), "wider than 11 bits")


# -- hostile frames: the same errors from the product and from decode -------------------------


def _frame_and_x(shape: tuple[int, int] = (4, 64)) -> tuple[bytes, np.ndarray]:
    frame = sc.get_codec("window").encode(weight(shape, 1, spread=True))
    return frame, np.ones(shape[1], np.float32)


def _both_raise(frame: bytes, x: np.ndarray, match: str) -> None:
    """decode refuses ``frame`` with ``match``; so does the product at batch 1 (the fused kernel,
    every SIMD level) and at WINDOW_FUSED_BELOW (the kept values decoded, nm's kernels)."""
    with pytest.raises(FrameLayoutError, match=match):
        sc.decode(frame)
    for level in [name for name in LEVELS if LEVELS[name] <= LEVELS[cpu_simd()]]:
        with use_simd(level), pytest.raises(FrameLayoutError):
            sc.matmul(x, frame)
    with pytest.raises(FrameLayoutError, match=match):
        sc.matmul(np.tile(x, (WINDOW_FUSED_BELOW, 1)), frame)


@pytest.mark.parametrize("where", ["first", "last"])
def test_a_pair_code_above_35_is_refused(where):
    frame, x = _frame_and_x()
    pattern = section(frame, "pattern")
    i = 0 if where == "first" else pattern.size - 1
    pattern[i] |= 0xFC if where == "last" else 0x3F  # a code of 63 in the byte's top / low bits
    _both_raise(rebuilt(frame, pattern=pattern), x, "pair code")


def test_an_exponent_code_outside_a_short_window_is_refused():
    w = np.zeros((2, 64), np.float32)
    w[:, ::2] = 1.0
    frame = sc.get_codec("window").encode(w.astype(BF16))
    assert len(read_frame(frame).info.meta["window"]) == 1
    exps = section(frame, "exponents")
    exps[5] = (exps[5] & 0xF8) | 3  # code 3: the window has 1 value
    _both_raise(rebuilt(frame, exponents=exps), np.ones(64, np.float32), "window of 1")


def test_an_escape_on_a_value_with_a_window_code_is_refused():
    frame, x = _frame_and_x()
    parsed = read_frame(frame)
    escapes = next(s.data for s in parsed.sections if s.name == "escapes")
    idt = escape_index_dtype(128)
    where = np.frombuffer(bytes(escapes), idt).astype(np.int64)
    exps = section(frame, "exponents").reshape(4, -1)
    codes = unpack_rows(exps, 3, 32, "x").reshape(-1)
    victim = int(np.flatnonzero(codes != 7)[0])
    assert where.size > 1 and victim not in where
    moved = np.sort(np.append(where[:-1], victim)).astype(idt)
    _both_raise(rebuilt(frame, escapes=moved), x, "exponent code is not 7")


def test_non_zero_padding_bits_and_a_missing_groups_code_are_refused():
    frame, x = _frame_and_x((3, 40))  # 10 groups: 5 pairs = 30 bits in 4 bytes; 60 bits in 8
    pattern = section(frame, "pattern").reshape(3, 4)
    pattern[1, 3] |= 0x80
    _both_raise(rebuilt(frame, pattern=pattern.reshape(-1)), x, "padding bits")
    exps = section(frame, "exponents").reshape(3, 8)
    exps[2, 7] |= 0x40
    _both_raise(rebuilt(frame, exponents=exps.reshape(-1)), x, "padding bits")
    frame, x = _frame_and_x((2, 36))  # 9 groups: the 5th pair has no second group
    pattern = section(frame, "pattern").reshape(2, 4)
    pair = int(pattern[0, 3]) & 63  # pair 4: bits 24-29
    pattern[0, 3] = (int(pattern[0, 3]) & 0xC0) | (pair // 6 * 6 + 1)  # its missing c1 = 1
    _both_raise(rebuilt(frame, pattern=pattern.reshape(-1)), x, "missing last group")


def test_a_value_in_a_padding_slot_is_refused():
    w = np.zeros((2, 6), np.float32)
    w[:, 0] = 1.0  # the second group (columns 4, 5 and padding 6, 7) keeps slots (0, 1)
    frame = sc.get_codec("window").encode(w.astype(BF16))
    pattern = section(frame, "pattern")
    assert pattern.tolist() == [0, 0]
    pattern[0] = 5  # group 1 of row 0 keeps positions (2, 3): both padding
    rest = section(frame, "rest")
    rest[3] = 0x11  # and its second slot holds a non-zero value
    frame = rebuilt(frame, pattern=pattern, rest=rest)
    with pytest.raises(FrameLayoutError, match="padding slot"):
        sc.decode(frame)
    for level in ("scalar", cpu_simd()):
        with use_simd(level), pytest.raises(FrameLayoutError, match="padding slot"):
            sc.matmul(np.ones(6, np.float32), frame)


@settings(max_examples=examples(200))
@given(seed=st.integers(0, 2**32 - 1), flips=st.integers(1, 4))
def test_a_product_decodes_what_decode_decodes_and_refuses_what_it_refuses(seed, flips):
    """Random byte flips in the sections (a valid checksum): either both raise a library error,
    or the product equals the product of the decoded weight."""
    frame, x = _frame_and_x((3, 72))
    rng = np.random.default_rng(seed)
    parsed = read_frame(frame)
    names = [s.name for s in parsed.sections if s.name in ("pattern", "exponents", "rest")]
    changed: dict[str, Any] = {}
    for _ in range(flips):
        name = names[int(rng.integers(len(names)))]
        data = changed.get(name, section(frame, name))
        data[int(rng.integers(data.size))] ^= np.uint8(1 << int(rng.integers(8)))
        changed[name] = data
    hostile = rebuilt(frame, **changed)
    try:
        w = sc.decode(hostile)
    except sc.SparseCodecsError:
        for level in ("scalar", cpu_simd()):
            with use_simd(level), pytest.raises(sc.SparseCodecsError):
                sc.matmul(x, hostile)
        with pytest.raises(sc.SparseCodecsError):  # the kept values decoded
            sc.matmul(np.tile(x, (WINDOW_FUSED_BELOW, 1)), hostile)
        return
    ys = []
    for level in ("scalar", cpu_simd()):
        with use_simd(level), np.errstate(all="ignore"):
            ys.append(sc.matmul(x, hostile))
    np.testing.assert_array_equal(bits32(ys[0]), bits32(ys[1]))
    w32 = w.astype(np.float32)
    if np.isfinite(w32).all():
        ref, tol = reference(x[None], w)
        assert_close(ys[0][None], ref, tol)
        many = sc.matmul(np.tile(x, (WINDOW_FUSED_BELOW, 1)), hostile)
        assert_close(many, np.tile(ref, (WINDOW_FUSED_BELOW, 1)),
                     np.tile(tol, (WINDOW_FUSED_BELOW, 1)))


@pytest.mark.parametrize("dtype", [BF16, np.dtype(">f4"), np.dtype(np.int8)])
def test_a_claimed_2_to_the_40_rows_of_nothing_decode_at_once(dtype):
    """The fuzz runner's hang (seed 17): a frame of shape (4, 0) re-headed to (2**40, 0) has no
    group to read, and decodes to the empty array at once instead of looping over its rows."""
    from sparsecodecs.testing import reframe, split_frame

    frame = sc.get_codec("window").encode(np.zeros((4, 0), dtype))
    header = dict(split_frame(frame)[0])
    header["shape"] = [2**40, 0]
    out = sc.decode(reframe(frame, header=header))
    assert out.shape == (2**40, 0)
