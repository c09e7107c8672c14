"""Encoding checkpoints on a Dask cluster (``compress(..., client=...)``, ``--dask ADDRESS``).

dask is imported here only, and this module only when a cluster is asked for, so importing
sparsecodecs and starting the command line stay quick. The work divides into independent tasks,
one per tensor or row block (see ``docs/scaling.md``): each Dask worker reads its tensor or block
from the input file itself and returns the frame; the client keeps at most two tasks per worker
thread in flight and writes the frames in order, so the output is byte-identical to a serial run.

A cluster with no worker would take the tasks and never run them: :func:`submitter` waits at most
:data:`WORKER_TIMEOUT` seconds (or the ``timeout`` given to :func:`connect`, ``--dask-timeout``
on the command line) for a first worker, then raises :class:`ClusterError`.
"""

from __future__ import annotations

import contextlib
import gc
import weakref
from collections.abc import Callable
from typing import Any

from ..registry import ClusterError

__all__ = ["WORKER_TIMEOUT", "connect", "submitter"]

#: Seconds :func:`submitter` waits for a cluster without workers to get one.
WORKER_TIMEOUT = 30.0

# The timeout each client made by connect() was given, which also bounds the wait for workers.
_timeouts: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()


def _client_class() -> Any:
    try:
        from dask.distributed import Client
    except ImportError as exc:
        raise ClusterError(
            "a Dask cluster needs dask.distributed, which is not installed; "
            "pip install 'sparsecodecs[dask]'"
        ) from exc
    return Client


def connect(address: str, timeout: float = 10.0) -> Any:
    """A ``dask.distributed.Client`` connected to the scheduler at ``address``.

    Raises :class:`~sparsecodecs.registry.errors.ClusterError` (one line, naming the address)
    if dask is missing, the address is malformed or no scheduler answers within ``timeout``
    seconds. Use it as a context manager to close the connection. :func:`submitter` waits
    as long (``timeout`` seconds) for a cluster without workers to get one.
    """
    client_cls = _client_class()
    if not isinstance(address, str) or not address.strip():
        raise ClusterError(f"a Dask scheduler address looks like tcp://host:8786, got {address!r}")
    try:
        client = client_cls(address, timeout=timeout, set_as_default=False)
        with contextlib.suppress(TypeError):  # a client class that cannot be weakly referenced
            _timeouts[client] = timeout
        return client
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        _close_half_built(exc, client_cls)
    # Raised outside the handler, with no reference left to the failed constructor's frames:
    # a half-built Client kept alive by a traceback is closed by its __del__ whenever the
    # garbage collector gets to it, and if that is inside the next Client's start-up, the two
    # deadlock on distributed's loop-runner lock (seen in the test suite).
    gc.collect()
    raise ClusterError(f"cannot use the Dask scheduler at {address!r}: {detail}")


def _close_half_built(exc: BaseException, client_cls: Any) -> None:
    """Close the Client whose constructor raised ``exc``, now, on this thread."""
    tb = exc.__traceback__
    while tb is not None:
        obj = tb.tb_frame.f_locals.get("self")
        if isinstance(obj, client_cls):
            # a client that failed half-way may not close cleanly: that is fine
            with contextlib.suppress(Exception):
                obj.close()
            return
        tb = tb.tb_next


def submitter(
    client: Any, fn: Callable[[Any], Any], timeout: float | None = None
) -> tuple[Callable[[Any], Any], int]:
    """``(submit, window)``: ``submit(task)`` runs ``fn(task)`` on the cluster and returns a
    future; ``window`` is how many to keep in flight (two per worker thread).

    A cluster without workers is given ``timeout`` seconds (default: the ``timeout`` the client
    was connected with by :func:`connect`, else :data:`WORKER_TIMEOUT`) to get one; then
    :class:`ClusterError` is raised instead of waiting forever for tasks nobody runs.
    """
    if not hasattr(client, "submit") or not hasattr(client, "nthreads"):
        raise ClusterError(
            f"client must be a dask.distributed.Client or a scheduler address, got "
            f"{type(client).__module__}.{type(client).__qualname__}"
        )
    if timeout is None:
        try:
            timeout = _timeouts.get(client, WORKER_TIMEOUT)
        except TypeError:  # not weakly referenceable, so not one of ours
            timeout = WORKER_TIMEOUT
    threads = sum(client.nthreads().values())
    if threads == 0:
        threads = _wait_for_workers(client, timeout)

    def submit(task: Any) -> Any:
        return client.submit(fn, task, pure=False)

    return submit, 2 * max(1, threads)


def _wait_for_workers(client: Any, timeout: float) -> int:
    """The worker threads of ``client``'s cluster once it has a worker, waiting at most
    ``timeout`` seconds; raises ClusterError when none comes."""
    where = getattr(getattr(client, "scheduler", None), "address", None) or "the cluster"
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (TimeoutError, OSError) as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise ClusterError(
            f"the Dask scheduler at {where!r} has no workers (waited {timeout:g} s: {detail}); "
            "start some with 'dask worker ADDRESS' or give the LocalCluster n_workers >= 1"
        ) from exc
    return sum(client.nthreads().values())
