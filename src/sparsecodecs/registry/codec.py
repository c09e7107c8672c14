"""The codec contract.

A codec is a frozen, keyword-only dataclass subclassing :class:`Codec`. It declares:

``codec_id``
    A class attribute: the one name it is registered and framed under (lower case).
``description``
    A class attribute: one line for ``sparsecodecs list``.
parameters
    Its dataclass fields, JSON-native values only. ``get_config()`` returns them with the id,
    ``from_config()`` rebuilds an equal codec, and two codecs with equal configs are equal.
    ``__post_init__`` validates them and raises :class:`CodecConfigError` with the value, the
    allowed set and the fix. A field declared with ``metadata={"omit_default": True}`` is left
    out of ``get_config()`` (and so out of every frame header) while it equals its default: a
    parameter added later then leaves the frames of codecs that do not use it byte-identical,
    and ``from_config()`` restores the default when the key is absent.
``encode_bits(bits, dtype) -> Encoded``
    Receives the bit patterns of the input (C-contiguous unsigned integers of the input's width,
    same shape) and returns named :class:`Section` s, each with a role (``values``, ``index``,
    ``codebook``), plus a small JSON-native ``meta`` dict (e.g. ``nnz``).
``decode_bits(sections, info) -> ndarray``
    The inverse: returns the unsigned-integer array of shape ``info.shape``. It must treat every
    byte as hostile: check sizes with :class:`SectionReader` and ``info.meta_int`` before
    allocating, and raise :class:`FrameLayoutError` for anything inconsistent.
``theoretical_nbytes(info) -> int``
    What the layout would cost with free metadata (e.g. only the kept values for N:M). Defaults
    to the dense size. Count raw values with :func:`~sparsecodecs.registry.dtypes.storage_nbytes`
    (4-bit values are half a byte), and store them with
    :func:`~sparsecodecs.registry.frame.values_section` / read them with
    :meth:`SectionReader.values`, which pack the 4-bit dtypes two values per byte.

The base class does everything else once, for every codec: input validation and the bit view,
framing with a checksum, frame verification, the decoded-size limit, and restoring the dtype.
"""

from __future__ import annotations

import dataclasses
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .dtypes import as_bits, bits_dtype, storage_nbytes
from .errors import CodecConfigError, DecodeLimitError, FrameHeaderError, FrameLayoutError
from .frame import (
    Frame,
    FrameInfo,
    Section,
    SectionReader,
    frame_nbytes,
    packed_header,
    read_frame,
    use_frame,
    write_frame,
)

__all__ = [
    "Codec",
    "Encoded",
    "check_choice",
    "check_int",
    "get_decode_limit",
    "set_decode_limit",
]

_DEFAULT_LIMIT = 1 << 34  # 16 GiB
_limit = [_DEFAULT_LIMIT]


def get_decode_limit() -> int:
    """The default maximum size in bytes of a decoded array (16 GiB unless changed)."""
    return _limit[0]


def set_decode_limit(max_bytes: int | None) -> None:
    """Set the default decoded-size limit for every decode call; ``None`` restores 16 GiB."""
    if max_bytes is None:
        _limit[0] = _DEFAULT_LIMIT
        return
    _limit[0] = check_int("max_bytes", max_bytes, lo=0)


def check_int(name: str, value: object, lo: int | None = None, hi: int | None = None) -> int:
    """Validate an integer parameter; raises CodecConfigError naming it and its range."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise CodecConfigError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        lo_s = "-inf" if lo is None else lo
        hi_s = "inf" if hi is None else hi
        raise CodecConfigError(f"{name} must be in [{lo_s}, {hi_s}], got {name}={value}")
    return value


#: The threads the kernels may use for the frame being decoded (see :func:`decode_threads`).
_THREADS: ContextVar[int] = ContextVar("sparsecodecs_decode_threads", default=1)


@contextmanager
def decoding_threads(threads: int) -> Iterator[None]:
    """Within the block, :func:`decode_threads` is ``threads``: a codec that runs parts of a
    decode side by side on threads of its own gives each part one thread this way."""
    token = _THREADS.set(threads)
    try:
        yield
    finally:
        _THREADS.reset(token)


def resolve_threads(threads: int | None) -> int:
    """The number of threads a ``threads=`` argument asks for.

    ``None`` (the default everywhere) is 1: a library call does not take the machine's cores
    unless asked, as zstd's and numpy's do not. ``0`` is every core (``os.cpu_count()``); any
    other value must be a positive integer (CodecConfigError otherwise).
    """
    if threads is None:
        return 1
    n = check_int("threads", threads, 0)
    return n if n else os.cpu_count() or 1


def decode_threads() -> int:
    """How many threads the kernels may use to decode the current frame: the ``threads=`` of
    the :func:`~sparsecodecs.decode` (or :meth:`Codec.decode`) call under way, 1 outside one.

    Codecs read it where their work splits (independent Huffman streams, row ranges); it is a
    context variable, so concurrent decodes on other threads each see their own."""
    return _THREADS.get()


def check_choice(name: str, value: object, choices: Iterable[object]) -> None:
    """Validate an enumerated parameter; raises CodecConfigError listing the choices."""
    options = list(choices)
    if value not in options:
        raise CodecConfigError(
            f"{name} must be one of {', '.join(map(repr, options))}; got {name}={value!r}"
        )


def _is_default(f: dataclasses.Field[Any], value: object) -> bool:
    """True if ``value`` is the field's default, compared by type and value (``0 != 0.0``)."""
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    else:
        return False
    return type(value) is type(default) and bool(value == default)


