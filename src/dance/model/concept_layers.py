"""Concept layers: bias-free projections from backbone features to one concept type's activations (§3.3).

Motion dynamics concepts are binary multi-labels trained with binary cross-entropy (Eq. 4). Object and scene
concepts have soft pseudo labels and are trained with the cosine-cubed similarity of Label-free CBM (Eq. 5, [38]),
computed the way that work computes it: per concept, across the batch, after centring and cubing both the
activations and the targets. The same per-concept similarity on validation data is the interpretability cutoff.
Training is Adam, full batch or on shuffled minibatches of ``batch_size`` rows (``train.concept_batch_size``), and
keeps the weights of the best validation loss.

Joint training (a :class:`ClassTerm` with weight > 0; ``train.joint_weight``, off by default): beside its concept
loss, the layer is trained through a temporary linear class head on its activations (cross-entropy times the
weight), the *joint* concept bottleneck of Koh et al. (ICML 2020, "Concept Bottleneck Models"). The head is thrown
away: the model's own final layer is fit afterwards on the concept activations as before, so the model stays a
bottleneck with no path around the concepts. It trades concept fidelity for accuracy: on a Penn Action cross-view
development split DANCE gained up to 6 points and its concepts ranked validation videos worse (mean ROC AUC
0.88 -> 0.76 at weight 1); docs/pose_accuracy.md, "Across camera views".
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn


def cos_cubed_similarity(z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Per-concept cos³ similarity between activations z (N, M) and targets c (N, M): shape (M,)."""
    z = z - z.mean(dim=0, keepdim=True)
    c = c - c.mean(dim=0, keepdim=True)
    z3, c3 = z**3, c**3
    z3 = z3 / z3.norm(dim=0, keepdim=True).clamp_min(1e-12)
    c3 = c3 / c3.norm(dim=0, keepdim=True).clamp_min(1e-12)
    return (z3 * c3).sum(dim=0)


def cos_cubed_loss(z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Eq. 5 as in Label-free CBM: the negative mean per-concept cos³ similarity."""
    return -cos_cubed_similarity(z, c).mean()


def bce_loss(z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Eq. 4: mean over concepts (and samples) of the binary cross-entropy of sigmoid(z) against c."""
    return nn.functional.binary_cross_entropy_with_logits(z, c)


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {"bce": bce_loss, "cos3": cos_cubed_loss}


def make_layer(d_in: int, n_concepts: int, hidden: int | None, seed: int) -> nn.Module:
    """A bias-free linear layer, or a bias-free MLP with one ReLU hidden layer."""
    torch.manual_seed(seed)
    if hidden:
        return nn.Sequential(nn.Linear(d_in, hidden, bias=False), nn.ReLU(), nn.Linear(hidden, n_concepts, bias=False))
    return nn.Linear(d_in, n_concepts, bias=False)


@dataclass
class ConceptFit:
    layer: nn.Module
    best_step: int
    best_val_loss: float
    history: list[tuple[int, float, float]]  # (step, train loss, val loss)


@dataclass
class ClassTerm:
    """The class term of joint training: labels of the training and validation rows (class positions), the
    number of classes, the term's weight, and whether the head sees the layer's outputs through a sigmoid."""

    y: torch.Tensor
    y_val: torch.Tensor
    n_classes: int
    weight: float
    sigmoid: bool = False


def _minibatches(n: int, batch_size: int, seed: int, device: torch.device) -> Iterator[torch.Tensor | None]:
    """Row positions of each step's minibatch (None: the full batch), from a seeded shuffle of the ``n`` rows; a
    last partial batch joins the next shuffle's rows rather than being a small batch of its own."""
    if batch_size <= 0 or batch_size >= n:
        while True:
            yield None
    gen = torch.Generator().manual_seed(seed)
    pending = torch.empty(0, dtype=torch.long)
    while True:
        while len(pending) < batch_size:
            pending = torch.cat([pending, torch.randperm(n, generator=gen)])
        rows, pending = pending[:batch_size], pending[batch_size:]
        yield rows.to(device)


def train_concept_layer(
    x: torch.Tensor, c: torch.Tensor, x_val: torch.Tensor, c_val: torch.Tensor, loss: str, *,
    hidden: int | None = None, lr: float = 1e-3, steps: int = 1000, seed: int = 0, eval_every: int = 10,
    progress: Callable[[int], None] | None = None, joint: ClassTerm | None = None, batch_size: int = 0,
) -> ConceptFit:
    """``steps`` Adam steps on one concept type, keeping the weights with the lowest validation loss (with
    ``joint``: concept loss + its weight × the cross-entropy of a temporary linear class head, on both splits).

    ``batch_size`` 0 (or at least the number of rows): every step sees every training row; else each step sees
    the next ``batch_size`` rows of a seeded shuffle, reshuffled once all have been seen."""
    concept_loss = LOSSES[loss]
    layer = make_layer(x.shape[1], c.shape[1], hidden, seed).to(x.device)
    params = list(layer.parameters())
    head: nn.Module | None = None
    y = y_val = None
    if joint is not None and joint.weight > 0:
        head = nn.Linear(c.shape[1], joint.n_classes).to(x.device)
        params += list(head.parameters())
        y, y_val = joint.y.to(x.device), joint.y_val.to(x.device)

    def loss_fn(z: torch.Tensor, target: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        out = concept_loss(z, target)
        if head is not None and joint is not None:
            out = out + joint.weight * nn.functional.cross_entropy(
                head(torch.sigmoid(z) if joint.sigmoid else z), labels)
        return out

    opt = torch.optim.Adam(params, lr=lr)
    best_state = copy.deepcopy(layer.state_dict())
    best_val, best_step = float("inf"), 0
    history: list[tuple[int, float, float]] = []
    batches = _minibatches(len(x), batch_size, seed, x.device)
    for step in range(1, steps + 1):
        opt.zero_grad()
        rows = next(batches)
        if rows is None:
            train_loss = loss_fn(layer(x), c, y)
        else:
            train_loss = loss_fn(layer(x[rows]), c[rows], None if y is None else y[rows])
        train_loss.backward()
        opt.step()
        if step % eval_every == 0 or step == steps:
            with torch.no_grad():
                val_loss = loss_fn(layer(x_val), c_val, y_val).item() if len(x_val) else train_loss.item()
            history.append((step, train_loss.item(), val_loss))
            if val_loss < best_val:
                best_val, best_step = val_loss, step
                best_state = copy.deepcopy(layer.state_dict())
        if progress is not None:
            progress(1)
    layer.load_state_dict(best_state)
    layer.eval()
    for p in layer.parameters():
        p.requires_grad_(False)
    return ConceptFit(layer, best_step, best_val, history)
