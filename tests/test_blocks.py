"""Large tensors in row blocks: the format, bit-exact reassembly, decoding by row range
(``get_slice``), parallel encoding, files of container version 1, and block tables that lie.

Every comparison is bit-exact (``tobytes()``).
"""

from __future__ import annotations

import importlib.util
import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest

import sparsecodecs as sc
from sparsecodecs import checkpoint, cli
from sparsecodecs.io.checkpoint import reading
from test_checkpoint import assert_same  # tests/ is on sys.path: pytest's default rootdir import

st_numpy = pytest.importorskip("safetensors.numpy")
safetensors = pytest.importorskip("safetensors")

ROW_BYTES = 16 * 2  # "embed" rows: 16 bfloat16
BLOCK = 6 * ROW_BYTES  # six rows per block: "embed" (100 rows) has 17 blocks


def tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    embed = rng.standard_normal((100, 16)).astype(ml_dtypes.bfloat16)
    embed[:, ::2] = 0
    embed.view(np.uint16)[3, 1] = 0x7FC1  # a NaN payload
    embed.view(np.uint16)[50, 3] = 0x8000  # -0.0
    head = rng.standard_normal((13, 4, 5)).astype(np.float32)  # 3-D, 80 bytes a row
    return {
        "embed": embed,
        "head": head,
        "mask": rng.standard_normal((100, 3)) > 0,  # BOOL, 3 bytes a row: blocks of 64
        "bias": np.linspace(-1, 1, 16).astype(np.float32),  # small: one frame
        "col": np.arange(100, dtype=np.uint8).reshape(100, 1),  # 100 rows, one frame
        "ids": np.arange(-50, 50, dtype=np.int64),  # 1-D, 800 bytes: blocks of 24 rows
        "scalar": np.array(3.5, np.float64),
        "empty": np.zeros((0, 4), np.float32),
    }


def read_header(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return dict(json.loads(data[8 : 8 + n]))


def rewrite_header(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Rewrite a file's safetensors header (the data is kept; offsets are data-relative)."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    edit(header)
    head = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(head)) + head + data[8 + n :])


