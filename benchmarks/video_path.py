"""Keyframes vs decode-only speed: the keyclips stage's per-video work, old path vs new path (issue 13 item 1).

    python benchmarks/video_path.py [--repeats 3] [--clips ../shared/data/clips] [--size 128]

For each real clip in ``--clips`` (skipped, with a line saying so, when the folder is absent) and one generated
synthetic H.264 video (340x256, 300 frames), three things are timed, interleaved (decode, old, new, decode, old,
new, ...) so that all three see the same machine load:

* **decode**: PyAV decoding every frame, no conversion (the floor any keyframe path pays);
* **old**: the keyframe path before issue 13: every frame converted to full-resolution RGB, resized with PIL one
  frame at a time, luma computed in numpy, then the keyframe signal and peaks (kept here only, as a reference);
* **new**: what the keyclips stage runs now (:func:`dance.motion.clips.keyframe_input` + ``key_clips``): the
  decoder scales to ``size`` px and outputs grey, then the same signal and peaks;
* **read**: the new path's decoding alone (``read_video(size=size, grey=True)``), to show how much of the new
  path is decoding and how much the keyframe signal (a Gaussian blur of every frame, then differences and peaks).

A second table times the features stage's input, ``read_clip(path, 16, 112)`` (the sampled frames converted by
the decoder), against the old way (every frame to full-size RGB, resized by PIL, then sampled).

It prints frames per second (wall and CPU seconds side by side: the CPU time of this process, decoder threads
included), the medians of ``--repeats`` runs, the ratios new/decode and new/old, whether the old and new paths
pick the same clip centres, and the load average before and after. On a busy machine the wall times grow with the
load; the CPU times and the ratios much less. The goal of the issue is keyframes >= 0.7x decode-only fps.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CLIPS = ROOT.parent / "shared" / "data" / "clips"
GOAL = 0.7


def decode_only(path: Path) -> int:
    """Decode every frame with PyAV (threads as the package decodes), convert nothing; the frame count."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


def old_read_video(path: Path, size: int) -> np.ndarray:
    """The reference: ``read_video(path, size=size)`` as it was before issue 13 (full-resolution RGB per frame,
    a fresh swscale context per frame inside ``to_ndarray``, then a PIL bilinear resize per frame)."""
    import av
    from PIL import Image

    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            img = frame.to_ndarray(format="rgb24")
            if img.shape[:2] != (size, size):
                img = np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))
            frames.append(img)
    return np.stack(frames)


def old_keyframes(path: Path, settings) -> np.ndarray:  # noqa: ANN001 - KeyclipSettings
    from dance.motion.clips import KeyframeInput

    return KeyframeInput(frames=old_read_video(path, settings.size)).key_clips(settings).centres


def new_keyframes(path: Path, settings) -> np.ndarray:  # noqa: ANN001 - KeyclipSettings
    from dance.motion.clips import keyframe_input

    return keyframe_input(path, settings, lambda: None).key_clips(settings).centres  # type: ignore[arg-type]


def old_read_clip(path: Path, n_frames: int, size: int) -> np.ndarray:
    """The reference: ``read_clip`` before issue 13 (every frame decoded, converted and resized, then sampled)."""
    from dance.data.video import sample_frames

    return sample_frames(old_read_video(path, size), n_frames)


def new_read(path: Path, size: int) -> int:
    from dance.data.video import read_video

    return len(read_video(path, size=size, grey=True))


def timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    """(wall s, CPU s of this process, result) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def synthetic_video(folder: Path, n_frames: int = 300, width: int = 340, height: int = 256) -> Path:
    """A textured background with a moving, pulsing block and two cuts, encoded like the package encodes."""
    from dance.data.video import write_video

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    frames = np.empty((n_frames, height, width, 3), np.uint8)
    for t in range(n_frames):
        shot = t * 3 // n_frames
        base = np.stack([(xx * (2 + shot)) % 256, (yy * (3 - shot)) % 256, np.full_like(xx, 60 + 60 * shot)], -1)
        x0 = int((width - 60) * (0.5 + 0.45 * np.sin(t / 9.0)))
        y0 = int((height - 60) * (0.5 + 0.4 * np.cos(t / 13.0)))
        img = base.astype(np.float64)
        img[y0:y0 + 60, x0:x0 + 60] = 255.0 * (0.5 + 0.5 * np.sin(t / 4.0))
        img += rng.normal(0.0, 4.0, img.shape)
        frames[t] = np.clip(img, 0, 255).astype(np.uint8)
    path = folder / "synthetic_340x256_300f.mp4"
    write_video(path, frames, fps=30)
    return path


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each path per video (median; >= 3)")
    parser.add_argument("--clips", type=Path, default=DEFAULT_CLIPS, help="folder of real clips")
    parser.add_argument("--size", type=int, default=128, help="keyclips.size")
    args = parser.parse_args(argv)
    from dance.config import KeyclipSettings
    from dance.data.video import VIDEO_EXTENSIONS

    settings = KeyclipSettings(size=args.size)
    videos: list[Path] = []
    if args.clips.is_dir():
        videos = sorted(p for p in args.clips.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
    if not videos:
        print(f"real clips: none found in {args.clips} — skipped; only the synthetic video is measured")
    tmp = tempfile.TemporaryDirectory()
    videos.append(synthetic_video(Path(tmp.name)))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{cores} cores; load average before: {load()} — a busy machine inflates wall times (CPU times and "
          f"ratios much less); medians of {args.repeats} interleaved runs; keyclips.size={args.size}")
    paths = {"decode": decode_only, "old": lambda p: old_keyframes(p, settings),
             "new": lambda p: new_keyframes(p, settings), "read": lambda p: new_read(p, settings.size)}
    head = (f"{'video':<28} {'frames':>6} | {'fps wall: decode':>16} {'old':>5} {'new':>5} {'read':>5} | "
            f"{'fps CPU: decode':>15} {'old':>5} {'new':>5} {'read':>5} | {'new/decode wall':>15} {'CPU':>5} | "
            f"{'new/old wall':>12} {'CPU':>5} | centres old vs new")
    print("keyframes (the keyclips stage's per-video work):")
    print(head)
    print("-" * len(head))
    totals = {k: [0.0, 0.0] for k in paths}
    n_total = 0
    per_video: list[tuple[float, float]] = []  # new/decode fps, wall and CPU, of each video
    for path in videos:
        n = decode_only(path)  # warm the file cache
        med, results = measure(paths, path, args.repeats)
        per_video.append((med["decode"][0] / med["new"][0], med["decode"][1] / med["new"][1]))
        for k in paths:
            totals[k][0] += med[k][0]
            totals[k][1] += med[k][1]
        n_total += n
        same = np.array_equal(np.asarray(results["old"]), np.asarray(results["new"]))
        print(row(path.name, n, med, "same" if same else f"differ: old {list(results['old'])} "
                                                           f"new {list(results['new'])}"))
    print("-" * len(head))
    print(row("all videos", n_total, {k: (w, c) for k, (w, c) in totals.items()}, ""))
    ratio_wall = totals["decode"][0] / totals["new"][0]
    ratio_cpu = totals["decode"][1] / totals["new"][1]
    read_cpu = totals["decode"][1] / totals["read"][1]
    print(f"goal keyframes >= {GOAL}x decode-only fps: {'met' if ratio_wall >= GOAL else 'not met'} in wall time "
          f"({ratio_wall:.2f}x), {'met' if ratio_cpu >= GOAL else 'not met'} in CPU time ({ratio_cpu:.2f}x); "
          f"new path {totals['old'][1] / totals['new'][1]:.1f}x faster than the old one in CPU time; decoding "
          f"alone (read) runs at {read_cpu:.2f}x decode-only fps, the keyframe signal takes "
          f"{100 * (totals['new'][1] - totals['read'][1]) / totals['new'][1]:.0f} % of the new path's CPU time")
    print(f"(the totals weigh each video by its time, so large videos count most; the median of the per-video "
          f"ratios new/decode is {statistics.median(w for w, _ in per_video):.2f}x wall, "
          f"{statistics.median(c for _, c in per_video):.2f}x CPU)")

    from dance.data.video import read_clip

    clips = {"old": lambda p: old_read_clip(p, 16, 112), "new": lambda p: read_clip(p, 16, 112)}
    print("\nfeatures input, read_clip(path, 16 frames, 112 px):")
    head2 = f"{'video':<28} {'frames':>6} | {'videos/s wall: old':>18} {'new':>6} | {'CPU: old':>8} {'new':>6} | same"
    print(head2)
    print("-" * len(head2))
    for path in videos:
        med, results = measure(clips, path, args.repeats)
        diff = int(np.abs(np.asarray(results["old"], np.int64) - np.asarray(results["new"], np.int64)).max())
        mean = float(np.abs(np.asarray(results["old"], np.int64) - np.asarray(results["new"], np.int64)).mean())
        print(f"{path.name[:28]:<28} {decode_only(path):>6} | {1 / med['old'][0]:>18.1f} {1 / med['new'][0]:>6.1f} | "
              f"{1 / med['old'][1]:>8.1f} {1 / med['new'][1]:>6.1f} | "
              + ("yes" if diff == 0 else f"no: the scalers differ, max |diff| {diff}, mean {mean:.2f} grey levels"))
    print(f"load average after: {load()}")
    tmp.cleanup()
    return 0


def measure(paths: dict[str, Callable[[Path], object]], path: Path, repeats: int
            ) -> tuple[dict[str, tuple[float, float]], dict[str, object]]:
    """Median (wall, CPU) seconds of each of ``paths`` on ``path``, run interleaved ``repeats`` times, and the
    last result of each."""
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in paths}
    results: dict[str, object] = {}
    for _ in range(max(1, repeats)):
        for name, fn in paths.items():
            wall, cpu, out = timed(lambda fn=fn: fn(path))
            runs[name].append((wall, cpu))
            results[name] = out
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in runs.items()}
    return med, results


def row(name: str, n: int, med: dict[str, tuple[float, float]], note: str) -> str:
    fps = {k: (n / max(w, 1e-9), n / max(c, 1e-9)) for k, (w, c) in med.items()}
    return (f"{name[:28]:<28} {n:>6} | {fps['decode'][0]:>16.0f} {fps['old'][0]:>5.0f} {fps['new'][0]:>5.0f} "
            f"{fps['read'][0]:>5.0f} | {fps['decode'][1]:>15.0f} {fps['old'][1]:>5.0f} {fps['new'][1]:>5.0f} "
            f"{fps['read'][1]:>5.0f} | {fps['new'][0] / fps['decode'][0]:>15.2f} "
            f"{fps['new'][1] / fps['decode'][1]:>5.2f} | "
            f"{fps['new'][0] / fps['old'][0]:>12.2f} {fps['new'][1] / fps['old'][1]:>5.2f} | {note}")


if __name__ == "__main__":
    sys.exit(main())
