"""Decoding any frame, and the overhead accounting of a frame.

``inspect(frame)`` says where every byte of a frame went: the ``header`` (magic, version, JSON
header and checksum) and each section by role (``values``, ``index``, ``codebook``). The per-role
bytes add up exactly to ``len(frame)``. Sizes are compared with the dense array and with the
codec's *theoretical* size, what its layout would cost with free metadata:

"Dense" is the array's raw bytes as the ``raw`` codec stores them (4-bit dtypes packed two
values per byte, as GPTQ/AWQ ship them, not ml_dtypes' one per byte).

* ``effective   = frame / dense``
* ``theoretical = theoretical / dense``
* ``overhead    = (frame - theoretical) / dense`` (negative when entropy coding beats the layout)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .dtypes import storage_nbytes
from .errors import FrameHeaderError
from .frame import ROLES, Frame, read_frame, use_frame
from .registry import CodecRegistry, registry

__all__ = ["Report", "SectionReport", "codec_for_frame", "decode", "inspect"]


@dataclass(frozen=True)
class SectionReport:
    name: str
    role: str
    nbytes: int


@dataclass(frozen=True)
class Report:
    """Where the bytes of one frame went. ``str(report)`` is a table; ``to_dict()`` is JSON."""

    codec: str
    config: dict[str, Any]
    dtype: str
    shape: tuple[int, ...]
    dense_bytes: int
    frame_bytes: int
    theoretical_bytes: int
    role_bytes: dict[str, int]
    sections: tuple[SectionReport, ...]

    def _ratio(self, n: int) -> float:
        return n / self.dense_bytes if self.dense_bytes else float("nan")

    @property
    def effective(self) -> float:
        """frame bytes / dense bytes."""
        return self._ratio(self.frame_bytes)

    @property
    def theoretical(self) -> float:
        """theoretical bytes / dense bytes."""
        return self._ratio(self.theoretical_bytes)

    @property
    def overhead(self) -> float:
        """(frame - theoretical) / dense."""
        return self._ratio(self.frame_bytes - self.theoretical_bytes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "codec": self.codec,
            "config": dict(self.config),
            "dtype": self.dtype,
            "shape": list(self.shape),
            "dense_bytes": self.dense_bytes,
            "frame_bytes": self.frame_bytes,
            "theoretical_bytes": self.theoretical_bytes,
            "role_bytes": dict(self.role_bytes),
            "sections": [vars(s) for s in self.sections],
            "effective": self.effective,
            "theoretical": self.theoretical,
            "overhead": self.overhead,
        }

    def __str__(self) -> str:
        def pct(n: int) -> str:
            return f"{100 * self._ratio(n):8.3f}%"

        config = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        lines = [
            f"codec {self.codec}({config})  {self.dtype} {list(self.shape)}",
            f"{'':30}{'bytes':>14}  {'% of dense':>9}",
            f"{'dense':30}{self.dense_bytes:>14,}  {pct(self.dense_bytes)}",
            f"{'theoretical':30}{self.theoretical_bytes:>14,}  {pct(self.theoretical_bytes)}",
            f"{'frame (effective)':30}{self.frame_bytes:>14,}  {pct(self.frame_bytes)}",
            f"{'overhead':30}{self.frame_bytes - self.theoretical_bytes:>14,}  "
            f"{pct(self.frame_bytes - self.theoretical_bytes)}",
            "by role:",
        ]
        for role, n in self.role_bytes.items():
            lines.append(f"  {role:28}{n:>14,}  {pct(n)}")
        lines.append("by section:")
        for s in self.sections:
            label = f"{s.name} ({s.role})"
            lines.append(f"  {label:28}{s.nbytes:>14,}  {pct(s.nbytes)}")
        return "\n".join(lines)


def codec_for_frame(frame: Frame, reg: CodecRegistry = registry) -> Any:
    """The codec instance a parsed frame names, built from its stored config."""
    cls, _ = reg.resolve(frame.codec_id)
    if cls.codec_id != frame.codec_id:
        raise FrameHeaderError(f"frame codec id {frame.codec_id!r} is not a canonical codec id")
    return cls.from_frame(frame)


def decode(
    frame: bytes | bytearray | memoryview, *, max_bytes: int | None = None,
    threads: int | None = None,
) -> np.ndarray:
    """Decode any frame, whichever codec wrote it.

    Raises a :class:`~sparsecodecs.registry.errors.SparseCodecsError` subclass for anything
    wrong with the frame; refuses to decode more than ``max_bytes`` (default: the global limit,
    see :func:`~sparsecodecs.registry.codec.set_decode_limit`).

    ``threads``: how many threads may decode this one frame (its Huffman streams, row ranges
    and planes are independent). ``None`` (default) is 1, ``0`` every core; the result is the
    same bits whatever the number. Small frames use fewer threads than asked: starting a thread
    costs more than decoding a few thousand values. A large frame on more than one thread has
    its checksum verified while it decodes.
    """
    if threads is None:  # use_frame's own first case, without its closure: ~3,000 fewer
        parsed = read_frame(frame)  # instructions a small frame's decode (valgrind)
        return codec_for_frame(parsed).decode_frame(parsed, max_bytes=max_bytes)
    return use_frame(frame, lambda parsed: codec_for_frame(parsed).decode_frame(
        parsed, max_bytes=max_bytes, threads=threads), threads=threads)


def inspect(frame: bytes | bytearray | memoryview) -> Report:
    """The overhead accounting of a frame (the frame is verified, not decoded)."""
    parsed = read_frame(frame)
    codec = codec_for_frame(parsed)
    roles = {"header": parsed.header_nbytes, **{r: 0 for r in ROLES}}
    sections = []
    for s in parsed.sections:
        roles[s.role] += s.nbytes
        sections.append(SectionReport(s.name, s.role, s.nbytes))
    return Report(
        codec=parsed.codec_id,
        config=dict(parsed.config),
        dtype=str(parsed.info.dtype),
        shape=parsed.info.shape,
        dense_bytes=storage_nbytes(parsed.info.dtype, parsed.info.size),
        frame_bytes=parsed.nbytes,
        theoretical_bytes=int(codec.theoretical_nbytes(parsed.info)),
        role_bytes=roles,
        sections=tuple(sections),
    )
