"""A pose source that estimates 2D poses with MediaPipe Pose (the optional ``pose`` extra).

:class:`MediaPipePoseSource` follows the :class:`~dance.motion.poses.PoseSource` protocol: for each clip it decodes
the video (:func:`~dance.data.video.decode_video`, the decoded frames of the last video are cached so that the
clips of one video decode once), runs MediaPipe's legacy ``solutions.pose.Pose`` graph in video mode over the
requested frames in the order given, and returns the 33 landmarks in pixels with their visibility as the score.

:meth:`MediaPipePoseSource.clip_poses` takes all the key-clip windows of a video at once: the video is decoded
once and only the frames inside the windows are converted to RGB (and shrunk to ``size``); every frame is still
decoded and counted, so a truncated video fails exactly as it does with a full decode. The frames MediaPipe sees,
their size and their order are those of :meth:`~MediaPipePoseSource.poses` window by window, so the poses are
bit-identical. :meth:`~MediaPipePoseSource.poses` alone (one window, the others unknown) converts every frame of a
video it has not cached (decoding once per window would cost more than converting all).

Behaviour worth knowing:

- **One graph per clip.** A fresh ``Pose`` is built for every clip (and for every :meth:`estimate` call), so the
  tracker and the landmark smoothing never carry a person from one clip into another.
- **No person** in a frame (or a frame index outside the video) gives keypoints 0 and scores 0; the clip filters
  downstream read that as "no person".
- **Per-frame failures.** An exception raised by MediaPipe on one frame counts as "no person" for that frame (the
  graph is rebuilt for the next frame); a clip on which *every* frame fails raises a
  :class:`~dance.errors.PoseFormatError` naming the video.
- **Weights.** mediapipe 0.10.21 ships only the weights of ``model_complexity=1`` (``pose_landmark_full.tflite``)
  in its wheel; complexities 0 and 2 download theirs from Google Cloud Storage the first time they are used, which
  fails offline. They are therefore refused unless ``allow_download=True`` or the weights file is already present.
- **Coordinates** are pixels of the frames as decoded (the video's own resolution), whatever ``size`` is:
  ``size`` only shrinks the frames MediaPipe sees (and the cached video) so that their longer side is at most
  ``size`` pixels, keeping the aspect ratio. MediaPipe's landmarks are normalised to the image, so they are scaled
  back to the full frame. Landmarks extrapolated outside the frame keep their (outside) coordinates; their
  visibility is normally low.

Importing this module never imports mediapipe; building a :class:`MediaPipePoseSource` does.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dance.data.decoded import check_complete
from dance.data.index import VideoRecord
from dance.data.video import decode_video
from dance.errors import ConfigError, PoseFormatError
from dance.motion.poses import PoseSequence, Skeleton

__all__ = [
    "MEDIAPIPE_EDGES",
    "MEDIAPIPE_JOINTS",
    "MEDIAPIPE_SKELETON",
    "MISSING_MEDIAPIPE_MESSAGE",
    "MediaPipePoseSource",
]

logger = logging.getLogger(__name__)

#: MediaPipe Pose's 33 landmarks, in the order of ``mediapipe.solutions.pose.PoseLandmark``.
MEDIAPIPE_JOINTS: tuple[str, ...] = (
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky",
    "right_pinky",
    "left_index",
    "right_index",
    "left_thumb",
    "right_thumb",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
)

#: MediaPipe's standard pose connections (``mediapipe.solutions.pose.POSE_CONNECTIONS``) as index pairs.
MEDIAPIPE_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10),
    (11, 12), (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19),
    (12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20),
    (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28),
    (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32),
)  # fmt: skip

MEDIAPIPE_SKELETON = Skeleton(MEDIAPIPE_JOINTS, MEDIAPIPE_EDGES)

MISSING_MEDIAPIPE_MESSAGE = (
    "the mediapipe pose estimator needs the optional extra: pip install 'dance-xai[pose]' (mediapipe==0.10.21)"
)

#: The landmark weights each model complexity needs, relative to the mediapipe package folder.
_WEIGHTS = {
    0: "modules/pose_landmark/pose_landmark_lite.tflite",
    1: "modules/pose_landmark/pose_landmark_full.tflite",
    2: "modules/pose_landmark/pose_landmark_heavy.tflite",
}


def _mediapipe_dir() -> Path | None:
    """The installed mediapipe package folder, found without importing it (None when not installed)."""
    try:
        spec = importlib.util.find_spec("mediapipe")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent


def _weights_present(model_complexity: int) -> bool:
    """Whether the landmark weights of ``model_complexity`` are already inside the installed mediapipe package."""
    root = _mediapipe_dir()
    return root is not None and (root / _WEIGHTS[model_complexity]).is_file()


def _import_mediapipe() -> tuple[Any, str]:
    """Import mediapipe's legacy pose solution; returns ``(pose module, mediapipe version)``."""
    try:
        import mediapipe
        from mediapipe.python.solutions import pose as mp_pose
    except ImportError as e:
        raise PoseFormatError(f"{MISSING_MEDIAPIPE_MESSAGE}; importing it failed: {e}") from None
    except Exception as e:  # noqa: BLE001 - a broken install (protobuf/numpy mismatch) fails in many ways
        raise PoseFormatError(f"mediapipe is installed but cannot be imported ({type(e).__name__}: {e}); "
                              f"reinstall it: pip install 'dance-xai[pose]' (mediapipe==0.10.21)") from None
    version = str(getattr(mediapipe, "__version__", "unknown"))
    return mp_pose, version


