"""Stages ``train`` (concept layers + sparse final layer) and ``baseline`` (linear probe, same features).

``train`` fits DANCE (``RUN/train/model/``) and, side by side, every language-concept baseline of ``train.models``
(``RUN/train/variants/<name>/``, see :mod:`dance.pipeline.variants`): the same estimator and settings on other
concept targets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import special

from dance.config import DanceParams
from dance.data.index import VideoIndex
from dance.errors import ModelError, StageError
from dance.model.baseline import fit_linear_probe
from dance.model.dance import ConceptTargets, DanceModel
from dance.model.io import save_model
from dance.model.selection import (
    AUTO,
    CrossFit,
    Selection,
    activation_options,
    candidate_name,
    distill_options,
    fit_selected,
    hidden_options,
    lam_option,
    skipped_candidates,
    stack_teacher,
    stack_views,
)
from dance.pipeline.artifacts import load_arrays, run_index, save_arrays
from dance.pipeline.runner import Context
from dance.pipeline.variants import VARIANTS, baseline_names, check_variant_settings, missing_concepts_error
from dance.runs import StageWriter, atomic_write_json, read_json
from dance.spatial.labels import TYPES as SPATIAL_TYPES
from dance.threads import Rebalance, torch_threads


@dataclass
class SplitData:
    """One split: index rows, features, labels, DANCE's concept targets (``concepts``: motion, object, scene) and
    the targets of every text type the spatial stage labelled (``text``: object, scene, and temporal / entangled
    when present), from which the LF-CBM baselines draw theirs."""

    rows: np.ndarray  # indices into the index records
    X: np.ndarray
    y: np.ndarray
    concepts: dict[str, ConceptTargets]
    text: dict[str, ConceptTargets] = field(default_factory=dict)


def variant_targets(name: str, split: SplitData, concepts_setting: str = "") -> dict[str, ConceptTargets]:
    """The concept targets model ``name`` of :data:`~dance.pipeline.variants.VARIANTS` is fit on, for one split.

    DANCE takes ``split.concepts`` as they are (whatever concept types the run has); a baseline takes the text
    types it needs from ``split.text`` under its own type names (``entangled`` -> ``language`` for
    ``lfcbm-entangled``). A missing text type raises :class:`StageError` saying what to set
    (``concepts_setting``: ``language.concepts``, for the message).
    """
    if name == "dance":
        return dict(split.concepts)
    out = {}
    for model_type, source in VARIANTS[name].types:
        if source not in split.text:
            raise missing_concepts_error(name, source, concepts_setting)
        out[model_type] = split.text[source]
    return out


def load_split_data(ctx: Context) -> tuple[VideoIndex, dict[str, SplitData]]:
    """Features, labels and concept targets of every split, for videos whose features exist."""
    index = run_index(ctx.stage_dir("index"))
    feats = load_arrays(ctx.stage_dir("features") / "features.npz")
    motion = load_arrays(ctx.stage_dir("motion") / "motion.npz")
    motion_names = read_json(ctx.stage_dir("motion") / "concepts.json")["names"]
    spatial = load_arrays(ctx.stage_dir("spatial") / "spatial.npz")
    spatial_names = read_json(ctx.stage_dir("spatial") / "concepts.json")
    labels = np.array([index.class_index(r.label) for r in index.records], dtype=np.int64)
    splits = np.array([r.split for r in index.records], dtype=object)
    out: dict[str, SplitData] = {}
    for split in index.split_names:
        rows = np.flatnonzero(feats["ok"] & (splits == split))
        targets = {"motion": ConceptTargets(motion_names, motion["labels"][rows], "bce", motion["has_label"][rows])}
        text = {}
        for t, names in spatial_names.items():
            if not names or t not in spatial:
                continue  # no concepts of this type (e.g. a pose-only dataset)
            text[t] = ConceptTargets(names, spatial[t][rows], "cos3", spatial["has_label"][rows])
            if t in SPATIAL_TYPES:
                targets[t] = text[t]
        out[split] = SplitData(rows, feats["x"][rows], labels[rows], targets, text)
    for need in ("train", "val"):
        if need not in out or len(out[need].rows) == 0:
            raise StageError(f"no '{need}' videos with features: check the index and the features stage")
    return index, out


def _views_of(path: Path, x: np.ndarray, rows: np.ndarray, tr: SplitData) -> np.ndarray:
    """The training videos' augmented views (… × V × training videos × dim) out of ``x`` saved for index rows
    ``rows``; a file whose rows differ from the run's training videos is a :class:`StageError`."""
    if not np.array_equal(rows, tr.rows):
        raise StageError(f"the augmented views in {path} do not match the run's training videos: run the features "
                         "stage again")
    return x


