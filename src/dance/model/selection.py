"""Choosing DANCE's settings on validation data: the concept layer (linear or an MLP) and how binary (motion)
concepts enter the final layer (probability or logit).

Neither choice has one right value across datasets. Measured on development splits carved out of the training
data only (README, "Settings chosen inside the run"): on MSR Action3D the probability activation with a
linear concept layer lost 26–28 points to the logit; on Penn Action an MLP concept layer gained 1–4 points over
a linear one. So a run tries the candidates and keeps the one with the best validation accuracy (ties: the lower
validation log-loss), and records every candidate's scores.

Why the validation split and not cross-validation on the training split: a trainable backbone (the pose encoder)
is fit on the training videos, so their features separate the classes almost perfectly and every candidate
scores ~100 % in any cross-validation over them. The validation videos are unseen by the backbone's weights
(they only pick its best epoch), so they are the held-out evidence the choice needs.

Trying both activations costs one extra final-layer fit, not a second concept-layer fit: the BCE concept layer
does not depend on the activation (:meth:`DanceModel.with_binary_activation`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from dance.model.dance import BINARY_ACTIVATIONS, ConceptTargets, DanceModel

#: Width of the MLP concept layer tried beside the linear one (hidden units). Chosen in an earlier session on Penn
#: Action's validation split: linear 0.963, 1024 units 0.963, 2048 0.973, 4096 0.973 (the smaller of the tie).
MLP_WIDTH = 2048
AUTO = "auto"


@dataclass
class Selection:
    """The chosen model and every candidate's validation scores (``candidates``: one dict per candidate with
    ``concept_hidden``, ``binary_activation``, ``val_accuracy``, ``val_log_loss``, ``chosen``)."""

    model: DanceModel
    candidates: list[dict]
    rule: str

    def to_json(self) -> dict:
        return {"candidates": self.candidates, "rule": self.rule}


def hidden_options(setting: int | str | None) -> list[int | None]:
    """Concept-layer candidates of a ``train.concept_hidden`` setting: ``auto`` → linear and :data:`MLP_WIDTH`."""
    return [None, MLP_WIDTH] if setting == AUTO else [setting if setting else None]  # type: ignore[list-item]


def activation_options(setting: str, has_binary: bool) -> list[str]:
    """Activation candidates of a ``train.binary_activation`` setting (``auto`` → both, when there are binary
    concepts at all; without them the activation changes nothing, so only one is fit)."""
    if setting != AUTO:
        return [setting]
    return list(BINARY_ACTIVATIONS) if has_binary else [BINARY_ACTIVATIONS[0]]


def log_loss(model: DanceModel, X: np.ndarray, y: np.ndarray) -> float:
    p = model.predict_proba(X)[np.arange(len(y)), np.asarray(y)]
    return float(-np.log(np.clip(p, 1e-12, 1.0)).mean())


def fit_selected(base: DanceModel, hidden: Sequence[int | None], activations: Sequence[str], X: np.ndarray,
                 y: np.ndarray, concepts: Mapping[str, ConceptTargets], X_val: np.ndarray, y_val: np.ndarray,
                 concepts_val: Mapping[str, ConceptTargets], classes: Sequence[str],
                 progress: Callable[[str, int, int], None] | None = None) -> Selection:
    """Fit ``base`` (unfitted; its other settings kept) once per concept layer in ``hidden`` and per activation
    in ``activations``; return the candidate with the best validation accuracy (ties: lower validation
    log-loss; then the earlier candidate)."""
    fitted: list[tuple[dict, DanceModel]] = []
    for h in hidden:
        first = dataclasses.replace(base, concept_hidden=h, binary_activation=activations[0])
        first.fit(X, y, concepts, X_val, y_val, concepts_val, classes, progress=progress)
        models = [first] + [first.with_binary_activation(a, X, y, X_val, y_val, progress)
                            for a in activations[1:]]
        for model in models:
            fitted.append(({"concept_hidden": h, "binary_activation": model.binary_activation,
                            "val_accuracy": model.score(X_val, y_val), "val_log_loss": log_loss(model, X_val, y_val),
                            "nonzero_weights": model.nonzero_weights()}, model))
    best = min(range(len(fitted)), key=lambda i: (-fitted[i][0]["val_accuracy"], fitted[i][0]["val_log_loss"], i))
    candidates = [info | {"chosen": i == best} for i, (info, _) in enumerate(fitted)]
    rule = (f"best accuracy on the {len(y_val)} validation videos (ties: lower validation log-loss)"
            if len(fitted) > 1 else "a single candidate (settings fixed)")
    return Selection(fitted[best][1], candidates, rule)
