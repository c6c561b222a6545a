"""Choosing DANCE's settings on held-out data (the validation split, or cross-validation on the training videos):
the concept layer (linear or an MLP) and how binary (motion) concepts enter the final layer (probability or
logit).

Neither choice has one right value across datasets. Measured on development splits carved out of the training
data only (docs/pose_accuracy.md, "Settings chosen inside the run"): on MSR Action3D the probability activation with a
linear concept layer lost 26–28 points to the logit; on Penn Action an MLP concept layer gained 1–4 points over
a linear one. So a run tries the candidates, keeps the best on held-out data (below), and records every
candidate's scores.

Which held-out evidence: a trainable backbone (the pose encoder) is fit on the training videos, so their own features
separate the classes almost perfectly and any cross-validation over them scores every candidate ~100 %. The validation
videos are unseen by the backbone's weights (with ``features.keep=best`` they only pick its epoch), so by default the
choice is made on them. A small training set has a small validation split (MSR Action3D: 43 videos, on which the encoder
is right every time, so the candidates tie), so below :data:`CROSS_FIT_MAX_TRAIN` training videos the features stage
cross-fits (``features.folds``): one backbone per fold, trained without that fold, gives every training video features
it was not trained on (:class:`CrossFit`). Each candidate is then fit on the other folds and scored on the held-out one,
and the best cross-validated accuracy over all training videos chooses (ties: the lower cross-validated log-loss). The
chosen candidate is the one fit on all training videos with the run's own backbone, as without cross-fitting. On MSR
Action3D's development split (docs/pose_accuracy.md) this chose candidates 0.9 and 6.2 points under the baseline where
the validation split's choices had been 1.7 and 23.7 under (encoder seeds 0 and 2). Fitting the final layer on the
held-out concept activations instead (stacking) was measured in the same runs: against the ordinary final layer it lost
0.9–18.5 points on seven of the eight candidates and gained 2.6 on one, so it is not done.

Trying both activations costs one extra final-layer fit, not a second concept-layer fit: the BCE concept layer
does not depend on the activation (:meth:`DanceModel.with_binary_activation`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from dance.config import DanceParams
from dance.errors import ModelError
from dance.model.dance import BINARY_ACTIVATIONS, ConceptTargets, DanceModel

#: Width of the MLP concept layer tried beside the linear one (hidden units). Chosen in an earlier session on Penn
#: Action's validation split: linear 0.963, 1024 units 0.963, 2048 0.973, 4096 0.973 (the smaller of the tie).
MLP_WIDTH = 2048
AUTO = "auto"
#: ``features.folds=auto`` cross-fits a trained backbone below this many training videos (the issue's guidance for
#: "val is small": N videos < ~500 -> folds), with :data:`AUTO_FOLDS` folds.
CROSS_FIT_MAX_TRAIN = 500
AUTO_FOLDS = 5


def chooses(concept_hidden: int | str | None, binary_activation: str) -> bool:
    """Whether the train stage's ``train.concept_hidden`` and ``train.binary_activation`` settings leave it a choice
    among concept-layer candidates (``auto`` for either): only then are cross-validation scores, and the fold encoders
    of ``features.folds=auto``, of any use (``train.distill`` and ``train.lam`` under ``auto`` are fixed rules)."""
    return AUTO in (concept_hidden, binary_activation)


def cross_fit_folds(setting: int | str, n_train: int, choosing: bool = True) -> int:
    """Folds of a ``features.folds`` setting for ``n_train`` training videos (0: no cross-fitting); ``auto``
    cross-fits only where the train stage is ``choosing`` a candidate (:func:`chooses`)."""
    if setting == AUTO:
        return AUTO_FOLDS if choosing and n_train < CROSS_FIT_MAX_TRAIN else 0
    return int(setting)


def fold_ids(y: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """The fold (``0 .. n_folds - 1``) of each training video: stratified by class and seeded, so every stage that
    asks for the same labels gets the same folds. A class with fewer videos than folds is spread over its first
    folds (it is then missing from the others' held-out part)."""
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=np.int64)
    offset = 0
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        rows = rows[rng.permutation(len(rows))]
        fold[rows] = (offset + np.arange(len(rows))) % n_folds
        offset += len(rows)  # rotate where each class starts, so small classes do not all land in fold 0
    return fold


