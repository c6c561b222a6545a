"""Action vs scene on scene-biased synthetic videos: the one-token baseline, two-token and DEVIAS (issue 14).

    python benchmarks/scene_bias.py [--seeds 0 1 2] [--models one_token two_token devias] [--out DIR]
                                    [--epochs 12] [--threads 1] [--jobs 1] [--json results.json]

Per seed: renders the scene-bias data set (:mod:`dance.scene_bias.data`, default settings: 6 actions × 6 scenes,
12 seen pairs at correlation 0.9, 2,400 train / 360 seen / 720 unseen / 360 swapped / 360 scene-only clips, seed
= the seed), decodes it (8 frames, 32 px), trains every model on the train split (model seed = the seed) and
evaluates it as DEVIAS does (:func:`dance.scene_bias.train.evaluate`). Prints one row per model: mean ± std over
the seeds of action accuracy on seen / unseen pairs / stripes (swapped), scene accuracy on seen / unseen /
scene-only, the harmonic mean, and the training wall and CPU minutes; then the 1-minute load average before and
after, and the check of issue 14's target (DEVIAS unseen ≥ one-token unseen + 30 points, seen within 3 points).
Data sets are kept in ``--out`` (default: a temporary folder) and reused when their settings match. ``--jobs``
runs that many seeds at once, one process each (each model's times are its own process's).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from dance.scene_bias.data import DataSettings, generate, load_sets
from dance.scene_bias.model import KINDS, ModelSettings
from dance.scene_bias.train import TrainSettings, evaluate, train_model

COLUMNS = (("action_seen", "act seen"), ("action_unseen", "act unseen"), ("action_swapped", "act stripes"),
           ("scene_seen", "scn seen"), ("scene_unseen", "scn unseen"), ("scene_only", "scn only"), ("hm", "H.M."))


def _load() -> float:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return float("nan")


def dataset(root: Path, settings: DataSettings) -> Path:
    """``root`` holding the data set of ``settings`` (rendered unless it is already there)."""
    marker = root / ".settings.json"
    want = json.dumps(settings.__dict__, sort_keys=True, default=list)
    if not (marker.is_file() and marker.read_text() == want):
        generate(root, settings)
        marker.write_text(want)
    return root


def fmt(values: list[float], scale: float = 100.0) -> str:
    m = statistics.mean(values) * scale
    s = statistics.stdev(values) * scale if len(values) > 1 else 0.0
    return f"{m:5.1f} ± {s:4.1f}"


def run_seed(seed: int, out: Path, args: argparse.Namespace) -> list[dict]:
    """Make (or reuse) the data set of ``seed``, train and evaluate every model on it."""
    t0 = time.perf_counter()
    root = dataset(out / f"seed{seed}", DataSettings(seed=seed, n_train=args.n_train))
    sets, manifest = load_sets(root)
    sizes = ", ".join(f"{k} {len(v)}" for k, v in sets.items())
    print(f"seed {seed}: data {time.perf_counter() - t0:.0f} s ({sizes})", flush=True)
    runs = []
    for kind in args.models:
        settings = ModelSettings(kind=kind, n_actions=len(manifest["actions"]), n_scenes=len(manifest["scenes"]))
        model, log = train_model(settings, sets["train"], TrainSettings(epochs=args.epochs, seed=seed,
                                                                        threads=args.threads))
        metrics = evaluate(model, sets, threads=args.threads)
        runs.append({"seed": seed, "model": kind, **metrics, "wall_s": log["wall_s"], "cpu_s": log["cpu_s"],
                     "threads": log["threads"], "load": _load()})
        print(f"  seed {seed} {kind:9s} " + "  ".join(f"{label} {100 * metrics[key]:5.1f}" for key, label in COLUMNS)
              + f"  train {log['wall_s'] / 60:.1f} min wall, {log['cpu_s'] / 60:.1f} min CPU, load {_load()}",
              flush=True)
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--models", nargs="+", default=["devias", "one_token", "two_token"], choices=KINDS)
    ap.add_argument("--out", type=Path, default=None, help="folder for the data sets (default: a temporary one)")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: the cores not busy)")
    ap.add_argument("--n-train", type=int, default=DataSettings.n_train)
    ap.add_argument("--jobs", type=int, default=1, help="seeds run in parallel, one process each")
    ap.add_argument("--json", type=Path, default=None, help="write every run's metrics and times here")
    args = ap.parse_args()

    load_before = _load()
    start = time.perf_counter()
    tmp = tempfile.TemporaryDirectory() if args.out is None else None
    out = Path(tmp.name) if tmp is not None else args.out
    jobs = max(1, min(args.jobs, len(args.seeds)))
    if jobs == 1:
        runs = [r for seed in args.seeds for r in run_seed(seed, out, args)]
    else:
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            runs = [r for rs in pool.map(run_seed, args.seeds, [out] * len(args.seeds),
                                         [args] * len(args.seeds)) for r in rs]
    if tmp is not None:
        tmp.cleanup()

    print(f"\n{len(args.seeds)} seeds ({', '.join(map(str, args.seeds))}), {args.epochs} epochs, "
          f"{args.threads} thread(s) per model, {jobs} seed(s) at a time; mean ± std, accuracies in %")
    header = "| model | " + " | ".join(label for _, label in COLUMNS) + " | train wall (min) | train CPU (min) |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    by_model = {kind: [r for r in runs if r["model"] == kind] for kind in KINDS if kind in args.models}
    for kind, rs in by_model.items():
        cells = [fmt([r[key] for r in rs]) for key, _ in COLUMNS]
        wall = fmt([r["wall_s"] for r in rs], 1 / 60)
        cpu = fmt([r["cpu_s"] for r in rs], 1 / 60)
        print(f"| {kind} | " + " | ".join(cells) + f" | {wall} | {cpu} |")
    total = time.perf_counter() - start
    print(f"\ntotal {total / 60:.1f} min; 1-minute load average {load_before} before, {_load()} after "
          f"({os.cpu_count()} cores)")
    if {"one_token", "devias"} <= set(by_model):
        base, dev = by_model["one_token"], by_model["devias"]
        gain = statistics.mean(r["action_unseen"] for r in dev) - statistics.mean(r["action_unseen"] for r in base)
        drop = statistics.mean(r["action_seen"] for r in base) - statistics.mean(r["action_seen"] for r in dev)
        ok = gain >= 0.30 and drop <= 0.03
        print(f"target (issue 14): DEVIAS unseen − one-token unseen = {100 * gain:+.1f} points (≥ +30), "
              f"seen drop = {100 * drop:.1f} points (≤ 3): {'MET' if ok else 'NOT MET'}")
    if args.json is not None:
        args.json.write_text(json.dumps({"runs": runs, "total_s": round(total, 1), "load_before": load_before,
                                         "load_after": _load()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
