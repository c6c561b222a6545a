"""The HTML report (`dance report`) and the Sankey diagram: self-contained file, sections, errors, link widths."""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dance.cli import app
from dance.config import load_settings
from dance.data.synthetic import generate
from dance.errors import DanceError, StageError, VideoDecodeError
from dance.explain import sankey as sankey_mod
from dance.explain.report import build_report
from dance.explain.report.data import RunData
from dance.explain.report.figure import sample_figure
from dance.explain.sankey import DISTINCT, NEGATIVE_LINK, SHARED, sankey_figure, save_sankey
from dance.model.dance import ConceptBlock, DanceModel
from dance.paper import paper_dataset
from dance.pipeline import run_pipeline
from dance.pipeline.runner import Context
from dance.runs import RunDir

FAST = ["keyclips.n_clips=2", "keyclips.clip_len=8", "features.n_frames=8", "features.size=64",
        "train.concept_steps=60", "train.n_lambdas=5"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, single_thread) -> Path:
    """A finished run on 60 small synthetic videos (every stage, catalogue included). The baseline's probe tries
    one C instead of the grid: its accuracy does not matter here and the grid is most of the pipeline's time."""
    from dance.model import baseline
    from dance.pipeline import train

    data = tmp_path_factory.mktemp("synth")
    generate(data, n_videos=60, seed=3, size=64, n_frames=16)
    run = tmp_path_factory.mktemp("report") / "run"
    settings = load_settings(None, [f"data.path={data / 'annotations.csv'}", f"poses.path={data / 'poses_gt'}",
                                    f"spatial.path={data / 'context_labels.csv'}", *FAST])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train, "fit_linear_probe", lambda X, y, Xv, yv, seed=0: baseline.fit_linear_probe(
            X, y, Xv, yv, grid=(1.0,), seed=seed))
        run_pipeline(Context(settings, RunDir(run)))
    return run


