"""What the viewer shows, as plain JSON-ready dicts: samples, predictions with concepts switched off, weight edits
and their effect on a split, model versions, Sankey figures, and GIF previews.

Everything here is independent of HTTP, so it is tested directly; :mod:`dance.viewer.server` (FastAPI + uvicorn)
validates requests, guards them and routes them to these methods. The run is read through
:class:`dance.run_view.RunView` (videos with features, model versions, skeleton, motion concepts, settings).
Concept activations z are computed once per model version (the backbone never runs), so a toggle or a weight
change is a matrix product over the split.
"""

from __future__ import annotations

import io
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dance.config import Settings
from dance.data.index import VideoRecord
from dance.data.video import read_video
from dance.errors import DanceError, StageError
from dance.explain.contributions import Explanation, explain_concepts
from dance.explain.intervene import resolve_class, resolve_concept, switch_off, weight_edit
from dance.model.dance import DanceModel
from dance.model.io import load_model
from dance.model.versions import Version, save_edit
from dance.run_view import RunView

MAX_SAMPLE_FRAMES = 32  # frames in a sample's GIF preview
PREVIEW_SIZE = 128


class NotFound(DanceError):
    """A sample, concept image or route the viewer does not have (HTTP 404)."""


def _explanation_json(model: DanceModel, e: Explanation, off: set[str]) -> dict[str, Any]:
    return {
        "predicted": e.predicted,
        "target": e.target,
        "probabilities": [{"class": c, "p": round(p, 4)} for c, p in e.probabilities.items()],
        "type_shares": {t: round(v, 4) for t, v in e.type_shares.items()},
        "top": {t: [{"concept": f"{c.type}:{c.name}", "name": c.name, "type": c.type,
                     "activation": round(c.activation, 4), "weight": round(c.weight, 4),
                     "probability": None if c.probability is None else round(c.probability, 4),
                     "contribution": round(c.contribution, 4), "off": f"{c.type}:{c.name}" in off}
                    for c in cs] for t, cs in e.top.items()},
    }


class _Cache:
    """A small thread-safe LRU of bytes (GIF previews)."""

    def __init__(self, size: int = 64):
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key: str, make) -> bytes:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = make()
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return value


