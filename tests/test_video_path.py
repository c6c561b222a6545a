"""The decoder-side video path (issue 13 item 1): frames scaled and converted by the decoder, grey frames for
keyframes, and ``read_clip`` converting (or, for a frame folder, opening) only the frames it samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dance.data import frames as frame_folders
from dance.data import video as video_mod
from dance.data.video import (
    TruncatedVideoError,
    decode_video,
    read_clip,
    read_video,
    sample_frames,
    sample_index,
    write_video,
)
from dance.errors import VideoDecodeError
from dance.motion.keyframes import difference_signal, find_keyframes, luma

T = 30


def _frames(t: int = T, h: int = 48, w: int = 64) -> np.ndarray:
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.empty((t, h, w, 3), np.uint8)
    for i in range(t):
        base = np.stack([(xx * 4 + 3 * i) % 256, (yy * 5) % 256, np.full_like(xx, (40 * (i // 10)) % 256)], -1)
        out[i] = np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8)
    return out


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("vp") / "v.mp4"
    write_video(path, _frames(), fps=10)
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    from PIL import Image

    out = tmp_path_factory.mktemp("vp") / "frames"
    out.mkdir()
    for i, img in enumerate(_frames(12, 20, 24)):
        Image.fromarray(img).save(out / f"{i + 1:04d}.png")
    return out


def test_sample_index_spreads_and_repeats() -> None:
    assert sample_index(10, 4).tolist() == [0, 3, 6, 9]
    assert sample_index(3, 5).tolist() == [0, 0, 1, 2, 2]
    frames = np.arange(10)
    assert sample_frames(frames, 4).tolist() == [0, 3, 6, 9]


@pytest.mark.parametrize("n,size", [(8, 32), (1, 16), (T, 24), (45, 20)])
def test_read_clip_is_sample_frames_of_read_video(video: Path, n: int, size: int) -> None:
    clip = read_clip(video, n, size)
    assert clip.shape == (n, size, size, 3) and clip.dtype == np.uint8
    np.testing.assert_array_equal(clip, sample_frames(read_video(video, size=size), n))


@pytest.mark.parametrize("declared", [T - 2, T + 1, None])
def test_read_clip_when_the_container_misdeclares(video: Path, monkeypatch, declared) -> None:  # noqa: ANN001
    """Positions chosen from a wrong declared count are chosen again from the real one (a second pass)."""
    expected = sample_frames(read_video(video, size=16), 7)
    monkeypatch.setattr(video_mod, "_declared_frames", lambda container, stream: declared)
    np.testing.assert_array_equal(read_clip(video, 7, 16), expected)


def test_decode_video_keep_converts_only_those_frames(video: Path) -> None:
    out = decode_video(video, size=16, keep=lambda declared: {0, 5, 29} if declared == T else None)
    assert out.decoded == T and out.count == T
    assert out.index.tolist() == [0, 5, 29] and out.frames.shape == (3, 16, 16, 3)
    np.testing.assert_array_equal(out.frames, read_video(video, size=16)[[0, 5, 29]])


def test_full_size_frames_are_the_decoders_rgb(video: Path) -> None:
    import av

    with av.open(str(video)) as c:
        ref = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])])
    np.testing.assert_array_equal(read_video(video), ref)


def test_grey_frames_are_luma(video: Path) -> None:
    grey = read_video(video, size=32, grey=True)
    rgb = read_video(video, size=32)
    assert grey.shape == (T, 32, 32) and grey.dtype == np.uint8
    # the decoder's luma and the RGB frames' luma agree to a few grey levels
    diff = np.abs(luma(grey) - luma(rgb))
    assert diff.mean() < 2.0
    np.testing.assert_array_equal(read_video(video, max_frames=4, size=32, grey=True), grey[:4])


def test_keyframes_of_grey_frames_find_the_cuts(tmp_path: Path) -> None:
    from test_keyframes import CUTS, shots_video

    path = tmp_path / "shots.mp4"
    write_video(path, shots_video(), fps=12)
    for size in (32, 64):
        grey = read_video(path, size=size, grey=True)
        assert find_keyframes(difference_signal(grey)).tolist() == list(CUTS)


def test_read_clip_of_a_frame_folder_opens_only_the_sampled_images(folder: Path, monkeypatch) -> None:  # noqa: ANN001
    expected = sample_frames(read_video(folder, size=16), 5)
    opened: list[str] = []
    real = frame_folders._decode

    def counting(path, size, grey=False):  # noqa: ANN001, ANN202
        opened.append(path.name)
        return real(path, size, grey)

    monkeypatch.setattr(frame_folders, "_decode", counting)
    np.testing.assert_array_equal(read_clip(folder, 5, 16), expected)
    assert len(opened) == 5
    assert read_video(folder, size=8, grey=True).shape == (12, 8, 8)


def test_read_clip_of_a_frame_folder_with_a_bad_sampled_image(folder: Path, tmp_path: Path) -> None:
    """An unreadable sampled image: the folder is read in order up to it and the truncation rule applies."""
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    (bad / "0012.png").write_bytes(b"not a png")  # the last image: 11 of 12 decode, within the tolerance
    np.testing.assert_array_equal(read_clip(bad, 4, 16), sample_frames(read_video(bad, size=16), 4))
    assert len(read_video(bad)) == 11
    (bad / "0004.png").write_bytes(b"not a png")  # 3 of 12: truncated
    with pytest.raises(TruncatedVideoError):
        read_clip(bad, 4, 16)


def test_read_clip_reports_truncated_and_corrupt_videos(video: Path, tmp_path: Path) -> None:
    from test_bad_input import _clip, cut_until_truncated, write_faststart_mp4

    full = tmp_path / "full.mp4"
    write_faststart_mp4(full, _clip())
    short = cut_until_truncated(full, tmp_path / "short.mp4")
    with pytest.raises(TruncatedVideoError, match="truncated video"):
        read_clip(short, 8, 16)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 1000)
    with pytest.raises(VideoDecodeError):
        read_clip(junk, 8, 16)
    with pytest.raises(VideoDecodeError):
        read_video(junk, size=16, grey=True)


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_difference_signal_in_chunks_is_the_whole_video_signal(video: Path, monkeypatch, chunk: int) -> None:  # noqa: ANN001
    from dance.motion import keyframes

    grey = read_video(video, size=32, grey=True)
    blurred = keyframes.blur(luma(grey), 1.5) / 255.0
    formula = np.zeros(len(grey))
    formula[1:] = np.abs(np.diff(blurred, axis=0)).mean(axis=(1, 2))
    monkeypatch.setattr(keyframes, "SIGNAL_CHUNK", len(grey) + 1)
    whole = difference_signal(grey)
    np.testing.assert_allclose(whole, formula, rtol=1e-5, atol=1e-9)
    monkeypatch.setattr(keyframes, "SIGNAL_CHUNK", chunk)
    np.testing.assert_array_equal(difference_signal(grey), whole)  # bit for bit
    assert difference_signal(grey[:0]).shape == (0,)
