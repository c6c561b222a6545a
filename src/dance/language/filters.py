"""Filters for candidate object/scene concepts, as in Label-free CBM (Oikarinen et al., 2023), which DANCE follows.

Candidate concepts come from a language model and are noisy. :func:`filter_concepts` cleans them in this order:

0. normalise: strip, lower-case, collapse inner whitespace; drop empty phrases; merge exact duplicates (the first
   occurrence stays);
1. ``length``: drop concepts longer than ``max_length`` characters;
2. ``class_similarity``: drop concepts whose embedding has cosine similarity >= ``class_similarity`` with any
   class name, humanised by :func:`dance.language.prompts.humanize_class_name` (``tennis_serve`` -> "tennis
   serve"), since such a concept would leak the label;
3. ``duplicate_similarity``: among the concepts left, for every pair with similarity >= ``duplicate_similarity``
   drop the one with the lower mean similarity to the other concepts (the more general concept stays). Pairs are
   visited in input order and a pair is skipped once either member was dropped, as in Label-free CBM.

Every dropped concept is reported with the rule, the value that triggered it and the class / concept involved. The
kept concepts keep the input order. Similarities are cosines of the encoder's embeddings (re-normalised, compared in
float64); a value within ``1e-6`` below a threshold counts as reaching it, so float32 rounding cannot flip a boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from dance.errors import ConfigError, ModelError
from dance.language.prompts import humanize_class_name
from dance.language.text_encoder import TextEncoder, l2_normalise

RULE_EMPTY = "empty"
RULE_EXACT_DUPLICATE = "exact_duplicate"
RULE_LENGTH = "length"
RULE_CLASS_SIMILARITY = "class_similarity"
RULE_DUPLICATE_SIMILARITY = "duplicate_similarity"
RULES = (RULE_EMPTY, RULE_EXACT_DUPLICATE, RULE_LENGTH, RULE_CLASS_SIMILARITY, RULE_DUPLICATE_SIMILARITY)

TOLERANCE = 1e-6


@dataclass
class Dropped:
    """One concept removed by a filter.

    ``concept``: the normalised phrase (for ``empty`` and ``exact_duplicate``, the phrase as given); ``rule``: one of
    :data:`RULES`; ``value``: the length (``length``), the cosine similarity (``class_similarity``,
    ``duplicate_similarity``), 1.0 (``exact_duplicate``) or 0 (``empty``); ``other``: the class name as given
    (``class_similarity``) or the kept concept it duplicates (``exact_duplicate``, ``duplicate_similarity``).
    """

    concept: str
    rule: str
    value: float | int
    other: str | None = None


@dataclass
class FilterResult:
    """Concepts that passed every filter (input order) and the ones dropped (in the order the rules ran)."""

    kept: list[str]
    dropped: list[Dropped] = field(default_factory=list)

    def dropped_by(self, rule: str) -> list[Dropped]:
        """The dropped entries of one rule."""
        return [d for d in self.dropped if d.rule == rule]


def normalise_concept(text: str) -> str:
    """Strip, lower-case and collapse whitespace: ``"  Tennis   Racket "`` -> ``"tennis racket"``."""
    return " ".join(str(text).split()).lower()


def _check_threshold(name: str, value: float) -> float:
    v = float(value)
    if not np.isfinite(v) or not -1.0 <= v <= 1.0:
        raise ConfigError(f"{name} must be a cosine similarity in [-1, 1], got {value!r}")
    return v


def _encode(encoder: TextEncoder, texts: list[str], what: str) -> np.ndarray:
    emb = l2_normalise(np.asarray(encoder.encode(texts)), what=f"{what} embeddings")
    if emb.shape[0] != len(texts):
        raise ModelError(f"the text encoder returned {emb.shape[0]} {what} embeddings for {len(texts)} phrases")
    return emb.astype(np.float64)


def filter_concepts(
    concepts: Sequence[str],
    classes: Sequence[str],
    encoder: TextEncoder,
    max_length: int = 30,
    class_similarity: float = 0.85,
    duplicate_similarity: float = 0.9,
) -> FilterResult:
    """Drop too long, class-like and near-duplicate concepts (see the module docstring for the exact rules).

    ``concepts``: candidate phrases; ``classes``: the dataset's class names (``tennis_serve`` is compared as
    "tennis serve"); ``encoder``: any :class:`TextEncoder`. Deterministic; the kept concepts follow the input order.
    Raises :class:`ConfigError` for invalid thresholds, :class:`LanguageModelError` for a class name without words
    and :class:`ModelError` for malformed embeddings.
    """
    if isinstance(concepts, str) or isinstance(classes, str):
        raise ConfigError("concepts and classes must be sequences of strings, not a single string")
    if isinstance(max_length, bool) or int(max_length) != max_length or max_length < 1:
        raise ConfigError(f"max_length must be a positive integer, got {max_length!r}")
    max_length = int(max_length)
    class_thr = _check_threshold("class_similarity", class_similarity)
    dup_thr = _check_threshold("duplicate_similarity", duplicate_similarity)

    class_names = [str(c) for c in classes]
    phrases = [humanize_class_name(c) for c in class_names]  # "tennis_serve" -> "tennis serve"

    dropped: list[Dropped] = []

    # 0. normalisation, empty phrases, exact duplicates.
    candidates: list[str] = []
    seen: set[str] = set()
    for raw in concepts:
        text = normalise_concept(raw)
        if not text:
            dropped.append(Dropped(str(raw), RULE_EMPTY, 0, None))
        elif text in seen:
            dropped.append(Dropped(str(raw), RULE_EXACT_DUPLICATE, 1.0, text))
        else:
            seen.add(text)
            candidates.append(text)

    # 1. length.
    short: list[str] = []
    for text in candidates:
        if len(text) > max_length:
            dropped.append(Dropped(text, RULE_LENGTH, len(text), None))
        else:
            short.append(text)
    if not short:
        return FilterResult(kept=[], dropped=dropped)

    emb = _encode(encoder, short, "concept")

    # 2. similarity to a class name.
    remaining = list(range(len(short)))
    if phrases:
        cls_emb = _encode(encoder, phrases, "class name")
        if cls_emb.shape[1] != emb.shape[1]:
            raise ModelError(f"class name embeddings have {cls_emb.shape[1]} dims, concepts have {emb.shape[1]}")
        sims = emb @ cls_emb.T  # (concepts, classes)
        remaining = []
        for i, text in enumerate(short):
            j = int(np.argmax(sims[i]))
            best = float(sims[i, j])
            if best >= class_thr - TOLERANCE:
                dropped.append(Dropped(text, RULE_CLASS_SIMILARITY, best, class_names[j]))
            else:
                remaining.append(i)

    # 3. near duplicates among the remaining concepts.
    n = len(remaining)
    removed: set[int] = set()
    if n > 1:
        sub = emb[remaining]
        pair = sub @ sub.T
        pair = (pair + pair.T) / 2.0  # exactly symmetric, so ties stay ties
        off = pair.copy()
        np.fill_diagonal(off, 0.0)
        centrality = off.sum(axis=1) / (n - 1)  # mean similarity to the other concepts
        for a in range(n):
            for b in range(a + 1, n):
                if a in removed or b in removed or pair[a, b] < dup_thr - TOLERANCE:
                    continue
                # Keep the more central concept; on a tie keep the earlier one.
                drop, keep = (a, b) if centrality[a] < centrality[b] else (b, a)
                removed.add(drop)
                dropped.append(
                    Dropped(
                        short[remaining[drop]], RULE_DUPLICATE_SIMILARITY, float(pair[a, b]), short[remaining[keep]]
                    )
                )

    kept = [short[remaining[k]] for k in range(n) if k not in removed]
    return FilterResult(kept=kept, dropped=dropped)
