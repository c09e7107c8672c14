"""``centroid``: a codebook of the distinct values plus one index per element."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..registry import Codec, Encoded, FrameInfo, PatternError, SectionReader, check_choice
from . import _huffman
from ._common import builtin
from ._distinct import distinct_values
from ._stages import (
    MAX_CENTROIDS,
    decode_centroids,
    encode_centroids,
    plan_centroids,
)

__all__ = ["Centroid"]


@builtin
@dataclass(frozen=True, kw_only=True)
class Centroid(Codec):
    """Store k distinct values once and an index per element (lossless for any k <= 65536).

    The right choice for clustered or quantized weights: a 16-centroid tensor costs about
    4 bits per element or less. Sections: ``c.centroids`` (codebook: the k sorted distinct bit
    patterns), and the indices, Huffman-coded (``c.idx.codebook`` + ``c.idx.bits``) or packed at
    ceil(log2 k) bits (``c.idx``): the smaller with ``index_coding="auto"``, packed with
    ``index_coding="packed"``. Meta: ``k``
    and ``index`` (``h``/``p``). A tensor with more than 65536 distinct values raises
    PatternError: cluster it first (``sparsecodecs.transforms.cluster``) or use ``hybrid``.
    """

    codec_id = "centroid"
    description = "codebook of distinct values + Huffman/packed indices (clustered weights)"

    index_coding: str = "auto"

    def __post_init__(self) -> None:
        check_choice("index_coding", self.index_coding, ("auto", "packed"))

    def encode_bits(self, bits: np.ndarray, dtype: np.dtype[Any]) -> Encoded:
        flat = bits.reshape(-1)
        distinct = distinct_values(flat, give_up_early=False)
        if distinct is None:
            raise PatternError(
                f"input has more than {MAX_CENTROIDS} distinct values; cluster it first with "
                "sparsecodecs.transforms.cluster, or use 'hybrid' or 'huffman'"
            )
        plan = plan_centroids(
            flat.size, distinct, _huffman.MAX_LENGTH, entropy=self.index_coding != "packed"
        )
        sections, mode = encode_centroids(flat, "c", plan, _huffman.MAX_LENGTH, dtype)
        return Encoded(sections, meta={"k": int(plan.centroids.size), "index": mode})

    def decode_bits(self, sections: SectionReader, info: FrameInfo) -> np.ndarray:
        k = info.meta_int("k", 0, min(MAX_CENTROIDS, info.size))
        values = decode_centroids(sections, "c", info.size, info.dtype, info.meta.get("index"), k)
        return values.reshape(info.shape)
