"""Stage ``evaluate``: test accuracy of DANCE and of the baseline, sparsity, explanations, type agreement.

The test accuracy of every language-concept baseline the ``train`` stage fit (``train.models``) goes into
``summary.json`` under ``variants`` (``{name: {"test_accuracy", "n_concepts", "nonzero_weights", "label"}}``),
and ``paper_dataset`` names the dataset of the paper's Table 1 the run is on (None when it is none of them).

Every video a stage skipped (truncated or undecodable video, no pose file, non-finite features, ...) is listed
in ``summary.json`` as ``skipped: {reason: [video ids]}`` (all stages together; ``skipped_by_stage`` gives the
same per stage, see :mod:`dance.pipeline.skipped` for what each means), and ``without_motion_label`` counts per
split the videos that have features but no motion-concept label (no key clip, no poses, or every clip rejected):
they are classified from their features like the others, but took no part in training the motion concept layer.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from rich.markup import escape

from dance.model.contributions import explain, explanation_size, type_agreement
from dance.model.io import load_model
from dance.paper import paper_dataset
from dance.pipeline.artifacts import load_arrays
from dance.pipeline.runner import Context
from dance.pipeline.skipped import gather as gather_skipped
from dance.pipeline.train import SplitData, load_split_data, model_counts, variant_dir
from dance.pipeline.variants import VARIANTS
from dance.runs import StageWriter, atomic_write_json, atomic_write_text, file_hash, read_json


def causes_path(ctx: Context) -> Path | None:
    """causes.json of a synthetic dataset: the setting, or the file beside the dataset's index."""
    if ctx.settings.evaluate.causes:
        return Path(ctx.settings.evaluate.causes)
    p = Path(ctx.settings.data.path)
    candidate = (p if p.is_dir() else p.parent) / "causes.json"
    return candidate if candidate.is_file() else None


def external(ctx: Context) -> dict[str, str]:
    p = causes_path(ctx)
    return {"causes": file_hash(p) if p is not None else "none"}


def _selection(ctx: Context) -> dict:
    """The settings chosen inside the run and the evidence for each: the FINCH partition (cross-validation on the
    training videos) and the concept layer / motion activation (validation split)."""
    motion = read_json(ctx.stage_dir("motion") / "concepts.json")
    training = read_json(ctx.stage_dir("train") / "training.json")
    return {"motion_partition": motion.get("partition_choice", {}) | {"partition": motion.get("partition")},
            "concept_layer": training.get("selection", {})}


