"""Concept sets: a dataset's object and scene concepts, as one JSON file.

Format (stable)::

    {"dataset": "ucf101", "classes": [...], "source": {...}, "prompts": {"objects": "...", "scenes": "..."},
     "object": ["barbell", ...], "scene": ["gym", ...], "dropped": {"object": [{...}], "scene": [{...}]}}

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
from dance.language.prompts import PROMPT_TEMPLATES
from dance.language.text_encoder import TextEncoder
from dance.runs import atomic_write_json

SHIPPED_DIR = Path(__file__).parent / "concept_sets"
TYPES = ("object", "scene")
KIND_OF_TYPE = {"object": "objects", "scene": "scenes"}  # concept type -> prompt kind


@dataclass
class ConceptSet:
    """Object and scene concepts of one dataset, with where they came from and what the filters dropped."""

    dataset: str
    object: list[str]
    scene: list[str]
    classes: list[str] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)
    prompts: dict[str, str] = field(default_factory=lambda: dict(PROMPT_TEMPLATES))
    dropped: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {t: [] for t in TYPES})

    def names(self, ctype: str) -> list[str]:
        return list(getattr(self, ctype))

    def to_json(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "classes": self.classes, "source": self.source, "prompts": self.prompts,
                "object": self.object, "scene": self.scene, "dropped": self.dropped}

    @classmethod
    def from_json(cls, d: Any, where: str = "concept set") -> ConceptSet:
        if not isinstance(d, dict):
            raise ConfigError(f"{where}: expected a JSON object with 'object' and 'scene' lists")
        for t in TYPES:
            if not isinstance(d.get(t), list) or not all(isinstance(x, str) for x in d[t]):
                raise ConfigError(f"{where}: '{t}' must be a list of strings")
        return cls(dataset=str(d.get("dataset", "")), object=[str(x) for x in d["object"]],
                   scene=[str(x) for x in d["scene"]], classes=[str(c) for c in d.get("classes", [])],
                   source=dict(d.get("source", {})), prompts=dict(d.get("prompts", PROMPT_TEMPLATES)),
                   dropped={t: list(d.get("dropped", {}).get(t, [])) for t in TYPES})

    def save(self, path: Path | str) -> Path:
        atomic_write_json(Path(path), self.to_json())
        return Path(path)


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def shipped_names() -> list[str]:
    """Names of the concept sets shipped with the package (``kth``, ``penn_action``, ``ucf101``)."""
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.json"))


def load_concept_set(name_or_path: str | Path) -> ConceptSet:
    """A shipped set by name (``ucf101``, ``UCF-101`` and ``ucf_101`` all work) or a concept-set JSON file."""
    text = str(name_or_path).strip()
    path = Path(text).expanduser()
    if not path.is_file():
        match = [n for n in shipped_names() if _key(n) == _key(text)]
        if not match:
            raise ConfigError(f"no concept set '{text}': not a file, and not a shipped set "
                              f"(shipped: {', '.join(shipped_names())})")
        path = SHIPPED_DIR / f"{match[0]}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: not a readable concept-set JSON file ({e})") from None
    return ConceptSet.from_json(data, where=str(path))


def parse_answers(answers: Mapping[str, Mapping[str, str]]) -> tuple[dict[str, dict[str, list[str]]], list[str]]:
    """Raw answers ``{class: {"objects": text, "scenes": text}}`` -> parsed lists per class, and problems found."""
    lists: dict[str, dict[str, list[str]]] = {}
    problems: list[str] = []
    for cls, pair in answers.items():
        lists[cls] = {}
        for kind in ("objects", "scenes"):
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
) -> ConceptSet:
    """Pool every class's items (class order, then answer order) per type and run the Label-free CBM filters."""
    if not classes:
        raise LanguageModelError("a concept set needs at least one class")
    pooled = {"object": [x for c in classes for x in objects.get(c, [])],
              "scene": [x for c in classes for x in scenes.get(c, [])]}
    kept: dict[str, list[str]] = {}
    dropped: dict[str, list[dict[str, Any]]] = {}
    for t in TYPES:
        res = filter_concepts(pooled[t], classes, encoder, max_length=max_length,
                              class_similarity=class_similarity, duplicate_similarity=duplicate_similarity)
        kept[t], dropped[t] = res.kept, [asdict(d) for d in res.dropped]
    filters = {"max_length": max_length, "class_similarity": class_similarity,
               "duplicate_similarity": duplicate_similarity, "text_encoder": getattr(encoder, "name", repr(encoder))}
    return ConceptSet(dataset=dataset, object=kept["object"], scene=kept["scene"], classes=list(classes),
                      source=dict(source) | {"filters": filters}, dropped=dropped)
