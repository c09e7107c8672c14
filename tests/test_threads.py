"""``threads=``: one frame decoded on several threads, and checkpoints read with them.

The result must be the same bits whatever the number of threads; speed is measured in the bench
(``bench/threads_speed.py``), never asserted here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest

import sparsecodecs as sc
from sparsecodecs import cli
from sparsecodecs.registry import (
    Codec,
    CodecConfigError,
    Encoded,
    FrameInfo,
    FrameLayoutError,
    SectionReader,
    decode_threads,
    resolve_threads,
)


def weights(shape: tuple[int, int], dtype: Any, seed: int = 0) -> np.ndarray:
    """2:4-pruned normal weights: large enough for four Huffman streams per section."""
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal(shape) * 0.05).astype(dtype)
    w.reshape(-1, 4)[:, rng.integers(0, 4)] = 0
    w.reshape(-1, 4)[:, (rng.integers(0, 4) + 1) % 4] = 0
    return w


CODECS = ["raw", "bitmask", "nm", "csr", "csc", "huffman", "centroid", "hybrid"]


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("dtype", [ml_dtypes.bfloat16, np.float32, np.int8])
def test_same_bits_whatever_the_threads(codec: str, dtype: Any) -> None:
    w = weights((256, 384), dtype)
    if codec == "centroid":
        w = np.round(w.astype(np.float32) * 20).astype(dtype)
    frame = sc.get_codec(codec).encode(w)
    one = sc.decode(frame)
    assert one.tobytes() == w.tobytes()
    for threads in (2, 3, 0):
        got = sc.decode(frame, threads=threads)
        assert got.dtype == w.dtype and got.shape == w.shape
        assert got.tobytes() == w.tobytes(), threads
        assert sc.get_codec(codec).decode(frame, threads=threads).tobytes() == w.tobytes()


@pytest.mark.parametrize("bad", [-1, 1.5, "2", True])
def test_bad_threads_is_a_config_error(bad: object) -> None:
    frame = sc.get_codec("raw").encode(np.zeros(4, np.float32))
    with pytest.raises(CodecConfigError, match="threads"):
        sc.decode(frame, threads=bad)  # type: ignore[arg-type]


def test_resolve_threads() -> None:
    assert resolve_threads(None) == 1
    assert resolve_threads(3) == 3
    assert resolve_threads(0) >= 1


class _Spy(Codec):
    """Records what :func:`decode_threads` says while it decodes."""

    codec_id = "test-thread-spy"
    seen: list[int] = []

    def encode_bits(self, bits: np.ndarray, dtype: np.dtype[Any]) -> Encoded:
        from sparsecodecs.registry import Section

        return Encoded([Section("v", "values", bits.tobytes())])

    def decode_bits(self, sections: SectionReader, info: FrameInfo) -> np.ndarray:
        type(self).seen.append(decode_threads())
        from sparsecodecs.registry import bits_dtype

        return sections.array("v", bits_dtype(info.dtype), info.size).reshape(info.shape).copy()


def test_codecs_see_the_threads_of_the_call_under_way() -> None:
    spy = _Spy()
    frame = spy.encode(np.arange(6, dtype=np.int16))
    _Spy.seen.clear()
    spy.decode(frame)
    spy.decode(frame, threads=4)
    spy.decode(frame)
    assert _Spy.seen == [1, 4, 1]
    assert decode_threads() == 1  # restored after each call


def test_checkpoint_threads(tmp_path: Path) -> None:
    st_numpy = pytest.importorskip("safetensors.numpy")
    tensors = {"a": weights((96, 64), ml_dtypes.bfloat16, 1), "b": weights((40, 32), np.float32, 2),
               "v": np.arange(7, dtype=np.float32)}
    src = tmp_path / "m.safetensors"
    dst = tmp_path / "m.sc.safetensors"
    st_numpy.save_file(tensors, str(src))
    sc.compress(src, dst, block_bytes=1024)  # "a" splits into 12 row blocks
    with sc.safe_open(dst) as f:
        assert f.blocks("a") is not None and len(f.blocks("a") or []) > 2
    for threads in (None, 2, 0):
        loaded = sc.load_file(dst, threads=threads)
        for k, v in tensors.items():
            assert loaded[k].tobytes() == v.tobytes(), (k, threads)
        with sc.safe_open(dst, threads=threads) as f:
            assert f.get_slice("a")[5:50].tobytes() == tensors["a"][5:50].tobytes()
    sc.decompress(dst, tmp_path / "back1.safetensors")
    sc.decompress(dst, tmp_path / "back3.safetensors", threads=3)
    assert (tmp_path / "back1.safetensors").read_bytes() == (
        tmp_path / "back3.safetensors").read_bytes()
    assert cli.main(["decompress", str(dst), "-o", str(tmp_path / "cli.safetensors"),
                     "--threads", "2", "--no-progress"]) == 0
    assert (tmp_path / "cli.safetensors").read_bytes() == (
        tmp_path / "back1.safetensors").read_bytes()


# -- the threaded Huffman decoder --------------------------------------------------------------


def _coded(count: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(symbols, codebook bytes, bits bytes) of ``count`` skewed 12-bit symbols."""
    from sparsecodecs.codecs import _huffman as huff

    rng = np.random.default_rng(seed)
    syms = np.minimum(rng.geometric(0.02, count), 4095).astype(np.uint16)
    book, bits = huff.encode_symbols(syms, 4096, "s", "values")
    as_u8 = [np.frombuffer(memoryview(s.data).cast("B"), np.uint8) for s in (book, bits)]
    return syms, as_u8[0], as_u8[1].copy()


