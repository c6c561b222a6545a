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
class PartitionChoice:
    """Why a FINCH partition was chosen: every candidate's concept count and cross-validated accuracy."""

    partition: int
    candidates: list[dict]  # {"partition", "concepts", "cv_accuracy"}
    rule: str


@dataclass
class MotionConcepts:
    """The discovered concepts: centroids (M, F) of flattened normalised clips and medoids."""

    centroids: np.ndarray
    medoid_clip: np.ndarray  # (M,) index into the training clips given to discover()
    sizes: np.ndarray  # (M,) training clips per concept
    n_partitions: int
    partition: int
    choice: PartitionChoice | None = None  # how partition="auto" chose

    @property
    def n_concepts(self) -> int:
        return len(self.centroids)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Each row divided by its Euclidean norm (zero rows stay zero)."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def run_finch(flat: np.ndarray, distance: str = "cosine", seed: int = 0) -> np.ndarray:
    """All FINCH partitions of the rows of ``flat``: (N, P) labels, finest first (finch-clust package)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # finch warns at import when the optional pynndescent is missing
        from finch import FINCH

        c, _, _ = FINCH(flat, distance=distance, verbose=False, random_state=seed)
    return np.asarray(c).reshape(len(flat), -1)


#: Candidates further than this below the best cross-validated accuracy are not chosen.
PARTITION_TOLERANCE = 0.01


def choose_partition(parts: np.ndarray, flat: np.ndarray, clip_video: np.ndarray, y: np.ndarray, seed: int = 0,
                     max_candidates: int = 4) -> PartitionChoice:
    """The coarsest FINCH partition whose concepts tell the training videos' classes apart about as well as the
    best one, judged on the training split only.

    For each candidate partition (finest first, at most ``max_candidates``, each with at least two concepts) a
    logistic regression from a video's Eq. 2 labels (which concepts its key clips fall in) to its class is scored
    by stratified k-fold cross-validation over the training videos (k = 5, or fewer when a class has fewer
    videos). The held-out videos are labelled the way validation and test videos are: each of their clips goes
    to the nearest centroid of the concepts, with centroids computed from the other folds' clips only — so a
    concept made of one video's own clips (frequent in fine partitions, where consecutive key clips of a video
    overlap) tells nothing about the held-out video, as it would tell nothing about a test video. The chosen
    partition is the coarsest one within :data:`PARTITION_TOLERANCE` of the best score: coarser concepts are
    fewer and easier to read, finer ones are kept only when they carry more about the action. No backbone
    feature and no held-out split is involved.

    Args:
        parts: (N clips, P) FINCH labels of the training clips, finest partition first.
        flat: (N, F) the clips' flattened normalised poses (what FINCH clustered).
        clip_video: (N,) the video (any integer id) each clip belongs to.
        y: (N,) the class of each clip's video.
    """
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    videos, first = np.unique(clip_video, return_index=True)
    row = np.searchsorted(videos, clip_video)
    yv = np.asarray(y)[first]
    folds = int(min(5, np.bincount(np.unique(yv, return_inverse=True)[1]).min())) if len(yv) else 0
    unit = unit_rows(np.asarray(flat, np.float32))
    splits = (list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(videos, yv))
              if folds >= 2 and len(np.unique(yv)) > 1 else [])
    candidates = []
    for p in range(min(parts.shape[1], max_candidates)):
        assign = parts[:, p].astype(np.int64)
        m = int(assign.max()) + 1
        if m < 2:
            break
        scores = []
        for train_v, test_v in splits:
            held = np.isin(row, test_v)
            counts = np.bincount(assign[~held], minlength=m)
            sums = np.zeros((m, unit.shape[1]), np.float32)
            np.add.at(sums, assign[~held], unit[~held])
            alive = np.flatnonzero(counts > 0)
            nearest = alive[_nearest(unit[held], unit_rows(sums[alive]))]
            rows = np.concatenate([row[~held], row[held]])
            cols = np.concatenate([assign[~held], nearest])
            labels = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(videos), m))
            labels.sum_duplicates()
            labels.data[:] = 1.0  # a concept hit by several clips of a video is still one label (Eq. 2)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                clf = LogisticRegression(C=1.0, max_iter=2000).fit(labels[train_v], yv[train_v])
            scores.append(float((clf.predict(labels[test_v]) == yv[test_v]).mean()))
        candidates.append({"partition": p, "concepts": m,  # None: too few videos per class to cross-validate
                           "cv_accuracy": float(np.mean(scores)) if scores else None})
    if not candidates:
        return PartitionChoice(0, [], "FINCH found a single cluster")
    if all(c["cv_accuracy"] is None for c in candidates):
        p = min(1, len(candidates) - 1)
        return PartitionChoice(p, candidates, "too few training videos per class to cross-validate: the "
                               "reference partition (the second, as the authors used)")
    best = max(c["cv_accuracy"] for c in candidates)
    ok = [c["partition"] for c in candidates if c["cv_accuracy"] >= best - PARTITION_TOLERANCE]
    return PartitionChoice(max(ok), candidates, f"coarsest partition within {PARTITION_TOLERANCE:.0%} of the best "
                           f"{folds}-fold cross-validated accuracy of concept labels -> class on the training "
                           "videos (held-out videos labelled by nearest centroid)")


def discover(flat: np.ndarray, partition: int | str = 1, distance: str = "cosine", seed: int = 0,
             clip_video: np.ndarray | None = None, y: np.ndarray | None = None
             ) -> tuple[MotionConcepts, np.ndarray]:
    """Cluster training clips (N, F); returns the concepts and each clip's concept index (N,).

    ``partition`` picks the FINCH partition (0 = finest; when FINCH finds fewer, the coarsest one is used), or
    ``"auto"``: :func:`choose_partition` on the clips' videos ``clip_video`` and classes ``y`` (then
    ``MotionConcepts.choice`` says why).
    """
    if len(flat) < 2:
        raise StageError(f"motion concepts need at least 2 valid training clips, got {len(flat)}")
    parts = run_finch(flat.astype(np.float32), distance=distance, seed=seed)
    choice = None
    if partition == "auto":
        if clip_video is None or y is None:
            raise StageError("partition='auto' needs each clip's video and class")
        choice = choose_partition(parts, flat, clip_video, y, seed=seed)
        p = choice.partition
    else:
        p = min(int(partition), parts.shape[1] - 1)
    labels = parts[:, p]
    # relabel by decreasing size so concept 0 is the most frequent; ties by first appearance
    uniq, counts = np.unique(labels, return_counts=True)
    order = uniq[np.lexsort((uniq, -counts))]
    remap = {int(old): new for new, old in enumerate(order)}
    assign = np.array([remap[int(v)] for v in labels], dtype=np.int64)
    m = len(order)
    unit = unit_rows(flat.astype(np.float64))
    centroids = np.zeros((m, flat.shape[1]), dtype=np.float32)
    medoids = np.zeros(m, dtype=np.int64)
    for k in range(m):
        members = np.flatnonzero(assign == k)
        centroids[k] = flat[members].mean(axis=0)
        sims = unit[members] @ unit[members].T
        medoids[k] = members[int(np.argmax(sims.mean(axis=1)))]
    sizes = np.bincount(assign, minlength=m)
    return MotionConcepts(centroids, medoids, sizes, parts.shape[1], p, choice), assign


def _nearest(rows: np.ndarray, centroids: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Index of the most similar centroid for each row (both unit length), in chunks of rows so that memory stays
    bounded by ``chunk`` × centroids whatever the number of clips."""
    out = np.zeros(len(rows), dtype=np.int64)
    for i in range(0, len(rows), chunk):
        out[i:i + chunk] = (rows[i:i + chunk] @ centroids.T).argmax(axis=1)
    return out


