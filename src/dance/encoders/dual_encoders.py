"""Video-text dual encoders by name, for the object and scene pseudo-labels of Eq. 3.

A dual encoder maps a video and a concept text to the same embedding space. Register one with
:func:`register_dual_encoder` (into the registry :data:`DUAL_ENCODERS`); callers use :func:`make_dual_encoder`
with a name:

* ``xclip`` — ``transformers.XCLIPModel`` + its tokenizer (default ``microsoft/xclip-base-patch32``, 8 frames):
  video embeddings from ``get_video_features`` (frame CLS embeddings → multi-frame integration transformer),
  text embeddings from ``get_text_features``. The text embeddings are the plain ones, not X-CLIP's
  video-conditioned prompts, so each concept is encoded once for all videos (as Eq. 3 writes E_T(O)).
* ``clip`` — ``transformers.CLIPModel`` + its tokenizer (default ``openai/clip-vit-base-patch32``): every sampled
  frame's image embedding is L2-normalised, the unit vectors are averaged over the clip and the average is
  normalised again; text from ``get_text_features``.
* ``precomputed`` — embeddings computed elsewhere: video embeddings keyed by video id and text embeddings keyed
  by the exact concept text (see :class:`PrecomputedDualEncoder`). Nothing is decoded.

Protocol (:class:`DualEncoder`): ``name``, ``input`` (``"video"`` or ``"precomputed"``), ``n_frames`` and
``size`` (frames the encoder wants: ``n_frames`` frames spread over the video, resized to ``size`` squares),
``dim``, ``fingerprint() -> dict``, ``encode_videos(list of (T, H, W, 3) uint8) -> (B, D)`` and
``encode_texts(list[str]) -> (M, D)``, both L2-normalised float32. Precomputed encoders have
``lookup(records) -> (embeddings, ok, skipped)`` instead of a working ``encode_videos``.

Frames are scaled to [0, 1] and normalised with the model folder's preprocessor mean / std when it has one
(otherwise ImageNet's for X-CLIP, whose released processors use it, and OpenAI CLIP's for CLIP).

:func:`soft_labels` is Eq. 3.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from dance.data.index import VideoRecord
from dance.encoders.batches import frames_in_fixed_batches, in_fixed_batches
from dance.encoders.hf import (
    CLIP_MEAN,
    CLIP_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    frames_to_pixels,
    load_hf,
    load_hf_config,
    load_hf_tokenizer,
    normalisation,
    square_size,
    torch_device,
    weights_identity,
)
from dance.encoders.precomputed import KeyedVectors, lookup_records
from dance.errors import ConfigError, ModelError
from dance.registry import Registry

__all__ = [
    "DUAL_ENCODERS",
    "ClipDualEncoder",
    "DualEncoder",
    "DualEncoderEntry",
    "PrecomputedDualEncoder",
    "XClipDualEncoder",
    "l2_normalise",
    "list_dual_encoders",
    "make_dual_encoder",
    "register_dual_encoder",
    "soft_labels",
]


class DualEncoder(Protocol):
    name: str
    input: str
    n_frames: int
    size: int
    dim: int

    def fingerprint(self) -> dict[str, Any]:
        """Everything that determines the embeddings (name, weights identity, frames, normalisation)."""
        ...

    def encode_videos(self, videos: list[np.ndarray]) -> np.ndarray:
        """(B, D) unit-length float32 embeddings of B uint8 RGB videos (T, H, W, 3)."""
        ...

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """(M, D) unit-length float32 embeddings of M texts."""
        ...


@dataclass(frozen=True)
class DualEncoderEntry:
    name: str
    description: str
    default_model: str
    factory: Callable[..., Any]


DUAL_ENCODERS: Registry[DualEncoderEntry] = Registry("dual encoder")


def register_dual_encoder(name: str, description: str, default_model: str = "") -> Callable:
    """Decorator registering a dual-encoder factory ``factory(model=, device=, **kwargs) -> DualEncoder``."""

    def deco(factory: Callable[..., Any]) -> Callable[..., Any]:
        DUAL_ENCODERS.add(name, DualEncoderEntry(name, description, default_model, factory), description)
        return factory

    return deco


def make_dual_encoder(name: str, model: str = "", device: str = "cpu", **kwargs: Any) -> Any:
    """A dual encoder by name; ``model`` is a hub name or local folder ('' = the encoder's default).

    Building one reads only the model's config; weights are loaded on first use (or by ``.load()``).
    """
    return DUAL_ENCODERS.get(name).factory(model=model, device=device, **kwargs)


def list_dual_encoders() -> list[DualEncoderEntry]:
    return [entry for _, entry in DUAL_ENCODERS.items()]


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def soft_labels(video_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
    """Eq. 3: ``c̃[n, m] = E_T(O_m) · E_V(V_n)``, the cosine similarity of normalised embeddings, as (N, M) in [0, 1].

    Both inputs are L2-normalised here (again), so the values are cosines in [-1, 1]; negatives are clipped
    to 0 and nothing is rescaled. Keeping the raw CLIP-scale cosines (typically 0.1–0.35 for matching pairs)
    keeps the meaning of Label-free CBM's clip cutoff, which drops a concept when the mean of its top-5
    similarities is at most 0.25.
    """
    v, t = np.asarray(video_emb, dtype=np.float32), np.asarray(text_emb, dtype=np.float32)
    if v.ndim != 2 or t.ndim != 2:
        raise ModelError(f"soft_labels needs 2-D embeddings, got videos {v.shape} and texts {t.shape}")
    if v.shape[1] != t.shape[1]:
        raise ModelError(f"video embeddings have {v.shape[1]} dimensions but text embeddings {t.shape[1]}")
    if not (np.isfinite(v).all() and np.isfinite(t).all()):
        raise ModelError("soft_labels got NaN/inf embeddings")
    return np.clip(l2_normalise(v) @ l2_normalise(t).T, 0.0, 1.0).astype(np.float32)


def _embeds(out: Any) -> torch.Tensor:
    """The embedding tensor of ``get_*_features`` (a tensor in transformers 4, an output object in 5)."""
    if isinstance(out, torch.Tensor):
        return out
    pooled = getattr(out, "pooler_output", None)
    if isinstance(pooled, torch.Tensor):
        return pooled
    raise ModelError(f"unexpected output of the dual encoder: {type(out).__name__}")


def _finish(x: torch.Tensor) -> np.ndarray:
    return torch.nn.functional.normalize(x.float(), dim=-1).cpu().numpy().astype(np.float32)


class _HFDualEncoder:
    """Shared parts of the transformers dual encoders: lazy loading, tokenising, fingerprint."""

    name = ""
    input = "video"
    model_types: tuple[str, ...] = ()
    default_mean: tuple[float, ...] = IMAGENET_MEAN
    default_std: tuple[float, ...] = IMAGENET_STD

    def __init__(self, model: str, device: str, default_model: str, text_batch: int = 256):
        self.model = model or default_model
        self.device = torch_device(device)
        self.text_batch = text_batch
        self.what = f"dual encoder '{self.name}'"
        self.config = load_hf_config(self.model, self.model_types, what=self.what)
        self.dim = int(self.config.projection_dim)
        self.size = square_size(self.config.vision_config.image_size, self.what)
        self.mean, self.std = normalisation(self.model, self.default_mean, self.default_std)
        self._net: Any = None
        self._tokenizer: Any = None
        self._identity: dict[str, Any] | None = None

    def _model_class(self) -> Any:
        raise NotImplementedError

    def load(self) -> None:
        """Load the weights and the tokenizer (once); raises ModelError when they cannot be found."""
        if self._net is not None:
            return
        tokenizer = load_hf_tokenizer(self.model, what=f"{self.what} tokenizer")
        vocab = int(self.config.text_config.vocab_size)
        if len(tokenizer) > vocab:
            raise ModelError(f"the tokenizer of '{self.model}' has {len(tokenizer)} tokens but the text model "
                             f"only {vocab}: they do not belong together")
        self._net = load_hf(self._model_class(), self.model, self.device, what=self.what)
        self._tokenizer = tokenizer

    def fingerprint(self) -> dict[str, Any]:
        if self._identity is None:
            self._identity = weights_identity(self.model)
        return {"name": self.name, "version": 1, "weights": self._identity,
                "n_frames": self.n_frames, "size": self.size, "mean": list(self.mean), "std": list(self.std)}

    @torch.inference_mode()
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """(M, D) unit-length text embeddings (``get_text_features``), truncated to the model's context."""
        self.load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        limit = int(self.config.text_config.max_position_embeddings)
        max_len = min(limit, int(getattr(self._tokenizer, "model_max_length", limit) or limit))
        out = []
        for start in range(0, len(texts), self.text_batch):
            tok = self._tokenizer(list(texts[start:start + self.text_batch]), padding=True, truncation=True,
                                  max_length=max_len, return_tensors="pt")
            out.append(_embeds(self._net.get_text_features(input_ids=tok["input_ids"].to(self.device),
                                                           attention_mask=tok["attention_mask"].to(self.device))))
        return _finish(torch.cat(out))


class XClipDualEncoder(_HFDualEncoder):
    """X-CLIP: video embeddings from ``get_video_features`` over the model's ``num_frames`` frames."""

    name = "xclip"
    model_types = ("xclip",)
    video_batch = 8  # videos per forward pass, whatever the caller's batch

    def __init__(self, model: str = "", device: str = "cpu", text_batch: int = 256):
        super().__init__(model, device, "microsoft/xclip-base-patch32", text_batch)
        self.n_frames = int(self.config.vision_config.num_frames)

    def _model_class(self) -> Any:
        import transformers

        return transformers.XCLIPModel

    @torch.inference_mode()
    def encode_videos(self, videos: list[np.ndarray]) -> np.ndarray:
        self.load()
        x = frames_to_pixels(videos, self.n_frames, self.size, self.mean, self.std, self.device)
        # video_batch videos per forward pass: a video's embedding depends on it alone (dance.encoders.batches)
        return _finish(in_fixed_batches(lambda c: _embeds(self._net.get_video_features(pixel_values=c)), x,
                                        self.video_batch))


class ClipDualEncoder(_HFDualEncoder):
    """CLIP on frames: unit frame embeddings averaged over the clip, then normalised."""

    name = "clip"
    model_types = ("clip",)
    default_mean, default_std = CLIP_MEAN, CLIP_STD

    def __init__(self, model: str = "", device: str = "cpu", n_frames: int = 8, text_batch: int = 256,
                 frame_batch: int = 64):
        super().__init__(model, device, "openai/clip-vit-base-patch32", text_batch)
        self.n_frames = int(n_frames)
        self.frame_batch = frame_batch

    def _model_class(self) -> Any:
        import transformers

        return transformers.CLIPModel

    @torch.inference_mode()
    def encode_videos(self, videos: list[np.ndarray]) -> np.ndarray:
        self.load()
        x = frames_to_pixels(videos, self.n_frames, self.size, self.mean, self.std, self.device)
        # the frames of a fixed number of videos per forward pass: a frame's embedding depends on it alone
        emb = frames_in_fixed_batches(lambda f: _embeds(self._net.get_image_features(pixel_values=f)), x,
                                      self.frame_batch)
        frames = torch.nn.functional.normalize(emb.float(), dim=-1)
        return _finish(frames.mean(dim=1))


class PrecomputedDualEncoder:
    """Embeddings computed elsewhere, read from files; nothing is decoded.

    ``model`` is a folder holding ``videos.npz`` (str array ``video_ids`` + (N, D) ``embeddings``; or a
    ``videos/`` folder of ``<video_id>.npy``) and ``texts.npz`` (str array ``texts`` + (M, D) ``embeddings``,
    keyed by the exact concept text). ``videos=`` / ``texts=`` name the two files directly instead.
    Videos without an embedding are skipped with the reason (by :meth:`lookup`); a concept text without one
    is a :class:`~dance.errors.ModelError` naming it.
    """

    name = "precomputed"
    input = "precomputed"
    n_frames = 0
    size = 0

    def __init__(self, model: str = "", device: str = "cpu", videos: str | Path | None = None,
                 texts: str | Path | None = None):
        folder = Path(model).expanduser() if str(model).strip() else None
        if videos is None:
            if folder is None:
                raise ConfigError("dual encoder 'precomputed' needs a folder with videos.npz (or videos/) and "
                                  "texts.npz, or videos= and texts= files")
            videos = folder / "videos.npz" if (folder / "videos.npz").is_file() else folder / "videos"
        if texts is None:
            if folder is None:
                raise ConfigError("dual encoder 'precomputed' needs texts= (an .npz with texts and embeddings)")
            texts = folder / "texts.npz"
        self.videos = KeyedVectors(videos, key_name="video_ids", value_names=("embeddings", "features"))
        self.texts = KeyedVectors(texts, key_name="texts", value_names=("embeddings", "features"))
        if self.videos.dim != self.texts.dim:
            raise ModelError(f"precomputed video embeddings ({self.videos.path}) have {self.videos.dim} dimensions "
                             f"but text embeddings ({self.texts.path}) have {self.texts.dim}")
        self.dim = self.videos.dim
        self._identity: dict[str, str] | None = None

    def fingerprint(self) -> dict[str, Any]:
        if self._identity is None:
            self._identity = {"videos": self.videos.identity(), "texts": self.texts.identity()}
        return {"name": self.name, "version": 1, "files": self._identity, "dim": self.dim}

    def lookup(self, records: Sequence[VideoRecord]) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
        """``(embeddings (N, D) unit length, ok (N,), skipped {video_id: reason})`` for ``records``."""
        x, ok, skipped = lookup_records(self.videos, records)
        zero = ok & (np.linalg.norm(x, axis=1) == 0)
        for i in np.flatnonzero(zero):
            skipped[records[i].video_id] = f"all-zero embedding in {self.videos.path}"
        return l2_normalise(x), ok & ~zero, skipped

    def encode_videos(self, videos: list[np.ndarray]) -> np.ndarray:
        raise ModelError("dual encoder 'precomputed' reads video embeddings from a file and cannot encode frames")

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        rows, missing = [], []
        for text in texts:
            v, reason = self.texts.get(text)
            if v is None:
                missing.append(f"'{text}' ({reason})")
            else:
                rows.append(v)
        if missing:
            raise ModelError(f"{len(missing)} concept texts have no usable precomputed embedding: "
                             + "; ".join(missing[:10]) + ("; …" if len(missing) > 10 else ""))
        return l2_normalise(np.stack(rows)) if rows else np.zeros((0, self.dim), dtype=np.float32)


@register_dual_encoder("xclip", "X-CLIP video and text embeddings (transformers)", "microsoft/xclip-base-patch32")
def _make_xclip(model: str = "", device: str = "cpu", **kwargs: Any) -> XClipDualEncoder:
    return XClipDualEncoder(model=model, device=device, **kwargs)


@register_dual_encoder("clip", "CLIP frame embeddings averaged over the clip, and CLIP text embeddings "
                               "(transformers)", "openai/clip-vit-base-patch32")
def _make_clip(model: str = "", device: str = "cpu", **kwargs: Any) -> ClipDualEncoder:
    return ClipDualEncoder(model=model, device=device, **kwargs)


@register_dual_encoder("precomputed", "video embeddings by video id and text embeddings by concept text, "
                                      "read from files")
def _make_precomputed(model: str = "", device: str = "cpu", **kwargs: Any) -> PrecomputedDualEncoder:
    return PrecomputedDualEncoder(model=model, device=device, **kwargs)

