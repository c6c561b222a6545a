"""Tests of the MediaPipe pose source (skipped when the optional mediapipe extra is not installed)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dance.data.index import VideoRecord
from dance.data.video import video_info, write_video
from dance.errors import DanceError, VideoDecodeError
from dance.motion import mediapipe_source as ms
from dance.motion.mediapipe_source import MEDIAPIPE_EDGES, MEDIAPIPE_JOINTS, MediaPipePoseSource

CLIPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "clips"
REAL_CLIP = CLIPS / "clean_and_jerk.mp4"

SHOULDERS_HIPS = [MEDIAPIPE_JOINTS.index(n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]


def _needs_mediapipe() -> None:
    pytest.importorskip("mediapipe", reason="mediapipe not installed (optional extra: pip install 'dance-xai[pose]')")


def _record(path: Path) -> VideoRecord:
    return VideoRecord(video_id=path.stem, path=path, label="x", split="train")


# ---------------------------------------------------------------------------------------------- layout


def test_layout_is_mediapipe_33() -> None:
    assert len(MEDIAPIPE_JOINTS) == 33 and len(set(MEDIAPIPE_JOINTS)) == 33
    assert MEDIAPIPE_JOINTS[0] == "nose" and MEDIAPIPE_JOINTS[11] == "left_shoulder"
    assert MEDIAPIPE_JOINTS[24] == "right_hip" and MEDIAPIPE_JOINTS[-1] == "right_foot_index"
    assert len(MEDIAPIPE_EDGES) == 35 and len(set(MEDIAPIPE_EDGES)) == 35
    assert all(0 <= a < 33 and 0 <= b < 33 and a != b for a, b in MEDIAPIPE_EDGES)


def test_layout_matches_installed_mediapipe() -> None:
    _needs_mediapipe()
    from mediapipe.python.solutions import pose as mp_pose

    assert tuple(lm.name.lower() for lm in mp_pose.PoseLandmark) == MEDIAPIPE_JOINTS
    assert set(MEDIAPIPE_EDGES) == set(mp_pose.POSE_CONNECTIONS)


# ---------------------------------------------------------------------------------------------- real clip


@pytest.mark.slow
def test_real_clip_finds_the_lifter() -> None:
    _needs_mediapipe()
    if not REAL_CLIP.is_file():
        pytest.skip(f"real test clip not available: {REAL_CLIP}")
    info = video_info(REAL_CLIP)
    h, w = info["height"], info["width"]
    src = MediaPipePoseSource()
    mid = info["frames"] // 2
    idx = np.arange(mid - 8, mid + 8)
    t0 = time.perf_counter()
    seq = src.poses(_record(REAL_CLIP), idx)
    elapsed = time.perf_counter() - t0
    assert seq.keypoints.shape == (16, 33, 2) and seq.scores.shape == (16, 33)
    assert seq.keypoints.dtype == np.float32 and seq.scores.dtype == np.float32
    assert np.isfinite(seq.keypoints).all() and ((seq.scores >= 0) & (seq.scores <= 1)).all()
    found = seq.scores.max(axis=1) > 0
    assert found.mean() >= 0.8
    assert seq.scores[found][:, SHOULDERS_HIPS].mean() > 0.8
    visible = seq.scores > 0.5
    xy = seq.keypoints[visible]
    assert len(xy) > 0
    assert (xy[:, 0] >= -2).all() and (xy[:, 0] <= w + 2).all()
    assert (xy[:, 1] >= -2).all() and (xy[:, 1] <= h + 2).all()
    ls, rs = MEDIAPIPE_JOINTS.index("left_shoulder"), MEDIAPIPE_JOINTS.index("right_shoulder")
    shoulder = np.linalg.norm(seq.keypoints[found, ls] - seq.keypoints[found, rs], axis=-1)
    assert (shoulder > 0.03 * w).all() and (shoulder < 0.6 * w).all()
    # a second clip of the same video reuses the decoded frames and gives the same poses
    t1 = time.perf_counter()
    again = src.poses(_record(REAL_CLIP), idx)
    cached = time.perf_counter() - t1
    np.testing.assert_allclose(again.keypoints, seq.keypoints, atol=1e-3)
    print(f"\nmediapipe on {REAL_CLIP.name} ({w}x{h}): {1000 * elapsed / len(idx):.1f} ms/frame incl. decoding, "
          f"{1000 * cached / len(idx):.1f} ms/frame with the video cached")
    # the same frames handed over directly, and out-of-range indices
    from dance.data.video import read_video

    direct = src.estimate(read_video(REAL_CLIP)[idx])
    np.testing.assert_allclose(direct.keypoints, seq.keypoints, atol=1e-3)
    out = src.poses(_record(REAL_CLIP), np.array([-1, mid, info["frames"] + 5]))
    assert (out.scores[[0, 2]] == 0).all() and (out.keypoints[[0, 2]] == 0).all() and out.scores[1].max() > 0


def test_size_keeps_original_pixels() -> None:
    _needs_mediapipe()
    if not REAL_CLIP.is_file():
        pytest.skip(f"real test clip not available: {REAL_CLIP}")
    from dance.data.video import read_video

    frames = read_video(REAL_CLIP)[148:152]
    full = MediaPipePoseSource().estimate(frames)
    small = MediaPipePoseSource(size=170).estimate(frames)
    good = (full.scores > 0.8) & (small.scores > 0.8)
    assert good.sum() > 20
    # half-resolution input, coordinates still in pixels of the full frames
    assert np.median(np.linalg.norm(full.keypoints[good] - small.keypoints[good], axis=-1)) < 8


# ---------------------------------------------------------------------------------------------- no person, errors


def test_no_person_video_gives_zero_scores(tmp_path: Path) -> None:
    _needs_mediapipe()
    rng = np.random.default_rng(0)
    frames = np.concatenate([np.full((4, 45, 67, 3), 90, np.uint8),  # flat colour, odd size
                             rng.integers(0, 256, (4, 45, 67, 3), dtype=np.uint8)])  # noise
    path = tmp_path / "empty.mp4"
    write_video(path, frames, fps=10)
    src = MediaPipePoseSource()
    seq = src.poses(_record(path), np.arange(8))
    assert seq.keypoints.shape == (8, 33, 2) and seq.scores.shape == (8, 33)
    assert (seq.scores == 0).all() and (seq.keypoints == 0).all()
    gray = src.estimate(np.zeros((3, 32, 48), np.uint8))  # grayscale frames are accepted
    assert gray.scores.shape == (3, 33) and (gray.scores == 0).all()
    assert src.poses(_record(path), np.array([], np.int64)).keypoints.shape == (0, 33, 2)


def test_corrupt_video_raises_decode_error(tmp_path: Path) -> None:
    _needs_mediapipe()
    path = tmp_path / "broken.mp4"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(VideoDecodeError):
        MediaPipePoseSource().poses(_record(path), np.arange(4))
    with pytest.raises(VideoDecodeError):
        MediaPipePoseSource().poses(_record(tmp_path / "missing.mp4"), np.arange(4))


def test_frame_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    _needs_mediapipe()
    src = MediaPipePoseSource()
    real_new_pose = src._new_pose
    calls = {"n": 0}

    class Flaky:
        """Wraps a real graph; every second frame raises."""

        def __init__(self) -> None:
            self.inner = real_new_pose()

        def process(self, image: np.ndarray):  # noqa: ANN201
            calls["n"] += 1
            if calls["n"] % 2 == 0:
                raise RuntimeError("graph error")
            return self.inner.process(image)

        def close(self) -> None:
            self.inner.close()

    monkeypatch.setattr(src, "_new_pose", Flaky)
    seq = src.estimate(np.zeros((4, 32, 32, 3), np.uint8))  # some frames fail: no crash
    assert seq.scores.shape == (4, 33) and (seq.scores == 0).all()

    class Broken(Flaky):
        def process(self, image: np.ndarray):  # noqa: ANN201
            raise RuntimeError("graph error")

    monkeypatch.setattr(src, "_new_pose", Broken)
    with pytest.raises(DanceError, match="failed on all 4 frames of the given frames"):
        src.estimate(np.zeros((4, 32, 32, 3), np.uint8))


def test_other_complexities_need_allow_download(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ms, "_weights_present", lambda complexity: False)
    for complexity in (0, 2):
        with pytest.raises(DanceError, match="wheel") as err:
            MediaPipePoseSource(model_complexity=complexity)
        assert "allow_download=True" in str(err.value)
    with pytest.raises(DanceError, match="0, 1 or 2"):
        MediaPipePoseSource(model_complexity=3)


def test_missing_mediapipe_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # makes `import mediapipe` raise ImportError
    with pytest.raises(DanceError) as err:
        MediaPipePoseSource()
    assert "pip install 'dance-xai[pose]' (mediapipe==0.10.21)" in str(err.value)
    assert "the mediapipe pose estimator needs the optional extra" in str(err.value)


def test_fingerprint_names_version_and_settings() -> None:
    _needs_mediapipe()
    import mediapipe

    a = MediaPipePoseSource().fingerprint()
    assert mediapipe.__version__ in a and "complexity=1" in a
    assert MediaPipePoseSource(min_detection_confidence=0.6).fingerprint() != a
    assert MediaPipePoseSource(size=128).fingerprint() != a
    assert MediaPipePoseSource().fingerprint() == a
