"""``dance scene-bias``: make the scene-biased data set, train a model on it, evaluate models as DEVIAS does,
train DANCE on it and repair its swapped-background accuracy (the paper's Fig. 10), or all of it in one ``demo``.

Registered on the main app by :func:`register` (called from :mod:`dance.cli`). It sits above the pipeline (it runs
DANCE) and the explain layer (it scores the run), below :mod:`dance.cli`. Imports nothing heavy at import time
(``dance --help`` stays cheap): each command imports what it needs.
"""

from __future__ import annotations

import json
from dataclasses import replace
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
                  help="Action vs scene: scene-biased synthetic videos, DEVIAS and its baselines, DANCE under a "
                       "background swap and its repair by weight edits (issue 14).")

DataArg = Annotated[Path, typer.Argument(help="a scene-bias data set (after `dance scene-bias data`)")]
ThreadsOpt = Annotated[int, typer.Option(help="torch threads (0: the cores not busy)")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="DANCE setting override key=value (repeatable)")]
TrainOpt = Annotated[int, typer.Option(help="train clips")]
SeenOpt = Annotated[int, typer.Option(help="test clips of seen pairs (also the swapped and scene-only sizes)")]
UnseenOpt = Annotated[int, typer.Option(help="test clips of unseen pairs")]
SizeOpt = Annotated[int, typer.Option(help="frame size in pixels")]
FramesOpt = Annotated[int, typer.Option(help="frames per clip")]
DEMO_MODELS = {"baseline": "one_token", "devias": "devias"}  # scene_bias.json name -> model kind
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
    train: TrainOpt = 2400,
    seen: SeenOpt = 360,
    unseen: UnseenOpt = 720,
    size: SizeOpt = 64,
    frames: FramesOpt = 16,
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
    backbone: Annotated[str, typer.Option(help="token backbone: cnn (a small video CNN, CPU work) or videomae "
                                               "(fine-tuned; clips read at the model's frames and size)")] = "cnn",
    backbone_model: Annotated[str, typer.Option(help="videomae: hub name or local folder (default "
                                                     "MCG-NJU/videomae-base)")] = "",
    scene_teacher: Annotated[str, typer.Option(help="scene targets from this dual encoder's zero-shot scene "
                                                    "probabilities (clip, xclip) instead of the scene labels")] = "",
    teacher_model: Annotated[str, typer.Option(help="the teacher's weights: hub name or local folder")] = "",
    device: Annotated[str, typer.Option(help="where the model trains: cpu, cuda, cuda:1, mps")] = "cpu",
    threads: ThreadsOpt = 1,
) -> None:
    """Train a model on the data set's train split and save it."""
    from dance.scene_bias.model import ModelSettings, save_model
    from dance.scene_bias.train import TrainSettings, train_model

    try:
        settings = ModelSettings(kind=model, backbone=backbone, backbone_model=backbone_model).check()
        from dance.encoders.hf import torch_device

        torch_device(device)  # an accelerator this machine lacks fails before anything is decoded
        if backbone == "videomae":  # the clips at the model's own input
            from dance.encoders.hf import load_hf_config, square_size
            from dance.encoders.videomae import DEFAULT_MODEL

            config = load_hf_config(backbone_model or DEFAULT_MODEL, ("videomae",), what="backbone 'videomae'")
            settings = replace(settings, frames=int(config.num_frames),
                               size=square_size(config.image_size, "backbone 'videomae'"))
        sets, manifest = _load(data_dir, ("train",), settings.frames, settings.size)
        settings = replace(settings, n_actions=len(manifest["actions"]), n_scenes=len(manifest["scenes"])).check()

        teacher = {}
        if scene_teacher:
            from dance.encoders.dual_encoders import make_dual_encoder
            from dance.progress import RichReporter
            from dance.scene_bias.teacher import teacher_scene_probs
            from dance.threads import torch_threads

            encoder = make_dual_encoder(scene_teacher, model=teacher_model)
            with torch_threads(threads), RichReporter(err).tracker() as progress:
                probs = teacher_scene_probs(sets["train"].x, manifest["scenes"], encoder,
                                            progress=lambda n, total: progress("scene teacher", n, total))
            sets["train"] = replace(sets["train"], scene_probs=probs)
            labelled = sets["train"].scene >= 0
            agree = float((probs.argmax(1) == sets["train"].scene)[labelled].mean()) if labelled.any() else None
            teacher = {"name": scene_teacher, "model": teacher_model,
                       "agreement_with_labels": None if agree is None else round(agree, 4)}
            if agree is not None:
                err.print(f"  scene teacher {scene_teacher}: its most likely scene is the label on {agree:.1%} of "
                          "the labelled training clips")

        def show(epoch: int, total: int, losses: dict) -> None:
            err.print(f"  epoch {epoch}/{total}: " + ", ".join(f"{k} {v:.3f}" for k, v in losses.items()))

        net, log = train_model(settings, sets["train"], TrainSettings(epochs=epochs, seed=seed, threads=threads,
                                                                      device=device), progress=show)
        save_model(net, out, manifest["actions"], manifest["scenes"],
                   extra={"train": log, "data": str(data_dir)} | ({"scene_teacher": teacher} if teacher else {}))
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


