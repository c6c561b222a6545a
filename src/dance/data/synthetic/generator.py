"""Synthetic dataset with known causes: 12 classes decided by motion, object or scene.

Each class has one decisive concept value (unique to it); the other two concept types are drawn
per video from nuisance pools that contain no decisive value. Output is byte-deterministic
for a given seed and settings: every video has its own seed derived from ``(seed, index)``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from dance.data.synthetic.body import EDGES, JOINTS, MOTIONS, STANDING_HEIGHT, forward_kinematics, motion_pose
from dance.data.synthetic.render import PersonStyle, render_frame
from dance.data.synthetic.scene import OBJECTS, SCENES, draw_object, object_extent, render_background
from dance.data.video import write_video
from dance.errors import ConfigError

__all__ = [
    "CLASSES",
    "CONCEPT_TYPES",
    "ClassRule",
    "VideoSpec",
    "generate",
    "random_style",
    "render_actor",
    "render_video",
    "sample_spec",
]

CONCEPT_TYPES: tuple[str, ...] = ("motion", "object", "scene")
NUISANCE_MOTIONS: tuple[str, ...] = ("wave", "march", "arm_circle", "side_bend")
NUISANCE_OBJECTS: tuple[str | None, ...] = ("cone", "bottle", "bag", None)
NUISANCE_SCENES: tuple[str, ...] = ("street", "park")
DISTRACTORS: tuple[str, ...] = ("cone", "bottle", "bag")
DISTRACTOR_PROB = 0.4
GROUND = 0.85  # feet line as a fraction of the frame height
OBJECT_BASE = 0.955  # objects stand nearer to the camera, in front of the person
BASE_HEIGHT = 0.60  # person standing height as a fraction of the frame (times scale 0.85-1.15)


@dataclass(frozen=True)
class ClassRule:
    """A class is decided by one concept type taking one value."""

    name: str
    decisive: str
    value: str


CLASSES: tuple[ClassRule, ...] = (
    ClassRule("squat", "motion", "squat"),
    ClassRule("jumping_jacks", "motion", "jumping_jack"),
    ClassRule("punching", "motion", "punch"),
    ClassRule("bowing", "motion", "bow"),
    ClassRule("ball_drill", "object", "ball"),
    ClassRule("bench_drill", "object", "bench"),
    ClassRule("hoop_drill", "object", "hoop"),
    ClassRule("kettlebell_drill", "object", "kettlebell"),
    ClassRule("court_session", "scene", "court"),
    ClassRule("pool_session", "scene", "pool"),
    ClassRule("field_session", "scene", "field"),
    ClassRule("snow_session", "scene", "snow"),
)
_RULES = {c.name: c for c in CLASSES}


@dataclass(frozen=True)
class VideoSpec:
    """Everything needed to render one video (all randomness already drawn)."""

    video_id: str
    label: str
    seed: int
    size: int
    n_frames: int
    motion: str
    object: str | None
    distractor: str | None
    scene: str
    scale: float
    shift: float  # horizontal offset of the person, fraction of width
    period: float  # frames per motion cycle
    phase0: float
    object_side: int  # -1 = left of the person, +1 = right
    style: PersonStyle
    noise_amp: int  # uniform pixel noise in [-noise_amp, noise_amp]

    @property
    def objects(self) -> list[str]:
        """Sorted visible object names."""
        return sorted({o for o in (self.object, self.distractor) if o is not None})


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    i = int(h * 6.0) % 6
    f = h * 6.0 - math.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    r, g, b = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return int(round(r * 255)), int(round(g * 255)), int(round(b * 255))


_SKINS = ((241, 194, 160), (224, 172, 135), (198, 134, 92), (141, 85, 54), (92, 58, 38))


def _video_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


def random_style(rng: np.random.Generator) -> PersonStyle:
    """Random shirt, trouser and skin colours (five draws from ``rng``)."""
    return PersonStyle(
        shirt=_hsv_to_rgb(float(rng.random()), float(rng.uniform(0.65, 1.0)), float(rng.uniform(0.55, 0.95))),
        pants=_hsv_to_rgb(float(rng.random()), float(rng.uniform(0.3, 0.8)), float(rng.uniform(0.2, 0.5))),
        skin=_SKINS[int(rng.integers(len(_SKINS)))],
    )


def sample_spec(video_id: str, label: str, seed: int, index: int, size: int, n_frames: int) -> VideoSpec:
    """Draw the concept values and nuisance variation of one video from its own seed."""
    rule = _RULES[label]
    rng = _video_rng(seed, index)
    motion = str(rng.choice(NUISANCE_MOTIONS))
    obj_i = int(rng.integers(len(NUISANCE_OBJECTS)))
    obj: str | None = NUISANCE_OBJECTS[obj_i]
    scene = str(rng.choice(NUISANCE_SCENES))
    if rule.decisive == "motion":
        motion = rule.value
    elif rule.decisive == "object":
        obj = rule.value
    else:
        scene = rule.value
    distractor: str | None = None
    if rng.random() < DISTRACTOR_PROB:
        pool = [d for d in DISTRACTORS if d != obj]
        distractor = str(pool[int(rng.integers(len(pool)))])
    shift = float(rng.uniform(-0.15, 0.15))
    style = random_style(rng)
    return VideoSpec(
        video_id=video_id,
        label=label,
        seed=int(rng.integers(2**31)),
        size=size,
        n_frames=n_frames,
        motion=motion,
        object=obj,
        distractor=distractor,
        scene=scene,
        scale=float(rng.uniform(0.85, 1.15)),
        shift=shift,
        period=float(rng.uniform(10.0, 20.0)),
        phase0=float(rng.random()),
        object_side=-1 if shift > 0 else 1,  # the side with more room
        style=style,
        noise_amp=int(rng.integers(2, 7)),
    )


def _object_layer(spec: VideoSpec, rng: np.random.Generator) -> Image.Image | None:
    """RGBA layer with the object(s) standing on the floor beside the person."""
    placed = [(spec.object, spec.object_side), (spec.distractor, -spec.object_side)]
    placed = [(name, side) for name, side in placed if name is not None]
    if not placed:
        return None
    size = spec.size
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for name, side in placed:
        w, _ = object_extent(name, size)
        margin = float(rng.uniform(0.02, 0.06)) * size
        cx = margin + w / 2 if side < 0 else size - margin - w / 2
        base = (OBJECT_BASE + float(rng.uniform(-0.015, 0.015))) * size
        draw_object(draw, name, cx, base, size)
    return layer


def render_video(
    spec: VideoSpec, *, draw_person: bool = True, noise: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render ``spec``: frames uint8 (T,H,W,3), keypoints float32 (T,J,2) pixel x,y, scores (T,J)."""
    rng = np.random.default_rng(spec.seed)
    size = spec.size
    bg = Image.fromarray(render_background(spec.scene, size, rng))
    overlay = _object_layer(spec, rng)
    height_px = BASE_HEIGHT * spec.scale * size
    unit = height_px / STANDING_HEIGHT  # forward_kinematics lengths -> pixels
    origin = np.array([(0.5 + spec.shift) * size, GROUND * size])
    keypoints = np.empty((spec.n_frames, len(JOINTS), 2), np.float32)
    frames = np.empty((spec.n_frames, size, size, 3), np.uint8)
    for t in range(spec.n_frames):
        pose = motion_pose(spec.motion, spec.phase0 + t / spec.period)
        joints = forward_kinematics(pose) * unit + origin
        keypoints[t] = joints
        nz = None
        if noise:
            nz = rng.integers(-spec.noise_amp, spec.noise_amp + 1, size=(size, size, 3), dtype=np.int16)
        frames[t] = render_frame(bg, joints if draw_person else None, spec.style, height_px, overlay, nz)
    inside = (
        (keypoints[..., 0] >= 0) & (keypoints[..., 0] <= size - 1)
        & (keypoints[..., 1] >= 0) & (keypoints[..., 1] <= size - 1)
    )  # fmt: skip
    scores = inside.astype(np.float32)
    return frames, keypoints, scores


