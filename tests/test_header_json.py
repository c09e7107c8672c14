"""The header's JSON, written and read by orjson where it agrees with ``json``: the same bytes
out (every frame's header, so every frame) and the same values in, or ``json``'s own answer.

A planted difference fails these: ``header_json`` without its DEL check, or trusting orjson
with floats; ``parse_json`` without its ``json`` fallback (NaN, integers past 64 bits)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsecodecs.registry.frame import _HEADER_JSON, header_json, parse_json
from sparsecodecs.testing import examples

# Strings of every kind a header could be handed: ASCII, control characters, DEL, other
# scripts, astral characters (surrogate pairs in json's escapes).
TEXT = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["", "\x7f", "\x00", "a\nb", "\u00e9", "\U0001f600", "/", '"', "\\"])
NUMBERS = (st.integers(-(2**70), 2**70) | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from([0, -1, 2**63, 2**64, -(2**63) - 1, 1e-05, 1e16, -0.0, 0.1]))
SCALARS = st.none() | st.booleans() | NUMBERS | TEXT | st.builds(np.int64, st.integers(
    -(2**63), 2**63 - 1)) | st.builds(np.uint8, st.integers(0, 255))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    TEXT | st.integers(0, 9), inner, max_size=4), max_leaves=12)


def _json_bytes(header: dict[str, Any]) -> bytes | type[BaseException]:
    try:
        return _HEADER_JSON.encode(header).encode()
    except (TypeError, ValueError) as exc:
        return type(exc)


@settings(max_examples=examples(600), deadline=None)
@given(config=VALUES, meta=VALUES, codec=TEXT, shape=st.lists(st.integers(0, 2**40), max_size=4))
def test_header_json_writes_what_json_writes(config: Any, meta: Any, codec: str,
                                             shape: list[int]) -> None:
    header = {"codec": codec, "config": config, "dtype": "float32", "shape": shape,
              "sections": [["v.bits", "values", 12], ["v.codebook", "codebook", 3]],
              "meta": meta}
    want = _json_bytes(header)
    if isinstance(want, bytes):
        assert header_json(header) == want
    else:
        with pytest.raises(want):
            header_json(header)


@pytest.mark.parametrize("value", [
    {"k": "\x7f"}, {"k": "\u00e9"}, {"k": 1e-05}, {"k": float("nan")}, {"k": 2**64},
    {1: 2}, {"k": np.float64(0.5)}, {"k": [np.int64(3), (1, 2)]}, {"k": 1e16},
])
def test_header_json_falls_back_where_orjson_differs(value: Any) -> None:
    header = {"codec": "x", "config": {}, "dtype": "float32", "shape": [], "sections": [],
              "meta": value}
    assert header_json(header) == _HEADER_JSON.encode(header).encode()


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same types, NaN equal to NaN and -0.0 told from 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a)
                                                     == math.copysign(1, b))
    return bool(a == b)


def _loads(head: bytes) -> Any:
    try:
        return json.loads(head.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return type(exc)


def _check_read(head: bytes) -> None:
    want = _loads(head)
    if isinstance(want, type):
        with pytest.raises(want):
            parse_json(head)
    else:
        assert _same(parse_json(head), want)


@settings(max_examples=examples(600), deadline=None)
@given(value=VALUES, cut=st.integers(0, 200), flip=st.integers(0, 255), at=st.integers(0, 200))
def test_parse_json_reads_what_json_reads(value: Any, cut: int, flip: int, at: int) -> None:
    """Valid JSON (with NaN, Infinity and long integers, which orjson refuses), cut short,
    and with a byte changed: the same values, or json's error."""
    try:
        head = json.dumps(value, default=int).encode()
    except (TypeError, ValueError):
        return
    _check_read(head)
    _check_read(head[:cut])
    if head:
        i = at % len(head)
        _check_read(head[:i] + bytes([flip]) + head[i + 1:])


@pytest.mark.parametrize("head", [
    b'{"a":1,"a":2}', b'{"a":NaN}', b'[Infinity,-Infinity]', b'123456789012345678901234567890',
    b'-0', b'-0.0', b'1E400', b'"\\ud800"', b'\xef\xbb\xbf{}', b'{"a":1}x', b' {} ',
    b'[' * 2000 + b']' * 2000, b'"\xff"', b'{"a":"\x01"}', b'',
])
def test_parse_json_on_edge_cases(head: bytes) -> None:
    _check_read(head)
