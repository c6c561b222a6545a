"""Pose sources: where the 2D pose of each key-clip frame comes from.

A pose source is anything with a ``skeleton``, a ``fingerprint()`` and ``poses(record, frame_indices)``
(:class:`PoseSource`; file-backed ones also ``sequence(record)``). They are registered by name in
:data:`POSE_SOURCES` (``poses.source``) with :func:`register_pose_source`: :class:`AnnotationPoseSource` reads the
generic pose format (``skeleton.json`` + ``poses/<video_id>.npz``), ``penn-action`` the Penn Action ``.mat``
files, ``mediapipe`` estimates poses from the frames (those two in :mod:`dance.motion.pose_sources`, imported on
the first look-up of a source: their modules import this one).
:func:`pose_source_for` builds the configured one from the ``poses`` settings and the dataset's path.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from dance.config import PoseSettings
from dance.data.index import VideoRecord
from dance.errors import ConfigError, PoseFormatError
from dance.registry import Registry


@dataclass(frozen=True)
class Skeleton:
    """Named joints, the edges between them and optional left/right pairs (indices into ``joints``).

    ``mirror`` lists the joints a horizontal flip swaps; empty means "read the pairs from the joint names"
    (:func:`dance.motion.skeletons.mirror_pairs`)."""

    joints: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    mirror: tuple[tuple[int, int], ...] = ()

    @property
    def n_joints(self) -> int:
        return len(self.joints)

    @classmethod
    def from_json(cls, path: Path) -> Skeleton:
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
            joints = tuple(str(j) for j in d["joints"])
            edges = tuple((int(a), int(b)) for a, b in d.get("edges", []))
            mirror = tuple((int(a), int(b)) for a, b in d.get("mirror", []))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise PoseFormatError(f"{path}: not a skeleton description ({e}); expected "
                                  '{"joints": [names...], "edges": [[i, j], ...], optional "mirror": [[i, j], ...]}'
                                  ) from None
        if not joints:
            raise PoseFormatError(f"{path}: the skeleton has no joints")
        bad = [e for e in edges if not (0 <= e[0] < len(joints) and 0 <= e[1] < len(joints))]
        if bad:
            raise PoseFormatError(f"{path}: edges {bad[:3]} point outside the {len(joints)} joints")
        flat = [i for pair in mirror for i in pair]
        if any(not 0 <= i < len(joints) for i in flat) or len(set(flat)) != len(flat) or any(a == b for a, b in mirror):
            raise PoseFormatError(f"{path}: 'mirror' must pair distinct joints (indices below {len(joints)}), each "
                                  f"joint in at most one pair; got {[list(p) for p in mirror][:5]}")
        return cls(joints, edges, mirror)

    def to_json(self) -> dict:
        out: dict = {"joints": list(self.joints), "edges": [list(e) for e in self.edges]}
        if self.mirror:
            out["mirror"] = [list(p) for p in self.mirror]
        return out


@dataclass
class PoseSequence:
    """Poses of some frames: keypoints (T, J, 2) in pixels, scores (T, J) in [0, 1] (0 = no detection)."""

    keypoints: np.ndarray
    scores: np.ndarray


class PoseSource(Protocol):
    name: str
    skeleton: Skeleton

    def fingerprint(self) -> str: ...

    def poses(self, record: VideoRecord, frame_indices: np.ndarray) -> PoseSequence: ...


class PoseFileSource(PoseSource, Protocol):
    """A pose source backed by files holding whole sequences (no decoding, no estimator)."""

    def sequence(self, record: VideoRecord) -> PoseSequence: ...


@dataclass(frozen=True)
class PoseSourceEntry:
    """How a pose source is built: ``build(folder)`` for one that reads files (``reads`` says what the folder
    holds), ``build()`` for one that reads none (an estimator: ``reads`` is empty). ``marker``: a file whose
    presence makes the dataset's own folder this source's folder (``skeleton.json`` of the generic pose format)."""

    build: Callable[..., PoseSource]
    reads: str = ""
    marker: str = ""


#: ``poses.source`` name → how to build it. ``annotations`` is registered below; the sources with modules of their
#: own (which import this one) are registered by :mod:`dance.motion.pose_sources`, imported on the first look-up.
POSE_SOURCES: Registry[PoseSourceEntry] = Registry("pose source", builtins=("dance.motion.pose_sources",))


def register_pose_source(name: str, description: str, reads: str = "", marker: str = "") -> Callable:
    """Decorator registering a pose-source builder (a class or a function; see :class:`PoseSourceEntry`)."""

    def deco(build: Callable[..., PoseSource]) -> Callable[..., PoseSource]:
        POSE_SOURCES.add(name, PoseSourceEntry(build, reads, marker), description)
        return build

    return deco


def _numeric(path: Path, name: str, value: np.ndarray) -> np.ndarray:
    """``value`` as float32; a non-numeric array (text, objects, complex, dates, records) is a PoseFormatError.
    Values too large for float32 become inf (then "no detection" like NaN), without a warning."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise PoseFormatError(f"{path}: '{name}' must be a numeric array, got dtype {arr.dtype}")
    with np.errstate(over="ignore", invalid="ignore"):
        return arr.astype(np.float32)


