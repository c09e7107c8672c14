"""Kept worker threads for work a caller splits by ``threads=`` (row blocks of a product,
blocks of a checkpoint tensor, a checkpoint's tensors: :func:`map_in_order`,
:func:`imap_in_order`), shared by every such call; and kept threads for leaf work beside a
caller (a large frame's checksum, one part of a decode: :func:`run_beside`).

A :class:`~concurrent.futures.ThreadPoolExecutor` made and shut down per call cost more than
the work on small weights: a 1536x384 ``hybrid`` product in six row blocks took 2.8-4.1 ms on
two threads and 0.85-1.05 ms on one (docs/compute.md, "Kept threads for row blocks"), where
the pool alone was 0.63-0.71 ms for six empty items made per call, 0.16-0.17 kept. One pool
is kept per worker count asked for, so that ``threads=2`` never runs more than two blocks at
once, made on first use and forgotten in a forked child (whose copy of the pool has no threads
behind it), as are :func:`run_beside`'s idle threads.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextvars import copy_context
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

_lock = threading.Lock()
_pools: dict[int, ThreadPoolExecutor] = {}
_inside = threading.local()  # set on the pools' threads while they run a call's item


def _forget() -> None:
    """In a forked child: the parent's pools have no threads here; make new ones on use."""
    global _lock
    _lock = threading.Lock()
    _pools.clear()
    _idle.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget)


def _pool(workers: int) -> ThreadPoolExecutor:
    with _lock:
        pool = _pools.get(workers)
        if pool is None:
            pool = _pools[workers] = ThreadPoolExecutor(
                workers, thread_name_prefix=f"sparsecodecs-{workers}")
        return pool


def map_in_order(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """``[fn(item) for item in items]``, up to ``workers`` items at a time on kept threads,
    each run in a copy of the caller's context (context variables such as the decode's
    ``threads``). The first item that fails, in item order, raises its error once every item
    already started has returned; items not started by then are dropped. From one of the pools'
    own threads (a nested call) the items run one after another on that thread, so that no
    worker waits on work queued behind it."""
    if workers <= 1 or len(items) <= 1 or getattr(_inside, "active", False):
        return [fn(item) for item in items]
    pool = _pool(min(workers, len(items)))
    done: list[Future[R]] = [pool.submit(copy_context().run, _run_inside, fn, item)
                             for item in items]
    try:
        return [f.result() for f in done]
    except BaseException:
        for f in done:
            f.cancel()
        wait(done)  # the started ones write into the caller's buffers: let them finish
        raise


def _run_inside(fn: Callable[..., R], *args: object) -> R:
    """``fn(*args)`` on a pool thread, marked as such (nested calls then run inline)."""
    _inside.active = True
    try:
        return fn(*args)
    finally:
        _inside.active = False


def imap_in_order(thunks: Iterable[Callable[[], R]], workers: int) -> Iterator[R]:
    """The results of ``thunks`` in order, up to ``workers`` of them running at a time on the
    kept threads of :func:`map_in_order` (each in a copy of the caller's context), and one
    more taken and queued. ``thunks`` is iterated on the caller's thread, as results are
    taken: it may read a file in order, and do work of its own (a thunk it returns may just
    hand back a result). Errors come in order: a thunk's, or one raised taking the next
    thunk, after every result before it. Stopping early drops the thunks not started and
    waits for the started ones. From a pool thread, or with one worker: one after another."""
    if workers <= 1 or getattr(_inside, "active", False):
        for thunk in thunks:
            yield thunk()
        return
    pool = _pool(workers)
    window: deque[Future[R]] = deque()
    it = iter(thunks)
    try:
        while True:
            if len(window) > workers:
                yield window.popleft().result()
            try:
                thunk = next(it)
            except StopIteration:
                break
            except BaseException:
                while window:  # the results before the error come first
                    yield window.popleft().result()
                raise
            window.append(pool.submit(copy_context().run, _run_inside, thunk))
        while window:
            yield window.popleft().result()
    finally:
        for f in window:
            f.cancel()
        wait(window)


class _Beside:
    """A kept thread of :func:`run_beside`, with a queue of its own. A queue shared by idle
    threads (a ThreadPoolExecutor(2)'s) often woke one of them for two jobs put together (by
    CPython's SimpleQueue, whose second ``put`` finds no waiter to wake), so that a decode's
    checksum and its side part ran one after the other on one thread while the other slept:
    10-11 times in 40 against 0 in 40 this way (docs/benchmarks.md)."""

    __slots__ = ("jobs",)

    def __init__(self) -> None:
        import queue

        self.jobs: queue.SimpleQueue[tuple[Callable[[], object], Future[object]]] = (
            queue.SimpleQueue())
        threading.Thread(target=self._serve, name="sparsecodecs-beside", daemon=True).start()

    def _serve(self) -> None:
        while True:
            job, future = self.jobs.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(job())
                except BaseException as exc:  # handed to whoever waits on the future
                    future.set_exception(exc)
            del job, future
            with _lock:
                if len(_idle) >= _BESIDE_KEEP:
                    return  # enough kept: this one ends
                _idle.append(self)


#: The idle kept threads of :func:`run_beside`, and how many it keeps (more may run at once).
_idle: list[_Beside] = []
_BESIDE_KEEP = max(2, os.cpu_count() or 1)


def run_beside(fn: Callable[..., R], *args: object) -> Future[R]:
    """``fn(*args)`` started on a kept thread of its own (an idle one, else a new one), in a
    copy of the caller's context; the caller takes its result, or its error, from the future.
    A kept thread, where a thread started for the job cost ~0.3 ms of a 4096x4096 ``hybrid``
    decode on two threads (docs/benchmarks.md)."""
    future: Future[R] = Future()
    context = copy_context()
    with _lock:
        worker = _idle.pop() if _idle else None
    if worker is None:
        worker = _Beside()
    worker.jobs.put((lambda: context.run(fn, *args), future))  # type: ignore[arg-type]
    return future