#: Codec instances built from frame configs, by :func:`_config_key` (see ``from_frame``).
_BUILT: dict[tuple[Any, ...], Codec] = {}
_BUILT_MAX = 256


def _config_key(cls: type[Codec], config: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """A hashable key for ``(cls, config)`` when every value is a str, int, bool or None
    (kept with its exact type), else None: such configs are not cached."""
    kinds = tuple(map(type, config.values()))  # (tuples built in C: a third of a loop's time)
    if not _KEYED_KINDS.issuperset(kinds):
        return None
    return cls, tuple(config.items()), kinds


#: The types of the config values :func:`_config_key` keys on.
_KEYED_KINDS = frozenset({str, int, bool, type(None)})


@dataclass
class Encoded:
    """What a codec's ``encode_bits`` returns; the base class frames it."""

    sections: list[Section]
    meta: dict[str, Any] = field(default_factory=dict)
    #: The config written into the frame, when it differs from the codec's own (e.g. ``hybrid``
    #: records the layout it chose). ``None`` writes ``get_config()``.
    config: dict[str, Any] | None = None
    #: The frame header :meth:`Codec.encoded_nbytes` packed, with the dtype and shape it was
    #: for: :meth:`Codec.encode` writes it rather than pack it again.
    _header: tuple[tuple[Any, ...], bytes] | None = field(
        default=None, init=False, repr=False, compare=False)


#: Config values a kept config may hold (a caller's copy of the dict cannot change them).
_IMMUTABLE = (str, int, float, bool, type(None), tuple)


@dataclass(frozen=True, kw_only=True)
class Codec(ABC):
    """Abstract base of every codec. See the module docstring for the contract."""

    codec_id: ClassVar[str]
    description: ClassVar[str] = ""
    #: Alternative names, each mapped to the parameters it presets (e.g. ``"2:4"``).
    aliases: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    # -- configuration -------------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """The codec's id and parameters as a JSON-native dict (a new dict every call)."""
        attrs = getattr(self, "__dict__", None)  # None for a codec with __slots__
        if attrs is not None and "_sc_config" in attrs:
            return dict(attrs["_sc_config"])
        config: dict[str, Any] = {"id": self.codec_id}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("omit_default") and _is_default(f, value):
                continue
            config[f.name] = value
        # A frozen codec's config cannot change: kept for the next call (every encode asks),
        # when its values are immutable too (a shallow copy then gives a caller its own).
        params = getattr(type(self), "__dataclass_params__", None)
        if attrs is not None and params is not None and params.frozen and all(
            isinstance(v, _IMMUTABLE) for v in config.values()
        ):
            object.__setattr__(self, "_sc_config", config)
            return dict(config)
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Codec:
        """Build the codec from :meth:`get_config` output (``id`` optional)."""
        if not isinstance(config, Mapping):
            raise CodecConfigError(f"a codec config must be a mapping, got {config!r:.200}")
        params = dict(config)
        given = params.pop("id", cls.codec_id)
        if given != cls.codec_id:
            raise CodecConfigError(f"config is for codec {given!r}, not {cls.codec_id!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise CodecConfigError(
                f"unknown parameter(s) {unknown} for codec {cls.codec_id!r}; "
                f"its parameters are {sorted(known)}"
            )
        try:
            return cls(**params)
        except TypeError as exc:  # e.g. an unhashable value reaching a comparison
            raise CodecConfigError(f"invalid config for codec {cls.codec_id!r}: {exc}") from exc

    @property
    def nm_pattern(self) -> tuple[int, int] | None:
        """``(n, m)`` if the codec only accepts N:M-sparse input along the last axis, else None."""
        return None

    # -- the two methods every codec implements ------------------------------------------------

    @abstractmethod
    def encode_bits(self, bits: np.ndarray, dtype: np.dtype[Any]) -> Encoded:
        """Encode the bit patterns ``bits`` of an array of ``dtype``."""

    @abstractmethod
    def decode_bits(self, sections: SectionReader, info: FrameInfo) -> np.ndarray:
        """Rebuild the unsigned-integer bit patterns of shape ``info.shape``."""

    def theoretical_nbytes(self, info: FrameInfo) -> int:
        """Bytes the layout would take with free metadata. Default: the dense size."""
        return storage_nbytes(info.dtype, info.size)

    # -- provided ------------------------------------------------------------------------------

    def encode(self, array: np.ndarray) -> bytes:
        """Encode ``array`` into a self-describing, checksummed frame."""
        bits, dtype = as_bits(array)
        enc = self.encode_bits(bits, dtype)
        kept = enc._header
        packed = kept[1] if kept is not None and kept[0] == (dtype, bits.shape) else None
        return write_frame(self.codec_id, self._frame_config(enc), dtype, bits.shape,
                           enc.sections, enc.meta, packed=packed)

    def encoded_nbytes(self, enc: Encoded, dtype: np.dtype[Any], shape: tuple[int, ...]) -> int:
        """The bytes of the frame :meth:`encode` writes for ``enc`` (what :meth:`encode_bits`
        returned for bit patterns of ``shape`` and ``dtype``), without assembling it: for an
        encoder choosing between two encodings by their exact sizes. The header it packs is
        kept on ``enc``, which :meth:`encode` then writes instead of packing it again."""
        config = self._frame_config(enc)
        head = packed_header(self.codec_id, config, dtype, shape, enc.sections, enc.meta)
        enc._header = ((dtype, tuple(shape)), head)
        return frame_nbytes(self.codec_id, config, dtype, shape, enc.sections, enc.meta,
                            packed=head)

    def _frame_config(self, enc: Encoded) -> dict[str, Any]:
        """The config a frame records for ``enc``: its own, else the codec's; no ``id``."""
        config = dict(enc.config if enc.config is not None else self.get_config())
        config.pop("id", None)
        return config

    def decode(
        self, frame: bytes | bytearray | memoryview, *, max_bytes: int | None = None,
        threads: int | None = None,
    ) -> np.ndarray:
        """Decode a frame written by this codec (its parameters are taken from the frame).

        ``threads``: see :func:`~sparsecodecs.decode`."""
        if threads is None:
            parsed = read_frame(frame)
            return self._written_by_me(parsed).decode_frame(parsed, max_bytes=max_bytes)
        return use_frame(frame, lambda parsed: self._written_by_me(parsed).decode_frame(
            parsed, max_bytes=max_bytes, threads=threads), threads=threads)

    def _written_by_me(self, parsed: Frame) -> Codec:
        """The codec of a parsed frame this codec's id wrote (FrameHeaderError otherwise)."""
        if parsed.codec_id != self.codec_id:
            raise FrameHeaderError(
                f"frame was written by codec {parsed.codec_id!r}, not {self.codec_id!r}; "
                "use sparsecodecs.decode() to decode any frame"
            )
        return type(self).from_frame(parsed)

    @classmethod
    def from_frame(cls, frame: Frame) -> Codec:
        """The codec instance described by a parsed frame's config.

        Codecs are frozen and equal configs make equal codecs, so the instance built for a
        config of plain scalars is reused by later frames with the same config (type for type:
        ``2`` and ``2.0`` or ``True`` are different keys); it skips the validation that a
        small frame's decode would otherwise spend a good part of its time on.
        """
        key = _config_key(cls, frame.config)
        codec = _BUILT.get(key) if key is not None else None
        if codec is not None:
            return codec
        try:
            codec = cls.from_config(frame.config)
        except CodecConfigError as exc:
            raise FrameHeaderError(f"frame header has an invalid config: {exc}") from exc
        if key is not None:
            if len(_BUILT) >= _BUILT_MAX:
                _BUILT.clear()
            _BUILT[key] = codec
        return codec

    def decode_frame(
        self, frame: Frame, *, max_bytes: int | None = None, threads: int | None = None
    ) -> np.ndarray:
        """Decode an already parsed and verified frame (``threads``: as
        :func:`~sparsecodecs.decode`)."""
        limit = _limit[0] if max_bytes is None else check_int("max_bytes", max_bytes, 0)
        wanted = 1 if threads is None else resolve_threads(threads)
        if wanted == _THREADS.get():  # already so (one thread, the default): no context to set
            return self._decode_frame(frame, limit)
        with decoding_threads(wanted):
            return self._decode_frame(frame, limit)

    def _decode_frame(self, frame: Frame, limit: int) -> np.ndarray:
        info = frame.info
        if info.nbytes > limit:
            raise DecodeLimitError(
                f"frame decodes to {info.nbytes} bytes (shape {list(info.shape)}, "
                f"{info.dtype}), over the limit of {limit} bytes; pass max_bytes= or call "
                "sparsecodecs.set_decode_limit() to allow it"
            )
        reader = SectionReader(frame.sections)
        bits = self.decode_bits(reader, info)
        reader.check_all_used()
        udt = bits_dtype(info.dtype)
        if bits.shape != info.shape or bits.dtype != udt:
            raise FrameLayoutError(
                f"codec {self.codec_id!r} decoded shape {bits.shape} {bits.dtype}, expected "
                f"{info.shape} {udt}"
            )
        if info.dtype.byteorder == ">":
            return bits.astype(udt.newbyteorder(">")).view(info.dtype)
        return bits.view(info.dtype)
