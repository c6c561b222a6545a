"""Stage ``spatial``: object and scene concept labels for every video, from a label source.

* ``annotations``: ground-truth tags from ``context_labels.csv`` (0/1 labels);
* a dual encoder (``xclip``, ``clip``, ``precomputed``): soft labels (Eq. 3) of the concepts the ``language``
  stage produced, video embeddings cached per video in ``RUN/.cache/spatial/`` and computed on the run's engine
  (:mod:`dance.pipeline.engine`: this process, worker processes each holding the encoder, or Ray actors);
* ``none``: no object or scene concepts (motion concepts only).

A dual encoder labels every text concept type of the run's concept set: ``object`` and ``scene``, and ``temporal``
/ ``entangled`` when the set has them (the LF-CBM baselines of ``train.models``). ``spatial/spatial.npz`` holds
``has_label``, ``object`` and ``scene`` as always, plus one array per extra type; ``spatial/concepts.json`` maps
each type to its concept names (``object`` and ``scene`` always there).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dance.encoders.dual_encoders import DUAL_ENCODERS, make_dual_encoder
from dance.errors import StageError
from dance.pipeline.artifacts import run_index, save_arrays
from dance.pipeline.engine import ChunkMap
from dance.pipeline.language import run_concepts
from dance.pipeline.runner import Context
from dance.registry import unknown_name
from dance.runs import StageWriter, atomic_write_json, stable_hash
from dance.spatial.dual_labels import DualEncoderLabelSource, EmbedWork, chunk_embedder
from dance.spatial.labels import LABEL_SOURCES, TYPES, ContextLabels, LabelSource


def spatial_sources() -> list[str]:
    """Every value ``spatial.source`` takes: ``none``, the label sources, the dual encoders."""
    return ["none", *LABEL_SOURCES, *DUAL_ENCODERS]


def _check_source(name: str) -> None:
    known = spatial_sources()
    if name not in known:
        raise StageError(unknown_name("spatial.source", name, known))


def label_source(ctx: Context) -> LabelSource | None:
    """The configured object/scene label source, or None for ``spatial.source=none`` (motion concepts only)."""
    s = ctx.settings.spatial
    _check_source(s.source)
    if s.source == "none":
        return None
    if s.source in DUAL_ENCODERS:
        cs = run_concepts(ctx.run.root)
        if not cs.object and not cs.scene:
            raise StageError(f"spatial.source={s.source} labels the language stage's concepts, and it has none: "
                             "set language.concepts to a shipped set (kth, penn_action, ucf101), a concept-set "
                             "file, or llm")
        encoder = make_dual_encoder(s.source, model=s.model, device=s.device)

        def local() -> Callable:
            load = getattr(encoder, "load", None)
            if load is not None:
                load()  # fail on missing weights before decoding anything
            return chunk_embedder(encoder)

        return DualEncoderLabelSource(encoder, {t: cs.names(t) for t in cs.types()},
                                      cache_dir=ctx.run.root / ".cache" / "spatial", batch_size=s.batch_size,
                                      prompt=s.prompt, reporter=ctx.reporter,
                                      map_chunks=ChunkMap(ctx.settings.engine, EmbedWork(s.source, s.model, s.device),
                                                          local=local))
    return LABEL_SOURCES.get(s.source)(s, ctx.settings.data.path)


def external(ctx: Context) -> dict[str, str]:
    s = ctx.settings.spatial
    _check_source(s.source)
    if s.source == "none":
        return {"labels": "none"}
    if s.source in DUAL_ENCODERS:  # the concepts are covered by the language stage's fingerprint
        return {"labels": stable_hash(make_dual_encoder(s.source, model=s.model, device=s.device).fingerprint())}
    return {"labels": label_source(ctx).fingerprint()}


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
    skipped = dict(getattr(source, "skipped", {}) or {})
    for vid, why in list(skipped.items())[:10]:
        ctx.reporter.info(f"  [yellow]skipped[/yellow] {vid}: {why}")
    types = list(TYPES) + [t for t in result.names if t not in TYPES]
    save_arrays(out.path("spatial.npz"), has_label=result.mask, **{t: result.labels[t] for t in types})
    atomic_write_json(out.path("concepts.json"), {t: result.names[t] for t in types})
    atomic_write_json(out.path("skipped.json"), skipped)
    missing = int((~result.mask).sum())
    if missing and source is not None:
        ctx.reporter.info(f"  [yellow]{missing} videos have no object/scene labels[/yellow] (left out of those "
                          "concept layers)")
    if len(types) > len(TYPES):
        ctx.reporter.info("  also labelled for the LF-CBM baselines: "
                          + ", ".join(f"{len(result.names[t])} {t}" for t in types[len(TYPES):]) + " concepts")
    engine = {}
    chunk_map = getattr(source, "map_chunks", None)
    if isinstance(chunk_map, ChunkMap):
        engine = {"workers": chunk_map.workers, "engine": ctx.settings.engine.name}
    return {t: len(result.names[t]) for t in types} | {"videos_without_label": missing, "skipped": len(skipped),
                                                       "positives": {t: int(np.sum(result.labels[t])) for t in types}
                                                       } | engine
