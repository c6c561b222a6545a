"""The ``dance`` command: thin wrappers that parse arguments, call the pipeline, and print with rich."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dance import __version__
from dance.errors import ConfigError, DanceError
from dance.progress import RichReporter
from dance.runs import atomic_write_json

if TYPE_CHECKING:
    from dance.config import Settings
    from dance.pipeline.runner import StageResult

# Start-up: ``dance --help`` must not pay for torch, scikit-learn, pydantic models and the like, so this module
# imports nothing from dance.pipeline (whose stage table, dance.pipeline.stages, imports every stage, and so torch)
# or dance.config at import time: each command imports what it needs in its body (tests/test_cli_imports.py
# checks both).

# The stage commands, in pipeline order, with their help: a copy of ``(s.name, s.help) for s in
# dance.pipeline.stages.STAGES`` (tests/test_cli_imports.py checks that it still is one).
STAGE_HELP: tuple[tuple[str, str], ...] = (
    ("index", "read the video index and make a validation split"),
    ("language", "object and scene concept set (shipped, a file, or asked of a language model)"),
    ("keyclips", "keyframes (pixel differences, or pose motion for pose-only data) and key-clip windows"),
    ("poses", "2D pose sequences of every key clip"),
    ("motion", "filter, normalise and cluster pose sequences (FINCH) into motion concepts"),
    ("spatial", "object and scene concept labels"),
    ("features", "frozen backbone features, one vector per video (a pose backbone is trained first)"),
    ("train", "concept layers and the sparse final layer"),
    ("baseline", "linear probe on the same features (no interpretability)"),
    ("evaluate", "accuracy, sparsity, explanations"),
    ("catalogue", "render every motion concept (GIF + PNG) with its training frequency and classes"),
)

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="rich",
                  help="DANCE: explainable video action recognition with disentangled concepts.")
console = Console()
err = Console(stderr=True)

RunOpt = Annotated[Path, typer.Option("--run", "-r", help="run directory (created if missing)")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML settings file")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", "-s", help="override: section.key=value (repeatable)")]


def _fail(e: Exception) -> None:
    err.print(f"[bold red]error:[/bold red] {escape(str(e))}")
    raise typer.Exit(code=2)


def _settings(run: Path | None, config: Path | None, overrides: list[str] | None,
              stages: list[str] | None = None) -> Settings:
    """--config, else the run's own config.yaml (so single stages reuse the run's settings), plus --set; checked
    before any stage runs (a bad --set is named, and never saved into the run)."""
    if config is None and run is not None and (run / "config.yaml").is_file():
        config = run / "config.yaml"
    from dance.pipeline.validate import load_checked_settings

    return load_checked_settings(config, overrides or [], stages)


def _inner_run(path: Path) -> Path | None:
    """``path/run`` when ``path`` is not a run itself but holds one (a ``dance demo`` folder), else None."""
    from dance.run_view import inner_run

    return inner_run(path)


def run_dir(path: Path) -> Path:
    """A finished run given as itself or as the ``dance demo`` folder holding it (``DIR`` for ``DIR/run``)."""
    inner = _inner_run(path)
    if inner is None:
        return path
    err.print(f"[dim]{escape(str(path))} holds a run at {escape(str(inner))}: using it[/dim]")
    return inner


def _print_results(results: list[StageResult], summary: dict | None) -> None:
    table = Table(title="stages", show_lines=False)
    table.add_column("stage")
    table.add_column("status")
    table.add_column("seconds", justify="right")
    for r in results:
        table.add_row(escape(r.name), "[dim]cached[/dim]" if r.status == "cached" else "[green]ran[/green]",
                      f"{r.seconds:.1f}")
    console.print(table)
    if summary:
        t = Table(title="summary")
        t.add_column("metric")
        t.add_column("value", justify="right")
        for key in ("test_accuracy", "baseline_test_accuracy", "validation_accuracy", "baseline_validation_accuracy",
                    "type_agreement", "nonzero_weights", "n_train", "n_val", "n_test"):
            if key in summary:
                v = summary[key]
                t.add_row(key, f"{v:.3f}" if isinstance(v, float) else escape(str(v)))
        t.add_row("n_concepts", escape(", ".join(f"{k}={v}" for k, v in summary.get("n_concepts", {}).items())))
        console.print(t)
        if "test_accuracy" in summary:  # baseline, DANCE and the LF-CBM baselines (+ the paper's Table 1)
            from dance.pipeline.variants import comparison_table

            console.print(comparison_table(summary))


def _run(run: Path, settings: Settings, only: list[str] | None, force: list[str]) -> dict | None:
    from dance.pipeline import run_pipeline
    from dance.pipeline.runner import Context
    from dance.runs import RunDir

    ctx = Context(settings, RunDir(run), RichReporter(err))
    results = run_pipeline(ctx, only=only, force=tuple(force))
    summary_path = ctx.run.root / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() and only is None else None
    _print_results(results, summary)
    return summary


@app.command()
def run(
    run: RunOpt,
    config: ConfigOpt = None,
    overrides: SetOpt = None,
    data: Annotated[Path | None, typer.Option(help="dataset (sets data.path)")] = None,
    force: Annotated[list[str] | None, typer.Option(help="rerun this stage even if cached (repeatable)")] = None,
    workers: Annotated[int | None, typer.Option(
        min=0, help="processes the keyclips and poses stages spread their videos over (sets engine.workers; 0: "
        "the cores not busy; 1: this process)")] = None,
) -> None:
    """Run every stage of the pipeline; stages whose inputs and settings are unchanged are reused."""
    try:
        inner = _inner_run(run) if config is None and data is None else None
        if inner is not None:
            raise ConfigError(f"{run} is not a run but holds one at {inner} (a `dance demo` folder): use "
                              f"`dance run --run {inner}`")
        extra = [f"data.path={data.resolve()}"] if data else []
        extra += [f"engine.workers={workers}"] if workers is not None else []
        _run(run, _settings(run, config, (overrides or []) + extra), None, force or [])
    except DanceError as e:
        _fail(e)
    console.print(f"run: [bold]{escape(str(run))}[/bold]; next: [bold]dance report {escape(str(run))}[/bold] "
                  "(one HTML file), dance serve / explain / intervene (see `dance --help`)")


def _stage_command(name: str, help_text: str) -> None:
    def command(run: RunOpt, config: ConfigOpt = None, overrides: SetOpt = None,
                force: Annotated[bool, typer.Option(help="rerun even if cached")] = True) -> None:
        try:
            if config is None and not (run / "config.yaml").is_file():
                inner = _inner_run(run)
                hint = (f"; it holds a run at {inner}: use `dance {name} --run {inner}`" if inner is not None
                        else ": give the run directory of an earlier `dance run` (or --config)")
                raise ConfigError(f"{run} has no config.yaml{hint}")
            _run(run, _settings(run, config, overrides, [name]), [name], [name] if force else [])
        except DanceError as e:
            _fail(e)

    command.__doc__ = f"Stage '{name}': {help_text}."
    app.command(name=name)(command)


for _name, _help in STAGE_HELP:
    _stage_command(_name, _help)


@app.command()
def synth(
    out: Annotated[Path, typer.Argument(help="output folder")],
    videos: Annotated[int, typer.Option(help="number of videos")] = 600,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same bytes)")] = 0,
    size: Annotated[int, typer.Option(help="frame size in pixels")] = 112,
    frames: Annotated[int, typer.Option(help="frames per video")] = 32,
) -> None:
    """Generate the synthetic dataset with known causes (motion, object or scene decides each class)."""
    from dance.data.synthetic import generate

    try:
        with RichReporter(err).tracker() as progress:
            summary = generate(out, n_videos=videos, seed=seed, size=size, n_frames=frames,
                               progress=lambda done, total: progress("rendering videos", 1, total))
    except DanceError as e:
        _fail(e)
    console.print(f"wrote {videos} videos to {escape(str(out))} ({len(summary.get('classes', summary))} classes)")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="folder for the dataset, the run and summary.json")] = Path("dance-demo"),
    videos: Annotated[int, typer.Option(help="number of synthetic videos")] = 600,
    seed: Annotated[int, typer.Option(help="dataset seed")] = 0,
    overrides: SetOpt = None,
) -> None:
    """Generate the synthetic dataset and run the whole pipeline on it; writes OUT/summary.json."""
    from dance.config import packaged_config
    from dance.data.synthetic import generate
    from dance.pipeline.validate import load_checked_settings

    start = time.time()
    try:
        data_dir = out / "data"
        marker = data_dir / ".dance-synth.json"
        params = {"videos": videos, "seed": seed, "version": __version__}
        if not (marker.is_file() and json.loads(marker.read_text()) == params):
            if data_dir.exists():
                shutil.rmtree(data_dir)
            err.print(f"[bold]▶ synth[/bold]: rendering {videos} videos into {escape(str(data_dir))}")
            with RichReporter(err).tracker() as progress:
                generate(data_dir, n_videos=videos, seed=seed,
                         progress=lambda done, total: progress("rendering videos", 1, total))
            atomic_write_json(marker, params)
        else:
            err.print(f"[dim]✓ synth: reusing {escape(str(data_dir))}[/dim]")
        data_dir = data_dir.resolve()
        sets = [f"data.path={data_dir / 'annotations.csv'}", f"poses.path={data_dir / 'poses_gt'}",
                f"spatial.path={data_dir / 'context_labels.csv'}"] + (overrides or [])
        settings = load_checked_settings(packaged_config("demo"), sets)
        err.print(f"[bold]run[/bold]: {escape(str(out / 'run'))} (every stage's output; a second `dance demo` "
                  "reuses it)")
        summary = _run(out / "run", settings, None, [])
    except DanceError as e:
        _fail(e)
    if summary is not None:
        summary["total_seconds"] = round(time.time() - start, 1)
        atomic_write_json(out / "summary.json", summary)
        console.print(f"summary: {escape(str(out / 'summary.json'))}")
    _demo_next_steps(out)


def _demo_next_steps(out: Path) -> None:
    """Where the demo's run is and what to try on it, with a real test video and concept of this run."""
    run = out / "run"
    sample, video, concept = "VIDEO_ID", "VIDEO", "scene:NAME"
    try:
        from dance.run_view import RunView

        tests = [r for r in RunView(run).index.records if r.split == "test"]
        if tests:
            sample, video = tests[0].video_id, str(tests[0].path)
        blocks = json.loads((run / "train" / "model" / "model.json").read_text())["blocks"]
        named = [b for b in blocks if b["type"] in ("scene", "object") and b["names"]]
        if named:
            concept = f"{named[0]['type']}:{named[0]['names'][0]}"
    except (OSError, KeyError, ValueError, DanceError):
        pass  # the placeholders stay
    r = escape(str(run))
    lines = [
        f"[bold]the run is in {r}[/bold] (give this folder, not {escape(str(out))}, to the commands below)",
        "next:",
        f"  dance report {r}                  one HTML file: accuracy, confused pairs, explanations, concepts",
        f"  dance explain {escape(video)} --run {r} --poses annotations",
        "      explain one video (poses from the dataset; the default --poses mediapipe needs "
        f"{escape(POSE_EXTRA)})",
        f"  dance intervene {r} --sample {escape(sample)} --off {escape(concept)}   switch a concept off",
        f"  dance serve {r}                   a web viewer of the test videos and their explanations",
    ]
    console.print("\n".join(lines))