def edit_blocks(edit: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def apply(header: dict[str, Any]) -> None:
        meta = header["__metadata__"]
        blocks = json.loads(meta["sparsecodecs.blocks"])
        edit(blocks)
        meta["sparsecodecs.blocks"] = json.dumps(blocks)

    return apply


@pytest.fixture
def blocked(tmp_path: Path) -> Path:
    path = tmp_path / "b.sc.safetensors"
    sc.save_file(tensors(), path, metadata={"format": "pt"}, block_bytes=BLOCK)
    return path


def test_row_bounds() -> None:
    bounds = checkpoint._row_bounds
    assert bounds((100, 16), 2, BLOCK) == [*range(0, 100, 6), 100]
    assert bounds((100, 16), 2, 100 * ROW_BYTES) is None  # fits: one frame
    assert bounds((100, 16), 2, 100 * ROW_BYTES - 1) == [0, 99, 100]
    assert bounds((100, 16), 2, 1) == list(range(101))  # at least one row a block
    assert bounds((100, 16), 2, 0) is None  # 0: never split
    assert bounds((), 8, 1) is None and bounds((1, 10**6), 4, 1) is None
    assert bounds((0, 4), 4, 1) is None and bounds((5, 0), 4, 1) is None
    assert checkpoint.DEFAULT_BLOCK_BYTES == 32 << 20


def test_blocked_file_layout_and_round_trip(blocked: Path) -> None:
    want = tensors()
    assert_same(sc.load_file(blocked), want)
    header = read_header(blocked)
    meta = header["__metadata__"]
    assert meta["sparsecodecs.container"] == "2"
    table = json.loads(meta["sparsecodecs.blocks"])
    assert sorted(table) == ["embed", "head", "ids", "mask"]
    assert table["embed"]["rows"] == [*range(0, 100, 6), 100]
    assert table["ids"]["rows"] == [0, 24, 48, 72, 96, 100]
    with sc.safe_open(blocked) as f:
        assert f.blocks("bias") is None and f.blocks("scalar") is None
        assert f.blocks("head") == [(i, min(i + 2, 13)) for i in range(0, 13, 2)]  # 80-byte rows
        for name, spec in table.items():
            frames = f.get_block_frames(name)
            assert [0, *np.cumsum([len(x) for x in frames]).tolist()] == spec["offsets"]
            assert b"".join(frames) == f.get_frame(name)
            rows = f.blocks(name)
            assert rows is not None
            # every block is an ordinary frame of its rows
            for frame, (r0, r1) in zip(frames, rows, strict=True):
                block = sc.decode(frame)
                assert block.tobytes() == want[name][r0:r1].tobytes()
        report = f.report()
    assert report.tensors["embed"].shape == (100, 16)
    assert report.tensors["embed"].dense_bytes == want["embed"].nbytes
    assert report.frame_bytes + report.container_bytes == blocked.stat().st_size
    # the real safetensors reads it: one U8 entry per tensor, the concatenated frames
    with safetensors.safe_open(str(blocked), "np") as f:
        assert sorted(f.keys()) == sorted(want)
        entry = f.get_tensor("embed")
    assert entry.dtype == np.uint8 and entry.size == table["embed"]["offsets"][-1]


def test_small_tensors_keep_container_version_1(tmp_path: Path) -> None:
    path = tmp_path / "s.safetensors"
    sc.save_file(tensors(), path)  # the default block size: nothing is split
    meta = read_header(path)["__metadata__"]
    assert meta["sparsecodecs.container"] == "1" and "sparsecodecs.blocks" not in meta
    assert_same(sc.load_file(path), tensors())


def test_files_of_container_version_1_stay_readable() -> None:
    spec = importlib.util.spec_from_file_location(
        "golden_checkpoint", Path(__file__).parent / "golden" / "checkpoint" /
        "golden_checkpoint.py"
    )
    assert spec is not None and spec.loader is not None
    golden = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(golden)
    assert golden.FILE.is_file(), f"golden checkpoint {golden.FILE} is missing"
    assert_same(sc.load_file(golden.FILE), golden.golden_tensors())
    with sc.safe_open(golden.FILE) as f:
        assert f.metadata() == {"format": "pt"}
        assert f.get_slice("embed")[10:20].tobytes() == golden.golden_tensors()["embed"][
            10:20
        ].tobytes()


SLICES: list[Any] = [
    slice(3, 17), slice(0, 6), slice(6, 12), slice(5, 7), slice(None), slice(-10, None),
    slice(None, -95), slice(7, 7), slice(100, 100), 0, 5, 99, -1, -100, np.int64(42),
    (slice(2, 9), slice(1, 5)), (slice(None), slice(None, None, 3)), (4,), (),
]


@pytest.mark.parametrize("key", SLICES, ids=repr)
@pytest.mark.parametrize("name", ["embed", "ids", "col"])
def test_get_slice_matches_numpy(blocked: Path, name: str, key: Any) -> None:
    want = tensors()[name]
    if name == "ids" and isinstance(key, tuple) and len(key) > 1:
        key = key[0]  # a 1-D tensor has no second axis
    with sc.safe_open(blocked) as f:
        s = f.get_slice(name)
        assert s.get_shape() == list(want.shape) and s.get_dtype() == f.dtype(name)
        got = s[key]
    expect = want[key]
    assert (got.dtype, got.shape) == (expect.dtype, expect.shape)
    assert got.tobytes() == expect.tobytes()


def test_get_slice_bool_3d_and_torch(blocked: Path) -> None:
    want = tensors()
    with sc.safe_open(blocked) as f:
        assert f.get_slice("mask")[5:31].tobytes() == want["mask"][5:31].tobytes()
        assert f.get_slice("mask")[7].dtype == np.bool_
        assert f.get_slice("head")[2:5, 1:3].tobytes() == want["head"][2:5, 1:3].tobytes()
        assert f.get_slice("empty")[:].shape == (0, 4)
    torch = pytest.importorskip("torch")
    with sc.safe_open(blocked, framework="pt") as f:
        t = f.get_slice("embed")[10:20, ::2]
        assert t.dtype == torch.bfloat16 and tuple(t.shape) == (10, 8)
        assert bytes(t.contiguous().view(torch.uint8).numpy()) == want["embed"][
            10:20, ::2
        ].tobytes()


def test_get_slice_decodes_only_the_blocks_it_needs(
    blocked: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[bytes] = []
    real = reading.use_frame
    monkeypatch.setattr(reading, "use_frame",
                        lambda b, use, **kw: decoded.append(bytes(b)) or real(b, use, **kw))
    with sc.safe_open(blocked) as f:
        frames = f.get_block_frames("embed")
        s = f.get_slice("embed")
        s[13:17]  # rows 12..18: block 2 only
        assert decoded == [frames[2]]
        decoded.clear()
        s[11:13]  # blocks 1 and 2
        assert decoded == frames[1:3]
        decoded.clear()
        s[-1]  # the last block, rows 96..100
        assert decoded == [frames[16]]
        decoded.clear()
        s[40:40]  # nothing
        assert decoded == []
        f.get_tensor("embed")
        assert decoded == frames


def test_a_corrupted_block_outside_the_range_is_not_touched(blocked: Path) -> None:
    with sc.safe_open(blocked) as f:
        entry = f._header.entry("embed")
        offsets = f._info.blocks["embed"].offsets
    data = bytearray(blocked.read_bytes())
    for i in (0, 5):  # corrupt blocks 0 (rows 0..6) and 5 (rows 30..36)
        data[entry.start + int(offsets[i]) + 30] ^= 0xFF
    blocked.write_bytes(bytes(data))
    want = tensors()["embed"]
    with sc.safe_open(blocked) as f:
        assert f.get_slice("embed")[6:30].tobytes() == want[6:30].tobytes()
        assert f.get_slice("embed")[36:].tobytes() == want[36:].tobytes()
        for bad in (slice(0, 1), slice(29, 31), slice(None)):
            with pytest.raises(sc.FrameError):
                f.get_slice("embed")[bad]
        with pytest.raises(sc.FrameError):
            f.get_tensor("embed")


def test_compress_blocks_workers_and_decompress(tmp_path: Path) -> None:
    src = tmp_path / "m.safetensors"
    st_numpy.save_file(tensors(), str(src), metadata={"format": "pt"})
    serial, parallel = tmp_path / "s.safetensors", tmp_path / "p.safetensors"
    report = sc.compress(src, serial, block_bytes=BLOCK)
    sc.compress(src, parallel, block_bytes=BLOCK, workers=2)
    assert serial.read_bytes() == parallel.read_bytes()
    assert report.tensors["embed"].frame_bytes == read_header(serial)["embed"]["shape"][0]
    assert report.frame_bytes + report.container_bytes == report.file_bytes
    with sc.safe_open(serial) as f:
        assert f.blocks("embed") is not None
    assert_same(sc.load_file(serial), tensors())
    back = tmp_path / "back.safetensors"
    sc.decompress(serial, back)
    got = {n: np.frombuffer(s["data"], checkpoint.ST_DTYPES[s["dtype"].upper()]).reshape(
        s["shape"]) for n, s in safetensors.deserialize(back.read_bytes())}
    assert_same(got, tensors())
    # the same input without blocks gives the same tensors from one frame each
    whole = tmp_path / "w.safetensors"
    sc.compress(src, whole, block_bytes=0)
    assert read_header(whole)["__metadata__"]["sparsecodecs.container"] == "1"


def test_lossy_transforms_on_blocks(tmp_path: Path) -> None:
    src = tmp_path / "m.safetensors"
    st_numpy.save_file(tensors(), str(src))
    blocked_out, whole_out = tmp_path / "b", tmp_path / "w"
    # prune_exclude=(): "embed" is pruned too (by default embeddings are left alone)
    rb = sc.compress(src, blocked_out, prune="2:4", prune_exclude=(), block_bytes=BLOCK)
    rw = sc.compress(src, whole_out, prune="2:4", prune_exclude=(), block_bytes=0)
    # 2:4 pruning works on groups of 4 within a row: per block is the same as per tensor
    assert_same(sc.load_file(blocked_out), sc.load_file(whole_out))
    assert set(rb.errors) == set(rw.errors) == {"embed", "head", "empty"}
    for name in rb.errors:
        assert rb.errors[name] == pytest.approx(rw.errors[name], rel=1e-12)
    assert 0 < rb.errors["head"] < 1  # "embed" is 2:4 already: pruning changes nothing
    assert rb.errors["embed"] == rb.errors["empty"] == 0


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        (slice(0, 101), "out of range"),
        (slice(-101, 5), "out of range"),
        (slice(50, 40), "out of range"),
        (100, "out of range"),
        (-101, "out of range"),
        (slice(0, 10, 2), "step"),
        (slice(None, None, -1), "step"),
        (slice(0.5, 3), "integers"),
        ([1, 2], "unsupported index"),
        (np.array([1, 2]), "unsupported index"),
        ("a", "unsupported index"),
        (True, "unsupported index"),
        (Ellipsis, "unsupported index"),
        ((slice(0, 2), 3), "unsupported index"),
        ((slice(0, 2), slice(None), slice(None)), "unsupported index"),
    ],
    ids=repr,
)
def test_bad_slices(blocked: Path, key: Any, fragment: str) -> None:
    with sc.safe_open(blocked) as f:
        s = f.get_slice("embed")
        with pytest.raises(sc.SliceError, match=fragment) as info:
            s[key]
    assert isinstance(info.value, sc.SparseCodecsError) and isinstance(info.value, IndexError)


