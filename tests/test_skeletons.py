"""Skeleton layouts, canonical joint names and mappings between layouts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dance.data.synthetic.body import EDGES as BODY_EDGES
from dance.data.synthetic.body import JOINTS as BODY_JOINTS
from dance.errors import PoseFormatError
from dance.motion.poses import Skeleton
from dance.motion.skeletons import (
    CANONICAL_JOINTS,
    LAYOUTS,
    canonical_name,
    get_layout,
    layout_name,
    mapping,
    mirror_pairs,
    mirror_permutation,
)

MP = LAYOUTS["mediapipe-33"]
COCO = LAYOUTS["coco-17"]
PENN = LAYOUTS["penn-13"]
SYN = LAYOUTS["synthetic-15"]


def _poses(skel: Skeleton, t: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    kp = rng.uniform(10, 300, size=(t, skel.n_joints, 2)).astype(np.float32)
    sc = rng.uniform(0.2, 1.0, size=(t, skel.n_joints)).astype(np.float32)
    return kp, sc


def _j(skel: Skeleton, name: str) -> int:
    return skel.joints.index(name)


def test_layouts_are_well_formed():
    assert MP.n_joints == 33 and len(MP.edges) == 35
    assert MP.joints[:5] == ("nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner")
    assert MP.joints[-1] == "right_foot_index"
    assert COCO.n_joints == 17 and COCO.joints[0] == "nose" and COCO.joints[-1] == "right_ankle"
    assert PENN.joints == ("head", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist",
                           "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle")
    assert SYN.joints == tuple(BODY_JOINTS) and SYN.edges == tuple(tuple(e) for e in BODY_EDGES)
    for name, skel in LAYOUTS.items():
        assert len(set(skel.joints)) == skel.n_joints, name
        assert all(0 <= a < skel.n_joints and 0 <= b < skel.n_joints and a != b for a, b in skel.edges), name
        assert len(set(map(frozenset, skel.edges))) == len(skel.edges), name
        # every joint of every registered layout is in the canonical vocabulary
        assert {canonical_name(j) for j in skel.joints} <= set(CANONICAL_JOINTS), name


def test_canonical_names():
    assert canonical_name("l_shoulder") == "left_shoulder"
    assert canonical_name("R-Knee") == "right_knee"
    assert canonical_name("leftWrist".lower()) == "left_wrist"
    assert canonical_name("mid_hip") == "pelvis"
    assert canonical_name("left_eye_inner") == "left_eye_inner"
    assert canonical_name("mouth_left") == "mouth_left"
    assert canonical_name("tail") == "tail"


def test_get_layout_names_aliases_and_files(tmp_path: Path):
    assert get_layout("penn-13") is PENN
    assert get_layout("COCO") is COCO
    assert get_layout("mediapipe") is MP
    custom = {"joints": ["a", "b", "c"], "edges": [[0, 1], [1, 2]]}
    (tmp_path / "skeleton.json").write_text(json.dumps(custom))
    assert get_layout(tmp_path / "skeleton.json") == Skeleton(("a", "b", "c"), ((0, 1), (1, 2)))
    assert get_layout(str(tmp_path)).joints == ("a", "b", "c")


def test_unknown_layout_error_lists_names():
    with pytest.raises(PoseFormatError) as e:
        get_layout("openpose-25")
    msg = str(e.value)
    assert "openpose-25" in msg
    for name in LAYOUTS:
        assert name in msg


def test_layout_name():
    for name, skel in LAYOUTS.items():
        assert layout_name(skel) == name
        assert layout_name(Skeleton(skel.joints, ())) == name  # edges are not compared
    assert layout_name(Skeleton(("a", "b"), ((0, 1),))) is None


def test_identity_mapping():
    for skel in LAYOUTS.values():
        m = mapping(skel, skel)
        assert m.is_identity and m.missing == []
        kp, sc = _poses(skel)
        kp2, sc2 = m.apply(kp, sc)
        np.testing.assert_array_equal(kp2, kp)
        np.testing.assert_array_equal(sc2, sc)
    custom = Skeleton(("foo", "bar"), ((0, 1),))
    assert mapping(custom, custom).is_identity


def test_mediapipe_to_penn_all_available_head_from_face():
    m = mapping(MP, PENN)
    assert m.missing == []
    kp, sc = _poses(MP)
    out, osc = m.apply(kp, sc)
    assert out.shape == (4, 13, 2) and osc.shape == (4, 13)
    assert out.dtype == np.float32 and osc.dtype == np.float32
    face = [_j(MP, "nose"), _j(MP, "left_ear"), _j(MP, "right_ear")]
    np.testing.assert_allclose(out[:, 0], kp[:, face].mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(osc[:, 0], sc[:, face].min(axis=1))
    np.testing.assert_array_equal(out[:, _j(PENN, "l_shoulder")], kp[:, _j(MP, "left_shoulder")])
    np.testing.assert_array_equal(osc[:, _j(PENN, "r_ankle")], sc[:, _j(MP, "right_ankle")])
    assert dict(m.rules)["head"] == tuple(face)


def test_derived_joint_ignores_undetected_source_coordinates():
    m = mapping(COCO, PENN)
    kp, sc = _poses(COCO, t=2)
    ear = _j(COCO, "left_ear")
    kp[0, ear] = 0.0  # COCO stores unlabelled keypoints at (0, 0) with v = 0
    sc[0, ear] = 0.0
    out, osc = m.apply(kp, sc)
    nose, rear = _j(COCO, "nose"), _j(COCO, "right_ear")
    np.testing.assert_allclose(out[0, 0], kp[0, [nose, rear]].mean(axis=0), rtol=1e-5)
    assert osc[0, 0] == 0.0  # min of the sources' scores
    np.testing.assert_allclose(out[1, 0], kp[1, [nose, ear, rear]].mean(axis=0), rtol=1e-5)


def test_coco_to_penn():
    m = mapping(COCO, PENN)
    assert m.missing == []
    kp, sc = _poses(COCO)
    out, osc = m.apply(kp, sc)
    for pj, cj in (("l_wrist", "left_wrist"), ("r_hip", "right_hip"), ("l_knee", "left_knee")):
        np.testing.assert_array_equal(out[:, _j(PENN, pj)], kp[:, _j(COCO, cj)])
        np.testing.assert_array_equal(osc[:, _j(PENN, pj)], sc[:, _j(COCO, cj)])


def test_penn_to_synthetic_derives_neck_and_pelvis():
    m = mapping(PENN, SYN)
    assert m.missing == []
    kp, sc = _poses(PENN)
    out, osc = m.apply(kp, sc)
    ls, rs, lh, rh = (_j(PENN, n) for n in ("l_shoulder", "r_shoulder", "l_hip", "r_hip"))
    np.testing.assert_allclose(out[:, _j(SYN, "neck")], (kp[:, ls] + kp[:, rs]) / 2, rtol=1e-5)
    np.testing.assert_allclose(osc[:, _j(SYN, "neck")], np.minimum(sc[:, ls], sc[:, rs]))
    np.testing.assert_allclose(out[:, _j(SYN, "pelvis")], (kp[:, lh] + kp[:, rh]) / 2, rtol=1e-5)
    np.testing.assert_array_equal(out[:, _j(SYN, "head")], kp[:, _j(PENN, "head")])
    np.testing.assert_array_equal(out[:, _j(SYN, "r_elbow")], kp[:, _j(PENN, "r_elbow")])


def test_synthetic_to_penn():
    m = mapping(SYN, PENN)
    assert m.missing == []
    assert all(len(idx) == 1 for _, idx in m.rules)
    kp, sc = _poses(SYN)
    out, osc = m.apply(kp, sc)
    for name in PENN.joints:
        np.testing.assert_array_equal(out[:, _j(PENN, name)], kp[:, _j(SYN, name)])
        np.testing.assert_array_equal(osc[:, _j(PENN, name)], sc[:, _j(SYN, name)])


def test_penn_to_mediapipe_missing_points_policy():
    m = mapping(PENN, MP)
    missing = set(m.missing)
    face = {"nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
            "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right"}
    hands_feet = {f"{s}_{p}" for s in ("left", "right") for p in ("pinky", "index", "thumb", "heel", "foot_index")}
    assert missing == face | hands_feet
    kp, sc = _poses(PENN, t=3)
    sc[1, 3] = 0.0  # an undetected joint is not "present"
    sc[2] = 0.0  # a frame without any detection
    out, osc = m.apply(kp, sc)
    assert np.isfinite(out).all() and np.isfinite(osc).all()
    miss_idx = [i for i, n in enumerate(MP.joints) if n in missing]
    present_idx = [i for i, n in enumerate(MP.joints) if n not in missing]
    assert (osc[:, miss_idx] == 0).all()
    for t in range(2):
        ok = [i for i in present_idx if osc[t, i] > 0]
        np.testing.assert_allclose(out[t, miss_idx], np.broadcast_to(out[t, ok].mean(axis=0), (len(miss_idx), 2)),
                                   rtol=1e-5)
    # no present joint at all: the frame mean of the source's finite joints
    np.testing.assert_allclose(out[2, miss_idx[0]], kp[2].mean(axis=0), rtol=1e-5)
    np.testing.assert_array_equal(out[:, _j(MP, "left_hip")], kp[:, _j(PENN, "l_hip")])


def test_non_finite_input_never_gives_nan():
    m = mapping(PENN, MP)
    kp, sc = _poses(PENN, t=2)
    kp[0, 0] = np.nan
    kp[1] = np.inf
    sc[0, 1] = np.nan
    out, osc = m.apply(kp, sc)
    assert np.isfinite(out).all() and np.isfinite(osc).all()
    assert osc[0, _j(MP, "left_shoulder")] == 0.0
    assert (osc[1] == 0).all()


def test_custom_layout_unknown_names():
    custom = Skeleton(("tail", "wing", "L_Knee", "beak", "head"), ((0, 1),))
    m = mapping(custom, PENN)
    assert set(m.missing) == set(PENN.joints) - {"l_knee", "head"}
    assert dict(m.rules)["l_knee"] == (2,) and dict(m.rules)["head"] == (4,)
    other = Skeleton(("beak", "tail"), ())
    m2 = mapping(custom, other)
    assert m2.missing == [] and m2.rules == [("beak", (3,)), ("tail", (0,))]
    kp, sc = _poses(custom)
    out, osc = m.apply(kp, sc)
    assert np.isfinite(out).all()
    assert (osc[:, [i for i, n in enumerate(PENN.joints) if n not in ("l_knee", "head")]] == 0).all()


def test_apply_rejects_wrong_shapes():
    m = mapping(PENN, SYN)
    with pytest.raises(PoseFormatError):
        m.apply(np.zeros((2, 12, 2)), np.zeros((2, 12)))
    with pytest.raises(PoseFormatError):
        m.apply(np.zeros((2, 13, 2)), np.zeros((2, 12)))


@pytest.mark.parametrize("left, right", [
    ("left_knee", "right_knee"), ("l_knee", "r_knee"), ("knee_left", "knee_right"), ("knee_l", "knee_r"),
    ("LeftKnee", "RightKnee"), ("KneeLeft", "KneeRight"), ("LKnee", "RKnee"), ("kneeL", "kneeR"),
    ("knee.L", "knee.R"), ("knee-left", "knee-right"), ("LEFT_KNEE", "RIGHT_KNEE"), ("leftknee", "rightknee"),
    ("left knee", "right knee"), ("lknee", "rknee"),
])
def test_mirror_pairs_from_any_naming_convention(left: str, right: str) -> None:
    skel = Skeleton(("head", left, "pelvis", right), ())
    assert mirror_pairs(skel) == [(1, 3)]
    np.testing.assert_array_equal(mirror_permutation(skel), [0, 3, 2, 1])
    if left != "lknee":  # glued one-letter sides pair only with each other, they get no canonical side
        assert canonical_name(left) == "left_knee" and canonical_name(right) == "right_knee"


def test_explicit_mirror_pairs_win_and_are_validated(tmp_path) -> None:
    path = tmp_path / "skeleton.json"
    path.write_text(json.dumps({"joints": ["a", "b", "c", "d"], "edges": [], "mirror": [[1, 2]]}))
    skel = Skeleton.from_json(path)
    assert mirror_pairs(skel) == [(1, 2)] and skel.to_json()["mirror"] == [[1, 2]]
    for bad in ([[1, 1]], [[0, 9]], [[0, 1], [1, 2]]):
        path.write_text(json.dumps({"joints": ["a", "b", "c", "d"], "mirror": bad}))
        with pytest.raises(PoseFormatError, match="mirror"):
            Skeleton.from_json(path)


def test_no_pairs_means_no_flip() -> None:
    from dance.encoders.pose_encoder import PoseEncoder

    assert mirror_pairs(Skeleton(("head", "neck", "tail"), ())) == []
    enc = PoseEncoder(("head", "neck", "tail"), 2, epochs=1)
    assert enc.mirror is None and enc.mirror_pairs == ()
    from dance.motion.poses import PoseSequence

    seq = PoseSequence(np.random.default_rng(0).random((10, 3, 2), dtype=np.float32), np.ones((10, 3), np.float32))
    assert len(enc._views([seq])) == 1  # no mirrored view at test time
    paired = PoseEncoder(("head", "knee_left", "knee_right"), 2, epochs=1)
    assert paired.mirror_pairs == ((1, 2),) and paired.fingerprint()["mirror"] == [[1, 2]]


def test_suffix_names_map_onto_registered_layouts() -> None:
    kinect = Skeleton(("head", "shoulder_left", "shoulder_right", "hip_left", "hip_right"), ())
    m = mapping(get_layout("penn-13"), kinect)
    assert "shoulder_left" not in m.missing and "hip_right" not in m.missing


def test_real_msr_action3d_layout_has_its_left_right_pairs() -> None:
    """MSR Action3D's skeleton.json names sides as suffixes (shoulder_left): 8 pairs, none missed (real data)."""
    folder = Path(__file__).resolve().parents[2] / "shared" / "data" / "msr_action3d"
    if not (folder / "skeleton.json").is_file():
        pytest.skip(f"real MSR Action3D data not available at {folder}")
    skel = get_layout(folder)
    pairs = [(skel.joints[i], skel.joints[j]) for i, j in mirror_pairs(skel)]
    assert len(pairs) == 8
    assert all(a.replace("_left", "") == b.replace("_right", "") for a, b in pairs)
    assert {canonical_name(j) for j in skel.joints} >= {"left_shoulder", "right_hip", "neck", "pelvis", "head"}
