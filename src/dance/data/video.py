"""Video IO with PyAV: deterministic H.264 writing, robust RGB reading, cheap metadata.

Every failure a user can cause (missing, empty, corrupt or stream-less files) surfaces as
:class:`~dance.errors.VideoDecodeError` naming the file; PyAV exceptions never leak.

A *directory* of numbered images (a frame folder, e.g. Penn Action's ``frames/0001/``) is read as a video by
:func:`read_video` and :func:`video_info` (see :mod:`dance.data.frames`); :func:`is_video` tells whether a path
is something they can read.
"""

from __future__ import annotations

import os
import uuid
from fractions import Fraction
from pathlib import Path

import numpy as np

from dance.errors import DanceError, VideoDecodeError

__all__ = ["is_video", "read_video", "video_info", "write_video"]

# libx264 settings. Byte-determinism needs a single thread *and* x264's C code paths: with its SIMD
# kernels enabled, single-threaded x264 still produced different bitstreams for the same input in
# roughly 1 of 10 runs on some clips (an uninitialised read in the macroblock-tree analysis).
# crf 18 keeps small sprites crisp.
_X264_OPTIONS = {"crf": "18", "preset": "veryfast", "threads": "1", "x264-params": "asm=0"}


def _check_frames(frames: np.ndarray) -> np.ndarray:
    arr = np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise DanceError(f"write_video expects frames of shape (T, H, W, 3), got {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] < 2 or arr.shape[2] < 2:
        raise DanceError(f"write_video got an empty or too small clip of shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise DanceError(f"write_video expects uint8 frames, got {arr.dtype}")
    return np.ascontiguousarray(arr)


def write_video(path: str | os.PathLike[str], frames: np.ndarray, fps: int) -> None:
    """Write ``frames`` (uint8, (T,H,W,3) RGB) as an H.264 video, atomically.

    The file is encoded into a temporary file in the destination folder and moved into place
    with :func:`os.replace`, so readers never see a half-written video. Output bytes are a pure
    function of the inputs (single-threaded libx264). Odd frame sizes are encoded as yuv444p
    (yuv420p needs even sizes) so the round trip keeps the exact shape.
    """
    import av

    arr = _check_frames(frames)
    if int(fps) < 1:
        raise DanceError(f"write_video needs fps >= 1, got {fps}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _, height, width, _ = arr.shape
    pix_fmt = "yuv420p" if height % 2 == 0 and width % 2 == 0 else "yuv444p"
    suffix = path.suffix or ".mp4"
    # A unique hidden sibling (created by the muxer, so it gets the usual umask permissions).
    tmp = path.parent / f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp{suffix}"
    try:
        fmt = "mp4" if suffix.lower() in (".mp4", ".m4v") else None
        with av.open(str(tmp), mode="w", format=fmt) as container:
            stream = container.add_stream("libx264", rate=int(fps), options=dict(_X264_OPTIONS))
            stream.width = width
            stream.height = height
            stream.pix_fmt = pix_fmt
            stream.time_base = Fraction(1, int(fps))
            stream.codec_context.thread_count = 1
            for i, img in enumerate(arr):
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                frame.pts = i
                frame.time_base = Fraction(1, int(fps))
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        os.replace(tmp, path)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, DanceError):
            raise
        raise DanceError(f"cannot write video {path}: {exc}") from exc


def is_video(path: str | os.PathLike[str]) -> bool:
    """True for a file with a video extension (``VIDEO_EXTENSIONS`` of :mod:`dance.data.index`) or a directory
    (a frame folder): the paths :func:`read_video` is meant for. Only the name and the file type are looked at."""
    from dance.data.index import VIDEO_EXTENSIONS

    path = Path(path)
    return path.suffix.lower() in VIDEO_EXTENSIONS or path.is_dir()


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise VideoDecodeError(f"video file not found: {path}")
    if not path.is_file():
        raise VideoDecodeError(f"video path is not a file: {path}")
    if path.stat().st_size == 0:
        raise VideoDecodeError(f"video file is empty (0 bytes): {path}")


def _open(path: Path):  # noqa: ANN202 - returns an av container
    import av

    try:
        container = av.open(str(path), mode="r")
    except Exception as exc:  # av.FFmpegError, OSError, UnicodeDecodeError, ...
        raise VideoDecodeError(f"cannot open video {path}: {exc}") from exc
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(f"no video stream in {path}")
    return container


def read_video(
    path: str | os.PathLike[str], max_frames: int | None = None, size: int | None = None
) -> np.ndarray:
    """Decode a video into a uint8 RGB array of shape (T, H, W, 3).

    ``max_frames`` keeps only the first frames; ``size`` resizes every frame to a
    ``size x size`` square (bilinear, via PIL). If decoding fails part-way the frames decoded
    so far are returned; if no frame can be decoded a :class:`VideoDecodeError` is raised.
    ``path`` may also be a frame folder (a directory of numbered images, read by
    :func:`dance.data.frames.read_frame_folder` with the same contract).
    """
    path = Path(path)
    if path.is_dir():
        from dance.data.frames import read_frame_folder

        return read_frame_folder(path, max_frames=max_frames, size=size)
    _check_readable(path)
    if max_frames is not None and max_frames < 1:
        raise DanceError(f"max_frames must be >= 1, got {max_frames}")
    if size is not None and size < 1:
        raise DanceError(f"size must be >= 1, got {size}")
    container = _open(path)
    frames: list[np.ndarray] = []
    error: Exception | None = None
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            img = frame.to_ndarray(format="rgb24")
            if size is not None and img.shape[:2] != (size, size):
                img = _resize(img, size)
            frames.append(img)
            if max_frames is not None and len(frames) >= max_frames:
                break
    except Exception as exc:  # corrupt packets, truncated files
        error = exc
    finally:
        try:
            container.close()
        except Exception:  # noqa: BLE001 - closing a broken container must not mask the real error
            pass
    if not frames:
        reason = f": {error}" if error is not None else ""
        raise VideoDecodeError(f"no decodable frames in {path}{reason}")
    return np.stack(frames).astype(np.uint8, copy=False)


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))


def video_info(path: str | os.PathLike[str]) -> dict:
    """Return ``{"frames", "fps", "height", "width"}`` from the container, without decoding pixels.

    ``frames`` comes from the stream header when present, otherwise from counting packets. For a frame folder
    ``frames`` is its number of images and ``fps`` is ``0.0`` (unknown).
    """
    path = Path(path)
    if path.is_dir():
        from dance.data.frames import frame_folder_info

        return frame_folder_info(path)
    _check_readable(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.base_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        height = int(stream.codec_context.height or 0)
        width = int(stream.codec_context.width or 0)
        n = int(stream.frames or 0)
        if n <= 0:
            n = sum(1 for packet in container.demux(stream) if packet.size > 0)
    except VideoDecodeError:
        raise
    except Exception as exc:
        raise VideoDecodeError(f"cannot read video metadata of {path}: {exc}") from exc
    finally:
        try:
            container.close()
        except Exception:  # noqa: BLE001
            pass
    if n <= 0 or height <= 0 or width <= 0:
        raise VideoDecodeError(f"video has no frames or no size: {path}")
    return {"frames": n, "fps": fps, "height": height, "width": width}