def test_bad_slice_of_a_scalar_and_unknown_tensor(blocked: Path) -> None:
    with sc.safe_open(blocked) as f:
        with pytest.raises(sc.SliceError, match="scalar"):
            f.get_slice("scalar")[0]
        with pytest.raises(sc.TensorNotFoundError, match="did you mean"):
            f.get_slice("embedd")


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(blocks: dict[str, Any]) -> None:
        blocks["embed"][key] = value

    return edit


def _rows(fn: Callable[[list[int]], list[int]]) -> Callable[[dict[str, Any]], None]:
    def edit(blocks: dict[str, Any]) -> None:
        blocks["embed"]["rows"] = fn(blocks["embed"]["rows"])

    return edit


LIES = [
    # rows that overlap, leave a gap at either end, or are not increasing
    (_rows(lambda r: [0, 8, 6, *r[3:]]), "overlap"),
    (_rows(lambda r: [0, 6, 6, *r[3:]]), "overlap"),
    (_rows(lambda r: [*r[:-1], 99]), "rows are missing"),
    (_rows(lambda r: [1, *r[1:]]), "rows are missing"),
    (_rows(lambda r: [*r[:-1], 101]), "rows are missing"),
    # offsets that do not split the entry
    (_set("offsets", [0, 10]), "as many row bounds as offsets"),
    (lambda b: b["embed"]["offsets"].__setitem__(-1, 10**6), "do not split"),
    (lambda b: b["embed"]["offsets"].__setitem__(2, 0), "do not split"),
    # malformed specs, a block table naming a tensor the file lacks, a scalar in blocks
    (_set("rows", "0,6"), "must be"),
    (lambda b: b["embed"].pop("offsets"), "must be"),
    (_set("rows", [0, -6]), "must be"),
    (_set("rows", [0, 6.0]), "must be"),
    (lambda b: b.__setitem__("lm_head", b.pop("embed")), "names no tensor"),
    (lambda b: b.__setitem__("scalar", b["ids"]), "scalar"),
]