def run_dance(data_dir: Path, run: Path, seed: int = 0, overrides: list[str] | None = None) -> None:
    """Train DANCE on a scene-bias data set (packaged config ``scene_bias``; train + seen, unseen and swapped
    test clips: ``annotations_dance.csv``) into ``run``; finished stages are reused."""
    from dance.config import packaged_config
    from dance.pipeline import run_pipeline
    from dance.pipeline.runner import Context
    from dance.pipeline.validate import load_checked_settings
    from dance.progress import RichReporter
    from dance.runs import RunDir
    from dance.scene_bias.data import read_manifest

    files = read_manifest(data_dir)["files"]
    if "dance" not in files:
        raise DanceError(f"{data_dir} was made before DANCE could run on it (no annotations_dance.csv): make it "
                         "again with `dance scene-bias data`")
    data_dir = data_dir.resolve()
    sets = [f"data.path={data_dir / files['dance']}", f"poses.path={data_dir / files['poses']}",
            f"spatial.path={data_dir / files['context_labels']}",
            *(f"{s}.seed={seed}" for s in ("data", "features", "motion", "train")), *(overrides or [])]
    settings = load_checked_settings(packaged_config("scene_bias"), sets)
    run_pipeline(Context(settings, RunDir(run), RichReporter(err)))


def _dance_table(scores: dict) -> Table:
    t = Table(title="DANCE (%)")
    for col in ("action seen", "action unseen", "action stripes", "scene seen", "scene unseen", "H.M."):
        t.add_column(col, justify="right")
    t.add_row(*(f"{100 * scores[k]:.1f}" if k in scores else "–" for k in (
        "action_seen", "action_unseen", "action_swapped", "scene_seen", "scene_unseen", "hm")))
    return t


def _intervention_line(iv: dict) -> str:
    return (f"weight edits (Fig. 10), {len(iv['edits'])} chosen on {iv['n_search']} swapped clips: on the other "
            f"{iv['n_check']} {100 * iv['before']:.1f} → {100 * iv['after']:.1f} % (fixed {iv['fixed']}, broken "
            f"{iv['broken']}); seen clips {100 * iv['seen_before']:.1f} → {100 * iv['seen_after']:.1f} %")


@app.command("dance")
def dance_cmd(
    data_dir: DataArg,
    run: Annotated[Path, typer.Option("--run", "-r", help="run folder (finished stages are reused)")],
    seed: Annotated[int, typer.Option(help="DANCE's seeds (validation split, backbone, FINCH, training)")] = 0,
    max_edits: Annotated[int, typer.Option(help="at most this many weight edits in the intervention search")] = 5,
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the scores here")] = None,
    overrides: SetOpt = None,
) -> None:
    """Train DANCE on the biased train split; score it on seen, unseen and swapped clips and search the weight
    edits that repair the swapped ones (half to search, half to check)."""
    from dance.explain.scene_shift import score_scene_shift

    try:
        run_dance(data_dir, run, seed, overrides)
        scores = score_scene_shift(run, data_dir, max_edits=max_edits, seed=seed)
    except DanceError as e:
        _fail(e)
    console.print(_dance_table(scores))
    console.print(escape(_intervention_line(scores["intervention"])))
    if json_out is not None:
        json_out.write_text(json.dumps(scores, indent=2) + "\n", encoding="utf-8")


