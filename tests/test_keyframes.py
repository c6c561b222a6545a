"""Keyframes from frame differences, baseline removal, clip centres and windows (dance.motion.keyframes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dance.data.video import read_video, write_video
from dance.motion import keyframes
from dance.motion.keyframes import (
    blur,
    choose_centres,
    clip_window,
    difference_signal,
    find_keyframes,
    luma,
    remove_baseline,
)

CUTS = (15, 30, 45)
T, H, W = 60, 64, 64


def shots_video(seed: int = 0, noise: float = 3.0) -> np.ndarray:
    """4 static shots (flat colour, gradient, checkerboard, gradient), hard cuts at CUTS, mild noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    full = np.full((H, W), 1.0)
    bases = [
        np.stack([40 * full, 80 * full, 160 * full], -1),
        np.stack([(xx * 4) % 256, 200 * full, yy * 2], -1),
        np.stack([220 * full, ((xx // 8 + yy // 8) % 2) * 200, 30 * full], -1),
        np.stack([yy * 3, xx * 3, 100 * full], -1),
    ]
    bounds = (0, *CUTS, T)
    frames = np.empty((T, H, W, 3), np.float64)
    for s, base in enumerate(bases):
        frames[bounds[s] : bounds[s + 1]] = base
    frames += rng.normal(0.0, noise, frames.shape)
    return np.clip(np.round(frames), 0, 255).astype(np.uint8)


def test_luma_weights() -> None:
    frames = np.zeros((1, 2, 2, 3), np.uint8)
    frames[0, 0, 0] = (255, 0, 0)
    frames[0, 0, 1] = (0, 255, 0)
    frames[0, 1, 0] = (0, 0, 255)
    frames[0, 1, 1] = (255, 255, 255)
    grey = luma(frames)
    assert grey.shape == (1, 2, 2)
    np.testing.assert_allclose(grey[0], [[0.299 * 255, 0.587 * 255], [0.114 * 255, 255.0]], atol=1e-4)


def test_difference_signal_peaks_at_cuts() -> None:
    signal = difference_signal(shots_video())
    assert signal.shape == (T,)
    assert signal[0] == 0.0
    cut_values = signal[list(CUTS)]
    others = np.delete(signal, list(CUTS))
    assert cut_values.min() > 0.1  # a hard cut changes the mean grey level a lot
    assert others.max() < 0.01  # blurred noise barely registers
    assert sorted(np.argsort(signal)[-3:].tolist()) == list(CUTS)


def test_difference_signal_is_mean_abs_difference_without_blur() -> None:
    frames = np.zeros((3, 4, 4, 3), np.uint8)
    frames[1, :2] = 255  # half the pixels turn white
    signal = difference_signal(frames, blur_sigma=0)
    np.testing.assert_allclose(signal, [0.0, 0.5, 0.5], atol=1e-6)


@pytest.mark.parametrize("sigma", [0.3, 0.6, 1.0, 1.5, 2.7])
@pytest.mark.parametrize("shape", [(3, 40, 33), (2, 5, 7), (1, 1, 1)])
def test_blur_is_scipys_gaussian_with_or_without_opencv(monkeypatch, sigma: float, shape: tuple) -> None:  # noqa: ANN001
    """OpenCV (when installed) and scipy compute the same truncated, reflected kernel, also where it is wider than
    the frame (a sigma whose OpenCV default size would differ from scipy's truncation, e.g. 0.6, included)."""
    from scipy.ndimage import gaussian_filter

    grey = np.random.default_rng(0).random(shape, dtype=np.float32)
    expected = gaussian_filter(grey, sigma=(0, sigma, sigma))
    np.testing.assert_allclose(blur(grey, sigma), expected, atol=1e-6, rtol=0)
    monkeypatch.setattr(keyframes, "_opencv", lambda: None)
    np.testing.assert_array_equal(blur(grey, sigma), expected)


def test_find_keyframes_returns_exactly_the_cuts() -> None:
    keyframes = find_keyframes(difference_signal(shots_video()))
    assert keyframes.dtype == np.int64
    assert keyframes.tolist() == list(CUTS)


def test_static_video_has_no_keyframe_and_centre_is_middle_frame() -> None:
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    frames = np.repeat(frame, 40, axis=0)
    signal = difference_signal(frames)
    assert np.all(signal == 0.0)
    keyframes = find_keyframes(signal)
    assert keyframes.shape == (0,)
    centres = choose_centres(keyframes, n_frames=40, n_clips=10)
    assert centres.tolist() == [20]
    assert choose_centres(np.array([], dtype=np.int64), n_frames=7, n_clips=3).tolist() == [3]


@pytest.mark.parametrize(
    "trend",
    [
        lambda x: 0.5 + 0.3 * x,  # linear ramp
        lambda x: 0.2 + 0.5 * x + 0.4 * x**2,  # quadratic
        lambda x: 1.0 - 0.8 * x**2,  # concave: its own maximum sits in the middle
    ],
)
def test_remove_baseline_removes_polynomial_trend(trend) -> None:
    x = np.linspace(-1.0, 1.0, 61)
    signal = trend(x)
    corrected = remove_baseline(signal)
    assert corrected.shape == signal.shape
    assert np.abs(corrected).max() < 1e-9
    assert find_keyframes(signal).shape == (0,)


def test_peak_on_a_ramp_is_found_and_trend_alone_would_mislead() -> None:
    x = np.linspace(-1.0, 1.0, 61)
    ramp = 0.2 + 0.5 * x + 0.4 * x**2
    signal = ramp.copy()
    signal[20] += 0.3
    corrected = remove_baseline(signal)
    assert corrected[20] == pytest.approx(0.3, abs=0.01)
    assert np.abs(np.delete(corrected, 20)).max() < 0.02
    assert find_keyframes(signal).tolist() == [20]

    concave = 1.0 - 0.8 * x**2
    concave[45] += 0.2
    # without a baseline (degree 0 subtracts the minimum only) the trend's own maximum is a false keyframe
    assert find_keyframes(concave, baseline_degree=0).tolist() == [30, 45]
    assert find_keyframes(concave).tolist() == [45]


def test_remove_baseline_short_signal_subtracts_minimum() -> None:
    np.testing.assert_allclose(remove_baseline(np.array([3.0, 1.0, 2.0])), [2.0, 0.0, 1.0])
    assert remove_baseline(np.array([])).shape == (0,)
    assert find_keyframes(np.array([0.0, 5.0])).shape == (0,)  # fewer than 3 samples


def test_find_keyframes_threshold_and_min_distance() -> None:
    signal = np.zeros(40)
    signal[10], signal[12], signal[30] = 1.0, 0.8, 0.05
    assert find_keyframes(signal, baseline_degree=0).tolist() == [10, 12]  # 0.05 < 0.1 of the range
    assert find_keyframes(signal, baseline_degree=0, threshold=0.01).tolist() == [10, 12, 30]
    assert find_keyframes(signal, baseline_degree=0, min_distance=5).tolist() == [10]  # the higher one wins


def test_choose_centres_thins_by_linspace() -> None:
    keyframes = np.array([3, 10, 20, 30, 40, 50])
    # linspace(0, 5, 3) = [0, 2.5, 5] → rounded (half to even) [0, 2, 5]
    assert choose_centres(keyframes, n_frames=60, n_clips=3).tolist() == [3, 20, 50]
    assert choose_centres(keyframes, n_frames=60, n_clips=1).tolist() == [3]
    # linspace(0, 5, 4) = [0, 1.67, 3.33, 5] → [0, 2, 3, 5]
    assert choose_centres(keyframes, n_frames=60, n_clips=4).tolist() == [3, 20, 30, 50]
    # not more keyframes than clips: kept as they are
    assert choose_centres(keyframes, n_frames=60, n_clips=6).tolist() == keyframes.tolist()
    assert choose_centres(keyframes[:2], n_frames=60, n_clips=10).tolist() == [3, 10]


def test_clip_window_centred_and_shifted_at_both_ends() -> None:
    np.testing.assert_array_equal(clip_window(30, 60, 16), np.arange(22, 38))
    np.testing.assert_array_equal(clip_window(0, 60, 16), np.arange(0, 16))  # shifted right
    np.testing.assert_array_equal(clip_window(3, 60, 16), np.arange(0, 16))
    np.testing.assert_array_equal(clip_window(59, 60, 16), np.arange(44, 60))  # shifted left
    np.testing.assert_array_equal(clip_window(55, 60, 16), np.arange(44, 60))
    np.testing.assert_array_equal(clip_window(10, 16, 16), np.arange(16))  # exactly as long as the video
    for centre in range(60):
        w = clip_window(centre, 60, 16)
        assert len(w) == 16 and w.min() >= 0 and w.max() <= 59
        assert np.all(np.diff(w) == 1)


def test_clip_window_loops_a_short_video() -> None:
    w = clip_window(2, 5, 16)
    assert w.dtype == np.int64
    np.testing.assert_array_equal(w, np.arange(16) % 5)
    np.testing.assert_array_equal(clip_window(0, 1, 4), [0, 0, 0, 0])
    with pytest.raises(ValueError):
        clip_window(0, 0, 4)


def test_keyframes_survive_h264_round_trip(tmp_path: Path) -> None:
    frames = shots_video()
    path = tmp_path / "shots.mp4"
    write_video(path, frames, fps=12)
    decoded = read_video(path)
    assert decoded.shape == frames.shape
    assert find_keyframes(difference_signal(decoded)).tolist() == list(CUTS)
    # resized decoding (as the pipeline does) keeps them too
    small = read_video(path, size=32)
    assert small.shape == (T, 32, 32, 3)
    assert find_keyframes(difference_signal(small)).tolist() == list(CUTS)
    centres = choose_centres(find_keyframes(difference_signal(decoded)), T, n_clips=2)
    assert centres.tolist() == [15, 45]
