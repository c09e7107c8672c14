"""The per-frame fixed cost shortcuts: codecs built from frame configs are reused only for the
very same config (type for type), and memoised dtype names are the real names."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import sparsecodecs as sc
from sparsecodecs.registry import codec as codec_module
from sparsecodecs.registry.accounting import codec_for_frame
from sparsecodecs.registry.dtypes import SUPPORTED_DTYPES, name_of
from sparsecodecs.registry.frame import read_frame
from sparsecodecs.testing.frames import reframe, split_frame


def _frame() -> bytes:
    w = np.zeros((4, 8), np.float32)
    w[:, ::4] = 1.5
    return sc.get_codec("hybrid").encode(w)


def test_same_config_reuses_the_codec_and_equal_codecs_stay_equal():
    frame = _frame()
    first = codec_for_frame(read_frame(frame))
    again = codec_for_frame(read_frame(frame))
    assert again is first
    assert first == type(first).from_config(read_frame(frame).config)


@pytest.mark.parametrize(("good", "bad"), [(1, True), (2, 2.0), (2, "2"), (2, None)])
def test_a_config_value_of_another_type_is_still_refused_after_the_good_one(good, bad):
    frame = _frame()  # layout dense: n is recorded, and any valid n decodes it
    header, _ = split_frame(frame)
    ok = reframe(frame, header={"config": {**header["config"], "n": good}})
    assert sc.decode(ok).tobytes() == sc.decode(frame).tobytes()  # n=good is remembered now
    hostile = reframe(frame, header={"config": {**header["config"], "n": bad}})
    with pytest.raises(sc.FrameError, match="invalid config"):
        sc.decode(hostile)  # True == 1 and hash(True) == hash(1): the key must keep the type


def test_configs_with_containers_are_not_remembered(monkeypatch):
    monkeypatch.setattr(codec_module, "_BUILT", {})
    frame = _frame()
    header, _ = split_frame(frame)
    listed = reframe(frame, header={"config": {**header["config"], "n": [2]}})
    with pytest.raises(sc.FrameError, match="invalid config"):
        sc.decode(listed)
    assert codec_module._BUILT == {}
    sc.decode(frame)
    assert len(codec_module._BUILT) == 1


def test_the_remembered_codecs_are_bounded(monkeypatch):
    monkeypatch.setattr(codec_module, "_BUILT", {})
    monkeypatch.setattr(codec_module, "_BUILT_MAX", 2)
    w = np.zeros((4, 8), np.float32)
    for length in (15, 14, 13):
        sc.decode(sc.get_codec("hybrid", max_code_length=length).encode(w))
        assert len(codec_module._BUILT) <= 2


@pytest.mark.parametrize(
    "dtype",
    [np.float32, ">f4", np.int8, np.uint16, ml_dtypes.bfloat16, ml_dtypes.int4,
     ml_dtypes.float8_e4m3fn],
)
def test_name_of_is_the_dtype_name(dtype):
    dt = np.dtype(dtype)
    assert name_of(dt) == dt.name
    assert name_of(dt) == dt.name  # memoised answer too


def test_the_header_name_is_remembered_per_byte_order(monkeypatch):
    """dtype_name's remembered answers: a supported dtype's in either byte order, asked in
    either order, the same as computed afresh (a native and a swapped dtype are different
    keys); an unsupported dtype still raises, every time."""
    from sparsecodecs.registry import dtypes

    for first in ("=", ">"):
        monkeypatch.setattr(dtypes, "_HEADER_NAME", {})
        for name in SUPPORTED_DTYPES:
            base = SUPPORTED_DTYPES[name]
            order = (first, ">" if first == "=" else "=")
            for byteorder in order * 2:
                dt = base.newbyteorder(byteorder)
                want = (">" if byteorder == ">" and dt.itemsize > 1 else "") + name
                assert dtypes.dtype_name(dt) == want == dtypes._dtype_name(dt), (name, byteorder)
    for _ in range(2):
        with pytest.raises(sc.UnsupportedDtypeError):
            dtypes.dtype_name(np.dtype([("a", "<f4")]))
