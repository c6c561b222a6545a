"""The DANCE estimator: features → disentangled concept layers → standardised concepts → sparse linear classifier.

Follows the scikit-learn contract: settings in ``__init__``, ``fit`` returns ``self``, fitted attributes end in
``_``. Explanations and edits live in :mod:`dance.explain`; saving in :mod:`dance.model.io`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from dance.errors import ModelError
from dance.model.concept_layers import cos_cubed_similarity, train_concept_layer
from dance.model.final_layer import ElasticNetResult, fit_elastic_net_path

CONCEPT_TYPES = ("motion", "object", "scene")
#: How a binary concept's layer output enters the final layer: its probability (sigmoid) or its logit.
BINARY_ACTIVATIONS = ("probability", "logit")


@dataclass
class ConceptTargets:
    """Training targets of one concept type: names, labels (N, M) and which videos have labels."""

    names: list[str]
    labels: np.ndarray
    loss: str  # "bce" (binary, Eq. 4) or "cos3" (soft, Eq. 5)
    mask: np.ndarray | None = None  # (N,) bool; None = every video is labelled

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.float32)
        if self.labels.ndim != 2 or self.labels.shape[1] != len(self.names):
            raise ModelError(f"concept labels of shape {self.labels.shape} do not match {len(self.names)} names")
        if not np.isfinite(self.labels).all():
            raise ModelError("concept labels contain NaN or infinite values")
        if self.mask is None:
            self.mask = np.ones(len(self.labels), dtype=bool)
        self.mask = np.asarray(self.mask, dtype=bool)


@dataclass
class ConceptBlock:
    """A fitted concept type: its kept concept names, its layer, and its columns in z."""

    type: str
    names: list[str]
    loss: str
    layer: torch.nn.Module
    start: int
    stop: int
    activation: str = "identity"  # applied to the layer's outputs: "sigmoid" (probabilities) or "identity"

    def activations(self, xt: torch.Tensor) -> torch.Tensor:
        """This block's raw concept activations for scaled features ``xt``."""
        out = self.layer(xt)
        return torch.sigmoid(out) if self.activation == "sigmoid" else out


@dataclass
class Dropped:
    type: str
    name: str
    reason: str


def top5_mean(labels: np.ndarray) -> np.ndarray:
    """Mean of the 5 largest labels of each concept (column): the clip cutoff statistic."""
    k = min(5, len(labels))
    return np.sort(labels, axis=0)[-k:].mean(axis=0) if k else np.zeros(labels.shape[1])


