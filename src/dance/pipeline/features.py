"""Stage ``features``: one feature vector per video from a frozen backbone, cached per video.

Per-video features are kept in ``RUN/.cache/features/<backbone fingerprint>/`` so an interrupted extraction
resumes where it stopped, and a dataset that grows only encodes its new videos.
"""

from __future__ import annotations

import io

import numpy as np

from dance.data.video import read_video
from dance.encoders.registry import make_backbone
from dance.errors import DanceError
from dance.pipeline.artifacts import run_index, save_arrays
from dance.pipeline.runner import Context
from dance.runs import StageWriter, atomic_write_bytes, atomic_write_json, stable_hash


def sample_frames(frames: np.ndarray, n: int) -> np.ndarray:
    """``n`` frames spread uniformly over the video (frames repeat when the video is shorter)."""
    idx = np.round(np.linspace(0, len(frames) - 1, n)).astype(np.int64)
    return frames[idx]


def run(ctx: Context, out: StageWriter) -> dict:
    s = ctx.settings.features
    index = run_index(ctx.stage_dir("index"))
    backbone = make_backbone(s.backbone, n_frames=s.n_frames, size=s.size, seed=s.seed, device=s.device)
    cache = ctx.run.root / ".cache" / "features" / stable_hash(backbone.fingerprint())[:16]
    cache.mkdir(parents=True, exist_ok=True)
    feats = np.zeros((len(index.records), backbone.dim), dtype=np.float32)
    ok = np.zeros(len(index.records), dtype=bool)
    skipped: dict[str, str] = {}
    todo: list[int] = []
    for i, rec in enumerate(index.records):
        f = cache / f"{rec.video_id}.npy"
        if f.is_file():
            feats[i], ok[i] = np.load(f), True
        else:
            todo.append(i)
    reused = int(ok.sum())

    def flush(batch: list[tuple[int, np.ndarray]]) -> None:
        x = backbone.encode([v for _, v in batch])
        for (i, _), row in zip(batch, x):
            feats[i], ok[i] = row, True
            buf = io.BytesIO()
            np.save(buf, row.astype(np.float32))
            atomic_write_bytes(cache / f"{index.records[i].video_id}.npy", buf.getvalue())

    batch: list[tuple[int, np.ndarray]] = []
    with ctx.reporter.task(f"features ({s.backbone})", len(todo)) as advance:
        for i in todo:
            rec = index.records[i]
            try:
                frames = sample_frames(read_video(rec.path, size=s.size), s.n_frames)
            except DanceError as e:
                skipped[rec.video_id] = str(e)
                advance()
                continue
            batch.append((i, frames))
            if len(batch) == s.batch_size:
                flush(batch)
                advance(len(batch))
                batch = []
        if batch:
            flush(batch)
            advance(len(batch))
    if not np.isfinite(feats[ok]).all():
        bad = [index.records[i].video_id for i in np.flatnonzero(ok & ~np.isfinite(feats).all(axis=1))]
        for vid in bad:
            skipped[vid] = "backbone produced NaN/inf features"
        ok &= np.isfinite(feats).all(axis=1)
    save_arrays(out.path("features.npz"), x=feats, ok=ok)
    atomic_write_json(out.path("backbone.json"), backbone.fingerprint() | {"dim": backbone.dim})
    atomic_write_json(out.path("skipped.json"), skipped)
    return {"dim": backbone.dim, "encoded": len(todo) - len(skipped), "reused": reused, "skipped": len(skipped)}
