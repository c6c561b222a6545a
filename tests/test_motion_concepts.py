"""Pose clip filters and normalisation (dance.motion.sequences); motion concepts (dance.motion.discovery)."""

from __future__ import annotations

import numpy as np
import pytest

from dance.errors import StageError
from dance.motion.discovery import (
    MotionConcepts,
    assign_nearest,
    assignment_tensor,
    discover,
    run_finch,
    video_labels,
)
from dance.motion.sequences import (
    DISCONTINUITY,
    LOW_CONFIDENCE,
    NO_PERSON,
    OK,
    FilterSettings,
    adjacent_cosine,
    centred,
    check_clip,
    normalise,
)

J = 17


def smooth_clip(t: int = 16, seed: int = 0) -> np.ndarray:
    """A random body shape in pixel coordinates that walks and turns slowly: (T, J, 2)."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(-40.0, 40.0, (J, 2))
    frames = []
    for i in range(t):
        a = 0.01 * i
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        frames.append(base @ rot.T + np.array([200.0 + 2.0 * i, 150.0 + i]))
    return np.stack(frames)


# ------------------------------------------------------------------ sequences


def test_normalise_per_frame_unit_box() -> None:
    rng = np.random.default_rng(3)
    kp = rng.uniform(0.0, 500.0, (8, J, 2)) * np.array([1.0, 0.3])  # different x and y ranges
    out = normalise(kp)
    assert out.shape == kp.shape and out.dtype == np.float32
    np.testing.assert_allclose(out.min(axis=1), 0.0, atol=1e-6)
    np.testing.assert_allclose(out.max(axis=1), 1.0, atol=1e-6)
    # translation and per-axis scaling of a frame do not change its normalised pose
    moved = kp * np.array([2.5, 0.5]) + np.array([100.0, -30.0])
    np.testing.assert_allclose(normalise(moved), out, atol=1e-5)
    # the joints keep their relative order along each axis
    np.testing.assert_array_equal(np.argsort(out[0, :, 0]), np.argsort(kp[0, :, 0]))


def test_normalise_hand_example() -> None:
    kp = np.array([[[0.0, 0.0], [2.0, 1.0], [4.0, 4.0]]])
    np.testing.assert_allclose(normalise(kp), [[[0.0, 0.0], [0.5, 0.25], [1.0, 1.0]]], atol=1e-6)


def test_centred_and_adjacent_cosine() -> None:
    clip = smooth_clip()
    c = centred(clip)
    np.testing.assert_allclose(c.mean(axis=1), 0.0, atol=1e-9)
    extent = np.ptp(c, axis=1).max(axis=-1)
    np.testing.assert_allclose(extent, 1.0, atol=1e-9)
    cos = adjacent_cosine(clip)
    assert cos.shape == (len(clip) - 1,)
    assert cos.min() > 0.99


def test_check_clip_ok_for_a_smooth_clip() -> None:
    clip = smooth_clip()
    scores = np.full(clip.shape[:2], 0.9)
    assert check_clip(clip, scores, FilterSettings()) == OK


def test_check_clip_no_person() -> None:
    clip = smooth_clip()
    scores = np.full(clip.shape[:2], 0.9)
    scores[5] = 0.05  # one frame without a person (mean 0.05 < 0.1)
    assert check_clip(clip, scores, FilterSettings()) == NO_PERSON
    scores[5] = 0.12  # above the frame threshold: fine again
    assert check_clip(clip, scores, FilterSettings()) == OK
    # a frame just below the threshold through a mix of joints
    scores[5, :] = 0.0
    scores[5, :1] = 1.0  # mean 1/17 ≈ 0.059
    assert check_clip(clip, scores, FilterSettings()) == NO_PERSON


def test_check_clip_low_confidence() -> None:
    clip = smooth_clip()
    scores = np.full(clip.shape[:2], 0.3)  # every frame has a person, but the clip mean is < 0.5
    assert check_clip(clip, scores, FilterSettings()) == LOW_CONFIDENCE
    assert check_clip(clip, scores, FilterSettings(min_clip_conf=0.25)) == OK
    scores[:, :] = 0.05  # both problems: "no person" is reported first
    assert check_clip(clip, scores, FilterSettings()) == NO_PERSON


def test_check_clip_discontinuity_on_a_sudden_shape_change() -> None:
    clip = smooth_clip()
    rng = np.random.default_rng(7)
    jumped = clip.copy()
    jumped[9:] = jumped[9:, rng.permutation(J)]  # joints teleport: the body shape changes abruptly
    scores = np.full(clip.shape[:2], 0.9)
    assert adjacent_cosine(jumped)[8] < 0.92
    assert check_clip(jumped, scores, FilterSettings()) == DISCONTINUITY
    assert check_clip(jumped, scores, FilterSettings(min_adjacent_cosine=-1.0)) == OK
    # a translation or scale jump of the whole body keeps the centred shape: not a discontinuity by design
    moved = clip.copy()
    moved[9:] = moved[9:] * 1.5 + 300.0
    assert check_clip(moved, scores, FilterSettings()) == OK


def test_check_clip_single_frame() -> None:
    clip = smooth_clip(t=1)
    assert check_clip(clip, np.full((1, J), 0.9), FilterSettings()) == OK


# ------------------------------------------------------------------ Eq. 1-2


def test_assignment_tensor_and_video_labels_by_hand() -> None:
    # 3 videos × 2 slots × 4 concepts. Clips: (video, slot, concept)
    clips = [(0, 0, 1), (0, 1, 2), (1, 0, 3), (1, 1, 3), (2, 1, 0)]  # video 2 slot 0 has no valid clip
    v, s, k = (np.array(col) for col in zip(*clips))
    a = assignment_tensor(v, s, k, n_videos=3, n_slots=2, n_concepts=4)
    expected_a = np.array(
        [
            [[0, 1, 0, 0], [0, 0, 1, 0]],
            [[0, 0, 0, 1], [0, 0, 0, 1]],
            [[0, 0, 0, 0], [1, 0, 0, 0]],
        ],
        dtype=np.uint8,
    )
    assert a.dtype == np.uint8
    np.testing.assert_array_equal(a, expected_a)
    c = video_labels(a)
    expected_c = np.array([[0, 1, 1, 0], [0, 0, 0, 1], [1, 0, 0, 0]], dtype=np.float32)
    assert c.dtype == np.float32
    np.testing.assert_array_equal(c, expected_c)


def test_video_labels_video_without_clips_is_all_zero() -> None:
    a = assignment_tensor(np.array([1]), np.array([0]), np.array([2]), n_videos=2, n_slots=3, n_concepts=3)
    np.testing.assert_array_equal(video_labels(a), [[0, 0, 0], [0, 0, 1]])


# ------------------------------------------------------------------ discovery


def grouped_data(seed: int = 0):
    """4 tight groups (sizes 10, 7, 5, 3) in 2 super-groups {10, 3} and {7, 5}; each group holds its centre.

    Every member's nearest neighbour is its group's centre, so FINCH's first partition is exactly the groups
    and its second merges each super-group. Returns (X, group, supergroup_of_group, group_centres).
    """
    rng = np.random.default_rng(seed)
    f, sizes, sup = 24, [10, 7, 5, 3], np.array([0, 1, 1, 0])
    supers = rng.normal(size=(2, f))
    centres = supers[sup] + 0.4 * rng.normal(size=(4, f))
    rows, group = [], []
    for g, n in enumerate(sizes):
        rows.append(centres[g][None])
        rows += [centres[g][None] + 0.04 * rng.normal(size=(1, f)) for _ in range(n - 1)]
        group += [g] * n
    x, group = np.concatenate(rows), np.array(group)
    perm = rng.permutation(len(group))
    return x[perm], group[perm], sup, centres


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_discover_recovers_groups_relabelled_by_size(seed: int) -> None:
    x, group, _, _ = grouped_data(seed)
    concepts, assign = discover(x, partition=0)
    assert isinstance(concepts, MotionConcepts)
    assert concepts.partition == 0 and concepts.n_concepts == 4
    # groups are numbered by decreasing size already (10, 7, 5, 3): the assignment must equal them exactly
    np.testing.assert_array_equal(assign, group)
    np.testing.assert_array_equal(concepts.sizes, [10, 7, 5, 3])
    for k in range(4):
        members = np.flatnonzero(assign == k)
        np.testing.assert_allclose(concepts.centroids[k], x[members].mean(axis=0), rtol=1e-5, atol=1e-5)
        assert concepts.medoid_clip[k] in members
        # the medoid has the highest mean cosine similarity to its cluster
        unit = x[members] / np.linalg.norm(x[members], axis=1, keepdims=True)
        assert concepts.medoid_clip[k] == members[np.argmax((unit @ unit.T).mean(axis=1))]


def test_discover_partition_setting_coarser_and_clamped() -> None:
    x, group, sup, _ = grouped_data(0)
    parts = run_finch(x.astype(np.float32))
    assert parts.shape == (len(x), 2)
    fine, _ = discover(x, partition=0)
    coarse, assign = discover(x, partition=1)
    assert coarse.n_partitions == fine.n_partitions == 2
    assert coarse.partition == 1
    assert coarse.n_concepts <= fine.n_concepts
    assert coarse.n_concepts == 2
    # super-group 0 = groups {10, 3} (13 clips) becomes concept 0, super-group 1 = {7, 5} (12 clips) concept 1
    np.testing.assert_array_equal(assign, sup[group])
    np.testing.assert_array_equal(coarse.sizes, [13, 12])
    for k in range(2):
        assert assign[coarse.medoid_clip[k]] == k
    clamped, assign_c = discover(x, partition=50)
    assert clamped.partition == 1 and clamped.n_partitions == 2
    np.testing.assert_array_equal(assign_c, assign)
    np.testing.assert_array_equal(clamped.centroids, coarse.centroids)


def test_discover_ties_in_size_follow_first_appearance() -> None:
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(3, 24))
    group = rng.permutation(np.repeat([0, 1, 2], 6))
    x = centres[group] + 0.04 * rng.normal(size=(18, 24))
    for g in range(3):  # each group holds its exact centre
        x[np.flatnonzero(group == g)[0]] = centres[g]
    _, assign = discover(x, partition=0)
    first = [group[i] for i in sorted(np.unique(group, return_index=True)[1])]
    assert [assign[np.flatnonzero(group == g)[0]] for g in first] == [0, 1, 2]
    # still a partition matching the groups
    for g in range(3):
        assert len(np.unique(assign[group == g])) == 1


def test_discover_is_deterministic() -> None:
    x, _, _, _ = grouped_data(2)
    c1, a1 = discover(x, partition=0)
    c2, a2 = discover(x, partition=0)
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(c1.centroids, c2.centroids)
    np.testing.assert_array_equal(c1.medoid_clip, c2.medoid_clip)


def test_assign_nearest_held_out_points() -> None:
    x, group, _, centres = grouped_data(0)
    concepts, _ = discover(x, partition=0)
    rng = np.random.default_rng(11)
    held_group = np.array([3, 0, 2, 1, 1, 0, 2, 3])
    held = centres[held_group] + 0.04 * rng.normal(size=(len(held_group), x.shape[1]))
    out = assign_nearest(held, concepts)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, held_group)
    # cosine: scaling a clip does not change its concept
    np.testing.assert_array_equal(assign_nearest(held * 7.0, concepts), held_group)
    assert assign_nearest(np.zeros((0, x.shape[1])), concepts).shape == (0,)


@pytest.mark.parametrize("n", [0, 1])
def test_discover_needs_two_clips(n: int) -> None:
    with pytest.raises(StageError, match="at least 2"):
        discover(np.ones((n, 5)))


def test_auto_partition_keeps_the_coarsest_that_still_tells_the_classes_apart() -> None:
    x, group, sup, _ = grouped_data(0)
    clip_video = np.arange(len(x))  # one clip per video
    # classes = super-groups: both partitions separate them, the coarser (fewer concepts) is kept
    coarse, _ = discover(x, partition="auto", clip_video=clip_video, y=sup[group])
    assert coarse.partition == 1 and coarse.n_concepts == 2
    scores = {c["partition"]: c["cv_accuracy"] for c in coarse.choice.candidates}
    assert scores[0] == pytest.approx(1.0) and scores[1] == pytest.approx(1.0)
    # classes = the 4 groups: the coarse partition merges classes, so the fine one is chosen
    fine, assign = discover(x, partition="auto", clip_video=clip_video, y=group)
    assert fine.partition == 0 and fine.n_concepts == 4
    scores = {c["partition"]: c["cv_accuracy"] for c in fine.choice.candidates}
    assert scores[0] == pytest.approx(1.0) and scores[1] < 0.9
    np.testing.assert_array_equal(assign, group)


def test_auto_partition_needs_the_clips_videos_and_classes() -> None:
    x, _, _, _ = grouped_data(0)
    with pytest.raises(StageError, match="auto"):
        discover(x, partition="auto")


def test_auto_partition_with_a_single_video_per_class_falls_back_to_the_reference() -> None:
    x, group, _, _ = grouped_data(0)
    y = np.arange(len(x))  # every video its own class: nothing to cross-validate
    concepts, _ = discover(x, partition="auto", clip_video=np.arange(len(x)), y=y)
    assert concepts.partition == 1 and "too few" in concepts.choice.rule
    assert all(c["cv_accuracy"] is None for c in concepts.choice.candidates)  # JSON null, not NaN