class ViewerState:
    """A finished run opened for viewing and editing (weight edits are saved as new versions only on request)."""

    def __init__(self, run: Path | str, version: str | None = None):
        self.run = Path(run).resolve()
        self.view = RunView(self.run)
        self.data = self.view.videos
        try:
            self.settings: Settings | None = self.view.settings
        except StageError:  # no config.yaml and no settings in the manifests: only pose previews need them
            self.settings = None
        self.default_version = self.view.version(version).name
        self._models: dict[str, tuple[DanceModel, np.ndarray]] = {}
        self._lock = threading.Lock()
        self._gifs = _Cache()

    # ------------------------------------------------------------------ models
    def model(self, version: str | None = None) -> tuple[DanceModel, np.ndarray, Version]:
        """The model of a version, its concept activations z of every video, and the version."""
        v = self.view.version(version or self.default_version)
        with self._lock:
            if v.name not in self._models:
                model = load_model(v.path)
                self._models[v.name] = (model, model.concept_activations(self.data.X))
            model, z = self._models[v.name]
        return model, z, v

    def _split(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.data.split_mask(split))

    # ------------------------------------------------------------------ endpoints
    def info(self) -> dict[str, Any]:
        model, _, v = self.model()
        present = set(self.data.splits.tolist())
        splits = {s: int((self.data.splits == s).sum()) for s in self.data.index.split_names if s in present}
        return {
            "run": str(self.run), "name": self.run.name, "classes": model.classes_,
            "splits": splits, "default_split": "test" if "test" in splits else next(iter(splits)),
            "version": v.name, "versions": self.versions(),
            "concepts": model.concept_names_, "n_concepts": model.n_concepts(),
            "sankey": self.sankey_available(),
        }

    def versions(self) -> list[dict[str, Any]]:
        out = []
        for v in self.view.versions():
            eff = v.edit.get("effect", {})
            out.append({"name": v.name, "parent": v.parent, "label": v.label, "stale": v.stale,
                        "time": v.edit.get("time", ""), "effect": {k: eff.get(k) for k in (
                            "split", "accuracy_before", "accuracy_after", "fixed", "broken")} if eff else {}})
        return out

    def samples(self, split: str, version: str | None = None) -> list[dict[str, Any]]:
        model, z, _ = self.model(version)
        rows = self._split(split)
        pred = model.logits_from_concepts(z[rows]).argmax(axis=1)
        return [{"id": self.data.video_ids[i], "label": self.data.labels[i], "predicted": model.classes_[int(p)],
                 "correct": model.classes_[int(p)] == self.data.labels[i]} for i, p in zip(rows, pred)]

    def predict(self, sample: str, off: list[str] | None = None, version: str | None = None,
                k: int = 5) -> dict[str, Any]:
        """A sample's prediction and explanation before and after switching concepts off."""
        model, z, v = self.model(version)
        i = self.data.sample(sample)
        cols = [resolve_concept(model, c) for c in (off or [])]
        names = [model.concept_names_[c] for c in cols]
        k = max(1, min(int(k), 20))
        zi = z[i : i + 1]
        before = explain_concepts(model, zi, k=k, top_classes=5)[0]
        after = explain_concepts(model, switch_off(zi, cols), k=k, top_classes=5)[0]
        off_set = set(names)
        return {"sample": sample, "label": self.data.labels[i], "split": str(self.data.splits[i]),
                "version": v.name, "off": names, "changed": before.predicted != after.predicted,
                "before": _explanation_json(model, before, off_set), "after": _explanation_json(model, after, off_set)}

    def class_concepts(self, cls: str, version: str | None = None) -> dict[str, Any]:
        """The concepts with a non-zero weight for a class, largest |weight| first."""
        model, _, v = self.model(version)
        c = resolve_class(model, cls)
        cols = np.flatnonzero(model.W_[c])
        cols = cols[np.argsort(-np.abs(model.W_[c, cols]), kind="stable")]
        return {"class": model.classes_[c], "version": v.name,
                "weights": [{"concept": model.concept_names_[j], "weight": round(float(model.W_[c, j]), 6)}
                            for j in cols]}

    def weight(self, cls: str, concept: str, weight: float, split: str = "test", version: str | None = None,
               save: bool = False) -> dict[str, Any]:
        """The effect on a split of W[cls, concept] = weight; with ``save`` it becomes a new version."""
        model, z, v = self.model(version)
        try:
            w = float(weight)
        except (TypeError, ValueError):
            raise DanceError(f"weight must be a number, got {weight!r}") from None
        rows = self._split(split)
        edited, edit = weight_edit(model, z[rows], self.data.targets(model)[rows], cls, concept, w, split,
                                   [self.data.video_ids[i] for i in rows])
        out: dict[str, Any] = {"class": edit.cls, "concept": edit.concept, "old_weight": edit.old_weight,
                               "new_weight": edit.new_weight, "split": split, "n": edit.n,
                               **vars(edit.effect), "fixed_ids": edit.fixed_ids[:20],
                               "broken_ids": edit.broken_ids[:20], "version": v.name, "saved": None}
        if save:
            if edit.old_weight == edit.new_weight:
                raise DanceError(f"W[{edit.cls}, {edit.concept}] is already {edit.new_weight:g}: nothing to save")
            new = save_edit(self.run, v, edited, edit.record())
            with self._lock:
                self._models[new.name] = (edited, z)
            out["saved"] = new.name
        return out

    def sankey_available(self) -> dict[str, Any]:
        try:
            import plotly  # noqa: F401

            from dance.explain.sankey import sankey_figure  # noqa: F401
        except ImportError as e:
            return {"available": False, "reason": f"Sankey diagrams need plotly and dance.explain.sankey ({e}); "
                                                  "pip install plotly"}
        return {"available": True, "reason": ""}

    def sankey(self, classes: list[str], top: int = 8, version: str | None = None) -> dict[str, Any]:
        """A plotly figure (as JSON) of the concept → class weights of some classes, or why there is none."""
        avail = self.sankey_available()
        if not avail["available"]:
            return {"available": False, "reason": avail["reason"], "figure": None}
        import plotly.io as pio

        from dance.explain.sankey import sankey_figure

        model, _, _ = self.model(version)
        names = [model.classes_[resolve_class(model, c)] for c in classes if c]
        if not names:
            raise DanceError("choose at least one class for the Sankey diagram")
        fig = sankey_figure(model, names, top=max(1, min(int(top), 40)))
        return {"available": True, "reason": "", "figure": pio.to_json(fig, validate=False)}

    # ------------------------------------------------------------------ media
    def sample_gif(self, sample: str) -> bytes:
        """An animated GIF of a sample: its frames (videos) or its pose sequence (pose datasets)."""
        rec = self.data.record(self.data.sample(sample))
        return self._gifs.get(f"sample:{sample}", lambda: self._make_sample_gif(rec))

    def _make_sample_gif(self, rec: VideoRecord) -> bytes:
        try:
            frames = read_video(rec.path, size=PREVIEW_SIZE)
        except DanceError as video_error:
            try:
                return self._pose_gif(rec)
            except DanceError as e:
                raise NotFound(f"no preview of {rec.video_id}: {video_error}; {e}") from None
        idx = np.unique(np.round(np.linspace(0, len(frames) - 1, min(MAX_SAMPLE_FRAMES, len(frames)))).astype(int))
        images = [Image.fromarray(frames[j]) for j in idx]
        buf = io.BytesIO()
        images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=80, loop=0)
        return buf.getvalue()

    def _pose_gif(self, rec: VideoRecord) -> bytes:
        from dance.motion.poses import pose_source_for
        from dance.motion.render import save_animation

        if self.settings is None:
            raise DanceError("the run has no settings (no config.yaml, and none stored in its stage manifests)")
        source = pose_source_for(self.settings.poses, self.settings.data.path)
        if not hasattr(source, "sequence"):
            raise DanceError(f"pose source '{source.name}' does not read whole sequences")
        seq = source.sequence(rec)
        if len(seq.keypoints) == 0:
            raise DanceError("empty pose sequence")
        idx = np.unique(np.round(np.linspace(0, len(seq.keypoints) - 1, min(48, len(seq.keypoints)))).astype(int))
        skeleton = self.view.skeleton
        return _gif_bytes(lambda p: save_animation(p, [seq.keypoints[idx]], skeleton, [rec.video_id],
                                                   size=PREVIEW_SIZE, fps=10, scores=[seq.scores[idx]]))

    def concept_gif(self, concept: str) -> bytes:
        """The medoid pose sequence of a motion concept, animated (from the catalogue when it has one)."""
        name = concept.split(":", 1)[1] if concept.startswith("motion:") else concept
        return self._gifs.get(f"concept:{name}", lambda: self._make_concept_gif(name))

    def _make_concept_gif(self, name: str) -> bytes:
        from dance.motion.render import save_animation

        try:
            names = self.view.motion_names
        except (OSError, ValueError, KeyError, StageError):
            raise NotFound("the run has no motion concepts") from None
        if name not in names:
            raise NotFound(f"no motion concept '{name}'")
        cached = self.view.catalogue_gif(name)
        if cached is not None:
            return cached.read_bytes()
        seq = self.view.motion["medoid_keypoints"][names.index(name)]
        return _gif_bytes(lambda p: save_animation(p, [seq], self.view.skeleton, [name], size=120, fps=8))


def _gif_bytes(write) -> bytes:
    with tempfile.TemporaryDirectory(prefix="dance-viewer-") as tmp:
        path = Path(tmp) / "a.gif"
        write(path)
        return path.read_bytes()