def training_views(ctx: Context, tr: SplitData) -> np.ndarray | None:
    """Features of the training videos' augmented views (V × N × dim), when the features stage made them
    (``features/views.npz``, ``features.views``); else None."""
    path = ctx.stage_dir("features") / "views.npz"
    if not path.is_file():
        return None
    views = load_arrays(path)
    return _views_of(path, views["x"], views["rows"], tr)


@dataclass
class Teacher:
    """The trained backbone's own class probabilities (the teacher of ``train.distill``): of the training videos
    (``probs``: N × classes) and of their augmented views (``views``: V × N × classes, or None without views)."""

    probs: np.ndarray
    views: np.ndarray | None
    source: str


#: why a run has no teacher for ``train.distill``, by case
NO_HEAD = "the backbone has no head of its own (it was not trained here; the baseline is a linear probe)"
OLD_FEATURES = "the features stage ran before it saved class scores: run `dance features` again to distil"
AUTO_DISTILL_NOTE = ("neither a validation split nor cross-validation on the training videos scores the shares where "
                     "they differ most (test videos from other camera views), so auto distils 0.5 without trying 0 "
                     "(docs/pose_accuracy.md, 'Across camera views')")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities of logits (..., classes), in float64."""
    return special.softmax(np.asarray(logits, dtype=np.float64), axis=-1)


def training_teacher(ctx: Context, tr: SplitData) -> tuple[Teacher | None, str]:
    """The trained backbone's class probabilities of the training videos and their views (``features/
    head_predictions.npz`` and ``views.npz``, ``logits``), or None and why there is none."""
    head = ctx.stage_dir("features") / "head_predictions.npz"
    if not head.is_file():
        return None, NO_HEAD
    arrays = load_arrays(head)
    if "logits" not in arrays:
        return None, OLD_FEATURES
    views_path = ctx.stage_dir("features") / "views.npz"
    views = None
    if views_path.is_file():
        saved = load_arrays(views_path)
        if "logits" not in saved:
            return None, OLD_FEATURES
        views = softmax(_views_of(views_path, saved["logits"], saved["rows"], tr))
    return Teacher(softmax(arrays["logits"][tr.rows]), views, f"{ctx.settings.features.backbone}'s own head"), ""


def cross_fit(ctx: Context, tr: SplitData, va: SplitData) -> CrossFit | None:
    """The held-out features of the training videos, when the features stage cross-fitted its backbone
    (``features/folds.npz``, ``features.folds``); else None."""
    path = ctx.stage_dir("features") / "folds.npz"
    if not path.is_file():
        return None
    folds = load_arrays(path)
    fold = folds["fold"][tr.rows]
    if (fold < 0).any() or folds["x"].shape[1] <= max(tr.rows.max(initial=0), va.rows.max(initial=0)):
        raise StageError(f"{path} does not match the run's training videos: run the features stage again")
    views = teacher_views = None
    if "views" in folds and folds["views"].shape[1]:
        views = _views_of(path, folds["views"], folds["view_rows"], tr)
        if "view_logits" in folds:
            teacher_views = softmax(_views_of(path, folds["view_logits"], folds["view_rows"], tr))
    teacher = softmax(folds["logits"][:, tr.rows]) if "logits" in folds else None
    return CrossFit(fold=fold, X=folds["x"][:, tr.rows], X_val=folds["x"][:, va.rows], views=views,
                    teacher=teacher, teacher_views=teacher_views)


def _new_model(ctx: Context, concept_hidden: int | None = None, binary_activation: str = "logit",
               distill: float = 0.0, lam: float = DanceParams.lam) -> DanceModel:
    """An unfitted DanceModel with the run's ``train.*`` hyperparameters (every one the settings declare, see
    :class:`dance.config.DanceParams`); the four that may be ``auto`` are given concretely."""
    params = ctx.settings.train.estimator_params()
    return DanceModel(**params | {"concept_hidden": concept_hidden, "binary_activation": binary_activation,
                                  "distill": distill, "lam": lam})


def distill_info(setting: float | str, chosen: float, options: list[float], teacher: Teacher | None,
                 why_not: str) -> dict:
    """What ``train.distill`` did in this run, for ``training.json`` and ``summary.json``: the share the model
    kept, the teacher (or why there was none), and under ``auto`` the shares tried."""
    if setting == AUTO:
        distilled = teacher is not None and max(options) > 0
        out = {"share": chosen, "setting": AUTO, "candidates": options,
               "teacher": teacher.source if distilled else None}
        if not distilled:
            return out | {"why_not": why_not}
        return out | {"note": AUTO_DISTILL_NOTE}
    if setting == 0:
        return {"share": 0.0, "teacher": None}
    if teacher is None:
        return {"share": 0.0, "setting": setting, "teacher": None, "why_not": why_not}
    return {"share": setting, "teacher": teacher.source}


def lam_info(setting: float | str, value: float) -> dict:
    """What ``train.lam`` did in this run, for ``training.json`` and ``summary.json``: the final layer's ``λ`` and,
    under ``auto``, why that one."""
    if setting != AUTO:
        return {"value": value}
    why = ("the final layer distils a teacher: a smaller λ kept more of the teacher's "
           "invariance across camera views (docs/pose_accuracy.md, 'Across camera views')"
           if value != DanceParams.lam else "the paper's")
    return {"value": value, "setting": AUTO, "note": why}


def model_counts(model: DanceModel) -> dict[str, int]:
    """Kept concepts per type of a fitted model: DANCE's three types always, any other type it has."""
    return {t: n for t, n in model.n_concepts().items() if n or t in ("motion", "object", "scene")}