def nearest_centroid(flat: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the centroid with the highest cosine similarity to each row of ``flat`` (N,), in float64: how
    clips outside the training split, and the clips of a video explained later, get their motion concept."""
    if len(flat) == 0:
        return np.zeros(0, dtype=np.int64)
    return _nearest(unit_rows(np.asarray(flat, np.float64)), unit_rows(np.asarray(centroids, np.float64)))


def assign_nearest(flat: np.ndarray, concepts: MotionConcepts) -> np.ndarray:
    """Concept index of each clip by the highest cosine similarity to a centroid (:func:`nearest_centroid`)."""
    return nearest_centroid(flat, concepts.centroids)


def assignment_tensor(clip_video: np.ndarray, clip_slot: np.ndarray, clip_concept: np.ndarray, n_videos: int,
                      n_slots: int, n_concepts: int) -> np.ndarray:
    """Eq. 1: A[i, s, k] = 1 when clip s of video i belongs to concept k. Shape (N, S, M), uint8."""
    a = np.zeros((n_videos, n_slots, n_concepts), dtype=np.uint8)
    a[clip_video, clip_slot, clip_concept] = 1
    return a


def video_labels(assignment: np.ndarray) -> np.ndarray:
    """Eq. 2: c[i, k] = 1 when any key clip of video i belongs to concept k. Shape (N, M), float32."""
    return (assignment.sum(axis=1) > 0).astype(np.float32)
