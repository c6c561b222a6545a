"""Object and scene soft labels from a video-text dual encoder (the paper's Eq. 3), as a :class:`LabelSource`.

The same source labels the text concepts of the LF-CBM baselines, ``temporal`` and ``entangled``, when it is given
some (:data:`~dance.spatial.labels.TEXT_TYPES`); ``object`` and ``scene`` are always in its output.

For every video, ``encoder.n_frames`` frames spread uniformly over the video are read at ``encoder.size`` and
embedded once; every concept text is embedded once; the label of concept m for video n is the clipped cosine
``max(0, E_T(O_m) · E_V(V_n))`` (:func:`~dance.encoders.dual_encoders.soft_labels`).

Video embeddings are cached per video in ``cache_dir/<encoder fingerprint>/`` (the file name carries the video
file's size and mtime, like the features cache), written as each batch finishes, so an interrupted run resumes
and a grown dataset only encodes its new videos. The batches not cached can run elsewhere (``map_chunks``: worker
processes or Ray actors, each building the encoder once from :class:`EmbedWork`), with the same batches and bytes.
A video that cannot be decoded, or whose embedding has NaN / inf, gets ``mask`` False and its reason in
:attr:`DualEncoderLabelSource.skipped`.

Precomputed dual encoders (``encoder.input == "precomputed"``) look their video embeddings up by id instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dance.data.index import VideoRecord
from dance.data.video import read_clip
from dance.encoders.dual_encoders import DualEncoder, make_dual_encoder, soft_labels
from dance.encoders.video_cache import ChunkResult, MapChunks, encode_chunk, encode_videos_cached
from dance.errors import ConfigError, ModelError
from dance.progress import Reporter
from dance.runs import stable_hash
from dance.spatial.labels import TEXT_TYPES, TYPES, ContextLabels

__all__ = ["DualEncoderLabelSource", "EmbedWork", "chunk_embedder", "make_dual_encoder"]


def chunk_embedder(encoder: DualEncoder) -> Callable[[list[VideoRecord]], ChunkResult]:
    """A chunk of videos → per video its embedding, or the reason it was skipped; frames read as
    :class:`DualEncoderLabelSource` reads them by default (``encoder.n_frames`` spread over the video, at
    ``encoder.size``), the chunk embedded in one call."""
    what = f"video embeddings ({encoder.name})"
    return lambda chunk: encode_chunk(chunk, lambda rec: read_clip(rec.path, encoder.n_frames, encoder.size),
                                      encoder.encode_videos, what)


@dataclass(frozen=True)
class EmbedWork:
    """Worker factory of the video embeddings on an engine (:class:`dance.pipeline.engine.ChunkMap`): each worker
    process or Ray actor builds the dual encoder once and loads its weights, then embeds chunk after chunk."""

    encoder: str
    model: str = ""
    device: str = "cpu"

    def __call__(self) -> Callable[[list[VideoRecord]], ChunkResult]:
        encoder = make_dual_encoder(self.encoder, model=self.model, device=self.device)
        load = getattr(encoder, "load", None)
        if load is not None:
            load()
        return chunk_embedder(encoder)


class DualEncoderLabelSource:
    """Soft object / scene labels from a dual encoder.

    Args:
        encoder: a dual encoder (see :func:`~dance.encoders.dual_encoders.make_dual_encoder`).
        concepts: concept texts per type, keys ``"object"`` and ``"scene"`` (a missing key means no concepts), and
            optionally ``"temporal"`` / ``"entangled"`` (labelled, and in the output, only when given concepts).
        cache_dir: folder for the per-video embedding cache (None: no cache).
        read_frames: ``record -> (T, H, W, 3) uint8`` frames; default: ``encoder.n_frames`` frames spread
            uniformly over the video, resized to ``encoder.size``. Raising a DanceError (or OSError) skips it.
        batch_size: videos per encoder call.
        prompt: format string turning a concept into the text that is embedded (default: the concept itself).
        reporter: progress bars (default: silent).
        map_chunks: run the uncached batches elsewhere (:class:`dance.pipeline.engine.ChunkMap` over
            :class:`EmbedWork`); its workers read frames the default way, so not with ``read_frames``.

    After :meth:`labels`, :attr:`skipped` maps the video id of every video left without labels to the reason.
    """

    name = "dual-encoder"

    def __init__(self, encoder: DualEncoder, concepts: dict[str, list[str]], cache_dir: Path | str | None = None,
                 read_frames: Callable[[VideoRecord], np.ndarray] | None = None, batch_size: int = 8,
                 prompt: str = "{}", reporter: Reporter | None = None, map_chunks: MapChunks | None = None):
        unknown = sorted(set(concepts) - set(TEXT_TYPES))
        if unknown:
            raise ConfigError(f"concept types must be among {', '.join(TEXT_TYPES)}; got {', '.join(unknown)}")
        self.concepts = {t: [str(c) for c in concepts.get(t, [])] for t in TEXT_TYPES
                         if t in TYPES or concepts.get(t)}
        for t, names in self.concepts.items():
            dupes = sorted({c for c in names if names.count(c) > 1})
            if dupes:
                raise ConfigError(f"duplicate {t} concepts: {', '.join(dupes[:5])}")
        if "{}" not in prompt:
            raise ConfigError(f"prompt '{prompt}' must contain '{{}}' where the concept goes")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if map_chunks is not None and read_frames is not None:
            raise ConfigError("map_chunks runs workers that read frames the default way; it cannot take read_frames")
        self.encoder = encoder
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.custom_reader = read_frames is not None
        self.read_frames = read_frames or self._default_frames
        self.batch_size = batch_size
        self.prompt = prompt
        self.reporter = reporter or Reporter()
        self.map_chunks = map_chunks
        self.skipped: dict[str, str] = {}

    def _default_frames(self, rec: VideoRecord) -> np.ndarray:

        return read_clip(rec.path, self.encoder.n_frames, self.encoder.size)

    def _frames_key(self) -> str:
        if not self.custom_reader:
            return "uniform-v1"
        f = self.read_frames
        return f"{getattr(f, '__module__', '?')}.{getattr(f, '__qualname__', type(f).__name__)}"

    def fingerprint(self) -> str:
        """Hash of the encoder, the concept texts, the prompt and the frame reader."""
        return stable_hash({"source": self.name, "encoder": self.encoder.fingerprint(), "concepts": self.concepts,
                            "prompt": self.prompt, "frames": self._frames_key()})

    def text_embeddings(self) -> dict[str, np.ndarray]:
        """(M, D) unit-length embeddings of each type's concept texts."""
        out = {}
        for t in self.concepts:
            texts = [self.prompt.format(c) for c in self.concepts[t]]
            emb = np.asarray(self.encoder.encode_texts(texts), dtype=np.float32)
            bad = [self.concepts[t][j] for j in np.flatnonzero(~np.isfinite(emb).all(axis=1))] if len(emb) else []
            if bad:
                raise ModelError(f"the dual encoder gave NaN/inf embeddings for {t} concepts: {', '.join(bad[:5])}")
            out[t] = emb
        return out

    def _cache_folder(self) -> Path | None:
        if self.cache_dir is None:
            return None
        folder = self.cache_dir / stable_hash({"encoder": self.encoder.fingerprint(),
                                               "frames": self._frames_key()})[:16]
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def video_embeddings(self, records: Sequence[VideoRecord]) -> tuple[np.ndarray, np.ndarray]:
        """``(embeddings (N, D), ok (N,))``; fills :attr:`skipped` with the reason of every video not ok."""
        self.skipped = {}
        if getattr(self.encoder, "input", "video") == "precomputed":
            emb, ok, skipped = self.encoder.lookup(records)
            self.skipped.update(skipped)
            return np.asarray(emb, dtype=np.float32), np.asarray(ok, dtype=bool)
        emb, ok, skipped, _ = encode_videos_cached(
            records, self.read_frames, self.encoder.encode_videos, int(self.encoder.dim), self._cache_folder(),
            self.batch_size, self.reporter, f"video embeddings ({self.encoder.name})",
            getattr(self.encoder, "load", None), map_chunks=self.map_chunks)
        self.skipped.update(skipped)
        return emb, ok

    def labels(self, records: Sequence[VideoRecord]) -> ContextLabels:
        """Soft labels (Eq. 3) of every concept type given; videos without an embedding have mask False, zero rows."""
        text = self.text_embeddings()
        emb, ok = self.video_embeddings(records)
        labels = {}
        for t in self.concepts:
            lab = np.zeros((len(records), len(self.concepts[t])), dtype=np.float32)
            if ok.any() and len(self.concepts[t]):
                lab[ok] = soft_labels(emb[ok], text[t])
            labels[t] = lab
        return ContextLabels({t: list(self.concepts[t]) for t in self.concepts}, labels, ok.copy())


def make_dual_label_source(encoder: str, concepts: dict[str, list[str]], model: str = "", device: str = "cpu",
                           cache_dir: Path | str | None = None, **kwargs: Any) -> DualEncoderLabelSource:
    """Shortcut: ``DualEncoderLabelSource(make_dual_encoder(encoder, model, device), concepts, cache_dir, ...)``."""
    return DualEncoderLabelSource(make_dual_encoder(encoder, model=model, device=device), concepts,
                                  cache_dir=cache_dir, **kwargs)
