"""Assemble the HTML report of a finished run: one self-contained file (plotly.js inlined once, images as data URIs,
nothing loaded from the network)."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from dance.explain.report.accuracy import accuracy_table, confused_pairs, per_class_table
from dance.explain.report.catalogue import motion_catalogue, spatial_catalogue
from dance.explain.report.data import RunData
from dance.explain.report.figure import choose_samples, medoid, sample_figure
from dance.explain.report.html import escape, file_uri, img, page
from dance.explain.report.sanity import sanity_section
from dance.explain.report.scene_bias import scene_bias_section
from dance.explain.report.selection import selection_section
from dance.explain.sankey import sankey_figure, save_sankey
from dance.motion.render import save_strip
from dance.progress import Reporter
from dance.runs import atomic_write_text

PLOTLY_CONFIG = {"displaylogo": False, "responsive": False, "modeBarButtonsToRemove": ["sendDataToCloud"]}


def _motion_legend(data: RunData, fig) -> str:
    """Strips of the motion concepts a Sankey draws, so its node names can be read as motions."""
    names = list(dict.fromkeys(link["concept"].split(":", 1)[1] for link in fig.layout.meta["links"]
                               if link["concept"].startswith("motion:")))
    if not names:
        return ""
    items = []
    with tempfile.TemporaryDirectory(prefix="dance-legend-") as d:
        for name in names:
            kp, sc = medoid(data, name)
            strip = save_strip(Path(d) / f"{name}.png", kp, data.skeleton, n=5, size=34, scores=sc)
            items.append(f'<div class="small" style="margin:2px 10px 2px 0">{escape(name)}<br>'
                         f'{img(file_uri(strip), name)}</div>')
    return ('<div class="small">motion concepts in this diagram (medoid pose sequences):</div>'
            f'<div style="display:flex;flex-wrap:wrap">{"".join(items)}</div>')


@dataclass
class ReportResult:
    path: Path
    size_bytes: int
    sankeys: int
    samples: int
    notes: list[str] = field(default_factory=list)  # e.g. Sankey PNGs that could not be made


def _pairs_section(data: RunData, pairs: int, top: int, sankey_dir: Path | None, notes: list[str],
                   reporter: Reporter) -> tuple[str, int]:
    model = data.model
    found = confused_pairs(data, pairs)
    if not found:
        return "<p>Fewer than two classes: no pairs to compare.</p>", 0
    parts = ['<p class="note">Each diagram shows the final-layer weights of a class pair (DANCE paper, Fig. 5): on '
             f"the left each class's top {top} concepts by positive weight, links as wide as the weight. Khaki: "
             "concepts with a positive weight for both classes (shared); pink: concepts supporting one class only "
             "(distinguishing). Negative weights between the drawn concepts and classes are red links as wide as "
             "|weight|; the subtitle counts the classes' other negative weights, which are not drawn. Hover for "
             "exact weights.</p>"]
    with reporter.task("sankey diagrams", len(found)) as advance:
        for p in found:
            a, b = model.classes_[p.a], model.classes_[p.b]
            if p.total:
                head = (f"{escape(a)} ↔ {escape(b)}: {p.a_as_b} test video(s) of {escape(a)} predicted as "
                        f"{escape(b)}, {p.b_as_a} the other way")
            else:
                head = f"{escape(a)} ↔ {escape(b)}: not confused; most similar weights (cosine {p.similarity:.2f})"
            fig = sankey_figure(model, [p.a, p.b], top=top)
            div = fig.to_html(full_html=False, include_plotlyjs=False, config=PLOTLY_CONFIG)
            parts.append(f"<h3>{head}</h3><div class='sankey'>{div}</div>{_motion_legend(data, fig)}")
            if sankey_dir is not None:
                stem = f"sankey_{a}__{b}".replace("/", "_")
                files = save_sankey(fig, sankey_dir / f"{stem}.html", sankey_dir / f"{stem}.png")
                if files.png_error and files.png_error not in notes:
                    notes.append(f"Sankey PNGs not written: {files.png_error}")
            advance(1)
    return "".join(parts), len(found)


def build_report(run: Path | str, out: Path | str | None = None, *, pairs: int = 3, n_correct: int = 3,
                 n_wrong: int = 3, top: int = 8, k: int = 3, all_gifs: bool = False, dataset: str | None = "auto",
                 sankey_dir: Path | str | None = None, reporter: Reporter | None = None) -> ReportResult:
    """Write the report of a finished run to ``out`` (default ``RUN/report.html``) and return where and how big.

    ``pairs``: most confused class pairs shown with a Sankey; ``n_correct`` / ``n_wrong``: test predictions
    explained; ``top``: concepts per class in a Sankey; ``k``: concepts per type (for and against) in an
    explanation; ``all_gifs``: animate every motion concept in the catalogue (default: only those the final layer
    uses); ``dataset``: Table 1 dataset to compare with ("auto", a name, or "none"); ``sankey_dir``: also save
    each Sankey there as HTML (+ PNG when kaleido and Chrome work).
    """
    from plotly.offline import get_plotlyjs

    reporter = reporter or Reporter()
    data = RunData(run)
    out = Path(out) if out is not None else data.root / "report.html"
    notes: list[str] = []
    start = time.time()
    sankeys, n_sankeys = _pairs_section(data, pairs, top, Path(sankey_dir) if sankey_dir else None, notes,
                                        reporter)
    picks = choose_samples(data, n_correct, n_wrong)
    figures = []
    with reporter.task("explaining test videos", len(picks)) as advance:
        for i in picks:
            figures.append(sample_figure(data, i, k=k))
            advance(1)
    right = [f.html for f in figures if f.correct]
    wrong = [f.html for f in figures if not f.correct]
    explanations = ('<p class="note">Sample-level explanations (DANCE paper, Fig. 4): contribution = standardised '
                    "concept activation × the final-layer weight for the predicted class; per concept type the "
                    f"{k} largest contributions for and the {k} largest against the prediction (among concepts "
                    "with a non-zero weight for it). Correct predictions: the most confident ones of different "
                    "classes; wrong ones: the most confident mistakes.</p>"
                    f"<h3>Correct predictions ({len(right)})</h3>" + ("".join(right) or "<p>none</p>")
                    + f"<h3>Wrong predictions ({len(wrong)})</h3>" + ("".join(wrong) or "<p>none: every "
                                                                      "evaluated video is classified correctly</p>"))
    catalogue = motion_catalogue(data, all_gifs=all_gifs, reporter=reporter) + \
        "<h3>Object and scene concepts</h3>" + spatial_catalogue(data)
    index = data.index
    intro = (f'<p class="note">Run <code>{escape(str(data.root))}</code> · data: {escape(index.source)} · '
             f"{len(index.records)} videos, {len(index.classes)} classes · written "
             f"{time.strftime('%Y-%m-%d %H:%M')}. Self-contained: opens offline.</p>")
    sections = [
        ("accuracy", "Accuracy", accuracy_table(data, dataset)),
        ("per-class", "Per-class accuracy", per_class_table(data)),
        ("selection", "Settings chosen inside the run", selection_section(data)),
        ("pairs", "Most confused class pairs", sankeys),
        ("explanations", "Explanations of test predictions", explanations),
        ("catalogue", "Concept catalogue", catalogue),
        ("sanity", "Sanity check", sanity_section(data)),
    ]
    scene_bias = scene_bias_section(data)
    if scene_bias is not None:
        sections.insert(3, ("scene-bias", "Action vs scene", scene_bias))
    html = page(f"DANCE report — {data.root.name}", sections, head_script=get_plotlyjs(), intro=intro)
    atomic_write_text(out, html)
    out.chmod(0o644)  # a report is for sharing (the atomic write's temporary file is private)
    reporter.info(f"  report written in {time.time() - start:.1f} s")
    return ReportResult(out, out.stat().st_size, n_sankeys, len(figures), notes)
