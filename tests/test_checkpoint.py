"""Compressed checkpoints: safetensors files of frames, the API, the CLI and bad input.

Every comparison is bit-exact (``tobytes()``); files written by the real ``safetensors`` package
go in, and what comes out must be readable by it.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest

import sparsecodecs as sc
from sparsecodecs import checkpoint, cli
from sparsecodecs.io.checkpoint import reading

st_numpy = pytest.importorskip("safetensors.numpy")
safetensors = pytest.importorskip("safetensors")


def tensors() -> dict[str, np.ndarray]:
    """One tensor of every kind a checkpoint holds, with special values in the floats."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((16, 32)).astype(np.float32)
    w[:, 1::2] = 0
    w.view(np.uint32)[0, 0] = 0x7FC00123  # a NaN payload
    w.view(np.uint32)[0, 2] = 0x80000000  # -0.0
    return {
        "layer.0.weight": w,
        "layer.0.bf16": rng.standard_normal((8, 8)).astype(ml_dtypes.bfloat16),
        "f8": rng.standard_normal((4, 4)).astype(ml_dtypes.float8_e4m3fn),
        "f16": np.array([np.inf, -np.inf, 1e-7, 0], np.float16),
        "ids": np.arange(-5, 5, dtype=np.int64),
        "u16": np.arange(7, dtype=np.uint16),
        "mask": np.array([[True, False], [False, True]]),
        "empty": np.zeros((0, 3), np.float64),
        "scalar": np.array(2.5, np.float32),
    }


def assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert sorted(got) == sorted(want)
    for name, w in want.items():
        g = got[name]
        assert (g.dtype, g.shape) == (w.dtype, w.shape), name
        assert g.tobytes() == w.tobytes(), name


def st_load(path: Path) -> dict[str, np.ndarray]:
    """Read a plain safetensors file with the safetensors package (its numpy loader has no
    float8, so the raw bytes are viewed as our dtypes)."""
    out = {}
    for name, spec in safetensors.deserialize(path.read_bytes()):
        dtype = checkpoint.ST_DTYPES[spec["dtype"].upper()]
        out[name] = np.frombuffer(spec["data"], dtype).reshape(spec["shape"])
    return out


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    """A plain safetensors file written by the safetensors package itself."""
    path = tmp_path / "model.safetensors"
    st_numpy.save_file(tensors(), str(path), metadata={"format": "pt", "note": "kept"})
    return path


def test_save_load_round_trip_and_safetensors_can_read_it(tmp_path: Path) -> None:
    path = tmp_path / "m.sc.safetensors"
    sc.save_file(tensors(), path, metadata={"format": "pt"})
    assert_same(sc.load_file(path), tensors())
    with sc.safe_open(path) as f:
        assert f.metadata() == {"format": "pt"}
        assert f.transforms() is None
        assert f.dtype("layer.0.bf16") == "BF16" and f.shape("empty") == (0, 3)
    # The real safetensors lists it and reads single entries: uint8 frames.
    with safetensors.safe_open(str(path), "np") as f:
        assert sorted(f.keys()) == sorted(tensors())
        meta = f.metadata()
        assert meta["format"] == "sparsecodecs"
        assert meta["sparsecodecs.version"] == sc.__version__
        frame = f.get_tensor("layer.0.weight")
    assert frame.dtype == np.uint8 and frame.ndim == 1
    assert sc.decode(frame.tobytes()).tobytes() == tensors()["layer.0.weight"].tobytes()


def test_safe_open_decodes_only_the_tensor_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.safetensors"
    sc.save_file(tensors(), path)
    calls: list[int] = []
    real = reading.use_frame
    monkeypatch.setattr(reading, "use_frame",
                        lambda b, use, **kw: calls.append(len(b)) or real(b, use, **kw))
    with sc.safe_open(path) as f:
        got = f.get_tensor("ids")
        frame_len = len(f.get_frame("ids"))
    assert got.tobytes() == tensors()["ids"].tobytes()
    assert calls == [frame_len]


def test_compress_decompress_bit_identical_with_metadata(plain: Path, tmp_path: Path) -> None:
    out, back = tmp_path / "c.safetensors", tmp_path / "back.safetensors"
    seen: list[tuple[str, int, int]] = []
    report = sc.compress(plain, out, progress=lambda *a: seen.append(a))
    assert [s[1:] for s in seen] == [(i + 1, len(tensors())) for i in range(len(tensors()))]
    assert report.input_bytes == plain.stat().st_size
    assert report.file_bytes == out.stat().st_size
    assert report.frame_bytes + report.container_bytes == report.file_bytes
    assert sum(report.role_bytes.values()) == report.frame_bytes
    assert report.dense_bytes == sum(a.nbytes for a in tensors().values())
    sc.decompress(out, back)
    assert_same(st_load(back), tensors())
    with safetensors.safe_open(str(back), "np") as f:
        assert f.metadata() == {"format": "pt", "note": "kept"}
    # the checkpoint's own report agrees with the one compress returned
    again = sc.inspect_checkpoint(out)
    assert again.frame_bytes == report.frame_bytes and set(again.tensors) == set(tensors())