POSE_EXTRA = "pip install 'dance-xai[pose]'"


@app.command()
def explain(
    video: Annotated[Path, typer.Argument(help="a video file")],
    run: Annotated[Path, typer.Option("--run", "-r", help="a finished run directory (after `dance run`)")],
    out: Annotated[Path | None, typer.Option(help="folder for animations (default: dance-explain-<name>)")] = None,
    k: Annotated[int, typer.Option("-k", help="concepts per type and classes shown")] = 3,
    poses: Annotated[str, typer.Option(help=escape(
        "where the video's poses come from: mediapipe (estimated; needs pip install 'dance-xai[pose]'), "
        "annotations (its file poses/<video name>.npz in a generic pose folder), penn-action (its "
        "labels/<id>.mat)"))] = "mediapipe",
    pose_path: Annotated[Path | None, typer.Option(help="the pose folder of --poses annotations / penn-action "
                                                        "(default: the run's poses.path)")] = None,
) -> None:
    """Explain a video with a finished run: top classes and the concepts behind the prediction."""
    from dance.explain.video import explain_video

    try:
        run = run_dir(run)
        result = explain_video(video, run, out or Path(f"dance-explain-{video.stem}"), k=k, pose_source=poses,
                               pose_path=pose_path)
    except DanceError as e:
        _fail(e)
    e = result.explanation
    console.print(f"[bold]{escape(video.name)}[/bold]: predicted [bold green]{escape(e.predicted)}[/bold green]")
    t = Table(title="top classes")
    t.add_column("class")
    t.add_column("probability", justify="right")
    for name, p in e.probabilities.items():
        t.add_row(escape(name), f"{p:.3f}")
    console.print(t)
    console.print(escape("logit share per concept type: "
                         + ", ".join(f"{ty} {v:+.2f}" for ty, v in e.type_shares.items())))
    for ctype, items in e.top.items():
        t = Table(title=escape(f"top {ctype} concepts for '{e.target}'"))
        for col in ("concept", "present", "activation", "weight", "contribution", "animation"):
            t.add_column(col, justify="left" if col in ("concept", "animation") else "right")
        for c in items:
            anim = result.animations.get(c.name)
            t.add_row(escape(c.name), c.present, f"{c.activation:+.2f}", f"{c.weight:+.3f}", f"{c.contribution:+.3f}",
                      escape(str(anim)) if anim else "")
        console.print(t)
    console.print(escape(f"person found in {100 * result.person_frames:.0f}% of frames; keyframes {result.keyframes}"
                         + (f"; joints the pose source cannot give: {', '.join(result.missing_joints)}"
                            if result.missing_joints else "")))


