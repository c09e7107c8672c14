"""Encoding checkpoints on a Dask cluster, and Dask arrays through Zarr with our codecs.

One small ``LocalCluster`` (two worker processes, one thread each) serves the whole module. Every
output written on the cluster must equal the serial run byte for byte; bad cluster addresses are
one-line errors that write nothing.
"""

from __future__ import annotations

import gc
import json
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest

import sparsecodecs as sc
from sparsecodecs import cli

distributed = pytest.importorskip("dask.distributed")
da = pytest.importorskip("dask.array")
st_numpy = pytest.importorskip("safetensors.numpy")

BLOCK = 4096  # "embed" (256 x 64 bfloat16, 128-byte rows) is 8 blocks of 32 rows


def tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2)
    embed = rng.standard_normal((256, 64)).astype(ml_dtypes.bfloat16)
    embed[:, 1::2] = 0
    embed.view(np.uint16)[7, 3] = 0xFFC3  # a NaN payload
    return {
        "embed": embed,
        "w": rng.standard_normal((16, 32)).astype(np.float32),
        "ids": np.arange(100, dtype=np.int32),
        "mask": rng.standard_normal((9, 9)) > 0,
        "scalar": np.array(1.0, np.float16),
    }


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    c = distributed.Client(cluster, set_as_default=False)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


@pytest.fixture
def src(tmp_path: Path) -> Path:
    path = tmp_path / "model.safetensors"
    st_numpy.save_file(tensors(), str(path), metadata={"format": "pt"})
    return path


def test_compress_on_the_cluster_is_byte_identical(client: Any, src: Path, tmp_path: Path) -> None:
    serial, remote = tmp_path / "serial", tmp_path / "remote"
    seen: list[tuple[str, int, int]] = []
    here: list[tuple[str, int, int]] = []
    report = sc.compress(src, serial, block_bytes=BLOCK, progress=lambda *a: here.append(a))
    remote_report = sc.compress(src, remote, block_bytes=BLOCK, client=client,
                                progress=lambda *a: seen.append(a))
    assert serial.read_bytes() == remote.read_bytes()
    assert seen == here and len(seen) == len(tensors())  # in file order, once per tensor
    assert remote_report.to_dict()["tensors"] == report.to_dict()["tensors"]
    with sc.safe_open(remote) as f:
        assert len(f.blocks("embed") or []) == 8
        names = f.keys()
        got = {n: f.get_tensor(n) for n in names}
    for name, want in tensors().items():
        assert got[name].dtype == want.dtype and got[name].tobytes() == want.tobytes(), name
    # lossy transforms run on the workers too, with the same result
    lossy_s, lossy_r = tmp_path / "ls", tmp_path / "lr"
    a = sc.compress(src, lossy_s, prune="2:4", prune_exclude=(), block_bytes=BLOCK)
    b = sc.compress(src, lossy_r, prune="2:4", prune_exclude=(), block_bytes=BLOCK,
                    client=client)
    assert "embed" in a.errors  # the blocked tensor, pruned on the workers
    assert lossy_s.read_bytes() == lossy_r.read_bytes() and a.errors == b.errors