class _Refs(HTMLParser):
    """Collects (tag, attribute, value) of every src / href in real tags (script bodies are not parsed)."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.refs += [(tag, k, v or "") for k, v in attrs if k in ("src", "href")]


def _external(html: str) -> list[tuple[str, str, str]]:
    """References that would load something from the network: any src, and href other than plain <a> links."""
    p = _Refs()
    p.feed(html)
    remote = ("http:", "https:", "//", "ftp:")
    return [(t, k, v) for t, k, v in p.refs if v.strip().lower().startswith(remote) and not (t == "a" and k == "href")]


@pytest.fixture(scope="module")
def report_html(tiny_run: Path, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("out") / "report.html"
    result = build_report(tiny_run, out, n_correct=1, n_wrong=1, pairs=2)
    assert result.path == out and out.is_file() and result.size_bytes == out.stat().st_size
    assert result.sankeys >= 1 and result.samples >= 1
    return out.read_text(encoding="utf-8")


def test_report_is_self_contained(report_html: str) -> None:
    assert report_html.startswith("<!DOCTYPE html>")
    assert _external(report_html) == []
    assert "<link" not in report_html.lower()  # no stylesheets from anywhere
    assert report_html.count("* plotly.js v") == 1  # the library inlined exactly once
    assert "cdn.plot.ly" not in report_html.split("* plotly.js v")[0]  # nothing before the bundle points out


def test_report_sections(report_html: str) -> None:
    assert 'id="accuracy"' in report_html and "top-1 %" in report_html
    assert "Baseline w/o interpretability" in report_html
    assert 'id="per-class"' in report_html
    assert report_html.count('class="plotly-graph-div"') >= 1  # at least one Sankey
    assert "Plotly.newPlot" in report_html
    assert "data:image/gif;base64," in report_html  # an animated motion concept
    assert "data:image/png;base64," in report_html
    assert 'id="catalogue"' in report_html and "motion_000" in report_html
    assert "Object and scene concepts" in report_html
    assert 'class="sample"' in report_html  # sample explanation figures
    assert "<th>predicted present</th>" in report_html
    assert "dance sanity" in report_html  # no sanity.json yet: says how to make one
    assert "DANCE paper, Table 1" not in report_html  # synthetic data matches no paper dataset
    # the run's own choices with their evidence: the FINCH partition and the concept layer / activation
    chosen = report_html.split('id="selection"')[1].split('<section')[0]
    assert "cross-validated accuracy" in chosen and "validation accuracy" in chosen and "<b>" in chosen


def test_external_reference_check_catches_links() -> None:
    assert _external('<img src="https://x.org/a.png"><script src="//cdn.x/p.js"></script>') != []
    assert _external('<a href="https://arxiv.org">paper</a><img src="data:image/png;base64,AA">') == []


def test_cli_report_and_sanity_section(tiny_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "sanity").mkdir()
    (run / "sanity" / "sanity.json").write_text(json.dumps(
        {"n_videos": 12, "prediction_changed": 0.4167, "motion_explanation_changed": 0.75, "ok": True,
         "per_class": {"a": 1}}))
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", str(run), "--out", str(out), "--correct", "1", "--wrong", "0",
                                      "--pairs", "1"])
    assert result.exit_code == 0, result.output
    assert "report:" in result.output and out.is_file()
    html = out.read_text(encoding="utf-8")
    assert "prediction_changed" in html and "0.4167" in html and "motion_explanation_changed" in html
    assert "per_class" not in html.split('id="sanity"')[1]  # only top-level numeric fields


def test_missing_stage_is_a_clear_error(tiny_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "evaluate" / "manifest.json").unlink()
    with pytest.raises(StageError, match="dance run"):
        build_report(run, tmp_path / "r.html")
    result = CliRunner().invoke(app, ["report", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "dance run" in result.output and "Traceback" not in result.output


def test_sample_figure_falls_back_to_poses(tiny_run: Path, monkeypatch) -> None:
    from dance.explain.report import figure

    def broken(*args, **kwargs):
        raise VideoDecodeError("gone")

    data = RunData(tiny_run)
    with_video = sample_figure(data, 0)
    assert "key frames" in with_video.html and "data:image/jpeg;base64," in with_video.html
    monkeypatch.setattr(figure, "read_video", broken)
    without = sample_figure(data, 0)
    assert "key poses" in without.html and "data:image/jpeg" not in without.html
    assert "against | for" in without.html


def test_paper_dataset_detection() -> None:
    from dance.data.datasets.penn_action import PENN_CLASSES

    assert paper_dataset(list(PENN_CLASSES)) == "Penn Action"
    assert paper_dataset(["Boxing", "HandClapping", "HandWaving", "Jogging", "Running", "Walking"]) == "KTH"
    assert paper_dataset(["a", "b"]) is None


def test_paper_numbers_on_request_and_unknown_dataset(tiny_run: Path) -> None:
    from dance.explain.report.accuracy import accuracy_table

    data = RunData(tiny_run)
    html = accuracy_table(data, "penn action")
    assert "DANCE paper, Table 1" in html and "97.8" in html and "98.1" in html
    with pytest.raises(DanceError, match="not a dataset of the paper.s Table 1"):
        accuracy_table(data, "imagenet")


def test_accuracy_table_shows_the_language_concept_baselines(tiny_run: Path) -> None:
    from dance.explain.report.accuracy import accuracy_table

    data = RunData(tiny_run)
    data.__dict__["summary"] = dict(data.summary) | {"variants": {
        "lfcbm-entangled": {"label": "LF-CBM w/ entangled language concepts", "test_accuracy": 0.5}}}
    html = accuracy_table(data, "KTH")
    assert "LF-CBM w/ entangled language concepts (this run" in html and "50.0" in html
    assert "87.4" in html  # its Table 1 number on KTH


def test_accuracy_table_shows_validation_accuracy_beside_test(tiny_run: Path) -> None:
    from dance.explain.report.accuracy import accuracy_table

    data = RunData(tiny_run)
    scores = {"validation_accuracy": 0.913, "baseline_validation_accuracy": 0.871, "n_val": 23}
    data.__dict__["summary"] = dict(data.summary) | scores
    html = accuracy_table(data, "none")
    assert "validation top-1 % (23 videos)" in html and "91.3" in html and "87.1" in html
    data.__dict__["summary"] = {k: v for k, v in data.summary.items() if k != "validation_accuracy"}
    assert "validation top-1" not in accuracy_table(data, "none")  # runs evaluated before it was recorded


def test_accuracy_table_shows_the_explanation_size(tiny_run: Path) -> None:
    from dance.explain.report.accuracy import accuracy_table

    data = RunData(tiny_run)
    size = {"n": 12, "terms": 22.0, "concepts": {"0.8": 5.0, "0.9": 6.5}}
    data.__dict__["summary"] = dict(data.summary) | {"explanation_size": size}
    html = accuracy_table(data, "none")
    assert "5.0 concepts hold 80%; 6.5 concepts hold 90% of a prediction's positive evidence" in html
    assert "out of 22.0 non-zero terms" in html
    # a hand-edited summary.json is shown escaped, not a crash
    data.__dict__["summary"] = dict(data.summary) | {"explanation_size": {"n": 1, "terms": "<b>",
                                                                         "concepts": {"most": "<i>"}}}
    html = accuracy_table(data, "none")
    assert "&lt;i&gt; concepts hold most" in html and "<b>" not in html.split("Explanation size")[1]
    for odd in ([1, 2], {"n": 3, "terms": 4, "concepts": "x"}):
        data.__dict__["summary"] = dict(data.summary) | {"explanation_size": odd}
        accuracy_table(data, "none")  # no crash
    data.__dict__["summary"] = {k: v for k, v in data.summary.items() if k != "explanation_size"}
    assert "Explanation size" not in accuracy_table(data, "none")  # runs evaluated before it was recorded


# ---------------------------------------------------------------------------------------------- Sankey


def _toy_model() -> DanceModel:
    """3 classes × (3 motion + 1 object) concepts with hand-set weights."""
    m = DanceModel()
    m.classes_ = ["a", "b", "c"]
    m.blocks_ = [ConceptBlock("motion", ["m0", "m1", "m2"], "bce", torch.nn.Identity(), 0, 3),
                 ConceptBlock("object", ["ball"], "cos3", torch.nn.Identity(), 3, 4)]
    m.W_ = np.array([[0.5, 0.2, 0.0, -0.3],
                     [0.4, -0.1, 0.7, 0.0],
                     [0.0, 0.0, 0.0, 0.9]], dtype=np.float32)
    m.b_ = np.zeros(3, np.float32)
    return m


def _links(fig) -> dict[tuple[str, str], tuple[float, str]]:
    s = fig.data[0]
    labels = list(s.node.label)
    return {(labels[a], labels[b]): (v, c) for a, b, v, c in zip(s.link.source, s.link.target, s.link.value,
                                                                 s.link.color)}


def test_sankey_widths_are_weights_and_shared_concepts_are_coloured_apart() -> None:
    model = _toy_model()
    fig = sankey_figure(model, ["a", "b"], top=5)
    links = _links(fig)
    W = model.W_
    assert links[("m0", "a")][0] == pytest.approx(W[0, 0])
    assert links[("m0", "b")][0] == pytest.approx(W[1, 0])
    assert links[("m1", "a")][0] == pytest.approx(W[0, 1])
    assert links[("m2", "b")][0] == pytest.approx(W[1, 2])
    # the negative weight between drawn nodes is a red link as wide as |w|; ball (only negative for a) is not drawn
    assert links[("m1", "b")] == (pytest.approx(0.1), NEGATIVE_LINK)
    assert "ball (object)" not in list(fig.data[0].node.label)
    assert fig.layout.meta["negative_not_drawn"] == 1
    colour = dict(zip(fig.data[0].node.label, fig.data[0].node.color))
    assert colour["m0"] == SHARED  # positive for both a and b
    assert colour["m1"] == DISTINCT and colour["m2"] == DISTINCT
    signed = {(d["concept"], d["class"]): d["weight"] for d in fig.layout.meta["links"]}
    assert signed[("motion:m1", "b")] == pytest.approx(-0.1)

    omitted = _links(sankey_figure(model, ["a", "b"], top=5, negative="omit"))
    assert ("m1", "b") not in omitted and len(omitted) == 4

    top1 = _links(sankey_figure(model, ["a", "c"], top=1))
    assert set(top1) == {("m0", "a"), ("ball (object)", "c")} | {("ball (object)", "a")}  # ball → a is negative
    assert top1[("ball (object)", "a")] == (pytest.approx(0.3), NEGATIVE_LINK)


def test_sankey_of_classes_without_positive_weights_has_no_trace() -> None:
    model = _toy_model()
    model.W_ = -np.abs(model.W_)  # every weight negative: nothing to draw
    fig = sankey_figure(model, ["a", "b"])
    # plotly.js fails on a Sankey with nodes but no links ("Invalid array length"), so there is no trace at all
    assert len(fig.data) == 0
    assert "no positive weights" in fig.layout.annotations[0].text
    assert fig.layout.meta["links"] == [] and fig.layout.meta["negative_not_drawn"] > 0


def test_sankey_rejects_unknown_classes() -> None:
    with pytest.raises(DanceError, match="unknown class"):
        sankey_figure(_toy_model(), ["a", "zzz"])


def test_save_sankey_html_always_png_never_raises(tmp_path: Path, monkeypatch) -> None:
    fig = sankey_figure(_toy_model(), ["a", "b"])
    monkeypatch.setattr(sankey_mod, "png_renderer_error", lambda: "kaleido is not installed")
    files = save_sankey(fig, tmp_path / "s.html", tmp_path / "s.png")
    assert files.html.is_file() and files.png is None and "kaleido" in files.png_error
    html = files.html.read_text(encoding="utf-8")
    assert "plotly-graph-div" in html and _external(html) == []

    def failing(*args, **kwargs):
        raise RuntimeError("Chrome not found\nmore lines")

    monkeypatch.setattr(sankey_mod, "png_renderer_error", lambda: None)
    monkeypatch.setattr(type(fig), "write_image", failing)
    files = save_sankey(fig, tmp_path / "t.html", tmp_path / "t.png")
    assert files.png is None and "Chrome not found" in files.png_error and files.html.is_file()
    assert save_sankey(fig, tmp_path / "u.html").png_error is None  # no PNG asked for
