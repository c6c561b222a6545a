"""Encoding many videos with a per-video cache: what the features stage and the dual-encoder labels share.

Each video's vector is written to ``cache_dir/<video id>-<stamp>.<checksum>.npy`` as soon as its batch is encoded,
so an interrupted run resumes where it stopped, a grown dataset only encodes its new videos, and an edited video
(new size or mtime, hence a new ``stamp``) is encoded again. ``checksum`` is the first 16 hex digits of the sha256
of the entry's key (``<video id>-<stamp>``), dtype, shape and raw bytes (:func:`cache_checksum`), so a cached file
that was edited, zeroed, truncated or copied from another video no longer matches its name.

A cache entry is reused only when it reads as a float32 ``(dim,)`` vector, every value is finite and its checksum
matches; any other entry (including those of older versions of dance, written without a checksum as
``<video id>-<stamp>.npy``) is deleted and the video encoded again, and the entries that failed are logged (one
warning per call, with the reasons). A video that fails to decode, or whose vector has NaN / inf, is skipped with
its reason: a read that raises a :class:`~dance.errors.DanceError` or ``OSError`` — a missing, undecodable or
truncated video (:class:`~dance.data.video.TruncatedVideoError`, reason ``truncated video: decoded 86 of the 300
frames ...``) — is never cached, so the video is tried again on the next run.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from dance.data.index import VideoRecord
from dance.errors import DanceError
from dance.progress import Reporter
from dance.runs import atomic_write_bytes, stable_hash

log = logging.getLogger(__name__)

_CHECKSUM = re.compile(r"^[0-9a-f]{16}$")


def video_cache_key(rec: VideoRecord) -> str:
    """Per-video cache key: the video id plus its file's size and mtime, so an edited video is re-encoded."""
    try:
        st = rec.path.stat()
        stamp = stable_hash([st.st_size, st.st_mtime_ns])[:10]
    except OSError:
        stamp = "missing"
    return f"{rec.video_id}-{stamp}"


def cache_checksum(key: str, v: np.ndarray) -> str:
    """16 hex digits of the sha256 of a cache entry: its key, dtype, shape and raw little-endian bytes."""
    arr = np.ascontiguousarray(v, dtype="<f4")
    h = hashlib.sha256(key.encode("utf-8") + b"\0" + f"float32{arr.shape}".encode() + b"\0")
    h.update(arr.tobytes())
    return h.hexdigest()[:16]


def video_cache_name(key: str, v: np.ndarray) -> str:
    """The file name of a cache entry: ``<key>.<checksum>.npy``."""
    return f"{key}.{cache_checksum(key, v)}.npy"


def _scan(cache_dir: Path) -> dict[str, list[tuple[str, str | None]]]:
    """Entries of the cache folder by key: ``[(file name, checksum or None for an entry without one)]``."""
    out: dict[str, list[tuple[str, str | None]]] = {}
    try:
        entries = [e.name for e in os.scandir(cache_dir) if e.name.endswith(".npy") and not e.name.startswith(".")]
    except OSError:
        return out
    for name in entries:
        base = name[:-4]
        key, _, digest = base.rpartition(".")
        if key and _CHECKSUM.match(digest):
            out.setdefault(key, []).append((name, digest))
        else:
            out.setdefault(base, []).append((name, None))
    return out


def _check_entry(path: Path, key: str, digest: str | None, dim: int) -> tuple[np.ndarray | None, str]:
    """``(vector, "")`` for a valid entry, else ``(None, why it is not reused)``."""
    if digest is None:
        return None, "no checksum (written by an older dance)"
    try:
        v = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        return None, f"unreadable ({type(e).__name__})"
    if v.shape != (dim,):
        return None, f"shape {v.shape} instead of ({dim},)"
    if v.dtype.kind != "f" or v.dtype.itemsize != 4:
        return None, f"dtype {v.dtype} instead of float32"
    if not np.isfinite(v).all():
        return None, "NaN or infinite values"
    if cache_checksum(key, v) != digest:
        return None, "checksum mismatch (the file was modified)"
    return v, ""


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


ChunkResult = list  # per video of a chunk: its vector (dim,) float32, or the reason it was skipped (str)


