"""Entry-point targets that import fine but are not usable codec classes."""

from __future__ import annotations

from dataclasses import dataclass

from sparsecodecs.codecs import Raw

NOT_A_CODEC = 42


@dataclass(frozen=True, kw_only=True)
class BadAliases(Raw):
    """Aliases that are not a mapping of names to parameter dicts."""

    codec_id = "bad_aliases"
    aliases = ["bad"]  # type: ignore[assignment]


@dataclass(frozen=True, kw_only=True)
class StealsAlias(Raw):
    """An alias a built-in codec already has."""

    codec_id = "steals_alias"
    aliases = {"2:4": {}}


@dataclass(frozen=True, kw_only=True)
class UpperCase(Raw):
    """An id in upper case."""

    codec_id = "UPPER_CASE"
