"""Every DANCE candidate of finished development runs, scored on their development-test videos, and what each
selection rule would have chosen: how a rule for choosing the concept layer is compared without a real test split.

    python benchmarks/pose_datasets.py --out pose-dev --penn ../shared/data/penn_action --dev-folds 3 --seeds 10 11 12
    python benchmarks/candidates.py pose-dev/runs/penn_action_dev*_seed*

For each run (its stages up to ``features`` and ``motion`` done), the train stage's candidates under
``train.concept_hidden=auto`` and ``train.binary_activation=auto`` are fit again exactly as the stage fits them
(:func:`dance.pipeline.train.select_model`: the run's other settings, views, cross-fitting) and each is scored on the
validation videos (or cross-validated) and on the run's evaluated split. Then, per rule, the gap to the baseline
(the backbone's own head) of the candidate it picks: ``accuracy`` (the rule of ``auto``: best validation or
cross-validated accuracy, ties by log-loss), ``log-loss`` (lowest validation or cross-validated log-loss),
``MLP only`` (the accuracy rule among the MLP concept layers, as if the linear candidates were dropped),
``linear only`` (the same among the linear layers, as if the MLP were not tried; docs/pose_accuracy.md, session
26) and ``linear logit`` (no choice: the linear layer with logits, the defaults since session 28). ``--json`` keeps
every candidate's scores for a later look; ``--distill 0 0.5 auto`` fits them once per ``train.distill`` setting;
``--set train.lam=1e-4`` (any ``train.`` setting, repeatable) fits them with that setting instead of the run's
(``--set train.concept_hidden=null`` narrows the candidates to the linear layer). A run made with the default fixed
concept layer trained no fold encoders (``features.folds=auto`` cross-fits only where the run chooses), so its
candidates are scored on its validation split; make small development runs with ``pose_datasets.py --set
train.concept_hidden=auto --set train.binary_activation=auto`` for them to be cross-validated as ``auto`` would.

Use it on development splits only (``pose_datasets.py --dev-folds``, ``--dev-views`` or ``--dev-groups``, whose
test split is made of training videos):
choosing a rule by the scores of a real test split would tune on it. A run whose data is not a development split
is refused unless ``--not-a-dev-fold`` says the caller knows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from dance.config import load_settings
from dance.errors import DanceError
from dance.model.selection import layer_name
from dance.pipeline.artifacts import load_arrays
from dance.pipeline.runner import Context
from dance.pipeline.train import load_split_data, select_model, training_teacher, training_views
from dance.progress import RichReporter
from dance.runs import RunDir
from dance.threads import torch_threads


def _by_accuracy(c: dict, s: str) -> tuple:
    """The train stage's order under score ``s`` ("cv" or "val"): best accuracy first, ties by lower log-loss."""
    return -c[f"{s}_accuracy"], c[f"{s}_log_loss"]


#: rule → (which candidates it may pick, its sort key under score ``s``, "cv" or "val"): lowest key wins, ties
#: go to the earlier candidate, as in the train stage.
RULES: dict[str, tuple[Callable[[dict], bool], Callable[[dict, str], tuple]]] = {
    "accuracy": (lambda c: True, _by_accuracy),
    "log-loss": (lambda c: True, lambda c, s: (c[f"{s}_log_loss"], -c[f"{s}_accuracy"])),
    "MLP only": (lambda c: c["concept_hidden"] is not None, _by_accuracy),
    "linear only": (lambda c: c["concept_hidden"] is None, _by_accuracy),
    "linear logit": (lambda c: c["concept_hidden"] is None and c["binary_activation"] == "logit", _by_accuracy),
}

#: the settings whose candidates the rules choose among, before the caller's ``--set``
CHOICE = ["train.concept_hidden=auto", "train.binary_activation=auto"]


def pick(cands: list[dict], rule: str, score: str) -> int | None:
    """The candidate ``rule`` picks (its position), or None when it may pick none of them."""
    allowed, key = RULES[rule]
    positions = [i for i, c in enumerate(cands) if allowed(c)]
    return min(positions, key=lambda i: (*key(cands[i], score), i)) if positions else None


def _share(value: str) -> float | str:
    """A ``--distill`` value: a share, or ``auto`` (the pipeline's default)."""
    return value if value == "auto" else float(value)


def _shown(share: float | str) -> str:
    return share if isinstance(share, str) else f"{share:g}"


