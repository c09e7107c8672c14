"""The conformance suite: what every codec, built-in or third-party, must do.

:func:`check_codec` runs every check on one codec instance and raises :class:`AssertionError`
naming the check, the input and what went wrong. The checks are also available one by one
(:data:`CHECKS`), all with the signature ``check(codec, *, max_examples=None)``, so a test suite
can parametrize over them:

``registered``
    The codec's class is what the registry returns for its ``codec_id``.
``config``
    ``get_config()`` is JSON-native; ``from_config`` and ``sparsecodecs.get_codec`` rebuild an
    equal codec from it (also after a trip through JSON); unknown parameters are refused.
``unsupported_input``
    A list, a scalar, object, bool, complex, string, structured and datetime arrays raise
    :class:`~sparsecodecs.UnsupportedDtypeError` (a ``TypeError``).
``pattern``
    For codecs with ``nm_pattern == (n, m)``: a group with more than ``n`` non-zeros (``-0.0``
    counts) raises :class:`~sparsecodecs.PatternError`.
``edge_cases``
    Bit-exact round trip of every supported dtype (big-endian too) x every shape of
    :data:`~sparsecodecs.testing.strategies.EDGE_SHAPES` x all-zero, fully dense and special
    values.
``roundtrip``
    Bit-exact round trip of :func:`~sparsecodecs.testing.strategies.sparse_arrays` (N:M arrays
    for N:M codecs), through ``codec.decode`` and ``sparsecodecs.decode``; the input is not
    modified.
``layouts``
    The same for Fortran-ordered, strided, reversed, byte-swapped, read-only and unaligned input.
``accounting``
    ``sparsecodecs.inspect``: the bytes by role add up to the frame, the dense size is the
    input's ``nbytes``, the report serialises.
``corruption``
    Every single flipped byte, every truncation and an appended byte raise a
    :class:`~sparsecodecs.SparseCodecsError` subclass, and nothing else.
``reframed``
    Frames rewritten behind a valid checksum (:func:`~sparsecodecs.testing.frames.mutated_frames`:
    shape, dtype, meta and config values, section sizes and payloads) raise a
    ``SparseCodecsError`` subclass or decode to an array of the stated shape and dtype.

The codec's class must be registered (``@register_codec``, an entry point, or
:func:`registered` in a test), because frames are decoded through the registry.

>>> import sparsecodecs as sc
>>> check_codec(sc.get_codec("nm", n=1, m=4), max_examples=3, fuzz_examples=3)
"""

from __future__ import annotations

import contextlib
import json
import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, Protocol

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..registry import (
    ROLES,
    Codec,
    CodecConfigError,
    CodecRegistry,
    PatternError,
    SparseCodecsError,
    UnknownCodecError,
    UnsupportedDtypeError,
    decode,
    element_bits,
    inspect,
    read_frame,
    registry,
    storage_nbytes,
)
from ..registry.dtypes import dtype_name
from .frames import mutated_frames
from .strategies import (
    EDGE_SHAPES,
    all_dtypes,
    from_bits,
    shapes,
    sparse_arrays,
    special_bit_patterns,
)

__all__ = [
    "CHECKS",
    "Check",
    "arrays_for",
    "assert_bits_equal",
    "assert_decodes_or_refuses",
    "bits_of",
    "check_accounting",
    "check_codec",
    "check_config",
    "check_corruption",
    "check_edge_cases",
    "check_layouts",
    "check_pattern",
    "check_reframed",
    "check_registered",
    "check_roundtrip",
    "check_unsupported_input",
    "registered",
]


class Check(Protocol):
    """The signature every check has."""

    def __call__(self, codec: Codec, *, max_examples: int | None = None) -> None: ...


# -- helpers ---------------------------------------------------------------------------------


def _fail(message: str, cause: BaseException | None = None) -> NoReturn:
    raise AssertionError(message) from cause


def _dtype_label(dtype: np.dtype[Any]) -> str:
    try:
        return dtype_name(dtype)
    except SparseCodecsError:
        return str(dtype)


def _describe(array: np.ndarray) -> str:
    if array.flags.c_contiguous:
        layout = "C-contiguous"
    elif array.flags.f_contiguous:
        layout = "Fortran-ordered"
    else:
        layout = f"strides {array.strides}"
    return f"{_dtype_label(array.dtype)} array of shape {array.shape} ({layout})"


