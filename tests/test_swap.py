"""`dance swap`: SCUBA-style background-swapped copies of a video index (issue 14 item 2)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dance.cli import app
from dance.data.formats import load_index
from dance.data.video import read_video
from dance.scene_bias.data import DataSettings, generate
from dance.scene_bias.swap import SwapSettings, actor_masks, swap_index

runner = CliRunner()
CLIPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "clips"
SMALL = DataSettings(actions=("squat", "bow"), scenes=("court", "pool", "snow"), n_train=8, n_seen=4, n_unseen=4,
                     size=48, n_frames=8, seed=2)


def test_mask_recipe_thresholds_dilates_and_ors_over_neighbour_frames() -> None:
    soft = np.zeros((4, 9, 9), np.float32)
    soft[1, 4, 4] = 0.6  # one confident pixel on frame 1
    soft[3, 0, 0] = 0.4  # below the threshold
    m = actor_masks(soft, SwapSettings(dilate=1))
    assert m[1, 3:6, 3:6].all() and m[1].sum() == 9  # a 3x3 square
    assert (m[0] == m[1]).all() and (m[2] == m[1]).all()  # OR over ±1 frame
    assert not m[3].any()


def test_swap_keeps_the_exact_actor_and_replaces_the_scene(tmp_path: Path) -> None:
    data = tmp_path / "sb"
    generate(data, SMALL)
    records = [r for r in load_index(data / "annotations.csv").records if r.split == "test"]
    summary = swap_index(records, tmp_path / "out", SwapSettings(background="scenes", seed=1),
                         index_csv=data / "annotations.csv", masker=lambda f, w: pytest.fail("exact masks exist"))
    assert summary["kept"] == len(records) == 4 and summary["mask_source"] == "exact"
    with open(tmp_path / "out" / "annotations.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["label"] for r in rows] == [r.label for r in records]
    assert all(r["background"].startswith("scene:") for r in rows)
    for row, rec in zip(rows, records):
        before, after = read_video(rec.path).astype(int), read_video(tmp_path / "out" / row["path"]).astype(int)
        with np.load(data / "masks" / "seen" / f"{Path(rec.path).stem}.npz") as z:
            mask = z["mask"]
        diff = np.abs(before - after).mean(axis=-1)
        # H.264 twice: the actor's pixels stay close, the background's change
        assert diff[mask].mean() < 12 and diff[~mask].mean() > 2 * diff[mask].mean()
    # the swapped index is a video index `dance run` reads
    assert len(load_index(tmp_path / "out" / "annotations.csv", required_splits=()).records) == 4


def test_swap_reports_skips_and_cli_errors(tmp_path: Path) -> None:
    data = tmp_path / "sb"
    generate(data, SMALL)
    bad = data / "videos" / "seen" / "seen_00001.mp4"
    bad.write_bytes(b"not a video at all")
    res = runner.invoke(app, ["swap", str(data / "annotations.csv"), "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "out" / "swap.json").read_text())
    assert summary["kept"] == 11 and list(summary["skipped_videos"]) == ["videos__seen__seen_00001"]
    assert "skipped videos__seen__seen_00001" in res.output and "11 kept, 1 skipped" in res.output
    res = runner.invoke(app, ["swap", str(data / "annotations.csv"), "--out", str(tmp_path / "o2"),
                              "--background", "moon"])
    assert res.exit_code == 2 and "background must be one of" in res.output


@pytest.mark.slow
def test_real_clip_keeps_its_pose(tmp_path: Path) -> None:
    if not (CLIPS / "clean_and_jerk.mp4").is_file():
        pytest.skip(f"real clips not found at {CLIPS} (../shared/data is not on this machine)")
    pytest.importorskip("mediapipe", reason="mediapipe not installed (optional extra: pip install 'dance-xai[pose]')")
    from dance.motion.mediapipe_source import MediaPipePoseSource

    root = tmp_path / "clips"
    root.mkdir()
    shutil.copy(CLIPS / "clean_and_jerk.mp4", root)
    (root / "index.csv").write_text("path,label,split\nclean_and_jerk.mp4,clean_and_jerk,test\n")
    records = load_index(root / "index.csv", required_splits=()).records
    summary = swap_index(records, tmp_path / "out", SwapSettings(max_frames=40))
    assert summary["kept"] == 1 and summary["mask_source"] == "mediapipe", summary["skipped_videos"]
    assert 0.03 < summary["coverage"]["clean_and_jerk"] < 0.5
    before = read_video(root / "clean_and_jerk.mp4", max_frames=40)
    after = read_video(tmp_path / "out" / "videos" / "clean_and_jerk.mp4")
    assert after.shape == before.shape and np.abs(before.astype(int) - after.astype(int)).mean() > 10  # new scene
    source = MediaPipePoseSource()
    pa, pb = source.estimate(before), source.estimate(after)
    both = (pa.scores > 0.5) & (pb.scores > 0.5)
    assert both.mean() > 0.8
    dist = np.linalg.norm(pa.keypoints - pb.keypoints, axis=-1)[both]
    # the actor is kept: the pose moves by well under 2 % of the frame diagonal (measured: median 1.5 px of 426)
    assert np.median(dist) < 0.02 * np.hypot(*before.shape[1:3])
