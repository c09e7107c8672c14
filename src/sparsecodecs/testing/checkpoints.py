"""Hostile compressed checkpoints: rewriting safetensors containers for fuzz tests, and the
reading guarantee checked on one file or folder.

A compressed checkpoint (:mod:`sparsecodecs.checkpoint`, ``docs/checkpoints.md``) is an 8-byte
header length, a JSON header (one entry per tensor, ``dtype``/``shape``/``data_offsets``, and a
``__metadata__`` object of strings holding the tensor table, the block table of tensors split into
row blocks, the user's metadata and any lossy transforms) and the concatenated frames. A folder of
shards adds a ``*.index.json`` whose ``weight_map`` names the shard of each tensor.

:func:`split_checkpoint` and :func:`build_checkpoint` take such a file apart and put it back
(recomputing the data offsets and block tables from the frames when asked),
:func:`mutated_checkpoints` draws one mutation of a seed file (the header length, the entries'
integers and strings, the metadata, the tensor and block tables, JSON bytes, bit flips,
truncation, frames rewritten behind a valid checksum, frames swapped between tensors),
:func:`mutated_shards` one mutation of a sharded folder (a lying or malformed index, or one
mutated shard), and :func:`assert_reads_or_refuses` / :func:`assert_folder_reads_or_refuses`
check the guarantee: every public read either succeeds (with the shape and dtype the file's
tensor table states; bit-exactly the seed's tensors where the mutation cannot change them) or
raises a :class:`~sparsecodecs.SparseCodecsError` subclass.

>>> import numpy as np
>>> data = checkpoint_seeds()[0]
>>> header, body = split_checkpoint(data)
>>> sorted(header)[:2]
['__metadata__', 'bf16']
>>> split_checkpoint(build_checkpoint(header, body)) == (header, body)
True
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import math
import os
import struct
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import ml_dtypes
import numpy as np
from hypothesis import strategies as st

from ..io.checkpoint import compress, decompress, inspect_checkpoint, load_file, safe_open
from ..io.checkpoint import save_file as _save_file
from ..io.checkpoint.container import ST_DTYPES
from ..registry import SparseCodecsError
from .frames import mutated_frames

__all__ = [
    "CheckpointMutation",
    "ShardedMutation",
    "assert_folder_reads_or_refuses",
    "assert_reads_or_refuses",
    "build_checkpoint",
    "checkpoint_seeds",
    "mutated_checkpoints",
    "mutated_shards",
    "sharded_seed",
    "split_checkpoint",
    "written",
]

_LEN = struct.Struct("<Q")
_META = "__metadata__"
_TENSORS = "sparsecodecs.tensors"
_BLOCKS = "sparsecodecs.blocks"
_CONTAINER = "sparsecodecs.container"
_USER = "sparsecodecs.metadata"
_TRANSFORMS = "sparsecodecs.transforms"
INDEX = "model.safetensors.index.json"


# -- taking files apart ---------------------------------------------------------------------------


def split_checkpoint(data: bytes) -> tuple[dict[str, Any], bytes]:
    """The JSON header of a valid safetensors file as a dict, and the data after the header."""
    text, body = _split(bytes(data))
    return json.loads(text), body


@functools.lru_cache(maxsize=64)
def _split(data: bytes) -> tuple[bytes, bytes]:
    (n,) = _LEN.unpack_from(data, 0)
    return data[_LEN.size : _LEN.size + n], data[_LEN.size + n :]


def build_checkpoint(
    header: Mapping[str, Any] | bytes, body: bytes, *, length: int | None = None
) -> bytes:
    """A safetensors file: ``header`` (a dict, or raw bytes written verbatim) padded with spaces
    to a multiple of 8, then ``body``; ``length`` overrides the 8-byte header length."""
    head = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":"))
    raw = head if isinstance(head, bytes) else head.encode()
    raw = raw.ljust(-(-len(raw) // 8) * 8, b" ")
    return _LEN.pack(len(raw) if length is None else length % (1 << 64)) + raw + body


def _entries(header: Mapping[str, Any]) -> list[str]:
    """The tensor names of a valid header, in data order."""
    names = [k for k in header if k != _META]
    return sorted(names, key=lambda k: header[k]["data_offsets"][0])


def _frames(header: Mapping[str, Any], body: bytes) -> dict[str, list[bytes]]:
    """Each tensor's frames (one, or one per row block) of a valid compressed checkpoint."""
    blocks = json.loads(header.get(_META, {}).get(_BLOCKS, "{}"))
    out = {}
    for name in _entries(header):
        a, b = header[name]["data_offsets"]
        entry = body[a:b]
        cuts = blocks.get(name, {}).get("offsets", [0, len(entry)])
        out[name] = [entry[x:y] for x, y in itertools.pairwise(cuts)]
    return out


