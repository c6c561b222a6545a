"""Issue 11 (hardening), items 5-6: settings checked before any stage, single stages check only what they read,
CLI messages printed as written, and a newcomer's first hour (demo next steps, demo folders, --poses, report)."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

import dance.cli as cli
from dance.cli import app
from dance.config import Settings, load_settings
from dance.errors import ConfigError, DanceError, StageError
from dance.pipeline import STAGES, run_pipeline
from dance.pipeline.runner import Context, Stage, run_stages, upstream_of
from dance.pipeline.validate import check_override, load_checked_settings, validate_settings
from dance.progress import Reporter, current_reporter, markup_safe, reporting
from dance.runs import RunDir

runner = CliRunner()


def _out(result) -> str:  # noqa: ANN001 - a click Result
    return " ".join(result.output.split())  # rich wraps long lines: compare without line breaks


# ------------------------------------------------------------------------------- settings checked first


def test_bad_set_fails_before_any_stage_and_is_not_saved(tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = runner.invoke(app, ["run", "--run", str(run), "--data", str(tmp_path / "annotations.csv"),
                                 "--set", "features.backbone=foo"])
    assert result.exit_code == 2
    assert "--set features.backbone=foo: unknown backbone 'foo'" in _out(result)
    assert "random-3dconv" in result.output and "Traceback" not in result.output
    assert not (run / "config.yaml").exists() and not (run / "index").exists()


def test_bad_set_on_an_existing_run_names_the_override_and_keeps_its_config(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    good = yaml.safe_dump(Settings().model_dump(), sort_keys=False)
    (run / "config.yaml").write_text(good)
    for item, expected in [
        ("features.backbone=random_3dconv", "unknown backbone 'random_3dconv'; did you mean: random-3dconv"),
        ("nonexistent.key=1", "--set nonexistent.key=1: unknown section 'nonexistent'"),
        ("featurs.backbone=videomae", "unknown section 'featurs'; did you mean: features"),
        ("features.backbon=videomae", "unknown key 'backbon' in section features; did you mean: backbone"),
        ("motion.distance=manhattan", "--set motion.distance=manhattan: Input should be"),
    ]:
        for command in (["run"], ["features"]):
            result = runner.invoke(app, [*command, "--run", str(run), "--set", item])
            assert result.exit_code == 2, result.output
            assert expected in _out(result), (item, result.output)
            assert "config.yaml" not in _out(result).split(expected)[0]  # the override is blamed, not the file
    assert (run / "config.yaml").read_text() == good


@pytest.mark.parametrize(("item", "expected"), [
    ("poses.source=mediapip", "unknown pose source 'mediapip'; did you mean: mediapipe"),
    ("data.format=ucf-101", "unknown dataset format 'ucf-101'; did you mean: ucf101"),
    ("spatial.source=xclp", "'xclp'; did you mean: xclip"),
    ("train.models=dance,lfcbm-entangld", "unknown model 'lfcbm-entangld'; did you mean: lfcbm-entangled"),
    ("train.models=lfcbm-entangled", "must include 'dance'"),
    ("language.concepts=kht", "no concept set 'kht'"),
    ("evaluate.paper_dataset=penn", "did you mean: Penn Action"),
])
def test_every_registry_name_is_checked_with_did_you_mean(item: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_override(item)
    assert str(info.value).startswith(f"--set {item}: ") and expected in str(info.value)
    with pytest.raises(ConfigError, match="did you mean|must include"):
        load_checked_settings(None, [item])


def test_a_bad_name_in_a_config_file_names_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("poses:\n  source: mediapip\n")
    with pytest.raises(ConfigError, match=r"poses\.source=mediapip in .*config\.yaml .*--set poses\.source"):
        load_checked_settings(cfg)
    assert load_checked_settings(cfg, ["poses.source=mediapipe"]).poses.source == "mediapipe"  # --set fixes it


def test_run_pipeline_validates_before_any_stage_and_before_saving(tmp_path: Path) -> None:
    settings = load_settings(None, ["features.backbone=foo", "poses.source=nope"])  # plain strings to pydantic
    with pytest.raises(ConfigError) as info:
        run_pipeline(Context(settings, RunDir(tmp_path / "run")))
    assert "features.backbone=foo: unknown backbone 'foo'" in str(info.value)
    assert "poses.source=nope: unknown pose source 'nope'" in str(info.value)  # every problem at once
    assert not (tmp_path / "run" / "config.yaml").exists() and not (tmp_path / "run" / "index").exists()
    validate_settings(Settings())  # the defaults are fine


# ------------------------------------------------------------------------------- single stages


def test_a_single_stage_checks_only_the_stages_it_reads(tmp_path: Path) -> None:
    calls: list[str] = []

    def make(name: str):  # noqa: ANN202
        def run(ctx: Context, w) -> dict:  # noqa: ANN001
            calls.append(name)
            w.path("x.txt").write_text(name)
            return {}
        return run

    stages = [Stage("index", "", (), ("data",), make("index")),
              Stage("language", "", ("index",), ("language",), make("language")),
              Stage("features", "", ("index",), ("features",), make("features"))]
    run = RunDir(tmp_path)
    run_stages(stages, Context(Settings(), run))
    stale_language = load_settings(None, ["language.concepts=kth"])
    res = run_stages(stages, Context(stale_language, run), only=["features"], force=["features"])
    assert [r.name for r in res] == ["features"] and calls[-1] == "features"
    stale_index = load_settings(None, ["data.seed=5"])
    with pytest.raises(StageError, match="stage 'index', which 'features' reads, is out of date"):
        run_stages(stages, Context(stale_index, run), only=["features"])
    assert upstream_of(STAGES, ["features"]) == {"index"}
    assert upstream_of(STAGES, ["train"]) == {"index", "keyclips", "poses", "motion", "language", "spatial",
                                              "features"}


# ------------------------------------------------------------------------------- markup


def test_markup_safe_keeps_styles_and_prints_brackets_as_written() -> None:
    assert markup_safe("[dim]✓ a[/dim]") == "[dim]✓ a[/dim]"
    console = Console(record=True, width=200)
    for text, shown in [("pip install 'dance-xai[pose]' (mediapipe)", "pip install 'dance-xai[pose]' (mediapipe)"),
                        ("[yellow]skipped v1[/yellow]: bad [/b] tag [hf]", "skipped v1: bad [/b] tag [hf]")]:
        Reporter(console).info(text)  # a stray closing tag used to raise MarkupError
        assert shown in console.export_text()


def test_cli_errors_are_printed_as_written(tmp_path: Path, monkeypatch) -> None:
    import dance.explain.video

    def missing_extra(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise DanceError("the mediapipe pose estimator needs the optional extra: pip install 'dance-xai[pose]' "
                         "(mediapipe==0.10.21) [/oops]")

    monkeypatch.setattr(dance.explain.video, "explain_video", missing_extra)
    result = runner.invoke(app, ["explain", str(tmp_path / "v.mp4"), "--run", str(tmp_path)])
    assert result.exit_code == 2
    assert "pip install 'dance-xai[pose]' (mediapipe==0.10.21) [/oops]" in _out(result)


# ------------------------------------------------------------------------------- progress


def test_linear_probe_shows_progress_through_the_running_stage_reporter() -> None:
    from dance.model.baseline import C_GRID, fit_linear_probe

    class Recorder(Reporter):
        def __init__(self) -> None:
            super().__init__()
            self.tasks: list[list] = []

        @contextmanager
        def task(self, description: str, total: int):  # noqa: ANN201
            entry = [description, total, 0]
            self.tasks.append(entry)

            def advance(n: int = 1) -> None:
                entry[2] += n

            yield advance

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 6)), np.arange(40) % 2
    rec = Recorder()
    assert type(current_reporter()) is Reporter  # silent outside a stage
    with reporting(rec):
        assert current_reporter() is rec
        fit_linear_probe(X, y, X[:10], y[:10])
    assert rec.tasks == [[rec.tasks[0][0], len(C_GRID), len(C_GRID)]] and "linear probe" in rec.tasks[0][0]


def test_runner_makes_the_context_reporter_current_while_a_stage_runs(tmp_path: Path) -> None:
    seen = []
    reporter = Reporter()
    stage = Stage("only", "", (), (), lambda ctx, w: seen.append(current_reporter()) or {})
    run_stages([stage], Context(Settings(), RunDir(tmp_path), reporter))
    assert seen == [reporter]


# ------------------------------------------------------------------------------- newcomer: a finished run


def test_explain_with_poses_from_annotations_and_a_demo_folder(rgb: Path, tmp_path: Path) -> None:
    demo_folder = rgb.parent  # data/ and run/, like `dance demo --out DIR`
    video = sorted((demo_folder / "data" / "videos").glob("*.mp4"))[0]
    result = runner.invoke(app, ["explain", str(video), "--run", str(demo_folder), "--poses", "annotations",
                                 "--out", str(tmp_path / "x")])
    assert result.exit_code == 0, result.output
    assert "holds a run at" in _out(result)
    saved = json.loads((tmp_path / "x" / "explanation.json").read_text())
    assert saved["person_frames"] > 0.5  # the dataset's ground-truth poses were read
    bad = runner.invoke(app, ["explain", str(video), "--run", str(rgb), "--poses", "mediapip"])
    assert bad.exit_code == 2 and "unknown pose source 'mediapip'" in _out(bad)
    nothing = runner.invoke(app, ["explain", str(video), "--run", str(rgb), "--poses", "penn-action"])
    assert nothing.exit_code == 2 and "--pose-path" in _out(nothing) and "TypeError" not in nothing.output


def test_report_shows_predicted_presence_of_motion_concepts(rgb: Path) -> None:
    from dance.explain.intervene import load_run_videos
    from dance.explain.report.figure import signed_top
    from dance.model.io import load_model

    model = load_model(rgb / "train" / "model")
    z = model.concept_activations(load_run_videos(rgb).X[:1])[0]
    top = signed_top(model, z, int(np.argmax(model.logits_from_concepts(z[None])[0])), k=3)
    motion = top.get("motion", [])
    assert motion, "the tiny run's predicted class has motion concepts"
    assert all(c.probability is not None and c.present != "–" for c in motion)
    assert all(c.probability is None for t in ("object", "scene") for c in top.get(t, []))


def test_report_of_a_demo_folder(rgb: Path) -> None:
    from dance.explain.report.data import check_run

    with pytest.raises(StageError, match=r"holds a run at .*run.*use `dance report .*run`"):
        check_run(rgb.parent)
    result = runner.invoke(app, ["report", str(rgb.parent)])
    assert "holds a run at" in _out(result)
    assert "dance run --run " + str(rgb.parent) + " " not in _out(result) + " "


def test_stage_commands_on_a_demo_folder_say_where_the_run_is(rgb: Path) -> None:
    result = runner.invoke(app, ["motion", "--run", str(rgb.parent)])
    assert result.exit_code == 2 and f"use `dance motion --run {rgb}`" in _out(result)
    result = runner.invoke(app, ["run", "--run", str(rgb.parent)])
    assert result.exit_code == 2 and f"`dance run --run {rgb}`" in _out(result)


def test_demo_says_where_the_run_is_and_what_to_do_next(rgb: Path, monkeypatch) -> None:
    console = Console(record=True, width=400)
    monkeypatch.setattr(cli, "console", console)
    cli._demo_next_steps(rgb.parent)
    text = console.export_text()
    assert f"the run is in {rgb}" in text
    assert f"dance report {rgb}" in text and f"dance serve {rgb}" in text
    assert "--poses annotations" in text and "dance-xai[pose]" in text
    sample = text.split("--sample ")[1].split()[0]
    assert sample.startswith("videos__v")  # the README's id rule: path below the root, '/' → '__'
    assert "VIDEO_ID" not in text and "scene:NAME" not in text and "object:NAME" not in text