@dataclass
class Selection:
    """The chosen model and every candidate's validation scores (``candidates``: one dict per candidate with
    ``concept_hidden``, ``binary_activation``, ``val_accuracy``, ``val_log_loss``, ``chosen``); ``models``: every
    fitted candidate, in the order of ``candidates`` (not saved by the train stage; for comparing them on
    development data, ``benchmarks/candidates.py``)."""

    model: DanceModel
    candidates: list[dict]
    rule: str
    models: list[DanceModel] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict:
        return {"candidates": self.candidates, "rule": self.rule}


def hidden_options(setting: int | str | None, views: int = 0, batch_size: int = 0) -> list[int | None]:
    """Concept-layer candidates of a ``train.concept_hidden`` setting: ``auto`` → linear and :data:`MLP_WIDTH`;
    linear only when the training videos come with ``views`` augmented views each and the concept layers train
    full batch (``batch_size`` 0): the MLP's full-batch steps then cost (views + 1) times as much (Penn Action with
    8 views: 1.35 vs 0.12 CPU-s per step for the linear layer, ~22 minutes per fit), while minibatches of 512 rows
    fit it in ~2 minutes as well as the full batch did (docs/pose_accuracy.md, "Across camera views")."""
    if setting == AUTO:
        return [None] if views and not batch_size else [None, MLP_WIDTH]
    return [setting if setting else None]  # type: ignore[list-item]


#: the share of ``train.distill=auto``: half the trained backbone's own class probabilities in the final layer's
#: targets (docs/pose_accuracy.md, "Where the gap on Penn Action lives" and "Across camera views")
AUTO_DISTILL = 0.5


def distill_options(setting: float | str) -> list[float]:
    """Distillation shares of a ``train.distill`` setting: ``auto`` → :data:`AUTO_DISTILL` alone, on a validation
    split and under cross-validation alike (each cross-validation fold's backbone teaching its own fold). Neither
    scores the shares where they differ most: a validation split drawn from the training data scored them alike
    (92–100 % for every candidate on Penn Action's cross-view development splits), and on a small cross-view split
    cross-validation kept the undistilled layer on a run that then lost 4.6 points. On test videos filmed from other
    views the backbone's head, trained on fresh camera-turned augmentations every epoch, carries an invariance that
    a final layer fit on the training views' labels alone does not learn (docs/pose_accuracy.md, "Across camera
    views"). Where training and test share their views the rule can cost: on MSR Action3D's official split
    −1.1 ± 1.1 points from the baseline against +1.0 ± 1.8 with a cross-validated share (docs/pose_accuracy.md,
    "Results with the generic command"; issue 10), a cost that seven development splits of MSR's training subjects
    do not show (there the rule gains 0.5 points; "Across camera views", session 26). A number is used as given; a
    run without a teacher fits on the labels alone (the train stage)."""
    return [AUTO_DISTILL] if setting == AUTO else [float(setting)]


#: the final layer's elastic-net strength under ``train.lam=auto`` where the final layer distils a teacher
#: (:func:`lam_option`; docs/pose_accuracy.md, "Across camera views")
DISTILL_LAM = 1e-4


def lam_option(setting: float | str, distilling: bool) -> float:
    """The final layer's ``λ`` for a ``train.lam`` setting: ``auto`` → :data:`DISTILL_LAM` where the final layer
    distils a teacher (``distilling``), else the paper's 7e-4 (``DanceParams.lam``). Across camera views the
    sparser final layer kept less of what the distilled teacher knows: on Penn Action's cross-view development
    splits 1e-4 lifted the validation pick by 3.1 points on six fresh runs (docs/pose_accuracy.md, "Across camera
    views"). A number is used as given."""
    if setting != AUTO:
        return float(setting)
    return DISTILL_LAM if distilling else DanceParams.lam


def activation_options(setting: str, has_binary: bool) -> list[str]:
    """Activation candidates of a ``train.binary_activation`` setting (``auto`` → both, when there are binary
    concepts at all; without them the activation changes nothing, so only one is fit)."""
    if setting != AUTO:
        return [setting]
    return list(BINARY_ACTIVATIONS) if has_binary else [BINARY_ACTIVATIONS[0]]


#: the (concept layer, activation) candidates that ``auto`` leaves out where the final layer distils a teacher
#: (:func:`skipped_candidates`)
SKIPPED_WHEN_DISTILLING = frozenset({(MLP_WIDTH, "probability")})


