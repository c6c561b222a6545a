"""Explanations: which concepts made the model predict a class (contribution = z_k · W_A[c, k]).

The logit of class c is the sum of contributions of every concept plus the bias, so contributions add up per
concept type: the *type share* of a type is the sum of its concepts' contributions, and the *top type* of a
prediction is the type with the largest share.

:func:`explain` is a free function of a fitted :class:`~dance.model.dance.DanceModel`. This arithmetic needs only
the estimator, so it lives beside it in :mod:`dance.model`: the evaluate stage uses it without importing
:mod:`dance.explain`, and the estimator module does not import this one (no model ↔ explain cycle).
:mod:`dance.explain.contributions` presents the same names to the explain package.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dance.model.dance import DanceModel


@dataclass
class ConceptContribution:
    type: str
    name: str
    index: int
    activation: float  # standardised z_k
    weight: float  # W_A[c, k]
    contribution: float  # z_k * W_A[c, k]
    probability: float | None = None  # a binary concept's predicted probability of being present (else None)

    @property
    def present(self) -> str:
        """``probability`` for display: two decimals, or "–" for a concept type without probabilities."""
        return "–" if self.probability is None else f"{self.probability:.2f}"


@dataclass
class Explanation:
    predicted: str
    target: str  # the class explained (the predicted one unless asked otherwise)
    probabilities: dict[str, float]  # top classes → probability
    type_shares: dict[str, float]  # concept type → summed contribution to the target's logit
    top: dict[str, list[ConceptContribution]] = field(default_factory=dict)  # per type, largest first; only
    # concepts with a non-zero weight for the target class (so a sparse class may show fewer than k)

    @property
    def top_type(self) -> str:
        return max(self.type_shares, key=self.type_shares.get)


def contributions(model: DanceModel, z: np.ndarray, cls: int) -> np.ndarray:
    """Contributions (N, M) of every concept to class ``cls`` for standardised activations z (N, M)."""
    return z * model.W_[cls][None, :]


def type_shares(model: DanceModel, contrib: np.ndarray) -> dict[str, np.ndarray]:
    """Per concept type, the summed contribution of its concepts, shape (N,) each."""
    return {b.type: contrib[:, b.start:b.stop].sum(axis=1) for b in model.blocks_}


#: shares of a prediction's positive evidence that :func:`explanation_size` counts concepts for
EVIDENCE_SHARES = (0.8, 0.9)


def explanation_size(model: DanceModel, z: np.ndarray, shares: tuple[float, ...] = EVIDENCE_SHARES) -> dict:
    """How many concepts the explanations of rows of standardised activations z (N, M) need, as medians over rows:
    ``terms``, the predicted class's non-zero weights, and ``concepts`` (share → count), the fewest concepts whose
    positive contributions to the predicted class hold that share of all its positive contributions (0 for a row
    with none). The readability side of the final layer's sparsity (docs/pose_accuracy.md, "Across camera views")."""
    if len(z) == 0:
        return {"n": 0, "terms": None, "concepts": {f"{s:g}": None for s in shares}}
    pred = model.logits_from_concepts(z).argmax(axis=1)
    W = model.W_[pred]  # (N, M): each row's predicted class
    positive = -np.sort(-np.clip(z * W, 0.0, None), axis=1)  # largest first
    n_positive = (positive > 0).sum(axis=1)
    cumulative = np.cumsum(positive, axis=1) / np.maximum(positive.sum(axis=1, keepdims=True), 1e-12)
    concepts = {}
    for s in shares:
        # entries below the share, plus the one that reaches it; a share of 1 may sit a rounding error above the
        # last cumulative entry, hence the tolerance and the cap at the positive terms
        k = np.minimum((cumulative < s - 1e-9).sum(axis=1) + 1, n_positive)
        concepts[f"{s:g}"] = float(np.median(k))
    return {"n": int(len(z)), "terms": float(np.median((W != 0).sum(axis=1))), "concepts": concepts}


def explain_concepts(model: DanceModel, z: np.ndarray, k: int = 3, target: int | None = None,
                     top_classes: int = 3) -> list[Explanation]:
    """Explanations of rows of standardised activations z (use ``model.concept_activations``)."""
    logits = model.logits_from_concepts(z)
    logits = logits - logits.max(axis=1, keepdims=True)
    prob = np.exp(logits)
    prob /= prob.sum(axis=1, keepdims=True)
    pred = prob.argmax(axis=1)
    out = []
    for i in range(len(z)):
        c = int(pred[i]) if target is None else int(target)
        contrib = contributions(model, z[i : i + 1], c)[0]
        shares = {b.type: float(contrib[b.start:b.stop].sum()) for b in model.blocks_}
        top: dict[str, list[ConceptContribution]] = {}
        for b in model.blocks_:
            cols = np.arange(b.start, b.stop)
            cols = cols[model.W_[c, cols] != 0]  # a concept the class does not use cannot explain it
            order = cols[np.argsort(-contrib[cols], kind="stable")][:k]
            top[b.type] = [ConceptContribution(b.type, b.names[j - b.start], int(j), float(z[i, j]),
                                               float(model.W_[c, j]), float(contrib[j]),
                                               _probability(model, b, z[i, j], j)) for j in order]
        best = np.argsort(-prob[i], kind="stable")[:top_classes]
        out.append(Explanation(model.classes_[int(pred[i])], model.classes_[c],
                               {model.classes_[int(j)]: float(prob[i, j]) for j in best}, shares, top))
    return out


def _probability(model: DanceModel, block, z: float, j: int) -> float | None:  # noqa: ANN001 - a ConceptBlock
    """A binary (BCE) concept's predicted probability of being present: its unstandardised activation when the
    block feeds probabilities, the sigmoid of it when the block feeds logits; None for other concept types."""
    if block.loss != "bce":
        return None
    raw = float(model.z_mean_[j] + z * model.z_std_[j])
    if block.activation == "sigmoid":
        return float(np.clip(raw, 0.0, 1.0))
    return float(1.0 / (1.0 + np.exp(-np.clip(raw, -60.0, 60.0))))


def explain(model: DanceModel, X: np.ndarray, k: int = 3, target: int | str | None = None) -> list[Explanation]:
    """Explanations of videos given by their backbone features X (N, D): per video the prediction, the type shares
    and the top-``k`` concepts of each type for the predicted class, or for ``target`` (a class label or its
    position in ``model.classes_``; an unknown one is a :class:`~dance.errors.ModelError`)."""
    c = None if target is None else model.class_index(target)
    return explain_concepts(model, model.concept_activations(X), k=k, target=c)


def type_agreement(model: DanceModel, X: np.ndarray, y: np.ndarray, decisive: dict[int, str]) -> dict:
    """Over correctly classified videos of classes with a known decisive type: how often the top type matches.

    ``decisive`` maps class index → concept type. Returns the fraction and the counts per class.
    """
    z = model.concept_activations(X)
    pred = model.logits_from_concepts(z).argmax(axis=1)
    hits, total, per_class = 0, 0, {}
    for i in np.flatnonzero((pred == y) & np.isin(y, list(decisive))):
        c = int(y[i])
        shares = type_shares(model, contributions(model, z[i : i + 1], c))
        top = max(shares, key=lambda t: float(shares[t][0]))
        name = model.classes_[c]
        h, n = per_class.get(name, (0, 0))
        per_class[name] = (h + int(top == decisive[c]), n + 1)
        hits += int(top == decisive[c])
        total += 1
    return {"type_agreement": hits / total if total else float("nan"), "n": total,
            "per_class": {k: {"agree": v[0], "n": v[1]} for k, v in per_class.items()}}
