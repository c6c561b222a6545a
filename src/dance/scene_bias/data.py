"""Scene-biased synthetic videos: actor × scene clips with known action and scene labels and exact actor masks.

The actor is the figure of :mod:`dance.data.synthetic` (:func:`~dance.data.synthetic.render_actor`, the same
renderer and placement as ``dance synth``), performing one of its periodic motions; the background is one of its
procedural scenes made harder to recognise (colour, texture and clutter jitter: patches of other scenes and
object sprites), so scene accuracy is not saturated.

Pairs (issue 14 item 1; devias_spec.md §4a): action ``i`` has a *main* scene ``scenes[i % S]`` and a *secondary*
scene ``scenes[(i + 1) % S]``; these ``2A`` pairs are the *seen* pairs, every other pair is *unseen*. Sets:

- ``train``: each action in its main scene with probability ``correlation`` (exact proportions), else secondary;
- ``seen``: the train distribution, other clips;
- ``unseen``: the unseen pairs, balanced;
- ``swapped``: the ``seen`` clips (same actor, motion, timing and style) re-rendered on sinusoidal stripes
  (SCUBA's "Sin." backgrounds; scene label ``stripes``);
- ``scene_only``: the ``seen`` clips without their actor (HAT's "scene only"); scene labels only.

On disk (``generate``)::

    annotations.csv            path,label,split,scene,mask,source: train + test (= seen); a DANCE index
    annotations_unseen.csv     the same train rows + test = unseen
    annotations_swapped.csv    the same train rows + test = swapped (scene "stripes", source = the seen clip)
    scene_only.csv             path,label,split,scene,mask,source with split scene_only and an empty label
    videos/<set>/<id>.mp4      H.264 clips
    masks/<set>/<id>.npz       ``mask``: bool (T,H,W), exactly the actor's pixels (all False for scene_only)
    annotations_dance.csv      train + every test set with an action (seen, unseen, swapped) as test: one DANCE
                               run scores all three (:mod:`dance.explain.scene_shift`)
    poses_gt/                  the actors' exact 2D joints in the generic pose format (``poses/<id>.npz``,
                               ``skeleton.json``, ``annotations.csv``): DANCE's motion concepts
    context_labels.csv         ``video_id,object,scene`` of every clip with a scene from the vocabulary (not the
    concepts.json              stripes): DANCE's scene concepts; the vocabulary is the scenes, no objects
    scene_bias.json            actions, scenes, seen / unseen pairs, settings, counts

Every clip has its own seed (from ``seed``, its set and its number): the same settings give the same clips.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from dance.data.synthetic import random_style, render_actor
from dance.data.synthetic.body import EDGES, JOINTS, MOTIONS
from dance.data.synthetic.scene import OBJECTS, SCENES, draw_object, render_background
from dance.data.video import read_video, write_video
from dance.errors import ConfigError, IndexFormatError

__all__ = [
    "DEFAULT_ACTIONS",
    "SETS",
    "ClipSet",
    "ClipSpec",
    "DataSettings",
    "load_sets",
    "pairs",
    "read_manifest",
    "render_clip",
    "scene_background",
    "stripes_background",
    "generate",
    "plan",
]

DEFAULT_ACTIONS: tuple[str, ...] = ("squat", "jumping_jack", "punch", "bow", "march", "side_bend")
SETS: tuple[str, ...] = ("train", "seen", "unseen", "swapped", "scene_only")
STRIPES = "stripes"
MANIFEST = "scene_bias.json"
_SET_KEY = {name: i for i, name in enumerate(SETS)}
_COLUMNS = ["path", "label", "split", "scene", "mask", "source"]


@dataclass(frozen=True)
class DataSettings:
    """What :func:`generate` renders (defaults: the spec's pilot sizes, 6 actions × 6 scenes, 12 seen pairs)."""

    actions: tuple[str, ...] = DEFAULT_ACTIONS
    scenes: tuple[str, ...] = SCENES
    correlation: float = 0.9  # share of an action's train / seen clips in its main scene
    n_train: int = 2400
    n_seen: int = 360  # also the size of swapped and scene_only
    n_unseen: int = 720
    size: int = 64
    n_frames: int = 16
    fps: int = 15
    colour_jitter: float = 0.3  # per-channel gain in [1 - j, 1 + j]
    texture: float = 0.25  # amplitude of a low-frequency multiplicative shading field
    clutter: int = 3  # at most this many patches of other scenes, and at most clutter - 1 object sprites
    noise: int = 6  # per-frame pixel noise in [-noise, noise]
    seed: int = 0

    def check(self) -> DataSettings:
        """The settings, or :class:`ConfigError` naming what is wrong."""
        problems = []
        unknown_a = [a for a in self.actions if a not in MOTIONS]
        unknown_s = [s for s in self.scenes if s not in SCENES]
        if unknown_a:
            problems.append(f"unknown actions {unknown_a} (known: {', '.join(MOTIONS)})")
        if unknown_s:
            problems.append(f"unknown scenes {unknown_s} (known: {', '.join(SCENES)})")
        if len(set(self.actions)) != len(self.actions) or len(set(self.scenes)) != len(self.scenes):
            problems.append("actions and scenes must not repeat")
        if len(self.actions) < 2 or len(self.scenes) < 3:
            problems.append("at least 2 actions and 3 scenes are needed (so that unseen pairs exist)")
        if not 0.5 <= self.correlation <= 1.0:
            problems.append(f"correlation must be in [0.5, 1], got {self.correlation}")
        for name in ("n_train", "n_seen", "n_unseen"):
            if int(getattr(self, name)) < len(self.actions):
                problems.append(f"{name} must be at least the number of actions ({len(self.actions)})")
        if self.size < 32 or self.size % 4:
            problems.append(f"size must be a multiple of 4 and >= 32, got {self.size}")
        if self.n_frames < 2 or self.fps < 1:
            problems.append("n_frames must be >= 2 and fps >= 1")
        if not 0 <= self.colour_jitter < 1 or not 0 <= self.texture < 1 or self.clutter < 0 or self.noise < 0:
            problems.append("colour_jitter and texture must be in [0, 1), clutter and noise >= 0")
        if problems:
            raise ConfigError("scene-bias data: " + "; ".join(problems))
        return self


def pairs(actions: Sequence[str], scenes: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """``main``, ``secondary`` (one pair per action, in action order), ``seen`` (both) and ``unseen`` pairs."""
    n = len(scenes)
    main = [(a, scenes[i % n]) for i, a in enumerate(actions)]
    secondary = [(a, scenes[(i + 1) % n]) for i, a in enumerate(actions)]
    seen = set(main) | set(secondary)
    unseen = [(a, s) for a in actions for s in scenes if (a, s) not in seen]
    return {"main": main, "secondary": secondary, "seen": sorted(seen, key=lambda p: (actions.index(p[0]),
                                                                                       scenes.index(p[1]))),
            "unseen": unseen}


# --------------------------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class ClipSpec:
    """One clip: its set, labels and seed (everything else is drawn from the seed when rendering)."""

    clip_id: str
    set: str
    action: str
    scene: str
    seed: int
    background: str = "scene"  # "scene", "stripes"
    actor: bool = True
    source: str = ""  # the seen clip a swapped / scene_only clip copies


def _clip_seed(seed: int, set_name: str, index: int) -> int:
    ss = np.random.SeedSequence(seed, spawn_key=(_SET_KEY[set_name], index))
    return int(ss.generate_state(1)[0])


def _biased(actions: Sequence[str], main: list, secondary: list, n: int, rho: float,
            rng: np.random.Generator) -> list[tuple[str, str]]:
    """``n`` (action, scene) pairs, actions balanced, each action's main scene in exactly round(rho * n_a)."""
    out: list[tuple[str, str]] = []
    for i, _ in enumerate(actions):
        n_a = n // len(actions) + (1 if i < n % len(actions) else 0)
        n_main = int(round(rho * n_a))
        out += [main[i]] * n_main + [secondary[i]] * (n_a - n_main)
    return [out[j] for j in rng.permutation(len(out))]


def plan(settings: DataSettings) -> dict[str, list[ClipSpec]]:
    """The clips of every set (labels and seeds), without rendering anything."""
    s = settings.check()
    p = pairs(s.actions, s.scenes)
    rng = np.random.default_rng(np.random.SeedSequence(s.seed, spawn_key=(99,)))
    train = _biased(s.actions, p["main"], p["secondary"], s.n_train, s.correlation, rng)
    seen = _biased(s.actions, p["main"], p["secondary"], s.n_seen, s.correlation, rng)
    unseen = [p["unseen"][i % len(p["unseen"])] for i in range(s.n_unseen)]
    unseen = [unseen[j] for j in rng.permutation(len(unseen))]

    def specs(name: str, items: list[tuple[str, str]]) -> list[ClipSpec]:
        w = max(5, len(str(len(items))))
        return [ClipSpec(f"{name}_{i + 1:0{w}d}", name, a, sc, _clip_seed(s.seed, name, i))
                for i, (a, sc) in enumerate(items)]

    out = {"train": specs("train", train), "seen": specs("seen", seen), "unseen": specs("unseen", unseen)}
    out["swapped"] = [ClipSpec("swapped" + c.clip_id[4:], "swapped", c.action, STRIPES, c.seed,
                               background=STRIPES, source=c.clip_id) for c in out["seen"]]
    out["scene_only"] = [ClipSpec("scene_only" + c.clip_id[4:], "scene_only", c.action, c.scene, c.seed,
                                  actor=False, source=c.clip_id) for c in out["seen"]]
    return out


def _smooth_field(rng: np.random.Generator, size: int, cells: int = 4) -> np.ndarray:
    """A smooth random field in [-1, 1] (bilinear upsampling of a ``cells`` × ``cells`` grid)."""
    grid = rng.uniform(0, 255, size=(cells, cells)).astype(np.uint8)
    up = np.asarray(Image.fromarray(grid).resize((size, size), Image.BILINEAR), np.float32)
    return up / 127.5 - 1.0


def scene_background(scene: str, size: int, rng: np.random.Generator, *, colour_jitter: float = 0.3,
                     texture: float = 0.25, clutter: int = 3) -> np.ndarray:
    """``scene`` (a procedural scene of :mod:`dance.data.synthetic.scene`) made harder: up to ``clutter`` patches
    of other scenes and ``clutter - 1`` object sprites, a smooth shading field and a per-channel colour gain."""
    img = render_background(scene, size, rng).astype(np.float32)
    others = [s for s in SCENES if s != scene]
    for _ in range(int(rng.integers(0, clutter + 1))):
        other = render_background(others[int(rng.integers(len(others)))], size, rng).astype(np.float32)
        w, h = (rng.uniform(0.15, 0.45, size=2) * size).astype(int) + 1
        x0, y0 = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
        img[y0:y0 + h, x0:x0 + w] = other[y0:y0 + h, x0:x0 + w]
    n_objects = int(rng.integers(0, max(clutter, 1)))
    if n_objects:
        pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(pil)
        for _ in range(n_objects):
            name = OBJECTS[int(rng.integers(len(OBJECTS)))]
            draw_object(draw, name, float(rng.uniform(0.05, 0.95)) * size, float(rng.uniform(0.5, 1.0)) * size,
                        max(40, int(size * rng.uniform(0.4, 0.8))))  # tiny sprites cannot be drawn
        img = np.asarray(pil, np.float32)
    if texture > 0:
        img *= (1.0 + texture * _smooth_field(rng, size))[..., None]
    gain = rng.uniform(1 - colour_jitter, 1 + colour_jitter, size=3).astype(np.float32)
    return np.clip(img * gain, 0, 255).astype(np.uint8)


def stripes_background(size: int, rng: np.random.Generator, render_size: int = 256) -> np.ndarray:
    """SCUBA's sinusoidal stripes (devias_spec.md §3): a random colour c, stripes of colour 1 - c along
    y = A·sin(ωx + φ) + B, 5–20 px wide, repeated every 3–5 widths, A in [10, 110], randomly rotated; drawn at
    ``render_size`` px and resized to ``size``."""
    c = rng.uniform(0, 1, size=3).astype(np.float32)
    width = float(rng.uniform(5, 20))
    period = width * float(rng.uniform(3, 5))
    amp = float(rng.uniform(10, 110))
    omega = 2 * math.pi / float(rng.uniform(60, 260))
    phi, b = float(rng.uniform(0, 2 * math.pi)), float(rng.uniform(0, period))
    theta = float(rng.uniform(0, math.pi))
    v, u = np.mgrid[0:render_size, 0:render_size].astype(np.float32) - render_size / 2
    x = u * math.cos(theta) - v * math.sin(theta)
    y = u * math.sin(theta) + v * math.cos(theta)
    on = np.mod(y - amp * np.sin(omega * x + phi) - b, period) < width
    img = np.where(on[..., None], 1.0 - c, c) * 255.0
    small = Image.fromarray(img.astype(np.uint8)).resize((size, size), Image.BOX)
    return np.asarray(small, np.uint8)


def render_clip(spec: ClipSpec, settings: DataSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Frames uint8 (T,H,W,3), the exact actor mask bool (T,H,W) and the actor's joints float32 (T,J,2) in
    pixels (``None`` without an actor) of ``spec``.

    The actor (motion, style, scale, shift, period, phase) and the per-frame noise come from the clip's seed
    only, so a ``seen`` clip and its ``swapped`` / ``scene_only`` copies share them; the scene background is
    drawn from a second stream of the same seed, the stripes from a third.
    """
    s = settings
    ss = np.random.SeedSequence(spec.seed)
    actor_rng, scene_rng, stripes_rng = (np.random.default_rng(c) for c in ss.spawn(3))
    style = random_style(actor_rng)
    scale, shift = float(actor_rng.uniform(0.85, 1.15)), float(actor_rng.uniform(-0.15, 0.15))
    period, phase0 = float(actor_rng.uniform(5.0, 10.0)) * s.n_frames / 8, float(actor_rng.random())
    noise = actor_rng.integers(-s.noise, s.noise + 1, size=(s.n_frames, s.size, s.size, 3), dtype=np.int16)
    if spec.background == STRIPES:
        bg = stripes_background(s.size, stripes_rng)
    else:
        bg = scene_background(spec.scene if spec.background == "scene" else spec.background, s.size, scene_rng,
                              colour_jitter=s.colour_jitter, texture=s.texture, clutter=s.clutter)
    if spec.actor:
        actor, mask, keypoints = render_actor(spec.action, size=s.size, n_frames=s.n_frames, scale=scale,
                                              shift=shift, period=period, phase0=phase0, style=style)
        frames = np.where(mask[..., None], actor, bg[None])
    else:
        mask, keypoints = np.zeros((s.n_frames, s.size, s.size), bool), None
        frames = np.broadcast_to(bg, (s.n_frames, s.size, s.size, 3))
    frames = np.clip(frames.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return frames, mask, keypoints


# --------------------------------------------------------------------------------------------- writing


def _write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _write_csv(path: Path, rows: list[list[str]], columns: Sequence[str] = _COLUMNS) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    _write_bytes(path, buf.getvalue().encode("utf-8"))


def _save_pose(path: Path, keypoints: np.ndarray, size: int) -> None:
    """One clip's joints in the generic pose format: keypoints (T,J,2), scores (1 inside the frame), size."""
    inside = ((keypoints >= 0) & (keypoints <= size - 1)).all(axis=-1)
    buf = io.BytesIO()
    np.savez_compressed(buf, keypoints=keypoints.astype(np.float32), scores=inside.astype(np.float32),
                        size=np.array([size, size], np.int64))
    _write_bytes(path, buf.getvalue())


def _save_mask(path: Path, mask: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, mask=mask)
    _write_bytes(path, buf.getvalue())


def generate(out: Path | str, settings: DataSettings | None = None,
             progress: Callable[[int, int], None] | None = None) -> dict:
    """Render every set into ``out`` (layout in the module docstring); returns the manifest."""
    s = (settings or DataSettings()).check()
    out = Path(out)
    sets = plan(s)
    total = sum(len(v) for v in sets.values())
    rows: dict[str, list[list[str]]] = {}
    pose_rows: list[list[str]] = []
    context_rows: list[list[str]] = []
    done = 0
    for name, specs in sets.items():
        rows[name] = []
        for spec in specs:
            frames, mask, keypoints = render_clip(spec, s)
            video, mask_path = f"videos/{name}/{spec.clip_id}.mp4", f"masks/{name}/{spec.clip_id}.npz"
            write_video(out / video, frames, s.fps)
            _save_mask(out / mask_path, mask)
            label = spec.action if spec.actor else ""
            split = {"train": "train", "seen": "test", "unseen": "test", "swapped": "test"}.get(name, name)
            source = f"videos/seen/{spec.source}.mp4" if spec.source else ""
            rows[name].append([video, label, split, spec.scene, mask_path, source])
            if keypoints is not None:
                _save_pose(out / "poses_gt" / "poses" / f"{spec.clip_id}.npz", keypoints, s.size)
                pose_rows.append([spec.clip_id, label, split])
            if spec.scene in s.scenes:
                context_rows.append([spec.clip_id, "", spec.scene])
            done += 1
            if progress is not None:
                progress(done, total)
    _write_csv(out / "annotations.csv", rows["train"] + rows["seen"])
    _write_csv(out / "annotations_unseen.csv", rows["train"] + rows["unseen"])
    _write_csv(out / "annotations_swapped.csv", rows["train"] + rows["swapped"])
    _write_csv(out / "scene_only.csv", rows["scene_only"])
    _write_csv(out / "annotations_dance.csv", rows["train"] + rows["seen"] + rows["unseen"] + rows["swapped"])
    _write_csv(out / "poses_gt" / "annotations.csv", pose_rows, ("video_id", "label", "split"))
    _write_bytes(out / "poses_gt" / "skeleton.json",
                 (json.dumps({"joints": list(JOINTS), "edges": [list(e) for e in EDGES]}) + "\n").encode())
    _write_csv(out / "context_labels.csv", context_rows, ("video_id", "object", "scene"))
    _write_bytes(out / "concepts.json", (json.dumps({"object": [], "scene": list(s.scenes)}) + "\n").encode())
    p = pairs(s.actions, s.scenes)
    manifest = {
        "actions": list(s.actions),
        "scenes": list(s.scenes),
        "pairs": {k: [list(x) for x in v] for k, v in p.items()},
        "counts": {name: len(v) for name, v in sets.items()},
        "files": {"train": "annotations.csv", "seen": "annotations.csv", "unseen": "annotations_unseen.csv",
                  "swapped": "annotations_swapped.csv", "scene_only": "scene_only.csv",
                  "dance": "annotations_dance.csv", "poses": "poses_gt", "context_labels": "context_labels.csv"},
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(s).items()},
    }
    _write_bytes(out / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
    return manifest


# --------------------------------------------------------------------------------------------- reading


def read_manifest(root: Path | str) -> dict:
    """``root/scene_bias.json``, or :class:`IndexFormatError` when it is missing or malformed."""
    path = Path(root) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise IndexFormatError(f"{path}: not a scene-bias dataset ({e}); make one with `dance scene-bias data`") \
            from None
    if not isinstance(manifest, dict) or not {"actions", "scenes", "pairs", "files"} <= set(manifest):
        raise IndexFormatError(f"{path}: not a scene-bias manifest (needs actions, scenes, pairs, files)")
    return manifest


@dataclass
class ClipSet:
    """Decoded clips of one set, ready for a model: ``x`` uint8 (N,T,H,W,3), ``masks`` float32 (N,T,H,W)
    (actor fraction of each pixel after downsampling), ``action`` / ``scene`` int64 (N,) (-1 = none);
    ``scene_probs`` float32 (N, S): a scene teacher's probabilities (:mod:`dance.scene_bias.teacher`), which
    training then fits instead of ``scene``."""

    name: str
    x: np.ndarray
    masks: np.ndarray
    action: np.ndarray
    scene: np.ndarray
    ids: list[str] = field(default_factory=list)
    scene_probs: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.x)


def _downsample(a: np.ndarray, f: int) -> np.ndarray:
    """Area downsampling of the two axes after the first by an integer factor ``f`` (mean of f × f blocks)."""
    if f == 1:
        return a.astype(np.float32)
    t, h, w = a.shape[:3]
    rest = a.shape[3:]
    return a.reshape(t, h // f, f, w // f, f, *rest).astype(np.float32).mean(axis=(2, 4))


def _rows(root: Path, file: str, split: str | None) -> list[dict[str, str]]:
    path = root / file
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as e:
        raise IndexFormatError(f"{path}: cannot read ({e})") from None
    if rows and not set(_COLUMNS) <= set(rows[0]):
        raise IndexFormatError(f"{path}: needs the columns {','.join(_COLUMNS)}")
    return [r for r in rows if split is None or r["split"] == split]


def load_sets(root: Path | str, names: Sequence[str] = SETS, *, n_frames: int = 8, size: int = 32,
              progress: Callable[[int, int], None] | None = None) -> tuple[dict[str, ClipSet], dict]:
    """Decode the sets ``names`` of a dataset written by :func:`generate`: ``n_frames`` frames at a fixed stride
    from the start of each clip, area-downsampled to ``size`` px (an integer factor), with the masks the same
    way. Returns the sets and the manifest."""
    root = Path(root)
    manifest = read_manifest(root)
    actions = {a: i for i, a in enumerate(manifest["actions"])}
    scenes = {s: i for i, s in enumerate(manifest["scenes"])}
    split_of = {"train": "train", "seen": "test", "unseen": "test", "swapped": "test", "scene_only": "scene_only"}
    todo = {n: _rows(root, manifest["files"][n], split_of[n]) for n in names}
    total, done = sum(len(v) for v in todo.values()), 0
    out: dict[str, ClipSet] = {}
    for name, rows in todo.items():
        xs, ms, acts, scs, ids = [], [], [], [], []
        for r in rows:
            frames = read_video(root / r["path"])
            stride = max(1, len(frames) // n_frames)
            frames = frames[::stride][:n_frames]
            if len(frames) < n_frames or frames.shape[1] % size:
                raise IndexFormatError(f"{root / r['path']}: {len(frames)} frames of {frames.shape[1]} px cannot "
                                       f"give {n_frames} frames of {size} px")
            with np.load(root / r["mask"]) as z:
                mask = z["mask"][::stride][:n_frames]
            f = frames.shape[1] // size
            xs.append(np.clip(np.round(_downsample(frames, f)), 0, 255).astype(np.uint8))
            ms.append(_downsample(mask, f))
            acts.append(actions[r["label"]] if r["label"] else -1)
            scs.append(scenes.get(r["scene"], -1))
            ids.append(Path(r["path"]).stem)
            done += 1
            if progress is not None:
                progress(done, total)
        out[name] = ClipSet(name, np.stack(xs), np.stack(ms).astype(np.float32), np.asarray(acts, np.int64),
                            np.asarray(scs, np.int64), ids)
    return out, manifest