def render_actor(
    motion: str,
    *,
    size: int,
    n_frames: int,
    scale: float,
    shift: float,
    period: float,
    phase0: float,
    style: PersonStyle,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The figure of :func:`render_video` alone, placed the same way (scale, shift, period, phase).

    Returns RGB frames uint8 (T,H,W,3) (black where there is no figure), the exact actor masks bool (T,H,W) and
    the keypoints float32 (T,J,2) in pixels. The mask is exact: the figure is drawn opaque (no anti-aliasing) over
    black and over white, and a pixel is the actor's where both renders agree. ``np.where(mask, frames, bg)``
    is the figure drawn on ``bg``.
    """
    height_px = BASE_HEIGHT * scale * size
    unit = height_px / STANDING_HEIGHT
    origin = np.array([(0.5 + shift) * size, GROUND * size])
    black = Image.new("RGB", (size, size), (0, 0, 0))
    white = Image.new("RGB", (size, size), (255, 255, 255))
    frames = np.zeros((n_frames, size, size, 3), np.uint8)
    masks = np.zeros((n_frames, size, size), bool)
    keypoints = np.empty((n_frames, len(JOINTS), 2), np.float32)
    for t in range(n_frames):
        joints = forward_kinematics(motion_pose(motion, phase0 + t / period)) * unit + origin
        keypoints[t] = joints
        on_black = render_frame(black, joints, style, height_px)
        on_white = render_frame(white, joints, style, height_px)
        masks[t] = (on_black == on_white).all(axis=-1)
        frames[t][masks[t]] = on_black[masks[t]]
    return frames, masks, keypoints


# ---------------------------------------------------------------------------------------------
# Dataset writing


def _check_settings(
    n_videos: int, size: int, n_frames: int, fps: int, split_fractions: tuple[float, float, float]
) -> tuple[float, float, float]:
    if int(n_videos) < 1:
        raise ConfigError(f"n_videos must be >= 1, got {n_videos}")
    if int(size) < 32:
        raise ConfigError(f"size must be >= 32 pixels, got {size}")
    if int(n_frames) < 1:
        raise ConfigError(f"n_frames must be >= 1, got {n_frames}")
    if int(fps) < 1:
        raise ConfigError(f"fps must be >= 1, got {fps}")
    fr = tuple(float(f) for f in split_fractions)
    if len(fr) != 3 or any(f < 0 or not math.isfinite(f) for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
        raise ConfigError(
            f"split_fractions must be three non-negative numbers summing to 1, got {split_fractions}"
        )
    return fr  # type: ignore[return-value]


def _split_counts(n: int, fractions: tuple[float, float, float]) -> list[int]:
    """Largest-remainder rounding of ``n * fractions``."""
    raw = [n * f for f in fractions]
    counts = [int(math.floor(r)) for r in raw]
    order = sorted(range(3), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def _assign(n_videos: int, seed: int, fractions: tuple[float, float, float]) -> tuple[list[str], list[str]]:
    """Balanced labels (round-robin, shuffled) and per-class stratified splits."""
    rng = np.random.default_rng(seed)
    names = [c.name for c in CLASSES]
    labels = [names[i % len(names)] for i in range(n_videos)]
    labels = [labels[i] for i in rng.permutation(n_videos)]
    splits = [""] * n_videos
    for name in names:
        idx = [i for i, lab in enumerate(labels) if lab == name]
        idx = [idx[i] for i in rng.permutation(len(idx))]
        n_train, n_val, _ = _split_counts(len(idx), fractions)
        for k, i in enumerate(idx):
            splits[i] = "train" if k < n_train else "val" if k < n_train + n_val else "test"
    return labels, splits


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    """``np.savez_compressed`` with fixed zip timestamps, so the bytes are reproducible."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, arr in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(arr), allow_pickle=False)
            zf.writestr(info, member.getvalue())
    _write_bytes(path, buf.getvalue())


def _write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    _write_bytes(path, buf.getvalue().encode("utf-8"))


def _write_json(path: Path, obj: object) -> None:
    _write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode("utf-8"))


