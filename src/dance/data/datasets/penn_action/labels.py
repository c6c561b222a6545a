"""Penn Action's MATLAB label files: parse one (:func:`read_penn_mat`), scan a folder (:func:`scan_labels`), and
the index of the label files themselves (:func:`load_penn_action`, for the pose-only use of the dataset).

Penn Action (Zhang, Zhu, Derpanis, ICCV 2013) ships one ``labels/<id>.mat`` per video (MATLAB v5, read with
:func:`scipy.io.loadmat`) holding ``action`` (class name), ``pose`` (camera view), ``train`` (1 = train,
-1 = test: the official split), ``x`` / ``y`` (frames × 13, pixels), ``visibility`` (frames × 13, 0/1),
``bbox``, ``dimensions`` (H, W, T) and ``nframes``. ``nframes`` is not trusted (it is stored as ``uint8`` in
some files, which cannot hold more than 255 frames): the frame count is always ``x.shape[0]``. The 13 joint
columns are in the order of the ``penn-13`` layout of :mod:`dance.motion.skeletons`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dance.data.index import VideoIndex, VideoRecord, make_val_split
from dance.data.validation import MAX_REPORTED_PROBLEMS
from dance.errors import IndexFormatError, PoseFormatError

__all__ = [
    "PENN_CLASSES",
    "PENN_N_JOINTS",
    "PennLabels",
    "PennSequence",
    "labels_dir",
    "load_penn_action",
    "read_penn_mat",
    "scan_labels",
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
#: Joint columns of ``x`` / ``y`` / ``visibility`` (the ``penn-13`` layout of :mod:`dance.motion.skeletons`).
PENN_N_JOINTS = 13

_REQUIRED = ("action", "train", "x", "y", "visibility")
_SPLITS = {1: "train", -1: "test"}


@dataclass
class PennSequence:
    """One Penn Action video's annotation.

    Attributes:
        video_id: the file name without extension (``0001``).
        action: class name.
        split: the official split, ``train`` or ``test`` (a val split is only made in the index).
        keypoints: (T, 13, 2) float32 pixel coordinates ``(x, y)``, joints in ``penn-13`` order.
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
        if arr.ndim != 2 or arr.shape[1] != PENN_N_JOINTS:
            raise PoseFormatError(
                f"{path}: '{key}' must have shape (frames, {PENN_N_JOINTS}), got {arr.shape}"
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


def labels_dir(root: Path | str) -> Path:
    """``root/labels``, or ``root`` itself when it directly holds the ``.mat`` files."""
    root = Path(root).expanduser()
    if (root / "labels").is_dir():
        return root / "labels"
    if root.is_dir() and any(root.glob("*.mat")):
        return root
    raise IndexFormatError(f"{root}: not a Penn Action folder (no labels/ folder with <id>.mat files)")


@dataclass
class PennLabels:
    """The label files of a Penn Action folder, parsed (:func:`scan_labels`).

    Attributes:
        folder: the labels folder.
        parsed: ``(file, sequence)`` of every readable file kept, in id order.
        skipped: file name → why it could not be read.
    """

    folder: Path
    parsed: list[tuple[Path, PennSequence]]
    skipped: dict[str, str]

    def index(self, val_fraction: float, seed: int) -> VideoIndex:
        """The index of the readable files (see :func:`load_penn_action`; unreadable ones are left out).

        Raises:
            IndexFormatError: no readable file, a class without train videos.
        """
        labels = self.folder
        if not self.parsed:
            raise IndexFormatError(f"{labels}: no readable Penn Action label files")
        records = [VideoRecord(seq.video_id, p.absolute(), seq.action, seq.split) for p, seq in self.parsed]
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

    def skipped_message(self) -> str:
        """The unreadable files and their reasons, for an error (the first ``MAX_REPORTED_PROBLEMS``)."""
        lines = [f"{self.folder}: {len(self.skipped)} unreadable label file(s):"]
        lines += [f"  {reason}" for reason in list(self.skipped.values())[:MAX_REPORTED_PROBLEMS]]
        if len(self.skipped) > MAX_REPORTED_PROBLEMS:
            lines.append(f"  ... and {len(self.skipped) - MAX_REPORTED_PROBLEMS} more")
        return "\n".join(lines)


def scan_labels(root: Path | str, limit_per_class: int | None = None) -> PennLabels:
    """Parse every label file under ``root`` (the folder holding ``labels/``, or ``labels`` itself).

    ``limit_per_class``: keep at most this many files per class in each official split (the lowest ids).

    Raises:
        IndexFormatError: no label folder or no ``.mat`` file in it, a ``limit_per_class`` below 1.
    """
    if limit_per_class is not None and limit_per_class < 1:
        raise IndexFormatError(f"limit_per_class must be >= 1 or None, got {limit_per_class}")
    labels = labels_dir(root)
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
    return PennLabels(labels, parsed, skipped)


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
            each with its reason; :func:`dance.motion.penn_action.export_generic` skips them instead), a class
            without train videos.
    """
    labels = scan_labels(root, limit_per_class)
    if labels.skipped:
        raise IndexFormatError(labels.skipped_message())
    return labels.index(val_fraction, seed), {seq.video_id: seq for _, seq in labels.parsed}
