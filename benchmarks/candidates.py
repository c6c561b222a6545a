"""Every DANCE candidate of finished development runs, scored on their development-test videos, and what each
selection rule would have chosen: how a rule for choosing the concept layer is compared without a real test split.

    python benchmarks/pose_datasets.py --out pose-dev --penn ../shared/data/penn_action --dev-folds 3 --seeds 10 11 12
    python benchmarks/candidates.py pose-dev/runs/penn_action_dev*_seed*

For each run (its stages up to ``features`` and ``motion`` done), the train stage's candidates are fit again exactly
as the stage fits them (:func:`dance.pipeline.train.select_model`: same settings, views, cross-fitting) and each is
scored on the validation videos (or cross-validated) and on the run's evaluated split. Then, per rule, the gap to the
baseline (the backbone's own head) of the candidate it picks: ``accuracy`` (the pipeline's rule: best validation or
cross-validated accuracy, ties by log-loss) and ``log-loss`` (lowest validation or cross-validated log-loss).

Use it on development folds only (``pose_datasets.py --dev-folds``, whose test split is made of training videos):
choosing a rule by the scores of a real test split would tune on it. A run whose data is not a development-fold copy
is refused unless ``--not-a-dev-fold`` says the caller knows.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from dance.config import load_settings
from dance.errors import DanceError
from dance.pipeline.artifacts import load_arrays
from dance.pipeline.runner import Context
from dance.pipeline.train import load_split_data, select_model, training_views
from dance.progress import RichReporter
from dance.runs import RunDir
from dance.threads import torch_threads

RULES = {
    "accuracy": lambda c, s: (-c[f"{s}_accuracy"], c[f"{s}_log_loss"]),
    "log-loss": lambda c, s: (c[f"{s}_log_loss"], -c[f"{s}_accuracy"]),
}


def score_run(run: Path) -> dict:
    ctx = Context(load_settings(run / "config.yaml", []), RunDir(run), RichReporter())
    index, data = load_split_data(ctx)
    tr, va = data["train"], data["val"]
    test = data["test"] if len(data["test"].y) else va
    head = load_arrays(ctx.stage_dir("features") / "head_predictions.npz")["pred"]
    baseline = float((head[test.rows] == test.y).mean())
    start = time.time()
    with torch_threads(ctx.settings.train.threads):
        sel = select_model(ctx, index.classes, tr, va, training_views(ctx, tr))
    score = "cv" if "cv_accuracy" in sel.candidates[0] else "val"
    cands = [c | {"test_accuracy": m.score(test.X, test.y)} for c, m in zip(sel.candidates, sel.models)]
    picks = {name: min(range(len(cands)), key=lambda i, k=key: (*k(cands[i], score), i)) for name, key in RULES.items()}
    return {"run": run.name, "baseline": baseline, "n_test": len(test.y), "score": score, "candidates": cands,
            "picks": picks, "minutes": (time.time() - start) / 60}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, nargs="+")
    ap.add_argument("--not-a-dev-fold", action="store_true",
                    help="score runs whose data is not a pose_datasets.py --dev-folds copy (never to choose a rule)")
    args = ap.parse_args(argv)
    results = []
    try:
        for run in args.runs:
            data_path = str(load_settings(run / "config.yaml", []).data.path)
            if "dev_fold" not in data_path and not args.not_a_dev_fold:
                print(f"error: {run}: its data ({data_path}) is not a development-fold copy; its test split must not "
                      "choose a rule (--not-a-dev-fold to score it anyway)", file=sys.stderr)
                return 2
            results.append(score_run(run))
    except DanceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    gaps: dict[str, list[float]] = {name: [] for name in RULES}
    for r in results:
        print(f"\n{r['run']}: baseline {100 * r['baseline']:.1f} % on {r['n_test']} videos; candidates scored by "
              f"{'cross-validation' if r['score'] == 'cv' else 'validation'} ({r['minutes']:.1f} min)")
        print(f"  {'concept layer':14s}{'activation':>12s}{'accuracy':>10s}{'log-loss':>10s}{'test %':>8s}"
              f"{'gap':>7s}{'weights':>9s}  picked by")
        for i, c in enumerate(r["candidates"]):
            layer = "linear" if c["concept_hidden"] is None else f"MLP {c['concept_hidden']}"
            by = ", ".join(name for name, pick in r["picks"].items() if pick == i)
            print(f"  {layer:14s}{c['binary_activation']:>12s}{c[r['score'] + '_accuracy']:>10.3f}"
                  f"{c[r['score'] + '_log_loss']:>10.3f}{100 * c['test_accuracy']:>8.1f}"
                  f"{100 * (c['test_accuracy'] - r['baseline']):>+7.1f}{c['nonzero_weights']:>9d}  {by}")
        for name, pick in r["picks"].items():
            gaps[name].append(100 * (r["candidates"][pick]["test_accuracy"] - r["baseline"]))
    print("\nrule        gap to the baseline, points (mean ± sd over runs; per run)")
    for name, g in gaps.items():
        spread = f" ± {statistics.stdev(g):.2f}" if len(g) > 1 else ""
        print(f"{name:12s}{statistics.mean(g):+.2f}{spread}  ({' / '.join(f'{x:+.1f}' for x in g)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
