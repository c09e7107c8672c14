"""The codec registry: built-ins, user registrations and entry-point plugins.

Names are matched case-insensitively, with ``-`` and ``_`` treated alike: a ``codec_id`` may be
written with either (``my-codec`` and ``my_codec`` are one codec, and only one of them can be
registered), but in lower case, and frames record it as written. Third-party codecs are declared
in the entry-point group ``sparsecodecs.codecs``::

    [project.entry-points."sparsecodecs.codecs"]
    mycodec = "mypackage.mycodec:MyCodec"

and only the one asked for is imported. Nothing is ever imported from a name found in a frame
or a config except through such a declared entry point.

Each plugin loads in isolation: whatever goes wrong in it (its module fails to import, the
entry point names something that is not a codec class, the class's id or aliases are invalid
or taken) becomes a :class:`PluginError` naming the plugin and its distribution, chained from
the original exception, raised by a lookup of that plugin only. :func:`list_codecs` lists such a
plugin with its error, and the built-in codecs are never affected.
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
        # names declared by more than one distribution (or twice differently): all of them
        self._clashes: dict[str, list[EntryPoint]] = {}

    # -- registration ----------------------------------------------------------------------------

    def register(self, cls: C, *, replace: bool = False, source: str = "user") -> C:
        """Register ``cls`` under its ``codec_id`` and aliases.

        Registering the same class again is a no-op; a different class under a taken id raises
        :class:`RegistryError` unless ``replace=True``. Nothing is registered if anything about
        ``cls`` is invalid.
        """
        if not (isinstance(cls, type) and issubclass(cls, Codec)):
            raise RegistryError(f"only Codec subclasses can be registered, got {cls!r:.200}")
        codec_id = getattr(cls, "codec_id", None)
        if not isinstance(codec_id, str) or not codec_id.strip():
            raise RegistryError(f"{cls.__qualname__} must define a non-empty str codec_id")
        if codec_id != codec_id.strip().lower():
            raise RegistryError(
                f"codec_id {codec_id!r} of {cls.__qualname__} must be lower case without "
                f"surrounding spaces (use {codec_id.strip().lower()!r})"
            )
        key = normalize_name(codec_id)
        aliases = getattr(cls, "aliases", None)
        if not isinstance(aliases, Mapping) or not all(
            isinstance(a, str) and a.strip() and isinstance(p, Mapping)
            for a, p in aliases.items()
        ):
            raise RegistryError(
                f"aliases of {cls.__qualname__} must map non-empty names to parameter dicts, "
                f"got {aliases!r:.200}"
            )
        description = getattr(cls, "description", None)
        if not isinstance(description, str):
            raise RegistryError(
                f"description of {cls.__qualname__} must be a str, got {description!r:.200}"
            )
        presets = {normalize_name(a): dict(p) for a, p in aliases.items()}
        for k in [key, *presets]:
            owner = self._owner(k)
            if owner is not None and owner is not cls and not replace:
                raise RegistryError(
                    f"codec name {k!r} is already taken by {owner.__module__}."
                    f"{owner.__qualname__}; pass replace=True to replace it"
                )
        self._classes[key] = cls
        self._sources[key] = source
        for alias, preset in presets.items():
            self._aliases[alias] = (key, preset)
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

            found: dict[str, list[EntryPoint]] = {}
            for ep in entry_points(group=self.group):
                same = found.setdefault(normalize_name(ep.name), [])
                if all((e.value, _dist_name(e)) != (ep.value, _dist_name(ep)) for e in same):
                    same.append(ep)  # the same distribution seen twice on sys.path is one
            self._clashes = {k: eps for k, eps in found.items() if len(eps) > 1}
            self._entry_points = {k: eps[0] for k, eps in found.items()}
        return self._entry_points

    def refresh_plugins(self) -> None:
        """Forget the cached entry-point list (after installing a plugin at run time)."""
        self._entry_points = None

    def _load_plugin(self, key: str) -> type[Codec]:
        ep = self._plugins()[key]
        dist = _dist_name(ep) or "an unknown distribution"
        what = f"codec plugin {ep.name!r} ({ep.value}) from distribution {dist!r}"
        if key in self._clashes:
            each = "; ".join(
                f"{e.name!r} = {e.value} in {_dist_name(e) or 'an unknown distribution'!r}"
                for e in self._clashes[key]
            )
            raise PluginError(
                f"codec plugin name {key!r} is declared by more than one installed entry point "
                f"({each}); none of them is loaded: uninstall all but one"
            )
        try:
            obj = ep.load()
        except (Exception, SystemExit) as exc:  # any import-time failure of third-party code
            raise PluginError(
                f"{what} failed to load: {type(exc).__name__}: {_one_line(exc)}"
            ) from exc
        if not (isinstance(obj, type) and issubclass(obj, Codec)):
            raise PluginError(
                f"codec plugin {ep.name!r} from distribution {dist!r} points to {obj!r:.200}, "
                "which is not a sparsecodecs Codec subclass"
            )
        codec_id = getattr(obj, "codec_id", None)
        if not isinstance(codec_id, str) or normalize_name(codec_id) != key:
            raise PluginError(
                f"codec plugin {ep.name!r} from distribution {dist!r} loads a class whose "
                f"codec_id is {codec_id!r:.200}; they must match"
            )
        try:
            return self.register(obj, source=f"plugin {dist}")
        except RegistryError as exc:
            raise PluginError(f"{what} cannot be registered: {exc}") from exc

    # -- lookup ----------------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Every registered id, alias and installed plugin name, sorted."""
        return sorted({*self._classes, *self._aliases, *self._plugins()})

    def resolve(self, name: str) -> tuple[type[Codec], dict[str, Any]]:
        """The class and preset parameters for ``name`` (an id or alias)."""
        cls = self._classes.get(name) if type(name) is str else None
        if cls is not None:  # a registered id as it is stored (every frame's): normalized
            return cls, {}
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
        """One :class:`CodecInfo` per codec id, loading plugins to read their descriptions; a
        plugin that fails to load is listed with its error instead."""
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
            source = self._sources.get(key) or self._plugin_source(key)
            name = cls.codec_id if cls is not None else key
            rows.append(CodecInfo(name, cls.description if cls else "", aliases, source, error))
        return rows

    def _plugin_source(self, key: str) -> str:
        dist = _dist_name(self._plugins()[key])
        return f"plugin {dist}" if dist else "plugin"

    @property
    def codecs(self) -> Mapping[str, type[Codec]]:
        """A read-only view of the registered (already loaded) codec classes."""
        return MappingProxyType(self._classes)


def _dist_name(ep: EntryPoint) -> str | None:
    """The name of the distribution that declares ``ep``, if known."""
    name = getattr(ep.dist, "name", None)
    return name if isinstance(name, str) else None


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line, at most 500 characters."""
    text = " ".join(str(exc).split())
    return text if len(text) <= 500 else text[:497] + "..."


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
