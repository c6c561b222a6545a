"""The stage runner: fingerprints, cache decisions, and the order of the DANCE pipeline.

Each stage declares the stages it reads, the settings sections it depends on, and optionally external inputs
(a dataset, a pose folder, a label file) whose fingerprints it adds. A stage reruns when its fingerprint —
settings, upstream fingerprints, external inputs, package version — differs from its manifest, or when forced.
The manifest also keeps the settings sections themselves, which :class:`dance.run_view.RunView` reads back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dance.config import Settings
from dance.errors import StageError
from dance.progress import Reporter, reporting
from dance.runs import RunDir, StageWriter, fingerprint


@dataclass
class Context:
    """What a running stage sees: settings, the run directory, and where to report progress."""

    settings: Settings
    run: RunDir
    reporter: Reporter = field(default_factory=Reporter)

    def stage_dir(self, name: str) -> Path:
        return self.run.require(name)


@dataclass(frozen=True)
class Stage:
    name: str
    help: str
    deps: tuple[str, ...]
    sections: tuple[str, ...]
    run: Callable[[Context, StageWriter], dict[str, Any] | None]
    external: Callable[[Context], dict[str, str]] | None = None


@dataclass
class StageResult:
    name: str
    status: str  # "ran" | "cached"
    seconds: float
    info: dict[str, Any]


def stage_settings(stage: Stage, ctx: Context) -> dict[str, Any]:
    """The settings sections a stage depends on, as plain data (hashed into its fingerprint, kept in its manifest)."""
    return {s: getattr(ctx.settings, s).model_dump() for s in stage.sections}


def stage_fingerprint(stage: Stage, ctx: Context, upstream: dict[str, str]) -> tuple[str, str, dict[str, str]]:
    settings = stage_settings(stage, ctx)
    inputs = {d: upstream[d] for d in stage.deps}
    if stage.external is not None:
        inputs.update({f"external:{k}": v for k, v in stage.external(ctx).items()})
    fp, settings_hash = fingerprint(stage.name, settings, inputs)
    return fp, settings_hash, inputs


def upstream_of(stages: Sequence[Stage], names: Sequence[str]) -> set[str]:
    """Every stage that the stages ``names`` read, directly or through another stage (not ``names`` themselves)."""
    by_name = {s.name: s for s in stages}
    found: set[str] = set()
    todo = list(names)
    while todo:
        for dep in by_name[todo.pop()].deps:
            if dep not in found:
                found.add(dep)
                todo.append(dep)
    return found


def run_stages(stages: Sequence[Stage], ctx: Context, only: Sequence[str] | None = None,
               force: Sequence[str] = ()) -> list[StageResult]:
    """Run ``stages`` in order (or only those named, whose upstream must already be current).

    With ``only``, the stages the named ones read (directly or not) must be current; any other stage is not
    looked at, however stale (``dance features`` reads only ``index``, not ``language``).
    """
    names = [s.name for s in stages]
    for f in list(force) + list(only or []):
        if f not in names:
            raise StageError(f"unknown stage '{f}'; stages: {', '.join(names)}")
    needed = upstream_of(stages, only) if only is not None else set(names)
    results: list[StageResult] = []
    fps: dict[str, str] = {}
    last = max((names.index(o) for o in only), default=len(names) - 1) if only is not None else len(names) - 1
    for stage in stages[: last + 1]:  # stages after the last selected one are not looked at
        selected = only is None or stage.name in only
        if not selected and stage.name not in needed:
            continue  # nothing selected reads it
        missing = [d for d in stage.deps if d not in fps]
        if missing:
            raise StageError(f"stage '{stage.name}' needs {missing}, which run later: fix the stage order")
        if not selected:
            m = ctx.run.manifest(stage.name)
            fp, _, _ = stage_fingerprint(stage, ctx, fps)
            if m is None or m.fingerprint != fp:
                readers = [s for s in (only or []) if stage.name in upstream_of(stages, [s])]
                why = "has not run" if m is None else "is out of date (its settings or inputs changed)"
                raise StageError(f"stage '{stage.name}', which '{readers[0]}' reads, {why}: run it first "
                                 f"(`dance {stage.name} --run {ctx.run.root}`, or `dance run` for every stage)")
            fps[stage.name] = fp
            continue
        fp, settings_hash, inputs = stage_fingerprint(stage, ctx, fps)
        fps[stage.name] = fp
        if ctx.run.is_current(stage.name, fp) and stage.name not in force:
            m = ctx.run.manifest(stage.name)
            ctx.reporter.info(f"[dim]✓ {stage.name}: cached (inputs and settings unchanged)[/dim]")
            results.append(StageResult(stage.name, "cached", m.seconds if m else 0.0, m.extra if m else {}))
            continue
        ctx.reporter.info(f"[bold]▶ {stage.name}[/bold]: {stage.help}")
        start = time.time()
        with ctx.run.writing(stage.name, fp, settings_hash, inputs, stage_settings(stage, ctx)) as writer, \
                reporting(ctx.reporter):
            info = stage.run(ctx, writer) or {}
            writer.extra.update(info)
        seconds = time.time() - start
        results.append(StageResult(stage.name, "ran", seconds, info))
    return results
