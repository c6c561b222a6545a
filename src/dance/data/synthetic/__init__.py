"""Synthetic rendered video dataset with known motion / object / scene causes (used by ``dance demo``)."""

from __future__ import annotations

from dance.data.synthetic.generator import (
    CLASSES,
    causes_description,
    generate,
    random_style,
    render_actor,
    render_video,
    sample_spec,
)

__all__ = [
    "CLASSES", "causes_description", "generate", "random_style", "render_actor", "render_video", "sample_spec",
]
