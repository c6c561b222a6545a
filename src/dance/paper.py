"""Facts from the DANCE paper used for comparison: Table 1, and which of its datasets a run is on.

Table 1 of the paper (top-1 accuracy %, every row with the same VideoMAE backbone): the baseline without
interpretability, the two Label-free CBM variants, and DANCE, on KTH, Penn Action, HAA-100 and UCF-101.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from dance.errors import ConfigError

#: DANCE paper, Table 1: top-1 accuracy (%), all with the same VideoMAE backbone.
PAPER_TABLE1: dict[str, dict[str, float]] = {
    "KTH": {"baseline": 89.7, "lfcbm-entangled": 87.4, "lfcbm-disentangled": 89.9, "dance": 91.1},
    "Penn Action": {"baseline": 97.8, "lfcbm-entangled": 96.3, "lfcbm-disentangled": 97.7, "dance": 98.1},
    "HAA-100": {"baseline": 73.5, "lfcbm-entangled": 66.5, "lfcbm-disentangled": 65.3, "dance": 70.7},
    "UCF-101": {"baseline": 88.4, "lfcbm-entangled": 85.5, "lfcbm-disentangled": 83.7, "dance": 87.5},
}
PAPER_DATASETS: tuple[str, ...] = tuple(PAPER_TABLE1)
CITATION = "DANCE paper, Table 1"

KTH_CLASSES = ("boxing", "handclapping", "handwaving", "jogging", "running", "walking")


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(text).lower())


def paper_dataset(classes: Sequence[str], data_format: str = "", data_path: str = "", setting: str = "auto") -> \
        str | None:
    """The Table 1 dataset a run is on, or None: ``setting`` when it names one (``none``: None), else detected.

    Detection (``auto``): KTH by its 6 class names, Penn Action by its 15, UCF-101 by 101 classes including
    ``ApplyEyeMakeup`` and ``YoYo``, HAA-100 by 100 classes with ``data.format=haa500`` (or ``haa`` in the path).
    Raises :class:`ConfigError` for a ``setting`` that names no Table 1 dataset.
    """
    choice = (setting or "auto").strip()
    if choice.lower() == "none":
        return None
    if choice.lower() != "auto":
        match = [d for d in PAPER_DATASETS if _norm(d) == _norm(choice)]
        if not match:
            raise ConfigError(f"'{choice}' is not a dataset of the paper's Table 1: expected auto, none, "
                              f"{', '.join(PAPER_DATASETS)}")
        return match[0]
    from dance.data.datasets.penn_action import PENN_CLASSES

    names = {_norm(c) for c in classes}
    if names == {_norm(c) for c in PENN_CLASSES}:
        return "Penn Action"
    if names == {_norm(c) for c in KTH_CLASSES}:
        return "KTH"
    if len(names) == 101 and {"applyeyemakeup", "yoyo"} <= names:
        return "UCF-101"
    if len(names) == 100 and (data_format == "haa500" or "haa" in _norm(data_path)):
        return "HAA-100"
    return None
