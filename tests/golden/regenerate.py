"""Write the golden frames of the current format version into ``tests/golden/v<N>/``.

Golden frames pin the format: each is a small frame written by a built-in codec (every codec,
its meaningful config variants, every supported dtype) together with the array it decodes to.
``tests/test_golden.py`` decodes every one and compares bit patterns, and re-encodes every array
and compares the bytes, so any change to what a codec writes or reads fails the tests.

**Only a format version bump may change an existing golden file.** A new ``FORMAT_VERSION``
gets a new directory ``v<N>/``, written by this script; the old directories stay and their
frames must keep decoding. Adding a codec or a case adds files and manifest entries, which this
script writes without ``--force``; it refuses to change or delete an existing file unless given
``--force``, which is only legitimate while a new format version is being prepared (before any
frame of it has been released).

Usage::

    python tests/golden/regenerate.py             # add missing files; change nothing existing
    python tests/golden/regenerate.py --check     # only report what would change (exit 1 if any)
    python tests/golden/regenerate.py --force     # also rewrite or delete differing files

Arrays are stored without pickle: ``<case>.npy`` holds the C-order bit patterns as unsigned
integers of the dtype's width; ``manifest.json`` gives each case's dtype name (``">float32"`` for
big-endian), shape, codec config and file names.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import sparsecodecs as sc
from sparsecodecs.registry import FORMAT_VERSION, SUPPORTED_DTYPES
from sparsecodecs.registry.dtypes import dtype_from_name, dtype_name, element_bits
from sparsecodecs.testing import assert_bits_equal, bits_of, from_bits, special_bit_patterns

GOLDEN = Path(__file__).resolve().parent
MANIFEST = "manifest.json"


# -- the arrays --------------------------------------------------------------------------------


def _weights(rng: np.random.Generator, dtype: np.dtype[Any], size: int) -> np.ndarray:
    """Weight-like bit patterns: small normal values (floats) or small integers."""
    native = dtype.newbyteorder("=")
    normal = rng.standard_normal(size)
    if native.name in ("int4", "uint4"):  # small integers, as a 4-bit quantizer's output
        ints = np.clip(np.rint(normal * 3), -8, 7)
        values = np.abs(ints) if native.name == "uint4" else ints
        return values.astype(native).view(np.uint8)
    if native.name == "float4_e2m1fn":  # up to +-6: scale to use the whole range
        return (normal * 2).astype(np.float32).astype(native).view(np.uint8)
    if native.kind in "iu":
        ints = np.rint(normal * 20)
        values = np.abs(ints) if native.kind == "u" else ints
        return values.astype(native).view(f"u{dtype.itemsize}")
    return (normal * 0.05).astype(np.float32).astype(native).view(f"u{dtype.itemsize}")


def _with_specials(rng: np.random.Generator, bits: np.ndarray, dtype: np.dtype[Any]) -> None:
    """Put a few edge values (NaN payloads, -0.0, inf, extremes) at non-zero positions."""
    where = np.flatnonzero(bits)
    if where.size:
        specials = np.array(special_bit_patterns(dtype), bits.dtype)
        chosen = rng.choice(where, min(4, where.size), replace=False)
        bits.reshape(-1)[chosen] = specials[rng.integers(0, specials.size, chosen.size)]


def _clustered(rng: np.random.Generator, dtype: np.dtype[Any], size: int, k: int) -> np.ndarray:
    """``size`` values from a palette of ``k`` distinct non-zero patterns, skewed frequencies."""
    top = (1 << element_bits(dtype)) - 1
    palette = np.array(special_bit_patterns(dtype)[:2], np.uint64)
    while palette.size < k:
        more = rng.integers(1, top, k, dtype=np.uint64, endpoint=True)
        palette = np.unique(np.append(palette, more))
    palette = palette[:k]
    weights = 0.7 ** np.arange(k)
    idx = rng.choice(k, size, p=weights / weights.sum())
    return palette[idx].astype(f"u{dtype.itemsize}")


def _nm_mask(rng: np.random.Generator, shape: tuple[int, int], n: int, m: int) -> np.ndarray:
    """At most ``n`` kept slots per group of ``m``; mostly the first ``n`` (skewed patterns)."""
    rows, cols = shape
    groups = -(-cols // m)
    keep = np.zeros((rows, groups, m), bool)
    keep[:, :, :n] = True
    moved = rng.random((rows, groups)) < 0.25
    for r, g in zip(*np.nonzero(moved), strict=True):
        keep[r, g] = False
        keep[r, g, np.sort(rng.choice(m, n, replace=False))] = True
    keep &= rng.random((rows, groups, m)) < 0.9
    return keep.reshape(rows, groups * m)[:, :cols]


@dataclass(frozen=True)
class Data:
    """How a case's array is drawn: shape, zero pattern and values."""

    shape: tuple[int, ...]
    zeros: str = "none"  # "none", "sparse" (density), "nm" (n:m along the last axis)
    density: float = 0.3
    nm: tuple[int, int] = (2, 4)
    clustered: int = 0  # k distinct non-zero values, or 0 for weight-like values
    #: What the empty entries hold: "zero", "rows" (a non-zero pattern per row of the 2-D
    #: view, like a per-channel zero point), a number, or one number per row.
    fill: Any = "zero"

    def draw(self, seed: int, dtype: np.dtype[Any]) -> np.ndarray:
        rng = np.random.default_rng(seed)
        size = math.prod(self.shape)
        if self.clustered:
            bits = _clustered(rng, dtype, size, self.clustered)
        else:
            bits = _weights(rng, dtype, size)
            _with_specials(rng, bits, dtype)
        bits = bits.reshape(self.shape)
        if self.zeros == "sparse":
            bits[rng.random(self.shape) >= self.density] = 0
        elif self.zeros == "nm":
            flat = bits.reshape(-1, self.shape[-1])
            flat[~_nm_mask(rng, flat.shape, *self.nm)] = 0
        if self.fill != "zero":
            rows = bits.reshape(-1, self.shape[-1])
            if self.fill == "rows":
                empty = _weights(rng, dtype, rows.shape[0])
                empty[empty == 0] = 1
            else:
                native = dtype.newbyteorder("=")
                empty = np.array(self.fill, native).reshape(-1).view(bits.dtype)
            rows[...] = np.where(rows == 0, empty.reshape(-1, 1), rows)
        return from_bits(np.ascontiguousarray(bits), dtype)


