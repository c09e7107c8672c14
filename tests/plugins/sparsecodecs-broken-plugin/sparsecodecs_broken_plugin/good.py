"""A working codec whose id has a hyphen, as plugin authors naturally write it."""

from __future__ import annotations

from dataclasses import dataclass

from sparsecodecs.codecs import Raw


@dataclass(frozen=True, kw_only=True)
class HyphenCodec(Raw):
    """The raw layout under a hyphenated id."""

    codec_id = "hyphen-codec"
    description = "raw bytes under a hyphenated id (test plugin)"
