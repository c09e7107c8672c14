"""The ``fill`` of the sparse layouts: the value that counts as empty (issue #8).

Arrays are compared by bit pattern. Hostile frames are built with ``reframe`` from valid ones.
"""

from __future__ import annotations

import json
from itertools import combinations
from typing import Any

import ml_dtypes
import numpy as np
import pytest

import sparsecodecs as sc
from sparsecodecs.codecs import _kernels as k
from sparsecodecs.codecs._fill import row_modes, tensor_mode
from sparsecodecs.registry import (
    CodecConfigError,
    FillError,
    FrameLayoutError,
    PatternError,
)
from sparsecodecs.testing import assert_bits_equal, bits_of, check_codec, reframe, split_frame

LAYOUTS = ["bitmask", "csr", "csc", "nm", "hybrid"]


def zero_point_weight(
    rows: int = 16, cols: int = 64, seed: int = 0, dtype: Any = np.uint8
) -> tuple[np.ndarray, np.ndarray]:
    """A quantized 2:4-sparse weight around per-row zero points: (weight, zero points)."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    zp = rng.integers(info.min + 40, info.max - 40, rows).astype(dtype)
    w = np.repeat(zp[:, None], -(-cols // 4) * 4, axis=1)
    groups = w.reshape(rows, -1, 4)
    keep = np.argsort(rng.random(groups.shape), axis=-1)[..., :2]
    noise = rng.integers(-30, 30, keep.shape)
    noise[noise == 0] = 1  # kept values differ from the zero point
    values = (zp[:, None, None].astype(np.int64) + noise).astype(dtype)
    np.put_along_axis(groups, keep, values, axis=-1)
    return np.ascontiguousarray(groups.reshape(rows, -1)[:, :cols]), zp


def layout(name: str, **params: Any) -> sc.Codec:
    """The codec; hybrid with its bitmask layout (small arrays would go dense)."""
    if name == "hybrid":
        params.setdefault("layout", "bitmask")
    return sc.get_codec(name, **params)


def roundtrip(codec: sc.Codec, x: np.ndarray) -> bytes:
    frame = codec.encode(x)
    assert_bits_equal(sc.decode(frame), x, f"{codec!r}")
    assert_bits_equal(codec.decode(frame), x, f"{codec!r}.decode")
    return frame


# -- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "metadata"),
    [(name, "pattern") for name in LAYOUTS] + [("nm", "index"), ("nm", "bitmask")],
)
def test_uint8_per_row_zero_points(name: str, metadata: str) -> None:
    params = {"metadata": metadata} if name == "nm" else {}
    w, zp = zero_point_weight()
    explicit = roundtrip(sc.get_codec(name, fill=zp.tolist(), **params), w)
    by_mode = roundtrip(sc.get_codec(name, fill="row-mode", **params), w)
    header = split_frame(explicit)[0]
    assert header["config"]["fill"] == "rows"
    assert header["meta"]["fill"] == "rows"
    assert ["fill", "codebook", zp.size] in header["sections"]
    assert split_frame(by_mode)[0]["config"]["fill"] == "row-mode"
    if name == "nm":
        with pytest.raises(PatternError, match="not 2:4 sparse"):
            sc.get_codec("nm", **params).encode(w)
    else:
        assert len(explicit) < len(roundtrip(sc.get_codec(name, **params), w))


@pytest.mark.parametrize("name", LAYOUTS)
def test_rank_3_and_padded_groups(name: str) -> None:
    w, zp = zero_point_weight(rows=6, cols=24, seed=1)
    x = w[:, :22].reshape(2, 3, 22).copy()  # a short last group of 2 along the last axis
    frame = roundtrip(sc.get_codec(name, fill=zp.tolist()), x)
    assert split_frame(frame)[0]["meta"]["fill"] == "rows"
    roundtrip(sc.get_codec(name, fill="row-mode"), x)


@pytest.mark.parametrize("name", LAYOUTS)
def test_int8_scalar_fill(name: str) -> None:
    w, _ = zero_point_weight(dtype=np.int8, seed=2)
    x = np.where(w == w[0, 0], w, np.int8(-3))  # mostly -3, 2:4 sparse around it
    x[:, ::4] = 5
    frame = roundtrip(sc.get_codec(name, fill=-3), x)
    header = split_frame(frame)[0]
    assert header["config"]["fill"] == -3 and header["meta"]["fill"] == "scalar"
    assert ["fill", "codebook", 1] in header["sections"]


@pytest.mark.parametrize("name", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float16, ml_dtypes.bfloat16, np.float64])
def test_float_fill_half(name: str, dtype: Any) -> None:
    rng = np.random.default_rng(3)
    x = np.full((8, 16), 0.5, dtype)
    x[:, 1::4] = rng.standard_normal((8, 4)).astype(dtype)
    x[0, 1], x[1, 5], x[2, 9] = np.nan, -0.0, np.inf
    frame = roundtrip(sc.get_codec(name, fill=0.5), x)
    assert split_frame(frame)[0]["meta"]["fill"] == "scalar"
    if name in ("bitmask", "csr", "csc"):  # only the 4 entries per row that are not 0.5
        assert sc.inspect(frame).role_bytes["values"] == 8 * 4 * np.dtype(dtype).itemsize


@pytest.mark.parametrize("name", LAYOUTS)
def test_negative_zero_is_not_zero(name: str) -> None:
    x = np.full((4, 8), -0.0, np.float32)
    x[:, ::4] = [[1.0], [0.0], [2.0], [np.nan]]
    neg = roundtrip(layout(name, fill=-0.0), x)
    assert split_frame(neg)[0]["meta"]["fill"] == "scalar"  # -0.0 has the sign bit set
    if name == "nm":  # around +0.0 every group is dense
        with pytest.raises(PatternError):
            sc.get_codec(name, fill=0.0).encode(x)
        return
    pos = roundtrip(layout(name, fill=0.0), x)
    assert "fill" not in split_frame(pos)[0]["meta"]  # +0.0 is bit pattern zero: nothing new
    assert sc.inspect(neg).role_bytes["values"] < sc.inspect(pos).role_bytes["values"]


@pytest.mark.parametrize("name", LAYOUTS)
def test_nan_fill_by_mode(name: str) -> None:
    nan = np.array([0x7FC0_1234], np.uint32).view(np.float32)[0]  # a NaN with a payload
    x = np.full((4, 8), nan, np.float32)
    x[:, ::4] = 1.5
    frame = roundtrip(layout(name, fill="mode"), x)
    fill = split_frame(frame)[1][[s[0] for s in split_frame(frame)[0]["sections"]].index("fill")]
    assert np.frombuffer(fill, "<u4")[0] == 0x7FC0_1234


@pytest.mark.parametrize("name", LAYOUTS)
def test_big_endian_and_empty(name: str) -> None:
    x = np.full((4, 8), 7, ">i2")
    x[:, 2::4] = 3
    roundtrip(sc.get_codec(name, fill=7), x)
    roundtrip(sc.get_codec(name, fill="row-mode"), x)
    for shape in [(0, 8), (3, 0), (0,), ()]:
        y = np.full(shape, 7, np.int16)
        rows = int(np.prod(shape[:-1])) if shape else 1
        roundtrip(sc.get_codec(name, fill=[7] * rows), y)
        roundtrip(sc.get_codec(name, fill="row-mode"), y)


def test_zero_fill_writes_nothing_new() -> None:
    w, _ = zero_point_weight()
    x = np.where(w > 100, w, 0).astype(np.uint8)
    x[:, 1::4] = 0
    x[:, 2::4] = 0
    for name in ["bitmask", "csr", "csc", "nm"]:
        plain = sc.get_codec(name).encode(x)
        assert sc.get_codec(name, fill="zero").encode(x) == plain
        for fill in ["mode", 0, "row-mode", [0] * x.shape[0]]:  # all resolve to zero
            header, _ = split_frame(sc.get_codec(name, fill=fill).encode(x))
            assert "fill" not in header["meta"]
            assert "fill" not in [s[0] for s in header["sections"]]


# -- configs -----------------------------------------------------------------------------------


def test_config_omits_the_default_and_round_trips() -> None:
    assert sc.get_codec("bitmask").get_config() == {"id": "bitmask"}
    assert "fill" not in sc.get_codec("nm").get_config()
    assert "fill" not in sc.get_codec("hybrid").get_config()
    assert sc.get_codec("hybrid", fill="zero").get_config()["fill"] == "zero"
    for fill in ["mode", "row-mode", "rows", 71, 0.5, -0.0, [1, 2.5, 3]]:
        codec = sc.get_codec("csr", fill=fill)
        config = json.loads(json.dumps(codec.get_config()))
        assert config["fill"] == fill
        assert sc.get_codec(config) == codec
    assert sc.get_codec("csc", fill=np.array([1, 2], np.int8)).fill == (1, 2)


@pytest.mark.parametrize("name", LAYOUTS)
@pytest.mark.parametrize(
    "fill", ["bogus", "", True, None, {"a": 1}, float("nan"), float("inf"), [1, "x"], [[1]],
             np.zeros((2, 2))],
)
def test_bad_fill_specs(name: str, fill: object) -> None:
    with pytest.raises(CodecConfigError, match="fill"):
        sc.get_codec(name, fill=fill)


def test_auto_is_for_hybrid_only() -> None:
    with pytest.raises(CodecConfigError, match="'zero', 'mode', 'row-mode', 'rows'"):
        sc.get_codec("bitmask", fill="auto")


@pytest.mark.parametrize("name", LAYOUTS)
def test_rows_does_not_encode(name: str) -> None:
    with pytest.raises(CodecConfigError, match="pass the values themselves"):
        sc.get_codec(name, fill="rows").encode(np.ones((2, 4), np.float32))


@pytest.mark.parametrize("name", LAYOUTS)
def test_wrong_length(name: str) -> None:
    with pytest.raises(FillError, match="fill has 3 values but the input has 6 rows"):
        sc.get_codec(name, fill=[1, 2, 3]).encode(np.ones((2, 3, 4), np.float32))


@pytest.mark.parametrize("name", LAYOUTS)
@pytest.mark.parametrize(
    ("dtype", "fill", "match"),
    [
        (np.uint8, 256, r"fill=256 is not a value of uint8: it holds integers in \[0, 255\]"),
        (np.uint8, -1, "not a value of uint8"),
        (np.int8, 0.5, "not a value of int8"),
        (np.float16, 0.1, "not exactly representable in float16"),
        (np.float16, 1e6, "not exactly representable in float16"),
        (ml_dtypes.bfloat16, 1.001, "not exactly representable in bfloat16"),
        (np.float64, 2**60 + 1, "not exactly representable in float64"),
        (np.uint8, [1, 300], r"fill\[1\]=300 is not a value of uint8"),
    ],
)
def test_unrepresentable(name: str, dtype: Any, fill: Any, match: str) -> None:
    x = np.ones((2, 4), dtype)
    with pytest.raises(FillError, match=match):
        sc.get_codec(name, fill=fill).encode(x)
    assert issubclass(FillError, sc.SparseCodecsError)


def test_nm_fill_is_still_n_of_m() -> None:
    w, zp = zero_point_weight(rows=4, cols=8)
    w[2, 4:8] = zp[2] + 1  # a group with no entry equal to its row's fill
    with pytest.raises(PatternError, match=r"row index \(2,\), columns 4:8\) has 4 entries other"):
        sc.get_codec("nm", fill=zp.tolist()).encode(w)


# -- hostile frames ----------------------------------------------------------------------------


def _frame(name: str, fill: Any = "row-mode") -> bytes:
    w, _ = zero_point_weight(rows=4, cols=10, seed=5)  # 10 columns: a padded last group
    return sc.get_codec(name, fill=fill).encode(w)


def _sections(frame: bytes) -> dict[str, bytes]:
    header, payloads = split_frame(frame)
    return {s[0]: p for s, p in zip(header["sections"], payloads, strict=True)}


@pytest.mark.parametrize("name", LAYOUTS)
@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda h, s: ({}, {"fill": s["fill"][:-1]}), "section 'fill' has 3 bytes, expected 4"),
        (lambda h, s: ({"meta": {**h["meta"], "fill": "scalar"}}, {}), "expected 1 x 1"),
        (lambda h, s: ({"meta": {**h["meta"], "fill": "row"}}, {}), "meta 'fill' must be"),
        (lambda h, s: ({"meta": {**h["meta"], "fill": 1}}, {}), "meta 'fill' must be"),
        (lambda h, s: ({"meta": {k: v for k, v in h["meta"].items() if k != "fill"}}, {}),
         "unexpected sections in frame: \\['fill'\\]"),
    ],
)
def test_hostile_fill_frames(name: str, edit: Any, match: str) -> None:
    frame = _frame(name)
    header, _ = split_frame(frame)
    new_header, new_sections = edit(header, _sections(frame))
    bad = reframe(frame, header=new_header or None, sections=new_sections or None)
    with pytest.raises(FrameLayoutError, match=match):
        sc.decode(bad)


@pytest.mark.parametrize("name", LAYOUTS)
def test_meta_fill_without_a_section(name: str) -> None:
    w = np.zeros((4, 8), np.uint8)
    w[:, ::4] = 9
    frame = sc.get_codec(name).encode(w)
    header, _ = split_frame(frame)
    bad = reframe(frame, header={"meta": {**header["meta"], "fill": "scalar"}})
    with pytest.raises(FrameLayoutError, match="section 'fill' is missing"):
        sc.decode(bad)


@pytest.mark.parametrize("fill", [9, [5, 9]])
def test_nm_padding_must_hold_the_fill(fill: Any) -> None:
    x = np.array([[5, 9, 9, 5, 9], [9, 0, 0, 9, 1]], np.uint8)  # 5 columns: 3 padding slots
    frame = roundtrip(sc.get_codec("nm", fill=fill), x)
    values = np.frombuffer(_sections(frame)["values"], np.uint8).copy()
    # Row 1, group 1 keeps column 4 and the padding slot after it, which holds the fill 9.
    assert values[-4:].tolist() == [0, 0, 1, 9]
    values[-1] = 0  # 0, the fill of a zero-fill frame, is no fill here
    with pytest.raises(FrameLayoutError, match="other than the fill in a padding slot"):
        sc.decode(reframe(frame, sections={"values": values.tobytes()}))


def test_hybrid_dense_frame_with_a_fill_is_refused() -> None:
    x = np.arange(1, 33, dtype=np.float32).reshape(4, 8)
    frame = sc.get_codec("hybrid", layout="dense").encode(x)
    header, payloads = split_frame(frame)
    table = [*header["sections"], ["fill", "codebook", 4]]
    bad = reframe(
        frame,
        header={"meta": {**header["meta"], "fill": "scalar"}, "sections": table},
        sections=[*payloads, b"\x00\x00\x80\x3f"],
    )
    with pytest.raises(FrameLayoutError, match="layout 'dense' has a fill"):
        sc.decode(bad)


# -- hybrid ------------------------------------------------------------------------------------


def test_hybrid_auto_picks_row_mode_for_zero_points() -> None:
    w, _ = zero_point_weight(rows=64, cols=256)
    auto = roundtrip(sc.get_codec("hybrid"), w)
    zero = roundtrip(sc.get_codec("hybrid", fill="zero"), w)
    header = split_frame(auto)[0]
    assert header["config"]["fill"] == "row-mode"
    assert header["config"]["layout"] == "nm"
    assert len(auto) < 0.75 * len(zero), (len(auto), len(zero))
    assert "fill" not in split_frame(zero)[0]["config"]


def test_hybrid_auto_picks_mode_for_one_zero_point() -> None:
    x = np.full((64, 256), 128, np.uint8)
    kept = np.random.default_rng(0).integers(0, 255, (64, 64)).astype(np.uint8)
    x[:, ::4] = np.where(kept == 128, 7, kept)
    frame = roundtrip(sc.get_codec("hybrid"), x)
    assert split_frame(frame)[0]["config"]["fill"] == "mode"


def test_hybrid_zero_mode_pays_nothing() -> None:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((32, 64)) * 0.05).astype(np.float32)
    x[:, 1::2] = 0  # half zeros: mode zero in the tensor and in every row
    frame = sc.get_codec("hybrid").encode(x)
    header = split_frame(frame)[0]
    assert "fill" not in header["config"] and "fill" not in header["meta"]
    assert frame == sc.get_codec("hybrid", fill="zero").encode(x)


def test_hybrid_explicit_fills() -> None:
    w, zp = zero_point_weight()
    for fill in [zp.tolist(), "row-mode"]:
        for layout in ["bitmask", "nm", "auto"]:
            frame = roundtrip(sc.get_codec("hybrid", layout=layout, fill=fill), w)
            assert split_frame(frame)[0]["meta"]["fill"] == "rows"
    frame = roundtrip(sc.get_codec("hybrid", layout="dense", fill="row-mode"), w)
    assert "fill" not in split_frame(frame)[0]["meta"]


# -- compute -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LAYOUTS)
def test_matmul_with_a_fill(name: str) -> None:
    w, zp = zero_point_weight(rows=8, cols=32)
    x = np.random.default_rng(0).standard_normal((3, 32)).astype(np.float32)
    stats = sc.MatmulStats()
    y = sc.matmul(x, sc.get_codec(name, fill=zp.tolist()).encode(w), stats=stats)
    np.testing.assert_allclose(y, x @ w.astype(np.float32).T, rtol=1e-5)
    assert stats.paths == [f"{name}:decoded"]
    layer = sc.CompressedLinear.from_array(w, sc.get_codec(name, fill="row-mode"), block_rows=3)
    np.testing.assert_allclose(layer(x), x @ w.astype(np.float32).T, rtol=1e-5)


# -- kernels against numpy references -----------------------------------------------------------


def _fills(rng: np.random.Generator, rows: int, dt: np.dtype) -> list[np.ndarray]:
    return [rng.integers(1, 200, 1).astype(dt), rng.integers(0, 4, rows).astype(dt)]


def _dense(rng: np.random.Generator, rows: int, cols: int, fill: np.ndarray, dt: Any):
    row_fill = np.broadcast_to(fill.reshape(-1, 1), (rows, cols)) if fill.size > 1 else fill[0]
    x = np.where(rng.random((rows, cols)) < 0.6, row_fill, rng.integers(0, 6, (rows, cols)))
    return np.ascontiguousarray(x.astype(dt)), np.asarray(row_fill) + np.zeros((rows, cols), dt)


SHAPES = [(1, 1), (3, 7), (5, 16), (9, 13), (4, 0)]


@pytest.mark.parametrize("dt", [np.uint8, np.uint16, np.uint32, np.uint64])
@pytest.mark.parametrize("shape", SHAPES)
def test_bitmask_fill_kernels(dt: Any, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    rows, cols = shape
    for fill in _fills(rng, rows, np.dtype(dt)):
        x, background = _dense(rng, rows, cols, fill, dt)
        keep = (x != background).reshape(-1)
        mask = np.empty((x.size + 7) // 8, np.uint8)
        values = np.empty(int(keep.sum()) + 1, dt)
        k.bitmask_split_fill(x.reshape(-1), mask, values, fill, cols)
        np.testing.assert_array_equal(mask, np.packbits(keep, bitorder="little"))
        np.testing.assert_array_equal(values[:-1], x.reshape(-1)[keep])
        out = np.full(x.size, 0xA5, dt)
        k.bitmask_scatter_fill(mask, values[:-1], out, fill, cols)
        np.testing.assert_array_equal(out, np.where(keep, x.reshape(-1), background.reshape(-1)))


@pytest.mark.parametrize("dt", [np.uint8, np.uint16, np.uint64])
@pytest.mark.parametrize("shape", SHAPES)
def test_csr_fill_kernel(dt: Any, shape: tuple[int, int]) -> None:
    import scipy.sparse

    rng = np.random.default_rng(sum(shape) + 1)
    rows, cols = shape
    for fill in _fills(rng, rows, np.dtype(dt)):
        x, background = _dense(rng, rows, cols, fill, dt)
        for by_columns in (False, True):
            a = (x - background).T if by_columns else x - background  # entries != the fill
            m = scipy.sparse.csr_matrix(a != 0)
            major, minor = a.shape
            data = (x.T if by_columns else x)[a != 0]
            out = np.full(major * minor, 0xA5, dt)
            k.csr_scatter_fill(m.indptr.astype(np.int64), m.indices, data, out, major, minor,
                               fill, by_columns)
            want = x.T if by_columns else x
            np.testing.assert_array_equal(out.reshape(major, minor), want)


def _ref_codes(x_rows: np.ndarray, fill: np.ndarray, n: int, m: int):
    """Reference nm split: codes (lexicographic) and kept values, padding = the fill."""
    rows, cols = x_rows.shape
    gpr = -(-cols // m)
    row_fill = fill.reshape(-1, 1) if fill.size > 1 else np.full((rows, 1), fill[0])
    padded = np.concatenate([x_rows, np.repeat(row_fill, gpr * m - cols, 1)], 1)
    groups = padded.reshape(rows * gpr, m)
    keep = groups != np.repeat(row_fill, gpr, 0)
    combos = list(combinations(range(m), n))
    codes, values = [], []
    for g, kept in enumerate(keep):
        pos = list(np.flatnonzero(kept))
        pos += [p for p in range(m) if p not in pos][: n - len(pos)]
        codes.append(combos.index(tuple(sorted(pos))))
        values.extend(groups[g, sorted(pos)])
    return np.array(codes), np.array(values, x_rows.dtype)


@pytest.mark.parametrize(("n", "m"), [(2, 4), (1, 3), (3, 8)])
@pytest.mark.parametrize("shape", [(1, 1), (3, 8), (4, 10), (2, 17)])
def test_nm_fill_kernels(n: int, m: int, shape: tuple[int, int]) -> None:
    from sparsecodecs.codecs._nm import _identity_lut, nm_tables

    rng = np.random.default_rng(n * m + sum(shape))
    rows, cols = shape
    tables = nm_tables(n, m)
    for fill in _fills(rng, rows, np.dtype(np.uint16)):
        row_fill = np.broadcast_to(fill.reshape(-1, 1), (rows, cols)) if fill.size > 1 else fill[0]
        x = np.zeros((rows, cols), np.uint16) + row_fill
        for r in range(rows):  # n non-fill entries at random positions of each group
            for g in range(0, cols, m):
                width = min(m, cols - g)
                pos = rng.choice(width, min(n, width), replace=False)
                x[r, g + pos] = rng.integers(10, 99, pos.size)
        ngroups = rows * -(-cols // m)
        codes = np.empty(ngroups, np.uint16)
        values = np.empty(ngroups * n, np.uint16)
        bad = k.nm_split_fill(x.reshape(-1), rows, cols, m, tables.code_of_mask,
                              tables.positions, codes, values, fill)
        assert bad == -1
        want_codes, want_values = _ref_codes(x, fill, n, m)
        np.testing.assert_array_equal(codes, want_codes)
        np.testing.assert_array_equal(values, want_values)
        out = np.full(rows * cols, 0xA5, np.uint16)
        assert k.nm_scatter_fill(codes, _identity_lut(tables.ncodes), tables.positions, values,
                                 out, rows, cols, m, fill) == 0
        np.testing.assert_array_equal(out.reshape(rows, cols), x)


@pytest.mark.parametrize("dt", [np.uint8, np.uint16, np.uint32, np.uint64])
@pytest.mark.parametrize("cols", [21, 300])  # uint8 rows of 300: the count-table scan
def test_row_modes_against_numpy(dt: Any, cols: int) -> None:
    rng = np.random.default_rng(7)
    x = rng.integers(0, 5, (40, cols)).astype(dt)
    x[3] = 0
    x[4, : cols // 2 + 1] = 0  # more than half zeros
    x[5, :10] = 0  # a tie of zeros and threes: the smaller pattern wins
    x[5, 10:20] = 3
    x[5, 20:] = np.arange(cols - 20) + 4
    x[7, :10] = 4  # a tie of fours and twos, no zeros
    x[7, 10:20] = 2
    x[7, 20:] = np.arange(cols - 20) + 5
    if np.dtype(dt).itemsize >= 2:
        x[6] = np.iinfo(dt).max
    want = []
    for row in x:
        patterns, counts = np.unique(row, return_counts=True)
        want.append(patterns[np.argmax(counts)])  # argmax: the first, i.e. smallest, of ties
    np.testing.assert_array_equal(row_modes(x), np.array(want, dt))
    np.testing.assert_array_equal(row_modes(x[:, :0]), np.zeros(40, dt))
    patterns, counts = np.unique(x, return_counts=True)
    assert tensor_mode(x.reshape(-1)) == patterns[np.argmax(counts)]
    assert tensor_mode(x[:0].reshape(-1)) == 0


def _numpy_row_modes(x: np.ndarray) -> np.ndarray:
    want = []
    for row in x:
        patterns, counts = np.unique(row, return_counts=True)
        want.append(patterns[np.argmax(counts)])  # argmax: the first, i.e. smallest, of ties
    return np.array(want, x.dtype)


@pytest.mark.parametrize("dt", [np.uint32, np.uint64])
@pytest.mark.parametrize("cols", [1, 2, 64, 383, 4096, 4097])
def test_row_modes_of_wide_values_against_numpy(dt: Any, cols: int) -> None:
    """Wide values: short rows counted in a hash table, long ones (over 4096) sorted; rows of
    distinct values (ties everywhere: the smallest wins), of few values, and mostly zeros."""
    rng = np.random.default_rng(cols)
    info = np.iinfo(dt)
    x = rng.integers(1, info.max, (6, cols), dtype=dt, endpoint=True)
    x[1] = rng.integers(info.max - 3, info.max, cols, dtype=dt, endpoint=True)
    x[2, : cols // 2 + 1] = 0
    x[3, ::3] = 12345
    x[4] = info.max
    np.testing.assert_array_equal(row_modes(x), _numpy_row_modes(x))


@pytest.mark.parametrize("cols", [1, 3, 64, 80, 383])
@pytest.mark.parametrize("step", [1, 6])
@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_row_modes_of_float32_at_lower_precision(cols: int, step: int, precision: str) -> None:
    """32-bit patterns that 16-bit ones stand for in order (all ending in 16 zero bits, or
    float32 values float16 holds exactly) are counted as those: the same modes as numpy finds,
    ties to the smaller pattern, rows of one pattern, at least half zeros, and the largest
    patterns (negative NaNs); one pattern past that precision sends the rest to the sort, with
    the same answer."""
    from sparsecodecs.codecs._kernels import narrow_patterns

    rng = np.random.default_rng(cols + step)
    if precision == "bfloat16":
        x = rng.integers(0, 1 << 16, (70, cols), dtype=np.uint32) << np.uint32(16)
        top = np.uint32(0xFFFF0000)
    else:  # every float16 pattern, widened
        x = (rng.integers(0, 1 << 16, (70, cols)).astype(np.uint16).view(np.float16)
             .astype(np.float32).view(np.uint32))
        x[np.isnan(x.view(np.float32))] = 0x7FC00000
        top = np.uint32(0xFFFFE000)
    x[1] = x[1, 0]
    x[2, : cols // 2 + 1] = 0
    x[3] = top
    x[4, ::2] = np.float32(0.5).view(np.uint32)
    x[5] = top - (np.arange(cols) % 3).astype(np.uint32) * np.uint32(1 << 16)  # ties at the top
    sampled = np.ascontiguousarray(x[:, ::step])
    assert narrow_patterns(sampled) is not None  # the 16-bit path is the one taken
    want = _numpy_row_modes(sampled)
    got = row_modes(x, step)
    assert got.dtype == np.uint32
    np.testing.assert_array_equal(got, want)
    x[-1, -1] |= 1  # past the first 64 patterns when the rows are long
    if cols > 1 and (cols - 1) % step == 0:  # the last column is sampled: the sort's turn
        assert narrow_patterns(np.ascontiguousarray(x[:, ::step])) is None
    np.testing.assert_array_equal(row_modes(x, step),
                                  _numpy_row_modes(np.ascontiguousarray(x[:, ::step])))


@pytest.mark.parametrize("dt", [np.uint8, np.uint16, np.uint32])
@pytest.mark.parametrize("cols", [1, 31, 32, 33, 63, 64, 65, 80, 127, 128, 300, 384])
def test_row_modes_of_sampled_columns_at_every_level(dt: Any, cols: int) -> None:
    """``row_modes(x, step)``: the modes of columns 0, step, 2 * step, ... read in place (also
    from items off their alignment), at every SIMD level (16-bit samples of up to 64 items take
    the AVX-512 level's registers, longer ones and other widths the counting table or the
    sort): as numpy finds them on a copy of those columns. Rows of distinct values (ties: the
    smallest), of few values, at least half zeros and just under, a mode only in the last lane,
    and the largest pattern."""
    from sparsecodecs import kernels

    rng = np.random.default_rng(cols * 7 + np.dtype(dt).itemsize)
    top = np.iinfo(dt).max
    x = rng.integers(1, top, (9, cols), dtype=dt, endpoint=True)
    x[1] = rng.integers(0, 4, cols)
    x[2, : cols // 2 + 1] = 0
    x[3, : (cols - 1) // 2] = 0
    x[4] = top
    x[5, -2:] = 7  # a pair at the end of the row
    x[6] = np.arange(cols) % 3 + top - 2
    x[7, ::2] = 5
    for step in sorted({1, 2, 3, 6, max(1, cols // 64), cols + 1}):
        # row 7's sample: a tie of 8s and 9s (8 wins), where any item read past the sample
        # (the row's next column, the next row's first) is a 9 that would break it
        x[7] = 9
        n = len(range(0, cols, step))
        x[7, ::step] = np.where(np.arange(n) < n // 2, 8, 9) if n % 2 == 0 else np.where(
            np.arange(n) < n // 2, 8, np.where(np.arange(n) < n - 1, 9, 3))
        x[8, 0] = 9
        want = _numpy_row_modes(np.ascontiguousarray(x[:, ::step]))
        # and the same items one byte off their alignment (a view into a byte buffer)
        odd = np.frombuffer(b"\0" + x.tobytes(), dt, offset=1).reshape(x.shape)
        for level in kernels.LEVELS:
            if kernels.LEVELS[level] > kernels.LEVELS[kernels.cpu_simd()]:
                continue
            with kernels.use_simd(level):
                np.testing.assert_array_equal(row_modes(x, step), want, err_msg=f"{step} {level}")
                np.testing.assert_array_equal(row_modes(odd, step), want)


@pytest.mark.parametrize("cols", [1, 31, 33, 63, 64, 80])
def test_row_modes_read_nothing_past_the_rows(cols: int) -> None:
    """16-bit rows ending exactly where an inaccessible page starts, whole and sampled, at every
    SIMD level: a kernel loading a lane past the last row crashes here (the registers' lanes
    past a row are masked off)."""
    from sparsecodecs import kernels
    from test_huffman import guarded

    rng = np.random.default_rng(cols)
    x = rng.integers(0, 5, (3, cols)).astype(np.uint16)
    at_edge = guarded(x.tobytes()).view(np.uint16).reshape(3, cols)
    for step in (1, 2):
        want = _numpy_row_modes(np.ascontiguousarray(x[:, ::step]))
        for level in kernels.LEVELS:
            if kernels.LEVELS[level] > kernels.LEVELS[kernels.cpu_simd()]:
                continue
            with kernels.use_simd(level):
                np.testing.assert_array_equal(row_modes(at_edge, step), want)


def test_row_modes_of_colliding_values_fall_back_to_sorting() -> None:
    """Values chosen so that every one hashes to the same slot (t / K mod 2**64, K the
    multiplier of the hash) run past the probe limit: the row is sorted instead, with the same
    mode, and no row takes quadratic time."""
    k = 0x9E3779B97F4A7C15
    inv = pow(k, -1, 1 << 64)
    colliding = np.array([(t * inv) % (1 << 64) for t in range(1, 2001)], np.uint64)
    x = np.stack([colliding, colliding[::-1].copy(), colliding.copy()])
    x[2, 100:200] = colliding[7]  # a mode among the collisions
    np.testing.assert_array_equal(row_modes(x), _numpy_row_modes(x))


# -- conformance ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "codec",
    [
        sc.get_codec("bitmask", fill="row-mode"),
        sc.get_codec("csr", fill="mode"),
        sc.get_codec("csc", fill="row-mode"),
        sc.get_codec("hybrid", fill="row-mode"),
        sc.get_codec("nm", fill=1),  # the kit draws its arrays around a numeric fill
        sc.get_codec("csr", fill=1),
    ],
    ids=lambda c: f"{c.codec_id}-{c.fill}",
)
def test_fill_variants_conform(codec: sc.Codec) -> None:
    check_codec(codec, max_examples=10)


def test_bits_of_is_what_we_compare() -> None:  # the helpers compare bit patterns, not values
    a, b = np.array([0.0], np.float32), np.array([-0.0], np.float32)
    assert not np.array_equal(bits_of(a), bits_of(b))


@pytest.mark.parametrize("codec", ["bitmask", "csr", "hybrid"])
def test_fills_of_the_4bit_dtypes(codec: str):
    """A 4-bit fill is checked against the 4-bit range and stored as its nibble."""
    x = np.array([[-8, 7, -8, -8], [3, -8, -8, -1]], ml_dtypes.int4)
    frame = sc.get_codec(codec, fill=-8).encode(x)
    assert np.array_equal(sc.decode(frame).view(np.uint8), x.view(np.uint8))
    with pytest.raises(FillError, match=r"fill=8 is not a value of int4: it holds integers in "
                                         r"\[-8, 7\]"):
        sc.get_codec(codec, fill=8).encode(x)
    u = np.array([[15, 15, 2]], ml_dtypes.uint4)
    assert np.array_equal(sc.decode(sc.get_codec(codec, fill=15).encode(u)).view(np.uint8),
                          u.view(np.uint8))
    with pytest.raises(FillError, match=r"\[0, 15\]"):
        sc.get_codec(codec, fill=-1).encode(u)


def test_row_modes_reuse_their_table_across_calls_and_threads() -> None:
    """row_modes keeps one zeroed counting table per thread between calls: call after call,
    short rows and long, 8- and 16-bit, on four threads, each answer is numpy's (fails if a
    call leaves counts behind in the table)."""
    from concurrent.futures import ThreadPoolExecutor

    def check(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for i in range(12):
            dt = (np.uint8, np.uint16)[i % 2]
            cols = (7, 33, 300)[i % 3]
            x = rng.integers(1, 4 + 40 * (i % 4), (25, cols)).astype(dt)
            np.testing.assert_array_equal(row_modes(x), _numpy_row_modes(x))

    check(0)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(check, range(1, 9)))
