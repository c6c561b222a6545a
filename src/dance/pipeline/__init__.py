"""The DANCE pipeline as stages (see ``STAGES`` for the order and what each reads)."""

from __future__ import annotations

import json
import time

from dance.paper import paper_dataset
from dance.pipeline import catalogue, evaluate, features, index, language, motion, spatial, train, variants
from dance.pipeline.runner import Context, Stage, StageResult, run_stages
from dance.runs import atomic_write_json, atomic_write_text

STAGES: tuple[Stage, ...] = (
    Stage("index", "read the video index and make a validation split", (), ("data",), index.run, index.external),
    Stage("language", "object and scene concept set (shipped, a file, or asked of a language model)", ("index",),
          ("language",), language.run, language.external),
    Stage("keyclips", "keyframes (pixel differences, or pose motion for pose-only data) and key-clip windows",
          ("index",), ("keyclips", "poses"), motion.run_keyclips, motion.poses_external),
    Stage("poses", "2D pose sequences of every key clip", ("keyclips",), ("poses",), motion.run_poses,
          motion.poses_external),
    Stage("motion", "filter, normalise and cluster pose sequences (FINCH) into motion concepts",
          ("index", "poses"), ("motion",), motion.run_motion),
    Stage("spatial", "object and scene concept labels", ("index", "language"), ("spatial",), spatial.run,
          spatial.external),
    Stage("features", "frozen backbone features, one vector per video (a pose backbone is trained first)",
          ("index",), ("features", "poses"), features.run, motion.poses_external),
    Stage("train", "concept layers and the sparse final layer", ("features", "motion", "spatial"), ("train",),
          train.run_train),
    Stage("baseline", "linear probe on the same features (no interpretability)",
          ("features", "motion", "spatial"), (), train.run_baseline),
    Stage("evaluate", "accuracy, sparsity, explanations", ("train", "baseline"), ("evaluate",), evaluate.run,
          evaluate.external),
    Stage("catalogue", "render every motion concept (GIF + PNG) with its training frequency and classes",
          ("motion", "train"), (), catalogue.run),
)

STAGE_NAMES = tuple(s.name for s in STAGES)


def check_settings(ctx: Context, only: list[str] | None = None) -> None:
    """Checks that need no stage output, run before any stage so that a run cannot fail hours in: the baselines
    of ``train.models`` get their concepts (a dual encoder; the concept set's lists when it is a file or a
    shipped set) and ``evaluate.paper_dataset`` names a Table 1 dataset."""
    if only is not None and not {"language", "spatial", "train", "evaluate"} & set(only):
        return
    s = ctx.settings
    paper_dataset([], setting=s.evaluate.paper_dataset)
    if not variants.baseline_names(s.train.models):
        return
    concepts = s.language.concepts.strip()
    types = None
    if concepts and concepts != "llm":
        from dance.language.concept_set import load_concept_set

        types = load_concept_set(concepts).types()
    elif not concepts:
        types = []
    variants.check_variant_settings(s.train.models, s.spatial.source, types, concepts)


def run_pipeline(ctx: Context, only: list[str] | None = None, force: tuple[str, ...] = ()) -> list[StageResult]:
    """Run the pipeline (or some stages) and write ``RUN/summary.json`` and ``RUN/config.yaml``."""
    import yaml

    check_settings(ctx, only)
    if only is None:  # single stages read the run's config; only a full run (re)writes it
        atomic_write_text(ctx.run.root / "config.yaml", yaml.safe_dump(ctx.settings.model_dump(), sort_keys=False))
    results = run_stages(STAGES, ctx, only=only, force=force)
    if "evaluate" in {r.name for r in results}:
        summary = json.loads((ctx.run.root / "evaluate" / "summary.json").read_text())
        summary["stages"] = {r.name: round(r.seconds, 2) for r in results}
        summary["cached"] = [r.name for r in results if r.status == "cached"]
        summary["written"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        atomic_write_json(ctx.run.root / "summary.json", summary)
    return results
