"""The codec registry: built-ins, user registrations and entry-point plugins.

Names are matched case-insensitively, with ``-`` and ``_`` treated alike. Third-party codecs
are declared in the entry-point group ``sparsecodecs.codecs``::

    [project.entry-points."sparsecodecs.codecs"]
    mycodec = "mypackage.mycodec:MyCodec"

and only the one asked for is imported. Nothing is ever imported from a name found in a frame
or a config except through such a declared entry point.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from .codec import Codec
from .errors import CodecConfigError, PluginError, RegistryError, UnknownCodecError

if TYPE_CHECKING:  # importlib.metadata costs ~40 ms: imported when a plugin is first looked up
    from importlib.metadata import EntryPoint

__all__ = [
    "ENTRY_POINT_GROUP",
    "CodecInfo",
    "CodecRegistry",
    "get_codec",
    "list_codecs",
    "normalize_name",
    "register_codec",
    "registry",
]

ENTRY_POINT_GROUP = "sparsecodecs.codecs"
C = TypeVar("C", bound=type[Codec])


def normalize_name(name: str) -> str:
    """The lookup key of a codec name: lower case, ``-`` folded into ``_``."""
    return name.strip().lower().replace("-", "_")


@dataclass(frozen=True)
class CodecInfo:
    """One row of :func:`list_codecs`."""

    name: str
    description: str
    aliases: tuple[str, ...]
    source: str  # "builtin", "user", or "plugin <distribution>"
    error: str | None = None  # why a plugin failed to load, if it did


class CodecRegistry:
    """Maps codec ids and aliases to codec classes; loads entry-point plugins lazily."""

    def __init__(self, group: str = ENTRY_POINT_GROUP) -> None:
        self.group = group
        self._classes: dict[str, type[Codec]] = {}
        self._sources: dict[str, str] = {}
        self._aliases: dict[str, tuple[str, Mapping[str, Any]]] = {}
        self._entry_points: dict[str, EntryPoint] | None = None

    # -- registration ----------------------------------------------------------------------------

    def register(self, cls: C, *, replace: bool = False, source: str = "user") -> C:
        """Register ``cls`` under its ``codec_id`` and aliases.

        Registering the same class again is a no-op; a different class under a taken id raises
        :class:`RegistryError` unless ``replace=True``.
        """
        if not (isinstance(cls, type) and issubclass(cls, Codec)):
            raise RegistryError(f"only Codec subclasses can be registered, got {cls!r}")
        codec_id = getattr(cls, "codec_id", None)
        if not isinstance(codec_id, str) or not codec_id.strip():
            raise RegistryError(f"{cls.__qualname__} must define a non-empty str codec_id")
        key = normalize_name(codec_id)
        if key != codec_id:
            raise RegistryError(
                f"codec_id {codec_id!r} of {cls.__qualname__} must be lower case with '_' "
                f"(use {key!r})"
            )
        keys = [key, *(normalize_name(a) for a in cls.aliases)]
        for k in keys:
            owner = self._owner(k)
            if owner is not None and owner is not cls and not replace:
                raise RegistryError(
                    f"codec name {k!r} is already taken by {owner.__module__}."
                    f"{owner.__qualname__}; pass replace=True to replace it"
                )
        self._classes[key] = cls
        self._sources[key] = source
        for alias, preset in cls.aliases.items():
            self._aliases[normalize_name(alias)] = (key, dict(preset))
        return cls

    def _owner(self, key: str) -> type[Codec] | None:
        if key in self._classes:
            return self._classes[key]
        if key in self._aliases:
            return self._classes.get(self._aliases[key][0])
        return None

    # -- entry points ----------------------------------------------------------------------------

    def _plugins(self) -> dict[str, EntryPoint]:
        if self._entry_points is None:
            from importlib.metadata import entry_points

            self._entry_points = {
                normalize_name(ep.name): ep for ep in entry_points(group=self.group)
            }
        return self._entry_points

    def refresh_plugins(self) -> None:
        """Forget the cached entry-point list (after installing a plugin at run time)."""
        self._entry_points = None

    def _load_plugin(self, key: str) -> type[Codec]:
        ep = self._plugins()[key]
        dist = getattr(ep.dist, "name", None) or "an unknown distribution"
        try:
            obj = ep.load()
        except Exception as exc:  # any import-time failure of third-party code
            raise PluginError(
                f"codec plugin {ep.name!r} ({ep.value}) from distribution {dist!r} failed to "
                f"load: {type(exc).__name__}: {exc}"
            ) from exc
        if not (isinstance(obj, type) and issubclass(obj, Codec)):
            raise PluginError(
                f"codec plugin {ep.name!r} from distribution {dist!r} points to {obj!r}, "
                "which is not a sparsecodecs Codec subclass"
            )
        if normalize_name(getattr(obj, "codec_id", "")) != key:
            raise PluginError(
                f"codec plugin {ep.name!r} from distribution {dist!r} loads a class whose "
                f"codec_id is {getattr(obj, 'codec_id', None)!r}; they must match"
            )
        return self.register(obj, source=f"plugin {dist}")

    # -- lookup ----------------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Every registered id, alias and installed plugin name, sorted."""
        return sorted({*self._classes, *self._aliases, *self._plugins()})

    def resolve(self, name: str) -> tuple[type[Codec], dict[str, Any]]:
        """The class and preset parameters for ``name`` (an id or alias)."""
        if not isinstance(name, str):
            raise UnknownCodecError(f"a codec name must be a string, got {name!r:.200}")
        key = normalize_name(name)
        if key in self._classes:
            return self._classes[key], {}
        if key in self._aliases:
            target, preset = self._aliases[key]
            return self._classes[target], dict(preset)
        if key in self._plugins():
            return self._load_plugin(key), {}
        names = self.names()
        close = difflib.get_close_matches(key, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ";"
        raise UnknownCodecError(
            f"unknown codec {name!r}{hint} available: {', '.join(names)}"
        )

    def get(self, spec: str | Mapping[str, Any], **params: Any) -> Codec:
        """A codec instance from a name (plus parameters) or a config dict with an ``id``."""
        if isinstance(spec, Mapping):
            config = dict(spec)
            if "id" not in config:
                raise CodecConfigError(f"a codec config needs an 'id' key, got {config!r:.200}")
            name = config.pop("id")
            config.update(params)
        else:
            name, config = spec, dict(params)
        cls, preset = self.resolve(name)
        return cls.from_config({**preset, **config})

    def info(self) -> list[CodecInfo]:
        """One :class:`CodecInfo` per codec id, loading plugins to read their descriptions."""
        rows = []
        for key in sorted({*self._classes, *self._plugins()}):
            error = None
            if key not in self._classes:
                try:
                    self._load_plugin(key)
                except PluginError as exc:
                    error = str(exc)
            cls = self._classes.get(key)
            aliases = tuple(sorted(a for a, (t, _) in self._aliases.items() if t == key))
            source = self._sources.get(key, "plugin")
            rows.append(CodecInfo(key, cls.description if cls else "", aliases, source, error))
        return rows

    @property
    def codecs(self) -> Mapping[str, type[Codec]]:
        """A read-only view of the registered (already loaded) codec classes."""
        return MappingProxyType(self._classes)


#: The process-wide registry used by the module-level functions.
registry = CodecRegistry()


def register_codec(cls: C | None = None, *, replace: bool = False) -> Any:
    """Register a codec class: ``@register_codec`` or ``@register_codec(replace=True)``."""
    if cls is None:
        return lambda c: registry.register(c, replace=replace)
    return registry.register(cls, replace=replace)


def get_codec(spec: str | Mapping[str, Any], **params: Any) -> Codec:
    """Look up a codec by name or config: ``get_codec("nm", n=2, m=4)``."""
    return registry.get(spec, **params)


def list_codecs() -> list[CodecInfo]:
    """Every available codec: built-ins, user registrations and installed plugins."""
    return registry.info()
