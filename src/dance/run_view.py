"""One read-only view of a finished run: what each stage wrote and the settings it ran with.

Everything that inspects a run after the pipeline — ``dance explain``, ``sanity``, ``intervene``, ``serve``,
``report`` — reads it through :class:`RunView`, so the run's file names live here and nowhere else on that side:

* **settings**: each stage's manifest keeps the settings sections it ran with (written by
  :meth:`dance.runs.RunDir.writing`). :attr:`RunView.settings` puts together every section from the stage that
  owns it (``data`` from ``index``, every other section from the stage of the same name), so a section changed
  by a later ``--set`` on a single stage is read as that stage used it, not as ``config.yaml`` says.
  **Fallback** for runs whose manifests predate stored settings: a section its stage did not store is read from
  ``RUN/config.yaml`` (the settings of the last full ``dance run``); without that file the defaults are used for
  sections of stages that never ran, and a finished stage with neither is a :class:`StageError`.
* **artifacts**: the index, the features (and :class:`RunVideos`, the videos that have them), key clips
  (``clip_len`` from ``keyclips.json``, the one source the motion stage also reads), poses and the skeleton,
  motion and spatial concepts with their names, the baseline's predictions, the summary, the catalogue and the
  sanity check's json;
* **models**: the trained model and its edited versions (:mod:`dance.model.versions`).

Nothing here writes to the run, reruns a stage or touches the run directory's bookkeeping, so a read-only run can be
inspected. A missing artifact is a :class:`StageError` naming the file (``... is not a finished run
(motion/motion.npz is missing)``); :meth:`RunView.require` checks that whole stages finished (their manifests).
Large arrays are loaded on first use and kept. Heavy libraries (torch, through the model) are imported only when a
model is loaded, so the CLI can import this module cheaply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dance.errors import DanceError, StageError
from dance.runs import MANIFEST, Manifest, load_arrays, read_json

if TYPE_CHECKING:
    from dance.config import Settings
    from dance.data.index import VideoIndex
    from dance.model.dance import DanceModel
    from dance.model.versions import Version
    from dance.motion.poses import Skeleton

CONFIG = "config.yaml"
#: a settings section → the stage that owns it (any other section is owned by the stage of the same name)
SECTION_STAGE = {"data": "index"}


def inner_run(path: Path | str) -> Path | None:
    """``path/run`` when ``path`` is not a run itself but holds one (a ``dance demo`` folder), else None."""
    path = Path(path)
    if (path / CONFIG).is_file() or (path / "index" / MANIFEST).is_file():
        return None
    inner = path / "run"
    return inner if (inner / CONFIG).is_file() or (inner / "index" / MANIFEST).is_file() else None


def run_index(stage_dir: Path) -> VideoIndex:
    """The index a run works on, from its ``index`` stage folder (written by the index stage)."""
    from dance.data.formats.annotations import read_index_csv

    return read_index_csv(Path(stage_dir) / "index.csv")


def near_matches(name: str, candidates: Sequence[str], n: int = 5) -> list[str]:
    """Candidates that look like ``name``: case-insensitive substring matches first, then difflib's closest."""
    import difflib

    low = name.lower()
    subs = [c for c in candidates if low and low in c.lower()]
    by_lower = {c.lower(): c for c in candidates}
    close = [by_lower[c] for c in difflib.get_close_matches(low, list(by_lower), n=n, cutoff=0.5)]
    out: list[str] = []
    for c in subs + close:
        if c not in out:
            out.append(c)
    return out[:n]


def unknown_message(kind: str, name: str, candidates: Sequence[str]) -> str:
    """``unknown KIND 'NAME' (N KINDs); did you mean: ...?`` for a sample, class or concept name."""
    near = near_matches(name, candidates)
    hint = f"; did you mean: {', '.join(near)}?" if near else f"; e.g. {', '.join(list(candidates)[:5])}"
    plural = "classes" if kind == "class" else f"{kind}s"
    return f"unknown {kind} '{name}' ({len(candidates)} {plural}){hint}"


