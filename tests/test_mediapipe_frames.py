"""The MediaPipe pose source converts only the frames of the key-clip windows it is given (issue 13 item 4):
``clip_poses`` feeds MediaPipe exactly the frames, sizes and order of the full-decode path (``poses`` window by
window), so the poses are bit-identical, and a truncated or corrupt video still fails with its one error."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from dance.data import video as video_mod
from dance.data.index import VideoRecord
from dance.data.video import TruncatedVideoError, write_video
from dance.errors import VideoDecodeError

pytest.importorskip("mediapipe", reason="mediapipe not installed (optional extra: pip install 'dance-xai[pose]')")

from dance.motion.mediapipe_source import MediaPipePoseSource  # noqa: E402 - after the skip

CLIPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "clips"
REAL_CLIP = CLIPS / "clean_and_jerk.mp4"


def _record(path: Path) -> VideoRecord:
    return VideoRecord(video_id=path.stem, path=path, label="x", split="train")


def _frames(t: int = 40, h: int = 72, w: int = 96) -> np.ndarray:
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.empty((t, h, w, 3), np.uint8)
    for i in range(t):
        base = np.stack([(xx * 3 + 5 * i) % 256, (yy * 4 + i) % 256, np.full_like(xx, (30 * (i // 8)) % 256)], -1)
        out[i] = np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)
    return out


def _recording(src: MediaPipePoseSource) -> list[list[tuple]]:
    """Wrap ``src``'s graphs so that every frame fed to MediaPipe is recorded (per graph: shape, dtype, hash)."""
    graphs: list[list[tuple]] = []
    real_new_pose = src._new_pose

    class Recording:
        def __init__(self) -> None:
            self.inner = real_new_pose()
            self.seen: list[tuple] = []
            graphs.append(self.seen)

        def process(self, image: np.ndarray):  # noqa: ANN201
            self.seen.append((image.shape, image.dtype.str, image.flags.c_contiguous,
                              hashlib.sha1(image.tobytes()).hexdigest()))
            return self.inner.process(image)

        def close(self) -> None:
            self.inner.close()

    src._new_pose = Recording  # type: ignore[method-assign]
    return graphs


def _compare(path: Path, windows: list[np.ndarray], size: int | None) -> tuple[list, list[int]]:
    """Full-decode path (``poses`` per window, as before) vs ``clip_poses``: same frames fed, same poses."""
    converted: list[int] = []
    real_decode = video_mod.decode_video

    def counting(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        v = real_decode(*args, **kwargs)
        converted.append(len(v.frames))
        return v

    old = MediaPipePoseSource(size=size)
    old_graphs = _recording(old)
    before = [old.poses(_record(path), w) for w in windows]
    new = MediaPipePoseSource(size=size)
    new_graphs = _recording(new)
    from dance.motion import mediapipe_source

    mp = pytest.MonkeyPatch()
    mp.setattr(mediapipe_source, "decode_video", counting)
    try:
        after = new.clip_poses(_record(path), windows)
    finally:
        mp.undo()
    assert new_graphs == old_graphs  # one graph per clip, the same frames (bytes, size, order) in each
    assert len(after) == len(before)
    for a, b in zip(after, before):
        assert a.keypoints.dtype == b.keypoints.dtype and a.scores.dtype == b.scores.dtype
        np.testing.assert_array_equal(a.keypoints, b.keypoints)
        np.testing.assert_array_equal(a.scores, b.scores)
    return after, converted


@pytest.mark.parametrize("size", [None, 48])
def test_generated_video_feeds_the_same_frames(tmp_path: Path, size: int | None) -> None:
    path = tmp_path / "v.mp4"
    write_video(path, _frames(), fps=10)
    # overlapping windows, one reaching past the end, one before the start, one repeated frame, one empty
    windows = [np.arange(2, 8), np.arange(5, 11), np.arange(36, 44), np.array([-2, -1, 0]),
               np.array([20, 20, 21]), np.array([], np.int64)]
    after, converted = _compare(path, windows, size)
    assert converted == [len(set(range(2, 11)) | {36, 37, 38, 39, 0, 20, 21})]  # one decode, window frames only
    assert [len(s.scores) for s in after] == [len(w) for w in windows]
    assert (after[2].scores[4:] == 0).all() and (after[3].scores[:2] == 0).all()  # outside: no person


def test_clip_poses_reuses_the_cache(tmp_path: Path) -> None:
    path = tmp_path / "v.mp4"
    write_video(path, _frames(), fps=10)
    src = MediaPipePoseSource()
    calls: list[int] = []
    from dance.motion import mediapipe_source

    real_decode = mediapipe_source.decode_video
    mp = pytest.MonkeyPatch()
    mp.setattr(mediapipe_source, "decode_video", lambda *a, **k: calls.append(1) or real_decode(*a, **k))
    try:
        src.clip_poses(_record(path), [np.arange(0, 4), np.arange(10, 14)])
        src.clip_poses(_record(path), [np.arange(1, 3)])  # inside the cached frames: no decode
        assert len(calls) == 1
        src.poses(_record(path), np.arange(30, 32))  # not cached: decoded again (every frame converted)
        src.clip_poses(_record(path), [np.arange(20, 25)])  # now cached
        assert len(calls) == 2
    finally:
        mp.undo()


@pytest.mark.slow
def test_real_clip_key_windows_are_bit_identical() -> None:
    if not REAL_CLIP.is_file():
        pytest.skip(f"real test clip not available: {REAL_CLIP}")
    from dance.config import KeyclipSettings
    from dance.motion.clips import keyframe_input

    settings = KeyclipSettings()
    clips = keyframe_input(REAL_CLIP, settings, lambda: None).key_clips(settings)
    windows = [w[::4] for w in clips.windows(16)][:4]  # 4 frames of each of 4 key clips: keeps the test short
    after, converted = _compare(REAL_CLIP, windows, None)
    assert converted == [len(np.unique(np.concatenate(windows)))]
    assert any((s.scores > 0.5).any() for s in after)  # the lifter is found: the comparison is not all zeros


def test_truncated_and_corrupt_videos_give_one_clear_error(tmp_path: Path) -> None:
    from test_bad_input import _clip, cut_until_truncated, write_faststart_mp4

    full = tmp_path / "full.mp4"
    write_faststart_mp4(full, _clip())
    short = cut_until_truncated(full, tmp_path / "short.mp4")
    src = MediaPipePoseSource()
    with pytest.raises(TruncatedVideoError, match="truncated video") as e_new:
        src.clip_poses(_record(short), [np.arange(0, 4)])  # the first frames decode: the count still fails
    with pytest.raises(TruncatedVideoError, match="truncated video") as e_old:
        MediaPipePoseSource().poses(_record(short), np.arange(0, 4))
    assert str(e_new.value) == str(e_old.value)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 1000)
    with pytest.raises(VideoDecodeError):
        src.clip_poses(_record(junk), [np.arange(4)])
    with pytest.raises(VideoDecodeError):
        src.clip_poses(_record(tmp_path / "missing.mp4"), [np.arange(4)])
