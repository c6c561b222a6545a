"""Model-level explanation (paper Fig. 5): a Sankey diagram of final-layer weights from concepts to classes.

For a pair (or any set) of classes, each class's ``top`` concepts with the largest *positive* weights are drawn on
the left, the classes on the right, and every positive weight between a drawn concept and a drawn class is a link
whose width is the weight. A concept with a positive weight for two or more of the drawn classes is *shared* (light
khaki, as in the paper); one that supports a single class is *distinguishing* (pink).

Negative weights (a concept that speaks *against* a class) cannot be a Sankey flow. With ``negative="show"`` (the
default) the negative weights between drawn concepts and drawn classes are links of width ``|w|`` in translucent
red, with the signed weight in the hover text; they never make a concept "shared". With ``negative="omit"`` they
are left out. Either way the figure's subtitle counts the negative weights of the drawn classes that are not drawn,
and ``fig.layout.meta`` lists every drawn link with its signed weight.

PNG export needs kaleido (>= 1) and a Chrome/Chromium (Debian: ``apt-get install chromium``); :func:`save_sankey`
always writes the HTML and reports, without raising, when a PNG cannot be made.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dance.errors import DanceError
from dance.model.dance import DanceModel

log = logging.getLogger(__name__)

SHARED = "#d8c878"  # light khaki: concept supports two or more of the drawn classes
DISTINCT = "#ee8fb4"  # pink: concept supports one drawn class only
CLASS_NODE = "#4a5a7a"
NEGATIVE_LINK = "rgba(205, 50, 50, 0.40)"
LINK_ALPHA = 0.55


@dataclass
class SankeyLink:
    concept: int  # column of W (index into model.concept_names_)
    cls: int  # row of W (class index)
    weight: float  # signed W[cls, concept]


@dataclass
class SankeyData:
    """What a Sankey shows: classes, concepts (columns of W), links, and which concepts are shared."""

    classes: list[int]
    concepts: list[int]
    links: list[SankeyLink]
    shared: set[int] = field(default_factory=set)
    negative_not_drawn: int = 0  # negative weights of the drawn classes that have no link


def concept_label(model: DanceModel, col: int) -> str:
    """A readable concept name: motion concepts by name, objects and scenes with their type."""
    ctype, name = model.concept_names_[col].split(":", 1)
    return name if ctype == "motion" else f"{name} ({ctype})"


def _hex_rgba(colour: str, alpha: float) -> str:
    c = colour.lstrip("#")
    r, g, b = (int(c[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r}, {g}, {b}, {alpha})"


def sankey_data(model: DanceModel, classes: Sequence[str | int], top: int = 8, negative: str = "show") -> SankeyData:
    """Select the concepts and links of a Sankey (see the module docstring)."""
    model._check_fitted()
    if negative not in ("show", "omit"):
        raise DanceError(f"negative must be 'show' or 'omit', not '{negative}'")
    if top < 1:
        raise DanceError(f"top must be >= 1, got {top}")
    rows = list(dict.fromkeys(model.class_index(c) for c in classes))
    if not rows:
        raise DanceError("give at least one class for the Sankey diagram")
    W = np.asarray(model.W_)
    chosen: list[int] = []
    for c in rows:
        pos = np.flatnonzero(W[c] > 0)
        chosen += [int(j) for j in pos[np.argsort(-W[c, pos], kind="stable")][:top]]
    concepts = list(dict.fromkeys(chosen))
    links = [SankeyLink(j, c, float(W[c, j])) for j in concepts for c in rows if W[c, j] > 0]
    support: dict[int, int] = {}
    for link in links:
        support[link.concept] = support.get(link.concept, 0) + 1
    shared = {j for j, n in support.items() if n >= 2}
    negatives = [SankeyLink(j, c, float(W[c, j])) for j in concepts for c in rows if W[c, j] < 0]
    total_negative = int((W[rows] < 0).sum())
    if negative == "show":
        links += negatives
    drawn_negative = len(negatives) if negative == "show" else 0

    # order: concepts distinguishing the first class, shared ones between the classes they support, and so on
    def key(j: int) -> tuple[float, float]:
        users = [i for i, c in enumerate(rows) if W[c, j] > 0]
        place = 2.0 * float(np.mean(users)) + (1.0 if len(users) > 1 else 0.0)
        return place, -float(W[rows, j].clip(min=0).sum())

    concepts.sort(key=key)
    return SankeyData(rows, concepts, links, shared, total_negative - drawn_negative)


def sankey_figure(model: DanceModel, classes: Sequence[str | int], top: int = 8, negative: str = "show",
                  title: str | None = None):
    """A plotly Sankey figure of concept → class weights for ``classes`` (names or indices).

    Link width = weight (``|weight|`` for the red negative links); node colours: shared concepts khaki,
    distinguishing concepts pink, classes slate. Returns a ``plotly.graph_objects.Figure``.
    """
    import plotly.graph_objects as go

    data = sankey_data(model, classes, top=top, negative=negative)
    n_con = len(data.concepts)
    node_of = {j: i for i, j in enumerate(data.concepts)}
    labels = [concept_label(model, j) for j in data.concepts] + [model.classes_[c] for c in data.classes]
    colours = [SHARED if j in data.shared else DISTINCT for j in data.concepts] + [CLASS_NODE] * len(data.classes)
    kinds = ["shared concept" if j in data.shared else "distinguishing concept" for j in data.concepts]
    kinds += ["class"] * len(data.classes)
    source = [node_of[link.concept] for link in data.links]
    target = [n_con + data.classes.index(link.cls) for link in data.links]
    value = [abs(link.weight) for link in data.links]
    link_colour = [NEGATIVE_LINK if link.weight < 0 else _hex_rgba(colours[node_of[link.concept]], LINK_ALPHA)
                   for link in data.links]
    link_text = [f"{'against' if link.weight < 0 else 'for'} {model.classes_[link.cls]}" for link in data.links]
    signed = [link.weight for link in data.links]
    x, y = _positions(data, value, source, target, n_con)
    names = [model.classes_[c] for c in data.classes]
    heading = title or ("Final-layer weights: " + " vs ".join(names))
    notes = [f"top {top} positive concepts per class", "khaki: shared", "pink: distinguishing"]
    if negative == "show":
        notes.append("red: negative weight (width |w|)")
    if data.negative_not_drawn:
        notes.append(f"{data.negative_not_drawn} other negative weights not drawn")
    sankey = go.Sankey(
        arrangement="snap",
        valueformat=".3f",
        node=dict(label=labels, color=colours, pad=14, thickness=16, line=dict(color="#555", width=0.5),
                  x=x, y=y, customdata=kinds, hovertemplate="%{label}<br>%{customdata}<extra></extra>"),
        link=dict(source=source, target=target, value=value, color=link_colour,
                  customdata=np.array([signed, link_text], dtype=object).T.tolist() if signed else [],
                  hovertemplate="%{source.label} → %{target.label}<br>weight %{customdata[0]:+.3f} "
                                "(%{customdata[1]})<extra></extra>"),
    )
    # plotly.js cannot lay out a Sankey with nodes but no links ("Invalid array length"): draw none then
    fig = go.Figure(sankey if data.links else None)
    height = max(320, 30 * max(n_con, len(data.classes)) + 130)
    fig.update_layout(
        template="none", height=height, width=900, font=dict(size=13, family="Helvetica, Arial, sans-serif"),
        margin=dict(l=20, r=20, t=70, b=20),
        title=dict(text=f"{heading}<br><sup>{' · '.join(notes)}</sup>", x=0.01, font=dict(size=15)),
        meta={"classes": names, "links": [
            {"concept": model.concept_names_[link.concept], "class": model.classes_[link.cls], "weight": link.weight}
            for link in data.links], "shared": [model.concept_names_[j] for j in sorted(data.shared)],
            "negative_not_drawn": data.negative_not_drawn},
    )
    if not data.links:
        fig.add_annotation(text="no positive weights for these classes", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper")
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
    return fig


def _positions(data: SankeyData, value: list[float], source: list[int], target: list[int],
               n_con: int) -> tuple[list[float], list[float]]:
    """Node positions: concepts in a left column in ``data.concepts`` order, classes in a right column."""
    n = n_con + len(data.classes)
    size = np.zeros(n)
    for s, t, v in zip(source, target, value):
        size[s] += v
        size[t] += v
    x = [0.001] * n_con + [0.999] * len(data.classes)
    y = [0.5] * n
    for nodes in (range(n_con), range(n_con, n)):
        nodes = list(nodes)
        if not nodes:
            continue
        s = size[nodes]
        s = s / s.sum() if s.sum() > 0 else np.full(len(nodes), 1.0 / len(nodes))
        gap = 0.04 if len(nodes) > 1 else 0.0
        scale = 1.0 - gap * (len(nodes) - 1) if len(nodes) > 1 else 1.0
        scale = max(scale, 0.3)
        pos, total = 0.0, s.sum() * scale + gap * (len(nodes) - 1)
        for i, node in enumerate(nodes):
            centre = (pos + s[i] * scale / 2) / max(total, 1e-9)
            y[node] = float(min(max(centre, 0.001), 0.999))
            pos += s[i] * scale + gap
    return x, y


@dataclass
class SankeyFiles:
    html: Path
    png: Path | None  # None when no static renderer worked
    png_error: str | None = None  # why there is no PNG (when one was asked for)


def png_renderer_error() -> str | None:
    """None when plotly can write static images here, else why not (kaleido missing, no Chrome, ...)."""
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return "kaleido is not installed (pip install 'kaleido>=1'; it also needs Chrome/Chromium)"
    return None


def save_sankey(fig, path_html: Path | str, path_png: Path | str | None = None) -> SankeyFiles:
    """Write the figure as a self-contained HTML file (plotly.js inlined, opens offline) and, when asked and an
    offline renderer works (kaleido + Chrome/Chromium), as a PNG. A PNG that cannot be made is logged and
    reported in the result's ``png_error``; it never raises."""
    path_html = Path(path_html)
    path_html.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(path_html, include_plotlyjs=True, full_html=True, config={"displaylogo": False})
    if path_png is None:
        return SankeyFiles(path_html, None)
    path_png = Path(path_png)
    problem = png_renderer_error()
    if problem is None:
        try:
            path_png.parent.mkdir(parents=True, exist_ok=True)
            fig.write_image(path_png, scale=2)
            return SankeyFiles(path_html, path_png)
        except Exception as e:  # noqa: BLE001 - kaleido/Chrome fail in many ways; a PNG is optional
            problem = f"static export failed ({type(e).__name__}: {str(e).strip().splitlines()[0][:300]})"
    log.warning("no PNG for %s: %s", path_png, problem)
    return SankeyFiles(path_html, None, problem)
