"""Penn Action (Zhang, Zhu, Derpanis, ICCV 2013): every use of the dataset's files.

- :mod:`~dance.data.datasets.penn_action.labels`: the ``labels/<id>.mat`` files: :func:`read_penn_mat` parses one,
  :func:`scan_labels` a folder, :func:`load_penn_action` indexes the label files themselves (official split plus a
  seeded val split), for the pose-only use of the dataset;
- :mod:`~dance.data.datasets.penn_action.rgb`: ``data.format=penn_action``, the RGB frame folders
  (``frames/<id>/``) with the official split.

The joints as poses (the ``penn-action`` pose source, and the export to the generic pose format) are in
:mod:`dance.motion.penn_action`, beside the skeleton layouts they need.
"""

from __future__ import annotations

from dance.data.datasets.penn_action.labels import (
    PENN_CLASSES,
    PENN_N_JOINTS,
    PennLabels,
    PennSequence,
    labels_dir,
    load_penn_action,
    read_penn_mat,
    scan_labels,
)
from dance.data.datasets.penn_action.rgb import load_penn_action_rgb

__all__ = [
    "PENN_CLASSES",
    "PENN_N_JOINTS",
    "PennLabels",
    "PennSequence",
    "labels_dir",
    "load_penn_action",
    "load_penn_action_rgb",
    "read_penn_mat",
    "scan_labels",
]
