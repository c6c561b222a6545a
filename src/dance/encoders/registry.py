"""Backbones by name (:data:`BACKBONES`): a frozen encoder maps each video to one feature vector.

A backbone is one decorated factory in one file: ``@register_backbone(name, description, pretrained, input=...)``.
The built-in ones (:data:`BUILTIN_MODULES`) are imported on the first lookup, so that naming a backbone costs
nothing until one is asked for (``dance --help`` imports no torch). Three kinds, by their ``input``:

* ``"video"`` (:class:`VideoBackbone`): decoded frames. ``factory(n_frames=, size=, seed=, device=, model=)``
  (``model``: hub name, local folder or file; "" means the backbone's default; backbones without weights ignore
  it). A backbone whose model fixes its input (VideoMAE) sets its own ``n_frames`` / ``size``: callers read
  frames at the backbone's values, not at the settings'.
* ``"precomputed"``: the same factory arguments; the backbone reads features from a file by video id
  (``lookup(records) -> (features, ok, skipped)``) and decodes nothing.
* ``"poses"`` (:class:`PoseBackbone`): whole pose sequences, trained on the run's training split.
  ``factory(joints=, n_classes=, length=, epochs=, seed=, device=, edges=, bones=, mirror=)``, and
  ``load(folder, n_classes, device)`` rebuilding the trained backbone that the features stage saved in
  ``folder``.

Callers name a backbone by ``features.backbone``: :func:`make_video_backbone` builds the configured video
backbone, :func:`load_run_backbone` the one a finished run encoded with (whatever its kind).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from dance.config import FeatureSettings
from dance.registry import Registry

#: the modules that register the built-in backbones
BUILTIN_MODULES = ("dance.encoders.clip_frames", "dance.encoders.pose_encoder", "dance.encoders.precomputed",
                   "dance.encoders.random3d", "dance.encoders.videomae")

INPUTS = ("video", "poses", "precomputed")


class VideoBackbone(Protocol):
    name: str
    dim: int
    n_frames: int
    size: int

    def fingerprint(self) -> dict[str, Any]:
        """Everything that determines the features (name, weights identity, settings)."""
        ...

    def encode(self, videos: list[np.ndarray]) -> np.ndarray:
        """(B, D) float32 features of B videos, each (n_frames, size, size, 3) uint8 RGB. A video's row is the
        same, bit for bit, whatever videos come with it (:mod:`dance.encoders.batches`)."""
        ...


class PoseBackbone(Protocol):
    name: str
    dim: int
    mirror: np.ndarray | None  # joint permutation of a horizontal flip (None: no left/right pairs)
    mirror_pairs: tuple[tuple[int, int], ...]
    history: list[dict[str, float]]  # per training epoch: loss, validation accuracy

    def fingerprint(self) -> dict[str, Any]: ...

    def fit(self, seqs: list, y: np.ndarray, val_seqs: list, y_val: np.ndarray,
            progress: Callable[[int], None] | None = None) -> PoseBackbone: ...

    def encode_poses(self, seqs: list) -> np.ndarray:
        """(N, dim) float32 features of N pose sequences; a sequence's row does not depend on the others."""
        ...

    def predict_poses(self, seqs: list) -> np.ndarray:
        """Class indices from the backbone's own head (the baseline without concepts)."""
        ...

    def state_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class BackboneEntry:
    name: str
    description: str
    pretrained: bool
    factory: Callable[..., Any]
    input: str = "video"  # one of INPUTS
    load: Callable[..., Any] | None = None  # pose backbones: (folder, n_classes, device) -> the trained backbone


BACKBONES: Registry[BackboneEntry] = Registry("backbone", builtins=BUILTIN_MODULES)


def register_backbone(name: str, description: str, pretrained: bool, input: str = "video",
                      load: Callable[..., Any] | None = None) -> Callable:
    """Decorator registering a backbone factory (see the module docstring for each ``input``'s arguments)."""
    if input not in INPUTS:
        raise ValueError(f"backbone '{name}': input must be one of {', '.join(INPUTS)}, not '{input}'")
    if (input == "poses") != (load is not None):
        raise ValueError(f"backbone '{name}': a pose backbone, and only one, needs load=(folder, n_classes, device)")

    def deco(factory: Callable[..., Any]) -> Callable[..., Any]:
        BACKBONES.add(name, BackboneEntry(name, description, pretrained, factory, input, load), description)
        return factory

    return deco


def backbone_entry(name: str) -> BackboneEntry:
    return BACKBONES.get(name)


def make_backbone(name: str, **kwargs: Any) -> Any:
    return BACKBONES.get(name).factory(**kwargs)


def make_video_backbone(s: FeatureSettings) -> Any:
    """The configured video (or precomputed) backbone: ``features.backbone`` with its ``model`` setting."""
    return make_backbone(s.backbone, n_frames=s.n_frames, size=s.size, seed=s.seed, device=s.device, model=s.model)


def load_run_backbone(s: FeatureSettings, folder: Path, n_classes: int) -> Any:
    """The backbone a run's features stage encoded with: a video or precomputed backbone rebuilt from the
    settings (name, weights, frames, size, seed), a pose backbone loaded from ``folder`` (its trained weights)."""
    entry = BACKBONES.get(s.backbone)
    if entry.load is not None:
        return entry.load(Path(folder), n_classes, s.device)
    return make_video_backbone(s)