def _demo_model(kind: str, folder: Path, train_set, manifest: dict, seed: int, epochs: int,  # noqa: ANN001
                threads: int):  # noqa: ANN202
    """A trained model of ``kind`` in ``folder``: loaded when it was trained with these settings, else trained."""
    from dance.scene_bias.model import ModelSettings, load_model, save_model
    from dance.scene_bias.train import TrainSettings, train_model

    settings = ModelSettings(kind=kind, n_actions=len(manifest["actions"]), n_scenes=len(manifest["scenes"]))
    ts = TrainSettings(epochs=epochs, seed=seed, threads=threads).check()
    want = {"seed": seed, "epochs": ts.epochs, "data": manifest.get("settings")}  # a new data set: train again
    if (folder / "model.json").is_file():
        try:
            net, meta = load_model(folder)
            if meta.get("extra", {}).get("demo") == want and net.settings == settings:
                err.print(f"[dim]✓ {kind}: reusing {escape(str(folder))}[/dim]")
                return net
        except DanceError as e:
            err.print(f"[yellow]{kind}: training again ({escape(str(e))})[/yellow]")
    err.print(f"[bold]▶ {kind}[/bold]: training on {len(train_set)} clips")
    net, log = train_model(settings, train_set, ts)
    save_model(net, folder, manifest["actions"], manifest["scenes"], extra={"train": log, "demo": want})
    return net


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="folder for the data, the models, the DANCE run and scene_bias.json")] =
    Path("scene-bias-demo"),
    seed: Annotated[int, typer.Option(help="data and model seed")] = 0,
    threads: ThreadsOpt = 0,
    max_edits: Annotated[int, typer.Option(help="at most this many weight edits in the intervention search")] = 5,
    train: TrainOpt = 2400,
    seen: SeenOpt = 360,
    unseen: UnseenOpt = 720,
    size: SizeOpt = 64,
    frames: FramesOpt = 16,
    epochs: Annotated[int, typer.Option(help="training epochs of the baseline and DEVIAS")] = 12,
) -> None:
    """Everything in one command: the scene-bias data set, the one-token baseline and DEVIAS, DANCE, DEVIAS's
    evaluation of all three and DANCE's weight-edit repair of swapped clips; writes OUT/scene_bias.json (and
    `dance report OUT/run` shows it). Finished parts are reused when run again."""
    import time

    from dance.explain.scene_shift import score_scene_shift
    from dance.progress import RichReporter
    from dance.runs import atomic_write_json
    from dance.scene_bias.data import SETS, DataSettings, generate
    from dance.scene_bias.model import ModelSettings
    from dance.scene_bias.train import evaluate

    start = time.time()
    try:
        data_dir = out / "data"
        settings = DataSettings(seed=seed, n_train=train, n_seen=seen, n_unseen=unseen, size=size,
                                n_frames=frames).check()
        marker = data_dir / ".demo-settings.json"
        want = json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in vars(settings).items()},
                          sort_keys=True)
        if not (marker.is_file() and marker.read_text(encoding="utf-8") == want):
            err.print(f"[bold]▶ data[/bold]: rendering the scene-bias clips into {escape(str(data_dir))}")
            with RichReporter(err).tracker() as progress:
                generate(data_dir, settings, progress=lambda done, total: progress("rendering clips", 1, total))
            marker.write_text(want, encoding="utf-8")
        else:
            err.print(f"[dim]✓ data: reusing {escape(str(data_dir))}[/dim]")
        first = ModelSettings()
        sets, manifest = _load(data_dir, SETS, first.frames, first.size)
        models = {}
        for name, kind in DEMO_MODELS.items():
            net = _demo_model(kind, out / "models" / kind, sets["train"], manifest, seed, epochs, threads)
            models[name] = evaluate(net, {k: v for k, v in sets.items() if k != "train"}, threads=threads)
        err.print("[bold]▶ DANCE[/bold]: the pipeline on annotations_dance.csv")
        run_dance(data_dir, out / "run", seed)
        scores = score_scene_shift(out / "run", data_dir, max_edits=max_edits, seed=seed)
    except DanceError as e:
        _fail(e)
    keys = ("action_seen", "action_unseen", "action_swapped", "scene_seen", "scene_unseen", "hm")
    result = {"models": {**{n: {k: m[k] for k in keys if k in m} for n, m in models.items()},
                         "dance": {k: scores[k] for k in keys if k in scores}},
              "intervention": scores["intervention"],
              "explanations": scores["explanations"],
              "extra": {n: {k: m[k] for k in ("scene_only", "scene_top_k") if k in m} for n, m in models.items()},
              "seed": seed, "data": "data", "dance_run": "run", "n": scores["n"],
              "minutes": round((time.time() - start) / 60, 2)}
    atomic_write_json(out / "scene_bias.json", result)
    table = Table(title="accuracy (%)")
    table.add_column("model")
    for k in keys:
        table.add_column(dict(METRICS).get(k, k), justify="right")
    for name, m in result["models"].items():
        table.add_row(name, *(f"{100 * m[k]:.1f}" if k in m else "–" for k in keys))
    console.print(table)
    console.print(escape(_intervention_line(scores["intervention"])))
    console.print(f"wrote {escape(str(out / 'scene_bias.json'))}; report: dance report {escape(str(out / 'run'))}")


