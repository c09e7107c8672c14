"""The ``hybrid`` codec: a layout, a value stage and an entropy stage, chosen per tensor.

Arrays are compared by bit pattern. Hostile frames are rewritten behind a valid checksum with
``sparsecodecs.testing.reframe``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import sparsecodecs as sc
from sparsecodecs.registry import CodecConfigError, FrameHeaderError, FrameLayoutError, PatternError
from sparsecodecs.testing import assert_bits_equal, examples, reframe, split_frame

LAYOUTS = ["dense", "bitmask", "nm"]
VALUES = ["planes", "fields", "centroid"]
ENTROPY = ["huffman", "none"]
DTYPES = [ml_dtypes.bfloat16, np.float16, np.float32, np.int8, np.uint8,
          ml_dtypes.float8_e4m3fn]


def hybrid(**params: Any) -> sc.Codec:
    return sc.get_codec("hybrid", **params)


def prune_24(w: np.ndarray) -> np.ndarray:
    """Keep the two largest magnitudes of every group of four along the last axis."""
    groups = np.abs(w.astype(np.float32)).reshape(-1, 4)
    keep = np.zeros(groups.shape, bool)
    np.put_along_axis(keep, np.argsort(groups, axis=1, kind="stable")[:, 2:], True, axis=1)
    return np.where(keep.reshape(w.shape), w, np.zeros((), w.dtype))


def gaussian(shape: tuple[int, ...], dtype: Any, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * 0.02).astype(dtype)


def random_24(shape: tuple[int, int], dtype: Any, seed: int = 0) -> np.ndarray:
    """Random bit patterns (NaNs, -0.0 and all), two of every four along the last axis zeroed
    at random; a last axis that is not a multiple of 4 ends in a partial group."""
    rng = np.random.default_rng(seed)
    udt = np.dtype(f"u{np.dtype(dtype).itemsize}")
    rows, cols = shape
    groups = -(-cols // 4)
    bits = rng.integers(1, np.iinfo(udt).max, (rows, groups, 4), dtype=udt, endpoint=True)
    slots = rng.permuted(np.tile(np.arange(4), (rows, groups, 1)), axis=2)
    np.put_along_axis(bits, slots[..., :2], 0, axis=2)
    return np.ascontiguousarray(bits.reshape(rows, 4 * groups)[:, :cols]).view(dtype)


def body_bytes(frame: bytes) -> int:
    """Bytes of the sections: the frame without its header (whose JSON differs by config)."""
    report = sc.inspect(frame)
    return report.frame_bytes - report.role_bytes["header"]


def slack(frame: bytes) -> int:
    """How much larger than actual the encoder's size estimate of ``frame`` may be: a coded
    block of 2**14 symbols or more is 4 streams, each padded to whole 64-bit words, and the
    estimate pads the sum once, so it is over by at most 3 x 8 bytes per coded block."""
    names = [s.name for s in sc.inspect(frame).sections]
    return 24 * sum(n.endswith(".codebook") for n in names)


# -- the automatic choice ----------------------------------------------------------------------


def clustered(shape: tuple[int, ...], k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.choice(rng.standard_normal(k).astype(np.float32), shape)


AUTO_CASES = {  # name: (array builder, acceptable layouts, the value stage, if it is certain)
    "2:4 bfloat16": (lambda: prune_24(gaussian((256, 256), ml_dtypes.bfloat16)),
                     {"nm", "bitmask"}, None),
    "2:4 float32": (lambda: prune_24(gaussian((128, 256), np.float32)), {"nm", "bitmask"}, None),
    "dense bfloat16": (lambda: gaussian((256, 256), ml_dtypes.bfloat16), {"dense"}, None),
    "dense float32": (lambda: gaussian((128, 128), np.float32), {"dense"}, None),
    "16 centroids": (lambda: clustered((256, 256), 16), {"dense"}, "centroid"),
    "5000 centroids": (lambda: clustered((512, 512), 5000), {"dense"}, "centroid"),
    # float16 weights stored as float32: the low 13 mantissa bits are zero
    "upcast float16": (lambda: gaussian((256, 256), np.float16).astype(np.float32), {"dense"},
                       None),
}


@pytest.mark.parametrize(("build", "layouts", "values"), AUTO_CASES.values(),
                         ids=AUTO_CASES.keys())
def test_auto_is_the_smallest_explicit_choice(build: Callable[[], np.ndarray],
                                              layouts: set[str], values: str | None):
    x = build()
    frame = hybrid().encode(x)
    assert_bits_equal(sc.decode(frame), x)
    config = sc.inspect(frame).config
    assert config["layout"] in layouts
    assert config["values"] in VALUES
    if values is not None:
        assert config["values"] == values
    assert {k: v for k, v in config.items() if k not in ("layout", "values")} == {
        "n": 2, "m": 4, "entropy": "huffman", "max_code_length": 15}
    # The resolved config written out explicitly encodes to the very same frame.
    assert hybrid(layout=config["layout"], values=config["values"]).encode(x) == frame
    tried = 0
    for layout, stage, entropy in itertools.product(LAYOUTS, VALUES, ENTROPY):
        if stage == "fields" and entropy == "none":
            continue
        try:
            other = hybrid(layout=layout, values=stage, entropy=entropy).encode(x)
        except PatternError:  # not 2:4, or too many distinct values for centroids
            continue
        tried += 1
        assert body_bytes(frame) <= body_bytes(other) + slack(other), (layout, stage, entropy)
    assert tried >= 6


def test_sparse_tensors_get_a_sparse_layout_and_the_index_role():
    x = prune_24(gaussian((64, 128), ml_dtypes.bfloat16))
    report = sc.inspect(hybrid().encode(x))
    index = [s.name for s in report.sections if s.role == "index"]
    assert index in (["mask"], ["mask.bits"], ["pattern"], ["pattern.bits"])
    assert report.theoretical_bytes == x.nbytes // 2  # kept values: 2 of every 4


@pytest.mark.slow
def test_24_pruned_bfloat16_is_below_half_of_dense():
    """The point of the codec: 2:4 bfloat16 weights in well under the 50% the layout keeps."""
    x = prune_24(gaussian((4096, 1024), ml_dtypes.bfloat16))
    frame = hybrid().encode(x)
    assert len(frame) < 0.5 * x.nbytes
    assert_bits_equal(sc.decode(frame), x)


def test_machines_without_the_byte_shuffle_write_and_read_the_same_frames():
    """The SIMD split and scatter of 16-bit values have scalar twins for other CPUs: with the
    SIMD paths turned off, encoding gives the same bytes and decoding the same bits."""
    from sparsecodecs.kernels import use_simd

    x = prune_24(gaussian((64, 200), ml_dtypes.bfloat16))
    x[3] = 0  # a row of zeros, and a few extra ones
    x[5, ::7] = 0
    frame = hybrid(layout="bitmask").encode(x)
    with use_simd("scalar"):
        assert hybrid(layout="bitmask").encode(x) == frame
        assert_bits_equal(sc.decode(frame), x)


# -- explicit configurations -------------------------------------------------------------------

EXPLICIT = [
    pytest.param(layout, stage, entropy, dtype,
                 id=f"{layout}-{stage}-{entropy}-{np.dtype(dtype).name}")
    for layout, stage, entropy, dtype in itertools.product(LAYOUTS, VALUES, ENTROPY, DTYPES)
    if stage != "fields" or (entropy == "huffman" and np.dtype(dtype).itemsize in (2, 4))
]


@pytest.mark.parametrize("shape", [(16, 32), (7, 38)], ids=["whole-groups", "padded"])
@pytest.mark.parametrize(("layout", "stage", "entropy", "dtype"), EXPLICIT)
def test_explicit_round_trip(layout: str, stage: str, entropy: str, dtype: Any,
                             shape: tuple[int, int]):
    x = random_24(shape, dtype)
    frame = hybrid(layout=layout, values=stage, entropy=entropy).encode(x)
    assert_bits_equal(sc.decode(frame), x)
    report = sc.inspect(frame)
    assert report.config == {"layout": layout, "n": 2, "m": 4, "values": stage,
                             "entropy": entropy, "max_code_length": 15}
    kept = {"dense": x.size, "bitmask": np.count_nonzero(x.view(f"u{x.itemsize}")),
            "nm": shape[0] * math.ceil(shape[1] / 4) * 2}[layout]
    assert report.theoretical_bytes == kept * x.itemsize
    if entropy == "none":
        assert not [s for s in report.sections if s.name.endswith(".codebook")]


@pytest.mark.parametrize("dtype", [np.int8, ml_dtypes.float8_e4m3fn, np.float64, np.int64])
def test_fields_need_16_or_32_bit_values(dtype: Any):
    with pytest.raises(CodecConfigError, match="values='fields' needs 16- or 32-bit values"):
        hybrid(values="fields").encode(np.ones((4, 4), dtype))


def test_fields_need_huffman():
    with pytest.raises(CodecConfigError, match="needs entropy='huffman'"):
        hybrid(values="fields", entropy="none")


def test_more_symbols_than_short_codes_are_stored_raw_or_refused():
    """With max_code_length=8 at most 256 symbols can get a code: an alphabet that uses more (top
    fields, N:M patterns) is not Huffman-coded; this was a plain ValueError from the planner."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2**32, 1 << 14, dtype=np.uint32).view(np.float32)  # 4096 top fields
    frame = hybrid(max_code_length=8).encode(x)
    assert split_frame(frame)[0]["config"]["values"] != "fields"
    assert_bits_equal(sc.decode(frame), x)
    with pytest.raises(PatternError, match="more than 256 values; raise max_code_length"):
        hybrid(values="fields", max_code_length=8).encode(x)
    patterns = np.zeros((4096, 16), np.float32)  # 8:16, about 3500 distinct patterns of 12870
    for row in patterns:
        row[rng.choice(16, 8, replace=False)] = 1.0
    frame = hybrid(layout="nm", n=8, m=16, max_code_length=8).encode(patterns)
    assert split_frame(frame)[0]["meta"]["index"] == "r"
    assert_bits_equal(sc.decode(frame), patterns)


def test_explicit_centroids_take_mostly_distinct_values():
    x = prune_24(gaussian((256, 256), np.float32))
    k = np.unique(x[x != 0]).size
    assert k > x.size // 4 * 0.99  # the 32768 non-zeros are (nearly all) distinct
    frame = hybrid(layout="bitmask", values="centroid").encode(x)
    assert split_frame(frame)[0]["meta"]["k"] == k
    assert_bits_equal(sc.decode(frame), x)


def test_explicit_centroids_refuse_more_than_65536_distinct_values():
    x = np.arange(1, 65538, dtype=np.uint32).view(np.float32)
    with pytest.raises(PatternError, match="at most 65536 distinct values"):
        hybrid(values="centroid").encode(x)


def test_explicit_nm_refuses_a_dense_tensor():
    """The error counts the groups that break the pattern (8 of 8 here); the planner's own
    tries of N:M under layout='auto' skip that count (a pass over the whole tensor)."""
    with pytest.raises(PatternError, match=r"not 2:4 sparse.* 8 of 8 groups violate"):
        hybrid(layout="nm").encode(np.arange(1, 33, dtype=np.float32).reshape(4, 8))
    # All ones is 2:4 sparse around its mode, which fill="auto" tries; not around zero.
    ones = np.ones((4, 8), np.float32)
    assert_bits_equal(sc.decode(hybrid(layout="nm").encode(ones)), ones)
    with pytest.raises(PatternError, match=r"not 2:4 sparse.* 8 of 8 groups violate"):
        hybrid(layout="nm", fill="zero").encode(ones)


@pytest.mark.parametrize("shape", [(0,), (0, 4), (), (5,), (3, 1)])
@pytest.mark.parametrize("layout", ["auto", *LAYOUTS])
def test_edge_shapes(layout: str, shape: tuple[int, ...]):
    x = np.zeros(shape, ml_dtypes.bfloat16)
    x[...] = np.where(np.arange(shape[-1]) % 4 == 0, 1.5, 0) if shape else 1.5  # 1 in 4
    assert_bits_equal(sc.decode(hybrid(layout=layout).encode(x)), x)


# -- hostile frames ----------------------------------------------------------------------------


def frame_with(x: np.ndarray, **params: Any) -> tuple[bytes, dict[str, Any]]:
    frame = hybrid(**params).encode(x)
    return frame, split_frame(frame)[0]["meta"]


def assert_layout_error(frame: bytes, match: str) -> None:
    with pytest.raises(FrameLayoutError, match=match):
        sc.decode(frame)


@pytest.mark.parametrize("key", ["layout", "values"])
def test_unresolved_auto_in_a_frame_is_refused(key: str):
    frame = hybrid().encode(prune_24(gaussian((8, 16), np.float32)))
    config = sc.inspect(frame).config
    assert_layout_error(reframe(frame, header={"config": {**config, key: "auto"}}),
                        "must record its resolved layout and values")


WRONG_PLANES = "meta 'planes' must be 2 letters of 'h'/'r'"