def _check_x(x: np.ndarray | torch.Tensor, dim: int | None, what: str) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.ndim != 2:
        raise ModelError(f"{what}: features must be 2-D (videos × dims), got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise ModelError(f"{what}: features have {arr.shape[1]} dims, the model was fitted on {dim}")
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise ModelError(f"{what}: {bad} feature rows contain NaN or infinite values")
    return arr.astype(np.float32, copy=False)


@dataclass
class DanceModel:
    """Disentangled concept bottleneck over frozen video features.

    Settings (reference values from the authors' pipeline): concept layers trained with Adam (``concept_lr``,
    ``concept_steps`` full-batch steps, best validation weights kept); object/scene concepts dropped before
    training when the mean of their top-5 labels is ``<= clip_cutoff`` and after training when their validation
    cos³ similarity is ``< interpretability_cutoff``; final layer = elastic net (``lam``, ``alpha``) solved along
    a warm-started path of ``n_lambdas`` values.
    """

    concept_lr: float = 1e-3
    concept_steps: int = 1000
    concept_hidden: int | None = None
    binary_activation: str = "probability"
    clip_cutoff: float = 0.25
    interpretability_cutoff: float = 0.45
    lam: float = 7e-4
    alpha: float = 0.99
    n_lambdas: int = 20
    final_max_iter: int = 2000
    standardize_features: bool = True
    device: str = "cpu"
    seed: int = 0

    # fitted attributes
    classes_: list[str] = field(default_factory=list, repr=False)
    feature_dim_: int = field(default=0, repr=False)
    feature_mean_: np.ndarray | None = field(default=None, repr=False)
    feature_std_: np.ndarray | None = field(default=None, repr=False)
    blocks_: list[ConceptBlock] = field(default_factory=list, repr=False)
    z_mean_: np.ndarray | None = field(default=None, repr=False)
    z_std_: np.ndarray | None = field(default=None, repr=False)
    W_: np.ndarray | None = field(default=None, repr=False)
    b_: np.ndarray | None = field(default=None, repr=False)
    dropped_: list[Dropped] = field(default_factory=list, repr=False)
    concept_quality_: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)
    path_: list[dict] = field(default_factory=list, repr=False)

    # ------------------------------------------------------------------ settings
    def get_params(self) -> dict:
        return {k: getattr(self, k) for k in (
            "concept_lr", "concept_steps", "concept_hidden", "binary_activation", "clip_cutoff",
            "interpretability_cutoff", "lam", "alpha", "n_lambdas", "final_max_iter", "standardize_features", "device",
            "seed")}

    # ------------------------------------------------------------------ fitting
    def fit(
        self, X: np.ndarray, y: np.ndarray, concepts: Mapping[str, ConceptTargets], X_val: np.ndarray,
        y_val: np.ndarray, concepts_val: Mapping[str, ConceptTargets], classes: Sequence[str],
        progress: Callable[[str, int, int], None] | None = None,
    ) -> DanceModel:
        """Fit concept layers (one per type), then the sparse final layer; returns ``self``."""
        if self.binary_activation not in BINARY_ACTIVATIONS:
            raise ModelError(f"binary_activation must be one of {BINARY_ACTIVATIONS}, got '{self.binary_activation}'")
        X = _check_x(X, None, "train")
        X_val = _check_x(X_val, X.shape[1], "validation")
        y, y_val = np.asarray(y, dtype=np.int64), np.asarray(y_val, dtype=np.int64)
        if len(y) != len(X) or len(y_val) != len(X_val):
            raise ModelError("features and labels have different numbers of videos")
        if not concepts:
            raise ModelError("no concept types to fit: give at least one of motion, object, scene")
        missing = [t for t in concepts if t not in concepts_val]
        if missing:
            raise ModelError(f"validation targets lack the concept type(s) {missing} that training targets have")
        self.classes_ = list(classes)
        self.feature_dim_ = X.shape[1]
        if self.standardize_features:
            self.feature_mean_ = X.mean(axis=0)
            self.feature_std_ = X.std(axis=0) + 1e-6
        else:
            self.feature_mean_ = np.zeros(X.shape[1], np.float32)
            self.feature_std_ = np.ones(X.shape[1], np.float32)
        dev = torch.device(self.device)
        xt, xv = self._scaled(X, dev), self._scaled(X_val, dev)
        self.blocks_, self.dropped_, self.concept_quality_ = [], [], {}
        start = 0
        for ctype in [t for t in CONCEPT_TYPES if t in concepts] + [t for t in concepts if t not in CONCEPT_TYPES]:
            tgt, tgt_val = concepts[ctype], concepts_val[ctype]
            block = self._fit_block(ctype, tgt, tgt_val, xt, xv, start, progress)
            if block is not None:
                self.blocks_.append(block)
                start = block.stop
        if start == 0:
            raise ModelError("every concept was dropped by the cutoffs: nothing left for the final layer")
        self._fit_final(xt, y, xv, y_val, progress)
        return self

    def _fit_final(self, xt: torch.Tensor, y: np.ndarray, xv: torch.Tensor, y_val: np.ndarray,
                   progress: Callable[[str, int, int], None] | None = None) -> None:
        """Standardisation of the concept activations and the sparse final layer, for fitted concept blocks."""
        z = self._raw_activations(xt)
        self.z_mean_ = z.mean(axis=0)
        self.z_std_ = z.std(axis=0) + 1e-6
        zs, zs_val = self._standardise(z), self._standardise(self._raw_activations(xv))
        cb = (lambda i, n: progress("final layer (λ path)", 1, n)) if progress else None
        res: ElasticNetResult = fit_elastic_net_path(
            zs, y, len(self.classes_), lam=self.lam, alpha=self.alpha, n_lambdas=self.n_lambdas, X_val=zs_val,
            y_val=y_val, select="last", max_iter=self.final_max_iter, progress=cb)
        self.W_ = res.W.detach().cpu().numpy().astype(np.float32)
        self.b_ = res.b.detach().cpu().numpy().astype(np.float32)
        self.path_ = [vars(p) for p in res.path]

    def with_binary_activation(self, activation: str, X: np.ndarray, y: np.ndarray, X_val: np.ndarray,
                               y_val: np.ndarray, progress: Callable[[str, int, int], None] | None = None
                               ) -> DanceModel:
        """A copy whose binary (BCE) concepts feed the final layer as ``activation`` (probability or logit): same
        concept layers, the final layer fit again. The concept layers do not depend on this choice, so trying
        both costs one final-layer fit, not a second concept-layer fit."""
        self._check_fitted()
        if activation not in BINARY_ACTIVATIONS:
            raise ModelError(f"binary_activation must be one of {BINARY_ACTIVATIONS}, got '{activation}'")
        out = self.copy()
        out.binary_activation = activation
        for b in out.blocks_:
            if b.loss == "bce":
                b.activation = "sigmoid" if activation == "probability" else "identity"
        dev = torch.device(self.device)
        X, X_val = _check_x(X, self.feature_dim_, "train"), _check_x(X_val, self.feature_dim_, "validation")
        out._fit_final(out._scaled(X, dev), np.asarray(y, np.int64), out._scaled(X_val, dev),
                       np.asarray(y_val, np.int64), progress)
        return out

    def _fit_block(self, ctype: str, tgt: ConceptTargets, tgt_val: ConceptTargets, xt: torch.Tensor,
                   xv: torch.Tensor, start: int, progress) -> ConceptBlock | None:
        names = list(tgt.names)
        if list(tgt_val.names) != names:
            raise ModelError(f"{ctype}: validation concepts differ from training concepts")
        labels, labels_val = tgt.labels[tgt.mask], tgt_val.labels[tgt_val.mask]
        keep = np.ones(len(names), dtype=bool)
        reasons = [""] * len(names)
        if tgt.loss == "cos3":
            t5 = top5_mean(labels)
            for j in np.flatnonzero(t5 <= self.clip_cutoff):
                keep[j], reasons[j] = False, f"clip cutoff: top-5 label mean {t5[j]:.3f} <= {self.clip_cutoff}"
        const = labels.std(axis=0) < 1e-8 if len(labels) else np.ones(len(names), bool)
        for j in np.flatnonzero(const & keep):
            keep[j], reasons[j] = False, "constant label on the training videos"
        self.dropped_ += [Dropped(ctype, names[j], reasons[j]) for j in np.flatnonzero(~keep)]
        if not keep.any() or len(labels) < 2:
            return None
        dev = xt.device
        c = torch.from_numpy(labels[:, keep]).to(dev)
        cv = torch.from_numpy(labels_val[:, keep]).to(dev)
        tick = (lambda n: progress(f"{ctype} concepts", n, self.concept_steps)) if progress else None
        fit = train_concept_layer(
            xt[torch.from_numpy(tgt.mask).to(dev)], c, xv[torch.from_numpy(tgt_val.mask).to(dev)], cv,
            tgt.loss, hidden=self.concept_hidden, lr=self.concept_lr, steps=self.concept_steps, seed=self.seed,
            progress=tick)
        kept_names = [n for n, k in zip(names, keep) if k]
        layer = fit.layer
        with torch.no_grad():
            zv = layer(xv[torch.from_numpy(tgt_val.mask).to(dev)])
            sim = cos_cubed_similarity(zv, cv).cpu().numpy() if len(cv) > 1 else np.ones(len(kept_names))
        self.concept_quality_[ctype] = {n: float(s) for n, s in zip(kept_names, sim)}
        interp = np.ones(len(kept_names), dtype=bool)
        if tgt.loss == "cos3":
            interp = sim >= self.interpretability_cutoff
            self.dropped_ += [
                Dropped(ctype, n, f"interpretability cutoff: validation cos3 {s:.3f} < {self.interpretability_cutoff}")
                for n, s, ok in zip(kept_names, sim, interp) if not ok]
        if not interp.any():
            return None
        layer = _select_outputs(layer, np.flatnonzero(interp))
        final_names = [n for n, ok in zip(kept_names, interp) if ok]
        activation = "sigmoid" if tgt.loss == "bce" and self.binary_activation == "probability" else "identity"
        return ConceptBlock(ctype, final_names, tgt.loss, layer, start, start + len(final_names), activation)

    # ------------------------------------------------------------------ inference
    def _check_fitted(self) -> None:
        if self.W_ is None:
            raise ModelError("the model is not fitted: call fit() or load a saved model")

    def _scaled(self, X: np.ndarray, dev: torch.device) -> torch.Tensor:
        return torch.from_numpy((X - self.feature_mean_) / self.feature_std_).float().to(dev)

    def _raw_activations(self, xt: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return torch.cat([b.activations(xt) for b in self.blocks_], dim=1).cpu().numpy()

    def _standardise(self, z: np.ndarray) -> np.ndarray:
        return ((z - self.z_mean_) / self.z_std_).astype(np.float32)

    def concept_activations(self, X: np.ndarray) -> np.ndarray:
        """Standardised concept activations z (N, M): the inputs of the final layer."""
        self._check_fitted()
        X = _check_x(X, self.feature_dim_, "predict")
        return self._standardise(self._raw_activations(self._scaled(X, torch.device(self.device))))

    def logits_from_concepts(self, z: np.ndarray) -> np.ndarray:
        return z @ self.W_.T + self.b_

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return self.logits_from_concepts(self.concept_activations(X))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        logits = self.decision_function(X)
        logits = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class indices (use ``classes_`` for names)."""
        return self.decision_function(X).argmax(axis=1)

    def explain(self, X: np.ndarray, k: int = 3, target: int | str | None = None) -> list:
        """Per video: prediction, type shares and the top-``k`` concepts of each type for the predicted class (or
        ``target``); see :func:`dance.explain.contributions.explain`."""
        from dance.explain.contributions import explain

        return explain(self, X, k=k, target=None if target is None else self.class_index(target))

    def score(self, X: np.ndarray, y: np.ndarray) -> float:
        return float((self.predict(X) == np.asarray(y)).mean())

    # ------------------------------------------------------------------ concepts
    @property
    def concept_names_(self) -> list[str]:
        """Qualified names ``type:name`` of every column of z, in order."""
        return [f"{b.type}:{n}" for b in self.blocks_ for n in b.names]

    @property
    def concept_types_(self) -> list[str]:
        return [b.type for b in self.blocks_ for _ in b.names]

    def n_concepts(self) -> dict[str, int]:
        counts = {t: 0 for t in CONCEPT_TYPES}
        for b in self.blocks_:
            counts[b.type] = len(b.names)
        return counts

    def concept_index(self, concept: str) -> int:
        """Column of a concept given as ``type:name`` or as a bare name that is unique across types."""
        names = self.concept_names_
        if concept in names:
            return names.index(concept)
        matches = [i for i, n in enumerate(names) if n.split(":", 1)[1] == concept]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise ModelError(f"concept '{concept}' is ambiguous: {', '.join(names[i] for i in matches)} "
                             "(give type:name)")
        raise ModelError(f"unknown concept '{concept}'; the model has {len(names)} concepts, e.g. "
                         f"{', '.join(names[:5])}")

    def class_index(self, cls: str | int) -> int:
        if isinstance(cls, (int, np.integer)):
            if not 0 <= int(cls) < len(self.classes_):
                raise ModelError(f"class index {cls} out of range [0, {len(self.classes_)})")
            return int(cls)
        if cls not in self.classes_:
            raise ModelError(f"unknown class '{cls}'; classes: {', '.join(self.classes_)}")
        return self.classes_.index(cls)

    def nonzero_weights(self) -> int:
        self._check_fitted()
        return int((np.abs(self.W_) > 0).sum())

    def copy(self) -> DanceModel:
        return copy.deepcopy(self)


def _select_outputs(layer: torch.nn.Module, rows: np.ndarray) -> torch.nn.Module:
    """A copy of a concept layer keeping only some output concepts."""
    layer = copy.deepcopy(layer)
    last = layer[-1] if isinstance(layer, torch.nn.Sequential) else layer
    idx = torch.from_numpy(rows.astype(np.int64))
    new = torch.nn.Linear(last.in_features, len(rows), bias=False)
    with torch.no_grad():
        new.weight.copy_(last.weight[idx])
    new.requires_grad_(False)
    if isinstance(layer, torch.nn.Sequential):
        layer[-1] = new
        return layer
    return new
