"""Peak memory of the extraction stages against the number of videos (issue 13 item 5: flat in the number of
videos, no list of all frames anywhere).

    python benchmarks/memory.py [--copies 2 4 8] [--stage poses|features] [--clips ../shared/data/clips]

A dataset is made of the real clips, each copied ``--copies`` times under other names (so the stages see that many
distinct videos; :func:`engines.make_dataset`), once per count. For each count a **fresh Python process** runs the
stages from an empty cache in that process (``engine.workers=1``) and reports its own peak resident set size
(``ru_maxrss``), so the counts do not share a high-water mark: ``--stage poses`` runs index, keyclips and poses
with MediaPipe (``poses.source=mediapipe``); ``--stage features`` runs index and features with the
``random-3dconv`` video backbone (16 frames at 112 px, chunks of 8 videos). The table gives the peak, its growth over
the smallest count, that growth per added video, and beside it what holding every decoded frame of the dataset
would take (frames × height × width × 3 bytes, full resolution RGB; the stages never do): flat means the growth is
a small fraction of a video's frames, and does not scale with the count.

Without the clips folder (or MediaPipe, for ``--stage poses``) it says so and stops.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from engines import DEFAULT_CLIPS, VIDEO_SUFFIXES, make_dataset


def child(data: Path, run: Path, stage: str) -> None:
    """Run the stages on ``data`` in this process and print the peak RSS (MB) and the frames decoded."""
    from dance.config import load_settings
    from dance.pipeline import run_pipeline
    from dance.pipeline.runner import Context
    from dance.progress import Reporter
    from dance.runs import RunDir

    settings = load_settings(None, [f"data.path={data / 'annotations.csv'}", "poses.source=mediapipe",
                                    "spatial.source=none", "features.backbone=random-3dconv", "engine.workers=1"])
    ctx = Context(settings, RunDir(run), Reporter())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run_pipeline(ctx, only=["index"])
    run_pipeline(ctx, only=["keyclips", "poses"] if stage == "poses" else ["features"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"peak_mb": peak / 1024, "before_mb": before / 1024}))


def full_frames_mb(clips: Path, copies: int) -> float:
    """MB that every decoded frame of the dataset would take as full-resolution RGB (what a list of all frames
    would hold)."""
    import av

    total = 0
    for clip in sorted(clips.iterdir()):
        if clip.suffix.lower() not in VIDEO_SUFFIXES:
            continue
        with av.open(str(clip)) as container:
            stream = container.streams.video[0]
            n = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
            total += n * stream.codec_context.width * stream.codec_context.height * 3
    return total * copies / 2**20


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=Path, default=DEFAULT_CLIPS)
    ap.add_argument("--copies", type=int, nargs="+", default=[2, 4, 8],
                    help="copies of each clip per dataset (at least 2: copies alternate train / test)")
    ap.add_argument("--stage", choices=("poses", "features"), default="poses")
    ap.add_argument("--child", nargs=3, metavar=("DATA", "RUN", "STAGE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), args.child[2])
        return 0
    if min(args.copies) < 2 or len(set(args.copies)) < 2:
        ap.error("--copies needs at least two different counts, each at least 2")
    if not args.clips.is_dir():
        print(f"no clips folder at {args.clips}: nothing to measure")
        return 0
    if args.stage == "poses":
        try:
            import mediapipe  # noqa: F401
        except ImportError:
            print("MediaPipe is not installed (pip install 'dance-xai[pose]'): nothing to measure")
            return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="dance-memory-") as tmp:
        for copies in sorted(args.copies):
            data = Path(tmp) / f"data{copies}"
            n = make_dataset(args.clips, data, copies)
            proc = subprocess.run([sys.executable, __file__, "--child", str(data), str(Path(tmp) / f"run{copies}"),
                                   args.stage], capture_output=True, text=True, env=os.environ)
            if proc.returncode != 0:
                print(proc.stdout[-2000:], proc.stderr[-2000:], sep="\n")
                return 1
            out = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append((n, out["peak_mb"], out["before_mb"], full_frames_mb(args.clips, copies)))
            print(f"  {n} videos: peak {out['peak_mb']:.0f} MB", flush=True)
    n0, p0, *_ = rows[0]
    print(f"\n{args.stage} stage, one process, peak resident memory (load average now {os.getloadavg()[0]:.2f})")
    print(f"{'videos':>7} {'peak MB':>8} {'at start MB':>12} {'growth MB':>10} {'MB per added video':>19} "
          f"{'all frames, RGB MB':>19}")
    for n, peak, before, frames in rows:
        per = f"{(peak - p0) / (n - n0):.2f}" if n > n0 else "-"
        print(f"{n:>7} {peak:>8.0f} {before:>12.0f} {peak - p0:>10.0f} {per:>19} {frames:>19.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