def skipped_candidates(hidden_setting: int | str | None, activation_setting: str,
                       distilling: bool) -> frozenset[tuple[int | None, str]]:
    """Candidates that ``train.concept_hidden=auto`` with ``train.binary_activation=auto`` does not fit: the MLP
    concept layer with probabilities, where the final layer distils a teacher (``distilling``). Across camera
    views it was the worst or next-worst candidate in most (seed, share) pairs of twelve Penn Action cross-view
    development runs, the validation split (drawn from the training views) scored it like the others, and the runs
    whose validation split picked it lost 4.2–6.3 points to the baseline; distilling without it gained 1.6 points on
    six of them (docs/pose_accuracy.md, "Across camera views"). Explicit settings are always fit as given."""
    if hidden_setting == AUTO and activation_setting == AUTO and distilling:
        return SKIPPED_WHEN_DISTILLING
    return frozenset()


def concept_auc(model: DanceModel, X: np.ndarray, concepts: Mapping[str, ConceptTargets]) -> float | None:
    """How faithfully a fitted model's binary (motion) concepts rank videos: the mean ROC AUC, over every binary
    concept with both labels among the labelled videos of ``X``, of its activation against its label (None when
    no concept has both). Activations are monotone in the layer's outputs, so probability and logit agree."""
    from sklearn.metrics import roc_auc_score

    z = model.concept_activations(X)
    aucs = []
    for block in model.blocks_:
        if block.loss != "bce" or block.type not in concepts:
            continue
        tgt = concepts[block.type]
        cols = [tgt.names.index(n) for n in block.names]
        labels, acts = tgt.labels[tgt.mask][:, cols], z[tgt.mask, block.start:block.stop]
        aucs += [roc_auc_score(labels[:, j], acts[:, j]) for j in range(len(cols))
                 if 0 < labels[:, j].sum() < len(labels)]
    return float(np.mean(aucs)) if aucs else None


def log_loss(model: DanceModel, X: np.ndarray, y: np.ndarray) -> float:
    p = model.predict_proba(X)[np.arange(len(y)), np.asarray(y)]
    return float(-np.log(np.clip(p, 1e-12, 1.0)).mean())


def stack_views(X: np.ndarray, y: np.ndarray, concepts: Mapping[str, ConceptTargets], views: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray, dict[str, ConceptTargets]]:
    """The training videos' features followed by those of their augmented views (``views``: V × N × dim, or None
    for none), with labels and concept targets repeated for each view: a view is the same video, so it keeps the
    video's class and concepts."""
    if views is None or len(views) == 0:
        return X, y, dict(concepts)
    if views.ndim != 3 or views.shape[1:] != X.shape:
        raise ModelError(f"augmented views of shape {views.shape} do not match features of shape {X.shape}")
    n = len(views) + 1
    tiled = {t: ConceptTargets(c.names, np.tile(c.labels, (n, 1)), c.loss, np.tile(c.mask, n))
             for t, c in concepts.items()}
    return np.concatenate([X, *views]), np.tile(np.asarray(y), n), tiled


def stack_teacher(teacher: np.ndarray | None, views: np.ndarray | None) -> np.ndarray | None:
    """A teacher's class probabilities stacked as :func:`stack_views` stacks the features: the training videos'
    (N × classes), then those of each augmented view (``views``: V × N × classes, or None)."""
    if teacher is None:
        return None
    if views is None or len(views) == 0:
        return teacher
    if views.ndim != 3 or views.shape[1:] != teacher.shape:
        raise ModelError(f"teacher probabilities of the views, shape {views.shape}, do not match those of the "
                         f"videos, shape {teacher.shape}")
    return np.concatenate([teacher, *views])


@dataclass
class CrossFit:
    """Held-out features for cross-validating on the training videos (``features.folds``): ``fold[i]`` is the fold
    of training video ``i``; ``X[k]`` the features of the training videos and ``X_val[k]`` those of the validation
    videos, both from the backbone trained without fold ``k``; ``views[k]`` (V × training videos × dim, optional)
    that backbone's features of the training videos' augmented views; ``teacher[k]`` (training videos × classes)
    and ``teacher_views[k]`` (V × training videos × classes) that backbone's own class probabilities of them, the
    teacher of ``distill`` (optional)."""

    fold: np.ndarray
    X: np.ndarray
    X_val: np.ndarray
    views: np.ndarray | None = None
    teacher: np.ndarray | None = None
    teacher_views: np.ndarray | None = None

    @property
    def n_folds(self) -> int:
        return len(self.X)


