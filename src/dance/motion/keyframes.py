"""Keyframes from pixel differences and key-clip windows around them (paper §3.2.1, "Key clip selection").

The signal is the mean absolute difference between consecutive blurred grey frames. A slowly varying baseline
(an iteratively refitted polynomial that stays below the signal) is removed, and keyframes are the peaks of what
is left (``scipy.signal.find_peaks`` with a relative height threshold and a minimum distance). This follows the
idea of the keyframe detector the authors cite (blur, frame difference, baseline-corrected peak picking); the
code here is our own.
"""

from __future__ import annotations

import functools
from pathlib import Path
from types import ModuleType

import numpy as np

from dance.data.video import is_video


def luma(frames: np.ndarray) -> np.ndarray:
    """uint8 RGB (T, H, W, 3) or grey (T, H, W) → (T, H, W) float32 luminance in grey levels [0, 255]."""
    f = frames.astype(np.float32)
    if f.ndim == 3:
        return f
    return f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114


#: Frames blurred at a time by :func:`difference_signal`: results do not depend on it (every frame is blurred on
#: its own); 16 keeps the float32 working set in the CPU caches at keyframe sizes (1.7x faster than 64 at 128 px).
SIGNAL_CHUNK = 16


@functools.cache
def _opencv() -> ModuleType | None:
    """OpenCV when importable (it comes with the ``pose`` extra), else None."""
    try:
        import cv2
    except ImportError:  # also a broken install (missing system libraries): scipy blurs instead
        return None
    return cv2


