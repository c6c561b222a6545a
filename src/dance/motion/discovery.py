"""Motion dynamics concepts: FINCH clusters of training pose sequences and video labels (paper Eq. 1–2).

Clustering uses only the training split's clips (the reference code also clustered validation clips, which
leaks). Clips of other splits are assigned to the nearest cluster centroid (cosine), so validation and test
videos get labels in the same concept space. Each concept keeps its medoid sequence (the member with the highest
mean cosine similarity to the other members) for display.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from dance.errors import StageError


@dataclass
class MotionConcepts:
    """The discovered concepts: centroids (M, F) of flattened normalised clips and medoids."""

    centroids: np.ndarray
    medoid_clip: np.ndarray  # (M,) index into the training clips given to discover()
    sizes: np.ndarray  # (M,) training clips per concept
    n_partitions: int
    partition: int

    @property
    def n_concepts(self) -> int:
        return len(self.centroids)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def run_finch(flat: np.ndarray, distance: str = "cosine", seed: int = 0) -> np.ndarray:
    """All FINCH partitions of the rows of ``flat``: (N, P) labels, finest first (finch-clust package)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # finch warns at import when the optional pynndescent is missing
        from finch import FINCH

        c, _, _ = FINCH(flat, distance=distance, verbose=False, random_state=seed)
    return np.asarray(c).reshape(len(flat), -1)


def discover(flat: np.ndarray, partition: int = 1, distance: str = "cosine", seed: int = 0) -> tuple[
    MotionConcepts, np.ndarray
]:
    """Cluster training clips (N, F); returns the concepts and each clip's concept index (N,).

    ``partition`` picks the FINCH partition (0 = finest); when FINCH finds fewer, the coarsest one is used.
    """
    if len(flat) < 2:
        raise StageError(f"motion concepts need at least 2 valid training clips, got {len(flat)}")
    parts = run_finch(flat.astype(np.float32), distance=distance, seed=seed)
    p = min(partition, parts.shape[1] - 1)
    labels = parts[:, p]
    # relabel by decreasing size so concept 0 is the most frequent; ties by first appearance
    uniq, counts = np.unique(labels, return_counts=True)
    order = uniq[np.lexsort((uniq, -counts))]
    remap = {int(old): new for new, old in enumerate(order)}
    assign = np.array([remap[int(v)] for v in labels], dtype=np.int64)
    m = len(order)
    unit = _unit(flat.astype(np.float64))
    centroids = np.zeros((m, flat.shape[1]), dtype=np.float32)
    medoids = np.zeros(m, dtype=np.int64)
    for k in range(m):
        members = np.flatnonzero(assign == k)
        centroids[k] = flat[members].mean(axis=0)
        sims = unit[members] @ unit[members].T
        medoids[k] = members[int(np.argmax(sims.mean(axis=1)))]
    sizes = np.bincount(assign, minlength=m)
    return MotionConcepts(centroids, medoids, sizes, parts.shape[1], p), assign


def assign_nearest(flat: np.ndarray, concepts: MotionConcepts) -> np.ndarray:
    """Concept index of each clip by the highest cosine similarity to a centroid."""
    if len(flat) == 0:
        return np.zeros(0, dtype=np.int64)
    sims = _unit(flat.astype(np.float64)) @ _unit(concepts.centroids.astype(np.float64)).T
    return sims.argmax(axis=1).astype(np.int64)


def assignment_tensor(clip_video: np.ndarray, clip_slot: np.ndarray, clip_concept: np.ndarray, n_videos: int,
                      n_slots: int, n_concepts: int) -> np.ndarray:
    """Eq. 1: A[i, s, k] = 1 when clip s of video i belongs to concept k. Shape (N, S, M), uint8."""
    a = np.zeros((n_videos, n_slots, n_concepts), dtype=np.uint8)
    a[clip_video, clip_slot, clip_concept] = 1
    return a


def video_labels(assignment: np.ndarray) -> np.ndarray:
    """Eq. 2: c[i, k] = 1 when any key clip of video i belongs to concept k. Shape (N, M), float32."""
    return (assignment.sum(axis=1) > 0).astype(np.float32)
