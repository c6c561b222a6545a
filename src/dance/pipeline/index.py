"""Stage ``index``: read the dataset's index, add a validation split when there is none, save a copy."""

from __future__ import annotations

from pathlib import Path

from dance.data.formats import load_index
from dance.data.index import VideoIndex, make_val_split
from dance.errors import ConfigError
from dance.pipeline.runner import Context
from dance.runs import StageWriter


def _load(ctx: Context) -> VideoIndex:
    data = ctx.settings.data
    if not data.path:
        raise ConfigError("no dataset given: set data.path (an annotations.csv, a class-folder root, ...)")
    splits = {k: Path(v) for k, v in data.splits.items()} or None
    return load_index(Path(data.path), fmt=data.format, splits=splits, classes=Path(data.classes) if data.classes
                      else None, split_id=data.split_id, merge_val=data.merge_val)


def external(ctx: Context) -> dict[str, str]:
    return {"dataset": _load(ctx).fingerprint()}


def run(ctx: Context, out: StageWriter) -> dict:
    index = _load(ctx)
    if not index.split("val") and ctx.settings.data.val_fraction > 0:
        index = make_val_split(index, fraction=ctx.settings.data.val_fraction, seed=ctx.settings.data.seed)
    index.to_csv(out.path("index.csv"))
    counts = index.counts()
    ctx.reporter.info(f"  {len(index.records)} videos, {len(index.classes)} classes, splits "
                      + ", ".join(f"{s}={sum(c.values())}" for s, c in counts.items()))
    return {"videos": len(index.records), "classes": len(index.classes),
            "splits": {s: sum(c.values()) for s, c in counts.items()}}