def bits_of(array: np.ndarray) -> np.ndarray:
    """The bit patterns of ``array`` as native unsigned integers of its width, in C order.

    Independent of the library's own normalisation, so tests compare against it.

    >>> bits_of(np.array([-0.0], dtype=">f2"))
    array([32768], dtype=uint16)
    """
    width = np.dtype(f"u{array.dtype.itemsize}")
    stored = width.newbyteorder(">") if array.dtype.byteorder == ">" else width
    return array.copy(order="C").view(stored).astype(width)


def assert_bits_equal(actual: object, expected: np.ndarray, what: str = "decoded array") -> None:
    """Raise AssertionError unless ``actual`` has ``expected``'s dtype, shape and bit patterns.

    NaN payloads, ``-0.0`` and byte order all count; the message gives the first differing
    index and both bit patterns.
    """
    if not isinstance(actual, np.ndarray):
        _fail(f"{what} is a {type(actual).__name__}, not a numpy.ndarray")
    if actual.dtype != expected.dtype:
        _fail(
            f"{what} has dtype {_dtype_label(actual.dtype)}, expected "
            f"{_dtype_label(expected.dtype)}"
        )
    if actual.shape != expected.shape:
        _fail(f"{what} has shape {actual.shape}, expected {expected.shape}")
    got, want = bits_of(actual).reshape(-1), bits_of(expected).reshape(-1)
    differ = np.flatnonzero(got != want)
    if differ.size:
        i = int(differ[0])
        index = tuple(int(k) for k in np.unravel_index(i, expected.shape))
        _fail(
            f"{what} differs from the input in {differ.size} of {want.size} elements of "
            f"{_dtype_label(expected.dtype)}; first at index {index}: bits {int(got[i]):#x}, "
            f"expected {int(want[i]):#x}"
        )


def _settings(max_examples: int | None) -> settings:
    """The loaded profile, with this check's example count, no deadline, no too_slow check and
    one failure reported (an AssertionError, not an ExceptionGroup)."""
    base = settings()
    return settings(
        base,
        max_examples=base.max_examples if max_examples is None else max_examples,
        deadline=None,
        report_multiple_bugs=False,
        suppress_health_check=[*base.suppress_health_check, HealthCheck.too_slow],
    )


def _encode(codec: Codec, array: np.ndarray, what: str = "") -> bytes:
    label = what or _describe(array)
    try:
        frame: object = codec.encode(array)
    except Exception as exc:
        raise AssertionError(
            f"{codec!r}.encode() raised {type(exc).__name__}: {exc} on a valid input: {label}"
        ) from exc
    if not isinstance(frame, bytes):
        _fail(f"{codec!r}.encode() returned a {type(frame).__name__}, not bytes")
    return frame


def _decoders(codec: Codec) -> list[tuple[str, Callable[..., np.ndarray]]]:
    return [(f"{codec!r}.decode", codec.decode), ("sparsecodecs.decode", decode)]


def _assert_roundtrip(codec: Codec, array: np.ndarray, what: str = "") -> None:
    """encode then decode (both ways) must give ``array`` back bit for bit, leaving it intact."""
    label = what or _describe(array)
    before = bits_of(array)
    frame = _encode(codec, array, label)
    if not np.array_equal(bits_of(array), before):
        _fail(f"{codec!r}.encode() modified its input: {label}")
    for name, decoder in _decoders(codec):
        try:
            out = decoder(memoryview(frame) if decoder is decode else frame)
        except Exception as exc:
            raise AssertionError(
                f"{name}() raised {type(exc).__name__}: {exc} on the frame of {label}"
            ) from exc
        assert_bits_equal(out, array, f"{name}(encode(x)) for x a {label}")