def run(ctx: Context, out: StageWriter) -> dict:
    index, data = load_split_data(ctx)
    model = load_model(ctx.stage_dir("train") / "model")
    base_pred = load_arrays(ctx.stage_dir("baseline") / "predictions.npz")["pred"]
    test = data.get("test")
    if test is None or len(test.rows) == 0:
        test = data["val"]
        ctx.reporter.info("  [yellow]no test videos: reporting validation accuracy[/yellow]")
    pred = model.predict_index(test.X)
    per_class = {c: float((pred[test.y == k] == k).mean()) if (test.y == k).any() else None
                 for k, c in enumerate(model.classes_)}
    summary: dict = {
        "test_accuracy": float((pred == test.y).mean()),
        "baseline_test_accuracy": float((base_pred[test.rows] == test.y).mean()),
        "n_test": int(len(test.rows)),
        "n_train": int(len(data["train"].rows)),
        "n_concepts": model.n_concepts(),
        "nonzero_weights": model.nonzero_weights(),
        "nonzero_weights_per_class": {c: int((model.W_[k] != 0).sum()) for k, c in enumerate(model.classes_)},
        "per_class_accuracy": per_class,
    }
    # how many concepts an explanation needs (the readability side of the final layer's sparsity)
    summary["explanation_size"] = explanation_size(model, model.concept_activations(test.X))
    val = data["val"]  # never empty (load_split_data); the videos the run chose its settings on
    summary["validation_accuracy"] = float((model.predict_index(val.X) == val.y).mean())
    summary["baseline_validation_accuracy"] = float((base_pred[val.rows] == val.y).mean())
    summary["n_val"] = int(len(val.rows))
    variants = _variants(ctx, test)
    if variants:
        summary["variants"] = variants
    skipped, by_stage = gather_skipped(ctx.run.root)
    summary["skipped"] = skipped
    summary["n_skipped"] = len({vid for ids in skipped.values() for vid in ids})
    if by_stage:
        summary["skipped_by_stage"] = by_stage
    summary["without_motion_label"] = {name: int((~split.concepts["motion"].mask).sum())
                                       for name, split in data.items() if "motion" in split.concepts}
    d = ctx.settings.data
    summary["paper_dataset"] = paper_dataset(model.classes_, d.format, d.path, ctx.settings.evaluate.paper_dataset)
    summary["evaluated_split"] = "test" if "test" in data and len(data["test"].rows) else "val"
    summary["selection"] = _selection(ctx)
    cp = causes_path(ctx)
    if cp is not None:
        causes = json.loads(cp.read_text(encoding="utf-8"))["classes"]
        decisive = {model.classes_.index(c): v["decisive"] for c, v in causes.items() if c in model.classes_}
        agreement = type_agreement(model, test.X, test.y, decisive)
        summary["type_agreement"] = agreement["type_agreement"]
        summary["type_agreement_detail"] = agreement
    # predictions and explanations of the test videos
    k = ctx.settings.evaluate.top_k
    expl = explain(model, test.X, k=k)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["video_id", "label", "predicted", "baseline", "top_type", "motion_share", "object_share",
                "scene_share"])
    records = []
    for row, e in zip(test.rows, expl):
        rec = index.records[int(row)]
        w.writerow([rec.video_id, rec.label, e.predicted, model.classes_[base_pred[row]] if base_pred[row] >= 0
                    else "", e.top_type] + [f"{e.type_shares.get(t, 0.0):.4f}" for t in ("motion", "object", "scene")])
        records.append({"video_id": rec.video_id, "label": rec.label, "predicted": e.predicted,
                        "probabilities": e.probabilities, "type_shares": e.type_shares,
                        "top": {t: [vars(c) for c in cs] for t, cs in e.top.items()}})
    atomic_write_text(out.path("predictions.csv"), buf.getvalue())
    atomic_write_json(out.path("explanations.json"), records)
    atomic_write_json(out.path("summary.json"), summary)
    agree = f", type agreement {summary['type_agreement']:.3f}" if "type_agreement" in summary else ""
    others = "".join(f", {name} {v['test_accuracy']:.3f}" for name, v in variants.items())
    ctx.reporter.info(f"  test accuracy {summary['test_accuracy']:.3f} "
                      f"(baseline {summary['baseline_test_accuracy']:.3f}{others}){agree}")
    ctx.reporter.info(f"  validation accuracy {summary['validation_accuracy']:.3f} "
                      f"(baseline {summary['baseline_validation_accuracy']:.3f}; {summary['n_val']} videos)")
    size = summary["explanation_size"]
    if size["n"]:
        ctx.reporter.info(f"  explanations: {size['concepts']['0.8']:g} concepts hold 80 % of a prediction's positive "
                          f"evidence ({size['terms']:g} non-zero terms for its class; medians)")
    if skipped:
        ctx.reporter.info(f"  [yellow]{summary['n_skipped']} videos skipped by some stage[/yellow]: "
                          + escape(", ".join(f"{reason} {len(ids)}" for reason, ids in skipped.items()))
                          + " (summary.json: skipped)")
    missing = summary["without_motion_label"].get(summary["evaluated_split"], 0)
    if missing:
        ctx.reporter.info(f"  {missing} of the {summary['n_test']} evaluated videos have no motion-concept label "
                          "(no key clip or poses): classified from their features, not used to train motion "
                          "concepts")
    return {"test_accuracy": summary["test_accuracy"], "baseline_test_accuracy": summary["baseline_test_accuracy"]} | (
        {"variants": {name: v["test_accuracy"] for name, v in variants.items()}} if variants else {})


def _variants(ctx: Context, test: SplitData) -> dict[str, dict]:
    """Test accuracy, kept concepts and non-zero weights of every baseline the train stage fit."""
    train_dir = ctx.stage_dir("train")
    info = read_json(train_dir / "training.json") if (train_dir / "training.json").is_file() else {}
    out: dict[str, dict] = {}
    for name in info.get("variants", {}):
        model = load_model(variant_dir(train_dir, name))
        pred = model.predict_index(test.X)
        out[name] = {"label": VARIANTS[name].label if name in VARIANTS else name,
                     "test_accuracy": float((pred == test.y).mean()), "n_concepts": model_counts(model),
                     "nonzero_weights": model.nonzero_weights()}
    return out
