"""The codec registry: lookup by name, alias and config, registration rules, error messages.

Registrations go to a fresh ``CodecRegistry()`` (or through ``registered()``, which restores the
process-wide registry), so no test leaves a codec behind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import sparsecodecs as sc
from sparsecodecs.codecs import CSR, NM, Bitmask, Raw
from sparsecodecs.registry import (
    Codec,
    CodecConfigError,
    CodecRegistry,
    Encoded,
    FrameInfo,
    RegistryError,
    SectionReader,
    UnknownCodecError,
    registry,
)
from sparsecodecs.registry.registry import normalize_name
from sparsecodecs.testing import registered


@dataclass(frozen=True, kw_only=True)
class Toy(Codec):
    """A codec that is never used to encode: only its registration matters here."""

    codec_id = "toy"
    description = "a toy"
    aliases = {"toy-2": {"level": 2}}

    level: int = 1

    def encode_bits(self, bits: np.ndarray, dtype: np.dtype[Any]) -> Encoded:
        raise NotImplementedError

    def decode_bits(self, sections: SectionReader, info: FrameInfo) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class OtherToy(Toy):
    """A different class with the same id."""


@pytest.fixture
def reg() -> CodecRegistry:
    """A registry of its own, with no plugins (an entry-point group nothing declares)."""
    fresh = CodecRegistry(group="sparsecodecs.tests.no-such-group")
    fresh.register(Toy)
    return fresh


# -- lookup ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("raw", Raw()),
        ("csr", CSR()),
        ("nm", NM()),
        ("2:4", NM(n=2, m=4)),
        ("bitmask-2:4", NM(n=2, m=4, metadata="bitmask")),
        ({"id": "nm", "n": 1, "m": 4}, NM(n=1, m=4)),
        ({"id": "bitmask"}, Bitmask()),
    ],
    ids=str,
)
def test_get_codec_by_name_alias_or_config(spec: Any, expected: Codec) -> None:
    codec = sc.get_codec(spec)
    assert type(codec) is type(expected)
    assert codec == expected


@pytest.mark.parametrize("name", ["NM", "Nm", " nm ", "BITMASK_2:4", "bitmask_2:4", "Bitmask-2:4"])
def test_names_ignore_case_and_treat_dash_and_underscore_alike(name: str) -> None:
    assert type(sc.get_codec(name)) is NM


def test_keyword_parameters_override_an_alias_preset() -> None:
    assert sc.get_codec("2:4", metadata="index") == NM(n=2, m=4, metadata="index")
    assert sc.get_codec({"id": "nm", "n": 1}, m=8) == NM(n=1, m=8)


def test_unknown_name_suggests_the_closest_and_lists_the_rest() -> None:
    with pytest.raises(UnknownCodecError, match=r"unknown codec 'cssr'; did you mean 'csr'\?") as e:
        sc.get_codec("cssr")
    message = str(e.value)
    for name in ("bitmask", "csc", "csr", "nm", "raw"):
        assert name in message.split("available:")[1]
    assert isinstance(e.value, LookupError)


def test_unknown_name_without_a_close_match_gives_no_guess(reg: CodecRegistry) -> None:
    with pytest.raises(UnknownCodecError, match=r"unknown codec 'zzzzzz'; available: toy, toy_2"):
        reg.get("zzzzzz")


@pytest.mark.parametrize("spec", [None, 3, b"raw"])
def test_a_name_that_is_not_a_string_is_refused(spec: Any) -> None:
    with pytest.raises(UnknownCodecError, match="a codec name must be a string"):
        sc.get_codec(spec)


def test_a_config_without_id_is_refused() -> None:
    with pytest.raises(CodecConfigError, match="a codec config needs an 'id' key"):
        sc.get_codec({"n": 2})


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n": 4, "m": 4}, r"n must be < m, got n=4, m=4 \(n = m is dense: use 'raw'\)"),
        ({"n": 5, "m": 4}, r"n must be < m, got n=5, m=4"),
        ({"m": 17}, r"m must be in \[2, 16\], got m=17"),
        ({"n": 0}, r"n must be in \[1, inf\], got n=0"),
        ({"n": 2.0}, r"n must be an integer, got 2.0"),
        ({"n": True}, r"n must be an integer, got True"),
        ({"metadata": "bits"}, r"metadata must be one of 'pattern', 'index', 'bitmask'; got "),
        ({"k": 3}, r"unknown parameter\(s\) \['k'\] for codec 'nm'; its parameters are"),
    ],
)
def test_invalid_parameters_name_the_value_and_the_allowed_set(
    params: dict[str, Any], message: str
) -> None:
    with pytest.raises(CodecConfigError, match=message):
        sc.get_codec("nm", **params)


def test_from_config_refuses_a_config_for_another_codec() -> None:
    with pytest.raises(CodecConfigError, match="config is for codec 'raw', not 'nm'"):
        NM.from_config({"id": "raw"})
    with pytest.raises(CodecConfigError, match="a codec config must be a mapping"):
        NM.from_config([("n", 2)])  # type: ignore[arg-type]


def test_codecs_are_equal_exactly_when_their_configs_are() -> None:
    assert NM(n=2, m=4) == NM() == sc.get_codec("2:4")
    assert hash(NM(n=2, m=4)) == hash(NM())
    assert NM(n=1, m=4) != NM(n=2, m=4)
    assert NM(metadata="index") != NM()
    assert CSR() != sc.get_codec("csc")  # same (empty) parameters, different codec
    config = NM(n=1, m=8, metadata="bitmask").get_config()
    assert config == {"id": "nm", "n": 1, "m": 8, "metadata": "bitmask"}
    assert sc.get_codec(json.loads(json.dumps(config))) == NM(n=1, m=8, metadata="bitmask")


def test_a_kept_config_is_a_new_dict_every_call() -> None:
    """get_config is worked out once for a frozen codec of immutable values and kept; every
    call returns a dict of its own, so a caller that edits one (as encoders do) changes no
    other; a list value is not kept (a copy would share it)."""
    codec = NM(n=1, m=8, fill=(3, 4))
    first = codec.get_config()
    first["n"] = 99
    first["fill"].append(5)
    assert codec.get_config() == {"id": "nm", "n": 1, "m": 8, "metadata": "pattern", "fill": [3, 4]}
    assert codec.get_config() is not codec.get_config()
    assert sc.get_codec(codec.get_config()) == codec

    @dataclass(frozen=True, kw_only=True)
    class Listed(Raw):
        levels: Any = None

    listed = Listed(levels=[1, 2])
    listed.get_config()["levels"].append(3)
    assert listed.get_config()["levels"] == [1, 2, 3]  # the codec's own list: not a kept copy
    assert "_sc_config" not in vars(listed)


# -- registration ----------------------------------------------------------------------------


def test_register_codec_as_a_decorator_adds_to_the_process_registry() -> None:
    with registered():
        assert sc.register_codec(Toy) is Toy
        assert sc.get_codec("toy") == Toy()
        assert sc.get_codec("TOY_2") == Toy(level=2)

        @sc.register_codec(replace=True)
        @dataclass(frozen=True, kw_only=True)
        class Replacement(Toy):
            pass

        assert type(sc.get_codec("toy")) is Replacement
    with pytest.raises(UnknownCodecError):  # undone on leaving the block
        sc.get_codec("toy")


def test_registering_the_same_class_twice_is_a_no_op(reg: CodecRegistry) -> None:
    before = reg.names()
    assert reg.register(Toy) is Toy
    assert reg.names() == before
    assert reg.codecs["toy"] is Toy


def test_a_different_class_under_a_taken_id_is_refused_unless_replace(reg: CodecRegistry) -> None:
    with pytest.raises(RegistryError, match=r"'toy' is already taken by .*Toy; pass replace=True"):
        reg.register(OtherToy)
    assert reg.codecs["toy"] is Toy
    reg.register(OtherToy, replace=True)
    assert reg.codecs["toy"] is OtherToy
    assert type(reg.get("toy-2")) is OtherToy


def test_an_alias_cannot_take_a_registered_name(reg: CodecRegistry) -> None:
    @dataclass(frozen=True, kw_only=True)
    class Squatter(Toy):
        codec_id = "squatter"
        aliases = {"TOY": {}}

    with pytest.raises(RegistryError, match="'toy' is already taken"):
        reg.register(Squatter)
    assert "squatter" not in reg.codecs


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (int, "only Codec subclasses can be registered, got <class 'int'>"),
        (Toy(), "only Codec subclasses can be registered"),
    ],
)
def test_only_codec_classes_can_be_registered(reg: CodecRegistry, cls: Any, message: str) -> None:
    with pytest.raises(RegistryError, match=message):
        reg.register(cls)


@pytest.mark.parametrize(("codec_id", "fix"), [("Toy3", "'toy3'"), (" toy3", "'toy3'")])
def test_a_codec_id_must_be_canonical(reg: CodecRegistry, codec_id: str, fix: str) -> None:
    cls = type("Bad", (Toy,), {"codec_id": codec_id})
    with pytest.raises(RegistryError, match=f"must be lower case .*\\(use {fix}\\)"):
        reg.register(cls)


def test_a_hyphenated_codec_id_is_valid_and_folds_with_underscores(reg: CodecRegistry) -> None:
    cls = type("Hyphen", (Toy,), {"codec_id": "toy-3", "aliases": {}})
    reg.register(cls)
    assert reg.resolve("toy-3")[0] is cls
    assert reg.resolve("toy_3")[0] is cls


def test_a_codec_without_an_id_is_refused(reg: CodecRegistry) -> None:
    cls = type("NoId", (Toy,), {"codec_id": ""})
    with pytest.raises(RegistryError, match="NoId must define a non-empty str codec_id"):
        reg.register(cls)


# -- listing ---------------------------------------------------------------------------------


def test_list_codecs_has_every_builtin_with_description_aliases_and_source() -> None:
    rows = {row.name: row for row in sc.list_codecs()}
    assert {"raw", "bitmask", "nm", "csr", "csc"} <= set(rows)
    assert rows["nm"].aliases == ("2:4", "bitmask_2:4")
    assert rows["nm"].source == "builtin"
    assert rows["raw"].description
    assert all(row.error is None for row in rows.values() if row.source == "builtin")
    assert set(registry.codecs) <= {normalize_name(name) for name in rows}  # keys are folded


def test_a_fresh_registry_lists_only_what_was_registered(reg: CodecRegistry) -> None:
    assert [(r.name, r.aliases, r.source) for r in reg.info()] == [("toy", ("toy_2",), "user")]
    assert reg.names() == ["toy", "toy_2"]


def test_the_codecs_view_is_read_only(reg: CodecRegistry) -> None:
    with pytest.raises(TypeError):
        reg.codecs["x"] = Toy  # type: ignore[index]