def _rebuild(header: Mapping[str, Any], frames: Mapping[str, list[bytes]]) -> bytes:
    """A valid container around ``frames`` (data offsets and block offsets recomputed; the block
    table's rows and the tensor table are kept as they are)."""
    new = {k: dict(v) if isinstance(v, dict) else v for k, v in header.items()}
    meta = dict(new.get(_META, {}))
    blocks = json.loads(meta.get(_BLOCKS, "{}"))
    parts, pos = [], 0
    for name in _entries(header):
        entry = frames[name]
        cuts = [0]
        for f in entry:
            cuts.append(cuts[-1] + len(f))
        if name in blocks:
            blocks[name] = {**blocks[name], "offsets": cuts}
        new[name] = {**new[name], "shape": [cuts[-1]], "data_offsets": [pos, pos + cuts[-1]]}
        pos += cuts[-1]
        parts.extend(entry)
    if _BLOCKS in meta:
        meta[_BLOCKS] = json.dumps(blocks, separators=(",", ":"))
        new[_META] = meta
    return build_checkpoint(new, b"".join(parts))


# -- seeds -----------------------------------------------------------------------------------------


def _arrays(rng: np.random.Generator) -> dict[str, np.ndarray]:
    w = rng.standard_normal((12, 16)).astype(np.float32)
    w[:, 1::2] = 0
    w.view(np.uint32)[0, 1] = 0x7FC00123  # a NaN payload
    w[1, 1] = -0.0
    return {
        "w": w,
        "bf16": rng.standard_normal((10, 8)).astype(ml_dtypes.bfloat16),
        "mask": np.arange(15).reshape(5, 3) % 3 == 0,
        "ids": np.arange(-5, 5, dtype=np.int64),
        "scalar": np.array(np.inf, np.float16),
        "empty": np.zeros((0, 4), np.int8),
    }


def checkpoint_seeds() -> tuple[bytes, ...]:
    """Small valid compressed checkpoints: every container feature (one frame per tensor; row
    blocks; user metadata; a lossy-transform record; scalars, empty and bool tensors) under
    several codecs. Deterministic."""
    rng = np.random.default_rng(15)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        plans: list[tuple[str, int, dict[str, str] | None]] = [
            ("hybrid", 0, {"format": "pt"}),
            ("csr", 96, None),
            ("bitmask", 128, {"format": "np", "note": "blocked"}),
            ("huffman", 0, None),
            ("centroid", 200, None),
        ]
        for i, (codec, block_bytes, meta) in enumerate(plans):
            path = root / f"seed{i}.safetensors"
            _save_file(_arrays(rng), path, codec=codec, metadata=meta, block_bytes=block_bytes)
            out.append(path.read_bytes())
        # A lossy-transform record, written by compress() from plain safetensors.
        plain = root / "plain.safetensors"
        arrays = {"w": rng.standard_normal((8, 8)).astype(np.float32),
                  "ids": np.arange(6, dtype=np.int32)}
        header: dict[str, Any] = {_META: {"format": "pt"}}
        body, pos = [], 0
        st_names = {v: k for k, v in ST_DTYPES.items()}
        for name, a in arrays.items():
            header[name] = {"dtype": st_names[a.dtype], "shape": list(a.shape),
                            "data_offsets": [pos, pos + a.nbytes]}
            body.append(a.tobytes())
            pos += a.nbytes
        plain.write_bytes(build_checkpoint(header, b"".join(body)))
        dst = root / "lossy.safetensors"
        compress(plain, dst, "bitmask", prune="2:4", block_bytes=64)
        out.append(dst.read_bytes())
    return tuple(out)


