"""The concept catalogue section: every concept with its rendering, training frequency and the classes using it.

Motion concepts used by the final layer (a non-zero weight for some class) are shown as an animated GIF of the
medoid pose sequence plus a PNG strip; the others only as a small PNG strip (``all_gifs=True`` animates every one)
and are folded away, which keeps a Penn Action report (765 motion concepts, ~70 used) at a few MB. Renderings are
made here from the run's poses, leaving joints with score 0 out (the catalogue stage's own images draw them);
the catalogue stage's json is used for training frequencies when present. Objects and scenes are text.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dance.explain.report.data import RunData
from dance.explain.report.figure import medoid
from dance.explain.report.html import escape, file_uri, img, table
from dance.motion.render import save_animation, save_strip


def _classes_cell(model, col: int | None) -> str:
    if col is None:
        return '<span class="small">not kept by the model</span>'
    w = model.W_[:, col]
    used = [int(j) for j in np.argsort(-np.abs(w), kind="stable") if w[j] != 0]
    if not used:
        return '<span class="small">none</span>'
    return ", ".join(f'{escape(model.classes_[j])} <span class="{"ok" if w[j] > 0 else "bad"}">{w[j]:+.3f}</span>'
                     for j in used)


def _motion_rows(data: RunData, animate: bool, names: list[str], cols: dict[str, int], tmp: Path,
                 advance: Callable[[int], None], gif_size: int, strip_size: int) -> list[list[str]]:
    info = {c["name"]: c for c in data.motion_concepts["concepts"]}
    n_train = max(int(data.train_rows().sum()), 1)
    rows = []
    for name in names:
        kp, sc = medoid(data, name)
        strip = save_strip(tmp / f"{name}.png", kp, data.skeleton, n=6, size=strip_size, scores=sc)
        visual = img(file_uri(strip), f"{name} strip")
        if animate:
            gif = save_animation(tmp / f"{name}.gif", [kp], data.skeleton, [name], size=gif_size, scores=[sc])
            visual = img(file_uri(gif), f"{name} animation") + visual
        c = info.get(name, {})
        videos = int(c.get("train_videos", 0))
        rows.append([f"<b>{escape(name)}</b>", f'<span class="cat">{visual}</span>',
                     f"{videos} ({100 * videos / n_train:.1f}%)", str(int(c.get("train_clips", 0))),
                     _classes_cell(data.model, cols.get(name))])
        advance(1)
    return rows


def motion_catalogue(data: RunData, all_gifs: bool = False, reporter=None, gif_size: int = 96,
                     strip_size: int = 40) -> str:
    """HTML of the motion concepts: used ones animated, unused ones as strips in a folded list."""
    from dance.progress import Reporter

    reporter = reporter or Reporter()
    model = data.model
    names = list(data.motion_concepts["names"])
    if not names:
        return "<p>No motion concepts.</p>"
    cols = {n.split(":", 1)[1]: i for i, n in enumerate(model.concept_names_) if n.startswith("motion:")}
    weight = {n: float(np.abs(model.W_[:, cols[n]]).sum()) if n in cols else 0.0 for n in names}
    freq = {c["name"]: int(c.get("train_videos", 0)) for c in data.motion_concepts["concepts"]}
    used = sorted([n for n in names if weight[n] > 0], key=lambda n: -weight[n])
    unused = sorted([n for n in names if weight[n] == 0], key=lambda n: -freq.get(n, 0))
    header = ["concept", "medoid pose sequence", "training videos", "training clips", "classes (weight)"]
    with tempfile.TemporaryDirectory(prefix="dance-catalogue-") as d, \
            reporter.task("rendering motion concepts", len(names)) as advance:
        tmp = Path(d)
        html = (f"<h3>Motion concepts used by the final layer ({len(used)} of {len(names)})</h3>"
                + table(header, _motion_rows(data, True, used, cols, tmp, advance, gif_size, strip_size),
                        numeric=(3,)))
        if unused:
            rows = _motion_rows(data, all_gifs, unused, cols, tmp, advance, gif_size, strip_size)
            what = "animations and strips" if all_gifs else "PNG strips only, to keep the report small"
            html += (f"<details><summary>{len(unused)} motion concepts not used by any class ({what}; "
                     f"most frequent first)</summary>{table(header, rows, numeric=(3,))}</details>")
    source = "catalogue stage json and " if data.catalogue is not None else ""
    return (f'<p class="note">Each motion concept is a cluster of normalised key-clip pose sequences (FINCH); it is '
            f"shown by its medoid, the training clip closest to the cluster centre. Training videos: videos of the "
            f"training split with a key clip in the concept (its label c<sup>m</sup>, Eq. 2); weights are the "
            f"final layer's, green for, red against (from the {source}model).</p>" + html)


def spatial_catalogue(data: RunData) -> str:
    """HTML of the object and scene concepts kept by the model, and of the dropped ones."""
    model = data.model
    train = data.train_rows() & data.spatial["has_label"].astype(bool)
    rows = []
    for col, (qualified, ctype) in enumerate(zip(model.concept_names_, model.concept_types_)):
        if ctype == "motion":
            continue
        name = qualified.split(":", 1)[1]
        names = data.spatial_names.get(ctype, [])
        freq = "–"
        if name in names and ctype in data.spatial and train.any():
            lab = data.spatial[ctype][train, names.index(name)]
            freq = f"{int((lab >= 0.5).sum())} ({100 * float((lab >= 0.5).mean()):.1f}%), mean label {lab.mean():.2f}"
        quality = model.concept_quality_.get(ctype, {}).get(name)
        rows.append([f"<b>{escape(name)}</b>", escape(ctype), freq, "–" if quality is None else f"{quality:.2f}",
                     _classes_cell(model, col)])
    html = ""
    if rows:
        html += ('<p class="note">Training videos: training videos whose label for the concept is ≥ 0.5. '
                 "Validation cos³: how well the concept layer reproduces the labels (concepts below the "
                 "interpretability cutoff are dropped).</p>"
                 + table(["concept", "type", "training videos", "validation cos³", "classes (weight)"], rows))
    else:
        html += "<p>No object or scene concepts in this run (e.g. a pose-only dataset).</p>"
    dropped = [d for d in model.dropped_ if d.type != "motion"] + [d for d in model.dropped_ if d.type == "motion"]
    if dropped:
        html += (f"<details><summary>{len(dropped)} concepts dropped before or after training</summary>"
                 + table(["type", "concept", "reason"], [[escape(d.type), escape(d.name), escape(d.reason)]
                                                         for d in dropped]) + "</details>")
    return html
