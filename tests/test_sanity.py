"""`dance sanity`: videos played backwards through the run's own path; sanity.json's top-level numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _inspect_runs import copy_run
from typer.testing import CliRunner

from dance.cli import app
from dance.errors import DanceError
from dance.explain.intervene import load_run_videos
from dance.explain.sanity import FIELDS, Encoded, compare, sanity_check
from dance.model.versions import load_version

# the runs: the rgb and pose fixtures of tests/conftest.py


def _check_numbers(out: dict) -> None:
    for f in FIELDS:
        assert f in out
        assert out[f] is None or isinstance(out[f], (int, float))
    for f in ("prediction_changed_fraction", "accuracy_original", "accuracy_reversed", "top_motion_overlap"):
        assert 0.0 <= out[f] <= 1.0
    assert out["reencode_max_abs_diff"] < 1e-4  # the original re-encoded exactly as the features stage did


def test_sanity_rgb_run_writes_json(rgb: Path, tmp_path: Path) -> None:
    run = copy_run(rgb, tmp_path / "run")
    out = sanity_check(run, split="test", k=2)
    saved = json.loads((run / "sanity" / "sanity.json").read_text())
    assert saved["n"] == out["n"] == int((load_run_videos(run).splits == "test").sum())
    _check_numbers(saved)
    assert saved["baseline_prediction_changed_fraction"] is None  # no trained head for a video backbone
    assert saved["other_share_change"] is not None  # object and scene concepts exist
    assert saved["motion_label_jaccard"] is not None  # pose-cluster labels recomputed from poses_gt
    assert saved["version"] == "v000" and "reversed" in saved["reversal"]
    assert 1 <= len(saved["examples"]) <= 6
    ex = saved["examples"][0]
    for key in ("video_id", "label", "original", "reversed", "changed", "original_top_motion", "reversed_top_motion",
                "original_motion_labels", "reversed_motion_labels"):
        assert key in ex
    assert sum(c["n"] for c in saved["per_class"].values()) == saved["n"]


def test_sanity_pose_run_and_limit(pose: Path, tmp_path: Path) -> None:
    run = copy_run(pose, tmp_path / "run")
    out = sanity_check(run, split="test", limit=4)
    assert out["n"] == 4 and out["limit"] == 4
    _check_numbers(out)
    assert out["baseline_prediction_changed_fraction"] is not None  # the pose encoder's own head
    assert out["other_share_change"] is None  # motion concepts only
    assert "pose sequences reversed" in out["reversal"]


def test_compare_identical_inputs_change_nothing(rgb: Path) -> None:
    model, _ = load_version(rgb)
    data = load_run_videos(rgb)
    x = data.X[:5]
    enc = Encoded(list(range(5)), x, x.copy(), [{1, 2}] * 5, [{1, 2}] * 5)
    out = compare(model, enc, data.targets(model)[:5], k=3)
    assert out["prediction_changed_fraction"] == 0.0
    assert out["top_motion_overlap"] == pytest.approx(1.0)
    assert out["motion_share_change"] == pytest.approx(0.0, abs=1e-6)
    assert out["motion_label_jaccard"] == 1.0 and out["motion_label_changed_fraction"] == 0.0
    assert out["motion_activation_correlation"] == pytest.approx(1.0)


def test_sanity_cli(rgb: Path, tmp_path: Path) -> None:
    run = copy_run(rgb, tmp_path / "run")
    res = CliRunner().invoke(app, ["sanity", str(run), "--limit", "3", "--no-pose-labels"])
    assert res.exit_code == 0, res.output
    assert "prediction_changed_fraction" in res.output
    out = json.loads((run / "sanity" / "sanity.json").read_text())
    assert out["n"] == 3 and out["motion_label_jaccard"] is None


def test_sanity_errors(rgb: Path, tmp_path: Path) -> None:
    with pytest.raises(DanceError, match="split 'nope'"):
        sanity_check(rgb, split="nope", write=False)
    with pytest.raises(DanceError, match="not a finished run"):
        sanity_check(tmp_path, write=False)
    res = CliRunner().invoke(app, ["sanity", str(rgb), "--limit", "0"])
    assert res.exit_code == 2 and "limit" in res.output
