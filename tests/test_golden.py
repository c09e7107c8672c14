"""Golden frames: committed frames of every built-in codec and dtype, and the arrays they hold.

Each frame under ``tests/golden/v<N>/`` must decode to its recorded array, bit for bit, and the
recorded array must encode to the very same bytes (encoding is deterministic). A change to what
a codec writes or reads fails here; only a format version bump may change a golden file (see
``docs/format.md``). A missing file fails: the tests never write golden files, the explicit
script ``tests/golden/regenerate.py`` does.
"""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import sparsecodecs as sc
from sparsecodecs.registry import FORMAT_VERSION, SUPPORTED_DTYPES
from sparsecodecs.registry.dtypes import dtype_from_name
from sparsecodecs.testing import assert_bits_equal, from_bits, split_frame
from test_huffman import read_leb128  # tests/ is on sys.path: pytest's default rootdir import

GOLDEN = Path(__file__).parent / "golden"
CURRENT = GOLDEN / f"v{FORMAT_VERSION}"
REGENERATE = "python tests/golden/regenerate.py"
MANIFESTS = {p.parent: json.loads(p.read_text()) for p in sorted(GOLDEN.glob("v*/manifest.json"))}
CASES = [
    pytest.param(folder, case, id=f"{folder.name}/{case['name']}")
    for folder, manifest in MANIFESTS.items()
    for case in manifest["cases"]
]


def _read(folder: Path, case: dict[str, Any], key: str) -> bytes:
    """A golden file's bytes; fails if it is missing."""
    path = folder / case[key]
    if not path.is_file():
        pytest.fail(
            f"golden file {path} is missing. The tests never write golden files: restore it "
            f"from version control, or run `{REGENERATE}` if it belongs to a new case"
        )
    return path.read_bytes()


def _load(folder: Path, case: dict[str, Any]) -> tuple[bytes, np.ndarray]:
    """(frame, the array it decodes to) of one case."""
    frame = _read(folder, case, "frame")
    bits = np.load(io.BytesIO(_read(folder, case, "array")), allow_pickle=False)
    dtype = dtype_from_name(case["dtype"])
    assert bits.dtype == np.dtype(f"u{dtype.itemsize}"), f"{case['array']} holds {bits.dtype}"
    assert list(bits.shape) == case["shape"], f"{case['array']} has shape {bits.shape}"
    return frame, from_bits(bits, dtype)


def _first_difference(a: bytes, b: bytes) -> str:
    i = next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return f"{len(a)} vs {len(b)} bytes, first difference at offset {i}"


# -- the manifest ------------------------------------------------------------------------------


def test_the_current_format_version_has_golden_frames() -> None:
    manifest = MANIFESTS.get(CURRENT)
    assert manifest is not None, (
        f"no {CURRENT}/manifest.json: every format version needs golden frames; run "
        f"`{REGENERATE}` (a new version only) or restore them from version control"
    )
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["cases"], "the manifest lists no cases"


def test_every_golden_version_directory_has_a_manifest() -> None:
    versions = sorted(p.name for p in GOLDEN.glob("v*") if p.is_dir())
    assert versions == sorted(p.name for p in MANIFESTS), "a v*/ directory without manifest.json"
    for folder, manifest in MANIFESTS.items():
        assert folder.name == f"v{manifest['format_version']}"


@pytest.mark.parametrize("folder", list(MANIFESTS), ids=lambda p: p.name)
def test_the_manifest_lists_exactly_the_files_there_are(folder: Path) -> None:
    listed = {case[key] for case in MANIFESTS[folder]["cases"] for key in ("frame", "array")}
    present = {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.name != "manifest.json"
    }
    assert not listed - present, f"missing golden files: {sorted(listed - present)}"
    assert not present - listed, f"golden files not in the manifest: {sorted(present - listed)}"
    names = [case["name"] for case in MANIFESTS[folder]["cases"]]
    assert len(names) == len(set(names)), "a case name appears twice"