@dataclass
class RunVideos:
    """The videos of a finished run that have features: ids, labels, splits and backbone features X."""

    run: Path
    index: VideoIndex
    rows: np.ndarray  # positions in index.records of the videos with features
    video_ids: list[str]
    labels: list[str]
    splits: np.ndarray  # (N,) split names
    X: np.ndarray  # (N, D)

    def split_mask(self, split: str) -> np.ndarray:
        """Boolean mask over the videos of one split; an unknown or empty split is an error naming the others."""
        mask = self.splits == split
        if not mask.any():
            have = sorted(set(self.splits.tolist()))
            raise DanceError(f"no videos with features in split '{split}' of {self.run}; splits: {', '.join(have)}")
        return mask

    def targets(self, model: DanceModel) -> np.ndarray:
        """Class index of every video's label in the model's class list (-1 for a class the model lacks)."""
        pos = {c: i for i, c in enumerate(model.classes_)}
        return np.array([pos.get(label, -1) for label in self.labels], dtype=np.int64)

    def sample(self, video_id: str) -> int:
        """Position of a video by id, or an error listing similar ids."""
        try:
            return self._positions[video_id]
        except KeyError:
            raise DanceError(unknown_message("sample", video_id, self.video_ids)) from None

    def record(self, position: int):  # noqa: ANN201 - a VideoRecord
        """The index record of the video at ``position``."""
        return self.index.records[int(self.rows[position])]

    def __post_init__(self) -> None:
        self._positions = {v: i for i, v in enumerate(self.video_ids)}