@app.command()
def concepts(
    dataset: Annotated[str, typer.Argument(help="a shipped set (kth, penn_action, ucf101) or a concept-set JSON file")],
    as_json: Annotated[bool, typer.Option("--json", help="print the whole set as JSON")] = False,
    dropped: Annotated[bool, typer.Option("--dropped", help="also list what the filters dropped, and why")] = False,
) -> None:
    """Print a concept set: its object and scene concepts and where they came from."""
    from dance.language.concept_set import TYPES, load_concept_set

    try:
        cs = load_concept_set(dataset)
    except DanceError as e:
        _fail(e)
    if as_json:
        console.print_json(json.dumps(cs.to_json()))
        return
    src = cs.source
    extra = "".join(f", {len(cs.names(t))} {t}" for t in cs.types()[len(TYPES):])
    console.print(f"[bold]{escape(str(cs.dataset or dataset))}[/bold]: {len(cs.classes)} classes, "
                  f"{len(cs.object)} object and {len(cs.scene)} scene concepts"
                  + (f" (LF-CBM baselines{extra})" if extra else ""))
    console.print(escape(f"source: {src.get('kind', 'unknown')}"
                         + "".join(f"; {k}: {src[k]}" for k in ("answered_by", "model", "date", "answers")
                                   if src.get(k))))
    if src.get("filters"):
        console.print(escape("filters: " + ", ".join(f"{k}={v}" for k, v in src["filters"].items())))
    for kind, template in cs.prompts.items():
        console.print(f"prompt ({escape(kind)}): [italic]{escape(template)}[/italic]")
    for t in cs.types():
        names = cs.names(t)
        console.print(f"\n[bold]{escape(t)} concepts ({len(names)})[/bold]")
        console.print(escape(", ".join(names)), soft_wrap=True)
        if dropped and cs.dropped.get(t):
            console.print(f"[dim]dropped {escape(t)} candidates ({len(cs.dropped[t])}):[/dim]")
            for d in cs.dropped[t]:
                other = f" ({d['other']})" if d.get("other") else ""
                line = f"  {d['concept']}: {d['rule']} {d['value']}{other}"
                console.print(f"[dim]{escape(line)}[/dim]")


