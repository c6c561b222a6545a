"""Encoding many videos with a per-video cache: what the features stage and the dual-encoder labels share.

Each video's vector is written to ``cache_dir/<video id>-<size/mtime stamp>.npy`` as soon as its batch is encoded,
so an interrupted run resumes where it stopped, a grown dataset only encodes its new videos, and an edited video
(new size or mtime) is encoded again. A cached file that cannot be read, has the wrong shape or holds NaN / inf is
encoded again. A video that fails to decode, or whose vector has NaN / inf, is skipped with its reason.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from dance.data.index import VideoRecord
from dance.errors import DanceError
from dance.progress import Reporter
from dance.runs import atomic_write_bytes, stable_hash


def video_cache_name(rec: VideoRecord) -> str:
    """Per-video cache file: the video id plus its file's size and mtime, so an edited video is re-encoded."""
    try:
        st = rec.path.stat()
        stamp = stable_hash([st.st_size, st.st_mtime_ns])[:10]
    except OSError:
        stamp = "missing"
    return f"{rec.video_id}-{stamp}.npy"


def _load_cached(path: Path, dim: int) -> np.ndarray | None:
    try:
        v = np.load(path, allow_pickle=False)
    except (ValueError, OSError):
        return None
    return v if v.shape == (dim,) and np.isfinite(v).all() else None


def encode_videos_cached(
    records: Sequence[VideoRecord],
    read: Callable[[VideoRecord], np.ndarray],
    encode: Callable[[list[np.ndarray]], np.ndarray],
    dim: int,
    cache_dir: Path | None,
    batch_size: int,
    reporter: Reporter,
    what: str,
    load: Callable[[], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, str], int]:
    """``(vectors (N, dim), ok (N,), skipped {video id: reason}, reused)`` for ``records``.

    ``read`` decodes one video into the frames ``encode`` takes (a batch of them at a time); ``load`` (the
    model's weights) is called before anything is decoded, and only when some video is not cached.
    """
    out = np.zeros((len(records), dim), dtype=np.float32)
    ok = np.zeros(len(records), dtype=bool)
    skipped: dict[str, str] = {}
    names = [video_cache_name(r) for r in records]
    todo: list[int] = []
    for i in range(len(records)):
        v = _load_cached(cache_dir / names[i], dim) if cache_dir is not None and (cache_dir / names[i]).is_file() \
            else None
        if v is None:
            todo.append(i)
        else:
            out[i], ok[i] = v, True
    reused = int(ok.sum())
    if todo and load is not None:
        load()  # fail on missing weights before decoding anything

    def flush(batch: list[tuple[int, np.ndarray]]) -> None:
        x = np.asarray(encode([v for _, v in batch]), dtype=np.float32)
        for (i, _), row in zip(batch, x):
            if not np.isfinite(row).all():
                skipped[records[i].video_id] = f"{what} produced NaN/inf values"
                continue
            out[i], ok[i] = row, True
            if cache_dir is not None:
                buf = io.BytesIO()
                np.save(buf, row)
                atomic_write_bytes(cache_dir / names[i], buf.getvalue())

    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
    batch: list[tuple[int, np.ndarray]] = []
    with reporter.task(what, len(todo)) as advance:
        for i in todo:
            try:
                frames = read(records[i])
            except (DanceError, OSError) as e:
                skipped[records[i].video_id] = str(e)
                advance()
                continue
            batch.append((i, frames))
            if len(batch) == batch_size:
                flush(batch)
                advance(len(batch))
                batch = []
        if batch:
            flush(batch)
            advance(len(batch))
    return out, ok, skipped, reused
