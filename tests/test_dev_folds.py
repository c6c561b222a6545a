"""Development folds of ``benchmarks/pose_datasets.py --dev-folds``: how settings are compared without the test split
in view. The copies must never contain a test video, must cover every training video exactly once across folds,
and must keep each class in every fold."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from _benchmarks import load_benchmark

from dance.errors import DanceError

pose_datasets = load_benchmark("pose_datasets")


def _dataset(root: Path, rows: list[tuple[str, str, str]]) -> Path:
    (root / "poses").mkdir(parents=True)
    (root / "skeleton.json").write_text('{"joints": ["a", "b"]}', encoding="utf-8")
    with open(root / "annotations.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["video_id", "label", "split"])
        for vid, label, split in rows:
            w.writerow([vid, label, split])
            (root / "poses" / f"{vid}.npz").write_bytes(b"x" * 8)
    return root


def _split(folder: Path) -> dict[str, str]:
    with open(folder / "annotations.csv", newline="", encoding="utf-8") as f:
        return {r["video_id"]: r["split"] for r in csv.DictReader(f)}


def test_dev_folds_hold_out_each_training_video_once_and_never_a_test_video(tmp_path: Path) -> None:
    rows = [(f"v{i:02d}", "ab"[i % 2], ("train", "train", "val", "test")[i % 4]) for i in range(40)]
    data = _dataset(tmp_path / "data", rows)
    folds = [pose_datasets.dev_fold_dataset(data, tmp_path / "dev", k, 3) for k in range(3)]
    test_videos = {v for v, _, s in rows if s == "test"}
    held = [{v for v, s in _split(f).items() if s == "test"} for f in folds]
    for f, h in zip(folds, held):
        split = _split(f)
        assert not test_videos & set(split)  # the real test videos are in no copy
        assert set(split.values()) == {"train", "test"}  # the run draws validation from "train" itself
        assert {dict((v, lab) for v, lab, _ in rows)[v] for v in h} == {"a", "b"}  # stratified: both classes held
        assert (f / "skeleton.json").is_file() and (f / "poses" / "v00.npz").read_bytes() == b"x" * 8
    assert set.union(*held) == {v for v, _, s in rows if s != "test"}
    assert sum(len(h) for h in held) == len(set.union(*held))  # disjoint
    again = pose_datasets.dev_fold_dataset(data, tmp_path / "dev2", 1, 3)
    assert _split(again) == _split(folds[1])  # the same folds every time
    other = [{v for v, s in _split(pose_datasets.dev_fold_dataset(data, tmp_path / "fs1", k, 3, seed=1)).items()
              if s == "test"} for k in range(3)]
    assert set.union(*other) == set.union(*held) and other != held  # another fold seed: other test videos


def test_dev_views_train_on_some_values_and_test_on_the_others_never_a_test_video(tmp_path: Path, capsys) -> None:
    rows = [(f"v{i:02d}", "ab"[i % 2], ("train", "val", "test")[i % 3]) for i in range(30)]
    data = _dataset(tmp_path / "data", rows)
    view = {v: ("front", "back", "left", "right")[i % 4] for i, (v, _, _) in enumerate(rows)}
    with open(data / "annotations.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["video_id", "label", "split", "view"])
        w.writerows([v, lab, s, view[v]] for v, lab, s in rows)
    dev = pose_datasets.dev_view_dataset(data, tmp_path / "dev", "view", {"front", "back"})
    assert dev.name == "dev_by_view_back_front"
    split = _split(dev)
    assert set(split) == {v for v, _, s in rows if s != "test"}  # every training video, no test video
    assert {v for v, s in split.items() if s == "train"} == {v for v in split if view[v] in ("front", "back")}
    assert {v for v, s in split.items() if s == "test"} == {v for v in split if view[v] in ("left", "right")}
    # a class filmed only from the held-out views could never be predicted: it leaves the split, named
    only_side = pose_datasets.dev_view_dataset(data, tmp_path / "dev4", "view", {"front", "back", "left"})
    assert set(_split(only_side)) == set(split)  # both classes have front / back / left videos here
    with open(data / "annotations.csv", "a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerow(["c0", "c", "train", "right"])
    (data / "poses" / "c0.npz").write_bytes(b"x")
    narrow = pose_datasets.dev_view_dataset(data, tmp_path / "dev5", "view", {"front", "back"})
    assert "c0" not in _split(narrow) and "no training video of c" in capsys.readouterr().out
    with pytest.raises(DanceError, match="leave no test video"):
        pose_datasets.dev_view_dataset(data, tmp_path / "dev2", "view", {"front", "back", "left", "right"})
    with pytest.raises(DanceError, match="needs 'camera'"):
        pose_datasets.dev_view_dataset(data, tmp_path / "dev3", "camera", {"front"})
    # the benchmark's candidate probe accepts runs on such a split, as it does development folds
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(f"data:\n  path: {dev / 'annotations.csv'}\n", encoding="utf-8")
    candidates = load_benchmark("candidates")
    assert candidates.main([str(run)]) != 0  # the run has no stages: it fails later, not at the split check
    assert "not a development split" not in capsys.readouterr().err


def test_dev_groups_test_on_the_groups_an_id_names_never_a_test_video(tmp_path: Path, capsys) -> None:
    """MSR Action3D's development splits: two of its training subjects (named in each id) held out as the test."""
    rows = [(f"a{a:02d}_s{s:02d}_e01", f"c{a}", "test" if s % 2 == 0 else ("train", "val")[a % 2])
            for a in range(1, 4) for s in range(1, 11)]
    data = _dataset(tmp_path / "data", rows)
    dev = pose_datasets.dev_group_dataset(data, tmp_path / "dev", r"_s0*([0-9]+)_", {"1", "5"})
    assert dev.name == "dev_by_group_test1_5"
    split = _split(dev)
    assert set(split) == {v for v, _, s in rows if s != "test"}  # every training video, no test video
    assert {v for v, s in split.items() if s == "test"} == {v for v in split if v.split("_")[1] in ("s01", "s05")}
    for pattern, match in ((r"_s(", "not a regular expression"), (r"_s0*[0-9]+_", "has no group"),
                           (r"_x([0-9]+)_", "names no group in video id")):
        with pytest.raises(DanceError, match=match):
            pose_datasets.dev_group_dataset(data, tmp_path / "bad", pattern, {"1"})
    with pytest.raises(DanceError, match="leave no training video"):
        pose_datasets.dev_group_dataset(data, tmp_path / "all", r"_s0*([0-9]+)_", {"1", "3", "5", "7", "9"})
    for bad in (["--dev-groups", "_s([0-9]+)_"], ["--dev-groups", "_s([0-9]+)_=1", "--dev-views", "view=a"]):
        with pytest.raises(SystemExit):
            pose_datasets.main(["--out", str(tmp_path), "--synthetic", "10", *bad])


