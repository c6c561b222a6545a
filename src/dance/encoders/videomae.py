"""``videomae``: a frozen VideoMAE encoder (``transformers.VideoMAEModel``), the backbone of the paper's Table 1.

What :meth:`VideoMAEBackbone.encode` does, exactly:

1. each video is resampled to the model's ``num_frames`` frames (16 for the released models) spread uniformly
   over the video, and resized to the model's ``image_size`` square (224) — the features stage already reads
   frames that way (a square resize of the whole frame, not the processor's shortest-edge resize + centre crop);
2. pixels are scaled to [0, 1] and normalised with the mean / std of the folder's preprocessor config, or the
   ImageNet mean / std when it has none;
3. the encoder's last hidden states (one token per 2×16×16 tube; no CLS token) are averaged over all tokens;
4. the average is layer-normalised: with the checkpoint's own ``fc_norm`` (learned scale and shift) when
   ``model`` is a fine-tuned ``VideoMAEForVideoClassification`` checkpoint — exactly the vector its classifier
   reads — otherwise with a parameter-free layer norm (zero mean, unit variance per vector, eps 1e-6).

``model`` is a hub name (default ``MCG-NJU/videomae-base``) or a local folder: a ``VideoMAEModel``, a
``VideoMAEForPreTraining`` or a fine-tuned ``VideoMAEForVideoClassification`` checkpoint (its ``videomae``
base and ``fc_norm`` are used; the classifier is ignored). Weights are loaded on first use, so building the
backbone (for its fingerprint, ``n_frames``, ``size``, ``dim``) reads only the config.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dance.encoders.batches import in_fixed_batches
from dance.encoders.hf import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    frames_to_pixels,
    load_hf,
    load_hf_config,
    normalisation,
    square_size,
    torch_device,
    weights_identity,
)
from dance.encoders.registry import register_backbone

DEFAULT_MODEL = "MCG-NJU/videomae-base"
_CLASSIFIER = "VideoMAEForVideoClassification"


class VideoMAEBackbone:
    """Frozen VideoMAE features: mean of the last hidden tokens, layer-normalised (see the module docstring)."""

    name = "videomae"
    #: videos per forward pass, whatever the caller's batch: a video's features depend on it alone
    #: (:mod:`dance.encoders.batches`)
    forward_batch = 8

    def __init__(self, model: str = "", device: str = "cpu"):
        self.model = model or DEFAULT_MODEL
        self.device = torch_device(device)
        self.config = load_hf_config(self.model, ("videomae",), what="backbone 'videomae'")
        self.n_frames = int(self.config.num_frames)
        self.size = square_size(self.config.image_size, "backbone 'videomae'")
        self.dim = int(self.config.hidden_size)
        self.mean, self.std = normalisation(self.model, IMAGENET_MEAN, IMAGENET_STD)
        self.classifier = (_CLASSIFIER in (getattr(self.config, "architectures", None) or [])
                           and bool(getattr(self.config, "use_mean_pooling", True)))  # it has an fc_norm
        self._encoder: torch.nn.Module | None = None
        self._norm: torch.nn.Module | None = None
        self._identity: dict[str, Any] | None = None

    def fingerprint(self) -> dict[str, Any]:
        if self._identity is None:
            self._identity = weights_identity(self.model)
        return {"name": self.name, "version": 1, "weights": self._identity,
                "n_frames": self.n_frames, "size": self.size, "mean": list(self.mean), "std": list(self.std),
                "pooling": "mean tokens + " + ("fc_norm" if self.classifier else "layer norm (no affine)")}

    def load(self) -> None:
        """Load the weights (once); a ModelError says where to put them when they cannot be found."""
        if self._encoder is not None:
            return
        import transformers

        what = "backbone 'videomae'"
        if self.classifier:
            full = load_hf(transformers.VideoMAEForVideoClassification, self.model, self.device, what=what)
            self._encoder, self._norm = full.videomae, full.fc_norm
        else:
            self._encoder = load_hf(transformers.VideoMAEModel, self.model, self.device, what=what)

    @torch.inference_mode()
    def encode(self, videos: list[np.ndarray]) -> np.ndarray:
        """(B, dim) float32 features of B uint8 RGB videos (T, H, W, 3)."""
        self.load()
        x = frames_to_pixels(videos, self.n_frames, self.size, self.mean, self.std, self.device)
        return in_fixed_batches(self._forward, x, self.forward_batch).float().cpu().numpy()

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        assert self._encoder is not None
        pooled = self._encoder(pixel_values=x).last_hidden_state.mean(dim=1)  # B, N, dim -> B, dim
        if self._norm is not None:
            return self._norm(pooled)
        return torch.nn.functional.layer_norm(pooled, (pooled.shape[-1],), eps=1e-6)


@register_backbone("videomae", f"frozen VideoMAE (transformers; features.model: hub name or folder, default "
                               f"{DEFAULT_MODEL}); mean-pooled tokens, layer-normalised", pretrained=True)
def _make(n_frames: int = 16, size: int = 224, seed: int = 0, device: str = "cpu", model: str = "") -> VideoMAEBackbone:
    """``n_frames``, ``size`` and ``seed`` are ignored: the model fixes its input (see ``.n_frames``, ``.size``)."""
    return VideoMAEBackbone(model=model, device=device)
