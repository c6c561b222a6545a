"""Edits: switch concepts off for a sample, or change a class-concept weight and count what it fixes or breaks.

Switching a concept off sets its *standardised* activation to 0, i.e. to its training mean, so the concept
contributes nothing to any class. Weight edits return a new model; the original is never changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dance.model.dance import DanceModel


def predict_without(model: DanceModel, X: np.ndarray, concepts: Sequence[str]) -> np.ndarray:
    """Predicted class indices with the given concepts switched off (z_k = 0) for every row of X."""
    z = model.concept_activations(X)
    for c in concepts:
        z[:, model.concept_index(c)] = 0.0
    return model.logits_from_concepts(z).argmax(axis=1)


def with_weight(model: DanceModel, cls: str | int, concept: str, weight: float) -> DanceModel:
    """A copy of the model with W_A[cls, concept] = weight."""
    new = model.copy()
    new.W_ = new.W_.copy()
    new.W_[new.class_index(cls), new.concept_index(concept)] = float(weight)
    return new


@dataclass
class EditEffect:
    accuracy_before: float
    accuracy_after: float
    fixed: int  # wrong before, right after
    broken: int  # right before, wrong after
    changed: int  # predictions that changed at all


def edit_effect(before: DanceModel, after: DanceModel, X: np.ndarray, y: np.ndarray) -> EditEffect:
    y = np.asarray(y)
    p0, p1 = before.predict(X), after.predict(X)
    return EditEffect(float((p0 == y).mean()), float((p1 == y).mean()), int(((p0 != y) & (p1 == y)).sum()),
                      int(((p0 == y) & (p1 != y)).sum()), int((p0 != p1).sum()))
