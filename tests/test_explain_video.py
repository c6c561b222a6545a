"""`dance explain VIDEO --run RUN` on a finished tiny run: prediction, concept table, animations, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dance.cli import app
from dance.config import load_settings
from dance.data.synthetic import generate
from dance.data.video import write_video
from dance.pipeline import run_pipeline
from dance.pipeline.runner import Context
from dance.runs import RunDir

pytest.importorskip("mediapipe", reason="the mediapipe extra (dance-xai[pose]) is not installed")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("explain")
    data = root / "data"
    generate(data, n_videos=48, seed=5, size=64, n_frames=16)
    settings = load_settings(None, [
        f"data.path={data / 'annotations.csv'}", f"poses.path={data / 'poses_gt'}",
        f"spatial.path={data / 'context_labels.csv'}", "keyclips.n_clips=2", "keyclips.clip_len=8",
        "features.n_frames=8", "features.size=64", "train.concept_steps=50", "train.n_lambdas=4"])
    run_pipeline(Context(settings, RunDir(root / "run")))
    return data, root / "run"


def test_explain_synthetic_video(tiny_run, tmp_path: Path) -> None:
    data, run = tiny_run
    video = data / "videos" / "v00001.mp4"
    result = CliRunner().invoke(app, ["explain", str(video), "--run", str(run), "--out", str(tmp_path / "x")])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "x" / "explanation.json").read_text())
    classes = json.loads((run / "train" / "model" / "model.json").read_text())["classes"]
    assert saved["predicted"] in classes
    assert set(saved["top"]) <= {"motion", "object", "scene"}
    assert "predicted" in result.output and "contribution" in result.output
    for gif in saved["animations"].values():
        assert Path(gif).is_file()


def test_explain_corrupt_video_is_a_clear_error(tiny_run, tmp_path: Path) -> None:
    _, run = tiny_run
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    result = CliRunner().invoke(app, ["explain", str(bad), "--run", str(run), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "broken.mp4" in result.output and "Traceback" not in result.output


def test_explain_needs_a_finished_run(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    write_video(video, np.zeros((8, 32, 32, 3), np.uint8), fps=8)
    result = CliRunner().invoke(app, ["explain", str(video), "--run", str(tmp_path / "nothing")])
    assert result.exit_code == 2
    assert "not a finished run" in result.output


def test_explain_estimates_poses_only_inside_the_key_clips(tiny_run, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """Key clips from pixel differences and a video backbone: poses are asked for the key-clip windows only
    (issue 13 item 4), one window at a time as the poses stage asks, and they are the poses stage's own: the
    key clips equal the run's, and the clips' motion concepts are those of the run's stored poses of that video."""
    import dance.explain.video as ev
    from dance.motion.clips import filter_settings, label_clips
    from dance.motion.poses import PoseSequence
    from dance.run_view import RunView

    data, run = tiny_run
    asked: list[np.ndarray] = []
    real = ev._pose_source

    class Recording:
        def __init__(self, source) -> None:  # noqa: ANN001
            self.source, self.skeleton, self.name = source, source.skeleton, source.name

        def poses(self, record, frame_indices):  # noqa: ANN001, ANN202
            asked.append(np.asarray(frame_indices))
            return self.source.poses(record, frame_indices)

    monkeypatch.setattr(ev, "_pose_source", lambda *a: Recording(real(*a)))
    result = ev.explain_video(data / "videos" / "v00007.mp4", run, tmp_path / "x", pose_source="annotations")
    kc = json.loads((run / "keyclips" / "keyclips.json").read_text())["videos"]["videos__v00007"]
    assert result.pose_frames == "key clips" and result.keyframes == kc["centres"]
    assert len(asked) == len(kc["centres"]) and all(len(a) == 8 for a in asked)  # one window each, never all frames
    view = RunView(run)
    row = [r.video_id for r in view.index.records].index("videos__v00007")
    with np.load(run / "poses" / "poses.npz") as z:
        mine = z["clip_video"] == row
        stored = [PoseSequence(k, s) for k, s in zip(z["keypoints"][mine], z["scores"][mine])]
    want = label_clips(stored, filter_settings(view.settings.motion), view.motion["centroids"])
    assert len(stored) == len(asked) and result.clip_concepts == [int(j) for j in want]
    assert json.loads((tmp_path / "x" / "explanation.json").read_text())["pose_frames"] == "key clips"
