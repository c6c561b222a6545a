"""Per-video caches of the keyclips and poses stages: an interrupted stage resumes where it stopped.

Keyed like the features stage's cache (:mod:`dance.encoders.video_cache`): a cache folder per stage and
setting hash under ``RUN/.cache/<stage>/<hash>/``, and one file per video named ``<video id>-<stamp>[-<detail>].
<checksum>.npz``, where ``stamp`` changes when the video file's size or mtime does
(:func:`~dance.encoders.video_cache.video_cache_key`), ``detail`` is what else the video's result depends on (the
poses stage: the video's key-clip windows), and ``checksum`` is the first 16 hex digits of the sha256 of the key and
the arrays (names, dtypes, shapes, bytes), so an entry that was edited, truncated or copied from another video no
longer matches its name and is computed again (and deleted; one warning per stage lists them).

Each video's entry is written (atomically) as soon as the video is done, so a stage killed half-way and run again
redoes only the videos without an entry; the stage's artifact is then assembled from the entries in index order,
the same bytes as an uninterrupted run's. Videos that fail (a decode error, no poses) are never cached: they are
tried again on the next run, like the features stage's skips.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from dance.data.index import VideoRecord
from dance.encoders.video_cache import video_cache_key
from dance.runs import atomic_write_bytes

__all__ = ["VideoStageCache", "arrays_checksum"]

log = logging.getLogger(__name__)

_CHECKSUM = re.compile(r"^[0-9a-f]{16}$")


def arrays_checksum(key: str, arrays: Mapping[str, np.ndarray]) -> str:
    """16 hex digits of the sha256 of ``key`` and the arrays (sorted by name: name, dtype, shape, bytes)."""
    h = hashlib.sha256(key.encode("utf-8") + b"\0")
    for name in sorted(arrays):
        a = np.asarray(arrays[name], order="C")  # (ascontiguousarray makes 0-d arrays 1-d)
        h.update(f"{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


class VideoStageCache:
    """The per-video entries of one stage under one setting hash (``folder``); ``None`` disables caching."""

    def __init__(self, folder: Path | None, what: str):
        self.folder = folder
        self.what = what
        self.invalid: dict[str, str] = {}  # key -> why its entry was not reused
        self._found: dict[str, list[tuple[str, str]]] | None = None

    @staticmethod
    def key(rec: VideoRecord, detail: str = "") -> str:
        """The entry key of ``rec``: :func:`~dance.encoders.video_cache.video_cache_key`, plus ``detail``."""
        base = video_cache_key(rec)
        return f"{base}-{detail}" if detail else base

    def _scan(self) -> dict[str, list[tuple[str, str]]]:
        if self._found is None:
            self._found = {}
            try:
                names = [e.name for e in os.scandir(self.folder) if e.name.endswith(".npz")
                         and not e.name.startswith(".")] if self.folder is not None else []
            except OSError:
                names = []
            for name in names:
                key, _, digest = name[:-4].rpartition(".")
                if key and _CHECKSUM.match(digest):
                    self._found.setdefault(key, []).append((name, digest))
        return self._found

    def load(self, key: str) -> dict[str, np.ndarray] | None:
        """The arrays of ``key``'s entry, or ``None`` when there is none (an entry failing its check is deleted)."""
        if self.folder is None:
            return None
        for name, digest in self._scan().get(key, []):
            path = self.folder / name
            try:
                with np.load(path, allow_pickle=False) as data:
                    arrays = {k: data[k] for k in data.files}
            except (ValueError, OSError, EOFError, KeyError) as e:
                self._reject(key, path, f"unreadable ({type(e).__name__})")
                continue
            if arrays_checksum(key, arrays) != digest:
                self._reject(key, path, "checksum mismatch (the file was modified)")
                continue
            return arrays
        return None

    def save(self, key: str, arrays: Mapping[str, np.ndarray]) -> None:
        """Write ``key``'s entry (atomically; :class:`~dance.runs.WriteError` when the folder cannot be written)."""
        if self.folder is None:
            return
        arrays = {k: np.asarray(v, order="C") for k, v in arrays.items()}
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.folder / f"{key}.{arrays_checksum(key, arrays)}.npz", buf.getvalue())

    def _reject(self, key: str, path: Path, why: str) -> None:
        self.invalid[key] = why
        try:
            path.unlink()
        except OSError:
            pass

    def report(self) -> None:
        """One warning listing the entries that failed their check (and were computed again)."""
        if self.invalid:
            shown = "; ".join(f"{k}: {why}" for k, why in list(self.invalid.items())[:5])
            more = f" (and {len(self.invalid) - 5} more)" if len(self.invalid) > 5 else ""
            log.warning("%s: %d cached entries in %s failed their check and were computed again: %s%s",
                        self.what, len(self.invalid), self.folder, shown, more)
