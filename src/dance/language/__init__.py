"""Language side of DANCE: asking a language model for object and scene concepts (paper §3.2.2).

* :mod:`dance.language.prompts`: the paper's two prompts per action class and class-name humanisation;
* :mod:`dance.language.parse`: :func:`parse_list`, reading a list out of a free-form model answer;
* :mod:`dance.language.client`: :class:`ConceptDiscoveryClient`, an OpenAI-compatible chat client with retries
  and an on-disk answer cache (needs the optional ``openai`` package: ``pip install 'dance-xai[llm]'``).

Importing this package does not import ``openai``.
"""

from __future__ import annotations

from dance.language.client import ConceptDiscoveryClient, DiscoveryResult, LLMSettings
from dance.language.parse import clean_item, parse_list
from dance.language.prompts import (
    OBJECT_PROMPT_TEMPLATE,
    PROMPT_KINDS,
    SCENE_PROMPT_TEMPLATE,
    SYSTEM_PROMPT,
    humanize_class_name,
    object_prompt,
    render_prompt,
    scene_prompt,
)

__all__ = [
    "ConceptDiscoveryClient",
    "DiscoveryResult",
    "LLMSettings",
    "OBJECT_PROMPT_TEMPLATE",
    "PROMPT_KINDS",
    "SCENE_PROMPT_TEMPLATE",
    "SYSTEM_PROMPT",
    "clean_item",
    "humanize_class_name",
    "object_prompt",
    "parse_list",
    "render_prompt",
    "scene_prompt",
]