def _as_rgb_frames(frames: np.ndarray) -> np.ndarray:
    """Check and coerce frames to uint8 RGB of shape (T, H, W, 3): grayscale is repeated, an alpha channel dropped."""
    arr = np.asarray(frames)
    if arr.dtype != np.uint8:
        raise PoseFormatError(f"pose estimation expects uint8 frames (0-255), got {arr.dtype}")
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3, 4):
        raise PoseFormatError(f"pose estimation expects frames of shape (T, H, W, 3), got {np.shape(frames)}")
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    elif arr.shape[-1] == 4:
        arr = arr[..., :3]
    if arr.shape[0] and (arr.shape[1] < 1 or arr.shape[2] < 1):
        raise PoseFormatError(f"pose estimation got empty frames of shape {arr.shape}")
    return arr


def _shrink(frames: np.ndarray, size: int | None) -> np.ndarray:
    """Downscale frames so that their longer side is at most ``size`` (aspect kept, bilinear); else unchanged."""
    if size is None or len(frames) == 0:
        return frames
    h, w = frames.shape[1:3]
    if max(h, w) <= size:
        return frames
    from PIL import Image

    scale = size / max(h, w)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.stack([np.asarray(Image.fromarray(f).resize(new, Image.BILINEAR)) for f in frames])


