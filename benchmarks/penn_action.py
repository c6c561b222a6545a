"""Penn Action end to end: real 2D pose labels → motion concepts → DANCE vs its baseline, beside the paper's numbers.

    python benchmarks/penn_action.py --data ../shared/data/penn_action --out penn-run

Exports the ``.mat`` labels to the generic pose format once (``OUT/data``), then runs the pipeline in ``OUT/run``
with the ``pose-encoder`` backbone (a temporal CNN trained on the training split; its linear head is the baseline)
and motion concepts only (Penn Action has no object/scene labels here). Writes ``OUT/summary.json`` and prints a
table. Paper Table 1 (VideoMAE backbone, RGB): baseline 97.8, DANCE 98.1 top-1 — ours uses ground-truth 2D poses
instead of RGB, so the numbers are comparable in kind, not identical in setting.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from dance.config import load_settings
from dance.errors import DanceError
from dance.model.io import load_model
from dance.motion.penn_action import export_generic
from dance.paper import PAPER_TABLE1
from dance.pipeline import run_pipeline
from dance.pipeline.runner import Context
from dance.progress import RichReporter
from dance.runs import RunDir, atomic_write_json, read_json

# No per-dataset settings: the FINCH partition, the concept layer and the motion activation are chosen inside the
# run (summary.json "selection"), as in any `dance run`. benchmarks/pose_datasets.py runs several seeds.
PAPER = {"paper_penn_action_baseline": PAPER_TABLE1["Penn Action"]["baseline"],  # top-1 %, VideoMAE backbone
         "paper_penn_action": PAPER_TABLE1["Penn Action"]["dance"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="Penn Action folder holding labels/*.mat")
    ap.add_argument("--out", type=Path, required=True, help="output folder")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="extra section.key=value")
    ap.add_argument("--limit-per-class", type=int, default=None, help="subset for a quick run")
    args = ap.parse_args(argv)
    start = time.time()
    try:
        data = args.out / "data"
        if not (data / "annotations.csv").is_file():
            print(f"exporting {args.data} to the generic pose format in {data} ...", file=sys.stderr)
            export_generic(args.data, data, limit_per_class=args.limit_per_class)
        settings = load_settings(None, [
            f"data.path={(data / 'annotations.csv').resolve()}", "data.format=pose",
            "poses.source=annotations", "spatial.source=none", "features.backbone=pose-encoder",
            *args.overrides])
        ctx = Context(settings, RunDir(args.out / "run"), RichReporter())
        results = run_pipeline(ctx)
    except DanceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    run = args.out / "run"
    summary = read_json(run / "summary.json")
    motion = read_json(run / "motion" / "concepts.json")
    model = load_model(run / "train" / "model")
    summary.update(PAPER)
    summary["clips"] = motion["clips"]
    summary["total_seconds"] = round(time.time() - start, 1)
    summary["stages"] = {r.name: round(r.seconds, 1) for r in results}
    atomic_write_json(args.out / "summary.json", summary)

    print("\nPenn Action (official split)")
    print(f"{'':28s}{'ours':>10s}{'paper':>10s}")
    base, paper_base = 100 * summary["baseline_test_accuracy"], PAPER["paper_penn_action_baseline"]
    print(f"{'baseline top-1 %':28s}{base:10.1f}{paper_base:10.1f}")
    print(f"{'DANCE top-1 %':28s}{100 * summary['test_accuracy']:10.1f}{PAPER['paper_penn_action']:10.1f}")
    print(f"\ntrain videos {summary['n_train']}, test videos {summary['n_test']}")
    print(f"motion concepts {summary['n_concepts']['motion']} (FINCH partition {motion['partition']} of "
          f"{motion['n_partitions']})")
    c = motion["clips"]
    print(f"clips: {c['total']} total, {c['kept']} kept, rejected {c['rejected'] or 'none'}")
    nz = np.array([int((model.W_[k] != 0).sum()) for k in range(len(model.classes_))])
    print(f"non-zero weights: {model.nonzero_weights()} of {model.W_.size}; per class min {nz.min()} / "
          f"median {int(np.median(nz))} / max {nz.max()}")
    for name, k in zip(model.classes_, nz):
        print(f"  {name:18s}{k:5d}")
    print("seconds per stage: " + ", ".join(f"{k} {v}" for k, v in summary["stages"].items()))
    print(f"summary: {args.out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
