"""Search for class-level weight edits that repair a shifted test set (the paper's Fig. 10), without retraining.

Under a severe domain shift (UCF-101 → UCF-101-SCUBA, backgrounds replaced) DANCE often still *activates* the right
motion concept but ignores it, because the trained final layer gave it a zero weight for the class; the paper sets
such a weight to 1.0 and counts the videos that change (DANCE §4, Fig. 10: one edit fixed 98 videos and broke 1).
:func:`search_edits` automates that: on a *search* part of the shifted videos it greedily picks, one at a time, the
zero weight W[class, concept] whose change to ``weight`` gains the most correct predictions (fixed − broken), stops
when no edit gains at least ``min_gain`` or after ``max_edits``, and reports what the edits do on the *check* part,
videos the search never saw. Works on standardised activations z (no backbone run per candidate): for each
class the new logit of every candidate concept is one broadcast add.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from dance.errors import ModelError
from dance.explain.intervene import EditEffect, check_weight, edit_effect
from dance.model.dance import DanceModel

__all__ = ["EditSearch", "ProposedEdit", "apply_edits", "search_edits"]


@dataclass(frozen=True)
class ProposedEdit:
    """One zero weight W[cls, concept] set to ``weight``; ``fixed`` / ``broken`` on the search part when chosen."""

    cls: str
    concept: str
    weight: float
    fixed: int
    broken: int


@dataclass
class EditSearch:
    """The chosen edits and their effect on the search part and on the held-out check part."""

    edits: list[ProposedEdit]
    weight: float
    search: EditEffect
    check: EditEffect
    search_ids: list[str] = field(default_factory=list)
    check_ids: list[str] = field(default_factory=list)
    fixed_ids: list[str] = field(default_factory=list)  # on the check part
    broken_ids: list[str] = field(default_factory=list)

    def record(self, split: str = "") -> dict:
        """What edit.json stores for a searched edit (the version's label reads ``edits``)."""
        return {"edits": [{"class": e.cls, "concept": e.concept, "old_weight": 0.0, "new_weight": e.weight,
                           "search_fixed": e.fixed, "search_broken": e.broken} for e in self.edits],
                "search": {"split": split, "n": len(self.search_ids), **asdict(self.search)},
                "effect": {"split": split, "n": len(self.check_ids), **asdict(self.check),
                           "fixed_ids": self.fixed_ids[:50], "broken_ids": self.broken_ids[:50]}}


def apply_edits(model: DanceModel, edits: Sequence[ProposedEdit]) -> DanceModel:
    """A copy of ``model`` with every edit's weight set (the original is unchanged)."""
    new = model.copy()
    new.W_ = new.W_.copy()
    for e in edits:
        new.W_[new.class_index(e.cls), new.concept_index(e.concept)] = check_weight(e.weight)
    return new


def _gains(logits: np.ndarray, z: np.ndarray, y: np.ndarray, W: np.ndarray, weight: float, min_gain: int
           ) -> tuple[int, int, int, int, int] | None:
    """The zero-weight (class, concept) whose change to ``weight`` gains the most: (gain, class, concept, fixed,
    broken), or None when none gains ``min_gain``. Ties go to the lowest class, then the lowest concept."""
    correct = logits.argmax(axis=1) == y
    best: tuple[int, int, int, int, int] | None = None
    n_classes = logits.shape[1]
    for c in range(n_classes):
        cols = np.flatnonzero(W[c] == 0)
        if not len(cols):
            continue
        others = np.delete(logits, c, axis=1)
        other_max = others.max(axis=1)
        other_arg = np.delete(np.arange(n_classes), c)[others.argmax(axis=1)]
        new_c = logits[:, c:c + 1] + weight * z[:, cols]  # (n, candidates): the class's logit after each edit
        wins = new_c > other_max[:, None]
        # argmax breaks ties towards the lower index: class c wins a tie against a higher class
        wins |= (new_c == other_max[:, None]) & (c < other_arg)[:, None]
        right = np.where((y == c)[:, None], wins, ~wins & (other_arg == y)[:, None])
        fixed = (right & ~correct[:, None]).sum(axis=0)
        broken = (~right & correct[:, None]).sum(axis=0)
        gain = fixed - broken
        j = int(np.argmax(gain))
        if gain[j] >= min_gain and (best is None or gain[j] > best[0]):
            best = (int(gain[j]), c, int(cols[j]), int(fixed[j]), int(broken[j]))
    return best


def search_edits(model: DanceModel, z: np.ndarray, y: np.ndarray, *, weight: float = 1.0, max_edits: int = 5,
                 min_gain: int = 1, check_fraction: float = 0.5, seed: int = 0,
                 ids: Sequence[str] | None = None) -> tuple[DanceModel, EditSearch]:
    """Greedy zero-weight edits chosen on a search part of (z, y); their effect measured on the rest.

    ``z``: standardised concept activations (N, M) of the shifted videos, ``y``: class indices (N,) (-1: a class the
    model lacks, never right). ``check_fraction`` of the videos (a seeded draw) are held out for the check;
    ``weight`` is the new value of each edited weight (the paper's Fig. 10 uses 1.0).
    """
    w = check_weight(weight)
    z, y = np.asarray(z, np.float32), np.asarray(y)
    if z.ndim != 2 or z.shape[1] != len(model.concept_names_) or len(y) != len(z):
        raise ModelError(f"search_edits needs activations (N, {len(model.concept_names_)}) and N labels, got "
                         f"{z.shape} and {len(y)}")
    if not 0 < check_fraction < 1 or max_edits < 1 or min_gain < 1:
        raise ModelError("check_fraction must be in (0, 1), max_edits and min_gain >= 1")
    if len(y) < 2:
        raise ModelError(f"an edit search needs at least 2 videos (a search and a check part), got {len(y)}")
    ids = list(ids) if ids is not None else [str(i) for i in range(len(y))]
    order = np.random.default_rng(seed).permutation(len(y))
    n_check = min(len(y) - 1, max(1, int(round(check_fraction * len(y)))))
    check, search = np.sort(order[:n_check]), np.sort(order[n_check:])
    W = model.W_.copy()
    edits: list[ProposedEdit] = []
    for _ in range(max_edits):
        logits = z[search] @ W.T + model.b_
        best = _gains(logits, z[search], y[search], W, w, min_gain)
        if best is None:
            break
        _, c, k, fixed, broken = best
        W[c, k] = w
        edits.append(ProposedEdit(model.classes_[c], model.concept_names_[k], w, fixed, broken))
    edited = apply_edits(model, edits)
    before, after = model.logits_from_concepts(z).argmax(axis=1), edited.logits_from_concepts(z).argmax(axis=1)
    fixed_ids = [ids[i] for i in check if before[i] != y[i] and after[i] == y[i]]
    broken_ids = [ids[i] for i in check if before[i] == y[i] and after[i] != y[i]]
    return edited, EditSearch(edits, w, edit_effect(before[search], after[search], y[search]),
                              edit_effect(before[check], after[check], y[check]), [ids[i] for i in search],
                              [ids[i] for i in check], fixed_ids, broken_ids)
