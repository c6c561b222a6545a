"""End to end: synthetic videos → every stage → summary; caching and forced reruns; the demo command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dance.cli import app
from dance.config import load_settings
from dance.data.synthetic import generate
from dance.pipeline import STAGE_NAMES, run_pipeline
from dance.pipeline.runner import Context
from dance.pipeline.train import NO_HEAD
from dance.runs import RunDir

FAST = ["keyclips.n_clips=2", "keyclips.clip_len=8", "features.n_frames=8", "features.size=64",
        "train.concept_steps=60", "train.n_lambdas=5"]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    generate(out, n_videos=72, seed=3, size=64, n_frames=16)
    return out


def _settings(data: Path, extra: list[str] = ()):
    return load_settings(None, [f"data.path={data / 'annotations.csv'}", f"poses.path={data / 'poses_gt'}",
                                f"spatial.path={data / 'context_labels.csv'}", *FAST, *extra])


def test_pipeline_runs_caches_and_reruns(tiny_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    results = run_pipeline(Context(_settings(tiny_data), RunDir(run)))
    assert [r.name for r in results] == list(STAGE_NAMES)
    assert all(r.status == "ran" for r in results)
    summary = json.loads((run / "summary.json").read_text())
    for key in ("test_accuracy", "baseline_test_accuracy", "type_agreement", "n_concepts", "nonzero_weights",
                "stages"):
        assert key in summary
    assert set(summary["n_concepts"]) == {"motion", "object", "scene"}
    assert summary["n_concepts"]["motion"] > 0
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    assert (run / "train" / "model" / "model.safetensors").is_file()
    # the validation comparison agrees with what the train and baseline stages measured on the same videos
    baseline = json.loads((run / "baseline" / "baseline.json").read_text())
    assert summary["baseline_validation_accuracy"] == baseline["accuracy"]["val"]
    chosen = [c for c in summary["selection"]["concept_layer"]["candidates"] if c["chosen"]]
    assert len(chosen) == 1 and summary["validation_accuracy"] == pytest.approx(chosen[0]["val_accuracy"])
    assert summary["n_val"] > 0
    # train.distill=auto (the default) with a frozen backbone: no head to distil, one share, and the run says why
    assert summary["selection"]["concept_layer"]["distill"] == {
        "share": 0.0, "setting": "auto", "candidates": [0.0], "teacher": None, "why_not": NO_HEAD}

    again = run_pipeline(Context(_settings(tiny_data), RunDir(run)))
    assert all(r.status == "cached" for r in again)

    forced = run_pipeline(Context(_settings(tiny_data), RunDir(run)), force=("motion",))
    status = {r.name: r.status for r in forced}
    assert status["motion"] == "ran" and status["features"] == "cached"

    # a changed setting reruns that stage and everything downstream of it, nothing upstream
    changed = run_pipeline(Context(_settings(tiny_data, ["train.lam=0.01", "train.distill=0.5"]), RunDir(run)))
    status = {r.name: r.status for r in changed}
    assert status["train"] == "ran" and status["evaluate"] == "ran"
    assert status["features"] == "cached" and status["motion"] == "cached" and status["baseline"] == "cached"
    # a frozen backbone has no head of its own to distil: the run says so and fits on the labels
    distill = json.loads((run / "summary.json").read_text())["selection"]["concept_layer"]["distill"]
    assert distill == {"share": 0.0, "setting": 0.5, "teacher": None, "why_not": NO_HEAD}


def test_single_stage_needs_upstream(tiny_data: Path, tmp_path: Path) -> None:
    from dance.errors import StageError

    with pytest.raises(StageError, match="run it first"):
        run_pipeline(Context(_settings(tiny_data), RunDir(tmp_path / "run")), only=["motion"])


def test_cli_demo_small_and_reuse(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["demo", "--out", str(tmp_path / "demo"), "--videos", "48"] + sum((["--set", s] for s in FAST), [])
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert {"test_accuracy", "baseline_test_accuracy", "type_agreement", "stages"} <= set(summary)
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    again = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert set(again["cached"]) == set(STAGE_NAMES)


def test_cli_reports_bad_dataset_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "annotations.csv"
    bad.write_text("path,label,split\nmissing.mp4,a,train\n")
    result = CliRunner().invoke(app, ["run", "--run", str(tmp_path / "run"), "--data", str(bad)])
    assert result.exit_code == 2
    assert "missing.mp4" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_demo_contract(tmp_path: Path) -> None:
    """The issue's contract on the default demo: DANCE within 3 points of the probe, type agreement >= 0.8."""
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    s = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert s["test_accuracy"] >= s["baseline_test_accuracy"] - 0.03, s
    assert s["type_agreement"] >= 0.8, s


def test_features_cache_reencodes_an_edited_video(tiny_data: Path, tmp_path: Path) -> None:
    """The per-video feature cache must not return stale features after a video file changes."""
    import shutil

    import numpy as np

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    run = tmp_path / "run"
    settings = _settings(data)
    run_pipeline(Context(settings, RunDir(run)), only=None)
    before = np.load(run / "features" / "features.npz")["x"]
    # replace the first video by another one: its features must change, the others must not
    rows = (data / "annotations.csv").read_text().splitlines()
    first, second = rows[1].split(",")[0], rows[2].split(",")[0]
    shutil.copy(data / second, data / first)
    results = run_pipeline(Context(settings, RunDir(run)))
    assert {r.name: r.status for r in results}["features"] == "ran"
    after = np.load(run / "features" / "features.npz")["x"]
    assert not np.allclose(before[0], after[0])
    np.testing.assert_allclose(after[0], after[1], rtol=1e-4, atol=1e-4)  # same video, other batch
    np.testing.assert_array_equal(before[2:], after[2:])