def variant_dir(train_dir: Path, name: str) -> Path:
    """Where the ``train`` stage saves baseline ``name`` (``RUN/train/variants/<name>/``)."""
    return train_dir / "variants" / name


def select_model(ctx: Context, classes: list[str], tr: SplitData, va: SplitData, views: np.ndarray | None,
                 teacher: Teacher | None = None, rebalance: Rebalance | None = None) -> Selection:
    """The train stage's choice of DANCE model: every candidate of the run's ``train.concept_hidden``,
    ``train.binary_activation`` and ``train.distill`` settings fit on the training videos (and their augmented
    ``views``), chosen on the validation videos or by cross-validation (:func:`~dance.model.selection.fit_selected`);
    a share > 0 distils ``teacher`` into the final layer (each cross-validation fold its own backbone's head).
    ``rebalance``: re-counts torch's threads as the fits progress (``train.threads=0``)."""
    s = ctx.settings.train
    hidden = hidden_options(s.concept_hidden, 0 if views is None else len(views), s.concept_batch_size)
    activations = activation_options(s.binary_activation, any(t.loss == "bce" for t in tr.concepts.values()))
    cross = cross_fit(ctx, tr, va)
    distills = distill_options(s.distill)
    if teacher is None or (s.distill == AUTO and cross is not None and cross.teacher is None):
        distills = [0.0]  # nothing to distil; or fold backbones saved without their class scores (OLD_FEATURES)
    distilling = max(distills) > 0
    if cross is not None and distilling and cross.teacher is None:
        raise StageError(f"features/folds.npz has no class scores of the fold backbones to distil: {OLD_FEATURES}")
    lam = lam_option(s.lam, distilling)
    with ctx.reporter.tracker() as progress:
        return fit_selected(_new_model(ctx, lam=lam), hidden, activations, tr.X, tr.y, tr.concepts, va.X, va.y,
                            va.concepts, classes, progress=progress if rebalance is None else rebalance.wrap(progress),
                            cross=cross, views=views,
                            teacher=None if teacher is None else teacher.probs,
                            teacher_views=None if teacher is None else teacher.views, distills=distills,
                            skip=skipped_candidates(s.concept_hidden, s.binary_activation, distilling))


