"""Video IO with PyAV: deterministic H.264 writing, robust RGB reading, cheap metadata.

Every failure a user can cause (missing, empty, corrupt or stream-less files) surfaces as
:class:`~dance.errors.VideoDecodeError` naming the file; PyAV exceptions never leak.

**Truncated videos.** Decoding compares the frames it read with the frames the container declares (the stream's
frame count, else its duration times its frame rate; :func:`decode_video` returns both). A video that decodes
*more than* :data:`TRUNCATION_TOLERANCE` (10 %) *and more than* :data:`TRUNCATION_MIN_FRAMES` (2) frames short of
what it declares is truncated (a cut download, a half-copied file): :func:`read_video` raises
:class:`TruncatedVideoError` (a :class:`~dance.errors.VideoDecodeError`, so every stage that decodes skips the
video with the reason ``truncated video: decoded 86 of 300 frames ...``). The tolerance lets through headers that
are off by a frame or two (B-frame reordering, a last frame dropped by the muxer), which decode fine.

A *directory* of numbered images (a frame folder, e.g. Penn Action's ``frames/0001/``) is read as a video by
:func:`read_video` and :func:`video_info` (see :mod:`dance.data.frames`); :func:`is_video` tells whether a path
is something they can read.

**Decoding small.** Frames are scaled and converted by the decoder (FFmpeg's swscale through PyAV, bilinear, one
scaler per video), not resized afterwards: ``size`` and ``grey`` ask the decoder for exactly the frames a stage
needs (128 px grey for keyframes, ``size`` px RGB for a video model), and :func:`read_clip` converts only the frames
it samples (every frame is still decoded: inter-coded video cannot skip decoding, and the truncation check counts
them). Pixel values of resized frames therefore come from swscale's bilinear filter, not PIL's (they differ by a
few grey levels at edges; frame folders are still resized by PIL).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Collection
from fractions import Fraction
from pathlib import Path

import numpy as np

from dance.data.decoded import (
    TRUNCATION_MIN_FRAMES,
    TRUNCATION_TOLERANCE,
    DecodedVideo,
    TruncatedVideoError,
    check_complete,
    is_truncated,
)
from dance.data.frames import decode_frame_folder, frame_folder_info
from dance.errors import DanceError, VideoDecodeError

__all__ = [
    "TRUNCATION_MIN_FRAMES",
    "TRUNCATION_TOLERANCE",
    "VIDEO_EXTENSIONS",
    "DecodedVideo",
    "TruncatedVideoError",
    "check_complete",
    "decode_video",
    "is_truncated",
    "is_video",
    "read_clip",
    "read_video",
    "sample_frames",
    "sample_index",
    "video_info",
    "write_video",
]

#: File extensions (lower case) recognised as videos (index formats scanning folders, :func:`is_video`).
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".mpg", ".mpeg", ".m4v")


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
    """True for a file with a video extension (:data:`VIDEO_EXTENSIONS`) or a directory (a frame folder): the
    paths :func:`read_video` is meant for. Only the name and the file type are looked at."""
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
    path: str | os.PathLike[str], max_frames: int | None = None, size: int | None = None, grey: bool = False
) -> np.ndarray:
    """Decode a video into a uint8 RGB array of shape (T, H, W, 3), or grey (T, H, W) with ``grey=True``.

    ``max_frames`` keeps only the first frames; ``size`` has the decoder scale every frame to a ``size x size``
    square (bilinear); ``grey`` has it output luma only (what keyframes are found in), which skips the colour
    conversion. If decoding fails part-way (or the file ends early) the frames
    decoded so far are returned when they are within the tolerance of what the container declares (see the module
    docstring); a video short by more is a :class:`TruncatedVideoError`, and a video without any decodable frame
    a :class:`VideoDecodeError`. ``path`` may also be a frame folder (a directory of numbered images, read by
    :func:`dance.data.frames.read_frame_folder` with the same contract).
    """
    return check_complete(path, decode_video(path, max_frames=max_frames, size=size, grey=grey), max_frames)


def sample_index(n_total: int, n: int) -> np.ndarray:
    """Positions of ``n`` frames spread uniformly over ``n_total`` (repeated when ``n_total < n``), int64."""
    return np.round(np.linspace(0, n_total - 1, n)).astype(np.int64)


def sample_frames(frames: np.ndarray, n: int) -> np.ndarray:
    """``n`` frames spread uniformly over the video (frames repeat when the video is shorter)."""
    return frames[sample_index(len(frames), n)]


def read_clip(path: str | os.PathLike[str], n_frames: int, size: int) -> np.ndarray:
    """The input of a video model: ``n_frames`` frames spread over the video, resized to ``size`` squares.

    The same frames as ``sample_frames(read_video(path, size=size), n_frames)`` (and the same errors), but only
    the sampled frames are scaled and converted (a frame folder decodes only the sampled images). The positions
    are chosen from the frame count the container declares; when the video decodes to another count (within the
    truncation tolerance) the frames are chosen again from the real count, decoding a second time if needed.
    """
    if n_frames < 1:
        raise DanceError(f"n_frames must be >= 1, got {n_frames}")

    def keep(declared: int | None) -> set[int] | None:
        return None if not declared else {int(i) for i in sample_index(declared, n_frames)}

    video = decode_video(path, size=size, keep=keep)
    check_complete(path, video)
    idx = sample_index(video.decoded, n_frames)
    got = _by_position(video)
    if not all(int(i) in got for i in idx):  # the real count differs from the declared one
        want = {int(i) for i in idx}
        video = decode_video(path, size=size, max_frames=video.decoded, keep=lambda _: want)
        got = _by_position(video)
        missing = [int(i) for i in idx if int(i) not in got]
        if missing:  # the second pass decoded fewer frames than the first: the file changed under us
            raise VideoDecodeError(f"frames {missing[:3]} of {path} could not be decoded on a second pass")
    return np.stack([got[int(i)] for i in idx])


def _by_position(video: DecodedVideo) -> dict[int, np.ndarray]:
    index = video.index if video.index is not None else np.arange(len(video.frames))
    return {int(i): f for i, f in zip(index, video.frames)}


def decode_video(
    path: str | os.PathLike[str], max_frames: int | None = None, size: int | None = None, grey: bool = False,
    keep: Callable[[int | None], Collection[int] | None] | None = None,
) -> DecodedVideo:
    """Decode like :func:`read_video` but never judge completeness: the frames, the frame count the container
    declares and the error that stopped decoding early, for callers that want to decide themselves.

    ``keep`` (given the declared frame count, ``None`` when unknown) returns the positions of the frames to
    convert, or ``None`` for all: the others are decoded (and counted) but never scaled or converted, and the
    result's ``index`` and ``count`` say which frames ``frames`` holds and how many were decoded.

    Raises :class:`VideoDecodeError` only when the file cannot be opened or not even one frame decodes.
    """
    path = Path(path)
    if path.is_dir():
        return decode_frame_folder(path, max_frames=max_frames, size=size, grey=grey, keep=keep)
    _check_readable(path)
    if max_frames is not None and max_frames < 1:
        raise DanceError(f"max_frames must be >= 1, got {max_frames}")
    if size is not None and size < 1:
        raise DanceError(f"size must be >= 1, got {size}")
    from av.video.reformatter import Interpolation, VideoReformatter

    container = _open(path)
    frames: list[np.ndarray] = []
    index: list[int] = []
    error: Exception | None = None
    declared: int | None = None
    count = 0
    wanted: Collection[int] | None = None
    pix_fmt = "gray" if grey else "rgb24"
    scaler = VideoReformatter()  # one swscale context for the whole video (a fresh one per frame costs ~2x)
    try:
        stream = container.streams.video[0]
        declared = _declared_frames(container, stream)
        wanted = keep(declared) if keep is not None else None
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            if wanted is None or count in wanted:
                if size is not None:
                    out = scaler.reformat(frame, width=size, height=size, format=pix_fmt,
                                          interpolation=Interpolation.BILINEAR)
                else:
                    out = scaler.reformat(frame, format=pix_fmt)
                frames.append(out.to_ndarray())
                index.append(count)
            count += 1
            if max_frames is not None and count >= max_frames:
                break
    except Exception as exc:  # corrupt packets, truncated files
        error = exc
    finally:
        try:
            container.close()
        except Exception:  # noqa: BLE001 - closing a broken container must not mask the real error
            pass
    if count == 0:
        reason = f": {error}" if error is not None else ""
        raise VideoDecodeError(f"no decodable frames in {path}{reason}")
    cause = f"{type(error).__name__}: {error}" if error is not None else ""
    shape = (0, size or 0, size or 0) + (() if grey else (3,))
    arr = np.stack(frames).astype(np.uint8, copy=False) if frames else np.zeros(shape, np.uint8)
    if wanted is None:
        return DecodedVideo(arr, declared, cause)
    return DecodedVideo(arr, declared, cause, count=count, index=np.asarray(index, dtype=np.int64))


def _declared_frames(container, stream) -> int | None:  # noqa: ANN001 - av objects
    """Frames the container declares for ``stream``: its frame count, else duration x frame rate (None: unknown)."""
    n = int(stream.frames or 0)
    if n > 0:
        return n
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    try:
        if not rate or float(rate) <= 0:
            return None
        if stream.duration and stream.time_base:
            seconds = float(stream.duration * stream.time_base)
        elif container.duration:
            seconds = float(container.duration) / 1_000_000  # av.time_base: microseconds
        else:
            return None
        n = int(round(seconds * float(rate)))
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):  # NaN / inf durations and rates
        return None
    return n if n > 0 else None


def video_info(path: str | os.PathLike[str], verify: bool = False) -> dict:
    """Return ``{"frames", "fps", "height", "width"}`` from the container, without decoding pixels.

    ``frames`` is what the container declares: the stream header's frame count when present, otherwise its
    duration times its frame rate, otherwise the number of packets. It is *not* checked against the data: a
    truncated file keeps declaring its full length. ``verify=True`` also counts the packets actually present
    (demuxing the whole file, still without decoding), adds ``"packets"`` to the result and raises
    :class:`TruncatedVideoError` when they fall short of ``frames`` by more than the tolerance (see the module
    docstring). For a frame folder ``frames`` is its number of images and ``fps`` is ``0.0`` (unknown).
    """
    path = Path(path)
    if path.is_dir():
        return frame_folder_info(path)
    _check_readable(path)
    container = _open(path)
    packets: int | None = None
    try:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.base_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        height = int(stream.codec_context.height or 0)
        width = int(stream.codec_context.width or 0)
        n = _declared_frames(container, stream) or 0
        if n <= 0 or verify:
            packets = _count_packets(container, stream)
            n = n if n > 0 else packets
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
    info = {"frames": n, "fps": fps, "height": height, "width": width}
    if verify:
        assert packets is not None
        if is_truncated(packets, n):
            raise TruncatedVideoError(path, packets, n, "counted packets without decoding", verb="found")
        info["packets"] = packets
    return info


def _count_packets(container, stream) -> int:  # noqa: ANN001 - av objects
    """Non-empty packets of ``stream`` until the end of the file or the first demuxing error."""
    n = 0
    try:
        for packet in container.demux(stream):
            if packet.size > 0:
                n += 1
    except Exception:  # noqa: BLE001 - a cut file ends with a demuxing error: count what came before
        pass
    return n
