"""Backbones by name: a frozen video encoder maps decoded frames to one feature vector per video.

Register a backbone with :func:`register_backbone`; callers only ever use :func:`make_backbone` with a name, so
real backbones (VideoMAE, a pose encoder) plug in without touching the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from dance.errors import ConfigError


class Backbone(Protocol):
    name: str
    dim: int
    n_frames: int
    size: int

    def fingerprint(self) -> dict[str, Any]:
        """Everything that determines the features (name, weights identity, settings)."""
        ...

    def encode(self, videos: list[np.ndarray]) -> np.ndarray:
        """(B, D) float32 features of B videos, each (n_frames, size, size, 3) uint8 RGB."""
        ...


@dataclass(frozen=True)
class BackboneEntry:
    name: str
    description: str
    pretrained: bool
    factory: Callable[..., Any]
    # "video": decoded frames; "poses": whole pose sequences (trained on the train split);
    # "precomputed": features read from a file by video id (no decoding; the backbone has ``lookup(records)``)
    input: str = "video"


BACKBONES: dict[str, BackboneEntry] = {}


def register_backbone(name: str, description: str, pretrained: bool, input: str = "video") -> Callable:
    """Decorator registering a backbone factory.

    Video backbones: ``factory(n_frames=, size=, seed=, device=, model=) -> Backbone`` (``model``: hub name, local
    folder or file; "" means the backbone's default; backbones without weights ignore it). A backbone whose model
    fixes its input (VideoMAE) sets its own ``n_frames`` / ``size``: callers read frames at the backbone's values,
    not at the settings'. Precomputed backbones (``input="precomputed"``) take the same arguments and return an
    object with ``dim``, ``fingerprint()`` and ``lookup(records) -> (features, ok, skipped)``. Pose backbones
    (``input="poses"``): ``factory(joints=, n_classes=, length=, epochs=, seed=, device=)`` returning an object
    with ``fit``, ``encode_poses``, ``predict_poses``, ``state_dict`` and ``fingerprint``.
    """

    def deco(factory: Callable[..., Any]) -> Callable[..., Any]:
        BACKBONES[name] = BackboneEntry(name, description, pretrained, factory, input)
        return factory

    return deco


def backbone_entry(name: str) -> BackboneEntry:
    _load_builtin()
    if name not in BACKBONES:
        raise ConfigError(f"unknown backbone '{name}'; known: {', '.join(sorted(BACKBONES))}")
    return BACKBONES[name]


def make_backbone(name: str, **kwargs: Any) -> Any:
    return backbone_entry(name).factory(**kwargs)


def list_backbones() -> list[BackboneEntry]:
    _load_builtin()
    return [BACKBONES[k] for k in sorted(BACKBONES)]


def _load_builtin() -> None:
    from dance.encoders import clip_frames, pose_encoder, precomputed, random3d, videomae  # noqa: F401  (they register themselves)
