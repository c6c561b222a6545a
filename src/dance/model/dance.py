"""The DANCE estimator: features → disentangled concept layers → standardised concepts → sparse linear classifier.

:class:`DanceModel` is a scikit-learn classifier (``BaseEstimator`` + ``ClassifierMixin``): its hyperparameters,
declared once in :class:`dance.config.DanceParams`, are its ``__init__`` parameters, which ``__init__`` only stores
(so ``sklearn.base.clone``, ``get_params`` and ``set_params`` work); ``fit`` returns ``self`` and sets the fitted
attributes, which end in ``_``; ``predict`` returns class labels. Also here: the concept targets it is fit on
(:class:`ConceptTargets`) and its fitted concept blocks. Explanations and edits are free functions in
:mod:`dance.explain` (this module does not import it); saving in :mod:`dance.model.io`.
"""

from __future__ import annotations

import copy
import dataclasses
import operator
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin

from dance.config import DanceParams
from dance.errors import ModelError
from dance.model.concept_layers import ClassTerm, cos_cubed_similarity, train_concept_layer
from dance.model.final_layer import ElasticNetResult, fit_elastic_net_path

CONCEPT_TYPES = ("motion", "object", "scene")
#: How a binary concept's layer output enters the final layer: its probability (sigmoid) or its logit (the values
#: of ``DanceParams.binary_activation``).
BINARY_ACTIVATIONS: tuple[str, ...] = typing.get_args(typing.get_type_hints(DanceParams)["binary_activation"])
_BOUNDS = {"ge": (operator.ge, ">="), "gt": (operator.gt, ">"), "le": (operator.le, "<="), "lt": (operator.lt, "<")}


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

    def subset(self, rows: np.ndarray) -> ConceptTargets:
        """The targets of some videos (rows: positions or a boolean mask)."""
        return ConceptTargets(list(self.names), self.labels[rows], self.loss, self.mask[rows])


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


def _label_positions(y: np.ndarray, classes: Sequence, what: str, strict: bool = True) -> np.ndarray:
    """Positions in ``classes`` of the labels ``y``; integer ``y`` with string ``classes`` are positions already.

    ``strict``: an unknown label (or a position out of range) is a :class:`ModelError`; else it becomes -1, which
    no prediction equals (how :meth:`DanceModel.score` counts a class the model does not know).
    """
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ModelError(f"{what}: class labels must be 1-D (one per video), got shape {arr.shape}")
    if arr.dtype.kind in "iu" and all(isinstance(c, str) for c in classes):
        out = arr.astype(np.int64)
        bad = (out < 0) | (out >= len(classes))
        if strict and bad.any():
            raise ModelError(f"{what}: class index {int(out[bad][0])} out of range [0, {len(classes)})")
        return np.where(bad, -1, out)
    pos = {c: i for i, c in enumerate(classes)}
    out = np.array([pos.get(v, -1) for v in arr.tolist()], dtype=np.int64)
    if strict and (out < 0).any():
        unknown = arr.tolist()[int(np.flatnonzero(out < 0)[0])]
        raise ModelError(f"{what}: unknown class label {unknown!r}; classes: {', '.join(map(str, classes))}")
    return out


