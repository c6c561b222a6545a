"""DANCE vs its baseline on pose datasets, with the README's generic command and nothing else, over several seeds.

    python benchmarks/pose_datasets.py --out pose-bench \\
        --penn ../shared/data/penn_action --dataset msr_action3d=../shared/data/msr_action3d --synthetic 600

Each dataset is run exactly as the README's generic pose-dataset command runs it (``data.format=pose``,
``spatial.source=none``, ``features.backbone=pose-encoder``; every other setting at its default, so the FINCH
partition, the concept layer and the motion activation are chosen inside the run from training and validation
data), once per seed; a seed sets ``data.seed`` (the drawn validation split), ``features.seed`` (the pose
encoder), ``motion.seed`` and ``train.seed``. Prints one table — baseline (the pose encoder with its own head),
DANCE, their gap, the same gap on the validation split (where the run made its choices), concepts, non-zero
weights, minutes, and the choices the run made — with the mean and standard deviation over seeds, and writes
``OUT/pose_datasets.json``.

Datasets: ``--dataset NAME=FOLDER`` for any folder in the generic pose format (``annotations.csv``,
``skeleton.json``, ``poses/``); ``--penn FOLDER`` exports Penn Action's ``labels/*.mat`` first (official split);
``--synthetic N`` renders ``dance synth`` with N videos and keeps the classes its motion decides (the others are
decided by objects or scenes, which poses cannot see).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

from dance.config import load_settings
from dance.data.synthetic.generator import generate
from dance.errors import DanceError
from dance.motion.penn_action import export_generic
from dance.pipeline import run_pipeline
from dance.pipeline.runner import Context
from dance.progress import RichReporter
from dance.runs import RunDir, atomic_write_json, read_json

GENERIC = ["data.format=pose", "spatial.source=none", "features.backbone=pose-encoder"]


def synthetic_poses(out: Path, n_videos: int, seed: int = 0) -> Path:
    """The synthetic dataset's ground-truth poses, restricted to the classes decided by motion."""
    data = out / "synthetic_videos"
    if not (data / "causes.json").is_file():
        generate(data, n_videos=n_videos, seed=seed)
    causes = json.loads((data / "causes.json").read_text(encoding="utf-8"))["classes"]
    motion = {c for c, v in causes.items() if v["decisive"] == "motion"}
    dst = out / "synthetic_poses"
    if not (dst / "annotations.csv").is_file():
        dst.mkdir(parents=True, exist_ok=True)
        shutil.copytree(data / "poses_gt" / "poses", dst / "poses", dirs_exist_ok=True)
        shutil.copy(data / "poses_gt" / "skeleton.json", dst / "skeleton.json")
        with open(data / "poses_gt" / "annotations.csv", newline="", encoding="utf-8") as f:
            rows = [r for r in csv.DictReader(f) if r["label"] in motion]
        with open(dst / "annotations.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return dst


def run_one(data: Path, run: Path, seed: int, extra: list[str]) -> dict:
    overrides = [f"data.path={(data / 'annotations.csv').resolve()}", *GENERIC,
                 *(f"{s}.seed={seed}" for s in ("data", "features", "motion", "train")), *extra]
    start = time.time()
    run_pipeline(Context(load_settings(None, overrides), RunDir(run), RichReporter()))
    summary = read_json(run / "summary.json")
    sel = summary.get("selection", {})
    layer = next((c for c in sel.get("concept_layer", {}).get("candidates", []) if c.get("chosen")), {})
    return {"seed": seed, "baseline": summary["baseline_test_accuracy"], "dance": summary["test_accuracy"],
            "gap": summary["test_accuracy"] - summary["baseline_test_accuracy"],
            "val_gap": (summary["validation_accuracy"] - summary["baseline_validation_accuracy"]
                        if "validation_accuracy" in summary else None),  # a run evaluated before it was recorded
            "concepts": summary["n_concepts"]["motion"], "weights": summary["nonzero_weights"],
            "minutes": (time.time() - start) / 60, "n_train": summary["n_train"], "n_test": summary["n_test"],
            "partition": sel.get("motion_partition", {}).get("partition"),
            "concept_layer": "linear" if layer.get("concept_hidden") is None else f"mlp{layer['concept_hidden']}",
            "activation": layer.get("binary_activation")}


def _ms(values: list[float], scale: float = 100.0) -> str:
    v = [scale * x for x in values]
    return f"{statistics.mean(v):.1f} ± {statistics.stdev(v):.1f}" if len(v) > 1 else f"{v[0]:.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--dataset", action="append", default=[], metavar="NAME=FOLDER", help="a generic pose dataset")
    ap.add_argument("--penn", type=Path, help="Penn Action folder holding labels/*.mat")
    ap.add_argument("--synthetic", type=int, default=0, metavar="N", help="synthetic videos to render (0: none)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    help="extra section.key=value for every run (the README numbers use none)")
    args = ap.parse_args(argv)
    datasets: dict[str, Path] = {}
    try:
        if args.penn:
            penn = args.out / "penn_action_data"
            if not (penn / "annotations.csv").is_file():
                export_generic(args.penn, penn)
            datasets["penn_action"] = penn
        for item in args.dataset:
            name, _, folder = item.partition("=")
            if not folder:
                ap.error(f"--dataset {item}: expected NAME=FOLDER")
            datasets[name] = Path(folder)
        if args.synthetic:
            datasets["synthetic_motion"] = synthetic_poses(args.out, args.synthetic)
        if not datasets:
            ap.error("no dataset: give --penn, --dataset NAME=FOLDER or --synthetic N")
        results: dict[str, list[dict]] = {}
        for name, folder in datasets.items():
            for seed in args.seeds:
                row = run_one(folder, args.out / "runs" / f"{name}_seed{seed}", seed, args.overrides)
                results.setdefault(name, []).append(row)
                atomic_write_json(args.out / "pose_datasets.json", {"overrides": args.overrides, "results": results})
    except DanceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"\n{'dataset':18s}{'train/test':>11s}{'baseline %':>14s}{'DANCE %':>14s}{'gap (points)':>15s}"
          f"{'val gap':>13s}{'concepts':>10s}{'weights':>9s}{'minutes':>9s}  choices (per seed)")
    for name, rows in results.items():
        choices = "; ".join(f"p{r['partition']} {r['concept_layer']} {r['activation']}" for r in rows)
        print(f"{name:18s}{rows[0]['n_train']:>5d}/{rows[0]['n_test']:<5d}{_ms([r['baseline'] for r in rows]):>14s}"
              f"{_ms([r['dance'] for r in rows]):>14s}{_ms([r['gap'] for r in rows]):>15s}"
              f"{_ms([r['val_gap'] for r in rows if r['val_gap'] is not None] or [float('nan')]):>13s}"
              f"{statistics.mean(r['concepts'] for r in rows):>10.0f}"
              f"{statistics.mean(r['weights'] for r in rows):>9.0f}"
              f"{statistics.mean(r['minutes'] for r in rows):>9.1f}  {choices}")
    print(f"(mean ± standard deviation over seeds {args.seeds}; {args.out / 'pose_datasets.json'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