def encode_chunk(records: Sequence[VideoRecord], read: Callable[[VideoRecord], np.ndarray],
                 encode: Callable[[list[np.ndarray]], np.ndarray], what: str) -> ChunkResult:
    """Read and encode one chunk of videos in one ``encode`` call: per video its float32 vector, or the reason it
    was skipped (a read that raises a DanceError or OSError; NaN / inf values). What a worker of the features stage
    runs (:mod:`dance.pipeline.features`), and what this process runs without one."""
    out: ChunkResult = [None] * len(records)
    frames, where = [], []
    for j, rec in enumerate(records):
        try:
            frames.append(read(rec))
            where.append(j)
        except (DanceError, OSError) as e:
            out[j] = str(e)
    if frames:
        x = np.asarray(encode(frames), dtype=np.float32)
        for j, row in zip(where, x):
            out[j] = row if np.isfinite(row).all() else f"{what} produced NaN/inf values"
    return out


#: ``map_chunks(chunks)`` → ``(chunk position, ChunkResult)`` as chunks finish, in any order: how a caller spreads
#: the chunks over workers (:func:`dance.pipeline.engine.run_items`); None: :func:`encode_chunk` here, in order.
MapChunks = Callable[[list[list[VideoRecord]]], Iterator[tuple[int, ChunkResult]]]


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
    map_chunks: MapChunks | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, str], int]:
    """``(vectors (N, dim), ok (N,), skipped {video id: reason}, reused)`` for ``records``.

    ``read`` decodes one video into the frames ``encode`` takes; the videos not cached are cut, in index order,
    into chunks of ``batch_size`` (one ``encode`` call each, whatever worker runs it, so every engine batches the
    same videos together). ``load`` (the model's weights) is called before anything is decoded, and only when some
    video is not cached. ``map_chunks``: run the chunks elsewhere (worker processes, Ray); each video's entry is
    written as its chunk comes back.
    """
    out = np.zeros((len(records), dim), dtype=np.float32)
    ok = np.zeros(len(records), dtype=bool)
    skipped: dict[str, str] = {}
    keys = [video_cache_key(r) for r in records]
    todo: list[int] = []
    invalid: dict[str, str] = {}  # video id -> why its cache entry was not reused
    found = _scan(cache_dir) if cache_dir is not None and cache_dir.is_dir() else {}
    for i in range(len(records)):
        v = None
        for name, digest in found.get(keys[i], []):
            if v is not None:  # a second entry for the same key: keep the one already accepted
                continue
            v, why = _check_entry(cache_dir / name, keys[i], digest, dim)
            if v is None:
                invalid[records[i].video_id] = why
                _remove(cache_dir / name)  # never reused; the video is encoded again below
        if v is None:
            todo.append(i)
        else:
            invalid.pop(records[i].video_id, None)
            out[i], ok[i] = v, True
    if invalid:
        shown = "; ".join(f"{vid}: {why}" for vid, why in list(invalid.items())[:5])
        more = f" (and {len(invalid) - 5} more)" if len(invalid) > 5 else ""
        log.warning("%s: %d cached vectors in %s failed their check and are encoded again: %s%s", what,
                    len(invalid), cache_dir, shown, more)
    reused = int(ok.sum())
    if todo and load is not None and map_chunks is None:
        load()  # fail on missing weights before decoding anything (workers load their own)
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
    chunks = [todo[k:k + batch_size] for k in range(0, len(todo), max(1, batch_size))]
    chunk_records = [[records[i] for i in c] for c in chunks]
    results = (map_chunks(chunk_records) if map_chunks is not None
               else ((n, encode_chunk(c, read, encode, what)) for n, c in enumerate(chunk_records)))
    with reporter.task(what, len(todo)) as advance:
        for n, result in results:
            for i, value in zip(chunks[n], result):
                if isinstance(value, str):
                    skipped[records[i].video_id] = value
                    continue
                row = np.ascontiguousarray(value, dtype="<f4")
                out[i], ok[i] = row, True
                if cache_dir is not None:
                    buf = io.BytesIO()
                    np.save(buf, row)
                    atomic_write_bytes(cache_dir / video_cache_name(keys[i], row), buf.getvalue())
            advance(len(chunks[n]))
    skipped = {r.video_id: skipped[r.video_id] for r in records if r.video_id in skipped}  # index order
    return out, ok, skipped, reused