class RunView:
    """A finished run, read-only (see the module docstring). Nothing is read until asked for."""

    def __init__(self, run: Path | str):
        self.root = Path(run)
        if not self.root.is_dir():
            raise StageError(f"{self.root} is not a finished run (no such folder): run `dance run --run {self.root}` "
                             "first")

    def __repr__(self) -> str:
        return f"RunView({str(self.root)!r})"

    # ------------------------------------------------------------------ stages
    def stage_dir(self, stage: str) -> Path:
        return self.root / stage

    def file(self, stage: str, name: str) -> Path:
        """The path of an artifact (it may not exist)."""
        return self.root / stage / name

    def artifact(self, stage: str, name: str) -> Path:
        """The path of an artifact that must exist, or a StageError saying which file is missing."""
        p = self.file(stage, name)
        if not p.exists():
            raise StageError(f"{self.root} is not a finished run ({stage}/{name} is missing): run "
                             f"`dance run --run {self.root}` first")
        return p

    def manifest(self, stage: str) -> Manifest | None:
        """The stage's manifest, or None when the stage has not finished (or the manifest is unreadable)."""
        path = self.file(stage, MANIFEST)
        if not path.is_file():
            return None
        try:
            return Manifest.from_json(read_json(path))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def has(self, stage: str) -> bool:
        """Whether the stage has finished in this run."""
        return self.file(stage, MANIFEST).is_file()

    def require(self, *stages: str, command: str | None = None, why: str = "") -> RunView:
        """This view, or a StageError naming the first of ``stages`` that has not finished.

        A ``dance demo`` folder (which holds the run in ``run/``) is named as such; ``command`` is the ``dance``
        command to suggest with the inner folder; ``why`` is added to the message.
        """
        for stage in stages:
            if self.has(stage):
                continue
            inner = inner_run(self.root)
            if inner is not None:
                use = f"use `dance {command} {inner}`" if command else "give that folder instead"
                raise StageError(f"{self.root} holds a run at {inner} (a `dance demo` folder): {use}")
            note = f" ({why})" if why else ""
            raise StageError(f"{self.root} is not a finished run (it has no finished '{stage}' stage): run "
                             f"`dance run --run {self.root}` first{note}")
        return self

    # ------------------------------------------------------------------ settings
    def stage_settings(self, stage: str) -> dict[str, Any] | None:
        """The settings sections the stage ran with, as stored in its manifest (None when it stores none)."""
        m = self.manifest(stage)
        return None if m is None else m.settings

    @cached_property
    def config(self) -> dict[str, Any]:
        """``RUN/config.yaml`` as plain data (the settings of the last full run; empty when missing)."""
        import yaml

        p = self.root / CONFIG
        if not p.is_file():
            return {}
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise StageError(f"{p}: not valid YAML: {e}") from None
        return loaded if isinstance(loaded, dict) else {}

    def _settings(self, sections: dict[str, Any], what: str) -> Settings:
        from pydantic import ValidationError

        from dance.config import Settings

        try:
            return Settings.model_validate(sections)
        except ValidationError as e:
            lines = [f"  {'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()]
            raise StageError(f"{self.root}: the settings {what} are not valid:\n" + "\n".join(lines)) from None

    @cached_property
    def settings(self) -> Settings:
        """Every section as the stage that owns it ran with it (fallbacks: module docstring)."""
        from dance.config import Settings

        raw = dict(self.config)
        has_config = (self.root / CONFIG).is_file()
        missing: list[str] = []
        stored_any = False
        for section in Settings.model_fields:
            stage = SECTION_STAGE.get(section, section)
            stored = self.stage_settings(stage) or {}
            if section in stored:
                raw[section] = stored[section]
                stored_any = True
            elif section not in raw and self.stage_dir(stage).is_dir():
                missing.append(f"{section} ({stage})")
        if not has_config and not stored_any:
            raise StageError(f"{self.root} is not a finished run (no {CONFIG}, and no stage manifest stores "
                             f"settings): run `dance run --run {self.root}` first")
        if missing and not has_config:
            raise StageError(f"{self.root} has no {CONFIG} and its manifests do not store the settings of "
                             f"{', '.join(missing)} (a run made before manifests stored them): run "
                             f"`dance run --run {self.root}` once to write {CONFIG}")
        return self._settings(raw, "its stages ran with")

    def settings_of(self, stage: str) -> Settings:
        """The settings as one stage saw them: ``config.yaml`` with the sections that stage stored on top (the
        defaults for a section neither has)."""
        return self._settings({**self.config, **(self.stage_settings(stage) or {})}, f"of stage '{stage}'")

    # ------------------------------------------------------------------ index and features
    @cached_property
    def index(self) -> VideoIndex:
        self.artifact("index", "index.csv")
        return run_index(self.stage_dir("index"))

    @cached_property
    def features(self) -> dict[str, np.ndarray]:
        """``features.npz``: ``x`` (one row per index record) and ``ok`` (whether the video has features)."""
        return load_arrays(self.artifact("features", "features.npz"))

    @cached_property
    def videos(self) -> RunVideos:
        """The videos that have features, with their ids, labels, splits and features."""
        feats, index = self.features, self.index
        rows = np.flatnonzero(feats["ok"])
        recs = [index.records[int(i)] for i in rows]
        return RunVideos(self.root, index, rows, [r.video_id for r in recs], [r.label for r in recs],
                         np.array([r.split for r in recs], dtype=object), feats["x"][rows].astype(np.float32))

    def split_rows(self, split: str) -> np.ndarray:
        """Whether each index record is in ``split`` (boolean, one per record)."""
        return np.array([r.split == split for r in self.index.records], dtype=bool)

    @cached_property
    def baseline_predictions(self) -> np.ndarray:
        """The baseline's predicted class index per index record (-1 where it has none)."""
        return load_arrays(self.artifact("baseline", "predictions.npz"))["pred"]

    # ------------------------------------------------------------------ key clips, poses, concepts
    @cached_property
    def keyclips(self) -> dict[str, Any]:
        """``keyclips.json``: ``n_clips``, ``clip_len`` and each video's keyframes and clip centres."""
        return read_json(self.artifact("keyclips", "keyclips.json"))

    @property
    def clip_len(self) -> int:
        """Frames per key clip, as the keyclips stage cut them (``keyclips.json``, which the motion stage reads)."""
        value = self.keyclips.get("clip_len")
        return int(value) if value is not None else int(self.settings.keyclips.clip_len)

    @cached_property
    def skeleton(self) -> Skeleton:
        from dance.motion.poses import Skeleton

        return Skeleton.from_json(self.artifact("poses", "skeleton.json"))

    @cached_property
    def poses(self) -> dict[str, np.ndarray]:
        """``poses.npz``: the key clips' keypoints and scores, ``clip_video`` (index row) per clip, ..."""
        return load_arrays(self.artifact("poses", "poses.npz"))

    @cached_property
    def clip_rows(self) -> dict[int, np.ndarray]:
        """Video row → indices of its key clips in poses.npz (in slot order)."""
        vids = self.poses["clip_video"]
        n = len(self.index.records)
        order = np.argsort(vids, kind="stable")
        starts = np.searchsorted(vids[order], np.arange(n + 1))
        return {r: order[starts[r]:starts[r + 1]] for r in range(n) if starts[r + 1] > starts[r]}

    @cached_property
    def motion(self) -> dict[str, np.ndarray]:
        """``motion.npz``: centroids, medoids, the clips' concepts and each video's labels."""
        return load_arrays(self.artifact("motion", "motion.npz"))

    @cached_property
    def motion_concepts(self) -> dict[str, Any]:
        """``motion/concepts.json``: ``names``, per-concept details (``concepts``) and the partition choice."""
        return read_json(self.artifact("motion", "concepts.json"))

    @property
    def motion_names(self) -> list[str]:
        return list(self.motion_concepts["names"])

    @cached_property
    def spatial(self) -> dict[str, np.ndarray]:
        """``spatial.npz``: per concept type its labels, and ``has_label`` per index record."""
        return load_arrays(self.artifact("spatial", "spatial.npz"))

    @cached_property
    def spatial_names(self) -> dict[str, list[str]]:
        """Object / scene concept names by type (``spatial/concepts.json``)."""
        return read_json(self.artifact("spatial", "concepts.json"))

    @property
    def concept_names(self) -> dict[str, list[str]]:
        """Every discovered concept name by type: ``motion`` first, then the spatial types."""
        return {"motion": self.motion_names, **{t: list(v) for t, v in self.spatial_names.items()}}

    def catalogue_gif(self, name: str) -> Path | None:
        """The catalogue's animation of a motion concept, when the catalogue stage made one."""
        p = self.stage_dir("catalogue") / "motion" / f"{name}.gif"
        return p if p.is_file() else None

    # ------------------------------------------------------------------ results
    @cached_property
    def summary(self) -> dict[str, Any]:
        """``evaluate/summary.json``."""
        return read_json(self.artifact("evaluate", "summary.json"))

    @cached_property
    def catalogue(self) -> dict[str, Any] | None:
        """The catalogue stage's json (motion concepts rendered as GIF + PNG), or None when it has not run."""
        p = self.file("catalogue", "catalogue.json")
        return read_json(p) if self.has("catalogue") and p.is_file() else None

    @property
    def sanity_path(self) -> Path:
        """Where ``dance sanity`` writes its result (``RUN/sanity/sanity.json``)."""
        return self.file("sanity", "sanity.json")

    @cached_property
    def sanity(self) -> Any:
        """``sanity/sanity.json`` (the reversed-video check), or None."""
        p = self.sanity_path
        return read_json(p) if p.is_file() else None

    @cached_property
    def scene_bias(self) -> dict[str, Any] | None:
        """``scene_bias.json`` of the ``dance scene-bias demo`` whose DANCE run this is (beside the run, naming it
        as ``dance_run``), or None."""
        p = self.root.resolve().parent / "scene_bias.json"
        try:
            d = read_json(p) if p.is_file() else None
        except (OSError, ValueError, DanceError):
            return None
        return d if isinstance(d, dict) and d.get("dance_run") == self.root.resolve().name else None

    # ------------------------------------------------------------------ models
    @cached_property
    def trained_model(self) -> DanceModel:
        """The model the train stage wrote (version v000)."""
        from dance.model.io import load_model

        return load_model(self.artifact("train", "model"))

    def versions(self) -> list[Version]:
        """Every model version, oldest first: v000 (the trained model), then the saved edits."""
        from dance.model.versions import list_versions

        return list_versions(self.root)

    def version(self, name: str | None = None) -> Version:
        """A version by name, or the latest usable one (:func:`dance.model.versions.resolve_version`)."""
        from dance.model.versions import resolve_version

        return resolve_version(self.root, name)

    def load_version(self, version: str | None = None) -> tuple[DanceModel, Version]:
        """The model of a version (default: the latest usable one) and the version."""
        from dance.model.versions import load_version

        return load_version(self.root, version)
