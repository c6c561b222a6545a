"""Penn Action's joint annotations as poses: the ``penn-action`` pose source and the generic pose format.

The dataset's files are read by :mod:`dance.data.datasets.penn_action`; this module gives them the ``penn-13``
skeleton layout (:data:`dance.motion.skeletons.PENN_13`):

- :class:`PennPoseSource`: a pose source reading the ``labels/<id>.mat`` files directly;
- :func:`export_generic`: the generic pose format (``annotations.csv``, ``skeleton.json``, ``poses/<id>.npz``),
  read by :class:`~dance.motion.poses.AnnotationPoseSource` like any other pose dataset.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from dance.data.datasets.penn_action.labels import PennSequence, labels_dir, read_penn_mat, scan_labels
from dance.data.index import VideoRecord
from dance.motion.poses import PoseSequence
from dance.motion.skeletons import PENN_13

__all__ = ["PENN_JOINTS", "PennPoseSource", "export_generic"]

#: Joint order of the label files' ``x`` / ``y`` / ``visibility`` columns (the ``penn-13`` layout).
PENN_JOINTS: tuple[str, ...] = PENN_13.joints


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

    ``out`` receives ``annotations.csv`` (``video_id,label,split,view``: the official split plus the val split of
    :func:`~dance.data.datasets.penn_action.load_penn_action`, and the camera view of each video, e.g. ``front``;
    readers ignore the extra column, ``benchmarks/pose_datasets.py --dev-views`` splits by it), ``skeleton.json``
    (the ``penn-13`` layout) and ``poses/<id>.npz`` (``keypoints`` (T, 13, 2) float32, ``scores`` (T, 13) float32 =
    visibility, ``size`` (H, W) int64). Each file is written atomically (temporary file + rename), the csv last.
    Label files that cannot be read are skipped and listed with their reason in ``out/skipped.json`` (``{file name:
    reason}``; a stale one is removed when nothing is skipped). Keyword arguments are those of ``load_penn_action``.

    Returns:
        ``out``.

    Raises:
        IndexFormatError: no label folder, or no readable label file at all.
    """
    from dance.runs import atomic_write_bytes, atomic_write_json

    out = Path(out).expanduser()
    labels = scan_labels(root, limit_per_class)
    index = labels.index(val_fraction, seed)
    seqs = {seq.video_id: seq for _, seq in labels.parsed}
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
    if labels.skipped:
        atomic_write_json(skipped_file, labels.skipped)
    else:
        skipped_file.unlink(missing_ok=True)
    _write_csv(out / "annotations.csv", ["video_id", "label", "split", "view"],
               ([r.video_id, r.label, r.split, seqs[r.video_id].view] for r in index.records))
    return out


class PennPoseSource:
    """Pose source reading Penn Action ``.mat`` label files directly (layout ``penn-13``).

    The file of a record is ``record.path`` when that is an existing ``.mat`` file (records of
    :func:`~dance.data.datasets.penn_action.load_penn_action`), else ``<labels>/<video_id>.mat``. Parsed files
    are cached in memory. Frames outside the sequence get score 0.
    """

    name = "penn-action"
    skeleton = PENN_13

    def __init__(self, root: Path | str):
        self.root = Path(root).expanduser()
        self.labels = labels_dir(self.root)
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
