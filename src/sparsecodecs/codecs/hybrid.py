"""``hybrid``: a sparsity layout + a value stage + an entropy stage, chosen per tensor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..registry import (
    Codec,
    CodecConfigError,
    Encoded,
    FrameInfo,
    FrameLayoutError,
    PatternError,
    Section,
    SectionReader,
    check_choice,
    check_int,
    storage_nbytes,
)
from . import _huffman as huff
from ._common import builtin
from ._parts import DenseParts, MaskParts, NMParts
from ._stages import (
    MAX_CENTROIDS,
    decode_centroids,
    decode_fields,
    decode_planes,
    distinct_values,
    encode_centroids,
    encode_fields,
    encode_planes,
    plan_centroids,
    plan_fields,
    plan_planes,
    value_histograms,
)
from .nm import (
    MAX_M,
    code_reader,
    geometry,
    nm_tables,
    pack_codes,
    packed_code_reader,
    pattern_packing,
    split_groups,
)

__all__ = ["Hybrid"]

LAYOUTS = ("auto", "dense", "bitmask", "nm")
VALUE_STAGES = ("auto", "planes", "fields", "centroid")
ENTROPY = ("huffman", "none")


@dataclass
class _Layout:
    """One candidate layout: its index sections (built lazily) and the values it keeps."""

    name: str
    values: np.ndarray
    index_nbytes: int
    index_sections: Any  # () -> tuple[list[Section], dict]


@builtin
@dataclass(frozen=True, kw_only=True)
class Hybrid(Codec):
    """The recommended codec: layout, value stage and entropy stage composed per tensor.

    * ``layout``: ``dense`` (no index), ``bitmask`` (a bit per element, raw or Huffman-coded
      bytes; meta ``nnz``), ``nm`` (one N:M pattern code per group of ``m`` along the last axis,
      packed as base-C digits or Huffman-coded), or ``auto``.
    * ``values``: ``planes`` (byte planes, floats rotated so the exponent is a plane of its own,
      each plane Huffman-coded or raw), ``fields`` (the top 9-12 bits of each rotated value,
      i.e. exponent + top mantissa bits, Huffman-coded as one symbol, the low bits packed raw;
      meta ``fields`` = top bits), ``centroid`` (the distinct values once + an index per
      value), or ``auto``.
    * ``entropy``: ``huffman`` or ``none`` (index and values stored packed/raw).

    With ``auto`` the encoder computes the exact coded size of every candidate from symbol
    histograms (no trial encoding) and keeps the smallest; the frame's config records the
    resolved choice, so ``inspect`` shows it. Sections: ``pattern``/``mask`` (index; with a
    ``.codebook`` and ``.bits`` pair when Huffman-coded) and the value stage's sections under
    the prefix ``v``. Theoretical size: the layout's kept values (``nm``: groups x n; ``bitmask``:
    nnz; ``dense``: all) x itemsize.
    """

    codec_id = "hybrid"
    description = "layout (dense/bitmask/N:M) + planes or centroids + Huffman, auto-chosen"

    layout: str = "auto"
    n: int = 2
    m: int = 4
    values: str = "auto"
    entropy: str = "huffman"
    max_code_length: int = huff.MAX_LENGTH

    def __post_init__(self) -> None:
        check_choice("layout", self.layout, LAYOUTS)
        check_choice("values", self.values, VALUE_STAGES)
        check_choice("entropy", self.entropy, ENTROPY)
        check_int("m", self.m, 2, MAX_M)
        check_int("n", self.n, 1, self.m - 1)
        check_int("max_code_length", self.max_code_length, 8, huff.MAX_LENGTH)
        if self.values == "fields" and self.entropy != "huffman":
            raise CodecConfigError(
                f"values='fields' Huffman-codes the top bits, so it needs entropy='huffman'; got "
                f"entropy={self.entropy!r}: use values='planes' for raw values"
            )

    # -- encoding ------------------------------------------------------------------------------

    def _coded(self) -> bool:
        return self.entropy == "huffman"

    def _index_stream(
        self, name: str, raw_nbytes: int, raw: Any, symbols: np.ndarray, alphabet: int
    ) -> tuple[int, Any]:
        """Smaller of the raw index (``raw_nbytes``, built by ``raw()``) and Huffman-coded
        ``symbols``: (bytes, builder)."""
        if self._coded() and symbols.size:
            counts = huff.histogram(symbols, alphabet)
            coded = huff.coded_size(counts, self.max_code_length)
            if coded < raw_nbytes:
                def build_coded() -> tuple[list[Section], dict[str, Any]]:
                    return huff.encode_symbols(
                        symbols, alphabet, name, "index", counts=counts,
                        max_length=self.max_code_length,
                    ), {"index": "h"}
                return coded, build_coded

        def build_raw() -> tuple[list[Section], dict[str, Any]]:
            return [Section(name, "index", raw())], {"index": "r"}

        return raw_nbytes, build_raw

    def _candidates(self, bits: np.ndarray) -> list[_Layout]:
        from ._kernels import bitmask_split

        flat = bits.reshape(-1)
        nnz = int(np.count_nonzero(flat))
        wanted = [self.layout] if self.layout != "auto" else ["dense", "bitmask", "nm"]
        out = []
        mask = kept = None
        # dense only competes when most values are non-zero: below that a mask is cheaper
        # than coding every zero as a value.
        if "dense" in wanted and (self.layout == "dense" or 10 * nnz > 7 * flat.size or not nnz):
            out.append(_Layout("dense", flat, 0, lambda: ([], {})))
        if "bitmask" in wanted and (self.layout == "bitmask" or 0 < nnz < flat.size):
            mask = np.empty((flat.size + 7) // 8, np.uint8)
            spare = np.empty(nnz + 1, flat.dtype)  # one spare slot: the kernel writes ahead
            bitmask_split(flat, mask, spare)
            kept = spare[:nnz]
            size, build = self._index_stream("mask", mask.nbytes, lambda: mask, mask, 256)

            def build_mask(build: Any = build) -> tuple[list[Section], dict[str, Any]]:
                sections, meta = build()
                return sections, {**meta, "nnz": nnz}

            out.append(_Layout("bitmask", kept, size, build_mask))
        _, cols, _, ngroups = geometry(bits.shape, self.m)
        if "nm" in wanted and (self.layout == "nm" or nnz <= ngroups * self.n):
            codes = values = None
            if mask is not None and 8 % self.m == 0 and cols % self.m == 0 and (
                nnz == ngroups * self.n
            ):
                # Every group must then hold exactly n non-zeros: read the codes off the mask
                # (an eighth of the work of splitting the values again); the kept values are
                # the mask's, in the same order.
                from ._kernels import nm_codes_from_mask

                codes = np.empty(ngroups, np.uint16)
                tables = nm_tables(self.n, self.m)
                if nm_codes_from_mask(mask, self.m, tables.code_of, codes):
                    values = kept
            try:
                if values is None:
                    codes, values = split_groups(bits, self.n, self.m)
            except PatternError:
                if self.layout == "nm":
                    raise
            else:
                assert codes is not None
                ncodes = nm_tables(self.n, self.m).ncodes
                word, k = pattern_packing(ncodes)
                size, build = self._index_stream(
                    "pattern", -(-ngroups // k) * word // 8,
                    lambda codes=codes: pack_codes(codes, ncodes), codes, ncodes,
                )
                out.append(_Layout("nm", values, size, build))
        return out

    def _value_stages(self, values: np.ndarray, dtype: np.dtype[Any]) -> list[tuple[str, int, Any]]:
        """(stage, estimated bytes, plan) for each value stage worth trying on ``values``.

        With ``values="auto"`` every stage is tried, except ``centroid`` when a sample shows
        the values are mostly distinct. ``planes`` and ``centroid`` are not pruned further:
        ``fields`` stores the low bits raw, so planes beat it whenever the low planes compress
        (float16 weights upcast to float32: 2x), and a tensor of a few thousand distinct
        float32 values is 2x smaller as centroids than as fields.
        """
        auto = self.values == "auto"
        stages: list[tuple[str, int, Any]] = []
        fplan = None
        plane_counts = fine = None
        if auto and self._coded() and dtype.itemsize in (2, 4):
            plane_counts, fine = value_histograms(values, dtype)  # both plans, one pass
        if self.values in ("auto", "fields") and self._coded():
            fplan = plan_fields(values, dtype, self.max_code_length, fine)
            if fplan is None and self.values == "fields":
                if dtype.itemsize not in (2, 4):
                    raise CodecConfigError(
                        f"values='fields' needs 16- or 32-bit values, got {dtype}"
                    )
                raise PatternError(
                    f"values='fields' cannot code the top bits of this input with codes of at "
                    f"most max_code_length={self.max_code_length} bits: even 9-bit top fields "
                    f"take more than {1 << self.max_code_length} values; raise max_code_length "
                    "or use values='auto'"
                )
            if fplan is not None:
                stages.append(("fields", fplan.nbytes, fplan))
        if self.values in ("auto", "planes"):
            plan = plan_planes(values, dtype, self.max_code_length, entropy=self._coded(),
                               counts=plane_counts)
            stages.append(("planes", plan.nbytes, plan))
        if self.values in ("auto", "centroid"):
            # explicit values='centroid' must take any k <= MAX_CENTROIDS, however distinct
            distinct = distinct_values(values, give_up_early=auto)
            if distinct is None and self.values == "centroid":
                raise PatternError(
                    f"values='centroid' needs at most {MAX_CENTROIDS} distinct values; "
                    "cluster first (sparsecodecs.transforms.cluster) or use values='auto'"
                )
            if distinct is not None:
                cplan = plan_centroids(values.size, distinct, self.max_code_length,
                                       entropy=self._coded())
                stages.append(("centroid", cplan.nbytes, cplan))
        return stages

    def encode_bits(self, bits: np.ndarray, dtype: np.dtype[Any]) -> Encoded:
        best: tuple[int, _Layout, str, Any] | None = None
        planned: list[tuple[np.ndarray, list[tuple[str, int, Any]]]] = []
        for cand in self._candidates(bits):
            # Layouts that keep the very same values (e.g. bitmask and nm on an exact 2:4
            # tensor) share one plan.
            same = [st for v, st in planned if v is cand.values or (
                v.size == cand.values.size and np.array_equal(v, cand.values))]
            stages = same[0] if same else self._value_stages(cand.values, dtype)
            planned.append((cand.values, stages))
            for stage, size, state in stages:
                total = cand.index_nbytes + size
                if best is None or total < best[0]:
                    best = (total, cand, stage, state)
        assert best is not None  # at least one layout is always possible
        _, cand, stage, state = best
        sections, meta = cand.index_sections()
        if stage == "planes":
            vsec, modes = encode_planes(cand.values, dtype, "v", self.max_code_length, plan=state)
            meta["planes"] = modes
        elif stage == "fields":
            vsec = encode_fields(cand.values, dtype, "v", state, self.max_code_length)
            meta["fields"] = state.top
        else:
            vsec, mode = encode_centroids(cand.values, "v", state, self.max_code_length, dtype)
            meta.update(k=int(state.centroids.size), centroid_index=mode)
        config = {**self.get_config(), "layout": cand.name, "values": stage}
        return Encoded(sections + vsec, meta=meta, config=config)

    # -- decoding ------------------------------------------------------------------------------

    def _resolved(self) -> None:
        if self.layout == "auto" or self.values == "auto":
            raise FrameLayoutError(
                f"a hybrid frame must record its resolved layout and values, got "
                f"layout={self.layout!r}, values={self.values!r}"
            )

    def _count(self, info: FrameInfo) -> int:
        if self.layout == "dense":
            return info.size
        if self.layout == "bitmask":
            return info.meta_int("nnz", 0, info.size)
        return geometry(info.shape, self.m)[3] * self.n

    def _index(self, sections: SectionReader, info: FrameInfo, name: str, count: int,
               alphabet: int, raw_dtype: Any, raw_count: int) -> tuple[np.ndarray, bool]:
        mode = info.meta.get("index")
        if mode == "h":
            dt = np.uint8 if alphabet <= 256 else np.uint16
            return huff.decode_symbols(sections, name, count, alphabet, dt), True
        if mode == "r":
            return sections.array(name, raw_dtype, raw_count), False
        raise FrameLayoutError(f"meta 'index' must be 'h' or 'r', got {mode!r:.50}")

    def decode_bits(self, sections: SectionReader, info: FrameInfo) -> np.ndarray:
        return self.decode_parts(sections, info).to_bits(info.shape)

    def decode_parts(
        self, sections: SectionReader, info: FrameInfo
    ) -> DenseParts | MaskParts | NMParts:
        """The decoded value stage and the validated layout index (see :mod:`._parts`)."""
        self._resolved()
        count = self._count(info)
        if self.values == "planes":
            values = decode_planes(sections, "v", count, info.dtype, info.meta.get("planes"))
        elif self.values == "fields":
            values = decode_fields(sections, "v", count, info.dtype, info.meta.get("fields"))
        else:
            k = info.meta_int("k", 0, min(MAX_CENTROIDS, max(count, 0)))
            values = decode_centroids(
                sections, "v", count, info.dtype, info.meta.get("centroid_index"), k
            )
        if self.layout == "dense":
            return DenseParts(values)
        if self.layout == "bitmask":
            return self._decode_bitmask(sections, info, values)
        tables = nm_tables(self.n, self.m)
        ngroups = geometry(info.shape, self.m)[3]
        word, k = pattern_packing(tables.ncodes)
        index, coded = self._index(
            sections, info, "pattern", ngroups, tables.ncodes, f"<u{word // 8}", -(-ngroups // k)
        )
        if coded:
            packed, lut = code_reader(index, tables.ncodes)
        else:
            packed, lut = packed_code_reader(index, tables.ncodes, ngroups)
        return NMParts(self.n, self.m, packed, lut, values)

    def _decode_bitmask(
        self, sections: SectionReader, info: FrameInfo, values: np.ndarray
    ) -> MaskParts:
        from ._kernels import check_mask

        size = info.size
        nbytes = (size + 7) // 8
        mask, _ = self._index(sections, info, "mask", nbytes, 256, np.uint8, nbytes)
        check_mask(mask, size, values.size, "section 'mask'")
        return MaskParts(mask, values)

    def theoretical_nbytes(self, info: FrameInfo) -> int:
        self._resolved()  # a frame's config records the layout (FrameLayoutError if not)
        return storage_nbytes(info.dtype, self._count(info))
