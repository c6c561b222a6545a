"""Tiny finished runs for the sanity / intervene / viewer tests, built once per test process.

Each test that writes into a run (sanity.json, edits/) works on its own copy (:func:`copy_run`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch
import yaml

from dance.config import load_settings
from dance.data.synthetic import generate
from dance.pipeline import STAGE_NAMES, run_pipeline
from dance.pipeline.runner import Context
from dance.runs import RunDir

_BUILT: dict[str, Path] = {}
# everything the model needs; baseline, evaluate and the catalogue are not read by these tools
_NEEDED = [s for s in STAGE_NAMES if s not in ("baseline", "evaluate", "catalogue")]


def _build(root: Path, settings) -> Path:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_pipeline(Context(settings, RunDir(root / "run")), only=_NEEDED)
    finally:
        torch.set_num_threads(previous)
    # a full `dance run` writes config.yaml; a run of chosen stages does not
    (root / "run" / "config.yaml").write_text(yaml.safe_dump(settings.model_dump(), sort_keys=False))
    return root / "run"


def rgb_run(tmp_path_factory) -> Path:
    """36 synthetic videos (48 px, 12 frames), random-3dconv features, motion + object + scene concepts."""
    if "rgb" not in _BUILT:
        root = tmp_path_factory.mktemp("inspect-rgb")
        data = root / "data"
        generate(data, n_videos=36, seed=5, size=48, n_frames=12)
        settings = load_settings(None, [
            f"data.path={data / 'annotations.csv'}", f"poses.path={data / 'poses_gt'}",
            f"spatial.path={data / 'context_labels.csv'}", "keyclips.n_clips=2", "keyclips.clip_len=6",
            "features.n_frames=6", "features.size=48", "train.concept_steps=40", "train.n_lambdas=4"])
        _BUILT["rgb"] = _build(root, settings)
    return _BUILT["rgb"]


JOINTS = ["head", "hand_a", "hand_b", "foot_a", "foot_b"]


def pose_run(tmp_path_factory) -> Path:
    """A 5-joint pose dataset (3 classes, 30 sequences) with a briefly trained pose-encoder backbone."""
    if "pose" not in _BUILT:
        root = tmp_path_factory.mktemp("inspect-pose")
        data = root / "data"
        (data / "poses").mkdir(parents=True)
        (data / "skeleton.json").write_text(json.dumps({"joints": JOINTS, "edges": [[0, 1], [0, 2], [0, 3], [0, 4]]}))
        rng = np.random.default_rng(0)
        rows = ["video_id,label,split"]
        base = np.array([[50, 20], [35, 45], [65, 45], [42, 90], [58, 90]], dtype=np.float32)
        for i in range(30):
            cls = i % 3
            split = "train" if i < 18 else ("val" if i < 24 else "test")
            t = np.arange(int(rng.integers(30, 50)))
            kp = np.repeat(base[None], len(t), axis=0) + rng.normal(0, 0.7, (len(t), 5, 2)).astype(np.float32)
            # a ramp, not a wave: the movement has a direction in time
            kp[:, cls + 1, 1] += 30 * (t / len(t)) ** 2
            np.savez(data / "poses" / f"s{i:03d}.npz", keypoints=kp.astype(np.float32),
                     scores=np.ones(kp.shape[:2], np.float32))
            rows.append(f"s{i:03d},{['raise_a', 'raise_b', 'lift_foot'][cls]},{split}")
        (data / "annotations.csv").write_text("\n".join(rows) + "\n")
        settings = load_settings(None, [
            f"data.path={data / 'annotations.csv'}", "data.format=pose", "spatial.source=none",
            "features.backbone=pose-encoder", "features.epochs=4", "features.length=16", "keyclips.n_clips=3",
            "keyclips.clip_len=6", "train.concept_steps=30", "train.n_lambdas=3", "motion.partition=0"])
        _BUILT["pose"] = _build(root, settings)
    return _BUILT["pose"]


def copy_run(run: Path, dest: Path) -> Path:
    """A private copy of a run (its config still points at the shared dataset, which is only read)."""
    shutil.copytree(run, dest)
    return dest
