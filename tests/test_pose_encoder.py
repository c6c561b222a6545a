"""The pose-encoder backbone: its input channels (coordinates, velocities, scores, bones) and reloading a trained
encoder from what the features stage saved."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import save_file

from dance.encoders.pose_encoder import PoseEncoder, load_pose_encoder, pose_input
from dance.encoders.registry import make_backbone
from dance.errors import ModelError
from dance.motion.poses import PoseSequence

JOINTS = ("head", "l_hand", "r_hand")
EDGES = np.array([[0, 1], [0, 2]])


def _seq(n: int = 12, missing: tuple[int, int] | None = None) -> PoseSequence:
    t = np.arange(n, dtype=np.float32)
    kp = np.stack([np.c_[np.full(n, 50.0), np.full(n, 20.0)],
                   np.c_[30 + t, 40 + 0 * t],
                   np.c_[70 - t, 40 + 2 * t]], axis=1).astype(np.float32)
    sc = np.ones((n, 3), np.float32)
    if missing is not None:
        sc[missing] = 0.0
    return PoseSequence(kp, sc)


def test_bone_channels_are_joint_differences() -> None:
    seq = _seq()
    plain = pose_input(seq, 8)
    with_bones = pose_input(seq, 8, edges=EDGES)
    assert plain.shape == (3 * 5, 8) and with_bones.shape == (3 * 5 + 2 * 4, 8)
    np.testing.assert_array_equal(with_bones[:15], plain)  # bones are appended, the rest is unchanged
    kp = plain[:6].T.reshape(8, 3, 2)
    bones = with_bones[15:19].T.reshape(8, 2, 2)
    np.testing.assert_allclose(bones[:, 0], kp[:, 1] - kp[:, 0], atol=1e-6)
    np.testing.assert_allclose(bones[:, 1], kp[:, 2] - kp[:, 0], atol=1e-6)
    vel = with_bones[19:23].T.reshape(8, 2, 2)
    np.testing.assert_allclose(vel[1:], 4.0 * np.diff(bones, axis=0), atol=1e-5)
    assert np.all(vel[0] == 0)


def test_bones_with_a_missing_end_are_zero() -> None:
    feat = pose_input(_seq(missing=(slice(None), 2)), 8, edges=EDGES)
    bones = feat[15:19].T.reshape(8, 2, 2)
    assert np.all(bones[:, 1] == 0) and np.any(bones[:, 0] != 0)


def test_mirrored_bones_follow_the_swapped_joints() -> None:
    mirror = np.array([0, 2, 1])
    feat = pose_input(_seq(), 8, mirror=mirror, edges=EDGES)
    kp = feat[:6].T.reshape(8, 3, 2)
    bones = feat[15:19].T.reshape(8, 2, 2)
    np.testing.assert_allclose(bones[:, 0], kp[:, 1] - kp[:, 0], atol=1e-6)


def test_factory_edges_and_the_bones_switch() -> None:
    on = make_backbone("pose-encoder", joints=JOINTS, n_classes=2, edges=((0, 1), (0, 2)))
    off = make_backbone("pose-encoder", joints=JOINTS, n_classes=2, edges=((0, 1), (0, 2)), bones=False)
    assert on.edges == ((0, 1), (0, 2)) and off.edges == ()
    assert on.net.stem[0].in_channels == 3 * 5 + 2 * 4 and off.net.stem[0].in_channels == 3 * 5
    with pytest.raises(ModelError, match="outside"):
        PoseEncoder(JOINTS, 2, edges=((0, 3),))


def _save(enc: PoseEncoder, folder: Path, drop_edges: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    meta = enc.fingerprint() | {"dim": enc.dim}
    if drop_edges:
        del meta["edges"]
    (folder / "backbone.json").write_text(json.dumps(meta))
    save_file(enc.state_dict(), str(folder / "backbone.safetensors"))
    return folder


@pytest.mark.parametrize("edges", [((0, 1), (0, 2)), ()])
def test_load_pose_encoder_round_trip(tmp_path: Path, edges) -> None:
    enc = PoseEncoder(JOINTS, 2, length=16, width=8, dim=16, seed=3, edges=edges)
    enc.net.eval()
    folder = _save(enc, tmp_path / "features", drop_edges=not edges)  # a run from before bones: no "edges"
    loaded = load_pose_encoder(folder, 2)
    assert loaded.edges == tuple(edges)
    seqs = [_seq(20), _seq(9)]
    np.testing.assert_allclose(loaded.encode_poses(seqs), enc.encode_poses(seqs), rtol=1e-5, atol=1e-6)


def test_load_pose_encoder_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="backbone.json is missing"):
        load_pose_encoder(tmp_path, 2)
    enc = PoseEncoder(JOINTS, 2, length=16, width=8, dim=16, edges=((0, 1),))
    folder = _save(enc, tmp_path / "f")
    meta = json.loads((folder / "backbone.json").read_text())
    (folder / "backbone.json").write_text(json.dumps(meta | {"edges": []}))  # weights expect bone channels
    with pytest.raises(ModelError, match="does not match"):
        load_pose_encoder(folder, 2)
    (folder / "backbone.json").write_text(json.dumps(meta | {"name": "other"}))
    with pytest.raises(ModelError, match="not 'pose-encoder'"):
        load_pose_encoder(folder, 2)
    (folder / "backbone.json").write_text("{broken")
    with pytest.raises(ModelError, match="cannot read"):
        load_pose_encoder(folder, 2)


def test_augmented_views_are_seeded_training_augmentations() -> None:
    joints = ("head", "left_hand", "right_hand")  # a left/right pair: flips are among the augmentations
    enc = PoseEncoder(joints, 2, length=16, width=8, dim=16, seed=0, edges=((0, 1), (0, 2)))
    seqs = [_seq(20), _seq(9), _seq(14, missing=(3, 1))]
    views = enc.encode_augmented(seqs, 3, seed=5)
    assert views.shape == (3, 3, enc.dim) and views.dtype == np.float32 and np.isfinite(views).all()
    assert np.array_equal(views, enc.encode_augmented(seqs, 3, seed=5))  # same seed, same views
    assert not np.array_equal(views, enc.encode_augmented(seqs, 3, seed=6))
    assert not np.allclose(views[0], views[1])  # each view is another draw
    clean = enc.encode_poses(seqs)
    assert not np.allclose(views[0], clean)  # not the (flip-averaged) clean features
    assert enc.encode_augmented(seqs, 0).shape == (0, 3, enc.dim)
    assert enc.encode_augmented([], 2).shape == (2, 0, enc.dim)


def test_camera_turn() -> None:
    from dance.encoders.pose_encoder import camera_turn

    np.testing.assert_allclose(camera_turn(0, 0), np.eye(2), atol=1e-7)
    np.testing.assert_allclose(camera_turn(60, 0), np.diag([0.5, 1.0]), atol=1e-6)  # x foreshortened by cos 60°
    np.testing.assert_allclose(camera_turn(0, 90) @ [1.0, 0.0], [0.0, 1.0], atol=1e-6)  # a quarter turn in-plane
    np.testing.assert_allclose(camera_turn(-30, 0), camera_turn(30, 0), atol=1e-7)  # yaw either way: the same


def test_turned_augmentations_keep_the_other_draws_and_the_height() -> None:
    """With yaw / roll 0 the augmentation draws what earlier versions drew (so their encoders retrain bit for
    bit); with a yaw only, x shrinks and y stays: the same crop, flip, scale and shift, then the turn."""
    plain = PoseEncoder(JOINTS, 2, length=16, width=8, dim=16)
    turned = PoseEncoder(JOINTS, 2, length=16, width=8, dim=16, yaw=80.0)
    a = plain._augment(_seq(20), np.random.default_rng(4))
    b = turned._augment(_seq(20), np.random.default_rng(4))
    j = len(JOINTS)
    x, y = slice(0, 2 * j, 2), slice(1, 2 * j, 2)  # coordinate channels: x, y per joint
    np.testing.assert_allclose(b[y], a[y], atol=1e-6)  # heights unchanged by a yaw
    assert np.abs(b[x]).max() < np.abs(a[x]).max()  # widths foreshortened
    assert plain.fingerprint()["yaw"] == 0.0 and turned.fingerprint()["yaw"] == 80.0
    rng = np.random.default_rng(4)
    plain._augment(_seq(20), rng)
    ref = np.random.default_rng(4)
    ref.uniform(0.6, 1.0), ref.uniform(0.0, 0.4)  # crop
    assert plain.mirror is not None  # l_ / r_ names: a flip is drawn
    ref.random(), ref.uniform(0.85, 1.15), ref.normal(0, 0.05, 2)  # flip, scale, shift
    assert rng.random() == ref.random()  # no draw for a turn when there is none


def test_a_turned_encoder_reloads_with_its_turn(tmp_path: Path) -> None:
    enc = PoseEncoder(JOINTS, 2, length=16, width=8, dim=16, yaw=45.0, roll=5.0)
    loaded = load_pose_encoder(_save(enc, tmp_path / "features"), 2)
    assert (loaded.yaw, loaded.roll) == (45.0, 5.0)


def test_training_keeps_the_last_or_the_best_validation_epoch(tmp_path: Path, single_thread) -> None:  # noqa: ANN001
    """keep="last" (the default) ends with the last epoch's weights; keep="best" with those of the epoch of best
    validation accuracy (ties: the later epoch). The validation accuracies are scripted (the 2nd and 4th epochs tie
    for best); the same seed trains both along the same trajectory."""
    import torch

    script = [0.25, 0.75, 0.5, 0.75, 0.25, 0.5]  # validation accuracy per epoch: epochs 2 and 4 tie for best

    class Scripted(PoseEncoder):
        def predict_poses(self, seqs: list[PoseSequence]) -> np.ndarray:
            right = int(script[len(self.history)] * len(seqs))
            return np.array([0] * right + [1] * (len(seqs) - right))  # validation labels are all 0

    rng = np.random.default_rng(0)
    seqs = [PoseSequence(rng.normal(50, 10, (12, 3, 2)).astype(np.float32), np.ones((12, 3), np.float32))
            for _ in range(12)]
    snapshots: dict[str, list[dict]] = {"last": [], "best": []}
    encoders = {}
    for keep in ("last", "best"):
        enc = Scripted(JOINTS, 2, length=8, width=4, dim=8, epochs=len(script), batch_size=4, keep=keep)
        enc.fit(seqs[:8], np.arange(8) % 2, seqs[8:], np.zeros(4, int),
                progress=lambda _, k=keep, e=enc: snapshots[k].append(
                    {n: v.clone() for n, v in e.net.state_dict().items()}))
        encoders[keep] = enc
        assert [h["val_accuracy"] for h in enc.history] == script
    for n, value in snapshots["last"][-1].items():  # one trajectory, and the epochs' weights differ
        torch.testing.assert_close(snapshots["best"][-1][n], value, rtol=0, atol=0)
    assert not torch.equal(snapshots["last"][3]["head.weight"], snapshots["last"][5]["head.weight"])
    for keep, epoch in (("last", 5), ("best", 3)):
        kept = encoders[keep].net.state_dict()
        for n, value in snapshots[keep][epoch].items():
            torch.testing.assert_close(kept[n], value, rtol=0, atol=0)
    assert encoders["last"].fingerprint()["keep"] == "last"
    assert load_pose_encoder(_save(encoders["best"], tmp_path / "features"), 2).keep == "best"
    with pytest.raises(ModelError, match="keep must be"):
        PoseEncoder(JOINTS, 2, keep="first")