@pytest.mark.parametrize(("edit", "fragment"), LIES)
def test_a_block_table_that_lies_is_refused_on_open(
    blocked: Path, tmp_path: Path, edit: Callable[[dict[str, Any]], None], fragment: str
) -> None:
    rewrite_header(blocked, edit_blocks(edit))
    with pytest.raises(sc.CheckpointError, match=fragment):
        sc.safe_open(blocked)
    with pytest.raises(sc.CheckpointError, match=fragment):
        sc.decompress(blocked, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_frame_that_does_not_match_its_block(blocked: Path, tmp_path: Path) -> None:
    # rows still tile 0..100, but block 0 now claims 5 rows while its frame holds 6
    rewrite_header(blocked, edit_blocks(_rows(lambda r: [0, 5, *r[2:]])))
    with sc.safe_open(blocked) as f:
        assert f.get_slice("embed")[12:20].tobytes() == tensors()["embed"][12:20].tobytes()
        with pytest.raises(sc.CheckpointError, match=r"block 0 \(rows 0:5\).*\[6, 16\]"):
            f.get_slice("embed")[0:2]
        with pytest.raises(sc.CheckpointError, match="block 0"):
            f.get_tensor("embed")
    with pytest.raises(sc.CheckpointError, match="block 0"):
        sc.decompress(blocked, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_container_version_and_block_table_must_agree(blocked: Path, tmp_path: Path) -> None:
    def v1(header: dict[str, Any]) -> None:
        header["__metadata__"]["sparsecodecs.container"] = "1"

    rewrite_header(blocked, v1)
    with pytest.raises(sc.CheckpointError, match="must not have a block table"):
        sc.safe_open(blocked)
    plain = tmp_path / "p.safetensors"
    sc.save_file({"a": np.zeros(3)}, plain)

    def v2(header: dict[str, Any]) -> None:
        header["__metadata__"]["sparsecodecs.container"] = "2"

    rewrite_header(plain, v2)
    with pytest.raises(sc.CheckpointError, match="needs a block table"):
        sc.safe_open(plain)

    def v3(header: dict[str, Any]) -> None:
        header["__metadata__"]["sparsecodecs.container"] = "3"

    rewrite_header(plain, v3)
    with pytest.raises(sc.CheckpointError, match="unsupported container version '3'"):
        sc.safe_open(plain)


def test_a_lying_shape_is_bounded_before_allocation(blocked: Path) -> None:
    def huge(header: dict[str, Any]) -> None:
        meta = header["__metadata__"]
        table = json.loads(meta["sparsecodecs.tensors"])
        table["embed"]["shape"] = [100, 1 << 40]
        meta["sparsecodecs.tensors"] = json.dumps(table)

    rewrite_header(blocked, huge)
    with sc.safe_open(blocked) as f, pytest.raises(sc.DecodeLimitError, match="decode limit"):
        f.get_slice("embed")[0:50]


def test_block_bytes_is_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for bad in (-1, 1.5, "32MiB", None):
        with pytest.raises(sc.CheckpointError, match="block_bytes"):
            sc.save_file({"a": np.zeros(3)}, tmp_path / "x", block_bytes=bad)  # type: ignore[arg-type]
    assert not (tmp_path / "x").exists()
    src = tmp_path / "m.safetensors"
    st_numpy.save_file(tensors(), str(src))
    assert cli.main(["compress", str(src), "-o", str(tmp_path / "c"), "--block-bytes", "192",
                     "--no-progress"]) == 0
    assert (tmp_path / "c").read_bytes() == _saved(tmp_path, src, BLOCK)
    assert cli.main(["compress", str(src), "-o", str(tmp_path / "k"), "--block-bytes", "1KiB",
                     "--no-progress"]) == 0
    with sc.safe_open(tmp_path / "k") as f:  # 1 KiB: 32 rows of 32 bytes a block
        assert f.blocks("embed") == [(0, 32), (32, 64), (64, 96), (96, 100)]
    capsys.readouterr()
    code = cli.main(["compress", str(src), "-o", str(tmp_path / "z"), "--block-bytes", "12XB"])
    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and "--block-bytes" in err
    assert not (tmp_path / "z").exists()


def _saved(tmp_path: Path, src: Path, block_bytes: int) -> bytes:
    out = tmp_path / f"api-{block_bytes}"
    sc.compress(src, out, block_bytes=block_bytes)
    return out.read_bytes()


def test_a_worker_that_cannot_read_the_input_says_so(tmp_path: Path) -> None:
    src = tmp_path / "m.safetensors"
    st_numpy.save_file({"a": np.zeros((4, 4), np.float32)}, str(src))
    header = checkpoint._open_input(str(src))
    task = checkpoint._Task(str(tmp_path / "elsewhere.safetensors"), header.entries[0],
                            sc.get_codec("raw"), checkpoint._Transforms(), (0, 2))
    with pytest.raises(sc.CheckpointError, match="every worker must see the input"):
        checkpoint._encode_task(task)
    frame, report, sums = checkpoint._encode_task(
        checkpoint._Task(str(src), header.entries[0], sc.get_codec("raw"),
                         checkpoint._Transforms(), (1, 3))
    )
    assert report.shape == (2, 4) and sums is None and sc.decode(frame).shape == (2, 4)
