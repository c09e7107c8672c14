"""Taking frames apart and rewriting them with a valid checksum, for tests that need to reach the
decoder's validation behind the checksum.

A frame (``docs/format.md``, ``sparsecodecs.registry.frame``) is the magic, a u16 version, u16
flags, a u32 header length, the JSON header, the sections and an xxh3_64 checksum of everything
before it. A flipped byte is always caught by the checksum; :func:`reframe` produces frames whose
checksum is right but whose header or sections say something else, which is what a decoder must
survive, :func:`seal` appends the right checksum to any bytes, :func:`mutated_frames` draws such
frames for fuzzing and :func:`hostile_frames` draws them from a pool of valid frames.

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
from ..registry.frame import pack_header, unpack_header

__all__ = ["Mutation", "hostile_frames", "mutated_frames", "reframe", "seal", "split_frame"]

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
    _, version, _, hlen = _PREFIX.unpack_from(buf, 0)
    header = json.loads(unpack_header(buf[_PREFIX.size : _PREFIX.size + hlen], version))
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
        The header's JSON bytes verbatim (e.g. invalid JSON); excludes ``header``. Stored
        compressed in a version 2 or 3 frame, as is in any other.
    version, flags
        Values for the u16 fields of the prefix. A frame rewritten to another version stores its
        header as that version does (``version=1``: plain JSON, every byte of it in reach).

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
    version = old_version if version is None else version
    stored = pack_header(raw_header, version)
    prefix = _PREFIX.pack(MAGIC, version, old_flags if flags is None else flags, len(stored))
    return seal(b"".join([prefix, stored, *payloads]))


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


#: What :func:`mutated_frames` changes, one kind per drawn frame ("splice" needs donors).
_KINDS = (
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
    "bytes",
    "splice",
)
#: Bytes that keep a JSON header parseable more often than random ones do.
_JSON_BYTES = b'0123456789-.e[]{},:" '


def _byte_edit(draw: st.DrawFn, frame: bytes) -> Mutation:
    """A byte-level edit of the JSON header or the sections; the checksum is then recomputed.

    (The prefix has its own kind of mutation.) Insertions and deletions inside the header adjust
    the prefix's header length, so that an edited number (``"nnz":12`` -> ``"nnz":132``) reaches
    the header checks; truncations cut the sections only. A version 2 frame (compressed
    header) is mostly rewritten as version 1 first, so that the edits land in plain JSON and
    reach the checks behind the header's parsing; otherwise its compressed bytes are edited.
    """
    plain = ""
    if _PREFIX.unpack_from(frame, 0)[1] == 2 and draw(st.integers(0, 3)):
        frame, plain = reframe(frame, version=1), " (as a version 1 frame)"
    body = bytearray(frame[: -_CHECKSUM.size])
    _, _, _, hlen = _PREFIX.unpack_from(body, 0)
    start, sections = _PREFIX.size, _PREFIX.size + hlen
    edits = ["flip", "set", "insert", "delete", "extend"]
    if len(body) > start:
        edit = draw(st.sampled_from([*edits, "truncate"] if len(body) > sections else edits))
    else:  # an empty header and no sections: only appending is possible
        edit = "extend"
    pos = draw(st.integers(start, len(body) - 1)) if edit in edits[:4] else len(body)
    delta = 0
    if edit == "flip":
        bit = draw(st.integers(0, 7))
        body[pos] ^= 1 << bit
        what = f"bit {bit} of byte {pos} flipped"
    elif edit == "set":
        value = draw(st.one_of(st.sampled_from(list(_JSON_BYTES)), st.integers(0, 255)))
        body[pos] = value
        what = f"byte {pos} set to {value:#04x}"
    elif edit == "insert":
        digits = st.sampled_from([b"0", b"1", b"9", b"-"])
        extra = draw(st.one_of(digits, st.binary(min_size=1, max_size=8)))
        body[pos:pos] = extra
        delta, what = len(extra), f"{extra!r} inserted at byte {pos}"
    elif edit == "delete":
        count = min(draw(st.integers(1, 8)), len(body) - pos)
        del body[pos : pos + count]
        delta, what = -count, f"{count} bytes deleted at byte {pos}"
    elif edit == "truncate":
        pos = draw(st.integers(sections, len(body) - 1))
        del body[pos:]
        what = f"sections cut at byte {pos}"
    else:
        extra = draw(st.binary(min_size=1, max_size=16))
        body += extra
        what = f"{extra!r} appended before the checksum"
    if delta and pos < sections:
        struct.pack_into("<I", body, 8, max(hlen + delta, 0))
        what += " (header length adjusted)"
    return Mutation(f"{what}{plain} (checksum recomputed)", seal(body))


def _splice(
    draw: st.DrawFn, frame: bytes, header: dict[str, Any], payloads: list[bytes], donor: bytes
) -> Mutation:
    """A section payload, a header field or value, or the whole section area from ``donor``."""
    d_header, d_payloads = split_frame(donor)
    table, d_table = header["sections"], d_header["sections"]
    source = f"a {d_header['codec']} {d_header['dtype']} frame"
    part = draw(st.sampled_from(["section", "value", "sections", "fields"]))
    if part == "section" and payloads and d_payloads:
        i = draw(st.integers(0, len(payloads) - 1))
        same = [j for j, e in enumerate(d_table) if e[0] == table[i][0]]
        use_same = bool(same) and draw(st.booleans())
        j = same[0] if use_same else draw(st.integers(0, len(d_payloads) - 1))
        edited = [*payloads[:i], d_payloads[j], *payloads[i + 1 :]]
        return Mutation(
            f"section {table[i][0]!r} replaced by section {d_table[j][0]!r} of {source}",
            reframe(frame, sections=edited),
        )
    if part == "value":
        which = draw(st.sampled_from(["config", "meta"]))
        ours, theirs = header[which], d_header[which]
        keys = [k for k in sorted(theirs) if k not in ours or ours[k] != theirs[k]]
        if keys:
            key = draw(st.sampled_from(keys))
            return Mutation(
                f"header {which}[{key!r}] = {theirs[key]!r} from {source}",
                reframe(frame, header={which: {**ours, key: theirs[key]}}),
            )
    if part == "sections":
        return Mutation(
            f"the section table and sections of {source}",
            reframe(frame, header={"sections": d_table}, sections=d_payloads),
        )
    fields = draw(
        st.sampled_from(
            [
                ("codec", "config"),
                ("codec", "config", "meta"),
                ("config",),
                ("meta",),
                ("dtype",),
                ("shape",),
                ("codec", "config", "meta", "dtype", "shape"),
            ]
        )
    )
    return Mutation(
        f"header {', '.join(fields)} from {source}",
        reframe(frame, header={f: d_header[f] for f in fields}),
    )


@st.composite
def _mutations(draw: st.DrawFn, frame: bytes, donors: tuple[bytes, ...]) -> Mutation:
    header, payloads = split_frame(frame)
    table = header["sections"]
    kind = draw(st.sampled_from([k for k in _KINDS if donors or k != "splice"]))
    if kind == "bytes":
        return _byte_edit(draw, frame)
    if kind == "splice":
        return _splice(draw, frame, header, payloads, draw(st.sampled_from(donors)))
    if kind == "payload" and payloads:
        i = draw(st.integers(0, len(payloads) - 1))
        old = payloads[i]
        edit = draw(st.sampled_from(["flip", "truncate", "extend", "fill", "swap", "random"]))
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
        elif edit == "random" and old:
            rnd = draw(st.randoms(use_true_random=False))
            new, what = bytearray(rnd.randbytes(len(old))), "replaced by random bytes"
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
                        [*shape[:-1], 0],
                        [0, *shape],
                        # huge claims: empty ones with huge sides, and ones over any limit
                        [2**40, 0],
                        [0, 2**40],
                        [2**62 - 1, 2**62 - 1, 0],
                        [2**31, 2**31, 2**31, 0],
                        [2**20, 1],
                        [1, 2**20],
                        [2**31],
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
        others = [c for c in sorted(registry.codecs) if c != header["codec"]]
        codec = draw(
            st.sampled_from([header["codec"].upper(), header["codec"] + "x", "", 0, *others])
        )
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
    version, flags = draw(st.sampled_from([(0, 0), (4, 0), (0xFFFF, 0), (1, 1), (1, 0x8000)]))
    return Mutation(
        f"prefix version {version}, flags {flags:#x}", reframe(frame, version=version, flags=flags)
    )


def mutated_frames(
    frame: bytes, donors: Sequence[bytes] = ()
) -> st.SearchStrategy[Mutation]:
    """A strategy for rewritten versions of a valid ``frame``, each with a valid checksum.

    Draws one change at a time: a section's payload (byte flipped, cut, extended, filled,
    swapped with another section, replaced by random bytes), the section sizes (bytes moved
    between neighbours), a ``meta`` or ``config`` value (off by one, of the wrong type, missing or
    added), the shape, the dtype, the section table (entry dropped, renamed, re-roled,
    duplicated, reordered), the codec id (another registered one, or no valid one), the JSON
    text, the prefix, or any byte of the header or the sections (flipped, set, inserted,
    deleted; the sections truncated or extended). A decoder must raise a
    :class:`~sparsecodecs.SparseCodecsError` subclass for each, or return an array of the shape
    and dtype the header states.

    Parameters
    ----------
    frame
        A valid frame.
    donors
        Other valid frames (of other codecs, dtypes, shapes). With donors, a change can also
        splice in one of a donor's sections, a header field (codec and config, meta, dtype,
        shape) or a single config or meta value, or its whole section area, so that valid
        values meet data they do not describe.
    """
    if not (isinstance(donors, tuple) and all(type(d) is bytes for d in donors)):
        donors = tuple(bytes(d) for d in donors)
    return _mutations(bytes(frame), donors)


@st.composite
def _junk(draw: st.DrawFn) -> Mutation:
    """Bytes that are not a frame: random, sealed with a checksum, or behind a valid prefix."""
    body = draw(st.binary(max_size=256))
    style = draw(st.sampled_from(["raw", "sealed", "prefixed"]))
    if style == "raw":
        return Mutation(f"{len(body)} random bytes", body)
    if style == "sealed":
        return Mutation(f"{len(body)} random bytes and their checksum", seal(body))
    hlen = draw(st.integers(0, len(body)))
    return Mutation(
        f"a valid prefix, then {len(body)} random bytes as a {hlen}-byte header and sections",
        seal(_PREFIX.pack(MAGIC, 1, 0, hlen) + body),
    )


def hostile_frames(seeds: Sequence[bytes], *, junk: bool = True) -> st.SearchStrategy[Mutation]:
    """A strategy for hostile frames made from a pool of valid ``seeds``.

    Draws a seed and one :func:`mutated_frames` change of it, with every seed available as a
    donor for splicing; with ``junk``, also (rarely) bytes that are no frame at all: random
    bytes, random bytes with a matching checksum, or a valid prefix followed by random bytes.
    For fuzzing decoders across codecs, dtypes and shapes at once::

        @given(hostile_frames([codec.encode(a) for codec in codecs for a in arrays]))
        def test_decoding_is_safe(mutation):
            assert_decodes_or_refuses(mutation.frame, mutation.description)
    """
    pool = tuple(bytes(s) for s in seeds)
    if not pool:
        raise ValueError("hostile_frames needs at least one valid seed frame")
    return _hostile(pool, junk)


@st.composite
def _hostile(draw: st.DrawFn, pool: tuple[bytes, ...], junk: bool) -> Mutation:
    if junk and draw(st.integers(0, 19)) == 19:  # one draw in 20
        return draw(_junk())
    return draw(_mutations(draw(st.sampled_from(pool)), pool))
