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

Development folds (``--dev-folds K``): to compare settings without the test split in view, each dataset is
replaced by K copies made of its training and validation videos only, copy ``k`` holding out fold ``k`` of them
(stratified by class) as its test split; the run then draws its own validation split from the rest, as it does on
the real dataset. Seed number ``i`` of ``--seeds`` runs on fold ``i mod K``, so ``--seeds 10 11 12 --dev-folds 3``
gives three runs whose test folds together cover every training video once; ``--fold-seed`` draws other folds
(different test videos) for a fresh comparison on the same data. The dataset's own test videos are
left out of the copies' ``annotations.csv``; the other files are hard-linked where the filesystem allows (else
copied). ``--dev-views view=front,back`` makes one development split across a column of ``annotations.csv``
instead (Penn Action's export has each video's camera ``view``): the training videos with those values train, the
other training videos test — how a setting fares on views the training videos lack, without the test split.
``--dev-groups PATTERN=VALUE,...`` splits by a group named in each video id instead (the first group of the regular
expression PATTERN): the training videos of the groups given test, the others train — MSR Action3D's development
splits hold out two of its training subjects, ``--dev-groups '_s0*([0-9]+)_=1,5'``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from dance.config import load_settings
from dance.data.synthetic.generator import generate
from dance.errors import DanceError
from dance.model.selection import fold_ids
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


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another filesystem, or links not allowed
        shutil.copy2(src, dst)


