"""Sample-level explanation figure (paper Fig. 4) of one evaluated video, as an HTML fragment.

Shows the video's key frames (RGB runs; pose-only runs show the poses at the key-clip centres instead), the
prediction with its top class probabilities, the summed contribution of each concept type, and per concept type
the ``k`` concepts contributing most *for* the explained class and the ``k`` contributing most *against* it
(contribution = standardised activation × weight, among concepts with a non-zero weight for the class), each with
a signed bar. A motion concept is shown as an animation of its medoid pose sequence beside the video's key clip
that matches it (the clip assigned to that concept, else the nearest one by cosine to the concept centroid), plus
PNG strips of both; objects and scenes are text. "video has it" is the video's own concept label: for motion,
whether one of its key clips was assigned to the concept; for objects and scenes, its annotation. Images are
embedded as data URIs.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dance.data.video import is_video, read_video
from dance.errors import DanceError
from dance.explain.contributions import ConceptContribution, contributions, explain_concepts
from dance.explain.contributions import _probability as concept_probability  # the CLI's "present" column
from dance.explain.report.data import RunData
from dance.explain.report.html import bar, escape, file_uri, img, jpeg_uri, table
from dance.motion.clips import clip_vectors
from dance.motion.discovery import unit_rows
from dance.motion.render import save_animation, save_strip


@dataclass
class SampleFigure:
    html: str
    video_id: str
    label: str
    predicted: str
    correct: bool


def signed_top(model, z: np.ndarray, cls: int, k: int = 3) -> dict[str, list[ConceptContribution]]:
    """Per concept type: the ``k`` largest positive then the ``k`` most negative contributions to class ``cls``
    (concepts with a zero weight for the class are left out: they cannot explain it)."""
    contrib = contributions(model, z[None, :], cls)[0]
    out: dict[str, list[ConceptContribution]] = {}
    for b in model.blocks_:
        cols = np.arange(b.start, b.stop)
        cols = cols[model.W_[cls, cols] != 0]
        pos = cols[contrib[cols] > 0]
        neg = cols[contrib[cols] < 0]
        chosen = list(pos[np.argsort(-contrib[pos], kind="stable")][:k]) + \
            list(neg[np.argsort(contrib[neg], kind="stable")][:k])
        out[b.type] = [ConceptContribution(b.type, b.names[j - b.start], int(j), float(z[j]),
                                           float(model.W_[cls, j]), float(contrib[j]),
                                           concept_probability(model, b, float(z[j]), int(j))) for j in chosen]
    return out


def _key_frames(data: RunData, row: int, tmp: Path) -> tuple[str, str]:
    """(heading, html) of the video's key frames, or of its key poses when there are no pixels."""
    rec = data.index.records[row]
    info = data.keyclips["videos"].get(rec.video_id, {})
    centres = sorted(set(int(c) for c in info.get("centres", [])))
    if is_video(rec.path) and rec.path.exists():
        try:
            frames = read_video(rec.path)
            keep = [min(c, len(frames) - 1) for c in centres] or [len(frames) // 2]
            return "key frames", "".join(img(jpeg_uri(frames[c]), f"frame {c}", f"frame {c}") for c in keep)
        except DanceError:
            pass  # unreadable now: fall back to the poses the run extracted
    clips = data.clip_rows.get(row)
    if clips is None or len(clips) == 0:
        return "key poses", '<span class="small">no key clips were extracted from this video</span>'
    order = clips[np.argsort(data.poses["clip_centre"][clips], kind="stable")]
    mid = data.poses["keypoints"].shape[1] // 2
    strip = save_strip(tmp / f"keyposes_{row}.png", data.poses["keypoints"][order, mid], data.skeleton,
                       n=len(order), size=80, scores=data.poses["scores"][order, mid])
    where = ", ".join(str(int(c)) for c in np.sort(data.poses["clip_centre"][clips]))
    return "key poses (pose-only data: the pose at each key-clip centre)", img(
        file_uri(strip), "key poses", f"frames {where}")


def _matching_clip(data: RunData, row: int, concept: int) -> tuple[int | None, str]:
    """The video's key clip (index into poses.npz) that shows motion concept ``concept``, and how it was found."""
    clips = data.clip_rows.get(row)
    if clips is None or len(clips) == 0:
        return None, ""
    assigned = clips[data.motion["clip_concept"][clips] == concept]
    if len(assigned):
        return int(assigned[0]), "assigned clip"
    flat = unit_rows(clip_vectors(data.poses["keypoints"][clips]))
    cent = unit_rows(data.motion["centroids"][concept:concept + 1])[0]
    best = int(np.argmax(flat @ cent))
    return int(clips[best]), "nearest clip"


def medoid(data: RunData, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """A motion concept's medoid pose sequence and its joint scores."""
    j = data.motion_concepts["names"].index(name)
    clip = int(data.motion["medoid_clip"][j]) if "medoid_clip" in data.motion else -1
    scores = data.poses["scores"][clip] if 0 <= clip < len(data.poses["scores"]) else None
    return data.motion["medoid_keypoints"][j], scores


def _motion_visual(data: RunData, row: int, name: str, tmp: Path, size: int) -> str:
    j = data.motion_concepts["names"].index(name)
    med, med_sc = medoid(data, name)
    clip, how = _matching_clip(data, row, j)
    if clip is None:
        gif = save_animation(tmp / f"{name}_{row}.gif", [med], data.skeleton, [f"{name} medoid"], size=size,
                             scores=[med_sc])
        return img(file_uri(gif), f"{name} medoid", f"{name}: medoid pose sequence")
    centre = int(data.poses["clip_centre"][clip])
    kp, sc = data.poses["keypoints"][clip], data.poses["scores"][clip]
    gif = save_animation(tmp / f"{name}_{row}.gif", [med, kp], data.skeleton, [f"{name} medoid", f"video @{centre}"],
                         size=size, scores=[med_sc, sc])
    s1 = save_strip(tmp / f"{name}_{row}_m.png", med, data.skeleton, n=6, size=36, scores=med_sc)
    s2 = save_strip(tmp / f"{name}_{row}_v.png", kp, data.skeleton, n=6, size=36, scores=sc)
    return (f'<div style="display:flex;align-items:center;gap:8px">'
            f'{img(file_uri(gif), name, f"{name}: medoid (left) and this video ({how}, frame {centre})")}'
            f'<div class="small">medoid<br>{img(file_uri(s1), f"{name} medoid strip")}<br>'
            f'this video ({escape(how)})<br>{img(file_uri(s2), "video clip strip")}</div></div>')


def _in_video(data: RunData, row: int, c: ConceptContribution) -> str:
    """The video's own label for the concept (motion: a key clip assigned to it; objects/scenes: annotation)."""
    if c.type == "motion":
        j = data.motion_concepts["names"].index(c.name)
        if not data.motion["has_label"][row]:
            return "–"
        return "yes" if data.motion["labels"][row, j] > 0 else "no"
    names = data.spatial_names.get(c.type, [])
    if c.name not in names or not data.spatial["has_label"][row]:
        return "–"
    return f"{float(data.spatial[c.type][row, names.index(c.name)]):.2f}"


def sample_figure(data: RunData, i: int, k: int = 3, gif_size: int = 112) -> SampleFigure:
    """The explanation figure of the ``i``-th evaluated (test) video of a run, explaining its predicted class."""
    test = data.test
    model = data.model
    row = int(test.rows[i])
    rec = data.index.records[row]
    z = model.concept_activations(test.X[i : i + 1])
    e = explain_concepts(model, z, k=k)[0]
    cls = model.class_index(e.predicted)
    top = signed_top(model, z[0], cls, k)
    correct = e.predicted == rec.label
    base = int(test.base_pred[i])
    base_txt = model.classes_[base] if base >= 0 else "–"
    mark = '<span class="ok">✓ correct</span>' if correct else '<span class="bad">✗ wrong</span>'
    probs = ", ".join(f"{escape(c)} {p:.2f}" for c, p in e.probabilities.items())
    with tempfile.TemporaryDirectory(prefix="dance-report-") as d:
        tmp = Path(d)
        heading, frames = _key_frames(data, row, tmp)
        scale = max([abs(c.contribution) for cs in top.values() for c in cs] + [1e-9])
        share_scale = max([abs(v) for v in e.type_shares.values()] + [1e-9])
        shares = table(["concept type", "summed contribution", ""],
                       [[escape(t), f"{v:+.3f}", bar(v, share_scale)] for t, v in e.type_shares.items()],
                       numeric=(1,))
        parts = []
        for ctype, items in top.items():
            if not items:
                parts.append(f"<h4>{escape(ctype)} concepts</h4><p class='small'>no {escape(ctype)} concept has a "
                             f"weight for {escape(e.predicted)}</p>")
                continue
            rows = []
            for c in items:
                visual = f"<b>{escape(c.name)}</b>"
                if ctype == "motion":
                    visual += "<br>" + _motion_visual(data, row, c.name, tmp, gif_size)
                rows.append([visual, _in_video(data, row, c), c.present, f"{c.activation:+.2f}", f"{c.weight:+.3f}",
                             f"{c.contribution:+.3f}", bar(c.contribution, scale)])
            parts.append(f"<h4>{escape(ctype)} concepts (top {k} for, top {k} against)</h4>" + table(
                ["concept", "video has it", "predicted present", "activation z", "weight", "contribution",
                 "against | for"], rows, numeric=(2, 3, 4, 5)))
    html = (f'<div class="sample"><h3>{escape(rec.video_id)} — true <b>{escape(rec.label)}</b>, DANCE predicts '
            f'<b>{escape(e.predicted)}</b> {mark}</h3>'
            f'<p class="small">top classes: {probs}; baseline predicts {escape(base_txt)}</p>'
            f'<h4>{escape(heading)}</h4><div class="frames">{frames}</div>'
            f"<h4>contributions to the logit of {escape(e.predicted)} by concept type</h4>{shares}"
            + "".join(parts) + "</div>")
    return SampleFigure(html, rec.video_id, rec.label, e.predicted, correct)


def choose_samples(data: RunData, n_correct: int = 3, n_wrong: int = 3) -> list[int]:
    """Positions in the test split to explain: the most confident mistakes, and confident correct predictions
    of different classes (deterministic)."""
    test = data.test
    proba = data.model.predict_proba(test.X).max(axis=1)
    wrong = np.flatnonzero(test.pred != test.y)
    wrong = list(wrong[np.argsort(-proba[wrong], kind="stable")][:n_wrong])
    right = np.flatnonzero(test.pred == test.y)
    right = right[np.argsort(-proba[right], kind="stable")]
    picked: list[int] = []
    seen: set[int] = set()
    for i in right:  # one per class first, then fill up
        if len(picked) < n_correct and int(test.y[i]) not in seen:
            picked.append(int(i))
            seen.add(int(test.y[i]))
    for i in right:
        if len(picked) >= n_correct:
            break
        if int(i) not in picked:
            picked.append(int(i))
    return picked + [int(i) for i in wrong]