def _labelled(progress: Callable[[str, int, int], None] | None, prefix: str
              ) -> Callable[[str, int, int], None] | None:
    """``progress`` with its task names prefixed, so each candidate's fits get bars of their own."""
    if progress is None:
        return None
    return lambda what, n, total: progress(f"{prefix}: {what}", n, total)


def layer_name(h: int | None) -> str:
    """A concept layer in words: ``linear``, or ``MLP 2048`` (its hidden units)."""
    return "linear" if h is None else f"MLP {h}"


def candidate_name(h: int | None, activation: str, distill: float = 0.0) -> str:
    """A candidate of :func:`fit_selected` in words: ``MLP 2048 + logit + distill 0.5``."""
    return f"{layer_name(h)} + {activation}" + (f" + distill {distill:g}" if distill else "")


def _cross_validate(base: DanceModel, h: int | None, combos: Sequence[tuple[str, float]], y: np.ndarray,
                    concepts: Mapping[str, ConceptTargets], y_val: np.ndarray,
                    concepts_val: Mapping[str, ConceptTargets], classes: Sequence[str], cross: CrossFit,
                    progress: Callable[[str, int, int], None] | None) -> dict[tuple[str, float], tuple[float, float]]:
    """Cross-validated (accuracy, log-loss) of concept layer ``h`` with each (activation, distill) of ``combos``:
    per fold, DANCE fit on the other folds' videos (their features from the backbone of that fold, their teacher
    that backbone's head) and scored on the fold's videos."""
    proba = {c: np.zeros((len(y), len(classes))) for c in combos}
    for k in range(cross.n_folds):
        fit_rows, held = np.flatnonzero(cross.fold != k), np.flatnonzero(cross.fold == k)
        if len(held) == 0:
            continue
        Xk = cross.X[k]
        Xf, yf, cf = stack_views(Xk[fit_rows], y[fit_rows], {t: c.subset(fit_rows) for t, c in concepts.items()},
                                 None if cross.views is None else cross.views[k][:, fit_rows])
        tf = None if cross.teacher is None else stack_teacher(
            cross.teacher[k][fit_rows], None if cross.teacher_views is None else cross.teacher_views[k][:, fit_rows])
        (a0, d0), rest = combos[0], combos[1:]
        model = dataclasses.replace(base, concept_hidden=h, binary_activation=a0, distill=d0)
        model.fit(Xf, yf, cf, X_val=cross.X_val[k], y_val=y_val, concepts_val=concepts_val, classes=classes,
                  teacher=tf)
        proba[combos[0]][held] = model.predict_proba(Xk[held])
        for a, d in rest:
            other = model.with_binary_activation(a, Xf, yf, cross.X_val[k], y_val, teacher=tf, distill=d)
            proba[(a, d)][held] = other.predict_proba(Xk[held])
        if progress is not None:
            progress(f"{layer_name(h)}: cross-validation ({cross.n_folds} folds)", 1, cross.n_folds)
    out = {}
    for c, p in proba.items():
        out[c] = (float((p.argmax(axis=1) == y).mean()),
                  float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1.0)).mean()))
    return out