# -- the cases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """A codec config and the data it is pinned with."""

    name: str
    config: dict[str, Any]
    data: Data
    #: The dtypes to write it for: every supported one unless narrowed.
    dtypes: Callable[[np.dtype[Any]], bool] = lambda dt: True


def _sized(*itemsizes: int) -> Callable[[np.dtype[Any]], bool]:
    return lambda dt: dt.itemsize in itemsizes


#: One dtype of each width, for the larger variants whose layout does not depend on the dtype.
ONE_PER_WIDTH = frozenset({"float8_e4m3fn", "bfloat16", "float32", "float64"})


def _one_per_width(dt: np.dtype[Any]) -> bool:
    return dt.name in ONE_PER_WIDTH


SPARSE = Data((8, 16), "sparse")
NM24 = Data((8, 16), "nm")
DENSE = Data((8, 16))
CLUSTERED = Data((16, 32), clustered=12)  # enough indices for Huffman coding to pay

VARIANTS: tuple[Variant, ...] = (
    Variant("raw", {"id": "raw"}, DENSE),
    Variant("bitmask", {"id": "bitmask"}, SPARSE),
    Variant("csr", {"id": "csr"}, Data((6, 20), "sparse")),
    Variant("csc", {"id": "csc"}, Data((2, 5, 12), "sparse")),  # pins the 2-D view of rank 3
    *(
        Variant(f"nm-2of4-{meta}", {"id": "nm", "n": 2, "m": 4, "metadata": meta}, NM24)
        for meta in ("pattern", "index", "bitmask")
    ),
    # 1:3 with a last axis of 16: a padded last group; 3:8: codes packed in 64-bit words.
    Variant("nm-1of3-pattern", {"id": "nm", "n": 1, "m": 3}, Data((5, 16), "nm", nm=(1, 3))),
    Variant("nm-3of8-pattern", {"id": "nm", "n": 3, "m": 8}, Data((4, 24), "nm", nm=(3, 8))),
    Variant("huffman", {"id": "huffman"}, DENSE),
    Variant("window", {"id": "window"}, NM24),
    # a whole block of 32 columns, then 17 groups: an odd count (a missing pair member) and a
    # padded last group
    Variant("window-blocks", {"id": "window"}, Data((4, 98), "nm"),
            lambda dt: dt.name == "bfloat16"),
    # Skewed planes whose optimal codes are longer than 8 bits: pins the length limiting.
    Variant(
        "huffman-maxlen8",
        {"id": "huffman", "max_code_length": 8},
        Data((32, 64), clustered=40),
        lambda dt: dt.name in ("float8_e4m3fn", "bfloat16"),
    ),
    Variant("centroid", {"id": "centroid"}, CLUSTERED),
    Variant(
        "centroid-packed",
        {"id": "centroid", "index_coding": "packed"},
        Data((8, 16), clustered=12),
    ),
    # 16384 indices: the Huffman stage splits them into 4 streams.
    Variant(
        "centroid-4streams",
        {"id": "centroid"},
        Data((128, 128), clustered=3),
        lambda dt: dt.name == "uint8",
    ),
    *(
        Variant(
            f"hybrid-{layout}-{values}",
            {"id": "hybrid", "layout": layout, "values": values},
            Data(
                (16, 32) if (layout, values) == ("dense", "centroid") else (8, 16),
                {"dense": "none", "bitmask": "sparse", "nm": "nm"}[layout],
                clustered=12 if values == "centroid" else 0,
            ),
            _sized(2, 4) if values == "fields" else lambda dt: True,
        )
        for layout in ("dense", "bitmask", "nm")
        for values in ("planes", "fields", "centroid")
    ),
    # A very sparse mask and skewed N:M patterns, Huffman-coded (meta index "h").
    Variant(
        "hybrid-bitmask-coded",
        {"id": "hybrid", "layout": "bitmask", "values": "planes"},
        Data((16, 64), "sparse", density=0.02),
        _one_per_width,
    ),
    Variant(
        "hybrid-nm-coded",
        {"id": "hybrid", "layout": "nm", "values": "planes"},
        Data((16, 64), "nm"),
        _one_per_width,
    ),
    Variant(
        "hybrid-bitmask-planes-raw",
        {"id": "hybrid", "layout": "bitmask", "values": "planes", "entropy": "none"},
        SPARSE,
    ),
    Variant(
        "hybrid-nm-centroid-raw",
        {"id": "hybrid", "layout": "nm", "values": "centroid", "entropy": "none"},
        Data((8, 16), "nm", clustered=12),
    ),
    Variant("hybrid-auto", {"id": "hybrid"}, SPARSE),
    # fill: the value that counts as empty (a zero point), per row or for the whole tensor.
    Variant(
        "bitmask-fill-rowmode",
        {"id": "bitmask", "fill": "row-mode"},
        Data((8, 16), "sparse", fill="rows"),
        lambda dt: dt.name in ("int8", "bfloat16"),
    ),
    Variant(
        "nm-fill-rowmode",
        {"id": "nm", "fill": "row-mode"},
        Data((8, 16), "nm", fill="rows"),
        lambda dt: dt.name in ("uint8", "bfloat16"),
    ),
    # An explicit per-row fill (the frame config records "rows") and a padded last group.
    Variant(
        "nm-index-fill-rows",
        {"id": "nm", "metadata": "index", "fill": [1, 2, 3, 4, 5, 6, 7, 8]},
        Data((8, 14), "nm", fill=(1, 2, 3, 4, 5, 6, 7, 8)),
        lambda dt: dt.name == "uint8",
    ),
    Variant(
        "csr-fill-scalar", {"id": "csr", "fill": 1}, Data((6, 20), "sparse", fill=1),
        lambda dt: dt.name == "float8_e4m3fn",
    ),
    Variant(
        "csc-fill-mode", {"id": "csc", "fill": "mode"}, Data((2, 5, 12), "sparse", fill=1),
        lambda dt: dt.name == "int16",
    ),
    Variant(
        "hybrid-fill-auto-rows",
        {"id": "hybrid"},
        Data((8, 64), "nm", fill="rows"),
        lambda dt: dt.name == "uint8",
    ),
    Variant(
        "hybrid-bitmask-fill-mode",
        {"id": "hybrid", "layout": "bitmask", "values": "planes", "fill": "mode"},
        Data((8, 16), "sparse", fill=1),
        lambda dt: dt.name == "bfloat16",
    ),
)

