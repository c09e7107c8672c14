"""Products on compressed weights (sparsecodecs.compute) against a plain numpy reference.

The reference is ``x.astype(float32) @ decode(frame).astype(float32).T``. Both sides sum in
float32, in different orders (numpy's BLAS blocks and vectorises, the kernels go column by
column with a few interleaved sums), so they may differ by rounding only. The tolerance is the
classic bound for summation in any order: each side is within ``gamma_K * sum_j |x_j w_j|`` of
the exact result, ``gamma_K ~ (K + 1) * eps32``, K the length of the sums; so we allow
``2 * (K + 2) * eps32 * (|x| @ |W|.T)`` per output element (and nothing where that is zero).
"""

from __future__ import annotations

import math
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sparsecodecs as sc
from sparsecodecs import (
    CodecConfigError,
    CompressedLinear,
    DecodeLimitError,
    FrameError,
    MatmulStats,
    ShapeError,
    UnsupportedDtypeError,
)
from sparsecodecs.bench.memory import traced_peak
from sparsecodecs.registry import FrameLayoutError, read_frame
from sparsecodecs.testing import examples
from sparsecodecs.testing.frames import reframe, split_frame
from sparsecodecs.transforms import prune

EPS32 = float(np.finfo(np.float32).eps)
DTYPES = {
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "float16": np.dtype(np.float16),
    "float32": np.dtype(np.float32),
    "int8": np.dtype(np.int8),
}
#: Codec configs with a zero-skipping path, the path they must take, and whether the input
#: must be pruned N:M first.
SKIPPING: list[tuple[dict[str, Any], str, tuple[int, int] | None]] = [
    ({"id": "nm"}, "nm", (2, 4)),
    ({"id": "nm", "metadata": "index"}, "nm", (2, 4)),
    ({"id": "nm", "n": 1, "m": 4, "metadata": "bitmask"}, "nm", (1, 4)),
    ({"id": "nm", "n": 4, "m": 8}, "nm", (4, 8)),
    ({"id": "nm", "n": 3, "m": 5}, "nm", (3, 5)),
    ({"id": "bitmask"}, "bitmask", None),
    ({"id": "csr"}, "csr", None),
    ({"id": "csc"}, "csc", None),
    ({"id": "hybrid", "layout": "nm"}, "nm", (2, 4)),
    ({"id": "hybrid", "layout": "nm", "entropy": "none"}, "nm", (2, 4)),
    ({"id": "hybrid", "layout": "bitmask"}, "bitmask", None),
    # bfloat16 at batch <= 4: the fused window kernel; otherwise the kept values through nm's
    ({"id": "window"}, "window|nm", (2, 4)),
]
GENERIC: list[tuple[dict[str, Any], str, tuple[int, int] | None]] = [
    ({"id": "raw"}, "dense", None),
    ({"id": "hybrid", "layout": "dense"}, "dense", None),
    ({"id": "huffman"}, "decoded", None),
    ({"id": "centroid"}, "decoded", None),
]
CODECS = SKIPPING + GENERIC
CODEC_IDS = ["-".join(map(str, c.values())) for c, _, _ in CODECS]


def assert_paths(paths: list[str], config: dict[str, Any], path: str, count: int) -> None:
    """``count`` products, each on ``path`` (``a|b``: either)."""
    allowed = {f"{config['id']}:{p}" for p in path.split("|")}
    assert len(paths) == count and set(paths) <= allowed, (paths, allowed)


