"""Background-swapped copies of any video index, SCUBA-style (Li et al., ICCV 2023; devias_spec.md §3, §4b).

Each video keeps its actor and loses its scene: ``frame' = frame · M + background · (1 − M)`` with one static
background per video, so the action label stays and the place becomes uninformative (or misleading).

**Actor masks.** A scene-bias data set (``dance scene-bias data``) stores the exact mask of every clip (its
``mask`` column): those are used as they are. Any other video gets MediaPipe Pose's person segmentation from the
pose graph itself (:meth:`dance.motion.mediapipe_source.MediaPipePoseSource.person_masks`; the ``pose`` extra),
then the spec's recipe: threshold 0.5, dilate by ``dilate`` pixels, OR over ±1 frame; a video is kept only when at
least ``min_frames`` of its frames have a mask covering ``min_area`` of the frame (SCUBA keeps Kinetics videos at
90 % of frames and 10 % of the area; 3 % suits small actors). A video that fails (decode error, too little
person) is a reported skip with its reason; the others are written as they finish.

**Backgrounds.** ``stripes``: SCUBA's sinusoidal stripes ("Sin."); ``scenes``: the project's procedural scenes
(:func:`dance.scene_bias.data.scene_background`); ``videos``: the middle frame of another video of the index.

Output: ``OUT/videos/<video id>.mp4``, ``OUT/annotations.csv`` (``path,label,split,source,background``: the same
labels and splits, ``source`` the original video), ``OUT/swap.json`` (settings, kept / skipped counts, the reason
of every skip, the mean mask coverage of each kept video).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import maximum_filter

from dance.data.index import VideoRecord
from dance.data.synthetic.scene import SCENES
from dance.data.video import read_video, video_info, write_video
from dance.errors import ConfigError, DanceError
from dance.runs import atomic_write_bytes, atomic_write_json
from dance.scene_bias.data import scene_background, stripes_background

__all__ = ["BACKGROUNDS", "SwapSettings", "actor_masks", "composite", "swap_index"]

BACKGROUNDS = ("stripes", "scenes", "videos")


@dataclass(frozen=True)
class SwapSettings:
    """How :func:`swap_index` makes its copies (defaults: devias_spec.md §4b)."""

    background: str = "stripes"
    threshold: float = 0.5
    dilate: int = 2  # pixels
    min_area: float = 0.03  # a frame "has the actor" when its mask covers this share of the frame
    min_frames: float = 0.9  # a video is kept when this share of its frames has the actor
    max_frames: int | None = None  # only the first frames of each video (None: all)
    seed: int = 0

    def check(self) -> SwapSettings:
        problems = []
        if self.background not in BACKGROUNDS:
            problems.append(f"background must be one of {', '.join(BACKGROUNDS)}, got '{self.background}'")
        if not 0 < self.threshold < 1 or not 0 <= self.min_area < 1 or not 0 <= self.min_frames <= 1:
            problems.append("threshold and min_area must be in (0, 1) and [0, 1), min_frames in [0, 1]")
        if self.dilate < 0 or (self.max_frames is not None and self.max_frames < 1):
            problems.append("dilate must be >= 0 and max_frames >= 1")
        if problems:
            raise ConfigError("swap: " + "; ".join(problems))
        return self


def actor_masks(soft: np.ndarray, settings: SwapSettings) -> np.ndarray:
    """The spec's recipe on soft person masks (T,H,W) in [0, 1]: threshold, dilate, OR over ±1 frame."""
    m = np.asarray(soft) >= settings.threshold
    if settings.dilate > 0:  # a (2r+1)-pixel square in each frame, not across frames
        side = 2 * settings.dilate + 1
        m = maximum_filter(m, size=(1, side, side), mode="constant", cval=False)
    out = m.copy()
    out[1:] |= m[:-1]
    out[:-1] |= m[1:]
    return out


def composite(frames: np.ndarray, mask: np.ndarray, background: np.ndarray) -> np.ndarray:
    """``frames · M + background · (1 − M)`` with one static background (H,W,3) for every frame."""
    return np.where(mask[..., None], frames, background[None]).astype(np.uint8)


