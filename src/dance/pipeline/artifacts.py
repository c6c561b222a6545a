"""Stage artifacts for the pipeline stages: arrays as .npz and the run's index.

Both live below the pipeline, so that code which only reads a finished run (``dance.explain``, ``dance.viewer``)
needs nothing from ``dance.pipeline``: the array IO is :mod:`dance.runs`, the index of a run
:func:`dance.run_view.run_index`. Re-exported here for the stages.
"""

from __future__ import annotations

from dance.run_view import run_index
from dance.runs import load_arrays, save_arrays

__all__ = ["load_arrays", "run_index", "save_arrays"]
