"""Stages ``train`` (concept layers + sparse final layer) and ``baseline`` (linear probe, same features)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dance.data.index import VideoIndex
from dance.errors import StageError
from dance.model.baseline import fit_linear_probe
from dance.model.dance import ConceptTargets, DanceModel
from dance.model.io import save_model
from dance.pipeline.artifacts import load_arrays, run_index, save_arrays
from dance.pipeline.runner import Context
from dance.runs import StageWriter, atomic_write_json, read_json
from dance.spatial.labels import TYPES as SPATIAL_TYPES


@dataclass
class SplitData:
    rows: np.ndarray  # indices into the index records
    X: np.ndarray
    y: np.ndarray
    concepts: dict[str, ConceptTargets]


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
        for t in SPATIAL_TYPES:
            if not spatial_names[t]:
                continue  # no concepts of this type (e.g. a pose-only dataset)
            targets[t] = ConceptTargets(spatial_names[t], spatial[t][rows], "cos3", spatial["has_label"][rows])
        out[split] = SplitData(rows, feats["x"][rows], labels[rows], targets)
    for need in ("train", "val"):
        if need not in out or len(out[need].rows) == 0:
            raise StageError(f"no '{need}' videos with features: check the index and the features stage")
    return index, out


def run_train(ctx: Context, out: StageWriter) -> dict:
    s = ctx.settings.train
    index, data = load_split_data(ctx)
    tr, va = data["train"], data["val"]
    model = DanceModel(concept_lr=s.concept_lr, concept_steps=s.concept_steps, concept_hidden=s.concept_hidden,
                       clip_cutoff=s.clip_cutoff, interpretability_cutoff=s.interpretability_cutoff, lam=s.lam,
                       alpha=s.alpha, n_lambdas=s.n_lambdas, final_max_iter=s.final_max_iter, device=s.device,
                       seed=s.seed)
    with ctx.reporter.tracker() as progress:
        model.fit(tr.X, tr.y, tr.concepts, va.X, va.y, va.concepts, index.classes, progress=progress)
    save_model(model, out.dir / "model")
    atomic_write_json(out.path("training.json"), {
        "n_concepts": model.n_concepts(),
        "dropped": [vars(d) for d in model.dropped_],
        "concept_quality": model.concept_quality_,
        "path": model.path_,
    })
    n = model.n_concepts()
    ctx.reporter.info(f"  concepts kept: {n}; dropped: {len(model.dropped_)}; "
                      f"non-zero weights: {model.nonzero_weights()} of {model.W_.size}")
    return {"n_concepts": n, "dropped": len(model.dropped_), "nonzero_weights": model.nonzero_weights(),
            "val_accuracy": model.score(va.X, va.y)}


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
