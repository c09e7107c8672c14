"""The order-0 entropy bounds of the bench (sparsecodecs.bench.entropy)."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

from sparsecodecs.bench.entropy import (
    JOINT_MAX_DISTINCT,
    entropy_bound,
    h0,
    h0_bits,
    layout_bits,
    value_bits,
)
from sparsecodecs.registry import as_bits


def manual_h0_bits(symbols: np.ndarray) -> float:
    _, counts = np.unique(symbols, return_counts=True)
    p = counts / counts.sum()
    return float(-(counts * np.log2(p)).sum())


@pytest.mark.parametrize("alphabet", [1, 2, 16, 256, 65536, 1 << 20])
def test_uniform_data_gives_log2_alphabet(alphabet):
    symbols = np.arange(alphabet, dtype=np.uint32 if alphabet > 65536 else np.uint16)
    assert h0(np.tile(symbols, 3)) == pytest.approx(math.log2(alphabet), abs=1e-9)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.uint64, np.int8])
def test_constant_gives_zero(dtype):
    assert h0(np.full(1000, 7, dtype)) == 0.0
    assert h0_bits(np.full(10, 7, dtype)) == 0.0


def test_h0_of_empty_is_zero():
    assert h0(np.zeros(0, np.uint8)) == 0.0


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.uint64])
def test_h0_matches_the_definition(dtype):
    rng = np.random.default_rng(0)
    symbols = rng.geometric(0.3, 5000).astype(dtype)
    assert h0_bits(symbols) == pytest.approx(manual_h0_bits(symbols), rel=1e-12)


def test_layout_dense_is_free():
    assert layout_bits(np.arange(1, 9, dtype=np.uint16).reshape(2, 4)) == ("dense", 0.0)


def test_layout_2_4_is_the_pattern_entropy():
    rng = np.random.default_rng(1)
    patterns = [0b0011, 0b0101, 0b1001, 0b0110, 0b1010, 0b1100]
    codes = rng.integers(0, 6, 3000)
    masks = np.array(patterns)[codes]
    bits = (((masks[:, None] >> np.arange(4)) & 1) * 7).astype(np.uint16).reshape(100, 120)
    kind, n_bits = layout_bits(bits)
    assert kind == "2:4"
    assert n_bits == pytest.approx(manual_h0_bits(codes), rel=1e-12)
    assert n_bits / 3000 == pytest.approx(math.log2(6), abs=0.01)


def test_layout_nm_pads_a_short_last_group():
    bits = np.array([[1, 1, 0, 0, 1, 0]], np.uint8)  # groups 0011 and 01(00)
    kind, n_bits = layout_bits(bits)
    assert kind == "2:4" and n_bits == pytest.approx(2.0)


def test_layout_mask_is_binary_entropy_times_size():
    rng = np.random.default_rng(2)
    bits = (rng.random((64, 64)) < 0.3).astype(np.uint32)
    bits[0, :4] = 1  # three or more in a group: not 2:4
    p = bits.mean()
    kind, n_bits = layout_bits(bits)
    assert kind == "mask"
    assert n_bits == pytest.approx(bits.size * -(p * math.log2(p) + (1 - p) * math.log2(1 - p)))


def test_value_bits_bfloat16_split_and_joint():
    v = np.array([1.0, -1.0, 2.0, -2.0, 1.0, 1.0, 1.0, 1.0], ml_dtypes.bfloat16).view(np.uint16)
    split, joint = value_bits(v, ml_dtypes.bfloat16)
    exponent, sign = (v >> 7) & 0xFF, v >> 15
    assert split == pytest.approx(manual_h0_bits(exponent) + manual_h0_bits(sign))
    assert joint == pytest.approx(manual_h0_bits(v))


def test_value_bits_float32_splits_sign_mantissa_into_bytes():
    rng = np.random.default_rng(3)
    v = (rng.standard_normal(20000) * 0.02).astype(np.float32).view(np.uint32)
    split, joint = value_bits(v, np.float32)
    exponent = (v >> 23) & 0xFF
    sign_mantissa = ((v >> 31) << 23) | (v & 0x7FFFFF)
    planes = [(sign_mantissa >> (8 * i)) & 0xFF for i in range(3)]
    assert split == pytest.approx(manual_h0_bits(exponent)
                                  + sum(manual_h0_bits(p) for p in planes), rel=1e-12)
    assert joint is None or joint <= 20000 * math.log2(20000) + 1e-6


def test_value_bits_joint_only_for_few_distinct_values():
    many = np.arange(JOINT_MAX_DISTINCT + 1, dtype=np.uint32) + (1 << 23)
    assert value_bits(many, np.float32)[1] is None
    few = np.repeat(np.arange(16, dtype=np.uint32) + (120 << 23), 50)
    split, joint = value_bits(few, np.float32)
    assert joint == pytest.approx(few.size * 4.0)
    assert joint <= split


def test_value_bits_integers_use_byte_planes():
    v = np.array([0x0102, 0x0103, 0x0202, 0x0203] * 4, np.uint16).view(np.int16)
    split, joint = value_bits(v.view(np.uint16), np.int16)
    assert split == pytest.approx(16 * 2.0)  # low byte: 1 bit, high byte: 1 bit
    assert joint == pytest.approx(16 * 2.0)


@pytest.mark.parametrize("dtype", [ml_dtypes.bfloat16, np.float16, np.float32, np.float64,
                                   ml_dtypes.float8_e4m3fn, np.int32])
def test_entropy_bound_adds_layout_and_values(dtype):
    rng = np.random.default_rng(4)
    w = (rng.standard_normal((32, 48)) * 8).astype(dtype)
    w[:, ::2] = 0
    bound = entropy_bound(w)
    bits, _ = as_bits(w)
    kind, lbits = layout_bits(bits)
    split, joint = value_bits(bits[bits != 0], w.dtype)
    assert (bound.layout, bound.layout_bits) == (kind, lbits)
    assert bound.values_bits == (split if joint is None else min(split, joint))
    assert bound.nbytes == pytest.approx((lbits + bound.values_bits) / 8)
    assert bound.dense_bytes == w.nbytes
    assert 0 < bound.nbytes < w.nbytes


def test_entropy_bound_of_constant_and_empty():
    assert entropy_bound(np.full((8, 8), 0.5, np.float32)).bits == 0.0
    assert entropy_bound(np.zeros((0, 4), np.float16)).bits == 0.0
    assert entropy_bound(np.zeros((4, 4), ml_dtypes.bfloat16)).bits == 0.0


def test_bound_around_a_fill_and_dense():
    """Quantized tensors: the pattern is where values differ from the (per-row) fill."""
    q = np.array([[5, 9, 5, 5, 7, 5, 5, 1], [3, 3, 8, 3, 3, 3, 2, 3]], np.uint8)
    fill = np.array([[5], [3]], np.uint8)
    b = entropy_bound(q, fill=fill)
    kept = q != fill
    assert b.layout == "2:4"
    assert b.layout_bits == pytest.approx(h0_bits(
        (kept.reshape(-1, 4) * (1 << np.arange(4))).sum(axis=1).astype(np.uint16)))
    assert b.values_bits == pytest.approx(h0_bits(q[kept]))
    # against zero, the same tensor is dense: every value is a value
    assert entropy_bound(q).layout == "dense"
    d = entropy_bound(q, dense=True)
    assert (d.layout, d.layout_bits, d.bits) == ("dense", 0.0, pytest.approx(h0_bits(q)))
    # 4-bit values: nibble entropy, dense size packed
    q4 = (np.arange(10, dtype=np.uint8) % 4).view(ml_dtypes.int4)
    b4 = entropy_bound(q4, dense=True)
    assert b4.dense_bytes == 5 and b4.bits == pytest.approx(h0_bits(q4.view(np.uint8)))
