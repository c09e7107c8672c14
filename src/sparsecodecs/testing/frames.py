"""Taking frames apart and rewriting them with a valid checksum, for tests that need to reach the
decoder's validation behind the checksum.

A frame (``docs/format.md``, ``sparsecodecs.registry.frame``) is the magic, a u16 version, u16
flags, a u32 header length, the JSON header, the sections and an xxh3_64 checksum of everything
before it. A flipped byte is always caught by the checksum; :func:`reframe` produces frames whose
checksum is right but whose header or sections say something else, which is what a decoder must
survive, :func:`seal` appends the right checksum to any bytes, and :func:`mutated_frames` draws such
frames for fuzzing.

>>> import numpy as np, sparsecodecs as sc
>>> frame = sc.get_codec("raw").encode(np.arange(4, dtype=np.uint8))
>>> header, payloads = split_frame(frame)
>>> header["shape"], payloads
([4], [b'\\x00\\x01\\x02\\x03'])
>>> sc.decode(reframe(frame, header={"shape": [2, 2]})).shape
(2, 2)
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import xxhash
from hypothesis import strategies as st

from ..registry import MAGIC, ROLES, SUPPORTED_DTYPES, read_frame, registry

__all__ = ["Mutation", "mutated_frames", "reframe", "seal", "split_frame"]

_PREFIX = struct.Struct("<4sHHI")  # magic, version, flags, header length
_CHECKSUM = struct.Struct("<Q")


def seal(body: bytes | bytearray | memoryview) -> bytes:
    """``body`` followed by its xxh3_64 checksum: a frame whose checksum matches, whatever ``body``
    holds (to reach the checks behind the checksum with arbitrary bytes).

    >>> import sparsecodecs as sc
    >>> frame = sc.get_codec("raw").encode(np.arange(4, dtype=np.uint8))
    >>> seal(frame[:-8]) == frame
    True
    """
    body = bytes(body)
    return body + _CHECKSUM.pack(xxhash.xxh3_64_intdigest(body))


def split_frame(frame: bytes | bytearray | memoryview) -> tuple[dict[str, Any], list[bytes]]:
    """The JSON header of a valid frame as a dict, and the payload of each section in order.

    Raises a :class:`~sparsecodecs.FrameError` subclass if ``frame`` is not a valid frame.
    """
    parsed = read_frame(frame)  # verifies everything, so the parsing below can trust the bytes
    buf = bytes(frame)
    _, _, _, hlen = _PREFIX.unpack_from(buf, 0)
    header = json.loads(buf[_PREFIX.size : _PREFIX.size + hlen])
    return header, [bytes(s.data) for s in parsed.sections]


def reframe(
    frame: bytes | bytearray | memoryview,
    *,
    header: Mapping[str, Any] | None = None,
    sections: Sequence[bytes] | Mapping[str, bytes] | None = None,
    raw_header: bytes | None = None,
    version: int | None = None,
    flags: int | None = None,
) -> bytes:
    """Rewrite a valid frame's header and sections and recompute its checksum.

    Parameters
    ----------
    frame
        A valid frame.
    header
        Top-level header keys to replace (``{"shape": [3, 5]}``, ``{"meta": {...}}``); the other
        keys are kept. A ``"sections"`` table given here is written as is, even when it disagrees
        with the payloads; otherwise the table's sizes follow the payloads.
    sections
        New payloads: a sequence replacing every payload in order (as many as the table has,
        unless ``header`` gives the table), or a mapping from section name to payload.
    raw_header
        The header's bytes verbatim (e.g. invalid JSON); excludes ``header``.
    version, flags
        Values for the u16 fields of the prefix.

    Returns
    -------
    bytes
        The new frame, with a checksum that matches its bytes.
    """
    if raw_header is not None and header is not None:
        raise TypeError("pass header= or raw_header=, not both")
    old, payloads = split_frame(frame)
    _, old_version, old_flags, _ = _PREFIX.unpack_from(bytes(frame), 0)
    table = [list(entry) for entry in old["sections"]]
    if isinstance(sections, Mapping):
        names = [entry[0] for entry in table]
        unknown = sorted(set(sections) - set(names))
        if unknown:
            raise KeyError(f"no sections named {unknown}; the frame has {names}")
        payloads = [bytes(sections.get(name, p)) for name, p in zip(names, payloads, strict=True)]
    elif sections is not None:
        payloads = [bytes(p) for p in sections]
    new = {**old, **(header or {})}
    if "sections" not in (header or {}):
        if len(payloads) != len(table):
            raise ValueError(
                f"{len(payloads)} payloads for a section table of {len(table)} entries; pass "
                "header={'sections': ...} to write a table that disagrees"
            )
        new["sections"] = [[e[0], e[1], len(p)] for e, p in zip(table, payloads, strict=True)]
    if raw_header is None:
        raw_header = json.dumps(new, separators=(",", ":")).encode()
    prefix = _PREFIX.pack(
        MAGIC,
        old_version if version is None else version,
        old_flags if flags is None else flags,
        len(raw_header),
    )
    return seal(b"".join([prefix, raw_header, *payloads]))


class Mutation(NamedTuple):
    """One rewritten frame drawn by :func:`mutated_frames`."""

    #: What was changed, for failure messages.
    description: str
    #: The rewritten frame (valid checksum).
    frame: bytes
    #: True if the change cannot alter the meaning (sections reordered with their names): such a
    #: frame must decode to exactly what the original decodes to.
    equivalent: bool = False


_ODD_VALUES: tuple[Any, ...] = (None, "1", 1.5, True, [], {}, -1, 0, 2**31, 2**63, 2**64)


def _odd_variants(value: Any) -> st.SearchStrategy[Any]:
    """Values a hostile header might hold instead of ``value``."""
    near: list[Any] = []
    if isinstance(value, bool):
        near = [not value, int(value)]
    elif isinstance(value, int):
        near = [value + 1, value - 1, value * 2, value // 2, -value]
    elif isinstance(value, str):
        near = [value.upper(), "", value + "x"]
    elif isinstance(value, list):
        near = [value[:-1], [*value, *value[-1:]], [value]]
    candidates = [*near, *_ODD_VALUES]
    return st.sampled_from([v for v in candidates if v != value or type(v) is not type(value)])


def _edit_mapping(draw: st.DrawFn, what: str, mapping: dict[str, Any]) -> tuple[str, Any]:
    """A changed copy of the header's ``config`` or ``meta`` object, and what changed."""
    keys = sorted(mapping)
    actions = ["change", "delete", "add", "replace"] if keys else ["add", "replace"]
    action = draw(st.sampled_from(actions))
    new = dict(mapping)
    if action == "change":
        key = draw(st.sampled_from(keys))
        new[key] = draw(_odd_variants(mapping[key]))
        return f"{what}[{key!r}] = {new[key]!r} (was {mapping[key]!r})", new
    if action == "delete":
        key = draw(st.sampled_from(keys))
        del new[key]
        return f"{what} without {key!r}", new
    if action == "add":
        key = draw(st.sampled_from(["nnz", "n", "m", "unexpected_key"]))
        new[key] = draw(st.sampled_from([0, 1, 7, -1, 2**40, None, "x"]))
        return f"{what}[{key!r}] = {new[key]!r} (added)", new
    replacement: Any = draw(st.sampled_from([[], None, 0, "x"]))
    return f"{what} replaced by {replacement!r}", replacement