def load_pose_file(path: Path, n_joints: int | None = None) -> PoseSequence:
    """Read one ``poses/<video_id>.npz`` of the generic pose format, validating shapes and values."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise PoseFormatError(f"pose file not found: {path}") from None
    except Exception as e:  # OSError, ValueError, zipfile.BadZipFile, EOFError, ...: whatever the bytes are
        raise PoseFormatError(f"{path}: not a pose file with a 'keypoints' array ({type(e).__name__}: {e})") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise PoseFormatError(f"{path}: not a pose file (an .npz archive) but a single array")
    try:
        with loaded as f:
            kp = _numeric(path, "keypoints", f["keypoints"])
            sc = _numeric(path, "scores", f["scores"]) if "scores" in f.files else None
    except PoseFormatError:
        raise
    except Exception as e:  # a missing or unreadable member
        raise PoseFormatError(f"{path}: not a pose file with a 'keypoints' array ({type(e).__name__}: {e})") from None
    if kp.ndim != 3 or kp.shape[2] != 2:
        raise PoseFormatError(f"{path}: keypoints must have shape (T, J, 2), got {kp.shape}")
    if n_joints is not None and kp.shape[1] != n_joints:
        raise PoseFormatError(f"{path}: {kp.shape[1]} joints, but skeleton.json names {n_joints}")
    if sc is None:
        sc = np.ones(kp.shape[:2], dtype=np.float32)
    if sc.shape != kp.shape[:2]:
        raise PoseFormatError(f"{path}: scores shape {sc.shape} does not match keypoints {kp.shape[:2]}")
    bad = ~np.isfinite(kp).all(axis=2)
    sc = np.where(bad | ~np.isfinite(sc), 0.0, np.clip(sc, 0.0, 1.0)).astype(np.float32)
    kp = np.where(bad[..., None], 0.0, kp).astype(np.float32)
    return PoseSequence(kp, sc)


@register_pose_source("annotations", "the generic pose format: ground truth or a cache of an estimator "
                      "(poses.path, or the dataset when it is a pose folder)",
                      reads="a folder in the generic pose format (skeleton.json, poses/<video name>.npz)",
                      marker="skeleton.json")
class AnnotationPoseSource:
    """Poses read from a folder in the generic pose format (ground truth or a cache of an estimator)."""

    name = "annotations"

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)
        if not (self.folder / "skeleton.json").is_file():
            raise PoseFormatError(f"{self.folder}: no skeleton.json (generic pose format expected)")
        self.skeleton = Skeleton.from_json(self.folder / "skeleton.json")

    def fingerprint(self) -> str:
        files = sorted((self.folder / "poses").glob("*.npz"))
        stat = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]
        from dance.runs import stable_hash

        return stable_hash({"folder": str(self.folder.resolve()), "files": stat, "skeleton": self.skeleton.to_json()})

    def _file(self, record: VideoRecord) -> Path:
        for name in (record.video_id, Path(record.path).stem):
            p = self.folder / "poses" / f"{name}.npz"
            if p.is_file():
                return p
        return self.folder / "poses" / f"{record.video_id}.npz"

    def sequence(self, record: VideoRecord) -> PoseSequence:
        return load_pose_file(self._file(record), self.skeleton.n_joints)

    def poses(self, record: VideoRecord, frame_indices: np.ndarray) -> PoseSequence:
        seq = self.sequence(record)
        idx = np.asarray(frame_indices, dtype=np.int64)
        inside = (idx >= 0) & (idx < len(seq.keypoints))
        safe = np.clip(idx, 0, max(len(seq.keypoints) - 1, 0))
        kp = seq.keypoints[safe] if len(seq.keypoints) else np.zeros((len(idx), self.skeleton.n_joints, 2))
        sc = seq.scores[safe] if len(seq.scores) else np.zeros((len(idx), self.skeleton.n_joints))
        sc = np.where(inside[:, None], sc, 0.0)
        return PoseSequence(kp.astype(np.float32), sc.astype(np.float32))


def make_pose_source(name: str, folder: Path | str | None = None) -> PoseSource:
    """The pose source ``name``; one that reads files reads them from ``folder``."""
    entry = POSE_SOURCES.get(name)
    if not entry.reads:
        return entry.build()
    if folder is None:
        raise ConfigError(f"pose source '{name}' reads {entry.reads}: it needs that folder")
    return entry.build(Path(folder))


def pose_folder(name: str, path: Path | str | None, data_path: Path | str) -> Path | None:
    """The folder pose source ``name`` reads: ``path`` when given, else the dataset's folder when it holds the
    source's ``marker`` file (a pose dataset: ``data_path`` is its folder or a file in it), else None."""
    if path:
        return Path(path)
    marker = POSE_SOURCES.get(name).marker
    if not marker:
        return None
    data = Path(data_path)
    candidate = data if data.is_dir() else data.parent
    return candidate if (candidate / marker).is_file() else None


def pose_source_for(poses: PoseSettings, data_path: Path | str) -> PoseSource:
    """The pose source of ``poses.source`` reading ``poses.path`` (or the dataset at ``data_path`` when it is a
    folder in the source's format)."""
    entry = POSE_SOURCES.get(poses.source)
    folder = pose_folder(poses.source, poses.path, data_path)
    if entry.reads and folder is None:
        raise ConfigError(f"poses.source={poses.source} needs poses.path: {entry.reads}")
    return make_pose_source(poses.source, folder)
