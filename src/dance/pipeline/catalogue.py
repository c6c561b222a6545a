"""Stage ``catalogue``: every motion concept rendered (GIF + PNG strip of its medoid), with how many training
videos carry it and which classes use it (non-zero final-layer weights)."""

from __future__ import annotations

import numpy as np

from dance.model.io import load_model
from dance.motion.poses import Skeleton
from dance.motion.render import save_animation, save_strip
from dance.pipeline.artifacts import load_arrays
from dance.pipeline.runner import Context
from dance.runs import StageWriter, atomic_write_json, read_json


def run(ctx: Context, out: StageWriter) -> dict:
    motion_dir = ctx.stage_dir("motion")
    concepts = read_json(motion_dir / "concepts.json")
    arrays = load_arrays(motion_dir / "motion.npz")
    skeleton = Skeleton.from_json(ctx.stage_dir("poses") / "skeleton.json")
    clip_scores = load_arrays(ctx.stage_dir("poses") / "poses.npz")["scores"]
    model = load_model(ctx.stage_dir("train") / "model")
    names = model.concept_names_
    entries = []
    with ctx.reporter.task("rendering motion concepts", len(concepts["concepts"])) as advance:
        for k, c in enumerate(concepts["concepts"]):
            seq, sc = arrays["medoid_keypoints"][k], clip_scores[arrays["medoid_clip"][k]]
            gif = save_animation(out.path(f"motion/{c['name']}.gif"), [seq], skeleton, [c["name"]], size=128,
                                 scores=[sc])
            png = save_strip(out.path(f"motion/{c['name']}.png"), seq, skeleton, scores=sc)
            col = names.index(f"motion:{c['name']}") if f"motion:{c['name']}" in names else None
            used = [] if col is None else [
                {"class": model.classes_[j], "weight": float(model.W_[j, col])}
                for j in np.flatnonzero(model.W_[:, col]) if model.W_[j, col] != 0]
            entries.append(c | {"gif": str(gif.relative_to(out.dir)), "png": str(png.relative_to(out.dir)),
                                "kept": col is not None, "classes": sorted(used, key=lambda u: -abs(u["weight"]))})
            advance()
    spatial = [{"name": n, "type": t, "classes": [
        {"class": model.classes_[j], "weight": float(model.W_[j, i])} for j in np.flatnonzero(model.W_[:, i])]}
        for i, (n, t) in enumerate(zip(names, model.concept_types_)) if t != "motion"]
    atomic_write_json(out.path("catalogue.json"), {"motion": entries, "spatial": spatial})
    used = sum(1 for e in entries if e["classes"])
    ctx.reporter.info(f"  rendered {len(entries)} motion concepts; {used} are used by at least one class")
    return {"motion_concepts": len(entries), "used": used}
