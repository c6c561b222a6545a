"""The stage table (``STAGES``: the order, what each stage reads and which settings it depends on) and
:func:`run_pipeline`."""

from __future__ import annotations

import json
import time

from dance.pipeline import catalogue, evaluate, features, index, language, motion, spatial, train
from dance.pipeline.runner import Context, Stage, StageResult, run_stages
from dance.pipeline.validate import validate_settings
from dance.runs import WriteError, atomic_write_json, atomic_write_text

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
          ("index",), ("features", "poses"), features.run, features.external),
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
    """Checks that need no stage output (see :func:`dance.pipeline.validate.validate_settings`), run before any
    stage so that a run cannot fail hours in."""
    validate_settings(ctx.settings, stages=only)


def run_pipeline(ctx: Context, only: list[str] | None = None, force: tuple[str, ...] = ()) -> list[StageResult]:
    """Run the pipeline (or some stages) and write ``RUN/summary.json`` and ``RUN/config.yaml``.

    The settings are validated first (:func:`~dance.pipeline.validate.validate_settings`): settings that name
    an unknown backbone, pose source, format, label source or model fail before any stage and are not saved.
    """
    import yaml

    check_settings(ctx, only)
    if only is None:  # single stages read the run's config; only a full run (re)writes it
        atomic_write_text(ctx.run.root / "config.yaml", yaml.safe_dump(ctx.settings.model_dump(), sort_keys=False))
    results = run_stages(STAGES, ctx, only=only, force=force)
    if "evaluate" in {r.name for r in results}:
        summary = json.loads((ctx.run.root / "evaluate" / "summary.json").read_text())
        summary["stages"] = {r.name: round(r.seconds, 2) for r in results}
        summary["cached"] = [r.name for r in results if r.status == "cached"]
        path = ctx.run.root / "summary.json"
        try:
            before = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            before = None
        if not (isinstance(before, dict) and {k: v for k, v in before.items() if k != "written"} == summary):
            summary["written"] = time.strftime("%Y-%m-%dT%H:%M:%S")  # unchanged: not rewritten (read-only runs)
            try:
                atomic_write_json(path, summary)
            except WriteError as e:
                if any(r.status != "cached" for r in results):
                    raise
                ctx.reporter.info(f"  [yellow]summary.json not updated[/yellow] ({e}); every stage was cached, so "
                                  "the stages' own outputs are current (evaluate/summary.json)")
    return results
