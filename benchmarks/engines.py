"""The keyclips and poses stages, or the features stage, in one process vs a pool of worker processes
(``engine.workers``; issue 13 items 3, 5).

    python benchmarks/engines.py [--copies 4] [--repeats 3] [--workers 1 2] [--clips ../shared/data/clips]
                                 [--stage poses|features] [--torch-threads 1] [--ray 2]

``--stage features`` times the features stage instead (``random-3dconv``, 16 frames at 112 px, chunks of
``features.batch_size`` = 8 videos), this process's torch on ``--torch-threads`` threads (each worker uses one; with
1 the vectors are bit-identical across worker counts, which the script checks); it needs no MediaPipe.

A dataset is made of the real clips (each copied ``--copies`` times under other names into a temporary folder,
so the stages see that many distinct videos), and the ``keyclips`` and ``poses`` stages (MediaPipe poses,
``poses.source=mediapipe``) run on it from an empty cache once per worker count and repeat, interleaved
(1, 2, 1, 2, ...) so that every count sees the same machine load. Each row gives the median wall seconds, the
median CPU seconds (this process and its worker processes together), videos per wall second, and the speed-up
over one process; the script checks that every run wrote the same ``keyclips.json``, ``poses.npz`` and skips, and
prints the load average before and after.

``--ray N`` adds a row: the same stages with ``engine.name=ray`` and N actors on a local Ray instance, started once
before the first repeat (its start-up, ~6 s, is printed apart and not in the row; the actor pool's start-up is).
Its CPU column is this process only: the actors run in Ray's worker processes, which are not its children.

The poses stage is also compared with MediaPipe alone (issue 13: >= 0.8x of it per core): the key-clip frames the
stage estimated are decoded and shrunk beforehand, then a loop runs a fresh graph per clip and ``process`` on each
frame, timed, in this process, once per repeat (interleaved). The table adds the poses stage's frames per wall
second (keyclips not included) and that rate per worker divided by the raw loop's. MediaPipe runs threads of its
own, and cores of one machine share caches and memory bandwidth, so the raw loop is also run the way each worker
count uses the machine: in N child processes at once, each pinned to its own core (``os.sched_setaffinity``, set
before MediaPipe starts any thread; its threads inherit it), N being each row's worker count. The last column
divides the stage's frames per second per worker by that loop's frames per second per process: the "per core" of
the issue's goal, measured on cores that are all busy, as a pool's are.

Without the clips folder, or without MediaPipe (``pip install 'dance-xai[pose]'``), it says so and stops.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CLIPS = ROOT.parent / "shared" / "data" / "clips"
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def make_dataset(clips: Path, out: Path, copies: int) -> int:
    """``out/annotations.csv`` listing ``copies`` copies of each clip (labels: the clip's name; copies, not links:
    the index refuses a path that resolves outside the dataset's folder); the video count."""
    videos = sorted(p for p in clips.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    (out / "videos").mkdir(parents=True)
    rows = ["path,label,split"]
    for k in range(copies):
        for clip in videos:
            name = f"c{k}_{clip.stem}{clip.suffix}"
            shutil.copyfile(clip, out / "videos" / name)
            rows.append(f"videos/{name},{clip.stem},{'train' if k % 2 == 0 else 'test'}")
    (out / "annotations.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return len(rows) - 1


def cpu_seconds() -> float:
    """CPU seconds of this process and of its finished child processes (the pool's workers, once shut down)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_once(data: Path, run: Path, workers: int, stage: str = "poses", engine: str = "local"
             ) -> tuple[float, float, dict, float]:
    """(wall s, CPU s, artifacts, wall s of the poses stage alone) of the stages on an empty cache."""
    from dance.config import load_settings
    from dance.pipeline import run_pipeline
    from dance.pipeline.runner import Context
    from dance.progress import Reporter
    from dance.runs import RunDir

    settings = load_settings(None, [f"data.path={data / 'annotations.csv'}", "poses.source=mediapipe",
                                    "spatial.source=none", "features.backbone=random-3dconv",
                                    f"engine.workers={workers}", f"engine.name={engine}"])
    ctx = Context(settings, RunDir(run), Reporter())
    run_pipeline(ctx, only=["index"])
    t0, c0 = time.perf_counter(), cpu_seconds()
    if stage == "poses":
        run_pipeline(ctx, only=["keyclips"])
        t1 = time.perf_counter()
        run_pipeline(ctx, only=["poses"])
    else:
        t1 = t0
        run_pipeline(ctx, only=["features"])
    end = time.perf_counter()
    wall, cpu = end - t0, cpu_seconds() - c0
    name = "poses" if stage == "poses" else "features"
    with np.load(run / name / f"{name}.npz") as z:
        arrays = {k: z[k] for k in z.files}
    keyclips = (run / "keyclips" / "keyclips.json").read_text() if stage == "poses" else ""
    out = {"arrays": arrays, "keyclips": keyclips, "skipped": (run / name / "skipped.json").read_text()}
    return wall, cpu, out, end - t1


def raw_mediapipe(data: Path, run: Path, ready: Callable[[], None] | None = None) -> tuple[int, float, float]:
    """MediaPipe alone on the frames the poses stage estimated in ``run``: (frames, wall s, CPU s).

    The key-clip frames of every video are decoded and shrunk first, as the stage's source does (not timed); then
    ``ready()`` is called when given (it returns when the loop may start), and only the loop is timed: per key clip
    a fresh graph (as the stage has, its start-up log silenced as the stage does) and ``process`` on each frame,
    nothing kept. The floor a poses stage pays per process."""
    from dance.config import load_settings
    from dance.motion.clips import KeyClips
    from dance.motion.mediapipe_source import _native_stderr_silenced
    from dance.motion.poses import pose_source_for
    from dance.pipeline.artifacts import run_index

    settings = load_settings(None, [f"data.path={data / 'annotations.csv'}", "poses.source=mediapipe"])
    source = pose_source_for(settings.poses, settings.data.path)
    kc = json.loads((run / "keyclips" / "keyclips.json").read_text(encoding="utf-8"))
    clip_len = int(kc["clip_len"])
    work = []
    for rec in run_index(run / "index").records:
        info = kc["videos"].get(rec.video_id)
        if info is None:
            continue
        windows = KeyClips(info["n_frames"], np.asarray(info["keyframes"], np.int64),
                           np.asarray(info["centres"], np.int64)).windows(clip_len)
        frames, index, count, _ = source._decoded(Path(rec.path), np.unique(np.concatenate(windows)))
        for w in windows:
            w = w[(w >= 0) & (w < count)]
            rows = w if index is None else np.searchsorted(index, w)
            work.append(np.ascontiguousarray(frames[rows]))
    n = sum(len(c) for c in work)
    if ready is not None:
        ready()
    t0, c0 = time.perf_counter(), time.process_time()
    for clip in work:
        with _native_stderr_silenced():
            pose = source._new_pose()
        for t, frame in enumerate(clip):
            with _native_stderr_silenced(t == 0):
                pose.process(frame)
        pose.close()
    return n, time.perf_counter() - t0, time.process_time() - c0


def raw_mediapipe_pinned(data: Path, run: Path, n: int) -> float:
    """:func:`raw_mediapipe` in ``n`` child processes at once, child ``i`` pinned to core ``i`` (modulo the cores
    this process may use; the threads of a child, MediaPipe's included, inherit its affinity): the median wall
    seconds of one child. Without CPU affinity (not Linux) the children are not pinned."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []

    def pin(core: int):
        return (lambda: os.sched_setaffinity(0, {core})) if cores else None

    procs = [subprocess.Popen([sys.executable, __file__, "--raw-child", str(data), str(run)], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              preexec_fn=pin(cores[i % len(cores)] if cores else 0))
             for i in range(n)]
    try:
        for proc in procs:  # every child has decoded its frames: start their timed loops together
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError("the raw MediaPipe child failed before its loop")
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        walls = []
        for proc in procs:
            out, _ = proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"the raw MediaPipe child failed (exit {proc.returncode})")
            walls.append(float(json.loads(out.strip().splitlines()[-1])[1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return statistics.median(walls)


def same(a: dict, b: dict) -> bool:
    return (a["keyclips"] == b["keyclips"] and a["skipped"] == b["skipped"] and a["arrays"].keys() == b["arrays"].keys()
            and all(np.array_equal(a["arrays"][k], b["arrays"][k]) for k in a["arrays"]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=Path, default=DEFAULT_CLIPS)
    ap.add_argument("--copies", type=int, default=4, help="copies of each clip (distinct videos to the stages)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--stage", choices=("poses", "features"), default="poses")
    ap.add_argument("--torch-threads", type=int, default=1, help="this process's torch threads (features)")
    ap.add_argument("--ray", type=int, default=0, metavar="N", help="also run on a local Ray with N actors")
    ap.add_argument("--raw-child", nargs=2, metavar=("DATA", "RUN"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.raw_child:
        def ready() -> None:
            print("ready", flush=True)
            sys.stdin.readline()

        print(json.dumps(raw_mediapipe(Path(args.raw_child[0]), Path(args.raw_child[1]), ready)))
        return 0
    if not args.clips.is_dir():
        print(f"no clips folder at {args.clips}: nothing to measure")
        return 0
    if args.stage == "features":
        import torch

        torch.set_num_threads(args.torch_threads)
    else:
        try:
            import mediapipe  # noqa: F401
        except ImportError:
            print("MediaPipe is not installed (pip install 'dance-xai[pose]'): nothing to measure")
            return 0
    tmp = Path(tempfile.mkdtemp(prefix="dance-engines-"))
    try:
        n = make_dataset(args.clips, tmp / "data", args.copies)
        print(f"{args.stage} stage, {n} videos ({args.copies} copies of each clip in {args.clips}); load average "
              f"before: {os.getloadavg()[0]:.2f}", flush=True)
        rows = [("local", w, f"{w} worker{'s' * (w > 1)}") for w in args.workers]
        if args.ray:
            try:
                import logging

                import ray
            except ImportError:
                print("Ray is not installed (pip install 'dance-xai[ray]'): no Ray row")
            else:
                t0 = time.perf_counter()
                ray.init(num_cpus=max(args.ray, os.cpu_count() or 1), include_dashboard=False,
                         logging_level=logging.WARNING, log_to_driver=False)
                print(f"  ray.init: {time.perf_counter() - t0:.1f} s (not in the Ray row)", flush=True)
                rows.append(("ray", args.ray, f"Ray, {args.ray} actor{'s' * (args.ray > 1)}"))
        walls: dict[str, list[float]] = {label: [] for *_, label in rows}
        cpus: dict[str, list[float]] = {label: [] for *_, label in rows}
        pose_walls: dict[str, list[float]] = {label: [] for *_, label in rows}
        raw_walls: list[float] = []
        pinned_walls: dict[int, list[float]] = {w: [] for engine, w, _ in rows if engine == "local"}
        reference, identical = None, True
        for r in range(args.repeats):
            for engine, w, label in rows:
                wall, cpu, out, pose_wall = run_once(tmp / "data", tmp / f"run_{engine}{w}_{r}", w, args.stage,
                                                     engine)
                walls[label].append(wall)
                cpus[label].append(cpu)
                pose_walls[label].append(pose_wall)
                reference = reference or out
                identical &= same(reference, out)
                print(f"  repeat {r + 1}, {label}: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
            if args.stage == "poses":  # interleaved with the rows, so it sees the same load
                frames, raw_wall, raw_cpu = raw_mediapipe(tmp / "data", tmp / f"run_{rows[0][0]}{rows[0][1]}_{r}")
                raw_walls.append(raw_wall)
                print(f"  repeat {r + 1}, raw MediaPipe on the same {frames} key-clip frames, one process: "
                      f"{raw_wall:.1f} s wall, {raw_cpu:.1f} s CPU", flush=True)
                for w, walls_w in pinned_walls.items():
                    walls_w.append(raw_mediapipe_pinned(tmp / "data", tmp / f"run_{rows[0][0]}{rows[0][1]}_{r}", w))
                    print(f"  repeat {r + 1}, raw MediaPipe in {w} pinned process{'es' * (w > 1)} at once: "
                          f"{walls_w[-1]:.1f} s wall (median per process)", flush=True)
        first = rows[0][2]
        base = statistics.median(walls[first])
        raw = frames / statistics.median(raw_walls) if raw_walls else None
        pinned = {w: frames / statistics.median(v) for w, v in pinned_walls.items() if v}
        if raw:
            print(f"\nraw MediaPipe (medians): {raw:.1f} frames / s in this process; per pinned process, "
                  + ", ".join(f"{w} at once: {fps:.1f}" for w, fps in pinned.items()))
        extra = (" poses stage frames / s | per worker ÷ raw MediaPipe (this process) | per worker ÷ raw MediaPipe "
                 "per pinned process, as many at once |") if raw else ""
        print(f"\n| engine | wall s (median) | CPU s (median) | videos / s | speed-up vs {first} |{extra}")
        print("| --- | --- | --- | --- | --- |" + (" --- | --- | --- |" if raw else ""))
        for _engine, w, label in rows:
            wall = statistics.median(walls[label])
            cols = ""
            if raw:
                fps = frames / statistics.median(pose_walls[label])
                per_core = f"{fps / w / pinned[w]:.2f}×" if w in pinned else "–"
                cols = f" {fps:.1f} | {fps / w / raw:.2f}× | {per_core} |"
            print(f"| {label} | {wall:.1f} | {statistics.median(cpus[label]):.1f} | {n / wall:.2f} | "
                  f"{base / wall:.2f}× |{cols}")
        print(f"\nidentical artifacts across engines and worker counts: {identical}; load average after: "
              f"{os.getloadavg()[0]:.2f}")
        return 0 if identical else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
