"""What distilling costs the train stage: ``train.distill=0`` vs ``auto``, interleaved.

    python benchmarks/train_stage_cost.py RUN [--repeats 2] [--distill 0 auto]

``RUN`` is a finished (or stopped) run whose stages up to ``motion`` are done. For each ``--distill`` setting the
train stage's model selection (:func:`dance.pipeline.train.select_model`: every concept-layer candidate fit on the
training videos and their views, chosen on validation or by cross-validation with the cross-fitted encoders) is run
again, settings alternating within each repeat so both see the same machine load. Prints, per setting, the number of
candidates, the median wall and CPU minutes (CPU time of this process, all its threads), their ratios to the first
setting, the load average, and the pick of each repeat. Nothing is scored on the run's test split, so any run may be
timed. ``auto`` distils 0.5 of the backbone's head (each fold its own encoder's on a cross-fitted run), each
candidate with the denser final layer of λ 1e-4. With the default fixed concept layer (linear, logits) each setting
fits one candidate; where the run chooses them (``train.concept_hidden=auto``, ``train.binary_activation=auto``)
``auto`` leaves the MLP with probabilities out, so it fits one candidate fewer than ``0`` (3 against 4 with binary
concepts).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from dance.config import load_settings
from dance.errors import DanceError
from dance.model.selection import candidate_name
from dance.pipeline.runner import Context
from dance.pipeline.train import load_split_data, select_model, training_teacher, training_views
from dance.progress import Reporter
from dance.runs import RunDir
from dance.threads import torch_threads


def time_selection(run: Path, distill: str) -> tuple[float, float, int, str]:
    """(wall minutes, CPU minutes, candidates, pick) of the train stage's selection with ``train.distill``."""
    ctx = Context(load_settings(run / "config.yaml", [f"train.distill={distill}"]), RunDir(run), Reporter())
    index, data = load_split_data(ctx)
    tr, va = data["train"], data["val"]
    wall, cpu = time.perf_counter(), time.process_time()
    share = ctx.settings.train.distill
    teacher = training_teacher(ctx, tr)[0] if share == "auto" or share > 0 else None
    with torch_threads(ctx.settings.train.threads):
        sel = select_model(ctx, index.classes, tr, va, training_views(ctx, tr), teacher)
    chosen = next(c for c in sel.candidates if c["chosen"])
    pick = candidate_name(chosen["concept_hidden"], chosen["binary_activation"], chosen["distill"])
    return (time.perf_counter() - wall) / 60, (time.process_time() - cpu) / 60, len(sel.candidates), pick


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--distill", nargs="+", default=["0", "auto"], metavar="SETTING",
                    help="train.distill settings to compare, the first the reference (default: 0 auto)")
    args = ap.parse_args(argv)
    times: dict[str, list[tuple[float, float, int, str]]] = {d: [] for d in args.distill}
    loads = []
    try:
        for r in range(args.repeats):
            for d in args.distill:
                times[d].append(time_selection(args.run, d))
                loads.append(os.getloadavg()[0])
                wall, cpu, n, pick = times[d][-1]
                print(f"repeat {r + 1}, train.distill={d}: {n} candidates, {wall:.2f} min wall, {cpu:.2f} min CPU, "
                      f"picked {pick}", flush=True)
    except (DanceError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    ref_wall = statistics.median(t[0] for t in times[args.distill[0]])
    ref_cpu = statistics.median(t[1] for t in times[args.distill[0]])
    print(f"\n{args.run.name}: {args.repeats} interleaved repeats, load average {min(loads):.1f}–{max(loads):.1f}")
    print(f"{'train.distill':>14s}{'candidates':>12s}{'wall min':>10s}{'× ref':>7s}{'CPU min':>9s}{'× ref':>7s}  picks")
    for d, ts in times.items():
        wall, cpu = statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts)
        print(f"{d:>14s}{ts[0][2]:>12d}{wall:>10.2f}{wall / ref_wall:>7.2f}{cpu:>9.2f}{cpu / ref_cpu:>7.2f}  "
              + "; ".join(sorted({t[3] for t in ts})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