def test_dev_views_argument_needs_a_column_and_values(tmp_path: Path) -> None:
    for bad in (["--dev-views", "view"], ["--dev-views", "=front"], ["--dev-views", "view=front", "--dev-folds", "3"]):
        with pytest.raises(SystemExit):
            pose_datasets.main(["--out", str(tmp_path), "--synthetic", "10", *bad])


def test_dev_folds_need_a_split_column(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "annotations.csv").write_text("video_id,label\nv0,a\n", encoding="utf-8")
    with pytest.raises(DanceError, match="'label' and 'split' columns"):
        pose_datasets.dev_fold_dataset(data, tmp_path / "dev", 0, 3)


def test_candidates_refuses_a_run_whose_test_split_is_real(tmp_path: Path, capsys) -> None:
    candidates = load_benchmark("candidates")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(f"data:\n  path: {tmp_path / 'penn' / 'annotations.csv'}\n", encoding="utf-8")
    assert candidates.main([str(run)]) == 2
    assert "not a development split" in capsys.readouterr().err


def test_candidates_rules_pick_by_their_score_and_the_layer_rules_skip_the_other_layer() -> None:
    candidates = load_benchmark("candidates")

    def cand(hidden: int | None, acc: float, ll: float) -> dict:
        return {"concept_hidden": hidden, "cv_accuracy": acc, "cv_log_loss": ll}

    cands = [cand(None, 0.90, 0.30), cand(2048, 0.88, 0.20), cand(2048, 0.88, 0.25), cand(None, 0.90, 0.35)]
    assert candidates.pick(cands, "accuracy", "cv") == 0  # tie on accuracy: the lower log-loss
    assert candidates.pick(cands, "log-loss", "cv") == 1
    assert candidates.pick(cands, "MLP only", "cv") == 1
    assert candidates.pick([cands[0], cands[3]], "MLP only", "cv") is None
    assert candidates.pick(cands, "linear only", "cv") == 0
    mlp_best = [cand(2048, 0.95, 0.1), cand(None, 0.9, 0.4), cand(None, 0.9, 0.3)]
    assert candidates.pick(mlp_best, "accuracy", "cv") == 0 and candidates.pick(mlp_best, "linear only", "cv") == 2
    assert candidates.pick([cands[1], cands[2]], "linear only", "cv") is None
    assert candidates.pick([cand(None, 0.9, 0.3), cand(None, 0.9, 0.3)], "accuracy", "cv") == 0  # full tie: first


def test_candidates_set_takes_train_settings_only(tmp_path: Path, capsys, monkeypatch) -> None:
    candidates = load_benchmark("candidates")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(f"data:\n  path: {tmp_path / 'dev_fold0_of3' / 'annotations.csv'}\n",
                                     encoding="utf-8")
    assert candidates.main([str(run), "--set", "features.folds=0"]) == 2  # would not match the cached features
    assert "train.KEY=VALUE only" in capsys.readouterr().err
    seen = []
    monkeypatch.setattr(candidates, "score_run", lambda r, share, overrides: seen.append((share, overrides)) or {
        "run": r.name, "distill": share, "lam": "auto", "baseline": 0.5, "n_test": 0, "score": "cv", "candidates": [],
        "picks": {}, "minutes": 0.0})
    assert candidates.main([str(run), "--set", "train.lam=1e-4", "--distill", "0.5"]) == 0
    assert seen == [(0.5, ["train.lam=1e-4"])]


def test_candidates_fits_with_a_train_setting_given(pose: Path, tmp_path: Path, capsys) -> None:
    import json

    candidates = load_benchmark("candidates")
    out = tmp_path / "cands.json"
    assert candidates.main([str(pose), "--not-a-dev-fold", "--distill", "0", "--set", "train.lam=0.001",
                            "--json", str(out)]) == 0
    (result,) = json.loads(out.read_text(encoding="utf-8"))
    assert result["lam"] == 0.001 and result["distill"] == 0.0
    assert len(result["candidates"]) == 4 and all(c["distill"] == 0.0 for c in result["candidates"])
    assert "train.lam 0.001" in capsys.readouterr().out


def test_candidates_distill_takes_shares_and_auto() -> None:
    candidates = load_benchmark("candidates")
    assert candidates._share("auto") == "auto" and candidates._share("0.5") == 0.5
    with pytest.raises(ValueError):
        candidates._share("half")
    assert candidates._shown("auto") == "auto" and candidates._shown(0.5) == "0.5"
