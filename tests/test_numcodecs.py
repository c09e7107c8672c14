"""sparsecodecs codecs as numcodecs codecs and in Zarr arrays, tested the way numcodecs tests its
own codecs (bytes, bytearray and ndarray input, ``out=``, the config through JSON), plus real
Zarr v2 and v3 arrays written and read back, the reading done in a fresh process that never
imports sparsecodecs (entry points only)."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given

import sparsecodecs as sc

numcodecs = pytest.importorskip("numcodecs")
zarr = pytest.importorskip("zarr")

from sparsecodecs import numcodecs_compat  # noqa: E402
from sparsecodecs.testing import hostile_frames  # noqa: E402

BUILTINS = ["raw", "bitmask", "nm", "csr", "csc", "huffman", "centroid", "hybrid"]


def weights(dtype: object = np.float32) -> np.ndarray:
    x = np.zeros((8, 16), np.float32)
    x[:, ::4] = np.linspace(-3, 3, 32).reshape(8, 4)
    x[:, 3::4] = 0.5
    return x.astype(dtype)


@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_through_numcodecs(name: str) -> None:
    codec = numcodecs.get_codec({"id": f"sparsecodecs.{name}"})
    assert isinstance(codec, numcodecs_compat.SparseCodecsNumcodec)
    x = weights()
    frame = codec.encode(x)
    assert sc.inspect(frame).codec == name
    # ndarray input keeps dtype and shape; bytes and bytearray are bytes (not 2:4 sparse)
    assert_bits(codec.decode(frame), x)
    for buf in [] if name == "nm" else [x.tobytes(), bytearray(x.tobytes()), memoryview(x)]:
        got = codec.decode(codec.encode(buf))
        assert got.dtype == np.uint8 and got.tobytes() == x.tobytes()
    # decode from bytes, bytearray and ndarray frames, into out=
    for f in (frame, bytearray(frame), np.frombuffer(frame, np.uint8)):
        out = np.empty_like(x)
        assert codec.decode(f, out=out) is out
        assert_bits(out, x)
    # config round trip through JSON
    config = json.loads(json.dumps(codec.get_config()))
    again = numcodecs.get_codec(config)
    assert again == codec and again.get_config() == codec.get_config()
    assert again.encode(x) == frame


def assert_bits(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()


def test_dtype_parameter_reads_flat_bytes_and_params_are_validated() -> None:
    x = weights(ml_dtypes.bfloat16)
    codec = numcodecs.get_codec({"id": "sparsecodecs.hybrid", "dtype": "bfloat16"})
    flat = codec.decode(codec.encode(x.tobytes()))
    assert flat.dtype == x.dtype and flat.shape == (x.size,)
    assert flat.tobytes() == x.tobytes()
    # the structure helps: smaller than the same bytes read as uint8
    plain = numcodecs.get_codec({"id": "sparsecodecs.hybrid"})
    assert len(codec.encode(x.tobytes())) < len(plain.encode(x.tobytes()))
    with pytest.raises(sc.CodecConfigError, match="dtype"):
        numcodecs.get_codec({"id": "sparsecodecs.hybrid", "dtype": "complex64"})
    with pytest.raises(sc.CodecConfigError, match="dtype"):
        numcodecs.get_codec({"id": "sparsecodecs.hybrid", "dtype": ["float32"]})
    with pytest.raises(sc.registry.ShapeError, match="not a whole number of bfloat16"):
        codec.encode(b"abc")
    with pytest.raises(sc.CodecConfigError, match="unknown parameter"):
        numcodecs.get_codec({"id": "sparsecodecs.nm", "k": 3})
    nm = numcodecs.get_codec({"id": "sparsecodecs.nm", "n": 1, "m": 4})
    assert nm.get_config()["n"] == 1
    with pytest.raises(sc.FrameError):
        nm.decode(b"not a frame at all, certainly")


def test_zarr_v2_and_v3_arrays_read_back_without_importing_sparsecodecs(tmp_path: Path) -> None:
    from sparsecodecs.zarr3 import Hybrid

    x = weights()
    v2 = zarr.create_array(
        store=str(tmp_path / "v2.zarr"), shape=x.shape, chunks=(4, 16), dtype="float32",
        zarr_format=2, compressors=numcodecs.get_codec({"id": "sparsecodecs.hybrid"}),
    )
    v2[:] = x
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr: numcodecs codecs are not in the v3 spec
        v3 = zarr.create_array(
            store=str(tmp_path / "v3.zarr"), shape=x.shape, chunks=(4, 16), dtype="float32",
            serializer=Hybrid(), compressors=None,
        )
    v3[:] = x
    # each stored chunk is one of our frames, with the chunk's dtype and shape
    for chunk in (tmp_path / "v2.zarr" / "0.0", tmp_path / "v3.zarr" / "c" / "1" / "0"):
        report = sc.inspect(chunk.read_bytes())
        assert (report.codec, report.dtype, report.shape) == ("hybrid", "float32", (4, 16))
    script = (
        "import sys, warnings, zarr\n"
        "warnings.simplefilter('ignore')\n"
        "for name in ('v2.zarr', 'v3.zarr'):\n"
        "    sys.stdout.buffer.write(zarr.open_array(store=name, mode='r')[:].tobytes())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, check=True
    )
    assert done.stdout == x.tobytes() * 2


# -- numcodecs' own checks, over every codec -------------------------------------------------
#
# numcodecs tests its codecs with the helpers in numcodecs/tests/common.py; they run here over
# every built-in codec and the example plugin, on arrays of every dtype we keep, C and F order.
# The data is 2:4 sparse along every axis the codecs read it by (C rows, F columns, and the
# bytes of the buffer), so that `nm` takes all of it, bytes included. numcodecs compares values
# (NaN equal to NaN, 0.0 equal to -0.0); every check here also compares the bits.

from numcodecs.tests import common as nc_common  # noqa: E402

CODECS = [*BUILTINS, "rle_zeros"]
#: name -> (dtype, the non-zero values used); each value has at most one non-zero byte per
#: element of 4 bytes or more, at most one per 2-byte element.
DTYPES: dict[str, tuple[object, list[object]]] = {
    "float64": (np.float64, [2.0, -2.0]),
    "float32": (np.float32, [2.0, -0.5]),
    "float16": (np.float16, [2.0, -2.0]),
    "bfloat16": (ml_dtypes.bfloat16, [2.0, -0.5]),
    "float8_e4m3fn": (ml_dtypes.float8_e4m3fn, [2.0, -0.5]),
    "float4_e2m1fn": (ml_dtypes.float4_e2m1fn, [2.0, 0.5]),
    "int8": (np.int8, [1, -5]),
    "int16": (np.int16, [1, 100]),
    "int32": (np.int32, [1, 100]),
    "int64": (np.int64, [1, 100]),
    "uint8": (np.uint8, [1, 255]),
    "uint16": (np.uint16, [1, 255]),
    "uint32": (np.uint32, [1, 255]),
    "uint64": (np.uint64, [1, 255]),
    "int4": (ml_dtypes.int4, [1, 7]),
    "uint4": (ml_dtypes.uint4, [1, 15]),
    "bool": (np.bool_, [True, True]),
    "datetime64": ("M8[ns]", [1, 200]),
    "timedelta64": ("m8[10s]", [1, 200]),
    "big-endian float32": (">f4", [2.0, -0.5]),
    "big-endian datetime64": (">M8[D]", [1, 200]),
}
SHAPES = [(), (8,), (4, 8), (4, 4, 8), (0, 8)]


def sparse(dtype: object, shape: tuple[int, ...], order: str = "C",
           values: list[object] | None = None) -> np.ndarray:
    """Non-zero where the index sum is 0 or 1 modulo 4, so 2:4 sparse along the first and the
    last axis (both of a length divisible by 4); the values alternate."""
    dt = np.dtype(dtype)  # type: ignore[call-overload]
    if values is None:
        values = DTYPES[next(k for k, (d, _) in DTYPES.items() if np.dtype(d) == dt)][1]  # type: ignore[call-overload]
    index_sum = np.indices(shape).sum(axis=0) if shape else np.zeros((), int)
    keep = index_sum % 4 < 2
    if dt.kind in "Mm":
        base = np.where(keep, np.where(index_sum % 2 == 0, values[0], values[1]), 0)
        out = base.astype(np.int64).astype(dt.newbyteorder("=")).astype(dt)
    else:
        pick = np.array(values, dtype=dt)
        out = np.where(keep, pick[index_sum % 2], np.zeros((), dt)).astype(dt)
    return np.asarray(out, order=order) if order == "C" else np.asfortranarray(out)


def memory_bytes(a: Any) -> bytes:
    """The bytes of a buffer in its memory order (numcodecs' notion of its content)."""
    return numcodecs.compat.ensure_ndarray_like(a).tobytes(order="A")


def assert_same_array(got: Any, want: np.ndarray) -> None:
    """Same type, dtype, shape, memory order and bits."""
    assert isinstance(got, np.ndarray), type(got)
    assert (got.dtype, got.shape) == (want.dtype, want.shape)
    if want.ndim >= 2 and want.size > 1:
        assert got.flags.f_contiguous == want.flags.f_contiguous
        assert got.flags.c_contiguous == want.flags.c_contiguous
    assert memory_bytes(got) == memory_bytes(want)


def cases() -> list[tuple[str, tuple[int, ...], str]]:
    every_dtype = [(d, (4, 8), o) for d in DTYPES for o in "CF"]
    every_shape = [(d, s, o) for d in ("float32", "bool") for s in SHAPES for o in "CF"
                   if (d, s, o) not in {(d, (4, 8), o)}]
    return every_dtype + every_shape


@pytest.fixture(params=CODECS)
def ncodec(request: pytest.FixtureRequest) -> Any:
    if request.param == "rle_zeros":
        assert "rle_zeros" in sc.registry.registry.names(), "the example plugin is not installed"
    return numcodecs_compat.numcodec_class(request.param)()


def test_numcodecs_check_encode_decode(ncodec: Any) -> None:
    for dtype, shape, order in cases():
        x = sparse(DTYPES[dtype][0], shape, order)
        where = f"{ncodec!r} on {dtype} {shape} order {order}"
        try:
            nc_common.check_encode_decode(x, ncodec)
            nc_common.check_encode_decode_array(x, ncodec)
        except AssertionError as exc:
            raise AssertionError(f"{where}: {exc}") from exc
        assert_same_array(ncodec.decode(ncodec.encode(x)), x)


def test_decode_into_c_f_and_flat_out(ncodec: Any) -> None:
    """``out`` gets the input's bytes in memory order (numcodecs' contract), whatever its own
    order; an ``out`` of the input's order and shape gets the input itself. numcodecs' Zstd
    does the same with the same ``out`` (float32, where it takes the buffer)."""
    zstd = numcodecs.Zstd()
    for dtype in ("float32", "bfloat16", "bool", "datetime64", "int4"):
        for order in "CF":
            x = sparse(DTYPES[dtype][0], (4, 8), order)
            frame = ncodec.encode(x)
            outs: list[Any] = [np.empty_like(x, order="C"), np.empty_like(x, order="F")]
            outs += [np.empty(x.size, x.dtype), np.empty(x.nbytes, "u1"), bytearray(x.nbytes)]
            for out in outs:
                got = ncodec.decode(frame, out=out)
                assert memory_bytes(out) == memory_bytes(got) == memory_bytes(x)
                same_order = isinstance(out, np.ndarray) and out.shape == x.shape and (
                    out.flags.f_contiguous == (order == "F")
                )
                if same_order:
                    assert_same_array(out, x)
                if dtype == "float32":
                    ref = type(out)(len(out)) if isinstance(out, bytearray) else np.empty_like(out)
                    zstd.decode(zstd.encode(x), out=ref)
                    assert memory_bytes(ref) == memory_bytes(out)


def test_object_buffers_are_refused(ncodec: Any) -> None:
    nc_common.check_err_encode_object_buffer(ncodec)
    if ncodec.name != "nm":  # np.arange(10) is not 2:4 sparse
        nc_common.check_err_decode_object_buffer(ncodec)
    x = sparse(np.float32, (4, 8))
    frame = ncodec.encode(x)
    out = np.empty(x.size, dtype=object)
    with pytest.raises(sc.UnsupportedDtypeError, match="object"):
        ncodec.decode(frame, out=out)
    assert all(v is None for v in out)  # nothing was written
    with pytest.raises(sc.UnsupportedDtypeError, match="object"):
        ncodec.encode(np.array([1.0, None], dtype=object))
    with pytest.raises(sc.UnsupportedDtypeError, match="object"):
        ncodec.encode(np.zeros(2, dtype=[("a", "f4"), ("b", object)]))


def test_config_and_repr(ncodec: Any) -> None:
    nc_common.check_config(ncodec)
    text = repr(ncodec)
    cls = type(ncodec)
    assert text.startswith(f"{cls.__name__}(")
    again = eval(text, {cls.__name__: cls})  # our own repr, in a test
    assert again == ncodec and again.get_config() == ncodec.get_config()
    for key, value in ncodec.get_config().items():
        if key != "id":
            assert f"{key}={value!r}" in text


def test_special_values_bit_for_bit(ncodec: Any) -> None:
    specials = np.array([np.nan, -0.0, np.inf, -np.inf, 1e-45, 3.5], np.float32)
    specials.view(np.uint32)[0] = 0x7FC00123  # a NaN payload
    x = sparse(np.float32, (4, 8))
    keep = x != 0
    x[keep] = np.resize(specials, int(keep.sum()))  # 2:4, so nm takes it too
    for a in (x, np.asfortranarray(x), x.astype(ml_dtypes.bfloat16), x[0].copy()):
        assert_same_array(ncodec.decode(ncodec.encode(a)), a)


def test_other_dtypes_are_refused_not_changed(ncodec: Any) -> None:
    for bad in (np.ones(4, np.complex64), np.array(["ab", "c"]), np.array([b"ab"]),
                np.zeros(2, dtype=[("a", "f4")]), np.ones(2, np.longdouble)):
        with pytest.raises(sc.UnsupportedDtypeError, match="cannot keep"):
            ncodec.encode(bad)
    # their bytes are fine
    c = np.arange(4, dtype=np.complex64) * 0
    assert memory_bytes(ncodec.decode(ncodec.encode(c.view(np.uint8)))) == c.tobytes()


def test_hostile_marks_are_library_errors() -> None:
    from sparsecodecs.registry.frame import read_frame, write_frame

    codec = numcodecs_compat.Raw()
    frame = read_frame(codec.encode(np.array([0, 1, 2], np.uint8)))
    for marks in ({"dtype": "bool"}, {"dtype": "O"}, {"dtype": "<M8[ns]"}, {"order": "C"},
                  {"other": 1}, [], {"dtype": "M8[ns]; import os"}):
        bad = write_frame(frame.codec_id, frame.config, frame.info.dtype, frame.info.shape,
                          frame.sections, {"numcodecs": marks})
        with pytest.raises(sc.registry.FrameLayoutError):
            codec.decode(bad)
    with pytest.raises(sc.registry.ShapeError, match="out has 4 bytes"):
        codec.decode(codec.encode(np.zeros(3, np.uint8)), out=np.empty(4, np.uint8))
    with pytest.raises(sc.registry.ShapeError, match="contiguous"):
        codec.decode(codec.encode(np.zeros(3, np.uint8)), out=np.empty(6, np.uint8)[::2])
    readonly = np.zeros(3, np.uint8)
    readonly.flags.writeable = False
    with pytest.raises(sc.SparseCodecsError, match="read-only"):
        codec.decode(codec.encode(np.ones(3, np.uint8)), out=readonly)
    assert not readonly.any()
    with pytest.raises(sc.registry.FrameHeaderError):
        codec.decode(np.array([b"x"], dtype=object))


def _adapter_seeds() -> list[bytes]:
    raw, hybrid = numcodecs_compat.Raw(), numcodecs_compat.Hybrid()
    arrays = [sparse(np.float32, (4, 8), "F"), sparse(np.bool_, (4, 8)), sparse("M8[ns]", (8,)),
              sparse(">M8[D]", (4, 4), "F"), sparse(ml_dtypes.bfloat16, (4, 8), "F")]
    return [c.encode(a) for c in (raw, hybrid) for a in arrays]


@given(mutation=hostile_frames(_adapter_seeds()))
def test_the_adapter_decodes_or_refuses_hostile_frames(mutation: Any) -> None:
    """Mutated frames with marks (meta values retyped, dropped, spliced...): the adapter returns
    an array or raises a library error, also when decoding into ``out``; never warns."""
    codec = numcodecs_compat.Raw()
    for out in (None, np.empty(32, np.float32)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                got = codec.decode(mutation.frame, out=out)
            except sc.SparseCodecsError:
                continue
            except Exception as exc:
                raise AssertionError(f"{mutation.description}: {exc!r}") from exc
        assert isinstance(got, np.ndarray), mutation.description
