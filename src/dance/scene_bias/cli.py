"""``dance scene-bias``: make the scene-biased data set, train a model on it, evaluate models as DEVIAS does.

Registered on the main app by :func:`register` (called from :mod:`dance.cli`). Imports nothing heavy at import
time (``dance --help`` stays cheap): each command imports what it needs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dance.errors import DanceError

console = Console()
err = Console(stderr=True)

app = typer.Typer(no_args_is_help=True, rich_markup_mode="rich",
                  help="Action vs scene: scene-biased synthetic videos, DEVIAS and its baselines (issue 14).")

DataArg = Annotated[Path, typer.Argument(help="a scene-bias data set (after `dance scene-bias data`)")]
ThreadsOpt = Annotated[int, typer.Option(help="torch threads (0: the cores not busy)")]
METRICS = (("action_seen", "action seen"), ("action_unseen", "action unseen"), ("action_swapped", "action stripes"),
           ("scene_seen", "scene seen"), ("scene_unseen", "scene unseen"), ("scene_only", "scene only"),
           ("hm", "H.M."))


def _fail(e: Exception) -> None:
    err.print(f"[bold red]error:[/bold red] {escape(str(e))}")
    raise typer.Exit(code=2)


@app.command()
def data(
    out: Annotated[Path, typer.Argument(help="output folder")],
    seed: Annotated[int, typer.Option(help="random seed (same seed and settings, same clips)")] = 0,
    correlation: Annotated[float, typer.Option(help="share of an action's train clips in its own scene")] = 0.9,
    train: Annotated[int, typer.Option(help="train clips")] = 2400,
    seen: Annotated[int, typer.Option(help="test clips of seen pairs (also the swapped and scene-only sizes)")] = 360,
    unseen: Annotated[int, typer.Option(help="test clips of unseen pairs")] = 720,
    size: Annotated[int, typer.Option(help="frame size in pixels")] = 64,
    frames: Annotated[int, typer.Option(help="frames per clip")] = 16,
    colour_jitter: Annotated[float, typer.Option(help="scene colour gain per channel in [1 - j, 1 + j]")] = 0.3,
    texture: Annotated[float, typer.Option(help="amplitude of the scenes' smooth shading field")] = 0.25,
    clutter: Annotated[int, typer.Option(help="at most this many patches of other scenes (and clutter - 1 "
                                              "object sprites) per background")] = 3,
) -> None:
    """Render actor × scene clips with exact actor masks: train (biased), seen, unseen, swapped, scene_only."""
    from dance.progress import RichReporter
    from dance.scene_bias.data import DataSettings, generate

    try:
        settings = DataSettings(seed=seed, correlation=correlation, n_train=train, n_seen=seen, n_unseen=unseen,
                                size=size, n_frames=frames, colour_jitter=colour_jitter, texture=texture,
                                clutter=clutter).check()
        with RichReporter(err).tracker() as progress:
            manifest = generate(out, settings, progress=lambda done, total: progress("rendering clips", 1, total))
    except DanceError as e:
        _fail(e)
    counts = ", ".join(f"{k} {v}" for k, v in manifest["counts"].items())
    console.print(f"wrote {escape(str(out))}: {counts}; {len(manifest['pairs']['seen'])} seen and "
                  f"{len(manifest['pairs']['unseen'])} unseen action–scene pairs")


def _load(data_dir: Path, names: tuple[str, ...], frames: int, size: int) -> tuple[dict, dict]:
    from dance.progress import RichReporter
    from dance.scene_bias.data import load_sets

    with RichReporter(err).tracker() as progress:
        return load_sets(data_dir, names, n_frames=frames, size=size,
                         progress=lambda done, total: progress("decoding clips", 1, total))


@app.command("train")
def train_cmd(
    data_dir: DataArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="model folder (model.safetensors + model.json)")],
    model: Annotated[str, typer.Option(help="one_token, two_token or devias")] = "devias",
    epochs: Annotated[int, typer.Option(help="training epochs")] = 12,
    seed: Annotated[int, typer.Option(help="model seed")] = 0,
    threads: ThreadsOpt = 1,
) -> None:
    """Train a model on the data set's train split and save it."""
    from dance.scene_bias.model import ModelSettings, save_model
    from dance.scene_bias.train import TrainSettings, train_model

    try:
        settings = ModelSettings(kind=model).check()
        sets, manifest = _load(data_dir, ("train",), settings.frames, settings.size)
        settings = ModelSettings(kind=model, n_actions=len(manifest["actions"]), n_scenes=len(manifest["scenes"]))

        def show(epoch: int, total: int, losses: dict) -> None:
            err.print(f"  epoch {epoch}/{total}: " + ", ".join(f"{k} {v:.3f}" for k, v in losses.items()))

        net, log = train_model(settings, sets["train"], TrainSettings(epochs=epochs, seed=seed, threads=threads),
                               progress=show)
        save_model(net, out, manifest["actions"], manifest["scenes"], extra={"train": log, "data": str(data_dir)})
    except DanceError as e:
        _fail(e)
    console.print(f"saved {escape(str(out))} ({model}, {log['wall_s'] / 60:.1f} min)")


@app.command("evaluate")
def evaluate_cmd(
    data_dir: DataArg,
    models: Annotated[list[Path], typer.Argument(help="model folders (after `dance scene-bias train`)")],
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the metrics here")] = None,
    threads: ThreadsOpt = 1,
) -> None:
    """Action and scene accuracy on seen, unseen, swapped and scene-only clips, and the harmonic mean."""
    from dance.scene_bias.data import SETS
    from dance.scene_bias.model import load_model
    from dance.scene_bias.train import evaluate

    try:
        loaded = [load_model(m) for m in models]
        first = loaded[0][0].settings
        sets, manifest = _load(data_dir, tuple(s for s in SETS if s != "train"), first.frames, first.size)
        results = {}
        for path, (net, meta) in zip(models, loaded):
            if meta["actions"] != manifest["actions"] or meta["scenes"] != manifest["scenes"]:
                raise DanceError(f"{path}: trained on other actions or scenes than {data_dir}")
            if (net.settings.frames, net.settings.size) != (first.frames, first.size):
                raise DanceError(f"{path}: another input size than {models[0]}")
            results[str(path)] = {"kind": net.settings.kind, **evaluate(net, sets, threads=threads)}
    except DanceError as e:
        _fail(e)
    table = Table(title="accuracy (%)")
    table.add_column("model")
    for _, label in METRICS:
        table.add_column(label, justify="right")
    for path, r in results.items():
        table.add_row(escape(f"{Path(path).name} ({r['kind']})"),
                      *(f"{100 * r[k]:.1f}" if k in r else "–" for k, _ in METRICS))
    console.print(table)
    if json_out is not None:
        json_out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def register(main_app: typer.Typer) -> None:
    """Add ``scene-bias`` to the main app."""
    main_app.add_typer(app, name="scene-bias")
