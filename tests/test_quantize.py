"""quantize / dequantize and the packed-int4 helpers."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

from sparsecodecs import (
    CodecConfigError,
    PatternError,
    ShapeError,
    SparseCodecsError,
    UnsupportedDtypeError,
)
from sparsecodecs.transforms import (
    QUANT_DTYPES,
    QuantizeReport,
    dequantize,
    pack_int4,
    prune,
    quantize,
    unpack_int4,
)

SCHEMES = [(bits, scheme) for bits in (8, 4) for scheme in ("symmetric", "asymmetric")]


def weights(shape: tuple[int, ...] = (16, 64), seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # rows of very different magnitudes: per-channel scales must differ
    return (rng.standard_normal(shape) * np.geomspace(1e-3, 1.0, shape[0])[:, None]).astype(
        np.float32
    )


def levels(q: np.ndarray) -> np.ndarray:
    return q.astype(np.int64)


@pytest.mark.parametrize(("bits", "scheme"), SCHEMES)
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
def test_round_trip_within_half_a_step(bits: int, scheme: str, axis: int | None):
    w = weights()
    q, rep = quantize(w, bits, scheme, axis=axis)
    assert q.dtype == QUANT_DTYPES[(bits, scheme)] and q.shape == w.shape
    assert isinstance(rep, QuantizeReport) and rep.dtype == q.dtype.name
    expected = () if axis is None else (w.shape[axis],)
    assert rep.scale.shape == expected and rep.zero_point.shape == expected
    assert rep.scale.dtype == np.float32 and (rep.scale > 0).all()
    back = dequantize(q, rep.scale, rep.zero_point, axis=axis, dtype=np.float64)
    step = rep.scale.astype(np.float64)
    if axis is not None:
        shape = [1] * w.ndim
        shape[axis] = -1
        step = step.reshape(shape)
    diff = np.abs(back - w.astype(np.float64))
    assert (diff <= step / 2 * (1 + 1e-9)).all()
    # the reported errors are those of the round trip
    x = w.astype(np.float64)
    assert rep.max_abs_error == pytest.approx(diff.max(), rel=1e-12)
    assert rep.rel_rms_error == pytest.approx(
        math.sqrt((diff**2).sum() / (x**2).sum()), rel=1e-9
    )
    assert 0 < rep.rel_rms_error < (0.03 if bits == 8 else 0.4)
    lv = levels(q)
    if scheme == "symmetric":
        top = 2 ** (bits - 1) - 1
        assert lv.min() >= -top and lv.max() <= top
        assert (rep.zero_point == 0).all()
        # the largest magnitude of each channel uses the top level
        assert np.abs(lv).max() == top
    else:
        assert lv.min() == 0 and lv.max() == 2**bits - 1


def test_per_channel_is_finer_than_per_tensor():
    w = weights()
    _, tensor = quantize(w, 8, axis=None)
    _, rows = quantize(w, 8, axis=0)
    assert rows.rel_rms_error < tensor.rel_rms_error / 2


@pytest.mark.parametrize(("bits", "scheme"), SCHEMES)
def test_zeros_map_exactly_to_the_zero_point(bits: int, scheme: str):
    w, _ = prune(weights(), "2:4")
    w[3] = -0.0  # a channel of (negative) zeros
    w[5] = np.abs(w[5])  # a channel without negative values
    q, rep = quantize(w, bits, scheme, axis=0)
    lv = levels(q)
    zp = rep.zero_point[:, None]
    zero = w == 0
    assert np.array_equal(lv == np.broadcast_to(zp, lv.shape), zero | (lv == zp))
    assert (lv[zero] == np.broadcast_to(zp, lv.shape)[zero]).all()
    assert rep.scale[3] == 1.0 and rep.zero_point[3] == 0
    back = dequantize(q, rep.scale, rep.zero_point, axis=0)
    assert (back[zero] == 0).all()
    if scheme == "asymmetric":
        assert rep.zero_point[5] == 0  # the range starts at 0
        assert len(set(rep.zero_point.tolist())) > 2  # per-row zero points differ


def test_exact_values_and_dtypes():
    w = np.array([[0.6, -1.0, 0.0, 0.25], [2.0, 0.0, 1.2, -0.5]], dtype=np.float32)
    q, rep = quantize(w, 4, "symmetric", axis=0)
    assert q.dtype == np.dtype(ml_dtypes.int4)
    assert q.astype(np.int8).tolist() == [[4, -7, 0, 2], [7, 0, 4, -2]]
    assert rep.scale.tolist() == [np.float32(1 / 7), np.float32(2 / 7)]
    q8, rep8 = quantize(w.astype(ml_dtypes.bfloat16), 8, "asymmetric")
    assert q8.dtype == np.uint8 and rep8.scale.shape == ()
    assert int(q8[0, 2]) == int(rep8.zero_point)


def test_empty_and_all_zero():
    q, rep = quantize(np.zeros((0, 4), np.float32), 8, axis=0)
    assert q.shape == (0, 4) and rep.scale.shape == (0,)
    q, rep = quantize(np.zeros((2, 3), np.float16), 4, "asymmetric")
    assert (levels(q) == 0).all() and rep.max_abs_error == 0 and rep.rel_rms_error == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"bits": 3}, CodecConfigError, "bits must be 8 or 4, got bits=3"),
        ({"bits": True}, CodecConfigError, "bits must be 8 or 4"),
        ({"scheme": "affine"}, CodecConfigError, "scheme must be one of 'symmetric'"),
        ({"axis": 2}, CodecConfigError, r"axis must be None \(per tensor\) or an integer in"),
        ({"axis": 1.0}, CodecConfigError, "axis must be None"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type, match: str):
    with pytest.raises(error, match=match):
        quantize(weights(), **kwargs)


def test_bad_inputs():
    with pytest.raises(UnsupportedDtypeError, match="floating-point weights, got dtype int8"):
        quantize(np.zeros(4, np.int8))
    with pytest.raises(UnsupportedDtypeError, match=r"expects a numpy\.ndarray"):
        quantize([1.0, 2.0])  # type: ignore[arg-type]
    w = weights()
    w[2, 7] = np.nan
    with pytest.raises(PatternError, match="finite weights; w holds nan at flat index 135"):
        quantize(w)
    q, rep = quantize(weights(), 8, axis=0)
    with pytest.raises(ShapeError, match=r"scale has shape \(3,\), expected \(16,\)"):
        dequantize(q, np.ones(3), 0, axis=0)
    with pytest.raises(UnsupportedDtypeError, match="integer array, got dtype float32"):
        dequantize(weights(), 1.0)
    with pytest.raises(CodecConfigError, match="axis must be None"):
        dequantize(q, rep.scale, rep.zero_point, axis=5)


# -- pack_int4 / unpack_int4 --------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["int4", "uint4"])
def test_pack_unpack_round_trip(dtype: str):
    dt = np.dtype(getattr(ml_dtypes, dtype))
    rng = np.random.default_rng(1)
    q = rng.integers(0, 16, (3, 5, 8)).astype(np.uint8).view(dt)
    packed = pack_int4(q)
    assert packed.dtype == np.uint8 and packed.shape == (3, 5, 4)
    nib = q.view(np.uint8)
    assert np.array_equal(packed, nib[..., 0::2] | (nib[..., 1::2] << 4))
    back = unpack_int4(packed, dtype)
    assert back.dtype == dt and np.array_equal(back.view(np.uint8), nib)
    assert np.array_equal(unpack_int4(packed, dt).view(np.uint8), nib)


def test_pack_known_bytes():
    q = np.array([1, -1, 7, -8], dtype=ml_dtypes.int4)
    assert pack_int4(q).tolist() == [0xF1, 0x87]
    assert unpack_int4(np.array([0xF1, 0x87], np.uint8)).astype(np.int8).tolist() == [1, -1, 7, -8]
    # a Fortran-ordered (non-contiguous) input packs its logical last axis
    f = np.asfortranarray(np.arange(8, dtype=np.uint8).reshape(2, 4).view(ml_dtypes.uint4))
    assert pack_int4(f).tolist() == [[0x10, 0x32], [0x54, 0x76]]


def test_pack_errors():
    with pytest.raises(ShapeError, match=r"even length; got shape \(2, 3\): pad the last axis"):
        pack_int4(np.zeros((2, 3), ml_dtypes.int4))
    with pytest.raises(ShapeError, match=r"got shape \(\)"):
        pack_int4(np.zeros((), ml_dtypes.int4))
    with pytest.raises(UnsupportedDtypeError, match="int4 or uint4 array, got int8"):
        pack_int4(np.zeros(4, np.int8))
    with pytest.raises(UnsupportedDtypeError, match="uint8 array, got int8"):
        unpack_int4(np.zeros(4, np.int8))
    with pytest.raises(UnsupportedDtypeError, match="dtype must be int4 or uint4, got 'int8'"):
        unpack_int4(np.zeros(4, np.uint8), "int8")
    with pytest.raises(UnsupportedDtypeError, match="dtype must be int4 or uint4"):
        unpack_int4(np.zeros(4, np.uint8), "nonsense")
    with pytest.raises(ShapeError):
        unpack_int4(np.zeros((), np.uint8))
    for exc in (ShapeError, UnsupportedDtypeError):
        assert issubclass(exc, SparseCodecsError)