@st.composite
def _mutations(draw: st.DrawFn, frame: bytes) -> Mutation:
    header, payloads = split_frame(frame)
    table = header["sections"]
    kind = draw(
        st.sampled_from(
            [
                "payload",
                "sizes",
                "meta",
                "config",
                "shape",
                "dtype",
                "table",
                "codec",
                "json",
                "prefix",
            ]
        )
    )
    if kind == "payload" and payloads:
        i = draw(st.integers(0, len(payloads) - 1))
        old = payloads[i]
        edit = draw(st.sampled_from(["flip", "truncate", "extend", "fill", "swap"]))
        if edit == "flip" and old:
            pos = draw(st.integers(0, len(old) - 1))
            xor = draw(st.integers(1, 255))
            new = bytearray(old)
            new[pos] ^= xor
            what = f"byte {pos} XORed with {xor:#04x}"
        elif edit == "truncate" and old:
            cut = draw(st.integers(1, len(old)))
            new, what = bytearray(old[:-cut]), f"cut by {cut} bytes"
        elif edit == "fill" and old:
            fill = draw(st.sampled_from([0, 0xFF, 0x7F, 0x80]))
            new, what = bytearray([fill] * len(old)), f"filled with {fill:#04x}"
        elif edit == "swap" and len(payloads) > 1:
            j = draw(st.integers(0, len(payloads) - 2))
            j += j >= i
            new, what = bytearray(payloads[j]), f"replaced by the payload of {table[j][0]!r}"
        else:
            extra = draw(st.binary(min_size=1, max_size=9))
            new, what = bytearray(old + extra), f"extended by {extra!r}"
        edited = [*payloads[:i], bytes(new), *payloads[i + 1 :]]
        return Mutation(f"section {table[i][0]!r} {what}", reframe(frame, sections=edited))
    if kind == "sizes" and len(table) > 1:
        i = draw(st.integers(0, len(table) - 2))
        low, high = -table[i][2], table[i + 1][2]
        shift = draw(st.integers(low, high)) or high or low  # 0 only if both are empty
        sizes = [list(e) for e in table]
        sizes[i][2] += shift
        sizes[i + 1][2] -= shift
        return Mutation(
            f"section table sizes {[e[2] for e in sizes]} (were {[e[2] for e in table]}; "
            "the bytes stay in place)",
            reframe(frame, header={"sections": sizes}),
        )
    if kind in ("meta", "config"):
        what, value = _edit_mapping(draw, f"header {kind}", header[kind])
        return Mutation(what, reframe(frame, header={kind: value}))
    if kind == "shape":
        shape = header["shape"]
        new_shape = draw(
            st.one_of(
                st.lists(st.integers(0, 12), max_size=4),
                st.sampled_from(
                    [
                        shape[::-1],
                        [*shape, 1],
                        [1, *shape],
                        shape[:-1],
                        [],
                        [math.prod(shape)],
                        [*shape[:-1], 2**40],
                        [-1],
                        [1.5],
                        ["3"],
                        [True],
                        "3",
                        None,
                    ]
                ),
                st.builds(
                    lambda i, d: [s + d if k == i else s for k, s in enumerate(shape)],
                    st.integers(0, max(len(shape) - 1, 0)),
                    st.sampled_from([-1, 1, 3]),
                ),
            )
        )
        return Mutation(
            f"header shape {new_shape!r} (was {shape!r})",
            reframe(frame, header={"shape": new_shape}),
        )
    if kind == "dtype":
        big = [f">{name}" for name, d in SUPPORTED_DTYPES.items() if d.itemsize > 1]
        names = [*SUPPORTED_DTYPES, *big]
        dtype = draw(st.sampled_from([*names, "float128", "bool", 3, None]))
        return Mutation(
            f"header dtype {dtype!r} (was {header['dtype']!r})",
            reframe(frame, header={"dtype": dtype}),
        )
    if kind == "table" and table:
        i = draw(st.integers(0, len(table) - 1))
        edit = draw(st.sampled_from(["drop", "rename", "role", "duplicate", "reorder"]))
        entries = [list(e) for e in table]
        if edit == "drop":
            del entries[i]
            rest = payloads[:i] + payloads[i + 1 :]
            return Mutation(
                f"section {table[i][0]!r} removed",
                reframe(frame, header={"sections": entries}, sections=rest),
            )
        if edit == "rename":
            entries[i][0] += "_x"
            return Mutation(
                f"section {table[i][0]!r} renamed", reframe(frame, header={"sections": entries})
            )
        if edit == "role":
            roles = [r for r in (*ROLES, "other") if r != table[i][1]]
            entries[i][1] = draw(st.sampled_from(roles))
            return Mutation(
                f"section {table[i][0]!r} given role {entries[i][1]!r}",
                reframe(frame, header={"sections": entries}),
            )
        if edit == "duplicate":
            entries.append([entries[i][0], entries[i][1], 0])
            return Mutation(
                f"section {table[i][0]!r} listed twice",
                reframe(frame, header={"sections": entries}),
            )
        order = draw(st.permutations(range(len(table))))
        return Mutation(
            f"sections reordered as {[table[k][0] for k in order]}",
            reframe(
                frame,
                header={"sections": [entries[k] for k in order]},
                sections=[payloads[k] for k in order],
            ),
            equivalent=True,
        )
    if kind == "codec":
        codec = draw(st.sampled_from([header["codec"].upper(), header["codec"] + "x", "", 0]))
        return Mutation(f"header codec {codec!r}", reframe(frame, header={"codec": codec}))
    if kind == "json":
        text = json.dumps(header).encode()
        raw = draw(
            st.sampled_from(
                [
                    text[:-1],
                    text + b"}",
                    b"[]",
                    b"null",
                    b"\xff" + text,
                    b"[" * 100_000,
                    json.dumps({**header, "extra": 1}).encode(),
                    json.dumps({k: v for k, v in header.items() if k != "meta"}).encode(),
                ]
            )
        )
        return Mutation(f"header JSON {raw[:60]!r}...", reframe(frame, raw_header=raw))
    version, flags = draw(st.sampled_from([(0, 0), (2, 0), (0xFFFF, 0), (1, 1), (1, 0x8000)]))
    return Mutation(
        f"prefix version {version}, flags {flags:#x}", reframe(frame, version=version, flags=flags)
    )


def mutated_frames(frame: bytes) -> st.SearchStrategy[Mutation]:
    """A strategy for rewritten versions of a valid ``frame``, each with a valid checksum.

    Draws one change at a time: a section's payload (byte flipped, cut, extended, filled,
    swapped), the section sizes (bytes moved between neighbours), a ``meta`` or ``config`` value
    (off by one, of the wrong type, missing or added), the shape, the dtype, the section table
    (entry dropped, renamed, re-roled, duplicated, reordered), the codec id, the JSON text or the
    prefix. A decoder must raise a :class:`~sparsecodecs.SparseCodecsError` subclass for each,
    or return an array of the shape and dtype the header states.
    """
    return _mutations(bytes(frame))