def swap(
    index: Annotated[Path, typer.Argument(help="a video index (any format `dance run` reads: csv, folders, lists)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="folder for the swapped videos and their index")],
    background: Annotated[str, typer.Option(help="stripes (SCUBA's Sin.), scenes (procedural) or videos (a frame "
                                                 "of another video of the index)")] = "stripes",
    min_area: Annotated[float, typer.Option(help="a frame has the actor when the mask covers this share")] = 0.03,
    min_frames: Annotated[float, typer.Option(help="keep a video when this share of frames has the actor")] = 0.9,
    dilate: Annotated[int, typer.Option(help="dilate the person mask by this many pixels")] = 2,
    max_frames: Annotated[int | None, typer.Option(help="only the first frames of each video")] = None,
    seed: Annotated[int, typer.Option(help="background seed")] = 0,
) -> None:
    """Background-swapped copies of a video index (SCUBA-style): the actor kept (MediaPipe person mask, or a
    scene-bias data set's exact masks), the scene replaced; same labels; skips reported with their reason."""
    from dance.data.formats import load_index
    from dance.progress import RichReporter
    from dance.scene_bias.swap import SwapSettings, swap_index

    try:
        settings = SwapSettings(background=background, min_area=min_area, min_frames=min_frames, dilate=dilate,
                                max_frames=max_frames, seed=seed).check()
        records = load_index(index, required_splits=()).records
        with RichReporter(err).tracker() as progress:
            summary = swap_index(records, out, settings, index_csv=index if index.is_file() else None,
                                 progress=lambda done, total: progress("swapping backgrounds", 1, total))
    except DanceError as e:
        _fail(e)
    for vid, why in summary["skipped_videos"].items():
        err.print(f"[yellow]skipped[/yellow] {escape(vid)}: {escape(why)}")
    console.print(f"wrote {escape(str(out / 'annotations.csv'))}: {summary['kept']} kept, {summary['skipped']} "
                  f"skipped (masks: {summary['mask_source']}; details in {escape(str(out / 'swap.json'))})")


def register(main_app: typer.Typer) -> None:
    """Add ``scene-bias`` and ``swap`` to the main app."""
    main_app.add_typer(app, name="scene-bias")
    main_app.command()(swap)