@pytest.mark.parametrize(
    ("planes", "match"),
    [("hhh", WRONG_PLANES), ("h", WRONG_PLANES), ("", WRONG_PLANES), ("hx", WRONG_PLANES),
     (None, WRONG_PLANES), (2, WRONG_PLANES), (["h", "r"], WRONG_PLANES),
     ("hh", "section 'v.plane1.codebook' is missing"), ("rr", "section 'v.plane0' is missing")],
)
def test_hostile_planes_string(planes: object, match: str):
    frame, meta = frame_with(gaussian((16, 16), ml_dtypes.bfloat16), layout="dense",
                             values="planes")
    assert meta["planes"] == "hr"  # exponent coded, sign + mantissa raw
    assert_layout_error(reframe(frame, header={"meta": {**meta, "planes": planes}}), match)


@pytest.mark.parametrize("dtype", [ml_dtypes.bfloat16, np.float32])
@pytest.mark.parametrize("top", [8, 13, 0, -1, "10", None, True, 10.0])
def test_hostile_fields(dtype: Any, top: object):
    frame, meta = frame_with(gaussian((16, 16), dtype), layout="dense", values="fields")
    assert 9 <= meta["fields"] <= 12
    assert_layout_error(reframe(frame, header={"meta": {**meta, "fields": top}}),
                        "meta 'fields' is")


def test_hostile_fields_of_another_width():
    # a valid width for the frame's dtype, but not the one it was written with
    frame, meta = frame_with(gaussian((64, 64), np.float32), layout="dense", values="fields")
    other = 9 if meta["fields"] != 9 else 10
    with pytest.raises(FrameLayoutError):
        sc.decode(reframe(frame, header={"meta": {**meta, "fields": other}}))


@pytest.mark.parametrize("layout", ["bitmask", "nm"])
@pytest.mark.parametrize("entropy", ENTROPY)
@pytest.mark.parametrize("mode", ["x", "p", None, 0])
def test_hostile_index_mode(layout: str, entropy: str, mode: object):
    frame, meta = frame_with(prune_24(gaussian((64, 64), ml_dtypes.bfloat16)), layout=layout,
                             values="planes", entropy=entropy)
    assert meta["index"] in (("h", "r") if entropy == "huffman" else ("r",))
    assert_layout_error(reframe(frame, header={"meta": {**meta, "index": mode}}),
                        "meta 'index' must be 'h' or 'r'")


@pytest.mark.parametrize("mode", ["x", "r", None])
def test_hostile_centroid_index_mode(mode: object):
    frame, meta = frame_with(clustered((32, 32), 8), layout="dense", values="centroid")
    assert meta["centroid_index"] in ("h", "p")
    assert_layout_error(reframe(frame, header={"meta": {**meta, "centroid_index": mode}}),
                        "index mode must be 'h' or 'p'")


def one_value_bitmask(shape: tuple[int, ...]) -> tuple[np.ndarray, bytes, dict[str, Any]]:
    """A bitmask frame whose value sections do not depend on nnz (one centroid, 0-bit
    indices), so a changed nnz or mask reaches the mask check."""
    x = np.zeros(shape, np.float32)
    x.reshape(-1)[::3] = 2.5
    frame, meta = frame_with(x, layout="bitmask", values="centroid", entropy="none")
    assert meta == {"index": "r", "nnz": int(np.count_nonzero(x)), "k": 1,
                    "centroid_index": "p"}
    return x, frame, meta


@pytest.mark.parametrize("delta", [-1, 1])
def test_hostile_nnz_mismatching_the_mask(delta: int):
    _, frame, meta = one_value_bitmask((8, 8))
    nnz = meta["nnz"] + delta
    assert_layout_error(reframe(frame, header={"meta": {**meta, "nnz": nnz}}),
                        f"set bits but meta nnz={nnz}")


def test_hostile_mask_bit_flipped():
    x, frame, meta = one_value_bitmask((8, 8))
    mask = np.packbits(x.reshape(-1) != 0, bitorder="little")
    mask[0] ^= 0b10  # element 1 is zero: now marked non-zero
    assert_layout_error(reframe(frame, sections={"mask": mask.tobytes()}),
                        f"has {meta['nnz'] + 1} set bits but meta nnz={meta['nnz']}")


def test_hostile_mask_bits_past_the_end():
    x, frame, _ = one_value_bitmask((3, 5))  # 15 elements: the mask's last bit is padding
    mask = np.packbits(x.reshape(-1) != 0, bitorder="little")
    mask[0] &= 0xFE  # element 0 cleared ...
    mask[-1] |= 0x80  # ... and bit 15, past the last element, set: the same count
    assert_layout_error(reframe(frame, sections={"mask": mask.tobytes()}),
                        "set bits past the last element")


@pytest.mark.parametrize("nnz", [65, -1, "3", None])
def test_hostile_nnz_out_of_range(nnz: object):
    _, frame, meta = one_value_bitmask((8, 8))
    assert_layout_error(reframe(frame, header={"meta": {**meta, "nnz": nnz}}), "meta field 'nnz'")


def test_hostile_k_beyond_the_kept_values():
    frame, meta = frame_with(prune_24(gaussian((8, 8), np.float32)), layout="nm",
                             values="centroid")
    assert_layout_error(reframe(frame, header={"meta": {**meta, "k": 33}}),
                        r"'k' is 33, outside the valid range \[0, 32\]")


def test_hostile_raw_pattern_word():
    frame, meta = frame_with(prune_24(gaussian((8, 12), np.float32)), layout="nm",
                             values="planes", entropy="none")
    assert meta["index"] == "r"
    # 2:4 has 6 patterns, packed 3 per byte as base-6 digits: bytes >= 216 are no pattern
    assert_layout_error(reframe(frame, sections={"pattern": bytes([216] * 8)}),
                        "no valid pattern word")


@pytest.mark.parametrize("n, m", [(1, 2), (2, 4), (1, 4), (2, 8), (4, 8)])
@pytest.mark.parametrize("exact", [True, False])
def test_nm_codes_and_their_histogram_from_the_mask(n: int, m: int, exact: bool):
    """The planner's shortcut: N:M codes and their histogram read off a bitmask's bytes equal
    what splitting the groups gives, and a mask with a group of fewer than n bits is refused."""
    from sparsecodecs.codecs._huffman import histogram
    from sparsecodecs.codecs.hybrid import _nm_code_counts, _nm_codes
    from sparsecodecs.codecs.nm import nm_tables, split_groups

    rng = np.random.default_rng(n * 10 + m)
    rows, cols = 6, 4 * m
    x = np.zeros((rows * cols // m, m), np.uint16)
    for g in range(x.shape[0]):
        x[g, rng.choice(m, n, replace=False)] = rng.integers(1, 1000, n)
    if not exact:
        x[5, np.flatnonzero(x[5])[0]] = 0  # one group with n - 1 non-zeros
    x = x.reshape(rows, cols)
    mask = np.packbits(x.reshape(-1) != 0, bitorder="little")
    tables = nm_tables(n, m)
    counts = _nm_code_counts(histogram(mask, 256), tables)
    if not exact:
        assert counts is None
        return
    codes, _ = split_groups(x, n, m)
    assert counts is not None
    np.testing.assert_array_equal(counts, np.bincount(codes, minlength=tables.ncodes))
    np.testing.assert_array_equal(_nm_codes(mask, codes.size, m, tables.code_of), codes)


# -- the planner's shortcuts --------------------------------------------------------------------


def _worth_counting_by_unique(sample: np.ndarray) -> bool:
    """The test the planner made before it had a sorted sample: by np.unique's counts."""
    patterns, counts = np.unique(sample, return_counts=True)
    zeros = int(counts[0]) if patterns[0] == 0 else 0
    return (int(counts.max()) - zeros) * 64 * sample.itemsize > sample.size


@pytest.mark.parametrize("seed", range(40))
def test_the_sorted_sample_mode_test_answers_as_np_unique_did(seed):
    """_worth_counting off the sorted sample, and by hash first (a sample not sorted yet:
    a "no" there is final), answer as np.unique's counts of the sample; every fifth case has
    a strided sample (over 131,071 values)."""
    from sparsecodecs.codecs._distinct import SortedSample, sorted_sample
    from sparsecodecs.codecs.hybrid import _worth_counting

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 3000)) if seed % 5 else int(rng.integers(131072, 200000))
    x = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    # a mode around the threshold (n / 256 beyond the zeros), zeros around it too
    x[rng.random(n) < rng.choice([0.0, 0.01, 0.3, 0.6])] = 0
    zeros = int(np.count_nonzero(x == 0))
    extra = zeros + n // 256 + int(rng.integers(-2, 3))
    if 0 < extra < n:
        x[rng.choice(n, extra, replace=False)] = 7
    sample = sorted_sample(x)
    want = _worth_counting_by_unique(sample)
    assert _worth_counting(lambda: sample) == want
    assert _worth_counting(SortedSample(x)) == want
    assert _worth_counting(SortedSample(x), hash_first=False) == want


