"""HAA500 v1.1 (Chung, Wuu, Yang, Tai, Tang, "HAA500: Human-Centric Atomic Action Dataset with Curated Videos",
ICCV 2021), ``data.format=haa500``; the HAA-100 subset of the DANCE paper with ``data.classes``.

Expected layout (``data.path`` = the unzipped ``haa500_v1_1`` folder)::

    haa500_v1_1/video/abseiling_000.mp4 ... abseiling_019.mp4     500 classes x 20 videos
    haa500_v1_1/video/soccer_dribble_000.mp4 ...

``data.path`` may also be the ``video`` folder itself or the folder holding ``haa500_v1_1/``, and the videos may
sit in per-class sub-folders (``video/abseiling/abseiling_000.mp4``). A video's class is its file name without
the trailing ``_<nnn>`` (class names as in the dataset: lower case with underscores); in a class sub-folder the
folder must be that class. Any extension of :data:`~dance.data.video.VIDEO_EXTENSIONS` is accepted.

Split: 16 / 1 / 3 videos per class, by the three-digit number of the file: ``000``-``015`` train, ``016`` val,
``017``-``019`` test. Source: the paper splits every class 16:1:3 into train / val / test (8,000 / 500 / 1,500
videos), and the v1.1 numbering assigns the first 16 numbers to train, the next one to val and the last three to
test; numbers outside ``000``-``019`` are reported as errors rather than guessed. Missing videos are allowed (a
class keeps the split of the numbers it has). ``data.merge_val=true`` moves ``016`` into train.

HAA-100: ``data.classes=<file>`` (one HAA500 class name per line) keeps only those classes, in the file's
order; a name that is not an HAA500 class is an error with the closest names. The paper's Table 1 uses such a
100-class subset; its class list is not published with the paper, so the file is yours to provide. Video ids
are the file stems (``abseiling_000``).
"""

from __future__ import annotations

import re
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
    walk_files,
)
from dance.data.index import VideoIndex
from dance.data.validation import Problems, Row
from dance.data.video import VIDEO_EXTENSIONS

__all__ = ["HAA500_SPLIT", "haa500_split", "load_haa500"]

NAME = "HAA500"
#: Official split by video number: (first number, last number, split).
HAA500_SPLIT: tuple[tuple[int, int, str], ...] = ((0, 15, "train"), (16, 16, "val"), (17, 19, "test"))

_FILE = re.compile(r"^(?P<cls>.+?)_(?P<num>\d{3})$")
_EXPECTED = "the HAA500 v1.1 folder holding video/<class>_<nnn>.mp4 (e.g. video/abseiling_000.mp4)"


def haa500_split(number: int) -> str | None:
    """The official split of video number ``number`` (``None`` outside 0-19)."""
    for first, last, split in HAA500_SPLIT:
        if first <= number <= last:
            return split
    return None


def _video_dir(root: Path) -> Path:
    for candidate in (child_ci(root, "video", want_dir=True), child_ci(root, "haa500_v1_1", want_dir=True)):
        if candidate is None:
            continue
        if candidate.name.lower() == "video":
            return candidate
        inner = child_ci(candidate, "video", want_dir=True)
        if inner is not None:
            return inner
    if any(_FILE.match(p.stem) for p in walk_files(root, VIDEO_EXTENSIONS)[:50]):
        return root  # data.path is the video folder itself
    raise dataset_error(NAME, f"{root / 'video'} not found; expected {_EXPECTED}")


@dataset_format("haa500", "HAA500 v1.1 (HAA-100 with data.classes), official 16/1/3 split")
def load_haa500(root: Path | str, options: DatasetOptions | None = None) -> VideoIndex:
    """Index HAA500 v1.1 (or a class subset such as HAA-100) with the official split.

    Raises:
        IndexFormatError: missing folder or ``video/`` folder, no videos, requested classes not in the dataset,
            and (listed together) file names that are not ``<class>_<nnn>``, numbers outside 000-019, files in
            another class's folder, duplicates, classes without videos.
    """
    options = options or DatasetOptions()
    check_single_split(NAME, options.split_id)
    root = check_root(NAME, Path(root), _EXPECTED)
    video_dir = _video_dir(root)
    videos = walk_files(video_dir, VIDEO_EXTENSIONS)
    if not videos:
        raise dataset_error(NAME, f"no video files found in {video_dir}; expected {_EXPECTED}")
    problems = Problems()
    parsed: list[tuple[Path, str, int]] = []
    for video in videos:
        m = _FILE.match(video.stem)
        if m is None:
            problems.add(video, None, "not an HAA500 video name (expected <class>_<nnn>, e.g. abseiling_000.mp4)")
            continue
        label, number = m["cls"], int(m["num"])
        if video.parent != video_dir and video.parent.name != label:
            problems.add(video, None, f"a '{label}' video in the folder '{video.parent.name}'")
            continue
        parsed.append((video, label, number))
    if not parsed:
        problems.raise_if_any(f"haa500:{video_dir}")
    available = sorted({label for _, label, _ in parsed})
    classes = select_classes(NAME, available, options, where=f"{len(available)} classes in {video_dir}")
    wanted = set(classes)
    rows: list[Row] = []
    for video, label, number in parsed:
        if label not in wanted:
            continue
        split = haa500_split(number)
        if split is None:
            problems.add(video, None, f"video number {number:03d} is outside the official 000-019")
            continue
        rows.append(Row(video, None, video.relative_to(root).as_posix(), label, split, video_id=video.stem))
    return finish(
        NAME,
        rows,
        root=root,
        classes=classes,
        class_origin=options.class_origin or f"the classes in {video_dir}",
        options=options,
        problems=problems,
        source=f"haa500:{root}" + (f" ({len(classes)} classes of {options.class_origin})" if options.classes else ""),
    )
