"""``benchmarks/plain_tcn.py`` (the run's pose encoder against a plain temporal CNN on the same videos) and
``benchmarks/explanation_size.py`` (how many concepts an explanation needs), on the finished pose fixture run.
They check what the scripts compute and print, not how accurate or fast anything is."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from _benchmarks import load_benchmark

from dance.model.contributions import contributions
from dance.run_view import RunView


def test_plain_tcn_trains_on_the_runs_training_videos_and_scores_its_test_videos(pose: Path, tmp_path: Path,
                                                                                 capsys, monkeypatch) -> None:
    plain = load_benchmark("plain_tcn")
    monkeypatch.setattr(plain, "EPOCHS", 2)
    out = tmp_path / "rows.json"
    assert plain.main([str(pose), "--seeds", "0", "1", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    view = RunView(pose)
    splits = np.array([r.split for r in view.index.records])
    assert [r["seed"] for r in rows] == [0, 1]
    # the run's train split only (its validation videos are left out, as the run's encoder leaves them out)
    assert {r["n_train"] for r in rows} == {int((splits == "train").sum())}
    assert {r["n_test"] for r in rows} == {int((splits == "test").sum())}
    head = np.load(pose / "features" / "head_predictions.npz")["pred"]
    labels = np.array([view.index.class_index(r.label) for r in view.index.records])
    expected = float((head[splits == "test"] == labels[splits == "test"]).mean())
    assert all(abs(r["baseline"] - expected) < 1e-12 for r in rows)
    assert all(0.0 <= r["plain_tcn"] <= 1.0 for r in rows)
    printed = capsys.readouterr().out
    assert printed.count(f"| {pose} |") == 2 and "plain TCN − pose-encoder baseline over 2 trainings" in printed


def test_plain_tcn_input_is_the_encoders_coordinates_only(pose: Path) -> None:
    plain = load_benchmark("plain_tcn")
    parts, mirror, n_classes = plain.run_sequences(RunView(pose))
    seq = parts["train"][0][0]
    x = plain.coordinates(seq)
    joints = seq.keypoints.shape[1]
    assert x.shape == (2 * joints, plain.LENGTH)
    assert mirror is None  # the fixture's joints name no sides: no flip, as in the run's own encoder
    net = plain.PlainTCN(2 * joints, n_classes)
    assert net(torch.from_numpy(x[None])).shape == (1, n_classes)


def test_plain_tcn_skips_a_folder_that_is_not_a_run(tmp_path: Path, capsys) -> None:
    plain = load_benchmark("plain_tcn")
    assert plain.main([str(tmp_path / "nothing"), "--seeds", "0"]) == 1
    assert "skipped" in capsys.readouterr().err


def test_explanation_size_counts_the_concepts_holding_the_evidence(pose: Path, capsys) -> None:
    size = load_benchmark("explanation_size")
    r = size.explanation_sizes(pose, "val", [0.5, 0.8, 1.0])
    view = RunView(pose)
    model, videos = view.trained_model, view.videos
    rows = videos.splits == "val"
    assert r["videos"] == int(rows.sum()) and r["weights"] == model.nonzero_weights()
    # recomputed by hand for every video: the predicted class's terms, and the fewest top concepts whose positive
    # contributions reach each share
    z = model.concept_activations(videos.X[rows])
    pred = model.logits_from_concepts(z).argmax(1)
    needed = {s: [] for s in (0.5, 0.8, 1.0)}
    for i, c in enumerate(pred):
        contrib = contributions(model, z[i:i + 1], int(c))[0]
        positive = sorted(contrib[contrib > 0], reverse=True)
        for s in needed:
            k = next((k for k in range(1, len(positive) + 1) if sum(positive[:k]) >= s * sum(positive) - 1e-6),
                     len(positive))
            needed[s].append(k)
    assert r["terms"] == float(np.median([(model.W_[c] != 0).sum() for c in pred]))
    for s, ks in needed.items():
        assert r["needed"][f"{s:g}"] == float(np.median(ks)), (s, r["needed"], ks)
    assert r["needed"]["0.5"] <= r["needed"]["0.8"] <= r["needed"]["1"] <= r["terms"]
    assert size.main([str(pose)]) == 0
    assert f"| {pose} | {r['videos']} | {r['weights']} " in capsys.readouterr().out


def test_explanation_size_rejects_a_bad_share_and_skips_a_missing_run(tmp_path: Path, capsys) -> None:
    size = load_benchmark("explanation_size")
    assert size.main([str(tmp_path / "nothing")]) == 1
    assert "skipped" in capsys.readouterr().err
    try:
        size.main([str(tmp_path), "--share", "1.5"])
    except SystemExit as e:
        assert e.code == 2
    else:
        raise AssertionError("--share 1.5 was accepted")