def test_sharded_folder_on_the_cluster(client: Any, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    t = tensors()
    st_numpy.save_file({"embed": t["embed"]}, str(folder / "a.safetensors"))
    st_numpy.save_file({"w": t["w"], "ids": t["ids"]}, str(folder / "b.safetensors"))
    weight_map = {"embed": "a.safetensors", "w": "b.safetensors", "ids": "b.safetensors"}
    (folder / "m.index.json").write_text(json.dumps({"weight_map": weight_map}))
    serial, remote = tmp_path / "s", tmp_path / "r"
    sc.compress(folder, serial, block_bytes=BLOCK)
    sc.compress(folder, remote, block_bytes=BLOCK, client=client)
    for name in ("a.safetensors", "b.safetensors", "m.index.json"):
        assert (serial / name).read_bytes() == (remote / name).read_bytes(), name


def test_cli_dask(client: Any, src: Path, tmp_path: Path,
                  capsys: pytest.CaptureFixture[str]) -> None:
    address = client.scheduler.address
    serial, remote = tmp_path / "serial", tmp_path / "remote"
    sc.compress(src, serial, block_bytes=BLOCK)
    code = cli.main(["compress", str(src), "-o", str(remote), "--dask", address,
                     "--block-bytes", str(BLOCK), "--no-progress", "--json"])
    out, _ = capsys.readouterr()
    assert code == 0 and json.loads(out)["file_bytes"] == serial.stat().st_size
    assert serial.read_bytes() == remote.read_bytes()
    # an address string in the Python API connects (and disconnects) by itself
    again = tmp_path / "again"
    sc.compress(src, again, block_bytes=BLOCK, client=address)
    assert again.read_bytes() == serial.read_bytes()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("address", "fragment"),
    [
        ("nonsense", "missing port"),
        ("http://scheduler:8786", "unknown address scheme"),
        ("tcp://127.0.0.1:{port}", "Timed out"),
        ("", "looks like tcp://host:8786"),
    ],
)
def test_bad_dask_address(src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                          address: str, fragment: str) -> None:
    address = address.format(port=closed_port())
    before = sorted(p.name for p in tmp_path.iterdir())
    code = cli.main(["compress", str(src), "-o", str(tmp_path / "out"), "--dask", address,
                     "--dask-timeout", "1", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "ClusterError" in err and fragment in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    from sparsecodecs.distributed import connect

    with pytest.raises(sc.ClusterError, match=fragment) as info:
        connect(address, timeout=1)
    assert isinstance(info.value, sc.SparseCodecsError)
    # No half-built Client is left for the garbage collector to close later: its __del__,
    # run inside the next Client's start-up, deadlocked the suite once.
    assert info.value.__cause__ is None and info.value.__context__ is None
    from dask.distributed import Client

    gc.collect()
    # type(o), not isinstance: isinstance reads o.__class__, which some module proxies (torch's
    # deprecated reduce_op, when torch is installed) answer with a FutureWarning.
    assert not [o for o in gc.get_objects()
                if issubclass(type(o), Client) and getattr(o, "_start_arg", None) == address
                and o.status != "closed"]


def test_bad_client_object_and_bad_input_before_connecting(
    src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(sc.ClusterError, match=r"dask\.distributed\.Client"):
        sc.compress(src, tmp_path / "out", client=object())
    assert not (tmp_path / "out").exists()
    # a bad input is reported without waiting for the (unreachable) scheduler
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"PK\x03\x04 not safetensors")
    code = cli.main(["compress", str(bad), "-o", str(tmp_path / "out"), "--dask",
                     f"tcp://127.0.0.1:{closed_port()}", "--dask-timeout", "30"])
    _, err = capsys.readouterr()
    assert code == 2 and "not a safetensors file" in err
    code = cli.main(["compress", str(src), "-o", str(src), "--dask", "tcp://127.0.0.1:1"])
    _, err = capsys.readouterr()
    assert code == 2 and "exists" in err


def test_dask_array_through_zarr_v3_with_our_codec(client: Any, tmp_path: Path) -> None:
    zarr = pytest.importorskip("zarr")
    from sparsecodecs.zarr3 import Hybrid

    rng = np.random.default_rng(3)
    x = rng.standard_normal((96, 64)).astype(np.float32)
    x[:, ::2] = 0
    x.view(np.uint32)[5, 1] = 0x7FC00001  # a NaN payload
    x.view(np.uint32)[6, 1] = 0x80000000  # -0.0
    darr = da.from_array(x, chunks=(32, 64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr: numcodecs codecs are not in the v3 spec
        z = zarr.create_array(
            store=str(tmp_path / "w.zarr"), shape=x.shape, chunks=(32, 64), dtype="float32",
            serializer=Hybrid(), compressors=None,
        )
        stored = da.to_zarr(darr, z, compute=False)
        client.compute(stored).result()  # the chunks are encoded on the workers
        back = zarr.open_array(str(tmp_path / "w.zarr"), mode="r")[:]
        again = da.from_zarr(str(tmp_path / "w.zarr")).compute(scheduler="sync")
    assert back.tobytes() == x.tobytes() and again.tobytes() == x.tobytes()
    chunks = sorted((tmp_path / "w.zarr" / "c").rglob("*"))
    frames = [p for p in chunks if p.is_file()]
    assert len(frames) == 3
    for frame in frames:
        report = sc.inspect(frame.read_bytes())
        assert (report.codec, report.dtype, report.shape) == ("hybrid", "float32", (32, 64))


# -- a cluster without workers ---------------------------------------------------------------


@pytest.fixture
def idle_client() -> Iterator[Any]:
    """A client of a scheduler that has no worker (and never gets one)."""
    cluster = distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=":0")
    c = distributed.Client(cluster, set_as_default=False)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


def _within(seconds: float, fn: Any) -> Any:
    """``fn()``'s outcome, or a test failure if it has not finished after ``seconds`` (the
    call is left running in a daemon thread, which closing the client ends)."""
    import threading

    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append(("value", fn()))
        except BaseException as exc:
            outcome.append(("error", exc))

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"still waiting after {seconds} s: a cluster without workers hangs"
    return outcome[0]


def test_a_cluster_without_workers_times_out(
    idle_client: Any, src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from sparsecodecs.io import dask as scd

    monkeypatch.setattr(scd, "WORKER_TIMEOUT", 1.0, raising=False)
    kind, exc = _within(20, lambda: sc.compress(src, tmp_path / "out", client=idle_client))
    assert kind == "error" and isinstance(exc, sc.ClusterError), exc
    assert "has no workers (waited 1 s" in str(exc)
    assert idle_client.scheduler.address in str(exc)
    assert not (tmp_path / "out").exists()
    # the command line: --dask-timeout bounds the wait for a worker too
    monkeypatch.setattr(scd, "WORKER_TIMEOUT", 3600.0, raising=False)
    kind, code = _within(20, lambda: cli.main([
        "compress", str(src), "-o", str(tmp_path / "out2"), "--dask",
        idle_client.scheduler.address, "--dask-timeout", "1", "--no-progress",
    ]))
    _, err = capsys.readouterr()
    assert (kind, code) == ("value", 2), err
    assert err.count("\n") == 1 and "ClusterError" in err and "has no workers" in err, err
    assert not (tmp_path / "out2").exists()