def weight(shape: tuple[int, int], dtype: np.dtype[Any], density: float, seed: int,
           pattern: tuple[int, int] | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype.kind == "i":
        w = rng.integers(-128, 128, shape).astype(dtype)
    else:
        w = (rng.standard_normal(shape) * 0.5).astype(dtype)
    w[rng.random(shape) >= density] = 0
    if pattern is not None:
        w, _ = prune(w, pattern)
    return w


def reference(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x @ W.T in float32, the tolerance of each element)."""
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    k = w.shape[1]
    bound = np.abs(x32).astype(np.float64) @ np.abs(w32).astype(np.float64).T
    return x32 @ w32.T, 2 * (k + 2) * EPS32 * bound


def assert_close(y: np.ndarray, ref: np.ndarray, tol: np.ndarray) -> None:
    assert y.dtype == np.float32 and y.shape == ref.shape
    err = np.abs(y.astype(np.float64) - ref.astype(np.float64))
    assert (err <= tol).all(), f"max excess {np.max(err - tol)}, max error {err.max()}"


def encode(config: dict[str, Any], w: np.ndarray) -> bytes:
    return sc.get_codec(config).encode(w)


# -- the convention -------------------------------------------------------------------------------


def test_matmul_is_x_times_w_transposed():
    w = np.array([[1, 2, 0, 0, 3], [0, 0, 4, 5, 0], [6, 0, 0, 0, 7]], np.float32)  # (out=3, in=5)
    x = np.array([[1, 10, 100, 1000, 10000]], np.float32)
    for config, _, pattern in CODECS:
        frame = encode(config, prune(w, pattern)[0] if pattern else w)
        expected = x @ sc.decode(frame).T
        np.testing.assert_array_equal(sc.matmul(x, frame), expected)
    # and for the matrix above, explicitly: row r of the result is x . W[r]
    np.testing.assert_array_equal(
        sc.matmul(x, encode({"id": "csr"}, w)), [[30021.0, 5400.0, 70006.0]]
    )


def test_output_shapes_follow_x():
    w = weight((6, 8), DTYPES["float32"], 0.5, 0)
    frame = encode({"id": "bitmask"}, w)
    rng = np.random.default_rng(1)
    for lead in [(), (1,), (3,), (2, 3), (0,), (2, 0)]:
        x = rng.standard_normal((*lead, 8)).astype(np.float32)
        y = sc.matmul(x, frame)
        assert y.shape == (*lead, 6) and y.flags.c_contiguous
        ref, tol = reference(x.reshape(-1, 8), w)
        assert_close(y.reshape(-1, 6), ref, tol)


# -- every codec, dtype and shape -----------------------------------------------------------------


@settings(max_examples=examples(60))
@given(
    codec=st.sampled_from(range(len(CODECS))),
    dtype=st.sampled_from(sorted(DTYPES)),
    rows=st.integers(0, 40),
    cols=st.integers(0, 70),
    batch=st.sampled_from([(), (1,), (2,), (5,), (2, 3)]),
    density=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
    seed=st.integers(0, 2**16),
    scaled=st.booleans(),
)
def test_matmul_matches_the_float32_reference(codec, dtype, rows, cols, batch, density, seed,
                                              scaled):
    config, path, pattern = CODECS[codec]
    dt = DTYPES[dtype]
    w = weight((rows, cols), dt, density, seed, pattern)
    frame = encode(config, w)
    x = np.random.default_rng(seed + 1).standard_normal((*batch, cols)).astype(np.float32)
    # int8 weights come with a per-channel scale, as quantized weights do
    scale = (np.random.default_rng(seed).random(rows).astype(np.float32) + 0.5
             if scaled or dt.kind == "i" else None)
    stats = MatmulStats()
    y = sc.matmul(x, frame, scale=scale, stats=stats)
    decoded = sc.decode(frame)
    b = math.prod(batch)
    ref, tol = reference(x.reshape(b, cols), decoded)
    if scale is not None:
        ref, tol = ref * scale, tol * scale + np.abs(ref * scale) * EPS32
    assert_close(y.reshape(b, rows), ref, tol)
    if read_frame(frame).config.get("fill", "zero") != "zero":
        path = "decoded"  # the planner chose a non-zero fill (e.g. a dense row of repeats)
    assert_paths(stats.paths, config, path, 1)
    assert stats.dense_macs == rows * cols * b and stats.weight_bytes == len(frame)
    if path in ("bitmask", "csr", "csc"):
        assert stats.macs == np.count_nonzero(decoded) * b
    elif path in ("nm", "window|nm"):
        n, m = pattern or (2, 4)
        full, rest = divmod(cols, m)
        assert stats.macs == rows * (full * n + min(n, rest)) * b


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize(("config", "path", "pattern"), CODECS, ids=CODEC_IDS)
def test_compressed_linear_matches_the_reference(config, path, pattern, dtype):
    w = weight((45, 37), DTYPES[dtype], 0.4, 3, pattern)
    layer = CompressedLinear.from_array(w, sc.get_codec(config), block_rows=16)
    assert layer.shape == (45, 37) and layer.dtype == w.dtype and len(layer.frames) == 3
    assert layer.offsets == (0, 16, 32, 45)
    assert layer.nbytes == sum(len(f) for f in layer.frames)
    assert sc.decode(layer.frames[2]).shape == (13, 37)
    rng = np.random.default_rng(4)
    w32 = w.astype(np.float32)
    x = rng.standard_normal((3, 37)).astype(np.float32)
    stats = MatmulStats()
    ref, tol = reference(x, w)
    assert_close(layer(x, stats=stats), ref, tol)
    assert_paths(stats.paths, config, path, 3)
    # layer @ v is W @ v
    v = rng.standard_normal((37, 2)).astype(np.float32)
    ref, tol = reference(v.T, w)
    assert_close(layer @ v, ref.T, tol.T)
    assert_close(layer @ v[:, 0], ref[0], tol[0])
    # x @ layer is x @ W, summed over the output rows
    xo = rng.standard_normal((2, 45)).astype(np.float32)
    ref, tol = reference(xo, w32.T)
    assert_close(xo @ layer, ref, tol)
    assert_close(xo[0] @ layer, ref[0], tol[0])


def test_batch_of_one_and_non_multiple_shapes_on_every_skipping_kernel():
    rng = np.random.default_rng(5)
    for config, _, pattern in SKIPPING:
        for rows, cols in [(1, 1), (1, 3), (7, 9), (3, 8 * 3 + 5)]:
            w = weight((rows, cols), DTYPES["bfloat16"], 0.6, rows * cols, pattern)
            x = rng.standard_normal(cols).astype(ml_dtypes.bfloat16)
            ref, tol = reference(x[None], w)
            assert_close(sc.matmul(x, encode(config, w))[None], ref, tol)


# -- the layer ------------------------------------------------------------------------------------


def test_layer_scale_and_bias_for_int8():
    w = weight((20, 33), DTYPES["int8"], 0.5, 6)
    scale = np.linspace(0.01, 0.2, 20).astype(np.float32)
    bias = np.arange(20, dtype=np.float32)
    layer = CompressedLinear.from_array(w, "bitmask", block_rows=8, scale=scale, bias=bias)
    assert layer.nbytes == sum(len(f) for f in layer.frames) + scale.nbytes + bias.nbytes
    x = np.random.default_rng(7).standard_normal((4, 33)).astype(np.float32)
    ref, tol = reference(x, w)
    assert_close(layer.matmul(x), ref * scale, tol * scale + np.abs(ref * scale) * EPS32)
    assert_close(sc.matmul(x, layer), ref * scale, tol * scale + np.abs(ref * scale) * EPS32)
    assert_close(layer(x), ref * scale + bias, tol * scale + np.abs(ref * scale + bias) * EPS32)
    # the effective weight is scale[:, None] * W, from either side
    weff = w.astype(np.float32) * scale[:, None]
    xo = np.random.default_rng(8).standard_normal((3, 20)).astype(np.float32)
    ref, tol = reference(xo, weff.T)
    assert_close(xo @ layer, ref, tol + np.abs(ref) * 2 * EPS32)


def test_layer_scalar_scale_and_repr():
    w = weight((4, 8), DTYPES["float16"], 1.0, 9)
    layer = CompressedLinear.from_array(w, "raw", scale=2.0)
    x = np.ones((1, 8), np.float32)
    np.testing.assert_allclose(layer(x), 2 * reference(x, w)[0], rtol=1e-6)
    text = repr(layer)
    assert "shape=(4, 8)" in text and "float16" in text and "['raw']" in text
    np.testing.assert_array_equal(layer.decode(), w)


def test_layer_with_no_rows_or_no_columns():
    for shape in [(0, 5), (5, 0)]:
        layer = CompressedLinear.from_array(np.zeros(shape, np.float32), "hybrid")
        y = layer(np.ones((2, shape[1]), np.float32))
        assert y.shape == (2, shape[0]) and not y.any()


def test_layer_from_frames_of_other_codecs():
    w = weight((10, 12), DTYPES["float32"], 0.5, 10, (2, 4))
    frames = [sc.get_codec("nm").encode(w[:3]), sc.get_codec("csr").encode(w[3:7]),
              sc.get_codec("huffman").encode(w[7:])]
    layer = CompressedLinear(frames)
    x = np.random.default_rng(11).standard_normal((2, 12)).astype(np.float32)
    stats = MatmulStats()
    assert_close(layer(x, stats=stats), *reference(x, w))
    assert stats.paths == ["nm:nm", "csr:csr", "huffman:decoded"]


def test_results_are_deterministic():
    w = weight((64, 256), DTYPES["bfloat16"], 0.5, 12, (2, 4))
    frame = encode({"id": "hybrid"}, w)
    x = np.random.default_rng(13).standard_normal((3, 256)).astype(np.float32)
    assert np.array_equal(sc.matmul(x, frame).view(np.uint32), sc.matmul(x, frame).view(np.uint32))


# -- zero skipping and memory -------------------------------------------------------------------


@pytest.mark.parametrize("config", [{"id": "nm"}, {"id": "hybrid"}], ids=["nm", "hybrid"])
def test_two_four_does_half_the_multiply_adds(config):
    w = weight((128, 256), DTYPES["bfloat16"], 1.0, 14, (2, 4))
    stats = MatmulStats()
    sc.matmul(np.ones((8, 256), np.float32), encode(config, w), stats=stats)
    assert stats.paths[0].endswith(":nm")
    assert stats.macs == 128 * 128 * 8 and stats.mac_fraction == 0.5 <= 0.55
    assert stats.dense_bytes == w.nbytes and stats.byte_fraction < 0.6


def test_peak_memory_is_one_block_not_the_dense_matrix():
    w = weight((1024, 1024), DTYPES["bfloat16"], 1.0, 15, (2, 4))
    dense32 = w.size * 4
    x = np.ones((1, 1024), np.float32)
    frame = encode({"id": "nm"}, w)
    layer = CompressedLinear.from_array(w, "hybrid", block_rows=64)
    blob = sc.get_codec("huffman").encode(w)
    sc.matmul(x, frame), layer(x), sc.matmul(x, blob)  # compile / load the kernels first
    # nm reads the values where they lie; the layer decodes one 64-row block at a time
    assert traced_peak(lambda: sc.matmul(x, frame)) < 0.02 * dense32
    assert traced_peak(lambda: layer(x)) < 0.1 * dense32
    # a whole-matrix frame of a codec without blocks: what decoding takes, plus one float32
    # block of 1 MiB (and its bits), never the float32 copy of the matrix
    decode_peak = traced_peak(lambda: sc.decode(blob))
    assert traced_peak(lambda: sc.matmul(x, blob)) < decode_peak + 1.6 * 2**20
    assert dense32 / 2 > 1.6 * 2**20  # so the bound above excludes a float32 copy


# -- errors ---------------------------------------------------------------------------------------


def test_shape_errors_say_what_was_expected():
    frame = encode({"id": "csr"}, np.eye(4, 6, dtype=np.float32))
    with pytest.raises(ShapeError, match=r"shape \(out=4, in=6\).*\(\.\.\., 6\); got x of shape "
                                         r"\(2, 4\)"):
        sc.matmul(np.ones((2, 4)), frame)
    with pytest.raises(ShapeError, match="got x of a scalar"):
        sc.matmul(np.float32(1), frame)
    with pytest.raises(ShapeError, match=r"2-D array of shape \(out, in\).*\[2, 3, 4\]"):
        sc.matmul(np.ones(4), encode({"id": "raw"}, np.ones((2, 3, 4), np.float32)))
    with pytest.raises(ShapeError, match=r"scale must be a scalar or have shape \(4,\)"):
        sc.matmul(np.ones(6), frame, scale=np.ones(6))
    layer = CompressedLinear([frame])
    with pytest.raises(ShapeError, match=r"W @ v needs v of shape \(6,\)"):
        layer @ np.ones((4, 2))
    with pytest.raises(ShapeError, match=r"x @ W needs x of shape \(\.\.\., out\)"):
        np.ones(6) @ layer
    with pytest.raises(ShapeError, match="frame 1 holds"):
        CompressedLinear([frame, encode({"id": "csr"}, np.eye(4, 5, dtype=np.float32))])
    with pytest.raises(ShapeError, match="at least one frame"):
        CompressedLinear([])
    with pytest.raises(ShapeError, match="2-D numpy array"):
        CompressedLinear.from_array(np.ones(4, np.float32))
    assert issubclass(ShapeError, sc.SparseCodecsError)


def test_input_and_config_errors():
    frame = encode({"id": "bitmask"}, np.eye(3, dtype=np.float32))
    for bad in [np.ones(3, np.complex64), np.ones(3, bool), ["a", "b", "c"]]:
        with pytest.raises(UnsupportedDtypeError, match="must hold real numbers"):
            sc.matmul(bad, frame)
    layer = CompressedLinear([frame])
    with pytest.raises(CodecConfigError, match="carries its own scale"):
        sc.matmul(np.ones(3), layer, scale=2.0)
    with pytest.raises(CodecConfigError, match="codec name or instance"):
        CompressedLinear.from_array(np.eye(3), codec=3)  # type: ignore[arg-type]
    with pytest.raises(CodecConfigError, match="block_rows"):
        CompressedLinear.from_array(np.eye(3), block_rows=0)


def test_frame_errors():
    w = np.zeros((1, 5), np.float32)
    w[0, [0, 1, 4]] = [1.0, 2.0, 3.0]  # the last group of 4 has one real column
    frame = encode({"id": "nm"}, w)
    with pytest.raises(FrameError):
        sc.matmul(np.ones(5), frame[:-1])
    # a non-zero value in a padding slot: refused by decode and by matmul alike
    _, payloads = split_frame(frame)
    values = np.frombuffer(payloads[0], np.float32).copy()
    assert values[3] == 0
    values[3] = 9.0
    bad = reframe(frame, sections={"values": values.tobytes()})
    with pytest.raises(FrameLayoutError, match="padding slot"):
        sc.decode(bad)
    with pytest.raises(FrameLayoutError, match="padding slot"):
        sc.matmul(np.ones(5), bad)


def test_decode_limit_applies():
    frame = encode({"id": "nm"}, np.zeros((64, 64), np.float32))
    sc.set_decode_limit(1000)
    try:
        with pytest.raises(DecodeLimitError, match="over the decode limit of 1000 bytes"):
            sc.matmul(np.ones(64), frame)
    finally:
        sc.set_decode_limit(None)


def test_big_endian_weights():
    w = weight((5, 12), DTYPES["float32"], 0.5, 16).astype(">f4")
    x = np.random.default_rng(17).standard_normal(12).astype(">f8")
    for config in [{"id": "csr"}, {"id": "raw"}, {"id": "huffman"}]:
        assert_close(sc.matmul(x, encode(config, w))[None], *reference(x[None], w))


def test_a_claimed_huge_weight_cannot_size_a_huge_result():
    """A hostile frame claiming (2**40, 0) must not make matmul allocate 2**40 outputs."""
    from sparsecodecs.testing import reframe, split_frame

    frame = sc.get_codec("nm").encode(np.zeros((4, 0), np.float32))
    header = dict(split_frame(frame)[0])
    header["shape"] = [2**40, 0]
    hostile = reframe(frame, header=header)
    with pytest.raises(sc.DecodeLimitError, match="over the decode limit"):
        sc.matmul(np.ones((1, 0), np.float32), hostile)


def _count_decode_parts(monkeypatch: pytest.MonkeyPatch, codec: str) -> list[int]:
    """A counter of ``decode_parts`` calls on ``codec``'s class."""
    cls = type(sc.get_codec(codec))
    calls = [0]
    original = cls.decode_parts

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "decode_parts", counting)
    return calls


