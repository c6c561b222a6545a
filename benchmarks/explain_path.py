"""MediaPipe poses on the key-clip windows only: the poses stage's per-video work, old path vs new (issue 13 item 4).

    python benchmarks/explain_path.py [--repeats 3] [--clip ../shared/data/clips/clean_and_jerk.mp4]

The clip's key-clip windows are cut as the keyclips stage cuts them (default settings: 10 clips of 16 frames), then
timed, interleaved (old, new, old, new, ...) so that both see the same machine load:

* **old**: :meth:`MediaPipePoseSource.poses` window by window, as the poses stage calls it: the first window decodes
  the video and converts every frame to RGB (cached for the other windows), then one graph per window;
* **new**: :meth:`MediaPipePoseSource.clip_poses` with all the windows: one decode that converts only the frames
  inside the windows, then the same graphs on the same frames;
* **decode old / decode new**: the decoding alone (every frame converted vs only the window frames), since
  MediaPipe's own time is the same in both paths and dominates;
* **whole video**: every frame decoded, then one graph over all of them (:meth:`MediaPipePoseSource.estimate`):
  what ``dance explain`` runs for a pose backbone or pose-motion key clips (with a video backbone and pixel key
  clips it runs **new**), for scale.

``--run RUN`` adds **dance explain end to end**: the command itself (``dance explain CLIP --run RUN``, a fresh
process each time: imports, decoding, key clips, MediaPipe on the key clips with a video backbone, features,
prediction, animations) — issue 13's goal is < 10 s wall for a 10 s clip on an idle 2-core machine.

Each row gives the median wall and CPU seconds (CPU of this process, MediaPipe's and the decoder's threads included)
of ``--repeats`` runs; the script checks that old and new give bit-identical poses and prints the load average
before and after. A missing clip is skipped with a line saying so.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CLIP = ROOT.parent / "shared" / "data" / "clips" / "clean_and_jerk.mp4"


def _timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-whole", action="store_true", help="skip the whole-video row (the slowest)")
    ap.add_argument("--run", type=Path, help="a finished run: also time `dance explain CLIP --run RUN`")
    args = ap.parse_args(argv)
    if not args.clip.is_file():
        print(f"skipped: clip not found: {args.clip}")
        return 0

    from dance.config import KeyclipSettings
    from dance.data.index import VideoRecord
    from dance.data.video import decode_video, read_video
    from dance.motion.clips import keyframe_input
    from dance.motion.mediapipe_source import MediaPipePoseSource

    settings = KeyclipSettings()
    clips = keyframe_input(args.clip, settings, lambda: None).key_clips(settings)
    windows = clips.windows(settings.clip_len)
    wanted = {int(i) for w in windows for i in w}
    record = VideoRecord(video_id=args.clip.stem, path=args.clip, label="", split="test")
    print(f"{args.clip.name}: {len(windows)} key clips of {settings.clip_len} frames, {len(wanted)} distinct "
          f"frames; load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    def old() -> list:
        src.clear_cache()
        return [src.poses(record, w) for w in windows]

    def new() -> list:
        src.clear_cache()
        return src.clip_poses(record, windows)

    def whole() -> object:
        return src.estimate(read_video(args.clip))

    src = MediaPipePoseSource()
    runs: dict[str, Callable[[], object]] = {
        "decode old (every frame converted)": lambda: decode_video(args.clip),
        "decode new (window frames only)": lambda: decode_video(args.clip, keep=lambda _: wanted),
        "old: poses() per window": old,
        "new: clip_poses(windows)": new,
    }
    if not args.no_whole:
        runs["whole video (a pose backbone's explain)"] = whole
    if args.run is not None:
        import resource
        import subprocess
        import tempfile

        def explain() -> object:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            with tempfile.TemporaryDirectory() as tmp:
                done = subprocess.run([sys.executable, "-c", "from dance.cli import main; main()", "explain",
                                       str(args.clip), "--run", str(args.run), "--out", tmp],
                                      capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"dance explain failed: {done.stderr.strip()[-500:]}")
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)

        runs["dance explain end to end (process)"] = explain
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in runs}
    results: dict[str, object] = {}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            wall, cpu, out = _timed(fn)
            if name.startswith("dance explain"):
                cpu = float(out)  # type: ignore[arg-type] - the child process's CPU seconds
            times[name].append((wall, cpu))
            results[name] = out
    same = all(np.array_equal(a.keypoints, b.keypoints) and np.array_equal(a.scores, b.scores)
               for a, b in zip(results["old: poses() per window"], results["new: clip_poses(windows)"]))
    print(f"{'path':38s} {'wall s':>8s} {'CPU s':>8s}   (median of {args.repeats})")
    for name, ts in times.items():
        print(f"{name:38s} {statistics.median(t[0] for t in ts):8.3f} {statistics.median(t[1] for t in ts):8.3f}")
    print(f"old and new poses bit-identical: {same}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
