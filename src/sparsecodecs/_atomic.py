"""Atomic writes: an output appears whole, or not at all, and never replaces a file unasked.

The one place the library, the bench and the CLI write files from. Each writer goes through a
temporary file (or folder) next to the target, made durable (``fsync``) and then renamed into
place, so a crash, an exception or Ctrl-C leaves either the old file or nothing behind, never a
torn one. An existing target is replaced only with ``force`` (:class:`OutputExistsError`
otherwise); a missing parent folder is :class:`OutputDirError`. Both are checked before any work.

This module sits below everything but :mod:`sparsecodecs.registry.errors`; it will move into the
``io/`` room with the checkpoint code.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .registry.errors import OutputDirError, OutputExistsError

__all__ = ["atomic_dir", "atomic_file", "atomic_write", "check_output"]


def check_output(path: Path, force: bool) -> None:
    """Raise unless ``path`` can be written: it must not exist (or ``force``), its folder must."""
    if path.exists() and not force:
        raise OutputExistsError(f"{path} exists; pass --force (force=True) to overwrite it")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputDirError(f"output directory {parent} does not exist (writing {path})")


def _publish(tmp: str, path: Path) -> None:
    """Give ``tmp`` the usual permissions (mkstemp/mkdtemp make 0600/0700) and rename it."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, (0o777 if os.path.isdir(tmp) else 0o666) & ~umask)
    if path.is_dir() and not path.is_symlink():  # only reached with force
        old = tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old.")
        os.replace(path, os.path.join(old, "x"))
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


@contextlib.contextmanager
def atomic_file(path: Path, force: bool = False) -> Iterator[IO[bytes]]:
    """A binary file opened for writing that becomes ``path`` only if the block succeeds."""
    path = Path(path)
    check_output(path, force)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w+b") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        _publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: Path, force: bool = False) -> Iterator[Path]:
    """A folder that becomes ``path`` only if the block succeeds."""
    path = Path(path)
    check_output(path, force)
    tmp = tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        yield Path(tmp)
        _publish(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write(path: Path, data: bytes, *, force: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_file`)."""
    with atomic_file(Path(path), force) as fh:
        fh.write(data)
