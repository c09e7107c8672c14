"""``huffman``: canonical Huffman coding of byte planes (exponent apart from sign + mantissa)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..registry import Codec, Encoded, FrameInfo, SectionReader, check_int
from . import _huffman
from ._common import builtin
from ._stages import decode_planes, encode_planes

__all__ = ["Huffman"]


@builtin
@dataclass(frozen=True, kw_only=True)
class Huffman(Codec):
    """Each value split into byte planes; each plane Huffman-coded if that shrinks it.

    Floats are rotated left by one bit first, so the top plane of bfloat16 and float32 is the
    8-bit exponent, which carries only 2-3 bits of information in trained weights. Sections per
    plane i: ``v.plane<i>`` (raw) or ``v.plane<i>.codebook`` (code lengths, role codebook) +
    ``v.plane<i>.bits`` (values). Meta ``planes``: one letter per plane, ``h`` coded, ``r`` raw.
    Zeros are just another symbol: for sparse input prefer ``hybrid``.
    """

    codec_id = "huffman"
    description = "byte-plane canonical Huffman (exponent coded, sign+mantissa raw if no gain)"

    max_code_length: int = _huffman.MAX_LENGTH

    def __post_init__(self) -> None:
        check_int("max_code_length", self.max_code_length, 8, _huffman.MAX_LENGTH)

    def encode_bits(self, bits: np.ndarray, dtype: np.dtype[Any]) -> Encoded:
        sections, modes = encode_planes(bits.reshape(-1), dtype, "v", self.max_code_length)
        return Encoded(sections, meta={"planes": modes})

    def decode_bits(self, sections: SectionReader, info: FrameInfo) -> np.ndarray:
        values = decode_planes(sections, "v", info.size, info.dtype, info.meta.get("planes"))
        return values.reshape(info.shape)