def causes_description() -> dict:
    """The causal rules of the dataset (``causes.json`` without seed and settings)."""
    pools = {
        "motion": list(NUISANCE_MOTIONS),
        "object": [o if o is not None else "none" for o in NUISANCE_OBJECTS],
        "scene": list(NUISANCE_SCENES),
    }
    classes = {
        c.name: {
            "decisive": c.decisive,
            "value": c.value,
            "nuisance": {t: ([] if t == c.decisive else list(pools[t])) for t in CONCEPT_TYPES},
        }
        for c in CLASSES
    }
    pairs = {
        t: [[a.name, b.name] for a, b in combinations([c for c in CLASSES if c.decisive == t], 2)]
        for t in CONCEPT_TYPES
    }
    return {
        "classes": classes,
        "pairs": pairs,
        "distractor_objects": list(DISTRACTORS),
        "distractor_prob": DISTRACTOR_PROB,
    }


_README = """\
DANCE synthetic dataset: an articulated 2D figure performing periodic exercises with known causes.

12 classes, each decided by exactly one concept type (see causes.json):
  motion: squat, jumping_jacks, punching, bowing   (object and scene are nuisance)
  object: ball_drill, bench_drill, hoop_drill, kettlebell_drill   (motion and scene are nuisance)
  scene:  court_session, pool_session, field_session, snow_session   (motion and object are nuisance)
A decisive value belongs to one class only and never appears in a nuisance pool
(nuisance motions: {motions}; objects: {objects}; scenes: {scenes}).
With probability {prob} a distractor object ({distractors}) stands on the other side.

Files
  videos/<video_id>.mp4        H.264, {size}x{size}, {n_frames} frames at {fps} fps
  annotations.csv              path,label,split
  causes.json                  per-class decisive type/value and nuisance pools, class pairs, settings
  context_labels.csv           video_id,object (';'-joined visible objects),scene
  concepts.json                all object, scene and motion primitive names
  poses_gt/                    ground-truth 2D poses: annotations.csv, skeleton.json,
                               poses/<video_id>.npz (keypoints (T,J,2) px, scores (T,J), size (H,W))

Generated with seed {seed}; {n_videos} videos. The same seed and settings give byte-identical files.
"""