@app.command()
def report(
    run: Annotated[Path, typer.Argument(help="a finished run directory (after `dance run`)")],
    out: Annotated[Path | None, typer.Option(help="HTML file to write (default: RUN/report.html)")] = None,
    pairs: Annotated[int, typer.Option(help="most confused class pairs shown with a Sankey diagram")] = 3,
    correct: Annotated[int, typer.Option(help="correct test predictions explained")] = 3,
    wrong: Annotated[int, typer.Option(help="wrong test predictions explained")] = 3,
    top: Annotated[int, typer.Option(help="concepts per class in a Sankey diagram")] = 8,
    k: Annotated[int, typer.Option("-k", help="concepts per type (for and against) in an explanation")] = 3,
    all_gifs: Annotated[bool, typer.Option(help="animate every motion concept, not only those in use")] = False,
    dataset: Annotated[str, typer.Option(help="paper Table 1 row to compare with: auto, none, KTH, "
                                              "'Penn Action', HAA-100, UCF-101")] = "auto",
    sankeys: Annotated[Path | None, typer.Option(help="also save each Sankey here as HTML (+ PNG if kaleido "
                                                      "and Chrome work)")] = None,
) -> None:
    """Write one self-contained HTML report of a finished run: accuracy, confused pairs with Sankey diagrams,
    explanations of test predictions, and the concept catalogue."""
    from dance.explain.report import build_report

    try:
        run = run_dir(run)
        result = build_report(run, out, pairs=pairs, n_correct=correct, n_wrong=wrong, top=top, k=k,
                              all_gifs=all_gifs, dataset=dataset, sankey_dir=sankeys, reporter=RichReporter(err))
    except DanceError as e:
        _fail(e)
    for note in result.notes:
        err.print(f"[yellow]note:[/yellow] {escape(note)}")
    console.print(f"report: [bold]{escape(str(result.path))}[/bold] ({result.size_bytes / 1e6:.1f} MB; "
                  f"{result.sankeys} Sankey diagrams, {result.samples} explained predictions)")