def score_run(run: Path, distill: float | str | None = None, overrides: Sequence[str] = ()) -> dict:
    """Every candidate of ``run``'s train stage, with its ``train.distill`` setting or ``distill``, and its other
    settings as the run had them unless ``overrides`` (``train.KEY=VALUE``) say otherwise; the concept layer and
    the activation are ``auto`` (:data:`CHOICE`) unless ``overrides`` set them."""
    overrides = [*CHOICE, *overrides, *([] if distill is None else [f"train.distill={distill}"])]
    ctx = Context(load_settings(run / "config.yaml", overrides), RunDir(run), RichReporter())
    share = ctx.settings.train.distill
    index, data = load_split_data(ctx)
    tr, va = data["train"], data["val"]
    test = data["test"] if len(data["test"].y) else va
    head = load_arrays(ctx.stage_dir("features") / "head_predictions.npz")["pred"]
    baseline = float((head[test.rows] == test.y).mean())
    teacher = None
    if share == "auto" or share > 0:
        teacher, why_not = training_teacher(ctx, tr)
        if teacher is None and share != "auto":
            raise DanceError(f"{run}: train.distill={share} has no teacher: {why_not}")
    start = time.time()
    with torch_threads(ctx.settings.train.threads):
        sel = select_model(ctx, index.classes, tr, va, training_views(ctx, tr), teacher)
    score = "cv" if "cv_accuracy" in sel.candidates[0] else "val"
    cands = [c | {"test_accuracy": m.score(test.X, test.y)} for c, m in zip(sel.candidates, sel.models)]
    picks = {name: pick(cands, name, score) for name in RULES}
    return {"run": run.name, "distill": share, "lam": ctx.settings.train.lam, "baseline": baseline,
            "n_test": len(test.y), "score": score, "candidates": cands, "picks": picks,
            "minutes": (time.time() - start) / 60}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, nargs="+")
    ap.add_argument("--not-a-dev-fold", action="store_true",
                    help="score runs whose data is not a pose_datasets.py development split (never to choose a rule)")
    ap.add_argument("--json", type=Path, help="also write every run's candidates, scores and picks here")
    ap.add_argument("--distill", type=_share, nargs="+", metavar="SHARE",
                    help="fit the candidates once per train.distill setting given, a share or auto (default: the "
                         "run's own setting); a share > 0 needs a features stage that saved the encoder's class "
                         "scores")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="train.KEY=VALUE",
                    help="fit the candidates with this train setting instead of the run's (e.g. train.lam=1e-4); "
                         "repeatable. Only train.* settings: the earlier stages' outputs are read as they are")
    args = ap.parse_args(argv)
    wrong = [o for o in args.overrides if not o.startswith("train.") or "=" not in o]
    if wrong:
        print(f"error: --set takes train.KEY=VALUE only (the earlier stages are not run again): {', '.join(wrong)}",
              file=sys.stderr)
        return 2
    results = []
    try:
        for run in args.runs:
            data_path = str(load_settings(run / "config.yaml", []).data.path)
            if not Path(data_path).parent.name.startswith(("dev_fold", "dev_by_")) and not args.not_a_dev_fold:
                print(f"error: {run}: its data ({data_path}) is not a development split (pose_datasets.py --dev-folds, "
                      "--dev-views or --dev-groups); its test split must not choose a rule (--not-a-dev-fold to "
                      "score it anyway)",
                      file=sys.stderr)
                return 2
            results += [score_run(run, share, args.overrides) for share in (args.distill or [None])]
    except DanceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    gaps: dict[tuple[str, float | str], list[float]] = {(name, r["distill"]): [] for r in results for name in RULES}
    for r in results:
        print(f"\n{r['run']} (distill {_shown(r['distill'])}, train.lam {_shown(r['lam'])}): baseline "
              f"{100 * r['baseline']:.1f} % on {r['n_test']} videos; candidates scored by "
              f"{'cross-validation' if r['score'] == 'cv' else 'validation'} "
              f"({r['minutes']:.1f} min)")
        print(f"  {'concept layer':14s}{'activation':>12s}{'distill':>8s}{'accuracy':>10s}{'log-loss':>10s}"
              f"{'test %':>8s}{'gap':>7s}{'weights':>9s}  picked by")
        for i, c in enumerate(r["candidates"]):
            layer = layer_name(c["concept_hidden"])
            by = ", ".join(name for name, chosen in r["picks"].items() if chosen == i)
            print(f"  {layer:14s}{c['binary_activation']:>12s}{c.get('distill', 0.0):>8g}"
                  f"{c[r['score'] + '_accuracy']:>10.3f}"
                  f"{c[r['score'] + '_log_loss']:>10.3f}{100 * c['test_accuracy']:>8.1f}"
                  f"{100 * (c['test_accuracy'] - r['baseline']):>+7.1f}{c['nonzero_weights']:>9d}  {by}")
        for name, chosen in r["picks"].items():
            if chosen is not None:
                gaps[name, r["distill"]].append(100 * (r["candidates"][chosen]["test_accuracy"] - r["baseline"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print("\nrule         distill  gap to the baseline, points (mean ± sd over runs; per run)")
    for (name, share), g in gaps.items():
        if not g:
            print(f"{name:13s}{_shown(share):<9s}no candidate it may pick")
            continue
        spread = f" ± {statistics.stdev(g):.2f}" if len(g) > 1 else ""
        print(f"{name:13s}{_shown(share):<9s}{statistics.mean(g):+.2f}{spread}  ({' / '.join(f'{x:+.1f}' for x in g)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
