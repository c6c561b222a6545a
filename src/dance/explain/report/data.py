"""Everything a report reads from a finished run directory, loaded once (and lazily for the large arrays).

The run is only read, never written: no stage is rerun and no run-directory bookkeeping happens, so a report can
be made from a run that is read-only. A missing stage is a :class:`StageError` that says to run the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import yaml

from dance.data.index import VideoIndex
from dance.errors import StageError
from dance.model.dance import DanceModel
from dance.model.io import load_model
from dance.motion.poses import Skeleton
from dance.pipeline.artifacts import load_arrays
from dance.runs import read_json

#: stages whose outputs every report needs
REQUIRED = ("index", "keyclips", "poses", "motion", "spatial", "features", "train", "baseline", "evaluate")


def check_run(run: Path) -> Path:
    """The run directory, or a StageError naming the first stage that has not finished there."""
    run = Path(run)
    if not run.is_dir():
        raise StageError(f"{run} is not a run directory: run `dance run --run {run}` first")
    inner = run / "run"
    if not (run / "index" / "manifest.json").is_file() and (inner / "index" / "manifest.json").is_file():
        raise StageError(f"{run} holds a run at {inner} (a `dance demo` folder): use `dance report {inner}`")
    for stage in REQUIRED:
        if not (run / stage / "manifest.json").is_file():
            raise StageError(f"{run} has no finished '{stage}' stage: run `dance run --run {run}` first "
                             f"(a report needs every stage up to 'evaluate')")
    return run


@dataclass
class TestSplit:
    """The evaluated split (test, or val when the run has no test videos)."""

    name: str
    rows: np.ndarray  # indices into index.records
    X: np.ndarray
    y: np.ndarray
    pred: np.ndarray  # DANCE
    base_pred: np.ndarray  # baseline (-1 where it has none)


class RunData:
    """Lazy view of a finished run's artifacts."""

    def __init__(self, run: Path | str):
        self.root = check_run(Path(run))

    def stage(self, name: str) -> Path:
        return self.root / name

    @cached_property
    def config(self) -> dict:
        """The run's config.yaml as plain data (empty when missing)."""
        p = self.root / "config.yaml"
        if not p.is_file():
            return {}
        return yaml.safe_load(p.read_text(encoding="utf-8")) or {}

    @cached_property
    def index(self) -> VideoIndex:
        return VideoIndex.from_csv(self.stage("index") / "index.csv")

    @cached_property
    def model(self) -> DanceModel:
        return load_model(self.stage("train") / "model")

    @cached_property
    def summary(self) -> dict:
        return read_json(self.stage("evaluate") / "summary.json")

    @cached_property
    def skeleton(self) -> Skeleton:
        return Skeleton.from_json(self.stage("poses") / "skeleton.json")

    @cached_property
    def motion(self) -> dict[str, np.ndarray]:
        return load_arrays(self.stage("motion") / "motion.npz")

    @cached_property
    def motion_concepts(self) -> dict:
        return read_json(self.stage("motion") / "concepts.json")

    @cached_property
    def poses(self) -> dict[str, np.ndarray]:
        return load_arrays(self.stage("poses") / "poses.npz")

    @cached_property
    def keyclips(self) -> dict:
        return read_json(self.stage("keyclips") / "keyclips.json")

    @cached_property
    def spatial(self) -> dict[str, np.ndarray]:
        return load_arrays(self.stage("spatial") / "spatial.npz")

    @cached_property
    def spatial_names(self) -> dict[str, list[str]]:
        return read_json(self.stage("spatial") / "concepts.json")

    @cached_property
    def catalogue(self) -> dict | None:
        """The catalogue stage's json (motion concepts rendered as GIF + PNG), or None when it has not run."""
        p = self.stage("catalogue") / "catalogue.json"
        return read_json(p) if (self.stage("catalogue") / "manifest.json").is_file() and p.is_file() else None

    @cached_property
    def sanity(self) -> dict | None:
        """RUN/sanity/sanity.json (the reversed-video check), or None."""
        p = self.stage("sanity") / "sanity.json"
        return read_json(p) if p.is_file() else None

    @cached_property
    def clip_rows(self) -> dict[int, np.ndarray]:
        """Video row → indices of its key clips in poses.npz (in slot order)."""
        vids = self.poses["clip_video"]
        order = np.argsort(vids, kind="stable")
        starts = np.searchsorted(vids[order], np.arange(len(self.index.records) + 1))
        return {r: order[starts[r]:starts[r + 1]] for r in range(len(self.index.records)) if starts[r + 1] > starts[r]}

    @cached_property
    def test(self) -> TestSplit:
        feats = load_arrays(self.stage("features") / "features.npz")
        splits = np.array([r.split for r in self.index.records], dtype=object)
        name = "test" if (feats["ok"] & (splits == "test")).any() else "val"
        rows = np.flatnonzero(feats["ok"] & (splits == name))
        if len(rows) == 0:
            raise StageError(f"{self.root}: no test or validation videos with features to report on")
        X = feats["x"][rows]
        y = np.array([self.index.class_index(self.index.records[int(r)].label) for r in rows], dtype=np.int64)
        base = load_arrays(self.stage("baseline") / "predictions.npz")["pred"][rows]
        return TestSplit(name, rows, X, y, self.model.predict(X), base)

    def train_rows(self) -> np.ndarray:
        return np.array([r.split == "train" for r in self.index.records], dtype=bool)
