"""Encoding checkpoints on a Dask cluster (``compress(..., client=...)``, ``--dask ADDRESS``).

dask is imported here only, and this module only when a cluster is asked for, so importing
sparsecodecs and starting the command line stay quick. The work divides into independent tasks,
one per tensor or row block (see ``docs/scaling.md``): each Dask worker reads its tensor or block
from the input file itself and returns the frame; the client keeps at most two tasks per worker
thread in flight and writes the frames in order, so the output is byte-identical to a serial run.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable
from typing import Any

from .registry import ClusterError

__all__ = ["connect", "submitter"]


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
    seconds. Use it as a context manager to close the connection.
    """
    client_cls = _client_class()
    if not isinstance(address, str) or not address.strip():
        raise ClusterError(f"a Dask scheduler address looks like tcp://host:8786, got {address!r}")
    try:
        return client_cls(address, timeout=timeout, set_as_default=False)
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


def submitter(client: Any, fn: Callable[[Any], Any]) -> tuple[Callable[[Any], Any], int]:
    """``(submit, window)``: ``submit(task)`` runs ``fn(task)`` on the cluster and returns a
    future; ``window`` is how many to keep in flight (two per worker thread)."""
    if not hasattr(client, "submit") or not hasattr(client, "nthreads"):
        raise ClusterError(
            f"client must be a dask.distributed.Client or a scheduler address, got "
            f"{type(client).__module__}.{type(client).__qualname__}"
        )
    threads = max(1, sum(client.nthreads().values()))

    def submit(task: Any) -> Any:
        return client.submit(fn, task, pure=False)

    return submit, 2 * threads
