"""``random-3dconv``: a seeded, frozen, randomly initialised 3D-convolution feature extractor.

No pretrained video weights can be loaded on a machine without hub access, so the demo uses random features:
two small 3D-conv towers with fixed random weights (He initialisation from a seed), one on the RGB frames
(appearance) and one on frame differences (motion), pooled at three depths (see :class:`Random3DConv`).
It is *not* a learned representation: it only works
on data as simple as the synthetic demo, and says so in its name. Real backbones register beside it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from dance.encoders.batches import in_fixed_batches
from dance.encoders.registry import register_backbone


def _tower(seed: int, width: int) -> nn.Sequential:
    gen = torch.Generator().manual_seed(seed)
    layers = [
        nn.Conv3d(3, width // 2, kernel_size=(1, 5, 5), stride=(1, 2, 2), padding=(0, 2, 2), bias=False),
        nn.ReLU(),
        nn.Conv3d(width // 2, width, kernel_size=3, stride=(1, 2, 2), padding=1, bias=False),
        nn.ReLU(),
        nn.Conv3d(width, width, kernel_size=3, stride=(1, 2, 2), padding=1, bias=False),
        nn.ReLU(),
    ]
    for layer in layers:
        if isinstance(layer, nn.Conv3d):
            fan_in = layer.weight[0].numel()
            with torch.no_grad():
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen) * np.sqrt(2.0 / fan_in))
    tower = nn.Sequential(*layers).eval()
    for p in tower.parameters():
        p.requires_grad_(False)
    return tower


class Random3DConv:
    """Frozen random 3D-conv features pooled at three depths of two towers (appearance, motion).

    Early layers (fine, colour- and edge-like) are pooled per temporal half by a 3×3 spatial max and a 2×2
    spatial mean, so small objects and their position survive; the last layer is pooled per temporal segment
    by a global mean, a global max and a 2×2 spatial mean.
    """

    name = "random-3dconv"
    #: videos per forward pass, whatever the caller's batch: a video's features depend on it alone
    forward_batch = 8

    def __init__(self, n_frames: int = 16, size: int = 112, seed: int = 0, device: str = "cpu",
                 width: int = 64, segments: int = 4):
        self.n_frames, self.size, self.seed, self.width, self.segments = n_frames, size, seed, width, segments
        self.device = torch.device(device)
        self.appearance = _tower(seed, width).to(self.device)
        self.motion = _tower(seed + 1, width).to(self.device)
        early = (width // 2 + width) * 2 * (9 + 4)
        self.dim = 2 * (early + width * segments * 6)

    def fingerprint(self) -> dict[str, Any]:
        return {"name": self.name, "version": 2, "n_frames": self.n_frames, "size": self.size, "seed": self.seed,
                "width": self.width, "segments": self.segments, "torch": torch.__version__.split("+")[0]}

    @staticmethod
    def _segments(fmap: torch.Tensor, n: int) -> list[torch.Tensor]:
        """``n`` temporal segments (a short map's frames are repeated so there are always ``n``)."""
        t = fmap.shape[2]
        if t < n:
            fmap = fmap[:, :, torch.arange(n) * t // n]
        return list(torch.tensor_split(fmap, n, dim=2))

    def _pool_early(self, fmap: torch.Tensor) -> torch.Tensor:
        b = fmap.shape[0]
        feats = []
        for seg in self._segments(fmap, 2):
            feats.append(nn.functional.adaptive_max_pool3d(seg, (1, 3, 3)).reshape(b, -1))
            feats.append(nn.functional.adaptive_avg_pool3d(seg, (1, 2, 2)).reshape(b, -1))
        return torch.cat(feats, dim=1)

    def _pool_last(self, fmap: torch.Tensor) -> torch.Tensor:
        b = fmap.shape[0]
        feats = []
        for seg in self._segments(fmap, self.segments):
            feats.append(seg.mean(dim=(2, 3, 4)))
            feats.append(seg.amax(dim=(2, 3, 4)))
            feats.append(nn.functional.adaptive_avg_pool3d(seg, (1, 2, 2)).reshape(b, -1))
        return torch.cat(feats, dim=1)

    def _tower_features(self, tower: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, layer in enumerate(tower):
            x = layer(x)
            if i == 1 or i == 3:
                out.append(self._pool_early(x))
        out.append(self._pool_last(x))
        return out

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features of a batch of videos (B, T, H, W, 3) uint8."""
        x = x.to(self.device).float().div_(127.5).sub_(1.0).permute(0, 4, 1, 2, 3).contiguous()  # B,3,T,H,W
        diff = torch.cat([torch.zeros_like(x[:, :, :1]), x[:, :, 1:] - x[:, :, :-1]], dim=2) * 4.0
        return torch.cat(self._tower_features(self.appearance, x) + self._tower_features(self.motion, diff), dim=1)

    @torch.no_grad()
    def encode(self, videos: list[np.ndarray]) -> np.ndarray:
        """(B, dim) float32; the towers see batches of :attr:`forward_batch` videos (:mod:`dance.encoders.batches`)."""
        x = in_fixed_batches(self._forward, torch.from_numpy(np.stack(videos)), self.forward_batch)
        return x.cpu().numpy().astype(np.float32)


@register_backbone("random-3dconv", "seeded frozen random 3D-conv features (no pretraining; demo only)",
                   pretrained=False)
def _make(n_frames: int = 16, size: int = 112, seed: int = 0, device: str = "cpu", model: str = "") -> Random3DConv:
    """``model`` is ignored: the weights are random, made from ``seed``."""
    return Random3DConv(n_frames=n_frames, size=size, seed=seed, device=device)
