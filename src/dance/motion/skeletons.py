"""Skeleton layouts by name, a canonical joint vocabulary, and mappings between layouts.

Registered layouts (:data:`LAYOUTS`):

- ``mediapipe-33``: MediaPipe Pose's 33 landmarks in their official order, with MediaPipe's connections.
- ``coco-17``: the COCO keypoints, with COCO's skeleton.
- ``penn-13``: Penn Action's 13 joints (head, l_shoulder, r_shoulder, ..., r_ankle).
- ``synthetic-15``: the layout of the synthetic generator (:mod:`dance.data.synthetic.body`).

:func:`get_layout` accepts one of these names (or a short alias such as ``coco``) or the path of a
``skeleton.json`` (or of a folder holding one) for a custom layout.

**Canonical names.** Every joint name is mapped to a canonical name by :func:`canonical_name`: lower case,
``-`` and spaces as ``_``, the side prefixes ``l_`` / ``r_`` / ``left`` / ``right`` spelled ``left_`` /
``right_``, and a few synonyms (``mid_hip`` / ``root`` → ``pelvis``, ``thorax`` → ``neck``, ...). Names that are
not in the vocabulary (:data:`CANONICAL_JOINTS`) keep their normalised spelling, so two custom layouts with the
same joint names still map onto each other.

**Mapping rules** (:func:`mapping`), for each target joint, in this order:

1. a source joint with the same canonical name → copied;
2. a derivation rule (:data:`DERIVED`): the first alternative whose joints the source all has → the mean of
   those joints (``head`` = mean of nose and both ears, or of both ears, or the nose, or the mean of both eyes;
   ``neck`` = midpoint of the shoulders; ``pelvis`` = midpoint of the hips);
3. otherwise the joint is *missing*.

**Missing joints policy** (:meth:`JointMapping.apply`): a missing joint gets score 0 and, as coordinates, the
mean of the frame's present joints (score > 0) of the mapped pose — not zeros, which would drag a per-frame
normalisation (subtract the mean joint, min-max scale) towards the image origin. Falls back to the mean of the
frame's present source joints, then of all its finite source joints, then 0. :attr:`JointMapping.missing`
lists the missing joints so callers can warn. A derived joint's score is the minimum of its sources' scores;
its coordinates are the mean of its sources that have a score > 0 (of all of them when none has), so an
undetected ear at ``(0, 0)`` does not drag the head away. Non-finite source coordinates count as undetected
(score 0). ``apply`` never returns NaN or inf.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dance.data.synthetic.body import EDGES as _SYNTHETIC_EDGES
from dance.data.synthetic.body import JOINTS as _SYNTHETIC_JOINTS
from dance.errors import PoseFormatError
from dance.motion.mediapipe_source import MEDIAPIPE_SKELETON
from dance.motion.poses import Skeleton

__all__ = [
    "CANONICAL_JOINTS",
    "COCO_17",
    "DERIVED",
    "LAYOUTS",
    "MEDIAPIPE_33",
    "PENN_13",
    "SYNTHETIC_15",
    "JointMapping",
    "canonical_name",
    "get_layout",
    "layout_name",
    "mapping",
    "mirror_pairs",
    "mirror_permutation",
    "split_side",
]

# --- registered layouts

MEDIAPIPE_33 = MEDIAPIPE_SKELETON  # defined beside the estimator that produces it

COCO_17 = Skeleton(
    joints=(
        "nose",
        "left_eye",
        "right_eye",
        "left_ear",
        "right_ear",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
    ),
    # the COCO person category's "skeleton" (1-based there), 0-based here
    edges=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
        (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
    ),
)  # fmt: skip

PENN_13 = Skeleton(
    joints=(
        "head",
        "l_shoulder",
        "r_shoulder",
        "l_elbow",
        "r_elbow",
        "l_wrist",
        "r_wrist",
        "l_hip",
        "r_hip",
        "l_knee",
        "r_knee",
        "l_ankle",
        "r_ankle",
    ),
    edges=(
        (0, 1), (0, 2), (1, 2), (1, 3), (3, 5), (2, 4), (4, 6),
        (1, 7), (2, 8), (7, 8), (7, 9), (9, 11), (8, 10), (10, 12),
    ),
)  # fmt: skip

SYNTHETIC_15 = Skeleton(joints=tuple(_SYNTHETIC_JOINTS), edges=tuple(tuple(e) for e in _SYNTHETIC_EDGES))

#: The registered layouts by name.
LAYOUTS: dict[str, Skeleton] = {
    "mediapipe-33": MEDIAPIPE_33,
    "coco-17": COCO_17,
    "penn-13": PENN_13,
    "synthetic-15": SYNTHETIC_15,
}

_ALIASES: dict[str, str] = {
    "mediapipe": "mediapipe-33",
    "coco": "coco-17",
    "penn": "penn-13",
    "penn-action": "penn-13",
    "synthetic": "synthetic-15",
}

# --- canonical vocabulary

_BODY = ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")
_FACE = ("eye_inner", "eye", "eye_outer", "ear")
_HAND = ("pinky", "index", "thumb")
_FOOT = ("heel", "foot_index")

#: The canonical joint names: head/neck/pelvis, the nose and mouth corners, and left/right face, body, hand and
#: foot points (the union of the registered layouts' joints).
CANONICAL_JOINTS: tuple[str, ...] = (
    ("head", "neck", "pelvis", "nose", "mouth_left", "mouth_right")
    + tuple(f"{side}_{part}" for part in _FACE + _BODY + _HAND + _FOOT for side in ("left", "right"))
)

_SYNONYMS: dict[str, str] = {
    "mid_hip": "pelvis",
    "midhip": "pelvis",
    "hip_center": "pelvis",
    "hip_centre": "pelvis",
    "center_hip": "pelvis",
    "root": "pelvis",
    "thorax": "neck",
    "mid_shoulder": "neck",
    "shoulder_center": "neck",
    "shoulder_centre": "neck",
    "head_center": "head",
    "head_centre": "head",
    "left_toe": "left_foot_index",
    "right_toe": "right_foot_index",
    "left_big_toe": "left_foot_index",
    "right_big_toe": "right_foot_index",
    "left_mouth": "mouth_left",
    "right_mouth": "mouth_right",
}

#: Derived joints: canonical name → alternatives (tried in order), each a tuple of canonical source joints whose
#: mean gives the joint.
DERIVED: dict[str, tuple[tuple[str, ...], ...]] = {
    "head": (("nose", "left_ear", "right_ear"), ("left_ear", "right_ear"), ("nose",), ("left_eye", "right_eye")),
    "neck": (("left_shoulder", "right_shoulder"),),
    "pelvis": (("left_hip", "right_hip"),),
}


_TOKEN = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_SIDES = {"l": "left", "left": "left", "r": "right", "right": "right"}


def split_side(name: str) -> tuple[str | None, str]:
    """``(side, base)`` of a joint name: ``side`` is ``"left"``, ``"right"`` or None, ``base`` the rest, normalised.

    The side is read from the first or last word of the name, whatever the convention: ``left_knee``,
    ``l_knee``, ``knee_left``, ``knee_l``, ``LeftKnee``, ``KneeLeft``, ``LKnee`` (OpenPose), ``kneeL``, ``knee.L``
    (Blender), ``knee-left``, ``LEFT_KNEE``; and from a glued lower-case prefix (``leftknee``). Words are split at
    ``_ - . space`` and at case changes.
    """
    words = _TOKEN.findall(str(name).strip())
    if len(words) >= 2:
        first, last = words[0].lower(), words[-1].lower()
        if first in _SIDES:
            return _SIDES[first], "_".join(w.lower() for w in words[1:])
        if last in _SIDES:
            return _SIDES[last], "_".join(w.lower() for w in words[:-1])
    base = "_".join(w.lower() for w in words) or str(name).strip().lower()
    for side in ("left", "right"):
        if base.startswith(side) and len(base) > len(side):
            return side, base[len(side):].lstrip("_")
    return None, base


def canonical_name(name: str) -> str:
    """The canonical spelling of a joint name (see the module docstring); unknown names are only normalised."""
    side, base = split_side(name)
    n = f"{side}_{base}" if side else base
    return _SYNONYMS.get(n, n)


def mirror_pairs(skeleton: Skeleton) -> list[tuple[int, int]]:
    """Left/right joint pairs ``(i, j)``: the skeleton's explicit ``mirror`` list when it has one, else joints
    whose names differ only in their side (:func:`split_side`, any naming convention). Each pair once, i < j."""
    if skeleton.mirror:
        return sorted((min(a, b), max(a, b)) for a, b in skeleton.mirror)
    sides = [split_side(j) for j in skeleton.joints]
    lookup = {(side, base): i for i, (side, base) in enumerate(sides) if side}
    pairs = []
    for i, (side, base) in enumerate(sides):
        if side == "left" and ("right", base) in lookup:
            pairs.append(tuple(sorted((i, lookup[("right", base)]))))
    if not pairs:  # lower-case one-letter prefixes (lhip / rhip), accepted only when both spellings exist
        low = {str(j).strip().lower(): i for i, j in enumerate(skeleton.joints)}
        pairs = [(min(i, low["r" + n[1:]]), max(i, low["r" + n[1:]])) for n, i in low.items()
                 if n.startswith("l") and len(n) > 2 and "r" + n[1:] in low]
    return sorted(pairs)


def mirror_permutation(skeleton: Skeleton) -> np.ndarray:
    """Joint permutation that swaps left and right joints (:func:`mirror_pairs`); unpaired joints stay put.

    The identity means the layout names no pair: a mirrored pose cannot be made (callers skip flips then)."""
    perm = np.arange(skeleton.n_joints)
    for i, j in mirror_pairs(skeleton):
        perm[i], perm[j] = j, i
    return perm


# --- lookup


def get_layout(name_or_path: str | Path) -> Skeleton:
    """A registered layout by name (or alias), or a custom layout from a ``skeleton.json`` path.

    A folder is accepted when it holds a ``skeleton.json`` (a generic pose dataset).

    Raises:
        PoseFormatError: neither a registered name nor an existing skeleton file (the message lists the names),
            or a malformed skeleton file.
    """
    if isinstance(name_or_path, str):
        key = name_or_path.strip().lower()
        key = _ALIASES.get(key, key)
        if key in LAYOUTS:
            return LAYOUTS[key]
    path = Path(name_or_path).expanduser()
    if path.is_dir() and (path / "skeleton.json").is_file():
        path = path / "skeleton.json"
    if path.is_file():
        return Skeleton.from_json(path)
    raise PoseFormatError(
        f"unknown skeleton layout '{name_or_path}': not a registered layout ({', '.join(LAYOUTS)}; aliases: "
        f"{', '.join(_ALIASES)}) and no skeleton.json at that path"
    )


def layout_name(skeleton: Skeleton) -> str | None:
    """Name of the registered layout with the same joints in the same order (edges are not compared), or None."""
    for name, layout in LAYOUTS.items():
        if layout == skeleton:
            return name
    for name, layout in LAYOUTS.items():
        if layout.joints == tuple(skeleton.joints):
            return name
    return None


# --- mapping


@dataclass
class JointMapping:
    """How to build the joints of ``target`` from those of ``source``.

    Attributes:
        source: the layout of the input poses.
        target: the layout of the output poses.
        rules: one ``(target joint name, source joint indices)`` per target joint, in target order: one index =
            copy that joint, several = their mean, none = missing (see the module docstring for the policy).
    """

    source: Skeleton
    target: Skeleton
    rules: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        """Target joints the source cannot provide (score 0 after :meth:`apply`)."""
        return [name for name, idx in self.rules if not idx]

    @property
    def is_identity(self) -> bool:
        """True when every target joint is a copy of the source joint at the same position."""
        return self.source.n_joints == self.target.n_joints and all(
            idx == (i,) for i, (_, idx) in enumerate(self.rules)
        )

    def apply(self, keypoints: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map poses ``keypoints`` (T, Js, 2) and ``scores`` (T, Js) to the target layout.

        Returns float32 ``keypoints`` (T, Jt, 2) and ``scores`` (T, Jt), free of NaN and inf.

        Raises:
            PoseFormatError: shapes that do not fit the source layout.
        """
        kp = np.asarray(keypoints, dtype=np.float64)
        sc = np.asarray(scores, dtype=np.float64)
        js = self.source.n_joints
        if kp.ndim != 3 or kp.shape[1:] != (js, 2):
            raise PoseFormatError(f"keypoints must have shape (T, {js}, 2) for the source layout, got {kp.shape}")
        if sc.shape != kp.shape[:2]:
            raise PoseFormatError(f"scores shape {sc.shape} does not match keypoints {kp.shape[:2]}")
        finite = np.isfinite(kp).all(axis=2)
        sc = np.where(finite & np.isfinite(sc), sc, 0.0)
        kp = np.where(finite[..., None], kp, 0.0)
        n_frames = kp.shape[0]

        # frame centres of the source: present joints, else all finite joints, else 0
        def _frame_mean(mask: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            n = mask.sum(axis=1)
            total = (pts * mask[..., None]).sum(axis=1)
            return total / np.maximum(n, 1)[:, None], n > 0

        present_src = finite & (sc > 0)
        mean_present, has_present = _frame_mean(present_src, kp)
        mean_finite, has_finite = _frame_mean(finite, kp)
        src_centre = np.where(has_present[:, None], mean_present, np.where(has_finite[:, None], mean_finite, 0.0))
        # undetected (non-finite) source joints sit at the centre so a mean over them stays sensible
        kp = np.where(finite[..., None], kp, src_centre[:, None, :])

        jt = self.target.n_joints
        out_kp = np.zeros((n_frames, jt, 2), dtype=np.float64)
        out_sc = np.zeros((n_frames, jt), dtype=np.float64)
        missing = np.zeros(jt, dtype=bool)
        for j, (_, idx) in enumerate(self.rules):
            if not idx:
                missing[j] = True
                continue
            sel = list(idx)
            if len(sel) == 1:
                out_kp[:, j] = kp[:, sel[0]]
                out_sc[:, j] = sc[:, sel[0]]
                continue
            # a derived joint: mean of its present sources (all of them when none is present); min score
            w = present_src[:, sel]
            w = np.where(w.any(axis=1, keepdims=True), w, True).astype(np.float64)
            out_kp[:, j] = (kp[:, sel] * w[..., None]).sum(axis=1) / w.sum(axis=1)[:, None]
            out_sc[:, j] = sc[:, sel].min(axis=1)
        if missing.any():
            present_tgt = (~missing)[None, :] & (out_sc > 0)
            mean_tgt, has_tgt = _frame_mean(present_tgt, out_kp)
            centre = np.where(has_tgt[:, None], mean_tgt, src_centre)
            out_kp[:, missing] = centre[:, None, :]
            out_sc[:, missing] = 0.0
        out_kp = np.nan_to_num(out_kp, nan=0.0, posinf=0.0, neginf=0.0)
        out_sc = np.nan_to_num(out_sc, nan=0.0, posinf=0.0, neginf=0.0)
        return out_kp.astype(np.float32), out_sc.astype(np.float32)


def mapping(source: Skeleton, target: Skeleton) -> JointMapping:
    """The :class:`JointMapping` from ``source`` to ``target`` (rules in the module docstring).

    A layout mapped onto itself (same joint names in the same order) is the identity.
    """
    if tuple(source.joints) == tuple(target.joints):
        return JointMapping(source, target, [(name, (i,)) for i, name in enumerate(target.joints)])
    index: dict[str, int] = {}
    for i, name in enumerate(source.joints):
        index.setdefault(canonical_name(name), i)
    rules: list[tuple[str, tuple[int, ...]]] = []
    for name in target.joints:
        c = canonical_name(name)
        idx: tuple[int, ...] = ()
        if c in index:
            idx = (index[c],)
        else:
            for alternative in DERIVED.get(c, ()):
                if all(a in index for a in alternative):
                    idx = tuple(index[a] for a in alternative)
                    break
        rules.append((name, idx))
    return JointMapping(source, target, rules)