class MediaPipePoseSource:
    """2D poses from MediaPipe Pose (33 landmarks), estimated on the frames of each clip.

    Args:
        model_complexity: 0 (lite), 1 (full) or 2 (heavy). Only 1 ships its weights in the mediapipe wheel; 0 and 2
            need ``allow_download=True`` (they fetch their weights at run time) unless their weights file is already
            in the installed mediapipe package.
        min_detection_confidence: MediaPipe's person-detection threshold in [0, 1].
        min_tracking_confidence: MediaPipe's landmark-tracking threshold in [0, 1]; below it the person is
            detected again on the next frame.
        size: when set, frames are shrunk so that their longer side is at most ``size`` pixels before MediaPipe
            sees them (aspect ratio kept; saves memory for the cached video). Keypoints are always returned in
            pixels of the original frames.
        smooth_landmarks: MediaPipe's temporal landmark filter (within a clip only).
        allow_download: allow complexities 0 and 2 to download their weights.

    Raises:
        ConfigError: invalid settings, or complexity 0/2 without ``allow_download`` and without weights.
        PoseFormatError: mediapipe is not installed (or broken), or its graph cannot be built.
    """

    name = "mediapipe"

    def __init__(
        self,
        model_complexity: int = 1,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        size: int | None = None,
        *,
        smooth_landmarks: bool = True,
        allow_download: bool = False,
        quiet: bool = True,
    ) -> None:
        if isinstance(model_complexity, bool) or model_complexity not in _WEIGHTS:
            raise ConfigError(f"mediapipe model_complexity must be 0, 1 or 2, got {model_complexity!r}")
        for label, value in (("min_detection_confidence", min_detection_confidence),
                             ("min_tracking_confidence", min_tracking_confidence)):
            if not 0.0 <= float(value) <= 1.0:
                raise ConfigError(f"mediapipe {label} must be in [0, 1], got {value}")
        if size is not None and int(size) < 16:
            raise ConfigError(f"mediapipe size must be at least 16 pixels (or None), got {size}")
        if model_complexity != 1 and not allow_download and not _weights_present(model_complexity):
            raise ConfigError(
                f"mediapipe model_complexity={model_complexity} is not usable offline: only model_complexity=1 "
                f"ships its weights in the mediapipe wheel (pose_landmark_full.tflite); complexities 0 and 2 "
                f"download theirs at run time ({Path(_WEIGHTS[model_complexity]).name}), which fails without "
                f"internet access. Use model_complexity=1, or pass allow_download=True to let mediapipe download them."
            )
        self.model_complexity = int(model_complexity)
        self.min_detection_confidence = float(min_detection_confidence)
        self.min_tracking_confidence = float(min_tracking_confidence)
        self.size = None if size is None else int(size)
        self.smooth_landmarks = bool(smooth_landmarks)
        self.allow_download = bool(allow_download)
        self.quiet = bool(quiet)  # hide MediaPipe's native start-up log lines (see _native_stderr_silenced)
        self.skeleton: Skeleton = MEDIAPIPE_SKELETON
        self._mp_pose, self.mediapipe_version = _import_mediapipe()
        self._cache_key: tuple | None = None
        self._cache_frames: np.ndarray | None = None  # the converted (shrunk) frames of the cached video
        self._cache_index: np.ndarray | None = None  # their positions in the video (None: every frame)
        self._cache_count: int = 0  # frames the cached video decodes to
        self._cache_shape: tuple[int, int] = (0, 0)
        # Build (and close) one graph now: a broken install or a failed weights download shows up here, once.
        try:
            with _native_stderr_silenced(self.quiet):
                self._new_pose().close()
        except Exception as e:  # noqa: BLE001 - mediapipe raises RuntimeError, urllib errors, OSError, ...
            raise PoseFormatError(self._start_failure(e)) from None

    # ------------------------------------------------------------------------------------------------ protocol

    def fingerprint(self) -> str:
        """Identifies the estimator: mediapipe version and every setting that changes the poses."""
        return (f"mediapipe-{self.mediapipe_version}:complexity={self.model_complexity},"
                f"detection={self.min_detection_confidence:g},tracking={self.min_tracking_confidence:g},"
                f"smooth={int(self.smooth_landmarks)},size={self.size}")

    def poses(self, record: VideoRecord, frame_indices: np.ndarray) -> PoseSequence:
        """Poses of ``frame_indices`` of ``record``'s video: keypoints (T, 33, 2) in pixels, scores (T, 33).

        Indices outside the video give "no person" (scores 0). Raises :class:`~dance.errors.VideoDecodeError` for
        a missing or corrupt video and :class:`~dance.errors.PoseFormatError` when MediaPipe fails on every frame.
        """
        return self.clip_poses(record, [frame_indices], _all_frames=True)[0]

    def clip_poses(self, record: VideoRecord, windows: list[np.ndarray], *,
                   _all_frames: bool = False) -> list[PoseSequence]:
        """The poses of several clips of ``record``'s video, each as :meth:`poses` gives it (one fresh graph per
        clip, in the order given), decoding the video once and converting only the frames inside ``windows``.
        """
        idxs = [np.asarray(w, dtype=np.int64).reshape(-1) for w in windows]
        j = self.skeleton.n_joints
        if not any(len(i) for i in idxs):
            return [PoseSequence(np.zeros((0, j, 2), np.float32), np.zeros((0, j), np.float32)) for _ in idxs]
        wanted = None if _all_frames else np.unique(np.concatenate(idxs))
        frames, index, count, (height, width) = self._decoded(Path(record.path), wanted)
        out = []
        for idx in idxs:
            kp = np.zeros((len(idx), j, 2), np.float32)
            sc = np.zeros((len(idx), j), np.float32)
            inside = (idx >= 0) & (idx < count)
            if inside.any():
                rows = idx[inside] if index is None else np.searchsorted(index, idx[inside])
                seq = self._run(frames, rows, (height, width), str(record.path))
                kp[inside], sc[inside] = seq.keypoints, seq.scores
            out.append(PoseSequence(kp, sc))
        return out

    def estimate(self, frames: np.ndarray) -> PoseSequence:
        """Poses of already decoded frames ((T, H, W, 3) uint8 RGB; grayscale (T, H, W) is accepted too).

        The frames are one clip: they are tracked in order with a fresh graph. Keypoints are in pixels of
        ``frames``.
        """
        arr = _as_rgb_frames(frames)
        j = self.skeleton.n_joints
        if len(arr) == 0:
            return PoseSequence(np.zeros((0, j, 2), np.float32), np.zeros((0, j), np.float32))
        shape = (int(arr.shape[1]), int(arr.shape[2]))
        small = _shrink(arr, self.size)
        return self._run(small, np.arange(len(small)), shape, "the given frames")

    def clear_cache(self) -> None:
        """Forget the cached decoded video."""
        self._cache_key, self._cache_frames, self._cache_shape = None, None, (0, 0)
        self._cache_index, self._cache_count = None, 0

    # ------------------------------------------------------------------------------------------------ internals

    def person_masks(self, frames: np.ndarray, where: str = "frames") -> np.ndarray:
        """MediaPipe's person segmentation of every frame, from the pose graph itself (``enable_segmentation``:
        no other weights): float32 (T, H, W) in [0, 1] at the frames' size, 0 on frames without a tracked person.
        One person (the most prominent); a frame MediaPipe fails on counts as no person."""
        frames = _as_rgb_frames(frames)
        out = np.zeros(frames.shape[:3], np.float32)
        try:
            with _native_stderr_silenced(self.quiet):
                pose = self._new_pose(segmentation=True)
        except Exception as e:  # noqa: BLE001
            raise PoseFormatError(self._start_failure(e, where)) from None
        try:
            for t in range(len(frames)):
                try:
                    with _native_stderr_silenced(self.quiet and t == 0):
                        mask = pose.process(np.ascontiguousarray(frames[t])).segmentation_mask
                except Exception:  # noqa: BLE001 - one bad frame is "no person"; rebuild the graph
                    _close_quietly(pose)
                    pose = self._new_pose(segmentation=True)
                    continue
                if mask is not None and mask.shape == out.shape[1:]:
                    out[t] = np.clip(np.nan_to_num(np.asarray(mask, np.float32)), 0.0, 1.0)
        finally:
            _close_quietly(pose)
        return out

    def _new_pose(self, segmentation: bool = False) -> Any:
        return self._mp_pose.Pose(
            static_image_mode=False,
            model_complexity=self.model_complexity,
            smooth_landmarks=self.smooth_landmarks,
            enable_segmentation=segmentation,
            min_detection_confidence=self.min_detection_confidence,
            min_tracking_confidence=self.min_tracking_confidence,
        )

    def _start_failure(self, error: Exception, where: str = "") -> str:
        hint = ""
        if self.model_complexity != 1:
            hint = (f" (model_complexity={self.model_complexity} downloads its weights at run time; "
                    f"model_complexity=1 works offline)")
        at = f" for {where}" if where else ""
        return f"cannot start MediaPipe Pose{at}: {type(error).__name__}: {error}{hint}"

    def _decoded(self, path: Path, wanted: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray | None, int, tuple[int, int]]:
        """The converted frames of ``path`` (shrunk to ``size``), their positions (``None``: every frame), the
        number of frames the video decodes to and the original (height, width); cached for the last video.

        ``wanted``: the sorted positions needed (``None``: all). The cache is reused when it holds them all;
        otherwise the video is decoded again, converting only ``wanted`` (every frame is still decoded and counted,
        so a truncated video raises the same :class:`~dance.errors.TruncatedVideoError` as a full decode)."""
        try:
            st = path.stat()
            key: tuple = (os.path.abspath(path), st.st_size, st.st_mtime_ns, self.size)
        except OSError:
            key = (os.path.abspath(path), None, None, self.size)
        if key == self._cache_key and self._cache_frames is not None and self._covers(wanted):
            return self._cache_frames, self._cache_index, self._cache_count, self._cache_shape
        self.clear_cache()
        keep = None if wanted is None else frozenset(int(i) for i in wanted)
        # VideoDecodeError / TruncatedVideoError propagate: the pipeline skips the video
        video = decode_video(path, keep=None if keep is None else (lambda _declared: keep))
        frames = check_complete(path, video)
        count = video.decoded
        if video.index is None:  # every frame converted (a frame folder may ignore keep: same thing)
            index = None
            shape = (int(frames.shape[1]), int(frames.shape[2]))
        else:
            index = video.index
            # no wanted frame inside the video: nothing is estimated, so the shape is never used
            shape = (int(frames.shape[1]), int(frames.shape[2])) if len(frames) else (0, 0)
        self._cache_frames = _shrink(frames, self.size)
        self._cache_index, self._cache_count, self._cache_shape = index, count, shape
        self._cache_key = key
        return self._cache_frames, self._cache_index, self._cache_count, self._cache_shape

    def _covers(self, wanted: np.ndarray | None) -> bool:
        """Whether the cached frames hold every position of ``wanted`` inside the video (``None``: all)."""
        if self._cache_index is None:
            return True
        if wanted is None:
            return False
        inside = wanted[(wanted >= 0) & (wanted < self._cache_count)]
        return bool(np.isin(inside, self._cache_index).all())

    def _run(self, frames: np.ndarray, idx: np.ndarray, shape: tuple[int, int], where: str) -> PoseSequence:
        """Track ``frames[idx]`` in order with a fresh graph; keypoints scaled to ``shape`` = (height, width)."""
        height, width = shape
        j = self.skeleton.n_joints
        kp = np.zeros((len(idx), j, 2), np.float32)
        sc = np.zeros((len(idx), j), np.float32)
        failures: list[Exception] = []
        try:
            with _native_stderr_silenced(self.quiet):
                pose = self._new_pose()
        except Exception as e:  # noqa: BLE001
            raise PoseFormatError(self._start_failure(e, where)) from None
        try:
            for t, i in enumerate(idx):
                try:
                    with _native_stderr_silenced(self.quiet and t == 0):
                        result = pose.process(np.ascontiguousarray(frames[int(i)]))
                    landmarks = result.pose_landmarks
                    if landmarks is None:
                        continue
                    values = np.array([(lm.x, lm.y, lm.visibility) for lm in landmarks.landmark], dtype=np.float64)
                    if values.shape != (j, 3):
                        raise RuntimeError(f"expected {j} landmarks, got {len(values)}")
                except Exception as e:  # noqa: BLE001 - one bad frame is "no person", not a crash
                    failures.append(e)
                    # The graph may be left in an error state: rebuild it (tracking restarts on the next frame).
                    _close_quietly(pose)
                    try:
                        pose = self._new_pose()
                    except Exception as e2:  # noqa: BLE001
                        raise PoseFormatError(self._start_failure(e2, where)) from None
                    continue
                xy = values[:, :2] * np.array([width, height], dtype=np.float64)
                vis = values[:, 2]
                ok = np.isfinite(xy).all(axis=1) & np.isfinite(vis)
                kp[t] = np.where(ok[:, None], xy, 0.0)
                sc[t] = np.where(ok, np.clip(vis, 0.0, 1.0), 0.0)
        finally:
            _close_quietly(pose)
        if failures and len(failures) == len(idx):
            e = failures[0]
            raise PoseFormatError(f"MediaPipe Pose failed on all {len(idx)} frames of {where}: "
                                  f"{type(e).__name__}: {e}")
        if failures:
            logger.warning("MediaPipe Pose failed on %d of %d frames of %s (counted as no person): %s",
                           len(failures), len(idx), where, failures[0])
        return PoseSequence(kp, sc)


@contextlib.contextmanager
def _native_stderr_silenced(active: bool = True) -> Iterator[None]:
    """Send file descriptor 2 to /dev/null: MediaPipe's C++ graph prints INFO/WARNING lines (TFLite delegate,
    feedback manager) straight to it when a graph starts and on its first frame, bypassing Python logging.
    Only used around those calls, so Python's own messages and progress bars are not hidden for long."""
    if not active:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _close_quietly(pose: Any) -> None:
    try:
        pose.close()
    except Exception:  # noqa: BLE001 - closing a broken graph must not mask the result or the real error
        pass
