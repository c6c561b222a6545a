"""dance.run_view: one read-only view of a finished run (settings per stage, artifacts, model versions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from _inspect_runs import copy_run

from dance.config import load_settings
from dance.errors import StageError
from dance.explain.intervene import load_run_videos
from dance.pipeline import run_pipeline
from dance.pipeline.runner import Context
from dance.run_view import RunView, inner_run
from dance.runs import MANIFEST, Manifest, RunDir, read_json


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def test_every_stage_stores_the_settings_it_ran_with(rgb: Path) -> None:
    view = RunView(rgb)
    config = load_settings(rgb / "config.yaml")
    assert view.stage_settings("index") == {"data": config.data.model_dump()}
    assert view.stage_settings("keyclips") == {"keyclips": config.keyclips.model_dump(),
                                               "poses": config.poses.model_dump()}
    assert set(view.stage_settings("features")) == {"features", "poses"}
    assert view.settings == config  # every section as its stage ran with it: here the same as config.yaml
    assert view.clip_len == 6 == view.keyclips["clip_len"]


def test_a_single_stage_setting_is_read_from_that_stage(rgb: Path, tmp_path: Path) -> None:
    run = copy_run(rgb, tmp_path / "run")
    config = load_settings(run / "config.yaml")
    changed = load_settings(run / "config.yaml", ["keyclips.threshold=0.3"])
    run_pipeline(Context(changed, RunDir(run)), only=["keyclips"])  # like `dance keyclips --set ...`
    assert load_settings(run / "config.yaml") == config  # a single stage does not rewrite config.yaml
    view = RunView(run)
    assert view.settings.keyclips.threshold == 0.3  # what the keyclips stage ran with
    assert view.settings.motion == config.motion
    assert view.settings_of("index").keyclips.threshold == config.keyclips.threshold  # index did not store it


def test_runs_without_stored_settings_fall_back_to_config_yaml(rgb: Path, tmp_path: Path) -> None:
    run = copy_run(rgb, tmp_path / "run")
    for manifest in run.glob(f"*/{MANIFEST}"):  # manifests as they were written before settings were stored
        data = read_json(manifest)
        data.pop("settings")
        manifest.write_text(json.dumps(data))
    assert RunView(run).stage_settings("keyclips") is None
    assert RunView(run).settings == load_settings(run / "config.yaml")
    (run / "config.yaml").unlink()
    with pytest.raises(StageError, match="config.yaml"):
        RunView(run).settings  # noqa: B018


def test_stored_settings_need_no_config_yaml(rgb: Path, tmp_path: Path) -> None:
    run = copy_run(rgb, tmp_path / "run")
    expected = load_settings(run / "config.yaml")
    (run / "config.yaml").unlink()
    assert RunView(run).settings == expected


def test_clip_len_comes_from_keyclips_json(rgb: Path, tmp_path: Path) -> None:
    run = copy_run(rgb, tmp_path / "run")
    kc = read_json(run / "keyclips" / "keyclips.json")
    kc["clip_len"] = 5
    (run / "keyclips" / "keyclips.json").write_text(json.dumps(kc))
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["keyclips"]["clip_len"] == 6
    assert RunView(run).clip_len == 5


def test_artifacts_index_features_concepts_and_versions(rgb: Path) -> None:
    before = _files(rgb)
    view = RunView(rgb)
    index, feats = view.index, view.features
    assert len(feats["x"]) == len(feats["ok"]) == len(index.records)
    videos = view.videos
    assert len(videos.video_ids) == int(feats["ok"].sum())
    assert np.array_equal(videos.X, load_run_videos(rgb).X)
    assert all(videos.record(i).video_id == v for i, v in enumerate(videos.video_ids))
    assert view.split_rows("train").sum() == sum(r.split == "train" for r in index.records)

    names = view.concept_names
    assert list(names)[0] == "motion" and {"object", "scene"} <= set(names)
    assert names["motion"] == view.motion_concepts["names"] == view.motion_names
    model, version = view.load_version()
    assert version.name == "v000" and [v.name for v in view.versions()] == ["v000"]
    qualified = {f"{t}:{n}" for t, ns in names.items() for n in ns}
    assert set(model.concept_names_) <= qualified
    assert model.concept_names_ == view.trained_model.concept_names_
    assert view.skeleton.n_joints == view.poses["keypoints"].shape[2]
    rows = view.clip_rows
    assert sum(len(r) for r in rows.values()) == len(view.poses["clip_video"])
    assert view.catalogue is None and view.sanity is None  # not run for these tools
    assert view.sanity_path == rgb / "sanity" / "sanity.json"
    assert _files(rgb) == before  # read-only: nothing written, nothing touched


def test_missing_stages_and_demo_folders(rgb: Path, tmp_path: Path) -> None:
    with pytest.raises(StageError, match="not a finished run"):
        RunView(tmp_path / "nothing")
    with pytest.raises(StageError, match="not a finished run .*'index'"):
        RunView(tmp_path).require("index")
    with pytest.raises(StageError, match=r"not a finished run \(evaluate/summary.json is missing\)"):
        RunView(rgb).summary  # noqa: B018 - the tools' runs stop before evaluate
    with pytest.raises(StageError, match="not a finished run .*no config.yaml"):
        RunView(tmp_path).settings  # noqa: B018
    assert inner_run(rgb.parent) == rgb and inner_run(rgb) is None
    with pytest.raises(StageError, match=r"holds a run at .*: use `dance report .*run`"):
        RunView(rgb.parent).require("index", command="report")


def test_manifest_settings_round_trip_and_old_manifests() -> None:
    m = Manifest("s", "fp", "sh", {}, "0", 0.0, 0.0, {}, {"keyclips": {"clip_len": 8}})
    assert Manifest.from_json(m.to_json()) == m
    old = {k: v for k, v in m.to_json().items() if k != "settings"}
    assert Manifest.from_json(old).settings is None
    assert "settings" not in Manifest.from_json(old).to_json()


def test_inspecting_a_run_imports_nothing_from_the_pipeline() -> None:
    code = ("import sys\nimport dance.cli_inspect, dance.explain.intervene, dance.explain.report, "
            "dance.explain.sanity, dance.explain.video, dance.run_view, dance.viewer\n"
            "print(sorted(m for m in sys.modules if m.startswith(('dance.pipeline', 'dance.cli.'))"
            " or m == 'dance.cli'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
