"""Penn Action adapter: read its MATLAB label files, build an index, export the generic pose format.

Penn Action (Zhang, Zhu, Derpanis, ICCV 2013) ships one ``labels/<id>.mat`` per video (MATLAB v5, read with
:func:`scipy.io.loadmat`) holding ``action`` (class name), ``pose`` (camera view), ``train`` (1 = train,
-1 = test: the official split), ``x`` / ``y`` (frames × 13, pixels), ``visibility`` (frames × 13, 0/1),
``bbox``, ``dimensions`` (H, W, T) and ``nframes``. ``nframes`` is not trusted (it is stored as ``uint8`` in
some files, which cannot hold more than 255 frames): the frame count is always ``x.shape[0]``. RGB frames
(``frames/<id>/000001.jpg``) are optional and not read here.

Three ways to use it:

- :func:`load_penn_action`: a :class:`~dance.data.index.VideoIndex` whose records point at the ``.mat`` files
  (official split, plus a seeded stratified val split taken from train) and the parsed sequences;
- :class:`PennPoseSource`: a pose source reading the ``.mat`` files directly (layout ``penn-13``);
- :func:`export_generic`: the generic pose format (``annotations.csv``, ``skeleton.json``,
  ``poses/<id>.npz``), read by :class:`~dance.motion.poses.AnnotationPoseSource` like any other pose dataset.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dance.data.index import MAX_REPORTED_PROBLEMS, VideoIndex, VideoRecord, make_val_split
from dance.errors import IndexFormatError, PoseFormatError
from dance.motion.poses import PoseSequence
from dance.motion.skeletons import PENN_13

__all__ = [
    "PENN_CLASSES",
    "PENN_JOINTS",
    "PennPoseSource",
    "PennSequence",
    "export_generic",
    "load_penn_action",
    "read_penn_mat",
]

#: The 15 Penn Action classes (sorted).
PENN_CLASSES: tuple[str, ...] = (
    "baseball_pitch",
    "baseball_swing",
    "bench_press",
    "bowl",
    "clean_and_jerk",
    "golf_swing",
    "jump_rope",
    "jumping_jacks",
    "pullup",
    "pushup",
    "situp",
    "squat",
    "strum_guitar",
    "tennis_forehand",
    "tennis_serve",
)
#: Joint order of the ``x`` / ``y`` / ``visibility`` columns (the ``penn-13`` layout).
PENN_JOINTS: tuple[str, ...] = PENN_13.joints

_REQUIRED = ("action", "train", "x", "y", "visibility")
_SPLITS = {1: "train", -1: "test"}


@dataclass
class PennSequence:
    """One Penn Action video's annotation.

    Attributes:
        video_id: the file name without extension (``0001``).
        action: class name.
        split: the official split, ``train`` or ``test`` (a val split is only made in the index).
        keypoints: (T, 13, 2) float32 pixel coordinates ``(x, y)``, joints in :data:`PENN_JOINTS` order.
        scores: (T, 13) float32, the visibility (1 visible, 0 not); an invisible joint keeps its coordinates.
        size: ``(H, W)`` of the video in pixels (from ``dimensions``; ``(0, 0)`` when absent).
        n_frames: ``T`` = ``x.shape[0]`` (the stored ``nframes`` is ignored).
        view: the camera view (``pose`` field: ``front``, ``back``, ...; empty when absent).
    """

    video_id: str
    action: str
    split: str
    keypoints: np.ndarray
    scores: np.ndarray
    size: tuple[int, int]
    n_frames: int
    view: str = ""


# --- one file


def _text(value: object) -> str:
    """A MATLAB char array (as loaded by scipy) as a stripped Python string."""
    arr = np.asarray(value)
    if arr.size == 0:
        return ""
    if arr.dtype.kind in "US":
        item = arr.ravel()[0]
        return (item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item)).strip()
    if arr.dtype == object:
        return _text(arr.ravel()[0])
    return ""


def _scalar(value: object) -> float | None:
    arr = np.asarray(value)
    if arr.size != 1 or arr.dtype.kind not in "biuf":
        return None
    return float(arr.ravel()[0])


def read_penn_mat(path: Path | str) -> PennSequence:
    """Parse and validate one Penn Action ``.mat`` label file.

    Raises:
        PoseFormatError: naming the file, when it is missing, unreadable or corrupt, lacks a required field
            (``action``, ``train``, ``x``, ``y``, ``visibility``), has an unknown ``train`` value, ``x`` / ``y`` /
            ``visibility`` that are not (T, 13) arrays of the same shape, or no frames.
    """
    from scipy.io import loadmat

    path = Path(path)
    try:
        data = loadmat(str(path), squeeze_me=False, struct_as_record=True)
    except FileNotFoundError:
        raise PoseFormatError(f"{path}: Penn Action label file not found") from None
    except Exception as e:  # scipy raises many types (ValueError, TypeError, MatReadError, ...) on bad files
        raise PoseFormatError(f"{path}: not a readable MATLAB label file ({type(e).__name__}: {e})") from None

    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise PoseFormatError(f"{path}: missing field(s) {', '.join(missing)} (a Penn Action label file has "
                              f"{', '.join(_REQUIRED)}, dimensions)")
    action = _text(data["action"])
    if not action:
        raise PoseFormatError(f"{path}: empty or non-text 'action' field")
    train = _scalar(data["train"])
    if train is None or int(train) not in _SPLITS or train != int(train):
        raise PoseFormatError(f"{path}: 'train' must be 1 (train) or -1 (test), got {np.asarray(data['train'])!r}")
    split = _SPLITS[int(train)]

    arrays: dict[str, np.ndarray] = {}
    for key in ("x", "y", "visibility"):
        arr = np.asarray(data[key])
        if arr.dtype.kind not in "biuf":
            raise PoseFormatError(f"{path}: '{key}' is not numeric (dtype {arr.dtype})")
        if arr.ndim != 2 or arr.shape[1] != len(PENN_JOINTS):
            raise PoseFormatError(
                f"{path}: '{key}' must have shape (frames, {len(PENN_JOINTS)}), got {arr.shape}"
            )
        arrays[key] = arr
    x, y, vis = arrays["x"], arrays["y"], arrays["visibility"]
    if y.shape != x.shape:
        raise PoseFormatError(f"{path}: 'x' has shape {x.shape} but 'y' has shape {y.shape}")
    if vis.shape != x.shape:
        raise PoseFormatError(f"{path}: 'visibility' has shape {vis.shape} but 'x' has shape {x.shape}")
    n_frames = int(x.shape[0])  # never the stored 'nframes' (uint8 in some files)
    if n_frames == 0:
        raise PoseFormatError(f"{path}: empty sequence (0 frames)")

    kp = np.stack([x, y], axis=2).astype(np.float64)
    finite = np.isfinite(kp).all(axis=2)
    vis_f = vis.astype(np.float64)
    scores = np.where(finite & np.isfinite(vis_f) & (vis_f > 0), 1.0, 0.0).astype(np.float32)
    kp = np.where(finite[..., None], kp, 0.0).astype(np.float32)

    size = (0, 0)
    if "dimensions" in data:
        dims = np.asarray(data["dimensions"]).ravel()
        if dims.size >= 2 and dims.dtype.kind in "biuf" and np.isfinite(dims[:2].astype(float)).all():
            size = (int(dims[0]), int(dims[1]))
    view = _text(data["pose"]) if "pose" in data else ""
    return PennSequence(
        video_id=path.stem,
        action=action,
        split=split,
        keypoints=kp,
        scores=scores,
        size=size,
        n_frames=n_frames,
        view=view,
    )


# --- a dataset folder


def _labels_dir(root: Path) -> Path:
    """``root/labels``, or ``root`` itself when it directly holds the ``.mat`` files."""
    root = Path(root).expanduser()
    if (root / "labels").is_dir():
        return root / "labels"
    if root.is_dir() and any(root.glob("*.mat")):
        return root
    raise IndexFormatError(f"{root}: not a Penn Action folder (no labels/ folder with <id>.mat files)")


def _scan(
    root: Path, limit_per_class: int | None
) -> tuple[Path, list[tuple[Path, PennSequence]], dict[str, str]]:
    """Parse every label file under ``root``; returns (labels dir, parsed files in id order, skipped → reason)."""
    if limit_per_class is not None and limit_per_class < 1:
        raise IndexFormatError(f"limit_per_class must be >= 1 or None, got {limit_per_class}")
    labels = _labels_dir(root)
    files = sorted(p for p in labels.glob("*.mat") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise IndexFormatError(f"{labels}: no .mat label files")
    parsed: list[tuple[Path, PennSequence]] = []
    skipped: dict[str, str] = {}
    taken: dict[tuple[str, str], int] = {}
    for p in files:
        try:
            seq = read_penn_mat(p)
        except PoseFormatError as e:
            skipped[p.name] = str(e)
            continue
        key = (seq.action, seq.split)
        if limit_per_class is not None and taken.get(key, 0) >= limit_per_class:
            continue
        taken[key] = taken.get(key, 0) + 1
        parsed.append((p, seq))
    return labels, parsed, skipped


def _build_index(
    labels: Path, parsed: list[tuple[Path, PennSequence]], val_fraction: float, seed: int
) -> VideoIndex:
    if not parsed:
        raise IndexFormatError(f"{labels}: no readable Penn Action label files")
    records = [VideoRecord(seq.video_id, p.absolute(), seq.action, seq.split) for p, seq in parsed]
    present = {r.label for r in records}
    classes = [c for c in PENN_CLASSES if c in present] + sorted(present - set(PENN_CLASSES))
    train_labels = {r.label for r in records if r.split == "train"}
    orphans = sorted(present - train_labels)
    if orphans:
        raise IndexFormatError(
            f"{labels}: class(es) {', '.join(orphans)} have test videos but none in train: "
            "the model could never predict them"
        )
    root = labels.parent if labels.name == "labels" else labels
    index = VideoIndex(root=root.resolve(), records=records, classes=classes, source=f"penn-action:{labels}")
    if val_fraction and val_fraction > 0:
        index = make_val_split(index, val_fraction, seed)
    return index


def _skipped_message(labels: Path, skipped: dict[str, str]) -> str:
    lines = [f"{labels}: {len(skipped)} unreadable label file(s):"]
    lines += [f"  {reason}" for reason in list(skipped.values())[:MAX_REPORTED_PROBLEMS]]
    if len(skipped) > MAX_REPORTED_PROBLEMS:
        lines.append(f"  ... and {len(skipped) - MAX_REPORTED_PROBLEMS} more")
    return "\n".join(lines)


def load_penn_action(
    root: Path | str,
    val_fraction: float = 0.15,
    seed: int = 0,
    limit_per_class: int | None = None,
) -> tuple[VideoIndex, dict[str, PennSequence]]:
    """Index and parse a Penn Action folder.

    Args:
        root: the dataset folder holding ``labels/`` (the ``labels`` folder itself is accepted too).
        val_fraction: share of each class's train videos moved to a ``val`` split (seeded, stratified, by
            :func:`~dance.data.index.make_val_split`); 0 keeps the official train/test split only.
        seed: seed of the val split.
        limit_per_class: keep at most this many videos per class *in each official split* (the lowest ids),
            for quick experiments; ``None`` keeps all.

    Returns:
        The index (records point at the ``.mat`` files; video id = file stem; classes in
        :data:`PENN_CLASSES` order) and the parsed sequences by video id (``split`` there is the official one).

    Raises:
        IndexFormatError: no label folder or files, a label file that cannot be read (all of them are listed,
            each with its reason; use :func:`export_generic` to skip them instead), a class without train videos.
    """
    labels, parsed, skipped = _scan(Path(root), limit_per_class)
    if skipped:
        raise IndexFormatError(_skipped_message(labels, skipped))
    index = _build_index(labels, parsed, val_fraction, seed)
    return index, {seq.video_id: seq for _, seq in parsed}


def _write_csv(path: Path, header: list[str], rows: Iterable[list[str]]) -> None:
    from dance.runs import atomic_write_text

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def export_generic(
    root: Path | str,
    out: Path | str,
    *,
    val_fraction: float = 0.15,
    seed: int = 0,
    limit_per_class: int | None = None,
) -> Path:
    """Write Penn Action in the generic pose format, readable by :class:`~dance.motion.poses.AnnotationPoseSource`.

    ``out`` receives ``annotations.csv`` (``video_id,label,split``: the official split plus the val split of
    :func:`load_penn_action`), ``skeleton.json`` (the ``penn-13`` layout) and ``poses/<id>.npz`` (``keypoints``
    (T, 13, 2) float32, ``scores`` (T, 13) float32 = visibility, ``size`` (H, W) int64). Each file is written
    atomically (temporary file + rename), the csv last. Label files that cannot be read are skipped and listed
    with their reason in ``out/skipped.json`` (``{file name: reason}``; a stale one is removed when nothing is
    skipped). Keyword arguments are those of :func:`load_penn_action`.

    Returns:
        ``out``.

    Raises:
        IndexFormatError: no label folder, or no readable label file at all.
    """
    from dance.runs import atomic_write_bytes, atomic_write_json

    out = Path(out).expanduser()
    labels, parsed, skipped = _scan(Path(root), limit_per_class)
    index = _build_index(labels, parsed, val_fraction, seed)
    seqs = {seq.video_id: seq for _, seq in parsed}
    for rec in index.records:
        seq = seqs[rec.video_id]
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            keypoints=seq.keypoints.astype(np.float32),
            scores=seq.scores.astype(np.float32),
            size=np.asarray(seq.size, dtype=np.int64),
        )
        atomic_write_bytes(out / "poses" / f"{rec.video_id}.npz", buf.getvalue())
    atomic_write_json(out / "skeleton.json", PENN_13.to_json())
    skipped_file = out / "skipped.json"
    if skipped:
        atomic_write_json(skipped_file, skipped)
    else:
        skipped_file.unlink(missing_ok=True)
    _write_csv(out / "annotations.csv", ["video_id", "label", "split"],
               ([r.video_id, r.label, r.split] for r in index.records))
    return out


# --- pose source


class PennPoseSource:
    """Pose source reading Penn Action ``.mat`` label files directly (layout ``penn-13``).

    The file of a record is ``record.path`` when that is an existing ``.mat`` file (records of
    :func:`load_penn_action`), else ``<labels>/<video_id>.mat``. Parsed files are cached in memory. Frames
    outside the sequence get score 0.
    """

    name = "penn-action"
    skeleton = PENN_13

    def __init__(self, root: Path | str):
        self.root = Path(root).expanduser()
        self.labels = _labels_dir(self.root)
        self._cache: dict[Path, PennSequence] = {}

    def fingerprint(self) -> str:
        """Hash of the labels folder and its files' names, sizes and modification times."""
        from dance.runs import stable_hash

        files = sorted(self.labels.glob("*.mat"))
        stat = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]
        return stable_hash({"source": self.name, "folder": str(self.labels.resolve()), "files": stat,
                            "skeleton": self.skeleton.to_json()})

    def _file(self, record: VideoRecord) -> Path:
        p = Path(record.path)
        if p.suffix.lower() == ".mat" and p.is_file():
            return p
        return self.labels / f"{record.video_id}.mat"

    def sequence(self, record: VideoRecord) -> PennSequence:
        """The parsed (cached) label file of ``record``."""
        p = self._file(record)
        key = p.absolute()
        if key not in self._cache:
            self._cache[key] = read_penn_mat(p)
        return self._cache[key]

    def poses(self, record: VideoRecord, frame_indices: np.ndarray) -> PoseSequence:
        """Keypoints (len(frame_indices), 13, 2) and scores of the given frames."""
        seq = self.sequence(record)
        idx = np.asarray(frame_indices, dtype=np.int64).reshape(-1)
        inside = (idx >= 0) & (idx < seq.n_frames)
        safe = np.clip(idx, 0, seq.n_frames - 1)
        kp = seq.keypoints[safe]
        sc = np.where(inside[:, None], seq.scores[safe], 0.0)
        return PoseSequence(kp.astype(np.float32), sc.astype(np.float32))

    def __repr__(self) -> str:
        return f"PennPoseSource({str(self.root)!r})"

