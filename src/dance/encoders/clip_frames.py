"""``clip-frames``: frozen CLIP image embeddings of the frames, averaged over the video.

What :meth:`ClipFramesBackbone.encode` does: each of the ``n_frames`` frames (``features.n_frames``, spread
uniformly over the video) is resized to the model's ``image_size`` square, normalised with the folder's
preprocessor mean / std (OpenAI CLIP's when it has none), embedded by ``CLIPVisionModelWithProjection``
(``image_embeds``: the projected pooled output), L2-normalised, and the unit vectors are averaged over frames.
The average is *not* re-normalised: its length says how much the frames agree.

``model`` is a hub name (default ``openai/clip-vit-base-patch32``) or a local folder holding a ``CLIPModel``
or ``CLIPVisionModelWithProjection`` checkpoint (of a CLIPModel only the vision side is loaded).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dance.encoders.batches import frames_in_fixed_batches
from dance.encoders.hf import (
    CLIP_MEAN,
    CLIP_STD,
    frames_to_pixels,
    load_hf,
    load_hf_config,
    normalisation,
    square_size,
    torch_device,
    weights_identity,
)
from dance.encoders.registry import register_backbone

DEFAULT_MODEL = "openai/clip-vit-base-patch32"


def clip_vision_config(config: Any) -> tuple[Any, int]:
    """The vision config and the projection size of a ``clip`` or ``clip_vision_model`` config."""
    if config.model_type == "clip":
        return config.vision_config, int(config.projection_dim)
    return config, int(config.projection_dim)


class ClipFramesBackbone:
    """Per-frame CLIP image embeddings (unit length), averaged over frames."""

    name = "clip-frames"

    def __init__(self, model: str = "", n_frames: int = 8, device: str = "cpu", frame_batch: int = 64):
        self.model = model or DEFAULT_MODEL
        self.n_frames = int(n_frames)
        self.device = torch_device(device)
        self.frame_batch = frame_batch
        config = load_hf_config(self.model, ("clip", "clip_vision_model"), what="backbone 'clip-frames'")
        vision, self.dim = clip_vision_config(config)
        self.size = square_size(vision.image_size, "backbone 'clip-frames'")
        self.mean, self.std = normalisation(self.model, CLIP_MEAN, CLIP_STD)
        self._vision: torch.nn.Module | None = None
        self._identity: dict[str, Any] | None = None

    def fingerprint(self) -> dict[str, Any]:
        if self._identity is None:
            self._identity = weights_identity(self.model)
        return {"name": self.name, "version": 1, "weights": self._identity,
                "n_frames": self.n_frames, "size": self.size, "mean": list(self.mean), "std": list(self.std)}

    def load(self) -> torch.nn.Module:
        """Load the weights (once) and return the vision model; a ModelError says where to put missing weights."""
        if self._vision is None:
            import transformers

            self._vision = load_hf(transformers.CLIPVisionModelWithProjection, self.model, self.device,
                                   what="backbone 'clip-frames'")
        return self._vision

    @torch.inference_mode()
    def frame_embeddings(self, videos: list[np.ndarray]) -> torch.Tensor:
        """(B, n_frames, dim) unit-length image embeddings of every sampled frame."""
        vision = self.load()
        x = frames_to_pixels(videos, self.n_frames, self.size, self.mean, self.std, self.device)
        # the frames of a fixed number of videos per forward pass: a frame's embedding depends on it alone
        emb = frames_in_fixed_batches(lambda frames: vision(pixel_values=frames).image_embeds, x, self.frame_batch)
        return torch.nn.functional.normalize(emb.float(), dim=-1)

    def encode(self, videos: list[np.ndarray]) -> np.ndarray:
        """(B, dim) float32: the mean over frames of the unit-length frame embeddings."""
        return self.frame_embeddings(videos).mean(dim=1).cpu().numpy()


@register_backbone("clip-frames", f"frozen CLIP image embeddings averaged over frames (transformers; features.model: "
                                  f"hub name or folder, default {DEFAULT_MODEL})", pretrained=True)
def _make(n_frames: int = 8, size: int = 224, seed: int = 0, device: str = "cpu", model: str = ""
          ) -> ClipFramesBackbone:
    """``size`` and ``seed`` are ignored: the model fixes its image size (see ``.size``)."""
    return ClipFramesBackbone(model=model, n_frames=n_frames, device=device)
