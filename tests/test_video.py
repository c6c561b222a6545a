"""Video IO: round trips, determinism, atomic writes and decode errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dance.data.video import read_video, video_info, write_video
from dance.errors import DanceError, VideoDecodeError


def _clip(t: int = 12, h: int = 48, w: int = 64) -> np.ndarray:
    """Smooth moving pattern with a solid red square (compresses well, easy to check)."""
    yy, xx = np.mgrid[0:h, 0:w]
    frames = np.empty((t, h, w, 3), np.uint8)
    for i in range(t):
        frames[i, ..., 0] = (xx * 3 + i * 5) % 256
        frames[i, ..., 1] = (yy * 4) % 256
        frames[i, ..., 2] = 128
        frames[i, 10:26, 10 + i : 26 + i] = (255, 0, 0)
    return frames


def test_round_trip_shape_values_and_info(tmp_path: Path) -> None:
    frames = _clip()
    path = tmp_path / "sub" / "clip.mp4"
    write_video(path, frames, fps=12)
    out = read_video(path)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - frames.astype(int)).mean() < 6.0
    assert tuple(out[5, 18, 20]) == pytest.approx((255, 0, 0), abs=40)
    info = video_info(path)
    assert info == {"frames": 12, "fps": 12.0, "height": 48, "width": 64}
    assert [p.name for p in path.parent.iterdir()] == ["clip.mp4"]  # no temp file left behind


def test_max_frames_and_resize(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    write_video(path, _clip(), fps=10)
    assert read_video(path, max_frames=5).shape == (5, 48, 64, 3)
    assert read_video(path, max_frames=100).shape[0] == 12
    assert read_video(path, size=32).shape == (12, 32, 32, 3)
    assert read_video(path, max_frames=3, size=20).shape == (3, 20, 20, 3)


def test_odd_size_keeps_shape(tmp_path: Path) -> None:
    frames = _clip(t=4, h=33, w=47)
    write_video(tmp_path / "odd.mp4", frames, fps=8)
    assert read_video(tmp_path / "odd.mp4").shape == frames.shape


def test_write_is_byte_deterministic_and_replaces(tmp_path: Path) -> None:
    frames = _clip()
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    write_video(a, frames, fps=15)
    write_video(b, frames, fps=15)
    assert a.read_bytes() == b.read_bytes()
    write_video(a, frames[:3], fps=15)  # overwrite an existing file
    assert read_video(a).shape[0] == 3


@pytest.mark.parametrize(
    "frames",
    [
        np.zeros((4, 16, 16), np.uint8),
        np.zeros((0, 16, 16, 3), np.uint8),
        np.zeros((2, 16, 16, 3), np.float32),
    ],
)
def test_write_rejects_bad_frames(tmp_path: Path, frames: np.ndarray) -> None:
    with pytest.raises(DanceError):
        write_video(tmp_path / "x.mp4", frames, fps=10)
    assert not list(tmp_path.iterdir())


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    text = tmp_path / "text.mp4"
    text.write_text("this is not a video\n" * 20)
    folder = tmp_path / "folder.mp4"
    folder.mkdir()
    return {
        "missing": tmp_path / "missing.mp4",
        "empty": empty,
        "garbage": garbage,
        "text": text,
        "dir": folder,
    }


@pytest.mark.parametrize("kind", ["missing", "empty", "garbage", "text", "dir"])
def test_read_errors_are_video_decode_errors(tmp_path: Path, kind: str) -> None:
    path = _bad_files(tmp_path)[kind]
    with pytest.raises(VideoDecodeError) as exc:
        read_video(path)
    assert str(path) in str(exc.value)
    with pytest.raises(VideoDecodeError):
        video_info(path)


def test_container_without_video_stream(tmp_path: Path) -> None:
    import av

    path = tmp_path / "audio.m4a"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        frame.pts = 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(VideoDecodeError, match="no video stream"):
        read_video(path)
    with pytest.raises(VideoDecodeError, match="no video stream"):
        video_info(path)


def test_truncated_file_never_leaks_av_errors(tmp_path: Path) -> None:
    good = tmp_path / "good.mp4"
    write_video(good, _clip(t=20), fps=10)
    data = good.read_bytes()
    for cut in (len(data) // 3, len(data) // 2, len(data) - 50):
        bad = tmp_path / f"cut{cut}.mp4"
        bad.write_bytes(data[:cut])
        try:
            out = read_video(bad)
        except VideoDecodeError:
            continue
        assert out.ndim == 4 and 1 <= out.shape[0] <= 20
