"""KTH human actions (Schuldt, Laptev, Caputo, ICPR 2004), ``data.format=kth``.

Expected layout (``data.path`` = the KTH folder)::

    KTH/boxing/person01_boxing_d1_uncomp.avi        class folders, as unpacked from the six official zips
    KTH/handclapping/person01_handclapping_d1_uncomp.avi
    ...                                             (boxing, handclapping, handwaving, jogging, running, walking)

or all ``.avi`` files in one folder (``KTH/person01_boxing_d1_uncomp.avi``, ...). Any video extension of
:data:`~dance.data.video.VIDEO_EXTENSIONS` is accepted (converted copies), file names are matched
case-insensitively, and a suffix after the scenario (``_uncomp``, or ``_0`` for clips cut at the
sub-sequence boundaries of ``00sequences.txt``) is allowed. The label is the action in the file name; a file in
a class folder of another action is an error. 25 persons x 6 actions x 4 scenarios d1-d4 = 600 videos; the
official release has 599 (``person13_handclapping_d3`` is missing), which is fine.

Split: the official person-based split of Schuldt et al. 2004, as listed on the dataset page
(https://www.csc.kth.se/cvap/actions/, "Sequences are divided with respect to the subjects into a training set
(8 persons), a validation set (8 persons) and a test set (9 persons)"):

- train: persons 11, 12, 13, 14, 15, 16, 17, 18
- val: persons 19, 20, 21, 23, 24, 25, 01, 04
- test: persons 22, 02, 03, 05, 06, 07, 08, 09, 10

(The test persons are also those of the KTH lists in the authors' predecessor code, ``jong980812/Video-CBM_``.)
Many works train on train + val: ``data.merge_val=true`` moves the val persons into train (a val split is then
drawn from train by ``data.val_fraction``). Video ids are the file stems (``person01_boxing_d1_uncomp``), so they
do not depend on the layout. Classes: the six action names, sorted.
"""

from __future__ import annotations

import re
from pathlib import Path

from dance.data.datasets.common import (
    DatasetOptions,
    check_root,
    check_single_split,
    dataset_error,
    dataset_format,
    finish,
    select_classes,
    walk_files,
)
from dance.data.index import VideoIndex
from dance.data.validation import Problems, Row
from dance.data.video import VIDEO_EXTENSIONS

__all__ = ["KTH_CLASSES", "KTH_SPLIT", "load_kth"]

NAME = "KTH"
#: The six KTH actions (sorted; also the official class folder names).
KTH_CLASSES: tuple[str, ...] = ("boxing", "handclapping", "handwaving", "jogging", "running", "walking")
#: Official person-based split (Schuldt et al. 2004): person number → split.
KTH_SPLIT: dict[int, str] = {
    **dict.fromkeys((11, 12, 13, 14, 15, 16, 17, 18), "train"),
    **dict.fromkeys((19, 20, 21, 23, 24, 25, 1, 4), "val"),
    **dict.fromkeys((22, 2, 3, 5, 6, 7, 8, 9, 10), "test"),
}

_FILE = re.compile(r"^person(?P<person>\d{1,2})_(?P<action>[a-z]+)_d(?P<scenario>\d)(?:_\w+)?$", re.IGNORECASE)
_EXPECTED = (
    "the KTH folder with class folders boxing/, handclapping/, handwaving/, jogging/, running/, walking/ "
    "holding person<NN>_<action>_d<N>_uncomp.avi files, or all those .avi files in one folder"
)


@dataset_format("kth", "KTH human actions in the official layout, person-based split")
def load_kth(root: Path | str, options: DatasetOptions | None = None) -> VideoIndex:
    """Index a KTH folder with the official person split (see the module docstring).

    Raises:
        IndexFormatError: missing folder, no KTH videos, and (all listed together) file names that are not KTH
            names, unknown actions / persons / scenarios, files in the class folder of another action,
            duplicate videos, classes without videos.
    """
    options = options or DatasetOptions()
    check_single_split(NAME, options.split_id)
    root = check_root(NAME, Path(root), _EXPECTED)
    classes = select_classes(NAME, KTH_CLASSES, options, where=f"KTH has {', '.join(KTH_CLASSES)}")
    wanted = set(classes)
    videos = walk_files(root, VIDEO_EXTENSIONS)
    if not videos:
        raise dataset_error(NAME, f"no video files found in {root}; expected {_EXPECTED}")
    problems = Problems()
    rows: list[Row] = []
    n_named = 0
    for video in videos:
        rel = video.relative_to(root).as_posix()
        m = _FILE.match(video.stem)
        if m is None:
            problems.add(video, None, "not a KTH video name (expected person<NN>_<action>_d<N>_uncomp.avi)")
            continue
        n_named += 1
        action, person, scenario = m["action"].lower(), int(m["person"]), int(m["scenario"])
        if action not in KTH_CLASSES:
            problems.add(video, None, f"unknown KTH action '{m['action']}' (expected one of {', '.join(KTH_CLASSES)})")
            continue
        if person not in KTH_SPLIT:
            problems.add(video, None, f"unknown KTH person {person:02d} (persons are 01-25)")
            continue
        if not 1 <= scenario <= 4:
            problems.add(video, None, f"unknown KTH scenario d{scenario} (scenarios are d1-d4)")
            continue
        folder = video.parent.name.lower()
        if video.parent != root and folder in KTH_CLASSES and folder != action:
            problems.add(video, None, f"a '{action}' video in the class folder '{video.parent.name}'")
            continue
        if action in wanted:
            rows.append(Row(video, None, rel, action, KTH_SPLIT[person], video_id=video.stem))
    if n_named == 0:
        raise dataset_error(
            NAME, f"no KTH videos (person<NN>_<action>_d<N>_uncomp.avi) among the {len(videos)} video files in "
            f"{root}; expected {_EXPECTED}"
        )
    return finish(
        NAME,
        rows,
        root=root,
        classes=classes,
        class_origin=options.class_origin or "the KTH classes",
        options=options,
        problems=problems,
        source=f"kth:{root}",
        expected="<class>/person<NN>_<class>_d<N>_uncomp.avi, or all videos in one folder",
    )