@pytest.mark.parametrize("seed", range(30))
def test_few_distinct_samples_are_counted_not_sorted(seed, monkeypatch):
    """A sample of 4- or 8-byte patterns whose hash count finds fewer than FEW_DISTINCT
    distinct ones has its runs counted by unique_few: the runs, the sorted sample (repeated
    from them), the whole tensor's distinct values and the mode test must be what the sorts
    give, and no sort may run; more distinct ones, or a sample sorted already, go the sorting
    way. Sizes on both sides of 131,071 (a strided sample), zeros or none."""
    from sparsecodecs.codecs import _distinct, _kernels
    from sparsecodecs.codecs._distinct import FEW_DISTINCT, SortedSample, sorted_sample
    from sparsecodecs.codecs.hybrid import _worth_counting

    rng = np.random.default_rng(seed)
    n = [3000, 70000, 200000][seed % 3]
    k = [1, 17, 3000, FEW_DISTINCT + 100][seed // 3 % 4]
    dt = np.uint32 if seed % 2 else np.uint64
    pool = rng.integers(1, 1 << 31, k, dtype=np.uint64).astype(dt)
    x = pool[rng.integers(0, k, n)]
    if seed % 5 < 2:
        x[rng.random(n) < 0.3] = 0
    sample = sorted_sample(x)
    want_runs = np.unique(sample, return_counts=True)
    want = _worth_counting_by_unique(sample)
    sorts: list[int] = []
    real = _kernels.sorted_bits
    monkeypatch.setattr(_distinct, "sorted_bits", lambda v: sorts.append(v.size) or real(v))
    s = SortedSample(x)
    s.hashed()
    few = np.unique(x[:: max(1, n // 65536)]).size <= FEW_DISTINCT  # zero among them or not
    assert s.few or k >= FEW_DISTINCT  # its hash bins in use: at most the distinct values
    assert _worth_counting(s) == want
    runs = s.runs()
    np.testing.assert_array_equal(runs[0], want_runs[0])
    np.testing.assert_array_equal(runs[1], want_runs[1])
    np.testing.assert_array_equal(s(), sample)
    uniq, counts = s.unique()
    want_u, want_c = np.unique(x, return_counts=True)
    np.testing.assert_array_equal(uniq, want_u)
    np.testing.assert_array_equal(counts, want_c)
    if few:  # the sample counted, and its sorted form repeated from the counts: no sort
        assert sorts == []
    else:
        assert sorts, "mostly distinct samples are sorted"
    sorted_first = SortedSample(x)  # sorted before it is hashed: its runs come off the sort
    sorted_first()
    sorted_first.hashed()
    assert not sorted_first.few


@pytest.mark.parametrize("dt", [np.uint8, np.uint16, np.uint32, np.uint64])
@pytest.mark.parametrize("cols", [1, 2, 3, 4, 5, 8])
def test_paired_spare_bounds_what_row_modes_spare(dt: Any, cols: int):
    """paired_spare against a numpy reference (each row's pairs of equal non-zero entries
    less its zeros, summed where positive), and above what the rows' exact modes spare over
    zero fills (the mode's count less the row's zeros less one, summed), which the planner's
    test reads: rows of a few values with zeros among them. At every SIMD level (rows of 2-4
    entries are written out, vectorised across rows and summed 4,096 rows at a time), on
    9,000 rows too (two such sums and a part), with entries that differ in one byte only (a
    compare of narrower lanes would take them for equal), read one byte off alignment."""
    from sparsecodecs.codecs import _kernels
    from sparsecodecs.kernels import LEVELS, cpu_simd, use_simd

    levels = [name for name in LEVELS if LEVELS[name] <= LEVELS[cpu_simd()]]
    itemsize = np.dtype(dt).itemsize
    rng = np.random.default_rng(cols * 10 + itemsize)
    for k, rows in ((1, 500), (2, 500), (3, 500), (17, 500), (3, 9000)):
        base = int.from_bytes(b"\x5a" * itemsize, "little")  # and entries a byte off it
        near = [base ^ ((j // itemsize + 1) << (8 * (j % itemsize))) for j in range(k - 1)]
        values = np.array([0, base, *near], dt)
        x = rng.choice(values, (rows, cols))
        raw = np.empty(x.nbytes + 1, np.uint8)
        flat = raw[1:].view(dt)
        flat[:] = x.reshape(-1)
        eq = [(x[:, i] == x[:, j]) & (x[:, i] != 0)
              for i in range(cols) for j in range(i + 1, cols)]
        pairs = np.sum(eq, axis=0) if eq else np.zeros(rows, np.int64)
        zeros = np.count_nonzero(x == 0, axis=1)
        want = int(np.maximum(pairs - zeros, 0).sum())
        for level in levels:
            with use_simd(level):
                assert _kernels.paired_spare(flat, cols) == want, (level, k, rows)
        spared = sum(max(np.unique(row, return_counts=True)[1]) - z - 1
                     for row, z in zip(x[:500], zeros, strict=False))
        assert spared <= want
    with pytest.raises(ValueError, match="do not tile"):
        _kernels.paired_spare(np.zeros(10, dt), 3)
    with pytest.raises(ValueError, match="1 to 8"):
        _kernels.paired_spare(np.zeros(18, dt), 9)


@pytest.mark.parametrize("seed", range(60))
def test_the_row_mode_shortcut_answers_as_the_rows_counted(seed):
    """With a sorted sample that holds every entry, the row-mode test skips counting the rows
    when the tensor's non-zero repeats cannot pass its margin: the answer must be the one the
    counted rows give. Repeats are planted around the margin (size / 256 for 4-byte values)
    up to twice it, in one row or spread over rows, with zeros and rows whose mode is zero."""
    from sparsecodecs.codecs._distinct import sorted_sample
    from sparsecodecs.codecs.hybrid import _row_modes_worth_counting

    rng = np.random.default_rng(seed)
    rows, cols = int(rng.integers(1, 40)), int(rng.integers(1, 300))
    x = rng.integers(1, 1 << 32, (rows, cols), dtype=np.uint64).astype(np.uint32)
    x[rng.random(x.shape) < rng.choice([0.0, 0.0, 0.05, 0.6])] = 0
    margin = x.size // 256
    planted = max(0, margin + int(rng.integers(-3, margin + 4)))  # up to twice the margin
    spread = bool(rng.integers(0, 2))
    for k in range(planted):
        r = int(rng.integers(0, rows)) if spread else 0
        x[r, int(rng.integers(0, cols))] = 5 + (k % 3 if spread else 0)
    zeros = int(np.count_nonzero(x == 0))
    shortcut = _row_modes_worth_counting(x, zeros, sorted_sample(x))
    counted = _row_modes_worth_counting(x, zeros, None)
    assert (shortcut is None) == (counted is None)
    if counted is not None:
        np.testing.assert_array_equal(shortcut, counted)


@pytest.mark.parametrize("short", [0, 1, 2])
def test_no_mode_is_looked_for_where_the_zeros_leave_it_no_margin(short: int, monkeypatch):
    """A mode fill spares at most the non-zero entries less the zeros: with a hair under half
    zeros (an odd size pruned to 50%) it cannot pass the planner's margin, so the sample is not
    hashed or sorted for it, and the frame is the zero fill's. With 15% zeros and a value in
    half the entries the mode is looked for, and kept."""
    from sparsecodecs.codecs import _hybrid_plan
    from sparsecodecs.codecs import hybrid as hy

    calls = []
    real = _hybrid_plan._worth_counting
    monkeypatch.setattr(hy, "_worth_counting", lambda *a, **k: calls.append(1) or real(*a, **k))
    rng = np.random.default_rng(short)
    x = rng.standard_normal((97, 1531)).astype(np.float32)
    flat = x.reshape(-1)
    flat[: flat.size // 2 - short] = 0
    rng.shuffle(flat)
    frame = hybrid().encode(x)
    assert not calls
    assert frame == hybrid(fill="zero").encode(x)
    flat[:] = rng.standard_normal(flat.size)
    flat[rng.random(flat.size) < 0.3] = 0
    flat[rng.random(flat.size) < 0.5] = 0.5
    assert sc.inspect(hybrid().encode(x)).config["fill"] == "mode"
    assert calls


@pytest.mark.parametrize("dtype", [np.float32, ml_dtypes.bfloat16, np.int8])
def test_rows_of_at_most_n_entries_plan_no_nm_and_rows_of_one_no_row_modes(dtype, monkeypatch):
    """A 1x1 convolution's [out, in, 1, 1] weight has rows of one entry: N:M (groups padded to
    m, n values kept a group) would hold every entry and more, and each row's mode is its own
    entry; neither is planned, there or (N:M) for rows of n entries, sparse or not. Rows of
    three entries with a repeated value still get both."""
    from sparsecodecs.codecs import hybrid as hy

    calls: list[str] = []
    for name in ("try_split_groups", "row_modes", "_row_modes_worth_counting"):
        real = getattr(hy, name)
        monkeypatch.setattr(hy, name, lambda *a, _n=name, _r=real, **k: calls.append(_n)
                            or _r(*a, **k))
    rng = np.random.default_rng(0)
    for shape in [(96, 64, 1, 1), (3000, 1), (500, 2), (40, 12, 2)]:
        x = rng.standard_normal(shape) * 30
        x[rng.random(shape) < 0.6] = 0  # sparse: the layouts with an index are planned
        a = x.astype(dtype)
        frame = hybrid().encode(a)
        assert sc.decode(frame).tobytes() == a.tobytes()
        assert "try_split_groups" not in calls, shape
        assert shape[-1] > 1 or not calls, (shape, calls)
        calls.clear()
    x = np.round(rng.standard_normal((400, 3)) * 2)
    x[:, 1] = x[:, 0]  # a value twice a row: its row mode is worth counting
    x[rng.random(x.shape) < 0.3] = 0
    hybrid().encode(x.astype(dtype))
    assert {"try_split_groups", "row_modes" if dtype == np.int8
            else "_row_modes_worth_counting"} <= set(calls)


@pytest.mark.parametrize("cols", [2, 3, 4])
@pytest.mark.parametrize("dtype", [ml_dtypes.bfloat16, np.float16])
def test_narrow_rows_count_their_modes_only_where_their_pairs_allow(cols, dtype, monkeypatch):
    """Rows of at most four entries are asked by their pairs of equal non-zero entries before
    their modes are counted: with no two equal in a row, the modes are never counted; with a
    value at the first and last place of every row, they are, and the per-row fill wins."""
    from sparsecodecs.codecs import _hybrid_plan

    calls = []
    real = _hybrid_plan.row_modes
    monkeypatch.setattr(_hybrid_plan, "row_modes", lambda *a: calls.append(1) or real(*a))
    rng = np.random.default_rng(cols)
    rows = 3000
    distinct = rng.permutation(np.arange(1, 30000))[: rows * cols].reshape(rows, cols)
    x = (distinct.astype(np.uint16) | 0x0400).view(dtype)  # no repeat in a row
    hybrid().encode(x)
    assert not calls
    x = x.copy()
    x[:, -1] = x[:, 0]  # a repeat a row, first and last place, each row its own value
    frame = hybrid().encode(x)
    assert calls
    assert sc.inspect(frame).config["fill"] == "row-mode"
    assert_bits_equal(sc.decode(frame), x)


@pytest.mark.parametrize("cols", [3, 5])
def test_narrow_float32_rows_are_not_sorted_for_their_modes(cols, monkeypatch):
    """Rows of at most four float32 entries are settled by their pairs, not by a sort of every
    value (which wider rows of a small tensor take, its repeats settling the rows): on
    distinct weights of rows of 3, nothing is sorted; of rows of 5, the tensor is."""
    from sparsecodecs.codecs import _distinct

    sorts = []
    real = _distinct.sorted_sample
    monkeypatch.setattr(_distinct, "sorted_sample", lambda v: sorts.append(v.size) or real(v))
    x = np.random.default_rng(cols).standard_normal((2000, cols)).astype(np.float32)
    frame = hybrid().encode(x)
    assert_bits_equal(sc.decode(frame), x)
    assert (x.size in sorts) == (cols > 4)


@settings(max_examples=examples(60), deadline=None)
@example(2, 980, 0.5, 4, "float16", 0)  # a mask costs more than dense here
@given(st.integers(1, 2), st.integers(1, 300), st.floats(0.0, 1.0), st.integers(0, 4),
       st.sampled_from(["float32", "bfloat16", "float16", "int8", "uint8"]), st.integers(0, 99))
def test_rows_of_at_most_n_entries_are_never_larger_than_dense_or_forced_nm(cols, rows, zeros,
                                                                           kind, dtype, seed):
    """Where rows hold at most n entries, dense is planned in N:M's place (N:M's values are the
    dense layout's and more), so hybrid's frame is never larger than dense forced, and never
    larger than N:M forced with one value stage for both (``values="auto"`` plans centroids
    only where under half the values are distinct, and N:M's padding can pass that test where
    the tensor's own values do not). Header aside: the planner weighs sections, and on a
    tensor of four values the headers' DEFLATEd configs differ by a byte or two. With the zero
    fill: under ``fill="auto"`` a tensor of four values can take a mode fill whose header
    costs more than it spares, N:M or not."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, cols)) * 40
    if kind == 1:
        x = np.round(x / 20)  # few distinct values
    elif kind == 2:
        x[rng.random(x.shape) < 0.5] = 7  # a frequent non-zero value
    elif kind == 3:
        x += np.arange(rows)[:, None] % 5  # rows offset
    elif kind == 4:
        x = np.round(x / 80)  # mostly 0, -0.0 (a non-zero pattern), -1 and 1
    x[rng.random(x.shape) < zeros] = 0
    np_dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    if np.dtype(np_dtype).kind in "iu":
        x = np.clip(x, -100, 100) + (100 if dtype == "uint8" else 0)
    a = x.astype(np_dtype)

    def sections(**params: Any) -> int:
        frame = hybrid(fill="zero", **params).encode(a)
        assert sc.decode(frame).tobytes() == a.tobytes()
        return len(frame) - sc.inspect(frame).role_bytes["header"]

    assert sections() <= sections(layout="dense")
    assert sections(values="planes") <= sections(layout="nm", values="planes")


@pytest.mark.parametrize("seed", range(24))
def test_kept_values_sample_read_off_the_whole_tensors_is_the_one_they_sort(seed, monkeypatch):
    """A zero-fill layout's kept values take their sorted sample from the whole tensor's
    (its non-zero tail) when that holds every entry: the frame must be the one planned with
    the kept values sorted on their own. 32-bit tensors, 2:4 or unstructured, with few or many
    distinct values (the centroid stage reads the sample), some small enough for the
    distinct values' short path."""
    from sparsecodecs.codecs import hybrid as hy
    from sparsecodecs.transforms import prune

    rng = np.random.default_rng(seed)
    rows, cols = int(rng.choice([2, 7, 40, 96])), int(rng.choice([8, 64, 300]))
    w = (rng.standard_normal((rows, cols)) * 0.05).astype(np.float32)
    if seed % 3 == 0:
        w = np.round(w * 40) / 40  # a few distinct values: centroids compete
    w = prune(w, "2:4")[0] if seed % 2 else prune(w, None, density=0.5)[0]
    codec = sc.get_codec("hybrid")
    frame = codec.encode(w)
    monkeypatch.setattr(hy, "_kept_sample", lambda whole, cand, size: None)
    assert codec.encode(w) == frame


@pytest.mark.parametrize("seed", range(12))
def test_narrow_layouts_read_their_distinct_values_off_the_used_bins(seed, monkeypatch):
    """8- and 16-bit layouts read their kept values' distinct values off the encode's
    histogram's bins in use, less the fill's while it is taken out: np.unique's of the kept
    values for every layout asked, and the frame the one planned scanning the bins each time.
    Few distinct values (centroids compete), a mode fill or zeros or both, 2:4 or not."""
    import ml_dtypes

    from sparsecodecs.codecs import hybrid as hy
    from sparsecodecs.transforms import prune

    rng = np.random.default_rng(seed)
    dt = [ml_dtypes.bfloat16, np.float16, np.int8][seed % 4 % 3]
    pool = rng.standard_normal(int(rng.choice([3, 16, 40])))
    if seed % 4 == 3:  # rows of three at 2:4, one value in most kept slots: it outnumbers the
        w = prune(rng.choice(pool, (2000, 3)), "2:4")[0]  # zeros, so a zero fill and a mode
        w[(w != 0) & (rng.random(w.shape) < 0.7)] = pool[0]  # fill are both planned
    else:
        w = rng.choice(pool, (96, 64))
    if seed % 4 == 1:
        w = prune(w, "2:4")[0]
        w[w == 0] = w[w != 0][0]  # the zeros clustered to a centroid: a mode fill
    w = np.round(w * 40).astype(dt) if dt == np.int8 else w.astype(dt)
    codec = sc.get_codec("hybrid")
    asked: list[int] = []
    real = hy.Hybrid._value_stages

    def stages(self, values, dtype, counts=None, sample=None, runs=None):
        if callable(runs):  # the used bins, asked here: its layout's fill taken out
            got = runs()
            want = np.unique(values, return_counts=True)
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
            asked.append(values.size)
        return real(self, values, dtype, counts, sample, runs)

    monkeypatch.setattr(hy.Hybrid, "_value_stages", stages)
    frame = codec.encode(w)
    assert asked, "no layout was given the used bins: the test tests nothing"

    def scanning(self, values, dtype, counts=None, sample=None, runs=None):
        return real(self, values, dtype, counts, sample, None if callable(runs) else runs)

    monkeypatch.setattr(hy.Hybrid, "_value_stages", scanning)
    assert codec.encode(w) == frame


def test_used_bins_less_a_taken_out_bin_are_np_unique():
    """_UsedBins: the histogram's bins in use as values of the dtype, with their counts; a bin
    taken out (set to 0) while it is asked is left out, and back once restored, whichever
    layout asked first (the first call inside a block taking a bin out: that bin is in use)."""
    from sparsecodecs.codecs._hybrid_plan import _UsedBins, _without_bin

    rng = np.random.default_rng(0)
    values = rng.choice(np.array([0, 3, 70, 65535], np.uint16), 5000)
    counts = np.bincount(values, minlength=1 << 16).astype(np.int64)
    u, c = np.unique(values, return_counts=True)
    for first in (None, 70, 0):  # asked first outside a block, or inside one taking out 70 or 0
        used = _UsedBins(counts, np.dtype(np.uint16))
        for out in [first, *{None, 70, 0} - {first}]:
            with _without_bin(counts, out):
                got = used(out)
            keep = u != out
            np.testing.assert_array_equal(got[0], u[keep])
            np.testing.assert_array_equal(got[1], c[keep])
            assert got[0].dtype == np.uint16


@pytest.mark.parametrize("size", [10, 3000, 70000, 200000])
def test_distinct_values_given_their_runs_answer_as_without(size):
    """distinct_values told the values' distinct values and counts answers as it does finding
    them, give-up test included: distinct counts on either side of the sample's cap (half the
    sample) and of the limit, samples holding every value or every third."""
    from sparsecodecs.codecs._distinct import _sample_of, distinct_values

    rng = np.random.default_rng(size)
    sampled = _sample_of(np.empty(size)).size
    for limit in (40, 1 << 16):
        cap = min(limit, sampled // 2)
        for distinct in {1, cap - 1, cap, cap + 1, limit, limit + 1, min(size, 2 * cap + 3)}:
            if not 0 < distinct <= size:
                continue
            # distinct non-zero patterns: an odd multiplier permutes 32-bit integers
            pool = ((np.arange(1, distinct + 1, dtype=np.uint64) * np.uint64(2654435761))
                    & np.uint64(0xFFFFFFFF)).astype(np.uint32)
            values = rng.permutation(
                np.concatenate([pool, pool[rng.integers(0, distinct, size - distinct)]]))
            runs = np.unique(values, return_counts=True)
            for early in (True, False):
                want = distinct_values(values, limit, give_up_early=early)
                got = distinct_values(values, limit, give_up_early=early, runs=runs)
                assert (got is None) is (want is None), (limit, distinct, early)
                if want is not None:
                    np.testing.assert_array_equal(got[0], want[0])
                    np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("seed", range(24))
def test_kept_values_runs_read_off_the_whole_tensors_are_their_own(seed, monkeypatch):
    """A layout with one fill item takes its kept values' distinct values and counts from the
    whole tensor's, once those are known: they must be np.unique's of the kept values, and the
    frame the one planned without them. Wide tensors of a few distinct values (centroids
    compete), past 131,072 entries (the whole tensor sorted apart from its sample) or not,
    repeating a non-zero value (a mode fill), 2:4 or not, or a quarter zeros (a zero fill)."""
    from sparsecodecs.codecs import hybrid as hy
    from sparsecodecs.transforms import prune

    rng = np.random.default_rng(seed)
    rows, cols = [(300, 500), (96, 64), (384, 384), (40, 300), (3000, 3), (500, 7)][seed % 6]
    dt = [np.float32, np.int32, np.float64][seed % 3]
    w = rng.choice(rng.standard_normal(int(rng.choice([3, 16, 300]))), (rows, cols))
    if seed % 2:  # 2:4, its zeros then clustered to a non-zero centroid (the bench's cells)
        w = prune(w, "2:4")[0]
        w[w == 0] = w[w != 0][0]
    elif seed % 4:  # a quarter zeros: dense is planned, then a mask of the zeros
        w[rng.random(w.shape) < 0.25] = 0
    else:
        w = np.where(rng.random(w.shape) < 0.6, w[0, 0], w)
    w = np.round(w * 1000).astype(dt) if np.dtype(dt).kind == "i" else w.astype(dt)
    codec = sc.get_codec("hybrid")
    real, read = hy._kept_runs, []

    def checked(whole, cand, size):
        runs = real(whole, cand, size)
        if runs is not None:
            want_u, want_c = np.unique(cand.values, return_counts=True)
            np.testing.assert_array_equal(runs[0], want_u)
            np.testing.assert_array_equal(runs[1], want_c)
            read.append((cand.name, cand.fill is None))
        return runs

    monkeypatch.setattr(hy, "_kept_runs", checked)
    frame = codec.encode(w)
    assert read, "no layout read its runs off the whole tensor's: the test tests nothing"
    if seed % 4 == 2:
        assert ("bitmask", True) in read  # the zero fill's runs: the tensor's less its first
    if seed % 6 == 5:
        assert ("nm", False) in read  # rows of 7 in groups of 4: the padding holds the fill
    monkeypatch.setattr(hy, "_kept_runs", lambda whole, cand, size: None)
    assert codec.encode(w) == frame


def test_rows_of_distinct_values_plan_no_row_mode_fill():
    """A row's mode fill stores one value a row: on rows of distinct values (float32 weights)
    it spares nothing, and the planner must not lay out (mask, value plan) a candidate for it."""
    w = np.random.default_rng(0).standard_normal((768, 80)).astype(np.float32)
    bits = w.view(np.uint32)
    planned = [c.name for c in sc.get_codec("hybrid")._candidates(bits, w.dtype)]
    assert planned == ["dense"]
    w[:, :3] = 0.5  # a repeated value in every row: now worth a look
    planned = [(c.name, c.fill_label) for c in sc.get_codec("hybrid")._candidates(
        w.view(np.uint32), w.dtype)]
    assert ("bitmask", "mode") in planned or ("bitmask", "row-mode") in planned


def test_long_rows_of_wide_values_are_not_sorted_whole(monkeypatch):
    """A float32 tensor under 131,072 values whose rows are longer than 127 entries has its
    rows' sampled modes counted and its values hashed, not every value sorted (a 128x576
    encode: 630 -> 458 us), with the same fills: none on distinct weights, row modes where
    each row repeats a value of its own, the mode where the tensor repeats one."""
    from sparsecodecs.codecs import _distinct, _kernels

    sorted_sizes: list[int] = []
    real = _kernels.sorted_bits
    monkeypatch.setattr(_distinct, "sorted_bits",
                        lambda v: sorted_sizes.append(v.size) or real(v))
    rng = np.random.default_rng(5)
    w = (rng.standard_normal((128, 576)) * 0.05).astype(np.float32)
    frame = hybrid().encode(w)
    assert w.size not in sorted_sizes
    assert "fill" not in split_frame(frame)[0]["config"]
    rows = w.copy()
    rows[:, ::2] = np.arange(128, dtype=np.float32)[:, None] * 0.01 + 1
    mode = w.copy()
    mode[:, ::2] = np.float32(0.5)
    for x, fill in ((rows, "row-mode"), (mode, "mode")):
        frame = hybrid().encode(x)
        assert_bits_equal(sc.decode(frame), x)
        assert split_frame(frame)[0]["config"]["fill"] == fill


@pytest.mark.parametrize("dt", [ml_dtypes.bfloat16, np.float16])
def test_fill_candidates_share_one_histogram(dt: Any):
    """A 16-bit tensor with zeros, a frequent non-zero value and noise: the zero, mode and
    dense candidates are planned from one histogram, each with its own fill's bin taken out
    and put back. The auto frame is bit-exact and no larger than any fill asked for by name.
    (A bin left out stays unseen here, the chosen frame being the same; the put-back itself is
    test_a_candidates_bin_is_put_back's.)"""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 128)).astype(np.float32)
    x[rng.random(x.shape) < 0.35] = 0.25  # the mode
    x[rng.random(x.shape) < 0.3] = 0.0
    a = x.astype(dt)
    frame = sc.get_codec("hybrid").encode(a)
    assert sc.decode(frame).view(np.uint16).tobytes() == a.view(np.uint16).tobytes()
    named = [len(sc.get_codec("hybrid", fill=f).encode(a)) for f in ("zero", "mode", "row-mode")]
    assert len(frame) <= min(named)


@pytest.mark.parametrize("dt", [ml_dtypes.bfloat16, np.float16, np.int8])
@pytest.mark.parametrize("kind", ["2:4", "2:4 ragged", "unstructured", "just half", "clustered"])
def test_half_zero_tensors_plan_as_from_the_whole_tensors_counts(dt: Any, kind: str):
    """A tensor at least half zeros (at least COUNT_PATTERNS_FROM non-zeros) is planned
    without counting its own patterns: the value stages count the kept values instead. The
    frame must be the one planned from the whole tensor's counts (each candidate's fill bin
    taken out), byte for byte: fails if the shortcut plans anything else."""
    from sparsecodecs.codecs._stages import COUNT_PATTERNS_FROM, lent_value_counts

    rng = np.random.default_rng(len(kind))
    cols = 126 if kind == "2:4 ragged" else 128  # ragged: groups cross rows, no byte maths
    x = rng.standard_normal((160, cols)).astype(np.float32) * 4
    if kind == "clustered":
        x = rng.choice(x.reshape(-1)[:16], x.shape)
    if kind.startswith("2:4") or kind == "clustered":
        x = prune_24(x[:, :cols - cols % 4]) if cols % 4 == 0 else np.concatenate(
            [prune_24(x[:, :124]), np.zeros((160, 2), np.float32)], axis=1)
    else:
        x[rng.random(x.shape) < (0.6 if kind == "unstructured" else 0.5)] = 0
    if kind == "just half":  # exactly half zeros: the boundary
        flat = x.reshape(-1)
        flat[:] = np.where(np.arange(flat.size) % 2 == 0, 0, np.where(flat == 0, 1.5, flat))
    a = x.astype(dt)
    bits = a.view(np.uint16 if a.itemsize == 2 else np.uint8)
    nnz = int(np.count_nonzero(bits))
    assert 2 * nnz <= bits.size and nnz >= COUNT_PATTERNS_FROM  # the shortcut's case
    codec = sc.get_codec("hybrid")
    got = codec.encode_bits(bits, a.dtype)
    with lent_value_counts(bits) as counts:
        assert counts is not None
        want = codec._encode_planned(bits, a.dtype, counts)
    assert (got.meta, got.config) == (want.meta, want.config)
    assert [(s.name, s.role, bytes(np.asarray(s.data).reshape(-1).view(np.uint8)))
            for s in got.sections] == [(s.name, s.role, bytes(
                np.asarray(s.data).reshape(-1).view(np.uint8))) for s in want.sections]


def test_a_candidates_bin_is_put_back():
    """The planner takes a fill's bin out of the shared histogram only while it plans that
    candidate: back afterwards, and after an error too."""
    from sparsecodecs.codecs.hybrid import _without_bin

    counts = np.arange(5, dtype=np.int64) + 10
    with _without_bin(counts, 3):
        assert counts.tolist() == [10, 11, 12, 0, 14]
    assert counts.tolist() == [10, 11, 12, 13, 14]
    with pytest.raises(RuntimeError), _without_bin(counts, 0):
        raise RuntimeError
    assert counts.tolist() == [10, 11, 12, 13, 14]
    with _without_bin(counts, None), _without_bin(None, 2):
        assert counts.tolist() == [10, 11, 12, 13, 14]


def test_lent_value_counts_are_value_counts_call_after_call():
    """The planner's pattern counts come from tables each thread keeps: every block's table
    holds exactly value_counts of its values (fails if a kept table is not cleared), nested
    blocks get different tables, and wide inputs, few 8-bit ones and none get None."""
    from concurrent.futures import ThreadPoolExecutor

    from sparsecodecs.codecs._stages import lent_value_counts, value_counts

    def check(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for i in range(6):
            dt = (np.uint8, np.uint16)[i % 2]
            v = rng.integers(0, 1 << (8 * np.dtype(dt).itemsize), 5000 + i).astype(dt)
            w = rng.integers(0, 9, 6000).astype(np.uint16)
            with lent_value_counts(v) as a, lent_value_counts(w) as b:
                assert a is not None and b is not None and a is not b
                np.testing.assert_array_equal(a, value_counts(v))
                np.testing.assert_array_equal(b, value_counts(w))

    check(0)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(check, range(1, 9)))
    for v in (np.zeros(5000, np.uint32), np.zeros(100, np.uint8), np.zeros(0, np.uint16)):
        with lent_value_counts(v) as c:
            assert c is None
    small = np.arange(100, dtype=np.uint16)  # 16-bit values are counted however few
    with lent_value_counts(small) as c:
        assert c is not None
        np.testing.assert_array_equal(c, np.bincount(small, minlength=1 << 16))


def test_lent_buffer_gives_back_what_it_lent_unless_told_not_to():
    """lent_buffer: a block that raises gives its buffer back only with keep_on_error (the
    row-mode table, whose kernel leaves it zeroed, says no: a failed call may have left counts
    in it); a pool keeps its ``keep`` largest; a buffer over max_bytes is never kept; zeroed
    asks for a zeroed new buffer (a kept one holds what its block left)."""
    from sparsecodecs.codecs._common import _POOLS, lent_buffer

    def pool(name: str) -> list[np.ndarray]:
        return _POOLS.__dict__.setdefault(name, [])

    for name in ("t_err", "t_keep", "t_big", "t_zero"):
        pool(name).clear()
    with pytest.raises(KeyError), lent_buffer("t_err", 8, np.int64, keep=2,
                                              keep_on_error=False) as a:
        a[:] = 5
        raise KeyError("x")
    assert pool("t_err") == []
    with pytest.raises(KeyError), lent_buffer("t_err", 8, np.int64, keep=2) as a:
        raise KeyError("x")
    kept = a.base if a.base is not None else a
    assert len(pool("t_err")) == 1 and pool("t_err")[0] is kept
    with lent_buffer("t_err", 4, np.int64, keep=2, zeroed=True) as b:  # the kept one, lent
        assert b.base is kept and pool("t_err") == []
    assert pool("t_err")[0] is kept
    # three taken at once, three given back: the two largest stay
    with lent_buffer("t_keep", 16, np.uint8, keep=2) as x, lent_buffer(
            "t_keep", 32, np.uint8, keep=2) as y, lent_buffer("t_keep", 64, np.uint8, keep=2) as z:
        assert x.size == 16 and y.size == 32 and z.size == 64
    assert sorted(b.size for b in pool("t_keep")) == [32, 64]
    with lent_buffer("t_big", 100, np.uint8, keep=2, max_bytes=99):
        pass
    assert pool("t_big") == []
    with lent_buffer("t_zero", 10, np.int64, keep=1, zeroed=True) as fresh:
        assert not fresh.any()


def test_lent_scratch_is_kept_per_thread_and_never_shared(monkeypatch):
    """The planner's scratch: the block gets exactly the bytes asked for; a later block reuses
    the buffer (no new allocation), a nested block gets another one, threads get their own,
    and a buffer above the cap is not kept. A hybrid encode that codes fields still writes
    the goldens' bytes (test_golden) and round-trips on four threads at once."""
    from concurrent.futures import ThreadPoolExecutor

    from sparsecodecs.codecs import _stages

    for _ in range(2):  # kept buffers first: the nested block must not get the outer's
        with _stages.lent_scratch(1000), _stages.lent_scratch(1000):
            pass
    with _stages.lent_scratch(1000) as a:
        assert a.size == 1000 and a.dtype == np.uint8
        base_a = a.base if a.base is not None else a
        with _stages.lent_scratch(10) as b:
            base_b = b.base if b.base is not None else b
            assert base_b is not base_a
    with _stages.lent_scratch(900) as c:
        assert c.size == 900 and any(c.base is k for k in (base_a, base_b))  # reused

    def other_thread(_: int) -> bool:
        with _stages.lent_scratch(100) as d:
            return any(d.base is k for k in (base_a, base_b))

    with ThreadPoolExecutor(2) as pool:
        assert not any(pool.map(other_thread, range(4)))
    monkeypatch.setattr(_stages, "KEEP_SCRATCH_BYTES", 1 << 17)
    with _stages.lent_scratch(1 << 18) as big:
        big_base = big.base
    with _stages.lent_scratch(1 << 18) as again:
        assert again.base is not big_base  # above the cap: dropped, made anew

    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((96, 96)).astype(np.float16) for _ in range(8)]
    codec = sc.get_codec("hybrid")

    def round_trip(x: np.ndarray) -> bool:
        frame = codec.encode(x)
        return sc.decode(frame).tobytes() == x.tobytes() and frame == codec.encode(x)

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(round_trip, xs))


@pytest.mark.parametrize(("n", "m"), [(2, 4), (1, 2), (1, 4), (3, 4), (4, 8), (2, 8)])
def test_nm_code_counts_from_mask_bytes(n: int, m: int):
    """The N:M code histogram from a mask's byte histogram is the group-by-group count (the
    groups of every byte that occurs, each counted as often as the byte): None as soon as a
    group does not hold n bits; counts up to 2**40 a byte stay exact."""
    from sparsecodecs.codecs._nm import nm_tables
    from sparsecodecs.codecs.hybrid import _nm_code_counts

    tables = nm_tables(n, m)
    rng = np.random.default_rng(n * 10 + m)
    groups = [[(b >> (j * m)) & ((1 << m) - 1) for j in range(8 // m)] for b in range(256)]
    valid = [b for b in range(256) if all(tables.code_of[g] >= 0 for g in groups[b])]
    for trial in range(40):
        pool = valid if trial % 2 else range(256)
        mask_counts = np.zeros(256, np.int64)
        picked = rng.choice(list(pool), int(rng.integers(1, len(pool))))
        mask_counts[picked] = rng.integers(1, 1 << 40, picked.size)
        want = np.zeros(tables.ncodes, np.int64)
        ok = True
        for b in np.flatnonzero(mask_counts):
            for g in groups[b]:
                if tables.code_of[g] < 0:
                    ok = False
                want[max(int(tables.code_of[g]), 0)] += mask_counts[b]
        got = _nm_code_counts(mask_counts, tables)
        assert (got is None) if not ok else np.array_equal(got, want)


def test_sorted_runs_kernel_refuses_outputs_too_small():
    """The compiled runs write one value and one count per run, up to one per item: outputs
    shorter than the input, or of another item size, are refused before it writes."""
    from sparsecodecs.kernels import _native

    s = np.arange(10, dtype=np.uint16)
    for values, counts in [(np.empty(9, np.uint16), np.empty(10, np.int64)),
                           (np.empty(10, np.uint16), np.empty(9, np.int64)),
                           (np.empty(10, np.uint32), np.empty(10, np.int64))]:
        with pytest.raises(ValueError, match="sorted_runs"):
            _native.sorted_runs(s, values, counts)
    values, counts = np.empty(10, np.uint16), np.empty(10, np.int64)
    assert _native.sorted_runs(s, values, counts) == 10


@pytest.mark.parametrize("dt", [np.uint8, np.uint16, np.uint32, np.uint64])
@pytest.mark.parametrize("size", [0, 1, 7, 4095, 70000, 131071, 131072, 200000])
def test_unique_counts_is_np_unique(dt: Any, size: int):
    """The planner's distinct values and counts (from the sorted sample's runs while it holds
    every value, else numpy's) are np.unique's, with a sample given or not."""
    from sparsecodecs.codecs._distinct import SortedSample, unique_counts

    rng = np.random.default_rng(size)
    v = rng.integers(0, 50 if size % 2 else 1 << 20, size).astype(dt)
    want_u, want_c = np.unique(v, return_counts=True)
    for sample in (None, SortedSample(v)):
        u, c = unique_counts(v, sample)
        assert u.dtype == v.dtype and c.dtype == np.int64
        np.testing.assert_array_equal(u, want_u)
        np.testing.assert_array_equal(c, want_c)


def _pruned_as_unpruned(w: np.ndarray, calls: list[bool], monkeypatch: Any) -> bytes:
    """``w``'s hybrid frame, with each answer of ``_mask_loses`` appended to ``calls``,
    checked to be the frame planned with every mask built."""
    from sparsecodecs.codecs import hybrid as hy

    loses = hy._mask_loses

    def spy(*args: Any) -> bool:
        calls.append(loses(*args))
        return calls[-1]

    codec = sc.get_codec("hybrid")
    monkeypatch.setattr(hy, "_mask_loses", spy)
    frame = codec.encode(w)
    monkeypatch.setattr(hy, "_mask_loses", lambda *args: False)
    assert codec.encode(w) == frame
    monkeypatch.setattr(hy, "_mask_loses", loses)
    return frame


@pytest.mark.parametrize("dt", [ml_dtypes.bfloat16, np.float16])
def test_a_mask_pruned_by_its_least_size_would_not_have_won(dt: Any, monkeypatch):
    """A bitmask layout is not built when its least size (a bit per mask byte, the kept
    values' entropy) loses to the plan at hand: the frames are the ones planned with every
    mask built, from a dense tensor with no zeros through one with a few percent zeros or
    copies of one value, where the mask starts to win. (Float32 patterns are not counted
    whole, so they have no entropy to prune by.)"""

    rng = np.random.default_rng(7)
    base = (rng.standard_normal((768, 384)) * 0.05).astype(dt).reshape(-1)
    calls: list[bool] = []
    layouts = set()
    counts = [0, 1, 30, 300, 1000, 3000, 4000, 5000, 6000]
    for fill_value, count in itertools.product([0.0, 0.25], counts):
        w = base.copy()
        w[rng.choice(w.size, count, replace=False)] = fill_value
        frame = _pruned_as_unpruned(w, calls, monkeypatch)
        layouts.add(sc.inspect(frame).config["layout"])
    assert any(calls) and not all(calls)  # pruned some masks, built others
    assert layouts == {"dense", "bitmask"}


def test_a_row_mode_mask_pruned_by_its_least_size_would_not_have_won(monkeypatch):
    """The same for a per-row fill: rows of 80 bfloat16 values, as an LSTM's gates, with each
    row's first value copied into none to many of its other entries. The rows' modes of the
    random rows, and of one copy, spare enough values to be planned but lose: those masks are
    pruned; from three copies a row-mode mask wins."""

    rng = np.random.default_rng(8)
    base = (rng.standard_normal((768, 80)) * 0.05).astype(ml_dtypes.bfloat16)
    calls: list[bool] = []
    fills = set()
    for copies in [0, 1, 2, 3, 6, 16]:
        w = base.copy()
        for r in range(w.shape[0]):
            w[r, rng.choice(np.arange(1, w.shape[1]), copies, replace=False)] = w[r, 0]
        fills.add(sc.inspect(_pruned_as_unpruned(w, calls, monkeypatch)).config.get("fill"))
    assert any(calls) and not all(calls)
    assert fills == {None, "row-mode"}


@pytest.mark.parametrize("dt", [ml_dtypes.bfloat16, np.float16])
def test_the_stages_floor_is_the_least_of_the_stages_entropies(dt: Any):
    """stages_floor against the entropies computed here from the rotated bit patterns (the
    sign bit moved to the bottom): top fields of 9-12 bits plus the raw low bits, the two byte
    planes, the centroid codebook plus the values' entropy; the least of them, in bytes."""
    from sparsecodecs.codecs._stages import stages_floor

    bits = (np.random.default_rng(3).standard_normal(20000) * 0.05).astype(dt).view(np.uint16)
    rot = ((bits.astype(np.int64) << 1) | (bits >> 15)) & 0xFFFF

    def entropy(x: np.ndarray) -> float:
        c = np.bincount(x)
        c = c[c > 0].astype(np.float64)
        return float(c.sum() * np.log2(c.sum()) - (c * np.log2(c)).sum())

    n = bits.size
    fields = min(entropy(rot >> (16 - t)) + n * (16 - t) for t in range(9, 13))
    planes = entropy(rot >> 8) + entropy(rot & 0xFF)
    centroid = 2 * np.unique(bits).size * 8 + entropy(bits)
    want = min(fields, planes, centroid) / 8
    got = stages_floor(np.bincount(bits, minlength=1 << 16).astype(np.int64), np.dtype(dt), n)
    assert want - 3 <= got <= want  # the floor rounds down, a byte or two past float error


@settings(max_examples=examples(60), deadline=None)
@given(pool=st.lists(st.integers(0, 65535), min_size=1, max_size=300, unique=True),
       picks=st.lists(st.integers(0, 299), min_size=1, max_size=3000),
       normal=st.integers(0, 20000), seed=st.integers(0, 2**32 - 1),
       dt=st.sampled_from([ml_dtypes.bfloat16, np.float16, np.int16]))
def test_the_stages_floor_never_exceeds_a_planned_stage(pool: list[int], picks: list[int],
                                                        normal: int, seed: int, dt: Any):
    """stages_floor (what prunes a mask) is at most every value stage's planned size, on
    values drawn unevenly from a pool of bit patterns (some top fields, planes and values
    repeat, others do not) followed by ``normal`` values of a bell curve (thousands of
    distinct values: the fields' floor is the least)."""
    from sparsecodecs.codecs import _huffman as huff
    from sparsecodecs.codecs._distinct import distinct_values
    from sparsecodecs.codecs._stages import plan_centroids, plan_fields, plan_planes, stages_floor

    bell = (np.random.default_rng(seed).standard_normal(normal) * 0.05).astype(dt)
    bits = np.concatenate([np.array([pool[p % len(pool)] for p in picks], np.uint16),
                           bell.view(np.uint16)])
    v = bits  # the planners take the bit patterns, as hybrid hands them over
    dtype = np.dtype(dt)
    floor = stages_floor(np.bincount(bits, minlength=1 << 16).astype(np.int64), dtype, v.size)
    sizes = [plan_planes(v, dtype, huff.MAX_LENGTH).nbytes]
    fields = plan_fields(v, dtype, huff.MAX_LENGTH)
    if fields is not None:
        sizes.append(fields.nbytes)
    distinct = distinct_values(v, give_up_early=False)
    assert distinct is not None
    sizes.append(plan_centroids(v.size, distinct, huff.MAX_LENGTH).nbytes)
    assert floor <= min(sizes)


# -- top fields in blocks ----------------------------------------------------------------------


def shifting(dtype: Any, rows: int = 2048, cols: int = 516, seed: int = 0) -> np.ndarray:
    """Values whose scale changes along the rows: small, then medium, then large, as a word
    embedding's rows of unused tokens differ from the rest (2048x516: just over the least the
    planner tries blocks on, eight blocks of 2**17 and a ninth of 8192, coded as one stream
    where the others have four)."""
    x = np.random.default_rng(seed).standard_normal((rows, cols)) * 0.05
    x[: rows // 8] *= 0.01
    x[rows - rows // 8 :] *= 30
    return x.astype(dtype)


def top_sections(frame: bytes) -> list[str]:
    return [name for name, _, _ in split_frame(frame)[0]["sections"] if name.startswith("v.top")]


@pytest.mark.parametrize("dt", [np.float16, ml_dtypes.bfloat16, np.float32])
def test_top_fields_that_change_along_a_large_tensor_are_coded_in_blocks(dt: Any, monkeypatch):
    """Each block of 2**17 top fields its own code (meta ``fields_block``, sections
    ``v.top.<j>.codebook`` / ``.bits``): bit-exact on one and two threads, and smaller than
    the frame the planner writes when it may not use blocks."""
    from sparsecodecs.codecs import _huffman as huff
    from sparsecodecs.codecs import _stages

    x = shifting(dt)
    frame = hybrid().encode(x)
    assert split_frame(frame)[0]["meta"]["fields_block"] == huff.BLOCK_SYMBOLS
    nblocks = -(-x.size // huff.BLOCK_SYMBOLS)
    assert top_sections(frame) == [f"v.top.{j}.{part}" for j in range(nblocks)
                                   for part in ("codebook", "bits")]
    assert_bits_equal(sc.decode(frame), x)
    assert_bits_equal(sc.decode(frame, threads=2), x)
    monkeypatch.setattr(_stages, "BLOCKS_FROM", 1 << 62)
    one = hybrid().encode(x)
    assert top_sections(one) == ["v.top.codebook", "v.top.bits"]
    assert len(frame) < 0.97 * len(one)


def test_kept_values_in_blocks_decode_through_every_path():
    """A 45%-sparse tensor whose kept values' top fields are coded in blocks (a bitmask
    frame): bit-exact on one thread and on two (the mask and the values side by side), and
    its product equals the dense one's."""
    rng = np.random.default_rng(3)
    x = shifting(np.float32, rows=4096, cols=600).astype(np.float64)
    x[rng.random(x.shape) < 0.45] = 0
    w = x.astype(np.float16)
    frame = hybrid().encode(w)
    header = split_frame(frame)[0]
    assert header["config"]["layout"] == "bitmask" and "fields_block" in header["meta"]
    assert_bits_equal(sc.decode(frame), w)
    assert_bits_equal(sc.decode(frame, threads=2), w)
    xin = rng.standard_normal((2, 600)).astype(np.float32)
    np.testing.assert_allclose(sc.matmul(xin, frame), xin @ w.astype(np.float32).T,
                               rtol=1e-5, atol=1e-5)


def test_the_planner_reads_a_quarter_of_each_block(monkeypatch):
    """The blocks' test and their codes come from the first quarter of each block (one
    histogram a block, nothing counted whole): a large tensor of one distribution keeps one
    code, the tensor whose scale changes is planned in blocks, from the same reads."""
    from sparsecodecs.codecs import _huffman as huff
    from sparsecodecs.codecs import _huffman_kernels as hk
    from sparsecodecs.codecs import _stages

    calls: list[int] = []
    top_histogram = hk.top_histogram
    monkeypatch.setattr(hk, "top_histogram",
                        lambda values, *a: calls.append(values.size) or top_histogram(values, *a))
    size = 2048 * 516
    sizes = [b - a for a, b in huff.block_bounds(size, 1 << 17)]
    assert sizes == [1 << 17] * 8 + [8192]
    reads = [size] + [n // 4 for n in sizes]  # the top fields' histogram (no ``fine``), blocks
    plan = _stages.plan_fields(gaussian((2048, 516), np.float16).view(np.uint16).reshape(-1),
                               np.dtype(np.float16), 15)
    assert plan is not None and plan.block == 0
    assert calls == reads
    calls.clear()
    plan = _stages.plan_fields(shifting(np.float16).view(np.uint16).reshape(-1),
                               np.dtype(np.float16), 15)
    assert plan is not None and plan.block == 1 << 17 and plan.block_counts is not None
    assert calls == reads
    # every top field the tensor has gets a code in every block, seen in its quarter or not
    assert (plan.block_counts > 0).all(axis=0).tolist() == (plan.counts > 0).tolist()


def test_blocks_whose_quarters_mislead_give_way_to_one_code(monkeypatch):
    """Blocks whose first quarters differ from each other (so the sample promises a gain) but
    whose other three quarters are all alike (so codes built from the quarters lose): the
    encoder codes the blocks, finds them larger than one code and writes the one code, the
    same bytes as when blocks are not tried at all."""
    from sparsecodecs.codecs import _stages

    rng = np.random.default_rng(5)
    x = rng.standard_normal((9, 1 << 17)) * 0.05
    for j in range(9):  # the first quarter of block j at its own scale
        x[j, : 1 << 15] *= 10.0 ** (j % 3 - 1)
    w = x.astype(np.float16)
    planned: list[int] = []
    plan_fields = _stages.plan_fields
    monkeypatch.setattr(_stages, "plan_fields", lambda *a: planned.append(
        (p := plan_fields(*a)) is not None and p.block) or p)
    import sparsecodecs.codecs.hybrid as hybrid_module
    monkeypatch.setattr(hybrid_module, "plan_fields", _stages.plan_fields)
    frame = hybrid(values="fields").encode(w)
    assert planned == [1 << 17]  # planned in blocks ...
    assert "fields_block" not in split_frame(frame)[0]["meta"]  # ... written as one code
    assert_bits_equal(sc.decode(frame), w)
    monkeypatch.setattr(_stages, "BLOCKS_FROM", 1 << 62)
    assert hybrid(values="fields").encode(w) == frame


@pytest.fixture(scope="module")
def blocked() -> tuple[bytes, dict[str, Any], np.ndarray]:
    x = shifting(np.float16)
    frame = hybrid().encode(x)
    return frame, split_frame(frame)[0]["meta"], x


@pytest.mark.parametrize("block", [0, 1, 512, 1000, 3 << 16, 1 << 25, -(1 << 17), "131072",
                                   True, 131072.0, None, [131072]])
def test_hostile_fields_block(blocked: tuple[bytes, dict[str, Any], np.ndarray], block: object):
    frame, meta, _ = blocked
    if block is None:  # a frame in blocks that says nothing of them: one code is looked for
        meta = {k: v for k, v in meta.items() if k != "fields_block"}
        assert_layout_error(reframe(frame, header={"meta": meta}),
                            "section 'v.top.codebook' is missing")
        return
    assert_layout_error(reframe(frame, header={"meta": {**meta, "fields_block": block}}),
                        "meta 'fields_block' is")


def test_hostile_blocks_that_do_not_match_the_sections(
    blocked: tuple[bytes, dict[str, Any], np.ndarray],
):
    frame, meta, _ = blocked
    # smaller blocks: more of them than the frame has sections, refused before listing them
    assert_layout_error(reframe(frame, header={"meta": {**meta, "fields_block": 1 << 16}}),
                        "65536 are 17 blocks of two sections each, and the frame has 19")
    assert_layout_error(reframe(frame, header={"meta": {**meta, "fields_block": 1 << 10}}),
                        "1024 are 1032 blocks of two sections each, and the frame has 19")
    # a block's section under another name
    table = [[("v.top.7.book" if name == "v.top.7.codebook" else name), role, size]
             for name, role, size in split_frame(frame)[0]["sections"]]
    assert_layout_error(reframe(frame, header={"sections": table}),
                        "section 'v.top.7.codebook' is missing")
    # twice the block: each block's code would cover two blocks' symbols
    with pytest.raises(FrameLayoutError):
        sc.decode(reframe(frame, header={"meta": {**meta, "fields_block": 1 << 18}}))
    # blocks on a frame of one code
    one = hybrid(values="fields").encode(gaussian((64, 64), np.float16))
    meta1 = split_frame(one)[0]["meta"]
    assert_layout_error(reframe(one, header={"meta": {**meta1, "fields_block": 1 << 17}}),
                        "section 'v.top.0.codebook' is missing")


def test_hostile_bytes_in_one_block_are_named_by_its_sections(
    blocked: tuple[bytes, dict[str, Any], np.ndarray],
):
    frame, _, x = blocked
    _, payloads = split_frame(frame)
    names = [name for name, _, _ in split_frame(frame)[0]["sections"]]
    bits = payloads[names.index("v.top.3.bits")]
    with pytest.raises(FrameLayoutError, match=r"section 'v\.top\.3'"):
        sc.decode(reframe(frame, sections={"v.top.3.bits": bits[: len(bits) // 2]}))
    book = payloads[names.index("v.top.5.codebook")]
    with pytest.raises(FrameLayoutError, match=r"section 'v\.top\.5'"):
        sc.decode(reframe(frame, sections={"v.top.5.codebook": book[:-3]}))
    assert_bits_equal(sc.decode(frame), x)  # the frame itself was fine


#: A frame in blocks written with blocks of 1024 top fields (the encoder's 2**17 would need a
#: golden frame of megabytes): the array and the frame, committed; see the test below.
BLOCKS_GOLDEN = Path(__file__).parent / "golden" / "blocks"


def blocks_golden_array() -> np.ndarray:
    """9000 float16 values, each block of 1024 of its own exponent (15 down to 7), two top
    mantissa patterns, random signs and low mantissa bits: per block two top fields, eighteen
    in all, so that blocks pay even at 1024 values and codes built from 256 of them."""
    rng = np.random.default_rng(0)
    i = np.arange(9000)
    bits = ((rng.integers(0, 2, i.size) << 15) | ((15 - i // 1024) << 10)
            | (rng.choice([0, 8], i.size) << 6) | rng.integers(0, 64, i.size))
    return bits.astype(np.uint16).view(np.float16)


def blocks_golden(stem: str) -> tuple[list[bytes], bytes]:
    """(every format version's committed frame of ``stem`` in tests/golden/blocks, the current
    version's): ``<stem>.spcf`` was written in version 2, ``<stem>.v<N>.spcf`` in version N >= 3.
    Each must decode; the encoder must write the current one again."""
    from sparsecodecs.registry import FORMAT_VERSION

    frames = [(BLOCKS_GOLDEN / f"{stem}.spcf").read_bytes()]
    frames += [(BLOCKS_GOLDEN / f"{stem}.v{v}.spcf").read_bytes()
               for v in range(3, FORMAT_VERSION + 1)]
    return frames, frames[-1]


def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    from sparsecodecs.codecs import _huffman as huff
    from sparsecodecs.codecs import _stages

    monkeypatch.setattr(huff, "BLOCK_SYMBOLS", 1024)
    monkeypatch.setattr(_stages, "BLOCKS_FROM", 8 * 1024)


def test_the_golden_frame_in_blocks_decodes_and_is_written_again(monkeypatch):
    """The committed frame in blocks (blocks of 1024, nine of them, the last partial) decodes to
    its committed array; with the encoder's block made 1024, encoding the array writes the
    same bytes. Frames are a promise: if this fails, the format of blocks changed."""
    frames, current = blocks_golden("hybrid-fields-blocks-float16")
    expected = np.load(BLOCKS_GOLDEN / "hybrid-fields-blocks-float16.npy").view(np.float16)
    assert_bits_equal(expected, blocks_golden_array())
    for frame in frames:
        header = split_frame(frame)[0]
        assert header["meta"]["fields_block"] == 1024
        assert len(top_sections(frame)) == 2 * 9
        assert_bits_equal(sc.decode(frame), expected)
    small_blocks(monkeypatch)
    assert hybrid(values="fields").encode(expected) == current


# -- low fields shifted block by block -----------------------------------------------------------


def rounded_rows(dtype: Any, rows: int = 1000, cols: int = 131, seed: int = 0,
                 zeros: tuple[tuple[int, int, int], ...] = ((0, 300, 16), (500, 620, 9))
                 ) -> np.ndarray:
    """Weights whose rows ``a .. b`` keep ``z`` fewer mantissa bits (their bit patterns end in
    ``z`` zero bits), for each ``(a, b, z)`` of ``zeros``: rows a model never trained, or kept
    at a lower precision. 1000x131: seven blocks of 2**14 values and a partial eighth, rows
    crossing blocks."""
    x = np.random.default_rng(seed).standard_normal((rows, cols)) * 0.05
    bits = x.astype(dtype).view(f"u{np.dtype(dtype).itemsize}")
    for a, b, z in zeros:
        bits[a:b] &= bits.dtype.type(~((1 << z) - 1) & ((1 << (8 * bits.itemsize)) - 1))
    return bits.view(dtype)


def no_low_shifts(monkeypatch: pytest.MonkeyPatch) -> None:
    from sparsecodecs.codecs import _stages

    monkeypatch.setattr(_stages, "_plan_low_shifts", lambda *args: None)


@pytest.mark.parametrize(("dt", "zeros"), [
    (np.float32, ((0, 300, 16), (500, 620, 9))),
    (np.float32, ((0, 1000, 13),)),  # every block: the shift leaves 8 of 21 low bits
    (np.float16, ((0, 400, 3), (700, 1000, 5))),
    (np.int32, ((100, 900, 8),)),
])
def test_low_fields_of_values_ending_in_zeros_are_shifted_block_by_block(
    dt: Any, zeros: tuple[tuple[int, int, int], ...], monkeypatch,
):
    """Blocks of 2**14 values whose values all end in zero bits store their low fields
    shifted past them (meta ``low_block``, section ``v.low.shift``): bit-exact, and smaller
    than the frame written without shifts. A block is shifted by the zeros all its values
    share, so blocks that straddle a rounded run are shifted less or not at all."""
    x = rounded_rows(dt, zeros=zeros)
    frame = hybrid(values="fields").encode(x)
    header = split_frame(frame)[0]
    assert header["meta"]["low_block"] == 1 << 14
    _, payloads = split_frame(frame)
    names = [name for name, _, _ in header["sections"]]
    shifts = np.frombuffer(payloads[names.index("v.low.shift")], np.uint8)
    lb = 8 * np.dtype(dt).itemsize - header["meta"]["fields"]
    flat = x.view(f"u{np.dtype(dt).itemsize}").reshape(-1).astype(np.uint64)
    for j, shift in enumerate(shifts.tolist()):  # the most each block could be shifted by
        block = flat[j << 14 : (j + 1) << 14]
        ors = int(np.bitwise_or.reduce(block)) & ((1 << (lb - 1)) - 1)
        assert shift == (min((ors & -ors).bit_length() - 1, lb - 1) if ors else lb - 1)
    assert shifts.any()
    assert_bits_equal(sc.decode(frame), x)
    assert_bits_equal(sc.decode(frame, threads=2), x)
    no_low_shifts(monkeypatch)
    plain = hybrid(values="fields").encode(x)
    assert "low_block" not in split_frame(plain)[0]["meta"]
    assert len(frame) < len(plain)


def test_values_with_nothing_to_shift_are_stored_as_they_are(monkeypatch):
    """Random float32 weights (an odd value in the first 64 of each block: decided there)
    and weights whose rounded rows never fill a block keep one low section."""
    from sparsecodecs.codecs import _stages

    frame = hybrid(values="fields").encode(gaussian((1000, 131), np.float32))
    assert "low_block" not in split_frame(frame)[0]["meta"]
    frame = hybrid(values="fields").encode(rounded_rows(np.float32, zeros=((10, 100, 16),)))
    assert "low_block" not in split_frame(frame)[0]["meta"]
    # fewer than two blocks of values: not looked at
    looked: list[int] = []
    monkeypatch.setattr(_stages, "_plan_low_shifts", lambda plan, v, dt: looked.append(v.size))
    hybrid(values="fields").encode(rounded_rows(np.float32, rows=250))
    assert looked == []
    hybrid(values="fields").encode(rounded_rows(np.float32, rows=251))
    assert looked == [251 * 131]


@pytest.mark.parametrize("levels", [16, 3000, 70000])
@pytest.mark.parametrize("zeros", [16, 13])
def test_float32_at_lower_precision_plans_as_the_sorted_path_does(levels: int, zeros: int,
                                                                   monkeypatch):
    """float32 weights that all end in 16 zero bits (bfloat16 precision), or float16 values
    (13), have their distinct values counted as the 16-bit patterns standing for them (what
    the centroid stage plans from): the same values and counts as the sort finds, and the same
    frame as the planner writes without the shortcut, for a few levels (the centroids win),
    thousands, and more 16-bit patterns than such weights use."""
    from sparsecodecs.codecs import _distinct
    from sparsecodecs.codecs import hybrid as hybrid_module

    rng = np.random.default_rng(levels + zeros)
    narrow = rng.integers(0, 1 << 16, levels, dtype=np.uint32)
    if zeros == 16:
        x = (narrow[rng.integers(0, levels, (400, 384))] << np.uint32(16)).view(np.float32)
    else:  # float16 values (NaNs and infinities left out: the frame test compares floats)
        half = narrow.astype(np.uint16).view(np.float16)
        half = half[np.isfinite(half)]
        x = half[rng.integers(0, half.size, (400, 384))].astype(np.float32)
    x[3, 3] = np.float32(-0.0)
    bits = x.view(np.uint32).reshape(-1)
    quick = _distinct.distinct_values(bits, give_up_early=False, low_zeros=zeros)
    sorted_ = _distinct.distinct_values(bits, give_up_early=False)
    assert quick is not None and sorted_ is not None
    np.testing.assert_array_equal(quick[0], sorted_[0])
    np.testing.assert_array_equal(quick[1], sorted_[1])
    assert quick[0].dtype == np.uint32 and quick[1].dtype == np.int64
    frame = hybrid().encode(x)
    assert_bits_equal(sc.decode(frame), x)
    plain = _distinct.distinct_values
    monkeypatch.setattr(hybrid_module, "distinct_values",
                        lambda *a, low_zeros=0, **k: plain(*a, **k))
    assert hybrid().encode(x) == frame


@pytest.mark.parametrize("precision", [ml_dtypes.bfloat16, np.float16])
@pytest.mark.parametrize("kind", ["dense", "levels", "zero-mode", "row-constants", "tied"])
def test_fills_of_float32_at_lower_precision_answer_as_the_sort_does(precision: Any, kind: str,
                                                                      monkeypatch):
    """A float32 tensor under 131,072 values at bfloat16 or float16 precision has its mode
    and row-mode questions answered from the 2**16 counts of the 16-bit patterns standing for
    its values, not from a sort of every value: the same fills, so the same frame, as the sort
    gives, for mostly distinct values, a few levels (a mode fill), zero the most frequent but
    under half, rows of their own constants (row modes), and two patterns tied for the mode."""
    from sparsecodecs.codecs import hybrid as hybrid_module

    rng = np.random.default_rng(7)
    x = (rng.standard_normal((300, 200)) * 0.02).astype(precision).astype(np.float32)
    if kind == "levels":
        x = x[0, rng.integers(0, 12, x.shape)]
    elif kind == "zero-mode":
        x[rng.random(x.shape) < 0.3] = 0
    elif kind == "row-constants":
        x[:, ::2] = x[:, :1]
    elif kind == "tied":
        x[:, :40] = np.float32(0.5)
        x[:, 40:80] = np.float32(-0.25)
    bits = x.view(np.uint32).reshape(-1)
    repeats, top = hybrid_module._narrow_answers(bits)
    assert repeats is not None and top is not None
    patterns, counts = np.unique(bits, return_counts=True)
    assert top[0] == patterns[np.argmax(counts)]
    assert top[1] == counts[patterns != 0].max()
    assert repeats == int((counts[patterns != 0] - 1).sum())
    frame = hybrid().encode(x)
    assert_bits_equal(sc.decode(frame), x)
    monkeypatch.setattr(hybrid_module, "_narrow_answers", lambda flat: (None, None))
    assert hybrid().encode(x) == frame
    if kind == "row-constants":  # the row modes were planned, and won
        assert split_frame(frame)[0]["config"].get("fill") == "row-mode"


@pytest.fixture(scope="module")
def shifted() -> tuple[bytes, dict[str, Any], np.ndarray]:
    x = rounded_rows(np.float32)
    frame = hybrid(values="fields").encode(x)
    return frame, split_frame(frame)[0]["meta"], x


@pytest.mark.parametrize("block", [0, 100, 1 << 25, "16384", True, 16384.0, [16384]])
def test_hostile_low_block(shifted: tuple[bytes, dict[str, Any], np.ndarray], block: object):
    frame, meta, _ = shifted
    assert_layout_error(reframe(frame, header={"meta": {**meta, "low_block": block}}),
                        "meta 'low_block' is")


def test_hostile_low_shifts(shifted: tuple[bytes, dict[str, Any], np.ndarray]):
    frame, meta, x = shifted
    header, payloads = split_frame(frame)
    names = [name for name, _, _ in header["sections"]]
    shifts = payloads[names.index("v.low.shift")]
    lb = 32 - meta["fields"]
    too_far = bytes([lb]) + shifts[1:]
    assert_layout_error(reframe(frame, sections={"v.low.shift": too_far}),
                        f"shifts a block by {lb} bits, not fewer than its {lb}-bit low fields")
    assert_layout_error(reframe(frame, sections={"v.low.shift": shifts[:-1]}),
                        "section 'v.low.shift' has 7 bytes, expected 8 x 1 = 8")
    # another (valid) shift: the low section no longer has the size the shifts give it
    other = bytes([(shifts[0] + 1) % lb]) + shifts[1:]
    assert_layout_error(reframe(frame, sections={"v.low.shift": other}), "section 'v.low' has")
    # meta without the blocks: one low section of every value's fields is looked for
    plain = {k: v for k, v in meta.items() if k != "low_block"}
    assert_layout_error(reframe(frame, header={"meta": plain}), "section 'v.low' has")
    # a half block: twice the shifts
    assert_layout_error(reframe(frame, header={"meta": {**meta, "low_block": 1 << 13}}),
                        "section 'v.low.shift' has 8 bytes, expected 16 x 1 = 16")
    # no shift section
    table = [[("v.low.other" if name == "v.low.shift" else name), role, size]
             for name, role, size in header["sections"]]
    assert_layout_error(reframe(frame, header={"sections": table}),
                        "section 'v.low.shift' is missing")
    assert_bits_equal(sc.decode(frame), x)


def test_the_golden_frame_with_shifted_low_fields_decodes_and_is_written_again(monkeypatch):
    """The committed frame whose low fields are shifted block by block (blocks of 1024; the
    encoder's are 2**14) decodes to its committed array and is written again byte for byte."""
    from sparsecodecs.codecs import _stages

    frames, current = blocks_golden("hybrid-fields-low-shift-float32")
    expected = np.load(BLOCKS_GOLDEN / "hybrid-fields-low-shift-float32.npy").view(np.float32)
    assert_bits_equal(expected, low_shift_golden_array())
    for frame in frames:
        assert split_frame(frame)[0]["meta"]["low_block"] == 1024
        assert_bits_equal(sc.decode(frame), expected)
    monkeypatch.setattr(_stages, "LOW_BLOCK", 1024)
    assert hybrid(values="fields").encode(expected) == current


def low_shift_golden_array() -> np.ndarray:
    """3900 float32 values in rows of 100: rows 0-14 end in 16 zero bits, 20-29 in 9, 35-38
    in 23 (zero mantissas: the planner keeps each row's mode out as a fill, so the frame is a
    bitmask one of 3762 kept values, three blocks of 1024 and a partial fourth, the first
    shifted by 16)."""
    return rounded_rows(np.float32, rows=39, cols=100,
                        zeros=((0, 15, 16), (20, 30, 9), (35, 39, 23)))


# -- the sign bit left with the exponent (rotate=0) --------------------------------------------


def one_signed(shape: tuple[int, ...], dtype: Any, seed: int = 0, sign: int = 1) -> np.ndarray:
    """Values of one sign: lognormal magnitudes (a variance, a positive scale)."""
    rng = np.random.default_rng(seed)
    return (sign * rng.lognormal(-3, 1, shape)).astype(np.float32).astype(dtype)


FLOATS16_32 = [ml_dtypes.bfloat16, np.float16, np.float32]


@pytest.mark.parametrize("dtype", FLOATS16_32)
@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("layout", ["dense", "bitmask", "nm"])
def test_values_of_one_sign_keep_the_sign_bit_with_the_exponent(dtype: Any, sign: int,
                                                                layout: str):
    """rotate='auto' plans the planes and fields unrotated too where every kept value has the
    same sign, keeps the smaller and records rotate=0; the frame is smaller than the rotated
    one, decodes bit for bit, and so does every product of it."""
    x = one_signed((64, 96), dtype, sign=sign)
    if layout != "dense":
        x = prune_24(x)
    frame = hybrid(layout=layout).encode(x)
    config = sc.inspect(frame).config
    assert config["rotate"] == 0 and config["values"] in ("planes", "fields")
    assert_bits_equal(sc.decode(frame), x)
    rotated = hybrid(layout=layout, rotate=1).encode(x)
    assert "rotate" not in sc.inspect(rotated).config
    assert len(frame) < len(rotated)
    w = x.astype(np.float32)
    for batch in (1, 8, 33):
        xs = np.random.default_rng(batch).standard_normal((batch, w.shape[1])).astype(np.float32)
        np.testing.assert_allclose(sc.matmul(xs, frame), xs @ w.T, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", FLOATS16_32)
@pytest.mark.parametrize("values", ["planes", "fields"])
def test_explicit_rotations_round_trip(dtype: Any, values: str):
    for x in (one_signed((32, 50), dtype), gaussian((32, 50), dtype)):
        for rotate in (0, 1):
            frame = hybrid(values=values, rotate=rotate).encode(x)
            assert sc.inspect(frame).config.get("rotate", 1) == rotate
            assert_bits_equal(sc.decode(frame), x)


def test_values_of_both_signs_are_rotated_as_before():
    """No tensor with both signs among its kept values plans unrotated (no histogram more),
    so its frame is the one rotate=1 writes."""
    for dtype in FLOATS16_32:
        x = gaussian((64, 96), dtype)
        frame = hybrid().encode(x)
        assert "rotate" not in sc.inspect(frame).config
        assert frame == hybrid(rotate=1).encode(x)


@pytest.mark.parametrize("layout", ["dense", "bitmask"])
def test_float16_subnormals_of_both_signs_split_unrotated(layout: str):
    """float16 values of about 1e-6 are subnormal: the rotated top plane (exponent zero, the
    mantissa's top bits) is one byte, coded at a bit a value for nothing. Split unrotated the
    sign rides in that bit, so rotate='auto' plans it too and keeps it, smaller, though the
    values have both signs."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((256, 96)) * 1e-6).astype(np.float16)
    if layout == "bitmask":
        x[rng.random(x.shape) < 0.5] = 0
    assert (x < 0).any() and (x > 0).any()
    frame = hybrid(layout=layout).encode(x)
    assert sc.inspect(frame).config["rotate"] == 0
    assert len(frame) < len(hybrid(layout=layout, rotate=1).encode(x))
    assert_bits_equal(sc.decode(frame), x)


@pytest.mark.parametrize("shape", [(64, 96), (256, 256)])
def test_float16_sign_tied_to_magnitude_splits_unrotated(shape: tuple[int, int]):
    """Positive values large, negative ones small: the sign tells the exponent apart (as in
    PP-OCRv4 rec's embedding, whose unrotated top bytes carry 3.7% less entropy than its
    rotated ones), so the top bytes unrotated (the sign with the exponent) code to less than
    the rotated ones, and the low plane, near uniform either way, stores raw. rotate='auto'
    lists that plan from the counts it has (plan16's unrotated top bytes), keeps it, smaller,
    and records rotate=0; the frame decodes bit for bit."""
    rng = np.random.default_rng(4)
    x = np.where(rng.random(shape) < 0.5, np.abs(rng.standard_normal(shape)),
                 -0.1 * np.abs(rng.standard_normal(shape))).astype(np.float16)
    frame = hybrid().encode(x)
    info = sc.inspect(frame)
    assert info.config["rotate"] == 0 and info.config["values"] == "planes"
    assert [sec.name for sec in info.sections] == ["v.plane0.codebook", "v.plane0.bits",
                                                   "v.plane1"]  # the top coded, the low raw
    assert len(frame) < len(hybrid(rotate=1).encode(x))
    assert_bits_equal(sc.decode(frame), x)


def test_bfloat16_low_plane_nearly_raw_plans_unrotated_fields():
    """bfloat16 values whose sign follows the exponent's last bit (nine times in ten), with
    two exponents in five of the values: rotated, the low plane (seven mantissa bits and the
    sign) codes to within 1/32 of its bytes, and no rotated plan sees the sign's dependence;
    unrotated top fields (the sign with the exponent) do, where the top bytes unrotated (the
    exponent's last bit in the raw low byte) do not. rotate='auto' plans unrotated whole where
    the rotated planes, their low plane coded for so little, are the best rotated plan; it
    keeps the smaller fields and records rotate=0; the frame decodes bit for bit."""
    rng = np.random.default_rng(5)
    n = 256 * 256
    exp = 118 + rng.choice(4, n, p=[0.1, 0.4, 0.1, 0.4])
    sign = np.where(rng.random(n) < 0.9, exp & 1, 1 - (exp & 1))
    bits = (sign << 15) | (exp << 7) | rng.integers(0, 128, n)
    x = bits.astype(np.uint16).view(ml_dtypes.bfloat16).reshape(256, 256)
    frame = hybrid().encode(x)
    info = sc.inspect(frame)
    assert info.config["rotate"] == 0 and info.config["values"] == "fields"
    assert len(frame) < len(hybrid(rotate=1).encode(x))
    assert_bits_equal(sc.decode(frame), x)


@pytest.mark.parametrize("rotate", ["none", 2, -1, True, 1.0, None])
def test_rotate_takes_auto_0_or_1(rotate: object):
    with pytest.raises(CodecConfigError, match="rotate must be 'auto', 0 or 1"):
        hybrid(rotate=rotate)


@pytest.mark.parametrize(("rotate", "dtype", "match"), [
    (0, np.float64, "rotate=0 applies to 16- and 32-bit floats"),
    (0, ml_dtypes.float8_e4m3fn, "rotate=0 applies to 16- and 32-bit floats"),
    (1, np.int8, "rotate=1 applies to floats"),
    (1, np.uint16, "rotate=1 applies to floats"),
])
def test_rotations_a_dtype_does_not_take_are_refused(rotate: int, dtype: Any, match: str):
    with pytest.raises(CodecConfigError, match=match):
        hybrid(rotate=rotate).encode(np.ones((4, 8), dtype))


def test_integers_take_rotate_0_as_they_are():
    x = np.arange(-64, 64, dtype=np.int16).reshape(8, 16)
    assert hybrid(rotate=0).encode(x) == hybrid().encode(x)


@pytest.mark.parametrize(("values", "dtype"), [
    ("centroid", np.float32), ("planes", np.int16), ("fields", np.int32),
    ("planes", np.float64),
])
def test_hostile_rotate_0_where_it_does_not_apply(values: str, dtype: Any):
    x = (np.arange(64) % 7).astype(dtype).reshape(8, 8)
    frame = hybrid(layout="dense", values=values).encode(x)
    config = sc.inspect(frame).config
    assert "rotate" not in config
    assert_layout_error(reframe(frame, header={"config": {**config, "rotate": 0}}),
                        "a hybrid frame of rotate=0 must hold the planes or fields of 16- or "
                        "32-bit floats")


def test_hostile_rotate_1_on_integers():
    x = (np.arange(64) % 7).astype(np.int16).reshape(8, 8)
    frame = hybrid(layout="dense", values="planes").encode(x)
    config = sc.inspect(frame).config
    assert_layout_error(reframe(frame, header={"config": {**config, "rotate": 1}}),
                        "a hybrid frame of rotate=1")


@pytest.mark.parametrize("rotate", ["auto-ish", 2, True, [0]])
def test_hostile_rotate_values_are_header_errors(rotate: object):
    frame = hybrid().encode(one_signed((8, 16), np.float32))
    config = sc.inspect(frame).config
    with pytest.raises(FrameHeaderError, match="rotate must be"):
        sc.decode(reframe(frame, header={"config": {**config, "rotate": rotate}}))


def test_a_rotated_frame_read_as_unrotated_decodes_other_bits():
    """The record matters: the same sections read at the other rotation are other values (so
    an old reader that ignored the key could not have read these frames; it refuses them, as
    an unknown parameter)."""
    x = one_signed((16, 32), ml_dtypes.bfloat16)
    frame = hybrid(values="planes").encode(x)
    config = sc.inspect(frame).config
    assert config["rotate"] == 0
    other = sc.decode(reframe(frame, header={"config": {**config, "rotate": 1}}))
    assert other.tobytes() != x.tobytes()


def test_the_golden_unrotated_frame_decodes_and_is_written_again():
    """The committed rotate=0 frame (a variance-like bfloat16 tensor) decodes to its committed
    array and is written again byte for byte."""
    frames, current = blocks_golden("hybrid-rotate0-bfloat16")
    expected = np.load(BLOCKS_GOLDEN / "hybrid-rotate0-bfloat16.npy").view(ml_dtypes.bfloat16)
    assert_bits_equal(expected, one_signed((24, 40), ml_dtypes.bfloat16, seed=7))
    for frame in frames:
        assert sc.inspect(frame).config["rotate"] == 0
        assert_bits_equal(sc.decode(frame), expected)
    assert hybrid().encode(expected) == current


@settings(max_examples=examples(60), deadline=None)
@given(dtype=st.sampled_from(FLOATS16_32), rows=st.integers(1, 40), cols=st.integers(1, 120),
       kind=st.sampled_from(["lognormal", "norm", "prune", "subnormal"]),
       seed=st.integers(0, 2**16))
def test_unrotated_frames_are_never_larger_than_rotated_ones(dtype: Any, rows: int, cols: int,
                                                             kind: str, seed: int):
    """rotate='auto' keeps the unrotated frame only if it is smaller, exactly: the plans'
    estimates may be off by a stream's padding, and the frame records rotate=0."""
    rng = np.random.default_rng(seed)
    if kind == "norm":  # a norm gain: one sign, one or two exponents
        x = (1 + rng.standard_normal((rows, cols)) * 0.05).astype(np.float32)
    elif kind == "subnormal":  # both signs; float16 subnormals, an idle rotated top plane
        x = (rng.standard_normal((rows, cols)) * 1e-6).astype(np.float32)
    else:
        x = one_signed((rows, cols), np.float32, seed)
        if kind == "prune":
            x[rng.random(x.shape) < 0.5] = 0
    x = x.astype(dtype)
    frame = hybrid().encode(x)
    assert len(frame) <= len(hybrid(rotate=1).encode(x))
    assert_bits_equal(sc.decode(frame), x)


@pytest.mark.parametrize("dt", [ml_dtypes.bfloat16, np.float32])
def test_one_sign_tensors_split_unrotated_in_blocks_and_shifted(dt: Any):
    """Unrotated fields take the planner's other forms too: top fields in blocks (a large
    tensor whose scale changes along its rows) and, for float32 rows ending in zero bits, low
    fields shifted block by block; bit-exact on one and two threads."""
    for x, key in ((np.abs(shifting(dt)), "fields_block"),
                   (np.abs(rounded_rows(dt)), "low_block")):
        if key == "low_block" and dt is not np.float32:
            continue
        frame = hybrid().encode(x)
        header = split_frame(frame)[0]
        assert header["config"]["rotate"] == 0 and key in header["meta"]
        assert_bits_equal(sc.decode(frame), x)
        assert_bits_equal(sc.decode(frame, threads=2), x)
        assert len(frame) < len(hybrid(rotate=1).encode(x))


@pytest.mark.parametrize("values", ["planes", "fields"])
@pytest.mark.parametrize("dtype", FLOATS16_32)
def test_one_sign_read_off_the_values_when_no_histograms_are_counted(values: str, dtype: Any):
    """An explicit value stage counts no plane histograms first: the sign test reads the
    values themselves (their OR and AND), with the same answer."""
    for sign in (1, -1):
        x = one_signed((40, 64), dtype, seed=3, sign=sign)
        frame = hybrid(values=values).encode(x)
        assert sc.inspect(frame).config.get("rotate") == 0
        assert len(frame) <= len(hybrid(values=values, rotate=1).encode(x))
        assert_bits_equal(sc.decode(frame), x)
    x = gaussian((40, 64), dtype)
    assert "rotate" not in sc.inspect(hybrid(values=values).encode(x)).config


@pytest.mark.parametrize("count", [5, 300, 5000, 70000])
def test_hybrid_encodes_16_bit_views_at_odd_addresses_as_aligned_copies(count: int) -> None:
    """A 16-bit input starting at an odd byte (a buffer numcodecs or a file hands over) is
    counted from an aligned copy (the kernels read uint16 in place): the same frame."""
    rng = np.random.default_rng(count)
    w = (rng.standard_normal(count) * 0.05).astype(np.float16)
    w[::3] = 0
    odd = np.frombuffer(b"\0" + w.tobytes(), np.float16, offset=1)
    assert not odd.flags.aligned
    codec = sc.get_codec("hybrid")
    assert codec.encode(odd) == codec.encode(w)
