"""Any pose dataset (generic pose format, any joint count): pose-only keyframes, pose-encoder backbone, motion
concepts only, the same summary as the demo."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dance.config import load_settings
from dance.model.contributions import explanation_size
from dance.model.selection import DISTILL_LAM
from dance.motion.keyframes import find_keyframes, pose_motion_signal
from dance.pipeline import run_pipeline
from dance.pipeline.runner import Context
from dance.pipeline.train import AUTO_DISTILL_NOTE
from dance.run_view import RunView
from dance.runs import RunDir

JOINTS = ["head", "hand_a", "hand_b", "foot_a", "foot_b"]  # a made-up 5-joint skeleton


def _sequence(cls: int, rng: np.random.Generator, length: int) -> np.ndarray:
    """Class 0 waves hand_a, class 1 waves hand_b, class 2 kicks foot_a; noise and speed vary."""
    t = np.arange(length)
    base = np.array([[50, 20], [35, 45], [65, 45], [42, 90], [58, 90]], dtype=np.float32)
    kp = np.repeat(base[None], length, axis=0) + rng.normal(0, 0.7, (length, 5, 2)).astype(np.float32)
    moving = [1, 2, 3][cls]
    freq = rng.uniform(0.15, 0.3)
    kp[:, moving, 1] += 15 * np.sin(freq * t + rng.uniform(0, 6.28))
    kp[:, moving, 0] += 6 * np.cos(freq * t)
    return kp + rng.uniform(-10, 10, 2).astype(np.float32)


@pytest.fixture(scope="module")
def pose_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("poses5")
    (root / "poses").mkdir()
    (root / "skeleton.json").write_text(json.dumps({"joints": JOINTS, "edges": [[0, 1], [0, 2], [0, 3], [0, 4]]}))
    rng = np.random.default_rng(0)
    rows = ["video_id,label,split"]
    classes = ["wave_a", "wave_b", "kick"]
    for i in range(60):
        cls = i % 3
        split = "train" if i < 36 else ("val" if i < 45 else "test")
        kp = _sequence(cls, rng, int(rng.integers(40, 70)))
        np.savez(root / "poses" / f"s{i:03d}.npz", keypoints=kp, scores=np.ones(kp.shape[:2], np.float32))
        rows.append(f"s{i:03d},{classes[cls]},{split}")
    # one video where nobody is ever seen: reported and skipped, never a crash
    kp = np.zeros((30, 5, 2), np.float32)
    np.savez(root / "poses" / "empty.npz", keypoints=kp, scores=np.zeros((30, 5), np.float32))
    rows.append("empty,kick,test")
    (root / "annotations.csv").write_text("\n".join(rows) + "\n")
    return root


def test_pose_signal_finds_movement() -> None:
    kp = np.zeros((40, 3, 2), np.float32)
    kp[20:, 0, 0] = 30.0  # one joint jumps at frame 20
    kp[:, 1, 1] = 10.0
    sig = pose_motion_signal(kp, np.ones((40, 3)))
    assert sig.argmax() == 20
    assert 20 in find_keyframes(sig).tolist()
    assert pose_motion_signal(kp[:1], np.ones((1, 3))).tolist() == [0.0]


def test_any_pose_dataset_end_to_end(pose_dataset: Path, tmp_path: Path) -> None:
    settings = load_settings(None, [
        f"data.path={pose_dataset / 'annotations.csv'}", "data.format=pose", "spatial.source=none",
        "features.backbone=pose-encoder", "features.epochs=80", "features.length=32", "keyclips.n_clips=3",
        "keyclips.clip_len=8", "train.concept_steps=100", "train.n_lambdas=5", "motion.partition=0",
        "features.views=2", "train.joint_weight=1", "train.concept_batch_size=32",
        "train.concept_hidden=auto", "train.binary_activation=auto"])  # chosen (on request): cross-validated
    run = tmp_path / "run"
    results = run_pipeline(Context(settings, RunDir(run)))
    assert all(r.status == "ran" for r in results)
    summary = json.loads((run / "summary.json").read_text())
    for key in ("test_accuracy", "baseline_test_accuracy", "n_concepts", "nonzero_weights", "stages"):
        assert key in summary
    assert summary["n_concepts"]["object"] == 0 and summary["n_concepts"]["scene"] == 0
    assert summary["n_concepts"]["motion"] > 0
    assert "type_agreement" not in summary
    # the empty video is reported and left out, not a crash
    skipped = json.loads((run / "features" / "skipped.json").read_text())
    assert "empty" in skipped
    assert summary["n_test"] == 15
    # the encoder reads bone vectors along the layout's 4 edges
    backbone = json.loads((run / "features" / "backbone.json").read_text())
    assert backbone["edges"] == [[0, 1], [0, 2], [0, 3], [0, 4]]
    assert backbone["threads"] >= 1  # recorded: training is not bit-reproducible across thread counts
    assert all(epoch >= 1 and n >= 1 for epoch, n in backbone["threads_changed"])  # threads=0 re-counts each epoch
    # three easy classes: the trained pose encoder separates them
    assert summary["baseline_test_accuracy"] >= 0.8
    assert summary["test_accuracy"] >= 0.6
    # under 500 training videos the encoder is cross-fitted (features.folds=auto: 5 folds) and the concept layer is
    # chosen by cross-validation on the training videos, with each candidate's score recorded
    folds = np.load(run / "features" / "folds.npz")
    assert int((folds["fold"] >= 0).sum()) == 36  # every training video has a fold, no other video has one
    assert folds["x"].shape[0] == 5 and set(folds["fold"][folds["fold"] >= 0].tolist()) == set(range(5))
    layer = summary["selection"]["concept_layer"]
    assert "cross-validated" in layer["rule"]
    assert all("cv_accuracy" in c for c in layer["candidates"])
    # the train stage fits on 2 augmented views of each training video too (features.views), the fold encoders'
    # own views in cross-validation; with views and minibatches (train.concept_batch_size) both concept layers are
    # tried (full batch, only the linear one: the MLP would cost 3× as much)
    views = np.load(run / "features" / "views.npz")
    assert views["x"].shape == (2, 36, 512) and np.array_equal(views["rows"], np.flatnonzero(folds["fold"] >= 0))
    assert folds["views"].shape == (5, 2, 36, 512) and np.array_equal(folds["view_rows"], views["rows"])
    assert json.loads((run / "train" / "training.json").read_text())["augmented_views"] == 2
    assert [c["concept_hidden"] for c in layer["candidates"]] == [None, None, 2048]
    assert all(0.5 < c["val_concept_auc"] <= 1.0 for c in layer["candidates"])
    # the encoder's own class scores are saved beside its features (every encoder's, views too): the teacher the
    # final layers distil (train.distill); cross-validated as on a validation split, auto distils 0.5 (each fold its
    # own encoder's head) and leaves the MLP-probability candidate out
    head = np.load(run / "features" / "head_predictions.npz")
    ok = head["pred"] >= 0
    assert head["logits"].shape == (61, 3) and np.array_equal(head["logits"][ok].argmax(1), head["pred"][ok])
    assert views["logits"].shape == (2, 36, 3)
    assert folds["logits"].shape == (5, 61, 3) and folds["view_logits"].shape == (5, 2, 36, 3)
    assert [(c["binary_activation"], c["distill"]) for c in layer["candidates"]] == [
        ("probability", 0.5), ("logit", 0.5), ("logit", 0.5)]
    assert "not tried: MLP 2048 + probability" in layer["rule"]
    assert layer["distill"] == {"share": 0.5, "setting": "auto", "candidates": [0.5],
                                "teacher": "pose-encoder's own head", "note": AUTO_DISTILL_NOTE}
    # distilling, the final layer takes the smaller λ of train.lam=auto
    assert layer["lam"]["value"] == DISTILL_LAM and "distils a teacher" in layer["lam"]["note"]
    # how many concepts the test videos' explanations need, as explanation_size computes it from the saved model
    view = RunView(run)
    test = view.videos.splits == "test"
    z = view.trained_model.concept_activations(view.videos.X[test])
    assert summary["explanation_size"] == explanation_size(view.trained_model, z)
    size = summary["explanation_size"]
    assert size["n"] == 15 and 1 <= size["concepts"]["0.8"] <= size["concepts"]["0.9"] <= size["terms"]


def test_views_of_other_training_videos_are_a_stage_error(tmp_path: Path) -> None:
    from dance.errors import StageError
    from dance.pipeline.train import SplitData, training_views
    from dance.runs import save_arrays

    class Ctx:
        def stage_dir(self, name: str) -> Path:
            return tmp_path / name

    tr = SplitData(rows=np.array([0, 2, 3]), X=np.zeros((3, 4), np.float32), y=np.zeros(3, np.int64), concepts={})
    assert training_views(Ctx(), tr) is None  # no views.npz: clean features only
    (tmp_path / "features").mkdir()
    save_arrays(tmp_path / "features" / "views.npz", x=np.ones((2, 3, 4), np.float32), rows=np.array([0, 2, 3]))
    assert training_views(Ctx(), tr).shape == (2, 3, 4)
    save_arrays(tmp_path / "features" / "views.npz", x=np.ones((2, 3, 4), np.float32), rows=np.array([0, 1, 3]))
    with pytest.raises(StageError, match="run the features stage again"):
        training_views(Ctx(), tr)


def test_a_run_choosing_on_validation_distils_half_and_skips_the_mlp_probability_candidate(pose: Path,
                                                                                           tmp_path: Path) -> None:
    """Without cross-fitted encoders (``features.folds=0``, or 500 training videos or more) the train stage
    chooses on the validation split: ``train.distill=auto`` distils 0.5 of the encoder's own head, ``auto``
    leaves the MLP-probability candidate out and ``train.lam=auto`` takes the smaller λ (docs/pose_accuracy.md,
    "Across camera views"); the run records all three."""
    import shutil

    from dance.config import load_settings
    from dance.errors import StageError
    from dance.model.io import load_model
    from dance.pipeline import run_pipeline
    from dance.pipeline.runner import Context
    from dance.progress import Reporter
    from dance.runs import RunDir

    # by default nothing is chosen: one candidate, the linear concept layer with logits (train.concept_hidden,
    # train.binary_activation; docs/pose_accuracy.md, "A fixed concept layer")
    fixed = json.loads((pose / "train" / "training.json").read_text())["selection"]
    assert [(c["concept_hidden"], c["binary_activation"], c["distill"]) for c in fixed["candidates"]] == [
        (None, "logit", 0.5)]
    assert fixed["rule"].startswith("a single candidate") and fixed["candidates"][0]["chosen"]
    # ... so under features.folds=auto the features stage trained no fold encoders for it (fewer than 500 training
    # videos), and a run that starts choosing must run that stage again, which the runner says
    assert not (pose / "features" / "folds.npz").exists()
    run = tmp_path / "run"
    shutil.copytree(pose, run)
    choose = ["train.concept_hidden=auto", "train.binary_activation=auto"]
    with pytest.raises(StageError, match="'features', which 'train' reads, is out of date"):
        run_pipeline(Context(load_settings(run / "config.yaml", choose), RunDir(run), Reporter()), only=["train"])
    settings = load_settings(run / "config.yaml", [*choose, "features.folds=0"])  # choosing on validation
    run_pipeline(Context(settings, RunDir(run), Reporter()), only=["features", "train"])
    assert not (run / "features" / "folds.npz").exists()
    sel = json.loads((run / "train" / "training.json").read_text())["selection"]
    assert [(c["concept_hidden"], c["binary_activation"], c["distill"]) for c in sel["candidates"]] == [
        (None, "probability", 0.5), (None, "logit", 0.5), (2048, "logit", 0.5)]
    assert "validation videos" in sel["rule"] and "not tried: MLP 2048 + probability" in sel["rule"]
    assert sel["distill"] == {"share": 0.5, "setting": "auto", "candidates": [0.5],
                              "teacher": "pose-encoder's own head", "note": AUTO_DISTILL_NOTE}
    # ... and its final layer (the LF-CBM variants' too) takes the smaller λ of train.lam=auto there
    assert sel["lam"]["value"] == DISTILL_LAM and "distils a teacher" in sel["lam"]["note"]
    assert load_model(run / "train" / "model").lam == DISTILL_LAM