def blur(grey: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of each float32 frame of ``grey`` (T, H, W): sigma in pixels, kernel truncated at 4 sigma,
    borders reflected (``d c b a | a b c d``), i.e. ``scipy.ndimage.gaussian_filter(grey, (0, sigma, sigma))``.

    OpenCV's ``GaussianBlur`` computes the same kernel about 4x faster (``benchmarks/video_path.py``); it is used
    when installed and scipy otherwise; the two agree to float32 rounding (``tests/test_keyframes.py``)."""
    cv2 = _opencv()
    if cv2 is None:
        from scipy.ndimage import gaussian_filter

        return gaussian_filter(grey, sigma=(0, sigma, sigma))
    radius = int(4.0 * sigma + 0.5)  # scipy's truncate=4.0; OpenCV would derive another size from sigma alone
    out = np.empty_like(grey)
    for t in range(len(grey)):
        cv2.GaussianBlur(grey[t], (2 * radius + 1, 2 * radius + 1), sigma, dst=out[t], sigmaY=sigma,
                         borderType=cv2.BORDER_REFLECT)
    return out


def difference_signal(frames: np.ndarray, blur_sigma: float = 1.5) -> np.ndarray:
    """Per-frame motion signal: s[t] = mean |blur(g[t]) - blur(g[t-1])|, s[0] = 0. Shape (T,).

    ``frames``: uint8 RGB (T, H, W, 3) or grey (T, H, W), ``g`` their luminance in [0, 1]. Frames are converted
    and blurred :data:`SIGNAL_CHUNK` at a time, so the float copies never hold the whole video."""
    signal = np.zeros(len(frames), dtype=np.float64)
    prev: np.ndarray | None = None
    for start in range(0, len(frames), SIGNAL_CHUNK):
        grey = luma(frames[start:start + SIGNAL_CHUNK])
        if blur_sigma > 0:
            grey = blur(grey, blur_sigma)
        if prev is not None:
            signal[start] = np.abs(grey[0] - prev).mean()
        if len(grey) > 1:
            step = np.subtract(grey[1:], grey[:-1])
            np.abs(step, out=step)
            signal[start + 1:start + len(grey)] = step.reshape(len(step), -1).mean(axis=1)
        prev = grey[-1]
    return signal / 255.0  # blur and differences are linear: scale grey levels to [0, 1] once, at the end


def pose_motion_signal(keypoints: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Keyframe signal for pose-only data (no pixels): mean joint displacement between consecutive frames.

    A substitute for pixel differences when a dataset has poses but no frames: s[t] = mean over joints seen in
    both frames of |p[t] - p[t-1]|, divided by the sequence's body extent; s[0] = 0. Shape (T,).
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    seen = np.asarray(scores) > 0
    signal = np.zeros(len(kp), dtype=np.float64)
    if len(kp) < 2:
        return signal
    pts = kp[seen] if seen.any() else kp.reshape(-1, 2)
    extent = max(float(np.ptp(pts[:, 0])), float(np.ptp(pts[:, 1])), 1e-6)
    step = np.linalg.norm(np.diff(kp, axis=0), axis=2)
    both = seen[1:] & seen[:-1]
    counts = both.sum(axis=1)
    signal[1:] = np.where(counts > 0, (step * both).sum(axis=1) / np.maximum(counts, 1), 0.0) / extent
    return signal


def remove_baseline(signal: np.ndarray, degree: int = 3, iterations: int = 50, tol: float = 1e-4) -> np.ndarray:
    """Subtract an iterative polynomial baseline (refit to min(signal, fit) until it settles)."""
    y = np.asarray(signal, dtype=np.float64)
    n = len(y)
    if n <= degree + 1 or degree == 0:
        return y - (y.min() if n else 0.0)
    x = np.linspace(-1.0, 1.0, n)
    base = y.copy()
    fit = y
    for _ in range(iterations):
        coef = np.polynomial.polynomial.polyfit(x, base, degree)
        fit = np.polynomial.polynomial.polyval(x, coef)
        new = np.minimum(base, fit)
        if np.linalg.norm(new - base) <= tol * max(np.linalg.norm(base), 1e-12):
            base = new
            break
        base = new
    return y - fit


def find_keyframes(
    signal: np.ndarray, threshold: float = 0.1, min_distance: int = 2, baseline_degree: int = 3
) -> np.ndarray:
    """Indices of keyframes: peaks of the baseline-corrected signal above ``threshold`` × its range."""
    corrected = remove_baseline(signal, baseline_degree)
    if len(corrected) < 3:
        return np.zeros(0, dtype=np.int64)
    lo, hi = float(corrected.min()), float(corrected.max())
    if hi - lo <= 1e-12:
        return np.zeros(0, dtype=np.int64)
    from scipy.signal import find_peaks  # here, not at the top: 0.6 s a pose worker would pay for nothing

    peaks, _ = find_peaks(corrected, height=lo + threshold * (hi - lo), distance=max(1, min_distance))
    return peaks.astype(np.int64)


def choose_centres(keyframes: np.ndarray, n_frames: int, n_clips: int) -> np.ndarray:
    """At most ``n_clips`` clip centres: the keyframes, thinned by linspace when there are more.

    A video with no keyframe (a static video) gets its middle frame as the single centre.
    """
    k = np.asarray(keyframes, dtype=np.int64)
    if len(k) == 0:
        return np.array([n_frames // 2], dtype=np.int64)
    if len(k) > n_clips:
        k = k[np.round(np.linspace(0, len(k) - 1, n_clips)).astype(np.int64)]
    return k


def clip_window(centre: int, n_frames: int, clip_len: int) -> np.ndarray:
    """Frame indices of a clip of ``clip_len`` frames centred on ``centre``.

    The window is shifted to fit inside the video; a video shorter than the clip is looped.
    """
    if n_frames <= 0:
        raise ValueError("a clip needs a video with at least one frame")
    if n_frames < clip_len:
        return np.arange(clip_len, dtype=np.int64) % n_frames
    start = int(centre) - clip_len // 2
    start = min(max(start, 0), n_frames - clip_len)
    return np.arange(start, start + clip_len, dtype=np.int64)


def uses_pixels(signal: str, path: Path | str) -> bool:
    """Whether keyframes of the video at ``path`` come from pixel differences under ``keyclips.signal``:
    ``pixels`` / ``poses`` say so; ``auto`` takes pixels for a video file or a folder of frames, poses otherwise."""
    if signal != "auto":
        return signal == "pixels"
    return is_video(path)