def _current_headers() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(manifest case, frame header) of every current golden frame."""
    return [
        (case, split_frame(_read(CURRENT, case, "frame"))[0])
        for case in MANIFESTS.get(CURRENT, {"cases": []})["cases"]
    ]


def _stream_counts(frame: bytes) -> set[int]:
    """The stream count S of each Huffman codebook section (layout: docs/codecs/huffman.md)."""
    header, payloads = split_frame(frame)
    counts = set()
    for (name, _, _), book in zip(header["sections"], payloads, strict=True):
        if not name.endswith(".codebook"):
            continue
        if book[0] < 2:  # versions 1-2: the count is stored after the lengths
            (count,) = struct.unpack_from("<I", book, 5 if book[0] == 0 else 1)
            counts.add(book[9 + (count + 1) // 2 if book[0] == 0 else 5 + 3 * count])
            continue
        # version 3: varints (a byte below 128 ends one); the lengths of all streams but the
        # last follow the code lengths
        if book[0] == 2:  # first, count, then the count's 4-bit lengths
            _, at = read_leb128(book, 1)
            count, at = read_leb128(book, at)
            tail = at + (count + 1) // 2
        else:  # count, then 3 bytes a symbol
            count, at = read_leb128(book, 1)
            tail = at + 3 * count
        counts.add(1 + sum(1 for b in book[tail:] if b < 128))
    return counts


def test_every_builtin_codec_and_dtype_is_covered() -> None:
    builtins = {info.name for info in sc.list_codecs() if info.source == "builtin"}
    assert builtins >= {"raw", "bitmask", "nm", "csr", "csc", "huffman", "centroid", "hybrid"}
    covered = {(header["codec"], case["dtype"]) for case, header in _current_headers()}
    missing = sorted(
        (codec, dtype) for codec in builtins for dtype in SUPPORTED_DTYPES
        if (codec, dtype) not in covered
    )
    assert not missing, f"no golden frame for {missing}: add cases, then `{REGENERATE}`"


def test_the_config_variants_and_stream_modes_are_covered() -> None:
    seen: set[tuple[str, str, object]] = set()
    for case, header in _current_headers():
        codec, config, meta = header["codec"], header["config"], header["meta"]
        for key in ("metadata", "layout", "values", "entropy", "index_coding", "max_code_length",
                    "fill"):
            if key in config:
                seen.add((codec, key, config[key]))
        for key in ("index", "centroid_index", "fill"):
            if key in meta:
                seen.add((codec, key, meta[key]))
        for mode in meta.get("planes", ""):
            seen.add((codec, "planes", mode))
        seen.add((codec, "big-endian", header["dtype"].startswith(">")))
        seen.update((codec, "streams", n) for n in _stream_counts(_read(CURRENT, case, "frame")))
    wanted = {
        *(("nm", "metadata", m) for m in ("pattern", "index", "bitmask")),
        *(("hybrid", "layout", layout) for layout in ("dense", "bitmask", "nm")),
        *(("hybrid", "values", v) for v in ("planes", "fields", "centroid")),
        *(("hybrid", "entropy", e) for e in ("huffman", "none")),
        *(("hybrid", "index", mode) for mode in ("h", "r")),
        *(("hybrid", "centroid_index", mode) for mode in ("h", "p")),
        *((codec, "planes", mode) for codec in ("huffman", "hybrid") for mode in ("h", "r")),
        *(("centroid", "index", mode) for mode in ("h", "p")),
        ("centroid", "index_coding", "packed"),
        ("huffman", "max_code_length", 8),
        *((codec, "big-endian", True) for codec in ("raw", "nm", "csr", "hybrid")),
        *(("centroid", "streams", n) for n in (1, 4)),
        *((codec, "fill", "row-mode") for codec in ("bitmask", "nm", "hybrid")),
        *((codec, "fill", "mode") for codec in ("csc", "hybrid")),
        ("csr", "fill", 1),
        ("nm", "fill", "rows"),  # an explicit per-row fill, in config and meta
        *((codec, "fill", "scalar") for codec in ("csr", "csc", "hybrid")),
    }
    assert not wanted - seen, f"golden frames do not cover {sorted(wanted - seen, key=str)}"


def test_golden_files_stay_small() -> None:
    sizes = {p: p.stat().st_size for p in GOLDEN.rglob("*") if p.is_file()}
    big = {str(p): n for p, n in sizes.items() if n > 20_000 and p.suffix in (".spcf", ".npy")}
    assert not big, f"golden files over 20 kB: {big}"
    # 600 kB per format version (each version directory holds its own copy of the arrays)
    cap = 600_000 * len(MANIFESTS)
    assert sum(sizes.values()) < cap, f"golden files total {sum(sizes.values())} bytes"


# -- decoding and encoding -----------------------------------------------------------------------


@pytest.mark.parametrize(("folder", "case"), CASES)
def test_a_golden_frame_decodes_to_its_array_and_back(folder: Path, case: dict[str, Any]) -> None:
    """Decoding gives the recorded array; encoding it (current version only) the same bytes."""
    frame, expected = _load(folder, case)
    header, _ = split_frame(frame)
    assert header["dtype"] == case["dtype"] and header["shape"] == case["shape"]
    assert_bits_equal(sc.decode(frame), expected, f"decode({case['frame']})")
    if folder != CURRENT:
        return  # an older version's frames only need to keep decoding
    again = sc.get_codec(case["codec"]).encode(expected)
    if again != frame:
        new, old = split_frame(again)[0], header
        changed = {k: (old[k], new[k]) for k in old if old[k] != new[k]}
        pytest.fail(
            f"{case['codec']} now encodes {case['array']} differently from {case['frame']} "
            f"({_first_difference(frame, again)}; header changes {changed or 'none'}). Encoding "
            "must be deterministic and the format is frozen: only a format version bump may "
            "change a golden frame"
        )


# -- the regeneration script ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def regenerate() -> Iterator[ModuleType]:
    name = "sparsecodecs_golden_regenerate"
    spec = importlib.util.spec_from_file_location(name, GOLDEN / "regenerate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[name]


def test_regenerate_writes_missing_files_and_refuses_to_change_any(
    regenerate: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    only = ["--out", str(tmp_path), "--only", "uint8/nm-2of4"]
    assert regenerate.main(only) == 0
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.spcf"))
    assert written == [f"uint8/nm-2of4-{m}.spcf" for m in ("bitmask", "index", "pattern")]
    for name in written:  # what it writes is what is committed
        assert (tmp_path / name).read_bytes() == (CURRENT / name).read_bytes()
    assert regenerate.main([*only, "--check"]) == 0

    target = tmp_path / "uint8/nm-2of4-index.spcf"
    target.write_bytes(b"edited")
    capsys.readouterr()
    assert regenerate.main(only) == 1
    assert target.read_bytes() == b"edited"
    assert "only a format version bump" in capsys.readouterr().err
    assert regenerate.main([*only, "--check"]) == 1
    assert regenerate.main([*only, "--force"]) == 0
    assert target.read_bytes() == (CURRENT / "uint8/nm-2of4-index.spcf").read_bytes()


def test_regenerate_refuses_to_delete_a_case(regenerate: ModuleType, tmp_path: Path) -> None:
    shutil.copytree(CURRENT / "uint8", tmp_path / "uint8")
    only = ["--out", str(tmp_path), "--only", "uint8/raw"]
    assert regenerate.main(only) == 1  # the other uint8 files are not in its cases
    assert (tmp_path / "uint8/bitmask.spcf").is_file()
