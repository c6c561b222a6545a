"""What a report reads from a finished run: :class:`dance.run_view.RunView` plus the evaluated split.

The run is only read, never written: no stage is rerun and no run-directory bookkeeping happens, so a report can
be made from a run that is read-only. A missing stage is a :class:`StageError` that says to run the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from dance.errors import StageError
from dance.run_view import RunView

#: stages whose outputs every report needs
REQUIRED = ("index", "keyclips", "poses", "motion", "spatial", "features", "train", "baseline", "evaluate")


def check_run(run: Path) -> Path:
    """The run directory, or a StageError naming the first stage that has not finished there."""
    RunView(run).require(*REQUIRED, command="report", why="a report needs every stage up to 'evaluate'")
    return Path(run)


@dataclass
class TestSplit:
    """The evaluated split (test, or val when the run has no test videos)."""

    name: str
    rows: np.ndarray  # indices into index.records
    X: np.ndarray
    y: np.ndarray
    pred: np.ndarray  # DANCE
    base_pred: np.ndarray  # baseline (-1 where it has none)


class RunData(RunView):
    """A finished run as a report reads it: every stage up to ``evaluate`` required, the trained model, and the
    evaluated split with both models' predictions."""

    def __init__(self, run: Path | str):
        super().__init__(check_run(Path(run)))

    @property
    def model(self):  # noqa: ANN201 - a DanceModel
        """The trained model (v000; a report shows what the pipeline made, not later edits)."""
        return self.trained_model

    @cached_property
    def test(self) -> TestSplit:
        feats = self.features
        splits = np.array([r.split for r in self.index.records], dtype=object)
        name = "test" if (feats["ok"] & (splits == "test")).any() else "val"
        rows = np.flatnonzero(feats["ok"] & (splits == name))
        if len(rows) == 0:
            raise StageError(f"{self.root}: no test or validation videos with features to report on")
        X = feats["x"][rows]
        y = np.array([self.index.class_index(self.index.records[int(r)].label) for r in rows], dtype=np.int64)
        base = self.baseline_predictions[rows]
        return TestSplit(name, rows, X, y, self.model.predict_index(X), base)

    def train_rows(self) -> np.ndarray:
        return self.split_rows("train")