def _decode(book: np.ndarray, bits: np.ndarray, count: int, threads: int) -> tuple[int, bytes]:
    from sparsecodecs.codecs import _huffman as huff
    from sparsecodecs.codecs import _huffman_kernels as hk

    out = np.zeros(count, np.uint16)
    rc = hk.decode_coded(book, bits, count, 4096, 4, huff.MAX_LENGTH, huff.FAST_BITS,
                         huff.MAX_FAST_BITS, out, threads)
    return rc, out.tobytes()


@pytest.mark.parametrize("count", [2 * 65536, 4 * 65536 + 3])
def test_threaded_streams_decode_the_same_symbols(count: int) -> None:
    syms, book, bits = _coded(count, count)
    for threads in (1, 2, 3, 4, 8):
        rc, got = _decode(book, bits, count, threads)
        assert rc == 0 and got == syms.tobytes(), threads


@pytest.mark.parametrize("shape", ["skewed", "long codes", "fixed 7 bits", "bytes", "1 bit"])
def test_threaded_streams_from_their_middles_decode_the_same_symbols(shape: str) -> None:
    """Two threads decode each of their streams from its start and, speculatively, from the
    middle of its bits (streams of 65,536 symbols or more): the symbols are the stream's
    whether the second part falls into step with the codes (variable-length codes, 8-bit
    codes read from a byte boundary) or never does (7-bit codes only, read from a bit that is
    not a code's start), with long codes, one-byte symbols and one-bit codes."""
    from sparsecodecs.codecs import _huffman as huff
    from sparsecodecs.codecs import _huffman_kernels as hk

    rng = np.random.default_rng(7)
    count = 4 * 70001
    alphabet, dtype = 4096, np.uint16
    if shape == "skewed":
        syms = np.minimum(rng.geometric(0.02, count), 4095)
    elif shape == "long codes":
        syms = np.minimum(rng.geometric(0.4, count), 40) * 97
    elif shape == "fixed 7 bits":
        syms = rng.integers(0, 128, count)
    elif shape == "bytes":
        syms, alphabet, dtype = rng.integers(0, 256, count), 256, np.uint8
    else:
        syms = rng.integers(0, 2, count)
    syms = syms.astype(dtype)
    book_s, bits_s = huff.encode_symbols(syms, alphabet, "s", "values")
    book, bits = (np.frombuffer(memoryview(x.data).cast("B"), np.uint8) for x in (book_s, bits_s))
    lengths, sizes = huff._parse_codebook(memoryview(book), alphabet, "s", count, bits.size)
    if shape == "fixed 7 bits":  # the middle of a stream is 4 * size bits on: not a code's start
        assert (sizes * 4 % 7 != 0).any()
    if shape == "long codes":
        assert lengths.max() > huff.FAST_BITS
    for threads in (1, 2, 3):
        out = np.zeros(count, dtype)
        rc = hk.decode_coded(book, bits, count, alphabet, 4, huff.MAX_LENGTH, huff.FAST_BITS,
                             huff.MAX_FAST_BITS, out, threads)
        assert rc == 0 and out.tobytes() == syms.tobytes(), (shape, threads)


def test_threaded_streams_refuse_what_one_thread_refuses() -> None:
    """Mangled streams (bytes overwritten in each stream, the end cut short) are refused with
    every thread count whenever one thread refuses them, and never decode differently."""
    count = 4 * 65536
    _, book, bits = _coded(count, 7)
    rng = np.random.default_rng(3)
    refused = 0
    for trial in range(40):
        bad = bits.copy()
        at = rng.integers(0, bad.size, 1 + trial % 3)
        bad[at] ^= rng.integers(1, 256, at.size).astype(np.uint8)
        one = _decode(book, bad, count, 1)
        refused += one[0] != 0
        for threads in (2, 4):
            many = _decode(book, bad, count, threads)
            assert (many[0] != 0) == (one[0] != 0), (trial, threads)
            if one[0] == 0:
                assert many[1] == one[1]
    assert refused  # some mangled streams were refused, so the comparison above meant something


# -- threaded layout kernels ---------------------------------------------------------------------


@pytest.mark.parametrize("itemsize", [1, 2, 4, 8])
def test_threaded_bitmask_scatter_writes_the_same_items(itemsize: int) -> None:
    from sparsecodecs.codecs import _kernels

    rng = np.random.default_rng(itemsize)
    n = (1 << 19) + 13  # past the threading threshold, with a tail that is no whole byte
    dense = rng.integers(1, 255, n).astype(f"u{itemsize}") * (rng.random(n) < 0.4)
    mask = np.packbits(dense != 0, bitorder="little")
    values = dense[dense != 0]
    want = np.empty_like(dense)
    _kernels.bitmask_scatter(mask, values, want)
    assert want.tobytes() == dense.tobytes()
    for threads in (2, 3, 7):
        got = np.full_like(dense, 0xA5)
        _kernels.bitmask_scatter(mask, values, got, threads)
        assert got.tobytes() == dense.tobytes(), threads


@pytest.mark.parametrize("dtype", ["bfloat16", "float32", "uint8"])
def test_threaded_nm_decode_writes_the_same_array(dtype: str) -> None:
    """nm 2:4 frames whose rows are whole groups are composed in whole pattern bytes per
    thread, 3 * 65536 groups or more each: 2, 3 and 7 threads give the array one thread gives."""
    from sparsecodecs.transforms import prune

    rng = np.random.default_rng(5)
    dt = np.dtype(ml_dtypes.bfloat16) if dtype == "bfloat16" else np.dtype(dtype)
    cols = 4 * 7  # whole groups (the compose path), 7 a row
    rows = (3 * 65536 * 3) // 7 + 2  # 589,834 groups: 3 parts, and a tail short of a byte
    dense = rng.standard_normal((rows, cols)) * (40 if dt.kind == "u" else 0.1) + (
        100 if dt.kind == "u" else 0)
    w = prune(dense.astype(np.float32), "2:4")[0].astype(dt)
    frame = sc.get_codec("nm").encode(w)
    one = sc.decode(frame, threads=1)
    assert one.view(f"u{dt.itemsize}").tobytes() == w.view(f"u{dt.itemsize}").tobytes()
    for threads in (2, 3, 7):
        many = sc.decode(frame, threads=threads)
        assert many.view(f"u{dt.itemsize}").tobytes() == one.view(f"u{dt.itemsize}").tobytes()