def _fit(img: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.asarray(Image.fromarray(img).resize((width, height), Image.BILINEAR), np.uint8)


def _background(kind: str, height: int, width: int, rng: np.random.Generator,
                others: Sequence[VideoRecord]) -> tuple[np.ndarray, str]:
    side = max(height, width)
    if kind == "stripes":
        return _fit(stripes_background(side, rng), height, width), "stripes"
    if kind == "scenes":
        scene = SCENES[int(rng.integers(len(SCENES)))]
        return _fit(scene_background(scene, side, rng), height, width), f"scene:{scene}"
    for _ in range(5):  # videos: the middle frame of another video (one that decodes)
        rec = others[int(rng.integers(len(others)))]
        try:
            n = int(video_info(rec.path)["frames"])
            frames = read_video(rec.path, max_frames=max(1, n // 2 + 1))
            return _fit(frames[-1], height, width), f"video:{rec.video_id}"
        except (DanceError, OSError, KeyError, ValueError):
            continue
    raise DanceError("no other video of the index could be decoded for a background")


def _exact_masks(index_csv: Path) -> dict[str, Path]:
    """``video path -> mask file`` from a scene-bias index (its ``mask`` column), else empty."""
    try:
        with index_csv.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error):
        return {}
    if not rows or "mask" not in rows[0] or "path" not in rows[0]:
        return {}
    root = index_csv.parent
    return {str((root / r["path"]).resolve()): root / r["mask"] for r in rows if r.get("mask")}


def swap_index(records: Sequence[VideoRecord], out: Path | str, settings: SwapSettings | None = None, *,
               index_csv: Path | None = None, masker: Callable[[np.ndarray, str], np.ndarray] | None = None,
               progress: Callable[[int, int], None] | None = None) -> dict:
    """Write the swapped copies of ``records`` into ``out`` (layout in the module docstring); returns swap.json.

    ``masker(frames, where)`` gives soft person masks (T,H,W); default: MediaPipe (built on first need, so a
    scene-bias data set with exact masks needs no mediapipe). ``index_csv``: the index file, read for a ``mask``
    column of exact masks.
    """
    s = (settings or SwapSettings()).check()
    out = Path(out)
    exact = _exact_masks(Path(index_csv)) if index_csv is not None else {}
    rows: list[list[str]] = []
    skipped: dict[str, str] = {}
    coverage: dict[str, float] = {}
    for n, rec in enumerate(records):
        try:
            frames = read_video(rec.path, max_frames=s.max_frames)
            fps = max(1, int(round(float(video_info(rec.path).get("fps") or 25))))
            key = str(Path(rec.path).resolve())
            if key in exact:
                with np.load(exact[key]) as z:
                    mask = np.asarray(z["mask"], bool)[:len(frames)]
                if mask.shape != frames.shape[:3]:
                    raise DanceError(f"its mask {exact[key].name} has shape {mask.shape}, the video {frames.shape[:3]}")
            else:
                if masker is None:
                    from dance.motion.mediapipe_source import MediaPipePoseSource

                    masker = MediaPipePoseSource().person_masks
                mask = actor_masks(masker(frames, rec.video_id), s)
            area = mask.mean(axis=(1, 2))
            have = float((area >= s.min_area).mean())
            if have < s.min_frames:
                raise DanceError(f"the actor covers {100 * s.min_area:g} % of the frame in {100 * have:.0f} % of its "
                                 f"frames (needs {100 * s.min_frames:g} %): too little person to keep")
            rng = np.random.default_rng(np.random.SeedSequence(s.seed, spawn_key=(n,)))
            others = [r for r in records if r.video_id != rec.video_id] or list(records)
            bg, what = _background(s.background, frames.shape[1], frames.shape[2], rng, others)
            rel = f"videos/{rec.video_id}.mp4"
            write_video(out / rel, composite(frames, mask, bg), fps)
            rows.append([rel, rec.label, rec.split, str(rec.path), what])
            coverage[rec.video_id] = round(float(area.mean()), 4)
        except (DanceError, OSError, ValueError) as e:
            skipped[rec.video_id] = str(e)
        if progress is not None:
            progress(n + 1, len(records))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", "label", "split", "source", "background"])
    writer.writerows(rows)
    atomic_write_bytes(out / "annotations.csv", buf.getvalue().encode("utf-8"))
    summary = {"settings": asdict(s), "kept": len(rows), "skipped": len(skipped), "skipped_videos": skipped,
               "mask_source": "exact" if exact else "mediapipe", "coverage": coverage}
    atomic_write_json(out / "swap.json", summary)
    return summary
