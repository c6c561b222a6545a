"""Articulated 2D figure: skeleton, periodic motion primitives and forward kinematics.

The figure faces the camera (frontal view). Every segment has an in-plane angle and an
out-of-plane pitch; the pitch only foreshortens the segment (projected length ``L * cos(pitch)``),
which is how sagittal movements (squat, bow, knee raise) show up in a frontal image.

In-plane angles are measured from "hanging straight down" towards the outside of the body
(away from the midline): 0 = down, pi/2 = horizontal outwards, pi = straight up. The person's
right side is on the image left (they face the camera).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "EDGES",
    "JOINTS",
    "MOTIONS",
    "BodyPose",
    "forward_kinematics",
    "motion_pose",
    "pose_sequence",
]

JOINTS: tuple[str, ...] = (
    "head",
    "neck",
    "r_shoulder",
    "r_elbow",
    "r_wrist",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
    "pelvis",
    "r_hip",
    "r_knee",
    "r_ankle",
    "l_hip",
    "l_knee",
    "l_ankle",
)
J = {name: i for i, name in enumerate(JOINTS)}
EDGES: tuple[tuple[int, int], ...] = (
    (0, 1),
    (1, 2),
    (2, 3),
    (3, 4),
    (1, 5),
    (5, 6),
    (6, 7),
    (1, 8),
    (8, 9),
    (9, 10),
    (10, 11),
    (8, 12),
    (12, 13),
    (13, 14),
)

# Segment lengths as fractions of the standing height (ankle to top of head ~= 1.0).
NECK_TO_HEAD = 0.11
HEAD_RADIUS = 0.075
TORSO = 0.30
SHOULDER_HALF = 0.11
HIP_HALF = 0.065
UPPER_ARM = 0.16
FOREARM = 0.15
THIGH = 0.24
SHIN = 0.25
LIMB_WIDTH = 0.06
STANDING_HEIGHT = SHIN + THIGH + TORSO + NECK_TO_HEAD + HEAD_RADIUS

_D = math.pi / 180.0


@dataclass(frozen=True)
class BodyPose:
    """Joint angles (radians) of one frame; ``lift`` is a vertical jump in units of height."""

    lean: float = 0.0  # in-plane torso tilt, positive towards image right
    pitch: float = 0.0  # forward bend of the torso (foreshortens torso and neck)
    r_upper: float = 8 * _D
    r_upper_pitch: float = 0.0
    r_lower: float = 8 * _D
    r_lower_pitch: float = 0.0
    l_upper: float = 8 * _D
    l_upper_pitch: float = 0.0
    l_lower: float = 8 * _D
    l_lower_pitch: float = 0.0
    r_thigh: float = 5 * _D
    r_thigh_pitch: float = 0.0
    r_shin: float = 5 * _D
    r_shin_pitch: float = 0.0
    l_thigh: float = 5 * _D
    l_thigh_pitch: float = 0.0
    l_shin: float = 5 * _D
    l_shin_pitch: float = 0.0
    lift: float = 0.0


def _smooth(x: float) -> float:
    """Smoothstep on [0, 1]."""
    x = min(1.0, max(0.0, x))
    return x * x * (3.0 - 2.0 * x)


def _cycle(phase: float) -> float:
    """0 -> 1 -> 0 over one period, smooth."""
    return 0.5 - 0.5 * math.cos(2.0 * math.pi * phase)


def squat(phase: float) -> BodyPose:
    """Knees bend outwards and towards the camera, hips drop, arms reach forward."""
    s = _cycle(phase)
    knee_out = (8 + 30 * s) * _D
    shin_in = (5 - 18 * s) * _D
    arm_pitch = 80 * s * _D
    return BodyPose(
        pitch=25 * s * _D,
        r_thigh=knee_out, l_thigh=knee_out,
        r_thigh_pitch=75 * s * _D, l_thigh_pitch=75 * s * _D,
        r_shin=shin_in, l_shin=shin_in,
        r_shin_pitch=10 * s * _D, l_shin_pitch=10 * s * _D,
        r_upper=(8 + 4 * s) * _D, l_upper=(8 + 4 * s) * _D,
        r_lower=(8 + 4 * s) * _D, l_lower=(8 + 4 * s) * _D,
        r_upper_pitch=arm_pitch, l_upper_pitch=arm_pitch,
        r_lower_pitch=arm_pitch, l_lower_pitch=arm_pitch,
    )  # fmt: skip


def jumping_jack(phase: float) -> BodyPose:
    """Arms swing from the sides to overhead while the legs spread, with a small hop."""
    s = _cycle(phase)
    arm = (12 + 150 * s) * _D
    leg = (4 + 22 * s) * _D
    return BodyPose(
        r_upper=arm, l_upper=arm, r_lower=arm + 8 * s * _D, l_lower=arm + 8 * s * _D,
        r_thigh=leg, l_thigh=leg, r_shin=leg, l_shin=leg,
        lift=0.06 * abs(math.sin(2.0 * math.pi * phase)),
    )  # fmt: skip


def punch(phase: float) -> BodyPose:
    """Guard stance; the arms alternately punch straight out sideways at shoulder height."""
    sn = math.sin(2.0 * math.pi * phase)
    er = _smooth(max(0.0, sn) * 1.4)
    el = _smooth(max(0.0, -sn) * 1.4)

    def arm(e: float) -> tuple[float, float, float]:
        upper = (25 + 65 * e) * _D
        lower = (165 - 75 * e) * _D
        upper_pitch = 35 * (1 - e) * _D
        return upper, lower, upper_pitch

    ru, rl, rp = arm(er)
    lu, ll, lp = arm(el)
    return BodyPose(
        lean=0.12 * (el - er),
        r_upper=ru, r_lower=rl, r_upper_pitch=rp,
        l_upper=lu, l_lower=ll, l_upper_pitch=lp,
        r_thigh=12 * _D, l_thigh=12 * _D, r_shin=10 * _D, l_shin=10 * _D,
    )  # fmt: skip


def bow(phase: float) -> BodyPose:
    """Deep bow seen slightly from the side: the torso folds down into a strong lean, arms hang."""
    s = _cycle(phase)
    lean = 0.8 * s
    hang = 5 * _D  # arms hang vertically in the image whatever the torso does
    return BodyPose(
        lean=lean,
        pitch=50 * s * _D,
        r_upper=hang - lean, l_upper=hang + lean,
        r_lower=hang - lean, l_lower=hang + lean,
        r_thigh=4 * _D, l_thigh=4 * _D, r_shin=4 * _D, l_shin=4 * _D,
    )  # fmt: skip


def wave(phase: float) -> BodyPose:
    """Right arm raised, forearm swinging side to side overhead (two swings per period)."""
    sw = math.sin(4.0 * math.pi * phase)
    return BodyPose(
        lean=-0.04 * sw,
        r_upper=120 * _D, r_lower=(175 + 35 * sw) * _D,
        l_upper=6 * _D, l_lower=6 * _D,
    )  # fmt: skip


def march(phase: float) -> BodyPose:
    """Marching on the spot: knees raised alternately, arms swinging forward in counter-phase."""
    sn = math.sin(2.0 * math.pi * phase)
    kr = _smooth(max(0.0, sn) * 1.3)
    kl = _smooth(max(0.0, -sn) * 1.3)
    return BodyPose(
        r_thigh_pitch=85 * kr * _D, l_thigh_pitch=85 * kl * _D,
        r_thigh=(5 + 20 * kr) * _D, l_thigh=(5 + 20 * kl) * _D,
        r_shin=(3 - 10 * kr) * _D, l_shin=(3 - 10 * kl) * _D,
        r_upper=(8 + 15 * kl) * _D, l_upper=(8 + 15 * kr) * _D,
        r_upper_pitch=55 * kl * _D, r_lower_pitch=80 * kl * _D,
        l_upper_pitch=55 * kr * _D, l_lower_pitch=80 * kr * _D,
        r_lower=(8 + 60 * kl) * _D, l_lower=(8 + 60 * kr) * _D,
    )  # fmt: skip


def arm_circle(phase: float) -> BodyPose:
    """Both straight arms rotate through full circles in the image plane (mirrored)."""
    a = 2.0 * math.pi * phase + 10 * _D
    return BodyPose(
        r_upper=a, r_lower=a, l_upper=a, l_lower=a,
        r_thigh=9 * _D, l_thigh=9 * _D, r_shin=9 * _D, l_shin=9 * _D,
    )  # fmt: skip


def side_bend(phase: float) -> BodyPose:
    """Torso tilts left and right; the arm on the far side of the bend sweeps overhead."""
    sn = math.sin(2.0 * math.pi * phase)
    pos, neg = max(0.0, sn), max(0.0, -sn)
    return BodyPose(
        lean=0.55 * sn,
        r_upper=(10 + 150 * pos) * _D, r_lower=(10 + 160 * pos) * _D,
        l_upper=(10 + 150 * neg) * _D, l_lower=(10 + 160 * neg) * _D,
        r_thigh=10 * _D, l_thigh=10 * _D, r_shin=10 * _D, l_shin=10 * _D,
    )  # fmt: skip


MOTIONS: dict[str, Callable[[float], BodyPose]] = {
    "squat": squat,
    "jumping_jack": jumping_jack,
    "punch": punch,
    "bow": bow,
    "wave": wave,
    "march": march,
    "arm_circle": arm_circle,
    "side_bend": side_bend,
}


def motion_pose(motion: str, phase: float) -> BodyPose:
    """Pose of ``motion`` at ``phase`` (any real number; the primitives have period 1)."""
    return MOTIONS[motion](float(phase) % 1.0)


def _vec(angle: float, pitch: float, length: float, side: float) -> np.ndarray:
    """Projected segment vector (image coords, y down) for an in-plane angle from 'down'."""
    proj = length * math.cos(pitch)
    return np.array([side * math.sin(angle) * proj, math.cos(angle) * proj])


def _segment(pose: BodyPose, prefix: str, name: str, length: float, side: float) -> np.ndarray:
    angle = getattr(pose, f"{prefix}_{name}")
    pitch = getattr(pose, f"{prefix}_{name}_pitch")
    return _vec(angle, pitch, length, side)


def _rot(v: np.ndarray, phi: float) -> np.ndarray:
    c, s = math.cos(phi), math.sin(phi)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def forward_kinematics(pose: BodyPose) -> np.ndarray:
    """Joint positions (15, 2) in units of standing height, pelvis-relative, y down.

    The result is shifted vertically so the lowest ankle sits at y = -lift (i.e. ground y = 0).
    """
    p = np.zeros((len(JOINTS), 2))
    pelvis = np.zeros(2)
    up = _rot(np.array([0.0, -1.0]), pose.lean)
    pf = math.cos(pose.pitch)
    neck = pelvis + up * TORSO * pf
    head = neck + up * (NECK_TO_HEAD * pf)
    p[J["pelvis"]] = pelvis
    p[J["neck"]] = neck
    p[J["head"]] = head
    for prefix, side in (("r", -1.0), ("l", 1.0)):
        # the person's right is the image left
        shoulder = neck + _rot(np.array([side * SHOULDER_HALF, 0.0]), pose.lean)
        upper = _segment(pose, prefix, "upper", UPPER_ARM, side)
        lower = _segment(pose, prefix, "lower", FOREARM, side)
        elbow = shoulder + _rot(upper, pose.lean)
        wrist = elbow + _rot(lower, pose.lean)
        hip = pelvis + np.array([side * HIP_HALF, 0.0])
        thigh = _segment(pose, prefix, "thigh", THIGH, side)
        shin = _segment(pose, prefix, "shin", SHIN, side)
        knee = hip + thigh
        ankle = knee + shin
        for name, value in (
            ("shoulder", shoulder),
            ("elbow", elbow),
            ("wrist", wrist),
            ("hip", hip),
            ("knee", knee),
            ("ankle", ankle),
        ):
            p[J[f"{prefix}_{name}"]] = value
    ground = max(p[J["r_ankle"], 1], p[J["l_ankle"], 1])
    p[:, 1] -= ground + pose.lift
    return p


def pose_sequence(motion: str, n_frames: int, period: float, phase0: float = 0.0) -> np.ndarray:
    """Joint positions (T, 15, 2) in height units for ``n_frames`` frames of ``motion``."""
    return np.stack(
        [forward_kinematics(motion_pose(motion, phase0 + t / period)) for t in range(n_frames)]
    ).astype(np.float64)
