"""DANCE on the scene-bias data: the files it reads, `dance scene-bias demo` end to end (issue 14 items 5, 6)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dance.cli import app
from dance.data.formats import load_index
from dance.explain.report import build_report
from dance.scene_bias.data import DataSettings, generate, plan, render_clip

runner = CliRunner()
SMALL = DataSettings(actions=("squat", "jumping_jack", "bow"), scenes=("court", "pool", "snow"), correlation=0.8,
                     n_train=48, n_seen=12, n_unseen=12, size=32, n_frames=8, seed=5)


def test_data_set_holds_what_dance_reads(tmp_path: Path) -> None:
    generate(tmp_path, SMALL)
    index = load_index(tmp_path / "annotations_dance.csv")
    sets = {Path(r.path).parent.name for r in index.records if r.split == "test"}
    assert sets == {"seen", "unseen", "swapped"} and sum(r.split == "test" for r in index.records) == 36
    # exact joints of every clip with an actor, the same joints as the renderer's
    skeleton = json.loads((tmp_path / "poses_gt" / "skeleton.json").read_text())
    spec = plan(SMALL)["swapped"][0]
    _, _, joints = render_clip(spec, SMALL)
    with np.load(tmp_path / "poses_gt" / "poses" / f"{spec.clip_id}.npz") as z:
        assert np.array_equal(z["keypoints"], joints) and z["keypoints"].shape[1] == len(skeleton["joints"])
        assert z["scores"].shape == joints.shape[:2]
    with open(tmp_path / "poses_gt" / "annotations.csv", newline="") as f:
        assert sum(1 for _ in csv.DictReader(f)) == 48 + 12 * 3  # no pose for scene-only clips
    # scene labels for every clip with a scene of the vocabulary: not the stripes, which are no concept
    with open(tmp_path / "context_labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["scene"] for r in rows} == set(SMALL.scenes) and len(rows) == 48 + 12 * 3
    assert json.loads((tmp_path / "concepts.json").read_text()) == {"object": [], "scene": list(SMALL.scenes)}


@pytest.mark.slow
def test_demo_end_to_end_writes_scene_bias_json_and_a_report_section(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    args = ["scene-bias", "demo", "--out", str(out), "--seed", "1", "--threads", "1", "--train", "48", "--seen",
            "12", "--unseen", "12", "--size", "32", "--frames", "8", "--epochs", "1"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    result = json.loads((out / "scene_bias.json").read_text())
    assert set(result["models"]) == {"baseline", "devias", "dance"}
    for m in result["models"].values():
        assert {"action_seen", "action_unseen", "action_swapped", "scene_seen", "scene_unseen", "hm"} <= set(m)
        assert all(0.0 <= v <= 1.0 for v in m.values())
    iv = result["intervention"]
    assert {"before", "after", "fixed", "broken"} <= set(iv)
    assert iv["n_search"] + iv["n_check"] == result["n"]["swapped"] == 12
    # the check half's counts agree with its accuracies
    assert round((iv["after"] - iv["before"]) * iv["n_check"]) == iv["fixed"] - iv["broken"]
    assert result["explanations"]["pairs"] == 12
    # a second demo reuses the data, the models and the run's stages
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and "reusing" in res.output
    assert json.loads((out / "scene_bias.json").read_text())["models"] == result["models"]
    report = build_report(out / "run")
    html = report.path.read_text()
    assert "Action vs scene" in html and "paper Fig. 10" in html
    # `dance scene-bias dance` on a data set made before DANCE could run on it says so
    (out / "data" / "scene_bias.json").write_text(json.dumps(
        {**json.loads((out / "data" / "scene_bias.json").read_text()), "files": {"train": "annotations.csv"}}))
    res = runner.invoke(app, ["scene-bias", "dance", str(out / "data"), "--run", str(tmp_path / "r2")])
    assert res.exit_code == 2 and "make it again" in res.output
