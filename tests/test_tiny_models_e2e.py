"""The whole pipeline with real model code and tiny random weights: VideoMAE backbone, X-CLIP / CLIP pseudo labels.

The tiny models are saved to folders the way hub checkpoints are and loaded through the same code a real folder
uses (``features.model`` / ``spatial.model``). Their weights are random, so the labels carry no meaning: the
cutoffs that drop uninformative object/scene concepts are switched off here, and the test checks the plumbing —
that motion, object and scene concepts all reach the final layer — not accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")

from tiny_models import save_tiny_clip, save_tiny_videomae, save_tiny_xclip  # noqa: E402

from dance.config import load_settings  # noqa: E402
from dance.data.synthetic import generate  # noqa: E402
from dance.model.io import load_model  # noqa: E402
from dance.pipeline import run_pipeline  # noqa: E402
from dance.pipeline.runner import Context  # noqa: E402
from dance.runs import RunDir  # noqa: E402

CONCEPTS = {"dataset": "synthetic", "source": {"kind": "test"}, "object": ["ball", "bicycle", "rope", "stick", "dog"],
            "scene": ["field", "gym", "pool", "road", "grass"]}


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-e2e")
    generate(root / "data", n_videos=48, seed=5, size=64, n_frames=16)
    (root / "concepts.json").write_text(json.dumps(CONCEPTS))
    return {"data": root / "data", "concepts": root / "concepts.json", "videomae": save_tiny_videomae(root / "vmae"),
            "xclip": save_tiny_xclip(root / "xclip"), "clip": save_tiny_clip(root / "clip")}


def _settings(s: dict[str, Path], dual: str):
    data = s["data"]
    return load_settings(None, [
        f"data.path={data / 'annotations.csv'}", f"poses.path={data / 'poses_gt'}",
        "keyclips.n_clips=2", "keyclips.clip_len=8",
        "features.backbone=videomae", f"features.model={s['videomae']}",
        f"language.concepts={s['concepts']}", f"spatial.source={dual}", f"spatial.model={s[dual]}",
        "train.clip_cutoff=0.0", "train.interpretability_cutoff=-1.0", "train.lam=1e-4",
        "train.concept_steps=60", "train.n_lambdas=5"])


@pytest.mark.parametrize("dual", ["xclip", "clip"])
def test_all_three_concept_types_reach_the_final_layer(setup: dict[str, Path], tmp_path: Path, dual: str) -> None:
    run = tmp_path / "run"
    results = run_pipeline(Context(_settings(setup, dual), RunDir(run)))
    assert {r.name for r in results} >= {"language", "spatial", "features", "train"}
    spatial = np.load(run / "spatial" / "spatial.npz")
    assert spatial["has_label"].all()
    for t in ("object", "scene"):
        assert spatial[t].shape == (48, 5)
        assert ((spatial[t] >= 0) & (spatial[t] <= 1)).all() and spatial[t].std() > 0  # soft labels, Eq. 3

    model = load_model(run / "train" / "model")
    types = np.array(model.concept_types_)
    assert set(types) == {"motion", "object", "scene"}
    for t in ("motion", "object", "scene"):
        assert np.abs(model.W_[:, types == t]).sum() > 0, f"no {t} concept has a non-zero final-layer weight"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["n_concepts"]["object"] > 0 and summary["n_concepts"]["scene"] > 0

    # the video embeddings are cached per video: a forced rerun of the spatial stage decodes nothing new
    cache = run / ".cache" / "spatial"
    files = sorted(p.name for p in cache.rglob("*.npy"))
    assert len(files) == 48
    again = run_pipeline(Context(_settings(setup, dual), RunDir(run)), force=("spatial",))
    assert {r.name: r.status for r in again}["features"] == "cached"
    assert sorted(p.name for p in cache.rglob("*.npy")) == files