def generate(
    out: Path,
    n_videos: int = 600,
    seed: int = 0,
    size: int = 112,
    n_frames: int = 32,
    fps: int = 15,
    split_fractions: tuple[float, float, float] = (0.6, 0.15, 0.25),
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Render the synthetic dataset into ``out`` and return a summary (counts per class/split, paths)."""
    fractions = _check_settings(n_videos, size, n_frames, fps, split_fractions)
    out = Path(out)
    n_videos, size, n_frames, fps, seed = int(n_videos), int(size), int(n_frames), int(fps), int(seed)
    labels, splits = _assign(n_videos, seed, fractions)
    width = max(5, len(str(n_videos)))
    videos_dir = out / "videos"
    poses_dir = out / "poses_gt" / "poses"
    videos_dir.mkdir(parents=True, exist_ok=True)
    poses_dir.mkdir(parents=True, exist_ok=True)

    ann_rows: list[list[str]] = []
    pose_rows: list[list[str]] = []
    ctx_rows: list[list[str]] = []
    for i in range(n_videos):
        vid = f"v{i + 1:0{width}d}"
        spec = sample_spec(vid, labels[i], seed, i, size, n_frames)
        frames, keypoints, scores = render_video(spec)
        write_video(videos_dir / f"{vid}.mp4", frames, fps)
        _save_npz(
            poses_dir / f"{vid}.npz",
            keypoints=keypoints,
            scores=scores,
            size=np.array([size, size], dtype=np.int64),
        )
        ann_rows.append([f"videos/{vid}.mp4", labels[i], splits[i]])
        pose_rows.append([vid, labels[i], splits[i]])
        ctx_rows.append([vid, ";".join(spec.objects), spec.scene])
        if progress is not None:
            progress(i + 1, n_videos)

    _write_csv(out / "annotations.csv", ["path", "label", "split"], ann_rows)
    _write_csv(out / "poses_gt" / "annotations.csv", ["video_id", "label", "split"], pose_rows)
    skeleton = {"joints": list(JOINTS), "edges": [list(e) for e in EDGES]}
    _write_json(out / "poses_gt" / "skeleton.json", skeleton)
    _write_csv(out / "context_labels.csv", ["video_id", "object", "scene"], ctx_rows)
    _write_json(
        out / "concepts.json",
        {"object": list(OBJECTS), "scene": list(SCENES), "motion_primitives": list(MOTIONS)},
    )
    settings = {
        "n_videos": n_videos,
        "size": size,
        "n_frames": n_frames,
        "fps": fps,
        "split_fractions": list(fractions),
    }
    _write_json(out / "causes.json", {**causes_description(), "seed": seed, "settings": settings})
    _write_bytes(
        out / "README.txt",
        _README.format(
            motions=", ".join(NUISANCE_MOTIONS),
            objects=", ".join(o or "none" for o in NUISANCE_OBJECTS),
            scenes=", ".join(NUISANCE_SCENES),
            prob=DISTRACTOR_PROB,
            distractors=", ".join(DISTRACTORS),
            seed=seed,
            **settings,
        ).encode("utf-8"),
    )

    counts = {c.name: {"train": 0, "val": 0, "test": 0} for c in CLASSES}
    for lab, sp in zip(labels, splits, strict=True):
        counts[lab][sp] += 1
    return {
        "out": str(out),
        "n_videos": n_videos,
        "classes": [c.name for c in CLASSES],
        "counts": counts,
        "splits": {s: sum(c[s] for c in counts.values()) for s in ("train", "val", "test")},
        "annotations": str(out / "annotations.csv"),
        "videos": str(videos_dir),
        "poses": str(out / "poses_gt"),
        "causes": str(out / "causes.json"),
        "context_labels": str(out / "context_labels.csv"),
        "concepts": str(out / "concepts.json"),
    }
