"""Stage ``spatial``: object and scene concept labels for every video, from a label source."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dance.errors import StageError
from dance.pipeline.artifacts import run_index, save_arrays
from dance.pipeline.runner import Context
from dance.runs import StageWriter, atomic_write_json
from dance.spatial.labels import TYPES, ContextLabels, LabelSource, make_label_source


def label_source(ctx: Context) -> LabelSource | None:
    """The configured object/scene label source, or None for ``spatial.source=none`` (motion concepts only)."""
    s = ctx.settings.spatial
    if s.source == "none":
        return None
    if s.source == "annotations":
        path = Path(s.path) if s.path else Path(ctx.settings.data.path).parent / "context_labels.csv"
        if not path.is_file():
            raise StageError(f"spatial.source=annotations needs a label csv; {path} does not exist "
                             "(set spatial.path)")
        return make_label_source("annotations", path=path)
    return make_label_source(s.source)


def external(ctx: Context) -> dict[str, str]:
    source = label_source(ctx)
    return {"labels": source.fingerprint() if source is not None else "none"}


def run(ctx: Context, out: StageWriter) -> dict:
    index = run_index(ctx.stage_dir("index"))
    source = label_source(ctx)
    if source is None:
        n = len(index.records)
        result = ContextLabels({t: [] for t in TYPES}, {t: np.zeros((n, 0), np.float32) for t in TYPES},
                               np.zeros(n, dtype=bool))
        ctx.reporter.info("  spatial.source=none: no object or scene concepts (motion concepts only)")
    else:
        result = source.labels(index.records)
    save_arrays(out.path("spatial.npz"), has_label=result.mask, **{t: result.labels[t] for t in TYPES})
    atomic_write_json(out.path("concepts.json"), {t: result.names[t] for t in TYPES})
    missing = int((~result.mask).sum())
    if missing and source is not None:
        ctx.reporter.info(f"  [yellow]{missing} videos have no object/scene labels[/yellow] (left out of those "
                          "concept layers)")
    return {t: len(result.names[t]) for t in TYPES} | {"videos_without_label": missing,
                                                       "positives": {t: int(np.sum(result.labels[t])) for t in TYPES}}
