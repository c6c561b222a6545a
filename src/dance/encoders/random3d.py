"""``random-3dconv``: a seeded, frozen, randomly initialised 3D-convolution feature extractor.

No pretrained video weights can be loaded on a machine without hub access, so the demo uses random features:
two small 3D-conv towers with fixed random weights (He initialisation from a seed), one on the RGB frames
(appearance) and one on frame differences (motion). Each tower's last feature map is pooled per temporal segment
by a global mean, a global max and a 2×2 spatial grid mean. It is *not* a learned representation: it only works
on data as simple as the synthetic demo, and says so in its name. Real backbones register beside it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

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
    """Frozen random 3D-conv features; ``dim = 2 towers × width × segments × 6`` (mean, max, 2×2 grid)."""

    name = "random-3dconv"

    def __init__(self, n_frames: int = 32, size: int = 112, seed: int = 0, device: str = "cpu",
                 width: int = 64, segments: int = 4):
        self.n_frames, self.size, self.seed, self.width, self.segments = n_frames, size, seed, width, segments
        self.device = torch.device(device)
        self.appearance = _tower(seed, width).to(self.device)
        self.motion = _tower(seed + 1, width).to(self.device)
        self.dim = 2 * width * segments * 6

    def fingerprint(self) -> dict[str, Any]:
        return {"name": self.name, "n_frames": self.n_frames, "size": self.size, "seed": self.seed,
                "width": self.width, "segments": self.segments, "torch": torch.__version__.split("+")[0]}

    def _pool(self, fmap: torch.Tensor) -> torch.Tensor:
        b, c, t, _, _ = fmap.shape
        segs = torch.tensor_split(fmap, min(self.segments, t), dim=2)
        feats = []
        for seg in segs:
            feats.append(seg.mean(dim=(2, 3, 4)))
            feats.append(seg.amax(dim=(2, 3, 4)))
            grid = nn.functional.adaptive_avg_pool3d(seg, (1, 2, 2)).reshape(b, c * 4)
            feats.append(grid)
        out = torch.cat(feats, dim=1)
        if len(segs) < self.segments:  # very short videos: pad to a fixed dimension
            out = nn.functional.pad(out, (0, self.dim // 2 - out.shape[1]))
        return out

    @torch.no_grad()
    def encode(self, videos: list[np.ndarray]) -> np.ndarray:
        x = torch.from_numpy(np.stack(videos)).to(self.device).float().div_(127.5).sub_(1.0)  # B,T,H,W,3
        x = x.permute(0, 4, 1, 2, 3).contiguous()  # B,3,T,H,W
        diff = torch.cat([torch.zeros_like(x[:, :, :1]), x[:, :, 1:] - x[:, :, :-1]], dim=2) * 4.0
        a = self._pool(self.appearance(x))
        m = self._pool(self.motion(diff))
        return torch.cat([a, m], dim=1).cpu().numpy().astype(np.float32)


@register_backbone("random-3dconv", "seeded frozen random 3D-conv features (no pretraining; demo only)",
                   pretrained=False)
def _make(n_frames: int = 32, size: int = 112, seed: int = 0, device: str = "cpu") -> Random3DConv:
    return Random3DConv(n_frames=n_frames, size=size, seed=seed, device=device)
