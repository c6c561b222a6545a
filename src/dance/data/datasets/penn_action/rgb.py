"""Penn Action RGB frames (Zhang, Zhu, Derpanis, ICCV 2013), ``data.format=penn_action``.

Expected layout (``data.path`` = the unpacked ``Penn_Action`` folder, or the folder holding it)::

    Penn_Action/frames/0001/000001.jpg, 000002.jpg, ...     one folder of numbered frames per video
    Penn_Action/labels/0001.mat                             its label file (MATLAB), same id

Each record is a frame folder (``frames/<id>``): :func:`~dance.data.video.read_video` decodes it like a video file
(frames sorted numerically). The class (``action``) and the official split (``train``: 1 = train, -1 = test) come
from ``labels/<id>.mat``, read by :func:`~dance.data.datasets.penn_action.labels.read_penn_mat`. There is no
official val split: the pipeline draws one from train (``data.val_fraction``). Classes: the 15 Penn Action names
(:data:`~dance.data.datasets.penn_action.labels.PENN_CLASSES` order). Video ids are the ids (``0001``).

Every label file needs its frame folder with at least one image and every frame folder its label file;
unreadable label files, missing folders and empty folders are all reported together.
"""

from __future__ import annotations

import os
from pathlib import Path

from dance.data.datasets.common import (
    DatasetOptions,
    check_root,
    check_single_split,
    child_ci,
    dataset_error,
    dataset_format,
    finish,
    select_classes,
)
from dance.data.datasets.penn_action.labels import PENN_CLASSES, read_penn_mat
from dance.data.frames import IMAGE_EXTENSIONS
from dance.data.index import VideoIndex
from dance.data.validation import Problems, Row
from dance.errors import PoseFormatError

__all__ = ["load_penn_action_rgb"]

NAME = "Penn Action"
_EXPECTED = "the Penn_Action folder holding frames/<id>/000001.jpg ... and labels/<id>.mat"


def _has_image(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            return any(
                not e.name.startswith(".") and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS
                for e in entries
            )
    except OSError:
        return False


@dataset_format("penn_action", "Penn Action RGB frame folders with the official split (labels/<id>.mat)")
def load_penn_action_rgb(root: Path | str, options: DatasetOptions | None = None) -> VideoIndex:
    """Index Penn Action's RGB frame folders with the official split (see the module docstring).

    Raises:
        IndexFormatError: missing ``frames/`` or ``labels/`` folder, no label files, and (listed together)
            unreadable label files, label files without a frame folder, empty frame folders, frame folders
            without a label file, requested classes not in the dataset.
    """
    options = options or DatasetOptions()
    check_single_split(NAME, options.split_id)
    root = check_root(NAME, Path(root), _EXPECTED)
    if child_ci(root, "labels", want_dir=True) is None and child_ci(root, "frames", want_dir=True) is None:
        inner = child_ci(root, "Penn_Action", want_dir=True)
        root = inner if inner is not None else root
    labels = child_ci(root, "labels", want_dir=True)
    frames = child_ci(root, "frames", want_dir=True)
    if labels is None:
        raise dataset_error(NAME, f"{root / 'labels'} not found; expected {_EXPECTED}")
    if frames is None:
        raise dataset_error(NAME, f"{root / 'frames'} not found; expected {_EXPECTED}")
    mats = sorted(p for p in labels.glob("*.mat") if p.is_file() and not p.name.startswith("."))
    if not mats:
        raise dataset_error(NAME, f"no .mat label files in {labels}; expected {_EXPECTED}")
    folders = {p.name: p for p in frames.iterdir() if p.is_dir() and not p.name.startswith(".")}

    problems = Problems()
    parsed: list[tuple[Path, str, str]] = []
    for mat in mats:
        try:
            seq = read_penn_mat(mat)
        except PoseFormatError as exc:
            problems.add(None, None, str(exc))
            continue
        folder = folders.get(mat.stem)
        if folder is None:
            problems.add(mat, None, f"no frame folder {frames / mat.stem} for this label file")
            continue
        if not _has_image(folder):
            problems.add(folder, None, f"empty frame folder (no {' '.join(IMAGE_EXTENSIONS)} files)")
            continue
        parsed.append((folder, seq.action, seq.split))
    stems = {m.stem for m in mats}
    for name in sorted(set(folders) - stems):
        problems.add(folders[name], None, f"frame folder without a label file ({labels / name}.mat not found)")

    present = {action for _, action, _ in parsed}
    available = [c for c in PENN_CLASSES if c in present] + sorted(present - set(PENN_CLASSES))
    if options.classes is not None and not present:
        problems.raise_if_any(f"penn_action:{root}")
    classes = select_classes(NAME, available, options, where=f"the actions of {labels}")
    wanted = set(classes)
    rows = [
        Row(folder, None, folder.relative_to(root).as_posix(), action, split, video_id=folder.name)
        for folder, action, split in parsed
        if action in wanted
    ]
    return finish(
        NAME,
        rows,
        root=root,
        classes=classes,
        class_origin=options.class_origin or f"the actions of {labels}",
        options=options,
        problems=problems,
        source=f"penn_action:{root}",
        check_files=False,  # records are folders, checked above
    )
