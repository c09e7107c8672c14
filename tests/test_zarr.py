"""Zarr arrays with our codecs, in both formats and both memory orders, with every built-in
codec and the example plugin: what is written is what is read back, bit for bit, and each
stored chunk is one of our frames with the chunk's logical dtype and shape."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import sparsecodecs as sc

numcodecs = pytest.importorskip("numcodecs")
zarr = pytest.importorskip("zarr")

from sparsecodecs import numcodecs_compat, zarr3  # noqa: E402

CODECS = ["raw", "bitmask", "nm", "csr", "csc", "huffman", "centroid", "hybrid", "rle_zeros"]
SHAPE, CHUNKS = (8, 16), (4, 8)


def data(dtype: str) -> np.ndarray:
    """2:4 sparse along both axes (so `nm` takes C and F chunks), with a NaN payload and -0.0."""
    i, j = np.indices(SHAPE)
    keep = (i + j) % 4 < 2
    if dtype == "bool":
        return keep.copy()
    x = np.where(keep, (i * SHAPE[1] + j + 1) * 0.25, 0).astype(dtype)
    if dtype == "float32":
        x.view(np.uint32)[0, 0] = 0x7FC00123  # a NaN payload at a kept position
        x.view(np.uint32)[1, 0] = 0x80000000  # -0.0
    return x


def create(tmp_path: Path, fmt: int, order: str, name: str, dtype: str) -> Any:
    store = str(tmp_path / f"{name}-v{fmt}-{order}-{dtype}.zarr")
    if fmt == 2:
        codec = numcodecs_compat.numcodec_class(name)()
        return zarr.create_array(store=store, shape=SHAPE, chunks=CHUNKS, dtype=dtype,
                                 order=order, zarr_format=2, compressors=codec, filters=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr: numcodecs codecs are not in the v3 spec
        return zarr.create_array(store=store, shape=SHAPE, chunks=CHUNKS, dtype=dtype,
                                 order=order, serializer=zarr3.serializer_class(name)(),
                                 compressors=None)


@pytest.mark.parametrize("name", CODECS)
def test_zarr_v2_and_v3_in_c_and_f_order(tmp_path: Path, name: str) -> None:
    if name == "rle_zeros":
        assert "rle_zeros" in sc.registry.registry.names(), "the example plugin is not installed"
    for fmt in (2, 3):
        for order in "CF":
            for dtype in ("float32", "bool"):
                x = data(dtype)
                z = create(tmp_path, fmt, order, name, dtype)
                z[:] = x
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    back = zarr.open_array(z.store, mode="r")[:]
                where = f"{name} v{fmt} order={order} {dtype}"
                assert back.dtype == x.dtype and back.shape == x.shape, where
                assert back.tobytes() == x.tobytes(), where
                # a chunk is a frame of the chunk's logical dtype and shape
                root = Path(str(z.store).removeprefix("file://"))
                chunk = root / ("0.1" if fmt == 2 else "c/0/1")
                report = sc.inspect(chunk.read_bytes())
                stored = "uint8" if dtype == "bool" else dtype
                assert (report.codec, report.dtype, report.shape) == (name, stored, CHUNKS), where
                got = sc.decode(chunk.read_bytes())
                want = x[:4, 8:]
                assert got.tobytes() == want.view(got.dtype).tobytes(), where


def test_f_order_chunks_are_marked_and_c_chunks_are_not(tmp_path: Path) -> None:
    """What the fix changes on disk: a Zarr v2 order='F' chunk is marked, a C one is byte for
    byte what the codec alone writes."""
    from sparsecodecs.registry.frame import read_frame

    x = data("float32")
    for order, marks in (("C", None), ("F", {"order": "F"})):
        z = create(tmp_path, 2, order, "hybrid", "float32")
        z[:] = x
        root = Path(str(z.store).removeprefix("file://"))
        frame = (root / "1.0").read_bytes()
        assert read_frame(frame).info.meta.get("numcodecs") == marks
        if order == "C":
            assert frame == sc.get_codec("hybrid").encode(x[4:, :8])