def fit_selected(base: DanceModel, hidden: Sequence[int | None], activations: Sequence[str], X: np.ndarray,
                 y: np.ndarray, concepts: Mapping[str, ConceptTargets], X_val: np.ndarray, y_val: np.ndarray,
                 concepts_val: Mapping[str, ConceptTargets], classes: Sequence[str],
                 progress: Callable[[str, int, int], None] | None = None,
                 cross: CrossFit | None = None, views: np.ndarray | None = None,
                 teacher: np.ndarray | None = None, teacher_views: np.ndarray | None = None,
                 distills: Sequence[float] | None = None,
                 skip: Collection[tuple[int | None, str]] = ()) -> Selection:
    """Fit ``base`` (unfitted; its other settings kept) once per concept layer in ``hidden``, per activation in
    ``activations`` and per distillation share in ``distills`` (default: ``base.distill``; the concept layers
    depend on neither, so each extra candidate costs one final-layer fit), and return the best candidate: with
    ``cross``, the best cross-validated accuracy on the training videos (ties: lower cross-validated log-loss);
    without (or when a fold model cannot be fit, which the rule then says), the best validation accuracy (ties:
    lower validation log-loss); then the earlier candidate (the first layer, activation, share).
    ``views``: features of augmented views of the training videos (V × N × dim), fit on beside ``X``
    (:func:`stack_views`; in cross-validation, ``cross.views``). ``teacher`` (N × classes) and ``teacher_views``
    (V × N × classes): class probabilities of a teacher for the training videos and their views, used by shares
    > 0 (in cross-validation, ``cross.teacher`` and ``cross.teacher_views``). ``skip``: (concept layer,
    activation) pairs not fit (:func:`skipped_candidates`)."""
    y, y_val = np.asarray(y), np.asarray(y_val)
    n_train = len(y)
    X_fit, y_fit, c_fit = stack_views(X, y, concepts, views)
    t_fit = stack_teacher(teacher, teacher_views)
    shares = [base.distill] if distills is None else distills
    combos_of = {h: [(a, float(d)) for d in shares for a in activations if (h, a) not in skip] for h in hidden}
    if not any(combos_of.values()):
        raise ModelError("every concept-layer candidate is skipped: nothing to fit")
    fitted: list[tuple[dict, DanceModel]] = []
    several = sum(map(len, combos_of.values())) > 1
    cv_failed = ""
    for h, combos in combos_of.items():
        if not combos:
            continue
        (a0, d0), rest = combos[0], combos[1:]
        first = dataclasses.replace(base, concept_hidden=h, binary_activation=a0, distill=d0)
        first.fit(X_fit, y_fit, c_fit, X_val=X_val, y_val=y_val, concepts_val=concepts_val, classes=classes,
                  progress=_labelled(progress, candidate_name(h, a0, d0)), teacher=t_fit)
        models = [first] + [first.with_binary_activation(a, X_fit, y_fit, X_val, y_val,
                                                         _labelled(progress, candidate_name(h, a, d)), t_fit, distill=d)
                            for a, d in rest]
        cv: dict[tuple[str, float], tuple[float, float]] = {}
        if cross is not None and several and not cv_failed:
            try:
                cv = _cross_validate(base, h, combos, y, concepts, y_val, concepts_val, classes, cross, progress)
            except ModelError as e:  # e.g. a fold too small to fit: the validation split chooses instead
                cv_failed = str(e)
                for info, _ in fitted:
                    info.pop("cv_accuracy", None), info.pop("cv_log_loss", None)
        for model in models:
            info = {"concept_hidden": h, "binary_activation": model.binary_activation, "distill": model.distill,
                    "val_accuracy": model.score(X_val, y_val), "val_log_loss": log_loss(model, X_val, y_val),
                    "val_concept_auc": concept_auc(model, X_val, concepts_val),
                    "nonzero_weights": model.nonzero_weights()}
            if (model.binary_activation, model.distill) in cv:
                info["cv_accuracy"], info["cv_log_loss"] = cv[(model.binary_activation, model.distill)]
            fitted.append((info, model))
    by_cv = cross is not None and several and not cv_failed
    score = "cv" if by_cv else "val"
    best = min(range(len(fitted)),
               key=lambda i: (-fitted[i][0][f"{score}_accuracy"], fitted[i][0][f"{score}_log_loss"], i))
    candidates = [info | {"chosen": i == best} for i, (info, _) in enumerate(fitted)]
    if not several:
        rule = "a single candidate (settings fixed)"
    elif by_cv:
        rule = (f"best {cross.n_folds}-fold cross-validated accuracy on the {n_train} training videos, each fold "
                "scored with the backbone trained without it (ties: lower cross-validated log-loss)")
    else:
        rule = f"best accuracy on the {len(y_val)} validation videos (ties: lower validation log-loss)"
        if cv_failed:
            rule += f"; cross-validation on the training videos could not fit a fold model ({cv_failed})"
    left_out = [candidate_name(h, a) for h in hidden for a in activations if (h, a) in skip]
    if left_out:
        rule += f"; not tried: {', '.join(left_out)} (docs/pose_accuracy.md, 'Across camera views')"
    return Selection(fitted[best][1], candidates, rule, [m for _, m in fitted])
