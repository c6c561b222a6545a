"""Token backbones of the scene-bias models: a video → a grid of tokens that the slots attend over.

- ``cnn`` (:class:`CNNTokens`): per-frame 2D convolutions on RGB and the frame difference (6 channels, stride 4),
  then 3D convolutions (temporal stride 2): ``T/2 × S/4 × S/4`` tokens of ``dim`` channels with learned positions
  and a final LayerNorm (the pilot of devias_spec.md §4c, trained from scratch in minutes on a CPU).
- ``videomae`` (:class:`VideoMAETokens`): a VideoMAE encoder (``transformers.VideoMAEModel``, DEVIAS's own
  backbone), fine-tuned with the rest as in the paper: its last hidden states (one token per
  ``tubelet × patch × patch`` tube), projected to ``dim`` and layer-normalised. The clips are resampled to the
  model's ``num_frames`` and resized to its ``image_size`` inside the module, and normalised with the checkpoint's
  preprocessor mean / std (ImageNet's when it has none). ``backbone_model`` is a hub name (default
  ``MCG-NJU/videomae-base``) or a local folder; the weights are read when a model is built for training. A saved
  model stores the transformers config and the normalisation (:meth:`VideoMAETokens.description`), so loading it
  needs neither the hub nor the original folder: the fine-tuned weights are in its safetensors file.

Every backbone takes clips ``(B, T, 3, H, W)`` in [0, 1] and has ``grid`` (time, height, width): its token grid,
from which the actor-mask targets are pooled.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dance.errors import ModelError

__all__ = ["TOKEN_BACKBONES", "CNNTokens", "VideoMAETokens", "make_token_backbone"]

#: token backbones by name, with a one-line description (``ModelSettings.backbone``)
TOKEN_BACKBONES: dict[str, str] = {
    "cnn": "a small video CNN trained from scratch (CPU work)",
    "videomae": "VideoMAE (transformers; backbone_model: hub name or folder, default MCG-NJU/videomae-base), "
                "fine-tuned",
}


class CNNTokens(nn.Module):
    """Video (B,T,3,H,W) in [0, 1] → tokens (B, T/2·H/4·W/4, dim)."""

    def __init__(self, frames: int, size: int, dim: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(6, 16, 3, 2, 1), nn.GELU(), nn.Conv2d(16, dim, 3, 2, 1), nn.GELU())
        self.temporal = nn.Sequential(nn.Conv3d(dim, dim, 3, (2, 1, 1), 1), nn.GELU(),
                                      nn.Conv3d(dim, dim, 3, 1, 1), nn.GELU())
        self.grid = (frames // 2, size // 4, size // 4)
        self.pos = nn.Parameter(torch.randn(1, int(np.prod(self.grid)), dim) * 0.02)
        self.norm = nn.LayerNorm(dim)

    def description(self) -> dict[str, Any] | None:
        return None  # the model's settings describe it fully

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _, h, w = x.shape
        diff = torch.cat([torch.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]], dim=1)
        y = self.stem(torch.cat([x - 0.5, diff * 2.0], dim=2).reshape(b * t, 6, h, w))
        y = y.reshape(b, t, *y.shape[1:]).transpose(1, 2)  # (B, D, T, h, w)
        y = self.temporal(y).flatten(2).transpose(1, 2)  # (B, N, D)
        return self.norm(y + self.pos)


class VideoMAETokens(nn.Module):
    """Video (B,T,3,H,W) in [0, 1] → VideoMAE's last hidden states projected to ``dim`` (module docstring).

    ``description``: what :meth:`description` returned for a saved model (the encoder is built from its config,
    without weights: the caller loads them); None: the pretrained weights of ``model`` are loaded.
    """

    def __init__(self, model: str, dim: int, description: dict[str, Any] | None = None) -> None:
        super().__init__()
        import transformers

        from dance.encoders.hf import IMAGENET_MEAN, IMAGENET_STD, load_hf, normalisation, square_size
        from dance.encoders.videomae import DEFAULT_MODEL

        what = "scene-bias backbone 'videomae'"
        if description is None:
            name = model or DEFAULT_MODEL
            self.encoder = load_hf(transformers.VideoMAEModel, name, what=what)
            for p in self.encoder.parameters():  # load_hf freezes; DEVIAS fine-tunes its backbone
                p.requires_grad_(True)
            mean, std = normalisation(name, IMAGENET_MEAN, IMAGENET_STD)
        else:
            try:
                config = transformers.VideoMAEConfig.from_dict(dict(description["config"]))
                mean, std = tuple(description["mean"]), tuple(description["std"])
            except (KeyError, TypeError, ValueError) as e:
                raise ModelError(f"{what}: the saved description is incomplete ({e})") from None
            self.encoder = transformers.VideoMAEModel(config)
        c = self.encoder.config
        self.n_frames, self.size = int(c.num_frames), square_size(c.image_size, what)
        tubelet, patch = int(c.tubelet_size), int(c.patch_size)
        if self.n_frames % tubelet or self.size % patch:
            raise ModelError(f"{what}: {self.n_frames} frames of {self.size} px do not split into "
                             f"{tubelet} × {patch} × {patch} tubes")
        self.grid = (self.n_frames // tubelet, self.size // patch, self.size // patch)
        self.mean, self.std = [float(v) for v in mean], [float(v) for v in std]
        self.register_buffer("_mean", torch.tensor(self.mean).view(1, 1, 3, 1, 1), persistent=False)
        self.register_buffer("_std", torch.tensor(self.std).view(1, 1, 3, 1, 1), persistent=False)
        self.proj = nn.Linear(int(c.hidden_size), dim)
        self.norm = nn.LayerNorm(dim)

    def description(self) -> dict[str, Any]:
        """The transformers config and the normalisation: enough to rebuild the module for its saved weights."""
        return {"config": self.encoder.config.to_dict(), "mean": self.mean, "std": self.std}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        if t != self.n_frames:  # frames spread uniformly over the clip, as the features stage samples them
            x = x[:, torch.from_numpy(np.round(np.linspace(0, t - 1, self.n_frames)).astype(np.int64)).to(x.device)]
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x.flatten(0, 1), size=(self.size, self.size), mode="bilinear", align_corners=False)
            x = x.view(b, self.n_frames, 3, self.size, self.size)
        h = self.encoder(pixel_values=(x - self._mean) / self._std).last_hidden_state  # (B, N, hidden)
        return self.norm(self.proj(h))


def make_token_backbone(name: str, frames: int, size: int, dim: int, model: str = "",
                        description: dict[str, Any] | None = None) -> nn.Module:
    """The token backbone ``name`` (:data:`TOKEN_BACKBONES`) for clips of ``frames`` × ``size`` px."""
    if name == "cnn":
        return CNNTokens(frames, size, dim)
    if name == "videomae":
        return VideoMAETokens(model, dim, description)
    raise ModelError(f"unknown token backbone {name!r}; known: {', '.join(TOKEN_BACKBONES)}")
