"""Frame folders: a directory of numbered images read as a video.

Some datasets ship videos as extracted frames (Penn Action: ``frames/0001/000001.jpg``, ``000002.jpg``, ...).
:func:`~dance.data.video.read_video` and :func:`~dance.data.video.video_info` hand a directory to this module, so
a frame folder can stand wherever a video file can.

Frames are the files with an extension in :data:`IMAGE_EXTENSIONS` (case-insensitive; hidden files and
sub-folders are ignored), ordered *numerically* by the last number in the file name (``2.jpg`` before
``10.jpg``; ties and names without a number are ordered by name, after the numbered ones). The output contract
is that of video decoding: uint8 RGB ``(T, H, W, 3)`` (grey, palette and RGBA images are converted to RGB),
optionally only the first ``max_frames`` and resized to a ``size x size`` square (bilinear, PIL), or grey
``(T, H, W)`` (PIL's ``L`` conversion of the resized RGB image, ITU-R 601 luma). The folder
declares as many frames as it holds image files. If a frame cannot be decoded part-way, decoding stops there, and
the rule for truncated video files applies (:mod:`dance.data.video`): the frames before it are returned when at
most 10 % or 2 frames are missing, else :class:`~dance.data.video.TruncatedVideoError` is raised; when not even
the first can be decoded, or the folder holds no image, a :class:`~dance.errors.VideoDecodeError` naming the
folder (and the frame) is raised.

Reading only some frames (:func:`~dance.data.video.read_clip`, ``keep`` of :func:`decode_frame_folder`) opens
only those images: an unreadable image among them is judged as above (the folder is read up to it), one that is
not read is not noticed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection
from pathlib import Path

import numpy as np

from dance.data.decoded import DecodedVideo, check_complete
from dance.errors import DanceError, VideoDecodeError

__all__ = ["IMAGE_EXTENSIONS", "decode_frame_folder", "frame_files", "frame_folder_info", "read_frame_folder"]

#: File extensions (lower case) read as frames of a frame folder.
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp")

_NUMBER = re.compile(r"(\d+)")


def _sort_key(path: Path) -> tuple[int, int, str]:
    numbers = _NUMBER.findall(path.stem)
    if numbers:
        return (0, int(numbers[-1]), path.name)
    return (1, 0, path.name)


def frame_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The image files of ``folder`` in frame order (see the module docstring).

    Raises:
        VideoDecodeError: ``folder`` does not exist, is not a directory or cannot be listed.
    """
    folder = Path(folder)
    if not folder.exists():
        raise VideoDecodeError(f"frame folder not found: {folder}")
    if not folder.is_dir():
        raise VideoDecodeError(f"not a frame folder (not a directory): {folder}")
    try:
        with os.scandir(folder) as entries:
            files = [
                Path(e.path)
                for e in entries
                if not e.name.startswith(".")
                and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS
                and e.is_file()
            ]
    except OSError as exc:
        raise VideoDecodeError(f"cannot list frame folder {folder}: {exc.strerror or exc}") from None
    return sorted(files, key=_sort_key)


def _decode(path: Path, size: int | None, grey: bool = False) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        rgb = img.convert("RGB")
    if size is not None and rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.BILINEAR)
    return np.asarray(rgb.convert("L") if grey else rgb, dtype=np.uint8)


def read_frame_folder(
    folder: str | os.PathLike[str], max_frames: int | None = None, size: int | None = None
) -> np.ndarray:
    """Decode a frame folder into a uint8 RGB array of shape (T, H, W, 3).

    Same arguments and contract as :func:`~dance.data.video.read_video`: ``max_frames`` keeps only the first
    frames, ``size`` resizes every frame to ``size x size``. Without ``size`` all frames must have the size of
    the first one.

    Raises:
        VideoDecodeError: missing or empty folder, first frame undecodable, frames of different sizes;
            :class:`~dance.data.video.TruncatedVideoError` when an undecodable frame stops decoding with more
            than the tolerance of the folder's frames missing.
    """
    return check_complete(folder, decode_frame_folder(folder, max_frames=max_frames, size=size), max_frames)


def decode_frame_folder(
    folder: str | os.PathLike[str], max_frames: int | None = None, size: int | None = None, grey: bool = False,
    keep: Callable[[int | None], Collection[int] | None] | None = None,
) -> DecodedVideo:
    """Like :func:`read_frame_folder` without the completeness check: a
    :class:`~dance.data.video.DecodedVideo` with the frames decoded before the first undecodable one, the number
    of image files as the declared count, and why decoding stopped.

    ``keep`` (given the number of image files) returns the positions of the images to decode (``None``: all), as
    for :func:`~dance.data.video.decode_video`. When one of them cannot be decoded, the folder is decoded from
    its first image up to that one, so that the truncation rule sees where decoding really stops."""
    folder = Path(folder)
    if max_frames is not None and max_frames < 1:
        raise DanceError(f"max_frames must be >= 1, got {max_frames}")
    if size is not None and size < 1:
        raise DanceError(f"size must be >= 1, got {size}")
    files = frame_files(folder)
    if not files:
        raise VideoDecodeError(
            f"frame folder has no image files: {folder} (looked for {' '.join(IMAGE_EXTENSIONS)})"
        )
    declared = len(files)
    if max_frames is not None:
        files = files[:max_frames]
    wanted = keep(declared) if keep is not None else None
    if wanted is not None:
        chosen = sorted(i for i in set(wanted) if 0 <= i < len(files))
        try:
            imgs = [_decode(files[i], size, grey) for i in chosen]
        except Exception:  # noqa: BLE001 - an undecodable image: read the folder in order to find where it stops
            imgs = None
        if imgs is not None and imgs and all(img.shape == imgs[0].shape for img in imgs):
            return DecodedVideo(np.stack(imgs), declared, "", count=len(files),
                                index=np.asarray(chosen, dtype=np.int64))
    frames: list[np.ndarray] = []
    error = ""
    for path in files:
        try:
            img = _decode(path, size, grey)
        except Exception as exc:  # PIL.UnidentifiedImageError, OSError (truncated), ValueError, ...
            if not frames:
                raise VideoDecodeError(f"cannot decode the first frame {path.name} of {folder}: {exc}") from None
            error = f"frame {path.name} cannot be decoded: {exc}"
            break  # like a truncated video: what was decoded before is judged by the truncation rule
        if frames and img.shape != frames[0].shape:
            raise VideoDecodeError(
                f"frame {path.name} of {folder} is {img.shape[1]}x{img.shape[0]} but the first frame is "
                f"{frames[0].shape[1]}x{frames[0].shape[0]} (pass size= to resize them all)"
            )
        frames.append(img)
    return DecodedVideo(np.stack(frames), declared, error)


def frame_folder_info(folder: str | os.PathLike[str]) -> dict:
    """``{"frames", "fps", "height", "width"}`` of a frame folder, reading only the first image's header.

    ``frames`` is the number of image files; ``fps`` is ``0.0`` (a frame folder does not record its rate).

    Raises:
        VideoDecodeError: missing or empty folder, or a first image whose header cannot be read.
    """
    from PIL import Image

    folder = Path(folder)
    files = frame_files(folder)
    if not files:
        raise VideoDecodeError(
            f"frame folder has no image files: {folder} (looked for {' '.join(IMAGE_EXTENSIONS)})"
        )
    try:
        with Image.open(files[0]) as img:
            width, height = img.size
    except Exception as exc:
        raise VideoDecodeError(f"cannot read the first frame {files[0].name} of {folder}: {exc}") from None
    return {"frames": len(files), "fps": 0.0, "height": int(height), "width": int(width)}