def test_torch_tensors_in_and_out(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    t = {
        "w": torch.randn(8, 16).to(torch.bfloat16),
        "h": torch.randn(4, 4, dtype=torch.float16),
        "i": torch.arange(6, dtype=torch.int32).reshape(2, 3),
        "b": torch.tensor([True, False]),
        "f8": torch.randn(4).to(torch.float8_e5m2),
        "t": torch.randn(3, 5).t(),  # not contiguous
    }
    path = tmp_path / "m.safetensors"
    sc.save_file(t, path)
    got = sc.load_file(path, framework="pt")
    for name, want in t.items():
        g = got[name]
        assert g.dtype == want.dtype and g.shape == want.shape, name
        assert bytes(g.contiguous().view(torch.uint8).numpy()) == bytes(
            want.contiguous().view(torch.uint8).numpy()
        ), name
    # and through a checkpoint written by safetensors.torch
    src, out, back = tmp_path / "t.safetensors", tmp_path / "c", tmp_path / "b.safetensors"
    st_torch.save_file({k: v.contiguous() for k, v in t.items()}, str(src))
    sc.compress(src, out)
    sc.decompress(out, back)
    loaded = st_torch.load_file(str(back))
    for name, want in t.items():
        assert torch.equal(loaded[name].view(torch.uint8), want.contiguous().view(torch.uint8))


def test_workers_output_is_byte_identical(plain: Path, tmp_path: Path) -> None:
    serial, parallel = tmp_path / "s.safetensors", tmp_path / "p.safetensors"
    sc.compress(plain, serial)
    sc.compress(plain, parallel, workers=2)
    assert serial.read_bytes() == parallel.read_bytes()


def shards(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    t = tensors()
    names = sorted(t)
    first, second = names[:4], names[4:]
    st_numpy.save_file({n: t[n] for n in first}, str(folder / "m-00001-of-00002.safetensors"))
    st_numpy.save_file({n: t[n] for n in second}, str(folder / "m-00002-of-00002.safetensors"),
                       metadata={"format": "pt"})
    weight_map = {n: "m-00001-of-00002.safetensors" for n in first}
    weight_map |= {n: "m-00002-of-00002.safetensors" for n in second}
    index = {"metadata": {"total_size": 123}, "weight_map": weight_map}
    (folder / "m.safetensors.index.json").write_text(json.dumps(index))
    return folder


def test_sharded_folder_keeps_its_layout(tmp_path: Path) -> None:
    folder = shards(tmp_path)
    out, back = tmp_path / "c", tmp_path / "back"
    report = sc.compress(folder, out)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in folder.iterdir())
    assert set(report.tensors) == set(tensors())
    sc.decompress(out, back)
    got: dict[str, np.ndarray] = {}
    for shard in sorted(back.glob("*.safetensors")):
        got |= st_load(shard)
    assert_same(got, tensors())
    index = "m.safetensors.index.json"
    assert (back / index).read_bytes() == (folder / index).read_bytes()
    assert len(sc.inspect_checkpoint(out).tensors) == len(tensors())


def test_lossy_transforms_are_recorded(plain: Path, tmp_path: Path) -> None:
    out, back = tmp_path / "c.safetensors", tmp_path / "b.safetensors"
    report = sc.compress(plain, out, prune="2:4", cluster=4)
    lossy = ["layer.0.bf16", "layer.0.weight", "f8", "empty"]
    assert sorted(report.transforms["tensors"]) == sorted(lossy)
    assert "LOSSY" in str(report)
    with sc.safe_open(out) as f:
        rec = f.transforms()
        assert rec is not None and rec["prune"] == "2:4" and rec["cluster"] == 4
        w = f.get_tensor("layer.0.weight")
        assert f.get_tensor("ids").tobytes() == tensors()["ids"].tobytes()  # untouched
    assert (w.reshape(-1, 4) != 0).sum(axis=1).max() <= 2
    sc.decompress(out, back)
    with safetensors.safe_open(str(back), "np") as f:
        assert json.loads(f.metadata()["sparsecodecs.transforms"])["prune"] == "2:4"


# -- bad input: a library error, and nothing on disk ----------------------------------------


def listing(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def header_with(path: Path, **entries: object) -> None:
    head = json.dumps(entries).encode()
    size = sum(e["data_offsets"][1] for e in entries.values())  # type: ignore[index]
    path.write_bytes(struct.pack("<Q", len(head)) + head + bytes(size))


@pytest.mark.parametrize(
    ("target", "make", "error", "fragment"),
    [
        ("file", lambda p: p.write_bytes(b"PK\x03\x04 a zip file, not safetensors"),
         sc.CheckpointError, "not a safetensors file"),
        ("file", lambda p: truncate(p, p.stat().st_size - 5), sc.CheckpointError, "truncated"),
        ("file", lambda p: header_with(p, x={"dtype": "C64", "shape": [1],
                                              "data_offsets": [0, 8]}),
         sc.UnsupportedDtypeError, "C64"),
        ("folder", lambda f: (f / "m-00002-of-00002.safetensors").unlink(), sc.CheckpointError,
         "does not exist"),
        ("folder", lambda f: truncate(f / "m-00001-of-00002.safetensors", 200),
         sc.CheckpointError, "truncated"),
        ("folder", lambda f: (f / "m.safetensors.index.json").write_text("{"),
         sc.CheckpointError, "malformed index"),
    ],
    ids=["not-safetensors", "truncated", "unsupported-dtype", "missing-shard", "truncated-shard",
         "bad-index"],
)
def test_bad_input_raises_and_writes_nothing(
    plain: Path, tmp_path: Path, target: str, make: Any, error: type[Exception], fragment: str
) -> None:
    src = plain if target == "file" else shards(tmp_path)
    make(src)
    before = listing(tmp_path)
    with pytest.raises(error, match=fragment) as info:
        sc.compress(src, tmp_path / "out")
    assert isinstance(info.value, sc.SparseCodecsError)
    assert listing(tmp_path) == before


def test_missing_tensor_existing_output_and_bad_frames(plain: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.safetensors"
    sc.compress(plain, out)
    with sc.safe_open(out) as f, pytest.raises(sc.TensorNotFoundError, match="did you mean"):
        f.get_tensor("layer.0.weigth")
    stamp = out.read_bytes()
    with pytest.raises(sc.OutputExistsError, match="exists"):
        sc.compress(plain, out)
    with pytest.raises(sc.OutputExistsError):
        sc.save_file({"a": np.zeros(2)}, out)
    assert out.read_bytes() == stamp
    sc.compress(plain, out, force=True)  # force replaces it
    with pytest.raises(sc.CheckpointError, match="not a sparsecodecs checkpoint"):
        sc.safe_open(plain)
    # flip one byte inside a frame: that tensor's checksum fails, the others still load
    with sc.safe_open(out) as f:
        entry = f._header.entry("ids")
    data = bytearray(stamp)
    data[entry.start + 20] ^= 0xFF
    out.write_bytes(bytes(data))
    with sc.safe_open(out) as f:
        with pytest.raises(sc.FrameError):
            f.get_tensor("ids")
        assert f.get_tensor("u16").tobytes() == tensors()["u16"].tobytes()
    with pytest.raises(sc.UnsupportedDtypeError, match="'c'"):
        sc.save_file({"c": np.zeros(2, np.complex64)}, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# -- the command line -------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_compress_inspect_decompress(
    plain: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, back = tmp_path / "c.safetensors", tmp_path / "b.safetensors"
    code, text, err = run(capsys, "compress", str(plain), "-o", str(out), "--no-progress")
    assert code == 0 and err == ""
    assert "input file" in text and "by role:" in text and "time" in text
    code, text, _ = run(capsys, "inspect", str(out), "--json")
    assert code == 0 and json.loads(text)["file_bytes"] == out.stat().st_size
    code, text, _ = run(capsys, "inspect", str(out), "--tensor", "layer.0.weight")
    assert code == 0 and "codec hybrid" in text
    code, _, _ = run(capsys, "decompress", str(out), "-o", str(back), "--no-progress")
    assert code == 0
    assert_same(st_load(back), tensors())
    code, text, err = run(capsys, "compress", str(plain), "-o", str(tmp_path / "l"),
                          "--prune", "2:4", "--no-progress")
    assert code == 0 and "LOSSY" in err and "LOSSY" in text


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["compress", "{bad}", "-o", "{out}"], "not a safetensors file"),
        (["compress", "{plain}", "-o", "{plain}"], "exists; pass"),
        (["compress", "{tmp}/nope.safetensors", "-o", "{out}"], "no such file"),
        (["inspect", "{plain}", "--tensor", "x"], "not a sparsecodecs checkpoint"),
        (["decompress", "{plain}", "-o", "{out}"], "not a sparsecodecs checkpoint"),
        (["compress", "{plain}", "-o", "{out}", "--prune", "2of4"], "2of4"),
    ],
)
def test_cli_errors_are_one_line(
    plain: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
    fragment: str,
) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x05" + bytes(7) + b"hello")
    values = {"bad": bad, "plain": plain, "out": tmp_path / "o.safetensors", "tmp": tmp_path}
    before = listing(tmp_path)
    code, out, err = run(capsys, *(a.format(**values) for a in argv))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("sparsecodecs") and fragment in err, err
    assert listing(tmp_path) == before
