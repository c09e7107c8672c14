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

import ml_dtypes
import numpy as np
import pytest

import sparsecodecs as sc

numcodecs = pytest.importorskip("numcodecs")
zarr = pytest.importorskip("zarr")

from sparsecodecs import numcodecs_compat  # noqa: E402

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
