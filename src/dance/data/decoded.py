"""What decoding a video returns, and when a video counts as truncated: the types shared by
:mod:`dance.data.video` (files) and :mod:`dance.data.frames` (frame folders), below both so neither imports the
other back. :mod:`dance.data.video` re-exports every name here; the rule is described in its docstring."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dance.errors import VideoDecodeError

__all__ = ["TRUNCATION_MIN_FRAMES", "TRUNCATION_TOLERANCE", "DecodedVideo", "TruncatedVideoError", "check_complete",
           "is_truncated"]

log = logging.getLogger("dance.data.video")


#: A video missing more than this fraction of the frames its container declares is truncated ...
TRUNCATION_TOLERANCE = 0.10
#: ... when it also misses more than this many frames (headers off by one or two frames are common and harmless).
TRUNCATION_MIN_FRAMES = 2


class TruncatedVideoError(VideoDecodeError):
    """A video (or frame folder) decodes to clearly fewer frames than it declares (see :func:`is_truncated`).

    ``decoded`` and ``declared`` are the frame counts, ``path`` the file; the message starts with
    ``truncated video:`` (the reason a pipeline stage reports when it skips the video).
    """

    def __init__(self, path: str | os.PathLike[str], decoded: int, declared: int, cause: str = "",
                 verb: str = "decoded"):
        self.path = Path(path)
        self.decoded = int(decoded)
        self.declared = int(declared)
        missing = self.declared - self.decoded
        why = f"; {cause}" if cause else ""
        super().__init__(
            f"truncated video: {verb} {self.decoded} of the {self.declared} frames {self.path} declares "
            f"({missing} missing, {100.0 * missing / max(self.declared, 1):.0f} %){why}"
        )


def is_truncated(decoded: int, declared: int | None) -> bool:
    """Whether ``decoded`` frames of a video declaring ``declared`` are short by more than the tolerance:
    more than :data:`TRUNCATION_TOLERANCE` of ``declared`` *and* more than :data:`TRUNCATION_MIN_FRAMES` frames.
    An unknown declared count (``None`` or ``<= 0``) is never truncated."""
    if declared is None or declared <= 0:
        return False
    missing = declared - decoded
    return missing > TRUNCATION_MIN_FRAMES and missing > TRUNCATION_TOLERANCE * declared


@dataclass(frozen=True)
class DecodedVideo:
    """What :func:`decode_video` read: the frames, how many the container declares (``None`` when it does
    not say), and the error that stopped decoding early (``""`` when it ran to the end or to ``max_frames``).

    When only some frames were converted (``keep`` of :func:`decode_video`), ``index`` holds their positions in
    the video and ``count`` how many frames were decoded in all; otherwise ``index`` is ``None`` and every
    decoded frame is in ``frames``."""

    frames: np.ndarray
    declared: int | None
    error: str = ""
    count: int | None = None
    index: np.ndarray | None = None

    @property
    def decoded(self) -> int:
        """Frames decoded (converted or not)."""
        return int(len(self.frames)) if self.count is None else int(self.count)

    @property
    def truncated(self) -> bool:
        """Short of the declared count by more than the tolerance (see :func:`is_truncated`)."""
        return is_truncated(self.decoded, self.declared)


def check_complete(path: str | os.PathLike[str], video: DecodedVideo, max_frames: int | None = None) -> np.ndarray:
    """``video.frames``, or :class:`TruncatedVideoError` when fewer frames were decoded than declared (at most
    ``max_frames`` expected) by more than the tolerance."""
    expected = video.declared
    if expected is not None and max_frames is not None:
        expected = min(expected, max_frames)
    if is_truncated(video.decoded, expected):
        cause = f"decoding stopped with {video.error}" if video.error else "the data ends early"
        raise TruncatedVideoError(path, video.decoded, int(expected or 0), cause)
    if expected is not None and video.decoded < expected:
        log.debug("%s: decoded %d of %d declared frames (within the tolerance)", path, video.decoded, expected)
    return video.frames
