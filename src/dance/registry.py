"""Named entries that settings choose from: :class:`Registry` (name → entry with a one-line description).

Backbones, pose sources, label sources, dataset formats and baseline variants each keep one :class:`Registry`;
a new entry is one decorated definition in one file (as with timm's ``register_model``)::

    POSE_SOURCES = Registry("pose source", builtins=("dance.motion.pose_sources",))

    @POSE_SOURCES.register("files", "pose files next to the videos")
    def files_source(...): ...

An unknown name raises :class:`dance.errors.ConfigError` naming the closest known names
(``unknown pose source 'mediapip'; did you mean: mediapipe (known: …)``). ``builtins`` are modules imported on
the first lookup, listing or membership test — not when the registry is created — so that modules holding heavy
entries (torch models) are imported only when an entry is asked for and ``dance --help`` stays cheap. A
built-in module imports the registry's module to register into it; the registry's module never imports it back
(not even lazily), so the imports stay one-way (``lint-imports``: no cycles between sibling modules).

:func:`did_you_mean` and :func:`unknown_name` are the message helpers, also used for names outside a registry
(settings sections and keys, concept sets).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from dance.errors import ConfigError

T = TypeVar("T")


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> str:
    """``"; did you mean: a, b"`` for the choices close to ``name``, else ``""``."""
    by_lower = {str(c).lower(): str(c) for c in choices}
    close = [by_lower[c] for c in difflib.get_close_matches(str(name).lower(), by_lower, n=n, cutoff=0.5)]
    if not close:  # separators only: random_3dconv for random-3dconv, ucf_101 for ucf101
        key = _key(name)
        close = [c for c in by_lower.values() if _key(c) == key][:n]
    return f"; did you mean: {', '.join(close)}" if close else ""


def _key(text: Any) -> str:
    return "".join(ch for ch in str(text).lower() if ch.isalnum())


def unknown_name(what: str, name: Any, known: Sequence[str], where: str = "") -> str:
    """``"unknown WHAT 'NAME'WHERE; did you mean: … (known: …)"``."""
    return f"unknown {what} '{name}'{where}{did_you_mean(str(name), known)} (known: {', '.join(known)})"


class Registry(Generic[T]):
    """Name → entry, each with a one-line description, in registration order.

    ``kind`` names an entry in messages ("backbone", "pose source"). ``builtins``: modules that register the
    built-in entries, imported on first use (see the module docstring).
    """

    def __init__(self, kind: str, builtins: Sequence[str] = ()) -> None:
        self.kind = kind
        self._builtins = tuple(builtins)
        self._loaded = not self._builtins
        self._entries: dict[str, T] = {}
        self._descriptions: dict[str, str] = {}

    # ---------------------------------------------------------------------------------------- adding

    def add(self, name: str, entry: T, description: str = "") -> T:
        """Register ``entry`` under ``name``; a name registered twice is a :class:`ValueError` (a programming
        error, not a user's)."""
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' is already registered")
        self._entries[name] = entry
        self._descriptions[name] = description
        return entry

    def register(self, name: str, description: str = "") -> Callable[[T], T]:
        """Decorator form of :meth:`add`; returns the decorated object unchanged."""

        def deco(entry: T) -> T:
            return self.add(name, entry, description)

        return deco

    def remove(self, name: str) -> T:
        """Unregister ``name`` and return its entry."""
        self._load()
        self._descriptions.pop(name, None)
        return self._entries.pop(name)

    @contextmanager
    def temporary(self) -> Iterator[Registry[T]]:
        """Entries added (or removed) inside the ``with`` block are undone when it ends (tests)."""
        self._load()
        entries, descriptions = dict(self._entries), dict(self._descriptions)
        try:
            yield self
        finally:
            self._entries, self._descriptions = entries, descriptions

    # ---------------------------------------------------------------------------------------- reading

    def get(self, name: str) -> T:
        """The entry of ``name``; :class:`ConfigError` with the closest names when there is none."""
        self._load()
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ConfigError(unknown_name(self.kind, name, self.names())) from None

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def check(self, name: Any) -> str | None:
        """None when ``name`` is registered, else the message :meth:`get` would raise."""
        return None if name in self else unknown_name(self.kind, name, self.names())

    def description(self, name: str) -> str:
        self.get(name)
        return self._descriptions[name]

    def names(self) -> list[str]:
        self._load()
        return list(self._entries)

    def items(self) -> list[tuple[str, T]]:
        self._load()
        return list(self._entries.items())

    def describe(self) -> list[tuple[str, str]]:
        """``(name, description)`` of every entry, for listings."""
        self._load()
        return list(self._descriptions.items())

    def __contains__(self, name: object) -> bool:
        self._load()
        try:
            return name in self._entries
        except TypeError:  # unhashable (a list from a settings file)
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        shown = ", ".join(self._entries) if self._loaded else "built-ins not loaded yet"
        return f"Registry({self.kind!r}: {shown})"

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # before importing: the modules register into this registry while they load
        try:
            for module in self._builtins:
                importlib.import_module(module)
        except BaseException:
            self._loaded = False
            raise