def test_threaded_bitmask_scatter_refuses_a_mask_that_wants_more_values() -> None:
    from sparsecodecs.codecs import _kernels

    n = 1 << 20
    mask = np.full(n // 8, 0xFF, np.uint8)  # every bit set
    values = np.ones(n - 100, np.uint16)  # but fewer values: the last part runs out
    for threads in (1, 2, 4):
        with pytest.raises(FrameLayoutError, match="more set bits than there are values"):
            _kernels.bitmask_scatter(mask, values, np.empty(n, np.uint16), threads)


@pytest.mark.parametrize("top", [9, 12, 15])
@pytest.mark.parametrize("rotate", [0, 1])
def test_threaded_join_fields16_joins_the_same_values(top: int, rotate: int) -> None:
    from sparsecodecs.codecs import _huffman_kernels as hk

    rng = np.random.default_rng(top)
    n = (1 << 19) + 21
    values = rng.integers(0, 1 << 16, n).astype(np.uint16)
    syms = np.empty(n, np.uint16)
    low_bytes = np.empty((n * (16 - top) + 63) // 64 * 8, np.uint8)
    mask = np.uint64(0xFFFF)
    hk.split_fields(values, rotate, mask, 16, top, syms, low_bytes)
    for threads in (1, 2, 3):
        out = np.zeros(n, np.uint16)
        hk.join_fields16(syms, low_bytes, rotate, top, out, threads)
        assert out.tobytes() == values.tobytes(), threads


@pytest.mark.parametrize("top", [9, 11, 12])
@pytest.mark.parametrize("rotate", [0, 1])
def test_threaded_join_fields32_joins_the_same_values(top: int, rotate: int) -> None:
    from sparsecodecs.codecs import _huffman_kernels as hk

    rng = np.random.default_rng(top)
    n = (1 << 18) + 13
    values = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    syms = np.empty(n, np.uint16)
    low_bytes = np.empty((n * (32 - top) + 63) // 64 * 8, np.uint8)
    hk.split_fields(values, rotate, np.uint64(0xFFFFFFFF), 32, top, syms, low_bytes)
    for threads in (1, 2, 3):
        out = np.zeros(n, np.uint32)
        hk.join_fields32(syms, low_bytes, rotate, top, out, threads)
        assert out.tobytes() == values.tobytes(), threads


# -- the kernels' thread pool (kernels/module.c) --------------------------------------------------


def _product_bits(frame: bytes, x: np.ndarray, threads: int) -> bytes:
    return sc.matmul(x, frame, threads=threads).tobytes()


def test_pool_serves_concurrent_callers_the_same_bits() -> None:
    """Python threads calling threaded kernels at once: one owns the pool, the others start
    threads of their own; every result is the one-thread result, bit for bit."""
    from concurrent.futures import ThreadPoolExecutor

    w = weights((512, 384), ml_dtypes.bfloat16)
    frames = [sc.get_codec(c).encode(w) for c in ("nm", "hybrid", "bitmask")]
    x = np.random.default_rng(1).standard_normal((3, 384)).astype(np.float32)
    want = [_product_bits(f, x, 1) for f in frames]
    decoded = w.tobytes()
    jobs = [(i % 3, 2 + i % 3) for i in range(150)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda j: _product_bits(frames[j[0]], x, j[1]), jobs))
        dec = list(pool.map(lambda j: sc.decode(frames[j[0]], threads=j[1]).tobytes(), jobs))
    assert got == [want[i] for i, _ in jobs]
    assert dec == [decoded] * len(jobs)


def _in_forked_child(target: Any, *args: Any) -> Any:
    """What ``target(conn, *args)`` sends back from a forked child, which must answer within a
    minute (not hang) and exit cleanly."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=target, args=(child, *args))
    proc.start()
    assert parent.poll(60), "the forked child did not answer (a hang in a pool?)"
    got = parent.recv()
    proc.join(30)
    assert proc.exitcode == 0
    return got


def _child_product(conn: Any, frame: bytes, x: np.ndarray) -> None:
    conn.send(_product_bits(frame, x, 3))
    conn.close()


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_pool_works_in_a_forked_child() -> None:
    """A child forked after the parent's pool started (whose workers do not exist in the child)
    computes the same bits, and does not hang."""
    w = weights((512, 384), ml_dtypes.bfloat16)
    frame = sc.get_codec("nm").encode(w)
    x = np.random.default_rng(2).standard_normal((2, 384)).astype(np.float32)
    want = _product_bits(frame, x, 2)  # the parent's pool now has workers
    assert _in_forked_child(_child_product, frame, x) == want


def _blocks_to_threads(monkeypatch: pytest.MonkeyPatch, whole: bool) -> list[int]:
    """Row blocks of any size go to threads whole (``whole``), or none do; returns the list
    that counts the products that sent them."""
    from sparsecodecs.compute import products

    sent: list[int] = []
    real = products._blocks_in_parallel
    monkeypatch.setattr(products, "BLOCKS_ON_THREADS_FROM", 0 if whole else 1 << 62)
    monkeypatch.setattr(products, "_blocks_in_parallel",
                        lambda *a: sent.append(1) or real(*a))
    return sent


@pytest.mark.parametrize("codec", ["hybrid", "nm", "bitmask"])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("whole", [True, False], ids=["blocks-to-threads", "rows-to-threads"])
def test_row_blocks_on_threads_give_the_same_bits_and_stats(
        codec: str, batch: int, whole: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A weight of many row blocks, multiplied with threads: each thread takes whole blocks
    (or, for blocks under BLOCKS_ON_THREADS_FROM, the blocks go in turn, their rows split).
    The result's bytes and the stats (paths in block order) are those of one thread."""
    from sparsecodecs.transforms import prune

    sent = _blocks_to_threads(monkeypatch, whole)

    rng = np.random.default_rng(batch)
    w = prune((rng.standard_normal((90, 64)) * 0.05).astype(np.float32), "2:4")[0]
    layer = sc.CompressedLinear.from_array(w.astype(ml_dtypes.bfloat16), codec, block_rows=8)
    x = rng.standard_normal((batch, 64)).astype(np.float32)
    x[0, 3] = np.inf  # the non-finite fix-up runs per block too
    one, many = sc.MatmulStats(), sc.MatmulStats()
    want = layer.matmul(x, stats=one, threads=1)
    for threads in (2, 3, 5):
        got = layer.matmul(x, stats=many, threads=threads)
        assert got.tobytes() == want.tobytes()
        assert many.paths == one.paths and many.macs == one.macs
        assert many.weight_bytes == one.weight_bytes and many.dense_bytes == one.dense_bytes
        many = sc.MatmulStats()
    assert len(sent) == (3 if whole else 0)


@pytest.mark.parametrize("whole", [True, False], ids=["blocks-to-threads", "rows-to-threads"])
def test_row_blocks_on_threads_raise_the_first_bad_blocks_error(
        whole: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks 3 and 9 are damaged differently: with threads, block 3's error is raised, the
    one a single thread meets first."""
    from sparsecodecs.testing import reframe, split_frame

    sent = _blocks_to_threads(monkeypatch, whole)

    w = np.arange(12 * 16, dtype=np.float32).reshape(12, 16) % 7
    frames = [sc.get_codec("bitmask").encode(w[r : r + 1]) for r in range(w.shape[0])]

    def damaged(frame: bytes, nnz: int) -> bytes:
        header, _ = split_frame(frame)
        header["meta"]["nnz"] = nnz  # the values section no longer fits: says nnz * 4 bytes
        return reframe(frame, header=header)

    frames[3] = damaged(frames[3], 1)
    frames[9] = damaged(frames[9], 2)
    layer = sc.CompressedLinear(frames)
    errors = []
    for threads in (1, 2, 4):
        with pytest.raises(sc.SparseCodecsError) as info:
            layer.matmul(np.ones(16, np.float32), threads=threads)
        errors.append((type(info.value), str(info.value)))
    assert errors[0] == errors[1] == errors[2]
    assert len(sent) == (2 if whole else 0)


def test_small_row_blocks_stay_off_the_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Below BLOCKS_ON_THREADS_FROM a frame on average, row blocks go in turn (a MiniLM-sized
    layer's blocks); from it on, whole to the threads (a 4096x4096 hybrid layer's)."""
    from sparsecodecs.compute import products

    small = [sc.get_codec("hybrid").encode(weights((8, 64), np.float32, r)) for r in range(4)]
    sent: list[int] = []
    real = products._blocks_in_parallel
    monkeypatch.setattr(products, "_blocks_in_parallel", lambda *a: sent.append(1) or real(*a))
    layer = sc.CompressedLinear(small)
    want = layer.matmul(np.ones(64, np.float32)).tobytes()
    assert layer.matmul(np.ones(64, np.float32), threads=2).tobytes() == want and not sent
    monkeypatch.setattr(products, "BLOCKS_ON_THREADS_FROM", sum(map(len, small)) // len(small))
    assert layer.matmul(np.ones(64, np.float32), threads=2).tobytes() == want and sent == [1]


# -- the kept threads of row blocks and checkpoint blocks (registry/_pool.py) ---------------


def test_kept_threads_run_items_in_order_at_most_workers_at_once() -> None:
    """map_in_order: the results in item order; never more than ``workers`` items running at
    once; the same threads serve the next call (kept, not made per call)."""
    import threading
    import time

    from sparsecodecs.registry._pool import map_in_order

    lock = threading.Lock()
    running, most = [0], [0]
    names: set[threading.Thread] = set()  # the threads themselves: a name or ident may recur

    def item(i: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
            names.add(threading.current_thread())
        time.sleep(0.002)
        with lock:
            running[0] -= 1
        return i * i

    assert map_in_order(item, range(12), 2) == [i * i for i in range(12)]
    first = set(names)
    assert most[0] <= 2 and len(first) == 2
    names.clear()
    assert map_in_order(item, range(12), 2) == [i * i for i in range(12)]
    assert names == first  # the same two threads
    assert map_in_order(item, range(3), 1) == [0, 1, 4]  # one worker: on the caller's thread
    assert threading.current_thread() in names


def test_kept_threads_raise_the_first_failure_in_order_after_started_items_return() -> None:
    """Items 2 and 5 fail: item 2's error is raised, once every started item has returned;
    items queued behind the failure are dropped, not run after the call returns."""
    import threading
    import time

    from sparsecodecs.registry._pool import map_in_order

    ran: list[int] = []
    finished: list[int] = []
    lock = threading.Lock()

    def item(i: int) -> int:
        with lock:
            ran.append(i)
        if i == 5:
            raise KeyError("five")
        if i == 2:
            time.sleep(0.01)  # fails last of the two, first in order
            raise ValueError("two")
        time.sleep(0.005)
        with lock:
            finished.append(i)
        return i

    with pytest.raises(ValueError, match="two"):
        map_in_order(item, range(40), 2)
    started = set(ran)
    assert started <= set(finished) | {2, 5}  # every started item had returned
    time.sleep(0.05)
    assert set(ran) == started and len(started) < 40  # nothing ran after; the rest dropped


def test_kept_threads_nested_calls_run_inline() -> None:
    """An item that itself maps items (a nested call) runs them on its own thread: no worker
    waits on work queued behind it, so two workers and nested calls cannot deadlock."""
    from sparsecodecs.registry._pool import map_in_order

    def inner(i: int) -> int:
        return i + 1

    def outer(i: int) -> list[int]:
        return map_in_order(inner, range(i, i + 3), 2)

    assert map_in_order(outer, range(4), 2) == [[i + 1, i + 2, i + 3] for i in range(4)]


def _child_blocks(conn: Any, frames: list[bytes], x: np.ndarray) -> None:
    conn.send(sc.CompressedLinear(frames).matmul(x, threads=2).tobytes())
    conn.close()


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_kept_threads_work_in_a_forked_child(monkeypatch: pytest.MonkeyPatch) -> None:
    """A child forked after the parent's kept threads ran row blocks (threads the child does
    not have) multiplies row blocks on threads too, to the same bits, and does not hang."""
    sent = _blocks_to_threads(monkeypatch, True)  # (the child inherits the patch)
    w = weights((64, 64), ml_dtypes.bfloat16)
    frames = [sc.get_codec("hybrid").encode(w[r : r + 8]) for r in range(0, 64, 8)]
    x = np.random.default_rng(3).standard_normal((2, 64)).astype(np.float32)
    want = sc.CompressedLinear(frames).matmul(x, threads=2).tobytes()  # the parent's threads
    assert _in_forked_child(_child_blocks, frames, x) == want and sent == [1]


# -- a large bitmask frame's values and mask side by side ------------------------------------


def _side_by_side_frames() -> dict[str, bytes]:
    """hybrid bitmask frames of 1024 x 1024 (the size from which threads >= 2 decode their
    values and mask side by side): fields, planes and centroid values, a mode fill, 8-byte
    and 4-bit items."""
    w = weights((1024, 1024), ml_dtypes.bfloat16)
    clustered = np.round(w.astype(np.float32) * 20).astype(ml_dtypes.bfloat16)
    filled = w.copy()
    filled[filled == 0] = ml_dtypes.bfloat16(0.5)  # the mode (half the entries) is not zero
    bitmask = sc.get_codec("hybrid", layout="bitmask")
    frames = {
        "fields": bitmask.encode(w),
        "planes": sc.get_codec("hybrid", layout="bitmask", values="planes").encode(w),
        "centroid": bitmask.encode(clustered),
        "fill": bitmask.encode(filled),
        "float32": bitmask.encode(weights((1024, 1024), np.float32)),
        "float64": bitmask.encode(weights((1024, 1024), np.float64)),
        "int4": bitmask.encode(
            np.clip(np.round(w.astype(np.float32) * 40), -8, 7).astype(ml_dtypes.int4)),
    }
    from sparsecodecs.registry.frame import read_frame

    for frame in frames.values():
        assert read_frame(frame).config["layout"] == "bitmask"
    assert read_frame(frames["fill"]).info.meta.get("fill") == "scalar"
    return frames


def test_side_by_side_bitmask_decode_gives_the_same_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    from sparsecodecs.codecs import hybrid

    ran: list[int] = []
    touch = hybrid.touch_pages
    monkeypatch.setattr(hybrid, "touch_pages",
                        lambda out, *a: ran.append(out.size) or touch(out, *a))
    resident = [False]
    monkeypatch.setattr(hybrid, "pages_resident", lambda out: resident[0])
    for name, frame in _side_by_side_frames().items():
        one = sc.decode(frame)
        for threads in (2, 3):
            for resident[0] in (False, True):
                ran.clear()
                got = sc.decode(frame, threads=threads)
                assert got.tobytes() == one.tobytes(), (name, threads, resident)
                # fresh pages: the side-by-side path (both threads touch); resident: none
                assert ran == ([] if resident[0] else [one.size] * 2), (name, resident)
    small = sc.get_codec("hybrid", layout="bitmask").encode(weights((512, 1024), np.float32))
    ran.clear()
    assert sc.decode(small, threads=2).tobytes() == sc.decode(small).tobytes()
    assert ran == []  # under SIDE_BY_SIDE elements: each step split over the threads


def _replaced(frame: bytes, **sections: bytes) -> bytes:
    from sparsecodecs.registry import Section
    from sparsecodecs.registry.frame import read_frame, write_frame

    parsed = read_frame(frame)
    new = [Section(s.name, s.role, sections.get(s.name.replace(".", "_"), s.data))
           for s in parsed.sections]
    return write_frame(parsed.codec_id, parsed.config, parsed.info.dtype, parsed.info.shape,
                       new, dict(parsed.info.meta))


def test_side_by_side_bitmask_decode_raises_what_one_thread_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A damaged mask, damaged values, both, a fill that does not parse, a mask with a bit
    too many: threads=2 raises the error threads=1 raises (the values' first, as the
    one-thread decode reads them first), and a frame whose sections cannot hold its values
    is refused before the output is allocated."""
    from sparsecodecs.registry.frame import read_frame

    frame = _side_by_side_frames()["fields"]
    parts = {s.name: bytes(s.data) for s in read_frame(frame).sections}

    def flipped(name: str, at: float) -> bytes:
        data = bytearray(parts[name])
        data[int(at * len(data))] ^= 0xFF
        return bytes(data)

    def cut(name: str) -> bytes:
        return parts[name][: len(parts[name]) // 2]

    damaged = {
        "mask": _replaced(frame, mask_bits=flipped("mask.bits", 0.5)),
        "mask cut": _replaced(frame, mask_bits=cut("mask.bits")),
        "values": _replaced(frame, v_top_bits=flipped("v.top.bits", 0.5)),
        "values cut": _replaced(frame, v_top_bits=cut("v.top.bits")),
        "both": _replaced(frame, mask_bits=cut("mask.bits"), v_top_bits=cut("v.top.bits")),
        "low": _replaced(frame, v_low=cut("v.low")),
        "tiny": _replaced(frame, mask_bits=b"", v_top_bits=b"", v_low=b""),
        "fill": _replaced(_side_by_side_frames()["fill"], fill=b"\x00"),
    }
    def outcome(bad: bytes, threads: int) -> tuple[str, str]:
        try:
            return "decoded", sc.decode(bad, threads=threads).tobytes().hex()[:64]
        except FrameLayoutError as exc:
            return "refused", str(exc)

    from sparsecodecs.codecs import hybrid

    ran: list[str] = []
    beside = hybrid.beside
    refused = set()
    resident = [False]
    monkeypatch.setattr(hybrid, "pages_resident", lambda out: resident[0])
    for name, bad in damaged.items():
        one = outcome(bad, 1)
        monkeypatch.setattr(hybrid, "beside",
                            lambda work, name=name: ran.append(name) or beside(work))
        for resident[0] in (False, True):  # side by side, or each step on every thread
            assert outcome(bad, 2) == one, (name, resident)
        if one[0] == "refused":
            refused.add(name)
    assert "tiny" not in ran and "values" in ran  # allocated only when the sections can hold it
    # a flipped byte may still decode (to other values); cut sections never do
    assert refused >= {"mask cut", "values cut", "both", "low", "tiny", "fill"}, refused


# -- a large frame's checksum hashed beside its decode ---------------------------------------


def _hashed_beside(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Spy on the kept threads' jobs: the names of the functions run beside a caller."""
    from sparsecodecs.registry import _pool

    jobs: list[str] = []
    real = _pool.run_beside
    monkeypatch.setattr(_pool, "run_beside",
                        lambda fn, *a: jobs.append(getattr(fn, "__name__", "?")) or real(fn, *a))
    return jobs


def _big_frames() -> dict[str, bytes]:
    """Frames of at least CHECK_BESIDE_FROM bytes, from three codecs."""
    from sparsecodecs.registry.frame import CHECK_BESIDE_FROM

    w = weights((1024, 1024), np.float32)
    frames = {c: sc.get_codec(c).encode(w) for c in ("hybrid", "nm", "csr")}
    assert all(len(f) >= CHECK_BESIDE_FROM for f in frames.values())
    return frames


def _damaged(frame: bytes) -> dict[str, bytes]:
    """The frame with a byte flipped in its header, its first and last section and its
    checksum, and cut by a byte: every one a checksum mismatch."""
    from sparsecodecs.registry.frame import read_frame

    parsed = read_frame(frame)
    first = len(frame) - 8 - sum(s.nbytes for s in parsed.sections)

    def flipped(at: int) -> bytes:
        data = bytearray(frame)
        data[at] ^= 0x5A
        return bytes(data)

    return {"header": flipped(14), "first section": flipped(first + 3),
            "last section": flipped(len(frame) - 9), "checksum": flipped(len(frame) - 1),
            "cut": frame[:-1]}


def _outcome(decode: Any, frame: bytes, **kw: Any) -> tuple[str, str]:
    try:
        return "decoded", decode(frame, **kw).tobytes().hex()[:64]
    except sc.SparseCodecsError as exc:
        return type(exc).__name__, str(exc)


def test_large_frame_hashed_beside_decodes_the_same_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = _hashed_beside(monkeypatch)
    for name, frame in _big_frames().items():
        one = sc.decode(frame).tobytes()
        for threads in (2, 3):  # (0, every core, is 1 on a one-core machine)
            jobs.clear()
            assert sc.decode(frame, threads=threads).tobytes() == one, name
            assert sc.get_codec(name).decode(frame, threads=threads).tobytes() == one, name
            assert jobs.count("_checksum_error") == 2, (name, jobs)
    small = sc.get_codec("nm").encode(weights((64, 64), np.float32))
    jobs.clear()
    assert sc.decode(small, threads=2).tobytes() == sc.decode(small).tobytes()
    assert jobs == []  # under CHECK_BESIDE_FROM bytes: hashed first, on the caller's thread


def test_large_frame_hashed_beside_raises_what_one_thread_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A checksum mismatch anywhere is the ChecksumError one thread raises (with its message),
    before whatever the damaged header or sections would raise; a frame that hashes right but
    names another codec is refused as one thread refuses it."""
    jobs = _hashed_beside(monkeypatch)
    for name, frame in _big_frames().items():
        for where, bad in _damaged(frame).items():
            one = _outcome(sc.decode, bad)
            assert one[0] == "ChecksumError", (name, where, one)
            jobs.clear()
            assert _outcome(sc.decode, bad, threads=2) == one, (name, where)
            assert _outcome(sc.get_codec(name).decode, bad, threads=2) == one
            assert jobs.count("_checksum_error") == 2, (name, where, jobs)
        other = sc.get_codec("nm" if name != "nm" else "csr")
        one = _outcome(other.decode, frame)
        assert one[0] == "FrameHeaderError"
        assert _outcome(other.decode, frame, threads=2) == one


def test_checkpoint_hashes_each_frame_once_and_beside_on_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reading a checkpoint hashes each tensor's frame once (it was twice: once to check the
    header against the tensor table, once to decode); a damaged large frame is the same error
    on one thread and on two."""
    from sparsecodecs.registry import frame as frame_module

    w = weights((1024, 1024), np.float32)
    path = tmp_path / "w.safetensors"
    sc.save_file({"w": w, "b": w[0].copy()}, path, codec="hybrid")
    import xxhash

    hashed: list[int] = []

    class Counting:  # the frame module's xxhash, counting the frames it hashes
        xxh3_64 = xxhash.xxh3_64

        @staticmethod
        def xxh3_64_intdigest(data: Any) -> int:
            hashed.append(memoryview(data).nbytes)
            return xxhash.xxh3_64_intdigest(data)

    monkeypatch.setattr(frame_module, "xxhash", Counting)
    for threads in (None, 2):
        hashed.clear()
        got = sc.load_file(path, threads=threads)
        assert got["w"].tobytes() == w.tobytes() and got["b"].tobytes() == w[0].tobytes()
        assert len(hashed) == 2, (threads, hashed)  # one hash a tensor
    data = bytearray(path.read_bytes())
    data[-20] ^= 0x5A  # in the last tensor's frame (the large one's or the small one's)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(data))

    def read(threads: int | None) -> tuple[str, str]:
        try:
            sc.load_file(bad, threads=threads)
        except sc.SparseCodecsError as exc:
            return type(exc).__name__, str(exc)
        return "read", ""

    one = read(None)
    assert one[0] != "read" and "checksum" in one[1], one
    assert read(2) == one


def test_run_beside_runs_jobs_at_once_in_the_callers_context() -> None:
    """Two jobs started one after the other run at the same time (the first waits for the
    second: run in turn on one thread, it would time out); results, errors and the caller's
    context variables come through."""
    import threading

    from sparsecodecs.registry import decoding_threads
    from sparsecodecs.registry._pool import run_beside

    for _ in range(20):
        ready = threading.Event()
        first = run_beside(ready.wait, 10.0)
        second = run_beside(ready.set)
        assert first.result(timeout=30) is True and second.result(timeout=30) is None
    with decoding_threads(3):
        assert run_beside(decode_threads).result(timeout=30) == 3
    assert run_beside(decode_threads).result(timeout=30) == 1
    failed = run_beside(int, "x")
    with pytest.raises(ValueError):
        failed.result(timeout=30)


def _child_hybrid(conn: Any, frame: bytes) -> None:
    conn.send(sc.decode(frame, threads=2).tobytes())
    conn.close()


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_run_beside_works_in_a_forked_child() -> None:
    """A child forked after the parent's kept threads ran a large frame's checksum and its
    side part (threads the child does not have) decodes it on two threads too, and does not
    hang."""
    frame = _big_frames()["hybrid"]
    want = sc.decode(frame, threads=2).tobytes()  # the parent's kept threads now exist
    assert _in_forked_child(_child_hybrid, frame) == want


# -- many tensors of a checkpoint side by side -------------------------------------------------


def test_imap_in_order_yields_in_order_at_most_workers_at_once() -> None:
    """imap_in_order: results in thunk order; never more than ``workers`` thunks running at
    once, nor more than one taken beyond them; the thunks taken on the caller's thread."""
    import functools
    import threading
    import time

    from sparsecodecs.registry._pool import imap_in_order

    lock = threading.Lock()
    running, most, taken, done = [0], [0], [0], [0]
    caller = threading.current_thread()

    def work(i: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.003 if i % 3 else 0.001)
        with lock:
            running[0] -= 1
            done[0] += 1
        return i * i

    def thunks() -> Any:
        for i in range(15):
            assert threading.current_thread() is caller
            taken[0] += 1
            assert taken[0] - done[0] <= 3 + 1  # two running, one queued, this one
            yield functools.partial(work, i)

    assert list(imap_in_order(thunks(), 2)) == [i * i for i in range(15)]
    assert most[0] == 2
    assert list(imap_in_order((functools.partial(work, i) for i in range(3)), 1)) == [0, 1, 4]


def test_imap_in_order_raises_in_order() -> None:
    """A thunk's error comes after every result before it, and so does an error raised while
    taking the next thunk (reading a file); stopping early waits for the started thunks."""
    import functools
    import time

    from sparsecodecs.registry._pool import imap_in_order

    def work(i: int) -> int:
        time.sleep(0.002)
        if i == 4:
            raise ValueError("four")
        return i

    got: list[int] = []
    with pytest.raises(ValueError, match="four"):
        for r in imap_in_order((functools.partial(work, i) for i in range(9)), 2):
            got.append(r)
    assert got == [0, 1, 2, 3]

    def failing_reader() -> Any:
        for i in range(9):
            if i == 3:
                raise OSError("truncated")
            yield functools.partial(work, i)

    got.clear()
    with pytest.raises(OSError, match="truncated"):
        for r in imap_in_order(failing_reader(), 2):
            got.append(r)
    assert got == [0, 1, 2]
    finished: list[int] = []

    def slow(i: int) -> int:
        time.sleep(0.01)
        finished.append(i)
        return i

    results = imap_in_order((functools.partial(slow, i) for i in range(9)), 2)
    assert next(results) == 0
    results.close()  # a consumer that stops early
    count = len(finished)
    time.sleep(0.05)
    assert len(finished) == count < 9  # the started ones were waited for; the rest dropped


def _many_tensors() -> dict[str, np.ndarray]:
    return {**{f"w{i}": weights((64 + 16 * i, 48), ml_dtypes.bfloat16, i) for i in range(6)},
            "mask": np.arange(30) % 3 == 0, "big": weights((300, 64), np.float32, 9),
            "v": np.arange(7, dtype=np.int8)}


def test_load_file_decodes_tensors_side_by_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """load_file and decompress with threads > 1 decode the tensors stored as one frame on
    the kept threads, one thread each, to the same bits (a bool tensor, one in row blocks);
    with one thread, on the caller's."""
    import threading

    from sparsecodecs.io.checkpoint import reading

    tensors = _many_tensors()
    path = tmp_path / "m.safetensors"
    sc.save_file(tensors, path, codec="hybrid", block_bytes=16 << 10)
    with sc.safe_open(path) as f:
        assert f.blocks("big") is not None and f.blocks("w0") is None
    where: list[tuple[str, bool]] = []
    real = reading.safe_open._whole
    monkeypatch.setattr(reading.safe_open, "_whole", lambda self, frame, name, *a: where.append(
        (name, threading.current_thread() is threading.main_thread())) or real(
            self, frame, name, *a))
    for threads in (None, 2, 3):
        where.clear()
        loaded = sc.load_file(path, threads=threads)
        assert list(loaded) == list(tensors)
        for k, v in tensors.items():
            assert loaded[k].dtype == v.dtype and loaded[k].tobytes() == v.tobytes(), (k, threads)
        assert sorted(n for n, _ in where) == sorted(set(tensors) - {"big"})
        assert all(main == (threads is None) for _, main in where), (threads, where)
    sc.decompress(path, tmp_path / "one.safetensors")
    where.clear()
    sc.decompress(path, tmp_path / "two.safetensors", threads=2)
    assert not any(main for _, main in where) and len(where) == len(tensors) - 1
    assert (tmp_path / "one.safetensors").read_bytes() == (
        tmp_path / "two.safetensors").read_bytes()


def test_load_file_side_by_side_raises_what_one_thread_raises(tmp_path: Path) -> None:
    """A damaged frame in the middle, or a file cut short: threads=2 raises the error one
    thread raises (the first in file order), and decompress leaves nothing behind."""
    tensors = _many_tensors()
    path = tmp_path / "m.safetensors"
    sc.save_file(tensors, path, codec="hybrid", block_bytes=16 << 10)
    data = path.read_bytes()

    def flipped(data: bytes, name: str) -> bytes:
        with sc.safe_open(path) as f:
            frame = f.get_frame(name)
        at = data.index(frame) + len(frame) // 2
        return data[:at] + bytes([data[at] ^ 0x5A]) + data[at + 1:]

    damaged = {"frame": flipped(data, "w2"), "two frames": flipped(flipped(data, "w4"), "w1"),
               "cut": data[: len(data) - 40]}
    for what, bad in damaged.items():
        p = tmp_path / f"{what}.safetensors"
        p.write_bytes(bad)
        outcomes = []
        for threads in (None, 2):
            try:
                sc.load_file(p, threads=threads)
                outcomes.append(("read", ""))
            except sc.SparseCodecsError as exc:
                outcomes.append((type(exc).__name__, str(exc)))
        assert outcomes[0][0] != "read" and outcomes[1] == outcomes[0], (what, outcomes)
        out = tmp_path / f"{what}.out.safetensors"
        with pytest.raises(sc.SparseCodecsError):
            sc.decompress(p, out, threads=2)
        assert not out.exists()


def test_use_frame_lets_an_interrupt_through() -> None:
    """An interrupt while a damaged large frame decodes stays an interrupt (the hash beside it
    is waited for, not reported); an error becomes the ChecksumError."""
    from sparsecodecs.registry import ChecksumError
    from sparsecodecs.registry.frame import use_frame

    bad = _damaged(_big_frames()["nm"])["last section"]

    def interrupted(parsed: Any) -> None:
        raise KeyboardInterrupt

    def failing(parsed: Any) -> None:
        raise RuntimeError("decode failed")

    with pytest.raises(KeyboardInterrupt):
        use_frame(bad, interrupted, threads=2)
    with pytest.raises(ChecksumError):
        use_frame(bad, failing, threads=2)
    with pytest.raises(ChecksumError):
        use_frame(bad, interrupted, threads=1)  # one thread: hashed before decoding



def test_touch_pages_with_a_cursor_shares_the_pages() -> None:
    """touch_pages(buf, cursor): every 4096th byte zeroed and no other byte written, the
    cursor past the end; calls on four threads sharing a cursor together touch every page;
    a cursor already past the end touches nothing; a cursor that is not one aligned int64 is
    refused."""
    import threading

    from sparsecodecs.codecs._kernels import touch_pages

    for size in (1, 4096, 4097, (5 << 20) + 123):
        buf = np.full(size, 7, np.uint8)
        cursor = np.zeros(1, np.int64)
        touch_pages(buf, cursor)
        want = np.full(size, 7, np.uint8)
        want[::4096] = want[-1] = 0
        assert buf.tobytes() == want.tobytes() and cursor[0] >= size, size
        plain = np.full(size, 7, np.uint8)
        touch_pages(plain)
        assert plain.tobytes() == want.tobytes(), size
    buf = np.full(37 << 20, 7, np.uint8)
    cursor = np.zeros(1, np.int64)
    workers = [threading.Thread(target=touch_pages, args=(buf, cursor)) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not buf[::4096].any() and not buf[-1]
    assert int(np.count_nonzero(buf == 7)) == buf.size - buf[::4096].size - 1
    buf = np.full(1 << 16, 7, np.uint8)
    for start in (1 << 16, 1 << 40, -1):
        touch_pages(buf, np.array([start], np.int64))
        assert (buf == 7).all(), start
    for bad in (np.zeros(1, np.int32), np.zeros(0, np.int64), np.zeros(4, np.int64)[::2],
                np.zeros(1, np.int64).view(np.uint8)):
        with pytest.raises((BufferError, TypeError, ValueError)):
            touch_pages(buf, bad)
    frozen = np.zeros(1, np.int64)
    frozen.flags.writeable = False
    with pytest.raises(BufferError):
        touch_pages(buf, frozen)



def test_pages_resident_tells_a_fresh_mapping_from_a_touched_one() -> None:
    """A fresh anonymous mapping is not resident; once written, it is; one written in its
    first half only is not; an empty buffer is not (Linux: elsewhere, never)."""
    import mmap
    import sys

    from sparsecodecs.codecs._kernels import pages_resident

    maps = [mmap.mmap(-1, 16 << 20) for _ in range(2)]
    fresh, half = (np.frombuffer(m, np.uint8) for m in maps)
    assert not pages_resident(fresh)
    fresh[::4096] = fresh[-1] = 1
    assert pages_resident(fresh) is (sys.platform == "linux")
    half[: 8 << 20] = 1  # the last page, among those probed, untouched
    assert not pages_resident(half)
    del fresh, half
    assert not pages_resident(np.empty(0, np.uint8))
    assert pages_resident(np.ones(5, np.uint8)) is (sys.platform == "linux")
