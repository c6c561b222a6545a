"""Concept sets: a dataset's text concepts (objects and scenes; optionally temporal and entangled), as one JSON file.

Format (stable)::

    {"dataset": "ucf101", "classes": [...], "source": {...}, "prompts": {"objects": "...", "scenes": "..."},
     "object": ["barbell", ...], "scene": ["gym", ...], "dropped": {"object": [{...}], "scene": [{...}]}}

``object`` and ``scene`` are always there (DANCE's text concepts). Two optional lists serve the language-concept
baselines of the paper's Table 1: ``temporal`` (LLM-written motion concepts, for "LF-CBM with disentangled language
concepts") and ``entangled`` (spatio-temporally entangled concepts, for "LF-CBM with entangled language concepts").
An absent optional list means none, and a set without them is written without the keys, so older files and readers
keep working; when present, ``prompts`` and ``dropped`` have entries for them too.

``source`` says where the answers came from (the language model, who asked it, when) and which filters ran;
``dropped`` lists every candidate a filter removed with the rule and value (:class:`dance.language.filters.Dropped`).

Shipped sets (package data, ``dance/language/concept_sets/<name>.json``) are built by
``scripts/build_concept_sets.py`` from the raw answers kept beside them (``concept_sets/answers/<name>.json``), with
the same parser and filters a run uses, so anyone can check or rebuild them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dance.errors import ConfigError, LanguageModelError
from dance.language.filters import filter_concepts
from dance.language.parse import parse_list
from dance.language.prompts import PROMPT_KINDS, PROMPT_TEMPLATES
from dance.language.text_encoder import TextEncoder
from dance.runs import atomic_write_json

SHIPPED_DIR = Path(__file__).parent / "concept_sets"
TYPES = ("object", "scene")
"""The concept types every set has (DANCE's text concepts)."""
OPTIONAL_TYPES = ("temporal", "entangled")
"""Concept types a set may have, for the LF-CBM baselines (absent = empty)."""
ALL_TYPES = TYPES + OPTIONAL_TYPES
KIND_OF_TYPE = {"object": "objects", "scene": "scenes", "temporal": "temporal",
                "entangled": "entangled"}  # concept type -> prompt kind


def _default_prompts() -> dict[str, str]:
    return {k: PROMPT_TEMPLATES[k] for k in PROMPT_KINDS}


@dataclass
class ConceptSet:
    """Text concepts of one dataset, with where they came from and what the filters dropped.

    ``object`` and ``scene`` are DANCE's concepts; ``temporal`` and ``entangled`` (may be empty) are the text
    concepts of the LF-CBM baselines (see the module docstring).
    """

    dataset: str
    object: list[str]
    scene: list[str]
    classes: list[str] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)
    prompts: dict[str, str] = field(default_factory=_default_prompts)
    dropped: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {t: [] for t in TYPES})
    temporal: list[str] = field(default_factory=list)
    entangled: list[str] = field(default_factory=list)

    def names(self, ctype: str) -> list[str]:
        """The concepts of one type (``object``, ``scene``, ``temporal`` or ``entangled``)."""
        if ctype not in ALL_TYPES:
            raise ConfigError(f"unknown concept type '{ctype}': expected one of {', '.join(ALL_TYPES)}")
        return list(getattr(self, ctype))

    def types(self) -> list[str]:
        """``object`` and ``scene``, then each optional type that has concepts."""
        return list(TYPES) + [t for t in OPTIONAL_TYPES if getattr(self, t)]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"dataset": self.dataset, "classes": self.classes, "source": self.source,
                               "prompts": self.prompts, "object": self.object, "scene": self.scene}
        for t in OPTIONAL_TYPES:
            if getattr(self, t):
                out[t] = getattr(self, t)
        return out | {"dropped": self.dropped}

    @classmethod
    def from_json(cls, d: Any, where: str = "concept set") -> ConceptSet:
        if not isinstance(d, dict):
            raise ConfigError(f"{where}: expected a JSON object with 'object' and 'scene' lists")
        for t in ALL_TYPES:
            if t not in TYPES and t not in d:
                continue
            if not isinstance(d.get(t), list) or not all(isinstance(x, str) for x in d[t]):
                raise ConfigError(f"{where}: '{t}' must be a list of strings")
        dropped = d.get("dropped", {})
        return cls(dataset=str(d.get("dataset", "")), object=[str(x) for x in d["object"]],
                   scene=[str(x) for x in d["scene"]], classes=[str(c) for c in d.get("classes", [])],
                   source=dict(d.get("source", {})), prompts=dict(d.get("prompts", _default_prompts())),
                   dropped={t: list(dropped.get(t, [])) for t in ALL_TYPES if t in TYPES or t in dropped},
                   temporal=[str(x) for x in d.get("temporal", [])],
                   entangled=[str(x) for x in d.get("entangled", [])])

    def save(self, path: Path | str) -> Path:
        atomic_write_json(Path(path), self.to_json())
        return Path(path)


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def shipped_names() -> list[str]:
    """Names of the concept sets shipped with the package (``kth``, ``penn_action``, ``ucf101``)."""
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.json"))