#: Big-endian arrays: the byte order must come back, and the frames store little-endian bits.
BIG_ENDIAN: tuple[tuple[str, str], ...] = (
    ("raw", ">float32"),
    ("nm-2of4-pattern", ">int16"),
    ("hybrid-auto", ">bfloat16"),
    ("csr", ">float64"),
    ("window", ">bfloat16"),
)


@dataclass(frozen=True)
class Case:
    name: str  # "<dtype>/<variant>", also the file stem
    config: dict[str, Any]
    array: np.ndarray

    def frame(self) -> bytes:
        return sc.get_codec(self.config).encode(self.array)


def cases() -> Iterator[Case]:
    """Every golden case, in manifest order."""
    by_name = {v.name: v for v in VARIANTS}
    wanted = [(v, name) for name in SUPPORTED_DTYPES for v in VARIANTS]
    wanted += [(by_name[v], name) for v, name in BIG_ENDIAN]
    for variant, name in wanted:
        dtype = dtype_from_name(name)
        if not variant.dtypes(dtype):
            continue
        case = f"{name.replace('>', 'be-')}/{variant.name}"
        seed = zlib.crc32(case.encode())
        yield Case(case, variant.config, variant.data.draw(seed, dtype))


# -- writing -----------------------------------------------------------------------------------


