"""Forward passes in batches of one fixed size, so that a video's features depend on that video alone.

A convolution (oneDNN on the CPU, cuDNN on a GPU) picks its kernel, and with it the order in which each output
sums its inputs, by the shape of the batch: the same video encoded with 7 others, alone, or in a last partial
batch gets features that differ in the last bits (up to about 1e-5 for ``random-3dconv``). For a given shape the
kernel computes every row alike, whatever the other rows hold and whichever row it is, and on any number of
threads. So each backbone sends its network batches of exactly one size (:func:`in_fixed_batches`; the last one
filled up with copies of its last row, whose outputs are dropped): the features stage, ``dance explain`` on one
video and the sanity check then get the same bits for a video, and a cached vector does not depend on the videos
that happened to be encoded with it.

Each backbone keeps its size as a constant (``Random3DConv.forward_batch`` ...; per-frame models embed the frames of
a fixed number of videos at a time, :func:`frames_in_fixed_batches`). The fingerprints do not name it:
changing one changes features in their last bits only, like a new torch version, and needs a new fingerprint
version if cached features must not be mixed with new ones.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def in_fixed_batches(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, size: int) -> torch.Tensor:
    """``forward`` of the rows of ``x`` (its first axis), run on batches of exactly ``size`` rows: the last batch
    is filled up with copies of its last row, and their outputs are dropped. ``x`` must have a row."""
    if size < 1:
        raise ValueError(f"the batch size must be at least 1, got {size}")
    if len(x) == 0:
        raise ValueError("in_fixed_batches needs at least one row")
    out = []
    for start in range(0, len(x), size):
        batch = x[start:start + size]
        n = len(batch)
        if n < size:
            batch = torch.cat([batch, batch[-1:].expand(size - n, *batch.shape[1:])])
        out.append(forward(batch)[:n])
    return torch.cat(out)


def frames_in_fixed_batches(embed: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                            frame_batch: int) -> torch.Tensor:
    """(B, T, D): ``embed`` of every frame of the videos ``x`` (B, T, ...), run on the frames of ``k`` whole videos
    at a time, ``k`` the largest of 8, 4, 2 whose ``k·T`` frames fit in ``frame_batch`` (else 1). A frame's
    embedding depends on it alone, and a batch of 8 videos (the features stage's default) is never padded."""
    t = x.shape[1]
    k = next((k for k in (8, 4, 2) if k * t <= frame_batch), 1)

    def forward(videos: torch.Tensor) -> torch.Tensor:
        return embed(videos.reshape(k * t, *videos.shape[2:])).reshape(k, t, -1)

    return in_fixed_batches(forward, x, k)