@pytest.mark.parametrize(("codec", "kept"), [("nm", True), ("bitmask", True), ("hybrid", False)])
def test_a_layer_keeps_parts_that_are_views_of_its_frames(
    monkeypatch: pytest.MonkeyPatch, codec: str, kept: bool
) -> None:
    """A CompressedLinear validates a frame's parts once when they are views of the frame (nm,
    bitmask); decoded values (hybrid's Huffman-coded ones, 128 KiB here) are decoded for every
    product. The results are the same bits either way, and the same as a product on the
    bytes."""
    w = (np.random.default_rng(3).standard_normal((256, 512)) * 0.02).astype(ml_dtypes.bfloat16)
    w, _ = prune(w, "2:4")
    frame = sc.get_codec(codec).encode(w)
    layer = sc.CompressedLinear([frame])
    x = np.random.default_rng(4).standard_normal((3, 512)).astype(np.float32)
    v = np.random.default_rng(5).standard_normal(512).astype(np.float32)
    xr = np.random.default_rng(6).standard_normal((2, 256)).astype(np.float32)
    want = [sc.matmul(x, frame).tobytes(), sc.matmul(v[None], frame).reshape(-1).tobytes(),
            (xr @ sc.CompressedLinear([frame])).tobytes()]  # each parsed and validated anew
    calls = _count_decode_parts(monkeypatch, codec)
    got = [layer.matmul(x).tobytes(), (layer @ v).tobytes(), (xr @ layer).tobytes(),
           layer.matmul(x).tobytes()]
    assert got == [*want, want[0]]
    assert calls[0] == (1 if kept else 4)