def _check_decoder(
    name: str,
    decoder: Callable[..., np.ndarray],
    frame: bytes,
    what: str,
    max_bytes: int | None,
    reference: np.ndarray | None,
) -> np.ndarray | SparseCodecsError:
    """``decoder(frame)`` raises a SparseCodecsError (returned), or returns an array of the
    header's shape and dtype (returned); with ``reference``, exactly that array. Warnings are
    errors."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = decoder(frame, max_bytes=max_bytes)
    except SparseCodecsError as exc:
        if reference is not None:
            _fail(f"{name}() refused a {what}, which must decode as the original frame does", exc)
        return exc
    except Exception as exc:
        raise AssertionError(
            f"{name}() raised {type(exc).__name__}: {exc} on a {what}; only "
            "sparsecodecs.SparseCodecsError subclasses may escape a decoder"
        ) from exc
    if reference is not None:
        assert_bits_equal(out, reference, f"{name}() of a {what}")
        return out
    info = read_frame(frame).info
    if not isinstance(out, np.ndarray) or out.shape != info.shape or out.dtype != info.dtype:
        _fail(
            f"{name}() of a {what} returned {type(out).__name__} "
            f"{getattr(out, 'shape', '')} {getattr(out, 'dtype', '')}, not an array of the "
            f"header's shape {info.shape} and dtype {_dtype_label(info.dtype)}"
        )
    return out


def assert_decodes_or_refuses(
    frame: bytes | bytearray | memoryview,
    what: str = "frame",
    *,
    max_bytes: int | None = None,
    reference: np.ndarray | None = None,
) -> np.ndarray | SparseCodecsError:
    """The decoding guarantee, checked on one frame, however hostile.

    ``sparsecodecs.decode(frame, max_bytes=max_bytes)`` must raise a
    :class:`~sparsecodecs.SparseCodecsError` subclass or return an array of the shape and dtype
    the frame's header states (with ``reference``: exactly ``reference``, bit for bit), and
    ``sparsecodecs.inspect(frame)`` must raise a ``SparseCodecsError`` subclass or return a
    report. Any other exception, or a warning (turned into an error here), raises
    :class:`AssertionError` naming ``what`` and chaining the original.

    Returns
    -------
    numpy.ndarray or SparseCodecsError
        The decoded array, or the error that refused the frame.

    >>> err = assert_decodes_or_refuses(b"SPCF" + bytes(20))
    >>> str(err)
    'frame format version 0 is not supported; this library reads versions 1, 2, 3'
    """
    data = bytes(frame)
    out = _check_decoder("sparsecodecs.decode", decode, data, what, max_bytes, reference)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            inspect(data)
    except SparseCodecsError:
        pass
    except Exception as exc:
        raise AssertionError(
            f"sparsecodecs.inspect() raised {type(exc).__name__}: {exc} on a {what}; only "
            "sparsecodecs.SparseCodecsError subclasses may escape it"
        ) from exc
    return out


def _assert_rejected(
    codec: Codec, frame: bytes, what: str, *, limit: int, reference: np.ndarray | None = None
) -> None:
    """Both decoders (the codec's and ``sparsecodecs.decode``) keep the decoding guarantee."""
    for name, decoder in _decoders(codec):
        _check_decoder(name, decoder, frame, what, limit, reference)


def _assert_fails(codec: Codec, frame: bytes, what: str) -> None:
    """Decoding ``frame`` must raise a SparseCodecsError subclass, and nothing else."""
    for name, decoder in _decoders(codec):
        try:
            decoder(frame)
        except SparseCodecsError:
            continue
        except Exception as exc:
            raise AssertionError(
                f"{name}() raised {type(exc).__name__}: {exc} on a {what}; expected a "
                "sparsecodecs.SparseCodecsError subclass"
            ) from exc
        _fail(f"{name}() decoded a {what} without an error")


def arrays_for(codec: Codec, **kwargs: Any) -> st.SearchStrategy[np.ndarray]:
    """:func:`~sparsecodecs.testing.strategies.sparse_arrays` that ``codec`` accepts.

    N:M arrays along the last axis for a codec with an ``nm_pattern``; keyword arguments are
    passed on. For a codec whose ``fill`` (the value that counts as empty) is a number, the
    empty entries hold that number wherever the drawn dtype represents it exactly.
    """
    pattern = codec.nm_pattern
    if pattern is not None:
        kwargs.setdefault("pattern", pattern)
    arrays = sparse_arrays(**kwargs)
    if _numeric_fill(codec) is None:
        return arrays
    return arrays.map(lambda a: _around_fill(a, codec))


def _numeric_fill(codec: Codec) -> int | float | None:
    fill = getattr(codec, "fill", "zero")
    return fill if isinstance(fill, (int, float)) and not isinstance(fill, bool) else None


def _around_fill(array: np.ndarray, codec: Codec) -> np.ndarray:
    """``array`` with its zero bit patterns replaced by those of the codec's numeric ``fill``,
    if it has one and the array's dtype holds it exactly."""
    from ..codecs._fill import _representable
    from ..registry import FillError

    fill = _numeric_fill(codec)
    if fill is None:
        return array
    try:
        pattern = _representable([fill], array.dtype, fill)[0]
    except FillError:
        return array
    bits = bits_of(array)
    return from_bits(np.where(bits == 0, pattern, bits).astype(bits.dtype), array.dtype)


def _nm_keep(shape: tuple[int, ...], pattern: tuple[int, int] | None) -> np.ndarray:
    """The densest N:M mask: the first n slots of every group of m along the last axis."""
    if pattern is None or not shape:
        return np.ones(shape, bool)
    n, m = pattern
    return np.broadcast_to(np.arange(shape[-1]) % m < n, shape)


def _edge_array(
    dtype: np.dtype[Any], shape: tuple[int, ...], fill: str, codec: Codec
) -> np.ndarray:
    width = np.dtype(f"u{dtype.itemsize}")
    size = math.prod(shape)
    if fill == "zeros":
        bits = np.zeros(size, width)
    elif fill == "special":
        specials = special_bit_patterns(dtype)
        bits = np.array([specials[i % len(specials)] for i in range(size)], width)
    else:
        top = (1 << element_bits(dtype)) - 1
        rng = np.random.default_rng(size)
        bits = rng.integers(1, top, size, dtype=width, endpoint=True)
    bits = np.where(_nm_keep(shape, codec.nm_pattern), bits.reshape(shape), width.type(0))
    return _around_fill(from_bits(np.asarray(bits, width), dtype), codec)


# -- the checks ------------------------------------------------------------------------------


def check_registered(codec: Codec, *, max_examples: int | None = None) -> None:
    """The registry maps ``codec.codec_id`` to ``type(codec)``."""
    instance: object = codec  # a check must not trust its argument's type
    if not isinstance(instance, Codec):
        _fail(f"{codec!r} is not an instance of a sparsecodecs.Codec subclass")
    cls = type(codec)
    try:
        found, _ = registry.resolve(codec.codec_id)
    except UnknownCodecError as exc:
        raise AssertionError(
            f"codec id {codec.codec_id!r} of {cls.__module__}.{cls.__qualname__} is not "
            "registered, so its frames cannot be decoded: decorate the class with "
            "@sparsecodecs.register_codec, declare it in the entry-point group "
            "'sparsecodecs.codecs', or test it inside sparsecodecs.testing.registered(...)"
        ) from exc
    if found is not cls:
        _fail(
            f"the registry maps {codec.codec_id!r} to {found.__module__}.{found.__qualname__}, "
            f"not to {cls.__module__}.{cls.__qualname__}"
        )


def check_config(codec: Codec, *, max_examples: int | None = None) -> None:
    """``get_config()`` is JSON-native and rebuilds an equal codec every way it can."""
    cls = type(codec)
    config = codec.get_config()
    if not isinstance(config, dict) or config.get("id") != codec.codec_id:
        _fail(f"get_config() must be a dict with 'id': {codec.codec_id!r}, got {config!r}")
    try:
        text = json.dumps(config, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"get_config() is not JSON-serialisable: {config!r}: {exc}") from exc
    reloaded = json.loads(text)
    if reloaded != config:
        _fail(f"get_config() is not JSON-native: {config!r} comes back from JSON as {reloaded!r}")
    params = {k: v for k, v in config.items() if k != "id"}
    rebuilt: list[tuple[str, Callable[[], object]]] = [
        ("from_config(get_config())", lambda: cls.from_config(config)),
        ("from_config(<config through JSON>)", lambda: cls.from_config(reloaded)),
        ("from_config(<config without 'id'>)", lambda: cls.from_config(params)),
        ("sparsecodecs.get_codec(get_config())", lambda: registry.get(config)),
        ("sparsecodecs.get_codec(id, **params)", lambda: registry.get(codec.codec_id, **params)),
    ]
    for what, build in rebuilt:
        try:
            other = build()
        except Exception as exc:
            raise AssertionError(f"{what} raised {type(exc).__name__}: {exc}") from exc
        if type(other) is not cls or other != codec:
            _fail(f"{what} gave {other!r}, which is not equal to {codec!r}")
        with contextlib.suppress(TypeError):  # an unhashable codec is allowed
            if hash(other) != hash(codec):
                _fail(f"{what} gave {other!r}, equal to {codec!r} but with a different hash")
    try:
        cls.from_config({**config, "no_such_parameter": 1})
    except CodecConfigError:
        pass
    except Exception as exc:
        raise AssertionError(
            f"from_config() with an unknown parameter raised {type(exc).__name__}: {exc}; "
            "expected sparsecodecs.CodecConfigError"
        ) from exc
    else:
        _fail("from_config() accepted an unknown parameter 'no_such_parameter'")
    frame = _encode(codec, _around_fill(np.zeros((2, 8), np.float32), codec))
    if read_frame(frame).codec_id != codec.codec_id:
        _fail(f"frames name codec {read_frame(frame).codec_id!r}, not {codec.codec_id!r}")


def _unsupported_inputs() -> dict[str, object]:
    cases: dict[str, object] = {
        "a list": [1.0, 0.0, 2.0],
        "a Python float": 1.5,
        "a numpy scalar": np.float32(1.5),
        "an object array": np.array([1.0, None, 2.0], dtype=object),
        "a bool array": np.array([True, False, True, True]),
        "a complex64 array": np.array([1 + 2j, 0, 3j], dtype=np.complex64),
        "a complex128 array": np.zeros((2, 4), dtype=np.complex128),
        "a string array": np.array(["a", "", "b"]),
        "a structured array": np.zeros(4, dtype=[("a", "<f4"), ("b", "<i4")]),
        "a datetime64 array": np.array(["2024-01-01", "NaT"], dtype="datetime64[D]"),
    }
    if np.dtype(np.longdouble).itemsize > 8:
        cases["a longdouble array"] = np.zeros(4, dtype=np.longdouble)
    return cases


def check_unsupported_input(codec: Codec, *, max_examples: int | None = None) -> None:
    """Non-arrays and arrays of unsupported dtypes raise UnsupportedDtypeError."""
    for what, value in _unsupported_inputs().items():
        try:
            codec.encode(value)  # type: ignore[arg-type]
        except UnsupportedDtypeError:
            continue
        except Exception as exc:
            raise AssertionError(
                f"{codec!r}.encode({what}) raised {type(exc).__name__}: {exc}; expected "
                "sparsecodecs.UnsupportedDtypeError"
            ) from exc
        _fail(f"{codec!r}.encode({what}) returned a frame; expected UnsupportedDtypeError")


def _pattern_violations(
    n: int, m: int, width: np.dtype[Any], sign_bit: int
) -> Iterator[tuple[str, np.ndarray]]:
    """Bit patterns of ``width`` that break n:m along the last axis, with a description."""
    yield "a fully dense group", np.ones(m, width)
    second = np.zeros((3, 2 * m), width)
    second[1, m : m + n + 1] = 1
    yield f"row 1 with {n + 1} non-zeros in its second group", second
    if n + 1 < m:
        short = np.zeros((2, m + n + 1), width)
        short[1, m:] = 1
        yield f"a short last group of {n + 1} non-zeros", short
    signed = np.zeros((2, m), width)
    signed[0, :n] = 1
    signed[0, n] = 1 << sign_bit
    yield f"a group of {n} non-zeros and the sign bit alone (-0.0 is a value)", signed


def check_pattern(codec: Codec, *, max_examples: int | None = None) -> None:
    """An N:M codec refuses groups with more than n non-zeros (by bit pattern) with PatternError.

    Codecs without an ``nm_pattern`` pass trivially (their round trip covers any pattern), and
    so do codecs with a ``fill`` other than ``"zero"``: for them "empty" is not bit pattern
    zero, and their own tests check the pattern around their fill.
    """
    pattern = codec.nm_pattern
    if pattern is None or getattr(codec, "fill", "zero") != "zero":
        return
    if (
        not isinstance(pattern, tuple)
        or len(pattern) != 2
        or not all(isinstance(k, int) for k in pattern)
        or not 1 <= pattern[0] < pattern[1]
    ):
        _fail(f"nm_pattern must be a tuple (n, m) with 1 <= n < m, got {pattern!r}")
    n, m = pattern
    for dtype in all_dtypes():
        sign = element_bits(dtype) - 1
        for what, bits in _pattern_violations(n, m, np.dtype(f"u{dtype.itemsize}"), sign):
            array = from_bits(bits, dtype)
            try:
                codec.encode(array)
            except PatternError:
                continue
            except Exception as exc:
                raise AssertionError(
                    f"{codec!r}.encode() of {what} ({_describe(array)}) raised "
                    f"{type(exc).__name__}: {exc}; expected sparsecodecs.PatternError"
                ) from exc
            _fail(
                f"{codec!r} has nm_pattern {pattern} but encoded {what} ({_describe(array)}); "
                "expected sparsecodecs.PatternError"
            )


def check_edge_cases(codec: Codec, *, max_examples: int | None = None) -> None:
    """Round trip of every dtype x edge shape x (all-zero, fully dense, special values)."""
    for dtype in all_dtypes():
        for shape in EDGE_SHAPES:
            for fill in ("zeros", "dense", "special") if math.prod(shape) else ("zeros",):
                array = _edge_array(dtype, shape, fill, codec)
                _assert_roundtrip(codec, array, f"{fill} {_describe(array)}")


def check_roundtrip(codec: Codec, *, max_examples: int | None = None) -> None:
    """Bit-exact round trip of generated weight-like arrays (N:M ones for N:M codecs)."""

    @_settings(max_examples)
    @given(array=arrays_for(codec))
    def roundtrip(array: np.ndarray) -> None:
        _assert_roundtrip(codec, array)

    roundtrip()


def _layout_variants(array: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    """Views and copies of ``array`` with the same values but another memory layout."""
    yield "Fortran-ordered", np.asfortranarray(array)
    wide = np.zeros((*array.shape[:-1], 2 * array.shape[-1]), array.dtype)
    wide[..., ::2] = array
    yield "strided (every other column)", wide[..., ::2]
    yield "reversed (negative strides)", np.flip(np.flip(array, 0).copy(), 0)
    readonly = array.copy()
    readonly.flags.writeable = False
    yield "read-only", readonly
    if array.dtype.itemsize > 1:
        buffer = b"\0" + array.tobytes()
        yield "unaligned", np.frombuffer(buffer, array.dtype, array.size, 1).reshape(array.shape)
        bits = bits_of(array)
        if array.dtype.byteorder == ">":
            yield "native byte order", bits.view(array.dtype.newbyteorder("="))
        else:
            yield "big-endian", bits.byteswap().view(array.dtype.newbyteorder(">"))


def check_layouts(codec: Codec, *, max_examples: int | None = None) -> None:
    """Round trip of non-contiguous, Fortran-ordered, byte-swapped, read-only, unaligned input."""

    @_settings(max_examples)
    @given(array=arrays_for(codec, shape=shapes(min_dims=1, max_size=96)))
    def layouts(array: np.ndarray) -> None:
        for what, variant in _layout_variants(array):
            _assert_roundtrip(codec, variant, f"{what} {_describe(variant)}")

    layouts()


def check_accounting(codec: Codec, *, max_examples: int | None = None) -> None:
    """``sparsecodecs.inspect``: bytes by role add up to the frame; dense bytes = ``nbytes``
    (4-bit dtypes: ``ceil(size / 2)``, the packed size)."""

    @_settings(max_examples)
    @given(array=arrays_for(codec))
    def accounting(array: np.ndarray) -> None:
        frame = _encode(codec, array)
        label = f"the frame of a {_describe(array)}"
        try:
            report = inspect(frame)
            as_json = json.dumps(report.to_dict())
            str(report)
        except Exception as exc:
            raise AssertionError(f"inspecting {label} raised {type(exc).__name__}: {exc}") from exc
        total = sum(report.role_bytes.values())
        problems = []
        if total != len(frame):
            problems.append(f"bytes by role {report.role_bytes} add up to {total}")
        if report.frame_bytes != len(frame):
            problems.append(f"frame_bytes is {report.frame_bytes}")
        dense = storage_nbytes(array.dtype, array.size)
        if report.dense_bytes != dense:
            problems.append(f"dense_bytes is {report.dense_bytes}, not {dense}")
        if report.role_bytes["header"] + sum(s.nbytes for s in report.sections) != len(frame):
            problems.append(f"the header and sections {report.sections} do not add up")
        if not set(report.role_bytes) <= {"header", *ROLES}:
            problems.append(f"unknown roles in {sorted(report.role_bytes)}")
        if not isinstance(report.theoretical_bytes, int) or report.theoretical_bytes < 0:
            problems.append(f"theoretical_bytes is {report.theoretical_bytes!r}")
        if tuple(report.shape) != array.shape:
            problems.append(f"shape is {report.shape}")
        if problems:
            _fail(
                f"accounting of {label} ({len(frame)} bytes) is wrong: "
                + "; ".join(problems)
                + f". Report: {as_json}"
            )

    accounting()


def check_corruption(codec: Codec, *, max_examples: int | None = None) -> None:
    """Every flipped byte, truncation and an appended byte raise a SparseCodecsError subclass."""

    @_settings(max_examples)
    @given(array=arrays_for(codec, shape=shapes(max_size=32)), xor=st.integers(1, 255))
    def corruption(array: np.ndarray, xor: int) -> None:
        frame = _encode(codec, array)
        for i in range(len(frame)):
            flipped = bytearray(frame)
            flipped[i] ^= xor
            _assert_fails(
                codec, bytes(flipped), f"frame with byte {i} of {len(frame)} XORed with {xor:#04x}"
            )
        for k in range(len(frame)):
            _assert_fails(codec, frame[:k], f"frame cut to {k} of {len(frame)} bytes")
        _assert_fails(codec, frame + b"\0", "frame with a byte appended")

    corruption()


def check_reframed(codec: Codec, *, max_examples: int | None = None) -> None:
    """Frames rewritten behind a valid checksum never make a decoder raise a foreign error."""

    @_settings(max_examples)
    @given(array=arrays_for(codec, shape=shapes(max_size=64)), data=st.data())
    def reframed(array: np.ndarray, data: st.DataObject) -> None:
        frame = _encode(codec, array)
        mutation = data.draw(mutated_frames(frame), label="mutation")
        limit = max(1 << 20, 16 * array.nbytes)
        _assert_rejected(
            codec,
            mutation.frame,
            f"frame of a {_describe(array)} with {mutation.description}",
            limit=limit,
            reference=array if mutation.equivalent else None,
        )

    reframed()


#: Every check by name, in the order :func:`check_codec` runs them.
CHECKS: dict[str, Check] = {
    "registered": check_registered,
    "config": check_config,
    "unsupported_input": check_unsupported_input,
    "pattern": check_pattern,
    "edge_cases": check_edge_cases,
    "roundtrip": check_roundtrip,
    "layouts": check_layouts,
    "accounting": check_accounting,
    "corruption": check_corruption,
    "reframed": check_reframed,
}


def check_codec(
    codec: Codec, *, max_examples: int | None = None, fuzz_examples: int | None = None
) -> None:
    """Run the whole conformance suite on ``codec``.

    Parameters
    ----------
    codec
        An instance of a registered codec class; its parameters are the ones tested.
    max_examples
        Examples per Hypothesis-driven check; default: the loaded Hypothesis profile's
        ``max_examples`` (see :func:`~sparsecodecs.testing.load_profile`).
    fuzz_examples
        Examples of the ``reframed`` fuzz check; default: twice ``max_examples``.

    Raises
    ------
    AssertionError
        Naming the failed check, the input and what was wrong; the original exception, if any,
        is chained.
    """
    if fuzz_examples is None:
        fuzz_examples = 2 * (settings().max_examples if max_examples is None else max_examples)
    for name, check in CHECKS.items():
        try:
            check(codec, max_examples=fuzz_examples if name == "reframed" else max_examples)
        except AssertionError as exc:
            raise AssertionError(f"{codec!r} fails conformance check {name!r}: {exc}") from exc


@contextlib.contextmanager
def registered(
    *classes: type[Codec], replace: bool = False, codec_registry: CodecRegistry | None = None
) -> Iterator[None]:
    """Register codec classes for the duration of a ``with`` block, then restore the registry.

    For testing a codec that is not installed as a plugin::

        with registered(MyCodec):
            check_codec(MyCodec())

    Parameters
    ----------
    classes
        The codec classes to register.
    replace
        Allow replacing a class registered under the same id (restored on exit).
    codec_registry
        The registry to change; default: the process-wide one.
    """
    reg = registry if codec_registry is None else codec_registry
    classes_, sources, aliases = dict(reg._classes), dict(reg._sources), dict(reg._aliases)
    try:
        for cls in classes:
            reg.register(cls, replace=replace)
        yield
    finally:
        reg._classes.clear()
        reg._classes.update(classes_)
        reg._sources.clear()
        reg._sources.update(sources)
        reg._aliases.clear()
        reg._aliases.update(aliases)