@app.command()
def backbones() -> None:
    """List the registered backbones (features.backbone) and dual encoders (spatial.source)."""
    from dance.encoders.dual_encoders import list_dual_encoders
    from dance.encoders.registry import BACKBONES

    t = Table(title="backbones (features.backbone)")
    for col in ("name", "pretrained", "description"):
        t.add_column(col)
    for _, b in sorted(BACKBONES.items()):
        t.add_row(escape(b.name), "yes" if b.pretrained else "no", escape(b.description))
    console.print(t)
    d = Table(title="dual encoders (spatial.source; spatial.model: hub name or folder)")
    for col in ("name", "default weights", "description"):
        d.add_column(col)
    for e in list_dual_encoders():
        d.add_row(escape(e.name), escape(e.default_model or "-"), escape(e.description))
    console.print(d)


@app.command()
def version() -> None:
    """Print the package version."""
    console.print(__version__)


def _register_inspect_commands() -> None:
    """``sanity``, ``intervene`` and ``serve`` live in :mod:`dance.cli_inspect`."""
    from dance.cli_inspect import register

    register(app)


_register_inspect_commands()


def _register_scene_bias_commands() -> None:
    """``scene-bias`` (data, train, evaluate, dance, demo) lives in :mod:`dance.cli_scene_bias`."""
    from dance.cli_scene_bias import register

    register(app)


_register_scene_bias_commands()


def main() -> None:  # pragma: no cover - console entry point
    import os

    os.environ.setdefault("GLOG_minloglevel", "2")  # quiet MediaPipe's native logging
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted: finished stages are kept; run again to continue", markup=False)
        sys.exit(130)