def _holdout(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of row positions (train, val): ``round(fraction * n)`` videos of each class with at least
    two (at least one, and one always stays in train), drawn with ``seed``; classes with one video stay in train."""
    rng = np.random.default_rng(seed)
    val: list[int] = []
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        if len(rows) >= 2:
            n = min(len(rows) - 1, max(1, round(fraction * len(rows))))
            val += rng.permutation(rows)[:n].tolist()
    is_val = np.zeros(len(y), dtype=bool)
    is_val[val] = True
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


class DanceModel(ClassifierMixin, BaseEstimator, DanceParams):
    """Disentangled concept bottleneck over frozen video features, a scikit-learn classifier.

    Parameters (declared once, with their descriptions and bounds, in :class:`dance.config.DanceParams`, which also
    gives the ``train.*`` settings): concept layers trained with Adam (``concept_lr``, ``concept_steps`` steps
    on ``concept_batch_size``-row minibatches, best validation weights kept; ``concept_hidden`` hidden units or
    None for linear);
    object/scene concepts dropped before training when the mean of their top-5 labels is ``<= clip_cutoff`` and
    after training when their validation cos³ similarity is ``< interpretability_cutoff``; binary concepts enter
    the final layer as ``binary_activation``; final layer = elastic net (``lam``, ``alpha``) solved along a
    warm-started path of ``n_lambdas`` values (``final_max_iter`` iterations each); ``standardize_features``,
    ``validation_fraction`` (see :meth:`fit`), ``device``, ``seed``.

    ``__init__`` only stores them; :meth:`fit` sets the fitted attributes, which end in ``_``: ``classes_`` (the
    class labels, a list), ``feature_dim_`` (= ``n_features_in_``), ``feature_mean_``/``feature_std_``,
    ``blocks_`` (one :class:`ConceptBlock` per concept type kept), ``z_mean_``/``z_std_``, ``W_``/``b_`` (the
    final layer), ``dropped_``, ``concept_quality_``, ``path_``. ``W_`` is None (class default) until then: what
    "not fitted" checks read (also :func:`sklearn.utils.validation.check_is_fitted`).

    :meth:`predict` returns class labels; :meth:`predict_index` their positions in ``classes_``. Explanations
    and edits live in :mod:`dance.explain`; saving in :mod:`dance.model.io`.
    """

    W_: np.ndarray | None = None  # the final layer's weights (classes × concepts); None until fitted

    def __sklearn_is_fitted__(self) -> bool:
        return self.W_ is not None

    # ------------------------------------------------------------------ fitting
    def _check_params(self) -> None:
        """The hyperparameters' values against :class:`~dance.config.DanceParams` (bounds, choices)."""
        if self.binary_activation not in BINARY_ACTIVATIONS:
            raise ModelError(f"binary_activation must be one of {BINARY_ACTIVATIONS}, got '{self.binary_activation}'")
        h = self.concept_hidden
        if h is not None and (isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1):
            raise ModelError(f"concept_hidden must be None (linear) or a positive integer, got {h!r}")
        for f in dataclasses.fields(DanceParams):
            value = getattr(self, f.name)
            for op, limit in f.metadata["bounds"].items():
                test, word = _BOUNDS[op]
                if not isinstance(value, (int, float, np.number)) or isinstance(value, bool) or not test(value, limit):
                    raise ModelError(f"{f.name} must be {word} {limit}, got {value!r}")

    def fit(
        self, X: np.ndarray, y: np.ndarray, concepts: Mapping[str, ConceptTargets], X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None, concepts_val: Mapping[str, ConceptTargets] | None = None,
        classes: Sequence | None = None, *, progress: Callable[[str, int, int], None] | None = None,
        teacher: np.ndarray | None = None,
    ) -> DanceModel:
        """Fit concept layers (one per concept type), then the sparse final layer; returns ``self``.

        Args:
            X: backbone features (N, D).
            y: class labels (N,): values of ``classes``, or, when the labels are strings, their integer positions
                in ``classes`` (how the pipeline holds them).
            concepts: concept type → :class:`ConceptTargets` of the N videos.
            X_val, y_val, concepts_val: validation videos, all three or none. The concept layers keep their
                weights best on them and the interpretability cutoff is measured on them. **None given**: a
                stratified ``validation_fraction`` of each class (seeded by ``seed``; classes of one video stay in
                training) is held out of X, y, concepts and used as validation data; the rest trains.
            classes: every class label, in the order of ``classes_`` and of the final layer's rows (default: the
                sorted distinct labels of ``y``); a class without training videos gets zero weights.
            progress: called as ``progress(task, done, total)`` while fitting.
            teacher: class probabilities (N, classes) of a teacher for the N training videos, e.g. the trained
                backbone's own head; the final layer's targets are ``(1 - distill)`` × one-hot label +
                ``distill`` × these. Needed when ``distill > 0``; ignored when it is 0.
        """
        self._check_params()
        X = _check_x(X, None, "train")
        given = [v is not None for v in (X_val, y_val, concepts_val)]
        if any(given) and not all(given):
            raise ModelError("give X_val, y_val and concepts_val together (or none: a validation share is held out)")
        y_arr = np.asarray(y)
        if len(y_arr) != len(X):
            raise ModelError("features and labels have different numbers of videos")
        if classes is None:
            if y_arr.ndim != 1:
                raise ModelError(f"train: class labels must be 1-D (one per video), got shape {y_arr.shape}")
            classes = np.unique(y_arr).tolist()
        classes = list(classes)
        if len(set(classes)) != len(classes):
            raise ModelError("classes has duplicates")
        y_idx = _label_positions(y_arr, classes, "train")
        teacher = self._check_teacher(teacher, len(X), len(classes))
        if not concepts:
            raise ModelError("no concept types to fit: give at least one of motion, object, scene")
        if X_val is None:
            tr, va = _holdout(y_idx, self.validation_fraction, self.seed)
            if len(va) == 0:
                raise ModelError("too few videos to hold out validation data (every class has one video): give "
                                 "X_val, y_val and concepts_val")
            X, X_val, y_idx, yv_idx = X[tr], X[va], y_idx[tr], y_idx[va]
            teacher = None if teacher is None else teacher[tr]
            concepts_val = {t: c.subset(va) for t, c in concepts.items()}
            concepts = {t: c.subset(tr) for t, c in concepts.items()}
        else:
            X_val = _check_x(X_val, X.shape[1], "validation")
            yv_idx = _label_positions(y_val, classes, "validation")
            if len(yv_idx) != len(X_val):
                raise ModelError("features and labels have different numbers of videos")
        missing = [t for t in concepts if t not in concepts_val]
        if missing:
            raise ModelError(f"validation targets lack the concept type(s) {missing} that training targets have")
        self.classes_ = classes
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
            block = self._fit_block(ctype, tgt, tgt_val, xt, xv, start, progress, (y_idx, yv_idx))
            if block is not None:
                self.blocks_.append(block)
                start = block.stop
        if start == 0:
            raise ModelError("every concept was dropped by the cutoffs: nothing left for the final layer")
        self._fit_final(xt, y_idx, xv, yv_idx, progress, teacher)
        return self

    def _check_teacher(self, teacher: np.ndarray | None, n: int, n_classes: int) -> np.ndarray | None:
        """The teacher's probabilities as float64 rows summing to 1, or None when ``distill`` is 0."""
        if self.distill == 0:
            return None
        if teacher is None:
            raise ModelError(f"distill={self.distill} needs the teacher's class probabilities (teacher=...): "
                             "give them, or set distill=0")
        t = np.asarray(teacher, dtype=np.float64)
        if t.shape != (n, n_classes):
            raise ModelError(f"teacher probabilities of shape {t.shape} do not match {n} videos × {n_classes} classes")
        if not np.isfinite(t).all() or (t < 0).any() or np.abs(t.sum(axis=1) - 1.0).max() > 1e-3:
            raise ModelError("teacher probabilities must be finite, non-negative, and sum to 1 per video")
        return t / t.sum(axis=1, keepdims=True)

    def _fit_final(self, xt: torch.Tensor, y: np.ndarray, xv: torch.Tensor, y_val: np.ndarray,
                   progress: Callable[[str, int, int], None] | None = None,
                   teacher: np.ndarray | None = None) -> None:
        """Standardisation of the concept activations and the sparse final layer, for fitted concept blocks
        (``teacher``: checked class probabilities of the training rows, mixed into the targets by ``distill``)."""
        targets = None
        if teacher is not None and self.distill > 0:
            targets = (1.0 - self.distill) * np.eye(len(self.classes_))[y] + self.distill * teacher
        z = self._raw_activations(xt)
        self.z_mean_ = z.mean(axis=0)
        self.z_std_ = z.std(axis=0) + 1e-6
        zs, zs_val = self._standardise(z), self._standardise(self._raw_activations(xv))
        cb = (lambda i, n: progress("final layer (λ path)", 1, n)) if progress else None
        res: ElasticNetResult = fit_elastic_net_path(
            zs, y, len(self.classes_), lam=self.lam, alpha=self.alpha, n_lambdas=self.n_lambdas, X_val=zs_val,
            y_val=y_val, select="last", max_iter=self.final_max_iter, progress=cb, targets=targets)
        self.W_ = res.W.detach().cpu().numpy().astype(np.float32)
        self.b_ = res.b.detach().cpu().numpy().astype(np.float32)
        self.path_ = [vars(p) for p in res.path]

    def with_binary_activation(self, activation: str, X: np.ndarray, y: np.ndarray, X_val: np.ndarray,
                               y_val: np.ndarray, progress: Callable[[str, int, int], None] | None = None,
                               teacher: np.ndarray | None = None, distill: float | None = None) -> DanceModel:
        """A copy whose binary (BCE) concepts feed the final layer as ``activation`` (probability or logit), and
        whose final layer distils by ``distill`` (default: this model's): same concept layers, the final layer fit
        again on the same training and validation videos as :meth:`fit` (``y`` and ``teacher`` as there). The
        concept layers depend on neither choice, so trying another costs one final-layer fit, not a second
        concept-layer fit."""
        self._check_fitted()
        if activation not in BINARY_ACTIVATIONS:
            raise ModelError(f"binary_activation must be one of {BINARY_ACTIVATIONS}, got '{activation}'")
        out = self.copy()
        out.binary_activation = activation
        if distill is not None:
            out.distill = distill
            out._check_params()
        for b in out.blocks_:
            if b.loss == "bce":
                b.activation = "sigmoid" if activation == "probability" else "identity"
        dev = torch.device(self.device)
        X, X_val = _check_x(X, self.feature_dim_, "train"), _check_x(X_val, self.feature_dim_, "validation")
        out._fit_final(out._scaled(X, dev), _label_positions(y, self.classes_, "train"), out._scaled(X_val, dev),
                       _label_positions(y_val, self.classes_, "validation"), progress,
                       out._check_teacher(teacher, len(X), len(self.classes_)))
        return out

    def _fit_block(self, ctype: str, tgt: ConceptTargets, tgt_val: ConceptTargets, xt: torch.Tensor,
                   xv: torch.Tensor, start: int, progress, y_pair: tuple[np.ndarray, np.ndarray]
                   ) -> ConceptBlock | None:
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
        # the joint class term trains binary (motion) layers only: on soft object / scene concepts it pulled their
        # cos³ similarity under the interpretability cutoff (tests/test_model.py's problem)
        y, y_val = y_pair  # class positions of the training and validation videos
        joint = ClassTerm(torch.from_numpy(y[tgt.mask]), torch.from_numpy(y_val[tgt_val.mask]), len(self.classes_),
                          self.joint_weight, sigmoid=True) if tgt.loss == "bce" else None
        fit = train_concept_layer(
            xt[torch.from_numpy(tgt.mask).to(dev)], c, xv[torch.from_numpy(tgt_val.mask).to(dev)], cv,
            tgt.loss, hidden=self.concept_hidden, lr=self.concept_lr, steps=self.concept_steps, seed=self.seed,
            progress=tick, joint=joint, batch_size=self.concept_batch_size)
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

    @property
    def n_features_in_(self) -> int:
        """Feature dimension seen in :meth:`fit` (scikit-learn's name for ``feature_dim_``)."""
        return self.feature_dim_

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

    def predict_index(self, X: np.ndarray) -> np.ndarray:
        """Predicted classes as positions in ``classes_`` (N,)."""
        return self.decision_function(X).argmax(axis=1)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted class labels (N,), values of ``classes_`` (:meth:`predict_index` for their positions)."""
        index = self.predict_index(X)  # checks that the model is fitted first
        return np.asarray(self.classes_)[index]

    def score(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
        """Accuracy on labels ``y`` (as in :meth:`fit`: labels, or positions in string ``classes_``); a label the
        model does not know counts as wrong."""
        self._check_fitted()
        hit = self.predict_index(X) == _label_positions(y, self.classes_, "score", strict=False)
        return float(np.average(hit, weights=sample_weight))

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
