"""How many concepts an explanation needs: the readability side of the final layer's sparsity, per finished run.

    python benchmarks/explanation_size.py RUN [RUN ...] [--split val] [--share 0.8 0.9]

For every video of the split (validation by default, where nothing is reported as accuracy), the explanation of
its predicted class as `dance explain` computes it (contribution = standardised activation × weight): how many
concepts have a non-zero weight for that class, and the fewest concepts whose positive contributions hold each
``--share`` of all its positive contributions. Prints the medians over videos per run, beside the run's non-zero
weights, so two final layers (say ``train.lam`` 7e-4 and 1e-4, docs/pose_accuracy.md, "Across camera views") can
be compared on how much an explanation grows, not only on how many weights they keep.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dance.errors import DanceError
from dance.model.contributions import explanation_size
from dance.run_view import RunView


def explanation_sizes(run: Path, split: str, shares: list[float]) -> dict:
    """The run's final layer, its classes, and :func:`~dance.model.contributions.explanation_size` on the split."""
    view = RunView(run)
    model, videos = view.trained_model, view.videos
    rows = videos.splits == split
    if not rows.any():
        raise DanceError(f"{run} has no '{split}' videos with features")
    size = explanation_size(model, model.concept_activations(videos.X[rows]), tuple(shares))
    return {"run": str(run), "videos": size["n"], "weights": model.nonzero_weights(), "classes": len(model.classes_),
            "terms": size["terms"], "needed": size["concepts"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="finished runs (a trained model)")
    ap.add_argument("--split", default="val", help="which videos to explain (default: val)")
    ap.add_argument("--share", type=float, nargs="+", default=[0.8, 0.9],
                    help="shares of the positive evidence (default 0.8 0.9)")
    args = ap.parse_args(argv)
    if not all(0 < s <= 1 for s in args.share):
        ap.error("--share values must be in (0, 1]")
    head = " | ".join(f"concepts holding {100 * s:g} %" for s in args.share)
    print(f"| run | videos | non-zero weights (per class) | terms of the predicted class | {head} |")
    print("| --- " * (4 + len(args.share)) + "|")
    ok = 0
    for run in args.runs:
        try:
            r = explanation_sizes(run, args.split, args.share)
        except (DanceError, OSError) as e:
            print(f"{run}: skipped ({e})", file=sys.stderr)
            continue
        ok += 1
        cells = " | ".join(f"{r['needed'][f'{s:g}']:g}" for s in args.share)
        print(f"| {run} | {r['videos']} | {r['weights']} ({r['weights'] / r['classes']:.0f}) | {r['terms']:g} | "
              f"{cells} |")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