def run_train(ctx: Context, out: StageWriter) -> dict:
    s = ctx.settings.train
    baselines = baseline_names(s.models)
    check_variant_settings(s.models, ctx.settings.spatial.source, None)
    index, data = load_split_data(ctx)
    tr, va = data["train"], data["val"]
    cs = ctx.settings.language.concepts.strip()
    targets = {name: (variant_targets(name, tr, cs), variant_targets(name, va, cs)) for name in baselines}
    views = training_views(ctx, tr)
    n_views = 0 if views is None else len(views)
    if views is not None:
        ctx.reporter.info(f"  fitting on the {len(tr.y)} training videos and {len(views)} augmented views of each")
    teacher, why_not = training_teacher(ctx, tr) if s.distill == AUTO or s.distill > 0 else (None, "")
    if teacher is None and s.distill != AUTO and s.distill > 0:
        ctx.reporter.info(f"  [yellow]train.distill={s.distill:g} has no teacher[/yellow]: {why_not}")
    with torch_threads(s.threads) as n_threads:
        rebalance = Rebalance(s.threads)
        selection = select_model(ctx, index.classes, tr, va, views, teacher, rebalance)
    model = selection.model
    options = sorted({float(c["distill"]) for c in selection.candidates})
    if s.distill == AUTO and teacher is not None and options == [0.0]:  # cross-fitted without fold class scores
        why_not = OLD_FEATURES
    distill = distill_info(s.distill, model.distill, options, teacher, why_not)
    lam = lam_info(s.lam, model.lam)
    if "note" in lam and model.lam != DanceParams.lam:
        ctx.reporter.info(f"  final layer λ = {model.lam:g} (train.lam=auto: {lam['note']})")
    if model.distill > 0:
        ctx.reporter.info(f"  final layer distils {distill['teacher']}: targets = {1 - model.distill:g} × label + "
                          f"{model.distill:g} × its class probabilities")
    if len(selection.candidates) > 1:
        score = "cv" if "cv_accuracy" in selection.candidates[0] else "val"
        ctx.reporter.info(("  chosen by cross-validation on the training videos: " if score == "cv" else
                           "  chosen on validation: ") + "; ".join(
            f"{candidate_name(c['concept_hidden'], c['binary_activation'], c['distill'])}: "
            f"{c[score + '_accuracy']:.3f} (log-loss {c[score + '_log_loss']:.3f})"
            + (" [chosen]" if c["chosen"] else "") for c in selection.candidates))
    save_model(model, out.dir / "model")
    n = model.n_concepts()
    ctx.reporter.info(f"  concepts kept: {n}; dropped: {len(model.dropped_)}; "
                      f"non-zero weights: {model.nonzero_weights()} of {model.W_.size}")
    variants: dict[str, dict] = {}
    for name in baselines:
        tgt, tgt_val = targets[name]
        vmodel = _new_model(ctx, model.concept_hidden, model.binary_activation, model.distill, model.lam)
        ctx.reporter.info(f"  {VARIANTS[name].label} ({name}): "
                          + ", ".join(f"{len(t.names)} {ty}" for ty, t in tgt.items()) + " candidate concepts")
        try:
            with ctx.reporter.tracker() as progress:
                vmodel.fit(*stack_views(tr.X, tr.y, tgt, views), X_val=va.X, y_val=va.y, concepts_val=tgt_val,
                           classes=index.classes, progress=progress,
                           teacher=None if teacher is None else stack_teacher(teacher.probs, teacher.views))
        except ModelError as e:
            raise StageError(f"{VARIANTS[name].label} ({name}): {e}") from e
        save_model(vmodel, variant_dir(out.dir, name), extra={"variant": name, "label": VARIANTS[name].label})
        variants[name] = {"n_concepts": model_counts(vmodel), "dropped": len(vmodel.dropped_),
                          "nonzero_weights": vmodel.nonzero_weights(), "val_accuracy": vmodel.score(va.X, va.y)}
        ctx.reporter.info(f"    concepts kept: {variants[name]['n_concepts']}; dropped: {len(vmodel.dropped_)}; "
                          f"non-zero weights: {vmodel.nonzero_weights()} of {vmodel.W_.size}")
    atomic_write_json(out.path("training.json"), {
        "n_concepts": n,
        "dropped": [vars(d) for d in model.dropped_],
        "concept_quality": model.concept_quality_,
        "path": model.path_,
        "variants": variants,
        "selection": selection.to_json() | {"distill": distill, "lam": lam},
        "augmented_views": n_views,
    })
    return {"n_concepts": n, "dropped": len(model.dropped_), "nonzero_weights": model.nonzero_weights(),
            "val_accuracy": model.score(va.X, va.y),
            "selection": selection.to_json() | {"distill": distill, "lam": lam},
            "augmented_views": n_views, "threads": n_threads, "threads_changed": rebalance.changes} | (
        {"variants": variants} if variants else {})


def run_baseline(ctx: Context, out: StageWriter) -> dict:
    """The baseline without interpretability on the same backbone: a trained backbone's own linear head when
    the features stage trained one (pose encoder), else a linear probe on the frozen features."""
    index, data = load_split_data(ctx)
    head = ctx.stage_dir("features") / "head_predictions.npz"
    if head.is_file():
        pred = load_arrays(head)["pred"]
        info: dict = {"model": f"{ctx.settings.features.backbone} with its linear head (trained end to end)"}
    else:
        tr, va = data["train"], data["val"]
        probe = fit_linear_probe(tr.X, tr.y, va.X, va.y, seed=ctx.settings.train.seed)
        pred = np.full(len(index.records), -1, dtype=np.int64)
        for d in data.values():
            if len(d.rows):
                pred[d.rows] = probe.predict(d.X)
        info = {"model": "linear probe (multinomial logistic regression, L2)", "C": probe.C}
    acc = {split: float((pred[d.rows] == d.y).mean()) for split, d in data.items() if len(d.rows)}
    save_arrays(out.path("predictions.npz"), pred=pred)
    atomic_write_json(out.path("baseline.json"), info | {"accuracy": acc})
    ctx.reporter.info(f"  baseline ({info['model']}): " + ", ".join(f"{k}={v:.3f}" for k, v in acc.items()))
    return info | {"accuracy": acc}