def concept_set_path(name_or_path: str | Path) -> Path:
    """The file behind a concept-set name (``ucf101``, ``UCF-101`` and ``ucf_101`` all work) or path."""
    text = str(name_or_path).strip()
    path = Path(text).expanduser()
    if path.is_file():
        return path
    match = [n for n in shipped_names() if _key(n) == _key(text)]
    if not match:
        raise ConfigError(f"no concept set '{text}': not a file, and not a shipped set "
                          f"(shipped: {', '.join(shipped_names())})")
    return SHIPPED_DIR / f"{match[0]}.json"


def load_concept_set(name_or_path: str | Path) -> ConceptSet:
    """A shipped set by name (``ucf101``, ``UCF-101`` and ``ucf_101`` all work) or a concept-set JSON file."""
    path = concept_set_path(name_or_path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: not a readable concept-set JSON file ({e})") from None
    return ConceptSet.from_json(data, where=str(path))


def parse_answers(answers: Mapping[str, Mapping[str, str]]) -> tuple[dict[str, dict[str, list[str]]], list[str]]:
    """Raw answers ``{class: {"objects": text, "scenes": text}}`` -> parsed lists per class, and problems found.

    ``objects`` and ``scenes`` are needed for every class. ``temporal`` and ``entangled`` answers are optional:
    a kind that no class has is left out of the result; a kind that some class has is read for every class, and
    a class without a list for it is a problem.
    """
    optional = [k for k in ("temporal", "entangled")
                if any(isinstance(pair, Mapping) and k in pair for pair in answers.values())]
    lists: dict[str, dict[str, list[str]]] = {}
    problems: list[str] = []
    for cls, pair in answers.items():
        lists[cls] = {}
        for kind in ("objects", "scenes", *optional):
            raw = pair.get(kind) if isinstance(pair, Mapping) else None
            items = parse_list(raw) if isinstance(raw, str) else []
            if not items:
                problems.append(f"class '{cls}': no {kind} list in the answer")
            lists[cls][kind] = items
    return lists, problems


def build_concept_set(
    dataset: str,
    classes: Sequence[str],
    objects: Mapping[str, Sequence[str]],
    scenes: Mapping[str, Sequence[str]],
    encoder: TextEncoder,
    source: Mapping[str, Any],
    max_length: int = 30,
    class_similarity: float = 0.85,
    duplicate_similarity: float = 0.9,
    temporal: Mapping[str, Sequence[str]] | None = None,
    entangled: Mapping[str, Sequence[str]] | None = None,
) -> ConceptSet:
    """Pool every class's items (class order, then answer order) per type and run the Label-free CBM filters.

    ``temporal`` and ``entangled`` (optional, items per class like ``objects``) add those concept types; ``None``
    or no items leaves the type out of the set.
    """
    if not classes:
        raise LanguageModelError("a concept set needs at least one class")
    per_type: dict[str, Mapping[str, Sequence[str]]] = {"object": objects, "scene": scenes}
    for t, given in (("temporal", temporal), ("entangled", entangled)):
        if given and any(given.get(c) for c in classes):
            per_type[t] = given
    kept: dict[str, list[str]] = {}
    dropped: dict[str, list[dict[str, Any]]] = {}
    for t, items in per_type.items():
        pooled = [x for c in classes for x in items.get(c, [])]
        res = filter_concepts(pooled, classes, encoder, max_length=max_length,
                              class_similarity=class_similarity, duplicate_similarity=duplicate_similarity)
        kept[t], dropped[t] = res.kept, [asdict(d) for d in res.dropped]
    filters = {"max_length": max_length, "class_similarity": class_similarity,
               "duplicate_similarity": duplicate_similarity, "text_encoder": getattr(encoder, "name", repr(encoder))}
    prompts = {KIND_OF_TYPE[t]: PROMPT_TEMPLATES[KIND_OF_TYPE[t]] for t in per_type}
    return ConceptSet(dataset=dataset, object=kept["object"], scene=kept["scene"], classes=list(classes),
                      source=dict(source) | {"filters": filters}, prompts=prompts, dropped=dropped,
                      temporal=kept.get("temporal", []), entangled=kept.get("entangled", []))
