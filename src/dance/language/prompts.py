"""The prompts DANCE sends to a language model to discover text concepts (paper §3.2.2).

For every action class the paper asks two questions, one for the physical objects that appear when the action
occurs and one for the places or background scenes where it occurs (kinds ``objects`` and ``scenes``; the
templates are the paper's wording). ``{action}`` is replaced by the humanised class name (``tennis_serve`` and
``TennisServe`` both become ``tennis serve``).

Two more kinds serve the language-concept baselines of the paper's Table 1 (Label-free CBM, Oikarinen et al. 2023):
``temporal`` (body movements only, for "LF-CBM with disentangled language concepts", whose object and scene
concepts are DANCE's) and ``entangled`` (movements, objects and surroundings in one list, for "LF-CBM with
entangled language concepts"). The paper does not print these two prompts in its main text; their wording is this
package's, written in the style of the paper's two.
"""

from __future__ import annotations

import re
from typing import Literal

from dance.errors import LanguageModelError

PromptKind = Literal["objects", "scenes", "temporal", "entangled"]
"""Which concept-discovery question a prompt asks."""

OBJECT_PROMPT_TEMPLATE = (
    "For the {action}, list the most important physical objects that commonly appear when this action occurs."
)
"""Prompt (i) of the paper: the physical objects that commonly appear during the action."""

SCENE_PROMPT_TEMPLATE = (
    "List the most common places or background scenes where {action} typically occurs. "
    "Do not include objects or equipment"
)
"""Prompt (ii) of the paper: the places or background scenes where the action happens (no objects)."""

TEMPORAL_PROMPT_TEMPLATE = (
    "List the most important body movements and motion patterns of a person doing {action}. "
    "Describe movements only, not objects or places"
)
"""Temporal (motion) concepts for the disentangled LF-CBM baseline; this package's wording (not in the paper)."""

ENTANGLED_PROMPT_TEMPLATE = (
    "List the most important visual features for recognizing the action {action} in a video, "
    "including movements, objects and surroundings"
)
"""Spatio-temporally entangled concepts for the entangled LF-CBM baseline; this package's wording (not in the paper)."""

PROMPT_TEMPLATES: dict[str, str] = {"objects": OBJECT_PROMPT_TEMPLATE, "scenes": SCENE_PROMPT_TEMPLATE,
                                    "temporal": TEMPORAL_PROMPT_TEMPLATE, "entangled": ENTANGLED_PROMPT_TEMPLATE}
"""Template per kind, in the order :func:`dance.language.client.ConceptDiscoveryClient.discover` asks them."""

PROMPT_KINDS: tuple[PromptKind, ...] = ("objects", "scenes")
"""The paper's two kinds: what DANCE itself needs, and what is asked unless more kinds are requested."""

ALL_PROMPT_KINDS: tuple[PromptKind, ...] = ("objects", "scenes", "temporal", "entangled")
"""Every kind, in asking order (the last two only for the LF-CBM baselines)."""

SYSTEM_PROMPT = (
    "You are a helpful assistant that answers with a plain list. "
    "Write one item per line: a short noun phrase of a few words, without numbering, bullets, "
    "explanations, introduction or closing remarks."
)
"""System message of every request: asks for a plain list that :func:`dance.language.parse.parse_list` reads."""

STRICT_INSTRUCTION = (
    "Answer with one item per line, nothing else: no numbering, no bullets, no explanations, "
    "no introduction and no closing remarks."
)
"""Appended to a prompt whose first answer contained no list (the stricter follow-up)."""

_CAMEL_LOWER_UPPER = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_CAMEL_ACRONYM = re.compile(r"(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[_\-./\s]+")


def humanize_class_name(name: str) -> str:
    """A dataset class name as words: ``tennis_serve``, ``TennisServe``, ``tennis-serve`` → ``tennis serve``.

    Underscores, hyphens, dots and slashes become spaces, CamelCase is split into words (``PlayingDJ`` →
    ``playing dj``, ``YoYo`` → ``yo yo``), and the result is lower-cased with single spaces. Names that are
    already words (Kinetics' ``playing guitar``) are only lower-cased.
    """
    if not isinstance(name, str):
        raise LanguageModelError(f"an action class name must be a string, got {type(name).__name__}: {name!r}")
    words = _CAMEL_ACRONYM.sub(" ", _CAMEL_LOWER_UPPER.sub(" ", name.strip()))
    human = " ".join(_SEPARATORS.split(words)).strip().lower()
    if not human:
        raise LanguageModelError(f"action class name {name!r} has no words to ask a language model about")
    return human


def render_prompt(kind: str, class_name: str) -> str:
    """The ``kind`` prompt (``"objects"``, ``"scenes"``, ``"temporal"`` or ``"entangled"``) for one action class."""
    try:
        template = PROMPT_TEMPLATES[kind]
    except KeyError:
        raise LanguageModelError(
            f"unknown prompt kind {kind!r}: expected one of {', '.join(ALL_PROMPT_KINDS)}"
        ) from None
    return template.format(action=humanize_class_name(class_name))


def object_prompt(class_name: str) -> str:
    """Prompt (i): the physical objects that commonly appear when ``class_name`` occurs."""
    return render_prompt("objects", class_name)


def scene_prompt(class_name: str) -> str:
    """Prompt (ii): the places or background scenes where ``class_name`` typically occurs."""
    return render_prompt("scenes", class_name)


def check_kinds(kinds: object) -> tuple[PromptKind, ...]:
    """``kinds`` as a tuple of known prompt kinds without duplicates, in the given order; raises on unknown kinds."""
    if isinstance(kinds, str):
        kinds = (kinds,)
    try:
        out = tuple(dict.fromkeys(kinds))  # type: ignore[arg-type]
    except TypeError:
        raise LanguageModelError(f"prompt kinds must be a sequence of names, got {kinds!r}") from None
    unknown = [k for k in out if k not in PROMPT_TEMPLATES]
    if unknown:
        raise LanguageModelError(f"unknown prompt kind(s) {', '.join(map(repr, unknown))}: expected some of "
                                 f"{', '.join(ALL_PROMPT_KINDS)}")
    if not out:
        raise LanguageModelError(f"no prompt kinds given: expected some of {', '.join(ALL_PROMPT_KINDS)}")
    return out  # type: ignore[return-value]


def strict_prompt(prompt: str) -> str:
    """The stricter follow-up of ``prompt``, used when its first answer held no list."""
    return f"{prompt}\n\n{STRICT_INSTRUCTION}"
