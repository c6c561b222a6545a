"""Edits: switch concepts off for a sample, or change a class-concept weight and count what it fixes or breaks.

Switching a concept off sets its *standardised* activation to 0, i.e. to its training mean, so the concept
contributes nothing to any class. Weight edits return a new model; the original is never changed.

The second half works on a finished run, read through :class:`dance.run_view.RunView` (its ``videos``: the
videos with features): :func:`resolve_concept` / :func:`resolve_class` (errors list the closest names),
:func:`intervene_sample` (one video before and after switching concepts off) and :func:`weight_edit` (the edited
model and what it fixes and breaks on a split). Saving edits as model versions: :mod:`dance.model.versions`.
``RunVideos`` / :func:`load_run_videos` are kept here as names for ``RunView(run).videos``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dance.errors import ModelError
from dance.explain.contributions import Explanation, explain_concepts
from dance.model.dance import DanceModel
from dance.run_view import RunVideos, RunView, near_matches
from dance.run_view import unknown_message as _unknown

__all__ = ["EditEffect", "RunVideos", "SampleIntervention", "WeightEdit", "check_weight", "edit_effect",
           "intervene_sample", "load_run_videos", "near_matches", "resolve_class", "resolve_concept", "switch_off",
           "weight_edit", "with_weight"]


def check_weight(weight: float) -> float:
    """``weight`` as a float when it is finite in the model's dtype (float32, |w| <= 3.4e38), else ModelError."""
    try:
        w = float(weight)
    except (TypeError, ValueError, OverflowError):
        raise ModelError(f"weight must be a number, got {weight!r}") from None
    with np.errstate(over="ignore", invalid="ignore"):
        finite = bool(np.isfinite(np.float32(w)))
    if not finite:
        raise ModelError(f"weight must be a finite number that fits the model's float32 weights "
                         f"(|w| <= {float(np.finfo(np.float32).max):.4g}), got {weight!r}")
    return w


def with_weight(model: DanceModel, cls: str | int, concept: str, weight: float) -> DanceModel:
    """A copy of the model with W_A[cls, concept] = weight (finite as float32, see :func:`check_weight`)."""
    w = check_weight(weight)
    new = model.copy()
    new.W_ = new.W_.copy()
    new.W_[new.class_index(cls), new.concept_index(concept)] = w
    return new


@dataclass
class EditEffect:
    """What a weight edit does on some videos (:func:`weight_edit`)."""

    accuracy_before: float
    accuracy_after: float
    fixed: int  # wrong before, right after
    broken: int  # right before, wrong after
    changed: int  # predictions that changed at all


def edit_effect(before: np.ndarray, after: np.ndarray, y: np.ndarray) -> EditEffect:
    """What changing the predictions ``before`` → ``after`` (class indices) does against labels ``y``."""
    before, after, y = np.asarray(before), np.asarray(after), np.asarray(y)
    n = len(y)
    return EditEffect(float((before == y).mean()) if n else float("nan"),
                      float((after == y).mean()) if n else float("nan"),
                      int(((before != y) & (after == y)).sum()), int(((before == y) & (after != y)).sum()),
                      int((before != after).sum()))


# ---------------------------------------------------------------------------------------------- run-level edits
# What `dance intervene`, `dance sanity` and the viewer need from a finished run: its videos with features
# (dance.run_view), names resolved with helpful errors, and edits computed on standardised activations z (no
# backbone, no concept layers rerun per edit).


def load_run_videos(run: Path | str) -> RunVideos:
    """The videos of a finished run that have features: ``RunView(run).videos`` (read-only)."""
    return RunView(run).videos


def resolve_concept(model: DanceModel, name: str) -> int:
    """Column of a concept given as ``type:name`` or a bare name unique across types; errors list near matches."""
    names = model.concept_names_
    if name not in names and all(n.split(":", 1)[1] != name for n in names):
        raise ModelError(_unknown("concept", name, names))
    return model.concept_index(name)


def resolve_class(model: DanceModel, name: str) -> int:
    """Class index of a class name (exact, then case-insensitive); errors list near matches."""
    if name in model.classes_:
        return model.classes_.index(name)
    folded = [i for i, c in enumerate(model.classes_) if c.lower() == name.lower()]
    if len(folded) == 1:
        return folded[0]
    raise ModelError(_unknown("class", name, model.classes_))


def switch_off(z: np.ndarray, columns: Sequence[int]) -> np.ndarray:
    """A copy of standardised activations z with the given concept columns at 0 (their training mean)."""
    z = np.array(z, dtype=np.float32, copy=True)
    z[..., list(columns)] = 0.0
    return z


@dataclass
class SampleIntervention:
    """One video before and after switching concepts off."""

    video_id: str
    label: str
    off: list[str]  # qualified names of the concepts switched off
    before: Explanation
    after: Explanation

    @property
    def changed(self) -> bool:
        return self.before.predicted != self.after.predicted


def intervene_sample(model: DanceModel, z: np.ndarray, off: Sequence[str], video_id: str = "", label: str = "",
                     k: int = 3) -> SampleIntervention:
    """Explain one video (its z row, shape (M,) or (1, M)) before and after switching ``off`` concepts off."""
    z = np.asarray(z, np.float32).reshape(1, -1)
    cols = [resolve_concept(model, c) for c in off]
    names = [model.concept_names_[c] for c in cols]
    before = explain_concepts(model, z, k=k)[0]
    after = explain_concepts(model, switch_off(z, cols), k=k)[0]
    return SampleIntervention(video_id, label, names, before, after)


@dataclass
class WeightEdit:
    """The effect of setting W_A[class, concept] = new_weight on the videos of one split."""

    cls: str
    concept: str  # qualified name
    old_weight: float
    new_weight: float
    split: str
    n: int
    effect: EditEffect
    fixed_ids: list[str]
    broken_ids: list[str]

    def record(self) -> dict:
        """What edit.json stores about the edit and its effect."""
        return {"class": self.cls, "concept": self.concept, "old_weight": self.old_weight,
                "new_weight": self.new_weight,
                "effect": {"split": self.split, "n": self.n, **vars(self.effect), "fixed_ids": self.fixed_ids[:50],
                           "broken_ids": self.broken_ids[:50]}}


def weight_edit(model: DanceModel, z: np.ndarray, y: np.ndarray, cls: str, concept: str, weight: float,
                split: str = "", ids: Sequence[str] | None = None) -> tuple[DanceModel, WeightEdit]:
    """The edited model (a copy) and what the edit fixes and breaks on videos with activations z and labels y."""
    weight = check_weight(weight)
    c, j = resolve_class(model, cls), resolve_concept(model, concept)
    edited = with_weight(model, c, model.concept_names_[j], weight)
    y = np.asarray(y)
    p0 = model.logits_from_concepts(z).argmax(axis=1)
    p1 = edited.logits_from_concepts(z).argmax(axis=1)
    fixed, broken = (p0 != y) & (p1 == y), (p0 == y) & (p1 != y)
    ids = list(ids) if ids is not None else [str(i) for i in range(len(y))]
    return edited, WeightEdit(model.classes_[c], model.concept_names_[j], float(model.W_[c, j]), float(weight), split,
                              len(y), edit_effect(p0, p1, y), [ids[i] for i in np.flatnonzero(fixed)],
                              [ids[i] for i in np.flatnonzero(broken)])
