"""DANCE under a background shift: a run trained on a scene-bias data set, scored on seen, unseen and swapped clips.

The run is made from the data set's ``annotations_dance.csv`` (train + the seen, unseen and swapped test clips, all
in the test split; :mod:`dance.scene_bias.data`), so one run scores every set: a test video's set is the folder
of its file (``videos/<set>/``). Read here, through :class:`~dance.run_view.RunView`:

- **action accuracy** on seen, unseen and swapped (SCUBA-style stripes) clips, as DEVIAS reports it;
- **scene accuracy** read from DANCE's scene concepts: the scene concept with the largest activation is the
  predicted scene (seen and unseen clips; the stripes are no scene of the vocabulary); with the action accuracies
  the harmonic mean of DEVIAS (:func:`dance.scene_bias.train.harmonic_mean`);
- **explanations**: for every seen clip and its swapped copy (the same actor and timing), the summed contributions
  of motion and of scene concepts to the true class's logit: does the motion evidence stay while the scene's changes;
- **the intervention of the paper's Fig. 10**: :func:`dance.explain.edit_search.search_edits` on the swapped clips
  (edits chosen on one half, counted on the other), and what the edited model does on the seen clips.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from dance.errors import IndexFormatError
from dance.explain.edit_search import search_edits
from dance.model.contributions import contributions, type_shares
from dance.run_view import RunView
from dance.scene_bias.data import read_manifest
from dance.scene_bias.train import harmonic_mean

__all__ = ["SETS", "score_scene_shift"]

SETS = ("seen", "unseen", "swapped")


def _scenes_by_clip(data_dir: Path, manifest: dict) -> dict[str, str]:
    path = data_dir / manifest["files"].get("dance", "annotations_dance.csv")
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            return {Path(r["path"]).stem: r["scene"] for r in csv.DictReader(fh)}
    except (OSError, KeyError) as e:
        raise IndexFormatError(f"{path}: cannot read the clips' scenes ({e}); make the data set again with "
                               "`dance scene-bias data`") from None


def _mean(a: np.ndarray) -> float | None:
    return float(a.mean()) if len(a) else None


def score_scene_shift(run: Path | str, data_dir: Path | str, *, version: str | None = None, weight: float = 1.0,
                      max_edits: int = 5, seed: int = 0) -> dict:
    """The metrics of the module docstring as a JSON-ready dict (accuracies as fractions)."""
    data_dir = Path(data_dir)
    manifest = read_manifest(data_dir)
    view = RunView(run).require("train", command="dance scene-bias dance")
    model, _ = view.load_version(version)
    videos = view.videos
    records = [videos.record(i) for i in range(len(videos.video_ids))]
    sets = np.array([Path(r.path).parent.name if r.split == "test" else r.split for r in records])
    missing = [s for s in SETS if not (sets == s).any()]
    if missing:
        raise IndexFormatError(f"{run}: no test videos of {', '.join(missing)}; was the run made from "
                               f"{data_dir / 'annotations_dance.csv'}?")
    z = model.concept_activations(videos.X)
    y = videos.targets(model)
    pred = model.logits_from_concepts(z).argmax(axis=1)
    out: dict = {f"action_{s}": float((pred[sets == s] == y[sets == s]).mean()) for s in SETS}

    scene_cols = [j for j, t in enumerate(model.concept_types_) if t == "scene"]
    scene_names = [model.concept_names_[j].split(":", 1)[1] for j in scene_cols]
    if scene_cols:
        by_clip = _scenes_by_clip(data_dir, manifest)
        true_scene = np.array([by_clip.get(Path(r.path).stem, "") for r in records])
        guess = np.array(scene_names)[z[:, scene_cols].argmax(axis=1)]
        for s in ("seen", "unseen"):
            out[f"scene_{s}"] = float((guess[sets == s] == true_scene[sets == s]).mean())
        out["hm"] = harmonic_mean([out["action_seen"], out["action_unseen"], out["scene_seen"], out["scene_unseen"]])

    # explanations: each swapped clip against the seen clip it copies (file name swapped_N <-> seen_N)
    pos = {Path(r.path).stem: i for i, r in enumerate(records)}
    pairs = [(pos["seen" + stem[len("swapped"):]], i) for stem, i in pos.items()
             if sets[i] == "swapped" and "seen" + stem[len("swapped"):] in pos]
    shares: dict[str, dict[str, float | None]] = {"seen": {}, "swapped": {}}
    if pairs:
        seen_rows, swapped_rows = (np.array(p) for p in zip(*pairs))
        for name, rows in (("seen", seen_rows), ("swapped", swapped_rows)):
            per_type: dict[str, list[float]] = {}
            for i in rows:
                for t, v in type_shares(model, contributions(model, z[i:i + 1], int(y[i]))).items():
                    per_type.setdefault(t, []).append(float(v[0]))
            shares[name] = {t: _mean(np.array(v)) for t, v in per_type.items()}
    out["explanations"] = {"pairs": len(pairs), "contribution_to_true_class": shares}

    sw = np.flatnonzero(sets == "swapped")
    edited, res = search_edits(model, z[sw], y[sw], weight=weight, max_edits=max_edits, seed=seed,
                               ids=[videos.video_ids[i] for i in sw])
    seen = sets == "seen"
    out["intervention"] = {
        "before": res.check.accuracy_before, "after": res.check.accuracy_after, "fixed": res.check.fixed,
        "broken": res.check.broken, "n_check": len(res.check_ids), "n_search": len(res.search_ids),
        "search_before": res.search.accuracy_before, "search_after": res.search.accuracy_after,
        "weight": res.weight, "edits": [{"class": e.cls, "concept": e.concept, "fixed": e.fixed,
                                         "broken": e.broken} for e in res.edits],
        "seen_before": out["action_seen"],
        "seen_after": float((edited.logits_from_concepts(z[seen]).argmax(axis=1) == y[seen]).mean()),
    }
    out["n"] = {s: int((sets == s).sum()) for s in SETS}
    return out