def sharded_seed(data: bytes | None = None) -> dict[str, bytes]:
    """A folder of two shards and its index (``{file name: bytes}``), made by splitting the
    tensors of a seed checkpoint (by default the second, which has row blocks)."""
    header, body = split_checkpoint(data or checkpoint_seeds()[1])
    frames = _frames(header, body)
    names = _entries(header)
    meta = header[_META]
    table = json.loads(meta[_TENSORS])
    blocks = json.loads(meta.get(_BLOCKS, "{}"))
    files, weight_map = {}, {}
    for k, part in enumerate((names[: len(names) // 2], names[len(names) // 2 :])):
        shard = f"model-{k + 1:05d}-of-00002.safetensors"
        sub_meta = {**meta, _TENSORS: json.dumps({n: table[n] for n in part})}
        sub_blocks = {n: blocks[n] for n in part if n in blocks}
        if sub_blocks:
            sub_meta[_BLOCKS] = json.dumps(sub_blocks)
        else:
            sub_meta.pop(_BLOCKS, None)
            sub_meta[_CONTAINER] = "1"
        sub = {_META: sub_meta, **{n: header[n] for n in part}}
        files[shard] = _rebuild(sub, {n: frames[n] for n in part})
        weight_map.update({n: shard for n in part})
    index = {"metadata": {"total_size": sum(map(len, files.values()))}, "weight_map": weight_map}
    files[INDEX] = json.dumps(index, indent=2).encode()
    return files


# -- mutations -------------------------------------------------------------------------------------


class CheckpointMutation(NamedTuple):
    """One mutated checkpoint file drawn by :func:`mutated_checkpoints`."""

    #: What was changed, for failure messages.
    description: str
    #: The file's bytes.
    data: bytes
    #: The seed it was made from: where ``equivalent``, the file must read exactly as it does.
    seed: bytes
    #: True if the change cannot alter what the file holds (a reordered or re-spaced header, a
    #: one-block table for a tensor stored as one frame).
    equivalent: bool = False


_ODD: tuple[Any, ...] = (None, "1", 1.5, True, False, [], {}, -1, 0, 2**31, 2**63, 2**64, 2**70)


def _odd(value: Any) -> st.SearchStrategy[Any]:
    """Values a hostile header might hold instead of ``value``."""
    near: list[Any] = []
    if isinstance(value, bool):
        near = [not value, int(value)]
    elif isinstance(value, int):
        near = [value + 1, value - 1, value + 8, value * 2, value // 2, -value, float(value)]
    elif isinstance(value, str):
        near = [value.upper(), "", value + "x", value[:-1], "F32", "BOOL", "U8", "C64"]
    elif isinstance(value, list):
        near = [value[:-1], [*value, *value[-1:]], [value], value[::-1], [*value, 0]]
        near += [[v + 1 if type(v) is int else v for v in value]]
    elif isinstance(value, dict):
        near = [{**value, "extra": 1}, {k: v for k, v in list(value.items())[1:]}]
    candidates = [*near, *_ODD]
    return st.sampled_from([v for v in candidates if v != value or type(v) is not type(value)])


def _edit_list(draw: st.DrawFn, values: list[Any]) -> tuple[str, Any]:
    """One element of ``values`` changed, or the list replaced."""
    one: bool = draw(st.booleans())
    if values and one:
        i = draw(st.integers(0, len(values) - 1))
        new = list(values)
        new[i] = draw(_odd(values[i]))
        return f"[{i}] = {new[i]!r} (was {values[i]!r})", new
    new_value = draw(_odd(values))
    return f" = {new_value!r:.80} (was {values!r:.80})", new_value


_KINDS = ("length", "entry", "meta", "table", "blocks", "user", "json", "flip", "truncate",
          "extend", "frame", "swap", "equivalent")


@st.composite
def mutated_checkpoints(draw: st.DrawFn, seeds: Sequence[bytes]) -> CheckpointMutation:
    """One mutation of one of ``seeds`` (valid compressed checkpoints)."""
    seed = draw(st.sampled_from(list(seeds)))
    header, body = split_checkpoint(seed)
    names = _entries(header)
    meta: dict[str, str] = dict(header.get(_META, {}))
    kind = draw(st.sampled_from(_KINDS))

    def done(what: str, data: bytes, equivalent: bool = False) -> CheckpointMutation:
        return CheckpointMutation(f"{kind}: {what}", data, seed, equivalent)

    def with_meta(key: str, value: Any) -> bytes:
        new_meta: dict[str, Any] = {**meta}
        if value is _DELETE:
            new_meta.pop(key, None)
        else:
            new_meta[key] = value
        return build_checkpoint({**header, _META: new_meta}, body)

    if kind == "length":
        n = len(seed) - len(body) - _LEN.size
        value = draw(st.sampled_from([n + 1, n - 1, n + 8, n - 8, 0, 1, 2, 7, n // 2,
                                      len(seed), len(seed) - 8, 100_000_001, 2**63, 2**64 - 1]))
        return done(f"header length {value} (was {n})", _LEN.pack(value) + seed[_LEN.size :])
    if kind == "entry":
        name = draw(st.sampled_from(names))
        spec = dict(header[name])
        edit = draw(st.sampled_from(["dtype", "shape", "data_offsets", "drop", "extra", "whole",
                                     "remove", "add", "rename"]))
        if edit in ("dtype", "shape", "data_offsets"):
            what, value = _edit_list(draw, spec[edit]) if edit != "dtype" else (
                "", draw(_odd(spec[edit])))
            spec[edit] = value
            what = f"{edit}{what}" if what else f"dtype = {value!r}"
        elif edit == "drop":
            key = draw(st.sampled_from(sorted(spec)))
            del spec[key]
            what = f"without {key!r}"
        elif edit == "extra":
            spec["offset"] = 0
            what = "an extra key"
        elif edit == "whole":
            spec = draw(st.sampled_from([None, [], "x", 0, {}]))
            what = f"replaced by {spec!r}"
        elif edit == "remove":
            new = {k: v for k, v in header.items() if k != name}
            return done(f"entry {name!r} removed", build_checkpoint(new, body))
        elif edit == "rename":
            new = {(k + "x" if k == name else k): v for k, v in header.items()}
            return done(f"entry {name!r} renamed", build_checkpoint(new, body))
        else:
            end = len(body)
            extra = draw(st.sampled_from([[end, end], [0, 0], [end, end + 8]]))
            new = {**header, "zz": {"dtype": "U8", "shape": [extra[1] - extra[0]],
                                    "data_offsets": extra}}
            return done(f"entry 'zz' at {extra} added", build_checkpoint(new, body))
        return done(f"entry {name!r} {what}", build_checkpoint({**header, name: spec}, body))
    if kind == "meta":
        key = draw(st.sampled_from([*sorted(meta), "format", _CONTAINER, _META]))
        if key == _META:
            odd: Any = draw(st.sampled_from([None, [], "x", {}, {"format": "sparsecodecs"}]))
            return done(f"__metadata__ = {odd!r}", build_checkpoint({**header, _META: odd}, body))
        value = draw(st.one_of(
            st.sampled_from([_DELETE, "", "1", "2", "3", "pt", "sparsecodecs", 1, None, ["1"]]),
            _odd(meta.get(key, "")),
        ))
        return done(f"__metadata__[{key!r}] = {value!r:.80}", with_meta(key, value))
    if kind == "table":
        table = json.loads(meta[_TENSORS])
        name = draw(st.sampled_from(sorted(table)))
        spec = dict(table[name])
        edit = draw(st.sampled_from(["dtype", "shape", "shape", "drop", "add", "whole", "text"]))
        if edit == "dtype":
            spec["dtype"] = draw(st.sampled_from([*ST_DTYPES, "C64", 3, None]))
            what = f"{name!r} dtype {spec['dtype']!r}"
        elif edit == "shape":
            shape = spec["shape"]
            special = [[2**64], [0, 2**64], [2**63, 0], [2**62, 2**62], [2**40, 0],
                       [math.prod(shape)], [*shape, 1], shape[::-1], [], [0]]
            value = (draw(st.sampled_from(special)) if draw(st.booleans())
                     else _edit_list(draw, shape)[1])
            spec["shape"] = value
            what = f"{name!r} shape {value!r:.80} (was {shape!r})"
        elif edit == "drop":
            del table[name]
            return done(f"tensor table without {name!r}",
                        with_meta(_TENSORS, json.dumps(table)))
        elif edit == "add":
            table["zz"] = spec
            return done("tensor table with an extra tensor", with_meta(_TENSORS, json.dumps(table)))
        elif edit == "whole":
            spec = draw(st.sampled_from([None, [], {}, {"dtype": "F32"}]))
            what = f"{name!r} replaced by {spec!r}"
        else:
            text = draw(st.sampled_from(["", "[]", "null", "{", "[" * 100_000, '"x"', "1e999",
                                         json.dumps(table)[:-1]]))
            return done(f"tensor table text {text[:20]!r}", with_meta(_TENSORS, text))
        table[name] = spec
        return done(f"tensor table {what}", with_meta(_TENSORS, json.dumps(table)))
    if kind == "blocks" and _BLOCKS in meta:
        blocks = json.loads(meta[_BLOCKS])
        name = draw(st.sampled_from(sorted(blocks)))
        spec = dict(blocks[name])
        edit = draw(st.sampled_from(["rows", "offsets", "rows", "offsets", "swap", "drop",
                                     "whole", "rename", "text", "version"]))
        if edit in ("rows", "offsets"):
            what, spec[edit] = _edit_list(draw, spec[edit])
            what = f"{edit}{what}"
        elif edit == "swap":
            spec = {"rows": spec["offsets"], "offsets": spec["rows"]}
            what = "rows and offsets swapped"
        elif edit == "drop":
            del blocks[name]
            return done(f"block table without {name!r}", with_meta(_BLOCKS, json.dumps(blocks)))
        elif edit == "whole":
            spec = draw(st.sampled_from([None, [], {}, {"rows": [0]}]))
            what = f"replaced by {spec!r}"
        elif edit == "rename":
            blocks = {(k + "x" if k == name else k): v for k, v in blocks.items()}
            return done(f"block table names {name + 'x'!r}",
                        with_meta(_BLOCKS, json.dumps(blocks)))
        elif edit == "text":
            text = draw(st.sampled_from(["", "[]", "null", "{", "[" * 100_000, "1"]))
            return done(f"block table text {text[:20]!r}", with_meta(_BLOCKS, text))
        else:
            return done("block table with container version 1", with_meta(_CONTAINER, "1"))
        blocks[name] = spec
        return done(f"block table {name!r} {what}", with_meta(_BLOCKS, json.dumps(blocks)))
    if kind in ("blocks", "equivalent"):
        # Tensors stored as one frame: a one-block table says the same (container version 2).
        blocks = json.loads(meta.get(_BLOCKS, "{}"))
        table = json.loads(meta[_TENSORS])
        single = [n for n in names if n not in blocks and table[n]["shape"]
                  and table[n]["shape"][0] > 0]
        edit = draw(st.sampled_from(["one-block", "reorder", "spaces"]))
        if edit == "one-block" and single:
            name = draw(st.sampled_from(single))
            a, b = header[name]["data_offsets"]
            blocks[name] = {"rows": [0, table[name]["shape"][0]], "offsets": [0, b - a]}
            new_meta = {**meta, _CONTAINER: "2", _BLOCKS: json.dumps(blocks)}
            return done(f"a one-block table for {name!r}",
                        build_checkpoint({**header, _META: new_meta}, body), equivalent=True)
        if edit == "spaces":
            head = json.dumps(header, indent=draw(st.sampled_from([None, 1, 4]))).encode()
            return done("the header re-spaced", build_checkpoint(b"\n " + head + b"\t", body),
                        equivalent=True)
        order = draw(st.permutations(list(header)))
        return done(f"header keys in the order {order}",
                    build_checkpoint({k: header[k] for k in order}, body), equivalent=True)
    if kind == "user":
        key = draw(st.sampled_from([_USER, _TRANSFORMS]))
        text = draw(st.sampled_from(["[]", "1", "null", '"x"', '{"a":1}', '{"a":[1]}', "{",
                                     '{"tensors":3}', '{"prune":1,"tensors":[]}', "[" * 100_000,
                                     '{"lossy":true,"tensors":"w"}', '{"cluster":null}']))
        return done(f"__metadata__[{key!r}] = {text[:30]!r}", with_meta(key, text))
    if kind == "json":
        n = len(seed) - len(body) - _LEN.size
        raw = bytearray(seed[_LEN.size : _LEN.size + n])
        pos = draw(st.integers(0, len(raw) - 1))
        edit = draw(st.sampled_from(["flip", "set", "insert", "delete"]))
        if edit == "flip":
            raw[pos] ^= 1 << draw(st.integers(0, 7))
        elif edit == "set":
            raw[pos] = draw(st.one_of(st.sampled_from(list(b'0123456789-.e[]{},:" \\')),
                                      st.integers(0, 255)))
        elif edit == "insert":
            inserted: bytes = draw(st.sampled_from([b"0", b"1", b"9", b"-", b"\\", b'"', b"e9"]))
            raw[pos:pos] = inserted
        else:
            del raw[pos : pos + draw(st.integers(1, 4))]
        adjust = draw(st.booleans())
        data = (_LEN.pack(len(raw)) + bytes(raw) + body) if adjust else (
            seed[: _LEN.size] + bytes(raw) + body)
        return done(f"header byte {pos} {edit}" + (" (length adjusted)" if adjust else ""), data)
    if kind == "flip":
        flipped = bytearray(seed)
        pos = draw(st.integers(0, len(flipped) - 1))
        bit = draw(st.integers(0, 7))
        flipped[pos] ^= 1 << bit
        return done(f"bit {bit} of byte {pos} flipped", bytes(flipped))
    if kind == "truncate":
        cut = draw(st.integers(0, len(seed) - 1))
        return done(f"cut at byte {cut} of {len(seed)}", seed[:cut])
    if kind == "extend":
        tail: bytes = draw(st.binary(min_size=1, max_size=16))
        return done(f"{tail!r} appended", seed + tail)
    frames = _frames(header, body)
    if kind == "swap" and len(names) > 1:
        a, b = draw(st.permutations(names))[:2]
        new_frames = {**frames, a: frames[b], b: frames[a]}
        return done(f"the frames of {a!r} and {b!r} swapped", _rebuild(header, new_frames))
    name = draw(st.sampled_from(names))
    i = draw(st.integers(0, len(frames[name]) - 1))
    donors = tuple(fs[0] for fs in frames.values())[:4]
    mutation = draw(mutated_frames(frames[name][i], donors=donors))
    edited = list(frames[name])
    edited[i] = mutation.frame
    return done(f"frame {i} of {name!r}: {mutation.description}",
                _rebuild(header, {**frames, name: edited}), equivalent=mutation.equivalent)


class _Delete:
    def __repr__(self) -> str:
        return "<deleted>"


_DELETE: Any = _Delete()


class ShardedMutation(NamedTuple):
    """One mutated folder of shards drawn by :func:`mutated_shards`: ``{file name: bytes}``."""

    description: str
    files: dict[str, bytes]
    equivalent: bool = False


@st.composite
def mutated_shards(
    draw: st.DrawFn, folder: Mapping[str, bytes], seeds: Sequence[bytes] = ()
) -> ShardedMutation:
    """One mutation of a sharded checkpoint (``{file name: bytes}`` with one ``*.index.json``):
    an index that lies (a tensor mapped to the wrong shard or to a missing, hostile or
    non-string file name; a tensor left out; ...), a malformed index, a shard missing, an extra
    index, or one shard mutated as by :func:`mutated_checkpoints`."""
    files = dict(folder)
    index_name = next(n for n in files if n.endswith(".index.json"))
    index = json.loads(files[index_name])
    weight_map: dict[str, Any] = dict(index["weight_map"])
    shards = sorted(set(weight_map.values()))
    kind = draw(st.sampled_from(["lie", "lie", "index", "files", "shard", "shard", "shard"]))
    if kind == "lie":
        name = draw(st.sampled_from(sorted(weight_map)))
        edit = draw(st.sampled_from(["other", "missing", "hostile", "drop", "add", "odd"]))
        if edit == "other":
            weight_map[name] = draw(st.sampled_from([s for s in shards if s != weight_map[name]]))
        elif edit == "missing":
            weight_map[name] = "model-00003-of-00002.safetensors"
        elif edit == "hostile":
            weight_map[name] = draw(st.sampled_from(
                ["../" + weight_map[name], "/etc/passwd", "", ".", "..", "sub/x.safetensors",
                 index_name, "a\0b", weight_map[name] + "/"]))
        elif edit == "drop":
            del weight_map[name]
        elif edit == "add":
            weight_map["zz"] = shards[0]
        else:
            weight_map[name] = draw(st.sampled_from([None, 1, [], {}, True, [shards[0]]]))
        files[index_name] = json.dumps({**index, "weight_map": weight_map}).encode()
        return ShardedMutation(f"index: {name!r} {edit} -> {weight_map.get(name)!r}", files)
    if kind == "index":
        raw = draw(st.sampled_from([b"", b"{", b"[]", b"null", b'{"weight_map": []}',
                                    b'{"weight_map": null}', b"{}", b"\xff\xfe", b"[" * 100_000,
                                    b'{"weight_map": {"a": "b"}}', b'{"weight_map": {}}']))
        files[index_name] = raw
        return ShardedMutation(f"index text {raw[:20]!r}", files)
    if kind == "files":
        edit = draw(st.sampled_from(["remove-shard", "second-index", "no-index"]))
        if edit == "remove-shard":
            del files[draw(st.sampled_from(shards))]
        elif edit == "second-index":
            files["other.index.json"] = files[index_name]
        else:
            del files[index_name]
        return ShardedMutation(f"folder: {edit}", files)
    shard = draw(st.sampled_from(shards))
    mutation = draw(mutated_checkpoints([files[shard]]))
    files[shard] = mutation.data
    return ShardedMutation(f"shard {shard}: {mutation.description}", files, mutation.equivalent)


# -- the reading guarantee -------------------------------------------------------------------------


def _bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).view(np.uint8).tobytes()


def _read_like(what: str, read: Callable[[], Any], reference: Any) -> Any:
    """``read()`` under :func:`_guarded`: the tensors, or the library error it raised; with a
    ``reference`` (a mutation that cannot change the content), it must read exactly that."""
    try:
        out: dict[str, np.ndarray] = _guarded(what, read)
    except SparseCodecsError as exc:
        if reference is not None:
            raise AssertionError(f"{what} should read like its seed but was refused: {exc}") \
                from exc
        return exc
    if reference is not None and (
        sorted(out) != sorted(reference)
        or any(_bits(out[k]) != _bits(np.asarray(reference[k])) for k in out)
    ):
        raise AssertionError(f"{what} should read exactly like its seed, but differs")
    return out


def _guarded(what: str, call: Callable[[], Any]) -> Any:
    """``call()`` with warnings as errors; any exception but a SparseCodecsError becomes an
    AssertionError naming ``what``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return call()
    except SparseCodecsError:
        raise
    except Exception as exc:
        raise AssertionError(
            f"{type(exc).__name__}: {exc} on {what}; only sparsecodecs.SparseCodecsError "
            "subclasses may escape"
        ) from exc


def _read_everything(path: str) -> dict[str, np.ndarray]:
    """Every public read of a checkpoint file; the tensors by name (checked for consistency)."""
    loaded = load_file(path)
    with safe_open(path) as f:
        f.metadata()
        f.transforms()
        names = f.keys()
        if sorted(loaded) != names:
            raise AssertionError(f"load_file read {sorted(loaded)}, safe_open lists {names}")
        str(f.report())
        for name in names:
            dtype, shape = f.dtype(name), f.shape(name)
            a = loaded[name]
            if a.shape != tuple(shape) or a.dtype != ST_DTYPES[dtype]:
                raise AssertionError(f"tensor {name!r} read as {a.dtype} {a.shape}, but the file "
                                     f"says {dtype} {list(shape)}")
            blocks = f.blocks(name)
            if not shape:
                continue
            n = shape[0]
            sl = f.get_slice(name)
            pieces = [(slice(n // 2, n), sl[n // 2 :])]
            if blocks:  # rows across the last two blocks, and the last row
                r0, r1 = blocks[-1]
                pieces.append((slice(max(r0 - 1, 0), r1), sl[max(r0 - 1, 0) : r1]))
                pieces.append((slice(n - 1, n), sl[-1][None]))
            for index, piece in pieces:
                if _bits(piece) != _bits(a[index]):
                    raise AssertionError(f"get_slice({name!r})[{index}] differs from the "
                                         "same rows of load_file")
    return loaded


def assert_reads_or_refuses(
    path: str | os.PathLike[str],
    what: str = "checkpoint",
    *,
    reference: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray] | SparseCodecsError:
    """The reading guarantee on one checkpoint file, however hostile.

    Opening it with :class:`~sparsecodecs.safe_open` and reading every tensor (``get_tensor``,
    ``get_slice`` of half the rows, of rows across the last two blocks and of the last row;
    ``report()``, ``metadata()``), and :func:`~sparsecodecs.load_file`, must either succeed
    consistently (tensors of the dtype and shape the file states; with ``reference``: exactly
    those tensors, bit for bit) or raise a :class:`~sparsecodecs.SparseCodecsError` subclass.
    Anything else, or a warning, raises :class:`AssertionError`.

    Returns
    -------
    dict or SparseCodecsError
        The tensors read, or the error that refused the file.
    """
    p = os.fspath(path)
    return _read_like(what, lambda: _read_everything(p), reference)


def assert_folder_reads_or_refuses(
    folder: str | os.PathLike[str],
    what: str = "sharded checkpoint",
    *,
    reference: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray] | SparseCodecsError:
    """The reading guarantee on a folder of shards: :func:`~sparsecodecs.inspect_checkpoint`
    and :func:`~sparsecodecs.decompress` (into a temporary folder, whose plain safetensors
    shards are then read back) succeed or raise a ``SparseCodecsError`` subclass; with
    ``reference``, the decompressed tensors are exactly those."""
    root = Path(folder)

    def run() -> dict[str, np.ndarray]:
        report = inspect_checkpoint(root)
        str(report)
        with tempfile.TemporaryDirectory(dir=root.parent) as tmp:
            out = Path(tmp) / "plain"
            decompress(root, out)
            tensors: dict[str, np.ndarray] = {}
            for shard in sorted(out.glob("*.safetensors")):
                tensors.update(_plain_tensors(shard.read_bytes()))
        if set(tensors) != set(report.tensors):
            raise AssertionError("decompress wrote other tensors than inspect_checkpoint lists")
        return tensors

    return _read_like(what, run, reference)


def _plain_tensors(data: bytes) -> dict[str, np.ndarray]:
    header, body = split_checkpoint(data)
    header.pop(_META, None)
    out = {}
    for name, spec in header.items():
        a, b = spec["data_offsets"]
        dt = ST_DTYPES[spec["dtype"]]
        out[name] = np.frombuffer(body[a:b], dt).reshape(spec["shape"])
    return out


@contextlib.contextmanager
def written(files: Mapping[str, bytes], root: str | os.PathLike[str]) -> Iterator[Path]:
    """A fresh folder under ``root`` holding ``files``, removed afterwards."""
    import shutil

    folder = Path(tempfile.mkdtemp(dir=root))
    try:
        for name, data in files.items():
            (folder / name).write_bytes(data)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
