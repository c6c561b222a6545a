"""Scene targets from a teacher instead of scene labels (DEVIAS, devias_spec.md §1.7: where a dataset has no scene
labels, the scene slot learns a scene model's soft predictions).

:func:`teacher_scene_probs`: a video–text dual encoder (:mod:`dance.encoders.dual_encoders`: ``clip``, ``xclip``)
classifies each clip zero-shot among the scene names — the cosine of the clip's embedding and each prompt's
(``"a photo of a {scene}."`` by default), times ``1 / temperature``, softmax over the scenes. The training loop
then fits the scene head (DEVIAS: the scene slot) with cross-entropy against these probabilities rather than a
one-hot label, and actor-mask mixing moves them with the background as it moves the labels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from dance.encoders.dual_encoders import DualEncoder, l2_normalise
from dance.errors import ConfigError, ModelError

__all__ = ["teacher_scene_probs"]


def teacher_scene_probs(clips: np.ndarray, scenes: Sequence[str], encoder: DualEncoder,
                        prompt: str = "a photo of a {}.", temperature: float = 0.01, batch: int = 16,
                        progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """(N, S) float32 scene probabilities of ``clips`` (uint8 (N, T, H, W, 3)) from ``encoder``, zero-shot over
    ``scenes`` (underscores read as spaces). ``temperature`` 0.01 is CLIP's learned logit scale (100)."""
    if "{}" not in prompt:
        raise ConfigError(f"the teacher prompt '{prompt}' must contain '{{}}' where the scene goes")
    if temperature <= 0:
        raise ConfigError(f"the teacher temperature must be > 0, got {temperature}")
    if not scenes:
        raise ConfigError("a scene teacher needs scene names")
    text = l2_normalise(np.asarray(encoder.encode_texts([prompt.format(s.replace("_", " ")) for s in scenes]),
                                   np.float32))
    out = np.zeros((len(clips), len(scenes)), np.float32)
    for start in range(0, len(clips), batch):
        part = [np.asarray(c) for c in clips[start:start + batch]]
        video = l2_normalise(np.asarray(encoder.encode_videos(part), np.float32))
        if not np.isfinite(video).all():
            raise ModelError("the scene teacher gave NaN/inf video embeddings")
        logits = video @ text.T / temperature
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        out[start:start + len(part)] = p / p.sum(axis=1, keepdims=True)
        if progress is not None:
            progress(len(part), len(clips))  # clips just done, clips in all
    return out