def _dev_copy(folder: Path, dst: Path, fields: list[str], rows: list[dict], held: list[bool]) -> Path:
    """``dst``: ``folder``'s files (hard-linked where possible) with ``rows`` as its ``annotations.csv``, the
    ``held`` ones as the test split and the others as training (kept as it is when ``dst`` was made before)."""
    if not (dst / "annotations.csv").is_file():
        shutil.copytree(folder, dst, dirs_exist_ok=True, copy_function=_link_or_copy,
                        ignore=shutil.ignore_patterns("annotations.csv"))
        with open(dst / "annotations.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(r | {"split": "test" if h else "train"} for r, h in zip(rows, held))
    return dst


def dev_fold_dataset(folder: Path, out: Path, fold: int, n_folds: int, seed: int = 0) -> Path:
    """``folder`` (a generic pose dataset) without its test videos, with fold ``fold`` of its training and validation
    videos (``n_folds`` folds, stratified by class, drawn with ``seed``) as the test split and the others as
    training: a development split on which settings can be compared without the real test split in view."""
    with open(folder / "annotations.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields, rows = list(reader.fieldnames or []), list(reader)
    if "split" not in fields or "label" not in fields:
        raise DanceError(f"{folder / 'annotations.csv'}: development folds need 'label' and 'split' columns")
    rows = [r for r in rows if r["split"] in ("train", "val")]
    if not rows:
        raise DanceError(f"{folder / 'annotations.csv'}: no training or validation videos to make folds of")
    labels = sorted({r["label"] for r in rows})
    held = fold_ids([labels.index(r["label"]) for r in rows], n_folds, seed) == fold
    return _dev_copy(folder, out / f"dev_fold{fold}_of{n_folds}", fields, rows, held)


def _dev_split(folder: Path, dst: Path, what: str, key: Callable[[dict], str], train_values: set[str],
               needs: str = "") -> Path:
    """``folder`` without its test videos, its training and validation videos whose ``key`` is one of
    ``train_values`` as training and the others as the test split (``what`` names the key in messages; ``needs``, a
    column it reads). A class with no training video on that split is left out (and named)."""
    with open(folder / "annotations.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields, rows = list(reader.fieldnames or []), list(reader)
    if "split" not in fields or (needs and needs not in fields):
        raise DanceError(f"{folder / 'annotations.csv'}: a development split by {what} needs "
                         f"{f'{needs!r} and ' if needs else ''}'split' columns (it has {', '.join(fields)})")
    rows = [r for r in rows if r["split"] in ("train", "val")]
    keys = [key(r) for r in rows]
    trained = {r["label"] for r, k in zip(rows, keys) if k in train_values}
    dropped = sorted({r["label"] for r in rows} - trained)
    if dropped:  # a class with no training video could never be predicted: not part of the split
        print(f"  {what}={','.join(sorted(train_values))}: no training video of {', '.join(dropped)}; "
              "left out of the development split")
        kept = [i for i, r in enumerate(rows) if r["label"] in trained]
        rows, keys = [rows[i] for i in kept], [keys[i] for i in kept]
    held = [k not in train_values for k in keys]
    if all(held) or not any(held):
        raise DanceError(f"{folder / 'annotations.csv'}: {what} values {sorted(set(keys))} and training values "
                         f"{sorted(train_values)} leave no {'training' if all(held) else 'test'} video")
    return _dev_copy(folder, dst, fields, rows, held)


def dev_view_dataset(folder: Path, out: Path, column: str, train_values: set[str]) -> Path:
    """``folder`` without its test videos, its training and validation videos whose ``column`` (e.g. a camera view)
    is one of ``train_values`` as training, the others as the test split: a development split across that column
    (say front / back views train, left / right test), made of training videos only. A class with no training
    video on that split is left out (and named)."""
    return _dev_split(folder, out / f"dev_by_{column}_{'_'.join(sorted(train_values))}", column,
                      lambda r: r[column], train_values, needs=column)


def dev_group_dataset(folder: Path, out: Path, pattern: str, test_values: set[str]) -> Path:
    """``folder`` without its test videos, its training and validation videos in one of the groups ``test_values``
    as the test split and the others as training, a video's group being the first group of the regular expression
    ``pattern`` searched in its id (MSR Action3D's subject: ``_s0*([0-9]+)_`` in ``a01_s03_e02``): a development
    split across subjects (or any group an id names), made of training videos only."""
    try:
        regex = re.compile(pattern)
    except re.error as e:
        raise DanceError(f"--dev-groups: {pattern!r} is not a regular expression ({e})") from None
    if regex.groups < 1:
        raise DanceError(f"--dev-groups: {pattern!r} has no group (…(…)…) naming a video's group")

    def group(row: dict) -> str:
        m = regex.search(row["video_id"])
        if m is None or m.group(1) is None:
            raise DanceError(f"--dev-groups: {pattern!r} names no group in video id {row['video_id']!r}")
        return m.group(1)

    with open(folder / "annotations.csv", newline="", encoding="utf-8") as f:
        groups = {group(r) for r in csv.DictReader(f) if r.get("split") in ("train", "val")}
    test = "_".join(sorted(test_values))
    return _dev_split(folder, out / f"dev_by_group_test{test}", "group", group, groups - test_values,
                      needs="video_id")


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
            "activation": layer.get("binary_activation"), "distill": layer.get("distill", 0.0)}


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
    ap.add_argument("--dev-folds", type=int, default=0, metavar="K",
                    help="run on K development folds of the training videos instead of the test split (0: off)")
    ap.add_argument("--fold-seed", type=int, default=0, metavar="S",
                    help="seed of the development folds' draw (another seed: other test videos)")
    ap.add_argument("--dev-views", metavar="COLUMN=VALUE,...",
                    help="run on one development split across a column of annotations.csv instead of the test "
                         "split: training videos with one of the values train, the others test (Penn Action: "
                         "view=front,back)")
    ap.add_argument("--dev-groups", metavar="PATTERN=VALUE,...",
                    help="run on one development split across groups of video ids instead of the test split: the "
                         "first group of the regular expression PATTERN, searched in each id, names a video's group; "
                         "training videos of the groups given test, the others train (MSR Action3D's subjects: "
                         "'_s0*([0-9]+)_=1,5')")
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    help="extra section.key=value for every run (the README numbers use none)")
    args = ap.parse_args(argv)
    if args.dev_folds == 1 or args.dev_folds < 0:
        ap.error("--dev-folds: give 0 (off) or at least 2 folds")
    column, _, values = (args.dev_views or "").partition("=")
    if args.dev_views and (not column or not values or args.dev_folds):
        ap.error("--dev-views: expected COLUMN=VALUE[,VALUE...], and not with --dev-folds")
    pattern, _, groups = (args.dev_groups or "").rpartition("=")
    if args.dev_groups and (not pattern or not groups or args.dev_folds or args.dev_views):
        ap.error("--dev-groups: expected PATTERN=VALUE[,VALUE...], and not with --dev-folds or --dev-views")
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
            for i, seed in enumerate(args.seeds):
                data, run_name = folder, f"{name}_seed{seed}"
                if args.dev_folds:
                    k = i % args.dev_folds
                    fs = f"_fs{args.fold_seed}" if args.fold_seed else ""  # fold seed 0: the names from before it
                    data = dev_fold_dataset(folder, args.out / f"{name}_dev{fs}", k, args.dev_folds, args.fold_seed)
                    run_name = f"{name}{fs}_dev{k}_seed{seed}"
                elif args.dev_views or args.dev_groups:
                    data = (dev_view_dataset(folder, args.out / f"{name}_dev", column, set(values.split(",")))
                            if args.dev_views else
                            dev_group_dataset(folder, args.out / f"{name}_dev", pattern, set(groups.split(","))))
                    run_name = f"{name}_{data.name}_seed{seed}"
                row = run_one(data, args.out / "runs" / run_name, seed, args.overrides)
                results.setdefault(name, []).append(row)
                atomic_write_json(args.out / "pose_datasets.json", {"overrides": args.overrides, "results": results,
                                                                    "dev_folds": args.dev_folds,
                                                                    "fold_seed": args.fold_seed,
                                                                    "dev_views": args.dev_views,
                                                                    "dev_groups": args.dev_groups})
    except DanceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"\n{'dataset':18s}{'train/test':>11s}{'baseline %':>14s}{'DANCE %':>14s}{'gap (points)':>15s}"
          f"{'val gap':>13s}{'concepts':>10s}{'weights':>9s}{'minutes':>9s}  choices (per seed)")
    for name, rows in results.items():
        choices = "; ".join(f"p{r['partition']} {r['concept_layer']} {r['activation']}"
                            + (f" distill {r['distill']:g}" if r.get("distill") else "") for r in rows)
        print(f"{name:18s}{rows[0]['n_train']:>5d}/{rows[0]['n_test']:<5d}{_ms([r['baseline'] for r in rows]):>14s}"
              f"{_ms([r['dance'] for r in rows]):>14s}{_ms([r['gap'] for r in rows]):>15s}"
              f"{_ms([r['val_gap'] for r in rows if r['val_gap'] is not None] or [float('nan')]):>13s}"
              f"{statistics.mean(r['concepts'] for r in rows):>10.0f}"
              f"{statistics.mean(r['weights'] for r in rows):>9.0f}"
              f"{statistics.mean(r['minutes'] for r in rows):>9.1f}  {choices}")
    where = (f"development folds of the training videos ({args.dev_folds})" if args.dev_folds else
             f"a development split of the training videos by {args.dev_views}" if args.dev_views else
             f"a development split of the training videos by groups {args.dev_groups}" if args.dev_groups else
             "the test split")
    print(f"(mean ± standard deviation over seeds {args.seeds}, on {where}; {args.out / 'pose_datasets.json'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