def _npy(bits: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, bits, allow_pickle=False)
    return buf.getvalue()


def _manifest_text(manifest: dict[str, Any]) -> str:
    """The manifest as JSON, one line per case (small, and diffs show whole cases)."""
    head = {k: v for k, v in manifest.items() if k != "cases"}
    lines = [json.dumps(head)[:-1] + ', "cases": [']
    lines += [f"  {json.dumps(e)}," for e in manifest["cases"]]
    lines[-1] = lines[-1].rstrip(",")
    return "\n".join([*lines, "]}", ""])


def render(only: str | None = None) -> tuple[dict[str, bytes], dict[str, Any]]:
    """``({relative path: content}, manifest)`` of every case (or those whose name has ``only``)."""
    files: dict[str, bytes] = {}
    entries = []
    for case in cases():
        if only is not None and only not in case.name:
            continue
        frame = case.frame()
        assert_bits_equal(sc.decode(frame), case.array, f"decode of the new frame of {case.name}")
        npy = _npy(bits_of(case.array))
        files[f"{case.name}.spcf"] = frame
        files[f"{case.name}.npy"] = npy
        entries.append(
            {
                "name": case.name,
                "codec": case.config,
                "dtype": dtype_name(case.array.dtype),
                "shape": list(case.array.shape),
                "frame": f"{case.name}.spcf",
                "array": f"{case.name}.npy",
            }
        )
    manifest = {
        "format_version": FORMAT_VERSION,
        "written_by": "tests/golden/regenerate.py; only a format version bump may change a file",
        "cases": entries,
    }
    return files, manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write the golden frames of the current format version (see the module "
        "docstring). Only a format version bump may change an existing golden file."
    )
    parser.add_argument("--force", action="store_true", help="rewrite or delete differing files")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 on changes")
    parser.add_argument("--out", type=Path, default=GOLDEN / f"v{FORMAT_VERSION}",
                        help="output directory (default: tests/golden/v<FORMAT_VERSION>)")
    parser.add_argument("--only", help="only the cases whose name contains this (for tests)")
    args = parser.parse_args(argv)

    files, manifest = render(args.only)
    out: Path = args.out
    old_manifest = json.loads((out / MANIFEST).read_text()) if (out / MANIFEST).is_file() else {}
    old_entries = {e["name"]: e for e in old_manifest.get("cases", [])}
    new_entries = {e["name"]: e for e in manifest["cases"]}
    if args.only is not None:  # keep the other cases as they are
        manifest["cases"] = [
            *[e for n, e in old_entries.items() if n not in new_entries], *manifest["cases"]
        ]
    existing = {
        p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name != MANIFEST
    } if out.is_dir() else set()
    kept = {f for e in manifest["cases"] for f in (e["frame"], e["array"])}
    added = sorted(f for f in files if f not in existing)
    changed = sorted(f for f in files if f in existing and (out / f).read_bytes() != files[f])
    changed += sorted(
        n for n, e in new_entries.items() if n in old_entries and old_entries[n] != e
        and f"{n}.spcf" not in changed and f"{n}.npy" not in changed
    )
    stale = sorted(existing - kept)
    for label, items in (("new", added), ("changed", changed), ("not in the cases", stale)):
        for item in items:
            print(f"{label}: {item}")
    if args.check:
        return 1 if added or changed or stale else 0
    if (changed or stale) and not args.force:
        print(
            f"refusing to change or delete {len(changed) + len(stale)} existing golden file(s) in "
            f"{out}: only a format version bump may change golden frames. If this is one, pass "
            "--force.",
            file=sys.stderr,
        )
        return 1
    for rel in stale:
        (out / rel).unlink()
    for rel, content in files.items():
        path = out / rel
        if not path.is_file() or path.read_bytes() != content:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    (out / MANIFEST).write_text(_manifest_text(manifest))
    print(f"{len(manifest['cases'])} cases in {out}: {len(added)} files added, "
          f"{len(changed)} changed, {len(stale)} deleted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
