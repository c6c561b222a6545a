"""Commands that inspect and edit a finished run: ``dance sanity``, ``dance intervene``, ``dance serve``.

Registered on the main app by :func:`register` (called from :mod:`dance.cli`), so the main CLI file stays thin.
Runs are read through :class:`dance.run_view.RunView`; this module does not import :mod:`dance.cli` (the layers
in pyproject.toml's import-linter contracts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dance.errors import DanceError

console = Console()
err = Console(stderr=True)

RunArg = Annotated[Path, typer.Argument(help="a finished run directory (after `dance run`)")]
VersionOpt = Annotated[str | None, typer.Option(
    "--version", help="model version: v000 = the trained model, v001... = saved edits (default: the latest)")]


def _fail(e: Exception) -> None:
    err.print(f"[bold red]error:[/bold red] {escape(str(e))}")
    raise typer.Exit(code=2)


def _num(v: object) -> str:
    if v is None:
        return "[dim]–[/dim]"
    if isinstance(v, float):
        return f"{v:.3f}"
    return escape(str(v))


def _run_dir(run: Path) -> Path:
    """The run, also when given as the ``dance demo`` folder that holds it (``DIR`` for ``DIR/run``)."""
    from dance.run_view import inner_run

    inner = inner_run(run)
    if inner is None:
        return run
    err.print(f"[dim]{escape(str(run))} holds a run at {escape(str(inner))}: using it[/dim]")
    return inner


# ---------------------------------------------------------------------------------------------- sanity


def sanity(
    run: RunArg,
    split: Annotated[str, typer.Option(help="split whose videos are played backwards")] = "test",
    limit: Annotated[int | None, typer.Option(help="check at most N videos, spread evenly over the split")] = None,
    k: Annotated[int, typer.Option("-k", help="size of the top-k motion concept sets compared")] = 3,
    version: VersionOpt = None,
    pose_labels: Annotated[bool, typer.Option(
        help="also recompute the pose-cluster motion labels of the reversed videos")] = True,
    examples: Annotated[int, typer.Option(help="examples kept in sanity.json and printed")] = 6,
) -> None:
    """Sanity check (paper Fig. 7): play videos backwards; how often do the prediction and its motion concepts
    change? Writes RUN/sanity/sanity.json."""
    from dance.explain.sanity import FIELDS, sanity_check
    from dance.progress import RichReporter

    reporter = RichReporter(err)
    try:
        run = _run_dir(run)
        holder: dict = {}

        def on_total(n: int) -> None:
            holder["cm"] = reporter.task("encoding original and reversed", n)
            holder["advance"] = holder["cm"].__enter__()

        try:
            out = sanity_check(run, split=split, limit=limit, k=k, version=version, pose_labels=pose_labels,
                               n_examples=examples, on_total=on_total,
                               progress=lambda n=1: holder["advance"](n))
        finally:
            if "cm" in holder:
                holder["cm"].__exit__(None, None, None)
    except DanceError as e:
        _fail(e)
    console.print("[bold]sanity check[/bold] " + escape(f"of {run} ({out['version']}, {out['backbone']}): "
                                                        f"{out['reversal']}"))
    t = Table(title=escape(f"{out['n']} {split} videos played backwards"))
    t.add_column("field")
    t.add_column("value", justify="right")
    t.add_column("meaning", style="dim")
    for f, meaning in FIELDS.items():
        t.add_row(f, _num(out.get(f)), meaning)
    console.print(t)
    if out["examples"]:
        t = Table(title="examples (top-2 motion concepts by contribution)")
        for col in ("video", "label", "original", "reversed", "original motion", "reversed motion"):
            t.add_column(col)
        for e in out["examples"]:
            t.add_row(escape(e["video_id"]), escape(e["label"]),
                      escape(f"{e['original']} ({e['original_probability']:.2f})"),
                      ("[bold]" if e["changed"] else "") + escape(e["reversed"]),
                      escape(", ".join(c["name"] for c in e["original_top_motion"])),
                      escape(", ".join(c["name"] for c in e["reversed_top_motion"])))
        console.print(t)
    for key, why in list(out["skipped"].items())[:5]:
        err.print(f"[yellow]skipped {escape(str(key))}[/yellow]: {escape(str(why))}")
    from dance.run_view import RunView

    console.print(escape(f"wrote {RunView(run).sanity_path}"))


# ---------------------------------------------------------------------------------------------- intervene


def _explanation_table(title: str, e) -> Table:  # noqa: ANN001 - an Explanation
    t = Table(title=title)
    t.add_column("class")
    t.add_column("probability", justify="right")
    for name, p in e.probabilities.items():
        t.add_row(escape(name), f"{p:.3f}")
    return t


def _concepts_table(title: str, e, off: set[str]) -> Table:  # noqa: ANN001 - an Explanation
    t = Table(title=escape(title))
    for col in ("type", "concept", "present", "activation", "weight", "contribution"):
        t.add_column(col, justify="left" if col in ("type", "concept") else "right")
    for ctype, items in e.top.items():
        for c in items:
            q = f"{c.type}:{c.name}"
            style = "strike dim" if q in off else ""
            t.add_row(escape(ctype), escape(c.name), c.present, f"{c.activation:+.2f}", f"{c.weight:+.3f}",
                      f"{c.contribution:+.3f}", style=style)
    return t


def _intervene_sample(run: Path, sample: str, off: list[str], version: str | None, k: int) -> None:
    from dance.explain.intervene import intervene_sample
    from dance.run_view import RunView

    view = RunView(run)
    model, v = view.load_version(version)
    data = view.videos
    i = data.sample(sample)
    z = model.concept_activations(data.X[i : i + 1])
    res = intervene_sample(model, z, off, data.video_ids[i], data.labels[i], k=k)
    b, a = res.before, res.after
    console.print(f"[bold]{escape(sample)}[/bold] (label [bold]{escape(res.label)}[/bold], "
                  + escape(f"split {data.splits[i]}, model {v.name}); switched off: {', '.join(res.off)}"))
    verdict = "[bold red]changed[/bold red]" if res.changed else "unchanged"
    mark = {True: "[green]✓[/green]", False: "[red]✗[/red]"}
    console.print(f"prediction: {escape(b.predicted)} {mark[b.predicted == res.label]} → {escape(a.predicted)} "
                  f"{mark[a.predicted == res.label]} ({verdict})")
    grid = Table.grid(padding=(0, 4))
    grid.add_row(_explanation_table("before", b), _explanation_table("after", a))
    console.print(grid)
    shares = Table(title="logit share per concept type")
    for col in ("type", f"before ({b.predicted})", f"after ({a.predicted})"):
        shares.add_column(escape(col), justify="left" if col == "type" else "right")
    for t in b.type_shares:
        shares.add_row(escape(t), f"{b.type_shares[t]:+.3f}", f"{a.type_shares.get(t, 0.0):+.3f}")
    console.print(shares)
    off_set = set(res.off)
    grid = Table.grid(padding=(0, 4))
    grid.add_row(_concepts_table(f"before: top concepts for {b.predicted}", b, off_set),
                 _concepts_table(f"after: top concepts for {a.predicted}", a, off_set))
    console.print(grid)


def _intervene_weight(run: Path, cls: str, concept: str, weight: float, split: str, version: str | None,
                      dry_run: bool) -> None:
    from dance.explain.intervene import weight_edit
    from dance.model.versions import save_edit
    from dance.run_view import RunView

    view = RunView(run)
    model, v = view.load_version(version)
    data = view.videos
    mask = data.split_mask(split)
    z = model.concept_activations(data.X[mask])
    ids = [vid for vid, m in zip(data.video_ids, mask) if m]
    edited, edit = weight_edit(model, z, data.targets(model)[mask], cls, concept, weight, split, ids)
    eff = edit.effect
    console.print(escape(f"W[{edit.cls}, {edit.concept}]: {edit.old_weight:+.4g} → {edit.new_weight:+.4g}  "
                         f"(model {v.name}; split {split}, {edit.n} videos)"))
    t = Table()
    for col in ("accuracy before", "accuracy after", "fixed", "broken", "changed"):
        t.add_column(col, justify="right")
    t.add_row(f"{eff.accuracy_before:.4f}", f"{eff.accuracy_after:.4f}", f"[green]{eff.fixed}[/green]",
              f"[red]{eff.broken}[/red]", str(eff.changed))
    console.print(t)
    if edit.fixed_ids:
        console.print(escape("fixed: " + ", ".join(edit.fixed_ids[:10]) + (" …" if len(edit.fixed_ids) > 10 else "")))
    if edit.broken_ids:
        console.print(escape("broken: " + ", ".join(edit.broken_ids[:10])
                             + (" …" if len(edit.broken_ids) > 10 else "")))
    if edit.old_weight == edit.new_weight:
        console.print("[yellow]the weight already has this value: nothing saved[/yellow]")
    elif dry_run:
        console.print("[dim]--dry-run: not saved[/dim]")
    else:
        new = save_edit(run, v, edited, edit.record())
        console.print(f"saved as [bold]{escape(new.name)}[/bold] " + escape(f"({new.path.parent}); parent {v.name}; "
                                                                          "the trained model is unchanged"))


def _intervene_search(run: Path, split: str, pattern: str | None, weight: float, max_edits: int,
                      version: str | None, dry_run: bool) -> None:
    from fnmatch import fnmatchcase

    import numpy as np

    from dance.explain.edit_search import search_edits
    from dance.model.versions import save_edit
    from dance.run_view import RunView

    view = RunView(run)
    model, v = view.load_version(version)
    data = view.videos
    mask = data.split_mask(split)
    if pattern is not None:
        example = data.video_ids[int(np.flatnonzero(mask)[0])]
        mask &= np.array([fnmatchcase(vid, pattern) for vid in data.video_ids], bool)
        if not mask.any():
            raise DanceError(f"no video of split '{split}' matches --videos '{pattern}' (ids look like "
                             f"'{example}')")
    ids = [vid for vid, m in zip(data.video_ids, mask) if m]
    edited, res = search_edits(model, model.concept_activations(data.X[mask]), data.targets(model)[mask],
                               weight=weight, max_edits=max_edits, ids=ids)
    where = f"split {split}" + (f", videos '{pattern}'" if pattern else "")
    console.print(escape(f"model {v.name}; {where}: searched on {len(res.search_ids)} videos, checked on the "
                         f"other {len(res.check_ids)}; each edit sets a zero weight to {res.weight:+.4g}"))
    t = Table(title="edits (greedy, in order)")
    for col in ("class", "concept", "fixed", "broken"):
        t.add_column(col, justify="right" if col in ("fixed", "broken") else "left")
    for e in res.edits:
        t.add_row(escape(e.cls), escape(e.concept), f"[green]{e.fixed}[/green]", f"[red]{e.broken}[/red]")
    console.print(t if res.edits else "no zero weight gains a video on the search part: nothing to edit")
    t = Table()
    for col in ("part", "videos", "accuracy before", "accuracy after", "fixed", "broken"):
        t.add_column(col, justify="left" if col == "part" else "right")
    for part, eff, n in (("search", res.search, len(res.search_ids)), ("check (held out)", res.check,
                                                                       len(res.check_ids))):
        t.add_row(part, str(n), f"{eff.accuracy_before:.4f}", f"{eff.accuracy_after:.4f}",
                  f"[green]{eff.fixed}[/green]", f"[red]{eff.broken}[/red]")
    console.print(t)
    if not res.edits:
        return
    if dry_run:
        console.print("[dim]--dry-run: not saved[/dim]")
    else:
        new = save_edit(run, v, edited, res.record(split))
        console.print(f"saved as [bold]{escape(new.name)}[/bold] " + escape(f"({new.path.parent}); parent {v.name}; "
                                                                          "the trained model is unchanged"))


def _list_versions(run: Path) -> None:
    from dance.run_view import RunView

    t = Table(title=escape(f"model versions of {run}"))
    for col in ("version", "parent", "change", "split", "accuracy", "fixed", "broken", "time"):
        t.add_column(col, justify="right" if col in ("fixed", "broken") else "left")
    for v in RunView(run).versions():
        e = v.edit.get("effect", {})
        acc = (f"{e['accuracy_before']:.4f} → {e['accuracy_after']:.4f}"
               if e.get("accuracy_before") is not None else "")
        t.add_row(escape(v.name) + (" [yellow](stale)[/yellow]" if v.stale else ""), escape(v.parent or ""),
                  escape(v.label), escape(str(e.get("split", ""))), acc, str(e.get("fixed", "")),
                  str(e.get("broken", "")), escape(str(v.edit.get("time", ""))))
    console.print(t)


def intervene(
    run: RunArg,
    sample: Annotated[str | None, typer.Option(help="video id: predict it with concepts switched off (--off)")] = None,
    off: Annotated[list[str] | None, typer.Option(help="concept to switch off, type:name (repeatable)")] = None,
    cls: Annotated[str | None, typer.Option("--class", help="class whose weight to change (with --concept)")] = None,
    concept: Annotated[str | None, typer.Option(help="concept whose weight for --class to change")] = None,
    weight: Annotated[float | None, typer.Option(help="the new weight W[class, concept]")] = None,
    split: Annotated[str, typer.Option(help="split on which a weight edit is measured (or searched)")] = "test",
    version: VersionOpt = None,
    list_: Annotated[bool, typer.Option("--list", help="list the model versions")] = False,
    search: Annotated[bool, typer.Option(help="search the zero weights whose change to --weight (default 1.0, as "
                                              "in the paper's Fig. 10) fixes the most videos of --split on one "
                                              "part, and report the edits' effect on the other part")] = False,
    videos: Annotated[str | None, typer.Option(help="with --search: only the videos of --split whose id matches "
                                                    "this shell pattern, e.g. '*swapped*'")] = None,
    max_edits: Annotated[int, typer.Option(help="with --search: at most this many edits")] = 5,
    dry_run: Annotated[bool, typer.Option(help="show a weight edit's effect without saving it")] = False,
    k: Annotated[int, typer.Option("-k", help="concepts per type shown")] = 3,
) -> None:
    """Edit the model (paper Fig. 9, 10): switch concepts off for one video, change a class-concept weight, or
    --search the zero weights that repair a shifted split (saved as a new version RUN/edits/vNNN, never over the
    trained model), or --list the versions."""
    weight_mode = cls is not None or concept is not None or (weight is not None and not search)
    modes = [bool(list_), sample is not None, weight_mode, search]
    try:
        run = _run_dir(run)
        if sum(modes) != 1:
            raise DanceError("choose one: --sample ID --off CONCEPT, --class C --concept K --weight W, --search, "
                             "or --list")
        if videos is not None and not search:
            raise DanceError("--videos selects the videos of an edit --search")
        if list_:
            _list_versions(run)
        elif search:
            _intervene_search(run, split, videos, 1.0 if weight is None else weight, max_edits, version, dry_run)
        elif sample is not None:
            if not off:
                raise DanceError("--sample needs at least one --off CONCEPT to switch off")
            _intervene_sample(run, sample, off, version, k)
        else:
            missing = [n for n, val in (("--class", cls), ("--concept", concept), ("--weight", weight)) if val is None]
            if missing:
                raise DanceError(f"a weight edit needs --class, --concept and --weight (missing {', '.join(missing)})")
            _intervene_weight(run, cls, concept, weight, split, version, dry_run)
    except DanceError as e:
        _fail(e)


# ---------------------------------------------------------------------------------------------- serve


def serve(
    run: RunArg,
    host: Annotated[str, typer.Option(help="address to bind (0.0.0.0 lets other machines in: careful)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port (0 = any free port)")] = 7860,
    version: VersionOpt = None,
    allow_host: Annotated[list[str] | None, typer.Option(
        "--allow-host", help="another name the viewer may be reached by (the Host header), e.g. this machine's "
                             "name with --host 0.0.0.0; repeatable")] = None,
) -> None:
    """A local web viewer: browse test videos, switch concepts off, edit weights, see Sankey diagrams."""
    from dance.viewer import make_server

    try:
        server = make_server(run, host, port, version, extra_hosts=allow_host or ())
    except DanceError as e:
        _fail(e)
    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"[yellow]warning:[/yellow] listening on {host}: anyone who can reach it and load the page can "
                  "save model versions into the run (plain HTTP, no login)")
    console.print(f"DANCE viewer for {run}: [bold]{server.url}[/bold] (Ctrl+C to stop)")
    others = sorted(h for h in server.guard.hosts if not h.startswith(("127.0.0.1:", "localhost:", "[::1]:")))
    if others:
        console.print(f"also answers to: {', '.join(others)}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def register(app: typer.Typer) -> None:
    """Add ``sanity``, ``intervene`` and ``serve`` to the ``dance`` command."""
    app.command()(sanity)
    app.command()(intervene)
    app.command()(serve)
